"""Request examples shown on the docs page (small, valid, and exercised by the tests)."""

from __future__ import annotations

from typing import Any

SMALL_SCENARIO: dict[str, Any] = {
    "name": "example",
    "horizon": {"start_s": 0, "end_s": 28_800},
    "travel": {"kind": "euclidean", "speed_m_per_s": 8.0},
    "vehicles": [
        {"id": "courier-1", "start_location": {"x": 0, "y": 0}, "capacity": [10]},
        {"id": "courier-2", "start_location": {"x": 0, "y": 0}, "capacity": [10]},
    ],
    "orders": [
        {
            "id": "o1",
            "location": {"x": 1200, "y": 300},
            "demand": [3],
            "service_s": 120,
            "time_windows": [{"start_s": 0, "end_s": 7_200}],
        },
        {"id": "o2", "location": {"x": -800, "y": 1500}, "demand": [4], "service_s": 120},
        {"id": "o3", "location": {"x": 2500, "y": -600}, "demand": [2], "service_s": 120},
        {"id": "o4", "location": {"x": -1500, "y": -1200}, "demand": [5], "service_s": 120},
    ],
}

ROUTES_EXAMPLE: dict[str, Any] = {
    "small": {
        "summary": "four orders, two couriers, 1 s",
        "value": {
            "scenario": SMALL_SCENARIO,
            "params": {"engine": "auto", "time_limit_s": 1, "seed": 1},
            "mode": "auto",
        },
    }
}

SIMULATION_EXAMPLE: dict[str, Any] = {
    "small": {
        "summary": "the example day, insertion dispatch, 10 replications",
        "value": {"scenario": SMALL_SCENARIO, "policy": "insertion", "replications": 10, "seed": 1},
    }
}

WHATIF_EXAMPLE: dict[str, Any] = {
    "small": {
        "summary": "one courier less, and slower traffic",
        "value": {
            "scenario": SMALL_SCENARIO,
            "variants": [
                {"name": "short-staffed", "modifiers": [{"kind": "fleet", "remove": 1}]},
                {"name": "slow", "modifiers": [{"kind": "travel_slowdown", "factor": 1.3}]},
            ],
            "policies": ["insertion"],
            "replications": 5,
            "seed": 1,
        },
    }
}

CITY_SCENARIO_HINT = "GET /v1/demo (with --demo) has a generated city with nodes and stock"

PLAN_SCENARIO: dict[str, Any] = {
    "name": "plan-example",
    "horizon": {"start_s": 0, "end_s": 28_800},
    "travel": {"kind": "euclidean", "speed_m_per_s": 8.0},
    "skus": [{"id": "tea"}, {"id": "cups"}],
    "nodes": [
        {
            "id": "dc-1",
            "location": {"x": 0, "y": 0},
            "inventory": {"tea": 50, "cups": 20},
            "processing_s": 600,
        },
        {
            "id": "store-1",
            "kind": "store",
            "location": {"x": 2000, "y": 1000},
            "inventory": {"tea": 5},
            "processing_s": 300,
        },
    ],
    "vehicles": [
        {"id": "courier-1", "start_location": {"x": 0, "y": 0}, "capacity": [20]},
        {"id": "courier-2", "start_location": {"x": 2000, "y": 1000}, "capacity": [20]},
    ],
    "orders": [
        {
            "id": "o1",
            "location": {"x": 1200, "y": 300},
            "lines": [{"sku": "tea", "quantity": 2}],
            "time_windows": [{"start_s": 0, "end_s": 7_200}],
            "service_s": 120,
        },
        {
            "id": "o2",
            "location": {"x": 2500, "y": 1600},
            "lines": [{"sku": "tea", "quantity": 1}, {"sku": "cups", "quantity": 2}],
            "service_s": 120,
        },
        {
            "id": "o3",
            "location": {"x": -900, "y": 700},
            "lines": [{"sku": "cups", "quantity": 4}],
            "service_s": 120,
        },
    ],
}

PLAN_EXAMPLE: dict[str, Any] = {
    "small": {
        "summary": "two nodes, three orders, two couriers; 10 twin replications",
        "value": {
            "scenario": PLAN_SCENARIO,
            "allocation": {"time_limit_s": 2},
            "routing": {"time_limit_s": 1, "seed": 1},
            "evaluation": {"replications": 10, "seed": 1},
        },
    }
}

#: The re-plan of the example plan at 8 min: ``o3`` needs cups, which only ``dc-1`` holds,
#: and ``dc-1`` takes 600 s to pick, so no plan of :data:`PLAN_EXAMPLE` has started o3 by
#: then and its cancellation takes it off the plan (at 20 min the plan had delivered o3, so
#: the example showed "o3: not cancelled" instead).
REOPTIMISE_EXAMPLE: dict[str, Any] = {
    "late-order": {
        "summary": "at 8 min: a new order, one cancellation, a courier position",
        "value": {
            "now_s": 480,
            "new_orders": [
                {
                    "id": "o4",
                    "created_s": 480,
                    "location": {"x": 800, "y": -400},
                    "lines": [{"sku": "tea", "quantity": 1}],
                    "service_s": 120,
                }
            ],
            "cancelled_order_ids": ["o3"],
            "courier_positions": [
                {"vehicle_id": "courier-2", "location": {"x": 2100, "y": 1100}, "available_s": 480}
            ],
            "routing": {"time_limit_s": 1, "seed": 1},
        },
    }
}

ALLOCATION_REQUEST: dict[str, Any] = {
    "nodes": [
        {
            "id": "dc-1",
            "location": {"lat": 52.37, "lon": 4.89},
            "inventory": {"tea": 50, "cups": 20},
            "lead_time_s": 3600,
        },
        {
            "id": "store-1",
            "kind": "store",
            "location": {"lat": 52.09, "lon": 5.12},
            "inventory": {"tea": 5},
            "capacity_orders": 10,
        },
    ],
    "orders": [
        {
            "id": "o1",
            "location": {"lat": 52.10, "lon": 5.10},
            "lines": [{"sku": "tea", "quantity": 2}, {"sku": "cups", "quantity": 1}],
            "promise_by_s": 14_400,
        }
    ],
}

ALLOCATION_EXAMPLE: dict[str, Any] = {
    "online": {
        "summary": "one order, two nodes (online mode)",
        "value": {"request": ALLOCATION_REQUEST, "params": {"mode": "online", "time_limit_s": 2}},
    }
}


def single_order_allocations(n: int, *, seed: int) -> list[dict[str, Any]]:
    """``n`` one-order allocation bodies over the nodes of a generated city (load tests)."""
    from scenarios.generate import generate_city
    from solvers.allocation import AllocationRequest

    city = generate_city(seed=seed, num_orders=max(n, 1), num_nodes=8, num_couriers=1)
    bodies = []
    for order in city.orders[:n]:
        if not order.lines:
            continue
        one = city.model_copy(update={"orders": [order]})
        request = AllocationRequest.from_scenario(one)
        bodies.append(
            {
                "request": request.model_dump(mode="json"),
                "params": {"mode": "online", "time_limit_s": 2, "seed": seed},
            }
        )
    return bodies


POLICY_EXAMPLE: dict[str, Any] = {
    "standard": {
        "summary": "the RL benchmark city, two policies (+ greedy), 5 days",
        "value": {
            "policies": ["insertion", "euro-lazy:5"],
            "seeds": [1, 2, 3, 4, 5],
        },
    }
}
