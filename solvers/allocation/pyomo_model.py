"""The reference Pyomo formulation of the allocation MIP, solved by HiGHS.

This is the model of record: the fast path (:mod:`solvers.allocation.highs_model`, arrays
straight into HiGHS) and the decomposition (:mod:`solvers.allocation.master`) are tested
against it. It states every row, including those that can never bind.

.. code-block:: text

    min  C + sum_p f_p y_p + sum_a (c_a - pen_l(a)) x_a + split sum_o s_o
    s.t. line_l:      sum_{a in l} x_a          <= q_l
         stock_nk:    sum_{a at (n,k)} x_a      <= avail_nk
         units_n:     sum_{a at n} x_a          <= cap_units_n
         parcels_n:   sum_{p at n} y_p          <= cap_orders_n
         vip_units_n: sum_{VIP a at n} x_a      <= floor(share cap_units_n)
         vip_parc_n:  sum_{VIP p at n} y_p      <= floor(share cap_orders_n)
         nodes_o:     sum_{p in o} y_p          <= max_nodes
         split_o:     sum_{p in o} y_p - s_o    <= 1
         link_a:      x_a                       <= ub_a y_p(a)
         y binary, x integer in [0, ub_a], s >= 0

with ``C = sum_l pen_l q_l`` (everything unfilled) and money in currency units.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from solvers.allocation.params import AllocationParams
from solvers.allocation.problem import I64, MICRO, Problem


@dataclass
class PyomoOutcome:
    """Answer of the reference model."""

    x: I64
    objective: float | None
    bound: float | None
    status: str
    build_s: float
    solve_s: float
    #: HiGHS failed (an exception out of its run, an error status such as "Memory limit
    #: reached"): its status text (then no answer, no bound); "" when it did not
    failure: str = ""


#: Pyomo's names of HiGHS' termination (``TerminationCondition``) in plain words, for the
#: answer's note: ``convergenceCriteriaSatisfied`` is HiGHS' "optimal" (within the gap asked)
STATUS_WORDS = {
    "convergenceCriteriaSatisfied": "optimal",
    "maxTimeLimit": "time limit reached",
    "iterationLimit": "iteration limit reached",
    "objectiveLimit": "objective limit reached",
    "minStepLength": "stopped at its minimum step length",
    "unbounded": "unbounded",
    "provenInfeasible": "infeasible",
    "locallyInfeasible": "locally infeasible",
    "infeasibleOrUnbounded": "infeasible or unbounded",
    "error": "error",
    "interrupted": "interrupted",
    "licensingProblems": "licensing problem",
    "emptyModel": "empty model",
    "unknown": "unknown",
}


def status_words(status: str) -> str:
    """A :class:`PyomoOutcome` status in plain words (``optimal``, ``time limit reached``);
    one without words of its own as it is."""
    return STATUS_WORDS.get(status, status)


#: Pyomo's checks for changes of a model already handed to its solver, all off (the model
#: has not changed since :meth:`set_instance`: checking would walk it again)
_NO_UPDATES = {
    "check_for_new_or_removed_constraints": False,
    "check_for_new_or_removed_vars": False,
    "check_for_new_or_removed_params": False,
    "check_for_new_objective": False,
    "update_constraints": False,
    "update_vars": False,
    "update_parameters": False,
    "update_named_expressions": False,
    "update_objective": False,
}

#: the least time limit handed to HiGHS (it stops at once, before its root LP)
MIN_HIGHS_LIMIT_S = 1e-6


def load_pyomo() -> float:
    """Import Pyomo and its HiGHS interface, so a solve does not pay for it; the seconds taken."""
    t0 = time.perf_counter()
    import pyomo.environ  # noqa: F401
    from pyomo.contrib.solver.common.factory import SolverFactory  # noqa: F401

    return time.perf_counter() - t0


def build_pyomo_model(prob: Problem) -> Any:
    """The allocation MIP of ``prob`` as a Pyomo ``ConcreteModel``."""
    import pyomo.environ as pyo

    m = pyo.ConcreteModel(name="allocation")
    n_pairs, n_arcs = prob.num_pairs, prob.num_arcs
    m.P = pyo.RangeSet(0, n_pairs - 1) if n_pairs else pyo.Set(initialize=[])
    m.A = pyo.RangeSet(0, n_arcs - 1) if n_arcs else pyo.Set(initialize=[])
    ub = prob.arc_ub.tolist()
    m.y = pyo.Var(m.P, within=pyo.Binary)
    m.x = pyo.Var(m.A, within=pyo.NonNegativeIntegers, bounds=lambda _m, a: (0, ub[a]))
    pairs_of_order: dict[int, list[int]] = defaultdict(list)
    for p, o in enumerate(prob.pair_order.tolist()):
        pairs_of_order[o].append(p)
    split_orders = [o for o, ps in pairs_of_order.items() if prob.split > 0 and len(ps) >= 2]
    m.S = pyo.Set(initialize=split_orders)
    m.s = pyo.Var(m.S, within=pyo.NonNegativeReals)

    fixed = (prob.pair_fixed / MICRO).tolist()
    gain = (prob.arc_gain / MICRO).tolist()
    m.obj = pyo.Objective(
        expr=prob.constant / MICRO
        + sum(fixed[p] * m.y[p] for p in m.P)
        + sum(gain[a] * m.x[a] for a in m.A)
        + (prob.split / MICRO) * sum(m.s[o] for o in m.S),
        sense=pyo.minimize,
    )

    arc_line = prob.arc_line.tolist()
    arc_pair = prob.arc_pair.tolist()
    arc_node = prob.arc_node.tolist()
    arc_sku = prob.arc_sku.tolist()
    vip_order = prob.order_vip.tolist()
    pair_node = prob.pair_node.tolist()
    pair_order = prob.pair_order.tolist()
    by_line: dict[int, list[int]] = defaultdict(list)
    by_stock: dict[tuple[int, int], list[int]] = defaultdict(list)
    by_node: dict[int, list[int]] = defaultdict(list)
    by_node_vip: dict[int, list[int]] = defaultdict(list)
    for a in range(n_arcs):
        by_line[arc_line[a]].append(a)
        by_stock[(arc_node[a], arc_sku[a])].append(a)
        by_node[arc_node[a]].append(a)
        if vip_order[pair_order[arc_pair[a]]]:
            by_node_vip[arc_node[a]].append(a)
    pairs_at: dict[int, list[int]] = defaultdict(list)
    vip_pairs_at: dict[int, list[int]] = defaultdict(list)
    for p in range(n_pairs):
        pairs_at[pair_node[p]].append(p)
        if vip_order[pair_order[p]]:
            vip_pairs_at[pair_node[p]].append(p)

    qty = prob.line_qty.tolist()
    m.line = pyo.Constraint(
        list(by_line), rule=lambda _m, ln: sum(_m.x[a] for a in by_line[ln]) <= qty[ln]
    )
    avail = prob.avail
    m.stock = pyo.Constraint(
        list(by_stock),
        rule=lambda _m, n, k: sum(_m.x[a] for a in by_stock[(n, k)]) <= int(avail[n, k]),
    )

    def capped(values: I64, groups: dict[int, list[int]]) -> list[int]:
        return [n for n in groups if values[n] >= 0]

    cap_u, cap_o = prob.cap_units, prob.cap_orders
    vip_u, vip_o = prob.vip_cap_units, prob.vip_cap_orders
    m.units = pyo.Constraint(
        capped(cap_u, by_node),
        rule=lambda _m, n: sum(_m.x[a] for a in by_node[n]) <= int(cap_u[n]),
    )
    m.parcels = pyo.Constraint(
        capped(cap_o, pairs_at),
        rule=lambda _m, n: sum(_m.y[p] for p in pairs_at[n]) <= int(cap_o[n]),
    )
    m.vip_units = pyo.Constraint(
        capped(vip_u, by_node_vip),
        rule=lambda _m, n: sum(_m.x[a] for a in by_node_vip[n]) <= int(vip_u[n]),
    )
    m.vip_parcels = pyo.Constraint(
        capped(vip_o, vip_pairs_at),
        rule=lambda _m, n: sum(_m.y[p] for p in vip_pairs_at[n]) <= int(vip_o[n]),
    )
    if prob.max_nodes > 0:
        m.nodes = pyo.Constraint(
            list(pairs_of_order),
            rule=lambda _m, o: sum(_m.y[p] for p in pairs_of_order[o]) <= prob.max_nodes,
        )
    m.split = pyo.Constraint(
        split_orders, rule=lambda _m, o: sum(_m.y[p] for p in pairs_of_order[o]) - _m.s[o] <= 1
    )
    m.link = pyo.Constraint(m.A, rule=lambda _m, a: _m.x[a] <= ub[a] * _m.y[arc_pair[a]])
    return m


def solve_pyomo(
    prob: Problem, params: AllocationParams, *, end_at: float | None = None
) -> PyomoOutcome:
    """Build the reference model and solve it with HiGHS through Pyomo.

    ``end_at`` (``time.monotonic()``): HiGHS' time limit is cut so that it stops by then
    (the build's and the hand-over's time counted), not ``params.time_limit_s`` after them.
    """
    from pyomo.contrib.solver.common.factory import SolverFactory

    from solvers.allocation.highs_model import (
        FAILED,
        MIP_GRID_OPTIONS,
        dual_bound,
        new_highs,
        prepare_scheduler,
        status_text,
    )

    new_highs()  # swallow the HiGHS banner before Pyomo creates its own instance
    t0 = time.perf_counter()
    model = build_pyomo_model(prob)
    build_s = time.perf_counter() - t0
    if prob.num_pairs == 0:
        return PyomoOutcome(
            np.zeros(prob.num_arcs, dtype=np.int64),
            prob.constant / MICRO,
            prob.constant / MICRO,
            "optimal",
            build_s,
            0.0,
        )
    solver = SolverFactory("highs")
    options: dict[str, Any] = {"random_seed": params.seed, **MIP_GRID_OPTIONS}
    limit_s = params.time_limit_s
    updates: dict[str, Any] = {}
    t1 = time.perf_counter()
    prepare_scheduler(params.threads)  # Pyomo runs HiGHS in this thread, not via run_highs
    try:
        if end_at is not None:
            # the hand-over of the model to HiGHS does not watch the clock (0.8-1.2 s at
            # 300 literature orders): done first, so that HiGHS' limit is what is left of it
            solver.set_instance(model)
            limit_s = min(limit_s, max(end_at - time.monotonic(), MIN_HIGHS_LIMIT_S))
            updates = {"auto_updates": _NO_UPDATES}  # the model is HiGHS' already, unchanged
        result = solver.solve(
            model,
            tee=False,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
            time_limit=limit_s,
            rel_gap=params.mip_rel_gap,
            threads=params.threads,
            solver_options=options,
            **updates,
        )
    except Exception as exc:  # HiGHS' C++ exception (MemoryError, RuntimeError): its error,
        # as run_highs makes it on the highspy backend: no answer, no bound, the failure named
        return _failed(prob, f"Solver error ({type(exc).__name__}: {exc})", build_s, t1)
    highs = getattr(solver, "_solver_model", None)
    if highs is not None and highs.getModelStatus() in FAILED:
        # HiGHS' own error ("Memory limit reached", no solution): Pyomo reads it "unknown"
        return _failed(prob, status_text(highs), build_s, t1)
    solve_s = time.perf_counter() - t1
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    objective = result.incumbent_objective
    if objective is not None:
        result.solution_loader.load_vars()
        values = [model.x[a].value for a in range(prob.num_arcs)]
        x = np.clip(np.rint(np.array(values, dtype=np.float64)), 0, prob.arc_ub).astype(np.int64)
    bound = result.objective_bound
    # a solve stopped before its root LP ends reports a bound of -inf (it made the result's
    # bound -inf and its gap inf, which the result refused), or (HiGHS 1.16) the one its
    # columns' own bounds give, which Pyomo passes on (until session 72 the answer stated
    # it, its gap as wide): no bound either way (dual_bound reads Pyomo's HiGHS instance, a
    # private attribute: a Pyomo without it leaves the finite bound as Pyomo reports it)
    if bound is not None and not (
        math.isfinite(bound) and (highs is None or math.isfinite(dual_bound(highs)))
    ):
        bound = None
    return PyomoOutcome(
        x=x,
        objective=None if objective is None else float(objective),
        bound=None if bound is None else float(bound),
        status=str(result.termination_condition.name),
        build_s=build_s,
        solve_s=solve_s,
    )


def _failed(prob: Problem, failure: str, build_s: float, t1: float) -> PyomoOutcome:
    """The outcome of a solve in which HiGHS failed (``failure``: its status text)."""
    return PyomoOutcome(
        x=np.zeros(prob.num_arcs, dtype=np.int64),
        objective=None,
        bound=None,
        status="error",
        build_s=build_s,
        solve_s=time.perf_counter() - t1,
        failure=failure,
    )
