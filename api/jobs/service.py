"""The job service: a queue in the database, a dispatcher thread, crash recovery, cancellation.

The ``jobs`` table is the queue. Any replica claims a queued job with a conditional UPDATE
(so two replicas never run the same job; not one still held by the replica submitting it,
see :meth:`JobService.submit`), runs it on its executor and writes the outcome.
Each replica heartbeats in ``instances``; a replica that stops heartbeating (or, on the same
host, whose process is gone) is dead, and the jobs it was running are re-queued (up to
``max_attempts`` runs) or marked failed with the reason. This runs at start-up and then
periodically, so a kill -9 never loses a job.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.core.audit import JobRecordWriter
from api.core.metrics import Metrics
from api.db.models import Instance, Job, utcnow
from api.db.session import RawJson
from api.jobs.executors import Execution, Executor, Outcome
from api.jobs.registry import JsonDict, TaskRegistry

log = logging.getLogger("api.jobs")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)
#: why a running job whose cancel its server could not carry out (it stopped) is cancelled
CANCELLED_AT_STOP = "cancelled by the client; its server stopped before the job could finish"
#: why a synchronous solve still running when its server shut down (a graceful stop) failed
#: (by the stop, or by recovery for a row the stop could not fail, or whose commit landed
#: after it)
SYNC_AT_STOP = "interrupted: the server shut down (graceful stop) during this synchronous request"
#: the event of an async job re-queued because its server shut down (a graceful stop; by the
#: stop, or by recovery for one the stop could not re-queue): that run is not counted
REQUEUED_AT_STOP = "re-queued: server shut down"
#: why a synchronous solve of a live replica, running past the longest one may take, failed
SYNC_UNSTORED = (
    "interrupted: no outcome of this synchronous solve was stored (its request ended in error)"
)
#: why a job whose request the server's shutdown cut while it was being queued is cancelled:
#: the cut stopped waiting for its commit (api.core.errors.CUT_WAIT_S) and its 503 said
#: the job will not run, send the request again
WITHDRAWN_AT_CUT = (
    "cancelled: its request was answered 503 (send it again) by the server's shutdown "
    "before the database confirmed the job queued"
)
#: why a job submitted ``held`` (:meth:`JobService.submit`) is cancelled by its replica's
#: stop, or by the recovery of any replica once its replica is gone: its request was not
#: answered 202 (a 503 of the server's shutdown said it will not run, or the server died)
UNCONFIRMED_AT_STOP = (
    "cancelled: its server stopped before it confirmed the job queued to its request "
    "(which was not answered 202 Accepted: it will not run)"
)
#: why a job submitted ``held`` is cancelled when its request ended in error before it
#: confirmed the job (its commit, or its confirmation, failed)
UNCONFIRMED_IN_ERROR = (
    "cancelled: its request ended in error before the job was confirmed queued (it was not "
    "answered 202 Accepted: it will not run)"
)
FINISHED = (DONE, FAILED, CANCELLED)
#: the event that begins each run of a job (followed by the replica's id)
STARTED_ON = "started on replica "
#: the event written once a run is killed at its job time limit, before its end is computed
#: and written (followed by the reason): a recovery that finds it in the last run's events
#: ends the job as that time-limit failure (its server was killed before it could write
#: it), not as a crash
STOPPING_AT_LIMIT = "stopping the run: "
#: a replica silent this long and never marked stopped (killed while it ran no job) is gone:
#: its row is deleted when no job names it (see :meth:`JobService.purge_replicas`)
REPLICA_GRACE_S = 86_400.0


#: pg_advisory_xact_lock id that serialises job submissions (the queue bound) on PostgreSQL
_PG_SUBMIT_LOCK = 7_305_117_204

#: Replicas living in this very process (tests run several); any other replica registered
#: with this host and pid is a previous life of the process (pid reuse after a restart).
_LOCAL_INSTANCES: set[str] = set()

#: set when this process is about to die by a signal (:func:`stop_writing_before_death`)
_DYING = threading.Event()
#: held by the death decision and around a submit's or a confirmation's last look at
#: :data:`_DYING` and its commit, so that the death is decided before the look or after the
#: commit, never in between (reentrant: the signal's handler runs on the main thread, which
#: it may have interrupted inside)
_DEATH_LOCK = threading.RLock()
#: seconds the death decision waits for a commit in progress under :data:`_DEATH_LOCK` (a
#: hung database: the decision is then taken all the same)
DEATH_WAIT_S = 2.0


def _commit_unless_dying(session: Session) -> None:
    """Commit ``session`` unless this process is about to die by a signal (then rolled back,
    :class:`ProcessDying` raised); the death is not decided between the look and the commit.

    Only the look and the commit hold :data:`_DEATH_LOCK`: a statement that waits for a
    database lock (SQLite's writer, a row lock) runs before, so no thread waits for one
    while it holds the lock that the death decision waits for.
    """
    with _DEATH_LOCK:
        if _DYING.is_set():
            session.rollback()
            raise ProcessDying
        session.commit()


def stop_writing_before_death() -> None:
    """This process is about to die by a signal (SIGHUP, SIGQUIT: ``api.serve``): from now on
    its dispatchers claim no job and write no run's end.

    Decided once a job's submit or confirmation committing in another thread has committed
    (up to :data:`DEATH_WAIT_S`): what was let go before is answered, what was not is not.

    Its clean-up kills the job processes and stops their fork server before it dies; a
    dispatcher that saw one of those deaths first recorded it as the job's end (``worker
    process died (exit code -9)``, or 255 with the fork server gone: failed, or answered with
    the fallback plan), an attempt burnt on the process's own death. The jobs are left
    running instead, as after a crash: the next replica's recovery re-queues them.
    """
    got = _DEATH_LOCK.acquire(timeout=DEATH_WAIT_S)
    try:
        _DYING.set()
    finally:
        if got:
            _DEATH_LOCK.release()


class ProcessDying(Exception):
    """This process is about to die by a signal (:func:`stop_writing_before_death`): the
    outcome of a synchronous solve decided from now on is not stored, nor its start.

    No answer is sent once the death is decided (the signal's handler holds the event loop
    until the process dies), so an outcome stored then was one nobody received (a solve
    that ended during the clean-up, or the fallback plan of one that the clean-up's kill of
    its helper processes made fail). Its row is left ``running``, as after a crash: the next
    replica's recovery fails it, and the retry with the same ``Idempotency-Key`` solves again.

    Nor is an asynchronous job queued from then on (:meth:`JobService.submit`,
    :meth:`JobService.confirm`): its 202 would reach nobody, so its client could not follow
    a job that ran on another replica, and its retry queued it twice. A submit not yet
    committed is rolled back; a job already committed held by this replica is not let go
    (the next replica's recovery cancels it, :data:`UNCONFIRMED_AT_STOP`). Its request ends
    in a 503 naming no job, and its ``Idempotency-Key`` is released (or, the process gone
    first, taken over at once), so that the retry queues the job on another replica.
    """


class QueueFull(Exception):
    """The queue holds as many jobs as allowed; retry later."""


class SubmitWithdrawn(Exception):
    """The submit was withdrawn before its commit: nothing was queued."""


def new_id() -> str:
    """A fresh job/plan id (32 hex characters)."""
    return uuid.uuid4().hex


def event(message: str) -> dict[str, str]:
    """One entry of a job's event list, timestamped."""
    return {"at": utcnow().isoformat(), "message": message}


def _requeued() -> dict[str, Any]:
    """The columns of a job put back in the queue: no owner, no start, no progress."""
    return {
        "status": QUEUED,
        "owner": None,
        "started_at": None,
        "progress": 0.0,
        "progress_detail": None,
    }


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class SyncOutcome:
    """How a synchronous solve ended: status, result, error, fallback and an event note."""

    status: str
    result: JsonDict | None
    error: str | None = None
    fallback: bool = False
    note: str | None = None

    def event(self) -> dict[str, str]:
        """The job event that records it."""
        return event(self.note or self.status)


@dataclass(frozen=True)
class _End:
    """What the end of a run writes into its job's row (the fallback plan computed once).

    ``failure``: the run failed (not bad input): counted in the metrics, as its fallback
    answer is, when the end is written, not when computed (a write that fails is tried
    again with the same end, by this replica or another's recovery).
    """

    status: str
    result: JsonDict | None
    error: str | None
    fallback: bool
    note: str
    notes: tuple[str, ...] = ()
    failure: bool = False


@dataclass
class _Running:
    job_id: str
    kind: str
    execution: Execution
    started: float
    timeout_s: float
    payload: JsonDict
    last_progress: float | None = None
    last_detail: JsonDict | None = None
    #: (status, reason) of a run stopped by a limit (cancel, time limit), once killed
    killed: tuple[str, str] | None = None
    #: which run of the job this is (counted runs: a re-queue at a graceful stop is not
    #: counted) and how many it may have
    attempt: int = 1
    max_attempts: int = 1
    #: its end once decided, until written (a write that failed is tried again with it)
    end: _End | None = None
    #: the ``stopping the run`` event of a run killed at its time limit is written (a write
    #: that failed is tried again, before its end, until it is)
    stop_said: bool = False


@dataclass(frozen=True)
class _Ended:
    """The execution of a job whose start failed: it has ended with ``outcome`` at once."""

    outcome: Outcome

    def poll(self) -> Outcome | None:
        """The failed start."""
        return self.outcome

    def progress(self) -> float | None:
        """No progress was made."""
        return None

    def progress_detail(self) -> JsonDict | None:
        """Nothing was done."""
        return None

    def kill(self) -> None:
        """Nothing runs."""


@dataclass
class JobService:
    """Submit, claim, run, recover and cancel jobs for one replica."""

    sessions: sessionmaker[Session]
    registry: TaskRegistry
    executor: Executor
    metrics: Metrics
    max_queued: int = 100
    max_attempts: int = 2
    lease_s: float = 30.0
    heartbeat_s: float = 5.0
    poll_s: float = 1.0
    #: every ``purge_s``: finished jobs created longer ago than ``retention_s`` are deleted
    #: (None = kept), the rows of replicas gone (stopped, or silent ``replica_grace_s``)
    #: that no job names, whatever ``retention_s``, and each ``housekeeping`` call deletes
    #: what else has expired
    retention_s: float | None = None
    replica_grace_s: float = REPLICA_GRACE_S
    housekeeping: list[Callable[[Session], int]] = field(default_factory=list)
    purge_s: float = 600.0
    #: how long :meth:`stop` waits for each thread (a dispatcher may be starting a job)
    stop_join_s: float = 10.0
    #: a synchronous solve of this replica still running this long after its start (past
    #: the longest one may take) has lost its outcome: :meth:`recover` fails it (None: never)
    sync_stale_s: float | None = None
    on_finished: dict[str, Callable[[Session, Job, JsonDict], JsonDict]] = field(
        default_factory=dict
    )
    instance_id: str = field(default_factory=new_id)
    host: str = field(default_factory=socket.gethostname)

    def __post_init__(self) -> None:
        self._running: dict[str, _Running] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._last_recovery = 0.0
        self._last_purge = -math.inf
        self.records: JobRecordWriter | None = None
        #: the jobs this replica submitted ``held`` whose submit has not confirmed them nor
        #: withdrawn them yet (its recovery leaves them to it; see :meth:`submit`)
        self._holding: set[str] = set()
        #: the ends recovery computed for runs of dead replicas stopped at their time limit,
        #: by (job id, owner, reason), until written: a write that failed is tried again by
        #: the next recovery pass with the same end (its fallback plan not computed again)
        self._overran_ends: dict[tuple[str, str, str], _End] = {}

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Register this replica, recover crashed jobs, start the dispatcher and heartbeat."""
        with self.sessions.begin() as session:
            session.add(Instance(id=self.instance_id, host=self.host, pid=os.getpid()))
        _LOCAL_INSTANCES.add(self.instance_id)
        self.records = JobRecordWriter(self.sessions, metrics=self.metrics)
        self.recover()
        for name, target in (("job-dispatcher", self._dispatch_loop), ("heartbeat", self._beat)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop threads; running jobs are re-queued, synchronous solves still running failed.

        Every step is taken whatever the one before it met: a database error (the database
        locked, a dropped connection) is logged and the shutdown goes on, so that every
        worker is stopped and the executor closed; a row it could not write is left to the
        next replica's recovery (this one is marked stopped, or goes silent). An executor
        that fails to close is logged too: nothing is raised.
        """
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=self.stop_join_s)
        try:
            try:
                if self.records is not None:
                    self.records.close()
            except Exception:
                log.exception("the synchronous solves' records could not be written at shutdown")
            with self._lock:
                running = list(self._running.values())
                self._running.clear()
            unfinished = []
            overran: dict[str, _Running] = {}  # stopped at their time limit, end not written
            for run in running:
                ended = run.killed is not None  # stopped by a limit, its end not written yet
                try:
                    if ended:
                        self._write_killed(run)
                        continue
                    if run.end is None:  # ended since the last tick: keep its answer
                        outcome = run.execution.poll()
                        if outcome is not None:
                            run.end = self._end_of(run.job_id, run.kind, run.payload, outcome)
                    ended = run.end is not None
                    if run.end is not None:
                        self._write_end(run.job_id, run.kind, run.end)
                        continue
                except Exception:  # its row is re-queued (or cancelled, or failed) below
                    log.exception("job %s: its end could not be written at shutdown", run.job_id)
                    if run.killed is not None and run.killed[0] == FAILED:
                        overran[run.job_id] = run
                    if ended:
                        continue
                unfinished.append(run)
            for run in unfinished:
                try:
                    run.execution.kill()
                except Exception:
                    log.exception("job %s could not be killed at shutdown", run.job_id)
            self._release_stranded(overran)
            self._fail_unanswered()
            self._withdraw_held()
            try:
                with self.sessions.begin() as session:
                    session.execute(
                        update(Instance)
                        .where(Instance.id == self.instance_id)
                        .values(stopped_at=utcnow(), stopped_gracefully=True)
                    )
            except Exception:
                log.exception("replica %s could not be marked stopped", self.instance_id)
        finally:
            _LOCAL_INSTANCES.discard(self.instance_id)
            try:
                self.executor.close()
            except Exception:  # logged: the service's later stop steps still run
                log.exception("the job executor could not be closed at shutdown")

    def _release_stranded(self, overran: dict[str, _Running] | None = None) -> None:
        """At stop: re-queue every job this replica claimed and did not finish (each in a
        transaction of its own), or cancel it when its cancel had reached the row.

        A run of ``overran`` (stopped at its time limit, its failure not written) ran: its
        job ends as the dispatcher would have ended it (the time-limit failure, answered
        with the fallback plan where the kind has one), not re-queued to overrun again. If
        that write fails too, the row is left running for the next replica's recovery,
        which finds the run's stop in its events and writes the same end.
        """
        overran = overran or {}
        # those it ran, and one its dispatcher may still be starting (stuck past the join,
        # e.g. on a fork server still importing: the executor's close fails that start)
        try:
            with self.sessions() as session:
                stranded = session.scalars(
                    select(Job.id).where(
                        Job.owner == self.instance_id, Job.mode == "async", Job.status == RUNNING
                    )
                ).all()
        except Exception:
            log.exception("the jobs this replica was running could not be read at shutdown")
            return
        for job_id in stranded:
            mine = (Job.owner == self.instance_id, Job.status == RUNNING)
            run = overran.get(job_id)
            try:
                with self.sessions.begin() as session:
                    # a cancel that arrived since the last tick is honoured, not lost
                    if _transition(
                        session,
                        job_id,
                        (*mine, Job.cancel_requested.is_(True)),
                        {"status": CANCELLED, "finished_at": utcnow(), "error": CANCELLED_AT_STOP},
                        CANCELLED_AT_STOP,
                    ):
                        continue
                    if run is None:  # this run is not counted
                        requeue = {
                            "status": QUEUED,
                            "owner": None,
                            "started_at": None,
                            "progress": 0.0,
                            "progress_detail": None,
                            "attempts": Job.attempts - 1,
                        }
                        _transition(session, job_id, mine, requeue, REQUEUED_AT_STOP)
                        continue
                self._write_killed(run)  # stopped at its time limit: its end, decided before
            except Exception:
                if run is None:
                    log.exception("job %s could not be re-queued at shutdown", job_id)
                else:
                    log.exception(
                        "job %s: its time-limit failure could not be written at shutdown "
                        "(the next recovery writes it)",
                        job_id,
                    )

    def _fail_unanswered(self) -> None:
        """At stop: fail this replica's synchronous solves still running.

        Their requests end with the server; said here, else the next replica's recovery
        would report a crash.
        """
        try:
            with self.sessions.begin() as session:
                unanswered = session.scalars(
                    select(Job.id).where(
                        Job.owner == self.instance_id, Job.mode == "sync", Job.status == RUNNING
                    )
                ).all()
                for job_id in unanswered:
                    _transition(
                        session,
                        job_id,
                        (Job.status == RUNNING,),
                        {"status": FAILED, "error": SYNC_AT_STOP, "finished_at": utcnow()},
                        SYNC_AT_STOP,
                    )
        except Exception:
            log.exception("the synchronous solves still running could not be failed at shutdown")
            return
        if unanswered:
            log.warning("%d synchronous solve(s) interrupted by the shutdown", len(unanswered))

    def _withdraw_held(self) -> None:
        """At stop: cancel the jobs this replica submitted ``held`` and never confirmed.

        Their requests were not answered 202 (the server's cut answered them 503, saying the
        job will not run, or they ended in error): no dispatcher claims them, and they would
        stay queued for ever. A submit still committing one (a hung database) leaves it to
        the recovery of the next replica that starts (this one is marked stopped).
        """
        try:
            with self.sessions.begin() as session:
                held = session.scalars(
                    select(Job.id).where(Job.status == QUEUED, Job.owner == self.instance_id)
                ).all()
                withdrawn = [
                    job_id
                    for job_id in held
                    if _withdraw(session, job_id, self.instance_id, UNCONFIRMED_AT_STOP)
                ]
        except Exception:
            log.exception("the jobs being queued could not be withdrawn at shutdown")
            return
        for job_id in withdrawn:
            log.warning("job %s %s", job_id, UNCONFIRMED_AT_STOP)

    def wake(self) -> None:
        """Look for queued jobs now rather than at the next poll."""
        self._wake.set()

    # ----------------------------------------------------------------- API side
    def queue_depth(self, session: Session) -> int:
        """Jobs waiting to run (all replicas)."""
        return int(session.scalar(select(func.count()).where(Job.status == QUEUED)) or 0)

    def submit(
        self,
        session: Session,
        *,
        kind: str,
        payload: JsonDict,
        key_id: str | None,
        seed: int | None,
        input_hash: str,
        timeout_s: float,
        job_id: str | None = None,
        withdrawn: Callable[[], bool] | None = None,
        held: bool = False,
    ) -> Job:
        """Queue a job (raises QueueFull when the queue is at its bound); commits.

        ``job_id``: its id (default a new one). ``withdrawn``: asked just before the commit;
        True rolls the job back and raises :class:`SubmitWithdrawn` (its request was told
        the job will not run).

        ``held``: the job is written queued but held by this replica (its ``owner``), which
        no dispatcher claims, until :meth:`confirm` lets it go (its request can be told it is
        queued) or :meth:`withdraw` cancels it (its request was told it will not run). A
        commit that lands after its request was answered (the database hung past the
        server's cut) can then never start the job; a held job this replica's stop finds,
        or the recovery of any replica once this one is gone (a commit that landed after
        its process ended), is cancelled (:data:`UNCONFIRMED_AT_STOP`), and one whose submit
        gave it up (its request ended in error) by this replica's next recovery
        (:data:`UNCONFIRMED_IN_ERROR`).

        The bound holds under concurrent submits, from threads and replicas alike: the row
        is inserted first and the queue counted after it in the same transaction, which
        rolls back when the count is past the bound. Concurrent submits are serialised
        from the insert to the commit: on SQLite by its single writer (the insert takes
        the write lock), on PostgreSQL by a transaction-level advisory lock taken first.

        Raises :class:`ProcessDying` (nothing queued: rolled back) once this process is
        about to die by a signal, looked at first and again just before the commit.
        """
        if kind not in self.registry:
            raise KeyError(kind)
        if _DYING.is_set():
            raise ProcessDying
        job_id = job_id or new_id()
        if held:
            with self._lock:
                self._holding.add(job_id)
        try:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(_PG_SUBMIT_LOCK)))
            job = Job(
                id=job_id,
                kind=kind,
                mode="async",
                status=QUEUED,
                payload=payload,
                key_id=key_id,
                seed=seed,
                input_hash=input_hash,
                timeout_s=timeout_s,
                max_attempts=self.max_attempts,
                owner=self.instance_id if held else None,
                events=[event("queued")],
            )
            session.add(job)
            session.flush()
            depth = self.queue_depth(session)  # this job included
            if depth > self.max_queued:
                session.rollback()
                self.metrics.queue_depth.set(depth - 1)
                raise QueueFull
            if withdrawn is not None and withdrawn():
                session.rollback()
                raise SubmitWithdrawn
            _commit_unless_dying(session)  # else its 202 would reach nobody (ProcessDying)
        except BaseException:
            if held:  # none, or one its submit withdraws (else this replica's recovery)
                with self._lock:
                    self._holding.discard(job_id)
            raise
        self.metrics.queue_depth.set(depth)
        if not held:
            self.wake()
        return job

    def confirm(self, session: Session, job: Job) -> bool:
        """Let a job submitted ``held`` go: any dispatcher may claim it now; commits.

        False (``job`` read again): it was no longer held, cancelled meanwhile (by its
        client, by this replica's stop, or by the recovery of a replica that took this one
        for dead, its heartbeat held up past its lease).

        Raises :class:`ProcessDying` (the job left held, nothing written) once this process
        is about to die by a signal: its request is answered by nobody, and the next
        replica's recovery cancels the job (:data:`UNCONFIRMED_AT_STOP`). The death is
        decided before the last look at it or after the commit (:func:`_commit_unless_dying`),
        never in between: a job let go is let go before the death.
        """
        try:
            if _DYING.is_set():
                raise ProcessDying
            released = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == QUEUED, Job.owner == self.instance_id)
                .values(owner=None)
            )
            _commit_unless_dying(session)  # nor a death decided since the look above
        finally:
            with self._lock:
                self._holding.discard(job.id)
        if released.rowcount != 1:  # type: ignore[attr-defined]
            session.refresh(job)
            return False
        self.wake()
        return True

    def withdraw(self, session: Session, job_id: str, reason: str) -> bool:
        """Cancel a job submitted ``held`` with ``reason``, if it is still held; commits.

        Its request was told it will not run. True if cancelled here.
        """
        try:
            done = _withdraw(session, job_id, self.instance_id, reason)
            session.commit()
        finally:
            with self._lock:
                self._holding.discard(job_id)
        return done

    def cancel(self, session: Session, job: Job) -> Job:
        """Cancel a queued job at once; ask the owner of a running one to kill it; commits."""
        done = _transition(  # the events as they are now, not as ``job`` was read
            session,
            job.id,
            (Job.status == QUEUED,),
            {"status": CANCELLED, "finished_at": utcnow(), "error": "cancelled by the client"},
            "cancelled while queued",
        )
        if not done:
            session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == RUNNING)
                .values(cancel_requested=True)
            )
        session.commit()
        session.refresh(job)
        self.wake()
        return job

    # ----------------------------------------------------------------- sync solves
    def record_sync_start(
        self,
        session: Session,
        *,
        kind: str,
        payload: JsonDict,
        key_id: str | None,
        seed: int | None,
        input_hash: str,
        job_id: str | None = None,
        withdrawn: Callable[[], bool] | None = None,
    ) -> Job:
        """Store a synchronous solve as a running job owned by this replica; commits.

        ``job_id``: its id (default a new one). ``withdrawn``: asked just before the commit;
        True rolls the row back and raises :class:`SubmitWithdrawn` (its request was told
        the solve will not run). Raises :class:`ProcessDying` (nothing written) once this
        process is about to die by a signal.
        """
        if _DYING.is_set():
            raise ProcessDying
        job = Job(
            id=job_id or new_id(),
            kind=kind,
            mode="sync",
            status=RUNNING,
            payload=payload,
            key_id=key_id,
            seed=seed,
            input_hash=input_hash,
            owner=self.instance_id,
            attempts=1,
            max_attempts=1,
            started_at=utcnow(),
            events=[event("solving synchronously")],
        )
        session.add(job)
        if withdrawn is not None and withdrawn():
            session.rollback()
            raise SubmitWithdrawn
        session.commit()
        return job

    def record_sync(
        self,
        *,
        job_id: str,
        kind: str,
        payload: JsonDict | BaseModel | RawJson,
        key_id: str | None,
        seed: int | None,
        input_hash: str,
        started_at: dt.datetime,
        outcome: SyncOutcome,
    ) -> None:
        """Store a finished synchronous solve behind its answer (see :class:`JobRecordWriter`).

        Raises :class:`ProcessDying` (nothing stored) once this process is about to die by
        a signal: no answer is sent any more, and a crash leaves no row of this lane either.
        """
        assert self.records is not None, "the job service is not started"
        if _DYING.is_set():
            raise ProcessDying
        started = {"at": started_at.isoformat(), "message": "solving synchronously"}
        self.records.put(
            {
                "id": job_id,
                "kind": kind,
                "mode": "sync",
                "status": outcome.status,
                "payload": payload,
                "result": outcome.result,
                "error": outcome.error,
                "events": [started, outcome.event()],
                "progress": 1.0,
                "attempts": 1,
                "max_attempts": 1,
                "owner": self.instance_id,
                "key_id": key_id,
                "seed": seed,
                "input_hash": input_hash,
                "fallback": outcome.fallback,
                "cancel_requested": False,
                "created_at": started_at,
                "started_at": started_at,
                "finished_at": utcnow(),
            }
        )
        self.metrics.jobs_finished.labels(kind, outcome.status).inc()

    def settle_records(self, job_id: str | None = None) -> None:
        """Wait for unwritten synchronous records (that of ``job_id``, or any) to be stored."""
        if self.records is not None and self.records.pending(job_id):
            self.records.flush()

    def record_sync_end(self, session: Session, job: Job, outcome: SyncOutcome) -> bool:
        """Store the outcome of a synchronous solve if its row is still running; commits.

        The row is taken (written) first and ``job`` read again under it, so that an event
        written since the solve started (a recovery's) is kept, not overwritten. A row
        already finished (failed by this replica's stop, :meth:`stop`, its request answered
        503 meanwhile, or by a recovery) is left as it is: False, ``job`` read as it is.
        Once this process is about to die by a signal, nothing is written: the row stays
        ``running`` for crash recovery (:class:`ProcessDying` raised).
        """
        if _DYING.is_set():
            raise ProcessDying
        # the row taken by a write, so that no other writer changes it until the commit
        # (PostgreSQL's row lock, which re-reads the condition once it has the row; SQLite's
        # single writer, whose driver begins the transaction only at its first write: a row
        # read before it may change before the write)
        held = session.execute(
            update(Job).where(Job.id == job.id, Job.status == RUNNING).values(events=Job.events)
        )
        if held.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            session.refresh(job)
            if (job.status, job.error) == (outcome.status, outcome.error):
                return False  # the same end (the stop's failure, written by the stop)
            log.warning(
                "synchronous job %s: its outcome (%s) not stored, the job had ended (%s: %s)",
                job.id,
                outcome.status,
                job.status,
                job.error,
            )
            return False
        session.refresh(job)
        job.status = outcome.status
        job.result = outcome.result
        job.error = outcome.error
        job.fallback = outcome.fallback
        job.progress = 1.0
        job.progress_detail = None
        job.finished_at = utcnow()
        job.events = [*job.events, outcome.event()]
        session.commit()
        self.metrics.jobs_finished.labels(job.kind, outcome.status).inc()
        return True

    # ----------------------------------------------------------------- recovery
    def recover(self) -> int:
        """Find jobs of dead replicas: re-queue them or mark them failed; returns how many.

        Held jobs (:meth:`submit`) no submit will let go any more, of dead replicas or of
        this one, are cancelled (:meth:`_withdraw_unconfirmed`).

        A running job of a replica whose graceful stop marked it stopped (one its stop could
        not end, the database locked, or a synchronous solve whose first row was committed
        after the stop) ends as the stop would have ended it: re-queued uncounted, failed
        :data:`SYNC_AT_STOP`, or cancelled; after a crash, as a crash.

        A job whose run its replica was stopping at its time limit (the event written after
        the kill, before the end) ends as that time-limit failure, as the replica would have
        ended it: with the fallback plan where the kind has one (computed after the
        transaction that found it, so as not to hold the database meanwhile; once, a write
        that fails is tried again with it at the next pass).
        """
        now = utcnow()
        stale_before = now - dt.timedelta(seconds=self.lease_s)
        handled = 0
        overran: list[tuple[str, str, JsonDict, str, str]] = []  # id, kind, payload, why, owner
        with self.sessions.begin() as session:
            # only the replicas owning running jobs: every start adds a row (deleted by the
            # purge once gone and named by no job), which recovery read each time (10,000
            # rows: 0.18 s of the dispatcher's tick)
            # (and the replicas holding queued jobs: their submits not confirmed, see submit)
            owners = select(Job.owner).where(
                or_(Job.status == RUNNING, and_(Job.status == QUEUED, Job.owner.is_not(None)))
            )
            instances = session.scalars(
                select(Instance).where(Instance.id != self.instance_id, Instance.id.in_(owners))
            )
            dead: set[str] = set()
            live: set[str] = set()
            graceful: set[str] = set()  # marked stopped by their own graceful stop
            for inst in instances:
                if inst.stopped_at is not None:
                    dead.add(inst.id)
                    if inst.stopped_gracefully:
                        graceful.add(inst.id)
                elif self._found_dead(inst, stale_before):
                    dead.add(inst.id)
                    inst.stopped_at = now
                else:
                    live.add(inst.id)
            orphans = session.scalars(
                select(Job).where(Job.status == RUNNING, Job.owner != self.instance_id)
            ).all()
            for job in orphans:
                if job.owner in live:
                    continue
                reason = _stopped_at_limit(job.events)
                if reason is not None and job.mode == "async" and not job.cancel_requested:
                    assert job.owner is not None
                    overran.append((job.id, job.kind, dict(job.payload), reason, job.owner))
                    continue
                handled += self._recover_one(session, job, graceful=job.owner in graceful)
            handled += self._withdraw_unconfirmed(session, live)
            if self.sync_stale_s is not None:
                handled += self._fail_unstored(
                    session, now - dt.timedelta(seconds=self.sync_stale_s)
                )
        found = {(job_id, owner, reason) for job_id, _, _, reason, owner in overran}
        for key in set(self._overran_ends) - found:  # ended meanwhile (another's recovery)
            del self._overran_ends[key]
        for job_id, kind, payload, reason, owner in overran:
            handled += self._end_overran(job_id, kind, payload, reason, owner)
        if handled:
            self.wake()
        self._last_recovery = time.monotonic()
        return handled

    def _found_dead(self, inst: Instance, stale_before: dt.datetime) -> bool:
        """True when replica ``inst``, not marked stopped, is dead: silent since before
        ``stale_before``, or, on this host, its process gone (its pid reused by this one)."""
        return inst.heartbeat_at < stale_before or (
            inst.host == self.host
            and inst.id not in _LOCAL_INSTANCES
            and (inst.pid == os.getpid() or not pid_alive(inst.pid))
        )

    def replica_gone(self, session: Session, replica_id: str) -> bool:
        """True when replica ``replica_id`` is gone: marked stopped, dead as :meth:`recover`
        finds it (not yet marked), or its row deleted; reads, writes nothing."""
        if replica_id == self.instance_id:
            return False
        inst = session.get(Instance, replica_id)
        if inst is None or inst.stopped_at is not None:
            return True
        return self._found_dead(inst, utcnow() - dt.timedelta(seconds=self.lease_s))

    def _withdraw_unconfirmed(self, session: Session, live: set[str]) -> int:
        """Cancel the held jobs (:meth:`submit`) no submit will confirm any more: those of
        replicas gone (not in ``live``: a commit that landed after its process ended, or a
        server killed before it confirmed or withdrew its job), and those of this replica
        whose submit gave them up (its request ended in error); returns how many."""
        held = session.execute(
            select(Job.id, Job.owner).where(Job.status == QUEUED, Job.owner.is_not(None))
        ).all()
        withdrawn = 0
        for job_id, owner in held:
            assert owner is not None
            if owner == self.instance_id:
                with self._lock:
                    if job_id in self._holding:  # its submit confirms or withdraws it
                        continue
                reason = UNCONFIRMED_IN_ERROR
            elif owner in live:
                continue
            else:
                reason = UNCONFIRMED_AT_STOP
            if _withdraw(session, job_id, owner, reason):
                log.warning("job %s %s (held by replica %s)", job_id, reason, owner)
                self.metrics.jobs_recovered.labels("cancelled").inc()
                withdrawn += 1
        return withdrawn

    def _fail_unstored(self, session: Session, started_before: dt.datetime) -> int:
        """Fail this replica's synchronous solves started before then and still running.

        Their request wrote no outcome (a write that failed: the database locked past its
        busy timeout, a dropped connection) and no other replica recovers a live one's rows.
        """
        unstored = session.scalars(
            select(Job).where(
                Job.owner == self.instance_id,
                Job.mode == "sync",
                Job.status == RUNNING,
                Job.started_at < started_before,
            )
        ).all()
        failed = 0
        for job in unstored:
            if _transition(
                session,
                job.id,
                (Job.status == RUNNING,),
                {"status": FAILED, "error": SYNC_UNSTORED, "finished_at": utcnow()},
                SYNC_UNSTORED,
            ):
                log.warning("synchronous job %s failed: no outcome was stored", job.id)
                failed += 1
        return failed

    def _end_overran(
        self, job_id: str, kind: str, payload: JsonDict, reason: str, owner: str
    ) -> int:
        """End a job of a dead replica that was stopping its run at its time limit: the
        time-limit failure (or its fallback plan) its replica did not write; 1 if written.

        The end is computed once: a write that fails keeps it for the next recovery pass,
        which writes the same end (the fallback plan is not made, nor counted, again).
        """
        said = (
            f"its replica {owner} stopped before it wrote the end of this run (stopped at "
            "its job time limit); written by recovery"
        )
        key = (job_id, owner, reason)
        try:
            end = self._overran_ends.get(key)
            if end is None:
                end = self._end_of(job_id, kind, payload, Outcome("failed", error=reason))
                self._overran_ends[key] = end
            written = self._write_end(job_id, kind, end, owner=owner, said=said)
        except Exception:
            log.exception("job %s: its time-limit failure could not be written yet", job_id)
            return 0
        del self._overran_ends[key]
        if not written:
            return 0  # ended by another replica's recovery meanwhile
        log.warning("job %s: its time-limit failure written after a crash of %s", job_id, owner)
        self.metrics.jobs_recovered.labels("failed").inc()
        return 1

    def _recover_one(self, session: Session, job: Job, *, graceful: bool = False) -> int:
        """End or re-queue a running job of a dead replica; 1 if written.

        ``graceful``: its replica's graceful stop marked it stopped, so the job is one that
        stop could not end (its write failed) or whose row was committed after it: it ends
        as the stop ends its jobs, not as a crash (``stopped unexpectedly``, a run counted).
        """
        old_owner = job.owner
        if job.cancel_requested:  # re-queued, the claim would clear the flag and run it again
            values: dict[str, Any] = {
                "status": CANCELLED,
                "error": CANCELLED_AT_STOP,
                "finished_at": utcnow(),
            }
            message = CANCELLED_AT_STOP
            action = "cancelled"
        elif graceful and job.mode == "async":  # as its stop re-queues: the run not counted
            message = REQUEUED_AT_STOP
            values = {**_requeued(), "attempts": Job.attempts - 1}
            action = "requeued"
        elif graceful:  # a synchronous solve, as its stop fails it
            values = {"status": FAILED, "error": SYNC_AT_STOP, "finished_at": utcnow()}
            message = SYNC_AT_STOP
            action = "failed"
        elif job.mode == "async" and job.attempts < job.max_attempts:
            message = (
                f"re-queued: the server running it stopped unexpectedly "
                f"(attempt {job.attempts} of {job.max_attempts})"
            )
            values = _requeued()
            action = "requeued"
        else:
            reason = (
                "interrupted: the server stopped unexpectedly during this synchronous request"
                if job.mode == "sync"
                else f"interrupted: the server running it stopped unexpectedly "
                f"{job.attempts} time(s); not retried again"
            )
            values = {"status": FAILED, "error": reason, "finished_at": utcnow()}
            message = reason
            action = "failed"
        if _transition(
            session, job.id, (Job.status == RUNNING, Job.owner == old_owner), values, message
        ):
            after = "the graceful stop" if graceful else "a crash"
            log.warning("job %s %s after %s of replica %s", job.id, action, after, old_owner)
            self.metrics.jobs_recovered.labels(action).inc()
            return 1
        return 0

    # ----------------------------------------------------------------- threads
    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self._heartbeat()
            except Exception:
                log.exception("heartbeat failed")

    def _heartbeat(self) -> None:
        """Tell the other replicas this one is alive, again if they had found it dead.

        A heartbeat held up past the lease (the database locked, the process paused) lets
        another replica's recovery mark this one stopped and take its running jobs over
        (their runs here are stopped by :meth:`_enforce_limits`). Left marked, every job it
        claimed after would be taken over in turn, an attempt burnt each time: its row is
        marked alive again (written anew if a purge deleted it).
        """
        if self._stop.is_set():  # stop() marks it stopped: not to be undone
            return
        now = utcnow()
        with self.sessions.begin() as session:
            revived = session.execute(
                update(Instance)
                .where(Instance.id == self.instance_id, Instance.stopped_at.is_not(None))
                .values(heartbeat_at=now, stopped_at=None)
            )
            if revived.rowcount == 1:  # type: ignore[attr-defined]
                log.warning(
                    "replica %s was found dead by another replica's recovery (silent past "
                    "its lease; its running jobs were taken over): marked alive again",
                    self.instance_id,
                )
                return
            beat = session.execute(
                update(Instance).where(Instance.id == self.instance_id).values(heartbeat_at=now)
            )
            if beat.rowcount == 0:  # type: ignore[attr-defined]
                log.warning("replica %s had no row any more: written again", self.instance_id)
                session.add(Instance(id=self.instance_id, host=self.host, pid=os.getpid()))

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            busy = bool(self._running)
            self._wake.wait(0.05 if busy else self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._tick()
            except Exception:
                log.exception("job dispatcher tick failed")
                time.sleep(0.5)

    def _tick(self) -> None:
        if _DYING.is_set():  # the process dies: its runs are left to recovery
            return
        self._collect()
        self._enforce_limits()
        self._claim()
        if time.monotonic() - self._last_recovery > self.lease_s / 2:
            self.recover()
        if time.monotonic() - self._last_purge > self.purge_s:
            self._last_purge = time.monotonic()
            self.housekeep()

    def housekeep(self) -> int:
        """Delete what has outlived its time: old finished jobs, the rows of replicas gone,
        then ``housekeeping``'s rows; returns how many rows."""
        total = 0 if self.retention_s is None else self.purge(self.retention_s)
        total += self.purge_replicas()
        for expire in self.housekeeping:
            with self.sessions() as session:
                total += expire(session)
        return total

    def purge(self, older_than_s: float, *, batch: int = 1000) -> int:
        """Delete finished jobs created more than ``older_than_s`` ago; returns how many.

        By creation time, which the (status, created_at) index covers: the look-up does not
        walk every finished job (a job finishes within ``job_timeout_s`` of its creation).
        In batches of ``batch`` rows, one transaction each, so that other writers wait for
        one batch at most. Queued and running jobs are never deleted.
        """
        cutoff = utcnow() - dt.timedelta(seconds=older_than_s)
        total = 0
        while not self._stop.is_set():
            with self.sessions.begin() as session:
                ids = session.scalars(
                    select(Job.id)
                    .where(Job.status.in_(FINISHED), Job.created_at < cutoff)
                    .limit(batch)
                ).all()
                if ids:
                    session.execute(delete(Job).where(Job.id.in_(ids)))
            total += len(ids)
            if len(ids) < batch:
                break
        if total:
            log.info("deleted %d finished jobs older than %g s", total, older_than_s)
        return total

    def purge_replicas(self) -> int:
        """Delete the rows of replicas gone that no job names as its owner; returns how many.

        Every start adds a row, kept while a job names it (the replica that ran it). Gone:
        marked stopped (a graceful stop, or found dead by recovery), or silent for
        ``replica_grace_s`` (a replica killed while it ran no job is never marked; one
        merely paused writes its row again at its next heartbeat). Independent of the job
        retention: with jobs kept for ever, a server in a crash loop still adds a row at
        each start.
        """
        silent_before = utcnow() - dt.timedelta(seconds=self.replica_grace_s)
        named = select(Job.id).where(Job.owner == Instance.id).exists()
        with self.sessions.begin() as session:
            result = session.execute(
                delete(Instance).where(
                    Instance.id != self.instance_id,
                    or_(Instance.stopped_at.is_not(None), Instance.heartbeat_at < silent_before),
                    ~named,
                )
            )
        deleted = int(result.rowcount)  # type: ignore[attr-defined]
        if deleted:
            log.info("deleted %d rows of replicas gone", deleted)
        return deleted

    def _claim(self) -> None:
        while (
            len(self._running) < self.executor.capacity
            and not self._stop.is_set()
            and not _DYING.is_set()
        ):
            with self.sessions.begin() as session:
                depth = self.queue_depth(session)
                self.metrics.queue_depth.set(depth)
                if depth == 0:
                    return
                # a job held by the replica submitting it (its request not yet told it is
                # queued, see submit) is not claimed: the guard is in the claim's UPDATE
                claimable = (Job.status == QUEUED, Job.owner.is_(None))
                candidates = session.scalars(
                    select(Job.id).where(*claimable).order_by(Job.created_at).limit(8)
                ).all()
                claimed: Job | None = None
                for job_id in candidates:
                    res = session.execute(
                        update(Job)
                        .where(Job.id == job_id, *claimable)
                        .values(
                            status=RUNNING,
                            owner=self.instance_id,
                            started_at=utcnow(),
                            attempts=Job.attempts + 1,
                            cancel_requested=False,
                        )
                    )
                    if res.rowcount == 1:  # type: ignore[attr-defined]
                        claimed = session.get(Job, job_id, populate_existing=True)
                        break
                if claimed is None:
                    return
                kind, payload = claimed.kind, dict(claimed.payload)
                timeout_s, job_id = claimed.timeout_s, claimed.id
                attempts = (claimed.attempts, claimed.max_attempts)
                claimed.events = [*claimed.events, event(f"{STARTED_ON}{self.instance_id}")]
            self._start(job_id, kind, payload, timeout_s, attempts)

    def _start(
        self,
        job_id: str,
        kind: str,
        payload: JsonDict,
        timeout_s: float,
        attempts: tuple[int, int] = (1, 1),
    ) -> None:
        """Start a claimed job; one whose start failed is failed, its end written like a
        run's: a write that fails is tried again at the next tick (it is not left running)."""
        execution: Execution
        end: _End | None = None  # a failed start's, not written yet
        try:
            spec = self.registry.get(kind)
            execution = self.executor.start(job_id, spec.target, payload)
        except Exception as err:
            if self._stop.is_set():  # the executor closed under it: stop() re-queues the job
                log.warning("job %s not started: the service is stopping (%s)", job_id, err)
                return
            log.exception("could not start job %s", job_id)
            execution = _Ended(Outcome("failed", error=f"could not start: {err}"))
            end = self._end_of(job_id, kind, payload, execution.outcome)
            try:
                self._write_end(job_id, kind, end)
                return
            except Exception:
                log.exception("job %s: its failed start could not be written yet", job_id)
        if self._stop.is_set():  # started as the service stops: stop() re-queues the job
            execution.kill()
            return
        with self._lock:
            self._running[job_id] = _Running(
                job_id,
                kind,
                execution,
                time.monotonic(),
                timeout_s,
                payload,
                attempt=attempts[0],
                max_attempts=attempts[1],
                end=end,
            )
        self.metrics.jobs_running.set(len(self._running))

    def _collect(self) -> None:
        """Write the end of every run that has ended.

        A run is forgotten only once its end is written: a write that fails (the database
        locked past its busy timeout, a dropped connection) is tried again at the next tick,
        not lost with the job left running for ever.
        """
        for run in list(self._running.values()):
            if run.killed is not None:  # stopped by a limit; its end is still to be written
                self._write_killed(run)
                continue
            if run.end is None:
                outcome = run.execution.poll()
                if outcome is None:
                    progress = run.execution.progress()
                    detail = run.execution.progress_detail()
                    if progress is not None and (
                        progress != run.last_progress or detail != run.last_detail
                    ):
                        self._write_progress(run, progress, detail)
                    continue
                if _DYING.is_set():  # after the poll: a death the clean-up caused
                    return
                run.end = self._end_of(run.job_id, run.kind, run.payload, outcome)
            self._write_end(run.job_id, run.kind, run.end)
            self._forget(run)
            self.metrics.job_duration.labels(run.kind).observe(time.monotonic() - run.started)

    def _write_progress(self, run: _Running, progress: float, detail: JsonDict | None) -> None:
        """Write a run's progress into its row, while the row is this replica's to write.

        A job taken over (recovered by another replica while this one was silent past its
        lease, then claimed again) is left alone, as its end would be: the next
        :meth:`_enforce_limits` stops the run. A write that fails is tried again next tick.
        """
        try:
            with self.sessions.begin() as session:
                session.execute(
                    update(Job)
                    .where(
                        Job.id == run.job_id,
                        Job.owner == self.instance_id,
                        Job.status == RUNNING,
                    )
                    .values(progress=progress, progress_detail=detail)
                )
        except Exception:
            log.exception("the progress of job %s could not be written", run.job_id)
            return
        run.last_progress = progress
        run.last_detail = detail

    def _forget(self, run: _Running) -> None:
        with self._lock:
            self._running.pop(run.job_id, None)
        self.metrics.jobs_running.set(len(self._running))

    def _write_killed(self, run: _Running) -> None:
        """Write the end of a run stopped by a limit: cancelled, or the time-limit failure
        (answered with the fallback plan where the kind has one, computed once)."""
        assert run.killed is not None
        status, reason = run.killed
        if status == FAILED and not run.stop_said:
            # its stop first, each time until written: a server killed before the end is
            # written is then recovered as this failure, not as a crash (raises if it fails)
            self._mark_stopping(run)
        if run.end is None:
            if status == CANCELLED:
                run.end = _End(CANCELLED, None, reason, False, reason)
            else:
                failed = Outcome("failed", error=reason)
                run.end = self._end_of(run.job_id, run.kind, run.payload, failed)
        self._write_end(run.job_id, run.kind, run.end)
        self._forget(run)

    def _mark_stopping(self, run: _Running) -> None:
        """Write into the job's events, once its run is killed at its time limit and before
        its end is computed and written, that it was: a crash of this server before the
        failure is written is then recovered as that failure.

        A write that fails raises (logged): the run's end is not written before it, and
        :meth:`_write_killed` tries it again, first, each time it tries the end (each tick,
        and at stop), so that a kill -9 between the two is still recovered as the time-limit
        failure (it was written once, its failure left unretried while the end was retried:
        such a crash was recovered as a crash, the job re-queued to overrun again).
        """
        assert run.killed is not None
        try:
            with self.sessions.begin() as session:
                _transition(
                    session,
                    run.job_id,
                    (Job.owner == self.instance_id, Job.status == RUNNING),
                    {"events": Job.events},
                    f"{STOPPING_AT_LIMIT}{run.killed[1]}",
                )
        except Exception:
            log.exception(
                "job %s: the stop of its run could not be written yet (tried again, before "
                "its end)",
                run.job_id,
            )
            raise
        run.stop_said = True

    def _enforce_limits(self) -> None:
        if not self._running:
            return
        with self.sessions.begin() as session:
            rows = session.execute(
                select(Job.id, Job.cancel_requested).where(
                    Job.owner == self.instance_id, Job.status == RUNNING
                )
            )
            owned: dict[str, bool] = dict(rows.all())  # job id -> cancel requested
        now = time.monotonic()
        for run in list(self._running.values()):
            if run.killed is not None:  # its end is written by the next _collect
                continue
            if run.job_id not in owned:  # taken over: its end would not be written
                log.warning(
                    "job %s was taken over by recovery (this replica was silent past its "
                    "lease); its run here is stopped",
                    run.job_id,
                )
                run.execution.kill()
                self._forget(run)
                continue
            if owned[run.job_id]:
                run.killed = (CANCELLED, "cancelled by the client while running")
            elif now - run.started > run.timeout_s:
                reason = (
                    f"exceeded the job time limit of {run.timeout_s:g} s (per run; "
                    f"attempt {run.attempt} of {run.max_attempts})"
                )
                run.killed = (FAILED, reason)
            else:
                continue
            # killed first: a write held up by a locked database (its write gate, then its
            # busy timeout) does not keep the run going past its limit meanwhile
            run.execution.kill()
            if run.killed[0] == FAILED:
                try:
                    self._mark_stopping(run)
                except Exception:  # logged: the next _collect writes it, then the end
                    continue
            self._write_killed(run)

    def _end_of(self, job_id: str, kind: str, payload: JsonDict, outcome: Outcome) -> _End:
        """The end a run's ``outcome`` writes: a failure is answered with the kind's fallback
        plan, when it has one (computed here, once a run: counted in the metrics when the end
        is written, see :meth:`_write_end`)."""
        if outcome.status == "done":
            return _End(DONE, outcome.result, None, False, "done", outcome.notes)
        if outcome.status == "bad_input":
            message = f"{outcome.field}: {outcome.error}" if outcome.field else outcome.error
            return _End(FAILED, None, f"bad input: {message}", False, "bad input")
        reason = outcome.error or "unknown failure"
        spec = self.registry.specs.get(kind)
        fallback = spec.fallback_function() if spec is not None else None
        if fallback is not None:
            try:
                result = fallback(payload, reason=reason)
            except Exception as err:
                log.exception("fallback of job %s failed", job_id)
                reason = f"{reason}; the fallback failed too: {err}"
            else:
                note = f"solver failed ({reason}); answered with the fallback plan"
                return _End(DONE, result, reason, True, note, failure=True)
        return _End(FAILED, None, reason, False, f"failed: {reason}", failure=True)

    def _write_end(
        self, job_id: str, kind: str, end: _End, *, owner: str | None = None, said: str = ""
    ) -> bool:
        """Write ``end`` into the job's row if ``owner`` (this replica by default) still runs
        it, after the event ``said`` if any; True if written."""
        status, result, error, note = end.status, end.result, end.error, end.note
        with self.sessions.begin() as session:
            # the row taken (written) first, then read: as read before, it could be
            # recovered by another replica before this write, whose events it would drop
            held = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.owner == (owner or self.instance_id),
                    Job.status == RUNNING,
                )
                .values(finished_at=utcnow())
            )
            if held.rowcount != 1:  # type: ignore[attr-defined]
                return False  # recovered by another replica meanwhile; its answer wins
            job = session.get(Job, job_id, populate_existing=True)
            assert job is not None
            job.fallback = end.fallback
            job.error = error  # a fallback's reason, for the hook's result
            hook = self.on_finished.get(kind)
            if status == DONE and result is not None and hook is not None:
                try:
                    result = hook(session, job, result)
                except Exception as err:
                    log.exception("storing the result of job %s failed", job_id)
                    status, error, result = FAILED, f"could not store the result: {err}", None
                    note = f"failed: {error}"
            job.status = status
            job.result = result
            job.error = error
            job.fallback = end.fallback
            job.progress = 1.0 if status == DONE else job.progress
            job.progress_detail = None  # what it was doing: it has ended
            job.finished_at = utcnow()
            job.events = [
                *job.events,
                *(event(f"read: {n}") for n in end.notes),
                *([event(said)] if said else []),
                event(note),
            ]
        self.metrics.jobs_finished.labels(kind, status).inc()
        if end.failure:  # counted once written: a write tried again is not counted again
            self.metrics.solver_failures.labels(kind, "job").inc()
        if end.fallback:
            self.metrics.fallbacks.labels(kind, "job_failed").inc()
        return True


def _stopped_at_limit(events: Sequence[dict[str, Any]]) -> str | None:
    """The reason its replica gave for stopping the last run of these job events at its
    time limit, None if that run was not being stopped."""
    for entry in reversed(events):
        message = str(entry.get("message", ""))
        if message.startswith(STOPPING_AT_LIMIT):
            return message[len(STOPPING_AT_LIMIT) :]
        if message.startswith(STARTED_ON):
            return None
    return None


def _append_event(session: Session, job_id: str, message: str) -> None:
    """Add an event to a job's list; the transaction has written the row (it holds it), so
    the list read here is the latest and no event another writer adds is lost."""
    events = session.scalar(select(Job.events).where(Job.id == job_id)) or []
    session.execute(update(Job).where(Job.id == job_id).values(events=[*events, event(message)]))


def _withdraw(session: Session, job_id: str, holder: str, reason: str) -> bool:
    """Cancel the job with ``reason`` if it is still queued and held by replica ``holder``
    (submitted ``held``, see :meth:`JobService.submit`); True if cancelled."""
    return _transition(
        session,
        job_id,
        (Job.status == QUEUED, Job.owner == holder),
        {"status": CANCELLED, "owner": None, "finished_at": utcnow(), "error": reason},
        reason,
    )


def _transition(
    session: Session,
    job_id: str,
    where: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
    message: str,
) -> bool:
    """Write ``values`` into the job's row if ``where`` holds there, and then add the event
    ``message`` to its list (read under the row's lock); True if the row was written."""
    result = session.execute(update(Job).where(Job.id == job_id, *where).values(**values))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    _append_event(session, job_id, message)
    return True
