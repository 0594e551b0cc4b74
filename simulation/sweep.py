"""What-if sweeps: variants x policies x replication seeds, compared against the base variant.

Every (variant, policy) pair runs on the same replication seeds, so each variant's KPIs are
compared with the base variant's under the same policy as **paired differences** (common
random numbers) with 95% confidence intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenarios.errors import InputError
from scenarios.model import Scenario
from scenarios.plan import Plan
from scenarios.variants import BASE, LoadedVariants, describe_variant, variant_notes
from simulation.evaluate import (
    Case,
    Progress,
    ReplicationOutcome,
    ReplicationTask,
    replication_seeds,
    run_tasks,
)
from simulation.executors import Executor
from simulation.params import SimParams
from simulation.policies import check_policy, repeated_policy
from simulation.result import METRICS, RATE_TRIALS, kpi_interval, summary_value
from simulation.stats import FamilyTest, holm_family, paired_diff
from simulation.twin import order_of_task, plan_coverage_note

#: KPIs shown in the comparison table (the CSV has all of METRICS).
TABLE_METRICS: tuple[str, ...] = (
    "cost_cents",
    "on_time_rate",
    "lateness_p50_s",
    "lateness_p95_s",
    "distance_m",
    "courier_hours",
    "courier_utilisation",
    "node_utilisation",
    "orders_unfilled",
    "orders_failed",
    "orders_unserved",
)


def _value(outcome: ReplicationOutcome, metric: str) -> float:
    """One replication's value of ``metric`` as the study's statistics read it."""
    return summary_value(outcome.metrics, metric)


@dataclass
class SweepResult:
    """Outcomes of every (variant, policy, replication) and their comparison with the base."""

    base: str
    variants: list[str]
    policies: list[str]
    seeds: list[int]
    seed: int
    outcomes: list[ReplicationOutcome]
    #: variant -> what its modifiers noted in its ``source.notes`` (copies a demand modifier
    #: did not make, and why); variants without such notes are left out
    notes: dict[str, list[str]] = field(default_factory=dict)
    #: variant -> what it changes in the base, its modifiers in order
    #: (:func:`~scenarios.variants.describe_variant`); empty in results stored without it
    changes: dict[str, str] = field(default_factory=dict)

    def samples(
        self,
        variant: str,
        policy: str,
        metric: str,
        *,
        runs: Mapping[tuple[str, str], Sequence[ReplicationOutcome]] | None = None,
    ) -> np.ndarray:
        """Per-replication values of one KPI, in replication order (``runs``: the outcomes
        by (variant, policy) of :meth:`_runs`, read instead of every outcome); a lateness
        of a day that delivered no order is NaN
        (:func:`simulation.result.summary_value`)."""
        if runs is not None:
            return np.asarray(
                [_value(o, metric) for o in runs.get((variant, policy), ())], dtype=np.float64
            )
        rows = sorted(
            (o for o in self.outcomes if o.case == variant and o.policy == policy),
            key=lambda o: o.replication,
        )
        return np.asarray([_value(o, metric) for o in rows], dtype=np.float64)

    def _runs(self) -> dict[tuple[str, str], list[ReplicationOutcome]]:
        """The outcomes by (variant, policy), each in replication order, as :meth:`samples`
        reads them (a table's rows looked through every outcome for each of its values)."""
        runs: dict[tuple[str, str], list[ReplicationOutcome]] = {}
        for o in self.outcomes:
            runs.setdefault((o.case, o.policy), []).append(o)
        for group in runs.values():
            group.sort(key=lambda o: o.replication)
        return runs

    def rows(self, metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
        """One row per (variant, policy, KPI): mean and CI, paired difference vs base and CI.

        A KPI undefined in every replication (the on-time rate with no order due) has None for
        its mean and CI (``n`` = 0); a difference without a pair where both are defined has
        None too (``diff_n`` = 0). ``ci_method``: ``t``, or ``clopper-pearson-orders`` for an
        on-time rate at 0 or 1 on every day, or ``none`` below two replications (one value: no
        interval, ``ci_low``/``ci_high`` None; likewise ``diff_low``/``diff_high`` of one pair).
        ``constant``: two or more replications with the same value, whose interval has zero
        width (no confidence statement; not ``degenerate``, which is the difference's).
        Each difference has its paired test:
        ``p_value`` (t-test; the sign test when ``degenerate``, every pair differing by the same
        amount), ``p_adjusted`` by Holm-Bonferroni over the KPI's family (every non-base
        variant and policy of this sweep; ``comparisons`` of them had a test) and
        ``significant``, the adjusted decision at 95%. The base rows have no test (None).
        """
        runs = self._runs()
        tests = {metric: self.family(metric, runs=runs) for metric in metrics}
        out = []
        for variant in self.variants:
            for policy in self.policies:
                for metric in metrics:
                    x = self.samples(variant, policy, metric, runs=runs)
                    trials = RATE_TRIALS.get(metric)
                    ci = kpi_interval(
                        metric,
                        x,
                        self.samples(variant, policy, trials, runs=runs) if trials else None,
                    )
                    row: dict[str, Any] = {
                        "variant": variant,
                        "policy": policy,
                        "kpi": metric,
                        "mean": _defined(ci.mean),
                        # no interval below two values (method none): null bounds
                        "ci_low": _bound(ci.bounds[0]),
                        "ci_high": _bound(ci.bounds[1]),
                        "n": ci.n,
                        # every replication the same value: a zero-width interval, no
                        # confidence statement (the rate at 0 or 1 has Clopper-Pearson's)
                        "constant": ci.degenerate,
                    }
                    if variant != self.base:
                        d = paired_diff(x, self.samples(self.base, policy, metric, runs=runs))
                        row.update(
                            diff=_defined(d.mean),
                            diff_low=_bound(d.bounds[0]),
                            diff_high=_bound(d.bounds[1]),
                            diff_n=d.n,
                        )
                        row.update(tests[metric][(variant, policy)].as_json())
                    else:
                        zero = 0.0 if ci.n else None
                        bound = 0.0 if ci.n >= 2 else None  # no interval of one pair
                        row.update(diff=zero, diff_low=bound, diff_high=bound, diff_n=ci.n)
                        row.update(
                            p_value=None,
                            p_adjusted=None,
                            significant=False,
                            degenerate=False,
                            comparisons=tests[metric][None].family_size,
                        )
                    row["ci_method"] = ci.method
                    out.append(row)
        return out

    def family(
        self,
        metric: str,
        *,
        runs: Mapping[tuple[str, str], Sequence[ReplicationOutcome]] | None = None,
    ) -> dict[tuple[str, str] | None, FamilyTest]:
        """Holm-Bonferroni over one KPI's comparisons: every non-base variant x policy vs base.

        Keyed by (variant, policy); ``None`` holds a test-less entry carrying the family size.
        """
        keys = [(v, p) for v in self.variants if v != self.base for p in self.policies]
        diffs = [
            paired_diff(
                self.samples(v, p, metric, runs=runs), self.samples(self.base, p, metric, runs=runs)
            )
            for v, p in keys
        ]
        tests: dict[tuple[str, str] | None, FamilyTest] = dict(
            zip(keys, holm_family(diffs), strict=True)
        )
        size = next(iter(tests.values())).family_size if keys else 0
        tests[None] = FamilyTest(None, None, False, False, size)
        return tests

    def ordered_outcomes(self) -> list[ReplicationOutcome]:
        """The outcomes in table order: by variant (base first), policy, replication."""
        variant_at = {v: i for i, v in enumerate(self.variants)}
        policy_at = {p: i for i, p in enumerate(self.policies)}
        return sorted(
            self.outcomes, key=lambda o: (variant_at[o.case], policy_at[o.policy], o.replication)
        )

    def sample_records(self) -> list[dict[str, Any]]:
        """Every replication's KPIs as JSON-ready records (undefined KPIs None), in table order."""
        return [
            {
                "variant": o.case,
                "policy": o.policy,
                "replication": o.replication,
                "seed": o.seed,
                "metrics": {k: None if math.isnan(v) else v for k, v in o.metrics.items()},
            }
            for o in self.ordered_outcomes()
        ]

    @classmethod
    def from_records(
        cls,
        *,
        base: str,
        variants: Sequence[str],
        policies: Sequence[str],
        seed: int,
        records: Sequence[Mapping[str, Any]],
        notes: Mapping[str, Sequence[str]] | None = None,
        changes: Mapping[str, str] | None = None,
    ) -> SweepResult:
        """The sweep whose :meth:`sample_records` are ``records`` (for its tables and plots)."""
        outcomes = [
            ReplicationOutcome(
                case=str(r["variant"]),
                policy=str(r["policy"]),
                replication=int(r["replication"]),
                seed=int(r["seed"]),
                metrics={k: math.nan if v is None else float(v) for k, v in r["metrics"].items()},
                base_on_time=np.zeros(0, dtype=bool),
                num_events=0,
                wall_s=0.0,
            )
            for r in records
        ]
        seeds = sorted({(o.replication, o.seed) for o in outcomes})
        return cls(
            base=base,
            variants=list(variants),
            policies=list(policies),
            seeds=[s for _, s in seeds],
            seed=seed,
            outcomes=outcomes,
            notes={k: list(v) for k, v in (notes or {}).items()},
            changes=dict(changes or {}),
        )

    @property
    def events_per_s(self) -> float:
        """Simulated events per wall-clock second of simulation work (summed over workers)."""
        wall = sum(o.wall_s for o in self.outcomes)
        return sum(o.num_events for o in self.outcomes) / wall if wall > 0 else 0.0


def _defined(x: float) -> float | None:
    """None for an undefined (NaN) value, else the value."""
    return None if math.isnan(x) else x


def _bound(x: float | None) -> float | None:
    """An interval bound for a row: None when there is no interval or it is undefined."""
    return None if x is None else _defined(x)


def check_variant_plan(variants: LoadedVariants) -> None:
    """Refuse, naming the plan's file, a plan with ids its base scenario lacks (as ``--plan``)."""
    from simulation.twin import check_plan_ids

    if variants.plan is None:
        return
    check_plan_ids(variants.base, variants.plan, source=variants.plan_source)


def plan_notes(variants: LoadedVariants, policies: Sequence[str]) -> list[str]:
    """The what-if plan's :func:`~simulation.twin.plan_coverage_note` under each policy."""
    if variants.plan is None:
        return []
    notes = (plan_coverage_note(variants.base, variants.plan, spec) for spec in policies)
    return [f"the plan, played in every variant: {note}" for note in notes if note is not None]


def variant_cases(
    scenarios: Mapping[str, Scenario], plan: Plan | None, params: SimParams | None = None
) -> dict[str, Case]:
    """One simulation case per variant; the plan is trimmed to each variant's fleet and orders."""
    cases = {}
    for name, scenario in scenarios.items():
        cases[name] = Case(scenario, _trim_plan(plan, scenario) if plan else None, params)
    return cases


def _trim_plan(plan: Plan, scenario: Scenario) -> Plan:
    """Drop routes of couriers and stops of orders the variant does not have."""
    vehicles = {v.id for v in scenario.vehicles}
    orders = {o.id for o in scenario.orders}
    nodes = {n.id for n in scenario.nodes}

    def known(order_id: str | None) -> bool:  # '<order>@<node>': a job of a split order
        return order_id is None or order_of_task(order_id, orders, nodes) is not None

    routes = [
        r.model_copy(update={"stops": [s for s in r.stops if known(s.order_id)]})
        for r in plan.routes
        if r.vehicle_id in vehicles
    ]
    allocation = [a for a in plan.allocation if a.order_id in orders]
    return plan.model_copy(update={"routes": routes, "allocation": allocation})


def run_sweep(
    variants: LoadedVariants,
    *,
    policies: Sequence[str],
    replications: int,
    seed: int,
    executor: Executor | None = None,
    progress: Progress | None = None,
    params: SimParams | None = None,
    plugins: Sequence[str] = (),
) -> SweepResult:
    """Run variants x policies x replications and collect the outcomes."""
    if not policies:
        raise InputError("policies", "give at least one policy")
    repeated = repeated_policy(policies)  # the same runs twice: a Holm family twice the size
    if repeated is not None:
        raise InputError(f"policies.{repeated[0]}", repeated[1])
    has_plan = variants.plan is not None
    for spec in policies:
        check_policy(spec, "policies", has_plan=has_plan, hint=" in the variant file")
    check_variant_plan(variants)  # trimmed to each variant below, so checked on the base here
    scenarios = variants.scenarios(seed=seed)
    cases = variant_cases(scenarios, variants.plan, params)
    seeds = replication_seeds(seed, replications)
    tasks = [
        ReplicationTask(v, p, k, s)
        for v in variants.names
        for p in policies
        for k, s in enumerate(seeds)
    ]
    outcomes = run_tasks(cases, tasks, executor=executor, progress=progress, plugins=plugins)
    notes = {name: variant_notes(scenario, variants.base) for name, scenario in scenarios.items()}
    # the plan, when it leaves out orders (a re-plan's: those it completed), under the base
    notes[BASE] = [*plan_notes(variants, policies), *notes[BASE]]
    return SweepResult(
        base="base",
        variants=variants.names,
        policies=list(policies),
        seeds=seeds,
        seed=seed,
        outcomes=outcomes,
        notes={name: lines for name, lines in notes.items() if lines},
        changes={v.name: describe_variant(v) for v in variants.spec.variants},
    )
