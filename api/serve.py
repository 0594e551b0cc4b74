"""Several API processes on one port, each listening on a socket of its own.

uvicorn's ``--workers`` hands every process the same listening socket, and the process that
wakes first accepts every pending connection: 20 keep-alive connections opened at once were
seen split 19 / 1 between two processes, so one process's clients waited for most of the
CPU. Here each worker binds its own socket with ``SO_REUSEPORT`` and the kernel spreads new
connections over them by address hash. The supervisor (uvicorn's: signals, restarts) only
holds the port with a bound socket that does not listen, so it is given no connections.
Each worker also ends a keep-alive connection now and then while it holds more than its
share of them (:mod:`api.core.balance`), so an uneven draw does not last. With
``cpu_affinity`` each worker runs on a CPU of its own (:mod:`api.core.cpus`). Linux only;
elsewhere the workers share the supervisor's listening socket, as with uvicorn's ``--workers``
(still :class:`Worker` processes under :class:`Supervisor`).

A process that serves the app is stopped by SIGTERM as uvicorn stops it (graceful shutdown),
and then exits with status 0, as after Ctrl-C; by SIGHUP (its terminal closed) or SIGQUIT it
is killed at once, as their default action does, once it has removed what Python's exit
would have: :func:`exit_cleanly_on_signals`. The supervisor of several workers
(:class:`Supervisor`) exits 0 after SIGINT or SIGTERM, and is stopped by SIGHUP and SIGQUIT
as by SIGTERM (workers stopped with SIGTERM), then ends killed by the signal.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Listener
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

import uvicorn
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from api.core import balance, cpus
from solvers.stop_signals import DEATH_SIGNALS, STOP_SIGNALS

#: uvicorn's logging with the access log on stderr, with its other lines: uvicorn writes it to
#: stdout, where ``serve`` prints the demo key and the docs address (``--access-log`` is
#: documented as a stderr line per request)
LOG_CONFIG: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
LOG_CONFIG["handlers"]["access"]["stream"] = "ext://sys.stderr"


def reuse_port_supported() -> bool:
    """True where each worker can listen on its own socket of the same port (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def port_socket(host: str, port: int, *, backlog: int | None = None) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``; listening if ``backlog``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if backlog is not None:
        sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


#: seconds the SIGHUP / SIGQUIT clean-up waits for each child still running after kill()
CHILD_JOIN_S = 5.0


def remove_multiprocessing_temp_dir() -> None:
    """Remove the folder multiprocessing made for this process (``pymp-*``), if it made one.

    It holds the socket of the job processes' fork server (``listener-*``); multiprocessing
    removes it at exit, which a process killed by a signal never reaches. It is found as the
    folder of an arbitrary ``AF_UNIX`` address, where the fork server's own address is made.
    """
    try:
        with Listener(family="AF_UNIX") as probe:
            address = probe.address
    except (OSError, ValueError):  # no AF_UNIX here, or a temp dir that cannot be written
        return
    if not isinstance(address, str) or address.startswith("\0"):  # abstract: no folder
        return
    folder = Path(address).parent
    if folder.name.startswith("pymp-"):
        shutil.rmtree(folder, ignore_errors=True)


#: seconds the SIGHUP / SIGQUIT clean-up waits for multiprocessing's fork server lock (held
#: while the fork server is being started, perhaps by the thread the signal interrupted)
#: before it stops the fork server by its pid
FORK_SERVER_LOCK_S = 1.0


def stop_helper_processes() -> None:
    """Stop the job processes' fork server and end the pyomo backend's worker processes,
    where this process started them (their modules imported; nothing is imported here).

    Neither is a multiprocessing child: a death by signal left the fork server importing its
    preload modules for seconds (it sees its "alive" pipe closed only once done) and a
    pyomo worker still importing Pyomo as long. A failure is logged, never raised.
    """
    executors = sys.modules.get("api.jobs.executors")
    workers = sys.modules.get("solvers.allocation.pyomo_worker")
    steps = []
    if executors is not None:
        steps.append(lambda: executors.stop_fork_server(lock_s=FORK_SERVER_LOCK_S))
    if workers is not None:
        steps.append(workers.end_workers)
    for step in steps:
        try:
            step()
        except Exception:
            logging.getLogger(__name__).exception("a helper process could not be stopped")


def clean_up_before_signal_death() -> None:
    """What Python's exit would do and a death by signal skips: children, temp dir, logs.

    The job dispatchers stop writing first (``api.jobs.service.stop_writing_before_death``:
    the running jobs stay running, for crash recovery to re-queue, not failed by the deaths
    caused here). Daemonic child processes (running jobs) are killed (they ignore SIGTERM,
    SIGHUP and SIGQUIT: sent to the whole process group they are their server's to act on)
    and every child joined (at most
    :data:`CHILD_JOIN_S` each), the job processes' fork server and the pyomo workers are
    stopped (:func:`stop_helper_processes`), multiprocessing's temporary folder is removed,
    and the logs and standard streams are flushed.
    """
    service = sys.modules.get("api.jobs.service")
    if service is not None:  # first: no job's end is written from the deaths caused here
        service.stop_writing_before_death()
    children = multiprocessing.active_children()
    for child in children:
        if child.daemon:
            child.kill()
    for child in children:
        child.join(CHILD_JOIN_S)
    stop_helper_processes()
    remove_multiprocessing_temp_dir()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # None, closed
            stream.flush()


#: the signals :func:`exit_cleanly_on_signals` takes over: SIGTERM (raised again by uvicorn
#: once it has shut the app down) and :data:`~solvers.stop_signals.DEATH_SIGNALS`, SIGHUP and
#: SIGQUIT (uvicorn does not catch them in a serving process: their default action kills it)
GUARDED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, *DEATH_SIGNALS)


def _die_by_signal(signum: int, frame: FrameType | None) -> None:
    """The handler of :data:`DEATH_SIGNALS`: clean up, then end by the signal's default action.

    A process that outlives its own signal (PID 1 of a container, to which the kernel does
    not deliver a signal whose action is the default) exits with the status a shell gives
    a death by it, 128 + the signal's number: it used to carry on serving, its job
    processes stopped and its logging shut down.
    """
    try:
        clean_up_before_signal_death()
    finally:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        os._exit(128 + signum)  # still here: the signal was dropped (PID 1)


def _exit_after_sigterm(signum: int, frame: FrameType | None) -> None:
    """The handler of SIGTERM: exit with status 0 (Python's exit cleans up), as after Ctrl-C."""
    raise SystemExit(0)


@contextlib.contextmanager
def exit_cleanly_on_signals() -> Iterator[None]:
    """While inside: SIGTERM exits with status 0; SIGHUP and SIGQUIT clean up, then kill.

    uvicorn takes SIGTERM over while it serves, shuts the app down, puts back the handler it
    found and raises the signal again, so that the process ended as killed by it (exit status
    143 in a shell, -15 to a parent: a failure to docker and kubernetes, where Ctrl-C exited
    0), and Python's exit functions never ran: multiprocessing's ``pymp-*`` folder (with the
    fork server's socket) stayed in the temp dir after every job. The handler installed here
    exits with status 0 instead (:class:`SystemExit`: Python's exit cleans up). SIGHUP (the
    terminal closed) and SIGQUIT uvicorn does not catch, and their default action kills the
    process at once (129 and 131, with a core dump for SIGQUIT where those are on); the
    handler installed here does the work of Python's exit
    (:func:`clean_up_before_signal_death`) and then raises the signal with its default
    action, so the process still dies by it. Only in the main thread, and only for each of
    :data:`GUARDED_SIGNALS` that has its default action (a handler someone else set, or an
    ignored signal, as SIGHUP under ``nohup``, is kept). For a process that made its own
    multiprocessing folder: one started by a process with such a folder shares it (uvicorn's
    supervisor never makes one).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    guarded = [sig for sig in GUARDED_SIGNALS if signal.getsignal(sig) is signal.SIG_DFL]
    for sig in guarded:
        signal.signal(sig, _exit_after_sigterm if sig == signal.SIGTERM else _die_by_signal)
    try:
        yield
    finally:
        for sig in guarded:
            signal.signal(sig, signal.SIG_DFL)


#: the signals a terminal sends a process of a background job that reads from it, or writes
#: to it under ``stty tostop``, where the platform has them (their default action stops it)
TERMINAL_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTTIN", "SIGTTOU") if hasattr(signal, name)
)


def ignore_terminal_signals() -> None:
    """Ignore :data:`TERMINAL_SIGNALS` (and unblock them): terminal I/O never stops this process.

    A write to the terminal then goes through, even from a background job under
    ``stty tostop``; a read from it fails (EIO). Inherited by the processes it starts.
    """
    for sig in TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if TERMINAL_SIGNALS and hasattr(signal, "pthread_sigmask"):  # the supervisor blocks them
        signal.pthread_sigmask(signal.SIG_UNBLOCK, TERMINAL_SIGNALS)


class Worker(multiprocess.Process):
    """A uvicorn worker process that cleans up before a death by signal and ignores SIGTTOU.

    uvicorn's own worker class served on the supervisor's shared socket (where each worker
    cannot listen on one of its own): stopped by SIGTERM, SIGHUP or SIGQUIT it left its job
    fork server's ``pymp-*`` folder in the temp dir. And a worker of a background job whose
    terminal has ``stty tostop`` stopped at its first log line (SIGTTOU), no longer answered
    the supervisor's health check and was killed and replaced (while the same SIGTTOU, sent
    to the whole process group, told the supervisor to drop a worker). Here SIGTTOU and
    SIGTTIN are ignored (:func:`ignore_terminal_signals`): the line is written.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        #: it has answered a health check as started (serving); set in the supervisor
        self.ready = False
        #: it replaces a worker that died before it was ready (set by the supervisor)
        self.replaces_unready = False
        super().__init__(config, sockets)

    def _healthcheck(self, timeout: float) -> bool | None:
        """uvicorn's health check (True: serving, False: starting, None: no answer); notes
        :attr:`ready`."""
        answer = super()._healthcheck(timeout)
        if answer is True:
            self.ready = True
        return answer

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        """Serve as uvicorn's worker does, inside :func:`exit_cleanly_on_signals`."""
        ignore_terminal_signals()
        with exit_cleanly_on_signals():
            super().target(sockets)


class OwnSocketProcess(Worker):
    """A uvicorn worker process that listens on a ``SO_REUSEPORT`` socket of its own."""

    #: CPUs to pin workers to (empty: not pinned); set by :func:`serve_workers`
    cpus: ClassVar[tuple[int, ...]] = ()
    #: the workers this supervisor started (for the CPU a new one gets)
    started: ClassVar[list[OwnSocketProcess]] = []

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        #: the CPU this worker runs on, the one the fewest running workers hold; None: any
        self.cpu: int | None = None
        if self.cpus:
            running = [p for p in OwnSocketProcess.started if p.exitcode is None]
            OwnSocketProcess.started[:] = running
            self.cpu = cpus.least_used_cpu(self.cpus, [p.cpu for p in running if p.cpu is not None])
        super().__init__(config, sockets)
        OwnSocketProcess.started.append(self)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        """Serve on a fresh socket of the configured port (the supervisor's is not used)."""
        if self.cpu is not None:  # before any thread starts: they all inherit it
            cpus.pin(self.cpu)
        own = port_socket(self.config.host, self.config.port, backlog=self.config.backlog)
        port = self.config.port
        balance.BALANCER = balance.ConnectionBalancer(
            self.server.server_state.connections,
            self.config.workers,
            lambda: balance.established_on_port(port),
        )
        super().target([own])


#: the signals whose arrival stops the supervisor of several workers (uvicorn's stop it too):
#: :data:`~solvers.stop_signals.STOP_SIGNALS`, and SIGBREAK where the platform has it
STOPPING_SIGNALS: frozenset[int] = frozenset(
    (*STOP_SIGNALS, *(getattr(signal, name) for name in ("SIGBREAK",) if hasattr(signal, name)))
)


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor of several workers, stopped by SIGHUP and SIGQUIT as by SIGTERM.

    uvicorn's catches every signal it knows when it is made: SIGHUP replaced the workers one
    by one (closing the terminal of ``serve --workers N`` left the service running, and under
    load a replacement not ready within its 5 s health check made it give up), SIGQUIT did
    nothing, and a SIGHUP ignored under ``nohup`` was caught all the same. Here SIGHUP and
    SIGQUIT stop the service as SIGTERM does (every worker stopped with SIGTERM and joined:
    graceful shutdown, running jobs re-queued), and :attr:`stopped_by` tells the caller to end
    by the signal once done (:func:`serve_workers`). Each of them that did not have its
    default action (ignored, as SIGHUP under ``nohup``, or a handler someone else set) gets it
    back before any worker starts, so workers inherit an ignored signal as ignored.

    uvicorn's acts on a signal at its next round (every 0.5 s), and a worker found dead in
    between was replaced: after Ctrl-C to the process group, a worker that had already
    stopped on it got a replacement (start-up, crash recovery) stopped again at once. Here
    no worker is started once a stop signal has arrived, acted on yet or not
    (:attr:`stopping`).
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        kept = {
            sig: handler
            for sig in DEATH_SIGNALS
            if (handler := signal.getsignal(sig)) not in {signal.SIG_DFL, None}
        }
        #: the signal that stopped the service (to be raised again once it has stopped)
        self.stopped_by: signal.Signals | None = None
        #: a signal that stops the service has arrived (set by the handler, not later)
        self.stopping = False
        #: a worker and its replacement died before they started serving (a crash loop)
        self.crashed_at_start_up = False
        super().__init__(config, sockets)  # catches SIGHUP, SIGQUIT and the others
        for sig in multiprocess.SIGNALS:
            signal.signal(sig, self._queue_signal)
        for sig, handler in kept.items():
            signal.signal(sig, handler)

    def run(self) -> None:
        """uvicorn's supervision, with SIGTTIN and SIGTTOU blocked and polled at each round.

        Caught, a SIGTTOU made each write of the supervisor to the terminal of a background
        job under ``stty tostop`` fail and send it SIGTTOU again, retried for ever (CPU
        spent, a queue of signals growing, no more supervision). Blocked, the write goes
        through; ``kill -TTIN`` / ``kill -TTOU`` still add / remove a worker at the next round.
        """
        polled = self._polled_signals()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, polled) if polled else None
        try:
            super().run()
        finally:
            if previous is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    @staticmethod
    def _polled_signals() -> tuple[signal.Signals, ...]:
        """The signals :meth:`run` blocks and polls: :data:`TERMINAL_SIGNALS` where it can."""
        if not hasattr(signal, "sigtimedwait") or not hasattr(signal, "pthread_sigmask"):
            return ()  # as uvicorn's (macOS: no sigtimedwait)
        return tuple(sig for sig in TERMINAL_SIGNALS if sig in multiprocess.SIGNALS)

    def handle_signals(self) -> None:
        """Queue the blocked SIGTTIN and SIGTTOU a process sent, then act on the queue.

        Those the kernel sent (a background job's read from, or write to, its terminal) are
        dropped: they ask for no worker more or fewer.
        """
        polled = self._polled_signals()
        while polled and (info := signal.sigtimedwait(polled, 0)) is not None:
            if info.si_code <= 0:  # SI_USER, SI_QUEUE, SI_TKILL: sent by kill() and the like
                self.signal_queue.append(info.si_signo)
        super().handle_signals()

    def _queue_signal(self, signum: int, frame: FrameType | None) -> None:
        """The handler of uvicorn's signals: queued for the next round, a stop noted now."""
        self.signal_queue.append(signum)
        if signum in STOPPING_SIGNALS:
            self.stopping = True

    def keep_subprocess_alive(self) -> None:
        """uvicorn's health check and replacement, none once a stop signal has arrived, and
        a stop (:attr:`crashed_at_start_up`) when a worker and its replacement both died
        before they started serving."""
        for idx, process in enumerate(self.processes):
            if self.stopping or self.should_exit.is_set():
                return
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # dead, or hung: it did not answer
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # the app cannot start: nor would another
                multiprocess.logger.error(
                    "Child process [%s] failed to start, stopping the parent process.",
                    process.pid,
                )
                self.should_exit.set()
                return
            if self.stopping or self.should_exit.is_set():  # it died of the group's signal
                return
            unready = not getattr(process, "ready", True)
            if unready and getattr(process, "replaces_unready", False):
                multiprocess.logger.error(
                    "Child process [%s] died before it started serving (exit status %s), "
                    "as the one it replaced did; stopping the parent process.",
                    process.pid,
                    process.exitcode,
                )
                self.crashed_at_start_up = True
                self.should_exit.set()
                return
            multiprocess.logger.info("Child process [%s] died", process.pid)
            replacement = multiprocess.Process(self.config, self.sockets)
            if unready and isinstance(replacement, Worker):
                replacement.replaces_unready = True
            replacement.start()
            self.processes[idx] = replacement

    def handle_ttin(self) -> None:
        """SIGTTIN: one worker more, unless the service is stopping."""
        if self.stopping or self.should_exit.is_set():
            return
        super().handle_ttin()

    def stop_by(self, signum: signal.Signals) -> None:
        """Stop as after SIGTERM; the first signal that asked is :attr:`stopped_by`."""
        multiprocess.logger.info("Received %s, exiting.", signum.name)
        if self.stopped_by is None:
            self.stopped_by = signum
        self.should_exit.set()

    def handle_hup(self) -> None:
        """SIGHUP (the terminal closed): stop the service, not replace its workers."""
        self.stop_by(signal.SIGHUP)

    def handle_quit(self) -> None:
        """SIGQUIT: stop the service (uvicorn's supervisor has no handler for it)."""
        self.stop_by(signal.SIGQUIT)


def supervise(
    config: uvicorn.Config,
    sockets: list[socket.socket],
    worker_class: type[Worker] = Worker,
) -> None:
    """Run :class:`Supervisor` over ``config.workers`` workers until it stops, then end as asked.

    Its workers are of ``worker_class``. Killed by SIGHUP or SIGQUIT once its workers are
    stopped; exit status 3 when a worker failed at start-up (uvicorn's supervisor then stops,
    but returns as after Ctrl-C), or a worker and its replacement died before they started
    serving.
    """
    # uvicorn's supervisor makes its workers from this module-level class
    process_class = multiprocess.Process
    multiprocess.Process = worker_class  # type: ignore[misc]
    try:
        supervisor = Supervisor(config, sockets=sockets)
        supervisor.run()
    finally:
        multiprocess.Process = process_class  # type: ignore[misc]
    if supervisor.stopped_by is not None:  # workers stopped: end killed by it, as one process
        _die_by_signal(supervisor.stopped_by, None)
    # the app, say, cannot reach its database: exit as uvicorn.run does for one process
    if supervisor.crashed_at_start_up or any(
        p.exitcode == STARTUP_FAILURE for p in supervisor.processes
    ):
        sys.exit(STARTUP_FAILURE)


def serve_workers(
    app: str,
    *,
    host: str,
    port: int,
    workers: int,
    cpu_affinity: bool = False,
    **options: Any,
) -> None:
    """Run ``workers`` processes of the app factory ``app`` on ``host:port`` until stopped.

    ``cpu_affinity``: each worker on a CPU of its own (round the CPUs this process may use;
    with more workers than CPUs, the least used), its job processes on all of them. A worker
    that fails at start-up stops the service with exit status 3, as ``uvicorn.run`` does.
    SIGINT and SIGTERM stop it (exit status 0, one process or several), SIGHUP and SIGQUIT
    too, and it then ends killed by the signal (:func:`exit_cleanly_on_signals`,
    :class:`Supervisor`). Its log, the access log included, goes to stderr (:data:`LOG_CONFIG`).
    """
    options.setdefault("log_config", LOG_CONFIG)
    if workers <= 1:
        with exit_cleanly_on_signals():  # one process: this one serves
            uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    if not reuse_port_supported():  # uvicorn's workers, on one listening socket
        shared = config.bind_socket()  # logs the address; exit status 1 if it cannot bind
        try:
            supervise(config, [shared])
        finally:
            shared.close()
        return
    try:
        holder = port_socket(host, port)  # holds the port; never listens
    except OSError as err:  # as uvicorn says it for one process
        logging.getLogger("uvicorn.error").error(
            "%s while attempting to bind on address (%s, %d)", err, host, port
        )
        sys.exit(1)
    config.port = holder.getsockname()[1]
    # uvicorn names the address when it binds the socket itself; here nothing did, so
    # `serve --workers N --port 0` never said which port the system had picked
    message = "Uvicorn running on http://%s:%d (Press CTRL+C to quit)"
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address, as uvicorn writes it
    logging.getLogger("uvicorn.error").info(message, shown, config.port)
    allowed = cpus.allowed_cpus() if cpu_affinity else []  # empty where not supported
    if allowed:
        OwnSocketProcess.cpus = tuple(allowed)
        os.environ[cpus.SERVICE_CPUS_ENV] = ",".join(map(str, allowed))
    try:
        supervise(config, [holder], OwnSocketProcess)
    finally:
        OwnSocketProcess.cpus = ()
        os.environ.pop(cpus.SERVICE_CPUS_ENV, None)
        holder.close()
