"""Adversarial input files on every command that reads one: exit 2 with one line naming the
file, the field and the reason, never a traceback (session 45's audit)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from tests.dispatchlab.conftest import RunHere
from tests.dispatchlab.test_service_cli import _one_line

runner = CliRunner()

SCENARIO = '{"nodes": [{"id": "n0", "location": {"x": 0, "y": 0}}], "orders": []}'
#: arrays nested far past the interpreter's depth: ``json.loads`` raised RecursionError
DEEP_ARRAYS = "[" * 5_000 + "]" * 5_000
DEEP_OBJECTS = '{"a": ' * 5_000 + "1" + "}" * 5_000
#: as YAML: PyYAML's composer takes two frames a level (it fails at depth ~495 under the
#: default limit of 1,000 frames), and its scanner is quadratic in the depth of ``[``
#: (4.3 s for 5,000 levels, 2.1 s for 1,000)
DEEP_YAML = "[" * 1_000 + "]" * 1_000


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A good scenario; files of arrays and of objects nested too deeply, as JSON and YAML."""
    (tmp_path / "s.json").write_text(SCENARIO)
    (tmp_path / "deep.json").write_text(DEEP_ARRAYS)
    (tmp_path / "deepobj.json").write_text(DEEP_OBJECTS)
    (tmp_path / "deep.yaml").write_text(DEEP_YAML)
    (tmp_path / "deepmap.yaml").write_text("{a: " * 5_000 + "1" + "}" * 5_000)
    (tmp_path / "deepvariants.yaml").write_text(f"base: s.json\nvariants: {DEEP_YAML}\n")
    return {p.name: p for p in tmp_path.iterdir()}


@pytest.mark.parametrize("deep", ["deep.json", "deepobj.json"])
@pytest.mark.parametrize(
    ("command", "reason"),
    [
        # the request's reading looked at the file again for its scenario hint
        (["allocate", "{deep}"], "recursion limit exceeded"),
        (["allocate", "{deep}", "--scenario"], "recursion limit exceeded"),
        # a plan file is first read to tell the route output from a Plan JSON
        (["simulate", "{s}", "--plan", "{deep}"], "recursion limit exceeded"),
        (["scenario", "show", "{deep}", "--format", "vroom"], "nested too deeply"),
        (["route", "{deep}", "--format", "vroom"], "nested too deeply"),
    ],
)
def test_json_nested_too_deeply_is_one_line_and_exit_2(
    files: dict[str, Path], command: list[str], reason: str, deep: str
) -> None:
    args = [a.format(s=files["s.json"], deep=files[deep]) for a in command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {files[deep]}: ")
    assert reason in lines[0]


@pytest.mark.parametrize("name", ["deep.yaml", "deepmap.yaml", "deepvariants.yaml"])
def test_yaml_nested_too_deeply_is_one_line_and_exit_2(files: dict[str, Path], name: str) -> None:
    out = files["s.json"].parent / "report"
    result = runner.invoke(app, ["whatif", str(files[name]), "--out", str(out), "-q"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {files[name]}: yaml: not valid YAML: sequences or mappings nested too deeply\n"
    )


def test_serve_on_a_host_it_cannot_listen_on_is_one_line_and_exit_2(
    tmp_path: Path, run_here: RunHere
) -> None:
    """uvicorn found out after the app had started: an ERROR line and exit status 3."""
    code, err = run_here("serve", "--host", "999.1.1.1", "--data-dir", str(tmp_path))
    assert code == 2
    _one_line(err, "--host: cannot listen on '999.1.1.1'")


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path, run_here: RunHere) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = run_here("serve", "--port", str(port), "--data-dir", str(tmp_path))
    assert code == 2
    _one_line(err, f"--port: cannot listen on 127.0.0.1:{port}", "in use")


def test_allocating_a_scenario_without_nodes_is_one_line_and_exit_2() -> None:
    """A routing instance (Solomon: 100 orders, no fulfilment node) given to ``allocate
    --scenario`` was "optimal" at cost 0 with ``num_orders`` 0: every order dropped without a
    word. Nothing can be allocated without a node: exit 2 naming the file and the field."""
    path = Path(__file__).parents[2] / "data" / "instances" / "solomon" / "C101.txt"
    result = runner.invoke(app, ["allocate", str(path), "--scenario", "-q", "--out", "-"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {path}: nodes: the scenario has no fulfilment nodes, so nothing to allocate "
        "(its 100 orders are courier jobs: plan them with dispatchlab route)\n"
    )
    assert result.stdout == ""
