"""``benchmarks/simulation_policies.py``: paired policy runs on city days, written as a per-run
CSV and the table docs/simulation.md's on-time comparisons are."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from benchmarks.measures import WrittenThenInterrupted
from scenarios.generate import CityParams, generate_city
from simulation.evaluate import simulate
from simulation.params import SimParams
from tests.conftest import benchmark_script

#: a 60-order day (generator 2's fleet) on which insertion:ontime plays otherwise than
#: insertion, with and without breaks, by a different amount on each seed: a tenth of a
#: second a run
TINY = ["--days", "60s1n3c6v2", "--seeds", "0,1"]


@pytest.fixture(scope="module")
def policies() -> Iterator[ModuleType]:
    """The script imported as a module (nothing runs on import)."""
    with benchmark_script("simulation_policies.py", "simulation_policies_script") as module:
        yield module


@pytest.fixture(scope="module")
def tiny_runs(policies: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The tiny day's tables, made on one process and again on two."""
    folders = []
    for workers in ("1", "2"):
        out = tmp_path_factory.mktemp(f"workers{workers}")
        assert policies.main([*TINY, "--workers", workers, "--out-dir", str(out)]) == 0
        folders.append(out)
    return folders


def test_the_table_is_what_the_csv_gives(policies: ModuleType, tiny_runs: list[Path]) -> None:
    """Each table line is the paired comparison of the CSV's runs, as read back."""
    out = tiny_runs[0]
    runs = policies.read_csv(out / "simulation-policies.csv")
    assert len(runs) == 2 * 2 * 2  # breaks on/off, two policies, two seeds
    days = [policies.parse_day("60s1n3c6v2")]
    rows = policies.table_rows(runs, days, "insertion", "insertion:ontime")
    table = (out / "simulation-policies.md").read_text(encoding="utf-8")
    written = [line for line in table.splitlines() if line.startswith("| 60-order city")]
    assert written == rows and len(rows) == 2
    # the policies play the day differently: an on-time interval, a cost ratio not 1
    cells = rows[0].split(" | ")
    assert "[" in cells[4] and not cells[6].startswith("1.000 "), rows[0]
    assert "| on | 2 |" in rows[0] and "| off | 2 |" in rows[1]
    assert "Command: `flock -s /tmp/dispatchlab-cpu.lock" in table and "\nMade " in table
    # the options left to their defaults are written too (a changed default would change
    # what the command runs): the policies and breaks compared, the table's name
    command = table.split("Command: `")[1].split("`")[0]
    assert " --policies insertion,insertion:ontime --breaks on,off " in command, command
    assert command.endswith(" --out-prefix simulation-policies"), command


def test_the_same_seeds_give_the_same_rows_on_any_number_of_workers(
    tiny_runs: list[Path],
) -> None:
    one, two = (folder / "simulation-policies.csv" for folder in tiny_runs)
    assert one.read_text(encoding="utf-8") == two.read_text(encoding="utf-8")


def test_a_row_is_the_run_the_docs_recipe_gives(
    policies: ModuleType, tiny_runs: list[Path]
) -> None:
    """A CSV row is ``simulate(generate_city(...), policy=P, seed=s, params=SimParams(...))``
    played on its own, as docs/simulation.md writes each run."""
    runs = policies.read_csv(tiny_runs[1] / "simulation-policies.csv")
    run = next(r for r in runs if r.policy == "insertion:ontime" and r.seed == 1 and r.breaks)
    day = generate_city(
        seed=1, num_orders=60, num_nodes=3, num_couriers=6, params=CityParams(generator_version=2)
    )
    alone = simulate(
        day, policy="insertion:ontime", seed=1, params=SimParams(take_vehicle_breaks=True)
    )
    assert run.kpis == {k: alone.metrics[k] for k in policies.KPIS}


def test_ctrl_c_writes_no_table(
    policies: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted run leaves the committed tables as they were (exit status 130)."""

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(policies, "run_tasks", interrupted)
    assert policies.main([*TINY, "--out-dir", str(tmp_path)]) == 130
    assert not list(tmp_path.iterdir())


def test_ctrl_c_in_the_statistics_writes_no_table(
    policies: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C once the runs were done, in the table's statistics (scipy's first import):
    a traceback, and the new CSV beside the old table."""

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(policies, "markdown", interrupted)
    try:
        assert policies.main([*TINY, "--out-dir", str(tmp_path)]) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main")
    assert not list(tmp_path.iterdir())


def test_day_names_are_the_docs_days(policies: ModuleType) -> None:
    """A name by orders alone takes the docs' fleet for that size; a set names its days."""
    day = policies.parse_day("1500s2v2")
    assert (day.seed, day.orders, day.nodes, day.couriers, day.generator) == (2, 1500, 20, 40, 2)
    assert day.label == "held out: 1,500-order city (seed 2, 20 nodes, 40 couriers, v2 fleet)"
    assert policies.parse_day("60s1n3c6v2").name == "60s1n3c6v2"
    assert policies.parse_day("500s1n5c20").name == "500s1"
    tuned = [d.name for d in policies.days_arg("tuned")]
    assert tuned[:4] == ["100s2", "500s1", "1500s1v2", "5000s1"] and len(tuned) == 8
    for bad in ("7s1", "100s2v3", "100", "100s2,100s2", "0s1n1c1"):
        with pytest.raises(argparse.ArgumentTypeError):
            policies.days_arg(bad)


def test_a_difference_that_is_zero_up_to_rounding_is_written_unsigned_zero(
    policies: ModuleType,
) -> None:
    """A paired difference of floating-point residue, or one rounding to zero, is written
    ``+0.000``, never ``-0.000`` (the project's :func:`~simulation.stats.fmt_num`)."""
    from simulation.stats import Interval

    residue = Interval(mean=-1.9e-17, low=-1.9e-17, high=-1.9e-17, n=10, std=0.0, degenerate=True)
    assert policies._diff(residue, ".3f") == "+0.000 (every day)"
    small = Interval(mean=-0.0004, low=-0.0012, high=0.0004, n=10, std=0.001)
    assert policies._diff(small, ".3f") == "+0.000 [-0.001, +0.000]"


@pytest.mark.parametrize(
    ("stop", "said"),
    [
        (KeyboardInterrupt(), "no table written"),
        (WrittenThenInterrupted("both files in place written first"), "written first"),
    ],
    ids=["while-the-temporary-files-are-written", "held-back-until-both-are-in-place"],
)
def test_ctrl_c_while_the_table_is_written_is_one_line_and_exit_130(
    policies: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stop: KeyboardInterrupt,
    said: str,
) -> None:
    """Ctrl-C as the files are written (their temporary files, or held back until both are
    renamed into place) was a KeyboardInterrupt traceback; now one line says which."""

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise stop

    monkeypatch.setattr(policies, "write_table_files", interrupted)
    try:
        assert policies.main([*TINY, "--out-dir", str(tmp_path)]) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main")
    err = capsys.readouterr().err  # the progress bar's lines, then what stopped
    last = err.splitlines()[-1]
    assert last.startswith("interrupted") and said in last and "Traceback" not in err, err
    assert not list(tmp_path.iterdir())
