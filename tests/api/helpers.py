"""Job bodies used only by the tests of the job machinery (importable by worker processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
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


#: :func:`held_task` has started / has ended; the test lets it end (see :func:`solver_held`)
HELD_STARTED = threading.Event()
HELD_ENDED = threading.Event()
_HOLDING = threading.Event()
_HELD_RELEASE = threading.Event()


def held_task(payload: dict[str, Any], *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """A solver that ignores its time limit: inside :func:`solver_held` it runs until let go
    (60 s at most), then raises; outside (the service's start-up warm-up, which calls the
    allocation task once per process) it raises at once."""
    if not _HOLDING.is_set():
        raise RuntimeError("not held: called outside solver_held()")
    HELD_STARTED.set()
    try:
        _HELD_RELEASE.wait(60.0)
        raise RuntimeError("too late anyway")
    finally:
        HELD_ENDED.set()


@contextlib.contextmanager
def solver_held() -> Iterator[None]:
    """While inside, :func:`held_task` (started in this process's threads) runs on: an answer
    that comes while ``HELD_STARTED`` is set and ``HELD_ENDED`` is not did not wait for it,
    however slow the machine (a sleeping solver left that to the clock). Released on the way
    out."""
    HELD_STARTED.clear()
    HELD_ENDED.clear()
    _HELD_RELEASE.clear()
    _HOLDING.set()
    try:
        yield
    finally:
        _HOLDING.clear()
        _HELD_RELEASE.set()


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
    before its job ran, and what its preload said (``preload``: the seconds Pyomo's import
    took, why no worker was ready in its wait, or None: not preloaded)."""
    import sys

    from solvers.allocation.pyomo_worker import worker_ready

    ready = worker_ready()
    preload = sys.modules.get("solvers.allocation.pyomo_preload")
    said = None if preload is None else preload.NOT_READY or preload.IMPORT_S
    return {"pyomo": ready, "preload": said}


def ignored_signals_task(
    payload: dict[str, Any], *, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """The names of the signals of ``payload["names"]`` this job process ignores."""
    names = [str(name) for name in payload.get("names", [])]
    return {"ignored": [n for n in names if signal.getsignal(getattr(signal, n)) is signal.SIG_IGN]}
