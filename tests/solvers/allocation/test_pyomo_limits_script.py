"""``benchmarks/allocation_pyomo_limits.py``: its table, and its refusal of bad sizes."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("allocation_pyomo_limits.py", "allocation_pyomo_limits") as module:
        yield module


def test_the_table_has_a_row_per_size_with_the_time_past_the_limit(
    script: ModuleType, tmp_path: Path
) -> None:
    assert script.main(["--sizes", "10,20", "--limit", "2", "--out-dir", str(tmp_path)]) == 0
    with (tmp_path / "allocation-pyomo-limits.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [row["orders"] for row in rows] == ["10", "20"]
    for row in rows:
        wall, limit, past = (float(row[k]) for k in ("wall (s)", "limit (s)", "past the limit (s)"))
        assert limit == 2.0 and past == pytest.approx(wall - limit, abs=0.011)
        # small requests: HiGHS answers within the limit, its worker is not killed
        assert row["fallback baseline"] == "no" and row["HiGHS status"] != "killed"
        # the solve's answer is no dearer than the nearest-node one
        assert float(row["cost"]) <= float(row["nearest-node cost"]) + 1e-6
        assert row["explained orders"] == "0"  # explanations off by default
    assert "--sizes 10,20 --limit 2`" in (tmp_path / "allocation-pyomo-limits.md").read_text()


def test_explain_measures_the_solves_with_their_explanations(
    script: ModuleType, tmp_path: Path
) -> None:
    args = ["--sizes", "10", "--limit", "2", "--explain", "--out-dir", str(tmp_path)]
    assert script.main(args) == 0
    with (tmp_path / "allocation-pyomo-limits.csv").open(encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert row["explained orders"] == "10"
    assert (
        "--sizes 10 --limit 2 --explain`" in (tmp_path / "allocation-pyomo-limits.md").read_text()
    )


@pytest.mark.parametrize("sizes", ["0,300", "300,x", ""])
def test_bad_sizes_are_a_usage_error(script: ModuleType, sizes: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--sizes", sizes])
    assert exit_info.value.code == 2
