"""Run every benchmark of dispatchlab in turn (what ``make bench`` does).

Each step is one of the scripts in this folder with the arguments that produced the committed
tables in ``benchmarks/results/``; every script writes its own markdown + CSV there. The whole
run takes several hours on 2 cores (the routing sets and the RL evaluation dominate)::

    .venv/bin/python benchmarks/run_all.py --list            # the steps and their commands
    .venv/bin/python benchmarks/run_all.py --only routing-solomon,simulation
    .venv/bin/python benchmarks/run_all.py                   # everything
    .venv/bin/python benchmarks/run_all.py --extras          # and the variant tables
    .venv/bin/python benchmarks/run_all.py --out-dir /tmp/bench --list   # a run elsewhere

The variant tables (:data:`EXTRAS`: the 10,000-order city over several seeds, the allocation
time limits, the RL evaluation's search / warm-solve / re-optimisation variants, the RL
latency table, the load test with two workers) add several hours more; they run with
``--extras`` or when named in ``--only``.

Every step holds the exclusive CPU lock ``/tmp/dispatchlab-cpu.lock`` (``flock``) while it
runs, so timings are not disturbed by other benchmarks on the same machine. The routing steps
read the public instances from ``../shared/benchmarks`` (``--bench-dir`` to change it); the
EURO-NeurIPS set is never copied into the repository (non-commercial licence) and is skipped
unless its folder exists. ``--out-dir DIR`` writes every table into ``DIR`` instead of
``benchmarks/results`` (the committed tables are left alone): each step gets its script's
output-folder option (:data:`OUT_OPTION`), a step whose script has none is refused before
anything runs, and the RL evaluation's hindsight cache is copied there first so its days are
reused as in a plain run; ``--list`` with it prints the commands such a run would run.
Either folder is checked before anything runs, as each script checks its own (a folder that
cannot take the tables is a usage error, exit 2): ``DIR``, or without ``--out-dir``
``benchmarks/results``, the steps' default.

A bar over the steps (which step of how many, the time so far) is drawn before each step and
at the end, never while a step runs: the step's own output and bars stay as it writes them.
Ctrl-C (or SIGTERM) passes SIGINT to the running step and gives it up to ``STOP_GRACE_S``
(120 s) to write what it has and stop what it started; then one line names the step it
stopped in and the steps finished, whose tables are kept (exit status 130).
"""

from __future__ import annotations

import argparse
import fcntl
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# run as a script, this folder comes first on sys.path, and its simulation.py would shadow
# the simulation package
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column  # noqa: E402

from benchmarks.measures import (  # noqa: E402
    comma_option,
    output_folder_arg,
    output_folder_default,
    run_script,
)

LOCK = Path("/tmp/dispatchlab-cpu.lock")
#: where the steps write their tables without ``--out-dir`` (each script's own default)
RESULTS = REPO / "benchmarks" / "results"
console = Console(stderr=True)


@dataclass(frozen=True)
class Step:
    """One benchmark script invocation."""

    name: str
    script: str
    args: tuple[str, ...] = ()
    needs: str | None = None  # a folder under --bench-dir that must exist

    def command(self, bench_dir: Path, out_dir: Path | None = None) -> list[str]:
        """The command line of this step (writing into ``out_dir`` when given)."""
        extra = ["--bench-dir", str(bench_dir)] if self.script == "routing.py" else []
        if out_dir is not None:
            extra += [OUT_OPTION[self.script], str(out_dir)]  # KeyError: see out_dir_refusals
        return [sys.executable, str(REPO / "benchmarks" / self.script), *self.args, *extra]

    def tables(self) -> list[str]:
        """The names of the tables this step writes (``NAME.md`` and its CSV)."""
        args = list(self.args)
        for option in ("--out-prefix", "--name"):
            if option in args:
                return [args[args.index(option) + 1]]
        if self.script == "allocation.py":
            parts = (
                args[args.index("--only") + 1].split(",")
                if "--only" in args
                else [p for p in ALLOCATION_TABLES if p not in ALLOCATION_OPT_IN]
            )
            return [ALLOCATION_TABLES[p] for p in parts]
        return [DEFAULT_TABLE[self.script]]


#: the table a script writes when its command names none (``--out-prefix``, ``--name``)
DEFAULT_TABLE: dict[str, str] = {
    "travel_matrix.py": "travel-matrix",
    "generate_city.py": "generate-city",
    "routing_budget.py": "routing-budget",
    "allocation_pyomo_limits.py": "allocation-pyomo-limits",
    "allocation_small.py": "allocation-small",
    "simulation.py": "simulation-twin",
    "simulation_policies.py": "simulation-policies",
    "rl_speed.py": "rl-speed",
    "rl_evaluate.py": "rl-evaluation",
    "load.py": "load-latency",
}

#: allocation.py's ``--only`` parts, in the order they run, and the table each writes
ALLOCATION_TABLES: dict[str, str] = {
    "literature": "allocation-literature",
    "city": "allocation-city",
    "reference": "allocation-reference",
    "scaling": "allocation-scaling",
    "city-seeds": "allocation-city-seeds",
    "online": "allocation-online",
    "crowded": "allocation-online-crowded",
    "time-limits": "allocation-time-limits",
}
#: the parts a plain ``allocation.py`` leaves out (each is a variant step)
ALLOCATION_OPT_IN = ("city-seeds", "time-limits")

#: the tables under benchmarks/results that no step re-makes, kept as they were run: why
ONE_OFF_TABLES: dict[str, str] = {
    "allocation-certify": "proofs of a few seeds, hours each (allocation_certify.py)",
    "allocation-http-job-2026-12-06": "a dated record of HTTP jobs",
    "allocation-pyomo-jobs": "two checkouts of the code compared (--code NAME=PATH)",
    "allocation-time-limits-before": "the code before a change, kept for comparison",
    "load-latency-2workers-pinned": "a variant (--cpu-affinity) kept for comparison",
    "load-latency-2workers-runs": "repeated runs of a variant step, kept for comparison",
    "load-latency-httpx-client": "a variant (--client httpx) kept for comparison",
    "rl-retrain-2026-12-06": "a dated record of a retraining",
    "routing-breaks-fuzz-before": "the code before a change, kept for comparison",
    "routing-breaks-fuzz-pyvrp": "a variant (one engine) kept for comparison",
    "routing-budget-greedy-200": "a variant (greedy, 200 orders) kept for comparison",
    "routing-cvrplib_x-10s-anchor": "an earlier run, kept for comparison",
    "routing-cvrplib_x-10s-contended": "a run on a contended machine, kept for comparison",
    "routing-cvrplib_x-10s-run1": "an earlier run, kept for comparison",
    "routing-cvrplib_x-greedy-10s": "a variant (greedy) kept for comparison",
    "routing-homberger400-20s-run1": "an earlier run, kept for comparison",
    "routing-solomon-5s-run1": "an earlier run, kept for comparison",
    "routing-solomon-ortools-5s": "a variant (OR-Tools alone) kept for comparison",
}

#: the step tables whose committed run no step can re-make (its recorded command is not one
#: step's): why; ``--help`` names them, as the step re-makes the table by another run
RUN_OTHERWISE: dict[str, str] = {
    "allocation-reference": "committed from two runs merged by hand (allocation.py --only "
    "reference, seeds 7,18,28 then 29, --reference-long-s 600 --reference-plain-s 300) whose "
    "10 s answers were read from a literature runs CSV kept only in git (--fast-runs, "
    "commit 62e3997); the allocation step re-makes it by its own run: seeds 0-4, 60 s runs, "
    "10 s answers solved anew",
}


#: each script's option naming the folder its tables go to (default benchmarks/results)
OUT_OPTION: dict[str, str] = {
    "travel_matrix.py": "--out-dir",
    "generate_city.py": "--out-dir",
    "routing.py": "--out-dir",
    "routing_budget.py": "--out-dir",
    "routing_small.py": "--out-dir",
    "routing_breaks_fuzz.py": "--out-dir",
    "allocation.py": "--out-dir",
    "allocation_pyomo_limits.py": "--out-dir",
    "allocation_small.py": "--out-dir",
    "simulation.py": "--out",
    "simulation_policies.py": "--out-dir",
    "rl_speed.py": "--out",
    "rl_evaluate.py": "--out",
    "load.py": "--out-dir",
}

#: the RL evaluation's cache of hindsight days (re-used by a run, see rl_evaluate.py)
HINDSIGHT_CACHE = "rl-hindsight-days.jsonl"


def out_dir_refusals(steps: list[Step]) -> list[str]:
    """One line per step that cannot write into ``--out-dir`` (its script takes no folder)."""
    return [
        f"{s.name}: {s.script} has no output-folder option, so --out-dir cannot keep it off "
        f"benchmarks/results; leave it out (--skip {s.name})"
        for s in steps
        if s.script not in OUT_OPTION
    ]


def _routing(name: str, budget: str, *anchors: str, needs: str | None = None) -> Step:
    args = ["--set", name, "--engine", "auto", "--time-limit", budget, "--workers", "2"]
    args += ["--seed", "1"]
    if anchors:
        args += ["--anchors", ",".join(anchors)]
    # the committed table's name (routing.py's own default adds the engine: ...-auto-5s)
    args += ["--out-prefix", f"routing-{name}-{budget}s"]
    return Step(f"routing-{name}", "routing.py", tuple(args), needs=needs or name)


def _routing_city(orders: str, budget: str) -> Step:
    args = ["--set", "city", "--city-orders", orders, "--city-jobs", "delivery,pickup"]
    args += ["--engine", "auto", "--time-limit", budget, "--workers", "2", "--seed", "1"]
    args += ["--out-prefix", f"routing-city-{orders}-{budget}s"]
    return Step(f"routing-city-{orders}", "routing.py", tuple(args))


STEPS: tuple[Step, ...] = (
    Step(
        "travel-matrix",
        "travel_matrix.py",
        ("--repeats", "3", "--grids", "50", "100", "--sizes", "100", "1000", "5000"),
    ),
    Step("generate-city", "generate_city.py", ("--repeats", "3", "--seed", "1")),
    _routing("solomon", "5", "pyvrp"),
    _routing("homberger200", "10"),
    _routing("homberger400", "20", "pyvrp"),
    _routing("lilim", "10"),
    _routing("cvrplib_x", "10"),
    _routing("euro_neurips", "10", needs="euro_neurips_2022"),
    _routing_city("1000", "10"),
    _routing_city("10000", "60"),
    Step(
        "routing-budget",
        "routing_budget.py",
        (
            "--orders",
            "600,1500,2400",
            "--budgets",
            "0.3,1,3,10",
            "--engines",
            "pyvrp,ortools",
            "--seed",
            "1",
            "--out-prefix",
            "routing-budget",
        ),
    ),
    Step(
        "routing-breaks-fuzz",
        "routing_breaks_fuzz.py",
        (
            "--cases",
            "300",
            "--seed",
            "1",
            "--engines",
            "pyvrp,ortools",
            "--pyvrp-iterations",
            "200",
            "--ortools-time",
            "2",
            "--out-prefix",
            "routing-breaks-fuzz",
        ),
    ),
    Step("allocation", "allocation.py"),
    Step("simulation", "simulation.py"),
    Step("simulation-policies", "simulation_policies.py", ("--workers", "2")),
    Step("rl-speed", "rl_speed.py"),
    Step(  # the table's own command (the script's defaults play other policies, 2 workers)
        "rl-evaluate",
        "rl_evaluate.py",
        (
            "--policies",
            "greedy,insertion,insertion:12,slots,slots-tc,slots-drop,euro-greedy:5,euro-lazy:5,"
            "model-plain:standard,model:standard,hindsight",
            "--seeds",
            "1..100",
            "--hindsight-seeds",
            "1..15",
            "--workers",
            "2",
            "--hindsight-iterations",
            "4500,900",
            "--hindsight-search-iterations",
            "1500",
        ),
    ),
    Step("load", "load.py"),
)


def _routing_small(engine: str, jobs: str, orders: str) -> Step:
    """A step re-making a ``routing_small.py`` table (the stall stops on small days)."""
    name = f"routing-small-{engine}" + ("-pickup" if jobs == "pickup" else "")
    args = ("--engine", engine, "--orders", orders, "--seeds", "0,1,2,3,4", "--jobs", jobs)
    return Step(name, "routing_small.py", (*args, "--time-limit", "10", "--out-prefix", name))


#: variant tables, each re-made by the command its ``Command:`` line gives (not in a plain run)
EXTRAS: tuple[Step, ...] = (
    _routing_small("ortools", "delivery", "1,2,3,5,8,12,20"),
    _routing_small("pyvrp", "delivery", "1,2,3,5,8,12,20"),
    _routing_small("pyvrp", "pickup", "2,5,10,20"),
    Step(
        "routing-budget-scale",
        "routing_budget.py",
        (
            "--orders",
            "1000,5000,10000",
            "--budgets",
            "1,2,5,10,30",
            "--engines",
            "auto",
            "--seed",
            "1",
            "--couriers-per-1000",
            "100",
            "--generator-version",
            "2",
            "--out-prefix",
            "routing-budget-scale",
        ),
    ),
    Step("allocation-city-seeds", "allocation.py", ("--only", "city-seeds")),
    Step("allocation-time-limits", "allocation.py", ("--only", "time-limits")),
    Step(
        "allocation-pyomo-limits",
        "allocation_pyomo_limits.py",
        ("--sizes", "300,600,1000,1400,2000", "--limit", "1"),
    ),
    Step(
        "allocation-small",
        "allocation_small.py",
        ("--sizes", "30,50,70,90", "--seeds", "1..30", "--limit", "10"),
    ),
    Step(
        "rl-evaluation-search",
        "rl_evaluate.py",
        (
            "--policies",
            "greedy,insertion,insertion:12,slots,slots-tc,euro-greedy:5,euro-lazy:5,"
            "model-plain:standard,model:standard,hindsight",
            "--seeds",
            "1..44",
            "--hindsight-seeds",
            "1..15",
            "--workers",
            "1",
            "--name",
            "rl-evaluation-search",
        ),
    ),
    Step(
        "rl-evaluation-warm-solve",
        "rl_evaluate.py",
        (
            "--policies",
            "greedy,slots,model-plain:standard,model:standard,hindsight",
            "--seeds",
            "1..10",
            "--hindsight-warm-solve",
            "--name",
            "rl-evaluation-warm-solve",
        ),
    ),
    Step(
        "rl-evaluation-reopt",
        "rl_evaluate.py",
        (
            "--policies",
            "greedy,insertion,slots,model-plain:standard,model:standard,reopt:2,reopt:5,"
            "reopt:10,reopt:2:pyvrp,reopt:5:pyvrp,reopt:10:pyvrp,hindsight",
            "--seeds",
            "1..3",
            "--name",
            "rl-evaluation-reopt",
        ),
    ),
    Step(
        "rl-speed-latency",
        "rl_speed.py",
        ("--latency-only", "--latency-days", "10", "--name", "rl-speed-latency"),
    ),
    Step(
        "load-latency-2workers",
        "load.py",
        ("--workers", "2", "--phases", "allocations", "--out-prefix", "load-latency-2workers"),
    ),
)


#: seconds a step has, after Ctrl-C, to write what it has and stop what it started
STOP_GRACE_S = 120.0


def _run(step: Step, bench_dir: Path, out_dir: Path | None = None) -> int:
    """Run one step under the exclusive CPU lock; its exit code.

    On Ctrl-C (or SIGTERM) the step gets SIGINT, as from a terminal, and up to
    :data:`STOP_GRACE_S` to end (its own Ctrl-C handling: write the rows done, stop a server
    it started) before it is killed; then KeyboardInterrupt goes on. ``subprocess.call``
    killed it 0.25 s after the interrupt, its tables unwritten and its server left running.
    """
    cmd = step.command(bench_dir, out_dir)
    console.print(f"[bold]{step.name}[/bold]: {shlex.join(cmd)}")
    with LOCK.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # said, or the run looks stuck before its step starts
            console.print(f"{step.name}: waiting for the exclusive CPU lock {LOCK}", markup=False)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            with subprocess.Popen(cmd, cwd=REPO) as child:
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    child.send_signal(signal.SIGINT)
                    try:
                        child.wait(timeout=STOP_GRACE_S)
                    except subprocess.TimeoutExpired:
                        child.kill()
                        child.wait()
                    raise
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class StepsBar:
    """A progress bar over the steps, drawn once before each step and once at the end.

    Never live: a bar redrawn while a step runs would overwrite the step's own output (its
    lines, its own progress bar) on the same terminal; drawn between the steps, the step's
    output stays as it wrote it.
    """

    def __init__(self, total: int, width: int = 0) -> None:
        """A bar of ``total`` steps, none done (its clock starts now); ``width``: the
        characters the longest description takes (so the bar keeps its place)."""
        self.progress = Progress(
            TextColumn("{task.description}", markup=False, table_column=Column(min_width=width)),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
        )
        self.task = self.progress.add_task("benchmarks", total=total)

    def show(self, description: str) -> None:
        """Draw the bar (one line) under ``description``: the step about to run."""
        self.progress.update(self.task, description=description)
        console.print(self.progress.make_tasks_table(self.progress.tasks))

    def advance(self) -> None:
        """One more step done."""
        self.progress.advance(self.task)


def steps_text() -> str:
    """The steps by name (a plain run's, then the variants') and the tables no step re-makes,
    for ``--help``."""

    def names(title: str, items: list[str]) -> str:
        listed = textwrap.fill(
            ", ".join(items),
            width=88,
            initial_indent="  ",
            subsequent_indent="  ",
            break_on_hyphens=False,  # a step's name on one line
        )
        return f"{title}:\n{listed}\n"

    return "\n".join(
        [
            names("steps of a plain run", [s.name for s in STEPS]),
            names("variant steps (--extras, or named in --only)", [s.name for s in EXTRAS]),
            names(
                "tables in benchmarks/results no step re-makes (kept as they were run)",
                sorted(ONE_OFF_TABLES),
            ),
            "tables a step re-makes by another run than the committed one (its command cannot\n"
            "be re-run as a step):\n"
            + "".join(
                textwrap.fill(
                    f"{name}: {why}",
                    width=88,
                    initial_indent="  ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                )
                + "\n"
                for name, why in sorted(RUN_OTHERWISE.items())
            ),
            "--list shows each step's command (with --out-dir: as such a run runs it).",
        ]
    )


def main() -> int:
    """Run the selected steps; exit code 1 if any failed, 2 on bad arguments."""
    ap = argparse.ArgumentParser(
        description=__doc__,
        epilog=steps_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--only", default="", help="comma list of step names (default all)")
    ap.add_argument("--skip", default="", help="comma list of step names to leave out")
    ap.add_argument("--list", action="store_true", help="print the steps and exit")
    ap.add_argument(
        "--extras", action="store_true", help="also the variant tables (EXTRAS; hours more)"
    )
    ap.add_argument(
        "--bench-dir",
        type=Path,
        default=REPO.parent / "shared" / "benchmarks",
        help="folder of the routing instance sets (default ../shared/benchmarks)",
    )
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=None,
        help="write every table into this folder, not benchmarks/results (with --list: the "
        "commands such a run runs)",
    )
    args = ap.parse_args()
    if args.out_dir is None:  # the steps' own default folder: checked as a given one, first
        output_folder_default(ap, "--out-dir", RESULTS)
    every = STEPS + EXTRAS
    names = [s.name for s in every]
    only = set(comma_option(ap, "--only", args.only, "step", empty_ok=True))
    skip = set(comma_option(ap, "--skip", args.skip, "step", empty_ok=True))
    for option, asked in (("--only", only), ("--skip", skip)):
        if unknown := asked - set(names):  # said on stdout, naming no option
            ap.error(
                f"argument {option}: unknown step(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(names)}"
            )
    pool = every if (only or args.extras) else STEPS
    steps = [s for s in pool if (not only or s.name in only) and s.name not in skip]
    out_dir = None if args.out_dir is None else args.out_dir.resolve()
    if out_dir is not None:
        refused = out_dir_refusals(steps)
        if refused:
            console.print("\n".join(refused), markup=False, highlight=False)
            return 2
        if out_dir.exists() and not out_dir.is_dir():
            console.print(f"--out-dir: {out_dir} is not a folder", markup=False)
            return 2
    if args.list:  # a full disk (``> /dev/full``): one error line, exit 1 (run_script)
        for s in steps:
            print(f"{s.name}: {shlex.join(s.command(args.bench_dir, out_dir))}")
        return 0
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        cache = RESULTS / HINDSIGHT_CACHE
        uses_cache = any(s.script == "rl_evaluate.py" for s in steps)
        if uses_cache and cache.is_file() and not (out_dir / HINDSIGHT_CACHE).exists():
            shutil.copy2(cache, out_dir / HINDSIGHT_CACHE)
            console.print(f"copied {HINDSIGHT_CACHE} into {out_dir} (its days are re-used)")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill: as Ctrl-C
    failed: list[str] = []
    finished: list[str] = []
    t0 = time.perf_counter()
    heads = [f"step {i + 1} of {len(steps)}: {s.name}" for i, s in enumerate(steps)]
    bar = StepsBar(len(steps), max(map(len, heads), default=0))
    try:
        for i, s in enumerate(steps):
            bar.show(heads[i])
            if s.needs is not None and not (args.bench_dir / s.needs).is_dir():
                console.print(f"{s.name}: skipped ({args.bench_dir / s.needs} not found)")
            elif _run(s, args.bench_dir, out_dir) != 0:
                failed.append(s.name)
            finished.append(s.name)
            bar.advance()
    except KeyboardInterrupt:
        stopped = steps[len(finished)]
        console.print(
            f"interrupted in step {len(finished) + 1} of {len(steps)}, {stopped.name} "
            f"(its own stop ran); steps finished: {', '.join(finished) or 'none'}, "
            "their tables kept",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return 130
    bar.show("benchmarks")
    console.print(f"done in {(time.perf_counter() - t0) / 60:.0f} min; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_script(main))
