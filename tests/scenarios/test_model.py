"""Validation of the domain model: bad input names the field and the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scenarios import InputError, Scenario
from scenarios.io import from_json, to_json


def _order(**kw: Any) -> dict[str, Any]:
    return {"id": "o1", "location": {"x": 0, "y": 0}, **kw}


def _error(data: dict[str, Any]) -> InputError:
    with pytest.raises(InputError) as info:
        from_json(Scenario, json.dumps(data), source="s.json")
    return info.value


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (
            {"orders": [_order(time_windows=[{"start_s": 50, "end_s": 10}])]},
            "orders.0.time_windows.0.end_s",
            "before it starts",
        ),
        (
            {
                "orders": [
                    _order(time_windows=[{"start_s": 0, "end_s": 10}, {"start_s": 5, "end_s": 20}])
                ]
            },
            "orders.0.time_windows.1",
            "sorted and disjoint",
        ),
        (
            {"skus": [{"id": "A"}], "orders": [_order(lines=[{"sku": "B", "quantity": 1}])]},
            "orders.0.lines.0.sku",
            "unknown SKU 'B'",
        ),
        (
            {"orders": [_order(lines=[{"sku": "A", "quantity": -2}])]},
            "orders.0.lines.0.quantity",
            "greater than 0",
        ),
        (
            {"travel": {"kind": "matrix", "duration_s": [[0, 1], [1]]}},
            "travel.matrix.duration_s.1",
            "must be square",
        ),
        (
            {"orders": [_order(), _order()]},
            "orders.1.id",
            "duplicate id 'o1'",
        ),
        (
            {"orders": [_order(location={"lat": 50.0, "lon": 4.0})]},
            "orders.0.location",
            "planar x/y",
        ),
        (
            {
                "travel": {"kind": "matrix", "duration_s": [[0, 1], [1, 0]]},
                "orders": [_order(location={"index": 5})],
            },
            "orders.0.location",
            "outside the 2 x 2 matrix",
        ),
        (
            {
                "capacity_dims": ["kg", "l"],
                "vehicles": [{"id": "v", "start_location": {"x": 0, "y": 0}, "capacity": [1]}],
            },
            "vehicles.0.capacity",
            "capacity_dims has 2",
        ),
        (
            {
                "skus": [{"id": "A"}],
                "nodes": [{"id": "n", "location": {"x": 0, "y": 0}, "inventory": {"Z": 3}}],
            },
            "nodes.0.inventory.Z",
            "unknown SKU 'Z'",
        ),
        (
            {"orders": [_order(location={"lat": 95.0, "lon": 4.0})]},
            "orders.0.location.lat",
            "less than or equal to 90",
        ),
        ({"ordres": []}, "ordres", "Extra inputs are not permitted"),
    ],
)
def test_bad_input_names_field_and_reason(data: dict[str, Any], field: str, reason: str) -> None:
    err = _error(data)
    assert err.field == field
    assert reason in err.reason
    assert err.one_line().startswith(f"s.json: {field}: ")


def test_json_round_trip_is_lossless() -> None:
    data = {
        "name": "t",
        "travel": {"kind": "haversine", "detour_factor": 1.3},
        "skus": [{"id": "A", "weight_g": 250}],
        "nodes": [
            {
                "id": "n",
                "kind": "store",
                "location": {"lat": 52.1, "lon": 4.3},
                "inventory": {"A": 4},
                "safety_stock": {"A": 1},
            }
        ],
        "orders": [
            {
                "id": "o",
                "location": {"lat": 52.0, "lon": 4.31},
                "lines": [{"sku": "A", "quantity": 2}],
                "tier": "vip",
                "time_windows": [{"start_s": 3600, "end_s": 7200}],
                "pickup": {"id": "p", "location": {"lat": 52.2, "lon": 4.2}},
            }
        ],
        "vehicles": [{"id": "v", "start_location": {"lat": 52.1, "lon": 4.3}, "capacity": [10]}],
    }
    scenario = from_json(Scenario, json.dumps(data))
    text = to_json(scenario)
    again = from_json(Scenario, text)
    assert again.model_dump() == scenario.model_dump()
    assert to_json(again) == text
    assert scenario.travel.kind == "haversine"
    assert scenario.nodes[0].available("A") == 3
    assert scenario.orders[0].demand_vector(["units"]) == [2]
