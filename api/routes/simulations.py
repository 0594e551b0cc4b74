"""``POST /v1/simulations``: the twin plays a scenario (and plan) forward, as a job; and
``POST /v1/simulations/compare``: candidate plans on the same seeds, with a recommendation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from api.core.errors import ERROR_RESPONSES
from api.deps import CtxDep, IdempotencyKeyHeader, PlannerDep, SessionDep
from api.examples import SIMULATION_EXAMPLE
from api.fastpath import BodyRoute
from api.limits import check_played_scenario, check_replications, check_simulated_days
from api.schemas.common import JobAccepted
from api.schemas.simulations import ComparisonCreate, SimulationCreate
from api.solve import queue_job
from api.tasks.simulations import candidate_policies, default_policy
from scenarios.errors import InputError

router = APIRouter(
    prefix="/v1/simulations", tags=["simulations"], responses=ERROR_RESPONSES, route_class=BodyRoute
)


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    summary="Simulate replications of a day (job)",
)
def create_simulation(
    body: Annotated[SimulationCreate, Body(openapi_examples=SIMULATION_EXAMPLE)],
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PlannerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Queue a twin study; the job's result has KPIs with 95% confidence intervals."""
    from simulation.policies import BUILTIN_POLICIES, check_policy

    check_played_scenario(ctx.settings, body.scenario, field="scenario")
    check_replications(ctx.settings, body.replications, field="replications")
    policy = default_policy(body)
    # 422 for an unknown policy, or plan without a plan, before queueing
    check_policy(
        policy,
        "policy",
        has_plan=body.plan is not None,
        hint=" (give one in plan)",
        only=BUILTIN_POLICIES,  # what its job process has, whatever this one imported
    )
    if body.plan is not None:  # unknown vehicles, orders...: 422 now, not a failed job later
        from simulation.twin import check_plan_ids

        check_plan_ids(body.scenario, body.plan)
    payload = body.model_dump(mode="json")
    return queue_job(
        ctx,
        session,
        request,
        principal=principal,
        idem_key=idempotency_key,
        kind="simulations",
        payload=payload,
        seed=body.seed,
    )


@router.post(
    "/compare",
    status_code=202,
    response_model=JobAccepted,
    summary="Compare candidate plans on the same replications (job)",
)
def create_comparison(
    body: ComparisonCreate,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PlannerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Queue a comparison; the job's result has each plan's KPIs, paired differences against
    the first (the baseline) and the recommended plan, as ``dispatchlab simulate --plan A
    --plan B`` prints them."""
    from simulation.policies import BUILTIN_POLICIES, check_policy
    from simulation.twin import check_plan_ids

    check_played_scenario(ctx.settings, body.scenario, field="scenario")
    check_replications(ctx.settings, body.replications, field="replications")
    check_simulated_days(
        ctx.settings,
        len(body.candidates) * body.replications,
        field="replications",
        counted=f"{len(body.candidates)} candidates x replications",
    )
    if body.policy is not None:  # an unknown or malformed spec
        check_policy(body.policy, "policy", has_plan=True, only=BUILTIN_POLICIES)
    policies = candidate_policies(body)
    for i, candidate in enumerate(body.candidates):
        if candidate.policy is not None:
            check_policy(
                candidate.policy, f"candidates.{i}.policy", has_plan=True, only=BUILTIN_POLICIES
            )
        if candidate.plan is None:
            if policies[candidate.name].strip().partition(":")[0] == "plan":
                raise InputError(f"candidates.{i}.plan", "policy 'plan' needs a plan")
            continue
        try:  # unknown vehicles, orders...: 422 now, not a failed job later
            check_plan_ids(body.scenario, candidate.plan)
        except InputError as err:
            raise InputError(f"candidates.{i}.{err.field}", err.reason) from None
    return queue_job(
        ctx,
        session,
        request,
        principal=principal,
        idem_key=idempotency_key,
        kind="comparisons",
        payload=body.model_dump(mode="json"),
        seed=body.seed,
    )
