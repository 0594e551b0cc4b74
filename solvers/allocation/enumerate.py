"""Every pattern of an order within a reduced-cost threshold of its optimum.

Under multipliers ``pi <= 0`` of the shared rows, the Lagrangian bound is
``L = sum_o min_c (cost_c - pi use_c) + pi b`` and, for any feasible allocation choosing
pattern ``c_o`` for every order,

.. code-block:: text

    cost = L + sum_o rc(c_o) + pi (use - b)  >=  L + sum_o rc(c_o)

with ``rc(c) = cost_c - pi use_c - min_c'(...)`` >= 0 and ``pi (use - b) >= 0``. So an
allocation that costs less than ``L + delta`` uses only patterns with ``rc < delta``. With
every such pattern enumerated, the pattern MIP over them bounds the whole problem:
``opt >= min(L + delta, bound of that MIP)`` (reduced-cost fixing on the Dantzig-Wolfe
master). Fewer, near-optimal patterns also make a rich pool for the integer phase.

An order's pattern sends every line whole to one open node or leaves it unfilled. The
enumeration is *complete* (every pattern within the threshold) when every line has one unit:
then no pattern can split a line or fill it in part. Orders with more candidate nodes than
:data:`MAX_NODES` are not enumerated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from solvers.allocation.problem import F64, I64, MICRO, Problem

#: orders with more candidate nodes are not enumerated (2^K node subsets)
MAX_NODES = 12
_TOL = 1e-9


def enumerable(prob: Problem) -> bool:
    """True when :func:`near_columns` can list every pattern of every order (complete)."""
    if not np.all(prob.line_qty == 1):
        return False
    return bool(np.diff(prob.order_pair_start).max(initial=0) <= MAX_NODES)


@dataclass
class OrderPatterns:
    """Patterns of one order within a threshold of its optimum (values relative to none)."""

    best: float  # the order's optimum (<= 0: shipping nothing is a pattern)
    values: list[float]
    arcs: list[I64]
    qty: list[I64]
    complete: bool  # every pattern within the threshold is listed


def _subset_values(
    line_cost: F64, fixed: F64, split: float, max_nodes: int
) -> tuple[F64, F64, I64]:
    """Per node subset: best value with exactly those nodes allowed, fixed cost, size."""
    n_lines, k = line_cost.shape
    size = 1 << k
    mins = np.full((size, n_lines), np.inf)
    fixed_s = np.zeros(size)
    count = np.zeros(size, dtype=np.int64)
    for bit in range(k):
        lo, hi = 1 << bit, 2 << bit
        mins[lo:hi] = np.minimum(mins[0:lo], line_cost[:, bit][None, :])
        fixed_s[lo:hi] = fixed_s[0:lo] + fixed[bit]
        count[lo:hi] = count[0:lo] + 1
    value = fixed_s + split * np.maximum(count - 1, 0) + np.minimum(mins, 0.0).sum(axis=1)
    value[0] = 0.0
    if max_nodes > 0:
        value[count > max_nodes] = np.inf
    return value, fixed_s + split * np.maximum(count - 1, 0), count


def order_patterns(
    prob: Problem,
    order: int,
    c_arc: F64,
    c_pair: F64,
    slack: float,
    *,
    limit: int,
) -> OrderPatterns | None:
    """Patterns of ``order`` worth at most its optimum + ``slack`` under these costs.

    ``c_arc`` (per unit, relative to leaving it unfilled) and ``c_pair`` (per parcel) are
    the reduced costs of :func:`~solvers.allocation.highs_model.reduced_costs`. Returns
    None for orders with more than :data:`MAX_NODES` candidate nodes; stops listing after
    ``limit`` patterns (``complete`` is then False).
    """
    p0, p1 = int(prob.order_pair_start[order]), int(prob.order_pair_start[order + 1])
    k = p1 - p0
    lines = prob.order_lines(order)
    n_lines = len(lines)
    qty = prob.line_qty[lines.start : lines.stop]
    complete = bool(np.all(qty == 1))
    if k == 0:
        return OrderPatterns(
            0.0, [0.0], [np.zeros(0, dtype=np.int64)], [np.zeros(0, np.int64)], True
        )
    if k > MAX_NODES:
        return None
    arcs = np.arange(int(prob.pair_arc_start[p0]), int(prob.pair_arc_start[p1]))
    a_line = prob.arc_line[arcs] - lines.start
    a_k = prob.arc_pair[arcs] - p0
    whole = prob.arc_ub[arcs] >= qty[a_line]
    if not np.all(whole | (prob.arc_ub[arcs] == 0)):
        complete = False
    line_cost = np.full((n_lines, k), np.inf)
    arc_at = np.full((n_lines, k), -1, dtype=np.int64)
    line_cost[a_line[whole], a_k[whole]] = qty[a_line[whole]] * c_arc[arcs[whole]]
    arc_at[a_line[whole], a_k[whole]] = arcs[whole]
    split = prob.split / MICRO
    value, base, _count = _subset_values(line_cost, c_pair[p0:p1], split, prob.max_nodes)
    best = float(min(0.0, value.min()))
    threshold = best + slack + _TOL
    out_v: list[float] = []
    out_a: list[I64] = []
    out_q: list[I64] = []
    for subset in np.argsort(value, kind="stable").tolist():
        if value[subset] > threshold:
            break
        nodes = [j for j in range(k) if (subset >> j) & 1]
        # options per line: (cost, node) with node -1 = unfilled, cheapest first
        options = [
            sorted([(0.0, -1)] + [(float(line_cost[i, j]), j) for j in nodes if arc_at[i, j] >= 0])
            for i in range(n_lines)
        ]
        rest = np.concatenate([np.cumsum([o[0][0] for o in options][::-1])[::-1], [0.0]])
        found = _Listing(options, rest.tolist(), subset, threshold, limit - len(out_v))
        found.walk(0, float(base[subset]), 0)
        for sel in found.choices:
            out_a.append(np.array([arc_at[j, c] for j, c in sel], dtype=np.int64))
            out_q.append(np.array([int(qty[j]) for j, _c in sel], dtype=np.int64))
        out_v.extend(found.values)
        stopped = found.stopped
        if stopped:
            return OrderPatterns(best, out_v, out_a, out_q, False)
    return OrderPatterns(best, out_v, out_a, out_q, complete)


class _Listing:
    """Depth-first listing of line assignments within a threshold, every node used."""

    def __init__(
        self,
        options: list[list[tuple[float, int]]],
        rest: list[float],
        full: int,
        threshold: float,
        limit: int,
    ) -> None:
        self.options, self.rest, self.full = options, rest, full
        self.threshold, self.limit = threshold, limit
        self.choice = [-1] * len(options)
        self.values: list[float] = []
        self.choices: list[list[tuple[int, int]]] = []
        self.stopped = False

    def walk(self, i: int, acc: float, used: int) -> None:
        """Assign line ``i`` onwards (``acc`` so far, ``used`` nodes so far)."""
        if self.stopped:
            return
        if i == len(self.options):
            if used != self.full:
                return  # a node of the subset ships nothing: listed under a smaller subset
            if len(self.values) >= self.limit:
                self.stopped = True
                return
            self.values.append(acc)
            self.choices.append([(j, c) for j, c in enumerate(self.choice) if c >= 0])
            return
        for c, j in self.options[i]:
            if acc + c + self.rest[i + 1] > self.threshold:
                break
            self.choice[i] = j
            self.walk(i + 1, acc + c, used | (1 << j) if j >= 0 else used)


@dataclass
class NearColumns:
    """Patterns within a threshold for every order, and the Lagrangian bound they imply."""

    orders: I64
    arcs: list[I64]
    qty: list[I64]
    best: F64  # per order, its least ``cost - pi use`` (currency)
    bound: float  # L at these multipliers (currency); a valid bound only when enumerable()
    complete: bool  # every pattern of every order within the threshold is listed


def near_columns(
    prob: Problem,
    c_arc: F64,
    c_pair: F64,
    rhs_term: float,
    slack: float,
    *,
    per_order: int,
    total: int,
    deadline: float | None = None,
) -> NearColumns | None:
    """Every order's patterns within ``slack`` of its optimum (at most ``total`` in all).

    ``rhs_term`` is ``pi b`` of the multipliers behind ``c_arc``/``c_pair``. Returns None
    when some order cannot be enumerated (too many nodes) or the ``deadline``
    (``time.perf_counter()``) passes first; ``complete`` is False when a
    limit cut a list short or some line has more than one unit. ``best`` and ``bound`` are
    exact (a certified Lagrangian bound) only when :func:`enumerable` holds: elsewhere
    patterns that split or part-fill a line are missing.
    """
    constant = (
        np.bincount(
            prob.line_order, weights=prob.line_qty * prob.line_pen, minlength=prob.num_orders
        )
        / MICRO
    )
    orders: list[int] = []
    arcs: list[I64] = []
    qty: list[I64] = []
    best = constant.copy()
    complete = True
    for o in range(prob.num_orders):
        room = min(per_order, total - len(orders))
        if room <= 0 or (deadline is not None and time.perf_counter() > deadline):
            return None
        pats = order_patterns(prob, o, c_arc, c_pair, slack, limit=room)
        if pats is None:
            return None
        complete &= pats.complete
        best[o] += pats.best
        orders.extend([o] * len(pats.values))
        arcs.extend(pats.arcs)
        qty.extend(pats.qty)
    return NearColumns(
        orders=np.asarray(orders, dtype=np.int64),
        arcs=arcs,
        qty=qty,
        best=best,
        bound=float(best.sum()) + rhs_term,
        complete=complete,
    )
