"""Planned times, loads and costs of a task sequence, and the Plan built from sequences.

Engines only decide *which vehicle visits which tasks in which order*; the times are computed
here, the same way for every engine: leave the start location at the shift start (or, later,
once every delivery loaded there exists: the route's release, the largest ``created_s`` of
those orders, see :func:`~solvers.routing.problem.route_release`), start each
service as early as its windows allow, then delay the departure from the start as much as the
route allows without making it longer (so ``duration_s`` is the shortest for that sequence),
but not past the vehicle's latest start (``latest_start_s``: a route that must leave by then
pays its waiting).
A stop with several windows is also tried in its later windows, from a later departure (at
most :data:`_WINDOW_JUMPS` departures per route), where that makes the route shorter.

Breaks are taken at a stop, before travelling on. A vehicle with one break (the common case)
gets it exactly where the route is shortest, every position tried in closed form
(:func:`solvers.routing.timing.place_break`): if any position works, one is found. Several
breaks are placed exactly too (:func:`solvers.routing.timing.place_breaks`: every order of the
breaks and position of all but the last tried, the last in closed form) while that is at most
:data:`~solvers.routing.timing.MAX_BREAK_LAYOUTS` layouts (2 breaks: routes of up to 47 stops).
Past that, or with stops with several windows, breaks are taken greedily before travelling to
the next stop, as late as the next stop allows, and the departure is delayed as without breaks
(waiting for a break window is waiting too), so a route does not idle from the shift start
until its breaks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scenarios.errors import ScenarioInputError
from scenarios.geo import MAX_INT
from scenarios.model import Vehicle
from scenarios.plan import PlannedStop, Route, StopKind, UnassignedReason
from solvers.routing.problem import (
    UNLIMITED,
    RoutingProblem,
    Task,
    break_order,
    pre_departure_breaks,
    route_release,
)
from solvers.routing.timing import Timing, place_break, place_breaks


@dataclass
class StopTime:
    """Times and load of one visited task."""

    task: int
    arrival_s: int
    start_s: int
    departure_s: int
    load_after: tuple[int, ...]


@dataclass
class BreakTime:
    """Break ``index`` of the vehicle (in its sorted ``VehicleInfo.breaks``) taken after stop
    ``after`` (-1 = at the start location; ``before_departure``: there before the route's
    departure, while it waits for its release)."""

    after: int
    start_s: int
    duration_s: int
    index: int
    before_departure: bool = False


@dataclass
class RouteSchedule:
    """The timed route of one vehicle; ``violation`` says why it is infeasible, if it is."""

    vehicle: int
    stops: list[StopTime] = field(default_factory=list)
    breaks: list[BreakTime] = field(default_factory=list)
    start_s: int = 0
    end_s: int = 0
    distance_m: int = 0
    cost: int = 0
    violation: str | None = None

    @property
    def duration_s(self) -> int:
        """Time from leaving the start to reaching the end."""
        return self.end_s - self.start_s


def _window_start(task: Task, arrival: int) -> tuple[int, int] | None:
    """(service start, end of the window used) for an arrival, or None if every window closed."""
    if not task.windows:
        return arrival, UNLIMITED
    for lo, hi in task.windows:
        if arrival <= hi and lo <= hi:  # (an empty window: a pickup closed before creation)
            return max(arrival, lo), hi
    return None


def _forward(
    problem: RoutingProblem,
    vehicle: int,
    seq: Sequence[int],
    depart_s: int,
    pre: Sequence[BreakTime] = (),
) -> RouteSchedule:
    """Earliest-start forward pass from a given departure time, the breaks ``pre`` (the
    first of the vehicle's sorted breaks) taken at the start before it."""
    veh = problem.vehicles[vehicle]
    dur = problem.duration
    tasks = problem.tasks
    out = RouteSchedule(vehicle=vehicle, start_s=depart_s, breaks=list(pre))
    load = [0] * problem.dims
    seen_pickups: set[int] = set()
    for t in seq:
        info = problem.orders[tasks[t].order]
        if info.from_depot:
            for d, q in enumerate(info.demand):
                load[d] += q
    for d, q in enumerate(load):
        if q > veh.capacity[d]:
            out.violation = (
                f"capacity dimension {d} exceeded at the start ({q} > {veh.capacity[d]})"
            )
            return out
    pending = list(enumerate(veh.breaks))[len(pre) :]
    prev_node = veh.start_node
    t_free = depart_s
    for pos, t in enumerate(seq):
        task = tasks[t]
        info = problem.orders[task.order]
        if task.kind is StopKind.PICKUP:
            seen_pickups.add(task.order)
        elif info.pickup is not None and task.order not in seen_pickups:
            out.violation = f"delivery of order {info.order.id} before its pickup"
            return out
        travel = int(dur[prev_node, task.node])
        t_free = _take_breaks(out, pending, pos - 1, t_free, travel, task)
        arrival = t_free + travel
        got = _window_start(task, arrival)
        if got is None:
            out.violation = f"order {info.order.id}: arrives at {arrival} s, after its windows"
            return out
        start = got[0]
        for d, q in enumerate(task.load_change):
            load[d] += q
            if load[d] > veh.capacity[d]:
                out.violation = (
                    f"capacity dimension {d} exceeded after order {info.order.id} "
                    f"({load[d]} > {veh.capacity[d]})"
                )
                return out
        departure = start + task.service_s
        out.stops.append(StopTime(t, arrival, start, departure, tuple(load)))
        out.distance_m += int(problem.distance[prev_node, task.node])
        prev_node = task.node
        t_free = departure
    travel = int(dur[prev_node, veh.end_node])
    t_free = _take_breaks(out, pending, len(seq) - 1, t_free, travel, None)
    if pending:
        out.violation = "a break cannot be placed inside its window"
        return out
    out.end_s = t_free + travel
    out.distance_m += int(problem.distance[prev_node, veh.end_node])
    seen = {tasks[t].order for t in seq if tasks[t].kind is StopKind.PICKUP}
    for t in seq:
        info = problem.orders[tasks[t].order]
        if tasks[t].kind is StopKind.DELIVERY and info.pickup is not None:
            seen.discard(tasks[t].order)
    if seen:
        out.violation = "a pickup without its delivery on the same route"
    return out


def _take_breaks(
    out: RouteSchedule,
    pending: list[tuple[int, tuple[int, int, int]]],
    after: int,
    t_free: int,
    travel: int,
    nxt: Task | None,
) -> int:
    """Take the pending breaks (index, (window start, window end, length)) that are due
    before travelling to ``nxt``; new free time."""
    while pending:
        index, (lo, hi, length) = pending[0]
        start = max(t_free, lo)
        if start > hi:
            return t_free  # missed: reported as a violation at the end
        if nxt is not None:
            got = _window_start(nxt, t_free + travel)
            service = got[0] if got is not None else t_free + travel
            must = service + nxt.service_s > hi  # deferring would miss the break window
            idle = service - (t_free + travel)  # waiting we can fill with the break
            fits = start + length + travel <= service and lo <= service
            if not (must or (fits and idle >= length)):
                return t_free
        out.breaks.append(BreakTime(after, start, length, index))
        pending.pop(0)
        t_free = start + length
    return t_free


def schedule_route(
    problem: RoutingProblem, vehicle: int, seq: Sequence[int], *, exact_breaks: bool = True
) -> RouteSchedule:
    """Times, loads, distance and cost of visiting ``seq`` (task indices) with ``vehicle``.

    ``exact_breaks=False`` places several breaks greedily when that is feasible (about 40x
    less CPU on a 47-stop route with 2 breaks), exactly otherwise: the same verdict, for the
    many feasibility checks of the construction and the repair, whose routes are scheduled
    exactly afterwards.
    """
    veh = problem.vehicles[vehicle]
    if (
        len(veh.breaks) == 1
        and seq
        and all(len(problem.tasks[t].windows) <= 1 for t in seq)
        and structure_violation(problem, vehicle, seq) is None
    ):
        tm = place_break(problem, vehicle, list(seq))
        if tm.feasible:
            sched = _from_timing(problem, vehicle, tm)
            sched.violation = _route_limits(problem, vehicle, sched)
            sched.cost = route_cost(problem, vehicle, sched)
            return sched
        # no position works: the greedy placement below names the violation
    elif (
        len(veh.breaks) > 1
        and seq
        and all(len(problem.tasks[t].windows) <= 1 for t in seq)
        and structure_violation(problem, vehicle, seq) is None
    ):
        if not exact_breaks:
            greedy = greedy_schedule(problem, vehicle, seq)
            if greedy.violation is None:
                return greedy
        exact = place_breaks(problem, vehicle, list(seq))
        if exact is not None and exact.feasible:
            sched = _from_timing(problem, vehicle, exact)
            sched.violation = _route_limits(problem, vehicle, sched)
            sched.cost = route_cost(problem, vehicle, sched)
            return sched
        # too many layouts to try, or none works: greedily (which names the violation)
    return greedy_schedule(problem, vehicle, seq)


def greedy_schedule(problem: RoutingProblem, vehicle: int, seq: Sequence[int]) -> RouteSchedule:
    """:func:`schedule_route` with the breaks taken greedily before the next stop (the
    fallback for stops with several windows and routes with too many break layouts)."""
    veh = problem.vehicles[vehicle]
    release = route_release(problem, seq)
    if release > veh.start_late:
        return RouteSchedule(
            vehicle=vehicle,
            start_s=release,
            end_s=release,
            violation=_late_release(problem, vehicle, seq),
        )
    # the first breaks (by window) taken at the start while the route waits for its release,
    # as many as the route stays feasible with (each one off the road is never longer)
    first = _forward(problem, vehicle, seq, max(veh.shift[0], release))
    for j in range(len(veh.breaks), 0, -1):
        pre = pre_departure_breaks(veh, release, range(j))
        if pre is None:
            continue
        taken = [
            BreakTime(-1, start, veh.breaks[k][2], k, before_departure=True) for k, start in pre
        ]
        depart = max(veh.shift[0], release, taken[-1].start_s + taken[-1].duration_s)
        if depart > veh.start_late:
            continue
        alt = _forward(problem, vehicle, seq, depart, taken)
        if alt.violation is None:
            alt = _delayed(problem, vehicle, seq, alt)
            if _route_limits(problem, vehicle, alt) is None:
                first = alt
                break
    if first.violation is None and (seq or veh.breaks):
        first = _delayed(problem, vehicle, seq, first)
        # a stop with several windows may be served in a later one from a later departure,
        # which the delay above (it removes waiting only) never reaches
        several = any(len(problem.tasks[t].windows) > 1 for t in seq)
        for depart in _window_jumps(problem, first) if several else ():
            if depart > veh.start_late:
                break  # sorted: the later ones leave after the latest start too
            alt = _forward(problem, vehicle, seq, depart, _taken_before(first))
            if alt.violation is None:
                alt = _delayed(problem, vehicle, seq, alt)
                if _rank(problem, alt) < _rank(problem, first):
                    first = alt
    sched = first
    if sched.violation is None:
        sched.violation = _route_limits(problem, vehicle, sched)
    sched.cost = route_cost(problem, vehicle, sched) if seq else 0
    return sched


#: How the violation of a route whose release comes after its latest departure begins.
RELEASE_VIOLATION = "released at "


def _late_release(problem: RoutingProblem, vehicle: int, seq: Sequence[int]) -> str:
    """Why ``seq`` cannot leave ``vehicle``'s start in time: the order loaded there that is
    created last, after the vehicle's latest departure."""
    veh = problem.vehicles[vehicle]
    t = max(seq, key=lambda task: problem.tasks[task].release)
    order = problem.order_ids[problem.tasks[t].order]
    return (
        f"{RELEASE_VIOLATION}{problem.tasks[t].release} s: order {order} is created then, after "
        f"the latest departure from the start ({veh.start_late} s), and is loaded there"
    )


def _taken_before(sched: RouteSchedule) -> list[BreakTime]:
    """The breaks of a schedule taken at the start before its departure."""
    return [b for b in sched.breaks if b.before_departure]


def _rank(problem: RoutingProblem, sched: RouteSchedule) -> tuple[bool, int]:
    """(breaks a route limit, duration) of a forward schedule: the smaller, the better."""
    return _route_limits(problem, sched.vehicle, sched) is not None, sched.duration_s


def _delayed(
    problem: RoutingProblem, vehicle: int, seq: Sequence[int], first: RouteSchedule
) -> RouteSchedule:
    """A feasible forward schedule with its departure delayed as long as that only removes
    waiting (shortest duration); with breaks, waiting for a break window counts too, and the
    breaks are placed afresh (a later departure can open new waiting: a few rounds)."""
    if not problem.vehicles[vehicle].breaks:
        # removing waiting only: the same route ends no later, and is shorter
        push = _departure_slack(problem, first)
        if push > 0:
            later = _forward(problem, vehicle, seq, first.start_s + push, _taken_before(first))
            if later.violation is None and later.end_s <= first.end_s:
                return later
        return first
    for _ in range(_BREAK_DELAY_ROUNDS):
        push = _departure_slack(problem, first)
        if push <= 0:
            break
        later = _forward(problem, vehicle, seq, first.start_s + push, _taken_before(first))
        if later.violation is not None or _rank(problem, later) >= _rank(problem, first):
            break
        first = later
    return first


#: Most departures tried for serving stops in a later one of their windows (per route).
_WINDOW_JUMPS = 16


def _window_jumps(problem: RoutingProblem, sched: RouteSchedule) -> list[int]:
    """Departures at which a stop with several windows, reached without waiting, arrives as
    a later window than the one it uses opens (the first :data:`_WINDOW_JUMPS`, earliest
    first)."""
    out: set[int] = set()
    waited = 0
    free = sched.start_s
    breaks = iter([b for b in sched.breaks if not b.before_departure])
    pending = next(breaks, None)
    for pos, st in enumerate(sched.stops):
        while pending is not None and pending.after == pos - 1:
            waited += pending.start_s - free
            free = pending.start_s + pending.duration_s
            pending = next(breaks, None)
        task = problem.tasks[st.task]
        offset = st.arrival_s - waited - sched.start_s  # arrival - departure without waiting
        for lo, _ in task.windows:
            if lo > st.start_s and lo - offset > sched.start_s:
                out.add(lo - offset)
        waited += st.start_s - st.arrival_s
        free = st.departure_s
        while pending is not None and pending.after == pos:
            waited += pending.start_s - free
            free = pending.start_s + pending.duration_s
            pending = next(breaks, None)
    return sorted(out)[:_WINDOW_JUMPS]


#: Rounds of departure delay tried for a vehicle with breaks (see :func:`schedule_route`).
_BREAK_DELAY_ROUNDS = 3


def _departure_slack(problem: RoutingProblem, sched: RouteSchedule) -> int:
    """How long the departure of a feasible forward schedule can be delayed removing only
    waiting: the waiting in total, but no stop or break may start after its window closes."""
    waited = 0
    # never past the vehicle's latest start
    push = problem.vehicles[sched.vehicle].start_late - sched.start_s
    free = sched.start_s
    # the forward pass takes the breaks in the order of the vehicle's (sorted) break list,
    # the first ones before the departure (which a later departure keeps)
    closes = [hi for _, hi, _ in problem.vehicles[sched.vehicle].breaks]
    bi = len(_taken_before(sched))

    def take_breaks(after: int) -> None:
        nonlocal bi, waited, push, free
        while bi < len(sched.breaks) and sched.breaks[bi].after == after:
            b = sched.breaks[bi]
            waited += b.start_s - free
            push = min(push, waited + closes[bi] - b.start_s)
            free = b.start_s + b.duration_s
            bi += 1

    take_breaks(-1)
    for pos, st in enumerate(sched.stops):
        waited += st.start_s - st.arrival_s
        got = _window_start(problem.tasks[st.task], st.start_s)
        hi = got[1] if got is not None else st.start_s
        push = min(push, waited + hi - st.start_s)
        free = st.departure_s
        take_breaks(pos)
    return min(push, waited)


def structure_violation(problem: RoutingProblem, vehicle: int, seq: Sequence[int]) -> str | None:
    """Pairing, precedence and capacity of a sequence (no times)."""
    veh = problem.vehicles[vehicle]
    tasks = problem.tasks
    load = [0] * problem.dims
    for t in seq:
        info = problem.orders[tasks[t].order]
        if info.from_depot:
            for d, q in enumerate(info.demand):
                load[d] += q
    if any(q > c for q, c in zip(load, veh.capacity, strict=True)):
        return "capacity exceeded at the start"
    open_pickups: set[int] = set()
    for t in seq:
        task = tasks[t]
        info = problem.orders[task.order]
        if task.kind is StopKind.PICKUP:
            open_pickups.add(task.order)
        elif info.pickup is not None:
            if task.order not in open_pickups:
                return f"delivery of order {info.order.id} before its pickup"
            open_pickups.discard(task.order)
        for d, q in enumerate(task.load_change):
            load[d] += q
        if any(q > c for q, c in zip(load, veh.capacity, strict=True)):
            return f"capacity exceeded after order {info.order.id}"
    if open_pickups:
        return "a pickup without its delivery on the same route"
    return None


def _from_timing(problem: RoutingProblem, vehicle: int, tm: Timing) -> RouteSchedule:
    """The schedule of a feasible timing: leave at its latest no-longer departure."""
    starts = tm.start_times().tolist()
    task = tm.task.tolist()
    node = tm.node.tolist()
    service = tm.service.tolist()
    break_of = tm.break_of.tolist()
    load = tm.load.tolist()
    dur = problem.duration
    out = RouteSchedule(vehicle=vehicle, start_s=tm.depart, distance_m=tm.distance)
    veh = problem.vehicles[vehicle]
    for k, start in tm.pre:
        out.breaks.append(BreakTime(-1, start, veh.breaks[k][2], k, before_departure=True))
    free = tm.depart
    visits = 0
    for k in range(1, len(task) - 1):
        if task[k] == -2:
            out.breaks.append(BreakTime(visits - 1, starts[k], service[k], break_of[k]))
            free = starts[k] + service[k]
            continue
        arrival = free + int(dur[node[k - 1], node[k]])
        free = starts[k] + service[k]
        out.stops.append(StopTime(task[k], arrival, starts[k], free, tuple(load[k])))
        visits += 1
    out.end_s = free + int(dur[node[-2], node[-1]])
    return out


#: How each violation :func:`schedule_route` reports begins, and the reason an order that
#: fails it even on a direct trip is left out with (the rest: its windows).
VIOLATION_REASONS: tuple[tuple[str, UnassignedReason], ...] = (
    (RELEASE_VIOLATION, UnassignedReason.RELEASED_TOO_LATE),
    ("returns at ", UnassignedReason.OUTSIDE_SHIFT),
    ("route lasts ", UnassignedReason.OVER_MAX_DURATION),
    ("route is ", UnassignedReason.OVER_MAX_DISTANCE),
    ("a break ", UnassignedReason.BREAK_UNPLACEABLE),
    ("capacity ", UnassignedReason.OVER_CAPACITY),
    ("vehicle lacks a skill", UnassignedReason.NO_SKILL),
)


def violation_reason(violation: str) -> UnassignedReason:
    """The unassigned reason of a :func:`schedule_route` violation (windows by default)."""
    for start, reason in VIOLATION_REASONS:
        if violation.startswith(start):
            return reason
    return UnassignedReason.WINDOW_UNREACHABLE


def _route_limits(problem: RoutingProblem, vehicle: int, sched: RouteSchedule) -> str | None:
    veh = problem.vehicles[vehicle]
    if sched.end_s > veh.shift[1]:
        return f"returns at {sched.end_s} s, after the shift ends at {veh.shift[1]} s"
    if veh.max_duration_s is not None and sched.duration_s > veh.max_duration_s:
        return f"route lasts {sched.duration_s} s, over the maximum {veh.max_duration_s} s"
    if veh.max_distance_m is not None and sched.distance_m > veh.max_distance_m:
        return f"route is {sched.distance_m} m, over the maximum {veh.max_distance_m} m"
    for st in sched.stops:
        info = problem.orders[problem.tasks[st.task].order]
        if not veh.can_serve(info):
            return f"vehicle lacks a skill order {info.order.id} needs"
    return None


def route_cost(problem: RoutingProblem, vehicle: int, sched: RouteSchedule) -> int:
    """Objective value of a non-empty route (milli-cents, see :mod:`.problem`)."""
    veh = problem.vehicles[vehicle]
    return (
        veh.fixed_cost
        + veh.unit_distance_cost * sched.distance_m
        + veh.unit_duration_cost * sched.duration_s
    )


def disruption(
    seq: Sequence[int], vehicle: int, original_vehicle: Mapping[int, int], cost: int
) -> int:
    """Disruption cost of a route (milli-cents): ``cost`` for each visit of ``seq`` that
    ``original_vehicle`` (task -> vehicle of the plan before) puts on another vehicle."""
    if not cost:
        return 0
    return cost * sum(1 for t in seq if original_vehicle.get(t, vehicle) != vehicle)


def route_value(
    problem: RoutingProblem,
    vehicle: int,
    seq: Sequence[int],
    original_vehicle: Mapping[int, int],
    disruption_cost: int,
) -> int | None:
    """A non-empty route's part of the plan objective (milli-cents): its scheduled cost and
    its :func:`disruption`; None when it breaks a constraint."""
    sched = schedule_route(problem, vehicle, seq)
    if sched.violation is not None:
        return None
    return sched.cost + disruption(seq, vehicle, original_vehicle, disruption_cost)


def _check_route_range(
    index: int, v: Vehicle, cost_cents: int, distance_m: int, duration_s: int
) -> None:
    """ScenarioInputError when a route's cost or length is past what a plan holds (MAX_INT).

    Valid prices and distances can add up past it (10**12 cents per km over a 1e9 m hop):
    the Route failed validation, a 422 naming ``cost_cents``, a field of no request.
    """
    if distance_m > MAX_INT:
        raise ScenarioInputError(
            f"vehicles.{index}",
            f"the route planned for vehicle {v.id!r} is {distance_m} m long, more than the "
            f"{MAX_INT} m a plan holds: the scenario's distances are too large",
        )
    if cost_cents > MAX_INT:
        parts = {
            "fixed_cost_cents": v.fixed_cost_cents,
            "cost_per_km_cents": v.cost_per_km_cents * distance_m / 1000,
            "cost_per_hour_cents": v.cost_per_hour_cents * duration_s / 3600,
        }
        field = max(parts, key=lambda name: parts[name])
        raise ScenarioInputError(
            f"vehicles.{index}.{field}",
            f"the route planned for vehicle {v.id!r} costs {cost_cents} cents "
            f"({distance_m} m, {duration_s} s), more than the {MAX_INT} a plan holds: lower "
            "the price",
        )


def to_route(problem: RoutingProblem, sched: RouteSchedule, pinned: set[int]) -> Route:
    """The :class:`~scenarios.plan.Route` of a feasible schedule."""
    veh = problem.vehicles[sched.vehicle]
    stops: list[PlannedStop] = []
    breaks = sorted(sched.breaks, key=lambda b: b.start_s)
    number = break_order(veh.vehicle.breaks)  # index in veh.breaks -> in the Vehicle's
    bi = 0
    # the load leaving the start (what it delivers from there): a break taken before the
    # first stop carries it (its load_after was [], no load per dimension)
    start_load = [0] * problem.dims
    for st in sched.stops:
        info = problem.orders[problem.tasks[st.task].order]
        if info.from_depot and problem.tasks[st.task].kind is StopKind.DELIVERY:
            for d, q in enumerate(info.demand):
                start_load[d] += q

    def flush(after: int) -> None:
        nonlocal bi
        while bi < len(breaks) and breaks[bi].after == after:
            b = breaks[bi]
            stops.append(
                PlannedStop(
                    order_id=None,
                    kind=StopKind.BREAK,
                    arrival_s=b.start_s,
                    start_s=b.start_s,
                    departure_s=b.start_s + b.duration_s,
                    load_after=list(stops[-1].load_after) if stops else list(start_load),
                    break_index=number[b.index],
                )
            )
            bi += 1

    flush(-1)
    for pos, st in enumerate(sched.stops):
        task = problem.tasks[st.task]
        stops.append(
            PlannedStop(
                order_id=problem.order_ids[task.order],
                kind=task.kind,
                task_id=task.task_id,
                location=problem.node_locations[task.node],
                arrival_s=st.arrival_s,
                start_s=st.start_s,
                departure_s=st.departure_s,
                load_after=list(st.load_after),
                pinned=st.task in pinned,
            )
        )
        flush(pos)
    v = veh.vehicle
    cost_cents = (
        v.fixed_cost_cents
        + round(
            v.cost_per_km_cents * sched.distance_m / 1000
            + v.cost_per_hour_cents * sched.duration_s / 3600
        )
        if sched.stops
        else 0
    )
    _check_route_range(sched.vehicle, v, cost_cents, sched.distance_m, sched.duration_s)
    return Route(
        vehicle_id=veh.vehicle.id,
        stops=stops,
        start_s=sched.start_s,
        end_s=sched.end_s,
        distance_m=sched.distance_m,
        duration_s=sched.duration_s,
        cost_cents=cost_cents,
    )
