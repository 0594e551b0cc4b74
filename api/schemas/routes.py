"""``/v1/routes`` bodies: a scenario and routing parameters in; a validated plan out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import LargeBody
from scenarios.model import Scenario
from scenarios.plan import TIME_LIMITED_DESCRIPTION, Plan, PlanStatus
from solvers.explain import PlanExplanation
from solvers.routing.params import RoutingParams

SolveMode = Literal["auto", "sync", "async"]

MODE_DESCRIPTION = (
    "sync = answer now (time limit and size capped); async = 202 with a job; "
    "auto = sync when the time limit and size allow it, else a job"
)


class SolverInfo(BaseModel):
    """Which solver answered, with library versions, the seed and the time it took."""

    engine: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    seed: int | None = None
    time_limit_s: float | None = None
    runtime_s: float = 0.0


class RoutesCreate(LargeBody):
    """Route the scenario's orders with its fleet."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scenario: Scenario
    params: RoutingParams = Field(default_factory=RoutingParams)
    mode: SolveMode = Field(default="auto", description=MODE_DESCRIPTION)


class RoutesResult(BaseModel):
    """A routing answer: the plan, its status and why orders were left out."""

    status: PlanStatus = Field(
        description="'infeasible' when mandatory orders are unserved; 'no_solution' when the "
        "only ones unserved are those the time limit cut off (a longer limit may place them)"
    )
    time_limited: bool = Field(default=False, description=TIME_LIMITED_DESCRIPTION)
    plan: Plan
    diagnosis: list[str] = Field(
        default_factory=list, description="one line per unserved order: why"
    )
    explanation: PlanExplanation | None = Field(
        default=None, description="per route: load, duration, waiting; per unserved order: why"
    )
    solver: SolverInfo
    fallback_reason: str | None = Field(
        default=None, description="why the greedy fallback answered instead of the solver"
    )


class RoutesPublic(RoutesResult):
    """A synchronous routing answer; the request is stored as job ``job_id``."""

    job_id: str
    fallback: bool = Field(description="true when the greedy fallback answered")
