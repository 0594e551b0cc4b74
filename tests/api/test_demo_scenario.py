"""The demo day (``GET /v1/demo``) can be written by the documented command line."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.core.config import Settings
from dispatchlab.cli import app
from scenarios.io import to_json
from scenarios.model import Scenario
from tests.conftest import REPO

#: the command docs/api.md gives for writing the demo day
DOC_COMMAND = re.compile(r"^dispatchlab scenario generate .*--node-capacity-factor .*$", re.M)


def _documented_command() -> list[str]:
    """The arguments of the one ``scenario generate`` line of docs/api.md's demo section."""
    found = DOC_COMMAND.findall((REPO / "docs" / "api.md").read_text(encoding="utf-8"))
    assert len(found) == 1, found
    return shlex.split(found[0])[1:]


def test_the_documented_command_writes_the_served_demo_day_byte_for_byte(
    settings: Settings, make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # session 54: `scenario generate` had no option for the node capacities the demo day is
    # generated with (api/demo.py, factor 2.0), so no command line gave that day
    demo = Settings(**{**settings.model_dump(), "demo": True, "auth_enabled": False})
    served = make_client(demo).get("/v1/demo").json()["scenario"]
    args = _documented_command()
    assert args[args.index("--seed") + 1] == str(demo.demo_seed)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = (tmp_path / args[args.index("--out") + 1]).read_bytes()
    assert json.loads(written) == served
    assert written == (to_json(Scenario.model_validate(served)) + "\n").encode()
