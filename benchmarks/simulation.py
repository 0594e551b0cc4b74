"""Benchmark of the digital twin: one day at scale, replications on 2 cores, Ray vs local pool.

Run (timings to report need the exclusive CPU lock)::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/simulation.py

Measures, on ``generate_city(seed=1, num_orders=5000, num_nodes=20, num_couriers=100)`` (the
generated day's own orders; the Poisson arrival process is switched off so the day has exactly
5,000 orders):

1. compiling the scenario (dense travel tables over all locations of the road network);
2. one replication playing a 5,000-order plan forward (policy ``plan``): wall time, events/s;
3. one replication with dynamic cheapest insertion deciding every order;
4. 30 replications of the plan on the local process pool with 2 workers (wall time including
   pool start-up and each worker compiling the scenario);
5. the policy hook with random valid actions (the RL workload): decisions per second;
6. 100 short runs (a 100-order city, cheapest insertion) serially, on the local pool and on a
   local Ray instance (2 CPUs): the executors' overhead.

Each measurement with a target (2 to 5) is taken ``--repeats`` times (default 5; 2 over that
many replication seeds, the others on the same input): the table shows the mean with its 95%
t-interval and decides the target on the interval (met / missed / undecided, see
``benchmarks.measures.decide``); the CSV keeps every run's figure. ``--repeats 1`` decides on
one run, as the script did before.

The plan is the day as executed by the twin with noise off under cheapest insertion (exported
with ``SimulationResult.to_plan``); ``--plan`` replays another plan file instead (for example
one from ``solve_routes`` on ``routing_scenario_from_allocation``).

Writes ``benchmarks/results/simulation-twin.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.measures import (  # noqa: E402
    Measures,
    add_repeats_option,
    command_line,
    count_arg,
    count_at_most,
    ctrl_c_writes_nothing,
    output_folder_arg,
    progress_bar,
    run_script,
    seed_arg,
)
from scenarios.generate import MAX_ORDERS, CityParams, generate_city  # noqa: E402
from scenarios.io import read_json  # noqa: E402
from scenarios.model import Scenario  # noqa: E402
from scenarios.plan import Plan  # noqa: E402
from scenarios.stochastic import StochasticParams  # noqa: E402
from simulation.decisions import Assign, Postpone  # noqa: E402
from simulation.evaluate import Case, ReplicationTask, replication_seeds, run_tasks, simulate  # noqa: E402
from simulation.executors import LocalExecutor, RayExecutor, SerialExecutor  # noqa: E402
from simulation.params import SimParams  # noqa: E402
from simulation.twin import DispatchSimulator  # noqa: E402
from simulation.world import compile_world  # noqa: E402

#: the generator version of the stored results (v1 fleets); v2 on their next re-run
CITY_PARAMS = CityParams(generator_version=1)


def city(seed: int, orders: int, nodes: int, couriers: int) -> Scenario:
    """A generated city day with exactly its own orders (no extra Poisson arrivals)."""
    scenario = generate_city(
        seed=seed, num_orders=orders, num_nodes=nodes, num_couriers=couriers, params=CITY_PARAMS
    )
    return scenario.model_copy(update={"arrivals": None})


def twin_plan(scenario: Scenario) -> tuple[Plan, float]:
    """The day as executed by the twin with noise off under cheapest insertion."""
    det = scenario.model_copy(update={"stochastic": StochasticParams.deterministic()})
    sim = DispatchSimulator(det, params=SimParams(record_routes=True))
    t0 = time.perf_counter()
    result = simulate(det, policy="insertion", seed=0, simulator=sim)
    return result.to_plan(sim), time.perf_counter() - t0


def random_actions(sim: DispatchSimulator, seed: int) -> tuple[int, float]:
    """Drive a day with uniformly random valid actions (O(1) masks); decisions and seconds."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    sim.reset(seed=seed)
    decisions = 0
    while (state := sim.next_decision()) is not None:
        decisions += 1
        o = state.focus_order
        if o < 0:
            continue
        feasible = state.candidates[sim.action_mask(o, state.candidates)]
        k = int(rng.integers(feasible.size + 1))
        sim.apply(Assign(o, int(feasible[k])) if k < feasible.size else Postpone(o))
    return decisions, time.perf_counter() - t0


@contextmanager
def local_ray(num_cpus: int) -> Iterator[float]:
    """A local Ray instance of ``num_cpus`` while in the block; yields its start-up seconds.

    Its session files (logs, sockets) go to a temporary directory deleted after
    ``ray.shutdown()``, however the block ends: Ray would keep them in /tmp/ray for good.
    """
    import ray

    with tempfile.TemporaryDirectory(prefix="dispatchlab-ray-", ignore_cleanup_errors=True) as tmp:
        t0 = time.perf_counter()
        try:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=tmp)
            yield time.perf_counter() - t0
        finally:
            ray.shutdown()


#: ``--workers``: the local pool starts up to this many processes (one per task), Ray as many
#: CPUs; it had no bound at all
MAX_WORKERS = 64


def plan_arg(text: str) -> Path:
    """``--plan``: an existing plan JSON file (argparse type: else a usage error)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


@ctrl_c_writes_nothing  # Ctrl-C: a KeyboardInterrupt traceback
def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement and write the result files."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--orders",
        type=count_at_most(MAX_ORDERS),
        default=5000,
        help="orders of the simulated city day",
    )
    ap.add_argument("--nodes", type=count_arg, default=20, help="nodes (depots) of the city day")
    ap.add_argument("--couriers", type=count_arg, default=100, help="couriers of the city day")
    ap.add_argument(
        "--seed", type=seed_arg, default=1, help="seed of the day and of the replications"
    )
    ap.add_argument(
        "--replications", type=count_arg, default=30, help="replications of the timed batch"
    )
    ap.add_argument(
        "--workers",
        type=count_at_most(MAX_WORKERS),
        default=2,
        help=f"processes of the local pool and CPUs of Ray, 1 to {MAX_WORKERS}",
    )
    ap.add_argument(
        "--short-runs",
        type=count_arg,
        default=100,
        help="short runs timed for the per-run overhead",
    )
    ap.add_argument("--plan", type=plan_arg, default=None, help="plan JSON to replay instead")
    ap.add_argument("--skip-ray", action="store_true", help="leave out the Ray measurements")
    add_repeats_option(ap)
    ap.add_argument(
        "--out",
        type=output_folder_arg("--out"),
        default=str(REPO / "benchmarks" / "results"),
        help="folder of the table (default benchmarks/results)",
    )
    args = ap.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)

    table = Measures()
    # a bar on stderr, drawn between the measurements (none drawn while one is timed)
    steps = [
        "the day and its plan",
        "one replication, plan replay",
        "one replication, dynamic insertion",
        f"{args.replications} replications, local pool",
        f"policy hook, {args.orders}-order day",
        "policy hook, 500-order day",
        f"{args.short_runs} short runs",
        *([] if args.skip_ray else [f"{args.short_runs} short runs, Ray"]),
    ]
    with progress_bar(timed=True) as bar:
        task = bar.add_task(steps[0], total=len(steps))
        coming = iter(steps[1:])

        def next_step() -> None:
            """The step done: the bar shows the next one."""
            bar.update(task, advance=1, description=next(coming, "done"), refresh=True)

        plan_source = measure(args, table, next_step)
    table.write(
        args.out,
        "simulation-twin",
        "Digital twin benchmark",
        f"`generate_city(seed={args.seed}, num_orders={args.orders}, num_nodes={args.nodes}, "
        f"num_couriers={args.couriers}, params=CityParams(generator_version=1))`, the day's "
        "own orders (Poisson arrivals off). "
        f"Plan replayed: {plan_source}. "
        "Command: `flock -x /tmp/dispatchlab-cpu.lock .venv/bin/"
        + command_line(ap, given, "simulation.py")
        + "`.",
    )


def measure(args: argparse.Namespace, table: Measures, next_step: Callable[[], None]) -> str:
    """Take every measurement into ``table`` (``next_step()`` after each step); what the
    replayed plan is."""
    record = table.record

    scenario = city(args.seed, args.orders, args.nodes, args.couriers)
    t0 = time.perf_counter()
    world = compile_world(scenario)
    record("compile scenario (travel tables)", time.perf_counter() - t0, "s")
    record("locations", len(world.locations), "")

    if args.plan is not None:
        plan = read_json(Plan, args.plan)
        plan_source = str(args.plan)
    else:
        plan, built = twin_plan(scenario)
        plan_source = "twin, noise off, cheapest insertion"
        record("build the plan (deterministic twin day, insertion)", built, "s")
    stops = sum(len(r.stops) for r in plan.routes)
    record("plan stops", stops, "")
    next_step()

    # 2. one replication of the plan (one run per replication seed)
    sim = DispatchSimulator(world, plan=plan)
    walls, events = [], []
    for seed in replication_seeds(args.seed, args.repeats):
        t0 = time.perf_counter()
        result = simulate(world, plan, None, seed=seed, simulator=sim)
        walls.append(time.perf_counter() - t0)
        events.append(result.num_events)
    table.record_runs("one replication, plan replay", walls, "s", "<=", 2.0, "<= 2 s")
    record("events per replication", statistics.mean(events), "")
    record("events per second, plan replay", sum(events) / sum(walls), "events/s")
    record("on-time rate in that replication", result.metrics["on_time_rate"], "")
    next_step()

    # 3. one replication with dynamic cheapest insertion (the same day every run)
    dyn = DispatchSimulator(world)
    dwalls, devents = [], 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        dres = simulate(world, None, "insertion", seed=args.seed, simulator=dyn)
        dwalls.append(time.perf_counter() - t0)
        devents += dres.num_events
    table.record_runs(
        "one replication, dynamic cheapest insertion", dwalls, "s", "<=", 2.0, "<= 2 s"
    )
    record("events per second, dynamic insertion", devents / sum(dwalls), "events/s")
    next_step()

    # 4. 30 replications on the local pool (a new pool every run: start-up included)
    cases = {"day": Case(scenario, plan)}
    seeds = replication_seeds(args.seed, args.replications)
    tasks = [ReplicationTask("day", "plan", k, s) for k, s in enumerate(seeds)]
    pool_walls, outs = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        outs = run_tasks(cases, tasks, executor=LocalExecutor(args.workers))
        pool_walls.append(time.perf_counter() - t0)
    table.record_runs(
        f"{args.replications} replications, local pool, {args.workers} workers (incl. start-up)",
        pool_walls,
        "s",
        "<=",
        20.0,
        "<= 20 s",
    )
    record("  of which simulation (sum over workers, last run)", sum(o.wall_s for o in outs), "s")
    record(
        "events per second per worker (pool, last run)",
        sum(o.num_events for o in outs) / sum(o.wall_s for o in outs),
        "events/s",
    )
    next_step()

    # 5. policy hook with random valid actions (the same day every run)
    for label, scen in (
        (f"{args.orders}-order day", scenario),
        ("500-order day", city(args.seed, 500, 5, 20)),
    ):
        hook = DispatchSimulator(scen, params=SimParams(tick_s=600))
        rates = []
        for _ in range(args.repeats):
            n, secs = random_actions(hook, args.seed)
            rates.append(n / secs)
        table.record_runs(
            f"policy hook, random valid actions, {label}",
            rates,
            "decisions/s",
            ">=",
            2000.0,
            ">= 2000",
        )
        next_step()

    # 6. executors: 100 short runs
    small = city(args.seed + 1, 100, 3, 8)
    short_cases = {"small": Case(small)}
    short = [
        ReplicationTask("small", "insertion", k, s)
        for k, s in enumerate(replication_seeds(args.seed, args.short_runs))
    ]
    t0 = time.perf_counter()
    serial = run_tasks(short_cases, short, executor=SerialExecutor())
    serial_wall = time.perf_counter() - t0
    work = sum(o.wall_s for o in serial)
    record(f"{args.short_runs} short runs, serial", serial_wall, "s")
    t0 = time.perf_counter()
    run_tasks(short_cases, short, executor=LocalExecutor(args.workers))
    local_wall = time.perf_counter() - t0
    record(f"{args.short_runs} short runs, local pool ({args.workers} workers)", local_wall, "s")
    record(
        "  local pool overhead per run vs ideal split",
        (local_wall - work / args.workers) / args.short_runs * 1000,
        "ms/run",
    )
    next_step()
    if not args.skip_ray:
        with local_ray(args.workers) as startup_s:
            record("Ray start-up (local instance)", startup_s, "s")
            t0 = time.perf_counter()
            run_tasks(short_cases, short, executor=RayExecutor())
            ray_wall = time.perf_counter() - t0
        record(
            f"{args.short_runs} short runs, Ray ({args.workers} CPUs, after start-up)",
            ray_wall,
            "s",
        )
        record(
            "  Ray overhead per run vs ideal split",
            (ray_wall - work / args.workers) / args.short_runs * 1000,
            "ms/run",
        )
        next_step()

    return plan_source


if __name__ == "__main__":
    raise SystemExit(run_script(main))
