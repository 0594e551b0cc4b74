"""The public entry point: :func:`allocate` a request, in batch, online or as a baseline."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import highspy
import numpy as np

from scenarios.errors import InputError
from solvers.allocation.batch import solve_batch
from solvers.allocation.dp import GaveUp
from solvers.allocation.explain import explain, lone_order_optimum
from solvers.allocation.heuristics import (
    Residual,
    nearest,
    real_costs,
    rule_chain_costs,
    sequential,
    solve_residual,
)
from solvers.allocation.highs_model import (
    FAILED,
    SMALL_MIP_OPTIONS,
    AllocationModel,
    Duals,
    cancelled,
    counting_failures,
    highs_threads,
    note_failure,
    shared_rows_bind,
    usable_cpus,
)
from solvers.allocation.params import ONLINE_MAX_ORDERS, AllocationParams
from solvers.allocation.problem import (
    F64,
    I64,
    MICRO,
    Evaluation,
    Problem,
    compile_request,
    from_micro,
)
from solvers.allocation.progress import EXPLAINING, INTEGER_PHASE, WARM_START, report_phase
from solvers.allocation.request import AllocationRequest
from solvers.allocation.result import (
    AllocationResult,
    AllocationStatus,
    Assignment,
    CostBreakdown,
    Kpis,
    OrderExplanation,
    ResourceName,
    ShadowPrice,
    ShadowPriceLp,
    SolveStats,
    Unfilled,
    construct_all,
)
from solvers.cancel import SolveCancelled
from solvers.gc_pause import full_collections_paused

if TYPE_CHECKING:
    from solvers.allocation.pyomo_worker import PyomoWorker, WorkerAnswer

log = logging.getLogger(__name__)

#: Relative slack on the gap test (float noise in HiGHS bounds).
_GAP_SLACK = 1e-9
#: float error (micro-units) allowed on a bound before it is rounded up to whole micro-units,
#: absolute and relative to the bound. A bound is a float sum of currency-unit prices (a
#: Lagrangian value, a HiGHS dual bound): far below 2^53 micro-units, its rounding error is
#: orders of magnitude below a thousandth of a micro-unit, and relative to it below 1e-12
#: (before session 56 the same slack only decided whether the bound proved the answer; the
#: bound was reported rounded to the nearest micro-unit). HiGHS' MIPs stop within half a
#: micro-unit of their incumbent (``highs_model.MIP_GRID_OPTIONS``), well above this slack.
_GRID_TOL = 1e-3
_GRID_TOL_REL = 1e-12


def grid_bound(bound: float) -> float:
    """``bound`` (currency) in micro-units, rounded up to a whole one where float error allows.

    Every allocation costs a whole number of micro-units, so the optimum is at least the
    bound rounded up; it is rounded up from ``bound`` less its float error
    (:data:`_GRID_TOL`), so a bound computed a little above the optimum is not rounded past
    it. A bound that is not finite stays so (``-inf``: no bound; ``inf``: exact).
    """
    b = bound * MICRO
    if not math.isfinite(b):
        return b
    return float(math.ceil(b - _GRID_TOL - _GRID_TOL_REL * abs(b)))


def _reported_bound(total_micros: int, bound: float) -> tuple[float, float]:
    """The bound of an allocation costing ``total_micros`` as reported, and its gap.

    The bound is rounded up to whole micro-units, as the optimum is (an optimal answer
    proven to within float error reads gap 0); the gap is that bound's, as a client
    recomputes it.
    """
    total = total_micros / MICRO
    reported = min(grid_bound(bound), total_micros) / MICRO
    return reported, ((total - reported) / total if total > 0 else 0.0)


def whole_micros_proved(total_micros: int, bound: float) -> bool:
    """True when ``bound`` (currency) proves an answer of ``total_micros`` optimal.

    Every allocation costs a whole number of micro-units: a bound whose :func:`grid_bound`
    reaches the total leaves no cheaper allocation (on totals of a few micro-units the
    relative gap of such a bound is above any float slack).
    """
    return math.isfinite(bound) and total_micros <= grid_bound(bound)


#: explanation time per order, kept back from a batch solve's budget so the whole answer
#: fits the time limit: for the first :data:`EXPLAIN_FULL_ORDERS` orders, then
#: :data:`EXPLAIN_S_PER_EXTRA_ORDER` per order beyond (the per-order time falls with size:
#: the one-by-one alternative searches stop at 2,000 orders). Measured on the scaling
#: table's batches (60 s, an idle machine): 1.7-2.4 s at 10,000 orders (3.6 s on a busy
#: machine), 5.1-5.2 s at 30,000 and 8.2-8.4 s at 50,000 (7.3-9.9 s busy), of which full
#: garbage collections took ~2 s; with them held back (:data:`GC_PAUSE_ORDERS`) 4.1 s at
#: 30,000 and 6.2 s at 50,000 orders (machine shared with test runs)
EXPLAIN_S_PER_ORDER = 0.0004
EXPLAIN_FULL_ORDERS = 10_000
EXPLAIN_S_PER_EXTRA_ORDER = 0.000125
#: seconds per order the answer takes to assemble once the explanations end (the unfilled
#: lines' reasons, the cut explanations, assignments, shadow prices): 0.1-0.2 s at 10,000
#: city orders and 0.7-1.6 s at 50,000 on a slow machine, where answers came 0.14-0.15 s
#: (10,000) and 0.94 s (50,000) past a 60 s limit without it
RESULT_S_PER_ORDER = 3e-5
#: an online MIP of up to this many orders runs as a one-order MIP does
#: (:data:`~solvers.allocation.highs_model.SMALL_MIP_OPTIONS`): over groups of 3-25 orders
#: of the literature setting (10 FCs) and the city (20 nodes), its p50 was 2-5x lower and
#: its p95 2-12x lower than with HiGHS' heuristics on two threads, at the same total cost
#: (literature) or 0.0002 % above it (city), inside the MIP gap
ONLINE_LEAN_ORDERS = 25
#: batches of at least this many orders run with full garbage collections held back
#: (:func:`~solvers.gc_pause.full_collections_paused`; at 50,000 city orders each one
#: scanned ~1.2 million objects in ~1 s and freed nothing)
GC_PAUSE_ORDERS = 2_000
#: at most this share of the time limit is kept back for explanations
EXPLAIN_SHARE_MAX = 0.25
#: seconds the optimising path (batch or online) takes at the least, as ``coef x orders **
#: exponent``: measured on the literature setting (10 FCs, one shared core) 0.16-0.45 s at
#: 300 orders (warm start, first pricing round, polish; more with the pool MIP's helper
#: process) and ~1-2 s at 2,000; a smaller time limit gets the nearest-node answer instead
NORMAL_PATH_S = (2.5e-3, 0.85)
#: seconds the explanations take, as ``coef x orders ** exponent``: measured 0.16 s at 300
#: literature orders, 0.79 s at 2,000 and 11.6 s at 50,000 (about 1 ms for one order)
EXPLAIN_PATH_S = (1.25e-3, 0.85)
#: seconds per order the explanations take at the least, every one of them cut short (the
#: costs, the residual world, the DP blocks, the unfilled lines' reasons and the short
#: explanations): measured on the nearest-node answer of literature requests with no time
#: given (session 45, a machine shared with a test run) 17 ms at 600 orders, 39 ms at
#: 1,000, 79 ms at 2,000 and 0.54 s at 10,000, with a margin
EXPLAIN_FLOOR_S_PER_ORDER = 6e-5


def normal_path_seconds(num_orders: int) -> float:
    """Expected shortest time of the optimising path for ``num_orders`` orders."""
    coef, exponent = NORMAL_PATH_S
    return coef * num_orders**exponent


def explain_seconds(num_orders: int) -> float:
    """Expected time of the explanations of ``num_orders`` orders."""
    coef, exponent = EXPLAIN_PATH_S
    return coef * num_orders**exponent


def explain_floor_seconds(num_orders: int) -> float:
    """Least time the explanations of ``num_orders`` orders take, every one cut short."""
    return EXPLAIN_FLOOR_S_PER_ORDER * num_orders


def explain_keep_seconds(num_orders: int, limit_s: float) -> float:
    """Seconds of a batch's time limit kept back for the explanations of its orders.

    Their expected time (:data:`EXPLAIN_S_PER_ORDER`) up to :data:`EXPLAIN_SHARE_MAX` of
    the limit: what they then use, as many orders explained in full as it fits; none where
    even their least time (:func:`explain_floor_seconds`) does not fit that share (the solve
    gets the whole limit and the answer has no explanations).
    """
    if not _explanations_fit(num_orders, limit_s):
        return 0.0
    full = min(num_orders, EXPLAIN_FULL_ORDERS)
    need = EXPLAIN_S_PER_ORDER * full + EXPLAIN_S_PER_EXTRA_ORDER * (num_orders - full)
    return min(EXPLAIN_SHARE_MAX * limit_s, need)


def _explanations_fit(num_orders: int, limit_s: float) -> bool:
    """Whether the explanations' least time fits the share of ``limit_s`` kept for them."""
    return explain_floor_seconds(num_orders) <= EXPLAIN_SHARE_MAX * limit_s


def allocate(
    request: AllocationRequest, params: AllocationParams | None = None
) -> AllocationResult:
    """Decide which node ships how many units of every order line, and explain why.

    Never raises for requests that cannot be met in full: unfilled units carry a reason,
    and with ``rules.allow_unfilled = False`` the status is ``infeasible`` with a diagnosis.
    Bad input raises :class:`~scenarios.errors.InputError` naming the field.

    Every HiGHS model of the call asks for ``params.threads`` (:func:`highs_threads`); left
    unset, a one-order online call asks for one (its models are tiny, see
    :data:`~solvers.allocation.highs_model.SMALL_MIP_OPTIONS`). An online request of more
    than :data:`ONLINE_MAX_ORDERS` orders is solved as a batch (``method`` ``batch``, with
    a note). More ``params.threads`` than the process's cores are used as asked, with a note.
    """
    start = time.perf_counter()
    if not isinstance(request, AllocationRequest):
        raise InputError("request", f"expected an AllocationRequest, got {type(request).__name__}")
    params = params if params is not None else AllocationParams()
    threads = params.threads
    if threads is None and params.mode == "online" and len(request.orders) == 1:
        threads = 1
    with (
        highs_threads(threads),
        counting_failures() as failures,
        full_collections_paused(len(request.orders) >= GC_PAUSE_ORDERS),
    ):
        result = _allocate(request, params, start)
    failed = failures.note()  # HiGHS runs that failed: the first of each kind was a warning
    if failed is not None:
        result.stats.notes.append(failed)
    note = oversubscribed_note(params.threads, usable_cpus())
    if note is not None:
        result.stats.notes.append(note)
    return result


def oversubscribed_note(threads: int | None, cores: int) -> str | None:
    """The note of a solve asked for more HiGHS threads than ``cores`` (None: not more)."""
    if threads is None or threads <= cores:
        return None
    return (
        f"threads {threads}: more than the {cores} cores this process may use; "
        f"{threads} kept as asked, but threads beyond the cores only oversubscribe them"
    )


def online_as_batch_note(num_orders: int) -> str:
    """The note of an online request of ``num_orders`` orders solved as a batch."""
    return (
        f"online mode with {num_orders} orders: solved as a batch (online mode's joint MIP "
        f"is for up to {ONLINE_MAX_ORDERS} orders; on more it stops far from the optimum, "
        "where the batch path's decomposition answers close to its bound)"
    )


def unknown_rule_skus(request: AllocationRequest, demanded: list[str]) -> list[str]:
    """SKUs of ``rules.restricted_skus`` that no order line or node inventory names.

    ``demanded``: the SKUs of the request's order lines (``Problem.sku_ids``).
    """
    rule_skus = request.rules.restricted_skus
    if not rule_skus:
        return []
    known = set(demanded)
    return [
        sku
        for sku in rule_skus
        if sku not in known and not any(sku in node.inventory for node in request.nodes)
    ]


def unknown_safety_skus(request: AllocationRequest, demanded: list[str]) -> dict[str, list[str]]:
    """SKUs of the nodes' per-SKU ``safety_stock`` that no order line or node inventory names,
    each with the nodes that give it (in request order)."""
    wanted: set[str] | None = None
    out: dict[str, list[str]] = {}
    for node in request.nodes:
        if not isinstance(node.safety_stock, dict) or not node.safety_stock:
            continue
        wanted = set(demanded) if wanted is None else wanted
        for sku in node.safety_stock:
            # the usual key, a SKU of the node's own stock, costs one look-up
            if sku not in node.inventory and sku not in wanted:
                out.setdefault(sku, []).append(node.id)
    return {
        sku: ids
        for sku, ids in out.items()
        if not any(sku in node.inventory for node in request.nodes)
    }


def unknown_rule_regions(request: AllocationRequest) -> dict[str, list[str]]:
    """Regions of ``rules.excluded_nodes`` and ``rules.restricted_skus`` that no order or node
    of the request is in, by rule (in the order the rules name them; rules without any left
    out)."""
    rules = request.rules
    named = {
        "excluded_nodes": list(rules.excluded_nodes),
        "restricted_skus": [r for regions in rules.restricted_skus.values() for r in regions],
    }
    if not any(named.values()):
        return {}
    known = {o.region for o in request.orders} | {n.region for n in request.nodes}
    out: dict[str, list[str]] = {}
    for rule, regions in named.items():
        unknown = [r for r in dict.fromkeys(regions) if r not in known]
        if unknown:
            out[rule] = unknown
    return out


def _shown(names: list[str]) -> str:
    """Up to five of ``names``, quoted, with ``...`` for the rest."""
    return ", ".join(repr(name) for name in names[:5]) + (", ..." if len(names) > 5 else "")


def _allocate(
    request: AllocationRequest, params: AllocationParams, start: float
) -> AllocationResult:
    """:func:`allocate` with its HiGHS thread count in place."""
    # the rule baselines follow their rules, not the cost: the candidates that can never pay
    # off, pruned for the optimisers (exactly), are theirs to take (nearest and rule_chain
    # shipped nothing, or from a farther node, where their rule ships from the nearest one)
    prob = compile_request(request, prune=params.baseline not in RULE_BASELINES)
    stats = SolveStats(
        num_orders=prob.num_orders,
        num_nodes=prob.num_nodes,
        num_lines=prob.num_lines,
        candidate_pairs=prob.num_pairs,
        pruned_pairs=prob.pruned_pairs,
        build_s=round(time.perf_counter() - start, 6),
    )
    unknown = unknown_rule_skus(request, prob.sku_ids)
    if unknown:
        stats.notes.append(
            f"rules.restricted_skus: {len(unknown)} SKU(s) in no order line or node inventory "
            f"of this request ({_shown(unknown)}): a misspelt SKU restricts nothing"
        )
    # nor does a node's safety stock of a misspelt SKU keep anything on the shelf
    kept = unknown_safety_skus(request, prob.sku_ids)
    if kept:
        where = [f"{sku!r} at {', '.join(ids)}" for sku, ids in list(kept.items())[:5]]
        stats.notes.append(
            f"nodes.*.safety_stock: {len(kept)} SKU(s) in no order line or node inventory of "
            f"this request ({'; '.join(where)}{'; ...' if len(kept) > 5 else ''}): a misspelt "
            "SKU keeps nothing on the shelf"
        )
    # a sanctions list keyed by a misspelt region ("East" for "east") bars nothing either
    verbs = {"excluded_nodes": "excludes", "restricted_skus": "restricts"}
    for rule, regions in unknown_rule_regions(request).items():
        stats.notes.append(
            f"rules.{rule}: {len(regions)} region(s) of no order or node of this request "
            f"({_shown(regions)}): a misspelt region {verbs[rule]} nothing"
        )
    worker: PyomoWorker | None = None  # the pyomo backend's process, taken for this solve
    worker_start_s = 0.0  # the wait for it to start, when none was ready
    if params.backend == "pyomo" and params.baseline is None:
        params, worker, worker_start_s = _pyomo_in_time(params, prob.num_orders, start, stats)
    if (
        params.mode == "online"
        and params.backend == "highspy"
        and params.baseline is None
        and prob.num_orders > ONLINE_MAX_ORDERS
    ):
        # the joint compact MIP of a few orders stalls far from the optimum on many
        # (:data:`ONLINE_MAX_ORDERS`): the batch path answers them, and says so
        stats.notes.append(online_as_batch_note(prob.num_orders))
        params = params.model_copy(update={"mode": "batch"})
    # the baseline that made the answer when no solve did (explained as such)
    answer_baseline: str | None = None
    bound: float | None = None
    duals: Duals | None = None
    # which LP relaxation the duals are of, and how far from its optimal duals (currency);
    # a batch's are the pattern LP's (where no row can bind every LP prices them at zero)
    price_lp: ShadowPriceLp = (
        "pattern" if params.mode == "batch" and params.backend == "highspy" else "compact"
    )
    price_tol = 0.0
    method: str
    # the solve's share of the limit, less the compilation, against its shortest run
    share_s = (
        _online_share(params, prob.num_orders) * params.time_limit_s
        if params.mode == "online"
        else _solve_seconds(prob, params)
    )
    solve_left = share_s - (time.perf_counter() - start)
    fast = (
        params.baseline is None
        and params.backend == "highspy"
        and prob.num_pairs > 0
        and solve_left < normal_path_seconds(prob.num_orders)
    )
    if fast:
        method = params.mode
        x = nearest(prob)
        stats.notes.append(
            f"time limit {params.time_limit_s:g} s too short for the {params.mode} solve "
            f"(about {normal_path_seconds(prob.num_orders):.2g} s at {prob.num_orders} orders): "
            "nearest-node answer, not optimised"
        )
    elif params.baseline is not None:
        method = params.baseline
        x = run_baseline(prob, params.baseline, deadline=start + params.time_limit_s)
    elif params.backend == "pyomo" and worker is not None:
        method = f"{params.mode}/pyomo"
        x, bound, answer_baseline = _solve_in_worker(
            prob, params, worker, worker_start_s, start, stats
        )
    elif params.mode == "online":
        method = "online"
        x, bound = _online(prob, params, start, stats)
    else:
        method = "batch"
        batch = solve_batch(prob, _solve_share(prob, params), start=start)
        x, bound, duals = batch.x, batch.bound, batch.duals
        price_lp, price_tol = "pattern", batch.duals_gap
        stats.lp_rounds = batch.lp_rounds
        stats.lp_bound = None if batch.lp_value is None else round(batch.lp_value, 6)
        stats.warm_start_cost = from_micro(batch.warm_start_cost)
        stats.mip_nodes = batch.mip_nodes
        stats.fixed_orders = batch.fixed_orders
        stats.mip_pairs = batch.mip_columns
        stats.lp_s = round(batch.lp_s, 6)
        stats.mip_s = round(batch.mip_s, 6)
        stats.notes.extend(batch.notes)
    problems = prob.violations(x)
    if problems:  # never hand out an allocation that breaks a limit
        x = _fallback(prob, method, problems, stats, deadline=start + params.time_limit_s)
        bound = None
        # the batch's price tolerance rests on its answer's cost: the compact LP instead
        duals, price_lp, price_tol = None, "compact", 0.0
    ev = prob.evaluate(x)
    want_prices = params.shadow_prices and params.baseline is None
    if want_prices and duals is None and not prob.num_pairs:
        duals = Duals.zeros(prob)  # nothing can ship: every LP prices every row at zero
    lp_failed: str | None = None  # why the shadow-price LP gave no duals, past time and cancels
    if want_prices and duals is None and prob.num_pairs:
        # the compact LP, within what is left of the solve's share of the budget; beyond
        # max_mip_pairs (where no compact model is built) it would take longer than that
        left = _solve_seconds(prob, params) - (time.perf_counter() - start)
        if not shared_rows_bind(prob):
            # no stock or capacity row can bind (each has room for every candidate unit),
            # so the LP prices them all at zero: nothing to solve
            duals = Duals.zeros(prob)
        elif fast:  # no time for a solve, none for an LP over every candidate either
            pass
        elif left > 0.0 and prob.num_pairs <= params.max_mip_pairs and not cancelled():
            duals, lp_failed = _lp_duals(prob, params, left)
        if duals is None:
            why = "the solve was cancelled" if cancelled() else "no LP duals within the time limit"
            if lp_failed is not None:
                why = lp_failed
            stats.notes.append(f"no shadow prices: {why}")
    t_explain = time.perf_counter()
    explanations: list[OrderExplanation] = []
    unfilled: list[Unfilled] = []
    # they run when the time to their end covers their least time (every one cut short,
    # as the time kept back for them, explain_keep_seconds, assumes): as many orders are
    # explained in full as fit, and a note says how many were not
    explain_end = _explain_end(params, prob.num_orders, start)
    explain_left = explain_end - time.perf_counter()
    explain_floor = explain_floor_seconds(prob.num_orders)
    explain_cut = explain_left < explain_floor
    if params.explain and cancelled():  # its caller stopped it (a service shutting down)
        stats.notes.append("no explanations: the solve was cancelled")
    elif params.explain and explain_cut:
        stats.notes.append(
            f"no explanations: {max(explain_left, 0.0):.2g} s of the time limit left, they take "
            f"at least {explain_floor:.2g} s at {prob.num_orders} orders (about "
            f"{explain_seconds(prob.num_orders):.2g} s to explain all in full)"
        )
    explained = False
    if params.explain and not explain_cut and not cancelled():
        # only a proven answer (an exact one-order solve: no bound below it) is the lone
        # order's own optimum; a fast-path or cut-short one is searched as in a batch
        proven = method == "online" and not fast and bound == math.inf
        lone = lone_order_optimum(prob, x) if proven else None
        gap = None
        if bound is not None and bound > -math.inf:  # the certified gap, as it will read
            gap = _reported_bound(ev.total, bound)[1]
        report_phase(EXPLAINING, gap)
        explain_notes: list[str] = []
        try:
            explanations, unfilled = explain(
                prob,
                x,
                unconstrained=lone,
                lone_uncapped=lone is not None,
                budget_s=_explain_budget(params, method, start),
                end=explain_end,
                notes=explain_notes,
                baseline=params.baseline or ("nearest" if fast else answer_baseline),
            )
        except SolveCancelled:  # cancelled while they ran: left out, as when cancelled before
            stats.notes.append("no explanations: the solve was cancelled")
        else:
            explained = True
            stats.notes.extend(explain_notes)
    if not explained:
        from solvers.allocation.explain import _world, unfilled_lines

        unfilled = unfilled_lines(prob, _world(prob, x), x)
    stats.explain_s = round(time.perf_counter() - t_explain, 6)
    if cancelled():
        stats.notes.append(CANCELLED_NOTE)
    gap = None
    if bound is not None:
        bound, gap = _reported_bound(ev.total, bound)
    status = AllocationStatus.FEASIBLE
    if gap is not None and gap <= params.mip_rel_gap + _GAP_SLACK:
        status = AllocationStatus.OPTIMAL
    diagnosis: list[str] = []
    if prob.hard_unfilled and unfilled:
        if status != AllocationStatus.OPTIMAL:
            # a baseline or a solve stopped short: the units may yet ship; say so first
            if params.baseline is not None:
                why = f"the {method} baseline leaves units short; the optimiser may ship them"
            else:
                at = "" if gap is None else f" at a gap of {100 * gap:.3g} %"
                why = f"the solve stopped{at}; a longer time limit may ship these units"
            diagnosis.append(f"not proven impossible: {why}")
        status = AllocationStatus.INFEASIBLE
        diagnosis += [
            f"order {u.order_id}: {u.quantity} x {u.sku} cannot ship ({u.reason.value}: {u.detail})"
            for u in unfilled
        ]
    assignments = _assignments(prob, x)
    answer_kpis = kpis(prob, ev)
    prices = shadow_prices(prob, duals, x) if (want_prices and duals) else []
    elapsed_s = time.perf_counter() - start
    late = overrun_note(params.time_limit_s, elapsed_s, stats.build_s)
    if late is not None:
        stats.notes.append(late)
    return AllocationResult(
        status=status,
        method=method,
        assignments=assignments,
        unfilled=unfilled,
        cost=cost_breakdown(ev),
        bound=None if bound is None else round(bound, 6),
        gap=None if gap is None else max(gap, 0.0),
        solve_time_s=round(elapsed_s, 6),
        kpis=answer_kpis,
        explanations=explanations,
        shadow_prices=prices,
        shadow_price_lp=price_lp if (want_prices and duals) else None,
        shadow_price_tolerance=_round_up(price_tol) if (want_prices and duals) else None,
        diagnosis=diagnosis,
        stats=stats,
    )


def overrun_note(limit_s: float, elapsed_s: float, build_s: float) -> str | None:
    """The note of an answer ready ``elapsed_s`` after the call, past its time limit
    (``build_s``: the request's compilation, which every answer needs first), else None.

    A limit shorter than compiling the request and writing the fastest answer (the
    nearest-node allocation) cannot be kept (0.01 s at 2,000 orders): the answer says so,
    where only its ``solve_time_s`` told it.
    """
    if elapsed_s <= limit_s:
        return None
    return (
        f"time limit {limit_s:g} s not kept: answered after {elapsed_s:.3g} s "
        f"(compiling the request: {build_s:.3g} s)"
    )


#: the note of a solve its caller cancelled (:func:`solvers.cancel.cancel_with`:
#: a service stopping) before its shadow prices or explanations: they are left out
CANCELLED_NOTE = "the solve was cancelled (its caller is stopping): the answer found so far"


def _round_up(value: float) -> float:
    """``value`` rounded up to the micro-unit (a tolerance stays valid when rounded)."""
    return math.ceil(round(value * MICRO, 3)) / MICRO


def _explain_budget(params: AllocationParams, method: str, start: float) -> float:
    """Seconds the explanations may spend re-solving orders one at a time.

    Whatever the solve left of the time limit, at least 5 % of it; a batch's at most a
    second or 5 % of the limit, whichever is more.
    """
    left = max(params.time_limit_s - (time.perf_counter() - start), 0.05 * params.time_limit_s)
    if method == "online":
        return left
    return min(max(1.0, 0.05 * params.time_limit_s), left)


def _explain_end(params: AllocationParams, num_orders: int, start: float) -> float:
    """When the explanations stop (``time.perf_counter()``): at the time limit, less the
    time the answer takes to assemble after them (:data:`RESULT_S_PER_ORDER`).

    A limit whose 5 % covers the explanations' expected time (:func:`explain_seconds`: 10 s
    at 300 orders) keeps its explanations when the solve used its whole share: they may
    run until 5 % of the limit after the solve, as the budget (:func:`_explain_budget`) says.
    """
    now = time.perf_counter()
    grace = 0.05 * params.time_limit_s
    if explain_seconds(num_orders) <= grace:
        return max(start + params.time_limit_s, now + grace)
    tail = min(RESULT_S_PER_ORDER * num_orders, grace)
    return start + params.time_limit_s - tail


def run_baseline(
    prob: Problem,
    name: str,
    *,
    deadline: float | None = None,
    give_up: Callable[[], bool] | None = None,
) -> I64:
    """Allocation of a baseline policy (``nearest``, ``rule_chain`` or ``myopic``).

    Past ``deadline`` (``time.perf_counter()``) the sequential policies start no more
    one-order MIPs (an order over many capped nodes then takes its search's best pattern).
    ``give_up`` stops them instead, between orders (:func:`sequential`): it raises
    :class:`~solvers.allocation.dp.GaveUp` (``nearest``, 0.05 s at 2,000 orders, ignores it).
    """
    if name == "nearest":
        return nearest(prob)
    if name == "rule_chain":
        return sequential(prob, rule_chain_costs(prob), deadline=deadline, give_up=give_up)
    if name == "myopic":
        return sequential(prob, real_costs(prob), deadline=deadline, give_up=give_up)
    raise InputError("params.baseline", f"unknown baseline {name!r}")


#: the baselines that follow a rule rather than the cost function: they run on every
#: candidate, the ones the optimisers prune (which can never pay off) included
RULE_BASELINES = ("nearest", "rule_chain")


#: the answers tried, in turn, when a solver's breaks a limit (the last resort ships nothing)
FALLBACKS = ("myopic", "nearest")


def _fallback(
    prob: Problem, method: str, problems: list[str], stats: SolveStats, *, deadline: float
) -> I64:
    """The first fallback answer that keeps every limit; else shipping nothing (always valid).

    A fallback that breaks a limit too (the myopic policy shares its one-order solver with
    the online path) is passed over rather than handed out.
    """
    broke = "; ".join(problems)
    for name in FALLBACKS:
        if name == method:
            continue  # the answer that just failed
        x = run_baseline(prob, name, deadline=deadline)
        failed = prob.violations(x)
        if not failed:
            stats.notes.append(f"{method} answer broke {broke}: fell back to {name}")
            return x
        broke = f"{broke}; {name} broke " + "; ".join(failed)
    stats.notes.append(f"{method} answer broke {broke}: fell back to shipping nothing")
    return np.zeros(prob.num_arcs, dtype=np.int64)


#: the note of a pyomo solve begun before its process's pyomo workers were ended
PYOMO_STOPPING_NOTE = (
    "backend pyomo: this process's pyomo worker processes were ended after the solve began "
    "(the service is stopping): solved with the highspy backend"
)


def _pyomo_in_time(
    params: AllocationParams, num_orders: int, start: float, stats: SolveStats
) -> tuple[AllocationParams, PyomoWorker | None, float]:
    """``params`` of a pyomo solve, the worker process to solve it in, and the seconds the
    solve waited for that worker to start.

    A worker with Pyomo imported (:mod:`~solvers.allocation.pyomo_worker`) is taken at
    once. Without one, and when the time left cannot cover a worker's start
    (:data:`~solvers.allocation.pyomo_worker.WORKER_START_S`, Pyomo's import the most of it)
    and the optimising path's shortest run (:func:`normal_path_seconds`), or the worker
    did not start while leaving that run's time: ``params`` of the highspy backend, no
    worker, and a note (a worker is left starting for later solves). The highspy backend
    then answers as it does any limit (a too small one by the nearest-node answer). So too,
    with :data:`PYOMO_STOPPING_NOTE` and no worker started, once the process's workers were
    ended (the service's stop) after the call's ``start``.
    """
    from solvers.allocation.pyomo_worker import (
        WORKER_START_S,
        ended_since,
        start_left,
        start_worker,
        take_worker,
    )

    worker = take_worker(0.0, begun=start)
    if worker is not None:
        return params, worker, 0.0
    if ended_since(start):
        stats.notes.append(PYOMO_STOPPING_NOTE)
        return params.model_copy(update={"backend": "highspy"}), None, 0.0
    need = normal_path_seconds(num_orders)
    left = params.time_limit_s - (time.perf_counter() - start)
    # a worker started earlier (a job process starts one as it reads its payload) is part
    # of the way there
    starting = start_left()
    expect = WORKER_START_S if starting is None else starting
    if left < expect + need:
        start_worker(begun=start)
        stats.notes.append(
            "backend pyomo: no pyomo worker process is ready in this process, and starting "
            f"one (it imports Pyomo) takes about {WORKER_START_S:g} s (about {expect:.2g} s "
            f"more here), more than the {max(left, 0.0):.2g} s left of the time limit: solved "
            f"with the highspy backend (a worker is starting for later solves). {_PYOMO_ADVICE}"
        )
        return params.model_copy(update={"backend": "highspy"}), None, 0.0
    t0 = time.perf_counter()
    worker = take_worker(left - need, begun=start)
    waited = time.perf_counter() - t0
    if worker is None and ended_since(start):
        stats.notes.append(PYOMO_STOPPING_NOTE)
        return params.model_copy(update={"backend": "highspy"}), None, 0.0
    if worker is None:
        left = params.time_limit_s - (time.perf_counter() - start)
        stats.notes.append(
            f"backend pyomo: the pyomo worker process was not ready after {waited:.2g} s, "
            f"leaving {max(left, 0.0):.2g} s of the time limit: solved with the highspy "
            f"backend. {_PYOMO_ADVICE}"
        )
        return params.model_copy(update={"backend": "highspy"}), None, 0.0
    return params, worker, waited


#: how the note of a pyomo solve whose worker was killed at its deadline starts
PYOMO_KILLED_NOTE = "backend pyomo: the solve did not finish within its time limit"

#: seconds past the time limit the pyomo worker is killed, less the answer's assembly after
#: it (:data:`RESULT_S_PER_ORDER`): until session 44 it was killed 0.3 s past the limit, and
#: answers came 0.32-0.43 s past it (literature requests of 300-2,000 orders at 1 and 5 s;
#: the assembly after a kill took 0.06 s at 2,000 orders)
PYOMO_KILL_GRACE_S = 0.05
#: seconds before the kill HiGHS is told to stop (at most :data:`PYOMO_HANDBACK_SHARE` of the
#: limit): Pyomo's loading of its solution and the answer's transfer took 0.02-0.07 s at 300
#: literature orders, and HiGHS stopped up to 0.09 s past its own limit at 600
PYOMO_HANDBACK_S = 0.2
PYOMO_HANDBACK_SHARE = 0.2
#: seconds past the time limit a fallback baseline started before the kill may run on to
#: finish (the kill's margin until session 44)
PYOMO_FALLBACK_GRACE_S = 0.3

#: how a pyomo solve avoids waiting for its worker's start (the end of the notes that say it did)
_PYOMO_ADVICE = (
    "To avoid this, start the pyomo worker once before the first solve (import "
    "solvers.allocation.pyomo_preload, or call "
    "solvers.allocation.pyomo_worker.warm_worker(); the service, its Ray workers and "
    "`dispatchlab allocate --backend pyomo` do) or use the highspy backend"
)


#: the baselines the pyomo backend's fallback tries after the nearest-node answer, in turn,
#: while its worker runs: at 2,000 literature orders (seed 0, 10 FCs) the nearest-node answer
#: cost 54,695 in 0.05 s, the myopic one 46,755 in 1.0 s, the rule chain's 46,776 in 1.2 s
#: (at 300 and 1,000 orders the last two were equal: the myopic one goes first)
PYOMO_FALLBACKS = ("myopic", "rule_chain")

#: what each fallback baseline is, in the note of a pyomo solve that fell back to it
_FALLBACK_WHAT = {
    "nearest": "the nearest-node answer",
    "myopic": "the myopic baseline (each order's own optimum, in arrival order)",
    "rule_chain": "the rule-chain baseline (fewest unfilled units, shipments, then km)",
}

#: how the note of a pyomo solve that fell back to a baseline names it (then its name)
PYOMO_FELL_BACK = "fell back to baseline "


class _Fallback:
    """The pyomo backend's answer without its worker: the cheapest complete baseline.

    The nearest-node answer first (always there), then :data:`PYOMO_FALLBACKS` while time
    remains; one stopped short is dropped (and tried from the start on a later call).
    """

    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        self.x: I64 | None = None
        self.name = ""
        self.cost = 0
        self.nearest_cost = 0
        self.left = list(PYOMO_FALLBACKS)
        #: the baselines stopped short (by the deadline or the worker's answer)
        self.cut: list[str] = []
        #: seconds the last complete baseline of :data:`PYOMO_FALLBACKS` took (the next
        #: one's expected time: 1.0 and 1.2 s at 2,000 literature orders)
        self.last_s: float | None = None

    def improve(
        self, until: float, stop: Callable[[], bool], start_by: float | None = None
    ) -> None:
        """Compute baselines until ``until`` (``time.perf_counter()``) or ``stop()``, none
        started past ``start_by`` (one started before may run on until ``until``), nor one
        expected (as long as the last one took) to end past ``start_by``: at 1,400 literature
        orders and a 1 s limit the rule chain started 2 ms before the kill, and the answer
        waited 0.3 s for it to be cut short."""
        if self.x is None:
            self._keep("nearest", nearest(self.prob))
            self.nearest_cost = self.cost

        def give_up() -> bool:
            return time.perf_counter() >= until or stop() or cancelled()

        last = until if start_by is None else min(start_by, until)
        while self.left and not give_up():
            begun = time.perf_counter()
            if begun + (self.last_s or 0.0) >= last:
                return
            name = self.left[0]
            try:
                x = run_baseline(self.prob, name, deadline=until, give_up=give_up)
            except GaveUp:
                if name not in self.cut:
                    self.cut.append(name)
                return
            self.last_s = time.perf_counter() - begun
            self.left.pop(0)
            if name in self.cut:
                self.cut.remove(name)
            if not self.prob.violations(x):
                self._keep(name, x)

    def _keep(self, name: str, x: I64) -> None:
        """Keep ``x`` if it is the first answer or cheaper than the kept one."""
        cost = self.prob.evaluate(x).total
        if self.x is None or cost < self.cost:
            self.x, self.name, self.cost = x, name, cost

    def note(self) -> str:
        """Which baseline the answer is, its cost against the nearest-node answer's."""
        assert self.x is not None
        text = f"{PYOMO_FELL_BACK}{self.name}: {_FALLBACK_WHAT[self.name]}, not optimised"
        if self.name != "nearest":
            saved = self.nearest_cost - self.cost
            share = saved / self.nearest_cost if self.nearest_cost else 0.0
            text += (
                f" (cost {self.cost / MICRO:.2f}, {100 * share:.3g} % below the nearest-node "
                f"answer's {self.nearest_cost / MICRO:.2f})"
            )
        if self.cut:
            text += f"; {' and '.join(self.cut)} did not finish in time"
        return text


def pyomo_fallback(notes: list[str]) -> str | None:
    """The baseline a pyomo solve fell back to, read from its ``notes`` (None: it did not)."""
    for note in notes:
        at = note.find(PYOMO_FELL_BACK)
        if note.startswith("backend pyomo") and at >= 0:
            return note[at + len(PYOMO_FELL_BACK) :].split(":", 1)[0]
    return None


def pyomo_deadlines(limit_s: float, num_orders: int, start: float) -> tuple[float, float]:
    """When a pyomo solve's worker is killed and when HiGHS is told to stop, in it
    (``time.perf_counter()``), for a call that started at ``start`` with ``limit_s``.

    The kill comes :data:`PYOMO_KILL_GRACE_S` past the limit less the answer's assembly
    after it (:data:`RESULT_S_PER_ORDER`, at most 5 % of the limit); HiGHS stops
    :data:`PYOMO_HANDBACK_S` before it (at most :data:`PYOMO_HANDBACK_SHARE` of the limit).
    """
    tail = min(RESULT_S_PER_ORDER * num_orders, 0.05 * limit_s)
    kill_at = start + limit_s + PYOMO_KILL_GRACE_S - tail
    return kill_at, kill_at - min(PYOMO_HANDBACK_S, PYOMO_HANDBACK_SHARE * limit_s)


def _solve_in_worker(
    prob: Problem,
    params: AllocationParams,
    worker: PyomoWorker,
    start_s: float,
    start: float,
    stats: SolveStats,
) -> tuple[I64, float | None, str | None]:
    """The pyomo backend's answer, its bound and, when the worker did not give one, the
    baseline that made it instead.

    The worker builds the Pyomo model and HiGHS solves it there, stopped at the solve's
    share of the time limit (:func:`_solve_seconds`: with explanations, their time is kept
    back) less the answer's hand-back; building the model and HiGHS' MIP set-up do not
    watch the clock, so a worker that has not answered by :func:`pyomo_deadlines`' kill
    time, about the end of that share, is killed then (as is a worker on any exception
    here). Meanwhile (from the start: the problem is written to the worker from a thread)
    this process computes the fallback (:class:`_Fallback`):
    the nearest-node answer (0.05 s at 2,000 literature orders), then the myopic and
    rule-chain baselines (1.0-1.6 s at 2,000 orders, 17 % cheaper than the nearest-node
    answer), each stopped at the kill's time or as soon as the worker answers (a one-order
    MIP of theirs, rare, runs on until the kill's time at the most; none is started that
    the last one's time says would end past the kill). A worker killed, crashed, whose
    solve raised or whose HiGHS failed (:attr:`PyomoOutcome.failure
    <solvers.allocation.pyomo_model.PyomoOutcome.failure>`) gets the cheapest complete one,
    with a note naming it (one that ended early: its fallback goes on computing until the
    solve's share ends).
    """
    from solvers.allocation.pyomo_model import status_words
    from solvers.allocation.pyomo_worker import give_back

    # the solve's share of the limit: with explanations, their time is kept back after it
    # (HiGHS aimed at the whole limit until session 45, and the explanations were cut)
    solve_s = _solve_seconds(prob, params)
    limit_s = solve_s - start_s  # HiGHS' limit, less the wait for the worker
    kill_at, end_at = pyomo_deadlines(solve_s, prob.num_orders, start)
    fallback = _Fallback(prob)
    answer: WorkerAnswer | None = None
    # the worker builds the Pyomo model and HiGHS solves the one MIP over every pair there
    report_phase(INTEGER_PHASE)
    try:
        answer = worker.solve(
            prob,
            params.model_copy(update={"time_limit_s": limit_s}),
            end_at=end_at,
            kill_at=kill_at,
            # while the problem is sent and the worker builds the model (the parent waits
            # otherwise): no time is then spent on it after a kill. None starts past the
            # kill, but one running then may finish within PYOMO_FALLBACK_GRACE_S past the
            # solve's share (the myopic baseline took ~1 s at 2,000 literature orders: at a
            # 1 s limit it was the answer, 14.5 % below the nearest-node one, only so); the
            # worker is killed at its time all the same
            meanwhile=lambda answered: fallback.improve(
                start + solve_s + PYOMO_FALLBACK_GRACE_S,
                answered,  # it answered (or ended) before its kill
                start_by=kill_at,
            ),
        )
    finally:
        give_back(worker, replace=answer is not None)  # no successor for an interrupted call
    out = answer.outcome
    if out is not None and not out.failure:
        stats.mip_pairs = prob.num_pairs
        stats.build_s = round(stats.build_s + out.build_s, 6)
        stats.mip_s = round(out.solve_s, 6)
        stats.notes.append(f"HiGHS status {status_words(out.status)}")
        highs_cost = prob.evaluate(out.x).total
        if fallback.x is not None and fallback.cost < highs_cost:
            # HiGHS stopped at its limit on a worse incumbent (at 300 literature orders and
            # a 1 s limit: 61,614 against the nearest-node answer's 8,439): its bound holds
            stats.notes.append(
                f"backend pyomo: HiGHS' answer at its limit cost "
                f"{highs_cost / MICRO:.2f}, more than a baseline computed "
                f"meanwhile: {fallback.note()}; HiGHS' bound kept"
            )
            return fallback.x, out.bound, fallback.name
        return out.x, out.bound, None
    stats.mip_s = round(answer.waited_s, 6)
    if out is not None:  # HiGHS failed in the worker (an exception, an error status)
        stats.build_s = round(stats.build_s + out.build_s, 6)
        note_failure(out.failure)  # logged and counted as a failed HiGHS run of the solve
        what = f"backend pyomo: HiGHS failed ({out.failure}), no answer from it"
        # it ended early: the rest of the solve's share is the fallback's
        fallback.improve(start + solve_s, lambda: False)
    elif answer.failure == "timeout":
        share = (
            f", of which the solve's share {solve_s:.3g} s (the rest is the explanations')"
            if solve_s < params.time_limit_s
            else ""
        )
        what = (
            f"{PYOMO_KILLED_NOTE} of {params.time_limit_s:g} s{share} (its worker process was "
            f"killed {kill_at - start:.3g} s after the call's start): building the Pyomo model and "
            "HiGHS' MIP set-up do not watch the clock, and grow faster than the model (100 s "
            "and more at 2,000 orders)"
        )
    else:
        log.warning("pyomo solve failed: %s", answer.failure)
        what = f"backend pyomo: the solve gave no answer: {answer.failure}"
        # it ended early: the rest of the solve's share is the fallback's
        fallback.improve(start + solve_s, lambda: False)
    if fallback.x is None:  # the caller's exception stopped it before its first answer
        fallback.improve(0.0, lambda: True)
    assert fallback.x is not None
    stats.notes.append(f"{what}; {fallback.note()}. Use the highspy backend for large requests")
    return fallback.x, None, fallback.name


def _solve_share(prob: Problem, params: AllocationParams) -> AllocationParams:
    """``params`` with the time the explanations are expected to take kept back."""
    if not params.explain:
        return params
    return params.model_copy(update={"time_limit_s": _solve_seconds(prob, params)})


def _solve_seconds(prob: Problem, params: AllocationParams) -> float:
    """The time limit of :func:`_solve_share` (without copying the parameters)."""
    if not params.explain:
        return params.time_limit_s
    return params.time_limit_s - explain_keep_seconds(prob.num_orders, params.time_limit_s)


def _online_share(params: AllocationParams, num_orders: int) -> float:
    """Share of the time limit an online solve may use (the rest is the explanations',
    unless even their least time, :func:`explain_floor_seconds`, does not fit it)."""
    if params.explain and _explanations_fit(num_orders, params.time_limit_s):
        return 1.0 - EXPLAIN_SHARE_MAX
    return 1.0


def _online(
    prob: Problem, params: AllocationParams, start: float, stats: SolveStats
) -> tuple[I64, float | None]:
    """Exact answer for one order (DP or a one-order MIP) or a few (the joint compact MIP;
    more than :data:`ONLINE_MAX_ORDERS` are solved as a batch instead)."""
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    if prob.num_pairs == 0:
        return x, prob.constant / MICRO
    solve_end = start + _online_share(params, prob.num_orders) * params.time_limit_s
    if prob.num_orders == 1:
        report_phase(INTEGER_PHASE)  # the exact one-order search
        arcs, qty, lower = solve_residual(
            prob, 0, Residual(prob), *real_costs(prob), deadline=solve_end
        )
        x[arcs] = qty
        if lower is None:  # exact: no bound below the answer's cost (the caller clamps to it)
            return x, math.inf
        stats.notes.append("one-order search stopped at the time limit: optimum not proven")
        if not math.isfinite(lower):
            return x, None
        # the search's bound is relative to shipping nothing
        return x, prob.evaluate(np.zeros_like(x)).total / MICRO + lower
    t0 = time.perf_counter()
    # the warm start (one order at a time) may take half of what is left, the MIP the rest
    report_phase(WARM_START)
    x_start = sequential(prob, real_costs(prob), deadline=t0 + 0.5 * (solve_end - t0))
    model = AllocationModel(
        prob, np.arange(prob.num_pairs), integer=True, threads=params.threads, seed=params.seed
    )
    model.set_options(mip_rel_gap=params.mip_rel_gap)
    if prob.num_orders <= ONLINE_LEAN_ORDERS:
        model.set_options(**SMALL_MIP_OPTIONS)
    model.set_start(x_start)
    report_phase(INTEGER_PHASE)  # the joint compact MIP from the warm start
    status = model.run(max(solve_end - time.perf_counter(), 0.01))
    stats.mip_pairs = prob.num_pairs
    stats.mip_nodes = model.mip_nodes()
    stats.mip_s = round(time.perf_counter() - t0, 6)
    if not model.has_solution() and model.h.getModelStatus() in FAILED:
        stats.notes.append(f"MIP failed ({status}): myopic answer")
        return x_start, None
    if not model.has_solution():
        stats.notes.append("MIP found nothing in time: myopic answer")
        return x_start, None
    x = model.units()
    bound = model.mip_bound()
    bound_or_none = bound if math.isfinite(bound) else None  # no bound before the root LP
    if prob.violations(x) or prob.evaluate(x).total > prob.evaluate(x_start).total:
        return x_start, bound_or_none
    return x, bound_or_none


def _lp_duals(
    prob: Problem, params: AllocationParams, seconds: float
) -> tuple[Duals | None, str | None]:
    """Duals of the compact LP relaxation (shadow prices outside the batch path), and why
    there are none when neither the time limit nor a cancel stopped the LP (else None)."""
    model = AllocationModel(
        prob, np.arange(prob.num_pairs), integer=False, threads=params.threads, seed=params.seed
    )
    status = model.run(seconds)
    if status == "Optimal":
        return model.duals(), None
    code = model.h.getModelStatus()
    if code in FAILED:
        return None, f"the shadow-price LP failed ({status})"
    if code in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
        return None, None  # the caller says which: the time limit or a cancelled solve
    return None, f"the shadow-price LP ended without duals ({status})"


def _assignments(prob: Problem, x: I64) -> list[Assignment]:
    """The shipped arcs as assignments, by line and node.

    Built without re-validation (:func:`~solvers.allocation.result.construct_all`, as
    ``model_construct`` builds them): the ids come from the validated request and every
    quantity is a positive integer.
    """
    used = np.nonzero(x > 0)[0]
    used = used[np.lexsort((prob.arc_node[used], prob.arc_line[used]))]
    orders = prob.pair_order[prob.arc_pair[used]].tolist()
    skus = prob.arc_sku[used].tolist()
    nodes = prob.arc_node[used].tolist()
    qty = x[used].tolist()
    order_ids, sku_ids, node_ids = prob.order_ids, prob.sku_ids, prob.node_ids
    return construct_all(
        Assignment,
        (
            {"order_id": order_ids[o], "sku": sku_ids[s], "node_id": node_ids[n], "quantity": q}
            for o, s, n, q in zip(orders, skus, nodes, qty, strict=True)
        ),
    )


def cost_breakdown(ev: Evaluation) -> CostBreakdown:
    """The exact cost parts as currency units."""
    shipping = ev.fixed + ev.units + ev.distance
    return CostBreakdown(
        total=from_micro(ev.total),
        shipping=from_micro(shipping),
        shipping_fixed=from_micro(ev.fixed),
        shipping_units=from_micro(ev.units),
        shipping_distance=from_micro(ev.distance),
        handling=from_micro(ev.handling),
        split=from_micro(ev.split),
        lateness=from_micro(ev.late),
        unfilled=from_micro(ev.unfilled),
        total_micros=ev.total,
    )


def kpis(prob: Problem, ev: Evaluation) -> Kpis:
    """Service figures of an evaluated allocation."""
    ships = ev.shipments_per_order
    shipped_orders = ships > 0
    short = np.bincount(prob.line_order, weights=ev.unfilled_per_line, minlength=prob.num_orders)
    # late = arriving after the promise, whatever lateness costs (free lateness, or a price
    # that rounds to 0 micro-units, left late parcels uncounted and a late VIP order on time)
    promise = prob.order_promise_s[prob.pair_order]
    arrival = prob.arrival_s[prob.pair_node, prob.pair_order]
    late_pair = ev.used_pairs & (promise >= 0) & (arrival > promise)
    late_orders = np.bincount(prob.pair_order[late_pair], minlength=prob.num_orders) > 0
    vip = prob.order_vip
    n_vip = int(vip.sum())
    on_time = vip & (short == 0) & ~late_orders
    return Kpis(
        num_orders=prob.num_orders,
        num_shipments=int(ships.sum()),
        shipments_per_order=float(ships[shipped_orders].mean()) if shipped_orders.any() else 0.0,
        split_rate=float(np.mean(ships >= 2)) if prob.num_orders else 0.0,
        units_ordered=int(prob.line_qty.sum()),
        units_unfilled=int(ev.unfilled_per_line.sum()),
        late_shipments=int(late_pair.sum()),
        vip_orders=n_vip,
        vip_on_time_share=float(on_time.sum() / n_vip) if n_vip else None,
    )


def shadow_prices(prob: Problem, duals: Duals, x: I64) -> list[ShadowPrice]:
    """Non-zero LP shadow prices of stock and capacity, most valuable first."""
    out: list[ShadowPrice] = []
    # a dual that rounds to 0.000000 currency per unit is no price (LP noise, or a blend
    # of multipliers with one): listed, it would name a row that is not scarce
    tol = 0.5 / MICRO
    priced = (duals.stock, duals.cap_units, duals.cap_orders, duals.vip_units, duals.vip_orders)
    if not any(bool((dual < -tol).any()) for dual in priced):
        return out  # every dual zero (as where no shared row can bind): nothing to report
    used_stock = np.zeros(prob.avail.shape, dtype=np.int64)
    np.add.at(used_stock, (prob.arc_node, prob.arc_sku), x)
    units_n = np.bincount(prob.arc_node, weights=x, minlength=prob.num_nodes).astype(np.int64)
    pairs_used = np.bincount(prob.arc_pair, weights=x, minlength=prob.num_pairs) > 0
    parcels_n = np.bincount(prob.pair_node[pairs_used], minlength=prob.num_nodes)
    vip_arc = prob.order_vip[prob.pair_order[prob.arc_pair]]
    vip_units_n = np.bincount(
        prob.arc_node[vip_arc], weights=x[vip_arc], minlength=prob.num_nodes
    ).astype(np.int64)
    vip_parcels_n = np.bincount(
        prob.pair_node[pairs_used & prob.order_vip[prob.pair_order]], minlength=prob.num_nodes
    )
    for n, s in zip(*np.nonzero(duals.stock < -tol), strict=True):
        out.append(
            ShadowPrice(
                node_id=prob.node_ids[int(n)],
                resource="stock",
                sku=prob.sku_ids[int(s)],
                value_per_unit=round(-float(duals.stock[n, s]), 6),
                available=int(prob.avail[n, s]),
                used=int(used_stock[n, s]),
            )
        )
    rows: list[tuple[ResourceName, F64, I64, I64]] = [
        ("capacity_units", duals.cap_units, prob.cap_units, units_n),
        ("capacity_orders", duals.cap_orders, prob.cap_orders, parcels_n),
        ("vip_units", duals.vip_units, prob.vip_cap_units, vip_units_n),
        ("vip_orders", duals.vip_orders, prob.vip_cap_orders, vip_parcels_n),
    ]
    for name, dual, cap, used in rows:
        for n in np.nonzero(dual < -tol)[0].tolist():
            out.append(
                ShadowPrice(
                    node_id=prob.node_ids[n],
                    resource=name,
                    value_per_unit=round(-float(dual[n]), 6),
                    available=int(cap[n]),
                    used=int(used[n]),
                )
            )
    out.sort(key=lambda sp: (-sp.value_per_unit, sp.node_id, sp.sku or ""))
    return out
