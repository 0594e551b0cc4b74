"""Release times: no route loads an order at its start, nor picks one up, before it exists.

An order exists from its ``created_s``. Until session 62 a scenario routed directly ignored it:
an order created at 5,000 s was delivered at 1,000 s by every engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dispatchlab.cli import app
from scenarios import (
    EuclideanTravel,
    Location,
    Order,
    PickupSpec,
    Plan,
    Scenario,
    TimeWindow,
    Vehicle,
)
from scenarios.plan import PlanStatus, StopKind, UnassignedReason
from solvers.routing import RoutingParams, solve_routes
from solvers.routing.diagnose import diagnose_orders
from solvers.routing.problem import build_problem, route_release
from solvers.routing.schedule import schedule_route
from solvers.routing.timing import build_timing, insert_one, visits
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import ORTOOLS_SOLUTIONS, unhurried

ENGINES = ("pyvrp", "ortools", "greedy", "auto")
DEPOT = Location(x=0, y=0)
#: when the late order of :func:`created_late` is created
LATE_S = 5000


def created_late(
    *, latest_start_s: int | None = None, penalty_cents: int | None = None
) -> Scenario:
    """One courier, an order created at 0 s and one created at :data:`LATE_S` (1,000 m from
    the depot at 1 m/s: the old plans delivered it at 1,000 s or 2,414 s)."""
    return Scenario(
        name="created-late",
        horizon=TimeWindow(start_s=0, end_s=36_000),
        travel=EuclideanTravel(speed_m_per_s=1.0),
        vehicles=[Vehicle(id="v0", start_location=DEPOT, latest_start_s=latest_start_s)],
        orders=[
            Order(
                id="late",
                location=Location(x=1000, y=0),
                created_s=LATE_S,
                penalty_cents=penalty_cents,
            ),
            Order(id="early", location=Location(x=0, y=1000)),
        ],
    )


def picked_up_late() -> Scenario:
    """Pickup-and-delivery jobs created after the courier could reach their pickups: one
    without pickup windows (created at 3,000 s), one whose window opens at 0 s (4,000 s)."""
    return Scenario(
        name="picked-up-late",
        horizon=TimeWindow(start_s=0, end_s=36_000),
        travel=EuclideanTravel(speed_m_per_s=1.0),
        vehicles=[Vehicle(id="v0", start_location=DEPOT)],
        orders=[
            Order(
                id="free",
                location=Location(x=500, y=500),
                created_s=3000,
                pickup=PickupSpec(location=Location(x=200, y=0)),
            ),
            Order(
                id="windowed",
                location=Location(x=-500, y=500),
                created_s=4000,
                pickup=PickupSpec(
                    location=Location(x=0, y=300),
                    time_windows=[TimeWindow(start_s=0, end_s=20_000)],
                ),
            ),
        ],
    )


def _solve(
    s: Scenario,
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
    ortools_solutions: int = ORTOOLS_SOLUTIONS,
) -> Plan:
    """Solve ``s`` on ``engine``, stopped on its iterations or solutions, not the clock."""
    budget = unhurried(monkeypatch, ortools_solutions)
    plan = solve_routes(s, RoutingParams(engine=engine, seed=1, **budget))
    assert "no time left" not in (plan.engine or ""), plan.engine  # the engine itself answered
    if engine != "auto":
        assert (plan.engine or "").startswith(engine), plan.engine
    return plan


def assert_released(s: Scenario, plan: Plan) -> None:
    """No visit of an order happens before it exists (and the validator agrees)."""
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    for route in plan.routes:
        for stop in route.stops:
            if stop.kind is StopKind.BREAK:
                continue
            order = s.order(stop.order_id or "")
            assert stop.start_s >= order.created_s, (order.id, stop.kind, stop.start_s)
            if order.pickup is None:  # loaded at the start: the route leaves once it exists
                assert route.start_s >= order.created_s, (order.id, route.start_s)


@pytest.mark.parametrize("engine", ENGINES)
def test_no_engine_delivers_an_order_before_it_exists(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: every engine left the depot at 0 s and delivered ``late`` at 1,000 or 2,414 s."""
    s = created_late()
    plan = _solve(s, engine, monkeypatch)
    assert plan.status is PlanStatus.FEASIBLE and plan.unassigned == []
    (route,) = plan.routes
    assert route.start_s == LATE_S  # the courier waits for the order, then leaves at once
    assert_released(s, plan)
    late = next(st_ for st_ in route.stops if st_.order_id == "late")
    assert late.start_s >= LATE_S + 1000


@pytest.mark.parametrize("engine", ENGINES)
def test_no_engine_picks_up_an_order_before_it_exists(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: both pickups happened in the first 1,000 s, before either job existed."""
    s = picked_up_late()
    plan = _solve(s, engine, monkeypatch)
    assert plan.status is PlanStatus.FEASIBLE and plan.unassigned == []
    assert_released(s, plan)
    pickups = {
        st_.order_id: st_.start_s
        for r in plan.routes
        for st_ in r.stops
        if st_.kind is StopKind.PICKUP
    }
    assert pickups["free"] >= 3000 and pickups["windowed"] >= 4000


def test_a_pickups_windows_are_cut_at_the_orders_creation() -> None:
    problem = build_problem(picked_up_late())
    free, windowed = (problem.tasks[info.pickup or 0] for info in problem.orders)
    assert free.windows == ((3000, 36_000),) and windowed.windows == ((4000, 20_000),)
    assert free.release == windowed.release == 0  # in the windows, not the start
    assert [t.release for t in build_problem(created_late()).tasks] == [LATE_S, 0]


@pytest.mark.parametrize("engine", ["pyvrp", "ortools", "greedy"])
def test_an_order_created_after_the_latest_departure_is_released_too_late(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The courier must leave by 3,000 s; the order is created at 5,000 s: a mandatory order
    makes the plan infeasible, saying why; an optional one is left out, its penalty paid."""
    for penalty, status in ((None, PlanStatus.INFEASIBLE), (700, PlanStatus.FEASIBLE)):
        s = created_late(latest_start_s=3000, penalty_cents=penalty)
        # one order left to route on one courier: OR-Tools' start is its only solution (asked
        # for 50, it found no second and waited out ORTOOLS_CAP_S, 10 s a solve)
        plan = _solve(s, engine, monkeypatch, ortools_solutions=1)
        assert plan.status is status
        (left,) = plan.unassigned
        assert left.order_id == "late" and left.reason is UnassignedReason.RELEASED_TOO_LATE
        assert "order late is created then, after the latest departure" in left.detail
        assert "(3000 s)" in left.detail
        if penalty is not None:
            assert left.penalty_cents == penalty
        assert {st_.order_id for r in plan.routes for st_ in r.stops} == {"early"}
        assert_released(s, plan)


def test_a_pickup_whose_windows_close_before_the_order_exists_is_released_too_late() -> None:
    s = picked_up_late()
    closed = s.orders[1].model_copy(
        update={
            "pickup": PickupSpec(
                location=Location(x=0, y=300), time_windows=[TimeWindow(start_s=0, end_s=3999)]
            )
        }
    )
    s = s.model_copy(update={"orders": [s.orders[0], closed]})
    problem = build_problem(s)
    assert problem.tasks[problem.orders[1].pickup or 0].windows == ((4000, 3999),)
    reason, detail = diagnose_orders(problem)[1]
    assert reason is UnassignedReason.RELEASED_TOO_LATE
    assert detail == (
        "the order is created at 4000 s, after its pickup windows close (the last at 3999 s)"
    )
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    assert plan.status is PlanStatus.INFEASIBLE
    assert [(u.order_id, u.reason) for u in plan.unassigned] == [
        ("windowed", UnassignedReason.RELEASED_TOO_LATE)
    ]


def test_an_order_created_too_late_for_its_delivery_window_is_released_too_late() -> None:
    """Leaving at 5,000 s the courier reaches the order at 6,000 s, after its window closes
    at 5,500 s: created at 0 s the trip would fit, so the release is the reason named."""
    s = created_late()
    late = s.orders[0].model_copy(update={"time_windows": [TimeWindow(start_s=0, end_s=5500)]})
    s = s.model_copy(update={"orders": [late, s.orders[1]]})
    reason, detail = diagnose_orders(build_problem(s))[0]
    assert reason is UnassignedReason.RELEASED_TOO_LATE
    assert "arrives at 6000 s" in detail and "created at 5000 s" in detail


def test_the_validator_refuses_a_route_that_leaves_before_its_orders_exist() -> None:
    """The plan made as if every order existed at 0 s, checked against the real day."""
    for s in (created_late(), picked_up_late()):
        blind = s.model_copy(
            update={"orders": [o.model_copy(update={"created_s": 0}) for o in s.orders]}
        )
        plan = solve_routes(blind, RoutingParams(engine="greedy"))
        assert validate_plan(blind, plan).ok
        check = validate_plan(s, plan)
        assert not check.ok
        found = {(v.constraint, v.order_id) for v in check.violations}
        late = {o.id for o in s.orders if o.created_s}
        assert found == {("release", oid) for oid in late}, check.summary()
    (violation,) = validate_plan(created_late(), plan_of_blind_day()).violations
    assert violation.detail == "leaves the start at 0 s carrying the order, created at 5000 s"


def plan_of_blind_day() -> Plan:
    """The greedy plan of :func:`created_late` with every order created at 0 s."""
    s = created_late()
    blind = s.model_copy(
        update={"orders": [o.model_copy(update={"created_s": 0}) for o in s.orders]}
    )
    return solve_routes(blind, RoutingParams(engine="greedy"))


def test_orders_created_before_the_shift_starts_are_planned_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Created before the courier's shift starts (or at 0 s, the default): the same plans."""
    s = created_late()
    v = s.vehicles[0].model_copy(update={"shift": TimeWindow(start_s=6000, end_s=36_000)})
    early = s.model_copy(update={"vehicles": [v]})
    zero = early.model_copy(
        update={"orders": [o.model_copy(update={"created_s": 0}) for o in early.orders]}
    )
    for engine in ("pyvrp", "ortools", "greedy"):
        a, b = _solve(early, engine, monkeypatch), _solve(zero, engine, monkeypatch)
        assert a.routes == b.routes and a.cost_cents == b.cost_cents


# ----------------------------------------------------------------- properties
coord = st.integers(min_value=0, max_value=5000)


@st.composite
def released_days(draw: st.DrawFn) -> Scenario:
    """A random city whose orders are created during the day (some with pickups, windows,
    penalties; some couriers with a latest start)."""
    n = draw(st.integers(min_value=1, max_value=10))
    orders = []
    for i in range(n):
        created = draw(st.sampled_from([0, 0, 1000, 3000, 6000, 9000]))
        start = draw(st.integers(min_value=0, max_value=8000))
        pickup = None
        if draw(st.integers(min_value=0, max_value=2)) == 0:
            windows = [TimeWindow(start_s=start, end_s=start + 3000)] if draw(st.booleans()) else []
            pickup = PickupSpec(
                location=Location(x=draw(coord), y=draw(coord)), service_s=30, time_windows=windows
            )
        orders.append(
            Order(
                id=f"o{i}",
                location=Location(x=draw(coord), y=draw(coord)),
                created_s=created,
                demand=[draw(st.integers(min_value=0, max_value=4))],
                service_s=draw(st.integers(min_value=0, max_value=300)),
                time_windows=(
                    [TimeWindow(start_s=start, end_s=start + 3600)] if draw(st.booleans()) else []
                ),
                penalty_cents=draw(st.one_of(st.none(), st.integers(0, 50_000))),
                pickup=pickup,
            )
        )
    depot = Location(x=2500, y=2500)
    vehicles = [
        Vehicle(
            id=f"v{k}",
            start_location=depot,
            capacity=[draw(st.integers(min_value=1, max_value=10))],
            cost_per_km_cents=100,
            cost_per_hour_cents=draw(st.sampled_from([0, 2000])),
            latest_start_s=draw(st.sampled_from([None, None, 2000, 7000])),
        )
        for k in range(draw(st.integers(min_value=1, max_value=3)))
    ]
    return Scenario(
        horizon=TimeWindow(start_s=0, end_s=12_000),
        travel=EuclideanTravel(speed_m_per_s=5.0),
        capacity_dims=["units"],
        orders=orders,
        vehicles=vehicles,
    )


def _assert_all_accounted(s: Scenario, plan: Plan) -> None:
    assert_released(s, plan)
    served = {st_.order_id for r in plan.routes for st_ in r.stops if st_.kind.value == "delivery"}
    assert served | {u.order_id for u in plan.unassigned} == {o.id for o in s.orders}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(released_days())
def test_no_greedy_visit_happens_before_its_release(s: Scenario) -> None:
    _assert_all_accounted(s, solve_routes(s, RoutingParams(engine="greedy")))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(released_days())
def test_no_searched_visit_happens_before_its_release(s: Scenario) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        budget = unhurried(monkeypatch)
        for engine in ("pyvrp", "ortools"):
            plan = solve_routes(s, RoutingParams(engine=engine, **budget))
            _assert_all_accounted(s, plan)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(released_days(), st.data())
def test_the_closed_form_insertion_agrees_with_the_scheduler(
    s: Scenario, data: st.DataObject
) -> None:
    """Inserting a delivery loaded at the start (with its release) into any gap of a route:
    the closed form's verdict and duration are the scheduler's (single windows, no breaks)."""
    unlimited = [v.model_copy(update={"capacity": []}) for v in s.vehicles]  # times only
    problem = build_problem(s.model_copy(update={"vehicles": unlimited}))
    singles = [o for o, info in enumerate(problem.orders) if info.from_depot]
    if len(singles) < 2:
        return
    picked = data.draw(st.permutations(singles))
    route = [problem.orders[o].delivery for o in picked[:-1]]
    new = problem.orders[picked[-1]].delivery
    tm = build_timing(problem, 0, route)
    sched = schedule_route(problem, 0, route)
    assert tm.feasible == (sched.violation is None), sched.violation
    if not tm.feasible:
        return
    gaps = np.arange(tm.num_gaps, dtype=np.int64)
    task = np.array([new], dtype=np.int64)
    release = problem.arrays.release[task]
    ins = insert_one(tm, problem, gaps, *visits(problem, task), release=release)
    for g in range(tm.num_gaps):
        seq = [*route[:g], new, *route[g:]]
        got = schedule_route(problem, 0, seq)
        fits = got.violation is None
        assert bool(ins.ok[g]) == fits, (g, got.violation)
        if fits:
            assert int(ins.duration[g]) == got.duration_s
            assert got.start_s >= route_release(problem, seq)


# ----------------------------------------------------------------- CLI and API
runner = CliRunner()


def test_route_cli_waits_for_the_order(tmp_path: Path) -> None:
    from scenarios.io.json_io import write_json

    scenario = tmp_path / "late.json"
    write_json(created_late(latest_start_s=None), scenario)
    out = tmp_path / "plan.json"
    res = runner.invoke(
        app, ["route", str(scenario), "--engine", "greedy", "-q", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    plan = json.loads(out.read_text())
    (route,) = plan["routes"]
    assert route["start"] == LATE_S
    late = next(st_ for st_ in route["stops"] if st_["order"] == "late")
    assert late["start"] >= LATE_S + 1000
    write_json(created_late(latest_start_s=3000), scenario)
    res = runner.invoke(
        app, ["route", str(scenario), "--engine", "greedy", "-q", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    plan = json.loads(out.read_text())
    assert plan["status"] == "infeasible"
    assert [(u["order_id"], u["reason"]) for u in plan["unassigned"]] == [
        ("late", "released_too_late")
    ]
