"""``/v1/jobs``: follow, list and cancel jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import func, select

from api.context import ServiceContext
from api.core.errors import ERROR_RESPONSES
from api.db.models import Job
from api.deps import CtxDep, Principal, PrincipalDep, SessionDep
from api.schemas.common import JobPublic, JobsPublic, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


def job_public(job: Job, *, with_result: bool = True) -> JobPublic:
    """The public view of a job row."""
    public = JobPublic.model_validate(job)
    if not with_result:
        public.result = None
    public.links = {"self": f"/v1/jobs/{job.id}"}
    plan_id = (job.result or {}).get("plan_id") if job.result else None
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


@router.get("", response_model=JobsPublic, summary="List jobs, newest first")
def list_jobs(
    session: SessionDep,
    principal: PrincipalDep,
    ctx: CtxDep,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JobsPublic:
    """Jobs the caller submitted (every job for admin keys), without their results."""
    settled(ctx)
    query = select(Job)
    if principal.key_id is not None and principal.role != "admin":
        query = query.where(Job.key_id == principal.key_id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.created_at.desc()).offset(offset).limit(limit))
    return JobsPublic(data=[job_public(j, with_result=False) for j in rows], count=int(count))


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
