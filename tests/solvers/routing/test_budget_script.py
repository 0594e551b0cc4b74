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
        ("--seed", "1,x", "'x' is not a non-negative integer seed"),
        ("--seed", "1,-1", "'-1' is not a non-negative integer seed"),  # pydantic's traceback
        ("--couriers-per-1000", "0", "'0' is not a positive courier count"),
        ("--repeat", "x", "'x' is not a positive number of runs"),
        ("--generator-version", "3", "invalid choice: 3"),
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
    or parser takes; it is now the run's own arguments, ``--out-prefix`` included, and the
    options left to their defaults with them (a changed default changed what it ran)."""
    args = ["--orders", "10,12", "--budgets", "0.5,2", "--engines", "greedy", "--seed", "3"]
    args += ["--out-dir", str(tmp_path), "--out-prefix", "tiny"]
    assert script.main(args) == 0
    table = (tmp_path / "tiny.md").read_text(encoding="utf-8")
    command = re.search(r"^Command: `python benchmarks/routing_budget.py (.*)`$", table, re.M)
    assert command is not None
    defaults = ["--generator-version", "1", "--repeat", "1"]  # (no fleet: sized per day)
    assert shlex.split(command.group(1)) == [*args[:8], *args[10:], *defaults]  # no --out-dir


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


def test_the_scale_options_are_in_the_tables_command_line(
    script: ModuleType, tmp_path: Path
) -> None:
    """A fleet per 1,000 orders, the generator's version and repeated solves: named on the
    ``Command:`` line (else the table could not be made again), one row per run."""
    args = ["--orders", "10", "--budgets", "0.5", "--engines", "greedy", "--seed", "3"]
    scale = ["--couriers-per-1000", "300", "--generator-version", "2", "--repeat", "2"]
    out = ["--out-dir", str(tmp_path), "--out-prefix", "scale"]
    assert script.main([*args, *scale, *out]) == 0
    table = (tmp_path / "scale.md").read_text(encoding="utf-8")
    command = re.search(r"^Command: `python benchmarks/routing_budget.py (.*)`$", table, re.M)
    assert command is not None
    assert shlex.split(command.group(1)) == [*args, *scale, *out[2:]]
    runs = (tmp_path / "scale.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert [line.split(",")[4] for line in runs] == ["1", "2"]  # the run column


def test_a_fleet_per_1000_orders_sizes_the_fleet(script: ModuleType) -> None:
    day = script.city(40, 1, couriers_per_1000=100, generator_version=2)
    assert (len(day.orders), len(day.vehicles)) == (40, 4)
    assert len(script.city(40, 1).vehicles) == 2  # 40 // 25 by default
