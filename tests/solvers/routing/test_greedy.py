"""The greedy construction: pruning of routes not worth their cost."""

from __future__ import annotations

import pytest

from scenarios import EuclideanTravel, Location, Order, Scenario, UnassignedReason, Vehicle
from solvers.routing import RoutingParams, build_problem, solve_routes
from solvers.routing.greedy import GreedyBuilder
from solvers.validate import validate_plan


def _one_van_not_worth_it() -> Scenario:
    """One optional order worth 500 cents; the only vehicle costs 1000 cents to leave."""
    return Scenario(
        travel=EuclideanTravel(),
        orders=[Order(id="o0", location=Location(x=100, y=0), demand=[1], penalty_cents=500)],
        vehicles=[
            Vehicle(
                id="v0",
                start_location=Location(x=0, y=0),
                fixed_cost_cents=1000,
                cost_per_hour_cents=900,
            )
        ],
    )


def test_prune_dropping_the_only_vehicle_leaves_the_order_out() -> None:
    p = build_problem(_one_van_not_worth_it())
    routes, left = GreedyBuilder(p).build()
    assert routes == {}
    assert left == [0]
    # no vehicle to build with at all
    assert GreedyBuilder(p, vehicles=[]).build() == ({}, [0])


@pytest.mark.parametrize("engine", ["greedy", "ortools"])
def test_order_not_worth_the_only_vehicle_is_dropped_for_cost(engine: str) -> None:
    s = _one_van_not_worth_it()
    plan = solve_routes(s, RoutingParams(engine=engine, time_limit_s=1))
    assert validate_plan(s, plan).ok
    assert not plan.routes
    assert [(u.order_id, u.reason) for u in plan.unassigned] == [
        ("o0", UnassignedReason.DROPPED_FOR_COST)
    ]
