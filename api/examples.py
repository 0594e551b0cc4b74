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
