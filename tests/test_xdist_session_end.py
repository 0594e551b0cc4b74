"""The test workers' end: no stray SIGINT from execnet in a passing run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests import conftest

REPO = Path(__file__).resolve().parent.parent

#: a worker whose end (pytest's unconfigure) takes 7 s, as a full run's garbage collections
#: did on the loaded 2-core machine: execnet sends it SIGINT after 5 s
SLOW_END = """
import os, time
from pathlib import Path

def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        return
    try:
        end = time.monotonic() + 7
        while time.monotonic() < end:
            time.sleep(0.05)
    except KeyboardInterrupt:
        Path(os.environ["INTERRUPTED_FILE"]).write_text(config.workerinput["workerid"])
        raise
"""


@pytest.fixture
def dispositions() -> Iterator[None]:
    """SIGINT's and SIGQUIT's handlers restored after the test."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _session_finished(config: Any) -> None:
    """The suite's ``pytest_sessionfinish`` wrapper run around a session of ``config``."""
    wrapper = conftest.pytest_sessionfinish(cast(pytest.Session, SimpleNamespace(config=config)))
    next(wrapper)
    with pytest.raises(StopIteration):
        next(wrapper)


@pytest.mark.usefixtures("dispositions")
def test_a_worker_ignores_sigint_once_its_session_has_finished() -> None:
    """What the slow pytest run inside this one checks, in this process: a worker's end of
    session ignores SIGINT from then on; the controller's changes nothing."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _session_finished(SimpleNamespace())  # the controller (no workerinput): no change
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _session_finished(SimpleNamespace(workerinput={"workerid": "gw0"}))
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


# ~19 s (a pytest run with two workers, one of whose ends takes 7 s): the suite's hook that
# stops it is checked by test_a_worker_ignores_sigint_once_its_session_has_finished
@pytest.mark.slow
def test_a_worker_slow_to_end_is_not_interrupted(tmp_path: Path) -> None:
    """A passing ``pytest -n 2`` ended with ``PytestUnraisableExceptionWarning``: a
    KeyboardInterrupt in hypothesis's gc callback in a worker. No test sent it: execnet
    sends SIGINT to a worker still busy 5 s after the controller closed its gateway, and
    pytest's end of session in a worker (full garbage collections) took that long under
    load. The workers ignore SIGINT once their session has finished."""
    (tmp_path / "conftest.py").write_text(SLOW_END)
    (tmp_path / "test_two.py").write_text(
        "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n"
    )
    interrupted = tmp_path / "interrupted"
    out = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"),
            *("-n", "2", "-q", "-W", "error::pytest.PytestUnraisableExceptionWarning"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "INTERRUPTED_FILE": str(interrupted)},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 passed" in out.stdout
    assert not interrupted.exists(), f"worker {interrupted.read_text()} got SIGINT at its end"


def _ignore_interrupts() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


@pytest.mark.usefixtures("dispositions")
def test_the_suite_restores_interrupts_a_run_started_with_them_ignored() -> None:
    """What the slow pytest runs inside this one check, in this process: the suite's
    configuration gives SIGINT and SIGQUIT back their usual effect."""
    _ignore_interrupts()
    conftest.pytest_configure(cast(pytest.Config, SimpleNamespace()))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGQUIT) is signal.SIG_DFL


# ~14 s (two pytest runs, one with two workers): the suite's hook that restores them is
# checked by test_the_suite_restores_interrupts_a_run_started_with_them_ignored
@pytest.mark.slow
def test_a_run_started_with_interrupts_ignored_gives_the_tests_their_usual_signals(
    tmp_path: Path,
) -> None:
    """A run started as a non-interactive shell's background job (``make test &``) inherits
    SIGINT and SIGQUIT ignored: the tests that send them failed (no KeyboardInterrupt, a
    server not ended by SIGQUIT). The suite's conftest restores their usual effect."""
    (tmp_path / "test_dispositions.py").write_text(
        "import signal\n\n\ndef test_usual():\n"
        "    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "    assert signal.getsignal(signal.SIGQUIT) is signal.SIG_DFL\n"
    )
    for workers in ("0", "2"):
        out = subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "-p", "tests.conftest"),
                *("-p", "no:cacheprovider", "-n", workers, "-q"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            preexec_fn=_ignore_interrupts,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
