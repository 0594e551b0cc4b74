"""Routing time limits: wall time of ``solve_routes`` against its budget on generated city days.

An OMS that calls with ``time_limit_s`` needs the plan within it. For each order count, budget
and engine this solves one seeded ``generate_city`` day (couriers with breaks, skills, three
capacity dimensions; nodes and couriers as in ``benchmarks/routing.py --set city``), with a
fresh travel model so the matrices are built inside the budget, and reports the wall time of
the call, how far it went over the budget, where the time went, the CPU time of the call
(``cpu_s``: this process's, so the figure holds on a loaded machine where the wall time does
not), the orders served, and whether the budget bound (``budget_binds``: the construction
stopped at its deadline, leaving orders not placed, or the answer came past the budget)::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/routing_budget.py \\
        --orders 600,1500,2400 --budgets 0.3,1,3,10 --engines pyvrp,ortools \\
        --out-prefix routing-budget

writes ``benchmarks/results/<out-prefix>.csv`` and ``.md`` (``--seed 1,2,3``: one day per
seed). On a shared machine the wall times are indicative: take the lock exclusively
(``flock -x``) for wall times worth quoting.

At scale, with a larger fleet (``--couriers-per-1000``), the current generator's days
(``--generator-version 2``: shifts that cover every order) and each solve repeated
(``--repeat``: the ``run`` column; the first solve of a day also builds the road graph's
shortest-path rows, which later solves of the same day find cached)::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/routing_budget.py \\
        --orders 1000,5000,10000 --budgets 1,2,5,10,30 --engines auto \\
        --couriers-per-1000 100 --generator-version 2 --out-prefix routing-budget-scale
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.measures import (  # noqa: E402
    comma_list,
    command_line,
    ctrl_c_writes_nothing,
    dict_csv_text,
    output_folder_arg,
    progress_bar,
    provenance,
    run_script,
    seed_arg,
    table_name_arg,
    write_table_files,
)
from scenarios.generate import CityParams, generate_city  # noqa: E402
from scenarios.model import Scenario  # noqa: E402
from solvers.routing import RoutingParams, solve_routes_with_stats  # noqa: E402
from solvers.routing.solve import LATE  # noqa: E402

#: generated city sizes: orders -> (nodes, couriers), as in benchmarks/routing.py
CITY_SIZES = {10: (3, 2), 1_000: (10, 40), 10_000: (25, 300), 50_000: (40, 800)}


def city(
    orders: int,
    seed: int,
    *,
    couriers_per_1000: int | None = None,
    generator_version: Literal[1, 2] = 1,
) -> Scenario:
    """The seeded city day of ``orders`` orders (nodes and couriers grow with it; with
    ``couriers_per_1000``, that many couriers per 1,000 orders)."""
    nodes, couriers = CITY_SIZES.get(orders, (max(3, orders // 400), max(2, orders // 25)))
    if couriers_per_1000 is not None:
        couriers = max(2, orders * couriers_per_1000 // 1000)
    # version 1 (the default): the stored tables' fleets
    params = CityParams(generator_version=generator_version)
    return generate_city(
        seed=seed, num_orders=orders, num_nodes=nodes, num_couriers=couriers, params=params
    )


def fresh(scenario: Scenario) -> Scenario:
    """The scenario with a new travel model (no cached matrices)."""
    travel = type(scenario.travel).model_validate(scenario.travel.model_dump())
    return scenario.model_copy(update={"travel": travel})


def measure(
    scenario: Scenario, engine: str, budget_s: float, seed: int, run: int = 1
) -> dict[str, str]:
    """One solve (fresh travel model): wall and CPU time against the budget, where the time
    went, whether the budget bound."""
    params = RoutingParams(engine=engine, time_limit_s=budget_s, seed=seed)
    cpu = time.process_time()
    t = time.perf_counter()
    plan, stats = solve_routes_with_stats(fresh(scenario), params)
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu
    not_placed = sum(u.detail == LATE for u in plan.unassigned)
    return {
        "orders": str(len(scenario.orders)),
        "seed": str(seed),
        "engine_asked": engine,
        "budget_s": f"{budget_s:g}",
        "run": str(run),
        "wall_s": f"{wall:.3f}",
        "cpu_s": f"{cpu:.3f}",
        "over_s": f"{wall - budget_s:+.3f}",
        "within": str(wall <= budget_s),
        "budget_binds": str(not_placed > 0 or stats.late is not None),
        "plan_engine": str(plan.engine),
        "served": str(len(scenario.orders) - len(plan.unassigned)),
        "unassigned": str(len(plan.unassigned)),
        "cost_cents": str(plan.cost_cents),
        "build_s": f"{stats.build_s:.3f}",
        "greedy_s": f"{stats.greedy_s:.3f}",
        "search_s": f"{stats.engine_s:.3f}",
        "repair_s": f"{stats.repair_s:.3f}",
        "decode_s": f"{stats.decode_s:.3f}",
        "validate_s": f"{stats.validate_s:.3f}",
        "note": "; ".join(x for x in [stats.fallback, stats.detail, *stats.notes] if x),
    }


T = TypeVar("T")
ENGINES = ("auto", "pyvrp", "ortools", "greedy")


def _comma_list(text: str, parse: Callable[[str], T], what: str) -> list[T]:
    """A non-empty comma-separated list (argparse type: a bad item is a usage error, exit 2)."""
    items = comma_list(text, "value")
    out = []
    for item in items:
        try:
            out.append(parse(item))
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(f"{item!r} is not {what}") from None
    return out


def _order_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _budget(text: str) -> float:
    value = float(text)
    if not 0.0 < value < math.inf:
        raise ValueError(text)
    return value


def _engine(text: str) -> str:
    if text not in ENGINES:
        raise ValueError(text)
    return text


@ctrl_c_writes_nothing  # Ctrl-C: a KeyboardInterrupt traceback
def main(argv: list[str] | None = None) -> int:
    """Run the grid and write the CSV and Markdown tables."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--orders",
        type=lambda t: _comma_list(t, _order_count, "a positive order count"),
        default="600,1500",
        help="comma list of order counts",
    )
    ap.add_argument(
        "--budgets",
        type=lambda t: _comma_list(t, _budget, "a positive number of seconds"),
        default="0.3,1,3",
        help="comma list of time limits (s)",
    )
    ap.add_argument(
        "--engines",
        type=lambda t: _comma_list(t, _engine, f"an engine ({', '.join(ENGINES)})"),
        default="pyvrp,ortools",
        help="comma list of engines",
    )
    ap.add_argument(
        "--seed",
        type=lambda t: _comma_list(t, seed_arg, "a non-negative integer seed"),
        default="1",
        help="comma list of seeds: one day (and solver seed) each",
    )
    ap.add_argument(
        "--couriers-per-1000",
        type=lambda t: _comma_list(t, _order_count, "a positive courier count")[0],
        default=None,
        help="couriers per 1,000 orders (default: the sizes of benchmarks/routing.py)",
    )
    ap.add_argument(
        "--generator-version",
        type=int,
        choices=(1, 2),
        default=1,
        help="generate_city's version (1: the stored tables' fleets)",
    )
    ap.add_argument(
        "--repeat",
        type=lambda t: _comma_list(t, _order_count, "a positive number of runs")[0],
        default=1,
        help="solves per order count, seed, engine and budget",
    )
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(REPO / "benchmarks" / "results"),
        help="where the table goes (default benchmarks/results)",
    )
    ap.add_argument(
        "--out-prefix",
        type=table_name_arg,
        default="routing-budget",
        help="file name of the table, without .md/.csv",
    )
    args = ap.parse_args(argv)
    made = provenance()  # when, which code, which machine: as the run starts
    rows: list[dict[str, str]] = []
    solves = len(args.orders) * len(args.seed) * len(args.engines) * len(args.budgets)
    # a bar on stderr, drawn between the solves (none drawn while one is timed)
    with progress_bar(timed=True) as bar:
        task = bar.add_task("solves", total=solves * args.repeat)
        for n in args.orders:
            for seed in args.seed:
                scenario = city(
                    n,
                    seed,
                    couriers_per_1000=args.couriers_per_1000,
                    generator_version=args.generator_version,
                )
                for engine in args.engines:
                    for budget in args.budgets:
                        for run in range(1, args.repeat + 1):
                            row = measure(scenario, engine, budget, seed, run)
                            rows.append(row)
                            print(
                                f"{n} orders, seed {seed}, {engine} @ {budget:g} s (run {run}): "
                                f"wall {row['wall_s']} s ({row['over_s']}), CPU {row['cpu_s']} s, "
                                f"served {row['served']}, {row['plan_engine']}",
                                file=sys.stderr,
                                flush=True,
                            )
                            bar.update(task, advance=1, refresh=True)
    base = Path(args.out_dir) / args.out_prefix
    cols = [c for c in rows[0] if c != "note"]
    lines = [
        "# Routing time limits: wall time against the budget",
        "",
        f"Command: `{command_line(ap, argv, 'routing_budget.py')}`",
        "",
        made,
        "",
        "One `solve_routes_with_stats` per row (fresh travel model: the day's first solve "
        "also computes the road graph's shortest-path rows, which later solves of the day find "
        "cached), seeded city day; `cpu_s` is this process's CPU time over the call.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    lines += ["", "Notes:", ""]
    lines += [
        f"- {r['orders']} seed {r['seed']} {r['engine_asked']} @ {r['budget_s']} s"
        f"{'' if args.repeat == 1 else ' run ' + r['run']}: {r['note']}"
        for r in rows
    ]
    write_table_files(
        base.parent,
        {
            base.with_suffix(".csv").name: dict_csv_text(list(rows[0]), rows),
            base.with_suffix(".md").name: "\n".join(lines) + "\n",
        },
    )
    print(f"wrote {base}.csv and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
