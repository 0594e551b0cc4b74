"""A job process asking for the pyomo backend starts its pyomo worker first thing (session 43).

A process forked from the fork server cannot use the service's workers (their pipes are the
service's): its first pyomo solve paid the worker's whole start (~2.7 s, Pyomo's import).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from api.jobs.executors import LocalExecutor, asks_for_pyomo
from solvers.allocation import pyomo_worker


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
