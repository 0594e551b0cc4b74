"""Where jobs run: a bounded pool of worker processes (default) or Ray tasks.

A worker process can be killed (cancel, hard time limit) without harming the server, and a
crash inside a solver (even a segfault) fails only that job. Each worker watches its parent
and exits if the server dies, so a killed server leaves no orphan solving on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any, Literal, Protocol

from api.jobs.registry import JsonDict, import_target
from solvers.stop_signals import STOP_SIGNALS, stop_signals_blocked

OutcomeStatus = Literal["done", "failed", "bad_input"]
BaseProcess = Any  # multiprocessing's process classes differ by start method

log = logging.getLogger(__name__)


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

    def progress_detail(self) -> JsonDict | None:
        """What the job said it was doing with its latest progress, if anything."""
        ...

    def kill(self) -> None:
        """Stop the job now."""
        ...


class Executor(Protocol):
    """Starts jobs; ``capacity`` of them may run at once."""

    capacity: int

    def warm_up(self) -> None:
        """Get ready for the first job (called as the service starts; must not block it)."""
        ...

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


# A job process (and its helper processes) ignores STOP_SIGNALS (solvers.stop_signals): they
# stop its server, which ends it (SIGKILL), and reach it too when sent to the whole process
# group or cgroup; SIGHUP (a closed terminal's shell signals the group) and SIGQUIT (Ctrl-\)
# as well, where the platform has them: its server dies of them, and its clean-up ends it.
def _child_main(target: str, payload: JsonDict, conn: Connection, server_pid: int) -> None:
    """Body of a worker process: run the task, send ("done"|"error"|"bad_input", ...) back.

    SIGINT, SIGTERM, SIGHUP and SIGQUIT are ignored (:data:`STOP_SIGNALS`: its server stops
    it, with SIGKILL, and its processes inherit that): a Ctrl-C in the terminal of ``serve``
    reaches the whole process group, and a KeyboardInterrupt ended the solve at once, its job
    failed (or answered with the fallback plan) before the server's graceful stop came to
    re-queue it; an OR-Tools search was cut short and answered. SIGTERM to the whole group
    (systemd's ``KillMode=control-group``, ``kill -TERM -PGID``) killed it (``worker process
    died``) as early, and so did SIGHUP and SIGQUIT to the group (a closed terminal, Ctrl-\\):
    its job was recorded failed, or answered with the fallback plan, before its server's own
    death by the signal (which leaves the job running, for crash recovery to re-queue).
    """
    from api.core.cpus import release_pin

    for sig in STOP_SIGNALS:  # first: before any thread, any fork
        signal.signal(sig, signal.SIG_IGN)
    release_pin()  # a pinned API process started it: solve on every CPU of the service
    # first, while this process has a single thread: its pyomo worker is forked from it
    try:
        start_pyomo_worker(payload)
    except Exception as err:  # the solve starts one, or falls back, as it would have
        log.warning("pyomo worker not started: %s: %s", type(err).__name__, err)
    threading.Thread(target=_watch_server, args=(server_pid,), daemon=True).start()
    from scenarios.errors import InputError

    last = [0.0]

    def progress(fraction: float, detail: JsonDict | None = None) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or fraction >= 1.0:
            last[0] = now
            conn.send(("progress", (float(fraction), detail)))

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


#: where a job payload's allocation parameters are: an allocation's ``params``, a plan's or
#: re-optimisation's ``allocation``
PYOMO_PARAM_KEYS = ("params", "allocation")


def asks_for_pyomo(payload: object) -> bool:
    """Whether a job payload's allocation asks for ``backend: "pyomo"`` (and no baseline)."""
    if not isinstance(payload, dict):
        return False
    for key in PYOMO_PARAM_KEYS:
        params = payload.get(key)
        if isinstance(params, dict) and params.get("backend") == "pyomo":
            return params.get("baseline") is None
    return False


def start_pyomo_worker(payload: object) -> bool:
    """In a job process, start the pyomo worker process first thing when the payload asks
    for the pyomo backend (a job process cannot use the fork server's or the service's).

    It is forked from the job process, which must have a single thread then (called before
    the job starts any): with Pyomo imported by the fork server (``api.main.PYOMO_IMPORT``)
    it is ready in milliseconds; a spawned one took ~2.7 s (Pyomo's import), which the solve
    mostly waited for. True if a worker was started (or one is idle already).
    """
    if not asks_for_pyomo(payload):
        return False
    from solvers.allocation.pyomo_worker import start_worker

    return start_worker(fork=True)


class _ProcessExecution:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self._process = process
        self._conn = conn
        self._progress: float | None = None
        self._detail: JsonDict | None = None
        self._outcome: Outcome | None = None
        self._notes: list[str] = []

    def poll(self) -> Outcome | None:
        if self._outcome is not None:
            return self._outcome
        try:
            while self._conn.poll():
                tag, value = self._conn.recv()
                if tag == "progress":
                    self._progress, self._detail = value
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

    def progress_detail(self) -> JsonDict | None:
        return self._detail

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)
        self._conn.close()


#: the fork server's first and last preload modules (SIGINT ignored while it imports;
#: SIGTERM once done, see :mod:`api.preload_end`)
PRELOAD_BEGIN = ("api.preload_begin",)
PRELOAD_END = ("api.preload_end",)

#: what uses this process's fork server (one per process, shared): LocalExecutors, and
#: :func:`fork_server_kept`; the last one gone stops it
_FORK_SERVER_USERS: weakref.WeakSet[object] = weakref.WeakSet()
_FORK_SERVER_LOCK = threading.Lock()


class _Keeper:
    """A user of the fork server that is no executor (see :func:`fork_server_kept`)."""


@contextlib.contextmanager
def fork_server_kept() -> Iterator[None]:
    """While inside, closing the last executor leaves the fork server running, and the next
    service started in this process uses it, its imports done (the tests start hundreds of
    services in one process: seconds of imports each otherwise); stopped on the way out."""
    keeper = _Keeper()
    with _FORK_SERVER_LOCK:
        _FORK_SERVER_USERS.add(keeper)
    try:
        yield
    finally:
        with _FORK_SERVER_LOCK:
            _FORK_SERVER_USERS.discard(keeper)
            if not _FORK_SERVER_USERS:
                stop_fork_server()


#: what the command line of multiprocessing's fork server runs (how it is found among this
#: process's children where multiprocessing does not say its pid)
FORK_SERVER_COMMAND = b"from multiprocessing.forkserver import main"
#: seconds :func:`stop_fork_server` waits for multiprocessing's lock (held while the fork
#: server is being started) before it stops the fork server by its pid instead
FORK_SERVER_LOCK_S = 10.0
#: seconds a fork server stopped by its pid gets to exit after SIGTERM before SIGKILL
FORK_SERVER_STOP_S = 5.0


def _multiprocessing_fork_server() -> Any:
    """multiprocessing's fork server object (private: ``forkserver._forkserver``), if any."""
    return getattr(forkserver, "_forkserver", None)


def _fork_server_children() -> list[int] | None:
    """The live children of this process that are fork servers, the latest started first
    (read from ``/proc``); None where that cannot be read (no ``/proc``)."""
    me = os.getpid()
    try:
        names = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    found: list[tuple[int, int]] = []
    for name in names:
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) != me or fields[0] == b"Z":
                continue
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                command = fh.read()
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if FORK_SERVER_COMMAND in command:
            found.append((int(fields[19]), int(name)))  # its start time, its pid
    return [pid for _, pid in sorted(found, reverse=True)]


def fork_server_pid() -> int | None:
    """The pid of this process's fork server (multiprocessing's), None if none was started.

    multiprocessing keeps it in a private attribute; a Python without that attribute has it
    looked for among this process's children (``/proc``; None where there is none).
    """
    server = _multiprocessing_fork_server()
    if server is not None and hasattr(server, "_forkserver_pid"):
        pid = getattr(server, "_forkserver_pid", None)
        return pid if isinstance(pid, int) else None
    found = _fork_server_children()
    return found[0] if found else None


def _sigterm_bit(pid: int, field: str) -> bool:
    """SIGTERM's bit of the signal set ``field`` (``SigIgn``, ``SigBlk``) of
    ``/proc/PID/status``; False where that cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def ignores_sigterm(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGTERM (``SigIgn`` of ``/proc/PID/status``; False
    where that cannot be read)."""
    return _sigterm_bit(pid, "SigIgn")


def blocks_sigterm(pid: int) -> bool:
    """Whether process ``pid`` (its main thread) blocks SIGTERM (``SigBlk`` of
    ``/proc/PID/status``; False where that cannot be read): a fork server still importing its
    preload modules does (:mod:`api.preload_begin`)."""
    return _sigterm_bit(pid, "SigBlk")


def _end_if_importing(pid: int) -> None:
    """End the fork server ``pid`` at once unless it is done with its preload modules (it
    then ignores SIGTERM and exits when its "alive" pipe closes): one still importing them
    sees the closed pipe only once done, seconds later. It blocks SIGTERM meanwhile
    (:mod:`api.preload_begin`: SIGTERM to the whole group killed it), so it is killed
    (SIGKILL; it holds nothing to save, its job processes are gone by then); one that neither
    ignores nor blocks SIGTERM (another preload list) gets SIGTERM, as before."""
    if ignores_sigterm(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if blocks_sigterm(pid) else signal.SIGTERM)


def _end_by_pid(pid: int, wait_s: float = FORK_SERVER_STOP_S) -> None:
    """SIGTERM to the fork server ``pid``, SIGKILL if it still runs ``wait_s`` later (at once
    if it ignores or blocks SIGTERM: one done with its preload modules ignores it, one still
    importing them blocks it, see :mod:`api.preload_begin`).

    It is not reaped here: multiprocessing reaps it (and starts a new one for the next job),
    as it does a fork server that died.
    """
    from api.jobs.service import pid_alive

    for sig in (signal.SIGTERM, signal.SIGKILL):
        if sig == signal.SIGTERM and (ignores_sigterm(pid) or blocks_sigterm(pid)):
            continue
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + (wait_s if sig == signal.SIGTERM else 1.0)
        while pid_alive(pid):
            if time.monotonic() >= end:
                break
            time.sleep(0.01)
        else:
            return


def stop_fork_server(*, lock_s: float = FORK_SERVER_LOCK_S) -> bool:
    """Stop this process's fork server, if it started one (True); the next job starts another.

    multiprocessing has no public way: its ``ForkServer._stop_unlocked`` closes the server's
    "alive" pipe, waits for it to exit and removes its socket. A fork server still importing
    its preload modules (seconds after it started) sees the closed pipe only once done, so it
    is killed first (:func:`_end_if_importing`; one done with them ignores SIGTERM and sees
    the closed pipe).

    Where those private parts are missing or fail (another Python version), or their lock is
    not free within ``lock_s`` seconds, the fork server is found by its pid
    (:func:`fork_server_pid`) and stopped by signal (:func:`_end_by_pid`); one that cannot be
    found is reported (a warning; it exits with this process, its "alive" pipe closed). Never
    raises.
    """
    server = _multiprocessing_fork_server()
    lock = getattr(server, "_lock", None)
    stop = getattr(server, "_stop_unlocked", None)
    private = server is not None and hasattr(server, "_forkserver_pid")
    pid: int | None = None
    if private and callable(stop) and lock is not None and lock.acquire(timeout=lock_s):
        try:
            pid = getattr(server, "_forkserver_pid", None)
            if not isinstance(pid, int):
                return False
            _end_if_importing(pid)
            try:
                stop()
                return True
            except ChildProcessError:  # reaped by someone else: forget it (the next job restarts)
                server._forkserver_pid = None
                return True
            except Exception as err:  # another version's internals: stopped by signal below
                log.warning(
                    "fork server %d: multiprocessing's stop failed (%s: %s); stopped by signal",
                    pid,
                    type(err).__name__,
                    err,
                )
        finally:
            lock.release()
    elif private:
        pid = fork_server_pid()
    else:
        found = _fork_server_children()
        if found is None:  # cannot tell whether one runs
            log.warning(
                "the job processes' fork server could not be looked for (this Python's "
                "multiprocessing does not say its pid, and there is no /proc): if one runs, "
                "it exits with this process"
            )
            return False
        pid = found[0] if found else None
    if pid is None:
        return False
    try:
        _end_by_pid(pid)
    except Exception as err:  # a stop never raises
        log.warning("fork server %d could not be stopped: %s: %s", pid, type(err).__name__, err)
        return False
    return True


class LocalExecutor:
    """A bounded pool: at most ``capacity`` worker processes, one per running job.

    Where the fork server start method exists, job processes are forked from multiprocessing's
    fork server, which imports the ``preload`` modules once. :meth:`warm_up` starts it (the
    service does as it starts), else the first job does and waits for those imports (seconds
    with Pyomo); :meth:`close` stops it once no other executor of the process uses it.
    """

    def __init__(self, capacity: int, *, preload: list[str] | None = None) -> None:
        self.capacity = capacity
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self._ctx: BaseContext = mp.get_context(method)
        self._forks = method == "forkserver"
        if self._forks and preload:
            # a Ctrl-C while it imports them must not interrupt it (see api.preload_begin)
            self._ctx.set_forkserver_preload([*PRELOAD_BEGIN, *preload, *PRELOAD_END])

    def warm_up(self) -> None:
        """Start the fork server now, in about 10 ms: it imports the preload modules in its
        own process, while the service starts and waits for clients (nothing to do without
        a fork server: each job process is spawned)."""
        if not self._forks:
            return
        with _FORK_SERVER_LOCK:
            _FORK_SERVER_USERS.add(self)
            with stop_signals_blocked():  # SIGTERM to the group must not end its imports
                forkserver.ensure_running()
            pid = fork_server_pid()
        if pid is not None:
            from api.core.cpus import release_pin

            # a pinned API process started it: its imports must not take that CPU from the
            # API process's own start-up (its job processes get every CPU of the service)
            release_pin(pid)

    def start(self, job_id: str, target: str, payload: JsonDict) -> Execution:
        """Start a worker process for one job."""
        if self._forks:
            with _FORK_SERVER_LOCK:
                _FORK_SERVER_USERS.add(self)
        parent_conn, child_conn = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=_child_main,
            args=(target, payload, child_conn, os.getpid()),
            name=f"dispatchlab-job-{job_id}",
            daemon=True,
        )
        with stop_signals_blocked():  # a fork server (re)started here: see warm_up
            process.start()
        child_conn.close()
        return _ProcessExecution(process, parent_conn)

    def close(self) -> None:
        """Stop the fork server if no other executor of this process uses it (job processes
        are owned by their executions, and stopped before)."""
        with _FORK_SERVER_LOCK:
            if self not in _FORK_SERVER_USERS:
                return
            _FORK_SERVER_USERS.discard(self)
            if not _FORK_SERVER_USERS:
                stop_fork_server()


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


def _ray_warm(preload: tuple[str, ...]) -> float:
    """Body of a Ray warm-up task: the ``preload`` modules imported in this Ray worker (it
    keeps them for the jobs it runs next); the seconds that took. A module that fails to
    import is left to the job's own import (:func:`_ray_run`), which reports it."""
    import importlib

    t0 = time.perf_counter()
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as err:
            log.warning("Ray warm-up: %s not imported: %s: %s", name, type(err).__name__, err)
    return time.perf_counter() - t0


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

    def progress_detail(self) -> JsonDict | None:
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
    which works on a cluster too and whether or not this executor started Ray.
    :meth:`warm_up` has ``capacity`` Ray workers import them as the service starts, so
    that the first jobs do not wait for them (a ``worker_process_setup_hook`` would not
    do: it is set only by ``ray.init``, and Ray starts the workers of a job that has one
    only for its first task, which then waited for the hook as long).
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
        #: the warm-up tasks (:meth:`warm_up`)
        self._warming: list[Any] = []

    def warm_up(self) -> None:
        """Submit ``capacity`` warm-up tasks (one CPU each, so on as many Ray workers),
        which import the preload modules (:func:`_ray_warm`); returns at once.

        The first job on a Ray worker paid for them before it ran (1.9-2.6 s on a 2-core
        machine with the service's modules, most of it the pyomo worker's start); a worker
        that has run a task is reused for the next one, so the jobs after the warm-up find
        them imported. A job submitted meanwhile waits for a CPU as long as it would have
        waited for the imports.
        """
        if not self._preload or self._warming:
            return
        import ray

        warm = ray.remote(num_cpus=1, max_retries=0)(_ray_warm)
        self._warming = [warm.remote(self._preload) for _ in range(self.capacity)]

    def warmed(self, timeout_s: float) -> bool:
        """Whether every warm-up task has ended, waiting up to ``timeout_s`` seconds."""
        import ray

        if not self._warming:
            return True
        _, pending = ray.wait(self._warming, num_returns=len(self._warming), timeout=timeout_s)
        return not pending

    def start(self, job_id: str, target: str, payload: JsonDict) -> Execution:
        """Submit one job to Ray."""
        return _RayExecution(self._remote.remote(target, payload, self._preload))

    def close(self) -> None:
        """Disconnect from Ray if this executor connected (a cluster itself keeps running)."""
        import ray

        if self._owns and ray.is_initialized():
            ray.shutdown()
