"""PyVRP data: skill profiles shared by vehicles that may enter the same nodes; safe arc lengths."""

from __future__ import annotations

import pytest

from scenarios import Location, Scenario, Vehicle
from solvers.routing import RoutingParams, build_problem, solve_routes
from solvers.routing.engines import pyvrp_engine
from solvers.routing.engines.pyvrp_engine import (
    Deadline,
    PyVRPEngine,
    _max_penalty,
    _missing_arc,
    _prizes,
    data_bytes,
    num_profiles,
)
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import make_city


def _skilled_city(penalty_cents: int | None = None) -> Scenario:
    """Orders o0, o1 need a fridge; three vehicles: fridge, crane, none (priced by distance)."""
    depot = Location(x=5000, y=5000)
    fleet = [
        Vehicle(id=k, start_location=depot, capacity=[10], skills=skills, cost_per_km_cents=90)
        for k, skills in (("van", ["fridge"]), ("crane", ["crane"]), ("bike", []))
    ]
    s = make_city(6, vehicles=fleet)
    orders = [
        o.model_copy(
            update={
                "required_skills": ["fridge"] if i < 2 else [],
                "penalty_cents": penalty_cents,
            }
        )
        for i, o in enumerate(s.orders)
    ]
    return s.model_copy(update={"orders": orders})


def test_vehicles_banned_from_the_same_nodes_share_a_profile() -> None:
    p = build_problem(_skilled_city())
    # "crane" and "bike" may not enter the fridge orders' nodes, "van" may enter all
    assert num_profiles(p) == 2
    assert data_bytes(p) == 2 * 2 * 8 * 2 * p.num_nodes**2
    assert num_profiles(build_problem(make_city(6))) == 1


def test_missing_arcs_are_longer_than_any_shift_and_cannot_overflow() -> None:
    p = build_problem(_skilled_city(penalty_cents=10**9))
    for prizes in (None, _prizes(p)):
        penalty = _max_penalty(p, prizes) or 100_000.0
        missing = _missing_arc(p, penalty)
        span = max(v.shift[1] for v in p.vehicles) - min(v.shift[0] for v in p.vehicles)
        assert missing > span
        price = max(v.unit_distance_cost for v in p.vehicles)
        assert missing * (penalty + price) < 2**63


def test_skilled_orders_go_to_the_vehicle_with_the_skill() -> None:
    s = _skilled_city()
    plan = solve_routes(s, RoutingParams(engine="pyvrp", time_limit_s=5, max_iterations=300))
    assert validate_plan(s, plan).ok
    assert not plan.unassigned
    van = next(r for r in plan.routes if r.vehicle_id == "van")
    assert {"o0", "o1"} <= {st.order_id for st in van.stops}


class _Clock:
    """A perf_counter that moves only when told."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def perf_counter(self) -> float:
        return self.now


def test_no_iteration_is_started_that_would_end_after_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyVRP looks at the clock only between iterations: a 1 s iteration started 0.1 s before
    the deadline used to end 0.9 s late."""
    clock = _Clock()
    monkeypatch.setattr(pyvrp_engine, "time", clock)
    stop = Deadline(102.5)
    assert not stop(0.0)  # first call, PyVRP's own start is done
    clock.now = 101.0
    assert not stop(0.0)  # one iteration of 1 s: another ends at 102
    clock.now = 101.6
    assert stop(0.0)  # one of 0.6 s; the longest recent one (1 s) would end at 102.6
    # from a given start the first iteration searches it exhaustively: its estimate counts
    clock.now = 100.0
    assert stop_before_first(clock, first_s=2.5)
    assert not stop_before_first(clock, first_s=1.5)


def stop_before_first(clock: _Clock, first_s: float) -> bool:
    """Whether a fresh deadline 2 s from now stops before the first iteration."""
    return Deadline(clock.now + 2.0, first_s)(0.0)


def test_the_first_local_search_counts_in_the_time_pyvrp_needs_to_start(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyVRP's first local search does not watch the clock: too little time left for it gives
    the greedy plan instead of a late one."""
    problem = build_problem(c101_25)
    base = PyVRPEngine().min_time_s(problem)
    monkeypatch.setattr(pyvrp_engine, "FIRST_SEARCH_S_PER_TASK", 1.0)
    assert PyVRPEngine().min_time_s(problem) >= base + len(problem.tasks) - 1
    plan = solve_routes(c101_25, RoutingParams(engine="pyvrp", time_limit_s=2, seed=1))
    assert plan.engine == "greedy (no time left for pyvrp)"
    assert validate_plan(c101_25, plan).ok
