"""Routing benchmark: our solve_routes against BKS, with raw PyVRP / OR-Tools / VROOM anchors.

One command reproduces a table::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/routing.py \\
        --set solomon --engine auto --time-limit 5 --workers 2 --anchors pyvrp,ortools,vroom \\
        --bench-dir ../shared/benchmarks --out-prefix routing-solomon-5s

writes ``benchmarks/results/<out-prefix>.csv`` (one row per instance and solver) and
``<out-prefix>.md`` (summary per solver + per-instance table). Distances are in the source's
units (DIMACS one-decimal truncation for Solomon/Homberger, rounded integers for CVRPLIB,
seconds for EURO-NeurIPS, thousandths-rounded Euclidean for Li & Lim); the gap is to
``dimacs_distance`` (Solomon/Homberger) or ``distance`` (others) in the set's ``bks.csv``.

Anchors run the engines *raw* on the very same integer data, one thread each, without our
layer: PyVRP ``solve`` with default parameters; OR-Tools with its default first solution
(PATH_CHEAPEST_ARC) and guided local search; VROOM (pyvroom) at exploration level 5
(``--vroom-level``), no time limit (VROOM has none; its runtime is reported).
"""

from __future__ import annotations

import argparse
import csv
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from scenarios.io import load_scenario  # noqa: E402
from scenarios.model import Scenario  # noqa: E402
from solvers.routing import RoutingParams, build_problem, solve_routes_with_stats  # noqa: E402
from solvers.routing.problem import RoutingProblem  # noqa: E402
from solvers.routing.schedule import schedule_route  # noqa: E402
from solvers.validate import validate_plan  # noqa: E402

SETS = {
    "solomon": ("solomon", "*.txt", "dimacs_distance"),
    "homberger200": ("homberger200", "*.txt", "dimacs_distance"),
    "homberger400": ("homberger400", "*.txt", "dimacs_distance"),
    "lilim": ("lilim", "*.txt", "distance"),
    "cvrplib_x": ("cvrplib_x", "*.vrp", "distance"),
    "euro_neurips": ("euro_neurips_2022", "*.txt", "distance"),
}


@dataclass
class Row:
    """One instance solved by one solver."""

    instance: str
    solver: str
    feasible: bool
    distance: float | None
    vehicles: int | None
    runtime_s: float
    bks: float | None
    bks_vehicles: int | None
    overhead_s: float | None = None
    unassigned: int = 0
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def gap_pct(self) -> float | None:
        """Gap to the reference distance, in percent."""
        if self.distance is None or not self.bks or not self.feasible:
            return None
        return 100.0 * (self.distance - self.bks) / self.bks


def _read_bks(folder: Path, column: str) -> dict[str, tuple[float, int | None]]:
    out: dict[str, tuple[float, int | None]] = {}
    path = folder / "bks.csv"
    if not path.exists():
        return out
    with path.open() as fh:
        for rec in csv.DictReader(fh):
            veh = rec.get("vehicles")
            out[rec["instance"].lower()] = (
                float(rec[column]),
                int(veh) if veh not in (None, "") else None,
            )
    return out


def _distance_of(problem: RoutingProblem, routes: dict[int, list[int]]) -> tuple[bool, int, int]:
    """(all served and feasible, distance, vehicles) of anchor routes, by our schedule."""
    served = {problem.tasks[t].order for seq in routes.values() for t in seq}
    ok = len(served) == len(problem.orders)
    dist = 0
    for v, seq in routes.items():
        sched = schedule_route(problem, v, seq)
        ok = ok and sched.violation is None
        dist += sched.distance_m
    return ok, dist, sum(1 for s in routes.values() if s)


# ----------------------------------------------------------------------------- anchors
def anchor_pyvrp(
    problem: RoutingProblem, limit: float, seed: int
) -> tuple[dict[int, list[int]], str]:
    """Raw PyVRP on the same data (default parameters, one thread)."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    from solvers.routing.engines.pyvrp_engine import build_data

    data, _, decode = build_data(problem)
    res = pyvrp.solve(data, stop=MaxRuntime(limit), seed=seed, collect_stats=False)
    if not res.best.is_feasible():
        return {}, "infeasible"
    return decode(res.best), ""


def anchor_ortools(
    problem: RoutingProblem, limit: float, seed: int
) -> tuple[dict[int, list[int]], str]:
    """Raw OR-Tools: PATH_CHEAPEST_ARC + guided local search, no seed solution, no drops."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    p = problem
    nv = len(p.vehicles)
    manager = pywrapcp.RoutingIndexManager(
        p.num_nodes, nv, [v.start_node for v in p.vehicles], [v.end_node for v in p.vehicles]
    )
    routing = pywrapcp.RoutingModel(manager)
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(p.distance.tolist()))
    service = [0] * p.num_nodes
    for t in p.tasks:
        service[t.node] = t.service_s
    tmat = (p.duration + [[s] for s in service]).tolist()
    horizon = max(v.shift[1] for v in p.vehicles)
    routing.AddDimension(routing.RegisterTransitMatrix(tmat), horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    for t in p.tasks:
        if t.windows:
            tdim.CumulVar(manager.NodeToIndex(t.node)).SetRange(t.windows[0][0], t.windows[-1][1])
    for vi, v in enumerate(p.vehicles):
        tdim.CumulVar(routing.Start(vi)).SetRange(v.shift[0], v.shift[1])
        tdim.CumulVar(routing.End(vi)).SetRange(v.shift[0], v.shift[1])
    change = [0] * p.num_nodes
    for t in p.tasks:
        info = p.orders[t.order]
        change[t.node] = info.demand[0] if info.from_depot else t.load_change[0]
    routing.AddDimensionWithVehicleCapacity(
        routing.RegisterUnaryTransitVector(change),
        0,
        [v.capacity[0] for v in p.vehicles],
        True,
        "load",
    )
    solver = routing.solver()
    for info in p.orders:
        if info.pickup is not None:
            pi = manager.NodeToIndex(p.tasks[info.pickup].node)
            di = manager.NodeToIndex(p.tasks[info.delivery].node)
            routing.AddPickupAndDelivery(pi, di)
            solver.Add(routing.VehicleVar(pi) == routing.VehicleVar(di))
            solver.Add(tdim.CumulVar(pi) <= tdim.CumulVar(di))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(limit * 1000))
    sol = routing.SolveWithParameters(params)
    if sol is None:
        return {}, "no solution"
    node_task = {t.node: i for i, t in enumerate(p.tasks)}
    out: dict[int, list[int]] = {}
    for vi in range(nv):
        idx = sol.Value(routing.NextVar(routing.Start(vi)))
        seq = []
        while not routing.IsEnd(idx):
            seq.append(node_task[manager.IndexToNode(idx)])
            idx = sol.Value(routing.NextVar(idx))
        if seq:
            out[vi] = seq
    return out, ""


def anchor_vroom(problem: RoutingProblem, level: int) -> tuple[dict[int, list[int]], str]:
    """Raw VROOM (pyvroom), one thread, at the given exploration level."""
    import vroom

    p = problem
    inp = vroom.Input()
    inp.set_durations_matrix(profile="car", matrix_input=p.duration.tolist())
    inp.set_costs_matrix(profile="car", matrix_input=p.distance.tolist())
    for vi, v in enumerate(p.vehicles):
        inp.add_vehicle(
            vroom.Vehicle(
                id=vi,
                start=v.start_node,
                end=v.end_node,
                capacity=list(v.capacity),
                time_window=vroom.TimeWindow(v.shift[0], v.shift[1]),
            )
        )
    ids: dict[int, int] = {}

    def tws(t: int) -> list[vroom.TimeWindow]:
        return [vroom.TimeWindow(lo, hi) for lo, hi in p.tasks[t].windows]

    for info in p.orders:
        if info.from_depot:
            t = info.delivery
            ids[t] = t
            inp.add_job(
                vroom.Job(
                    id=t,
                    location=p.tasks[t].node,
                    default_service=p.tasks[t].service_s,
                    delivery=list(info.demand),
                    time_windows=tws(t),
                )
            )
        else:
            assert info.pickup is not None
            pu, de = info.pickup, info.delivery
            inp.add_job(
                vroom.Shipment(
                    pickup=vroom.ShipmentStep(
                        id=pu,
                        location=p.tasks[pu].node,
                        default_service=p.tasks[pu].service_s,
                        time_windows=tws(pu),
                    ),
                    delivery=vroom.ShipmentStep(
                        id=de,
                        location=p.tasks[de].node,
                        default_service=p.tasks[de].service_s,
                        time_windows=tws(de),
                    ),
                    amount=list(info.demand),
                )
            )
    sol = inp.solve(exploration_level=level, nb_threads=1)
    routes: dict[int, list[int]] = {}
    df = sol.routes
    for rec in df.itertuples():
        if rec.type in ("job", "pickup", "delivery"):
            routes.setdefault(int(rec.vehicle_id), []).append(int(rec.id))
    return routes, ""


# ----------------------------------------------------------------------------- main
def run_ours(scenario: Scenario, args: argparse.Namespace) -> tuple[Row, float]:
    """Solve with our layer; returns the row (without BKS) and the divisor."""
    params = RoutingParams(
        engine=args.engine, time_limit_s=args.time_limit, seed=args.seed, num_workers=args.workers
    )
    t = time.perf_counter()
    plan, stats = solve_routes_with_stats(scenario, params)
    wall = time.perf_counter() - t
    _ = plan.model_dump_json()  # the JSON step counts in the overhead
    wall_json = time.perf_counter() - t
    check = validate_plan(scenario, plan)
    div = scenario.source.distance_divisor
    return (
        Row(
            instance=scenario.name,
            solver=f"ours:{stats.engine}" + (f"x{args.workers}" if args.workers > 1 else ""),
            feasible=check.ok and not plan.unassigned,
            distance=plan.distance_m / div,
            vehicles=plan.num_vehicles,
            runtime_s=wall_json,
            bks=None,
            bks_vehicles=None,
            overhead_s=wall_json - stats.engine_s,
            unassigned=len(plan.unassigned),
            note=stats.fallback or stats.detail,
        ),
        wall,
    )


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark set and write the CSV and markdown tables."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--set", required=True, choices=sorted(SETS))
    ap.add_argument(
        "--engine", default="auto", choices=["auto", "pyvrp", "ortools", "greedy", "none"]
    )
    ap.add_argument("--time-limit", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--anchors", default="", help="comma list of pyvrp,ortools,vroom")
    ap.add_argument("--vroom-level", type=int, default=5)
    ap.add_argument("--bench-dir", default=str(REPO.parent / "shared" / "benchmarks"))
    ap.add_argument("--instances", default="", help="comma list of instance names (default all)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N instances")
    ap.add_argument("--out-prefix", default="")
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    folder_name, pattern, ref_col = SETS[args.set]
    folder = Path(args.bench_dir) / folder_name
    files = sorted(folder.glob(pattern))
    if args.instances:
        wanted = {n.strip().lower() for n in args.instances.split(",")}
        files = [f for f in files if f.stem.lower() in wanted]
    if args.limit:
        files = files[: args.limit]
    if not files:
        print(f"no instances found in {folder}", file=sys.stderr)
        return 2
    bks = _read_bks(folder, ref_col)
    anchors = [a for a in args.anchors.split(",") if a]
    prefix = args.out_prefix or f"routing-{args.set}-{args.engine}-{args.time_limit:g}s"
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    solvers = ([] if args.engine == "none" else ["ours"]) + anchors
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(args.set, total=len(files) * len(solvers))
            for path in files:
                scenario = load_scenario(path, "lilim" if args.set == "lilim" else "auto")
                name = path.stem
                scenario = scenario.model_copy(update={"name": name})
                ref, ref_veh = bks.get(name.lower(), (None, None))
                div = scenario.source.distance_divisor
                problem = build_problem(scenario) if anchors else None
                for solver in solvers:
                    progress.update(task, description=f"{args.set} {name} {solver}")
                    if solver == "ours":
                        row, _ = run_ours(scenario, args)
                    else:
                        assert problem is not None
                        t = time.perf_counter()
                        if solver == "pyvrp":
                            routes, note = anchor_pyvrp(problem, args.time_limit, args.seed)
                        elif solver == "ortools":
                            routes, note = anchor_ortools(problem, args.time_limit, args.seed)
                        elif solver == "vroom":
                            routes, note = anchor_vroom(problem, args.vroom_level)
                        else:
                            raise SystemExit(f"unknown anchor {solver}")
                        wall = time.perf_counter() - t
                        ok, dist, nveh = _distance_of(problem, routes) if routes else (False, 0, 0)
                        row = Row(
                            instance=name,
                            solver=f"raw:{solver}",
                            feasible=ok,
                            distance=dist / div if routes else None,
                            vehicles=nveh if routes else None,
                            runtime_s=wall,
                            bks=None,
                            bks_vehicles=None,
                            note=note,
                        )
                    row.instance = name
                    row.bks, row.bks_vehicles = ref, ref_veh
                    rows.append(row)
                    progress.advance(task)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: writing the rows done so far[/]")
    write_outputs(rows, out_dir / prefix, args, ref_col)
    console.print(f"wrote {out_dir / prefix}.csv and .md")
    return 0


def write_outputs(rows: list[Row], base: Path, args: argparse.Namespace, ref_col: str) -> None:
    """Write the per-instance CSV and the markdown summary."""
    with base.with_suffix(".csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "instance",
                "solver",
                "feasible",
                "distance",
                "bks",
                "gap_pct",
                "vehicles",
                "bks_vehicles",
                "unassigned",
                "runtime_s",
                "overhead_s",
                "note",
            ]
        )
        for r in rows:
            w.writerow(
                [
                    r.instance,
                    r.solver,
                    int(r.feasible),
                    "" if r.distance is None else f"{r.distance:.3f}",
                    "" if r.bks is None else f"{r.bks:g}",
                    "" if r.gap_pct is None else f"{r.gap_pct:.3f}",
                    "" if r.vehicles is None else r.vehicles,
                    "" if r.bks_vehicles is None else r.bks_vehicles,
                    r.unassigned,
                    f"{r.runtime_s:.2f}",
                    "" if r.overhead_s is None else f"{r.overhead_s:.3f}",
                    r.note,
                ]
            )
    solvers = list(dict.fromkeys(r.solver for r in rows))
    n_inst = len({r.instance for r in rows})
    lines = [
        f"# Routing benchmark: {args.set}",
        "",
        f"Command: `python benchmarks/routing.py --set {args.set} --engine {args.engine} "
        f"--time-limit {args.time_limit:g} --workers {args.workers} --seed {args.seed}"
        + (f" --anchors {args.anchors}" if args.anchors else "")
        + (f" --instances {args.instances}" if args.instances else "")
        + (f" --limit {args.limit}" if args.limit else "")
        + "`",
        "",
        f"{n_inst} instances; gap = distance vs `{ref_col}` in bks.csv; `ours:<engine>xN` = "
        "solve_routes with N parallel searches; `raw:*` = the engine alone on the same data, "
        "one thread. Mean gap over feasible instances.",
        "",
        "| solver | feasible | mean gap % | max gap % | mean vehicles | mean runtime s | "
        "max overhead s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in solvers:
        rs = [r for r in rows if r.solver == s]
        gaps = [r.gap_pct for r in rs if r.gap_pct is not None]
        vehs = [r.vehicles for r in rs if r.vehicles is not None and r.feasible]
        ovh = [r.overhead_s for r in rs if r.overhead_s is not None]
        lines.append(
            f"| {s} | {sum(r.feasible for r in rs)}/{len(rs)} | "
            f"{statistics.mean(gaps):.2f} | {max(gaps):.2f} | "
            if gaps
            else f"| {s} | {sum(r.feasible for r in rs)}/{len(rs)} | - | - | "
        )
        lines[-1] += (
            (f"{statistics.mean(vehs):.1f} | " if vehs else "- | ")
            + f"{statistics.mean(r.runtime_s for r in rs):.2f} | "
            + (f"{max(ovh):.3f} |" if ovh else "- |")
        )
    lines += [
        "",
        "## Per instance",
        "",
        "| instance | ref | ref veh | "
        + " | ".join(f"{s} dist (veh) gap%" for s in solvers)
        + " |",
        "|---|---|---|" + "---|" * len(solvers),
    ]
    for inst in dict.fromkeys(r.instance for r in rows):
        by_solver = {r.solver: r for r in rows if r.instance == inst}
        first = next(iter(by_solver.values()))
        cells = []
        for s in solvers:
            got = by_solver.get(s)
            if got is None or got.distance is None:
                cells.append("-")
            else:
                r = got
                flag = "" if r.feasible else " INFEASIBLE"
                gap = "" if r.gap_pct is None else f" {r.gap_pct:+.2f}%"
                cells.append(f"{r.distance:.1f} ({r.vehicles}){gap}{flag}")
        lines.append(
            f"| {inst} | {first.bks if first.bks is not None else '-'} | "
            f"{first.bks_vehicles if first.bks_vehicles is not None else '-'} | "
            + " | ".join(cells)
            + " |"
        )
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
