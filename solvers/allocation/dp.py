"""Exact per-order optimisation by dynamic programming over line subsets, batched.

One order's problem (with stock and capacity either fixed as residuals or priced by
multipliers) is an uncapacitated facility location problem on its few lines: open nodes
(parcels, each with a fixed cost), send every line to one open node or leave it unfilled.
With ``L`` lines the optimum is a partition of the lines into blocks, each block shipped
from its cheapest node. The DP over subsets costs ``3^L / 2`` steps per order and is
vectorised over every order of the same line count, so pricing 10,000 orders is a handful
of numpy operations per subset.

The DP is exact when each line either ships whole from a node or not at all (every arc's
bound equals the line quantity) and no node's remaining unit capacity is below the order's
units. Orders outside that case are flagged (``exact = False``) for the MIP path.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from solvers.allocation.problem import F64, I64, Problem

#: Orders with more lines than this go to the MIP path (3^L / 2 subset steps).
DP_MAX_LINES = 10
INF = 1e30
_BIG = 1e29  # anything above is infeasible
#: Work of one chunk of a block (:func:`split_block`) in DP steps (:func:`order_work`): up to
#: ~0.15 s on the 2-core reference machine at any line count (10 lines: ~200 orders, 8 lines:
#: ~1,200, 2 lines: ~54,000). Each chunk repeats the DP's per-subset numpy calls (~8 ms at 10
#: lines): explanations of 10,000 literature orders took 3-5 % more CPU than unchunked, 15-25 %
#: with half this work per chunk.
DP_CHUNK_WORK = 20_000_000


@cache
def _subset_tables(n_lines: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Incidence (2^L x L), per mask the submasks holding its lowest bit, lowest-bit index."""
    size = 1 << n_lines
    masks = np.arange(size, dtype=np.int64)
    inc = ((masks[:, None] >> np.arange(n_lines)[None, :]) & 1).astype(float)
    subs: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    low = np.zeros(size, dtype=np.int64)
    for mask in range(1, size):
        lb = mask & -mask
        low[mask] = lb.bit_length() - 1
        rest = mask ^ lb
        found = []
        s = rest
        while True:
            found.append(s | lb)
            if s == 0:
                break
            s = (s - 1) & rest
        subs.append(np.array(found, dtype=np.int64))
    return inc, subs, low


@dataclass(frozen=True)
class _Level:
    """The masks of one popcount ``p``: each has ``2^(p-1)`` submasks holding its lowest bit."""

    masks: I64  # m
    subs: I64  # m x 2^(p-1), in the order of _subset_tables' lists
    rest: I64  # m: the mask without its lowest bit


@cache
def _levels(n_lines: int) -> tuple[_Level, ...]:
    """The subset DP's masks by popcount: a level needs only the levels below it."""
    _inc, subs, low = _subset_tables(n_lines)
    masks = np.arange(1 << n_lines, dtype=np.int64)
    pop = np.array([bin(m).count("1") for m in range(1 << n_lines)], dtype=np.int64)
    out = []
    for p in range(1, n_lines + 1):
        at = masks[pop == p]
        out.append(
            _Level(
                masks=at,
                subs=np.stack([subs[int(m)] for m in at]),
                rest=at ^ (np.int64(1) << low[at]),
            )
        )
    return tuple(out)


#: Most floats one step of the subset DP holds in its candidate array (orders x masks x
#: submasks x parcel counts): a level's masks are cut into pieces below it (512 KB, about
#: a core's cache: pricing 300 literature orders with a split penalty took 279 ms at this
#: size, 389-402 ms at 2^12-2^14 and 2^18-2^21 floats, one run each on a loaded machine)
LEVEL_FLOATS = 1 << 16


def _pieces(level: _Level, per_mask: int) -> list[slice]:
    """The level's masks cut so that a piece's candidates stay within :data:`LEVEL_FLOATS`."""
    m = int(level.masks.shape[0])
    step = max(1, LEVEL_FLOATS // max(per_mask, 1))
    return [slice(i, min(i + step, m)) for i in range(0, m, step)]


def subset_dp(block_cost: F64, n_lines: int) -> tuple[F64, NDArray[np.int32]]:
    """Cheapest partition of every order's lines into blocks (or unfilled), by subset.

    ``block_cost`` (B x 2^L): each block's cost from its cheapest node. Returns the table
    of best values (B x 2^L) and, per mask, 0 (its lowest line left unfilled) or 1 + the
    index of the block holding that line in ``_subset_tables``' list for the mask. The masks
    of one popcount are one vectorised step (a mask depends only on smaller popcounts).
    """
    b = block_cost.shape[0]
    size = 1 << n_lines
    g1 = np.full((b, size), INF)
    g1[:, 0] = 0.0
    choice1 = np.zeros((b, size), dtype=np.int32)
    for level in _levels(n_lines):
        n_s = int(level.subs.shape[1])
        for part in _pieces(level, b * n_s):
            at, s, rest = level.masks[part], level.subs[part], level.rest[part]
            best1 = g1[:, rest]  # B x m: leave the lowest line unfilled
            cand1 = block_cost[:, s] + g1[:, at[:, None] ^ s]  # B x m x n_s
            arg1 = np.argmin(cand1, axis=2)
            val1 = np.take_along_axis(cand1, arg1[:, :, None], axis=2)[:, :, 0]
            better1 = val1 < best1
            g1[:, at] = np.where(better1, val1, best1)
            choice1[:, at] = np.where(better1, arg1 + 1, 0)
    return g1, choice1


def counted_dp(block_cost: F64, n_lines: int, k_max: int) -> tuple[F64, NDArray[np.int32]]:
    """:func:`subset_dp` counting the blocks (parcels), up to ``k_max``.

    Returns the table (B x 2^L x k_max + 1) of best values with exactly ``k`` blocks and the
    choices as :func:`subset_dp`'s, per count.
    """
    b = block_cost.shape[0]
    size = 1 << n_lines
    g = np.full((b, size, k_max + 1), INF)
    g[:, 0, 0] = 0.0
    choice = np.zeros((b, size, k_max + 1), dtype=np.int32)
    for level in _levels(n_lines):
        n_s = int(level.subs.shape[1])
        for part in _pieces(level, b * n_s * k_max):
            at, s, rest = level.masks[part], level.subs[part], level.rest[part]
            best = g[:, rest, :]  # B x m x k+1: leave the lowest line unfilled (a copy)
            # B x m x n_s x k_max: the block plus the rest's best with one block fewer
            cand = block_cost[:, s][:, :, :, None] + g[:, at[:, None] ^ s, :-1]
            arg = np.argmin(cand, axis=2)
            val = np.take_along_axis(cand, arg[:, :, None, :], axis=2)[:, :, 0, :]
            better = val < best[:, :, 1:]
            best[:, :, 1:] = np.where(better, val, best[:, :, 1:])
            pick = np.zeros_like(best, dtype=np.int32)
            pick[:, :, 1:] = np.where(better, arg + 1, 0)
            g[:, at, :] = best
            choice[:, at, :] = pick
    return g, choice


@dataclass
class OrderBlock:
    """Dense per-order arrays of a batch of orders that all have ``L`` lines."""

    orders: I64  # B
    lines: I64  # B x L problem line ids
    pairs: I64  # B x K problem pair ids (-1 = padding)
    arcs: I64  # B x L x K problem arc ids (-1 = none)
    qty: I64  # B x L

    @property
    def num_lines(self) -> int:
        """L."""
        return int(self.lines.shape[1])


def build_blocks(prob: Problem, orders: I64) -> list[OrderBlock]:
    """Group orders by line count and lay their lines, pairs and arcs out densely.

    Orders without any candidate pair (nothing can ship) and orders with more than
    ``DP_MAX_LINES`` lines are left out.
    """
    orders = np.asarray(orders, dtype=np.int64)
    orders = orders[prob.order_pair_start[orders + 1] > prob.order_pair_start[orders]]
    n_lines = prob.order_line_start[orders + 1] - prob.order_line_start[orders]
    n_pairs = prob.order_pair_start[orders + 1] - prob.order_pair_start[orders]
    blocks = []
    for length in np.unique(n_lines):
        if length == 0 or length > DP_MAX_LINES:
            continue
        group = orders[n_lines == length]
        k_max = int(max(1, n_pairs[n_lines == length].max(initial=1)))
        b = group.shape[0]
        line_ids = prob.order_line_start[group][:, None] + np.arange(length)[None, :]
        pair_start = prob.order_pair_start[group]
        pair_cnt = prob.order_pair_start[group + 1] - pair_start
        k_idx = np.arange(k_max)[None, :]
        pairs = np.where(k_idx < pair_cnt[:, None], pair_start[:, None] + k_idx, -1)
        arcs = np.full((b, int(length), k_max), -1, dtype=np.int64)
        valid = pairs >= 0
        pos_b, pos_k = np.nonzero(valid)
        pp = pairs[pos_b, pos_k]
        a_start = prob.pair_arc_start[pp]
        a_cnt = prob.pair_arc_start[pp + 1] - a_start
        rep_b = np.repeat(pos_b, a_cnt)
        rep_k = np.repeat(pos_k, a_cnt)
        arc_ids = np.repeat(a_start - np.concatenate([[0], np.cumsum(a_cnt)[:-1]]), a_cnt)
        arc_ids = arc_ids + np.arange(int(a_cnt.sum()))
        local_line = prob.arc_line[arc_ids] - prob.order_line_start[group[rep_b]]
        arcs[rep_b, local_line, rep_k] = arc_ids
        blocks.append(
            OrderBlock(
                orders=group,
                lines=line_ids,
                pairs=pairs,
                arcs=arcs,
                qty=prob.line_qty[line_ids],
            )
        )
    return blocks


def order_work(n_lines: int, n_pairs: int, *, counted_k: int = 0) -> int:
    """One order's DP work in steps of ~0.01 us: subsets, node tables, the rest.

    The subset steps are ``3^L`` (times ``counted_k + 1`` when the DP counts parcels up to
    ``counted_k``: a split penalty or a node limit); the cost tables ``2^L x K`` (weighted 4:
    filled, capacity-masked and minimised); ~2 us per order lays out and backtracks
    (measured at 1-10 lines, 10 nodes).
    """
    subsets = 3**n_lines * (counted_k + 1 if counted_k else 1)
    return subsets + 4 * (1 << n_lines) * max(1, n_pairs) + 200


def split_block(
    blk: OrderBlock, *, counted_k: int = 0, work: int | None = None
) -> list[OrderBlock]:
    """The block cut, in order, into chunks of at most ``work`` DP steps (:func:`order_work`).

    The DP solves each order on its own (a block only vectorises them), so the chunks'
    answers are the block's: a caller can stop between chunks, and a chunk's arrays stay
    small (a block's cost table holds ``orders x 2^L x K`` floats). Default
    :data:`DP_CHUNK_WORK`.
    """
    per_order = order_work(blk.num_lines, int(blk.pairs.shape[1]), counted_k=counted_k)
    rows = max(1, (DP_CHUNK_WORK if work is None else work) // per_order)
    n = int(blk.orders.shape[0])
    if n <= rows:
        return [blk]
    return [
        OrderBlock(
            orders=blk.orders[i : i + rows],
            lines=blk.lines[i : i + rows],
            pairs=blk.pairs[i : i + rows],
            arcs=blk.arcs[i : i + rows],
            qty=blk.qty[i : i + rows],
        )
        for i in range(0, n, rows)
    ]


class GaveUp(Exception):
    """A computation stopped because its ``give_up`` check said so (its answer is incomplete)."""


@dataclass
class DpAnswer:
    """Best pattern per order: its value and the (arc, units) it ships."""

    orders: I64
    value: F64  # relative to shipping nothing
    exact: np.ndarray  # bool per order
    sel_order: I64  # flattened: order of each chosen arc
    sel_arc: I64
    sel_qty: I64


def solve_blocks(
    prob: Problem,
    blocks: list[OrderBlock],
    c_arc: F64,
    c_pair: F64,
    *,
    arc_ub: I64 | None = None,
    pair_ok: np.ndarray | None = None,
    cap_units: I64 | None = None,
    split: float = 0.0,
    relax_partial: bool = False,
    give_up: Callable[[], bool] | None = None,
) -> DpAnswer:
    """Best pattern of every order in ``blocks``.

    ``c_arc`` is the cost per unit of each arc relative to leaving the unit unfilled and
    ``c_pair`` the fixed cost of each pair (any units, e.g. priced by multipliers).
    ``arc_ub`` (default: the problem's bound) limits units per arc; arcs with a bound below
    the line quantity make an order inexact unless ``relax_partial`` lets them carry the
    whole line (a relaxation, valid for bounds). ``pair_ok`` masks pairs out;
    ``cap_units`` (per pair, -1 = none) is the remaining unit capacity of the pair's node.
    ``give_up`` is asked before each block and every 64 orders of its backtrack: when it
    says True, :class:`GaveUp` is raised (at 2,000 literature orders the whole pass took
    0.25 s, too long to run past a deadline).
    """
    ub_all = prob.arc_ub if arc_ub is None else arc_ub
    outs_o: list[I64] = []
    outs_v: list[F64] = []
    outs_e: list[NDArray[np.bool_]] = []
    sel_o: list[int] = []
    sel_a: list[int] = []
    sel_q: list[int] = []
    max_nodes = prob.max_nodes
    for blk in blocks:
        if give_up is not None and give_up():
            raise GaveUp
        n_lines = blk.num_lines
        b = blk.arcs.shape[0]
        has_arc = blk.arcs >= 0
        arc_safe = np.where(has_arc, blk.arcs, 0)
        ub = np.where(has_arc, ub_all[arc_safe], 0)
        qty3 = blk.qty[:, :, None]
        full = has_arc & (ub >= qty3)
        partial = has_arc & (ub > 0) & (ub < qty3)
        usable = full | partial if relax_partial else full
        # with relax_partial the value is a bound (a relaxation) for orders with partial arcs
        exact = ~partial.any(axis=(1, 2))
        binds = np.zeros(b, dtype=bool)
        line_cost = np.where(usable, qty3 * c_arc[arc_safe], INF)
        pair_valid = blk.pairs >= 0
        pair_safe = np.where(pair_valid, blk.pairs, 0)
        fixed = np.where(pair_valid, c_pair[pair_safe], INF)
        if pair_ok is not None:
            fixed = np.where(pair_valid & pair_ok[pair_safe], fixed, INF)
        inc, subs, low = _subset_tables(n_lines)
        # block costs: fixed + sum of member lines, per node; min over nodes
        block_all = np.matmul(inc[None, :, :], line_cost) + fixed[:, None, :]  # B x 2^L x K
        if cap_units is not None:
            cap = np.where(pair_valid, cap_units[pair_safe], -1)
            qsum = inc @ blk.qty.T.astype(float)  # 2^L x B
            over = (cap[:, None, :] >= 0) & (qsum.T[:, :, None] > cap[:, None, :])
            block_all = np.where(over, INF, block_all)
            # a binding unit capacity couples the blocks a node serves (and partial lines may
            # pay off): such orders go to the MIP
            binding = (cap >= 0) & (cap < (blk.qty.sum(axis=1))[:, None]) & pair_valid
            binds = binding.any(axis=1)
            exact &= ~binds
        best_node = np.argmin(block_all, axis=2)
        block_cost = np.take_along_axis(block_all, best_node[:, :, None], axis=2)[:, :, 0]
        counted = split > 0.0 or (0 < max_nodes < n_lines)
        k_max = min(n_lines, max_nodes) if max_nodes > 0 else n_lines
        size = 1 << n_lines
        if counted:
            g, choice = counted_dp(block_cost, n_lines, k_max)
            counts = np.arange(k_max + 1)
            totals = g[:, size - 1, :] + split * np.maximum(counts - 1, 0)[None, :]
            k_best = np.argmin(totals, axis=1)
            value = totals[np.arange(b), k_best]
        else:
            g1, choice1 = subset_dp(block_cost, n_lines)
            value = g1[:, size - 1]
        # backtrack
        uses_partial = np.zeros(b, dtype=bool)
        for i in range(b):
            if give_up is not None and not i & 63 and give_up():
                raise GaveUp
            mask = size - 1
            kk = int(k_best[i]) if counted else 0
            while mask:
                c = int(choice[i, mask, kk]) if counted else int(choice1[i, mask])
                if c == 0:
                    mask ^= 1 << int(low[mask])
                    continue
                sub = int(subs[mask][c - 1])
                node_k = int(best_node[i, sub])
                members = [j for j in range(n_lines) if (sub >> j) & 1]
                for j in members:
                    arc = int(blk.arcs[i, j, node_k])
                    units = int(ub_all[arc])
                    if units < int(blk.qty[i, j]):
                        uses_partial[i] = True
                    sel_o.append(int(blk.orders[i]))
                    sel_a.append(arc)
                    sel_q.append(min(int(blk.qty[i, j]), units))
                mask ^= sub
                if counted:
                    kk -= 1
        if relax_partial:
            # the relaxation's optimum ships no line from a node short of it: it is feasible,
            # so it is the order's optimum too
            exact |= ~uses_partial & ~binds
        outs_o.append(blk.orders)
        outs_v.append(value)
        outs_e.append(np.asarray(exact, dtype=bool))
    if not outs_o:
        z = np.zeros(0, dtype=np.int64)
        return DpAnswer(z, np.zeros(0), np.zeros(0, dtype=bool), z, z, z)
    return DpAnswer(
        orders=np.concatenate(outs_o),
        value=np.concatenate(outs_v),
        exact=np.concatenate(outs_e),
        sel_order=np.asarray(sel_o, dtype=np.int64),
        sel_arc=np.asarray(sel_a, dtype=np.int64),
        sel_qty=np.asarray(sel_q, dtype=np.int64),
    )


def pattern_value(
    prob: Problem, arcs: I64, qty: I64, c_arc: F64, c_pair: F64, split: float
) -> float:
    """Value of one order's pattern under per-arc and per-pair costs, as the search counts it.

    Units times arc costs, plus each parcel's pair cost, plus ``split`` per parcel beyond the
    first (relative to shipping nothing when the costs are gains, as :func:`solve_order_bb`'s).
    """
    pairs = np.unique(prob.arc_pair[arcs])
    value = float(np.dot(qty, c_arc[arcs])) + float(np.sum(c_pair[pairs]))
    return value + split * max(int(pairs.shape[0]) - 1, 0)


#: Branch-and-bound nodes one order may explore before the caller falls back to a MIP.
BB_NODE_LIMIT = 2_000
#: Min-cost-flow fills (capacities binding) one search may run before it stops as at its
#: node limit: a flow costs ~0.1-0.5 ms, and a one-order MIP settles such an order in
#: ~0.4 s where the search would take ~1 s (50 capped nodes, 10 lines of partial stock)
BB_FLOW_LIMIT = 50
#: largest candidates x candidates x lines of an order whose dominance is computed: the
#: comparison is that many cells in several numpy arrays (an order of 30 lines over 5,000
#: nodes held gigabytes and minutes of CPU before its search, whose deadline it ignored);
#: beyond it the search runs without dominance, which only prunes
BB_DOMINANCE_CELLS = 4_000_000
#: arcs of an order from which the search reads the clock at every node, not every 32nd:
#: one node's fills walk every arc, so 32 of them overran a deadline by seconds
BB_CLOCK_EVERY_NODE_ARCS = 2_000


def solve_order_bb(
    prob: Problem,
    order: int,
    c_arc: F64,
    c_pair: F64,
    *,
    split: float = 0.0,
    arc_ub: I64 | None = None,
    pair_ok: NDArray[np.bool_] | None = None,
    node_limit: int = BB_NODE_LIMIT,
    incumbent: float = 0.0,
    pair_cap: I64 | None = None,
    deadline: float | None = None,
) -> tuple[float, I64, I64, float]:
    """Best pattern of one order by branch and bound over its set of open nodes.

    Handles what the subset DP cannot: lines split over several nodes because each holds
    only part of the quantity. Given the open nodes, every line fills greedily from its
    cheapest open nodes, which is optimal without a shared capacity. ``pair_cap`` (units
    each pair may still ship, -1 = any) adds node capacities: where the greedy fill would
    load an open node past its capacity, the open nodes' fill is a small min-cost flow
    (:func:`_capped_fill`), and the greedy fill stays a bound.

    Fixed costs are non-negative, so a search node is bounded by the larger of two
    relaxations of its subtree: (a) every line filled from all nodes still allowed, plus the
    cheapest fixed cost of one more node; (b) the same fill where each undecided node's fixed
    cost (and split penalty) is spread over the most units it could ship for this order and
    added to the cost of every unit it ships. Dominance prunes symmetric choices: a node
    whose every arc is matched by another node with at least the units, at most the unit
    cost and at most the fixed cost only opens together with that node (swapping it for
    the dominating node never costs more, so an optimum of that form exists).

    Returns (value relative to shipping nothing, arcs, units, lower bound): the bound equals
    the value when the search finished, and is the least bound of the unexplored subtrees
    when it stopped at ``node_limit`` nodes or at ``deadline`` (``time.perf_counter()``).
    ``incumbent`` (<= 0) is the value of a pattern the caller already holds: the search
    only looks for better ones, and when it finds none the answer is ``incumbent`` with no
    arcs.
    """
    ub_all = prob.arc_ub if arc_ub is None else arc_ub
    p0, p1 = int(prob.order_pair_start[order]), int(prob.order_pair_start[order + 1])
    line_range = prob.order_lines(order)
    lines = list(line_range)
    n_lines = len(lines)
    line_pos = {ln: i for i, ln in enumerate(lines)}
    qty = prob.line_qty[line_range.start : line_range.stop].tolist()
    # candidate nodes: pairs that are allowed and can gain something
    cand: list[int] = []
    fixed: list[float] = []
    most: list[int] = []  # units the node could ship for this order
    per_line: list[list[tuple[float, int, int, int]]] = [[] for _ in lines]  # (c, k, ub, arc)
    # the order's slices as lists: element access on numpy arrays costs more than the search
    arc_start = prob.pair_arc_start[p0 : p1 + 1].tolist()
    a_lo, a_hi = arc_start[0], arc_start[-1]
    arc_ub_l = ub_all[a_lo:a_hi].tolist()
    arc_c_l = c_arc[a_lo:a_hi].tolist()
    arc_line_l = prob.arc_line[a_lo:a_hi].tolist()
    fixed_l = c_pair[p0:p1].tolist()
    ok_l = None if pair_ok is None else pair_ok[p0:p1].tolist()
    cap_l = None if pair_cap is None else pair_cap[p0:p1].tolist()
    caps: list[int] = []  # per candidate: units it may ship when below ``most``, else -1
    capped = 0  # bit mask of the candidates with such a capacity
    for j in range(p1 - p0):
        if ok_l is not None and not ok_l[j]:
            continue
        cap = -1 if cap_l is None else int(cap_l[j])
        if cap == 0:
            continue
        gains = []
        for a in range(arc_start[j], arc_start[j + 1]):
            u = arc_ub_l[a - a_lo]
            c = arc_c_l[a - a_lo]
            if u > 0 and c < 0:
                i = line_pos[arc_line_l[a - a_lo]]
                gains.append((c, i, min(u, qty[i]), a))
        if not gains:
            continue
        k = len(cand)
        cand.append(p0 + j)
        fixed.append(float(fixed_l[j]))
        reach = sum(u for _c, _i, u, _a in gains)
        if 0 < cap < reach:
            caps.append(cap)
            capped |= 1 << k
            reach = cap
        else:
            caps.append(-1)
        most.append(reach)
        for c, i, u, a in gains:
            per_line[i].append((c, k, u, a))
    for entries in per_line:
        entries.sort()
    n_cand = len(cand)
    max_nodes = prob.max_nodes if prob.max_nodes > 0 else n_cand
    # relaxation (b) and dominance need non-negative fixed costs (always the case for real
    # prices and for non-positive multipliers)
    nonneg = all(f >= 0.0 for f in fixed) and split >= 0.0

    # per line, (unit cost, the node's bit, units) cheapest first: the greedy fills test a
    # bit against the open nodes' mask
    by_bit = [[(c, 1 << k, u) for c, k, u, _a in entries] for entries in per_line]
    # the clock every 32nd node, or every node where one node's fills walk many arcs
    stride = 0 if a_hi - a_lo > BB_CLOCK_EVERY_NODE_ARCS else 31
    if n_cand and not stride and deadline is not None and time.perf_counter() > deadline:
        # many arcs, past the deadline already (their tables took it): no search, not even
        # its tables (seconds over thousands of nodes); relaxation (a) at the root, the
        # search's bound at its first node, is the bound
        best = min(incumbent, 0.0)
        root = _greedy(by_bit, qty, (1 << n_cand) - 1) + min(fixed)
        none = np.zeros(0, dtype=np.int64)
        return best, none, none, min(best, root)

    def spread_table(extra: float) -> list[list[tuple[float, int, int]]]:
        """Per line, its arcs at their unit cost (bit of the node) merged with the same arcs
        at the unit cost plus the node's fixed cost (and ``extra``) spread over the most units
        the node could ship (bit of the node shifted by ``n_cand``; only those that gain),
        cheapest first: relaxation (b) is one greedy fill of it."""
        amort = [(fixed[k] + extra) / most[k] for k in range(n_cand)]
        return [
            sorted(
                plain
                + [
                    (c + amort[k], 1 << (k + n_cand), u)
                    for c, k, u, _a in entries
                    if c + amort[k] < 0
                ]
            )
            for plain, entries in zip(by_bit, per_line, strict=True)
        ]

    # relaxation (b)'s tables without and with the split penalty (only where it is used)
    spread: list[list[list[tuple[float, int, int]]]] = []
    if nonneg:
        unsplit = spread_table(0.0)
        spread = [unsplit, unsplit if split == 0.0 else spread_table(split)]
    dominates = [0] * n_cand  # bit j of dominates[k]: k strictly dominates j
    dominated_by = [0] * n_cand
    if nonneg and n_cand > 1 and n_cand * n_cand * n_lines <= BB_DOMINANCE_CELLS:
        ub_m = np.zeros((n_cand, n_lines))
        cost_m = np.full((n_cand, n_lines), np.inf)
        for i, entries in enumerate(per_line):
            for c, k, u, _a in entries:
                ub_m[k, i], cost_m[k, i] = u, c
        has = ub_m > 0
        fx = np.asarray(fixed)
        reach_m = np.asarray(most, dtype=float)  # the most each node can ship (capacity)
        # dom[a, b]: a can take over everything b ships, at no higher cost
        dom = (
            (fx[:, None] <= fx[None, :])
            & (reach_m[:, None] >= reach_m[None, :])
            & np.all(~has[None, :, :] | (ub_m[:, None, :] >= ub_m[None, :, :]), axis=2)
            & np.all(~has[None, :, :] | (cost_m[:, None, :] <= cost_m[None, :, :]), axis=2)
        )
        np.fill_diagonal(dom, False)
        idx = np.arange(n_cand)
        strict = dom & (~dom.T | (idx[:, None] < idx[None, :]))
        for a, b in zip(*np.nonzero(strict), strict=True):
            dominates[int(a)] |= 1 << int(b)
            dominated_by[int(b)] |= 1 << int(a)

    def fill(mask: int, load: list[int] | None = None) -> float:
        """Greedy fill from the open nodes ``mask``, adding their units to ``load`` if given."""
        if load is not None:
            return _greedy_load(per_line, qty, mask, load)
        return _greedy(by_bit, qty, mask)

    n_flows = 0  # min-cost-flow fills run (see BB_FLOW_LIMIT)
    late = False  # past the deadline

    def fill_capped(mask: int) -> float:
        """The open nodes' best fill under their capacities (the greedy one when it fits)."""
        load = [0] * n_cand
        total = fill(mask, load)
        if all(load[k] <= caps[k] for k in range(n_cand) if (capped >> k) & 1):
            return total
        nonlocal n_flows
        n_flows += 1
        return _capped_fill(per_line, qty, caps, mask)[0]

    def fill_spread(mask: int, free: int, count: int) -> float:
        """Relaxation (b): open nodes at their unit cost, free nodes with the spread cost."""
        return _greedy(spread[1 if count else 0], qty, mask | (free << n_cand))

    # order candidates by standalone value, most useful first: fill(1 << k) summed over k's
    # own arcs alone (one per line, the same sum in the same order), so O(arcs) in all
    # rather than a walk over every arc per candidate
    own: list[list[tuple[float, int]]] = [[] for _ in range(n_cand)]
    for i, entries in enumerate(per_line):
        for c, k, u, _a in entries:
            own[k].append((c, min(u, qty[i])))
    alone = []
    for k in range(n_cand):
        total = 0.0
        for c, u in own[k]:
            total += u * c
        alone.append(fixed[k] + total)
    order_k = sorted(range(n_cand), key=lambda k: alone[k])
    # shipping nothing is always possible; a caller's pattern may be better still
    best_value, best_mask = min(incumbent, 0.0), 0
    explored = 0
    # suffix masks of the candidates still to decide at each depth
    suffix = [0] * (n_cand + 1)
    suffix_min_fixed = [math.inf] * (n_cand + 1)
    for d in range(n_cand - 1, -1, -1):
        suffix[d] = suffix[d + 1] | (1 << order_k[d])
        suffix_min_fixed[d] = min(suffix_min_fixed[d + 1], fixed[order_k[d]])

    pending: list[float] = []  # bounds of subtrees left unexplored at the node limit

    def more_bound(
        depth: int, mask: int, free: int, fixed_sum: float, count: int, cut: float = math.inf
    ) -> float:
        """Lower bound on every completion that opens at least one more node (relaxation (a)
        alone when it reaches ``cut``: the larger one prunes as well)."""
        extra = split * max(count - 1, 0)
        opening = suffix_min_fixed[depth] + (split if count else 0.0)
        a = fixed_sum + extra + fill(mask | free) + opening
        if not nonneg or a >= cut:
            return a
        return max(a, fixed_sum + extra + fill_spread(mask, free, count))

    def subtree_bound(depth: int, mask: int, free: int, fixed_sum: float, count: int) -> float:
        extra = split * max(count - 1, 0)
        stop = fixed_sum + extra + fill(mask) if count else 0.0
        if depth == n_cand or count >= max_nodes or not free:
            return stop
        return min(stop, more_bound(depth, mask, free, fixed_sum, count))

    root_bound: list[float] = []  # the root's bound, once computed

    def left_bound(depth: int, mask: int, free: int, fixed_sum: float, count: int) -> float:
        """A bound on a subtree left unexplored: its own, or, past the deadline on an order of
        many arcs, the root's (computed once; a relaxation of every subtree where fixed costs
        are non-negative): unwinding a deep search computed two fills per level, seconds."""
        if not (late and not stride and nonneg):
            return subtree_bound(depth, mask, free, fixed_sum, count)
        if not root_bound:
            root_bound.append(subtree_bound(0, 0, suffix[0], 0.0, 0))
        return root_bound[0]

    def dfs(depth: int, mask: int, blocked: int, fixed_sum: float, count: int) -> bool:
        """Explore; ``blocked`` = undecided nodes ruled out by dominance (a dominator is out)."""
        nonlocal explored, best_value, best_mask, late
        explored += 1
        free = suffix[depth] & ~blocked
        if deadline is not None and not explored & stride and time.perf_counter() > deadline:
            late = True
        if late or explored > node_limit or n_flows > BB_FLOW_LIMIT:
            pending.append(left_bound(depth, mask, free, fixed_sum, count))
            return False
        extra = split * max(count - 1, 0)
        if count:
            value = fixed_sum + extra + fill(mask)  # a bound when a capacity binds
            if value < best_value - 1e-12 and mask & capped:
                value = fixed_sum + extra + fill_capped(mask)
            if value < best_value - 1e-12:
                best_value, best_mask = value, mask
        if depth == n_cand or count >= max_nodes or not free:
            return True
        cut = best_value - 1e-12
        if more_bound(depth, mask, free, fixed_sum, count, cut) >= cut:
            return True
        k = order_k[depth]
        if (blocked >> k) & 1:
            return dfs(depth + 1, mask, blocked, fixed_sum, count)
        if not dfs(depth + 1, mask | (1 << k), blocked, fixed_sum + fixed[k], count + 1):
            pending.append(
                left_bound(depth + 1, mask, suffix[depth + 1] & ~blocked, fixed_sum, count)
            )
            return False
        # leaving k closed: nodes it dominates may not open either (an open one forbids it)
        if dominates[k] & mask:
            return True
        return dfs(depth + 1, mask, blocked | dominates[k], fixed_sum, count)

    if n_cand:
        dfs(0, 0, 0, 0.0, 0)
    lower = min([best_value, *pending])
    mask = best_mask
    arcs: list[int] = []
    units: list[int] = []
    if mask & capped:
        _total, flows = _capped_fill(per_line, qty, caps, mask)
        for i, entries in enumerate(per_line):
            for _c, k, _u, a in entries:
                take = flows.get((i, k), 0)
                if take > 0:
                    arcs.append(a)
                    units.append(take)
        return (
            best_value,
            np.asarray(arcs, dtype=np.int64),
            np.asarray(units, dtype=np.int64),
            lower,
        )
    for i, entries in enumerate(per_line):
        need = qty[i]
        for _c, k, u, a in entries:
            if (mask >> k) & 1 and need > 0:
                take = min(u, need)
                arcs.append(a)
                units.append(take)
                need -= take
    return best_value, np.asarray(arcs, dtype=np.int64), np.asarray(units, dtype=np.int64), lower


def _greedy(table: list[list[tuple[float, int, int]]], qty: list[int], mask: int) -> float:
    """Cost of filling each line from its cheapest entries whose bit is in ``mask``."""
    total = 0.0
    for entries, need in zip(table, qty, strict=True):
        for c, bit, u in entries:
            if mask & bit:
                if u < need:
                    total += u * c
                    need -= u
                else:
                    total += need * c
                    break
    return total


def _greedy_load(
    per_line: list[list[tuple[float, int, int, int]]], qty: list[int], mask: int, load: list[int]
) -> float:
    """:func:`_greedy` over the open nodes ``mask``, adding each node's units to ``load``."""
    total = 0.0
    for entries, need in zip(per_line, qty, strict=True):
        for c, k, u, _a in entries:
            if (mask >> k) & 1:
                take = u if u < need else need
                total += take * c
                need -= take
                load[k] += take
                if need == 0:
                    break
    return total


def _capped_fill(
    per_line: list[list[tuple[float, int, int, int]]], qty: list[int], caps: list[int], mask: int
) -> tuple[float, dict[tuple[int, int], int]]:
    """Least-cost fill of an order's lines from the open nodes ``mask`` under capacities.

    A min-cost flow (source -> line, at most its quantity; line -> node, at most the arc's
    units, at the arc's cost; node -> sink, at most its capacity ``caps[k]``, -1 = any) of
    any size: successive shortest paths, stopping when no path has a negative cost (the
    cost is convex in the flow, so that flow is optimal). Costs are relative to shipping
    nothing, so a unit ships only where it gains. Returns (cost, units per (line, node)).
    """
    n_lines = len(qty)
    nodes = [k for k in range(len(caps)) if (mask >> k) & 1]
    pos = {k: n_lines + 1 + j for j, k in enumerate(nodes)}
    sink = n_lines + 1 + len(nodes)
    n_vert = sink + 1
    # edges as parallel lists; edge e and e ^ 1 are each other's reverse
    head: list[int] = []
    cap: list[int] = []
    cost: list[float] = []
    adj: list[list[int]] = [[] for _ in range(n_vert)]
    line_edge: dict[tuple[int, int], int] = {}

    def edge(a: int, b: int, c: int, w: float) -> int:
        e = len(head)
        head.extend((b, a))
        cap.extend((c, 0))
        cost.extend((w, -w))
        adj[a].append(e)
        adj[b].append(e + 1)
        return e

    reach = dict.fromkeys(nodes, 0)
    for i, entries in enumerate(per_line):
        edge(0, 1 + i, qty[i], 0.0)
        for c, k, u, _a in entries:
            if (mask >> k) & 1:
                take = min(u, qty[i])
                line_edge[(i, k)] = edge(1 + i, pos[k], take, c)
                reach[k] += take
    for k in nodes:
        edge(pos[k], sink, caps[k] if caps[k] >= 0 else reach[k], 0.0)
    total = 0.0
    while True:
        # Bellman-Ford (queue-based) from the source over the residual graph
        dist = [math.inf] * n_vert
        prev = [-1] * n_vert
        dist[0] = 0.0
        queue = deque([0])
        queued = [False] * n_vert
        queued[0] = True
        while queue:
            a = queue.popleft()
            queued[a] = False
            da = dist[a]
            for e in adj[a]:
                if cap[e] > 0:
                    b = head[e]
                    nd = da + cost[e]
                    if nd < dist[b] - 1e-12:
                        dist[b] = nd
                        prev[b] = e
                        if not queued[b]:
                            queued[b] = True
                            queue.append(b)
        if dist[sink] >= -1e-12:
            break
        push = math.inf
        b = sink
        while b != 0:
            e = prev[b]
            push = min(push, cap[e])
            b = head[e ^ 1]
        b = sink
        while b != 0:
            e = prev[b]
            cap[e] -= int(push)
            cap[e ^ 1] += int(push)
            b = head[e ^ 1]
        total += push * dist[sink]
    flows = {key: cap[e ^ 1] for key, e in line_edge.items() if cap[e ^ 1] > 0}
    return total, flows
