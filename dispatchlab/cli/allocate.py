"""CLI commands: allocate (which node ships each order line) and allocate-literature."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dispatchlab.cli._common import (
    MISTAKEN,
    Bounds,
    check_int_range,
    check_out_option,
    check_output_file,
    check_quiet_out,
    check_range,
    check_time_limit,
    cli_errors,
    console,
    fail,
    file_bytes,
    input_name,
    is_stdin,
    is_stdout,
    json_input_kind,
    mistaken_input,
    note_input,
    option_names,
    print_warning,
    read_input,
    seed_option,
    with_elapsed_bar,
    with_hint,
    write_out,
)

if TYPE_CHECKING:
    from scenarios.errors import InputError
    from scenarios.model import Scenario
    from solvers.allocation import AllocationRequest

MODES = ("batch", "online")
BACKENDS = ("highspy", "pyomo")
BASELINES = ("nearest", "rule_chain", "myopic")
#: SKUs of an ``allocate-literature`` request (its catalogue; an order holds at most all)
LITERATURE_SKUS = 100
#: notes of the answer (``stats.notes``) the summary prints; the rest are counted
SHOWN_NOTES = 5
#: AllocationParams field -> the option that sets it
_OPTIONS = {
    "mode": "--mode",
    "time_limit_s": "--time-limit",
    "mip_rel_gap": "--gap",
    "baseline": "--baseline",
    "seed": "--seed",
    "explain": "--explain",
    "backend": "--backend",
    "threads": "--threads",
}


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("allocate")(allocate_cmd)
    app.command("allocate-literature")(literature_cmd)


@cli_errors
def allocate_cmd(
    request: Annotated[
        Path,
        typer.Argument(help="allocation request JSON (or a scenario file); '-' = stdin"),
    ],
    mode: Annotated[str, typer.Option(help="batch|online")] = "batch",
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds")] = 60.0,
    gap: Annotated[float, typer.Option("--gap", help="stop at this certified relative gap")] = 1e-4,
    baseline: Annotated[
        str | None, typer.Option(help="run a baseline instead: nearest|rule_chain|myopic")
    ] = None,
    seed: Annotated[int, seed_option("HiGHS random seed")] = 0,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="HiGHS threads (1: reproducible answers, the service's default; "
            "default: one per core)",
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="highspy (fast path) | pyomo (the reference Pyomo formulation)"),
    ] = "highspy",
    scenario: Annotated[
        bool, typer.Option("--scenario", help="the file is a scenario; map it to a request")
    ] = False,
    explain: Annotated[bool, typer.Option(help="per-order explanations")] = True,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the result JSON here ('-' = stdout)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or table")] = False,
) -> None:
    """Allocate order lines to fulfilment nodes and print (or write) the result."""
    from solvers.allocation import AllocationParams, AllocationRequest, AllocationResult, allocate
    from solvers.allocation.params import MAX_THREADS
    from solvers.allocation.progress import phase_hook

    if mode not in MODES:
        raise fail(f"--mode: unknown mode {mode!r}; choose batch or online")
    if baseline is not None and baseline not in BASELINES:
        raise fail(f"--baseline: unknown baseline {baseline!r}; choose {', '.join(BASELINES)}")
    if backend not in BACKENDS:
        raise fail(f"--backend: unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")
    check_time_limit(time_limit)
    check_range("--gap", gap, Bounds(0, 1))
    if threads is not None:
        check_int_range("--threads", threads, 1, MAX_THREADS)
    to_stdout = is_stdout(out)
    check_out_option(out)  # before the solve, not after it
    check_quiet_out(quiet, out)
    source = input_name(request)
    if scenario:
        loaded = _read_scenario(request)
        note_input(source, type(loaded).model_fields)
        if loaded.orders and not loaded.nodes:  # a routing instance: "optimal", 0 orders
            raise fail(
                f"{source}: nodes: the scenario has no fulfilment nodes, so nothing to "
                f"allocate (its {len(loaded.orders)} orders are courier jobs: plan them with "
                "dispatchlab route)"
            )
        req = AllocationRequest.from_scenario(loaded)
        own = [o.id for o in loaded.orders if o.pickup is not None] if loaded.nodes else []
        if own and not quiet:  # left out of the request: say so, not without a word
            listed = ", ".join(repr(o) for o in own[:5]) + (", ..." if len(own) > 5 else "")
            print_warning(
                f"{len(own)} order(s) with a pickup of their own left out ({listed}): "
                "pickup-and-delivery jobs, not allocated to fulfilment nodes"
            )
    else:
        req = _read_request(request)
        note_input(source, AllocationRequest.model_fields)
    with option_names(_OPTIONS, AllocationParams):
        params = AllocationParams(
            mode=mode,
            time_limit_s=time_limit,
            mip_rel_gap=gap,
            baseline=baseline,
            seed=seed,
            explain=explain,
            backend=backend,
            threads=threads,
        )
    if params.backend == "pyomo" and params.baseline is None:
        _load_pyomo()
    label = f"allocating {len(req.orders)} orders over {len(req.nodes)} nodes ({mode})"
    heard = SolvePhase()

    def work() -> AllocationResult:
        with phase_hook(heard):  # in the solve's thread: the hook is this thread's
            return allocate(req, params)

    result = with_elapsed_bar(label, time_limit, quiet or to_stdout, work, status=heard.text)
    write_out(result.model_dump_json(indent=1) + "\n", out)
    if quiet or to_stdout:
        return
    _print_summary(result, out)


class SolvePhase:
    """The phase an allocation solve last named, and its certified gap (a phase hook)."""

    def __init__(self) -> None:
        #: (phase, gap), replaced whole: the bar's thread reads it while the solve writes it
        self.heard: tuple[str, float | None] = ("solving", None)

    def __call__(self, phase: str, gap: float | None) -> None:
        """Hear the solve's phase (see :func:`solvers.allocation.progress.phase_hook`)."""
        self.heard = (phase, gap)

    def text(self) -> str:
        """The phase as the progress bar shows it: ``integer phase, gap 0.31 %``."""
        phase, gap = self.heard
        return phase if gap is None else f"{phase}, gap {100 * gap:.2f} %"


def _load_pyomo() -> None:
    """Start the pyomo worker process (it imports Pyomo) before the solve starts, so
    ``--time-limit`` is the solve's own: on its first use in a process the import (about
    1 s) came out of the limit, and a limit shorter than the start takes got the highspy
    backend instead (with a note)."""
    from solvers.allocation.pyomo_worker import WorkerStartError, warm_worker

    try:
        warm_worker()
    except WorkerStartError as err:
        raise fail(f"--backend pyomo: {err}") from None


def _read_request(path: Path) -> AllocationRequest:
    """Read an allocation request (``-``: from stdin); a scenario file without
    ``--scenario`` says to add it."""
    from scenarios.errors import InputError
    from scenarios.io.json_io import from_json
    from scenarios.model import Scenario
    from solvers.allocation import AllocationRequest

    data = read_input(path)
    try:
        return from_json(AllocationRequest, data, source=input_name(path), saved=True)
    except InputError as err:
        only = set(Scenario.model_fields) - set(AllocationRequest.model_fields)
        hinted = _hinted(err, data, only, MISTAKEN["request", "scenario"])
        raise (hinted if hinted is not err else mistaken_input(err, data, "request")) from None


def _read_scenario(path: Path) -> Scenario:
    """Read a scenario for ``--scenario`` (``-``: from stdin); an allocation request file
    says to drop the flag."""
    from scenarios.errors import InputError
    from scenarios.io import load_scenario, scenario_from_bytes
    from scenarios.model import Scenario
    from solvers.allocation import AllocationRequest

    data = read_input(path) if is_stdin(path) else None  # stdin can be read once only
    try:
        if data is not None:  # any format, told from its first characters
            return scenario_from_bytes(data, "auto", source=input_name(path))
        return load_scenario(path, "auto")
    except InputError as err:
        only = set(AllocationRequest.model_fields) - set(Scenario.model_fields)
        hint = "this looks like an allocation request: drop --scenario"
        if err.source != input_name(path):
            raise
        data = data if data is not None else file_bytes(path)
        hinted = _hinted(err, data, only, hint)
        if hinted is err:  # a request of nodes, orders and costs has a scenario's keys alone
            kind = json_input_kind(data)
            if kind == "request":
                hinted = InputError(err.field, f"{err.reason} ({hint})", source=err.source)
            else:
                hinted = with_hint(err, "scenario", kind)
        raise hinted from None


def _hinted(err: InputError, data: bytes | None, only: set[str], hint: str) -> InputError:
    """``err`` with ``hint`` added when ``data`` is a JSON object with a key of ``only``."""
    from scenarios.errors import InputError
    from scenarios.io.json_io import loads

    if data is None:
        return err
    try:
        parsed = loads(data)
    except ValueError:
        return err
    if isinstance(parsed, dict) and only & set(parsed):
        return InputError(err.field, f"{err.reason} ({hint})", source=err.source)
    return err


def _print_summary(result: object, out: Path | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from solvers.allocation import AllocationResult

    assert isinstance(result, AllocationResult)
    c, k = result.cost, result.kpis
    table = Table(title=f"allocation: {result.status.value} ({result.method})", show_header=False)
    table.add_row("total cost", f"{c.total:,.2f}")
    table.add_row(
        "  parts",
        f"shipping {c.shipping:,.2f}, handling {c.handling:,.2f}, split {c.split:,.2f}, "
        f"lateness {c.lateness:,.2f}, unfilled {c.unfilled:,.2f}",
    )
    if result.bound is not None:
        table.add_row("bound / gap", f"{result.bound:,.2f} / {100 * (result.gap or 0):.4f} %")
    table.add_row("shipments/order", f"{k.shipments_per_order:.3f}")
    table.add_row("split rate", f"{100 * k.split_rate:.1f} %")
    table.add_row("unfilled units", f"{k.units_unfilled}/{k.units_ordered}")
    if k.vip_on_time_share is not None:
        table.add_row("VIP on time", f"{100 * k.vip_on_time_share:.1f} %")
    table.add_row("solve time", f"{result.solve_time_s:.2f} s")
    if out is not None:
        table.add_row("result", escape(str(out)))
    console.print(table)
    # without --out the notes (a misspelt rule, a limit too short to optimise) were nowhere
    notes = result.stats.notes
    for note in notes[:SHOWN_NOTES]:
        console.print(f"  note: {note}", highlight=False, markup=False)
    where = "in the result JSON" if out is not None else "(--out RESULT.json writes them all)"
    if len(notes) > SHOWN_NOTES:
        console.print(
            f"  ... {len(notes) - SHOWN_NOTES} more notes {where}", highlight=False, markup=False
        )
    for line in result.diagnosis[:10]:
        console.print(f"  {line}", highlight=False, markup=False)
    for e in result.explanations[:5]:
        console.print(f"  {e.order_id}: {e.summary}", highlight=False, markup=False)
    if len(result.explanations) > 5:
        more = len(result.explanations) - 5
        console.print(f"  ... {more} more explanations {where}", highlight=False, markup=False)


@cli_errors
def literature_cmd(
    out: Annotated[Path, typer.Argument(help="where to write the request JSON")],
    seed: Annotated[int, seed_option("random seed")] = 0,
    orders: Annotated[int, typer.Option(help="number of orders")] = 300,
    nodes: Annotated[int, typer.Option(help="number of fulfilment centres")] = 10,
    max_items: Annotated[
        int, typer.Option("--max-items", help="largest order size (at most the 100 SKUs)")
    ] = 10,
    carry_prob: Annotated[float, typer.Option("--carry-prob", help="P(FC carries item)")] = 0.5,
) -> None:
    """Write a seeded request in the Jasin & Sinha (2015) / Ma (2023) setting."""
    from scenarios.generate import MAX_NODES, MAX_ORDERS
    from scenarios.io.json_io import write_json
    from solvers.allocation import generate_literature

    # bounded as ``scenario generate`` is: --orders 100000000 took gigabytes of memory
    # before it could fail, --nodes 100000000 asked numpy for a nodes x SKUs array
    check_int_range("--orders", orders, 0, MAX_ORDERS)
    check_int_range("--nodes", nodes, 1, MAX_NODES)
    check_int_range("--max-items", max_items, 1, LITERATURE_SKUS)
    check_range("--carry-prob", carry_prob, Bounds(0, 1))
    check_output_file(out, "OUT")
    req = generate_literature(
        seed=seed, num_orders=orders, num_nodes=nodes, max_items=max_items, carry_prob=carry_prob
    )
    write_json(req, out)
    console.print(f"wrote {out} ({orders} orders, {nodes} nodes)", highlight=False, markup=False)
