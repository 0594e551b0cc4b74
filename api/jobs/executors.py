"""Where jobs run: a bounded pool of worker processes (default) or Ray tasks.

A worker process can be killed (cancel, hard time limit) without harming the server, and a
crash inside a solver (even a segfault) fails only that job. Each worker watches its parent
and exits if the server dies, so a killed server leaves no orphan solving on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any, Literal, Protocol

from api.jobs.registry import JsonDict, import_target

OutcomeStatus = Literal["done", "failed", "bad_input"]
BaseProcess = Any  # multiprocessing's process classes differ by start method


@dataclass(frozen=True)
class Outcome:
    """How a job run ended: its result, or the reason it failed."""

    status: OutcomeStatus
    result: JsonDict | None = None
    error: str | None = None
    field: str | None = None
    #: corrections made reading a payload saved by an older version (the job's events)
    notes: tuple[str, ...] = ()


def _run_noting(fn: Any, payload: JsonDict, progress: Any) -> tuple[Any, list[str]]:
    """``fn(payload)`` and the SavedDataWarning messages it issued (others are shown as usual).

    Only in a process (or Ray worker) of its own: ``warnings.catch_warnings`` is not
    thread-safe.
    """
    from scenarios.saved import SavedDataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SavedDataWarning)
        result = fn(payload, progress=progress)
    notes = []
    for w in caught:
        if issubclass(w.category, SavedDataWarning):
            notes.append(str(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    return result, notes


class Execution(Protocol):
    """A running job."""

    def poll(self) -> Outcome | None:
        """The outcome once the job has ended, else None (never blocks)."""
        ...

    def progress(self) -> float | None:
        """Latest reported progress in [0, 1], if any."""
        ...

    def kill(self) -> None:
        """Stop the job now."""
        ...


class Executor(Protocol):
    """Starts jobs; ``capacity`` of them may run at once."""

    capacity: int

    def start(self, job_id: str, target: str, payload: JsonDict) -> Execution:
        """Start running ``target(payload)``."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


def _watch_server(server_pid: int) -> None:
    """Exit this worker as soon as the server process is gone (killed, crashed)."""
    from api.jobs.service import pid_alive

    while True:
        time.sleep(0.5)
        if not pid_alive(server_pid):
            os._exit(3)


def _child_main(target: str, payload: JsonDict, conn: Connection, server_pid: int) -> None:
    """Body of a worker process: run the task, send ("done"|"error"|"bad_input", ...) back."""
    from api.core.cpus import release_pin

    release_pin()  # a pinned API process started it: solve on every CPU of the service
    threading.Thread(target=_watch_server, args=(server_pid,), daemon=True).start()
    from scenarios.errors import InputError

    last = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or fraction >= 1.0:
            last[0] = now
            conn.send(("progress", float(fraction)))

    try:
        fn = import_target(target)
        result, notes = _run_noting(fn, payload, progress)
        for note in notes:
            conn.send(("note", note))
        conn.send(("done", result))
    except InputError as err:
        conn.send(("bad_input", (err.field, err.reason)))
    except BaseException as err:
        tail = traceback.format_exception_only(type(err), err)[-1].strip()
        conn.send(("error", tail[:2000]))
    finally:
        conn.close()


class _ProcessExecution:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self._process = process
        self._conn = conn
        self._progress: float | None = None
        self._outcome: Outcome | None = None
        self._notes: list[str] = []

    def poll(self) -> Outcome | None:
        if self._outcome is not None:
            return self._outcome
        try:
            while self._conn.poll():
                tag, value = self._conn.recv()
                if tag == "progress":
                    self._progress = value
                elif tag == "note":
                    self._notes.append(value)
                elif tag == "done":
                    self._outcome = Outcome("done", result=value, notes=tuple(self._notes))
                elif tag == "bad_input":
                    self._outcome = Outcome("bad_input", error=value[1], field=value[0])
                else:
                    self._outcome = Outcome("failed", error=f"solver error: {value}")
        except (EOFError, OSError):
            pass
        if self._outcome is None and not self._process.is_alive():
            code = self._process.exitcode
            self._outcome = Outcome(
                "failed", error=f"worker process died (exit code {code}) before answering"
            )
        if self._outcome is not None:
            self._process.join(timeout=5)
            self._conn.close()
        return self._outcome

    def progress(self) -> float | None:
        return self._progress

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)
        self._conn.close()


class LocalExecutor:
    """A bounded pool: at most ``capacity`` worker processes, one per running job."""

    def __init__(self, capacity: int, *, preload: list[str] | None = None) -> None:
        self.capacity = capacity
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self._ctx: BaseContext = mp.get_context(method)
        if method == "forkserver" and preload:
            self._ctx.set_forkserver_preload(preload)

    def start(self, job_id: str, target: str, payload: JsonDict) -> Execution:
        """Start a worker process for one job."""
        parent_conn, child_conn = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=_child_main,
            args=(target, payload, child_conn, os.getpid()),
            name=f"dispatchlab-job-{job_id}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        return _ProcessExecution(process, parent_conn)

    def close(self) -> None:
        """Nothing to release (processes are owned by their executions)."""


def _ray_run(target: str, payload: JsonDict, preload: tuple[str, ...] = ()) -> tuple[str, Any]:
    """Body of a Ray task: like a worker process, errors come back as values.

    ``preload``: modules imported first, as the local workers' fork server imports them (a
    Ray worker runs task after task, so only its first task pays for them). Their import
    comes before the task's own: a solve's time limit starts in the task (``allocate``
    starts its clock when called), so Pyomo's import (1.4-1.8 s) is not spent from it.
    """
    import importlib

    from scenarios.errors import InputError

    try:
        for name in preload:
            importlib.import_module(name)
        result, notes = _run_noting(import_target(target), payload, None)
        return "done", (result, notes)
    except InputError as err:
        return "bad_input", (err.field, err.reason)
    except Exception as err:
        return "error", traceback.format_exception_only(type(err), err)[-1].strip()[:2000]


class _RayExecution:
    def __init__(self, ref: Any) -> None:
        self._ref = ref
        self._outcome: Outcome | None = None

    def poll(self) -> Outcome | None:
        import ray

        if self._outcome is not None:
            return self._outcome
        ready, _ = ray.wait([self._ref], timeout=0)
        if not ready:
            return None
        try:
            tag, value = ray.get(self._ref)
        except Exception as err:  # worker died, task cancelled, node lost...
            self._outcome = Outcome("failed", error=f"ray task failed: {type(err).__name__}")
            return self._outcome
        if tag == "done":
            self._outcome = Outcome("done", result=value[0], notes=tuple(value[1]))
        elif tag == "bad_input":
            self._outcome = Outcome("bad_input", error=value[1], field=value[0])
        else:
            self._outcome = Outcome("failed", error=f"solver error: {value}")
        return self._outcome

    def progress(self) -> float | None:
        return None

    def kill(self) -> None:
        import ray

        ray.cancel(self._ref, force=True)


#: the setting (environment variable) the service's Ray address comes from
RAY_ADDRESS_SETTING = "DISPATCHLAB_RAY_ADDRESS"


class RayExecutor:
    """Jobs as Ray tasks (one CPU each); ``capacity`` bounds this replica's tasks in flight.

    An ``address`` nobody answers at (or one that is not ``HOST:PORT``) is an InputError
    naming :data:`RAY_ADDRESS_SETTING`, raised in seconds before ``ray.init`` (which would
    retry it for minutes); None (or empty) starts a local Ray instance. Each task imports
    the ``preload`` modules before its job (see :func:`_ray_run`): once per Ray worker,
    which works on a cluster too and whether or not this executor started Ray (a
    ``worker_process_setup_hook`` is set only by ``ray.init``).
    """

    def __init__(
        self, capacity: int, *, address: str | None = None, preload: list[str] | None = None
    ) -> None:
        import ray

        from simulation.executors import check_ray_address

        self.capacity = capacity
        self._preload = tuple(preload or ())
        self._owns = not ray.is_initialized()
        address = address or None
        if self._owns:
            if address is not None:
                check_ray_address(address, option=RAY_ADDRESS_SETTING)
            ray.init(
                address=address,
                ignore_reinit_error=True,
                log_to_driver=False,
                include_dashboard=False,
            )
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_run)

    def start(self, job_id: str, target: str, payload: JsonDict) -> Execution:
        """Submit one job to Ray."""
        return _RayExecution(self._remote.remote(target, payload, self._preload))

    def close(self) -> None:
        """Disconnect from Ray if this executor connected (a cluster itself keeps running)."""
        import ray

        if self._owns and ray.is_initialized():
            ray.shutdown()
