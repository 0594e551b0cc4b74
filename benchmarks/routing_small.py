"""Small routing days: wall time and plan cost of ``solve_routes`` with the stall stop and without.

An OMS asks for routes of one or two orders too, and wants them fast. Neither guided local
search (OR-Tools) nor PyVRP's iterated local search ends by itself: before session 66 a day
of one order took its whole time limit. The engines now stop their search once it has
stalled (``ortools_engine.STALL_STOP``: solutions in a row without a new best;
``pyvrp_engine.STALL_STOP``: iterations in a row without one; see ``docs/routing.md``).
For each seeded day this solves the same request twice in one process, with the stop and
with it switched off (the switch is a module constant the script sets for the run, not a
request parameter), at the same time limit and one worker, and reports per order count the
wall times (median, most) and how often the plan with the stop cost more, less or the same::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/routing_small.py \\
        --engine ortools --orders 1,2,3,5,8,12,20 --seeds 0..4 --time-limit 10 \\
        --out-prefix routing-small-ortools

writes ``benchmarks/results/<out-prefix>.csv`` (one row per day and variant) and ``.md``. The
days are ``generate_city`` days (``num_nodes=2``, ``num_couriers=max(2, orders // 5)``;
couriers with breaks, skills, three capacity dimensions) routed as generated, or with
``--jobs pickup`` as pickup-and-delivery jobs from each order's nearest node
(``benchmarks/routing.py``'s ``nearest_node_jobs``, ``num_nodes=3``). The wall times are
worth quoting only under the exclusive lock (``flock -x``); the costs do not depend on the
machine where both searches stop before the clock.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402

from benchmarks.measures import (  # noqa: E402
    command_line,
    count_list_arg,
    dict_csv_text,
    output_folder_arg,
    progress_bar,
    provenance,
    run_script,
    seconds_arg,
    seeds_arg,
    table_name_arg,
    write_table_files,
)
from scenarios.generate import generate_city  # noqa: E402
from scenarios.model import Scenario  # noqa: E402
from solvers.routing import RoutingParams, solve_routes_with_stats  # noqa: E402

#: the engine module holding each engine's stall switch (a module-level ``STALL_STOP``)
ENGINE_MODULES = {
    "ortools": "solvers.routing.engines.ortools_engine",
    "pyvrp": "solvers.routing.engines.pyvrp_engine",
}
#: the two variants compared: the stall stop on, and off (the search runs to its clock)
VARIANTS = {"stop": True, "no stop": False}
JOBS = ("delivery", "pickup")
COLUMNS = [
    "jobs",
    "orders",
    "seed",
    "variant",
    "wall_s",
    "cost_cents",
    "distance_m",
    "unassigned",
    "plan_engine",
    "stalled",
    "detail",
]
console = Console(stderr=True)


def day(orders: int, seed: int, jobs: str) -> Scenario:
    """The seeded small city day (pickup: its orders as jobs from their nearest node)."""
    if jobs == "pickup":
        from benchmarks.routing import nearest_node_jobs

        city = generate_city(
            seed=seed, num_orders=orders, num_nodes=3, num_couriers=max(2, orders // 5)
        )
        return nearest_node_jobs(city)
    return generate_city(
        seed=seed, num_orders=orders, num_nodes=2, num_couriers=max(2, orders // 5)
    )


#: what each engine's ``stats.detail`` says when the stall stop ended its search
STALL_WORDS = ("without improvement", "without a solution", "(stalled)")


def measure(scenario: Scenario, engine: str, limit_s: float, stop: bool) -> dict[str, str]:
    """One solve with the engine's stall stop on or off: wall time, cost, why it stopped."""
    module = importlib.import_module(ENGINE_MODULES[engine])
    saved = getattr(module, "STALL_STOP")  # noqa: B009 (a module chosen at run time)
    setattr(module, "STALL_STOP", stop)  # noqa: B010
    try:
        t0 = time.perf_counter()
        plan, stats = solve_routes_with_stats(
            scenario, RoutingParams(engine=engine, time_limit_s=limit_s, seed=0, num_workers=1)
        )
        wall = time.perf_counter() - t0
    finally:
        setattr(module, "STALL_STOP", saved)  # noqa: B010
    detail = stats.detail or ""
    return {
        "wall_s": f"{wall:.3f}",
        "cost_cents": str(plan.cost_cents),
        "distance_m": str(plan.distance_m),
        "unassigned": str(len(plan.unassigned)),
        "plan_engine": str(plan.engine),
        "stalled": str(any(why in detail for why in STALL_WORDS)),
        "detail": detail,
    }


def summary(rows: list[dict[str, str]]) -> list[str]:
    """Per jobs and order count: wall times of both variants, and the stop's plans against
    the others' (cheaper / same / dearer, the largest difference)."""
    out = [
        "| jobs | orders | days | stalled | wall with stop: median / most (s) | "
        "wall without: median / most (s) | plans with stop: cheaper / same / dearer | "
        "most dearer (cents) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["jobs"], int(r["orders"])) for r in rows})
    for jobs, orders in keys:
        mine = [r for r in rows if r["jobs"] == jobs and int(r["orders"]) == orders]
        on = {r["seed"]: r for r in mine if r["variant"] == "stop"}
        off = {r["seed"]: r for r in mine if r["variant"] == "no stop"}
        seeds = sorted(set(on) & set(off), key=int)
        diffs = [int(on[s]["cost_cents"]) - int(off[s]["cost_cents"]) for s in seeds]
        wall_on = [float(on[s]["wall_s"]) for s in seeds]
        wall_off = [float(off[s]["wall_s"]) for s in seeds]
        out.append(
            f"| {jobs} | {orders} | {len(seeds)} | "
            f"{sum(on[s]['stalled'] == 'True' for s in seeds)} | "
            f"{statistics.median(wall_on):.2f} / {max(wall_on):.2f} | "
            f"{statistics.median(wall_off):.2f} / {max(wall_off):.2f} | "
            f"{sum(d < 0 for d in diffs)} / {sum(d == 0 for d in diffs)} / "
            f"{sum(d > 0 for d in diffs)} | {max([0, *diffs])} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Solve every day with and without the stall stop and write the tables."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--engine",
        choices=sorted(ENGINE_MODULES),
        default="ortools",
        help="the engine solved with and without the stall stop",
    )
    ap.add_argument(
        "--orders", type=count_list_arg, default=[1, 2, 3, 5, 8, 12, 20], help="comma list"
    )
    ap.add_argument("--seeds", type=seeds_arg, default=list(range(5)), help="A..B or A,B,C")
    ap.add_argument(
        "--jobs", choices=JOBS, default="delivery", help="delivery days or pickup-and-delivery days"
    )
    ap.add_argument("--time-limit", type=seconds_arg, default=10.0, help="of each solve (s)")
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(REPO / "benchmarks" / "results"),
        help="where the table goes (default benchmarks/results)",
    )
    ap.add_argument(
        "--out-prefix",
        type=table_name_arg,
        default="routing-small",
        help="file name of the table, without .md/.csv",
    )
    args = ap.parse_args(argv)
    made = provenance()  # when, which code, which machine: as the run starts
    rows: list[dict[str, str]] = []
    total = len(args.orders) * len(args.seeds) * len(VARIANTS)
    try:
        with progress_bar(console) as bar:
            task = bar.add_task(f"Small days, {args.engine}", total=total)
            for orders in args.orders:
                for seed in args.seeds:
                    scenario = day(orders, seed, args.jobs)
                    for variant, stop in VARIANTS.items():
                        got = measure(scenario, args.engine, args.time_limit, stop)
                        rows.append(
                            {"jobs": args.jobs, "orders": str(orders), "seed": str(seed)}
                            | {"variant": variant}
                            | got
                        )
                        bar.advance(task)
    except KeyboardInterrupt:  # was a traceback
        console.print(f"interrupted after {len(rows)} of {total} solves: no table written")
        return 130
    base = args.out_dir / args.out_prefix
    lines = [
        f"# Small routing days: {args.engine} with the stall stop and without",
        "",
        f"Command: `{command_line(ap, argv, 'routing_small.py')}`",
        "",
        made,
        "",
        f"Each day solved twice in one process, `engine={args.engine!r}`, `seed=0`, one worker, "
        f"`time_limit_s={args.time_limit:g}`: with the stall stop ('stop') and with "
        "`STALL_STOP = False` ('no stop', the search runs to its clock). Wall time of "
        "`solve_routes_with_stats` (the first solve of the process includes its warm-up); "
        "'stalled': days whose search the stop ended; cheaper / same / dearer: the stop's plan "
        "against the other's, cost in cents.",
        "",
        *summary(rows),
        "",
        "| " + " | ".join(c for c in COLUMNS if c != "detail") + " |",
        "|" + "---|" * (len(COLUMNS) - 1),
    ]
    lines += ["| " + " | ".join(r[c] for c in COLUMNS if c != "detail") + " |" for r in rows]
    lines += ["", "Details (`stats.detail`):", ""]
    lines += [f"- {r['orders']} seed {r['seed']} {r['variant']}: {r['detail']}" for r in rows]
    write_table_files(
        base.parent,
        {
            base.with_suffix(".csv").name: dict_csv_text(COLUMNS, rows),
            base.with_suffix(".md").name: "\n".join(lines) + "\n",
        },
    )
    console.print(f"wrote {base}.csv and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
