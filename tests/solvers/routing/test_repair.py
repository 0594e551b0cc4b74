"""Routes that cannot take their driver break are repaired into plans the validator accepts."""

from __future__ import annotations

import pytest

from scenarios import Break, Location, Plan, Scenario, TimeWindow, Vehicle
from scenarios.plan import PlanStatus, StopKind, UnassignedReason
from solvers.routing import EngineSettings, RoutingParams, build_problem, solve_routes_with_stats
from solvers.routing.engines.pyvrp_engine import PyVRPEngine
from solvers.routing.repair import repair_routes
from solvers.routing.schedule import schedule_route, to_route
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import make_city

# six orders around the depot take about 1,960 s without a break: they fit one 3,000 s shift,
# but not with a 1,500 s break on top
BREAK = Break(window=TimeWindow(start_s=0, end_s=3000), duration_s=1500)


def _shift_with_break(num_vehicles: int, brk: Break | None = BREAK) -> Scenario:
    """The 6-order city; costly vehicles with a 3,000 s shift and a 1,500 s break."""
    fleet = [
        Vehicle(
            id=f"v{k}",
            start_location=Location(x=5000, y=5000),
            capacity=[10],
            shift=TimeWindow(start_s=0, end_s=3000),
            breaks=[brk] if brk else [],
            fixed_cost_cents=100_000,  # one vehicle is far cheaper than two, if breaks are ignored
        )
        for k in range(num_vehicles)
    ]
    return make_city(6, vehicles=fleet)


def _staggered_with_fixed_break() -> Scenario:
    """Orders due one after another, and a 600 s break that must start at 600 s sharp.

    PyVRP, which plans with the shift shortened by the break but cannot place it, packs the
    orders on one vehicle; the break then pushes some past their windows.
    """
    brk = Break(window=TimeWindow(start_s=600, end_s=600), duration_s=600)
    s = _shift_with_break(2, brk)
    orders = [
        o.model_copy(update={"time_windows": [TimeWindow(start_s=0, end_s=400 * (i + 2))]})
        for i, o in enumerate(s.orders)
    ]
    return s.model_copy(update={"orders": orders})


def _plan(s: Scenario, routes: dict[int, list[int]]) -> Plan:
    p = build_problem(s)
    out = [to_route(p, schedule_route(p, v, seq), set()) for v, seq in sorted(routes.items())]
    return Plan(
        routes=out,
        distance_m=sum(r.distance_m for r in out),
        cost_cents=sum(r.cost_cents for r in out),
    )


def test_repair_moves_orders_off_a_route_that_cannot_take_its_break() -> None:
    p = build_problem(_shift_with_break(2))
    everything = list(range(len(p.tasks)))
    assert schedule_route(p, 0, everything).violation is not None
    fixed = repair_routes(p, {0: everything})
    assert fixed.moved >= 1 and fixed.lost == 0
    assert sorted(t for seq in fixed.routes.values() for t in seq) == everything
    for v, seq in fixed.routes.items():
        assert schedule_route(p, v, seq).violation is None


def test_a_pyvrp_plan_blind_to_breaks_is_repaired_into_a_valid_plan() -> None:
    s = _shift_with_break(2)
    # what PyVRP plans for the same fleet without breaks: everything on one vehicle
    blind = build_problem(_shift_with_break(2, None))
    found = PyVRPEngine().solve(blind, EngineSettings(time_limit_s=5, seed=1, max_iterations=200))
    assert list(found.routes) == [0]
    p = build_problem(s)  # the same tasks, now with the breaks
    assert schedule_route(p, 0, found.routes[0]).violation is not None
    fixed = repair_routes(p, found.routes)
    assert fixed.moved >= 1 and fixed.lost == 0
    plan = _plan(s, fixed.routes)
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    assert check.num_served == len(s.orders)
    assert all(sum(st.kind is StopKind.BREAK for st in r.stops) == 1 for r in plan.routes)


def test_orders_the_engine_left_out_are_offered_to_the_repair() -> None:
    p = build_problem(_shift_with_break(2))
    fixed = repair_routes(p, {0: [0, 1]}, extra=[2, 3, 4, 5])
    assert fixed.moved == 0 and fixed.added == 4
    assert sorted(t for seq in fixed.routes.values() for t in seq) == list(range(6))


def test_repair_keeps_pinned_stops_on_their_route() -> None:
    p = build_problem(_shift_with_break(2))
    everything = list(range(len(p.tasks)))
    pinned = frozenset({0, 5})
    fixed = repair_routes(p, {0: everything}, pinned=pinned)
    assert fixed.moved >= 1
    assert pinned <= set(fixed.routes[0])
    assert [t for t in fixed.routes[0] if t in pinned] == [0, 5]  # in their order


def test_routes_that_fit_are_left_alone() -> None:
    p = build_problem(_shift_with_break(2))
    fixed = repair_routes(p, {0: list(range(len(p.tasks)))}).routes
    again = repair_routes(p, fixed)
    assert again.routes == fixed
    assert (again.moved, again.lost, again.added) == (0, 0, 0)


def test_past_the_deadline_the_repair_still_returns_routes_that_fit() -> None:
    p = build_problem(_shift_with_break(2))
    fixed = repair_routes(p, {0: list(range(len(p.tasks)))}, deadline=0.0)  # long gone
    assert fixed.moved >= 1
    for v, seq in fixed.routes.items():
        assert schedule_route(p, v, seq).violation is None


def test_past_the_deadline_orders_left_out_still_get_a_short_insertion() -> None:
    # a solve that lost the CPU reaches the repair late: orders that fit are not dropped
    p = build_problem(_shift_with_break(2))
    fixed = repair_routes(p, {0: [0, 1]}, deadline=0.0, extra=[2, 3, 4, 5])
    assert fixed.added == 4
    assert sorted(t for seq in fixed.routes.values() for t in seq) == list(range(6))
    everything = list(range(len(p.tasks)))
    cut = repair_routes(p, {0: everything}, deadline=0.0)
    assert cut.moved >= 1 and cut.lost == 0  # taken off the route, and placed on another


def test_pyvrp_plan_with_breaks_is_repaired_and_validated() -> None:
    s = _staggered_with_fixed_break()
    params = RoutingParams(engine="pyvrp", time_limit_s=5, max_iterations=200, seed=1)
    plan, stats = solve_routes_with_stats(s, params)
    # one vehicle is what PyVRP plans; the break at 600 s does not fit, the repair splits it
    assert any("driver breaks" in note for note in stats.notes), stats.notes
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    assert plan.engine == "pyvrp" and plan.status is PlanStatus.FEASIBLE
    assert not plan.unassigned
    assert len(plan.routes) == 2
    for route in plan.routes:
        assert sum(st.kind is StopKind.BREAK for st in route.stops) == 1


@pytest.mark.parametrize("engine", ["pyvrp", "auto"])
def test_what_cannot_fit_with_the_break_is_reported(engine: str) -> None:
    s = _shift_with_break(1)
    params = RoutingParams(engine=engine, time_limit_s=5, max_iterations=200, seed=1)
    plan, _ = solve_routes_with_stats(s, params)
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    assert plan.status is PlanStatus.INFEASIBLE
    assert plan.unassigned
    assert {u.reason for u in plan.unassigned} == {UnassignedReason.NO_SOLUTION}
    served = {st.order_id for r in plan.routes for st in r.stops if st.kind is StopKind.DELIVERY}
    assert served | {u.order_id for u in plan.unassigned} == {o.id for o in s.orders}


def test_orders_bumped_for_a_break_with_nowhere_else_to_go_say_so() -> None:
    s = _staggered_with_fixed_break()
    s = s.model_copy(update={"vehicles": s.vehicles[:1]})  # nowhere else to go
    params = RoutingParams(engine="pyvrp", time_limit_s=5, max_iterations=200, seed=1)
    plan, stats = solve_routes_with_stats(s, params)
    assert validate_plan(s, plan).ok
    assert any("driver breaks" in note for note in stats.notes), stats.notes
    bumped = [u for u in plan.unassigned if "make room for a driver break" in u.detail]
    assert bumped and all(u.reason is UnassignedReason.NO_SOLUTION for u in bumped)


def test_a_cancelled_repair_drops_the_last_stops_as_past_its_deadline() -> None:
    # the repair looked only at its deadline: a solve cancelled by the service's stop still
    # searched for the worst order of each bad route (the scheduler run once per order)
    import threading

    from solvers.cancel import cancel_with

    p = build_problem(_shift_with_break(2))
    everything = list(range(len(p.tasks)))
    at_deadline = repair_routes(p, {0: everything}, deadline=0.0)
    searched = repair_routes(p, {0: everything})
    assert searched.routes != at_deadline.routes  # the test tells the two apart
    stop = threading.Event()
    stop.set()
    cancel_with(stop)
    try:
        cancelled = repair_routes(p, {0: everything})
    finally:
        cancel_with(None)
    assert cancelled.routes == at_deadline.routes
    assert (cancelled.moved, cancelled.lost) == (at_deadline.moved, at_deadline.lost)
    assert repair_routes(p, {0: everything}).routes == searched.routes  # not cancelled: as before
