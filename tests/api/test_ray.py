"""Jobs on Ray: a local Ray instance is started, used and shut down."""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.jobs import TaskSpec
from api.main import create_app
from scenarios.errors import InputError
from tests.api.conftest import (
    app_of,
    registry_with_test_kinds,
    start_on_migrated_copy,
    wait_for,
)


class FakeRay:
    """The ``ray`` calls of :class:`~api.jobs.executors.RayExecutor`, in this process: a
    task runs in a thread; the modules it was asked to preload are recorded, not imported
    (the pyomo one would start a pyomo worker process here)."""

    def __init__(self) -> None:
        self.initialized = False
        self.pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="fake-ray")
        #: (task function's name, its preload modules) of each task submitted
        self.tasks: list[tuple[str, tuple[str, ...]]] = []

    def is_initialized(self) -> bool:
        """Whether :meth:`init` was called and :meth:`shutdown` not since."""
        return self.initialized

    def init(self, **_options: object) -> None:
        """Start the (fake) local instance."""
        self.initialized = True

    def shutdown(self) -> None:
        """Stop it."""
        self.initialized = False

    def remote(self, **_options: object) -> Callable[[Callable[..., Any]], Any]:
        """A decorator making ``fn.remote(*args, preload)`` run ``fn`` in a thread."""

        def wrap(fn: Callable[..., Any]) -> Any:
            fake = self

            class Remote:
                @staticmethod
                def remote(*args: Any) -> concurrent.futures.Future[Any]:
                    *rest, preload = args
                    fake.tasks.append((fn.__name__, tuple(preload)))
                    return fake.pool.submit(fn, *rest, ())

            return Remote

        return wrap

    def wait(
        self,
        refs: list[concurrent.futures.Future[Any]],
        num_returns: int = 1,
        timeout: float | None = None,
    ) -> tuple[list[Any], list[Any]]:
        """Ray's ``wait``: (at most ``num_returns`` ended tasks, the others)."""
        concurrent.futures.wait(refs, timeout=timeout)
        ready = [ref for ref in refs if ref.done()][:num_returns]
        return ready, [ref for ref in refs if ref not in ready]

    def get(self, ref: concurrent.futures.Future[Any]) -> Any:
        """A task's value."""
        return ref.result()

    def cancel(self, ref: concurrent.futures.Future[Any], force: bool = False) -> None:
        """Cancel a task not yet started."""
        ref.cancel()


def _submit(ctx: Any, kind: str, payload: dict[str, object]) -> str:
    """Queue a job of ``kind`` (a 120 s limit) on the service of ``ctx``; its id."""
    with ctx.sessions() as session:
        job_id: str = ctx.jobs.submit(
            session,
            kind=kind,
            payload=payload,
            key_id=None,
            seed=None,
            input_hash="",
            timeout_s=120,
        ).id
    return job_id


def _ended(client: TestClient, job_id: str, *, timeout_s: float = 60.0) -> dict[str, Any]:
    """The job, once done or failed."""
    job: dict[str, Any] = wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}").json(),
        lambda j: j["status"] in {"done", "failed"},
        timeout_s=timeout_s,
    )
    return job


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRay]:
    """``ray``'s calls replaced by a :class:`FakeRay`'s for the test."""
    ray = pytest.importorskip("ray")
    fake = FakeRay()
    for name in ("is_initialized", "init", "shutdown", "remote", "wait", "get", "cancel"):
        monkeypatch.setattr(ray, name, getattr(fake, name))
    yield fake
    fake.pool.shutdown(wait=True, cancel_futures=True)


def test_jobs_run_as_ray_tasks_when_configured(
    settings: Settings, migrated_sqlite: Path, fake_ray: FakeRay
) -> None:
    """The service on ``job_executor="ray"`` (Ray's calls faked, in this process): its
    warm-up and every job are Ray tasks given the Ray preload modules, a job's value and a
    job's error come back to its row, and the service's stop shuts the instance it started
    down. (With a real local Ray instance: test_jobs_run_on_ray_when_configured, slow.)"""
    from api.jobs.executors import RayExecutor
    from api.main import ALLOCATION_PRELOAD, PYOMO_PRELOAD, ROUTING_PRELOAD

    on_ray = Settings(**{**settings.model_dump(), "job_executor": "ray", "auth_enabled": False})
    start_on_migrated_copy(on_ray, migrated_sqlite)
    with TestClient(create_app(on_ray, registry=registry_with_test_kinds())) as client:
        ctx = app_of(client).state.ctx
        assert isinstance(ctx.jobs.executor, RayExecutor) and fake_ray.initialized
        assert ctx.jobs.executor.warmed(60), "the Ray warm-up did not end"
        ok = _submit(ctx, "test_sleep", {"seconds": 0.1, "value": 7})
        bad = _submit(ctx, "test_crash", {})
        done, failed = _ended(client, ok), _ended(client, bad)
    assert done["status"] == "done" and done["result"]["value"] == 7, done
    assert failed["status"] == "failed" and "solver exploded" in failed["error"], failed
    preload = (PYOMO_PRELOAD, *ALLOCATION_PRELOAD, *ROUTING_PRELOAD)
    warm = [("_ray_warm", preload)] * on_ray.job_workers
    assert fake_ray.tasks == [*warm, ("_ray_run", preload), ("_ray_run", preload)]
    assert not fake_ray.initialized  # the service's stop shut it down


# ~27 s (a local Ray instance's start and its workers' imports): by default the service's
# jobs as Ray tasks (the warm-up waited for, values and errors, the preload modules given)
# are checked on a stand-in of Ray's calls by test_jobs_run_as_ray_tasks_when_configured,
# a Ray task's body finding Pyomo preloaded by tests/api/test_infra.py's
# test_a_ray_task_has_pyomo_before_its_job_runs
@pytest.mark.slow
def test_jobs_run_on_ray_when_configured(
    settings: Settings,
    make_client: Callable[..., TestClient],
    ray_temp_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("ray")
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # a new local instance saved ~/.ray/auth_token
    on_ray = Settings(**{**settings.model_dump(), "job_executor": "ray", "auth_enabled": False})
    registry = registry_with_test_kinds()  # with the pyomo-backed kinds (allocations, plans)
    registry.add(TaskSpec("test_pyomo", "tests.api.helpers:pyomo_loaded_task", solver="test"))
    client = make_client(on_ray, registry)
    ctx = app_of(client).state.ctx
    # the service's warm-up first (its Ray workers import Pyomo, starting the pyomo worker,
    # and the routing engines: 5.5-7 s of each task, 8.5 s after the start, at load 4 on 2
    # CPUs), waited for on its tasks' ends: the jobs submitted during it waited in Ray's
    # queue behind it, inside their 120 s time limit (counted from the claim) and this
    # test's 120 s waits, which a loaded machine's warm-up could use up (it failed once so)
    assert ctx.jobs.executor.warmed(600), "the Ray warm-up did not end"

    ok = _submit(ctx, "test_sleep", {"seconds": 0.1, "value": 7})
    bad = _submit(ctx, "test_crash", {})
    done = _ended(client, ok, timeout_s=120)
    assert done["status"] == "done" and done["result"]["value"] == 7
    failed = _ended(client, bad, timeout_s=120)
    assert failed["status"] == "failed" and "solver exploded" in failed["error"]
    # a Ray worker imported Pyomo in its first pyomo job's time limit (about 1.5 s, or the
    # highspy backend under a shorter one): it now imports it before the job runs
    loaded = _ended(client, _submit(ctx, "test_pyomo", {}), timeout_s=120)
    assert loaded["status"] == "done", loaded
    # else the preload's wait for the worker's ready message ended without it (its
    # WorkerStartError's message, in "preload")
    assert loaded["result"]["pyomo"] is True, loaded["result"]
    # the local instance keeps its session files in pytest's temp dir, not in /tmp/ray
    session = (ray_temp_dir / "session_latest").resolve()
    assert session.parent == ray_temp_dir.resolve() and (session / "logs").is_dir()
    assert not home.exists()


# ~11 s (a second local Ray instance's start): by default the service's warm-up on Ray is
# waited for, and its pyomo job finds Pyomo loaded, in test_jobs_run_on_ray_when_configured
# (and a Ray task's preload without Ray in tests/api/test_infra.py's
# test_a_ray_task_has_pyomo_before_its_job_runs)
@pytest.mark.slow
def test_the_ray_workers_import_the_preload_modules_as_the_service_starts(
    ray_temp_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # session 48: each Ray worker imported them in its first job, before the job ran: the
    # service's first job on Ray took 1.9-2.6 s, the next ones 0.01 s (the pyomo worker's
    # start the most of it); a Ray worker_process_setup_hook did not help (Ray starts the
    # workers of a job with one only for its first task, which waited for the hook)
    pytest.importorskip("ray")
    from api.jobs.executors import RayExecutor

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a new local instance's auth token
    executor = RayExecutor(1, preload=["tests.api.ray_preload_probe"])
    try:
        executor.warm_up()  # as the service starts
        assert executor.warmed(120)
        submitted = time.time()
        execution = executor.start("j", "tests.api.job_targets:preload_probe_imported_at", {})
        deadline = time.monotonic() + 120
        while (outcome := execution.poll()) is None:
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.02)
    finally:
        executor.close()
    assert outcome.status == "done", outcome.error
    assert outcome.result is not None and outcome.result["imported_at"] < submitted


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1:{port}", "no Ray cluster answers at 127.0.0.1:{port}"),
        ("host:port", "expected HOST:PORT"),
    ],
)
def test_a_bad_ray_address_stops_the_start_naming_the_setting(
    settings: Settings,
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
    address: str,
    reason: str,
) -> None:
    """The service did not check DISPATCHLAB_RAY_ADDRESS: ray.init retried it for minutes."""
    ray = pytest.importorskip("ray")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("ray.init must not be called for an address nobody answers at")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    port = _closed_port()
    on_ray = Settings(
        **{
            **settings.model_dump(),
            "job_executor": "ray",
            "ray_address": address.format(port=port),
        }
    )
    with pytest.raises(InputError) as err:
        make_client(on_ray)
    assert err.value.field == "DISPATCHLAB_RAY_ADDRESS"
    assert reason.format(port=port) in err.value.reason


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
