"""The test workers' end: no stray SIGINT from execnet in a passing run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
