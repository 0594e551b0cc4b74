"""``POST /v1/routes``: courier routing, answered now or as a job."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.core.errors import ERROR_RESPONSES
from api.deps import CtxDep, IdempotencyKeyHeader, OmsDep, SessionDep
from api.examples import ROUTES_EXAMPLE
from api.fastpath import BodyRoute
from api.limits import (
    check_engine,
    check_initial_plan,
    check_initial_stops,
    check_orders,
    check_routing_range,
    check_scenario,
    check_scenario_lists,
    check_time_limit,
    wants_sync,
)
from api.routes.answers import public_answer
from api.schemas.common import JobAccepted
from api.schemas.routes import RoutesCreate, RoutesPublic
from api.solve import (
    SolveOutcome,
    engine_fallback_reason,
    solve_or_queue_response,
    with_time_limit,
)

router = APIRouter(
    prefix="/v1/routes", tags=["routes"], responses=ERROR_RESPONSES, route_class=BodyRoute
)

JOB_GRACE_S = 120.0


@router.post(
    "",
    response_model=RoutesPublic,
    summary="Route orders with a fleet",
    responses={202: {"model": JobAccepted, "description": "queued as a job"}},
)
def create_routes(
    body: Annotated[RoutesCreate, Body(openapi_examples=ROUTES_EXAMPLE)],
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: OmsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Plan routes within ``params.time_limit_s``.

    Answered now (200) when the time limit and the number of orders allow it, within the
    time limit counted from the request's arrival, else 202 with a job. Infeasible problems
    answer 200 with ``status: "infeasible"`` and a diagnosis; if the solver crashes or
    overruns, the greedy plan answers with ``fallback: true``.
    """
    settings = ctx.settings
    limit_s = body.params.time_limit_s
    check_time_limit(settings, limit_s, field="params.time_limit_s")
    # before the checks that build the routing problem (check_routing_range)
    check_scenario_lists(settings, body.scenario, field="scenario", nodes_and_lines=False)
    check_scenario(body.scenario, field="scenario")
    check_initial_plan(body.params, body.scenario, field="params")
    check_engine(body.params, body.scenario, field="params")
    check_initial_stops(body.params, body.scenario, field="params")
    check_routing_range(body.scenario, field="scenario")
    sync = wants_sync(
        settings,
        body.mode,
        time_limit_s=limit_s,
        num_orders=len(body.scenario.orders),
        field="params.time_limit_s",
    )
    check_orders(settings, body.scenario, field="scenario.orders", sync=sync)

    def answer(outcome: SolveOutcome) -> BaseModel:
        reason = engine_fallback_reason(ctx, outcome, "routes")
        return public_answer(RoutesPublic, request, outcome, fallback=bool(reason), reason=reason)

    return solve_or_queue_response(
        ctx,
        session,
        request,
        principal=principal,
        idem_key=idempotency_key,
        sync=sync,
        kind="routes",
        payload=body.model_dump(mode="json"),
        seed=body.params.seed,
        time_limit_s=limit_s,
        job_timeout_s=limit_s * 2 + JOB_GRACE_S,
        lane=ctx.lanes["heavy"],
        answer=answer,
        with_limit=functools.partial(with_time_limit, body),
        num_orders=len(body.scenario.orders),
    )
