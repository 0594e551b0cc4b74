"""Driver breaks and the objective: ``solve_routes`` against brute force on tiny seeded cases.

Each case is a seeded tiny scenario: 1-2 vehicles at one depot, 2-6 mandatory orders (some
with a time window, some with service time), each vehicle with 1-2 breaks whose windows are
drawn over its shift, priced per hour, per km and per vehicle. The optimum is brute force:
every assignment of the orders to the vehicles and every order of the visits of each route,
each scheduled by the project's exact break scheduler (``schedule_route``) and priced by the
plan objective (milli-cents). Each engine's plan is priced the same way (its routes'
sequences rescheduled) and compared::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/routing_breaks_fuzz.py \\
        --cases 300 --seed 1 --engines pyvrp,ortools --out-prefix routing-breaks-fuzz

writes ``benchmarks/results/<out-prefix>.csv`` (one row per case and engine) and ``.md`` (per
engine: cases over 1.05x the optimum, the largest ratio, cases with an order left out that
brute force serves). PyVRP runs ``--pyvrp-iterations`` iterations (the plan is a function of
the seed), OR-Tools ``--ortools-time`` seconds (its search stops on the clock). Ctrl-C writes
the cases every engine has run (exit status 130).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402

from benchmarks.measures import (  # noqa: E402
    comma_list,
    command_line,
    count_arg,
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
from scenarios import (  # noqa: E402
    Break,
    EuclideanTravel,
    Location,
    Order,
    Scenario,
    TimeWindow,
    Vehicle,
)
from scenarios.plan import Plan, StopKind  # noqa: E402
from solvers.routing import RoutingParams, build_problem, solve_routes_with_stats  # noqa: E402
from solvers.routing.problem import RoutingProblem  # noqa: E402
from solvers.routing.schedule import schedule_route  # noqa: E402
from solvers.validate import validate_plan  # noqa: E402

ENGINES = ("pyvrp", "ortools", "greedy")
#: a plan counts as mispriced above this ratio to the optimum
THRESHOLD = 1.05


def make_case(seed: int, index: int) -> Scenario:
    """The seeded tiny scenario number ``index``."""
    rng = random.Random(seed * 1_000_003 + index)
    depot = Location(x=5000, y=5000)
    n_vehicles = rng.randint(1, 2)
    n_orders = rng.randint(2, 6)
    orders = []
    for i in range(n_orders):
        window = None
        if rng.random() < 0.5:
            start = rng.randrange(0, 20_000, 300)
            window = TimeWindow(start_s=start, end_s=start + rng.choice([1800, 3600, 7200]))
        orders.append(
            Order(
                id=f"o{i}",
                location=Location(x=rng.randrange(0, 10_001, 500), y=rng.randrange(0, 10_001, 500)),
                demand=[1],
                service_s=rng.choice([0, 300, 600]),
                time_windows=[] if window is None else [window],
            )
        )
    vehicles = []
    for k in range(n_vehicles):
        shift_end = rng.choice([14_400, 21_600, 28_800])
        breaks = []
        for _ in range(rng.randint(1, 2)):
            start = rng.randrange(0, shift_end - 3600, 300)
            width = rng.choice([0, 600, 1800, 3600])
            breaks.append(
                Break(
                    window=TimeWindow(start_s=start, end_s=min(start + width, shift_end)),
                    duration_s=rng.choice([600, 1200, 1800]),
                )
            )
        vehicles.append(
            Vehicle(
                id=f"v{k}",
                start_location=depot,
                capacity=[rng.choice([3, 6])],
                shift=TimeWindow(start_s=0, end_s=shift_end),
                fixed_cost_cents=rng.choice([0, 500]),
                cost_per_km_cents=rng.choice([50, 100]),
                cost_per_hour_cents=rng.choice([1000, 2000, 3000]),
                breaks=breaks,
            )
        )
    return Scenario(
        name=f"breaks-fuzz-{seed}-{index}",
        horizon=TimeWindow(start_s=0, end_s=28_800),
        travel=EuclideanTravel(speed_m_per_s=8.0),
        orders=orders,
        vehicles=vehicles,
    )


def best_routes(problem: RoutingProblem) -> tuple[int, dict[int, list[int]]] | None:
    """The cheapest plan serving every order (objective, vehicle -> tasks), by brute force
    over assignments and visit orders; None when no plan serves them all."""
    n = len(problem.orders)
    nv = len(problem.vehicles)
    # the cheapest sequence of each (vehicle, subset of orders); orders are delivery-only
    best: list[dict[int, tuple[int, list[int]]]] = []
    for v in range(nv):
        table: dict[int, tuple[int, list[int]]] = {0: (0, [])}
        for mask in range(1, 1 << n):
            members = [o for o in range(n) if mask >> o & 1]
            for perm in itertools.permutations(members):
                seq = [problem.orders[o].delivery for o in perm]
                sched = schedule_route(problem, v, seq)
                if sched.violation is None and (mask not in table or sched.cost < table[mask][0]):
                    table[mask] = (sched.cost, seq)
        best.append(table)
    full = (1 << n) - 1
    answer: tuple[int, dict[int, list[int]]] | None = None
    for split in itertools.product(range(nv), repeat=n):
        masks = [0] * nv
        for o, v in enumerate(split):
            masks[v] |= 1 << o
        if any(m not in best[v] for v, m in enumerate(masks)):
            continue
        cost = sum(best[v][m][0] for v, m in enumerate(masks))
        if answer is None or cost < answer[0]:
            answer = (cost, {v: best[v][m][1] for v, m in enumerate(masks) if m})
    assert answer is None or sum(len(s) for s in answer[1].values()) == full.bit_count()
    return answer


def plan_value(problem: RoutingProblem, plan: Plan) -> tuple[int, int]:
    """(orders left out, objective of the routes in milli-cents) of a plan, its routes'
    sequences rescheduled as ``solve_routes`` schedules them."""
    vindex = {v.vehicle.id: i for i, v in enumerate(problem.vehicles)}
    cost = 0
    served = 0
    for route in plan.routes:
        seq = []
        for stop in route.stops:
            if stop.kind is StopKind.BREAK or stop.order_id is None:
                continue
            o = problem.order_index(stop.order_id)
            assert o is not None
            seq.append(problem.orders[o].delivery)
        if not seq:
            continue
        sched = schedule_route(problem, vindex[route.vehicle_id], seq)
        assert sched.violation is None, sched.violation
        cost += sched.cost
        served += len(seq)
    return len(problem.orders) - served, cost


#: the per-case CSV's columns (:meth:`Row.cells`)
CSV_FIELDS = [
    "case",
    "engine",
    "vehicles",
    "orders",
    "breaks",
    "optimum_millicents",
    "cost_millicents",
    "left_out",
    "ratio",
    "valid",
    "wall_s",
]


@dataclass
class Row:
    """One case solved by one engine."""

    case: int
    engine: str
    vehicles: int
    orders: int
    breaks: int
    optimum: int
    cost: int
    left_out: int
    ratio: float
    valid: bool
    wall_s: float

    def cells(self) -> dict[str, str]:
        """The CSV row (its columns: :data:`CSV_FIELDS`)."""
        return {
            "case": str(self.case),
            "engine": self.engine,
            "vehicles": str(self.vehicles),
            "orders": str(self.orders),
            "breaks": str(self.breaks),
            "optimum_millicents": str(self.optimum),
            "cost_millicents": str(self.cost),
            "left_out": str(self.left_out),
            "ratio": f"{self.ratio:.4f}",
            "valid": str(self.valid),
            "wall_s": f"{self.wall_s:.3f}",
        }


def run_case(scenario: Scenario, index: int, engine: str, args: argparse.Namespace) -> Row | None:
    """One engine on one case against brute force (None when no plan serves every order)."""
    problem = build_problem(scenario)
    best = best_routes(problem)
    if best is None:
        return None
    params = RoutingParams(
        engine=engine,
        seed=args.seed,
        time_limit_s=args.ortools_time if engine == "ortools" else 30.0,
        max_iterations=args.pyvrp_iterations if engine == "pyvrp" else None,
    )
    t = time.perf_counter()
    plan, _ = solve_routes_with_stats(scenario, params)
    wall = time.perf_counter() - t
    left, cost = plan_value(problem, plan)
    return Row(
        case=index,
        engine=engine,
        vehicles=len(scenario.vehicles),
        orders=len(scenario.orders),
        breaks=sum(len(v.breaks) for v in scenario.vehicles),
        optimum=best[0],
        cost=cost,
        left_out=left,
        ratio=cost / best[0] if not left and best[0] else float("nan") if left else 1.0,
        valid=validate_plan(scenario, plan).ok,
        wall_s=wall,
    )


def summary(rows: list[Row], engine: str) -> dict[str, str]:
    """Per engine: cases, over the threshold, largest ratio, plans with orders left out."""
    mine = [r for r in rows if r.engine == engine]
    complete = [r for r in mine if not r.left_out]
    ratios = [r.ratio for r in complete]
    return {
        "engine": engine,
        "cases": str(len(mine)),
        f"over_{THRESHOLD:g}x": str(sum(r > THRESHOLD for r in ratios)),
        "at_optimum": str(sum(r <= 1.0 + 1e-9 for r in ratios)),
        "max_ratio": f"{max(ratios):.3f}" if ratios else "-",
        "mean_ratio": f"{statistics.fmean(ratios):.4f}" if ratios else "-",
        "left_out_cases": str(len(mine) - len(complete)),
        "invalid": str(sum(not r.valid for r in mine)),
        "mean_wall_s": f"{statistics.fmean(r.wall_s for r in mine):.3f}" if mine else "-",
    }


def _engines(text: str) -> list[str]:
    items = comma_list(text, "engine")
    for item in items:
        if item not in ENGINES:
            raise argparse.ArgumentTypeError(f"{item!r} is not an engine ({', '.join(ENGINES)})")
    return items


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


@ctrl_c_writes_nothing  # a second Ctrl-C, as the cases done are summed up or written
def main(argv: list[str] | None = None) -> int:
    """Run the cases and write the CSV and Markdown tables."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", type=count_arg, default=300, help="random cases per engine")
    ap.add_argument("--seed", type=seed_arg, default=1, help="seeds the cases and the engines")
    ap.add_argument(
        "--engines",
        type=_engines,
        default="pyvrp,ortools",
        help="comma list of engines (pyvrp, ortools, greedy)",
    )
    ap.add_argument(
        "--pyvrp-iterations",
        type=count_arg,
        default=200,
        help="PyVRP iterations per case (a seeded stop)",
    )
    ap.add_argument("--ortools-time", type=_positive, default=2.0, help="seconds")
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(REPO / "benchmarks" / "results"),
        help="where the table goes (default benchmarks/results)",
    )
    ap.add_argument(
        "--out-prefix",
        type=table_name_arg,
        default="routing-breaks-fuzz",
        help="file name of the table, without .md/.csv",
    )
    args = ap.parse_args(argv)
    made = provenance()  # when, which code, which machine: as the run starts
    console = Console(stderr=True)
    rows: list[Row] = []
    infeasible = 0
    done = 0  # cases run with every engine (Ctrl-C keeps those, the engines paired)
    with progress_bar(console) as bar:
        task = bar.add_task("cases", total=args.cases * len(args.engines))
        try:
            for index in range(args.cases):
                scenario = make_case(args.seed, index)
                case: list[Row] = []
                for engine in args.engines:
                    row = run_case(scenario, index, engine, args)
                    if row is None:
                        infeasible += 1
                        bar.advance(task, len(args.engines))
                        break
                    case.append(row)
                    bar.advance(task)
                rows += case
                done += 1
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted: writing the {done} cases done[/]")
    if done == 0:  # interrupted in the first case: no table (the last one stays)
        return 130
    base = Path(args.out_dir) / args.out_prefix
    sums = [summary(rows, e) for e in args.engines]
    cols = list(sums[0])
    lines = [
        "# Driver breaks: solve_routes against brute force",
        "",
        f"Command: `{command_line(ap, argv, 'routing_breaks_fuzz.py')}`",
        "",
        made,
        "",
        f"{done} seeded cases"
        + (f" (interrupted: {done} of {args.cases})" if done < args.cases else "")
        + f", {done - infeasible} where some plan serves every "
        "order (the others are left out). Optimum: every assignment and visit order, each "
        "scheduled by the exact break scheduler and priced by the plan objective. Ratios are "
        f"over the plans that serve every order; `over_{THRESHOLD:g}x` counts those above "
        f"{THRESHOLD:g}x the optimum, `left_out_cases` the plans that leave an order out.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(s[c] for c in cols) + " |" for s in sums]
    worst = sorted((r for r in rows if not r.left_out), key=lambda r: -r.ratio)[:5]
    if worst:
        lines += ["", "Largest ratios:", ""]
        lines += [
            f"- case {r.case} ({r.engine}, {r.vehicles} vehicles, {r.orders} orders, "
            f"{r.breaks} breaks): {r.ratio:.3f}x"
            for r in worst
        ]
    # both files, the CSV only a header when no case had a plan serving every order (the
    # markdown alone was written then, beside the last run's CSV)
    files = {
        base.with_suffix(".csv").name: dict_csv_text(CSV_FIELDS, (r.cells() for r in rows)),
        base.with_suffix(".md").name: "\n".join(lines) + "\n",
    }
    write_table_files(base.parent, files)
    console.print("\n".join(lines[8:]))
    console.print(f"wrote {base}.csv and .md")
    return 0 if done == args.cases else 130


if __name__ == "__main__":
    raise SystemExit(run_script(main))
