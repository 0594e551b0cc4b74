"""Route timing in closed form: feasibility and shortest duration of a route, and of insertions.

A route is a list of *items*: the start, visits, breaks, the end. With ``tau[k]`` the start of
service at item ``k`` had the vehicle left at time 0 and never waited (travel and service
only), ``beta[k] = early[k] - tau[k]`` and ``alpha[k] = late[k] - tau[k]``:

- the route is feasible iff ``max(beta[:k+1]) <= alpha[k]`` for every ``k``;
- leaving at ``t0``, service at ``k`` starts at ``tau[k] + max(t0, max(beta[:k+1]))``;
- the shortest duration is ``tau[-1] + max(0, max(beta) - min(alpha))``, leaving at
  ``min(max(beta), min(alpha))`` (the latest departure that does not end later).

Inserting visits into a gap shifts ``tau`` of every later item by the same amount, so ``beta``
and ``alpha`` of an untouched block of items shift by a constant: the feasibility and duration
of an insertion follow in O(1) from prefix/suffix maxima and minima (and, for a pickup and a
delivery in different gaps, range queries on sparse tables over the block between them). This
is the forward/backward time-slack technique in the form of Vidal et al.'s time-window
segments (without time warp). It is exact for single-window tasks; for several windows the
first opening and last closing are used (a relaxation: callers confirm with the scheduler).

The start item opens at the vehicle's shift start or, later, at the route's release (the
largest ``created_s`` of the deliveries it loads at the start, see
:func:`~solvers.routing.problem.route_release`): inserting such a delivery raises the start's
``beta`` to its release, which the evaluators chain in first (``release``).

A break is an item with the break's start window and its duration as service, placed at the
location of the item before it (no travel into it), so travel resumes after the break. Every
array here is int64; the vectorised evaluators take numpy index arrays of any shape.

A break may also be taken at the start *before departure*, while the route waits there for its
release (:func:`~solvers.routing.problem.pre_departure_breaks`: from the shift start, as early
as its window allows, starting before the release): it is then no item, it raises the start's
opening to its end (the departure is the release, the shift start or the break's end, whichever
is latest) and is not part of the route's duration, which runs from the departure. Such a
timing lists it in :attr:`Timing.pre`. Being no item, it costs no time: where it is possible
and the route stays feasible it is never longer than any placement on the road, so
:func:`place_break` and :func:`place_breaks` take it (ties included); a route without a
release (or whose breaks open after it) keeps its breaks on the road, as before.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from solvers.routing.problem import UNLIMITED, RoutingProblem, pre_departure_breaks, route_release

I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]
#: A visit to insert, as (node, early, late, service) arrays that broadcast together.
Visit = tuple[I64, I64, I64, I64]
_NEG = -(2**52)
_POS = 2**52
#: A placement's position for a break taken at the start before departure (see the module
#: docstring).
BEFORE_DEPARTURE = -1


def _sparse(values: I64, op: np.ufunc) -> I64:
    """Sparse table: row ``j`` holds ``op`` over windows of length ``2**j`` (last axis first)."""
    m = values.shape[0]
    levels = [values]
    span = 1
    while 2 * span <= m:
        prev = levels[-1]
        nxt = prev.copy()
        nxt[: m - span] = op(prev[: m - span], prev[span:])
        levels.append(nxt)
        span *= 2
    return np.stack(levels)


def _query(table: I64, lo: I64, hi: I64, op: np.ufunc) -> I64:
    """``op`` over items ``lo..hi`` (inclusive, ``lo <= hi``) from a sparse table."""
    length = hi - lo + 1
    j = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
    result: I64 = op(table[j, lo], table[j, hi - (1 << j) + 1])
    return result


@dataclass
class Timing:
    """Closed-form timing of one route (items: start, visits, breaks, end).

    ``task[k]`` is the task index of item ``k`` (-1 for the start/end, -2 for a break);
    ``break_of[k]`` the index of a break item's break in the vehicle's (sorted)
    ``VehicleInfo.breaks`` (-1 for the other items).
    Gap ``g`` lies between items ``g`` and ``g + 1``; ``nxt[g]`` is the first item after the
    gap that is not a break and ``hb[g]`` says whether item ``g + 1`` is a break.
    """

    vehicle: int
    task: I64
    node: I64
    service: I64
    tau: I64
    beta: I64
    alpha: I64
    load: I64
    pmax_b: I64
    pmin_a: I64
    smax_b: I64
    smin_a: I64
    nxt: I64
    hb: Mask
    leg_t: I64
    leg_d: I64
    free_at: I64
    latest: I64
    break_of: I64
    feasible: bool
    duration: int
    distance: int
    #: (break index, start) of the breaks taken at the start before departure, in order
    pre: tuple[tuple[int, int], ...] = ()
    _tables: tuple[I64, I64, I64] | None = None

    @property
    def num_gaps(self) -> int:
        """Places an item can be inserted (between consecutive items)."""
        return int(self.node.shape[0]) - 1

    @property
    def depart(self) -> int:
        """The latest departure that does not make the route end later."""
        return int(min(self.pmax_b[-1], self.pmin_a[-1]))

    def start_times(self) -> I64:
        """Start of service at every item when leaving at :attr:`depart`."""
        out: I64 = self.tau + np.maximum(self.depart, self.pmax_b)
        return out

    def task_position(self) -> I64:
        """For each gap, how many visits come before it (where it cuts the task sequence)."""
        out: I64 = np.cumsum((self.task >= 0).astype(np.int64))[:-1]
        return out

    def gap_range(self, early: I64, late: I64, service: I64) -> tuple[I64, I64]:
        """First and last gap where a visit with this window could fit (vectorised).

        A gap is out when the item before it cannot be left before the window closes
        (``free_at``), or the item after it must start before the window opens plus the
        service (``latest``); both are non-decreasing along the route, so the gaps left form
        one range (empty when ``first > last``). A necessary condition only.
        """
        last = np.searchsorted(self.free_at[:-1], late, side="right") - 1
        first = np.searchsorted(self.latest[self.nxt], early + service, side="left")
        return first.astype(np.int64), last.astype(np.int64)

    def tables(self) -> tuple[I64, I64, I64]:
        """Sparse tables of max beta, min alpha and max load (per dimension) over items."""
        if self._tables is None:
            self._tables = (
                _sparse(self.beta, np.maximum),
                _sparse(self.alpha, np.minimum),
                _sparse(self.load, np.maximum),
            )
        return self._tables


def build_timing(
    problem: RoutingProblem,
    vehicle: int,
    seq: list[int] | I64,
    break_after: int | None = None,
    placements: Sequence[tuple[int, int]] = (),
) -> Timing:
    """Timing of ``seq`` (task indices) on ``vehicle``, with its single break after visit
    ``break_after`` (``0`` = at the start, ``len(seq)`` = after the last visit) if given, or
    with ``placements``: (position as ``break_after``, index of the vehicle's break) in route
    order (breaks at the same position are taken in the order listed); position ``-1``: at the
    start before departure (:data:`BEFORE_DEPARTURE`; infeasible when the break cannot start
    there while the route waits for its release)."""
    veh = problem.vehicles[vehicle]
    ta = problem.arrays
    seq_a = np.asarray(seq, dtype=np.int64)
    n = seq_a.shape[0]
    if break_after is not None:
        placements = [(break_after, 0)]
    pre_order = [which for pos, which in placements if pos == BEFORE_DEPARTURE]
    placements = [(pos, which) for pos, which in placements if pos != BEFORE_DEPARTURE]
    pre: list[tuple[int, int]] | None = []
    if pre_order:
        release = int(ta.release[seq_a].max()) if n else 0
        pre = pre_departure_breaks(veh, release, pre_order)
    m = n + 2 + len(placements)
    task = np.full(m, -1, dtype=np.int64)
    break_of = np.full(m, -1, dtype=np.int64)
    node = np.empty(m, dtype=np.int64)
    service = np.zeros(m, dtype=np.int64)
    early = np.empty(m, dtype=np.int64)
    late = np.empty(m, dtype=np.int64)
    change = np.zeros((m, problem.dims), dtype=np.int64)
    body = np.arange(1, n + 1)
    brk_items: list[int] = []
    for j, (pos, which) in enumerate(placements):
        body[pos:] += 1
        b = pos + 1 + j
        brk_items.append(b)
        lo, hi, length = veh.breaks[which]
        task[b] = -2
        break_of[b] = which
        service[b] = length
        early[b], late[b] = lo, hi
    task[body] = seq_a
    node[0], node[-1] = veh.start_node, veh.end_node
    node[body] = ta.node[seq_a]
    for b in brk_items:  # in route order: a break after a break is at the same place
        node[b] = node[b - 1]
    service[body] = ta.service[seq_a]
    early[body] = ta.early[seq_a]
    late[body] = ta.late[seq_a]
    early[0] = early[-1] = veh.shift[0]
    if n:  # the route leaves once every delivery it loads at the start exists
        early[0] = max(veh.shift[0], int(ta.release[seq_a].max()))
    if pre:  # and once the breaks it takes there before leaving are over
        k, start = pre[-1]
        early[0] = max(int(early[0]), start + veh.breaks[k][2])
    late[0], late[-1] = veh.start_late, veh.shift[1]
    change[body] = ta.load_change[seq_a]
    travel = problem.duration[node[:-1], node[1:]]
    tau = np.zeros(m, dtype=np.int64)
    np.cumsum(service[:-1] + travel, out=tau[1:])
    beta = early - tau
    alpha = late - tau
    pmax_b = np.maximum.accumulate(beta)
    pmin_a = np.minimum.accumulate(alpha)
    smax_b = np.maximum.accumulate(beta[::-1])[::-1]
    smin_a = np.minimum.accumulate(alpha[::-1])[::-1]
    # load after each item: deliveries from the start are on board from the start
    if n:
        from_depot = problem_from_depot(problem)[seq_a]
        start_load = -change[body][from_depot].sum(axis=0)
    else:
        start_load = np.zeros(problem.dims, dtype=np.int64)
    load = start_load[None, :] + np.cumsum(change, axis=0)
    brk = task == -2
    hb = brk[1:].copy()
    gaps = np.arange(m - 1)
    nxt = gaps + 1 + hb
    nxt = np.minimum(nxt, m - 1)
    leg_t = problem.duration[node[gaps], node[nxt]]
    leg_d = problem.distance[node[gaps], node[nxt]]
    feasible = pre is not None and bool(np.all(pmax_b <= alpha))
    cap = np.asarray(veh.capacity, dtype=np.int64)
    feasible = feasible and bool(np.all(load <= cap[None, :]))
    duration = int(tau[-1] + max(0, int(pmax_b[-1]) - int(pmin_a[-1])))
    distance = int(problem.distance[node[:-1], node[1:]].sum())
    return Timing(
        vehicle=vehicle,
        task=task,
        node=node,
        service=service,
        tau=tau,
        beta=beta,
        alpha=alpha,
        load=load,
        pmax_b=pmax_b,
        pmin_a=pmin_a,
        smax_b=smax_b,
        smin_a=smin_a,
        nxt=nxt,
        hb=hb,
        leg_t=leg_t,
        leg_d=leg_d,
        free_at=tau + pmax_b + service,
        latest=tau + smin_a,
        break_of=break_of,
        feasible=feasible,
        duration=duration,
        distance=distance,
        pre=tuple(pre or ()),
    )


def problem_from_depot(problem: RoutingProblem) -> Mask:
    """Per task: True for a delivery loaded at the start (an order without pickup)."""
    cached: Mask | None = problem.__dict__.get("_from_depot_mask")
    if cached is None:
        cached = np.array(
            [problem.orders[t.order].from_depot for t in problem.tasks], dtype=bool
        ).reshape(len(problem.tasks))
        problem.__dict__["_from_depot_mask"] = cached
    return cached


def visits(problem: RoutingProblem, tasks: I64, column: bool = False) -> Visit:
    """(node, early, late, service) of ``tasks``; as (k, 1) columns if ``column``."""
    ta = problem.arrays
    arrays = (ta.node[tasks], ta.early[tasks], ta.late[tasks], ta.service[tasks])
    if column:
        return (arrays[0][:, None], arrays[1][:, None], arrays[2][:, None], arrays[3][:, None])
    return arrays


def _break_in_each_gap(
    tm: Timing, brk: tuple[int, int, int], max_dur: int | None
) -> tuple[Mask, I64]:
    """Per gap of ``tm``: whether one more break ``(lo, hi, length)`` fits there, and the
    route's duration with it (closed form)."""
    lo, hi, length = brk
    g = np.arange(tm.num_gaps)
    tau_b = tm.tau[g] + tm.service[g]
    ab = hi - tau_b
    rm = tm.pmax_b[g]
    ok = rm <= ab
    rm = np.maximum(rm, lo - tau_b)
    amin = np.minimum(tm.pmin_a[g], ab)
    a_s = tm.smin_a[g + 1] - length
    ok &= rm <= a_s
    rm = np.maximum(rm, tm.smax_b[g + 1] - length)
    amin = np.minimum(amin, a_s)
    dur = tm.tau[-1] + length + np.maximum(0, rm - amin)
    if max_dur is not None:
        ok &= dur <= max_dur
    return ok, dur


def place_break(problem: RoutingProblem, vehicle: int, seq: list[int] | I64) -> Timing:
    """Timing of ``seq`` with the vehicle's single break where the route is shortest.

    Every gap is tried at once (closed form); ties go to the earliest gap. A break that can
    be taken at the start before departure (while the route waits for its release) is taken
    there when the route stays feasible (it is then never longer). If nothing works the
    returned timing has ``feasible=False``.
    """
    base = build_timing(problem, vehicle, seq)
    if not base.feasible:
        return base
    early = _before_departure(problem, vehicle, seq, [(BEFORE_DEPARTURE, 0)])
    if early is not None:
        return early
    return place_break_on_road(problem, vehicle, seq, base)


def place_break_on_road(
    problem: RoutingProblem, vehicle: int, seq: list[int] | I64, base: Timing | None = None
) -> Timing:
    """Timing of ``seq`` with the vehicle's single break on the road where the route is
    shortest, never before departure (``base``: the timing of ``seq`` without breaks, if made).

    :func:`place_break` without its break at the start before departure: ties go to the
    earliest gap; ``feasible=False`` if no gap works.
    """
    if base is None:
        base = build_timing(problem, vehicle, seq)
    if not base.feasible:
        return base
    veh = problem.vehicles[vehicle]
    ok, dur = _break_in_each_gap(base, veh.breaks[0], veh.max_duration_s)
    if not ok.any():
        return dataclasses.replace(base, feasible=False)
    best = int(np.argmin(np.where(ok, dur, _POS)))
    return build_timing(problem, vehicle, seq, break_after=best)


def _before_departure(
    problem: RoutingProblem,
    vehicle: int,
    seq: list[int] | I64,
    placements: Sequence[tuple[int, int]],
) -> Timing | None:
    """The timing with ``placements`` (some at :data:`BEFORE_DEPARTURE`, listed first) when
    those breaks can be taken at the start before departure and the route is feasible within
    the vehicle's maximum duration; None otherwise (without building it when they cannot)."""
    veh = problem.vehicles[vehicle]
    order = [which for pos, which in placements if pos == BEFORE_DEPARTURE]
    if pre_departure_breaks(veh, route_release(problem, list(seq)), order) is None:
        return None
    tm = build_timing(problem, vehicle, seq, placements=placements)
    if not tm.feasible or (veh.max_duration_s is not None and tm.duration > veh.max_duration_s):
        return None
    return tm


#: Most timings :func:`place_breaks` builds for one route (break orders times positions of
#: all breaks but the last, which is placed in closed form); past it the caller places the
#: breaks greedily.
MAX_BREAK_LAYOUTS = 96


def place_breaks(problem: RoutingProblem, vehicle: int, seq: list[int] | I64) -> Timing | None:
    """Timing of ``seq`` with all the vehicle's breaks where the route is shortest (exact).

    Every order of the breaks and every position of all but the last are tried, the last one
    in every gap at once (closed form, as :func:`place_break`). The first breaks of an order
    may also be taken at the start before departure, while the route waits for its release
    (those layouts first: equally short, they win). A timing with ``feasible=False`` when no
    layout works; None when there are more than :data:`MAX_BREAK_LAYOUTS` layouts to try (the
    caller falls back to a heuristic).
    """
    veh = problem.vehicles[vehicle]
    nb = len(veh.breaks)
    n = len(seq)
    layouts = math.factorial(nb) * math.comb(n + nb - 1, nb - 1) if nb else 1
    if layouts > MAX_BREAK_LAYOUTS:
        return None
    base = build_timing(problem, vehicle, seq)
    if not base.feasible or nb == 0:
        return base
    best: tuple[int, list[tuple[int, int]]] | None = None
    release = route_release(problem, list(seq))
    for order in itertools.permutations(range(nb)):
        # every break of the order before departure: the route without breaks, if feasible
        for j in range(nb, 0, -1):
            if pre_departure_breaks(veh, release, order[:j]) is None:
                continue
            pre = [(BEFORE_DEPARTURE, k) for k in order[:j]]
            if j == nb:
                tm = _before_departure(problem, vehicle, seq, pre)
                if tm is not None and (best is None or tm.duration < best[0]):
                    best = (tm.duration, pre)
                continue
            best = _best_layout(problem, vehicle, seq, pre, order[j:], best)
    for order in itertools.permutations(range(nb)):
        best = _best_layout(problem, vehicle, seq, [], order, best)
    if best is None:
        base.feasible = False
        return base
    return build_timing(problem, vehicle, seq, placements=best[1])


def _best_layout(
    problem: RoutingProblem,
    vehicle: int,
    seq: list[int] | I64,
    pre: list[tuple[int, int]],
    order: Sequence[int],
    best: tuple[int, list[tuple[int, int]]] | None,
) -> tuple[int, list[tuple[int, int]]] | None:
    """``best`` (duration, placements), or a strictly shorter layout taking the breaks
    ``pre`` (placed before departure) and then the breaks ``order`` on the road in that order,
    every position of all but the last tried, the last in closed form."""
    n = len(seq)
    veh = problem.vehicles[vehicle]
    max_dur = veh.max_duration_s
    last = order[-1]
    for pos in itertools.combinations_with_replacement(range(n + 1), len(order) - 1):
        fixed = list(zip(pos, order[:-1], strict=True))
        tm = build_timing(problem, vehicle, seq, placements=[*pre, *fixed])
        if not tm.feasible:
            continue
        ok, dur = _break_in_each_gap(tm, veh.breaks[last], max_dur)
        if not ok.any():
            continue
        k = int(np.argmin(np.where(ok, dur, _POS)))
        if best is not None and int(dur[k]) >= best[0]:
            continue
        # gap k lies after item k: the new break follows the fixed breaks among items 1..k
        at = int(tm.task_position()[k])
        before = int((tm.task[1 : k + 1] == -2).sum())
        best = (int(dur[k]), [*pre, *fixed[:before], (at, last), *fixed[before:]])
    return best


def route_timing(problem: RoutingProblem, vehicle: int, seq: list[int] | I64) -> Timing:
    """Timing of ``seq``: with the break placed best for a one-break vehicle, else no breaks.

    Vehicles with several breaks get a timing without them (a relaxation).
    """
    if len(problem.vehicles[vehicle].breaks) == 1:
        return place_break(problem, vehicle, seq)
    return build_timing(problem, vehicle, seq)


# --------------------------------------------------------------------------- insertions
@dataclass
class Insertion:
    """Vectorised outcome of trying insertions: feasible, new duration, distance added."""

    ok: Mask
    duration: I64
    added_distance: I64


def _item_group(
    ok: Mask, rm: I64, amin: I64, b: I64, a: I64, on: Mask | None = None
) -> tuple[Mask, I64, I64]:
    """Chain one more group (its max beta ``b``, min alpha ``a``) where ``on``."""
    if on is None:
        return ok & (rm <= a), np.maximum(rm, b), np.minimum(amin, a)
    return (
        ok & (~on | (rm <= a)),
        np.where(on, np.maximum(rm, b), rm),
        np.where(on, np.minimum(amin, a), amin),
    )


def _prefix(tm: Timing, gap: I64, ok: Mask, release: I64 | None) -> tuple[Mask, I64, I64]:
    """The items up to gap ``gap`` as one group, the start opening no earlier than ``release``
    (the release of a delivery inserted that is loaded at the start; None: none)."""
    rm, amin = tm.pmax_b[gap], tm.pmin_a[gap]
    if release is None:
        return ok, rm, amin
    # the start's beta is its opening (tau = 0): raised to the release, every item (these
    # and, chained after, the later ones) must still be reachable from it
    return ok & (release <= amin), np.maximum(rm, release), amin


def insert_one(
    tm: Timing,
    problem: RoutingProblem,
    gap: I64,
    node: I64,
    early: I64,
    late: I64,
    service: I64,
    release: I64 | None = None,
) -> Insertion:
    """Insert one visit (arrays broadcast together) into gap ``gap``; ``release``: the
    visit's :attr:`~solvers.routing.problem.Task.release` (a delivery loaded at the start)."""
    dur_m, dist_m = problem.duration, problem.distance
    ng = tm.node[gap]
    c = tm.nxt[gap]
    nc = tm.node[c]
    tin = dur_m[ng, node]
    tout = dur_m[node, nc]
    tau_u = tm.tau[gap] + tm.service[gap] + tin
    delta = tin + service + tout - tm.leg_t[gap]
    ok, rm, amin = _prefix(tm, gap, early <= late, release)
    ok, rm, amin = _item_group(ok, rm, amin, early - tau_u, late - tau_u)
    hb = tm.hb[gap]
    if hb.any():
        d1 = tin + service
        ok, rm, amin = _item_group(ok, rm, amin, tm.beta[gap + 1] - d1, tm.alpha[gap + 1] - d1, hb)
    ok, rm, amin = _item_group(ok, rm, amin, tm.smax_b[c] - delta, tm.smin_a[c] - delta)
    duration = tm.tau[-1] + delta + np.maximum(0, rm - amin)
    added = dist_m[ng, node] + dist_m[node, nc] - tm.leg_d[gap]
    return Insertion(ok, duration, added)


def break_release(
    problem: RoutingProblem, vehicle: int, seq: list[int] | I64, release: I64
) -> tuple[Mask, I64] | None:
    """For a one-break vehicle, inserting into ``seq`` deliveries with these ``release``
    times: where the break can then be taken at the start before departure, and the opening of
    the start it gives (the release, or the break's end if later) for :func:`insert_one` on the
    timing of ``seq`` without breaks. None when the vehicle has not exactly one break or it can
    never be taken so."""
    veh = problem.vehicles[vehicle]
    if len(veh.breaks) != 1:
        return None
    lo, hi, length = veh.breaks[0]
    start = max(veh.shift[0], lo)
    if start > hi:
        return None
    seq_a = np.asarray(seq, dtype=np.int64)
    loaded = int(problem.arrays.release[seq_a].max()) if seq_a.size else 0
    return np.maximum(release, loaded) > start, np.maximum(release, start + length)


def insert_pair_same_gap(
    tm: Timing,
    problem: RoutingProblem,
    gap: I64,
    p: Visit,
    d: Visit,
) -> Insertion:
    """Insert a pickup and right after it its delivery into gap ``gap``.

    ``p`` and ``d`` are (node, early, late, service) arrays.
    """
    dur_m, dist_m = problem.duration, problem.distance
    pn, pe, pl, ps = p
    dn, de, dl, ds = d
    ng = tm.node[gap]
    c = tm.nxt[gap]
    nc = tm.node[c]
    tin = dur_m[ng, pn]
    tpd = dur_m[pn, dn]
    tout = dur_m[dn, nc]
    tau_p = tm.tau[gap] + tm.service[gap] + tin
    tau_d = tau_p + ps + tpd
    d1 = tin + ps + tpd + ds
    delta = d1 + tout - tm.leg_t[gap]
    ok = (pe <= pl) & (de <= dl)
    ok, rm, amin = _item_group(ok, tm.pmax_b[gap], tm.pmin_a[gap], pe - tau_p, pl - tau_p)
    ok, rm, amin = _item_group(ok, rm, amin, de - tau_d, dl - tau_d)
    hb = tm.hb[gap]
    if hb.any():
        ok, rm, amin = _item_group(ok, rm, amin, tm.beta[gap + 1] - d1, tm.alpha[gap + 1] - d1, hb)
    ok, rm, amin = _item_group(ok, rm, amin, tm.smax_b[c] - delta, tm.smin_a[c] - delta)
    duration = tm.tau[-1] + delta + np.maximum(0, rm - amin)
    added = dist_m[ng, pn] + dist_m[pn, dn] + dist_m[dn, nc] - tm.leg_d[gap]
    return Insertion(ok, duration, added)


def insert_pair(
    tm: Timing,
    problem: RoutingProblem,
    g1: I64,
    g2: I64,
    p: Visit,
    d: Visit,
) -> Insertion:
    """Insert a pickup into gap ``g1`` and its delivery into a later gap ``g2 > g1``.

    The pickup right before a break with the delivery right after that break is not
    evaluated (reported infeasible); the same visits in one gap are (see
    :func:`insert_pair_same_gap`).
    """
    dur_m, dist_m = problem.duration, problem.distance
    pn, pe, pl, ps = p
    dn, de, dl, ds = d
    tb, ta, _ = tm.tables()
    n1 = tm.node[g1]
    c1 = tm.nxt[g1]
    nc1 = tm.node[c1]
    tin1 = dur_m[n1, pn]
    dp = tin1 + ps + dur_m[pn, nc1] - tm.leg_t[g1]
    tau_p = tm.tau[g1] + tm.service[g1] + tin1
    ok = (g2 >= c1) & (pe <= pl) & (de <= dl)
    ok, rm, amin = _item_group(ok, tm.pmax_b[g1], tm.pmin_a[g1], pe - tau_p, pl - tau_p)
    hb1 = tm.hb[g1]
    if hb1.any():
        d1 = tin1 + ps
        ok, rm, amin = _item_group(ok, rm, amin, tm.beta[g1 + 1] - d1, tm.alpha[g1 + 1] - d1, hb1)
    lo = np.minimum(c1, g2)
    mid_b = _query(tb, lo, g2, np.maximum) - dp
    mid_a = _query(ta, lo, g2, np.minimum) - dp
    ok, rm, amin = _item_group(ok, rm, amin, mid_b, mid_a)
    n2 = tm.node[g2]
    c2 = tm.nxt[g2]
    nc2 = tm.node[c2]
    tin2 = dur_m[n2, dn]
    tau_d = tm.tau[g2] + dp + tm.service[g2] + tin2
    dd = tin2 + ds + dur_m[dn, nc2] - tm.leg_t[g2]
    ok, rm, amin = _item_group(ok, rm, amin, de - tau_d, dl - tau_d)
    hb2 = tm.hb[g2]
    if hb2.any():
        d2 = dp + tin2 + ds
        ok, rm, amin = _item_group(ok, rm, amin, tm.beta[g2 + 1] - d2, tm.alpha[g2 + 1] - d2, hb2)
    shift = dp + dd
    ok, rm, amin = _item_group(ok, rm, amin, tm.smax_b[c2] - shift, tm.smin_a[c2] - shift)
    duration = tm.tau[-1] + shift + np.maximum(0, rm - amin)
    added = (
        dist_m[n1, pn]
        + dist_m[pn, nc1]
        - tm.leg_d[g1]
        + dist_m[n2, dn]
        + dist_m[dn, nc2]
        - tm.leg_d[g2]
    )
    return Insertion(ok, duration, added)


def load_ok_range(tm: Timing, lo: I64, hi: I64, demand: I64, capacity: I64) -> Mask:
    """True where the load on items ``lo..hi`` plus ``demand`` stays within ``capacity``.

    ``lo``/``hi`` have shape S, ``demand`` shape S + (dims,) (or broadcastable).
    """
    _, _, tl = tm.tables()
    peak = _query(tl, lo, hi, np.maximum)  # S + (dims,)
    out: Mask = np.all(peak + demand <= capacity, axis=-1)
    return out


__all__ = [
    "BEFORE_DEPARTURE",
    "UNLIMITED",
    "Insertion",
    "Timing",
    "Visit",
    "break_release",
    "build_timing",
    "insert_one",
    "insert_pair",
    "insert_pair_same_gap",
    "load_ok_range",
    "place_break",
    "place_break_on_road",
    "place_breaks",
    "route_timing",
    "visits",
]
