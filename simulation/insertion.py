"""Cheapest feasible insertion of a pickup-and-delivery job into a courier's route.

A :class:`RouteCache` holds one courier's remaining route as arrays: node 0 is the *anchor*
(the stop the courier is committed to, or where it stands idle) with the time it will be free,
nodes ``1..m`` the uncommitted stops, node ``m+1`` the way home (latest = shift end).

Feasibility follows Savelsbergh's forward-slack idea: an insertion may not make any stop that
is now on time late, nor make a late stop later (soft windows stay soft for the new order
only); waiting time absorbs delay, so the start delay at stop ``k`` caused by an arrival delay
``d`` at stop ``i+1`` is ``max(0, d - (W[k] - W[i]))`` with ``W`` the cumulative waiting time.
That makes every test O(1) per position pair, and the whole (pickup, delivery) position matrix
is evaluated with a handful of numpy operations.

Costs are in cents: ``cost_per_km x extra metres / 1000 + cost_per_hour x extra route time /
3600 + lateness_cents_per_min x lateness of the new order / 60 (+ the vehicle's fixed cost if
it is unused)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulation.decisions import Quote

INF = math.inf
EPS = 1e-6

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class RouteCache:
    """Planned timing of one courier's remaining route (see the module docstring)."""

    loc: IntArray
    arr: FloatArray
    start: FloatArray
    dep: FloatArray
    wait_cum: FloatArray
    slack_cum: FloatArray
    max_arrival_delay: FloatArray
    load: FloatArray
    lateness: FloatArray
    late_after: FloatArray
    factor: float
    lists: tuple[list[float], ...] = ()

    @property
    def max_slack(self) -> float:
        """Largest arrival delay any position of the route can absorb."""
        return float(self.max_arrival_delay[1:].max())

    def as_lists(self) -> tuple[list[float], ...]:
        """(arr, dep, wait_cum, slack_cum, max_arrival_delay) as Python lists (cached)."""
        if not self.lists:
            object.__setattr__(
                self,
                "lists",
                (
                    self.arr.tolist(),
                    self.dep.tolist(),
                    self.wait_cum.tolist(),
                    self.slack_cum.tolist(),
                    self.max_arrival_delay.tolist(),
                    self.late_after.tolist(),
                ),
            )
        return self.lists

    @property
    def num_stops(self) -> int:
        """Uncommitted stops (excluding anchor and home)."""
        return int(self.loc.shape[0]) - 2

    @property
    def end_s(self) -> float:
        """Planned arrival home."""
        return float(self.arr[-1])

    @property
    def t0(self) -> float:
        """When the courier is free at its anchor."""
        return float(self.dep[0])


def build_route_cache(
    *,
    anchor_loc: int,
    t0: float,
    stop_loc: Sequence[int],
    earliest: Sequence[float],
    latest: Sequence[float],
    service: Sequence[float],
    load_delta: Sequence[Sequence[float]],
    load0: Sequence[float],
    end_loc: int,
    shift_end_s: float,
    duration: NDArray[np.int32],
    factor: float,
) -> RouteCache:
    """Forward pass over the remaining stops (expected times, no noise)."""
    m = len(stop_loc)
    locs = [anchor_loc, *stop_loc, end_loc]
    arr = [t0] * (m + 2)
    start = [t0] * (m + 2)
    dep = [t0] * (m + 2)
    lat = [INF] * (m + 2)
    prev = anchor_loc
    t = t0
    for k in range(m):
        loc = stop_loc[k]
        a = t + float(duration[prev, loc]) * factor
        s = a if a >= earliest[k] else earliest[k]
        arr[k + 1] = a
        start[k + 1] = s
        t = s + service[k]
        dep[k + 1] = t
        lat[k + 1] = latest[k]
        prev = loc
    a = t + float(duration[prev, end_loc]) * factor
    arr[m + 1] = start[m + 1] = dep[m + 1] = a
    lat[m + 1] = shift_end_s
    arr_a = np.asarray(arr)
    start_a = np.asarray(start)
    lat_a = np.asarray(lat)
    wait_cum = np.cumsum(start_a - arr_a)
    slack = np.maximum(lat_a, start_a) - start_a
    # Stops already late may be delayed further at a price (see quote_insertion); stops on
    # time may not become late; the way home may not pass the shift end.
    late = start_a > lat_a + EPS
    late[-1] = False
    slack[late] = INF
    slack[0] = INF
    late_after = np.cumsum(late[::-1])[::-1].astype(np.float64)
    slack_cum = slack + wait_cum
    suffix = np.minimum.accumulate(slack_cum[::-1])[::-1]
    max_delay = np.empty(m + 2)
    max_delay[0] = INF
    max_delay[1:] = suffix[1:] - wait_cum[:-1]
    dims = len(load0)
    load = np.empty((m + 1, dims))
    load[0] = load0
    if m:
        load[1:] = np.asarray(load0) + np.cumsum(np.asarray(load_delta, dtype=float), axis=0)
    lateness = np.maximum(0.0, start_a - lat_a)
    lateness[-1] = 0.0
    return RouteCache(
        loc=np.asarray(locs, dtype=np.int64),
        arr=arr_a,
        start=start_a,
        dep=np.asarray(dep),
        wait_cum=wait_cum,
        slack_cum=slack_cum,
        max_arrival_delay=max_delay,
        load=load,
        lateness=lateness,
        late_after=late_after,
        factor=factor,
    )


@dataclass(frozen=True)
class JobSpec:
    """A pickup chain (one or more pickups done back to back) followed by a delivery.

    ``chain_latest[e]`` is the latest start of pickup ``e`` (a node that closes for good loses
    its parcels); it is a hard limit, unlike the delivery's soft ``delivery_latest``. Empty:
    no limit.
    """

    chain_loc: tuple[int, ...]
    chain_earliest: tuple[float, ...]
    chain_service: tuple[float, ...]
    delivery_loc: int
    delivery_earliest: float
    delivery_latest: float
    delivery_service: float
    demand: tuple[float, ...]
    chain_latest: tuple[float, ...] = ()

    def latest(self, e: int) -> float:
        """Latest start of pickup ``e`` of the chain."""
        return self.chain_latest[e] if self.chain_latest else INF


@dataclass(frozen=True)
class CostRates:
    """Prices of one courier plus the lateness price (cents)."""

    per_km: float
    per_hour: float
    lateness_per_min: float
    fixed: float = 0.0


#: Routes with at most this many uncommitted stops are quoted by the pure-Python loops.
SMALL_ROUTE = 10_000


def quote_insertion(
    cache: RouteCache,
    job: JobSpec,
    *,
    capacity: FloatArray,
    duration: NDArray[np.int32],
    distance: NDArray[np.int32],
    rates: CostRates,
) -> Quote:
    """Best feasible (pickup, delivery) positions for ``job`` in the route, with its cost.

    Short routes use scalar loops with early exits, long ones numpy over all position pairs;
    both give the same answer (ties go to the first position in (case, i, j) order).
    """
    if cache.loc.shape[0] - 2 <= SMALL_ROUTE:
        return _quote_loops(
            cache, job, capacity=capacity, duration=duration, distance=distance, rates=rates
        )
    return _quote_numpy(
        cache, job, capacity=capacity, duration=duration, distance=distance, rates=rates
    )


def _quote_loops(
    cache: RouteCache,
    job: JobSpec,
    *,
    capacity: FloatArray,
    duration: NDArray[np.int32],
    distance: NDArray[np.int32],
    rates: CostRates,
) -> Quote:
    """Scalar version of :func:`_quote_numpy` (fast for short routes)."""
    q = job.demand
    cap = capacity.tolist()
    if any(qk > ck + EPS for qk, ck in zip(q, cap, strict=True)):
        return Quote(False, INF, reason="demand exceeds capacity")
    if cache.max_slack + EPS < job.delivery_service:
        return Quote(False, INF, reason="no slack left in the route (shift end)")
    loc = cache.loc
    m = loc.shape[0] - 2
    big_m = m + 1
    f = cache.factor
    arr, dep, wc, slack_cum, max_delay, late_after = cache.as_lists()
    chain = job.chain_loc
    d = job.delivery_loc
    prev = loc[: m + 1]
    nxt = loc[1:]
    k = m + 1
    if chain:
        p1, pr = chain[0], chain[-1]
        rows = np.concatenate((prev, np.full(k, pr), prev, np.full(k, d), prev))
        cols = np.concatenate((np.full(k, p1), nxt, np.full(k, d), nxt, nxt))
    else:
        p1 = pr = -1
        rows = np.concatenate((prev, np.full(k, d), prev))
        cols = np.concatenate((np.full(k, d), nxt, nxt))
    tt = duration[rows, cols].tolist()
    ss = distance[rows, cols].tolist()
    if chain:
        t_to_p, t_from_pr, t_to_d, t_from_d = (
            tt[:k],
            tt[k : 2 * k],
            tt[2 * k : 3 * k],
            tt[3 * k : 4 * k],
        )
        s_to_p, s_from_pr, s_to_d, s_from_d = (
            ss[:k],
            ss[k : 2 * k],
            ss[2 * k : 3 * k],
            ss[3 * k : 4 * k],
        )
        s_next = ss[4 * k :]
        chain_t = [float(duration[chain[e], chain[e + 1]]) for e in range(len(chain) - 1)]
        chain_dist = 0.0
        for e in range(len(chain) - 1):
            chain_dist += float(distance[chain[e], chain[e + 1]])
        t_pr_d = float(duration[pr, d])
        s_pr_d = float(distance[pr, d])
    else:
        t_to_d, t_from_d, s_next = tt[:k], tt[k : 2 * k], ss[2 * k :]
        s_to_d, s_from_d = ss[:k], ss[k : 2 * k]
    e_d = job.delivery_earliest
    l_d = job.delivery_latest
    s_d = job.delivery_service
    per_km = rates.per_km
    per_hour = rates.per_hour
    per_min = rates.lateness_per_min
    total_wait = wc[big_m]
    if chain and q:
        fits = np.all(cache.load + np.asarray(q) <= capacity + EPS, axis=1).tolist()
    else:
        fits = [True] * k
    best = INF
    best_pos = (-1, -1)
    best_info = (INF, 0.0, 0.0, 0.0)
    dep_p = [0.0] * k
    chain_ok = [True] * k
    limits = [job.latest(e) + EPS for e in range(len(chain))]
    # Case A: delivery right after the pickup chain (or alone when the parcel is on board).
    for i in range(k):
        if chain:
            t = dep[i] + t_to_p[i] * f
            for e in range(len(chain)):
                ce = job.chain_earliest[e]
                t = t if t >= ce else ce
                if t > limits[e]:
                    chain_ok[i] = False  # the node has closed for good by then
                t = t + job.chain_service[e]
                if e + 1 < len(chain):
                    t = t + chain_t[e] * f
            dep_p[i] = t
            arr_d = t + t_pr_d * f
            dist_a = s_to_p[i] + chain_dist + s_pr_d + s_from_d[i] - s_next[i]
        else:
            arr_d = dep[i] + t_to_d[i] * f
            dist_a = s_to_d[i] + s_from_d[i] - s_next[i]
        if not fits[i] or not chain_ok[i]:
            continue
        start_d = arr_d if arr_d >= e_d else e_d
        delta = start_d + s_d + t_from_d[i] * f - arr[i + 1]
        if delta < 0.0:
            delta = 0.0
        if delta > max_delay[i + 1] + EPS:
            continue
        end = delta - (total_wait - wc[i])
        if end < 0.0:
            end = 0.0
        late = start_d - l_d
        if late < 0.0:
            late = 0.0
        late += delta * late_after[i + 1]
        cost = per_km * dist_a / 1000.0 + per_hour * end / 3600.0 + per_min * late / 60.0
        if cost < best:
            best = cost
            best_pos = (i, i)
            best_info = (start_d, late, dist_a, end)
    # Case B: pickup after node i, delivery after node j > i.
    if chain and m >= 1:
        # Distance lower bounds: cost(i, j) >= per_km * (dist_p[i] + dd[j]) / 1000.
        dd = [s_to_d[j] + s_from_d[j] - s_next[j] for j in range(k)]
        dd_min = dd[:]
        for j in range(k - 2, -1, -1):
            if dd_min[j + 1] < dd_min[j]:
                dd_min[j] = dd_min[j + 1]
        km = per_km / 1000.0
        for i in range(m):
            if not fits[i] or not chain_ok[i]:
                continue
            dist_p = s_to_p[i] + chain_dist + s_from_pr[i] - s_next[i]
            if km * (dist_p + dd_min[i + 1]) >= best:
                continue
            delta_1 = dep_p[i] + t_from_pr[i] * f - arr[i + 1]
            if delta_1 < 0.0:
                delta_1 = 0.0
            lim = delta_1 + wc[i]
            wci = wc[i]
            seg = INF
            for j in range(i + 1, m + 1):
                sc = slack_cum[j]
                if sc < seg:
                    seg = sc
                if lim > seg + EPS or not fits[j]:
                    break  # later j only tighten both conditions
                if km * (dist_p + dd[j]) >= best:
                    continue
                sd = delta_1 - (wc[j] - wci)
                if sd < 0.0:
                    sd = 0.0
                arr_d = dep[j] + sd + t_to_d[j] * f
                start_d = arr_d if arr_d >= e_d else e_d
                delta_2 = start_d + s_d + t_from_d[j] * f - arr[j + 1]
                if delta_2 < 0.0:
                    delta_2 = 0.0
                if delta_2 > max_delay[j + 1] + EPS:
                    continue
                end = delta_2 - (total_wait - wc[j])
                if end < 0.0:
                    end = 0.0
                late = start_d - l_d
                if late < 0.0:
                    late = 0.0
                late += delta_1 * (late_after[i + 1] - late_after[j + 1])
                late += delta_2 * late_after[j + 1]
                dist_b = dist_p + dd[j]
                cost = per_km * dist_b / 1000.0 + per_hour * end / 3600.0 + per_min * late / 60.0
                if cost < best:
                    best = cost
                    best_pos = (i, j)
                    best_info = (start_d, late, dist_b, end)
    if best == INF:
        return Quote(False, INF, reason="no feasible position (windows, capacity or shift end)")
    return Quote(
        feasible=True,
        cost_delta_cents=best + rates.fixed,
        pickup_after=best_pos[0],
        delivery_after=best_pos[1],
        delivery_start_s=best_info[0],
        lateness_s=best_info[1],
        distance_delta_m=best_info[2],
        end_delay_s=best_info[3],
    )


def _quote_numpy(
    cache: RouteCache,
    job: JobSpec,
    *,
    capacity: FloatArray,
    duration: NDArray[np.int32],
    distance: NDArray[np.int32],
    rates: CostRates,
) -> Quote:
    """Vectorised over all (pickup, delivery) position pairs (fast for long routes)."""
    loc = cache.loc
    m = loc.shape[0] - 2
    f = cache.factor
    dep = cache.dep
    arr = cache.arr
    wc = cache.wait_cum
    if np.any(np.asarray(job.demand) > capacity + EPS):
        return Quote(False, INF, reason="demand exceeds capacity")
    prev = loc[: m + 1]
    nxt = loc[1:]
    d = job.delivery_loc
    # Pickup chain after each node i = 0..m.
    chain = job.chain_loc
    chain_ok = np.ones(m + 1, dtype=bool)
    if chain:
        t = dep[: m + 1] + duration[prev, chain[0]] * f
        chain_dist = 0.0
        for e in range(len(chain)):
            t = np.maximum(t, job.chain_earliest[e])
            chain_ok &= t <= job.latest(e) + EPS
            t = t + job.chain_service[e]
            if e + 1 < len(chain):
                t = t + float(duration[chain[e], chain[e + 1]]) * f
                chain_dist += float(distance[chain[e], chain[e + 1]])
        dep_p = t
        last = chain[-1]
        first_dist = distance[prev, chain[0]].astype(np.float64) + chain_dist
    else:  # parcel already on board: only the delivery is inserted
        dep_p = dep[: m + 1].copy()
        last = -1
        first_dist = np.zeros(m + 1)
    base_next = distance[prev, nxt].astype(np.float64)
    # Case A: delivery right after the pickup chain (j == i).
    if last >= 0:
        arr_d_a = dep_p + float(duration[last, d]) * f
        dist_a = first_dist + float(distance[last, d]) + distance[d, nxt] - base_next
    else:
        arr_d_a = dep_p + duration[prev, d] * f
        dist_a = distance[prev, d] + distance[d, nxt] - base_next
    start_d_a = np.maximum(arr_d_a, job.delivery_earliest)
    delta_a = np.maximum(0.0, start_d_a + job.delivery_service + duration[d, nxt] * f - arr[1:])
    feas_a = (delta_a <= cache.max_arrival_delay[1:] + EPS) & chain_ok
    q = np.asarray(job.demand)
    if q.size and chain:
        feas_a &= np.all(cache.load + q <= capacity + EPS, axis=1)
    end_a = np.maximum(0.0, delta_a - (wc[-1] - wc[: m + 1]))
    late_a = np.maximum(0.0, start_d_a - job.delivery_latest)
    late_a = late_a + delta_a * cache.late_after[1:]
    cost_a = (
        rates.per_km * dist_a / 1000.0
        + rates.per_hour * end_a / 3600.0
        + rates.lateness_per_min * late_a / 60.0
    )
    cost_a = np.where(feas_a, cost_a, INF)
    best_i = int(np.argmin(cost_a))
    best = (float(cost_a[best_i]), best_i, best_i)
    best_start = float(start_d_a[best_i])
    best_late = float(late_a[best_i])
    best_dist = float(dist_a[best_i])
    best_end = float(end_a[best_i])
    if m >= 1 and chain:
        # Case B: pickup after node i, delivery after node j, i < j <= m.
        delta_1 = np.maximum(0.0, dep_p + duration[last, nxt] * f - arr[1:])
        dist_p = first_dist + distance[last, nxt] - base_next
        j_nodes = np.arange(1, m + 1)
        jl = loc[j_nodes]
        jn = loc[j_nodes + 1]
        dist_d = distance[jl, d].astype(np.float64) + distance[d, jn] - distance[jl, jn]
        i_col = np.arange(m + 1)[:, None]
        j_row = j_nodes[None, :]
        upper = j_row > i_col
        # Start delay at node j from the pickup detour.
        sd = np.maximum(0.0, delta_1[:, None] - (wc[None, j_nodes] - wc[: m + 1, None]))
        arr_d = dep[None, j_nodes] + sd + (duration[jl, d] * f)[None, :]
        start_d = np.maximum(arr_d, job.delivery_earliest)
        delta_2 = np.maximum(
            0.0,
            start_d
            + job.delivery_service
            + (duration[d, jn] * f)[None, :]
            - arr[None, j_nodes + 1],
        )
        # Stops between pickup and delivery must absorb delta_1 within their slack.
        seg = np.where(upper, cache.slack_cum[None, j_nodes], INF)
        seg_min = np.minimum.accumulate(seg, axis=1)
        feas = upper & chain_ok[:, None] & (delta_1[:, None] + wc[: m + 1, None] <= seg_min + EPS)
        feas &= delta_2 <= cache.max_arrival_delay[None, j_nodes + 1] + EPS
        if q.size and np.any(np.isfinite(capacity)):
            ld = cache.load  # (m+1, D), load after node k
            all_j = np.arange(m + 1)
            span = np.where(
                (all_j[None, :] >= i_col)[:, :, None], ld[None, :, :], -INF
            )  # (m+1, m+1, D)
            span_max = np.maximum.accumulate(span, axis=1)[:, 1:, :]
            feas &= np.all(span_max + q <= capacity + EPS, axis=2)
        end_b = np.maximum(0.0, delta_2 - (wc[-1] - wc[None, j_nodes]))
        late_b = np.maximum(0.0, start_d - job.delivery_latest)
        la = cache.late_after
        late_b = late_b + delta_1[:, None] * (la[1 : m + 2, None] - la[None, j_nodes + 1])
        late_b = late_b + delta_2 * la[None, j_nodes + 1]
        dist_b = dist_p[:, None] + dist_d[None, :]
        cost_b = (
            rates.per_km * dist_b / 1000.0
            + rates.per_hour * end_b / 3600.0
            + rates.lateness_per_min * late_b / 60.0
        )
        cost_b = np.where(feas, cost_b, INF)
        flat = int(np.argmin(cost_b))
        bi, bj = divmod(flat, m)
        if cost_b[bi, bj] < best[0]:
            best = (float(cost_b[bi, bj]), bi, bj + 1)
            best_start = float(start_d[bi, bj])
            best_late = float(late_b[bi, bj])
            best_dist = float(dist_b[bi, bj])
            best_end = float(end_b[bi, bj])
    if not math.isfinite(best[0]):
        return Quote(False, INF, reason="no feasible position (windows, capacity or shift end)")
    return Quote(
        feasible=True,
        cost_delta_cents=best[0] + rates.fixed,
        pickup_after=best[1],
        delivery_after=best[2],
        delivery_start_s=best_start,
        lateness_s=best_late,
        distance_delta_m=best_dist,
        end_delay_s=best_end,
    )


def route_cost_cents(cache: RouteCache, *, distance: NDArray[np.int32], rates: CostRates) -> float:
    """Planned cost of the remaining route from its anchor: distance, time, lateness."""
    loc = cache.loc
    dist = float(distance[loc[:-1], loc[1:]].sum())
    span = cache.end_s - cache.t0
    return (
        rates.per_km * dist / 1000.0
        + rates.per_hour * span / 3600.0
        + rates.lateness_per_min * float(cache.lateness.sum()) / 60.0
    )
