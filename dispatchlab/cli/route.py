"""CLI commands: route."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dispatchlab.cli._common import (
    check_field,
    check_out_option,
    check_quiet_out,
    check_time_limit,
    cli_errors,
    console,
    fail,
    input_name,
    is_stdout,
    load_scenario_input,
    note_input,
    option_names,
    seed_option,
    with_elapsed_bar,
    write_out,
)

ENGINES = ("auto", "pyvrp", "ortools", "greedy")
#: RoutingParams field -> the option that sets it
_OPTIONS = {
    "engine": "--engine",
    "time_limit_s": "--time-limit",
    "seed": "--seed",
    "num_workers": "--workers",
    "max_iterations": "--max-iterations",
}


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("route")(route_cmd)


@cli_errors
def route_cmd(
    instance: Annotated[
        Path,
        typer.Argument(help="scenario file (Solomon, Li & Lim, VRPLIB, VROOM or JSON); - = stdin"),
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="auto|solomon|lilim|vrplib|vroom|json")
    ] = "auto",
    engine: Annotated[str, typer.Option(help="auto|pyvrp|ortools|greedy")] = "auto",
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds of search")] = 10.0,
    seed: Annotated[int, seed_option("random seed")] = 0,
    workers: Annotated[int, typer.Option(help="parallel PyVRP searches (best kept)")] = 1,
    max_iterations: Annotated[
        int | None,
        typer.Option(
            "--max-iterations",
            help="also stop PyVRP after this many iterations (the plan then depends on the "
            "seed only)",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the plan JSON here ('-' = stdout)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or table")] = False,
) -> None:
    """Plan courier routes for a scenario file and print (or write) the plan."""
    from rich.markup import escape
    from rich.table import Table

    from solvers.routing import RoutingParams, solve_routes_with_stats
    from solvers.routing.output import plan_to_dict
    from solvers.routing.solve import LATE, import_first_call_modules

    if engine not in ENGINES:
        raise fail(f"--engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    check_time_limit(time_limit)
    check_field("--workers", workers, RoutingParams, "num_workers")
    check_out_option(out)  # before the solve, not after it
    check_quiet_out(quiet, out)
    scenario = load_scenario_input(instance, fmt)
    note_input(input_name(instance), type(scenario).model_fields)
    with option_names(_OPTIONS, RoutingParams):
        params = RoutingParams(
            engine=engine,
            time_limit_s=time_limit,
            seed=seed,
            num_workers=workers,
            max_iterations=max_iterations,
        )
    to_stdout = is_stdout(out)
    # the modules the solve would import on its first call, before its time limit starts (as
    # the service does at its start): a road network's shortest paths alone took 0.26-0.33 s
    import_first_call_modules()
    label = f"routing {escape(scenario.name)} ({len(scenario.orders)} orders)"
    plan, stats = with_elapsed_bar(
        label, time_limit, quiet or to_stdout, lambda: solve_routes_with_stats(scenario, params)
    )
    data = plan_to_dict(scenario, plan)
    write_out(json.dumps(data, indent=1) + "\n", out)
    if quiet or to_stdout:
        return
    table = Table(title=escape(f"{scenario.name}: {data['status']}"), show_header=False)
    table.add_row("engine", str(data["engine"]))
    table.add_row("distance", str(data["distance"]))
    table.add_row("vehicles", str(data["num_vehicles"]))
    table.add_row("served", f"{len(scenario.orders) - len(plan.unassigned)}/{len(scenario.orders)}")
    table.add_row("runtime", f"{plan.runtime_s:.2f} s")
    if out is not None:
        table.add_row("plan", escape(str(out)))
    console.print(table)
    cut = sum(u.detail.startswith(LATE) for u in plan.unassigned)
    if cut:  # an incomplete plan: the caller may retry with more time
        console.print(
            f"  time limited: {cut} orders not tried before the time limit; a longer "
            "--time-limit may serve them",
            highlight=False,
            markup=False,
        )
    for note in stats.clock_notes:  # --max-iterations cut by the clock: not reproducible
        console.print(f"  time limited: {note}", highlight=False, markup=False)
    for u in plan.unassigned[:10]:
        console.print(
            f"  unassigned {u.order_id}: {u.reason.value} ({u.detail})",
            highlight=False,
            markup=False,
        )
    if len(plan.unassigned) > 10:
        console.print(f"  ... and {len(plan.unassigned) - 10} more unassigned")
