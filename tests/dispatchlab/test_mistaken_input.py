"""An input of one kind given where another is read (an allocation request to ``route``, a
plan as the scenario of ``simulate``, a scenario as its ``--plan``) says what it looks like,
on the one error line (exit 2); until session 78 only ``allocate`` did, and only when the
file had a key the other kind lacks (``allocate-literature``'s request has none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from dispatchlab.cli._common import MISTAKEN, json_input_kind
from tests.dispatchlab.small import SMALL

runner = CliRunner()


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working folder with ``scenario.json`` (two orders), ``request.json``
    (as ``allocate-literature`` writes it: nodes, orders and costs, a scenario's keys alone)
    and ``plan.json`` (``route --out``'s plan of the scenario)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenario.json").write_text(json.dumps(SMALL))
    made = runner.invoke(app, ["allocate-literature", "request.json", "--orders", "3"])
    assert made.exit_code == 0, made.output
    assert set(json.loads((tmp_path / "request.json").read_text())) <= {"nodes", "orders", "costs"}
    routed = runner.invoke(
        app, ["route", "scenario.json", "--engine", "greedy", "-q", "--out", "plan.json"]
    )
    assert routed.exit_code == 0, routed.output
    return tmp_path


def _error(args: list[str]) -> str:
    """The one stderr line of a command that must exit 2."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected", "found"),
    [
        (["route", "request.json"], "scenario", "request"),
        (["simulate", "request.json"], "scenario", "request"),
        (["scenario", "show", "request.json"], "scenario", "request"),
        (["train", "--scenario", "request.json"], "scenario", "request"),
        (["route", "plan.json"], "scenario", "plan"),
        (["simulate", "plan.json"], "scenario", "plan"),
        (["evaluate", "--scenario", "plan.json"], "scenario", "plan"),
        (["allocate", "plan.json", "--scenario"], "scenario", "plan"),
        (["simulate", "scenario.json", "--plan", "scenario.json"], "plan", "scenario"),
        (["simulate", "scenario.json", "--plan", "request.json"], "plan", "request"),
        (["allocate", "plan.json"], "request", "plan"),
    ],
)
def test_an_input_of_another_kind_says_what_it_looks_like(
    inputs: Path, args: list[str], expected: str, found: str
) -> None:
    path = next(a for a in args if a.endswith(f"{found}.json"))
    line = _error(args)
    assert line.startswith(f"error: {path}: "), line
    assert line.endswith(f" ({MISTAKEN[expected, found]})"), line


def test_a_literature_request_read_as_a_scenario_says_to_drop_the_flag(inputs: Path) -> None:
    """Its keys (nodes, orders, costs) are a scenario's too: the file itself tells."""
    line = _error(["allocate", "request.json", "--scenario"])
    assert line.endswith(" (this looks like an allocation request: drop --scenario)"), line


def test_a_request_on_stdin_read_as_a_scenario_says_so(inputs: Path) -> None:
    data = (inputs / "request.json").read_text()
    result = runner.invoke(app, ["route", "-"], input=data)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: <stdin>: ")
    assert result.stderr.endswith(f" ({MISTAKEN['scenario', 'request']})\n")


@pytest.mark.parametrize("text", ['{"foo": 1}', "[]", "not json", '{"nodes": [{"id": 1}]}'])
def test_an_input_of_no_kind_gets_no_hint(inputs: Path, text: str) -> None:
    (inputs / "bad.json").write_text(text)
    assert json_input_kind(text.encode()) is None
    line = _error(["route", "bad.json"])
    assert "looks like" not in line, line


@pytest.mark.parametrize(
    ("name", "kind"), [("scenario", "scenario"), ("request", "request"), ("plan", "plan")]
)
def test_each_kind_is_told_from_the_file(inputs: Path, name: str, kind: str) -> None:
    assert json_input_kind((inputs / f"{name}.json").read_bytes()) == kind


def test_an_empty_object_is_no_kind() -> None:
    """``{}`` is a request of nothing, and an empty scenario: no hint would be right."""
    assert json_input_kind(b"{}") is None
