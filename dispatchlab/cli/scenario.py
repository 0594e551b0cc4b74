"""CLI commands: ``scenario generate | show | convert | schema | demo``.

The top-level ``dispatchlab demo`` (what ``make run`` calls) belongs to the service
(:mod:`dispatchlab.cli.api`); ``scenario demo`` is the offline demo of the scenario layer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dispatchlab.cli._common import (
    check_output_file,
    cli_errors,
    console,
    err_console,
    input_name,
    is_stdout,
    load_scenario_input,
    load_scenario_input_as,
    note_input,
    option_names,
    seed_option,
    write_text,
)

if TYPE_CHECKING:
    from scenarios.model import Scenario

scenario_app = typer.Typer(
    name="scenario",
    help="Generate, inspect and convert scenarios.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_CLI_NAMES = {
    "num_orders": "--orders",
    "num_nodes": "--nodes",
    "num_couriers": "--couriers",
    "seed": "--seed",
}
#: the CityParams fields ``generate`` sets from options, and those options
_PARAM_OPTIONS = {
    "generator_version": "--generator-version",
    "node_capacity_factor": "--node-capacity-factor",
}
FORMAT_HELP = "input format: auto, json, solomon, lilim, vrplib or vroom"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(scenario_app, name="scenario")


def _generate(
    seed: int,
    orders: int,
    nodes: int,
    couriers: int,
    *,
    label: str = "generating",
    generator_version: int | None = None,
    node_capacity_factor: float | None = None,
) -> Scenario:
    """generate_city with a spinner on stderr and CLI option names in errors."""
    from scenarios.errors import InputError
    from scenarios.generate import GENERATOR_VERSION, CityParams, generate_city

    version = GENERATOR_VERSION if generator_version is None else generator_version
    if version not in (1, 2):
        raise InputError("--generator-version", f"must be 1 or 2, got {version}")
    knobs: dict[str, Any] = {"generator_version": 1 if version == 1 else 2}
    if node_capacity_factor is not None:
        knobs["node_capacity_factor"] = node_capacity_factor
    with option_names(_PARAM_OPTIONS, CityParams):
        params = CityParams(**knobs)
    with err_console.status(f"{label}…") as status:
        try:
            return generate_city(
                seed=seed,
                num_orders=orders,
                num_nodes=nodes,
                num_couriers=couriers,
                params=params,
                progress=lambda stage: status.update(f"{label}: {stage}…"),
            )
        except InputError as err:
            raise InputError(_CLI_NAMES.get(err.field, err.field), err.reason) from None


@scenario_app.command("generate")
@cli_errors
def generate(
    seed: Annotated[int, seed_option("random seed; same seed, same file")] = 0,
    orders: Annotated[int, typer.Option(help="number of orders (10 to 50,000 is typical)")] = 200,
    nodes: Annotated[int, typer.Option(help="number of fulfilment nodes")] = 6,
    couriers: Annotated[int, typer.Option(help="number of couriers")] = 20,
    out: Annotated[
        Path | None, typer.Option(help="output JSON file (default: stdout)", dir_okay=False)
    ] = None,
    generator_version: Annotated[
        int | None,
        typer.Option(
            help="2 (default): couriers' shifts cover the day's orders; 1: the fleet of "
            "scenarios generated before session 53 (same nodes, stock and orders)"
        ),
    ] = None,
    node_capacity_factor: Annotated[
        float | None,
        typer.Option(
            help="size the nodes' order capacities (and their pickers and packing stations) "
            "for this many times the expected orders, in (0, 100] (default 1.4; the service's "
            "demo day: 2.0); stock and orders do not change"
        ),
    ] = None,
) -> None:
    """Generate a seeded omnichannel city scenario as JSON."""
    from scenarios.io import to_json

    out = None if is_stdout(out) else out  # no --out (or '-'): stdout
    if out is not None:
        check_output_file(out)
    scenario = _generate(
        seed,
        orders,
        nodes,
        couriers,
        generator_version=generator_version,
        node_capacity_factor=node_capacity_factor,
    )
    write_text(to_json(scenario) + "\n", out)
    if out is not None:
        err_console.print(
            f"wrote {out}: {len(scenario.orders)} orders, {len(scenario.nodes)} nodes, "
            f"{len(scenario.vehicles)} couriers, {len(scenario.skus)} SKUs",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


@scenario_app.command("show")
@cli_errors
def show(
    file: Annotated[Path, typer.Argument(help="scenario file (any supported format); - = stdin")],
    format: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Print a summary of a scenario file: counts, horizon, travel, load, windows, source."""
    from scenarios.summary import summarize

    scenario = load_scenario_input(file, format)
    note_input(input_name(file), type(scenario).model_fields)
    summary = summarize(scenario)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    print_summary(summary, title=input_name(file))


def print_summary(summary: dict[str, dict[str, Any]], *, title: str) -> None:
    """Render a scenario summary as one Rich table."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), show_header=False, title_justify="left", expand=False)
    table.add_column("section", style="bold cyan", no_wrap=True)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for section, facts in summary.items():
        first = True
        for key, value in facts.items():
            table.add_row(escape(section) if first else "", escape(key), escape(_fmt(value)))
            first = False
        table.add_section()
    console.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return " / ".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@scenario_app.command("convert")
@cli_errors
def convert(
    file: Annotated[Path, typer.Argument(help="scenario file to convert; - = stdin")],
    to: Annotated[str, typer.Option("--to", help="output format (json)")] = "json",
    out: Annotated[
        Path | None, typer.Option(help="output file (default: stdout)", dir_okay=False)
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "auto",
) -> None:
    """Convert a scenario file (Solomon, Li & Lim, VRPLIB, VROOM, JSON) to dispatchlab JSON."""
    from scenarios.errors import InputError
    from scenarios.io import to_json

    if to.lower() != "json":
        raise InputError("--to", f"unknown output format {to!r}; only json is supported")
    out = None if is_stdout(out) else out  # no --out (or '-'): stdout
    if out is not None:
        check_output_file(out)
    scenario, read_as = load_scenario_input_as(file, format)
    note_input(input_name(file), type(scenario).model_fields)
    write_text(to_json(scenario) + "\n", out)
    if out is not None:
        # a JSON scenario keeps the source it was first converted from (its format and
        # divisors): "solomon -> json" was printed for a JSON file converted again
        origin = scenario.source
        first = ""
        if read_as == "json" and origin.format != "json":
            made = (
                "generated" if origin.format == "generated" else f"converted from {origin.format}"
            )
            first = f"; the scenario was first {made}" + (
                f" ({origin.path})" if origin.path else ""
            )
        err_console.print(
            f"wrote {out} ({read_as} -> json{first})",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


@scenario_app.command("schema")
@cli_errors
def schema(
    model: Annotated[str, typer.Option(help="which model: scenario or plan")] = "scenario",
) -> None:
    """Print the JSON Schema of the Scenario (or Plan) model."""
    from scenarios.errors import InputError
    from scenarios.model import Scenario
    from scenarios.plan import Plan

    models: dict[str, Any] = {"scenario": Scenario, "plan": Plan}
    cls = models.get(model.lower())
    if cls is None:
        raise InputError("--model", f"unknown model {model!r}; choose scenario or plan")
    typer.echo(json.dumps(cls.model_json_schema(), indent=2))


@scenario_app.command("demo")
@cli_errors
def demo(
    seed: Annotated[int, seed_option("random seed")] = 7,
    orders: Annotated[int, typer.Option(help="number of orders")] = 300,
    nodes: Annotated[int, typer.Option(help="number of fulfilment nodes")] = 8,
    couriers: Annotated[int, typer.Option(help="number of couriers")] = 24,
    out: Annotated[
        Path | None, typer.Option(help="also save the scenario JSON here", dir_okay=False)
    ] = None,
) -> None:
    """Generate a demo city scenario, show its summary and time its road-network matrix."""
    from scenarios.io import to_json
    from scenarios.summary import summarize

    if out is not None:
        check_output_file(out)
    scenario = _generate(seed, orders, nodes, couriers, label="generating demo city")
    if out is not None:
        write_text(to_json(scenario) + "\n", out)
    print_summary(summarize(scenario), title=f"demo scenario {scenario.name}")
    from scenarios.travel import RoadNetworkTravel

    travel = scenario.travel
    locations = [n.location for n in scenario.nodes] + [o.location for o in scenario.orders]
    timing = ""
    if isinstance(travel, RoadNetworkTravel):
        t0 = time.perf_counter()
        graph = travel.road_graph()
        timing = f"graph of {graph.num_nodes:,} nodes built in {_ms(t0)}, "
    t0 = time.perf_counter()
    matrix = travel.matrix(locations)
    timing += f"matrix {_ms(t0)}"
    if isinstance(travel, RoadNetworkTravel):
        t0 = time.perf_counter()
        travel.road_graph().matrix(locations)  # every row is cached now
        timing += f" cold, {_ms(t0)} cached"
    n = matrix.shape[0]
    console.print(
        f"{travel.kind} travel, {n} x {n} locations: {timing}; mean trip "
        f"{matrix.duration_s.mean() / 60:.1f} min, {matrix.distance_m.mean() / 1000:.2f} km",
        highlight=False,
        soft_wrap=True,
    )
    hint = "dispatchlab scenario generate --seed 1 --orders 1000 --nodes 10 --couriers 40"
    console.print(f"next: {hint} --out city.json", highlight=False, soft_wrap=True)


def _ms(t0: float) -> str:
    return f"{(time.perf_counter() - t0) * 1000:.0f} ms"
