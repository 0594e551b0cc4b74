"""Dispatch policies against a baseline on paired city days (docs/simulation.md's on-time tables).

Each run plays one day of the twin: ``simulate(generate_city(seed=S, num_orders=N,
num_nodes=M, num_couriers=C, params=CityParams(generator_version=G)), policy=P, seed=s,
params=SimParams(take_vehicle_breaks=B))`` (noise on, the generated day's own orders), for
every day, breaks on and off, policy and replication seed ``s``. Every policy plays the same
replication seeds on a day, so the days are paired (common random numbers); the first policy
of ``--policies`` is the baseline the others are compared with. The defaults are the runs of
docs/simulation.md's ``insertion:ontime`` against ``insertion`` tables (the 8 days the rule
was checked on and the 4 held-out days, seeds 0-9, breaks on and off; about 10 minutes of
CPU)::

    flock -s /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/simulation_policies.py \\
        --workers 2

A day is named ``NsS`` (N orders, generator seed S) with the docs' nodes and couriers for
its size (100 orders: 3 nodes, 8 couriers; 500: 5, 20; 1,500: 20, 40; 5,000: 20, 100),
``NsSnMcC`` for M nodes and C couriers, and ``v2`` at the end for generator version 2's fleet
(``1500s1v2``); ``tuned`` and ``held-out`` stand for the docs' two sets of days. Seeds are
``A..B`` or a comma list.

Writes ``benchmarks/results/<out-prefix>.csv`` (one row per run: the day, breaks, policy,
seed, the twin version the day is played under and its KPIs) and ``.md`` (per compared
policy, one row per day and breaks: the means of both policies, the paired difference of the
on-time rate and of the unserved orders with its 95% t-interval, ``simulation.stats
.paired_diff``, and the cost ratio with Fieller's 95% interval, ``ratio_ci``). The figures
are seeded KPIs, not timings: ``--workers N`` plays the runs on N processes with the same
rows as one (so the shared CPU lock is enough). Ctrl-C (or SIGTERM) stops the workers and
writes no table (exit status 130).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# run as a script, this folder comes first on sys.path, and its simulation.py would shadow
# the simulation package
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402

from benchmarks.measures import (  # noqa: E402
    WrittenThenInterrupted,
    comma_list,
    command_line,
    count_at_most,
    dict_csv_text,
    output_folder_arg,
    progress_bar,
    provenance,
    run_script,
    seeds_arg,
    sigterm_as_ctrl_c,
    table_name_arg,
    write_table_files,
)
from scenarios.errors import InputError  # noqa: E402
from scenarios.generate import (  # noqa: E402
    MAX_COURIERS,
    MAX_NODES,
    MAX_ORDERS,
    CityParams,
    generate_city,
)
from scenarios.model import Scenario  # noqa: E402
from simulation.evaluate import Case, ReplicationTask, run_tasks  # noqa: E402
from simulation.executors import LocalExecutor  # noqa: E402
from simulation.params import SimParams  # noqa: E402
from simulation.policies import check_policy  # noqa: E402
from simulation.stats import Interval, fmt_num, paired_diff, ratio_ci  # noqa: E402
from simulation.twin import TWIN_VERSION, twin_version  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DEFAULT_PREFIX = "simulation-policies"
#: ``--workers``: processes of the local pool (as benchmarks/simulation.py)
MAX_WORKERS = 64

#: nodes and couriers of a day named by its orders alone (the docs' city days)
FLEETS: dict[int, tuple[int, int]] = {100: (3, 8), 500: (5, 20), 1500: (20, 40), 5000: (20, 100)}

#: the docs' sets of days: the 4 first days of the table, the 4 "more" checked on (not held
#: out), and the 4 held out (run once the rule was fixed)
GROUPS: dict[str, tuple[str, ...]] = {
    "tuned": ("100s2", "500s1", "1500s1v2", "5000s1", "100s3", "100s4", "100s7v2", "500s2"),
    "held-out": ("100s5", "100s6v2", "500s3", "1500s2v2"),
}
#: how the docs' tables mark a day of each set (the first four days are not marked)
ROLES: dict[str, str] = {
    **dict.fromkeys(GROUPS["tuned"][4:], "more"),
    **dict.fromkeys(GROUPS["held-out"], "held out"),
}

DAY_NAME = re.compile(
    r"^(?P<orders>\d+)s(?P<seed>\d+)(?:n(?P<nodes>\d+)c(?P<couriers>\d+))?"
    r"(?:v(?P<generator>\d+))?$"
)

#: the KPIs a run's CSV row keeps (the table uses the first three)
KPIS = (
    "on_time_rate",
    "cost_cents",
    "orders_unserved",
    "orders_delivered",
    "orders_total",
    "distance_m",
    "courier_hours",
    "lateness_cost_cents",
    "fixed_cost_cents",
)
CSV_FIELDS = ("day", "breaks", "policy", "seed", "twin_version", *KPIS)


@dataclass(frozen=True)
class Day:
    """A generated city day: ``generate_city``'s arguments."""

    seed: int
    orders: int
    nodes: int
    couriers: int
    generator: int = 1

    @property
    def name(self) -> str:
        """The day's name on the command line (``500s1``, ``1500s1v2``, ``30s1n2c3``)."""
        fleet = (
            ""
            if FLEETS.get(self.orders) == (self.nodes, self.couriers)
            else (f"n{self.nodes}c{self.couriers}")
        )
        return f"{self.orders}s{self.seed}{fleet}" + (
            f"v{self.generator}" if self.generator != 1 else ""
        )

    @property
    def label(self) -> str:
        """The day as the docs' tables name it."""
        role = ROLES.get(self.name)
        fleet = ", v2 fleet" if self.generator == 2 else ""
        text = (
            f"{self.orders:,}-order city (seed {self.seed}, {self.nodes} nodes, "
            f"{self.couriers} couriers{fleet})"
        )
        return f"{role}: {text}" if role else text

    def scenario(self) -> Scenario:
        """The generated day."""
        return generate_city(
            seed=self.seed,
            num_orders=self.orders,
            num_nodes=self.nodes,
            num_couriers=self.couriers,
            params=CityParams(generator_version=self.generator),
        )


def parse_day(text: str) -> Day:
    """A day from its name (ValueError saying why it is not one)."""
    found = DAY_NAME.match(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a day name (NsS, NsSnMcC, with v2 for generator 2)")
    orders, seed = int(found["orders"]), int(found["seed"])
    if found["nodes"] is not None:
        nodes, couriers = int(found["nodes"]), int(found["couriers"])
    elif orders in FLEETS:
        nodes, couriers = FLEETS[orders]
    else:
        sizes = ", ".join(str(n) for n in FLEETS)
        raise ValueError(f"{text!r}: give nMcC (nodes and couriers) for days not of {sizes} orders")
    generator = int(found["generator"] or 1)
    if generator not in (1, 2):
        raise ValueError(f"{text!r}: generator version {generator}: 1 or 2")
    for what, value, most in (
        ("orders", orders, MAX_ORDERS),
        ("nodes", nodes, MAX_NODES),
        ("couriers", couriers, MAX_COURIERS),
    ):
        if not 1 <= value <= most:
            raise ValueError(f"{text!r}: {what} must be 1 to {most:,}, got {value}")
    return Day(seed, orders, nodes, couriers, generator)


def days_arg(text: str) -> list[Day]:
    """``--days``: comma-separated day names or sets (argparse type: else a usage error)."""
    names: list[str] = []
    for part in comma_list(text, "day"):
        names += GROUPS.get(part, (part,))
    try:
        days = [parse_day(name) for name in names]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    seen = [d.name for d in days]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"a day given twice: {', '.join(twice)}")
    return days


def policies_arg(text: str) -> list[str]:
    """``--policies``: the baseline, then the policies compared with it (else a usage error)."""
    specs = comma_list(text, "policy")
    if len(specs) < 2:
        raise argparse.ArgumentTypeError("give a baseline and at least one policy to compare")
    if len(set(specs)) < len(specs):
        raise argparse.ArgumentTypeError("a policy given twice")
    for spec in specs:
        try:
            check_policy(spec, "--policies", has_plan=False)
        except InputError as err:
            raise argparse.ArgumentTypeError(err.reason) from None
    return specs


def breaks_arg(text: str) -> list[bool]:
    """``--breaks``: ``on``, ``off`` or ``on,off`` (drivers take their vehicles' breaks or not)."""
    words = [w.strip() for w in text.split(",")]
    if any(w not in ("on", "off") for w in words) or len(set(words)) < len(words):
        raise argparse.ArgumentTypeError(f"{text!r}: expected on, off or on,off")
    return [w == "on" for w in words]


@dataclass(frozen=True)
class Run:
    """One day played by one policy with one replication seed: the CSV row."""

    day: str
    breaks: bool
    policy: str
    seed: int
    twin_version: int
    kpis: dict[str, float]

    def cells(self) -> dict[str, str]:
        """The CSV row (floats as Python writes them: read back, the same numbers)."""
        return {
            "day": self.day,
            "breaks": "on" if self.breaks else "off",
            "policy": self.policy,
            "seed": str(self.seed),
            "twin_version": str(self.twin_version),
            **{k: repr(float(self.kpis[k])) for k in KPIS},
        }

    @classmethod
    def of(cls, row: dict[str, str]) -> Run:
        """A run from its CSV row."""
        return cls(
            day=row["day"],
            breaks=row["breaks"] == "on",
            policy=row["policy"],
            seed=int(row["seed"]),
            twin_version=int(row["twin_version"]),
            kpis={k: float(row[k]) for k in KPIS},
        )


def csv_of(runs: Sequence[Run]) -> str:
    """The per-run CSV's text."""
    return dict_csv_text(CSV_FIELDS, (r.cells() for r in runs))


def write_csv(runs: Sequence[Run], path: Path) -> None:
    """The per-run CSV."""
    write_table_files(path.parent, {path.name: csv_of(runs)})


def read_csv(path: Path) -> list[Run]:
    """The runs of a per-run CSV."""
    with path.open(encoding="utf-8", newline="") as fh:
        return [Run.of(row) for row in csv.DictReader(fh)]


def _diff(iv: Interval, spec: str) -> str:
    """A paired difference and its interval (``(every day)`` when every pair differs alike),
    signed, never a negative zero (:func:`~simulation.stats.fmt_num`)."""
    signed = f"+{spec}"
    mean = fmt_num(iv.mean, signed)
    if iv.n < 2:
        return f"{mean} ({iv.n} day{'s' if iv.n != 1 else ''})"
    if iv.degenerate:
        return f"{mean} (every day)"
    return f"{mean} [{fmt_num(iv.low, signed)}, {fmt_num(iv.high, signed)}]"


def _column(kpis: Sequence[dict[str, float]], key: str) -> list[float]:
    """One KPI of each run."""
    return [x[key] for x in kpis]


def _mean(kpis: Sequence[dict[str, float]], key: str) -> float:
    """The mean of one KPI over the runs."""
    return float(np.mean(_column(kpis, key)))


def header(baseline: str, policy: str) -> list[str]:
    """The two header lines of a comparison table."""
    ab = f"{baseline} -> {policy}"
    return [
        f"| day | breaks | days | on-time: {ab} | difference [95% CI] | cost (cents): {ab} "
        f"| cost ratio [95% CI] | unserved: {ab} | difference [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]


def table_rows(runs: Sequence[Run], days: Sequence[Day], baseline: str, policy: str) -> list[str]:
    """One line per day and breaks (in the runs' order): ``policy`` against ``baseline`` on
    the seeds both played."""
    by: dict[tuple[str, bool], dict[tuple[str, int], Run]] = {}
    for r in runs:
        by.setdefault((r.day, r.breaks), {})[(r.policy, r.seed)] = r
    labels = {d.name: d.label for d in days}
    lines = []
    for (day, breaks), played in by.items():
        seeds = sorted(s for p, s in played if p == baseline and (policy, s) in played)
        if not seeds:
            continue
        a = [played[(baseline, s)].kpis for s in seeds]
        b = [played[(policy, s)].kpis for s in seeds]

        on_time = paired_diff(_column(b, "on_time_rate"), _column(a, "on_time_rate"))
        cost = ratio_ci(_column(b, "cost_cents"), _column(a, "cost_cents"), nonnegative=True)
        unserved = paired_diff(_column(b, "orders_unserved"), _column(a, "orders_unserved"))
        lines.append(
            f"| {labels.get(day, day)} | {'on' if breaks else 'off'} | {len(seeds)} | "
            f"{_mean(a, 'on_time_rate'):.3f} -> {_mean(b, 'on_time_rate'):.3f} | "
            f"{_diff(on_time, '.3f')} | "
            f"{_mean(a, 'cost_cents'):,.0f} -> {_mean(b, 'cost_cents'):,.0f} | "
            f"{cost.ratio:.3f} [{cost.low:.3f}, {cost.high:.3f}] | "
            f"{_mean(a, 'orders_unserved'):.1f} -> {_mean(b, 'orders_unserved'):.1f} | "
            f"{_diff(unserved, '.1f')} |"
        )
    return lines


def markdown(
    runs: Sequence[Run],
    days: Sequence[Day],
    policies: Sequence[str],
    seeds: Sequence[int],
    command: str,
    made: str,
) -> str:
    """The summary: what was run, by which command, when, and a table per compared policy."""
    baseline = policies[0]
    versions = {r.day: r.twin_version for r in runs}
    day_list = "; ".join(
        f"`{d.name}` = `generate_city(seed={d.seed}, num_orders={d.orders}, num_nodes={d.nodes}, "
        f"num_couriers={d.couriers}, params=CityParams(generator_version={d.generator}))`, "
        f"twin version {versions.get(d.name, '?')}"
        for d in days
    )
    lines = [
        "# Dispatch policies against a baseline on paired city days",
        "",
        f"Each run is `simulate(day, policy=P, seed=s, params=SimParams(take_vehicle_breaks="
        f"B))` (noise on, the day's own orders), replication seeds s = "
        f"{', '.join(str(s) for s in seeds)}, the same on every day, policy and breaks: "
        "the days are paired. The differences are the paired t-intervals of "
        "`simulation.stats.paired_diff` (policy minus baseline; `(every day)`: the same "
        "difference on every day), the cost ratio Fieller's interval of mean(policy) / "
        "mean(baseline) (`ratio_ci`), both 95%. Code's twin version: "
        f"{TWIN_VERSION} (a day is played under the version it gives: 11 where version 12 "
        "changes nothing, 9 where versions 10 to 12 change nothing, 8 where version 9 does "
        "not either). Days: "
        f"{day_list}. The per-run KPIs are in the CSV of the same name.",
        "",
        f"Command: `{command}`.",
        "",
        made,
    ]
    for policy in policies[1:]:
        lines += ["", f"`{policy}` against `{baseline}`:", ""]
        lines += header(baseline, policy)
        lines += table_rows(runs, days, baseline, policy)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Play every run and write the per-run CSV and the summary table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--days",
        type=days_arg,
        default="tuned,held-out",
        help="day names or sets (tuned, held-out); default tuned,held-out",
    )
    ap.add_argument("--seeds", type=seeds_arg, default="0..9", help="replication seeds (0..9)")
    ap.add_argument(
        "--policies",
        type=policies_arg,
        default="insertion,insertion:ontime",
        help="the baseline first, then the policies compared with it",
    )
    ap.add_argument("--breaks", type=breaks_arg, default="on,off", help="on, off or on,off")
    ap.add_argument(
        "--workers", type=count_at_most(MAX_WORKERS), default=1, help=f"1 to {MAX_WORKERS}"
    )
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(RESULTS),
        help="where the table goes (default benchmarks/results)",
    )
    ap.add_argument(
        "--out-prefix",
        type=table_name_arg,
        default=DEFAULT_PREFIX,
        help="file name of the table, without .md/.csv",
    )
    args = ap.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    command = "flock -s /tmp/dispatchlab-cpu.lock .venv/bin/" + command_line(
        ap, given, "simulation_policies.py"
    )
    made = provenance()  # when, which code, which machine: as the run starts
    console = Console(stderr=True)
    with sigterm_as_ctrl_c():
        return play_and_write(args, command, made, console)


def play_and_write(args: argparse.Namespace, command: str, made: str, console: Console) -> int:
    """Play the runs ``args`` asks for and write both files; 130 (one line said) on Ctrl-C."""
    days: list[Day] = args.days
    done = 0
    total = len(days) * len(args.breaks) * len(args.policies) * len(args.seeds)
    try:
        with progress_bar(console) as bar:
            generated = bar.add_task("days generated", total=len(days))
            cases: dict[str, Case] = {}
            versions: dict[str, int] = {}
            tasks: list[ReplicationTask] = []
            for day in days:
                scenario = day.scenario()
                versions[day.name] = twin_version(scenario)
                for breaks in args.breaks:
                    key = f"{day.name}/{'on' if breaks else 'off'}"
                    cases[key] = Case(scenario, params=SimParams(take_vehicle_breaks=breaks))
                    for policy in args.policies:
                        tasks += [
                            ReplicationTask(key, policy, k, seed)
                            for k, seed in enumerate(args.seeds)
                        ]
                bar.advance(generated)
            played = bar.add_task("runs", total=total)

            def progress(n: int, _total: int) -> None:
                nonlocal done
                done = n
                bar.update(played, completed=n)

            outcomes = run_tasks(
                cases, tasks, executor=LocalExecutor(args.workers), progress=progress
            )
    except KeyboardInterrupt:
        console.print(f"interrupted after {done} of {total} runs: no table written")
        return 130
    runs = []
    for o in outcomes:
        name, _, breaks = o.case.partition("/")
        kpis = {k: float(o.metrics[k]) for k in KPIS}
        runs.append(Run(name, breaks == "on", o.policy, o.seed, versions[name], kpis))
    try:  # before the CSV: Ctrl-C in the statistics left a new CSV beside the old table
        text = markdown(runs, days, args.policies, args.seeds, command, made)
    except KeyboardInterrupt:
        console.print(f"interrupted after all {total} runs: no table written")
        return 130
    base: Path = args.out_dir / args.out_prefix
    # both or neither: Ctrl-C between the two files left a new CSV beside the old table
    try:
        write_table_files(
            base.parent,
            {base.with_suffix(".csv").name: csv_of(runs), base.with_suffix(".md").name: text},
        )
    except WrittenThenInterrupted as written:  # held back until both files were in place
        console.print(f"interrupted: {written}", markup=False, soft_wrap=True)
        return 130
    except KeyboardInterrupt:  # a traceback while the temporary files were written
        console.print(f"interrupted after all {total} runs: no table written")
        return 130
    print(text, end="", flush=True)
    console.print(f"wrote {base}.csv and .md")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
