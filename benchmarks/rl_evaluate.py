"""Fair benchmark of dispatch policies on held-out days of the standard scenario.

Run (long: the re-optimising policies and the hindsight solves; under the shared lock
``flock -s /tmp/dispatchlab-cpu.lock``, enough because no timing is reported from it)::

    .venv/bin/python benchmarks/run_all.py --only rl-evaluate

(the committed table's run: ``run_all.py --list --only rl-evaluate`` prints its command, the
table's policies on day seeds 1..100, the reference on days 1..15 only, one worker; without
``--hindsight-seeds`` the reference plays every day, ~2.7 min a day where the cache has none:
hours). Every policy runs on the same held-out
day seeds (default 1..100; training uses seeds from
1,000,000 up): nearest idle courier (``greedy``), cheapest insertion over the 8 nearest
couriers (``insertion``) and over all (``insertion:12``), cheapest insertion over the agent's
candidate slots (``slots``, the imitation expert; ``slots-drop`` with the first decision
guard), EURO-style epoch dispatch (``euro-greedy:5``, ``euro-lazy:5``), periodic
re-optimisation every 2/5/10 minutes (``reopt:N``), the learned model (``model:standard`` by
default, with its decision guards; ``model-plain:standard`` is the network alone) and the
hindsight reference (``hindsight``: the day solved offline; cached in
``benchmarks/results/rl-hindsight-days.jsonl``, so re-runs reuse it). The reference runs by
iteration budgets (``--hindsight-iterations``, ``--hindsight-search-iterations``; the time limits
are then only a safety cap), so it is the same on a busy machine as on an idle one; ``none``
goes back to wall-clock budgets.
``--hindsight-seeds`` plays the reference on some of the days only (it is most of a run: a few
minutes a day, the online policies a few seconds); the page then says so, and the ratios to
it and the gap closed are over those days.

Writes ``benchmarks/results/rl-evaluation.md``, ``.csv`` (one row per policy and day) and
``.json`` (policy -> summary), with the issue's targets checked for the model; the page
says where it was made (``benchmarks.measures.provenance()``, taken as the run starts).

Re-render a stored table with the current statistics, without re-running its days (seconds)::

    .venv/bin/python benchmarks/rl_evaluate.py --from-results rl-evaluation

rebuilds the days from ``rl-evaluation.csv`` (decision latencies and exact wall times from the
``.json`` of the same run) and rewrites the ``.md`` and ``.json``, saying that they were
re-rendered, when, from the runs of which date, and what the stored files could not give
(the run's description, its provenance line included, is kept; the re-render adds none).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pydantic import ValidationError  # noqa: E402

from benchmarks.measures import (  # noqa: E402
    comma_list,
    comma_option,
    command_line,
    count_arg,
    ctrl_c_writes_nothing,
    output_folder_arg,
    progress_bar,
    provenance,
    run_script,
    table_name_arg,
    write_table_files,
)
from dispatchlab.cli._common import MAX_WORKERS  # noqa: E402
from rl_agents.evaluate import (  # noqa: E402
    CAP_COLUMNS,
    HINDSIGHT,
    DayOutcome,
    PolicySummary,
    cap_counts,
    days_csv_text,
    diff_text,
    report_json,
    run_days,
    summarise,
    table_markdown,
    write_days_csv,
)
from rl_agents.hindsight import (  # noqa: E402
    HindsightParams,
    budget_settings,
    parse_iterations,
)
from rl_agents.scenario import parse_seeds, standard_scenario  # noqa: E402
from scenarios.errors import InputError  # noqa: E402
from simulation.executors import make_executor  # noqa: E402
from simulation.stats import (  # noqa: E402
    CONSTANT_NOTE,
    RatioInterval,
    fmt_num,
    paired_diff,
    ratio_ci,
)

DEFAULT = (
    "greedy,insertion,insertion:12,slots,slots-drop,euro-greedy:5,euro-lazy:5,reopt:2,reopt:5,"
    "reopt:10,model-plain:standard,model:standard,hindsight"
)


#: How the target table decides (printed under it).
TARGET_RULES = (
    'Status rule: a cost target "mean cost / reference\'s <= r" is **met** when the paired '
    "t-test of mean(policy - r x reference) = 0 over the days both played rejects at 5% with "
    "the policy below (the ratio's whole Fieller 95% interval, shown, is within the target), "
    "**missed** when it rejects the other way, and **undecided** otherwise (the side of the "
    "point estimate is given); \"on-time >= greedy's\" is met unless the policy's on-time "
    "rate is significantly below greedy's (the paired on-time difference by day, "
    "Holm-adjusted over the table's on-time comparisons with greedy, 5%), not by comparing "
    "the two means."
)


def ratio_target(
    mine: dict[int, float], ref: dict[int, float], limit: float
) -> tuple[str, RatioInterval]:
    """Status of "mean(mine) / mean(ref) <= limit" over the shared days, by the paired t-test."""
    days = sorted(set(mine) & set(ref))
    a = [mine[d] for d in days]
    b = [ref[d] for d in days]
    ci = ratio_ci(a, b, nonnegative=True)  # costs
    if ci.n == 0 or math.isnan(ci.ratio):
        return "n/a", ci
    test = paired_diff(a, [limit * x for x in b])  # mean(a) - limit x mean(b), by day
    if test.differs_from(0.0):
        return ("met" if test.mean < 0 else "missed"), ci
    side = "meets" if ci.ratio <= limit else "misses"
    return f"undecided (the estimate {side} it)", ci


def _ratio_text(ci: RatioInterval, lower: bool) -> str:
    """``0.212 [0.205, 0.219]``, or as "% lower" (``78.8% lower [78.1%, 79.5%]``)."""
    if lower:
        value = f"{fmt_num(1.0 - ci.ratio, '.1%')} lower"
        pair = (1.0 - ci.high, 1.0 - ci.low)
        spec = ".1%"
    else:
        value, pair, spec = fmt_num(ci.ratio, ".3f"), (ci.low, ci.high), ".3f"
    if ci.bounded:
        flat = CONSTANT_NOTE if ci.degenerate else ""  # the same ratio on every day
        return f"{value} [95% CI {fmt_num(pair[0], spec)}, {fmt_num(pair[1], spec)}]{flat}"
    return value + (" [unbounded]" if ci.n >= 2 else f" (n={ci.n})")


def on_time_not_worse(s: PolicySummary) -> bool:
    """False only when the policy's on-time rate is significantly (Holm, 5%) below greedy's."""
    test, d = s.on_time_diff_test, s.on_time_diff_vs_greedy
    return not (test is not None and test["significant"] and d is not None and d < 0)


def targets(summaries: dict[str, PolicySummary], model: str, hind: str | None) -> list[str]:
    """Lines of the target check for the model (the rule: :data:`TARGET_RULES`)."""
    s = summaries[model]
    g, ins = summaries["greedy"], summaries.get("insertion")
    lines = []
    status, ci = ratio_target(s.costs, g.costs, 0.90)
    lines.append(
        f"| cost vs nearest-idle greedy | {_ratio_text(ci, lower=True)} | >= 10% lower | {status} |"
    )
    if ins is not None:
        status, ci = ratio_target(s.costs, ins.costs, 0.97)
        mine, greedy = s.on_time_rate, g.on_time_rate  # None: no order was due on any day
        shown = [f"{r:.3f}" if r is not None else "n/a" for r in (mine, greedy)]
        on_time = f"on-time {shown[0]} vs greedy {shown[1]}"
        d, d_ci, test = s.on_time_diff_vs_greedy, s.on_time_diff_ci, s.on_time_diff_test
        if d is not None and d_ci is not None:
            pair = diff_text(d, d_ci, "+.3f", s.on_time_diff_n, s.on_time_diff_constant)
            on_time += f", paired difference {pair}"
            if test is not None and test["p_adjusted"] is not None:
                on_time += f", Holm p {test['p_adjusted']:.2g}"
        if not on_time_not_worse(s):
            status = "missed (on-time significantly below greedy's)"
        lines.append(
            f"| cost vs cheapest insertion ({on_time}) | {_ratio_text(ci, lower=True)} | "
            f">= 3% lower, on-time not significantly below greedy's | {status} |"
        )
    if hind is not None and s.cost_vs_hindsight is not None:
        status, ci = ratio_target(s.costs, summaries[hind].costs, 1.10)
        gap = "-" if s.gap_closed is None else fmt_num(s.gap_closed, ".1%")
        lines.append(
            f"| cost / hindsight (gap closed {gap}) | {_ratio_text(ci, lower=False)} | "
            f"<= 1.10 (>= 50% of the gap) | {status} |"
        )
    return lines


#: the command-line option of each hindsight setting, for error messages
_HINDSIGHT_OPTIONS = {
    "time_limit_s": "--hindsight-time-limit",
    "warm_start_policies": "--hindsight-warm-start",
    "warm_start_solve": "--hindsight-warm-solve",
    "search_s": "--hindsight-search-s",
    "max_iterations": "--hindsight-iterations",
    "duration_iterations": "--hindsight-iterations",
    "search_iterations": "--hindsight-search-iterations",
}

#: The benchmark's iteration budgets (PyVRP shift- and duration-priced runs, improvement search):
#: on an idle core about the 30 s each of the wall-clock budgets they replace (docs/rl.md).
DEFAULT_ITERATIONS = "4500,900"
DEFAULT_SEARCH_ITERATIONS = "1500"


def workers_arg(text: str) -> int:
    """``--workers``: a whole number from 1 to the CLI's limit (argparse type: a usage error
    otherwise; 0 and below ran serially without a word, and a huge number sized the process
    pool to every policy-day)."""
    value = count_arg(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"at most {MAX_WORKERS}, got {value}")
    return value


def _hindsight_sentence(args: argparse.Namespace, hindsight: HindsightParams) -> str:
    """What the hindsight reference is made of, for the table's preamble."""
    warm = args.hindsight_warm_start
    if hindsight.max_iterations is not None:
        budget = f"{hindsight.max_iterations:,} iterations"
        if hindsight.iterations_for("duration") != hindsight.max_iterations:
            budget += f" with shift, {hindsight.iterations_for('duration'):,} with duration pricing"
        budget += f", at most {hindsight.time_limit_s:g} s each"
    else:
        budget = f"{hindsight.time_limit_s:g} s each"
    parts = [f"offline PyVRP runs ({budget}, shift and duration pricing, replayed in the twin)"]
    if warm:
        parts.append(f"the day as {', '.join(warm)} played it")
        if args.hindsight_warm_solve:
            parts.append("a solver run started from that day")
    search = hindsight.search_budget_s
    if search > 0:
        length = (
            f"{hindsight.search_iterations:,}-iteration (at most {search:g} s)"
            if hindsight.search_iterations is not None
            else f"{search:g} s"
        )
        parts.append(
            f"and a {length} ruin-and-recreate search scored by the twin's own cost, started "
            "from the cheapest of these (`rl_agents.hindsight_search`)"
        )
    return "Hindsight = per day, the best of " + ", ".join(parts) + ": a reference, not a bound."


def _capped_sentence(outcomes: Sequence[DayOutcome]) -> str:
    """How many hindsight runs the safety cap stopped before their iterations ('' if none)."""
    counts = cap_counts(outcomes)
    if counts is None:
        return ""
    runs, capped = counts
    return (
        f"Iteration budgets: {capped} of {runs} solver runs and searches were stopped by "
        "the wall-clock safety cap instead (those are not reproducible). "
    )


#: the sentence of :func:`_capped_sentence` in a stored description: (capped, runs)
_CAPPED = re.compile(
    r"Iteration budgets: (\d+) of (\d+) solver runs and searches were stopped by the "
    r"wall-clock safety cap instead \(those are not reproducible\)\. ?"
)


TITLE = "# RL dispatch: policies on held-out days of the standard scenario"

#: the columns a stored CSV needs to be re-rendered (what :func:`summarise` reads)
CSV_REQUIRED = (
    "policy",
    "seed",
    "cost_cents",
    "on_time_rate",
    "orders_unserved",
    "decisions",
    "wall_s",
)
#: summary fields the CSV cannot carry (it has no decision latencies and rounds wall times):
#: a re-render takes them from the stored JSON of the same run
FROM_JSON = ("latency_p50_ms", "latency_p99_ms", "wall_s_per_day")
#: the options of a run, meaningless when re-rendering stored days
RUN_ONLY = (
    "policies",
    "seeds",
    "workers",
    "hindsight_time_limit",
    "hindsight_warm_start",
    "hindsight_warm_solve",
    "hindsight_search_s",
    "hindsight_iterations",
    "hindsight_search_iterations",
    "hindsight_seeds",
)
FROM = "--from-results"


#: the per-day CSV's writer (kept under its old name here)
write_csv = write_days_csv


def read_csv(path: Path) -> list[DayOutcome]:
    """The days of a stored :func:`write_days_csv` file (no latencies: the CSV has none)."""
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(FROM, f"{label} is not a text file") from None
    except OSError as err:
        raise InputError(FROM, f"cannot read {path} ({err.strerror or err})") from None
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    missing = [c for c in CSV_REQUIRED if c not in columns]
    if missing:
        raise InputError(FROM, f"{label} has no column {', '.join(missing)}: not per-day results")
    metrics = [
        c for c in columns if c not in ("policy", "seed", "decisions", "wall_s", *CAP_COLUMNS)
    ]
    out: list[DayOutcome] = []
    seen: set[tuple[str, int]] = set()
    for row in reader:
        line = reader.line_num
        if None in row or any(v is None for v in row.values()):
            raise InputError(FROM, f"{label} line {line}: expected {len(columns)} cells")
        try:
            seed = int(row["seed"])
        except ValueError:
            raise InputError(
                FROM, f"{label} line {line}: seed {row['seed']!r} is not a day"
            ) from None
        policy = row["policy"]
        if (policy, seed) in seen:
            raise InputError(FROM, f"{label} line {line}: {policy} on day {seed} is given twice")
        seen.add((policy, seed))
        values: dict[str, float] = {}
        for key in metrics:
            try:
                if row[key] != "":  # a KPI the day did not have
                    values[key] = float(row[key])
            except ValueError:
                raise InputError(
                    FROM, f"{label} line {line}: {key} {row[key]!r} is not a number"
                ) from None
        if not math.isfinite(values.get("cost_cents", math.nan)):
            raise InputError(FROM, f"{label} line {line}: no cost_cents")
        try:
            decisions = int(row["decisions"])
            wall_s = float(row["wall_s"])
        except ValueError:
            raise InputError(
                FROM, f"{label} line {line}: decisions and wall_s must be numbers"
            ) from None
        detail: dict[str, Any] = {}
        cells = [row.get(c, "") for c in CAP_COLUMNS]
        if any(cells):
            try:
                runs, capped = (int(x) for x in cells)
            except ValueError:
                raise InputError(
                    FROM,
                    f"{label} line {line}: {' and '.join(CAP_COLUMNS)} must be whole numbers, "
                    f"got {cells[0]!r} and {cells[1]!r}",
                ) from None
            if not 0 <= capped <= runs:
                raise InputError(
                    FROM, f"{label} line {line}: {capped} of {runs} hindsight runs capped"
                )
            detail["cap_counts"] = (runs, capped)
        out.append(DayOutcome(policy, seed, values, decisions, [], wall_s, detail))
    if not out:
        raise InputError(FROM, f"{label} has no days")
    return out


def _today() -> str:
    """Today's date (UTC), ISO."""
    return datetime.datetime.now(datetime.UTC).date().isoformat()


#: a re-render's note: "... from the stored per-day runs of 2026-12-01 (where that date is from)"
_NOTE_DATE = re.compile(r"from the stored per-day runs of (\d{4}-\d{2}-\d{2}) \(([^()]*)\)")
_RUN_DATE = re.compile(r"\bRun on (\d{4}-\d{2}-\d{2})\b")


def stored_description(md: str | None) -> tuple[str | None, str | None, str | None]:
    """The stored table's description (a re-render's note dropped), its runs' date and source."""
    if md is None:
        return None, None, None
    lines = md.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    body: list[str] = []
    note: list[str] = []
    for line in lines:
        if line.startswith("| policy |"):
            break
        started = any(x.strip() for x in body)  # the description has begun
        (note if line.startswith(">") and not started else body).append(line)
    else:
        return None, None, None  # not a table this script wrote
    text = "\n".join(body).strip() or None
    found = _NOTE_DATE.search(" ".join(x.lstrip("> ") for x in note))
    if found:
        return text, found.group(1), found.group(2)
    run = _RUN_DATE.search(text or "")
    if run:
        return text, run.group(1), "the date the stored table gives"
    return text, None, None


def _committed_date(path: Path) -> str | None:
    """The date of ``path``'s last commit, if it is committed as it is (None otherwise)."""
    git = ["git", "-C", str(path.parent)]
    try:
        status = subprocess.run(
            [*git, "status", "--porcelain", "--", path.name], capture_output=True, text=True
        )
        log = subprocess.run(
            [*git, "log", "-1", "--format=%cs", "--", path.name], capture_output=True, text=True
        )
    except OSError:  # no git
        return None
    date = log.stdout.strip()
    if status.returncode or log.returncode or status.stdout.strip() or not date:
        return None
    return date


def _stored_names(folder: Path) -> list[str]:
    """Names of the per-day result CSVs in ``folder`` (what ``--from-results`` takes)."""
    names = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", errors="replace") as fh:
            if fh.readline().startswith("policy,seed,"):
                names.append(path.stem)
    return names


def _restore(
    summaries: dict[str, PolicySummary], stored: Any, label: str
) -> dict[str, dict[str, str]]:
    """Put the stored JSON's :data:`FROM_JSON` fields into ``summaries``; policy -> the fields
    it could not give, with why."""
    if stored is not None and not isinstance(stored, dict):
        raise InputError(FROM, f"{label} is not a policy -> summary object")
    lost: dict[str, dict[str, str]] = {}
    for name, s in summaries.items():
        old = stored.get(name) if stored is not None else None
        if not isinstance(old, dict):
            why = f"{label} is missing" if stored is None else f"{name} is not in {label}"
            lost[name] = {
                "wall_s_per_day": f"not exact: the mean of the CSV's wall times, rounded to ms "
                f"({why})"
            }
            if s.decisions_per_day > 0:  # without decisions there were no latencies to lose
                for key in ("latency_p50_ms", "latency_p99_ms"):
                    lost[name][key] = f"not stored: the CSV has no decision latencies ({why})"
            continue
        if old.get("costs") != {str(k): v for k, v in s.costs.items()}:
            raise InputError(
                FROM, f"{label} is not the run of the CSV: {name}'s day costs differ from it"
            )
        for key in FROM_JSON:
            value = old.get(key)
            if value is not None and not isinstance(value, int | float):
                raise InputError(FROM, f"{label}: {name}.{key} is not a number")
            setattr(s, key, None if value is None else float(value))
        # a re-rendered JSON: what its own stored files could not give is still not known
        earlier = (old.get("rerendered") or {}).get("not_recovered") or {}
        if not isinstance(earlier, dict):
            raise InputError(FROM, f"{label}: {name}.rerendered.not_recovered is not an object")
        if earlier:
            lost[name] = {str(k): str(v) for k, v in earlier.items()}
    return lost


def _not_stored(table: str, policies: Sequence[str]) -> str:
    """The table with "not stored" for the latencies of ``policies`` (instead of "-")."""
    rows = table.split("\n")
    for i, row in enumerate(rows):
        if any(row.startswith(f"| {p} | ") for p in policies) and row.endswith(" | - |"):
            rows[i] = row[: -len("- |")] + "not stored |"
    return "\n".join(rows)


def write_report(
    out: Path,
    name: str,
    preamble: list[str],
    summaries: dict[str, PolicySummary],
    *,
    table: str | None = None,
    rerendered: dict[str, dict[str, Any]] | None = None,
    days: Sequence[DayOutcome] | None = None,
) -> str:
    """Write ``<name>.json`` (policy -> summary), ``<name>.md`` and, given ``days``, the
    per-day ``<name>.csv``: all of them or none (:func:`write_table_files`); the markdown."""
    data = report_json(summaries)
    for policy, info in (rerendered or {}).items():
        data[policy]["rerendered"] = info
    model = next((p for p in summaries if p.startswith("model:")), None)
    hind = next((p for p in summaries if p.startswith("hindsight")), None)
    lines = [TITLE, "", *preamble, "", table if table is not None else table_markdown(summaries)]
    if model is not None and "greedy" in summaries:
        lines += [
            f"Targets for `{model}`:",
            "",
            "| target | value | wanted | status |",
            "|---|---|---|---|",
            *targets(summaries, model, hind),
            "",
            TARGET_RULES,
            "",
        ]
    text = "\n".join(lines)
    files = {} if days is None else {f"{name}.csv": days_csv_text(days)}
    files |= {f"{name}.json": json.dumps(data, indent=2) + "\n", f"{name}.md": text}
    write_table_files(out, files)
    return text


def _cap_count(
    outcomes: Sequence[DayOutcome], description: str | None, csv_name: str
) -> tuple[str, str | None, dict[str, Any] | None]:
    """The hindsight cap count of a re-render: its note, the description, the JSON record.

    Recomputed from the CSV's :data:`CAP_COLUMNS` when its hindsight days carry them (the
    description's sentence then gives the recomputed count); otherwise a count the original
    description states is carried over, and the note says it is not recomputed.
    """
    stored = _CAPPED.search(description or "")
    said = f"{stored.group(1)} of {stored.group(2)}" if stored else None
    counts = cap_counts(outcomes)
    if counts is None:
        if stored is None:
            return "", description, None
        note = (
            f"The count of hindsight solver runs and searches stopped by the wall-clock safety "
            f"cap ({said}, in the description below) is carried over from the original run, "
            f"not recomputed: `{csv_name}` does not record it per day."
        )
        capped, runs = int(stored.group(1)), int(stored.group(2))
        source = "carried over from the original run's description (not recomputed)"
        return note, description, {"runs": runs, "capped": capped, "source": source}
    runs, capped = counts
    now = f"{capped} of {runs}"
    note = (
        f"The count of hindsight solver runs and searches stopped by the wall-clock safety cap "
        f"({now}) is recomputed from `{csv_name}`"
    )
    if said is not None and said != now:
        note += f"; the original description said {said} (corrected below)"
    if description is not None and stored is not None:
        description = _CAPPED.sub(_capped_sentence(outcomes), description, count=1)
    info = {"runs": runs, "capped": capped, "source": f"recomputed from {csv_name}"}
    return note + ".", description, info


def rerender(folder: Path, name: str, write_as: str, command: str) -> str:
    """Rewrite ``<write_as>.md`` and ``.json`` from the stored days of ``<name>``; the text.

    ``command`` is the command line that re-renders, for the table's note.
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise InputError(FROM, f"{name!r}: give a result name (e.g. rl-evaluation), not a path")
    if not folder.is_dir():
        raise InputError(FROM, f"no folder {folder} (--out)")
    path = folder / f"{name}.csv"
    if not path.is_file():
        known = ", ".join(_stored_names(folder)) or "none"
        raise InputError(FROM, f"no stored results {path}; stored in {folder}: {known}")
    outcomes = read_csv(path)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    stored: Any = None
    if json_path.is_file():
        try:
            stored = json.loads(json_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(FROM, f"{json_path.name} is not JSON ({err})") from None
    md = md_path.read_text(encoding="utf-8") if md_path.is_file() else None
    description, run_date, source = stored_description(md)
    if run_date is None and (committed := _committed_date(path)) is not None:
        run_date, source = committed, f"the date of the last commit of `{path.name}`"
        source += "; the stored table gives none"
    summaries = summarise(outcomes)
    lost = _restore(summaries, stored, json_path.name)
    today = _today()
    runs = (
        f"the stored per-day runs of {run_date} ({source})"
        if run_date is not None
        else "stored per-day runs of an unrecorded date (neither the stored table nor git gives it)"
    )
    note = [
        f"Re-rendered on {today} from {runs}, with the statistics of the current "
        f"`rl_agents.evaluate`: **not a fresh run**. Every day's KPIs are those of that run, "
        f"read from `{path.name}`"
    ]
    if any(p not in lost for p in summaries):  # some from the stored JSON
        note[0] += (
            f"; the decision latencies (p50 / p99) and wall times per day from `{json_path.name}` "
            "of the same run"
        )
    note[0] += f". Command: `{command}`."
    no_latency = [p for p in summaries if "latency_p50_ms" in lost.get(p, {})]
    if no_latency:
        note.append(
            "Not recoverable from the stored files: the decision latencies of "
            f"{', '.join(no_latency)} (`not stored` in the table: the CSV has none and "
            f"`{json_path.name}` does not give them)."
        )
    if "orders_total" not in outcomes[0].metrics:
        all_or_none = [
            p for p, s in summaries.items() if s.on_time_ci_method == "clopper-pearson-days"
        ]
        note.append(
            f"`{path.name}` has no orders due per day (`orders_total`), which only an on-time "
            "rate at 0 or 1 on every day uses: "
            + (
                f"for {', '.join(all_or_none)} the interval is therefore over the days "
                "(`clopper-pearson-days`), not over the pooled orders."
                if all_or_none
                else "no policy's rate is, so nothing depends on it."
            )
        )
    cap_note, description, cap_info = _cap_count(outcomes, description, path.name)
    if cap_note:
        note.append(cap_note)
    if description is None:
        note.append(
            f"The run's description (settings, hindsight budgets, command, wall time) is not "
            f"recoverable: `{md_path.name}` is missing or is not a table of this script."
        )
    else:
        note.append("The description below is the original run's.")
    preamble = ["> " + " ".join(note)]
    if description is not None:
        preamble += ["", description]
    table = _not_stored(table_markdown(summaries), no_latency)
    info = {"on": today, "runs_of": run_date, "runs_of_source": source, "from": path.name}
    rerendered = {
        policy: {
            **info,
            "restored_from_json": [] if policy in lost else list(FROM_JSON),
            "not_recovered": lost.get(policy, {}),
            **(
                {"hindsight_cap_count": cap_info}
                if cap_info is not None and policy.startswith("hindsight")
                else {}
            ),
        }
        for policy in summaries
    }
    return write_report(folder, write_as, preamble, summaries, table=table, rerendered=rerendered)


@ctrl_c_writes_nothing  # Ctrl-C: a KeyboardInterrupt traceback
def main() -> None:
    """Run the comparison and write the result files."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--policies",
        default=DEFAULT,
        help="comma list of policies (see above; default the table's)",
    )
    ap.add_argument("--seeds", default="1..100", help="days to play: A..B or A,B,C (non-negative)")
    ap.add_argument(
        "--workers",
        type=workers_arg,
        default=2,
        help=f"worker processes, 1 to {MAX_WORKERS} (never more than the policy-days)",
    )
    ap.add_argument(
        "--hindsight-time-limit",
        type=float,
        default=None,
        help="seconds per hindsight solver run (default: 30; with iteration budgets, the "
        "safety cap, default 300)",
    )
    ap.add_argument(
        "--hindsight-warm-start",
        type=lambda text: comma_list(text, "policy", empty_ok=True),
        default="slots",
        help="online policies whose played day is a hindsight candidate ('' = none)",
    )
    ap.add_argument(
        "--hindsight-warm-solve",
        action="store_true",
        help="also start a hindsight solver run from each played day",
    )
    ap.add_argument(
        "--hindsight-search-s",
        type=float,
        default=None,
        help="seconds of the hindsight improvement search per day (default: the time limit; "
        "with search iterations, the safety cap, default 300; 0 = off)",
    )
    ap.add_argument(
        "--hindsight-iterations",
        default=DEFAULT_ITERATIONS,
        help="PyVRP iterations per hindsight solver run: N, or SHIFT,DURATION per pricing "
        f"(default {DEFAULT_ITERATIONS}; 'none' = stop on the clock, --hindsight-time-limit)",
    )
    ap.add_argument(
        "--hindsight-search-iterations",
        default=DEFAULT_SEARCH_ITERATIONS,
        help="iterations of the hindsight improvement search "
        f"(default {DEFAULT_SEARCH_ITERATIONS}; 'none' = stop on the clock, --hindsight-search-s)",
    )
    ap.add_argument(
        "--hindsight-seeds",
        default=None,
        help="day seeds the hindsight reference is played on, among --seeds (default: all of "
        "them); the ratios to it and the gap closed are over those days",
    )
    ap.add_argument(
        "--out",
        type=output_folder_arg("--out"),
        default=str(REPO / "benchmarks" / "results"),
        help="folder of the result files (default benchmarks/results)",
    )
    ap.add_argument(
        "--name",
        type=table_name_arg,
        default=None,
        help="result files to write (default rl-evaluation; with --from-results, that name)",
    )
    ap.add_argument(
        FROM,
        metavar="NAME",
        default=None,
        help="re-render NAME.md and NAME.json in OUT (--out) with the current statistics from "
        "the stored per-day runs in NAME.csv (and NAME.json) there, without running any day",
    )
    args = ap.parse_args()
    if args.from_results is not None:
        defaults = vars(ap.parse_args([]))
        for dest in RUN_ONLY:
            if getattr(args, dest) != defaults[dest]:
                option = "--" + dest.replace("_", "-")
                ap.error(f"{option}: not used with {FROM}, which re-renders stored days")
        try:
            text = rerender(
                args.out,
                args.from_results,
                args.name or args.from_results,
                f".venv/bin/python benchmarks/rl_evaluate.py {' '.join(sys.argv[1:])}",
            )
        except InputError as err:
            ap.error(err.one_line())  # exit 2
        print(text)
        return
    out_name = args.name or "rl-evaluation"
    try:
        seeds = parse_seeds(args.seeds)
    except InputError as err:
        ap.error(f"--seeds: {err.reason}")  # exit 2
    hindsight_seeds = seeds
    if args.hindsight_seeds is not None:
        try:
            hindsight_seeds = parse_seeds(args.hindsight_seeds)
        except InputError as err:
            ap.error(f"--hindsight-seeds: {err.reason}")  # exit 2
        if not set(hindsight_seeds) <= set(seeds):
            ap.error("--hindsight-seeds: every seed must be one of --seeds")  # exit 2
    try:
        iterations = parse_iterations(args.hindsight_iterations)
    except ValueError as err:
        ap.error(f"--hindsight-iterations: {err}")  # exit 2
    try:
        search = parse_iterations(args.hindsight_search_iterations, per_pricing=False)
    except ValueError as err:
        ap.error(f"--hindsight-search-iterations: {err}")  # exit 2
    # the search off (--hindsight-search-s 0) has no iterations
    search_iterations = search[0] if search is not None and args.hindsight_search_s != 0 else None
    hindsight_params = {
        **budget_settings(
            time_limit_s=args.hindsight_time_limit,
            search_s=args.hindsight_search_s,
            iterations=iterations,
            search_iterations=search_iterations,
            default_time_limit_s=30.0,
        ),
        "warm_start_policies": args.hindsight_warm_start,
        "warm_start_solve": args.hindsight_warm_solve,
    }
    try:
        hindsight = HindsightParams.model_validate(hindsight_params)
    except ValidationError as err:
        bad = err.errors(include_url=False)[0]
        name = str(bad["loc"][0]) if bad["loc"] else "hindsight"
        option = _HINDSIGHT_OPTIONS.get(name, name)
        ap.error(f"{option}: {bad['msg'].removeprefix('Value error, ')}")  # exit 2
    specs = comma_option(ap, "--policies", args.policies, "policy")
    scenario = standard_scenario()
    args.out.mkdir(parents=True, exist_ok=True)  # the cache's folder: refused as --hindsight-cache
    cache = args.out / "rl-hindsight-days.jsonl"
    made = provenance()  # when, which code, which machine: as the run starts
    t0 = time.perf_counter()
    # the reference's days first (the longest), then the online policies' (one run when the
    # reference plays every day)
    reference = [s for s in specs if s.partition(":")[0] == HINDSIGHT]
    groups = (
        [(reference, hindsight_seeds), ([s for s in specs if s not in reference], seeds)]
        if hindsight_seeds != seeds
        else [(specs, seeds)]
    )
    groups = [(group, days) for group, days in groups if group]
    # a bar on stderr (it printed a line per policy-day on stdout: hours of lines)
    with progress_bar() as bar:
        task = bar.add_task("policy-days", total=sum(len(g) * len(d) for g, d in groups))
        before = [0]  # the policy-days of the groups played already

        def progress(d: int, _group_total: int) -> None:
            bar.update(task, completed=before[0] + d)

        try:
            outcomes = []
            for group, days in groups:
                outcomes.extend(
                    run_days(
                        scenario,
                        group,
                        days,
                        executor=make_executor(
                            "local" if args.workers > 1 else "serial", workers=args.workers
                        ),
                        hindsight_params=hindsight_params,
                        cache=cache,
                        progress=progress,
                    )
                )
                before[0] += len(group) * len(days)
            if len(groups) > 1:  # the table in the order of --policies
                rank = {spec: i for i, spec in enumerate(specs)}
                outcomes.sort(key=lambda o: rank.get(o.policy, len(rank)))
        except InputError as err:  # an unknown policy, settings that leave nothing to solve
            if err.field in ("policies", "model"):  # the library's arguments: the option gave
                err = InputError("--policies", err.reason, source=err.source)
            ap.error(err.one_line())  # exit 2
    wall = time.perf_counter() - t0
    summaries = summarise(outcomes)
    # the reference's settings only where it was played (a run without it described it)
    played_hindsight = any(o.policy.partition(":")[0] == HINDSIGHT for o in outcomes)
    described = (
        f"{_hindsight_sentence(args, hindsight)} {_capped_sentence(outcomes)}"
        if played_hindsight
        else ""
    )
    only = (
        f"; the hindsight reference on day seeds {args.hindsight_seeds} only: its ratios and "
        "the gap closed are over those days"
        if played_hindsight and hindsight_seeds != seeds
        else ""
    )
    preamble = [
        f"`rl_agents.scenario.standard_scenario()`, day seeds {args.seeds}{only} (held out: "
        "training "
        "days are seeds 1,000,000 and up). Costs in cents (the twin's `cost_cents`), means over "
        "days; differences are paired (same days). Gap closed = (C_greedy - C_policy) / "
        "(C_greedy - C_hindsight). Latencies here come from a "
        f"{args.workers}-worker run on a shared machine; the reported latency figures are in "
        "`rl-speed.md` and, for the model with its "
        "decision guards, `rl-speed-latency.md` (exclusive lock). "
        f"{described}"
        f"Run on {_today()} (UTC), wall time {wall / 60:.0f} min, Python "
        f"{platform.python_version()}. Command: "
        "`flock -s /tmp/dispatchlab-cpu.lock .venv/bin/"
        f"{command_line(ap, sys.argv[1:], 'rl_evaluate.py')}`.",
        "",
        made,  # a re-render keeps it with the description: where the days were played
    ]
    print(write_report(args.out, out_name, preamble, summaries, days=outcomes))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
