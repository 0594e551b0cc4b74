"""CLI commands: ``train`` (an SB3 dispatch agent) and ``evaluate`` (compare dispatch policies)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dispatchlab.cli._common import (
    EXIT_INTERRUPTED,
    MAX_TIME_LIMIT_S,
    MAX_WORKERS,
    Bounds,
    as_option,
    check_field,
    check_int_range,
    check_output_file,
    check_output_folder,
    check_range,
    check_time_limit,
    cli_errors,
    comma_items,
    console,
    fail,
    file_bytes,
    is_stdout,
    mistaken_input,
    note_input,
    option_names,
    os_error_message,
    print_warning,
    progress_bar,
    seed_option,
)

if TYPE_CHECKING:
    from rl_agents.evaluate import DayOutcome
    from scenarios.model import Scenario

ALGOS = ("maskable-ppo", "ppo", "dqn")
DEFAULT_POLICIES = "greedy,insertion,slots,reopt:5,model:standard"
#: TrainParams field -> the option that sets it
_TRAIN_OPTIONS = {
    "algo": "--algo",
    "timesteps": "--timesteps",
    "seed": "--seed",
    "num_envs": "--envs",
    "subproc": "--subproc",
    "imitation_days": "--imitation-days",
    "expert": "--expert",
    "imitation_epochs": "--imitation-epochs",
    "dagger_rounds": "--dagger-rounds",
    "dagger_days": "--dagger-days",
    "eval_every": "--eval-every",
    "eval_days": "--eval-days",
    "scenario_name": "--scenario",
}


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)


@cli_errors
def train_cmd(
    ctx: typer.Context,
    algo: Annotated[str, typer.Option(help="maskable-ppo, ppo or dqn")] = "maskable-ppo",
    scenario: Annotated[
        str, typer.Option(help="'standard' (the benchmark city) or a scenario file")
    ] = "standard",
    timesteps: Annotated[
        int,
        typer.Option(
            help="environment steps (decisions) to train; (Maskable)PPO trains whole rollouts "
            "of 1024 steps per environment, so a budget above 1024 x envs is rounded up to a "
            "multiple of it (a smaller one is one rollout of that size, at least 8 steps per "
            "environment), DQN to a multiple of 4 x envs; the progress bar counts the steps "
            "that will run"
        ),
    ] = 300_000,
    seed: Annotated[int, seed_option("seed of the run (weights, days drawn)")] = 0,
    out: Annotated[Path, typer.Option(help="model file to write (.zip)")] = Path("model.zip"),
    envs: Annotated[int, typer.Option(help="parallel environments")] = 2,
    subproc: Annotated[
        bool, typer.Option(help="environments in subprocesses (else in this process)")
    ] = False,
    imitation_days: Annotated[
        int,
        typer.Option(
            help="days of expert demonstrations for a warm start (0 = none; not with --algo dqn)"
        ),
    ] = 10,
    expert: Annotated[
        str, typer.Option(help="imitation expert: 'rollout' (lookahead) or 'slots' (insertion)")
    ] = "slots",
    imitation_epochs: Annotated[
        int, typer.Option(help="passes over the demonstrations (not with --algo dqn)")
    ] = 30,
    dagger_rounds: Annotated[
        int, typer.Option(help="DAgger rounds: the model plays, the expert labels (rollout)")
    ] = 0,
    dagger_days: Annotated[int, typer.Option(help="days the model plays per DAgger round")] = 20,
    demos: Annotated[
        Path | None,
        typer.Option(
            help="demonstrations file (.npz): read if it exists and was made for this run "
            "(scenario, days, expert; one made for another run is refused), recomputed if made "
            "by an older version of the twin, else written (not with --algo dqn)"
        ),
    ] = None,
    eval_every: Annotated[int, typer.Option(help="evaluate every N steps (0 = never)")] = 20_000,
    eval_days: Annotated[int, typer.Option(help="validation days per evaluation")] = 10,
    logdir: Annotated[
        Path | None, typer.Option(help="TensorBoard logs and checkpoints (default: next to --out)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Train a dispatch agent (MaskablePPO, PPO or DQN) on the twin; writes MODEL.zip."""
    if algo not in ALGOS:
        raise fail(f"--algo: unknown algorithm {algo!r}; choose {', '.join(ALGOS)}")
    from rl_agents.train import TrainParams

    check_field("--timesteps", timesteps, TrainParams, "timesteps")
    check_field("--envs", envs, TrainParams, "num_envs")
    if expert not in ("rollout", "slots"):
        raise fail(f"--expert: unknown expert {expert!r}; choose rollout or slots")
    if algo == "dqn":
        _refuse_warm_start_options(
            ctx,
            {
                "--imitation-days": imitation_days,
                "--imitation-epochs": imitation_epochs,
                "--demos": demos,
                "--expert": expert,
                "--dagger-rounds": dagger_rounds,
                "--dagger-days": dagger_days,
            },
        )
    elif dagger_rounds > 0 and expert != "rollout":
        raise fail("--dagger-rounds: DAgger labels with the rollout expert; add --expert rollout")
    if demos is not None and demos.suffix != ".npz":
        raise fail(f"--demos: the demonstrations file must end in .npz, got {str(demos)!r}")
    if out.suffix != ".zip":
        raise fail(f"--out: the model file must end in .zip, got {str(out)!r}")
    # before the training, not after it (the folder of a file written must exist)
    check_output_file(out)
    if logdir is not None and is_stdout(logdir):  # as whatif --out: it made a folder named -
        raise fail(
            "--logdir: '-' (standard output) cannot take the TensorBoard logs and checkpoints; "
            "name a folder"
        )
    log = logdir if logdir is not None else out.with_suffix("").with_name(out.stem + "-logs")
    check_output_folder(log, "--logdir")
    if demos is not None and (demos.is_dir() or not demos.exists()):
        check_output_file(demos, "--demos")  # read if it exists, else written
    from rl_agents.scenario import check_dispatch_scenario
    from rl_agents.train import TrainingInterrupted, TrainingStopped, train

    with option_names(_TRAIN_OPTIONS, TrainParams):  # before the scenario is loaded
        params = TrainParams(
            algo=algo,
            timesteps=timesteps,
            seed=seed,
            num_envs=envs,
            subproc=subproc,
            imitation_days=imitation_days,
            expert=expert,
            imitation_epochs=imitation_epochs,
            dagger_rounds=dagger_rounds,
            dagger_days=dagger_days,
            eval_every=eval_every,
            eval_days=eval_days,
            scenario_name=scenario,
        )
    scen = _load_scenario(scenario)
    if scenario.strip() != "standard":
        note_input(scenario, type(scen).model_fields)
    check_dispatch_scenario(scen)  # no order or no courier: nothing to learn
    import shlex
    import sys

    from scenarios.errors import InputError

    command = shlex.join(["dispatchlab", *sys.argv[1:]])
    try:
        result = train(
            scen,
            params,
            out=out,
            logdir=log,
            progress=not quiet,
            demos_path=demos,
            command=command,
        )
    except InputError as err:
        if err.field == "demos":  # the file given as --demos: name the option
            raise InputError("--demos", err.reason, source=err.source) from None
        raise
    except TrainingInterrupted as stop:  # which model the file now holds (was: "interrupted")
        raise fail(f"interrupted: {stop}", EXIT_INTERRUPTED) from None
    except TrainingStopped as err:  # a full disk: the file, and which model --out holds
        raise fail(f"{os_error_message(err)} (training stopped; {err.kept()})") from None
    console.print(
        f"wrote {out} ({out.stat().st_size / 1024:.0f} KB) after {result.timesteps:,} steps in "
        f"{result.wall_s:.0f} s; TensorBoard logs and checkpoints in {log}",
        markup=False,
    )
    if result.best_validation_cost is not None:
        console.print(f"best validation mean cost: {result.best_validation_cost:,.0f} cents")


def _load_scenario(spec: str) -> Scenario:
    """The scenario ``--scenario`` names; an error about the file itself names the option."""
    from rl_agents.scenario import load_scenario_spec
    from scenarios.errors import InputError

    with as_option("scenario", "--scenario"):
        try:
            return load_scenario_spec(spec)
        except InputError as err:
            if err.source is not None and err.source == spec and err.field != "scenario":
                raise mistaken_input(err, file_bytes(spec), "scenario") from None
            if err.field != "scenario" or err.source is None:
                raise
            raise InputError("--scenario", err.reason, source=err.source) from None


@contextmanager
def _model_option() -> Iterator[None]:
    """Errors about a ``model:PATH`` policy's file name ``--policies``, the option that gave it
    (``FILE: --policies: reason``, as ``--demos`` for ``train``)."""
    from scenarios.errors import InputError

    with as_option("model", "--policies"):
        try:
            yield
        except InputError as err:
            if err.field != "model" or err.source is None:
                raise
            raise InputError("--policies", err.reason, source=err.source) from None


def _refuse_warm_start_options(ctx: typer.Context, given: dict[str, object]) -> None:
    """DQN has no imitation warm start: its options, given with a value that asks for one
    (``--imitation-days 0`` does not), are errors."""
    for option, value in given.items():
        source = ctx.get_parameter_source(option.lstrip("-").replace("-", "_"))
        explicit = source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
        if explicit and value not in (0, None):
            raise fail(
                f"{option}: DQN has no imitation warm start; "
                "drop it, or use --algo maskable-ppo or ppo"
            )


def _refuse_one_file_twice(outputs: Mapping[str, Path | None]) -> None:
    """Exit 2 naming the later option when two output options name one file."""
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise fail(f"{option}: the same file as {seen[real]} ({path})")
        seen[real] = option


@cli_errors
def evaluate_cmd(
    policies: Annotated[
        str,
        typer.Option(help="comma-separated specs: greedy,insertion,reopt:5,model:PATH,hindsight"),
    ] = DEFAULT_POLICIES,
    seeds: Annotated[str, typer.Option(help="held-out day seeds: A..B, A,B,C or N")] = "1..20",
    scenario: Annotated[
        str, typer.Option(help="'standard' (the benchmark city) or a scenario file")
    ] = "standard",
    out: Annotated[Path | None, typer.Option(help="write the results JSON here")] = None,
    table: Annotated[Path | None, typer.Option(help="also write the markdown table here")] = None,
    days: Annotated[
        Path | None,
        typer.Option(
            help="also write the per-day results here (CSV: one row per policy and day, from "
            "which every interval can be recomputed)"
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 2,
    hindsight_time_limit: Annotated[
        float | None,
        typer.Option(
            help="seconds per offline solver run of 'hindsight' (default 30; with "
            "--hindsight-iterations, a safety cap, default 300)"
        ),
    ] = None,
    hindsight_cache: Annotated[
        Path | None, typer.Option(help="JSON-lines cache of hindsight days (read and appended)")
    ] = None,
    hindsight_warm_start: Annotated[
        str,
        typer.Option(
            help="comma-separated online policies whose played day is a hindsight candidate "
            "(e.g. slots)"
        ),
    ] = "",
    hindsight_warm_solve: Annotated[
        bool, typer.Option(help="also start a hindsight solver run from each played day")
    ] = False,
    hindsight_search_s: Annotated[
        float | None,
        typer.Option(
            help="seconds of the hindsight improvement search per day "
            "(default: --hindsight-time-limit; 0 = off)"
        ),
    ] = None,
    hindsight_iterations: Annotated[
        str | None,
        typer.Option(
            help="PyVRP iterations per hindsight solver run, N or SHIFT,DURATION per pricing "
            "(reproducible on any machine load; default: stop on the clock)"
        ),
    ] = None,
    hindsight_search_iterations: Annotated[
        int | None,
        typer.Option(
            help="iterations of the hindsight improvement search (reproducible; default: stop "
            "on the clock)"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Compare dispatch policies on held-out days: cost, on-time, paired differences, gap closed."""
    from pydantic import ValidationError

    from rl_agents.evaluate import (
        HINDSIGHT,
        check_policy_name,
        days_csv_text,
        evaluate_policies,
        model_twin_notes,
        repeated_spec,
        report_json,
        table_markdown,
    )
    from rl_agents.hindsight import HindsightParams, budget_settings, parse_iterations
    from rl_agents.scenario import (
        TRAIN_SEEDS,
        VALIDATION_SEEDS,
        check_dispatch_scenario,
        free_fleet_note,
        parse_seeds,
    )
    from scenarios.io.together import write_together
    from simulation.executors import make_executor

    check_int_range("--workers", workers, 1, MAX_WORKERS)  # 10**20 was taken
    if hindsight_time_limit is not None:
        # a solver run's time limit: above the routing solvers' 86,400 s it failed only once
        # the other policies' days were played, as 'time_limit_s: ...'
        check_time_limit(hindsight_time_limit, "--hindsight-time-limit")
    if hindsight_search_s is not None:
        search_s = Bounds(0, MAX_TIME_LIMIT_S, unit="seconds")
        check_range("--hindsight-search-s", hindsight_search_s, search_s, " (0: no search)")
    try:
        iterations = (
            parse_iterations(hindsight_iterations) if hindsight_iterations is not None else None
        )
    except ValueError as exc:
        raise fail(f"--hindsight-iterations: {exc}") from None
    if hindsight_search_iterations is not None:
        check_field(
            "--hindsight-search-iterations",
            hindsight_search_iterations,
            HindsightParams,
            "search_iterations",
        )
        if hindsight_search_s == 0:
            raise fail("--hindsight-search-iterations: the search is off (--hindsight-search-s 0)")
    specs = comma_items(policies, "--policies", "policy")
    for spec in specs:  # before any work (an unknown one was named ``policies``, not the option)
        check_policy_name(spec.partition(":")[0], "--policies")
    with as_option("seeds", "--seeds"):
        day_seeds = parse_seeds(seeds)
    repeated = repeated_spec(specs)  # a repeat would be counted twice in the CIs
    if repeated is not None:
        raise fail(f"--policies: {repeated[1]}")
    for i, value in enumerate(day_seeds):
        if value in day_seeds[:i]:
            raise fail(f"--seeds: {value!r} is given twice")
    outputs = {"--out": out, "--table": table, "--days": days}
    for option, path in outputs.items():
        if path is not None:  # before the days are played, not after them
            check_output_file(path, option)
    _refuse_one_file_twice(outputs)  # written together: one of them would be lost
    if hindsight_cache is not None:  # read and appended to: the folder of a new one must exist
        check_output_file(hindsight_cache, "--hindsight-cache")
    standard = scenario.strip() == "standard"
    overlap = [s for s in day_seeds if s in TRAIN_SEEDS]
    if overlap and standard:
        print_warning(
            f"{len(overlap)} seed(s) are training days "
            f"({TRAIN_SEEDS.start:,}..{TRAIN_SEEDS.stop - 1:,}); results are not held out"
        )
    chosen_on = [s for s in day_seeds if s in VALIDATION_SEEDS]
    if chosen_on and standard:
        print_warning(
            f"{len(chosen_on)} seed(s) are validation days "
            f"({VALIDATION_SEEDS.start:,}..{VALIDATION_SEEDS.stop - 1:,}) the model was "
            "selected on; results are not held out"
        )
    hindsight_params = {
        **budget_settings(
            time_limit_s=hindsight_time_limit,
            search_s=hindsight_search_s,
            iterations=iterations,
            search_iterations=hindsight_search_iterations,
            default_time_limit_s=30.0,
        ),
        "warm_start_policies": (
            comma_items(hindsight_warm_start, "--hindsight-warm-start", "policy")
            if hindsight_warm_start.strip()
            else []
        ),
        "warm_start_solve": hindsight_warm_solve,
    }
    try:
        HindsightParams.model_validate(hindsight_params)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")  # pydantic's prefix
        raise fail(f"--hindsight-warm-start: {message}") from None
    if not any(spec.partition(":")[0] == HINDSIGHT for spec in specs):
        given = {  # each was ignored without a word: no day was solved in hindsight
            "--hindsight-time-limit": hindsight_time_limit is not None,
            "--hindsight-cache": hindsight_cache is not None,
            "--hindsight-warm-start": bool(hindsight_params["warm_start_policies"]),
            "--hindsight-warm-solve": hindsight_warm_solve,
            "--hindsight-search-s": hindsight_search_s is not None,
            "--hindsight-iterations": hindsight_iterations is not None,
            "--hindsight-search-iterations": hindsight_search_iterations is not None,
        }
        for option, was_given in given.items():
            if was_given:
                raise fail(
                    f"{option}: applies only to the {HINDSIGHT} policy, and --policies has none "
                    f"(add {HINDSIGHT} or {HINDSIGHT}:SECONDS, or drop the option)"
                )
    scen = _load_scenario(scenario)
    if not standard:
        note_input(scenario, type(scen).model_fields)
    check_dispatch_scenario(scen)  # no order or no courier: identical rows, before the days
    with _model_option():
        for note in model_twin_notes(scen, specs):  # a model of another twin, before the days
            print_warning(note)
    executor = make_executor("local" if workers > 1 else "serial", workers=workers)
    texts: dict[Path, str] = {}  # the outputs, written together once all are made

    def days_text(outcomes: Sequence[DayOutcome]) -> None:
        if days is not None:
            texts[days] = days_csv_text(outcomes)

    with (
        as_option("policies", "--policies"),
        _model_option(),
        progress_bar("evaluating", quiet) as progress,
    ):
        summaries = evaluate_policies(
            scen,
            specs,
            day_seeds,
            executor=executor,
            hindsight_params=hindsight_params,
            cache=hindsight_cache,
            progress=progress,
            on_days=days_text,
        )
    md = table_markdown(summaries)
    typer.echo(md)
    free = free_fleet_note(scen)  # beside the rows it explains (a day refused never gets it)
    if free is not None:
        print_warning(free)
    if out is not None:
        # policy name -> its numbers (mean_cost, on_time_rate, ...), plus what was run.
        payload: dict[str, object] = dict(report_json(summaries))
        payload["_meta"] = {"scenario": scenario, "seeds": day_seeds, "table": md}
        texts[out] = json.dumps(payload, indent=2) + "\n"
    if table is not None:
        texts[table] = md
    # all or none: a failed or interrupted write left a new --days CSV beside an old --out
    write_together({path: texts[path] for path in (out, table, days) if path is not None})
    for path in (out, days):
        if path is not None:
            console.print(f"wrote {path}", markup=False)
