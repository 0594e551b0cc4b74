"""api.solve: helpers every endpoint shares."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from api.context import ServiceContext
from api.core.metrics import Metrics
from api.core.security import Role
from api.deps import Principal
from api.solve import SolveOutcome, engine_fallback_reason


def _engine_fallbacks(metrics: Metrics, endpoint: str) -> float:
    value = metrics.registry.get_sample_value(
        "dispatchlab_fallback_plans_total", {"endpoint": endpoint, "reason": "engine"}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("outcome", "reason", "counted"),
    [
        (SolveOutcome(result={"status": "feasible"}, job_id="j"), None, 0.0),
        # the engine fell back on its own: counted under the endpoint
        (SolveOutcome(result={"fallback_reason": "pyvrp crashed"}, job_id="j"), "pyvrp crashed", 1),
        # the service fell back (already counted where it did): its reason first
        (
            SolveOutcome(
                result={"fallback_reason": "engine's"},
                job_id="j",
                fallback=True,
                fallback_reason="timeout",
            ),
            "timeout",
            0.0,
        ),
    ],
)
def test_engine_fallback_reason_is_the_services_else_the_engines_and_counted_once(
    outcome: SolveOutcome, reason: str | None, counted: float
) -> None:
    metrics = Metrics()
    ctx = cast(ServiceContext, cast(Any, SimpleNamespace(metrics=metrics)))
    assert engine_fallback_reason(ctx, outcome, "routes") == reason
    assert _engine_fallbacks(metrics, "routes") == counted
    assert _engine_fallbacks(metrics, "plans") == 0.0


def _cut_by_the_shutdown(ctx: ServiceContext, begin: Callable[[Any], None]) -> list[Any]:
    """What the middleware sends for a POST /v1/routes whose handler ran ``begin(scope)`` and
    was then cancelled as uvicorn cancels the requests still running when its graceful
    shutdown's timeout ends."""
    import asyncio

    from api.core.middleware import ServiceMiddleware

    entered = asyncio.Event()

    async def solving(scope: Any, receive: Any, send: Any) -> None:
        begin(scope)
        entered.set()
        await asyncio.sleep(3600)  # a synchronous solve

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def main() -> None:
        scope = {"type": "http", "method": "POST", "path": "/v1/routes", "headers": []}
        task = asyncio.ensure_future(ServiceMiddleware(solving, ctx)(scope, receive, send))
        await entered.wait()
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")  # as uvicorn
        await task  # answered, not re-raised (uvicorn would log it with a traceback)

    asyncio.run(main())
    return sent


def test_a_request_cut_by_the_servers_shutdown_is_answered_503_with_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # uvicorn cancels the requests still running when its graceful shutdown's timeout
    # (10 s) ends: the CancelledError reached uvicorn, which logged a traceback and sent
    # its bare 500 "Internal Server Error"
    import json
    import logging

    from api.core.config import Settings

    settings = Settings(auth_enabled=False, retry_after_s=7)
    ctx = cast(
        ServiceContext, cast(Any, SimpleNamespace(settings=settings, metrics=Metrics(), audit=None))
    )

    def begin(scope: Any) -> None:
        scope["state"]["audit_job_id"] = "job-1"  # as note_audit does

    with caplog.at_level(logging.WARNING):
        sent = _cut_by_the_shutdown(ctx, begin)
    assert sent[0]["status"] == 503
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    assert headers["retry-after"] == "7"
    assert headers["connection"] == "close"
    body = json.loads(sent[1]["body"])
    assert set(body) == {"message", "detail"}  # the API's error format
    assert "shutting down" in body["message"] and "job job-1" in body["message"]
    lines = [r for r in caplog.records if r.name == "api.core.middleware"]
    assert len(lines) == 1 and lines[0].exc_info is None, lines
    assert "POST /v1/routes (job job-1, marked failed)" in lines[0].getMessage()
    rejected = ctx.metrics.registry.get_sample_value(
        "dispatchlab_rejections_total", {"reason": "shutting_down"}
    )
    assert rejected == 1.0


@pytest.mark.parametrize("solve_said", [False, True])
def test_a_request_cut_by_the_shutdown_is_counted_once_whichever_paths_saw_it(
    solve_said: bool,
) -> None:
    # the middleware counts the rejection of a request the server cut, and of one whose
    # solve's path (api.solve) answered the stop's 503: one both saw (its solve failed by
    # the stop as the server cut it) is counted once
    from starlette.requests import Request

    import api.solve as solve
    from api.core.config import Settings

    settings = Settings(auth_enabled=False, retry_after_s=7)
    ctx = cast(
        ServiceContext, cast(Any, SimpleNamespace(settings=settings, metrics=Metrics(), audit=None))
    )

    def begin(scope: Any) -> None:
        scope["state"]["audit_job_id"] = "job-1"
        if solve_said:  # its solve's thread made the stop's 503 (not sent: the server cut it)
            attempt = SimpleNamespace(ctx=ctx, request=Request(scope))
            assert solve._shutting_down(cast(Any, attempt), "job-1").status_code == 503

    sent = _cut_by_the_shutdown(ctx, begin)
    assert sent[0]["status"] == 503
    rejected = ctx.metrics.registry.get_sample_value(
        "dispatchlab_rejections_total", {"reason": "shutting_down"}
    )
    assert rejected == 1.0


def test_a_request_waiting_for_its_solve_stops_waiting_when_the_service_stops() -> None:
    # a synchronous request waited for its solve up to its time limit + grace whatever the
    # service did; its (non-daemon) thread held the process's exit that long
    import threading
    import time
    from concurrent.futures import Future

    from api.solve import ServiceStopping, _result

    never: Future[dict[str, Any]] = Future()
    stopping = threading.Event()
    threading.Timer(0.3, stopping.set).start()
    t0 = time.monotonic()
    with pytest.raises(ServiceStopping):
        _result(never, 30.0, stopping)
    assert time.monotonic() - t0 < 5.0
    done: Future[dict[str, Any]] = Future()
    done.set_result({"ok": True})
    assert _result(done, 0.0, stopping) == {"ok": True}  # an answer there is kept
    with pytest.raises(TimeoutError):  # no stop: the time limit as before
        _result(Future(), 0.3, threading.Event())


@pytest.mark.parametrize("cancelled", ["answers", "raises"])
def test_a_solve_cancelled_by_the_stop_fails_its_request_whatever_the_timing(
    monkeypatch: pytest.MonkeyPatch, cancelled: str
) -> None:
    # a synchronous solve cancelled by the service's stop that answered what it had before
    # the request thread's next look at the stop (every 0.25 s) was recorded done, its cut
    # answer kept, where one answering after that look was failed with the stop's reason
    # (503); one that raised at its cancellation was a solver crash: a breaker failure, and
    # answered with the fallback
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from fastapi import HTTPException

    import api.solve as solve
    from api.context import KeyCache
    from api.core.config import Settings
    from api.jobs.registry import TaskRegistry, TaskSpec
    from api.jobs.service import SYNC_AT_STOP

    registry = TaskRegistry()
    target = "tests.api.helpers:cancellable_task"
    registry.add(TaskSpec("t", target, fallback="tests.api.helpers:fallback_task"))
    ctx = ServiceContext(
        settings=Settings(auth_enabled=False, retry_after_s=7),
        metrics=Metrics(),
        registry=registry,
        key_cache=KeyCache(ttl_s=5),
    )
    recorded: list[tuple[str, str | None]] = []
    attempt = SimpleNamespace(
        ctx=ctx,
        kind="t",
        payload={},
        job_id="j",
        record=lambda status, result, **kw: recorded.append((status, kw.get("error"))),
        request=None,
    )
    # the request's next look at the stop comes long after the cut answer: no race
    monkeypatch.setattr(solve, "STOP_POLL_S", 30.0)
    payload = {"raise": cancelled == "raises"}
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(solve._call, target, payload, ctx.stopping)
        threading.Timer(0.2, ctx.stopping.set).start()
        with pytest.raises(HTTPException) as cut:
            solve._settle(cast(Any, attempt), future, 60.0)
    assert cut.value.status_code == 503
    assert cut.value.headers == {"Retry-After": "7", "Connection": "close"}
    assert "shutting down" in cut.value.detail and "job j, marked failed" in cut.value.detail
    assert recorded == [("failed", SYNC_AT_STOP)]
    assert ctx.breaker("t").state.value == "closed"  # no failure of the solver


def test_a_solve_answered_before_the_stop_keeps_its_answer() -> None:
    # only a solve still running at the stop ends as the stop's: one over before it answers
    import threading

    from api.solve import _call

    stopping = threading.Event()
    assert _call("tests.api.helpers:sleep_task", {"value": 3}, stopping)["value"] == 3


#: CPU seconds a solve in the solver pool may spend once the service's stop is set (this
#: process's threads and its child processes, PyVRP's searches: :class:`_CpuSince`). Its
#: end at the stop took 0.02-0.68 s of CPU (1,000-order allocation, 300-order route plan;
#: on a shared 2-core machine, and beside 12 busy loops alike); its run on to the 30 s time
#: limit (the stop never set) 7.2-7.8 s in its 27-29 s on the shared machine. The wall clock
#: measured the machine's load: beside the busy loops the ends at the stop took 7-28 s
#: (the allocation's warm start looks at its deadline, not at the cancellation), past the
#: 8 s they were held to
STOP_CPU_S = 4.0


class _CpuSince:
    """CPU seconds spent since it was made by this process and its child processes (those
    reaped meanwhile, as PyVRP's killed searches, counted from then on, not from their
    start; read from ``/proc``, Linux)."""

    def __init__(self) -> None:
        self._self = time.process_time()
        self._reaped = self._children_rusage()
        self._children = self._live_children()

    @staticmethod
    def _children_rusage() -> float:
        import resource

        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    @staticmethod
    def _live_children() -> dict[int, float]:
        """CPU seconds of this process's children (zombies too), by pid."""
        import os
        from pathlib import Path

        tick, me, out = os.sysconf("SC_CLK_TCK"), os.getpid(), {}
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if entry.name.isdigit() and int(fields[1]) == me:
                    out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                continue
        return out

    def seconds(self) -> float:
        """The CPU seconds spent since."""
        live = self._live_children()
        spent = time.process_time() - self._self + self._children_rusage() - self._reaped
        for pid, before in self._children.items():  # reaped: counted whole by the rusage
            spent += live[pid] - before if pid in live else -before
        return spent + sum(cpu for pid, cpu in live.items() if pid not in self._children)


def _cancellable(target: str, body: Any, stopping: Any) -> dict[str, Any]:
    """Task ``target`` on ``body``, its solves cancelled by ``stopping`` (as in
    ``api.solve._call``, which then fails the request instead of keeping the answer)."""
    from api.jobs.registry import import_target
    from solvers.cancel import cancelling

    with cancelling(stopping):
        result: dict[str, Any] = import_target(target)(body, progress=None)
    return result


@pytest.mark.parametrize("backend", ["highspy", "pyomo"])
def test_an_allocation_in_the_solver_pool_ends_soon_once_the_service_stops(backend: str) -> None:
    # a 30 s synchronous allocation still running at the stop ran on to its time limit (a
    # pyomo one went on without its killed worker: the fallback baselines, then the
    # shadow-price LP to the limit), and the process's exit joined its pool thread
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from api.schemas.allocations import AllocationCreate
    from solvers.allocation.literature import generate_literature
    from solvers.allocation.pyomo_worker import end_workers

    req = generate_literature(seed=0, num_orders=1000, num_nodes=10, vip_share=0.1)
    params = {"mode": "batch", "backend": backend, "time_limit_s": 30.0}
    body = AllocationCreate.model_validate({"request": req.model_dump(), "params": params})
    stopping = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(_cancellable, "api.tasks.allocations:run", body, stopping)
        time.sleep(2.0)
        t0, cpu = time.monotonic(), _CpuSince()
        stopping.set()
        if backend == "pyomo":
            end_workers()  # as the service's stop does
        result = future.result(timeout=60)  # the time limit is 30 s: a hang fails
    cpu_s, wall_s = cpu.seconds(), time.monotonic() - t0
    assert cpu_s < STOP_CPU_S, (cpu_s, wall_s, result["stats"]["notes"])
    assert result["assignments"]  # an answer all the same (nobody waits for it)
    assert any("cancelled" in note for note in result["stats"]["notes"])


@pytest.mark.parametrize("engine", ["pyvrp", "ortools"])
def test_a_route_plan_in_the_solver_pool_ends_soon_once_the_service_stops(engine: str) -> None:
    # a synchronous route plan still running at the stop searched on to its time limit
    # (26-27 s after SIGTERM at 300 orders and 30 s), and the process's exit joined it
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from scenarios.generate import generate_city

    scenario = generate_city(seed=1, num_orders=300, num_nodes=4, num_couriers=15)
    body = {
        "scenario": scenario.model_dump(mode="json"),
        "params": {"time_limit_s": 30.0, "engine": engine},
    }
    stopping = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(_cancellable, "api.tasks.routes:run", body, stopping)
        time.sleep(3.0)  # searching
        t0, cpu = time.monotonic(), _CpuSince()
        stopping.set()
        result = future.result(timeout=60)  # the time limit is 30 s: a hang fails
    cpu_s, wall_s = cpu.seconds(), time.monotonic() - t0
    assert cpu_s < STOP_CPU_S, (cpu_s, wall_s)
    assert result["plan"]["routes"]  # its best so far (nobody waits for it)


@pytest.mark.parametrize("where", ["between_replications", "inside_a_replication"])
def test_a_plans_twin_evaluation_ends_soon_once_the_service_stops(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the twin evaluation of a synchronous plan did not look at the cancellation: 200
    # replications (or a few long ones, with a 1 s tick) ran on after the stop, and the
    # process's exit joined the plan's pool thread for as long
    import threading
    import time

    import simulation.twin as twin
    from api.schemas.plans import PlanCreate
    from api.tasks.plans import EVALUATION_CANCELLED, make_plan
    from scenarios.generate import generate_city
    from solvers.cancel import cancel_with

    scenario = generate_city(seed=1, num_orders=300, num_nodes=4, num_couriers=15)
    evaluation: dict[str, object] = {"replications": 200}
    if where == "inside_a_replication":  # a 1 s tick: ~90,000 SimPy steps a day
        evaluation = {"replications": 3, "params": {"tick_s": 1, "max_overtime_s": 604800}}
    body = PlanCreate.model_validate(
        {
            "scenario": scenario.model_dump(mode="json"),
            "allocation": {"time_limit_s": 1.0},
            # greedy ends when its routes are built: the limit only lets a busy machine
            # build the travel matrix (at 1 s, CI's once built none: no route, no plan)
            "routing": {"engine": "greedy", "time_limit_s": 20.0},
            "evaluation": evaluation,
        }
    )
    stopping = threading.Event()
    set_at: list[float] = []
    first_over = threading.Event()

    def stop() -> None:
        set_at.append(time.monotonic())
        stopping.set()

    def progress(share: float, detail: dict[str, Any] | None = None, /) -> None:
        # the first replication is over: stop now, or inside the next one
        if share > 0.5 and not first_over.is_set():
            first_over.set()
            if where == "between_replications":
                stop()

    looks_after_stop: list[bool] = []
    looks = twin.cancelled

    def looking() -> bool:
        # the twin's look at the cancellation every CHECK_EVERY_STEPS steps of a day: the
        # stop comes right after one inside the second replication (no wall clock: a day
        # at a 1 s tick takes 1-2 s), the twin must see it at its next look
        if where == "inside_a_replication" and first_over.is_set() and not stopping.is_set():
            stop()
            return False
        seen = looks()
        if stopping.is_set():
            looks_after_stop.append(seen)
        return seen

    monkeypatch.setattr(twin, "cancelled", looking)
    cancel_with(stopping)
    try:
        result = make_plan(body, progress=progress)
    finally:
        cancel_with(None)
    assert stopping.is_set()
    assert time.monotonic() - set_at[-1] < 5.0
    if where == "inside_a_replication":
        assert looks_after_stop == [True]  # cut at its next look, inside the day
    assert result.kpis is None  # a part of the replications is no estimate
    assert EVALUATION_CANCELLED in result.diagnosis
    assert result.plan.routes  # the plan all the same (nobody waits for it)


def test_a_plans_fallback_in_the_request_thread_ends_soon_once_the_service_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a plan that overran its time limit + grace is answered with the degraded plan, made in
    # the request's own (non-daemon) thread with up to 5 replications: not cancelled by the
    # stop, 2 days with a 1 s tick (~10 s each) held the process's exit ~20 s. Cut short by
    # the stop, it ends the request as the stop's (failed, 503), as a cancelled solve does
    import threading
    import time

    from fastapi import HTTPException

    import api.tasks.plans as plans
    import simulation.twin as twin
    from api.core.config import Settings
    from api.jobs.registry import TaskRegistry, TaskSpec
    from api.jobs.service import SYNC_AT_STOP
    from api.solve import _fallback
    from api.tasks.plans import EVALUATION_CANCELLED
    from scenarios.generate import generate_city
    from solvers.cancel import current_cancel

    made: list[dict[str, Any]] = []
    real = plans.fallback_plan

    def recording(payload: Any, *, reason: str) -> dict[str, Any]:
        made.append(real(payload, reason=reason))
        return made[-1]

    monkeypatch.setattr(plans, "fallback_plan", recording)

    scenario = generate_city(seed=1, num_orders=300, num_nodes=4, num_couriers=15)
    payload = {
        "scenario": scenario.model_dump(mode="json"),
        "evaluation": {"replications": 2, "params": {"tick_s": 1, "max_overtime_s": 604800}},
    }
    registry = TaskRegistry()
    registry.add(
        TaskSpec("plans", "api.tasks.plans:run_plan", fallback="api.tasks.plans:fallback_plan")
    )
    stopping = threading.Event()
    ctx = SimpleNamespace(
        registry=registry, stopping=stopping, metrics=Metrics(), settings=Settings()
    )
    recorded: list[tuple[str, str | None]] = []
    attempt = SimpleNamespace(
        ctx=ctx,
        kind="plans",
        payload=payload,
        job_id="j",
        record=lambda status, result, **kw: recorded.append((status, kw.get("error"))),
        request=None,
    )
    looks = twin.cancelled

    def looking() -> bool:
        # the stop comes while the fallback's evaluation is running: at the twin's first
        # look at the cancellation in its first day (a day at a 1 s tick takes 1-2 s: a
        # timer could come after the evaluation's end); it must see it at its next look
        if not stopping.is_set():
            stopping.set()
            return False
        return looks()

    monkeypatch.setattr(twin, "cancelled", looking)
    # the evaluation runs in this thread: its CPU time, not the wall clock, tells a cut
    # evaluation from a whole one on a loaded machine too
    t0 = time.thread_time()
    with pytest.raises(HTTPException) as cut:  # the stop's answer, its cut plan not kept
        _fallback(cast(Any, attempt), "timeout", "no answer within 30 s + 5 s")
    assert time.thread_time() - t0 < 10.0
    assert cut.value.status_code == 503
    assert cut.value.headers == {"Retry-After": "5", "Connection": "close"}
    assert recorded == [("failed", SYNC_AT_STOP)]
    assert EVALUATION_CANCELLED in made[0]["diagnosis"]  # cut short by the stop
    assert current_cancel() is None  # the request thread's own cancellation is left as it was


async def _fast_solve_in_its_fallback(
    ctx: ServiceContext, request: Any, entered: threading.Event
) -> Any:
    """A fast-lane solve of ``test_crash_fallback`` for ``request`` (its task, on the running
    loop), once its fallback, held by the caller, has set ``entered`` in its worker thread."""
    import asyncio

    from pydantic import BaseModel

    import api.solve as solve

    class Body(BaseModel):
        x: int = 1

    task = asyncio.ensure_future(
        solve.solve_fast(
            ctx,
            request,
            kind="test_crash_fallback",
            body=Body(),
            principal=Principal(key_id=None, role=Role.ADMIN),
            seed=None,
            time_limit_s=5.0,
            lane=ctx.lanes["fast"],
        )
    )
    deadline = time.monotonic() + 20
    while not entered.is_set():  # the fallback runs in its thread
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    return task


def _cut_by_the_server(
    ctx: ServiceContext,
    monkeypatch: pytest.MonkeyPatch,
    *,
    stored_first: bool,
) -> tuple[Any, dict[str, Any]]:
    """Run a fast-lane solve whose solver crashes, its fallback (in a worker thread) held
    until the server's shutdown has cut the request (its task cancelled, as uvicorn does at
    the end of its graceful timeout), or, ``stored_first``, let finish and store its end
    before the cut reaches the request: what ``solve_fast`` ended with, and the request's
    state. The service's stop (``ctx.stopping``) has not begun: the thread ends before it."""
    import asyncio
    import threading

    from starlette.requests import Request

    import api.solve as solve
    import tests.api.helpers as helpers

    entered, release, settled = threading.Event(), threading.Event(), threading.Event()
    real_fallback, real_settle = helpers.fallback_task, solve._settle

    def held_fallback(payload: Any, *, reason: str) -> dict[str, Any]:
        entered.set()
        assert release.wait(10)
        return real_fallback(payload, reason=reason)

    def settle(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_settle(*args, **kwargs)
        finally:
            settled.set()

    monkeypatch.setattr(helpers, "fallback_task", held_fallback)
    monkeypatch.setattr(solve, "_settle", settle)

    async def receive() -> Any:
        return {"type": "http.request", "body": b'{"x": 1}', "more_body": False}

    state: dict[str, Any] = {"input_hash": "h"}
    scope = {"type": "http", "method": "POST", "path": "/v1/allocations", "headers": []}
    request = Request({**scope, "state": state}, receive)

    async def main() -> Any:
        task = await _fast_solve_in_its_fallback(ctx, request, entered)
        if stored_first:
            release.set()
            assert settled.wait(10)  # the loop held: the request has not seen the answer
            task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
            return await task
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        with pytest.raises(asyncio.CancelledError):
            await task  # the middleware answers its 503
        release.set()  # the fallback ends now, before the service's stop
        while not settled.is_set():
            await asyncio.sleep(0.01)
        return None

    ended = asyncio.run(main())
    return ended, state


def _job_row(ctx: ServiceContext, job_id: str) -> Any:
    from api.db.models import Job

    assert ctx.jobs is not None and ctx.sessions is not None
    ctx.jobs.settle_records(job_id)
    with ctx.sessions() as session:
        return session.get(Job, job_id)


def _fallbacks(ctx: ServiceContext, kind: str = "test_crash_fallback") -> float:
    """The fallback answers counted for ``kind``'s crashes."""
    value = ctx.metrics.registry.get_sample_value(
        "dispatchlab_fallback_plans_total", {"endpoint": kind, "reason": "crash"}
    )
    return value or 0.0


def test_a_fast_solve_cut_during_its_fallback_is_failed_as_its_503_says(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the server's shutdown cut a fast-lane request while its fallback ran in a worker
    # thread: nothing recorded its job failed, though the middleware's 503 said "marked
    # failed"; the thread, ending before the service's stop, stored the job done with the
    # fallback's answer (counted as served), which nobody received
    from api.jobs.service import SYNC_AT_STOP
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    ended, state = _cut_by_the_server(ctx, monkeypatch, stored_first=False)
    assert ended is None
    job = _job_row(ctx, state["audit_job_id"])
    assert job is not None
    assert (job.status, job.error, job.result, job.fallback) == (
        "failed",
        SYNC_AT_STOP,
        None,
        False,
    )
    assert [e["message"] for e in job.events][-1] == SYNC_AT_STOP
    assert state["audit_job_status"] == "failed"  # the middleware's 503: "marked failed"
    assert _fallbacks(ctx) == 0.0  # its answer was served to nobody


def test_a_fast_solve_whose_fallback_answer_was_stored_before_the_cut_is_answered(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fallback's thread stored the job done just before the cut reached the request:
    # the request got the 503 "marked failed" for a job stored done; now it gets the answer
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    ended, state = _cut_by_the_server(ctx, monkeypatch, stored_first=True)
    assert ended is not None and ended.job_id == state["audit_job_id"]
    assert ended.fallback and ended.result["value"] == "fallback"
    assert ended.fallback_reason == ended.result["reason"]
    job = _job_row(ctx, ended.job_id)
    assert job is not None
    assert (job.status, job.result, job.fallback) == ("done", ended.result, True)
    assert state["audit_job_status"] == "done"
    assert _fallbacks(ctx) == 1.0


@pytest.mark.parametrize("job_status", ["queued", "done", "running"])
def test_the_503_of_a_request_cut_by_the_shutdown_tells_what_became_of_its_job(
    caplog: pytest.LogCaptureFixture, job_status: str
) -> None:
    # the middleware's 503 said "marked failed, send it again" for any request naming a
    # job: an async submit cut after its job was queued left the job queued (it runs on
    # another replica or after the restart), and a re-send ran it twice; a synchronous
    # solve cut after its outcome was stored done was not failed either
    import datetime as dt
    import json
    import logging

    from starlette.requests import Request

    from api.core.config import Settings
    from api.solve import _Attempt, submit_job

    settings = Settings(auth_enabled=False, retry_after_s=7)
    jobs = SimpleNamespace(
        submit=lambda session, **kw: SimpleNamespace(id="job-1"),
        confirm=lambda session, job: True,  # its held job let go (JobService.confirm)
        record_sync_end=lambda session, job, outcome: True,
    )
    ctx = cast(
        ServiceContext,
        cast(Any, SimpleNamespace(settings=settings, metrics=Metrics(), audit=None, jobs=jobs)),
    )
    principal = Principal(key_id=None, role=Role.ADMIN)

    def begin(scope: Any) -> None:
        request = Request(scope)
        if job_status == "queued":  # an async submit (mode async, or a job-only kind)
            submit_job(
                ctx,
                cast(Any, None),
                request,
                kind="routes",
                payload={},
                principal=principal,
                seed=None,
            )
        else:  # a synchronous solve, its row written at its start (api.solve._begin)
            scope["state"].update(audit_job_id="job-1", audit_job_status="running")
            if job_status == "done":  # its outcome stored, its answer not yet sent
                attempt = _Attempt(
                    ctx, "routes", {}, principal, None, "h", "job-1", dt.datetime.now(dt.UTC),
                    session=cast(Any, object()), job=cast(Any, object()), request=request,
                )  # fmt: skip
                attempt.record("done", {"routes": []})

    with caplog.at_level(logging.WARNING):
        sent = _cut_by_the_shutdown(ctx, begin)
    assert sent[0]["status"] == 503
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    assert headers["connection"] == "close"
    message = json.loads(sent[1]["body"])["message"]
    assert "shutting down" in message
    line = [r.getMessage() for r in caplog.records if r.name == "api.core.middleware"]
    if job_status == "running":  # failed by the stop (api.solve; JobService.stop)
        assert "job job-1, marked failed" in message and "send it again" in message
        assert headers["retry-after"] == "7"
        assert "(job job-1, marked failed)" in line[0]
        return
    assert "marked failed" not in message and "send it again" not in message
    assert "retry-after" not in headers  # nothing to send again
    assert "/v1/jobs/job-1" in message
    if job_status == "queued":
        assert "job job-1 was queued" in message and "will run" in message
        assert "run the job twice, unless it carries the same Idempotency-Key" in message
        assert "(job job-1, queued: it will run)" in line[0]
    else:
        assert "job job-1 was done" in message
        assert "(job job-1, done)" in line[0]


def _cut_in_its_thread(
    ctx: Any,
    work: Callable[[Any], Any],
    entered: threading.Event,
    release: threading.Event,
    *,
    hold_s: float = 0.05,
) -> tuple[list[dict[str, Any]], bool, list[Any]]:
    """A POST whose route (a sync one, in a worker thread) runs ``work(request)``, cut by the
    server's shutdown (as uvicorn cuts it) once ``entered`` is set; ``release`` is set (the
    thread carries on) ``hold_s`` after the cut, or once its 503 is sent if sooner.

    Returns, once the thread has ended: what the middleware sent, whether it was sent before
    the release, and what ``work`` returned or raised (nobody hears it).
    """
    import asyncio
    import time

    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request

    from api.core.middleware import ServiceMiddleware

    finished = threading.Event()
    ended: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)

        def run() -> None:
            try:
                ended.append(work(request))
            except Exception as err:
                ended.append(err)
            finally:
                finished.set()

        await run_in_threadpool(run)

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def main() -> bool:
        scope = {"type": "http", "method": "POST", "path": "/v1/simulations", "headers": []}
        task = asyncio.ensure_future(ServiceMiddleware(app, ctx)(scope, receive, send))
        deadline = time.monotonic() + 20
        while not entered.is_set():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")  # as uvicorn
        await asyncio.wait({task}, timeout=hold_s)
        answered_first = task.done()
        release.set()  # the thread carries on
        await task
        while not finished.is_set():
            await asyncio.sleep(0.01)
        return answered_first

    answered_first = asyncio.run(main())
    return sent, answered_first, ended


def _queue_test_job(ctx: Any) -> Callable[[Any], Any]:
    """``work`` for :func:`_cut_in_its_thread`: an async submit, as POST /v1/simulations."""
    import api.solve as solve

    def queue(request: Any) -> Any:
        with ctx.sessions() as session:
            return solve.queue_job(
                ctx,
                session,
                request,
                principal=Principal(key_id=None, role=Role.ADMIN),
                idem_key=None,
                kind="test_sleep",
                payload={"seconds": 0},
                seed=None,
            )

    return queue


def _solve_now(ctx: Any, kind: str) -> Callable[[Any], Any]:
    """``work`` for :func:`_cut_in_its_thread`: a synchronous solve of ``kind``, as POST
    /v1/routes runs it in its worker thread."""
    import api.solve as solve

    def solve_it(request: Any) -> Any:
        with ctx.sessions() as session:
            return solve.solve_sync(
                ctx,
                session,
                request,
                kind=kind,
                payload={"value": 1},
                principal=Principal(key_id=None, role=Role.ADMIN),
                seed=None,
                time_limit_s=30.0,
                lane=ctx.lanes["heavy"],
            )

    return solve_it


def _held(
    entered: threading.Event, release: threading.Event, real: Any, *, after: bool = False
) -> Any:
    """``real``, its call held (``entered`` set) until ``release``: before it, or ``after``."""

    def held_call(*args: Any, **kwargs: Any) -> Any:
        if not after:
            entered.set()
            assert release.wait(20)
        result = real(*args, **kwargs)
        if after:
            entered.set()
            assert release.wait(20)
        return result

    return held_call


@pytest.mark.parametrize("held", ["before_its_submit", "in_its_submit"])
def test_an_async_submit_cut_by_the_shutdown_is_queued_only_if_its_503_says_so(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, held: str
) -> None:
    # the server's shutdown cut an async submit while its thread had not committed its
    # job: the 503 said "send it again", but the thread carried on and queued the job, so
    # the re-send (no Idempotency-Key) ran it twice. Now a submit the cut reaches first
    # does not queue its job, and a cut that reaches a submit committing waits for it and
    # names the job queued
    import json

    from sqlalchemy import func, select

    import api.solve as solve
    from api.db.models import Job
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    entered, release = threading.Event(), threading.Event()
    if held == "before_its_submit":  # its thread not yet at the submit when the cut comes
        monkeypatch.setattr(solve, "submit_job", _held(entered, release, solve.submit_job))
    else:  # its thread in the submit (inserting, committing) when the cut comes
        monkeypatch.setattr(ctx.jobs, "submit", _held(entered, release, ctx.jobs.submit))
    sent, _, _ = _cut_in_its_thread(ctx, _queue_test_job(ctx), entered, release)
    assert sent[0]["status"] == 503
    message = json.loads(sent[1]["body"])["message"]
    with ctx.sessions() as session:
        ids = list(session.scalars(select(Job.id).where(Job.kind == "test_sleep")))
        assert session.scalar(select(func.count()).select_from(Job)) == len(ids)
    if held == "before_its_submit":  # cut first: not queued, to be sent again
        assert ids == [], message
        assert "send it again" in message and "job" not in message
    else:  # cut while committing: queued, and its 503 says so
        assert len(ids) == 1, message
        assert f"its job {ids[0]} was queued" in message and "do not send" in message


@pytest.mark.parametrize("kind", ["test_sleep", "test_crash_fallback"])
def test_a_synchronous_solve_ending_between_the_cut_and_the_stop_is_failed_as_its_503_says(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # uvicorn's cut answered the request 503 (its job marked failed, send it again) and the
    # service's stop (ctx.stopping) begins milliseconds later: a solve (or fallback) that
    # answered in between was stored done, an answer nobody received, while the client
    # sent the request again
    import json

    from fastapi import HTTPException
    from sqlalchemy import select

    import api.solve as solve
    from api.db.models import Job
    from api.jobs.service import SYNC_AT_STOP
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(solve, "_call", _held(entered, release, solve._call))  # solving
    sent, _, ended = _cut_in_its_thread(ctx, _solve_now(ctx, kind), entered, release)
    assert not ctx.stopping.is_set()  # the window: cut, the stop not begun
    assert sent[0]["status"] == 503
    message = json.loads(sent[1]["body"])["message"]
    with ctx.sessions() as session:
        job = session.scalars(select(Job).where(Job.kind == kind)).one()
    assert f"job {job.id}, marked failed" in message and "send it again" in message
    assert (job.status, job.error, job.result) == ("failed", SYNC_AT_STOP, None)
    assert job.events[-1]["message"] == SYNC_AT_STOP
    assert isinstance(ended[0], HTTPException) and ended[0].status_code == 503
    assert _fallbacks(ctx, kind) == 0.0  # no fallback answer was given


def test_a_synchronous_solve_storing_its_outcome_as_the_cut_comes_is_answered_as_stored(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the cut waits for an outcome being stored: the 503 points to the job's result
    import json

    from sqlalchemy import select

    from api.db.models import Job
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    entered, release = threading.Event(), threading.Event()
    held = _held(entered, release, ctx.jobs.record_sync_end, after=True)  # committed
    monkeypatch.setattr(ctx.jobs, "record_sync_end", held)
    sent, _, ended = _cut_in_its_thread(ctx, _solve_now(ctx, "test_sleep"), entered, release)
    message = json.loads(sent[1]["body"])["message"]
    with ctx.sessions() as session:
        job = session.scalars(select(Job).where(Job.kind == "test_sleep")).one()
    assert (job.status, job.result["value"]) == ("done", 1)
    assert f"its job {job.id} was done: its result is at /v1/jobs/{job.id}" in message
    assert ended[0].job_id == job.id  # answered (nobody hears it)


@pytest.mark.parametrize("hung", ["before_its_commit", "in_its_commit", "storing_an_outcome"])
def test_the_cut_waits_for_a_hung_database_only_so_long_and_its_503_holds(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, hung: str
) -> None:
    # the cut waited for an async submit committing with no time limit: a hung database
    # held its 503 for ever. It waits CUT_WAIT_S; then the 503 says the job will not run
    # (send it again), and the submit keeps to it when it ends: rolled back before its
    # commit, or its job cancelled at once after it; an outcome being stored is pointed to
    import json

    from sqlalchemy import select

    import api.core.errors as errors
    from api.db.models import Job
    from api.jobs.service import WITHDRAWN_AT_CUT
    from tests.api.conftest import app_of

    monkeypatch.setattr(errors, "CUT_WAIT_S", 0.3)
    ctx = app_of(make_client(settings)).state.ctx
    entered, release = threading.Event(), threading.Event()
    if hung == "storing_an_outcome":
        held = _held(entered, release, ctx.jobs.record_sync_end)
        monkeypatch.setattr(ctx.jobs, "record_sync_end", held)
        work = _solve_now(ctx, "test_sleep")
    elif hung == "before_its_commit":  # waiting for a lock (the write gate, the queue's)
        monkeypatch.setattr(ctx.jobs, "submit", _held(entered, release, ctx.jobs.submit))
        work = _queue_test_job(ctx)
    else:  # in its commit, which lands once the database answers
        real_submit = ctx.jobs.submit

        def hung_in_its_commit(session: Any, **kwargs: Any) -> Any:
            real_commit = _held(entered, release, session.commit)

            def commit() -> None:
                real_commit()
                # a dispatcher looks for queued jobs in the milliseconds between the late
                # commit and the submit's look at the cut: it claimed and started the job,
                # then killed it as "cancelled by the client while running"
                ctx.jobs._claim()

            session.commit = commit
            try:
                return real_submit(session, **kwargs)
            finally:
                del session.commit

        monkeypatch.setattr(ctx.jobs, "submit", hung_in_its_commit)
        work = _queue_test_job(ctx)
    sent, answered_first, ended = _cut_in_its_thread(ctx, work, entered, release, hold_s=5.0)
    assert answered_first  # within CUT_WAIT_S, not once the database answered
    assert sent[0]["status"] == 503
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    assert headers["retry-after"] == str(ctx.settings.retry_after_s)
    message = json.loads(sent[1]["body"])["message"]
    assert "the database had not confirmed it within 0.3 s" in message
    with ctx.sessions() as session:
        jobs = list(session.scalars(select(Job)))
    if hung == "storing_an_outcome":  # stored once the database answered: pointed to
        assert [(j.status, j.result["value"]) for j in jobs] == [("done", 1)]
        assert f"outcome of its job {jobs[0].id} was being stored" in message
        assert f"follow it at /v1/jobs/{jobs[0].id}" in message
        return
    assert "the job will not run" in message and "send it again" in message
    assert ended[0].status_code == 503  # not a 202 (kept for an Idempotency-Key)
    job_id = message.split("its job ")[1].split()[0]
    if hung == "before_its_commit":  # rolled back: never queued
        assert jobs == []
    else:  # committed after the cut answered: held, never claimed, cancelled at once
        assert [(j.id, j.status, j.error) for j in jobs] == [
            (job_id, "cancelled", WITHDRAWN_AT_CUT)
        ]
        assert jobs[0].started_at is None and jobs[0].attempts == 0
        assert [e["message"] for e in jobs[0].events] == ["queued", WITHDRAWN_AT_CUT]


def _request_cut_by(cut: Any) -> Any:
    """A POST /v1/simulations request whose server's cut is ``cut`` (as the middleware's)."""
    from starlette.requests import Request

    from api.core.errors import REQUEST_CUT

    async def receive() -> Any:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/simulations", "headers": []}
    return Request({**scope, "state": {REQUEST_CUT: cut}}, receive)


@pytest.mark.parametrize("server", ["stopped", "killed", "stopped_before_the_commit"])
def test_a_submit_whose_late_commit_outlives_its_server_never_runs(
    settings: Any, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    # the cut stopped waiting for an async submit's commit (a hung database) and its 503
    # said the job will not run; the server ended before the commit returned (its thread
    # never saw it): the job stayed queued and ran on the next start (or on this server
    # before its stop). Now it is held, never claimed, and the stop (if the commit landed
    # before it) or the next start's recovery cancels it
    import asyncio

    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from api.core.errors import RequestCut
    from api.db.models import Job
    from api.jobs.service import _LOCAL_INSTANCES, STARTED_ON, UNCONFIRMED_AT_STOP
    from api.main import create_app
    from tests.api.conftest import registry_with_test_kinds

    if server == "stopped_before_the_commit" and settings.database_url is None:
        pytest.skip("SQLite: the open write holds its lock (the stop would wait on it)")
    first = TestClient(create_app(settings, registry=registry_with_test_kinds()))
    first.__enter__()
    running = [first]  # the clients not yet exited

    def exit_first() -> None:
        running.remove(first)
        first.__exit__(None, None, None)  # the service's stop

    ctx = cast(Any, first.app).state.ctx
    entered, release, landed, gone = (threading.Event() for _ in range(4))
    real_submit = ctx.jobs.submit

    def hung_in_its_commit(session: Any, **kwargs: Any) -> Any:
        real_commit = session.commit

        def commit() -> None:
            entered.set()
            assert release.wait(20)
            real_commit()  # it lands
            landed.set()
            gone.wait(60)  # its server has ended: this thread never goes on

        session.commit = commit
        try:
            return real_submit(session, **kwargs)
        finally:
            del session.commit

    monkeypatch.setattr(ctx.jobs, "submit", hung_in_its_commit)
    cut = RequestCut()
    queue = _queue_test_job(ctx)
    ended: list[Any] = []

    def submitting() -> None:
        try:
            ended.append(queue(_request_cut_by(cut)))
        except Exception as err:
            ended.append(err)

    thread = threading.Thread(target=submitting)
    thread.start()
    try:
        assert entered.wait(20)
        assert asyncio.run(cut.cut_now(0.0)) is False  # the cut stopped waiting: unconfirmed
        if server == "stopped_before_the_commit":  # PostgreSQL lands it after the stop
            exit_first()
        release.set()
        assert landed.wait(20)
        if server == "stopped":  # landed before the stop, its thread still held up
            exit_first()
        elif server == "killed":  # kill -9: no stop; its heartbeat ends
            jobs = ctx.jobs
            jobs._stop.set()
            jobs._wake.set()
            for worker in jobs._threads:
                worker.join(20)
            _LOCAL_INSTANCES.discard(jobs.instance_id)
        with ctx.sessions() as session:
            job = session.scalars(select(Job).where(Job.kind == "test_sleep")).one()
        if server == "stopped":  # cancelled by the stop
            assert (job.status, job.error) == ("cancelled", UNCONFIRMED_AT_STOP)
        else:  # left to the next start: held, not claimed
            assert (job.status, job.started_at) == ("queued", None)
        following = TestClient(create_app(settings, registry=registry_with_test_kinds()))
        following.__enter__()  # its recovery, at start
        running.append(following)
        after = cast(Any, following.app).state.ctx
        with after.sessions() as session:
            job = session.get(Job, job.id)
        assert (job.status, job.error, job.started_at) == ("cancelled", UNCONFIRMED_AT_STOP, None)
        assert not any(e["message"].startswith(STARTED_ON) for e in job.events), job.events
    finally:
        release.set()
        gone.set()
        thread.join(20)
        for client in reversed(running):
            client.__exit__(None, None, None)
    assert ended[0].status_code == 503  # the thread, had it gone on, kept to its 503


def test_a_cut_that_stops_waiting_while_the_job_is_let_go_points_to_it(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the submit's job was committed held, and the cut stopped waiting while the submit let
    # it go (a second commit, the database hung again): the job runs, so the 503 does not
    # say it will not run, it points to it (a cancel at the stop, were it still held)
    import json

    from sqlalchemy import select

    import api.core.errors as errors
    from api.db.models import Job
    from tests.api.conftest import app_of

    monkeypatch.setattr(errors, "CUT_WAIT_S", 0.3)
    ctx = app_of(make_client(settings)).state.ctx
    ctx.jobs.executor.capacity = 0  # it stays queued
    entered, release = threading.Event(), threading.Event()
    real_confirm = ctx.jobs.confirm

    def hung_confirm(session: Any, job: Any) -> bool:
        session.commit = _held(entered, release, session.commit)
        try:
            return bool(real_confirm(session, job))
        finally:
            del session.commit

    monkeypatch.setattr(ctx.jobs, "confirm", hung_confirm)
    sent, answered_first, ended = _cut_in_its_thread(
        ctx, _queue_test_job(ctx), entered, release, hold_s=5.0
    )
    assert answered_first and sent[0]["status"] == 503
    message = json.loads(sent[1]["body"])["message"]
    with ctx.sessions() as session:
        job = session.scalars(select(Job)).one()
    assert (job.status, job.owner) == ("queued", None)  # let go: any dispatcher claims it
    assert f"its job {job.id}, written, was being confirmed queued" in message
    assert f"follow it at /v1/jobs/{job.id}: it runs unless it ends cancelled" in message
    assert ended[0].status_code == 202  # kept for an Idempotency-Key: not queued twice


@pytest.mark.parametrize("failing", ["its_commit", "its_confirmation"])
def test_a_submit_that_fails_after_writing_its_job_leaves_it_held_then_cancelled(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    # its request ends in error (a 500), not told the job is queued: a commit whose answer
    # was lost had queued the job all the same, to run. Now it stays held (never claimed)
    # and its replica's next recovery cancels it
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    from api.core.errors import RequestCut
    from api.db.models import Job
    from api.jobs.service import UNCONFIRMED_IN_ERROR
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    real_submit = ctx.jobs.submit

    def failed(session: Any, *, landed: bool) -> Any:
        real_commit = session.commit

        def commit() -> None:
            if landed:
                real_commit()  # it landed, its answer lost
            raise OperationalError("COMMIT", {}, Exception("connection lost"))

        return commit

    def submit(session: Any, **kwargs: Any) -> Any:
        if failing == "its_commit":
            session.commit = failed(session, landed=True)
        try:
            return real_submit(session, **kwargs)
        finally:
            session.__dict__.pop("commit", None)
            if failing == "its_confirmation":  # the next commit, the confirmation's
                session.commit = failed(session, landed=False)

    monkeypatch.setattr(ctx.jobs, "submit", submit)
    with pytest.raises(OperationalError):
        _queue_test_job(ctx)(_request_cut_by(RequestCut()))
    with ctx.sessions() as session:
        job = session.scalars(select(Job)).one()
    if job.status == "queued":  # unless the dispatcher's recovery came first
        assert job.owner == ctx.jobs.instance_id  # held: no dispatcher claims it
        ctx.jobs.recover()
        with ctx.sessions() as session:
            job = session.get(Job, job.id)
    assert (job.status, job.error, job.started_at) == ("cancelled", UNCONFIRMED_IN_ERROR, None)


def test_a_submit_whose_held_job_was_cancelled_before_it_was_let_go_is_a_503(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cancelled between its commit and its confirmation (a DELETE of a client that listed
    # its jobs, or the recovery of a replica that took this one for dead): not a 202
    from fastapi import HTTPException

    from api.core.errors import RequestCut
    from api.db.models import Job
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    real_confirm = ctx.jobs.confirm

    def cancelled_first(session: Any, job: Any) -> bool:
        with ctx.sessions() as other:
            found = other.get(Job, job.id)
            ctx.jobs.cancel(other, found)
        return bool(real_confirm(session, job))

    monkeypatch.setattr(ctx.jobs, "confirm", cancelled_first)
    with pytest.raises(HTTPException) as raised:
        _queue_test_job(ctx)(_request_cut_by(RequestCut()))
    assert raised.value.status_code == 503
    job_id = str(raised.value.detail).split("its job ")[1].split()[0]
    assert raised.value.detail == (
        f"its job {job_id} was cancelled before it was confirmed queued (cancelled by the "
        "client): it will not run; send the request again"
    )
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
    assert (job.status, job.started_at) == ("cancelled", None)


def test_the_cuts_wait_ends_at_once_when_its_task_is_cancelled_again() -> None:
    # the event loop ending (asyncio.run's teardown once the lifespan's stop is done)
    # cancels the request's task again while its cut waits for a decision: the 503 is sent
    # at once, the decision unconfirmed, rather than the task ending unanswered
    import asyncio
    import time

    from api.core.errors import RequestCut

    cut = RequestCut()

    async def main() -> tuple[bool, float]:
        task = asyncio.ensure_future(cut.cut_now(60.0))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        task.cancel()
        confirmed = await task
        return confirmed, time.monotonic() - t0

    with cut.deciding() as already_cut:
        assert not already_cut
        confirmed, waited_s = asyncio.run(main())
    assert (confirmed, cut.cut, cut.unconfirmed) == (False, True, True)
    assert waited_s < 1.0
    with cut.deciding() as already_cut:  # a decision after the cut: the cut's 503 stands
        assert already_cut


def test_a_cut_reaching_a_submit_that_waits_for_the_submit_lock_waits_with_it(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the submit the cut reaches waits for the lock that serialises submits (PostgreSQL's
    # advisory transaction lock, SQLite's write lock), held by another submit between its
    # insert and its commit: the cut waits for both, and its 503 names the job queued
    import asyncio
    import json
    import threading
    import time

    from sqlalchemy import select
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request

    import api.solve as solve
    from api.core.middleware import ServiceMiddleware
    from api.db.models import Job
    from api.jobs.service import JobService
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    assert ctx.jobs is not None and ctx.sessions is not None
    ctx.jobs.executor.capacity = 0  # the jobs stay queued
    holding, let_go, entered, submitted = (threading.Event() for _ in range(4))
    counted, real_submit = JobService.queue_depth, ctx.jobs.submit

    def held_count(self: JobService, session: Any) -> int:
        depth = counted(self, session)
        if threading.current_thread().name == "holder":  # inserted, the lock held
            holding.set()
            assert let_go.wait(20)
        return depth

    monkeypatch.setattr(JobService, "queue_depth", held_count)

    def other_submit() -> None:
        with ctx.sessions() as session:
            ctx.jobs.submit(
                session, kind="test_sleep", payload={}, key_id=None, seed=None,
                input_hash="other", timeout_s=60.0,
            )  # fmt: skip

    holder = threading.Thread(target=other_submit, name="holder")
    holder.start()
    assert holding.wait(20)

    def entering(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        try:
            return real_submit(*args, **kwargs)
        finally:
            submitted.set()

    monkeypatch.setattr(ctx.jobs, "submit", entering)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)

        def queue() -> Any:  # a sync route (POST /v1/simulations), in a worker thread
            with ctx.sessions() as session:
                return solve.queue_job(
                    ctx,
                    session,
                    request,
                    principal=Principal(key_id=None, role=Role.ADMIN),
                    idem_key=None,
                    kind="test_sleep",
                    payload={"seconds": 0},
                    seed=None,
                )

        await run_in_threadpool(queue)

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def main() -> None:
        scope = {"type": "http", "method": "POST", "path": "/v1/simulations", "headers": []}
        task = asyncio.ensure_future(ServiceMiddleware(app, ctx)(scope, receive, send))
        deadline = time.monotonic() + 20
        while not entered.is_set():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # at the submit lock, the other submit holding it
        assert not submitted.is_set()
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")  # as uvicorn
        await asyncio.sleep(0.1)
        assert not task.done()  # the cut waits for the submit, which waits for the lock
        let_go.set()
        await task

    try:
        asyncio.run(main())
    finally:
        let_go.set()
        holder.join(20)
    assert submitted.is_set()
    assert sent[0]["status"] == 503
    message = json.loads(sent[1]["body"])["message"]
    with ctx.sessions() as session:
        jobs = dict(session.execute(select(Job.input_hash, Job.id)).all())
    assert len(jobs) == 2 and "other" in jobs, jobs
    ours = next(job_id for hashed, job_id in jobs.items() if hashed != "other")
    assert f"its job {ours} was queued" in message and "do not send" in message


@pytest.mark.parametrize("held", ["before_its_write", "in_its_write"])
def test_a_synchronous_solve_cut_while_writing_its_first_row_is_named_in_its_503(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, held: str
) -> None:
    # the cut reached a synchronous solve while its thread wrote its job's first (running)
    # row: it did not wait for the write, and its 503 said "send it again" naming no job,
    # though the row was written all the same (then failed by the stop). Now the cut waits
    # for the write (up to CUT_WAIT_S) and names the job, marked failed
    import json

    from sqlalchemy import select

    import api.solve as solve
    from api.core.errors import RequestCut
    from api.db.models import Job
    from api.jobs.service import SYNC_AT_STOP
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    entered, release, cut = threading.Event(), threading.Event(), threading.Event()
    after = held == "in_its_write"  # committed, not yet returned
    start = _held(entered, release, ctx.jobs.record_sync_start, after=after)
    monkeypatch.setattr(ctx.jobs, "record_sync_start", start)
    cut_now = RequestCut.cut_now

    async def cutting(self: RequestCut, wait_s: float | None = None) -> bool:
        confirmed = await cut_now(self, wait_s)
        cut.set()
        return confirmed

    monkeypatch.setattr(RequestCut, "cut_now", cutting)
    # the solve ends once the cut has answered (not in the milliseconds between the write
    # and the cut's next look, which would store it done, and the 503 say so)
    monkeypatch.setattr(solve, "_call", lambda *a: cut.wait(20) and {"value": 1})
    sent, _, ended = _cut_in_its_thread(ctx, _solve_now(ctx, "test_sleep"), entered, release)
    assert sent[0]["status"] == 503
    message = json.loads(sent[1]["body"])["message"]
    with ctx.sessions() as session:
        jobs = list(session.scalars(select(Job).where(Job.kind == "test_sleep")))
    assert len(jobs) == 1, message
    assert f"job {jobs[0].id}, marked failed" in message and "send it again" in message
    assert (jobs[0].status, jobs[0].error, jobs[0].result) == ("failed", SYNC_AT_STOP, None)
    assert ended[0].status_code == 503  # its thread ended as the cut's 503 said


def test_a_synchronous_solve_cut_before_it_began_writes_no_row(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the cut came before the solve's thread began (its 503, sent, said send it again and
    # named no job): the thread wrote a running row all the same and solved on
    from sqlalchemy import func, select

    import api.solve as solve
    from api.db.models import Job
    from tests.api.conftest import app_of

    ctx = app_of(make_client(settings)).state.ctx
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(solve, "solve_sync", _held(entered, release, solve.solve_sync))
    sent, _, ended = _cut_in_its_thread(ctx, _solve_now(ctx, "test_sleep"), entered, release)
    assert sent[0]["status"] == 503
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert ended[0].status_code == 503
    assert ctx.lanes["heavy"].slots.acquire(blocking=False)  # its slot given back


@pytest.mark.parametrize("hung", ["before_its_commit", "in_its_commit"])
def test_a_synchronous_solve_whose_first_row_the_database_holds_past_the_cut_wait(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, hung: str
) -> None:
    # the cut waits CUT_WAIT_S for a hung database writing the solve's first row; then its
    # 503 names the job, not confirmed, to be sent again, and the thread keeps to it: the
    # row rolled back before its commit, or failed at once after it; the solve not run
    import json

    from sqlalchemy import select

    import api.core.errors as errors
    import api.solve as solve
    from api.db.models import Job
    from api.jobs.service import SYNC_AT_STOP
    from tests.api.conftest import app_of

    monkeypatch.setattr(errors, "CUT_WAIT_S", 0.3)
    ctx = app_of(make_client(settings)).state.ctx
    entered, release = threading.Event(), threading.Event()
    real_start = ctx.jobs.record_sync_start

    def hung_start(session: Any, **kwargs: Any) -> Any:
        if hung == "before_its_commit":  # waiting for the write lock
            entered.set()
            assert release.wait(20)
            return real_start(session, **kwargs)
        session.commit = _held(entered, release, session.commit)
        try:
            return real_start(session, **kwargs)
        finally:
            del session.commit

    monkeypatch.setattr(ctx.jobs, "record_sync_start", hung_start)
    calls: list[Any] = []

    def solving(*args: Any) -> Any:
        calls.append(args)
        return {"value": 1}

    monkeypatch.setattr(solve, "_call", solving)
    sent, answered_first, ended = _cut_in_its_thread(
        ctx, _solve_now(ctx, "test_sleep"), entered, release, hold_s=5.0
    )
    assert answered_first and sent[0]["status"] == 503
    message = json.loads(sent[1]["body"])["message"]
    assert "the database had not confirmed it within 0.3 s" in message
    assert "send it again" in message
    job_id = message.split("its job ")[1].split()[0]
    with ctx.sessions() as session:
        jobs = list(session.scalars(select(Job)))
    if hung == "before_its_commit":
        assert jobs == [], message
    else:
        assert [(j.id, j.status, j.error) for j in jobs] == [(job_id, "failed", SYNC_AT_STOP)]
    assert ended[0].status_code == 503 and calls == []


@pytest.mark.parametrize("server", ["stopped", "stopped_before_the_commit", "killed"])
def test_a_synchronous_solve_whose_late_first_row_outlives_its_server_has_the_stops_reason(
    settings: Any, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    # the cut stopped waiting for a synchronous solve's first (running) row, its commit held
    # up by the database, and its 503 said the solve will not run; the row landed after its
    # server's graceful stop had failed its running solves (its thread never went on): the
    # next start's recovery failed it as a crash ("stopped unexpectedly"). Now it carries
    # the stop's reason, as a row the stop found does; after a kill -9, still a crash
    import asyncio

    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from api.core.errors import RequestCut
    from api.db.models import Job
    from api.jobs.service import _LOCAL_INSTANCES, SYNC_AT_STOP
    from api.main import create_app
    from tests.api.conftest import registry_with_test_kinds

    first = TestClient(create_app(settings, registry=registry_with_test_kinds()))
    first.__enter__()
    running = [first]  # the clients not yet exited

    def exit_first() -> None:
        running.remove(first)
        first.__exit__(None, None, None)  # the service's stop

    ctx = cast(Any, first.app).state.ctx
    entered, release, landed, gone = (threading.Event() for _ in range(4))
    real_start = ctx.jobs.record_sync_start

    def hung_in_its_commit(session: Any, **kwargs: Any) -> Any:
        real_commit = session.commit

        def commit() -> None:  # nothing written yet: the row is flushed by the commit
            entered.set()
            assert release.wait(20)
            real_commit()  # it lands
            landed.set()
            gone.wait(60)  # its server has ended: this thread never goes on

        session.commit = commit
        try:
            return real_start(session, **kwargs)
        finally:
            del session.commit

    monkeypatch.setattr(ctx.jobs, "record_sync_start", hung_in_its_commit)
    cut = RequestCut()
    solve_it = _solve_now(ctx, "test_sleep")
    ended: list[Any] = []

    def solving() -> None:
        try:
            ended.append(solve_it(_request_cut_by(cut)))
        except Exception as err:
            ended.append(err)

    thread = threading.Thread(target=solving)
    thread.start()
    try:
        assert entered.wait(20)
        assert asyncio.run(cut.cut_now(0.0)) is False  # the cut stopped waiting: unconfirmed
        if server == "stopped_before_the_commit":
            exit_first()
        release.set()
        assert landed.wait(20)
        if server == "stopped":  # landed before the stop, its thread still held up
            exit_first()
        elif server == "killed":  # kill -9: no stop; its heartbeat ends
            jobs = ctx.jobs
            jobs._stop.set()
            jobs._wake.set()
            for worker in jobs._threads:
                worker.join(20)
            _LOCAL_INSTANCES.discard(jobs.instance_id)
        following = TestClient(create_app(settings, registry=registry_with_test_kinds()))
        following.__enter__()  # its recovery, at start
        running.append(following)
        after = cast(Any, following.app).state.ctx
        with after.sessions() as session:
            job = session.scalars(select(Job).where(Job.kind == "test_sleep")).one()
        crash = "interrupted: the server stopped unexpectedly during this synchronous request"
        reason = crash if server == "killed" else SYNC_AT_STOP
        assert (job.mode, job.status, job.error, job.result) == ("sync", "failed", reason, None)
        assert job.events[-1]["message"] == reason
    finally:
        release.set()
        gone.set()
        thread.join(20)
        for client in reversed(running):
            client.__exit__(None, None, None)
    assert ended[0].status_code == 503  # the thread, had it gone on, kept to its 503


def _plain_request(path: str) -> Any:
    """A POST request to ``path`` with an empty JSON body, as a route's thread gets it."""
    from starlette.requests import Request

    async def receive() -> Any:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    return Request({**scope, "state": {"input_hash": "h"}}, receive)


def _retry_claim(session: Any, idem_key: str, endpoint: str) -> object:
    """What a retry with ``idem_key`` on ``endpoint`` gets from the key store now (a Slot:
    it runs)."""
    from api import idempotency

    return idempotency.claim(
        session,
        key_id=None,
        idem_key=idem_key,
        endpoint=endpoint,
        request_hash="h",
        ttl_s=60,
        pending_stale_s=60,
    )


@pytest.mark.parametrize("kind", ["test_sleep", "test_crash_fallback"])
def test_a_synchronous_solve_ending_once_its_process_dies_stores_no_outcome(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # SIGHUP or SIGQUIT to an API process: its clean-up (job processes joined, the fork server
    # and the pyomo workers stopped: up to seconds) went on while a synchronous solve ran in
    # its pool thread, and the solve's end (or the fallback plan of a solve the clean-up's
    # kills made fail) was stored done, with its Idempotency-Key's answer: no answer is sent
    # once the death is decided (the handler holds the event loop), so the retry after the
    # restart was replayed an answer nobody had received, or (the key's answer not stored
    # before the death) a 409 and then a fresh solve beside a done job. Now nothing is
    # stored: the row stays running for the next replica's recovery, the key is released
    from pydantic import BaseModel
    from sqlalchemy import select

    import api.solve as solve
    from api import idempotency
    from api.db.models import IdempotencyRecord, Job
    from api.jobs import service
    from tests.api.conftest import app_of

    monkeypatch.setattr(service, "_DYING", threading.Event())  # this test's process lives on
    ctx = app_of(make_client(settings)).state.ctx
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(solve, "_call", _held(entered, release, solve._call))  # solving
    request = _plain_request("/v1/routes")

    class Answer(BaseModel):
        job_id: str

    def compute() -> tuple[int, BaseModel, str | None]:
        outcome = _solve_now(ctx, kind)(request)
        return 200, Answer(job_id=outcome.job_id), None

    ended: list[Any] = []

    def run() -> None:
        with ctx.sessions() as session:
            try:
                ended.append(
                    solve.respond(
                        ctx,
                        session,
                        request,
                        principal=Principal(key_id=None, role=Role.ADMIN),
                        idem_key="order-42",
                        compute=compute,
                    )
                )
            except Exception as err:
                ended.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    assert entered.wait(20)
    service.stop_writing_before_death()  # the signal's handler, first thing
    release.set()
    thread.join(30)
    assert not thread.is_alive()
    [err] = ended
    assert getattr(err, "status_code", None) == 503, err  # which nobody receives
    with ctx.sessions() as session:
        job = session.scalars(select(Job).where(Job.kind == kind)).one()
        assert (job.status, job.result, job.error, job.fallback) == ("running", None, None, False)
        assert session.scalars(select(IdempotencyRecord)).all() == []  # released
        claimed = _retry_claim(session, "order-42", "POST /v1/routes")
    assert isinstance(claimed, idempotency.Slot)  # the retry solves again
    assert _fallbacks(ctx, kind) == 0.0  # no fallback answer was given


def test_a_fast_solve_ending_once_its_process_dies_writes_no_row(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fast lane's row is written behind its answer: one decided once the process is
    # about to die by a signal (here the fallback plan, in its worker thread) was queued
    # and written done, an answer nobody received; now none is, as after a crash
    import asyncio

    from fastapi import HTTPException

    import tests.api.helpers as helpers
    from api.jobs import service
    from tests.api.conftest import app_of

    monkeypatch.setattr(service, "_DYING", threading.Event())  # this test's process lives on
    ctx = app_of(make_client(settings)).state.ctx
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(helpers, "fallback_task", _held(entered, release, helpers.fallback_task))
    request = _plain_request("/v1/allocations")

    async def main() -> Any:
        task = await _fast_solve_in_its_fallback(ctx, request, entered)
        service.stop_writing_before_death()
        release.set()
        with pytest.raises(HTTPException) as dying:
            await task
        return dying.value

    dying = asyncio.run(main())
    assert dying.status_code == 503
    job_id = request.state.audit_job_id
    assert job_id is not None
    assert _job_row(ctx, job_id) is None
    assert _fallbacks(ctx) == 0.0


@pytest.mark.parametrize(
    "dies",
    [
        "before_the_submit",
        "before_its_commit",
        "before_its_confirmation",
        "between_its_confirmations_look_and_commit",
    ],
)
def test_an_async_submit_once_its_process_dies_queues_no_job_and_frees_its_key(
    settings: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, dies: str
) -> None:
    # SIGHUP or SIGQUIT to an API process: an async submit still in its route's thread
    # committed its job and let it go (queued for any replica) once the death was decided,
    # and stored its Idempotency-Key's 202, which nobody received (the handler holds the
    # event loop until the process dies). Now it is refused as the synchronous solves are:
    # a 503 with Retry-After naming no job, no job queued (rolled back, or left held, which
    # no dispatcher claims and the next replica's recovery cancels), the key released so
    # that the retry queues the job on another replica
    from fastapi import HTTPException
    from sqlalchemy import select

    import api.solve as solve
    from api import idempotency
    from api.core.errors import RequestCut
    from api.db.models import IdempotencyRecord, Job
    from api.jobs import service
    from tests.api.conftest import app_of

    monkeypatch.setattr(service, "_DYING", threading.Event())  # this test's process lives on
    ctx = app_of(make_client(settings)).state.ctx
    jobs = ctx.jobs
    if dies == "before_the_submit":
        service.stop_writing_before_death()
    elif dies == "before_its_commit":  # after the insert, as the queue is counted
        real_depth = jobs.queue_depth

        def depth(session: Any) -> int:
            service.stop_writing_before_death()
            return int(real_depth(session))

        monkeypatch.setattr(jobs, "queue_depth", depth)
    elif dies == "between_its_confirmations_look_and_commit":
        # decided by the signal's handler (another thread) as the confirmation, past its
        # first look, lets the job go: it was committed all the same (queued, its 202
        # stored for nobody)
        from sqlalchemy import event

        assert ctx.engine is not None

        def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.startswith("UPDATE jobs SET owner"):
                handler = threading.Thread(target=service.stop_writing_before_death)
                handler.start()
                handler.join(10)  # decided unless it waits for a commit in progress
                assert not handler.is_alive()

        event.listen(ctx.engine, "before_cursor_execute", on_statement)  # this test's engine
    else:
        real_confirm = jobs.confirm

        def confirm(session: Any, job: Any) -> bool:
            service.stop_writing_before_death()
            return bool(real_confirm(session, job))

        monkeypatch.setattr(jobs, "confirm", confirm)
    request = _request_cut_by(RequestCut())  # as the middleware gives every request one
    with ctx.sessions() as session, pytest.raises(HTTPException) as raised:
        solve.queue_job(
            ctx,
            session,
            request,
            principal=Principal(key_id=None, role=Role.ADMIN),
            idem_key="order-43",
            kind="test_sleep",
            payload={"seconds": 0},
            seed=None,
        )
    assert raised.value.status_code == 503  # which nobody receives
    assert raised.value.headers is not None
    assert raised.value.headers["Retry-After"] == str(ctx.settings.retry_after_s)
    assert "job" not in str(raised.value.detail), raised.value.detail  # names none
    assert request.state.audit_result == "shutting_down"
    assert request.state.audit_job_id is None
    with ctx.sessions() as session:
        rows = session.scalars(select(Job)).all()
        if dies.endswith("confirmation") or dies.startswith("between"):  # held: not let go
            [job] = rows
            assert (job.status, job.owner) == ("queued", jobs.instance_id)
        else:
            assert rows == []  # rolled back
        assert session.scalars(select(IdempotencyRecord)).all() == []  # released
        claimed = _retry_claim(session, "order-43", "POST /v1/simulations")
    assert isinstance(claimed, idempotency.Slot)  # the retry queues the job again


def test_a_death_decided_while_a_confirmation_commits_waits_for_the_commit(
    settings: Any, monkeypatch: pytest.MonkeyPatch, make_client: Any
) -> None:
    # the signal's handler (another thread) decided the death while a confirmation was
    # committing: the job was let go once the death was decided. Now the decision waits for
    # the commit (at most service.DEATH_WAIT_S): the job was let go before the death.
    # (monkeypatch before make_client: the service stops while this test's death is still
    # decided, as a dying process's would; undone first, its dispatcher claimed the job let
    # go and the stop waited ~10 s for its process's start through a fork server importing)
    from sqlalchemy import event

    from api.jobs import service
    from tests.api.conftest import app_of

    monkeypatch.setattr(service, "_DYING", threading.Event())  # this test's process lives on
    ctx = app_of(make_client(settings)).state.ctx
    jobs = ctx.jobs
    dying_at_commit: list[bool] = []
    handler = threading.Thread(target=service.stop_writing_before_death)

    def on_commit(conn: Any) -> None:
        handler.start()
        handler.join(0.3)  # ended at once unless it waits for this commit
        dying_at_commit.append(service._DYING.is_set())

    with ctx.sessions() as session:
        job = jobs.submit(
            session,
            kind="test_sleep",
            payload={"seconds": 0},
            key_id=None,
            seed=None,
            input_hash="h",
            timeout_s=60.0,
            held=True,
        )
        assert ctx.engine is not None
        event.listen(ctx.engine, "commit", on_commit, once=True)  # the confirmation's
        let_go = jobs.confirm(session, job)
    handler.join(10)
    assert not handler.is_alive()
    assert let_go and job.owner is None
    assert dying_at_commit == [False]  # decided after the commit, not during it
    assert service._DYING.is_set()
