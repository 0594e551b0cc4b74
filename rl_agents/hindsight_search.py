"""Offline improvement of a day's plan, scored by the twin's own cost.

The twin with noise off replays a plan deterministically, so a day's cost is a function of the
routes (each courier's stops in order and its departure time). :class:`DayModel` computes that
function without SimPy, route by route, with the twin's rules:

- a courier leaves at its departure time; each leg takes ``duration x travel_factor(departure)``;
- a pickup at a node waits for the parcel to be ready and for the node to be open (a node that
  has closed for good loses the parcel); a delivery waits for its window to open, then serves;
- lateness is charged per order at the scenario's rate; distance at the courier's rate per km;
- a courier is paid its fixed cost plus its hourly rate from its first departure until it is
  home: after its last stop it waits until its shift ends or the day closes (the moment the
  last courier finishes), then drives home (no drive and no wait if it is already there);
- an order no route serves pays its penalty.

:func:`improve_day` is a ruin-and-recreate local search over the routes with that evaluator:
remove a few related orders (or a whole route), put each back at its cheapest place (or leave
it out at its penalty), keep the change if the day got cheaper. Departure times are set as
late as they can be without delaying the first stop. The shift end is kept as a hard limit for
the way home (as the online policies' insertion does) and capacity and skills are respected,
so the result is a plan an online dispatcher could in principle have run. The evaluator's
figure is checked by replaying the final plan in the twin (the caller does, and keeps the
replayed cost). Parcel ready times come from the twin and do not depend on dispatching *if*
a replayed plan carries the twin's own allocation (:func:`plan_of` writes it): without one,
the twin ships every line of a planned order from its first pickup node, and ready times move.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scenarios.plan import AllocationLine, Plan, PlannedStop, Route, StopKind
from simulation.decisions import OrderStatus, StopType
from simulation.twin import DispatchSimulator, earliest_service_start_f, lateness
from simulation.world import INF, World

PICK, DROP = 0, 1
#: A stop: (PICK or DROP, order index, node index (-1 for a delivery)).
Stop = tuple[int, int, int]
#: Cents per second of overtime past a shift end, or per unit of excess load (search only).
_HARD = 1.0e4


@dataclass
class RouteEval:
    """A route's cost before the end of the day is known, and what the end depends on."""

    body: float  # fixed + distance (incl. the way home) + lateness + penalties of violations
    first: float  # departure (nan: unused courier)
    finish: float  # departure from the last stop
    loc: int  # location after the last stop
    start: int  # the departure time used
    violation: float  # overtime s + excess load + lost parcels (0 = feasible)


#: Insertion quotes skip delivery places after which the order would be this late (s).
_PRUNE_LATE_S = 7200.0

_EMPTY = RouteEval(0.0, math.nan, math.nan, -1, 0, 0.0)


def _fast_travel_factor(w: World) -> Callable[[float], float]:
    """``w.travel_factor`` as a table lookup (the same numbers), when it is a profile x weather."""
    stoch = w.scenario.stochastic
    if stoch.travel_slowdowns:
        return w.travel_factor
    weather = stoch.travel_factor_at(0.0)
    profile = w.scenario.travel.profile if stoch.use_travel_profile else []
    if not profile:
        return lambda _t: weather
    starts = [float(p.start_s) for p in profile]
    factors = [weather * p.duration_factor for p in profile]
    wrap = factors[-1]

    def tf(t: float) -> float:
        k = bisect_right(starts, t % 86400.0) - 1
        return factors[k] if k >= 0 else wrap

    return tf


class DayModel:
    """The day's data the twin uses to cost a plan, taken from a finished replay of the day."""

    def __init__(self, sim: DispatchSimulator) -> None:
        """Read travel, orders, couriers, parcel ready times from a finished simulator."""
        w: World = sim.world
        self.world = w
        self.dur: list[list[float]] = w.travel.duration_s.tolist()
        self.dist: list[list[float]] = w.travel.distance_m.tolist()
        self.tf: Callable[[float], float] = _fast_travel_factor(w)
        self.node_loc = [n.location for n in w.nodes]
        self.node_avail: list[Callable[[float], float]] = [n.available_from for n in w.nodes]
        self.node_svc = float(sim.params.node_pickup_service_s)
        od = sim.orders
        self.ids = list(od.ids)
        self.o_loc = list(od.location)
        self.o_windows = list(od.windows)
        self.o_service = [float(s) for s in od.service_s]
        self.o_demand = [tuple(float(x) for x in d) for d in od.demand]
        self.o_skills = list(od.skills)
        self.o_penalty = [float(p) for p in od.penalty_cents]
        self.o_nodes: list[tuple[int, ...]] = [
            tuple(n for n in sim.parcel_nodes[o] if n >= 0) for o in range(len(od.ids))
        ]
        self.ready: dict[tuple[int, int], float] = dict(sim._ready_at)
        # the twin's own allocation, written into replayed plans (without one, a plan's first
        # pickup node would ship every line, and parcels would be ready at other times)
        sku_ids = {k: sku for sku, k in w.sku_index.items()}
        self.allocation = [
            AllocationLine(
                order_id=od.ids[o], sku=sku_ids[sku], node_id=w.nodes[n].id, quantity=int(qty)
            )
            for (o, n), lines in sorted(sim._parcel_lines.items())
            for _line, sku, qty, _short in lines
        ]
        status = sim.result().status
        unfilled = [o for o in range(len(od.ids)) if status[o] == OrderStatus.UNFILLED]
        self.const_cents = float(sum(self.o_penalty[o] for o in unfilled))
        self.routable = [
            o
            for o in range(len(od.ids))
            if status[o] != OrderStatus.UNFILLED
            and self.o_nodes[o]
            and all((o, n) in self.ready for n in self.o_nodes[o])
        ]
        self.last_release = max((float(t) for t in od.created_s), default=0.0)
        self.horizon_end = float(w.horizon_end_s)
        self.v_start = list(w.vehicle_start_loc)
        self.v_end = list(w.vehicle_end_loc)
        self.v_shift_start = [float(x) for x in w.shift_start_s]
        self.v_shift_end = [float(x) for x in w.shift_end_s]
        self.v_km = [float(x) for x in w.cost_per_km_cents]
        self.v_hour = [float(x) for x in w.cost_per_hour_cents]
        self.v_fixed = [float(x) for x in w.fixed_cost_cents]
        self.v_cap = [tuple(float(x) for x in row) for row in w.capacity]
        self.v_skills = list(w.vehicle_skills)
        self.late_per_min = float(w.scenario.costs.lateness_cents_per_min)
        self.num_vehicles = w.num_vehicles

    # ------------------------------------------------------------------ routes
    def stop_loc(self, stop: Stop) -> int:
        """Location index of a stop."""
        kind, o, n = stop
        return self.node_loc[n] if kind == PICK else self.o_loc[o]

    def can_serve(self, c: int, o: int) -> bool:
        """Courier ``c`` has the skills order ``o`` needs."""
        return self.o_skills[o] <= self.v_skills[c]

    def _schedule(
        self, c: int, stops: Sequence[Stop], start: float
    ) -> tuple[float, float, float, int, float]:
        """(distance m, lateness cents, finish, last location, violation) from ``start``."""
        dur, dist, tf = self.dur, self.dist, self.tf
        t = start
        loc = self.v_start[c]
        metres = 0.0
        late_cents = 0.0
        violation = 0.0
        cap = self.v_cap[c]
        load = [0.0] * len(cap)
        loaded: set[int] = set()
        carried: dict[int, int] = {}  # parcels on board per order
        handed: dict[int, int] = {}  # parcels handed over per order
        for kind, o, n in stops:
            b = self.node_loc[n] if kind == PICK else self.o_loc[o]
            base = dur[loc][b]
            if base > 0:
                t = t + base * tf(t)
                metres += dist[loc][b]
            loc = b
            if kind == PICK:
                r = self.ready.get((o, n), INF)
                if t < r:
                    t = r
                t = self.node_avail[n](t)
                if t == INF:
                    return metres, late_cents, INF, loc, violation + 1.0e6
                t += self.node_svc
                carried[o] = carried.get(o, 0) + 1
                if o not in loaded:
                    loaded.add(o)
                    for k, x in enumerate(self.o_demand[o]):
                        load[k] += x
                        if load[k] > cap[k] + 1e-9:
                            violation += load[k] - cap[k]
            else:
                windows = self.o_windows[o]
                t0 = earliest_service_start_f(windows, t)
                s = t if t0 is None else t0
                # the twin delivers the order (and measures its lateness) where its last
                # parcel is handed over, maybe after an earlier delivery of another parcel
                # (an order of no node's parcel: at every delivery, as before)
                now = carried.pop(o, 0)
                handed[o] = handed.get(o, 0) + now
                needed = len(self.o_nodes[o])
                if (now or not needed) and handed[o] >= needed:
                    late = lateness(windows, s)
                    if late > 0:
                        late_cents += self.late_per_min * late / 60.0
                if o in loaded:
                    loaded.discard(o)
                    for k, x in enumerate(self.o_demand[o]):
                        load[k] -= x
                t = s + self.o_service[o]
        return metres, late_cents, t, loc, violation

    def auto_start(self, c: int, stops: Sequence[Stop]) -> int:
        """The latest whole-second departure that reaches the first stop no later than from
        the shift start (so nothing after it moves)."""
        s0 = self.v_shift_start[c]
        if not stops:
            return math.ceil(s0)
        first = stops[0]
        b = self.stop_loc(first)
        a = self.v_start[c]
        base = self.dur[a][b]
        t = s0 + base * self.tf(s0) if base > 0 else s0
        if first[0] == PICK:
            need = max(t, self.ready.get((first[1], first[2]), INF))
            need = self.node_avail[first[2]](need)
        else:
            t0 = earliest_service_start_f(self.o_windows[first[1]], t)
            need = t if t0 is None else t0
        if need == INF or need <= t:
            return math.ceil(s0)
        s = need - base * self.tf(need - base) if base > 0 else need
        s = math.floor(s)
        for _ in range(50):  # step back until the first stop is reached in time
            arr = s + base * self.tf(s) if base > 0 else s
            if arr <= need:
                break
            s -= 10
        return int(max(math.ceil(s0), s))

    def eval_route(self, c: int, stops: Sequence[Stop], start: int | None = None) -> RouteEval:
        """Cost of courier ``c`` driving ``stops`` from ``start`` (None: :meth:`auto_start`)."""
        if not stops:
            return _EMPTY
        s = self.auto_start(c, stops) if start is None else start
        metres, late_cents, finish, loc, violation = self._schedule(c, stops, float(s))
        home = self.v_end[c]
        if finish != INF and loc != home:
            metres += self.dist[loc][home]
            back = finish + self.dur[loc][home] * self.tf(finish)
        else:
            back = finish
        if back > self.v_shift_end[c]:
            violation += back - self.v_shift_end[c]
        body = self.v_fixed[c] + self.v_km[c] * metres / 1000.0 + late_cents
        return RouteEval(body, float(s), finish, loc, int(s), violation)

    # ------------------------------------------------------------------ the day
    def close_time(self, evals: Sequence[RouteEval], any_unrouted: bool) -> float:
        """When the twin closes the day (idle couriers go home), INF if it does not."""
        used = [c for c, e in enumerate(evals) if not math.isnan(e.first)]
        last = max((evals[c].finish for c in used), default=-INF)
        floor = max(last, self.last_release)
        if any_unrouted:
            floor = max(floor, self.horizon_end)
        triggers = [self.last_release]
        for c in range(self.num_vehicles):
            e = evals[c]
            if math.isnan(e.first):
                if self.v_shift_start[c] < self.v_shift_end[c]:
                    triggers.append(self.v_shift_start[c])
            elif e.finish < self.v_shift_end[c]:
                triggers.append(e.finish)
        ok = [t for t in triggers if t >= floor]
        return min(ok) if ok else INF

    def tail(self, c: int, e: RouteEval, close: float) -> float:
        """Hourly cost of courier ``c`` from departure until home, given the close time."""
        if math.isnan(e.first):
            return 0.0
        home = self.v_end[c]
        if e.loc == home or e.finish == INF:
            last = e.finish if e.finish != INF else self.horizon_end
        else:
            g = e.finish if e.finish >= self.v_shift_end[c] else min(self.v_shift_end[c], close)
            g = max(g, e.finish)
            last = g + self.dur[e.loc][home] * self.tf(g)
        return self.v_hour[c] * max(0.0, last - e.first) / 3600.0

    def total(self, evals: Sequence[RouteEval], unrouted: Sequence[int]) -> tuple[float, float]:
        """(the twin's cost_cents, total violation) of routes evaluated as ``evals``."""
        close = self.close_time(evals, bool(unrouted))
        cost = self.const_cents + sum(self.o_penalty[o] for o in unrouted)
        violation = 0.0
        for c, e in enumerate(evals):
            cost += e.body + self.tail(c, e, close)
            violation += e.violation
        return cost, violation


def routes_from_sim(sim: DispatchSimulator) -> tuple[list[list[Stop]], list[int]]:
    """The executed routes of a finished replay (``record_routes=True``) and departures."""
    assert sim.executed is not None
    routes: list[list[Stop]] = []
    starts: list[int] = []
    for c, executed in enumerate(sim.executed):
        stops: list[Stop] = []
        for kind, o, node, _arr, _start, _dep in executed:
            if int(kind) == int(StopType.PICKUP):
                stops.append((PICK, int(o), int(node)))
            elif int(kind) == int(StopType.DELIVERY):
                stops.append((DROP, int(o), -1))
        routes.append(stops)
        first = sim.first_departure_s[c]
        starts.append(round(first) if not math.isnan(first) else 0)
    return routes, starts


def plan_of(model: DayModel, routes: Sequence[Sequence[Stop]], starts: Sequence[int]) -> Plan:
    """The routes as a Plan the twin replays (departure ``starts[c]``)."""
    w = model.world
    out = []
    for c, stops in enumerate(routes):
        if not stops:
            continue
        planned = [
            PlannedStop(
                order_id=model.ids[o],
                kind=StopKind.PICKUP if kind == PICK else StopKind.DELIVERY,
                location=w.locations[model.stop_loc((kind, o, n))],
                arrival_s=0,
                start_s=0,
                departure_s=0,
            )
            for kind, o, n in stops
        ]
        out.append(Route(vehicle_id=w.vehicle_ids[c], stops=planned, start_s=int(starts[c])))
    return Plan(routes=out, allocation=model.allocation, engine="hindsight-search")


@dataclass
class SearchResult:
    """The improved routes and their evaluated cost."""

    routes: list[list[Stop]]
    starts: list[int]
    cost_cents: float
    start_cost_cents: float
    iterations: int
    accepted: int
    violation: float = 0.0
    start_index: int = 0  # which of the starts the search began from


class _State:
    def __init__(self, model: DayModel, routes: list[list[Stop]], starts: Sequence[int | None]):
        self.m = model
        self.routes = [list(r) for r in routes]
        self.evals = [
            model.eval_route(c, r, starts[c] if r else None) for c, r in enumerate(self.routes)
        ]
        routed = {o for r in self.routes for _k, o, _n in r}
        self.unrouted = [o for o in model.routable if o not in routed]
        self.cost, self.violation = model.total(self.evals, self.unrouted)

    def objective(self) -> float:
        return self.cost + _HARD * self.violation


def _remove(route: list[Stop], orders: set[int]) -> list[Stop]:
    return [s for s in route if s[1] not in orders]


@dataclass
class _Prefix:
    """A route's schedule at a fixed departure, for quick insertion quotes."""

    dep: list[float]  # dep[0] = departure, dep[k + 1] = leaving stop k
    loc: list[int]  # loc[0] = start, loc[k + 1] = stop k
    late: list[float]  # lateness cents of stop k
    load: list[list[float]]  # load[k] on leaving stop k
    finish: float
    back: float  # home arrival


def _prefix(m: DayModel, c: int, stops: Sequence[Stop], start: int) -> _Prefix:
    dur, tf = m.dur, m.tf
    t = float(start)
    loc = m.v_start[c]
    dep = [t]
    locs = [loc]
    lates: list[float] = []
    loads: list[list[float]] = []
    load = [0.0] * len(m.v_cap[c])
    loaded: set[int] = set()
    for kind, o, n in stops:
        b = m.node_loc[n] if kind == PICK else m.o_loc[o]
        base = dur[loc][b]
        if base > 0:
            t = t + base * tf(t)
        loc = b
        late_c = 0.0
        if kind == PICK:
            r = m.ready.get((o, n), INF)
            if t < r:
                t = r
            t = m.node_avail[n](t) + m.node_svc
            if o not in loaded:
                loaded.add(o)
                load = [x + y for x, y in zip(load, m.o_demand[o], strict=True)]
        else:
            t0 = earliest_service_start_f(m.o_windows[o], t)
            sv = t if t0 is None else t0
            late = lateness(m.o_windows[o], sv)
            late_c = m.late_per_min * late / 60.0 if late > 0 else 0.0
            if o in loaded:
                loaded.discard(o)
                load = [x - y for x, y in zip(load, m.o_demand[o], strict=True)]
            t = sv + m.o_service[o]
        dep.append(t)
        locs.append(loc)
        lates.append(late_c)
        loads.append(load)
    home = m.v_end[c]
    back = t + dur[loc][home] * tf(t) if loc != home else t
    return _Prefix(dep, locs, lates, loads, t, back)


def _quotes(
    m: DayModel, c: int, stops: Sequence[Stop], pre: _Prefix, o: int, bound: float
) -> tuple[float, int, int] | None:
    """The cheapest (body + overtime + hours change, i, j) below ``bound`` of inserting
    single-node order ``o`` with its pickup before stop ``i`` and its delivery before stop
    ``j`` (departure kept). Delays only add cost, so a quote stops once it reaches the bound."""
    dur, dist, tf = m.dur, m.dist, m.tf
    n_node = m.o_nodes[o][0]
    p_loc = m.node_loc[n_node]
    x_loc = m.o_loc[o]
    ready = m.ready.get((o, n_node), INF)
    avail = m.node_avail[n_node]
    demand = m.o_demand[o]
    cap = m.v_cap[c]
    windows = m.o_windows[o]
    svc_o = m.o_service[o]
    n = len(stops)
    home = m.v_end[c]
    per_m = m.v_km[c] / 1000.0
    hour_s = m.v_hour[c] / 3600.0
    shift_end = m.v_shift_end[c]
    stop_locs = [*pre.loc[1:], home]
    out: tuple[float, int, int] | None = None
    # pickup positions: right before the delivery, or right after the last visit to the node
    pairs: list[tuple[int, int]] = []
    last_at = -1
    too_late = max((e for _s, e in windows), default=INF) + _PRUNE_LATE_S
    for j in range(n + 1):
        if j == n or j == 0 or pre.dep[j] <= too_late:
            pairs.append((j, j))
            if last_at >= 0 and last_at + 1 < j:
                pairs.append((last_at + 1, j))
        if j < n and stops[j][0] == PICK and stops[j][2] == n_node:
            last_at = j
    for i, j in pairs:
        loc = pre.loc[i]
        t = pre.dep[i]
        nxt = stop_locs[i]
        # pickup
        base = dur[loc][p_loc]
        if base > 0:
            t = t + base * tf(t)
        if t < ready:
            t = ready
        t = avail(t)
        if t == INF:
            continue
        t += m.node_svc
        if i == j:
            dm = dist[loc][p_loc] + dist[p_loc][x_loc] + dist[x_loc][nxt] - dist[loc][nxt]
        else:
            lj, nj = pre.loc[j], stop_locs[j]
            dm = (
                dist[loc][p_loc]
                + dist[p_loc][nxt]
                - dist[loc][nxt]
                + dist[lj][x_loc]
                + dist[x_loc][nj]
                - dist[lj][nj]
            )
        delta = per_m * dm
        viol = 0.0
        loc = p_loc
        k = i
        done = False
        while delta + _HARD * viol < bound:
            if k == j and not done:
                base = dur[loc][x_loc]
                if base > 0:
                    t = t + base * tf(t)
                t0 = earliest_service_start_f(windows, t)
                sv = t if t0 is None else t0
                late = lateness(windows, sv)
                if late > 0:
                    delta += m.late_per_min * late / 60.0
                t = sv + svc_o
                loc = x_loc
                done = True
                continue
            if k == n:
                break
            if done and t == pre.dep[k + 1]:
                break  # the rest of the route is unchanged
            kind, o2, n2 = stops[k]
            b = pre.loc[k + 1]
            base = dur[loc][b]
            if base > 0:
                t = t + base * tf(t)
            if kind == PICK:
                r = m.ready.get((o2, n2), INF)
                if t < r:
                    t = r
                t = m.node_avail[n2](t)
                if t == INF:
                    viol += 1.0e6
                    break
                t += m.node_svc
            else:
                w2 = m.o_windows[o2]
                t0 = earliest_service_start_f(w2, t)
                sv = t if t0 is None else t0
                late = lateness(w2, sv)
                delta += (m.late_per_min * late / 60.0 if late > 0 else 0.0) - pre.late[k]
                t = sv + m.o_service[o2]
            if not done:
                ld = pre.load[k]
                for d_i, (x, y) in enumerate(zip(ld, demand, strict=True)):
                    if x + y > cap[d_i] + 1e-9:
                        viol += x + y - cap[d_i]
            loc = b
            k += 1
        if k == n:  # reached the end: the finish moved
            back = t + dur[loc][home] * tf(t) if loc != home else t
            over_new = max(0.0, back - shift_end)
            over_old = max(0.0, pre.back - shift_end)
            viol += over_new - over_old
            # hours: a courier is paid until its shift end at least, unless it runs over
            delta += hour_s * (max(back, shift_end) - max(pre.back, shift_end))
        if i == j:
            ld0 = pre.load[i - 1] if i > 0 else [0.0] * len(cap)
            for d_i, (x, y) in enumerate(zip(ld0, demand, strict=True)):
                if x + y > cap[d_i] + 1e-9:
                    viol += x + y - cap[d_i]
        total = delta + _HARD * viol
        if total < bound:
            bound = total
            out = (total, i, j)
    return out


def _insert_best(
    st: _State,
    o: int,
    rng: random.Random,
    evals: list[RouteEval],
    routes: list[list[Stop]],
    cache: dict[int, _Prefix],
) -> None:
    """Put ``o`` at its cheapest place (by route cost change; left out if nothing is cheaper)."""
    m = st.m
    best_delta = m.o_penalty[o]
    best: tuple[int, int, int] | None = None
    multi = len(m.o_nodes[o]) != 1
    for c in range(m.num_vehicles):
        if not m.can_serve(c, o):
            continue
        route = routes[c]
        if not route or multi:
            base = evals[c]
            base_cost = base.body + _HARD * base.violation + _route_time_proxy(m, c, base)
            for cand in _candidates(m, route, o):
                e = m.eval_route(c, cand, None if not route else base.start)
                d = e.body + _HARD * e.violation + _route_time_proxy(m, c, e) - base_cost
                if d < best_delta - 1e-9:
                    best_delta = d
                    best = (c, -1, len(_candidates(m, route, o)))
                    best_cand = cand
            continue
        pre = cache.get(c)
        if pre is None:
            pre = cache[c] = _prefix(m, c, route, evals[c].start)
        q = _quotes(m, c, route, pre, o, best_delta)
        if q is not None and q[0] < best_delta - 1e-9:
            best_delta, best = q[0], (c, q[1], q[2])
    if best is None:
        return
    c, i, j = best
    if i < 0:
        new_route = best_cand
    else:
        route = routes[c]
        pick = (PICK, o, m.o_nodes[o][0])
        drop = (DROP, o, -1)
        new_route = [*route[:i], pick, *route[i:j], drop, *route[j:]]
    start = evals[c].start if routes[c] else None
    routes[c] = new_route
    evals[c] = m.eval_route(c, new_route, start)
    cache.pop(c, None)


def _candidates(m: DayModel, route: Sequence[Stop], o: int) -> list[list[Stop]]:
    """Routes with order ``o`` inserted: every delivery position, its pickups right before."""
    picks = [(PICK, o, n) for n in m.o_nodes[o]]
    drop = (DROP, o, -1)
    return [[*route[:j], *picks, drop, *route[j:]] for j in range(len(route) + 1)]


def _route_time_proxy(m: DayModel, c: int, e: RouteEval) -> float:
    """Hourly cost of a route if the day closed at its courier's shift end (for insertion)."""
    return m.tail(c, e, m.v_shift_end[c])


def best_start(m: DayModel, c: int, stops: Sequence[Stop], current: int | None) -> RouteEval:
    """The route evaluated at the best of a few departures (later saves hours, may add
    lateness): the current one, the latest that delays nothing, and the delays at which the
    1st, 2nd, ... delivery it would make late starts costing more than the hours saved."""
    if not stops:
        return _EMPTY
    s0 = m.auto_start(c, stops)
    cands = {s0}
    if current is not None:
        cands.add(current)
    pre = _prefix(m, c, stops, s0)
    # thresholds: delay at which stop k starts being late (cumulative waiting absorbs delays)
    wait_cum = 0.0
    loc = m.v_start[c]
    thetas: list[float] = []
    for k, (kind, o, _n) in enumerate(stops):
        b = pre.loc[k + 1]
        base = m.dur[loc][b]
        arr = pre.dep[k] + (base * m.tf(pre.dep[k]) if base > 0 else 0.0)
        svc = m.node_svc if kind == PICK else m.o_service[o]
        start_k = pre.dep[k + 1] - svc
        wait_cum += max(0.0, start_k - arr)
        if kind == DROP and m.o_windows[o]:
            end = max(e for _s, e in m.o_windows[o])
            thetas.append(wait_cum + max(0.0, end - start_k))
        loc = b
    thetas.sort()
    for th in thetas[:4]:
        if 0 < th < INF:  # a lost parcel (node closed for good) leaves an infinite time
            cands.add(math.floor(s0 + th))
    best: RouteEval | None = None
    best_key = INF
    for s in sorted(cands):
        if s < m.v_shift_start[c]:
            continue
        e = m.eval_route(c, stops, s)
        key = e.body + _HARD * e.violation + _route_time_proxy(m, c, e)
        if best is None or key < best_key - 1e-9:
            best, best_key = e, key
    assert best is not None
    return best


def _related(m: DayModel, st: _State, rng: random.Random, k: int) -> set[int]:
    """``k`` orders near a random one (delivery place and window)."""
    routed = [o for r in st.routes for kind, o, _n in r if kind == DROP]
    if not routed:
        return set()
    seed = rng.choice(routed)
    a = m.o_loc[seed]
    ws = m.o_windows[seed][0][0] if m.o_windows[seed] else 0.0

    def near(o: int) -> float:
        w0 = m.o_windows[o][0][0] if m.o_windows[o] else 0.0
        return m.dur[a][m.o_loc[o]] + 0.5 * abs(w0 - ws)

    routed.sort(key=near)
    return set(routed[:k])


def improve_day(
    model: DayModel,
    starts: Sequence[tuple[Sequence[Sequence[Stop]], Sequence[int | None]]],
    *,
    time_limit_s: float,
    seed: int,
    max_iterations: int | None = None,
    replayed_cents: Sequence[float] | None = None,
) -> SearchResult:
    """Ruin-and-recreate from the cheapest of ``starts`` ((routes, departures) pairs) for
    ``time_limit_s`` seconds (or ``max_iterations``).

    ``replayed_cents``: each start's cost as the twin replayed it; the cheapest by it is the
    start (ties: the lower evaluator objective, then the earlier start). Without it, the
    evaluator's objective (its cost plus violations at :data:`_HARD`) decides. The evaluator
    can rank starts otherwise than the twin: it takes a courier home after its shift end (the
    twin's paid overtime) as a violation, and prices a played day's flattened routes.
    """
    if replayed_cents is not None and len(replayed_cents) != len(starts):
        raise ValueError(f"replayed_cents has {len(replayed_cents)} costs for {len(starts)} starts")
    rng = random.Random(seed)
    states = [_State(model, [list(r) for r in routes], st) for routes, st in starts]
    if not states:
        raise ValueError("no start to search from")

    def rank(i: int) -> tuple[float, ...]:
        own = states[i].objective()
        return (own, i) if replayed_cents is None else (float(replayed_cents[i]), own, i)

    start_index = min(range(len(states)), key=rank)
    first = states[start_index]
    start_cost = first.cost
    # departures re-chosen per route, kept where they were better
    cur = _State.__new__(_State)
    cur.m = model
    cur.routes = [list(r) for r in first.routes]
    cur.evals = [
        best_start(model, c, r, first.evals[c].start) if r else _EMPTY
        for c, r in enumerate(cur.routes)
    ]
    cur.unrouted = list(first.unrouted)
    cur.cost, cur.violation = model.total(cur.evals, cur.unrouted)
    if cur.objective() > first.objective():
        cur = first
    deadline = time.perf_counter() + time_limit_s
    it = accepted = 0
    while time.perf_counter() < deadline and (max_iterations is None or it < max_iterations):
        it += 1
        routes = [list(r) for r in cur.routes]
        evals = list(cur.evals)
        u = rng.random()
        if u < 0.05:
            used = [c for c, r in enumerate(routes) if r]
            c = rng.choice(used) if used else 0
            removed = {o for _k, o, _n in routes[c] if _k == DROP}
        else:
            removed = _related(model, cur, rng, rng.randint(1, 10))
        removed |= {o for o in cur.unrouted if rng.random() < 0.5}
        if not removed:
            continue
        changed = set()
        for c in range(model.num_vehicles):
            if any(s[1] in removed for s in routes[c]):
                routes[c] = _remove(routes[c], removed)
                evals[c] = model.eval_route(c, routes[c], evals[c].start if routes[c] else None)
                changed.add(c)
        order = sorted(removed)
        rng.shuffle(order)
        if rng.random() < 0.5:
            order.sort(key=lambda o: model.o_windows[o][0][0] if model.o_windows[o] else 0.0)
        cache: dict[int, _Prefix] = {}
        for o in order:
            before = [id(r) for r in routes]
            _insert_best(cur, o, rng, evals, routes, cache)
            changed |= {c for c, r in enumerate(routes) if id(r) != before[c]}
        for c in changed:
            evals[c] = best_start(model, c, routes[c], evals[c].start if routes[c] else None)
        new = _State.__new__(_State)
        new.m = model
        new.routes = routes
        new.evals = evals
        routed = {o for r in routes for _k, o, _n in r}
        new.unrouted = [o for o in model.routable if o not in routed]
        new.cost, new.violation = model.total(evals, new.unrouted)
        if new.objective() < cur.objective() - 1e-6:
            cur = new
            accepted += 1
    return SearchResult(
        routes=cur.routes,
        starts=[e.start for e in cur.evals],
        cost_cents=cur.cost,
        start_cost_cents=start_cost,
        iterations=it,
        accepted=accepted,
        violation=cur.violation,
        start_index=start_index,
    )


__all__ = [
    "DayModel",
    "RouteEval",
    "SearchResult",
    "improve_day",
    "plan_of",
    "routes_from_sim",
]
