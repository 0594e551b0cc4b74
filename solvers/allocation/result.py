"""The allocation answer: status, assignments, cost parts, bound, explanations, shadow prices."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field

from scenarios.geo import Id, NonNegInt, PosInt, StrictModel
from scenarios.plan import AllocationLine
from solvers.allocation.params import ONLINE_MAX_ORDERS

_Model = TypeVar("_Model", bound=BaseModel)
_set = object.__setattr__


def construct(
    cls: type[_Model], values: dict[str, Any], fields_set: set[str] | None = None
) -> _Model:
    """``cls.model_construct(**values)`` for trusted ``values`` that name every field.

    The same instance at a fraction of the cost (no per-field loop): for answers built by
    the tens of thousands. Only for models without aliases, private attributes, extra fields
    or a post-init hook, as those of this module (a test checks it against
    ``model_construct``). ``fields_set``: the fields given explicitly, where ``values``
    also holds defaults (default: every field in ``values``).
    """
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(values) if fields_set is None else fields_set)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def construct_all(cls: type[_Model], rows: Iterable[dict[str, Any]]) -> list[_Model]:
    """:func:`construct` of each of ``rows``, which all name the same fields (every one).

    One loop without a call of :func:`construct` per instance (session 71, 2,000 literature
    orders, medians of 40: 10,456 assignments 14.5-16.3 ms by a call each, 12.7-14.3 ms with
    the loop written out in the caller; 10,251 assignments 13.2 ms so against 12.4 ms written
    out, exclusive lock: what keeps pydantic's internals in one place costs that).
    """
    new = cls.__new__
    out: list[_Model] = []
    fields: set[str] | None = None
    for values in rows:
        if fields is None:
            fields = set(values)
        model = new(cls)
        _set(model, "__dict__", values)
        _set(model, "__pydantic_fields_set__", set(fields))  # one set per instance
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        out.append(model)
    return out


class AllocationStatus(StrEnum):
    """How good the answer is known to be."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"


class Assignment(StrictModel):
    """``quantity`` units of ``sku`` of order ``order_id`` ship from node ``node_id``."""

    order_id: Id
    sku: Id
    node_id: Id
    quantity: PosInt


class UnfilledReason(StrEnum):
    """Why units of a line are not shipped."""

    NO_STOCK = "no_stock"
    STOCK_EXHAUSTED = "stock_exhausted"
    SAFETY_STOCK = "safety_stock"
    RESTRICTED_SKU = "restricted_sku"
    EXCLUDED_NODES = "excluded_nodes"
    PROMISE = "promise"
    CLOSED = "closed"
    CAPACITY = "capacity"
    MAX_NODES = "max_nodes"
    COST = "cost"


class Unfilled(StrictModel):
    """Units of a line left unfilled (backordered) and why."""

    order_id: Id
    sku: Id
    quantity: PosInt
    reason: UnfilledReason
    detail: str = ""
    also: list[UnfilledReason] = Field(
        default_factory=list,
        description="other limits that bar the line as well (e.g. stock_exhausted at one "
        "node while another holding the SKU has no VIP capacity); the detail names them",
    )


class CostBreakdown(StrictModel):
    """The objective and its parts, in request currency units (exact to 1e-6)."""

    total: float
    shipping: float = Field(description="shipments + units + distance")
    shipping_fixed: float = Field(description="per_shipment x parcels")
    shipping_units: float = Field(description="per_unit x units")
    shipping_distance: float = Field(description="per_unit_distance x units x distance")
    handling: float
    split: float
    lateness: float
    unfilled: float
    total_micros: int = Field(description="total in integer micro-units, the exact value")


#: A count summed over the whole request (units over every order may pass ``MAX_INT``).
Total = Annotated[int, Field(ge=0)]


class Kpis(StrictModel):
    """Service figures of the answer."""

    num_orders: NonNegInt
    num_shipments: NonNegInt
    shipments_per_order: float = Field(description="over orders with at least one shipment")
    split_rate: float = Field(description="share of orders shipped from two or more nodes")
    units_ordered: Total
    units_unfilled: Total
    late_shipments: NonNegInt
    vip_orders: NonNegInt
    vip_on_time_share: float | None = Field(
        description="VIP orders complete and on time / VIP orders (None without VIP orders)"
    )


class ReasonKind(StrEnum):
    """What decided an order's nodes."""

    CHEAPEST = "cheapest"
    STOCK = "stock"
    CAPACITY = "capacity"
    VIP_SHARE = "vip_share"
    RULE = "rule"
    PROMISE = "promise"
    MAX_NODES = "max_nodes"
    UNFILLED = "unfilled"


class Reason(StrictModel):
    """One fact that forced or explains the choice."""

    kind: ReasonKind
    node_id: str | None = None
    sku: str | None = None
    rule: str | None = Field(default=None, description="rule name for kind = rule")
    message: str


class Alternative(StrictModel):
    """The cheapest other way to ship this order, everything else unchanged."""

    nodes: list[str]
    cost: float
    extra_cost: float = Field(description="alternative cost minus the chosen cost")
    blocked: bool = Field(
        default=False,
        description="only for an order that ships nothing: no way to ship it fits what the "
        "other orders leave, and this is the cheapest with all stock and capacity to "
        "itself (the reasons name the limits the other orders filled)",
    )


class OrderExplanation(StrictModel):
    """Why an order ships from where it does."""

    order_id: Id
    nodes: list[str] = Field(description="chosen nodes (empty = nothing shipped)")
    cost: float = Field(description="this order's share of the objective")
    best_alternative: Alternative | None = None
    reasons: list[Reason] = Field(default_factory=list)
    summary: str


ResourceName = Literal["stock", "capacity_units", "capacity_orders", "vip_units", "vip_orders"]


ShadowPriceLp = Literal["compact", "pattern"]


class ShadowPrice(StrictModel):
    """Marginal value of a scarce stock or capacity row in an LP relaxation (see its field).

    With V(b) the optimal value of that relaxation (``AllocationResult.shadow_price_lp``)
    as a function of this row's limit b (the other rows, candidates and arc bounds as
    compiled), ``value_per_unit`` lies in ``[V(b) - V(b+1) - tol, V(b-1) - V(b) + tol]``,
    ``tol`` = ``AllocationResult.shadow_price_tolerance``: what one unit (parcel) more saves,
    and what one less costs, in that LP. Rows not listed are priced at zero (within ``tol``).
    """

    node_id: Id
    resource: ResourceName = Field(
        description="stock (per node and SKU), capacity_units, capacity_orders (parcels), "
        "vip_units, vip_orders (the VIP shares of the two capacities)"
    )
    sku: str | None = Field(default=None, description="the SKU of a stock row, else null")
    value_per_unit: float = Field(
        description="> 0: the LP objective's decrease per unit (stock, capacity_units, "
        "vip_units) or parcel (capacity_orders, vip_orders) more of the row's limit, and its "
        "increase per unit less (what depleting it costs), in request currency; an LP dual "
        "(its sign flipped), within shadow_price_tolerance"
    )
    available: int = Field(
        description="the row's limit b: units above safety stock and the store floor, or "
        "the capacity, or the VIP share of it"
    )
    used: int = Field(description="what the answer's allocation uses of it (the LP may differ)")


class SolveStats(StrictModel):
    """Sizes and timings of the solve."""

    num_orders: NonNegInt = 0
    num_nodes: NonNegInt = 0
    num_lines: NonNegInt = 0
    candidate_pairs: NonNegInt = Field(default=0, description="(order, node) pairs after rules")
    pruned_pairs: NonNegInt = Field(
        default=0, description="pairs removed because they can never pay off (exact)"
    )
    mip_pairs: NonNegInt = Field(
        default=0,
        description="(order, node) pairs in the final MIP (online, pyomo); for a batch, the "
        "pattern columns of its master MIP (one complete allocation of an order each)",
    )
    fixed_orders: NonNegInt = Field(
        default=0, description="orders fixed to their integral LP answer before the MIP"
    )
    lp_rounds: NonNegInt = 0
    lp_bound: float | None = None
    warm_start_cost: float | None = None
    mip_nodes: NonNegInt = 0
    build_s: float = 0.0
    lp_s: float = 0.0
    mip_s: float = 0.0
    explain_s: float = 0.0
    notes: list[str] = Field(default_factory=list)


class AllocationResult(StrictModel):
    """Answer of :func:`solvers.allocation.allocate`."""

    status: AllocationStatus
    method: str = Field(
        description="batch, online, batch/pyomo or online/pyomo (the pyomo backend), or the "
        f"baseline name (an online request of more than {ONLINE_MAX_ORDERS} orders is solved "
        "as a batch: batch)"
    )
    assignments: list[Assignment] = Field(default_factory=list)
    unfilled: list[Unfilled] = Field(default_factory=list)
    cost: CostBreakdown
    bound: float | None = Field(
        default=None, description="certified lower bound on the optimal total (currency)"
    )
    gap: float | None = Field(default=None, description="(total - bound) / total")
    solve_time_s: float = Field(description="wall time of the solve, seconds")
    kpis: Kpis
    explanations: list[OrderExplanation] = Field(default_factory=list)
    shadow_prices: list[ShadowPrice] = Field(
        default_factory=list,
        description="every stock and capacity row with a non-zero price, most valuable first",
    )
    shadow_price_lp: ShadowPriceLp | None = Field(
        default=None,
        description="the LP relaxation the shadow prices are of: compact = the compact "
        "model's LP (online, pyomo backend), pattern = the pattern (Dantzig-Wolfe) LP, one "
        "convex combination of complete allocations per order (batch); null = none computed",
    )
    shadow_price_tolerance: float | None = Field(
        default=None,
        description="currency per unit: each price lies within this of that LP's one-sided "
        "marginal values (0 = optimal LP duals; batch: the pattern LP's best upper bound "
        "known less the Lagrangian bound at the prices)",
    )
    diagnosis: list[str] = Field(
        default_factory=list, description="why the request cannot be met in full, if it cannot"
    )
    stats: SolveStats = Field(default_factory=SolveStats)

    def to_lines(self) -> list[AllocationLine]:
        """The assignments as domain :class:`~scenarios.plan.AllocationLine` s for routing."""
        return [
            AllocationLine(order_id=a.order_id, sku=a.sku, node_id=a.node_id, quantity=a.quantity)
            for a in self.assignments
        ]
