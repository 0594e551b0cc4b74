"""OR-Tools model: vehicles that cannot even drive their empty route are left out."""

from __future__ import annotations

import signal

import pytest
from ortools.constraint_solver import pywrapcp

from scenarios import (
    EuclideanTravel,
    Location,
    Order,
    Scenario,
    TimeWindow,
    UnassignedReason,
    Vehicle,
)
from solvers.routing import RoutingParams, build_problem, solve_routes_with_stats
from solvers.routing.engines.base import EngineSettings
from solvers.routing.engines.ortools_engine import ORToolsEngine, usable_vehicles
from solvers.validate import validate_plan

#: ends 100 m from its start with a 5 s shift (the trip takes 10 s)
STUCK = Vehicle(
    id="stuck",
    start_location=Location(x=0, y=0),
    end_location=Location(x=100, y=0),
    shift=TimeWindow(start_s=0, end_s=5),
)
GOOD = Vehicle(id="good", start_location=Location(x=0, y=0))


def _scenario(fleet: list[Vehicle]) -> Scenario:
    orders = [
        Order(
            id=f"o{i}",
            location=Location(x=10 * i, y=5),
            demand=[1],
            time_windows=[TimeWindow(start_s=0, end_s=500), TimeWindow(start_s=600, end_s=2000)],
        )
        for i in range(1, 6)
    ]
    return Scenario(travel=EuclideanTravel(), orders=orders, vehicles=fleet)


def test_a_vehicle_that_cannot_reach_its_end_does_not_sink_the_fleet() -> None:
    # the stuck vehicle comes first: the good one is model vehicle 0 but problem vehicle 1
    s = _scenario([STUCK, GOOD])
    p = build_problem(s)
    assert usable_vehicles(p) == [1]
    result = ORToolsEngine().solve(p, EngineSettings(time_limit_s=1))
    assert result.feasible
    assert set(result.routes) == {1}
    assert sorted(result.routes[1]) == list(range(len(p.tasks)))

    plan, stats = solve_routes_with_stats(s, RoutingParams(engine="ortools", time_limit_s=1))
    assert stats.fallback is None
    assert plan.engine == "ortools"
    assert validate_plan(s, plan).ok
    assert [r.vehicle_id for r in plan.routes] == ["good"]
    assert not plan.unassigned


def test_no_usable_vehicle_leaves_every_order_out() -> None:
    s = _scenario([STUCK])
    result = ORToolsEngine().solve(build_problem(s), EngineSettings(time_limit_s=1))
    assert result.feasible and result.routes == {}
    # end to end the diagnosis already finds no vehicle reaching the orders in time
    plan, _ = solve_routes_with_stats(s, RoutingParams(engine="ortools", time_limit_s=1))
    assert validate_plan(s, plan).ok
    assert not plan.routes
    # the only vehicle cannot be back by the end of its shift
    assert {u.reason for u in plan.unassigned} == {UnassignedReason.OUTSIDE_SHIFT}
    assert len(plan.unassigned) == len(s.orders)


def test_ctrl_c_stops_the_search_at_its_next_solution(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OR-Tools searches in C++: Ctrl-C used to wait for the whole time limit."""
    solutions: list[int] = []
    close = pywrapcp.RoutingModel.CloseModelWithParameters

    def close_and_press_ctrl_c(model: pywrapcp.RoutingModel, params: object) -> None:
        close(model, params)

        def at_solution() -> None:
            solutions.append(1)
            if len(solutions) == 1:
                signal.raise_signal(signal.SIGINT)  # Ctrl-C once the search has started

        model.AddAtSolutionCallback(at_solution)

    monkeypatch.setattr(pywrapcp.RoutingModel, "CloseModelWithParameters", close_and_press_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        ORToolsEngine().solve(build_problem(c101_25), EngineSettings(time_limit_s=5.0))
    assert len(solutions) <= 2  # cancelled at the next solution, not searched on
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
