"""Request validation (bad input names the field) and the mapping from a Scenario."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scenarios.errors import InputError, input_error_from_validation
from scenarios.generate import generate_city
from scenarios.geo import MAX_INT, Location
from scenarios.io.json_io import from_json
from solvers.allocation import AllocationCosts, AllocationRequest, AllocationRules, allocate

from .conftest import node, order


def _field_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as err:
        AllocationRequest.model_validate(data)
    return input_error_from_validation(err.value).field


def test_duplicate_node_id_names_the_field(two_dcs: AllocationRequest) -> None:
    data = two_dcs.model_dump(mode="json")
    data["nodes"][1]["id"] = data["nodes"][0]["id"]
    assert _field_of(data) == "nodes.1.id"


def test_matrix_shape_is_checked(two_dcs: AllocationRequest) -> None:
    data = two_dcs.model_dump(mode="json")
    data["distance_km"] = [[1.0, 2.0, 3.0], [1.0, 2.0]]
    assert _field_of(data) == "distance_km.1"
    data["distance_km"] = [[1.0, 2.0, 3.0]]
    assert _field_of(data) == "distance_km"


def test_planar_location_needs_a_matrix() -> None:
    data = {
        "nodes": [{"id": "n", "location": {"x": 0, "y": 0}}],
        "orders": [
            {"id": "o", "location": {"lat": 1, "lon": 1}, "lines": [{"sku": "a", "quantity": 1}]}
        ],
    }
    assert _field_of(data) == "nodes.0.location"
    data["distance_km"] = [[3.5]]
    AllocationRequest.model_validate(data)


def test_unknown_excluded_node_and_empty_lines(two_dcs: AllocationRequest) -> None:
    data = two_dcs.model_dump(mode="json")
    data["rules"]["excluded_nodes"] = {"east": ["north", "nowhere"]}
    assert _field_of(data) == "rules.excluded_nodes.east.1"
    data = two_dcs.model_dump(mode="json")
    data["orders"][0]["lines"] = []
    assert _field_of(data) == "orders.0.lines"


def test_lines_of_one_sku_may_not_add_up_past_the_integer_limit() -> None:
    data: dict[str, Any] = {
        "nodes": [{"id": "n", "location": {"lat": 1, "lon": 1}, "inventory": {"a": MAX_INT}}],
        "orders": [
            {
                "id": "o",
                "location": {"lat": 1, "lon": 1},
                "lines": [
                    {"sku": "a", "quantity": MAX_INT},
                    {"sku": "b", "quantity": 1},
                    {"sku": "a", "quantity": 1},
                ],
            }
        ],
    }
    # merged into one line of MAX_INT + 1 units, which no answer could report
    assert _field_of(data) == "orders.0.lines.2.quantity"
    data["orders"][0]["lines"][0]["quantity"] = MAX_INT - 1
    AllocationRequest.model_validate(data)


def test_units_over_every_order_may_pass_the_integer_limit() -> None:
    # each order within the limit, together above it: the answer reports the totals
    req = AllocationRequest(
        nodes=[node("n", 52.0, 13.0, inventory={"a": MAX_INT, "b": MAX_INT})],
        orders=[order("o1", 52.0, 13.0, {"a": MAX_INT}), order("o2", 52.0, 13.0, {"b": MAX_INT})],
        costs=AllocationCosts(unfilled_unit=1.0, per_unit=0.1),
    )
    result = allocate(req)
    assert result.kpis.units_ordered == 2 * MAX_INT
    assert result.kpis.units_unfilled == 0
    assert sum(a.quantity for a in result.assignments) == 2 * MAX_INT


def test_negative_and_nan_prices_are_rejected(two_dcs: AllocationRequest) -> None:
    data = two_dcs.model_dump(mode="json")
    data["costs"]["per_unit"] = -1
    assert _field_of(data) == "costs.per_unit"
    with pytest.raises(InputError) as err:
        from_json(AllocationRequest, '{"costs": {"per_shipment": NaN}}', source="req.json")
    assert "costs.per_shipment" in err.value.one_line()


def test_integers_beyond_the_limit_are_rejected(two_dcs: AllocationRequest) -> None:
    data = two_dcs.model_dump(mode="json")
    data["orders"][0]["lines"][0]["quantity"] = 10**30
    assert _field_of(data) == "orders.0.lines.0.quantity"
    data = two_dcs.model_dump(mode="json")
    data["nodes"][0]["capacity_units"] = 2**63
    assert _field_of(data) == "nodes.0.capacity_units"


def test_totals_that_overflow_are_input_errors(two_dcs: AllocationRequest) -> None:
    data = two_dcs.model_dump(mode="json")
    data["orders"][0]["lines"][0]["quantity"] = 10**12
    data["costs"]["unfilled_unit"] = 1e7
    with pytest.raises(InputError) as err:
        allocate(AllocationRequest.model_validate(data))
    assert err.value.field == "orders"
    assert "could cost" in err.value.reason


def test_allocate_rejects_a_non_request() -> None:
    with pytest.raises(InputError) as err:
        allocate({"nodes": []})  # type: ignore[arg-type]
    assert err.value.field == "request"


def test_from_scenario_maps_the_domain_model() -> None:
    scenario = generate_city(seed=3, num_orders=12, num_nodes=3, num_couriers=2)
    req = AllocationRequest.from_scenario(scenario, rules=AllocationRules(max_nodes_per_order=2))
    assert [n.id for n in req.nodes] == [n.id for n in scenario.nodes]
    assert len(req.orders) == sum(1 for o in scenario.orders if o.lines)
    assert req.distance_km is not None and len(req.distance_km) == len(req.nodes)
    assert req.rules.max_nodes_per_order == 2
    first = scenario.nodes[0]
    assert req.nodes[0].handling_cost_per_unit == pytest.approx(
        first.handling_cost_cents_per_unit / 100
    )
    assert req.nodes[0].lead_time_s == first.processing_s
    restricted = {s.id for s in scenario.skus if s.restricted_regions}
    assert restricted <= set(req.rules.restricted_skus)
    windowed = next(o for o in scenario.orders if o.time_windows and o.lines)
    mapped = next(o for o in req.orders if o.id == windowed.id)
    assert mapped.promise_by_s == windowed.time_windows[-1].end_s
    result = allocate(req)
    assert {a.order_id for a in result.assignments} <= {o.id for o in req.orders}


def test_from_scenario_names_the_scenario_field() -> None:
    scenario = generate_city(seed=3, num_orders=12, num_nodes=3, num_couriers=2)
    nodes = list(scenario.nodes)
    nodes[2] = nodes[2].model_copy(update={"handling_cost_cents_per_unit": 10**10})
    with pytest.raises(InputError) as err:
        AllocationRequest.from_scenario(scenario.model_copy(update={"nodes": nodes}))
    assert err.value.field == "nodes.2.handling_cost_cents_per_unit"
    assert "at most 1000000000 cents" in err.value.reason


def test_json_round_trip_of_request_and_result(two_dcs: AllocationRequest) -> None:
    text = two_dcs.model_dump_json()
    assert from_json(AllocationRequest, text) == two_dcs
    result = allocate(two_dcs)
    again = type(result).model_validate_json(result.model_dump_json())
    assert again == result


def test_locations_may_also_carry_an_index() -> None:
    req = AllocationRequest(
        nodes=[node("n", 1.0, 1.0, inventory={"a": 1})],
        orders=[order("o", 1.0, 1.0, {"a": 1})],
    )
    assert req.orders[0].location == Location(lat=1.0, lon=1.0)
