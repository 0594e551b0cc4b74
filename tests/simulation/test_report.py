"""The what-if report: tables and significance marks."""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import Scenario
from simulation.evaluate import ReplicationOutcome
from simulation.report import (
    figures,
    html_report,
    markdown_table,
    plots,
    write_csv,
    write_replications_csv,
    write_report,
)
from simulation.result import METRICS
from simulation.sweep import SweepResult


@pytest.fixture(autouse=True)
def _no_figure_left_open() -> Iterator[None]:
    """Every pyplot figure a test made is closed after it: ``figures`` makes both plots, and
    a test looking at one of them left the other open for the rest of the worker's run."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def _sweep(costs: dict[str, list[float]], metric: str = "cost_cents") -> SweepResult:
    """A sweep of one policy whose replications have ``metric`` = ``costs[variant]`` (others 0,
    but one order delivered)."""
    outcomes = [
        ReplicationOutcome(
            case=variant,
            policy="insertion",
            replication=k,
            seed=k,
            # an order delivered each day: the lateness of a day without one is undefined
            metrics={**dict.fromkeys(METRICS, 0.0), "orders_delivered": 1.0, metric: cost},
            base_on_time=np.zeros(0, dtype=bool),
            num_events=0,
            wall_s=0.0,
        )
        for variant, values in costs.items()
        for k, cost in enumerate(values)
    ]
    n = len(costs["base"])
    return SweepResult(
        base="base",
        variants=list(costs),
        policies=["insertion"],
        seeds=list(range(n)),
        seed=0,
        outcomes=outcomes,
    )


def test_no_difference_over_one_replication_is_written_unsigned() -> None:
    """It read ``+0.000 [no CI: n=1]``: a signed zero, as if the variant cost more."""
    one = _sweep({"base": [100.0], "same": [100.0], "dearer": [102.5]})
    table = markdown_table(one, metrics=("cost_cents",))
    same = next(line for line in table.splitlines() if line.startswith("| same "))
    assert "| 0.000 [no CI: n=1] |" in same and "+0" not in same
    dearer = next(line for line in table.splitlines() if line.startswith("| dearer "))
    assert "| +2.500 [no CI: n=1] |" in dearer
    page = html_report(one, {}, title="t")
    assert "Δ 0.000 [no CI: n=1]" in page and "+0.000" not in page


def test_a_difference_is_marked_only_when_its_interval_excludes_zero() -> None:
    three = _sweep({"base": [100.0, 110.0, 120.0], "cheap": [90.0, 99.0, 111.0]})
    assert "▲" in markdown_table(three, metrics=("cost_cents",))
    one = _sweep({"base": [100.0], "cheap": [90.0]})
    table = markdown_table(one, metrics=("cost_cents",))
    assert "-10.0 [no CI: n=1]" in table  # shown, but one replication has no interval or test
    assert "▲" not in table.split("|---|")[-1] and "▼" not in table.split("|---|")[-1]
    assert table.startswith("# What-if comparison (1 replication, seed 0)")  # not "replications"
    # no test to correct: it said "Holm-Bonferroni over 0 comparisons with the base."
    assert "over 0 comparisons" not in table and "No test: no comparison with the base" in table
    undefined = _sweep({"base": [float("nan")] * 3, "v": [float("nan")] * 3}, "on_time_rate")
    assert "No test:" in markdown_table(undefined, metrics=("on_time_rate",))
    assert markdown_table(three).startswith("# What-if comparison (3 replications, seed 0)")


def test_differences_are_in_fixed_notation_like_the_means() -> None:
    # Cost differences were shown as "+2.97e+03 [+2.8e+03, +3.15e+03]" cents.
    sweep = _sweep({"base": [66_000.0, 67_000.0, 68_000.0], "rush": [69_000.0, 70_000.0, 71_500.0]})
    table = markdown_table(sweep, metrics=("cost_cents",))
    assert "| rush | insertion | 70,167 [67,041, 73,292] | +3,167 [+2,450, +3,884] ▼ |" in table
    assert "e+" not in table
    small = _sweep({"base": [0.9, 0.8, 0.85], "late": [0.894, 0.7945, 0.844]}, "on_time_rate")
    assert "| late | insertion | 0.844 [0.721, 0.968] | -0.006 [-0.007, -0.005] ▼ |" in (
        markdown_table(small, metrics=("on_time_rate",))
    )


def test_variant_names_cannot_break_the_markdown_table() -> None:
    # A "|" in a name split its row into extra columns; "<b>" rendered as HTML.
    name = '<b>x</b> & "y" | z\nnext'
    sweep = _sweep({"base": [100.0, 110.0], name: [100.0, 110.0]})
    row = markdown_table(sweep, metrics=("cost_cents",)).splitlines()[-1]
    assert row.startswith('| &lt;b&gt;x&lt;/b&gt; &amp; "y" \\| z next | insertion | 105.0 [')
    assert row.replace("\\|", "").count("|") == 5  # four cells


def test_rate_intervals_stay_between_0_and_1() -> None:
    sweep = _sweep({"base": [1.0, 0.9], "late": [0.8, 0.9]}, metric="on_time_rate")
    rows = sweep.rows(metrics=("on_time_rate",))
    assert [(r["ci_low"] >= 0.0, r["ci_high"]) for r in rows] == [(True, 1.0), (True, 1.0)]


def test_an_undefined_on_time_rate_is_n_a_and_never_significant() -> None:
    # Variant "empty" has no order due in any replication (NaN): no mean, no difference.
    nan = float("nan")
    sweep = _sweep({"base": [0.9, 0.8, 0.85], "empty": [nan, nan, nan]}, metric="on_time_rate")
    row = sweep.rows(metrics=("on_time_rate",))[1]
    assert (row["mean"], row["n"], row["diff"], row["diff_n"]) == (None, 0, None, 0)
    table = markdown_table(sweep, metrics=("on_time_rate",))
    assert "| empty | insertion | n/a | n/a |" in table
    rows_part = table.split("|---|")[-1]
    assert "▲" not in rows_part and "▼" not in rows_part
    # Some replications without orders: the others still count, and pair with the base's.
    some = _sweep({"base": [0.9, 0.8, 0.7], "few": [nan, 0.5, 0.4]}, metric="on_time_rate")
    row = some.rows(metrics=("on_time_rate",))[1]
    assert row["n"] == 2 and row["mean"] == 0.45
    assert row["diff_n"] == 2 and row["diff"] == -0.3
    # ... and the table says that mean is over 2 of the 3 replications.
    assert "| few | insertion | 0.450 [0.000, 1.000] (n=2) | -0.300 [" in markdown_table(
        some, metrics=("on_time_rate",)
    )


def test_plots_of_undefined_values_say_so_not_that_there_was_one_replication() -> None:
    """A variant with no order due (demand x 0) has no on-time rate and no difference of it:
    over 3 replications its differences plot was titled ``(no CI: n=1; colours: Holm)``."""
    nan = float("nan")
    sweep = _sweep({"base": [0.9, 0.8, 0.85], "empty": [nan, nan, nan]}, metric="on_time_rate")
    figs = figures(sweep)
    _cost, on_time = figs["differences.png"].axes
    assert on_time.get_title().endswith("(n/a: undefined in every replication; colours: Holm)")
    assert "n=1" not in on_time.get_title()
    assert all("n=1" not in ax.get_title() for ax in figs["kpis.png"].axes)


def test_the_csv_has_the_rows_of_the_api_with_the_pairs_behind_each_difference(
    tmp_path: Path,
) -> None:
    # diff_n was missing: "n = 3" next to a difference that pairs only 2 replications.
    nan = float("nan")
    sweep = _sweep({"base": [0.9, 0.8, 0.7], "few": [nan, 0.5, 0.4]}, metric="on_time_rate")
    path = tmp_path / "comparison.csv"
    write_csv(sweep, path)
    with path.open(encoding="utf-8") as fh:
        few = [
            r for r in csv.DictReader(fh) if r["variant"] == "few" and r["kpi"] == "on_time_rate"
        ]
    assert (few[0]["n"], few[0]["diff_n"], float(few[0]["diff"])) == ("2", "2", -0.3)


def test_replications_csv_follows_the_table_order_and_leaves_undefined_kpis_empty(
    tmp_path: Path,
) -> None:
    # Rows were sorted by name ("base" after "another") and an undefined rate was "nan".
    nan = float("nan")
    sweep = _sweep({"base": [0.9], "z-late": [0.5], "another": [nan]}, metric="on_time_rate")
    path = tmp_path / "replications.csv"
    write_replications_csv(sweep, path)
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["variant"], r["on_time_rate"]) for r in rows] == [
        ("base", "0.9"),
        ("z-late", "0.5"),
        ("another", ""),
    ]


def test_whatif_rows_with_an_undefined_kpi_validate_as_the_api_schema() -> None:
    from api.schemas.simulations import WhatIfRow

    nan = float("nan")
    sweep = _sweep({"base": [0.9, 0.8], "empty": [nan, nan]}, metric="on_time_rate")
    rows = [WhatIfRow.model_validate(r) for r in sweep.rows(metrics=("on_time_rate",))]
    assert rows[1].model_dump(mode="json")["mean"] is None


def test_plots_have_titles_axis_labels_with_units_and_legends() -> None:
    # The axes had no labels (units only in some titles) and the Δ plot no colour legend.
    import matplotlib.pyplot as plt

    nan = float("nan")
    sweep = _sweep({"base": [0.9, 0.8], "empty": [nan, nan]}, metric="on_time_rate")
    figs = figures(sweep)
    try:
        assert set(figs) == {"kpis.png", "differences.png"}
        for fig in figs.values():
            for ax in fig.axes:
                assert ax.get_title() and ax.get_xlabel()
                assert ax.get_ylabel() or ax.get_yticklabels()  # Δ plots: y is the variants
        kpis, diffs = figs["kpis.png"], figs["differences.png"]
        assert kpis.axes[1].get_ylabel() == "on-time rate (share of orders, 0-1)"
        assert kpis.axes[0].get_ylabel() == "cost (cents)"
        assert len(kpis.legends) == 1 and diffs.legends  # policies: under the panels
        assert [t.get_text() for t in kpis.axes[1].texts] == ["n/a"]  # "empty", not a 0 bar
        assert diffs.axes[1].get_xlabel() == "Δ on-time rate (share of orders, 0-1)"
        assert [t.get_text() for t in diffs.axes[1].get_yticklabels()] == [
            "empty / insertion (n/a)"
        ]
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_plots_of_the_base_alone_are_one_png() -> None:
    images = plots(_sweep({"base": [float("nan")]}, metric="on_time_rate"))
    assert list(images) == ["kpis.png"] and images["kpis.png"][:4] == b"\x89PNG"


class _Page(HTMLParser):
    """Checks a page's tags nest and close, and collects its text and external references."""

    VOID = frozenset({"br", "img", "meta", "link", "hr", "input", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.mismatched: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.external += [v for k, v in attrs if k in ("src", "href") and v and ":" in v]
        self.external = [v for v in self.external if not v.startswith("data:")]
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.mismatched.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_page_is_valid_offline_escaped_and_marks_baseline_and_n_a() -> None:
    nan = float("nan")
    name = '<b>x</b> & "y"'
    sweep = _sweep(
        {"base": [0.9, 0.8, 0.85], name: [0.7, 0.6, 0.65], "empty": [nan, nan, nan]},
        metric="on_time_rate",
    )
    page = html_report(sweep, plots(sweep), title="<script>alert(1)</script>")
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert (parser.open, parser.mismatched, parser.external) == ([], [], [])
    assert "<b>x</b>" not in page and "<script>" not in page
    text = "".join(parser.text)
    assert name in text and "<script>alert(1)</script>" in text  # shown, as text
    assert "base(baseline)" in text  # the base row says it is the baseline
    empty_row = page.split("<tr><th>empty</th>")[1].split("</tr>")[0]
    assert "<td>n/a<br><span class='same'>Δ n/a</span></td>" in empty_row
    assert "▲" not in empty_row and "▼" not in empty_row
    one = _sweep({"base": [0.9], "late": [0.5]}, metric="on_time_rate")
    late_row = html_report(one, {}, title="t").split("<tr><th>late</th>")[1].split("</tr>")[0]
    assert "class='same'>Δ -0.400 [no CI: n=1]<" in late_row  # one replication: no mark


def test_a_utilisation_change_is_shown_but_not_judged() -> None:
    # a fleet cut raised courier utilisation and the report marked it "significantly better"
    busier = _sweep(
        {"base": [0.40, 0.42, 0.44], "fleet-cut": [0.60, 0.63, 0.65]}, "courier_utilisation"
    )
    row = markdown_table(busier, metrics=("courier_utilisation",)).splitlines()[-1]
    assert row.endswith(" ◆ |") and "▲" not in row and "▼" not in row
    page = html_report(busier, {}, title="t")
    cell = page.split("<tr><th>fleet-cut</th>")[1].split("</tr>")[0]
    assert "class='changed'" in cell and "class='better'" not in cell
    dearer = _sweep({"base": [100.0, 110.0, 120.0], "fleet-cut": [130.0, 141.0, 150.0]})
    assert markdown_table(dearer, metrics=("cost_cents",)).splitlines()[-1].endswith(" ▼ |")


def test_a_significant_change_of_a_small_kpi_is_not_shown_as_zero() -> None:
    # picker utilisation 0.0102 -> 0.0105 in every replication, a significant change, read
    # "+0.000 [+0.000, +0.000] ◆": a zero, with an interval that looked constant
    sweep = _sweep(
        {"base": [0.0100, 0.0102, 0.0104], "busier": [0.01034, 0.01055, 0.01075]},
        "node_utilisation",
    )
    row = markdown_table(sweep, metrics=("node_utilisation",)).splitlines()[-1]
    # the differences 0.00034, 0.00035, 0.00035: mean 0.0003467, t(0.975; 2) = 4.303,
    # sd 5.77e-6, half-width 1.43e-5: [0.0003323, 0.0003610], two digits of its width
    assert row.endswith("| +0.000347 [+0.000332, +0.000361] ◆ |"), row
    page = html_report(sweep, {}, title="t")
    assert "+0.000347 [+0.000332, +0.000361]" in page
    # an interval 3 decimals show keeps them
    wide = _sweep({"base": [0.40, 0.42, 0.44], "busier": [0.60, 0.63, 0.65]}, "node_utilisation")
    assert "| busier | insertion | 0.627 [0.564, 0.689] | +0.207 [+0.192, +0.221] ◆ |" in (
        markdown_table(wide, metrics=("node_utilisation",))
    )


def test_matplotlib_keeps_its_config_and_font_cache_in_pytest_temp_dir(
    matplotlib_config_dir: Path,
) -> None:
    """Plotting in the tests made ~/.config/matplotlib and ~/.cache/matplotlib/fontlist-*."""
    import matplotlib

    assert Path(matplotlib.get_configdir()) == matplotlib_config_dir
    assert Path(matplotlib.get_cachedir()) == matplotlib_config_dir


def test_a_difference_over_fewer_pairs_than_replications_says_so() -> None:
    # the base has no order due on day 1: the variant's mean is over 3 days, its Δ over 2
    nan = float("nan")
    sweep = _sweep({"base": [nan, 0.8, 0.7], "few": [0.6, 0.5, 0.4]}, metric="on_time_rate")
    row = sweep.rows(metrics=("on_time_rate",))[1]
    assert (row["n"], row["diff_n"]) == (3, 2)
    table = markdown_table(sweep, metrics=("on_time_rate",))
    line = next(x for x in table.splitlines() if x.startswith("| few |"))
    mean_cell, diff_cell = (c.strip() for c in line.strip("|").split("|")[2:4])
    assert "(n=" not in mean_cell and "(n=2)" in diff_cell


BASE6 = [1_000.0, 1_100.0, 900.0, 1_050.0, 950.0, 1_000.0]
#: per-replication cost changes, each significant alone (paired t p = 0.022, 0.018, 0.027)
SHIFTS = {
    "v1": [-12.0, -27.0, 2.0, -20.0, -15.0, -8.0],
    "v2": [-13.0, -26.0, 1.0, -22.0, -12.0, -9.0],
    "v3": [-10.0, -28.0, 2.0, -21.0, -15.0, -8.0],
}


def test_marks_are_holm_adjusted_over_the_kpis_comparisons() -> None:
    """Three variants each 'significantly cheaper' on its own interval: marked ▲ three times
    before; Holm over the three comparisons (0.018 x 3 > 0.05) marks none. Alone, one is."""
    costs = {"base": BASE6} | {v: [b + s for b, s in zip(BASE6, d, strict=True)]
                               for v, d in SHIFTS.items()}  # fmt: skip
    sweep = _sweep(costs)
    rows = [r for r in sweep.rows(("cost_cents",)) if r["variant"] != "base"]
    assert all(r["diff_high"] < 0 for r in rows)  # every unadjusted interval excludes 0
    raw = [r["p_value"] for r in rows]
    m = 3
    order = sorted(range(m), key=lambda i: raw[i])  # Holm by hand
    hand, best = [0.0] * m, 0.0
    for i, j in enumerate(order):
        best = max(best, min(1.0, (m - i) * raw[j]))
        hand[j] = best
    assert [r["p_adjusted"] for r in rows] == [pytest.approx(h) for h in hand]
    assert all(r["comparisons"] == 3 and not r["significant"] for r in rows)
    table = markdown_table(sweep, metrics=("cost_cents",))
    assert "▲" not in table.split("|---|")[-1]
    assert "Holm-Bonferroni over 3 comparisons" in table
    alone = _sweep({"base": BASE6, "v2": costs["v2"]})
    (row,) = (r for r in alone.rows(("cost_cents",)) if r["variant"] == "v2")
    assert row["significant"] and row["p_adjusted"] == pytest.approx(row["p_value"])
    assert "▲" in markdown_table(alone, metrics=("cost_cents",)).split("|---|")[-1]


@pytest.mark.parametrize(("n", "marked"), [(5, False), (6, True)])
def test_a_constant_difference_is_marked_only_when_the_sign_test_rejects(
    n: int, marked: bool
) -> None:
    """+10 cents on every replication: the zero-width interval was marked ▼ from 2 replications
    on. It is degenerate (†): the sign test decides, p = 2 x 0.5^n, significant from n = 6."""
    base = BASE6[:n]
    sweep = _sweep({"base": base, "dear": [b + 10.0 for b in base]})
    (row,) = (r for r in sweep.rows(("cost_cents",)) if r["variant"] == "dear")
    assert row["degenerate"] and row["diff_low"] == row["diff_high"] == pytest.approx(10.0)
    assert row["p_value"] == pytest.approx(2 * 0.5**n) and row["significant"] is marked
    table = markdown_table(sweep, metrics=("cost_cents",))
    cell = next(line for line in table.splitlines() if line.startswith("| dear |"))
    assert "+10.0 [+10.0, +10.0] (constant) †" in cell and ("▼" in cell) is marked


def test_an_on_time_rate_of_one_every_day_has_the_pooled_orders_exact_interval() -> None:
    """Every replication 1.0 with 40 orders due: the interval was [1.000, 1.000]."""
    sweep = _sweep({"base": [1.0, 1.0, 1.0], "v": [1.0, 1.0, 1.0]}, metric="on_time_rate")
    for o in sweep.outcomes:
        o.metrics["orders_total"] = 40.0
    row = sweep.rows(("on_time_rate",))[0]
    assert row["ci_low"] == pytest.approx(0.025 ** (1 / 120)) and row["ci_high"] == 1.0
    assert row["ci_method"] == "clopper-pearson-orders"
    table = markdown_table(sweep, metrics=("on_time_rate",))
    assert "1.000 [0.970, 1.000] (Clopper-Pearson, orders)" in table  # the cell says so too


def test_the_csv_and_the_api_rows_carry_the_tests(tmp_path: Path) -> None:
    from api.schemas.simulations import WhatIfRow

    costs = {"base": BASE6, "v2": [b + s for b, s in zip(BASE6, SHIFTS["v2"], strict=True)]}
    sweep = _sweep(costs)
    path = tmp_path / "c.csv"
    write_csv(sweep, path)
    with path.open() as fh:
        row = next(
            r for r in csv.DictReader(fh) if r["variant"] == "v2" and r["kpi"] == "cost_cents"
        )
    assert float(row["p_adjusted"]) == pytest.approx(float(row["p_value"]))
    assert (row["significant"], row["degenerate"], row["comparisons"]) == ("True", "False", "1")
    api = WhatIfRow.model_validate(sweep.rows(("cost_cents",))[1])
    assert api.significant and api.comparisons == 1 and api.p_value is not None


def test_a_difference_of_zero_every_time_is_degenerate_but_not_marked() -> None:
    """The same plan or an unaffected KPI: 0 in every replication, p = 1, plainly no change;
    a † on every such cell drowned the ones that matter."""
    sweep = _sweep({"base": BASE6, "same": list(BASE6)})
    (row,) = (r for r in sweep.rows(("cost_cents",)) if r["variant"] == "same")
    assert row["degenerate"] and row["p_value"] == 1.0 and not row["significant"]
    table = markdown_table(sweep, metrics=("cost_cents",))
    line = next(x for x in table.splitlines() if x.startswith("| same |"))
    assert line.endswith("| 0.000 [0.000, 0.000] (constant) |")


def test_the_base_alone_has_no_holm_family_to_report() -> None:
    """No variant compared: "Holm-Bonferroni over 0 comparisons" under each KPI said nothing."""
    table = markdown_table(_sweep({"base": BASE6}), metrics=("cost_cents",))
    assert "over 0 comparisons" not in table and "| base | insertion |" in table


def test_a_difference_that_cancels_out_is_not_shown_as_minus_zero() -> None:
    """On-time 0.3, 0.6, 0.1 against 0.4, 0.5, 0.1: the mean difference -1.9e-17 showed as
    "-0.000" (and the risk of "-0" for whole numbers likewise)."""
    sweep = _sweep({"base": [0.4, 0.5, 0.1], "v": [0.3, 0.6, 0.1]}, metric="on_time_rate")
    (row,) = (r for r in sweep.rows(("on_time_rate",)) if r["variant"] == "v")
    assert row["diff"] is not None and -1e-15 < row["diff"] < 0.0  # floating point
    table = markdown_table(sweep, metrics=("on_time_rate",))
    cell = next(line for line in table.splitlines() if line.startswith("| v |"))
    assert "| +0.000 [" in cell and "-0.000" not in table


@pytest.mark.parametrize("replications", [1, 2])
def test_one_replication_has_no_interval_in_rows_tables_and_plots(replications: int) -> None:
    """n = 1 said ci_method t with a zero-width [mean, mean]: now none, null bounds, no nan."""
    from api.schemas.simulations import WhatIfRow

    sweep = _sweep({"base": [100.0, 120.0][:replications], "cheap": [90.0, 99.0][:replications]})
    rows = sweep.rows(("cost_cents",))
    table = markdown_table(sweep, metrics=("cost_cents",))
    page = html_report(sweep, plots(sweep), title="one")
    for row in rows:
        WhatIfRow.model_validate(row)  # the API's schema takes it
        if replications == 1:
            assert row["ci_method"] == "none"
            assert (row["ci_low"], row["ci_high"], row["diff_low"], row["diff_high"]) == (None,) * 4
        else:
            assert row["ci_method"] == "t" and row["ci_low"] < row["mean"] < row["ci_high"]
            assert row["diff_low"] is not None and row["diff_high"] is not None
    assert ("[no CI: n=1]" in table) == (replications == 1)
    assert ("[no CI: n=1]" in page) == (replications == 1)
    assert "nan" not in table.lower() and "n/a" not in table


@pytest.mark.parametrize("replications", [1, 2])
def test_one_replication_draws_no_error_bar_in_the_plots(replications: int) -> None:
    """n = 1: the bars had zero-length error bars whose caps sat on the mean (a drawn
    [mean, mean] interval) under a "95% CI" title; now no error bar and the title says so."""
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer, ErrorbarContainer

    sweep = _sweep({"base": [100.0, 120.0][:replications], "cheap": [90.0, 99.0][:replications]})
    figs = figures(sweep)
    try:
        # with 2 replications lateness and unserved (0 every time) are constant: no bar either
        flat = {"lateness p95 (s)", "orders unserved"} if replications == 2 else set()
        for ax in figs["kpis.png"].axes:
            bars = [c for c in ax.containers if isinstance(c, BarContainer)]
            assert bars and all(c.errorbar is None for c in bars)
            errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
            if replications == 1:
                assert not errorbars, ax.get_title()
                assert ax.get_title().endswith(": mean (no CI: n=1)")
            elif ax.get_title().split(":")[0] in flat:
                assert not errorbars and ax.get_title().endswith(": mean (constant)")
            else:
                assert errorbars and ax.get_title().endswith(": mean, 95% CI")
        cost, on_time = figs["differences.png"].axes  # on-time: 0 - 0 every time, constant
        assert ("(no CI: n=1;" in cost.get_title()) == (replications == 1)
        assert ("(95% CI;" in cost.get_title()) == (replications == 2)
        assert ("(no CI: n=1;" in on_time.get_title()) == (replications == 1)
        assert ("(constant;" in on_time.get_title()) == (replications == 2)
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_a_kpi_constant_over_the_replications_is_flagged_in_rows_csv_and_tables(
    tmp_path: Path,
) -> None:
    """A KPI with the same value in every replication showed ``90.0 [90.0, 90.0]`` (and 0 as
    ``0.000 [0.000, 0.000]``) with no flag: read as an exact estimate. The rows, the CSV, the
    API rows and the tables say ``constant``."""
    from api.schemas.simulations import WhatIfRow
    from simulation.stats import CONSTANT_EXPLAINED

    sweep = _sweep({"base": [100.0, 110.0, 120.0], "flat": [90.0, 90.0, 90.0]})
    rows = {(r["variant"], r["kpi"]): r for r in sweep.rows(("cost_cents", "orders_failed"))}
    assert rows[("flat", "cost_cents")]["constant"] is True
    assert rows[("base", "cost_cents")]["constant"] is False
    assert rows[("base", "orders_failed")]["constant"] is True  # 0 in every replication
    assert WhatIfRow.model_validate(rows[("flat", "cost_cents")]).constant is True
    table = markdown_table(sweep, metrics=("cost_cents", "orders_failed"))
    lines = table.splitlines()
    assert "| flat | insertion | 90.0 [90.0, 90.0] (constant) |" in "\n".join(lines)
    assert "| base | insertion | 0.000 [0.000, 0.000] (constant) |" in "\n".join(lines)
    base_cost = next(x for x in lines if x.startswith("| base |"))
    assert "(constant)" not in base_cost  # 100, 110, 120 vary
    assert CONSTANT_EXPLAINED in table
    path = tmp_path / "c.csv"
    write_csv(sweep, path)
    with path.open() as fh:
        flags = {(r["variant"], r["kpi"]): r["constant"] for r in csv.DictReader(fh)}
    assert flags[("flat", "cost_cents")] == "True" and flags[("base", "cost_cents")] == "False"
    page = html_report(sweep, {}, title="t")
    assert "90.0 [90.0, 90.0] (constant)" in page


def _error_bar_xs(ax: Any) -> list[float]:
    """The x of every vertical error bar drawn on ``ax`` (one segment per bar)."""
    from matplotlib.container import ErrorbarContainer

    return [
        float(seg[0][0])
        for c in ax.containers
        if isinstance(c, ErrorbarContainer)
        for col in c.lines[2]
        for seg in col.get_segments()
    ]


def test_a_constant_kpi_gets_no_error_bar_in_the_kpis_plot_but_a_constant_note() -> None:
    """90 cents in every replication drew a zero-length error bar with its caps on the mean,
    which reads as an exact estimate: the bar now has no error bar, the word ``constant`` on it
    and the figure a note saying what that means."""
    import matplotlib.pyplot as plt

    from simulation.report import CONSTANT_PLOTTED

    sweep = _sweep({"base": [100.0, 110.0, 120.0], "flat": [90.0, 90.0, 90.0]})
    figs = figures(sweep)
    try:
        fig = figs["kpis.png"]
        cost = fig.axes[0]
        assert _error_bar_xs(cost) == [0.0]  # the base's; none at x = 1 (flat)
        (mark,) = (t for t in cost.texts if t.get_text() == "constant")
        assert mark.get_position() == (1.0, 90.0)
        assert cost.get_title() == "cost (cents): mean, 95% CI"  # the base has one
        unserved = fig.axes[3]  # 0 in every replication of both variants
        assert _error_bar_xs(unserved) == [] and len(unserved.texts) == 2
        assert unserved.get_title() == "orders unserved: mean (constant)"
        assert [t.get_text() for t in fig.texts] == [
            CONSTANT_PLOTTED,
            "3 replications per variant and policy (study seed 0)",  # over the panels
        ]
    finally:
        for f in figs.values():
            plt.close(f)
    varied = _sweep({"base": [100.0, 110.0, 120.0], "v": [90.0, 95.0, 91.0]})
    figs = figures(varied)
    try:
        assert _error_bar_xs(figs["kpis.png"].axes[0]) == [0.0, 1.0]
        assert not figs["kpis.png"].axes[0].texts  # nothing constant: as before
    finally:
        for f in figs.values():
            plt.close(f)


def test_a_constant_difference_gets_no_error_bar_in_the_differences_plot() -> None:
    """+10 cents (and 0) in every replication drew zero-length error bars in the forest plot:
    now points without an interval, each marked ``constant``."""
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer

    from simulation.report import CONSTANT_PLOTTED

    costs = {
        "base": BASE6,
        "same": list(BASE6),
        "dear": [b + 10.0 for b in BASE6],
        "v1": [b + s for b, s in zip(BASE6, SHIFTS["v1"], strict=True)],
    }
    figs = figures(_sweep(costs))
    try:
        fig = figs["differences.png"]
        cost = fig.axes[0]
        points = [c for c in cost.containers if isinstance(c, ErrorbarContainer)]
        assert [c.has_xerr for c in points] == [False, False, True]  # same, dear, v1
        marks = [t for t in cost.texts if t.get_text() == "constant"]
        assert sorted(t.xy[0] for t in marks) == [0.0, 10.0]
        assert "(95% CI;" in cost.get_title()
        assert CONSTANT_PLOTTED in [t.get_text() for t in fig.texts]
    finally:
        for f in figs.values():
            plt.close(f)


def test_the_copies_a_variant_did_not_make_are_noted_in_the_report() -> None:
    """A demand modifier skips copies whose windows would leave the horizon: the sweep carries
    each variant's notes and the table lists them (the API's table_markdown too)."""
    from scenarios import Scenario
    from scenarios.variants import LoadedVariants, Variant, VariantFile
    from simulation.executors import SerialExecutor
    from simulation.sweep import run_sweep

    base = Scenario.model_validate(
        {
            "horizon": {"start_s": 0, "end_s": 20_000},
            "nodes": [{"id": "n1", "location": {"x": 0, "y": 0}}],
            "orders": [
                {
                    "id": f"o{i}",
                    "location": {"x": 10 * i, "y": 0},
                    "created_s": 100 * i,
                    "time_windows": [{"start_s": 15_000, "end_s": 19_000}],
                }
                for i in range(3)
            ],
            "vehicles": [{"id": "v1", "start_location": {"x": 0, "y": 0}}],
        }
    )
    rush = Variant.model_validate(
        {
            "name": "rush",
            "modifiers": [
                {"kind": "demand", "factor": 3.0, "window": {"start_s": 0, "end_s": 19_000}}
            ],
        }
    )
    loaded = LoadedVariants(VariantFile(base="(test)", variants=[rush]), base, None, "test")
    sweep = run_sweep(
        loaded, policies=["nearest"], replications=1, seed=1, executor=SerialExecutor()
    )
    (note,) = sweep.notes["rush"]
    assert note.startswith("variants.0.modifiers.0: ") and " of 6 copies not made: " in note
    assert "base" not in sweep.notes
    table = markdown_table(sweep, metrics=("cost_cents",))
    assert f"- `rush`: {note}" in table
    page = html_report(sweep, {}, title="t")
    assert f"<li><b>rush</b>: {note.replace(chr(39), '&#x27;')}</li>" in page


def test_the_report_says_what_each_variant_changes_in_the_base() -> None:
    """The table and page named the variants (``rain``, ``short-staffed``) but not what
    they were: a planner reading a report of someone else's study could not tell."""
    from scenarios.variants import LoadedVariants, VariantFile
    from simulation.executors import SerialExecutor
    from simulation.sweep import run_sweep

    base = Scenario.model_validate(
        {
            "horizon": {"start_s": 0, "end_s": 20_000},
            "nodes": [{"id": "n1", "location": {"x": 0, "y": 0}}],
            "orders": [{"id": "o1", "location": {"x": 500, "y": 0}}],
            "vehicles": [{"id": f"v{k}", "start_location": {"x": 0, "y": 0}} for k in (1, 2)],
        }
    )
    spec = VariantFile.model_validate(
        {
            "base": "(test)",
            "variants": [
                {"name": "rain <heavy>", "modifiers": [{"kind": "travel_slowdown", "factor": 1.3}]},
                {
                    "name": "short",
                    "modifiers": [
                        {"kind": "fleet", "remove": 1},
                        {
                            "kind": "node_closed",
                            "node_id": "n1",
                            "window": {"start_s": 0, "end_s": 60},
                        },
                    ],
                },
                {"name": "same"},
            ],
        }
    )
    loaded = LoadedVariants(spec, base, None, "test")
    sweep = run_sweep(
        loaded, policies=["nearest"], replications=1, seed=1, executor=SerialExecutor()
    )
    short = "fleet remove 1; node_closed node_id n1, window [0, 60] s"
    assert sweep.changes == {
        "rain <heavy>": "travel_slowdown factor 1.3",
        "short": short,
        "same": "no modifiers (the base again)",
    }
    table = markdown_table(sweep, metrics=("cost_cents",))
    assert (
        f"- `short`: {short}" in table
        and "- `rain &lt;heavy&gt;`: travel_slowdown factor 1.3" in table
    )
    page = html_report(sweep, {}, title="t")
    assert f"<li><b>short</b>: {short}</li>" in page
    assert "<li><b>rain &lt;heavy&gt;</b>: travel_slowdown factor 1.3</li>" in page


def test_a_sweep_rebuilt_from_its_records_gives_the_same_tables_and_page() -> None:
    """The service keeps a what-if job's per-replication KPIs (``sample_records``) and draws
    its report page from them later: the rebuilt sweep has the same rows, table and page."""
    nan = float("nan")
    sweep = _sweep({"base": [0.9, 0.8, nan], "late": [0.7, nan, 0.6]}, metric="on_time_rate")
    sweep.seeds, sweep.seed = [11, 12, 13], 5
    for o in sweep.outcomes:
        o.seed = sweep.seeds[o.replication]
    sweep.notes = {"late": ["variants.0.modifiers.0: 1 of 3 copies not made: outside"]}
    sweep.changes = {"late": "travel_slowdown factor 1.3"}
    records = sweep.sample_records()
    assert (
        records[1]["metrics"]["on_time_rate"] == 0.8
        and records[2]["metrics"]["on_time_rate"] is None
    )
    rebuilt = SweepResult.from_records(
        base="base",
        variants=sweep.variants,
        policies=sweep.policies,
        seed=5,
        records=records,
        notes=sweep.notes,
        changes=sweep.changes,
    )
    assert rebuilt.seeds == [11, 12, 13]
    assert rebuilt.rows(METRICS) == sweep.rows(METRICS)
    assert markdown_table(rebuilt) == markdown_table(sweep)
    assert html_report(rebuilt, {}, title="t") == html_report(sweep, {}, title="t")


@pytest.mark.parametrize("variants", [1, 2, 6])
@pytest.mark.parametrize("constant", [False, True])
def test_the_differences_plot_keeps_titles_inside_and_the_legend_clear_of_the_axes(
    variants: int, constant: bool
) -> None:
    """A short differences plot (few variants) cut its right-hand title at the figure's edge
    and drew the legend over the axis labels."""
    costs = {"base": [100.0, 110.0, 120.0]}
    for i in range(variants):
        costs[f"variant-{i}"] = (
            [100.0 + 5 * i, 110.0, 123.0] if not constant else [107.0, 117.0, 127.0]
        )
    fig = figures(_sweep(costs))["differences.png"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    for ax in fig.axes:
        title = ax.title.get_window_extent(renderer)
        assert page.x0 <= title.x0 and title.x1 <= page.x1 and title.y1 <= page.y1, ax.get_title()
        below = ax.xaxis.label.get_window_extent(renderer)
        assert box.y1 <= below.y0 + 1, (ax.get_xlabel(), box, below)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _tick_labels(axis: Any) -> list[Any]:
    """The drawn tick labels of an axis (those with text, inside its view)."""
    return [t for t in axis.get_ticklabels() if t.get_text() and t.get_visible()]


def test_large_kpis_are_plotted_in_plain_numbers_whose_ticks_do_not_collide() -> None:
    """Costs of millions of cents were drawn as ``1.5`` under a ``1e6`` in the axis corner
    (the unit scale far from its ``cost (cents)`` label); in plain numbers matplotlib's own
    tick count then ran the differences' labels into each other."""
    sweep = _sweep({"base": [60_000.0, 61_000.0, 59_000.0], "x5": [1.5e6, 1.52e6, 1.49e6]})
    figs = figures(sweep)
    for name, axis_of in (("kpis.png", "yaxis"), ("differences.png", "xaxis")):
        fig = figs[name]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        cost = fig.axes[0]
        axis = getattr(cost, axis_of)
        assert axis.get_offset_text().get_text() == "", name
        labels = _tick_labels(axis)
        texts = [t.get_text() for t in labels]
        assert "1,500,000" in texts or "1,000,000" in texts, (name, texts)
        assert all("e" not in t for t in texts), (name, texts)
        for ax in fig.axes:  # the labels of one axis side by side, never on each other
            drawn = _tick_labels(ax.xaxis if name == "differences.png" else ax.yaxis)
            boxes = [t.get_window_extent(renderer) for t in drawn]
            for a, b in itertools.pairwise(boxes):
                assert not a.overlaps(b), (name, ax.get_title(), [t.get_text() for t in drawn])


def _many_variants(variants: int, policies: Sequence[str]) -> SweepResult:
    """A sweep of ``variants`` variants besides the base, every third with a long name, each
    under ``policies``, with KPIs that vary over its 3 replications."""
    names = ["base"] + [
        f"slowdown-{i}-evening-rush-hour-at-st-01" if i % 3 == 0 else f"v{i}"
        for i in range(1, variants + 1)
    ]
    outcomes = [
        ReplicationOutcome(
            case=name,
            policy=policy,
            replication=k,
            seed=k,
            metrics={m: (1 + i + j + k) / (100 if m == "on_time_rate" else 1) for m in METRICS},
            base_on_time=np.zeros(0, dtype=bool),
            num_events=0,
            wall_s=0.0,
        )
        for i, name in enumerate(names)
        for j, policy in enumerate(policies)
        for k in range(3)
    ]
    return SweepResult(
        base="base",
        variants=names,
        policies=list(policies),
        seeds=[0, 1, 2],
        seed=0,
        outcomes=outcomes,
    )


@pytest.mark.parametrize(("variants", "policies"), [(2, 1), (20, 3), (50, 2)])
def test_many_variants_keep_their_names_apart_and_every_label_inside_the_plots(
    variants: int, policies: int
) -> None:
    """20 variants x 3 policies at a fixed 4.2 x 4 inches a KPI panel ran the variants' names
    into each other and into the next panel, and long names in the differences plot pushed
    its right-hand axis label off the figure and squeezed its axes to slivers."""
    sweep = _many_variants(variants, ["insertion", "nearest", "insertion:2"][:policies])
    figs = figures(sweep)
    for name, fig in figs.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        page = fig.bbox
        boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
        for ax, box in zip(fig.axes, boxes, strict=True):
            inside = page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1
            assert inside and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, (name, box)
            assert ax.get_window_extent(renderer).width >= 2.5 * fig.dpi, (name, ax.get_title())
            # each variant's name readable: slanted names a line apart, across their slant
            # (their upright boxes overlap however far apart they are)
            labels = _tick_labels(ax.xaxis)
            if name == "kpis.png" and len(labels) > 1:
                xs = [ax.transData.transform((x, 0.0))[0] for x in ax.get_xticks()]
                pitch = min(b - a for a, b in itertools.pairwise(xs))
                slant = np.sin(np.radians(labels[0].get_rotation()))
                line = renderer.points_to_pixels(labels[0].get_fontsize())
                assert pitch * slant >= line, (ax.get_title(), pitch, slant, line)
        for a, b in itertools.combinations(boxes, 2):  # panels apart, labels and all
            assert not a.overlaps(b), name


def test_constant_labels_stay_inside_their_kpi_plot() -> None:
    """The rotated "constant" label over the tallest bar of a constant KPI ran past the axes
    into the plot's title (orders unserved, the same in every replication)."""
    sweep = _sweep({"base": [9.0, 9.0, 9.0], "rain": [9.0, 9.0, 9.0]}, metric="orders_unserved")
    fig = figures(sweep)["kpis.png"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = 0
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        for text in ax.texts:
            if text.get_text() == "constant":
                labels += 1
                assert text.get_window_extent(renderer).y1 <= frame.y1, ax.get_title()
    assert labels >= 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_zero_of_one_replication_is_written_on_its_empty_bar() -> None:
    """Orders unserved 0 in a one-replication study drew an empty panel: no bar, no label
    (over more replications such a bar says "constant"), as if nothing had been plotted."""
    sweep = _sweep({"base": [0.0], "rain": [3.0]}, metric="orders_unserved")
    fig = figures(sweep)["kpis.png"]
    try:
        panel = next(ax for ax in fig.axes if ax.get_title().startswith("orders unserved"))
        zeros = [t for t in panel.texts if t.get_text() == "0"]
        assert len(zeros) == 1 and zeros[0].get_position() == (0.0, 0.0)
        cost = next(ax for ax in fig.axes if ax.get_title().startswith("cost"))
        assert len([t for t in cost.texts if t.get_text() == "0"]) == 2  # 0 cents, both
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_a_kpi_that_cannot_be_negative_has_no_negative_axis() -> None:
    """Orders unserved 0 in every replication drew its panel from -0.04 to 0.08 orders."""
    sweep = _sweep({"base": [0.0, 0.0, 0.0], "rain": [0.0, 0.0, 0.0]}, metric="orders_unserved")
    fig = figures(sweep)["kpis.png"]
    try:
        for ax in fig.axes:
            low, high = ax.get_ylim()
            assert low == 0.0 and high > 0.0, (ax.get_title(), low, high)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


@settings(max_examples=40, deadline=None)
@given(
    costs=st.lists(
        st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=4),
        min_size=3,
        max_size=3,
    ),
    order=st.randoms(use_true_random=False),
)
def test_a_sweeps_rows_read_its_outcomes_in_any_order_as_one_pass_does(
    costs: list[list[float]], order: Any
) -> None:
    """rows() groups the outcomes once (it scanned every outcome for each value: ~70% of the
    22 KPIs' rows of a 510-pair study); each value is the same as a scan finds, whatever
    order the outcomes came back in (a pool returns them as they finish)."""
    n = min(len(c) for c in costs)
    named = {name: c[:n] for name, c in zip(("base", "v1", "v2"), costs, strict=True)}
    sweep = _sweep(named)
    order.shuffle(sweep.outcomes)
    runs = sweep._runs()
    for variant in sweep.variants:
        scanned = sweep.samples(variant, "insertion", "cost_cents")
        grouped = sweep.samples(variant, "insertion", "cost_cents", runs=runs)
        assert scanned.tolist() == grouped.tolist() == named[variant]
    rows = sweep.rows(("cost_cents",))
    again = SweepResult.from_records(
        base="base",
        variants=sweep.variants,
        policies=sweep.policies,
        seed=0,
        records=sweep.sample_records(),
    ).rows(("cost_cents",))
    assert rows == again


@pytest.mark.parametrize("df", [1, 2, 9, 29, 199])
def test_the_remembered_t_quantile_is_scipys(df: int) -> None:
    from scipy import stats as scipy_stats

    from simulation.stats import t_quantile

    assert t_quantile(0.975, df) == float(scipy_stats.t.ppf(0.975, df))


def _files(folder: Path) -> dict[str, bytes]:
    """The files of ``folder`` by name, with their bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_ctrl_c_while_the_report_is_drawn_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C while the plots were drawn (seconds for a large study, once the progress bar
    had ended) left the new comparison.md and CSVs beside an older study's plots and page in
    the same folder, under ``error: interrupted``, which says nothing was written."""
    import simulation.report as report

    out = tmp_path / "r"
    write_report(_sweep({"base": [1.0, 2.0, 4.0], "old": [3.0, 4.0, 4.0]}), out)
    before = _files(out)

    def interrupted(result: SweepResult) -> dict[str, bytes]:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plots", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(_sweep({"base": [5.0, 6.0, 9.0], "new": [7.0, 8.0, 8.0]}), out)
    assert _files(out) == before


def test_a_ctrl_c_while_the_report_is_written_takes_effect_once_every_file_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C between two of the report's files left it half-written; it now stops the
    command once the last file is in place (a complete report, never a mixed one)."""
    import os
    import signal

    import scenarios.io.together as together

    sweep = _sweep({"base": [5.0, 6.0, 9.0], "new": [7.0, 8.0, 8.0]})
    whole = tmp_path / "whole"
    names = [p.name for p in write_report(sweep, whole)]
    rename_all = together._rename_all
    pressed: list[int] = []

    def ctrl_c_at_the_first(*args: Any) -> None:
        pressed.append(1)
        os.kill(os.getpid(), signal.SIGINT)  # while the files are renamed into place
        rename_all(*args)

    monkeypatch.setattr(together, "_rename_all", ctrl_c_at_the_first)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal
    try:
        out = tmp_path / "r"
        with pytest.raises(KeyboardInterrupt):
            write_report(sweep, out)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert pressed and sorted(_files(out)) == sorted(names)
    for name in ("comparison.md", "comparison.csv", "replications.csv"):
        assert _files(out)[name] == _files(whole)[name], name


def test_the_report_files_are_those_of_the_writers_and_no_older_plot_stays(
    tmp_path: Path,
) -> None:
    """The CSVs are the writers' own text; a study of the base alone, written where a study
    of variants was, left that study's differences.png beside its own page."""
    out = tmp_path / "r"
    sweep = _sweep({"base": [1.0, 2.0, 4.0], "v": [3.0, 4.0, 4.0]})
    written = write_report(sweep, out)
    assert [p.name for p in written] == [
        "comparison.md",
        "comparison.csv",
        "replications.csv",
        "kpis.png",
        "differences.png",
        "report.html",
    ]
    write_csv(sweep, tmp_path / "c.csv")
    write_replications_csv(sweep, tmp_path / "r.csv")
    assert (out / "comparison.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()
    assert (out / "replications.csv").read_bytes() == (tmp_path / "r.csv").read_bytes()
    alone = write_report(_sweep({"base": [1.0, 2.0, 4.0]}), out)
    assert sorted(_files(out)) == sorted(p.name for p in alone)
    assert "differences.png" not in _files(out)


@pytest.mark.parametrize(
    ("variants", "policies", "constant"),
    [
        (2, ["insertion"], False),
        (2, ["insertion"], True),
        (5, ["nearest", "insertion"], True),
        (14, ["insertion", "nearest", "reopt:10:pyvrp:5", "insertion:3:ontime"], False),
    ],
)
def test_the_kpi_plot_keeps_its_policy_legend_clear_of_the_panels(
    variants: int, policies: list[str], constant: bool
) -> None:
    """The policy legend sat in the cost panel at matplotlib's "best" place, which still drew
    it over the base's bar when every variant's bars filled the panel (the service's demo
    study: 3 variants, one policy, costs alike)."""
    outcomes = [
        ReplicationOutcome(
            case=variant,
            policy=policy,
            replication=k,
            seed=k,
            metrics={
                **dict.fromkeys(METRICS, 1.0),
                "cost_cents": 34_000.0 + 100 * i + (0 if constant else 500 * k),
                "orders_unserved": 2.0,
            },
            base_on_time=np.zeros(0, dtype=bool),
            num_events=0,
            wall_s=0.0,
        )
        for i, variant in enumerate(["base", *(f"variant-{i}" for i in range(variants))])
        for policy in policies
        for k in range(3)
    ]
    sweep = SweepResult(
        base="base",
        variants=["base", *(f"variant-{i}" for i in range(variants))],
        policies=policies,
        seeds=[0, 1, 2],
        seed=0,
        outcomes=outcomes,
    )
    fig = figures(sweep)["kpis.png"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == policies
    box = legend.get_window_extent(renderer)
    page = fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0, box
    for ax in fig.axes:  # its bars, tick labels and axis labels
        assert not box.overlaps(ax.get_tightbbox(renderer)), ax.get_title()
    for text in fig.texts:  # the "constant" note
        assert not box.overlaps(text.get_window_extent(renderer)), text.get_text()


@pytest.mark.parametrize("replications", [1, 3])
def test_each_plot_says_how_many_replications_and_that_differences_are_paired(
    replications: int,
) -> None:
    """A PNG on its own (pasted into slides) said neither how many replications its means
    and intervals are of nor that its differences pair the variant with the base on the
    same seeds: the markdown and HTML pages said it, the plots did not."""
    costs = {"base": [100.0, 110.0, 123.0][:replications], "rush": [104.0, 111.0, 130.0]}
    costs["rush"] = costs["rush"][:replications]
    sweep = _sweep(costs)
    sweep.seed = 7
    figs = figures(sweep)
    runs = f"{replications} replication{'' if replications == 1 else 's'}"
    seeds = f"same {replications} replication seed{'' if replications == 1 else 's'}"
    expected = {
        "kpis.png": f"{runs} per variant and policy (study seed 7)",
        "differences.png": f"paired: variant minus base under the same policy and the {seeds} "
        "(study seed 7)",
    }
    for name, fig in figs.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (line,) = [t for t in fig.texts if t.get_text() == expected[name]]
        box = line.get_window_extent(renderer)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, name
        for ax in fig.axes:  # above the panels' titles, not on them
            assert not box.overlaps(ax.get_tightbbox(renderer)), (name, ax.get_title())


def test_the_lateness_of_a_day_that_delivered_nothing_is_undefined_not_zero() -> None:
    """The twin reports a lateness of 0 on a day with no order delivered: a variant that
    closed every node (nothing delivered, on time 0) was marked significantly better (▲) in
    lateness p95 than its base, and drawn as a bar at 0. In a study it is now undefined (n/a,
    not counted in n), as the on-time rate of a day with no order due is."""
    base = [(5000.0, 30.0), (6000.0, 31.0), (5500.0, 29.0), (5800.0, 30.0)]
    variants = {
        "base": base,
        "all-closed": [(0.0, 0.0)] * 4,  # nothing delivered on any day
        "one-bad-day": [(7000.0, 20.0), (0.0, 0.0), (7500.0, 22.0), (7200.0, 21.0)],
    }
    outcomes = [
        ReplicationOutcome(
            case=variant,
            policy="insertion",
            replication=k,
            seed=k,
            metrics={
                **dict.fromkeys(METRICS, 0.0),
                "lateness_p50_s": late / 2,
                "lateness_p95_s": late,
                "orders_delivered": delivered,
            },
            base_on_time=np.zeros(0, dtype=bool),
            num_events=0,
            wall_s=0.0,
        )
        for variant, days in variants.items()
        for k, (late, delivered) in enumerate(days)
    ]
    sweep = SweepResult(
        base="base",
        variants=list(variants),
        policies=["insertion"],
        seeds=[0, 1, 2, 3],
        seed=0,
        outcomes=outcomes,
    )
    rows = {(r["variant"], r["kpi"]): r for r in sweep.rows(METRICS)}
    for kpi in ("lateness_p50_s", "lateness_p95_s"):
        closed = rows[("all-closed", kpi)]
        assert closed["mean"] is None and closed["n"] == 0, closed
        assert closed["diff"] is None and closed["significant"] is False, closed
        bad_day = rows[("one-bad-day", kpi)]
        assert bad_day["n"] == 3 and bad_day["diff_n"] == 3, bad_day
    assert rows[("all-closed", "cost_cents")]["n"] == 4  # the other KPIs as before
    table = markdown_table(sweep, metrics=("lateness_p95_s",))
    closed_line = next(line for line in table.splitlines() if line.startswith("| all-closed "))
    assert closed_line == "| all-closed | insertion | n/a | n/a |"
    assert "▲" not in table.split("|---|")[-1]  # the rows (the preamble explains ▲)
    assert "(n=3)" in next(line for line in table.splitlines() if line.startswith("| one-bad"))
    fig = figures(sweep)["kpis.png"]
    late = next(ax for ax in fig.axes if ax.get_title().startswith("lateness p95"))
    assert [t.get_text() for t in late.texts] == ["n/a"]  # all-closed: no bar at 0


@pytest.mark.parametrize("policies", [["insertion"], ["nearest", "insertion"]])
def test_an_undefined_last_variant_is_marked_inside_the_kpi_panel(policies: list[str]) -> None:
    """The x limits followed the bars drawn: a last variant without any (its on-time rate
    undefined, no order due) put its ``n/a`` on the right-hand spine, half outside the panel,
    and with two policies the second one's wholly outside."""
    nan = float("nan")
    outcomes = [
        ReplicationOutcome(
            case=variant,
            policy=policy,
            replication=k,
            seed=k,
            metrics={**dict.fromkeys(METRICS, 1.0), "on_time_rate": rate},
            base_on_time=np.zeros(0, dtype=bool),
            num_events=0,
            wall_s=0.0,
        )
        for variant, rates in (("base", [0.8, 0.9]), ("v", [0.7, 0.8]), ("empty", [nan, nan]))
        for policy in policies
        for k, rate in enumerate(rates)
    ]
    sweep = SweepResult(
        base="base",
        variants=["base", "v", "empty"],
        policies=policies,
        seeds=[0, 1],
        seed=0,
        outcomes=outcomes,
    )
    fig = figures(sweep)["kpis.png"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    on_time = fig.axes[1]
    marks = [t for t in on_time.texts if t.get_text() == "n/a"]
    assert len(marks) == len(policies)
    panel = on_time.get_window_extent(renderer)
    for mark in marks:
        box = mark.get_window_extent(renderer)
        assert panel.x0 <= box.x0 and box.x1 <= panel.x1, (box, panel)


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(
        st.lists(
            st.tuples(st.floats(0, 1e5, allow_nan=False), st.integers(0, 3)),
            min_size=1,
            max_size=5,
        ),
        min_size=2,
        max_size=2,
    )
)
def test_a_studys_lateness_counts_exactly_the_days_that_delivered(
    days: list[list[tuple[float, int]]],
) -> None:
    """Property: a lateness row's mean and n are those of the days with an order delivered
    (none: null), and its difference pairs the days where both variants delivered; the
    rebuilt sweep of the stored records reads them alike."""
    n = min(len(d) for d in days)
    named = {"base": days[0][:n], "v": days[1][:n]}
    outcomes = [
        ReplicationOutcome(
            case=variant,
            policy="insertion",
            replication=k,
            seed=k,
            metrics={
                **dict.fromkeys(METRICS, 0.0),
                "lateness_p95_s": late,
                "orders_delivered": float(delivered),
            },
            base_on_time=np.zeros(0, dtype=bool),
            num_events=0,
            wall_s=0.0,
        )
        for variant, values in named.items()
        for k, (late, delivered) in enumerate(values)
    ]
    sweep = SweepResult(
        base="base",
        variants=["base", "v"],
        policies=["insertion"],
        seeds=list(range(n)),
        seed=0,
        outcomes=outcomes,
    )
    rebuilt = SweepResult.from_records(
        base="base",
        variants=sweep.variants,
        policies=sweep.policies,
        seed=0,
        records=sweep.sample_records(),
    )
    for study in (sweep, rebuilt):
        rows = {r["variant"]: r for r in study.rows(("lateness_p95_s",))}
        for variant, values in named.items():
            kept = [late for late, delivered in values if delivered > 0]
            assert rows[variant]["n"] == len(kept)
            if kept:
                assert rows[variant]["mean"] == pytest.approx(float(np.mean(kept)), abs=1e-6)
            else:
                assert rows[variant]["mean"] is None
        pairs = sum(1 for a, b in zip(*named.values(), strict=True) if a[1] > 0 and b[1] > 0)
        assert rows["v"]["diff_n"] == pairs
        assert (rows["v"]["diff"] is None) == (pairs == 0)


def test_the_report_says_why_no_comparison_was_made() -> None:
    """One replication (or the base alone) gives no paired test: the page's line listed
    "Comparisons per KPI: cost (cents) 0, on-time rate 0, ..." as if zero-sized corrections
    had been made. It says that no comparison was made, and why; with two replications it
    lists the counts as before."""
    text = " ".join(html_report(_sweep({"base": [1.0], "v": [2.0]}), {}, title="t").split())
    assert "Comparisons per KPI" not in text
    assert (
        "No comparison was made: the study has one replication per variant and policy, and a "
        "paired comparison needs two or more (one pair gives no interval and no test), so "
        "nothing is marked." in text
    )
    alone = " ".join(html_report(_sweep({"base": [1.0, 2.0]}), {}, title="t").split())
    assert "Comparisons per KPI" not in alone
    assert "No comparison was made: the study has the base alone" in alone
    two = " ".join(
        html_report(_sweep({"base": [1.0, 2.0], "v": [2.0, 4.0]}), {}, title="t").split()
    )
    assert "Comparisons per KPI: cost (cents) 1, on-time rate " in two
    assert "No comparison was made" not in two
    nan = float("nan")  # no order due on any day: the on-time rate has no comparison
    quiet = _sweep({"base": [nan, nan], "v": [nan, nan]}, metric="on_time_rate")
    text = " ".join(html_report(quiet, {}, title="t").split())
    assert "Comparisons per KPI: cost (cents) 1, on-time rate none (defined in fewer than " in text
