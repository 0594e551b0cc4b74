"""An independent checker for route plans: coverage, capacity, windows, pairing, skills, shifts,
release times (no order is loaded at the start or picked up before its ``created_s``).

It shares no code with the routing engines or their schedule builder: it reads the
:class:`~scenarios.model.Scenario` and the :class:`~scenarios.plan.Plan` only, asks the
scenario's travel model for the matrix, re-derives every constraint from the domain model and
recomputes distance and cost; a route's duration and cost, and each stop's location and task
id, are checked when the plan gives them. The courier jobs of an order shipped from several
nodes (the orders of one ``split_of``) are served all or nothing (a job with a pinned stop
excepted), their penalty counted once. A driver break is taken at a stop, or at the start:
after the route's ``start_s`` (its departure), or before it, waiting there (inside the shift,
and over by the departure; not part of the route's duration). Every plan leaving
:func:`solvers.routing.solve_routes` passes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from scenarios.geo import Location, TimeWindow
from scenarios.model import Break, Order, Scenario, Vehicle
from scenarios.plan import Plan, PlannedStop, PlanStatus, Route, StopKind


def match_breaks(stops: Sequence[PlannedStop], breaks: Sequence[Break]) -> dict[int, Break]:
    """The vehicle break each of a route's break stops takes (keys ``id(stop)``); ``breaks``
    are the vehicle's, in its order.

    A stop naming its break (``break_index``) takes that break, whatever its times (taken
    outside the window, it is that break taken early or late); a stop naming a break out of
    range, or one an earlier stop named, takes none (the callers report it). The stops naming
    none (plans written before ``break_index``) get a maximum matching to the breaks no stop
    names whose window holds their start and whose length they cover, by augmenting paths;
    the breaks are tried by window start, so every caller (the validator, the twin, the
    re-optimisation policy) gets the same matching."""
    out: dict[int, Break] = {}
    named: set[int] = set()
    unnamed: list[PlannedStop] = []
    for stop in stops:
        k = stop.break_index
        if k is None:
            unnamed.append(stop)
        elif k < len(breaks) and k not in named:
            named.add(k)
            out[id(stop)] = breaks[k]
    free = sorted(
        (b for k, b in enumerate(breaks) if k not in named), key=lambda b: b.window.start_s
    )
    owner: dict[int, int] = {}  # break index (in free) -> stop index (in unnamed)

    def fits(stop: PlannedStop, b: Break) -> bool:
        return b.window.contains(stop.start_s) and stop.departure_s - stop.start_s >= b.duration_s

    def augment(si: int, seen: set[int]) -> bool:
        for bi, b in enumerate(free):
            if bi in seen or not fits(unnamed[si], b):
                continue
            seen.add(bi)
            if bi not in owner or augment(owner[bi], seen):
                owner[bi] = si
                return True
        return False

    for si in range(len(unnamed)):
        augment(si, set())
    out.update({id(unnamed[si]): free[bi] for bi, si in owner.items()})
    return out


class Violation(BaseModel):
    """One broken rule, naming the constraint and the vehicle/order it concerns."""

    constraint: str
    vehicle_id: str | None = None
    order_id: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        who = ", ".join(
            p
            for p in (
                f"vehicle {self.vehicle_id}" if self.vehicle_id else "",
                f"order {self.order_id}" if self.order_id else "",
            )
            if p
        )
        return f"{self.constraint}{f' ({who})' if who else ''}: {self.detail}"


class PlanCheck(BaseModel):
    """Outcome of :func:`validate_plan`, with distance and cost recomputed from scratch."""

    ok: bool
    violations: list[Violation] = Field(default_factory=list)
    distance_m: int = 0
    cost_cents: int = 0
    num_vehicles: int = 0
    num_served: int = 0

    def summary(self, limit: int = 5) -> str:
        """The first few violations on one line each."""
        lines = [str(v) for v in self.violations[:limit]]
        if len(self.violations) > limit:
            lines.append(f"... and {len(self.violations) - limit} more")
        return "\n".join(lines) if lines else "ok"


def validate_plan(scenario: Scenario, plan: Plan) -> PlanCheck:
    """Check every routing constraint of ``plan`` against ``scenario``; recompute its cost."""
    checker = _Checker(scenario)
    for route in plan.routes:
        checker.route(route)
    checker.coverage(plan)
    return checker.result(plan)


def _where(loc: Location) -> str:
    """A location's given coordinates, e.g. ``x=1.0, y=2.0``."""
    return ", ".join(f"{k}={v}" for k, v in loc.model_dump().items() if v is not None)


def _in_windows(windows: Sequence[TimeWindow], t: int) -> bool:
    return not windows or any(w.start_s <= t <= w.end_s for w in windows)


class _Checker:
    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.orders: dict[str, Order] = {o.id: o for o in scenario.orders}
        self.vehicles: dict[str, Vehicle] = {v.id: v for v in scenario.vehicles}
        self.violations: list[Violation] = []
        self.delivered: dict[str, str] = {}
        self.picked: dict[str, str] = {}
        self.pinned: set[str] = set()  # orders with a pinned stop
        self.distance = 0
        self.cost = 0
        self.used = 0
        self.seen_vehicles: set[str] = set()

    def bad(self, constraint: str, detail: str, vehicle: str | None, order: str | None) -> None:
        self.violations.append(
            Violation(constraint=constraint, vehicle_id=vehicle, order_id=order, detail=detail)
        )

    def route(self, route: Route) -> None:
        vid = route.vehicle_id
        veh = self.vehicles.get(vid)
        if veh is None:
            self.bad("unknown_vehicle", "not in the scenario", vid, None)
            return
        if vid in self.seen_vehicles:
            self.bad("duplicate_vehicle", "vehicle has two routes", vid, None)
        self.seen_vehicles.add(vid)
        if not route.stops:
            return
        self.used += 1
        visits = [st for st in route.stops if st.kind is not StopKind.BREAK]
        locs: list[Location] = [veh.start_location]
        for st in visits:
            order = self.orders.get(st.order_id or "")
            if order is None:
                self.bad("unknown_order", f"stop names order {st.order_id!r}", vid, st.order_id)
                return
            if st.kind is StopKind.PICKUP:
                if order.pickup is None:
                    self.bad("pairing", "pickup stop for an order without pickup", vid, order.id)
                    return
                locs.append(order.pickup.location)
            else:
                locs.append(order.location)
        locs.append(veh.end)
        m = self.s.travel.matrix(locs)
        dur, dist = m.duration_s, m.distance_m

        shift = veh.shift or self.s.horizon
        if route.start_s < shift.start_s:
            self.bad("shift", f"leaves at {route.start_s} s, before the shift starts", vid, None)
        dims = len(self.s.capacity_dims)
        load = [0] * dims
        for st in visits:
            order = self.orders[st.order_id or ""]
            if order.pickup is None:
                for d, q in enumerate(order.demand_vector(self.s.capacity_dims)):
                    load[d] += q
                if route.start_s < order.created_s:  # loaded at the start before it exists
                    self.bad(
                        "release",
                        f"leaves the start at {route.start_s} s carrying the order, created at "
                        f"{order.created_s} s",
                        vid,
                        order.id,
                    )
        self._capacity(veh, load, vid, None, "at the start")

        # the vehicle's breaks not taken yet (by index in ``veh.breaks``), by window start
        pending_breaks = sorted(range(len(veh.breaks)), key=lambda i: veh.breaks[i].window.start_s)
        break_stops = [st for st in route.stops if st.kind is StopKind.BREAK]
        matching = match_breaks(break_stops, veh.breaks)
        number = {id(b): i for i, b in enumerate(veh.breaks)}
        # breaks a stop names (``break_index``): no other stop takes them
        named = {st.break_index for st in break_stops if st.break_index is not None}
        free = route.start_s  # when the vehicle is free to move (after service/breaks)
        # breaks taken at the start before the departure (waiting there, e.g. for an order
        # created later) come first, inside the shift, one after another, over by the departure
        waiting = True
        waited_until = shift.start_s
        k = 0  # index into locs of the current position
        route_dist = 0
        on_board: set[str] = set()
        for pos, st in enumerate(route.stops):
            if st.kind is StopKind.BREAK:
                if st.break_index is not None:
                    # the break the stop names, whatever its times
                    bi = st.break_index
                    if bi >= len(veh.breaks):
                        self.bad(
                            "break_index",
                            f"stop {pos}: break_index {bi} names no break of the vehicle "
                            f"(it has {len(veh.breaks)})",
                            vid,
                            None,
                        )
                        free = max(free, st.departure_s)
                        continue
                    if bi not in pending_breaks:
                        self.bad(
                            "break_index",
                            f"stop {pos}: break_index {bi} names a break an earlier stop takes",
                            vid,
                            None,
                        )
                        free = max(free, st.departure_s)
                        continue
                else:
                    # the break this stop takes: the one a matching of the route's break stops
                    # to the vehicle's breaks gives it (a vehicle's windows may overlap, so the
                    # breaks need not come in window order), else the first one it fits, else
                    # the next one (never one a stop names)
                    unnamed = [i for i in pending_breaks if i not in named]
                    if not unnamed:
                        self.bad("break", f"unexpected break at {st.start_s} s", vid, None)
                        continue
                    matched = matching.get(id(st))
                    fits = [
                        i
                        for i in unnamed
                        if veh.breaks[i].window.contains(st.start_s)
                        and st.departure_s - st.start_s >= veh.breaks[i].duration_s
                    ]
                    if matched is not None and number[id(matched)] in unnamed:
                        bi = number[id(matched)]
                    else:
                        bi = fits[0] if fits else unnamed[0]
                pending_breaks.remove(bi)
                b = veh.breaks[bi]
                lo, hi = b.window.start_s, b.window.end_s
                waiting = waiting and st.start_s < route.start_s
                if waiting:  # at the start before the departure
                    if st.start_s < waited_until:
                        self.bad(
                            "break",
                            f"starts at {st.start_s} s, before "
                            + (
                                f"the shift starts at {waited_until} s"
                                if waited_until == shift.start_s
                                else f"{waited_until} s"
                            ),
                            vid,
                            None,
                        )
                    if st.departure_s > route.start_s:
                        self.bad(
                            "break",
                            f"break {bi} at the start ends at {st.departure_s} s, after the "
                            f"route leaves at {route.start_s} s",
                            vid,
                            None,
                        )
                    waited_until = max(waited_until, st.departure_s)
                elif st.start_s < free:
                    self.bad("break", f"starts at {st.start_s} s, before {free} s", vid, None)
                if not b.window.contains(st.start_s):
                    self.bad(
                        "break",
                        f"break {bi} starts at {st.start_s} s, outside its window {lo}-{hi}",
                        vid,
                        None,
                    )
                if st.departure_s - st.start_s < b.duration_s:
                    self.bad(
                        "break",
                        f"break {bi} lasts {st.departure_s - st.start_s} s, shorter than its "
                        f"{b.duration_s} s",
                        vid,
                        None,
                    )
                if not waiting:
                    free = max(free, st.departure_s)
                continue
            waiting = False
            oid = st.order_id or ""
            order = self.orders[oid]
            travel = int(dur[k, k + 1])
            route_dist += int(dist[k, k + 1])
            k += 1
            if st.arrival_s < free + travel:
                self.bad(
                    "travel_time",
                    f"arrives at {st.arrival_s} s, earliest possible {free + travel} s",
                    vid,
                    oid,
                )
            if st.start_s < st.arrival_s:
                self.bad("time", "service starts before arrival", vid, oid)
            if st.kind is StopKind.PICKUP:
                assert order.pickup is not None
                windows, service = order.pickup.time_windows, order.pickup.service_s
                place, task_id = order.pickup.location, order.pickup_id
            else:
                windows, service = order.time_windows, order.service_s
                place, task_id = order.location, order.id
            if st.location is not None and st.location != place:
                self.bad(
                    "location",
                    f"stop at {_where(st.location)}, the {st.kind} is at {_where(place)}",
                    vid,
                    oid,
                )
            if st.task_id is not None and st.task_id != task_id:
                self.bad(
                    "task_id", f"stop names task {st.task_id!r}, expected {task_id!r}", vid, oid
                )
            if not _in_windows(windows, st.start_s):
                self.bad("time_window", f"service starts at {st.start_s} s, outside", vid, oid)
            if st.kind is StopKind.PICKUP and st.start_s < order.created_s:
                self.bad(
                    "release",
                    f"picked up at {st.start_s} s, before the order is created at "
                    f"{order.created_s} s",
                    vid,
                    oid,
                )
            if st.departure_s < st.start_s + service:
                self.bad("service_time", "leaves before the service is done", vid, oid)
            free = st.departure_s
            demand = order.demand_vector(self.s.capacity_dims)
            if not set(order.required_skills) <= set(veh.skills):
                self.bad("skill", f"needs {sorted(order.required_skills)}", vid, oid)
            if st.pinned:
                self.pinned.add(oid)
            if st.kind is StopKind.PICKUP:
                if oid in self.picked:
                    self.bad("coverage", "picked up twice", vid, oid)
                self.picked[oid] = vid
                on_board.add(oid)
                load = [a + q for a, q in zip(load, demand, strict=True)]
            else:
                if oid in self.delivered:
                    self.bad("coverage", "delivered twice", vid, oid)
                self.delivered[oid] = vid
                if order.pickup is not None:
                    if oid not in on_board:
                        self.bad(
                            "precedence", "delivered before its pickup on this route", vid, oid
                        )
                    on_board.discard(oid)
                load = [a - q for a, q in zip(load, demand, strict=True)]
            self._capacity(veh, load, vid, oid, f"after order {oid}")
            if st.load_after and list(st.load_after) != load:
                self.bad("load", f"load_after {st.load_after} but recomputed {load}", vid, oid)
        for oid in on_board:
            self.bad("pairing", "picked up but not delivered on the same route", vid, oid)
        for bi in pending_breaks:
            w = veh.breaks[bi].window
            self.bad("break", f"break {bi} in window {w.start_s}-{w.end_s} missing", vid, None)
        end_travel = int(dur[k, k + 1])
        route_dist += int(dist[k, k + 1])
        if route.end_s < free + end_travel:
            self.bad(
                "travel_time", f"ends at {route.end_s} s, earliest {free + end_travel} s", vid, None
            )
        if route.end_s > shift.end_s:
            self.bad("shift", f"ends at {route.end_s} s, after the shift ends", vid, None)
        duration = route.end_s - route.start_s
        if veh.max_duration_s is not None and duration > veh.max_duration_s:
            self.bad("max_duration", f"{duration} s > {veh.max_duration_s} s", vid, None)
        if veh.max_distance_m is not None and route_dist > veh.max_distance_m:
            self.bad("max_distance", f"{route_dist} m > {veh.max_distance_m} m", vid, None)
        if route.distance_m != route_dist:
            self.bad(
                "distance", f"route says {route.distance_m}, recomputed {route_dist}", vid, None
            )
        given = route.model_fields_set  # a plan may leave these out (hand-made plans do)
        if "duration_s" in given and route.duration_s != duration:
            self.bad(
                "duration", f"route says {route.duration_s} s, recomputed {duration} s", vid, None
            )
        route_cost = veh.fixed_cost_cents + round(
            veh.cost_per_km_cents * route_dist / 1000 + veh.cost_per_hour_cents * duration / 3600
        )
        if "cost_cents" in given and route.cost_cents != route_cost:
            self.bad("cost", f"route says {route.cost_cents}, recomputed {route_cost}", vid, None)
        self.distance += route_dist
        self.cost += route_cost

    def _capacity(
        self, veh: Vehicle, load: list[int], vid: str, oid: str | None, where: str
    ) -> None:
        for d, q in enumerate(load):
            if veh.capacity and q > veh.capacity[d]:
                dim = self.s.capacity_dims[d]
                self.bad("capacity", f"{dim} load {q} > {veh.capacity[d]} {where}", vid, oid)
            if q < 0:
                self.bad("capacity", f"negative load {q} {where}", vid, oid)

    def split_orders(self) -> dict[str, list[str]]:
        """The courier jobs of each order shipped from several nodes (the orders of one
        ``split_of``), keyed by job id: copies of one order (the same penalty and priority),
        delivered whole or not at all."""
        jobs: dict[str, list[Order]] = {}
        for order in self.s.orders:
            if order.split_of is not None:
                jobs.setdefault(order.split_of, []).append(order)
        out: dict[str, list[str]] = {}
        for group in jobs.values():
            same = {(o.penalty_cents, o.priority) for o in group}
            if len(group) > 1 and len(same) == 1:
                for o in group:
                    out[o.id] = [g.id for g in group]
        return out

    def coverage(self, plan: Plan) -> None:
        unassigned: set[str] = set()
        split = self.split_orders()
        charged: set[str] = set()  # an order split over nodes left out costs its penalty once
        for u in plan.unassigned:
            if u.order_id not in self.orders:
                self.bad(
                    "unknown_order", "unassigned entry names an unknown order", None, u.order_id
                )
                continue
            if u.order_id in unassigned:
                self.bad("coverage", "listed twice as unassigned", None, u.order_id)
            unassigned.add(u.order_id)
            if u.order_id in self.delivered:
                self.bad("coverage", "both served and unassigned", None, u.order_id)
            order = self.orders[u.order_id]
            group = split.get(u.order_id)
            if group is not None and group[0] in charged:
                continue
            if group is not None:
                charged.add(group[0])
            self.cost += (
                order.penalty_cents
                if order.penalty_cents is not None
                else self.s.costs.unserved_cents
            )
        for first in charged:
            group = split[first]
            served = [j for j in group if j in self.delivered]
            # a pinned stop stays where it is pinned: its job is served even when the rest of
            # its order found no place (the plan lists them unassigned, the penalty charged)
            if served and not all(j in self.pinned for j in served):
                self.bad(
                    "split_order",
                    f"jobs {served} of an order shipped from {len(group)} nodes are served, "
                    f"{[j for j in group if j not in self.delivered]} not: the order is "
                    "delivered once all its parcels are (all or nothing)",
                    None,
                    first,
                )
        for oid, order in self.orders.items():
            if oid not in self.delivered and oid not in unassigned:
                self.bad("coverage", "neither served nor reported unassigned", None, oid)
            if order.pickup is not None and (oid in self.picked) != (oid in self.delivered):
                self.bad("pairing", "pickup and delivery not both served", None, oid)
        mandatory_left = [
            u.order_id
            for u in plan.unassigned
            if self.orders.get(u.order_id) and self.orders[u.order_id].penalty_cents is None
        ]
        if mandatory_left and plan.status in (PlanStatus.FEASIBLE, PlanStatus.OPTIMAL):
            self.bad(
                "status",
                f"status {plan.status} with mandatory orders unassigned: {mandatory_left[:5]}",
                None,
                None,
            )

    def result(self, plan: Plan) -> PlanCheck:
        if plan.distance_m != self.distance:
            self.bad(
                "distance", f"plan says {plan.distance_m}, recomputed {self.distance}", None, None
            )
        if plan.cost_cents != self.cost:
            self.bad("cost", f"plan says {plan.cost_cents}, recomputed {self.cost}", None, None)
        return PlanCheck(
            ok=not self.violations,
            violations=self.violations,
            distance_m=self.distance,
            cost_cents=self.cost,
            num_vehicles=self.used,
            num_served=len(self.delivered),
        )
