"""Stopping the job processes' fork server without multiprocessing's private parts (session 48).

multiprocessing has no public way to stop its fork server: :func:`stop_fork_server` uses
``ForkServer._stop_unlocked`` and ``_forkserver_pid``. A Python without them (or whose
``_stop_unlocked`` fails) left the fork server running until the process exited, or raised
from the service's stop; now it is found by its pid and stopped by signal, or reported.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing import forkserver
from pathlib import Path
from types import SimpleNamespace

import pytest

from api.jobs import executors
from api.jobs.executors import fork_server_pid, stop_fork_server
from api.jobs.service import pid_alive

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here"
)


@pytest.fixture(autouse=True)
def own_fork_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[forkserver.ForkServer]:
    """A fork server of this test's own in multiprocessing's place: that one is one per
    process, shared with every test this worker ran before (whose stops or preload lists
    left it dead or exiting: these tests failed in full-suite runs, never alone)."""
    server = forkserver.ForkServer()
    for name in (
        "ensure_running",
        "get_inherited_fds",
        "connect_to_new_process",
        "set_forkserver_preload",
    ):
        monkeypatch.setattr(forkserver, name, getattr(server, name))
    monkeypatch.setattr(forkserver, "_forkserver", server)
    yield server
    pid = getattr(server, "_forkserver_pid", None)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    alive_fd = getattr(server, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        with contextlib.suppress(OSError):
            os.close(alive_fd)


def _running_fork_server() -> int:
    """The pid of this process's fork server, started if it was not running."""
    forkserver.ensure_running()
    pid = fork_server_pid()
    assert pid is not None and pid_alive(pid)
    return pid


def _gone(pid: int, wait_s: float = 10.0) -> bool:
    """Whether process ``pid`` has ended (or is a zombie) within ``wait_s`` seconds."""
    end = time.monotonic() + wait_s
    while pid_alive(pid):
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)
    return True


def _restarts() -> None:
    """multiprocessing starts a new fork server after one stopped by signal (reaping it)."""
    forkserver.ensure_running()
    pid = fork_server_pid()
    assert pid is not None and pid_alive(pid)


def test_a_python_without_forkservers_stop_has_it_stopped_by_signal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ForkServer._stop_unlocked missing: the fork server was left running ("left to exit
    # with us") and stop_fork_server said False
    pid = _running_fork_server()
    with monkeypatch.context() as patch:
        patch.delattr(forkserver.ForkServer, "_stop_unlocked")
        assert stop_fork_server() is True
    assert _gone(pid)
    _restarts()


def _pid_elsewhere() -> None:
    """The body of the test below, run in a fresh interpreter (see there)."""
    from unittest import mock

    pid = _running_fork_server()
    with mock.patch.object(forkserver, "_forkserver", SimpleNamespace()):
        # found in /proc, as this process's child, once it runs the fork server's code (just
        # forked, before its exec, its command line is still this process's)
        end = time.monotonic() + 10.0
        while fork_server_pid() != pid and time.monotonic() < end:
            time.sleep(0.02)
        assert fork_server_pid() == pid
        assert stop_fork_server() is True
        assert fork_server_pid() is None
    assert _gone(pid)


def test_a_python_that_keeps_the_pid_elsewhere_has_it_found_among_the_children() -> None:
    # no forkserver._forkserver with a _forkserver_pid: the pid was None (the CPU pin of the
    # fork server was skipped) and the fork server was never stopped. In a fresh interpreter:
    # a test worker may have another fork server as its child (multiprocessing's, restarted
    # by an earlier test's thread), and the lookup takes the latest started (it failed in
    # full-suite runs, never alone)
    code = "import tests.api.test_fork_server_stop as t; t._pid_elsewhere()"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_a_failing_private_stop_does_not_raise_and_the_server_is_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a changed _stop_unlocked raising: the exception came out of the service's stop
    def broken(self: object) -> None:
        raise OSError("changed internals")

    pid = _running_fork_server()
    with monkeypatch.context() as patch:
        patch.setattr(forkserver.ForkServer, "_stop_unlocked", broken)
        assert stop_fork_server() is True
    assert _gone(pid)
    _restarts()


def test_a_fork_server_that_cannot_be_looked_for_is_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _running_fork_server()
    with monkeypatch.context() as patch:
        patch.setattr(forkserver, "_forkserver", SimpleNamespace())
        patch.setattr(executors, "_fork_server_children", lambda: None)  # no /proc
        with caplog.at_level(logging.WARNING, logger="api.jobs.executors"):
            assert stop_fork_server() is False
    assert "could not be looked for" in caplog.text


def test_a_fork_server_done_with_its_preload_ignores_sigterm_and_is_still_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SIGTERM to the whole process group or cgroup (systemd's KillMode=control-group) killed
    # the service's fork server, and multiprocessing then reported the running job's process
    # dead (exit code 255) before the graceful stop re-queued the job. Once done with its
    # preload modules it ignores SIGTERM; stopped by its pid it is killed at once, not after
    # FORK_SERVER_STOP_S of a SIGTERM it ignores
    forkserver.set_forkserver_preload([*executors.PRELOAD_BEGIN, *executors.PRELOAD_END])
    pid = _running_fork_server()
    end = time.monotonic() + 30
    while not executors.ignores_sigterm(pid):  # its preload modules imported
        assert time.monotonic() < end, "the fork server does not ignore SIGTERM"
        time.sleep(0.02)
    os.kill(pid, signal.SIGTERM)
    assert not _gone(pid, wait_s=0.5)
    with monkeypatch.context() as patch:
        patch.delattr(forkserver.ForkServer, "_stop_unlocked")
        t0 = time.monotonic()
        assert stop_fork_server() is True
        assert time.monotonic() - t0 < executors.FORK_SERVER_STOP_S / 2
    assert _gone(pid)
    _restarts()


def _signal_bit(pid: int, field: str, sig: signal.Signals) -> bool:
    """Whether ``sig`` is in the set ``field`` (``SigIgn``, ``SigBlk``) of ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _slow_preload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seconds: float) -> str:
    """The name of a preload module whose import takes ``seconds`` (Pyomo's takes 2.5-6 s)."""
    (tmp_path / "slow_preload_probe.py").write_text(f"import time\ntime.sleep({seconds})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "slow_preload_probe"


def test_sigterm_while_the_fork_server_imports_does_not_end_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM to the whole process group or cgroup in the seconds the fork server imports its
    # preload modules (right after the service started) killed it: SIGTERM was ignored only
    # once they were imported (api.preload_end), and the first job's process was reported
    # dead. It is blocked from the fork server's first instant (the service starts it with
    # SIGTERM blocked) and dropped when its imports are done
    executor = executors.LocalExecutor(1, preload=[_slow_preload(tmp_path, monkeypatch, 2.0)])
    try:
        executor.warm_up()
        pid = fork_server_pid()
        assert pid is not None
        for sig in executors.STOP_SIGNALS:  # at once: before it runs any of its own code
            os.kill(pid, sig)
        time.sleep(0.5)
        for sig in executors.STOP_SIGNALS:  # while it imports
            os.kill(pid, sig)
        end = time.monotonic() + 60
        while not executors.ignores_sigterm(pid):  # its preload modules imported
            assert pid_alive(pid), "the fork server died of SIGTERM while importing"
            assert time.monotonic() < end, "the fork server does not ignore SIGTERM"
            time.sleep(0.02)
        assert not executors.blocks_sigterm(pid)  # unblocked once ignored
        assert pid_alive(pid)
        for sig in executors.STOP_SIGNALS:  # SIGHUP and SIGQUIT too (a closed terminal)
            assert _signal_bit(pid, "SigIgn", sig), sig.name
        names = [sig.name for sig in executors.STOP_SIGNALS]
        job = executor.start("j-1", "tests.api.helpers:ignored_signals_task", {"names": names})
        end = time.monotonic() + 60
        while (outcome := job.poll()) is None:
            assert time.monotonic() < end
            time.sleep(0.02)
        assert outcome.status == "done", outcome
        assert outcome.result == {"ignored": names}  # its job processes ignore them too
        assert fork_server_pid() == pid  # the same fork server: it was not restarted
    finally:
        executor.close()
        stop_fork_server()


def test_a_fork_server_still_importing_is_stopped_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it blocks SIGTERM while it imports: its server kills it (it sent SIGTERM, which ended an
    # importing fork server; blocked, that would wait for the imports to end)
    executor = executors.LocalExecutor(1, preload=[_slow_preload(tmp_path, monkeypatch, 120.0)])
    try:
        executor.warm_up()
        pid = fork_server_pid()
        assert pid is not None
        end = time.monotonic() + 30
        while not executors.blocks_sigterm(pid):
            assert time.monotonic() < end
            time.sleep(0.02)
        cpu0 = time.process_time()
        t0 = time.monotonic()
        assert stop_fork_server() is True
        # the imports would take 120 s: a stop that waited for them (loose: a loaded machine)
        assert time.monotonic() - t0 < 60
        assert time.process_time() - cpu0 < 5
        assert _gone(pid)
        with monkeypatch.context() as patch:  # and stopped by its pid (no private stop)
            patch.delattr(forkserver.ForkServer, "_stop_unlocked")
            executor.warm_up()
            pid = fork_server_pid()
            assert pid is not None
            end = time.monotonic() + 30
            while not executors.blocks_sigterm(pid):
                assert time.monotonic() < end
                time.sleep(0.02)
            t0 = time.monotonic()
            assert stop_fork_server() is True
            assert time.monotonic() - t0 < executors.FORK_SERVER_STOP_S
            assert _gone(pid)
    finally:
        executor.close()
        stop_fork_server()
