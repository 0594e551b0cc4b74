"""``/v1/jobs``: follow, list and cancel jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import defer

from api.context import ServiceContext
from api.core.errors import ERROR_RESPONSES
from api.db.models import Job
from api.deps import CtxDep, Principal, PrincipalDep, SessionDep
from api.schemas.common import JobPublic, JobsPublic, JobStatus
from scenarios.errors import InputError

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


#: the columns of a job's public view other than its result
_VIEW_COLUMNS = tuple(name for name in JobPublic.model_fields if name not in ("result", "links"))


def job_public(job: Job, *, with_result: bool = True, plan_id: str | None = None) -> JobPublic:
    """The public view of a job row (without its result, the row's result is not read).

    ``plan_id`` is the plan a job made, for its link, when the result is not read.
    """
    fields = {name: getattr(job, name) for name in _VIEW_COLUMNS}
    if with_result:
        fields["result"] = job.result
        plan_id = (job.result or {}).get("plan_id") if job.result else None
    public = JobPublic.model_validate(fields)
    public.links = {"self": f"/v1/jobs/{job.id}"}
    if plan_id:
        public.links["plan"] = f"/v1/plans/{plan_id}"
    return public


def settled(ctx: ServiceContext, job_id: str | None = None) -> None:
    """Wait for this replica's unwritten records of synchronous solves (``job_id``'s, or any)."""
    if ctx.jobs is not None:
        ctx.jobs.settle_records(job_id)


def load_job(session: SessionDep, job_id: str, principal: Principal, ctx: ServiceContext) -> Job:
    """The job if it exists and the caller may see it, else 404."""
    settled(ctx, job_id)
    job = session.get(Job, job_id)
    if job is None or not principal.owns(job.key_id):
        raise HTTPException(404, f"no job {job_id!r}")
    return job


def page_query(
    where: Sequence[ColumnElement[bool]], *, offset: int, limit: int
) -> Select[Job, str | None]:
    """One page of jobs (without request and result) and their plan ids, newest first.

    Jobs created in the same instant are ordered by id, so that offset pages neither repeat
    nor skip one; the listing indexes end with the id, so the page is read in index order.
    """
    return (
        select(Job, Job.result["plan_id"].as_string())
        .options(defer(Job.payload), defer(Job.result))
        .where(*where)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .offset(offset)
        .limit(limit)
    )


#: the query parameters of ``GET /v1/jobs``
_LIST_PARAMS = frozenset({"status", "kind", "limit", "offset"})


@router.get("", response_model=JobsPublic, summary="List jobs, newest first")
def list_jobs(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    ctx: CtxDep,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JobsPublic:
    """Jobs the caller submitted (every job for admin keys), without their results.

    Neither the count nor the page reads a job's request or result (a one-order allocation's
    row keeps its ~38 KB request): only the plan id, for the link.
    """
    unknown = sorted(set(request.query_params) - _LIST_PARAMS)
    if unknown:  # a typo (staus=failed) listed every job, as if it filtered them
        raise InputError(
            f"query.{unknown[0]}",
            f"unknown parameter; one of {', '.join(sorted(_LIST_PARAMS))}",
        )
    if kind is not None and kind not in ctx.registry:  # a typo listed nothing, as if no jobs
        known = ", ".join(sorted(ctx.registry.specs))
        raise InputError("query.kind", f"unknown job kind {kind!r}; one of {known}")
    settled(ctx)
    where: list[ColumnElement[bool]] = []
    if principal.key_id is not None and principal.role != "admin":
        where.append(Job.key_id == principal.key_id)
    if status is not None:
        where.append(Job.status == status)
    if kind is not None:
        where.append(Job.kind == kind)
    count = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    page = session.execute(page_query(where, offset=offset, limit=limit))
    data = [job_public(job, with_result=False, plan_id=plan) for job, plan in page]
    return JobsPublic(data=data, count=int(count))


@router.get("/{job_id}", response_model=JobPublic, summary="Status and result of a job")
def get_job(job_id: str, session: SessionDep, principal: PrincipalDep, ctx: CtxDep) -> JobPublic:
    """One job with its events and, once done, its result."""
    return job_public(load_job(session, job_id, principal, ctx))


@router.delete(
    "/{job_id}",
    response_model=JobPublic,
    summary="Cancel a job",
    responses={409: {"description": "the job had already finished"}},
)
def cancel_job(job_id: str, session: SessionDep, principal: PrincipalDep, ctx: CtxDep) -> JobPublic:
    """Cancel a queued job at once, or stop a running one (it ends as ``cancelled``)."""
    job = load_job(session, job_id, principal, ctx)
    if job.status == "cancelled":
        return job_public(job)
    if job.status in {"done", "failed"}:
        raise HTTPException(409, f"job {job_id} already finished ({job.status})")
    if job.mode == "sync":
        raise HTTPException(409, "a synchronous solve cannot be cancelled")
    assert ctx.jobs is not None
    return job_public(ctx.jobs.cancel(session, job))
