"""Routing benchmark: our solve_routes against BKS, with raw PyVRP / OR-Tools / VROOM anchors.

One command reproduces a table::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/routing.py \\
        --set solomon --engine auto --time-limit 5 --workers 2 --seed 1 --anchors pyvrp \\
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

The searches stop on the clock (``--time-limit``), so two runs with the same seed can give
other distances (fewer iterations on a busy machine). ``--max-iterations N`` (PyVRP, ours and
the raw anchor) and ``--max-solutions N`` (OR-Tools, both) also stop them on their work: the
distances then depend on the seed only, with ``--workers 1`` (more workers run as many
searches as there are idle cores) and while the time limit, still the cap, is not reached::

    flock -s /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/routing.py \\
        --set solomon --instances C101,RC201 --engine auto --time-limit 60 --workers 1 \\
        --seed 1 --max-iterations 300 --max-solutions 300 --anchors pyvrp,ortools \\
        --out-dir /tmp/routing-check

``--set city`` measures scale instead of quality: seeded ``generate_city`` days
(``--city-orders 1000,10000``; nodes and couriers as in ``benchmarks/generate_city.py``), routed
as generated (each courier delivers from its start node: ``--city-jobs delivery``) and/or as
pickup-and-delivery jobs from each order's nearest node (``pickup``; pickups at one store share
a matrix node). It reports where the time of one cold ``solve_routes`` went (build, of which the
travel matrix alone; greedy; search; repair; decode; validate; JSON) and our overhead (build +
decode + validate + JSON) as a share of the time limit::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/routing.py --set city \\
        --city-orders 1000 --time-limit 10 --workers 2 --city-jobs delivery,pickup \\
        --out-prefix routing-city-1000-10s
"""

from __future__ import annotations

import argparse
import csv
import io
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402

from benchmarks.measures import (  # noqa: E402
    comma_list,
    comma_option,
    command_line,
    count_arg,
    count_at_most,
    count_list_arg,
    dict_csv_text,
    output_folder_arg,
    progress_bar,
    provenance,
    run_script,
    seconds_arg,
    seed_arg,
    table_name_arg,
    write_table_files,
)
from scenarios.generate import MAX_ORDERS, CityParams, generate_city  # noqa: E402
from scenarios.io import load_scenario  # noqa: E402
from scenarios.model import Scenario  # noqa: E402
from scenarios.plan import AllocationLine  # noqa: E402
from simulation.stats import fmt_num, paired_diff  # noqa: E402
from solvers.routing import (  # noqa: E402
    RoutingParams,
    SolveStats,
    build_problem,
    routing_scenario_from_allocation,
    solve_routes_with_stats,
)
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
#: generated city sizes: orders -> (nodes, couriers), as in benchmarks/generate_city.py
CITY_SIZES = {10: (3, 2), 1_000: (10, 40), 10_000: (25, 300), 50_000: (40, 800)}


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
    problem: RoutingProblem, limit: float, seed: int, max_iterations: int | None = None
) -> tuple[dict[int, list[int]], str]:
    """Raw PyVRP on the same data (default parameters, one thread), stopped by ``limit`` s or
    (when given) ``max_iterations``, whichever comes first."""
    import pyvrp
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

    from solvers.routing.engines.pyvrp_engine import build_data

    data, _, decode = build_data(problem)
    stop: MaxRuntime | MultipleCriteria = MaxRuntime(limit)
    if max_iterations is not None:
        stop = MultipleCriteria([MaxIterations(max_iterations), stop])
    res = pyvrp.solve(data, stop=stop, seed=seed, collect_stats=False)
    if not res.best.is_feasible():
        return {}, "infeasible"
    return decode(res.best), ""


def anchor_ortools(
    problem: RoutingProblem, limit: float, seed: int, max_solutions: int | None = None
) -> tuple[dict[int, list[int]], str]:
    """Raw OR-Tools: PATH_CHEAPEST_ARC + guided local search, no seed solution, no drops;
    stopped by ``limit`` s or (when given) after ``max_solutions`` solutions."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    p = problem
    nv = len(p.vehicles)
    nd = p.num_depot_nodes
    # one OR-Tools node per task (tasks at one place share a node of ours): nd + task index
    num_nodes = nd + len(p.tasks)
    rows = np.concatenate([np.arange(nd), np.array([t.node for t in p.tasks], dtype=np.int64)])
    dist = p.distance[np.ix_(rows, rows)]
    dur = p.duration[np.ix_(rows, rows)]
    manager = pywrapcp.RoutingIndexManager(
        num_nodes, nv, [v.start_node for v in p.vehicles], [v.end_node for v in p.vehicles]
    )
    routing = pywrapcp.RoutingModel(manager)
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(dist.tolist()))
    service = [0] * num_nodes
    for ti, t in enumerate(p.tasks):
        service[nd + ti] = t.service_s
    tmat = (dur + [[s] for s in service]).tolist()
    horizon = max(v.shift[1] for v in p.vehicles)
    routing.AddDimension(routing.RegisterTransitMatrix(tmat), horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    for ti, t in enumerate(p.tasks):
        if t.windows:
            tdim.CumulVar(manager.NodeToIndex(nd + ti)).SetRange(t.windows[0][0], t.windows[-1][1])
    for vi, v in enumerate(p.vehicles):
        tdim.CumulVar(routing.Start(vi)).SetRange(v.shift[0], v.shift[1])
        tdim.CumulVar(routing.End(vi)).SetRange(v.shift[0], v.shift[1])
    change = [0] * num_nodes
    for ti, t in enumerate(p.tasks):
        info = p.orders[t.order]
        change[nd + ti] = info.demand[0] if info.from_depot else t.load_change[0]
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
            pi = manager.NodeToIndex(nd + info.pickup)
            di = manager.NodeToIndex(nd + info.delivery)
            routing.AddPickupAndDelivery(pi, di)
            solver.Add(routing.VehicleVar(pi) == routing.VehicleVar(di))
            solver.Add(tdim.CumulVar(pi) <= tdim.CumulVar(di))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(limit * 1000))
    if max_solutions is not None:
        params.solution_limit = max_solutions
    sol = routing.SolveWithParameters(params)
    if sol is None:
        return {}, "no solution"
    out: dict[int, list[int]] = {}
    for vi in range(nv):
        idx = sol.Value(routing.NextVar(routing.Start(vi)))
        seq = []
        while not routing.IsEnd(idx):
            seq.append(manager.IndexToNode(idx) - nd)
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
def run_ours(scenario: Scenario, args: argparse.Namespace) -> tuple[Row, SolveStats]:
    """Solve with our layer; returns the row (without BKS) and where the time went.

    Overhead = everything but the greedy construction, the search and the repair: build
    (matrices, diagnosis), decode, validation and the plan's JSON.
    """
    params = RoutingParams(
        engine=args.engine,
        time_limit_s=args.time_limit,
        seed=args.seed,
        num_workers=args.workers,
        max_iterations=getattr(args, "max_iterations", None),
        max_solutions=getattr(args, "max_solutions", None),
    )
    t = time.perf_counter()
    plan, stats = solve_routes_with_stats(scenario, params)
    t_json = time.perf_counter()
    _ = plan.model_dump_json()  # the JSON step counts in the overhead
    wall_json = time.perf_counter() - t
    json_s = time.perf_counter() - t_json
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
            overhead_s=stats.overhead_s + json_s,
            unassigned=len(plan.unassigned),
            note="; ".join([stats.fallback or stats.detail, *stats.notes]),
            extra={
                "greedy_s": f"{stats.greedy_s:.3f}",
                "repair_s": f"{stats.repair_s:.3f}",
                "json_s": f"{json_s:.3f}",
                "status": plan.status.value,
                "cost_cents": str(plan.cost_cents),
                "valid": str(check.ok),
            },
        ),
        stats,
    )


ANCHORS = ("pyvrp", "ortools", "vroom")
CITY_JOBS = ("delivery", "pickup")
#: ``--workers``: at most RoutingParams' limit of parallel searches
MAX_WORKERS = 64


def limit_arg(text: str) -> int:
    """``--limit``: 0 (every instance) or a whole number of instances (argparse type)."""
    return 0 if text.strip() == "0" else count_arg(text)


def city_orders_arg(text: str) -> str:
    """``--city-orders``: a comma list of order counts generate_city takes (argparse type)."""
    for n in count_list_arg(text):
        if n > MAX_ORDERS:
            raise argparse.ArgumentTypeError(f"at most {MAX_ORDERS} orders, got {n}")
    return text


def check_names(
    ap: argparse.ArgumentParser, option: str, text: str, allowed: tuple[str, ...], *, empty_ok: bool
) -> list[str]:
    """The names of a comma list option; an unknown one (or none unless allowed): usage error."""
    names = comma_option(ap, option, text, "name", empty_ok=True)
    unknown = [n for n in names if n not in allowed]
    if unknown or not (names or empty_ok):
        what = f"unknown {', '.join(unknown)}" if unknown else "give at least one"
        ap.error(f"argument {option}: {what}; one of {', '.join(allowed)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark set and write the CSV and markdown tables."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--set",
        required=True,
        choices=[*sorted(SETS), "city"],
        help="the instance set (city: generated days, see --city-orders)",
    )
    ap.add_argument(
        "--engine",
        default="auto",
        choices=["auto", "pyvrp", "ortools", "greedy", "none"],
        help="our solver's engine (none: only the anchors)",
    )
    ap.add_argument(
        "--time-limit", type=seconds_arg, default=5.0, help="time limit of each solve (s)"
    )
    ap.add_argument(
        "--workers", type=count_at_most(MAX_WORKERS), default=1, help=f"1 to {MAX_WORKERS}"
    )
    ap.add_argument(
        "--seed", type=seed_arg, default=1, help="seed of the solvers (and of the city days)"
    )
    ap.add_argument(
        "--max-iterations",
        type=count_arg,
        default=None,
        help="also stop PyVRP (ours and the raw anchor) after N iterations: its plans depend "
        "on the seed only (--time-limit stays the cap)",
    )
    ap.add_argument(
        "--max-solutions",
        type=count_arg,
        default=None,
        help="also stop OR-Tools (ours and the raw anchor) after N solutions (reproducible)",
    )
    ap.add_argument("--anchors", default="", help="comma list of pyvrp,ortools,vroom")
    ap.add_argument(
        "--vroom-level",
        type=int,
        default=5,
        choices=range(6),
        metavar="0..5",
        help="VROOM's exploration level, when it is an anchor",
    )
    ap.add_argument(
        "--bench-dir",
        default=str(REPO.parent / "shared" / "benchmarks"),
        help="folder holding the instance sets (default ../shared/benchmarks)",
    )
    ap.add_argument("--instances", default="", help="comma list of instance names (default all)")
    ap.add_argument(
        "--limit", type=limit_arg, default=0, help="only the first N instances (0: all)"
    )
    ap.add_argument(
        "--out-prefix",
        type=lambda text: table_name_arg(text) if text else text,  # "": the set's name
        default="",
        help="file name of the table, without .md/.csv (default from the set)",
    )
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(REPO / "benchmarks" / "results"),
        help="where the table goes (default benchmarks/results)",
    )
    ap.add_argument(
        "--city-orders",
        type=city_orders_arg,
        default="1000,10000",
        help="city set: comma list of order counts",
    )
    ap.add_argument(
        "--city-jobs", default="delivery", help="city set: comma list of delivery,pickup"
    )
    args = ap.parse_args(argv)
    args.made = provenance()  # when, which code, which machine: as the run starts
    args.command = command_line(ap, argv, "routing.py")  # every option, defaults included
    anchors = check_names(ap, "--anchors", args.anchors, ANCHORS, empty_ok=True)
    check_names(ap, "--city-jobs", args.city_jobs, CITY_JOBS, empty_ok=args.set != "city")
    if args.set == "city":
        return run_city(args)

    folder_name, pattern, ref_col = SETS[args.set]
    folder = Path(args.bench_dir) / folder_name
    files = sorted(folder.glob(pattern))
    if not files:
        ap.error(f"argument --bench-dir: no {args.set} instances in {folder}")
    if args.instances:
        given = comma_option(ap, "--instances", args.instances, "instance name")
        wanted = {n.lower() for n in given}
        unknown = sorted(wanted - {f.stem.lower() for f in files})
        if unknown:  # they were left out without a word (none at all: "no instances found")
            ap.error(f"argument --instances: no {', '.join(unknown)} in {folder}")
        files = [f for f in files if f.stem.lower() in wanted]
    if args.limit:
        files = files[: args.limit]
    bks = _read_bks(folder, ref_col)
    prefix = args.out_prefix or f"routing-{args.set}-{args.engine}-{args.time_limit:g}s"
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    solvers = ([] if args.engine == "none" else ["ours"]) + anchors
    try:
        with progress_bar(console) as progress:
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
                            routes, note = anchor_pyvrp(
                                problem, args.time_limit, args.seed, args.max_iterations
                            )
                        elif solver == "ortools":
                            routes, note = anchor_ortools(
                                problem, args.time_limit, args.seed, args.max_solutions
                            )
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
    except KeyboardInterrupt:  # wrote the rows so far over the whole set's table, exit 0
        console.print(
            f"interrupted after {len(rows)} of {len(files) * len(solvers)} solves: no table written"
        )
        return 130
    write_outputs(rows, out_dir / prefix, args, ref_col)
    console.print(f"wrote {out_dir / prefix}.csv and .md")
    return 0


def _budget_options(args: argparse.Namespace) -> str:
    """The ``--max-iterations`` / ``--max-solutions`` of a run, as its Command line gives them."""
    text = ""
    for option in ("max_iterations", "max_solutions"):
        value = getattr(args, option, None)
        if value is not None:
            text += f" --{option.replace('_', '-')} {value}"
    return text


def write_outputs(rows: list[Row], base: Path, args: argparse.Namespace, ref_col: str) -> None:
    """Write the per-instance CSV and the markdown summary."""
    w = csv.writer(table := io.StringIO(newline=""))
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
            "greedy_s",
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
                r.extra.get("greedy_s", ""),
                r.note,
            ]
        )
    solvers = list(dict.fromkeys(r.solver for r in rows))
    n_inst = len({r.instance for r in rows})
    lines = [
        f"# Routing benchmark: {args.set}",
        "",
        "Command: `"
        + (
            getattr(args, "command", None)  # main's: every option, defaults included
            or f"python benchmarks/routing.py --set {args.set} --engine {args.engine} "
            f"--time-limit {args.time_limit:g} --workers {args.workers} --seed {args.seed}"
            + _budget_options(args)
            + (f" --anchors {args.anchors}" if args.anchors else "")
            + (f" --instances {args.instances}" if args.instances else "")
            + (f" --limit {args.limit}" if args.limit else "")
            + (f" --out-prefix {args.out_prefix}" if args.out_prefix else "")
        )
        + "`",
        "",
        getattr(args, "made", None) or provenance(),
        "",
        f"{n_inst} instances; gap = distance vs `{ref_col}` in bks.csv; `ours:<engine>xN` = "
        "solve_routes with N parallel searches; `raw:*` = the engine alone on the same data, "
        "one thread. Mean gap over feasible instances. Overhead = build (matrices, diagnosis) "
        "+ decode + validation + JSON; the greedy construction (fallback plan, search start) "
        "is counted apart."
        + (
            ""
            if ref_col == "distance"
            else " `ref veh` = `vehicles` in bks.csv, the vehicles of the vehicles-first BKS, "
            f"not of the `{ref_col}` solution (which may use more)."
        ),
        "",
        "| solver | feasible | mean gap % | max gap % | mean vehicles | mean runtime s | "
        "max overhead s | max greedy s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in solvers:
        rs = [r for r in rows if r.solver == s]
        gaps = [r.gap_pct for r in rs if r.gap_pct is not None]
        vehs = [r.vehicles for r in rs if r.vehicles is not None and r.feasible]
        ovh = [r.overhead_s for r in rs if r.overhead_s is not None]
        greedy = [float(r.extra["greedy_s"]) for r in rs if "greedy_s" in r.extra]
        lines.append(
            f"| {s} | {sum(r.feasible for r in rs)}/{len(rs)} | "
            f"{statistics.mean(gaps):.2f} | {max(gaps):.2f} | "
            if gaps
            else f"| {s} | {sum(r.feasible for r in rs)}/{len(rs)} | - | - | "
        )
        lines[-1] += (
            (f"{statistics.mean(vehs):.1f} | " if vehs else "- | ")
            + f"{statistics.mean(r.runtime_s for r in rs):.2f} | "
            + (f"{max(ovh):.3f} | " if ovh else "- | ")
            + (f"{max(greedy):.3f} |" if greedy else "- |")
        )
    lines += paired_lines(rows, solvers)
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
                gap = "" if r.gap_pct is None else f" {fmt_num(r.gap_pct, '+.2f')}%"
                cells.append(f"{r.distance:.1f} ({r.vehicles}){gap}{flag}")
        lines.append(
            f"| {inst} | {first.bks if first.bks is not None else '-'} | "
            f"{first.bks_vehicles if first.bks_vehicles is not None else '-'} | "
            + " | ".join(cells)
            + " |"
        )
    _write_pair(base, table.getvalue(), "\n".join(lines) + "\n")


#: distances this close (relative) are the same plan length in the paired counts
SAME_DISTANCE = 1e-9


def paired_lines(rows: list[Row], solvers: list[str]) -> list[str]:
    """The paired comparison of each other solver with the first (``ours``): markdown lines,
    none for one solver.

    On the instances both solved feasibly: the mean of the per-instance gap differences
    (other minus first, in percentage points) with its 95% t-interval
    (:func:`simulation.stats.paired_diff`), and how often the other's plan was longer, as
    long, or shorter; the instances only one of them solved feasibly are counted apart.
    """
    if len(solvers) < 2:
        return []
    by = {(r.instance, r.solver): r for r in rows}
    instances = list(dict.fromkeys(r.instance for r in rows))
    first = solvers[0]
    lines = [
        "",
        f"Paired against `{first}`, instance by instance (the same data): the mean gap "
        "difference (the solver's minus ours, percentage points; + = its plans longer) with "
        "its 95% t-interval over the instances both solved feasibly, and how many of its plans "
        "were longer / as long / shorter; 'only ours' / 'only it': instances only one of the "
        "two solved feasibly.",
        "",
        "| solver | instances | gap difference, points [95% CI] | longer / same / shorter "
        "| only ours / only it |",
        "|---|---|---|---|---|",
    ]
    for other in solvers[1:]:
        pairs: list[tuple[Row, Row]] = []  # (ours, its) where both plans are feasible
        only_ours = only_it = 0
        for inst in instances:
            mine, theirs = _solved(by.get((inst, first))), _solved(by.get((inst, other)))
            if mine is not None and theirs is not None:
                pairs.append((mine, theirs))
            else:
                only_ours += mine is not None
                only_it += theirs is not None
        nan = float("nan")  # no reference distance: no gap, the pair left out of the interval
        diff = paired_diff(
            [nan if t.gap_pct is None else t.gap_pct for _, t in pairs],
            [nan if m.gap_pct is None else m.gap_pct for m, _ in pairs],
        )
        if diff.n == 0:
            shown = "-"
        elif diff.n == 1 or diff.degenerate:
            shown = f"{fmt_num(diff.mean, '+.3f')} ({'every instance' if diff.n > 1 else '1'})"
        else:
            low, high = fmt_num(diff.low, "+.3f"), fmt_num(diff.high, "+.3f")
            shown = f"{fmt_num(diff.mean, '+.3f')} [{low}, {high}]"
        signs = [_longer(m, t) for m, t in pairs]
        lines.append(
            f"| {other} | {len(pairs)} | {shown} | {signs.count(1)} / {signs.count(0)} / "
            f"{signs.count(-1)} | {only_ours} / {only_it} |"
        )
    return lines


def _solved(row: Row | None) -> Row | None:
    """``row`` if it is a feasible plan with a distance, else None."""
    return row if row is not None and row.feasible and row.distance is not None else None


def _longer(mine: Row, theirs: Row) -> int:
    """1 if ``theirs`` is the longer plan, -1 if the shorter, 0 if as long (both solved)."""
    a, b = mine.distance or 0.0, theirs.distance or 0.0
    if abs(b - a) <= SAME_DISTANCE * max(abs(a), 1.0):
        return 0
    return 1 if b > a else -1


def _write_pair(base: Path, csv_text: str, markdown: str) -> None:
    """``base.csv`` and ``base.md``, both or neither (an interrupted write leaves the old)."""
    write_table_files(
        base.parent,
        {base.with_suffix(".csv").name: csv_text, base.with_suffix(".md").name: markdown},
    )


# ----------------------------------------------------------------------------- city (scale)
def nearest_node_jobs(scenario: Scenario) -> Scenario:
    """Pickup-and-delivery jobs: every order ships all its lines from its nearest node."""
    xy = np.array([[n.location.x or 0.0, n.location.y or 0.0] for n in scenario.nodes])
    lines = []
    for order in scenario.orders:
        here = np.array([order.location.x or 0.0, order.location.y or 0.0])
        node = scenario.nodes[int(np.argmin(((xy - here) ** 2).sum(axis=1)))]
        lines += [
            AllocationLine(order_id=order.id, sku=ln.sku, node_id=node.id, quantity=ln.quantity)
            for ln in order.lines
        ]
    return routing_scenario_from_allocation(scenario, lines)


def _fresh(scenario: Scenario) -> Scenario:
    """The scenario with a new travel model (no cached matrices, no loaded road graph)."""
    travel = type(scenario.travel).model_validate(scenario.travel.model_dump())
    return scenario.model_copy(update={"travel": travel})


def run_city(args: argparse.Namespace) -> int:
    """Scale: where the time of a cold solve goes on generated city days (see the docstring)."""
    rows: list[dict[str, str]] = []
    console = Console(stderr=True)
    sizes = count_list_arg(args.city_orders)  # checked as the arguments were parsed
    jobs = comma_list(args.city_jobs, "job kind")
    for n in sizes:
        nodes, couriers = CITY_SIZES.get(n, (max(3, n // 400), max(2, n // 25)))
        city = generate_city(
            seed=args.seed,
            num_orders=n,
            num_nodes=nodes,
            num_couriers=couriers,
            params=CityParams(generator_version=1),  # the stored results' fleets
        )
        for kind in jobs:
            scenario = nearest_node_jobs(city) if kind == "pickup" else city
            console.print(f"city {n} {kind}: travel matrix alone")
            problem = build_problem(_fresh(scenario))
            num_tasks, num_nodes, places = (
                len(problem.tasks),
                problem.num_nodes,
                problem.node_locations,
            )
            del problem  # the matrices of 10,000 stops take gigabytes
            t = time.perf_counter()
            _fresh(scenario).travel.matrix(list(places))
            matrix_s = time.perf_counter() - t
            console.print(f"city {n} {kind}: solve_routes ({args.time_limit:g} s)")
            row, stats = run_ours(_fresh(scenario), args)
            json_s = float(row.extra["json_s"])
            overhead = stats.overhead_s + json_s
            rows.append(
                {
                    "instance": f"city-{n}-{kind}",
                    "orders": str(len(scenario.orders)),
                    "tasks": str(num_tasks),
                    "matrix_nodes": str(num_nodes),
                    "vehicles_available": str(len(scenario.vehicles)),
                    "engine": stats.engine,
                    "status": row.extra["status"],
                    "valid": row.extra["valid"],
                    "unassigned": str(row.unassigned),
                    "vehicles": str(row.vehicles),
                    "cost_cents": row.extra["cost_cents"],
                    "time_limit_s": f"{args.time_limit:g}",
                    "total_s": f"{row.runtime_s:.3f}",
                    "build_s": f"{stats.build_s:.3f}",
                    "matrix_s": f"{matrix_s:.3f}",
                    "greedy_s": f"{stats.greedy_s:.3f}",
                    "search_s": f"{stats.engine_s:.3f}",
                    "repair_s": f"{stats.repair_s:.3f}",
                    "decode_s": f"{stats.decode_s:.3f}",
                    "validate_s": f"{stats.validate_s:.3f}",
                    "json_s": f"{json_s:.3f}",
                    "overhead_s": f"{overhead:.3f}",
                    "overhead_pct": f"{100 * overhead / args.time_limit:.1f}",
                    "overhead_no_matrix_pct": (
                        f"{100 * max(0.0, overhead - matrix_s) / args.time_limit:.1f}"
                    ),
                    "note": row.note,
                }
            )
    prefix = args.out_prefix or f"routing-city-{args.time_limit:g}s"
    base = Path(args.out_dir) / prefix
    cols = [
        "instance",
        "tasks",
        "matrix_nodes",
        "engine",
        "status",
        "valid",
        "unassigned",
        "vehicles",
        "total_s",
        "build_s",
        "matrix_s",
        "greedy_s",
        "search_s",
        "repair_s",
        "decode_s",
        "validate_s",
        "json_s",
        "overhead_pct",
        "overhead_no_matrix_pct",
    ]
    lines = [
        "# Routing benchmark: city (scale)",
        "",
        "Command: `"
        + (
            getattr(args, "command", None)  # main's: every option, defaults included
            or f"python benchmarks/routing.py --set city --city-orders {args.city_orders} "
            f"--city-jobs {args.city_jobs} --engine {args.engine} "
            f"--time-limit {args.time_limit:g} --workers {args.workers} --seed {args.seed}"
            + _budget_options(args)
            + (f" --out-prefix {args.out_prefix}" if args.out_prefix else "")
        )
        + "`",
        "",
        getattr(args, "made", None) or provenance(),
        "",
        "One cold `solve_routes_with_stats` per row (fresh travel model). `build_s` = matrices "
        "+ diagnosis + engine choice, of which `matrix_s` = the travel model's matrix alone "
        "(timed separately); overhead = build + decode + validate + JSON, in % of the time "
        "limit (target <= 5 % at 1,000 stops), also without the travel matrix. Greedy, search "
        "and repair are the solve itself. `delivery` = couriers deliver from their start node; "
        "`pickup` = pickup at the order's nearest node, then delivery.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    lines += ["", "Notes:", ""] + [f"- {r['instance']}: {r['note']}" for r in rows]
    _write_pair(base, dict_csv_text(list(rows[0]), rows), "\n".join(lines) + "\n")
    console.print(f"wrote {base}.csv and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
