"""``benchmarks/allocation.py``: where its tables go, how its quality tables are computed."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from scipy import stats

from tests.conftest import REPO, benchmark_script

RESULTS = REPO / "benchmarks" / "results"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("allocation.py", "allocation_benchmark") as module:
        yield module


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--quick"], RESULTS / "quick"),  # the documented smoke run keeps the committed tables
        ([], RESULTS),
        (["--quick", "--out-dir", "elsewhere"], Path("elsewhere")),
    ],
)
def test_tables_go_to_the_results_folder_unless_quick(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: Path
) -> None:
    written: list[Path] = []
    monkeypatch.setattr(bench, "online", lambda out_dir, _orders: written.append(out_dir))
    assert bench.main([*args, "--only", "online"]) == 0
    assert written == [expected]


def test_time_limits_mode_is_opt_in_and_names_its_table(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--only time-limits`` runs the time-limit table (not part of the default run)."""
    calls: list[tuple[Path, tuple[int, ...], str]] = []

    def fake(out_dir: Path, *, sizes: tuple[int, ...], name: str) -> None:
        calls.append((out_dir, tuple(sizes), name))

    monkeypatch.setattr(bench, "time_limits", fake)
    for name in ("online", "crowded", "compare", "reference", "scaling"):
        monkeypatch.setattr(bench, name, lambda *a, **k: None)
    assert bench.main([]) == 0
    assert calls == []
    args = ["--only", "time-limits", "--time-limits-name", "before"]
    assert bench.main(args) == 0
    assert calls == [(RESULTS, (1, 30, 300, 2_000), "before")]


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_the_certify_script_refuses_a_bad_number_of_seconds(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``allocation_certify.py --long-solve`` / ``--seconds`` / ``--listing-seconds``: a usage
    error, not a traceback."""
    with benchmark_script("allocation_certify.py", "allocation_certify_script") as module:
        for option in ("--long-solve", "--seconds", "--listing-seconds"):
            with pytest.raises(SystemExit) as info:
                module.main(["--seeds", "28", option, value])
            assert info.value.code == 2
            assert f"argument {option}:" in capsys.readouterr().err


def test_the_certify_script_improves_the_known_bounds_only_where_it_is_better(
    tmp_path: Path,
) -> None:
    with benchmark_script("allocation_certify.py", "allocation_certify_script") as module:
        path = tmp_path / "known.csv"
        known_type = type(module.NOTHING_KNOWN)  # benchmarks.allocation.Known
        module.write_known(path, {7: known_type(100.0, 110.0, "a run", "a run")})
        module.update_known(path, 7, module.Finding("proof", 101.5, 109.0), "a proof, today")
        module.update_known(path, 7, module.Finding("worse", 99.0, 111.0), "another, today")
        module.update_known(path, 9, module.Finding("nothing"), "a proof, today")
        known = module.read_known(path)
    assert known[7] == known_type(
        101.5, 109.0, "a proof, today: proved bound", "a proof, today: an allocation"
    )
    assert 9 not in known  # nothing shown, nothing written


def test_a_ctrl_c_in_the_certify_script_names_the_seeds_finished_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proof runs for hours: Ctrl-C in the second seed's proof was a traceback; now one line
    naming the seeds finished (the first, whose bounds the --known file holds), exit 130."""
    with benchmark_script("allocation_certify.py", "allocation_certify_script") as module:
        runs = tmp_path / "runs.csv"
        runs.write_text("x")
        known = tmp_path / "known.csv"
        answer = type("Answer", (), {"cost": 120.0})()
        monkeypatch.setattr(
            module, "recorded_answers", lambda ap, path, seeds: dict.fromkeys(seeds, answer)
        )

        def certify(seed: int, *args: object) -> object:
            if seed == 5:
                raise KeyboardInterrupt
            return module.Finding(f"seed {seed}: proved", 110.0, 120.0)

        monkeypatch.setattr(module, "certify", certify)
        code = module.main(["--seeds", "4,5,6", "--runs", str(runs), "--known", str(known)])
        kept = module.read_known(known)
    assert code == 130
    captured = capsys.readouterr()
    assert "seed 4: proved" in captured.out and "Traceback" not in captured.err
    assert (
        f"interrupted: seeds finished: 4; {known} updated for: 4; not finished: 5, 6"
        in captured.err
    )
    assert set(kept) == {4} and kept[4].opt_at_least == 110.0


def test_only_names_its_tables_in_help_and_refuses_an_unknown_one(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt ``--only`` ran no table and exited 0; docs/allocation.md sends to --help."""
    for name in ("online", "crowded", "compare", "reference", "scaling", "time_limits"):
        monkeypatch.setattr(bench, name, lambda *a, **k: pytest.fail("a table ran"))
    with pytest.raises(SystemExit) as info:
        bench.main(["--only", "literature,onlin"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --only: unknown table(s): onlin" in err and "time-limits" in err
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    for name in ("literature", "city", "reference", "scaling", "city-seeds", "online"):
        assert name in usage.split("--only ONLY", 1)[1]
    assert "crowded" in usage and "time-limits" in usage


def _holm_by_hand(p: list[float]) -> list[float]:
    """Holm-Bonferroni from the definition: sorted, times m - i, running maximum, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def _runs(bench: ModuleType) -> list[Any]:
    """Four seeds: batch costs 90, 88, 92, 90 against nearest and myopic at 100 and the rule
    chain at 95, 90, 100, 85; split rates and shipments chosen per column below."""
    methods = {
        "batch": {"cost": [90.0, 88.0, 92.0, 90.0], "split": [0.5] * 4, "ships": [2.0] * 4},
        "nearest": {"cost": [100.0] * 4, "split": [0.6] * 4, "ships": [2.5, 2.4, 2.6, 2.5]},
        "rule_chain": {"cost": [95.0, 90.0, 100.0, 85.0], "split": [0.55, 0.45, 0.6, 0.5],
                       "ships": [2.0] * 4},
        "myopic": {"cost": [100.0] * 4, "split": [0.5] * 4, "ships": [2.0] * 4},
    }  # fmt: skip
    return [
        bench.Run(seed, method, v["cost"][seed], v["ships"][seed], v["split"][seed], 0.0, 1.0,
                  1.0, None, None)
        for seed in range(4)
        for method, v in methods.items()
    ]  # fmt: skip


def test_the_paired_table_has_mean_half_width_and_holm_p_worked_by_hand(
    bench: ModuleType,
) -> None:
    """The batch-vs-baselines table compared three baselines with no multiple-comparison
    statement; each column is now a Holm family, and the ± cells come from simulation.stats.

    Cost change (%): nearest and myopic -10, -12, -8, -10 (mean -10, s = 1.633, half-width
    t_{0.975,3} s / 2 = 3.1824 x 0.8165 = 2.598); the rule chain -5.26, -2.22, -8, +5.88
    (mean -2.40, s = 6.005, half-width 9.556). Split rate: -0.1 on every seed against nearest
    (degenerate: the sign test, p = 2 x 0.5^4 = 0.125, marked †), 0 every seed against myopic
    (p = 1, no mark). Shipments: -0.5, -0.4, -0.6, -0.5 against nearest (half-width 0.130).
    A change the same on every seed has a zero-width interval, flagged ``(constant)``.
    """
    runs = _runs(bench)
    by = {(r.seed, r.method): r for r in runs}
    table = bench.paired_table(by, [0, 1, 2, 3])
    rows = [line for line in table.splitlines() if line.startswith("| batch - ")]
    cost = {
        "nearest": [-10.0, -12.0, -8.0, -10.0],
        "rule_chain": [-500 / 95, -200 / 90, -8.0, 500 / 85],  # 100 (batch - rc) / rc
    }
    p_cost = [float(stats.ttest_1samp(cost[m], 0.0).pvalue) for m in ("nearest", "rule_chain")]
    p_cost.append(p_cost[0])  # myopic: the same changes as nearest
    q_cost = _holm_by_hand(p_cost)  # 3 x 0.00117, 0.482, 3 x 0.00117 (tied: max(3p, 2p))
    assert q_cost == pytest.approx([0.0035166, 0.4824179, 0.0035166], abs=1e-6)
    p_split = [0.125, float(stats.ttest_1samp([-0.05, 0.05, -0.1, 0.0], 0.0).pvalue), 1.0]
    q_split = _holm_by_hand(p_split)  # 3 x 0.125 = 0.375, 2 x 0.495 = 0.990, 1
    assert q_split == pytest.approx([0.375, 0.990, 1.0], abs=1e-3)
    assert rows == [
        "| batch - nearest | -10.00 ± 2.60 % | -0.1000 ± 0.0000 (constant) | -0.500 ± 0.130 "
        f"| 4/4 | {q_cost[0]:.3f} / {q_split[0]:.3f} † / 0.004 |",
        "| batch - rule_chain | -2.40 ± 9.56 % | -0.0250 ± 0.1027 | 0.000 ± 0.000 (constant) "
        f"| 3/4 | {q_cost[1]:.3f} / {q_split[1]:.3f} / 1.000 |",
        "| batch - myopic | -10.00 ± 2.60 % | 0.0000 ± 0.0000 (constant) "
        f"| 0.000 ± 0.000 (constant) | 4/4 | {q_cost[2]:.3f} / 1.000 / 1.000 |",
    ]
    assert "over the 3 baselines of that column" in table and "unadjusted" in table


def test_mean_ci_is_the_shared_t_interval_as_mean_and_half_width(bench: ModuleType) -> None:
    def cell(values: list[float], unit: str = "") -> str:
        return str(bench.fmt_ci(bench.shared_mean_ci(values), unit=unit))

    assert cell([10.0, 12.0]) == "11.000 ± 12.706"  # t_{0.975,1} = 12.706
    assert cell([3.0], "%") == "3.000 %"  # one value: no half-width
    assert cell([], "%") == "n/a"
    # the same value on every seed: a zero-width interval, flagged as the twin's tables do
    assert cell([2.0, 2.0, 2.0], "%") == "2.000 ± 0.000 % (constant)"


def test_the_quality_tables_flag_a_metric_constant_over_the_seeds(
    bench: ModuleType, tmp_path: Path
) -> None:
    """A metric the same on every seed (unfilled units 0, VIP on-time share 1, a baseline's
    cost 100) was written ``0.000 ± 0.000``, read as an exact value; it is flagged
    ``(constant)`` and the notes say what that means, as the twin's tables do."""
    from simulation.stats import CONSTANT_NOTE

    runs = _runs(bench)
    params = bench.AllocationParams(time_limit_s=9.5, mip_rel_gap=1e-3)
    rows, notes = bench.quality_tables(runs, [0, 1, 2, 3], params, "setting")
    by_label = {row[0]: row[1:] for row in rows}
    assert by_label["unfilled units"] == ["0.000 ± 0.000 (constant)"] * 4
    assert by_label["VIP on-time share"] == ["1.000 ± 0.000 (constant)"] * 4
    # batch 90, 88, 92, 90 (half-width 2.60); the baselines' costs: 100 on every seed but the
    # rule chain's 95, 90, 100, 85 (s = 6.455, half-width 10.27)
    assert by_label["cost"] == [
        "90.00 ± 2.60",
        "100.00 ± 0.00 (constant)",
        "92.50 ± 10.27",
        "100.00 ± 0.00 (constant)",
    ]
    bench.write_table(tmp_path, "tiny", "Tiny", ["metric", *bench.METHODS], rows, notes)
    md = (tmp_path / "tiny.md").read_text(encoding="utf-8")
    assert "| unfilled units | 0.000 ± 0.000 (constant) |" in md
    assert bench.CONSTANT_SEEDS in md
    assert "every seed gave this same value" in bench.CONSTANT_SEEDS
    assert "another instance may differ" in bench.CONSTANT_SEEDS
    csv_rows = (tmp_path / "tiny.csv").read_text(encoding="utf-8").splitlines()
    assert "unfilled units," + ",".join(["0.000 ± 0.000 (constant)"] * 4) in csv_rows
    # no metric and no change constant (each method's figures scaled by its own factor per
    # seed): no flag, no note
    varied = []
    for r in runs:
        f = 1.0 + 0.1 * r.seed * (1 + bench.METHODS.index(r.method))
        varied.append(bench.Run(r.seed, r.method, r.cost * f, r.shipments_per_order * f,
                                r.split_rate * f, r.seed * f, 1.0 / f, f, None, None))  # fmt: skip
    rows, notes = bench.quality_tables(varied, [0, 1, 2, 3], params, "setting")
    assert all(CONSTANT_NOTE not in str(c) for row in rows for c in row)
    assert bench.CONSTANT_SEEDS not in notes


@pytest.mark.parametrize(
    ("batch", "baseline", "no_dearer"),
    [
        (9168.024629, 9168.024629, True),  # a tie
        (0.1 + 0.2, 0.3, True),  # a tie up to floating-point noise (0.30000000000000004)
        (9168.024628, 9168.024629, True),  # one micro-unit cheaper
        (9168.02463, 9168.024629, False),  # one micro-unit dearer: was counted as no dearer
        (101.0, 100.0, False),
    ],
)
def test_no_dearer_compares_whole_micro_units(
    bench: ModuleType, batch: float, baseline: float, no_dearer: bool
) -> None:
    """Costs are exact to 1e-6 (integer micro-units): ``b <= m + 1e-6`` let one micro-unit
    dearer pass in most cases (9168.02463 <= 9168.024629 + 1e-6 is true in floating point)."""
    assert bench.no_dearer(batch, baseline) is no_dearer


def test_the_win_count_counts_ties_and_not_losses(bench: ModuleType) -> None:
    """``batch <= baseline`` had no test of its own. Five seeds against each baseline:

    nearest: two ties, one win, a loss by one micro-unit and a clear loss -> 3/5;
    rule_chain: every seed a tie -> 5/5; myopic: every seed a loss by one micro-unit -> 0/5.
    """
    base = [9168.024629, 250.5, 1000.0, 42.000001, 77.0]
    batch = [9168.024629, 250.5, 999.999999, 42.000002, 80.0]
    costs = {
        "batch": batch,
        "nearest": base,
        "rule_chain": batch,
        "myopic": [round(c - 1e-6, 6) for c in batch],
    }
    runs = [
        bench.Run(seed, method, cost[seed], 1.0, 0.0, 0.0, 1.0, 1.0, None, None)
        for seed in range(5)
        for method, cost in costs.items()
    ]
    table = bench.paired_table({(r.seed, r.method): r for r in runs}, list(range(5)))
    counts = {
        line.split(" | ")[0].removeprefix("| batch - "): line.split(" | ")[4]
        for line in table.splitlines()
        if line.startswith("| batch - ")
    }
    assert counts == {"nearest": "3/5", "rule_chain": "5/5", "myopic": "0/5"}


def test_a_change_that_cancels_out_is_not_shown_as_minus_zero(bench: ModuleType) -> None:
    """Split rates 0.3, 0.6, 0.1 against 0.4, 0.5, 0.1: the mean change (-1.9e-17 in floating
    point) read "-0.0000 ± 0.2484" in the paired table."""
    change = bench.paired_diff([0.3, 0.6, 0.1], [0.4, 0.5, 0.1])
    assert -1e-15 < change.mean < 0.0
    # half-width t(0.975, 2) x 0.1 / sqrt(3)
    assert bench.fmt(*bench.half_width(change), digits=4) == "0.0000 ± 0.2484"
    assert bench.fmt(-0.0, float("nan"), digits=2) == "0.00"
    assert bench._num(-0.0004, 3) == "0.000"


def _stored_runs(bench: ModuleType, name: str) -> list[Any]:
    """The runs of a stored ``*-runs.csv``."""
    runs = []
    with (RESULTS / f"{name}-runs.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            opt = [None if row[k] in ("", "None") else float(row[k]) for k in ("gap", "bound")]
            runs.append(
                bench.Run(int(row["seed"]), row["method"], float(row["cost"]),
                          float(row["shipments_per_order"]), float(row["split_rate"]),
                          float(row["unfilled_units"]), float(row["vip_on_time"]),
                          float(row["time_s"]), *opt)
            )  # fmt: skip
    return runs


def test_an_answer_is_proven_within_the_gap_by_a_bound_and_proven_out_by_an_allocation(
    bench: ModuleType,
) -> None:
    known = bench.Known(990.0, 999.5, "proof", "long run")
    assert bench.proven(1000.0, 999.0, None, 1e-3) is True  # its own bound
    assert bench.proven(1000.0, 900.0, bench.Known(999.0, 1000.0, "", ""), 1e-3) is True
    assert bench.proven(1001.0, 990.0, known, 1e-3) is False  # 1.5 above a known allocation
    assert bench.proven(1000.0, 990.0, known, 1e-3) is None  # 0.5 above it: unknown
    assert bench.proven(1000.0, None, None, 1e-3) is None
    runs = [
        bench.Run(0, "batch", 1000.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1e-3, 999.0),
        bench.Run(1, "batch", 1001.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.01, 990.0),
        bench.Run(2, "batch", 1000.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.01, 990.0),
        bench.Run(1, "nearest", 5.0, 1.0, 0.0, 0.0, 1.0, 1.0, None, None),
    ]
    line = bench.proven_line(runs, [0, 1, 2], {1: known, 2: known}, 1e-3)
    assert "**1/3** answers proven within 0.1 %" in line
    assert "1 proven more than 0.1 % above it (seed 1)" in line
    assert "1 unknown (seed 2)" in line
    merged = bench.merge_known({1: known}, runs, "today")
    # a baseline's cost is no allocation the table keeps; seed 1's run improves nothing
    assert merged[1] == known
    assert merged[0] == bench.Known(
        999.0, 1000.0, "today: its certified bound", "today: its answer"
    )


def test_the_known_literature_bounds_agree_with_the_stored_runs_and_read_back(
    bench: ModuleType, tmp_path: Path
) -> None:
    """No stored answer lies below a known lower bound, no stored bound above a known
    allocation (the file is of these instances and this cost function), and the file reads
    back as written."""
    known = bench.read_known(RESULTS / bench.KNOWN_FILE)
    assert sorted(known) == list(range(30))
    for r in _stored_runs(bench, "allocation-literature"):
        k = known[r.seed]
        assert k.opt_at_least <= k.opt_at_most
        assert r.cost >= k.opt_at_least - 1e-6
        if r.bound is not None:
            assert r.bound <= k.opt_at_most + 1e-6
    bench.write_known(tmp_path / "known.csv", known)
    assert bench.read_known(tmp_path / "known.csv") == known
    assert bench.read_known(tmp_path / "missing.csv") == {}


@pytest.mark.parametrize("name", ["allocation-literature", "allocation-city"])
def test_the_stored_quality_tables_come_out_the_same_from_their_runs(
    bench: ModuleType, name: str
) -> None:
    """The stored runs CSV fed through the table code gives the stored table's every row: the
    shared intervals change no number, the paired rows only gained their Holm column."""
    runs = _stored_runs(bench, name)
    seeds = sorted({r.seed for r in runs})
    params = bench.AllocationParams(time_limit_s=9.5, mip_rel_gap=1e-3)
    literature = name == "allocation-literature"
    known = bench.read_known(RESULTS / bench.KNOWN_FILE) if literature else None
    rows, notes = bench.quality_tables(runs, seeds, params, "setting", known)
    stored = (RESULTS / f"{name}.md").read_text(encoding="utf-8").splitlines()
    for row in rows:
        assert "| " + " | ".join(str(c) for c in row) + " |" in stored
    paired = [line for line in notes.splitlines() if line.startswith(("| batch - ", "| pair"))]
    assert len(paired) == 4 and all(line in stored for line in paired)
    gap = next(line for line in notes.splitlines() if line.startswith("Batch certified gap"))
    assert gap in stored
    if literature:  # the file holds the run's own bounds and answers: the same verdicts
        line = next(x for x in notes.splitlines() if x.startswith("Against the bounds known"))
        assert line in stored


def test_a_rewritten_table_keeps_its_hand_written_end(bench: ModuleType, tmp_path: Path) -> None:
    """Notes below ``KEPT_BELOW`` survive a re-run; the table and its script notes are new."""
    bench.write_table(tmp_path, "t", "T", ["a"], [[1]], "first run")
    md = tmp_path / "t.md"
    hand = f"{bench.KEPT_BELOW}\n\nEarlier: a run that gave 1."
    md.write_text(md.read_text(encoding="utf-8") + "\n" + hand + "\n", encoding="utf-8")
    bench.write_table(tmp_path, "t", "T", ["a"], [[2]], "second run")
    text = md.read_text(encoding="utf-8")
    assert "second run" in text and "first run" not in text
    assert "| 2 |" in text and "| 1 |" not in text
    assert text.endswith(hand + "\n")
    assert text.index("| 2 |") < text.index(bench.KEPT_BELOW)
    # without the marker the table is written whole, as before
    bench.write_table(tmp_path, "u", "U", ["a"], [[3]], "notes")
    bench.write_table(tmp_path, "u", "U", ["a"], [[4]], "notes")
    assert "| 3 |" not in (tmp_path / "u.md").read_text(encoding="utf-8")


def test_a_table_written_elsewhere_carries_the_stored_tables_hand_written_end(
    bench: ModuleType, tmp_path: Path
) -> None:
    """A table written into a fresh ``--out-dir`` ends with the stored table's notes."""
    bench.write_table(tmp_path, "allocation-online", "T", ["a"], [[1]], "notes")
    text = (tmp_path / "allocation-online.md").read_text(encoding="utf-8")
    stored = bench.kept_text(RESULTS / "allocation-online.md")
    assert stored and text.endswith(stored + "\n")
    # a table the results folder has no notes for is written whole
    bench.write_table(tmp_path, "no-such-table", "T", ["a"], [[1]], "notes")
    assert bench.KEPT_BELOW not in (tmp_path / "no-such-table.md").read_text(encoding="utf-8")


def test_the_stored_tables_with_hand_written_notes_carry_the_marker(bench: ModuleType) -> None:
    """The tables whose earlier runs are noted by hand keep them through a re-run."""
    for name, earlier in (
        ("allocation-online", "Earlier: Run on 2026-12-03 17:20"),
        ("allocation-scaling", "The city rows from 1,000 orders were re-run on 2026-12-02"),
    ):
        kept = bench.kept_text(RESULTS / f"{name}.md")
        assert kept.startswith(bench.KEPT_BELOW) and earlier in kept


def test_the_time_limits_table_keeps_each_note_whole(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The notes cell was cut at 160 characters, mid-note and mid-figure: each note is whole
    (a "|" written "/", as a Markdown row needs), in the CSV and the Markdown table alike."""
    long = (
        "time limit 0.01 s too short for the batch solve (about 0.045 s at 30 orders): "
        "nearest-node answer, not optimised; no shadow prices: no LP duals within its 0.0123 s"
    )
    assert len(long) > 160
    allocate = bench.allocate

    def noted(request: Any, params: Any) -> Any:
        res = allocate(request, params)
        stats = res.stats.model_copy(update={"notes": [*res.stats.notes, long, "a | b"]})
        return res.model_copy(update={"stats": stats})

    monkeypatch.setattr(bench, "allocate", noted)
    bench.time_limits(tmp_path, limits=(1.0,), sizes=(1,), name="cut")
    with (tmp_path / "cut.csv").open(encoding="utf-8") as f:
        cells = [row["notes"] for row in csv.DictReader(f)]
    assert len(cells) == 8  # two families, batch and online, with and without explanations
    assert all(cell.endswith(f"{long}; a / b") for cell in cells)
    table = (tmp_path / "cut.md").read_text(encoding="utf-8")
    assert table.count(f"{long}; a / b |\n") == 8
