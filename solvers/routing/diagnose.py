"""Why an order cannot be served at all, before any search: a closed node, skills, capacity,
windows, route limits, shifts, breaks and release times (an order created too late)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from scenarios.geo import Location
from scenarios.model import FulfilmentNode
from scenarios.plan import UnassignedReason
from solvers.routing.problem import RoutingProblem, _build
from solvers.routing.schedule import schedule_route, violation_reason
from solvers.routing.timing import (
    Insertion,
    break_release,
    build_timing,
    insert_one,
    insert_pair_same_gap,
    route_timing,
    visits,
)


class DiagnosisDeadlineError(Exception):
    """The diagnosis reached its deadline before every order was checked."""

    def __init__(self, diagnosed: dict[int, tuple[UnassignedReason, str]]) -> None:
        super().__init__("the time limit was reached in the routing diagnosis")
        #: the reasons found before the deadline (keyed by order position); the orders not
        #: in it were not all checked
        self.diagnosed = diagnosed


def _check_clock(deadline: float | None, out: dict[int, tuple[UnassignedReason, str]]) -> None:
    """Raise :class:`DiagnosisDeadlineError` with ``out`` if ``deadline`` has passed."""
    if deadline is not None and time.perf_counter() > deadline:
        raise DiagnosisDeadlineError(dict(out))


def diagnose_orders(
    problem: RoutingProblem, deadline: float | None = None
) -> dict[int, tuple[UnassignedReason, str]]:
    """Orders no vehicle can serve even alone, with the reason; keyed by order position.

    Vectorised over orders, one pass per vehicle type: a direct trip (start, the order's
    visits, end) is checked in closed form on every type at once; only the orders that pass no
    such check are scheduled one by one: on the vehicle types where the closed form is a
    relaxation (several windows, several breaks), and once to name the violated constraint.

    With a ``deadline`` (a ``time.perf_counter()`` value) it looks at the clock between its
    passes, vehicle types and orders scheduled, and raises :class:`DiagnosisDeadlineError`
    (the reasons found so far) once the deadline has passed with orders left to check.
    """
    out: dict[int, tuple[UnassignedReason, str]] = _closed_nodes(problem)
    for closed, why_closed in _pickups_closed_before_creation(problem).items():
        out.setdefault(closed, why_closed)
    n = len(problem.orders)
    if not problem.vehicles:
        for i in range(n):
            out.setdefault(i, (UnassignedReason.NO_SOLUTION, "the scenario has no vehicles"))
        return out
    if not n:
        return out
    _check_clock(deadline, out)
    reps: dict[tuple[object, ...], int] = {}
    for vi, veh in enumerate(problem.vehicles):
        reps.setdefault(veh.type_key, vi)
    kinds = list(reps.values())
    dims = problem.scenario.capacity_dims
    demand = np.array([o.demand for o in problem.orders], dtype=np.int64).reshape(n, problem.dims)
    caps = np.array([problem.vehicles[v].capacity for v in kinds], dtype=np.int64).reshape(
        len(kinds), problem.dims
    )
    by_skills = {
        s: np.array([o.skills <= s for o in problem.orders], dtype=bool)
        for s in {problem.vehicles[v].skills for v in kinds}
    }
    skilled = np.stack([by_skills[problem.vehicles[v].skills] for v in kinds], axis=1)
    big = skilled & np.all(demand[:, None, :] <= caps[None, :, :], axis=2)
    simple = np.array(
        [all(len(problem.tasks[t].windows) <= 1 for t in o.tasks) for o in problem.orders],
        dtype=bool,
    ).reshape(n)
    _check_clock(deadline, out)
    reached = _direct_trips(problem, kinds, big, simple, deadline, out)
    for oi in np.flatnonzero(~reached):
        if int(oi) in out:
            continue
        _check_clock(deadline, out)
        info = problem.orders[oi]
        if not skilled[oi].any():
            need = ", ".join(sorted(info.skills))
            out[int(oi)] = (
                UnassignedReason.NO_SKILL,
                f"no vehicle has every skill needed ({need})",
            )
            continue
        if not big[oi].any():
            over = [
                dims[d]
                for d in range(problem.dims)
                if all(demand[oi, d] > caps[k, d] for k in range(len(kinds)) if skilled[oi, k])
            ]
            out[int(oi)] = (
                UnassignedReason.OVER_CAPACITY,
                f"demand {list(info.demand)} exceeds every capable vehicle's capacity"
                f" ({', '.join(over) or 'combined'})",
            )
            continue
        capable = [int(k) for k in np.flatnonzero(big[oi])]
        # the closed form was exact for simple orders on vehicles with at most one break:
        # only the other vehicle types need the scheduler
        unsure = [
            k for k in capable if not simple[oi] or len(problem.vehicles[kinds[k]].breaks) > 1
        ]
        if _fits_some(problem, kinds, unsure, info.tasks, deadline, out):
            continue
        first = kinds[capable[0]]
        violation = schedule_route(problem, first, list(info.tasks)).violation
        why = f"vehicle {problem.vehicles[first].vehicle.id}: {violation}"
        if violation is not None:
            reason = violation_reason(violation)
            if (
                reason in _RELEASE_SENSITIVE
                and info.order.created_s > 0
                and _fits_unreleased(problem, first, int(oi))
            ):
                reason = UnassignedReason.RELEASED_TOO_LATE
                why += (
                    f"; it is created at {info.order.created_s} s and would fit were it "
                    "created earlier"
                )
            elif reason in _BREAK_SENSITIVE and _fits_without_breaks(problem, first, info.tasks):
                reason = UnassignedReason.BREAK_UNPLACEABLE
                why += "; it would fit without the driver's breaks"
            if reason is not UnassignedReason.RELEASED_TOO_LATE:
                why += _release_note(problem, first, int(oi))
            out[int(oi)] = (
                reason,
                f"even a direct trip fails with every capable vehicle (e.g. {why})",
            )
    return out


#: Direct trips scheduled for one order between two looks at the diagnosis's deadline: an
#: order eligible on many vehicle types that the closed form cannot settle (several breaks
#: or windows) is scheduled on each in turn
LOOK_SCHEDULES = 16


def _fits_some(
    problem: RoutingProblem,
    kinds: Sequence[int],
    unsure: Sequence[int],
    tasks: tuple[int, ...],
    deadline: float | None,
    out: dict[int, tuple[UnassignedReason, str]],
) -> bool:
    """Whether the direct trip of ``tasks`` fits one of the vehicle types ``unsure`` (indexes
    into ``kinds``), looking at ``deadline`` every :data:`LOOK_SCHEDULES` schedules."""
    for j, k in enumerate(unsure):
        if j and j % LOOK_SCHEDULES == 0:
            _check_clock(deadline, out)
        if schedule_route(problem, kinds[k], list(tasks)).violation is None:
            return True
    return False


#: Violations a driver break can cause by taking the time the trip needed.
_BREAK_SENSITIVE = frozenset(
    {
        UnassignedReason.WINDOW_UNREACHABLE,
        UnassignedReason.OUTSIDE_SHIFT,
        UnassignedReason.OVER_MAX_DURATION,
    }
)


#: Violations an order's release time can cause: the route leaves the start later (the order
#: is loaded there), or the pickup's windows are cut to open at the order's creation.
_RELEASE_SENSITIVE = _BREAK_SENSITIVE | {
    UnassignedReason.OVER_MAX_DISTANCE,
    UnassignedReason.BREAK_UNPLACEABLE,
}


def _release_note(problem: RoutingProblem, vehicle: int, order: int) -> str:
    """What the release time of an order loaded at the start adds to its failed direct trip
    on ``vehicle``, when it binds there (created after the shift starts); else ''. (A
    pickup's windows, cut at the order's creation, say it themselves.)"""
    info = problem.orders[order]
    created = info.order.created_s
    if not info.from_depot or created <= problem.vehicles[vehicle].shift[0]:
        return ""
    return f"; the order is created at {created} s: the trip leaves the start no earlier"


def _fits_unreleased(problem: RoutingProblem, vehicle: int, order: int) -> bool:
    """Whether the direct trip of order ``order`` fits ``vehicle`` were it created at 0 s."""
    info = problem.orders[order]
    bare = _build(problem.scenario, [info.order.model_copy(update={"created_s": 0})], problem)
    return schedule_route(bare, vehicle, list(bare.orders[0].tasks)).violation is None


def _fits_without_breaks(problem: RoutingProblem, vehicle: int, tasks: tuple[int, ...]) -> bool:
    """Whether the direct trip fits ``vehicle`` once its breaks are taken away."""
    veh = problem.vehicles[vehicle]
    if not veh.breaks:
        return False
    fleet = list(problem.vehicles)
    fleet[vehicle] = replace(veh, breaks=())
    bare = replace(problem, vehicles=tuple(fleet), _index={})
    return schedule_route(bare, vehicle, list(tasks)).violation is None


def _pickups_closed_before_creation(
    problem: RoutingProblem,
) -> dict[int, tuple[UnassignedReason, str]]:
    """Orders whose pickup windows all close before the order is created (``created_s``):
    nothing can pick them up (their pickup task holds an empty window)."""
    out: dict[int, tuple[UnassignedReason, str]] = {}
    for oi, info in enumerate(problem.orders):
        pickup = info.order.pickup
        created = info.order.created_s
        if pickup is None or not pickup.time_windows or created <= 0:
            continue
        last = max(w.end_s for w in pickup.time_windows)
        if last < created:
            out[oi] = (
                UnassignedReason.RELEASED_TOO_LATE,
                f"the order is created at {created} s, after its pickup windows close (the "
                f"last at {last} s)",
            )
    return out


def _closed_nodes(problem: RoutingProblem) -> dict[int, tuple[UnassignedReason, str]]:
    """Orders whose pickup is at a fulfilment node that is closed during all its windows.

    Courier jobs of an allocation (:func:`~solvers.routing.routing_scenario_from_allocation`)
    pick up at the node; a parcel ready after the node's last closing has no window left.
    """
    at: dict[Location, list[FulfilmentNode]] = {}
    for node in problem.scenario.nodes:
        at.setdefault(node.location, []).append(node)
    out: dict[int, tuple[UnassignedReason, str]] = {}
    if not at:
        return out
    for oi, info in enumerate(problem.orders):
        pickup = info.order.pickup
        if pickup is None or not pickup.time_windows or pickup.location not in at:
            continue
        nodes = at[pickup.location]
        if any(
            not node.opening_hours
            or any(
                w.start_s <= h.end_s and h.start_s <= w.end_s
                for w in pickup.time_windows
                for h in node.opening_hours
            )
            for node in nodes
        ):
            continue
        node = nodes[0]
        hours = ", ".join(f"{h.start_s}-{h.end_s} s" for h in node.opening_hours)
        windows = ", ".join(f"{w.start_s}-{w.end_s} s" for w in pickup.time_windows)
        out[oi] = (
            UnassignedReason.NODE_CLOSED,
            f"node {node.id} is closed when the pickup can happen ({windows}); it opens {hours}",
        )
    return out


def _fits(
    max_duration: int | None, max_distance: int | None, distance: int, ins: Insertion
) -> np.ndarray:
    """Where an insertion is feasible within a vehicle's maximum duration and distance."""
    fit = ins.ok
    if max_duration is not None:
        fit = fit & (ins.duration <= max_duration)
    if max_distance is not None:
        fit = fit & (distance + ins.added_distance <= max_distance)
    return fit


def _direct_trips(
    problem: RoutingProblem,
    kinds: list[int],
    big: np.ndarray,
    simple: np.ndarray,
    deadline: float | None = None,
    found: dict[int, tuple[UnassignedReason, str]] | None = None,
) -> np.ndarray:
    """Per order: some vehicle type surely serves it alone (closed form; may miss a few).

    Only where the closed form is exact: orders whose visits have at most one window, vehicle
    types with at most one break; the other orders are left to the scheduler. Past
    ``deadline`` (looked at before each vehicle type) it raises
    :class:`DiagnosisDeadlineError` with the reasons ``found`` before it.
    """
    n = len(problem.orders)
    deliv = np.array([o.delivery for o in problem.orders], dtype=np.int64)
    pick = np.array([o.pickup if o.pickup is not None else -1 for o in problem.orders], np.int64)
    pd = pick >= 0
    reached = np.zeros(n, dtype=bool)
    for k, v in enumerate(kinds):
        rows = np.flatnonzero(big[:, k] & ~reached & simple)
        veh = problem.vehicles[v]
        if not len(rows) or len(veh.breaks) > 1:
            continue
        _check_clock(deadline, found or {})
        tm = route_timing(problem, v, [])
        if not tm.feasible:
            continue
        gaps = np.arange(tm.num_gaps, dtype=np.int64)[None, :]
        ok = np.zeros(len(rows), dtype=bool)
        fit: np.ndarray
        for mask, pair in ((~pd[rows], False), (pd[rows], True)):
            r = rows[mask]
            if not len(r):
                continue
            d = visits(problem, deliv[r], column=True)
            if pair:
                p = visits(problem, pick[r], column=True)
                ins = insert_pair_same_gap(tm, problem, gaps, p, d)
            else:
                release = problem.arrays.release[deliv[r]][:, None]
                ins = insert_one(tm, problem, gaps, *d, release=release)
            fit = _fits(veh.max_duration_s, veh.max_distance_m, tm.distance, ins)
            if not pair:
                # the break taken at the start while the trip waits for the order's release
                early = break_release(problem, v, [], problem.arrays.release[deliv[r]])
                if early is not None and early[0].any():
                    bare = build_timing(problem, v, [])
                    pre = insert_one(bare, problem, gaps[:, :1], *d, release=early[1][:, None])
                    pre_fit = _fits(veh.max_duration_s, veh.max_distance_m, bare.distance, pre)
                    fit = fit | (pre_fit & early[0][:, None])
            ok[mask] = fit.any(axis=1)
        reached[rows[ok]] = True
    return reached
