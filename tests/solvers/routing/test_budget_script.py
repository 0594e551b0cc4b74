"""``benchmarks/routing_budget.py``: bad arguments are usage errors, not tracebacks; its
table names the command that made it."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("routing_budget.py", "routing_budget_script") as module:
        yield module


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--budgets", "-1", "'-1' is not a positive number of seconds"),
        ("--budgets", "nan", "'nan' is not a positive number of seconds"),
        ("--orders", "x", "'x' is not a positive order count"),
        ("--orders", "0", "'0' is not a positive order count"),
        ("--orders", ",", "give at least one value"),
        ("--engines", "foo", "'foo' is not an engine"),
        ("--seed", "1,x", "'x' is not an integer seed"),
    ],
)
def test_bad_arguments_are_usage_errors(
    script: ModuleType,
    option: str,
    value: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        script.main([option, value])
    assert info.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err


def test_the_tables_command_line_is_the_one_that_was_run(
    script: ModuleType, tmp_path: Path
) -> None:
    """The table's ``Command:`` line gave Python lists (``--orders [10, 20]``), which no shell
    or parser takes; it is now the run's own arguments, ``--out-prefix`` included."""
    args = ["--orders", "10,12", "--budgets", "0.5,2", "--engines", "greedy", "--seed", "3"]
    args += ["--out-dir", str(tmp_path), "--out-prefix", "tiny"]
    assert script.main(args) == 0
    table = (tmp_path / "tiny.md").read_text(encoding="utf-8")
    command = re.search(r"^Command: `python benchmarks/routing_budget.py (.*)`$", table, re.M)
    assert command is not None
    assert shlex.split(command.group(1)) == [*args[:8], *args[10:]]  # all but --out-dir


def test_one_day_per_seed_with_its_cpu_time_and_whether_the_budget_bound(
    script: ModuleType, tmp_path: Path
) -> None:
    """Session 56: ``--seed 1,2`` runs a day per seed; each row gives the call's CPU time, the
    orders served and whether the budget bound (orders not placed at the deadline)."""
    import csv

    args = ["--orders", "30", "--budgets", "10", "--engines", "greedy", "--seed", "1,2"]
    assert script.main([*args, "--out-dir", str(tmp_path), "--out-prefix", "seeds"]) == 0
    with (tmp_path / "seeds.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["seed"] for row in rows] == ["1", "2"]
    for row in rows:
        assert float(row["cpu_s"]) > 0.0
        assert int(row["served"]) + int(row["unassigned"]) == 30
        assert row["budget_binds"] == "False"  # 30 orders in 10 s: built long before
