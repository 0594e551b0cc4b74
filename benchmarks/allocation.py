"""Fulfilment allocation benchmarks: quality against baselines, certified gaps, scaling, latency.

One command reproduces every table of ``docs/allocation.md``::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/allocation.py

Tables (markdown + CSV under ``benchmarks/results/``):

- ``allocation-literature``: 300 orders x 10 FCs in the Jasin & Sinha (2015) / Ma (2023)
  setting, >= 30 seeds: batch optimum (10 s budget, stop at a certified 0.1 % gap) against
  the nearest-node, rule-chain and myopic baselines under the same cost function; paired
  95 % confidence intervals of the differences (``simulation.stats``) and their
  Holm-adjusted p-values over the three baselines (one family per column).
- ``allocation-city``: the same comparison on the omnichannel city generator
  (``scenarios.generate.generate_city``; stores, dark stores, capacities, VIP, promises).
- ``allocation-reference``: on a few seeds, HiGHS alone on the plain compact formulation
  and a long batch run, against the 10 s batch answer.
- ``allocation-scaling``: 100 to 50,000 orders x 50 nodes x ~3 lines, certified gap and
  time; compile and Pyomo model-build times.
- ``allocation-city-seeds`` (``--only city-seeds``, not in the default run): the 10,000-order
  city x 50 nodes over a few seeds, certified gap of the 60 s batch.
- ``allocation-online``: in-process latency of single-order online allocations.
- ``allocation-online-crowded``: one order over 200 capped nodes, time and gap at 1 s and 10 s.
- ``allocation-time-limits`` (``--only time-limits``, not in the default run): wall time of
  batch and online calls against time limits of 0.01-1 s, 1-2,000 orders, with and without
  explanations, and the request compilation every answer pays first.

Use ``--quick`` for a small smoke run (few seeds, small sizes; its tables go to
``benchmarks/results/quick/`` unless ``--out-dir`` is given). Ctrl-C stops cleanly and
keeps the tables finished so far.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
QUICK_DIR = RESULTS_DIR / "quick"  # smoke runs (--quick), not committed
sys.path.insert(0, str(REPO))

from benchmarks.measures import (  # noqa: E402
    comma_list,
    comma_option,
    command_line,
    count_arg,
    count_list_arg,
    cpu_times,
    csv_text,
    int_list,
    output_folder_arg,
    output_folder_default,
    progress_bar,
    provenance,
    run_script,
    seconds_arg,
    stolen_share,
    table_name_arg,
    write_table_files,
)
from scenarios.generate import generate_city  # noqa: E402
from simulation.stats import (  # noqa: E402
    CONSTANT_NOTE,
    FamilyTest,
    Interval,
    constant_explained,
    degenerate_mark,
    fmt_num,
    holm_family,
    paired_diff,
)
from simulation.stats import mean_ci as shared_mean_ci  # noqa: E402
from solvers.allocation import (  # noqa: E402
    AllocationParams,
    AllocationRequest,
    AllocationResult,
    allocate,
    generate_literature,
)
from solvers.allocation.explain import CUT_SUMMARY  # noqa: E402
from solvers.allocation.literature import generate_crowded_order, literature_costs  # noqa: E402
from solvers.allocation.problem import MICRO, compile_request  # noqa: E402

console = Console(stderr=True)
METHODS = ("batch", "nearest", "rule_chain", "myopic")
METRICS = (
    ("cost", "cost"),
    ("shipments_per_order", "shipments / order"),
    ("split_rate", "split rate"),
    ("unfilled_units", "unfilled units"),
    ("vip_on_time", "VIP on-time share"),
    ("time_s", "solve time (s)"),
)


# ----------------------------------------------------------------------------- helpers
def half_width(ci: Interval) -> tuple[float, float]:
    """An interval of ``simulation.stats`` as mean and half-width (NaN below two values)."""
    if ci.n == 0:
        return math.nan, math.nan
    if ci.n < 2:
        return ci.mean, math.nan
    return ci.mean, ci.high - ci.mean


def p_text(test: FamilyTest) -> str:
    """A Holm-adjusted p-value for a table (``< 0.001``; † when the sign test decided)."""
    if test.p_adjusted is None:
        return "n/a"
    text = "< 0.001" if test.p_adjusted < 0.001 else f"{test.p_adjusted:.3f}"
    return text + degenerate_mark(test.degenerate, test.p_value)


def fmt(m: float, half: float, digits: int = 3) -> str:
    """``mean ± half`` (or just the mean)."""
    if math.isnan(m):
        return "n/a"
    if math.isnan(half):
        return fmt_num(m, f".{digits}f")
    return f"{fmt_num(m, f'.{digits}f')} ± {fmt_num(half, f'.{digits}f')}"


def fmt_ci(ci: Interval, digits: int = 3, unit: str = "") -> str:
    """An interval of ``simulation.stats`` as ``mean ± half-width`` (:func:`fmt`) and its unit,
    with the twin's ``(constant)`` after the zero-width interval of values all the same."""
    text = fmt(*half_width(ci), digits=digits)
    if unit and ci.n > 0:
        text += f" {unit}"
    return text + (CONSTANT_NOTE if ci.degenerate else "")


#: What ``(constant)`` after an interval of the allocation tables means (one sentence).
CONSTANT_SEEDS = constant_explained("seed", "another instance")


#: A results table's lines from this one on are written by hand (earlier runs, notes on a
#: re-run) and are carried over when the script writes the table again
KEPT_BELOW = "<!-- written by hand from here on: kept when the table is re-run -->"


def kept_text(path: Path) -> str:
    """The hand-written end of a results table (from :data:`KEPT_BELOW` on), else ''."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    at = text.find(KEPT_BELOW)
    return "" if at < 0 else text[at:].rstrip("\n")


#: what :func:`main` ran and where (the command, then :func:`benchmarks.measures.provenance`
#: as the run started), under the notes of each table it writes; empty when the tables are
#: written by another script, which says that itself
RUN_LINES: list[str] = []


def write_table(
    out_dir: Path,
    name: str,
    title: str,
    header: list[str],
    rows: list[list[Any]],
    notes: str,
    also: Mapping[str, str] | None = None,
    tail: Sequence[str] = (),
) -> None:
    """Write ``<name>.md`` (keeping its hand-written end, :data:`KEPT_BELOW`) and ``.csv``,
    and the files of ``also`` (file name -> text), all or none (:func:`write_table_files`);
    ``tail``: the markdown's lines after the table (another section).

    The end is the one the file being overwritten has, else that of the stored table of the
    same name in benchmarks/results.
    """
    lines = [f"# {title}", "", notes.strip(), ""]
    lines += [part for line in RUN_LINES for part in (line, "")]
    lines += ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    lines += tail
    # a table written elsewhere (--out-dir, --quick) with no hand-written end of its own
    # carries the stored table's, so that copying it over benchmarks/results loses nothing
    kept = kept_text(out_dir / f"{name}.md") or kept_text(RESULTS_DIR / f"{name}.md")
    if kept:
        lines += ["", kept]
    files = {f"{name}.csv": csv_text(header, rows), f"{name}.md": "\n".join(lines) + "\n"}
    write_table_files(out_dir, {**files, **(also or {})})
    console.print(f"wrote {out_dir / name}.md and .csv" + "".join(f", {f}" for f in also or {}))


@dataclass
class Run:
    """One method on one instance."""

    seed: int
    method: str
    cost: float
    shipments_per_order: float
    split_rate: float
    unfilled_units: float
    vip_on_time: float
    time_s: float
    gap: float | None
    bound: float | None


def run(req: AllocationRequest, seed: int, method: str, params: AllocationParams) -> Run:
    """Allocate and record the figures."""
    if method != "batch":
        params = params.model_copy(update={"baseline": method})
    t0 = time.perf_counter()
    res: AllocationResult = allocate(req, params)
    wall = time.perf_counter() - t0
    k = res.kpis
    return Run(
        seed=seed,
        method=method,
        cost=res.cost.total,
        shipments_per_order=k.shipments_per_order,
        split_rate=k.split_rate,
        unfilled_units=float(k.units_unfilled),
        vip_on_time=math.nan if k.vip_on_time_share is None else k.vip_on_time_share,
        time_s=wall,
        gap=res.gap,
        bound=res.bound,
    )


def progress() -> Progress:
    """A rich progress bar on stderr."""
    return progress_bar(console)


# ------------------------------------------------------------------ quality comparison
def method_rows(by: dict[tuple[int, str], Run], seeds: list[int]) -> list[list[Any]]:
    """Per metric, each method's ``mean ± half-width`` over the seeds (NaN values left out;
    ``(constant)`` when every seed gave the same value)."""
    rows: list[list[Any]] = []
    for key, label in METRICS:
        row: list[Any] = [label]
        for method in METHODS:
            vals = [getattr(by[(s, method)], key) for s in seeds]
            vals = [v for v in vals if not math.isnan(v)]
            row.append(fmt_ci(shared_mean_ci(vals), digits=2 if key == "cost" else 3))
        rows.append(row)
    return rows


def no_dearer(batch_cost: float, base_cost: float) -> bool:
    """True when the batch answer costs at most the baseline's, compared in whole micro-units.

    Costs are exact integer micro-units shown as currency rounded to 1e-6 (``from_micro``):
    comparing the integers counts a tie as a tie and one micro-unit dearer as dearer (the
    float comparison ``b <= m + 1e-6`` it replaces counted that as no dearer most of the time).
    """
    return round(batch_cost * MICRO) <= round(base_cost * MICRO)


#: the paired table's changes (batch minus baseline): label and decimals
PAIRED = (("cost", 2), ("split rate", 4), ("shipments/order", 3))


def paired_table(by: dict[tuple[int, str], Run], seeds: list[int]) -> str:
    """Batch minus each baseline, per seed: mean ± half-width and Holm-adjusted p (markdown).

    The changes of one column (relative cost in %, split rate, shipments per order) against
    the baselines form one family: each change's paired test (t, or the exact sign test when
    every seed changed by the same amount) is Holm-adjusted over the family.
    """
    intervals: dict[str, list[Interval]] = {}
    wins: dict[str, int] = {}
    for method in METHODS[1:]:
        batch = [by[(s, "batch")] for s in seeds]
        base = [by[(s, method)] for s in seeds]
        rel = [100.0 * (b.cost - m.cost) / m.cost for b, m in zip(batch, base, strict=True)]
        intervals[method] = [
            shared_mean_ci(rel),
            paired_diff([b.split_rate for b in batch], [m.split_rate for m in base]),
            paired_diff(
                [b.shipments_per_order for b in batch], [m.shipments_per_order for m in base]
            ),
        ]
        wins[method] = sum(no_dearer(b.cost, m.cost) for b, m in zip(batch, base, strict=True))
    methods = list(intervals)
    tests = [holm_family([intervals[m][k] for m in methods]) for k in range(len(PAIRED))]
    lines = [
        "| pair | cost change | split-rate change | shipments/order change | batch <= baseline "
        "| Holm p: cost / split rate / shipments |",
        "|---|---|---|---|---|---|",
    ]
    for i, method in enumerate(methods):
        cells = [
            fmt_ci(iv, digits, "%" if k == 0 else "")
            for k, (iv, (_label, digits)) in enumerate(zip(intervals[method], PAIRED, strict=True))
        ]
        p = " / ".join(p_text(tests[k][i]) for k in range(len(PAIRED)))
        lines.append(
            f"| batch - {method} | {' | '.join(cells)} | {wins[method]}/{len(seeds)} | {p} |"
        )
    size = max((t.family_size for family in tests for t in family), default=0)
    return (
        "\n".join(lines)
        + "\n\nHolm p: the Holm-Bonferroni adjusted p-value of each change's paired test over "
        f"the seeds (t-test; the exact sign test where every seed changed by the same amount, "
        f"marked †), adjusted over the {size} baselines of that column (one family per "
        "column); below 0.05 is significant at 5 % for the family. The ± half-widths are "
        "unadjusted 95 % t intervals."
    )


#: the best bounds on each literature seed's optimum known from earlier runs and offline
#: proofs (``allocation_certify.py``), with where each came from
KNOWN_FILE = "allocation-literature-known.csv"


@dataclass
class Known:
    """What is known of one seed's optimum: ``opt_at_least <= optimum <= opt_at_most``."""

    opt_at_least: float
    opt_at_most: float
    lower_from: str
    upper_from: str


def read_known(path: Path) -> dict[int, Known]:
    """The known bounds per seed (empty when ``path`` does not exist)."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {
            int(row["seed"]): Known(
                float(row["opt_at_least"]),
                float(row["opt_at_most"]),
                row["lower_from"],
                row["upper_from"],
            )
            for row in csv.DictReader(f)
        }


NOTHING_KNOWN = Known(-math.inf, math.inf, "", "")


def improved(
    k: Known, at_least: float | None, lower_from: str, at_most: float | None, upper_from: str
) -> Known:
    """``k`` with a lower bound ``at_least`` and an allocation's cost ``at_most`` (None:
    none) taken where they are better, each with where it came from."""
    if at_least is not None and at_least > k.opt_at_least:
        k = replace(k, opt_at_least=at_least, lower_from=lower_from)
    if at_most is not None and at_most < k.opt_at_most:
        k = replace(k, opt_at_most=at_most, upper_from=upper_from)
    return k


def merge_known(known: dict[int, Known], runs: list[Run], source: str) -> dict[int, Known]:
    """``known`` with each batch run's bound and answer where they are better."""
    out = dict(known)
    for r in runs:
        if r.method == "batch":
            out[r.seed] = improved(
                out.get(r.seed, NOTHING_KNOWN),
                r.bound,
                f"{source}: its certified bound",
                r.cost,
                f"{source}: its answer",
            )
    return out


def known_text(known: dict[int, Known]) -> str:
    """The text of a :data:`KNOWN_FILE` holding ``known``, as :func:`read_known` reads it."""
    header = ["seed", "opt_at_least", "opt_at_most", "lower_from", "upper_from"]
    return csv_text(
        header,
        (
            [seed, f"{k.opt_at_least:.6f}", f"{k.opt_at_most:.6f}", k.lower_from, k.upper_from]
            for seed, k in sorted(known.items())
        ),
    )


def write_known(path: Path, known: dict[int, Known]) -> None:
    """Write ``known`` as :func:`read_known` reads it (the whole file or, interrupted, the
    old one)."""
    write_table_files(path.parent, {path.name: known_text(known)})


def proven(cost: float, bound: float | None, known: Known | None, gap: float) -> bool | None:
    """Whether an answer of ``cost`` is within ``gap`` of the optimum (relative to the answer,
    as the certified gap is): True when a bound proves it, False when a known allocation
    proves it is not, None when neither."""
    lower = max(
        bound if bound is not None else -math.inf, known.opt_at_least if known else -math.inf
    )
    if cost - lower <= gap * abs(cost) + 1e-9:
        return True
    if known is not None and cost - known.opt_at_most > gap * abs(cost) + 1e-9:
        return False
    return None


def proven_line(runs: list[Run], seeds: list[int], known: dict[int, Known], gap: float) -> str:
    """How many batch answers are proven within ``gap`` of the optimum, and which are not."""
    by = {r.seed: r for r in runs if r.method == "batch"}
    verdict = {s: proven(by[s].cost, by[s].bound, known.get(s), gap) for s in seeds}
    yes = sum(1 for v in verdict.values() if v is True)
    misses = [s for s, v in verdict.items() if v is False]
    unknown = [s for s, v in verdict.items() if v is None]

    def listed(xs: list[int]) -> str:
        return f" (seed{'s' if len(xs) > 1 else ''} {', '.join(map(str, xs))})" if xs else ""

    return (
        f"Against the bounds known from earlier runs and offline proofs (`{KNOWN_FILE}`, "
        f"with this run's): **{yes}/{len(seeds)}** answers proven within {100 * gap:g} % of "
        f"the optimum, {len(misses)} proven more than {100 * gap:g} % above it{listed(misses)}, "
        f"{len(unknown)} unknown{listed(unknown)}."
    )


def quality_tables(
    runs: list[Run],
    seeds: list[int],
    params: AllocationParams,
    setting: str,
    known: dict[int, Known] | None = None,
) -> tuple[list[list[Any]], str]:
    """The per-method rows and the notes (with the paired table) of :func:`compare`."""
    by = {(r.seed, r.method): r for r in runs}
    rows = method_rows(by, seeds)
    gaps = [by[(s, "batch")].gap for s in seeds]
    times = [by[(s, "batch")].time_s for s in seeds]
    certified = sum(
        1 for g, t in zip(gaps, times, strict=True) if g is not None and g <= 1e-3 and t <= 10.0
    )
    gap_vals = [100.0 * g for g in gaps if g is not None]
    gap = fmt_ci(shared_mean_ci(gap_vals), 4, "%")
    paired = paired_table(by, seeds)
    flagged = [str(c) for row in rows for c in row] + [gap, paired]
    constant = f" {CONSTANT_SEEDS}" if any(CONSTANT_NOTE in text for text in flagged) else ""
    notes = (
        f"{setting}\n\n{len(seeds)} seeds ({seeds[0]}..{seeds[-1]}); mean ± half-width of the "
        f"95 % t interval.{constant} Same cost function for every method (exact integer "
        f"micro-units). Batch: time limit {params.time_limit_s} s, stop at a certified relative "
        f"gap of {params.mip_rel_gap} (bound = Lagrangian/Dantzig-Wolfe lower bound), "
        "explanations included in the time.\n\n"
        f"Batch certified gap: mean {gap}, max "
        f"{max(gap_vals, default=math.nan):.4f} %; seeds certified within 0.1 % in <= 10 s: "
        f"{certified}/{len(seeds)}; batch time max {max(times):.2f} s.\n\n"
        + ("" if known is None else proven_line(runs, seeds, known, params.mip_rel_gap) + "\n\n")
        + "Paired differences (batch minus baseline, per seed):\n\n"
        + paired
        + "\n\nPer-method means:"
    )
    return rows, notes


def compare(
    out_dir: Path,
    name: str,
    title: str,
    make: Callable[[int], AllocationRequest],
    seeds: Iterable[int],
    params: AllocationParams,
    setting: str,
    known_from: Path | None = None,
) -> list[Run]:
    """Batch against the baselines over seeds, with paired intervals and Holm-adjusted tests.

    With ``known_from`` (a :data:`KNOWN_FILE`), the answers are also judged against the bounds
    known before, and the file, with this run's better bounds and answers, is written to
    ``out_dir``.
    """
    seeds = list(seeds)
    runs: list[Run] = []
    with progress() as bar:
        task = bar.add_task(title, total=len(seeds) * len(METHODS))
        for seed in seeds:
            req = make(seed)
            for method in METHODS:
                runs.append(run(req, seed, method, params))
                bar.advance(task)
    known = None
    if known_from is not None:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        known = merge_known(read_known(known_from), runs, f"the run of {when} UTC")
    rows, notes = quality_tables(runs, seeds, params, setting, known)
    fields = list(Run.__dataclass_fields__)
    also = {f"{name}-runs.csv": csv_text(fields, ([getattr(r, k) for k in fields] for r in runs))}
    if known is not None:
        also[KNOWN_FILE] = known_text(known)
    write_table(out_dir, name, title, ["metric", *METHODS], rows, notes, also)
    return runs


def literature_request(seed: int) -> AllocationRequest:
    """300 orders x 10 FCs, 100 items, orders of 1-10 items, carry probability 0.5."""
    return generate_literature(seed=seed, num_orders=300, num_nodes=10, vip_share=0.1)


def city_request(seed: int, num_orders: int = 300, num_nodes: int = 10) -> AllocationRequest:
    """The omnichannel city generator mapped to an allocation request."""
    scenario = generate_city(
        seed=seed, num_orders=num_orders, num_nodes=num_nodes, num_couriers=max(4, num_orders // 25)
    )
    # the literature prices per mile (the default before session 61): the recorded runs' costs
    return AllocationRequest.from_scenario(scenario, literature_costs())


# ------------------------------------------------------------------------ references
#: the 10 s answer is "within 0.1 % of the true optimum" when proven so (see reference())
OPTIMUM_TOL = 1e-3


@dataclass
class FastAnswer:
    """A 10 s batch answer: cost, wall time, certified gap and bound."""

    cost: float
    time_s: float
    gap: float | None
    bound: float | None


def _opt_float(text: str) -> float | None:
    """A CSV cell as a float; empty (or ``None``) as None."""
    return None if text in ("", "None") else float(text)


def seed_list(text: str) -> list[int]:
    """``--...-seeds`` as a list of seeds (argparse type: a bad list is a usage error)."""
    return int_list(text, least=0, what="non-negative seeds")


def read_fast_runs(path: Path) -> dict[int, FastAnswer]:
    """Each seed's batch answer from a ``*-runs.csv`` of :func:`compare`.

    Raises ``ValueError`` naming the file and the reason when it cannot be read as one.
    """
    answers: dict[int, FastAnswer] = {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row["method"] != "batch":
                    continue
                seed = int(row["seed"])
                if seed in answers:
                    raise ValueError(f"seed {seed} has more than one batch row")
                answers[seed] = FastAnswer(
                    cost=float(row["cost"]),
                    time_s=float(row["time_s"]),
                    gap=_opt_float(row["gap"]),
                    bound=_opt_float(row["bound"]),
                )
    except OSError as err:
        raise ValueError(f"{path}: {err.strerror}") from None
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a runs CSV (missing column {err})") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return answers


def recorded_answers(
    ap: argparse.ArgumentParser, path: Path, seeds: list[int]
) -> dict[int, FastAnswer]:
    """The runs CSV's answers of ``seeds``; a file or seed it lacks is a usage error (exit 2)."""
    try:
        answers = read_fast_runs(path)
    except ValueError as err:
        ap.error(str(err))
    missing = [s for s in seeds if s not in answers]
    if missing:
        ap.error(f"{path}: no batch answer for seeds {missing}")
    return answers


def optimum_verdict(fast: float, best_known: float, best_bound: float) -> str:
    """Whether ``fast`` is within ``OPTIMUM_TOL`` of the true optimum: yes, no or unknown.

    yes: (fast - best bound) / fast <= OPTIMUM_TOL (the optimum is at least the bound);
    no: (fast - best known) / best known > OPTIMUM_TOL (the optimum is at most the best
    known cost); unknown otherwise (or when neither figure is available).
    """
    if math.isfinite(best_bound) and (fast - best_bound) / fast <= OPTIMUM_TOL:
        return "yes"
    if math.isfinite(best_known) and (fast - best_known) / best_known > OPTIMUM_TOL:
        return "no"
    return "unknown"


def _num(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals; n/a when missing or not finite."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return fmt_num(value, f".{digits}f")


def reference(
    out_dir: Path,
    seeds: list[int],
    plain_s: float,
    long_s: float,
    fast_runs: Path | None = None,
    long_threads: int | None = None,
) -> None:
    """HiGHS alone on the plain compact model, and a long batch run, vs the 10 s answer.

    With ``fast_runs`` (a literature ``*-runs.csv``) each seed's 10 s answer is taken from
    that file instead of solved again, so the long runs may share the machine without
    distorting the 10 s timing. The table is rewritten after every seed.
    """
    from solvers.allocation.highs_model import AllocationModel

    recorded = read_fast_runs(fast_runs) if fast_runs is not None else {}
    missing = [s for s in seeds if fast_runs is not None and s not in recorded]
    if missing:
        raise ValueError(f"{fast_runs}: no batch answer for seeds {missing}")
    long_params = AllocationParams(time_limit_s=long_s, mip_rel_gap=0.0, threads=long_threads)
    header = [
        "seed",
        "batch 10 s cost",
        "batch s",
        "batch gap %",
        f"batch {long_s:.0f} s cost",
        "long s",
        "long bound",
        "long gap %",
        "long proved optimal",
        f"plain MIP {plain_s:.0f} s cost",
        "plain MIP bound",
        "plain s",
        "best known",
        "best bound",
        "10 s vs best known %",
        "10 s vs best bound %",
        "10 s within 0.1 % of optimum",
    ]
    source = (
        f"The 10 s answers (cost, time, gap, bound) are read from `{fast_runs}` (the batch "
        "rows of a literature run: 9.5 s limit, stop at a certified 0.1 % gap), not solved "
        "again here."
        if fast_runs is not None
        else "The 10 s answers are solved here (9.5 s limit, stop at a certified 0.1 % gap)."
    )
    threads = "HiGHS default threads" if long_threads is None else f"threads={long_threads}"
    notes = (
        "Literature setting, 300 orders x 10 FCs. " + source + f" The long run is the batch "
        f"solve with a {long_s:.0f} s limit and mip_rel_gap=0 ({threads}); 'long proved "
        "optimal' when its certified gap is 0. 'plain MIP' is the compact formulation "
        "(per-arc linking, the same model as the Pyomo reference) given to HiGHS alone with "
        "no decomposition, pruning or warm start (mip_rel_gap=0; its cost is that of its "
        "allocation under the benchmark's cost function). 'best known' is the cheapest "
        "allocation of all runs, 'best bound' the highest lower bound of all runs (10 s, "
        "long, plain MIP). '10 s vs best bound %' = (10 s cost - best bound) / 10 s cost "
        "bounds the distance of the 10 s answer to the true optimum from above. Within "
        f"{100 * OPTIMUM_TOL:g} % of the true optimum: yes if that is <= {100 * OPTIMUM_TOL:g} "
        f"%; no if (10 s cost - best known) / best known > {100 * OPTIMUM_TOL:g} %; unknown "
        "otherwise."
    )
    rows: list[list[Any]] = []
    with progress() as bar:
        task = bar.add_task("reference runs", total=len(seeds))
        for seed in seeds:
            req = literature_request(seed)
            if fast_runs is not None:
                fast = recorded[seed]
            else:
                res = allocate(req, AllocationParams(time_limit_s=9.5, mip_rel_gap=1e-3))
                fast = FastAnswer(res.cost.total, res.solve_time_s, res.gap, res.bound)
            long = allocate(req, long_params)
            for note in long.stats.notes:
                console.print(f"seed {seed} long run: {note}")
            prob = compile_request(req)
            t0 = time.perf_counter()
            model = AllocationModel(prob, np.arange(prob.num_pairs), integer=True)
            model.set_options(mip_rel_gap=0.0)
            model.run(plain_s)
            plain_t = time.perf_counter() - t0
            plain = math.nan
            if model.has_solution():
                x = model.units()
                if not prob.violations(x):
                    plain = prob.evaluate(x).total / MICRO
            plain_bound = model.mip_bound()
            known = [c for c in (fast.cost, long.cost.total, plain) if math.isfinite(c)]
            best_known = min(known)
            bounds = [b for b in (fast.bound, long.bound, plain_bound) if b is not None]
            best_bound = max((b for b in bounds if math.isfinite(b)), default=-math.inf)
            console.print(
                f"seed {seed}: 10 s {fast.cost:.6f}, long {long.cost.total:.6f} bound "
                f"{long.bound} in {long.solve_time_s:.1f} s, plain {plain:.6f} bound "
                f"{plain_bound:.6f} in {plain_t:.1f} s"
            )
            rows.append(
                [
                    seed,
                    f"{fast.cost:.3f}",
                    f"{fast.time_s:.2f}",
                    _num(None if fast.gap is None else 100 * fast.gap, 4),
                    f"{long.cost.total:.3f}",
                    f"{long.solve_time_s:.1f}",
                    _num(long.bound, 3),
                    _num(None if long.gap is None else 100 * long.gap, 4),
                    "yes" if long.gap is not None and long.gap <= 1e-9 else "no",
                    _num(plain, 3),
                    _num(plain_bound, 3),
                    f"{plain_t:.1f}",
                    f"{best_known:.3f}",
                    _num(best_bound, 3),
                    f"{100 * (fast.cost - best_known) / best_known:.4f}",
                    _num(100 * (fast.cost - best_bound) / fast.cost, 4),
                    optimum_verdict(fast.cost, best_known, best_bound),
                ]
            )
            write_table(
                out_dir,
                "allocation-reference",
                "Allocation: 10 s batch answer against long runs and HiGHS on the plain model",
                header,
                rows,
                notes,
            )
            bar.advance(task)


# --------------------------------------------------------------------------- scaling
def scaling(
    out_dir: Path,
    sizes: list[int],
    time_limit: float,
    pyomo_max: int,
    families: tuple[str, ...] = ("literature", "city"),
) -> None:
    """100 .. 50,000 orders x 50 nodes x ~3 lines: certified gap and times."""
    from solvers.allocation.pyomo_model import build_pyomo_model

    rows: list[list[Any]] = []
    with progress() as bar:
        task = bar.add_task("scaling", total=len(families) * len(sizes))
        for family in families:
            for n in sizes:
                if family == "literature":
                    req = generate_literature(
                        seed=0, num_orders=n, num_nodes=50, max_items=5, vip_share=0.1
                    )
                else:
                    req = city_request(0, num_orders=n, num_nodes=50)
                t0 = time.perf_counter()
                prob = compile_request(req)
                compile_s = time.perf_counter() - t0
                pyomo_s = math.nan
                if prob.num_pairs and n <= pyomo_max:
                    t0 = time.perf_counter()
                    build_pyomo_model(prob)
                    pyomo_s = time.perf_counter() - t0
                res = allocate(req, AllocationParams(time_limit_s=time_limit, mip_rel_gap=1e-3))
                near = allocate(req, AllocationParams(baseline="nearest", explain=False))
                st = res.stats
                rows.append(
                    [
                        family,
                        n,
                        prob.num_lines,
                        prob.num_pairs,
                        f"{compile_s:.2f}",
                        "n/a" if math.isnan(pyomo_s) else f"{pyomo_s:.1f}",
                        f"{res.solve_time_s:.1f}",
                        f"{st.lp_s:.1f}",
                        f"{st.mip_s:.1f}",
                        f"{st.explain_s:.1f}",
                        st.lp_rounds,
                        f"{res.cost.total:.1f}",
                        f"{res.bound:.1f}" if res.bound is not None else "n/a",
                        f"{100 * (res.gap or 0):.3f}",
                        f"{100 * (near.cost.total - res.cost.total) / near.cost.total:.2f}",
                    ]
                )
                bar.advance(task)
    write_table(
        out_dir,
        "allocation-scaling",
        "Allocation: scaling, 50 nodes, ~3 lines per order",
        [
            "family",
            "orders",
            "lines",
            "pairs",
            "compile s",
            "Pyomo build s",
            "total s",
            "column gen. s",
            "integer s",
            "explain s",
            "LP rounds",
            "cost",
            "certified bound",
            "gap %",
            "cheaper than nearest %",
        ],
        rows,
        f"Literature generator with 50 FCs and orders of 1-5 items (~3 lines), and the "
        f"omnichannel city with 50 nodes. Batch with a {time_limit:.0f} s limit, stop at a "
        "certified 0.1 % gap; 'total s' includes compiling, explanations and shadow prices "
        "(so it can exceed the limit by the explanation time). 'Pyomo build s' is the time "
        "to build the reference Pyomo model only (not solved).",
    )


# ---------------------------------------------------------------------------- online
def city_seeds(out_dir: Path, num_orders: int, seeds: list[int], time_limit: float) -> None:
    """The city of ``num_orders`` orders x 50 nodes over ``seeds``: certified gap per seed."""
    rows: list[list[Any]] = []
    with progress() as bar:
        task = bar.add_task(f"city {num_orders} seeds", total=len(seeds))
        for seed in seeds:
            req = city_request(seed, num_orders=num_orders, num_nodes=50)
            before = cpu_times()
            res = allocate(req, AllocationParams(time_limit_s=time_limit, mip_rel_gap=1e-3))
            stolen = stolen_share(before, cpu_times())
            st = res.stats
            rows.append(
                [
                    seed,
                    num_orders,
                    f"{res.solve_time_s:.1f}",
                    f"{st.lp_s:.1f}",
                    f"{st.mip_s:.1f}",
                    st.lp_rounds,
                    f"{res.cost.total:.1f}",
                    f"{res.bound:.1f}" if res.bound is not None else "n/a",
                    f"{100 * (res.gap or 0):.3f}",
                    "n/a" if stolen is None else f"{100 * stolen:.1f}",
                    sum(e.summary.endswith(CUT_SUMMARY) for e in res.explanations),
                ]
            )
            bar.advance(task)
            write_table(
                out_dir,
                "allocation-city-seeds",
                f"Allocation: omnichannel city, {num_orders} orders x 50 nodes, several seeds",
                [
                    "seed",
                    "orders",
                    "total s",
                    "column gen. s",
                    "integer s",
                    "LP rounds",
                    "cost",
                    "certified bound",
                    "gap %",
                    "CPU stolen %",
                    "explanations cut",
                ],
                rows,
                f"`city_request(seed, num_orders={num_orders}, num_nodes=50)`; batch with a "
                f"{time_limit:g} s limit, stop at a certified 0.1 % gap (the scaling table's "
                "settings, explanations included in 'total s'). One run per seed; the "
                "answer depends on thread timing, so runs of a seed differ. 'CPU stolen %': "
                "the share of the machine's CPU time the host took during the run (steal in "
                "/proc/stat; a virtual machine whose host is busy runs the solve slower). "
                "'explanations cut': orders whose explanation the time limit cut short.",
            )


def single_orders(base: AllocationRequest, size: int = 1) -> list[AllocationRequest]:
    """Consecutive groups of ``size`` orders of ``base``, each a request of its own."""
    out = []
    for start in range(0, len(base.orders) - size + 1, size):
        cols = range(start, start + size)
        out.append(
            base.model_copy(
                update={
                    "orders": base.orders[start : start + size],
                    "distance_km": None
                    if base.distance_km is None
                    else [[row[i] for i in cols] for row in base.distance_km],
                    "travel_s": None
                    if base.travel_s is None
                    else [[row[i] for i in cols] for row in base.travel_s],
                }
            )
        )
    return out


def _units(req: AllocationRequest) -> int:
    """Units of the request's first order."""
    return sum(line.quantity for line in req.orders[0].lines)


def capacity_binds(req: AllocationRequest) -> bool:
    """True when a node could ship part of the one order only (its remaining unit capacity)."""
    units = _units(req)
    return any(n.capacity_units is not None and 0 < n.capacity_units < units for n in req.nodes)


def capacity_short(req: AllocationRequest) -> AllocationRequest:
    """``req`` (one order) with every other node's unit capacity one below the order's units.

    Those nodes can ship part of the order only, so the exact answer is a one-order MIP.
    """
    units = _units(req)
    nodes = [
        n.model_copy(update={"capacity_units": max(units - 1, 1)}) if k % 2 == 0 else n
        for k, n in enumerate(req.nodes)
    ]
    return req.model_copy(update={"nodes": nodes})


def online(out_dir: Path, num_orders: int) -> None:
    """Latency of single-order online allocations, in process."""
    rows: list[list[Any]] = []
    families = ("literature", "city", "city, a capacity short", "literature", "city")
    for k, family in enumerate(families):
        size = 5 if k >= 3 else 1  # the last two: five orders per call (a joint MIP)
        if family == "literature":
            base = generate_literature(seed=11, num_orders=num_orders, num_nodes=10)
        else:
            base = city_request(11, num_orders=num_orders, num_nodes=20)
        singles = single_orders(base, size)
        if family == "city, a capacity short":
            singles = [capacity_short(req) for req in singles if _units(req) >= 2]
        binding = sum(capacity_binds(req) for req in singles) if size == 1 else 0
        for explain in (True, False):
            params = AllocationParams(mode="online", explain=explain)
            allocate(singles[0], params)  # warm-up (imports, HiGHS banner)
            lat: list[float] = []
            with progress() as bar:
                task = bar.add_task(
                    f"online {family} x{size} explain={explain}", total=len(singles)
                )
                for req in singles:
                    t0 = time.perf_counter()
                    allocate(req, params)
                    lat.append(1000.0 * (time.perf_counter() - t0))
                    bar.advance(task)
            q = np.percentile(lat, [50, 95, 99])
            rows.append(
                [
                    family,
                    size,
                    explain,
                    len(lat),
                    binding,
                    f"{q[0]:.2f}",
                    f"{q[1]:.2f}",
                    f"{q[2]:.2f}",
                    f"{max(lat):.2f}",
                ]
            )
    write_table(
        out_dir,
        "allocation-online",
        "Allocation: online latency per single order (in process)",
        [
            "family",
            "orders per call",
            "explanations",
            "calls",
            "a capacity binds",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
        ],
        rows,
        "Each order of the instance allocated alone with `mode=online` against the full "
        "stock (literature: 10 FCs, orders of 1-10 items; city: 20 nodes); in the last rows "
        "five consecutive orders per call (one joint MIP). 'a capacity "
        "short': the city's orders of two or more units, each with every other node's "
        "remaining unit capacity one below the order's units (a stress case: such a node "
        "can ship part of the order only, so the exact answer is a one-order MIP). 'a "
        "capacity binds': orders with such a node. Time of the `allocate()` call: compile, "
        "exact per-order optimum, explanation, result model.",
    )


def crowded(out_dir: Path, seeds: list[int], limits: tuple[float, ...] = (1.0, 10.0)) -> None:
    """One order over 200 capped nodes: time against the limit, and what was proven."""
    rows: list[list[Any]] = []
    for limit_s in limits:
        params = AllocationParams(mode="online", time_limit_s=limit_s)
        secs: list[float] = []
        gaps: list[float] = []
        with progress() as bar:
            task = bar.add_task(f"crowded order, limit {limit_s:g} s", total=len(seeds))
            for seed in seeds:
                req = generate_crowded_order(seed)
                t0 = time.perf_counter()
                result = allocate(req, params)
                secs.append(time.perf_counter() - t0)
                gaps.append(100.0 * (result.gap if result.gap is not None else math.inf))
                bar.advance(task)
        rows.append(
            [
                f"{limit_s:g}",
                len(seeds),
                f"{np.median(secs):.3f}",
                f"{max(secs):.3f}",
                sum(g <= 1e-9 for g in gaps),
                f"{np.mean(gaps):.2f}",
                f"{max(gaps):.2f}",
            ]
        )
    write_table(
        out_dir,
        "allocation-online-crowded",
        "Allocation: one order over 200 capped nodes (online, with explanations)",
        [
            "time limit s",
            "calls",
            "p50 s",
            "max s",
            "proven optimal",
            "mean gap %",
            "max gap %",
        ],
        rows,
        "`generate_crowded_order(seed)`: 20 lines, 200 nodes each holding part of the order "
        "and able to ship 2-8 units (every node's capacity binds). The capacity-aware search "
        "stops after its flow limit and a one-order MIP, started from the search's best "
        "pattern, runs until 75 % of the limit; the explanation's re-solves use the rest. "
        "Gap: the answer's reported gap to its bound (the MIP's or the search's), in-run.",
    )


# ------------------------------------------------------------------------- time limits
TIME_LIMITS_S = (0.01, 0.05, 0.2, 1.0)
TIME_LIMIT_SIZES = (1, 30, 300, 2_000)


def time_limit_request(family: str, num_orders: int, seed: int = 0) -> AllocationRequest:
    """``num_orders`` orders of the literature setting (10 FCs) or the city (10 nodes)."""
    if family == "literature":
        return generate_literature(seed=seed, num_orders=num_orders, num_nodes=10, vip_share=0.1)
    return city_request(seed, num_orders=num_orders, num_nodes=10)


def table_notes(notes: Iterable[str]) -> str:
    """An answer's notes for a table cell: each whole, joined by "; " ("-" for none).

    A Markdown row cannot hold "|" or a line break (written "/" and " "). Until session 72
    the time-limits table cut the cell at 160 characters: mid-note ("no LP duals within the
    time", its "limit" lost), or mid-figure where a figure stood there.
    """
    text = "; ".join(notes)
    return text.replace("|", "/").replace("\r", " ").replace("\n", " ") or "-"


def time_limits(
    out_dir: Path,
    limits: Iterable[float] = TIME_LIMITS_S,
    sizes: Iterable[int] = TIME_LIMIT_SIZES,
    name: str = "allocation-time-limits",
) -> None:
    """Wall time of one call against its time limit: batch and online, with and without
    explanations, and the fixed cost (request compilation) no limit can save."""
    rows: list[list[Any]] = []
    limits, sizes = tuple(limits), tuple(sizes)
    families = ("literature", "city")
    cells = [
        (family, n, mode, explain, limit_s)
        for family in families
        for n in sizes
        for mode in ("batch", "online")
        for explain in (True, False)
        for limit_s in limits
    ]
    requests: dict[tuple[str, int], AllocationRequest] = {}
    compile_s: dict[tuple[str, int], float] = {}
    nearest_s: dict[tuple[str, int], float] = {}
    with progress() as bar:
        task = bar.add_task("time limits", total=len(cells))
        for family, n, mode, explain, limit_s in cells:
            key = (family, n)
            if key not in requests:
                requests[key] = time_limit_request(family, n)
                allocate(requests[key], AllocationParams(baseline="nearest"))  # warm caches
                t0 = time.perf_counter()
                compile_request(requests[key])
                compile_s[key] = time.perf_counter() - t0
                t0 = time.perf_counter()
                allocate(requests[key], AllocationParams(baseline="nearest", explain=False))
                nearest_s[key] = time.perf_counter() - t0
            params = AllocationParams(mode=mode, time_limit_s=limit_s, explain=explain)
            t0 = time.perf_counter()
            res = allocate(requests[key], params)
            wall = time.perf_counter() - t0
            fixed = compile_s[key]
            over = wall - limit_s
            rows.append(
                [
                    family,
                    n,
                    mode,
                    "yes" if explain else "no",
                    f"{limit_s:g}",
                    f"{wall:.3f}",
                    f"{wall / limit_s:.2f}",
                    f"{fixed:.3f}",
                    f"{nearest_s[key]:.3f}",
                    "yes" if over <= fixed + 0.005 else f"NO (+{over - fixed:.3f} s)",
                    res.status.value,
                    "-" if res.gap is None else f"{100 * res.gap:.2f}",
                    f"{res.cost.total:.2f}",
                    table_notes(res.stats.notes),
                ]
            )
            bar.advance(task)
    write_table(
        out_dir,
        name,
        "Allocation: wall time against small time limits",
        [
            "family",
            "orders",
            "mode",
            "explain",
            "limit s",
            "wall s",
            "wall / limit",
            "compile s",
            "nearest answer s",
            "within limit + compile",
            "status",
            "gap %",
            "cost",
            "notes",
        ],
        rows,
        "One call per cell, in process, seed 0: `generate_literature(0, n, num_nodes=10, "
        "vip_share=0.1)` and `city_request(0, n, num_nodes=10)`. 'wall s' is `allocate()` "
        "from call to answer; 'compile s' is `compile_request` alone on the same request (the "
        "fixed cost every answer pays before any limit can be kept); 'nearest answer s' is a "
        "whole `baseline='nearest'` call without explanations (the fastest complete answer); "
        "'within limit + compile' "
        "allows 5 ms of timer and scheduling noise on top. Measured on a shared 2-core machine "
        "under `flock -s /tmp/dispatchlab-cpu.lock` (a shared lock: other work may run "
        "beside it, so single cells can be slow); reproduce with `flock -s "
        "/tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/allocation.py --only "
        "time-limits`.",
    )


# ------------------------------------------------------------------------------- main
#: ``--only`` names, in the order they run; the default runs all but the opt-in ones.
TABLES = (
    "literature",
    "city",
    "reference",
    "scaling",
    "city-seeds",
    "online",
    "crowded",
    "time-limits",
)
DEFAULT_TABLES = tuple(t for t in TABLES if t not in ("city-seeds", "time-limits"))


def existing_file(text: str) -> Path:
    """A file given on the command line: it must exist (argparse type: else a usage error; a
    misspelt ``--known`` judged the literature answers against no known bound at all)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few seeds, small sizes")
    ap.add_argument(
        "--seeds",
        type=count_arg,
        default=30,
        help="literature seeds 0..N-1 of the quality tables (default 30; 3 with --quick)",
    )
    ap.add_argument(
        "--only",
        default=",".join(DEFAULT_TABLES),
        help=f"comma-separated tables: {', '.join(TABLES)} (default: every one but "
        "city-seeds and time-limits)",
    )
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=None,
        help="where the tables go (default benchmarks/results; with --quick "
        "benchmarks/results/quick, so a smoke run leaves the committed tables alone)",
    )
    ap.add_argument(
        "--known",
        type=existing_file,
        default=RESULTS_DIR / KNOWN_FILE,
        help="the literature seeds' known bounds on the optimum (default "
        f"benchmarks/results/{KNOWN_FILE}); the literature table judges its answers against "
        "them and writes them, with its own, to the output directory",
    )
    ap.add_argument("--time-limit", type=seconds_arg, default=9.5, help="batch budget per instance")
    ap.add_argument("--scale-limit", type=seconds_arg, default=60.0, help="batch budget, scaling")
    ap.add_argument(
        "--scale-sizes",
        type=count_list_arg,
        default=None,
        help="comma-separated order counts for scaling (default all)",
    )
    ap.add_argument(
        "--scale-families",
        type=lambda text: comma_list(text, "family", empty_ok=True),
        default="literature,city",
        help="scaling families (literature,city)",
    )
    ap.add_argument(
        "--reference-seeds",
        type=seed_list,
        default=None,
        help="comma-separated seeds (default the first 5)",
    )
    ap.add_argument(
        "--reference-long-s", type=seconds_arg, default=None, help="long batch run, s (default 60)"
    )
    ap.add_argument(
        "--reference-plain-s", type=seconds_arg, default=None, help="plain MIP run, s (default 60)"
    )
    ap.add_argument(
        "--reference-threads",
        type=count_arg,
        default=None,
        help="HiGHS threads of the long batch run (default HiGHS' own)",
    )
    ap.add_argument(
        "--city-seeds",
        type=seed_list,
        default=[0, 1, 2, 3, 4],
        help="seeds of --only city-seeds (comma-separated, default 0-4)",
    )
    ap.add_argument(
        "--city-seeds-orders", type=count_arg, default=10_000, help="orders of --only city-seeds"
    )
    ap.add_argument(
        "--fast-runs",
        type=existing_file,
        default=None,
        help="take each seed's 10 s answer from this literature runs CSV (no 10 s solve)",
    )
    ap.add_argument(
        "--time-limits-name",
        type=table_name_arg,
        default="allocation-time-limits",
        help="table name of --only time-limits (e.g. to keep a 'before' table)",
    )
    args = ap.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = output_folder_default(
            ap, "--out-dir", QUICK_DIR if args.quick else RESULTS_DIR
        )
    only = set(comma_option(ap, "--only", args.only, "table", empty_ok=True))
    unknown = sorted(only - set(TABLES))
    if unknown or not only:
        what = f"unknown table(s): {', '.join(unknown)}" if unknown else "give at least one table"
        ap.error(f"argument --only: {what}; one of {', '.join(TABLES)}")
    seeds = list(range(3 if args.quick else args.seeds))
    given = sys.argv[1:] if argv is None else argv
    command = command_line(ap, given, "allocation.py")  # every default spelled out
    RUN_LINES[:] = [f"Command: `{command}`", provenance()]
    ref_seeds = args.reference_seeds or seeds[: 2 if args.quick else 5]
    if args.fast_runs is not None and "reference" not in only:  # it was ignored
        ap.error("argument --fast-runs: only with the reference table (--only reference)")
    if "reference" in only and args.fast_runs is not None:
        recorded_answers(ap, args.fast_runs, ref_seeds)  # checked before any long run
    params = AllocationParams(time_limit_s=args.time_limit, mip_rel_gap=1e-3)
    try:
        if "literature" in only:
            compare(
                args.out_dir,
                "allocation-literature",
                "Allocation: literature setting, 300 orders x 10 FCs",
                literature_request,
                seeds,
                params,
                "Jasin & Sinha (2015) / Ma (2023) setting: 99 cities, 10 FCs, 100 items, 10 "
                "order types per size 1-10, carry probability 0.5, stock = round(T d + 0.5 "
                "sqrt(T d (1-d))) at the closest carrier, 8.759 per shipment + (0.423 + "
                "0.000541 x miles) per unit, unfilled at twice the farthest-FC cost; 10 % VIP "
                "orders (x10 unfilled/lateness weight, no promise: on time = complete).",
                known_from=args.known,
            )
        if "city" in only:
            compare(
                args.out_dir,
                "allocation-city",
                "Allocation: omnichannel city, 300 orders x 10 nodes",
                city_request,
                seeds,
                params,
                "`scenarios.generate.generate_city` (DCs, stores, dark stores; capacities; "
                "restricted SKUs; VIP and promised windows) mapped by "
                "`AllocationRequest.from_scenario` with the literature prices "
                "(`literature_costs()`: 0.000541 per unit-mile); road-network distances; "
                "promise = penalise (default lateness prices are 0).",
            )
        if "reference" in only:
            default_s = 30.0 if args.quick else 60.0
            reference(
                args.out_dir,
                ref_seeds,
                default_s if args.reference_plain_s is None else args.reference_plain_s,
                default_s if args.reference_long_s is None else args.reference_long_s,
                fast_runs=args.fast_runs,
                long_threads=args.reference_threads,
            )
        if "scaling" in only:
            sizes = (
                [100, 300, 1000] if args.quick else [100, 300, 1000, 3000, 10_000, 30_000, 50_000]
            )
            if args.scale_sizes:
                sizes = args.scale_sizes
            families = tuple(args.scale_families)
            scaling(args.out_dir, sizes, args.scale_limit, pyomo_max=3_000, families=families)
        if "city-seeds" in only:
            city_seeds(args.out_dir, args.city_seeds_orders, args.city_seeds, args.scale_limit)
        if "online" in only:
            online(args.out_dir, 100 if args.quick else 1000)
        if "crowded" in only:
            crowded(args.out_dir, seeds[:10])
        if "time-limits" in only:
            time_limits(
                args.out_dir,
                sizes=(1, 30, 300) if args.quick else TIME_LIMIT_SIZES,
                name=args.time_limits_name,
            )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: finished tables are written[/]")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
