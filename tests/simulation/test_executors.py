"""The same replications on every executor give the same numbers (one code path)."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from scenarios import Scenario
from scenarios.errors import InputError
from simulation.evaluate import (
    Case,
    ReplicationOutcome,
    ReplicationTask,
    replication_seeds,
    run_tasks,
)
from simulation.executors import (
    LocalExecutor,
    RayExecutor,
    SerialExecutor,
    check_ray_address,
    make_executor,
)


def _tasks() -> list[ReplicationTask]:
    return [
        ReplicationTask("city", policy, k, s)
        for policy in ("nearest", "insertion")
        for k, s in enumerate(replication_seeds(5, 3))
    ]


def _metrics(outcomes: list[ReplicationOutcome]) -> list[dict[str, float]]:
    return [o.metrics for o in outcomes]


@pytest.fixture(scope="module")
def serial_outcomes(small_city: Scenario) -> list[ReplicationOutcome]:
    return run_tasks({"city": Case(small_city)}, _tasks(), executor=SerialExecutor())


def test_local_pool_matches_serial(
    small_city: Scenario, serial_outcomes: list[ReplicationOutcome]
) -> None:
    seen: list[int] = []
    outcomes = run_tasks(
        {"city": Case(small_city)},
        _tasks(),
        executor=LocalExecutor(workers=2),
        progress=lambda done, total: seen.append(done),
    )
    assert _metrics(outcomes) == _metrics(serial_outcomes)
    assert seen == list(range(1, len(_tasks()) + 1))


# a local Ray instance starts (~8-12 s); jobs run on a local Ray instance by default in
# tests/api/test_ray.py, and the executors' shared task path is checked by
# test_local_pool_matches_serial
@pytest.mark.slow
def test_ray_matches_serial(
    ray_local: None,
    small_city: Scenario,
    serial_outcomes: list[ReplicationOutcome],
    ray_temp_dir: Path,
) -> None:
    outcomes = run_tasks({"city": Case(small_city)}, _tasks(), executor=RayExecutor())
    assert _metrics(outcomes) == _metrics(serial_outcomes)
    assert [o.policy for o in outcomes] == [t.policy for t in _tasks()]
    # the local instance keeps its session files in pytest's temp dir, not in /tmp/ray
    assert (ray_temp_dir / "session_latest").resolve().parent == ray_temp_dir.resolve()


def test_make_executor_names() -> None:
    assert make_executor("serial").name == "serial"
    assert make_executor("local", workers=3).name == "local"
    assert make_executor("ray", address="auto").name == "ray"
    with pytest.raises(InputError):
        make_executor("dask")


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def no_ray_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray looks uninitialised and must not be started: the check has to fail first."""
    ray = pytest.importorskip("ray")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("ray.init must not be called for an address nobody answers at")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)


def test_ray_executor_refuses_a_closed_port_in_seconds(no_ray_init: None) -> None:
    """Refused by the address check (``ray.init``, which retries for minutes, is never
    called), at once: the port's refusal is the reason, not the check's 3 s timeout. The
    wall-clock bound only catches a hang: it was 5 s, the 3 s timeout plus 2 s, which a
    loaded machine could take from the thread that waits for the probe."""
    port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(InputError) as err:
        RayExecutor(f"127.0.0.1:{port}").run(lambda shared, key, task: task, None, "k", [1])
    assert time.monotonic() - t0 < 60
    assert err.value.field == "--address"
    assert err.value.reason == f"no Ray cluster answers at 127.0.0.1:{port} (connection refused)"


def test_ray_address_check_wants_a_gcs_behind_the_port() -> None:
    """A port that accepts connections but never speaks Ray's gRPC is refused too."""
    pytest.importorskip("ray")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()  # the kernel completes the handshake; nobody ever answers
        port = server.getsockname()[1]
        with pytest.raises(InputError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
            check_ray_address(f"127.0.0.1:{port}", timeout_s=1.0)


@pytest.mark.parametrize(
    ("address", "reason"),
    [("no-such-host.invalid:6379", "does not resolve"), ("host:port", "expected HOST:PORT")],
)
def test_ray_address_check_names_what_is_wrong(address: str, reason: str) -> None:
    with pytest.raises(InputError) as err:
        check_ray_address(address)
    assert err.value.field == "--address" and reason in err.value.reason
    check_ray_address("auto")  # Ray finds the cluster itself: nothing to check


_ORPHAN_SCRIPT = """
import sys, time
from simulation.executors import LocalExecutor

def task(shared, key, path):
    import os
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    LocalExecutor(workers=2).run(task, None, "k", [sys.argv[1], sys.argv[2]])
"""


def _alive(pid: int) -> bool:
    """The process runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_pool_workers_end_when_their_parent_is_terminated(tmp_path: Path) -> None:
    # before: SIGTERM to `dispatchlab whatif` left its two pool workers playing on, orphaned
    import contextlib
    import os
    import signal
    import subprocess
    import sys

    marks = [tmp_path / "a", tmp_path / "b"]
    script = tmp_path / "orphans.py"
    script.write_text(_ORPHAN_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    parent = subprocess.Popen([sys.executable, str(script), *map(str, marks)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not all(m.exists() and m.read_text() for m in marks):
            assert time.monotonic() < deadline, "the workers never started their tasks"
            assert parent.poll() is None, "the pool's parent ended early"
            time.sleep(0.1)
        workers = [int(m.read_text()) for m in marks]
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "a worker outlived its parent by 30 s"
    finally:
        parent.kill()
        for m in marks:
            if m.exists() and m.read_text():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(m.read_text()), signal.SIGKILL)


_CTRL_C_SCRIPT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, not ignored
from simulation.executors import LocalExecutor

def task(shared, key, path):
    import os
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    try:
        LocalExecutor(workers=2).run(task, None, "k", sys.argv[1:])
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ctrl_c_ends_the_pool_and_its_workers_at_once(tmp_path: Path) -> None:
    # before: Ctrl-C at the terminal (SIGINT to the whole process group) failed each worker's
    # task with KeyboardInterrupt, the workers took the tasks queued for them and played
    # those to their end, and the parent's exit waited for them: `whatif` hung for minutes
    import contextlib
    import os
    import signal
    import subprocess
    import sys

    marks = [tmp_path / name for name in "abcd"]
    script = tmp_path / "ctrl_c.py"
    script.write_text(_CTRL_C_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    parent = subprocess.Popen(
        [sys.executable, str(script), *map(str, marks)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 120
        while not all(m.exists() and m.read_text() for m in marks[:2]):
            assert time.monotonic() < deadline, "the workers never started their tasks"
            assert parent.poll() is None, "the pool's parent ended early"
            time.sleep(0.1)
        workers = [int(m.read_text()) for m in marks[:2]]
        os.killpg(parent.pid, signal.SIGINT)  # Ctrl-C
        out, err = parent.communicate(timeout=30)  # the old code waited 120 s more
        assert parent.returncode == 130 and "interrupted" in out
        assert "SpawnProcess" not in err  # no worker's traceback
        assert "Traceback" not in err, err  # nor the parent's exit's (see the test below)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "a worker outlived the Ctrl-C by 10 s"
        assert not any(m.exists() for m in marks[2:]), "a queued task started after Ctrl-C"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        for m in marks:
            if m.exists() and m.read_text():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(m.read_text()), signal.SIGKILL)


def test_stopping_a_pool_waits_until_its_wake_up_pipe_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # before: after Ctrl-C, `whatif` printed `error: interrupted` and now and then, as it
    # exited, "Exception ignored in: <module 'threading'> ... OSError: [Errno 9] Bad file
    # descriptor": the pool's manager thread closed its wake-up pipe while the interpreter's
    # exit (concurrent.futures' _python_exit) was writing to it. _stop_pool now waits for
    # that thread; a slow close here makes the race certain instead of occasional.
    import concurrent.futures.process as cfp
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from simulation.executors import _stop_pool

    if not hasattr(cfp, "_ThreadWakeup") or not hasattr(cfp, "_threads_wakeups"):
        pytest.skip("this Python's concurrent.futures has no _ThreadWakeup")
    close = cfp._ThreadWakeup.close

    def slow_close(self: Any) -> None:
        time.sleep(0.5)
        close(self)

    monkeypatch.setattr(cfp._ThreadWakeup, "close", slow_close)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
    running = pool.submit(time.sleep, 120)
    manager: Any = pool._executor_manager_thread  # a Thread (typeshed says otherwise)
    assert manager is not None
    wakeups = [w for t, w in list(cfp._threads_wakeups.items()) if t is manager]
    deadline = time.monotonic() + 60
    while not running.running():  # taken by the worker's call queue
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    _stop_pool(pool)
    assert not manager.is_alive(), "the pool's manager thread still runs"
    assert wakeups and all(w._closed for w in wakeups), "its wake-up pipe is still open"


_START_UP_CTRL_C_SCRIPT = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, not ignored
if __name__ == "__mp_main__":  # a pool worker importing its parent's main module at start-up
    os.kill(os.getpid(), signal.SIGINT)  # the Ctrl-C that reached it there
    time.sleep(0.2)
from simulation.executors import LocalExecutor

def task(shared, key, value):
    return value * 2

if __name__ == "__main__":
    print(LocalExecutor(workers=2).run(task, None, "k", [1, 2, 3, 4]), flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signal masks (POSIX)")
def test_a_ctrl_c_while_a_worker_starts_up_prints_no_traceback(tmp_path: Path) -> None:
    # before: a Ctrl-C reaching a pool worker still starting (Python's start-up, the spawn
    # bootstrap importing the parent's main module), before its initializer ignored SIGINT,
    # raised KeyboardInterrupt there: a traceback under `error: interrupted`, the pool broken.
    # Now the parent holds SIGINT while it starts its workers, which inherit the mask and
    # drop the pending Ctrl-C once they ignore it (the parent gets its own Ctrl-C).
    from tests.scripts import assert_no_traceback, run_script

    done = run_script(tmp_path / "start_up.py", _START_UP_CTRL_C_SCRIPT, timeout=120)
    assert_no_traceback(done, "[2, 4, 6, 8]")


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signal masks (POSIX)")
def test_a_ctrl_c_while_workers_start_is_raised_once_they_have_started() -> None:
    # a Ctrl-C taken by another thread raised KeyboardInterrupt half-way through starting
    # SB3's SubprocVecEnv: its workers were left behind, each printing a traceback
    import os

    from simulation.executors import sigint_held

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reached = []
        with pytest.raises(KeyboardInterrupt), sigint_held():
            signal.raise_signal(signal.SIGINT)  # this thread's: held (blocked)
            reached.append("held")
            # the process's: held too, or recorded if another thread takes it, not raised here
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached.append("recorded")
        assert reached == ["held", "recorded"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
