"""Batch allocation: column generation on the pattern master, then an integer master.

1. Warm start: the cheaper of the myopic policy (each order's optimum on what earlier orders
   left) and nearest-node, which also seeds the master with a feasible set of patterns.
2. Large batches (``WARMUP_ORDERS`` orders and more) first climb the Lagrangian dual by
   subgradient steps (pricing alone, no master LP) for ``WARMUP_SHARE`` of the budget: it
   gives a certified bound, good multipliers and the patterns priced near them, and the
   myopic policy on costs that charge those multipliers for stock (bid prices) may improve
   the incumbent. At 10,000 orders one pricing round takes ~0.3 s but a master LP re-solve
   several seconds, so the LP must start close to its optimum. Large batches with identical
   orders hold one master row per class of them and price one order per class (exact; the
   literature's 10,000 orders form 2,817 classes, which makes a re-solve 0.1-2 s instead of
   ~4 s); the integer phase gets every order its class's columns and starts by rounding the
   last LP solution.
3. Column generation with Wentges dual smoothing: price every order at a point between the
   best-bound multipliers and the master LP duals. Every pricing round yields a certified
   Lagrangian lower bound; the loop stops when the master LP meets the bound (LP optimal
   over all patterns), when the warm start is already within the target gap, or on time
   (after a warm-up it leaves ``WARMUP_RESERVE`` of the budget to the integer phase).
   Batches over ``POOL_MIP_ORDERS`` orders with capacity rows price on two cores: a helper
   process prices every other order the DP leaves open
   (:class:`~solvers.allocation.master.PricingHelper`).
4. Integer phase. Stock-only batches of ``LNS_MIN_ORDERS`` to ``WARMUP_ORDERS`` orders with
   a non-zero gap target: LP rounding, pool enrichment by reduced cost, neighbourhood
   search and the reduced-cost certificate (:mod:`solvers.allocation.lns`); when that
   search stalls, the large-neighbourhood search below takes half the time left, then it
   resumes. Unless ``params.threads`` is set, the whole pool MIP runs beside it in a helper
   process (:class:`~solvers.allocation.lns.PoolRace`; the solve then runs in a fresh
   thread with single-threaded HiGHS calls, see :func:`solve_batch`). Others: HiGHS MIP
   over the generated patterns, started from the best known allocation (pools too large
   for one MIP start from rounding the last LP answer: with capacity rows by
   :func:`~solvers.allocation.lns.lp_round`, without by diving and sub-MIPs); below
   ``LNS_MIN_ORDERS`` orders without capacity rows, the reduced-cost certificate of its
   answer (``SMALL_CERTIFICATE``); then the compact MIP over all pairs from the incumbent,
   whose dual bound is certified too; then
   large-neighbourhood search on the pool (batches above ``POOL_MIP_ORDERS`` orders with
   capacity rows: the neighbourhoods of :mod:`solvers.allocation.lns`, in slices between
   which the orders left short are re-filled, taking turns with compact MIPs around the
   orders served far dearer than in the master LP, :mod:`solvers.allocation.repair`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from solvers.allocation.compact import solve_compact
from solvers.allocation.dp import GaveUp
from solvers.allocation.eject import Ejector
from solvers.allocation.enumerate import enumerable, near_columns
from solvers.allocation.heuristics import nearest, polish, real_costs, sequential
from solvers.allocation.highs_model import (
    Duals,
    Rows,
    cancel_with,
    cancelled,
    count_failures_in,
    coupling_rows,
    failures_of_solve,
    highs_threads,
    reduced_costs,
    status_text,
    usable_cpus,
)
from solvers.allocation.lns import (
    Certificate,
    Neighbourhoods,
    PoolRace,
    SubMip,
    certify,
    lp_round,
)
from solvers.allocation.master import (
    HELPER_GRACE_S,
    BoundJob,
    LooseLp,
    Master,
    Pricer,
    Pricing,
    PricingHelper,
    order_classes,
)
from solvers.allocation.params import AllocationParams
from solvers.allocation.problem import F64, I64, MICRO, Problem
from solvers.allocation.progress import (
    COLUMN_GENERATION,
    INTEGER_PHASE,
    WARM_START,
    relative_gap,
    report_phase,
)
from solvers.allocation.reassign import reassign_lines
from solvers.allocation.repair import Repair

_EPS = 1e-7
#: column generation of stock-only batches below WARMUP_ORDERS re-solves the master LP with
#: primal simplex (the round's new columns leave the basis primal feasible): 300
#: literature orders, seeds 0 / 7 / 20 / 28, 0.76 / 2.93 / 2.03 / 3.84 s of master LPs
#: with dual simplex, 0.52 / 2.71 / 1.34 / 3.04 s with primal. Large masters keep dual
#: simplex (10,000 literature orders: primal's first master LP did not end in 31 s)
PRIMAL_SIMPLEX = True
#: Wentges smoothing: price at SMOOTHING x best-bound duals + (1 - SMOOTHING) x LP duals.
SMOOTHING = 0.5
#: the smoothing of batches over POOL_MIP_ORDERS with capacity rows. On the 10,000-order
#: city (60 s, one run per seed and value) the bound at the last LP duals after five rounds
#: was 118,182 / 117,378 / 118,225 at 0.3 against 118,084 / 117,380 / 118,084 at 0.5
#: (seeds 0-2; certified gaps 3.08 / 0.84 / 2.69 % against 3.29 / 0.89 / 2.88 %); at 0.15
#: the fifth round ended 3-7 s later (seeds 0 and 2: 3.17 and 3.00 %), at 0.7 the bound
#: fell to 116,808 (seed 0: 4.05 %)
CAPPED_SMOOTHING = 0.3
#: Seconds kept back from every HiGHS MIP call (HiGHS can overrun its interrupt callback,
#: e.g. inside sub-MIP heuristics), as a share of the time limit, at most one second
#: (:func:`mip_margin_s`).
MIP_MARGIN = 0.08
#: orders from which column generation starts from a Lagrangian warm-up (below, the master
#: LP converges quickly from zero multipliers; above, its re-solves dominate the budget)
WARMUP_ORDERS = 2_000
#: share of the time limit the warm-up may take
WARMUP_SHARE = 0.2
#: share of the time limit a small batch's pricing leaves to the integer phase
SMALL_PRICE_KEEP = 0.25
#: share of the time limit the myopic warm start (and a large batch's bid-price pass) leaves
#: to the rest of the solve: past it, it gives up and the nearest-node allocation is the warm
#: start
WARM_START_KEEP = 0.25
#: share of the time limit column generation leaves to the integer phase after a warm-up
WARMUP_RESERVE = 0.15
#: share of the time limit the column generation of a batch that is neither large nor
#: capped leaves to the integer phase. On an idle machine the 300-order literature batches'
#: column generation ends at 2.0-4.2 s of 10 (seed 28: ~6.6 s); on a loaded one seed 28's
#: ran 18 rounds to 9.6 s, the search got no time and the answer was the warm start
#: (9,260.19 against the LP's 8,177.05; with this reserve 8,259.45 and 8,286.12)
SMALL_RESERVE = 0.35
#: subgradient steps after which the warm-up's multipliers serve as bid prices
BID_PRICE_STEPS = 20
#: the warm-up adds the patterns of its last WARMUP_KEEP steps within WARMUP_NEAR x the
#: incumbent of its best bound to the pool
WARMUP_KEEP = 6
WARMUP_NEAR = 0.005
#: after a warm-up, subgradient steps towards the master LP value after each pricing round,
#: and how many of them give the pool their patterns
ROUND_STEPS = 3
ROUND_KEEP = 1
ROUND_NEAR = 0.002
#: smoothing after a warm-up, whose multipliers make a good stability centre
WARMUP_SMOOTHING = 0.8
#: integer phase below WARMUP_ORDERS: the pool grows by every order's patterns within
#: ENRICH_SLACK x (Lagrangian bound / orders) of its optimum, at most ENRICH_PER_ORDER each
ENRICH_SLACK = 0.04
ENRICH_PER_ORDER = 64
#: below this many orders the pattern and compact MIPs prove optimality in moments, while
#: the search below, unable to certify multi-unit lines, would run to the time limit
LNS_MIN_ORDERS = 100
#: below LNS_MIN_ORDERS (no capacity rows, every line a single unit), the pool MIP's answer
#: outside the gap target gets the reduced-cost certificate (:func:`lns.certify`) before
#: the compact MIP, which on 50-99 literature orders often ran to the time limit at gaps of
#: 0.1-0.6 % (benchmarks/allocation_small.py measures both; False = the compact MIP only)
SMALL_CERTIFICATE = True
#: ... when its threshold is at most this many enrichment slacks, the patterns below it
#: number at most SMALL_CERT_PATTERNS in all, within SMALL_CERT_SHARE of the time left
SMALL_CERT_MAX_SLACK = 2.5
SMALL_CERT_PATTERNS = 20_000
SMALL_CERT_SHARE = 0.5
#: ... and from SMALL_CERT_WIDE_ORDERS orders with a threshold of up to SMALL_CERT_WIDE_SLACK
#: slacks and SMALL_CERT_WIDE_PATTERNS patterns. Literature seeds 1-30, 10 s, one thread,
#: one run each (session 59): certified 24 / 21 / 18 of 30 at 50 / 70 / 90 orders against
#: 21 / 16 / 16 with the narrow limits, no seed slower by more than 0.5 s or no longer
#: certified, answers cheaper on 3 / 6 / 4 seeds and dearer on 2 / 2 / 3 (by 0.15-1.57); at
#: 30 orders (all certified either way) two seeds took 6.1-6.8 s instead of 1.4-2.1 s
SMALL_CERT_WIDE_ORDERS = 50
SMALL_CERT_WIDE_SLACK = 30.0
SMALL_CERT_WIDE_PATTERNS = 100_000
#: time kept for the reduced-cost certificate: this share of the phase, at least CERT_MIN_S
CERT_SHARE = 0.3
CERT_MIN_S = 1.0
#: the certificate is tried when its threshold is at most this many enrichment slacks
#: (beyond, the patterns below it number tens of thousands)
CERT_MAX_SLACK = 2.5
#: share of the time left that a stalled stock-only search hands to :func:`_lns`
HANDOVER = 0.5
#: a stalled stock-only search first tries the certificate with this share of the time
#: left (a stall is a local optimum of the pool: the binding-row search and larger
#: neighbourhoods rarely improve it, while the certificate either proves it or finds
#: the cheaper allocation below its threshold)
CERT_FIRST_SHARE = 0.6
#: stock-only search: the whole pool MIP runs in a helper process beside it (unless the
#: caller sets ``params.threads``). Off: the search on two threads (PARALLEL_SEARCH) did
#: better in two rounds of paired 10 s runs of the 30 literature seeds (2026-12-02, a slow
#: machine, where the MIP rarely got past its root in time): cheaper on 18 and 21 seeds,
#: dearer on 8 and 6, mean cost -0.034 % and -0.015 %, as many certified (19 and 22)
RACE = False

#: re-assign every order's lines over the parcels it ships by a min-cost flow
#: (:mod:`solvers.allocation.reassign`) on the final answer: chains through any number of
#: orders, which the pool's neighbourhood MIPs miss (final 10 s answers of literature
#: seeds 7 / 20 / 28: 0.65 / 0.15 / 0.71 cheaper, 3-5 ms each)
REASSIGN = True
#: the final re-assignment runs when this much time per order is left (10,000-order city:
#: ~80 ms of CPU)
REASSIGN_S_PER_ORDER = 2e-5
#: stock-only search without a race: neighbourhood MIPs on a thread per core (at most
#: SEARCH_WORKERS) when the caller leaves ``params.threads`` unset, neighbourhoods of up to
#: SMALL_PARALLEL_SHARE of the orders in parallel. The answers then depend on timing, as
#: they did with the race; a thread count makes the search reproducible
PARALLEL_SEARCH = True
SMALL_PARALLEL_SHARE = 1.0
#: the pool MIP's process may run until this long before the batch's deadline
RACE_MARGIN_S = 0.3
#: seconds a cancelled racing solve's thread gets to wind down
RACE_CANCEL_S = 2.0
#: a class master hands every order the columns its LP solution uses and up to this many
#: more of its class's columns (least reduced cost first) for the integer phase, fewer in
#: large batches (about EXPAND_COLUMNS in all, at least EXPAND_MIN per order)
EXPAND_PER_CLASS = 8
EXPAND_COLUMNS = 100_000
EXPAND_MIN = 2
#: the per-order master of a class master (:meth:`Master.expand`) takes about this long per
#: order (0.10-0.16 s at 2,000 literature orders on an idle machine): it is built only when
#: the integer phase it serves has more than INTEGER_MIN_S left after it before the end of
#: the HiGHS calls (at a 1.8 s limit it was built in the last 0.1 s and the answer came
#: up to 0.07 s late, every step of the integer phase skipped for want of time)
EXPAND_S_PER_ORDER = 1e-4
#: no step of the integer phase starts with this little time left before the end of the
#: HiGHS calls
INTEGER_MIN_S = 0.1
#: the pass of the LP rounding that starts a large batch's integer phase
#: (:func:`lns.lp_round`: each order its heaviest LP pattern that fits) takes about this
#: long per order, twice the shared machine's (0.08-0.13 s at 2,000 literature orders; its
#: re-optimising of every order after it, 0.33 s, stops at the end of the HiGHS calls).
#: Column generation keeps it back for the integer phase, with the HiGHS margin, the
#: per-order master (EXPAND_S_PER_ORDER) and a last pricing (:func:`integer_floor_s`): it
#: kept only WARMUP_RESERVE (0.05 when the warm-up raised no bound) of the limit, and at
#: 2,000 literature orders and 5-10 s its rounds ran into the HiGHS margin, no integer
#: phase ran and the answer was the warm start (8-11 % gaps). With 2.5e-4 (the pass and
#: the re-optimising) the second master LP of seed 2 at 5 s was cut off in 3 runs of 3
#: (answers 45,691-45,975 against 44,842 when it ends)
ROUND_S_PER_ORDER = 1e-4
#: up to this many orders the integer phase starts with the MIP over the whole pattern pool
#: and then the compact MIP; above, HiGHS finds little in either within a minute (measured
#: on the omnichannel city, 1,000 orders), and LP diving plus chunked sub-MIPs start it
POOL_MIP_ORDERS = 500
#: a large batch with capacity rows starts its integer phase from :func:`lns.lp_round` (each
#: order its heaviest LP pattern that fits, else its best one on what is left, then one
#: re-optimisation of every order), with its polish given this share of the time left.
#: Before, the LP dive of :func:`_lp_guided` (its share 0.25, then 0.6): at 10,000 city
#: orders each dive step re-solved the master LP in 0.4-1.7 s and the dive stopped with
#: hundreds of orders open, which shipped nothing until re-filled one by one. Measured on
#: the city (60 s, certified gap; lp_round / dive at 0.6): 1,000 orders 2.38, 2.49 / 2.62,
#: 2.75 %; 3,000 orders 5.07, 4.82 / 4.97, 5.39 %; 10,000 orders 7.18, 6.84 / 7.58, 9.56 %
ROUND_SHARE = 0.5
#: that rounding re-optimises every order once after it (``lns.lp_round``'s ``repass``;
#: batches without capacity rows, e.g. with order classes, keep it). Off: the orders none
#: of whose LP patterns fit take the exact per-order search instead of the relaxed one,
#: and no pass follows. On the 10,000-order city (seed 1, a slow
#: machine, the bound job on the other core) the rounding took 1.8 s for 122,827 where
#: the relaxed fall-back and the pass took 11.9 s for 124,058; after the polish and the
#: ejection moves 119,557 against 119,519, ten seconds earlier
ROUND_REPASS = False
#: an interior point master LP re-solve is not started when the last one took more than
#: this share of the time it would be given (it would be cut off and its time lost)
LP_FIT_SHARE = 0.8
#: batches above POOL_MIP_ORDERS with capacity rows: column generation stops once the LP
#: value is within CG_TAIL x the gap target of the bound, and leaves CAPPED_RESERVE of the
#: time limit to the integer phase
CG_TAIL = 0.25
CAPPED_RESERVE = 0.3
#: a master LP re-solve slower than this (seconds) switches column generation to the
#: interior point method (which batches with capacity rows above POOL_MIP_ORDERS use from
#: the start: on the 10,000-order city the second dual simplex re-solve ran 23.6 s)
IPM_AFTER_S = 1.0
#: an interior point re-solve predicted (the last one's time x LP_GROWTH) to take over
#: INSURE_SHARE of its limit gets a loose solve of the same LP beside it on the second
#: core (master.LooseLp): when the re-solve is cut off, the bound comes from the loose
#: solve's duals instead of the previous LP's (10,000-order city, seed 4: a fifth master
#: LP of 12.7-15 s was cut off in some runs, leaving the bound at 112,889; the loose solve
#: took 7.9 s and its duals gave 117,895, the tight LP's 118,116)
LP_GROWTH = 1.5
#: the same for the second re-solve: the first round's pricing grows the warm start's pool
#: most (city, interior point: 10,000 orders 0.35 -> 2.0 s, 30,000 orders 3.2 -> 16.9 s,
#: 50,000 orders 4.7 s -> cut off after 21 s); a second re-solve predicted to take longer
#: than it can be given is not started
LP_GROWTH_FIRST = 6.0
#: ... unless part of the first round's new columns fits: the second LP then gets only the
#: share of them of least reduced cost at the first LP's duals that is predicted to end
#: within PARTIAL_FIT of its room (the others wait at zero, their upper bound 0, and come
#: back after it), when that share is at least PARTIAL_MIN_SHARE. On a dumped second
#: master LP of the 50,000-order city (37,853 new columns over 136,680; CPU seconds, one
#: thread, the machine busy) the first LP took 5.0 s and the second with 3 / 10 / 30 / 50 /
#: 100 % of the new columns 10.8 / 13.2 / 15.8 / 23.9 / 26.6 s for an LP value of 676,259 /
#: 656,425 / 632,759 / 622,284 / 616,251 (the first: 692,083), hence the prediction
#: ``1 + (LP_GROWTH_FIRST - 1) x sqrt(share)`` times the first LP's time
#: (a share of 6.9 % there, forced by a PARTIAL_FIT of 0.4 in a 60 s batch: answer 645,556
#: against 667,894-678,893 with one LP and 622,028 with the whole second LP)
PARTIAL_FIT = 0.8
PARTIAL_MIN_SHARE = 0.03
INSURE_SHARE = 0.5
INSURED_RESERVE = 0.2
#: after column generation stops unconverged (capped batches, two cores), the pricing
#: helper solves the master LP as it then is (the last round's columns included) loosely
#: and prices every order at its multipliers, while the integer phase searches on one
#: thread (master.loose_bound); only when the time left exceeds BOUND_JOB_ROOM x the last
#: LP's time plus the longest pricing round, and it ends BOUND_JOB_MARGIN_S before the
#: integer phase's HiGHS margin
BOUND_JOB_ROOM = 1.0
BOUND_JOB_MARGIN_S = 0.2
#: share of that time the batch waits for a helper still taking the problem (small batches)
BOUND_JOB_WAIT_SHARE = 0.2
#: column generation that stops unconverged prices once more at the last master LP's duals
#: (the rounds price at a blend with the best-bound duals, and the last one may be cut
#: short by the integer phase's reserve), within this share of the time left and twice the
#: longest pricing round: at 10,000 city orders the bound at the fifth round's LP duals was
#: 118,084 against 117,329 at the blend. Its patterns join the pool (two pairs of runs per
#: seed, 60 s: seed 0 122,629 and 122,514 against 122,879 and 122,478; seed 1 118,837 and
#: 118,799 against 119,024 and 119,059)
LAST_PRICE_SHARE = 0.15
#: neither that pricing nor the bound job (BOUND_JOB_ROOM) follows fewer master LP rounds
#: than this: the duals of the first LPs give no useful bound
EARLY_ROUNDS = 3
#: share of the time left that re-optimising the orders left short, one at a time, may take
POLISH_SHARE = 0.3
#: the last polish pass ends this long per order before the deadline (at most the HiGHS
#: margin, MIP_MARGIN): the answer is assembled after it (its assignments, the unfilled
#: lines' reasons; ``solve.RESULT_S_PER_ORDER``, 60 ms at 2,000 orders). Until session 73
#: it could run min(0.2 s, 2.5 % of the limit) past the deadline (POLISH_FLOOR_S and
#: POLISH_FLOOR_SHARE), so an integer phase that overran its HiGHS margin answered late
POLISH_TAIL_S_PER_ORDER = 3e-5
#: the closing neighbourhood search runs in slices of LNS_SLICE_SHARE x the time limit (at
#: least LNS_SLICE_MIN_S seconds), each followed by a polish of the orders left short
LNS_SLICE_SHARE = 0.1
LNS_SLICE_MIN_S = 1.0
#: capped batches' search slices take turns with repairs of the orders served far dearer
#: than in the master LP (:mod:`solvers.allocation.repair`), which get this share of the
#: time (city 10,000 orders, seed 0, 60 s, one run each, repairs after the search: at 0.4
#: / 0.5 / 0.6 / 0.8 2.61 and 2.64 / 2.72 and 2.89 / 2.57 / 2.86 % certified gap; in turns,
#: which the 1,000-order city needs, 2.62 %)
REPAIR_SHARE = 0.5
#: capped batches: ejection moves (:mod:`solvers.allocation.eject`) right after the LP
#: rounding for at most this share of the time limit, then after each repair turn for at
#: most EJECT_SHARE x that turn's time; a pass ends sooner when no order is left to try
#: (city 10,000 orders, seeds 0-2, 60 s, one run each, with / without: answers 121,726 /
#: 122,453, 118,507 / 119,068, 120,809 / 121,861; at 1,000 and 3,000 orders, where the
#: search has the time, within the runs' spread)
EJECT_FIRST_SHARE = 0.05
EJECT_SHARE = 1.0
#: ... and a last pass in this share of the time limit before the end (the search gets the
#: rest if the pass ends sooner): the turns often end in a search slice, after which moves
#: are left (city 10,000 orders, 60 s, one run each, paired with / without: seeds 0-3
#: answers 121,173 / 121,515, 118,235 / 118,406, 121,117 / 120,973, 122,740 / 122,945, and
#: seed 0 again 121,550 / 121,671; that last pass gained 35-410)
EJECT_LAST_SHARE = 0.03
#: capped batches price on two cores (master.PricingHelper; with two search threads only):
#: seed 4 of the 10,000-order city priced its rounds in 2.9 and 4.1 s instead of 5.0 and
#: 8.1 s, its later rounds exactly, and its bound rose from 117,185 to 118,116
PRICING_HELPER = True
#: threads of the capped batches' neighbourhood search (see :func:`search_workers`)
SEARCH_WORKERS = 2
#: the LP-guided integer phase re-optimises the fractional orders this many at a time
LP_GUIDED_CHUNK = 150
#: share of the fractional orders each diving round fixes
DIVE_SHARE = 0.25
log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """Best allocation found, its certified bound and what it took."""

    x: I64
    cost: int  # micro
    #: currency; None when the solve was cancelled before its first pricing round ended
    bound: float | None
    lp_value: float | None
    duals: Duals | None
    proven: bool
    #: how far the Lagrangian value at ``duals`` may lie below the pattern LP's optimum
    #: (currency, >= 0): the least upper bound known on that LP (the incumbent's cost, every
    #: master LP's optimum) less the certified Lagrangian value at ``duals``; 0 = optimal duals
    duals_gap: float = 0.0
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


def partial_share(room_s: float, lp_s: float, growth: float) -> float:
    """Share of the first round's new columns a second master LP can take in ``room_s``.

    The inverse of :func:`partial_growth` at ``PARTIAL_FIT x room_s / lp_s``, within [0, 1].
    """
    if lp_s <= 0.0 or growth <= 1.0:
        return 1.0
    root = (PARTIAL_FIT * room_s / lp_s - 1.0) / (growth - 1.0)
    return float(min(max(root, 0.0), 1.0) ** 2)


def partial_growth(share: float, growth: float) -> float:
    """Predicted time of a second master LP over ``share`` of the new columns / the first's."""
    return 1.0 + (growth - 1.0) * float(np.sqrt(share))


def held_back(cols: list[int], reduced_costs: F64, share: float) -> I64:
    """The columns of ``cols`` outside the ``share`` of least reduced cost, ascending."""
    keep = int(np.ceil(share * len(cols)))
    order = np.argsort(reduced_costs, kind="stable")
    return np.sort(np.asarray(cols, dtype=np.int64)[order[keep:]])


def pool_minimum(prob: Problem, master: Master, duals: Duals) -> F64:
    """Per order, the least ``cost - pi use`` over the patterns in the pool (currency)."""
    out = np.full(prob.num_orders, np.inf)
    np.minimum.at(out, np.asarray(master.col_order, dtype=np.int64), master.pool_values(duals))
    return out


#: the note of a batch whose warm start (or the master's build after it) ended past the end
#: of its HiGHS calls: no column generation, no bound
NO_TIME_AFTER_WARM_START = (
    "no column generation: too little of the time limit left after the warm start (its "
    "answer, not optimised)"
)


#: the note of a batch whose first pricing round (its DP pass over every order) was still
#: running at the end of its HiGHS calls: no column generation, no bound
NO_TIME_FOR_FIRST_PRICING = (
    "no column generation: the first pricing round was stopped unfinished, too near the time "
    "limit (the warm start's answer, not optimised)"
)


def _unbounded(x: I64, cost: int, notes: list[str]) -> BatchOutcome:
    """The answer of a solve cancelled (or out of time) before its first pricing round ended:
    the warm start ``x`` (``cost`` micro), no bound and no multipliers."""
    return BatchOutcome(
        x=x,
        cost=cost,
        bound=None,
        lp_value=None,
        duals=None,
        proven=False,
        warm_start_cost=cost,
        notes=notes,
    )


def _blend(a: Duals, b: Duals, alpha: float) -> Duals:
    """``alpha a + (1 - alpha) b``."""
    return Duals(
        **{
            name: alpha * getattr(a, name) + (1.0 - alpha) * getattr(b, name)
            for name in Duals.__dataclass_fields__
        }
    )


def _stopper(stop_at: float | None) -> Callable[[], bool]:
    """True once this thread's solve is cancelled or ``time.perf_counter()`` passes ``stop_at``."""
    if stop_at is None:
        return cancelled
    return lambda: cancelled() or time.perf_counter() > stop_at


def mip_margin_s(limit_s: float) -> float:
    """Seconds the HiGHS calls of a solve with a ``limit_s`` limit end before its deadline."""
    return min(1.0, MIP_MARGIN * limit_s)


def integer_floor_s(num_orders: int, limit_s: float, classes: bool) -> float:
    """Seconds a large batch's integer phase needs after column generation at the least.

    The HiGHS margin (MIP_MARGIN), the per-order master of a class master
    (EXPAND_S_PER_ORDER), the LP rounding (ROUND_S_PER_ORDER) and INTEGER_MIN_S.
    """
    per_order_s = ROUND_S_PER_ORDER + (EXPAND_S_PER_ORDER if classes else 0.0)
    return mip_margin_s(limit_s) + per_order_s * num_orders + INTEGER_MIN_S


def _warm_start(
    prob: Problem,
    *,
    myopic: bool = True,
    deadline: float | None = None,
    stop_at: float | None = None,
) -> I64:
    """The cheaper of the myopic and the nearest-node allocations (neither always wins).

    Once this thread's solve is cancelled (:mod:`solvers.cancel`), or past ``stop_at``
    (``time.perf_counter()``), the myopic pass stops at its next order (or DP block) and
    the nearest-node allocation is the warm start. ``deadline``: no one-order MIP of the
    myopic pass starts after it.
    """
    tries = [nearest(prob)]
    if myopic and not cancelled():
        try:
            myopic_x = sequential(
                prob, real_costs(prob), exact=False, deadline=deadline, give_up=_stopper(stop_at)
            )
        except GaveUp:  # cancelled or out of time while it ran: it has no answer
            pass
        else:
            tries.insert(0, myopic_x)
    ok = [x for x in tries if not prob.violations(x)]
    if not ok:
        return np.zeros(prob.num_arcs, dtype=np.int64)  # shipping nothing is always allowed
    if len(ok) == 1:  # nothing to compare (a large batch's, a cancelled one's)
        return ok[0]
    return min(ok, key=lambda x: prob.evaluate(x).total)


class _Subgradient:
    """Subgradient ascent on the Lagrangian dual of the shared rows.

    Polyak steps towards a target (an estimate of the dual optimum from above), halved when
    the bound stalls; every step's value is a certified lower bound. The patterns of the
    last steps near the best bound are kept for the pool.
    """

    def __init__(self, master: Master, pricer: Pricer, keep: int) -> None:
        self.master, self.pricer = master, pricer
        self.rhs = master.rows.rhs
        self.pi = np.zeros(master.rows.num_coupling)
        self.best, self.best_pi = -np.inf, self.pi
        self.theta, self.stall, self.steps = 1.0, 0, 0
        self.near: deque[Pricing] = deque(maxlen=keep)
        self.step_s = 0.0  # how long the last step took

    def restart(self, duals: Duals, value: float, keep: int) -> None:
        """Continue from multipliers ``duals`` (bound ``value``), keeping ``keep`` steps."""
        self.pi = self.master.to_vector(duals)
        self.best, self.best_pi = value, self.pi
        self.theta, self.stall = 1.0, 0
        self.near = deque(maxlen=keep)

    def step(
        self,
        target: float,
        near_share: float,
        deadline: float | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> bool:
        """One step towards ``target``; False when the multipliers cannot move any more.

        Raises :class:`~solvers.allocation.dp.GaveUp` (the step not taken) once this
        thread's solve is cancelled while it prices, or ``stop`` says True during its DP
        pass (:meth:`Pricer.price`).
        """
        t0 = time.perf_counter()
        pricing = self.pricer.price(
            self.master.to_duals(self.pi), deadline=deadline, give_up=cancelled, stop=stop
        )
        value = self.master.total(pricing.value) + float(np.dot(self.pi, self.rhs))
        self.steps += 1
        if value > self.best:
            self.best, self.best_pi, self.stall = value, self.pi, 0
        else:
            self.stall += 1
            if self.stall >= 10:
                self.theta, self.stall = 0.5 * self.theta, 0
        if value >= self.best - near_share * abs(target):
            self.near.append(pricing)
        step = self.rhs - self.master.shared_usage(pricing.arcs, pricing.qty)
        step[(self.pi >= 0.0) & (step > 0.0)] = 0.0
        norm = float(np.dot(step, step))
        if norm == 0.0 or target <= value:
            return False  # the priced patterns fit and are complementary, or target reached
        self.pi = np.minimum(0.0, self.pi + self.theta * (target - value) / norm * step)
        self.step_s = time.perf_counter() - t0
        return self.theta > 1e-3

    def add_near(self) -> None:
        """Put the patterns of the kept steps into the master's pool."""
        orders = self.master.orders
        while self.near:
            pricing = self.near.popleft()
            self.master.add(orders, pricing.arcs, pricing.qty)

    @property
    def duals(self) -> Duals:
        """The multipliers of the best bound so far."""
        return self.master.to_duals(self.best_pi)


def _priced_costs(prob: Problem, duals: Duals) -> tuple[F64, F64, float]:
    """Per-arc and per-pair costs with the shared rows priced at ``duals``, and the split."""
    c_arc, c_pair = reduced_costs(prob, duals)
    return c_arc, c_pair, prob.split / MICRO


def solve_batch(
    prob: Problem, params: AllocationParams, *, start: float, x_start: I64 | None = None
) -> BatchOutcome:
    """Best allocation of every order jointly, with a certified lower bound.

    Stock-only batches that race a pool MIP in a helper process (:func:`_races`) are
    solved in a fresh thread whose HiGHS models all ask for one thread (HiGHS keeps one
    task scheduler per thread: the fresh thread gets its own, single-threaded, and the
    calling thread's, sized by its earlier solves, is left as it is): the two processes
    then have a core each. The calling thread waits; Ctrl-C (or any exception there)
    cancels the solve and ends the helper.
    """
    race = PoolRace.spawn() if _races(prob, params) else None
    if race is None:
        return _solve_batch(prob, params, start=start, x_start=x_start, race=None)
    single = params.model_copy(update={"threads": 1})
    cancel = threading.Event()
    failures = failures_of_solve()
    box: list[BatchOutcome | BaseException] = []

    def work() -> None:
        cancel_with(cancel)
        count_failures_in(failures)
        try:
            with highs_threads(1):  # helper models too (one-order MIPs of the warm start)
                box.append(_solve_batch(prob, single, start=start, x_start=x_start, race=race))
        except BaseException as exc:  # handed to the calling thread
            box.append(exc)
        finally:
            race.stop()

    worker = threading.Thread(target=work, name="allocation-batch", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.05)
            if cancelled():  # this thread's solve was cancelled: so is the worker's
                cancel.set()
    except BaseException:
        cancel.set()
        race.stop()
        worker.join(RACE_CANCEL_S)
        raise
    finally:
        race.stop()
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _has_caps(rows: Rows) -> bool:
    """Whether any capacity or VIP-share row couples the orders (besides stock)."""
    return any(
        np.any(getattr(rows, name) >= 0)
        for name in ("cap_units", "cap_orders", "vip_units", "vip_orders")
    )


def _races(prob: Problem, params: AllocationParams) -> bool:
    """Whether the stock-only search would run with a pool MIP beside it (:func:`_search`)."""
    return (
        RACE
        and params.threads is None  # an explicit thread count is the caller's to choose
        and params.mip_rel_gap > 0.0
        and LNS_MIN_ORDERS <= prob.num_orders < WARMUP_ORDERS
        and not _has_caps(coupling_rows(prob, kind="shared"))
    )


def _solve_batch(
    prob: Problem,
    params: AllocationParams,
    *,
    start: float,
    x_start: I64 | None,
    race: PoolRace | None,
) -> BatchOutcome:
    """:func:`solve_batch` with the helper process of the pool MIP, if any."""
    # capped batches price on two cores (their pricing's branch and bound is Python)
    helper = (
        PricingHelper.spawn(prob)
        if PRICING_HELPER
        and not cancelled()
        and prob.num_orders > POOL_MIP_ORDERS
        and _has_caps(coupling_rows(prob, kind="shared"))
        and search_workers(params) > 1
        else None
    )
    try:
        return _solve(prob, params, start=start, x_start=x_start, race=race, helper=helper)
    finally:
        if helper is not None:
            # a cancelled solve's helper may be pricing, bounding or still starting; so may
            # the helper of a solve at its time limit, and the answer does not wait for it
            # (waiting for one still importing put 0.2-0.8 s on 1.5 s batches of 1,000 city
            # orders on a slow machine)
            late = time.perf_counter() + HELPER_GRACE_S > start + params.time_limit_s
            helper.close(kill=cancelled() or late)


def _solve(
    prob: Problem,
    params: AllocationParams,
    *,
    start: float,
    x_start: I64 | None,
    race: PoolRace | None,
    helper: PricingHelper | None,
) -> BatchOutcome:
    """:func:`_solve_batch`, pricing with ``helper`` if given."""
    deadline = start + params.time_limit_s
    notes: list[str] = []
    large = prob.num_orders >= WARMUP_ORDERS
    # a large batch gets its myopic allocation after the warm-up, on priced costs
    warm_end = start + WARMUP_SHARE * params.time_limit_s
    # a small batch's pricing starts no one-order search or MIP later than this before the
    # deadline, which is the integer phase's time (orders over many capped nodes can take
    # seconds each)
    keep_s = SMALL_PRICE_KEEP * params.time_limit_s
    report_phase(WARM_START)
    # the myopic pass takes 0.05 s at 30 literature orders and 1.4 s at 1,000 city orders on a
    # slow machine, whatever the limit: it stops where the pricing must end, and the
    # nearest-node allocation is the warm start (batches of 0.1-1.5 s limits answered up to
    # 1.4 s late before)
    x_best = (
        _warm_start(
            prob,
            myopic=not large,
            deadline=warm_end,
            stop_at=deadline - WARM_START_KEEP * params.time_limit_s,
        )
        if x_start is None
        else x_start
    )
    best_cost = prob.evaluate(x_best).total
    warm = best_cost
    target = params.mip_rel_gap
    if cancelled():  # its caller stopped it (a service stopping): the warm start, no bound
        return _unbounded(x_best, best_cost, notes)
    # the end of the HiGHS calls (``hard`` below): a warm start that ended past it leaves no
    # time for the master's build and the first pricing round (0.17 s and a round ~60 ms past
    # its own deadline at 1,000 city orders on a slow machine), nor for the integer phase
    # they serve: the warm start is the answer
    setup_end = deadline - mip_margin_s(params.time_limit_s)
    if time.perf_counter() >= setup_end:
        notes.append(NO_TIME_AFTER_WARM_START)
        return _unbounded(x_best, best_cost, notes)

    # large batches: one master row and one pricing per class of identical orders (exact)
    classes = order_classes(prob) if large else None
    if classes is not None and classes.num_classes == prob.num_orders:
        classes = None
    master = Master(prob, threads=params.threads, seed=params.seed, classes=classes)
    # dual simplex re-solves large masters fastest, primal small stock-only ones (see
    # PRIMAL_SIMPLEX)
    primal = PRIMAL_SIMPLEX and not large and not _has_caps(master.rows)
    master.h.setOptionValue("simplex_strategy", 4 if primal else 1)
    pricer = Pricer(prob, threads=params.threads, orders=master.orders)
    pricer.helper = helper
    empty = np.zeros(0, dtype=np.int64)
    n_c = master.orders.shape[0]
    master.add(master.orders, [empty] * n_c, [empty] * n_c)
    master.add_solution(x_best)
    if classes is not None:
        notes.append(f"{classes.num_classes} classes of identical orders in the master LP")
    zero = Duals.zeros(prob)
    if time.perf_counter() >= setup_end:  # the build ended past it: no pricing round either
        notes.append(NO_TIME_AFTER_WARM_START)
        return _unbounded(x_best, best_cost, notes)
    report_phase(COLUMN_GENERATION)
    t_price = time.perf_counter()
    # at scale an exact pricing round can take seconds: this one must end within the warm-up;
    # its DP pass over every order (0.07-0.12 s at 1,000-2,000 literature orders, more on a
    # slow machine) stops at the end of the HiGHS calls, as the set-up before it did, and
    # so does every later pass of column generation (rounds, subgradient steps)
    past_setup = _stopper(setup_end)
    try:
        first = pricer.price(
            zero,
            deadline=warm_end if large else deadline - keep_s,
            give_up=cancelled,
            stop=past_setup,
        )
    except GaveUp:  # cancelled, or past the HiGHS calls' end while it ran: no bound yet
        if not cancelled():
            notes.append(NO_TIME_FOR_FIRST_PRICING)
        return _unbounded(x_best, best_cost, notes)
    price_s = time.perf_counter() - t_price  # a pricing round takes about this long
    master.add(master.orders, first.arcs, first.qty)
    best_lb = master.total(first.value)
    # a bound already (every order's own optimum, the shared rows ignored): at 10,000
    # orders on a busy machine no LP round ended within 60 s, and the gap was unknown
    report_phase(COLUMN_GENERATION, relative_gap(best_cost / MICRO, best_lb))
    center = zero
    # multipliers for the integer phase where no master LP gets solved (the warm-up's)
    warm_duals: Duals | None = None
    # the shadow prices: the multipliers of the best Lagrangian value (a certified lower
    # bound on the pattern LP, see BatchOutcome.duals_gap), never a restricted master LP's
    # own duals, which need not be optimal for the LP over every pattern
    price_duals, price_lb = zero, best_lb
    lp_min = np.inf  # the least master LP optimum: an upper bound on the pattern LP

    def keep_prices(duals: Duals, value: float) -> None:
        """Keep ``duals`` as the shadow prices when their Lagrangian ``value`` is the best."""
        nonlocal price_duals, price_lb
        if value > price_lb:
            price_duals, price_lb = duals, value

    reserve = 0.05  # share of the time limit column generation leaves to the integer phase
    sub: _Subgradient | None = None
    # a large batch with capacity rows needs time for its integer phase (see POOL_MIP_ORDERS)
    capped = prob.num_orders > POOL_MIP_ORDERS and _has_caps(master.rows)
    smoothing = CAPPED_SMOOTHING if capped else SMOOTHING
    if large and not capped:
        # subgradient warm-up (with capacity rows its multipliers gave a weaker bound than
        # the master LP's rounds in the same time: 34,011 against 38,140 on the 3,000-order
        # city): good multipliers and patterns before the first master LP
        sub = _Subgradient(master, pricer, WARMUP_KEEP)
        sub.step_s = price_s
        ub = best_cost / MICRO
        # no step that would end past the warm-up's share (at 50,000 orders one takes seconds)
        while (
            master.rows.num_coupling
            and time.perf_counter() + sub.step_s < warm_end
            and not cancelled()
        ):
            try:
                climbing = sub.step(ub, WARMUP_NEAR, warm_end, past_setup)
            except GaveUp:  # cancelled (or past the end) while it priced: the steps so far stand
                break
            if not climbing or ub - sub.best <= target * max(abs(ub), 1e-9):
                break
        sub.add_near()
        keep_prices(sub.duals, sub.best)
        if sub.steps:
            warm_duals = sub.duals
        if sub.best > best_lb:
            best_lb, center = sub.best, sub.duals
            smoothing, reserve = WARMUP_SMOOTHING, WARMUP_RESERVE
        # the myopic policy on costs that charge the multipliers for stock (bid prices; the
        # plain myopic policy when too few steps were taken for the multipliers to settle)
        bid = sub.duals if sub.steps >= BID_PRICE_STEPS else zero
        try:
            priced = sequential(
                prob,
                _priced_costs(prob, bid),
                exact=False,
                give_up=_stopper(deadline - WARM_START_KEEP * params.time_limit_s),
            )
        except GaveUp:  # cancelled or out of time while it ran: the warm start stays
            priced = None
        if (
            priced is not None
            and not prob.violations(priced)
            and prob.evaluate(priced).total < best_cost
        ):
            x_best, best_cost = priced, prob.evaluate(priced).total
            master.add_solution(x_best)
        notes.append(f"Lagrangian warm-up: {sub.steps} subgradient steps")
        report_phase(COLUMN_GENERATION, relative_gap(best_cost / MICRO, best_lb))
        log.debug(
            "warm-up %d steps bound %.2f pool %d t %.1f",
            sub.steps,
            sub.best,
            len(master.pool),
            time.perf_counter() - start,
        )
    lp_value: float | None = None
    z_last: F64 | None = None
    # duals of the master LP that gave z_last, or of a loose solve of the cut-off one after it
    lp_duals: Duals | None = None
    alpha = smoothing
    rounds = 0
    t_lp = time.perf_counter()
    converged = False
    priced_at: Duals | None = None  # the multipliers of the last complete pricing round
    longest_price_s = price_s

    def gap_ok(lb: float) -> bool:
        ub = best_cost / MICRO
        return ub - lb <= target * max(abs(ub), 1e-9) + 1e-9

    stats = _IntStats()

    def outcome(lp_s: float, mip_s: float) -> BatchOutcome:
        """The best allocation so far, its certified bound and what it took."""
        return BatchOutcome(
            x=x_best,
            cost=best_cost,
            bound=min(best_lb, best_cost / MICRO),
            lp_value=lp_value if converged else None,
            duals=price_duals,
            proven=gap_ok(best_lb),
            duals_gap=max(0.0, min(best_cost / MICRO, lp_min) - price_lb),
            lp_rounds=rounds,
            warm_start_cost=warm,
            mip_nodes=stats.nodes,
            fixed_orders=stats.fixed,
            mip_columns=len(master.pool),
            lp_s=lp_s,
            mip_s=mip_s,
            notes=notes,
        )

    # large masters with capacity rows: interior point from the start (see IPM_AFTER_S)
    ipm = capped
    if ipm:
        master.h.setOptionValue("solver", "ipm")
    lp_s_last = 0.0  # the last master LP solve's time
    # a second core takes a loose solve of a master LP that may be cut off (LooseLp)
    insure = capped and search_workers(params) >= 2
    round_s = 0.0  # the last round's time
    t_round = time.perf_counter()
    # the last round's new columns, their reduced costs at its LP's duals, and whether
    # any improves on that LP
    new_cols: list[int] = []
    new_rc: F64 = np.zeros(0)
    improving = True
    held_growth = 1.0  # the next re-solve's growth beyond LP_GROWTH (columns held back)

    def limits(left: float) -> tuple[float, float]:
        """The time a round keeps back and a re-solve's limit, with ``left`` seconds left."""
        # a round is an LP re-solve plus a pricing: don't start one the reserve cannot fit
        share = max(reserve, CAPPED_RESERVE) if capped else reserve
        # once a large batch has an LP solution to round, at least the integer phase's first
        # steps (ROUND_S_PER_ORDER), and the last pricing where one may follow the next LP
        floor_s = 0.0
        if large and rounds:
            floor_s = integer_floor_s(prob.num_orders, params.time_limit_s, classes is not None)
            floor_s += 2.0 * longest_price_s if rounds + 1 >= EARLY_ROUNDS else 0.0
        if large or capped:
            keep = max(share * params.time_limit_s, floor_s) + price_s
        else:
            # a small batch's rounds fit its reserve unless the limit is tiny (0.2 s: 70 ms
            # of reserve, 18 ms rounds at 30 orders); then a round is kept back too
            keep = max(share, SMALL_RESERVE) * params.time_limit_s
            keep += round_s if round_s > keep else 0.0
        # the LP may run up to the integer phase's reserve (a cut-off re-solve is wasted)
        lp_limit = left * 0.5 if reserve < WARMUP_RESERVE else left - keep
        # ... never into a large batch's floor
        return keep, min(lp_limit, left - keep) if floor_s else lp_limit

    while not gap_ok(best_lb) and not cancelled():
        now = time.perf_counter()
        left = deadline - now
        round_s, t_round = now - t_round, now
        keep, lp_limit = limits(left)
        if left <= keep:
            notes.append("column generation stopped on the time limit")
            break
        if ipm and lp_s_last > LP_FIT_SHARE * lp_limit:
            # interior point re-solves grow with the pool (0.5, 2.9, 6.8, 11.6 s in the
            # 10,000-order city): one that cannot end in time is the integer phase's loss
            notes.append(f"column generation stopped: the last LP took {lp_s_last:.1f} s")
            break
        # the first round's pricing grows the warm start's pool most (5-6x the LP's time)
        predicted = lp_s_last * (LP_GROWTH_FIRST if rounds == 1 else LP_GROWTH) * held_growth
        held_growth = 1.0
        # the most a re-solve may be given: up to INSURED_RESERVE when insured (below)
        room = left - INSURED_RESERVE * params.time_limit_s if insure else lp_limit
        waiting: I64 = empty  # columns held at zero for this re-solve (PARTIAL_FIT)
        if ipm and rounds == 1 and predicted > room:
            part = partial_share(room, lp_s_last, LP_GROWTH_FIRST)
            if part < PARTIAL_MIN_SHARE or not improving:
                # it would be cut off: the integer phase gets its time instead (50,000 city
                # orders: a second LP of 4.7 s x 6 against 21 s of room ran 21 s for
                # nothing). Later re-solves are insured instead: a loose solve beside one
                # that is cut off gives the bound, where the first LP's duals give none
                notes.append(
                    f"column generation stopped: the next LP would take ~{predicted:.0f} s, "
                    f"{max(room, 0.0):.0f} s left for it"
                )
                break
            waiting = held_back(new_cols, new_rc, part)
            master.hold(waiting)
            predicted = lp_s_last * partial_growth(part, LP_GROWTH_FIRST)
            # the re-solve after it has those columns back: predicted from the whole round's
            held_growth = lp_s_last * LP_GROWTH_FIRST / predicted
            notes.append(
                f"second master LP over {len(new_cols) - len(waiting)} of the first round's "
                f"{len(new_cols)} new columns (those of least reduced cost: ~{predicted:.0f} s "
                f"predicted, {room:.0f} s left for it)"
            )
        t_solve = time.perf_counter()
        loose = None
        if ipm and insure and rounds >= 1 and predicted > INSURE_SHARE * lp_limit:
            # this re-solve may be cut off: a loose solve beside it keeps a bound from it,
            # and the re-solve may run into the integer phase's reserve (its solution is
            # the rounding's start)
            lp_limit = max(lp_limit, room)  # insured: room is up to the reserve
            loose = LooseLp(master, lp_limit)
        try:
            status = master.solve_lp(lp_limit)
            # read before held columns come back: a bound change clears HiGHS' solution
            solved = (
                (master.objective(), master.lp_values(), master.duals())
                if status == "Optimal"
                else None
            )
        except BaseException:
            if loose is not None:
                loose.cancel()
            raise
        finally:
            master.release(waiting)
        lp_s_last = time.perf_counter() - t_solve
        if loose is not None and (status == "Optimal" or cancelled()):
            loose.cancel()
        elif loose is not None:
            got = loose.duals(deadline - keep - time.perf_counter())
            log.debug("loose LP %s s duals %s", loose.seconds, got is not None)
            if got is not None:
                lp_duals = got
                notes.append(
                    f"master LP cut off after {lp_s_last:.1f} s: bound from a loose interior "
                    f"point solve beside it ({loose.seconds or 0.0:.1f} s)"
                )
        if not ipm and time.perf_counter() - t_solve > IPM_AFTER_S:
            # simplex re-solves of a large master with capacity rows grow to many seconds
            # (tens of thousands of iterations); the interior point method solves it afresh
            # in a fraction of that (measured on the omnichannel city, 3,000 orders)
            ipm = True
            master.h.setOptionValue("solver", "ipm")
        if solved is None:
            notes.append(f"master LP status {status}")
            break
        rounds += 1
        lp_value, z_last, (out, mu) = solved
        lp_min = min(lp_min, lp_value)
        lp_duals = out
        if lp_value - best_lb <= _EPS * max(1.0, abs(lp_value)):
            # the multipliers of the bound attain the LP value: optimal duals of the LP over
            # every pattern (this restricted LP's own duals need not be; see price_duals)
            converged = True
            break
        if capped and lp_value - best_lb <= CG_TAIL * target * max(1.0, abs(lp_value)):
            # the bound can gain at most this much more: the integer phase needs the time
            notes.append(f"column generation stopped within {lp_value - best_lb:.4f} of the LP")
            break
        if ipm and 2 <= rounds < EARLY_ROUNDS:
            # an early LP's duals give no bound worth having (EARLY_ROUNDS): their pricing
            # only serves the next LP, so none when that LP would not be started (30,000
            # city orders: a second-round pricing of 7.9 s, then no time for a third LP)
            after = deadline - time.perf_counter() - price_s
            keep_next, limit_next = limits(after)
            # (the next LP gets back the columns a partial one held: held_growth)
            if after <= keep_next or lp_s_last * held_growth > LP_FIT_SHARE * limit_next:
                notes.append(
                    f"column generation stopped: no time for LP {rounds + 1} after a pricing"
                )
                break
        sep = _blend(center, out, alpha) if alpha > 0 else out
        priced_at = sep
        t_price = time.perf_counter()
        try:
            pricing = pricer.price(
                sep,
                pool_minimum(prob, master, sep),
                deadline - keep if large else deadline - keep_s,
                give_up=cancelled,
                stop=past_setup,
            )
        except GaveUp:  # cancelled (or past the end) while it priced: the round gives nothing
            break
        price_s = time.perf_counter() - t_price
        longest_price_s = max(longest_price_s, price_s)
        if not pricing.exact:
            priced_at = None  # some orders only bounded: the bound may gain from another
        lb = master.total(pricing.value) + master.shared_rhs_term(sep)
        keep_prices(sep, lb)
        if lb > best_lb:
            best_lb, center = lb, sep
        if sub is not None and master.rows.num_coupling:
            # a few subgradient steps from the best multipliers towards the LP value (an
            # upper bound on the Lagrangian dual): cheap bound gains between LP re-solves
            sub.restart(center, best_lb, ROUND_KEEP)
            for _ in range(ROUND_STEPS):
                # a step prices every order (0.1 s at 2,000 literature orders): none that
                # would end past the round's deadline (three ran 0.09-0.36 s past a 1.8 s
                # limit's end of the HiGHS calls at 2,000 literature orders)
                if time.perf_counter() + sub.step_s > deadline - keep:
                    break
                try:
                    if not sub.step(lp_value, ROUND_NEAR, deadline - keep, past_setup):
                        break
                except GaveUp:  # cancelled (or past the end) while it priced: the steps stand
                    break
            keep_prices(sub.duals, sub.best)
            if sub.best > best_lb:
                best_lb, center = sub.best, sub.duals
            sub.add_near()
        report_phase(COLUMN_GENERATION, relative_gap(best_cost / MICRO, best_lb))
        log.debug(
            "round %d lp %.2f lb %.2f best %.2f alpha %.2f t %.1f (LP %.1f s, pricing %.1f s)",
            rounds,
            lp_value,
            lb,
            best_lb,
            alpha,
            time.perf_counter() - start,
            lp_s_last,
            price_s,
        )
        before = len(master.pool)
        master.add(master.orders, pricing.arcs, pricing.qty)
        new_cols = list(range(before, len(master.pool)))
        if new_cols:
            vals = pattern_values(prob, master, new_cols, out)
            orders = np.array([master.pool.order[c] for c in new_cols], dtype=np.int64)
            new_rc = vals - mu[orders]  # reduced costs at the LP's duals
            improving = bool(np.any(new_rc < -_EPS))
        else:
            new_rc = np.zeros(0)
            improving = False
        if len(waiting):
            # the LP just solved lacked columns of the pool: it proves nothing converged
            improving = True
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
            alpha = smoothing
    left = deadline - time.perf_counter()
    last: Pricing | None = None  # a pricing at the last master LP's duals
    if (
        not converged
        and lp_duals is not None
        and priced_at is not lp_duals
        and not gap_ok(best_lb)
        and lp_value is not None
        # no more than the tail (see CG_TAIL) to gain: not worth a pricing round
        and lp_value - best_lb > CG_TAIL * target * max(1.0, abs(lp_value))
        and left > 0.0
        # the first LPs' duals are the warm start's (one pattern an order) or not far from
        # them: at 30,000 and 50,000 city orders the bound at the first or second LP's
        # duals was negative (-52,862 and -191,864) after 3-5 s of pricing
        and rounds >= EARLY_ROUNDS
        and not cancelled()
    ):
        t_price = time.perf_counter()
        try:
            last = pricer.price(
                lp_duals,
                pool_minimum(prob, master, lp_duals),
                t_price + min(LAST_PRICE_SHARE * left, 2.0 * longest_price_s + 0.05),
                give_up=cancelled,
                stop=past_setup,
            )
        except GaveUp:  # cancelled (or past the end) while it priced: no bound from it
            last = None
    if last is not None and lp_duals is not None:
        lb = master.total(last.value) + master.shared_rhs_term(lp_duals)
        log.debug("bound at the last LP duals %.2f (best %.2f)", lb, best_lb)
        keep_prices(lp_duals, lb)
        if lb > best_lb:
            notes.append(
                f"bound {lb:.2f} from the last master LP's duals (was {best_lb:.2f}, "
                f"{time.perf_counter() - t_price:.1f} s)"
            )
            best_lb = lb
        if z_last is not None:
            # its patterns are the ones the last LP solution prices best: the integer
            # phase's pool gets them (at 0 in that solution)
            known = len(master.pool)
            master.add(master.orders, last.arcs, last.qty)
            z_last = np.concatenate([z_last, np.zeros(len(master.pool) - known)])

    def tell_gap() -> None:
        """The integer phase's certified gap, as the incumbent or the bound improves."""
        report_phase(INTEGER_PHASE, relative_gap(best_cost / MICRO, best_lb))

    tell_gap()
    # a loose solve of the master LP as it now is (the last round's columns included) and a
    # pricing at its multipliers, in the pricing helper on the second core while the
    # integer phase searches on one thread: a bound for the certified gap (BOUND_JOB_ROOM)
    bound_job = False
    margin_s = mip_margin_s(params.time_limit_s)
    if (
        helper is not None  # capped, on two cores (see _solve_batch)
        and not converged
        and lp_value is not None
        and not gap_ok(best_lb)
        and lp_value - best_lb > CG_TAIL * target * max(1.0, abs(lp_value))
        # nor after the early LPs (at 50,000 city orders the loose second LP's bound was
        # negative, and the search had one thread meanwhile)
        and rounds >= EARLY_ROUNDS
        and not cancelled()
    ):
        room = deadline - margin_s - BOUND_JOB_MARGIN_S - time.perf_counter()
        if room > BOUND_JOB_ROOM * lp_s_last + longest_price_s and helper.wait_ready(
            BOUND_JOB_WAIT_SHARE * room
        ):
            bound_job = helper.submit_bound(BoundJob.of(master, room))
            log.debug("bound job %s (%.1f s)", "submitted" if bound_job else "refused", room)
    if cancelled():  # its caller stopped it (a service stopping): the answer so far
        return outcome(time.perf_counter() - t_lp, 0.0)
    cg_master = master  # the multipliers of the bound job are over its shared rows
    if ipm:
        master.h.setOptionValue("solver", "choose")
    if primal:
        master.h.setOptionValue("simplex_strategy", 1)
    # HiGHS calls end this early (they may overrun); polishing uses the full budget
    hard = deadline - margin_s
    # False: no step of the integer phase is started (no time for it)
    integer = True
    if classes is not None:
        # the integer phase works on orders: every order gets its class's columns, unless
        # building them leaves it no time (then the allocation so far is polished)
        left = hard - time.perf_counter()
        expand_s = EXPAND_S_PER_ORDER * prob.num_orders
        if left - expand_s <= INTEGER_MIN_S:
            integer = False
            notes.append(
                f"no integer phase: {max(left, 0.0):.2g} s left before the end of the HiGHS "
                f"calls, its per-order master takes ~{expand_s:.2g} s at {prob.num_orders} "
                "orders"
            )
        else:
            per_class = max(EXPAND_MIN, min(EXPAND_PER_CLASS, EXPAND_COLUMNS // prob.num_orders))
            master, z_last = master.expand(z_last, lp_duals or warm_duals, per_class)
            master.h.setOptionValue("simplex_strategy", 1)
    lp_s = time.perf_counter() - t_lp

    # integer phase, while the certified gap is above the target:
    # (1) the pattern MIP over the whole pool when it is small enough (else over the orders
    #     the master LP leaves fractional), from the best allocation so far;
    # (2) the compact MIP over all pairs from the incumbent: its dual bound is certified;
    # (3) large-neighbourhood search on the pattern pool with the time left.
    t_mip = time.perf_counter()

    def poll_bound(wait_s: float = 0.0) -> None:
        """Take the bound job's answer if it is in (within ``wait_s``)."""
        nonlocal bound_job, best_lb
        if not bound_job or helper is None:
            return
        got = helper.bound(wait_s)
        if got is None and helper.bounding:
            return  # still at work
        bound_job = False
        if sliced is not None:
            sliced.workers = workers()
        if got is None:
            return
        lb, pi = got
        log.debug("bound job %.2f (best %.2f) t %.1f", lb, best_lb, time.perf_counter() - start)
        keep_prices(cg_master.to_duals(pi), lb)
        if lb > best_lb:
            notes.append(
                f"bound {lb:.2f} from a loose solve of the last master LP beside the search "
                f"(was {best_lb:.2f})"
            )
            best_lb = lb
            tell_gap()

    def workers() -> int:
        """Threads for the search and repairs: one while the bound job has the other core."""
        return 1 if bound_job else search_workers(params)

    sliced: _SlicedSearch | None = None

    def improve(x: I64 | None) -> None:
        nonlocal x_best, best_cost
        if x is None or prob.violations(x):
            return
        cost = prob.evaluate(x).total
        if cost < best_cost:
            x_best, best_cost = x, cost
            tell_gap()

    def time_left() -> float:
        """Seconds left for the integer phase's steps (none when it has no time)."""
        return hard - time.perf_counter() if integer else 0.0

    def polish_short() -> None:
        """Re-fill the orders left short, one at a time, within a share of the time left."""
        if cancelled():
            return
        t_pol, before = time.perf_counter(), best_cost
        improve(polish(prob, x_best, deadline=t_pol + POLISH_SHARE * time_left()))
        log.debug(
            "polish %.4f -> %.4f took %.1f",
            before / MICRO,
            best_cost / MICRO,
            time.perf_counter() - t_pol,
        )

    def round_lp(until: float) -> None:
        """The LP rounding of the last master LP solution (:func:`lns.lp_round`)."""
        assert z_last is not None and lp_duals is not None
        t_round = time.perf_counter()
        repass = ROUND_REPASS or not capped  # measured on the capped city only
        try:
            improve(
                lp_round(
                    prob, master, z_last, lp_duals, deadline=until, repass=repass, give_up=cancelled
                )
            )
        except GaveUp:  # cancelled while it ran: no rounding
            return
        log.debug("lp_round %.4f took %.1f", best_cost / MICRO, time.perf_counter() - t_round)

    master.h.setOptionValue("mip_allow_restart", False)
    # stock-only coupling below WARMUP_ORDERS: LP rounding, neighbourhood search and the
    # reduced-cost certificate (module lns). With capacity or VIP-share rows the pattern
    # MIP and the compact MIP (whose cuts lift the bound there) do better (measured on
    # the omnichannel city)
    has_caps = _has_caps(master.rows)
    small_batch = (
        prob.num_orders >= LNS_MIN_ORDERS
        and params.mip_rel_gap > 0.0  # a proof of optimality is the MIPs' job
        and not large
        and not has_caps
        and z_last is not None
        and lp_duals is not None
    )
    searched_whole = False
    if small_batch and not gap_ok(best_lb) and time_left() > INTEGER_MIN_S and not cancelled():
        assert z_last is not None and lp_duals is not None
        # the pool MIP's process is killed at its end: it may run past the HiGHS margin
        until = deadline - RACE_MARGIN_S
        phase = _search(
            prob, master, params, x_best, z_last, lp_duals, best_lb, hard, stats, race, until
        )
        # the search's bound first: it heard its incumbents against that bound, and the same
        # incumbent heard here against the older one would sound like a larger gap
        raised, before = phase.bound > best_lb, best_cost
        best_lb = max(best_lb, phase.bound)
        improve(phase.x)
        if raised and best_cost == before:
            tell_gap()
        notes.extend(phase.notes)
        searched_whole = phase.whole
    if (
        classes is not None
        and not capped  # capped batches round below, with a share of the time left
        and z_last is not None
        and lp_duals is not None
        and not gap_ok(best_lb)
        and time_left() > INTEGER_MIN_S
        and not cancelled()
    ):
        round_lp(hard)
    if not small_batch and not gap_ok(best_lb) and time_left() > INTEGER_MIN_S and not cancelled():
        if (
            prob.num_orders <= POOL_MIP_ORDERS
            and len(master.pool) + prob.num_orders <= params.max_mip_pairs
        ):
            improve(_pool_mip(prob, master, x_best, params, time_left() * 0.55, best_lb, stats))
            if (
                SMALL_CERTIFICATE
                and not has_caps
                and params.mip_rel_gap > 0.0
                and lp_duals is not None
                and not gap_ok(best_lb)
                and time_left() > INTEGER_MIN_S
                and not cancelled()
            ):
                until = time.perf_counter() + SMALL_CERT_SHARE * time_left()
                proof = _small_certificate(prob, master, params, x_best, lp_duals, until)
                if proof is not None:
                    improve(proof.x)
                    if proof.bound > best_lb:
                        best_lb = proof.bound
                        tell_gap()
                    notes.append(
                        f"reduced-cost certificate: bound {proof.bound:.4f} "
                        f"({proof.columns} patterns)"
                    )
        else:
            if capped and z_last is not None and lp_duals is not None:
                now = time.perf_counter()
                round_lp(now + ROUND_SHARE * (hard - now))
            else:
                improve(_lp_guided(prob, master, x_best, params, hard, best_lb, stats, z_last))
            polish_short()
    # after the neighbourhood search only where it stalled with every order free (tiny
    # batches on that path): a 300-order compact MIP in the second left after a search
    # that gave up neither improves nor proves, and only delays the answer
    if (
        (not small_batch or searched_whole)
        and not gap_ok(best_lb)
        and time_left() > INTEGER_MIN_S
        and prob.num_orders <= POOL_MIP_ORDERS
        and prob.num_pairs <= params.max_mip_pairs
        and not cancelled()
    ):
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
            tell_gap()
        notes.append(comp.note())
        log.debug(
            "compact %s bound %.4f ub %.4f t %.1f",
            comp.status,
            comp.bound,
            best_cost / MICRO,
            time.perf_counter() - start,
        )
    if cancelled():  # its caller stopped it: no search (nor its set-up), the answer so far
        return outcome(lp_s, time.perf_counter() - t_mip)
    # the search works on the pool's patterns; between its slices, orders left short get
    # the partial fills the pool cannot express (and their patterns join the pool)
    # (only in large batches with capacity rows: elsewhere one search ends the solve, as
    # it was measured; slicing it cost 300-order city batches their certificates)
    slice_s = (
        max(LNS_SLICE_MIN_S, LNS_SLICE_SHARE * params.time_limit_s)
        if capped
        else params.time_limit_s
    )
    # (in batches of up to POOL_MIP_ORDERS the search after the MIPs is :func:`_lns`: on the
    # 300-order city the neighbourhoods of module lns did the same, 8 seeds cheaper and 7
    # dearer of 30)
    sliced = (
        _SlicedSearch(prob, master, lp_duals or warm_duals or zero, params)
        if capped and integer
        else None
    )
    if sliced is not None:
        sliced.workers = workers()
    # capped batches: search slices take turns with repairs of the orders served far
    # dearer than in the LP
    repair = (
        Repair.from_lp(prob, master, z_last, seed=params.seed)
        if capped and integer and z_last is not None and REPAIR_SHARE > 0
        else None
    )

    # ... and with ejection moves: room made on full nodes for the orders dearest against
    # the LP, by moving other orders' lines elsewhere
    ejector = Ejector(prob, repair.lp_cost) if repair is not None and EJECT_SHARE > 0 else None

    def eject_until(end: float) -> None:
        """Ejection moves for the orders dearest against the LP until ``end``."""
        assert ejector is not None
        t_ej, before = time.perf_counter(), best_cost
        improve(ejector.run(x_best, end))
        poll_bound()
        log.debug(
            "eject %.4f -> %.4f took %.1f (%d tries, %d improved)",
            before / MICRO,
            best_cost / MICRO,
            time.perf_counter() - t_ej,
            ejector.tries,
            ejector.wins,
        )

    def search(end: float) -> None:
        """The neighbourhood search in slices until ``end`` (or the gap target)."""
        while (
            integer
            and not gap_ok(best_lb)
            and end - time.perf_counter() > INTEGER_MIN_S
            and not cancelled()
        ):
            until = min(end, time.perf_counter() + slice_s)
            if sliced is not None:
                improve(sliced.run(x_best, until, best_lb))
            else:
                improve(_lns(prob, master, x_best, params, until, best_lb, stats))
            poll_bound()
            if not capped or end - time.perf_counter() <= INTEGER_MIN_S or gap_ok(best_lb):
                break
            polish_short()

    def repair_until(end: float) -> None:
        """Repairs of the orders dearest against the LP until ``end`` (or none is left)."""
        assert repair is not None
        t_rep, before = time.perf_counter(), best_cost
        improve(repair.run(x_best, end, workers()))
        poll_bound()
        log.debug(
            "repair %.4f -> %.4f took %.1f (%d MIPs, %d improved, %d collisions)",
            before / MICRO,
            best_cost / MICRO,
            time.perf_counter() - t_rep,
            repair.tries,
            repair.wins,
            repair.collisions,
        )

    if repair is None:
        search(hard)
    else:
        # a search slice, then repairs for REPAIR_SHARE of the pair's time, in turns
        per_search_s = REPAIR_SHARE / (1.0 - REPAIR_SHARE)  # repair seconds per search second
        if (
            ejector is not None
            and EJECT_FIRST_SHARE > 0
            and time_left() > INTEGER_MIN_S
            and not cancelled()
        ):
            eject_until(min(hard, time.perf_counter() + EJECT_FIRST_SHARE * params.time_limit_s))
        last_s = EJECT_LAST_SHARE * params.time_limit_s if ejector is not None else 0.0
        turns_end = hard - last_s
        while (
            not gap_ok(best_lb)
            and turns_end - time.perf_counter() > INTEGER_MIN_S
            and not cancelled()
        ):
            t_slice = time.perf_counter()
            search(min(turns_end, t_slice + slice_s))
            spent = time.perf_counter() - t_slice
            if gap_ok(best_lb) or turns_end - time.perf_counter() <= INTEGER_MIN_S or cancelled():
                break
            repair_until(min(turns_end, time.perf_counter() + max(spent, 0.5) * per_search_s))
            if (
                ejector is not None
                and turns_end - time.perf_counter() > INTEGER_MIN_S
                and not cancelled()
            ):
                turn_s = EJECT_SHARE * max(spent, 0.5) * per_search_s
                eject_until(min(turns_end, time.perf_counter() + turn_s))
        if (
            ejector is not None
            and last_s > 0
            and not gap_ok(best_lb)
            and time_left() > INTEGER_MIN_S
            and not cancelled()
        ):
            eject_until(hard)  # ends sooner when no order is left to try: search the rest
            search(hard)
        notes.append(
            f"repairs of the orders dearest against the LP: {repair.wins} of "
            f"{repair.tries} compact MIPs improved"
        )
        if ejector is not None and ejector.tries:
            notes.append(
                f"ejection moves (room made on full nodes): {ejector.wins} of "
                f"{ejector.tries} tried improved"
            )
    if sliced is not None and sliced.search is not None:
        stats.nodes += sliced.nodes
        notes.append(sliced.note())
    poll_bound(0.0 if cancelled() else hard - time.perf_counter())
    # orders left short may fit partial fills the pattern pool cannot express (none once
    # its solve is cancelled), within the deadline less the answer's assembly after it (an
    # integer phase that overran the HiGHS margin leaves the polish nothing)
    if not cancelled():
        t_pol = time.perf_counter()
        tail_s = min(POLISH_TAIL_S_PER_ORDER * prob.num_orders, margin_s)
        polished = polish(prob, x_best, deadline=deadline - tail_s)
        log.debug("polish took %.1f", time.perf_counter() - t_pol)
        improve(polished)
        if REASSIGN and hard - time.perf_counter() > REASSIGN_S_PER_ORDER * prob.num_orders:
            improve(reassign_lines(prob, x_best))
    return outcome(lp_s, time.perf_counter() - t_mip)


@dataclass
class _SearchOutcome:
    x: I64 | None
    bound: float
    notes: list[str]
    #: the search stalled with every order free (the pool's optimum): only the compact MIP,
    #: over every pair, may still improve or prove it
    whole: bool = False


def _search(
    prob: Problem,
    master: Master,
    params: AllocationParams,
    x_best: I64,
    z: F64,
    duals: Duals,
    lb: float,
    deadline: float,
    stats: _IntStats,
    race: PoolRace | None = None,
    race_until: float | None = None,
) -> _SearchOutcome:
    """Integer phase of batches below ``WARMUP_ORDERS``: see :mod:`solvers.allocation.lns`.

    LP rounding, then the pool grows by every order's patterns of small reduced cost at
    the LP duals, then neighbourhood search; when the incumbent is close enough to the
    bound, the reduced-cost certificate, then the search again with the time left. When
    the search stalls (``Neighbourhoods.exhausted``), :func:`_lns` takes ``HANDOVER`` of
    the time left, then the search resumes with neighbourhoods up to every order. Without
    a ``race`` and with ``params.threads`` unset, the neighbourhood MIPs run on a thread
    per core (PARALLEL_SEARCH). ``race_until``: when a race or the threaded search ends
    (past ``deadline``, the HiGHS margin of the bigger MIPs).
    """
    t0 = time.perf_counter()
    pool_optimum = False
    notes: list[str] = []
    target = params.mip_rel_gap
    x = x_best
    cost = prob.evaluate(x).total
    known_lb = [lb]  # the best bound so far, for the gap reported as the incumbent improves

    def consider(cand: I64 | None) -> None:
        nonlocal x, cost
        if cand is None or prob.violations(cand):
            return
        c = prob.evaluate(cand).total
        if c < cost:
            x, cost = cand, c
            report_phase(INTEGER_PHASE, relative_gap(cost / MICRO, known_lb[0]))

    def met(bound: float) -> bool:
        ub = cost / MICRO
        return ub - bound <= target * max(abs(ub), 1e-9) + 1e-9

    consider(lp_round(prob, master, z, duals, deadline=deadline))
    rounded = cost
    if met(lb) or time.perf_counter() > deadline - 0.05:
        return _SearchOutcome(x, lb, notes)
    c_arc, c_pair = reduced_costs(prob, duals)
    rhs_term = master.shared_rhs_term(duals)
    n_o = prob.num_orders
    # the pool grows by every order's near-optimal patterns at the LP duals
    slack = per_order = ENRICH_SLACK * abs(lb) / max(n_o, 1)
    near = None
    for _ in range(3):
        near = near_columns(
            prob,
            c_arc,
            c_pair,
            rhs_term,
            slack,
            per_order=ENRICH_PER_ORDER,
            total=ENRICH_PER_ORDER * n_o,
        )
        if near is not None:
            break
        slack *= 0.25
    if near is not None:
        master.add(near.orders, near.arcs, near.qty)
    master.add_solution(x)
    sub = SubMip(master, seed=params.seed, threads=params.threads)
    current = master.column_of(x)
    search = Neighbourhoods(prob, sub, duals, seed=params.seed)
    # the per-order optima of the listing are exact (so its Lagrangian value a bound) only
    # where every pattern can be listed: every line a single unit
    certifiable = near is not None and enumerable(prob)
    bound = max(lb, near.bound) if near is not None and certifiable else lb
    known_lb[0] = bound
    nodes = 0

    def good_enough() -> int:
        return _good_enough(bound, target)

    # neighbourhood MIPs on a thread per core where no pool MIP races (see PARALLEL_SEARCH)
    workers = (
        search_workers(params) if race is None and PARALLEL_SEARCH and params.threads is None else 1
    )
    search.parallel_share = SMALL_PARALLEL_SHARE

    def resume(offset: int, until: float, max_size: int | None = None) -> None:
        """A fresh search from the incumbent (added to the pool), carrying the last one's state."""
        nonlocal sub, search, nodes
        nodes += sub.nodes
        search = _fresh_search(prob, master, x, duals, params, search, offset)
        sub = search.sub
        if max_size is not None:
            search.max_size = max_size
        consider(master.allocation(search.run(master.column_of(x), until, good_enough(), workers)))

    # the whole pool MIP in the helper process; the search takes its better allocations
    until = deadline if race_until is None else max(deadline, race_until)
    if race is not None and race.launch(sub, current, until, good_enough(), params.seed):
        search.partner = race
    else:
        race = None
    certified_at: int | None = None  # the incumbent cost (micro) a certificate was tried at

    def try_certificate(until: float) -> None:
        """The reduced-cost certificate of the incumbent, once per incumbent."""
        nonlocal bound, certified_at
        if not certifiable or met(bound) or certified_at == cost:
            return
        if time.perf_counter() > until - 0.1:
            return
        assert near is not None
        certified_at = cost
        proof = certify(
            prob,
            master,
            duals,
            near.bound,
            x,
            target,
            until,
            max_slack=CERT_MAX_SLACK * per_order,
            seed=params.seed,
            threads=params.threads,
            reduced=(c_arc, c_pair),
        )
        log.debug(
            "certificate %s t %.1f",
            None if proof is None else (proof.bound, proof.columns),
            time.perf_counter() - t0,
        )
        if proof is not None:
            bound = max(bound, proof.bound)
            known_lb[0] = bound
            consider(proof.x)
            report_phase(INTEGER_PHASE, relative_gap(cost / MICRO, bound))
            notes.append(
                f"reduced-cost certificate: bound {proof.bound:.4f} ({proof.columns} patterns)"
            )

    try:
        # keep time for the certificate (a solved MIP over the patterns it needs)
        left = deadline - time.perf_counter()
        reserve = max(CERT_MIN_S, CERT_SHARE * left) if certifiable else 0.0
        current = search.run(current, deadline - reserve, good_enough(), workers)
        consider(master.allocation(current))
        if search.exhausted and not met(bound):
            # stalled: the certificate first (see CERT_FIRST_SHARE), then a while of the
            # other neighbourhood search (orders around binding stock rows, HiGHS presolve
            # on), then this one again with no size limit
            now = time.perf_counter()
            try_certificate(now + CERT_FIRST_SHARE * (deadline - now))
        # stalled with every order free: the pool's optimum, which neither the binding-row
        # search (its neighbourhoods are then the whole batch too) nor a resumed search can
        # improve; the caller's compact MIP (over every pair, not the pool) may
        whole = search.size >= n_o
        if whole and search.exhausted and not met(bound):
            pool_optimum = True
            notes.append(
                f"neighbourhood search stalled with all {n_o} orders free (the pool's optimum): "
                "no binding-row search"
            )
        if (
            search.exhausted
            and not whole
            and not met(bound)
            and time.perf_counter() < deadline - reserve
        ):
            now = time.perf_counter()
            notes.append(
                f"neighbourhood search stalled at {search.size} of {n_o} orders: the "
                f"binding-row search may take up to {HANDOVER * (deadline - now):.1f} s of the "
                f"{deadline - now:.1f} s left"
            )
            consider(
                _lns(
                    prob,
                    master,
                    x,
                    params,
                    now + HANDOVER * (deadline - now),
                    bound,
                    stats,
                    partner=race,
                )
            )
            resume(2, deadline - reserve, max_size=n_o)
        if certifiable and not met(bound) and time.perf_counter() < deadline - 0.1:
            try_certificate(deadline)
            # while a race runs or the search has threads, ``until`` (past the HiGHS margin:
            # these neighbourhood MIPs are small and stop within moments of their deadline)
            last = deadline if race is None and workers == 1 else until
            if not met(bound) and time.perf_counter() < last - 0.05:
                resume(1, last)
        if race is not None and not met(bound):
            race.wait(until, good_enough())
    finally:
        if race is not None:
            race.stop()
    if race is not None:
        taken = race.take(cost)
        if taken is not None:
            consider(master.allocation(taken))
        notes.append(
            f"pool MIP beside the search: {race.found} improving solutions, "
            f"{search.taken} taken by the search"
        )
    if workers > 1:
        notes.append(
            f"neighbourhood search on {workers} threads ({search.collisions} answers found "
            "orders another thread had moved)"
        )
    stats.nodes += nodes + sub.nodes
    tally = ", ".join(f"{k} {v.wins}/{v.tries}" for k, v in search.tally.items())
    stalled = f"; stalled at {search.size} orders" if search.exhausted else ""
    notes.append(
        f"integer phase: LP rounding {rounded / MICRO:.4f}, neighbourhood search ({tally} "
        f"improving{stalled}) {cost / MICRO:.4f} in {time.perf_counter() - t0:.1f} s"
    )
    log.debug("search: %s", notes[-1])
    return _SearchOutcome(x, bound, notes, pool_optimum)


def _good_enough(lb: float, gap: float) -> int:
    """The cost (micro) at or below which the certified gap to ``lb`` is within ``gap``."""
    return int(np.floor(lb / (1.0 - gap) * MICRO)) if gap < 1.0 else 0


def _fresh_search(
    prob: Problem,
    master: Master,
    x: I64,
    duals: Duals,
    params: AllocationParams,
    before: Neighbourhoods | None,
    offset: int,
) -> Neighbourhoods:
    """A neighbourhood search over the pool with ``x`` added, carrying ``before``'s state."""
    master.add_solution(x)
    sub = SubMip(master, seed=params.seed, threads=params.threads)
    search = Neighbourhoods(prob, sub, duals, seed=params.seed + offset)
    if before is not None:
        search.size, search.tally, search.iterations = before.size, before.tally, before.iterations
        search.partner, search.taken = before.partner, before.taken
        search.collisions = before.collisions
        search.parallel_share = before.parallel_share
        search.max_size = before.max_size
    return search


class _SlicedSearch:
    """The neighbourhood search of :mod:`solvers.allocation.lns` in slices (capped batches).

    Between slices the batch re-fills the orders left short, whose new patterns join the
    pool: each slice searches the grown pool, carrying the neighbourhood size and tallies.
    Its neighbourhoods (orders sharing SKUs; chains from an order of high reduced cost at
    the LP duals to the orders holding what it would rather use) beat freeing the orders
    around random binding rows (:func:`_lns`) in the capped city (60 s certified gap): 1.74,
    2.36, 1.98 % against 2.41, 2.97, 2.35 % at 1,000 orders (seeds 0-2), 4.42-4.67 % against
    5.17 % at 10,000.
    """

    def __init__(self, prob: Problem, master: Master, duals: Duals, params: AllocationParams):
        self.prob, self.master, self.duals, self.params = prob, master, duals, params
        self.workers = search_workers(params)
        self.search: Neighbourhoods | None = None
        self.slices = 0
        self.nodes = 0

    def run(self, x: I64, deadline: float, lb: float) -> I64:
        """``x`` improved until ``deadline`` or the certified gap target to ``lb`` (``x`` as
        it is once this thread's solve is cancelled)."""
        if cancelled():  # as past its deadline, without the search's set-up
            return x
        prob, master = self.prob, self.master
        search = _fresh_search(prob, master, x, self.duals, self.params, self.search, self.slices)
        self.search = search
        self.slices += 1
        current = master.column_of(x)
        good = _good_enough(lb, self.params.mip_rel_gap)
        while True:
            current = search.run(current, deadline, good, self.workers)
            if not search.exhausted:
                break
            # stalled at its largest neighbourhoods: from now on up to every order
            search.max_size, search.exhausted = prob.num_orders, False
        self.nodes += search.sub.nodes
        return master.allocation(current)

    def note(self) -> str:
        """What the search did, for the answer's notes."""
        assert self.search is not None
        tally = ", ".join(f"{k} {v.wins}/{v.tries}" for k, v in self.search.tally.items())
        return (
            f"neighbourhood search in {self.slices} slices ({tally} improving), last "
            f"neighbourhoods of {self.search.size} orders"
        )


def search_workers(params: AllocationParams) -> int:
    """Threads of the capped batches' neighbourhood search: a core each, at most SEARCH_WORKERS.

    One unless the caller leaves HiGHS' thread count open or asks for more than one.
    """
    cpus = usable_cpus()
    allowed = SEARCH_WORKERS if params.threads is None else min(SEARCH_WORKERS, params.threads)
    return max(1, min(cpus, allowed))


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
            status_text(master.h),
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
    z_last: F64 | None = None,
) -> I64 | None:
    """Orders the master LP decides integrally stay; sub-MIPs settle the others in chunks.

    The fractional orders are first fixed by diving on the master LP (:func:`_dive`), then
    chunks of at most ``LP_GUIDED_CHUNK`` of them are re-optimised in turn with everyone
    else fixed. ``z_last`` (the last master LP solution of column generation, over the
    columns the pool had then) spares re-solving the LP.
    """
    pool = _PoolMip(prob, master, x_best, params, lb)
    if z_last is None:
        master.to_lp()
        if master.solve_lp(max(deadline - time.perf_counter(), 0.1) * 0.2) != "Optimal":
            master.to_integer()
            return None
        z = master.lp_values()
    else:
        z = np.zeros(pool.n_cols)
        z[: z_last.shape[0]] = z_last
    whole = z >= 1.0 - 1e-6
    frac = np.ones(prob.num_orders, dtype=bool)
    frac[pool.col_order[whole]] = False
    stats.fixed = int((~frac).sum())
    master.to_integer()
    if not frac.any() or not stats.fixed:
        return None
    start = np.arange(prob.num_orders)  # column o ships nothing for order o
    start[pool.col_order[whole]] = np.nonzero(whole)[0]
    current = _dive(
        master, pool, z, frac, start, time.perf_counter() + 0.25 * (deadline - time.perf_counter())
    )
    rounded = pool.total(current)
    rng = np.random.default_rng(params.seed)
    todo = rng.permutation(np.nonzero(frac)[0])
    chunks = np.array_split(todo, -(-todo.shape[0] // LP_GUIDED_CHUNK))
    share = 0.5 * (deadline - time.perf_counter())
    for i, chunk in enumerate(chunks):
        left = deadline - time.perf_counter()
        if left < 0.05 or cancelled():
            break
        free = np.zeros(prob.num_orders, dtype=bool)
        free[chunk] = True
        seconds = min(left, max(0.2, share / len(chunks)))
        cand = pool.sub_mip(free, current, seconds)
        if cand is not None and pool.total(cand) < pool.total(current):
            current = cand
        log.debug("lp-guided chunk %d/%d: %.2f", i + 1, len(chunks), pool.total(current) / MICRO)
    log.debug(
        "lp-guided: %d orders fractional, rounded %.2f, chunks %.2f, current %.2f",
        int(frac.sum()),
        rounded / MICRO,
        pool.total(current) / MICRO,
        pool.total(pool.current) / MICRO,
    )
    return _improvement(master, pool, current, stats)


def _dive(
    master: Master, pool: _PoolMip, z: F64, frac: np.ndarray, start: I64, deadline: float
) -> I64:
    """``start`` with the fractional orders fixed by diving on the master LP.

    Each round fixes the orders the LP decides integrally and the heaviest ``DIVE_SHARE``
    of the rest to their heaviest column, where it fits the shared rows beside the orders
    fixed before, then re-solves the LP over the orders still open (which can always ship
    nothing, so it stays feasible). Past ``deadline``, or when nothing fits, the open
    orders keep their ``start`` column.
    """
    n_cols, col_order = pool.n_cols, pool.col_order
    usage = master.usage_matrix().tocsc()
    rhs = master.rows.rhs
    out = start.copy()
    open_ = frac.copy()
    load = usage @ np.bincount(out[~open_], minlength=n_cols).astype(np.float64)
    master.to_lp()
    try:
        while open_.any() and time.perf_counter() < deadline and not cancelled():
            cols = np.nonzero(open_[col_order] & (z > 1e-9))[0]
            cols = cols[np.argsort(-z[cols], kind="stable")]  # heaviest first
            quota = max(1, int(np.ceil(DIVE_SHARE * int(open_.sum()))))
            fixed = 0
            for c in cols.tolist():
                o = int(col_order[c])
                if not open_[o] or (z[c] < 1.0 - 1e-6 and fixed >= quota):
                    continue
                lo, hi = usage.indptr[c], usage.indptr[c + 1]
                rows, vals = usage.indices[lo:hi], usage.data[lo:hi]
                if np.all(load[rows] + vals <= rhs[rows] + 1e-9):
                    load[rows] += vals
                    out[o] = c
                    open_[o] = False
                    fixed += 1
            if not fixed or not open_.any():
                break
            lower = np.zeros(n_cols)
            upper = np.where(open_[col_order], np.inf, 0.0)
            lower[out[~open_]] = 1.0
            upper[out[~open_]] = 1.0
            master.h.changeColsBounds(n_cols, np.arange(n_cols, dtype=np.int32), lower, upper)
            status = master.solve_lp(deadline - time.perf_counter())
            log.debug("dive: %d open, LP %s %.2f", int(open_.sum()), status, master.objective())
            if status != "Optimal":
                break
            z = master.lp_values()
    finally:
        master.to_integer()
    return out


def _small_certificate(
    prob: Problem,
    master: Master,
    params: AllocationParams,
    x: I64,
    duals: Duals,
    deadline: float,
) -> Certificate | None:
    """The reduced-cost certificate of ``x`` at the master LP's ``duals`` (small batches)."""
    if not enumerable(prob):
        return None
    c_arc, c_pair = reduced_costs(prob, duals)
    # the per-order optima at the duals: their Lagrangian value is the certificate's base
    base = near_columns(
        prob, c_arc, c_pair, master.shared_rhs_term(duals), 0.0, per_order=1, total=prob.num_orders
    )
    if base is None:
        return None
    per_order = ENRICH_SLACK * abs(base.bound) / max(prob.num_orders, 1)
    wide = prob.num_orders >= SMALL_CERT_WIDE_ORDERS
    proof = certify(
        prob,
        master,
        duals,
        base.bound,
        x,
        params.mip_rel_gap,
        deadline,
        max_slack=(SMALL_CERT_WIDE_SLACK if wide else SMALL_CERT_MAX_SLACK) * per_order,
        seed=params.seed,
        threads=params.threads,
        max_patterns=SMALL_CERT_WIDE_PATTERNS if wide else SMALL_CERT_PATTERNS,
        reduced=(c_arc, c_pair),
    )
    log.debug("small certificate %s", None if proof is None else (proof.bound, proof.columns))
    return proof


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
    partner: PoolRace | None = None,
) -> I64 | None:
    """Large-neighbourhood search: sub-MIPs freeing the orders around binding rows.

    With a ``partner`` (the pool MIP's process), its better allocations are taken between
    sub-MIPs.
    """
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
        if left < 0.1 or cancelled():
            break
        theirs = None if partner is None else partner.take(pool.total(current))
        if theirs is not None:
            current = theirs
            report_phase(INTEGER_PHASE, relative_gap(pool.total(current) / MICRO, lb))
            continue
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
            # the certified gap as the incumbent improves (a search of one long slice)
            report_phase(INTEGER_PHASE, relative_gap(pool.total(current) / MICRO, lb))
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
