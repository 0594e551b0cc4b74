"""A job process asking for the pyomo backend starts its pyomo worker first thing (session 43).

A process forked from the fork server cannot use the service's workers (their pipes are the
service's): its first pyomo solve paid the worker's whole start (~2.7 s, Pyomo's import).
Session 44: the fork server imports Pyomo and the job process forks its worker from itself,
ready in milliseconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from api.jobs.executors import LocalExecutor, asks_for_pyomo, stop_fork_server
from api.main import PYOMO_IMPORT
from solvers.allocation import pyomo_worker
from solvers.allocation.literature import generate_literature


@pytest.mark.parametrize(
    ("payload", "asks"),
    [
        ({"params": {"backend": "pyomo"}}, True),
        ({"allocation": {"backend": "pyomo", "time_limit_s": 5}}, True),
        ({"params": {"backend": "pyomo", "baseline": "myopic"}}, False),
        ({"params": {"backend": "highspy"}}, False),
        ({"params": {}}, False),
        ({"request": {"backend": "pyomo"}}, False),
        ({"params": "pyomo"}, False),
        ([], False),
    ],
)
def test_which_payloads_ask_for_the_pyomo_backend(payload: Any, asks: bool) -> None:
    assert asks_for_pyomo(payload) is asks


def _run(executor: LocalExecutor, payload: dict[str, Any]) -> dict[str, Any]:
    execution = executor.start("j", "tests.api.job_targets:pyomo_worker_started", payload)
    end = time.perf_counter() + 60
    while (outcome := execution.poll()) is None:
        assert time.perf_counter() < end, "the job did not end"
        time.sleep(0.02)
    assert outcome.status == "done", outcome.error
    assert outcome.result is not None
    return outcome.result


def test_a_job_process_starts_the_pyomo_worker_before_its_body_runs() -> None:
    executor = LocalExecutor(1, preload=[])
    try:
        assert _run(executor, {"params": {"backend": "pyomo"}}) == {"started": True}
        assert _run(executor, {"params": {"backend": "highspy"}}) == {"started": False}
    finally:
        executor.close()


def test_a_job_process_forks_its_pyomo_worker_with_pyomo_imported(tmp_path: Path) -> None:
    """The service's fork server imports Pyomo; the worker is the job process's own child,
    a copy with Pyomo imported (its import took ~0 s: a spawned worker's took 1-2.5 s of
    its ~2.7 s start), and solves there."""
    from api.core.config import Settings
    from api.main import _make_executor

    from .conftest import registry_with_test_kinds

    request = generate_literature(seed=0, num_orders=5, num_nodes=3)
    payload = {"params": {"backend": "pyomo"}, "request": request.model_dump(mode="json")}
    executor = _make_executor(Settings(data_dir=tmp_path), registry_with_test_kinds())
    assert isinstance(executor, LocalExecutor)
    try:
        for _ in range(2):
            execution = executor.start("j", "tests.api.job_targets:pyomo_worker_forked", payload)
            outcome = _wait(execution)
            assert outcome.status == "done", outcome.error
            info = outcome.result
            assert info is not None
            if info["pyomo_in_job"]:
                break
            # the tests' shared fork server was started by a test with other modules: a
            # fresh one, with the service's
            stop_fork_server()
    finally:
        executor.close()
    assert info["pyomo_in_job"], "the service's fork server did not import Pyomo"
    assert info["forked"] and info["parent_is_job"]
    assert info["import_s"] < 0.05, info
    assert info["method"] == "batch/pyomo" and info["same_worker"], info
    assert any(n.startswith("HiGHS status") for n in info["notes"]), info["notes"]


def _wait(execution: Any) -> Any:
    """The outcome of a job, waited for (at most a minute)."""
    end = time.perf_counter() + 60
    while (outcome := execution.poll()) is None:
        assert time.perf_counter() < end, "the job did not end"
        time.sleep(0.02)
    return outcome


def _ended(pid: int, wait_s: float = 10.0) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``wait_s`` seconds."""
    end = time.perf_counter() + wait_s
    while time.perf_counter() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_killed_job_process_leaves_no_forked_worker_behind(tmp_path: Path) -> None:
    """A job killed (cancel, time limit, the service's stop) takes its worker with it: the
    worker watches its parent (it would run a solve for minutes at 2,000 orders)."""
    pid_file = tmp_path / "worker.pid"
    payload = {"params": {"backend": "pyomo"}, "pid_file": str(pid_file)}
    executor = LocalExecutor(1, preload=[PYOMO_IMPORT])
    try:
        execution = executor.start(
            "j", "tests.api.job_targets:pyomo_worker_pid_then_sleep", payload
        )
        end = time.perf_counter() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.perf_counter() < end and execution.poll() is None, "no worker pid"
            time.sleep(0.02)
        worker = int(pid_file.read_text())
        assert not _ended(worker, 0.0)
        execution.kill()
        assert _ended(worker), "the job's pyomo worker outlived the job process"
    finally:
        executor.close()


def test_a_worker_started_earlier_counts_towards_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`pyomo_worker.start_left`: what is left of a starting worker's expected start."""
    pyomo_worker.end_workers()
    assert pyomo_worker.start_left() is None
    entry = "from tests.solvers.allocation.pyomo_stubs import sleepy_main; sleepy_main()"
    monkeypatch.setattr(pyomo_worker, "WORKER_ENTRY", entry)
    try:
        assert pyomo_worker.start_worker()
        left = pyomo_worker.start_left()
        assert left is not None and 0.0 <= left <= pyomo_worker.WORKER_START_S
        with pyomo_worker._lock:
            [worker] = pyomo_worker._pool()
        if not worker.wait_ready(0.0):
            worker.started_at -= 10.0  # long started: at least 0.5 s is still expected
            assert pyomo_worker.start_left() == 0.5
        pyomo_worker.warm_worker(30)
        assert pyomo_worker.start_left() == 0.0
    finally:
        pyomo_worker.end_workers()
