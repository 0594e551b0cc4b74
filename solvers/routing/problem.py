"""The routing problem in index form: tasks, vehicles and integer matrices every engine reads.

A :class:`RoutingProblem` is built once from a :class:`~scenarios.model.Scenario` and shared
by the engines (greedy, PyVRP, OR-Tools) and the schedule builder. It is immutable.

Indices
-------
- *nodes* are rows/columns of the matrices: first the distinct vehicle start/end locations
  (the depots), then one node per distinct task place, in order of first use. Tasks at the same
  location share a node when their orders need the same skills (a city's pickups at a store
  share one), so the matrices grow with the number of places, not of tasks. An engine that
  needs one node per visit (OR-Tools) expands them itself. A restricted problem
  (:meth:`RoutingProblem.restrict`) keeps its parent's nodes and matrices (no copy), so some
  nodes may have no task.
- *tasks* are visits: an order without pickup has one task (its delivery); an order with a
  pickup has two, pickup then delivery.

Release times
-------------
An order exists from its ``created_s``. An order without a pickup of its own is loaded at
its vehicle's start: its delivery task carries :attr:`Task.release` = ``created_s``, and a
route leaves its start no earlier than the largest release of the deliveries it carries
(:func:`route_release`; the routes have one trip each, no reloads); a driver break whose
window opens before that release may be taken at the start while the route waits for it
(:func:`pre_departure_breaks`). An order with a pickup
has its pickup windows cut to start at ``created_s`` (:func:`released_windows`), so every
engine sees that in the windows. ``created_s`` = 0 (the default) changes nothing.

Objective units
---------------
Every engine minimises the same integer objective, in milli-cents: a vehicle's fixed cost,
``cost_per_km_cents`` per metre (= milli-cents per metre), ``cost_per_hour_cents`` per second
(rounded) and the penalty of each optional order left out. Mandatory orders the fleet cannot
all take are left out lowest priority first (:attr:`OrderInfo.drop_weight`). A fleet that
prices neither distance nor time is priced at 1 milli-cent per metre, so the engines minimise
distance.

Integer range
-------------
The engines hold these costs in 64-bit integers (OR-Tools' arc, span and fixed costs and
disjunction penalties; PyVRP's ``Cost``, an ``int64_t``; numpy's int64 matrices of arc costs),
and neither checks for overflow: a product or a sum past 2**63 wraps into a wrong (often
negative) cost. :func:`check_int_range` bounds, before any engine runs, the largest objective
any plan of the problem can have and refuses the problem (an InputError naming the price
that takes it there) when that bound passes :data:`ENGINE_INT_LIMIT`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from scenarios.errors import InputError, ScenarioInputError
from scenarios.geo import Location
from scenarios.model import Break, Order, Scenario, Vehicle
from scenarios.plan import StopKind
from scenarios.travel import RoadNetworkTravel, check_matrix_deadline

MILLI = 1000
#: Capacity used for a dimension a vehicle does not limit.
UNLIMITED = 2**40
#: Largest objective (milli-cents) a problem's plans may reach: half of int64, so that the
#: engines' own additions on top of it (PyVRP's penalties, a disruption cost) stay in range.
ENGINE_INT_LIMIT = 2**62
#: Matrix entries of a block of rows :attr:`RoutingProblem.longest_arcs` takes between two looks
#: at the travel matrix's deadline (16 MB of int64)
ARC_BLOCK = 1 << 21


@dataclass(frozen=True)
class Task:
    """One visit: the pickup or the delivery of an order."""

    order: int
    kind: StopKind
    node: int
    windows: tuple[tuple[int, int], ...]
    service_s: int
    load_change: tuple[int, ...]
    task_id: str
    #: a delivery loaded at the start: its route leaves the start no earlier (the order's
    #: ``created_s``; 0 for pickups, whose windows start at it instead, and for their deliveries)
    release: int = 0

    @property
    def earliest(self) -> int:
        """Opening of the first window (0 without windows)."""
        return self.windows[0][0] if self.windows else 0

    @property
    def latest(self) -> int:
        """Closing of the last window (a huge number without windows)."""
        return self.windows[-1][1] if self.windows else UNLIMITED


@dataclass(frozen=True)
class OrderInfo:
    """An order as the engines see it."""

    order: Order
    tasks: tuple[int, ...]
    demand: tuple[int, ...]
    skills: frozenset[str]
    penalty: int | None
    from_depot: bool
    #: a mandatory order's place among the distinct priorities of the problem's mandatory
    #: orders (0 = the lowest; 0 for optional orders, which have their own penalty)
    priority_rank: int = 0

    @property
    def drop_weight(self) -> int:
        """How many times the engines' price for leaving out a mandatory order this one's
        costs: 1 + its priority rank, so higher-priority orders are left out last."""
        return 1 + self.priority_rank

    @property
    def delivery(self) -> int:
        """Task index of the delivery."""
        return self.tasks[-1]

    @property
    def pickup(self) -> int | None:
        """Task index of the pickup, if the order has one."""
        return self.tasks[0] if len(self.tasks) == 2 else None


def break_order(breaks: Sequence[Break]) -> list[int]:
    """The indices of a vehicle's ``breaks`` by window start (the order of
    :attr:`VehicleInfo.breaks`; equal starts keep the vehicle's order)."""
    return sorted(range(len(breaks)), key=lambda k: breaks[k].window.start_s)


@dataclass(frozen=True)
class VehicleInfo:
    """A vehicle as the engines see it; costs in objective units (milli-cents)."""

    vehicle: Vehicle
    start_node: int
    end_node: int
    shift: tuple[int, int]
    capacity: tuple[int, ...]
    skills: frozenset[str]
    fixed_cost: int
    unit_distance_cost: int
    unit_duration_cost: int
    max_duration_s: int | None
    max_distance_m: int | None
    #: (window start, window end, duration) of each break, by window start (:func:`break_order`)
    breaks: tuple[tuple[int, int, int], ...]
    #: latest departure from the start (the vehicle's ``latest_start_s``; None: the shift end)
    latest_start: int | None = None

    @property
    def start_late(self) -> int:
        """Latest departure from the start: the latest start, else the shift end."""
        return self.shift[1] if self.latest_start is None else min(self.latest_start, self.shift[1])

    @property
    def type_key(self) -> tuple[object, ...]:
        """Everything but the id: vehicles with equal keys are interchangeable."""
        return (
            self.start_node,
            self.end_node,
            self.shift,
            self.capacity,
            tuple(sorted(self.skills)),
            self.fixed_cost,
            self.unit_distance_cost,
            self.unit_duration_cost,
            self.max_duration_s,
            self.max_distance_m,
            self.breaks,
            self.latest_start,
        )

    def can_serve(self, info: OrderInfo) -> bool:
        """True when the vehicle has every skill the order needs."""
        return info.skills <= self.skills


@dataclass(frozen=True)
class RoutingProblem:
    """Orders, tasks, vehicles and integer matrices in index form (see the module docstring)."""

    scenario: Scenario
    order_ids: tuple[str, ...]
    orders: tuple[OrderInfo, ...]
    tasks: tuple[Task, ...]
    vehicles: tuple[VehicleInfo, ...]
    num_depot_nodes: int
    duration: NDArray[np.int64]
    distance: NDArray[np.int64]
    node_locations: tuple[Location, ...]
    dims: int
    node_keys: tuple[tuple[Location, frozenset[str]], ...] = ()
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def node_index(self) -> dict[tuple[Location, frozenset[str]], int]:
        """Task node of each (location, skills needed) place."""
        return {key: self.num_depot_nodes + i for i, key in enumerate(self.node_keys)}

    @property
    def num_nodes(self) -> int:
        """Rows of the matrices."""
        return int(self.duration.shape[0])

    def order_index(self, order_id: str) -> int | None:
        """Position of an order id in :attr:`orders` (None if not in this problem)."""
        if not self._index:
            self._index.update({oid: i for i, oid in enumerate(self.order_ids)})
        return self._index.get(order_id)

    @property
    def has_multiple_windows(self) -> bool:
        """Some task has more than one time window."""
        return any(len(t.windows) > 1 for t in self.tasks)

    @property
    def has_breaks(self) -> bool:
        """Some vehicle has breaks."""
        return any(v.breaks for v in self.vehicles)

    @property
    def has_skills(self) -> bool:
        """Some order needs a skill."""
        return any(o.skills for o in self.orders)

    @property
    def has_priorities(self) -> bool:
        """Mandatory orders differ in priority."""
        return any(o.priority_rank for o in self.orders)

    @property
    def has_releases(self) -> bool:
        """Some delivery loaded at the start has a release time (``created_s`` > 0)."""
        return any(t.release for t in self.tasks)

    @cached_property
    def earliest_release_s(self) -> tuple[int, ...]:
        """Per vehicle, the earliest release of any task it may serve (0 when none)."""
        release = self.arrays.release
        by_skills: dict[frozenset[str], int] = {}
        for veh in self.vehicles:
            if veh.skills not in by_skills:
                by_skills[veh.skills] = min(
                    (
                        int(release[t])
                        for t, task in enumerate(self.tasks)
                        if veh.can_serve(self.orders[task.order])
                    ),
                    default=0,
                )
        return tuple(by_skills[veh.skills] for veh in self.vehicles)

    @property
    def has_pickups(self) -> bool:
        """Some order is a pickup-and-delivery pair."""
        return any(not o.from_depot for o in self.orders)

    def restrict(self, keep: Sequence[int]) -> RoutingProblem:
        """The same problem with only the orders at positions ``keep``."""
        return _build(self.scenario, [self.orders[i].order for i in keep], self)

    @cached_property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """Orders served all or nothing, their penalty charged once: the courier jobs of one
        order shipped from several nodes (positions in :attr:`orders`, see
        :func:`~solvers.routing.from_allocation.split_order_groups`)."""
        from solvers.routing.from_allocation import split_order_groups

        found = split_order_groups([info.order for info in self.orders])
        return tuple(tuple(group) for group in found)

    @cached_property
    def group_of(self) -> dict[int, int]:
        """The place in :attr:`groups` of each order in one."""
        return {o: g for g, group in enumerate(self.groups) for o in group}

    @cached_property
    def longest_arcs(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per node, the longest distance (m) and the longest travel time (s) out of it."""
        # a block of rows at a time, a look at the travel matrix's deadline between blocks
        # (:func:`~scenarios.travel.matrix_deadline`, where the problem is built): a pass over
        # each 10,000-place matrix took 0.1-0.15 s after the matrix's last look (session 75)
        n = len(self.distance)
        longest_d = np.zeros(n, dtype=np.float64)
        longest_t = np.zeros(n, dtype=np.float64)
        step = max(1, ARC_BLOCK // max(1, self.distance.shape[1] if n else 1))
        for start in range(0, n, step):
            check_matrix_deadline()
            rows = slice(start, start + step)
            longest_d[rows] = self.distance[rows].max(axis=1, initial=0)
            longest_t[rows] = self.duration[rows].max(axis=1, initial=0)
        return longest_d, longest_t

    @cached_property
    def arrays(self) -> TaskArrays:
        """Per-task numpy arrays (nodes, window bounds, service, load change)."""
        return TaskArrays.of(self)


@dataclass(frozen=True)
class TaskArrays:
    """Task data as numpy arrays, for vectorised code (greedy insertion, diagnosis).

    ``early``/``late`` are the opening of the first and the closing of the last window
    (exact for single-window tasks, a relaxation otherwise; +-UNLIMITED without windows).
    """

    node: NDArray[np.int64]
    early: NDArray[np.int64]
    late: NDArray[np.int64]
    service: NDArray[np.int64]
    load_change: NDArray[np.int64]
    release: NDArray[np.int64]

    @staticmethod
    def of(problem: RoutingProblem) -> TaskArrays:
        """Arrays of ``problem``'s tasks."""
        ts = problem.tasks
        return TaskArrays(
            node=np.array([t.node for t in ts], dtype=np.int64),
            early=np.array([t.windows[0][0] if t.windows else -UNLIMITED for t in ts], np.int64),
            late=np.array([t.windows[-1][1] if t.windows else UNLIMITED for t in ts], np.int64),
            service=np.array([t.service_s for t in ts], dtype=np.int64),
            load_change=np.array([t.load_change for t in ts], dtype=np.int64).reshape(
                len(ts), problem.dims
            ),
            release=np.array([t.release for t in ts], dtype=np.int64).reshape(len(ts)),
        )


def route_release(problem: RoutingProblem, seq: Sequence[int]) -> int:
    """The earliest a route visiting ``seq`` (task indices) may leave its start: the largest
    release of the deliveries it loads there (0 without any)."""
    release = problem.arrays.release
    return max((int(release[t]) for t in seq), default=0)


def pre_departure_breaks(
    vehicle: VehicleInfo, release: int, order: Sequence[int]
) -> list[tuple[int, int]] | None:
    """(break index, start) of the breaks ``order`` (indices in :attr:`VehicleInfo.breaks`)
    taken one after another at the start before departure, each as early as its window and the
    shift allow; None when one of them cannot start while the route waits there for its
    ``release`` (:func:`route_release`), inside its window."""
    clock = vehicle.shift[0]
    out: list[tuple[int, int]] = []
    for k in order:
        lo, hi, length = vehicle.breaks[k]
        start = max(clock, lo)
        if start >= release or start > hi:
            return None
        out.append((k, start))
        clock = start + length
    return out


def released_windows(
    windows: tuple[tuple[int, int], ...], created_s: int, far_s: int
) -> tuple[tuple[int, int], ...]:
    """A pickup's ``windows`` cut to start no earlier than ``created_s`` (the order does not
    exist before); no windows = ``(created_s, far_s)``. Every window closed before
    ``created_s``: the single empty window ``(created_s, created_s - 1)``, which nothing meets
    (the diagnosis leaves such an order out as ``released_too_late``)."""
    if created_s <= 0:
        return windows
    if not windows:
        return ((created_s, max(created_s, far_s)),)
    cut = tuple((max(lo, created_s), hi) for lo, hi in windows if hi >= created_s)
    return cut or ((created_s, created_s - 1),)


def build_problem(scenario: Scenario) -> RoutingProblem:
    """Compile a scenario's orders and fleet into a :class:`RoutingProblem` (range-checked)."""
    problem = _build(scenario, list(scenario.orders), None)
    check_int_range(problem)
    return problem


def left_out(problem: RoutingProblem, served: Collection[int]) -> tuple[int, int]:
    """What the orders not in ``served`` cost a plan: (the mandatory ones, each weighted by
    its priority's :attr:`~OrderInfo.drop_weight`; the penalties of the optional ones,
    milli-cents). A group of :attr:`RoutingProblem.groups` not served in full counts once."""
    missing = penalties = 0
    charged: set[int] = set()
    for o, info in enumerate(problem.orders):
        g = problem.group_of.get(o)
        if g is None:
            if o in served:
                continue
        else:  # an order split over nodes is served whole or not at all: charged once
            if g in charged or all(m in served for m in problem.groups[g]):
                continue
            charged.add(g)
        if info.penalty is None:
            missing += info.drop_weight
        else:
            penalties += info.penalty
    return missing, penalties


def objective_bound(
    problem: RoutingProblem, disruption_cost: int = 0, disrupted: int = 0
) -> dict[str, float]:
    """An upper bound of any plan's objective (milli-cents), split by the scenario field that
    prices each part (``vehicles.0.cost_per_km_cents``; ``travel`` for the distance of a fleet
    priced by neither distance nor time, which is then the objective).

    In re-optimisation, moving each of the ``disrupted`` visits of the initial plan to another
    vehicle costs ``disruption_cost`` (milli-cents; the params' ``disruption_cost_cents``):
    each is charged at most once per plan.

    Every arc of a route leaves its vehicle's start or one visit, and each visit is in at most
    one route: so the distance of all routes together is at most what leaves the starts plus
    the longest arc out of each visit, and the same for travel time (plus service; a route's
    duration also counts waiting, at most its shift). Computed in floats: the parts may be
    past int64, which is what is checked.
    """
    parts: dict[str, float] = {}

    def add(field: str, amount: float) -> None:
        if amount > 0:
            parts[field] = parts.get(field, 0.0) + amount

    priced = any(v.vehicle.cost_per_km_cents for v in problem.vehicles)
    longest_d, longest_t = problem.longest_arcs

    def km_field(vi: int) -> str:
        return f"vehicles.{vi}.cost_per_km_cents" if priced else "travel"

    for vi, v in enumerate(problem.vehicles):
        add(f"vehicles.{vi}.fixed_cost_cents", float(v.fixed_cost))
        add(km_field(vi), float(longest_d[v.start_node]) * v.unit_distance_cost)
        shift_s = float(v.shift[1] - v.shift[0]) + float(longest_t[v.start_node])
        add(f"vehicles.{vi}.cost_per_hour_cents", shift_s * v.unit_duration_cost)
    if problem.tasks and problem.vehicles:
        nodes = problem.arrays.node
        visits_m = float(longest_d[nodes].sum())
        visits_s = float(longest_t[nodes].sum()) + float(problem.arrays.service.sum())
        dearest_km = max(range(len(problem.vehicles)), key=lambda i: _km_price(problem, i))
        dearest_h = max(range(len(problem.vehicles)), key=lambda i: _hour_price(problem, i))
        add(km_field(dearest_km), visits_m * _km_price(problem, dearest_km))
        add(
            f"vehicles.{dearest_h}.cost_per_hour_cents",
            visits_s * _hour_price(problem, dearest_h),
        )
    # named by the order's place in the scenario (a restricted problem holds fewer orders)
    place = {order.id: i for i, order in enumerate(problem.scenario.orders)}
    for info in problem.orders:
        if info.penalty is not None:
            add(f"orders.{place[info.order.id]}.penalty_cents", float(info.penalty))
    add(DISRUPTION_FIELD, float(disruption_cost) * disrupted)
    return parts


def _places(scenario: Scenario) -> list[Location]:
    """Every place a routing of ``scenario`` may visit: its orders' (and pickups'), its
    vehicles' starts and ends, its nodes' (a plan's jobs are picked up there)."""
    return [
        *(o.location for o in scenario.orders),
        *(o.pickup.location for o in scenario.orders if o.pickup is not None),
        *(v.start_location for v in scenario.vehicles),
        *(v.end for v in scenario.vehicles),
        *(n.location for n in scenario.nodes),
    ]


def _road_longest(travel: RoadNetworkTravel, places: Sequence[Location]) -> tuple[float, float]:
    """Bounds of the longest arc (m) and travel time (s) a road network's matrix can hold
    between ``places``, without a shortest path: no fastest path between two nodes takes
    longer than the graph's :attr:`~scenarios.roads.RoadGraph.max_path_s` (through its probe
    node), plus a second per edge for the rounding of each edge's ticks (a path has fewer
    edges than the graph has nodes, and a tick is at most 0.1 s), nor is it longer than that
    time at the graph's fastest speed (plus a metre per edge of rounding); each end adds its
    access leg to its snapped node (at the access speed), and two places on one node are
    joined by a straight line no longer than their two access legs."""
    graph = travel.road_graph()
    _, access = graph.snap_xy(graph.project(list(places)))
    legs = 2.0 * float(access.max(initial=0.0))
    edges = float(graph.num_nodes)
    path_s = graph.max_path_s + 2.0 * edges
    longest_m = graph.max_speed_m_per_s * path_s + edges + legs + 1.0
    longest_s = path_s + legs / graph.access_speed_m_per_s + 1.0
    return longest_m, longest_s


def quick_objective_bound(scenario: Scenario, *, shipments: int | None = None) -> float:
    """An upper bound of :func:`objective_bound` (milli-cents) read from the scenario alone,
    without its travel matrix: every arc taken as long as the longest any can be (the
    diagonal of the box around its places, times ``metres_per_unit``, for euclidean travel;
    half the Earth's circumference times the detour factor for haversine; the largest entry
    of an explicit matrix; for a road network, the longest a fastest path of its graph can
    be, with its access legs, :func:`_road_longest`, which loads the graph but finds no
    path), its travel time at the model's speed and slowest profile period.

    ``shipments``: for a plan, the courier jobs each order without a pickup of its own may
    become (its allocation ships an order from up to as many nodes as the scenario has, each
    job a pickup at the node and a delivery, with the order's service and penalty); None
    for the orders routed as they are.

    A service checks the range with it before it queues a routing (a 202 whose job then
    failed on :func:`check_int_range`), building the problem (the exact check) only when this
    bound passes :data:`ENGINE_INT_LIMIT`.
    """
    from scenarios.travel import EuclideanTravel, HaversineTravel, MatrixTravel

    travel = scenario.travel
    slowest = max([1.0, *(p.duration_factor for p in travel.profile)])
    if isinstance(travel, MatrixTravel):
        dur, dist = travel.arrays()
        longest_m = float(dist.max(initial=0))
        longest_s = float(dur.max(initial=0)) * slowest + 1.0
    elif isinstance(travel, EuclideanTravel):
        places = _places(scenario)
        xs = [p.x or 0.0 for p in places] or [0.0]
        ys = [p.y or 0.0 for p in places] or [0.0]
        span = float(np.hypot(max(xs) - min(xs), max(ys) - min(ys)))
        longest_m = span * travel.metres_per_unit + 1.0
        longest_s = (longest_m / travel.speed_m_per_s + 1.0) * slowest + 1.0
    elif isinstance(travel, HaversineTravel):
        longest_m = np.pi * 6_371_000.0 * travel.detour_factor * 1.001 + 1.0
        longest_s = (longest_m / travel.speed_m_per_s + 1.0) * slowest + 1.0
    else:
        longest_m, road_s = _road_longest(travel, _places(scenario))
        longest_s = road_s * slowest + 1.0
    priced = any(v.cost_per_km_cents or v.cost_per_hour_cents for v in scenario.vehicles)
    horizon = scenario.horizon

    def km(v: Vehicle) -> float:
        return float(v.cost_per_km_cents if priced else 1)

    def per_s(v: Vehicle) -> float:
        return v.cost_per_hour_cents * MILLI / 3600 + 1.0

    def jobs(o: Order) -> int:
        return 1 if o.pickup is not None or shipments is None else max(1, shipments)

    total = 0.0
    for v in scenario.vehicles:
        shift = v.shift if v.shift is not None else horizon
        total += v.fixed_cost_cents * MILLI + longest_m * km(v)
        total += (shift.end_s - shift.start_s + longest_s) * per_s(v)
    if scenario.vehicles:
        picked = [o.pickup is not None or shipments is not None for o in scenario.orders]
        visits = sum(jobs(o) * (1 + p) for o, p in zip(scenario.orders, picked, strict=True))
        service = sum(
            jobs(o) * o.service_s + (o.pickup.service_s if o.pickup else 0) for o in scenario.orders
        )
        total += visits * longest_m * max(km(v) for v in scenario.vehicles)
        total += (visits * longest_s + service) * max(per_s(v) for v in scenario.vehicles)
    total += sum(jobs(o) * (o.penalty_cents or 0) * MILLI for o in scenario.orders)
    return total * 1.001


def _km_price(problem: RoutingProblem, vi: int) -> int:
    return problem.vehicles[vi].unit_distance_cost


def _hour_price(problem: RoutingProblem, vi: int) -> int:
    return problem.vehicles[vi].unit_duration_cost


#: The routing params' field of the disruption cost (a part of :func:`objective_bound`).
DISRUPTION_FIELD = "disruption_cost_cents"


def check_int_range(problem: RoutingProblem, disruption_cost: int = 0, disrupted: int = 0) -> None:
    """ScenarioInputError naming the price whose share is largest when some plan's objective
    could pass :data:`ENGINE_INT_LIMIT` (the engines' int64 costs would wrap around); an
    InputError naming ``disruption_cost_cents`` (a params field) when that share is the
    disruption cost's (see :func:`objective_bound`)."""
    parts = objective_bound(problem, disruption_cost, disrupted)
    total = sum(parts.values())
    if total <= ENGINE_INT_LIMIT:
        return
    field = max(parts, key=lambda name: parts[name])
    if total - parts.get(DISRUPTION_FIELD, 0.0) <= ENGINE_INT_LIMIT:
        field = DISRUPTION_FIELD  # the scenario alone is in range: the disruption cost is not
    what = {
        "fixed_cost_cents": "fixed costs",
        "cost_per_km_cents": "distance prices",
        "cost_per_hour_cents": "time prices",
        "penalty_cents": "penalties of optional orders",
        DISRUPTION_FIELD: f"the disruption cost of moving {disrupted} visits of the initial plan",
    }.get(field.rsplit(".", 1)[-1], "distances")
    if field.startswith("orders."):
        order_id = problem.scenario.orders[int(field.split(".")[1])].id
        what = f"penalties of optional orders (the largest: order {order_id!r})"
    error = ScenarioInputError if field != DISRUPTION_FIELD else InputError
    raise error(
        field,
        f"a plan of this scenario can cost up to {total:.3g} milli-cents, mostly {what} "
        f"({parts[field]:.3g}), more than the {ENGINE_INT_LIMIT} (2**62) the routing engines "
        "count in 64-bit integers without overflow: lower the price, or the distances",
    )


def _build(
    scenario: Scenario, orders: Sequence[Order], parent: RoutingProblem | None
) -> RoutingProblem:
    dims = len(scenario.capacity_dims)
    depot_locs: list[Location] = []
    depot_at: dict[Location, int] = {}

    def depot(loc: Location) -> int:
        if loc not in depot_at:
            depot_at[loc] = len(depot_locs)
            depot_locs.append(loc)
        return depot_at[loc]

    horizon = (scenario.horizon.start_s, scenario.horizon.end_s)
    priced = any(v.cost_per_km_cents or v.cost_per_hour_cents for v in scenario.vehicles)
    vehicle_stubs = []
    for v in scenario.vehicles:
        shift = (v.shift.start_s, v.shift.end_s) if v.shift is not None else horizon
        vehicle_stubs.append((v, depot(v.start_location), depot(v.end), shift))
    num_depots = len(depot_locs)

    task_locs: list[Location] = []
    node_keys: list[tuple[Location, frozenset[str]]] = []
    node_at: dict[tuple[Location, frozenset[str]], int] = {}

    # a restriction keeps the parent's places and matrices (the depots are the same)
    reuse = parent if parent is not None and parent.num_depot_nodes == num_depots else None

    def place(loc: Location, skills: frozenset[str]) -> int:
        key = (loc, skills)
        if reuse is not None:
            return reuse.node_index[key]
        got = node_at.get(key)
        if got is None:
            got = node_at[key] = num_depots + len(task_locs)
            task_locs.append(loc)
            node_keys.append(key)
        return got

    tasks: list[Task] = []
    infos: list[OrderInfo] = []
    # the latest any vehicle works: the end of a pickup window a release time opens
    far = max([scenario.horizon.end_s, *(shift[1] for *_, shift in vehicle_stubs)])
    levels = sorted({o.priority for o in orders if o.penalty_cents is None})
    rank_of = {level: k for k, level in enumerate(levels)}
    for oi, order in enumerate(orders):
        demand = tuple(order.demand_vector(scenario.capacity_dims))
        skills = frozenset(order.required_skills)
        own: list[int] = []
        if order.pickup is not None:
            own.append(len(tasks))
            tasks.append(
                Task(
                    order=oi,
                    kind=StopKind.PICKUP,
                    node=place(order.pickup.location, skills),
                    windows=released_windows(
                        tuple((w.start_s, w.end_s) for w in order.pickup.time_windows),
                        order.created_s,
                        far,
                    ),
                    service_s=order.pickup.service_s,
                    load_change=demand,
                    task_id=order.pickup_id,
                )
            )
        own.append(len(tasks))
        tasks.append(
            Task(
                order=oi,
                kind=StopKind.DELIVERY,
                node=place(order.location, skills),
                windows=tuple((w.start_s, w.end_s) for w in order.time_windows),
                service_s=order.service_s,
                load_change=tuple(-d for d in demand),
                task_id=order.id,
                release=order.created_s if order.pickup is None else 0,
            )
        )
        infos.append(
            OrderInfo(
                order=order,
                tasks=tuple(own),
                demand=demand,
                skills=skills,
                penalty=None if order.penalty_cents is None else order.penalty_cents * MILLI,
                from_depot=order.pickup is None,
                priority_rank=rank_of[order.priority] if order.penalty_cents is None else 0,
            )
        )

    vehicles = tuple(
        VehicleInfo(
            vehicle=v,
            start_node=s,
            end_node=e,
            shift=shift,
            capacity=tuple(v.capacity) if v.capacity else (UNLIMITED,) * dims,
            skills=frozenset(v.skills),
            fixed_cost=v.fixed_cost_cents * MILLI,
            unit_distance_cost=v.cost_per_km_cents if priced else 1,
            unit_duration_cost=round(v.cost_per_hour_cents * MILLI / 3600),
            max_duration_s=v.max_duration_s,
            max_distance_m=v.max_distance_m,
            latest_start=v.latest_start_s,
            breaks=tuple(
                (v.breaks[k].window.start_s, v.breaks[k].window.end_s, v.breaks[k].duration_s)
                for k in break_order(v.breaks)
            ),
        )
        for v, s, e, shift in vehicle_stubs
    )

    node_locs = tuple(depot_locs + task_locs)
    if reuse is not None:
        node_locs, node_keys = reuse.node_locations, list(reuse.node_keys)
        duration, distance = reuse.duration, reuse.distance
    else:
        m = scenario.travel.matrix(list(node_locs))
        duration = np.ascontiguousarray(m.duration_s, dtype=np.int64)
        distance = np.ascontiguousarray(m.distance_m, dtype=np.int64)
    problem = RoutingProblem(
        scenario=scenario,
        order_ids=tuple(o.id for o in orders),
        orders=tuple(infos),
        tasks=tuple(tasks),
        vehicles=vehicles,
        num_depot_nodes=num_depots,
        duration=duration,
        distance=distance,
        node_locations=node_locs,
        dims=dims,
        node_keys=tuple(node_keys),
    )
    if reuse is not None and "longest_arcs" in reuse.__dict__:
        problem.__dict__["longest_arcs"] = reuse.longest_arcs  # the same matrices
    return problem
