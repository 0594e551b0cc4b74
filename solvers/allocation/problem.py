"""Compile an :class:`AllocationRequest` into integer arrays every solver path shares.

Money inside the solver is **integer micro-units** (1e-6 request currency units, int64): each
price is rounded once here (per shipment, per unit, per node handling, per node x order
distance cost), and every objective value reported is recomputed exactly from these integers
by :meth:`Problem.evaluate`. Totals stay far below 2**53, so HiGHS sees them exactly too.

Vocabulary:

- a *line* is one (order, SKU) with its merged quantity;
- a *pair* is an (order, node) that may ship: one parcel if used (``y`` in the model);
- an *arc* is a (line, pair) with the units it can carry (``x`` in the model).

Pairs and arcs exist only where the rules allow shipping (compliance, sanctions, opening
hours, promise = forbid), the node has stock above safety stock, and shipping can pay off
at all. The last filter is exact: a unit whose cost reaches its unfilled penalty is never
worth shipping, and a pair whose fixed cost reaches the most it can save is never worth
opening (dropping it from any solution never costs more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from scenarios.errors import InputError
from scenarios.geo import MAX_INT, earliest_service_start
from scenarios.model import NodeKind, Tier
from scenarios.travel import EARTH_RADIUS_M, haversine_m
from solvers.allocation.request import (
    KM_PER_MILE,
    AllocationNode,
    AllocationOrder,
    AllocationRequest,
)

MICRO = 1_000_000

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
Bool = NDArray[np.bool_]

# why a node may not ship to an order (node_block codes)
OK, EXCLUDED, CLOSED, PROMISE = 0, 1, 2, 3
BLOCK_RULE = {EXCLUDED: "excluded_nodes", CLOSED: "opening_hours", PROMISE: "promise"}

#: Unfilled units cost this many times the normal penalty when ``allow_unfilled`` is False.
HARD_UNFILLED_FACTOR = 100


def to_micro(value: float) -> int:
    """Currency units to integer micro-units (round half away from zero)."""
    return int(np.floor(value * MICRO + 0.5))


def from_micro(value: int | np.integer) -> float:
    """Integer micro-units to currency units."""
    return round(int(value) / MICRO, 6)


@dataclass
class Evaluation:
    """Exact cost parts (micro-units) and service figures of one allocation."""

    fixed: int
    units: int
    distance: int
    handling: int
    split: int
    late: int
    unfilled: int
    shipments_per_order: I64
    unfilled_per_line: I64
    used_pairs: Bool

    @property
    def total(self) -> int:
        """Objective value in micro-units."""
        return (
            self.fixed
            + self.units
            + self.distance
            + self.handling
            + self.split
            + self.late
            + self.unfilled
        )


@dataclass
class Problem:
    """The request as integer arrays: nodes, orders, lines, candidate pairs and arcs."""

    request: AllocationRequest
    node_ids: list[str]
    order_ids: list[str]
    sku_ids: list[str]
    # nodes (N) x SKUs (S)
    avail: I64
    inventory: I64
    handling: I64
    cap_units: I64
    cap_orders: I64
    vip_cap_units: I64
    vip_cap_orders: I64
    ready_s: I64
    # orders (O)
    order_vip: Bool
    order_promise_s: I64
    order_line_start: I64
    dist_km: F64
    dist_cost: I64
    arrival_s: I64
    late_cost: I64  # N x O: lateness cost of a parcel (micro; 0 when on time or closed)
    node_block: NDArray[np.int8]
    # lines (L)
    line_order: I64
    line_sku: I64
    line_qty: I64
    line_pen: I64
    line_restricted: Bool
    # pairs (P), grouped by order
    pair_order: I64
    pair_node: I64
    pair_ship: I64
    pair_late: I64
    order_pair_start: I64
    # arcs (A), grouped by pair
    arc_pair: I64
    arc_line: I64
    arc_ub: I64
    arc_cost: I64
    pair_arc_start: I64
    per_unit: int
    split: int
    max_nodes: int
    hard_unfilled: bool
    pruned_pairs: int = 0
    notes: list[str] = field(default_factory=list)

    # ----------------------------------------------------------------- sizes
    @property
    def num_nodes(self) -> int:
        """N."""
        return len(self.node_ids)

    @property
    def num_orders(self) -> int:
        """O."""
        return len(self.order_ids)

    @property
    def num_lines(self) -> int:
        """L."""
        return int(self.line_order.shape[0])

    @property
    def num_pairs(self) -> int:
        """P."""
        return int(self.pair_order.shape[0])

    @property
    def num_arcs(self) -> int:
        """A."""
        return int(self.arc_pair.shape[0])

    @cached_property
    def arc_node(self) -> I64:
        """Node of every arc."""
        return self.pair_node[self.arc_pair]

    @cached_property
    def arc_sku(self) -> I64:
        """SKU of every arc."""
        return self.line_sku[self.arc_line]

    @cached_property
    def pair_fixed(self) -> I64:
        """Fixed cost of opening each pair: shipment plus lateness (micro)."""
        return self.pair_ship + self.pair_late

    @cached_property
    def arc_gain(self) -> I64:
        """Unit cost minus unfilled penalty per arc (negative: shipping pays off)."""
        return self.arc_cost - self.line_pen[self.arc_line]

    def order_lines(self, o: int) -> range:
        """Line indices of order ``o``."""
        return range(int(self.order_line_start[o]), int(self.order_line_start[o + 1]))

    def order_pairs(self, o: int) -> range:
        """Pair indices of order ``o``."""
        return range(int(self.order_pair_start[o]), int(self.order_pair_start[o + 1]))

    def pair_arcs(self, p: int) -> range:
        """Arc indices of pair ``p``."""
        return range(int(self.pair_arc_start[p]), int(self.pair_arc_start[p + 1]))

    @property
    def constant(self) -> int:
        """Objective with nothing shipped: every unit unfilled (micro)."""
        return int(np.dot(self.line_qty, self.line_pen))

    # ------------------------------------------------------------- subsets
    def subset(
        self,
        orders: I64,
        *,
        avail: I64 | None = None,
        cap_units: I64 | None = None,
        cap_orders: I64 | None = None,
        vip_cap_units: I64 | None = None,
        vip_cap_orders: I64 | None = None,
    ) -> tuple[Problem, I64, I64]:
        """The problem restricted to ``orders`` (optionally with residual stock/capacity).

        Returns the sub-problem and, for its pairs and arcs, the ids in this problem.
        Arc bounds shrink to the given stock; nodes and SKUs keep their indices.
        """
        orders = np.asarray(orders, dtype=np.int64)
        n_sub = orders.shape[0]
        l_cnt = self.order_line_start[orders + 1] - self.order_line_start[orders]
        p_cnt = self.order_pair_start[orders + 1] - self.order_pair_start[orders]
        lines = ranges(self.order_line_start[orders], self.order_line_start[orders + 1])
        pairs = ranges(self.order_pair_start[orders], self.order_pair_start[orders + 1])
        arcs = ranges(self.pair_arc_start[pairs], self.pair_arc_start[pairs + 1])
        line_new = np.full(self.num_lines, -1, dtype=np.int64)
        line_new[lines] = np.arange(lines.shape[0])
        pair_new = np.full(self.num_pairs, -1, dtype=np.int64)
        pair_new[pairs] = np.arange(pairs.shape[0])
        order_new = np.full(self.num_orders, -1, dtype=np.int64)
        order_new[orders] = np.arange(n_sub)
        a_cnt = self.pair_arc_start[pairs + 1] - self.pair_arc_start[pairs]
        new_avail = self.avail if avail is None else avail
        arc_ub = self.arc_ub[arcs]
        if avail is not None:
            arc_ub = np.minimum(
                arc_ub, np.maximum(new_avail[self.arc_node[arcs], self.arc_sku[arcs]], 0)
            )
        sub = Problem(
            request=self.request,
            node_ids=self.node_ids,
            order_ids=[self.order_ids[o] for o in orders],
            sku_ids=self.sku_ids,
            avail=new_avail,
            inventory=self.inventory,
            handling=self.handling,
            cap_units=self.cap_units if cap_units is None else cap_units,
            cap_orders=self.cap_orders if cap_orders is None else cap_orders,
            vip_cap_units=self.vip_cap_units if vip_cap_units is None else vip_cap_units,
            vip_cap_orders=self.vip_cap_orders if vip_cap_orders is None else vip_cap_orders,
            ready_s=self.ready_s,
            order_vip=self.order_vip[orders],
            order_promise_s=self.order_promise_s[orders],
            order_line_start=np.concatenate([[0], np.cumsum(l_cnt)]).astype(np.int64),
            dist_km=self.dist_km[:, orders],
            dist_cost=self.dist_cost[:, orders],
            arrival_s=self.arrival_s[:, orders],
            late_cost=self.late_cost[:, orders],
            node_block=self.node_block[:, orders],
            line_order=order_new[self.line_order[lines]],
            line_sku=self.line_sku[lines],
            line_qty=self.line_qty[lines],
            line_pen=self.line_pen[lines],
            line_restricted=self.line_restricted[lines],
            pair_order=order_new[self.pair_order[pairs]],
            pair_node=self.pair_node[pairs],
            pair_ship=self.pair_ship[pairs],
            pair_late=self.pair_late[pairs],
            order_pair_start=np.concatenate([[0], np.cumsum(p_cnt)]).astype(np.int64),
            arc_pair=pair_new[self.arc_pair[arcs]],
            arc_line=line_new[self.arc_line[arcs]],
            arc_ub=arc_ub.astype(np.int64),
            arc_cost=self.arc_cost[arcs],
            pair_arc_start=np.concatenate([[0], np.cumsum(a_cnt)]).astype(np.int64),
            per_unit=self.per_unit,
            split=self.split,
            max_nodes=self.max_nodes,
            hard_unfilled=self.hard_unfilled,
        )
        return sub, pairs, arcs

    # ------------------------------------------------------------ evaluation
    def evaluate(self, x: I64) -> Evaluation:
        """Exact cost parts of the allocation ``x`` (units per arc)."""
        x = np.asarray(x, dtype=np.int64)
        per_pair = np.bincount(self.arc_pair, weights=x, minlength=self.num_pairs)
        used = per_pair > 0
        shipments = np.bincount(self.pair_order[used], minlength=self.num_orders).astype(np.int64)
        shipped = np.bincount(self.arc_line, weights=x, minlength=self.num_lines)
        unfilled = self.line_qty - np.rint(shipped).astype(np.int64)
        arc_node = self.arc_node
        arc_order = self.pair_order[self.arc_pair]
        units = int(np.sum(x)) * self.per_unit
        return Evaluation(
            fixed=int(np.sum(self.pair_ship[used])),
            units=units,
            distance=int(np.dot(x, self.dist_cost[arc_node, arc_order])),
            handling=int(np.dot(x, self.handling[arc_node])),
            split=self.split * int(np.sum(np.maximum(shipments - 1, 0))),
            late=int(np.sum(self.pair_late[used])),
            unfilled=int(np.dot(unfilled, self.line_pen)),
            shipments_per_order=shipments,
            unfilled_per_line=unfilled,
            used_pairs=used,
        )

    def order_costs(self, x: I64) -> I64:
        """Cost (micro) of every order under the allocation ``x`` (they sum to the total)."""
        x = np.asarray(x, dtype=np.int64)
        n_o = self.num_orders
        cost = np.bincount(self.line_order, weights=self.line_qty * self.line_pen, minlength=n_o)
        arc_order = self.pair_order[self.arc_pair]
        cost += np.bincount(arc_order, weights=x * self.arc_gain, minlength=n_o)
        used = np.bincount(self.arc_pair, weights=x, minlength=self.num_pairs) > 0
        cost += np.bincount(self.pair_order[used], weights=self.pair_fixed[used], minlength=n_o)
        parcels = np.bincount(self.pair_order[used], minlength=n_o)
        cost += self.split * np.maximum(parcels - 1, 0)
        return np.rint(cost).astype(np.int64)

    def violations(self, x: I64) -> list[str]:
        """Every constraint ``x`` breaks (empty = feasible)."""
        x = np.asarray(x, dtype=np.int64)
        out: list[str] = []
        if (x < 0).any() or (x > self.arc_ub).any():
            out.append("arc quantity outside [0, ub]")
        shipped = np.bincount(self.arc_line, weights=x, minlength=self.num_lines)
        if (shipped > self.line_qty + 1e-9).any():
            out.append("line shipped more than ordered")
        arc_node = self.arc_node
        use = np.zeros_like(self.avail)
        np.add.at(use, (arc_node, self.arc_sku), x)
        if (use > self.avail).any():
            out.append("stock above availability")
        used = np.bincount(self.arc_pair, weights=x, minlength=self.num_pairs) > 0
        units_n = np.bincount(arc_node, weights=x, minlength=self.num_nodes)
        orders_n = np.bincount(self.pair_node[used], minlength=self.num_nodes)
        limits = [
            ("capacity_units", units_n, self.cap_units),
            ("capacity_orders", orders_n, self.cap_orders),
        ]
        if (self.vip_cap_units >= 0).any() or (self.vip_cap_orders >= 0).any():
            vip_arc = self.order_vip[self.pair_order[self.arc_pair]]
            vip_units_n = np.bincount(
                arc_node[vip_arc], weights=x[vip_arc], minlength=self.num_nodes
            )
            vip_pair = used & self.order_vip[self.pair_order]
            vip_orders_n = np.bincount(self.pair_node[vip_pair], minlength=self.num_nodes)
            limits += [
                ("vip units", vip_units_n, self.vip_cap_units),
                ("vip orders", vip_orders_n, self.vip_cap_orders),
            ]
        for name, load, cap in limits:
            if ((cap >= 0) & (load > cap)).any():
                out.append(f"{name} exceeded")
        if self.max_nodes > 0:
            shipments = np.bincount(self.pair_order[used], minlength=self.num_orders)
            if (shipments > self.max_nodes).any():
                out.append("max_nodes_per_order exceeded")
        return out


#: Largest total (micro-units) a request may reach with every unit unfilled: every cost the
#: solver adds up (pairs, arcs, their savings) stays below it, and so inside int64.
MAX_TOTAL_MICRO = 2.0**62


#: Largest price of one unit or one parcel (micro-units): a few such prices added up, and
#: doubled for the unfilled penalty, stay below MAX_TOTAL_MICRO (and int64).
MAX_PRICE_MICRO = 2.0**59


def vip_share_of(capacity: int, share: float) -> int:
    """The VIP share of a capacity: ``share x capacity`` rounded down, exactly for the share
    as written (0.35 x 700 = 245 VIP units; the float product 244.99999999999997 gave 244)."""
    num, den = Fraction(repr(share)).as_integer_ratio()
    return capacity * num // den


def _check_prices(
    prices: F64, field: str, what: str, matrix: str | None = None, remedy: str = "the distance"
) -> None:
    """Raise :class:`InputError` when a node x order price (micro-units, floats) is too large.

    Such a price came out of the int64 cast as garbage (a lateness cost of -9.2e12, a total
    below zero) instead of an error. ``what`` describes the entry; ``matrix`` names a node x
    order matrix field whose entry ``.{n}.{o}`` is blamed instead of ``field``; ``remedy``
    names what besides the price would bring it down.
    """
    if not prices.size or prices.max() <= MAX_PRICE_MICRO:
        return
    n, o = (int(i) for i in np.unravel_index(int(np.argmax(prices)), prices.shape))
    worst = float(prices[n, o])
    raise InputError(
        field if matrix is None else f"{matrix}.{n}.{o}",
        f"{what} would cost {worst / MICRO:.4g} currency units (node {n}, order {o}), more "
        f"than the {MAX_PRICE_MICRO / MICRO:.4g} the solver takes for one unit or parcel: "
        f"lower the price or {remedy}",
    )


def _check_totals(line_qty: I64, line_pen: F64) -> None:
    """Raise :class:`InputError` when quantities x penalties could overflow int64.

    Summed by numpy, not BLAS (``np.dot`` of floats): OpenBLAS shares a dot of more than
    10,000 entries among its threads (2,000 literature orders are 10,456 lines), which took
    9 us on an idle 2-core machine but up to 12-16 ms when its cores were busy: compiling
    2,000 literature orders beside two busy processes took 32-39 ms, 23-26 ms without it.
    """
    worst = float((line_qty * line_pen).sum())
    if worst > MAX_TOTAL_MICRO:
        raise InputError(
            "orders",
            f"the order lines could cost {worst / MICRO:.4g} currency units unfilled, more "
            f"than the {MAX_TOTAL_MICRO / MICRO:.4g} the solver can add up: lower the "
            "quantities or the prices",
        )


def compile_request(
    request: AllocationRequest,
    *,
    prune: bool = True,
    stock: tuple[list[str], I64, I64] | None = None,
) -> Problem:
    """Turn a validated request into a :class:`Problem` (candidate pairs and arcs, costs).

    ``prune=False`` keeps the candidates that can never pay off (for tests of the pruning).
    ``stock``: the SKU ids, units held and units free to ship (N x S) of a compiled request
    with the same nodes' inventories and store floor, whose SKUs include this one's: its
    columns are taken instead of reading every node's inventory again.
    """
    costs, rules = request.costs, request.rules
    nodes, orders = request.nodes, request.orders
    n_nodes, n_orders = len(nodes), len(orders)

    # ---- SKUs and lines (merged per order and SKU, first-seen order) --------------------
    # only demanded SKUs get a column: stock nobody asks for never binds, and a request can
    # carry a node's whole catalogue (thousands of SKUs) for a one-order allocation
    sku_ids, l_order, l_sku, l_qty, order_line_start = _lines(orders)
    sku_index = {sku: s for s, sku in enumerate(sku_ids)}
    n_lines = int(l_order.shape[0])

    # ---- nodes ----------------------------------------------------------------------------
    if stock is None:
        inventory, avail = _stock(nodes, sku_index, rules.store_floor_units)
    else:
        known_ids, held, free = stock
        known = {sku: s for s, sku in enumerate(known_ids)}
        cols = [known[sku] for sku in sku_ids]
        inventory, avail = held[:, cols], free[:, cols]
    handling = np.array([to_micro(n.handling_cost_per_unit) for n in nodes], dtype=np.int64)
    cap_units = np.array(
        [-1 if n.capacity_units is None else n.capacity_units for n in nodes], dtype=np.int64
    )
    cap_orders = np.array(
        [-1 if n.capacity_orders is None else n.capacity_orders for n in nodes], dtype=np.int64
    )
    share = rules.vip_capacity_share
    if share < 1.0:
        vip_cap_units = np.array(
            [-1 if c < 0 else vip_share_of(c, share) for c in cap_units.tolist()], dtype=np.int64
        ).reshape(n_nodes)
        vip_cap_orders = np.array(
            [-1 if c < 0 else vip_share_of(c, share) for c in cap_orders.tolist()], dtype=np.int64
        ).reshape(n_nodes)
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
        # a transit past MAX_INT s (a speed near 0, a huge distance_km) stays MAX_INT: cast,
        # it was INT64_MIN, an arrival before the start that was on time for every promise
        with np.errstate(over="ignore"):
            transit_s = dist_km / rules.speed_kmh * 3600.0
        travel_s = np.rint(np.minimum(transit_s, MAX_INT)).astype(np.int64)
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
    late_f = np.where(
        is_late,
        np.floor(
            (costs.late_shipment + costs.late_per_hour * late_s / 3600.0)
            * vip_factor[None, :]
            * MICRO
            + 0.5
        ),
        0,
    )
    if is_late.any():
        worst_s = int(late_s.max())
        _check_prices(
            late_f,
            "costs.late_per_hour" if costs.late_per_hour > 0 else "costs.late_shipment",
            f"a parcel {worst_s} s late",
            remedy="the lateness (the promise or the nodes' lead times)",
        )
    late_cost = late_f.astype(np.int64)

    distance_units = dist_km / KM_PER_MILE if costs.distance_unit == "mile" else dist_km
    with np.errstate(over="ignore"):
        dist_f = np.floor(distance_units * costs.per_unit_distance * MICRO + 0.5)
    _check_prices(
        dist_f,
        "costs.per_unit_distance",
        "one unit's distance",
        "distance_km" if request.distance_km is not None else None,
    )
    dist_cost = dist_f.astype(np.int64)
    per_unit = to_micro(costs.per_unit)
    ship = to_micro(costs.per_shipment)

    # ---- node blocks (rules that forbid a node for an order) ------------------------------
    block = np.zeros((n_nodes, n_orders), dtype=np.int8)
    regions = [o.region for o in orders]
    if rules.excluded_nodes:
        node_pos = {node.id: i for i, node in enumerate(nodes)}
        region_orders: dict[str, list[int]] = {}
        for o, region in enumerate(regions):
            if region is not None and region in rules.excluded_nodes:
                region_orders.setdefault(region, []).append(o)
        for region, cols in region_orders.items():
            for node_id in rules.excluded_nodes[region]:
                block[node_pos[node_id], cols] = EXCLUDED
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
        # and never zero: where every price is zero (or rounds to zero micro-units) a
        # zero penalty pruned every way to ship, and a free request was 'infeasible'
        base_pen = np.maximum(base_pen, np.maximum(2 * dearest.max(axis=0), 1))
    factor = 1 if rules.allow_unfilled else HARD_UNFILLED_FACTOR
    pen_vip = np.floor(base_pen * vip_factor + 0.5)
    pen_f = pen_vip * factor
    _check_totals(l_qty, pen_f[l_order] if n_orders else np.zeros(0))
    # the hard factor in integers: in floats a penalty past 2^53 micro-units came out off
    # by up to 64 (111111112395099008 for 100 x 1111111123950990)
    pen_o = pen_vip.astype(np.int64) * factor
    l_pen = pen_o[l_order] if n_orders else np.zeros(0, dtype=np.int64)

    l_restricted = np.zeros(n_lines, dtype=bool)
    restricted_sets = {
        sku_index[sku]: set(where)
        for sku, where in rules.restricted_skus.items()
        if where and sku in sku_index
    }
    if restricted_sets:
        is_restricted = np.zeros(len(sku_ids), dtype=bool)
        is_restricted[list(restricted_sets)] = True
        for i in np.nonzero(is_restricted[l_sku])[0].tolist():
            region = regions[l_order[i]]
            if region is not None and region in restricted_sets[int(l_sku[i])]:
                l_restricted[i] = True

    # ---- candidate arcs (line x node), vectorised -----------------------------------------
    if n_lines and n_nodes:
        p_o, p_n, a_l, a_p, arc_ub, arc_cost, pair_arc_start, pruned = _candidates(
            l_order=l_order,
            l_sku=l_sku,
            l_qty=l_qty,
            l_pen=l_pen,
            l_restricted=l_restricted,
            order_line_start=order_line_start,
            avail=avail,
            unit_node=per_unit + handling,
            dist_cost=dist_cost,
            block=block,
            vip=vip,
            limits=(cap_units, cap_orders, vip_cap_units, vip_cap_orders),
            fixed_on=ship + late_cost,
            prune=prune,
        )
        pair_ship = np.full(p_o.shape[0], ship, dtype=np.int64)
        pair_late = late_cost[p_n, p_o]
    else:
        pruned = 0
        p_o = p_n = np.zeros(0, dtype=np.int64)
        a_l = a_p = arc_ub = arc_cost = np.zeros(0, dtype=np.int64)
        pair_ship = pair_late = np.zeros(0, dtype=np.int64)
        pair_arc_start = np.zeros(1, dtype=np.int64)
    order_pair_start = _starts(p_o, n_orders)

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
        order_line_start=order_line_start,
        dist_km=dist_km,
        dist_cost=dist_cost,
        arrival_s=arrival_s,
        late_cost=late_cost,
        node_block=block,
        line_order=l_order,
        line_sku=l_sku,
        line_qty=l_qty,
        line_pen=l_pen.astype(np.int64, copy=False),
        line_restricted=l_restricted,
        pair_order=p_o.astype(np.int64, copy=False),
        pair_node=p_n.astype(np.int64, copy=False),
        pair_ship=pair_ship,
        pair_late=pair_late.astype(np.int64, copy=False),
        order_pair_start=order_pair_start,
        arc_pair=a_p.astype(np.int64, copy=False),
        arc_line=a_l.astype(np.int64, copy=False),
        arc_ub=arc_ub.astype(np.int64, copy=False),
        arc_cost=arc_cost.astype(np.int64, copy=False),
        pair_arc_start=pair_arc_start,
        per_unit=per_unit,
        split=to_micro(costs.split_penalty),
        max_nodes=rules.max_nodes_per_order or 0,
        hard_unfilled=not rules.allow_unfilled,
        pruned_pairs=pruned,
    )


def _lines(orders: list[AllocationOrder]) -> tuple[list[str], I64, I64, I64, I64]:
    """SKU ids (first seen first) and the lines: order, SKU, quantity; each order's first line.

    Lines of one SKU in one order merge into one, where the first of them stood.
    """
    counts = [len(o.lines) for o in orders]
    names = [line.sku for o in orders for line in o.lines]
    qty = np.array([line.quantity for o in orders for line in o.lines], dtype=np.int64)
    sku_index: dict[str, int] = {}
    for name in names:
        if name not in sku_index:
            sku_index[name] = len(sku_index)
    sku = np.array([sku_index[name] for name in names], dtype=np.int64)
    order = np.repeat(np.arange(len(orders), dtype=np.int64), counts)
    if names:
        key = order * len(sku_index) + sku
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        if uniq.shape[0] < key.shape[0]:  # an order names a SKU twice: merge, first place
            by_place = np.argsort(first, kind="stable")
            merged = np.empty_like(by_place)
            merged[by_place] = np.arange(by_place.shape[0])
            line = merged[inverse.reshape(-1)]
            total = np.zeros(uniq.shape[0], dtype=np.int64)
            np.add.at(total, line, qty)
            keep = first[by_place]
            order, sku, qty = order[keep], sku[keep], total
    return list(sku_index), order, sku, qty, _starts(order, len(orders))


def _stock(
    nodes: list[AllocationNode], sku_index: dict[str, int], store_floor: int
) -> tuple[I64, I64]:
    """Units held and units free to ship (above safety stock and the store floor), N x S.

    The held entries are gathered in lists and written in one step (a write per node cost
    more than the rest of compiling a one-order request over 50 nodes).
    """
    rows: list[int] = []
    cols: list[int] = []
    units: list[int] = []
    floors: list[int] = []
    for n, node in enumerate(nodes):
        held = node.inventory
        if len(held) <= len(sku_index):
            kept = [(sku_index[sku], sku, u) for sku, u in held.items() if sku in sku_index]
        else:
            kept = [(s, sku, held[sku]) for sku, s in sku_index.items() if sku in held]
        if not kept:
            continue
        safety = node.safety_stock
        store = node.kind in (NodeKind.STORE, NodeKind.DARK_STORE)
        for s, sku, u in kept:
            keep = safety if isinstance(safety, int) else safety.get(sku, 0)
            rows.append(n)
            cols.append(s)
            units.append(u)
            floors.append(max(keep, store_floor) if store else keep)
    inventory = np.zeros((len(nodes), len(sku_index)), dtype=np.int64)
    floor = np.zeros_like(inventory)
    inventory[rows, cols] = units
    floor[rows, cols] = floors
    avail = np.maximum(inventory - floor, 0)
    return inventory, avail


def _starts(group: I64, n_groups: int) -> I64:
    """Where each group begins in ``group`` (sorted group ids), with the end appended."""
    start = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=start[1:])
    return start


def _candidates(
    *,
    l_order: I64,
    l_sku: I64,
    l_qty: I64,
    l_pen: I64,
    l_restricted: Bool,
    order_line_start: I64,
    avail: I64,
    unit_node: I64,
    dist_cost: I64,
    block: NDArray[np.int8],
    vip: Bool,
    limits: tuple[I64, I64, I64, I64],
    fixed_on: I64,
    prune: bool,
) -> tuple[I64, I64, I64, I64, I64, I64, I64, int]:
    """The pairs (order, node) and arcs (line, pair) that may ship, and the pairs pruned.

    Returns pair order, pair node, arc line, arc pair, arc bound, arc unit cost, each
    pair's first arc (end appended) and how many pairs can never pay off; pairs by order
    then node, arcs by pair then line. ``fixed_on`` is each pair's fixed cost, N x O.
    """
    n_orders, n_nodes = fixed_on.shape[1], fixed_on.shape[0]
    cap_units, cap_orders, vip_cap_units, vip_cap_orders = limits
    # line x node tables, built from node-major rows (one row gather each)
    unit_cost = np.ascontiguousarray(dist_cost.T)[l_order]
    unit_cost += unit_node[None, :]
    ub = np.ascontiguousarray(avail.T)[l_sku]
    np.minimum(ub, l_qty[:, None], out=ub)
    # one arc can never carry more than its node may ship (tightens every model)
    big = np.iinfo(np.int64).max
    if (cap_units >= 0).any():
        np.minimum(ub, np.where(cap_units >= 0, cap_units, big)[None, :], out=ub)
    vip_rows = np.nonzero(vip[l_order])[0]
    if vip_rows.size and (vip_cap_units >= 0).any():
        vip_cap = np.where(vip_cap_units >= 0, vip_cap_units, big)
        ub[vip_rows] = np.minimum(ub[vip_rows], vip_cap[None, :])
    ub[:, cap_orders == 0] = 0
    if vip_rows.size and (vip_cap_orders == 0).any():
        ub[np.ix_(vip_rows, np.nonzero(vip_cap_orders == 0)[0])] = 0
    ok = ub > 0
    ok &= np.ascontiguousarray(block.T)[l_order] == OK
    ok[l_restricted] = False
    if prune:
        ok &= unit_cost < l_pen[:, None]
    saving = l_pen[:, None] - unit_cost
    saving *= ub
    saving *= ok
    starts = order_line_start[:-1]
    nonempty = order_line_start[1:] > starts
    if nonempty.all():
        pair_any = np.logical_or.reduceat(ok, starts, axis=0)
        pair_save = np.add.reduceat(saving, starts, axis=0)
    else:
        pair_any = np.zeros((n_orders, n_nodes), dtype=bool)
        pair_save = np.zeros((n_orders, n_nodes), dtype=np.int64)
        if nonempty.any():
            idx = starts[nonempty]
            pair_any[nonempty] = np.logical_or.reduceat(ok, idx, axis=0)
            pair_save[nonempty] = np.add.reduceat(saving, idx, axis=0)
    keep = pair_any
    pruned = 0
    if prune:
        keep = pair_any & (pair_save > fixed_on.T)
        pruned = int(np.count_nonzero(pair_any)) - int(np.count_nonzero(keep))
        ok &= keep[l_order]
    # every kept pair has an arc: arcs sorted by (order, node), then line, list the pairs
    flat = np.flatnonzero(ok)  # by line, then node
    a_l = np.repeat(np.arange(ok.shape[0], dtype=np.int64), np.count_nonzero(ok, axis=1))
    # (order, node) of each arc: its flat index with the line's row moved to its order's
    key = flat + ((l_order - np.arange(ok.shape[0])) * n_nodes)[a_l]
    by_pair = np.argsort(key, kind="stable")
    flat, a_l, key = flat[by_pair], a_l[by_pair], key[by_pair]
    opens = np.ones(key.shape[0], dtype=bool)  # the arc opens a pair
    np.not_equal(key[1:], key[:-1], out=opens[1:])
    first = np.flatnonzero(opens)
    a_p = np.cumsum(opens, dtype=np.int64) - 1
    p_o, p_n = np.divmod(key[first], n_nodes)
    pair_arc_start = np.concatenate([first, [flat.shape[0]]]).astype(np.int64)
    return (
        p_o,
        p_n,
        a_l,
        a_p,
        ub.ravel()[flat],
        unit_cost.ravel()[flat],
        pair_arc_start,
        pruned,
    )


def unit_costs(per_unit: int, handling: I64, dist_cost: I64) -> I64:
    """Node x order cost (micro) of one unit: per unit, the node's handling, the distance."""
    return per_unit + handling[:, None] + dist_cost


def _distances_km(request: AllocationRequest) -> F64:
    """Node x order distances in km: the request's matrix, else haversine (R = 6371 km)."""
    n_nodes, n_orders = len(request.nodes), len(request.orders)
    if request.distance_km is not None:
        return np.asarray(request.distance_km, dtype=np.float64).reshape(n_nodes, n_orders)
    if not n_nodes or not n_orders:
        return np.zeros((n_nodes, n_orders), dtype=np.float64)
    a = np.array([[n.location.lat, n.location.lon] for n in request.nodes], dtype=np.float64)
    b = np.array([[o.location.lat, o.location.lon] for o in request.orders], dtype=np.float64)
    assert EARTH_RADIUS_M == 6_371_000.0
    return haversine_m(a, b) / 1000.0


def ranges(starts: I64, ends: I64) -> I64:
    """Concatenate ``range(s, e)`` for every (s, e), vectorised."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(ends, dtype=np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + offsets
