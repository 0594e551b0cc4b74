"""``/v1/policies/evaluate`` bodies: dispatch policies compared on the same held-out days."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.routes import SolverInfo
from scenarios.geo import Seed
from scenarios.model import Scenario

PolicySpec = Annotated[str, Field(min_length=1, max_length=200)]


class PolicyEvaluationCreate(BaseModel):
    """Run each policy (and the ``greedy`` baseline) on the same day seeds and compare."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scenario: Scenario | None = Field(
        default=None, description="the day to dispatch; None = the RL benchmark's standard city"
    )
    policies: list[PolicySpec] = Field(
        min_length=1,
        max_length=10,
        description="e.g. greedy, insertion, euro-lazy:5, slots, model:standard (a model name "
        "from the service's models folder or the shipped ones, with its decision guards; "
        "model-plain:NAME for the network alone), hindsight:SECONDS (offline reference)",
    )
    seeds: list[Seed] = Field(
        default_factory=lambda: list(range(1, 11)),
        min_length=1,
        max_length=1000,
        description="day seeds (held-out evaluation seeds are 1..100)",
    )


class PolicyEvaluationResult(BaseModel):
    """Per policy: mean cost with CI, on-time rate, paired difference to greedy, gap closed."""

    policies: list[str]
    seeds: list[int]
    summaries: dict[str, dict[str, Any]]
    table_markdown: str
    solver: SolverInfo
