"""README.md stays true: its first lines are the two make commands, its inline commands run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from solvers.allocation.schema import README_BEGIN, README_END, readme_markdown
from tests.conftest import REPO, benchmark_script

README = (REPO / "README.md").read_text(encoding="utf-8")
VENV_PYTHON = ".venv/bin/python"


def test_first_lines_are_make_run_and_make_test() -> None:
    first_block = re.search(r"```\n(.*?)```", README, flags=re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make run", "make test"]
    assert README.index(first_block.group(0)) < README.index("\n## ")


def test_allocation_field_tables_are_the_models() -> None:
    """The README's request and result tables are what the models generate now (the README
    only linked to docs/allocation.md for the schema; a changed default went unseen there)."""
    assert README.count(README_BEGIN) == 1 and README.count(README_END) == 1
    section = README[README.index(README_BEGIN) : README.index(README_END) + len(README_END)]
    assert section == readme_markdown(), "run: python -m solvers.allocation.schema --readme"


def test_benchmark_list_command_runs_as_written() -> None:
    """The ``run_all.py --list`` command of the Development section works from the repo root."""
    spans = [s for s in re.findall(r"`([^`\n]+)`", README) if "run_all.py --list" in s]
    assert spans, "README names the benchmark list command"
    for command in spans:
        args = shlex.split(command)
        if args[0] == VENV_PYTHON and not (REPO / VENV_PYTHON).exists():
            args[0] = sys.executable  # the suite may run from another environment
        run = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, f"{command}: {run.stderr}"
        assert "routing-solomon:" in run.stdout and "allocation:" in run.stdout


def test_every_extra_benchmark_step_is_named_where_the_readme_describes_extras() -> None:
    """``--extras`` was said to add three kinds of table; it adds eight steps, among them the
    allocation time limits and the RL decision latencies that the list left out."""
    paragraph = next(p for p in README.split("\n\n") if "`--extras`" in p)
    spans = set(re.findall(r"`([^`]+)`", " ".join(paragraph.split())))
    with benchmark_script("run_all.py", "run_all_readme_extras") as run_all:
        names = {step.name for step in run_all.EXTRAS}
    assert names, "run_all has variant steps"
    assert names <= spans, f"not named: {sorted(names - spans)}"


def test_the_rerender_command_runs_as_written(tmp_path: Path) -> None:
    """The ``--from-results`` command of the Development section works from the repo root
    (here on a copy of the stored files, ``--out`` added: as written it rewrites them)."""
    spans = [s for s in re.findall(r"`([^`\n]+)`", README) if "--from-results" in s]
    assert spans, "README names the re-render command"
    for command in spans:
        args = shlex.split(command)
        name = args[args.index("--from-results") + 1]
        for suffix in (".csv", ".json", ".md"):
            shutil.copy(REPO / "benchmarks" / "results" / f"{name}{suffix}", tmp_path)
        if args[0] == VENV_PYTHON and not (REPO / VENV_PYTHON).exists():
            args[0] = sys.executable  # the suite may run from another environment
        args += ["--out", str(tmp_path)]
        run = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{command}: {run.stderr}"
        assert "> Re-rendered on " in (tmp_path / f"{name}.md").read_text()


@pytest.mark.skipif(not (REPO / ".venv").is_dir(), reason="no .venv made by make in the repo")
def test_the_docs_commands_find_dispatchlab_and_python_after_the_stated_activation() -> None:
    """``dispatchlab ...`` and ``python -m ...`` of the docs work after what README says."""
    activate = [s for s in re.findall(r"`([^`\n]+)`", README) if "activate" in s]
    assert activate, "README says how to put dispatchlab on the PATH"
    script = f"{activate[0]} && dispatchlab version && python -m solvers.allocation.schema"
    run = subprocess.run(
        ["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "<!-- schema:begin -->" in run.stdout
