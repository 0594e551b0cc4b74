"""Cheapest feasible insertion: a fast, deterministic construction heuristic.

Every route keeps closed-form timing arrays (:mod:`solvers.routing.timing`: no-wait start
times, prefix/suffix extremes of window slack, loads, sparse tables), so the feasibility and
the cost change of inserting a visit into any gap is O(1) (O(dims) for capacity) and is
computed for all unrouted orders x all gaps of a route in one vectorised pass. A
pickup-and-delivery order tries its pickup and delivery in the same gap everywhere, and in
different gaps for the best few pickup gaps x best few delivery gaps (plus the best pickup
before / delivery after each of them), each pair checked exactly in O(1).

The cheapest insertion of every order into every open route (and into one empty vehicle of each
vehicle type) is cached. After an insertion only the changed route is re-priced, and only for
the orders whose best insertion was in that route and the orders near the inserted one (all
orders on small problems); any other cached price that went stale is re-priced when it becomes
the cheapest (lazy evaluation). The empty route a vehicle opens when an interchangeable one
(same type) takes its first order takes that route's prices from when it was empty (the same
route), where pricing every order anew took 3.7 ms a route at 10,000 orders. The price arrays
have a row per order to insert (not per order of the problem: a construction run again after
dropping routes inserts a tenth of them, and arrays of every order took 0.7-0.8 s to allocate
at 10,000 orders) and a column per route, as many as it can open from the start
(:func:`_price_width`), so they are never copied to larger ones mid-construction.

Mandatory orders are inserted first (those needing skills before the others; when they do not
all fit and differ in priority, the construction is run again inserting the highest priority
first, see :meth:`GreedyBuilder.build`); optional orders only while their insertion costs less
than their penalty (a vehicle's fixed cost is left out of that test, and routes of optional
orders that cost more than the penalties they save are dropped at the end, and the
construction is run again without their vehicles; when it then ends where it started, the runs
that would open as many interchangeable vehicles for the same orders and drop them again are
skipped: 16 runs at 1,000 orders, one vehicle each).

The courier jobs of an order split over several nodes
(:attr:`~solvers.routing.problem.RoutingProblem.groups`) are inserted all or nothing: once the
first is inserted the others come next, each at its cheapest place; a group one of whose jobs
fits nowhere, or an optional one whose insertions together cost its penalty or more (charged
once), is taken out again and left out whole (one taken out for its cost is tried once more
when nothing else goes in: the routes may have come near it).

With a deadline, a construction stops there only once it has had :data:`GRACE_S` of CPU time
(its thread's): one that starts at or past it, or loses the CPU on a busy machine, still
inserts: an order that fits in a moment is not left out for want of time that was never had.
The grace ends too where its plan, as the answer, would come past the call's time limit
(:attr:`GreedyBuilder.grace_end`, when given): it makes the most of a starved start, never a
late answer.
Past its deadline and its grace it stops pricing too (the first pricing of every order into
every route takes 0.05 s at 2,000 orders), and does not start the constructions that might
improve its plan (the second by priority, the one after dropping routes too dear for their
optional orders), which would stop before their first insertion. A construction on a small
problem (:func:`always_completes`: at most :data:`ALWAYS_COMPLETE_SIZE` visits and vehicles)
does not look at its deadline at all: its work is bounded by the problem's size, a few
hundredths of a second of CPU, and a clock that says the grace is gone (a starved process's,
whose CPU clock also counts what the collector or the hypervisor took) made a plan of 3
orders come back with no route. A cancelled solve
(:mod:`solvers.cancel`: the service stopping) stops as at its deadline.

Exact for single-window tasks and vehicles with at most one break (the break is re-placed where
the route is shortest after each insertion, as the scheduler does); with several windows or
breaks the arrays are a relaxation and every insertion is confirmed by the scheduler.

A one-break vehicle's break may be taken at the start before departure while the route waits
for its orders (:func:`~solvers.routing.problem.pre_departure_breaks`). Where that can happen
the construction runs twice (:meth:`GreedyBuilder.build`): first with the breaks on the road,
then inserting the orders left out into those routes with the break before departure too (an
order whose release lets the break move there priced on the route without it; a route whose
break is there priced with the break on the road as well). Allowed from the start it served
fewer orders: such a break costs no time, so late orders opened the couriers, whose routes
then left too late for the earlier ones.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from solvers.cancel import cancelled
from solvers.routing.engines.base import EngineResult, EngineSettings
from solvers.routing.problem import UNLIMITED, RoutingProblem, left_out
from solvers.routing.schedule import schedule_route
from solvers.routing.timing import (
    Timing,
    Visit,
    break_release,
    build_timing,
    insert_one,
    insert_pair,
    insert_pair_same_gap,
    load_ok_range,
    place_break_on_road,
    route_timing,
    visits,
)
from solvers.select import smallest

INF = float("inf")
#: pickup gaps x delivery gaps tried exactly for a pickup-and-delivery order
PAIR_CANDIDATES = 4
#: routes with at most this many gaps try every pickup gap x later delivery gap
ALL_PAIRS_GAPS = 12
#: orders re-priced around each insertion on large problems
NEIGHBOURS = 48
#: stale prices re-priced together (the ones that come first)
STALE_BATCH = 32
#: up to this many orders every insertion re-prices every unrouted order
FULL_UPDATE = 250
#: seconds of CPU time a construction gets whatever its deadline (its thread's CPU time: a
#: construction starved of the CPU past the deadline still gets them)
GRACE_S = 0.05
#: A vehicle's empty route takes the prices of the orders on the last empty route of its
#: interchangeable vehicles (equal :attr:`~solvers.routing.problem.VehicleInfo.type_key`)
#: instead of pricing every order anew (off: the tests' reference)
SHARE_EMPTY_PRICES = True
#: An order whose window leaves it no gap of a route (:meth:`~solvers.routing.timing.Timing.
#: gap_range`: about half the orders on an empty route of a 10,000-order city day, outside the
#: vehicle's shift) is priced out of that route without computing its insertion (off: the
#: tests' reference)
SKIP_NO_GAP = True
#: Problems with at most this many visits (tasks) and vehicles together are constructed whole
#: whatever the clock says (:func:`always_completes`): a whole construction measured 0.021 s
#: of CPU at 100 delivery orders and 5 vehicles, 0.028 s at 50 pickup-and-delivery orders and
#: 2 vehicles (seeded city days with breaks, the least of 3 runs, a machine at load ~1), under
#: :data:`GRACE_S`, which a construction past its deadline had anyway; 0.057-0.064 s at the
#: bound with two windows per visit and two breaks per vehicle (110 deliveries or 55 pairs, 10
#: vehicles: every insertion confirmed by the scheduler), twice that when mandatory orders
#: of several priorities do not all fit (the construction runs again, highest first).
ALWAYS_COMPLETE_SIZE = 120


#: The price arrays of a construction (a row per order to insert; a price of 8 bytes, two gaps
#: and a version of 4 each: 20 bytes an entry) are sized at once for every route it can open
#: up to this many bytes (:func:`_price_width`); past it they start at twice the routes open
#: and double when full
PRICE_BYTES = 2**30


def _price_width(rows: int, cols: int, spare: int) -> int:
    """Columns of a construction's price arrays: ``rows`` orders to insert, ``cols`` routes
    open at the start and ``spare`` vehicles to open more (one per order inserted, at most):
    room for all of them when it fits :data:`PRICE_BYTES`, else twice ``cols``."""
    most = cols + min(spare, rows)
    if 20 * rows * most <= PRICE_BYTES:
        return max(1, most)
    return max(16, 2 * cols)


def always_completes(problem: RoutingProblem) -> bool:
    """Whether constructions on ``problem`` ignore their deadline (small: its visits and
    vehicles number at most :data:`ALWAYS_COMPLETE_SIZE`)."""
    return len(problem.tasks) + len(problem.vehicles) <= ALWAYS_COMPLETE_SIZE


F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]
#: Prices insertions into one route: (new duration, distance added, feasible) -> cost.
Pricer = Callable[[I64, I64, Mask], F64]


@dataclass
class _Col:
    vehicle: int
    seq: list[int]
    tm: Timing
    confirm: bool
    version: int = 0
    #: the timing without breaks (a one-break vehicle's break on the road in ``tm``), made on
    #: first use: an insertion whose release lets the break be taken before departure
    bare: Timing | None = None
    #: the timing with the break on the road where the route is shortest (``tm`` takes it at
    #: the start before departure), made on first use: an insertion the route must serve
    #: before the break could end there
    road: Timing | None = None

    @property
    def empty(self) -> bool:
        return not self.seq


def _window(first: I64, last: I64) -> tuple[I64, NDArray[np.bool_]]:
    """Per row the gaps ``first..last`` as one padded (rows, width) array and its mask."""
    width = int(max(1, (last - first).max(initial=0) + 1))
    gaps = first[:, None] + np.arange(width)[None, :]
    valid = gaps <= last[:, None]
    top = int(max(0, last.max(initial=0)))
    return np.clip(gaps, 0, top), valid


class GreedyBuilder:
    """Cheapest-insertion construction over a :class:`RoutingProblem` (see module docstring)."""

    def __init__(
        self,
        problem: RoutingProblem,
        orders: Sequence[int] | None = None,
        initial: Mapping[int, Sequence[int]] | None = None,
        *,
        deadline: float | None = None,
        vehicles: Sequence[int] | None = None,
        grace_s: float | None = None,
        by_priority: bool = False,
        reserve_per_order_s: float = 0.0,
        grace_end: float | None = None,
        break_first: bool | None = None,
    ) -> None:
        self.p = problem
        self.by_priority = by_priority
        #: whether a one-break vehicle's route may take its break at the start before
        #: departure; None: in a second construction only, which inserts the orders the first
        #: one (the breaks on the road) left out into its routes (:meth:`build`)
        self.break_first = break_first
        self.todo = list(range(len(problem.orders))) if orders is None else list(orders)
        self.initial = {v: list(s) for v, s in (initial or {}).items() if s}
        self.deadline = deadline
        self.grace_s = GRACE_S if grace_s is None else grace_s
        #: a ``time.perf_counter()`` value that ends the grace too (brought forward as the
        #: deadline is, :meth:`past_deadline`): the latest an answer built on this
        #: construction can still come within its time limit (None: the grace is CPU time
        #: only)
        self.grace_end = grace_end
        #: the deadline comes this much earlier per order routed: the time the plan's
        #: decoding and validation will take after it, which grows with the orders placed
        self.reserve_per_order_s = reserve_per_order_s
        self.routed_orders = 0  # orders routed at the last look at the clock
        #: the longest step (wall seconds between two looks at the clock) this construction,
        #: or the one that started it, has taken: the deadline comes that much earlier, so a
        #: step as long as the longest so far ends by it (:meth:`past_deadline`)
        self.step_s = 0.0
        self._looked: float | None = None  # the wall clock at the last look
        self.allowed = set(range(len(problem.vehicles)) if vehicles is None else vehicles)
        self.multi_windows = problem.has_multiple_windows
        #: a small problem is constructed whole: its deadline is not looked at
        self.whole = always_completes(problem)
        self.timed_out = False
        self._prepare()

    # ------------------------------------------------------------------ order data
    def _prepare(self) -> None:
        p = self.p
        n = len(p.orders)
        self.n = n
        deliv = np.array([o.delivery for o in p.orders], dtype=np.int64)
        pick = np.array([o.pickup if o.pickup is not None else -1 for o in p.orders], np.int64)
        self.pd = pick >= 0
        pk = np.where(self.pd, pick, deliv)
        # the delivery, and the pickup (the delivery for orders without one) of every order
        self.deliv = deliv
        self.first_task = pk
        self.d: Visit = visits(p, deliv)
        self.demand = np.array([o.demand for o in p.orders], dtype=np.int64).reshape(n, p.dims)
        skill_sets = {v.skills for v in p.vehicles}
        ok_by_set = {
            s: np.array([o.skills <= s for o in p.orders], dtype=bool).reshape(n)
            for s in skill_sets
        }
        self.skill_ok = np.stack(
            [ok_by_set[v.skills] for v in p.vehicles] or [np.zeros(n, dtype=bool)], axis=1
        )
        self.penalty = np.array(
            [INF if o.penalty is None else float(o.penalty) for o in p.orders], dtype=np.float64
        ).reshape(n)
        self.skilled = np.array([bool(o.skills) for o in p.orders], dtype=bool).reshape(n)
        self.rank = np.array([o.priority_rank for o in p.orders], dtype=np.int64).reshape(n)

    # ------------------------------------------------------------------ columns
    def _column(self, vehicle: int, seq: list[int]) -> _Col:
        veh = self.p.vehicles[vehicle]
        if self.break_first is False and len(veh.breaks) == 1:
            tm = place_break_on_road(self.p, vehicle, seq)
        else:
            tm = route_timing(self.p, vehicle, seq)
        return _Col(vehicle, seq, tm, confirm=self.multi_windows or len(veh.breaks) > 1)

    def _eval(self, col: _Col, rows: I64) -> tuple[F64, I64, I64]:
        """Cheapest insertion of orders ``rows`` into ``col``: cost, gap 1, gap 2 (-1: none)."""
        k = len(rows)
        cost = np.full(k, INF)
        g1 = np.full(k, -1, dtype=np.int64)
        g2 = np.full(k, -1, dtype=np.int64)
        tm = col.tm
        if not k or not tm.feasible:
            return cost, g1, g2
        veh = self.p.vehicles[col.vehicle]
        ok_rows = self.skill_ok[rows, col.vehicle]
        single = np.flatnonzero(ok_rows & ~self.pd[rows])
        pairs = np.flatnonzero(ok_rows & self.pd[rows])
        base_dur = 0 if col.empty else tm.duration
        base_dist = 0 if col.empty else tm.distance
        fixed = veh.fixed_cost if col.empty else 0
        cap = np.asarray(veh.capacity, dtype=np.int64)

        def price(dur: I64, added: I64, ok: Mask) -> F64:
            dist = tm.distance + added
            if veh.max_duration_s is not None:
                ok = ok & (dur <= veh.max_duration_s)
            if veh.max_distance_m is not None:
                ok = ok & (dist <= veh.max_distance_m)
            c = veh.unit_distance_cost * (dist - base_dist).astype(np.float64)
            if veh.unit_duration_cost:
                c += veh.unit_duration_cost * (dur - base_dur).astype(np.float64)
            return np.where(ok, c + fixed, INF)

        if len(single):
            o = rows[single]
            cost[single], g1[single] = self._eval_singles(tm, o, cap, price)
            if not tm.pre and self.break_first is not False:
                self._eval_break_first(col, o, single, cost, g1, cap, price)
        if len(pairs):
            o = rows[pairs]
            pc, b1, b2 = self._eval_pairs(tm, o, cap, price)
            cost[pairs], g1[pairs], g2[pairs] = pc, b1, b2
        if tm.pre and len(single) + len(pairs):
            at = np.union1d(single, pairs)
            self._eval_break_on_road(col, rows[at], at, cost, g1, g2, cap, price)
        return cost, g1, g2

    def _eval_singles(self, tm: Timing, o: I64, cap: I64, price: Pricer) -> tuple[F64, I64]:
        """Cheapest insertion of orders ``o`` without a pickup into ``tm``: cost and gap."""
        cost = np.full(len(o), INF)
        _, de, dl, ds = visits(self.p, self.deliv[o])
        lo, hi = tm.gap_range(de, dl, ds)
        # an order whose window leaves it no gap fits nowhere on the route: it is priced
        # out without the arrays (about half the orders on an empty route of a 10,000-
        # order city day: their shift is not theirs), at the first gap of its range
        fits = lo <= hi
        if not SKIP_NO_GAP:
            fits[:] = True
        g1 = np.clip(lo, 0, int(max(0, hi.max(initial=0))))
        if fits.any():
            ol = o[fits]
            gaps, valid = _window(lo[fits], hi[fits])
            release = self.p.arrays.release[self.deliv[ol]][:, None]
            ins = insert_one(
                tm, self.p, gaps, *visits(self.p, self.deliv[ol], column=True), release=release
            )
            peak = np.maximum.accumulate(tm.load, axis=0)[gaps]  # load carried up to the gap
            ok = valid & ins.ok & np.all(peak + self.demand[ol][:, None, :] <= cap, axis=2)
            c = price(ins.duration, ins.added_distance, ok)
            best = np.argmin(c, axis=1)
            at = np.arange(len(ol))
            cost[fits] = c[at, best]
            g1[fits] = gaps[at, best]
        return cost, g1

    def _eval_break_on_road(
        self,
        col: _Col,
        o: I64,
        at: I64,
        cost: F64,
        g1: I64,
        g2: I64,
        cap: I64,
        price: Pricer,
    ) -> None:
        """Where cheaper, an insertion of orders ``o`` (at ``at`` of the arrays) into a
        route whose break ``col.tm`` takes at the start before departure with the break on
        the road instead (where the route without the order is shortest), as before that
        departure existed: an order the route must serve before the break could end (in place).
        """
        if col.road is None:
            col.road = place_break_on_road(self.p, col.vehicle, col.seq)
        road = col.road
        if not road.feasible:
            return
        pd = self.pd[o]
        c = np.full(len(o), INF)
        b1 = np.zeros(len(o), dtype=np.int64)
        b2 = np.full(len(o), -1, dtype=np.int64)
        if (~pd).any():
            c[~pd], b1[~pd] = self._eval_singles(road, o[~pd], cap, price)
        if pd.any():
            c[pd], b1[pd], b2[pd] = self._eval_pairs(road, o[pd], cap, price)
        better = c < cost[at]
        if not better.any():
            return
        # the road's gap g cuts the visits where ``col.tm`` (no break item) has gap
        # ``cut[g]``: the break is re-placed with the order inserted
        cut = road.task_position()
        keep = at[better]
        cost[keep] = c[better]
        g1[keep] = cut[b1[better]]
        g2[keep] = np.where(pd[better], cut[np.maximum(b2[better], 0)], -1)

    def _eval_break_first(
        self,
        col: _Col,
        o: I64,
        rows: I64,
        cost: F64,
        g1: I64,
        cap: I64,
        price: Pricer,
    ) -> None:
        """Where cheaper, an insertion of orders ``o`` (at ``rows`` of ``cost``/``g1``) whose
        release lets the one-break vehicle's break, on the road in ``col.tm``, be taken at the
        start before departure: priced on the route without breaks (in place)."""
        if len(self.p.vehicles[col.vehicle].breaks) != 1:
            return  # (break_release would say so: without the arrays)
        release = self.p.arrays.release[self.deliv[o]]
        early = break_release(self.p, col.vehicle, col.seq, release)
        if early is None or not early[0].any():
            return
        can, opening = early
        if col.bare is None:
            col.bare = build_timing(self.p, col.vehicle, col.seq)
        bare = col.bare
        if not bare.feasible:
            return
        o, rows, opening = o[can], rows[can], opening[can]
        _, de, dl, ds = visits(self.p, self.deliv[o])
        lo, hi = bare.gap_range(de, dl, ds)
        fits = lo <= hi  # (the others fit no gap: never cheaper)
        if SKIP_NO_GAP and not fits.all():
            o, rows, opening, lo, hi = o[fits], rows[fits], opening[fits], lo[fits], hi[fits]
            if not len(o):
                return
        gaps, valid = _window(lo, hi)
        ins = insert_one(
            bare,
            self.p,
            gaps,
            *visits(self.p, self.deliv[o], column=True),
            release=opening[:, None],
        )
        peak = np.maximum.accumulate(bare.load, axis=0)[gaps]
        ok = valid & ins.ok & np.all(peak + self.demand[o][:, None, :] <= cap, axis=2)
        c = price(ins.duration, ins.added_distance, ok)
        best = np.argmin(c, axis=1)
        at = np.arange(len(o))
        better = c[at, best] < cost[rows]
        if not better.any():
            return
        # the bare route's gap g has g visits before it: the first gap of the column's route
        # with as many (its break is re-placed with the order inserted)
        cut = col.tm.task_position()
        gap = np.searchsorted(cut, gaps[at, best], side="left")
        cost[rows[better]] = c[at, best][better]
        g1[rows[better]] = gap[better]

    def _eval_pairs(
        self,
        tm: Timing,
        o: I64,
        cap: I64,
        price: Pricer,
    ) -> tuple[F64, I64, I64]:
        """Cheapest insertion of pickup-and-delivery orders ``o`` into one route."""
        q = len(o)
        num_gaps = tm.num_gaps
        dem = self.demand[o]
        pa = visits(self.p, self.first_task[o])
        da = visits(self.p, self.deliv[o])
        pcol = visits(self.p, self.first_task[o], column=True)
        dcol = visits(self.p, self.deliv[o], column=True)
        p_lo, p_hi = tm.gap_range(pa[1], pa[2], pa[3])
        d_lo, d_hi = tm.gap_range(da[1], da[2], da[3])
        p_hi = np.minimum(p_hi, d_hi)  # the pickup comes first
        d_lo = np.maximum(d_lo, p_lo)
        rows = np.arange(q)
        # both in one gap
        gaps, valid = _window(d_lo, p_hi)
        same = insert_pair_same_gap(tm, self.p, gaps, pcol, dcol)
        ok = valid & same.ok & np.all(tm.load[gaps] + dem[:, None, :] <= cap, axis=2)
        c_same = price(same.duration, same.added_distance, ok)
        best = np.argmin(c_same, axis=1)
        cost = c_same[rows, best]
        b1 = gaps[rows, best]
        b2 = b1.copy()
        if num_gaps < 2:
            return cost, b1, b2
        if num_gaps <= ALL_PAIRS_GAPS:
            # short routes: every pickup gap x every later delivery gap
            i1, i2 = np.triu_indices(num_gaps, k=1)
            cand1 = np.broadcast_to(i1[None, :], (q, len(i1)))
            cand2 = np.broadcast_to(i2[None, :], (q, len(i2)))
            valid = (cand1 >= p_lo[:, None]) & (cand1 <= p_hi[:, None])
            valid &= (cand2 >= d_lo[:, None]) & (cand2 <= d_hi[:, None])
            ok_c = valid
        else:
            # the pickup alone and the delivery alone rank the gaps
            gp, vp = _window(p_lo, np.minimum(p_hi, d_hi - 1))
            alone_p = insert_one(tm, self.p, gp, *pcol)
            ok_p = vp & alone_p.ok & np.all(tm.load[gp] + dem[:, None, :] <= cap, axis=2)
            c_p = price(alone_p.duration, alone_p.added_distance, ok_p)
            gd, vd = _window(np.maximum(d_lo, p_lo + 1), d_hi)
            alone_d = insert_one(tm, self.p, gd, *dcol)
            c_d = price(alone_d.duration, alone_d.added_distance, vd & alone_d.ok)
            kp = min(PAIR_CANDIDATES, gp.shape[1])
            kd = min(PAIR_CANDIDATES, gd.shape[1])
            # (ties to the earlier gap: np.argpartition's differ from CPU to CPU, solvers.select)
            top_p = np.take_along_axis(gp, smallest(c_p, kp), axis=1)
            top_d = np.take_along_axis(gd, smallest(c_d, kd), axis=1)
            # best pickup before each top delivery gap, best delivery after each pickup gap
            wp, wd = gp.shape[1], gd.shape[1]
            idx_p = np.broadcast_to(np.arange(wp)[None, :], c_p.shape)
            pre_min = np.minimum.accumulate(c_p, axis=1)
            pre_arg = np.maximum.accumulate(np.where(c_p <= pre_min, idx_p, 0), axis=1)
            rev = c_d[:, ::-1]
            idx_d = np.broadcast_to(np.arange(wd)[None, :], c_d.shape)
            suf_min = np.minimum.accumulate(rev, axis=1)
            suf_arg = (
                (wd - 1) - np.maximum.accumulate(np.where(rev <= suf_min, idx_d, 0), axis=1)
            )[:, ::-1]
            at_p = np.clip(top_d - 1 - gp[:, :1], 0, wp - 1)
            before = gp[rows[:, None], pre_arg[rows[:, None], at_p]]
            at_d = np.clip(top_p + 1 - gd[:, :1], 0, wd - 1)
            after = gd[rows[:, None], suf_arg[rows[:, None], at_d]]
            cand1 = np.concatenate([np.repeat(top_p, kd, axis=1), before, top_p], axis=1)
            cand2 = np.concatenate([np.tile(top_d, (1, kp)), top_d, after], axis=1)
            ok_c = np.concatenate(
                [
                    np.repeat(
                        np.take_along_axis(c_p, np.clip(top_p - gp[:, :1], 0, wp - 1), 1) < INF,
                        kd,
                        axis=1,
                    )
                    & np.tile(
                        np.take_along_axis(c_d, np.clip(top_d - gd[:, :1], 0, wd - 1), 1) < INF,
                        (1, kp),
                    ),
                    np.ones(before.shape, dtype=bool),
                    np.ones(after.shape, dtype=bool),
                ],
                axis=1,
            )
        ok_c = ok_c & (cand1 < cand2)
        cand1 = np.where(ok_c, cand1, 0)
        cand2 = np.where(ok_c, cand2, 1)
        pair = insert_pair(tm, self.p, cand1, cand2, pcol, dcol)
        ok2 = ok_c & pair.ok & load_ok_range(tm, cand1, cand2, dem[:, None, :], cap)
        c_pair = price(pair.duration, pair.added_distance, ok2)
        j = np.argmin(c_pair, axis=1)
        better = c_pair[rows, j] < cost
        cost = np.where(better, c_pair[rows, j], cost)
        b1 = np.where(better, cand1[rows, j], b1)
        b2 = np.where(better, cand2[rows, j], b2)
        return cost, b1, b2

    def _apply(self, col: _Col, oi: int, a1: int, a2: int) -> list[int]:
        """The column's task sequence with order ``oi`` inserted at gaps ``a1`` (/ ``a2``)."""
        info = self.p.orders[oi]
        cut = col.tm.task_position()
        seq = col.seq
        if info.pickup is None:
            i = int(cut[a1])
            return [*seq[:i], info.delivery, *seq[i:]]
        i, j = int(cut[a1]), int(cut[a2])
        if a1 == a2:
            return [*seq[:i], info.pickup, info.delivery, *seq[i:]]
        return [*seq[:i], info.pickup, *seq[i:j], info.delivery, *seq[j:]]

    # ------------------------------------------------------------------ neighbours
    def _near(self, oi: int) -> I64:
        """The orders nearest to order ``oi``: travel between deliveries, window distance."""
        dur = self.p.duration
        dn, de, dl = self.d[0], self.d[1], self.d[2]
        k = min(NEIGHBOURS, self.n - 1)
        lo = np.maximum(de, de[oi])
        hi = np.minimum(dl, dl[oi])
        m = dur[dn[oi], dn] + dur[dn, dn[oi]] + np.maximum(lo - hi, 0)
        m[oi] = np.iinfo(np.int64).max
        return smallest(m, k)  # ties to the lower index, the same on every CPU

    # ------------------------------------------------------------------ main loop
    def build(self) -> tuple[dict[int, list[int]], list[int]]:
        """Routes (vehicle -> task sequence) and the orders left unrouted.

        When mandatory orders of different priorities do not all fit, the construction runs
        again inserting the higher priorities first, and the plan that leaves out the least
        priority weight (:attr:`~solvers.routing.problem.OrderInfo.drop_weight`), then the
        cheaper, is kept.

        Where a one-break vehicle's route could take its break at the start before departure
        (while it waits for an order created after the break's window opens), a construction
        with the breaks on the road comes first, and a second one inserts the orders it left
        out into its routes with that break too: allowed from the start, it made routes leave
        late for late orders (a break before departure costs no time), and as a route has one
        trip the earlier orders were missed (fewer served than with the breaks on the road).
        """
        if self.break_first is None:
            return self._build_in_two()
        routes, left = self._build()
        p = self.p
        if (
            self.by_priority
            or self.timed_out
            or self.past_deadline()
            or not p.has_priorities
            or all(p.orders[o].penalty is not None for o in left)
        ):
            return routes, left
        ranked = self._phase(
            self.todo, self.initial, 0.0, break_first=self.break_first, by_priority=True
        )
        other, other_left = ranked.build()
        self.step_s = ranked.step_s  # (its plan or this one's: the clock's longest step)
        if not ranked.timed_out and self._score(other, other_left) < self._score(routes, left):
            self.routed_orders = ranked.routed_orders
            return other, other_left
        return routes, left

    def _build_in_two(self) -> tuple[dict[int, list[int]], list[int]]:
        """The breaks on the road first, then the orders left out with breaks before
        departure too (see :meth:`build`); one construction where no break can be taken so."""
        if not self._may_break_first():
            self.break_first = True
            return self.build()
        first = self._phase(self.todo, self.initial, self.grace_s, break_first=False)
        routes, left = first.build()
        self._took(first)
        if not left or first.timed_out or self.past_deadline():
            return routes, left
        second = self._phase(left, routes, 0.0, break_first=True)
        out = second.build()
        self._took(second)
        return out

    def _phase(
        self,
        orders: Sequence[int],
        initial: Mapping[int, Sequence[int]],
        grace_s: float,
        *,
        break_first: bool | None,
        by_priority: bool | None = None,
        vehicles: set[int] | None = None,
    ) -> GreedyBuilder:
        """A construction of ``orders`` into ``initial`` with this one's deadline, the end of
        its grace (:attr:`grace_end`), reserve and clock's longest step, and its vehicles
        and priority rule unless given (``break_first``: see :attr:`break_first`)."""
        out = GreedyBuilder(
            self.p,
            orders=orders,
            initial=initial,
            deadline=self.deadline,
            vehicles=sorted(self.allowed if vehicles is None else vehicles),
            grace_s=grace_s,
            by_priority=self.by_priority if by_priority is None else by_priority,
            reserve_per_order_s=self.reserve_per_order_s,
            grace_end=self.grace_end,
            break_first=break_first,
        )
        out.step_s = self.step_s
        return out

    def _took(self, phase: GreedyBuilder) -> None:
        """Take over the clock's state of a construction this one ran (:meth:`_phase`)."""
        self.step_s = phase.step_s
        self.routed_orders = phase.routed_orders
        self.timed_out = phase.timed_out

    def _may_break_first(self) -> bool:
        """Whether some one-break vehicle allowed could take its break at the start before
        departure: an order is created after the break's window opens (and the shift starts)."""
        p = self.p
        latest = int(p.arrays.release.max(initial=0))
        for v in self.allowed:
            veh = p.vehicles[v]
            if len(veh.breaks) == 1:
                lo, hi, _ = veh.breaks[0]
                start = max(veh.shift[0], lo)
                if start <= hi and latest > start:
                    return True
        return False

    def past_deadline(self, now: float | None = None) -> bool:
        """Whether the deadline has passed (at ``now``, a ``time.perf_counter()`` value; by
        default the clock's), on a problem that looks at it (not :func:`always_completes`):
        brought forward by :attr:`reserve_per_order_s` per order routed and by the longest
        step so far (:attr:`step_s`)."""
        return self._past(self.deadline, now)

    def _past(self, deadline: float | None, now: float | None = None) -> bool:
        """Whether ``deadline`` has passed, brought forward as in :meth:`past_deadline`."""
        if deadline is None or self.whole:
            return False
        end = deadline - self.reserve_per_order_s * self.routed_orders - self.step_s
        return (time.perf_counter() if now is None else now) > end

    def _stopped(self, cpu_from: float) -> bool:
        """Whether a construction that has its grace once its thread's CPU clock reads
        ``cpu_from`` stops now: past its deadline (less the longest step since the last
        look, :attr:`step_s`), or cancelled (:mod:`solvers.cancel`: as at the deadline), and
        its grace had, or ended by :attr:`grace_end`."""
        now = time.perf_counter()
        if self._looked is not None and now - self._looked > self.step_s:
            self.step_s = now - self._looked
        self._looked = now
        return (self.past_deadline(now) or cancelled()) and (
            time.thread_time() >= cpu_from or self._past(self.grace_end, now)
        )

    def _score(self, routes: Mapping[int, Sequence[int]], left: Sequence[int]) -> tuple[int, int]:
        """(drop weight of the mandatory orders left out, cost incl. optional penalties)."""
        p = self.p
        served = {p.tasks[t].order for seq in routes.values() for t in seq}
        missing, cost = left_out(p, served)  # a split order's penalty once
        for v, seq in routes.items():
            veh = p.vehicles[v]
            tm = route_timing(p, v, list(seq))
            cost += (
                veh.fixed_cost
                + veh.unit_distance_cost * tm.distance
                + veh.unit_duration_cost * tm.duration
            )
        return missing, int(cost)

    def _build(self) -> tuple[dict[int, list[int]], list[int]]:
        """One cheapest-insertion construction (see the module docstring)."""
        cpu_from = time.thread_time() + self.grace_s  # the stop waits for this CPU time
        p = self.p
        n = self.n
        routed = np.ones(n, dtype=bool)
        routed[self.todo] = False
        for seq in self.initial.values():
            for t in seq:
                routed[p.tasks[t].order] = True
        cols: list[_Col] = [self._column(v, list(s)) for v, s in sorted(self.initial.items())]
        free: dict[tuple[object, ...], list[int]] = {}
        for vi, veh in enumerate(p.vehicles):
            if vi not in self.initial and vi in self.allowed:
                free.setdefault(veh.type_key, []).append(vi)
        for type_key in free:
            cols.append(self._column(free[type_key].pop(0), []))
        if not cols:  # no route and no vehicle to open one (e.g. all dropped by _prune)
            return {}, [int(o) for o in np.flatnonzero(~routed)]
        # the price arrays: a row per order to insert (``local``: its row), a column per route;
        # sized for every route the construction can open at once (the number of vehicles it
        # may use, at most one more per order): doubling them as routes opened took 0.75-0.88
        # s at the 5,553rd insertion of 10,000 orders, with no look at the clock
        todo = np.flatnonzero(~routed)
        local = np.full(n, -1, dtype=np.int64)
        local[todo] = np.arange(len(todo))
        width = _price_width(len(todo), len(cols), sum(map(len, free.values())))
        self.routed_orders = n - len(todo)
        if self.past_deadline():
            # it stops after its grace, most likely before opening a route: room for those
            # open (mapping the arrays for every route took most of the 0.26-0.34 s of such a
            # construction at 10,000 orders, the first of a process; 0.07 s without)
            width = min(width, max(16, len(cols)))
        # only the prices are written through: the gaps are read only where priced (and
        # copied with their prices), the versions start at 0; zeros are mapped as written.
        # Gaps and versions (a route's insertions) fit 32 bits: 20 bytes an entry, not 32
        cost = np.full((len(todo), width), INF)
        # gaps and versions column by column (Fortran order): they are written and read a
        # route at a time or one entry at a time, and the first route's column of
        # row-ordered arrays faulted in every page of them (120 MB of zeros at 10,000
        # orders: 0.27-0.5 s with no look at the clock, session 75)
        pos1 = np.zeros((len(todo), width), dtype=np.int32, order="F")
        pos2 = np.zeros((len(todo), width), dtype=np.int32, order="F")
        ver = np.zeros((len(todo), width), dtype=np.int32, order="F")
        full = n <= FULL_UPDATE

        def price(c: int, rows: I64) -> None:
            cc, a1, a2 = self._eval(cols[c], rows)
            at = local[rows]
            cost[at, c] = cc
            pos1[at, c] = a1
            pos2[at, c] = a2
            ver[at, c] = cols[c].version

        halted = False  # stopped while pricing: the loop below stops at once
        for c in range(len(cols)):
            if self._stopped(cpu_from):  # no use pricing on
                halted = True
                break
            price(c, todo)
        row_arg = np.zeros(n, dtype=np.int64)
        row_min = np.full(n, INF)
        if len(todo) and not halted:  # (0.08-0.1 s at 10,000 orders, unused once stopped)
            row_arg[todo] = np.argmin(cost[:, : len(cols)], axis=1)
            row_min[todo] = cost[np.arange(len(todo)), row_arg[todo]]
        fixed = np.zeros(width)
        fixed[: len(cols)] = [p.vehicles[c.vehicle].fixed_cost for c in cols]
        is_empty = np.zeros(width, dtype=bool)
        is_empty[: len(cols)] = [c.empty for c in cols]
        mandatory = np.isinf(self.penalty)
        # the jobs of an order split over nodes (p.groups) still to insert go in together: the
        # first by the usual rule, then the others before anything else; a group whose jobs
        # do not all fit, or (optional) cost more than its penalty together, is taken out
        # again and left out whole
        together: dict[int, list[int]] = {}
        for o in np.flatnonzero(~routed):
            g = p.group_of.get(int(o))
            if g is not None:
                together.setdefault(g, []).append(int(o))
        together = {g: members for g, members in together.items() if len(members) > 1}
        blocked = np.zeros(n, dtype=bool)  # groups given up: left out whole
        pending: list[int] = []  # the jobs of the group being inserted still to insert
        placed: list[int] = []  # and those inserted
        before: dict[int, _Col] = {}  # the columns the group changed, as they were
        spent = 0.0  # what the group's insertions cost (a vehicle's fixed cost left out)

        def reargmin(rows: I64) -> None:
            m = len(cols)
            at = local[rows]
            row_arg[rows] = np.argmin(cost[at, :m], axis=1)
            row_min[rows] = cost[at, row_arg[rows]]

        def first(rows: I64, key: F64, limit: int) -> I64:
            """The ``limit`` rows of ``rows`` that come first by ``key``."""
            if len(rows) <= limit:
                return rows
            out: I64 = rows[smallest(key[rows], limit)]  # ties: the lower row, on every CPU
            return out

        later: list[int] = []  # groups given up for their cost, offered once more at the end
        again = False  # the end's offer made

        def give_up(dear: bool = False) -> None:
            """Take the group being inserted out again, and leave it out whole (``dear``: for
            its cost, until the end, when the routes have grown near it)."""
            nonlocal spent
            for c, old in before.items():
                cols[c] = _Col(old.vehicle, old.seq, old.tm, old.confirm, cols[c].version + 1)
                is_empty[c] = old.empty
            group = [*placed, *pending]
            routed[placed] = False
            blocked[group] = True
            if dear and not again:
                later.extend(group)
            row_min[group] = INF
            unrouted = ~routed & ~blocked
            if full:
                rows = np.flatnonzero(unrouted)
            else:
                near = np.zeros(n, dtype=bool)
                for o in placed:
                    near[self._near(o)] = True
                rows = np.flatnonzero(unrouted & near)
            for c in before:
                price(c, rows)
            if len(rows):
                reargmin(rows)
            pending.clear()
            placed.clear()
            before.clear()
            spent = 0.0

        while True:
            self.routed_orders = int(np.count_nonzero(routed))
            if halted or self._stopped(cpu_from):
                if pending:  # a group inserted in part is no plan: out with it
                    give_up()
                self.timed_out = True
                break
            open_rows = ~routed & ~blocked & np.isfinite(row_min)
            if pending:  # the rest of a group before anything else
                key = np.full(n, INF)
                key[pending] = row_min[pending]
                if not np.isfinite(key[pending]).any():
                    give_up()  # a job of it fits nowhere
                    continue
            else:
                due = open_rows & mandatory
                if self.by_priority and due.any():  # the highest priority first
                    due &= self.rank == self.rank[due].max()
                pick = due & self.skilled  # restricted orders first
                if not pick.any():
                    pick = due
                if pick.any():
                    key = np.where(pick, row_min, INF)
                else:
                    with np.errstate(invalid="ignore"):
                        gain = row_min - np.where(is_empty[row_arg], fixed[row_arg], 0.0)
                        gain -= self.penalty
                    key = np.where(open_rows & (gain < 0), gain, INF)
            oi = int(np.argmin(key))
            if not np.isfinite(key[oi]):
                if later:  # the groups given up for their cost, once more
                    again = True
                    rows = np.array(later, dtype=np.int64)
                    later.clear()
                    blocked[rows] = False
                    for c in range(len(cols)):
                        # a look at the clock per route (every route, 0.2 s at 700 routes):
                        # stopped, the loop's look stops the construction
                        if self._stopped(cpu_from):
                            break
                        price(c, rows)
                    reargmin(rows)
                    continue
                break
            c = int(row_arg[oi])
            col = cols[c]
            at_oi = int(local[oi])
            if ver[at_oi, c] != col.version:
                # stale price: re-price it with the stale rows of that route that come first
                # (the route's orders first, then their versions: a column of the price
                # arrays is strided, one page per order at 10,000 orders)
                stale = np.flatnonzero(~routed & (row_arg == c))
                stale = stale[ver[local[stale], c] != col.version]
                batch = first(stale, key, STALE_BATCH)
                if oi not in batch:
                    batch = np.append(batch, oi)
                price(c, batch)
                reargmin(batch)
                continue
            seq = self._apply(col, oi, int(pos1[at_oi, c]), int(pos2[at_oi, c]))
            new = self._column(col.vehicle, seq)
            if not new.tm.feasible or (
                col.confirm
                and schedule_route(p, col.vehicle, seq, exact_breaks=False).violation is not None
            ):
                cost[at_oi, c] = INF
                reargmin(np.array([oi]))
                continue
            cost_oi = float(cost[at_oi, c]) - (fixed[c] if col.empty else 0.0)
            g = p.group_of.get(oi)
            if not pending and g in together:  # the first job of a group: the rest follow
                pending.extend(o for o in together[g] if o != oi)
                spent = 0.0
            if pending or placed:
                before.setdefault(c, col)
                if oi in pending:
                    pending.remove(oi)
                placed.append(oi)
                spent += cost_oi
            was_empty = col.empty
            new.version = col.version + 1
            cols[c] = new
            is_empty[c] = False
            routed[oi] = True
            row_min[oi] = INF
            changed = [c]
            fresh: dict[int, I64] = {}  # per new empty column, the orders to price on it
            if was_empty:
                veh = p.vehicles[col.vehicle]
                pool = free.get(veh.type_key, [])
                if pool:
                    if len(cols) == cost.shape[1]:  # (not when sized at once)
                        cost = np.concatenate([cost, np.full_like(cost, INF)], axis=1)
                        pos1 = np.concatenate([pos1, np.full_like(pos1, -1)], axis=1)
                        pos2 = np.concatenate([pos2, np.full_like(pos2, -1)], axis=1)
                        ver = np.concatenate([ver, np.zeros_like(ver)], axis=1)
                        fixed = np.concatenate([fixed, np.zeros_like(fixed)])
                        is_empty = np.concatenate([is_empty, np.zeros_like(is_empty)])
                    cols.append(self._column(pool.pop(0), []))
                    nc = len(cols) - 1
                    fixed[nc] = p.vehicles[cols[nc].vehicle].fixed_cost
                    is_empty[nc] = True
                    changed.append(nc)
                    # an interchangeable vehicle's empty route prices every order as the
                    # route just filled did while empty: its prices of then are copied (those
                    # made since it was last emptied, see give_up), the others made anew
                    todo_new = np.flatnonzero(~routed & ~blocked)
                    as_then = ver[local[todo_new], c] == col.version
                    if not SHARE_EMPTY_PRICES:
                        as_then[:] = False
                    same = local[todo_new[as_then]]
                    cost[same, nc] = cost[same, c]
                    pos1[same, nc] = pos1[same, c]
                    pos2[same, nc] = pos2[same, c]
                    ver[same, nc] = cols[nc].version
                    fresh[nc] = todo_new[~as_then]
            unrouted = ~routed & ~blocked
            if full:
                rows = np.flatnonzero(unrouted)
            else:
                # the orders near the new one, and the first few whose best was here; the
                # others' prices on this route are stale and re-priced when they come up
                near = np.zeros(n, dtype=bool)
                near[self._near(oi)] = True
                near[pending] = True  # the rest of its group, next (to the same customer)
                was = np.flatnonzero(unrouted & (row_arg == c) & ~near)
                near[first(was, key, STALE_BATCH)] = True
                rows = np.flatnonzero(unrouted & near)
            was_best = rows[row_arg[rows] == c]
            if len(rows):
                price(c, rows)
            for extra in changed[1:]:
                if len(fresh[extra]):
                    price(extra, fresh[extra])
            if len(was_best):
                reargmin(was_best)
            for cc in changed:
                # on the filled route only the orders re-priced can have come cheaper than
                # their best (every other price and best stayed); a new route is all new
                if cc == c and not full:
                    better = rows[cost[local[rows], cc] < row_min[rows]]
                else:
                    better = todo[unrouted[todo] & (cost[:, cc] < row_min[todo])]
                row_arg[better] = cc
                row_min[better] = cost[local[better], cc]
            if placed:
                first_job = self.penalty[placed[0]]
                if not np.isinf(first_job) and spent >= first_job:
                    give_up(dear=True)  # together dearer than the penalty they save
                elif not pending:  # the whole group is in
                    placed.clear()
                    before.clear()
        routes = {col.vehicle: col.seq for col in cols if col.seq}
        left = [int(o) for o in np.flatnonzero(~routed)]
        return self._prune(routes, left, {col.vehicle: col.tm for col in cols if col.seq})

    def _prune(
        self,
        routes: dict[int, list[int]],
        left: list[int],
        timings: Mapping[int, Timing] | None = None,
    ) -> tuple[dict[int, list[int]], list[int]]:
        """Drop routes of optional orders that cost more than the penalties they avoid
        (``timings``: the routes' timings where known, :func:`route_timing`'s)."""
        timings = timings or {}
        p = self.p
        dropped: list[int] = []
        where = {p.tasks[t].order: v for v, seq in routes.items() for t in seq}
        for v, seq in list(routes.items()):
            if v in self.initial:
                continue
            orders = {p.tasks[t].order for t in seq}
            if any(p.orders[o].penalty is None for o in orders):
                continue
            groups = {p.group_of[o] for o in orders if o in p.group_of}
            if any(where.get(m, v) != v for g in groups for m in p.groups[g]):
                continue  # a split order served on other routes too: not this route's to drop
            veh = p.vehicles[v]
            # the construction's own timing of the route: timing every route again after
            # its stop took 0.04-0.08 s at 10,000 orders (300-600 routes), past its deadline
            tm = timings.get(v) or route_timing(p, v, seq)
            total = (
                veh.fixed_cost
                + veh.unit_distance_cost * tm.distance
                + veh.unit_duration_cost * tm.duration
            )
            # a split order's penalty once (its jobs all here), the others' each
            saved = sum(p.orders[o].penalty or 0 for o in orders if o not in p.group_of)
            saved += sum(p.orders[p.groups[g][0]].penalty or 0 for g in groups)
            if total > saved:
                del routes[v]
                dropped.append(v)
                left.extend(orders)
        if dropped and left and not self.timed_out and not self.past_deadline():
            # the other routes (and vehicles) may still take some of those orders (not past
            # the deadline, where one with no grace would stop before its first insertion)
            allowed = self.allowed - set(dropped)
            if routes == self.initial and sorted(left) == sorted(self.todo):
                # this construction ended where it started: the next ones would open as
                # many interchangeable vehicles for the same orders and drop them again,
                # until some type of them runs out; those constructions are skipped
                allowed -= self._same_again(dropped, allowed - set(routes))
            again = self._phase(
                sorted(left), routes, 0.0, break_first=self.break_first, vehicles=allowed
            )
            out = again.build()
            self._took(again)  # its plan is this one's: stopped by the clock, so is this one
            return out
        return routes, sorted(left)

    def _same_again(self, dropped: Sequence[int], idle: set[int]) -> set[int]:
        """The ``idle`` vehicles that constructions repeating one that opened and dropped
        ``dropped`` would open and drop in turn: the lowest of each dropped type, as many
        rounds as every dropped type has vehicles for."""
        p = self.p
        wanted = Counter(p.vehicles[v].type_key for v in dropped)
        spare: dict[tuple[object, ...], list[int]] = {key: [] for key in wanted}
        for v in sorted(idle):
            key = p.vehicles[v].type_key
            if key in spare:
                spare[key].append(v)
        rounds = min(len(spare[key]) // count for key, count in wanted.items())
        return {v for key, count in wanted.items() for v in spare[key][: rounds * count]}


def greedy_routes(
    problem: RoutingProblem,
    initial: Mapping[int, Sequence[int]] | None = None,
    *,
    deadline: float | None = None,
) -> tuple[dict[int, list[int]], list[int]]:
    """Cheapest feasible insertion of every order, starting from ``initial`` routes if given.

    With a ``deadline`` (a ``time.perf_counter()`` value) the construction stops there (once
    it has had its grace, and never on a small problem, see the module docstring) and the
    orders not yet inserted come back as left over.
    """
    return GreedyBuilder(problem, initial=initial, deadline=deadline).build()


__all__ = [
    "ALWAYS_COMPLETE_SIZE",
    "UNLIMITED",
    "GreedyBuilder",
    "always_completes",
    "greedy_routes",
]


class GreedyEngine:
    """The construction heuristic as an engine: deterministic, no search."""

    name = "greedy"

    def unsupported(self, problem: RoutingProblem, settings: EngineSettings) -> str | None:
        """Greedy insertion handles every feature (disruption cost is ignored)."""
        return None

    def min_time_s(self, problem: RoutingProblem) -> float:
        """No set-up: the construction is the whole engine."""
        return 0.0

    def min_start_s(self, problem: RoutingProblem) -> float | None:
        """None: the greedy plan is this engine's start and its answer."""
        return None

    def solve(self, problem: RoutingProblem, settings: EngineSettings) -> EngineResult:
        """Cheapest insertion from the warm-start routes, within the time limit."""
        if settings.seed_routes is not None:
            return EngineResult(routes=settings.seed_routes, detail="cheapest insertion")
        routes, _ = greedy_routes(
            problem, initial=settings.initial or None, deadline=settings.end()
        )
        return EngineResult(routes=routes, detail="cheapest insertion")
