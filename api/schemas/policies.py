"""``/v1/policies/evaluate`` bodies: dispatch policies compared on the same held-out days."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import LargeBody
from api.schemas.routes import SolverInfo
from scenarios.errors import FieldError
from scenarios.geo import NotBool, Seed
from scenarios.model import Scenario

PolicySpec = Annotated[str, Field(min_length=1, max_length=200)]
#: an iteration budget of the hindsight reference
Iterations = Annotated[int, Field(ge=1, le=1_000_000), NotBool]


class PolicyEvaluationCreate(LargeBody):
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
    hindsight_iterations: Iterations | None = Field(
        default=None,
        description="PyVRP iterations per hindsight solver run (shift-priced and warm-started "
        "runs): the same seed then gives the same reference however busy the machine is, and "
        "hindsight:SECONDS is only a safety cap (the benchmark uses 4500); None = stop on the "
        "clock",
    )
    hindsight_duration_iterations: Iterations | None = Field(
        default=None,
        description="PyVRP iterations of the duration-priced hindsight run (the benchmark uses "
        "900; None = hindsight_iterations); needs hindsight_iterations",
    )
    hindsight_search_iterations: Iterations | None = Field(
        default=None,
        description="iterations of the hindsight improvement search (the benchmark uses 1500); "
        "None = stop on the clock",
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        """A policy or a day given twice would be counted twice (CIs tighter than they are); a
        hindsight budget without the hindsight policy, or a duration one alone, is ignored."""
        from simulation.policies import repeated_policy

        repeated = repeated_policy(self.policies)  # also under another spelling
        if repeated is not None:
            raise FieldError(("policies", repeated[0]), repeated[1])
        seeds = list(self.seeds)
        for i, value in enumerate(seeds):
            if value in seeds[:i]:
                raise FieldError(("seeds", i), f"{value!r} is given twice")
        if not any(p.strip().partition(":")[0] == "hindsight" for p in self.policies):
            for name in ("hindsight_iterations", "hindsight_search_iterations"):
                if getattr(self, name) is not None:  # ignored without a word: no hindsight day
                    raise FieldError(
                        (name,),
                        "applies only to the hindsight policy, and policies has none "
                        "(add hindsight or hindsight:SECONDS, or drop the field)",
                    )
        if self.hindsight_duration_iterations is not None and self.hindsight_iterations is None:
            raise FieldError(
                ("hindsight_duration_iterations",),
                "needs hindsight_iterations (the shift-priced runs would stop on the clock)",
            )
        return self

    def hindsight_params(self) -> dict[str, int]:
        """The hindsight reference's iteration budgets given (``HindsightParams`` fields)."""
        given = {
            "max_iterations": self.hindsight_iterations,
            "duration_iterations": self.hindsight_duration_iterations,
            "search_iterations": self.hindsight_search_iterations,
        }
        return {k: v for k, v in given.items() if v is not None}


class PolicyEvaluationResult(BaseModel):
    """Per policy: mean cost with CI, on-time rate, paired difference to greedy, gap closed."""

    policies: list[str]
    seeds: list[int]
    summaries: dict[str, dict[str, Any]]
    table_markdown: str
    solver: SolverInfo
