"""How endpoints run work: synchronously with a deadline and a fallback, or as a queued job.

This is the only place that decides between the solver, the fallback and the circuit
breaker, so every endpoint behaves the same way: a solver that crashes or overruns yields
the fallback answer (flagged ``fallback: true`` and counted in ``/metrics``); after
repeated failures the breaker serves the fallback directly until a probe succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import idempotency
from api.context import Lane, ServiceContext
from api.core.errors import (
    ARRIVED_AT,
    JOB_BEING_CONFIRMED,
    JOB_BEING_QUEUED,
    JOB_BEING_STARTED,
    REQUEST_CUT,
    RequestCut,
    shutting_down,
)
from api.db.models import Job, utcnow
from api.db.session import RawJson
from api.deps import Principal
from api.jobs import QueueFull
from api.jobs.registry import JsonDict
from api.jobs.service import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    SYNC_AT_STOP,
    WITHDRAWN_AT_CUT,
    ProcessDying,
    SubmitWithdrawn,
    SyncOutcome,
    new_id,
)
from scenarios.errors import InputError, input_error_from_validation
from solvers.cancel import cancelling

log = logging.getLogger("api.solve")


class Busy(HTTPException):
    """429 with Retry-After: a bounded resource is full."""

    def __init__(self, what: str, retry_after_s: int) -> None:
        super().__init__(
            429, f"{what}; retry in {retry_after_s} s", {"Retry-After": str(retry_after_s)}
        )


T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@contextlib.asynccontextmanager
async def admitted(ctx: ServiceContext, lane: Lane) -> AsyncIterator[None]:
    """Hold one of ``lane``'s admissions, waiting in arrival order (429: queue full)."""
    if lane.admit <= 0:
        yield
        return
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
        yield
    finally:
        gate.release()


async def run_in_lane(ctx: ServiceContext, lane: Lane, work: Callable[[], T]) -> T:
    """Run blocking ``work`` in a worker thread once ``lane`` admits it (429: queue full)."""
    async with admitted(ctx, lane):
        return await run_in_threadpool(work)


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


async def body_as_sent(request: Request) -> RawJson | None:
    """The request's JSON body as the client sent it, for a job row's payload.

    Only for a body that has already validated: a job keeps the request as asked, a quarter
    of the size of the validated model with every default written out, and not serialised
    again. None for a body that is not UTF-8 (the middleware refuses JSON in UTF-16 or
    UTF-32, and drops a UTF-8 byte-order mark, so this is only a guard): the job then keeps
    the validated model.
    """
    try:
        return RawJson((await request.body()).decode())
    except UnicodeDecodeError:
        return None


#: seconds kept back from a synchronous solve's time limit for the work after its solver
#: returns (the answer's explanation, its JSON, the job row's end): a fixed part and a part
#: per order, measured on a 1,000-order routing answer (docs/api.md, "Time limits")
ANSWER_RESERVE_S = 0.02
ANSWER_RESERVE_PER_ORDER_S = 0.00005
#: the least time limit a synchronous solve's solver is given, however late it starts: its
#: own floor and fast path (the greedy plan, the nearest-node rule) answer within it
MIN_SOLVER_TIME_LIMIT_S = 0.01

#: the clock of :func:`solver_time_limit` (the middleware's, which notes a request's arrival)
clock: Callable[[], float] = time.perf_counter

#: the solver's input for a synchronous solve, given the time limit it has left
WithLimit = Callable[[float], BaseModel | JsonDict]


def answer_reserve_s(num_orders: int) -> float:
    """Seconds kept back from a synchronous solve's time limit for writing its answer."""
    return ANSWER_RESERVE_S + ANSWER_RESERVE_PER_ORDER_S * max(num_orders, 0)


def solver_time_limit(request: Request, time_limit_s: float, num_orders: int) -> float:
    """The solver's time limit for a synchronous answer within ``time_limit_s`` of arrival.

    What is left of ``time_limit_s`` after the time since the request arrived (its body read
    and validated, its wait for a lane, its job row) and the answer's reserve
    (:func:`answer_reserve_s`), and at least :data:`MIN_SOLVER_TIME_LIMIT_S`. A request the
    middleware did not time (no arrival noted) counts from now.
    """
    arrived = getattr(request.state, ARRIVED_AT, None)
    spent_s = 0.0 if arrived is None else max(clock() - float(arrived), 0.0)
    left_s = time_limit_s - spent_s - answer_reserve_s(num_orders)
    return max(min(left_s, time_limit_s), min(MIN_SOLVER_TIME_LIMIT_S, time_limit_s))


def limit_share(asked_s: float, left_s: float) -> float:
    """The factor (at most 1) that scales stage time limits asked to sum to ``asked_s`` so
    that they sum to ``left_s``: each stage keeps its share."""
    return min(left_s / asked_s, 1.0) if asked_s > 0 else 1.0


def with_time_limit(body: M, time_limit_s: float) -> M:
    """``body`` (a request with ``params.time_limit_s``) with its solver's time limit."""
    params = cast(BaseModel, getattr(body, "params"))  # noqa: B009 (any request model)
    return body.model_copy(
        update={"params": params.model_copy(update={"time_limit_s": time_limit_s})}
    )


def note_audit(request: Request, **fields: Any) -> None:
    """Attach outcome details (result, solver, seed, job_id) to this request's audit row.

    ``job_status``: its job's state as this request last knew it (running, queueing, queued,
    done, failed), which the answer of a request the server's shutdown cuts tells (not
    audited).
    """
    for name, value in fields.items():
        setattr(request.state, f"audit_{name}", value)


@dataclass
class _Attempt:
    """One synchronous solve between its start and its stored outcome.

    With a ``session`` the job row is written when the solve starts (so a crash leaves a
    failed job) and updated at the end; without one (the fast lane, answers in
    milliseconds) the finished row is written behind the answer by the job service.
    """

    ctx: ServiceContext
    kind: str
    payload: JsonDict | BaseModel
    principal: Principal
    seed: int | None
    input_hash: str
    job_id: str
    started_at: dt.datetime
    session: Session | None = None
    job: Job | None = None
    stored: RawJson | None = None  # the job row's payload, when not ``payload`` itself
    request: Request | None = None  # its request, for the audit's note of a stop's 503
    #: the time limit its request asked, which its answer states, when its solver was given
    #: what was left of it (:func:`solver_time_limit`)
    asked_limit_s: float | None = None
    #: the fast lane's end, once stored: the first one stored is the job's (its request's
    #: cut by the server, :func:`_cut`, or its fallback's thread, whichever comes first)
    ended: SyncOutcome | None = None
    _ending: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self,
        status: str,
        result: JsonDict | None,
        *,
        error: str | None = None,
        fallback: bool = False,
        note: str | None = None,
    ) -> None:
        """Store the outcome as the job's final state.

        A job row that ended meanwhile (failed by the service's stop, or by a recovery) is
        left as it is, and the request gets the 503 of that end (:func:`_ended_meanwhile`),
        not an answer its job contradicts. A request the server's shutdown cut before its
        outcome was stored (its 503 said marked failed, send it again: the stop's failure
        comes milliseconds later) stores that failure, not a ``done`` nobody received; the
        cut waits for an outcome being stored (:class:`~api.core.errors.RequestCut`). Once
        the process is about to die by a signal nothing is stored (:func:`_dying`).
        """
        jobs = self.ctx.jobs
        assert jobs is not None
        outcome = SyncOutcome(status, result, error=error, fallback=fallback, note=note)
        try:
            if self.job is not None and self.session is not None:
                with _deciding(self.request) as already_cut:
                    if already_cut and outcome.status == DONE:
                        outcome = SyncOutcome(FAILED, None, error=SYNC_AT_STOP, note=SYNC_AT_STOP)
                    if not jobs.record_sync_end(self.session, self.job, outcome):
                        raise _ended_meanwhile(self)
                    self._noted(outcome)
                if already_cut:  # answered by the cut's 503 (nobody hears this one)
                    raise _shutting_down(self, self.job_id)
                return
            if self.end_once(outcome) is not outcome:
                raise _ended_meanwhile(self)
        except ProcessDying:  # nobody hears the answer: stored, it would be nobody's
            raise _dying(self) from None

    def end_once(self, outcome: SyncOutcome) -> SyncOutcome:
        """The fast lane: store ``outcome`` unless an end was stored first; the end stored.

        Its job row is written behind the answer (one insert): a second end (the fallback's
        thread finishing after the server cut the request, see :func:`_cut`) is not stored.
        """
        jobs = self.ctx.jobs
        assert jobs is not None
        with self._ending:
            if self.ended is None:
                jobs.record_sync(
                    job_id=self.job_id,
                    kind=self.kind,
                    payload=self.payload if self.stored is None else self.stored,
                    key_id=self.principal.account,
                    seed=self.seed,
                    input_hash=self.input_hash,
                    started_at=self.started_at,
                    outcome=outcome,
                )
                self.ended = outcome
                self._noted(outcome)
            return self.ended

    def _noted(self, outcome: SyncOutcome) -> None:
        """Note the job's stored end in its request's state (for the answer of a cut)."""
        if self.request is not None:
            note_audit(self.request, job_status=outcome.status)


def _deciding(request: Request | None) -> contextlib.AbstractContextManager[bool]:
    """:meth:`RequestCut.deciding` of ``request``'s cut (no cut: never cut)."""
    cut = None if request is None else getattr(request.state, REQUEST_CUT, None)
    return cut.deciding() if isinstance(cut, RequestCut) else contextlib.nullcontext(False)


def _begin(
    ctx: ServiceContext,
    session: Session | None,
    request: Request,
    *,
    kind: str,
    payload: JsonDict | BaseModel,
    principal: Principal,
    seed: int | None,
    lane: Lane,
    stored: RawJson | None = None,
    job_id: str | None = None,
) -> _Attempt:
    """Take a solver slot of ``lane`` (429 when none is free) and start the job's record
    (``job_id``: its id, if chosen before; else a new one).

    With a ``session``, the job's first (running) row is written in
    :meth:`~api.core.errors.RequestCut.deciding`, as an outcome is stored: a request the
    server's shutdown cut before writes none (its 503 said send it again, naming no job);
    a cut that reaches the write waits for it (up to
    :data:`~api.core.errors.CUT_WAIT_S`) and names the job, marked failed; past that wait
    its 503 said the solve will not run: the row is rolled back before its commit, or
    failed at once after it, and the solve is not run.
    """
    assert ctx.jobs is not None and ctx.solver_pool is not None
    if not lane.slots.acquire(blocking=False):
        ctx.metrics.rejections.labels(f"busy_{lane.name}").inc()
        raise Busy(f"all {lane.size} {lane.name} solver slots are busy", ctx.settings.retry_after_s)
    attempt = _Attempt(
        ctx,
        kind,
        payload,
        principal,
        seed,
        input_hash(request),
        job_id=job_id or new_id(),
        started_at=utcnow(),
        session=session,
        stored=stored,
        request=request,
    )
    if session is not None:
        try:
            _start_record(attempt, session)
        except BaseException:
            lane.slots.release()
            raise
    note_audit(request, job_id=attempt.job_id, seed=seed, job_status=RUNNING)
    return attempt


def _start_record(attempt: _Attempt, session: Session) -> None:
    """Write the running row of a synchronous solve, against its request's cut (see
    :func:`_begin`); raises the 503 of a request the cut answered first."""
    ctx, request = attempt.ctx, attempt.request
    assert ctx.jobs is not None and request is not None
    cut = getattr(request.state, REQUEST_CUT, None)
    payload = attempt.payload if attempt.stored is None else attempt.stored
    with _deciding(request) as already_cut:
        if already_cut:  # answered 503 (send it again, no job) by the middleware
            raise _shutting_down(attempt, None)
        note_audit(request, job_id=attempt.job_id, job_status=JOB_BEING_STARTED)
        try:
            attempt.job = ctx.jobs.record_sync_start(
                session,
                kind=attempt.kind,
                payload=cast(JsonDict, payload),
                key_id=attempt.principal.account,
                seed=attempt.seed,
                input_hash=attempt.input_hash,
                job_id=attempt.job_id,
                withdrawn=lambda: isinstance(cut, RequestCut) and cut.unconfirmed,
            )
        except SubmitWithdrawn:
            pass  # not written (rolled back), as the cut's 503 said
        except ProcessDying:  # not written: the solve would answer nobody
            note_audit(request, job_id=None, job_status=None)  # no job
            raise _dying(attempt) from None
        except BaseException:
            note_audit(request, job_id=None, job_status=None)  # no job
            raise
        else:
            note_audit(request, job_status=RUNNING)  # the cut's 503: marked failed
    if isinstance(cut, RequestCut) and cut.unconfirmed:
        # the cut stopped waiting for the write: its 503 (sent) said the solve will not run;
        # a row written meanwhile is failed at once (else the service's stop fails it)
        if attempt.job is not None:
            stop = SyncOutcome(FAILED, None, error=SYNC_AT_STOP, note=SYNC_AT_STOP)
            try:
                ctx.jobs.record_sync_end(session, attempt.job, stop)
            except ProcessDying:
                pass  # left running: crash recovery fails it
            except Exception:
                log.exception(
                    "synchronous job %s could not be failed (its request's 503 said it "
                    "will not run): the service's stop fails it",
                    attempt.job_id,
                )
        note_audit(request, result="shutting_down")
        message, headers = shutting_down(
            attempt.job_id, ctx.settings.retry_after_s, JOB_BEING_STARTED, unconfirmed=True
        )
        raise HTTPException(503, message, headers)  # nobody waits


def _submit(
    attempt: _Attempt,
    lane: Lane,
    solver_input: BaseModel | JsonDict | None,
    *,
    inline: bool = False,
) -> Future[JsonDict] | None:
    """Hand the solve to the solver pool, or None when the circuit breaker is open.

    ``inline``: run it on the event loop instead (:class:`~api.loop_runner.LoopRunner`, for
    solves that take less CPU than the hand-over to a pool thread and back), if the kind's
    task is ``bounded``; other tasks go to the pool, where an overrun can be answered by the
    fallback.
    """
    ctx = attempt.ctx
    assert ctx.solver_pool is not None
    spec = ctx.registry.get(attempt.kind)
    if not ctx.breaker(spec.solver or attempt.kind).allow():
        lane.slots.release()
        return None
    task_input = attempt.payload if solver_input is None else solver_input
    try:
        if inline and spec.bounded:
            future = ctx.loop_runner.submit(functools.partial(_call, spec.target, task_input))
        else:
            future = ctx.solver_pool.submit(_call, spec.target, task_input, ctx.stopping)
    except RuntimeError:  # pool shut down
        lane.slots.release()
        if attempt.job is None:  # no row written (the fast lane's is written at the end)
            raise _shutting_down(attempt, None) from None
        # its row is written: not left running, as after a crash
        raise _stopped(attempt) from None
    future.add_done_callback(lambda _f: lane.slots.release())
    return future


def _settle(
    attempt: _Attempt, future: Future[JsonDict] | None, time_limit_s: float, *, wait: bool = True
) -> SolveOutcome:
    """The solver's answer (waited for up to the limit + grace), else the fallback; recorded."""
    ctx = attempt.ctx
    grace_s = ctx.settings.fallback_grace_s
    solver = ctx.registry.get(attempt.kind).solver or attempt.kind
    breaker = ctx.breaker(solver)
    if future is None:
        return _fallback(attempt, "circuit_open", "circuit breaker open")
    try:
        result = _result(future, time_limit_s + grace_s if wait else 0.0, ctx.stopping)
    except ServiceStopping:
        future.cancel()  # still queued: it will not run
        breaker.release_probe()
        raise _stopped(attempt) from None
    except FutureTimeout:
        future.cancel()  # still queued: it will not run
        breaker.record_failure()
        ctx.metrics.solver_failures.labels(solver, "timeout").inc()
        reason = f"no answer within {time_limit_s:g} s + {grace_s:g} s"
        return _fallback(attempt, "timeout", reason)
    except InputError as err:
        breaker.release_probe()
        attempt.record(FAILED, None, error=err.one_line())
        raise
    except ValidationError as err:
        breaker.release_probe()
        problem = input_error_from_validation(err)
        attempt.record(FAILED, None, error=problem.one_line())
        raise problem from None
    except Exception as err:
        breaker.record_failure()
        ctx.metrics.solver_failures.labels(solver, "crash").inc()
        log.exception("solver %s crashed on job %s", solver, attempt.job_id)
        reason = f"solver error: {type(err).__name__}: {err}"[:500]
        return _fallback(attempt, "crash", reason)
    breaker.record_success()
    result = _stating_asked_limit(result, attempt.asked_limit_s)
    attempt.record(DONE, result)
    return SolveOutcome(result=result, job_id=attempt.job_id)


def _stating_asked_limit(result: JsonDict, asked_limit_s: float | None) -> JsonDict:
    """``result`` with ``solver.time_limit_s`` the limit its request asked (if given)."""
    solver = result.get("solver")
    if asked_limit_s is None or not isinstance(solver, dict) or "time_limit_s" not in solver:
        return result
    return {**result, "solver": {**solver, "time_limit_s": asked_limit_s}}


def _within_limit(
    attempt: _Attempt,
    request: Request,
    solver_input: BaseModel | None,
    time_limit_s: float,
    with_limit: WithLimit | None,
    num_orders: int,
) -> BaseModel | JsonDict | None:
    """The solver's input: given what is left of ``time_limit_s`` since the request arrived
    when ``with_limit`` is given (measured now, just before the solve), else as is."""
    if with_limit is None:
        return solver_input
    attempt.asked_limit_s = time_limit_s
    return with_limit(solver_time_limit(request, time_limit_s, num_orders))


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
    stored: RawJson | None = None,
    with_limit: WithLimit | None = None,
    num_orders: int = 0,
    solver_limit_s: float | None = None,
    job_id: str | None = None,
) -> SolveOutcome:
    """Run job ``kind`` now within ``time_limit_s`` (+ grace), falling back when it fails.

    The job row is stored when the solve starts, with ``stored`` (the body as sent, see
    :func:`body_as_sent`) or else ``payload`` as its payload. ``solver_input``: the validated
    body the payload was dumped from, handed to the task instead of the payload.
    ``with_limit``: the task's input given a time limit; the solver then has what is left
    of ``time_limit_s`` since the request arrived (:func:`solver_time_limit`, with the
    reserve of ``num_orders``), and the answer states ``time_limit_s``. ``solver_limit_s``:
    the time limit the solve asks, where it is not the wait's ``time_limit_s`` (a plan's
    allocation + routing, waited for with its twin evaluation's budget too): what is left of
    it is given through ``with_limit``, and the answer states it.
    """
    attempt = _begin(
        ctx,
        session,
        request,
        kind=kind,
        payload=payload,
        principal=principal,
        seed=seed,
        lane=lane,
        stored=stored,
        job_id=job_id,
    )
    asked_s = time_limit_s if solver_limit_s is None else solver_limit_s
    task_input = _within_limit(attempt, request, solver_input, asked_s, with_limit, num_orders)
    future = _submit(attempt, lane, task_input)
    return _settle(attempt, future, time_limit_s)


async def solve_fast(
    ctx: ServiceContext,
    request: Request,
    *,
    kind: str,
    body: BaseModel,
    principal: Principal,
    seed: int | None,
    time_limit_s: float,
    lane: Lane,
    inline: bool = False,
    with_limit: WithLimit | None = None,
    num_orders: int = 0,
) -> SolveOutcome:
    """:func:`solve_sync` for answers in milliseconds, awaited on the event loop.

    No worker thread besides the solver's and no database write before the answer: the
    finished job row is written behind it (``GET /v1/jobs/{id}`` waits for it), with the
    body as sent as its payload. The fallback, when needed, runs in a worker thread.
    ``inline``: the caller knows the solve is small and bounded (a one-order online
    allocation, about a millisecond): it runs on the event loop, since handing it to a
    pool thread and back costs more CPU than the solve under load. ``with_limit`` and
    ``num_orders``: as for :func:`solve_sync`.
    """
    attempt = _begin(
        ctx,
        None,
        request,
        kind=kind,
        payload=body,
        principal=principal,
        seed=seed,
        lane=lane,
        stored=await body_as_sent(request),
    )
    solver_input = _within_limit(attempt, request, body, time_limit_s, with_limit, num_orders)
    future = _submit(attempt, lane, solver_input, inline=inline)
    if future is not None and not future.done():
        waiter = asyncio.wrap_future(future)
        # a solve that overruns keeps its thread; its late answer or error is dropped here
        waiter.add_done_callback(lambda w: w.cancelled() or w.exception())
        try:
            await asyncio.wait({waiter}, timeout=time_limit_s + ctx.settings.fallback_grace_s)
        except asyncio.CancelledError:  # the server's shutdown cut the request (503)
            _cut(attempt)
            raise
    if future is not None and future.done() and future.exception() is None:
        return _settle(attempt, future, time_limit_s, wait=False)
    try:
        return await run_in_threadpool(
            functools.partial(_settle, attempt, future, time_limit_s, wait=False)
        )
    except asyncio.CancelledError:
        # the server's shutdown cut the request while the fallback ran in its thread, which
        # runs on: its job failed now, as the cut's 503 says (the fallback's answer, if it
        # comes before the stop, is not stored over it); unless the thread stored its end
        # first: then that answer is the request's
        answer = _cut(attempt)
        if answer is None:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # answered: the request ends normally
        return answer


def _cut(attempt: _Attempt) -> SolveOutcome | None:
    """A fast-lane request the server's shutdown cut: its job failed with the stop's reason
    (None: its request answered 503 by the middleware), unless its end was stored first:
    then the answer it stored, if done (None if it failed)."""
    stop = SyncOutcome(FAILED, None, error=SYNC_AT_STOP, note=SYNC_AT_STOP)
    try:
        end = attempt.end_once(stop)
    except ProcessDying:  # no row, as after a crash: nobody hears an answer any more
        return None
    if end is stop or end.status != DONE or end.result is None:
        return None
    reason = end.error if end.fallback else None
    return SolveOutcome(end.result, attempt.job_id, fallback=end.fallback, fallback_reason=reason)


class ServiceStopping(Exception):
    """The service stopped (:attr:`ServiceContext.stopping`) before the solve answered, or
    while it ran: its answer (if any) is what the cancellation left (see :func:`_call`)."""


def _shutting_down(attempt: _Attempt, job_id: str | None) -> HTTPException:
    """The 503 (``Retry-After``) of a request the service's stop cut short.

    Noted in the request's audit as ``shutting_down``, which the middleware counts (once a
    request, whichever path answered its 503: this one, or its own when the server cut the
    request) in ``dispatchlab_rejections_total{reason="shutting_down"}``.
    """
    if attempt.request is not None:
        note_audit(attempt.request, result="shutting_down")
    message, headers = shutting_down(job_id, attempt.ctx.settings.retry_after_s)
    return HTTPException(503, message, headers)


def _dying(attempt: _Attempt) -> HTTPException:
    """The 503 of a synchronous solve that ended once its process was about to die by a
    signal (:class:`~api.jobs.service.ProcessDying`), which no client receives.

    Its outcome is not stored: a row written at its start stays ``running`` and the next
    replica's recovery fails it (``stopped unexpectedly``), and the request's
    ``Idempotency-Key``, released on this error if the process lives long enough (else
    taken over once its claim is stale), gets a fresh solve when sent again.
    """
    log.warning("synchronous job %s: not stored, its process dies by a signal", attempt.job_id)
    return _shutting_down(attempt, None)


def _stopped(attempt: _Attempt) -> HTTPException:
    """Record the solve failed with the stop's reason; the 503 for its request."""
    attempt.record(FAILED, None, error=SYNC_AT_STOP)
    return _shutting_down(attempt, attempt.job_id)


def _ended_meanwhile(attempt: _Attempt) -> HTTPException:
    """The 503 of a synchronous solve whose job row ended before its outcome was stored:
    the stop's (its job failed by the service's stop), else one naming the job's end."""
    end = attempt.job if attempt.job is not None else attempt.ended
    assert end is not None
    if end.error == SYNC_AT_STOP:
        return _shutting_down(attempt, attempt.job_id)
    retry_after_s = attempt.ctx.settings.retry_after_s
    message = (
        f"this request's job {attempt.job_id} ended before its outcome was stored "
        f"({end.status}: {end.error}); send it again (in {retry_after_s} s)"
    )
    return HTTPException(503, message, {"Retry-After": str(retry_after_s)})


#: seconds between two looks at :attr:`ServiceContext.stopping` while a request waits for
#: its solve (the answer itself is not delayed: the wait ends as soon as it is there)
STOP_POLL_S = 0.25


def _result(future: Future[JsonDict], timeout_s: float, stopping: threading.Event) -> JsonDict:
    """``future.result(timeout_s)``, or :class:`ServiceStopping` once ``stopping`` is set."""
    end = time.monotonic() + timeout_s
    while True:
        left = end - time.monotonic()
        try:
            return future.result(timeout=max(min(left, STOP_POLL_S), 0.0))
        except FutureTimeout:
            if stopping.is_set():
                raise ServiceStopping from None
            if left <= STOP_POLL_S:
                raise


def _call(
    target: str, payload: JsonDict | BaseModel, stopping: threading.Event | None = None
) -> JsonDict:
    """Run task ``target`` on ``payload``; ``stopping`` set cancels its solves.

    A run that ends (with an answer or an error) once ``stopping`` is set raises
    :class:`ServiceStopping`: its answer is what the cancellation left, and its request
    ends as one the stop cut short (failed, 503), whether its answer came before the
    request's next look at the stop or after it. Bad input stays bad input.
    """
    from api.jobs.registry import import_target

    try:
        with cancelling(stopping):  # the solvers end promptly once it is set (solvers.cancel)
            result: JsonDict = import_target(target)(payload, progress=None)
    except (InputError, ValidationError):
        raise
    except Exception as err:
        if stopping is not None and stopping.is_set():
            raise ServiceStopping from err
        raise
    if stopping is not None and stopping.is_set():
        raise ServiceStopping
    return result


def _fallback(attempt: _Attempt, label: str, reason: str) -> SolveOutcome:
    ctx, kind, payload = attempt.ctx, attempt.kind, attempt.payload
    fallback = ctx.registry.get(kind).fallback_function()
    if fallback is None:
        attempt.record(FAILED, None, error=reason)
        raise HTTPException(503, f"solver unavailable ({reason}) and no fallback for {kind}")
    try:
        # its solves cancelled by the stop, as a pool solve's (see _call): a degraded plan's
        # evaluation does not hold the process's exit; its request ends as the stop's (503)
        with cancelling(ctx.stopping):
            result = fallback(payload, reason=reason)
    except InputError:
        attempt.record(FAILED, None, error=reason)
        raise
    except Exception as err:
        if ctx.stopping.is_set():
            raise _stopped(attempt) from None
        log.exception("fallback for %s failed", kind)
        attempt.record(FAILED, None, error=str(err))
        raise HTTPException(503, f"solver and fallback both failed ({reason})") from None
    if ctx.stopping.is_set():  # made (cut short) while the service stops: not an answer
        raise _stopped(attempt)
    note = f"answered with the fallback ({reason})"
    attempt.record(DONE, result, error=reason, fallback=True, note=note)
    ctx.metrics.fallbacks.labels(kind, label).inc()  # once the answer's job is stored
    return SolveOutcome(result=result, job_id=attempt.job_id, fallback=True, fallback_reason=reason)


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
    job_id: str | None = None,
) -> Job:
    """Queue job ``kind`` (429 with Retry-After when the queue is full); ``job_id``: its id,
    if chosen before.

    Not queued once the server's stop has cut the request (its 503, sent, said to send it
    again): the cut waits for a submit in progress, whose job its 503 then names queued; up
    to :data:`~api.core.errors.CUT_WAIT_S` (a hung database): then its 503 said the job
    will not run, and a submit that ends later does not queue it. The job is written held
    (``JobService.submit``: no dispatcher claims it) and let go (``JobService.confirm``)
    only if the cut had not said so by then: rolled back before its commit, or withdrawn
    (cancelled, never started) after it; one the server stops before letting go is
    cancelled by its stop, or by the next replica's recovery. A cut that stops waiting
    while it is let go points to it (:data:`~api.core.errors.JOB_BEING_CONFIRMED`).
    Nor is it queued once the process is about to die by a signal (:func:`_dying_submit`).
    """
    assert ctx.jobs is not None
    found = getattr(request.state, REQUEST_CUT, None)
    cut = found if isinstance(found, RequestCut) else None  # None: no server cuts it
    job_id = job_id or new_id()  # named by the cut's 503 should the commit not end in time
    job: Job | None = None
    let_go = False  # queued, for any dispatcher to claim
    with _deciding(request) as already_cut:
        if already_cut:  # answered 503 (send it again) by the middleware: nobody waits
            message, headers = shutting_down(None, ctx.settings.retry_after_s)
            raise HTTPException(503, message, headers)
        note_audit(request, job_id=job_id, seed=seed, job_status=JOB_BEING_QUEUED)
        try:
            job = ctx.jobs.submit(
                session,
                kind=kind,
                payload=payload,
                key_id=principal.account,
                seed=seed,
                input_hash=input_hash(request),
                timeout_s=timeout_s or ctx.settings.job_timeout_s,
                job_id=job_id,
                withdrawn=lambda: cut is not None and cut.unconfirmed,
                held=cut is not None,
            )
        except SubmitWithdrawn:
            pass  # not queued (rolled back), as the cut's 503 said
        except ProcessDying:  # not queued (rolled back): its 202 would reach nobody
            raise _dying_submit(ctx, request, job_id) from None
        except QueueFull:
            note_audit(request, job_id=None, job_status=None)
            ctx.metrics.rejections.labels("queue_full").inc()
            raise Busy(
                f"the job queue is full ({ctx.settings.max_queued_jobs} jobs waiting)",
                ctx.settings.retry_after_s,
            ) from None
        except BaseException:
            # no job; one whose failed commit landed all the same is held (never claimed),
            # cancelled by this replica's next recovery (not here: the database is failing)
            note_audit(request, job_id=None, job_status=None)
            raise
        if job is not None and cut is not None:
            # noted before the look at the cut: a cut that stops waiting from here on
            # points to the job (let go, or withdrawn), not "it will not run"
            note_audit(request, job_status=JOB_BEING_CONFIRMED)
            if not cut.unconfirmed:
                try:
                    let_go = ctx.jobs.confirm(session, job)
                except ProcessDying:  # held: the next replica's recovery cancels it
                    raise _dying_submit(ctx, request, job_id) from None
                except BaseException:  # held, as above
                    note_audit(request, job_id=None, job_status=None)
                    raise
                if not let_go:  # cancelled meanwhile (see JobService.confirm)
                    note_audit(request, job_status=job.status)
        else:
            let_go = job is not None
        if let_go:
            assert job is not None
            note_audit(request, job_id=job.id, result="queued", job_status=QUEUED)
    if job is not None and let_go:
        # answered 202, or, once the cut had waited for this submit, by its 503 naming the
        # job queued (or to follow, had it stopped waiting): kept for an Idempotency-Key
        return job
    if cut is not None and cut.unconfirmed:
        # the cut stopped waiting for this submit: its 503 (sent) said the job will not run
        # and to send the request again; one committed meanwhile (held) is cancelled
        if job is not None:
            _withdraw(ctx, session, job_id, WITHDRAWN_AT_CUT)
        message, headers = shutting_down(
            job_id, ctx.settings.retry_after_s, JOB_BEING_QUEUED, unconfirmed=True
        )
        raise HTTPException(503, message, headers)  # nobody waits (an Idempotency-Key freed)
    assert job is not None  # held, and cancelled before it was let go
    message = (
        f"its job {job_id} was cancelled before it was confirmed queued ({job.error}): it "
        "will not run; send the request again"
    )
    raise HTTPException(503, message, {"Retry-After": str(ctx.settings.retry_after_s)})


def _dying_submit(ctx: ServiceContext, request: Request, job_id: str) -> HTTPException:
    """The 503 (``Retry-After``, naming no job) of an async submit that reached its commit
    or its confirmation once its process was about to die by a signal
    (:class:`~api.jobs.service.ProcessDying`).

    Nobody receives it (the signal's handler holds the event loop until the process dies);
    it ends the request as an error, so that its ``Idempotency-Key`` is released (else taken
    over at once, its replica gone) and the retry queues the job on another replica. The job
    was not queued: rolled back, or, committed held, never let go (the next replica's
    recovery cancels it, :data:`~api.jobs.service.UNCONFIRMED_AT_STOP`).
    """
    log.warning("job %s: not queued, its process dies by a signal", job_id)
    note_audit(request, job_id=None, job_status=None, result="shutting_down")
    message, headers = shutting_down(None, ctx.settings.retry_after_s)
    return HTTPException(503, message, headers)


def _withdraw(ctx: ServiceContext, session: Session, job_id: str, reason: str) -> None:
    """Cancel job ``job_id``, submitted held, with ``reason`` if still held (its request was
    not told it is queued); a failure is logged (its replica's recovery cancels it)."""
    assert ctx.jobs is not None
    try:
        if ctx.jobs.withdraw(session, job_id, reason):
            log.warning("job %s %s", job_id, reason)
    except Exception:
        log.exception(
            "job %s could not be withdrawn (%s): held, it is never run, and its replica's "
            "next recovery (or its stop) cancels it",
            job_id,
            reason,
        )


def solve_or_queue(
    ctx: ServiceContext,
    session: Session,
    request: Request,
    *,
    sync: bool,
    kind: str,
    payload: JsonDict,
    principal: Principal,
    seed: int | None,
    time_limit_s: float,
    job_timeout_s: float,
    lane: Lane,
    with_limit: WithLimit | None = None,
    num_orders: int = 0,
    solver_limit_s: float | None = None,
    job_id: str | None = None,
) -> SolveOutcome | tuple[int, BaseModel, str | None]:
    """Solve job ``kind`` now when ``sync`` (its outcome), else queue it (the 202 answer).

    ``with_limit``, ``num_orders``, ``solver_limit_s``: the solve's time limit counts from
    the request's arrival (:func:`solve_sync`); a job keeps its limit. ``job_id``: the job's
    id, if chosen before (else a new one).
    """
    if not sync:
        job = submit_job(
            ctx,
            session,
            request,
            kind=kind,
            payload=payload,
            principal=principal,
            seed=seed,
            timeout_s=job_timeout_s,
            job_id=job_id,
        )
        return accepted(job)
    return solve_sync(
        ctx,
        session,
        request,
        kind=kind,
        payload=payload,
        principal=principal,
        seed=seed,
        time_limit_s=time_limit_s,
        lane=lane,
        with_limit=with_limit,
        num_orders=num_orders,
        solver_limit_s=solver_limit_s,
        job_id=job_id,
    )


def engine_fallback_reason(ctx: ServiceContext, outcome: SolveOutcome, endpoint: str) -> str | None:
    """Why the answer is a fallback: the service's reason, else the engine's own (counted).

    An engine may answer with its own fallback (``fallback_reason`` in its result) when the
    service did not fall back; that one is counted in ``/metrics`` under ``endpoint``.
    """
    reason = outcome.fallback_reason or outcome.result.get("fallback_reason")
    if not outcome.fallback and reason:
        ctx.metrics.fallbacks.labels(endpoint, "engine").inc()
    return reason


Compute = Callable[[], tuple[int, BaseModel, str | None]]


def queue_job(
    ctx: ServiceContext,
    session: Session,
    request: Request,
    *,
    principal: Principal,
    idem_key: str | None,
    kind: str,
    payload: JsonDict,
    seed: int | None,
    timeout_s: float | None = None,
) -> Response:
    """Queue job ``kind`` once per ``Idempotency-Key`` and answer 202 with its Location."""

    def compute() -> tuple[int, BaseModel, str | None]:
        job = submit_job(
            ctx,
            session,
            request,
            kind=kind,
            payload=payload,
            principal=principal,
            seed=seed,
            timeout_s=timeout_s,
        )
        return accepted(job)

    return respond(ctx, session, request, principal=principal, idem_key=idem_key, compute=compute)


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
            key_id=principal.account,
            idem_key=idem_key,
            endpoint=f"{request.method} {request.url.path}",
            request_hash=input_hash(request),
            ttl_s=ctx.settings.idempotency_ttl_s,
            pending_stale_s=ctx.settings.max_sync_time_limit_s
            + ctx.settings.fallback_grace_s
            + 60.0,
            replica=None if ctx.jobs is None else ctx.jobs.instance_id,
            replica_gone=None if ctx.jobs is None else ctx.jobs.replica_gone,
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
    response = json_response(status, body, location)
    if slot is not None:  # stored as sent, so a replay is the same JSON
        content = json.loads(bytes(response.body))
        idempotency.finish(session, slot, status_code=status, body=content, location=location)
    return response


def solve_or_queue_response(
    ctx: ServiceContext,
    session: Session,
    request: Request,
    *,
    principal: Principal,
    idem_key: str | None,
    sync: bool,
    kind: str,
    payload: JsonDict,
    seed: int | None,
    time_limit_s: float,
    job_timeout_s: float,
    lane: Lane,
    answer: Callable[[SolveOutcome], BaseModel],
    with_limit: WithLimit | None = None,
    num_orders: int = 0,
    solver_limit_s: float | None = None,
    job_id: str | None = None,
    claim: Callable[[], Callable[[], None]] | None = None,
) -> Response:
    """:func:`solve_or_queue` once per ``Idempotency-Key``: 200 with ``answer(outcome)``, or 202.

    ``claim``: called once the ``Idempotency-Key`` is claimed (a retry is replayed first),
    before the job ``job_id`` is written: it raises to refuse the request (a 409), else
    returns what to call should the request fail before its job is written.
    """

    def compute() -> tuple[int, BaseModel, str | None]:
        release = claim() if claim is not None else None
        try:
            return solve()
        except BaseException:
            if release is not None:
                release()
            raise

    def solve() -> tuple[int, BaseModel, str | None]:
        outcome = solve_or_queue(
            ctx,
            session,
            request,
            sync=sync,
            kind=kind,
            payload=payload,
            principal=principal,
            seed=seed,
            time_limit_s=time_limit_s,
            job_timeout_s=job_timeout_s,
            lane=lane,
            with_limit=with_limit,
            num_orders=num_orders,
            solver_limit_s=solver_limit_s,
            job_id=job_id,
        )
        if isinstance(outcome, tuple):  # queued: the 202 answer
            return outcome
        return 200, answer(outcome), None

    return respond(ctx, session, request, principal=principal, idem_key=idem_key, compute=compute)


def json_response(status: int, body: BaseModel, location: str | None = None) -> Response:
    """``body`` as a JSON response, serialised by pydantic (a NaN becomes ``null``)."""
    headers = {"Location": location} if location else None
    return Response(
        content=body.model_dump_json(by_alias=True),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def accepted(job: Job) -> tuple[int, BaseModel, str | None]:
    """The 202 answer for a queued job, with its Location."""
    from api.schemas.common import JobAccepted

    link = f"/v1/jobs/{job.id}"
    return 202, JobAccepted(job_id=job.id, status="queued", links={"self": link}), link
