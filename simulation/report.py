"""Planner-facing output of a what-if sweep: markdown and CSV tables, PNG plots, an HTML page."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scenarios.files import naming_written
from scenarios.io.csv_text import csv_text, dict_csv_text
from simulation.result import MARKS, METRICS, direction, kpi_bounds
from simulation.stats import (
    CONSTANT_EXPLAINED,
    CONSTANT_NOTE,
    NO_INTERVAL,
    degenerate_mark,
    fewer_note,
    fmt_num,
    method_note,
    zero_difference,
)
from simulation.sweep import TABLE_METRICS, SweepResult

LABELS: dict[str, str] = {
    "cost_cents": "cost (cents)",
    "on_time_rate": "on-time rate",
    "lateness_p50_s": "lateness p50 (s)",
    "lateness_p95_s": "lateness p95 (s)",
    "distance_m": "distance (m)",
    "courier_hours": "courier hours",
    "courier_utilisation": "courier utilisation",
    "node_utilisation": "picker utilisation",
    "orders_unfilled": "orders unfilled",
    "orders_failed": "orders failed",
    "orders_unserved": "orders unserved",
}


def _fmt(x: float | None, *, signed: bool = False, places: int = 3) -> str:
    """A number in fixed notation with thousands separators (never 1.23e+04); n/a if undefined.

    ``places``: decimals below 10 (3; more for a narrow interval, see :func:`_places`).
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    sign = "+" if signed else ""
    if abs(x) >= 1000:
        return fmt_num(x, f"{sign},.0f")
    if abs(x) >= 10:
        return fmt_num(x, f"{sign}.1f")
    return fmt_num(x, f"{sign}.{places}f")  # a zero is never "-0.000"


#: The most decimals a table shows (a width below 1e-8 is shown at 3, as a point).
MAX_PLACES = 8


def _places(low: float, high: float) -> int:
    """Decimals for an interval: 3, or, when 3 cannot show its width (below 0.001), enough to
    show that width to two significant digits.

    A significant change of a small KPI (picker utilisation 0.0103 -> 0.0106) read
    ``+0.000 [+0.000, +0.000] ◆`` at three decimals: a zero, and an interval that looked
    constant.
    """
    width = high - low
    if not 1e-8 < width < 0.001:  # NaN too
        return 3
    return min(MAX_PLACES, 1 - math.floor(math.log10(width)))


def _with_interval(x: float | None, low: float, high: float, *, signed: bool = False) -> str:
    """``x [low, high]``, all three to the decimals the interval's width needs."""
    k = _places(low, high)
    return (
        f"{_fmt(x, signed=signed, places=k)} "
        f"[{_fmt(low, signed=signed, places=k)}, {_fmt(high, signed=signed, places=k)}]"
    )


def _cell(row: dict[str, Any], replications: int) -> str:
    """Mean [95% CI]; with ``(n=k)`` when only k of the replications define the KPI."""
    if row["mean"] is None:  # undefined in every replication (on-time rate: no order due)
        return "n/a"
    if row["ci_low"] is None or row["ci_high"] is None:  # one replication: no interval
        return f"{_fmt(row['mean'])} {NO_INTERVAL}"
    n = fewer_note(row["n"], replications)
    how = method_note(row.get("ci_method"))
    flat = CONSTANT_NOTE if row.get("constant") else ""
    return f"{_with_interval(row['mean'], row['ci_low'], row['ci_high'])}{how}{flat}{n}"


def _significant(row: dict[str, Any]) -> bool:
    """The Holm-adjusted decision of the row's paired test (never on one pair or undefined).

    A row without the test's fields (made by hand) falls back to the unadjusted interval.
    """
    if row["diff"] is None or row.get("diff_n", row["n"]) < 2:
        return False
    if "significant" in row:
        return bool(row["significant"])
    return bool(row["diff_low"] > 0 or row["diff_high"] < 0)


def _diff_cell(row: dict[str, Any], replications: int) -> str:
    """Δ [95% CI] with its mark; with ``(n=k)`` when only k pairs define the difference."""
    d, lo, hi = row["diff"], row["diff_low"], row["diff_high"]
    if d is None:
        return "n/a"
    sig = _significant(row)
    mark = ""
    if sig:
        mark = " " + MARKS[_direction(row["kpi"], d)]
    if lo is None or hi is None:  # one pair: no interval, no test; no difference unsigned
        return f"{_fmt(d, signed=not zero_difference(d))} {NO_INTERVAL}"
    n = fewer_note(row.get("diff_n", replications), replications)
    constant = bool(row.get("degenerate"))  # every pair the same difference: zero width
    if constant and zero_difference(d):  # plainly no difference: 0, not +0 [+0, +0]
        shown = f"{_fmt(0.0)} [{_fmt(0.0)}, {_fmt(0.0)}]"
    else:
        shown = _with_interval(d, lo, hi, signed=True)
    flat = (CONSTANT_NOTE if constant else "") + degenerate_mark(constant, row.get("p_value"))
    return f"{shown}{flat}{n}{mark}"


#: How the marks are decided, for the tables' preambles (one sentence each).
MARKS_NOTE = (
    "Marks are Holm-Bonferroni adjusted per KPI over that KPI's comparisons with the base "
    "(every other variant under every policy; the count is under each KPI), at 5%; the "
    "intervals are not adjusted (each is a 95% interval on its own). † every replication "
    "differed by the same non-zero amount: the t-interval is degenerate (zero width, no confidence "
    "statement) and significance is the exact two-sided sign test's (p = 2 x 0.5^n: n >= 6 "
    "replications are needed at 5%)."
)


def _family_note(rows: Sequence[dict[str, Any]]) -> str:
    """The Holm family's size of one KPI's rows (every row carries it)."""
    k = max((int(r.get("comparisons", 0)) for r in rows), default=0)
    if k == 0:  # it read "Holm-Bonferroni over 0 comparisons": a correction of nothing
        return (
            "No test: no comparison with the base has this KPI in two or more replications "
            "(one replication gives no interval), so nothing is marked."
        )
    return f"Holm-Bonferroni over {k} comparison{'s' if k != 1 else ''} with the base."


_direction = direction


def _md(text: str) -> str:
    """Text safe in a markdown table cell: no raw HTML, no ``|`` or line break ending the cell."""
    return " ".join(html.escape(text, quote=False).replace("|", "\\|").split())


def markdown_table(result: SweepResult, metrics: Sequence[str] = TABLE_METRICS) -> str:
    """One row per (variant, policy): each KPI's mean [95% CI] and Δ vs base [95% CI]."""
    rows = {(r["variant"], r["policy"], r["kpi"]): r for r in result.rows(metrics)}
    n = len(result.seeds)
    lines = [
        f"# What-if comparison ({n} replication{'' if n == 1 else 's'}, seed {result.seed})",
        "",
        "Each cell: mean [95% CI] over replications (Student t). Δ: paired difference, variant "
        f"minus the `{result.base}` variant, under the same policy and seeds (common random "
        "numbers), with the t-interval of the per-replication differences; "
        "▲ significantly better, ▼ significantly worse, ◆ a significant change of a KPI "
        f"that is neither better nor worse (utilisation). {MARKS_NOTE} An on-time rate at 0 "
        "or 1 on every replication has the Clopper-Pearson interval of the pooled orders due. "
        f"{CONSTANT_EXPLAINED}",
        "",
    ]
    if result.changes:  # what each variant is: a name alone did not say
        lines += ["Variants (what each changes in the base):", ""]
        lines += [f"- `{_md(v)}`: {_md(text)}" for v, text in result.changes.items()]
        lines.append("")
    if result.notes:  # what the modifiers did not do as written (copies not made, ...)
        lines += ["Variant notes:", ""]
        for variant, notes in result.notes.items():
            lines += [f"- `{_md(variant)}`: {_md(note)}" for note in notes]
        lines.append("")
    for metric in metrics:
        family = [rows[(v, p, metric)] for v in result.variants for p in result.policies]
        lines += [f"## {LABELS.get(metric, metric)}", ""]
        if len(result.variants) > 1:  # the base alone compares nothing
            lines += [_family_note(family), ""]
        lines.append("| variant | policy | mean [95% CI] | Δ vs base [95% CI] |")
        lines.append("|---|---|---|---|")
        for variant in result.variants:
            for policy in result.policies:
                r = rows[(variant, policy, metric)]
                diff = "—" if variant == result.base else _diff_cell(r, len(result.seeds))
                lines.append(
                    f"| {_md(variant)} | {_md(policy)} | {_cell(r, len(result.seeds))} | {diff} |"
                )
        lines.append("")
    return "\n".join(lines)


#: The columns of comparison.csv.
CSV_FIELDS = (
    "variant",
    "policy",
    "kpi",
    "mean",
    "ci_low",
    "ci_high",
    "n",
    "diff",
    "diff_low",
    "diff_high",
    "diff_n",
    "p_value",
    "p_adjusted",
    "significant",
    "degenerate",
    "comparisons",
    "ci_method",
    "constant",
)


def write_csv(result: SweepResult, path: Path) -> None:
    """Every KPI of every (variant, policy): mean, CI, paired difference vs base, its CI and n."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write(_comparison_text(result))


def _comparison_text(result: SweepResult) -> str:
    """The text :func:`write_csv` writes."""
    rows = result.rows(METRICS)
    return dict_csv_text(CSV_FIELDS, ({k: row[k] for k in CSV_FIELDS} for row in rows))


def write_replications_csv(result: SweepResult, path: Path) -> None:
    """Raw per-replication KPI values, in table order (base first); undefined KPIs empty."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write(_replications_text(result))


def _replications_text(result: SweepResult) -> str:
    """The text :func:`write_replications_csv` writes."""
    fields = ["variant", "policy", "replication", "seed", *METRICS, "num_events", "wall_s"]
    return csv_text(
        fields,
        (
            [o.case, o.policy, o.replication, o.seed]
            + [None if math.isnan(o.metrics[m]) else o.metrics[m] for m in METRICS]
            + [o.num_events, f"{o.wall_s:.4f}"]
            for o in result.ordered_outcomes()
        ),
    )


#: Axis labels: the KPI with its unit (rates are shares of 0..1, counts are orders).
UNITS: dict[str, str] = {
    "cost_cents": "cost (cents)",
    "on_time_rate": "on-time rate (share of orders, 0-1)",
    "lateness_p50_s": "lateness p50 (s)",
    "lateness_p95_s": "lateness p95 (s)",
    "orders_unserved": "orders unserved (orders)",
}


#: The plots' note under a figure with a constant KPI or difference (drawn without error bar).
CONSTANT_PLOTTED = (
    "constant: every replication gave the same value, a zero-width interval: no error bar is "
    "drawn (the replications agree; the value is not known exactly)"
)


#: A plot's title when none of its values is defined (the on-time rate of variants with no
#: order due, or its differences): nothing drawn, so no interval, but not for want of days
UNDEFINED_PLOTTED = "n/a: undefined in every replication"


def _no_ci(single: bool, flat: bool) -> str:
    """Why a plot shows no interval: one replication (``no CI: n=1``), ``constant``, or both;
    neither: no value is defined (:data:`UNDEFINED_PLOTTED`)."""
    if not single and not flat:  # it said "no CI: n=1" of a study of many replications
        return UNDEFINED_PLOTTED
    why = [NO_INTERVAL[1:-1]] if single else []
    return "; ".join([*why, "constant"] if flat else why)


#: share of a KPI plot's height added above its bars for their rotated "constant" labels
FLAT_HEADROOM = 0.3
#: most intervals between the ticks of a differences plot's axis (its labels side by side:
#: matplotlib's own count ran ``-1,250,000`` into ``-1,000,000``)
DIFF_TICKS = 4
#: height (inches) kept under the differences plot for its two-row legend
LEGEND_IN = 0.55


def _plain_ticks(axis: Any, *, most: int | None = None) -> None:
    """Tick labels of ``axis`` in plain numbers with thousands separators (``1,500,000``),
    to the decimals the ticks need: matplotlib's default wrote large costs as ``1.5`` with
    a ``1e6`` in the corner, far from the ``cost (cents)`` label. ``most``: at most that many
    intervals between ticks (a horizontal axis: its long labels side by side)."""
    from matplotlib.ticker import Formatter, MaxNLocator

    class _Plain(Formatter):
        places = 0

        def set_locs(self, locs: list[float]) -> None:
            super().set_locs(locs)
            # the fewest decimals (up to MAX_PLACES) that write every tick as it is
            self.places = next(
                (
                    k
                    for k in range(MAX_PLACES + 1)
                    if all(abs(round(x, k) - x) <= 1e-9 * max(1.0, abs(x)) for x in locs)
                ),
                MAX_PLACES,
            )

        def __call__(self, x: float, pos: int | None = None) -> str:
            return fmt_num(x, f",.{self.places}f")

    axis.set_major_formatter(_Plain())
    if most is not None:
        axis.set_major_locator(MaxNLocator(nbins=most, steps=[1, 2, 2.5, 5, 10]))


#: Inches a character of a tick label takes at matplotlib's default 10 points (a little more
#: than DejaVu Sans' mean advance, so estimates err on the roomy side)
CHAR_IN = 0.085
#: Least distance (inches) between two variants on the KPI plot's axis: their names, slanted
#: at 30 degrees, are then a text line's height apart whatever their length
LABEL_PITCH_IN = 0.34
#: Least width (inches) of one bar of the KPI plot
BAR_IN = 0.12
#: Widest (inches) the KPI plot's four panels may be side by side; wider, they are stacked
ROW_IN = 18.0
#: Least width (inches) of each axis of the differences plot, beside its labels
DIFF_AXIS_IN = 3.6
#: Height (inches) kept under a figure for its "constant" note
NOTE_IN = 0.3
#: Height (inches) kept above a figure's panels for its line saying what the study is
STUDY_LINE_IN = 0.35
#: Height (inches) of the KPI plot's policy legend under its panels: its title, and each row
POLICY_LEGEND_IN, POLICY_ROW_IN = 0.35, 0.22


def _policy_legend_layout(policies: Sequence[str], width_in: float) -> tuple[int, float]:
    """Columns of the KPI plot's policy legend (as many as fit across ``width_in`` inches)
    and its height in inches."""
    entry = 0.5 + 0.8 * CHAR_IN * max((len(p) for p in policies), default=1)  # 8 points
    columns = max(1, min(len(policies), int((width_in - 0.4) // entry)))
    rows = math.ceil(max(1, len(policies)) / columns)
    return columns, POLICY_LEGEND_IN + POLICY_ROW_IN * rows


def _kpis_layout(variants: Sequence[str], policies: int) -> tuple[int, float, float]:
    """Rows of the KPI plot's four panels (1 or 4), and each panel's width and height in
    inches: room for every variant's bars and its slanted name under them. At a fixed 4.2
    x 4 inches a panel, 20 variants ran their names into each other and into the next
    panel."""
    per_variant = max(LABEL_PITCH_IN, BAR_IN * max(1, policies))
    width = max(4.2, 1.2 + per_variant * len(variants))
    longest = max((len(v) for v in variants), default=0)
    height = 3.2 + 0.5 * CHAR_IN * longest  # a 30-degree name's height: half its length
    rows = 1 if 4 * width <= ROW_IN else 4
    return rows, width, max(4.0, height)


def plots(result: SweepResult) -> dict[str, bytes]:
    """PNG images: KPI bars with CIs per variant and policy, and Δ-vs-base forest plots."""
    import matplotlib.pyplot as plt

    images: dict[str, bytes] = {}
    for name, fig in figures(result).items():
        images[name] = _png(fig)
        plt.close(fig)
    return images


def _study_line(result: SweepResult, *, paired: bool) -> str:
    """What a plot shows, over its panels: how many replications, the study seed and, for
    the differences, that they are paired (a PNG on its own said neither)."""
    n = len(result.seeds)
    runs = f"{n} replication{'' if n == 1 else 's'}"
    if not paired:
        return f"{runs} per variant and policy (study seed {result.seed})"
    seeds = f"{n} replication seed{'' if n == 1 else 's'}"
    return (
        f"paired: variant minus {result.base} under the same policy and the same {seeds} "
        f"(study seed {result.seed})"
    )


def _study_text(fig: Any, text: str) -> None:
    """``text`` over a figure's panels, in the STUDY_LINE_IN kept for it (not a suptitle:
    tight_layout made room for one twice)."""
    y = 1.0 - 0.08 / fig.get_figheight()
    fig.text(0.5, y, text, ha="center", va="top", fontsize=10)


def figures(result: SweepResult) -> dict[str, Any]:
    """The matplotlib figures behind :func:`plots` (titled, axes labelled with units)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    out: dict[str, Any] = {}
    rows = {(r["variant"], r["policy"], r["kpi"]): r for r in result.rows(TABLE_METRICS)}
    shown = ["cost_cents", "on_time_rate", "lateness_p95_s", "orders_unserved"]
    n_pol = len(result.policies)
    n_rows, panel_w, panel_h = _kpis_layout(result.variants, n_pol)
    fig_w = panel_w * len(shown) / n_rows
    legend_cols, legend_in = _policy_legend_layout(result.policies, fig_w)
    fig, grid = plt.subplots(
        n_rows,
        len(shown) // n_rows,
        figsize=(fig_w, panel_h * n_rows + legend_in + STUDY_LINE_IN),
        squeeze=False,
    )
    panels = list(grid.flat)  # in KPI order, a row or a column of them
    width = 0.8 / max(1, n_pol)
    any_constant = False
    for ax, metric in zip(panels, shown, strict=True):
        any_ci = any_flat = any_single = False
        for j, policy in enumerate(result.policies):
            xs: list[float] = []
            ys: list[float] = []
            # the bars with an interval: x, mean, below, above (one replication has none,
            # and gets no error bar: a zero-length one drew its caps at the mean, a fake CI)
            ci_bars: list[tuple[float, float, float, float]] = []
            flat: list[tuple[float, float]] = []  # constant bars: x, mean
            for i, variant in enumerate(result.variants):
                r = rows[(variant, policy, metric)]
                xs.append(i + (j - (n_pol - 1) / 2) * width)
                if r["mean"] is None:  # undefined (no order due): no bar, "n/a" instead
                    ys.append(math.nan)
                    ax.text(xs[-1], 0.0, "n/a", ha="center", va="bottom", fontsize=7)
                    continue
                ys.append(r["mean"])
                if r["ci_low"] is None or r["ci_high"] is None:  # one replication: no CI
                    any_single = True
                    if r["mean"] == 0.0:  # a bar of no height: a blank, as if not drawn
                        ax.text(xs[-1], 0.0, "0", ha="center", va="bottom", fontsize=7)
                    continue
                if r.get("constant"):  # zero width: a zero-length bar would read as exact
                    flat.append((xs[-1], r["mean"]))
                    continue
                below = max(0.0, r["mean"] - r["ci_low"])
                ci_bars.append((xs[-1], r["mean"], below, max(0.0, r["ci_high"] - r["mean"])))
            ax.bar(xs, ys, width=width, label=policy)
            if ci_bars:
                any_ci = True
                cx, cy, lo, hi = zip(*ci_bars, strict=True)
                ax.errorbar(cx, cy, yerr=[lo, hi], fmt="none", ecolor="black", capsize=3)
            for x, y in flat:
                any_flat = True
                ax.text(x, y, "constant", ha="center", va="bottom", fontsize=7, rotation=90)
        low, high = ax.get_ylim()
        if low < 0.0 <= kpi_bounds(metric)[0]:  # all bars 0: matplotlib drew -0.05 to 0.05
            ax.set_ylim(0.0, max(high, 1.0))
        if any_flat:  # room above the highest bar for its label (it ran into the title)
            low, high = ax.get_ylim()
            ax.set_ylim(low, high + FLAT_HEADROOM * (high - low))
        any_constant = any_constant or any_flat
        ax.set_xticks(range(len(result.variants)))
        # every variant's group of bars inside (an undefined last variant has no bar to
        # widen the limits: its "n/a" sat on the right-hand spine, half outside the panel)
        ax.set_xlim(-0.5, len(result.variants) - 0.5)
        ax.set_xticklabels(result.variants, rotation=30, ha="right")
        what = "mean, 95% CI" if any_ci else f"mean ({_no_ci(any_single, any_flat)})"
        ax.set_title(f"{LABELS.get(metric, metric)}: {what}")
        ax.set_xlabel(f"variant ({result.base} = baseline)")
        ax.set_ylabel(UNITS.get(metric, LABELS.get(metric, metric)))
        _plain_ticks(ax.yaxis)
        ax.grid(axis="y", alpha=0.3)
    # the policies under the panels: in the first panel ("best" place) the legend still
    # covered a bar when the bars filled it (costs alike in every variant)
    note = (NOTE_IN if any_constant else 0.0) / fig.get_figheight()
    handles, names = panels[0].get_legend_handles_labels()
    fig.legend(
        handles, names, title="policy", fontsize=8, loc="lower center", ncol=legend_cols,
        bbox_to_anchor=(0.5, note),
    )  # fmt: skip
    if any_constant:
        fig.text(0.5, 0.01, CONSTANT_PLOTTED, ha="center", va="bottom", fontsize=8)
    top = 1.0 - STUDY_LINE_IN / fig.get_figheight()
    _study_text(fig, _study_line(result, paired=False))
    fig.tight_layout(rect=(0.0, note + legend_in / fig.get_figheight(), 1.0, top))
    out["kpis.png"] = fig

    others = [v for v in result.variants if v != result.base]
    if others:
        # each panel: its labels ("variant / policy (n/a)") and an axis of DIFF_AXIS_IN
        # (at a fixed 11 inches, long variant names squeezed the axes to slivers and pushed
        # the right-hand axis label off the figure)
        longest = max(len(f"{v} / {p} (n/a)") for v in others for p in result.policies)
        fig, axes = plt.subplots(
            1,
            2,
            figsize=(
                max(11.0, 2 * (CHAR_IN * longest + DIFF_AXIS_IN) + 0.6),
                0.6 + 0.45 * len(others) * n_pol + 1.6 + STUDY_LINE_IN,
            ),
            squeeze=False,
        )
        any_constant = False
        for ax, metric in zip(axes[0], ("cost_cents", "on_time_rate"), strict=True):
            labels, y = [], 0
            any_diff_ci = any_flat = any_single = False
            for variant in others:
                for policy in result.policies:
                    r = rows[(variant, policy, metric)]
                    labels.append(f"{variant} / {policy}")
                    y += 1
                    if r["diff"] is None:  # undefined: a label without a point
                        labels[-1] += " (n/a)"
                        continue
                    sig = _significant(r)
                    colors = {"better": "tab:green", "worse": "tab:red", "changed": "tab:blue"}
                    color = colors[_direction(metric, r["diff"])] if sig else "tab:gray"
                    # one pair: a point without an interval; every pair the same difference
                    # (degenerate): none either, a zero-length bar would read as exact
                    single = r["diff_low"] is None or r["diff_high"] is None
                    constant = not single and bool(r.get("degenerate"))
                    xerr = (
                        None
                        if single or constant
                        else [[r["diff"] - r["diff_low"]], [r["diff_high"] - r["diff"]]]
                    )
                    any_diff_ci = any_diff_ci or xerr is not None
                    any_single, any_flat = any_single or single, any_flat or constant
                    ax.errorbar(
                        r["diff"], y - 1, xerr=xerr, fmt="o", color=color, capsize=3,
                    )  # fmt: skip
                    if constant:
                        ax.annotate(
                            "constant", (r["diff"], y - 1), xytext=(5, 3),
                            textcoords="offset points", fontsize=7,
                        )  # fmt: skip
            any_constant = any_constant or any_flat
            ax.axvline(0.0, color="black", lw=0.8)
            ax.set_yticks(range(len(labels)))
            ax.set_yticklabels(labels)
            ax.set_ylim(len(labels) - 0.5, -0.5)  # first variant on top
            ci = "95% CI" if any_diff_ci else _no_ci(any_single, any_flat)
            ax.set_title(f"Δ {LABELS.get(metric, metric)} vs {result.base}\n({ci}; colours: Holm)")
            ax.set_xlabel(f"Δ {UNITS.get(metric, metric)}")
            _plain_ticks(ax.xaxis, most=DIFF_TICKS)
            ax.grid(axis="x", alpha=0.3)
        handles = [
            Line2D([], [], marker="o", ls="", color=c, label=lab)
            for c, lab in (
                ("tab:green", "significantly better"),
                ("tab:red", "significantly worse"),
                ("tab:blue", "significant change (utilisation: neither better nor worse)"),
                ("tab:gray", "not significant"),
            )
        ]
        # the legend's two rows take ~0.5 inch at the bottom (a fixed share of the figure
        # overlapped the axis labels of a short figure), the constant note a quarter inch more
        legend = LEGEND_IN / fig.get_figheight()
        top = 1.0 - STUDY_LINE_IN / fig.get_figheight()
        _study_text(fig, _study_line(result, paired=True))
        if any_constant:
            note = 0.25 / fig.get_figheight()
            fig.legend(
                handles=handles, loc="lower center", ncol=2, fontsize=8,
                bbox_to_anchor=(0.5, note),
            )  # fmt: skip
            fig.text(0.5, 0.01 * note, CONSTANT_PLOTTED, ha="center", va="bottom", fontsize=8)
            fig.tight_layout(rect=(0.0, legend + note, 1.0, top))
        else:
            fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8)
            fig.tight_layout(rect=(0.0, legend, 1.0, top))
        out["differences.png"] = fig
    return out


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _family_sizes(result: SweepResult, rows: dict[tuple[str, str, str], dict[str, Any]]) -> str:
    """``Comparisons per KPI: KPI k, ...`` (each KPI's Holm family size), or why no comparison
    was made at all (it listed a 0 for every KPI: one replication, or the base alone)."""
    sizes: dict[str, int] = {}
    for (_v, _p, kpi), r in rows.items():
        sizes[kpi] = max(sizes.get(kpi, 0), int(r.get("comparisons", 0)))
    if not any(sizes.values()):
        if len(result.variants) < 2:
            why = "the study has the base alone, no variant to compare with it"
        elif len(result.seeds) < 2:
            why = (
                "the study has one replication per variant and policy, and a paired "
                "comparison needs two or more (one pair gives no interval and no test)"
            )
        else:
            why = "no KPI is defined in two or more pairs of replications"
        return f"No comparison was made: {why}, so nothing is marked."
    listed = ", ".join(
        f"{LABELS.get(k, k)} {n}"
        if n
        else f"{LABELS.get(k, k)} none (defined in fewer than two pairs)"
        for k, n in sizes.items()
    )
    return f"Comparisons per KPI: {listed}."


def _html_changes(result: SweepResult) -> str:
    """What each variant changes in the base, as an HTML list (none stored: nothing)."""
    if not result.changes:
        return ""
    items = "".join(
        f"<li><b>{html.escape(variant)}</b>: {html.escape(text)}</li>"
        for variant, text in result.changes.items()
    )
    return f"<p>Variants (what each changes in the base):</p><ul>{items}</ul>\n"


def _html_notes(result: SweepResult) -> str:
    """The variants' notes (copies a demand modifier did not make, ...) as an HTML list."""
    if not result.notes:
        return ""
    items = "".join(
        f"<li><b>{html.escape(variant)}</b>: {html.escape(note)}</li>"
        for variant, notes in result.notes.items()
        for note in notes
    )
    return f"<p>Variant notes:</p><ul>{items}</ul>\n"


def html_report(result: SweepResult, images: dict[str, bytes], *, title: str) -> str:
    """A self-contained HTML page: the plots (embedded) and the comparison table."""
    rows = {(r["variant"], r["policy"], r["kpi"]): r for r in result.rows(TABLE_METRICS)}
    head = "".join(f"<th>{html.escape(LABELS.get(m, m))}</th>" for m in TABLE_METRICS)
    body = []
    for variant in result.variants:
        for policy in result.policies:
            cells = []
            for m in TABLE_METRICS:
                r = rows[(variant, policy, m)]
                diff = ""
                if variant != result.base:
                    sig = _significant(r)
                    cls = "same"
                    if sig and r["diff"] is not None:
                        cls = _direction(m, r["diff"])
                    delta = html.escape(_diff_cell(r, len(result.seeds)))
                    diff = f"<br><span class='{cls}'>Δ {delta}</span>"
                cells.append(f"<td>{html.escape(_cell(r, len(result.seeds)))}{diff}</td>")
            name = html.escape(variant)
            if variant == result.base:
                name += "<br><span class='same'>(baseline)</span>"
            body.append(f"<tr><th>{name}</th><td>{html.escape(policy)}</td>{''.join(cells)}</tr>")
    imgs = "".join(
        f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(data).decode()}'></figure>"
        for name, data in images.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 6px; text-align: right; vertical-align: top; }}
th {{ background: #f4f4f4; }}
.better {{ color: #176b1d; font-weight: 600; }} .worse {{ color: #b0201c; font-weight: 600; }}
.same {{ color: #777; }} .changed {{ color: #1f4e99; font-weight: 600; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(result.seeds)} replications per variant and policy, study seed {result.seed}. Means with
95% confidence intervals; Δ = paired difference, variant minus
<b>{html.escape(result.base)}</b>, under the same policy and replication seeds (common random
numbers), with the 95% t-interval of the per-replication differences. Green: significantly
better, red: significantly worse, blue: a significant change of a KPI that is neither better
nor worse (utilisation), grey: not significant. {html.escape(MARKS_NOTE)}
{html.escape(CONSTANT_EXPLAINED)}
{html.escape(_family_sizes(result, rows))}</p>
{_html_changes(result)}{_html_notes(result)}{imgs}
<h2>All KPIs</h2>
<table><tr><th>variant</th><th>policy</th>{head}</tr>
{"".join(body)}
</table></body></html>
"""


#: The files :func:`write_report` writes, in its order (differences.png: not for the base alone)
REPORT_FILES = (
    "comparison.md",
    "comparison.csv",
    "replications.csv",
    "kpis.png",
    "differences.png",
    "report.html",
)


def render_report(
    result: SweepResult,
    *,
    title: str = "What-if comparison",
    stage: Callable[[str], None] | None = None,
) -> dict[str, bytes]:
    """The report's files by name (those of :data:`REPORT_FILES` the study has), in memory;
    ``stage`` is told what is being drawn (``drawing the tables``, ``drawing the plots``, ...)."""
    tell = stage if stage is not None else (lambda _what: None)
    tell("drawing the tables")
    md = markdown_table(result) + "\n"
    table = _comparison_text(result)
    replications = _replications_text(result)
    tell("drawing the plots")
    images = plots(result)  # the slow part: seconds for a large study
    tell("drawing report.html")
    page = html_report(result, images, title=title)
    files = {
        "comparison.md": md.encode("utf-8"),
        "comparison.csv": table.encode("utf-8"),
        "replications.csv": replications.encode("utf-8"),
        **images,
        "report.html": page.encode("utf-8"),
    }
    return {name: files[name] for name in REPORT_FILES if name in files}


def write_report(
    result: SweepResult,
    out_dir: Path,
    *,
    title: str = "What-if comparison",
    stage: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write comparison.md, comparison.csv, replications.csv, PNG plots and report.html.

    ``out_dir`` is the report's own folder: made if missing, with its parents (the CLI checks
    that a typed ``--out`` adds one folder at most). Every file is drawn before the first is
    written (a Ctrl-C meanwhile writes nothing), then they are written together, all of them
    or none (:func:`scenarios.io.together.write_together`: a Ctrl-C while they are renamed into
    place takes effect once they all are; a failed write, a full disk, names its file and
    leaves the folder's previous report as it was). A ``differences.png`` of an older study is
    removed when this one has none (the base alone). Until session 81 the tables were written
    before the plots were drawn, and file by file. ``stage`` is told what is being done
    (:func:`render_report`'s stages, then ``writing the files``), for a status line.
    """
    from scenarios.io.together import write_together

    files = render_report(result, title=title, stage=stage)  # a Ctrl-C: nothing written
    if stage is not None:
        stage("writing the files")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_together({out_dir / name: data for name, data in files.items()})
    for name in REPORT_FILES:
        stale = out_dir / name
        if name not in files and stale.is_file():
            with naming_written(stale):
                stale.unlink()
    return written
