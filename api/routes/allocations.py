"""``POST /v1/allocations``: fulfilment allocation, answered synchronously."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.core.errors import ERROR_RESPONSES
from api.deps import CtxDep, IdempotencyKeyHeader, OmsDep, SessionDep
from api.examples import ALLOCATION_EXAMPLE
from api.limits import check_time_limit
from api.schemas.allocations import AllocationCreate, AllocationsPublic
from api.solve import note_audit, respond, solve_sync
from api.versions import solver_label
from scenarios.errors import InputError

router = APIRouter(prefix="/v1/allocations", tags=["allocations"], responses=ERROR_RESPONSES)


@router.post("", response_model=AllocationsPublic, summary="Allocate order lines to nodes")
def create_allocation(
    body: Annotated[AllocationCreate, Body(openapi_examples=ALLOCATION_EXAMPLE)],
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: OmsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
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
    payload = body.model_dump(mode="json")

    def compute() -> tuple[int, BaseModel, str | None]:
        outcome = solve_sync(
            ctx,
            session,
            request,
            kind="allocations",
            payload=payload,
            principal=principal,
            seed=body.params.seed,
            time_limit_s=limit_s,
            lane=ctx.lanes["fast"],
        )
        public = AllocationsPublic.model_validate(
            {
                **outcome.result,
                "job_id": outcome.job_id,
                "fallback": outcome.fallback,
                "fallback_reason": outcome.fallback_reason,
            }
        )
        note_audit(
            request,
            result=("fallback:" if outcome.fallback else "") + public.status.value,
            solver=solver_label(public.solver.engine),
        )
        return 200, public, None

    return respond(
        ctx, session, request, principal=principal, idem_key=idempotency_key, compute=compute
    )
