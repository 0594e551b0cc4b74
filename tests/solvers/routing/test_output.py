"""The route output (``plan_to_dict``) reads back as the Plan it was written from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios import Plan, Scenario
from scenarios.generate import generate_city
from scenarios.io import load_scenario, plan_from_json
from solvers.routing import RoutingParams, solve_routes
from solvers.routing.output import plan_to_dict


def _without_locations(plan: Plan) -> Plan:
    """The plan as the route output keeps it: no stop locations, no empty routes."""
    routes = [
        r.model_copy(update={"stops": [s.model_copy(update={"location": None}) for s in r.stops]})
        for r in plan.routes
        if r.stops
    ]
    return plan.model_copy(update={"routes": routes})


@pytest.mark.parametrize(
    ("source", "kinds"),
    [
        ("solomon/C101.txt", {"delivery"}),
        ("lilim/lc101.txt", {"pickup", "delivery"}),
        ("city", {"delivery", "break"}),
    ],
)
def test_route_output_reads_back_as_the_plan(
    instances_dir: Path, source: str, kinds: set[str]
) -> None:
    """Times and distances in the source's units (tenths, thousandths) convert back exactly;
    pickups, task ids and breaks survive."""
    scenario: Scenario = (
        generate_city(seed=1, num_orders=60, num_nodes=2, num_couriers=6)
        if source == "city"
        else load_scenario(instances_dir / source)
    )
    plan = solve_routes(scenario, RoutingParams(engine="greedy", time_limit_s=5, seed=1))
    back = plan_from_json(json.dumps(plan_to_dict(scenario, plan)))
    assert back == _without_locations(plan)
    assert {s.kind.value for r in back.routes for s in r.stops} == kinds
