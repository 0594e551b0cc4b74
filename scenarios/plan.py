"""Plans (allocation + routes) and the KPIs measured on them."""

from __future__ import annotations

from collections.abc import Container
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from scenarios.errors import FieldError
from scenarios.geo import ControlFreeId, Id, Location, NonNegInt, NotBool, PosInt, StrictModel


class PlanStatus(StrEnum):
    """How good the plan is known to be."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"


class StopKind(StrEnum):
    """What happens at a planned stop."""

    PICKUP = "pickup"
    DELIVERY = "delivery"
    BREAK = "break"


def shipment_order(job_id: str, order_ids: Container[str], node_ids: Container[str]) -> str | None:
    """The order of a courier job ``<order id>@<node id>`` (an order shipped from several
    nodes) of ``order_ids`` and ``node_ids``, either id possibly holding ``@`` itself
    (``o@st@1`` is order ``o`` shipped from node ``st@1``); None when it names none."""
    at = job_id.find("@")
    while at >= 0:
        if job_id[:at] in order_ids and job_id[at + 1 :] in node_ids:
            return job_id[:at]
        at = job_id.find("@", at + 1)
    return None


class PlannedStop(StrictModel):
    """One stop of a route with its planned times (seconds from the horizon start)."""

    order_id: Id | None = Field(default=None, description="None for breaks")
    kind: StopKind = StopKind.DELIVERY
    task_id: ControlFreeId | None = Field(
        default=None,
        description="external id of the visited task: the pickup id for pickups, else the order id",
    )
    location: Location | None = None
    arrival_s: NonNegInt
    start_s: NonNegInt = Field(
        description="service start: arrival, or later if waiting for a window"
    )
    departure_s: NonNegInt
    load_after: list[Annotated[int, NotBool]] = Field(
        default_factory=list, description="load per dimension on leaving"
    )
    pinned: bool = Field(default=False, description="must stay on this vehicle at this position")
    break_index: NonNegInt | None = Field(
        default=None,
        description="break stops only: the index in the vehicle's breaks of the break this "
        "stop takes (taken outside that break's window it is that break taken early or late); "
        "None: the break is found by window and length, as for plans written before it",
    )

    @model_validator(mode="after")
    def _break_index_on_breaks(self) -> Self:
        """Only a break stop names a vehicle break."""
        if self.break_index is not None and self.kind is not StopKind.BREAK:
            raise FieldError(
                ("break_index",),
                f"names a vehicle break, which only a break stop takes (this stop is a "
                f"{self.kind.value})",
            )
        return self


class Route(StrictModel):
    """The ordered stops of one vehicle, from its start location to its end location."""

    vehicle_id: Id
    stops: list[PlannedStop] = Field(default_factory=list)
    start_s: NonNegInt = 0
    end_s: NonNegInt = 0
    distance_m: NonNegInt = 0
    duration_s: NonNegInt = 0
    cost_cents: NonNegInt = 0


def bad_break_index(route: Route, num_breaks: int) -> tuple[int, str] | None:
    """The first stop of ``route`` whose ``break_index`` names no break of its vehicle (which
    has ``num_breaks``) or one an earlier stop names, and why; None when there is none."""
    named: dict[int, int] = {}
    for s, stop in enumerate(route.stops):
        k = stop.break_index
        if k is None:
            continue
        if k >= num_breaks:
            return s, (
                f"break {k} of vehicle {route.vehicle_id!r}, which has {num_breaks} "
                f"break{'s' if num_breaks != 1 else ''} (indices from 0)"
            )
        if k in named:
            return s, f"break {k} of vehicle {route.vehicle_id!r} is stop {named[k]}'s already"
        named[k] = s
    return None


class AllocationLine(StrictModel):
    """``quantity`` units of ``sku`` of order ``order_id`` ship from node ``node_id``."""

    order_id: Id
    sku: Id
    node_id: Id
    quantity: PosInt


class UnassignedReason(StrEnum):
    """Why an order is not in the plan."""

    NO_SKILL = "no_skill"
    WINDOW_UNREACHABLE = "window_unreachable"
    OVER_CAPACITY = "over_capacity"
    #: even a direct trip makes the route longer than the vehicle's maximum distance
    OVER_MAX_DISTANCE = "over_max_distance"
    #: even a direct trip makes the route last longer than the vehicle's maximum duration
    OVER_MAX_DURATION = "over_max_duration"
    #: even a direct trip ends after the vehicle's shift
    OUTSIDE_SHIFT = "outside_shift"
    #: even a direct trip leaves no room for a driver break inside its window
    BREAK_UNPLACEABLE = "break_unplaceable"
    #: the pickup is at a fulfilment node that is closed whenever the parcel could be picked up
    NODE_CLOSED = "node_closed"
    #: the order is created (``created_s``) too late for any vehicle: after every latest
    #: departure from the start where it is loaded, after its pickup windows close, or so
    #: late that even a direct trip leaving then misses its windows, shift or limits
    RELEASED_TOO_LATE = "released_too_late"
    DROPPED_FOR_COST = "dropped_for_cost"
    OUT_OF_STOCK = "out_of_stock"
    RULE = "rule"
    NO_SOLUTION = "no_solution"


class Unassigned(StrictModel):
    """An order left out of the plan, with the reason and what leaving it out costs."""

    order_id: Id
    reason: UnassignedReason
    detail: str = ""
    penalty_cents: NonNegInt = 0
    on_board_vehicle_id: Id | None = Field(
        default=None,
        description="a re-plan's parcel already on board of this courier (picked up before "
        "its now_s) that it could not route: it stays that courier's in later re-plans",
    )


#: What ``Plan.time_limited`` (and the ``time_limited`` of the service's routing answers) says.
TIME_LIMITED_DESCRIPTION = (
    "true when the time limit cut the plan's construction off before it had tried every "
    "order: those orders are unassigned 'not placed: the time limit was reached while "
    "building the plan' (reason no_solution). The plan is valid and its status says as much "
    "as is known (feasible when they are all optional, no_solution when a mandatory one is "
    "among them), but it is incomplete: a longer time_limit_s may serve them. Also true when "
    "a run given a work budget (max_iterations with PyVRP, max_solutions with OR-Tools), "
    "whose plan is otherwise the same for the same seed on any machine, was cut by the "
    "clock in its search, its repair or its break-aware post-optimisation (a diagnosis line "
    "'time limit reached in ...' names the phase): the same request may then give another "
    "plan, and a longer time_limit_s lets the budget end it"
)


class Plan(StrictModel):
    """A dispatch plan: which node ships each line, which vehicle serves each order and when."""

    status: PlanStatus = PlanStatus.FEASIBLE
    allocation: list[AllocationLine] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    unassigned: list[Unassigned] = Field(default_factory=list)
    distance_m: NonNegInt = 0
    cost_cents: Annotated[int, NotBool] = 0
    engine: str | None = None
    runtime_s: Annotated[float, Field(ge=0.0), NotBool] = 0.0
    seed: Annotated[int, NotBool] | None = None
    time_limited: bool = Field(default=False, description=TIME_LIMITED_DESCRIPTION)

    @property
    def num_vehicles(self) -> int:
        """Vehicles with at least one stop."""
        return sum(1 for r in self.routes if r.stops)


#: How an Estimate's interval was computed (``simulation.stats``): ``t``, the Student t-interval
#: over the replications; for a rate at 0 on every replication, or at 1 on every one, the exact
#: Clopper-Pearson interval of the pooled orders due (``clopper-pearson-orders``) or, where the
#: orders due are not known, of the replications as all-or-nothing trials (``-days``);
#: ``none``: no interval at all, one replication (a t-interval needs two).
IntervalMethod = Literal["t", "clopper-pearson-orders", "clopper-pearson-days", "none"]


class Estimate(StrictModel):
    """A KPI estimated over replications: mean and a 95% confidence interval."""

    mean: float
    ci_low: float | None = Field(
        description="lower bound of the 95% interval; None when there is none (method none)"
    )
    ci_high: float | None = Field(
        description="upper bound of the 95% interval; None when there is none (method none)"
    )
    n: PosInt = 1
    method: IntervalMethod | None = Field(
        default=None,
        description="how the interval was computed: t (Student t over the n replications, cut "
        "to the KPI's range; [mean, mean] when every replication agrees, which is no "
        "confidence statement), clopper-pearson-orders (an on-time rate at 0 or 1 on every "
        "replication, two or more: exact binomial interval of the pooled orders due), "
        "clopper-pearson-days (the same with the replications as the trials, when the orders "
        "due are not known) or none (n = 1: no interval, ci_low and ci_high None); None when "
        "not recorded (results written before it was; their n = 1 has [mean, mean])",
    )
    constant: bool | None = Field(
        default=None,
        description="true when every one of the n >= 2 replications gave the same value (up "
        "to rounding): the t-interval is then [mean, mean], zero width, which says the "
        "replications agree, not that the mean is known exactly (a KPI that is 0 on every "
        "simulated day may not be 0 on every day); false otherwise; None when not recorded "
        "(results written before it was)",
    )

    @model_validator(mode="after")
    def _interval_or_none(self) -> Self:
        """Bounds are None exactly when the method is none, which only one replication has."""
        missing = self.ci_low is None or self.ci_high is None
        if self.method == "none":
            if self.n != 1:
                raise FieldError(("method",), f"none (no interval) is for n = 1, got n = {self.n}")
            if not (self.ci_low is None and self.ci_high is None):
                raise FieldError(("ci_low",), "must be None when method is none (no interval)")
        elif missing:
            field = "ci_low" if self.ci_low is None else "ci_high"
            raise FieldError((field,), "is None, which only method none (n = 1) allows")
        if self.constant and (self.n < 2 or self.ci_low != self.ci_high):
            raise FieldError(
                ("constant",),
                "true only for n >= 2 replications with a zero-width interval "
                f"(n = {self.n}, [{self.ci_low}, {self.ci_high}])",
            )
        return self


class Kpis(StrictModel):
    """Outcome of playing a plan forward, one Estimate per KPI."""

    on_time_rate: Estimate | None = Field(
        description="orders delivered inside a window / orders released (an order never "
        "delivered, for whatever reason, is not on time); None when no order was due in any "
        "replication (n counts the replications with orders)"
    )
    lateness_p50_s: Estimate | None = Field(
        description="median lateness of the orders delivered, seconds; None when no "
        "replication delivered an order (n counts the replications that did: a day that "
        "delivered none has no lateness, not 0)"
    )
    lateness_p95_s: Estimate | None = Field(
        description="95th percentile of the lateness of the orders delivered, seconds; None "
        "when no replication delivered an order (n counts the replications that did)"
    )
    distance_m: Estimate
    courier_hours: Estimate
    cost_cents: Estimate
    courier_utilisation: Estimate
    node_utilisation: Estimate
    orders_unfilled: Estimate
    orders_failed: Estimate
    per_order_on_time: dict[str, float] = Field(
        default_factory=dict, description="probability each order is on time"
    )
    orders_unserved: Estimate | None = Field(
        default=None, description="orders never delivered (no courier, cut off, lost parcel)"
    )
    extra: dict[str, Estimate] = Field(
        default_factory=dict,
        description="further KPIs of the twin (cost breakdown, orders delivered, pick wait...)",
    )
    replications: NonNegInt = Field(default=0, description="replications behind the estimates")
    seed: int | None = Field(default=None, description="seed the replication seeds came from")
    policy: str | None = Field(default=None, description="dispatch policy used during the day")
