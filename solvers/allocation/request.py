"""The allocation request: fulfilment nodes with stock, orders with lines, prices and rules.

This is the JSON body of ``dispatchlab allocate`` and ``POST /v1/allocations``. Money is in
request currency units as floats at this boundary (the literature prices are fractional:
8.759 per shipment, 0.000541 per unit-mile, by default 0.000336 per unit-km); the solver
turns every price into exact integer micro-units (1e-6 currency units) once, when it
compiles the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import Field, ValidationError, model_validator

from scenarios.errors import FieldError, InputError, input_error_from_validation
from scenarios.geo import (
    MAX_INT,
    Id,
    IdKey,
    Location,
    NonNegInt,
    NotBool,
    PosInt,
    StrictModel,
    TimeWindow,
    check_id_keys,
)
from scenarios.model import (
    NodeKind,
    OrderLine,
    SafetyStock,
    Scenario,
    StockedNode,
    Tier,
    check_unique_ids,
)

#: Largest price accepted (currency units); keeps every micro-unit total inside int64.
MAX_PRICE = 1e7

Price = Annotated[float, Field(ge=0.0, le=MAX_PRICE, allow_inf_nan=False), NotBool]
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False), NotBool]

#: Kilometres per mile (the unit of ``per_unit_distance`` when ``distance_unit`` is ``mile``).
KM_PER_MILE = 1.609344

#: The literature fit's distance price (Jasin & Sinha 2015, Ma 2023), per unit per mile.
LITERATURE_PER_UNIT_MILE = 0.000541

#: The default distance price: the literature fit per unit per km (0.000541 / 1.609344).
DEFAULT_PER_UNIT_KM = LITERATURE_PER_UNIT_MILE / KM_PER_MILE


class AllocationNode(StockedNode, StrictModel):
    """A DC, store or dark store that can ship parcels, with its stock and limits."""

    id: Id = Field(description="unique among the request's nodes")
    kind: NodeKind = NodeKind.DC
    location: Location = Field(description='{"lat": .., "lon": ..}; any point if a matrix is given')
    region: Id | None = Field(default=None, description="region the node lies in (informative)")
    inventory: dict[IdKey, NonNegInt] = Field(default_factory=dict, description="units per SKU")
    safety_stock: SafetyStock = 0
    capacity_units: NonNegInt | None = Field(
        default=None, description="units the node can ship in this wave; None = no limit"
    )
    capacity_orders: NonNegInt | None = Field(
        default=None, description="parcels (orders) the node can ship in this wave; None = no limit"
    )
    handling_cost_per_unit: Price = Field(
        default=0.0, description="pick/pack cost per unit, currency units"
    )
    lead_time_s: NonNegInt = Field(
        default=0, description="pick+pack time before the parcel leaves, seconds"
    )
    opening_hours: list[TimeWindow] = Field(
        default_factory=list,
        description="when the node works (seconds from the horizon start); empty = always open",
    )


class AllocationOrder(StrictModel):
    """An order to allocate: where it goes, what it holds, how much it matters, when it is due."""

    id: Id = Field(description="unique among the request's orders")
    location: Location = Field(description='{"lat": .., "lon": ..}; any point if a matrix is given')
    region: Id | None = Field(
        default=None, description="destination region (compliance rules are keyed by it)"
    )
    tier: Tier = Tier.STANDARD
    lines: list[OrderLine] = Field(
        min_length=1,
        description='[{"sku": .., "quantity": ..}, ..]: at least one; lines of one SKU merge',
    )
    promise_by_s: NonNegInt | None = Field(
        default=None,
        description="promised delivery deadline, seconds from the horizon start; None = no promise",
    )
    created_s: NonNegInt = Field(default=0, description="arrival time; sequential modes use it")

    @model_validator(mode="after")
    def _merged_lines_fit(self) -> Self:
        # lines of one SKU are merged into one (order, SKU) line: its units, like every
        # count the answer reports for it, stay within the model's integer limit
        total: dict[str, int] = {}
        for i, line in enumerate(self.lines):
            total[line.sku] = total.get(line.sku, 0) + line.quantity
            if total[line.sku] > MAX_INT:
                raise FieldError(
                    ("lines", i, "quantity"),
                    f"the order's lines of {line.sku!r} add up to {total[line.sku]} units, "
                    f"more than {MAX_INT}",
                )
        return self


class AllocationCosts(StrictModel):
    """Prices of the allocation objective, in request currency units.

    The defaults are the cost fit used by Jasin & Sinha (2015) and Ma (2023), with its distance
    price per km: 8.759 per shipment plus 0.423 + 0.000541 x miles (0.000336 x km) per unit.
    """

    per_shipment: Price = Field(default=8.759, description="per parcel (node x order)")
    per_unit: Price = Field(default=0.423, description="per shipped unit")
    per_unit_distance: Price = Field(
        default=DEFAULT_PER_UNIT_KM,
        description="per shipped unit per km (per mile with distance_unit 'mile'); default = "
        "the literature's 0.000541 per unit-mile in km (with 'mile', give 0.000541)",
    )
    distance_unit: Literal["km", "mile"] = Field(
        default="km", description="unit of per_unit_distance: 'km' or 'mile'"
    )
    unfilled_unit: Price | None = Field(
        default=None,
        description="penalty per unit left unfilled (backorder); None = twice the cost of "
        "shipping that unit alone from the order's dearest node (shipment, unit, handling "
        "and distance costs; at least 1.0)",
    )
    split_penalty: Price = Field(
        default=0.0, description="extra cost per shipment beyond the first of an order"
    )
    late_shipment: Price = Field(
        default=0.0, description="per parcel arriving after the promise (promise = penalise)"
    )
    late_per_hour: Price = Field(
        default=0.0, description="per parcel per hour late (promise = penalise)"
    )


class AllocationRules(StrictModel):
    """Business rules: hard limits, compliance lists, tier policy and the promise policy."""

    max_nodes_per_order: PosInt | None = Field(
        default=None, description="most nodes one order may ship from; None = no limit"
    )
    promise: Literal["forbid", "penalise"] = Field(
        default="penalise",
        description="a node whose lead time misses the promise is forbidden, or allowed at the "
        "late_shipment / late_per_hour cost",
    )
    speed_kmh: Annotated[float, Field(gt=0.0, le=10_000.0), NotBool] = Field(
        default=60.0, description="door-to-door speed turning km into transit time (no travel_s)"
    )
    now_s: NonNegInt = Field(default=0, description="when the allocation is made")
    store_floor_units: NonNegInt = Field(
        default=0,
        description="stores and dark stores keep at least this many units of every SKU "
        "(applied on top of each node's safety stock: the larger one counts)",
    )
    vip_capacity_share: Share = Field(
        default=1.0, description="VIP orders may use at most this share of each node's capacity"
    )
    vip_priority: Annotated[float, Field(ge=1.0, le=1000.0), NotBool] = Field(
        default=10.0,
        description="VIP unfilled and lateness costs are multiplied by this, so VIP orders get "
        "scarce stock and capacity first",
    )
    restricted_skus: dict[IdKey, list[Id]] = Field(
        default_factory=dict, description="SKU -> destination regions it may not be shipped to"
    )
    excluded_nodes: dict[IdKey, list[Id]] = Field(
        default_factory=dict,
        description="destination region -> nodes that may not ship there (sanctions list)",
    )
    allow_unfilled: bool = Field(
        default=True,
        description="False = every unit must ship; if that is impossible the result is "
        "'infeasible' with a diagnosis",
    )

    @model_validator(mode="after")
    def _sku_ids(self) -> Self:
        check_id_keys(self.restricted_skus, "restricted_skus")
        check_id_keys(self.excluded_nodes, "excluded_nodes")  # region ids
        return self


class AllocationRequest(StrictModel):
    """Nodes with stock, orders with lines, prices and rules: everything one allocation needs."""

    nodes: list[AllocationNode] = Field(default_factory=list)
    orders: list[AllocationOrder] = Field(default_factory=list)
    costs: AllocationCosts = Field(default_factory=AllocationCosts)
    rules: AllocationRules = Field(default_factory=AllocationRules)
    distance_km: (
        list[list[Annotated[float, Field(ge=0.0, allow_inf_nan=False), NotBool]]] | None
    ) = Field(
        default=None,
        description="optional node x order distances in km (rows follow nodes, columns "
        "orders); default = great-circle (haversine, R = 6371 km) between lat/lon locations",
    )
    travel_s: list[list[NonNegInt]] | None = Field(
        default=None,
        description="optional node x order transit times in seconds; default = distance / "
        "rules.speed_kmh",
    )

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        check_unique_ids((n.id for n in self.nodes), "nodes")
        check_unique_ids((o.id for o in self.orders), "orders")
        node_ids = {n.id for n in self.nodes}
        for region, ids in self.rules.excluded_nodes.items():
            for i, node_id in enumerate(ids):
                if node_id not in node_ids:
                    raise FieldError(
                        ("rules", "excluded_nodes", region, i), f"unknown node {node_id!r}"
                    )
        for name in ("distance_km", "travel_s"):
            matrix = getattr(self, name)
            if matrix is None:
                continue
            if len(matrix) != len(self.nodes):
                raise FieldError(
                    (name,), f"has {len(matrix)} rows, expected one per node ({len(self.nodes)})"
                )
            for i, row in enumerate(matrix):
                if len(row) != len(self.orders):
                    raise FieldError(
                        (name, i),
                        f"has {len(row)} entries, expected one per order ({len(self.orders)})",
                    )
        if self.distance_km is None:
            located: list[tuple[str, list[Location]]] = [
                ("nodes", [n.location for n in self.nodes]),
                ("orders", [o.location for o in self.orders]),
            ]
            for field, locations in located:
                for i, location in enumerate(locations):
                    if not location.is_geographic:
                        raise FieldError(
                            (field, i, "location"),
                            "needs lat/lon (or give the request a distance_km matrix)",
                        )
        return self

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        costs: AllocationCosts | None = None,
        rules: AllocationRules | None = None,
    ) -> AllocationRequest:
        """Map a domain :class:`~scenarios.model.Scenario` into an allocation request.

        Distances and transit times come from the scenario's travel model (so allocation,
        routing and the twin agree); the promise is the end of an order's last window;
        handling costs convert from cents; SKU ``restricted_regions`` become
        ``rules.restricted_skus``. With nodes, an order without lines is an InputError on
        ``orders.{i}.lines`` (see :func:`check_order_lines`). An order with a ``pickup`` of
        its own is a courier pickup-and-delivery job (its goods are at its pickup), not
        allocated to nodes: it is left out.
        """
        rules = rules if rules is not None else AllocationRules()
        restricted = {sku: list(regions) for sku, regions in rules.restricted_skus.items()}
        for sku in scenario.skus:
            if sku.restricted_regions:
                merged = set(restricted.get(sku.id, [])) | set(sku.restricted_regions)
                restricted[sku.id] = sorted(merged)
        rules = rules.model_copy(update={"restricted_skus": restricted})
        nodes = nodes_from_scenario(scenario)
        check_order_lines(scenario)
        orders = []
        for i, o in enumerate(scenario.orders):
            if not o.lines or o.pickup is not None:
                # no nodes (nothing is allocated), or its own pickup: a courier job alone
                continue
            with _scenario_field("orders", i, {"promise_by_s": "time_windows"}):
                orders.append(
                    AllocationOrder(
                        id=o.id,
                        location=o.location,
                        region=o.region,
                        tier=o.tier,
                        lines=list(o.lines),
                        promise_by_s=o.time_windows[-1].end_s if o.time_windows else None,
                        created_s=o.created_s,
                    )
                )
        distance_km: list[list[float]] | None = None
        travel_s: list[list[int]] | None = None
        if nodes and orders:
            kept = {o.id for o in orders}
            order_locs = [o.location for o in scenario.orders if o.id in kept]
            matrix = scenario.travel.matrix([n.location for n in scenario.nodes], order_locs)
            distance_km = (matrix.distance_m / 1000.0).tolist()
            # a transit past MAX_INT s counts as MAX_INT s (late for every promise), as the
            # request's own travel_s may say: passed on, it was a ValidationError naming
            # travel_s.0.0, a field the scenario does not have
            travel_s = np.minimum(matrix.duration_s, MAX_INT).tolist()
        else:  # no order has lines, or no node: no distances, but planar places need a matrix
            distance_km = [[] for _ in nodes]
            travel_s = [[] for _ in nodes]
        return cls(
            nodes=nodes,
            orders=orders,
            costs=costs if costs is not None else AllocationCosts(),
            rules=rules,
            distance_km=distance_km,
            travel_s=travel_s,
        )


@contextmanager
def _scenario_field(kind: str, index: int, renamed: dict[str, str]) -> Iterator[None]:
    """Report a ValidationError of a mapped node or order under the scenario's field path."""
    try:
        yield
    except ValidationError as err:
        problem = input_error_from_validation(err)
        head, dot, rest = problem.field.partition(".")
        raise InputError(
            f"{kind}.{index}.{renamed.get(head, head)}{dot}{rest}", problem.reason
        ) from None


#: Why an order without lines is refused in a scenario with fulfilment nodes.
NO_LINES_REASON = (
    "has no lines: with fulfilment nodes each order is allocated line by line, so it needs at "
    "least one (orders without lines are courier jobs only in a scenario without nodes, or "
    "with a pickup of their own)"
)


def check_order_lines(scenario: Scenario) -> None:
    """Raise InputError naming ``orders.{i}.lines`` for an order without lines in a scenario
    with fulfilment nodes (it has nothing to allocate, so it would get no route); an order
    with its own ``pickup`` is a pickup-and-delivery job and needs none."""
    if not scenario.nodes:
        return
    for i, order in enumerate(scenario.orders):
        if not order.lines and order.pickup is None:
            raise InputError(f"orders.{i}.lines", NO_LINES_REASON)


def nodes_from_scenario(scenario: Scenario) -> list[AllocationNode]:
    """The scenario's fulfilment nodes as allocation nodes (no travel matrix: cheap).

    Raises InputError naming the scenario's field (``nodes.{i}.handling_cost_cents_per_unit``)
    for a value the allocation cannot take.
    """
    nodes = []
    renamed = {
        "handling_cost_per_unit": "handling_cost_cents_per_unit",
        "lead_time_s": "processing_s",
    }
    for i, n in enumerate(scenario.nodes):
        handling = n.handling_cost_cents_per_unit / 100.0
        if handling > MAX_PRICE:
            raise InputError(
                f"nodes.{i}.handling_cost_cents_per_unit",
                f"at most {MAX_PRICE * 100:.0f} cents per unit (the allocation's price limit)",
            )
        with _scenario_field("nodes", i, renamed):
            nodes.append(
                AllocationNode(
                    id=n.id,
                    kind=n.kind,
                    location=n.location,
                    region=n.region,
                    inventory=dict(n.inventory),
                    safety_stock=n.safety_stock
                    if isinstance(n.safety_stock, int)
                    else dict(n.safety_stock),
                    capacity_units=n.capacity_units,
                    capacity_orders=n.capacity_orders,
                    handling_cost_per_unit=handling,
                    lead_time_s=n.processing_s,
                    opening_hours=list(n.opening_hours),
                )
            )
    return nodes
