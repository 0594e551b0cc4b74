"""``POST /v1/whatif``: variants x policies x replications compared with the base, as a job."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.core.config import Settings
from api.core.errors import ERROR_RESPONSES, shown_id
from api.deps import CtxDep, IdempotencyKeyHeader, PlannerDep, PrincipalDep, SessionDep
from api.examples import WHATIF_EXAMPLE
from api.fastpath import BodyRoute
from api.limits import (
    check_arrivals,
    check_played_scenario,
    check_replications,
    check_simulated_days,
)
from api.routes.jobs import load_job
from api.schemas.common import JobAccepted
from api.schemas.simulations import WhatIfCreate, WhatIfResult
from api.solve import queue_job

router = APIRouter(
    prefix="/v1/whatif", tags=["simulations"], responses=ERROR_RESPONSES, route_class=BodyRoute
)


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
    from simulation.policies import BUILTIN_POLICIES, check_policy

    check_played_scenario(ctx.settings, body.scenario, field="scenario")
    check_replications(ctx.settings, body.replications, field="replications")
    for i, policy in enumerate(body.policies):
        check_policy(policy, f"policies.{i}", has_plan=body.plan is not None, only=BUILTIN_POLICIES)
    played = len(body.variants) + 1  # the base is played first (no variant may be named base)
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


#: matplotlib's pyplot keeps global state: one report is drawn at a time
_DRAWING = threading.Lock()
#: the last pages drawn, by job id (a done study's result never changes; the largest study
#: the limits allow takes ~14 s of CPU to draw, its page ~3 MB)
_PAGES: OrderedDict[str, str] = OrderedDict()
PAGES_KEPT = 8


@router.get(
    "/{job_id}/report",
    response_class=HTMLResponse,
    summary="A what-if study's report page (plots and table)",
    responses={409: {"description": "the study is not done (or never will be), or has no samples"}},
)
def whatif_report(job_id: str, session: SessionDep, principal: PrincipalDep, ctx: CtxDep) -> str:
    """The study's page: KPI plots with CIs, paired differences, the whole table (HTML)."""
    job = load_job(session, job_id, principal, ctx)
    if job.kind != "whatif":
        raise HTTPException(
            404, f"job {shown_id(job_id)!r} is a {job.kind} job, not a what-if study"
        )
    if job.status != "done" or not job.result:
        # a failed or cancelled study never gets one: "once the study is done" had a planner wait
        later = job.status in ("queued", "running")
        reason = "its report exists once the study is done" if later else "run the study again"
        raise HTTPException(409, f"job {shown_id(job_id)} is {job.status}: {reason}")
    with _DRAWING:  # a page drawn before: the result is read and the plots drawn once
        page = _PAGES.get(job_id)
        if page is None:
            page = _draw(job_id, job.result)
            _PAGES[job_id] = page
            while len(_PAGES) > PAGES_KEPT:
                _PAGES.popitem(last=False)
        _PAGES.move_to_end(job_id)
    return page


def _draw(job_id: str, stored: dict[str, Any]) -> str:
    """The report page of a done what-if job's stored result; 409 for one without samples."""
    from simulation.report import html_report, plots
    from simulation.sweep import SweepResult

    try:
        result: WhatIfResult | None = WhatIfResult.model_validate(stored)
    except ValidationError:  # a result of an older version
        result = None
    if result is None or not result.samples or result.seed is None:
        raise HTTPException(
            409,
            f"job {shown_id(job_id)}'s result was stored before reports kept each replication's "
            "KPIs; run the study again for its report",
        )
    sweep = SweepResult.from_records(
        base=result.base,
        variants=result.variants,
        policies=result.policies,
        seed=result.seed,
        records=[r.model_dump() for r in result.samples],
        notes=result.notes,
        changes=result.changes,
    )
    return html_report(sweep, plots(sweep), title=f"What-if study {job_id}")
