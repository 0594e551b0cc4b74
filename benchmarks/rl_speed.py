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

``--latency-only`` skips 1 and 2 (a short run). Writes ``benchmarks/results/rl-speed.md`` and
``.csv`` (``--name`` for another name).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import rl_agents  # noqa: E402
from benchmarks.measures import Measures  # noqa: E402
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


def main() -> None:
    """Run every measurement and write the result files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=20, help="days for the environment speed")
    ap.add_argument("--latency-days", type=int, default=20)
    ap.add_argument("--model", default="standard", help="model file (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--name", default="rl-speed")
    ap.add_argument(
        "--latency-only", action="store_true", help="only the decision latencies (a short run)"
    )
    args = ap.parse_args()
    table = Measures()
    record = table.record

    scenario = standard_scenario()
    world = compile_world(scenario)
    if not args.latency_only:
        env_figures(world, args.days, record)
    decision_latencies(world, args.model, args.latency_days, record)
    command = "flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/rl_speed.py"
    if sys.argv[1:]:
        command += " " + " ".join(sys.argv[1:])
    table.write(
        args.out,
        args.name,
        "RL dispatch: environment speed and decision latency",
        f"Standard scenario (`rl_agents.scenario.standard_scenario()`), model `{args.model}`, "
        f"one core. Command: `{command}`.",
    )
    _ = rl_agents


def env_figures(world: Any, num_days: int, record: Callable[..., None]) -> None:
    """Environment steps per second and the per-step split, into ``record``."""
    env = DynamicDispatchEnv(world)
    days = list(range(1, num_days + 1))
    env_speed(env, [days[0]], "random")  # warm up (imports, caches)
    steps, secs = env_speed(env, days, "random")
    rate = steps / secs
    record(
        f"env steps/s, random valid actions ({num_days} days, {steps} steps)",
        rate,
        "steps/s",
        ">= 2000",
        "met" if rate >= 2000 else "missed",
    )
    steps0, secs0 = env_speed(env, days, "first")
    record("env steps/s, cheapest slot every time", steps0 / secs0, "steps/s")
    split = step_split(env, days[: max(1, num_days // 2)])
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


def decision_latencies(world: Any, model: str, num_days: int, record: Callable[..., None]) -> None:
    """Decision latency p50/p99 of the model (guarded and plain) and two heuristics."""
    held_out = list(range(1, num_days + 1))
    latencies(world, f"model:{model}", [held_out[0]])  # warm up
    for spec in (f"model:{model}", f"model-plain:{model}", "slots", "insertion"):
        lat = latencies(world, spec, held_out)
        is_model = spec.startswith("model:")
        for q, what in ((50, f" ({lat.size} order decisions)"), (99, "")):
            ms = float(np.percentile(lat, q)) / 1000.0
            record(
                f"decision latency p{q}, {spec}{what}",
                ms,
                "ms",
                "<= 2" if is_model else "",
                ("met" if ms <= 2 else "missed") if is_model else "",
            )


if __name__ == "__main__":
    main()
