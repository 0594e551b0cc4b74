"""The command lines and Python examples in docs/scenarios.md run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from tests.conftest import REPO

DOC = REPO / "docs" / "scenarios.md"
TEXT = DOC.read_text(encoding="utf-8")
COMMANDS = [line[2:] for line in TEXT.splitlines() if line.startswith("$ dispatchlab ")]
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)


@pytest.fixture
def in_tmp_with_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory where ``data/`` is the repository's data folder."""
    (tmp_path / "data").symlink_to(REPO / "data", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_doc_has_examples() -> None:
    assert len(COMMANDS) >= 6 and PYTHON


def test_command_lines_run_in_order(in_tmp_with_data: Path) -> None:
    runner = CliRunner()
    for command in COMMANDS:
        args = shlex.split(command)[1:]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{command}\n{result.output}"


@pytest.mark.parametrize("code", PYTHON)
def test_python_examples_run(code: str, in_tmp_with_data: Path) -> None:
    exec(compile(code, str(DOC), "exec"), {})
