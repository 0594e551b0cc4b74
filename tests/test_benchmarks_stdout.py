"""A benchmark script's standard output (``--help``, ``--list``, the tables it prints) ends as
``dispatchlab``'s does: a reader gone (``| head``) quietly, exit 1; a full disk
(``> /dev/full``) in one line, ``error: standard output: <reason>``, exit 1. Every script
goes through one place for it, :func:`benchmarks.measures.run_script`."""

from __future__ import annotations

import argparse
import ast
import errno
import subprocess
import sys
from pathlib import Path

import pytest

import scenarios.pipes
from benchmarks.measures import run_script
from scenarios.pipes import EXIT_CLOSED_STDOUT, EXIT_STDOUT_UNWRITABLE
from tests.conftest import REPO

SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))


class _FailingStdout:
    """A standard output each write of which fails with ``err`` (a full disk, a reader gone);
    ``buffered``: each write is kept, and the flush fails (``PYTHONUNBUFFERED`` unset)."""

    def __init__(self, err: OSError, *, buffered: bool = False) -> None:
        self.err = err
        self.buffered = buffered
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        if self.buffered:
            return len(text)
        raise self.err

    def flush(self) -> None:
        if self.buffered:
            raise self.err

    def isatty(self) -> bool:
        return False


@pytest.fixture
def no_dup2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exits of :mod:`scenarios.pipes` leave this process's real standard output alone
    (they point it at /dev/null, which would silence pytest)."""
    monkeypatch.setattr(scenarios.pipes, "quiet_exit", lambda status=1: SystemExit(status))


def _help() -> int:
    """A script's ``main()`` asked for ``--help`` (argparse swallows a failed write of it)."""
    argparse.ArgumentParser(prog="bench.py", description="a benchmark").parse_args(["--help"])
    return 0


@pytest.mark.usefixtures("no_dup2")
@pytest.mark.parametrize("buffered", [False, True])
def test_help_onto_a_full_disk_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], buffered: bool
) -> None:
    """``routing.py --help > /dev/full`` exited 0 without a word: argparse swallows the
    OSError of its help's write; the failure is kept and said once ``main()`` has ended
    (buffered: the flush after its SystemExit fails)."""
    full = OSError(errno.ENOSPC, "No space left")
    monkeypatch.setattr(sys, "stdout", _FailingStdout(full, buffered=buffered))
    with pytest.raises(SystemExit) as stop:
        run_script(_help)
    assert stop.value.code == EXIT_STDOUT_UNWRITABLE
    assert capsys.readouterr().err == "error: standard output: No space left\n"


@pytest.mark.usefixtures("no_dup2")
@pytest.mark.parametrize("buffered", [False, True])
def test_help_into_a_closed_pipe_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], buffered: bool
) -> None:
    """``routing.py --help | head -0``: argparse swallowed the BrokenPipeError (exit 0)."""
    gone = BrokenPipeError(errno.EPIPE, "Broken pipe")
    monkeypatch.setattr(sys, "stdout", _FailingStdout(gone, buffered=buffered))
    monkeypatch.setattr("scenarios.pipes.stdout_closed", lambda: True)
    with pytest.raises(SystemExit) as stop:
        run_script(_help)
    assert stop.value.code == EXIT_CLOSED_STDOUT
    assert capsys.readouterr().err == ""


@pytest.mark.usefixtures("no_dup2")
def test_a_table_printed_onto_a_full_disk_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table printed by a script onto a full disk was an OSError traceback."""

    def main() -> int:
        print("| measure | value |")
        return 0

    monkeypatch.setattr(sys, "stdout", _FailingStdout(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(SystemExit) as stop:
        run_script(main)
    assert stop.value.code == EXIT_STDOUT_UNWRITABLE
    assert capsys.readouterr().err == "error: standard output: No space left\n"


def test_a_usage_error_keeps_its_status(capsys: pytest.CaptureFixture[str]) -> None:
    """A usage error (stderr, exit 2) and ``--help`` written whole end as argparse ends them."""

    def bad() -> int:
        argparse.ArgumentParser(prog="bench.py").parse_args(["--nope"])
        return 0

    with pytest.raises(SystemExit) as stop:
        run_script(bad)
    assert stop.value.code == 2
    assert "unrecognized arguments: --nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        run_script(_help)
    assert stop.value.code == 0
    assert "a benchmark" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("err", "said"),
    [
        (OSError(errno.EIO, "Input/output error"), "error: Input/output error\n"),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset"), "error: Connection reset\n"),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), "error: Broken pipe\n"),  # not stdout's
        (OSError("no errno"), "error: no errno\n"),
    ],
)
def test_an_io_error_naming_no_file_is_one_line(
    capsys: pytest.CaptureFixture[str], err: OSError, said: str
) -> None:
    """An OSError that names no file (a broken connection to the service a script started,
    say) was a traceback: one line, exit 1 (not 2: not the arguments' fault)."""

    def main() -> int:
        raise err

    from benchmarks.measures import EXIT_IO_ERROR

    assert run_script(main) == EXIT_IO_ERROR == 1
    assert capsys.readouterr().err == said


def _main_call(script: Path) -> str | None:
    """The call under ``if __name__ == "__main__":`` of ``script``, as source (None: none)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            return ast.unparse(node.body[-1])
    return None


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_every_script_runs_its_main_through_run_script(script: Path) -> None:
    """The one place standard output's failures are handled: no script prints outside it."""
    assert _main_call(script) in (
        "raise SystemExit(run_script(main))",
        "sys.exit(run_script(main))",
    ), script.name


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_script_help_onto_a_full_disk_is_one_error_line() -> None:
    """A script as run (``measures.py --help > /dev/full``, the lightest script: still ~1 s
    of imports)."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "measures.py"), "--help"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=120,
        )
    assert (done.returncode, done.stderr) == (
        EXIT_STDOUT_UNWRITABLE,
        "error: standard output: No space left on device\n",
    )
