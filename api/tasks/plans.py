"""Dispatch-plan jobs: allocate, route, evaluate in the twin; and re-optimise a stored plan."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from api.db.models import Job, PlanRecord
from api.jobs.registry import JsonDict, ProgressFn
from api.jobs.service import event, new_id
from api.schemas.plans import (
    AllocationSummary,
    Explanations,
    PlanCreate,
    PlanResult,
    ReoptimiseCreate,
    ReoptimiseResult,
)
from api.schemas.routes import SolverInfo
from api.tasks.changes import plan_changes
from api.tasks.progress import timed_progress
from api.tasks.routes import diagnosis as route_diagnosis
from api.tasks.stored import read_payload
from api.versions import solver_versions
from scenarios.errors import (
    InputError,
    RequestInputError,
    ScenarioInputError,
    fields_under,
    input_error_from_validation,
)
from scenarios.geo import MAX_ID_LENGTH, TimeWindow
from scenarios.model import Break, Order, Scenario, Vehicle
from scenarios.plan import AllocationLine, Plan, PlannedStop, Route, StopKind
from scenarios.saved import (
    CONTROL_CHARACTERS_RULE,
    NewerRule,
    newer_rule,
    read_saved,
    saved_context,
    validate_saved,
)
from scenarios.skills import NEW_WORK_SKILL, ON_BOARD_PREFIX  # no scenario may hold them
from solvers.allocation.request import AllocationCosts, AllocationRules
from solvers.allocation.result import Unfilled

log = logging.getLogger("api.plans")

SCENARIO_KEY = "_scenario"
COMPLETED_KEY = "_completed"
#: A re-plan payload's key holding the id its plan will have (an ``if_latest`` re-plan's,
#: chosen when its request claims the plan, so that a 409 can name it)
PLAN_ID_KEY = "plan_id"


def _routing_scenario(scenario: Scenario, lines: list[AllocationLine]) -> Scenario:
    """Courier jobs of the plan: pickup at the node, delivery at the customer."""
    from solvers.routing import routing_scenario_from_allocation

    if not scenario.nodes:
        return scenario  # delivery-only scenario: the orders are the jobs
    return routing_scenario_from_allocation(scenario, lines)


@contextmanager
def _orders_of_jobs(scenario: Scenario, jobs: Scenario) -> Iterator[None]:
    """Re-raise a ScenarioInputError naming a courier job (``orders.N...`` of ``jobs``, say
    ``orders.0.penalty_cents``) with the place of the job's order in ``scenario`` instead:
    some orders ship nothing and others ship from several nodes, so the two differ."""
    from solvers.routing.from_allocation import order_of_job

    try:
        yield
    except ScenarioInputError as err:
        head, _, rest = err.field.partition(".")
        index, _, tail = rest.partition(".")
        if jobs is scenario or head != "orders" or not index.isdigit():
            raise
        order_id = order_of_job(scenario, jobs.orders[int(index)].id)
        if order_id is None:
            raise
        place = next(i for i, order in enumerate(scenario.orders) if order.id == order_id)
        field = ".".join(part for part in ("orders", str(place), tail) if part)
        raise ScenarioInputError(field, err.reason, source=err.source) from None


#: The field of a re-optimisation request that names its stored plan (the path parameter).
STORED_PLAN_FIELD = "path.plan_id"


def predates(rule: NewerRule) -> str:
    """The end of the reason of a 422 on a stored plan that breaks ``rule``, newer than it."""
    return (
        f"the plan was stored before {rule.what}: it can be read back, not re-planned; make a "
        f"new plan {rule.fix}"
    )


#: the end of the reason of a 422 on a stored id holding a control character
PREDATES_ID_RULE = predates(CONTROL_CHARACTERS_RULE)


def stored_plan_error(
    what: str | None, field: str, reason: str, *, part: str = "scenario"
) -> RequestInputError:
    """An error on a part of the stored plan, which no field of the request holds: named by
    the plan id, the reason saying which part (``order 'o2' of the stored plan``) and where
    (``field`` of its ``part``: its scenario, its plan, its allocation rules), and, when it
    breaks a rule newer than the plan (:func:`~scenarios.saved.newer_rule`: an id holding a
    control character, a SKU key of 0 characters), that the plan predates it."""
    possessive = "'" if part.endswith("s") else "'s"  # its plan's, its allocation rules'
    where = f"its {part}{possessive} {field}"
    part = f"{what} of the stored plan ({where})" if what else f"the stored plan ({where})"
    rule = newer_rule(field, reason)
    if rule is not None:
        reason += f" ({predates(rule)})"
    return RequestInputError(STORED_PLAN_FIELD, f"{part}: {reason}")


def _request_field(
    err: InputError, order_ids: list[str], req: ReoptimiseCreate, stored: Scenario
) -> RequestInputError:
    """``err``, on a field of a scenario the re-optimisation made (``orders.N...``, order N
    being ``order_ids[N]``; ``vehicles.N...`` or ``nodes.N...`` as in the ``stored``
    scenario), on a field of the request: a new order's ``new_orders.{i}...``, else the
    stored plan (see :func:`stored_plan_error`)."""
    head, _, rest = err.field.partition(".")
    index, _, tail = rest.partition(".")
    if head == "orders" and index.isdigit() and int(index) < len(order_ids):
        order_id = order_ids[int(index)]
        new = next((i for i, o in enumerate(req.new_orders) if o.id == order_id), None)
        if new is not None:
            field = ".".join(part for part in ("new_orders", str(new), tail) if part)
            return RequestInputError(field, err.reason, source=err.source)
        place = next((i for i, o in enumerate(stored.orders) if o.id == order_id), None)
        if place is not None:
            field = ".".join(part for part in ("orders", str(place), tail) if part)
            return stored_plan_error(f"order {order_id!r}", field, err.reason)
    parts: dict[str, tuple[str, list[Any]]] = {
        "vehicles": ("vehicle", list(stored.vehicles)),
        "nodes": ("node", list(stored.nodes)),
    }
    if head in parts and index.isdigit() and int(index) < len(parts[head][1]):
        what, items = parts[head]
        return stored_plan_error(f"{what} {items[int(index)].id!r}", err.field, err.reason)
    return stored_plan_error(None, err.field or "(root)", err.reason)


@contextmanager
def _reoptimise_fields(
    order_ids: list[str], req: ReoptimiseCreate, stored: Scenario
) -> Iterator[None]:
    """Re-raise a ScenarioInputError on the re-planned scenario, whose ``orders.N`` are
    ``order_ids``, on a field of the re-optimisation request (see :func:`_request_field`)."""
    try:
        yield
    except ScenarioInputError as err:
        raise _request_field(err, order_ids, req, stored) from None


@contextmanager
def _new_orders_allocation(
    order_ids: list[str], req: ReoptimiseCreate, stored: Scenario
) -> Iterator[None]:
    """Re-raise an InputError of the new orders' allocation (its request holds the new
    orders, ``order_ids``, and the stored nodes) on a field of the re-optimisation request:
    ``params.X`` is ``allocation.X``, the orders' lines as a whole ``new_orders``."""
    try:
        yield
    except InputError as err:
        head, _, rest = err.field.partition(".")
        if head == "params":
            raise RequestInputError(f"allocation.{rest}", err.reason) from None
        if err.field == "orders":
            raise RequestInputError("new_orders", err.reason) from None
        if head in ("orders", "nodes"):
            raise _request_field(err, order_ids, req, stored) from None
        what = "the allocation of the new orders"
        raise RequestInputError(
            STORED_PLAN_FIELD, f"{what} ({err.field or '(root)'}): {err.reason}"
        ) from None


@contextmanager
def warm_start_fields(old: Plan, stored_stops: list[list[int]]) -> Iterator[None]:
    """Re-raise an InputError on the warm start the stored plan ``old`` gave the solver
    (``initial_plan.routes.R...``, route R being ``old.routes[R]`` with only the stops still
    to do: ``stored_stops[R]`` their places in it) on the stored plan: the request has no
    warm start, so only corrupted stored data (a vehicle with two routes, a stop twice) gets
    here. A stop visiting a task twice names its first visit in the stored plan too (the
    warm start's numbering, which skips the stops done, was said as the stored plan's)."""
    try:
        yield
    except ScenarioInputError:
        raise
    except InputError as err:
        if not err.field.startswith("initial_plan."):
            raise
        from solvers.routing.solve import DuplicateVisitError, visited_twice_reason

        def stored_place(r: int, s: int) -> int | None:
            places = stored_stops[r] if r < len(stored_stops) else []
            return places[s] if s < len(places) else None

        parts = err.field.split(".")[1:]  # routes, R, stops, S, ...
        what = None
        if len(parts) >= 2 and parts[0] == "routes" and parts[1].isdigit():
            r = int(parts[1])
            if r < len(old.routes):
                what = f"the route of vehicle {old.routes[r].vehicle_id!r} (route {r})"
                if len(parts) >= 4 and parts[2] == "stops" and parts[3].isdigit():
                    place = stored_place(r, int(parts[3]))
                    if place is not None:
                        parts[3] = str(place)
        field = ".".join(["routes", *parts[1:]]) if parts else "routes"
        reason = err.reason
        if isinstance(err, DuplicateVisitError):  # its first visit, numbered as stored too
            r0, s0 = err.first
            reason = visited_twice_reason(err.kind, err.order_id, r0, stored_place(r0, s0))
        raise stored_plan_error(what, field, reason, part="plan") from None


def check_stored_visits(
    old: Plan, scenario: JsonDict, req: ReoptimiseCreate, completed: Collection[str]
) -> None:
    """Raise the 422 on the stored plan ``old`` if it visits a task (an order's pickup or
    delivery) twice among the stops the re-plan ``req`` keeps as its warm start: neither
    started before ``now_s`` (one that did makes the task done), nor of an order cancelled
    or ``completed``. The router refuses such a warm start (a queued re-plan's job failed on
    it); checked before the re-plan is queued, without the travel matrix: a duplicate of an
    order the router's diagnosis would leave out (it ignores such stops) is refused too, as
    no plan the service stored visits a task twice. Named as the job named it."""
    from solvers.routing.solve import visited_twice_reason

    first: dict[tuple[str, StopKind], tuple[int, int]] = {}
    for ri, si, stop in _warm_start_stops(old, scenario, req, completed)[0]:
        job = stop.order_id
        assert job is not None
        key = (job, stop.kind)
        if key in first:
            r0, s0 = first[key]
            raise stored_plan_error(
                f"the route of vehicle {old.routes[ri].vehicle_id!r} (route {ri})",
                f"routes.{ri}.stops.{si}",
                visited_twice_reason(stop.kind, job, r0, s0),
                part="plan",
            )
        first[key] = (ri, si)


def _warm_start_stops(
    old: Plan, scenario: JsonDict, req: ReoptimiseCreate, completed: Collection[str]
) -> tuple[list[tuple[int, int, PlannedStop]], set[tuple[str, StopKind]]]:
    """The stops of the stored plan ``old`` the re-plan ``req`` keeps as its warm start
    (route, stop, the stop), as :func:`check_stored_visits` counts them: neither started
    before ``now_s``, nor of an order cancelled or ``completed``; and the tasks done."""
    from scenarios.plan import shipment_order

    order_ids = {o.get("id") for o in scenario.get("orders", [])}
    node_ids = {n.get("id") for n in scenario.get("nodes", [])}
    gone = set(req.cancelled_order_ids)
    stops = [
        (ri, si, stop)
        for ri, route in enumerate(old.routes)
        for si, stop in enumerate(route.stops)
        if stop.order_id is not None and stop.kind != StopKind.BREAK
    ]
    done = {(stop.order_id, stop.kind) for _, _, stop in stops if stop.start_s < req.now_s}
    kept = []
    for ri, si, stop in stops:
        job = stop.order_id
        assert job is not None
        if (job, stop.kind) in done or (job, StopKind.DELIVERY) in done or job in completed:
            continue  # done, or its parcel delivered: not in the warm start
        if job in gone or shipment_order(job, order_ids, node_ids) in gone:
            continue
        kept.append((ri, si, stop))
    return kept, {(str(job), kind) for job, kind in done}


def _stops_done(
    old: Plan, now_s: int
) -> tuple[set[tuple[str, StopKind]], dict[str, str], dict[str, tuple[Any, int]]]:
    """The tasks of the stored plan ``old`` done by ``now_s`` (their stop started before
    it), the courier that picked up each parcel on board, and each courier's last stop
    started (its place and departure).

    A job delivered in ``old`` without a pickup stop anywhere in it has its parcel on board
    of the delivering courier already: ``old`` is a re-plan made after that pickup (a
    re-plan's routes hold only the stops still to do, its parcels on board delivery-only), so
    the pickup is done. Re-planned again, such a parcel was taken for one still at its node:
    its pin released ("the pickup-and-delivery partner is missing"), its courier sent back
    to pick it up, or the order dropped for cost with the parcel in the van. A job with no
    pickup at all (a scenario without nodes) is unaffected (:func:`replan_jobs` reads this
    only for jobs with a pickup). So is a job ``old`` left unassigned on board of a courier
    (``on_board_vehicle_id``, :func:`mark_on_board`): without a stop at all, it was taken for
    a parcel at its node, which any courier could pick up.
    """
    done: set[tuple[str, StopKind]] = set()
    picked_by: dict[str, str] = {}  # job -> the courier that picked it up
    last_stop: dict[str, tuple[Any, int]] = {}
    picked_up = {
        stop.order_id
        for route in old.routes
        for stop in route.stops
        if stop.kind == StopKind.PICKUP
    }
    for left in old.unassigned:  # on board, but its courier could not deliver it then
        if left.on_board_vehicle_id is not None:
            done.add((left.order_id, StopKind.PICKUP))
            picked_by[left.order_id] = left.on_board_vehicle_id
    for route in old.routes:
        for stop in route.stops:
            if stop.order_id is None or stop.kind == StopKind.BREAK:
                continue
            if stop.kind == StopKind.DELIVERY and stop.order_id not in picked_up:
                done.add((stop.order_id, StopKind.PICKUP))  # on board since an earlier plan
                picked_by[stop.order_id] = route.vehicle_id
            if stop.start_s < now_s:
                done.add((stop.order_id, stop.kind))
                if stop.kind == StopKind.PICKUP:
                    picked_by[stop.order_id] = route.vehicle_id
                if stop.location is not None:
                    last_stop[route.vehicle_id] = (stop.location, stop.departure_s)
    return done, picked_by, last_stop


def _cancelled(
    old: Plan, scenario: Scenario, completed: Collection[str], req: ReoptimiseCreate
) -> tuple[set[str], dict[str, str]]:
    """The orders the re-plan ``req`` cancels, and those it cannot, with their diagnosis
    line: an order delivered before ``now_s`` (every job of it) is no longer cancelled: it
    stays, completed, and the diagnosis says so (it left the allocation without a word,
    listed neither among the completed orders nor among the changes' removed ones)."""
    cancelled = set(req.cancelled_order_ids)
    too_late = _delivered_before(old, scenario, completed, cancelled, req.now_s)
    return cancelled - set(too_late), too_late


def _breaks_taken(old: Plan, scenario: Scenario, now_s: int) -> dict[str, tuple[set[int], int]]:
    """Per courier, the indices of its vehicle breaks the stored plan ``old`` has it start
    before ``now_s`` (taken, or under way), and when the last of them ends."""
    from solvers.validate import match_breaks

    breaks = {v.id: v.breaks for v in scenario.vehicles}
    out: dict[str, tuple[set[int], int]] = {}
    for route in old.routes:
        own = breaks.get(route.vehicle_id, [])
        matched = match_breaks(route.stops, own)
        for stop in route.stops:
            b = matched.get(id(stop))
            if stop.kind != StopKind.BREAK or b is None or stop.start_s >= now_s:
                continue
            taken, until = out.get(route.vehicle_id, (set(), 0))
            taken.add(next(k for k, mine in enumerate(own) if mine is b))
            out[route.vehicle_id] = (taken, max(until, stop.departure_s))
    return out


def _departures(old: Plan, now_s: int) -> dict[str, int]:
    """Per courier whose route of the stored plan ``old`` (with a stop of an order) left its
    start before ``now_s``, when it left."""
    return {
        route.vehicle_id: route.start_s
        for route in old.routes
        if route.start_s < now_s and any(stop.order_id is not None for stop in route.stops)
    }


def _driven_m(
    scenario: Scenario, old: Plan, now_s: int, positions: dict[str, Any]
) -> dict[str, int]:
    """Per courier whose route of the stored plan ``old`` left its start before ``now_s``
    (:func:`_departures`), the metres it has driven by ``now_s``: from its start through the
    stops it started before ``now_s``, then to its ``courier_positions`` entry when one is
    given (``positions``: vehicle id -> location); without one the re-plan starts it at its
    last stop started, so the leg it may be on counts in the re-plan's route. A stop stored
    without its location (a plan of an older version) adds nothing."""
    departed = _departures(old, now_s)
    starts = {v.id: v.start_location for v in scenario.vehicles}
    driven: dict[str, int] = {}
    for route in old.routes:
        start = starts.get(route.vehicle_id)
        if route.vehicle_id not in departed or start is None:
            continue
        places = [start]
        places += [
            stop.location
            for stop in route.stops
            if stop.start_s < now_s and stop.location is not None and stop.kind != StopKind.BREAK
        ]
        if route.vehicle_id in positions:
            places.append(positions[route.vehicle_id])
        if len(places) < 2:
            continue
        distance = scenario.travel.matrix(places).distance_m
        driven[route.vehicle_id] = sum(int(distance[k, k + 1]) for k in range(len(places) - 1))
    return driven


def _replan_vehicles(
    scenario: Scenario, req: ReoptimiseCreate, old: Plan, last_stop: dict[str, tuple[Any, int]]
) -> tuple[list[Vehicle], dict[str, str]]:
    """The couriers of a re-plan: each starts where it is (its ``courier_positions`` entry,
    else its last stop started, :func:`_stops_done`, else where the stored scenario starts
    it: a re-plan's is where its own re-plan left it), its shift from ``now_s`` at the
    earliest, without the breaks it has taken (:func:`_breaks_taken`: a courier took again
    a break it had started before ``now_s``) or can no longer start in their window and,
    without a position given, no earlier than the end of the break it is on; a courier whose
    route of the stored plan ``old`` left its start (:func:`_departures`) has what is left of
    its ``max_duration_s``, and of its ``max_distance_m`` what it has not driven yet
    (:func:`_driven_m`).

    Also returns the couriers over budget, each with what it is over: a budget with at most
    1 s or 1 m left (a used-up budget is stored as 1, the least a budget can be, so a
    re-plan of the re-plan finds it used up too). Such a courier still delivers what it
    carries but takes no new work (:func:`replan_jobs`)."""
    taken = _breaks_taken(old, scenario, req.now_s)
    departed = _departures(old, req.now_s)
    positions = {p.vehicle_id: (p.location, p.available_s) for p in req.courier_positions}
    driven = (
        _driven_m(scenario, old, req.now_s, {k: where for k, (where, _) in positions.items()})
        if any(v.max_distance_m is not None for v in scenario.vehicles)
        else {}
    )
    vehicles = []
    over: dict[str, str] = {}
    for vehicle in scenario.vehicles:
        shift = vehicle.shift or scenario.horizon
        where = positions.get(vehicle.id) or last_stop.get(vehicle.id)
        update: dict[str, Any] = {}
        start_s = max(shift.start_s, req.now_s)
        if where is not None:
            update["start_location"] = where[0]
            update["end_location"] = vehicle.end
            start_s = max(start_s, where[1])
        done_breaks, on_break_until = taken.get(vehicle.id, (set(), 0))
        if done_breaks and vehicle.id not in positions:
            start_s = max(start_s, on_break_until)
        start_s = min(start_s, shift.end_s)
        # the breaks still to take: not those started before now_s, nor those that must
        # start before the courier is free (a courier idle through its break's window, with
        # no route then, could never take it: it was left out of the re-plan, every order
        # it alone could serve unassigned as break_unplaceable)
        breaks = [
            b
            for k, b in enumerate(vehicle.breaks)
            if k not in done_breaks and b.window.end_s >= start_s
        ]
        if len(breaks) != len(vehicle.breaks):
            update["breaks"] = breaks
        update["shift"] = TimeWindow(start_s=start_s, end_s=shift.end_s)
        late = vehicle.latest_start_s
        if where is not None or (late is not None and late < start_s):
            # on the road (or free at its position): its time runs from now, so the router
            # may not delay its departure to shorten the route (a courier on its way to a
            # stop due at once was planned to idle there until the window's end). A latest
            # start before the shift's new start (the previous re-plan's, in a re-plan of a
            # re-plan of a courier with no stop since: it was still idle where it was) left
            # a courier that could never leave: the greedy gave it nothing, OR-Tools failed
            update["latest_start_s"] = start_s
        left = departed.get(vehicle.id)
        used_up: list[str] = []
        if vehicle.max_duration_s is not None:
            on_road = start_s - left if left is not None and left < start_s else 0
            # its route's time counts from when it left (the re-plan's route counted from
            # now: a courier of a 1 h limit re-planned after 25 min was 82 min on the road)
            if on_road:
                update["max_duration_s"] = max(1, vehicle.max_duration_s - on_road)
            if vehicle.max_duration_s - on_road <= 1:
                used_up.append(
                    _used_up("max_duration_s", vehicle.max_duration_s, on_road, "s on the road")
                )
        if vehicle.max_distance_m is not None:
            metres = driven.get(vehicle.id, 0)
            # likewise its distance counts from its start (the re-plan's route counted from
            # where it is: a courier of a 10 km limit with 6 km behind it got 10 km more)
            if metres:
                update["max_distance_m"] = max(1, vehicle.max_distance_m - metres)
            if vehicle.max_distance_m - metres <= 1:
                used_up.append(
                    _used_up("max_distance_m", vehicle.max_distance_m, metres, "m driven")
                )
        if used_up:
            over[vehicle.id] = "; ".join(used_up)
        vehicles.append(vehicle.model_copy(update=update))
    return vehicles, over


def _used_up(field: str, budget: int, used: int, what: str) -> str:
    """How a courier's ``field`` budget (``budget``, with ``used`` of it ``what``) is used up."""
    unit = field.rsplit("_", 1)[-1]
    if budget <= 1:  # stored so by an earlier re-plan that found it used up
        return f"{field} used up by an earlier re-plan"
    return f"{field} {budget} {unit}, {used} {what}"


def over_budget_diagnosis(
    over: dict[str, str],
    routing: Scenario,
    plan: Plan,
    now_s: int,
    short: dict[str, str] | None = None,
) -> list[str]:
    """One line per courier ``over`` its budget at ``now_s`` (what it is over), or whose
    budget left is ``short`` of its parcels on board (:func:`budget_short_of_parcels`),
    saying what it carries (the courier jobs of ``routing`` only it may deliver) and which of
    them the re-plan's ``plan`` leaves undelivered."""
    out = []
    heads = {
        **{
            vehicle_id: f"courier {vehicle_id} is over its route budget at now_s {now_s} s ({what})"
            for vehicle_id, what in over.items()
        },
        **{
            vehicle_id: f"courier {vehicle_id} has too little route budget left at now_s "
            f"{now_s} s for the parcels on board ({what}, nearest first, waits included)"
            for vehicle_id, what in (short or {}).items()
        },
    }
    for vehicle_id, head in heads.items():
        skill = _on_board_skill(vehicle_id)
        carried = [job.id for job in routing.orders if skill in job.required_skills]
        if not carried:
            out.append(f"{head}: it takes no new work (no parcel on board)")
            continue
        left = sorted({u.order_id for u in plan.unassigned} & set(carried))
        line = (
            f"{head}: it still delivers the {len(carried)} parcel(s) on board "
            f"({', '.join(carried[:5])}{', ...' if len(carried) > 5 else ''}) past that "
            "budget, and takes no new work"
        )
        if left:
            line += f"; not deliverable even so: {', '.join(left)} (see unassigned)"
        out.append(line)
    return out


def budget_short_of_parcels(
    routing: Scenario, carried: dict[str, list[Order]], skip: Collection[str] = ()
) -> dict[str, str]:
    """The couriers within their route budget whose budget left cannot cover the parcels
    they carry (``carried``: the on-board jobs by courier; ``skip``: couriers over budget
    already), each with why: delivering them all from where the courier is to its end drives
    more than its ``max_distance_m`` left, or takes longer (travel, service and waiting for
    time windows) than its ``max_duration_s`` left, in each of two orders
    (:func:`_delivery_orders`: nearest first, and by window); the figures said are nearest
    first's. The router left those parcels unassigned (no other courier may take them);
    such a courier is routed as one over budget is (:func:`replan_jobs`). Neither order is
    the shortest tour: a courier so found may have had a route within its budget, which the
    router, its budget lifted, still finds and keeps."""
    fleet = {v.id: v for v in routing.vehicles}
    out: dict[str, str] = {}
    for vehicle_id, jobs in carried.items():
        vehicle = fleet.get(vehicle_id)
        if vehicle is None or vehicle_id in skip or not jobs:
            continue
        if vehicle.max_distance_m is None and vehicle.max_duration_s is None:
            continue
        places = [vehicle.start_location, *(job.location for job in jobs), vehicle.end]
        matrix = routing.travel.matrix(places)
        distance, duration = matrix.distance_m, matrix.duration_s
        start_s = (vehicle.shift or routing.horizon).start_s  # free from then (a re-plan's)
        shortfalls = []
        for sequence in _delivery_orders(jobs, distance):
            metres, seconds = _delivery_cost(vehicle, start_s, jobs, sequence, distance, duration)
            short = []
            if vehicle.max_distance_m is not None and metres > vehicle.max_distance_m:
                short.append(
                    f"max_distance_m {vehicle.max_distance_m} m left, {metres} m to deliver"
                )
            if vehicle.max_duration_s is not None and seconds > vehicle.max_duration_s:
                short.append(
                    f"max_duration_s {vehicle.max_duration_s} s left, {seconds} s to deliver"
                )
            shortfalls.append(short)
        if all(shortfalls):
            out[vehicle_id] = "; ".join(shortfalls[0])
    return out


def _delivery_orders(jobs: list[Order], distance: Any) -> list[list[int]]:
    """Two orders of delivering ``jobs`` (places 1..n of the ``distance`` matrix, the
    courier at 0): nearest first, by distance (ties: the first listed); and by window,
    the earliest end of a job's last window first (ties: nearest first's order), which
    waits less when a near parcel is due late and a far one soon."""
    at, left = 0, set(range(1, len(jobs) + 1))
    nearest: list[int] = []
    while left:
        nxt = min(left, key=lambda k: (int(distance[at, k]), k))
        nearest.append(nxt)
        left.discard(nxt)
        at = nxt
    rank = {k: i for i, k in enumerate(nearest)}

    def due(k: int) -> tuple[int, int]:
        windows = jobs[k - 1].time_windows
        return (windows[-1].end_s if windows else MAX_DUE_S, rank[k])

    by_window = sorted(nearest, key=due)
    return [nearest] if by_window == nearest else [nearest, by_window]


#: the due time of a job without a time window (:func:`_delivery_orders`): after any window
MAX_DUE_S = 2**63 - 1


def _delivery_cost(
    vehicle: Vehicle,
    start_s: int,
    jobs: list[Order],
    sequence: list[int],
    distance: Any,
    duration: Any,
) -> tuple[int, int]:
    """The metres and seconds of ``vehicle`` delivering ``jobs`` in ``sequence`` (their
    places in the matrices, the courier at 0, its end last) from ``start_s``: travel,
    service, the wait for each job's first window still open on arrival (none when every
    window has closed: the router leaves that job out), and the breaks still to take (the
    vehicle's ``breaks``: a re-plan's, without those taken or missed, :func:`_replan_vehicles`),
    each at the first place the walk is in its window, or waited for at the last place before
    its window closes (:func:`_take_breaks`; one due after the end, at the end). Until session
    80 the breaks were left out. A courier that may leave
    later (its ``latest_start_s``) waits at its start instead, so the wait before its first
    parcel counts only past that latest start; every later wait counts (a courier on the
    road, re-planned, leaves at once)."""
    end = len(jobs) + 1
    at = 0
    clock = start_s
    metres = 0
    breaks = sorted(vehicle.breaks, key=lambda b: (b.window.start_s, b.window.end_s))
    for place, k in enumerate(sequence):
        job = jobs[k - 1]
        metres += int(distance[at, k])
        leg = int(duration[at, k])
        clock, breaks = _take_breaks(clock, leg, job, breaks)
        arrival = clock + leg
        opens = _opens(job, arrival)
        wait = max(0, opens - arrival)
        if place == 0:  # waited at its start by leaving later, within its latest start
            latest = vehicle.latest_start_s
            room = wait if latest is None else max(0, latest - start_s)
            start_s += min(wait, room)
        clock = arrival + wait + job.service_s
        at = k
    metres += int(distance[at, end])
    leg = int(duration[at, end])
    clock, breaks = _take_breaks(clock, leg, None, breaks)
    clock += leg
    for left in breaks:  # due after the route's end: the courier waits for them there
        clock = max(clock, left.window.start_s) + left.duration_s
    return metres, clock - start_s


def _opens(job: Order, arrival: int) -> int:
    """When ``job`` can be served, reached at ``arrival``: its first window still open then
    (``arrival`` itself when it has none, or every window has closed)."""
    return next((w.start_s for w in job.time_windows if w.end_s >= arrival), arrival)


def _take_breaks(
    clock: int, leg: int, job: Order | None, breaks: list[Break]
) -> tuple[int, list[Break]]:
    """The clock after the breaks (``breaks``, by window start) a courier takes where it is at
    ``clock``, before a ``leg`` of travel to ``job`` (None: to its end), and the breaks left.
    A break is taken there when its window is open, or when it must start before the next
    place's service ends (waited for: no later chance to take it); a break whose window
    opens later waits for a later place."""
    left = list(breaks)
    while left:
        window = left[0].window
        arrival = clock + leg
        next_gap = arrival if job is None else max(arrival, _opens(job, arrival)) + job.service_s
        if window.start_s > clock and window.end_s >= next_gap:
            break
        clock = max(clock, window.start_s) + left.pop(0).duration_s
    return clock, left


def _kept_scenario(
    scenario: Scenario, cancelled: set[str], req: ReoptimiseCreate, vehicles: list[Vehicle]
) -> Scenario:
    """The stored ``scenario`` without the ``cancelled`` orders, with the new ones and the
    couriers' ``vehicles`` (:func:`_replan_vehicles`), read as stored data: times outside the
    horizon stay as stored."""
    orders = [o for o in scenario.orders if o.id not in cancelled] + list(req.new_orders)
    return Scenario.model_validate(
        scenario.model_copy(update={"orders": orders, "vehicles": vehicles}).model_dump(),
        context=saved_context(stored=True),
    )


def _kept_lines(old: Plan, updated: Scenario, cancelled: set[str]) -> list[AllocationLine]:
    """The stored plan's allocation lines the re-plan keeps: not of a cancelled order, nor
    of one with a pickup of its own (not allocated; a plan stored before may hold lines)."""
    own_pickup = {o.id for o in updated.orders if o.pickup is not None}
    return [
        line
        for line in old.allocation
        if line.order_id not in cancelled and line.order_id not in own_pickup
    ]


def replan_jobs(
    updated: Scenario,
    lines: list[AllocationLine],
    old: Plan,
    completed: Collection[str],
    done: set[tuple[str, StopKind]],
    picked_by: dict[str, str],
    req: ReoptimiseCreate,
    over_budget: Collection[str] = (),
    short_budget: dict[str, str] | None = None,
) -> tuple[Scenario, set[str], Plan, list[list[int]]]:
    """The courier jobs a re-plan routes (a parcel on board only its courier may deliver;
    a courier ``over_budget``, :func:`_replan_vehicles`, delivers only its parcels on board,
    without the budget it is over: every other job needs :data:`NEW_WORK_SKILL`, which it
    alone lacks; so does a courier whose budget left cannot cover its parcels on board,
    :func:`budget_short_of_parcels`, put in ``short_budget`` with why, when given),
    the jobs finished, the warm start (the stored plan's stops still to do, pinned where the
    stored plan pins them, by ``pinned_order_ids`` or for a parcel on board) and, per route,
    the stored place of each of its stops. Shared by the re-plan's task and its check before
    queueing (:func:`check_replan_engine`), so both see one warm start."""
    from solvers.routing.from_allocation import job_order_resolver

    finished = set(completed)
    on_board: set[str] = set()
    holders: set[str] = set()
    jobs = []
    routing = _routing_scenario(updated, lines)
    for job in routing.orders:
        if job.id in finished or (job.id, StopKind.DELIVERY) in done:
            finished.add(job.id)
            continue
        if job.pickup is not None and (job.id, StopKind.PICKUP) in done:
            # the parcel is on board: only its courier can deliver it (a skill of its own)
            holder = picked_by[job.id]
            skills = [*job.required_skills, _on_board_skill(holder)]
            job = job.model_copy(update={"pickup": None, "required_skills": skills})
            on_board.add(job.id)
            holders.add(holder)
        jobs.append(job)
    fleet = [
        v.model_copy(update={"skills": [*v.skills, _on_board_skill(v.id)]})
        if v.id in holders
        else v
        for v in routing.vehicles
    ]
    carried: dict[str, list[Order]] = defaultdict(list)
    for job in jobs:
        if job.id in on_board:
            carried[picked_by[job.id]].append(job)
    # a budget left short of the parcels on board: they were left unassigned, undelivered
    short = budget_short_of_parcels(routing, carried, over_budget)
    if short_budget is not None:
        short_budget.update(short)
    over_budget = {*over_budget, *short}
    if over_budget:
        # the budget stops new work, never the delivery of what the courier carries (it
        # was left 1 m or 1 s: its parcels on board were left unassigned, undelivered)
        jobs = [
            job
            if job.id in on_board
            else job.model_copy(update={"required_skills": [*job.required_skills, NEW_WORK_SKILL]})
            for job in jobs
        ]
        fleet = [
            v.model_copy(update={"max_distance_m": None, "max_duration_s": None})
            if v.id in over_budget
            else v.model_copy(update={"skills": [*v.skills, NEW_WORK_SKILL]})
            for v in fleet
        ]
    routing = routing.model_copy(update={"orders": jobs, "vehicles": fleet})
    present = {j.id: j for j in jobs}

    pinned_orders = set(req.pinned_order_ids)
    base_order = job_order_resolver(updated)  # a node id may hold '@': 'o@st@1' is o's
    initial_routes = []
    stored_stops: list[list[int]] = []  # per route, the stored place of each warm-start stop
    for route in old.routes:
        stops = []
        places: list[int] = []
        for place, stop in enumerate(route.stops):
            if stop.order_id is None or stop.kind == StopKind.BREAK:
                continue
            kept_job = present.get(stop.order_id)
            if kept_job is None or (stop.order_id, stop.kind) in done:
                continue
            if stop.kind == StopKind.PICKUP and kept_job.pickup is None:
                continue
            keep = (
                stop.pinned
                or stop.order_id in on_board
                or base_order(stop.order_id) in pinned_orders
            )
            stops.append(stop.model_copy(update={"pinned": keep}))
            places.append(place)
        initial_routes.append(Route(vehicle_id=route.vehicle_id, stops=stops))
        stored_stops.append(places)
    return routing, finished, Plan(routes=initial_routes), stored_stops


#: What a re-plan's task routes before its new orders are allocated (:func:`replan_preview`).
ReplanPreview = tuple[Scenario, Scenario, Plan, list[list[int]]]


def replan_preview(
    old: Plan, scenario: Scenario, req: ReoptimiseCreate, completed: Collection[str]
) -> ReplanPreview | None:
    """What the re-plan's task routes before its new orders are allocated, built by the
    task's own functions (:func:`replan_jobs`): its scenario (the couriers where they are
    now), the courier jobs of the stored plan's kept lines and of the orders with a pickup of
    their own (the new orders' lines make jobs of new orders only, never a stop of the stored
    plan), the warm start and its stored places.
    None when the task would fail on its own input first (its error, named by the task)."""
    done, picked_by, last_stop = _stops_done(old, req.now_s)
    cancelled, _ = _cancelled(old, scenario, completed, req)
    try:
        vehicles, over = _replan_vehicles(scenario, req, old, last_stop)
        updated = _kept_scenario(scenario, cancelled, req, vehicles)
        lines = _kept_lines(old, updated, cancelled)
        routing, _, initial, stored_stops = replan_jobs(
            updated, lines, old, completed, done, picked_by, req, over
        )
    except (InputError, ValueError):
        return None
    return updated, routing, initial, stored_stops


def check_replan_engine(req: ReoptimiseCreate, preview: ReplanPreview | None) -> None:
    """422 on ``routing.engine`` for a re-plan asking for PyVRP whose warm start the router
    refuses for it (:func:`~solvers.routing.solve.pyvrp_warm_start_refusal`): a pinned stop
    (pinned in the stored plan, by ``pinned_order_ids``, or a parcel on board), or the
    disruption cost (500 cents by default) with any stop kept. A queued re-plan was accepted
    (202) and its job then failed on it. The warm start is the task's own (``preview``,
    :func:`replan_preview`; None: the task fails on its own input first): until session 63
    an approximation of it, which refused a stop the task leaves out (a job the re-plan no
    longer has). Checked without the travel matrix."""
    from solvers.routing.solve import pyvrp_warm_start_refusal

    if req.routing.engine != "pyvrp" or preview is None:
        return
    initial = preview[2]
    refused = pyvrp_warm_start_refusal(req.routing.model_copy(update={"initial_plan": initial}))
    if refused is not None:
        raise InputError("routing.engine", refused)


def check_plan_range(scenario: Scenario) -> None:
    """422 for a plan some routing of which the router refuses whatever its allocation ships:
    a plan of its courier jobs could cost more than the routing engines count in 64-bit
    integers (:func:`~solvers.routing.problem.check_int_range`, its words, on the field the
    plan's job names), before anything is queued (a 202 whose job then failed on it).

    :func:`~solvers.routing.problem.quick_objective_bound` with every order shipped from
    every node bounds every routing its allocation can make: below the limit nothing is
    refused. Past it, the exact check runs on the jobs every allocation routes (the orders
    with a pickup of their own, never allocated) and the fleet: the router's bound only
    grows with more jobs (longer longest arcs, more visits and penalties), so what it
    refuses there it refuses for any allocation, and nothing the router would route is
    refused. A plan whose range depends on what its allocation ships is left to its job (a
    422 when answered now, a failed job after a 202). A scenario without nodes is routed as
    it is: the exact check of ``POST /v1/routes``."""
    from solvers.routing.problem import ENGINE_INT_LIMIT, build_problem, quick_objective_bound

    shipments = len(scenario.nodes) if scenario.nodes else None
    if quick_objective_bound(scenario, shipments=shipments) <= ENGINE_INT_LIMIT:
        return
    jobs = scenario  # without nodes the orders are the jobs
    if scenario.nodes:
        own = [o for o in scenario.orders if o.pickup is not None]
        jobs = _routing_scenario(scenario.model_copy(update={"orders": own}), [])
    with fields_under("routing"), _orders_of_jobs(scenario, jobs):
        build_problem(jobs)


def check_replan_range(
    old: Plan, scenario: Scenario, req: ReoptimiseCreate, preview: ReplanPreview | None
) -> None:
    """422 for a re-plan every routing of which the router refuses for its range, whatever
    its new orders' allocation ships (see :func:`check_plan_range`), on the field its job
    names: the upper bound counts the jobs the task keeps (``preview``,
    :func:`replan_preview`, its couriers where they are now) and every new order shipped
    from every node; past the limit, the exact check runs on the kept jobs alone. The
    disruption cost's share is the router's to check once it has mapped the warm start (it
    prices the visits that move)."""
    from solvers.routing.from_allocation import job_order_resolver
    from solvers.routing.problem import ENGINE_INT_LIMIT, build_problem, quick_objective_bound

    if preview is None:
        return
    updated, routing, _, stored_stops = preview
    kept = {o.id for o in routing.orders}
    fresh = [o for o in req.new_orders if o.id not in kept]
    everything = routing.model_copy(update={"orders": [*routing.orders, *fresh]})
    shipments = len(scenario.nodes) if scenario.nodes else None
    if quick_objective_bound(everything, shipments=shipments) <= ENGINE_INT_LIMIT:
        return
    base_order = job_order_resolver(updated)
    job_orders = [base_order(job.id) or job.id for job in routing.orders]
    with (
        fields_under("routing"),
        _reoptimise_fields(job_orders, req, scenario),
        warm_start_fields(old, stored_stops),
    ):
        build_problem(routing)


def unfilled_diagnosis(unfilled: list[Unfilled], lines: list[AllocationLine]) -> list[str]:
    """One line per order left with unfilled lines: not or partly allocated, and why."""
    allocated = {line.order_id for line in lines}
    by_order: dict[str, list[Unfilled]] = defaultdict(list)
    for u in unfilled:
        by_order[u.order_id].append(u)
    out = []
    for order_id, missing in by_order.items():
        what = "partly allocated" if order_id in allocated else "not allocated"
        why = "; ".join(
            f"{u.sku} x {u.quantity} {u.reason.value}" + (f" ({u.detail})" if u.detail else "")
            for u in missing
        )
        out.append(f"{order_id}: {what}: {why}")
    return out


@contextmanager
def _plan_allocation_fields(scenario: Scenario) -> Iterator[None]:
    """Re-raise an InputError of a plan's allocation on a field of the plan request.

    :meth:`~solvers.allocation.AllocationRequest.from_scenario` names the scenario's fields
    (``orders.0.lines.1.quantity``), :func:`~solvers.allocation.allocate` those of its
    request and params: ``costs.X`` and ``rules.X`` are the plan's own, ``params.X`` is
    ``allocation.X``, the orders' lines as a whole are ``scenario.orders``, and a distance
    price too large for one unit (``distance_km.N.O`` of the mapped request, a field of no
    plan) is ``costs.per_unit_distance``, its node and order named. They were answered as
    they were: a 422 on ``distance_km.0.0`` or ``orders.0.lines.1.quantity``.
    """
    try:
        yield
    except (ScenarioInputError, RequestInputError):
        raise
    except InputError as err:
        head, _, rest = err.field.partition(".")
        if head in ("costs", "rules"):
            raise RequestInputError(err.field, err.reason, source=err.source) from None
        if head == "params":
            raise RequestInputError(f"allocation.{rest}", err.reason, source=err.source) from None
        if head == "distance_km":
            n, _, o = rest.partition(".")
            ordered = [x for x in scenario.orders if x.lines and x.pickup is None]
            where = ""
            if (
                n.isdigit()
                and o.isdigit()
                and int(n) < len(scenario.nodes)
                and int(o) < len(ordered)
            ):
                node_id, order_id = scenario.nodes[int(n)].id, ordered[int(o)].id
                where = (
                    f" (node {node_id!r}, order {order_id!r}: their distance under scenario.travel)"
                )
            raise RequestInputError(
                "costs.per_unit_distance", f"{err.reason}{where}", source=err.source
            ) from None
        raise RequestInputError(f"scenario.{err.field}", err.reason, source=err.source) from None


#: the diagnosis line of a plan whose twin evaluation was cancelled (no KPIs)
EVALUATION_CANCELLED = "no KPIs: the twin evaluation was cancelled (the service is stopping)"


def make_plan(
    body: PlanCreate, *, degraded: bool = False, progress: ProgressFn | None = None
) -> PlanResult:
    """Allocate, route and evaluate; ``degraded`` = nearest-node allocation, greedy routes."""
    from simulation.evaluate import evaluate
    from simulation.executors import SerialExecutor
    from solvers.allocation import allocate
    from solvers.allocation.progress import phase_hook
    from solvers.allocation.request import AllocationRequest
    from solvers.cancel import SolveCancelled
    from solvers.explain import explain_routes
    from solvers.routing import solve_routes_with_stats

    t0 = time.perf_counter()
    scenario = body.scenario
    aparams = body.allocation
    rparams = body.routing
    if degraded:
        aparams = aparams.model_copy(
            update={"baseline": "nearest", "explain": False, "shadow_prices": False}
        )
        rparams = rparams.model_copy(update={"engine": "greedy"})
    # delivery only (no node): the orders are the courier jobs, whatever lines they list; an
    # order with a pickup of its own is a pickup-and-delivery job, not allocated (the twin
    # plays it so), see AllocationRequest.from_scenario
    to_allocate = scenario if scenario.nodes else scenario.model_copy(update={"orders": []})
    with _plan_allocation_fields(to_allocate):
        request = AllocationRequest.from_scenario(to_allocate, body.costs, body.rules)
        # the allocation stage ticks up to 0.2 of the job (its time limit's share), with
        # the solver's phases; the routing stage then up to 0.5
        with (
            timed_progress(
                progress,
                aparams.time_limit_s,
                span=(0.0, 0.2),
                stage="allocation",
                name="allocation-progress",
            ) as phase,
            phase_hook(phase if progress is not None else None),
        ):
            alloc = allocate(request, aparams)
    lines = alloc.to_lines()
    if progress is not None:
        progress(0.2)
    with fields_under("scenario"):  # an order whose task ids are too long as allocated
        jobs = _routing_scenario(scenario, lines)
    # a warm start may name orders the allocation did not ship: they are not courier jobs
    unshipped = {o.id for o in scenario.orders if o.pickup is None or not scenario.nodes} - {
        line.order_id for line in lines
    }
    # the solver names fields of its params, and of the jobs' scenario
    with (
        fields_under("routing"),
        _orders_of_jobs(scenario, jobs),
        timed_progress(
            progress,
            rparams.time_limit_s,
            span=(0.2, 0.5),
            stage="routing",
            name="routing-progress",
        ),
    ):
        routed, stats = solve_routes_with_stats(jobs, rparams, absent_orders=unshipped)
    plan = routed.model_copy(update={"allocation": lines})
    if progress is not None:
        progress(0.5)
    kpis = None
    not_evaluated: list[str] = []
    if body.evaluation.replications > 0:
        reps = min(body.evaluation.replications, 5) if degraded else body.evaluation.replications

        def tick(done: int, total: int) -> None:
            if progress is not None:
                progress(0.5 + 0.5 * done / max(1, total))

        try:
            kpis = evaluate(
                scenario,
                plan,
                policy="plan",
                replications=reps,
                seed=body.evaluation.seed,
                params=body.evaluation.params,
                executor=SerialExecutor(),
                progress=tick,
            )
        except SolveCancelled:  # its caller is stopping (solvers.cancel): the plan, no KPIs
            not_evaluated = [EVALUATION_CANCELLED]
    return PlanResult(
        status=plan.status,
        time_limited=plan.time_limited,
        plan=plan,
        allocation=AllocationSummary(
            status=alloc.status,
            method=alloc.method,
            cost=alloc.cost.total,
            unfilled=alloc.unfilled,
            diagnosis=alloc.diagnosis,
        ),
        kpis=kpis,
        explanations=Explanations(orders=alloc.explanations, routes=explain_routes(jobs, plan)),
        # one line per order the plan does not serve in full (allocation.diagnosis keeps the
        # allocation's own lines): orders with nothing allocated are not among the routes
        diagnosis=[
            *unfilled_diagnosis(alloc.unfilled, lines),
            *route_diagnosis(plan),
            *stats.clock_notes,  # what the clock cut of a work-budgeted routing
            *([stats.late] if stats.late else []),  # routing past its time limit says so
            *not_evaluated,
        ],
        solver=SolverInfo(
            engine=f"{alloc.method} + {plan.engine}",
            versions=solver_versions(),
            seed=rparams.seed,
            time_limit_s=aparams.time_limit_s + rparams.time_limit_s,
            runtime_s=round(time.perf_counter() - t0, 4),
        ),
        fallback_reason=stats.fallback,
    )


def run_plan(payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
    """Make the plan of a :class:`PlanCreate` payload."""
    body = read_payload(PlanCreate, payload)
    return make_plan(body, progress=progress).model_dump(mode="json")


def fallback_plan(payload: JsonDict, *, reason: str) -> JsonDict:
    """Nearest-node allocation and greedy routes (few replications), when the solvers failed."""
    body = read_payload(PlanCreate, payload)
    result = make_plan(body, degraded=True)
    result.fallback_reason = reason
    return result.model_dump(mode="json")


# ------------------------------------------------------------------ re-optimisation


def mark_on_board(plan: Plan, routing: Scenario, picked_by: dict[str, str]) -> Plan:
    """``plan`` with each parcel on board it leaves unassigned marked with its courier.

    A parcel on board is a delivery-only job only its courier can take (:func:`replan_jobs`);
    when the router cannot fit it there (its window gone, the shift over) it has no stop at
    all, so the next re-plan of this plan could not tell it from a parcel at its node. The
    mark carries the on-board state forward instead (:func:`_stops_done` reads it): the
    router cannot be made to route it always, as a pinned stop that no longer fits is
    released and a mandatory order that fits nowhere is still left out.
    """
    holders = {
        job.id: picked_by[job.id]
        for job in routing.orders
        if job.id in picked_by and _on_board_skill(picked_by[job.id]) in job.required_skills
    }
    if not any(u.order_id in holders for u in plan.unassigned):
        return plan
    unassigned = [
        u.model_copy(update={"on_board_vehicle_id": holders[u.order_id]})
        if u.order_id in holders
        else u
        for u in plan.unassigned
    ]
    return plan.model_copy(update={"unassigned": unassigned})


#: The length of the SHA-256 digest (hex) that ends the skill of a long courier id.
_DIGEST_CHARS = 64


def _on_board_skill(vehicle_id: str) -> str:
    """The skill only ``vehicle_id`` has: delivering the parcels already on board; an id
    (:data:`~scenarios.geo.Id`: at most 200 characters) whatever the courier's id: past 200,
    the id's start and its SHA-256, so two couriers' skills differ as their ids do (until
    session 79 ``on board `` and a 200-character id made a skill of 209)."""
    skill = ON_BOARD_PREFIX + vehicle_id
    if len(skill) <= MAX_ID_LENGTH:
        return skill
    digest = hashlib.sha256(vehicle_id.encode()).hexdigest()
    keep = MAX_ID_LENGTH - len(ON_BOARD_PREFIX) - len(" sha256:") - _DIGEST_CHARS
    return f"{ON_BOARD_PREFIX}{vehicle_id[:keep]} sha256:{digest}"


def _remaining_inventory(scenario: Scenario, lines: list[AllocationLine]) -> Scenario:
    """The scenario with the stock the kept allocation already uses taken off the shelves."""
    used: dict[tuple[str, str], int] = defaultdict(int)
    for line in lines:
        used[(line.node_id, line.sku)] += line.quantity
    nodes = [
        n.model_copy(
            update={
                "inventory": {
                    sku: max(0, units - used[(n.id, sku)]) for sku, units in n.inventory.items()
                }
            }
        )
        for n in scenario.nodes
    ]
    return scenario.model_copy(update={"nodes": nodes})


def _delivered_before(
    old: Plan, scenario: Scenario, completed: Collection[str], cancelled: set[str], now_s: int
) -> dict[str, str]:
    """The ``cancelled`` orders every courier job of which was delivered before ``now_s`` in
    ``old`` (or completed by an earlier re-plan), each with its diagnosis line: too late to
    cancel."""
    from solvers.routing.from_allocation import job_order_resolver

    order_of = job_order_resolver(scenario)
    jobs: dict[str, set[str]] = {}
    delivered: dict[str, int] = {}
    for route in old.routes:
        for stop in route.stops:
            job = stop.order_id
            if job is None or stop.kind == StopKind.BREAK:
                continue
            order = order_of(job) or job
            if order not in cancelled:
                continue
            jobs.setdefault(order, set()).add(job)
            if stop.kind == StopKind.DELIVERY and stop.start_s < now_s:
                delivered[job] = stop.start_s
    for left in old.unassigned:
        order = order_of(left.order_id) or left.order_id
        if order in cancelled:
            jobs.setdefault(order, set()).add(left.order_id)
    out: dict[str, str] = {}
    for order in sorted(jobs):
        if not all(job in delivered or job in completed for job in jobs[order]):
            continue
        times = [delivered[job] for job in jobs[order] if job in delivered]
        when = f"delivered at {max(times)} s" if times else "delivered"
        out[order] = (
            f"{order}: not cancelled: {when}, before now_s {now_s} s (too late to cancel; "
            "kept in the plan as completed)"
        )
    return out


def reoptimise(
    scenario: Scenario,
    old: Plan,
    completed: set[str],
    req: ReoptimiseCreate,
    *,
    degraded: bool = False,
    costs: AllocationCosts | None = None,
    rules: AllocationRules | None = None,
) -> tuple[ReoptimiseResult, Scenario, list[str]]:
    """Re-plan the rest of the day; returns the answer, the updated scenario and done jobs.

    New orders are allocated under ``costs`` and ``rules``, the stored plan's.
    """
    from solvers.allocation import allocate
    from solvers.allocation.request import AllocationRequest
    from solvers.explain import explain_routes
    from solvers.routing import solve_routes_with_stats
    from solvers.routing.from_allocation import job_order_resolver

    t0 = time.perf_counter()
    now = req.now_s
    done, picked_by, last_stop = _stops_done(old, now)
    cancelled, too_late = _cancelled(old, scenario, completed, req)

    vehicles, over = _replan_vehicles(scenario, req, old, last_stop)
    updated = _kept_scenario(scenario, cancelled, req, vehicles)
    lines = _kept_lines(old, updated, cancelled)
    method = "kept"
    unfilled: list[str] = []
    if req.new_orders and updated.nodes:
        aparams = req.allocation
        if degraded:
            aparams = aparams.model_copy(
                update={"baseline": "nearest", "explain": False, "shadow_prices": False}
            )
        new_ids = {o.id for o in req.new_orders}
        rest = _remaining_inventory(updated, lines)
        sub = rest.model_copy(update={"orders": [o for o in rest.orders if o.id in new_ids]})
        with _new_orders_allocation([o.id for o in sub.orders], req, scenario):
            # made now: lead times, promises and opening hours count from the re-plan's now_s
            given = rules if rules is not None else AllocationRules()
            at_now = given.model_copy(update={"now_s": max(given.now_s, now)})
            alloc = allocate(AllocationRequest.from_scenario(sub, costs, at_now), aparams)
        new_lines = alloc.to_lines()
        lines = lines + new_lines
        method = alloc.method
        unfilled = unfilled_diagnosis(alloc.unfilled, new_lines)
    if updated.nodes:  # plans stored before orders without lines were refused hold some
        unfilled += [
            f"{o.id}: not planned: no lines (nothing to ship from a node; the stored plan "
            "was made before plans with nodes refused orders without lines)"
            for o in updated.orders
            if not o.lines and o.pickup is None
        ]
        # a stored order its plan allocated nothing of (stock short everywhere): no job, so
        # it was in neither the routes, nor unassigned, nor the diagnosis of the re-plan
        allocated = {line.order_id for line in lines}
        new_ids = {o.id for o in req.new_orders}
        unfilled += [
            f"{o.id}: not planned: not allocated (the stored plan shipped none of its lines; "
            "a re-plan allocates its new orders only)"
            for o in updated.orders
            if o.lines and o.pickup is None and o.id not in allocated and o.id not in new_ids
        ]

    # an order whose task ids are too long as allocated: a new order, or one of the stored plan
    short: dict[str, str] = {}
    with _reoptimise_fields([o.id for o in updated.orders], req, scenario):
        routing, finished, initial, stored_stops = replan_jobs(
            updated, lines, old, completed, done, picked_by, req, over, short
        )
    previous = Plan(
        routes=[
            route.model_copy(
                update={
                    "stops": [
                        st
                        for st in route.stops
                        if st.order_id is not None
                        and st.kind != StopKind.BREAK
                        and (st.order_id, st.kind) not in done
                    ]
                }
            )
            for route in old.routes
        ],
        unassigned=old.unassigned,
    )
    rparams = req.routing.model_copy(update={"initial_plan": initial})
    if degraded:
        rparams = rparams.model_copy(update={"engine": "greedy"})
    # the solver names fields of its params, and of the courier jobs: each job's order is a
    # new order of the request, or one of the stored plan
    base_order = job_order_resolver(updated)  # a node id may hold '@': 'o@st@1' is o's
    job_orders = [base_order(job.id) or job.id for job in routing.orders]
    with (
        fields_under("routing"),
        _reoptimise_fields(job_orders, req, scenario),
        warm_start_fields(old, stored_stops),
    ):
        routed, stats = solve_routes_with_stats(routing, rparams)
    plan = mark_on_board(routed, routing, picked_by).model_copy(update={"allocation": lines})
    answer = ReoptimiseResult(
        status=plan.status,
        time_limited=plan.time_limited,
        plan=plan,
        changes=plan_changes(previous, plan),
        completed_order_ids=sorted(finished),
        diagnosis=[
            *too_late.values(),
            *unfilled,
            *over_budget_diagnosis(over, routing, plan, now, short),
            *route_diagnosis(plan),
            *stats.pin_notes,
            *stats.clock_notes,  # what the clock cut of a work-budgeted routing
            *([stats.late] if stats.late else []),  # routing past its time limit says so
        ],
        explanations=Explanations(routes=explain_routes(routing, plan)),
        solver=SolverInfo(
            engine=f"{method} + {plan.engine}",
            versions=solver_versions(),
            seed=rparams.seed,
            # the allocation of the new orders and the routing: the limits the request asked
            time_limit_s=req.allocation.time_limit_s + rparams.time_limit_s,
            runtime_s=round(time.perf_counter() - t0, 4),
        ),
        fallback_reason=stats.fallback,
    )
    return answer, updated, sorted(finished)


@contextmanager
def _stored_part(part: str) -> Iterator[None]:
    """Re-raise a ValidationError of the stored plan's ``part`` (its scenario, its plan), as
    an older version or a corrupted row stored it, on the stored plan (``path.plan_id``)."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as err:
        problem = input_error_from_validation(err)
        raise stored_plan_error(
            None, problem.field or "(root)", problem.reason, part=part
        ) from None


def stored_allocation_terms(
    parent: JsonDict,
) -> tuple[AllocationCosts | None, AllocationRules | None]:
    """The allocation prices and rules a stored plan (``parent``: its record's ``costs`` and
    ``rules``) was made under, None where it holds none (stored before they were carried);
    terms that fail today's checks (a ``restricted_skus`` key of 0 characters, taken before
    session 51) are an error on the stored plan (:func:`stored_plan_error`)."""
    costs = parent.get("costs")
    rules = parent.get("rules")
    with _stored_part("allocation costs"):
        read_costs = None if costs is None else validate_saved(AllocationCosts, costs)
    with _stored_part("allocation rules"):
        read_rules = None if rules is None else validate_saved(AllocationRules, rules)
    return read_costs, read_rules


def _reoptimise_payload(payload: JsonDict, *, degraded: bool, reason: str | None) -> JsonDict:
    # the request, queued before a rule of its model was added, may break it now
    req = read_payload(ReoptimiseCreate, payload["request"])
    parent = payload["parent"]
    # no SavedDataWarning: a synchronous solve runs in a server thread (warnings are
    # process-wide); the corrections go to the answer's notes and the service's log
    with _stored_part("scenario"):
        scenario, notes = read_saved(Scenario, parent["scenario"])
    with _stored_part("plan"):
        old = Plan.model_validate(parent["plan"])
    # plans stored before the prices and rules were carried hold none: the defaults
    costs, rules = stored_allocation_terms(parent)
    answer, updated, finished = reoptimise(
        scenario,
        old,
        set(parent.get("completed", [])),
        req,
        degraded=degraded,
        costs=costs,
        rules=rules,
    )
    answer.parent_id = parent["id"]
    answer.notes = [f"stored plan {parent['id']}: {note}" for note in notes]
    if reason is not None:
        answer.fallback_reason = reason
    out = answer.model_dump(mode="json")
    out[SCENARIO_KEY] = updated.model_dump(mode="json")
    out[COMPLETED_KEY] = finished
    return out


def run_reoptimise(payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
    """Re-optimise a stored plan (payload: ``request`` + ``parent`` plan record)."""
    return _reoptimise_payload(payload, degraded=False, reason=None)


def fallback_reoptimise(payload: JsonDict, *, reason: str) -> JsonDict:
    """Greedy re-insertion around the kept and pinned stops, when the solver failed."""
    return _reoptimise_payload(payload, degraded=True, reason=reason)


# ------------------------------------------------------------------ storage


def store_plan(
    session: Session,
    *,
    result: JsonDict,
    scenario: JsonDict,
    params: JsonDict,
    key_id: str | None,
    job_id: str | None,
    fallback: bool,
    parent_id: str | None = None,
    plan_id: str | None = None,
) -> JsonDict:
    """Store a plan answer (flushes, no commit) under ``plan_id`` (if chosen before, else a
    new id); returns the answer with its ``plan_id``."""
    result = dict(result)
    updated = result.pop(SCENARIO_KEY, None)
    completed = result.pop(COMPLETED_KEY, None)
    if completed is not None:
        params = {**params, "completed": completed}
    record = PlanRecord(
        id=plan_id or new_id(),
        parent_id=parent_id,
        job_id=job_id,
        key_id=key_id,
        status=str(result.get("status", "")),
        fallback=fallback,
        scenario=updated if updated is not None else scenario,
        params=params,
        plan=result["plan"],
        body={},
    )
    result["plan_id"] = record.id
    record.body = result
    session.add(record)
    session.flush()
    return result


def _on_plan_done(session: Session, job: Job, result: JsonDict) -> JsonDict:
    return store_plan(
        session,
        result=result,
        scenario=job.payload["scenario"],
        params={k: v for k, v in job.payload.items() if k != "scenario"},
        key_id=job.key_id,
        job_id=job.id,
        fallback=job.fallback,
    )


def log_read_notes(result: JsonDict, *, job_id: str | None) -> None:
    """Log the corrections a re-optimisation made reading its stored plan (``notes``)."""
    for note in result.get("notes") or ():
        log.warning("reoptimise job %s read saved data with a correction: %s", job_id, note)


def reoptimised_params(payload: JsonDict) -> JsonDict:
    """The stored parameters of a re-optimised plan: its request, and the allocation prices
    and rules of its parent (which the next re-optimisation applies in turn)."""
    parent = payload["parent"]
    return {
        "request": payload["request"],
        "costs": parent.get("costs"),
        "rules": parent.get("rules"),
    }


def _on_reoptimise_done(session: Session, job: Job, result: JsonDict) -> JsonDict:
    parent = job.payload["parent"]
    log_read_notes(result, job_id=job.id)
    # in the job's events too, as the corrections of other kinds' payloads are
    job.events = [*job.events, *(event(f"read: {note}") for note in result.get("notes") or ())]
    return store_plan(
        session,
        result=result,
        scenario=parent["scenario"],
        params=reoptimised_params(job.payload),
        key_id=job.key_id,
        job_id=job.id,
        fallback=job.fallback,
        parent_id=parent["id"],
        plan_id=job.payload.get(PLAN_ID_KEY),
    )


HOOKS: dict[str, Callable[[Session, Job, JsonDict], JsonDict]] = {
    "plans": _on_plan_done,
    "reoptimise": _on_reoptimise_done,
}
