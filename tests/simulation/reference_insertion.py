"""The scalar cheapest-insertion quote as it was before session 53's pruning was ported.

A verbatim copy (only renamed) of main's :func:`simulation.insertion._quote_loops` with the
exact pricing before driver breaks, taken before h1's speed-ups were ported: the pruned quote
must match it bit for bit (pruning may skip work, never change an answer). Session 80 (twin
version 12) priced the way home here as there: at the factor when the courier leaves its last
stop (``cache.steps`` set: the highest factor it may leave at where a detour may make it
leave earlier).

:class:`ExactInsertionReference` is session 55's ``_ExactInsertion`` (verbatim, renamed): the
brute-force forward play of an insertion right before a break, every delivery position played
from the route's node ``i`` on with no bound and no memo (session 56 made the quote's copy
resume plays and skip positions that a bound proves no cheaper).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from simulation.decisions import Quote
from simulation.insertion import (
    EPS,
    INF,
    BreakNodes,
    CostRates,
    FloatArray,
    JobSpec,
    Priced,
    RouteCache,
    Rows,
    _home_ceiling,
    _home_extra,
    _quote_empty,
)


def quote_loops_reference(
    cache: RouteCache,
    job: JobSpec,
    *,
    capacity: FloatArray | Sequence[float],
    duration: NDArray[np.int32],
    distance: NDArray[np.int32],
    rates: CostRates,
    rows: tuple[Rows, Rows] | None = None,
    first_only: bool = False,
) -> Quote:
    """Current main's :func:`simulation.insertion._quote_loops`, before the pruning
    (``first_only``: the positions whose first stop comes right after the anchor, as session
    71 added it)."""
    q = job.demand
    cap: Sequence[float] = capacity.tolist() if isinstance(capacity, np.ndarray) else capacity
    for qk, ck in zip(q, cap, strict=True):
        if qk > ck + EPS:
            return Quote(False, INF, reason="demand exceeds capacity")
    brk = cache.breaks
    # (An insertion right before a break moves the break, which may save time after it.)
    if cache.max_slack + EPS < job.delivery_service and brk is None:
        return Quote(False, INF, reason="no slack left in the route (shift end)")
    loc = cache.loc_list
    m = len(loc) - 2
    if m == 0 and rows is not None:
        return _quote_empty(cache, job, cap=cap, rates=rates, rows=rows)
    big_m = m + 1
    f = cache.factor
    arr = cache.arr_list
    dep = cache.dep_list
    wc = cache.wait_cum_list
    slack_cum = cache.slack_cum_list
    max_delay = cache.max_delay_list
    late_after = cache.late_after_list
    chain = job.chain_loc
    n_chain = len(chain)
    d = job.delivery_loc
    prev = loc[: m + 1]
    nxt = loc[1:]
    k = m + 1
    t_to_p: list[int] = []
    t_from_pr: list[int] = []
    s_to_p: list[int] = []
    s_from_pr: list[int] = []
    chain_t: list[float] = []
    chain_dist = t_pr_d = s_pr_d = 0.0
    if rows is not None:
        dur_rows, dist_rows = rows
        prev_dur = [dur_rows[a] for a in prev]
        prev_dist = [dist_rows[a] for a in prev]
        row_d = dur_rows[d]
        dist_d = dist_rows[d]
        t_to_d = [r[d] for r in prev_dur]
        t_from_d = [row_d[b] for b in nxt]
        s_to_d = [r[d] for r in prev_dist]
        s_from_d = [dist_d[b] for b in nxt]
        s_next = [r[b] for r, b in zip(prev_dist, nxt, strict=True)]
        if chain:
            p1, pr = chain[0], chain[-1]
            row_pr = dur_rows[pr]
            dist_pr = dist_rows[pr]
            t_to_p = [r[p1] for r in prev_dur]
            t_from_pr = [row_pr[b] for b in nxt]
            s_to_p = [r[p1] for r in prev_dist]
            s_from_pr = [dist_pr[b] for b in nxt]
            for e in range(n_chain - 1):
                chain_t.append(float(dur_rows[chain[e]][chain[e + 1]]))
                chain_dist += float(dist_rows[chain[e]][chain[e + 1]])
            t_pr_d = float(row_pr[d])
            s_pr_d = float(dist_pr[d])
    else:
        prev_a = np.asarray(prev, dtype=np.int64)
        nxt_a = np.asarray(nxt, dtype=np.int64)
        if chain:
            p1, pr = chain[0], chain[-1]
            rows_i = np.concatenate((prev_a, np.full(k, pr), prev_a, np.full(k, d), prev_a))
            cols_i = np.concatenate((np.full(k, p1), nxt_a, np.full(k, d), nxt_a, nxt_a))
        else:
            rows_i = np.concatenate((prev_a, np.full(k, d), prev_a))
            cols_i = np.concatenate((np.full(k, d), nxt_a, nxt_a))
        tt: list[int] = duration[rows_i, cols_i].tolist()
        ss: list[int] = distance[rows_i, cols_i].tolist()
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
            chain_t = [float(duration[chain[e], chain[e + 1]]) for e in range(n_chain - 1)]
            for e in range(n_chain - 1):
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
    fits = [True] * k
    if chain and q:
        cap_eps = [ck + EPS for ck in cap]
        # Float addition is monotone: if the heaviest load of each dimension fits, all do.
        if any(mx + qk > ce for mx, qk, ce in zip(cache.load_max, q, cap_eps, strict=True)):
            fits = [
                all(lr + qk <= ce for lr, qk, ce in zip(row, q, cap_eps, strict=True))
                for row in cache.load_rows
            ]
    best = INF
    best_pos = (-1, -1)
    best_info = (INF, 0.0, 0.0, 0.0)
    # Departure from the pickup chain inserted after node i, and whether every node is open.
    dep_p = [0.0] * k
    chain_ok = [True] * k
    if n_chain == 1:  # the loop below for one pickup
        ce, lim, svc = job.chain_earliest[0], job.latest(0) + EPS, job.chain_service[0]
        for i in range(k):
            t = dep[i] + t_to_p[i] * f
            t = t if t >= ce else ce
            if t > lim:
                chain_ok[i] = False  # the node has closed for good by then
            dep_p[i] = t + svc
    elif chain:
        limits = [job.latest(e) + EPS for e in range(n_chain)]
        for i in range(k):
            t = dep[i] + t_to_p[i] * f
            for e in range(n_chain):
                ce = job.chain_earliest[e]
                t = t if t >= ce else ce
                if t > limits[e]:
                    chain_ok[i] = False
                t = t + job.chain_service[e]
                if e + 1 < n_chain:
                    t = t + chain_t[e] * f
            dep_p[i] = t
    exact = None
    if brk is not None:
        travel = (rows[0], rows[1]) if rows is not None else (duration, distance)
        exact = ExactInsertionReference(cache, brk, job, travel, rates)
    # Case A: delivery right after the pickup chain (or alone when the parcel is on board).
    for i in range(1 if first_only else k):
        if exact is not None and brk is not None and brk.is_break[i + 1]:
            if fits[i]:
                found = exact.evaluate(i, i)
                if found is not None and found[0] < best:
                    best, best_pos, best_info = found[0], (i, i), found[1:]
            continue
        if chain:
            arr_d = dep_p[i] + t_pr_d * f
            dist_a = s_to_p[i] + chain_dist + s_pr_d + s_from_d[i] - s_next[i]
        else:
            arr_d = dep[i] + t_to_d[i] * f
            dist_a = s_to_d[i] + s_from_d[i] - s_next[i]
        if not fits[i] or not chain_ok[i]:
            continue
        start_d = arr_d if arr_d >= e_d else e_d
        if cache.steps is not None and i == m:
            dep_d = start_d + s_d
            delta = dep_d + t_from_d[i] * _home_ceiling(cache, dep_d, dep_d) - arr[i + 1]
        else:
            delta = start_d + s_d + t_from_d[i] * f - arr[i + 1]
        gain = 0.0
        if delta < 0.0:
            gain = -delta
            delta = 0.0
        if delta > max_delay[i + 1] + EPS:
            continue
        end = delta - (total_wait - wc[i])
        if end < 0.0:
            end = 0.0
        if cache.steps is not None and i < m:
            x = _home_extra(cache, end, gain)
            if x > 0.0 and arr[m + 1] + end + x > cache.home_shift_end + EPS:
                continue
            end += x
            if end < 0.0:
                end = 0.0
        late = start_d - l_d
        if late < 0.0:
            late = 0.0
        late += delta * late_after[i + 1]
        # _cost_cents inlined (hot path)
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
        for i in range(1 if first_only else m):
            if not fits[i] or not chain_ok[i]:
                continue
            if exact is not None and brk is not None and brk.is_break[i + 1]:
                # The pickups right before a break (moved to their door): priced exactly.
                for j, found in exact.evaluations(i, m):
                    if j == i:
                        continue  # (case A)
                    if not fits[j]:
                        break
                    if found is not None and found[0] < best:
                        best, best_pos, best_info = found[0], (i, j), found[1:]
                continue
            dist_p = s_to_p[i] + chain_dist + s_from_pr[i] - s_next[i]
            # Session 54: the distance bound no longer skips an i with a delivery right before a
            # break after it (priced exactly: time and lateness may be negative there).
            if km * (dist_p + dd_min[i + 1]) >= best and not (
                brk is not None and any(brk.is_break[i + 2 :])
            ):
                continue
            delta_1 = dep_p[i] + t_from_pr[i] * f - arr[i + 1]
            gain_1 = 0.0
            if delta_1 < 0.0:
                gain_1 = -delta_1
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
                if exact is not None and brk is not None and brk.is_break[j + 1]:
                    found = exact.evaluate(i, j)  # the delivery right before a break
                    if found is not None and found[0] < best:
                        best, best_pos, best_info = found[0], (i, j), found[1:]
                    continue
                if km * (dist_p + dd[j]) >= best:
                    continue
                sd = delta_1 - (wc[j] - wci)
                if sd < 0.0:
                    sd = 0.0
                arr_d = dep[j] + sd + t_to_d[j] * f
                start_d = arr_d if arr_d >= e_d else e_d
                if cache.steps is not None and j == m:
                    dep_d = start_d + s_d
                    fh = _home_ceiling(cache, dep_d - gain_1, dep_d)
                    delta_2 = dep_d + t_from_d[j] * fh - arr[j + 1]
                else:
                    delta_2 = start_d + s_d + t_from_d[j] * f - arr[j + 1]
                gain = gain_1 - delta_2
                if delta_2 < 0.0:
                    delta_2 = 0.0
                if delta_2 > max_delay[j + 1] + EPS:
                    continue
                end = delta_2 - (total_wait - wc[j])
                if end < 0.0:
                    end = 0.0
                if cache.steps is not None and j < m:
                    x = _home_extra(cache, end, gain if gain > 0.0 else 0.0)
                    if x > 0.0 and arr[m + 1] + end + x > cache.home_shift_end + EPS:
                        continue
                    end += x
                    if end < 0.0:
                        end = 0.0
                late = start_d - l_d
                if late < 0.0:
                    late = 0.0
                late += delta_1 * (late_after[i + 1] - late_after[j + 1])
                late += delta_2 * late_after[j + 1]
                dist_b = dist_p + dd[j]
                # _cost_cents inlined (hot path)
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


class ExactInsertionReference:
    """Insertions right before a driver break, priced by playing the changed route forward.

    Such an insertion moves the break to the inserted stop's door (a break is taken where the
    courier is), which changes the leg after the break: the forward-slack formulas, which
    delay the rest of the route by one amount, do not apply there. The new route is played
    from the insertion on until it rejoins the old one, at the first stop that is not a
    break after the delivery: from there a delay is absorbed as the formulas say (an earlier
    arrival is played on to the end). The answer is the change of :func:`route_cost_cents`
    (exact when no stop was late; a late stop's extra lateness from the rejoin on is bounded
    as for the other positions).
    """

    def __init__(
        self,
        cache: RouteCache,
        brk: BreakNodes,
        job: JobSpec,
        travel: tuple[Rows | NDArray[np.int32], Rows | NDArray[np.int32]],
        rates: CostRates,
    ) -> None:
        self.cache = cache
        self.brk = brk
        self.job = job
        self.dur, self.dist = travel
        self.rates = rates
        # The old route's metres from its anchor to each node.
        loc = cache.loc_list
        cum = [0.0]
        for a, b in pairwise(loc):
            cum.append(cum[-1] + float(self.dist[a][b]))
        self._metres = cum

    def _leg(self, a: int, b: int) -> tuple[float, float]:
        return float(self.dur[a][b]) * self.cache.factor, float(self.dist[a][b])

    def evaluate(self, i: int, j: int) -> Priced | None:
        """(cost, delivery start, lateness, extra metres, end delay) of the pickups after node
        ``i`` and the delivery after node ``j`` (``j >= i``), None if infeasible."""
        for jj, found in self.evaluations(i, j):
            if jj == j:
                return found
        return None

    def evaluations(self, i: int, last: int) -> Iterator[tuple[int, Priced | None]]:
        """:meth:`evaluate` of the pickups after node ``i`` with the delivery after each node
        ``j = i..last`` in turn (the route played once up to each ``j``); it stops early when
        no later ``j`` can be feasible."""
        c = self.cache
        job = self.job
        loc = c.loc_list
        t = c.dep_list[i]
        cur = loc[i]
        metres = 0.0
        late = 0.0
        for e, x in enumerate(job.chain_loc):
            dt, dm = self._leg(cur, x)
            metres += dm
            t += dt
            ce = job.chain_earliest[e]
            t = t if t >= ce else ce
            if t > job.latest(e) + EPS:
                return  # the node has closed for good by then
            t += job.chain_service[e]
            cur = x
        for j in range(i, last + 1):
            if j > i:  # the route's own stop j between the pickups and the delivery
                step = self._visit(j, t, cur)
                if step is None:
                    return  # late now: so with every later delivery
                t, cur, extra, dm = step
                late += extra
                metres += dm
            yield j, self._deliver(i, j, t, cur, metres, late)

    def _deliver(
        self, i: int, j: int, t: float, cur: int, metres: float, late: float
    ) -> Priced | None:
        """The delivery after node ``j``, leaving ``cur`` at ``t``, then the rest of the route
        (``metres`` and ``late`` so far, from node ``i`` on)."""
        c = self.cache
        b = self.brk
        job = self.job
        loc = c.loc_list
        m = len(loc) - 2
        d = job.delivery_loc
        dt, dm = self._leg(cur, d)
        metres += dm
        start_d = t + dt
        if start_d < job.delivery_earliest:
            start_d = job.delivery_earliest
        own = start_d - job.delivery_latest
        late += own if own > 0.0 else 0.0
        t = start_d + job.delivery_service
        cur = d
        k = j + 1
        while k <= m and b.is_break[k]:  # breaks after the delivery: taken at its door
            step = self._visit(k, t, cur)
            if step is None:
                return None
            t, cur, extra, dm = step
            late += extra
            metres += dm
            k += 1
        wc = c.wait_cum_list
        while True:  # back on the old route at node k (a stop that is not a break, or home)
            dt, dm = self._leg(cur, loc[k])
            metres += dm
            if c.steps is not None and k == m + 1:  # the way home at the factor then
                dt = float(self.dur[cur][loc[k]]) * _home_ceiling(c, t, t)
            delta = t + dt - c.arr_list[k]
            if delta >= 0.0 or k == m + 1:
                if delta > c.max_delay_list[k] + EPS:
                    return None
                if delta >= 0.0:
                    end = delta - (wc[m + 1] - wc[k - 1])
                    end = end if end > 0.0 else 0.0
                    late += delta * c.late_after_list[k]
                    if c.steps is not None and k <= m:
                        x = _home_extra(c, end, 0.0)
                        if x > 0.0 and c.arr_list[m + 1] + end + x > c.home_shift_end + EPS:
                            return None
                        end += x
                else:
                    end = delta  # home earlier
                break
            step = self._visit(k, t, cur)  # there earlier than before: played on
            assert step is not None  # (an earlier arrival makes no stop late)
            t, cur, extra, _ = step
            late += extra
            k += 1
        metres -= self._metres[k] - self._metres[i]  # the old route's from node i to k
        r = self.rates
        # _cost_cents inlined (as in _quote_loops)
        cost = (
            r.per_km * metres / 1000.0
            + r.per_hour * end / 3600.0
            + r.lateness_per_min * late / 60.0
        )
        return cost, start_d, late, metres, end

    def _visit(self, k: int, t: float, cur: int) -> tuple[float, int, float, float] | None:
        """Serve old node ``k`` after leaving ``cur`` at ``t``: (departure, location, extra
        lateness, metres), None if a stop on time would be late."""
        c = self.cache
        b = self.brk
        here = cur if b.is_break[k] else c.loc_list[k]
        dt, dm = self._leg(cur, here)
        s = t + dt
        if s < b.earliest[k]:
            s = b.earliest[k]
        lk = b.latest[k]
        if s > lk + EPS and c.start_list[k] <= lk + EPS:
            return None  # on time before, late now
        x = s - lk
        extra = (x if x > 0.0 else 0.0) - c.lateness_list[k]
        return s + b.service[k], here, extra, dm
