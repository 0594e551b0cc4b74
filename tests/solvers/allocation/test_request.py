"""Request validation (bad input names the field) and the mapping from a Scenario."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scenarios.errors import InputError, input_error_from_validation
from scenarios.generate import generate_city
from scenarios.geo import (
    CONTROL_CHARACTERS_REASON,
    MAX_ID_LENGTH,
    MAX_INT,
    NOT_BOOL_REASON,
    Location,
)
from scenarios.io.json_io import from_json
from scenarios.model import SAFETY_STOCK_REASON, FulfilmentNode, OrderLine, Scenario
from solvers.allocation import (
    AllocationCosts,
    AllocationParams,
    AllocationRequest,
    AllocationRules,
    allocate,
)
from solvers.allocation.request import AllocationNode, nodes_from_scenario

from .conftest import node, order


def _field_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as err:
        AllocationRequest.model_validate(data)
    return input_error_from_validation(err.value).field


def test_duplicate_node_id_names_the_field(two_dcs: AllocationRequest) -> None:
    data = two_dcs.model_dump(mode="json")
    data["nodes"][1]["id"] = data["nodes"][0]["id"]
    assert _field_of(data) == "nodes.1.id"


def _hours(*pairs: tuple[int, int]) -> list[dict[str, int]]:
    return [{"start_s": a, "end_s": b} for a, b in pairs]


def _disjoint(start: int, end: int) -> str:
    return (
        f"windows must be sorted and disjoint; starts at {start} s, not after the previous "
        f"window's end {end} s"
    )


_KEY_TOO_SHORT = "Key should have at least 1 character"
_KEY_TOO_LONG = f"Key should have at most {MAX_ID_LENGTH} characters"


@pytest.mark.parametrize("model", [FulfilmentNode, AllocationNode])
@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        # closed windows: two that touch share their end second
        ({"opening_hours": _hours((0, 50), (50, 90))}, "opening_hours.1", _disjoint(50, 50)),
        ({"opening_hours": _hours((0, 60), (50, 90))}, "opening_hours.1", _disjoint(50, 60)),
        ({"opening_hours": _hours((0, 50), (0, 50))}, "opening_hours.1", _disjoint(0, 50)),
        ({"opening_hours": _hours((100, 200), (0, 50))}, "opening_hours.1", _disjoint(0, 200)),
        ({"inventory": {"a\tb": 1}}, "inventory.a\\tb", CONTROL_CHARACTERS_REASON),
        ({"safety_stock": {"a\nb": 1}}, "safety_stock.a\\nb", CONTROL_CHARACTERS_REASON),
        # a SKU id as a key is an order line's sku: 1 to 200 characters (no line names
        # another: an empty or longer key was taken, stock no order could ever be given)
        ({"inventory": {"a": 1, "": 2}}, "inventory.", _KEY_TOO_SHORT),
        ({"safety_stock": {"": 1}}, "safety_stock.", _KEY_TOO_SHORT),
        ({"inventory": {"s" * 201: 1}}, f"inventory.{'s' * 201}", _KEY_TOO_LONG),
        ({"safety_stock": {"s" * 201: 1}}, f"safety_stock.{'s' * 201}", _KEY_TOO_LONG),
        # both wrong: the hours are named first
        (
            {"opening_hours": _hours((0, 60), (50, 90)), "inventory": {"a\x01": 1}},
            "opening_hours.1",
            _disjoint(50, 60),
        ),
    ],
)
def test_the_scenario_node_and_the_allocation_node_refuse_alike(
    model: type[FulfilmentNode | AllocationNode], extra: dict[str, Any], field: str, reason: str
) -> None:
    """The two node models share their checks (:class:`scenarios.model.StockedNode`): a bad
    node is refused with the same field and reason by both, so a request and a scenario
    report it alike (each once had its own copy of the checks)."""
    with pytest.raises(ValidationError) as err:
        model.model_validate({"id": "n", "location": {"lat": 1.0, "lon": 2.0}, **extra})
    problem = input_error_from_validation(err.value)
    assert (problem.field, problem.reason) == (field, reason)


_AT_LEAST_0 = "Input should be greater than or equal to 0"


@pytest.mark.parametrize("model", [FulfilmentNode, AllocationNode])
def test_a_sku_key_of_the_longest_id_is_taken_by_both_node_models(
    model: type[FulfilmentNode | AllocationNode],
) -> None:
    """The key's rule is the order line's ``sku`` rule: 200 characters is an id, as a key."""
    sku = "s" * MAX_ID_LENGTH
    node = model.model_validate(
        {
            "id": "n",
            "location": {"lat": 1.0, "lon": 2.0},
            "inventory": {sku: 3},
            "safety_stock": {sku: 1},
        }
    )
    assert node.inventory == {sku: 3} and node.safety_stock_for(sku) == 1
    assert OrderLine(sku=sku, quantity=1).sku == sku


@pytest.mark.parametrize(
    ("sku", "field", "reason"),
    [
        ("", "rules.restricted_skus.", _KEY_TOO_SHORT),
        ("s" * 201, f"rules.restricted_skus.{'s' * 201}", _KEY_TOO_LONG),
    ],
)
def test_a_restricted_sku_key_is_an_order_line_sku(
    two_dcs: AllocationRequest, sku: str, field: str, reason: str
) -> None:
    """``rules.restricted_skus`` is keyed by SKU id: an empty or 201-character key (no order
    line can name it) was taken, and restricted nothing."""
    data = two_dcs.model_dump(mode="json")
    data["rules"]["restricted_skus"] = {sku: ["east"]}
    assert _field_of(data) == field
    with pytest.raises(ValidationError) as err:
        AllocationRequest.model_validate(data)
    assert input_error_from_validation(err.value).reason == reason
    data["rules"]["restricted_skus"] = {"s" * MAX_ID_LENGTH: ["east"]}
    assert AllocationRequest.model_validate(data).rules.restricted_skus


@pytest.mark.parametrize("model", [FulfilmentNode, AllocationNode])
@pytest.mark.parametrize(
    ("safety_stock", "field", "reason"),
    [
        ({"a": 1, "b": -1}, "safety_stock.b", _AT_LEAST_0),
        ({"a": True}, "safety_stock.a", NOT_BOOL_REASON),
        ({"a": "x"}, "safety_stock.a", "Input should be a valid integer"),
        ({"a": "3"}, "safety_stock.a", "Input should be a valid integer"),  # no numeric strings
        (-1, "safety_stock", _AT_LEAST_0),
        (True, "safety_stock", NOT_BOOL_REASON),
        ([1], "safety_stock", SAFETY_STOCK_REASON),
        (None, "safety_stock", SAFETY_STOCK_REASON),
    ],
)
def test_a_bad_safety_stock_is_named_in_the_form_it_was_given(
    model: type[FulfilmentNode | AllocationNode], safety_stock: object, field: str, reason: str
) -> None:
    """A safety stock by SKU with a bad value was reported by the one-number form, on the
    whole field (``safety_stock: Input should be a valid integer (and 1 more error)`` for
    ``{"b": -1}``); a bad number carried the other form's "(and 1 more error)". Now the form
    is told from the input: the error names the SKU's value, and says what it is."""
    with pytest.raises(ValidationError) as err:
        model.model_validate(
            {"id": "n", "location": {"lat": 1.0, "lon": 2.0}, "safety_stock": safety_stock}
        )
    problem = input_error_from_validation(err.value)
    assert problem.field == field
    assert problem.reason.startswith(reason) and "more error" not in problem.reason


@pytest.mark.parametrize("model", [FulfilmentNode, AllocationNode])
def test_the_scenario_node_and_the_allocation_node_keep_the_same_safety_stock(
    model: type[FulfilmentNode | AllocationNode],
) -> None:
    """No hours is always open, no safety stock is 0, one number holds for every SKU, a
    mapping for its SKUs (0 for the others): in both node models. The store floor is no
    part of it (an allocation rule, applied when the request is compiled)."""
    at = {"id": "n", "kind": "store", "location": {"lat": 1.0, "lon": 2.0}}
    bare = model.model_validate({**at, "opening_hours": []})
    assert bare.opening_hours == [] and bare.safety_stock == 0
    assert bare.safety_stock_for("a") == 0
    one = model.model_validate({**at, "inventory": {"a": 5}, "safety_stock": 2})
    assert [one.safety_stock_for(s) for s in ("a", "z")] == [2, 2]
    per_sku = model.model_validate({**at, "inventory": {"a": 5}, "safety_stock": {"a": 7}})
    assert [per_sku.safety_stock_for(s) for s in ("a", "z")] == [7, 0]


def test_a_mapped_scenario_node_keeps_its_safety_stock() -> None:
    """:func:`nodes_from_scenario` hands each node's safety stock on unchanged: the
    allocation node keeps the same units of every SKU on the shelf as the scenario's."""
    at = {"location": {"x": 1, "y": 2}, "inventory": {"a": 5, "b": 1}}
    scenario = Scenario.model_validate(
        {
            "nodes": [
                {"id": "dc", **at, "safety_stock": 3},
                {"id": "store", "kind": "store", **at, "safety_stock": {"a": 2}},
            ]
        }
    )
    mapped = nodes_from_scenario(scenario)
    for ours, theirs in zip(scenario.nodes, mapped, strict=True):
        for sku in ("a", "b", "z"):
            assert theirs.safety_stock_for(sku) == ours.safety_stock_for(sku), (ours.id, sku)
    assert [n.safety_stock_for("b") for n in mapped] == [3, 0]


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


def test_from_scenario_without_orders_on_planar_nodes_allocates_nothing() -> None:
    """No order with lines left no distance matrix, and planar nodes then failed the
    request's check (``nodes.0.location: needs lat/lon``: a field of no request): a plan,
    or a re-optimisation whose new orders had no lines, was a 422 on it."""
    from scenarios.model import FulfilmentNode, Scenario

    scenario = Scenario(
        nodes=[FulfilmentNode(id="dc", location=Location(x=0, y=0), inventory={"tea": 3})],
    )
    req = AllocationRequest.from_scenario(scenario)
    assert req.orders == [] and req.distance_km == [[]] and req.travel_s == [[]]
    assert allocate(req).assignments == []


def test_from_scenario_counts_a_transit_past_the_integer_limit_as_the_limit() -> None:
    """A travel model whose transit passes MAX_INT s (a valid slow, far euclidean one) was
    handed to the request as it was: a ValidationError on ``travel_s.0.0``, a field of no
    scenario (``dispatchlab allocate --scenario`` exit 2 on it). As for a request, the
    transit counts as MAX_INT s: late for every promise."""
    from scenarios.model import FulfilmentNode, Order, OrderLine, Scenario
    from scenarios.travel import EuclideanTravel

    scenario = Scenario(
        travel=EuclideanTravel(metres_per_unit=1e6, speed_m_per_s=1e-3),
        nodes=[FulfilmentNode(id="dc", location=Location(x=0, y=0), inventory={"tea": 3})],
        orders=[
            Order(
                id="far", location=Location(x=1e9, y=0), lines=[OrderLine(sku="tea", quantity=1)]
            ),
            Order(id="near", location=Location(x=1, y=0), lines=[OrderLine(sku="tea", quantity=1)]),
        ],
    )
    req = AllocationRequest.from_scenario(scenario)
    assert req.travel_s == [[MAX_INT, 10**9]]
    assert req.distance_km == [[1e12, 1000.0]]
    result = allocate(req, AllocationParams(time_limit_s=5))
    assert sorted(a.order_id for a in result.assignments) == ["far", "near"]


@settings(max_examples=60, deadline=None)
@given(
    x=st.floats(-1e9, 1e9),
    scale=st.floats(1e-3, 1e6),
    speed=st.floats(1e-3, 1e3),
)
def test_from_scenario_maps_every_valid_euclidean_travel(
    x: float, scale: float, speed: float
) -> None:
    """Whatever a valid euclidean travel model says, the mapped request is valid: transit
    within MAX_INT s, distances finite."""
    from scenarios.model import FulfilmentNode, Order, OrderLine, Scenario
    from scenarios.travel import EuclideanTravel

    scenario = Scenario(
        travel=EuclideanTravel(metres_per_unit=scale, speed_m_per_s=speed),
        nodes=[FulfilmentNode(id="dc", location=Location(x=0, y=0), inventory={"tea": 3})],
        orders=[
            Order(id="o", location=Location(x=x, y=-x), lines=[OrderLine(sku="tea", quantity=1)])
        ],
    )
    req = AllocationRequest.from_scenario(scenario)
    assert req.travel_s is not None and 0 <= req.travel_s[0][0] <= MAX_INT
    assert req.distance_km is not None and req.distance_km[0][0] >= 0.0


def test_from_scenario_with_nodes_refuses_an_order_without_lines() -> None:
    """With nodes, an order without lines was left out of the request: a plan gave it no
    route and no word. Without nodes the orders are courier jobs: nothing to allocate."""
    from scenarios.model import FulfilmentNode, Order, OrderLine, Scenario

    orders = [
        Order(id="o1", location=Location(x=100, y=0), lines=[OrderLine(sku="tea", quantity=1)]),
        Order(id="o2", location=Location(x=100, y=0)),
    ]
    dc = FulfilmentNode(id="dc", location=Location(x=0, y=0), inventory={"tea": 3})
    with pytest.raises(InputError) as err:
        AllocationRequest.from_scenario(Scenario(nodes=[dc], orders=orders))
    assert err.value.field == "orders.1.lines"
    assert err.value.reason.startswith("has no lines: with fulfilment nodes each order is ")
    # no nodes: nothing can ship (planar orders needed lat/lon: no matrix was built)
    req = AllocationRequest.from_scenario(Scenario(orders=orders))
    assert [o.id for o in req.orders] == ["o1"] and req.distance_km == []
    assert [u.order_id for u in allocate(req).unfilled] == ["o1"]


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


def test_a_transit_past_the_integer_range_is_late_not_early(scarce: AllocationRequest) -> None:
    """A speed near 0 made transit times past int64: cast, they were INT64_MIN (an arrival
    at -9.2e18 s, its lateness wrapped around to +9.2e18 s); now the transit is MAX_INT s."""
    data = scarce.model_dump(mode="json")
    data["rules"]["speed_kmh"] = 1e-300
    data["costs"].update(late_shipment=1.0, late_per_hour=1e-6, unfilled_unit=1e4)
    result = allocate(AllocationRequest.model_validate(data))
    assert result.cost.total_micros >= 0
    # the far DC's parcel (to the standard order, promised by 3600 s) is late and priced;
    # the store next to the orders is not
    assert result.kpis.late_shipments == 1
    assert result.cost.lateness == pytest.approx(1.0 + 1e-6 * (MAX_INT - 3600) / 3600, abs=1e-5)


@pytest.mark.parametrize(
    ("change", "field", "remedy"),
    [
        ({"distance_km": [[1e308, 1.0, 1.0], [1.0, 1.0, 1.0]]}, "distance_km.0.0", "the distance"),
        (
            {"travel_s": [[MAX_INT] * 3] * 2, "costs": {"late_per_hour": 1e7}},
            "costs.late_per_hour",
            "the lateness",
        ),
    ],
)  # fmt: skip
def test_prices_past_the_solver_range_are_input_errors(
    two_dcs: AllocationRequest, change: dict[str, Any], field: str, remedy: str
) -> None:
    """They were cast to int64 as garbage: a negative total cost, answered as optimal."""
    data = two_dcs.model_dump(mode="json")
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    for order_ in data["orders"]:
        order_["promise_by_s"] = 0
    with pytest.raises(InputError) as err:
        allocate(AllocationRequest.model_validate(data))
    assert err.value.field == field and "more than" in err.value.reason
    # (the lateness case said "lower the price or the distance")
    assert f"lower the price or {remedy}" in err.value.reason


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    speed=st.floats(min_value=1e-300, max_value=1e4, exclude_min=False),
    distance=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e308)),
    transit=st.one_of(st.none(), st.integers(min_value=0, max_value=MAX_INT)),
    late_per_hour=st.floats(min_value=0.0, max_value=1e7),
    per_unit_distance=st.floats(min_value=0.0, max_value=1e7),
    vip=st.booleans(),
    allow_unfilled=st.booleans(),
    mode=st.sampled_from(["online", "batch"]),
)
def test_extreme_prices_and_distances_give_a_sane_answer_or_an_input_error(
    two_dcs: AllocationRequest,
    speed: float,
    distance: float | None,
    transit: int | None,
    late_per_hour: float,
    per_unit_distance: float,
    vip: bool,
    allow_unfilled: bool,
    mode: str,
) -> None:
    """Whatever the (valid) extremes, no cost part is negative and the parts add up."""
    data = two_dcs.model_dump(mode="json")
    data["rules"].update(speed_kmh=speed, vip_priority=1000.0, allow_unfilled=allow_unfilled)
    data["costs"].update(late_per_hour=late_per_hour, per_unit_distance=per_unit_distance)
    if distance is not None:
        data["distance_km"] = [[distance, 1.0, distance], [1.0, distance, 1.0]]
    if transit is not None:
        data["travel_s"] = [[transit, 0, transit], [0, transit, 0]]
    for order_ in data["orders"]:
        order_.update(promise_by_s=3600, tier="vip" if vip else "standard")
    try:
        result = allocate(
            AllocationRequest.model_validate(data),
            AllocationParams(mode=mode, time_limit_s=5.0, explain=False),
        )
    except InputError as err:
        assert err.field.partition(".")[0] in {"costs", "distance_km", "orders"}, err
        assert "more than" in err.reason
        return
    cost = result.cost
    parts = [cost.shipping, cost.handling, cost.split, cost.lateness, cost.unfilled]
    assert cost.total_micros >= 0 and min(parts) >= 0
    assert cost.total == pytest.approx(sum(parts), abs=1e-5)
