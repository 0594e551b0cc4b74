"""A scenario compiled for fast simulation: location indices, dense travel tables, plain arrays.

The twin, its policies and the RL environment never touch pydantic objects in their hot loops:
everything they need is compiled once per scenario into a :class:`World` (numpy arrays and
Python lists indexed by integers). Compiling is deterministic and has no randomness.

Indices: locations ``0..num_locations-1``; nodes ``0..num_nodes-1`` (real fulfilment nodes
first, then one *virtual depot* per distinct vehicle start when the scenario has no nodes);
vehicles (couriers) ``0..num_vehicles-1``; base orders ``0..num_orders-1`` in scenario order.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from scenarios.errors import InputError
from scenarios.geo import Location
from scenarios.model import Order, Scenario
from scenarios.travel import TravelModel

INF = math.inf
BLOCK_ROWS = 512
MAX_DENSE_LOCATIONS = 20_000
#: Travel tables up to this many locations are checked for the triangle inequality (about
#: 0.2 s at the limit; see TravelTable.shortcut_s).
METRIC_CHECK_MAX_LOCATIONS = 600

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class TravelTable:
    """Free-flow travel durations (s) and distances (m) between every pair of world locations.

    ``shortcut_bound_s``: what the travel model guarantees of :attr:`shortcut_s` (None: nothing).
    """

    duration_s: NDArray[np.int32]
    distance_m: NDArray[np.int32]
    shortcut_bound_s: int | None = None

    @property
    def size(self) -> int:
        """Number of locations."""
        return int(self.duration_s.shape[0])

    @cached_property
    def symmetric(self) -> bool:
        """Whether both tables are symmetric (the way back is the way there), checked once."""
        d, m = self.duration_s, self.distance_m
        return bool(np.array_equal(d, d.T) and np.array_equal(m, m.T))

    @cached_property
    def shortcut_s(self) -> int | None:
        """The most a detour through a third location is quicker than the direct way
        (``max(d[a, c] - d[a, b] - d[b, c], 0)`` over all locations; 0: the durations obey the
        triangle inequality): the model's bound, else computed once for tables of at most
        :data:`METRIC_CHECK_MAX_LOCATIONS` locations (the check is cubic), else None (unknown)."""
        if self.shortcut_bound_s is not None:
            return self.shortcut_bound_s
        n = self.size
        if n > METRIC_CHECK_MAX_LOCATIONS:
            return None
        d = self.duration_s.astype(np.int64)
        worst = 0
        for b in range(n):
            worst = max(worst, int((d - (d[:, b, None] + d[None, b, :])).max()))
        return worst

    @property
    def metric(self) -> bool:
        """Whether the durations are known to obey the triangle inequality (see shortcut_s)."""
        return self.shortcut_s == 0


@dataclass(frozen=True)
class NodeInfo:
    """A fulfilment node (or virtual depot) as plain data."""

    id: str
    location: int
    pickers: int
    packing_stations: int
    pick_time_s_per_line: float
    pack_time_s_per_order: float
    processing_s: float
    closed: tuple[tuple[float, float], ...]
    virtual: bool = False

    def available_from(self, t_s: float) -> float:
        """Earliest time at or after ``t_s`` when the node is open and not in an outage."""
        for start, end in self.closed:
            if start <= t_s < end:
                t_s = end
            elif start > t_s:
                break
        return t_s

    def closes_for_good_s(self) -> float:
        """When the node stops working for good (inf: never): the twin loses the parcels it
        still holds then; a closing it reopens after (a lunch break, an outage) only delays."""
        return next((a for a, b in self.closed if math.isinf(b)), math.inf)

    def open_s(self, start_s: float, end_s: float) -> float:
        """Seconds of ``[start_s, end_s]`` during which the node is open (no outage)."""
        total = max(0.0, end_s - start_s)
        for a, b in self.closed:
            total -= max(0.0, min(b, end_s) - max(a, start_s))
        return max(0.0, total)


@dataclass(frozen=True)
class OrderData:
    """Static data of orders, one entry per order (index = position)."""

    ids: list[str]
    location: list[int]
    windows: list[tuple[tuple[float, float], ...]]
    tw_start: list[float]
    tw_end: list[float]
    service_s: list[float]
    demand: list[tuple[float, ...]]
    created_s: list[float]
    penalty_cents: list[float]
    lines: list[tuple[tuple[int, int], ...]]
    pickup_location: list[int]
    pickup_tw_start: list[float]
    pickup_service_s: list[float]
    skills: list[frozenset[str]]
    template: list[int]

    def __len__(self) -> int:
        return len(self.ids)

    def extended(self, other: OrderData) -> OrderData:
        """This table followed by ``other``."""
        return OrderData(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in self.__dataclass_fields__
            }
        )

    def subset(self, indices: list[int]) -> OrderData:
        """The rows ``indices`` (in that order)."""
        return OrderData(
            **{
                name: [getattr(self, name)[i] for i in indices]
                for name in self.__dataclass_fields__
            }
        )


@dataclass(frozen=True)
class World:
    """Everything the twin needs about one scenario, compiled once (no randomness)."""

    scenario: Scenario
    locations: list[Location]
    travel: TravelTable
    nodes: list[NodeInfo]
    node_index: dict[str, int]
    sku_index: dict[str, int]
    stock_modelled: bool
    inventory: IntArray
    safety_stock: IntArray
    node_capacity_orders: list[float]
    vehicle_ids: list[str]
    vehicle_index: dict[str, int]
    vehicle_start_loc: list[int]
    vehicle_end_loc: list[int]
    shift_start_s: list[float]
    shift_end_s: list[float]
    capacity: FloatArray
    cost_per_km_cents: list[float]
    cost_per_hour_cents: list[float]
    fixed_cost_cents: list[float]
    vehicle_skills: list[frozenset[str]]
    orders: OrderData
    #: what the day's arrivals are drawn from (``Scenario.arrival_templates``): ``orders``
    #: itself, or the table of ``arrivals.templates``
    arrival_templates: OrderData
    order_index: dict[str, int]
    horizon_start_s: float
    horizon_end_s: float
    num_dims: int
    loc_of: dict[Location, int] = field(repr=False)

    @property
    def num_nodes(self) -> int:
        """Nodes including virtual depots."""
        return len(self.nodes)

    @property
    def num_vehicles(self) -> int:
        """Couriers."""
        return len(self.vehicle_ids)

    @property
    def num_orders(self) -> int:
        """Base orders (the scenario's own)."""
        return len(self.orders)

    @property
    def has_real_nodes(self) -> bool:
        """True when the scenario has fulfilment nodes (else virtual depots stand in)."""
        return any(not n.virtual for n in self.nodes)

    def travel_factor(self, t_s: float) -> float:
        """Deterministic travel multiplier at departure ``t_s``: profile x weather x slowdowns."""
        stoch = self.scenario.stochastic
        factor = stoch.travel_factor_at(t_s)
        if stoch.use_travel_profile and self.scenario.travel.profile:
            factor *= self.scenario.travel.factor_at(t_s)
        return factor

    def location_of(self, loc: Location | None, *, where: str) -> int:
        """Index of a location known to the world (InputError if it is not)."""
        if loc is None or loc not in self.loc_of:
            given = loc.model_dump(exclude_none=True) if loc is not None else None
            raise InputError(where, f"location {given} is not a location of the scenario")
        return self.loc_of[loc]


_DAY_S = 86_400.0


class TravelFactors:
    """Where the travel factor (:meth:`World.travel_factor`) changes, and its highest and
    lowest value over a span of departures (what a quote needs to price a way home whose
    departure it knows only within bounds).

    The factor is the profile's (from each period's start, every day) x the weather x the
    slowdowns (each over its closed window): piecewise constant, changing only at a profile
    period's start or a slowdown window's start or just after its end. ``at``: the factor at a
    departure (``world.travel_factor`` or a memo of it: the same numbers).
    """

    def __init__(self, world: World, at: Callable[[float], float] | None = None) -> None:
        """The factor of ``world``'s scenario, read through ``at`` (default: the world's)."""
        self.at: Callable[[float], float] = world.travel_factor if at is None else at
        stoch = world.scenario.stochastic
        profile = world.scenario.travel.profile if stoch.use_travel_profile else []
        changes = len({p.duration_factor for p in profile}) > 1
        self._starts = [float(p.start_s) for p in profile] if changes else []
        points: set[float] = set()
        for slow in stoch.travel_slowdowns:
            if slow.window is not None and slow.factor != 1.0:
                points.add(float(slow.window.start_s))
                points.add(math.nextafter(float(slow.window.end_s), INF))
        self._points = sorted(points)
        #: True when the factor is the same at every departure.
        self.constant = not self._starts and not self._points
        first = min([0.0, *self._points])
        #: The lowest factor at any departure (from time 0 or the first slowdown on).
        self.lowest = self.floor(first, INF)

    def window(self, t: float) -> tuple[float, float]:
        """``(lo, hi)``: the factor is ``at(t)`` at every departure in ``[lo, hi)``
        (``-inf``, ``inf``: no change before or after ``t``); ``t`` finite."""
        lo, hi = -INF, INF
        starts = self._starts
        if starts:
            base = math.floor(t / _DAY_S) * _DAY_S
            tod = t - base
            k = bisect_right(starts, tod)
            lo = base + starts[k - 1] if k else base - _DAY_S + starts[-1]
            hi = base + starts[k] if k < len(starts) else base + _DAY_S + starts[0]
        points = self._points
        if points:
            k = bisect_right(points, t)
            if k and points[k - 1] > lo:
                lo = points[k - 1]
            if k < len(points) and points[k] < hi:
                hi = points[k]
        return lo, hi

    def _changes(self, a: float, b: float) -> Iterator[float]:
        """The departures in ``(a, b]`` where the factor may change (``a`` finite; ``b``
        infinite: up to a day after ``a`` and the last slowdown, which covers every value)."""
        points = self._points
        if b == INF:
            b = max(a, points[-1] if points else a) + _DAY_S
        starts = self._starts
        if starts:
            base = math.floor(a / _DAY_S) * _DAY_S
            while base + starts[0] <= b:
                for s in starts:
                    c = base + s
                    if c > b:
                        break
                    if c > a:
                        yield c
                base += _DAY_S
        for c in points:
            if a < c <= b:
                yield c

    def _values(self, a: float, b: float) -> Iterator[float]:
        """The factor at ``a`` and, when ``a <= b`` and ``a`` is finite, at every departure in
        ``(a, b]`` where it may change."""
        yield self.at(a)
        if a <= b and math.isfinite(a):
            for c in self._changes(a, b):
                yield self.at(c)

    def ceiling(self, a: float, b: float) -> float:
        """The highest factor at a departure in ``[a, b]`` (``at(a)`` unless ``a <= b`` and
        ``a`` is finite)."""
        return max(self._values(a, b))

    def floor(self, a: float, b: float) -> float:
        """The lowest factor at a departure in ``[a, b]`` (``at(a)`` unless ``a <= b`` and
        ``a`` is finite)."""
        return min(self._values(a, b))


def compile_world(scenario: Scenario, *, travel_tables: bool = True) -> World:
    """Compile a scenario into a :class:`World` (travel tables over all its locations).

    ``travel_tables=False``: the tables are empty (0 x 0), for a World that only looks ids and
    locations up (see :func:`simulation.twin.check_plan_ids`); never simulate on one.
    """
    locations: list[Location] = []
    loc_of: dict[Location, int] = {}

    def add(loc: Location) -> int:
        idx = loc_of.get(loc)
        if idx is None:
            idx = len(locations)
            loc_of[loc] = idx
            locations.append(loc)
        return idx

    for node in scenario.nodes:
        add(node.location)
    for vehicle in scenario.vehicles:
        add(vehicle.start_location)
        add(vehicle.end)
    templates = scenario.arrival_templates
    for order in (
        scenario.orders if templates is scenario.orders else [*scenario.orders, *templates]
    ):
        add(order.location)
        if order.pickup is not None:
            add(order.pickup.location)
    if travel_tables and len(locations) > MAX_DENSE_LOCATIONS:
        raise InputError(
            "orders",
            f"{len(locations)} distinct locations; the twin keeps dense travel tables and "
            f"supports at most {MAX_DENSE_LOCATIONS}",
        )
    travel = (
        _travel_table(scenario.travel, locations)
        if travel_tables
        else TravelTable(np.zeros((0, 0), dtype=np.int32), np.zeros((0, 0), dtype=np.int32))
    )

    horizon_start = float(scenario.horizon.start_s)
    horizon_end = float(scenario.horizon.end_s)
    nodes, node_index = _nodes(scenario, loc_of)
    if not nodes:
        for vehicle in scenario.vehicles:
            loc = loc_of[vehicle.start_location]
            if any(n.location == loc for n in nodes):
                continue
            name = f"depot:{vehicle.id}"
            nodes.append(NodeInfo(name, loc, 1_000_000, 1_000_000, 0.0, 0.0, 0.0, (), True))
            node_index[name] = len(nodes) - 1

    sku_index = _sku_index(scenario)
    sku_ids = list(sku_index)
    stock_modelled = any(node.inventory for node in scenario.nodes)
    inventory = np.zeros((len(nodes), len(sku_ids)), dtype=np.int64)
    safety = np.zeros((len(nodes), len(sku_ids)), dtype=np.int64)
    for n, node in enumerate(scenario.nodes):
        for sku, qty in node.inventory.items():
            inventory[n, sku_index[sku]] = qty
        for sku, k in sku_index.items():
            safety[n, k] = node.safety_stock_for(sku)
    node_capacity_orders = [
        float(node.capacity_orders) if node.capacity_orders is not None else INF
        for node in scenario.nodes
    ] + [INF] * (len(nodes) - len(scenario.nodes))

    dims = scenario.capacity_dims
    num_dims = len(dims)
    vehicles = scenario.vehicles
    capacity = np.full((len(vehicles), num_dims), INF, dtype=np.float64)
    for v, vehicle in enumerate(vehicles):
        if vehicle.capacity:
            capacity[v, :] = vehicle.capacity
    orders = _orders(scenario, scenario.orders, loc_of, sku_index)
    arrival_templates = (
        orders if templates is scenario.orders else _orders(scenario, templates, loc_of, sku_index)
    )
    return World(
        scenario=scenario,
        locations=locations,
        travel=travel,
        nodes=nodes,
        node_index=node_index,
        sku_index=sku_index,
        stock_modelled=stock_modelled,
        inventory=inventory,
        safety_stock=safety,
        node_capacity_orders=node_capacity_orders,
        vehicle_ids=[v.id for v in vehicles],
        vehicle_index={v.id: i for i, v in enumerate(vehicles)},
        vehicle_start_loc=[loc_of[v.start_location] for v in vehicles],
        vehicle_end_loc=[loc_of[v.end] for v in vehicles],
        shift_start_s=[
            float(v.shift.start_s) if v.shift is not None else horizon_start for v in vehicles
        ],
        shift_end_s=[float(v.shift.end_s) if v.shift is not None else INF for v in vehicles],
        capacity=capacity,
        cost_per_km_cents=[float(v.cost_per_km_cents) for v in vehicles],
        cost_per_hour_cents=[float(v.cost_per_hour_cents) for v in vehicles],
        fixed_cost_cents=[float(v.fixed_cost_cents) for v in vehicles],
        vehicle_skills=[frozenset(v.skills) for v in vehicles],
        orders=orders,
        arrival_templates=arrival_templates,
        order_index={o.id: i for i, o in enumerate(scenario.orders)},
        horizon_start_s=horizon_start,
        horizon_end_s=horizon_end,
        num_dims=num_dims,
        loc_of=loc_of,
    )


_TABLES: dict[tuple[str, int], tuple[tuple[Location, ...], TravelTable]] = {}


def _travel_table(model: TravelModel, locations: list[Location]) -> TravelTable:
    """Dense int32 tables (shared between scenarios with the same travel model and locations)."""
    key = (model.model_dump_json(), hash(tuple(locations)))
    hit = _TABLES.get(key)
    if hit is not None and hit[0] == tuple(locations):
        return hit[1]
    table = _compute_table(model, locations)
    if len(_TABLES) >= 4:
        _TABLES.pop(next(iter(_TABLES)))
    _TABLES[key] = (tuple(locations), table)
    return table


def _compute_table(model: TravelModel, locations: list[Location]) -> TravelTable:
    """Dense int32 tables, computed in row blocks on a private copy of the travel model."""
    n = len(locations)
    dur = np.zeros((n, n), dtype=np.int32)
    dist = np.zeros((n, n), dtype=np.int32)
    if n == 0:
        return TravelTable(dur, dist)
    # A private copy keeps the scenario's own matrix cache free of our large blocks; road
    # networks keep their loaded graph (building it is the expensive part).
    private = (
        model if model.kind == "road_network" else type(model).model_validate(model.model_dump())
    )
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        block = private.matrix(locations[start:stop], locations)
        dur[start:stop] = np.minimum(block.duration_s, np.iinfo(np.int32).max)
        dist[start:stop] = np.minimum(block.distance_m, np.iinfo(np.int32).max)
    dur.flags.writeable = False
    dist.flags.writeable = False
    # Fastest paths on a road graph (and straight access legs) obey the triangle inequality;
    # their rounding to whole seconds can break it by 1 s at most (see docs/scenarios.md).
    bound = 1 if model.kind == "road_network" else None
    return TravelTable(dur, dist, bound)


def _closed_intervals(
    opening: list[tuple[float, float]], outages: list[tuple[float, float]]
) -> tuple[tuple[float, float], ...]:
    """Sorted, merged intervals during which a node cannot work."""
    closed: list[tuple[float, float]] = list(outages)
    if opening:
        prev = 0.0
        for start, end in opening:
            if start > prev:
                closed.append((prev, start))
            prev = end
        closed.append((prev, INF))
    closed.sort()
    merged: list[tuple[float, float]] = []
    for start, end in closed:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


#: Why a scenario with arrivals but no order to draw them from cannot be played.
NO_ARRIVAL_TEMPLATES = (
    "new orders are drawn like existing ones: add at least one order (or arrivals.templates)"
)


def check_twin_input(scenario: Scenario) -> None:
    """InputError for what the twin refuses when it plays the day: arrivals with no order to
    draw them from, a node outage at a node the scenario does not have."""
    if scenario.arrivals is not None and not scenario.arrival_templates:
        raise InputError("arrivals", NO_ARRIVAL_TEMPLATES)
    check_outage_nodes(scenario)


#: why :func:`check_has_demand` refuses a day to ``simulate``, ``whatif`` and their endpoints
NOTHING_TO_PLAY = "the day has nothing to play (every KPI would be 0)"


def check_has_demand(scenario: Scenario, *, why: str) -> None:
    """InputError (field ``orders``) for a day with no orders and no arrivals expected over
    its horizon; ``why`` says what the caller would have made of it."""
    arrivals = scenario.arrivals
    expected = (
        arrivals.expected_arrivals(scenario.horizon.start_s, scenario.horizon.end_s)
        if arrivals is not None
        else 0.0
    )
    if not scenario.orders and not expected > 0:
        raise InputError(
            "orders",
            f"no orders and no arrivals expected over the horizon: {why}; give orders, or "
            "arrivals with an hourly_rate",
        )


def check_outage_nodes(scenario: Scenario) -> None:
    """InputError for a node outage at a node the scenario does not have."""
    node_ids = {n.id for n in scenario.nodes}
    for k, outage in enumerate(scenario.stochastic.node_outages):
        if outage.node_id not in node_ids:
            raise InputError(
                f"stochastic.node_outages.{k}.node_id", f"unknown node {outage.node_id!r}"
            )


def _nodes(
    scenario: Scenario, loc_of: dict[Location, int]
) -> tuple[list[NodeInfo], dict[str, int]]:
    outages: dict[str, list[tuple[float, float]]] = {}
    check_outage_nodes(scenario)
    horizon_end = float(scenario.horizon.end_s)
    for outage in scenario.stochastic.node_outages:
        # A closed window [start, end] blocks work until ``end`` (closed intervals, +1 s).
        # One lasting to the horizon's end closes the node for good (twin version 11): it
        # does not reopen in the day's overtime (a DC closed "all day" reopened at the
        # horizon's end and picked its parcels in the overtime, keeping the day open).
        end = float(outage.window.end_s)
        outages.setdefault(outage.node_id, []).append(
            (float(outage.window.start_s), INF if end >= horizon_end else end)
        )
    nodes = []
    for node in scenario.nodes:
        # Opening hours are closed windows [start, end]: the node works while start <= t <= end.
        opening = [(float(w.start_s), float(w.end_s)) for w in node.opening_hours]
        nodes.append(
            NodeInfo(
                id=node.id,
                location=loc_of[node.location],
                pickers=node.pickers,
                packing_stations=node.packing_stations,
                pick_time_s_per_line=float(node.pick_time_s_per_line),
                pack_time_s_per_order=float(node.pack_time_s_per_order),
                processing_s=float(node.processing_s),
                closed=_closed_intervals(opening, outages.get(node.id, [])),
            )
        )
    return nodes, {n.id: i for i, n in enumerate(nodes)}


def _sku_index(scenario: Scenario) -> dict[str, int]:
    """Catalogue SKUs first, then any other SKU seen in inventories or order lines."""
    index: dict[str, int] = {}
    for s in scenario.skus:
        index.setdefault(s.id, len(index))
    for node in scenario.nodes:
        for sku in node.inventory:
            index.setdefault(sku, len(index))
    for order in scenario.orders:
        for line in order.lines:
            index.setdefault(line.sku, len(index))
    if scenario.arrival_templates is not scenario.orders:
        for order in scenario.arrival_templates:
            for line in order.lines:
                index.setdefault(line.sku, len(index))
    return index


def _orders(
    scenario: Scenario,
    orders: Sequence[Order],
    loc_of: dict[Location, int],
    sku_pos: dict[str, int],
) -> OrderData:
    """The table of ``orders`` (the scenario's, or its arrival templates)."""
    dims = scenario.capacity_dims
    unserved = float(scenario.costs.unserved_cents)
    cols: dict[str, list[object]] = {name: [] for name in OrderData.__dataclass_fields__}
    for i, order in enumerate(orders):
        windows = tuple((float(w.start_s), float(w.end_s)) for w in order.time_windows)
        cols["ids"].append(order.id)
        cols["location"].append(loc_of[order.location])
        cols["windows"].append(windows)
        cols["tw_start"].append(windows[0][0] if windows else 0.0)
        cols["tw_end"].append(windows[-1][1] if windows else INF)
        cols["service_s"].append(float(order.service_s))
        cols["demand"].append(tuple(float(x) for x in order.demand_vector(dims)))
        cols["created_s"].append(float(order.created_s))
        cols["penalty_cents"].append(
            float(order.penalty_cents) if order.penalty_cents is not None else unserved
        )
        cols["lines"].append(tuple((sku_pos[ln.sku], ln.quantity) for ln in order.lines))
        if order.pickup is not None:
            pw = order.pickup.time_windows
            cols["pickup_location"].append(loc_of[order.pickup.location])
            cols["pickup_tw_start"].append(float(pw[0].start_s) if pw else 0.0)
            cols["pickup_service_s"].append(float(order.pickup.service_s))
        else:
            cols["pickup_location"].append(-1)
            cols["pickup_tw_start"].append(0.0)
            cols["pickup_service_s"].append(0.0)
        cols["skills"].append(frozenset(order.required_skills))
        cols["template"].append(i)
    return OrderData(**cols)  # type: ignore[arg-type]
