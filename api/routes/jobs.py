"""``/v1/jobs``: follow, list and cancel jobs."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from typing import Annotated, get_args

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import defer
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from api.context import ServiceContext
from api.core.errors import ERROR_RESPONSES, shown_id
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
    if job.status != "running":  # what it was doing: it has ended, or not started
        fields["progress_detail"] = None
    if with_result:
        fields["result"] = job.result
        plan_id = (job.result or {}).get("plan_id") if job.result else None
    public = JobPublic.model_validate(fields)
    public.links = {"self": f"/v1/jobs/{job.id}"}
    if plan_id:
        public.links["plan"] = f"/v1/plans/{plan_id}"
    if job.kind == "whatif" and job.status == "done":
        public.links["report"] = f"/v1/whatif/{job.id}/report"
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
        raise HTTPException(404, f"no job {shown_id(job_id)!r}")
    return job


#: why a ``cursor`` was refused
BAD_CURSOR = "not a cursor of this listing; pass next_cursor as it was given"


def encode_cursor(job: Job, filters: str) -> str:
    """The cursor of the page after ``job``: its creation time and id, and the listing's
    ``filters`` (:func:`filters_tag`) it was made for (opaque to clients)."""
    raw = f"{job.created_at.astimezone(dt.UTC).isoformat()} {job.id} {filters}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, filters: str) -> tuple[dt.datetime, str]:
    """The creation time (in UTC) and id a cursor names (InputError on ``query.cursor`` if
    none, or if it was made for a listing of other ``filters``, :func:`filters_tag`). A time
    with an offset that puts it outside the years 1 to 9999 in UTC (``0001-01-01
    T00:00:00+14:00``, no cursor of the service's) is none: its conversion failed in the
    database driver, a 500. A cursor made before session 80 names no filters: it is taken
    for any (a walk begun before the upgrade goes on)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, job_id, *made_for = raw.split(" ")
        created_at = dt.datetime.fromisoformat(at)
        if created_at.tzinfo is None or not job_id or len(made_for) > 1:
            raise ValueError(BAD_CURSOR)
        created_at = created_at.astimezone(dt.UTC)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise InputError("query.cursor", BAD_CURSOR) from None
    if made_for and made_for[0] != filters:
        raise InputError("query.cursor", OTHER_FILTERS)
    return created_at, job_id


#: why a cursor made for a listing of other filters is refused (it was taken silently: a
#: ``status=failed`` walk went on with a cursor of the unfiltered listing, or the reverse)
OTHER_FILTERS = (
    "this cursor belongs to a listing with other filters (status, kind): pass it with the "
    "filters of the page that gave it, or list from the first page without a cursor"
)


def filters_tag(statuses: Sequence[str], kind: str | None) -> str:
    """What a cursor carries of the listing's filters: a digest of its statuses (as a set;
    all of them is no filter) and its kind, so that a cursor is taken only by the listing
    it was made for."""
    wanted = sorted(set(statuses)) if set(statuses) != set(_STATUSES) else []
    text = f"{','.join(wanted)}|{kind or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:_FILTERS_TAG_CHARS]


#: the characters of a cursor's filters digest (a cursor is at most 200 characters)
_FILTERS_TAG_CHARS = 16


class plan_id_of(FunctionElement[str]):  # noqa: N801 (an SQL function's name)
    """The ``plan_id`` of a job's stored result, as text (NULL when it has none)."""

    type = String()
    inherit_cache = True
    name = "plan_id_of"


@compiles(plan_id_of)
def _plan_id_of(element: plan_id_of, compiler: SQLCompiler, **kw: object) -> str:
    """The plan id read by the dialect's JSON operator (PostgreSQL: ``->>``)."""
    (result,) = element.clauses
    return compiler.process(result["plan_id"].as_string(), **kw)


@compiles(plan_id_of, "sqlite")
def _plan_id_of_sqlite(element: plan_id_of, compiler: SQLCompiler, **kw: object) -> str:
    """SQLite keeps NaN and infinities in a result (``api.db.session.json_dumps``), which its
    JSON functions (before 3.42) refuse as malformed: one such row made every listing that
    reached it a 500. Such a result gives no plan id (the link is left out)."""
    (result,) = element.clauses
    extract = compiler.process(result["plan_id"].as_string(), **kw)
    valid = compiler.process(func.json_valid(result), **kw)
    return f"CASE WHEN {valid} THEN {extract} END"


def page_query(
    where: Sequence[ColumnElement[bool]],
    *,
    offset: int,
    limit: int,
    after: tuple[dt.datetime, str] | None = None,
) -> Select[Job, str | None]:
    """One page of jobs (without request and result) and their plan ids, newest first.

    Jobs created in the same instant are ordered by id, so that offset pages neither repeat
    nor skip one; the listing indexes end with the id, so the page is read in index order.
    ``after``: only jobs listed after the one created then with that id (a cursor's), so
    that pages neither repeat nor skip one while jobs are added.
    """
    if after is not None:
        created_at, job_id = after
        where = [
            *where,
            or_(
                Job.created_at < created_at,
                and_(Job.created_at == created_at, Job.id < job_id),
            ),
        ]
    return (
        select(Job, plan_id_of(Job.result))
        .options(defer(Job.payload), defer(Job.result))
        .where(*where)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .offset(offset)
        .limit(limit)
    )


#: the query parameters of ``GET /v1/jobs``
#: a whole number of the listing's query (``limit``, ``offset``): ASCII digits only
_DIGITS = re.compile(r"[0-9]+")
#: why another one is refused (pydantic's words for ``limit=abc``)
NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"
_LIST_PARAMS = frozenset({"status", "kind", "limit", "offset", "cursor"})
#: the query parameters that may be given more than once (their values are or-ed)
_REPEATABLE_PARAMS = frozenset({"status"})
#: the job statuses, in their order of a job's life
_STATUSES: tuple[str, ...] = get_args(JobStatus)
#: the most values one ``status`` filter may have (each a status, so more repeat one)
_MAX_STATUS_VALUES = 20


def parse_statuses(given: Sequence[str]) -> list[str]:
    """The statuses a ``status`` filter names, each value one status or a comma-separated list.

    Raises InputError on ``query.status`` for an unknown or empty one; repeats count once.
    """
    if len(given) > _MAX_STATUS_VALUES:
        raise InputError("query.status", f"given {len(given)} times; at most {_MAX_STATUS_VALUES}")
    wanted: list[str] = []
    for value in given:
        for name in value.split(","):
            status = name.strip()
            if status not in _STATUSES:
                shown = repr(status if len(status) <= 40 else status[:40] + "...")
                raise InputError(
                    "query.status", f"unknown status {shown}; one of {', '.join(_STATUSES)}"
                )
            if status not in wanted:
                wanted.append(status)
    return wanted


@router.get("", response_model=JobsPublic, summary="List jobs, newest first")
def list_jobs(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    ctx: CtxDep,
    status: Annotated[
        list[str] | None,
        Query(
            description="only jobs in one of these statuses (queued, running, done, failed, "
            "cancelled): repeat it (`status=queued&status=running`) or list them "
            "comma-separated (`status=queued,running`)",
        ),
    ] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobsPublic:
    """Jobs the caller submitted (every job for admin keys), without their results.

    ``offset`` pages shift as jobs are added (a job is listed again on the next page); the
    ``next_cursor`` of a page, passed as ``cursor``, gives the jobs listed after its last
    one, however many were added since (``count`` is of every job the filters match); a
    cursor is taken only with the filters of the page that gave it (a 422 otherwise).
    ``status`` may name several statuses (repeated, or comma-separated): a job in any of them
    is listed.

    Neither the count nor the page reads a job's request or result (a one-order allocation's
    row keeps its ~38 KB request): only the plan id, for the link.
    """
    unknown = sorted(set(request.query_params) - _LIST_PARAMS)
    if unknown:  # a typo (staus=failed) listed every job, as if it filtered them
        raise InputError(
            f"query.{unknown[0]}",
            f"unknown parameter; one of {', '.join(sorted(_LIST_PARAMS))}",
        )
    # the last value was taken without a word (kind=routes&kind=plans listed the plans
    # alone); status alone is repeatable: its values are or-ed
    for name in sorted(_LIST_PARAMS - _REPEATABLE_PARAMS):
        given = request.query_params.getlist(name)
        if len(set(given)) > 1:
            shown = ", ".join(repr(v if len(v) <= 40 else v[:40] + "...") for v in given)
            raise InputError(
                f"query.{name}",
                f"given more than once, with different values ({shown}); give it once",
            )
    for name in ("limit", "offset"):
        for value in request.query_params.getlist(name):
            # pydantic reads a query string as Python's int() does: "1_0" as 10, "+1" and
            # " 1" as 1; digits alone are a number here, as in a JSON body
            if not _DIGITS.fullmatch(value):
                raise InputError(f"query.{name}", NOT_AN_INTEGER)
    statuses = parse_statuses(status) if status is not None else []
    if kind is not None and kind not in ctx.registry:  # a typo listed nothing, as if no jobs
        known = ", ".join(sorted(ctx.registry.specs))
        raise InputError("query.kind", f"unknown job kind {kind!r}; one of {known}")
    filters = filters_tag(statuses, kind)
    after = decode_cursor(cursor, filters) if cursor is not None else None
    settled(ctx)
    where: list[ColumnElement[bool]] = []
    if principal.account is not None and principal.role != "admin":
        where.append(Job.key_id == principal.account)
    if len(statuses) == 1:  # read in the order of the status index
        where.append(Job.status == statuses[0])
    elif statuses:
        where.append(Job.status.in_(statuses))
    if kind is not None:
        where.append(Job.kind == kind)
    count = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    page = session.execute(page_query(where, offset=offset, limit=limit, after=after)).all()
    data = [job_public(job, with_result=False, plan_id=plan) for job, plan in page]
    next_cursor = encode_cursor(page[-1][0], filters) if len(page) == limit else None
    return JobsPublic(data=data, count=int(count), next_cursor=next_cursor)


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
        raise HTTPException(409, f"job {shown_id(job_id)} already finished ({job.status})")
    if job.mode == "sync":
        raise HTTPException(409, "a synchronous solve cannot be cancelled")
    assert ctx.jobs is not None
    job = ctx.jobs.cancel(session, job)
    if job.status in {"done", "failed"}:  # it ended since it was read: nothing was cancelled
        raise HTTPException(409, f"job {shown_id(job_id)} already finished ({job.status})")
    return job_public(job)
