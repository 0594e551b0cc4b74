"""``POST /v1/whatif``: variants x policies x replications compared with the base, as a job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from api.core.config import Settings
from api.core.errors import ERROR_RESPONSES
from api.deps import CtxDep, IdempotencyKeyHeader, PlannerDep, SessionDep
from api.examples import WHATIF_EXAMPLE
from api.limits import (
    check_arrivals,
    check_played_scenario,
    check_replications,
    check_simulated_days,
)
from api.schemas.common import JobAccepted
from api.schemas.simulations import WhatIfCreate
from api.solve import queue_job

router = APIRouter(prefix="/v1/whatif", tags=["simulations"], responses=ERROR_RESPONSES)


def check_variants(body: WhatIfCreate, *, settings: Settings) -> None:
    """422 for a modifier that does not fit the base scenario (unknown ids, bad values), or
    a demand modifier that would make a variant of more than ``max_orders`` orders; 413 for
    a variant whose arrivals would (see :func:`api.limits.check_arrivals`).

    Applies every variant exactly as the job does (same function, same seed); the field is
    ``variants.{i}.modifiers.{j}...`` from the request root.
    """
    from scenarios.variants import LoadedVariants, VariantFile

    spec = VariantFile(base="(request)", variants=body.variants)
    loaded = LoadedVariants(spec, body.scenario, body.plan, "request")
    scenarios = loaded.scenarios(seed=body.seed, max_orders=settings.max_orders)
    for i, variant in enumerate(body.variants):  # demand surges multiply the arrivals too
        check_arrivals(settings, scenarios[variant.name], field=f"variants.{i}")


@router.post("", status_code=202, response_model=JobAccepted, summary="What-if study (job)")
def create_whatif(
    body: Annotated[WhatIfCreate, Body(openapi_examples=WHATIF_EXAMPLE)],
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PlannerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Queue a sweep; the job's result compares each variant with the base (paired CIs)."""
    from simulation.policies import check_policy

    check_played_scenario(ctx.settings, body.scenario, field="scenario")
    check_replications(ctx.settings, body.replications, field="replications")
    for i, policy in enumerate(body.policies):
        check_policy(policy, f"policies.{i}", has_plan=body.plan is not None)
    # the base is played first; a variant named base redefines it and is not played twice
    played = len({v.name for v in body.variants} | {"base"})
    runs = played * len(body.policies) * body.replications
    check_simulated_days(
        ctx.settings,
        runs,
        field="replications",
        counted=f"{played} variants with the base x policies x replications",
    )
    # the job applies them the same way: fail here, not in the job
    check_variants(body, settings=ctx.settings)
    if body.plan is not None:
        from simulation.twin import check_plan_ids

        check_plan_ids(body.scenario, body.plan)
    payload = body.model_dump(mode="json")
    return queue_job(
        ctx,
        session,
        request,
        principal=principal,
        idem_key=idempotency_key,
        kind="whatif",
        payload=payload,
        seed=body.seed,
    )
