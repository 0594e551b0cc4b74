"""``POST /v1/allocations``: fulfilment allocation, answered synchronously."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from api.core.errors import ERROR_RESPONSES
from api.core.security import Role
from api.deps import CtxDep, IdempotencyKeyHeader, OmsDep, authorise, get_ctx, open_session
from api.examples import ALLOCATION_EXAMPLE
from api.fastpath import fast_route, is_plain_json
from api.limits import check_time_limit
from api.routes.answers import public_answer
from api.schemas.allocations import AllocationCreate, AllocationsPublic
from api.solve import (
    SolveOutcome,
    admitted,
    body_as_sent,
    json_response,
    respond,
    run_in_lane,
    solve_fast,
    solve_sync,
)
from scenarios.errors import InputError
from scenarios.model import Tier
from solvers.allocation.problem import vip_share_of

#: A one-order online allocation up to these sizes is solved on the event loop (see
#: :func:`_inline`); larger ones, more orders and batch mode go to the solver pool.
INLINE_MAX_LINES = 20
INLINE_MAX_NODES = 200


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


async def _fast(request: Request) -> Response | None:
    """The OMS's usual call (a valid JSON body, no ``Idempotency-Key``) on the short path.

    ``None`` leaves the request to FastAPI, which then answers exactly as without this path:
    the body is checked first (a bad body is a 422 whoever asks), then the key.
    """
    if "idempotency-key" in request.headers or not is_plain_json(request):
        return None
    try:
        body = AllocationCreate.model_validate_json(await request.body())
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


@router.post("", response_model=AllocationsPublic, summary="Allocate order lines to nodes")
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
    """
    settings = ctx.settings
    limit_s = body.params.time_limit_s
    check_time_limit(settings, limit_s, field="params.time_limit_s")
    if limit_s > settings.max_sync_time_limit_s:
        raise InputError(
            "params.time_limit_s",
            f"allocations are answered synchronously: at most {settings.max_sync_time_limit_s:g} s",
        )
    n = len(body.request.orders)
    if n > settings.max_orders_sync:
        raise HTTPException(
            413, f"request.orders: {n} orders; at most {settings.max_orders_sync} per request"
        )
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
        )
        return 200, _public(request, outcome), None

    def answer() -> Response:
        # one worker thread for the idempotency record, the job row and the wait on the solver
        with open_session(ctx) as session:
            return respond(
                ctx,
                session,
                request,
                principal=principal,
                idem_key=idempotency_key,
                compute=lambda: compute(session),
            )

    return await run_in_lane(ctx, lane, answer)


def _public(request: Request, outcome: SolveOutcome) -> AllocationsPublic:
    """The answer's public form, noted in the request's audit row."""
    return public_answer(
        AllocationsPublic,
        request,
        outcome,
        fallback=outcome.fallback,
        reason=outcome.fallback_reason,
    )
