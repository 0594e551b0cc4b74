"""A driver break taken at the start before departure, while the route waits for its orders.

Since session 62 a route leaves its start no earlier than the creation of every order it loads
there, and until session 63 a break could only be taken after the departure: a courier whose
route waits past its break window could not take the break, so it could not carry the order
(left out as ``released_too_late``, or moved and dropped by the break repair). Now the break
is taken at the start while waiting (:func:`solvers.routing.problem.pre_departure_breaks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scenarios import (
    EuclideanTravel,
    Location,
    Order,
    Plan,
    PlannedStop,
    Route,
    Scenario,
    TimeWindow,
    Vehicle,
)
from scenarios.model import Break
from scenarios.plan import PlanStatus, StopKind
from solvers.routing import RoutingParams, solve_routes
from solvers.routing.diagnose import diagnose_orders
from solvers.routing.greedy import GreedyBuilder
from solvers.routing.problem import RoutingProblem, build_problem, pre_departure_breaks
from solvers.routing.schedule import greedy_schedule, schedule_route
from solvers.routing.timing import (
    Timing,
    build_timing,
    insert_one,
    place_break,
    place_breaks,
    visits,
)
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import unhurried

ENGINES = ("pyvrp", "ortools", "greedy")
DEPOT = Location(x=0, y=0)
#: when the late order of :func:`break_closes_before_release` is created
LATE_S = 5000


def break_closes_before_release(
    window: tuple[int, int] = (600, 1800), duration_s: int = 900, created_s: int = LATE_S
) -> Scenario:
    """One courier (shift 0-20,000 s, a 900 s break to start in 600-1,800 s) and two orders
    from its start, one created at :data:`LATE_S` (1,000 m away at 1 m/s), one at 0 s: the
    route leaves at 5,000 s, after the break window has closed."""
    return Scenario(
        name="break-closes-before-release",
        horizon=TimeWindow(start_s=0, end_s=36_000),
        travel=EuclideanTravel(speed_m_per_s=1.0),
        vehicles=[
            Vehicle(
                id="v0",
                start_location=DEPOT,
                shift=TimeWindow(start_s=0, end_s=20_000),
                cost_per_km_cents=100,
                cost_per_hour_cents=3600,
                breaks=[
                    Break(
                        window=TimeWindow(start_s=window[0], end_s=window[1]),
                        duration_s=duration_s,
                    )
                ],
            )
        ],
        orders=[
            Order(id="late", location=Location(x=1000, y=0), created_s=created_s),
            Order(id="early", location=Location(x=0, y=1000)),
        ],
    )


def _without_breaks(s: Scenario) -> Scenario:
    return s.model_copy(
        update={"vehicles": [v.model_copy(update={"breaks": []}) for v in s.vehicles]}
    )


def _solve(s: Scenario, engine: str, monkeypatch: pytest.MonkeyPatch) -> Plan:
    plan = solve_routes(s, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert (plan.engine or "").startswith(engine), plan.engine
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    return plan


@pytest.mark.parametrize("engine", ENGINES)
def test_the_break_is_taken_at_the_start_while_waiting_for_the_order(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: every engine left ``late`` out (``released_too_late``: "a break cannot be
    placed inside its window; ... would fit were it created earlier"). Now the courier takes
    its break at the start from 600 s and leaves at 5,000 s with both orders."""
    s = break_closes_before_release()
    plan = _solve(s, engine, monkeypatch)
    assert plan.status is PlanStatus.FEASIBLE and plan.unassigned == []
    (route,) = plan.routes
    assert route.start_s == LATE_S
    brk = route.stops[0]
    assert brk.kind is StopKind.BREAK and brk.break_index == 0
    assert (brk.start_s, brk.departure_s) == (600, 1500)  # at its window's opening
    assert brk.departure_s <= route.start_s
    # it costs no time: the route is as long and as dear as without the break
    bare = _solve(_without_breaks(s), engine, monkeypatch).routes[0]
    assert _summary(route) == _summary(bare)


def _summary(route: Route) -> tuple[object, ...]:
    """A route's times and costs, and its visits as a set (two visits either way round are
    as long on these symmetric distances)."""
    visits = tuple(
        sorted(st_.order_id or "" for st_ in route.stops if st_.kind is not StopKind.BREAK)
    )
    return (
        route.start_s,
        route.end_s,
        route.distance_m,
        route.duration_s,
        route.cost_cents,
        visits,
    )


def test_the_engines_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    s = break_closes_before_release()
    got = set()
    for engine in ENGINES:
        (route,) = _solve(s, engine, monkeypatch).routes
        got.add((route.stops[0].model_dump_json(), *_summary(route)))
    assert len(got) == 1, got


def test_a_break_that_fits_the_wait_costs_nothing_where_it_fitted_on_the_road() -> None:
    """Window 600-6,000 s: before, the break was taken on the road after 5,000 s (its 900 s in
    the route's duration, 3,414 + 900 s); now while waiting, the duration that of no break."""
    s = break_closes_before_release(window=(600, 6000))
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    assert validate_plan(s, plan).ok and plan.unassigned == []
    (route,) = plan.routes
    assert route.stops[0].kind is StopKind.BREAK and route.stops[0].start_s == 600
    assert route.start_s == LATE_S and route.duration_s == 3414


def test_a_break_ending_after_the_release_holds_the_departure() -> None:
    """Window 4,500-4,800 s (opening before the release at 5,000 s, closing before the
    route could take it on the road): taken at 4,500 s, the route leaves at its end, 5,400 s."""
    s = break_closes_before_release(window=(4500, 4800))
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    assert validate_plan(s, plan).ok and plan.unassigned == []
    (route,) = plan.routes
    assert (route.stops[0].start_s, route.stops[0].departure_s) == (4500, 5400)
    assert route.start_s == 5400


def test_without_a_release_the_break_stays_on_the_road() -> None:
    """Every order created at 0 s: the plan of before (the break after the departure, in the
    route's duration)."""
    s = break_closes_before_release(created_s=0)
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    (route,) = plan.routes
    (brk,) = [st_ for st_ in route.stops if st_.kind is StopKind.BREAK]
    assert brk.start_s >= route.start_s
    bare = solve_routes(_without_breaks(s), RoutingParams(engine="greedy")).routes[0]
    assert route.duration_s == bare.duration_s + 900


def test_a_break_opening_after_the_release_stays_on_the_road() -> None:
    s = break_closes_before_release(window=(5000, 9000))
    problem = build_problem(s)
    seq = [problem.orders[0].delivery]
    assert pre_departure_breaks(problem.vehicles[0], LATE_S, [0]) is None
    tm = place_break(problem, 0, seq)
    assert tm.feasible and not tm.pre and (tm.task == -2).sum() == 1


def test_the_diagnosis_no_longer_leaves_the_order_out() -> None:
    """Before: ``late`` came back from the diagnosis as ``released_too_late``."""
    assert diagnose_orders(build_problem(break_closes_before_release())) == {}


def test_exact_and_greedy_schedules_take_the_break_before_departure() -> None:
    problem = build_problem(break_closes_before_release())
    seq = [problem.orders[1].delivery, problem.orders[0].delivery]
    exact = schedule_route(problem, 0, seq)
    greedy = greedy_schedule(problem, 0, seq)
    for sched in (exact, greedy):
        assert sched.violation is None
        (brk,) = sched.breaks
        assert brk.before_departure and (brk.start_s, brk.index) == (600, 0)
        assert sched.start_s == LATE_S
    assert exact.duration_s == greedy.duration_s == 3414


def test_two_breaks_before_departure() -> None:
    """Two breaks (600-1,800 s and 2,000-3,000 s, 900 s each) both taken while waiting."""
    s = break_closes_before_release()
    v = s.vehicles[0]
    v = v.model_copy(
        update={
            "breaks": [
                *v.breaks,
                Break(window=TimeWindow(start_s=2000, end_s=3000), duration_s=900),
            ]
        }
    )
    s = s.model_copy(update={"vehicles": [v]})
    problem = build_problem(s)
    seq = [problem.orders[1].delivery, problem.orders[0].delivery]
    tm = place_breaks(problem, 0, seq)
    assert tm is not None and tm.feasible and tm.pre == ((0, 600), (1, 2000))
    greedy = greedy_schedule(problem, 0, seq)
    assert [(b.start_s, b.before_departure) for b in greedy.breaks] == [(600, True), (2000, True)]
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    assert validate_plan(s, plan).ok and plan.unassigned == []
    stops = plan.routes[0].stops
    assert [st_.start_s for st_ in stops[:2]] == [600, 2000]


# ----------------------------------------------------------------- validator
def _plan(*breaks: tuple[int, int], start_s: int = LATE_S) -> Plan:
    """The route of :func:`break_closes_before_release` (``early`` then ``late``, leaving at
    ``start_s``) with break stops (start, end) before its first visit."""
    stops = [
        PlannedStop(
            order_id=None,
            kind=StopKind.BREAK,
            arrival_s=a,
            start_s=a,
            departure_s=b,
            break_index=0,
        )
        for a, b in breaks
    ]
    t = start_s + 1000
    stops += [
        PlannedStop(order_id="early", arrival_s=t, start_s=t, departure_s=t),
        PlannedStop(order_id="late", arrival_s=t + 1414, start_s=t + 1414, departure_s=t + 1414),
    ]
    route = Route(vehicle_id="v0", stops=stops, start_s=start_s, end_s=t + 2414, distance_m=3414)
    return Plan(routes=[route], distance_m=3414, cost_cents=3755)  # 341.4 + 3,414 s at 1 c/s


def test_the_validator_accepts_a_break_at_the_start_before_departure() -> None:
    s = break_closes_before_release()
    for brk in ((600, 1500), (1800, 2700), (700, LATE_S)):
        check = validate_plan(s, _plan(brk))
        assert check.ok, (brk, check.summary())


@pytest.mark.parametrize(
    ("brk", "start_s", "why"),
    [
        ((500, 1400), LATE_S, "outside its window"),  # opens at 600 s
        ((1900, 2800), LATE_S, "outside its window"),  # closes at 1,800 s
        ((1700, 2400), LATE_S, "shorter than"),  # 900 s long
        ((1500, 2400), 2000, "after the route leaves at 2000 s"),  # not over by the departure
    ],
)
def test_the_validator_refuses_a_wrong_break_at_the_start(
    brk: tuple[int, int], start_s: int, why: str
) -> None:
    s = break_closes_before_release()
    if start_s < LATE_S:  # (the orders created at 0 s: only the break is wrong)
        s = break_closes_before_release(created_s=0)
    check = validate_plan(s, _plan(brk, start_s=start_s))
    assert not check.ok and any(why in v.detail for v in check.violations), check.summary()


def test_the_validator_refuses_a_break_at_the_start_before_the_shift() -> None:
    s = break_closes_before_release(window=(0, 1800))
    v = s.vehicles[0].model_copy(update={"shift": TimeWindow(start_s=1000, end_s=20_000)})
    s = s.model_copy(update={"vehicles": [v]})
    check = validate_plan(s, _plan((500, 1400)))
    assert not check.ok and any(
        "before the shift starts at 1000 s" in v.detail for v in check.violations
    ), check.summary()
    assert validate_plan(s, _plan((1000, 1900))).ok


def test_the_validator_refuses_a_break_after_a_visit_before_the_departure() -> None:
    s = break_closes_before_release()
    plan = _plan()
    route = plan.routes[0]
    brk = PlannedStop(
        order_id=None,
        kind=StopKind.BREAK,
        arrival_s=600,
        start_s=600,
        departure_s=1500,
        break_index=0,
    )
    stops = [route.stops[0], brk, route.stops[1]]
    bad = Plan(routes=[route.model_copy(update={"stops": stops})])
    check = validate_plan(s, bad)
    assert not check.ok and any("before" in v.detail for v in check.violations)


# ----------------------------------------------------------------- properties
coord = st.integers(min_value=0, max_value=4000)


@st.composite
def waiting_days(draw: st.DrawFn) -> Scenario:
    """Random deliveries from the start, some created during the day, couriers with one or
    two breaks whose windows may close before the orders exist."""
    n = draw(st.integers(min_value=1, max_value=7))
    orders = []
    for i in range(n):
        start = draw(st.integers(min_value=0, max_value=9000))
        orders.append(
            Order(
                id=f"o{i}",
                location=Location(x=draw(coord), y=draw(coord)),
                created_s=draw(st.sampled_from([0, 1500, 3000, 6000])),
                service_s=draw(st.integers(min_value=0, max_value=300)),
                time_windows=(
                    [TimeWindow(start_s=start, end_s=start + 3000)] if draw(st.booleans()) else []
                ),
                penalty_cents=draw(st.one_of(st.none(), st.integers(0, 50_000))),
            )
        )
    vehicles = []
    for k in range(draw(st.integers(min_value=1, max_value=2))):
        breaks = []
        for _ in range(draw(st.integers(min_value=1, max_value=2))):
            lo = draw(st.integers(min_value=0, max_value=7000))
            breaks.append(
                Break(
                    window=TimeWindow(start_s=lo, end_s=lo + draw(st.integers(0, 2000))),
                    duration_s=draw(st.integers(min_value=60, max_value=1800)),
                )
            )
        vehicles.append(
            Vehicle(
                id=f"v{k}",
                start_location=Location(x=2000, y=2000),
                cost_per_km_cents=100,
                cost_per_hour_cents=draw(st.sampled_from([0, 2000])),
                max_duration_s=draw(st.sampled_from([None, None, 6000])),
                breaks=breaks,
            )
        )
    return Scenario(
        horizon=TimeWindow(start_s=0, end_s=14_000),
        travel=EuclideanTravel(speed_m_per_s=5.0),
        orders=orders,
        vehicles=vehicles,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(waiting_days())
def test_greedy_plans_with_breaks_before_departure_validate(s: Scenario) -> None:
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    served = {st_.order_id for r in plan.routes for st_ in r.stops if st_.order_id}
    assert served | {u.order_id for u in plan.unassigned} == {o.id for o in s.orders}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(waiting_days(), st.data())
def test_the_exact_schedule_fits_whenever_the_greedy_one_does(
    s: Scenario, data: st.DataObject
) -> None:
    """The exact placement (closed form) and the greedy one both may take breaks before the
    departure: the exact one finds a schedule whenever the greedy one does, never longer."""
    problem = build_problem(s)
    seq = [problem.orders[o].delivery for o in data.draw(st.permutations(range(len(s.orders))))]
    greedy = greedy_schedule(problem, 0, seq)
    exact = schedule_route(problem, 0, seq)
    if greedy.violation is None:
        assert exact.violation is None
        assert exact.duration_s <= greedy.duration_s
    if exact.violation is None:
        route = np.array([b.start_s for b in exact.breaks if b.before_departure])
        assert (route < max(problem.arrays.release[seq])).all()


def waits_past_its_break() -> Scenario:
    """One courier (shift 0-10,000 s, a 3,000 s break to start in 600-1,800 s) and three
    orders on a 1,000 m square at 1 m/s, all created at 5,000 s: the route leaves at 5,000 s,
    takes the break at its start while it waits, and needs 4,000 s of the 5,000 left."""
    return Scenario(
        name="waits-past-its-break",
        horizon=TimeWindow(start_s=0, end_s=36_000),
        travel=EuclideanTravel(speed_m_per_s=1.0),
        vehicles=[
            Vehicle(
                id="v0",
                start_location=DEPOT,
                shift=TimeWindow(start_s=0, end_s=10_000),
                cost_per_km_cents=100,
                breaks=[Break(window=TimeWindow(start_s=600, end_s=1800), duration_s=3000)],
            )
        ],
        orders=[
            Order(id=f"o{i}", location=Location(x=x, y=y), created_s=5000, penalty_cents=10**6)
            for i, (x, y) in enumerate([(1000, 0), (1000, 1000), (0, 1000)])
        ],
    )


def test_pyvrp_plans_the_full_shift_of_a_vehicle_whose_every_route_breaks_before_leaving() -> None:
    """PyVRP plans with shifts shortened by the breaks' length, also for a break every route
    of the vehicle takes at its start while it waits for its loads: here 7,000 s, of which
    the route, leaving at 5,000 s, had 2,000, one order's round trip. PyVRP served one order
    of three (the repair then inserted the others). Its shift is now not shortened by such
    breaks (the first ones, when they fit before the earliest release of any delivery the
    vehicle may load: :func:`~solvers.routing.engines.pyvrp_engine.shortened_by_s`)."""
    from solvers.routing.engines.base import EngineSettings
    from solvers.routing.engines.pyvrp_engine import PyVRPEngine, shortened_by_s

    scenario = waits_past_its_break()
    problem = build_problem(scenario)
    assert shortened_by_s(problem, 0) == 0
    result = PyVRPEngine().solve(
        problem, EngineSettings(time_limit_s=60.0, seed=1, max_iterations=50)
    )
    assert result.feasible and sum(len(seq) for seq in result.routes.values()) == 3
    plan = solve_routes(scenario, RoutingParams(engine="pyvrp", seed=1, max_iterations=50))
    assert validate_plan(scenario, plan).ok and not plan.unassigned
    [route] = plan.routes
    assert route.stops[0].kind is StopKind.BREAK and route.stops[0].departure_s <= 5000


def test_a_break_some_route_may_take_on_the_road_still_shortens_pyvrp_s_shift() -> None:
    """An order created at 0 s: a route with it alone leaves at once and takes its break on
    the road, so the shift stays shortened by the break (3,000 s)."""
    scenario = waits_past_its_break()
    orders = [*scenario.orders, Order(id="now", location=Location(x=10, y=0))]
    problem = build_problem(scenario.model_copy(update={"orders": orders}))
    from solvers.routing.engines.pyvrp_engine import shortened_by_s

    assert shortened_by_s(problem, 0) == 3000


# ------------------------------------------- the greedy with breaks before departure (h2)
def _one_courier(breaks: tuple[int, int, int], *orders: Order) -> Scenario:
    """One courier from (0, 0) at 1 m/s, shift 0-20,000 s, one break ``(open, close,
    duration)``, the orders given."""
    lo, hi, length = breaks
    return Scenario(
        name="one-courier",
        horizon=TimeWindow(start_s=0, end_s=36_000),
        travel=EuclideanTravel(speed_m_per_s=1.0),
        vehicles=[
            Vehicle(
                id="v0",
                start_location=DEPOT,
                shift=TimeWindow(start_s=0, end_s=20_000),
                cost_per_km_cents=100,
                cost_per_hour_cents=3600,
                breaks=[Break(window=TimeWindow(start_s=lo, end_s=hi), duration_s=length)],
            )
        ],
        orders=list(orders),
    )


def due_before_the_break_could_end() -> Scenario:
    """``near`` (10 m away, created at 100 s) goes in first and its route takes the 1,800 s
    break at the start from 0 s; ``due`` (1,000 m away, by 1,500 s) needs the route to leave
    at 100 s with the break on the road."""
    return _one_courier(
        (0, 10_000, 1800),
        Order(id="near", location=Location(x=10, y=0), created_s=100),
        Order(
            id="due",
            location=Location(x=0, y=1000),
            time_windows=[TimeWindow(start_s=0, end_s=1500)],
        ),
    )


def test_the_greedy_still_puts_the_break_on_the_road_for_an_order_due_before_it_ends() -> None:
    """Since 8fd62b64 a route whose break was taken before departure priced insertions on
    that timing only: ``due`` fitted nowhere and was left out (a feasible plan: leave at
    100 s, ``due`` at 1,100 s, the break, ``near``). The greedy construction with breaks
    before departure from the start (:class:`GreedyBuilder` ``break_first=True``) and the
    solve both serve it now."""
    s = due_before_the_break_could_end()
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    assert plan.unassigned == []
    assert validate_plan(s, plan).ok, validate_plan(s, plan).summary()
    (route,) = plan.routes
    assert [(st_.kind, st_.order_id) for st_ in route.stops] == [
        (StopKind.DELIVERY, "due"),
        (StopKind.BREAK, None),
        (StopKind.DELIVERY, "near"),
    ]
    problem = build_problem(s)
    routes, left = GreedyBuilder(problem, break_first=True).build()
    assert left == []
    assert sorted(routes[0]) == sorted(o.delivery for o in problem.orders)


def a_late_order_next_door() -> Scenario:
    """A break to start in 0-3,600 s; ``late`` (10 m away) is created at 10,000 s, after the
    window, and two orders 1,000 m away must be served by 5,000 s: a route with ``late``
    takes the break before departure and leaves at 10,000 s, too late for them."""
    due = [TimeWindow(start_s=0, end_s=5000)]
    return _one_courier(
        (0, 3600, 1800),
        Order(id="late", location=Location(x=10, y=0), created_s=10_000, penalty_cents=10_000),
        Order(id="east", location=Location(x=1000, y=0), time_windows=due, penalty_cents=10_000),
        Order(id="north", location=Location(x=0, y=1000), time_windows=due, penalty_cents=10_000),
    )


def test_a_late_order_whose_break_costs_no_time_does_not_take_the_courier_first() -> None:
    """Since 8fd62b64 ``late`` was the cheapest first order (its break before departure
    not in the route's duration, every other first order's break on the road was): the
    courier left at 10,000 s with it alone, ``east`` and ``north`` left out. Before, ``late``
    could not be served (the break's window closes before it exists) and the courier served
    the two others; it still does (the breaks on the road first, then the orders left out
    with breaks before departure too)."""
    s = a_late_order_next_door()
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    assert validate_plan(s, plan).ok, validate_plan(s, plan).summary()
    assert [u.order_id for u in plan.unassigned] == ["late"]
    (route,) = plan.routes
    assert route.start_s < 5000


@dataclass
class _FirstOnRoute:
    """An explicit example's draws: the orders' order, and how many of them are routed."""

    order: list[int]
    cut: int


@st.composite
def breaks_over_the_release(draw: st.DrawFn) -> Scenario:
    """One courier whose break (opening in 0-1,000 s) may still run when orders created
    during it exist, and orders due soon after: its route may take the break before
    departure, or on the road to serve them in time."""
    lo = draw(st.integers(min_value=0, max_value=1000))
    length = draw(st.integers(min_value=300, max_value=1800))
    orders = []
    for i in range(draw(st.integers(min_value=2, max_value=6))):
        end = draw(st.integers(min_value=lo, max_value=lo + length + 2000))
        orders.append(
            Order(
                id=f"o{i}",
                location=Location(x=draw(coord), y=draw(coord)),
                created_s=draw(st.sampled_from([0, lo + length // 3, lo + length // 3, 6000])),
                service_s=draw(st.integers(min_value=0, max_value=300)),
                time_windows=[TimeWindow(start_s=0, end_s=end)] if draw(st.booleans()) else [],
            )
        )
    return _one_courier((lo, lo + draw(st.integers(0, 3000)), length), *orders).model_copy(
        update={"travel": EuclideanTravel(speed_m_per_s=5.0)}
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(breaks_over_the_release(), st.data())
@example(due_before_the_break_could_end(), _FirstOnRoute([0, 1], 1))
def test_an_insertion_that_fits_with_the_break_on_the_road_is_priced(
    s: Scenario, data: st.DataObject | _FirstOnRoute
) -> None:
    """Whatever the route's break timing (before departure or not), an order the route takes
    with its break on the road where the route is shortest (before 8fd62b64: the only
    timing) is priced feasible on it (the greedy re-places the break after inserting)."""
    problem = build_problem(s)
    veh = problem.vehicles[0]
    if isinstance(data, _FirstOnRoute):
        order, cut = data.order, data.cut
    else:
        order = data.draw(st.permutations(range(len(s.orders))))
        cut = data.draw(st.integers(min_value=1, max_value=len(order) - 1))
    seq = [problem.orders[o].delivery for o in order[:cut]]
    road = _break_on_the_road(problem, seq)
    if road is None:
        return
    builder = GreedyBuilder(problem)
    col = builder._column(0, seq)
    rows = np.array(order[cut:], dtype=np.int64)
    cost, _, _ = builder._eval(col, rows)
    for o, price in zip(rows, cost, strict=True):
        task = problem.orders[o].delivery
        fits = False
        for gap in range(road.num_gaps):
            one = insert_one(
                road,
                problem,
                np.array([gap]),
                *visits(problem, np.array([task])),
                release=problem.arrays.release[[task]],
            )
            fits |= bool(one.ok[0]) and (
                veh.max_duration_s is None or int(one.duration[0]) <= veh.max_duration_s
            )
        if fits:
            assert price < np.inf, (seq, task)


def _break_on_the_road(problem: RoutingProblem, seq: list[int]) -> Timing | None:
    """The timing of ``seq`` with vehicle 0's break after the visit where the route is
    shortest (the earliest of the shortest), None if it fits nowhere."""
    veh = problem.vehicles[0]
    best: Timing | None = None
    for after in range(len(seq) + 1):
        tm = build_timing(problem, 0, seq, break_after=after)
        if not tm.feasible or (veh.max_duration_s is not None and tm.duration > veh.max_duration_s):
            continue
        if best is None or tm.duration < best.duration:
            best = tm
    return best
