"""Speed of the RL dispatch environment and of the learned policy's decisions (one core).

Run under the exclusive CPU lock (the figures are timings)::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/rl_speed.py

Measures, on the standard scenario (``rl_agents.scenario.standard_scenario``):

1. environment steps per second with uniformly random *valid* actions (``action_masks()``),
   over ``--days`` whole days (reset included), and with the cheapest slot every time;
2. the per-step cost split: the twin (``next_decision``/``apply``), the insertion quotes of the
   candidate slots, the rest of the featurizer, the reward potential;
3. decision latency of ``model:PATH`` (default: the shipped model, with its decision guards)
   and, for reference, ``model-plain:PATH`` (the network alone), ``slots`` and ``insertion``:
   wall time of ``policy.decide`` per order decision inside ``simulate`` on held-out days, p50
   and p99.

The measurements with a target (the random-action step rate, the model's p50 and p99) are
taken ``--repeats`` times (default 5, over the same days): the table shows the mean with its
95% t-interval and decides the target on the interval (met / missed / undecided, see
``benchmarks.measures.decide``); the CSV keeps every run's figure. ``--repeats 1`` decides on
one run, as the script did before. A run of ~2 s moved between 1,685 and 2,666 steps/s on the
idle machine, so one run cannot say on which side of 2,000 the rate is.

``--latency-only`` skips 1 and 2 (a short run). Writes ``benchmarks/results/rl-speed.md`` and
``.csv`` (``--name`` for another name).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import rl_agents  # noqa: E402
from benchmarks.measures import (  # noqa: E402
    Measures,
    add_repeats_option,
    command_line,
    count_arg,
    ctrl_c_writes_nothing,
    output_folder_arg,
    progress_bar,
    run_script,
    table_name_arg,
)
from rl_agents.env import DynamicDispatchEnv  # noqa: E402
from rl_agents.scenario import standard_scenario  # noqa: E402
from simulation import simulate  # noqa: E402
from simulation.policies import make_policy  # noqa: E402
from simulation.world import compile_world  # noqa: E402


def env_speed(env: DynamicDispatchEnv, days: list[int], mode: str) -> tuple[int, float]:
    """Steps and seconds over whole days with random valid actions or the cheapest slot."""
    rng = np.random.default_rng(0)
    steps = 0
    t0 = time.perf_counter()
    for day in days:
        env.reset(seed=day)
        done = env._done
        while not done:
            mask = env.action_masks()
            a = int(rng.choice(np.flatnonzero(mask))) if mode == "random" else 0
            _, _, term, trunc, _ = env.step(a)
            steps += 1
            done = term or trunc
    return steps, time.perf_counter() - t0


def step_split(env: DynamicDispatchEnv, days: list[int]) -> dict[str, float]:
    """Microseconds per step spent in the twin, the quotes, the featurizer and the potential."""
    spent = {"twin": 0.0, "apply": 0.0, "quotes": 0.0, "featurizer": 0.0, "potential": 0.0}
    sim, fz = env.sim, env.featurizer

    def timed(key: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - t

        return wrapper

    originals = (sim.next_decision, sim.apply, sim.quote, fz.decide_inputs, env._potential)
    sim.next_decision = timed("twin", sim.next_decision)  # type: ignore[method-assign]
    sim.apply = timed("apply", sim.apply)  # type: ignore[method-assign]
    sim.quote = timed("quotes", sim.quote)  # type: ignore[method-assign]
    fz.decide_inputs = timed("featurizer", fz.decide_inputs)  # type: ignore[method-assign]
    env._potential = timed("potential", env._potential)  # type: ignore[method-assign]
    try:
        steps, secs = env_speed(env, days, "random")
    finally:
        sim.next_decision, sim.apply, sim.quote = originals[:3]  # type: ignore[method-assign]
        fz.decide_inputs, env._potential = originals[3:]  # type: ignore[method-assign]
    out = {k: v / steps * 1e6 for k, v in spent.items()}
    out["featurizer"] -= out["quotes"]  # quotes are called from the featurizer
    out["total"] = secs / steps * 1e6
    return out


def latencies(world: Any, spec: str, days: list[int]) -> np.ndarray:
    """Wall time (microseconds) of ``policy.decide`` for every order decision on ``days``."""
    out: list[float] = []
    for day in days:
        policy = make_policy(spec)
        assert policy is not None
        decide = policy.decide

        def timed(state: Any, decide: Any = decide) -> Any:
            if state.focus_order < 0:
                return decide(state)
            t = time.perf_counter()
            action = decide(state)
            out.append((time.perf_counter() - t) * 1e6)
            return action

        policy.decide = timed  # type: ignore[method-assign]
        simulate(world, None, policy, seed=day)
    return np.asarray(out)


def model_arg(text: str) -> str:
    """``--model``: ``standard`` or an existing file (argparse type: else a usage error; the
    file's contents are checked when it is loaded, as the CLI does)."""
    if text != "standard" and not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such model file: {text}")
    return text


@ctrl_c_writes_nothing  # Ctrl-C: a KeyboardInterrupt traceback
def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement and write the result files."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--days", type=count_arg, default=20, help="days for the environment speed")
    ap.add_argument(
        "--latency-days", type=count_arg, default=20, help="days for the decision latencies"
    )
    ap.add_argument(
        "--model", type=model_arg, default="standard", help="model file (default: the shipped one)"
    )
    ap.add_argument(
        "--out",
        type=output_folder_arg("--out"),
        default=str(REPO / "benchmarks" / "results"),
        help="folder of the table (default benchmarks/results)",
    )
    ap.add_argument(
        "--name",
        type=table_name_arg,
        default="rl-speed",
        help="file name of the table, without .md/.csv",
    )
    ap.add_argument(
        "--latency-only", action="store_true", help="only the decision latencies (a short run)"
    )
    add_repeats_option(ap)
    args = ap.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    table = Measures()

    scenario = standard_scenario()
    world = compile_world(scenario)
    # a bar on stderr over the timed runs, drawn between them (none drawn while one is timed)
    runs = (0 if args.latency_only else args.repeats + 2) + args.repeats + 3
    with progress_bar(timed=True) as bar:
        task = bar.add_task("timed runs", total=runs)

        def done() -> None:
            bar.update(task, advance=1, refresh=True)

        if not args.latency_only:
            env_figures(world, args.days, table, args.repeats, done=done)
        decision_latencies(world, args.model, args.latency_days, table, args.repeats, done=done)
    command = "flock -x /tmp/dispatchlab-cpu.lock .venv/bin/" + command_line(
        ap, given, "rl_speed.py"
    )
    table.write(
        args.out,
        args.name,
        "RL dispatch: environment speed and decision latency",
        f"Standard scenario (`rl_agents.scenario.standard_scenario()`), model `{args.model}`, "
        f"one core. Command: `{command}`.",
    )
    _ = rl_agents


def _nothing() -> None:
    """No progress to show."""


def env_figures(
    world: Any,
    num_days: int,
    table: Measures,
    repeats: int = 1,
    *,
    done: Callable[[], None] = _nothing,
) -> None:
    """Environment steps per second and the per-step split, into ``table``.

    The random-action step rate (target >= 2,000) over ``repeats`` runs of the same days;
    ``done()`` after each of the ``repeats + 2`` timed runs.
    """
    record: Callable[..., None] = table.record
    env = DynamicDispatchEnv(world)
    days = list(range(1, num_days + 1))
    env_speed(env, [days[0]], "random")  # warm up (imports, caches)
    rates, steps = [], 0
    for _ in range(repeats):
        steps, secs = env_speed(env, days, "random")
        rates.append(steps / secs)
        done()
    table.record_runs(
        f"env steps/s, random valid actions ({num_days} days, {steps} steps)",
        rates,
        "steps/s",
        ">=",
        2000.0,
        ">= 2000",
    )
    steps0, secs0 = env_speed(env, days, "first")
    done()
    record("env steps/s, cheapest slot every time", steps0 / secs0, "steps/s")
    split = step_split(env, days[: max(1, num_days // 2)])
    done()
    labels = {
        "twin": "twin (run to the next decision)",
        "apply": "carrying out the action (insertion + re-sequencing the route)",
        "quotes": "insertion quotes of the candidate slots",
        "featurizer": "rest of the featurizer",
        "potential": "reward potential",
        "total": "total",
    }
    for key, label in labels.items():
        record(f"  per step: {label}", split[key], "us")


def decision_latencies(
    world: Any,
    model: str,
    num_days: int,
    table: Measures,
    repeats: int = 1,
    *,
    done: Callable[[], None] = _nothing,
) -> None:
    """Decision latency p50/p99 of the model (guarded and plain) and two heuristics.

    The guarded model's (target <= 2 ms) over ``repeats`` runs of the same days; the others,
    reference figures without a target, over one; ``done()`` after each of those
    ``repeats + 3`` runs.
    """
    held_out = list(range(1, num_days + 1))
    latencies(world, f"model:{model}", [held_out[0]])  # warm up
    for spec in (f"model:{model}", f"model-plain:{model}", "slots", "insertion"):
        is_model = spec.startswith("model:")
        runs = []
        for _ in range(repeats if is_model else 1):
            runs.append(latencies(world, spec, held_out))
            done()
        for q, what in ((50, f" ({runs[-1].size} order decisions)"), (99, "")):
            ms = [float(np.percentile(lat, q)) / 1000.0 for lat in runs]
            measure = f"decision latency p{q}, {spec}{what}"
            if is_model:
                table.record_runs(measure, ms, "ms", "<=", 2.0, "<= 2")
            else:
                table.record(measure, ms[0], "ms")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
