"""CLI commands: ``simulate`` (play a plan forward with replications) and ``whatif`` (sweeps)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dispatchlab.cli._common import (
    MAX_WORKERS,
    check_int_range,
    check_out_option,
    check_output_folder,
    check_quiet_out,
    cli_errors,
    comma_items,
    console,
    fail,
    file_bytes,
    input_name,
    is_stdout,
    load_scenario_input,
    mistaken_input,
    note_input,
    print_warning,
    progress_bar,
    seed_option,
    status_line,
    write_out,
)

if TYPE_CHECKING:
    from scenarios.plan import Plan
    from simulation.params import SimParams

EXECUTORS = ("local", "ray", "serial")

#: ``--idle-couriers-go-home``: SimParams.idle_couriers_go_home (both commands).
IDLE_HOME_HELP = (
    "idle couriers go home once no order can still be given to them (default: they wait "
    "until their shift end or the day's close)"
)

#: ``--take-vehicle-breaks/--no-take-vehicle-breaks``: SimParams.take_vehicle_breaks (both).
BREAKS_HELP = (
    "every courier takes its vehicle's breaks whatever the policy (default); "
    "--no-take-vehicle-breaks: only a plan's breaks are taken, as before session 55"
)


#: ``whatif VARIANTS.yaml``: the variant file and its modifiers (docs/simulation.md has it all).
VARIANTS_HELP = (
    "variant file (YAML): base (a scenario file), optional plan, and variants, each a name "
    "(not 'base', the baseline's) and modifiers: demand, node_closed, travel_slowdown, "
    "pick_time, stock_shock, stochastic, and fleet: {kind: fleet, remove: N} (the last N "
    "couriers) or vehicle_ids: [...], or {kind: fleet, add: N} for N more couriers (at most "
    "1000 per variant), copies of copy_of: ID or, without it, of the first courier of the "
    "fleet's most common kind (same capacity, skills and costs), with its base, shift and "
    "breaks, named <id>~1, <id>~2, ...; see docs/simulation.md"
)


def _read_plan(path: Path) -> Plan:
    """Read a ``--plan`` file; a scenario or an allocation request given there says so."""
    from scenarios.errors import InputError
    from scenarios.io import read_plan

    try:
        return read_plan(path)
    except InputError as err:
        if err.source != str(path):
            raise
        raise mistaken_input(err, file_bytes(path), "plan") from None


def _sim_params(idle_couriers_go_home: bool, take_vehicle_breaks: bool) -> SimParams | None:
    """The twin's parameters the options ask for (None: the defaults, as before the options)."""
    from simulation.params import SimParams

    if not idle_couriers_go_home and take_vehicle_breaks:
        return None
    return SimParams(
        idle_couriers_go_home=idle_couriers_go_home, take_vehicle_breaks=take_vehicle_breaks
    )


def _counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun, singular for one (``1 run``, not ``1 runs``)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("simulate")(simulate_cmd)
    app.command("whatif")(whatif_cmd)


def _check_common(
    replications: int, executor: str, workers: int | None, address: str | None
) -> None:
    from simulation.params import MAX_REPLICATIONS

    # bounded as over HTTP: 100,000,000 spawned as many seed sequences (gigabytes) first
    check_int_range("--replications", replications, 1, MAX_REPLICATIONS)
    if executor not in EXECUTORS:
        raise fail(f"--executor: unknown executor {executor!r}; choose {', '.join(EXECUTORS)}")
    if workers is not None:  # 10**20 was taken (a pool no larger than its tasks)
        check_int_range("--workers", workers, 1, MAX_WORKERS)
    if address is not None and executor != "ray":
        raise fail("--address: only with --executor ray")


@cli_errors
def simulate_cmd(
    scenario_path: Annotated[
        Path, typer.Argument(metavar="SCENARIO", help="scenario file; - = stdin")
    ],
    plan_paths: Annotated[
        list[Path] | None,
        typer.Option(
            "--plan",
            help="plan JSON to play forward (a Plan or the output of route --out); "
            "repeat to compare plans (the first is the baseline)",
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="dispatch policy during the day: plan, nearest, insertion[:K][:ontime], "
            "reopt:MIN[:ENGINE[:BUDGET]], or the RL package's (slots, model:PATH, ...: "
            "docs/rl.md) (default: plan with --plan, else insertion)"
        ),
    ] = None,
    replications: Annotated[int, typer.Option(help="simulated days")] = 30,
    seed: Annotated[int, seed_option("study seed (replication seeds derive from it)")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the KPIs JSON here ('-' = stdout)")
    ] = None,
    executor: Annotated[str, typer.Option(help="local (process pool), ray or serial")] = "local",
    workers: Annotated[
        int | None, typer.Option(help="worker processes (default: all cores)")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (with --executor ray)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="scenario format (auto detects)")] = "auto",
    idle_couriers_go_home: Annotated[
        bool, typer.Option("--idle-couriers-go-home", help=IDLE_HOME_HELP)
    ] = False,
    take_vehicle_breaks: Annotated[
        bool, typer.Option("--take-vehicle-breaks/--no-take-vehicle-breaks", help=BREAKS_HELP)
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or table")] = False,
) -> None:
    """Play a plan forward in the digital twin: KPIs with 95% confidence intervals."""
    from rich.markup import escape
    from rich.table import Table

    from scenarios.io import to_json
    from scenarios.plan import Estimate
    from simulation.evaluate import evaluate, undefined_notes
    from simulation.executors import make_executor
    from simulation.policies import check_policy
    from simulation.result import UNDEFINED_WHY
    from simulation.stats import CONSTANT_EXPLAINED, fewer_note, fmt_num, interval_text
    from simulation.twin import check_plan_ids, plan_coverage_note
    from simulation.world import NOTHING_TO_PLAY, check_has_demand

    _check_common(replications, executor, workers, address)
    plugins = policy_plugins([policy] if policy is not None else [])
    if policy is not None:
        check_policy(policy, "--policy", has_plan=bool(plan_paths), hint=" (give one with --plan)")
    check_out_option(out)  # before the runs, not after them
    check_quiet_out(quiet, out)
    quiet = quiet or is_stdout(out)  # stdout carries the JSON alone
    scenario = load_scenario_input(scenario_path, fmt)
    note_input(input_name(scenario_path), type(scenario).model_fields)
    paths = plan_paths or []
    plans = [_read_plan(p) for p in paths]
    for path, each in zip(paths, plans, strict=True):  # the twin names them plan.routes...
        note_input(path, type(each).model_fields)
        note_input(path, type(each).model_fields, under="plan")
    # before the pool starts, as the API does: every field the twin refuses, named in its own
    # file (with several plans, an error from the twin could not say whose it was)
    for path, each in zip(paths, plans, strict=True):
        check_plan_ids(scenario, each, source=str(path))
    check_has_demand(scenario, why=NOTHING_TO_PLAY)  # not days of zeros
    plan = plans[0] if plans else None
    spec = policy if policy is not None else ("plan" if plan is not None else "insertion")
    ex = make_executor(executor, workers=workers, address=address)
    params = _sim_params(idle_couriers_go_home, take_vehicle_breaks)
    if len(plans) > 1:
        _compare(scenario, paths, plans, spec, replications, seed, ex, out, quiet, params, plugins)
        return
    note = None if plan is None else plan_coverage_note(scenario, plan, spec)
    if note is not None:  # a re-plan's plan lacks the orders it completed (as the API notes)
        print_warning(note)
    t0 = time.perf_counter()
    with progress_bar(f"simulating {scenario.name} ({spec})", quiet, replications) as progress:
        kpis = evaluate(
            scenario,
            plan,
            policy=spec,
            replications=replications,
            seed=seed,
            executor=ex,
            progress=progress,
            params=params,
            plugins=plugins,
        )
    wall = time.perf_counter() - t0
    write_out(to_json(kpis) + "\n", out)
    if quiet:
        return
    table = Table(
        title=escape(f"{scenario.name}: {replications} replications, policy {spec}, {wall:.1f} s")
    )
    table.add_column("KPI")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    rows: list[tuple[str, Estimate | None]] = [
        (name, value)
        for name, value in kpis
        if isinstance(value, Estimate) or (value is None and name in UNDEFINED_WHY)
    ]
    rows += sorted(kpis.extra.items())
    constant = False
    for name, est in rows:
        if est is None:  # undefined: no order was due (on time), or delivered (lateness)
            table.add_row(escape(name), "n/a", "")
            continue
        # a KPI defined on fewer days (no order due, none delivered) says over how many
        fewer = "" if est.method == "none" else fewer_note(est.n, replications)
        table.add_row(
            escape(name),
            fmt_num(est.mean, ",.4g"),
            escape(
                interval_text(est.ci_low, est.ci_high, ",.4g", est.method, constant=est.constant)
                + fewer
            ),
        )
        constant = constant or bool(est.constant)
    # over how many replications a KPI undefined on some days is (n/a: on none), and why
    caption = undefined_notes(kpis)
    if constant:  # a zero-width interval is no exact value: say what the mark means
        caption.append(CONSTANT_EXPLAINED)
    if caption:
        table.caption = escape("\n".join(caption))
    console.print(table)
    if out is not None:
        console.print(f"KPIs written to {out}", markup=False)


#: the policies the RL package registers (``rl_agents.policies.register_policies``): a spec
#: naming one imports the package here and in every worker (the executors' ``plugins``)
RL_POLICIES = frozenset(
    {
        "greedy",
        "euro-greedy",
        "euro-lazy",
        "slots",
        "slots-tc",
        "slots-drop",
        "model",
        "model-plain",
    }
)


def policy_plugins(specs: Iterable[str]) -> tuple[str, ...]:
    """The modules registering the policies ``specs`` name, imported (none for built-ins)."""
    if not any(spec.strip().partition(":")[0] in RL_POLICIES for spec in specs):
        return ()
    import rl_agents  # noqa: F401  (registers its policies in this process)

    return ("rl_agents",)


def _compare(
    scenario: Any,
    paths: list[Path],
    plans: list[Any],
    spec: str,
    replications: int,
    seed: int,
    executor: Any,
    out: Path | None,
    quiet: bool,
    params: SimParams | None,
    plugins: tuple[str, ...] = (),
) -> None:
    """Several --plan files: paired comparison and a risk-adjusted recommendation."""
    from simulation.evaluate import compare
    from simulation.twin import candidate_coverage_notes

    names: list[str] = []
    for p in paths:
        name, k = p.stem, 2
        while name in names:
            name, k = f"{p.stem}-{k}", k + 1
        names.append(name)
    candidates = dict(zip(names, plans, strict=True))
    # a re-plan's plan among them lacks the orders it completed (as the API's result notes)
    for note in candidate_coverage_notes(scenario, candidates, dict.fromkeys(names, spec)):
        print_warning(note)
    total = replications * len(plans)
    with progress_bar(f"comparing {len(plans)} plans ({spec})", quiet, total) as progress:
        cmp = compare(
            scenario,
            candidates,
            policy=spec,
            replications=replications,
            seed=seed,
            executor=executor,
            progress=progress,
            params=params,
            plugins=plugins,
        )
    if out is not None:
        payload = cmp.as_json()
        write_out(json.dumps(payload, indent=1) + "\n", out)
    if not quiet:
        from rich.markup import escape

        console.print(cmp.markdown(), markup=False, soft_wrap=True)  # a table: never wrapped
        console.print(f"recommended: [bold]{escape(cmp.recommended)}[/]")


@cli_errors
def whatif_cmd(
    variants_path: Annotated[Path, typer.Argument(metavar="VARIANTS.yaml", help=VARIANTS_HELP)],
    policies: Annotated[
        str, typer.Option(help="comma-separated policies, e.g. plan,insertion,reopt:5")
    ] = "insertion",
    replications: Annotated[int, typer.Option(help="simulated days per variant and policy")] = 10,
    seed: Annotated[int, seed_option("study seed (replication seeds derive from it)")] = 0,
    executor: Annotated[str, typer.Option(help="local (process pool), ray or serial")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (with --executor ray)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="worker processes (default: all cores)")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="folder for comparison.md/.csv, PNG plots, report.html")
    ] = Path("whatif-report"),
    idle_couriers_go_home: Annotated[
        bool, typer.Option("--idle-couriers-go-home", help=IDLE_HOME_HELP)
    ] = False,
    take_vehicle_breaks: Annotated[
        bool, typer.Option("--take-vehicle-breaks/--no-take-vehicle-breaks", help=BREAKS_HELP)
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or table")] = False,
) -> None:
    """Run variants x policies x seeds and write a comparison against the base variant."""
    from scenarios.variants import read_variants
    from simulation.executors import make_executor
    from simulation.policies import check_policy, repeated_policy
    from simulation.report import markdown_table, write_report
    from simulation.sweep import check_variant_plan, plan_notes, run_sweep
    from simulation.world import NOTHING_TO_PLAY, check_has_demand

    _check_common(replications, executor, workers, address)
    specs = comma_items(policies, "--policies", "policy")
    plugins = policy_plugins(specs)
    repeated = repeated_policy(specs)
    if repeated is not None:
        raise fail(f"--policies: {repeated[1]}")
    for spec in specs:
        check_policy(spec, "--policies", has_plan=True)  # the variant file's plan: checked later
    if is_stdout(out):  # every other --out takes '-' for standard output: it made ./-
        raise fail("--out: '-' (standard output) cannot take the report's files; name a folder")
    check_output_folder(out)  # before the runs, not after them
    loaded = read_variants(variants_path)
    note_input(variants_path, type(loaded.spec).model_fields)
    # the base scenario and plan as read_variants reads (and names) them
    folder = variants_path.parent
    note_input((folder / loaded.spec.base).resolve(), type(loaded.base).model_fields)
    if loaded.plan is not None:  # the twin names its fields plan.routes...: the plan's file
        note_input(loaded.plan_source, type(loaded.plan).model_fields, under="plan")
    check_has_demand(loaded.base, why=NOTHING_TO_PLAY)  # the base: every variant's reference
    check_variant_plan(loaded)  # before the executor starts (run_sweep checks it too)
    for spec in specs:  # now that the variant file is read: 'plan' needs its plan
        check_policy(
            spec, "--policies", has_plan=loaded.plan is not None, hint=" in the variant file"
        )
    for note in plan_notes(loaded, specs):  # a re-plan's plan lacks the orders it completed
        print_warning(note)
    ex = make_executor(executor, workers=workers, address=address)
    total = len(loaded.names) * len(specs) * replications
    t0 = time.perf_counter()
    label = (
        f"what-if: {_counted(len(loaded.names), 'variant')} x "
        f"{_counted(len(specs), 'policy', 'policies')} x {_counted(replications, 'seed')}"
    )
    with progress_bar(label, quiet, total) as progress:
        result = run_sweep(
            loaded,
            policies=specs,
            replications=replications,
            seed=seed,
            executor=ex,
            progress=progress,
            params=_sim_params(idle_couriers_go_home, take_vehicle_breaks),
            plugins=plugins,
        )
    wall = time.perf_counter() - t0
    # drawing the report takes seconds on a large study, after the progress bar has gone
    with status_line(f"writing the report to {out}", quiet) as status:
        written = write_report(
            result,
            out,
            title=f"What-if: {variants_path.name}",
            stage=lambda what: status(f"writing the report to {out}: {what}"),
        )
    if quiet:
        return
    console.print(
        markdown_table(result, ("cost_cents", "on_time_rate", "orders_unserved")),
        markup=False,
        soft_wrap=True,  # a markdown table: never wrapped at the console width
    )
    console.print(
        f"{_counted(total, 'run')} in {wall:.1f} s on executor {executor}; "
        f"{result.events_per_s:,.0f} simulated events/s per worker",
        markup=False,
    )
    for path in written:
        console.print(f"wrote {path}", markup=False)
