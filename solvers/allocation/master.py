"""Dantzig-Wolfe decomposition: one column per order pattern, stock and capacity shared.

Orders interact only through stock and capacity. The master problem picks one *pattern*
(a complete allocation of the order: which node ships which line, what stays unfilled) per
order, subject to the shared rows:

.. code-block:: text

    min  sum_{o,c} cost_oc z_oc
    s.t. sum_c z_oc = 1                       every order takes one pattern (convexity)
         sum_{o,c} use_oc,r z_oc <= b_r       stock per node x SKU, capacity, VIP shares
         z binary

Its LP relaxation convexifies each order's own problem (the set-cover-like choice of
parcels), so its bound is the Lagrangian dual bound, much tighter than the compact LP.
Patterns are priced by the batched DP of :mod:`solvers.allocation.dp` (exact per order), or
by a one-order MIP for orders the DP does not cover. For any non-positive multipliers the
Lagrangian value ``sum_o min_c (cost_oc - pi use_oc) + pi b`` is a valid lower bound on the
optimum over *all* patterns, so the bound reported is certified even when the column
generation stops early.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
from scipy import sparse

from solvers.allocation.dp import (
    DpAnswer,
    GaveUp,
    OrderBlock,
    build_blocks,
    pattern_value,
    solve_blocks,
    solve_order_bb,
)
from solvers.allocation.helper_process import Channel, HelperProcess
from solvers.allocation.highs_model import (
    SMALL_MIP_OPTIONS,
    AllocationModel,
    Deadline,
    Duals,
    Rows,
    RunFailures,
    count_failures_in,
    coupling_rows,
    failures_of_solve,
    model_threads,
    new_highs,
    note_helper_failures,
    reduced_costs,
    run_highs,
    set_time_limit,
    status_text,
)
from solvers.allocation.problem import F64, I64, MICRO, Problem, ranges
from solvers.allocation.request import AllocationRequest
from solvers.cancel import cancel_with, current_cancel

log = logging.getLogger(__name__)

#: optimality tolerance of :class:`LooseLp`'s interior point solve
LOOSE_TOL = 1e-3


@dataclass
class Patterns:
    """A pool of order patterns as flat arrays (units per arc)."""

    order: list[I64] = field(default_factory=list)
    cost: list[I64] = field(default_factory=list)
    arcs: list[I64] = field(default_factory=list)  # per pattern
    qty: list[I64] = field(default_factory=list)
    seen: set[tuple[int, bytes, bytes]] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.arcs)


def pattern_cost(prob: Problem, order: int, arcs: I64, qty: I64) -> int:
    """Exact cost (micro) of one order shipping ``qty`` on ``arcs``, the rest unfilled."""
    lines = prob.order_lines(order)
    total = int(
        np.dot(prob.line_qty[lines.start : lines.stop], prob.line_pen[lines.start : lines.stop])
    )
    if arcs.size == 0:
        return total
    total += int(np.dot(qty, prob.arc_gain[arcs]))
    pairs = np.unique(prob.arc_pair[arcs[qty > 0]])
    total += int(np.sum(prob.pair_fixed[pairs]))
    total += prob.split * max(0, int(pairs.shape[0]) - 1)
    return total


def pattern_costs(prob: Problem, orders: list[int], arcs: list[I64], qty: list[I64]) -> I64:
    """:func:`pattern_cost` of every pattern ``orders[i]``, ``arcs[i]``, ``qty[i]`` at once."""
    k = len(orders)
    per_line = prob.line_qty * prob.line_pen
    total = _segment_sums(per_line, prob.order_line_start)[np.asarray(orders, dtype=np.int64)]
    lengths = np.fromiter((a.shape[0] for a in arcs), dtype=np.int64, count=k)
    if not lengths.any():
        return total
    ends = np.concatenate([[0], np.cumsum(lengths)])
    all_arcs = np.concatenate(arcs).astype(np.int64, copy=False)
    all_qty = np.concatenate(qty).astype(np.int64, copy=False)
    total += _segment_sums(all_qty * prob.arc_gain[all_arcs], ends)
    # the parcels: distinct pairs of the arcs that carry units, per pattern
    carry = all_qty > 0
    pattern = np.repeat(np.arange(k, dtype=np.int64), lengths)[carry]
    opened = np.unique(pattern * prob.num_pairs + prob.arc_pair[all_arcs[carry]])
    of, pair = np.divmod(opened, prob.num_pairs)
    np.add.at(total, of, prob.pair_fixed[pair])
    parcels = np.bincount(of, minlength=k)
    return total + prob.split * np.maximum(parcels - 1, 0)


def _segment_sums(values: I64, bounds: I64) -> I64:
    """Exact sums of ``values[bounds[i]:bounds[i + 1]]`` (integers; empty segments sum to 0)."""
    cum = np.zeros(values.shape[0] + 1, dtype=np.int64)
    np.cumsum(values, out=cum[1:])
    # differences of the running sum are exact even where it wraps (int64 arithmetic)
    return cum[bounds[1:]] - cum[bounds[:-1]]


#: the shared rows, by their name in :class:`Rows` and :class:`Duals`
_SHARED = ("stock", "cap_units", "cap_orders", "vip_units", "vip_orders")


@dataclass
class OrderClasses:
    """Orders grouped into classes of identical orders (same lines, pairs, arcs and prices).

    Identical orders have the same patterns, costs and shared-row use, so the master LP can
    hold one convexity row per class (right-hand side: the class size) and one column per
    class pattern, and pricing needs one order per class: both exact. ``rep`` is the
    representative (first) order of each class, ``of`` the class of every order and
    ``shift`` the offset from a member's arcs to its representative's. A class master's
    columns belong to the representatives; the integer phase works on the per-order master
    of :meth:`Master.expand`.
    """

    rep: I64
    size: I64
    of: I64
    shift: I64

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return int(self.rep.shape[0])

    @classmethod
    def identity(cls, prob: Problem) -> OrderClasses:
        """Every order its own class."""
        n_o = prob.num_orders
        idx = np.arange(n_o, dtype=np.int64)
        return cls(
            rep=idx, size=np.ones(n_o, dtype=np.int64), of=idx, shift=np.zeros(n_o, np.int64)
        )

    def members(self) -> list[I64]:
        """Orders of every class, representative first."""
        sort = np.argsort(self.of, kind="stable")
        bounds = np.cumsum(self.size)[:-1]
        return np.split(sort.astype(np.int64), bounds)


def order_classes(prob: Problem) -> OrderClasses:
    """Group identical orders: equal lines, candidate pairs, arcs, bounds and prices."""
    n_o = prob.num_orders
    ls, ps = prob.order_line_start, prob.order_pair_start
    arc_start = prob.pair_arc_start[ps]
    first: dict[bytes, int] = {}
    of = np.empty(n_o, dtype=np.int64)
    reps: list[int] = []
    for o in range(n_o):
        l0, l1 = int(ls[o]), int(ls[o + 1])
        p0, p1 = int(ps[o]), int(ps[o + 1])
        a0, a1 = int(arc_start[o]), int(arc_start[o + 1])
        key = b"|".join(
            (
                bytes([int(prob.order_vip[o])]),
                prob.line_sku[l0:l1].tobytes(),
                prob.line_qty[l0:l1].tobytes(),
                prob.line_pen[l0:l1].tobytes(),
                prob.line_restricted[l0:l1].tobytes(),
                prob.pair_node[p0:p1].tobytes(),
                prob.pair_ship[p0:p1].tobytes(),
                prob.pair_late[p0:p1].tobytes(),
                (prob.arc_pair[a0:a1] - p0).tobytes(),
                (prob.arc_line[a0:a1] - l0).tobytes(),
                prob.arc_ub[a0:a1].tobytes(),
                prob.arc_cost[a0:a1].tobytes(),
            )
        )
        c = first.setdefault(key, len(reps))
        if c == len(reps):
            reps.append(o)
        of[o] = c
    rep = np.asarray(reps, dtype=np.int64)
    size = np.bincount(of, minlength=rep.shape[0]).astype(np.int64)
    shift = (arc_start[:-1] - arc_start[rep[of]]).astype(np.int64)
    return OrderClasses(rep=rep, size=size, of=of, shift=shift)


class Master:
    """The pattern master LP/MIP in HiGHS, grown column by column."""

    def __init__(
        self,
        prob: Problem,
        *,
        threads: int | None = None,
        seed: int = 0,
        classes: OrderClasses | None = None,
    ) -> None:
        self.prob = prob
        #: one convexity row per class of identical orders (every order its own by default)
        self.classes = OrderClasses.identity(prob) if classes is None else classes
        #: the orders with a convexity row (class representatives) and their multiplicity
        self.orders: I64 = self.classes.rep
        self.weight: F64 = self.classes.size.astype(np.float64)
        self.rows: Rows = coupling_rows(prob, kind="shared")
        self.pool = Patterns()
        self.col_order: list[int] = []
        self.threads, self.seed = model_threads(threads), seed
        self.h = new_highs(self.threads)
        self.h.setOptionValue("random_seed", int(seed))
        self.h.HandleKeyboardInterrupt = True
        self.deadline = Deadline(self.h)
        n_o = self.classes.num_classes
        n_r = self.rows.num_coupling
        lower = np.concatenate([self.weight, np.full(n_r, -highspy.kHighsInf)])
        upper = np.concatenate([self.weight, self.rows.rhs])
        self.h.addRows(
            n_o + n_r,
            lower,
            upper,
            0,
            np.zeros(n_o + n_r, dtype=np.int32),
            np.zeros(0, dtype=np.int32),
            np.zeros(0),
        )
        self.num_rows = n_o + n_r
        self.integer = False
        # shared-row coefficients of every column (for neighbourhoods and usage)
        self._coo_r: list[I64] = []
        self._coo_c: list[I64] = []
        self._coo_v: list[F64] = []
        self._usage: sparse.csc_matrix | None = None

    # ------------------------------------------------------------------ columns
    def add(
        self,
        orders: I64,
        arcs_list: list[I64],
        qty_list: list[I64],
        costs: I64 | None = None,
    ) -> int:
        """Add patterns (skipping duplicates); return how many were new.

        A pattern of a class member becomes the same pattern of its representative.
        ``costs`` (micro, one per pattern) spares recomputing known pattern costs.
        """
        prob = self.prob
        new_o: list[int] = []
        new_a: list[I64] = []
        new_q: list[I64] = []
        new_c: list[int | None] = []
        rep_of = self.classes.rep[self.classes.of]
        shift = self.classes.shift
        known: list[int | None] = [None] * len(arcs_list) if costs is None else costs.tolist()
        for o, a, q, c in zip(orders.tolist(), arcs_list, qty_list, known, strict=True):
            keep = q > 0
            a, q = a[keep], q[keep]
            sort = np.argsort(a)
            a, q = a[sort].astype(np.int64), q[sort].astype(np.int64)
            if shift[o]:
                a = a - shift[o]
            o = int(rep_of[o])
            key = (o, a.tobytes(), q.tobytes())
            if key in self.pool.seen:
                continue
            self.pool.seen.add(key)
            new_o.append(o)
            new_a.append(a)
            new_q.append(q)
            new_c.append(c)
        if not new_o:
            return 0
        k = len(new_o)
        costs = np.array([0 if c is None else c for c in new_c], dtype=np.int64)
        unknown = [i for i, c in enumerate(new_c) if c is None]
        if unknown:
            costs[unknown] = pattern_costs(
                prob,
                [new_o[i] for i in unknown],
                [new_a[i] for i in unknown],
                [new_q[i] for i in unknown],
            )
        mat = self._coefficients(new_o, new_a, new_q)
        n_o = self.classes.num_classes
        first = len(self.col_order)
        coo = mat.tocoo()
        shared = coo.row >= n_o
        self._coo_r.append(coo.row[shared].astype(np.int64) - n_o)
        self._coo_c.append(coo.col[shared].astype(np.int64) + first)
        self._coo_v.append(coo.data[shared])
        self.h.addCols(
            k,
            costs / MICRO,
            np.zeros(k),
            np.full(
                k, highspy.kHighsInf
            ),  # z <= 1 follows from convexity; a bound would hide duals
            int(mat.nnz),
            mat.indptr[:-1].astype(np.int32),
            mat.indices.astype(np.int32),
            mat.data,
        )
        if self.integer:
            self.h.changeColsIntegrality(
                k,
                np.arange(first, first + k, dtype=np.int32),
                np.full(k, highspy.HighsVarType.kInteger),
            )
        self.col_order.extend(new_o)
        self.pool.order.extend(np.asarray(new_o, dtype=np.int64))
        self.pool.cost.extend(costs)
        self.pool.arcs.extend(new_a)
        self.pool.qty.extend(new_q)
        return k

    def hold(self, cols: I64) -> None:
        """Keep columns ``cols`` at zero (upper bound 0) until :meth:`release`."""
        if len(cols):
            k = len(cols)
            self.h.changeColsBounds(k, cols.astype(np.int32), np.zeros(k), np.zeros(k))

    def release(self, cols: I64) -> None:
        """Give columns held by :meth:`hold` their usual bounds back (0 to infinity)."""
        if len(cols):
            k = len(cols)
            upper = np.full(k, highspy.kHighsInf)
            self.h.changeColsBounds(k, cols.astype(np.int32), np.zeros(k), upper)

    def _coefficients(
        self, orders: list[int], arcs: list[I64], qty: list[I64]
    ) -> sparse.csc_matrix:
        """Rows x patterns matrix: convexity row, then the shared rows each pattern uses."""
        prob = self.prob
        k = len(orders)
        lengths = np.array([a.shape[0] for a in arcs], dtype=np.int64)
        col_of_arc = np.repeat(np.arange(k), lengths)
        all_arcs = np.concatenate(arcs) if lengths.sum() else np.zeros(0, dtype=np.int64)
        all_qty = np.concatenate(qty) if lengths.sum() else np.zeros(0, dtype=np.int64)
        n_o = self.classes.num_classes
        r_idx: list[I64] = [self.classes.of[np.asarray(orders, dtype=np.int64)]]
        c_idx: list[I64] = [np.arange(k, dtype=np.int64)]
        vals: list[F64] = [np.ones(k)]
        if all_arcs.size:
            node = prob.arc_node[all_arcs]
            sku = prob.arc_sku[all_arcs]
            vip = prob.order_vip[prob.pair_order[prob.arc_pair[all_arcs]]]
            for rows_of in (
                self.rows.stock[node, sku],
                self.rows.cap_units[node],
                np.where(vip, self.rows.vip_units[node], -1),
            ):
                sel = rows_of >= 0
                r_idx.append(rows_of[sel] + n_o)
                c_idx.append(col_of_arc[sel])
                vals.append(all_qty[sel].astype(np.float64))
            # parcels: one per distinct (column, pair)
            pair = prob.arc_pair[all_arcs]
            cp = np.unique(np.stack([col_of_arc, pair], axis=1), axis=0)
            p_node = prob.pair_node[cp[:, 1]]
            p_vip = prob.order_vip[prob.pair_order[cp[:, 1]]]
            for rows_of in (
                self.rows.cap_orders[p_node],
                np.where(p_vip, self.rows.vip_orders[p_node], -1),
            ):
                sel = rows_of >= 0
                r_idx.append(rows_of[sel] + n_o)
                c_idx.append(cp[sel, 0])
                vals.append(np.ones(int(sel.sum())))
        mat = sparse.csc_matrix(
            (np.concatenate(vals), (np.concatenate(r_idx), np.concatenate(c_idx))),
            shape=(self.num_rows, k),
        )
        mat.sum_duplicates()
        mat.sort_indices()
        return mat

    def shared_usage(self, arcs: list[I64], qty: list[I64]) -> F64:
        """Use of every shared row by one pattern per class (``arcs[i]``, ``qty[i]`` for
        ``orders[i]``), taken by every order of the class."""
        n_o = self.classes.num_classes
        coo = self._coefficients(self.orders.tolist(), arcs, qty).tocoo()
        shared = coo.row >= n_o
        use = np.bincount(
            coo.row[shared] - n_o,
            weights=coo.data[shared] * self.weight[coo.col[shared]],
            minlength=self.rows.num_coupling,
        )
        return np.asarray(use, dtype=np.float64)

    def total(self, per_class: F64) -> float:
        """Sum over every order of a per-class value (``per_class[i]`` for ``orders[i]``)."""
        return float(np.dot(self.weight, per_class))

    def to_duals(self, pi: F64) -> Duals:
        """Multipliers of the shared rows (a vector over them) as :class:`Duals`."""
        return shared_duals(self.prob, self.rows, pi)

    def to_vector(self, duals: Duals) -> F64:
        """:class:`Duals` as a vector over the shared rows."""
        pi = np.zeros(self.rows.num_coupling)
        for name in _SHARED:
            idx: I64 = getattr(self.rows, name)
            mask = idx >= 0
            pi[idx[mask]] = getattr(duals, name)[mask]
        return pi

    def add_solution(self, x: I64) -> None:
        """Add the patterns of a full allocation ``x`` (units per arc)."""
        prob = self.prob
        used = np.nonzero(x > 0)[0]
        order_of = prob.pair_order[prob.arc_pair[used]]
        arcs_list: list[I64] = []
        qty_list: list[I64] = []
        sort = np.argsort(order_of, kind="stable")
        used, order_of = used[sort], order_of[sort]
        split_at = np.searchsorted(order_of, np.arange(prob.num_orders + 1))
        for o in range(prob.num_orders):
            a = used[split_at[o] : split_at[o + 1]]
            arcs_list.append(a)
            qty_list.append(x[a])
        self.add(np.arange(prob.num_orders), arcs_list, qty_list)

    def expand(
        self, z: F64 | None, duals: Duals | None, per_class: int
    ) -> tuple[Master, F64 | None]:
        """The per-order master of a class master, and the LP solution ``z`` on its columns.

        Every order gets the columns of its class that ``z`` uses and the ``per_class`` of
        least ``cost - pi use`` at ``duals``; each class's LP weight is spread over its
        members (whole units of a column to single members first), so the objective and
        the shared-row use of ``z`` are kept. Column ``o`` is order ``o`` shipping nothing.
        """
        prob = self.prob
        full = Master(prob, threads=self.threads, seed=self.seed)
        n_o = prob.num_orders
        empty = np.zeros(0, dtype=np.int64)
        full.add(np.arange(n_o), [empty] * n_o, [empty] * n_o)
        k = len(self.col_order)
        col_class = self.classes.of[np.asarray(self.col_order, dtype=np.int64)]
        weight = np.zeros(k)
        if z is not None:
            weight[: z.shape[0]] = np.maximum(z[:k], 0.0)
        keep = weight > 1e-9
        if duals is not None and k:
            vals = self.pool_values(duals)
            rank = np.lexsort((vals, col_class))
            grouped = col_class[rank]
            starts = np.searchsorted(grouped, grouped, side="left")
            pos = np.arange(k) - starts
            keep[rank[pos < per_class]] = True
        members = self.classes.members()
        shift = self.classes.shift
        cols = np.nonzero(keep)[0]
        by_class = np.split(
            cols[np.argsort(col_class[cols], kind="stable")],
            np.cumsum(np.bincount(col_class[cols], minlength=self.classes.num_classes))[:-1],
        )
        add_o: list[int] = []
        add_a: list[I64] = []
        add_q: list[I64] = []
        add_c: list[int] = []
        # z on the new columns: (order, pattern column of the class, weight)
        z_entries: list[tuple[int, int, float]] = []
        for c, class_cols in enumerate(by_class):
            mem = members[c]
            for j in class_cols.tolist():
                arcs_j, qty_j = self.pool.arcs[j], self.pool.qty[j]
                if arcs_j.size == 0:
                    continue  # every order already has its ship-nothing column
                for m in mem.tolist():
                    add_o.append(m)
                    add_a.append(arcs_j + shift[m])
                    add_q.append(qty_j)
                    add_c.append(int(self.pool.cost[j]))
            if z is None:
                continue
            w = weight[class_cols]
            whole = np.floor(w + 1e-9)
            frac = np.maximum(w - whole, 0.0)
            left = mem.tolist()
            for j, n_whole in zip(
                class_cols.tolist(), whole.astype(np.int64).tolist(), strict=True
            ):
                for m in left[:n_whole]:
                    z_entries.append((m, j, 1.0))
                left = left[n_whole:]
            if left and frac.sum() > 1e-9:
                share = frac / frac.sum()
                for m in left:
                    for j, v in zip(class_cols.tolist(), share.tolist(), strict=True):
                        if v > 1e-12:
                            z_entries.append((m, j, v))
        first = len(full.col_order)
        added = full.add(
            np.asarray(add_o, dtype=np.int64), add_a, add_q, np.asarray(add_c, dtype=np.int64)
        )
        if z is None or added != len(add_o):
            return full, None
        # where each (member, class column) landed in the per-order master
        index: dict[tuple[int, int], int] = {}
        pos_new = first
        for c, class_cols in enumerate(by_class):
            for j in class_cols.tolist():
                if self.pool.arcs[j].size == 0:
                    for m in members[c].tolist():
                        index[(m, j)] = m
                    continue
                for m in members[c].tolist():
                    index[(m, j)] = pos_new
                    pos_new += 1
        z_full = np.zeros(len(full.col_order))
        for m, j, v in z_entries:
            z_full[index[(m, j)]] += v
        return full, z_full

    def usage_matrix(self) -> sparse.csr_matrix:
        """Shared rows x columns coefficient matrix of the pool."""
        k = len(self.col_order)
        if not self._coo_r:
            return sparse.csr_matrix((self.rows.num_coupling, k))
        return sparse.csr_matrix(
            (
                np.concatenate(self._coo_v),
                (np.concatenate(self._coo_r), np.concatenate(self._coo_c)),
            ),
            shape=(self.rows.num_coupling, k),
        )

    def pool_values(self, duals: Duals) -> F64:
        """``cost - pi use`` of every pool column under shared-row multipliers (currency)."""
        pi = self.to_vector(duals)
        k = len(self.col_order)
        if self._usage is None or self._usage.shape[1] != k:
            self._usage = self.usage_matrix().tocsc()
        cost = np.asarray(self.pool.cost, dtype=np.float64) / MICRO
        return cost - np.asarray(self._usage.T @ pi, dtype=np.float64)

    # ------------------------------------------------------------------ solving
    def solve_lp(self, time_limit_s: float) -> str:
        """Solve the master (its LP, or its MIP once integer); return the HiGHS status text."""
        self.deadline.at = time.perf_counter() + set_time_limit(self.h, time_limit_s, self.integer)
        run_highs(self.h)
        return status_text(self.h)

    def duals(self) -> tuple[Duals, F64]:
        """Shared-row multipliers (non-positive) and convexity duals per order."""
        row_dual = np.asarray(self.h.getSolution().row_dual, dtype=np.float64)
        n_o = self.classes.num_classes
        mu = row_dual[:n_o][self.classes.of]
        return self.to_duals(shared_multipliers(row_dual, n_o)), mu

    def shared_rhs_term(self, duals: Duals) -> float:
        """``sum_r pi_r b_r`` over the shared rows."""
        return float(np.dot(self.to_vector(duals), self.rows.rhs))

    def lp_values(self) -> F64:
        """Column values of the current LP/MIP solution."""
        return np.asarray(self.h.getSolution().col_value, dtype=np.float64)

    def objective(self) -> float:
        """Objective of the current solution (currency units)."""
        return float(self.h.getInfo().objective_function_value)

    def to_integer(self) -> None:
        """Declare every column binary (for the integer master)."""
        k = len(self.col_order)
        self.integer = True
        if k:
            self.h.changeColsIntegrality(
                k, np.arange(k, dtype=np.int32), np.full(k, highspy.HighsVarType.kInteger)
            )

    def to_lp(self) -> None:
        """Back to the LP relaxation."""
        k = len(self.col_order)
        self.integer = False
        if k:
            self.h.changeColsIntegrality(
                k, np.arange(k, dtype=np.int32), np.full(k, highspy.HighsVarType.kContinuous)
            )

    def set_start(self, choice: I64) -> None:
        """MIP start: column chosen per order."""
        k = len(self.col_order)
        values = np.zeros(k)
        values[choice] = 1.0
        self.h.setSolution(k, np.arange(k, dtype=np.int32), values)

    def allocation(self, chosen: I64) -> I64:
        """Units per arc of the allocation made of the given columns."""
        x = np.zeros(self.prob.num_arcs, dtype=np.int64)
        for c in chosen.tolist():
            x[self.pool.arcs[c]] += self.pool.qty[c]
        return x

    def column_of(self, x: I64) -> I64:
        """For a full allocation whose patterns are in the pool, the column per order."""
        prob = self.prob
        index = {
            (int(self.pool.order[c]), self.pool.arcs[c].tobytes(), self.pool.qty[c].tobytes()): c
            for c in range(len(self.pool))
        }
        used = np.nonzero(x > 0)[0]
        order_of = prob.pair_order[prob.arc_pair[used]]
        sort = np.argsort(order_of, kind="stable")
        used, order_of = used[sort], order_of[sort]
        split_at = np.searchsorted(order_of, np.arange(prob.num_orders + 1))
        out = np.empty(prob.num_orders, dtype=np.int64)
        for o in range(prob.num_orders):
            a = np.sort(used[split_at[o] : split_at[o + 1]])
            out[o] = index[(o, a.tobytes(), x[a].astype(np.int64).tobytes())]
        return out


def shared_multipliers(row_dual: F64 | list[float], num_classes: int) -> F64:
    """The shared rows' multipliers (non-positive) from a master LP's row duals."""
    return np.minimum(np.asarray(row_dual, dtype=np.float64)[num_classes:], 0.0)


def shared_duals(prob: Problem, rows: Rows, pi: F64) -> Duals:
    """Multipliers of the shared rows ``rows`` (a vector over them) as :class:`Duals`."""
    duals = Duals.zeros(prob)
    for name in _SHARED:
        idx: I64 = getattr(rows, name)
        out = np.zeros(idx.shape, dtype=np.float64)
        mask = idx >= 0
        out[mask] = pi[idx[mask]]
        setattr(duals, name, out)
    return duals


def loose_options(h: highspy.Highs) -> None:
    """Interior point to :data:`LOOSE_TOL`, no crossover: an interior answer with duals."""
    h.setOptionValue("solver", "ipm")
    h.setOptionValue("ipm_optimality_tolerance", LOOSE_TOL)
    h.setOptionValue("run_crossover", "off")


class LooseLp:
    """A loose interior point solve of a master LP as it is now, in a thread of its own.

    Started beside a master LP re-solve that may be cut off by its time limit: IPX to
    ``LOOSE_TOL`` without crossover ends in ~0.6 of the tight solve's time with valid duals
    (an interior answer, model status "Unknown"), and the Lagrangian bound at any
    multipliers is certified. The thread's HiGHS asks for one thread and obeys a deadline.
    """

    def __init__(self, master: Master, time_limit_s: float) -> None:
        self.master = master
        self.h = new_highs(1)
        self.h.passModel(master.h.getLp())
        loose_options(self.h)
        self.deadline = Deadline(self.h)
        self.deadline.at = time.perf_counter() + max(float(time_limit_s), 0.01)
        self.h.setOptionValue("time_limit", max(float(time_limit_s), 0.01))
        #: seconds the solve took (None while it runs)
        self.seconds: float | None = None
        self._cancel = current_cancel()  # the solve's cancellation stops it too
        self._failures = failures_of_solve()  # and its failure is the solve's
        self._thread = threading.Thread(target=self._run, name="loose-master-lp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        cancel_with(self._cancel)
        count_failures_in(self._failures)
        t = time.perf_counter()
        try:
            run_highs(self.h)
        finally:
            self.seconds = time.perf_counter() - t

    def duals(self, wait_s: float) -> Duals | None:
        """The solve's shared-row multipliers, waiting up to ``wait_s``; None if none."""
        self._thread.join(max(float(wait_s), 0.0))
        if self._thread.is_alive():
            self.cancel()
            return None
        sol = self.h.getSolution()
        if not sol.dual_valid:
            return None
        pi = shared_multipliers(sol.row_dual, self.master.classes.num_classes)
        return self.master.to_duals(pi)

    def cancel(self) -> None:
        """Stop the solve and wait for its thread."""
        self.deadline.at = 0.0
        self._thread.join()


@dataclass
class BoundJob:
    """A master LP as arrays, to solve loosely and price at in the pricing helper process.

    Columns are not carried: every master column is bounded by 0 and infinity
    (:meth:`Master.add`), which :func:`loose_bound` puts back.
    """

    cost: F64
    row_lower: F64
    row_upper: F64
    start: I64
    index: I64
    value: F64
    #: convexity rows first (one per class), then the shared rows
    num_classes: int
    rows: Rows
    #: the order (class representative) of every convexity row, of every column
    orders: I64
    col_order: I64
    weight: F64
    time_limit_s: float

    @classmethod
    def of(cls, master: Master, time_limit_s: float) -> BoundJob:
        """The master LP as it is now."""
        lp = master.h.getLp()
        return cls(
            cost=np.asarray(lp.col_cost_, dtype=np.float64),
            row_lower=np.asarray(lp.row_lower_, dtype=np.float64),
            row_upper=np.asarray(lp.row_upper_, dtype=np.float64),
            start=np.asarray(lp.a_matrix_.start_, dtype=np.int64),
            index=np.asarray(lp.a_matrix_.index_, dtype=np.int64),
            value=np.asarray(lp.a_matrix_.value_, dtype=np.float64),
            num_classes=master.classes.num_classes,
            rows=master.rows,
            orders=master.orders,
            col_order=np.asarray(master.col_order, dtype=np.int64),
            weight=master.weight,
            time_limit_s=time_limit_s,
        )


def loose_bound(prob: Problem, job: BoundJob, pricer: Pricer | None = None) -> tuple[float, F64]:
    """The Lagrangian bound at the multipliers of a loose solve of ``job``'s LP, and them.

    The LP is solved as :class:`LooseLp` solves it; every order is then priced exactly at
    its shared-row multipliers (past ``job.time_limit_s`` in all, orders keep their
    relaxation's value: still a valid bound). Raises ValueError if the LP gives no duals.
    """
    t0 = time.perf_counter()
    n_col = job.cost.shape[0]
    h = new_highs(1)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_col, job.row_lower.shape[0]
    lp.col_cost_ = job.cost
    lp.col_lower_, lp.col_upper_ = np.zeros(n_col), np.full(n_col, highspy.kHighsInf)
    lp.row_lower_, lp.row_upper_ = job.row_lower, job.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = job.start.astype(np.int32)
    lp.a_matrix_.index_ = job.index.astype(np.int32)
    lp.a_matrix_.value_ = job.value
    h.passModel(lp)
    loose_options(h)
    h.setOptionValue("time_limit", max(job.time_limit_s, 0.01))
    run_highs(h)
    sol = h.getSolution()
    if not sol.dual_valid:
        raise ValueError(f"no duals: {status_text(h)}")
    n_o = job.num_classes
    pi = shared_multipliers(sol.row_dual, n_o)
    duals = shared_duals(prob, job.rows, pi)
    # each order's least cost - pi use over the LP's columns (spares exact searches)
    mat = sparse.csc_matrix((job.value, job.index, job.start), shape=(lp.num_row_, n_col))
    values = job.cost - np.asarray(mat[n_o:, :].T @ pi, dtype=np.float64)
    pool_best = np.full(prob.num_orders, np.inf)
    np.minimum.at(pool_best, job.col_order, values)
    if pricer is None:
        pricer = Pricer(prob, threads=1, orders=job.orders)
    deadline = t0 + job.time_limit_s
    pricing = pricer.price(duals, pool_best, deadline)
    lb = float(np.dot(job.weight, pricing.value)) + float(np.dot(pi, job.rows.rhs))
    return lb, pi


# ------------------------------------------------------------------------- pricing
@dataclass
class Pricing:
    """Result of pricing every priced order under one set of multipliers."""

    value: F64  # per priced order: min over patterns of cost - pi use (currency), or a bound
    arcs: list[I64]
    qty: list[I64]
    exact: bool = True  # False: some values are only bounds (no LP optimality proof)


class Pricer:
    """Prices orders: batched DP where exact, a one-order MIP elsewhere.

    ``orders`` (default: all) are the orders priced, e.g. one per class of identical orders;
    :class:`Pricing` holds their answers in that order.
    """

    def __init__(
        self,
        prob: Problem,
        *,
        threads: int | None = None,
        max_mip: int = 100,
        orders: I64 | None = None,
    ) -> None:
        self.prob = prob
        self.orders: I64 = (
            np.arange(prob.num_orders, dtype=np.int64)
            if orders is None
            else np.asarray(orders, dtype=np.int64)
        )
        self.all_orders = self.orders.shape[0] == prob.num_orders
        self.blocks: list[OrderBlock] = build_blocks(prob, self.orders)
        # arcs and pairs of the priced orders (the only reduced costs pricing reads)
        pair_lo, pair_hi = (
            prob.order_pair_start[self.orders],
            prob.order_pair_start[self.orders + 1],
        )
        self._pairs = ranges(pair_lo, pair_hi)
        self._arcs = ranges(prob.pair_arc_start[pair_lo], prob.pair_arc_start[pair_hi])
        self.constant_o = (
            np.bincount(
                prob.line_order, weights=prob.line_qty * prob.line_pen, minlength=prob.num_orders
            )
            / MICRO
        )
        self.threads = model_threads(threads)
        self.max_mip = max_mip
        #: time limit of one pricing MIP (orders the branch and bound leaves open)
        self.mip_time_s = 2.0
        #: a process pricing every other order the DP leaves open (see PricingHelper)
        self.helper: PricingHelper | None = None

    def _reduced_costs(self, duals: Duals) -> tuple[F64, F64]:
        """Reduced arc and pair costs under ``duals`` (on the priced orders' arcs and pairs)."""
        if self.all_orders:
            return reduced_costs(self.prob, duals)
        return _subset_reduced_costs(self.prob, duals, self._arcs, self._pairs)

    def price(
        self,
        duals: Duals,
        pool_best: F64 | None = None,
        deadline: float | None = None,
        *,
        give_up: Callable[[], bool] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Pricing:
        """Best pattern of every priced order under ``duals`` (shared-row multipliers).

        ``pool_best`` (indexed by order, the least ``cost - pi use`` over the patterns the master
        already holds, at these multipliers) spares the exact search where the relaxation
        proves no better pattern exists, and prunes it elsewhere; those orders then get no
        new column and their pool value. Past ``deadline`` (``time.perf_counter()``), orders
        the relaxation values keep that value (a valid bound) and get no new column; the
        others get the search's best pattern so far and its bound, without a MIP.
        ``give_up`` (a solve's cancellation) is asked between DP blocks, before every
        one-order search and while the helper process's answer is awaited: once it says
        True, :class:`~solvers.allocation.dp.GaveUp` is raised (the round has no answer)
        and the helper, if it had a share of the round, is ended (:meth:`PricingHelper.abort`).
        ``stop`` (the caller's end, such as the last moment its answer can wait for the round)
        is asked with ``give_up`` during the DP pass over every order, which keeps no bound
        of an order it has not reached (before the searches, which ``deadline`` bounds): once
        it says True, GaveUp is raised too.
        """
        prob = self.prob
        c_arc, c_pair = self._reduced_costs(duals)
        dp_give_up = give_up
        if stop is not None:
            dp_give_up = stop if give_up is None else _either(give_up, stop)
        # partial stock is relaxed to whole lines: a valid bound, feasible (clipped) patterns
        ans = solve_blocks(
            prob,
            self.blocks,
            c_arc,
            c_pair,
            split=prob.split / MICRO,
            relax_partial=True,
            give_up=dp_give_up,
        )
        value = self.constant_o.copy()
        arcs: list[I64] = [np.zeros(0, dtype=np.int64)] * prob.num_orders
        qty: list[I64] = [np.zeros(0, dtype=np.int64)] * prob.num_orders
        _scatter(ans, value, arcs, qty)
        in_dp = np.zeros(prob.num_orders, dtype=bool)
        in_dp[ans.orders] = True
        has_pairs = np.diff(prob.order_pair_start) > 0
        if not self.all_orders:
            priced = np.zeros(prob.num_orders, dtype=bool)
            priced[self.orders] = True
            has_pairs &= priced
        # orders whose DP value is only a bound (lines split over nodes with partial stock)
        # or that the DP does not take (too many lines): exact branch and bound per order;
        # a one-order MIP if that search grows too large
        rest = np.concatenate([ans.orders[~ans.exact], np.nonzero(~in_dp & has_pairs)[0]])
        known = np.zeros(rest.shape[0])
        if pool_best is not None:
            known = pool_best[rest] - self.constant_o[rest]
        relaxed = np.where(in_dp[rest], value[rest] - self.constant_o[rest], -np.inf)
        job = PricingJob(
            rest, known, relaxed, prob.split / MICRO, deadline, self.mip_time_s, self.threads
        )
        helper = self.helper if self.helper is not None and self.helper.ready() else None
        theirs = None
        if helper is not None and rest.shape[0] >= HELPER_MIN_ORDERS:
            # every other order to the helper process (sent before this process starts)
            mine, theirs = job.part(0, 2), job.part(1, 2)
            helper.submit(theirs, c_arc, c_pair)
        else:
            mine = job
        try:
            answers = price_orders(prob, mine, c_arc, c_pair, give_up=give_up)
            if helper is not None and theirs is not None:
                # None: the helper failed, its orders are priced here
                more = helper.collect(give_up)
                answers += (
                    more
                    if more is not None
                    else price_orders(prob, theirs, c_arc, c_pair, give_up=give_up)
                )
        except GaveUp:
            if helper is not None and theirs is not None:
                helper.abort()  # its answer to this round would be read as the next one's
            raise
        inexact = 0
        for o, v, a, q, exact in answers:
            value[o] = self.constant_o[o] + v
            arcs[o], qty[o] = a, q
            inexact += not exact
        if not self.all_orders:
            keep = self.orders.tolist()
            value = value[self.orders]
            arcs, qty = [arcs[o] for o in keep], [qty[o] for o in keep]
        return Pricing(value=value, arcs=arcs, qty=qty, exact=inexact == 0)


def _either(a: Callable[[], bool], b: Callable[[], bool]) -> Callable[[], bool]:
    """True once ``a`` or ``b`` says True."""
    return lambda: a() or b()


@dataclass
class PricingJob:
    """Orders to price one at a time (those the DP prices only by a bound or not at all).

    ``known`` (per order, relative to shipping nothing) is the value of the best pattern the
    pool holds at these multipliers, ``relaxed`` the DP relaxation's value (-inf if the DP
    does not take the order). Picklable: a helper process prices a share of the orders.
    """

    orders: I64
    known: F64
    relaxed: F64
    split: float
    deadline: float | None
    mip_time_s: float
    threads: int | None

    def part(self, k: int, parts: int) -> PricingJob:
        """Every ``parts``-th order from the ``k``-th."""
        pick = slice(k, None, parts)
        return PricingJob(
            self.orders[pick],
            self.known[pick],
            self.relaxed[pick],
            self.split,
            self.deadline,
            self.mip_time_s,
            self.threads,
        )


#: (order, value relative to shipping nothing or its bound, arcs, units, exact)
PricedOrder = tuple[int, float, I64, I64, bool]


def price_orders(
    prob: Problem,
    job: PricingJob,
    c_arc: F64,
    c_pair: F64,
    *,
    give_up: Callable[[], bool] | None = None,
) -> list[PricedOrder]:
    """The best pattern (or a bound) of each order of ``job`` under the reduced costs.

    Raises :class:`~solvers.allocation.dp.GaveUp` once ``give_up`` says True (asked before
    each order's search).
    """
    out: list[PricedOrder] = []
    empty = np.zeros(0, dtype=np.int64)
    deadline = job.deadline
    for o, known, relaxed in zip(
        job.orders.tolist(), job.known.tolist(), job.relaxed.tolist(), strict=True
    ):
        if give_up is not None and give_up():
            raise GaveUp
        if relaxed >= known - 1e-9:
            # relaxed value (a lower bound) reaches a pattern in the pool: that is optimal
            out.append((o, known, empty, empty, True))
            continue
        if relaxed > -np.inf and deadline is not None and time.perf_counter() > deadline:
            out.append((o, relaxed, empty, empty, False))  # out of time: the bound stays
            continue
        v, a, q, lower = solve_order_bb(
            prob, o, c_arc, c_pair, split=job.split, incumbent=min(known, 0.0), deadline=deadline
        )
        if lower >= v - 1e-9:
            out.append((o, v, a, q, True))
            continue
        # the search stopped at its node limit: a one-order MIP settles it; failing that,
        # the best pattern found is the column and the best valid bound (MIP, search
        # frontier or the DP relaxation) goes to the LB
        mip_s = job.mip_time_s
        if deadline is not None:
            mip_s = min(mip_s, deadline - time.perf_counter())
        if mip_s > 0.0:
            mv, ma, mq, mlower = price_order_mip(prob, o, c_arc, c_pair, mip_s, threads=job.threads)
            if mv < v - 1e-9:
                v, a, q = mv, ma, mq
            lower = max(lower, mlower)
        if lower >= v - 1e-9:
            out.append((o, v, a, q, True))
            continue
        out.append((o, max(lower, relaxed), a, q, False))
    return out


#: jobs of fewer orders are priced in this process alone (see PricingHelper)
HELPER_MIN_ORDERS = 64
#: the request the helper's problem carries: its pricing and bounds read the arrays alone
_NO_REQUEST = AllocationRequest()


def helper_problem(prob: Problem) -> Problem:
    """``prob`` as :class:`PricingHelper` sends it: the arrays, an empty request.

    Pickling the request's models took about half of the pickle's time (1-3 s at 50,000
    orders, before the first pricing round); the derived arrays that ``prob`` caches are
    left out too (the process derives them where it needs them).
    """
    return dataclasses.replace(prob, request=_NO_REQUEST)


class PricingHelper:
    """A helper process that prices every other order the DP leaves open, on another core.

    Those orders' branch and bound (:func:`price_orders`) is Python, and takes most of a
    pricing round in the omnichannel city (4.8 of 5.0 s in a round of the 10,000-order
    city, ~2,400 orders); a thread would share the GIL. The process gets the problem once
    (:meth:`spawn`, pickled here, sent by a thread) and a job and the reduced costs per
    round (:meth:`submit`); :meth:`collect` waits for its answers.
    """

    def __init__(self, helper: HelperProcess, prob: Problem) -> None:
        self.helper = helper
        data = pickle.dumps(("problem", helper_problem(prob)), protocol=pickle.HIGHEST_PROTOCOL)
        self._sender = threading.Thread(
            target=helper.send, args=(data,), name="pricing-helper-send", daemon=True
        )
        self._sender.start()
        self._failed = False
        self._bounding = False  # a bound job is out
        self._failures = failures_of_solve()  # the process's failed HiGHS runs are the solve's
        #: orders the process priced
        self.priced = 0

    @classmethod
    def spawn(cls, prob: Problem) -> PricingHelper | None:
        """Start the process and send it ``prob`` (None if it cannot be started)."""
        helper = HelperProcess.spawn(
            "from solvers.allocation.master import pricing_main; pricing_main()"
        )
        return None if helper is None else cls(helper, prob)

    def ready(self) -> bool:
        """Whether the process holds the problem (it took the whole pickle) and works."""
        return not self._failed and not self._sender.is_alive()

    def submit(self, job: PricingJob, c_arc: F64, c_pair: F64) -> None:
        """Hand the process ``job`` under the reduced costs ``c_arc``, ``c_pair``."""
        left = None if job.deadline is None else job.deadline - time.perf_counter()
        job = dataclasses.replace(job, deadline=None, threads=1)
        if not self.helper.send(("price", job, c_arc, c_pair, left)):
            self._failed = True

    def collect(self, give_up: Callable[[], bool] | None = None) -> list[PricedOrder] | None:
        """The answers to the last job (None if the process failed: price them here).

        Raises :class:`~solvers.allocation.dp.GaveUp` once ``give_up`` says True while the
        answers are awaited (asked every :data:`COLLECT_POLL_S`).
        """
        if give_up is not None and not self._failed:
            while not self.helper.readable(COLLECT_POLL_S):
                if give_up():
                    raise GaveUp
        message = None if self._failed else self.helper.receive()
        if message is None or message[0] != "priced":
            self._failed = True
            return None
        note_helper_failures(self._failures, *message[2:])
        answers: list[PricedOrder] = message[1]
        self.priced += len(answers)
        return answers

    def wait_ready(self, wait_s: float) -> bool:
        """:meth:`ready`, waiting up to ``wait_s`` for the process to take the problem."""
        self._sender.join(max(float(wait_s), 0.0))
        return self.ready()

    def submit_bound(self, job: BoundJob) -> bool:
        """Hand the process a bound job (:func:`loose_bound`); False if it cannot take it."""
        if not self.ready() or self._bounding:
            return False
        if not self.helper.send(("bound", job)):
            self._failed = True
            return False
        self._bounding = True
        return True

    def bound(self, wait_s: float) -> tuple[float, F64] | None:
        """The bound job's answer (bound, multipliers) within ``wait_s``; None if none.

        None while the job runs (:attr:`bounding` stays true) and for a job whose LP gave no
        duals; a reply that cannot be read marks the process failed.
        """
        if not self._bounding:
            return None
        if not self.helper.readable(max(wait_s, 0.0)):
            return None
        self._bounding = False
        message = self.helper.receive()
        if message is None or message[0] != "bounded":
            self._failed = True
            return None
        note_helper_failures(self._failures, *message[3:])
        if message[1] is None:
            log.debug("bound job: %s", message[2])
            return None
        return float(message[1]), message[2]

    @property
    def bounding(self) -> bool:
        """Whether a bound job is running."""
        return self._bounding

    def abort(self) -> None:
        """End the process at once (SIGKILL), its job unanswered: the helper is failed."""
        self._failed = True
        self.helper.end(0.0)

    def close(self, *, kill: bool = False) -> None:
        """End the process (idempotent); ``kill``: at once, not after its grace (a cancelled
        solve: the process may be pricing or bounding, or still starting)."""
        self.helper.end(0.0 if kill else HELPER_GRACE_S)
        self._sender.join(HELPER_JOIN_S)
        self.helper.close_output()


#: seconds :meth:`PricingHelper.close` waits for the process to end by itself (then it is
#: killed), then for its sender thread
HELPER_GRACE_S = 0.5
HELPER_JOIN_S = 2.0
#: seconds between two looks at the cancellation while :meth:`PricingHelper.collect` waits
COLLECT_POLL_S = 0.02


def pricing_main() -> None:
    """Entry point of the process of :class:`PricingHelper` (messages on stdin/stdout)."""
    failures = RunFailures()  # one solve's process: each kind of failure warned once, and
    count_failures_in(failures)  # every answer hands the parent the runs failed since the last
    channel = Channel()
    message = channel.receive()
    if message is None or message[0] != "problem":
        return
    prob: Problem = message[1]
    pricer: Pricer | None = None  # for bound jobs (built at the first)
    while (message := channel.receive()) is not None and message[0] in ("price", "bound"):
        if message[0] == "bound":
            bound_job: BoundJob = message[1]
            if pricer is None or not np.array_equal(pricer.orders, bound_job.orders):
                pricer = Pricer(prob, threads=1, orders=bound_job.orders)
            try:
                answer: tuple[Any, ...] = ("bounded", *loose_bound(prob, bound_job, pricer))
            except ValueError as exc:
                answer = ("bounded", None, str(exc))
            if not channel.send((*answer, *failures.unreported())):
                break
            continue
        job, c_arc, c_pair, left = message[1:]
        if left is not None:
            job = dataclasses.replace(job, deadline=time.perf_counter() + left)
        priced = price_orders(prob, job, c_arc, c_pair)
        if not channel.send(("priced", priced, *failures.unreported())):
            break
    channel.close()


def _subset_reduced_costs(prob: Problem, duals: Duals, arcs: I64, pairs: I64) -> tuple[F64, F64]:
    """:func:`reduced_costs` on some arcs and pairs only (zero elsewhere)."""
    node, sku = prob.arc_node[arcs], prob.arc_sku[arcs]
    arc_vip = prob.order_vip[prob.pair_order[prob.arc_pair[arcs]]]
    c_arc = np.zeros(prob.num_arcs)
    c_arc[arcs] = (
        prob.arc_gain[arcs] / MICRO
        - duals.line[prob.arc_line[arcs]]
        - duals.stock[node, sku]
        - duals.cap_units[node]
        - np.where(arc_vip, duals.vip_units[node], 0.0)
    )
    p_node, p_order = prob.pair_node[pairs], prob.pair_order[pairs]
    c_pair = np.zeros(prob.num_pairs)
    c_pair[pairs] = (
        prob.pair_fixed[pairs] / MICRO
        - duals.cap_orders[p_node]
        - np.where(prob.order_vip[p_order], duals.vip_orders[p_node], 0.0)
        - duals.max_nodes[p_order]
        - duals.split[p_order]
    )
    return c_arc, c_pair


def price_order_mip(
    prob: Problem,
    order: int,
    c_arc: F64,
    c_pair: F64,
    time_limit_s: float,
    *,
    threads: int | None = None,
) -> tuple[float, I64, I64, float]:
    """One order's best pattern under per-arc and per-pair costs, by a one-order MIP.

    The pricing problem of :func:`~solvers.allocation.dp.solve_order_bb` (arc bounds only;
    stock and capacity are priced by the multipliers), for orders its search leaves open.
    Returns (value relative to shipping nothing, arcs, units, certified lower bound).
    """
    empty = np.zeros(0, dtype=np.int64)
    none = np.full(prob.num_nodes, -1, dtype=np.int64)
    sub, pairs, arcs = prob.subset(
        np.array([order]),
        cap_units=none,
        cap_orders=none,
        vip_cap_units=none,
        vip_cap_orders=none,
    )
    if sub.num_pairs == 0:
        return 0.0, empty, empty, 0.0
    model = AllocationModel(
        sub,
        np.arange(sub.num_pairs),
        integer=True,
        threads=threads,
        pair_cost=c_pair[pairs],
        arc_cost=c_arc[arcs],
    )
    model.set_options(mip_rel_gap=0.0, mip_abs_gap=1e-9, **SMALL_MIP_OPTIONS)
    model.run(time_limit_s)
    offset = sub.constant / MICRO
    lower = model.mip_bound() - offset
    if not model.has_solution():
        return 0.0, empty, empty, min(lower, 0.0)
    x = model.units()
    used = x > 0
    a, q = arcs[used], x[used]
    value = pattern_value(prob, a, q, c_arc, c_pair, prob.split / MICRO)
    return value, a, q, min(lower, value)


def _scatter(ans: DpAnswer, value: F64, arcs: list[I64], qty: list[I64]) -> None:
    value[ans.orders] += ans.value
    if ans.sel_order.size == 0:
        return
    sort = np.argsort(ans.sel_order, kind="stable")
    so, sa, sq = ans.sel_order[sort], ans.sel_arc[sort], ans.sel_qty[sort]
    bounds = np.flatnonzero(np.diff(so)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [so.shape[0]]])
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        o = int(so[s])
        arcs[o] = sa[s:e]
        qty[o] = sq[s:e]


def fill_parcels(prob: Problem, order: int, arcs: I64, qty: I64, c_arc: F64) -> tuple[I64, I64]:
    """Fill lines a pattern leaves short from the parcels it already opens, cheapest first."""
    if arcs.size == 0:
        return arcs, qty
    open_pairs = set(prob.arc_pair[arcs].tolist())
    got = dict(zip(arcs.tolist(), qty.tolist(), strict=True))
    need = {ln: int(prob.line_qty[ln]) for ln in prob.order_lines(order)}
    for a, q in got.items():
        need[int(prob.arc_line[a])] -= q
    spare = [
        a
        for p in sorted(open_pairs)
        for a in prob.pair_arcs(p)
        if a not in got and need[int(prob.arc_line[a])] > 0 and c_arc[a] < 0
    ]
    for a in sorted(spare, key=lambda a: float(c_arc[a])):
        line = int(prob.arc_line[a])
        take = min(need[line], int(prob.arc_ub[a]))
        if take > 0:
            got[a] = take
            need[line] -= take
    out_a = np.fromiter(got.keys(), dtype=np.int64, count=len(got))
    out_q = np.fromiter(got.values(), dtype=np.int64, count=len(got))
    return out_a, out_q
