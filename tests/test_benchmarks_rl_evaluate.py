"""``benchmarks/rl_evaluate.py --from-results``: stored tables re-rendered from their days."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl_agents.evaluate import DayOutcome, report_json, summarise
from tests.conftest import REPO, benchmark_script

RESULTS = REPO / "benchmarks" / "results"
STORED = (
    "rl-evaluation",
    "rl-evaluation-reopt",
    "rl-evaluation-search",
    "rl-evaluation-warm-solve",
)
#: the day each stored page's per-day runs were made
RUNS_OF = {
    "rl-evaluation": "2026-12-07",
    "rl-evaluation-reopt": "2026-12-05",
    "rl-evaluation-search": "2026-12-07",
    "rl-evaluation-warm-solve": "2026-12-05",
}
#: stored pages written by a run of the current ``rl_agents.evaluate`` (not re-rendered)
FRESH = ("rl-evaluation",)
#: stored pages whose CSV has no per-day cap counts (runs from before they were recorded;
#: none since session 58 re-ran the warm-solve table)
NO_CAP_COLUMN: tuple[str, ...] = ()
TODAY = "2030-01-02"
FROM = "--from-results"


@pytest.fixture(scope="module")
def rl_bench() -> Iterator[ModuleType]:
    """``benchmarks/rl_evaluate.py`` imported as a module (nothing runs on import)."""
    with benchmark_script("rl_evaluate.py", "rl_evaluate_rerender") as module:
        yield module


@pytest.fixture
def bench(rl_bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script with today fixed at :data:`TODAY`."""
    monkeypatch.setattr(rl_bench, "_today", lambda: TODAY)
    return rl_bench


def _metrics(cost: float, on_time: float, unserved: float) -> dict[str, float]:
    return {
        "cost_cents": cost,
        "on_time_rate": on_time,
        "orders_unserved": unserved,
        "orders_delivered": 20.0 - unserved,
        "orders_total": 20.0,
        "lateness_cost_cents": cost / 7.0,
    }


@pytest.fixture
def four_days() -> list[DayOutcome]:
    """Greedy, insertion, a model and hindsight on four days: latencies, odd wall times, a day
    with no order due for the model (NaN on-time), no decisions for hindsight."""
    days = []
    rates = {"greedy": 0.7, "insertion": 0.9, "model:m": 0.95, "hindsight": 0.96}
    base = {"greedy": 3000.0, "insertion": 1100.0, "model:m": 900.0, "hindsight": 800.0}
    for policy, cost in base.items():
        for seed in (1, 2, 3, 4):
            rate = math.nan if (policy, seed) == ("model:m", 3) else rates[policy] - 0.01 * seed
            decisions = 0 if policy == "hindsight" else 10 + seed
            latencies = [100.0 + 37.3 * k * seed for k in range(decisions)]
            days.append(
                DayOutcome(
                    policy,
                    seed,
                    _metrics(cost + 31.7 * seed**2 - 3.3 * seed, rate, seed % 3),
                    decisions,
                    latencies,
                    0.123456789 * seed,
                )
            )
    return days


def _live_run(bench: ModuleType, out: Path, outcomes: list[DayOutcome], mp: Any) -> None:
    """``main()`` as a live run that played ``outcomes`` (no day simulated)."""
    mp.setattr(bench, "run_days", lambda *a, **k: outcomes)
    mp.setattr(bench, "standard_scenario", lambda: None)
    mp.setattr(
        sys, "argv", ["rl_evaluate.py", "--workers", "1", "--seeds", "1..4", "--out", str(out)]
    )
    bench.main()


def _rerender(bench: ModuleType, mp: Any, *args: str) -> None:
    mp.setattr(sys, "argv", ["rl_evaluate.py", "--from-results", *args])
    bench.main()


def _without(data: dict[str, Any], keys: tuple[str, ...] = ("rerendered",)) -> str:
    """The JSON report as text with ``keys`` dropped from each summary (NaN compares as text)."""
    return json.dumps({p: {k: v for k, v in s.items() if k not in keys} for p, s in data.items()})


def _table(md: str) -> str:
    """The table and the targets of a result page (what the statistics decide)."""
    return md[md.index("| policy |") :]


def test_a_rerender_from_the_csv_it_wrote_gives_the_live_runs_summaries(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-day CSV and the JSON of a run rebuild every summary exactly, latencies and
    wall times included, and the same table; the page says it is a re-render, of when."""
    _live_run(bench, tmp_path, four_days, monkeypatch)
    live_json = json.loads((tmp_path / "rl-evaluation.json").read_text())
    live_md = (tmp_path / "rl-evaluation.md").read_text()
    assert f"Run on {TODAY} (UTC)" in live_md
    assert _without(live_json) == json.dumps(report_json(summarise(four_days)))
    monkeypatch.setattr(bench, "_today", lambda: "2030-02-03")
    _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    again = json.loads((tmp_path / "rl-evaluation.json").read_text())
    assert _without(again) == _without(live_json)
    md = (tmp_path / "rl-evaluation.md").read_text()
    assert _table(md) == _table(live_md)
    assert md.count("Re-rendered on 2030-02-03 from the stored per-day runs of 2030-01-02") == 1
    assert "**not a fresh run**" in md
    assert live_md.split("\n")[2] in md  # the run's own description is kept
    info = again["model:m"]["rerendered"]
    assert (info["on"], info["runs_of"], info["from"]) == ("2030-02-03", TODAY, "rl-evaluation.csv")
    assert info["restored_from_json"] == ["latency_p50_ms", "latency_p99_ms", "wall_s_per_day"]
    assert info["not_recovered"] == {}


def test_a_second_rerender_keeps_the_date_and_description_of_the_runs(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _live_run(bench, tmp_path, four_days, monkeypatch)
    _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    first = (tmp_path / "rl-evaluation.md").read_text()
    _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    assert (tmp_path / "rl-evaluation.md").read_text() == first
    assert first.count("> Re-rendered") == 1


def test_without_the_json_the_latencies_are_said_to_be_unknown_not_invented(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _live_run(bench, tmp_path, four_days, monkeypatch)
    live = json.loads((tmp_path / "rl-evaluation.json").read_text())
    (tmp_path / "rl-evaluation.json").unlink()
    for _ in range(2):  # and the re-rendered JSON does not make them known
        _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
        md = (tmp_path / "rl-evaluation.md").read_text()
        data = json.loads((tmp_path / "rl-evaluation.json").read_text())
        rows = {r.split(" | ")[0][2:]: r for r in md.splitlines() if r.startswith("| ")}
        for policy in ("greedy", "insertion", "model:m"):
            assert rows[policy].endswith(" | not stored |")
            assert data[policy]["latency_p50_ms"] is None
            assert set(data[policy]["rerendered"]["not_recovered"]) == {
                "latency_p50_ms",
                "latency_p99_ms",
                "wall_s_per_day",
            }
        assert rows["hindsight"].endswith(" | - |")  # no decisions: no latencies to lose
        assert "Not recoverable from the stored files: the decision latencies of greedy, " in md
        keys = ("rerendered", "latency_p50_ms", "latency_p99_ms", "wall_s_per_day")
        assert _without(data, keys) == _without(live, keys)


def test_a_csv_without_orders_due_says_what_depends_on_them(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older CSVs have no ``orders_total``: a rate at 1 every day then gets the days' interval."""
    lines = ["policy,seed,cost_cents,on_time_rate,orders_unserved,decisions,wall_s"]
    lines += [f"greedy,{s},{100 + s},1.0,0.0,3,0.1" for s in (1, 2, 3)]
    lines += [f"slots,{s},{90 + s * s},0.8,1.0,3,0.1" for s in (1, 2, 3)]
    (tmp_path / "old.csv").write_text("\n".join(lines) + "\n")
    _rerender(bench, monkeypatch, "old", "--out", str(tmp_path))
    md = (tmp_path / "old.md").read_text()
    assert "has no orders due per day (`orders_total`)" in md
    assert "for greedy the interval is therefore over the days (`clopper-pearson-days`)" in md
    assert "an unrecorded date" in md and "`old.md` is missing" in md
    data = json.loads((tmp_path / "old.json").read_text())
    assert data["greedy"]["on_time_ci_method"] == "clopper-pearson-days"


def test_the_runs_date_comes_from_git_when_the_table_gives_none(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored tables of 2026-12-01 say no date: the CSV's last commit gives it."""
    _live_run(bench, tmp_path, four_days, monkeypatch)
    md = tmp_path / "rl-evaluation.md"
    md.write_text(md.read_text().replace(f"Run on {TODAY} (UTC), w", "W"))
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    env = {"GIT_COMMITTER_DATE": "2026-12-01T10:00:00+00:00", "PATH": "/usr/bin:/bin"}
    for step in (["init", "-q"], ["add", "rl-evaluation.csv"], ["commit", "-q", "-m", "runs"]):
        subprocess.run([*git, *step], check=True, env=env, capture_output=True)
    _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    assert (
        "from the stored per-day runs of 2026-12-01 (the date of the last commit of "
        "`rl-evaluation.csv`; the stored table gives none)" in md.read_text()
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nosuch"], "no stored results"),
        (["rl-evaluation", "--out", "/nonexistent/results"], "no folder /nonexistent/results"),
        (["rl-evaluation.csv"], "no stored results"),
        (["../results/rl-evaluation"], "not a path"),
        (["rl-evaluation", "--seeds", "1..3"], "--seeds: not used with --from-results"),
        (["rl-evaluation", "--policies", "greedy"], "--policies: not used with --from-results"),
        (["broken"], "broken.csv line 3: cost_cents 'lots' is not a number"),
        (["other-run"], "other-run.json is not the run of the CSV: greedy's day costs differ"),
    ],
)
def test_bad_from_results_values_exit_2_naming_the_option(
    bench: ModuleType,
    four_days: list[DayOutcome],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    says: str,
) -> None:
    _live_run(bench, tmp_path, four_days, monkeypatch)
    lines = (tmp_path / "rl-evaluation.csv").read_text().splitlines()
    cells = lines[2].split(",")  # greedy, day 2
    lines[2] = ",".join([*cells[:2], "lots", *cells[3:]])
    (tmp_path / "broken.csv").write_text("\n".join(lines) + "\n")
    shutil.copy(tmp_path / "rl-evaluation.csv", tmp_path / "other-run.csv")
    other = json.loads((tmp_path / "rl-evaluation.json").read_text())
    other["greedy"]["costs"]["1"] += 1.0
    (tmp_path / "other-run.json").write_text(json.dumps(other))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as end:
        monkeypatch.setattr(sys, "argv", ["rl_evaluate.py", "--out", str(tmp_path), FROM, *args])
        bench.main()
    assert end.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("rl_evaluate.py: error: --")
    if "no stored results" in says:  # the names it does have
        assert "rl-evaluation, " in err or err.rstrip().endswith("rl-evaluation")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written


@settings(max_examples=30, deadline=None)
@given(
    days=st.lists(
        st.tuples(
            st.sampled_from(["greedy", "slots", "hindsight"]),
            st.integers(1, 6),
            st.floats(0.0, 1e7, allow_nan=False),
            st.one_of(st.floats(0.0, 1.0), st.just(math.nan)),
            st.integers(0, 9),
            st.integers(0, 300),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda d: (d[0], d[1]),
    )
)
def test_the_per_day_csv_round_trips_every_summary_it_can_carry(
    rl_bench: ModuleType, days: list[tuple[str, int, float, float, int, int]]
) -> None:
    """Read back, the CSV gives the same summaries (all but latencies and exact wall times)."""
    import tempfile

    outcomes = [
        DayOutcome(p, s, _metrics(c, r, u), n, [1.0] * n, 0.01) for p, s, c, r, u, n in days
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "days.csv"
        rl_bench.write_csv(path, outcomes)
        back = rl_bench.read_csv(path)
    assert [(o.policy, o.seed, o.num_decisions) for o in back] == [
        (o.policy, o.seed, o.num_decisions) for o in outcomes
    ]
    skip = ("latency_p50_ms", "latency_p99_ms")
    assert _without(report_json(summarise(back)), skip) == _without(
        report_json(summarise(outcomes)), skip
    )


def test_a_run_without_greedy_writes_its_table_without_the_targets(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The targets are checked against greedy: a run without it ended in a KeyError after
    every day had been played, and wrote no table."""
    _live_run(bench, tmp_path, [d for d in four_days if d.policy != "greedy"], monkeypatch)
    md = (tmp_path / "rl-evaluation.md").read_text()
    assert "| model:m | 4 |" in md and "Targets for" not in md


@pytest.mark.parametrize("name", STORED)
def test_the_stored_tables_are_what_their_per_day_runs_give_now(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A committed table re-rendered from its own CSV and JSON comes out the same; one that
    was re-rendered (an older ``rl_agents.evaluate`` wrote its columns) says so and of which
    day's runs, a fresh run gives that day as the day it was made."""
    for suffix in (".csv", ".json", ".md"):
        shutil.copy(RESULTS / f"{name}{suffix}", tmp_path)
    stored = (RESULTS / f"{name}.md").read_text()
    _rerender(bench, monkeypatch, name, "--out", str(tmp_path))
    assert _table((tmp_path / f"{name}.md").read_text()) == _table(stored)
    if name in FRESH:
        assert "> Re-rendered on " not in stored
        assert f"\nMade {RUNS_OF[name]} " in stored
    else:
        assert "> Re-rendered on " in stored
        assert f"from the stored per-day runs of {RUNS_OF[name]}" in stored
    fresh = json.loads((tmp_path / f"{name}.json").read_text())
    assert _without(fresh) == _without(json.loads((RESULTS / f"{name}.json").read_text()))


@pytest.mark.parametrize("name", STORED)
def test_a_stored_pages_hindsight_cap_count_says_where_it_comes_from(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A re-render gives the stored page's cap count again, recomputed from a CSV that has
    per-day cap counts, else carried over from the original run and said to be (it copied
    the count into its description without saying it was not recomputed)."""
    for suffix in (".csv", ".json", ".md"):
        shutil.copy(RESULTS / f"{name}{suffix}", tmp_path)
    stored = bench._CAPPED.search((RESULTS / f"{name}.md").read_text())
    assert stored is not None
    _rerender(bench, monkeypatch, name, "--out", str(tmp_path))
    md = (tmp_path / f"{name}.md").read_text()
    said = f"{stored.group(1)} of {stored.group(2)}"
    info = json.loads((tmp_path / f"{name}.json").read_text())["hindsight"]["rerendered"]
    if name in NO_CAP_COLUMN:
        assert (
            f"stopped by the wall-clock safety cap ({said}, in the description below) is "
            f"carried over from the original run, not recomputed: `{name}.csv` does not "
            "record it per day"
        ) in md
        assert stored.group(0) in md  # the same count as stored
        assert info["hindsight_cap_count"]["source"].startswith("carried over")
    else:
        assert f"({said}) is recomputed from `{name}.csv`" in md
        assert info["hindsight_cap_count"]["source"] == f"recomputed from {name}.csv"
    assert (info["hindsight_cap_count"]["capped"], info["hindsight_cap_count"]["runs"]) == (
        int(stored.group(1)),
        int(stored.group(2)),
    )


def _with_cap_flags(days: list[DayOutcome]) -> list[DayOutcome]:
    """``days`` with iteration-budget runs on each hindsight day: two solver runs (two
    repairs each) and a search; day 2's search and day 4's shift run hit the safety cap."""
    for out in days:
        if out.policy == "hindsight":
            out.detail = {
                "runs": [
                    *(
                        {
                            "pricing": p,
                            "run": 0,
                            "repair": r,
                            "capped": (out.seed, p) == (4, "shift"),
                        }
                        for p in ("shift", "duration")
                        for r in ("slots", "insertion")
                    ),
                    {"pricing": "search", "run": 0, "repair": "-", "capped": out.seed == 2},
                ]
            }
    return days


def test_a_rerender_recomputes_the_cap_count_from_the_csv_and_corrects_it(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a CSV that records the per-day cap counts, the count is recomputed: the same as the
    live run's; and when the CSV's days say otherwise, the page follows the CSV and says so."""
    _live_run(bench, tmp_path, _with_cap_flags(four_days), monkeypatch)
    live = (tmp_path / "rl-evaluation.md").read_text()
    sentence = "Iteration budgets: 2 of 12 solver runs and searches were stopped"
    assert sentence in live
    _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    md = (tmp_path / "rl-evaluation.md").read_text()
    assert sentence in md and "cap (2 of 12) is recomputed from `rl-evaluation.csv`." in md
    assert "carried over" not in md and "original description said" not in md
    info = json.loads((tmp_path / "rl-evaluation.json").read_text())["hindsight"]["rerendered"]
    assert info["hindsight_cap_count"] == {
        "runs": 12,
        "capped": 2,
        "source": "recomputed from rl-evaluation.csv",
    }
    # a CSV whose days differ from the description: hindsight day 1 capped 2 of its 3 runs
    lines = (tmp_path / "rl-evaluation.csv").read_text().splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("hindsight,1,"))
    assert lines[at].endswith(",3,0")
    lines[at] = lines[at][: -len("3,0")] + "3,2"
    (tmp_path / "rl-evaluation.csv").write_text("\n".join(lines) + "\n")
    _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    md = (tmp_path / "rl-evaluation.md").read_text()
    assert "Iteration budgets: 4 of 12 solver runs and searches were stopped" in md
    assert sentence not in md
    assert "(4 of 12) is recomputed from `rl-evaluation.csv`; the original description " in md
    assert "said 2 of 12 (corrected below)." in md


@pytest.mark.parametrize(("cells", "says"), [("3,x", "must be whole numbers"), ("2,3", "3 of 2")])
def test_a_bad_cap_count_in_the_csv_exits_2_naming_the_line(
    bench: ModuleType,
    four_days: list[DayOutcome],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cells: str,
    says: str,
) -> None:
    _live_run(bench, tmp_path, _with_cap_flags(four_days), monkeypatch)
    lines = (tmp_path / "rl-evaluation.csv").read_text().splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("hindsight,1,"))
    lines[at] = lines[at][: -len("3,0")] + cells
    (tmp_path / "rl-evaluation.csv").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as end:
        _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    assert end.value.code == 2
    err = capsys.readouterr().err
    assert f"--from-results: rl-evaluation.csv line {at + 1}: " in err and says in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "0"], "--workers: must be at least 1"),
        (["--workers", "-3"], "--workers: must be at least 1"),
        (["--workers", "100000"], "--workers: at most"),
        (["--workers", "two"], "--workers: expected a whole number"),
        (["--hindsight-warm-start", "nope"], "--hindsight-warm-start: unknown policy 'nope'"),
    ],
)
def test_bad_run_options_exit_2_before_any_day_is_played(
    rl_bench: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    says: str,
) -> None:
    """--workers 0 or -3 ran serially without a word, and 100000 sized the process pool to
    every policy-day (1,200 processes for the default run); the warm start's error carried
    pydantic's 'Value error, ' prefix."""

    def must_not_run(*_args: object, **_kw: object) -> None:
        raise AssertionError("a day was played")

    monkeypatch.setattr(rl_bench, "run_days", must_not_run)
    monkeypatch.setattr(
        sys,
        "argv",
        ["rl_evaluate.py", "--policies", "greedy", "--seeds", "1", "--out", str(tmp_path), *args],
    )
    capsys.readouterr()
    with pytest.raises(SystemExit) as end:
        rl_bench.main()
    assert end.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and "Value error" not in err, err


def test_a_run_without_the_reference_does_not_describe_it(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of online policies only described the hindsight reference's budgets in its
    preamble ("Hindsight = per day, the best of offline PyVRP runs ..."), as if it had run."""
    _live_run(bench, tmp_path, [d for d in four_days if d.policy != "hindsight"], monkeypatch)
    md = (tmp_path / "rl-evaluation.md").read_text()
    assert "| greedy | 4 |" in md and "Hindsight = " not in md and "PyVRP" not in md
    _live_run(bench, tmp_path, four_days, monkeypatch)  # with it, it is described
    assert "Hindsight = per day" in (tmp_path / "rl-evaluation.md").read_text()


def test_a_run_says_where_it_was_made_and_a_rerender_keeps_that(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page of a run gave neither its code nor its machine (every other benchmark table
    carries ``measures.provenance()``); a re-render keeps the run's line as part of its
    description and adds none (the same day's re-render still writes the same bytes)."""
    from tests.test_benchmarks_arguments import MADE

    _live_run(bench, tmp_path, four_days, monkeypatch)
    live = (tmp_path / "rl-evaluation.md").read_text()
    made = MADE.search(live)
    assert made is not None, live
    assert live.index(made.group(0)) < live.index("| policy |")
    _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    first = (tmp_path / "rl-evaluation.md").read_text()
    assert [m.group(0) for m in MADE.finditer(first)] == [made.group(0)]
    _rerender(bench, monkeypatch, "rl-evaluation", "--out", str(tmp_path))
    assert (tmp_path / "rl-evaluation.md").read_text() == first


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ("telepathy", "error: --policies: unknown policy 'telepathy'"),
        ("model:", "error: --policies: model:: nothing after ':'"),
        ("model:{bad}", "error: {bad}: --policies: is not a zip file"),
    ],
)
def test_a_bad_policy_exits_2_naming_the_option(
    rl_bench: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    policy: str,
    says: str,
) -> None:
    """It named the library's arguments (``policies: ...``, ``FILE: model: ...``)."""
    bad = tmp_path / "m.zip"
    bad.write_text("hello")
    spec = policy.format(bad=bad)
    argv = ["rl_evaluate.py", "--policies", spec, "--seeds", "1", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as end:
        rl_bench.main()
    assert end.value.code == 2
    err = capsys.readouterr().err
    assert says.format(bad=bad) in err and "Traceback" not in err, err


def test_the_reference_may_be_played_on_some_of_the_days_only(
    bench: ModuleType, four_days: list[DayOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--hindsight-seeds``: the reference (the run's long part, ~4 min a day on a busy
    machine) on some of the days, the online policies on all; the page says so, and its
    ratios to the reference are over the days both played."""
    calls: list[tuple[list[str], list[int]]] = []

    def played(_scenario: object, specs: list[str], seeds: list[int], **_kw: object) -> list:
        calls.append((list(specs), list(seeds)))
        return [d for d in four_days if d.policy in specs and d.seed in seeds]

    monkeypatch.setattr(bench, "run_days", played)
    monkeypatch.setattr(bench, "standard_scenario", lambda: None)
    argv = ["rl_evaluate.py", "--workers", "1", "--seeds", "1..4", "--out", str(tmp_path)]
    policies = "greedy,insertion,model:m,hindsight"
    monkeypatch.setattr(sys, "argv", [*argv, "--policies", policies, "--hindsight-seeds", "1,2"])
    bench.main()
    assert calls == [(["hindsight"], [1, 2]), (["greedy", "insertion", "model:m"], [1, 2, 3, 4])]
    md = (tmp_path / "rl-evaluation.md").read_text()
    assert "day seeds 1..4; the hindsight reference on day seeds 1,2 only" in md
    assert "| hindsight | 2 |" in md and "| greedy | 4 |" in md
    assert md.index("| greedy |") < md.index("| hindsight |")  # in the order of --policies
    assert "| 1.114 [1.069, 1.344] (n=2) |" in md  # model:m's cost / hindsight, days 1-2
    data = json.loads((tmp_path / "rl-evaluation.json").read_text())
    assert data["model:m"]["cost_vs_hindsight"] == pytest.approx(
        sum(d.metrics["cost_cents"] for d in four_days if d.policy == "model:m" and d.seed <= 2)
        / sum(d.metrics["cost_cents"] for d in four_days if d.policy == "hindsight" and d.seed <= 2)
    )
    # without it: one run of every policy on every day
    calls.clear()
    monkeypatch.setattr(sys, "argv", [*argv, "--policies", policies])
    bench.main()
    assert calls == [(policies.split(","), [1, 2, 3, 4])]
    # a reference day that the others do not play is an input error
    monkeypatch.setattr(sys, "argv", [*argv, "--policies", policies, "--hindsight-seeds", "5"])
    with pytest.raises(SystemExit) as end:
        bench.main()
    assert end.value.code == 2


def test_a_skipped_cache_row_is_one_warning_line_of_the_benchmark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hindsight cache's last row cut short is skipped with a warning: the benchmark
    showed it in Python's format (``.../evaluate.py:123: CacheRowSkipped: ...`` and a line of
    source); it is one ``warning:`` line, as ``dispatchlab evaluate`` says it."""
    from benchmarks.measures import run_script
    from rl_agents.evaluate import _append_cache, _read_cache

    cache = tmp_path / "rl-hindsight-days.jsonl"
    for seed in (1, 2):
        _append_cache(cache, "k", DayOutcome("hindsight", seed, {"cost": 1.0}, 0, [], 0.5))
    cache.write_bytes(cache.read_bytes()[:-25])  # the second row's append stopped by a crash
    read: list[object] = []

    def main() -> int:
        read.extend(_read_cache(cache, "k"))
        return 0

    assert run_script(main) == 0
    assert read == [("hindsight", 1)]
    assert capsys.readouterr().err == (
        f"warning: --hindsight-cache: line 2: a row cut short (no line end: the run appending "
        f"it was stopped) in {cache}, skipped; the next day appended takes its place\n"
    )
