"""``/v1/plans``: the dispatch plan before release, stored, and re-optimised during the day."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.core.errors import ERROR_RESPONSES, shown_id
from api.db.models import Job, PlanRecord, utcnow
from api.deps import CtxDep, IdempotencyKeyHeader, OmsDep, Principal, SessionDep
from api.examples import PLAN_EXAMPLE, REOPTIMISE_EXAMPLE
from api.fastpath import BodyRoute
from api.jobs.registry import JsonDict
from api.jobs.service import CANCELLED, DONE, FAILED, new_id
from api.limits import (
    check_arrivals,
    check_engine,
    check_initial_plan,
    check_order_count,
    check_orders,
    check_replications,
    check_scenario,
    check_scenario_lists,
    check_size,
    check_time_limit,
    check_twin_input,
    check_windows_and_breaks,
    wants_sync,
)
from api.routes.answers import note_answer
from api.schemas.common import JobAccepted
from api.schemas.plans import (
    PlanCreate,
    PlanPublic,
    PlanRecordPublic,
    ReoptimiseCreate,
    ReoptimisePublic,
)
from api.solve import (
    SolveOutcome,
    engine_fallback_reason,
    limit_share,
    solve_or_queue_response,
)
from api.tasks.plans import (
    PLAN_ID_KEY,
    check_plan_range,
    check_replan_engine,
    check_replan_range,
    check_stored_visits,
    log_read_notes,
    reoptimised_params,
    replan_preview,
    store_plan,
    stored_allocation_terms,
    stored_plan_error,
    warm_start_fields,
)
from scenarios.errors import InputError, field_path
from scenarios.geo import CONTROL_CHARACTERS_REASON
from scenarios.model import Scenario, horizon_problems
from scenarios.plan import Plan
from scenarios.saved import saved_context
from solvers.allocation.request import NO_LINES_REASON, check_order_lines, nodes_from_scenario
from solvers.routing.from_allocation import (
    job_id_clash,
    node_id_clash,
    own_task_clashes,
    task_id_too_long,
)

log = logging.getLogger("api.plans")

router = APIRouter(
    prefix="/v1/plans", tags=["plans"], responses=ERROR_RESPONSES, route_class=BodyRoute
)

#: Budget of the twin evaluation inside a synchronous plan request (added to the wait).
EVALUATION_BUDGET_S = 30.0
JOB_GRACE_S = 300.0


def _load(session: SessionDep, plan_id: str, principal: Principal) -> PlanRecord:
    record = session.get(PlanRecord, plan_id)
    if record is None or not principal.owns(record.key_id):
        raise HTTPException(404, f"no plan {shown_id(plan_id)!r}")
    return record


def _sync_answer(
    ctx: CtxDep,
    session: SessionDep,
    request: Request,
    principal: Principal,
    outcome: SolveOutcome,
    *,
    scenario: dict[str, Any],
    params: dict[str, Any],
    parent_id: str | None,
    plan_id: str | None = None,
) -> dict[str, Any]:
    reason = engine_fallback_reason(ctx, outcome, "plans")
    stored = store_plan(
        session,
        result=outcome.result,
        scenario=scenario,
        params=params,
        key_id=principal.account,
        job_id=outcome.job_id,
        fallback=bool(reason),
        parent_id=parent_id,
        plan_id=plan_id,
    )
    # the job row keeps the answer, as an asynchronous plan's does (its result hook): the
    # plan id, without the internal keys store_plan takes out (a re-plan's whole scenario)
    job = session.get(Job, outcome.job_id)
    if job is not None:
        job.result = stored
    session.commit()
    note_answer(
        request,
        fallback=bool(reason),
        status=str(stored.get("status")),
        engine=stored.get("solver", {}).get("engine"),
    )
    return {**stored, "job_id": outcome.job_id, "fallback": bool(reason), "fallback_reason": reason}


@router.post(
    "",
    response_model=PlanPublic,
    summary="Make the dispatch plan (allocate, route, check in the twin)",
    responses={202: {"model": JobAccepted, "description": "queued as a job"}},
)
def create_plan(
    body: Annotated[PlanCreate, Body(openapi_examples=PLAN_EXAMPLE)],
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: OmsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Allocate orders to nodes, route couriers, then play the plan ``replications`` times.

    The answer has the plan (allocation lines + routes), twin KPIs with 95% CIs, and
    explanations per order and per route; it is stored (``plan_id``) for re-optimisation.
    """
    settings = ctx.settings
    # before the checks that walk them (the ids' clashes, the routing range)
    check_scenario_lists(settings, body.scenario, field="scenario")
    check_scenario(body.scenario, field="scenario")
    node_ids = [n.id for n in body.scenario.nodes]
    node_clash = node_id_clash(node_ids)
    if node_clash is not None:  # two courier tasks of one order of one id (see node_id_clash)
        raise InputError(f"scenario.nodes.{node_clash[0]}.id", node_clash[1])
    tasks = [_order_tasks(o.id, o.pickup) for o in body.scenario.orders]
    clash = courier_task_clash(tasks, node_ids)
    if clash is not None:  # two courier tasks of one id: the routes failed validation, empty
        raise InputError(f"scenario.orders.{clash[0]}.{clash[1]}", clash[2])
    check_initial_plan(body.routing, body.scenario, field="routing")
    check_engine(body.routing, body.scenario, field="routing")
    try:  # values the allocation cannot take, before anything is queued
        nodes_from_scenario(body.scenario)
        # an order without lines got no route and no word, the plan feasible
        check_order_lines(body.scenario)
    except InputError as err:
        raise InputError(f"scenario.{err.field}", err.reason) from None
    check_time_limit(settings, body.allocation.time_limit_s, field="allocation.time_limit_s")
    check_time_limit(settings, body.routing.time_limit_s, field="routing.time_limit_s")
    check_replications(settings, body.evaluation.replications, field="evaluation.replications")
    limit_s = body.allocation.time_limit_s + body.routing.time_limit_s
    sync = wants_sync(
        settings,
        body.mode,
        time_limit_s=limit_s,
        num_orders=len(body.scenario.orders),
        field="routing.time_limit_s",
    )
    check_orders(settings, body.scenario, field="scenario.orders", sync=sync)
    if body.evaluation.replications:  # the twin plays the day's arrivals too
        check_arrivals(settings, body.scenario, field="scenario")
        check_twin_input(body.scenario, field="scenario")  # what the twin refuses
    check_plan_range(body.scenario)  # what the router refuses, whatever the allocation
    payload = body.model_dump(mode="json")

    def answer(outcome: SolveOutcome) -> BaseModel:
        stored = _sync_answer(
            ctx,
            session,
            request,
            principal,
            outcome,
            scenario=payload["scenario"],
            params={k: v for k, v in payload.items() if k != "scenario"},
            parent_id=None,
        )
        return PlanPublic.model_validate(stored)

    return solve_or_queue_response(
        ctx,
        session,
        request,
        principal=principal,
        idem_key=idempotency_key,
        sync=sync,
        kind="plans",
        payload=payload,
        seed=body.routing.seed,
        time_limit_s=limit_s + EVALUATION_BUDGET_S,
        job_timeout_s=limit_s * 2 + JOB_GRACE_S,
        lane=ctx.lanes["heavy"],
        answer=answer,
        with_limit=functools.partial(with_plan_time_limit, body),
        num_orders=len(body.scenario.orders),
        solver_limit_s=limit_s,
    )


def with_plan_time_limit(body: PlanCreate, time_limit_s: float) -> PlanCreate:
    """``body`` with its allocation and routing time limits scaled to sum to ``time_limit_s``
    (what is left of their sum since the request arrived): each stage keeps its share."""
    share = limit_share(body.allocation.time_limit_s + body.routing.time_limit_s, time_limit_s)
    allocation = body.allocation.model_copy(
        update={"time_limit_s": body.allocation.time_limit_s * share}
    )
    routing = body.routing.model_copy(update={"time_limit_s": body.routing.time_limit_s * share})
    return body.model_copy(update={"allocation": allocation, "routing": routing})


@router.get("/{plan_id}", response_model=PlanRecordPublic, summary="A stored plan")
def get_plan(plan_id: str, session: SessionDep, principal: OmsDep) -> PlanRecordPublic:
    """A plan made by ``POST /v1/plans`` or a re-optimisation, with its answer."""
    record = _load(session, plan_id, principal)
    return PlanRecordPublic(
        plan_id=record.id,
        parent_id=record.parent_id,
        status=record.status,
        fallback=record.fallback,
        created_at=record.created_at.isoformat(),
        result=record.body,
    )


def _check_ids(ids: list[str], known: set[str], *, field: str, what: str, suffix: str = "") -> None:
    """422 for an unknown id or one given twice in a list of changes."""
    seen: set[str] = set()
    for i, item in enumerate(ids):
        if item not in known:
            raise InputError(f"{field}.{i}{suffix}", f"unknown {what} {item!r}")
        if item in seen:
            raise InputError(f"{field}.{i}{suffix}", f"{what} {item!r} is given twice")
        seen.add(item)


def _check_changes(record: PlanRecord, body: ReoptimiseCreate) -> None:
    """422 for changes that do not fit the stored plan (unknown ids, duplicates, contradictions)."""
    scenario = record.scenario
    known = {o["id"] for o in scenario.get("orders", [])}
    vehicles = {v["id"] for v in scenario.get("vehicles", [])}
    _check_ids(body.cancelled_order_ids, known, field="cancelled_order_ids", what="order")
    _check_ids(body.pinned_order_ids, known, field="pinned_order_ids", what="order")
    cancelled = set(body.cancelled_order_ids)
    for i, order_id in enumerate(body.pinned_order_ids):
        if order_id in cancelled:
            raise InputError(
                f"pinned_order_ids.{i}", f"order {order_id!r} is also in cancelled_order_ids"
            )
    _check_ids(
        [p.vehicle_id for p in body.courier_positions],
        vehicles,
        field="courier_positions",
        what="vehicle",
        suffix=".vehicle_id",
    )
    seen: dict[str, int] = {}  # new order id -> its place in new_orders
    for i, order in enumerate(body.new_orders):
        if order.id in known:
            raise InputError(f"new_orders.{i}.id", f"order {order.id!r} already exists")
        if order.id in seen:  # not a stored order: the first of the two is named
            raise InputError(
                f"new_orders.{i}.id",
                f"order {order.id!r} has the same id as new_orders.{seen[order.id]}",
            )
        seen[order.id] = i
        if scenario.get("nodes") and not order.lines and order.pickup is None:
            raise InputError(f"new_orders.{i}.lines", NO_LINES_REASON)
    # the tasks of the orders kept and the new ones must have distinct ids (see job_id_clash)
    cancelled_ids = set(body.cancelled_order_ids)
    places = [i for i, o in enumerate(scenario.get("orders", [])) if o["id"] not in cancelled_ids]
    kept = [scenario["orders"][i]["id"] for i in places]
    node_ids = [n["id"] for n in scenario.get("nodes", [])]
    node_clash = node_id_clash(node_ids)
    if node_clash is not None:  # stored before such ids were refused: its re-plan would be wrong
        place = node_clash[0]
        raise stored_plan_error(f"node {node_ids[place]!r}", f"nodes.{place}.id", node_clash[1])
    stored = scenario["orders"] if places else []
    tasks = [
        *(_order_tasks(stored[i]["id"], stored[i].get("pickup")) for i in places),
        *(_order_tasks(o.id, o.pickup) for o in body.new_orders),
    ]
    clash = courier_task_clash(tasks, node_ids)
    if clash is not None and clash[0] >= len(kept):
        raise InputError(f"new_orders.{clash[0] - len(kept)}.{clash[1]}", clash[2])
    if clash is not None:  # stored before such ids were refused: its re-plan would be wrong
        place = places[clash[0]]
        raise stored_plan_error(f"order {kept[clash[0]]!r}", f"orders.{place}.{clash[1]}", clash[2])
    merged = {
        **scenario,
        "orders": [
            *scenario.get("orders", []),
            *(o.model_dump(mode="json") for o in body.new_orders),
        ],
    }
    try:  # the stored scenario may be saved by an older version: read it as saved data
        replanned = Scenario.model_validate(merged, context=saved_context(stored=True))
    except InputError:
        raise
    except ValueError as err:  # pydantic ValidationError: locate it under new_orders
        from pydantic import ValidationError

        from scenarios.errors import error_location

        if isinstance(err, ValidationError):
            loc, reason = error_location(err.errors(include_url=False)[0])
            n_old = len(scenario.get("orders", []))
            if len(loc) >= 2 and loc[0] == "orders" and isinstance(loc[1], int):
                if loc[1] >= n_old:
                    raise InputError(
                        field_path(("new_orders", loc[1] - n_old, *loc[2:])), reason
                    ) from None
                # it named new_orders.-1: the stored scenario fails as an older version saved it
                what = f"order {scenario['orders'][loc[1]].get('id')!r}"
                raise stored_plan_error(what, field_path(loc), reason) from None
            raise stored_plan_error(_stored_item(scenario, loc), field_path(loc), reason) from None
        raise
    _check_reserved_skills(scenario, replanned)
    travel = replanned.travel
    end_s = replanned.horizon.end_s
    if body.now_s > end_s:  # the re-plan's diagnosis named arrivals before now_s
        raise InputError(
            "now_s", f"{body.now_s} s is after the end of the scenario's horizon ({end_s} s)"
        )
    request = record.params.get("request")  # a re-plan's: it took its stops up to its now_s
    before = request.get("now_s") if isinstance(request, dict) else None
    if isinstance(before, int) and body.now_s < before:
        raise InputError(
            "now_s",
            f"{body.now_s} s is before the now_s of the plan it re-plans ({before} s): a "
            "re-plan cannot go back in time (re-plan an earlier plan of the day instead)",
        )
    # read as stored data, times outside the horizon were noted: the new orders' are refused
    problems = horizon_problems(replanned.horizon, [], body.new_orders, orders_field="new_orders")
    if problems:
        raise InputError(field_path(problems[0][0]), problems[0][1])
    # the stored scenario as read (the new orders are the last ones of the merged one)
    stored = replanned.model_copy(
        update={"orders": replanned.orders[: len(scenario.get("orders", []))]}
    )
    _check_stored_plan(record, body, stored)
    for i, position in enumerate(body.courier_positions):
        # else the re-planned scenario fails on vehicles.{k}.start_location, not in the body
        problem = travel.check_location(position.location)
        if problem is not None:
            raise InputError(f"courier_positions.{i}.location", problem)


def _check_reserved_skills(scenario: dict[str, Any], replanned: Scenario) -> None:
    """422 for a skill the planners reserve (:func:`~scenarios.skills.reserved_skill`) in a
    new order (``new_orders.{i}.required_skills.{k}``) or in the stored scenario (``scenario``,
    a plan stored before session 80 took one): a courier given ``on board c2`` delivered
    courier c2's parcels on board."""
    from scenarios.skills import reserved_skills

    n_old = len(scenario.get("orders", []))
    for loc, reason in reserved_skills(replanned):
        if loc[0] == "orders" and isinstance(loc[1], int) and loc[1] >= n_old:
            raise InputError(field_path(("new_orders", loc[1] - n_old, *loc[2:])), reason)
        if loc[0] == "orders" and isinstance(loc[1], int):
            what: str | None = f"order {scenario['orders'][loc[1]].get('id')!r}"
        else:
            what = _stored_item(scenario, loc)
        raise stored_plan_error(what, field_path(loc), reason)


def _stored_item(scenario: dict[str, Any], loc: tuple[int | str, ...]) -> str | None:
    """``vehicle 'v1'`` (or ``node``) for an error at ``vehicles.N...`` of the stored
    ``scenario``; None for any other place (or an item without an id)."""
    names = {"vehicles": "vehicle", "nodes": "node", "skus": "SKU"}
    if len(loc) < 2 or loc[0] not in names or not isinstance(loc[1], int):
        return None
    items = scenario.get(str(loc[0]))
    item = items[loc[1]] if isinstance(items, list) and 0 <= loc[1] < len(items) else None
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    return f"{names[str(loc[0])]} {item['id']!r}"


def _check_stored_plan(record: PlanRecord, body: ReoptimiseCreate, stored: Scenario) -> None:
    """422 on the stored plan when its plan (routes, stops, allocation lines) no longer reads
    as a plan: an id holding a control character, taken before ids refused them, or a
    corrupted row; or when the router would refuse its routes as the re-plan's warm start: a
    route of a courier the stored scenario lacks, a courier with two routes, a task visited
    twice by the stops still to do (:func:`check_stored_visits`: no travel matrix needed); or
    when its allocation prices or rules no longer read as such (:func:`stored_allocation_terms`).
    A queued re-plan (``mode: async``) was accepted, then its job failed on it; the message
    is the job's. ``stored``: the stored scenario, read."""
    from pydantic import ValidationError

    from scenarios.errors import error_location, field_path
    from solvers.routing.solve import check_route_vehicles

    try:
        plan = Plan.model_validate(record.plan)
    except ValidationError as err:
        errors = [error_location(e) for e in err.errors(include_url=False)]
        # the control-character rule first: its reason says the plan predates it
        errors.sort(key=lambda e: e[1] != CONTROL_CHARACTERS_REASON)
        loc, reason = errors[0]
        raise stored_plan_error(None, field_path(loc), reason, part="plan") from None
    # the re-plan's warm start has one route per stored route, in their order (see reoptimise)
    vehicles = {v["id"] for v in record.scenario.get("vehicles", [])}
    with warm_start_fields(plan, [[] for _ in plan.routes]):
        check_route_vehicles(plan, vehicles)
    check_stored_visits(plan, record.scenario, body, record.params.get("completed", []))
    # what the task routes before it allocates the new orders, built once for both checks
    preview = replan_preview(plan, stored, body, record.params.get("completed", []))
    check_replan_engine(body, preview)
    check_replan_range(plan, stored, body, preview)
    # the allocation prices and rules its new orders are allocated under (a restricted_skus
    # key of 0 characters, taken before session 51: a 422 on "restricted_skus.", no field of
    # the request, or with mode async a 202 and a crashed job)
    stored_allocation_terms(record.params)


@router.post(
    "/{plan_id}/reoptimise",
    response_model=ReoptimisePublic,
    summary="Re-optimise a plan during the day",
    responses={202: {"model": JobAccepted, "description": "queued as a job"}},
)
def reoptimise_plan(
    plan_id: str,
    body: Annotated[ReoptimiseCreate, Body(openapi_examples=REOPTIMISE_EXAMPLE)],
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: OmsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """New orders, courier positions and cancellations in; the new plan and what changed out.

    Stops planned to start before ``now_s`` are done; pinned stops (and parcels on board)
    stay on their courier in their order. The new plan is stored with ``parent_id``.
    """
    settings = ctx.settings
    record = _load(session, plan_id, principal)
    if body.routing.initial_plan is not None:  # it was replaced by the stored plan, silently
        raise InputError(
            "routing.initial_plan",
            "not taken here: the stored plan (its done and pinned stops) is the warm start",
        )
    _check_changes(record, body)
    limit_s = body.routing.time_limit_s + body.allocation.time_limit_s
    check_time_limit(settings, body.routing.time_limit_s, field="routing.time_limit_s")
    check_time_limit(settings, body.allocation.time_limit_s, field="allocation.time_limit_s")
    num_orders = len(record.scenario.get("orders", [])) + len(body.new_orders)
    sync = wants_sync(
        settings,
        body.mode,
        time_limit_s=limit_s,
        num_orders=num_orders,
        field="routing.time_limit_s",
    )
    # the stored plan's orders and the new ones: unchecked, 20,000 new orders were queued
    # (or answered in the request with mode sync)
    check_order_count(settings, num_orders, field="new_orders", sync=sync)
    check_size(settings, lines=("new_orders", body.new_orders))
    check_windows_and_breaks(settings, orders=("new_orders", body.new_orders))
    payload: JsonDict = {
        "request": body.model_dump(mode="json"),
        "parent": {
            "id": record.id,
            "scenario": record.scenario,
            "plan": record.plan,
            "completed": record.params.get("completed", []),
            # the allocation prices and rules the plan was made under (its new orders are
            # allocated under them too: a sanctions list must not lapse on a re-plan)
            "costs": record.params.get("costs"),
            "rules": record.params.get("rules"),
        },
    }
    job_id: str | None = None
    child_id: str | None = None  # the new plan's id, when chosen now
    claim: Callable[[], Callable[[], None]] | None = None
    if body.if_latest:  # claimed once its Idempotency-Key is (a retry is replayed first)
        job_id, child_id = new_id(), new_id()
        payload[PLAN_ID_KEY] = child_id  # named by the 409 of a re-plan that lost the race
        claim = functools.partial(claim_latest, session, record.id, job_id, child_id)

    def answer(outcome: SolveOutcome) -> BaseModel:
        log_read_notes(outcome.result, job_id=outcome.job_id)
        stored = _sync_answer(
            ctx,
            session,
            request,
            principal,
            outcome,
            scenario=record.scenario,
            params=reoptimised_params(payload),
            parent_id=record.id,
            plan_id=child_id,
        )
        return ReoptimisePublic.model_validate(stored)

    return solve_or_queue_response(
        ctx,
        session,
        request,
        principal=principal,
        idem_key=idempotency_key,
        sync=sync,
        kind="reoptimise",
        payload=payload,
        seed=body.routing.seed,
        time_limit_s=limit_s,
        job_timeout_s=limit_s * 2 + JOB_GRACE_S,
        lane=ctx.lanes["heavy"],
        answer=answer,
        with_limit=functools.partial(with_reoptimise_time_limit, payload),
        num_orders=num_orders,
        job_id=job_id,
        claim=claim,
    )


def with_reoptimise_time_limit(payload: JsonDict, time_limit_s: float) -> JsonDict:
    """A re-optimisation's task ``payload`` with its allocation and routing time limits
    scaled to sum to ``time_limit_s`` (what is left of their sum since the request arrived)."""
    request = payload["request"]
    stages = ("allocation", "routing")
    share = limit_share(sum(request[stage]["time_limit_s"] for stage in stages), time_limit_s)
    limited = {
        stage: {**request[stage], "time_limit_s": request[stage]["time_limit_s"] * share}
        for stage in stages
    }
    return {**payload, "request": {**request, **limited}}


#: an order's courier tasks for :func:`courier_task_clash`: its id, and with a pickup of its
#: own (a pickup-and-delivery job, not allocated) its pickup's id and whether it is given
OrderTasks = tuple[str, tuple[str, bool] | None]


def _order_tasks(order_id: str, pickup: Any) -> OrderTasks:
    """The tasks of an order whose ``pickup`` is a PickupSpec, its stored dict, or None."""
    if pickup is None:
        return order_id, None
    own_id = pickup.get("id") if isinstance(pickup, dict) else pickup.id
    return order_id, (own_id, True) if own_id is not None else (f"{order_id}:pickup", False)


def courier_task_clash(
    orders: list[OrderTasks], node_ids: list[str]
) -> tuple[int, str, str] | None:
    """The place of the first order one of whose courier tasks may have the id of a task of
    an earlier order, or an id past 200 characters whatever node ships it (see
    :func:`~solvers.routing.from_allocation.task_id_too_long`), the field of the order it is
    on (``id``, ``pickup.id``) and why; else None.

    The orders allocated to nodes get the tasks of
    :func:`~solvers.routing.routing_scenario_from_allocation` (see
    :func:`~solvers.routing.from_allocation.job_id_clash`); one with a pickup of its own keeps
    its id and its pickup's (see :func:`~solvers.routing.from_allocation.own_task_clash`).
    A clash is put on the later of its two orders, so that a re-plan, whose new orders follow
    the stored ones, names the new order (the stored plan only when both are stored).
    """
    allocated = [k for k, (_, own) in enumerate(orders) if own is None]
    allocated_ids = [orders[k][0] for k in allocated]
    clash = job_id_clash(allocated_ids, node_ids)
    found: tuple[int, str, str] | None = None
    if clash is not None:
        found = allocated[clash[0]], "id", clash[1]
    own_tasks: list[tuple[int, str, str]] = []  # place, field, task id
    for k, (order_id, own) in enumerate(orders):
        if own is not None:
            own_tasks.append((k, "id", order_id))
            own_tasks.append((k, "pickup.id" if own[1] else "id", own[0]))
    task_ids = [t for *_, t in own_tasks]
    for i, a, other in own_task_clashes(allocated_ids, task_ids, node_ids):
        k, field, task_id = own_tasks[i]
        if allocated[a] > k:  # the allocated order comes later: its task is the one renamed
            own_id = orders[k][0]
            mine = f"order {own_id!r}" if task_id == own_id else f"the pickup of order {own_id!r}"
            mine += "" if task_id == own_id else f" ({task_id!r})"
            candidate = allocated[a], "id", f"{other} would have the id of {mine}: rename it"
        else:
            candidate = k, field, f"id {task_id!r} is the id of {other}: rename it"
        if found is None or candidate[0] < found[0]:
            found = candidate
    if found is not None:
        return found
    long_id = task_id_too_long(allocated_ids, node_ids)
    # past the limit whatever node ships it (the ids the allocation builds are checked when
    # they are built: shipped from several nodes, an order has longer ones)
    if long_id is not None:
        return allocated[long_id[0]], "id", long_id[1]
    return None


#: How long the claim of an ``if_latest`` re-plan whose job row is not written holds (its
#: request writes it milliseconds after the claim; a process that died in between left it)
LATEST_CLAIM_STALE_S = 60.0


def _latest_conflict(session: Session, record: PlanRecord, now: dt.datetime) -> str | None:
    """Why ``record``'s ``if_latest`` re-plan (its claim) stands in the way of another one,
    naming its plan and job; None when there is no claim, or its job failed, was cancelled,
    or was never written, or is done without its plan stored (claimed
    :data:`LATEST_CLAIM_STALE_S` before: its server died in between)."""
    job_id, child = record.latest_job_id, record.latest_plan_id
    if job_id is None:
        return None
    # the ids named are the service's own (new_id), never a caller's: named whole
    head = f"plan {record.id} has an if_latest re-plan already"
    if child is not None and session.get(PlanRecord, child) is not None:
        return f"{head}: plan {child} (job {job_id}) is the latest; re-plan that plan instead"
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    if status in (FAILED, CANCELLED):
        return None
    if status is None or status == DONE:
        # not written yet (its request writes it next), or never (its server died); done,
        # its plan not stored yet (a synchronous re-plan stores it next), or never
        claimed = record.latest_claimed_at
        if claimed is not None and (now - claimed).total_seconds() > LATEST_CLAIM_STALE_S:
            return None
        status = status or "being started"
    return (
        f"{head}: plan {child} is being made by job {job_id} ({status}; follow it at "
        f"/v1/jobs/{job_id}); re-plan that plan once it is done"
    )


def claim_latest(session: Session, plan_id: str, job_id: str, child_id: str) -> Callable[[], None]:
    """Claim plan ``plan_id`` for the ``if_latest`` re-plan of job ``job_id``, which makes
    plan ``child_id`` (commits), or raise 409 naming the re-plan that holds it (see
    :func:`_latest_conflict`).

    The claim is a conditional UPDATE of the plan's row (its ``latest_job_id`` as read), so
    of two concurrent claims one changes the row and the other changes nothing, on SQLite
    (one writer at a time) as on PostgreSQL (the second UPDATE waits for the first to commit,
    then finds the row changed); the loser reads the winner's claim and names it. Returns
    what to call should the request fail before its job is written: the claim is given back.
    """
    for _ in range(3):  # a claim given back meanwhile: read again
        session.rollback()
        record = session.get(PlanRecord, plan_id, populate_existing=True)
        if record is None:
            raise HTTPException(404, f"no plan {shown_id(plan_id)!r}")
        now = utcnow()
        conflict = _latest_conflict(session, record, now)
        if conflict is not None:
            raise HTTPException(409, conflict)
        held = record.latest_job_id
        changed = session.execute(
            update(PlanRecord)
            .where(
                PlanRecord.id == plan_id,
                PlanRecord.latest_job_id.is_(None)
                if held is None
                else PlanRecord.latest_job_id == held,
            )
            .values(latest_job_id=job_id, latest_plan_id=child_id, latest_claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            return functools.partial(_give_back, session, plan_id, job_id)
    raise HTTPException(
        409, f"plan {shown_id(plan_id)} is being re-planned by others; retry shortly"
    )


def _give_back(session: Session, plan_id: str, job_id: str) -> None:
    """Clear plan ``plan_id``'s ``if_latest`` claim of job ``job_id`` if that job was not
    written (its request failed before): the next ``if_latest`` re-plan need not wait."""
    try:
        session.rollback()
        if session.get(Job, job_id) is not None:
            return  # written: it stands (failed or cancelled, it is taken over)
        session.execute(
            update(PlanRecord)
            .where(PlanRecord.id == plan_id, PlanRecord.latest_job_id == job_id)
            .values(latest_job_id=None, latest_plan_id=None, latest_claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    except Exception:
        log.exception(
            "plan %s: the if_latest claim of job %s could not be given back (it lapses after %g s)",
            plan_id,
            job_id,
            LATEST_CLAIM_STALE_S,
        )
