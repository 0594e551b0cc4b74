"""``benchmarks/run_all.py`` (``make bench``) rewrites the committed tables the docs cite."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import REPO, benchmark_script


@pytest.fixture
def run_all() -> Iterator[ModuleType]:
    """The benchmark runner, imported as a module (nothing runs on import)."""
    with benchmark_script("run_all.py", "run_all_steps_script") as module:
        yield module


def test_every_routing_step_writes_the_committed_table(run_all: ModuleType) -> None:
    """Each routing step names its committed table (it wrote routing-solomon-auto-5s.md)."""
    routing = [s for s in run_all.STEPS if s.script == "routing.py"]
    assert routing, "run_all has routing steps"
    for step in routing:
        args = list(step.args)
        assert "--out-prefix" in args, step.name
        prefix = args[args.index("--out-prefix") + 1]
        budget = args[args.index("--time-limit") + 1]
        assert prefix == f"{step.name}-{budget}s"
        assert (REPO / "benchmarks" / "results" / f"{prefix}.md").is_file(), prefix


def test_routing_steps_run_the_command_of_their_committed_table(run_all: ModuleType) -> None:
    """Each table's ``Command:`` line is its step, ``--out-prefix`` included (the city tables
    had no step at all, and the lines left out the prefix that names the table)."""
    steps = {s.name: s for s in run_all.STEPS if s.script == "routing.py"}
    assert {"routing-city-1000", "routing-city-10000"} <= set(steps)
    for step in steps.values():
        args = list(step.args)
        prefix = args[args.index("--out-prefix") + 1]
        table = (REPO / "benchmarks" / "results" / f"{prefix}.md").read_text(encoding="utf-8")
        command = next(line for line in table.splitlines() if line.startswith("Command:"))
        assert command == f"Command: `python benchmarks/routing.py {' '.join(args)}`", prefix
