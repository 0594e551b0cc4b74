"""Fair benchmark of dispatch policies on held-out days of the standard scenario.

Run (long: the re-optimising policies and the hindsight solves; a shared lock is enough
because no timing is reported from it)::

    flock -s /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/rl_evaluate.py

Every policy runs on the same held-out day seeds (default 1..100; training uses seeds from
1,000,000 up): nearest idle courier (``greedy``), cheapest insertion over the 8 nearest
couriers (``insertion``) and over all (``insertion:12``), cheapest insertion over the agent's
candidate slots (``slots``, the imitation expert; ``slots-drop`` with the first decision
guard), EURO-style epoch dispatch (``euro-greedy:5``, ``euro-lazy:5``), periodic
re-optimisation every 2/5/10 minutes (``reopt:N``), the learned model (``model:standard`` by
default, with its decision guards; ``model-plain:standard`` is the network alone) and the
hindsight reference (``hindsight``: the day solved offline; cached in
``benchmarks/results/rl-hindsight-days.jsonl``, so re-runs reuse it). The reference runs by
iteration budgets (``--hindsight-iterations``, ``--hindsight-search-iterations``; the time limits
are then only a safety cap), so it is the same on a busy machine as on an idle one; ``none``
goes back to wall-clock budgets.

Writes ``benchmarks/results/rl-evaluation.md``, ``.csv`` (one row per policy and day) and
``.json`` (policy -> summary), with the issue's targets checked for the model.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pydantic import ValidationError  # noqa: E402

from rl_agents.evaluate import (  # noqa: E402
    PolicySummary,
    report_json,
    run_days,
    summarise,
    table_markdown,
)
from rl_agents.hindsight import (  # noqa: E402
    HindsightParams,
    budget_settings,
    parse_iterations,
)
from rl_agents.scenario import parse_seeds, standard_scenario  # noqa: E402
from scenarios.errors import InputError  # noqa: E402
from simulation.executors import make_executor  # noqa: E402
from simulation.stats import RatioInterval, paired_diff, ratio_ci  # noqa: E402

DEFAULT = (
    "greedy,insertion,insertion:12,slots,slots-drop,euro-greedy:5,euro-lazy:5,reopt:2,reopt:5,"
    "reopt:10,model-plain:standard,model:standard,hindsight"
)


#: How the target table decides (printed under it).
TARGET_RULES = (
    'Status rule: a cost target "mean cost / reference\'s <= r" is **met** when the paired '
    "t-test of mean(policy - r x reference) = 0 over the days both played rejects at 5% with "
    "the policy below (the ratio's whole Fieller 95% interval, shown, is within the target), "
    "**missed** when it rejects the other way, and **undecided** otherwise (the side of the "
    "point estimate is given); \"on-time >= greedy's\" is met unless the policy's on-time "
    "rate is significantly below greedy's (the paired on-time difference by day, "
    "Holm-adjusted over the table's on-time comparisons with greedy, 5%), not by comparing "
    "the two means."
)


def ratio_target(
    mine: dict[int, float], ref: dict[int, float], limit: float
) -> tuple[str, RatioInterval]:
    """Status of "mean(mine) / mean(ref) <= limit" over the shared days, by the paired t-test."""
    days = sorted(set(mine) & set(ref))
    a = [mine[d] for d in days]
    b = [ref[d] for d in days]
    ci = ratio_ci(a, b)
    if ci.n == 0 or math.isnan(ci.ratio):
        return "n/a", ci
    test = paired_diff(a, [limit * x for x in b])  # mean(a) - limit x mean(b), by day
    if test.differs_from(0.0):
        return ("met" if test.mean < 0 else "missed"), ci
    side = "meets" if ci.ratio <= limit else "misses"
    return f"undecided (the estimate {side} it)", ci


def _ratio_text(ci: RatioInterval, lower: bool) -> str:
    """``0.212 [0.205, 0.219]``, or as "% lower" (``78.8% lower [78.1%, 79.5%]``)."""
    if lower:
        value = f"{1.0 - ci.ratio:.1%} lower"
        pair = (1.0 - ci.high, 1.0 - ci.low)
        spec = ".1%"
    else:
        value, pair, spec = f"{ci.ratio:.3f}", (ci.low, ci.high), ".3f"
    if ci.bounded:
        return f"{value} [95% CI {format(pair[0], spec)}, {format(pair[1], spec)}]"
    return value + (" [unbounded]" if ci.n >= 2 else f" (n={ci.n})")


def on_time_not_worse(s: PolicySummary) -> bool:
    """False only when the policy's on-time rate is significantly (Holm, 5%) below greedy's."""
    test, d = s.on_time_diff_test, s.on_time_diff_vs_greedy
    return not (test is not None and test["significant"] and d is not None and d < 0)


def targets(summaries: dict[str, PolicySummary], model: str, hind: str | None) -> list[str]:
    """Lines of the target check for the model (the rule: :data:`TARGET_RULES`)."""
    s = summaries[model]
    g, ins = summaries["greedy"], summaries.get("insertion")
    lines = []
    status, ci = ratio_target(s.costs, g.costs, 0.90)
    lines.append(
        f"| cost vs nearest-idle greedy | {_ratio_text(ci, lower=True)} | >= 10% lower | {status} |"
    )
    if ins is not None:
        status, ci = ratio_target(s.costs, ins.costs, 0.97)
        mine, greedy = s.on_time_rate, g.on_time_rate  # None: no order was due on any day
        shown = [f"{r:.3f}" if r is not None else "n/a" for r in (mine, greedy)]
        on_time = f"on-time {shown[0]} vs greedy {shown[1]}"
        d, d_ci, test = s.on_time_diff_vs_greedy, s.on_time_diff_ci, s.on_time_diff_test
        if d is not None and d_ci is not None:
            on_time += f", paired difference {d:+.3f} [{d_ci[0]:+.3f}, {d_ci[1]:+.3f}]"
            if test is not None and test["p_adjusted"] is not None:
                on_time += f", Holm p {test['p_adjusted']:.2g}"
        if not on_time_not_worse(s):
            status = "missed (on-time significantly below greedy's)"
        lines.append(
            f"| cost vs cheapest insertion ({on_time}) | {_ratio_text(ci, lower=True)} | "
            f">= 3% lower, on-time not significantly below greedy's | {status} |"
        )
    if hind is not None and s.cost_vs_hindsight is not None:
        status, ci = ratio_target(s.costs, summaries[hind].costs, 1.10)
        gap = "-" if s.gap_closed is None else f"{s.gap_closed:.1%}"
        lines.append(
            f"| cost / hindsight (gap closed {gap}) | {_ratio_text(ci, lower=False)} | "
            f"<= 1.10 (>= 50% of the gap) | {status} |"
        )
    return lines


#: the command-line option of each hindsight setting, for error messages
_HINDSIGHT_OPTIONS = {
    "time_limit_s": "--hindsight-time-limit",
    "warm_start_policies": "--hindsight-warm-start",
    "warm_start_solve": "--hindsight-warm-solve",
    "search_s": "--hindsight-search-s",
    "max_iterations": "--hindsight-iterations",
    "duration_iterations": "--hindsight-iterations",
    "search_iterations": "--hindsight-search-iterations",
}

#: The benchmark's iteration budgets (PyVRP shift- and duration-priced runs, improvement search):
#: on an idle core about the 30 s each of the wall-clock budgets they replace (docs/rl.md).
DEFAULT_ITERATIONS = "4500,900"
DEFAULT_SEARCH_ITERATIONS = "1500"


def _hindsight_sentence(args: argparse.Namespace, hindsight: HindsightParams) -> str:
    """What the hindsight reference is made of, for the table's preamble."""
    warm = args.hindsight_warm_start
    if hindsight.max_iterations is not None:
        budget = f"{hindsight.max_iterations:,} iterations"
        if hindsight.iterations_for("duration") != hindsight.max_iterations:
            budget += f" with shift, {hindsight.iterations_for('duration'):,} with duration pricing"
        budget += f", at most {hindsight.time_limit_s:g} s each"
    else:
        budget = f"{hindsight.time_limit_s:g} s each"
    parts = [f"offline PyVRP runs ({budget}, shift and duration pricing, replayed in the twin)"]
    if warm:
        parts.append(f"the day as {', '.join(warm)} played it")
        if args.hindsight_warm_solve:
            parts.append("a solver run started from that day")
    search = hindsight.search_budget_s
    if search > 0:
        length = (
            f"{hindsight.search_iterations:,}-iteration (at most {search:g} s)"
            if hindsight.search_iterations is not None
            else f"{search:g} s"
        )
        parts.append(
            f"and a {length} ruin-and-recreate search scored by the twin's own cost, started "
            "from the cheapest of these (`rl_agents.hindsight_search`)"
        )
    return "Hindsight = per day, the best of " + ", ".join(parts) + ": a reference, not a bound."


def _capped_sentence(outcomes: list) -> str:
    """How many hindsight runs the safety cap stopped before their iterations ('' if none)."""
    runs = {  # one row per repair policy: one entry per solver run
        (out.policy, out.seed, r["pricing"], r["run"]): bool(r["capped"])
        for out in outcomes
        if out.policy.startswith("hindsight")
        for r in out.detail.get("runs", [])
        if "capped" in r
    }
    capped = sum(runs.values())
    if not runs:
        return ""
    return (
        f"Iteration budgets: {capped} of {len(runs)} solver runs and searches were stopped by "
        "the wall-clock safety cap instead (those are not reproducible). "
    )


def main() -> None:
    """Run the comparison and write the result files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", default=DEFAULT)
    ap.add_argument("--seeds", default="1..100")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--hindsight-time-limit",
        type=float,
        default=None,
        help="seconds per hindsight solver run (default: 30; with iteration budgets, the "
        "safety cap, default 300)",
    )
    ap.add_argument(
        "--hindsight-warm-start",
        type=lambda text: [w.strip() for w in text.split(",") if w.strip()],
        default="slots",
        help="online policies whose played day is a hindsight candidate ('' = none)",
    )
    ap.add_argument(
        "--hindsight-warm-solve",
        action="store_true",
        help="also start a hindsight solver run from each played day",
    )
    ap.add_argument(
        "--hindsight-search-s",
        type=float,
        default=None,
        help="seconds of the hindsight improvement search per day (default: the time limit; "
        "with search iterations, the safety cap, default 300; 0 = off)",
    )
    ap.add_argument(
        "--hindsight-iterations",
        default=DEFAULT_ITERATIONS,
        help="PyVRP iterations per hindsight solver run: N, or SHIFT,DURATION per pricing "
        f"(default {DEFAULT_ITERATIONS}; 'none' = stop on the clock, --hindsight-time-limit)",
    )
    ap.add_argument(
        "--hindsight-search-iterations",
        default=DEFAULT_SEARCH_ITERATIONS,
        help="iterations of the hindsight improvement search "
        f"(default {DEFAULT_SEARCH_ITERATIONS}; 'none' = stop on the clock, --hindsight-search-s)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--name", default="rl-evaluation")
    args = ap.parse_args()
    try:
        seeds = parse_seeds(args.seeds)
    except InputError as err:
        ap.error(f"--seeds: {err.reason}")  # exit 2
    try:
        iterations = parse_iterations(args.hindsight_iterations)
    except ValueError as err:
        ap.error(f"--hindsight-iterations: {err}")  # exit 2
    try:
        search = parse_iterations(args.hindsight_search_iterations, per_pricing=False)
    except ValueError as err:
        ap.error(f"--hindsight-search-iterations: {err}")  # exit 2
    # the search off (--hindsight-search-s 0) has no iterations
    search_iterations = search[0] if search is not None and args.hindsight_search_s != 0 else None
    hindsight_params = {
        **budget_settings(
            time_limit_s=args.hindsight_time_limit,
            search_s=args.hindsight_search_s,
            iterations=iterations,
            search_iterations=search_iterations,
            default_time_limit_s=30.0,
        ),
        "warm_start_policies": args.hindsight_warm_start,
        "warm_start_solve": args.hindsight_warm_solve,
    }
    try:
        hindsight = HindsightParams.model_validate(hindsight_params)
    except ValidationError as err:
        bad = err.errors(include_url=False)[0]
        name = str(bad["loc"][0]) if bad["loc"] else "hindsight"
        option = _HINDSIGHT_OPTIONS.get(name, name)
        ap.error(f"{option}: {bad['msg']}")  # exit 2
    specs = [s.strip() for s in args.policies.split(",") if s.strip()]
    scenario = standard_scenario()
    cache = args.out / "rl-hindsight-days.jsonl"
    done = [0]

    def progress(d: int, total: int) -> None:
        if d != done[0]:
            done[0] = d
            print(f"{d}/{total} policy-days", flush=True)

    t0 = time.perf_counter()
    try:
        outcomes = run_days(
            scenario,
            specs,
            seeds,
            executor=make_executor("local" if args.workers > 1 else "serial", workers=args.workers),
            hindsight_params=hindsight_params,
            cache=cache,
            progress=progress,
        )
    except InputError as err:  # an unknown policy, settings that leave nothing to solve
        ap.error(err.one_line())  # exit 2
    wall = time.perf_counter() - t0
    summaries = summarise(outcomes)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / f"{args.name}.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        keys = ["cost_cents", "on_time_rate", "orders_unserved", "orders_delivered",
                "time_cost_cents", "fixed_cost_cents", "lateness_cost_cents",
                "unserved_cost_cents", "distance_cost_cents"]  # fmt: skip
        writer.writerow(["policy", "seed", *keys, "decisions", "wall_s"])
        for out in outcomes:
            writer.writerow(
                [
                    out.policy,
                    out.seed,
                    *(out.metrics.get(k, "") for k in keys),
                    out.num_decisions,
                    round(out.wall_s, 3),
                ]
            )
    (args.out / f"{args.name}.json").write_text(json.dumps(report_json(summaries), indent=2) + "\n")
    model = next((p for p in summaries if p.startswith("model:")), None)
    hind = next((p for p in summaries if p.startswith("hindsight")), None)
    lines = [
        "# RL dispatch: policies on held-out days of the standard scenario",
        "",
        f"`rl_agents.scenario.standard_scenario()`, day seeds {args.seeds} (held out: training "
        "days are seeds 1,000,000 and up). Costs in cents (the twin's `cost_cents`), means over "
        "days; differences are paired (same days). Gap closed = (C_greedy - C_policy) / "
        "(C_greedy - C_hindsight). Latencies here come from a "
        f"{args.workers}-worker run on a shared machine; the reported latency figures are in "
        "`rl-speed.md` and, for the model with its "
        "decision guards, `rl-speed-latency.md` (exclusive lock). "
        f"{_hindsight_sentence(args, hindsight)} {_capped_sentence(outcomes)}"
        f"Wall time {wall / 60:.0f} min, Python {platform.python_version()}. Command: "
        "`flock -s /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/rl_evaluate.py "
        f"{' '.join(sys.argv[1:])}`.",
        "",
        table_markdown(summaries),
    ]
    if model is not None:
        lines += [
            f"Targets for `{model}`:",
            "",
            "| target | value | wanted | status |",
            "|---|---|---|---|",
            *targets(summaries, model, hind),
            "",
            TARGET_RULES,
            "",
        ]
    (args.out / f"{args.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
