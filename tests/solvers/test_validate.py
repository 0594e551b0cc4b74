"""The independent plan validator: a known-good solution passes, each broken rule is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from scenarios import (
    Break,
    Location,
    Order,
    Plan,
    PlannedStop,
    Route,
    Scenario,
    TimeWindow,
    Vehicle,
)
from scenarios.errors import error_location
from scenarios.io import load_scenario
from scenarios.plan import PlanStatus, StopKind, Unassigned, UnassignedReason
from solvers.validate import match_breaks, validate_plan


def _plan_from_sequences(s: Scenario, routes: list[list[str]]) -> Plan:
    """A plan built by hand (earliest times), independent of the solver code."""
    out = []
    total = 0
    for k, seq in enumerate(routes):
        veh = s.vehicles[k]
        locs = [veh.start_location] + [s.order(o).location for o in seq] + [veh.end]
        m = s.travel.matrix(locs)
        t = 0
        stops = []
        dist = 0
        for i, oid in enumerate(seq):
            order = s.order(oid)
            arr = t + int(m.duration_s[i, i + 1])
            dist += int(m.distance_m[i, i + 1])
            start = max(arr, order.time_windows[0].start_s) if order.time_windows else arr
            stops.append(
                PlannedStop(
                    order_id=oid, arrival_s=arr, start_s=start, departure_s=start + order.service_s
                )
            )
            t = start + order.service_s
        dist += int(m.distance_m[len(seq), len(seq) + 1])
        end = t + int(m.duration_s[len(seq), len(seq) + 1])
        out.append(Route(vehicle_id=veh.id, stops=stops, start_s=0, end_s=end, distance_m=dist))
        total += dist
    return Plan(routes=out, distance_m=total)


def _read_sol(path: Path) -> list[list[str]]:
    routes = []
    for line in path.read_text().splitlines():
        if line.startswith("Route"):
            routes.append(line.split(":", 1)[1].split())
    return routes


def test_cvrplib_bks_solution_costs_its_bks(instances_dir: Path) -> None:
    s = load_scenario(instances_dir / "cvrplib_x" / "X-n101-k25.vrp")
    plan = _plan_from_sequences(s, _read_sol(instances_dir / "cvrplib_x" / "X-n101-k25.sol"))
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    assert check.distance_m == 27591
    assert check.num_vehicles == 26
    assert check.num_served == 100


@pytest.fixture()
def tiny() -> Scenario:
    depot = Location(x=0, y=0)
    return Scenario(
        orders=[
            {
                "id": "a",
                "location": {"x": 100, "y": 0},
                "demand": [2],
                "time_windows": [{"start_s": 0, "end_s": 500}],
                "service_s": 10,
            },
            {"id": "b", "location": {"x": 200, "y": 0}, "demand": [2]},
            {
                "id": "c",
                "location": {"x": 0, "y": 300},
                "demand": [1],
                "required_skills": ["x"],
                "pickup": {"location": {"x": 0, "y": 100}},
            },
        ],
        vehicles=[
            Vehicle(id="v1", start_location=depot, capacity=[3], skills=["x"]),
            Vehicle(
                id="v2", start_location=depot, capacity=[4], shift=TimeWindow(start_s=0, end_s=2000)
            ),
        ],
    )


def _good(tiny: Scenario) -> Plan:
    return Plan(
        routes=[
            Route(
                vehicle_id="v1",
                start_s=0,
                end_s=600,
                distance_m=600,
                stops=[
                    PlannedStop(
                        order_id="c",
                        kind=StopKind.PICKUP,
                        arrival_s=100,
                        start_s=100,
                        departure_s=100,
                    ),
                    PlannedStop(order_id="c", arrival_s=300, start_s=300, departure_s=300),
                ],
            ),
            Route(
                vehicle_id="v2",
                start_s=0,
                end_s=410,
                distance_m=400,
                stops=[
                    PlannedStop(order_id="a", arrival_s=100, start_s=100, departure_s=110),
                    PlannedStop(order_id="b", arrival_s=210, start_s=210, departure_s=210),
                ],
            ),
        ],
        distance_m=1000,
    )


def test_hand_made_plan_passes(tiny: Scenario) -> None:
    check = validate_plan(tiny, _good(tiny))
    assert check.ok, check.summary()
    assert check.distance_m == 1000


def test_no_order_is_loaded_or_picked_up_before_it_exists(tiny: Scenario) -> None:
    """``created_s`` (session 62): the hand-made plan leaves at 0 s with ``a`` and ``b`` on
    board and picks ``c`` up at 100 s; created later, each is named under ``release``."""
    good = _good(tiny)

    def created(**at: int) -> Scenario:
        orders = [o.model_copy(update={"created_s": at.get(o.id, 0)}) for o in tiny.orders]
        return tiny.model_copy(update={"orders": orders})

    assert validate_plan(created(a=0, b=0, c=100), good).ok  # on time: exactly then
    check = validate_plan(created(b=1, c=101), good)
    assert {(v.constraint, v.vehicle_id, v.order_id, v.detail) for v in check.violations} == {
        ("release", "v2", "b", "leaves the start at 0 s carrying the order, created at 1 s"),
        ("release", "v1", "c", "picked up at 100 s, before the order is created at 101 s"),
    }
    # the same route leaving later (its stops after it) carries b once b exists
    later = good.model_copy(deep=True)
    later.routes[1] = later.routes[1].model_copy(
        update={
            "start_s": 1,
            "end_s": 411,
            "stops": [
                st.model_copy(
                    update={
                        "arrival_s": st.arrival_s + 1,
                        "start_s": st.start_s + 1,
                        "departure_s": st.departure_s + 1,
                    }
                )
                for st in later.routes[1].stops
            ],
        }
    )
    assert validate_plan(created(b=1), later).ok


def _broken(plan: Plan, route: int, stop: int, **update: object) -> Plan:
    routes = [r.model_copy(deep=True) for r in plan.routes]
    stops = list(routes[route].stops)
    stops[stop] = stops[stop].model_copy(update=update)
    routes[route] = routes[route].model_copy(update={"stops": stops})
    return plan.model_copy(update={"routes": routes})


def _constraints(s: Scenario, plan: Plan) -> set[str]:
    check = validate_plan(s, plan)
    assert not check.ok
    return {v.constraint for v in check.violations}


def test_each_broken_rule_is_named(tiny: Scenario) -> None:
    good = _good(tiny)
    # too early: arrives before the travel time allows
    assert "travel_time" in _constraints(
        tiny, _broken(good, 1, 0, arrival_s=50, start_s=50, departure_s=60)
    )
    # served after its window
    late = _broken(good, 1, 0, arrival_s=600, start_s=600, departure_s=610)
    assert "time_window" in _constraints(tiny, late)
    # delivery before pickup
    swapped = good.model_copy(deep=True)
    swapped.routes[0].stops.reverse()
    assert "precedence" in _constraints(tiny, swapped)
    # skill: c on v2
    moved = good.model_copy(
        update={
            "routes": [
                good.routes[0].model_copy(update={"vehicle_id": "v2"}),
                good.routes[1].model_copy(update={"vehicle_id": "v1"}),
            ]
        }
    )
    assert "skill" in _constraints(tiny, moved)
    # missing order
    dropped = good.model_copy(update={"routes": [good.routes[0]], "distance_m": 600})
    assert "coverage" in _constraints(tiny, dropped)
    # wrong distance
    assert "distance" in _constraints(tiny, good.model_copy(update={"distance_m": 999}))


def _route_update(plan: Plan, route: int, **update: object) -> Plan:
    routes = list(plan.routes)
    routes[route] = routes[route].model_copy(update=update)
    return plan.model_copy(update={"routes": routes})


def test_reported_route_figures_and_stop_places_are_checked(tiny: Scenario) -> None:
    good = _good(tiny)
    # the same figures as recomputed pass
    fine = _route_update(good, 1, duration_s=410, cost_cents=0)
    fine = _broken(fine, 0, 0, location=Location(x=0, y=100), task_id="c:pickup")
    assert validate_plan(tiny, fine).ok, validate_plan(tiny, fine).summary()
    # a route whose reported duration or cost is not its own
    assert _constraints(tiny, _route_update(good, 1, duration_s=400)) == {"duration"}
    assert _constraints(tiny, _route_update(good, 1, cost_cents=5)) == {"cost"}
    # a stop at another place than its task (the twin drives to the stop's location)
    moved = _broken(good, 1, 1, location=Location(x=100, y=0))
    check = validate_plan(tiny, moved)
    assert [(v.constraint, v.order_id) for v in check.violations] == [("location", "b")]
    assert "stop at x=100.0, y=0.0, the delivery is at x=200.0, y=0.0" in check.summary()
    # a stop naming another task
    assert _constraints(tiny, _broken(good, 0, 0, task_id="c")) == {"task_id"}


def test_capacity_and_duplicates(tiny: Scenario) -> None:
    good = _good(tiny)
    heavy = tiny.model_copy(
        update={"orders": [tiny.orders[0].model_copy(update={"demand": [3]}), *tiny.orders[1:]]}
    )
    assert "capacity" in _constraints(heavy, good)
    twice = good.model_copy(deep=True)
    twice.routes[1].stops.append(
        twice.routes[1]
        .stops[1]
        .model_copy(update={"arrival_s": 400, "start_s": 400, "departure_s": 400})
    )
    assert "coverage" in _constraints(tiny, twice)


def test_unassigned_mandatory_needs_infeasible_status(tiny: Scenario) -> None:
    good = _good(tiny)
    plan = good.model_copy(
        update={
            "routes": [good.routes[1]],
            "distance_m": 400,
            "unassigned": [
                Unassigned(order_id="c", reason=UnassignedReason.NO_SKILL, penalty_cents=10_000)
            ],
            "cost_cents": 10_000,
        }
    )
    assert "status" in _constraints(tiny, plan)
    ok = validate_plan(tiny, plan.model_copy(update={"status": PlanStatus.INFEASIBLE}))
    assert ok.ok, ok.summary()
    assert ok.cost_cents == 10_000


def test_shift_end(tiny: Scenario) -> None:
    good = _good(tiny)
    late = good.model_copy(deep=True)
    late.routes[1].end_s = 2500
    assert "shift" in _constraints(tiny, late)


def _brk(start_s: int, length_s: int) -> PlannedStop:
    return PlannedStop(
        kind=StopKind.BREAK, arrival_s=start_s, start_s=start_s, departure_s=start_s + length_s
    )


def test_breaks_with_overlapping_windows_may_come_in_any_order() -> None:
    depot = Location(x=0, y=0)
    courier = Vehicle(
        id="v",
        start_location=depot,
        breaks=[
            Break(window=TimeWindow(start_s=1000, end_s=9000), duration_s=600),
            Break(window=TimeWindow(start_s=2000, end_s=3000), duration_s=300),
        ],
    )
    s = Scenario(orders=[Order(id="a", location=Location(x=100, y=0))], vehicles=[courier])
    visit = PlannedStop(order_id="a", arrival_s=100, start_s=100, departure_s=100)

    def plan(*breaks: PlannedStop) -> Plan:
        route = Route(vehicle_id="v", stops=[visit, *breaks], start_s=0, end_s=9000, distance_m=200)
        return Plan(routes=[route], distance_m=200)

    # the short break (2000-3000) first, then the long one (1000-9000): both in their windows
    assert validate_plan(s, plan(_brk(2000, 300), _brk(4000, 600))).ok
    # the long break, then one in neither window: the short one is out of its window
    check = validate_plan(s, plan(_brk(4000, 600), _brk(4700, 300)))
    assert [str(v) for v in check.violations] == [
        "break (vehicle v): break 1 starts at 4700 s, outside its window 2000-3000"
    ]


def test_a_break_outside_its_route_is_refused() -> None:
    """OR-Tools' model lets a break lie before a route's start or after its end; a plan may
    not: every break of a used vehicle lies between the route's start and its end (a break
    after the last stop comes before the travel to the end), or at the start before the
    departure, over by then (since session 63: taken while waiting, e.g. for an order)."""
    courier = Vehicle(
        id="v",
        start_location=Location(x=0, y=0),
        breaks=[Break(window=TimeWindow(start_s=0, end_s=9000), duration_s=600)],
    )
    s = Scenario(orders=[Order(id="a", location=Location(x=100, y=0))], vehicles=[courier])
    visit = PlannedStop(order_id="a", arrival_s=1100, start_s=1100, departure_s=1100)

    def plan(*stops: PlannedStop, end_s: int = 1200) -> Plan:
        route = Route(vehicle_id="v", stops=list(stops), start_s=1000, end_s=end_s, distance_m=200)
        return Plan(routes=[route], distance_m=200)

    assert validate_plan(s, plan(visit, _brk(1100, 600), end_s=1800)).ok
    assert validate_plan(s, plan(_brk(200, 600), visit)).ok  # at the start, before leaving
    assert [str(v) for v in validate_plan(s, plan(_brk(700, 600), visit)).violations] == [
        "break (vehicle v): break 0 at the start ends at 1300 s, after the route leaves at 1000 s"
    ]
    assert [str(v) for v in validate_plan(s, plan(visit, _brk(200, 600))).violations] == [
        "break (vehicle v): starts at 200 s, before 1100 s"
    ]
    assert [str(v) for v in validate_plan(s, plan(visit, _brk(1200, 600))).violations] == [
        "travel_time (vehicle v): ends at 1200 s, earliest 1900 s"
    ]
    assert [str(v) for v in validate_plan(s, plan(visit)).violations] == [
        "break (vehicle v): break 0 in window 0-9000 missing"
    ]


def _two_break_courier() -> Scenario:
    """Vehicle v with a first break (window 1000-2000 s) and a second (5000-7000 s)."""
    courier = Vehicle(
        id="v",
        start_location=Location(x=0, y=0),
        breaks=[
            Break(window=TimeWindow(start_s=1000, end_s=2000), duration_s=300),
            Break(window=TimeWindow(start_s=5000, end_s=7000), duration_s=300),
        ],
    )
    return Scenario(orders=[Order(id="a", location=Location(x=100, y=0))], vehicles=[courier])


def _route_plan(*breaks: PlannedStop) -> Plan:
    visit = PlannedStop(order_id="a", arrival_s=100, start_s=100, departure_s=100)
    route = Route(vehicle_id="v", stops=[visit, *breaks], start_s=0, end_s=9000, distance_m=200)
    return Plan(routes=[route], distance_m=200)


def _named(start_s: int, index: int) -> PlannedStop:
    return _brk(start_s, 300).model_copy(update={"break_index": index})


def test_a_break_stop_naming_its_break_is_checked_against_that_break() -> None:
    # The break-label swap: the first break taken very late (at 5000 s, inside the second
    # break's window), the second at 6000 s. Matched by window, the 5000 s stop took the
    # second break and the 6000 s one the first: one violation, blaming the 6000 s stop.
    # Named, each stop is checked against its own break: the first is late, the second on
    # time.
    s = _two_break_courier()
    unnamed = validate_plan(s, _route_plan(_brk(5000, 300), _brk(6000, 300)))
    assert [str(v) for v in unnamed.violations] == [
        "break (vehicle v): break 0 starts at 6000 s, outside its window 1000-2000"
    ]
    named = validate_plan(s, _route_plan(_named(5000, 0), _named(6000, 1)))
    assert [str(v) for v in named.violations] == [
        "break (vehicle v): break 0 starts at 5000 s, outside its window 1000-2000"
    ]
    # named as the matching has them: the same verdict as unnamed
    assert validate_plan(s, _route_plan(_named(5000, 1), _named(6000, 0))) == unnamed
    # one named, one not: the unnamed stop takes the break left (never the named one)
    mixed = validate_plan(s, _route_plan(_named(5000, 0), _brk(6000, 300)))
    assert mixed.violations == named.violations
    assert validate_plan(s, _route_plan(_named(1500, 0), _named(6000, 1))).ok


def test_a_bad_break_index_is_a_violation_naming_the_field() -> None:
    s = _two_break_courier()
    out_of_range = validate_plan(s, _route_plan(_named(1500, 0), _named(6000, 2)))
    assert [str(v) for v in out_of_range.violations] == [
        "break_index (vehicle v): stop 2: break_index 2 names no break of the vehicle (it has 2)",
        "break (vehicle v): break 1 in window 5000-7000 missing",
    ]
    twice = validate_plan(s, _route_plan(_named(1500, 0), _named(6000, 0)))
    assert [str(v) for v in twice.violations] == [
        "break_index (vehicle v): stop 2: break_index 0 names a break an earlier stop takes",
        "break (vehicle v): break 1 in window 5000-7000 missing",
    ]


def test_only_a_break_stop_names_a_break() -> None:
    with pytest.raises(ValidationError) as err:
        PlannedStop(order_id="a", arrival_s=0, start_s=0, departure_s=0, break_index=0)
    assert error_location(err.value.errors()[0]) == (
        ("break_index",),
        "names a vehicle break, which only a break stop takes (this stop is a delivery)",
    )


def test_match_breaks_gives_a_stop_naming_its_break_that_break() -> None:
    """Named stops take their breaks whatever their times; the others are matched (window and
    length) to the breaks no stop names; a stop naming no break of the vehicle, or one an
    earlier stop names, takes none."""
    breaks = _two_break_courier().vehicles[0].breaks
    late, on_time = _named(5000, 0), _named(6000, 1)
    assert match_breaks([late, on_time], breaks) == {id(late): breaks[0], id(on_time): breaks[1]}
    unnamed = _brk(5000, 300)
    assert match_breaks([unnamed, on_time], breaks) == {id(on_time): breaks[1]}
    assert match_breaks([late, unnamed], breaks) == {id(late): breaks[0], id(unnamed): breaks[1]}
    # by window alone the late first break is taken for the second (the swap), as before
    alone = _brk(5000, 300)
    assert match_breaks([alone], breaks) == {id(alone): breaks[1]}
    again, beyond = _named(1500, 0), _named(1600, 2)
    assert match_breaks([late, again, beyond], breaks) == {id(late): breaks[0]}
