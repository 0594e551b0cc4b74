"""Sequential policies on residual stock and capacity: the baselines and the warm start.

- ``nearest``: ship the whole order from the nearest node holding full stock; otherwise each
  line from the nearest nodes that still hold it.
- ``rule_chain``: fewest unfilled units, then fewest shipments, then the shortest distance
  (the classic OMS rule chain), one order at a time.
- ``myopic``: each order's own optimum under the real cost function, one order at a time.

All three process orders in arrival order (``created_s``, then request order), respect every
hard rule and limit, and are scored by the same :meth:`Problem.evaluate`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

from solvers.allocation.dp import (
    BB_NODE_LIMIT,
    GaveUp,
    build_blocks,
    pattern_value,
    solve_blocks,
    solve_order_bb,
)
from solvers.allocation.highs_model import SMALL_MIP_OPTIONS, AllocationModel, coupling_rows
from solvers.allocation.problem import F64, I64, MICRO, Problem
from solvers.cancel import cancelled

log = logging.getLogger(__name__)

NONE = np.int64(1) << 62  # "no limit" in residual arrays
#: longest a one-order MIP may run (seconds) when the caller gives no deadline
RESIDUAL_MIP_S = 30.0

# lexicographic weights of the rule chain: unfilled units >> shipments >> unit-km
_W_UNFILLED = 1e12
_W_SHIPMENT = 1e8


class Residual:
    """Stock and capacity left while orders are allocated one by one."""

    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        self.avail = prob.avail.copy()
        self.cap_units = np.where(prob.cap_units >= 0, prob.cap_units, NONE)
        self.cap_orders = np.where(prob.cap_orders >= 0, prob.cap_orders, NONE)
        self.vip_units = np.where(prob.vip_cap_units >= 0, prob.vip_cap_units, NONE)
        self.vip_orders = np.where(prob.vip_cap_orders >= 0, prob.vip_cap_orders, NONE)
        #: units each arc can carry now; current for an order's arcs after arc_limits(order)
        self.ub = prob.arc_ub.copy()
        self._pair_ok = np.ones(prob.num_pairs, dtype=bool)
        self._pair_cap = np.full(prob.num_pairs, -1, dtype=np.int64)

    def fits(self, order: int, arcs: I64, qty: I64) -> bool:
        """True when the pattern fits the residual stock and capacity."""
        prob = self.prob
        if arcs.size == 0:
            return True
        node = prob.arc_node[arcs]
        sku = prob.arc_sku[arcs]
        if np.any(qty > self.avail[node, sku]):
            return False
        units = np.bincount(node, weights=qty, minlength=prob.num_nodes)
        pairs_used = np.unique(prob.arc_pair[arcs])
        parcels = np.bincount(prob.pair_node[pairs_used], minlength=prob.num_nodes)
        if np.any(units > self.cap_units) or np.any(parcels > self.cap_orders):
            return False
        if prob.order_vip[order] and (
            np.any(units > self.vip_units) or np.any(parcels > self.vip_orders)
        ):
            return False
        return not (0 < prob.max_nodes < pairs_used.shape[0])

    def take(self, order: int, arcs: I64, qty: I64, *, sign: int = 1) -> None:
        """Consume the pattern's stock and capacity (``sign=-1`` hands them back)."""
        prob = self.prob
        keep = qty > 0
        arcs, qty = arcs[keep], qty[keep] * sign
        if arcs.size == 0:
            return
        node = prob.arc_node[arcs]
        sku = prob.arc_sku[arcs]
        np.subtract.at(self.avail, (node, sku), qty)
        units = np.bincount(node, weights=qty, minlength=prob.num_nodes).astype(np.int64)
        pairs_used = np.unique(prob.arc_pair[arcs])
        parcels = sign * np.bincount(prob.pair_node[pairs_used], minlength=prob.num_nodes)
        self.cap_units -= units
        self.cap_orders -= parcels
        if prob.order_vip[order]:
            self.vip_units -= units
            self.vip_orders -= parcels

    def take_all(self, x: I64) -> None:
        """Consume the stock and capacity of the whole allocation ``x`` (units per arc): as
        :meth:`take` of every order's arcs in turn, in one pass over the arcs."""
        prob = self.prob
        used = np.flatnonzero(x > 0)
        if used.size == 0:
            return
        qty = x[used]
        node = prob.arc_node[used]
        np.subtract.at(self.avail, (node, prob.arc_sku[used]), qty)
        n = prob.num_nodes
        units = np.bincount(node, weights=qty, minlength=n).astype(np.int64)
        pairs = np.unique(prob.arc_pair[used])
        parcels = np.bincount(prob.pair_node[pairs], minlength=n)
        self.cap_units -= units
        self.cap_orders -= parcels
        vip_arc = prob.order_vip[prob.pair_order[prob.arc_pair[used]]]
        if vip_arc.any():
            vip_pairs = pairs[prob.order_vip[prob.pair_order[pairs]]]
            self.vip_units -= np.bincount(node[vip_arc], weights=qty[vip_arc], minlength=n).astype(
                np.int64
            )
            self.vip_orders -= np.bincount(prob.pair_node[vip_pairs], minlength=n)

    def arc_limits(self, order: int) -> I64:
        """Units each arc can carry now (the array over all arcs; current for ``order``'s)."""
        prob = self.prob
        pairs = prob.order_pair_start[order], prob.order_pair_start[order + 1]
        arcs = slice(int(prob.pair_arc_start[pairs[0]]), int(prob.pair_arc_start[pairs[1]]))
        stock = self.avail[prob.arc_node[arcs], prob.arc_sku[arcs]]
        self.ub[arcs] = np.minimum(prob.arc_ub[arcs], np.maximum(stock, 0))
        return self.ub

    def pair_limits(self, order: int) -> tuple[np.ndarray, I64]:
        """Per pair (filled for this order's pairs): can take a parcel; units left (-1 = any)."""
        prob = self.prob
        pairs = np.arange(prob.order_pair_start[order], prob.order_pair_start[order + 1])
        nodes = prob.pair_node[pairs]
        ok = self.cap_orders[nodes] > 0
        cap = self.cap_units[nodes]
        if prob.order_vip[order]:
            ok &= self.vip_orders[nodes] > 0
            cap = np.minimum(cap, self.vip_units[nodes])
        self._pair_ok[pairs] = ok
        self._pair_cap[pairs] = np.where(cap >= NONE // 2, -1, cap)
        return self._pair_ok, self._pair_cap


def arrival_sequence(prob: Problem) -> I64:
    """Orders by arrival time, then request order."""
    created = np.array([o.created_s for o in prob.request.orders], dtype=np.int64)
    return np.lexsort((np.arange(prob.num_orders), created)).astype(np.int64)


def real_costs(prob: Problem) -> tuple[F64, F64, float]:
    """Per-arc unit gain, per-pair fixed cost and split cost, in currency units."""
    return prob.arc_gain / MICRO, prob.pair_fixed / MICRO, prob.split / MICRO


def rule_chain_costs(prob: Problem) -> tuple[F64, F64, float]:
    """Lexicographic costs: unfilled units, then shipments, then unit-km."""
    arc_km = prob.dist_km[prob.arc_node, prob.pair_order[prob.arc_pair]]
    return arc_km - _W_UNFILLED, np.full(prob.num_pairs, _W_SHIPMENT), 0.0


def sequential(
    prob: Problem,
    costs: tuple[F64, F64, float],
    *,
    seq: I64 | None = None,
    exact: bool = True,
    deadline: float | None = None,
    give_up: Callable[[], bool] | None = None,
) -> I64:
    """Allocate orders one at a time, each to its best pattern under ``costs`` on residuals.

    ``exact=False`` accepts the DP's pattern where partial stock or a binding capacity make
    it approximate (fast warm starts); ``exact=True`` solves those orders by a MIP. Past
    ``deadline`` no more one-order MIPs start (the search's best pattern is taken): the
    answer still covers every order. ``give_up``, asked before each order (and in the
    first pass over all orders), stops it instead: :class:`~solvers.allocation.dp.GaveUp`
    is raised, there is no answer (for a caller with a hard deadline, such as the pyomo
    backend's fallback while its worker runs).
    """
    c_arc, c_pair, split = costs
    order_seq = arrival_sequence(prob) if seq is None else seq
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    res = Residual(prob)
    # everyone's unconstrained best at once; re-solve only the orders it no longer fits
    first = solve_blocks(
        prob,
        build_blocks(prob, order_seq),
        c_arc,
        c_pair,
        split=split,
        relax_partial=not exact,
        give_up=give_up,
    )
    best: dict[int, tuple[I64, I64]] = {}
    exact_orders = set(first.orders[first.exact].tolist())
    if first.sel_order.size:
        sort = np.argsort(first.sel_order, kind="stable")
        so, sa, sq = first.sel_order[sort], first.sel_arc[sort], first.sel_qty[sort]
        cuts = np.flatnonzero(np.diff(so)) + 1
        for s, e in zip(
            np.concatenate([[0], cuts]).tolist(),
            np.concatenate([cuts, [so.shape[0]]]).tolist(),
            strict=True,
        ):
            best[int(so[s])] = (sa[s:e], sq[s:e])
    empty = np.zeros(0, dtype=np.int64)
    for o in order_seq.tolist():
        if give_up is not None and give_up():
            raise GaveUp
        if prob.order_pair_start[o] == prob.order_pair_start[o + 1]:
            continue
        arcs, qty = best.get(o, (empty, empty))
        if not (o in exact_orders and res.fits(o, arcs, qty)):
            arcs, qty, _lower = solve_residual(
                prob, o, res, c_arc, c_pair, split, exact=exact, deadline=deadline
            )
        res.take(o, arcs, qty)
        x[arcs] += qty
    return x


def solve_residual(
    prob: Problem,
    order: int,
    res: Residual,
    c_arc: F64,
    c_pair: F64,
    split: float,
    *,
    exact: bool = True,
    deadline: float | None = None,
    dp: bool = True,
) -> tuple[I64, I64, float | None]:
    """One order's best pattern on the residual stock and capacity, and whether it is proven.

    Without a binding capacity: exact branch and bound over the open nodes (partial stock
    included). With one: the subset DP where it is exact, else the branch and bound with
    capacities, else (its node limit reached) a one-order MIP started from the search's
    best pattern, until ``deadline`` (``time.perf_counter()``; at most
    :data:`RESIDUAL_MIP_S` seconds). With ``exact=False`` a DP answer that fits is kept
    even where it may be suboptimal. ``dp=False`` (with ``exact``) leaves the DP out: for a
    caller whose batched DP (:func:`~solvers.allocation.dp.solve_blocks`, an order's answer
    the same in any block) already found it inexact for the order on these limits, where
    the DP's answer would only be passed over.

    The third value is None when the pattern is proven optimal, else a lower bound of the
    optimum's value relative to shipping nothing (currency units; ``-inf`` if none known).
    """
    pair_ok, pair_cap = res.pair_limits(order)
    arc_ub = res.arc_limits(order)
    pairs = np.arange(prob.order_pair_start[order], prob.order_pair_start[order + 1])
    lines = prob.order_lines(order)
    units = int(prob.line_qty[lines.start : lines.stop].sum())
    caps = pair_cap[pairs]
    uncapped = not np.any((caps >= 0) & (caps < units) & pair_ok[pairs])
    limit = BB_NODE_LIMIT if exact else 300
    searched: list[tuple[I64, I64, float]] = []  # the search's best pattern and bound

    def branch_and_bound() -> tuple[I64, I64, float | None] | None:
        value, arcs, qty, lower = solve_order_bb(
            prob,
            order,
            c_arc,
            c_pair,
            split=split,
            arc_ub=arc_ub,
            pair_ok=pair_ok,
            node_limit=limit,
            pair_cap=None if uncapped else pair_cap,
            deadline=deadline,
        )
        searched.append((arcs, qty, lower))
        if lower >= value - 1e-9:
            return arcs, qty, None  # proven
        return None if exact else (arcs, qty, lower)

    # without a binding capacity the branch and bound is exact and, for one order, cheaper
    # than the subset DP (which would also hand partial stock on to it). Fast warm starts
    # (``exact=False``) keep the DP first up to 6 lines: with the search first, the bid-price
    # myopic pass over 30,000 literature orders took ~76 s (the whole budget) instead of
    # seconds
    search_first = uncapped and (exact or len(lines) > 6)
    if search_first:
        found = branch_and_bound()
        if found is not None:
            return found
    blocks = build_blocks(prob, np.array([order])) if dp or not exact else []
    if blocks:
        ans = solve_blocks(
            prob,
            blocks,
            c_arc,
            c_pair,
            arc_ub=arc_ub,
            pair_ok=pair_ok,
            cap_units=pair_cap,
            split=split,
            relax_partial=not exact,
        )
        keep = ans.sel_qty > 0
        arcs, qty = ans.sel_arc[keep], ans.sel_qty[keep]
        if ans.exact.size:
            dp_exact = bool(ans.exact[0])
            if exact and dp_exact:
                return arcs, qty, None
            if not exact and res.fits(order, arcs, qty):
                # kept as it is; proven only where the DP is exact, else without a bound
                return arcs, qty, None if dp_exact else -math.inf
    if not search_first:
        # with a binding capacity the search fills the open nodes by a min-cost flow: it
        # replaces the one-order MIP wherever it finishes within its node limit
        found = branch_and_bound()
        if found is not None:
            return found
    start = searched[-1][:2] if searched else None
    lower = searched[-1][2] if searched else -math.inf
    seconds = RESIDUAL_MIP_S if deadline is None else deadline - time.perf_counter()
    if seconds > 0.0:
        out = _solve_residual_mip(
            prob, order, res, c_arc, c_pair, start=start, seconds=min(seconds, RESIDUAL_MIP_S)
        )
        if out is not None:
            arcs, qty, gap = out
            if gap is None:
                return arcs, qty, None
            # the MIP's bound, as a value relative to shipping nothing like the search's
            value = pattern_value(prob, arcs, qty, c_arc, c_pair, split)
            return arcs, qty, max(lower, value - gap)
    if start is not None:  # no time for the MIP: the search's best pattern, unproven
        return start[0], start[1], lower
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty, lower


def _solve_residual_mip(
    prob: Problem,
    order: int,
    res: Residual,
    c_arc: F64,
    c_pair: F64,
    *,
    start: tuple[I64, I64] | None = None,
    seconds: float = RESIDUAL_MIP_S,
) -> tuple[I64, I64, float | None] | None:
    """One order's pattern by a one-order MIP, None if it found none.

    Returns (arcs, units, gap): ``gap`` is None when the pattern is proven optimal, else
    how far (currency units) the MIP's bound lies below the pattern's cost.
    """

    def lim(a: I64) -> I64:
        return np.where(a >= NONE // 2, -1, np.maximum(a, 0))

    vip = bool(prob.order_vip[order])
    cap_u = lim(np.minimum(res.cap_units, res.vip_units) if vip else res.cap_units)
    cap_o = lim(np.minimum(res.cap_orders, res.vip_orders) if vip else res.cap_orders)
    sub, pairs, arcs = prob.subset(
        np.array([order]),
        avail=np.maximum(res.avail, 0),
        cap_units=cap_u,
        cap_orders=cap_o,
        vip_cap_units=np.full(prob.num_nodes, -1, dtype=np.int64),
        vip_cap_orders=np.full(prob.num_nodes, -1, dtype=np.int64),
    )
    empty = np.zeros(0, dtype=np.int64)
    if sub.num_pairs == 0:
        return empty, empty, None
    model = AllocationModel(
        sub,
        np.arange(sub.num_pairs),
        integer=True,
        rows=coupling_rows(sub),
        pair_cost=c_pair[pairs],
        arc_cost=c_arc[arcs],
    )
    model.set_options(mip_rel_gap=0.0, **SMALL_MIP_OPTIONS)
    if start is not None and start[0].size:
        pos = np.minimum(np.searchsorted(arcs, start[0]), arcs.shape[0] - 1)
        x0 = np.zeros(sub.num_arcs, dtype=np.int64)
        x0[pos] = start[1]
        if np.array_equal(arcs[pos], start[0]) and not sub.violations(x0):
            model.set_start(x0)
    status = model.run(seconds)
    if not model.has_solution():
        return None
    x = model.units()
    broken = sub.violations(x)
    if broken:  # never hand on a pattern past a line, the stock or a capacity
        log.warning("one-order MIP answer broke %s: order %d ships nothing", broken, order)
        return None
    used = x > 0
    gap = None if status == "Optimal" else max(model.objective() - model.mip_bound(), 0.0)
    return arcs[used], x[used], gap


def polish(prob: Problem, x: I64, *, deadline: float, only_short: bool = True) -> I64:
    """Re-optimise orders one at a time with everyone else fixed (exact per order).

    Catches what the pattern master cannot express: partial fills of lines squeezed by
    stock or capacity. ``only_short`` limits the pass to orders with unfilled units. Once
    this thread's solve is cancelled (:mod:`solvers.cancel`) it stops as at ``deadline``.
    """
    x = x.copy()
    # a deadline already past leaves nothing to re-optimise: no set-up either (at 1,000
    # city orders it took 0.08-0.1 s on a slow machine, when it was an order at a time)
    if time.perf_counter() > deadline or cancelled():
        return x
    c_arc, c_pair, split = real_costs(prob)
    res = Residual(prob)
    by_order = _arcs_by_order(prob, x)
    res.take_all(x)
    shipped = np.bincount(prob.arc_line, weights=x, minlength=prob.num_lines)
    short = np.bincount(prob.line_order, weights=prob.line_qty - shipped, minlength=prob.num_orders)
    has_pairs = np.diff(prob.order_pair_start) > 0
    todo = np.nonzero(has_pairs & ((short > 0) | (not only_short)))[0]
    from solvers.allocation.master import pattern_cost

    for o in todo.tolist():
        if time.perf_counter() > deadline or cancelled():  # a cancelled solve: as at its deadline
            break
        old = by_order.get(o, np.zeros(0, dtype=np.int64))
        res.take(o, old, x[old], sign=-1)
        arcs, qty, _lower = solve_residual(prob, o, res, c_arc, c_pair, split, deadline=deadline)
        if pattern_cost(prob, o, arcs, qty) < pattern_cost(prob, o, old, x[old]):
            x[old] = 0
            x[arcs] = qty
            res.take(o, arcs, qty)
            by_order[o] = arcs
        else:
            res.take(o, old, x[old])
    return x


def _arcs_by_order(prob: Problem, x: I64) -> dict[int, I64]:
    used = np.nonzero(x > 0)[0]
    order_of = prob.pair_order[prob.arc_pair[used]]
    sort = np.argsort(order_of, kind="stable")
    used, order_of = used[sort], order_of[sort]
    out: dict[int, I64] = {}
    if used.size:
        cuts = np.flatnonzero(np.diff(order_of)) + 1
        for s, e in zip(
            np.concatenate([[0], cuts]).tolist(),
            np.concatenate([cuts, [used.shape[0]]]).tolist(),
            strict=True,
        ):
            out[int(order_of[s])] = used[s:e]
    return out


def nearest(prob: Problem, *, seq: I64 | None = None) -> I64:
    """Nearest node with full stock for the whole order, else line by line nearest first."""
    order_seq = arrival_sequence(prob) if seq is None else seq
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    _NearestFill(prob, x).run(order_seq.tolist())
    return x


def pairs_by_distance(prob: Problem) -> I64:
    """Every order's pairs, nearest node first (ties in pair order, as a stable sort)."""
    start = prob.order_pair_start
    counts = np.diff(start)
    order = np.repeat(np.arange(prob.num_orders), counts)
    dist = prob.dist_km[prob.pair_node, order]
    # one row per order (distances padded with inf): a sort of short rows, not of all pairs
    width = int(counts.max()) if counts.size else 0
    table = np.full((prob.num_orders, width), np.inf)
    table[order, np.arange(prob.num_pairs) - start[order]] = dist
    rank = np.argsort(table, axis=1, kind="stable")
    return (rank + start[:-1, None])[rank < counts[:, None]].astype(np.int64)


class _NearestFill:
    """The state of :func:`nearest`: what is known before the first order is served is found
    at once, in numpy over every order's candidate pairs and arcs; the orders are then served
    in turn on Python scalars (each looks at a few stock slots, where numpy's per-call
    overhead would cost more than the arithmetic).

    Stock and capacity only fall as orders are served, so a pair that cannot ship its whole
    order from the untouched stock and capacity never can: only the others are tried, each
    by its order's lines (one slot of its node each). Without capacities or a node limit
    nothing couples an order's lines once no node ships it whole: each line then takes its
    units from its own arcs that start with stock, nearest node first. Otherwise the order's
    pairs are tried nearest first, as :meth:`by_line` says. The same allocation as the
    earlier code that looked at every pair and arc (property-tested).
    """

    def __init__(self, prob: Problem, x: I64) -> None:
        self.prob, self.x = prob, x
        n_sku = int(prob.avail.shape[1])
        cap_units = np.where(prob.cap_units >= 0, prob.cap_units, NONE)
        cap_orders = np.where(prob.cap_orders >= 0, prob.cap_orders, NONE)
        vip_units = np.where(prob.vip_cap_units >= 0, prob.vip_cap_units, NONE)
        vip_orders = np.where(prob.vip_cap_orders >= 0, prob.vip_cap_orders, NONE)
        # capacities are looked at only where a node has one (a VIP one where a VIP orders)
        self.capped = bool(
            np.any(prob.cap_units >= 0)
            or np.any(prob.cap_orders >= 0)
            or (
                np.any(prob.order_vip)
                and (np.any(prob.vip_cap_units >= 0) or np.any(prob.vip_cap_orders >= 0))
            )
        )
        self.max_nodes = int(prob.max_nodes)
        arc_pair, pair_node, pair_order = prob.arc_pair, prob.pair_node, prob.pair_order
        num_pairs, num_orders = prob.num_pairs, prob.num_orders
        self.arc_q = arc_q = prob.line_qty[prob.arc_line]  # a whole line's units
        self.arc_slot = arc_slot = prob.arc_node * n_sku + prob.arc_sku
        arc_avail = prob.avail.ravel()[arc_slot]
        arc_count = np.diff(prob.pair_arc_start)
        lines = np.diff(prob.order_line_start)
        # the pairs that can ship their whole order on the untouched stock and capacity
        whole = np.bincount(
            arc_pair, weights=(prob.arc_ub >= arc_q) & (arc_avail >= arc_q), minlength=num_pairs
        )
        units = np.bincount(arc_pair, weights=arc_q, minlength=num_pairs).astype(np.int64)
        vip = prob.order_vip[pair_order]
        full = (
            (arc_count == lines[pair_order])
            & (whole == arc_count)
            & (units <= cap_units[pair_node])
            & (cap_orders[pair_node] >= 1)
            & (~vip | ((units <= vip_units[pair_node]) & (vip_orders[pair_node] >= 1)))
        )
        self.by_dist = by_dist = pairs_by_distance(prob)
        self.full_pairs = full_pairs = by_dist[full[by_dist]]
        self.full_start: list[int] = _starts(pair_order[full_pairs], num_orders).tolist()
        # a whole pair's slots: its node's base plus each line's SKU
        self.full_base: list[int] = (pair_node[full_pairs] * n_sku).tolist()
        self.line_sku: list[int] = prob.line_sku.tolist()
        self.line_qty: list[int] = prob.line_qty.tolist()
        self.line_start: list[int] = prob.order_line_start.tolist()
        self.avail: list[int] = prob.avail.ravel().tolist()
        self.full_units: list[int] = units[full_pairs].tolist() if self.capped else []
        self.full_node: list[int] = pair_node[full_pairs].tolist() if self.capped else []
        self.cap_units: list[int] = cap_units.tolist()
        self.cap_orders: list[int] = cap_orders.tolist()
        self.vip_units: list[int] = vip_units.tolist()
        self.vip_orders: list[int] = vip_orders.tolist()
        self.vip: list[bool] = prob.order_vip.tolist()
        self.shipped_full: list[int] = []  # positions in full_pairs: the whole pair ships
        self.shipped: list[int] = []  # the rest: arcs (positions in use_arcs where apart)
        self.shipped_qty: list[int] = []
        self.lines_apart = not self.capped and self.max_nodes <= 0
        self.use_arcs = np.zeros(0, dtype=np.int64)
        if self.lines_apart:
            # each line's arcs that start with stock, nearest node first (ties as the
            # pairs are ranked)
            useful = np.flatnonzero((prob.arc_ub > 0) & (arc_avail > 0))
            self.use_arcs = useful = _by_line_then_rank(prob, by_dist, useful)
            self.use_start: list[int] = _starts(prob.arc_line[useful], prob.num_lines).tolist()
            self.use_slot: list[int] = arc_slot[useful].tolist()
            # an arc's bound below its line's units matters only where there is one
            short = bool(np.any(prob.arc_ub[useful] < arc_q[useful]))
            self.use_ub: list[int] | None = prob.arc_ub[useful].tolist() if short else None
        else:
            self.pair_start: list[int] = prob.order_pair_start.tolist()

    def room(self, order: int, node: int, units: int) -> bool:
        """Whether ``node`` can take one more parcel of ``units`` units for ``order``."""
        if units > self.cap_units[node] or self.cap_orders[node] < 1:
            return False
        return not self.vip[order] or (units <= self.vip_units[node] and self.vip_orders[node] >= 1)

    def run(self, orders: list[int]) -> None:
        """Allocate ``orders`` in turn (into ``x``)."""
        avail, line_sku, line_qty, line_start = (
            self.avail,
            self.line_sku,
            self.line_qty,
            self.line_start,
        )
        full_start, full_base, capped = self.full_start, self.full_base, self.capped
        shipped_full, apart = self.shipped_full, self.lines_apart
        for o in orders:
            l0, l1 = line_start[o], line_start[o + 1]
            for i in range(full_start[o], full_start[o + 1]):
                base = full_base[i]
                for line in range(l0, l1):
                    if avail[base + line_sku[line]] < line_qty[line]:  # never below 0
                        break
                else:
                    if capped:
                        node, units = self.full_node[i], self.full_units[i]
                        if not self.room(o, node, units):
                            continue
                        self.take(o, node, units)
                    for line in range(l0, l1):
                        avail[base + line_sku[line]] -= line_qty[line]
                    shipped_full.append(i)
                    break
            else:
                if apart:
                    self.lines_nearest_first(l0, l1)
                else:
                    self.by_line(o)
        self._write()

    def _write(self) -> None:
        """Add what was shipped to ``x``."""
        x, prob = self.x, self.prob
        if self.shipped_full:
            pairs = self.full_pairs[self.shipped_full]
            counts = np.diff(prob.pair_arc_start)[pairs]
            arcs = _ranges(prob.pair_arc_start[pairs], counts)
            x += np.bincount(arcs, weights=self.arc_q[arcs], minlength=x.shape[0]).astype(np.int64)
        if self.shipped:
            arcs = np.array(self.shipped, dtype=np.int64)
            if self.lines_apart:
                arcs = self.use_arcs[arcs]
            x += np.bincount(arcs, weights=self.shipped_qty, minlength=x.shape[0]).astype(np.int64)

    def lines_nearest_first(self, l0: int, l1: int) -> None:
        """:meth:`by_line` for lines ``l0 .. l1 - 1`` where nothing couples them."""
        avail, slots, ubs, line_qty = self.avail, self.use_slot, self.use_ub, self.line_qty
        starts, shipped, shipped_qty = self.use_start, self.shipped, self.shipped_qty
        for line in range(l0, l1):
            need = line_qty[line]
            for j in range(starts[line], starts[line + 1]):
                slot = slots[j]
                q = min(need, avail[slot]) if ubs is None else min(need, avail[slot], ubs[j])
                if q > 0:
                    avail[slot] -= q
                    shipped.append(j)
                    shipped_qty.append(q)
                    need -= q
                    if not need:
                        break

    def by_line(self, order: int) -> None:
        """Each line from the nearest nodes that still hold it (the order's arrays as
        scalars here: only orders no node ships whole get here)."""
        prob, avail = self.prob, self.avail
        p0, p1 = self.pair_start[order], self.pair_start[order + 1]
        if p0 == p1:
            return
        l0 = self.line_start[order]
        a0, a1 = int(prob.pair_arc_start[p0]), int(prob.pair_arc_start[p1])
        arc_start = (prob.pair_arc_start[p0 : p1 + 1] - a0).tolist()
        slots = self.arc_slot[a0:a1].tolist()
        ubs = prob.arc_ub[a0:a1].tolist()
        line_of = (prob.arc_line[a0:a1] - l0).tolist()
        nodes = prob.pair_node[p0:p1].tolist()
        need = self.line_qty[l0 : self.line_start[order + 1]]
        left = sum(need)
        opened = 0
        for p in (self.by_dist[p0:p1] - p0).tolist():
            if not left:
                break
            trial: list[int] = []  # the order's arcs, from 0
            qty: list[int] = []
            for a in range(arc_start[p], arc_start[p + 1]):
                q = min(need[line_of[a]], avail[slots[a]], ubs[a])
                if q > 0:
                    trial.append(a)
                    qty.append(q)
            if not trial:
                continue
            if 0 < self.max_nodes <= opened:
                break
            units = sum(qty)
            if self.capped:
                if not self.room(order, nodes[p], units):
                    continue
                self.take(order, nodes[p], units)
            for a, q in zip(trial, qty, strict=True):  # one line and one slot each
                need[line_of[a]] -= q
                avail[slots[a]] -= q
                self.shipped.append(a0 + a)
            self.shipped_qty += qty
            left -= units
            opened += 1

    def take(self, order: int, node: int, units: int) -> None:
        """One parcel of ``units`` units from ``node`` for ``order``: its capacity falls."""
        self.cap_units[node] -= units
        self.cap_orders[node] -= 1
        if self.vip[order]:
            self.vip_units[node] -= units
            self.vip_orders[node] -= 1


def _starts(owner: I64, size: int) -> I64:
    """CSR offsets of ``owner`` (sorted, each in ``range(size)``): where each one's run
    starts, and the end."""
    out = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=size), out=out[1:])
    return out


def _ranges(first: I64, counts: I64) -> I64:
    """The ranges ``first[i] .. first[i] + counts[i] - 1`` one after the other."""
    ends = np.cumsum(counts)
    return np.repeat(first - (ends - counts), counts) + np.arange(int(ends[-1]) if ends.size else 0)


#: most cells of the line x rank table :func:`_by_line_then_rank` fills (else it sorts)
_RANK_TABLE_CELLS = 4_000_000


def _by_line_then_rank(prob: Problem, by_dist: I64, arcs: I64) -> I64:
    """``arcs`` by line, then by their pair's place in ``by_dist`` (one arc per line and
    pair): one line x rank table where it is small, else a sort."""
    rank = np.empty(prob.num_pairs, dtype=np.int64)
    rank[by_dist] = np.arange(prob.num_pairs)
    pair = prob.arc_pair[arcs]
    local = rank[pair] - prob.order_pair_start[prob.pair_order[pair]]
    width = int(np.diff(prob.order_pair_start).max()) if prob.num_orders else 0
    if prob.num_lines * width > _RANK_TABLE_CELLS:
        return arcs[np.lexsort((local, prob.arc_line[arcs]))]
    table = np.full((prob.num_lines, width), -1, dtype=np.int64)
    table[prob.arc_line[arcs], local] = arcs
    flat = table.ravel()
    return flat[flat >= 0]
