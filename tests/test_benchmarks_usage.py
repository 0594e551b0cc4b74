"""The command lines in the benchmark scripts' docstrings (their ``--help`` text) run as shown."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))
COMMAND = re.compile(r"^\s*(?:flock \S+ \S+ )?(?:\.venv/bin/)?python \S*benchmarks/(\w+)\.py\b")


def _docstring(script: Path) -> str:
    """The module docstring as Python reads it (escapes applied): what ``--help`` prints."""
    return ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")), clean=False) or ""


def _options(script: Path) -> set[str]:
    """The ``--options`` the script's argparse parser declares (literally or by a constant)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            for arg in node.args:
                value = arg.value if isinstance(arg, ast.Constant) else None
                if isinstance(arg, ast.Name):
                    value = constants.get(arg.id)
                if isinstance(value, str) and value.startswith("--"):
                    found.add(value)
    return found


def _commands(doc: str) -> list[tuple[str, str]]:
    """(script name, whole command) of each command line, continuation lines joined."""
    commands: list[tuple[str, str]] = []
    lines = iter(doc.splitlines())
    for line in lines:
        match = COMMAND.match(line)
        if match is None:
            continue
        command = line.split(" #")[0].strip()
        while command.endswith("\\"):
            command = command[:-1].rstrip() + " " + next(lines).split(" #")[0].strip()
        commands.append((match.group(1), command))
    return commands


def test_the_docstrings_hold_commands() -> None:
    assert sum(len(_commands(_docstring(s))) for s in SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_a_usage_line_keeps_its_line_breaks(script: Path) -> None:
    """A backslash-newline in a (non-raw) docstring is eaten by Python: allocation_certify's
    ``--help`` printed ``--seconds 300         --runs ...``, its two lines run together."""
    for line in _docstring(script).splitlines():
        if COMMAND.match(line):
            command = line.split(" #")[0].strip()  # a comment may be aligned with spaces
            assert not re.search(r"\S {2,}\S", command), f"{script.name}: {command}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_a_usage_line_names_only_options_its_script_has(script: Path) -> None:
    for name, command in _commands(_docstring(script)):
        target = REPO / "benchmarks" / f"{name}.py"
        assert target.is_file(), command
        unknown = set(re.findall(r"(?<!\S)--[a-z][a-z0-9-]*", command)) - _options(target)
        assert not unknown, f"{script.name}: {command}: {sorted(unknown)}"
