"""``--quiet`` without ``--out``: refused before any work (the result went nowhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["route", "allocate", "simulate"])
@pytest.mark.parametrize("quiet", ["-q", "--quiet"])
def test_quiet_without_out_is_refused_before_the_input_is_read(
    tmp_path: Path, command: str, quiet: str
) -> None:
    """Exit 2 naming ``--quiet`` and the way out; the input (not even valid here) is not read:
    ``allocate REQUEST.json --quiet`` solved and printed nothing, exit 0."""
    empty = tmp_path / "input.json"
    empty.write_text("{}")
    result = runner.invoke(app, [command, str(empty), quiet])
    assert result.exit_code == 2, result.output
    [line] = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: --quiet: without --out") and "--out -" in line
    assert "Traceback" not in result.output


def test_quiet_with_out_to_stdout_prints_the_json_alone(tmp_path: Path) -> None:
    """The way the error names: ``--out -`` with ``--quiet`` gives the result's JSON only."""
    import json

    request = {
        "nodes": [{"id": "dc1", "location": {"lat": 52.5, "lon": 13.4}, "inventory": {"a": 1}}],
        "orders": [
            {
                "id": "o1",
                "location": {"lat": 52.51, "lon": 13.41},
                "lines": [{"sku": "a", "quantity": 1}],
            }
        ],
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    result = runner.invoke(app, ["allocate", str(path), "-q", "--out", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["assignments"][0]["node_id"] == "dc1"
