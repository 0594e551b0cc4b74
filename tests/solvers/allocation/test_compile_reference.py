"""The vectorised :func:`compile_request` against its earlier line-by-line form.

``reference_compile`` is the compilation as it stood before the request's lines, stock,
rules and candidate arcs were built with whole-array numpy steps: every array of the new
:class:`Problem` must be equal to its array (values and dtype) on any request.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.geo import TimeWindow
from scenarios.model import NodeKind, Tier
from solvers.allocation import (
    AllocationCosts,
    AllocationNode,
    AllocationOrder,
    AllocationRequest,
    AllocationRules,
)
from solvers.allocation.problem import (
    CLOSED,
    EXCLUDED,
    HARD_UNFILLED_FACTOR,
    KM_PER_MILE,
    MICRO,
    OK,
    PROMISE,
    Problem,
    _check_totals,
    _distances_km,
    compile_request,
    earliest_service_start,
    to_micro,
    unit_costs,
)

from .conftest import node as make_node


def reference_compile(request: AllocationRequest, *, prune: bool = True) -> Problem:
    """:func:`compile_request` as it was before it was vectorised (line by line in Python)."""
    costs, rules = request.costs, request.rules
    nodes, orders = request.nodes, request.orders
    n_nodes, n_orders = len(nodes), len(orders)

    # ---- SKUs and lines (merged per order and SKU, first-seen order) --------------------
    sku_index: dict[str, int] = {}
    line_order: list[int] = []
    line_sku: list[int] = []
    line_qty: list[int] = []
    order_line_start = [0]
    for o, order in enumerate(orders):
        merged: dict[int, int] = {}
        for line in order.lines:
            s = sku_index.setdefault(line.sku, len(sku_index))
            merged[s] = merged.get(s, 0) + line.quantity
        for s, q in merged.items():
            line_order.append(o)
            line_sku.append(s)
            line_qty.append(q)
        order_line_start.append(len(line_order))
    # only demanded SKUs get a column: stock nobody asks for never binds, and a request can
    # carry a node's whole catalogue (thousands of SKUs) for a one-order allocation
    sku_ids = list(sku_index)
    n_skus = len(sku_ids)
    l_order = np.asarray(line_order, dtype=np.int64)
    l_sku = np.asarray(line_sku, dtype=np.int64)
    l_qty = np.asarray(line_qty, dtype=np.int64)

    # ---- nodes ----------------------------------------------------------------------------
    inventory = np.zeros((n_nodes, n_skus), dtype=np.int64)
    avail = np.zeros((n_nodes, n_skus), dtype=np.int64)
    for n, node in enumerate(nodes):
        store = node.kind in (NodeKind.STORE, NodeKind.DARK_STORE)
        held = node.inventory
        if len(held) <= n_skus:
            pairs = [(sku_index[sku], sku, u) for sku, u in held.items() if sku in sku_index]
        else:
            pairs = [(s, sku, held[sku]) for s, sku in enumerate(sku_ids) if sku in held]
        for s, sku, units in pairs:
            floor = node.safety_stock_for(sku)
            if store:
                floor = max(floor, rules.store_floor_units)
            inventory[n, s] = units
            avail[n, s] = max(0, units - floor)
    handling = np.array([to_micro(n.handling_cost_per_unit) for n in nodes], dtype=np.int64)
    cap_units = np.array(
        [-1 if n.capacity_units is None else n.capacity_units for n in nodes], dtype=np.int64
    )
    cap_orders = np.array(
        [-1 if n.capacity_orders is None else n.capacity_orders for n in nodes], dtype=np.int64
    )
    share = rules.vip_capacity_share
    if share < 1.0:
        # rounded down from the share as written (0.35 x 700 = 245, not the float's 244)
        exact = Fraction(repr(share))
        vip_cap_units = np.array(
            [-1 if c < 0 else math.floor(exact * c) for c in cap_units.tolist()], dtype=np.int64
        )
        vip_cap_orders = np.array(
            [-1 if c < 0 else math.floor(exact * c) for c in cap_orders.tolist()], dtype=np.int64
        )
    else:
        vip_cap_units = np.full(n_nodes, -1, dtype=np.int64)
        vip_cap_orders = np.full(n_nodes, -1, dtype=np.int64)
    ready = []
    for node in nodes:
        start = earliest_service_start(node.opening_hours, rules.now_s)
        ready.append(-1 if start is None else start + node.lead_time_s)
    ready_s = np.asarray(ready, dtype=np.int64).reshape(n_nodes)

    # ---- distances, transit times, lateness -----------------------------------------------
    dist_km = _distances_km(request)
    if request.travel_s is not None:
        travel_s = np.asarray(request.travel_s, dtype=np.int64).reshape(n_nodes, n_orders)
    else:
        travel_s = np.rint(dist_km / rules.speed_kmh * 3600.0).astype(np.int64)
    arrival_s = ready_s[:, None] + travel_s
    promise = np.array(
        [-1 if o.promise_by_s is None else o.promise_by_s for o in orders], dtype=np.int64
    )
    late_s = np.where(promise[None, :] >= 0, np.maximum(arrival_s - promise[None, :], 0), 0)
    closed = ready_s < 0
    late_s[closed, :] = 0
    is_late = late_s > 0
    vip = np.array([o.tier == Tier.VIP for o in orders], dtype=bool)
    vip_factor = np.where(vip, rules.vip_priority, 1.0)
    late_cost = np.where(
        is_late,
        np.floor(
            (costs.late_shipment + costs.late_per_hour * late_s / 3600.0)
            * vip_factor[None, :]
            * MICRO
            + 0.5
        ),
        0,
    ).astype(np.int64)

    distance_units = dist_km / KM_PER_MILE if costs.distance_unit == "mile" else dist_km
    dist_cost = np.floor(distance_units * costs.per_unit_distance * MICRO + 0.5).astype(np.int64)
    per_unit = to_micro(costs.per_unit)
    ship = to_micro(costs.per_shipment)

    # ---- node blocks (rules that forbid a node for an order) ------------------------------
    block = np.zeros((n_nodes, n_orders), dtype=np.int8)
    node_pos = {node.id: i for i, node in enumerate(nodes)}
    for o, order in enumerate(orders):
        if order.region is not None:
            for node_id in rules.excluded_nodes.get(order.region, []):
                block[node_pos[node_id], o] = EXCLUDED
    if rules.promise == "forbid":
        block[(block == OK) & is_late] = PROMISE
    block[closed, :] = CLOSED

    # ---- unfilled penalties ---------------------------------------------------------------
    if costs.unfilled_unit is not None:
        base_pen = np.full(n_orders, to_micro(costs.unfilled_unit), dtype=np.int64)
    elif n_nodes:
        farthest = ship + unit_costs(per_unit, handling, dist_cost)
        base_pen = np.maximum(2 * farthest.max(axis=0), MICRO)
    else:
        base_pen = np.full(n_orders, MICRO, dtype=np.int64)
    if not rules.allow_unfilled and n_nodes:
        # every unit must ship where it can: the penalty must beat the dearest way to ship
        # a unit alone (its parcel with lateness, the split penalty, the unit costs), or
        # the filters below would drop the only ways to ship it and the answer would be
        # 'infeasible' although every unit could ship (a low unfilled_unit, a late parcel)
        dearest = (
            ship
            + to_micro(costs.split_penalty)
            + late_cost
            + unit_costs(per_unit, handling, dist_cost)
        )
        # and never zero (all prices zero: a zero penalty pruned every way to ship)
        base_pen = np.maximum(base_pen, np.maximum(2 * dearest.max(axis=0), 1))
    factor = 1 if rules.allow_unfilled else HARD_UNFILLED_FACTOR
    pen_vip = np.floor(base_pen * vip_factor + 0.5)
    pen_f = pen_vip * factor
    _check_totals(l_qty, pen_f[l_order] if n_orders else np.zeros(0))
    # the hard factor in integers: in floats a penalty past 2^53 micro-units came out off
    # by up to 64 (111111112395099008 for 100 x 1111111123950990)
    pen_o = pen_vip.astype(np.int64) * factor
    l_pen = pen_o[l_order] if n_orders else np.zeros(0, dtype=np.int64)

    restricted_sets = {sku: set(regions) for sku, regions in rules.restricted_skus.items()}
    l_restricted = np.zeros(len(line_order), dtype=bool)
    for i, (o, s) in enumerate(zip(line_order, line_sku, strict=True)):
        region = orders[o].region
        if region is not None and region in restricted_sets.get(sku_ids[s], ()):
            l_restricted[i] = True

    # ---- candidate arcs (line x node), vectorised -----------------------------------------
    n_lines = len(line_order)
    if n_lines and n_nodes:
        unit_cost = per_unit + handling[None, :] + dist_cost[:, l_order].T  # L x N
        ub = np.minimum(l_qty[:, None], avail[:, l_sku].T)  # L x N
        # one arc can never carry more than its node may ship (tightens every model)
        node_cap = np.where(cap_units >= 0, cap_units, np.iinfo(np.int64).max)
        vip_cap = np.where(vip_cap_units >= 0, vip_cap_units, np.iinfo(np.int64).max)
        ub = np.minimum(ub, node_cap[None, :])
        ub = np.where(vip[l_order][:, None], np.minimum(ub, vip_cap[None, :]), ub)
        no_parcel = (cap_orders == 0)[None, :] | (
            vip[l_order][:, None] & (vip_cap_orders == 0)[None, :]
        )
        ub = np.where(no_parcel, 0, ub)
        ok = (
            (ub > 0)
            & (block[:, l_order].T == OK)
            & ~l_restricted[:, None]
            & ((unit_cost < l_pen[:, None]) | (not prune))
        )
        saving = np.where(ok, ub * (l_pen[:, None] - unit_cost), 0)
        starts = np.asarray(order_line_start[:-1], dtype=np.int64)
        nonempty = np.diff(np.asarray(order_line_start)) > 0
        pair_any = np.zeros((n_orders, n_nodes), dtype=bool)
        pair_save = np.zeros((n_orders, n_nodes), dtype=np.int64)
        if np.any(nonempty):
            idx = starts[nonempty]
            pair_any[nonempty] = np.logical_or.reduceat(ok, idx, axis=0)
            pair_save[nonempty] = np.add.reduceat(saving, idx, axis=0)
        fixed_on = ship + late_cost.T  # O x N
        keep = pair_any & ((pair_save > fixed_on) | (not prune))
        pruned = int(np.sum(pair_any & ~keep))
        ok &= keep[l_order, :]
        p_o, p_n = np.nonzero(keep)  # sorted by order, then node
        pair_id = np.full((n_orders, n_nodes), -1, dtype=np.int64)
        pair_id[p_o, p_n] = np.arange(p_o.shape[0])
        a_l, a_n = np.nonzero(ok)
        a_p = pair_id[l_order[a_l], a_n]
        by_pair = np.lexsort((a_l, a_p))
        a_l, a_n, a_p = a_l[by_pair], a_n[by_pair], a_p[by_pair]
        arc_ub = ub[a_l, a_n]
        arc_cost = unit_cost[a_l, a_n]
        pair_ship = np.full(p_o.shape[0], ship, dtype=np.int64)
        pair_late = late_cost[p_n, p_o]
    else:
        pruned = 0
        p_o = p_n = np.zeros(0, dtype=np.int64)
        a_l = a_p = arc_ub = arc_cost = np.zeros(0, dtype=np.int64)
        pair_ship = pair_late = np.zeros(0, dtype=np.int64)
    order_pair_start = np.searchsorted(p_o, np.arange(n_orders + 1)).astype(np.int64)
    pair_arc_start = np.searchsorted(a_p, np.arange(p_o.shape[0] + 1)).astype(np.int64)

    return Problem(
        request=request,
        node_ids=[n.id for n in nodes],
        order_ids=[o.id for o in orders],
        sku_ids=sku_ids,
        avail=avail,
        inventory=inventory,
        handling=handling,
        cap_units=cap_units,
        cap_orders=cap_orders,
        vip_cap_units=vip_cap_units,
        vip_cap_orders=vip_cap_orders,
        ready_s=ready_s,
        order_vip=vip,
        order_promise_s=promise,
        order_line_start=np.asarray(order_line_start, dtype=np.int64),
        dist_km=dist_km,
        dist_cost=dist_cost,
        arrival_s=arrival_s,
        late_cost=late_cost,
        node_block=block,
        line_order=l_order,
        line_sku=l_sku,
        line_qty=l_qty,
        line_pen=l_pen.astype(np.int64),
        line_restricted=l_restricted,
        pair_order=p_o.astype(np.int64),
        pair_node=p_n.astype(np.int64),
        pair_ship=pair_ship.astype(np.int64),
        pair_late=pair_late.astype(np.int64),
        order_pair_start=order_pair_start,
        arc_pair=a_p.astype(np.int64),
        arc_line=a_l.astype(np.int64),
        arc_ub=arc_ub.astype(np.int64),
        arc_cost=arc_cost.astype(np.int64),
        pair_arc_start=pair_arc_start,
        per_unit=per_unit,
        split=to_micro(costs.split_penalty),
        max_nodes=rules.max_nodes_per_order or 0,
        hard_unfilled=not rules.allow_unfilled,
        pruned_pairs=pruned,
    )


def assert_same_problem(new: Problem, ref: Problem) -> None:
    """Every field of the two problems equal (arrays: values, shape and dtype)."""
    for f in dataclasses.fields(Problem):
        a, b = getattr(new, f.name), getattr(ref, f.name)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray), f.name
            assert a.dtype == b.dtype, (f.name, a.dtype, b.dtype)
            assert a.shape == b.shape, (f.name, a.shape, b.shape)
            assert np.array_equal(a, b), f.name
        else:
            assert a == b, f.name


SKUS = ["a", "b", "c", "d"]
REGIONS = ["r1", "r2", None]


@st.composite
def varied_requests(draw: st.DrawFn) -> AllocationRequest:
    """Small requests that reach every branch of the compilation.

    Repeated SKUs in an order, catalogues larger than the demand, per-SKU safety stock,
    closed nodes, zero capacities, VIP shares, both rule lists, matrices or coordinates.
    """
    n_nodes = draw(st.integers(0, 4))
    nodes: list[AllocationNode] = []
    for i in range(n_nodes):
        inventory = {s: draw(st.integers(0, 6)) for s in [*SKUS, "x", "y"] if draw(st.booleans())}
        safety: int | dict[str, int] = draw(
            st.integers(0, 2) | st.dictionaries(st.sampled_from(SKUS), st.integers(0, 3))
        )
        hours = draw(
            st.sampled_from(
                [[], [TimeWindow(start_s=0, end_s=5)], [TimeWindow(start_s=0, end_s=100_000)]]
            )
        )
        nodes.append(
            make_node(
                f"n{i}",
                50.0 + draw(st.floats(0, 2)),
                10.0 + draw(st.floats(0, 2)),
                kind=draw(st.sampled_from(list(NodeKind))),
                inventory=inventory,
                safety_stock=safety,
                capacity_units=draw(st.none() | st.integers(0, 8)),
                capacity_orders=draw(st.none() | st.integers(0, 3)),
                handling_cost_per_unit=draw(st.floats(0, 2)),
                lead_time_s=draw(st.integers(0, 3_600)),
                opening_hours=hours,
            )
        )
    n_orders = draw(st.integers(0 if n_nodes else 1, 5))
    orders: list[AllocationOrder] = []
    for j in range(n_orders):
        skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=5))  # repeats merge
        lines = [(s, draw(st.integers(1, 4))) for s in skus]
        orders.append(
            AllocationOrder.model_validate(
                {
                    "id": f"o{j}",
                    "location": {
                        "lat": 50.0 + draw(st.floats(0, 2)),
                        "lon": 10.0 + draw(st.floats(0, 2)),
                    },
                    "lines": [{"sku": s, "quantity": q} for s, q in lines],
                    "region": draw(st.sampled_from(REGIONS)),
                    "tier": draw(st.sampled_from(list(Tier))),
                    "promise_by_s": draw(st.none() | st.integers(0, 20_000)),
                }
            )
        )
    node_ids = [n.id for n in nodes]
    excluded: dict[str, list[str]] = {}
    for region in ("r1", "r2"):
        wanted: bool = draw(st.booleans())
        if node_ids and wanted:
            excluded[region] = draw(st.lists(st.sampled_from(node_ids), max_size=2, unique=True))
    restricted: dict[str, list[str]] = {}
    for sku in [*SKUS, "z"]:
        if draw(st.booleans()):
            restricted[sku] = draw(
                st.lists(st.sampled_from(["r1", "r2", "r3"]), max_size=2, unique=True)
            )
    rules = AllocationRules(
        excluded_nodes=excluded,
        restricted_skus=restricted,
        max_nodes_per_order=draw(st.none() | st.integers(1, 2)),
        store_floor_units=draw(st.integers(0, 2)),
        vip_capacity_share=draw(st.sampled_from([1.0, 0.5, 0.0])),
        promise=draw(st.sampled_from(["forbid", "penalise"])),
        allow_unfilled=draw(st.booleans()),
        now_s=draw(st.sampled_from([0, 50])),
    )
    costs = AllocationCosts(
        per_shipment=draw(st.floats(0, 20)),
        per_unit=draw(st.floats(0, 2)),
        per_unit_distance=draw(st.floats(0, 0.1)),
        distance_unit=draw(st.sampled_from(["km", "mile"])),
        unfilled_unit=draw(st.none() | st.floats(0, 60)),
        split_penalty=draw(st.floats(0, 5)),
        late_shipment=draw(st.floats(0, 5)),
        late_per_hour=draw(st.floats(0, 1)),
    )
    matrices: dict[str, list[list[float]] | list[list[int]]] = {}
    if draw(st.booleans()):
        matrices["distance_km"] = [
            [draw(st.floats(0, 300)) for _ in range(n_orders)] for _ in range(n_nodes)
        ]
    if draw(st.booleans()):
        matrices["travel_s"] = [
            [draw(st.integers(0, 30_000)) for _ in range(n_orders)] for _ in range(n_nodes)
        ]
    return AllocationRequest(nodes=nodes, orders=orders, costs=costs, rules=rules, **matrices)


# 100 examples (300 took ~9 s of the default run; the named fixtures and the city below are
# compared too)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(varied_requests(), st.booleans())
def test_compile_equals_the_line_by_line_reference(req: AllocationRequest, prune: bool) -> None:
    assert_same_problem(compile_request(req, prune=prune), reference_compile(req, prune=prune))


def test_compile_equals_the_reference_on_the_named_fixtures(
    two_dcs: AllocationRequest, scarce: AllocationRequest
) -> None:
    for req in (two_dcs, scarce):
        for prune in (True, False):
            assert_same_problem(
                compile_request(req, prune=prune), reference_compile(req, prune=prune)
            )


@pytest.mark.parametrize("num_orders", [40, 200])
def test_compile_equals_the_reference_on_the_city(num_orders: int) -> None:
    from benchmarks.allocation import city_request

    req = city_request(3, num_orders=num_orders, num_nodes=12)
    assert_same_problem(compile_request(req), reference_compile(req))


def test_compiling_2000_orders_makes_no_blas_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The overflow check of the unfilled total summed 10,456 lines with ``np.dot`` of
    floats, which OpenBLAS shares among its threads past 10,000 entries: 9 us a call on an
    idle machine, up to 12-16 ms (as long as the rest of compiling) when its cores were
    busy. The check sums them in numpy now; it refuses the same totals (test_request)."""
    from solvers.allocation.literature import generate_literature

    req = generate_literature(seed=0, num_orders=2_000, num_nodes=10, vip_share=0.1)
    real = np.dot
    blas: list[tuple[int, ...]] = []

    def spy(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
        arrays = [np.asarray(a), np.asarray(b)]
        if any(v.dtype.kind == "f" for v in arrays) and max(v.size for v in arrays) > 10_000:
            blas.append(arrays[0].shape)
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(np, "dot", spy)
    prob = compile_request(req)
    assert prob.num_lines > 10_000
    assert blas == []
