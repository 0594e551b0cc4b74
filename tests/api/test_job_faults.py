"""The job service under database faults and lost ownership, driven tick by tick.

A :class:`JobService` on a fresh database (SQLite; PostgreSQL too when configured, see
``tests/api/conftest.py``) with a fake executor and no threads: each test
calls the dispatcher's steps itself, so a write made to fail fails at the moment it names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.core.config import Settings
from api.core.metrics import Metrics
from api.db.models import Instance, Job, utcnow
from api.db.session import make_engine, make_sessionmaker, migrate
from api.jobs.executors import Outcome
from api.jobs.registry import JsonDict, TaskRegistry, TaskSpec
from api.jobs.service import (
    CANCELLED_AT_STOP,
    SYNC_AT_STOP,
    SYNC_UNSTORED,
    UNCONFIRMED_AT_STOP,
    UNCONFIRMED_IN_ERROR,
    JobService,
    SyncOutcome,
)
from tests.api.conftest import start_on_migrated_copy


def _locked(*_args: Any, **_kwargs: Any) -> Any:
    raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))


@dataclass
class FakeRun:
    """A job 'running' until the test ends it; reports the progress the test sets."""

    outcome: Outcome | None = None
    reported: float | None = None
    killed: bool = False

    def poll(self) -> Outcome | None:
        """The outcome once set."""
        return self.outcome

    def progress(self) -> float | None:
        """The progress the test set."""
        return self.reported

    def progress_detail(self) -> dict[str, Any] | None:
        """No detail."""
        return None

    def kill(self) -> None:
        """Note the kill."""
        self.killed = True


@dataclass
class FakeExecutor:
    """Starts :class:`FakeRun`\\ s (or raises ``fail_start``)."""

    capacity: int = 4
    runs: dict[str, FakeRun] = field(default_factory=dict)
    fail_start: Exception | None = None
    closed: bool = False

    def warm_up(self) -> None:
        """Nothing to warm."""

    def start(self, job_id: str, target: str, payload: JsonDict) -> FakeRun:
        """A new fake run (or the start failure set)."""
        if self.fail_start is not None:
            raise self.fail_start
        run = self.runs[job_id] = FakeRun()
        return run

    def close(self) -> None:
        """Note the close."""
        self.closed = True


@pytest.fixture
def sessions(settings: Settings, migrated_sqlite: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh, migrated database: SQLite (a copy of one migrated once per test
    process, as a service's in the ``client`` fixture), and PostgreSQL when configured."""
    start_on_migrated_copy(settings, migrated_sqlite)
    engine = make_engine(settings.resolved_database_url())
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh, migrated SQLite file (for what only SQLite has: its write gate)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def _service(sessions: sessionmaker[Session], *, fallback: bool = False, **kw: Any) -> JobService:
    registry = TaskRegistry()
    answer = "tests.api.helpers:fallback_task" if fallback else None
    registry.add(TaskSpec("t", "tests.api.helpers:sleep_task", fallback=answer))
    jobs = JobService(
        sessions=sessions, registry=registry, executor=FakeExecutor(), metrics=Metrics(), **kw
    )
    with sessions.begin() as session:  # registered as start() does, without its threads
        session.add(Instance(id=jobs.instance_id, host=jobs.host, pid=1))
    return jobs


def _submit(jobs: JobService, timeout_s: float = 60.0) -> str:
    with jobs.sessions() as session:
        job = jobs.submit(
            session, kind="t", payload={}, key_id=None, seed=1, input_hash="h", timeout_s=timeout_s
        )
        return job.id


def _row(jobs: JobService, job_id: str) -> Job:
    with jobs.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _fail_once(jobs: JobService, name: str) -> list[str]:
    """Make ``jobs.<name>`` raise a database error on its next call; returns the calls made."""
    real: Callable[..., Any] = getattr(jobs, name)
    calls: list[str] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if len(calls) == 1:
            _locked()
        return real(*args, **kwargs)

    setattr(jobs, name, flaky)
    return calls


def _tick(jobs: JobService) -> None:
    """One dispatcher tick; an error ends it, as in the dispatcher's loop (which logs it)."""
    with contextlib.suppress(Exception):  # the loop logs it and ticks again
        jobs._tick()


def test_a_start_failure_whose_write_fails_is_written_at_the_next_tick(
    sessions: sessionmaker[Session],
) -> None:
    """The write of a failed start raised (database locked): the job, forgotten, stayed
    running for ever; no recovery looks at a live replica's own jobs."""
    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    jobs.executor.fail_start = RuntimeError("fork server gone")
    calls = _fail_once(jobs, "_write_end")
    job_id = _submit(jobs)
    _tick(jobs)
    assert calls == ["_write_end"] and _row(jobs, job_id).status == "running"
    for _ in range(3):
        _tick(jobs)
        jobs.recover()
    job = _row(jobs, job_id)
    assert (job.status, job.error) == ("failed", "could not start: fork server gone")
    assert job_id not in jobs._running


def test_a_start_failure_never_written_is_re_queued_at_stop(
    sessions: sessionmaker[Session],
) -> None:
    """The database refused every write of the failed start until the server stopped."""
    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    jobs.executor.fail_start = RuntimeError("fork server gone")
    write_end = jobs._write_end
    jobs._write_end = _locked  # type: ignore[method-assign]
    job_id = _submit(jobs)
    _tick(jobs)
    _tick(jobs)
    jobs._write_end = write_end  # type: ignore[method-assign]
    _fail_once(jobs, "_write_end")  # and once more as it stops
    jobs.stop()
    job = _row(jobs, job_id)
    assert (job.status, job.owner, job.attempts) == ("queued", None, 0)


def _running(jobs: JobService, n: int) -> list[str]:
    """``n`` jobs claimed and running here."""
    job_ids = [_submit(jobs) for _ in range(n)]
    jobs._claim()
    assert set(jobs._running) == set(job_ids)
    return job_ids


def test_a_database_error_while_stopping_does_not_stop_the_shutdown_half_way(
    sessions: sessionmaker[Session],
) -> None:
    """The end of a job that had just answered could not be written: stop() raised there,
    leaving the other job's process running, its row running, the executor open and the
    replica not marked stopped."""
    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    answered, still = _running(jobs, 2)
    jobs.executor.runs[answered].outcome = Outcome("done", result={"value": 1})
    _fail_once(jobs, "_write_end")
    jobs.stop()
    assert jobs.executor.runs[still].killed and jobs.executor.closed
    for job_id in (answered, still):  # the answer not stored: run again
        job = _row(jobs, job_id)
        assert (job.status, job.owner, job.attempts) == ("queued", None, 0)
    with sessions() as session:
        assert session.scalar(select(Instance.stopped_at).where(Instance.id == jobs.instance_id))


def test_a_failed_re_queue_at_stop_still_fails_the_sync_solves_and_closes(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-queue's transaction raised: stop() raised with it, before failing the
    synchronous solves, marking the replica stopped and closing the executor."""
    import api.jobs.service as service

    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    _running(jobs, 1)
    with sessions() as session:
        sync_id = jobs.record_sync_start(
            session, kind="t", payload={}, key_id=None, seed=1, input_hash="h"
        ).id
    append_event = service._append_event
    calls: list[str] = []

    def flaky(session: Session, job_id: str, message: str) -> None:
        calls.append(message)
        if message == "re-queued: server shut down":
            _locked()
        append_event(session, job_id, message)

    monkeypatch.setattr(service, "_append_event", flaky)
    jobs.stop()
    assert "re-queued: server shut down" in calls
    assert jobs.executor.closed
    assert _row(jobs, sync_id).status == "failed"
    with sessions() as session:
        assert session.scalar(select(Instance.stopped_at).where(Instance.id == jobs.instance_id))


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_a_job_its_graceful_stop_could_not_end_is_ended_by_recovery_as_the_stop_would(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The stop's write failed (the database locked) and left the row running for the next
    replica's recovery, which took it for a crash: an async job re-queued 'stopped
    unexpectedly', its run counted; a synchronous solve failed 'stopped unexpectedly'. Now
    its replica's row says it stopped gracefully, and recovery ends the job as the stop
    does (re-queued uncounted; failed with the stop's reason)."""
    import api.jobs.service as service

    jobs = _service(sessions)
    if mode == "async":
        (job_id,) = _running(jobs, 1)
        said = "re-queued: server shut down"
    else:
        with sessions() as session:
            job_id = jobs.record_sync_start(
                session, kind="t", payload={}, key_id=None, seed=1, input_hash="h"
            ).id
        said = SYNC_AT_STOP
    append_event = service._append_event
    failed: list[str] = []

    def flaky(session: Session, job_id: str, message: str) -> None:
        if message == said and not failed:  # the stop's write, not recovery's
            failed.append(message)
            _locked()
        append_event(session, job_id, message)

    monkeypatch.setattr(service, "_append_event", flaky)
    jobs.stop()
    assert failed == [said]
    assert (_row(jobs, job_id).status, _row(jobs, job_id).owner) == ("running", jobs.instance_id)
    assert _service(sessions).recover() == 1
    job = _row(jobs, job_id)
    if mode == "async":
        assert (job.status, job.owner, job.attempts) == ("queued", None, 0)
    else:
        assert (job.status, job.error, job.result) == ("failed", SYNC_AT_STOP, None)
    assert _messages(jobs, job_id)[-1] == said


def test_a_job_of_a_replica_found_dead_after_a_graceful_stop_of_another_is_a_crash(
    sessions: sessionmaker[Session],
) -> None:
    """Only its own stop makes a replica's jobs ended as at a stop: one found dead by a
    recovery (silent past its lease) has its jobs recovered as a crash's."""
    jobs = _service(sessions)
    (job_id,) = _running(jobs, 1)
    with sessions.begin() as session:  # silent since: its lease runs out
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None
        replica.heartbeat_at = utcnow() - dt.timedelta(seconds=2 * jobs.lease_s)
    other = _service(sessions)
    assert other.recover() == 1
    job = _row(jobs, job_id)
    assert (job.status, job.attempts) == ("queued", 1)  # the run counted
    assert "stopped unexpectedly" in _messages(jobs, job_id)[-1]
    with sessions() as session:
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None
        assert replica.stopped_at is not None and not replica.stopped_gracefully
    other.stop()
    with sessions() as session:
        replica = session.get(Instance, other.instance_id)
        assert replica is not None and replica.stopped_gracefully


def test_progress_is_not_written_into_a_job_another_replica_has_taken_over(
    sessions: sessionmaker[Session],
) -> None:
    """Recovery re-queued the job (this replica silent past its lease) and another replica
    claimed it: this one's run still wrote its progress into that replica's row."""
    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    (job_id,) = _running(jobs, 1)
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.owner, job.progress, job.attempts = "other", 0.2, 2
    run = jobs.executor.runs[job_id]
    run.reported = 0.9
    jobs._collect()
    job = _row(jobs, job_id)
    assert (job.owner, job.progress, job.status) == ("other", 0.2, "running")
    jobs._enforce_limits()  # its end would be dropped: the run is stopped
    assert run.killed and job_id not in jobs._running
    jobs.stop()
    assert (_row(jobs, job_id).owner, _row(jobs, job_id).status) == ("other", "running")


def test_progress_of_a_job_still_owned_is_written(sessions: sessionmaker[Session]) -> None:
    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    (job_id,) = _running(jobs, 1)
    jobs.executor.runs[job_id].reported = 0.5
    jobs._collect()
    assert _row(jobs, job_id).progress == 0.5 and job_id in jobs._running


def test_an_answer_holding_nan_or_infinity_ends_its_job(sessions: sessionmaker[Session]) -> None:
    """On PostgreSQL, whose json type refuses NaN and infinities, the write of the end
    failed at every tick: the job stayed running, re-queued at the stop to run again."""
    import math

    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    (job_id,) = _running(jobs, 1)
    answer = {"value": math.nan, "bounds": [-math.inf, math.inf]}
    jobs.executor.runs[job_id].outcome = Outcome("done", result=answer)
    jobs._collect()
    job = _row(jobs, job_id)
    assert job.status == "done" and job_id not in jobs._running
    assert job.result is not None and set(job.result) == {"value", "bounds"}


def test_the_time_limit_is_per_run_and_a_rerun_says_which_run_overran(
    sessions: sessionmaker[Session],
) -> None:
    """A re-queued job (its replica crashed) runs again with its whole limit: each run's
    solver has its whole time limit, so a rerun given only what was left would overrun
    before its solver could answer. The failure names the run that overran."""
    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    job_id = _submit(jobs, timeout_s=10.0)
    long_ago = utcnow() - dt.timedelta(hours=1)
    with sessions.begin() as session:  # its first run took 9 of its 10 s, then crashed
        job = session.get(Job, job_id)
        assert job is not None
        job.attempts, job.created_at = 1, long_ago
    jobs._claim()
    jobs._enforce_limits()
    assert _row(jobs, job_id).status == "running" and not jobs.executor.runs[job_id].killed
    jobs._running[job_id].started -= 10.5  # this run past its 10 s
    jobs._enforce_limits()
    job = _row(jobs, job_id)
    assert (job.status, job.error) == (
        "failed",
        "exceeded the job time limit of 10 s (per run; attempt 2 of 2)",
    )


def _replica(session: Session, replica_id: str, *, stopped: bool, silent_s: float = 0.0) -> None:
    at = utcnow() - dt.timedelta(seconds=silent_s)
    session.add(
        Instance(
            id=replica_id,
            host="elsewhere",
            pid=1,
            heartbeat_at=at,
            stopped_at=at if stopped else None,
        )
    )


def _finished_job(session: Session, job_id: str, owner: str | None, age_s: float) -> None:
    at = utcnow() - dt.timedelta(seconds=age_s)
    session.add(
        Job(
            id=job_id,
            kind="t",
            status="done",
            payload={},
            owner=owner,
            created_at=at,
            finished_at=at,
        )
    )


def test_a_purge_deletes_the_replicas_no_job_names_any_more(
    sessions: sessionmaker[Session],
) -> None:
    """Every start adds a replica row, which was never deleted."""
    day = 86_400.0
    jobs = _service(sessions, retention_s=30 * day)
    with sessions.begin() as session:
        _replica(session, "gone", stopped=True, silent_s=40 * day)  # its jobs all purged
        _replica(session, "kept", stopped=True, silent_s=40 * day)  # a job of it is kept
        _replica(session, "idle", stopped=True)  # stopped, owned nothing
        _replica(session, "killed", stopped=False, silent_s=40 * day)  # kill -9, never marked
        _replica(session, "paused", stopped=False, silent_s=600)  # silent: may come back
        _replica(session, "live", stopped=False)
        _finished_job(session, "old1", "gone", 31 * day)
        _finished_job(session, "old2", "gone", 35 * day)
        _finished_job(session, "old3", "kept", 35 * day)
        _finished_job(session, "new", "kept", day)
    assert jobs.housekeep() == 3 + 3  # jobs, replica rows
    with sessions() as session:
        left = set(session.scalars(select(Instance.id)))
        assert session.scalar(select(func.count()).select_from(Job)) == 1
    assert left == {jobs.instance_id, "kept", "paused", "live"}


@pytest.mark.parametrize("retention_s", [None, 30 * 86_400.0])
def test_the_rows_of_replicas_gone_are_deleted_whatever_the_job_retention(
    sessions: sessionmaker[Session], retention_s: float | None
) -> None:
    """With ``job_retention_s=0`` (no job purge) the rows of replicas gone were kept for
    ever (a server in a crash loop adds one every few seconds); a replica killed while it
    owned no job (never marked stopped) kept its row as long as the job retention."""
    day = 86_400.0
    jobs = _service(sessions, retention_s=retention_s)
    assert jobs.replica_grace_s == day
    with sessions.begin() as session:
        _replica(session, "idle", stopped=True)  # stopped, owned nothing
        _replica(session, "killed", stopped=False, silent_s=day + 60)  # kill -9, never marked
        _replica(session, "paused", stopped=False, silent_s=600)  # silent: may come back
        _replica(session, "named", stopped=True, silent_s=40 * day)  # a job of it is kept
        _replica(session, "live", stopped=False)
        _finished_job(session, "recent", "named", day)
    assert jobs.housekeep() == 2
    with sessions() as session:
        left = set(session.scalars(select(Instance.id)))
    assert left == {jobs.instance_id, "paused", "named", "live"}


def test_a_replica_found_dead_while_alive_revives_and_keeps_the_jobs_it_claims_after(
    sessions: sessionmaker[Session],
) -> None:
    """Its heartbeat held up past the lease (the database locked), another replica's
    recovery marked it stopped and took its job over. It went on claiming jobs, each then
    taken over again by the next recovery (an attempt burnt each time): a job failed
    'stopped unexpectedly 2 time(s)' with no replica ever stopped."""
    here, other = _service(sessions), _service(sessions)
    assert isinstance(here.executor, FakeExecutor)
    (first,) = _running(here, 1)
    with sessions.begin() as session:  # silent past its lease
        replica = session.get(Instance, here.instance_id)
        assert replica is not None
        replica.heartbeat_at = utcnow() - dt.timedelta(seconds=2 * here.lease_s)
    assert other.recover() == 1  # found dead: its job re-queued
    other._claim()
    here._heartbeat()  # its heartbeat gets through again
    later = _submit(here)
    here._claim()
    here._enforce_limits()  # the run of the job taken over is stopped, the new one kept
    assert here.executor.runs[first].killed and set(here._running) == {later}
    assert other.recover() == 0
    assert (_row(here, later).owner, _row(here, later).status) == (here.instance_id, "running")
    assert _row(here, first).owner == other.instance_id


def test_a_replica_whose_row_was_purged_writes_it_again(sessions: sessionmaker[Session]) -> None:
    """Found dead and named by no job, its row was deleted by a purge as it lived on."""
    jobs = _service(sessions)
    with sessions.begin() as session:
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None
        session.delete(replica)
    jobs._heartbeat()
    with sessions() as session:
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None and replica.stopped_at is None


# ----------------------------------------------------------------- events of concurrent writers
OTHER = "written by another writer"


def _messages(jobs: JobService, job_id: str) -> list[str]:
    return [e["message"] for e in _row(jobs, job_id).events]


def _append_elsewhere(sessions: sessionmaker[Session], job_id: str, *, busy_s: float) -> None:
    """Append :data:`OTHER` to the job's events on a connection of its own (another writer),
    waiting up to ``busy_s`` for the row: raises OperationalError past it."""
    engine = sessions.kw["bind"]
    entry = json.dumps({"at": utcnow().isoformat(), "message": OTHER})
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(busy_s * 1000)}ms'"))
            conn.execute(
                text(
                    "UPDATE jobs SET events = (events::jsonb || jsonb_build_array("
                    "CAST(:entry AS jsonb)))::json WHERE id = :id"
                ),
                {"entry": entry, "id": job_id},
            )
        return
    # not through the engine: its write gate is held by the service, in this very thread
    conn = sqlite3.connect(engine.url.database, timeout=busy_s)
    try:
        conn.execute(
            "UPDATE jobs SET events = json_insert(events, '$[#]', json(?)) WHERE id = ?",
            (entry, job_id),
        )
        conn.commit()
    finally:
        conn.close()


@contextlib.contextmanager
def _another_writer_at(
    monkeypatch: pytest.MonkeyPatch, sessions: sessionmaker[Session], job_id: str, message: str
) -> Iterator[list[str]]:
    """Another writer appends an event to the job as the service makes its event ``message``
    (after it read the row): at once if the database lets it, else (the service holds the
    row) once the service's write is over. Yields what happened: 'between' or 'after'."""
    import api.jobs.service as service

    real = service.event
    seen: list[str] = []

    def hooked(text: str) -> dict[str, str]:
        if text.startswith(message) and not seen:
            try:
                _append_elsewhere(sessions, job_id, busy_s=0.2)
                seen.append("between")
            except (sqlite3.OperationalError, OperationalError):  # the service holds the row
                seen.append("after")
        return real(text)

    monkeypatch.setattr(service, "event", hooked)
    yield seen
    monkeypatch.setattr(service, "event", real)
    assert seen, f"no event {message!r} was made"
    if seen == ["after"]:
        _append_elsewhere(sessions, job_id, busy_s=5.0)


def test_a_cancel_keeps_the_events_written_since_the_request_read_the_job(
    sessions: sessionmaker[Session],
) -> None:
    """The cancel of a queued job wrote back the events of the row as its request had read
    it: the re-queue written in between (its replica stopped) was lost."""
    jobs = _service(sessions)
    (job_id,) = _running(jobs, 1)
    with sessions() as session:
        job = session.get(Job, job_id)  # the DELETE request reads the job, running
        assert job is not None
        jobs.stop()  # its replica stops: re-queued
        job = jobs.cancel(session, job)
        assert job.status == "cancelled"
    assert _messages(jobs, job_id)[-2:] == ["re-queued: server shut down", "cancelled while queued"]


Hook = Callable[[str, str], contextlib.AbstractContextManager[list[str]]]


def _cancel_queued(jobs: JobService, hook: Hook) -> str:
    job_id = _submit(jobs)
    with jobs.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        with hook(job_id, "cancelled while queued"):
            jobs.cancel(session, job)
    return job_id


def _cancel_at_stop(jobs: JobService, hook: Hook) -> str:
    (job_id,) = _running(jobs, 1)
    with jobs.sessions.begin() as session:  # its DELETE reached the row as it stopped
        job = session.get(Job, job_id)
        assert job is not None
        job.cancel_requested = True
    with hook(job_id, CANCELLED_AT_STOP):
        jobs.stop()
    return job_id


def _re_queue_at_stop(jobs: JobService, hook: Hook) -> str:
    (job_id,) = _running(jobs, 1)
    with hook(job_id, "re-queued: server shut down"):
        jobs.stop()
    return job_id


def _end(jobs: JobService, hook: Hook) -> str:
    assert isinstance(jobs.executor, FakeExecutor)
    (job_id,) = _running(jobs, 1)
    jobs.executor.runs[job_id].outcome = Outcome("done", result={"value": 1})
    with hook(job_id, "done"):
        jobs._collect()
    return job_id


def _recovery(jobs: JobService, hook: Hook) -> str:
    (job_id,) = _running(jobs, 1)
    with jobs.sessions.begin() as session:  # its replica found dead
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None
        replica.stopped_at = utcnow()
    other = _service(jobs.sessions)
    with hook(job_id, "re-queued: the server running it stopped"):
        assert other.recover() == 1
    return job_id


def _sync_start(jobs: JobService) -> tuple[Session, Job]:
    session = jobs.sessions()
    job = jobs.record_sync_start(session, kind="t", payload={}, key_id=None, seed=1, input_hash="h")
    return session, job


def _sync_end(jobs: JobService, hook: Hook) -> str:
    session, job = _sync_start(jobs)
    with session, hook(job.id, "done"):
        jobs.record_sync_end(session, job, SyncOutcome("done", {"value": 1}))
    return job.id


def _sync_at_stop(jobs: JobService, hook: Hook) -> str:
    session, job = _sync_start(jobs)
    session.close()
    with hook(job.id, SYNC_AT_STOP):
        jobs.stop()
    return job.id


def _sync_unstored(jobs: JobService, hook: Hook) -> str:
    session, job = _sync_start(jobs)
    session.close()
    jobs.sync_stale_s = 0.0
    with hook(job.id, SYNC_UNSTORED):
        assert jobs.recover() == 1
    return job.id


@pytest.mark.parametrize(
    "write",
    [
        _cancel_queued,
        _cancel_at_stop,
        _re_queue_at_stop,
        _end,
        _recovery,
        _sync_end,
        _sync_at_stop,
        _sync_unstored,
    ],
)
def test_an_event_another_writer_appends_as_the_service_writes_one_is_kept(
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    write: Callable[[JobService, Hook], str],
) -> None:
    """Each write of an event read the job's event list, then wrote it back with its event
    added: an event another writer appended in between was lost (the read was not under the
    row's lock: SQLite's driver begins its transaction at the first write, PostgreSQL's
    READ COMMITTED does not lock a row it reads)."""
    jobs = _service(sessions)
    made: list[str] = []

    def hook(job_id: str, message: str) -> contextlib.AbstractContextManager[list[str]]:
        made.append(message)
        return _another_writer_at(monkeypatch, sessions, job_id, message)

    job_id = write(jobs, hook)
    messages = _messages(jobs, job_id)
    assert OTHER in messages, messages
    assert any(m.startswith(made[0]) for m in messages), messages


def test_a_synchronous_outcome_recorded_after_the_stop_failed_its_job_is_not_stored(
    sessions: sessionmaker[Session],
) -> None:
    """The stop failed the running synchronous solve (its request answered 503, `marked
    failed`), and its outcome, recorded just after, overwrote that failure with `done`."""
    jobs = _service(sessions)
    session, job = _sync_start(jobs)
    with session:
        jobs.stop()
        assert jobs.record_sync_end(session, job, SyncOutcome("done", {"value": 1})) is False
        assert (job.status, job.error) == ("failed", SYNC_AT_STOP)  # read as it is
    row = _row(jobs, job.id)
    assert (row.status, row.error, row.result) == ("failed", SYNC_AT_STOP, None)
    assert _messages(jobs, job.id)[-1] == SYNC_AT_STOP


def _fallbacks(jobs: JobService) -> float:
    """How many fallback answers of failed jobs this service computed."""
    value = jobs.metrics.registry.get_sample_value(
        "dispatchlab_fallback_plans_total", {"endpoint": "t", "reason": "job_failed"}
    )
    return value or 0.0


def _overrun(jobs: JobService, timeout_s: float = 10.0, *, attempt: int = 1) -> str:
    """A job on its ``attempt``-th run, claimed here and now past its time limit."""
    job_id = _submit(jobs, timeout_s=timeout_s)
    with jobs.sessions.begin() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.attempts = attempt - 1  # its earlier runs crashed
    jobs._claim()
    jobs._running[job_id].started -= timeout_s + 0.5
    return job_id


def _ended_at_the_limit(jobs: JobService, job_id: str, reason: str, *, fallback: bool) -> None:
    """The job ended as a run stopped at its time limit ends: its fallback plan, else failed."""
    job = _row(jobs, job_id)
    if fallback:
        assert (job.status, job.fallback, job.error) == ("done", True, reason)
        assert job.result == {"value": "fallback", "reason": reason}
        assert _messages(jobs, job_id)[-1] == (
            f"solver failed ({reason}); answered with the fallback plan"
        )
    else:
        assert (job.status, job.fallback, job.error, job.result) == ("failed", False, reason, None)
        assert _messages(jobs, job_id)[-1] == f"failed: {reason}"


@pytest.mark.parametrize("fallback", [False, True])
@pytest.mark.parametrize("attempt", [1, 2])
def test_a_run_stopped_at_its_time_limit_whose_failure_was_not_written_ends_so_at_stop(
    sessions: sessionmaker[Session], attempt: int, fallback: bool
) -> None:
    """Its failure could not be written (the database locked) up to the server's stop. It
    was re-queued as if it had not run (``attempts - 1``), overrunning again at every
    restart; then re-queued with the run counted on an earlier attempt (a rerun a run
    stopped at its limit never gets otherwise) and failed without the fallback plan of a
    time-limit failure on its last. Now it ends as the dispatcher would have ended it, its
    fallback plan computed once."""
    jobs = _service(sessions, fallback=fallback)
    assert isinstance(jobs.executor, FakeExecutor)
    job_id = _overrun(jobs, attempt=attempt)
    write_end = jobs._write_end
    jobs._write_end = _locked  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        jobs._enforce_limits()
    assert jobs.executor.runs[job_id].killed and _row(jobs, job_id).status == "running"
    jobs._write_end = write_end  # type: ignore[method-assign]
    calls = _fail_once(jobs, "_write_end")  # still locked as stop() tries again at first
    jobs.stop()
    assert calls  # stop() tried, and failed, first
    reason = f"exceeded the job time limit of 10 s (per run; attempt {attempt} of 2)"
    _ended_at_the_limit(jobs, job_id, reason, fallback=fallback)
    assert _row(jobs, job_id).attempts == attempt
    assert _fallbacks(jobs) == float(fallback)


def test_a_time_limit_failure_never_written_is_left_to_recovery_which_writes_it(
    sessions: sessionmaker[Session],
) -> None:
    """The database refused every write up to the end of the stop: the row stays running
    (the next replica's recovery ends it), not re-queued to overrun again."""
    jobs = _service(sessions, fallback=True)
    job_id = _overrun(jobs)
    jobs._write_end = _locked  # type: ignore[method-assign]
    _tick(jobs)
    jobs.stop()
    assert _row(jobs, job_id).status == "running"
    after = _service(sessions, fallback=True)
    assert after.recover() == 1
    reason = "exceeded the job time limit of 10 s (per run; attempt 1 of 2)"
    _ended_at_the_limit(after, job_id, reason, fallback=True)


@pytest.mark.parametrize("fallback", [False, True])
@pytest.mark.parametrize("attempt", [1, 2])
def test_a_run_stopped_at_its_time_limit_whose_server_was_killed_is_recovered_so(
    sessions: sessionmaker[Session], attempt: int, fallback: bool
) -> None:
    """Its server was killed (kill -9) between the run's kill and the write of its failure:
    recovery re-queued it as a crash ('stopped unexpectedly'; a run stopped at its limit is
    not run again otherwise) or failed it as one on its last attempt. The run's stop is
    written before the kill, and recovery ends the job as the time-limit failure it was."""
    jobs = _service(sessions, fallback=fallback)
    assert isinstance(jobs.executor, FakeExecutor)
    job_id = _overrun(jobs, attempt=attempt)
    jobs._write_killed = lambda run: None  # type: ignore[method-assign]  # killed right after
    jobs._enforce_limits()
    assert jobs.executor.runs[job_id].killed and _row(jobs, job_id).status == "running"
    with sessions.begin() as session:  # silent since: its lease runs out
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None
        replica.heartbeat_at = utcnow() - dt.timedelta(seconds=2 * jobs.lease_s)
    other = _service(sessions, fallback=fallback)
    assert other.recover() == 1
    reason = f"exceeded the job time limit of 10 s (per run; attempt {attempt} of 2)"
    _ended_at_the_limit(other, job_id, reason, fallback=fallback)
    messages = _messages(other, job_id)
    assert f"stopping the run: {reason}" in messages
    assert not any("unexpectedly" in m for m in messages), messages
    assert other.recover() == 0


def test_a_run_at_its_time_limit_is_killed_without_waiting_for_a_locked_database(
    sqlite_sessions: sessionmaker[Session],
) -> None:
    """The `stopping the run` event was written before the kill: with the database locked
    (its write gate held by another writer), the run went on past its limit for as long as
    that write waited (up to 30 s for the gate, then SQLite's busy timeout). It is killed
    first now, and the event and the end are written once the database lets them."""
    from api.db.session import write_gate

    sessions = sqlite_sessions  # the locked database is SQLite's write gate, held here
    jobs = _service(sessions, fallback=True)
    assert isinstance(jobs.executor, FakeExecutor)
    job_id = _overrun(jobs)
    run = jobs.executor.runs[job_id]
    gate = write_gate(sessions.kw["bind"].url.database)
    assert gate.acquire()  # another writer holds the database
    worker = threading.Thread(target=jobs._enforce_limits, daemon=True)
    try:
        worker.start()
        until = time.monotonic() + 5.0
        while not run.killed and time.monotonic() < until:
            time.sleep(0.01)
        killed, waiting = run.killed, worker.is_alive()
    finally:
        gate.release()
        worker.join(timeout=60.0)
    assert killed and waiting  # killed while its writes wait for the database
    assert not worker.is_alive()
    reason = "exceeded the job time limit of 10 s (per run; attempt 1 of 2)"
    _ended_at_the_limit(jobs, job_id, reason, fallback=True)
    assert f"stopping the run: {reason}" in _messages(jobs, job_id)


def _stop_event_locked(monkeypatch: pytest.MonkeyPatch, times: int) -> list[str]:
    """Make the next ``times`` writes of a `stopping the run` event fail (database locked);
    returns the writes of it tried."""
    import api.jobs.service as service

    real = service._transition
    tried: list[str] = []

    def flaky(session: Session, job_id: str, where: Any, values: Any, message: str) -> bool:
        if message.startswith("stopping the run: "):
            tried.append(message)
            if len(tried) <= times:
                _locked()
        return real(session, job_id, where, values, message)

    monkeypatch.setattr(service, "_transition", flaky)
    return tried


def test_a_stop_event_whose_write_failed_is_written_again_before_a_crash(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `stopping the run` event's write failed (the database locked) and was never tried
    again, while the end was tried at each tick: the server killed (kill -9) before the end
    was written, recovery took the run for a crash and re-queued it to overrun again. The
    event is now tried again, first, each time the end is."""
    jobs = _service(sessions, fallback=True)
    job_id = _overrun(jobs)
    tried = _stop_event_locked(monkeypatch, times=1)
    jobs._write_end = _locked  # type: ignore[method-assign]  # the end's writes fail too
    with contextlib.suppress(OperationalError):
        jobs._enforce_limits()  # killed; its stop could not be written
    with contextlib.suppress(OperationalError):
        jobs._collect()  # the next tick: its stop is written, its end is not
    assert _row(jobs, job_id).status == "running"
    with sessions.begin() as session:  # killed (kill -9): silent since, its lease runs out
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None
        replica.heartbeat_at = utcnow() - dt.timedelta(seconds=2 * jobs.lease_s)
    other = _service(sessions, fallback=True)
    assert other.recover() == 1
    reason = "exceeded the job time limit of 10 s (per run; attempt 1 of 2)"
    _ended_at_the_limit(other, job_id, reason, fallback=True)
    messages = _messages(other, job_id)
    assert f"stopping the run: {reason}" in messages
    assert not any("unexpectedly" in m for m in messages), messages
    assert len(tried) == 2  # failed, then written by the next tick


@pytest.mark.parametrize("written_by", ["next_tick", "stop"])
def test_a_stop_event_whose_write_failed_is_written_before_the_end(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, written_by: str
) -> None:
    """Its write failed once: the end was written without it (the job's events not saying
    the run was being stopped), and an end's write failing then was not covered by it."""
    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    job_id = _overrun(jobs)
    tried = _stop_event_locked(monkeypatch, times=1)
    jobs._enforce_limits()  # killed; its stop could not be written (logged), nor its end
    assert jobs.executor.runs[job_id].killed and _row(jobs, job_id).status == "running"
    if written_by == "stop":
        jobs.stop()
    else:
        jobs._collect()
    reason = "exceeded the job time limit of 10 s (per run; attempt 1 of 2)"
    _ended_at_the_limit(jobs, job_id, reason, fallback=False)
    messages = _messages(jobs, job_id)
    assert messages[-2:] == [f"stopping the run: {reason}", f"failed: {reason}"], messages
    assert len(tried) == 2 and not jobs._running


def _job_failures(jobs: JobService) -> float:
    """How many failed runs of jobs this service counted."""
    value = jobs.metrics.registry.get_sample_value(
        "dispatchlab_solver_failures_total", {"solver": "t", "reason": "job"}
    )
    return value or 0.0


@pytest.mark.parametrize("fallback", [False, True])
def test_a_time_limit_end_recovery_could_not_write_is_computed_and_counted_once(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, fallback: bool
) -> None:
    """Recovery's write of the time-limit end of a killed server's run failed (the database
    locked): its next pass made the fallback plan again and counted it, and the failure,
    again in the metrics. The end is now kept until written, and counted once written."""
    import tests.api.helpers as helpers

    made: list[str] = []
    real = helpers.fallback_task

    def counting(payload: dict[str, Any], *, reason: str) -> dict[str, Any]:
        made.append(reason)
        return real(payload, reason=reason)

    monkeypatch.setattr(helpers, "fallback_task", counting)
    jobs = _service(sessions, fallback=fallback)
    job_id = _overrun(jobs)
    jobs._write_killed = lambda run: None  # type: ignore[method-assign]  # killed right after
    jobs._enforce_limits()
    with sessions.begin() as session:  # silent since: its lease runs out
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None
        replica.heartbeat_at = utcnow() - dt.timedelta(seconds=2 * jobs.lease_s)
    other = _service(sessions, fallback=fallback)
    calls = _fail_once(other, "_write_end")
    assert other.recover() == 0  # its write failed: left for the next pass
    assert _row(other, job_id).status == "running"
    assert (_fallbacks(other), _job_failures(other)) == (0.0, 0.0)  # not written yet
    assert other.recover() == 1
    assert calls == ["_write_end", "_write_end"]
    reason = "exceeded the job time limit of 10 s (per run; attempt 1 of 2)"
    _ended_at_the_limit(other, job_id, reason, fallback=fallback)
    assert made == ([reason] if fallback else [])  # made once, by the first pass
    assert (_fallbacks(other), _job_failures(other)) == (float(fallback), 1.0)
    assert other.recover() == 0 and not other._overran_ends


def test_an_earlier_run_stopped_at_its_limit_does_not_make_a_crash_a_time_limit_failure(
    sessions: sessionmaker[Session],
) -> None:
    """Only the last run's stop counts: a rerun that crashed is re-queued as a crash."""
    jobs = _service(sessions)
    job_id = _submit(jobs)
    with sessions.begin() as session:  # its first run was being stopped at its limit
        job = session.get(Job, job_id)
        assert job is not None
        job.events = [
            *job.events,
            {"at": "2026-12-04T00:00:00", "message": "started on replica a"},
            {"at": "2026-12-04T00:00:00", "message": "stopping the run: exceeded it"},
            {"at": "2026-12-04T00:00:00", "message": "re-queued: server shut down"},
        ]
    jobs._claim()  # its second run, then its replica is found dead
    with sessions.begin() as session:
        replica = session.get(Instance, jobs.instance_id)
        assert replica is not None
        replica.stopped_at = utcnow()
    assert _service(sessions).recover() == 1
    job = _row(jobs, job_id)
    assert job.status == "queued"
    assert "stopped unexpectedly" in _messages(jobs, job_id)[-1]


def test_a_synchronous_record_put_after_the_stop_closed_its_writer_is_logged_and_counted(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """The end of a fast-lane solve recorded after the service's stop had closed the job
    records' writer was queued for a thread that had ended: lost without a word (and a
    read of its job waited 5 s for it). It is logged, naming the job, and counted."""
    import logging

    registry = TaskRegistry()
    registry.add(TaskSpec("t", "tests.api.helpers:sleep_task"))
    jobs = JobService(
        sessions=sessions, registry=registry, executor=FakeExecutor(), metrics=Metrics()
    )
    jobs.start()
    jobs.stop()
    with caplog.at_level(logging.ERROR, logger="api.audit"):
        jobs.record_sync(
            job_id="late",
            kind="t",
            payload={},
            key_id=None,
            seed=None,
            input_hash="h",
            started_at=utcnow(),
            outcome=SyncOutcome("done", {"value": 1}),
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "api.audit"]
    assert lines == [
        "record of job late (t, done) not written: put after its writer closed "
        "(the service is stopping)"
    ]
    lost = jobs.metrics.registry.get_sample_value(
        "dispatchlab_rows_not_written_total", {"table": "jobs", "reason": "closed"}
    )
    assert lost == 1.0
    t0 = time.monotonic()
    jobs.settle_records("late")  # nothing to wait for: it will not be written
    assert time.monotonic() - t0 < 1.0


def test_an_executor_that_fails_to_close_is_logged_and_the_stop_completes(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """The executor's close raised (its fork server, Ray): stop() raised with it, the
    replica left among this process's live ones, and the service's later stop steps undone."""
    from api.jobs.service import _LOCAL_INSTANCES

    jobs = _service(sessions)
    assert isinstance(jobs.executor, FakeExecutor)
    _LOCAL_INSTANCES.add(jobs.instance_id)  # as start() does

    def close() -> None:
        raise OSError("fork server gone")

    jobs.executor.close = close  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="api.jobs"):
        jobs.stop()
    assert jobs.instance_id not in _LOCAL_INSTANCES
    assert any("fork server gone" in (r.exc_text or "") for r in caplog.records)


def test_every_step_of_the_services_stop_runs_whatever_an_earlier_one_raised(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The job service's stop raised (a database error): stop_service raised with it, the
    audit writer left open (its rows lost), the solver pool, the engine and the pyomo
    worker processes left as they were."""
    import solvers.allocation.pyomo_worker as pyomo_worker
    from api.main import create_app, start_service, stop_service

    ctx = create_app(settings).state.ctx
    start_service(ctx)
    assert ctx.jobs is not None and ctx.audit is not None and ctx.solver_pool is not None
    stop_jobs, stop_audit, ended = ctx.jobs.stop, ctx.audit.close, []
    monkeypatch.setattr(ctx.jobs, "stop", lambda: (stop_jobs(), _locked()))
    monkeypatch.setattr(ctx.audit, "close", lambda: (stop_audit(), _locked()))
    monkeypatch.setattr(pyomo_worker, "end_workers", lambda: ended.append(True))
    with caplog.at_level("ERROR", logger="api"):
        stop_service(ctx)
    assert ctx.audit._closed and ctx.solver_pool._shutdown and ended == [True]
    errors = [r.exc_text or "" for r in caplog.records if r.name == "api"]
    assert len(errors) == 2 and all("database is locked" in e for e in errors)


def test_a_second_stop_of_the_service_does_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop without a start left to match (a second stop) ran the whole stop again, and
    the count of starts went below zero, so the next start was taken as a nested one."""
    import solvers.allocation.pyomo_worker as pyomo_worker
    from api.main import create_app, start_service, stop_service

    ctx = create_app(settings).state.ctx
    start_service(ctx)
    stop_service(ctx)
    ended: list[bool] = []
    monkeypatch.setattr(pyomo_worker, "end_workers", lambda: ended.append(True))
    stop_service(ctx)
    assert ended == [] and ctx.starts == 0
    start_service(ctx)  # a full start again, not a nested one
    try:
        assert ctx.ready and ctx.starts == 1
    finally:
        stop_service(ctx)


def _submit_held(jobs: JobService) -> str:
    with jobs.sessions() as session:
        job = jobs.submit(
            session, kind="t", payload={}, key_id=None, seed=1, input_hash="h",
            timeout_s=60.0, held=True,
        )  # fmt: skip
        return job.id


def _held_row(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    assert job is not None
    return job


def test_a_held_job_is_never_claimed_and_is_cancelled_once_no_submit_can_confirm_it(
    sessions: sessionmaker[Session],
) -> None:
    """A job submitted held (its request not yet told it is queued: the server's cut may
    still answer that it will not run) was queued at once: a dispatcher could start it in
    the milliseconds before its submit cancelled it, and one whose submit never went on (its
    server ended first) stayed queued and ran on the next start."""
    jobs, other, gone = _service(sessions), _service(sessions), _service(sessions)
    mine, theirs, orphan = _submit_held(jobs), _submit_held(other), _submit_held(gone)
    for service in (jobs, other, gone):
        service._claim()
    assert all(not s.executor.runs for s in (jobs, other, gone))  # type: ignore[attr-defined]
    with sessions.begin() as session:  # its server stopped before its submit went on
        replica = session.get(Instance, gone.instance_id)
        assert replica is not None
        replica.stopped_at = utcnow()
    assert jobs.recover() == 1  # that one alone: the others' submits may still confirm them
    assert (_row(jobs, orphan).status, _row(jobs, orphan).error) == (
        "cancelled",
        UNCONFIRMED_AT_STOP,
    )
    assert {_row(jobs, j).status for j in (mine, theirs)} == {"queued"}
    with sessions() as session:  # its submit confirms it: any replica claims it now
        assert other.confirm(session, _held_row(session, theirs))
    jobs._claim()
    assert set(jobs.executor.runs) == {theirs}  # type: ignore[attr-defined]
    jobs._holding.discard(mine)  # its submit gave it up (its request ended in error)
    assert jobs.recover() == 1
    assert (_row(jobs, mine).status, _row(jobs, mine).error) == ("cancelled", UNCONFIRMED_IN_ERROR)
    with sessions() as session:  # too late to confirm: its request is answered in error
        late = _held_row(session, mine)
        assert not jobs.confirm(session, late)
        assert late.status == "cancelled"  # read again
        assert not gone.withdraw(session, orphan, "again")  # cancelled once
    assert [e["message"] for e in _row(jobs, orphan).events] == ["queued", UNCONFIRMED_AT_STOP]
    assert _row(jobs, orphan).started_at is None


def test_the_stop_cancels_the_jobs_its_submits_never_confirmed(
    sessions: sessionmaker[Session],
) -> None:
    """A job committed held whose submit's thread had not gone on when the service stopped
    (its request answered 503 by the server's cut) stayed queued for the next start."""
    jobs = _service(sessions)
    held, confirmed = _submit_held(jobs), _submit_held(jobs)
    with sessions() as session:
        assert jobs.confirm(session, _held_row(session, confirmed))
    jobs.stop()
    assert (_row(jobs, held).status, _row(jobs, held).error) == ("cancelled", UNCONFIRMED_AT_STOP)
    assert (_row(jobs, confirmed).status, _row(jobs, confirmed).owner) == ("queued", None)
