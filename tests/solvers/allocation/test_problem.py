"""Compiling a request: rules remove candidates, costs become exact micro-units."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.geo import TimeWindow
from scenarios.model import NodeKind, Tier
from solvers.allocation import (
    AllocationCosts,
    AllocationParams,
    AllocationRequest,
    AllocationRules,
    allocate,
    literature_costs,
)
from solvers.allocation.problem import MICRO, Problem, compile_request, to_micro
from solvers.allocation.request import KM_PER_MILE

from .conftest import SIMPLE_COSTS, brute_force, node, order


def _arcs(prob: Problem, order_id: str) -> set[tuple[str, str]]:
    o = prob.order_ids.index(order_id)
    out = set()
    for p in prob.order_pairs(o):
        for a in prob.pair_arcs(p):
            out.add((prob.node_ids[int(prob.pair_node[p])], prob.sku_ids[int(prob.arc_sku[a])]))
    return out


def test_literature_prices_become_exact_micro_units() -> None:
    req = AllocationRequest(
        nodes=[node("fc", 40.0, -75.0, inventory={"a": 3})],
        orders=[order("o", 40.0, -74.0, {"a": 2})],
        costs=literature_costs(),
    )
    prob = compile_request(req)
    assert prob.pair_ship.tolist() == [8_759_000]
    assert prob.per_unit == 423_000
    miles = prob.dist_km[0, 0] / 1.609344
    assert prob.dist_cost[0, 0] == round(0.000541 * miles * MICRO)
    ev = prob.evaluate(np.array([2]))
    assert ev.total == 8_759_000 + 2 * 423_000 + 2 * int(prob.dist_cost[0, 0])
    assert to_micro(8.759) == 8_759_000


def _one_pair(costs: dict[str, object], km: float) -> AllocationRequest:
    """One node and one order ``km`` apart (a distance matrix), priced by ``costs`` (JSON)."""
    return AllocationRequest.model_validate(
        {
            "nodes": [{"id": "n", "location": {"x": 0, "y": 0}, "inventory": {"a": 1}}],
            "orders": [
                {"id": "o", "location": {"x": 0, "y": 0}, "lines": [{"sku": "a", "quantity": 1}]}
            ],
            "costs": costs,
            "distance_km": [[km]],
        }
    )


def test_a_distance_price_without_a_unit_is_per_km() -> None:
    """Issue 4 defines per_unit_distance per unit per km; without distance_unit it was read
    per mile (the old default), charging 1.609x too little per km: 621,371 micro-units here."""
    prob = compile_request(_one_pair({"per_unit_distance": 0.01}, 100.0))
    assert prob.dist_cost[0, 0] == 1_000_000  # 0.01 x 100 km
    miles = compile_request(_one_pair({"per_unit_distance": 0.01, "distance_unit": "mile"}, 100.0))
    assert miles.dist_cost[0, 0] == round(0.01 * 100.0 / KM_PER_MILE * MICRO)


def test_the_default_distance_price_is_the_literature_fit_per_km() -> None:
    """The default prices 0.000541 per unit-mile in km: 541,000 micro-units over 1000 miles."""
    default = AllocationCosts()
    assert default.distance_unit == "km"
    assert default.per_unit_distance * KM_PER_MILE == pytest.approx(0.000541, rel=1e-12)
    assert literature_costs().per_unit_distance == 0.000541
    assert compile_request(_one_pair({}, 1609.344)).dist_cost[0, 0] == 541_000


@given(km=st.floats(0.0, 5000.0))
@settings(max_examples=60, derandomize=True, deadline=None)
def test_the_default_prices_cost_what_the_literature_prices_cost(km: float) -> None:
    """Per km or per mile, the literature fit compiles to the same micro-units, give or take
    the one rounding."""
    per_km = compile_request(_one_pair({}, km)).dist_cost[0, 0]
    literature = {"per_unit_distance": 0.000541, "distance_unit": "mile"}
    per_mile = compile_request(_one_pair(literature, km)).dist_cost[0, 0]
    assert abs(int(per_km) - int(per_mile)) <= 1


def test_rules_remove_candidates() -> None:
    req = AllocationRequest(
        nodes=[
            node("open", 52.0, 13.0, inventory={"a": 5, "b": 5, "x": 5}),
            node("sanctioned", 52.0, 13.1, inventory={"a": 5}),
            node(
                "closed",
                52.0,
                13.2,
                inventory={"a": 5},
                opening_hours=[TimeWindow(start_s=0, end_s=10)],
            ),
            node("slow", 52.0, 13.3, inventory={"a": 5}, lead_time_s=90_000),
            node("store", 52.0, 13.4, kind=NodeKind.STORE, inventory={"a": 3}),
        ],
        orders=[order("o", 52.0, 13.0, {"a": 1, "x": 1}, region="r1", promise_by_s=86_400)],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(
            excluded_nodes={"r1": ["sanctioned"]},
            restricted_skus={"x": ["r1"]},
            promise="forbid",
            now_s=100,
            store_floor_units=3,
        ),
    )
    prob = compile_request(req)
    assert _arcs(prob, "o") == {("open", "a")}
    assert prob.line_restricted.tolist() == [False, True]


def test_safety_stock_is_held_back() -> None:
    req = AllocationRequest(
        nodes=[node("n", 1.0, 1.0, inventory={"a": 5, "b": 2}, safety_stock={"a": 4, "b": 2})],
        orders=[order("o", 1.0, 1.0, {"a": 3, "b": 1})],
        costs=SIMPLE_COSTS,
    )
    prob = compile_request(req)
    assert prob.avail[0].tolist() == [1, 0]
    assert prob.arc_ub.tolist() == [1]


def test_pruning_is_exact_on_a_small_case(two_dcs: AllocationRequest) -> None:
    # a penalty below one parcel's cost makes small parcels pointless: they get pruned
    for penalty in (9.0, 12.0, 50.0):
        costs = SIMPLE_COSTS.model_copy(update={"unfilled_unit": penalty})
        req = two_dcs.model_copy(update={"costs": costs})
        pruned, full = compile_request(req), compile_request(req, prune=False)
        if penalty == 9.0:
            assert pruned.pruned_pairs > 0 and pruned.num_pairs < full.num_pairs
        assert brute_force(pruned)[0] == brute_force(full)[0]


def test_auto_unfilled_penalty_is_twice_the_farthest_shipment() -> None:
    req = AllocationRequest(
        nodes=[node("near", 40.0, -75.0, inventory={"a": 1}), node("far", 30.0, -90.0)],
        orders=[order("o", 40.0, -75.0, {"a": 1})],
        costs=AllocationCosts(),
    )
    prob = compile_request(req)
    far_cost = 8_759_000 + 423_000 + int(prob.dist_cost[1, 0])
    assert prob.line_pen.tolist() == [2 * far_cost]


def test_only_demanded_skus_get_a_column() -> None:
    """A node's whole catalogue in the request costs nothing: stock nobody asks for is left out."""
    catalogue = {f"sku{i}": 5 for i in range(500)}
    big = node("big", 40.0, -75.0, inventory=catalogue, safety_stock={"sku7": 2})
    small = node("small", 40.0, -74.5, kind=NodeKind.STORE, inventory={"sku7": 4, "zzz": 9})
    req = AllocationRequest(
        nodes=[big, small],
        orders=[order("o", 40.0, -74.0, {"sku7": 3, "sku42": 1})],
        costs=SIMPLE_COSTS,
    )
    prob = compile_request(req)
    assert prob.sku_ids == ["sku7", "sku42"]
    assert prob.inventory.tolist() == [[5, 5], [4, 0]]
    assert prob.avail.tolist() == [[3, 5], [4, 0]]


def test_order_costs_add_up_to_the_total(two_dcs: AllocationRequest) -> None:
    prob = compile_request(two_dcs)
    x = brute_force(prob)[1]
    costs = prob.order_costs(x)
    assert costs.sum() == prob.evaluate(x).total
    assert prob.order_costs(np.zeros_like(x)).sum() == prob.constant
    # one order's cost is its own pattern's cost
    first = np.zeros_like(x)
    arcs = np.flatnonzero(prob.pair_order[prob.arc_pair] == 0)
    first[arcs] = x[arcs]
    assert costs[0] == prob.order_costs(first)[0]


@st.composite
def _stocked_requests(draw: st.DrawFn) -> AllocationRequest:
    """2-5 nodes (DCs and stores) holding 0-5 of SKUs a-d, safety stock as one number or per
    SKU, a store floor; two orders of 1-3 SKUs each."""
    skus = ["a", "b", "c", "d"]
    nodes = [
        node(
            f"n{i}",
            52.0,
            13.0 + i / 10,
            kind=draw(st.sampled_from([NodeKind.DC, NodeKind.STORE, NodeKind.DARK_STORE])),
            inventory=draw(st.dictionaries(st.sampled_from(skus), st.integers(0, 5))),
            safety_stock=draw(
                st.integers(0, 3) | st.dictionaries(st.sampled_from(skus), st.integers(0, 3))
            ),
        )
        for i in range(draw(st.integers(2, 5)))
    ]
    orders = [
        order(
            f"o{j}",
            52.0,
            13.0,
            dict.fromkeys(draw(st.lists(st.sampled_from(skus), min_size=1, max_size=3)), 1),
        )
        for j in range(2)
    ]
    rules = AllocationRules(store_floor_units=draw(st.integers(0, 2)))
    return AllocationRequest(nodes=nodes, orders=orders, costs=SIMPLE_COSTS, rules=rules)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(_stocked_requests())
def test_stock_is_what_each_node_holds_above_its_floor(req: AllocationRequest) -> None:
    """Units held and free per node and SKU: the safety stock (the store floor at stores and
    dark stores, where larger) stays; a compile given another compile's stock (of more
    SKUs) takes the same columns."""
    prob = compile_request(req)
    floor = req.rules.store_floor_units
    for n, nd in enumerate(req.nodes):
        for s, sku in enumerate(prob.sku_ids):
            held = nd.inventory.get(sku, 0)
            keep = nd.safety_stock_for(sku)
            if nd.kind in (NodeKind.STORE, NodeKind.DARK_STORE):
                keep = max(keep, floor)
            assert prob.inventory[n, s] == held
            assert prob.avail[n, s] == max(held - keep, 0)
    one = req.model_copy(update={"orders": req.orders[1:]})
    given_stock = compile_request(one, stock=(prob.sku_ids, prob.inventory, prob.avail))
    alone = compile_request(one)
    assert given_stock.sku_ids == alone.sku_ids
    assert np.array_equal(given_stock.inventory, alone.inventory)
    assert np.array_equal(given_stock.avail, alone.avail)
    assert np.array_equal(given_stock.arc_ub, alone.arc_ub)


def test_the_vip_share_is_rounded_down_from_the_decimal_share() -> None:
    """0.35 x 700 = 245 VIP units and 0.35 x 180 = 63 VIP parcels: in floats the products
    are 244.99999999999997 and 62.99999999999999, which the VIP rows took as 244 and 62;
    a VIP order of 245 units at the node left one unit unfilled."""
    dc = node("dc", 52.0, 13.0, inventory={"a": 1000}, capacity_units=700, capacity_orders=180)
    req = AllocationRequest(
        nodes=[dc],
        orders=[order("vip", 52.0, 13.0, {"a": 245}, tier=Tier.VIP)],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(vip_capacity_share=0.35),
    )
    prob = compile_request(req)
    assert prob.vip_cap_units.tolist() == [245]
    assert prob.vip_cap_orders.tolist() == [63]
    # shares exact in floats are unchanged, and the share is still rounded down
    for share, cap, want in ((0.5, 7, 3), (0.29, 100, 29), (0.1, 3, 0), (0.57, 7, 3)):
        capped = dc.model_copy(update={"capacity_units": cap})
        rules = AllocationRules(vip_capacity_share=share)
        one = compile_request(req.model_copy(update={"rules": rules, "nodes": [capped]}))
        assert one.vip_cap_units.tolist() == [want], (share, cap)
    result = allocate(req, AllocationParams(mip_rel_gap=0.0))
    assert [(a.node_id, a.quantity) for a in result.assignments] == [("dc", 245)]
    assert result.unfilled == []


def test_the_hard_unfilled_penalty_is_exactly_100_times_the_penalty() -> None:
    """Under ``allow_unfilled: false`` a unit costs 100 x its (VIP) penalty, in integers: a
    VIP penalty of ~1e16 micro-units multiplied in floats came out off by up to 64 (not a
    multiple of 100), so a total cost no longer matched its documented parts."""
    req = AllocationRequest(
        nodes=[node("dc", 52.0, 13.0, inventory={"b": 1})],
        orders=[order("o", 52.0, 13.0, {"a": 1, "b": 1}, tier=Tier.VIP)],
        costs=SIMPLE_COSTS.model_copy(update={"unfilled_unit": 9_999_999.999999}),
        rules=AllocationRules(allow_unfilled=False, vip_priority=999.7),
    )
    prob = compile_request(req)
    vip_penalty = math.floor(9_999_999_999_999 * 999.7 + 0.5)  # micro-units, rounded once
    assert prob.line_pen.tolist() == [100 * vip_penalty] * 2
    result = allocate(req, AllocationParams(mip_rel_gap=0.0))
    assert [u.sku for u in result.unfilled] == ["a"]
    assert result.cost.total_micros == prob.evaluate(np.array([1])).total
    assert prob.evaluate(np.zeros(1, dtype=np.int64)).unfilled == 2 * 100 * vip_penalty
