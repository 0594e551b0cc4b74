"""The domain model: fulfilment nodes, orders, fleet and the scenario that holds them.

Units are integers inside: seconds from the start of the horizon, metres, cents. Every name
that carries a unit says it (``service_s``, ``capacity_units``, ``fixed_cost_cents``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import Discriminator, Field, PrivateAttr, Tag, ValidationInfo, model_validator

from scenarios.errors import FieldError, register_union_tags
from scenarios.geo import (
    MAX_ID_LENGTH,
    MAX_INT,
    Id,
    IdKey,
    Location,
    NonNegInt,
    NotBool,
    PosInt,
    StrictModel,
    TimeWindow,
    check_stock_keys,
    check_windows,
)
from scenarios.saved import is_stored, record_done, take_pending
from scenarios.stochastic import (
    MAX_ARRIVALS_HORIZON_S,
    ArrivalProcess,
    StochasticParams,
    is_arrival_order_id,
)
from scenarios.travel import EuclideanTravel, TravelModel

SCHEMA_VERSION: Literal[1] = 1


class NodeKind(StrEnum):
    """What a fulfilment node is."""

    DC = "dc"
    STORE = "store"
    DARK_STORE = "dark_store"


class Tier(StrEnum):
    """Customer tier; VIP orders get priority for scarce stock and capacity."""

    STANDARD = "standard"
    VIP = "vip"


class Sku(StrictModel):
    """A stock-keeping unit of the catalogue."""

    id: Id
    weight_g: NonNegInt = 0
    volume_cm3: NonNegInt = 0
    restricted_regions: list[Id] = Field(
        default_factory=list, description="destination regions this SKU may not be shipped to"
    )


class OrderLine(StrictModel):
    """One line of an order: a quantity of one SKU."""

    sku: Id
    quantity: PosInt


def _safety_stock_kind(value: Any) -> str | None:
    """Which form of :data:`SafetyStock` ``value`` is given in (None: neither)."""
    if isinstance(value, Mapping):
        return "per_sku"
    if value is None or isinstance(value, list | tuple | set | frozenset):
        return None
    return "units"  # a number, or what the number's validation may take or explain


#: Why a safety stock that is neither a number nor a mapping by SKU is refused.
SAFETY_STOCK_REASON = "must be a number of units (for every SKU) or an object of units per SKU"

#: A node's safety stock: one number for every SKU, or units per SKU (0 for the others). The
#: form is told from the input (a mapping or not), so a bad value is reported by the form it
#: was given in, at its own place (``safety_stock.sku-1``): a smart union reported the
#: number's error first (``safety_stock: Input should be a valid integer``) for a mapping.
SafetyStock = Annotated[
    Annotated[NonNegInt, Tag("units")] | Annotated[dict[IdKey, NonNegInt], Tag("per_sku")],
    Discriminator(
        _safety_stock_kind,
        custom_error_type="safety_stock_type",
        custom_error_message=SAFETY_STOCK_REASON,
    ),
    Field(description="units per SKU that must stay on the shelf (one value or per SKU)"),
]
register_union_tags("safety_stock", ("units", "per_sku"))


class TimeWindowed:
    """Mixin of a model with ``time_windows`` (an order, a pickup): sorted and disjoint."""

    if TYPE_CHECKING:  # the model's field (an annotation here would make a pydantic field)
        time_windows: list[TimeWindow]

    @model_validator(mode="after")
    def _windows(self) -> Self:
        check_windows(self.time_windows, "time_windows")
        return self


class StockedNode:
    """Mixin of a node with stock and opening hours: the checks and the safety stock that
    :class:`FulfilmentNode` and the allocation request's node share.

    ``opening_hours`` sorted and disjoint; the SKU ids keying ``inventory`` and
    ``safety_stock`` free of control characters (as an order line's ``sku``).
    """

    if TYPE_CHECKING:  # the model's fields (an annotation here would make pydantic fields)
        inventory: dict[str, int]
        safety_stock: int | dict[str, int]
        opening_hours: list[TimeWindow]

    @model_validator(mode="after")
    def _opening_hours(self) -> Self:
        check_windows(self.opening_hours, "opening_hours")
        return self

    @model_validator(mode="after")
    def _sku_ids(self) -> Self:
        check_stock_keys(self.inventory, self.safety_stock)
        return self

    def safety_stock_for(self, sku: str) -> int:
        """Units of ``sku`` that must stay on the shelf."""
        if isinstance(self.safety_stock, int):
            return self.safety_stock
        return self.safety_stock.get(sku, 0)


class PickupSpec(TimeWindowed, StrictModel):
    """The pickup half of a pickup-and-delivery job (the order's own fields are the delivery)."""

    id: Id | None = Field(default=None, description="external id of the pickup task")
    location: Location
    time_windows: list[TimeWindow] = Field(default_factory=list)
    service_s: NonNegInt = 0


class Order(TimeWindowed, StrictModel):
    """A customer order: what to deliver, where, when, and how much it matters."""

    id: Id
    channel: str = "web"
    location: Location
    region: Id | None = Field(default=None, description="a region id (not blank)")
    lines: list[OrderLine] = Field(default_factory=list)
    tier: Tier = Tier.STANDARD
    created_s: NonNegInt = Field(
        default=0,
        description="when the order exists: the twin releases it then, and routing loads it "
        "at a vehicle's start or picks it up no earlier",
    )
    time_windows: list[TimeWindow] = Field(
        default_factory=list,
        description="promised delivery windows, sorted and disjoint; empty = any time",
    )
    service_s: NonNegInt = 0
    priority: Annotated[int, Field(ge=-MAX_INT, le=MAX_INT), NotBool] = Field(
        default=0,
        description="higher = more important: when the fleet cannot serve every mandatory "
        "order, routing leaves out the lowest priorities first (only their order counts, "
        "not their size); at most 10**12 either side of 0, as every integer of a scenario",
    )
    demand: list[NonNegInt] = Field(
        default_factory=list,
        description="load per capacity dimension; empty = total line units on a 'units' "
        "dimension, zero on the others",
    )
    required_skills: list[Id] = Field(
        default_factory=list, description="skills a vehicle must have to serve it (not blank)"
    )
    pickup: PickupSpec | None = None
    penalty_cents: NonNegInt | None = Field(
        default=None, description="cost of leaving the order unserved; None = must be served"
    )
    split_of: Id | None = Field(
        default=None,
        description="the order this courier job ships part of, when that order ships from "
        "several nodes (set by routing from an allocation): the jobs of one split_of are "
        "served all or nothing and share one penalty and priority; None = a job of its own",
    )

    @property
    def units(self) -> int:
        """Total units over all lines."""
        return sum(line.quantity for line in self.lines)

    def demand_vector(self, dims: list[str]) -> list[int]:
        """Load per capacity dimension, filling an empty ``demand`` from the lines."""
        if self.demand:
            return list(self.demand)
        return [self.units if dim == "units" else 0 for dim in dims]

    @property
    def pickup_id(self) -> str:
        """External id of the pickup task (defaults to ``<order id>:pickup``)."""
        if self.pickup is not None and self.pickup.id is not None:
            return self.pickup.id
        return f"{self.id}:pickup"


# ``ArrivalProcess.templates`` are orders: stochastic.py cannot import this module (it imports
# stochastic.py), so the forward reference is resolved here, from this module's namespace.
ArrivalProcess.model_rebuild()


class FulfilmentNode(StockedNode, StrictModel):
    """A DC, store or dark store that can pick, pack and hand over parcels."""

    id: Id
    kind: NodeKind = NodeKind.DC
    location: Location
    region: Id | None = Field(default=None, description="a region id (not blank)")
    inventory: dict[IdKey, NonNegInt] = Field(default_factory=dict)
    safety_stock: SafetyStock = 0
    capacity_units: NonNegInt | None = Field(
        default=None, description="units per day; None = no limit"
    )
    capacity_orders: NonNegInt | None = Field(
        default=None, description="orders per day; None = no limit"
    )
    opening_hours: list[TimeWindow] = Field(default_factory=list, description="empty = always open")
    handling_cost_cents_per_unit: NonNegInt = 0
    processing_s: NonNegInt = Field(default=0, description="planned pick+pack lead time per order")
    pickers: PosInt = 1
    packing_stations: PosInt = 1
    pick_time_s_per_line: NonNegInt = 60
    pack_time_s_per_order: NonNegInt = 120

    def available(self, sku: str) -> int:
        """Units of ``sku`` that may be shipped (inventory minus safety stock, never negative)."""
        return max(0, self.inventory.get(sku, 0) - self.safety_stock_for(sku))


class Break(StrictModel):
    """A driver break of ``duration_s`` that must start inside ``window``."""

    window: TimeWindow
    duration_s: PosInt


class Vehicle(StrictModel):
    """A courier or vehicle: where it starts and ends, when it works, what it carries, its costs."""

    id: Id
    start_location: Location
    end_location: Location | None = Field(default=None, description="None = back to the start")
    shift: TimeWindow | None = Field(default=None, description="None = the whole horizon")
    capacity: list[NonNegInt] = Field(
        default_factory=list, description="per capacity dimension; empty = unlimited"
    )
    skills: list[Id] = Field(default_factory=list, description="what it can serve (not blank)")
    fixed_cost_cents: NonNegInt = 0
    cost_per_km_cents: NonNegInt = 0
    cost_per_hour_cents: NonNegInt = 0
    max_duration_s: PosInt | None = None
    max_distance_m: PosInt | None = None
    breaks: list[Break] = Field(default_factory=list)
    latest_start_s: NonNegInt | None = Field(
        default=None,
        description="latest departure from the start (None = any time in the shift); the "
        "route's duration counts from its departure, so a route leaving at its shift start "
        "pays its waiting",
    )

    @property
    def end(self) -> Location:
        """Where the route ends."""
        return self.end_location if self.end_location is not None else self.start_location


class CostParams(StrictModel):
    """Prices that turn a plan's outcome into money (cents)."""

    lateness_cents_per_min: NonNegInt = 20
    unserved_cents: NonNegInt = 10_000
    failed_delivery_cents: NonNegInt = 1_500


class SourceInfo(StrictModel):
    """Where a scenario came from and how to report its numbers in the source's own units."""

    format: Literal["json", "solomon", "lilim", "vrplib", "vroom", "generated", "other"] = "json"
    name: str | None = None
    path: str | None = None
    distance_divisor: PosInt = Field(
        default=1, description="reported distance = distance_m / divisor (10 for Solomon: DIMACS)"
    )
    time_divisor: PosInt = Field(default=1, description="reported time = seconds / divisor")
    notes: str | None = None


class Scenario(StrictModel):
    """Everything needed to plan and simulate a horizon: nodes, orders, fleet, travel, noise."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = "scenario"
    horizon: TimeWindow = Field(default_factory=lambda: TimeWindow(start_s=0, end_s=86_400))
    travel: TravelModel = Field(default_factory=EuclideanTravel)
    capacity_dims: list[Id] = Field(
        default_factory=lambda: ["units"],
        description="names of the capacity dimensions (each an id: not blank)",
    )
    skus: list[Sku] = Field(default_factory=list, description="empty = any SKU id is accepted")
    nodes: list[FulfilmentNode] = Field(default_factory=list)
    orders: list[Order] = Field(default_factory=list)
    vehicles: list[Vehicle] = Field(default_factory=list)
    costs: CostParams = Field(default_factory=CostParams)
    stochastic: StochasticParams = Field(default_factory=StochasticParams)
    arrivals: ArrivalProcess | None = None
    source: SourceInfo = Field(default_factory=SourceInfo)
    _by_id: dict[str, tuple[tuple[int, int], dict[str, object]]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _saved_corrections(self, info: ValidationInfo) -> Self:
        """Note the corrections made while reading saved data (see :mod:`scenarios.saved`)."""
        fields = take_pending(info)
        if fields:
            note = (
                f"{', '.join(fields)}: non-zero diagonal set to zero (saved before travel to "
                "the same place had to be 0)"
            )
            self._note_saved(info, note)
        return self

    def _note_saved(self, info: ValidationInfo, note: str) -> None:
        """Add a note on saved data to ``source.notes`` (once) and to the corrections made."""
        notes = self.source.notes
        if note not in (notes or ""):
            self.source.notes = f"{notes}; {note}" if notes else note
        record_done(info, note)

    @model_validator(mode="after")
    def _times_in_horizon(self, info: ValidationInfo) -> Self:
        """Shifts inside the horizon, and the other times against it (:func:`horizon_problems`).

        A scenario stored by an older version (:func:`scenarios.saved.is_stored`: job
        payloads and plans read back from the database) is kept as saved, with a note and a
        warning per field: its jobs stay readable and re-run as they ran.
        """
        problems = self.times_outside_horizon()
        if not problems:
            return self
        if not is_stored(info):
            path, reason = problems[0]
            raise FieldError(path, reason)
        for path, reason in problems:
            self._note_saved(info, stored_time_note(path, reason))
        return self

    def times_outside_horizon(self) -> list[tuple[tuple[str | int, ...], str]]:
        """The scenario's times that do not fit its horizon (see :func:`horizon_problems`)."""
        return horizon_problems(
            self.horizon,
            self.vehicles,
            self.orders,
            stochastic=self.stochastic,
            arrivals=self.arrivals,
        )

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        check_unique_ids((s.id for s in self.skus), "skus")
        check_unique_ids((n.id for n in self.nodes), "nodes")
        check_unique_ids((o.id for o in self.orders), "orders")
        _check_pickup_ids(self.orders)
        _check_split_jobs(self.orders)
        if self.arrivals is not None:
            _check_arrival_ids(self.orders)
            check_unique_ids((o.id for o in self.arrivals.templates), "arrivals.templates")
            span = self.horizon.end_s - self.horizon.start_s
            if span > MAX_ARRIVALS_HORIZON_S:
                raise FieldError(
                    ("arrivals",),
                    f"an arrival process needs a horizon of at most "
                    f"{MAX_ARRIVALS_HORIZON_S // 86_400} days (the twin draws arrivals hour by "
                    f"hour); the horizon spans {span / 86_400:.4g} days",
                )
        check_unique_ids((v.id for v in self.vehicles), "vehicles")
        first_at: dict[str, int] = {}
        for i, dim in enumerate(self.capacity_dims):
            # demands and capacities are matched to dimensions by name in places (a shown
            # scenario merged two "units")
            if dim in first_at:
                raise FieldError(
                    ("capacity_dims", i),
                    f"duplicate dimension {dim!r} (also capacity_dims.{first_at[dim]})",
                )
            first_at[dim] = i
        dims = len(self.capacity_dims)
        known_skus = {s.id for s in self.skus}
        for i, node in enumerate(self.nodes):
            if known_skus:
                # a safety stock by SKU too: one for a SKU outside the catalogue is a typo
                # (it keeps nothing on the shelf: no order line may name that SKU)
                per_sku = node.safety_stock if isinstance(node.safety_stock, dict) else {}
                for field, skus in (("inventory", node.inventory), ("safety_stock", per_sku)):
                    if known_skus.issuperset(skus):
                        continue  # all known: no walk of a few thousand SKUs in Python
                    for sku in skus:
                        if sku not in known_skus:
                            raise FieldError(("nodes", i, field, sku), f"unknown SKU {sku!r}")
        for at, order in self._iter_orders():
            if order.demand and len(order.demand) != dims:
                raise FieldError(
                    (*at, "demand"),
                    f"has {len(order.demand)} values but capacity_dims has {dims}",
                )
            if known_skus:
                for j, line in enumerate(order.lines):
                    if line.sku not in known_skus:
                        raise FieldError((*at, "lines", j, "sku"), f"unknown SKU {line.sku!r}")
        for i, vehicle in enumerate(self.vehicles):
            if vehicle.capacity and len(vehicle.capacity) != dims:
                raise FieldError(
                    ("vehicles", i, "capacity"),
                    f"has {len(vehicle.capacity)} values but capacity_dims has {dims}",
                )
        for path, loc in self.iter_locations():
            problem = self.travel.check_location(loc)
            if problem is not None:
                raise FieldError(path, problem)
        return self

    @property
    def arrival_templates(self) -> list[Order]:
        """The orders the twin draws arrivals from: ``arrivals.templates``, else the orders."""
        if self.arrivals is not None and self.arrivals.templates:
            return self.arrivals.templates
        return self.orders

    def _iter_orders(self) -> Iterator[tuple[tuple[str | int, ...], Order]]:
        """The listed orders, then the arrival templates, each with its field path."""
        for i, order in enumerate(self.orders):
            yield ("orders", i), order
        if self.arrivals is not None:
            for i, order in enumerate(self.arrivals.templates):
                yield ("arrivals", "templates", i), order

    def iter_locations(self) -> Iterator[tuple[tuple[str | int, ...], Location]]:
        """Every location in the scenario with its field path (arrival templates' too)."""
        for i, node in enumerate(self.nodes):
            yield ("nodes", i, "location"), node.location
        for at, order in self._iter_orders():
            yield (*at, "location"), order.location
            if order.pickup is not None:
                yield (*at, "pickup", "location"), order.pickup.location
        for i, vehicle in enumerate(self.vehicles):
            yield ("vehicles", i, "start_location"), vehicle.start_location
            if vehicle.end_location is not None:
                yield ("vehicles", i, "end_location"), vehicle.end_location

    def order(self, order_id: str) -> Order:
        """The order with this id (KeyError if absent)."""
        return self._index("orders")[order_id]  # type: ignore[return-value]

    def node(self, node_id: str) -> FulfilmentNode:
        """The node with this id (KeyError if absent)."""
        return self._index("nodes")[node_id]  # type: ignore[return-value]

    def vehicle(self, vehicle_id: str) -> Vehicle:
        """The vehicle with this id (KeyError if absent)."""
        return self._index("vehicles")[vehicle_id]  # type: ignore[return-value]

    def _index(self, field: Literal["orders", "nodes", "vehicles"]) -> dict[str, object]:
        items: list[Order] | list[FulfilmentNode] | list[Vehicle] = getattr(self, field)
        key = (id(items), len(items))
        cached = self._by_id.get(field)
        if cached is None or cached[0] != key:
            cached = (key, {item.id: item for item in items})
            self._by_id[field] = cached
        return cached[1]


def stored_time_note(path: tuple[str | int, ...], reason: str) -> str:
    """The ``source.notes`` line of a time outside the horizon kept as stored."""
    return (
        f"{'.'.join(str(p) for p in path)}: {reason} (stored before the horizon was checked; "
        "kept as stored)"
    )


def horizon_problems(
    horizon: TimeWindow,
    vehicles: Sequence[Vehicle],
    orders: Sequence[Order],
    *,
    orders_field: str = "orders",
    stochastic: StochasticParams | None = None,
    arrivals: ArrivalProcess | None = None,
) -> list[tuple[tuple[str | int, ...], str]]:
    """Times that do not fit the horizon, as (field path, reason), in field order.

    A vehicle's shift must lie inside the horizon (the twin ends every shift at the horizon
    end, and an omitted shift is the horizon), and a break window must meet the vehicle's
    hours (its shift, else the horizon), and end inside them: a break that cannot start inside
    them, or cannot end inside them when started at its earliest, leaves the vehicle unusable
    (so do breaks whose lengths add up to more than those hours). An order created after the
    horizon ends is never released by the twin. An order's or pickup's window, a node
    outage's, a travel slowdown's or a demand surge's lying entirely outside the horizon can
    never be used (or has no effect); one only partly outside is accepted (the vehicles'
    shifts, inside the horizon, bound when it can be served). Nodes' opening hours are not
    checked: hours outside the horizon only say the node is closed then.
    """
    lo, hi = horizon.start_s, horizon.end_s
    span = f"the horizon [{lo}, {hi}] s"
    out: list[tuple[tuple[str | int, ...], str]] = []

    def outside(w: TimeWindow, start_s: int = lo, end_s: int = hi) -> bool:
        return w.end_s < start_s or w.start_s > end_s

    for i, v in enumerate(vehicles):
        shift = v.shift
        if shift is None:
            hours = (lo, hi, f"{span} (the vehicle has no shift)")
        else:
            hours = (shift.start_s, shift.end_s, f"the shift [{shift.start_s}, {shift.end_s}] s")
            if shift.start_s < lo:
                out.append(
                    (
                        ("vehicles", i, "shift", "start_s"),
                        f"the shift starts at {shift.start_s} s, before {span} starts; a "
                        "shift must lie inside the horizon",
                    )
                )
            elif shift.end_s > hi:
                out.append(
                    (
                        ("vehicles", i, "shift", "end_s"),
                        f"the shift ends at {shift.end_s} s, after {span} ends; a shift must "
                        "lie inside the horizon",
                    )
                )
        late = v.latest_start_s
        if late is not None and not hours[0] <= late <= hours[1]:
            out.append(
                (
                    ("vehicles", i, "latest_start_s"),
                    f"the latest start {late} s lies outside {hours[2]}: the vehicle could "
                    "never leave its start",
                )
            )
        for j, brk in enumerate(v.breaks):
            w = brk.window
            if outside(w, hours[0], hours[1]):
                out.append(
                    (
                        ("vehicles", i, "breaks", j, "window"),
                        f"the break window [{w.start_s}, {w.end_s}] s lies entirely outside "
                        f"{hours[2]}: the break could never be taken, and the vehicle could "
                        "not be used",
                    )
                )
                continue
            # a used vehicle takes every break inside its route, so inside its hours: one
            # that cannot end there leaves it unusable (its orders were each reported
            # 'break_unplaceable', where the vehicle's input is what is wrong)
            earliest = max(w.start_s, hours[0])
            if earliest + brk.duration_s > hours[1]:
                out.append(
                    (
                        ("vehicles", i, "breaks", j),
                        f"the break of {brk.duration_s} s starts at {earliest} s at the "
                        f"earliest (its window [{w.start_s}, {w.end_s}] s) and would end at "
                        f"{earliest + brk.duration_s} s, after {hours[2]} ends: a break must "
                        "end inside the vehicle's hours, and the vehicle could not be used",
                    )
                )
        total = sum(brk.duration_s for brk in v.breaks)
        if len(v.breaks) > 1 and total > hours[1] - hours[0]:
            out.append(
                (
                    ("vehicles", i, "breaks"),
                    f"the breaks take {total} s together, more than the {hours[1] - hours[0]} s "
                    f"of {hours[2]}: they could never all be taken, and the vehicle could not "
                    "be used",
                )
            )

    def windows(tws: Sequence[TimeWindow], at: tuple[str | int, ...], what: str) -> None:
        for w in tws:  # a first pass, inline: nearly every window fits (one per order)
            if w.end_s < lo or w.start_s > hi:
                break
        else:
            return
        for j, w in enumerate(tws):
            if outside(w):
                out.append(
                    (
                        (*at, j),
                        f"the window [{w.start_s}, {w.end_s}] s lies entirely outside {span}: "
                        f"the {what} could never be made in it",
                    )
                )

    for i, order in enumerate(orders):
        if order.created_s > hi:
            out.append(
                (
                    (orders_field, i, "created_s"),
                    f"the order is created at {order.created_s} s, after {span} ends: it "
                    "would never be released (the twin leaves it unserved)",
                )
            )
        windows(order.time_windows, (orders_field, i, "time_windows"), "delivery")
        if order.pickup is not None:
            windows(
                order.pickup.time_windows, (orders_field, i, "pickup", "time_windows"), "pickup"
            )

    def no_effect(w: TimeWindow | None, at: tuple[str | int, ...], what: str) -> None:
        if w is not None and outside(w):
            out.append(
                (
                    at,
                    f"the window [{w.start_s}, {w.end_s}] s lies entirely outside {span}: "
                    f"the {what} would have no effect",
                )
            )

    if stochastic is not None:
        for k, outage in enumerate(stochastic.node_outages):
            no_effect(outage.window, ("stochastic", "node_outages", k, "window"), "outage")
        for k, slow in enumerate(stochastic.travel_slowdowns):
            no_effect(slow.window, ("stochastic", "travel_slowdowns", k, "window"), "slowdown")
    if arrivals is not None:
        for k, surge in enumerate(arrivals.surges):
            no_effect(surge.window, ("arrivals", "surges", k, "window"), "surge")
    return out


def _check_split_jobs(orders: Sequence[Order]) -> None:
    """The courier jobs of one split order (one ``split_of``) share its penalty and priority.

    They are served all or nothing and charged one penalty (see
    :func:`solvers.routing.from_allocation.split_order_groups`): jobs that disagree would
    leave the penalty of a group to whichever job is read first. The error names the later
    job's field and the first job of the group.
    """
    first: dict[str, int] = {}
    for i, order in enumerate(orders):
        if order.split_of is None:
            continue
        k = first.setdefault(order.split_of, i)
        lead = orders[k]
        for field in ("penalty_cents", "priority"):
            mine, theirs = getattr(order, field), getattr(lead, field)
            if mine != theirs:
                raise FieldError(
                    ("orders", i, field),
                    f"{mine} on job {order.id!r} of split order {order.split_of!r}, "
                    f"{theirs} on its job {lead.id!r} (orders.{k}): the jobs of one order "
                    f"share its {field}",
                )


def _check_pickup_ids(orders: Sequence[Order]) -> None:
    """Order and pickup task ids are all distinct (plans key stops by task id).

    The error names the later of two tasks that share an id, so that orders appended to a
    list (re-optimisation's new orders) are the ones blamed, and the earlier one by its id
    (its place would be the place in a list the caller may not have sent, e.g. the stored
    scenario of a re-plan).
    """
    # task id -> the order that used it first, and whether as its pickup's (the error's
    # words are made only for an error: an f-string per order was most of this check's time)
    first: dict[str, tuple[str, bool]] = {}
    for i, order in enumerate(orders):
        if order.pickup is None and order.id not in first:
            first[order.id] = (order.id, False)  # the common case, as the loop below does it
            continue
        tasks: list[tuple[str, tuple[str | int, ...], bool]] = [
            (order.id, ("orders", i, "id"), False)
        ]
        if order.pickup is not None:
            own = order.pickup.id is not None
            at: tuple[str | int, ...] = (
                ("orders", i, "pickup", "id") if own else ("orders", i, "id")
            )
            if not own and len(order.pickup_id) > MAX_ID_LENGTH:
                # a plan's stop would carry an id no request could name back
                raise FieldError(
                    ("orders", i, "pickup", "id"),
                    f"missing, and the default '<order id>:pickup' would have "
                    f"{len(order.pickup_id)} characters (at most {MAX_ID_LENGTH}): give the "
                    "pickup an id or shorten the order id",
                )
            tasks.append((order.pickup_id, at, True))
        for task_id, where, as_pickup in tasks:
            if task_id in first:
                owner, its_pickup = first[task_id]
                what = f"the pickup of order {owner!r}" if its_pickup else f"order {owner!r}"
                raise FieldError(where, f"id {task_id!r} is already the id of {what}")
            first[task_id] = (order.id, as_pickup)


def _check_arrival_ids(orders: Sequence[Order]) -> None:
    """No listed task id has the form of the ids the twin gives the day's arrivals.

    With an arrival process the twin names the day's new orders ``arrival-000123`` (and
    ``arrival-surge<j>-000123``, :func:`scenarios.stochastic.arrival_order_id`) and keys their
    noise by id, so a listed order of that name would share the noise of an arrival (and a
    materialised day would hold two tasks of one id). Refused whatever the day's draws.
    """
    for i, order in enumerate(orders):
        tasks: list[tuple[str, tuple[str | int, ...]]] = [(order.id, ("orders", i, "id"))]
        if order.pickup is not None and order.pickup.id is not None:
            tasks.append((order.pickup.id, ("orders", i, "pickup", "id")))
        for task_id, path in tasks:
            if is_arrival_order_id(task_id):
                raise FieldError(
                    path,
                    f"id {task_id!r} has the form of the ids the day's arrivals get "
                    "('arrival-000123', 'arrival-surge<j>-000123') and the scenario has "
                    "arrivals: rename it",
                )


def check_unique_ids(ids: Iterable[str], field: str, key: str = "id") -> None:
    """Raise FieldError naming ``field.{i}.{key}`` for the first id (``key``: what names an
    item of ``field``, its ``id``, a variant's ``name``) that repeats an earlier one:
    ``nodes.1.id: duplicate id 'dc'``, ``variants.1.name: duplicate name 'rush'``."""
    seen: set[str] = set()
    for i, item_id in enumerate(ids):
        if item_id in seen:
            raise FieldError((field, i, key), f"duplicate {key} {item_id!r}")
        seen.add(item_id)
