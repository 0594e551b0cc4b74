"""The ``pyomo`` backend's solves, in a helper process that is killed at their deadline.

Building the Pyomo model and HiGHS' MIP set-up (``setupCliquePartition``) do not watch the
clock: in the calling thread, a 1 s limit took 2.8 s at 300 literature orders and 100.9 s
at 2,000 (``benchmarks/results/allocation-pyomo-limits.md``). Each solve therefore runs in
a spawned helper process (:class:`~solvers.allocation.helper_process.HelperProcess`) that
imports Pyomo once, as it starts, and is kept for later solves; one that has not answered
by its deadline is killed (a new one is spawned at once, in the background) and the caller
answers without it (:func:`solvers.allocation.solve.allocate`: the cheapest baseline answer
it found meanwhile).

Idle workers wait in a pool of this process (at most :data:`MAX_IDLE`): a solve takes one,
a second solve at the same time starts another. A process forked from this one (a job
process) does not use the pool's workers (their pipes are this process's): it starts its own.
A job process forks it from itself, first thing, while it has a single thread
(``start_worker(fork=True)``, :meth:`HelperProcess.fork
<solvers.allocation.helper_process.HelperProcess.fork>`): the job workers' fork server
imported Pyomo (:mod:`solvers.allocation.pyomo_import`), so the copy is ready in
milliseconds instead of the ~2.7 s of a fresh interpreter's start.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import math
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from solvers.allocation.helper_process import HelperProcess
from solvers.allocation.params import AllocationParams
from solvers.allocation.problem import Problem
from solvers.allocation.pyomo_model import PyomoOutcome
from solvers.allocation.request import AllocationRequest

log = logging.getLogger(__name__)

#: the helper process's entry (tests point it at a stand-in)
WORKER_ENTRY = "from solvers.allocation.pyomo_worker import worker_main; worker_main()"
#: idle workers kept for later solves (more, after solves at the same time, are ended)
MAX_IDLE = 2
#: how long a worker takes to start: the interpreter, this package and Pyomo's import
#: (measured 2.6 and 2.75 s on a busy 2-core machine, of which Pyomo's import 1.0 s; the
#: import alone took 1.4-1.8 s in fresh interpreters elsewhere)
WORKER_START_S = 3.0
#: how long a worker forked from a process with Pyomo imported takes to say it is ready
#: (4-19 ms in job processes on a 2-core machine), as :func:`start_left` counts it
FORKED_START_S = 0.2
#: seconds between the parent's checks for a Ctrl-C (the wait for an answer is cut in these)
_POLL_S = 0.05


@dataclass
class WorkerAnswer:
    """What a solve in the worker came to: its outcome, or why there is none."""

    outcome: PyomoOutcome | None
    #: why there is no outcome ("" when there is one)
    failure: str
    #: seconds the parent waited for it (sending the problem included)
    waited_s: float


class PyomoWorker:
    """One helper process with Pyomo imported (once it said so), solving one problem at a time."""

    def __init__(self, helper: HelperProcess) -> None:
        self.helper = helper
        self.pid = helper.proc.pid
        #: whether it is a copy of this process (forked), not a fresh interpreter
        self.forked = helper.forked
        #: when it was started (``time.perf_counter()``)
        self.started_at = time.perf_counter()
        #: seconds Pyomo's import took in it (about 0 when forked from a process that had
        #: imported it); None until it said it is ready
        self.import_s: float | None = None
        #: why it cannot solve ("" while it can)
        self.broken = ""

    @classmethod
    def spawn(cls, *, fork: bool = False) -> PyomoWorker | None:
        """Start a worker (it imports Pyomo); None if no process can be started.

        ``fork``: a copy of this process where that is safe (one thread,
        :func:`~solvers.allocation.helper_process.fork_safe`, and no HiGHS run here yet:
        :func:`~solvers.allocation.highs_model.highs_used`), else a fresh interpreter.
        """
        from solvers.allocation.highs_model import highs_used

        helper = HelperProcess.fork(WORKER_ENTRY) if fork and not highs_used() else None
        if helper is None:
            helper = HelperProcess.spawn(WORKER_ENTRY)
        return None if helper is None else cls(helper)

    def alive(self) -> bool:
        """Whether the process is still running and has not failed."""
        return not self.broken and self.helper.proc.poll() is None

    def wait_ready(self, wait_s: float) -> bool:
        """Whether it has imported Pyomo, waiting up to ``wait_s`` seconds for it to say so."""
        if self.import_s is not None:
            return self.alive()
        if not self.alive():
            return False
        end = time.perf_counter() + wait_s
        while True:
            left = end - time.perf_counter()
            if self.helper.readable(min(max(left, 0.0), _POLL_S)):
                message = self.helper.receive()
                if message is not None and message[0] == "ready":
                    self.import_s = float(message[1])
                    return True
                self.broken = f"{message[1]}" if message is not None else "it ended as it started"
                log.warning("pyomo worker did not start: %s", self.broken)
                self.kill()
                return False
            if left <= 0.0:
                return False

    def solve(
        self,
        prob: Problem,
        params: AllocationParams,
        *,
        end_at: float,
        kill_at: float,
        meanwhile: Callable[[Callable[[], bool]], object] | None = None,
    ) -> WorkerAnswer:
        """Solve in the worker: HiGHS stops by ``end_at`` and the worker is killed at
        ``kill_at`` (both ``time.perf_counter()``) if it has not answered by then.

        ``meanwhile`` is called here at once, while the problem is sent and the worker
        builds the model, with a check to ask as it goes: True once the worker's answer (or
        its end) can be read, when it should return (the answer is read only after it). The
        worker is killed at ``kill_at`` even while ``meanwhile`` runs on (the check then
        stays False: its answer is the timeout's). On any exit but an answer (a Ctrl-C
        included) the worker is killed: it is never left running an old solve.
        """
        t0 = time.perf_counter()
        # the worker's clock: time.monotonic() is the same clock in every process
        end_mono = time.monotonic() + (end_at - t0)
        courier: _Courier | None = None
        answered = False
        try:
            # pickled here, not in the courier's thread (the fallback computes the problem's
            # cached arrays meanwhile); written to the pipe by the courier, as the worker reads
            data = pickle.dumps(
                ("solve", _arrays_only(prob), params, end_mono), protocol=pickle.HIGHEST_PROTOCOL
            )
            courier = _Courier(self, data, kill_at)
            courier.start()
            if meanwhile is not None:
                meanwhile(courier.answer_readable)
            while not courier.answer_readable(
                min(max(kill_at - time.perf_counter(), 0.0), _POLL_S)
            ):
                if courier.killed or (time.perf_counter() >= kill_at and courier.kill()):
                    return WorkerAnswer(None, "timeout", time.perf_counter() - t0)
            if not courier.claim():  # killed at kill_at as the answer came
                return WorkerAnswer(None, "timeout", time.perf_counter() - t0)
            message = self.helper.receive()
            waited = time.perf_counter() - t0
            if message is None:
                when = "without an answer" if courier.sent(1.0) else "before it got the problem"
                return WorkerAnswer(None, self._ended(when), waited)
            if message[0] == "done":
                answered = True
                outcome: PyomoOutcome = message[1]
                return WorkerAnswer(outcome, "", waited)
            answered = True  # it is fine: the solve raised, the worker goes on
            return WorkerAnswer(None, f"the solve raised {message[1]}", waited)
        finally:
            if courier is not None:
                courier.stop()
            if not answered:
                self.kill()

    def _ended(self, when: str) -> str:
        """Why the worker ended ``when``, from its exit code (it is reaped here)."""
        if self.broken == _ENDED:
            return f"the pyomo worker process was ended {when}: this process is stopping"
        try:
            code = self.helper.proc.wait(1.0)
        except Exception:
            code = None
        return f"the pyomo worker process ended {when} (exit code {code})"

    def kill(self) -> None:
        """Kill the process at once (it holds nothing worth waiting for); it is reaped in a
        thread (freeing a large model's memory took tens of ms, out of the caller's margin)."""
        self.broken = self.broken or "killed"
        with contextlib.suppress(OSError):
            self.helper.proc.kill()
        threading.Thread(target=self._reap, name="pyomo-worker-reap", daemon=True).start()

    def _reap(self) -> None:
        """Close the pipes and wait for the killed process (in a thread)."""
        self.helper.end(0.0)
        with contextlib.suppress(OSError):
            self.helper.close_output()

    def end(self) -> None:
        """End an idle worker: its input closes and it exits (killed if it lingers); one
        still importing Pyomo is killed at once (it reads its input only once that is done,
        seconds later: the service's stop, or a death by signal, waited a second for it)."""
        self.broken = self.broken or _ENDED
        if self.import_s is None and not self.helper.readable(0.0):  # it has said nothing
            self.kill()
            return
        self.helper.end(1.0)
        with contextlib.suppress(OSError):
            self.helper.close_output()


def _arrays_only(prob: Problem) -> Problem:
    """``prob`` without its request (the worker's model reads only the arrays): pickling
    the request's objects took half of the problem's pickle (56 of 108 ms at 2,000
    literature orders), before the fallback could start, and its unpickling delayed the
    worker's model build."""
    bare = copy.copy(prob)
    bare.request = AllocationRequest.model_construct()
    return bare


class _Courier:
    """A solve's problem written to its worker from a thread, and the worker's kill at
    ``kill_at`` unless its answer was claimed first.

    The write waits for the worker to read (and unpickle) the problem: 0.12-0.29 s at
    1,000-2,000 literature orders, which the fallback waited for before it started, so
    that its answers came up to 0.34 s past a 1 s limit. The worker writes nothing before
    it has read the whole problem (then its answer, or its end), so the write cannot wait
    for the caller's read: no deadlock. A worker killed during the write ends it (a
    broken pipe).
    """

    def __init__(self, worker: PyomoWorker, data: bytes, kill_at: float) -> None:
        self.worker = worker
        self.kill_at = kill_at
        #: whether the worker was killed at ``kill_at`` (its answer, if any, is not read)
        self.killed = False
        self._data = data
        self._claimed = False
        self._lock = threading.Lock()
        self._done = threading.Event()  # the solve is over: no kill
        self._sent = threading.Event()  # the write is over
        self._sent_ok = False
        self._thread = threading.Thread(target=self._run, name="pyomo-worker-send", daemon=True)

    def start(self) -> None:
        """Start writing the problem (returns at once)."""
        self._thread.start()

    def _run(self) -> None:
        """Write the problem, then kill the worker at ``kill_at`` unless the solve is over."""
        self._sent_ok = self.worker.helper.send(self._data)
        self._data = b""
        self._sent.set()
        if not self._sent_ok:
            return  # the worker is gone: the caller reads its end
        while not self._done.wait(max(self.kill_at - time.perf_counter(), 0.0)):
            if time.perf_counter() >= self.kill_at:
                self.kill()
                return

    def sent(self, wait_s: float) -> bool:
        """Whether the whole problem was written (waiting up to ``wait_s`` for the write)."""
        return self._sent.wait(wait_s) and self._sent_ok

    def answer_readable(self, wait_s: float = 0.0) -> bool:
        """Whether the worker's answer (or its end) can be read within ``wait_s`` seconds;
        False once it was killed at ``kill_at``."""
        if self.killed:
            return False
        return self.worker.helper.readable(wait_s) and not self.killed

    def kill(self) -> bool:
        """Kill the worker at ``kill_at`` unless its answer was claimed or can be read (it
        came in time: the caller reads it): whether it was killed."""
        with self._lock:
            if not (self._claimed or self.killed or self.worker.helper.readable(0.0)):
                self.killed = True
                with contextlib.suppress(OSError):
                    self.worker.helper.proc.kill()  # reaped by the caller (PyomoWorker.kill)
            return self.killed

    def claim(self) -> bool:
        """Claim the worker's answer before reading it: False if it was killed already."""
        with self._lock:
            self._claimed = not self.killed
            return self._claimed

    def stop(self) -> None:
        """The solve is over: no kill at ``kill_at`` (the caller kills what it must)."""
        self._done.set()


_lock = threading.Lock()
#: idle workers (ready or still starting), and the process they belong to
_idle: list[PyomoWorker] = []
#: workers taken for a solve (until given back): :func:`end_workers` kills them
_busy: set[PyomoWorker] = set()
_owner = os.getpid()
#: why a worker ended by :func:`end_workers` cannot solve (no successor is started for it)
_ENDED = "ended"
#: when :func:`end_workers` last ran in this process (``time.perf_counter()``)
_ended_at = -math.inf


def _pool() -> list[PyomoWorker]:
    """The idle workers of this process (a forked child drops its parent's, idle and busy:
    their pipes are the parent's). Call with ``_lock`` held."""
    global _owner, _ended_at
    if _owner != os.getpid():
        _idle.clear()
        _busy.clear()
        _owner = os.getpid()
        _ended_at = -math.inf
    _idle[:] = [w for w in _idle if w.alive()]
    return _idle


def _stopping(begun: float | None) -> bool:
    """Whether :func:`end_workers` ran after a solve ``begun`` then (``time.perf_counter()``;
    None: no solve). Call with ``_lock`` held."""
    _pool()
    return begun is not None and _ended_at >= begun


def ended_since(begun: float) -> bool:
    """Whether this process's workers were ended (:func:`end_workers`: the service is
    stopping, the process exits) since ``begun`` (``time.perf_counter()``): a solve begun
    before gets no worker."""
    with _lock:
        return _stopping(begun)


def start_worker(*, fork: bool = False, begun: float | None = None) -> bool:
    """Start a worker in the background unless one is idle already; False if none can start.

    ``fork``: fork it from this process where that is safe (see :meth:`PyomoWorker.spawn`):
    ready in milliseconds when this process has imported Pyomo (a job process).
    ``begun``: when the solve that asks began (``time.perf_counter()``); none is started
    for a solve begun before :func:`end_workers` last ran (:func:`ended_since`).
    """
    with _lock:
        if _stopping(begun):
            return False
        if _pool():
            return True
        worker = PyomoWorker.spawn(fork=fork)
        if worker is None:
            return False
        _idle.append(worker)
        return True


class WorkerStartError(RuntimeError):
    """No pyomo worker could be started (no process, or Pyomo's import failed in it)."""


def warm_worker(wait_s: float = 60.0) -> float:
    """Start a worker and wait until it has imported Pyomo: the seconds its import took.

    Raises :class:`WorkerStartError` (saying why) if none is ready within ``wait_s``.
    """
    if not start_worker():
        raise WorkerStartError("the pyomo worker process could not be started")
    with _lock:
        worker = next(iter(_pool()), None)
    if worker is None or not worker.wait_ready(wait_s):
        why = worker.broken if worker is not None and worker.broken else ""
        raise WorkerStartError(why or f"the pyomo worker process was not ready in {wait_s:g} s")
    assert worker.import_s is not None
    return worker.import_s


def worker_started() -> bool:
    """Whether this process has an idle worker, ready or still importing Pyomo."""
    with _lock:
        return bool(_pool())


def start_left() -> float | None:
    """Expected seconds until an idle worker of this process can solve: 0 if one is ready,
    :data:`WORKER_START_S` less the age of the oldest starting one (at least 0.5 s: a start
    took up to 2.75 s, more on a busy machine; a forked one: :data:`FORKED_START_S`),
    None if none is starting."""
    with _lock:
        pool = _pool()
        if any(w.wait_ready(0.0) for w in pool):
            return 0.0
        if not pool:
            return None
        if any(w.forked for w in pool):
            return FORKED_START_S
        age = time.perf_counter() - min(w.started_at for w in pool)
    return max(WORKER_START_S - age, 0.5)


def worker_ready() -> bool:
    """Whether an idle worker of this process has Pyomo imported (a solve can use it now)."""
    with _lock:
        return any(w.wait_ready(0.0) for w in _pool())


def take_worker(wait_s: float, *, begun: float | None = None) -> PyomoWorker | None:
    """An idle worker with Pyomo imported, for one solve (give it back with :func:`give_back`).

    Without a ready one, a starting one is waited for up to ``wait_s`` seconds, and without
    any, one is started (and waited for as long); None if none is ready in that time (the
    one starting is left to start, for later solves). ``begun``: when the solve began
    (``time.perf_counter()``): None once :func:`end_workers` has run since (a solve of a
    stopping service, still running in its thread, started a worker after the stop that
    solved on until its time limit).
    """
    with _lock:
        ready = None if _stopping(begun) else _take_ready(_pool())
    if ready is not None:
        return ready
    if wait_s <= 0.0 or not start_worker(begun=begun):
        return None
    end = time.perf_counter() + wait_s
    while time.perf_counter() < end:
        with _lock:
            if _stopping(begun):
                return None
            pool = _pool()
            ready = _take_ready(pool)
            if ready is not None:
                return ready
            if not pool:  # it failed to start
                return None
            starting = pool[0]
        starting.wait_ready(min(end - time.perf_counter(), _POLL_S))
    return None


def _take_ready(pool: list[PyomoWorker]) -> PyomoWorker | None:
    """The first worker of ``pool`` with Pyomo imported, taken out of it (``_lock`` held)."""
    for worker in pool:
        if worker.wait_ready(0.0):
            pool.remove(worker)
            _busy.add(worker)
            return worker
    return None


def give_back(worker: PyomoWorker, *, replace: bool = True) -> None:
    """Return a worker after its solve: kept for later ones, or ended (broken, or pool full);
    a killed one is replaced at once, in the background (not one :func:`end_workers` ended,
    nor with ``replace`` False: the caller was interrupted, a Ctrl-C to the service's
    process group, whose job processes then started a worker that outlived them by seconds).
    """
    with _lock:
        _busy.discard(worker)
    if worker.broken == _ENDED or (not replace and not worker.alive()):
        return
    if not worker.alive():
        # its successor starts now, for later solves (spawned from a thread: not out of
        # this solve's margin)
        threading.Thread(target=start_worker, name="pyomo-worker-start", daemon=True).start()
        return
    with _lock:
        pool = _pool()
        if len(pool) < MAX_IDLE:
            pool.append(worker)
            return
    worker.end()


def end_workers() -> None:
    """End every worker of this process (as the service stops, at exit, and for tests): the
    idle ones (their input closes), and those busy in a solve, killed (a solve at 2,000
    orders runs for minutes; its caller answers with its fallback, and no successor starts).
    A solve begun before this call gets no worker after it (:func:`ended_since`): it is
    solved with the highspy backend.
    """
    global _ended_at
    with _lock:
        workers = list(_pool())
        _idle.clear()
        busy = list(_busy)
        _busy.clear()
        _ended_at = time.perf_counter()  # the solves begun before take no worker now
    for worker in busy:
        worker.broken = _ENDED
        worker.kill()
    for worker in workers:
        worker.end()


atexit.register(end_workers)


def _watch_parent(parent: int) -> None:
    """In the worker: exit as soon as the parent is gone (a killed parent closes no pipe in
    time: the worker would run its solve to the end, minutes at 2,000 orders)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker_main() -> None:
    """Entry point of the worker process: Pyomo's import, then one solve per message."""
    from solvers.allocation.pyomo_model import load_pyomo, solve_pyomo

    serve(load_pyomo, solve_pyomo)


def serve(load: Any, solve: Any) -> None:
    """The worker's loop: ``load()`` (say "ready" with its seconds, or why it failed), then
    ``solve(prob, params, end_at=...)`` per message until the parent closes the input; then
    the process exits at once (:func:`_exit_now`)."""
    from solvers.allocation.helper_process import Channel, parent_pid

    channel = Channel()
    _watch_parent(parent_pid())
    try:
        import_s = load()
    except Exception as err:
        channel.send(("failed", f"Pyomo cannot be imported: {err}"))
        channel.close()
        _exit_now()
    if not channel.send(("ready", import_s)):
        _exit_now()
    while (message := channel.receive()) is not None:
        _, prob, params, end_at = message
        try:
            reply: tuple[Any, ...] = ("done", solve(prob, params, end_at=end_at))
        except Exception as err:
            reply = ("error", f"{type(err).__name__}: {err}")
        if not channel.send(reply):
            _exit_now()
    channel.close()
    _exit_now()


def _exit_now() -> NoReturn:
    """End the worker process now, its output flushed: the interpreter's own exit (freeing
    Pyomo's modules and the last model) took ~0.5 s, which :func:`end_workers` waited for
    (the service's stop, a CLI's exit)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
