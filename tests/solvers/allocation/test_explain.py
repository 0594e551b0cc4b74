"""Explanations name the limit that really stopped an order (unfilled reasons, held stock)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import solvers.allocation.explain as explain_module
from scenarios.geo import TimeWindow
from scenarios.model import NodeKind, Tier
from solvers.allocation import (
    AllocationNode,
    AllocationParams,
    AllocationRequest,
    AllocationRules,
    AllocationStatus,
    ReasonKind,
    UnfilledReason,
    allocate,
)
from solvers.allocation.problem import compile_request

from .conftest import SIMPLE_COSTS, node, order

EXACT = AllocationParams(mip_rel_gap=0.0, time_limit_s=30)


def _unfilled(req: AllocationRequest) -> dict[str, tuple[UnfilledReason, str]]:
    result = allocate(req, EXACT)
    return {u.order_id: (u.reason, u.detail) for u in result.unfilled}


def test_a_node_without_capacity_is_a_capacity_reason_not_cost() -> None:
    req = AllocationRequest(
        nodes=[node("dc", 52.0, 13.0, inventory={"a": 9}, capacity_orders=0)],
        orders=[order("o", 52.0, 13.0, {"a": 2})],
        costs=SIMPLE_COSTS,
    )
    reason, detail = _unfilled(req)["o"]
    assert reason == UnfilledReason.CAPACITY
    assert "dc" in detail


def test_a_zero_vip_share_is_a_capacity_reason_for_a_vip_order() -> None:
    req = AllocationRequest(
        nodes=[node("dc", 52.0, 13.0, inventory={"a": 9}, capacity_units=10)],
        orders=[order("vip", 52.0, 13.0, {"a": 2}, tier=Tier.VIP)],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(vip_capacity_share=0.0),
    )
    reason, detail = _unfilled(req)["vip"]
    assert reason == UnfilledReason.CAPACITY
    assert "VIP" in detail and "dc" in detail


def test_stock_the_order_took_itself_did_not_go_to_other_orders() -> None:
    req = AllocationRequest(
        nodes=[node("dc", 52.0, 13.0, inventory={"a": 3})],
        orders=[order("o1", 52.0, 13.0, {"a": 5}), order("o2", 52.0, 13.0, {"a": 1})],
        costs=SIMPLE_COSTS,
    )
    result = allocate(req, EXACT)
    took = {a.order_id: a.quantity for a in result.assignments}
    reasons = {u.order_id: (u.reason, u.detail) for u in result.unfilled}
    assert all(r == UnfilledReason.STOCK_EXHAUSTED for r, _ in reasons.values())
    for order_id, (_, detail) in reasons.items():
        # only an order that other orders left short is told so
        shared = took.get(order_id, 0) < 3
        assert ("other orders" in detail) == shared, (order_id, detail)


def test_no_safety_stock_reason_where_nothing_is_held_back() -> None:
    # the near DC holds 3 with no safety stock; the order wants 5 and splits
    req = AllocationRequest(
        nodes=[
            node("near", 52.0, 13.0, inventory={"a": 3}),
            node("far", 51.0, 13.0, inventory={"a": 1}),
        ],
        orders=[order("o1", 52.0, 13.0, {"a": 3}), order("o2", 52.0, 13.0, {"a": 5})],
        costs=SIMPLE_COSTS,
    )
    result = allocate(req, EXACT)
    rules = [r.rule for e in result.explanations for r in e.reasons]
    assert "safety_stock" not in rules


def test_the_store_floor_is_named_where_it_holds_stock_back() -> None:
    req = AllocationRequest(
        nodes=[
            node("store", 52.0, 13.0, kind=NodeKind.STORE, inventory={"a": 4}, safety_stock=1),
            node("dc", 51.0, 13.0, inventory={"a": 9}),
        ],
        orders=[order("o", 52.0, 13.0, {"a": 3})],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(store_floor_units=2),
    )
    result = allocate(req, EXACT)
    assert [a.node_id for a in result.assignments] == ["dc"]
    held = [r for r in result.explanations[0].reasons if r.node_id == "store"]
    assert [r.rule for r in held] == ["store_floor_units"]
    # a DC's own safety stock keeps its name
    dc_first = req.model_copy(
        update={
            "nodes": [
                node("near", 52.0, 13.0, inventory={"a": 4}, safety_stock=2),
                node("dc", 51.0, 13.0, inventory={"a": 9}),
            ]
        }
    )
    result = allocate(dc_first, EXACT)
    assert [r.rule for r in result.explanations[0].reasons if r.node_id == "near"] == [
        "safety_stock"
    ]
    # with nothing free to ship at all, the unfilled line names the rule
    empty = req.model_copy(
        update={"nodes": [node("store", 52.0, 13.0, kind=NodeKind.STORE, inventory={"a": 2})]}
    )
    reason, detail = _unfilled(empty)["o"]
    assert reason == UnfilledReason.SAFETY_STOCK and "store_floor_units" in detail


def test_a_used_up_vip_share_is_a_capacity_reason() -> None:
    # room for two parcels, one of them VIP: the second VIP order cannot ship
    req = AllocationRequest(
        nodes=[node("dc", 52.0, 13.0, inventory={"a": 9}, capacity_orders=2)],
        orders=[
            order("v1", 52.0, 13.0, {"a": 1}, tier=Tier.VIP),
            order("v2", 52.0, 13.0, {"a": 1}, tier=Tier.VIP),
        ],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(vip_capacity_share=0.5),
    )
    reasons = list(_unfilled(req).values())
    assert len(reasons) == 1
    reason, detail = reasons[0]
    assert reason == UnfilledReason.CAPACITY and "VIP" in detail


def _binding_kinds(req: AllocationRequest, order_id: str) -> list[tuple[str, str | None]]:
    result = allocate(req, EXACT)
    assert result.status == "optimal"
    ex = next(e for e in result.explanations if e.order_id == order_id)
    assert not any("optimality gap" in r.message for r in ex.reasons), ex
    return [(r.kind.value, r.node_id) for r in ex.reasons if r.kind.value != "unfilled"]


def test_stock_taken_at_a_node_the_order_ships_from_is_named() -> None:
    # dc holds 3; the VIP order takes 2, so o gets 1 of its 2 units from dc: the stock
    # taken by the VIP order stopped it (not "the optimality gap" of an optimal answer)
    req = AllocationRequest(
        nodes=[node("dc", 52.0, 13.0, inventory={"a": 3})],
        orders=[
            order("vip", 52.0, 13.0, {"a": 2}, tier=Tier.VIP),
            order("o", 52.0, 13.0, {"a": 2}),
        ],
        costs=SIMPLE_COSTS,
    )
    assert _binding_kinds(req, "o") == [("stock", "dc")]


def test_unit_capacity_is_checked_over_all_lines_the_order_wants_from_a_node() -> None:
    # near ships 2 units; o1 (only near holds c) takes 1, so o2 wants 2 from near and gets
    # none: each of its lines alone would fit in the unit left, both together do not
    req = AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 5, "b": 5, "c": 5}, capacity_units=2),
            node("far", 0.0, 0.0, inventory={"a": 5, "b": 5}),
        ],
        orders=[order("o1", 0.0, 0.0, {"c": 1}), order("o2", 0.0, 0.0, {"a": 1, "b": 1})],
        costs=SIMPLE_COSTS,
        distance_km=[[0.0, 0.0], [100.0, 100.0]],
    )
    result = allocate(req, EXACT)
    assert {a.node_id for a in result.assignments if a.order_id == "o2"} == {"far"}
    assert _binding_kinds(req, "o2") == [("capacity", "near")]


def test_a_shut_node_that_would_pay_off_is_the_reason_not_cost() -> None:
    # near would ship the unit but has no unit capacity; far costs more than backordering
    req = AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 5}, capacity_units=0),
            node("far", 0.0, 0.0, inventory={"a": 5}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 1})],
        costs=SIMPLE_COSTS,
        distance_km=[[1.0], [5000.0]],
    )
    reason, detail = _unfilled(req)["o"]
    assert reason == UnfilledReason.CAPACITY
    assert "near" in detail and "far" not in detail
    # without the near node's capacity limit it ships from there
    open_near = req.model_copy(
        update={"nodes": [node("near", 0.0, 0.0, inventory={"a": 5}), req.nodes[1]]}
    )
    assert _unfilled(open_near) == {}
    # a shut node that would not pay off either leaves the reason with the cost
    dear = req.model_copy(update={"distance_km": [[5000.0], [5000.0]]})
    assert _unfilled(dear)["o"][0] == UnfilledReason.COST


def test_a_line_left_short_by_an_answer_not_optimised_does_not_blame_the_cost() -> None:
    # b's parcel from "b-node" (fixed 10 + split 45 + 2 per unit) costs more than leaving
    # b short (50): the optimum leaves it short, and says backordering costs less
    req = AllocationRequest(
        nodes=[
            node("a-node", 0.0, 0.0, inventory={"a": 5}),
            node("b-node", 0.0, 0.0, inventory={"b": 5}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 1, "b": 1})],
        costs=SIMPLE_COSTS.model_copy(update={"split_penalty": 45.0}),
        distance_km=[[0.0], [100.0]],
    )
    result = allocate(req, EXACT)
    assert [(a.sku, a.node_id) for a in result.assignments] == [("a", "a-node")]
    assert [(u.sku, u.reason, u.detail) for u in result.unfilled] == [
        ("b", UnfilledReason.COST, "backordering costs less than shipping it")
    ]
    # an answer that ships nothing (as a baseline or a solve cut short may leave a line):
    # either unit ships for less than its backorder, which was "backordering costs less
    # than shipping it" all the same (under allow_unfilled = false too, beside "not proven
    # impossible: ...")
    prob = compile_request(req)
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    short = explain_module.unfilled_lines(prob, explain_module._world(prob, x), x)
    assert [(u.sku, u.reason, u.detail) for u in short] == [
        (
            sku,
            UnfilledReason.COST,
            f"this answer leaves it short, but shipping it from {sku}-node costs less than "
            "backordering it (the answer is not optimised)",
        )
        for sku in ("a", "b")
    ]


def test_a_rule_is_named_at_the_nearest_node_that_holds_what_the_order_wants() -> None:
    # both nearer nodes are excluded for region r1, but only "held" has stock of a: the
    # nearest one, empty, stopped nothing
    req = AllocationRequest(
        nodes=[
            node("empty", 0.0, 0.0, inventory={"z": 9}),
            node("held", 0.0, 0.0, inventory={"a": 2}, safety_stock=1),
            node("dc", 0.0, 0.0, inventory={"a": 9}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 2}, region="r1")],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(excluded_nodes={"r1": ["empty", "held"]}),
        distance_km=[[1.0], [2.0], [3.0]],
    )
    ex = allocate(req, EXACT).explanations[0]
    assert ex.nodes == ["dc"]
    named = [(r.rule, r.node_id) for r in ex.reasons if r.rule is not None]
    # what "held" keeps as safety stock does not matter: it may not ship here at all
    assert named == [("excluded_nodes", "held")]
    assert "because held may not ship to region r1" in ex.summary


def test_safety_stock_at_the_node_the_order_ships_from_is_named() -> None:
    # dc holds 3 of a and keeps 2: the order gets 1 of its 2 units from dc, the other one is
    # backordered because of the safety stock (the only nearer-node rule check missed it)
    req = AllocationRequest(
        nodes=[node("dc", 52.0, 13.0, inventory={"a": 3}, safety_stock=2)],
        orders=[order("o", 52.0, 13.0, {"a": 2})],
        costs=SIMPLE_COSTS,
    )
    ex = allocate(req, EXACT).explanations[0]
    assert ex.nodes == ["dc"]
    held = [(r.rule, r.node_id, r.sku) for r in ex.reasons if r.rule is not None]
    assert held == [("safety_stock", "dc", "a")]
    assert any("keeps 2 as safety stock" in r.message for r in ex.reasons)
    # enough free stock for the whole line: what dc keeps stops nothing
    plenty = req.model_copy(
        update={"nodes": [node("dc", 52.0, 13.0, inventory={"a": 4}, safety_stock=2)]}
    )
    assert all(r.rule is None for r in allocate(plenty, EXACT).explanations[0].reasons)


def test_a_baseline_choice_that_costs_more_is_not_called_the_cheapest() -> None:
    # the nearest-node baseline ships from "near" although "far" (no handling) costs less
    req = AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 5}, handling_cost_per_unit=5.0),
            node("far", 0.0, 0.0, inventory={"a": 5}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 1})],
        costs=SIMPLE_COSTS,
        distance_km=[[1.0], [2.0]],
    )
    ex = allocate(req, AllocationParams(baseline="nearest")).explanations[0]
    assert ex.nodes == ["near"]
    assert ex.best_alternative is not None and ex.best_alternative.extra_cost < 0
    assert "cheapest option" not in ex.summary.replace("not the cheapest option", "")
    assert "far costs 4.99 less" in ex.summary
    messages = [r.message for r in ex.reasons]
    assert not any("optimality gap" in m for m in messages)
    assert any("nearest baseline does not optimise" in m for m in messages)


def test_a_binding_cap_on_nodes_per_order_is_named() -> None:
    # a and b sit at different nodes; one node per order leaves b unfilled
    req = AllocationRequest(
        nodes=[node("n1", 0.0, 0.0, inventory={"a": 5}), node("n2", 0.0, 0.0, inventory={"b": 5})],
        orders=[order("o", 0.0, 0.0, {"a": 1, "b": 1})],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(max_nodes_per_order=1),
        distance_km=[[1.0], [2.0]],
    )
    result = allocate(req, EXACT)
    ex = result.explanations[0]
    capped = [r for r in ex.reasons if r.kind.value == "max_nodes"]
    assert [r.rule for r in capped] == ["max_nodes_per_order"]
    # unfilled b costs 50, shipping it from n2 costs 10 + 1 + 0.02 + the split (0)
    assert "shipping from n1, n2 would cost 38.98 less" in capped[0].message
    # n1 is the order's own optimum under the cap: "cheapest" says so, not that nothing
    # cheaper exists (it read as a contradiction of the cap's reason beside it)
    assert [r.message for r in ex.reasons if r.kind.value == "cheapest"] == [
        "n1 is the cheapest way to ship this order within the request's rules, even with all "
        "stock and capacity to itself"
    ]
    assert ex.summary.endswith("because " + capped[0].message)
    assert [u.reason for u in result.unfilled] == [UnfilledReason.MAX_NODES]
    # two nodes allowed: the cap stops nothing and is not named
    two = req.model_copy(update={"rules": AllocationRules(max_nodes_per_order=2)})
    assert all(r.kind.value != "max_nodes" for r in allocate(two, EXACT).explanations[0].reasons)


def test_a_binding_cap_on_nodes_per_order_is_named_in_a_large_batch() -> None:
    # 70 orders (past explain.SMALL_BATCH, the batched path): a and b sit at different
    # nodes, one node per order leaves b unfilled in every order, and each says what the
    # cap costs it (it was named only in batches of up to 64 orders)
    req = AllocationRequest(
        nodes=[
            node("n1", 0.0, 0.0, inventory={"a": 100}),
            node("n2", 0.0, 0.0, inventory={"b": 100}),
        ],
        orders=[order(f"o{i}", 0.0, 0.0, {"a": 1, "b": 1}) for i in range(70)],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(max_nodes_per_order=1),
        distance_km=[[1.0] * 70, [2.0] * 70],
    )
    result = allocate(req, EXACT)
    assert len(result.explanations) == 70
    for ex in result.explanations:
        capped = [r.message for r in ex.reasons if r.kind.value == "max_nodes"]
        assert capped == [
            "max_nodes_per_order caps the order at 1 node(s): shipping from n1, n2 would "
            "cost 38.98 less"
        ], ex


def test_a_vip_share_too_small_for_the_order_alone_does_not_force_it() -> None:
    # near ships 4 units, VIPs half of them; the lone VIP order wants 3 (over two lines):
    # the share fits only part of it, and with all stock and capacity to itself the order
    # still ships from far (near's 2 units plus a parcel from far cost more): its own
    # optimum, so nothing "used up" the share and the choice is the cheapest
    req = AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 5, "b": 5}, capacity_units=4),
            node("far", 0.0, 0.0, inventory={"a": 5, "b": 5}),
        ],
        orders=[order("vip", 0.0, 0.0, {"a": 2, "b": 1}, tier=Tier.VIP)],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(vip_capacity_share=0.5),
        distance_km=[[1.0], [300.0]],
    )
    ex = allocate(req, EXACT).explanations[0]
    assert ex.nodes == ["far"]
    assert [r.kind.value for r in ex.reasons] == ["cheapest"]
    assert "even with all stock and capacity to itself" in ex.reasons[0].message


def test_a_vip_share_another_vip_order_used_says_how_much_is_left() -> None:
    # near's VIP share is 2 units; the other VIP order takes 1 (only near holds c), so the
    # VIP order wanting 2 there gets none: the reason says what is left and what it wants
    req = AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 5, "b": 5, "c": 5}, capacity_units=4),
            node("far", 0.0, 0.0, inventory={"a": 5, "b": 5}),
        ],
        orders=[
            order("other", 0.0, 0.0, {"c": 1}, tier=Tier.VIP),
            order("vip", 0.0, 0.0, {"a": 1, "b": 1}, tier=Tier.VIP),
        ],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(vip_capacity_share=0.5),
        distance_km=[[1.0, 1.0], [300.0, 300.0]],
    )
    ex = allocate(req, EXACT).explanations[1]
    assert ex.nodes == ["far"]
    vip = [r.message for r in ex.reasons if r.kind.value == "vip_share"]
    assert vip == ["the VIP share of near's unit capacity is used up (1 left, 2 wanted)"]


def test_the_own_optimum_fits_a_node_capacity_over_all_the_order_lines() -> None:
    # near holds both lines but ships 1 unit in all; with all capacity to itself the order
    # still ships both from far (near's unit plus a parcel from far cost more): no other
    # order filled near, so its capacity is not named as full and the choice is the cheapest
    req = AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 5, "b": 5}, capacity_units=1),
            node("far", 0.0, 0.0, inventory={"a": 5, "b": 5}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 1, "b": 1})],
        costs=SIMPLE_COSTS,
        distance_km=[[1.0], [300.0]],
    )
    for params in (EXACT, AllocationParams(mode="online", mip_rel_gap=0.0)):
        ex = allocate(req, params).explanations[0]
        assert ex.nodes == ["far"]
        assert [r.kind.value for r in ex.reasons] == ["cheapest"], ex
        assert ex.summary.endswith("cheapest option"), ex


def test_an_order_that_ships_nothing_gets_the_cheapest_way_it_could_ship() -> None:
    # far holds the unit but shipping it (10 + 1 + 50 of distance) costs more than
    # backordering it (50): the cheapest way to ship says what it would cost
    req = AllocationRequest(
        nodes=[node("far", 0.0, 0.0, inventory={"a": 5})],
        orders=[order("o", 0.0, 0.0, {"a": 1})],
        costs=SIMPLE_COSTS,
        distance_km=[[5000.0]],
    )
    ex = allocate(req, EXACT).explanations[0]
    assert ex.nodes == [] and ex.cost == 50.0
    alt = ex.best_alternative
    assert alt is not None
    assert (alt.nodes, alt.cost, alt.extra_cost, alt.blocked) == (["far"], 61.0, 11.0, False)
    assert "cheapest way to ship: far, +11.00" in ex.summary


def test_an_order_that_ships_nothing_is_told_what_the_other_orders_took() -> None:
    # dc ships one parcel and the VIP order takes it: o could ship from dc for 11 instead of
    # backordering for 50, but only with the parcel the VIP order took
    req = AllocationRequest(
        nodes=[node("dc", 0.0, 0.0, inventory={"a": 5}, capacity_orders=1)],
        orders=[order("vip", 0.0, 0.0, {"a": 1}, tier=Tier.VIP), order("o", 0.0, 0.0, {"a": 1})],
        costs=SIMPLE_COSTS,
        distance_km=[[0.0, 0.0]],
    )
    ex = allocate(req, EXACT).explanations[1]
    assert ex.nodes == []
    alt = ex.best_alternative
    assert alt is not None
    assert (alt.nodes, alt.cost, alt.extra_cost, alt.blocked) == (["dc"], 11.0, -39.0, True)
    assert [(r.kind.value, r.node_id) for r in ex.reasons if r.kind.value == "capacity"] == [
        ("capacity", "dc")
    ]
    assert "parcel capacity of dc is full" in ex.summary
    assert "could ship from dc (-39.00) only with what other orders took" in ex.summary


def test_the_ruled_out_node_named_is_the_one_whose_rule_costs_most() -> None:
    # near and cheap are both excluded for r1; near is nearer but holds one free unit (a
    # second parcel would cost more than it saves), cheap would ship both units for 0.14
    # less than dc: cheap is named with the saving, not the nearest ruled-out node
    req = AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 1}),
            node("cheap", 0.0, 0.0, inventory={"a": 5}),
            node("dc", 0.0, 0.0, inventory={"a": 5}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 2}, region="r1")],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(excluded_nodes={"r1": ["near", "cheap"]}),
        distance_km=[[1.0], [3.0], [10.0]],
    )
    ex = allocate(req, EXACT).explanations[0]
    assert ex.nodes == ["dc"]
    named = [(r.rule, r.node_id, r.message) for r in ex.reasons if r.rule is not None]
    assert named == [
        (
            "excluded_nodes",
            "cheap",
            "cheap may not ship to region r1 (excluded_nodes); allowed, it would save 0.14",
        )
    ]


def _late_near(late_shipment: float) -> AllocationRequest:
    """near (1 km) misses the 3600 s promise (lead time), far (10 km) keeps it; penalise."""
    return AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 5}, lead_time_s=10_000),
            node("far", 0.0, 0.0, inventory={"a": 5}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 1}, promise_by_s=3600)],
        costs=SIMPLE_COSTS.model_copy(update={"late_shipment": late_shipment}),
        rules=AllocationRules(promise="penalise", now_s=0),
        distance_km=[[1.0], [10.0]],
        travel_s=[[60], [600]],
    )


def test_a_nearer_node_passed_over_for_lateness_is_named_under_penalise() -> None:
    # near costs 0.09 less than far but its parcel is late (5.00): far ships, because of it
    ex = allocate(_late_near(5.0), EXACT).explanations[0]
    assert ex.nodes == ["far"]
    late = [(r.kind.value, r.node_id, r.message) for r in ex.reasons if r.rule == "promise"]
    assert late == [
        (
            "promise",
            "near",
            "near would arrive late (arrives 10060 s, promised by 3600 s); on time, it would "
            "save 0.09",
        )
    ]
    assert ex.summary.endswith("because " + late[0][2])


def test_a_chosen_late_node_says_what_its_lateness_costs_under_penalise() -> None:
    # a lateness of 0.05 leaves near cheaper than far: it ships late, and says what it costs
    ex = allocate(_late_near(0.05), EXACT).explanations[0]
    assert ex.nodes == ["near"]
    late = [(r.kind.value, r.node_id, r.message) for r in ex.reasons if r.rule == "promise"]
    assert late == [
        (
            "promise",
            "near",
            "near arrives late (arrives 10060 s, promised by 3600 s): lateness costs 0.05",
        )
    ]


def test_orders_left_without_an_alternative_search_are_counted_in_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the one-by-one searches stop at MAX_RESIDUAL_EXPLANATIONS orders: the orders after it get
    # no best_alternative, which must not read as "there is none"
    monkeypatch.setattr(explain_module, "MAX_RESIDUAL_EXPLANATIONS", 1)
    req = AllocationRequest(
        nodes=[
            node("near", 52.0, 13.0, inventory={"a": 9}),
            node("far", 52.5, 13.5, inventory={"a": 9}),
        ],
        orders=[order(f"o{i}", 52.0, 13.0, {"a": 1}) for i in range(3)],
        costs=SIMPLE_COSTS,
    )
    result = allocate(req, EXACT)
    with_alt = [e for e in result.explanations if e.best_alternative is not None]
    assert len(with_alt) == 1  # the one searched: "far" is an alternative for every order
    notes = [n for n in result.stats.notes if n.startswith("no best alternative searched")]
    assert notes == [
        "no best alternative searched for 2 of 3 orders: the one-by-one searches "
        "stop at 1 orders and with the explanations' time"
    ]


def _ruled_out_nearby(near: dict[str, Any] | None = None, **rules: Any) -> AllocationRequest:
    """One order of one unit; "near" (closed or excluded) costs 2.10, "free" 3.00, "dear"
    7.05 (handling 5): distance 0.1 per km, 2.00 per parcel."""
    costs = SIMPLE_COSTS.model_copy(
        update={"per_shipment": 2.0, "per_unit": 0.0, "per_unit_distance": 0.1}
    )
    return AllocationRequest(
        nodes=[
            node("dear", 0.0, 0.0, inventory={"a": 2}, handling_cost_per_unit=5.0),
            node("free", 0.0, 0.0, inventory={"a": 2}),
            node("near", 0.0, 0.0, inventory={"a": 2}, **(near or {})),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 1}, region="r1")],
        costs=costs,
        rules=AllocationRules(now_s=1000, **rules),
        distance_km=[[0.5], [10.0], [1.0]],
        travel_s=[[30], [600], [60]],
    )


def test_a_closed_node_that_would_be_cheaper_is_named_with_its_saving() -> None:
    # "near" closed for the rest of the horizon: open now, it ships for 2.10 against 3.00
    closed = _ruled_out_nearby(near={"opening_hours": [TimeWindow(start_s=0, end_s=500)]})
    ex = allocate(closed, EXACT).explanations[0]
    assert ex.nodes == ["free"]
    said = [r for r in ex.reasons if r.rule == "opening_hours"]
    assert [(r.node_id, r.message) for r in said] == [
        (
            "near",
            "near does not open again before the horizon ends (opening_hours); open now, it "
            "would save 0.90",
        )
    ]


def test_a_closed_node_that_would_still_be_excluded_saves_nothing() -> None:
    # open, "near" would still be excluded for region r1: lifting its hours alone saves nothing
    both = _ruled_out_nearby(
        near={"opening_hours": [TimeWindow(start_s=0, end_s=500)]},
        excluded_nodes={"r1": ["near"]},
    )
    ex = allocate(both, EXACT).explanations[0]
    assert not any("would save" in r.message for r in ex.reasons)
    assert any(r.rule == "opening_hours" and r.node_id == "near" for r in ex.reasons)


@pytest.mark.parametrize(
    ("near", "tier", "said"),
    [
        ({"capacity_orders": 0}, Tier.STANDARD, "near has no capacity in this wave"),
        ({"capacity_units": 0}, Tier.STANDARD, "near has no capacity in this wave"),
        ({"capacity_orders": 1}, Tier.VIP, "the VIP share of near's capacity is zero"),
    ],
)
def test_a_node_shut_for_the_wave_is_named_with_what_room_would_save(
    near: dict[str, Any], tier: Tier, said: str
) -> None:
    # "near" may take no parcel of the order this wave (VIP share 0.5 of one parcel: none
    # for a VIP order); with room for the order it ships for 2.10 against "free"'s 3.00
    req = _ruled_out_nearby(near=near, vip_capacity_share=0.5)
    req = req.model_copy(update={"orders": [req.orders[0].model_copy(update={"tier": tier})]})
    ex = allocate(req, EXACT).explanations[0]
    assert ex.nodes == ["free"]
    named = [r for r in ex.reasons if r.node_id == "near"]
    assert [r.message for r in named] == [f"{said}; with room for this order, it would save 0.90"]


def test_opening_a_closed_node_keeps_the_orders_unfilled_penalty() -> None:
    # allow_unfilled = false: unfilled units cost 100 x (twice the dearest parcel: n1's
    # 4.388889 with its lateness); opened, n0 would be later still (50.00 of lateness), and
    # the search must price the units it leaves short as the request does (877.7778 each)
    costs = SIMPLE_COSTS.model_copy(
        update={
            "per_shipment": 1.0,
            "per_unit": 0.0,
            "per_unit_distance": 0.1,
            "unfilled_unit": None,
            "late_per_hour": 50.0,
        }
    )
    req = AllocationRequest(
        nodes=[
            node(
                "n0", 0.0, 0.0, inventory={"a": 1}, opening_hours=[TimeWindow(start_s=0, end_s=500)]
            ),
            node("n1", 0.0, 0.0, inventory={"a": 1}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 3}, promise_by_s=1000)],
        costs=costs,
        rules=AllocationRules(now_s=1000, promise="penalise", allow_unfilled=False),
        distance_km=[[1.0], [20.0]],
        travel_s=[[3600], [100]],
    )
    ex = allocate(req, EXACT).explanations[0]
    assert ex.nodes == ["n1"]
    assert (
        "n0 does not open again before the horizon ends (opening_hours); open now, it would "
        "save 826.6778"
    ) in [r.message for r in ex.reasons]


def test_a_baselines_own_slack_is_not_counted_as_a_rules_saving() -> None:
    # the nearest baseline ships from "dear" (7.05); "free" (3.00) fits on what the others
    # leave; "near" (2.10) is excluded: the exclusion costs 0.90, the baseline 4.05
    excluded = _ruled_out_nearby(excluded_nodes={"r1": ["near"]})
    ex = allocate(excluded, AllocationParams(baseline="nearest")).explanations[0]
    assert ex.nodes == ["dear"]
    messages = [r.message for r in ex.reasons]
    assert (
        "the nearest baseline does not optimise: on what the other orders leave this order "
        "could ship from free for 4.05 less"
    ) in messages
    assert (
        "near may not ship to region r1 (excluded_nodes); allowed, it would save 0.90"
    ) in messages
    assert "not the cheapest option: free costs 4.05 less" in ex.summary
    # the optimised answer ships from "free": the same saving for the exclusion
    best = allocate(excluded, EXACT).explanations[0]
    assert best.nodes == ["free"]
    assert any(m.endswith("allowed, it would save 0.90") for m in (r.message for r in best.reasons))
    assert not any("does not optimise" in r.message for r in best.reasons)


def test_an_unfinished_rule_search_says_so_instead_of_naming_the_nearest_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the search that would find the 0.90 saving stops at its node limit: no claim is made
    # that lifting the exclusion saves nothing
    excluded = _ruled_out_nearby(excluded_nodes={"r1": ["near"]})
    monkeypatch.setattr(explain_module._Lifter, "node_limit", 0)
    ex = allocate(excluded, EXACT).explanations[0]
    said = [r for r in ex.reasons if r.rule == "excluded_nodes"]
    assert [r.message for r in said] == [
        "near may not ship to region r1 (excluded_nodes); allowed, what it would save was not "
        "searched to the end"
    ]


def test_what_the_cap_on_nodes_costs_is_given_to_the_micro_unit() -> None:
    # one node per order: one line ships (late by 1000 s: 0.277778) and one is unfilled
    # (1.00), where two nodes would ship both lines late: the cap costs 0.722222
    costs = SIMPLE_COSTS.model_copy(
        update={
            "per_shipment": 0.0,
            "per_unit": 0.0,
            "per_unit_distance": 0.0,
            "unfilled_unit": 1.0,
            "late_per_hour": 1.0,
        }
    )
    req = AllocationRequest(
        nodes=[node("n1", 0.0, 0.0, inventory={"a": 1}), node("n2", 0.0, 0.0, inventory={"b": 1})],
        orders=[order("o", 0.0, 0.0, {"a": 1, "b": 1}, promise_by_s=0)],
        costs=costs,
        rules=AllocationRules(max_nodes_per_order=1, promise="penalise", now_s=1000),
        distance_km=[[0.0], [0.0]],
        travel_s=[[0], [0]],
    )
    ex = allocate(req, EXACT).explanations[0]
    capped = [r.message for r in ex.reasons if r.rule == "max_nodes_per_order"]
    assert len(capped) == 1 and capped[0].endswith("would cost 0.722222 less"), capped


def _two_near_nodes(near_km: float, far_km: float, near_handling: float) -> AllocationRequest:
    """One unit of ``a`` for an order ``near_km`` from node "near", ``far_km`` from "far"."""
    return AllocationRequest(
        nodes=[
            node("near", 0.0, 0.0, inventory={"a": 5}, handling_cost_per_unit=near_handling),
            node("far", 0.0, 0.0, inventory={"a": 5}),
        ],
        orders=[order("o", 0.0, 0.0, {"a": 1})],
        costs=SIMPLE_COSTS,
        distance_km=[[near_km], [far_km]],
    )


def test_a_next_best_dearer_by_a_fraction_of_a_cent_is_no_tie_in_the_summary() -> None:
    # far is 0.03 km farther: at 0.01 per km its unit costs 0.0003 more (the city's scale)
    ex = allocate(_two_near_nodes(1.0, 1.03, 0.0), EXACT).explanations[0]
    assert ex.nodes == ["near"]
    assert ex.best_alternative is not None and ex.best_alternative.extra_cost == 0.0003
    assert "next best: far, +0.0003;" in ex.summary, ex.summary
    assert "+0.00;" not in ex.summary


def test_a_baseline_choice_dearer_by_a_fraction_of_a_cent_says_so_in_the_summary() -> None:
    # the nearest baseline takes near, whose handling makes it 0.0003 dearer than far
    req = _two_near_nodes(1.0, 1.02, 0.0005)
    ex = allocate(req, AllocationParams(baseline="nearest")).explanations[0]
    assert ex.nodes == ["near"]
    assert ex.best_alternative is not None and ex.best_alternative.extra_cost == -0.0003
    assert "next best: far, -0.0003;" in ex.summary, ex.summary
    assert "not the cheapest option: far costs 0.0003 less" in ex.summary


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    near_km=st.floats(0.0, 50.0),
    far_km=st.floats(0.0, 50.0),
    handling=st.sampled_from([0.0, 0.0001, 0.0049, 0.01, 0.25]),
    baseline=st.sampled_from([None, "nearest"]),
)
def test_the_summary_states_the_extra_cost_of_the_best_alternative(
    near_km: float, far_km: float, handling: float, baseline: str | None
) -> None:
    """The number after "next best" is the structured ``extra_cost``, to the micro-unit."""
    req = _two_near_nodes(near_km, far_km, handling)
    ex = allocate(req, EXACT.model_copy(update={"baseline": baseline})).explanations[0]
    alt = ex.best_alternative
    assert alt is not None, ex
    said = re.search(r"next best: [^,]+, ([+-][0-9.]+)(;|$)", ex.summary)
    assert said is not None, ex.summary
    assert float(said.group(1)) == alt.extra_cost, ex.summary
    # two decimals where they are exact, else every decimal of the micro-units
    digits = len(said.group(1).split(".")[1])
    assert digits == 2 or 2 < digits <= 6, ex.summary


def test_an_order_left_short_says_which_lines_and_why_in_its_explanation() -> None:
    req = AllocationRequest(
        nodes=[node("n", 1.0, 1.0, inventory={"a": 1})],
        orders=[order("o", 1.0, 1.0, {"a": 3, "b": 2})],
        costs=SIMPLE_COSTS,
    )
    for mode in ("batch", "online"):
        result = allocate(req, AllocationParams(mode=mode))
        reasons = [r for r in result.explanations[0].reasons if r.kind == ReasonKind.UNFILLED]
        assert len(reasons) == 1
        message = reasons[0].message
        # the count, then each short line with the cause the result's unfilled entry gives
        assert message.startswith("4 unit(s) left unfilled: ")
        for u in result.unfilled:
            assert f"{u.quantity} x {u.sku} ({u.detail})" in message
        assert "no node holds b" in message
        assert "no node holds b" in result.explanations[0].summary


def test_an_explanation_names_a_few_short_lines_and_counts_the_rest() -> None:
    lines = [
        explain_module.Unfilled(
            order_id="o", sku=f"s{i}", quantity=1, reason=UnfilledReason.NO_STOCK, detail="d"
        )
        for i in range(explain_module.UNFILLED_SAID + 2)
    ]
    message = explain_module.unfilled_message(len(lines), lines)
    assert message.count(" x s") == explain_module.UNFILLED_SAID
    assert message.endswith("; 2 more line(s) (see unfilled)")
    assert explain_module.unfilled_message(2, []) == "2 unit(s) left unfilled (see unfilled)"


def test_an_order_left_dearer_within_the_gap_is_not_called_the_cheapest() -> None:
    """A batch answer within its gap (1e-4 of a total of ~70) ships o's two units from n0,
    0.005 dearer than one from n0 and one from n1: that cheaper way keeps n0, so the best
    alternative (avoiding n0) is dearer, and the summary called the choice the "cheapest
    option" while its reason said "within the optimality gap"; the cheaper way is named."""
    far = {"lat": 52.0, "lon": 13.0}
    req = AllocationRequest.model_validate(
        {
            "nodes": [
                {"id": "n0", "location": far, "inventory": {"a": 2}},
                {"id": "n1", "location": far, "inventory": {"a": 1}},
            ],
            "orders": [
                {"id": "o", "location": far, "lines": [{"sku": "a", "quantity": 2}]},
                {"id": "short", "location": far, "lines": [{"sku": "z", "quantity": 7}]},
            ],
            "distance_km": [[30.0, 30.0], [20.0, 20.0]],
            "costs": {
                "per_shipment": 0.0,
                "per_unit": 0.4,
                "per_unit_distance": 0.0005,
                "distance_unit": "km",
                "unfilled_unit": 10.0,
            },
        }
    )
    result = allocate(req, AllocationParams(mip_rel_gap=1e-4, time_limit_s=30))
    ex = next(e for e in result.explanations if e.order_id == "o")
    shipped = sorted((a.node_id, a.quantity) for a in result.assignments)
    # the batch stops at its warm start (n0 holds both units), within its gap of the optimum
    assert result.status == AllocationStatus.OPTIMAL and result.gap is not None
    assert shipped == [("n0", 2)] and ex.cost == pytest.approx(0.83)
    assert "cheapest option" not in ex.summary.replace("not the cheapest option", "")
    assert ex.summary.endswith("not the cheapest option: n1, n0 costs 0.005 less")
    assert [r.message for r in ex.reasons] == [
        "within the optimality gap of the batch answer: on what the other orders leave this "
        "order could ship from n1, n0 for 0.005 less"
    ]


def _two_stores(**second: Any) -> list[AllocationNode]:
    """n1 (one unit of a, next to the orders) and n2 (five units of a, 5 km away)."""
    return [
        node("n1", 0.0, 0.0, inventory={"a": 1}),
        node("n2", 0.0, 0.0, inventory={"a": 5}, **second),
    ]


def test_stock_taken_by_others_names_a_node_without_vip_room_too() -> None:
    # the nearest baseline gives n1's unit to the standard order; n2 holds a but its VIP
    # share of one unit of capacity is zero: "stock of a at n1 went to other orders" was
    # the whole reason, hiding that the VIP order could not ship from n2 either
    req = AllocationRequest(
        nodes=_two_stores(capacity_units=1),
        orders=[
            order("std", 0.0, 0.0, {"a": 1}),
            order("vip", 0.0, 0.0, {"a": 1}, tier=Tier.VIP),
        ],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(vip_capacity_share=0.5),
        distance_km=[[0.0, 0.0], [5.0, 5.0]],
    )
    result = allocate(req, AllocationParams(baseline="nearest"))
    [short] = result.unfilled
    assert (short.order_id, short.reason) == ("vip", UnfilledReason.STOCK_EXHAUSTED)
    assert short.also == [UnfilledReason.CAPACITY]
    assert short.detail == (
        "stock of a at n1 went to other orders; also: n2 holds a but has no VIP capacity "
        "in this wave"
    )
    ex = result.explanations[1]
    kinds = [r.kind.value for r in ex.reasons]
    assert "stock" in kinds and "vip_share" in kinds
    said = [r.message for r in ex.reasons if r.kind.value in ("stock", "vip_share")]
    assert ex.summary.endswith("because " + "; also ".join(said)), ex.summary


def test_stock_taken_by_others_names_the_cap_on_nodes_too() -> None:
    # o1 ships b from n2 (the only node with b); a's only unit at n1 went to o0, and one
    # node per order bars n1 as well: both are named, in the unfilled line and the summary
    req = AllocationRequest(
        nodes=[
            node("n1", 0.0, 0.0, inventory={"a": 1}),
            node("n2", 0.0, 0.0, inventory={"b": 5}),
        ],
        orders=[order("o0", 0.0, 0.0, {"a": 1}), order("o1", 0.0, 0.0, {"a": 1, "b": 1})],
        costs=SIMPLE_COSTS,
        rules=AllocationRules(max_nodes_per_order=1),
        distance_km=[[0.0, 0.0], [5.0, 5.0]],
    )
    result = allocate(req, EXACT)
    assert {(a.order_id, a.node_id) for a in result.assignments} == {("o0", "n1"), ("o1", "n2")}
    [short] = result.unfilled
    assert (short.order_id, short.sku, short.reason) == ("o1", "a", UnfilledReason.STOCK_EXHAUSTED)
    assert short.also == [UnfilledReason.MAX_NODES]
    assert short.detail.endswith(
        "; also: the order already ships from 1 node(s) (max_nodes_per_order), so not from n1"
    )
    ex = result.explanations[1]
    stock = [r.message for r in ex.reasons if r.kind.value == "stock"]
    capped = [r.message for r in ex.reasons if r.kind.value == "max_nodes"]
    assert stock and capped
    assert ex.summary.endswith(f"because {stock[0]}; also {capped[0]}"), ex.summary


@pytest.mark.parametrize(
    ("held", "also", "said"),
    [
        # n1 has room for every order: the stock taken there is the only limit named
        (0, [], ""),
        # n1 holds 3 of a but keeps 2 as safety stock: "stock of a at n1 went to other
        # orders" read as if n1 had none left at all
        (2, [UnfilledReason.SAFETY_STOCK], "; also: n1 keeps 2 (safety_stock) of a on the shelf"),
    ],
)
def test_stock_taken_by_others_names_the_units_kept_on_the_shelf_only(
    held: int, also: list[UnfilledReason], said: str
) -> None:
    req = AllocationRequest(
        nodes=[node("n1", 0.0, 0.0, inventory={"a": 1 + held}, safety_stock=held)],
        orders=[order("o0", 0.0, 0.0, {"a": 1}), order("o1", 0.0, 0.0, {"a": 1})],
        costs=SIMPLE_COSTS,
        distance_km=[[0.0, 1.0]],
    )
    result = allocate(req, EXACT)
    [short] = result.unfilled
    assert (short.order_id, short.reason, short.also) == (
        "o1",
        UnfilledReason.STOCK_EXHAUSTED,
        also,
    )
    assert short.detail == "stock of a at n1 went to other orders" + said
    # the order's summary names the units kept on the shelf as its line's reason does (it
    # named only the stock taken by other orders)
    summary = result.explanations[1].summary
    assert summary.endswith(
        "because stock of a at n1 is taken by other orders (0 left, 1 wanted)"
        + said.replace("; also:", "; also")
    ), summary


def test_unfilled_reasons_of_a_wide_order_walk_its_arcs_once_per_line_not_per_pair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each short line of one order over many nodes reads its arcs in one pass over the
    order's slice: the per-line loops over every pair's arcs (lines x arcs in Python) took
    ~10 s for 30 lines over 5,000 nodes, past the explanations' time."""
    skus = [f"s{k}" for k in range(6)]
    n_nodes = 40
    req = AllocationRequest(
        nodes=[node(f"n{i}", 0.0, 0.0, inventory=dict.fromkeys(skus, 1)) for i in range(n_nodes)],
        orders=[order("o", 0.0, 0.0, dict.fromkeys(skus, n_nodes + 2), tier=Tier.VIP)],
        costs=SIMPLE_COSTS,
        distance_km=[[float(i + 1)] for i in range(n_nodes)],
    )
    prob = compile_request(req)
    x = prob.arc_ub.copy()  # every node ships all it holds: each line 2 units short
    walks = 0
    pair_arcs = type(prob).pair_arcs

    def counted(self: Any, p: int) -> range:
        nonlocal walks
        walks += 1
        return pair_arcs(self, p)

    monkeypatch.setattr(type(prob), "pair_arcs", counted)
    short = explain_module.unfilled_lines(prob, explain_module._world(prob, x), x)
    assert walks <= prob.num_pairs  # was 3 x lines x pairs (the line's arcs, twice the order's)
    assert [(u.sku, u.quantity, u.reason) for u in short] == [
        (s, 2, UnfilledReason.STOCK_EXHAUSTED) for s in skus
    ]
    assert all(u.detail.endswith("all shipped to this order") for u in short)


def test_a_lone_orders_alternative_search_stops_at_the_explanations_deadline() -> None:
    """The search for a lone order's best alternative keeps the explanations' deadline: one
    already past leaves it unproven (None, so the caller's deadline-aware path answers),
    where it searched its 2,000 nodes (2,000 lines over 200 nodes: seconds past the limit)."""
    from solvers.allocation.heuristics import Residual, real_costs

    skus = [f"s{k}" for k in range(40)]
    req = AllocationRequest(
        nodes=[node(f"n{i}", 0.0, 0.0, inventory=dict.fromkeys(skus, 1)) for i in range(60)],
        orders=[order("o", 0.0, 0.0, dict.fromkeys(skus, 2))],
        costs=SIMPLE_COSTS,
        distance_km=[[float(i + 1)] for i in range(60)],
    )
    prob = compile_request(req)
    c_arc, c_pair, split = real_costs(prob)
    ub = Residual(prob).arc_limits(0)
    lone = explain_module._lone_alternative
    assert lone(prob, 0, ub, c_arc, c_pair, split) is not None  # in time: proven
    assert lone(prob, 0, ub, c_arc, c_pair, split, deadline=-1.0) is None
