"""The job machinery: worker processes, failures, fallback, cancel, time limit, crash recovery."""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.context import ServiceContext
from api.core.config import Settings
from api.db.models import IdempotencyRecord, Instance, Job, utcnow
from api.jobs import QueueFull
from tests.api.conftest import app_of, run_fork_server_script, wait_for


def _ctx(client: TestClient) -> ServiceContext:
    ctx: ServiceContext = app_of(client).state.ctx
    return ctx


def _submit(client: TestClient, kind: str, payload: dict[str, Any], **kw: Any) -> str:
    ctx = _ctx(client)
    assert ctx.sessions is not None and ctx.jobs is not None
    with ctx.sessions() as session:
        job = ctx.jobs.submit(
            session,
            kind=kind,
            payload=payload,
            key_id=None,
            seed=1,
            input_hash="h",
            timeout_s=kw.get("timeout_s", 60.0),
        )
        return job.id


def _queued_row(client: TestClient, kind: str, payload: dict[str, Any]) -> str:
    """Insert a queued job row, as another replica's submit writes it; its id."""
    from api.jobs.service import event, new_id

    ctx = _ctx(client)
    assert ctx.sessions is not None
    job_id = new_id()
    with ctx.sessions.begin() as session:
        session.add(
            Job(
                id=job_id,
                kind=kind,
                mode="async",
                status="queued",
                payload=payload,
                input_hash="h",
                timeout_s=60.0,
                max_attempts=2,
                events=[event("queued")],
            )
        )
    return job_id


def _finished(client: TestClient, job_id: str, admin: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}", headers=admin).json(),
        lambda b: b["status"] in {"done", "failed", "cancelled"},
    )
    return body


def test_job_runs_in_a_worker_process_and_reports_its_result(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    job_id = _submit(client, "test_sleep", {"seconds": 0.2, "value": 42})
    body = _finished(client, job_id, keys["admin"])
    assert body["status"] == "done"
    assert body["result"]["value"] == 42
    assert body["progress"] == 1.0
    assert body["attempts"] == 1
    assert body["links"]["self"] == f"/v1/jobs/{job_id}"
    import os

    assert body["result"]["pid"] != os.getpid()


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        ("test_crash", "failed", "solver error: RuntimeError: solver exploded"),
        ("test_segfault", "failed", "worker process died (exit code -11)"),
        ("test_bad_input", "failed", "bad input: scenario.orders.0: unknown node 'x'"),
    ],
)
def test_a_failing_job_ends_failed_with_the_reason(
    client: TestClient, keys: dict[str, dict[str, str]], kind: str, status: str, reason: str
) -> None:
    body = _finished(client, _submit(client, kind, {}), keys["admin"])
    assert body["status"] == status
    assert reason in body["error"]
    assert client.get("/healthz").status_code == 200  # the server survived


def test_a_crashing_job_with_a_fallback_answers_with_it(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = _finished(client, _submit(client, "test_crash_fallback", {}), keys["admin"])
    assert body["status"] == "done"
    assert body["fallback"] is True
    assert body["result"] == {"value": "fallback", "reason": body["error"]}
    assert "solver exploded" in body["error"]
    metrics = client.get("/metrics").text
    assert 'dispatchlab_fallback_plans_total{endpoint="test_crash_fallback"' in metrics


def test_job_over_its_time_limit_is_killed(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    job_id = _submit(client, "test_sleep", {"seconds": 30}, timeout_s=0.5)
    body = _finished(client, job_id, keys["admin"])
    assert body["status"] == "failed"
    assert "exceeded the job time limit of 0.5 s" in body["error"]


def test_cancel_a_running_job(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    job_id = _submit(client, "test_sleep", {"seconds": 30})
    wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).json()["status"],
        lambda s: s == "running",
    )
    answer = client.delete(f"/v1/jobs/{job_id}", headers=keys["admin"])
    assert answer.status_code == 200
    body = _finished(client, job_id, keys["admin"])
    assert body["status"] == "cancelled"
    assert body["error"] == "cancelled by the client while running"
    again = client.delete(f"/v1/jobs/{job_id}", headers=keys["admin"])
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("payload", "timeout_s", "cancel", "status", "said"),
    [
        ({"seconds": 0, "value": "kept"}, 60.0, False, "done", None),
        (
            {"seconds": 30},
            0.5,
            False,
            "failed",
            "exceeded the job time limit of 0.5 s (per run; attempt 1 of 2)",
        ),
        ({"seconds": 30}, 60.0, True, "cancelled", "cancelled by the client while running"),
    ],
)
def test_an_end_that_could_not_be_written_is_written_at_the_next_tick(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    payload: dict[str, Any],
    timeout_s: float,
    cancel: bool,
    status: str,
    said: str | None,
) -> None:
    """The dispatcher forgot the job before writing its end: a write that failed once (the
    database locked past its busy timeout, a dropped connection) left it running for ever,
    its time limit no longer enforced."""
    from sqlalchemy.exc import OperationalError

    ctx = _ctx(client)
    assert ctx.jobs is not None
    jobs = ctx.jobs
    write_end = jobs._write_end
    failures: list[str] = []

    def flaky(job_id: str, *args: Any, **kwargs: Any) -> bool:
        if not failures:
            failures.append(job_id)
            raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))
        return write_end(job_id, *args, **kwargs)

    jobs._write_end = flaky  # type: ignore[method-assign]
    job_id = _submit(client, "test_sleep", payload, timeout_s=timeout_s)
    if cancel:
        wait_for(lambda: jobs._running.get(job_id), lambda run: run is not None)
        assert client.delete(f"/v1/jobs/{job_id}", headers=keys["admin"]).status_code == 200
    body = _finished(client, job_id, keys["admin"])
    assert failures == [job_id]
    assert (body["status"], body["error"]) == (status, said)
    if status == "done":
        assert body["result"]["value"] == "kept"
    assert job_id not in jobs._running


def test_cancel_a_queued_job_and_refuse_to_cancel_a_finished_one(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    blockers = [_submit(client, "test_sleep", {"seconds": 30}) for _ in range(2)]
    queued = _submit(client, "test_sleep", {"seconds": 0})
    answer = client.delete(f"/v1/jobs/{queued}", headers=keys["admin"])
    assert answer.status_code == 200
    assert answer.json()["status"] == "cancelled"
    for job_id in blockers:
        client.delete(f"/v1/jobs/{job_id}", headers=keys["admin"])
    done = _submit(client, "test_sleep", {"seconds": 0})
    _finished(client, done, keys["admin"])
    assert client.delete(f"/v1/jobs/{done}", headers=keys["admin"]).status_code == 409


def test_a_cancel_that_finds_the_job_finished_meanwhile_is_a_409(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The job ended between the DELETE's read and its update: the answer was a 200 whose
    job was done, as if a finished job could be cancelled."""
    from sqlalchemy import update

    ctx = _ctx(client)
    assert ctx.jobs is not None and ctx.sessions is not None
    jobs, sessions = ctx.jobs, ctx.sessions
    blockers = [_submit(client, "test_sleep", {"seconds": 30}) for _ in range(2)]
    job_id = _submit(client, "test_sleep", {"seconds": 0})  # queued behind them
    cancel = jobs.cancel

    def finished_meanwhile(session: Any, job: Job) -> Job:
        with sessions.begin() as other:
            other.execute(update(Job).where(Job.id == job.id).values(status="done"))
        return cancel(session, job)

    jobs.cancel = finished_meanwhile  # type: ignore[method-assign]
    answer = client.delete(f"/v1/jobs/{job_id}", headers=keys["admin"])
    jobs.cancel = cancel  # type: ignore[method-assign]
    for blocker in blockers:
        client.delete(f"/v1/jobs/{blocker}", headers=keys["admin"])
    assert answer.status_code == 409, answer.text
    assert answer.json()["message"] == f"job {job_id} already finished (done)"


def test_queue_is_bounded(client: TestClient) -> None:
    ctx = _ctx(client)
    assert ctx.jobs is not None
    ctx.jobs.max_queued = 1
    ctx.jobs.executor.capacity = 0  # nothing gets claimed, so the queue fills up
    _submit(client, "test_sleep", {"seconds": 0})
    with pytest.raises(QueueFull):
        _submit(client, "test_sleep", {"seconds": 0})


def test_the_queue_bound_holds_under_concurrent_submits(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, then inserted: submits counting at the same time all passed the bound."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from api.jobs.service import JobService

    ctx = _ctx(client)
    assert ctx.jobs is not None and ctx.sessions is not None
    ctx.jobs.max_queued = 3
    ctx.jobs.executor.capacity = 0  # nothing gets claimed, so the queue fills up
    counted = JobService.queue_depth

    def slow_count(self: JobService, session: Any) -> int:
        depth = counted(self, session)
        if threading.current_thread().name.startswith("submitter"):
            threading.Event().wait(0.05)  # widen the window between the count and the commit
        return depth

    monkeypatch.setattr(JobService, "queue_depth", slow_count)
    start = threading.Barrier(8)

    def submit(i: int) -> str:
        start.wait()
        try:
            return _submit(client, "test_sleep", {"seconds": 0, "value": i})
        except QueueFull:
            return "full"

    with ThreadPoolExecutor(8, thread_name_prefix="submitter") as pool:
        outcomes = list(pool.map(submit, range(8)))
    with ctx.sessions() as session:
        queued = session.scalars(select(Job.id).where(Job.status == "queued")).all()
    assert len(queued) == 3, outcomes
    assert sorted(queued) == sorted(o for o in outcomes if o != "full")
    assert outcomes.count("full") == 5


def test_jobs_are_private_to_their_key(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    job_id = _submit(client, "test_sleep", {"seconds": 0})
    assert client.get(f"/v1/jobs/{job_id}", headers=keys["oms"]).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).status_code == 200
    listing = client.get("/v1/jobs", headers=keys["admin"], params={"kind": "test_sleep"})
    assert listing.status_code == 200
    assert [j["id"] for j in listing.json()["data"]] == [job_id]
    assert client.get("/v1/jobs", headers=keys["oms"]).json()["count"] == 0


@pytest.mark.shares_service
def test_listing_by_an_unknown_kind_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A typo (``kind=route``) answered an empty page, as if there were no such jobs."""
    answer = client.get("/v1/jobs", headers=keys["admin"], params={"kind": "route"})
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["field"] == "query.kind"
    assert problem["reason"].startswith(
        "unknown job kind 'route'; one of allocations, comparisons, plans"
    )


@pytest.mark.shares_service
@pytest.mark.parametrize("query", [{"staus": "failed"}, {"kind": "routes", "limt": "5"}])
def test_listing_with_an_unknown_parameter_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], query: dict[str, str]
) -> None:
    """A typo (``staus=failed``) was ignored: every job was listed, as if they had failed."""
    answer = client.get("/v1/jobs", headers=keys["admin"], params=query)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    typo = next(name for name in query if name not in {"kind"})
    assert problem == {
        "field": f"query.{typo}",
        "reason": "unknown parameter; one of cursor, kind, limit, offset, status",
    }


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("query", "field", "shown"),
    [
        ("kind=routes&kind=test_sleep", "query.kind", "'routes', 'test_sleep'"),
        ("limit=1&limit=2", "query.limit", "'1', '2'"),
        ("offset=0&status=done&offset=5", "query.offset", "'0', '5'"),
    ],
)
def test_listing_with_a_parameter_given_twice_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], query: str, field: str, shown: str
) -> None:
    """The last value was taken without a word: ``kind=routes&kind=test_sleep`` listed the
    test jobs alone, as if there were no routing jobs (``status`` is or-ed instead)."""
    answer = client.get(f"/v1/jobs?{query}", headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem == {
        "field": field,
        "reason": f"given more than once, with different values ({shown}); give it once",
    }


def _job_in(job_id: str, status: str, created_at: dt.datetime) -> Job:
    """A test job of no key in ``status`` created at ``created_at`` (for listings)."""
    return Job(id=job_id, kind="test_sleep", status=status, payload={}, created_at=created_at)


@pytest.mark.parametrize(
    "query",
    [
        "status=failed&status=cancelled",
        "status=failed,cancelled",
        "status=cancelled,%20failed&status=failed",
        "status=failed&status=cancelled&limit=1",
    ],
)
def test_listing_by_several_statuses_lists_a_job_in_any_of_them(
    client: TestClient, keys: dict[str, dict[str, str]], query: str
) -> None:
    """``status=queued&status=running`` (an OMS's "active jobs") was a 422: one status only."""
    ctx = _ctx(client)
    assert ctx.sessions is not None
    now = utcnow()
    statuses = {"j-done": "done", "j-failed": "failed", "j-cancelled": "cancelled"}
    with ctx.sessions.begin() as session:
        for i, (job_id, status) in enumerate(statuses.items()):
            session.add(_job_in(job_id, status, now - dt.timedelta(seconds=i)))
    answer = client.get(f"/v1/jobs?{query}", headers=keys["admin"])
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert listed["count"] == 2
    expected = ["j-failed", "j-cancelled"][: 1 if "limit=1" in query else 2]
    assert [job["id"] for job in listed["data"]] == expected
    active = client.get("/v1/jobs?status=queued,running", headers=keys["admin"])
    assert active.status_code == 200, active.text
    assert active.json()["count"] == 0


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("status=done,bogus", "unknown status 'bogus'; one of queued, running, done, failed"),
        ("status=done&status=", "unknown status ''; one of queued"),
        ("status=done,", "unknown status ''; one of queued"),
        ("&".join(["status=done"] * 21), "given 21 times; at most 20"),
    ],
)
def test_listing_by_an_unknown_status_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], query: str, reason: str
) -> None:
    answer = client.get(f"/v1/jobs?{query}", headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "query.status"
    assert problem["reason"].startswith(reason)


def test_listing_with_a_parameter_given_twice_alike_lists_as_once(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The same value twice is one filter, as a header given twice alike is one value."""
    job_id = _submit(client, "test_sleep", {"seconds": 0})
    once = client.get("/v1/jobs?kind=test_sleep", headers=keys["admin"])
    twice = client.get("/v1/jobs?kind=test_sleep&kind=test_sleep", headers=keys["admin"])
    assert twice.status_code == 200, twice.text
    assert [j["id"] for j in twice.json()["data"]] == [j["id"] for j in once.json()["data"]]
    assert [j["id"] for j in once.json()["data"]] == [job_id]


def test_a_result_holding_nan_or_infinity_is_listed(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """SQLite keeps NaN and infinities in a stored result, which its JSON functions (before
    3.42) refuse: reading the plan id of such a row for its link made every listing that
    reached it a 500 (``malformed JSON``), while the job itself could be fetched."""
    import math

    job_id = _submit(client, "test_sleep", {"seconds": 0, "value": [math.nan, math.inf]})
    job = wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).json(),
        lambda j: j["status"] in ("done", "failed"),
    )
    assert job["status"] == "done" and job["result"]["value"] == [None, None]
    listing = client.get("/v1/jobs", headers=keys["admin"])
    assert listing.status_code == 200, listing.text
    assert [j["id"] for j in listing.json()["data"]] == [job_id]
    assert listing.json()["data"][0]["links"] == {"self": f"/v1/jobs/{job_id}"}


#: ids of jobs created in one instant, inserted in an order that is neither theirs nor its reverse
_SAME_INSTANT_IDS = [f"tie{i:02d}" for i in (3, 0, 6, 1, 5, 2, 4)]


@pytest.mark.parametrize("caller", ["admin", "admin_status", "oms"])
def test_jobs_created_in_the_same_instant_are_listed_once_across_pages(
    client: TestClient, keys: dict[str, dict[str, str]], caller: str
) -> None:
    """Ordered by created_at alone, ties came in storage order: pages could repeat or skip.
    (Pages of 1, 2, 3 and 7 jobs, read from one service: a listing writes nothing.)"""
    from api.core.security import split_key

    ctx = _ctx(client)
    assert ctx.sessions is not None
    role = "oms" if caller == "oms" else "admin"
    key_id = split_key(keys["oms"]["X-API-Key"])
    same, earlier = utcnow(), utcnow() - dt.timedelta(seconds=1)
    with ctx.sessions.begin() as session:
        for job_id in [*_SAME_INSTANT_IDS, "older"]:
            created_at = earlier if job_id == "older" else same
            session.add(_done_job(job_id, key_id, created_at))
            session.flush()  # one row after the other, in the list's order
    for limit in (1, 2, 3, 7):
        params: dict[str, Any] = {"limit": limit}
        if caller == "admin_status":
            params["status"] = "done"
        listed: list[str] = []
        for offset in range(0, 8, limit):
            query = {**params, "offset": offset}
            page = client.get("/v1/jobs", headers=keys[role], params=query)
            assert page.status_code == 200, page.text
            assert page.json()["count"] == 8
            listed += [job["id"] for job in page.json()["data"]]
        assert listed == [*sorted(_SAME_INSTANT_IDS, reverse=True), "older"], limit


def _done_job(job_id: str, key_id: str | None, created_at: dt.datetime) -> Job:
    """A finished test job of ``key_id`` created at ``created_at`` (for listings)."""
    return Job(
        id=job_id,
        kind="test_sleep",
        status="done",
        payload={},
        key_id=key_id,
        created_at=created_at,
    )


@pytest.mark.parametrize("limit", [1, 3])
@pytest.mark.parametrize("caller", ["admin", "admin_status", "oms"])
def test_pages_walked_by_cursor_neither_repeat_nor_skip_a_job_as_jobs_are_added(
    client: TestClient, keys: dict[str, dict[str, str]], caller: str, limit: int
) -> None:
    """By offset, every job added while a client walked the pages moved the rest one place
    on: the next page began with a job the last one had ended with."""
    from api.core.security import split_key

    ctx = _ctx(client)
    assert ctx.sessions is not None
    role = "oms" if caller == "oms" else "admin"
    key_id = split_key(keys["oms"]["X-API-Key"])
    same = utcnow() - dt.timedelta(seconds=60)
    added = iter(range(100))

    def add(job_id: str, created_at: dt.datetime) -> None:
        assert ctx.sessions is not None
        with ctx.sessions.begin() as session:
            session.add(_done_job(job_id, key_id, created_at))

    for job_id in [*_SAME_INSTANT_IDS, "older"]:
        add(job_id, same - dt.timedelta(seconds=1) if job_id == "older" else same)
    params: dict[str, Any] = {"limit": limit}
    if caller == "admin_status":
        params["status"] = "done"
    listed: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        query = {**params, "cursor": cursor} if cursor else params
        page = client.get("/v1/jobs", headers=keys[role], params=query)
        assert page.status_code == 200, page.text
        listed += [job["id"] for job in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        add(f"new{next(added):02d}", utcnow())  # a job added between two pages
        if cursor is None:
            break
    # the jobs added since the first page are newer than it: not on the pages after it
    assert listed == [*sorted(_SAME_INSTANT_IDS, reverse=True), "older"]
    assert cursor is None


@pytest.mark.shares_service
@pytest.mark.parametrize(
    "query", ["limit=1_0", "limit=+1", "limit=%201", "offset=0_0", "offset=-0"]
)
def test_a_page_size_or_offset_not_in_digits_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], query: str
) -> None:
    """``limit=1_0`` was read as 10 and ``limit=+1``, ``limit= 1`` as 1 (Python's ``int()``
    reading the query string), where a number in a body refuses any string."""
    answer = client.get(f"/v1/jobs?{query}", headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    name = query.split("=")[0]
    assert answer.json()["detail"] == [
        {
            "field": f"query.{name}",
            "reason": "Input should be a valid integer, unable to parse string as an integer",
        }
    ]


#: cursors of a time outside the years 1 to 9999 in UTC (its offset takes it past them):
#: their conversion failed in the database driver, a 500
OUT_OF_RANGE_CURSORS = tuple(
    base64.urlsafe_b64encode(raw.encode()).decode()
    for raw in ("0001-01-01T00:00:00+14:00 abc", "9999-12-31T23:59:59-14:00 abc")
)


def test_a_cursor_that_is_not_one_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    for cursor in (
        "nope",
        "",
        "bm9wZQ",
        "MjAyNi0wMS0wMVQwMDowMDowMCBhYmM",  # ..., no zone
        *OUT_OF_RANGE_CURSORS,
    ):
        answer = client.get("/v1/jobs", headers=keys["admin"], params={"cursor": cursor})
        assert answer.status_code == 422, (cursor, answer.text)
        assert answer.json()["detail"] == [
            {
                "field": "query.cursor",
                "reason": "not a cursor of this listing; pass next_cursor as it was given",
            }
        ]


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ((), "ix_jobs_created"),
        ((Job.key_id == "k1",), "ix_jobs_key_created"),
        ((Job.status == "done",), "ix_jobs_status_created"),
        ((Job.key_id == "k1", Job.status == "done"), "ix_jobs_key_created"),
        # an admin's listing of one kind sorted every job of that kind (ix_jobs_kind alone)
        ((Job.kind == "allocation",), "ix_jobs_kind_created"),
        # kind and status: either index reads the page in order (a tie without statistics)
        (
            (Job.kind == "allocation", Job.status == "done"),
            ("ix_jobs_kind_created", "ix_jobs_status_created"),
        ),
        # a key's own jobs of one kind: not all keys' jobs of the kind, filtered row by row
        ((Job.key_id == "k1", Job.kind == "allocation"), "ix_jobs_key_kind_created"),
        (
            (Job.key_id == "k1", Job.kind == "allocation", Job.status == "done"),
            "ix_jobs_key_kind_created",
        ),
    ],
)
def test_a_listing_page_is_read_in_index_order_without_a_sort(
    tmp_path: Path, filters: tuple[Any, ...], index: str | tuple[str, ...]
) -> None:
    """With the id as tiebreaker, indexes ending at created_at left a temp B-tree sort."""
    from api.db.session import make_engine, migrate
    from api.routes.jobs import page_query

    engine = make_engine(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    try:
        migrate(engine)
        plans = []
        for after in (None, (utcnow(), "tie03")):  # offset pages, and a cursor's
            query = page_query(list(filters), offset=50, limit=50, after=after)
            sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
            with engine.connect() as conn:
                plans.append([row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")])
    finally:
        engine.dispose()
    names = (index,) if isinstance(index, str) else index
    for plan, by_cursor in zip(plans, (False, True), strict=True):
        used = {m.group(1) for step in plan if (m := re.search(r"USING INDEX (\w+)", step))}
        # a cursor's range may be read on another listing index (a tie without statistics)
        assert used if by_cursor else used & set(names), plan
        assert not any("TEMP B-TREE" in step for step in plan), plan


def _orphan(
    ctx: ServiceContext, *, attempts: int, mode: str = "async", cancel_requested: bool = False
) -> str:
    """A job left running by a replica that died (dead pid on this host)."""
    assert ctx.sessions is not None and ctx.jobs is not None
    with ctx.sessions.begin() as session:
        dead = Instance(id="dead0", host=ctx.jobs.host, pid=2**22 + 12345)
        session.add(dead)
        job = Job(
            id=f"orphan{attempts}{mode}",
            kind="test_sleep",
            mode=mode,
            status="running",
            payload={"seconds": 0, "value": "recovered"},
            owner="dead0",
            attempts=attempts,
            max_attempts=2,
            events=[],
            cancel_requested=cancel_requested,
        )
        session.add(job)
    return job.id


@pytest.mark.parametrize(
    ("attempts", "mode", "status", "reason"),
    [
        (1, "async", "done", None),
        (2, "async", "failed", "stopped unexpectedly 2 time(s); not retried again"),
        (1, "sync", "failed", "during this synchronous request"),
    ],
)
def test_jobs_of_a_dead_replica_are_rerun_or_failed_with_the_reason(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    attempts: int,
    mode: str,
    status: str,
    reason: str | None,
) -> None:
    ctx = _ctx(client)
    assert ctx.jobs is not None
    job_id = _orphan(ctx, attempts=attempts, mode=mode)
    assert ctx.jobs.recover() == 1
    body = _finished(client, job_id, keys["admin"])
    assert body["status"] == status
    if reason is None:
        assert body["result"]["value"] == "recovered"
        assert any("re-queued" in e["message"] for e in body["events"])
    else:
        assert reason in body["error"]


def test_a_cancelled_job_of_a_dead_replica_is_cancelled_not_run_again(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The client's DELETE reached the row, its replica died: recovery re-queued and re-ran it."""
    ctx = _ctx(client)
    assert ctx.jobs is not None
    job_id = _orphan(ctx, attempts=1, cancel_requested=True)
    assert ctx.jobs.recover() == 1
    body = _finished(client, job_id, keys["admin"])
    assert body["status"] == "cancelled" and body["result"] is None
    assert body["error"].startswith("cancelled by the client")


def test_a_cancel_that_arrives_as_the_server_stops_is_kept(settings: Settings) -> None:
    """stop() re-queued a running job whose cancel had not been acted on; it then ran again."""
    from api.db.session import make_engine, make_sessionmaker
    from api.main import create_app
    from tests.api.conftest import registry_with_test_kinds

    with TestClient(create_app(settings, registry=registry_with_test_kinds())) as client:
        ctx = _ctx(client)
        assert ctx.jobs is not None and ctx.sessions is not None
        ctx.jobs._enforce_limits = lambda: None  # type: ignore[method-assign]  # stop comes first
        job_id = _submit(client, "test_sleep", {"seconds": 30})
        sessions = ctx.sessions

        def status() -> str | None:
            with sessions() as session:
                return session.scalar(select(Job.status).where(Job.id == job_id))

        wait_for(status, lambda s: s == "running")
        with sessions() as session:
            job = session.get(Job, job_id)
            assert job is not None
            ctx.jobs.cancel(session, job)  # running: the dispatcher is asked to stop it
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(engine)() as session:
            job = session.get(Job, job_id)
            assert job is not None
            assert (job.status, job.error) == (
                "cancelled",
                "cancelled by the client; its server stopped before the job could finish",
            )
    finally:
        engine.dispose()


def _threads_of(pid: int) -> int:
    """The number of threads of process ``pid`` (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(status.split("Threads:")[1].split()[0])


def test_sigterm_to_a_job_process_and_its_fork_server_leaves_the_job_to_the_stop(
    settings: Settings,
) -> None:
    """SIGTERM to the whole process group or cgroup (systemd's KillMode=control-group, ``kill
    -TERM -PGID``) reached the job's process too, which died at once ('worker process died
    (exit code -15)', written before the server's graceful stop came to re-queue the job),
    and its fork server, whose end made multiprocessing report the job's process dead (exit
    code 255). Both now leave SIGTERM to their server: the job runs on, and the service's
    stop re-queues it. (The signal sent to those two processes of this test's service; to
    a real server's whole group by tests/api/test_serve.py's
    test_sigterm_to_the_whole_process_group_re_queues_the_running_job, slow.)"""
    import os
    import signal

    from api.db.session import make_engine, make_sessionmaker
    from api.jobs.executors import fork_server_pid
    from api.main import create_app
    from tests.api.conftest import registry_with_test_kinds

    with TestClient(create_app(settings, registry=registry_with_test_kinds())) as client:
        ctx = _ctx(client)
        jobs, sessions = ctx.jobs, ctx.sessions
        assert jobs is not None and sessions is not None
        job_id = _submit(client, "test_sleep", {"seconds": 30})
        [run] = wait_for(lambda: list(jobs._running.values()), bool)
        pid = run.execution._process.pid
        server = fork_server_pid()
        assert pid is not None and server is not None
        # the job's body runs (the job process's watcher thread has started)
        wait_for(lambda: _threads_of(pid), lambda n: n >= 2)
        for target in (pid, server):
            os.kill(target, signal.SIGTERM)
        for _ in range(10):  # ten of the dispatcher's ticks (0.05 s while it runs a job)
            jobs.wake()
            time.sleep(0.1)
        assert run.execution.poll() is None  # alive, no answer
        assert _threads_of(pid) and _threads_of(server), "a process died of SIGTERM"
        with sessions() as session:
            job = session.get(Job, job_id)
            assert job is not None and (job.status, job.error) == ("running", None)
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(engine)() as session:
            job = session.get(Job, job_id)
            assert job is not None
            messages = [event["message"] for event in job.events]
    finally:
        engine.dispose()
    assert job.status == "queued" and "re-queued: server shut down" in messages, messages
    assert not any("worker process died" in message for message in messages), messages


def test_a_job_that_ended_just_before_the_server_stops_keeps_its_answer(
    settings: Settings,
) -> None:
    """stop() killed and re-queued it: its answer was thrown away and the job run again."""
    from api.db.session import make_engine, make_sessionmaker
    from api.main import create_app
    from tests.api.conftest import registry_with_test_kinds

    with TestClient(create_app(settings, registry=registry_with_test_kinds())) as client:
        ctx = _ctx(client)
        assert ctx.jobs is not None
        jobs = ctx.jobs
        jobs._collect = lambda: None  # type: ignore[method-assign]  # stop comes before the tick
        job_id = _submit(client, "test_sleep", {"seconds": 0, "value": "kept"})
        wait_for(lambda: jobs._running.get(job_id), lambda run: run is not None)
        process = jobs._running[job_id].execution._process  # type: ignore[attr-defined]
        wait_for(process.is_alive, lambda alive: not alive)  # it has answered and exited
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(engine)() as session:
            job = session.get(Job, job_id)
            assert job is not None
            assert (job.status, job.result and job.result["value"]) == ("done", "kept")
    finally:
        engine.dispose()


@pytest.mark.parametrize("start_ends", ["failing", "started"])
def test_a_job_still_starting_as_the_server_stops_is_re_queued(
    settings: Settings, start_ends: str
) -> None:
    """stop() waited 10 s for a dispatcher stuck starting a job (its fork server still
    importing), then closed the executor: the start failed, and the job was failed with it
    ("could not start: unexpected EOF") instead of re-queued; a start that succeeded late
    left the job running in a process nobody followed."""
    import threading

    from api.db.session import make_engine, make_sessionmaker
    from api.main import create_app
    from tests.api.conftest import registry_with_test_kinds

    entered, closed, killed = threading.Event(), threading.Event(), threading.Event()

    class Late:
        def kill(self) -> None:
            killed.set()

    with TestClient(create_app(settings, registry=registry_with_test_kinds())) as client:
        ctx = _ctx(client)
        assert ctx.jobs is not None
        jobs = ctx.jobs
        jobs.stop_join_s = 0.5
        executor = jobs.executor
        close = executor.close

        def stuck_start(*_args: Any) -> Any:
            entered.set()
            closed.wait(30)
            if start_ends == "started":
                return Late()
            raise EOFError("unexpected EOF")  # as a fork server stopped under it

        def close_then_unblock() -> None:
            close()
            closed.set()

        executor.start = stuck_start  # type: ignore[method-assign,assignment]
        executor.close = close_then_unblock  # type: ignore[method-assign]
        job_id = _submit(client, "test_sleep", {"seconds": 0, "value": "later"})
        assert entered.wait(30)
    for thread in jobs._threads:
        thread.join(30)
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(engine)() as session:
            job = session.get(Job, job_id)
            assert job is not None
            assert (job.status, job.owner, job.attempts, job.error) == ("queued", None, 0, None)
            assert job.events[-1]["message"] == "re-queued: server shut down"
    finally:
        engine.dispose()
    assert killed.is_set() == (start_ends == "started")


def test_a_synchronous_solve_running_at_a_graceful_stop_is_not_called_a_crash(
    settings: Settings,
) -> None:
    """stop() left its row running: the next replica's recovery said 'stopped unexpectedly'."""
    from api.jobs.service import SYNC_AT_STOP
    from api.main import create_app
    from tests.api.conftest import registry_with_test_kinds

    with TestClient(create_app(settings, registry=registry_with_test_kinds())) as client:
        ctx = _ctx(client)
        assert ctx.jobs is not None and ctx.sessions is not None
        with ctx.sessions() as session:  # a synchronous request whose solve has started
            job_id = ctx.jobs.record_sync_start(
                session, kind="test_sleep", payload={}, key_id=None, seed=1, input_hash="h"
            ).id
    with TestClient(create_app(settings, registry=registry_with_test_kinds())) as later:
        body = _finished(later, job_id, {"X-API-Key": _admin_key(later)})
    assert (body["status"], body["error"]) == ("failed", SYNC_AT_STOP)
    assert "graceful stop" in SYNC_AT_STOP and "unexpectedly" not in SYNC_AT_STOP
    assert body["events"][-1]["message"] == SYNC_AT_STOP


def test_a_synchronous_solve_whose_outcome_could_not_be_stored_is_not_running_for_ever(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Its replica lives on, so no recovery looked at it: a write of the outcome that failed
    (the database locked past its busy timeout) left the row running for ever."""
    import copy

    from sqlalchemy.exc import OperationalError

    from api.examples import ROUTES_EXAMPLE
    from api.jobs.service import SYNC_UNSTORED

    ctx = _ctx(client)
    assert ctx.jobs is not None and ctx.sessions is not None
    jobs = ctx.jobs

    def locked(*_args: Any, **_kwargs: Any) -> bool:
        raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))

    jobs.record_sync_end = locked  # type: ignore[method-assign]
    body = copy.deepcopy(ROUTES_EXAMPLE["small"]["value"])
    body["params"]["time_limit_s"] = 0.2
    answer = client.post("/v1/routes", json=body, headers=keys["oms"])
    assert answer.status_code == 500 and answer.json()["message"].startswith("internal error")
    with ctx.sessions() as session:
        job_id = session.scalar(select(Job.id).where(Job.mode == "sync"))
        assert session.scalar(select(Job.status).where(Job.id == job_id)) == "running"
    assert jobs.recover() == 0  # within the longest a synchronous solve may take: left
    jobs.sync_stale_s = 0.0
    assert jobs.recover() == 1
    body = client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).json()
    assert (body["status"], body["error"]) == ("failed", SYNC_UNSTORED)
    assert body["events"][-1]["message"] == SYNC_UNSTORED


def _shutdown_rejections(ctx: ServiceContext) -> float:
    value = ctx.metrics.registry.get_sample_value(
        "dispatchlab_rejections_total", {"reason": "shutting_down"}
    )
    return value or 0.0


def _small_routes() -> dict[str, Any]:
    import copy

    from api.examples import ROUTES_EXAMPLE

    body: dict[str, Any] = copy.deepcopy(ROUTES_EXAMPLE["small"]["value"])
    body["params"]["time_limit_s"] = 0.2
    return body


def test_a_synchronous_solve_recorded_after_the_stop_failed_its_job_keeps_that_failure(
    client: TestClient, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its solve answered just before the stop, its outcome recorded just after the stop
    failed its job (its request answered 503, `marked failed`): the row was overwritten
    `done`. It keeps the stop's failure, and the request gets the stop's 503."""
    import api.solve as solve
    from api.jobs.service import SYNC_AT_STOP

    ctx = _ctx(client)
    assert ctx.jobs is not None and ctx.sessions is not None
    jobs = ctx.jobs
    real = solve._call

    def answered_then_stopped(target: str, payload: Any, stopping: Any = None) -> Any:
        result = real(target, payload, stopping)
        jobs._fail_unanswered()  # the stop's, before the request records the answer
        return result

    monkeypatch.setattr(solve, "_call", answered_then_stopped)
    answer = client.post("/v1/routes", json=_small_routes(), headers=keys["oms"])
    with ctx.sessions() as session:
        job = session.scalars(select(Job).where(Job.mode == "sync")).one()
        assert (job.status, job.error, job.result) == ("failed", SYNC_AT_STOP, None)
        assert job.events[-1]["message"] == SYNC_AT_STOP
        job_id = job.id
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == str(ctx.settings.retry_after_s)
    message = answer.json()["message"]
    assert "shutting down" in message and f"job {job_id}, marked failed" in message
    assert _shutdown_rejections(ctx) == 1.0


def test_a_synchronous_solve_whose_job_a_recovery_ended_is_answered_503_naming_that_end(
    client: TestClient, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its row was failed by another replica's recovery while it solved (this replica silent
    past its lease): its answer overwrote that failure (200, with a job_id whose row said
    `done`). The row is kept, and the request answered 503 naming its end."""
    import api.solve as solve

    ctx = _ctx(client)
    assert ctx.sessions is not None
    sessions = ctx.sessions
    reason = "interrupted: the server stopped unexpectedly during this synchronous request"
    real = solve._call

    def answered_then_recovered(target: str, payload: Any, stopping: Any = None) -> Any:
        result = real(target, payload, stopping)
        with sessions.begin() as session:  # as another replica's recovery fails it
            job = session.scalars(select(Job).where(Job.mode == "sync")).one()
            job.status, job.error, job.finished_at = "failed", reason, utcnow()
        return result

    monkeypatch.setattr(solve, "_call", answered_then_recovered)
    answer = client.post("/v1/routes", json=_small_routes(), headers=keys["oms"])
    with sessions() as session:
        job = session.scalars(select(Job).where(Job.mode == "sync")).one()
        assert (job.status, job.error, job.result) == ("failed", reason, None)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == str(ctx.settings.retry_after_s)
    message = answer.json()["message"]
    assert f"job {job.id} ended before its outcome was stored (failed: {reason})" in message
    assert _shutdown_rejections(ctx) == 0.0  # not the stop's


def test_a_synchronous_solve_the_stop_cut_is_counted_a_shutdown_rejection(
    client: TestClient, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 503 of a solve the service's stop ended (api.solve) was not counted in
    `dispatchlab_rejections_total{reason="shutting_down"}`, as the middleware's is."""
    import api.solve as solve
    from api.jobs.service import SYNC_AT_STOP

    ctx = _ctx(client)
    assert ctx.sessions is not None

    def stopped(*_args: Any) -> Any:
        ctx.stopping.set()  # the service's stop begins during the solve
        raise solve.ServiceStopping

    monkeypatch.setattr(solve, "_call", stopped)
    try:
        answer = client.post("/v1/routes", json=_small_routes(), headers=keys["oms"])
    finally:
        ctx.stopping.clear()
    assert answer.status_code == 503 and "shutting down" in answer.json()["message"]
    with ctx.sessions() as session:
        assert session.scalars(select(Job.error).where(Job.mode == "sync")).one() == SYNC_AT_STOP
    assert _shutdown_rejections(ctx) == 1.0


def test_recovery_reads_only_the_replicas_that_own_running_jobs(client: TestClient) -> None:
    """Every start adds a replica row, never deleted: recovery read them all each time."""
    from sqlalchemy import event as orm_event

    ctx = _ctx(client)
    assert ctx.sessions is not None and ctx.jobs is not None
    with ctx.sessions.begin() as session:
        for k in range(20):
            session.add(Instance(id=f"gone{k}", host="elsewhere", pid=1, stopped_at=utcnow()))
    job_id = _orphan(ctx, attempts=1)
    read: list[str] = []

    def loaded(target: Instance, _context: Any) -> None:
        read.append(target.id)

    orm_event.listen(Instance, "load", loaded)
    try:
        assert ctx.jobs.recover() == 1
    finally:
        orm_event.remove(Instance, "load", loaded)
    assert read == ["dead0"]
    with ctx.sessions() as session:  # re-queued (and maybe running here by now)
        assert session.scalar(select(Job.owner).where(Job.id == job_id)) != "dead0"


def test_a_live_replica_keeps_its_jobs(client: TestClient) -> None:
    ctx = _ctx(client)
    assert ctx.sessions is not None and ctx.jobs is not None
    with ctx.sessions.begin() as session:
        session.add(Instance(id="other", host="elsewhere", pid=1, heartbeat_at=utcnow()))
        session.add(
            Job(id="theirs", kind="test_sleep", status="running", payload={}, owner="other")
        )
    assert ctx.jobs.recover() == 0
    with ctx.sessions.begin() as session:
        other = session.get(Instance, "other")
        assert other is not None
        other.heartbeat_at = utcnow() - dt.timedelta(seconds=60)  # silent past the lease
    assert ctx.jobs.recover() == 1
    with ctx.sessions() as session:
        assert session.scalar(select(Job.status).where(Job.id == "theirs")) in {
            "queued",
            "running",
            "done",
        }


def test_two_replicas_share_the_queue_and_run_each_job_once(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    first = make_client(settings)
    second = make_client(settings)
    job_ids = [_submit(first, "test_sleep", {"seconds": 0.3, "value": i}) for i in range(6)]
    admin = {"X-API-Key": _admin_key(first)}
    bodies = [_finished(second, job_id, admin) for job_id in job_ids]
    assert all(b["status"] == "done" and b["attempts"] == 1 for b in bodies), bodies
    replicas = {
        e["message"].split()[-1] for b in bodies for e in b["events"] if "started" in e["message"]
    }
    ids: set[str] = set()
    for c in (first, second):
        jobs = _ctx(c).jobs
        assert jobs is not None
        ids.add(jobs.instance_id)
    assert replicas <= ids and len(replicas) == 2


def _admin_key(client: TestClient) -> str:
    from api.core.security import Role
    from api.keys import create_key

    ctx = _ctx(client)
    assert ctx.sessions is not None
    with ctx.sessions() as session:
        return create_key(session, role=Role.ADMIN)[0]


def test_finished_jobs_past_their_retention_are_deleted_and_the_rest_kept(
    client: TestClient,
) -> None:
    ctx = _ctx(client)
    assert ctx.sessions is not None and ctx.jobs is not None
    assert ctx.jobs.retention_s == 30 * 86_400.0  # the default setting
    now = utcnow()
    rows = {  # status, days since created
        "old-done": ("done", 40),
        "old-failed": ("failed", 31),
        "recent-done": ("done", 2),
        "old-queued": ("queued", 50),
        "old-running": ("running", 50),
    }
    with ctx.sessions.begin() as session:
        for job_id, (status, age_days) in rows.items():
            created = now - dt.timedelta(days=age_days)
            session.add(
                Job(
                    id=job_id,
                    kind="test_sleep",
                    status=status,
                    payload={},
                    created_at=created,
                    finished_at=created if status in {"done", "failed"} else None,
                    owner=ctx.jobs.instance_id if status == "running" else None,
                )
            )
    assert ctx.jobs.purge(30 * 86_400.0, batch=1) == 2  # one row per transaction
    with ctx.sessions() as session:
        left = set(session.scalars(select(Job.id).where(Job.id.in_(list(rows)))).all())
    assert left == {"recent-done", "old-queued", "old-running"}


def test_a_retention_of_zero_keeps_every_job(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    keep = make_client(Settings(**{**settings.model_dump(), "job_retention_s": 0}))
    jobs = _ctx(keep).jobs
    assert jobs is not None and jobs.retention_s is None


def _no_background_housekeeping(settings: Settings, **changes: Any) -> Settings:
    """``settings`` (and ``changes``) with a job poll of an hour: the dispatcher, whose first
    tick housekeeps, then ticks only when woken (a job submitted), so a test's own
    ``housekeep()`` is the only one. With the tests' 0.1 s poll that first tick, delayed by
    a loaded machine past the rows the test wrote, deleted them first: its ``housekeep()``
    counted 0 (1 in 20 runs beside four busy loops)."""
    return Settings(**{**settings.model_dump(), "job_poll_s": 3600.0, **changes})


def test_a_retention_of_zero_still_deletes_the_rows_of_replicas_gone(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    """No purge ran with ``job_retention_s=0``: the row every server start adds (a crash
    loop: one every few seconds) was kept for ever, though no job named it."""
    keep = make_client(_no_background_housekeeping(settings, job_retention_s=0))
    ctx = _ctx(keep)
    assert ctx.sessions is not None and ctx.jobs is not None
    long_ago = utcnow() - dt.timedelta(days=400)
    with ctx.sessions.begin() as session:
        for replica_id, stopped in (("stopped", True), ("killed", False), ("ran", True)):
            session.add(
                Instance(
                    id=replica_id,
                    host="elsewhere",
                    pid=1,
                    heartbeat_at=long_ago,
                    stopped_at=long_ago if stopped else None,
                )
            )
        session.add(
            Job(
                id="old",
                kind="test_sleep",
                status="done",
                payload={},
                owner="ran",
                created_at=long_ago,
                finished_at=long_ago,
            )
        )
    assert ctx.jobs.housekeep() == 2
    with ctx.sessions() as session:
        assert set(session.scalars(select(Instance.id))) == {ctx.jobs.instance_id, "ran"}
        assert session.get(Job, "old") is not None  # jobs kept for ever


def test_housekeeping_also_deletes_expired_idempotency_answers(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    ctx = _ctx(make_client(_no_background_housekeeping(settings)))
    assert ctx.sessions is not None and ctx.jobs is not None
    ttl = ctx.settings.idempotency_ttl_s
    now = utcnow()
    with ctx.sessions.begin() as session:
        for name, age_s in (("expired", ttl + 60), ("fresh", ttl / 2)):
            session.add(
                IdempotencyRecord(
                    key_id="k",
                    idem_key=name,
                    endpoint="/v1/allocations",
                    request_hash="h",
                    state="done",
                    created_at=now - dt.timedelta(seconds=age_s),
                )
            )
    assert ctx.jobs.housekeep() == 1
    with ctx.sessions() as session:
        left = set(session.scalars(select(IdempotencyRecord.idem_key)).all())
    assert left == {"fresh"}


#: a fresh interpreter (the tests' services share one fork server, see one_job_fork_server):
#: a service's fork server before and after its first job and after it stopped
_FORK_SERVER_LIFE = """
import json, os, sys, time
from pathlib import Path

from fastapi.testclient import TestClient

from api.core.config import Settings
from api.db.models import Job
from api.jobs import TaskRegistry
from api.jobs.executors import fork_server_pid
from api.main import create_app
from tests.api.conftest import TEST_SPECS
from tests.api.server import alive, descendants

if __name__ == "__main__":
    settings = Settings(data_dir=Path(sys.argv[1]), job_poll_s=0.05)
    # the test kinds only: the fork server preloads their module, not the solvers and Pyomo
    # (seconds of CPU, and the start-up's warm-up allocation and pyomo worker besides)
    registry = TaskRegistry()
    for spec in TEST_SPECS:
        registry.add(spec)
    before = descendants(os.getpid())
    out = {}
    with TestClient(create_app(settings, registry=registry)) as client:
        ctx = client.app.state.ctx
        out["at_start"] = fork_server_pid()
        out["a_child"] = out["at_start"] in alive(descendants(os.getpid()) - before)
        with ctx.sessions() as session:
            job = ctx.jobs.submit(session, kind="test_sleep", payload={"seconds": 0}, key_id=None,
                                  seed=1, input_hash="h", timeout_s=120)
            job_id = job.id
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with ctx.sessions() as session:
                out["job"] = session.get(Job, job_id).status
            if out["job"] in ("done", "failed"):
                break
            time.sleep(0.05)
        out["after_job"] = fork_server_pid()
        started = alive(descendants(os.getpid()) - before)
    out["after_stop"] = fork_server_pid()
    # multiprocessing's resource tracker, started with the fork server, serves the whole
    # process and ends with it
    left = alive(started)
    trackers = {p for p in left
                if b"resource_tracker" in Path(f"/proc/{p}/cmdline").read_bytes()}
    out["left"] = sorted(left - trackers)
    print(json.dumps(out))
"""


def test_the_job_fork_server_starts_with_the_service_and_stops_with_it(tmp_path: Path) -> None:
    """The job processes' fork server (which imports the solvers and Pyomo, seconds) was
    started by the first job, which waited for it. It now starts with the service (the first
    job uses it), and stopping the service stops it: no process of it is left. (A service of
    the test kinds: its fork server preloads only their module; the modules a service of
    the real kinds preloads are tested in tests/api/test_infra.py.)"""
    import json

    run = run_fork_server_script(tmp_path, _FORK_SERVER_LIFE, str(tmp_path), timeout_s=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["at_start"] is not None and out["a_child"], out
    assert out["job"] == "done"
    assert out["after_job"] == out["at_start"]  # the first job used it: none started
    assert out["after_stop"] is None and out["left"] == [], out


def test_a_process_dying_by_a_signal_writes_no_end_of_the_runs_it_kills(
    client: TestClient, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGHUP or SIGQUIT to an API process: its clean-up kills its job processes before it
    dies (``api.serve.clean_up_before_signal_death``), and its dispatcher, still running,
    recorded those deaths as the jobs' ends ('worker process died (exit code -9)', or 255
    with the fork server stopped: failed, or answered with the fallback plan). Told first
    (``stop_writing_before_death``), it leaves them running, for crash recovery."""
    import threading

    from api.jobs import service

    monkeypatch.setattr(service, "_DYING", threading.Event())  # this test's process lives on
    job_id = _submit(client, "test_sleep", {"seconds": 30})
    status = wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).json()["status"],
        lambda s: s == "running",
    )
    jobs = _ctx(client).jobs
    assert jobs is not None and status == "running"
    [run] = wait_for(lambda: list(jobs._running.values()), bool)  # its process started
    service.stop_writing_before_death()
    run.execution.kill()  # as the clean-up does
    # a job queued meanwhile (by another replica: this one queues none once dying) is
    # not claimed here
    queued = _queued_row(client, "test_sleep", {"seconds": 0})
    jobs.wake()
    for _ in range(10):  # ten of the dispatcher's ticks (0.05 s while it runs a job)
        jobs.wake()
        time.sleep(0.1)
    body = client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).json()
    assert body["status"] == "running" and body["error"] is None, body
    assert client.get(f"/v1/jobs/{queued}", headers=keys["admin"]).json()["status"] == "queued"


@pytest.mark.shares_service
def test_a_404_names_at_most_the_first_64_characters_of_the_id(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A 404 echoed the whole requested id: a 5,000-character id came back whole. Every
    404 naming an id names its first 64 characters and ``...``; a short id whole."""
    long_id = "x" * 5000
    shown = "'" + "x" * 64 + "...'"
    admin, oms = keys["admin"], keys["oms"]
    asked = [
        ("GET", f"/v1/jobs/{long_id}", oms, f"no job {shown}"),
        ("DELETE", f"/v1/jobs/{long_id}", oms, f"no job {shown}"),
        ("GET", f"/v1/whatif/{long_id}/report", oms, f"no job {shown}"),
        ("GET", f"/v1/plans/{long_id}", oms, f"no plan {shown}"),
        ("DELETE", f"/v1/keys/{long_id}", admin, f"no key {shown}"),
        ("POST", f"/v1/keys/{long_id}/rotate", admin, f"no key {shown}"),
        ("GET", "/v1/jobs/nope", oms, "no job 'nope'"),
        ("GET", "/v1/plans/" + "p" * 64, oms, f"no plan '{'p' * 64}'"),
    ]
    for method, path, headers, message in asked:
        answer = client.request(method, path, headers=headers)
        assert answer.status_code == 404, (method, path[:80], answer.text[:200])
        assert answer.json()["message"] == message, (method, path[:80])
    replan = client.post(f"/v1/plans/{long_id}/reoptimise", json={"now_s": 0}, headers=oms)
    assert replan.status_code == 404, replan.text[:200]
    assert replan.json()["message"] == f"no plan {shown}"


@pytest.mark.shares_service
def test_a_cursor_is_taken_only_by_the_listing_it_was_made_for(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A ``status`` filter given with a cursor of a page listed with another filter (or none)
    was taken silently: the walk went on under filters its pages were not made for. The
    cursor carries its listing's filters: another listing refuses it (422 on
    ``query.cursor``), its own takes it (statuses as a set: order and repeats aside)."""
    from api.core.security import split_key

    ctx = _ctx(client)
    assert ctx.sessions is not None
    key_id = split_key(keys["oms"]["X-API-Key"])
    with ctx.sessions.begin() as session:
        for k in range(3):
            session.add(_done_job(f"cursor-filter-{k}", key_id, utcnow()))
    headers = keys["oms"]

    def cursor_of(params: dict[str, Any]) -> str:
        page = client.get("/v1/jobs", headers=headers, params={**params, "limit": 1})
        assert page.status_code == 200, page.text
        cursor: str = page.json()["next_cursor"]
        assert cursor is not None
        return cursor

    other = (
        "this cursor belongs to a listing with other filters (status, kind): pass it with the "
        "filters of the page that gave it, or list from the first page without a cursor"
    )
    listings: list[dict[str, Any]] = [
        {},
        {"status": "done"},
        {"status": "done,failed"},
        {"kind": "routes"},
        {"status": "done", "kind": "routes"},
    ]
    for made_for in listings[:3]:
        cursor = cursor_of(made_for)
        for given in listings:
            answer = client.get(
                "/v1/jobs", headers=headers, params={**given, "cursor": cursor, "limit": 1}
            )
            if given == made_for:
                assert answer.status_code == 200, (made_for, given, answer.text)
                continue
            assert answer.status_code == 422, (made_for, given, answer.text)
            assert answer.json()["detail"] == [{"field": "query.cursor", "reason": other}]
    # the same set of statuses, in another order or repeated, is the same listing
    cursor = cursor_of({"status": "done,failed"})
    for same in ("failed,done", ["failed", "done", "done"]):
        answer = client.get(
            "/v1/jobs", headers=headers, params={"status": same, "cursor": cursor, "limit": 1}
        )
        assert answer.status_code == 200, (same, answer.text)
    # a cursor made before session 80 names no filters: taken by any listing, as it was
    legacy = base64.urlsafe_b64encode(f"{utcnow().isoformat()} cursor-filter-2".encode())
    for given in listings:
        answer = client.get(
            "/v1/jobs", headers=headers, params={**given, "cursor": legacy.decode(), "limit": 1}
        )
        assert answer.status_code == 200, (given, answer.text)
