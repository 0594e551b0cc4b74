"""The demo: a generated city day loaded at start-up, with ready-to-send request bodies."""

from __future__ import annotations

import logging
from typing import Any

from api.context import ServiceContext

log = logging.getLogger("api.demo")

DEMO_ORDERS, DEMO_NODES, DEMO_COURIERS = 40, 4, 6


def demo_requests(scenario: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Example bodies for each solve endpoint, built on the demo scenario."""
    return {
        "POST /v1/routes": {
            "scenario": scenario,
            "params": {"engine": "auto", "time_limit_s": 2, "seed": 1},
        },
    }


def load_demo(ctx: ServiceContext) -> dict[str, Any]:
    """Generate the demo scenario (seeded) and the example requests built on it."""
    from scenarios.generate import generate_city

    scenario = generate_city(
        seed=ctx.settings.demo_seed,
        num_orders=DEMO_ORDERS,
        num_nodes=DEMO_NODES,
        num_couriers=DEMO_COURIERS,
    )
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    log.info(
        "demo scenario loaded: %d orders, %d nodes, %d couriers",
        len(scenario.orders),
        len(scenario.nodes),
        len(scenario.vehicles),
    )
    return {"scenario": data, "requests": demo_requests(data)}
