"""``-`` as an input file: the request or scenario is read from standard input, as a file is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from scenarios.io import load_scenario, scenario_from_bytes, to_json
from tests.conftest import REPO
from tests.dispatchlab.small import SMALL

runner = CliRunner()

C101 = REPO / "data" / "instances" / "solomon" / "C101.txt"


@pytest.mark.parametrize(
    "command",
    [
        ["scenario", "convert"],
        ["scenario", "show", "--json"],
        ["route", "--engine", "greedy", "--time-limit", "5", "--out", "-"],
        ["simulate", "--replications", "1", "--executor", "serial", "--out", "-"],
    ],
)
@pytest.mark.parametrize("source", ["json", "solomon"])
def test_a_scenario_on_stdin_answers_as_the_same_file(
    tmp_path: Path, command: list[str], source: str
) -> None:
    """``-`` was ``-: path: file not found`` (exit 2) for every command."""
    path = tmp_path / "small.json"
    path.write_text(json.dumps(SMALL))
    if source == "solomon":
        path = C101
    at = 2 if command[0] == "scenario" else 1
    from_file = runner.invoke(app, [*command[:at], str(path), *command[at:]])
    assert from_file.exit_code == 0, from_file.output
    from_stdin = runner.invoke(app, [*command[:at], "-", *command[at:]], input=path.read_bytes())
    assert from_stdin.exit_code == 0, from_stdin.output
    if command[0] == "simulate":  # its KPIs, not the wall-clock time of the runs
        strip = ("wall_time_s", "elapsed_s")
        want = {k: v for k, v in json.loads(from_file.stdout).items() if k not in strip}
        got = {k: v for k, v in json.loads(from_stdin.stdout).items() if k not in strip}
        assert got == want
    elif command[0] == "route":
        assert json.loads(from_stdin.stdout)["routes"] == json.loads(from_file.stdout)["routes"]
    else:  # a text format's source names its file: here <stdin>
        assert from_stdin.stdout == from_file.stdout.replace(str(path), "<stdin>")


@pytest.mark.parametrize(
    ("command", "text", "says"),
    [
        (["scenario", "show", "-"], "{not json", "error: <stdin>: (root): Invalid JSON"),
        (["route", "-"], '{"orders": 3}', "error: <stdin>: orders: "),
        (["simulate", "-"], "hello\nworld\n", "error: <stdin>: format: cannot tell the file"),
        (["scenario", "convert", "-", "--format", "vrplib"], "X\n", "error: <stdin>: "),
    ],
)
def test_bad_input_on_stdin_exits_2_naming_it(command: list[str], text: str, says: str) -> None:
    result = runner.invoke(app, command, input=text)
    assert result.exit_code == 2, result.output
    assert says in result.stderr and "Traceback" not in result.output, result.stderr


def test_a_scenario_in_bytes_is_the_files_scenario() -> None:
    """``scenario_from_bytes`` (stdin's reader) detects and parses as ``load_scenario``."""
    from_bytes = scenario_from_bytes(C101.read_bytes(), source="<stdin>")
    from_file = to_json(load_scenario(C101)).replace(str(C101), "<stdin>")
    assert to_json(from_bytes).replace('"stdin"', '"C101"') == from_file


@pytest.mark.parametrize("text", ["", "  \n\n"])
@pytest.mark.parametrize("command", [["route"], ["simulate"], ["scenario", "show"]])
def test_an_empty_stdin_says_it_is_empty(command: list[str], text: str) -> None:
    """Nothing piped in (``dispatchlab route - < /dev/null``) said ``cannot tell the file
    format; pass --format``, which no ``--format`` could help."""
    result = runner.invoke(app, [*command, "-"], input=text)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: <stdin>: (root): the input is empty: nothing to read a scenario from\n"
    )
