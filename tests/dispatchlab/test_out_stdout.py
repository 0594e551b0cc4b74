"""``--out -`` writes the result JSON alone to stdout, for every command that writes one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from scenarios.generate import generate_city
from scenarios.io import write_json

runner = CliRunner()


@pytest.fixture
def tiny_city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 12-order city file; the working folder is ``tmp_path`` (a file '-' would land there)."""
    monkeypatch.chdir(tmp_path)
    city = generate_city(seed=3, num_orders=12, num_nodes=2, num_couriers=3)
    path = tmp_path / "city.json"
    write_json(city.model_copy(update={"arrivals": None}), path)
    return path


@pytest.mark.parametrize(
    ("command", "key"),
    [
        (["route", "{city}", "--engine", "greedy", "--time-limit", "1"], "routes"),
        (["simulate", "{city}", "--replications", "2", "--executor", "serial"], "on_time_rate"),
        (["scenario", "convert", "{city}"], "orders"),
        (["scenario", "generate", "--orders", "10", "--nodes", "2", "--couriers", "2"], "orders"),
    ],
)
def test_out_dash_prints_only_the_json(tiny_city: Path, command: list[str], key: str) -> None:
    args = [a.replace("{city}", str(tiny_city)) for a in command]
    result = runner.invoke(app, [*args, "--out", "-"])
    assert result.exit_code == 0, result.output
    assert key in json.loads(result.stdout)  # stdout is the JSON and nothing else
    assert not (tiny_city.parent / "-").exists()


def test_a_scenario_file_given_to_allocate_says_to_add_scenario(tiny_city: Path) -> None:
    result = runner.invoke(app, ["allocate", str(tiny_city)])
    assert result.exit_code == 2
    assert "add --scenario" in result.stderr and "Traceback" not in result.output
    fixed = runner.invoke(app, ["allocate", str(tiny_city), "--scenario", "--out", "-"])
    assert fixed.exit_code == 0, fixed.output
    assert "assignments" in json.loads(fixed.stdout)


@pytest.mark.parametrize(
    "command",
    [
        ["scenario", "generate", "--orders", "10", "--nodes", "2", "--couriers", "2", "--out", "-"],
        ["route", "{city}", "--engine", "greedy", "--time-limit", "1", "--out", "-"],
        ["scenario", "schema"],
        ["version"],
    ],
)
def test_a_stdout_closed_by_its_reader_ends_the_command_quietly(
    tiny_city: Path, command: list[str]
) -> None:
    """``dispatchlab ... --out - | head`` said ``error: Broken pipe`` (exit 2), as if the
    input were bad; the command now ends as Click and Rich end one: no line, exit 1."""
    from scenarios.pipes import EXIT_CLOSED_STDOUT
    from tests.scripts import run_with_stdout_closed

    args = [a.replace("{city}", str(tiny_city)) for a in command]
    code, err = run_with_stdout_closed([sys.executable, "-m", "dispatchlab", *args])
    assert (code, err) == (EXIT_CLOSED_STDOUT, "")


def test_a_broken_pipe_elsewhere_is_still_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Only a closed standard output ends quietly: another pipe's end is an error line."""
    import typer

    from dispatchlab.cli._common import cli_errors

    @cli_errors
    def write() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(typer.Exit) as info:
        write()
    assert info.value.exit_code == 2
    assert capsys.readouterr().err == "error: Broken pipe\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "command",
    [
        ["version"],
        ["--help"],
        ["scenario", "--help"],
        ["scenario", "schema"],
        ["scenario", "show", "{city}"],
        ["route", "{city}", "--engine", "greedy", "--time-limit", "1", "--out", "-"],
        ["simulate", "{city}", "--replications", "1", "--executor", "serial"],
    ],
)
def test_a_stdout_that_cannot_be_written_is_one_error_line(
    tiny_city: Path, command: list[str]
) -> None:
    """``dispatchlab version > /dev/full`` (and ``--help``) ended in an OSError traceback, and
    a command's output there was ``error: No space left on device`` with exit 2, as if its
    input were bad: every command (help included) says it in one line, exit 1, as
    ``run_all.py --list`` and the schema do."""
    import subprocess

    from scenarios.pipes import EXIT_STDOUT_UNWRITABLE
    from tests.scripts import REPO

    args = [a.replace("{city}", str(tiny_city)) for a in command]
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "dispatchlab", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=300,
        )
    assert (done.returncode, done.stderr.strip()) == (
        EXIT_STDOUT_UNWRITABLE,
        "error: standard output: No space left on device",
    )


def test_an_unwritable_file_is_still_the_commands_error(
    tiny_city: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only standard output's failed writes are told apart: a file that cannot be written is
    still an input or output error of the command, exit 2; and the entry point puts standard
    output back."""
    from dispatchlab.cli import main

    before = sys.stdout
    with pytest.raises(SystemExit) as info:
        main(["scenario", "convert", str(tiny_city), "--out", "/dev/full"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: "), err
    assert "No space left on device" in err and "standard output" not in err
    assert sys.stdout is before
