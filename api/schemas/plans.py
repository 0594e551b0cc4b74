"""``/v1/plans`` bodies: allocation + routing + twin evaluation, and re-optimisation."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.changes import PlanChanges
from api.schemas.common import LargeBody, service_defaults
from api.schemas.routes import MODE_DESCRIPTION, SolveMode, SolverInfo
from scenarios.geo import Id, Location, NonNegInt, NotBool, NulFreeModel, Seed
from scenarios.model import Order, Scenario
from scenarios.plan import TIME_LIMITED_DESCRIPTION, Kpis, Plan, PlanStatus
from simulation.params import SimParams
from solvers.allocation.params import AllocationParams
from solvers.allocation.request import AllocationCosts, AllocationRules
from solvers.allocation.result import AllocationStatus, OrderExplanation, Unfilled
from solvers.explain import PlanExplanation
from solvers.routing.params import RoutingParams

#: The service's defaults for fields the client leaves out of these params objects.
PLAN_ALLOCATION_DEFAULTS: dict[str, object] = {"time_limit_s": 10.0}
REOPT_ALLOCATION_DEFAULTS: dict[str, object] = {"mode": "online", "time_limit_s": 5.0}
REOPT_ROUTING_DEFAULTS: dict[str, object] = {"time_limit_s": 5.0, "disruption_cost_cents": 500}


def _default_allocation() -> AllocationParams:
    return AllocationParams.model_validate(PLAN_ALLOCATION_DEFAULTS)


class EvaluationParams(NulFreeModel):
    """How the twin checks the plan before release (0 replications = no check)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    replications: Annotated[int, Field(ge=0, le=10_000), NotBool] = 20
    seed: Seed = 0
    params: SimParams = Field(default_factory=SimParams)


class PlanCreate(LargeBody):
    """Make the dispatch plan of a scenario: allocate, route, then play it in the twin."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scenario: Scenario
    allocation: Annotated[AllocationParams, service_defaults(**PLAN_ALLOCATION_DEFAULTS)] = Field(
        default_factory=_default_allocation,
        description="fields left out take the service's defaults (time_limit_s 10)",
    )
    costs: AllocationCosts | None = Field(default=None, description="allocation prices")
    rules: AllocationRules | None = Field(default=None, description="allocation rules")
    routing: RoutingParams = Field(default_factory=RoutingParams)
    evaluation: EvaluationParams = Field(default_factory=EvaluationParams)
    mode: SolveMode = Field(default="auto", description=MODE_DESCRIPTION)


class AllocationSummary(BaseModel):
    """The allocation step: status, cost, what could not be filled and why."""

    status: AllocationStatus
    method: str
    cost: float = Field(description="total allocation cost, request currency units")
    unfilled: list[Unfilled] = Field(default_factory=list)
    diagnosis: list[str] = Field(default_factory=list)


class Explanations(BaseModel):
    """Why the plan is what it is: per order (allocation) and per route."""

    orders: list[OrderExplanation] = Field(default_factory=list)
    routes: PlanExplanation | None = None


class PlanResult(BaseModel):
    """A dispatch plan with its allocation, KPIs from the twin and explanations."""

    status: PlanStatus = Field(
        description="routing status ('infeasible' = mandatory orders out; 'no_solution' = "
        "the only ones out are those the routing's time limit cut off)"
    )
    time_limited: bool = Field(default=False, description=TIME_LIMITED_DESCRIPTION)
    plan: Plan = Field(description="allocation lines + routes (pickup at node, delivery)")
    allocation: AllocationSummary
    kpis: Kpis | None = Field(default=None, description="twin estimates with 95% CIs")
    explanations: Explanations
    diagnosis: list[str] = Field(default_factory=list)
    solver: SolverInfo
    fallback_reason: str | None = None
    plan_id: str | None = Field(default=None, description="stored plan (for re-optimisation)")


class PlanPublic(PlanResult):
    """A synchronous plan answer; the request is stored as job ``job_id``."""

    job_id: str
    fallback: bool


class CourierPosition(NulFreeModel):
    """Where a courier is now and from when it is free."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    vehicle_id: Id
    location: Location
    available_s: NonNegInt


class ReoptimiseCreate(LargeBody):
    """Changes since the plan was made; stops already started and pinned stops stay."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    now_s: NonNegInt = Field(
        description="current time: stops planned to start before it are done (or under way)"
    )
    new_orders: list[Order] = Field(default_factory=list)
    cancelled_order_ids: list[Id] = Field(default_factory=list)
    courier_positions: list[CourierPosition] = Field(default_factory=list)
    pinned_order_ids: list[Id] = Field(
        default_factory=list, description="orders whose stops must stay where they are"
    )
    allocation: Annotated[AllocationParams, service_defaults(**REOPT_ALLOCATION_DEFAULTS)] = Field(
        default_factory=lambda: AllocationParams.model_validate(REOPT_ALLOCATION_DEFAULTS),
        description="fields left out take the service's defaults (online, time_limit_s 5)",
    )
    routing: Annotated[RoutingParams, service_defaults(**REOPT_ROUTING_DEFAULTS)] = Field(
        default_factory=lambda: RoutingParams.model_validate(REOPT_ROUTING_DEFAULTS),
        description="fields left out take the service's defaults (time_limit_s 5, "
        "disruption_cost_cents 500)",
    )
    mode: SolveMode = Field(default="auto", description=MODE_DESCRIPTION)
    if_latest: bool = Field(
        default=False,
        description="re-plan only if no other if_latest re-plan of this plan is queued, "
        "running or done (the plan is still the latest of its live line); else 409 naming "
        "the re-plan that won. Off: re-plans branch freely (what-if), as before",
    )


class ReoptimiseResult(BaseModel):
    """The new plan and what changed against the previous one."""

    status: PlanStatus
    time_limited: bool = Field(default=False, description=TIME_LIMITED_DESCRIPTION)
    plan: Plan
    changes: PlanChanges
    completed_order_ids: list[str] = Field(
        default_factory=list, description="orders whose stops were all done by now_s"
    )
    diagnosis: list[str] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list,
        description="corrections made reading the stored plan, saved by an older version "
        "(e.g. a travel matrix's non-zero diagonal set to zero)",
    )
    explanations: Explanations
    solver: SolverInfo
    fallback_reason: str | None = None
    plan_id: str | None = None
    parent_id: str | None = None


class ReoptimisePublic(ReoptimiseResult):
    """A synchronous re-optimisation answer."""

    job_id: str
    fallback: bool


class PlanRecordPublic(BaseModel):
    """A stored plan."""

    plan_id: str
    parent_id: str | None
    status: str
    fallback: bool
    created_at: str
    result: dict[str, object]
