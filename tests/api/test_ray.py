"""Jobs on Ray: a local Ray instance is started, used and shut down."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.jobs import TaskSpec
from scenarios.errors import InputError
from tests.api.conftest import app_of, registry_with_test_kinds, wait_for


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

    def submit(kind: str, payload: dict[str, object]) -> str:
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

    def ended(job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = wait_for(
            lambda: client.get(f"/v1/jobs/{job_id}").json(),
            lambda j: j["status"] in {"done", "failed"},
            timeout_s=120,
        )
        return job

    ok = submit("test_sleep", {"seconds": 0.1, "value": 7})
    bad = submit("test_crash", {})
    done = ended(ok)
    assert done["status"] == "done" and done["result"]["value"] == 7
    failed = ended(bad)
    assert failed["status"] == "failed" and "solver exploded" in failed["error"]
    # a Ray worker imported Pyomo in its first pyomo job's time limit (about 1.5 s, or the
    # highspy backend under a shorter one): it now imports it before the job runs
    loaded = ended(submit("test_pyomo", {}))
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
