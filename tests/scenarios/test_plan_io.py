"""Plan files: a Plan JSON or the route output of ``dispatchlab route --out``, read as a Plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios import InputError, Plan
from scenarios.io import read_plan, write_json

ROUTE_OUTPUT = {
    "instance": "tiny",
    "status": "feasible",
    "engine": "greedy",
    "seed": 1,
    "runtime_s": 0.01,
    "distance": 12.5,
    "num_vehicles": 1,
    "cost_cents": 0,
    "units": {"distance_divisor": 10, "time_divisor": 10},
    "routes": [
        {
            "vehicle_id": "v1",
            "start": 0,
            "end": 30.2,
            "distance": 12.5,
            "cost_cents": 0,
            "stops": [
                {
                    "order_id": "7",
                    "order": "a",
                    "kind": "pickup",
                    "arrival": 1.5,
                    "start": 2,
                    "departure": 3.1,
                    "load_after": [1],
                },
                {"kind": "break", "start": 4, "end": 10, "break_index": 1},
                {
                    "order_id": "a",
                    "order": "a",
                    "kind": "delivery",
                    "arrival": 20,
                    "start": 20,
                    "departure": 25,
                    "load_after": [0],
                    "pinned": True,
                },
            ],
        }
    ],
    "unassigned": [{"order_id": "b", "reason": "no_skill", "detail": "x", "penalty_cents": 5}],
}


def test_read_plan_converts_the_route_output_to_seconds_and_metres(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(ROUTE_OUTPUT))
    plan = read_plan(path)
    assert plan.distance_m == 125 and plan.engine == "greedy" and plan.seed == 1
    (route,) = plan.routes
    assert (route.start_s, route.end_s, route.duration_s, route.distance_m) == (0, 302, 302, 125)
    pickup, brk, delivery = route.stops
    assert (pickup.order_id, pickup.task_id, pickup.kind.value) == ("a", "7", "pickup")
    assert (pickup.arrival_s, pickup.start_s, pickup.departure_s) == (15, 20, 31)
    assert (brk.kind.value, brk.start_s, brk.departure_s, brk.load_after) == ("break", 40, 100, [1])
    assert brk.break_index == 1 and pickup.break_index is None
    assert delivery.pinned and delivery.order_id == "a"
    assert plan.unassigned[0].order_id == "b" and plan.unassigned[0].penalty_cents == 5


def test_read_plan_takes_a_plan_json_as_before(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(ROUTE_OUTPUT))
    plan = read_plan(path)
    write_json(plan, tmp_path / "as-plan.json")
    assert read_plan(tmp_path / "as-plan.json") == plan
    assert Plan.model_validate_json((tmp_path / "as-plan.json").read_text()) == plan


def test_bad_route_output_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    doc = json.loads(json.dumps(ROUTE_OUTPUT))
    doc["routes"][0]["stops"][0]["start"] = -2
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        read_plan(path)
    assert err.value.source == str(path) and err.value.field == "routes.0.stops.0.start"
    del doc["routes"][0]["stops"][0]["departure"]
    doc["routes"][0]["stops"][0]["start"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        read_plan(path)
    assert err.value.field == "routes.0.stops.0.departure" and err.value.reason == "Field required"
    doc["routes"][0]["stops"][0]["departure"] = 3
    doc["routes"][0]["stops"][0]["break_index"] = 0
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        read_plan(path)
    assert err.value.field == "routes.0.stops.0.break_index"
    assert err.value.reason.endswith("only a break stop takes (this stop is a pickup)")
    with pytest.raises(InputError, match="file not found"):
        read_plan(tmp_path / "missing.json")
