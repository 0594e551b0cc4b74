"""How endpoints run work: synchronously with a deadline and a fallback, or as a queued job.

This is the only place that decides between the solver, the fallback and the circuit
breaker, so every endpoint behaves the same way: a solver that crashes or overruns yields
the fallback answer (flagged ``fallback: true`` and counted in ``/metrics``); after
repeated failures the breaker serves the fallback directly until a probe succeeds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import idempotency
from api.context import Lane, ServiceContext
from api.db.models import Job
from api.deps import Principal
from api.jobs import QueueFull
from api.jobs.registry import JsonDict
from api.jobs.service import DONE, FAILED
from scenarios.errors import InputError, input_error_from_validation

log = logging.getLogger("api.solve")


class Busy(HTTPException):
    """429 with Retry-After: a bounded resource is full."""

    def __init__(self, what: str, retry_after_s: int) -> None:
        super().__init__(
            429, f"{what}; retry in {retry_after_s} s", {"Retry-After": str(retry_after_s)}
        )


T = TypeVar("T")


async def run_in_lane(ctx: ServiceContext, lane: Lane, work: Callable[[], T]) -> T:
    """Run blocking ``work`` in a worker thread once ``lane`` admits it (429: queue full)."""
    if lane.admit <= 0:
        return await run_in_threadpool(work)
    gate = lane.admission()
    if gate.locked() and lane.waiting >= lane.max_waiting:
        ctx.metrics.rejections.labels(f"busy_{lane.name}").inc()
        raise Busy(
            f"{lane.waiting} {lane.name} requests are already waiting", ctx.settings.retry_after_s
        )
    lane.waiting += 1
    try:
        await gate.acquire()
    finally:
        lane.waiting -= 1
    try:
        return await run_in_threadpool(work)
    finally:
        gate.release()


@dataclass(frozen=True)
class SolveOutcome:
    """The answer of a synchronous solve and how it was obtained."""

    result: JsonDict
    job_id: str
    fallback: bool = False
    fallback_reason: str | None = None


def input_hash(request: Request) -> str:
    """SHA-256 of the raw request body (computed by the middleware)."""
    return str(getattr(request.state, "input_hash", ""))


def note_audit(request: Request, **fields: Any) -> None:
    """Attach outcome details (result, solver, seed, job_id) to this request's audit row."""
    for name, value in fields.items():
        setattr(request.state, f"audit_{name}", value)


def solve_sync(
    ctx: ServiceContext,
    session: Session,
    request: Request,
    *,
    kind: str,
    payload: JsonDict,
    principal: Principal,
    seed: int | None,
    time_limit_s: float,
    lane: Lane,
    solver_input: BaseModel | None = None,
) -> SolveOutcome:
    """Run job ``kind`` now within ``time_limit_s`` (+ grace), falling back when it fails.

    ``solver_input``: the validated body the payload was dumped from, handed to the task
    instead of the payload (a task validating its payload then takes it as is).
    """
    assert ctx.jobs is not None and ctx.solver_pool is not None
    spec = ctx.registry.get(kind)
    solver = spec.solver or kind
    breaker = ctx.breaker(solver)
    if not lane.slots.acquire(blocking=False):
        ctx.metrics.rejections.labels(f"busy_{lane.name}").inc()
        raise Busy(f"all {lane.size} {lane.name} solver slots are busy", ctx.settings.retry_after_s)
    job = ctx.jobs.record_sync_start(
        session,
        kind=kind,
        payload=payload,
        key_id=principal.key_id,
        seed=seed,
        input_hash=input_hash(request),
    )
    note_audit(request, job_id=job.id, seed=seed)
    if not breaker.allow():
        lane.slots.release()
        return _fallback(ctx, session, job, kind, payload, "circuit_open", "circuit breaker open")
    try:
        task_input = payload if solver_input is None else solver_input
        future = ctx.solver_pool.submit(_call, spec.target, task_input)
    except RuntimeError:  # pool shut down
        lane.slots.release()
        raise HTTPException(503, "the service is shutting down") from None
    future.add_done_callback(lambda _f: lane.slots.release())
    try:
        result = future.result(timeout=time_limit_s + ctx.settings.fallback_grace_s)
    except FutureTimeout:
        breaker.record_failure()
        ctx.metrics.solver_failures.labels(solver, "timeout").inc()
        reason = f"no answer within {time_limit_s:g} s + {ctx.settings.fallback_grace_s:g} s"
        return _fallback(ctx, session, job, kind, payload, "timeout", reason)
    except InputError as err:
        breaker.release_probe()
        ctx.jobs.record_sync_end(session, job, status=FAILED, result=None, error=err.one_line())
        raise
    except ValidationError as err:
        breaker.release_probe()
        problem = input_error_from_validation(err)
        ctx.jobs.record_sync_end(session, job, status=FAILED, result=None, error=problem.one_line())
        raise problem from None
    except Exception as err:
        breaker.record_failure()
        ctx.metrics.solver_failures.labels(solver, "crash").inc()
        log.exception("solver %s crashed on job %s", solver, job.id)
        reason = f"solver error: {type(err).__name__}: {err}"[:500]
        return _fallback(ctx, session, job, kind, payload, "crash", reason)
    breaker.record_success()
    ctx.jobs.record_sync_end(session, job, status=DONE, result=result)
    return SolveOutcome(result=result, job_id=job.id)


def _call(target: str, payload: JsonDict | BaseModel) -> JsonDict:
    from api.jobs.registry import import_target

    result: JsonDict = import_target(target)(payload, progress=None)
    return result


def _fallback(
    ctx: ServiceContext,
    session: Session,
    job: Job,
    kind: str,
    payload: JsonDict,
    label: str,
    reason: str,
) -> SolveOutcome:
    assert ctx.jobs is not None
    fallback = ctx.registry.get(kind).fallback_function()
    if fallback is None:
        ctx.jobs.record_sync_end(session, job, status=FAILED, result=None, error=reason)
        raise HTTPException(503, f"solver unavailable ({reason}) and no fallback for {kind}")
    try:
        result = fallback(payload, reason=reason)
    except InputError:
        ctx.jobs.record_sync_end(session, job, status=FAILED, result=None, error=reason)
        raise
    except Exception as err:
        log.exception("fallback for %s failed", kind)
        ctx.jobs.record_sync_end(session, job, status=FAILED, result=None, error=str(err))
        raise HTTPException(503, f"solver and fallback both failed ({reason})") from None
    ctx.metrics.fallbacks.labels(kind, label).inc()
    note = f"answered with the fallback ({reason})"
    ctx.jobs.record_sync_end(
        session, job, status=DONE, result=result, error=reason, fallback=True, note=note
    )
    return SolveOutcome(result=result, job_id=job.id, fallback=True, fallback_reason=reason)


def submit_job(
    ctx: ServiceContext,
    session: Session,
    request: Request,
    *,
    kind: str,
    payload: JsonDict,
    principal: Principal,
    seed: int | None,
    timeout_s: float | None = None,
) -> Job:
    """Queue job ``kind`` (429 with Retry-After when the queue is full)."""
    assert ctx.jobs is not None
    try:
        job = ctx.jobs.submit(
            session,
            kind=kind,
            payload=payload,
            key_id=principal.key_id,
            seed=seed,
            input_hash=input_hash(request),
            timeout_s=timeout_s or ctx.settings.job_timeout_s,
        )
    except QueueFull:
        ctx.metrics.rejections.labels("queue_full").inc()
        raise Busy(
            f"the job queue is full ({ctx.settings.max_queued_jobs} jobs waiting)",
            ctx.settings.retry_after_s,
        ) from None
    note_audit(request, job_id=job.id, seed=seed, result="queued")
    return job


Compute = Callable[[], tuple[int, BaseModel, str | None]]


def respond(
    ctx: ServiceContext,
    session: Session,
    request: Request,
    *,
    principal: Principal,
    idem_key: str | None,
    compute: Compute,
) -> Response:
    """Run ``compute`` -> (status, body, Location) once per ``Idempotency-Key`` and answer.

    The body is serialised by pydantic straight to JSON text (no ``jsonable_encoder`` walk;
    a NaN becomes ``null`` rather than an error).
    """
    slot: idempotency.Slot | None = None
    if idem_key:
        claimed = idempotency.claim(
            session,
            key_id=principal.key_id,
            idem_key=idem_key,
            endpoint=f"{request.method} {request.url.path}",
            request_hash=input_hash(request),
            ttl_s=ctx.settings.idempotency_ttl_s,
            pending_stale_s=ctx.settings.max_sync_time_limit_s
            + ctx.settings.fallback_grace_s
            + 60.0,
        )
        if isinstance(claimed, JSONResponse):
            note_audit(request, result="idempotent_replay")
            return claimed
        slot = claimed
    try:
        status, body, location = compute()
    except BaseException:
        if slot is not None:
            idempotency.abandon(session, slot)
        raise
    text = body.model_dump_json(by_alias=True)
    if slot is not None:  # stored as sent, so a replay is the same JSON
        content = json.loads(text)
        idempotency.finish(session, slot, status_code=status, body=content, location=location)
    headers = {"Location": location} if location else None
    return Response(
        content=text,
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def accepted(job: Job) -> tuple[int, BaseModel, str | None]:
    """The 202 answer for a queued job, with its Location."""
    from api.schemas.common import JobAccepted

    link = f"/v1/jobs/{job.id}"
    return 202, JobAccepted(job_id=job.id, status="queued", links={"self": link}), link
