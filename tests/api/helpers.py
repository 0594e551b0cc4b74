"""Job bodies used only by the tests of the job machinery (importable by worker processes)."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from api.jobs.registry import ProgressFn
from scenarios.errors import InputError


def sleep_task(payload: dict[str, Any], *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Sleep ``seconds`` in steps, reporting progress; returns the payload's ``value``."""
    seconds = float(payload.get("seconds", 0.0))
    steps = 10
    for i in range(steps):
        time.sleep(seconds / steps)
        if progress is not None:
            progress((i + 1) / steps)
    return {"value": payload.get("value"), "pid": os.getpid()}


def crash_task(payload: dict[str, Any], *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Raise like a buggy solver."""
    raise RuntimeError("solver exploded")


def segfault_task(payload: dict[str, Any], *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Die like a solver with a native crash."""
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(5)
    return {}


def bad_input_task(
    payload: dict[str, Any], *, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Reject the input the way solvers do."""
    raise InputError("scenario.orders.0", "unknown node 'x'")


def fallback_task(payload: dict[str, Any], *, reason: str) -> dict[str, Any]:
    """A degraded answer that says why it was needed."""
    return {"value": "fallback", "reason": reason}


def cancellable_task(
    payload: dict[str, Any], *, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """A solve that runs until its cancellation (:mod:`solvers.cancel`) and then answers
    with what it has at once (or raises, with ``raise``); ``seconds`` at most."""
    from solvers.cancel import SolveCancelled, cancelled

    until = time.monotonic() + float(payload.get("seconds", 30.0))
    while time.monotonic() < until:
        if cancelled():
            if payload.get("raise"):
                raise SolveCancelled("cancelled before it had an answer")
            return {"partial": True}
        time.sleep(0.001)
    return {"partial": False}


def slow_task(payload: dict[str, Any], *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """A solver that ignores its time limit."""
    time.sleep(3.0)
    raise RuntimeError("too late anyway")


#: Names of the threads :func:`recording_allocation` ran on, in call order.
SOLVED_ON: list[str] = []


def recording_allocation(payload: Any, *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """The real allocation task, noting which thread ran it."""
    from api.tasks.allocations import run

    SOLVED_ON.append(threading.current_thread().name)
    return run(payload, progress=progress)


def invalid_result_allocation(
    payload: Any, *, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """The real allocation task over a solver whose result fails its own validation."""
    from unittest.mock import patch

    from api.tasks.allocations import run
    from solvers.allocation import AllocationResult

    def invalid(*_args: Any, **_kwargs: Any) -> Any:
        return AllocationResult.model_validate({"bound": float("-inf")})

    with patch("solvers.allocation.allocate", invalid):
        return run(payload, progress=progress)


def pyomo_loaded_task(
    payload: dict[str, Any], *, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Whether a pyomo worker process (with Pyomo imported) was ready in this worker process
    before its job ran."""
    from solvers.allocation.pyomo_worker import worker_ready

    return {"pyomo": worker_ready()}


def ignored_signals_task(
    payload: dict[str, Any], *, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """The names of the signals of ``payload["names"]`` this job process ignores."""
    names = [str(name) for name in payload.get("names", [])]
    return {"ignored": [n for n in names if signal.getsignal(getattr(signal, n)) is signal.SIG_IGN]}
