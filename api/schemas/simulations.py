"""``/v1/simulations`` and ``/v1/whatif`` bodies: the twin played forward, KPIs with CIs."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import LargeBody
from api.schemas.routes import SolverInfo
from scenarios.errors import FieldError
from scenarios.geo import NotBool, NulFreeModel, Seed
from scenarios.model import Scenario, check_unique_ids
from scenarios.plan import IntervalMethod, Kpis, Plan
from scenarios.variants import Variant
from simulation.params import MAX_REPLICATIONS, SimParams

Replications = Annotated[int, Field(ge=1, le=MAX_REPLICATIONS), NotBool]
POLICY_HELP = (
    "plan, nearest, insertion[:K|all], reopt:MIN[:ENGINE[:BUDGET]] (see docs/simulation.md)"
)


class SimulationCreate(LargeBody):
    """Play a scenario (and optionally a plan) forward ``replications`` times."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scenario: Scenario
    plan: Plan | None = None
    policy: str | None = Field(
        default=None,
        max_length=100,
        description=f"dispatch policy during the day: {POLICY_HELP}; default plan with a plan, "
        "else insertion",
    )
    replications: Replications = 30
    seed: Seed = Field(default=0, description="study seed; replication seeds derive from it")
    params: SimParams = Field(default_factory=SimParams)


class SimulationResult(BaseModel):
    """KPIs with 95% confidence intervals over the replications."""

    policy: str
    kpis: Kpis
    solver: SolverInfo
    notes: list[str] = Field(
        default_factory=list,
        description="what the KPIs do not say at first sight: the scenario's orders the plan "
        "leaves out (no stop, not unassigned: a re-plan's plan holds only what was left to do "
        "at its now_s, not the orders it completed), which the whole day played counts "
        "unserved under policy plan or serves again under the others; and a KPI undefined on "
        "some replications, over how many and why (on_time_rate: no order was due; "
        "lateness_p50_s, lateness_p95_s: no order was delivered), or null on all of them",
    )


class WhatIfCreate(LargeBody):
    """Variants of a base scenario x policies x replications, compared with the base."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scenario: Scenario = Field(description="the base scenario")
    plan: Plan | None = Field(default=None, description="a plan to play forward in every variant")
    variants: list[Variant] = Field(
        default_factory=list,
        max_length=50,
        description="as in a variant YAML file: name (not 'base', the baseline's) + modifiers "
        "(demand, node_closed, fleet: remove or add couriers, travel_slowdown, pick_time, "
        "stock_shock, stochastic)",
    )
    policies: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=lambda: ["insertion"], min_length=1, max_length=10
    )
    replications: Replications = 10
    seed: Seed = 0
    params: SimParams = Field(default_factory=SimParams)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        check_unique_ids((v.name for v in self.variants), "variants", "name")
        from simulation.policies import repeated_policy

        repeated = repeated_policy(self.policies)  # a Holm family twice the size
        if repeated is not None:
            raise FieldError(("policies", repeated[0]), repeated[1])
        return self


class Candidate(NulFreeModel):
    """A plan to compare, under a name."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=100, description="how tables and reasons name it")
    plan: Plan | None = Field(
        default=None, description="the plan; none: the policy dispatches the day without one"
    )
    policy: str | None = Field(
        default=None,
        max_length=100,
        description="this candidate's dispatch policy (e.g. insertion against reopt:10 on no "
        "plan); default the comparison's policy",
    )


class ComparisonCreate(LargeBody):
    """Candidate plans of one scenario on the same replication seeds, and a recommendation."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scenario: Scenario
    candidates: list[Candidate] = Field(
        min_length=2, max_length=20, description="the plans to compare; the first is the baseline"
    )
    policy: str | None = Field(
        default=None,
        max_length=100,
        description=f"dispatch policy during the day: {POLICY_HELP}; a candidate's own "
        "policy overrides it; default plan for a candidate with a plan, else insertion",
    )
    replications: Replications = 30
    seed: Seed = Field(default=0, description="study seed; replication seeds derive from it")
    params: SimParams = Field(default_factory=SimParams)
    risk_aversion: float = Field(
        default=1.0,
        ge=0.0,
        le=100.0,
        description="risk-adjusted cost = mean + this x standard deviation of the daily cost",
    )
    max_on_time_drop: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="a candidate whose on-time rate is significantly more than this share "
        "below the baseline's is not recommended",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        check_unique_ids((c.name for c in self.candidates), "candidates", "name")
        return self


class ComparisonResult(BaseModel):
    """Each candidate's KPIs, paired differences against the baseline, the recommended plan."""

    baseline: str
    recommended: str = Field(
        description="the baseline unless a candidate is significantly "
        "cheaper and not significantly later (see rule)"
    )
    rule: str
    reasons: list[str]
    risk_adjusted_cost_cents: dict[str, float]
    kpis: dict[str, Kpis]
    paired_differences: dict[str, dict[str, dict[str, Any]]] = Field(
        description="candidate -> KPI -> mean, ci_low, ci_high, n of the paired differences "
        "(candidate minus baseline, same seeds) and the Holm-adjusted test (p_value, "
        "p_adjusted, significant, degenerate, comparisons)"
    )
    policies: dict[str, str] = Field(description="candidate -> the policy its days ran")
    replications: int
    table_markdown: str
    solver: SolverInfo
    notes: list[str] = Field(
        default_factory=list,
        description="what the KPIs do not say at first sight: each candidate whose plan "
        "leaves out orders of the scenario (`candidate NAME: `, then as the notes of a "
        "simulation: no stop, not unassigned, as a re-plan's plan holds only what was left "
        "to do at its now_s, not the orders it completed), which the whole day played counts "
        "unserved under policy plan or serves again under the others",
    )


UNDEFINED = "None when the KPI is undefined in every replication (on-time rate: no order due)"


class WhatIfRow(BaseModel):
    """One KPI of one (variant, policy): mean, CI and paired difference against the base."""

    variant: str
    policy: str
    kpi: str
    mean: float | None = Field(description=f"mean over replications; {UNDEFINED}")
    ci_low: float | None = Field(
        description="95% Student t-interval of the mean (n - 1 degrees of freedom), cut to the "
        "values the KPI can take (see ci_method); None when there is no interval (n < 2)"
    )
    ci_high: float | None
    n: int = Field(description="replications where the KPI is defined")
    constant: bool | None = Field(
        default=None,
        description="true when the n >= 2 replications all gave the same value: ci_low = "
        "ci_high = mean, a zero-width interval that says the replications agree, not that "
        "the mean is known exactly (not to be read as an exact estimate); None in results "
        "written before it was recorded",
    )
    diff: float | None = Field(
        description=f"mean paired difference, variant minus base (same seeds); {UNDEFINED}"
    )
    diff_low: float | None = Field(
        description="95% t-interval of the per-replication differences (diff_n - 1 degrees "
        "of freedom); None when there is no interval (diff_n < 2)"
    )
    diff_high: float | None
    diff_n: int = Field(default=0, description="pairs where the KPI is defined on both sides")
    p_value: float | None = Field(
        default=None,
        description="two-sided p-value of the paired difference: the paired t-test, or the "
        "exact sign test (2 x 0.5^n) when degenerate; None for the base or without a test",
    )
    p_adjusted: float | None = Field(
        default=None,
        description="p_value adjusted by Holm-Bonferroni over the KPI's comparisons with the "
        "base in this sweep (every other variant under every policy)",
    )
    significant: bool = Field(
        default=False, description="p_adjusted < 0.05 (the table's marks follow it)"
    )
    degenerate: bool = Field(
        default=False,
        description="every replication differed by the same amount: the t-interval has zero "
        "width and the sign test decides",
    )
    comparisons: int = Field(default=0, description="the Holm family's size (tested comparisons)")
    ci_method: IntervalMethod = Field(
        default="t",
        description="t (Student t), or clopper-pearson-orders for an on-time rate at 0 or 1 on "
        "every replication (exact interval of the pooled orders due); clopper-pearson-days "
        "where the orders due are not known (not in a what-if run, which knows them); none "
        "below two replications defining the KPI: no interval (ci_low and ci_high None)",
    )


class WhatIfSample(BaseModel):
    """One replication's KPI values (what the table's intervals and tests are computed from)."""

    variant: str
    policy: str
    replication: int = Field(description="replication index, 0-based")
    seed: int = Field(description="the replication's seed (the same for every variant)")
    metrics: dict[str, float | None] = Field(
        description="KPI values of this replication; None where undefined (no order due)"
    )


class WhatIfResult(BaseModel):
    """The comparison table of a what-if sweep (base = the unmodified scenario)."""

    base: str
    variants: list[str]
    policies: list[str]
    replications: int
    rows: list[WhatIfRow] = Field(
        description="one per variant x policy x KPI, every KPI of the twin: the rows of "
        "comparison.csv of dispatchlab whatif (same names and values for the same seed; "
        "table_markdown and the report page show the main 11)"
    )
    table_markdown: str
    solver: SolverInfo
    seed: int | None = Field(default=None, description="the study's seed")
    samples: list[WhatIfSample] = Field(
        default_factory=list,
        description="every (variant, policy, replication)'s KPIs, base first (empty in "
        "results stored before 2026-12-04)",
    )
    notes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="variant -> what its modifiers did not do as written (copies not made); "
        "base: also, one per policy, the scenario's orders the plan (played in every variant) "
        "leaves out, as the notes of a simulation say them (`the plan, played in every "
        "variant: ` first; a re-plan's plan holds only what was left to do at its now_s)",
    )
    changes: dict[str, str] = Field(
        default_factory=dict,
        description="variant -> what it changes in the base, its modifiers in order "
        "(`travel_slowdown factor 1.3; fleet remove 2`), as table_markdown and the report "
        "page list them (empty in results stored before session 77)",
    )
    extra: dict[str, Any] = Field(default_factory=dict)
