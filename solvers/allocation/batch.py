"""Batch allocation: column generation on the pattern master, then an integer master.

1. Warm start: the myopic policy (each order's optimum on what earlier orders left), which
   also seeds the master with a feasible set of patterns.
2. Column generation with Wentges dual smoothing: price every order at a point between the
   best-bound multipliers and the master LP duals. Every pricing round yields a certified
   Lagrangian lower bound; the loop stops when the master LP meets the bound (LP optimal
   over all patterns), when the warm start is already within the target gap, or on time.
3. Integer master: HiGHS MIP over the generated patterns, started from the best known
   allocation. Large masters first fix the orders whose LP answer is already integral and
   solve the rest (the fixing is a heuristic; the bound reported stays the certified one).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from solvers.allocation.heuristics import polish, real_costs, sequential
from solvers.allocation.highs_model import Duals
from solvers.allocation.master import Master, Pricer
from solvers.allocation.params import AllocationParams
from solvers.allocation.problem import F64, I64, MICRO, Problem

_EPS = 1e-7
#: Wentges smoothing: price at SMOOTHING x best-bound duals + (1 - SMOOTHING) x LP duals.
SMOOTHING = 0.5
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


def _blend(a: Duals, b: Duals, alpha: float) -> Duals:
    """``alpha a + (1 - alpha) b``."""
    return Duals(
        **{
            name: alpha * getattr(a, name) + (1.0 - alpha) * getattr(b, name)
            for name in Duals.__dataclass_fields__
        }
    )


def solve_batch(
    prob: Problem, params: AllocationParams, *, start: float, x_start: I64 | None = None
) -> BatchOutcome:
    """Best allocation of every order jointly, with a certified lower bound."""
    deadline = start + params.time_limit_s
    notes: list[str] = []
    x_best = sequential(prob, real_costs(prob), exact=False) if x_start is None else x_start
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
        pricing = pricer.price(sep, mu)
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

    # integer master
    t_mip = time.perf_counter()
    mip_nodes = 0
    fixed = 0
    mip_cols = 0
    if not gap_ok(best_lb) and time.perf_counter() < deadline:
        x_mip, mip_nodes, fixed, mip_cols = _integer_master(
            prob, master, x_best, params, deadline, best_lb, notes
        )
        if x_mip is not None:
            cost = prob.evaluate(x_mip).total
            if cost < best_cost and not prob.violations(x_mip):
                x_best, best_cost = x_mip, cost
    # orders left short may fit partial fills the pattern pool cannot express
    t_pol = time.perf_counter()
    polished = polish(prob, x_best, deadline=max(deadline, time.perf_counter() + 0.2))
    log.debug("polish took %.1f", time.perf_counter() - t_pol)
    cost = prob.evaluate(polished).total
    if cost < best_cost and not prob.violations(polished):
        x_best, best_cost = polished, cost
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
        mip_nodes=mip_nodes,
        fixed_orders=fixed,
        mip_columns=mip_cols,
        lp_s=lp_s,
        mip_s=mip_s,
        notes=notes,
    )


def _integer_master(
    prob: Problem,
    master: Master,
    x_best: I64,
    params: AllocationParams,
    deadline: float,
    lb: float,
    notes: list[str],
) -> tuple[I64 | None, int, int, int]:
    """Integer master: LP-guided fixing, then large-neighbourhood search with sub-MIPs."""
    rng = np.random.default_rng(params.seed)
    master.add_solution(x_best)
    current = master.column_of(x_best)
    n_cols = len(master.pool)
    col_order = np.asarray(master.col_order, dtype=np.int64)
    col_cost = np.asarray(master.pool.cost, dtype=np.int64)
    usage = master.usage_matrix()
    rhs = master.rows.rhs
    nodes = 0

    def total(choice: I64) -> int:
        return int(col_cost[choice].sum())

    def target_met(choice: I64) -> bool:
        ub = total(choice) / MICRO
        return ub - lb <= params.mip_rel_gap * max(abs(ub), 1e-9) + 1e-9

    def sub_mip(free: np.ndarray, start: I64, seconds: float, gap: float = 0.0) -> I64 | None:
        """Re-optimise the orders in ``free``; everyone else keeps ``start``."""
        nonlocal nodes
        lower = np.zeros(n_cols)
        upper = np.where(free[col_order], np.inf, 0.0)
        fixed_cols = start[~free]
        lower[fixed_cols] = 1.0
        upper[fixed_cols] = 1.0
        master.h.changeColsBounds(n_cols, np.arange(n_cols, dtype=np.int32), lower, upper)
        master.set_start(start)
        master.h.setOptionValue("mip_rel_gap", gap)
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
        nodes += int(info.mip_node_count)
        if int(info.primal_solution_status) != 2:
            return None
        z = master.lp_values()
        chosen = np.nonzero(z > 0.5)[0]
        out = start.copy()
        out[col_order[chosen]] = chosen
        return out

    # 1. LP-guided fixing: orders the master LP already decides stay; the rest is a MIP
    fixed_count = 0
    master.to_lp()
    frac = np.ones(prob.num_orders, dtype=bool)
    if master.solve_lp(max(deadline - time.perf_counter(), 0.1) * 0.2) == "Optimal":
        z = master.lp_values()
        whole = z >= 1.0 - 1e-6
        frac = np.ones(prob.num_orders, dtype=bool)
        frac[col_order[whole]] = False
        fixed_count = int((~frac).sum())
        lp_choice = current.copy()
        lp_choice[col_order[whole]] = np.nonzero(whole)[0]
    else:
        lp_choice = current
    assert all(len(master.pool.arcs[o]) == 0 for o in range(min(prob.num_orders, 3)))
    master.to_integer()
    # start: LP columns for the fixed orders, "ship nothing" (column o) for the others
    left = deadline - time.perf_counter()
    if left > 0.05 and frac.any() and fixed_count:
        start = np.where(frac, np.arange(prob.num_orders), lp_choice)
        cand = sub_mip(frac, start, left * 0.4)
        if cand is not None and total(cand) < total(current):
            current = cand

    # 2. the whole integer master when it is small enough, from the best allocation so far
    left = deadline - time.perf_counter()
    if n_cols <= params.max_mip_pairs and left > 0.1 and not target_met(current):
        everyone = np.ones(prob.num_orders, dtype=bool)
        cand = sub_mip(everyone, current, left, gap=params.mip_rel_gap)
        if cand is not None and total(cand) < total(current):
            current = cand

    # 3. large-neighbourhood search around binding rows
    row_cols = usage.tocsr()
    size = int(min(prob.num_orders, max(20, min(150, prob.num_orders // 4))))
    stall = 0
    while not target_met(current):
        left = deadline - time.perf_counter()
        if left < 0.1:
            break
        load = row_cols @ np.bincount(current, minlength=n_cols)
        binding = np.nonzero(load >= rhs - 1e-9)[0]
        free = np.zeros(prob.num_orders, dtype=bool)
        if binding.size:
            for r in rng.permutation(binding).tolist():
                cols = row_cols.indices[row_cols.indptr[r] : row_cols.indptr[r + 1]]
                free[col_order[cols]] = True
                if free.sum() >= size:
                    break
        if free.sum() < size:
            extra = rng.choice(prob.num_orders, size=size - int(free.sum()), replace=False)
            free[extra] = True
        if free.sum() > size:
            keep = rng.choice(np.nonzero(free)[0], size=size, replace=False)
            free[:] = False
            free[keep] = True
        cand = sub_mip(free, current, min(left, max(0.5, 0.1 * params.time_limit_s)))
        log.debug(
            "lns size %d binding %d cand %s current %.4f",
            size,
            binding.size,
            None if cand is None else total(cand) / MICRO,
            total(current) / MICRO,
        )
        if cand is not None and total(cand) < total(current):
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
            and total(cand) >= total(current)
        ):
            break
    return master.allocation(current), nodes, fixed_count, n_cols
