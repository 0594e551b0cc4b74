"""Validation of the domain model: bad input names the field and the reason."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import FieldError, InputError, Location, MatrixTravel, Order, Scenario, TimeWindow
from scenarios.geo import CONTROL_CHARACTERS_REASON, MAX_ID_LENGTH
from scenarios.io import from_json, to_json
from scenarios.model import _check_pickup_ids, horizon_problems
from scenarios.stochastic import ArrivalProcess


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
            "travel.duration_s.1",
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
        # a safety stock by SKU, as the inventory: one for a SKU outside the catalogue
        # was taken, and kept nothing on the shelf (a typo: no order line may name it)
        (
            {
                "skus": [{"id": "A"}],
                "nodes": [
                    {
                        "id": "n",
                        "location": {"x": 0, "y": 0},
                        "inventory": {"A": 3},
                        "safety_stock": {"A": 1, "Z": 2},
                    }
                ],
            },
            "nodes.0.safety_stock.Z",
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


def _node(**kw: Any) -> dict[str, Any]:
    return {"id": "n", "location": {"x": 0, "y": 0}, **kw}


def _vehicle(**kw: Any) -> dict[str, Any]:
    return {"id": "v", "start_location": {"x": 0, "y": 0}, **kw}


MORE_BAD_INPUTS = [
    ({"horizon": {"start_s": 100, "end_s": 5}}, "horizon.end_s", "before it starts"),
    ({"orders": [_order(created_s=-1)]}, "orders.0.created_s", "greater than or equal to 0"),
    ({"orders": [_order(service_s=-5)]}, "orders.0.service_s", "greater than or equal to 0"),
    ({"orders": [_order(tier="gold")]}, "orders.0.tier", "'standard' or 'vip'"),
    ({"orders": [_order(lines=[{"sku": "A", "quantity": 0}])]}, "orders.0.lines.0.quantity", "0"),
    (
        {"orders": [_order(lines=[{"sku": "", "quantity": 1}])]},
        "orders.0.lines.0.sku",
        "at least 1",
    ),
    ({"orders": [_order(demand=[1, 2])]}, "orders.0.demand", "capacity_dims has 1"),
    # true/false are no numbers (pydantic read them as 1/0)
    (
        {"orders": [_order(lines=[{"sku": "A", "quantity": True}])]},
        "orders.0.lines.0.quantity",
        "must be a number, not true or false",
    ),
    ({"orders": [_order(priority=False)]}, "orders.0.priority", "not true or false"),
    ({"orders": [_order(demand=[True])]}, "orders.0.demand.0", "not true or false"),
    (
        {"capacity_dims": ["units", "kg", "units"]},
        "capacity_dims.2",
        "duplicate dimension 'units' (also capacity_dims.0)",
    ),
    ({"orders": [_order(demand=[-1])]}, "orders.0.demand.0", "greater than or equal to 0"),
    ({"orders": [_order(penalty_cents=-10)]}, "orders.0.penalty_cents", "greater than or equal"),
    ({"orders": [_order(id="")]}, "orders.0.id", "at least 1 character"),
    ({"orders": [_order(location={"x": 1})]}, "orders.0.location", "give both x and y"),
    ({"orders": [_order(location={"lat": 1})]}, "orders.0.location", "give both lat and lon"),
    (
        {"orders": [_order(location={"lat": 1, "lon": 2, "x": 1, "y": 2})]},
        "orders.0.location",
        "not both",
    ),
    ({"orders": [_order(location={})]}, "orders.0.location", "needs lat/lon, x/y or a matrix"),
    ({"orders": [_order(location={"x": 0, "y": 0, "z": 1})]}, "orders.0.location.z", "Extra"),
    (
        {
            "orders": [
                _order(pickup={"location": {"x": 0, "y": 0}, "service_s": -1}),
            ]
        },
        "orders.0.pickup.service_s",
        "greater than or equal to 0",
    ),
    (
        {
            "orders": [
                _order(
                    pickup={
                        "location": {"x": 0, "y": 0},
                        "time_windows": [{"start_s": 9, "end_s": 20}, {"start_s": 1, "end_s": 5}],
                    }
                ),
            ]
        },
        "orders.0.pickup.time_windows.1",
        "sorted and disjoint",
    ),
    (  # a pickup named like another order: plans key stops by task id
        {
            "orders": [
                _order(pickup={"id": "o2", "location": {"x": 0, "y": 0}}),
                _order(id="o2"),
            ]
        },
        "orders.1.id",
        "id 'o2' is already the id of the pickup of order 'o1'",
    ),
    (
        {
            "orders": [
                _order(pickup={"id": "p", "location": {"x": 0, "y": 0}}),
                _order(id="o2", pickup={"id": "p", "location": {"x": 0, "y": 0}}),
            ]
        },
        "orders.1.pickup.id",
        "id 'p' is already the id of the pickup of order 'o1'",
    ),
    (  # the default pickup id o1:pickup
        {"orders": [_order(pickup={"location": {"x": 0, "y": 0}}), _order(id="o1:pickup")]},
        "orders.1.id",
        "id 'o1:pickup' is already the id of the pickup of order 'o1'",
    ),
    (  # the default pickup id of a 195-character order id: a stop id no request could name
        {"orders": [_order(id="o" * 195, pickup={"location": {"x": 0, "y": 0}})]},
        "orders.0.pickup.id",
        "the default '<order id>:pickup' would have 202 characters (at most 200)",
    ),
    ({"nodes": [_node(inventory={"A": -3})]}, "nodes.0.inventory.A", "greater than or equal"),
    ({"nodes": [_node(safety_stock=-1)]}, "nodes.0.safety_stock", "greater than or equal"),
    ({"nodes": [_node(pickers=0)]}, "nodes.0.pickers", "greater than 0"),
    ({"nodes": [_node(packing_stations=0)]}, "nodes.0.packing_stations", "greater than 0"),
    ({"nodes": [_node(kind="warehouse")]}, "nodes.0.kind", "'dc', 'store' or 'dark_store'"),
    (
        {
            "nodes": [
                _node(opening_hours=[{"start_s": 0, "end_s": 50}, {"start_s": 50, "end_s": 90}])
            ]
        },
        "nodes.0.opening_hours.1",
        "sorted and disjoint",
    ),
    ({"nodes": [_node(), _node()]}, "nodes.1.id", "duplicate id 'n'"),
    ({"skus": [{"id": "A"}, {"id": "A"}]}, "skus.1.id", "duplicate id 'A'"),
    ({"skus": [{"id": "A", "weight_g": -1}]}, "skus.0.weight_g", "greater than or equal"),
    ({"vehicles": [_vehicle(), _vehicle()]}, "vehicles.1.id", "duplicate id 'v'"),
    (
        {"vehicles": [_vehicle(shift={"start_s": 10, "end_s": 1})]},
        "vehicles.0.shift.end_s",
        "before it starts",
    ),
    ({"vehicles": [_vehicle(capacity=[-1])]}, "vehicles.0.capacity.0", "greater than or equal"),
    (
        {"vehicles": [_vehicle(breaks=[{"window": {"start_s": 0, "end_s": 9}, "duration_s": 0}])]},
        "vehicles.0.breaks.0.duration_s",
        "greater than 0",
    ),
    ({"vehicles": [_vehicle(max_duration_s=0)]}, "vehicles.0.max_duration_s", "greater than 0"),
    (
        {"vehicles": [_vehicle(end_location={"lat": 1.0, "lon": 2.0})]},
        "vehicles.0.end_location",
        "planar x/y",
    ),
    ({"travel": {"kind": "teleport"}}, "travel", "does not match any of the expected tags"),
    (
        {"travel": {"kind": "euclidean", "speed_m_per_s": 0}},
        "travel.speed_m_per_s",
        "greater than or equal to 0.001",
    ),
    (
        {"travel": {"kind": "euclidean", "speed_m_per_s": 1e308}},
        "travel.speed_m_per_s",
        "less than or equal to 1000",
    ),
    ({"vehicles": [_vehicle(max_duration_s=2**63)]}, "vehicles.0.max_duration_s", "less than"),
    (
        {"vehicles": [_vehicle(start_location={"x": float("nan"), "y": 0.0})]},
        "vehicles.0.start_location.x",
        "finite",
    ),
    (
        {"vehicles": [_vehicle(start_location={"x": 1e308, "y": 0.0})]},
        "vehicles.0.start_location.x",
        "less than",
    ),
    ({"stochastic": {"travel_time_cv": float("inf")}}, "stochastic.travel_time_cv", "finite"),
    (
        {"stochastic": {"breakdown_rate_per_hour": 1e308}},
        "stochastic.breakdown_rate_per_hour",
        "less than or equal to 100",
    ),
    (
        {"travel": {"kind": "haversine", "detour_factor": 0.5}},
        "travel.detour_factor",
        "greater than or equal to 1",
    ),
    (
        {
            "travel": {
                "kind": "euclidean",
                "profile": [
                    {"start_s": 3600, "duration_factor": 1.2},
                    {"start_s": 0, "duration_factor": 1.0},
                ],
            }
        },
        "travel.profile.1.start_s",
        "must be sorted",
    ),
    (
        {"travel": {"kind": "euclidean", "profile": [{"start_s": 90000, "duration_factor": 1}]}},
        "travel.profile.0.start_s",
        "less than 86400",
    ),
    (
        {"travel": {"kind": "matrix", "duration_s": [[0, 1], [1, 0]], "distance_m": [[0, 1]]}},
        "travel.distance_m",
        "has 1 rows, expected 2",
    ),
    (
        {"travel": {"kind": "matrix", "duration_s": [[0, -1], [1, 0]]}},
        "travel.duration_s.0.1",
        "greater than or equal to 0",
    ),
    (
        {"travel": {"kind": "matrix", "duration_s": [[0]]}, "orders": [_order()]},
        "orders.0.location",
        "needs an index",
    ),
    (
        {"travel": {"kind": "road_network"}},
        "travel.grid",
        "exactly one of graphml_path or grid",
    ),
    (
        {"travel": {"kind": "road_network", "grid": {"rows": 1, "cols": 5}}},
        "travel.grid.rows",
        "greater than or equal to 2",
    ),
    (
        {"stochastic": {"failed_delivery_prob": 1.5}},
        "stochastic.failed_delivery_prob",
        "less than or equal to 1",
    ),
    ({"stochastic": {"travel_time_cv": -0.1}}, "stochastic.travel_time_cv", "greater than"),
    (
        {"stochastic": {"node_outages": [{"node_id": "n", "window": {"start_s": 5, "end_s": 1}}]}},
        "stochastic.node_outages.0.window.end_s",
        "before it starts",
    ),
    ({"arrivals": {"hourly_rate": [1.0] * 23}}, "arrivals.hourly_rate", "at least 24"),
    ({"arrivals": {"hourly_rate": [-1.0] * 24}}, "arrivals.hourly_rate.0", "greater than"),
    # the twin names the day's arrivals so (and keys their noise by id)
    (
        {
            "arrivals": {"hourly_rate": [1.0] * 24},
            "orders": [_order(), _order(id="arrival-000000")],
        },
        "orders.1.id",
        "has the form of the ids the day's arrivals get",
    ),
    (
        {"arrivals": {"hourly_rate": [1.0] * 24}, "orders": [_order(id="arrival-surge0-000012")]},
        "orders.0.id",
        "the scenario has arrivals: rename it",
    ),
    (
        {
            "arrivals": {"hourly_rate": [1.0] * 24},
            "orders": [_order(pickup={"id": "arrival-1234567", "location": {"x": 1, "y": 1}})],
        },
        "orders.0.pickup.id",
        "the day's arrivals",
    ),
    # the twin draws arrivals hour by hour: 10**12 s listed 2.8e8 hours, out of memory
    (
        {"arrivals": {"hourly_rate": [0.0] * 24}, "horizon": {"start_s": 0, "end_s": 10**12}},
        "arrivals",
        "a horizon of at most 366 days",
    ),
    ({"schema_version": 2}, "schema_version", "Input should be 1"),
    ({"source": {"distance_divisor": 0}}, "source.distance_divisor", "greater than 0"),
    ({"source": {"format": "xml"}}, "source.format", "Input should be"),
    ({"costs": {"unserved_cents": -1}}, "costs.unserved_cents", "greater than or equal"),
]


@pytest.mark.parametrize(("data", "field", "reason"), MORE_BAD_INPUTS)
def test_more_bad_inputs(data: dict[str, Any], field: str, reason: str) -> None:
    err = _error(data)
    assert err.field == field
    assert reason in err.reason


def _window(start_s: int, end_s: int) -> dict[str, int]:
    return {"start_s": start_s, "end_s": end_s}


def _templates(*templates: dict[str, Any], **scenario: Any) -> dict[str, Any]:
    """An arrivals-only day: no listed orders, the arrivals drawn from ``templates``."""
    return {"arrivals": {"hourly_rate": [1.0] * 24, "templates": list(templates)}, **scenario}


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (_templates(_order(), _order()), "arrivals.templates.1.id", "duplicate id 'o1'"),
        (
            _templates(_order(lines=[{"sku": "b", "quantity": 1}]), skus=[{"id": "a"}]),
            "arrivals.templates.0.lines.0.sku",
            "unknown SKU 'b'",
        ),
        (
            _templates(_order(demand=[1, 2])),
            "arrivals.templates.0.demand",
            "has 2 values but capacity_dims has 1",
        ),
        (
            _templates(
                _order(location={"index": 0}),
                _order(id="o2", location={"index": 5}),
                travel={"kind": "matrix", "duration_s": [[0]]},
            ),
            "arrivals.templates.1.location",
            "index 5 is outside the 1 x 1 matrix",
        ),
        (
            _templates(
                _order(pickup={"location": {"x": 1, "y": 1}, "time_windows": [_window(9, 1)]})
            ),
            "arrivals.templates.0.pickup.time_windows.0.end_s",
            "before it starts",
        ),
        (
            _templates(_order(time_windows=[_window(10, 20), _window(15, 30)])),
            "arrivals.templates.0.time_windows.1",
            "windows must be sorted and disjoint",
        ),
    ],
)
def test_arrival_templates_are_validated_like_orders(
    data: dict[str, Any], field: str, reason: str
) -> None:
    err = _error(data)
    assert err.field == field, (err.field, err.reason)
    assert reason in err.reason


def test_an_arrivals_only_day_is_a_plain_file() -> None:
    """Its one order was listed with created_s past the horizon: refused in a file since the
    horizon is checked. A template is never released, so its times are not checked."""
    late = _order(created_s=10**6, time_windows=[{"start_s": 10**6, "end_s": 10**6 + 60}])
    text = json.dumps(_templates(late, horizon={"start_s": 0, "end_s": 86_400}))
    day = from_json(Scenario, text, saved=True)
    assert day.orders == [] and day.arrivals is not None
    assert [t.id for t in day.arrivals.templates] == ["o1"]
    assert day.arrival_templates == day.arrivals.templates
    assert not day.source.notes  # nothing corrected or kept
    assert from_json(Scenario, to_json(day)) == day
    # listed, the same order is still refused
    err = _error({"arrivals": {"hourly_rate": [1.0] * 24}, "orders": [late]})
    assert err.field == "orders.0.created_s"


def test_a_scenario_without_templates_is_written_as_before() -> None:
    """No templates: the listed orders are the templates, and the JSON has no new key."""
    data = {"arrivals": {"hourly_rate": [1.0] * 24}, "orders": [_order()]}
    scenario = from_json(Scenario, json.dumps(data))
    assert scenario.arrival_templates is scenario.orders
    assert "templates" not in to_json(scenario)


@pytest.mark.parametrize(
    "order_id", ["arrival-000000", "arrival-1", "arrival-0000001", "arrival-000001~0", "arrival-x"]
)
def test_arrival_like_ids_are_fine_without_an_arrival_process(order_id: str) -> None:
    """A materialised day lists its arrivals as orders (no process draws more), and ids the
    twin never gives are fine with one."""
    day = from_json(Scenario, json.dumps({"orders": [_order(id=order_id)]}))
    assert day.orders[0].id == order_id
    if order_id != "arrival-000000":
        data = {"arrivals": {"hourly_rate": [1.0] * 24}, "orders": [_order(id=order_id)]}
        assert from_json(Scenario, json.dumps(data)).orders[0].id == order_id


def test_several_errors_are_counted_in_one_line() -> None:
    err = _error({"orders": [_order(service_s=-1, created_s=-1)]})
    assert err.reason.endswith("(and 1 more error)")
    assert "\n" not in err.one_line()


def test_plan_json_round_trip() -> None:
    from scenarios import (
        AllocationLine,
        Estimate,
        Kpis,
        Plan,
        PlannedStop,
        PlanStatus,
        Route,
        StopKind,
        Unassigned,
        UnassignedReason,
    )

    plan = Plan(
        status=PlanStatus.OPTIMAL,
        allocation=[AllocationLine(order_id="o1", sku="A", node_id="n", quantity=2)],
        routes=[
            Route(
                vehicle_id="v",
                stops=[
                    PlannedStop(
                        order_id="o1",
                        kind=StopKind.PICKUP,
                        task_id="p1",
                        arrival_s=10,
                        start_s=20,
                        departure_s=30,
                        load_after=[2],
                    ),
                    PlannedStop(
                        order_id=None,
                        kind=StopKind.BREAK,
                        arrival_s=30,
                        start_s=30,
                        departure_s=1830,
                    ),
                    PlannedStop(
                        order_id="o1", arrival_s=1900, start_s=1900, departure_s=2000, pinned=True
                    ),
                ],
                start_s=0,
                end_s=2100,
                distance_m=1234,
                duration_s=2100,
                cost_cents=999,
            )
        ],
        unassigned=[
            Unassigned(order_id="o2", reason=UnassignedReason.OUT_OF_STOCK, detail="A: 0 left")
        ],
        distance_m=1234,
        cost_cents=-5,
        engine="pyvrp",
        runtime_s=0.25,
        seed=3,
    )
    again = from_json(Plan, to_json(plan))
    assert again == plan
    assert again.num_vehicles == 1
    est = Estimate(mean=0.9, ci_low=0.85, ci_high=0.95, n=30)
    required = [name for name, field in Kpis.model_fields.items() if field.is_required()]
    kpis = Kpis(**dict.fromkeys(required, est))
    assert from_json(Kpis, to_json(kpis)) == kpis


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"routes": [{"vehicle_id": "v", "stops": [{"arrival_s": -1, "start_s": 0,
                                                     "departure_s": 0}]}]},
         "routes.0.stops.0.arrival_s", "greater than or equal to 0"),
        ({"allocation": [{"order_id": "o", "sku": "A", "node_id": "n", "quantity": 0}]},
         "allocation.0.quantity", "greater than 0"),
        ({"unassigned": [{"order_id": "o", "reason": "bored"}]}, "unassigned.0.reason",
         "Input should be"),
        ({"status": "great"}, "status", "Input should be"),
        ({"runtime_s": -1}, "runtime_s", "greater than or equal to 0"),
    ],
)  # fmt: skip
def test_bad_plans_name_the_field(data: dict[str, Any], field: str, reason: str) -> None:
    from scenarios import Plan

    with pytest.raises(InputError) as info:
        from_json(Plan, json.dumps(data), source="plan.json")
    assert info.value.field == field
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("travel", "field"),
    [
        ({"duration_s": [[0, 10], [10, 5]]}, "travel.duration_s.1.1"),
        (
            {"duration_s": [[0, 10], [10, 0]], "distance_m": [[3, 10], [10, 0]]},
            "travel.distance_m.0.0",
        ),
    ],
)
def test_matrix_diagonal_must_be_zero(travel: dict[str, Any], field: str) -> None:
    err = _error({"travel": {"kind": "matrix", **travel}})
    assert err.field == field
    assert "diagonal entry is" in err.reason


LEGACY_MATRIX_SCENARIO: dict[str, Any] = {
    "travel": {
        "kind": "matrix",
        "duration_s": [[5, 10, 20], [10, 5, 15], [20, 15, 0]],
        "distance_m": [[9, 100, 200], [100, 0, 150], [200, 150, 0]],
    },
    "orders": [{"id": "a", "location": {"index": 1}}, {"id": "b", "location": {"index": 2}}],
    "vehicles": [{"id": "v", "start_location": {"index": 0}}],
    "source": {"notes": "written by 0.x"},
}


def test_saved_scenario_with_a_nonzero_diagonal_is_read_with_it_zeroed_and_noted() -> None:
    """Files and stored jobs written before the diagonal had to be zero no longer loaded."""
    from scenarios.saved import SavedDataWarning, validate_saved

    with pytest.warns(SavedDataWarning, match="stored: travel.duration_s, travel.distance_m"):
        s = validate_saved(Scenario, LEGACY_MATRIX_SCENARIO, source="stored")
    assert isinstance(s.travel, MatrixTravel)
    assert s.travel.duration_s == [[0, 10, 20], [10, 0, 15], [20, 15, 0]]
    assert s.travel.distance_m == [[0, 100, 200], [100, 0, 150], [200, 150, 0]]
    notes = s.source.notes or ""
    assert notes.startswith("written by 0.x; travel.duration_s, travel.distance_m: non-zero")
    # what is written back is current data: it loads as new input, without a second note
    again = from_json(Scenario, to_json(s))
    assert again == s and again.source.notes == s.source.notes
    # new input is still rejected, naming the entry
    assert _error(LEGACY_MATRIX_SCENARIO).field == "travel.duration_s.0.0"


def test_saved_scenario_read_for_a_service_returns_the_notes_without_a_warning() -> None:
    """A server thread reading saved data issued a process-wide warning, seen by no client."""
    from scenarios.saved import read_saved

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, notes = read_saved(Scenario, LEGACY_MATRIX_SCENARIO)
    assert s == _validate_saved_quietly(LEGACY_MATRIX_SCENARIO)
    assert notes == [
        "travel.duration_s, travel.distance_m: non-zero diagonal set to zero (saved before "
        "travel to the same place had to be 0)"
    ]


def _validate_saved_quietly(data: object) -> Scenario:
    """``validate_saved`` with its warning swallowed."""
    from scenarios.saved import validate_saved

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validate_saved(Scenario, data)


def test_saved_scenario_with_a_zero_diagonal_is_read_as_is() -> None:
    from scenarios.saved import validate_saved

    current = json.loads(json.dumps(LEGACY_MATRIX_SCENARIO))
    for name in ("duration_s", "distance_m"):
        for i, row in enumerate(current["travel"][name]):
            row[i] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = validate_saved(Scenario, current)
    assert s == Scenario.model_validate(current) and s.source.notes == "written by 0.x"


@settings(max_examples=150, deadline=None)
@given(
    rates=st.lists(st.floats(min_value=0.0, max_value=1e4), min_size=24, max_size=24),
    start_s=st.integers(min_value=0, max_value=4 * 86_400),
    span_s=st.integers(min_value=0, max_value=3 * 86_400),
    factors=st.lists(st.floats(min_value=0.0, max_value=1e4), max_size=3),
)
def test_expected_arrivals_are_the_hourly_rates_over_the_horizon(
    rates: list[float], start_s: int, span_s: int, factors: list[float]
) -> None:
    """Second by second of the base process, times the surge factors above 1 (a bound)."""
    process = ArrivalProcess(hourly_rate=rates, surges=[{"factor": f} for f in factors])
    end_s = start_s + span_s
    hours = range(start_s // 3600, end_s // 3600 + 1)
    base = sum(
        rates[h % 24] * (min(end_s, (h + 1) * 3600) - max(start_s, h * 3600)) / 3600.0
        for h in hours
    )
    bound = base * math.prod(max(1.0, f) for f in factors)
    assert process.expected_arrivals(start_s, end_s) == pytest.approx(bound, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("bad", ["o\x001", "o\t1", "o\n1", "o\x7f1", "o\x851"])
def test_an_id_with_a_control_character_is_refused_naming_the_field(bad: str) -> None:
    """An id holding a NUL was taken in process and by the CLI, a 422 over HTTP (PostgreSQL
    stores no NUL); the other control characters with it."""
    from solvers.allocation import AllocationRequest

    err = _error({"orders": [_order(), _order(id="o2", pickup={"id": bad, "location": {}})]})
    assert err.field == "orders.1.pickup.id"
    assert err.reason.startswith("must not contain control characters")
    err = _error({"nodes": [_node(id=bad)]})
    assert err.field == "nodes.0.id"
    with pytest.raises(ValueError, match="must not contain control characters") as info:
        AllocationRequest.model_validate(
            {"orders": [{"id": bad, "location": {"x": 0, "y": 0}, "lines": []}]}
        )
    assert "orders.0.id" in str(info.value)


@pytest.mark.parametrize(("bad", "shown"), [("s\x001", "s\\x001"), ("s\t1", "s\\t1")])
def test_a_sku_id_as_a_key_or_a_task_id_with_a_control_character_is_refused(
    bad: str, shown: str
) -> None:
    """A node's stock and safety stock are keyed by SKU id, and a stop names its task: a NUL
    there was a 422 over HTTP, taken in process and by the CLI (``dispatchlab route``, its
    initial plan): refused as in any other id, the key escaped in the field (one line)."""
    from scenarios.plan import Plan

    err = _error({"nodes": [_node(inventory={bad: 1})]})
    assert (err.field, err.reason) == (f"nodes.0.inventory.{shown}", CONTROL_CHARACTERS_REASON)
    err = _error({"nodes": [_node(safety_stock={"s": 1, bad: 1})]})
    assert (err.field, err.reason) == (f"nodes.0.safety_stock.{shown}", CONTROL_CHARACTERS_REASON)
    stop = {"order_id": "o1", "task_id": bad, "arrival_s": 0, "start_s": 0, "departure_s": 0}
    with pytest.raises(InputError) as info:
        from_json(Plan, json.dumps({"routes": [{"vehicle_id": "v", "stops": [stop]}]}))
    assert info.value.field == "routes.0.stops.0.task_id"
    assert info.value.reason == CONTROL_CHARACTERS_REASON
    # a task id is not an Id: no length limit (``<order id>:pickup`` of a 200-character id)
    stop["task_id"] = "o" * 200 + ":pickup"
    assert Plan.model_validate({"routes": [{"vehicle_id": "v", "stops": [stop]}]})


def test_printable_ids_beyond_ascii_are_taken() -> None:
    """Only control characters are refused: accents, spaces and CJK are ids as before."""
    scenario = Scenario.model_validate({"orders": [_order(id="Ördér 1 北京")]})
    assert scenario.orders[0].id == "Ördér 1 北京"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda r: {"orders": [_order(), _order(id="o2", region=r)]}, "orders.1.region"),
        (lambda r: {"nodes": [_node(region=r)]}, "nodes.0.region"),
        (
            lambda r: {"skus": [{"id": "s", "restricted_regions": [r]}]},
            "skus.0.restricted_regions.0",
        ),
        (
            lambda r: {"orders": [_order(required_skills=["cold", r])]},
            "orders.0.required_skills.1",
        ),
        (lambda r: {"vehicles": [_vehicle(skills=[r])]}, "vehicles.0.skills.0"),
        (lambda r: {"capacity_dims": ["units", r]}, "capacity_dims.1"),
    ],
)
def test_a_region_is_an_id(make: Any, field: str) -> None:
    """A region, a skill or a capacity dimension holding a control character is refused as
    an id is (its own reason); one of whitespace only too, and an empty one (session 77 for
    a region, 78 for a skill or dimension: both were taken as a real one)."""
    from scenarios.geo import BLANK_REASON

    for value, reason in (
        ("n\x00", CONTROL_CHARACTERS_REASON),
        (" ", BLANK_REASON),
        ("\u3000", BLANK_REASON),
        ("", "String should have at least 1 character"),
    ):
        err = _error(make(value))
        assert (err.field, err.reason) == (field, reason), value
    Scenario.model_validate(make("north east"))  # a space inside is a region (or skill)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "day\x001"}, "name"),
        ({"source": {"notes": "read\x00"}}, "source.notes"),
        ({"orders": [_order(channel="\x00")]}, "orders.0.channel"),
        ({"source": {"name": "c\x00ld"}}, "source.name"),
        ({"source": {"path": "\x00"}}, "source.path"),
    ],
)
def test_a_nul_in_a_string_that_is_not_an_id_is_refused_naming_the_field(
    data: dict[str, Any], field: str
) -> None:
    """Over HTTP a NUL anywhere in a body is a 422 (PostgreSQL stores none), but in process
    and by the CLI only ids refused one: a region, a skill or a name holding one was taken.
    Every string of every model refuses it now, with the words of the HTTP answer."""
    from pydantic import ValidationError

    from scenarios.errors import input_error_from_validation
    from scenarios.geo import NUL_REASON

    err = _error(data)
    assert (err.field, err.reason) == (field, NUL_REASON)
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(data)
    assert input_error_from_validation(info.value).one_line() == f"{field}: {NUL_REASON}"
    # the string's own errors come first, as before: a number is not a string
    if field == "name":
        assert _error({"name": 3}).reason == "Input should be a valid string"


def test_a_nul_in_a_plan_or_an_allocation_request_string_is_refused() -> None:
    """The plan (an initial plan, a stored plan) and the allocation request are models too:
    a NUL in a region (as a key of the sanctions list: named escaped) is refused."""
    from pydantic import ValidationError

    from scenarios.errors import input_error_from_validation
    from scenarios.geo import NUL_REASON
    from scenarios.plan import Plan
    from solvers.allocation import AllocationRequest

    def problem(cls: Any, data: dict[str, Any]) -> str:
        with pytest.raises(ValidationError) as info:
            cls.model_validate(data)
        return input_error_from_validation(info.value).one_line()

    assert problem(Plan, {"engine": "py\x00vrp"}) == f"engine: {NUL_REASON}"
    line = {"sku": "a", "quantity": 1}
    # a region is an id (since session 77): its own reason, as a key of the sanctions list
    order = {"id": "o1", "location": {"x": 0, "y": 0}, "region": "n\x00l", "lines": [line]}
    assert problem(AllocationRequest, {"orders": [order]}) == (
        f"orders.0.region: {CONTROL_CHARACTERS_REASON}"
    )
    rules = {"excluded_nodes": {"n\x00l": ["dc1"]}}
    assert problem(AllocationRequest, {"rules": rules}) == (
        f"rules.excluded_nodes.n\\x00l: {CONTROL_CHARACTERS_REASON}"
    )
    # an id keeps its own reason (control characters), a SKU id as a key too
    rules = {"restricted_skus": {"s\x00": ["nl"]}}
    assert problem(AllocationRequest, {"rules": rules}) == (
        f"rules.restricted_skus.s\\x00: {CONTROL_CHARACTERS_REASON}"
    )


def _pickup_ids_reference(orders: list[Order]) -> tuple[tuple[str | int, ...], str] | None:
    """The first (path, reason) of ``_check_pickup_ids`` as it was before session 69 (its
    words made for every order), None when the ids are fine."""
    first: dict[str, str] = {}
    for i, order in enumerate(orders):
        tasks: list[tuple[str, tuple[str | int, ...], str]] = [
            (order.id, ("orders", i, "id"), f"order {order.id!r}")
        ]
        if order.pickup is not None:
            own = order.pickup.id is not None
            at: tuple[str | int, ...] = (
                ("orders", i, "pickup", "id") if own else ("orders", i, "id")
            )
            if not own and len(order.pickup_id) > MAX_ID_LENGTH:
                return ("orders", i, "pickup", "id"), "too long"
            tasks.append((order.pickup_id, at, f"the pickup of order {order.id!r}"))
        for task_id, where, what in tasks:
            if task_id in first:
                return where, f"id {task_id!r} is already the id of {first[task_id]}"
            first[task_id] = what
    return None


#: Short ids that collide often: an order id, a pickup id, or an order's default pickup id.
_TASK_IDS = st.sampled_from(["a", "b", "a:pickup", "b:pickup", "x" * 195])


@st.composite
def _pickup_orders(draw: st.DrawFn) -> list[Order]:
    """Orders with colliding ids, some with a pickup (its own id or the default)."""
    orders = []
    for _ in range(draw(st.integers(0, 4))):
        pickup = draw(st.sampled_from(["none", "default", "own"]))
        data: dict[str, Any] = _order(id=draw(_TASK_IDS))
        if pickup != "none":
            data["pickup"] = {"location": {"x": 1, "y": 1}}
            if pickup == "own":
                data["pickup"]["id"] = draw(_TASK_IDS)
        orders.append(Order.model_validate(data))
    return orders


@given(_pickup_orders())
def test_pickup_ids_check_decides_as_before(orders: list[Order]) -> None:
    """The check with its fast path for an order without a pickup, its error's words made
    only for an error, refuses what it refused, naming the same field in the same words."""
    expected = _pickup_ids_reference(orders)
    if expected is None:
        _check_pickup_ids(orders)
        return
    with pytest.raises(FieldError) as caught:
        _check_pickup_ids(orders)
    path, reason = expected
    assert caught.value.path == path
    if reason != "too long":
        assert caught.value.reason == reason


@given(
    st.lists(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=3), max_size=4),
    st.tuples(st.integers(0, 200), st.integers(0, 200)),
)
def test_orders_windows_outside_the_horizon_are_all_named(
    windows: list[list[tuple[int, int]]], horizon: tuple[int, int]
) -> None:
    """Every window of an order lying entirely outside the horizon is a problem, in order
    (the first pass over an order's windows, session 69, skips only orders with none)."""
    lo, hi = min(horizon), max(horizon)
    orders = [
        Order.model_construct(
            id=f"o{i}",
            location=Location(x=0, y=0),
            created_s=0,
            pickup=None,
            time_windows=[TimeWindow(start_s=min(w), end_s=max(w)) for w in ws],
        )
        for i, ws in enumerate(windows)
    ]
    problems = horizon_problems(TimeWindow(start_s=lo, end_s=hi), [], orders)
    expected = [
        (
            ("orders", i, "time_windows", j),
            f"the window [{min(w)}, {max(w)}] s lies entirely outside the horizon "
            f"[{lo}, {hi}] s: the delivery could never be made in it",
        )
        for i, ws in enumerate(windows)
        for j, w in enumerate(ws)
        if max(w) < lo or min(w) > hi
    ]
    assert problems == expected
