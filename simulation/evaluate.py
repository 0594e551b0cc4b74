"""Play plans forward: one day (:func:`simulate`), replications with KPIs and 95% CIs
(:func:`evaluate`), and a risk-adjusted comparison of candidate plans (:func:`compare`).

Replication ``k`` of a study seeded ``seed`` uses the k-th seed of
``SeedSequence(seed).spawn(n)``; every compared plan (or variant, or policy) is run with the
same replication seeds, and noise is tied to entities (see :mod:`simulation.streams`), so
differences are paired: common random numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scenarios.errors import InputError
from scenarios.model import Scenario
from scenarios.plan import Estimate, Kpis, Plan
from scenarios.saved import saved_context
from simulation.executors import Executor, SerialExecutor
from simulation.params import SimParams
from simulation.policies import Policy, make_policy
from simulation.result import (
    MARKS,
    METRICS,
    RATE_TRIALS,
    UNDEFINED_WHY,
    SimulationResult,
    direction,
    kpi_interval,
    summary_value,
)
from simulation.stats import (
    CONSTANT_EXPLAINED,
    CONSTANT_NOTE,
    NO_INTERVAL,
    FamilyTest,
    Interval,
    degenerate_mark,
    fewer_note,
    fmt_num,
    holm_family,
    interval_text,
    paired_diff,
    zero_difference,
)
from simulation.twin import DispatchSimulator
from simulation.world import World
from solvers.cancel import SolveCancelled, cancelled

Progress = Callable[[int, int], None]


def simulate(
    scenario: Scenario | World,
    plan: Plan | None = None,
    policy: Policy | str | None = None,
    *,
    seed: int,
    params: SimParams | None = None,
    simulator: DispatchSimulator | None = None,
) -> SimulationResult:
    """Simulate one day: the plan (if any) played forward, the policy (if any) deciding."""
    if isinstance(policy, str):
        policy = make_policy(policy)
    sim = (
        simulator
        if simulator is not None
        else DispatchSimulator(scenario, plan=plan, params=params)
    )
    base = params if params is not None else sim.base_params
    tick = policy.tick_s if policy is not None else None
    sim.params = base.model_copy(
        update={
            "tick_s": base.tick_s if base.tick_s is not None else tick,
            "decide_on_arrival": base.decide_on_arrival and policy is not None,
            "decide_on_courier_free": base.decide_on_courier_free and policy is not None,
        }
    )
    sim.reset(seed=seed)
    if policy is None:
        return sim.run()
    policy.reset(sim, seed=seed)
    while (state := sim.next_decision()) is not None:
        sim.apply(policy.decide(state))
    return sim.result()


def replication_seeds(seed: int, replications: int) -> list[int]:
    """The seeds of replications ``0..replications-1`` of a study seeded ``seed``."""
    if replications < 1:
        raise InputError("replications", "must be at least 1")
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


# ----------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Case:
    """One thing to simulate: a scenario, optionally a plan, and twin parameters."""

    scenario: Scenario
    plan: Plan | None = None
    params: SimParams | None = None


@dataclass(frozen=True)
class ReplicationTask:
    """Simulate ``case`` under ``policy`` with replication ``replication`` (seed ``seed``)."""

    case: str
    policy: str
    replication: int
    seed: int


@dataclass
class ReplicationOutcome:
    """What a worker sends back: KPI values and which base orders were on time."""

    case: str
    policy: str
    replication: int
    seed: int
    metrics: dict[str, float]
    base_on_time: NDArray[np.bool_]
    num_events: int
    wall_s: float


@dataclass(frozen=True)
class CaseData:
    """A case as JSON text: what is shipped to workers (pickles small, no live objects)."""

    scenario: str
    plan: str | None
    params: str | None

    @classmethod
    def of(cls, case: Case) -> CaseData:
        """Serialise a case."""
        return cls(
            case.scenario.model_dump_json(),
            case.plan.model_dump_json() if case.plan is not None else None,
            case.params.model_dump_json() if case.params is not None else None,
        )

    def simulator(self) -> DispatchSimulator:
        """A simulator of this case (compiles the world)."""
        # validated before it was sent here (maybe as stored data: saved_context)
        scenario = Scenario.model_validate_json(self.scenario, context=saved_context(stored=True))
        plan = Plan.model_validate_json(self.plan) if self.plan is not None else None
        params = SimParams.model_validate_json(self.params) if self.params is not None else None
        return DispatchSimulator(scenario, plan=plan, params=params)


_PREPARED: dict[tuple[str, str], DispatchSimulator] = {}


def run_replication(
    shared: Mapping[str, CaseData], key: str, task: ReplicationTask
) -> ReplicationOutcome:
    """Worker body (any executor): simulate one task, reusing the compiled world of its case.

    Raises :class:`~solvers.cancel.SolveCancelled` once this thread's solve is cancelled
    (:func:`solvers.cancel.cancel_with`: a service stopping), before it or during it.
    """
    if cancelled():
        raise SolveCancelled("the evaluation was cancelled")
    memo = (key, task.case)
    sim = _PREPARED.get(memo)
    if sim is None:
        if len(_PREPARED) > 16:
            _PREPARED.clear()
        sim = shared[task.case].simulator()
        _PREPARED[memo] = sim
    t0 = time.perf_counter()
    try:
        result = simulate(sim.world, policy=task.policy, seed=task.seed, simulator=sim)
    except SolveCancelled:
        _PREPARED.pop(memo, None)  # left mid-day
        raise
    return ReplicationOutcome(
        case=task.case,
        policy=task.policy,
        replication=task.replication,
        seed=task.seed,
        metrics=result.metrics,
        base_on_time=result.base_on_time,
        num_events=result.num_events,
        wall_s=time.perf_counter() - t0,
    )


def shared_key(cases: Mapping[str, CaseData]) -> str:
    """A content hash of the cases (workers cache compiled worlds under it)."""
    h = hashlib.sha256()
    for name in sorted(cases):
        case = cases[name]
        for part in (name, case.scenario, case.plan or "", case.params or ""):
            h.update(part.encode())
            h.update(b"\0")
    return h.hexdigest()[:16]


def run_tasks(
    cases: Mapping[str, Case],
    tasks: Sequence[ReplicationTask],
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
    plugins: Sequence[str] = (),
) -> list[ReplicationOutcome]:
    """Run replication tasks on an executor (in-process by default), results in task order."""
    ex = executor if executor is not None else SerialExecutor()
    done = 0

    def tick(_i: int, _r: object) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(tasks))

    data = {name: CaseData.of(case) for name, case in cases.items()}
    return ex.run(
        run_replication,
        data,
        shared_key(data),
        list(tasks),
        on_result=tick,
        plugins=plugins,
    )


# ------------------------------------------------------------------ KPIs


def kpis_from(
    outcomes: Sequence[ReplicationOutcome],
    *,
    base_order_ids: Sequence[str] = (),
    seed: int | None = None,
) -> Kpis:
    """Aggregate replications into Kpis: mean and 95% CI per KPI, per-order on-time probability."""
    if not outcomes:
        raise ValueError("no replications to summarise")
    # a lateness of a day that delivered no order is undefined here (NaN), as in a what-if
    # study; the replications' own metrics keep the twin's 0
    cols = {m: [summary_value(o.metrics, m) for o in outcomes] for m in METRICS}
    cis = {
        m: kpi_interval(m, v, cols[RATE_TRIALS[m]] if m in RATE_TRIALS else None)
        for m, v in cols.items()
    }
    # A KPI undefined in every replication (no order due, or none delivered, on any day) has
    # no estimate.
    est = {m: ci.estimate() for m, ci in cis.items() if ci.n > 0 or m not in UNDEFINED_WHY}
    per_order: dict[str, float] = {}
    if base_order_ids:
        hits = np.mean(np.vstack([o.base_on_time for o in outcomes]), axis=0)
        per_order = {oid: float(p) for oid, p in zip(base_order_ids, hits, strict=True)}
    main = {
        "on_time_rate",
        "lateness_p50_s",
        "lateness_p95_s",
        "distance_m",
        "courier_hours",
        "cost_cents",
        "courier_utilisation",
        "node_utilisation",
        "orders_unfilled",
        "orders_failed",
    }
    return Kpis(
        **{m: est.get(m) for m in main},
        per_order_on_time=per_order,
        orders_unserved=est["orders_unserved"],
        extra={m: e for m, e in est.items() if m not in main and m != "orders_unserved"},
        replications=len(outcomes),
        seed=seed,
        policy=outcomes[0].policy,
    )


def undefined_notes(kpis: Kpis) -> list[str]:
    """What the KPIs undefined on some or every replication are over, one line per reason.

    ``lateness_p50_s, lateness_p95_s: over 4 of 6 replications (no order was delivered on
    the other 2)``, or ``...: n/a (no order was delivered in any of the 6 replications)``;
    none when every KPI is over every replication (or the replications are not recorded).
    """
    reps = kpis.replications
    groups: dict[tuple[str, int], list[str]] = {}
    for metric, why in UNDEFINED_WHY.items():
        est = _estimate(kpis, metric)
        n = 0 if est is None else est.n
        if reps and n < reps:
            groups.setdefault((why, n), []).append(metric)
    notes = []
    for (why, n), metrics in groups.items():
        names = ", ".join(metrics)
        if n == 0:
            every = "the replication" if reps == 1 else f"any of the {reps:,} replications"
            notes.append(f"{names}: n/a ({why} in {every})")
        else:
            other = "the other one" if reps - n == 1 else f"the other {reps - n:,}"
            notes.append(f"{names}: over {n:,} of {reps:,} replications ({why} on {other})")
    return notes


def evaluate(
    scenario: Scenario,
    plan: Plan | None = None,
    *,
    policy: str | None = None,
    replications: int = 30,
    seed: int = 0,
    params: SimParams | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    plugins: Sequence[str] = (),
) -> Kpis:
    """Replicate one day ``replications`` times and estimate every KPI with a 95% CI.

    ``policy`` defaults to ``plan`` (pure replay) with a plan and ``insertion`` without;
    ``plugins``: modules every worker imports first (those registering ``policy``).
    """
    spec = policy if policy is not None else ("plan" if plan is not None else "insertion")
    make_policy(spec)  # fail fast on a bad spec
    cases = {"case": Case(scenario, plan, params)}
    seeds = replication_seeds(seed, replications)
    tasks = [ReplicationTask("case", spec, k, s) for k, s in enumerate(seeds)]
    outcomes = run_tasks(cases, tasks, executor=executor, progress=progress, plugins=plugins)
    return kpis_from(outcomes, base_order_ids=[o.id for o in scenario.orders], seed=seed)


# ------------------------------------------------------------ comparison


@dataclass(frozen=True)
class RiskRule:
    """How :func:`compare` recommends a plan.

    Among candidates whose on-time rate is not significantly worse than the baseline's by more
    than ``max_on_time_drop`` (the paired 95% CI of the difference lies entirely below
    ``-max_on_time_drop``), pick the one with the lowest **risk-adjusted cost** = mean cost +
    ``risk_aversion`` x standard deviation of the per-replication cost (a bad day counts). Move
    away from the baseline only when the winner's paired cost difference against it is
    significantly negative; otherwise keep the baseline. "Significantly negative" is the
    Holm-adjusted decision over the cost comparisons of every candidate with the baseline
    (the winner is picked among them), on the paired t-test (the sign test when every
    replication differs by the same amount). The on-time exclusion is not adjusted (adjusting
    it would let more candidates through).
    """

    risk_aversion: float = 1.0
    max_on_time_drop: float = 0.02

    def describe(self) -> str:
        """The rule in one paragraph."""
        return (
            f"risk-adjusted cost = mean + {self.risk_aversion:g} x sd of per-replication cost; "
            f"candidates whose on-time rate is significantly more than "
            f"{100 * self.max_on_time_drop:g} points below the baseline's are excluded; "
            "the baseline is kept unless the best candidate is significantly cheaper "
            "(paired test of the cost difference, Holm-adjusted over the candidates)"
        )


@dataclass
class Comparison:
    """KPIs of each candidate, paired differences against the baseline, a recommendation."""

    baseline: str
    names: list[str]
    kpis: dict[str, Kpis]
    samples: dict[str, dict[str, NDArray[np.float64]]]
    diffs: dict[str, dict[str, Interval]]
    risk_adjusted_cost: dict[str, float]
    recommended: str
    rule: str
    reasons: list[str] = field(default_factory=list)
    #: candidate -> KPI -> its paired test against the baseline, Holm-adjusted over the
    #: candidates (one family per KPI); the baseline has none
    tests: dict[str, dict[str, FamilyTest]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The comparison as JSON: recommendation, rule, reasons, KPIs, paired differences."""
        return {
            "baseline": self.baseline,
            "recommended": self.recommended,
            "rule": self.rule,
            "reasons": self.reasons,
            "risk_adjusted_cost_cents": self.risk_adjusted_cost,
            "kpis": {n: json.loads(k.model_dump_json()) for n, k in self.kpis.items()},
            "paired_differences": {
                n: {
                    # null where undefined (no pair with both sides defined): NaN is not JSON
                    m: {
                        "mean": None if d.n == 0 else d.mean,
                        # null without an interval (method none: fewer than two pairs)
                        "ci_low": d.bounds[0],
                        "ci_high": d.bounds[1],
                        "n": d.n,
                        # the paired test, Holm-adjusted over the candidates (one family per KPI)
                        **self.tests[n][m].as_json(),
                    }
                    for m, d in self.diffs[n].items()
                }
                for n in self.names
                if n != self.baseline
            },
        }

    def markdown(
        self, metrics: Sequence[str] = ("cost_cents", "on_time_rate", "lateness_p95_s")
    ) -> str:
        """A markdown table: each candidate's KPI means [95% CI] and paired differences."""
        head = [
            "candidate",
            *metrics,
            *(f"Δ {m} vs {self.baseline}" for m in metrics),
            "risk-adj. cost",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in self.names:
            k = self.kpis[name]
            cells = [name + (" **(recommended)**" if name == self.recommended else "")]
            reps = k.replications
            for m in metrics:
                e = _estimate(k, m)
                cells.append(
                    "n/a"
                    if e is None
                    else f"{fmt_num(e.mean, '.4g')} "
                    + interval_text(e.ci_low, e.ci_high, ".4g", e.method, constant=e.constant)
                    + ("" if e.method == "none" else fewer_note(e.n, reps))
                )
            for m in metrics:
                d = self.diffs[name][m]
                cells.append(
                    "—"
                    if name == self.baseline
                    else "n/a"
                    if d.n == 0
                    else f"{fmt_num(d.mean, '.4g' if zero_difference(d.mean) else '+.4g')} "
                    f"{NO_INTERVAL}"
                    if d.method == "none"
                    else _diff_text(d)
                    + f"{self._flat(name, m)}{fewer_note(d.n, reps)}{self._mark(name, m)}"
                )
            cells.append(fmt_num(self.risk_adjusted_cost[name], ".4g"))
            lines.append("| " + " | ".join(cells) + " |")
        sizes = ", ".join(f"{m} {self._family_size(m)}" for m in metrics)
        return (
            "\n".join(lines)
            + "\n\nΔ: paired differences, candidate minus baseline, with unadjusted 95% "
            "t-intervals. ▲ significantly better, ▼ significantly worse, ◆ a significant change "
            "of a KPI that is neither (utilisation), after Holm-Bonferroni per KPI over the "
            f"candidates' comparisons with {self.baseline} (comparisons: {sizes}). † every "
            "replication differed by the same non-zero amount: the interval is degenerate and "
            f"the exact sign test (p = 2 x 0.5^n) decides. {CONSTANT_EXPLAINED}\n"
            + f"\nRule: {self.rule}.\n"
            + "".join(f"\n- {r}" for r in self.reasons)
        )

    def _flat(self, name: str, metric: str) -> str:
        """`` †`` when the difference was the same non-zero amount in every replication."""
        test = self.tests.get(name, {}).get(metric)
        return degenerate_mark(test.degenerate, test.p_value) if test is not None else ""

    def _mark(self, name: str, metric: str) -> str:
        """`` ▲``/`` ▼``/`` ◆`` when the Holm-adjusted test of the difference rejects."""
        test = self.tests.get(name, {}).get(metric)
        if test is None or not test.significant:
            return ""
        return " " + MARKS[direction(metric, self.diffs[name][metric].mean)]

    def _family_size(self, metric: str) -> int:
        """How many comparisons the KPI's Holm family has."""
        return next((t[metric].family_size for t in self.tests.values() if metric in t), 0)


def _diff_text(d: Interval) -> str:
    """``+d [+low, +high]``; one of 0 in every replication is plainly none, ``0 [0, 0]
    (constant)``, not ``+0 [+0, +0]`` (see :func:`_ci_text`)."""
    flat_zero = d.degenerate and zero_difference(d.mean)
    return f"{'0' if flat_zero else fmt_num(d.mean, '+.4g')} {_ci_text(d, '+.4g')}"


def _ci_text(d: Interval, spec: str) -> str:
    """``[low, high]`` of a difference for the reasons; ``[x, x] (constant)`` when every
    replication differed by the same amount (``[0, 0] (constant)``, unsigned, by none)."""
    if d.degenerate and zero_difference(d.mean):
        return f"[0, 0]{CONSTANT_NOTE}"
    flat = CONSTANT_NOTE if d.degenerate else ""
    return f"[{fmt_num(d.low, spec)}, {fmt_num(d.high, spec)}]{flat}"


def _estimate(k: Kpis, metric: str) -> Estimate | None:
    value = getattr(k, metric, None)
    if isinstance(value, Estimate) or metric in Kpis.model_fields:
        return value
    return k.extra.get(metric)


def compare(
    scenario: Scenario,
    candidates: Mapping[str, Plan | None],
    *,
    policy: str | None = None,
    replications: int = 30,
    seed: int = 0,
    params: SimParams | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    rule: RiskRule | None = None,
    scenarios: Mapping[str, Scenario] | None = None,
    policies: Mapping[str, str] | None = None,
    plugins: Sequence[str] = (),
) -> Comparison:
    """Simulate candidate plans on the same replication seeds and recommend one.

    The first candidate is the baseline. ``scenarios`` may give a candidate its own scenario
    (e.g. buffered time windows); by default every candidate uses ``scenario``. ``policies``
    may give a candidate its own dispatch policy (else ``policy``; by default ``plan`` for a
    candidate with a plan, ``insertion`` without); ``plugins``: modules every worker imports
    first (those registering the policies).
    """
    if not candidates:
        raise InputError("candidates", "give at least one plan to compare")
    rule = rule or RiskRule()
    names = list(candidates)
    baseline = names[0]
    cases = {n: Case((scenarios or {}).get(n, scenario), candidates[n], params) for n in names}
    seeds = replication_seeds(seed, replications)
    specs = {
        n: (policies or {}).get(n)
        or (policy if policy is not None else "plan" if candidates[n] is not None else "insertion")
        for n in names
    }
    tasks = [ReplicationTask(n, specs[n], k, s) for n in names for k, s in enumerate(seeds)]
    outcomes = run_tasks(cases, tasks, executor=executor, progress=progress, plugins=plugins)
    by_name: dict[str, list[ReplicationOutcome]] = {n: [] for n in names}
    for out in outcomes:
        by_name[out.case].append(out)
    # Each candidate's own orders: a candidate scenario may add, drop or reorder some.
    kpis = {
        n: kpis_from(by_name[n], base_order_ids=[o.id for o in cases[n].scenario.orders], seed=seed)
        for n in names
    }
    samples = {  # as kpis_from reads them: a lateness of a day that delivered nothing is NaN
        n: {m: np.asarray([summary_value(o.metrics, m) for o in by_name[n]]) for m in METRICS}
        for n in names
    }
    diffs = {
        n: {m: paired_diff(samples[n][m], samples[baseline][m]) for m in METRICS} for n in names
    }
    others = [n for n in names if n != baseline]
    tests: dict[str, dict[str, FamilyTest]] = {n: {} for n in others}
    for m in METRICS:
        for n, t in zip(others, holm_family([diffs[n][m] for n in others]), strict=True):
            tests[n][m] = t
    risk = {
        n: float(samples[n]["cost_cents"].mean())
        + rule.risk_aversion
        * float(samples[n]["cost_cents"].std(ddof=1) if replications > 1 else 0.0)
        for n in names
    }
    reasons: list[str] = []
    admissible = []
    for n in names:
        d = diffs[n]["on_time_rate"]
        if n != baseline and d.below(-rule.max_on_time_drop):
            reasons.append(
                f"{n} excluded: on-time rate {fmt_num(d.mean, '+.3f')} vs {baseline} "
                f"(CI {_ci_text(d, '+.3f')})"
            )
        else:
            admissible.append(n)
    best = min(admissible, key=lambda n: (risk[n], names.index(n)))
    recommended = baseline
    if best != baseline:
        d = diffs[best]["cost_cents"]
        if not d.informative:
            reasons.append(
                f"{best} has the lowest risk-adjusted cost, but one replication cannot show a "
                f"significant difference: keep {baseline}"
            )
        elif tests[best]["cost_cents"].significant and d.mean < 0.0:
            recommended = best
            reasons.append(
                f"{best} is significantly cheaper than {baseline}: {fmt_num(d.mean, '+.0f')} "
                f"cents (95% CI {_ci_text(d, '+.0f')}, "
                f"{_p_text(tests[best]['cost_cents'])}) "
                "with the lowest risk-adjusted cost"
            )
        else:
            reasons.append(
                f"{best} has the lowest risk-adjusted cost but its cost difference vs {baseline} "
                f"is not significant (95% CI {_ci_text(d, '+.0f')}, "
                f"{_p_text(tests[best]['cost_cents'])}): keep {baseline}"
            )
    else:
        reasons.append(f"{baseline} has the lowest risk-adjusted cost")
    _ = math
    return Comparison(
        baseline=baseline,
        names=names,
        kpis=kpis,
        samples=samples,
        diffs=diffs,
        risk_adjusted_cost=risk,
        recommended=recommended,
        rule=rule.describe(),
        reasons=reasons,
        tests=tests,
    )


def _p_text(test: FamilyTest) -> str:
    """``p = 0.012, Holm-adjusted 0.036 over 3`` (or the sign test's, when degenerate)."""
    if test.p_value is None or test.p_adjusted is None:
        return "no test"
    kind = "sign test " if test.degenerate else ""
    return (
        f"{kind}p = {test.p_value:.3g}, Holm-adjusted {test.p_adjusted:.3g} over "
        f"{test.family_size} comparison{'s' if test.family_size != 1 else ''}"
    )
