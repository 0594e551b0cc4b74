"""``POST /v1/allocations``: fulfilment allocation, answered now or as a job."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.context import ServiceContext
from api.core.errors import ERROR_RESPONSES
from api.core.security import Role
from api.deps import (
    CtxDep,
    IdempotencyKeyHeader,
    OmsDep,
    Principal,
    authorise,
    get_ctx,
    open_session,
)
from api.examples import ALLOCATION_EXAMPLE
from api.fastpath import fast_route
from api.jobs.registry import JsonDict
from api.limits import check_order_count, check_size, check_time_limit, wants_sync
from api.routes.answers import public_answer
from api.schemas.allocations import AllocationCreate, AllocationsPublic
from api.schemas.common import JobAccepted
from api.solve import (
    SolveOutcome,
    admitted,
    body_as_sent,
    json_response,
    queue_job,
    respond,
    run_in_lane,
    solve_fast,
    solve_sync,
    with_time_limit,
)
from scenarios.bulk import collector_paused
from scenarios.errors import fields_under
from scenarios.model import Tier
from solvers.allocation.problem import vip_share_of

#: A one-order online allocation up to these sizes is solved on the event loop (see
#: :func:`_inline`); larger ones, more orders and batch mode go to the solver pool.
INLINE_MAX_LINES = 20
INLINE_MAX_NODES = 200
#: seconds a job has beyond twice its time limit (the explanations, a slow start) before the
#: job service stops it, as for routing jobs
JOB_GRACE_S = 120.0


def _inline(body: AllocationCreate) -> bool:
    """True for an allocation small and bounded enough to solve on the event loop.

    One order in online mode with the default backend and no capacity that may bind is an
    exact, node-limited branch and bound over its candidate nodes: about a millisecond of
    CPU, less than handing it to a pool thread and back costs under load (measured in
    docs/api.md). Where a capacity may bind, the pool solves it (see
    :func:`_capacity_may_bind`).
    """
    req, params = body.request, body.params
    return (
        params.mode == "online"
        and params.backend == "highspy"
        # HiGHS sizes its task scheduler once per thread: on the loop's thread every solve
        # must ask for the same count (the service's default, 1)
        and params.threads in (None, 1)
        and len(req.orders) == 1
        and len(req.orders[0].lines) <= INLINE_MAX_LINES
        and len(req.nodes) <= INLINE_MAX_NODES
        and not _capacity_may_bind(body)
    )


def _capacity_may_bind(body: AllocationCreate) -> bool:
    """True when some node's unit capacity may be below the one order's units.

    Such an order needs the capacity-aware search or a one-order MIP: milliseconds over a
    few nodes, but seconds (up to the time limit) over a hundred capped ones, which must
    not hold up the event loop.
    """
    req = body.request
    units = sum(line.quantity for line in req.orders[0].lines)
    share = req.rules.vip_capacity_share if req.orders[0].tier == Tier.VIP else 1.0
    # a node that may ship nothing at all (capacity 0) is closed, not binding
    return any(
        n.capacity_units is not None and 0 < vip_share_of(n.capacity_units, share) < units
        for n in req.nodes
    )


async def _fast(request: Request, value: Any) -> Response | None:
    """The OMS's usual call (a valid JSON body, no ``Idempotency-Key``) on the short path,
    given the body's JSON value (the middleware's one parse: :mod:`api.fastpath`).

    ``None`` leaves the request to FastAPI, which then answers exactly as without this path:
    the body is checked first (a bad body is a 422 whoever asks), then the key.
    """
    if "idempotency-key" in request.headers or request.scope.get("query_string"):
        return None  # a query string: FastAPI refuses it (api.deps.no_unknown_query_parameters)
    try:
        with collector_paused():  # a large request is many objects (scenarios.bulk)
            body = AllocationCreate.model_validate(value)
    except ValidationError:
        return None
    principal = await authorise(request, Role.OMS)
    return await create_allocation(body, request, await get_ctx(request), principal)


router = APIRouter(
    prefix="/v1/allocations",
    tags=["allocations"],
    responses=ERROR_RESPONSES,
    route_class=fast_route(_fast),
)


@router.post(
    "",
    response_model=AllocationsPublic,
    summary="Allocate order lines to nodes",
    responses={202: {"model": JobAccepted, "description": "queued as a job"}},
)
async def create_allocation(
    body: Annotated[AllocationCreate, Body(openapi_examples=ALLOCATION_EXAMPLE)],
    request: Request,
    ctx: CtxDep,
    principal: OmsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Which node ships each order line, at what cost, and why (per-order explanations).

    ``params.mode``: ``batch`` (many orders jointly) or ``online`` (one or a few orders);
    ``params.baseline`` runs a rule instead of the optimiser. Unfillable demand is in
    ``unfilled`` with the reason; an impossible request answers ``status: "infeasible"`` with
    a diagnosis. If the optimiser crashes or overruns, the nearest-node baseline answers.
    Answered now (200) when the time limit and the number of orders allow it (``mode``
    ``auto``, the default, or ``sync``), within the time limit counted from the request's
    arrival, else 202 with a job whose result is this answer.
    """
    settings = ctx.settings
    limit_s = body.params.time_limit_s
    check_time_limit(settings, limit_s, field="params.time_limit_s")
    n = len(body.request.orders)
    sync = wants_sync(
        settings, body.mode, time_limit_s=limit_s, num_orders=n, field="params.time_limit_s"
    )
    check_order_count(settings, n, field="request.orders", sync=sync)
    check_size(
        settings,
        nodes=("request.nodes", len(body.request.nodes)),
        lines=("request.orders", body.request.orders),
    )
    if not sync:
        return await _queue(body, request, ctx, principal, idempotency_key)
    lane = ctx.lanes["fast"]
    if idempotency_key is None:
        # on the event loop, with no database write before the answer: the solver runs in
        # its pool thread and the job row is written behind the answer
        async with admitted(ctx, lane):
            outcome = await solve_fast(
                ctx,
                request,
                kind="allocations",
                body=body,
                principal=principal,
                seed=body.params.seed,
                time_limit_s=limit_s,
                lane=lane,
                inline=_inline(body),
                with_limit=functools.partial(with_time_limit, body),
                num_orders=n,
            )
        return json_response(200, _public(request, outcome))
    payload = body.model_dump(mode="json")
    stored = await body_as_sent(request)

    def compute(session: Session) -> tuple[int, BaseModel, str | None]:
        outcome = solve_sync(
            ctx,
            session,
            request,
            kind="allocations",
            payload=payload,
            principal=principal,
            seed=body.params.seed,
            time_limit_s=limit_s,
            lane=lane,
            solver_input=body,
            stored=stored,
            with_limit=functools.partial(with_time_limit, body),
            num_orders=n,
        )
        return 200, _public(request, outcome), None

    def answer() -> Response:
        # one worker thread for the idempotency record, the job row and the wait on the solver
        return _respond(ctx, request, principal, idempotency_key, compute)

    return await run_in_lane(ctx, lane, answer)


def _respond(
    ctx: ServiceContext,
    request: Request,
    principal: Principal,
    idempotency_key: str | None,
    compute: Callable[[Session], tuple[int, BaseModel, str | None]],
) -> Response:
    """The answer of ``compute`` in a fresh session, once per ``Idempotency-Key``."""
    with open_session(ctx) as session:
        return respond(
            ctx,
            session,
            request,
            principal=principal,
            idem_key=idempotency_key,
            compute=lambda: compute(session),
        )


async def _queue(
    body: AllocationCreate,
    request: Request,
    ctx: CtxDep,
    principal: OmsDep,
    idempotency_key: str | None,
) -> Response:
    """Queue the allocation as a job (once per ``Idempotency-Key``): 202 with its Location.

    The job keeps the body as sent (:func:`~api.solve.body_as_sent`); its result is the
    :class:`AllocationsPublic` answer (:func:`api.tasks.allocations.on_done`). A request the
    solver refuses is a 422 first (:func:`check_request`).
    """
    stored = await body_as_sent(request)
    payload = cast(JsonDict, stored) if stored is not None else body.model_dump(mode="json")
    timeout_s = body.params.time_limit_s * 2 + JOB_GRACE_S

    def answer() -> Response:
        check_request(body)
        with open_session(ctx) as session:
            return queue_job(
                ctx,
                session,
                request,
                principal=principal,
                idem_key=idempotency_key,
                kind="allocations",
                payload=payload,
                seed=body.params.seed,
                timeout_s=timeout_s,
            )

    return await run_in_threadpool(answer)


def check_request(body: AllocationCreate) -> None:
    """422 for a request the solver refuses (a price or a total past its integer range,
    :func:`~solvers.allocation.problem.compile_request`'s checks), named from the body's
    root, before anything is queued: a job would fail on it after its 202.

    Compiles the request once more (0.7 s at 10,000 literature orders on a loaded 2-core
    machine), in a worker thread.
    """
    from solvers.allocation.problem import compile_request

    with fields_under("request"):
        compile_request(body.request, prune=False)


def _public(request: Request, outcome: SolveOutcome) -> AllocationsPublic:
    """The answer's public form, noted in the request's audit row."""
    return public_answer(
        AllocationsPublic,
        request,
        outcome,
        fallback=outcome.fallback,
        reason=outcome.fallback_reason,
    )
