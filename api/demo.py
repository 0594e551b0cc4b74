"""The demo: a generated city day loaded at start-up, with ready-to-send request bodies."""

from __future__ import annotations

import logging
from typing import Any

from api.context import ServiceContext

log = logging.getLogger("api.demo")

DEMO_ORDERS, DEMO_NODES, DEMO_COURIERS = 40, 4, 6
#: Node capacities of the demo day: the generator sizes them for 1.4 x the expected orders,
#: which on a 40-order day leaves the only node stocking the long tail (the DC) 24 orders,
#: too few for the orders only it can fill; 2.0 gives it 35. Only the capacities (and the
#: pickers and packing stations sized from them) move: stock and orders stay the same.
DEMO_NODE_CAPACITY_FACTOR = 2.0
NOON_S = 12 * 3600


def demo_requests(scenario: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Example bodies for each solve endpoint (policies: on the RL benchmark's standard city)."""
    from scenarios.model import Scenario
    from solvers.allocation import AllocationRequest

    one = Scenario.model_validate({**scenario, "orders": scenario["orders"][:1]})
    # a re-optimisation at noon that cancels the first order created after it (its stops
    # cannot be done yet), for any plan POST /v1/plans stored of this scenario
    later = [o for o in scenario["orders"] if o.get("created_s", 0) >= NOON_S]
    cancelled = min(later or scenario["orders"][-1:], key=lambda o: o.get("created_s", 0))
    return {
        "POST /v1/allocations": {
            "request": AllocationRequest.from_scenario(one).model_dump(mode="json"),
            "params": {"mode": "online", "time_limit_s": 2},
        },
        "POST /v1/routes": {
            "scenario": scenario,
            "params": {"engine": "auto", "time_limit_s": 2, "seed": 1},
        },
        "POST /v1/plans": {
            "scenario": scenario,
            "allocation": {"time_limit_s": 5},
            "routing": {"time_limit_s": 3, "seed": 1},
            "evaluation": {"replications": 10, "seed": 1},
        },
        "POST /v1/simulations": {
            "scenario": scenario,
            "policy": "insertion",
            "replications": 10,
            "seed": 1,
        },
        "POST /v1/simulations/compare": {
            "scenario": scenario,
            "candidates": [
                {"name": "insertion", "policy": "insertion"},
                {"name": "re-plan every 10 min", "policy": "reopt:10"},
            ],
            "replications": 5,
            "seed": 1,
        },
        "POST /v1/whatif": {
            "scenario": scenario,
            "variants": [
                {"name": "short-staffed", "modifiers": [{"kind": "fleet", "remove": 2}]},
                {"name": "rain", "modifiers": [{"kind": "travel_slowdown", "factor": 1.3}]},
            ],
            "policies": ["insertion"],
            "replications": 5,
            "seed": 1,
        },
        "POST /v1/plans/{plan_id}/reoptimise": {
            "now_s": NOON_S,
            "cancelled_order_ids": [cancelled["id"]],
        },
        "POST /v1/policies/evaluate": {
            "policies": ["greedy", "slots", "model:standard"],
            "seeds": [1, 2],
        },
    }


def load_demo(ctx: ServiceContext) -> dict[str, Any]:
    """Generate the demo scenario (seeded) and the example requests built on it."""
    from scenarios.generate import CityParams, generate_city

    scenario = generate_city(
        seed=ctx.settings.demo_seed,
        num_orders=DEMO_ORDERS,
        num_nodes=DEMO_NODES,
        num_couriers=DEMO_COURIERS,
        params=CityParams(node_capacity_factor=DEMO_NODE_CAPACITY_FACTOR),
    )
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    log.info(
        "demo scenario loaded: %d orders, %d nodes, %d couriers",
        len(scenario.orders),
        len(scenario.nodes),
        len(scenario.vehicles),
    )
    return {"scenario": data, "requests": demo_requests(data)}
