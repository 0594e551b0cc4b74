"""``benchmarks/allocation_small.py``: its table, and its refusal of sizes off its path."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from solvers.allocation import batch
from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("allocation_small.py", "allocation_small") as module:
        yield module


def test_each_size_has_a_row_per_code_and_the_switch_is_put_back(
    script: ModuleType, tmp_path: Path
) -> None:
    args = ["--sizes", "6,12", "--seeds", "1..2", "--limit", "5", "--out-dir", str(tmp_path)]
    assert script.main(args) == 0
    with (tmp_path / "allocation-small.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["orders"], r["code"]) for r in rows] == [
        ("6", "certificate"),
        ("6", "compact only"),
        ("12", "certificate"),
        ("12", "compact only"),
    ]
    for row in rows:
        done, _, runs = row["certified"].partition("/")
        assert runs == "2" and 0 <= int(done) <= 2
        assert float(row["CPU median (s)"]) <= float(row["CPU max (s)"])
    # the paired columns are on the certificate's rows only
    assert rows[1]["seeds cheaper / dearer with the certificate"] == ""
    cheaper, dearer = rows[0]["seeds cheaper / dearer with the certificate"].split(" / ")
    assert int(cheaper) + int(dearer) <= 2
    assert batch.SMALL_CERTIFICATE is True  # the script's switch is restored
    text = (tmp_path / "allocation-small.md").read_text(encoding="utf-8")
    assert "--sizes 6,12 --seeds 1..2 --limit 5`" in text


@pytest.mark.parametrize("sizes", ["100", "50,0", "x"])
def test_sizes_off_the_small_batch_path_are_a_usage_error(
    script: ModuleType, sizes: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        script.main(["--sizes", sizes, "--out-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert "--sizes" in capsys.readouterr().err
