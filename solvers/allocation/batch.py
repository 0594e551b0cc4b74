"""Batch allocation: column generation on the pattern master, then an integer master.

1. Warm start: the myopic policy (each order's optimum on what earlier orders left), which
   also seeds the master with a feasible set of patterns.
2. Column generation with Wentges dual smoothing: price every order at a point between the
   best-bound multipliers and the master LP duals. Every pricing round yields a certified
   Lagrangian lower bound; the loop stops when the master LP meets the bound (LP optimal
   over all patterns), when the warm start is already within the target gap, or on time.
3. Integer phase: HiGHS MIP over the generated patterns, started from the best known
   allocation (pools too large for one MIP first fix the orders whose LP answer is already
   integral and solve the rest); then the compact MIP over all pairs from the incumbent,
   whose dual bound is certified too; then large-neighbourhood search on the pool.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from solvers.allocation.compact import solve_compact
from solvers.allocation.heuristics import nearest, polish, real_costs, sequential
from solvers.allocation.highs_model import Duals
from solvers.allocation.master import Master, Pricer
from solvers.allocation.params import AllocationParams
from solvers.allocation.problem import F64, I64, MICRO, Problem

_EPS = 1e-7
#: Wentges smoothing: price at SMOOTHING x best-bound duals + (1 - SMOOTHING) x LP duals.
SMOOTHING = 0.5
#: Seconds kept back from every HiGHS MIP call (HiGHS can overrun its interrupt callback,
#: e.g. inside sub-MIP heuristics), as a share of the time limit, at most one second.
MIP_MARGIN = 0.08
log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """Best allocation found, its certified bound and what it took."""

    x: I64
    cost: int  # micro
    bound: float  # currency
    lp_value: float | None
    duals: Duals | None
    proven: bool
    lp_rounds: int = 0
    warm_start_cost: int = 0
    mip_nodes: int = 0
    fixed_orders: int = 0
    mip_columns: int = 0
    lp_s: float = 0.0
    mip_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def pattern_values(prob: Problem, master: Master, cols: list[int], duals: Duals) -> F64:
    """``cost - pi use`` of pool columns under shared-row multipliers (currency)."""
    pool = master.pool
    out = np.array([pool.cost[c] / MICRO for c in cols], dtype=np.float64)
    lengths = np.array([pool.arcs[c].shape[0] for c in cols], dtype=np.int64)
    if lengths.sum() == 0:
        return out
    arcs = np.concatenate([pool.arcs[c] for c in cols])
    qty = np.concatenate([pool.qty[c] for c in cols]).astype(np.float64)
    col = np.repeat(np.arange(len(cols)), lengths)
    node, sku = prob.arc_node[arcs], prob.arc_sku[arcs]
    vip = prob.order_vip[prob.pair_order[prob.arc_pair[arcs]]]
    per_unit = (
        duals.stock[node, sku] + duals.cap_units[node] + np.where(vip, duals.vip_units[node], 0.0)
    )
    out -= np.bincount(col, weights=qty * per_unit, minlength=len(cols))
    cp = np.unique(np.stack([col, prob.arc_pair[arcs]], axis=1), axis=0)
    p_node = prob.pair_node[cp[:, 1]]
    p_vip = prob.order_vip[prob.pair_order[cp[:, 1]]]
    per_pair = duals.cap_orders[p_node] + np.where(p_vip, duals.vip_orders[p_node], 0.0)
    out -= np.bincount(cp[:, 0], weights=per_pair, minlength=len(cols))
    return out


def pool_minimum(prob: Problem, master: Master, duals: Duals) -> F64:
    """Per order, the least ``cost - pi use`` over the patterns in the pool (currency)."""
    out = np.full(prob.num_orders, np.inf)
    np.minimum.at(out, np.asarray(master.col_order, dtype=np.int64), master.pool_values(duals))
    return out


def _blend(a: Duals, b: Duals, alpha: float) -> Duals:
    """``alpha a + (1 - alpha) b``."""
    return Duals(
        **{
            name: alpha * getattr(a, name) + (1.0 - alpha) * getattr(b, name)
            for name in Duals.__dataclass_fields__
        }
    )


def _warm_start(prob: Problem) -> I64:
    """The cheaper of the myopic and the nearest-node allocations (neither always wins)."""
    tries = (sequential(prob, real_costs(prob), exact=False), nearest(prob))
    ok = [x for x in tries if not prob.violations(x)]
    if not ok:
        return np.zeros(prob.num_arcs, dtype=np.int64)  # shipping nothing is always allowed
    return min(ok, key=lambda x: prob.evaluate(x).total)


def solve_batch(
    prob: Problem, params: AllocationParams, *, start: float, x_start: I64 | None = None
) -> BatchOutcome:
    """Best allocation of every order jointly, with a certified lower bound."""
    deadline = start + params.time_limit_s
    notes: list[str] = []
    x_best = _warm_start(prob) if x_start is None else x_start
    best_cost = prob.evaluate(x_best).total
    warm = best_cost
    target = params.mip_rel_gap

    master = Master(prob, threads=params.threads, seed=params.seed)
    master.h.setOptionValue("simplex_strategy", 1)  # dual simplex re-solves fastest here
    pricer = Pricer(prob, threads=params.threads)
    empty = np.zeros(0, dtype=np.int64)
    master.add(np.arange(prob.num_orders), [empty] * prob.num_orders, [empty] * prob.num_orders)
    master.add_solution(x_best)
    zero = Duals.zeros(prob)
    first = pricer.price(zero)
    master.add(np.arange(prob.num_orders), first.arcs, first.qty)
    best_lb = float(first.value.sum())
    center = zero
    best_duals: Duals | None = None
    lp_value: float | None = None
    alpha = SMOOTHING
    rounds = 0
    t_lp = time.perf_counter()
    converged = False

    def gap_ok(lb: float) -> bool:
        ub = best_cost / MICRO
        return ub - lb <= target * max(abs(ub), 1e-9) + 1e-9

    while not gap_ok(best_lb):
        left = deadline - time.perf_counter()
        if left <= 0.05 * params.time_limit_s:
            notes.append("column generation stopped on the time limit")
            break
        status = master.solve_lp(left * 0.5)
        if status != "Optimal":
            notes.append(f"master LP status {status}")
            break
        rounds += 1
        lp_value = master.objective()
        out, mu = master.duals()
        if best_duals is None:
            best_duals = out
        if lp_value - best_lb <= _EPS * max(1.0, abs(lp_value)):
            converged = True
            best_duals = out
            break
        sep = _blend(center, out, alpha) if alpha > 0 else out
        pricing = pricer.price(sep, pool_minimum(prob, master, sep))
        lb = float(pricing.value.sum()) + master.shared_rhs_term(sep)
        if lb > best_lb:
            best_lb, center, best_duals = lb, sep, sep
        log.debug(
            "round %d lp %.2f lb %.2f best %.2f alpha %.2f t %.1f",
            rounds,
            lp_value,
            lb,
            best_lb,
            alpha,
            time.perf_counter() - start,
        )
        before = len(master.pool)
        master.add(np.arange(prob.num_orders), pricing.arcs, pricing.qty)
        new_cols = list(range(before, len(master.pool)))
        if new_cols:
            vals = pattern_values(prob, master, new_cols, out)
            orders = np.array([master.pool.order[c] for c in new_cols], dtype=np.int64)
            improving = bool(np.any(vals - mu[orders] < -_EPS))
        else:
            improving = False
        if not improving:
            if alpha == 0.0 and not pricing.exact:
                notes.append("column generation stalled: some orders priced by a bound only")
                break
            if alpha == 0.0:
                converged = True
                best_lb = max(best_lb, lp_value)
                break
            alpha = 0.0  # mispricing: price at the LP duals next
        else:
            alpha = SMOOTHING
    lp_s = time.perf_counter() - t_lp

    # integer phase, while the certified gap is above the target:
    # (1) the pattern MIP over the whole pool when it is small enough (else over the orders
    #     the master LP leaves fractional), from the best allocation so far;
    # (2) the compact MIP over all pairs from the incumbent: its dual bound is certified;
    # (3) large-neighbourhood search on the pattern pool with the time left.
    t_mip = time.perf_counter()
    stats = _IntStats()
    # HiGHS calls end this early (they may overrun); polishing uses the full budget
    hard = deadline - min(1.0, MIP_MARGIN * params.time_limit_s)

    def improve(x: I64 | None) -> None:
        nonlocal x_best, best_cost
        if x is None or prob.violations(x):
            return
        cost = prob.evaluate(x).total
        if cost < best_cost:
            x_best, best_cost = x, cost

    def time_left() -> float:
        return hard - time.perf_counter()

    master.h.setOptionValue("mip_allow_restart", False)
    if not gap_ok(best_lb) and time_left() > 0.1:
        if len(master.pool) + prob.num_orders <= params.max_mip_pairs:
            improve(_pool_mip(prob, master, x_best, params, time_left() * 0.55, best_lb, stats))
        else:
            improve(_lp_guided(prob, master, x_best, params, hard, best_lb, stats))
    if not gap_ok(best_lb) and time_left() > 0.1 and prob.num_pairs <= params.max_mip_pairs:
        comp = solve_compact(
            prob,
            x_best,
            seconds=time_left() * 0.8,
            gap=target,
            threads=params.threads,
            seed=params.seed,
            target=_objective_target(best_lb, target),
        )
        improve(comp.x)
        stats.nodes += comp.nodes
        if comp.x is not None:
            best_lb = max(best_lb, min(comp.bound, best_cost / MICRO))
        notes.append(f"compact MIP: {comp.status}, bound {comp.bound:.4f}")
        log.debug(
            "compact %s bound %.4f ub %.4f t %.1f",
            comp.status,
            comp.bound,
            best_cost / MICRO,
            time.perf_counter() - start,
        )
    if not gap_ok(best_lb) and time_left() > 0.1:
        improve(_lns(prob, master, x_best, params, hard, best_lb, stats))
    # orders left short may fit partial fills the pattern pool cannot express
    t_pol = time.perf_counter()
    polished = polish(prob, x_best, deadline=max(deadline, time.perf_counter() + 0.2))
    log.debug("polish took %.1f", time.perf_counter() - t_pol)
    improve(polished)
    mip_s = time.perf_counter() - t_mip
    bound = min(best_lb, best_cost / MICRO)
    return BatchOutcome(
        x=x_best,
        cost=best_cost,
        bound=bound,
        lp_value=lp_value if converged else None,
        duals=best_duals,
        proven=gap_ok(best_lb),
        lp_rounds=rounds,
        warm_start_cost=warm,
        mip_nodes=stats.nodes,
        fixed_orders=stats.fixed,
        mip_columns=len(master.pool),
        lp_s=lp_s,
        mip_s=mip_s,
        notes=notes,
    )


def _objective_target(lb: float, gap: float) -> float | None:
    """Objective at which a MIP may stop: the certified gap is then met."""
    if gap <= 0:
        return None
    return lb / (1.0 - gap) - 1e-9 if lb > 0 else None


@dataclass
class _IntStats:
    nodes: int = 0
    fixed: int = 0


class _PoolMip:
    """The pattern master as a MIP over its pool, re-optimising a subset of orders at a time."""

    def __init__(
        self, prob: Problem, master: Master, x: I64, params: AllocationParams, lb: float
    ) -> None:
        self.prob, self.master, self.params = prob, master, params
        master.add_solution(x)
        self.current = master.column_of(x)
        self.n_cols = len(master.pool)
        self.col_order = np.asarray(master.col_order, dtype=np.int64)
        self.col_cost = np.asarray(master.pool.cost, dtype=np.int64)
        self.lb = lb
        self.nodes = 0

    def total(self, choice: I64) -> int:
        """Cost (micro) of one column per order."""
        return int(self.col_cost[choice].sum())

    def target_met(self, choice: I64) -> bool:
        """The certified gap target holds for this choice."""
        ub = self.total(choice) / MICRO
        return ub - self.lb <= self.params.mip_rel_gap * max(abs(ub), 1e-9) + 1e-9

    def sub_mip(self, free: np.ndarray, start: I64, seconds: float, gap: float = 0.0) -> I64 | None:
        """Re-optimise the orders in ``free``; everyone else keeps ``start``."""
        master, n_cols = self.master, self.n_cols
        lower = np.zeros(n_cols)
        upper = np.where(free[self.col_order], np.inf, 0.0)
        fixed_cols = start[~free]
        lower[fixed_cols] = 1.0
        upper[fixed_cols] = 1.0
        master.h.changeColsBounds(n_cols, np.arange(n_cols, dtype=np.int32), lower, upper)
        master.set_start(start)
        master.h.setOptionValue("mip_rel_gap", gap)
        goal = _objective_target(self.lb, self.params.mip_rel_gap)
        master.h.setOptionValue("objective_target", -np.inf if goal is None else goal)
        t_sub = time.perf_counter()
        master.solve_lp(seconds)
        info = master.h.getInfo()
        log.debug(
            "sub-MIP free %d limit %.1f took %.1f status %s",
            int(free.sum()),
            seconds,
            time.perf_counter() - t_sub,
            master.h.modelStatusToString(master.h.getModelStatus()),
        )
        self.nodes += int(info.mip_node_count)
        if int(info.primal_solution_status) != 2:
            return None
        z = master.lp_values()
        chosen = np.nonzero(z > 0.5)[0]
        out = start.copy()
        out[self.col_order[chosen]] = chosen
        return out


def _improvement(master: Master, pool: _PoolMip, cand: I64 | None, stats: _IntStats) -> I64 | None:
    """The allocation of ``cand`` when it beats the pool's starting choice, else None."""
    stats.nodes += pool.nodes
    if cand is None or pool.total(cand) >= pool.total(pool.current):
        return None
    return master.allocation(cand)


def _lp_guided(
    prob: Problem,
    master: Master,
    x_best: I64,
    params: AllocationParams,
    deadline: float,
    lb: float,
    stats: _IntStats,
) -> I64 | None:
    """Orders the master LP decides integrally stay; a MIP settles the others."""
    pool = _PoolMip(prob, master, x_best, params, lb)
    master.to_lp()
    if master.solve_lp(max(deadline - time.perf_counter(), 0.1) * 0.2) != "Optimal":
        master.to_integer()
        return None
    z = master.lp_values()
    whole = z >= 1.0 - 1e-6
    frac = np.ones(prob.num_orders, dtype=bool)
    frac[pool.col_order[whole]] = False
    stats.fixed = int((~frac).sum())
    lp_choice = pool.current.copy()
    lp_choice[pool.col_order[whole]] = np.nonzero(whole)[0]
    master.to_integer()
    left = deadline - time.perf_counter()
    if left <= 0.05 or not frac.any() or not stats.fixed:
        return None
    # start: LP columns for the fixed orders, "ship nothing" (column o) for the others
    start = np.where(frac, np.arange(prob.num_orders), lp_choice)
    cand = pool.sub_mip(frac, start, left * 0.4)
    return _improvement(master, pool, cand, stats)


def _pool_mip(
    prob: Problem,
    master: Master,
    x_best: I64,
    params: AllocationParams,
    seconds: float,
    lb: float,
    stats: _IntStats,
) -> I64 | None:
    """The whole pattern MIP over the pool, from ``x_best``."""
    pool = _PoolMip(prob, master, x_best, params, lb)
    if not master.integer:
        master.to_integer()
    if pool.target_met(pool.current):
        return None
    everyone = np.ones(prob.num_orders, dtype=bool)
    cand = pool.sub_mip(everyone, pool.current, seconds, gap=params.mip_rel_gap)
    return _improvement(master, pool, cand, stats)


def _lns(
    prob: Problem,
    master: Master,
    x_best: I64,
    params: AllocationParams,
    deadline: float,
    lb: float,
    stats: _IntStats,
) -> I64 | None:
    """Large-neighbourhood search: sub-MIPs freeing the orders around binding rows."""
    rng = np.random.default_rng(params.seed)
    pool = _PoolMip(prob, master, x_best, params, lb)
    current = pool.current
    n_cols = pool.n_cols
    if not master.integer:
        master.to_integer()
    row_cols = master.usage_matrix().tocsr()
    rhs = master.rows.rhs
    size = int(min(prob.num_orders, max(20, min(150, prob.num_orders // 4))))
    stall = 0
    while not pool.target_met(current):
        left = deadline - time.perf_counter()
        if left < 0.1:
            break
        load = row_cols @ np.bincount(current, minlength=n_cols)
        binding = np.nonzero(load >= rhs - 1e-9)[0]
        free = np.zeros(prob.num_orders, dtype=bool)
        if binding.size:
            for r in rng.permutation(binding).tolist():
                cols = row_cols.indices[row_cols.indptr[r] : row_cols.indptr[r + 1]]
                free[pool.col_order[cols]] = True
                if free.sum() >= size:
                    break
        if free.sum() < size:
            extra = rng.choice(prob.num_orders, size=size - int(free.sum()), replace=False)
            free[extra] = True
        if free.sum() > size:
            keep = rng.choice(np.nonzero(free)[0], size=size, replace=False)
            free[:] = False
            free[keep] = True
        cand = pool.sub_mip(free, current, min(left, max(0.5, 0.1 * params.time_limit_s)))
        log.debug(
            "lns size %d binding %d cand %s current %.4f",
            size,
            binding.size,
            None if cand is None else pool.total(cand) / MICRO,
            pool.total(current) / MICRO,
        )
        if cand is not None and pool.total(cand) < pool.total(current):
            current = cand
            stall = 0
        else:
            stall += 1
            if stall >= 3:
                size = min(prob.num_orders, int(size * 1.5) + 1)
                stall = 0
        if (
            size >= prob.num_orders
            and stall == 0
            and cand is not None
            and pool.total(cand) >= pool.total(current)
        ):
            break
    stats.nodes += pool.nodes
    return master.allocation(current)
