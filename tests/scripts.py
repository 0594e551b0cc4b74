"""Run a test's script in a fresh Python process of its own session (its own Ctrl-C)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_script(path: Path, text: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Write ``text`` to ``path`` and run it with this interpreter and the repo importable."""
    path.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def assert_no_traceback(done: subprocess.CompletedProcess[str], stdout: str) -> None:
    """The script ended 0, printed ``stdout`` and no traceback or KeyboardInterrupt."""
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr
    assert done.returncode == 0 and done.stdout.strip() == stdout, done


def run_with_stdout_closed(argv: list[str], *, timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` (with the repo importable) with its standard output a pipe whose reader
    has gone before anything is written (``| head`` that stopped); its exit status and
    stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        return proc.wait(timeout=timeout), err


def run_with_stdout_closed_midway(
    argv: list[str], *, read: int = 100, timeout: float = 120
) -> tuple[int, str]:
    """Run ``argv`` (with the repo importable) with its standard output a pipe whose reader
    takes the first ``read`` bytes and goes while the command is still writing (``| head``
    of an output larger than the pipe holds); its exit status and stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert len(os.read(proc.stdout.fileno(), read)) > 0, "the command wrote nothing"
        proc.stdout.close()
        err = proc.stderr.read().decode()
        return proc.wait(timeout=timeout), err
