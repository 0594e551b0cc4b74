"""The SimPy digital twin: nodes pick and pack, couriers travel and serve, policies decide.

:class:`DispatchSimulator` is a stepping API with inversion of control::

    sim = DispatchSimulator(scenario, plan=plan)
    sim.reset(seed=7)
    while (state := sim.next_decision()) is not None:
        sim.apply(policy.decide(state))
    result = sim.result()

``next_decision`` runs the SimPy environment until the next decision point (an order without
a plan arrives, a courier runs out of stops, a periodic tick) and returns a plain-data
:class:`~simulation.decisions.DecisionState`; ``apply`` takes actions
(:class:`~simulation.decisions.Assign`, :class:`~simulation.decisions.Postpone`,
:class:`~simulation.decisions.ReplaceRoutes`). No SimPy object leaves this module.

Model (one operating day, or any horizon):

- orders are released at ``created_s`` (plus the day's Poisson arrivals); each is allocated to
  nodes (the plan's allocation, else the nearest node with stock) and becomes one *parcel* per
  node; parcels queue for pickers (a ``simpy.Resource`` per node), then packing stations;
  stock short at pick (inventory or a random discrepancy) is re-sourced from the nearest
  other node with stock (transfer time added), or the line is unfilled;
- couriers drive their routes: travel = free-flow time x time-of-day profile x weather x
  slowdowns x a lognormal multiplier; they wait for windows, parcels and node outages; service
  times are noisy; breakdowns stop them for ``breakdown_duration_s``; deliveries fail with
  ``failed_delivery_prob``; a delivery stop hands over every parcel of the order on board,
  and one with none on board is passed through (no wait, no service);
- scenarios without nodes get one virtual depot per distinct vehicle start (parcels ready at
  release), so a plan's delivery-only routes are loaded at the start; without vehicles either,
  orders are unserved at release.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import deque
from collections.abc import Callable, Container, Generator, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import simpy
from numpy.typing import NDArray

from scenarios.errors import InputError
from scenarios.geo import Location, earliest_service_start
from scenarios.model import Break, Scenario
from scenarios.plan import Plan, PlannedStop, StopKind, bad_break_index, shipment_order
from simulation.decisions import (
    Action,
    ApplyResult,
    Assign,
    DecisionKind,
    DecisionState,
    OrderStatus,
    Postpone,
    Quote,
    ReplaceRoutes,
    Stop,
    StopType,
    no_candidates,
)
from simulation.insertion import (
    CostRates,
    JobSpec,
    RouteCache,
    Rows,
    build_route_cache,
    matrix_rows,
    quote_insertion,
    route_cost_cents,
)
from simulation.params import SimParams
from simulation.result import SimulationResult
from simulation.streams import draw_day_arrivals, draw_noise
from simulation.world import (
    INF,
    NO_ARRIVAL_TEMPLATES,
    OrderData,
    TravelFactors,
    World,
    compile_world,
)
from solvers.cancel import CHECK_EVERY_STEPS, SolveCancelled, cancelled
from solvers.validate import match_breaks

# Quotes of couriers that cannot take an order (a quote is frozen: one object serves all).
OFF_SHIFT = Quote(False, INF, reason="courier is off shift")
NO_ROUTE = Quote(False, INF, reason="no route")  # (a start value, never returned)
NO_SKILL = Quote(False, INF, reason="courier lacks a required skill")

PICKUP = int(StopType.PICKUP)
DELIVERY = int(StopType.DELIVERY)
BREAK = int(StopType.BREAK)

S_UNKNOWN = int(OrderStatus.UNKNOWN)
S_PENDING = int(OrderStatus.PENDING)
S_ASSIGNED = int(OrderStatus.ASSIGNED)
S_CARRIED = int(OrderStatus.CARRIED)
S_DELIVERED = int(OrderStatus.DELIVERED)
S_FAILED = int(OrderStatus.FAILED)
S_UNFILLED = int(OrderStatus.UNFILLED)
S_UNSERVED = int(OrderStatus.UNSERVED)

#: The version of how the twin plays a day (beyond what a seed draws, DRAWS_VERSION, and how
#: KPIs are computed, KPI_VERSION). BUMP IT WITH EVERY CHANGE THAT PLAYS SOME SEEDED DAY
#: DIFFERENTLY (other decisions, times, costs): it enters the keys of caches of simulated
#: days (``rl_agents.evaluate``'s hindsight days) through :func:`twin_version`, which gives
#: the version a scenario's days are played under. A change that can only alter some days
#: (those whose vehicles have breaks, say) says so there, so the others keep their cached
#: rows; one that can alter any day: :func:`twin_version` returns it for every scenario.
#: 1: until session 55
#: 2: session 55: every courier takes its vehicle's breaks whatever the policy, and a courier
#:    that has not left prices the breaks it takes where it stands; session 56: a plan's break
#:    stop taken outside its window is its vehicle's break (days with breaks only)
#: 3: session 56: a courier on its way to a node pickup re-estimates its departure when the
#:    parcel is ready (any day: its quotes, so a policy's decisions, may change)
#: 4: session 57: a courier that never left and holds only breaks is quoted an order put
#:    after its first breaks from its departure after them, as the twin charges it, not with
#:    the standing and the breaks (days with breaks only)
#: 5: session 60: a plan's break stop naming its break (``break_index``, which the routing
#:    engines and ``to_plan`` set) takes that break, not the one its window matches; the
#:    re-optimisation policy's re-plans name theirs (days with breaks only)
#: 6: session 71: a courier yet to leave whose route opens with breaks has its route planned
#:    (planned and projected cost) and its quotes priced from its departure after them, at
#:    the travel factor then, and a quote prices each place from the departure it makes
#:    (days with breaks only; alters days whose travel factor changes over such a wait)
#: 7: session 71: ``ReplaceRoutes``' time checks time such a courier's route from its
#:    departure after those breaks, at the travel factor then, as quotes and plans do (days
#:    with breaks only; alters re-plans of days whose factor changes over such a wait)
#: 8: session 72: ``Assign(resequence=True)`` relocates an order exactly when that lowers the
#:    route's planned cost (it added the quote to the cache's route costs: another basis for
#:    a courier standing before its breaks, and a quote is only an upper bound on a route
#:    with late stops; any day: a policy's decisions may change)
#: 9: session 73: ``nearest_couriers`` and ``DecisionState.candidates`` (so ``insertion:K``,
#:    the RL slots) offer only couriers able to serve the order, with every skill it requires
#:    (days with an order needing a skill some courier lacks); an unused courier is quoted its
#:    whole route, its way home included, as its planned cost counts it (days with a vehicle
#:    ending elsewhere than it starts)
#: 10: session 76: a parcel that would be ready only after its node closes for good (its pick
#:    or packing, or a line re-sourced to it, ending after the closing) is lost at the
#:    closing, as one whose pick would start after it: its order is unserved then and nobody
#:    waits for it (it came out ready after the closing, and its order, never collectable,
#:    kept the day open until the horizon's end); so is a parcel ready before the closing
#:    that nobody collected by then (a courier can no longer collect it at the closed node;
#:    its order, waiting, kept the day open until the horizon's end too), unless a courier is
#:    at the node for it already. Days with a node that closes for good (any node with
#:    opening hours: its last window's end), whatever the horizon
#: 11: session 77: the day closes as soon as nothing more can happen when an order is lost
#:    (a parcel lost at its node's closing for good) or unfilled at pick, as when an order is
#:    delivered (until then only the next decision, tick or free courier closed it: under a
#:    policy without ticks, such as ``nearest``, couriers waited, paid, until their shifts'
#:    end once the day's last order was lost). Days on which an order may be lost or
#:    unfilled at pick: a node that closes for good (version 10's days), a stock
#:    discrepancy, or stock modelled (a line a plan's allocation leaves short is unfilled
#:    at pick when no other node has it); and a node outage lasting to the horizon's end
#:    closes its node for good (it reopened in the day's overtime and picked there, keeping
#:    the day open): days with such an outage
#: 12: session 80: quotes (``quote``, ``quote_on``, the insertion and RL slot policies') price
#:    the way home at the travel factor when the courier leaves its last stop, as the twin
#:    charges it (they priced it at the factor of the route's start or of the quote's
#:    departure), and where a detour quicker than the leg it replaces may make the courier
#:    leave earlier, at the highest factor it may leave at, so that no quote is below the
#:    charge nor says feasible when the courier would get home after its shift end; route
#:    caches (planned costs, ``ReplaceRoutes``' checks) time the way home so too. Days whose
#:    travel factor changes over the day: a profile with more than one factor, or a
#:    slowdown over a window
#: 13: session 81: ``nearest_couriers`` and ``DecisionState.candidates`` (so ``insertion:K``
#:    and the EURO epoch policies) break ties between couriers arriving at the same second
#:    with the lower courier index, on every machine (``np.argpartition`` broke them as the
#:    CPU's SIMD code met them: the same seed played other days on other machines; the RL
#:    slots' own candidate order was stable already). Any day
TWIN_VERSION = 13


def twin_version(scenario: Scenario) -> int:
    """The twin version (:data:`TWIN_VERSION`) that days of ``scenario`` are played under."""
    # versions 3 and 8 changed any day (versions 2 and 4 to 7 only days whose vehicles have
    # breaks); version 9 only days with an order needing a skill some courier lacks or with a
    # vehicle ending elsewhere than it starts; version 10 only days with a node that closes
    # for good; version 11 only days on which an order may be lost or unfilled at pick
    # (a superset of version 10's: none plays under version 10 now); version 12 only days
    # whose travel factor changes over the day; version 13 any day (ties between couriers)
    return TWIN_VERSION


ParcelLine = tuple[int, int, int, bool]  # (line number, sku, quantity, short at allocation)

#: What a route cache's node pickups were built with: the ready version then, and each
#: pickup's (parcel key, ready estimate used).
_ReadyStamp = tuple[int, tuple[tuple[tuple[int, int], float], ...]]
#: (route version, t0, cache, SimPy steps when t0 was last checked, ready stamp)
_CacheEntry = tuple[int, float, RouteCache, int, _ReadyStamp]
#: A courier's quotes on one route cache: order -> (its job spec, the rates, the quote).
_QuoteMemo = tuple[RouteCache, dict[int, tuple[JobSpec, CostRates, Quote]]]
# A route cache and, by split ``i``, the cache of the route after its first ``i`` breaks and
# (None until asked for) the cost of that route (see _quote_before_leaving)
_SplitMemo = tuple[RouteCache, dict[int, list[Any]]]
SimGen = Generator[simpy.Event, Any, None]


def check_plan_ids(scenario: Scenario, plan: Plan, *, source: str | None = None) -> None:
    """Raise InputError naming the ``plan.*`` field the twin would refuse (an unknown order,
    node, vehicle, SKU or location), with ``source`` (the plan's file) as its source.

    The twin's own translation of the plan does the checking, on a world without travel
    tables, so nothing the twin refuses passes here; a plan whose ids and locations the
    scenario all has (:func:`plan_ids_known`, set look-ups) needs no world. A scenario that
    does not compile is left for the twin to report (its fields are not the plan's).
    """
    if not plan.routes and not plan.allocation:
        return  # nothing to look up: the orders need not be compiled
    if plan_ids_known(scenario, plan):
        return  # the twin's translation takes it: no need to compile 20,000 orders for that
    try:  # the twin's translation, for the error it raises
        world = compile_world(scenario, travel_tables=False)
    except InputError:
        return
    try:
        _PlanRoutes(world, plan)
    except InputError as err:
        raise InputError(err.field, err.reason, source=source) from None


def plan_ids_known(scenario: Scenario, plan: Plan) -> bool:
    """Whether the twin takes every id and location of ``plan`` (see :class:`_PlanRoutes`).

    The same look-ups as the twin's translation of the plan, on sets of the scenario's ids
    and locations instead of a compiled world (which holds every order's columns): False
    for a plan :class:`_PlanRoutes` would refuse, True otherwise.
    """
    locations = set(_scenario_locations(scenario))
    order_ids = {order.id for order in scenario.orders}
    node_ids = {node.id for node in scenario.nodes}
    node_locs = {node.location for node in scenario.nodes}
    if not scenario.nodes:  # compile_world's depots: one per start location of a vehicle
        for vehicle in scenario.vehicles:
            start = vehicle.start_location
            if start not in node_locs:
                node_locs.add(start)
                node_ids.add(f"depot:{vehicle.id}")
    skus = {s.id for s in scenario.skus}
    skus.update(sku for node in scenario.nodes for sku in node.inventory)
    skus.update(line.sku for order in scenario.orders for line in order.lines)
    own_pickup = {o.id: o.pickup.location for o in scenario.orders if o.pickup}
    alloc_nodes: dict[str, set[str]] = {}
    shipped: dict[tuple[str, str], int] = {}
    for line in plan.allocation:
        if line.order_id not in order_ids or line.node_id not in node_ids or line.sku not in skus:
            return False
        if line.order_id in own_pickup:
            return False  # not allocated to nodes (see _PlanRoutes)
        key = (line.order_id, line.sku)
        shipped[key] = shipped.get(key, 0) + line.quantity
        alloc_nodes.setdefault(line.order_id, set()).add(line.node_id)
    if shipped:
        ordered: dict[tuple[str, str], int] = {}
        for order in scenario.orders:
            for order_line in order.lines:
                key = (order.id, order_line.sku)
                ordered[key] = ordered.get(key, 0) + order_line.quantity
        if any(total > ordered.get(key, 0) for key, total in shipped.items()):
            return False  # more than the order holds (see _PlanRoutes)
    vehicle_ids = {vehicle.id for vehicle in scenario.vehicles}
    num_breaks = {vehicle.id: len(vehicle.breaks) for vehicle in scenario.vehicles}
    routed: set[str] = set()
    for route in plan.routes:
        if route.vehicle_id not in vehicle_ids or route.vehicle_id in routed:
            return False
        routed.add(route.vehicle_id)
        if bad_break_index(route, num_breaks[route.vehicle_id]) is not None:
            return False
        for ps in route.stops:
            if ps.kind == StopKind.BREAK:
                if ps.location is not None and ps.location not in locations:
                    return False
                continue
            if ps.order_id is None:
                return False
            order_id = order_of_task(ps.order_id, order_ids, node_ids)
            if order_id is None:
                return False
            if ps.kind != StopKind.PICKUP:
                continue  # a delivery is at its order's location, whatever the stop says
            if ps.location is not None and ps.location not in locations:
                return False
            own = own_pickup.get(order_id)
            if own is not None:  # picked up at its own pickup, never at a node
                if ps.location is None or ps.location == own:
                    continue
                return False
            if ps.location is not None:
                if ps.location not in node_locs:
                    return False
            elif len(alloc_nodes.get(order_id, ())) != 1:
                return False
    return True


def orders_not_in_plan(scenario: Scenario, plan: Plan) -> list[str]:
    """The scenario's orders that ``plan`` covers nowhere, though it should: no stop and not
    unassigned, yet allocated by the plan or needing no allocation (their own pickup, or a
    scenario without nodes). A re-plan's plan leaves out the orders it completed before its
    ``now_s`` so (it keeps their allocation lines); an order the plan's allocation left
    without a line (stock short everywhere) is not one of them: no plan could route it."""
    order_ids = {order.id for order in scenario.orders}
    node_ids = {node.id for node in scenario.nodes}
    covered = {u.order_id for u in plan.unassigned}
    covered.update(stop.order_id for route in plan.routes for stop in route.stops if stop.order_id)
    covered = {order_of_task(task, order_ids, node_ids) or task for task in covered}
    allocated = {line.order_id for line in plan.allocation}
    return [
        order.id
        for order in scenario.orders
        if order.id not in covered
        and (order.id in allocated or not scenario.nodes or order.pickup is not None)
    ]


#: Orders a note names before "and N more".
NAMED_ORDERS = 5


def plan_coverage_note(scenario: Scenario, plan: Plan, policy: str) -> str | None:
    """What a whole day played from ``plan`` under ``policy`` does with the scenario's
    orders the plan leaves out (:func:`orders_not_in_plan`, a re-plan's completed ones);
    None when it leaves none out."""
    missing = orders_not_in_plan(scenario, plan)
    if not missing:
        return None
    named = ", ".join(missing[:NAMED_ORDERS])
    if len(missing) > NAMED_ORDERS:
        named += f" and {len(missing) - NAMED_ORDERS} more"
    head = (
        f"{len(missing)} of the scenario's {len(scenario.orders)} orders are not in the plan "
        f"(no stop, not unassigned: {named}), as a re-plan's plan leaves out the orders it "
        "completed before its now_s, while the twin plays the whole day from its start"
    )
    if policy.strip().partition(":")[0] == "plan":
        return (
            f"{head}: under policy plan nobody dispatches them, so the KPIs count them "
            "unserved, with their penalties (the whole day's KPIs are those of the plan "
            "made for the day)"
        )
    return f"{head}: policy {policy.strip()} dispatches them as new orders, served again"


def candidate_coverage_notes(
    scenario: Scenario, plans: Mapping[str, Plan | None], policies: Mapping[str, str]
) -> list[str]:
    """Each compared candidate's :func:`plan_coverage_note`, after ``candidate NAME: ``."""
    notes = []
    for name, plan in plans.items():
        note = None if plan is None else plan_coverage_note(scenario, plan, policies[name])
        if note is not None:
            notes.append(f"candidate {name}: {note}")
    return notes


def _scenario_locations(scenario: Scenario) -> Iterator[Location]:
    """Every location of the scenario (those :func:`compile_world` numbers)."""
    for node in scenario.nodes:
        yield node.location
    for vehicle in scenario.vehicles:
        yield vehicle.start_location
        yield vehicle.end
    for order in scenario.orders:
        yield order.location
        if order.pickup is not None:
            yield order.pickup.location


class _PlanRoutes:
    """A plan translated to the world's indices (validated once per simulator).

    A check added here goes into :func:`plan_ids_known` too (``check_plan_ids`` trusts it).
    """

    def __init__(self, world: World, plan: Plan) -> None:
        self.stops: dict[int, list[Stop]] = {}
        self.start_s: dict[int, float] = {}
        self.planned_start: dict[tuple[int, int, int, int, int], float] = {}
        self.courier_of: dict[int, int] = {}
        self.preload: dict[int, list[int]] = {}
        # Each break stop's (earliest start, latest start, duration): the window of the
        # vehicle's break it takes (matched as the validator matches them), so a courier there
        # early starts it as the window opens; one matching none: its planned start, INF.
        self.breaks: list[tuple[float, float, float]] = []
        # Each break stop's vehicle break (its index in the vehicle's ``breaks``; -1: none).
        self.break_of: list[int] = []
        # Per courier, the indices (in its vehicle's ``breaks``) of the breaks its route has.
        self.matched: dict[int, set[int]] = {}
        self.alloc: dict[int, dict[int, list[tuple[int, int]]]] = {}
        node_at: dict[int, int] = {}
        for n, node in enumerate(world.nodes):
            node_at.setdefault(node.location, n)
        shipped: dict[tuple[int, int], int] = {}  # (order, SKU) -> units allocated so far
        for k, line in enumerate(plan.allocation):
            where = f"plan.allocation.{k}"
            o = world.order_index.get(line.order_id)
            if o is None:
                raise InputError(f"{where}.order_id", f"unknown order {line.order_id!r}")
            node_idx = world.node_index.get(line.node_id)
            if node_idx is None:
                raise InputError(f"{where}.node_id", f"unknown node {line.node_id!r}")
            n = node_idx
            sku = world.sku_index.get(line.sku)
            if sku is None:
                raise InputError(f"{where}.sku", f"unknown SKU {line.sku!r}")
            if world.orders.pickup_location[o] >= 0:  # the twin would pick nothing there
                raise InputError(f"{where}.order_id", own_pickup_allocated(line.order_id))
            ordered = sum(q for s, q in world.orders.lines[o] if s == sku)
            total = shipped.get((o, sku), 0) + line.quantity
            problem = over_allocated(line.order_id, line.sku, ordered, total)
            if problem is not None:
                raise InputError(f"{where}.{problem[0]}", problem[1])
            shipped[(o, sku)] = total
            self.alloc.setdefault(o, {}).setdefault(n, []).append((sku, line.quantity))
        orders = world.orders
        for r, route in enumerate(plan.routes):
            c = world.vehicle_index.get(route.vehicle_id)
            if c is None:
                raise InputError(
                    f"plan.routes.{r}.vehicle_id", f"unknown vehicle {route.vehicle_id!r}"
                )
            if c in self.stops:
                raise InputError(
                    f"plan.routes.{r}.vehicle_id", f"vehicle {route.vehicle_id!r} has two routes"
                )
            stops: list[Stop] = []
            picked: set[int] = set()
            prev_loc = world.vehicle_start_loc[c]
            break_stops = [ps for ps in route.stops if ps.kind == StopKind.BREAK]
            vehicle_breaks = world.scenario.vehicles[c].breaks
            bad = bad_break_index(route, len(vehicle_breaks))
            if bad is not None:
                raise InputError(f"plan.routes.{r}.stops.{bad[0]}.break_index", bad[1])
            matched = _match_plan_breaks(break_stops, vehicle_breaks)
            number = {id(b): k for k, b in enumerate(vehicle_breaks)}
            self.matched[c] = {number[id(b)] for b in matched.values()}
            for s, ps in enumerate(route.stops):
                where = f"plan.routes.{r}.stops.{s}"
                if ps.kind == StopKind.BREAK:
                    loc = (
                        world.location_of(ps.location, where=f"{where}.location")
                        if ps.location is not None
                        else prev_loc
                    )
                    brk = matched.get(id(ps))
                    if brk is not None:  # its window, as the routing layer's schedule has it
                        earliest, latest = float(brk.window.start_s), float(brk.window.end_s)
                    else:
                        earliest, latest = float(ps.start_s), INF
                    self.breaks.append((earliest, latest, float(ps.departure_s - ps.start_s)))
                    self.break_of.append(number[id(brk)] if brk is not None else -1)
                    stop = Stop(BREAK, -1, loc, -1, len(self.breaks) - 1)
                else:
                    if ps.order_id is None:
                        raise InputError(f"{where}.order_id", "a pickup or delivery needs an order")
                    o = _order_of(world, ps.order_id)
                    if o is None:
                        raise InputError(f"{where}.order_id", f"unknown order {ps.order_id!r}")
                    self.courier_of.setdefault(o, c)
                    if ps.kind == StopKind.DELIVERY:
                        stop = Stop(DELIVERY, o, orders.location[o])
                    elif orders.pickup_location[o] >= 0:
                        if (
                            ps.location is not None
                            and world.location_of(ps.location, where=f"{where}.location")
                            != orders.pickup_location[o]
                        ):
                            raise InputError(
                                f"{where}.location", own_pickup_elsewhere(world.orders.ids[o])
                            )
                        stop = Stop(PICKUP, o, orders.pickup_location[o])
                        picked.add(o)
                    else:
                        loc_idx = (
                            world.location_of(ps.location, where=f"{where}.location")
                            if ps.location is not None
                            else None
                        )
                        nodes = list(self.alloc.get(o, {}))
                        n = node_at.get(loc_idx, -1) if loc_idx is not None else -1
                        if n < 0 and loc_idx is None and len(nodes) == 1:
                            n = nodes[0]
                        if n < 0:
                            raise InputError(
                                f"{where}.location",
                                f"pickup of order {ps.order_id!r} is not at a fulfilment node",
                            )
                        stop = Stop(PICKUP, o, world.nodes[n].location, n)
                        picked.add(o)
                stops.append(stop)
                self.planned_start[_planned_key(c, stop)] = float(ps.start_s)
                prev_loc = stop.location
            self.stops[c] = stops
            self.start_s[c] = float(route.start_s)
            self.preload[c] = [
                st.order for st in stops if st.kind == DELIVERY and st.order not in picked
            ]
        self.pickup_nodes: dict[int, list[int]] = {}
        for stops in self.stops.values():
            for st in stops:
                if st.kind == PICKUP and st.node >= 0:
                    self.pickup_nodes.setdefault(st.order, []).append(st.node)


def _match_plan_breaks(stops: Sequence[PlannedStop], breaks: Sequence[Break]) -> dict[int, Break]:
    """The vehicle break each of a route's break stops takes (keys ``id(stop)``): the break
    a stop names (``break_index``), else matched by window and length as the validator
    matches them, then each stop left over, in route order, takes the first break left over
    (by window start) whose length it covers: a break taken outside its window (``to_plan``
    exports a late one as taken, naming it since session 60) is still that vehicle break, so
    a replay neither adds it again nor forgets that it is late."""
    matched = match_breaks(stops, breaks)
    taken = {id(b) for b in matched.values()}
    left = [b for b in sorted(breaks, key=lambda b: b.window.start_s) if id(b) not in taken]
    for ps in stops:
        if id(ps) in matched or ps.break_index is not None:
            continue
        brk = next((b for b in left if ps.departure_s - ps.start_s >= b.duration_s), None)
        if brk is not None:
            matched[id(ps)] = brk
            left.remove(brk)
    return matched


def _planned_key(c: int, st: Stop) -> tuple[int, int, int, int, int]:
    """Key of courier ``c``'s stop ``st`` in the plan's planned starts (a break by its
    ``aux``: the breaks of a courier all have order -1 and node -1)."""
    return (c, st.kind, st.order, st.node, st.aux)


def _stop_key_full(st: Stop) -> tuple[int, ...]:
    """A stop as a plain tuple (one per stop of a route: a break by its index)."""
    return (st.kind, st.order, st.node, st.aux)


def _stop_key(st: Stop) -> tuple[bool, int]:
    """What a stop is for: its break (by index) or its order."""
    return (True, st.aux) if st.kind == BREAK else (False, st.order)


def _order_of(world: World, order_id: str) -> int | None:
    """Index of an order id, or of ``<order id>@<node id>`` shipment jobs of a routing plan
    (see :func:`order_of_task`)."""
    found = order_of_task(order_id, world.order_index, world.node_index)
    return None if found is None else world.order_index[found]


def order_of_task(task_id: str, order_ids: Container[str], node_ids: Container[str]) -> str | None:
    """The order a plan's stop names by ``task_id``: the order of that id, else of a courier
    job ``<order id>@<node id>`` (an order shipped from several nodes) for a node of the
    scenario, whose id may hold ``@`` itself (``o@st@1`` is order ``o`` shipped from node
    ``st@1``), else ``<order id>@<anything>``; None when it names none."""
    if task_id in order_ids:
        return task_id
    found = shipment_order(task_id, order_ids, node_ids)
    if found is not None:
        return found
    if "@" in task_id and task_id.rsplit("@", 1)[0] in order_ids:
        return task_id.rsplit("@", 1)[0]
    return None


def own_pickup_allocated(order_id: str) -> str:
    """Why a plan's allocation line of an order with a pickup of its own is refused."""
    return (
        f"order {order_id!r} has a pickup of its own: it is a pickup-and-delivery job, not "
        "allocated to fulfilment nodes (nothing is picked for it at a node)"
    )


def over_allocated(order_id: str, sku: str, ordered: int, total: int) -> tuple[str, str] | None:
    """The field (of a plan's allocation line) and reason when the plan allocates ``total``
    units of ``sku`` to order ``order_id``, which orders ``ordered``: more than it holds (a
    node short of stock ships what it has, so a line of a million units emptied the node's
    shelf for the day's other orders, without a word), or a SKU it has no line of; else None.
    """
    if ordered == 0:
        return "sku", f"order {order_id!r} has no line of SKU {sku!r}"
    if total > ordered:
        return (
            "quantity",
            f"the plan allocates {total} units of {sku!r} to order {order_id!r}, which "
            f"orders {ordered}",
        )
    return None


def own_pickup_elsewhere(order_id: str) -> str:
    """Why a plan's pickup of an order with a pickup of its own away from it is refused."""
    return (
        f"order {order_id!r} has a pickup of its own: its courier collects it there, not at "
        "this location (a pickup-and-delivery job is not picked up at a fulfilment node)"
    )


class DispatchSimulator:
    """The twin as a stepping API: ``reset``, ``next_decision``, ``apply``, ``result``."""

    def __init__(
        self,
        scenario: Scenario | World,
        *,
        plan: Plan | None = None,
        params: SimParams | None = None,
    ) -> None:
        self.world = scenario if isinstance(scenario, World) else compile_world(scenario)
        self.params = params if params is not None else SimParams()
        self.base_params = self.params
        self.plan = plan
        self._plan = _PlanRoutes(self.world, plan) if plan is not None else None
        # Every break stop's (earliest start, latest start, duration), by its ``aux``: the
        # plan's, then the vehicles' breaks no route of it has (set at each reset).
        self._breaks: list[tuple[float, float, float]] = []
        # By the same ``aux``, the break's index in its courier's vehicle's ``breaks`` (-1: a
        # plan's break stop that takes none of them).
        self._break_of: list[int] = []
        # Breaks 0.. of that list are the plan's; the rest the twin added.
        self._num_plan_breaks = len(self._plan.breaks) if self._plan is not None else 0
        w = self.world
        real = [n for n, node in enumerate(w.nodes) if not node.virtual]
        self._alloc_nodes = real if real else list(range(w.num_nodes))
        node_locs = np.asarray([w.nodes[n].location for n in self._alloc_nodes], dtype=np.int64)
        self._alloc_node_locs = node_locs
        # Re-sourcing order: for each node, the other real nodes by transfer time.
        self._resource_order: list[list[int]] = []
        for n, node in enumerate(w.nodes):
            if real:
                times = w.travel.duration_s[node_locs, node.location]
                self._resource_order.append(
                    [real[k] for k in np.argsort(times, kind="stable") if real[k] != n]
                )
            else:
                self._resource_order.append([])
        self._mean_pick_s = [
            node.pick_time_s_per_line * 1.5 + node.pack_time_s_per_order for node in w.nodes
        ]
        self._rates = [
            CostRates(
                per_km=w.cost_per_km_cents[c],
                per_hour=w.cost_per_hour_cents[c],
                lateness_per_min=float(w.scenario.costs.lateness_cents_per_min),
                fixed=0.0,
            )
            for c in range(w.num_vehicles)
        ]
        # The same prices with the fixed cost, for a courier's first assignment.
        self._rates_first = [
            CostRates(r.per_km, r.per_hour, r.lateness_per_min, w.fixed_cost_cents[c])
            for c, r in enumerate(self._rates)
        ]
        self._seed: int | None = None
        self._shift_end = np.asarray(w.shift_end_s, dtype=np.float64)
        # The travel matrices as rows of Python ints (nested lists, or memoryviews of a large
        # matrix's rows): routes are quoted without numpy gathers.
        dur_rows: Rows | None = matrix_rows(w.travel.duration_s)
        dist_rows: Rows | None = matrix_rows(w.travel.distance_m)
        self._rows = (
            (dur_rows, dist_rows) if dur_rows is not None and dist_rows is not None else None
        )
        self._dur_rows = dur_rows
        self._dist_rows = dist_rows
        # Symmetric tables: quotes read the travel to a stop from the stop's own rows.
        self._symmetric = self._rows is not None and w.travel.symmetric
        # How much quicker a detour can be than the direct way (see quote_insertion).
        self._shortcut_s = w.travel.shortcut_s
        self._hour_rate = np.asarray(w.cost_per_hour_cents, dtype=np.float64)
        self._num_vehicles = w.num_vehicles
        # By a set of required skills: which couriers have them all (see _skilled).
        self._skill_masks: dict[frozenset[str], NDArray[np.bool_]] = {}
        self._capacity_rows: list[list[float]] = w.capacity.tolist()

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int) -> None:
        """Start a new day: draw arrivals and noise from ``seed``, build the SimPy model."""
        w = self.world
        scenario = w.scenario
        self._seed = seed
        p = self.params
        stoch = scenario.stochastic
        self.orders = self._day_orders(seed)
        orders = self.orders
        n = len(orders)
        self.num_base_orders = w.num_orders
        self.noise = draw_noise(
            stoch,
            seed=seed,
            order_ids=orders.ids,
            lines_per_order=[len(x) for x in orders.lines],
            courier_ids=w.vehicle_ids,
            start_s=w.horizon_start_s,
            end_s=w.horizon_end_s + p.max_overtime_s,
        )
        self.env = simpy.Environment(initial_time=w.horizon_start_s)
        self._stop_at = w.horizon_end_s + p.max_overtime_s
        # Orders.
        self.status = [S_UNKNOWN] * n
        self.courier_of = [-1] * n
        self.released_s = [math.nan] * n
        self.completed_s = [math.nan] * n
        self.lateness_s = [math.nan] * n
        self.parcel_nodes: list[list[int]] = [[] for _ in range(n)]
        self.parcels_left = [0] * n
        self.unfilled_lines = [0] * n
        self._parcel_lines: dict[tuple[int, int], list[ParcelLine]] = {}
        self._ready_at: dict[tuple[int, int], float] = {}
        self._ready_est: dict[tuple[int, int], float] = {}
        self._ready_ev: dict[tuple[int, int], simpy.Event] = {}
        self._lost: set[tuple[int, int]] = set()
        # Released orders a planned route loaded at its start waits for (see _courier).
        self._release_ev: dict[int, simpy.Event] = {}
        # Lines that came out filled (picked, or re-sourced) and picks still to start, per
        # order: an order none of whose lines could be filled is unfilled altogether.
        self._lines_filled = [0] * n
        self._picks_left = [0] * n
        self._pending: dict[int, None] = {}
        self._pending_version = 0
        self._pending_cache: tuple[tuple[int, int], NDArray[np.int64]] = (
            (-1, -1),
            np.empty(0, dtype=np.int64),
        )
        self._snooze: dict[int, float] = {}
        self._num_released = 0
        self._num_delivered = 0
        # Nodes.
        self._pickers = [simpy.Resource(self.env, capacity=nd.pickers) for nd in w.nodes]
        self._stations = [simpy.Resource(self.env, capacity=nd.packing_stations) for nd in w.nodes]
        self.picker_busy_s = [0.0] * w.num_nodes
        self.pick_waits_s: list[float] = []
        # Python ints: read and updated one (node, SKU) at a time.
        self._stock_left: list[list[int]] = np.maximum(0, w.inventory - w.safety_stock).tolist()
        self._node_orders = [0] * w.num_nodes
        # When each node stops handing over parcels for good (its parcels are lost then).
        self._node_final_s = [nd.closes_for_good_s() for nd in w.nodes]
        # Nodes whose final closing is watched (a parcel became ready there: see
        # _parcel_ready).
        self._closing_watched: set[int] = set()
        # Parcels some courier took on board (delivered ones included).
        self._collected: set[tuple[int, int]] = set()
        # Couriers.
        v = w.num_vehicles
        self.loc = list(w.vehicle_start_loc)
        self._committed: list[Stop | None] = [None] * v
        self._route: list[tuple[Stop, ...]] = [()] * v
        self._est_free = list(w.shift_start_s)
        # When the courier was expected to reach its committed stop as it left for it (its
        # expected departure is re-estimated from it when a parcel it goes for becomes ready).
        self._est_arrival = list(w.shift_start_s)
        self._idle = [False] * v
        # Standing where it is until the window of the break first in its route opens (not
        # committed to it yet: work may still be put before it).
        self._standing = [False] * v
        self._home = [False] * v
        self._carried: list[set[tuple[int, int]]] = [set() for _ in range(v)]
        # The load each order on board takes (its demand, or the shares of its parcels on
        # board when it ships from several nodes; a failed delivery's parcel takes none).
        self._loaded: list[dict[int, tuple[float, ...]]] = [{} for _ in range(v)]
        # Each parcel's share of its order's demand, for orders shipped from several nodes.
        self._shares: dict[tuple[int, int], tuple[float, ...]] = {}
        self._load = np.zeros((v, w.num_dims))
        self._version = [0] * v
        self._wake: list[simpy.Event | None] = [None] * v
        # When each courier ended its shift early (SimParams.idle_couriers_go_home; NaN: it
        # did not), and the shift end in force: the scenario's, or that time.
        self.shift_ended_s = [math.nan] * v
        self._shift_end_now = list(w.shift_end_s)
        self._shift_end = np.asarray(self._shift_end_now, dtype=np.float64)
        self.first_departure_s = [math.nan] * v
        self.last_activity_s = [math.nan] * v
        self.busy_s = [0.0] * v
        # End of each courier's latest busy activity (one under way at the day's cut-off is
        # finished: it counts whole in busy_s and the drive home starts at its end).
        self.busy_end_s = [-INF] * v
        self.distance_m = [0.0] * v
        # The leg (from, to) each courier is driving, None when it is not driving.
        self._leg: list[tuple[int, int] | None] = [None] * v
        self._breakdown_ptr = [0] * v
        # numpy mirrors of the courier state, for cheap DecisionStates.
        self._a_anchor = np.asarray(self.loc, dtype=np.int64)
        self._a_free = np.asarray(w.shift_start_s, dtype=np.float64)
        self._a_nstops = np.zeros(v, dtype=np.int64)
        self._a_idle = np.zeros(v, dtype=bool)
        self._a_home = np.zeros(v, dtype=bool)
        self._a_first = np.full(v, np.nan)
        self._a_last = np.full(v, np.nan)
        # Route caches: (route version, t0, cache, SimPy steps when t0 was last checked,
        # the ready estimates of the route's node pickups it was built with).
        self._caches: dict[int, _CacheEntry] = {}
        # Per courier, its quotes on its current route cache only (see quote): an entry is
        # reused while the cache, the order's job spec and the rates are the same objects,
        # and dropped with the cache (at most one cache's quotes per courier are kept).
        self._quotes: dict[int, _QuoteMemo] = {}
        # Per courier that has not left, the caches of its route after its leading breaks,
        # for its current route cache only (a function of it, as the quotes above).
        self._splits: dict[int, _SplitMemo] = {}
        self._jobs: dict[int, JobSpec] = {}  # dropped when the order's parcels change
        # Per courier: the stop lists of its last route cache build and what they depend on.
        self._stops_memo: dict[int, tuple[Any, ...]] = {}
        self._route_costs: dict[int, tuple[RouteCache, float]] = {}
        self._factors: dict[float, float] = {}  # travel factor by departure time
        # The factor over the day (None when it never changes): the way home is timed at the
        # factor when the courier leaves its last stop (twin version 12).
        steps = TravelFactors(self.world, self.travel_factor)
        self._travel_factors: TravelFactors | None = None if steps.constant else steps
        # Bumped whenever a parcel's ready estimate changes (a route cache checked since is
        # fresh; an older one is if the estimates its pickups were built with are unchanged).
        self._ready_version = 0
        # realised_cost_cents only changes when SimPy processes run: (steps, finished, cost).
        self._realised: tuple[int, bool, float] = (-1, False, 0.0)
        self._fleet: tuple[int, bool, NDArray[np.float64], NDArray[np.bool_]] | None = None
        # Costs (cents).
        self.cost_distance = 0.0
        self.cost_lateness = 0.0
        self.cost_failed = 0.0
        self.cost_fixed = 0.0
        self.num_failed = 0
        # Control.
        self._decisions: deque[tuple[int, int, int]] = deque()
        self._released_all = False
        self._closing = False
        self._finished = False
        self._result: SimulationResult | None = None
        self.events: list[tuple[float, str, int, int]] = []
        #: Breaks started after their latest start: (courier, break, start_s, latest_s).
        self.break_violations: list[tuple[int, int, float, float]] = []
        self._log = p.record_events
        self.executed: list[list[tuple[int, int, int, float, float, float]]] = [
            [] for _ in range(v)
        ]
        #: Per courier, for each break in ``executed`` (in order): the index in its vehicle's
        #: ``breaks`` of the break it took (-1: a plan's break stop that takes none of them).
        self.executed_breaks: list[list[int]] = [[] for _ in range(v)]
        self._num_steps = 0
        self._breaks, self._break_of, start_routes = self._start_routes()
        for c, stops in start_routes.items():
            self._route[c] = stops
            self._a_nstops[c] = len(stops)
            self._version[c] += 1
        for c in range(v):
            # Couriers without a planned route are idle (and can be given work) from the start.
            if not self._route[c]:
                self._idle[c] = True
                self._a_idle[c] = True
            self.env.process(self._courier(c))
        self.env.process(self._releases())
        if p.tick_s is not None:
            self.env.process(self._ticks(float(p.tick_s)))

    def _start_routes(
        self,
    ) -> tuple[list[tuple[float, float, float]], list[int], dict[int, tuple[Stop, ...]]]:
        """Every break's window and length and its index in its vehicle's breaks (by its
        stop's ``aux``; -1: a plan's break stop taking none), and each courier's route at
        the start of the day: its planned stops, plus (with ``SimParams.take_vehicle_breaks``)
        every break of its vehicle the plan does not give it, before the first planned stop
        starting at or after the break's window opens (a courier without a planned route: a
        route holding only its breaks)."""
        w = self.world
        plan = self._plan
        breaks = list(plan.breaks) if plan is not None else []
        break_of = list(plan.break_of) if plan is not None else []
        routes = {c: tuple(stops) for c, stops in plan.stops.items()} if plan is not None else {}
        if not self.params.take_vehicle_breaks:
            return breaks, break_of, routes
        for c, vehicle in enumerate(w.scenario.vehicles):
            taken = plan.matched.get(c, ()) if plan is not None else ()
            missing = [k for k in range(len(vehicle.breaks)) if k not in taken]
            if not missing:
                continue
            route = list(routes.get(c, ()))
            for k in sorted(missing, key=lambda k: vehicle.breaks[k].window.start_s):
                brk = vehicle.breaks[k]
                opens = float(brk.window.start_s)
                breaks.append((opens, float(brk.window.end_s), float(brk.duration_s)))
                break_of.append(k)
                at = len(route)
                if plan is not None:
                    at = next(
                        (
                            k
                            for k, st in enumerate(route)
                            # (a break added here has no planned start: passed over)
                            if plan.planned_start.get(_planned_key(c, st), -INF) >= opens
                        ),
                        at,
                    )
                loc = route[at - 1].location if at > 0 else w.vehicle_start_loc[c]
                route.insert(at, Stop(BREAK, -1, loc, -1, len(breaks) - 1))
            routes[c] = tuple(route)
        return breaks, break_of, routes

    def _day_orders(self, seed: int) -> OrderData:
        """The scenario's orders followed by the day's Poisson arrivals (drawn from ``seed``;
        the ``template`` of an arrival indexes ``Scenario.arrival_templates``)."""
        w = self.world
        base = w.orders
        arrivals = w.scenario.arrivals
        if arrivals is None:
            return base
        source = w.arrival_templates  # arrivals.templates, else the listed orders
        if len(source) == 0:
            raise InputError("arrivals", NO_ARRIVAL_TEMPLATES)
        day = draw_day_arrivals(
            arrivals,
            seed=seed,
            start_s=w.horizon_start_s,
            end_s=w.horizon_end_s,
            num_templates=len(source),
        )
        times, templates = day.times, day.templates
        if not times:
            return base
        rows = source.subset(templates)
        promise = float(arrivals.promise_s)
        pickup_start = [t if rows.pickup_location[k] >= 0 else 0.0 for k, t in enumerate(times)]
        extra = OrderData(
            ids=list(day.ids),
            location=rows.location,
            windows=[((t, t + promise),) for t in times],
            tw_start=list(times),
            tw_end=[t + promise for t in times],
            service_s=rows.service_s,
            demand=rows.demand,
            created_s=list(times),
            penalty_cents=rows.penalty_cents,
            lines=rows.lines,
            pickup_location=rows.pickup_location,
            pickup_tw_start=pickup_start,
            pickup_service_s=rows.pickup_service_s,
            skills=rows.skills,
            template=list(templates),
        )
        return base.extended(extra)

    # -------------------------------------------------------------- stepping
    @property
    def now(self) -> float:
        """Current simulated time (s)."""
        return float(self.env.now)

    def next_decision(
        self, screen: Callable[[int], float | None] | None = None
    ) -> DecisionState | None:
        """Run until the next decision point; None when the day is over.

        ``screen`` lets a caller pass over decisions without building their state: it is
        called with the focus order (-1 for none) of each order or tick decision; None stops
        there as usual, a time ``t`` goes on (the order is postponed until ``t``, exactly as
        ``apply(Postpone(o, until_s=t))`` would). Raises :class:`~solvers.cancel.SolveCancelled`
        once this thread's solve is cancelled (:func:`solvers.cancel.cancel_with`).
        """
        point = self._next_point(screen)
        if point is None:
            return None
        order, courier, kind = point
        return self.state(focus_order=order, focus_courier=courier, kind=DecisionKind(kind))

    def _next_point(
        self, screen: Callable[[int], float | None] | None, *, blind: bool = False
    ) -> tuple[int, int, int] | None:
        """Run until the next decision point: its (focus order, focus courier, kind), None
        when the day is over. ``blind``: nobody decides (:meth:`run`): one point per tick
        or free courier, not one per waiting order (each would be passed over)."""
        if self._seed is None:
            raise RuntimeError("call reset(seed=...) first")
        decisions = self._decisions
        env = self.env
        while True:
            while decisions:
                kind, o, c = decisions.popleft()
                if o >= 0:
                    if self.status[o] != S_PENDING:
                        continue
                    if screen is not None:
                        until = screen(o)
                        if until is not None:
                            self._snooze[o] = until
                            self._maybe_close()
                            continue
                    return o, c, kind
                if kind == DecisionKind.COURIER_FREE:
                    if self._pending and (
                        (self._idle[c] and not self._route[c]) or self._standing_at_break(c)
                    ):
                        return -1, c, kind
                    continue
                if self._pending and not blind:
                    # One decision per waiting order, oldest first, each on a fresh state
                    # (orders a policy snoozed past now are left out).
                    now = self.now
                    snooze = self._snooze
                    offered = [p for p in self._pending if snooze.get(p, -INF) <= now]
                    if offered:
                        decisions.extendleft((kind, p, c) for p in reversed(offered))
                        continue
                if screen is not None and screen(-1) is not None:
                    continue
                return -1, c, kind
            if self._finished:
                return None
            if env.peek() > self._stop_at:
                self._finish()
                return None
            env.step()
            self._num_steps += 1
            if not self._num_steps % CHECK_EVERY_STEPS and cancelled():  # solvers.cancel
                raise SolveCancelled("the simulation was cancelled")

    def run(self) -> SimulationResult:
        """Run to the end without taking decisions (unplanned orders stay pending)."""
        # no DecisionState is built: nobody reads it (one per waiting order and tick cost
        # most of a day's play with a tick_s and orders the plan leaves out)
        while self._next_point(None, blind=True) is not None:
            pass
        return self.result()

    def result(self) -> SimulationResult:
        """Outcome of the day (after ``next_decision`` returned None)."""
        if self._result is None:
            raise RuntimeError("the day is not over yet; step until next_decision() is None")
        return self._result

    # ------------------------------------------------------------ the state
    def state(
        self,
        focus_order: int = -1,
        focus_courier: int = -1,
        kind: DecisionKind = DecisionKind.TICK,
    ) -> DecisionState:
        """A fresh DecisionState at the current time (policies may call it between applies)."""
        w = self.world
        now = self.now
        avail, on_shift = self._fleet_now()
        avail = avail.copy()  # (the state's own arrays)
        anchor = self._a_anchor.copy()
        on_shift = on_shift.copy()
        find: Callable[[], NDArray[np.int64]] = no_candidates
        if focus_order >= 0 and self._num_vehicles:
            find = partial(
                _nearest,
                self._first_pickup_loc(focus_order),
                self.params.num_candidates,
                anchor,
                avail,
                self.can_serve(focus_order).copy(),
                w.travel.duration_s,
            )
        return DecisionState(
            time_s=now,
            kind=kind,
            focus_order=focus_order,
            focus_courier=focus_courier,
            pending=self._pending_array(),
            courier_location=anchor,
            courier_available_s=avail,
            courier_load=self._load.copy(),
            courier_capacity=w.capacity,
            courier_num_stops=self._a_nstops.copy(),
            courier_idle=self._a_idle & (self._a_nstops == 0),
            courier_on_shift=on_shift,
            committed=tuple(self._committed),
            routes=tuple(self._route),
            realised_cost_cents=self.realised_cost_cents(),
            num_released=self._num_released,
            num_delivered=self._num_delivered,
            find_candidates=find,
        )

    def nearest_couriers(self, o: int, k: int) -> NDArray[np.int64]:
        """Up to ``k`` couriers able to serve order ``o`` (:meth:`can_serve`) that can reach
        its first pickup soonest."""
        avail, _ = self._fleet_now()
        return _nearest(
            self._first_pickup_loc(o),
            k,
            self._a_anchor,
            avail,
            self.can_serve(o),
            self.world.travel.duration_s,
        )

    def can_serve(self, o: int) -> NDArray[np.bool_]:
        """Which couriers may be given order ``o`` now: on shift, with every skill it requires
        (the couriers :meth:`quote` does not refuse outright; not to be written to)."""
        _, on_shift = self._fleet_now()
        skilled = self._skilled(o)
        return on_shift if skilled is None else on_shift & skilled

    def _skilled(self, o: int) -> NDArray[np.bool_] | None:
        """Which couriers have every skill order ``o`` requires (None: it requires none); the
        one skills rule of quotes, :meth:`can_append`, re-plans and the candidate lists."""
        need = self.orders.skills[o]
        if not need:
            return None
        mask = self._skill_masks.get(need)
        if mask is None:
            have = self.world.vehicle_skills
            mask = np.fromiter((need <= h for h in have), dtype=bool, count=len(have))
            mask.flags.writeable = False
            self._skill_masks[need] = mask
        return mask

    def _fleet_now(self) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """When each courier is available, and who is on shift, now: remembered until the next
        SimPy event (nothing else changes them); not to be written to."""
        memo = self._fleet
        if memo is not None and memo[0] == self._num_steps and memo[1] == self._finished:
            return memo[2], memo[3]
        now = self.now
        avail = np.maximum(now, self._a_free)
        on_shift = ~self._a_home & (self._shift_end > now)
        self._fleet = (self._num_steps, self._finished, avail, on_shift)
        return avail, on_shift

    def _pending_array(self) -> NDArray[np.int64]:
        """The waiting orders as an array (rebuilt only when the set changed)."""
        key = (self._pending_version, len(self._pending))
        if self._pending_cache[0] != key:
            arr = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
            arr.flags.writeable = False
            self._pending_cache = (key, arr)
        return self._pending_cache[1]

    def realised_cost_cents(self) -> float:
        """Cost incurred so far: distance, courier time, fixed, lateness and failure penalties."""
        memo = self._realised
        if memo[0] == self._num_steps and memo[1] == self._finished:
            return memo[2]  # no SimPy event ran since: same time, same costs
        now = self.now
        used = ~np.isnan(self._a_first)
        hours = 0.0
        if used.any():
            end = np.where(self._a_home, self._a_last, now)
            hours = float((self._hour_rate * (end - self._a_first))[used].sum()) / 3600.0
        cost = self.cost_distance + hours + self.cost_fixed + self.cost_lateness + self.cost_failed
        self._realised = (self._num_steps, self._finished, cost)
        return cost

    def projected_cost_cents(self) -> float:
        """Realised cost plus the planned cost of every remaining route and pending penalties.

        Every courier out is counted until it is home: what it has under way (see
        :meth:`_under_way_cents`: the leg it drives, its hours until it leaves its committed
        stop), then its route as :meth:`planned_cost_cents` prices it, from that stop, home
        included; an idle courier's is its way home. Until session 73 the leg under way and
        an idle courier's way home were left out (they entered the realised cost later).

        Unlike :meth:`planned_cost_cents` (and a quote's ``cost_delta_cents``), a route's
        planned cost here leaves out the fixed cost of a courier yet to leave: it enters the
        realised cost when the courier leaves. Its one reader, the RL environment's potential
        (``rl_agents.env``), adds that fixed cost itself for each such courier with work (so it
        counts it once, from the assignment on); ``reopt``'s keep-if-cheaper check prices
        routes by :meth:`planned_cost_cents`.
        """
        total = self.realised_cost_cents()
        for c in range(self.world.num_vehicles):
            if self._home[c] or self._never_leaves(c):
                continue
            total += self._under_way_cents(c)
            if self._committed[c] is None and self._leg[c] is not None:
                continue  # on its way home: nothing else left
            cache, gone = self._departure_split(c)
            if gone is None:
                total += self._route_cost(c) - self._unpaid_start(c, self._route[c], cache)
            else:
                total += self._cost_from_departure(c, cache, gone)
        total += sum(self.orders.penalty_cents[o] for o in self._pending)
        return total

    def _under_way_cents(self, c: int) -> float:
        """The planned cost of what courier ``c`` has under way that neither the realised cost
        nor its route's planned cost (which starts when it leaves its committed stop) counts
        yet: the distance of the leg it drives (charged on arrival) and, once it has left, its
        hours until it is expected to leave its committed stop, or to be home."""
        w = self.world
        leg = self._leg[c]
        cost = 0.0
        if leg is not None:
            cost = w.cost_per_km_cents[c] * float(w.travel.distance_m[leg[0], leg[1]]) / 1000.0
        if self.first_departure_s[c] == self.first_departure_s[c]:
            if self._committed[c] is not None:
                until = self._est_free[c]
            elif leg is not None:  # on its way home
                until = self._est_arrival[c]
            else:
                return cost
            now = self.now
            if until > now:
                cost += self._rates[c].per_hour * (until - now) / 3600.0
        return cost

    def _route_cost(self, c: int) -> float:
        """Planned cost of courier ``c``'s remaining route (remembered per route cache)."""
        cache = self._cache(c)
        hit = self._route_costs.get(c)
        if hit is not None and hit[0] is cache:
            return hit[1]
        cost = route_cost_cents(
            cache,
            distance=self.world.travel.distance_m,
            rates=self._rates[c],
            distance_rows=self._dist_rows,
        )
        self._route_costs[c] = (cache, cost)
        return cost

    def planned_cost_cents(self, c: int, stops: Sequence[Stop] | None = None) -> float:
        """Planned cost of courier ``c``'s remaining route, or of ``stops`` were they its route
        (after its committed stop), priced as quotes price them, with its fixed cost if it
        has not left yet and the penalty of each order it would reach a closed node for."""
        route = self._route[c] if stops is None else tuple(stops)
        if self._never_leaves(c, route):
            return 0.0  # it takes its breaks where it stands: no departure, nothing charged
        if stops is None:
            cache, gone = self._departure_split(c)
        else:
            with self._as_route(c, route):
                cache, gone = self._departure_split(c, memo=False)
        timing, skip = cache, 0  # (the route's times; the stops before the first it times)
        if gone is not None:
            # Timed from its departure after the breaks that open it, at that travel factor
            # (it has not left: its fixed cost too).
            cost = self._cost_from_departure(c, cache, gone) + self._rates_first[c].fixed
            timing, skip = gone[1][0], gone[0]
        else:
            cost = (
                self._route_cost(c)
                if stops is None
                else route_cost_cents(
                    cache,
                    distance=self.world.travel.distance_m,
                    rates=self._rates[c],
                    distance_rows=self._dist_rows,
                )
            )
            if self.first_departure_s[c] != self.first_departure_s[c] and any(
                st.kind != BREAK for st in route
            ):  # not used yet: its first departure costs its fixed cost (as its first quote)
                cost += self._rates_first[c].fixed - self._unpaid_start(c, route, cache)
        lost: set[int] = set()  # expected at a node after it closed for good: parcels lost
        for k, st in enumerate(route):
            if (
                st.kind == PICKUP
                and st.node >= 0
                and timing.start_list[k + 1 - skip] > self._node_final_s[st.node] + 1e-6
            ):
                lost.add(st.order)
        return cost + sum(self.orders.penalty_cents[o] for o in lost)

    def _departure_split(
        self, c: int, *, memo: bool = True
    ) -> tuple[RouteCache, tuple[int, list[Any]] | None]:
        """Courier ``c``'s route cache, and how many breaks open its route before it leaves
        with the split after them (see :meth:`_split`), when the travel factor at its
        departure after them is not the cache's (None: no such breaks, or the same factor,
        where the cache times the route as the twin plays it). ``memo``: keep the split in
        the route's split memo (False for a route tried inside :meth:`_as_route`).

        A courier that has not left takes the breaks that open its route where it stands and
        leaves after them: its route is planned from that departure, at that travel factor,
        as the twin plays its first leg and as :meth:`quote` prices an order put after those
        breaks (until session 71 the planned cost used the factor at ``cache``'s start).
        """
        cache = self._cache(c)
        lead = self._leading_breaks(c)
        if not lead:
            return cache, None
        t = cache.dep_list[lead]
        if not math.isfinite(t) or self.travel_factor(t) == cache.factor:
            return cache, None
        splits = self._split_memo(c, cache) if memo else {}
        return cache, (lead, self._split(c, cache, splits, lead))

    def _cost_from_departure(self, c: int, cache: RouteCache, gone: tuple[int, list[Any]]) -> float:
        """The planned cost of courier ``c``'s route (timed by ``cache``) from its departure
        after the ``gone[0]`` breaks that open it (split ``gone[1]``), plus their lateness,
        as the route's cost counts the lateness of its breaks (no fixed cost)."""
        lead, split = gone
        late = math.fsum(cache.lateness_list[1 : lead + 1])
        cost = self._split_cost(c, split)
        return cost + self._rates[c].lateness_per_min * late / 60.0 if late else cost

    # ------------------------------------------------------------- quoting
    def job_spec(self, o: int) -> JobSpec:
        """The pickup chain and delivery of order ``o`` as an insertion job."""
        job = self._jobs.get(o)
        if job is None:
            job = self._jobs[o] = self._job_spec(o)
        return job

    def _job_spec(self, o: int) -> JobSpec:
        orders = self.orders
        chain_loc: list[int] = []
        chain_earliest: list[float] = []
        chain_latest: list[float] = []
        chain_service: list[float] = []
        if orders.pickup_location[o] >= 0:
            chain_loc.append(orders.pickup_location[o])
            chain_earliest.append(orders.pickup_tw_start[o])
            chain_latest.append(INF)
            chain_service.append(orders.pickup_service_s[o])
        else:
            svc = float(self.params.node_pickup_service_s)
            for n in self.parcel_nodes[o]:
                chain_loc.append(self.world.nodes[n].location)
                chain_earliest.append(self._ready_est.get((o, n), 0.0))
                chain_latest.append(self._node_final_s[n])
                chain_service.append(svc)
        return JobSpec(
            chain_loc=tuple(chain_loc),
            chain_earliest=tuple(chain_earliest),
            chain_latest=tuple(chain_latest),
            chain_service=tuple(chain_service),
            delivery_loc=orders.location[o],
            delivery_earliest=orders.tw_start[o],
            delivery_latest=orders.tw_end[o],
            delivery_service=orders.service_s[o],
            demand=orders.demand[o],
        )

    def _unquotable(self, o: int, c: int) -> Quote | None:
        """Why courier ``c`` cannot take order ``o`` at all (no such courier, off shift, skills
        missing), or None."""
        if not 0 <= c < self._num_vehicles:
            return Quote(False, INF, reason=f"no courier {c}")
        if self._home[c] or self._shift_end_now[c] <= self.env.now:
            return OFF_SHIFT
        skilled = self._skilled(o)
        if skilled is not None and not skilled[c]:
            return NO_SKILL
        return None

    def quote(self, o: int, c: int) -> Quote:
        """Cheapest feasible insertion of pending order ``o`` into courier ``c``'s route."""
        refused = self._unquotable(o, c)
        if refused is not None:
            return refused
        # A quote is a function of the route cache (the route, its anchor, t0, travel factor,
        # loads and the ready estimates of its pickups: see _cache), the order's job spec
        # (its parcels' nodes and ready estimates: rebuilt when they change) and the rates
        # (the fixed cost of an unused courier), the rest being fixed for the day: it is
        # reused while those three are the same objects.
        cache = self._cache(c)
        job = self.job_spec(o)
        rates = self._quote_rates(c)
        memo = self._quotes.get(c)
        if memo is None or memo[0] is not cache:
            memo = self._quotes[c] = (cache, {})
        hit = memo[1].get(o)
        if hit is not None and hit[0] is job and hit[1] is rates:
            return hit[2]
        q = self._quote_fresh(o, c, cache, job, rates)
        memo[1][o] = (job, rates, q)
        return q

    def _quote_fresh(
        self, o: int, c: int, cache: RouteCache, job: JobSpec, rates: CostRates
    ) -> Quote:
        """``quote(o, c)`` on courier ``c``'s current route timed by ``cache`` (uncached)."""
        lead = self._leading_breaks(c)
        if lead:
            return self._quote_before_leaving(o, c, cache, lead)
        w = self.world
        q = quote_insertion(
            cache,
            job,
            capacity=self._capacity_rows[c],
            duration=w.travel.duration_s,
            distance=w.travel.distance_m,
            rates=rates,
            rows=self._rows,
            symmetric=self._symmetric,
            shortcut_s=self._shortcut_s,
        )
        if q.feasible and rates is self._rates_first[c]:
            # An unused courier (no route: it never leaves, costs nothing) is quoted its whole
            # route, as planned_cost_cents prices it: the insertion's cost over its empty route
            # plus that route's, its way home (nonzero when it ends elsewhere than it starts;
            # until session 73 left out).
            empty = route_cost_cents(
                cache,
                distance=w.travel.distance_m,
                rates=self._rates[c],
                distance_rows=self._dist_rows,
            )
            if empty:
                q = dataclasses.replace(q, cost_delta_cents=q.cost_delta_cents + empty)
        return q

    def _quote_rates(self, c: int) -> CostRates:
        """Courier ``c``'s prices for a quote: with its fixed cost while it is unused."""
        if self.first_departure_s[c] != self.first_departure_s[c] and all(
            st.kind == BREAK for st in self._route[c]
        ):  # not used yet (a route holding only breaks leaves no start): its fixed cost too
            return self._rates_first[c]
        return self._rates[c]

    def _leading_breaks(self, c: int, route: Sequence[Stop] | None = None) -> int:
        """How many breaks open courier ``c``'s route (or ``route``) while it has not left yet
        (it takes them where it stands, before its clock starts; 0 once it has left)."""
        if not self._not_left(c):
            return 0
        k = 0
        for st in self._route[c] if route is None else route:
            if st.kind != BREAK:
                break
            k += 1
        return k

    def _unpaid_start(self, c: int, route: Sequence[Stop], cache: RouteCache) -> float:
        """What the route cost of courier ``c``'s ``route`` (timed by ``cache``) counts for
        the time before it leaves, taking the breaks that open it where it stands, which the
        twin does not charge (cents; 0 once it has left)."""
        lead = self._leading_breaks(c, route)
        if not lead:
            return 0.0
        dep = cache.dep_list
        return self._rates[c].per_hour * (dep[lead] - dep[0]) / 3600.0

    def _quote_before_leaving(self, o: int, c: int, cache: RouteCache, lead: int) -> Quote:
        """``quote(o, c)`` for a courier that has not left and whose route opens with
        ``lead`` breaks, taken where it stands before its clock starts.

        With only breaks to take it was to cost nothing: the order costs its fixed cost and
        the whole route it then drives from its departure, as for a courier without a route:
        put after its first ``i`` breaks, the courier takes them where it stands, off the
        clock, and leaves after them (``i`` = 0: it leaves now).
        Otherwise its hours start when it leaves after those breaks: put before its first
        ``i`` of them, the order makes it leave earlier, which costs that much more time.
        Each split ``i`` is quoted on the route from that departure (exact where the order's
        first stop comes first, dearer elsewhere: those places are another split's), and the
        cheapest is the quote.

        The split caches (and their route costs) are kept while ``cache`` is the same object
        (see :meth:`_split_memo`).
        """
        job = self.job_spec(o)
        splits = self._split_memo(c, cache)
        best = NO_ROUTE
        for i in range(lead + 1):
            q = self._quote_split(c, cache, job, splits, lead, i)
            if i == 0 or (
                q.feasible and (not best.feasible or q.cost_delta_cents < best.cost_delta_cents)
            ):
                best = (
                    dataclasses.replace(
                        q, pickup_after=q.pickup_after + i, delivery_after=q.delivery_after + i
                    )
                    if i
                    else q  # (an infeasible one too: its reason)
                )
        return best

    def _stops_memo_for(
        self, c: int, route: Any, anchor: Any, loaded: Any, parcels: Any
    ) -> tuple[Any, ...] | None:
        """Courier ``c``'s kept stop lists if made for ``route`` (the same object) from
        ``anchor`` with these parcels on board, else None."""
        memo = self._stops_memo.get(c)
        if (
            memo is not None
            and memo[0] is route
            and memo[1] == anchor
            and memo[2] == loaded
            and memo[3] == parcels
        ):
            return memo
        return None

    def _split_memo(self, c: int, cache: RouteCache) -> dict[int, list[Any]]:
        """The split caches (and route costs) of courier ``c``'s route timed by ``cache``:
        functions of ``cache``, as the quotes are (see :meth:`quote`), so they are kept while
        it is the same object."""
        memo = self._splits.get(c)
        if memo is None or memo[0] is not cache:
            memo = self._splits[c] = (cache, {})
        return memo[1]

    def _quote_split(
        self,
        c: int,
        cache: RouteCache,
        job: JobSpec,
        splits: dict[int, list[Any]],
        lead: int,
        i: int,
    ) -> Quote:
        """The quote of split ``i`` of :meth:`_quote_before_leaving` (in its own positions);
        the split's cache (and route cost) is put in ``splits``."""
        w = self.world
        split = self._split(c, cache, splits, i)
        if lead == len(self._route[c]):  # its fixed cost and the whole route from its departure
            r = self._rates_first[c]
            extra = r.fixed + self._split_cost(c, split)
        else:  # its hours from an earlier departure
            r = self._rates[c]
            extra = r.per_hour * (cache.dep_list[lead] - cache.dep_list[i]) / 3600.0
            t = cache.dep_list[lead]
            if i < lead and math.isfinite(t) and self.travel_factor(t) != split[0].factor:
                # The route is planned from its departure after its leading breaks, at that
                # travel factor; the order makes it leave earlier, at another: the difference
                # of the two routes' costs, from their departures (the breaks before the later
                # one, taken where it stands, counted by their lateness only, as the planned
                # cost counts them: see _cost_from_departure).
                late = math.fsum(split[0].lateness_list[1 : lead - i + 1])
                last = self._split(c, cache, splits, lead)
                extra = self._split_cost(c, split) - self._split_cost(c, last)
                if late:
                    extra -= r.lateness_per_min * late / 60.0
        # The split's places after its first break are another split's (the courier leaves
        # later): priced here from this departure, they cost more by the hours between, at
        # the same travel factor; at another, they may cost less than they do (the quote
        # would follow a price the twin does not charge): only its own places are quoted.
        dep = cache.dep_list
        f = split[0].factor
        own = any(
            math.isfinite(dep[k]) and self.travel_factor(dep[k]) != f
            for k in range(i + 1, lead + 1)
        )
        return quote_insertion(
            split[0],
            job,
            capacity=self._capacity_rows[c],
            duration=w.travel.duration_s,
            distance=w.travel.distance_m,
            rates=CostRates(r.per_km, r.per_hour, r.lateness_per_min, extra),
            rows=self._rows,
            symmetric=self._symmetric,
            shortcut_s=self._shortcut_s,
            first_only=own,
        )

    def _split(self, c: int, cache: RouteCache, splits: dict[int, list[Any]], i: int) -> list[Any]:
        """Split ``i`` of courier ``c``'s route timed by ``cache``: ``[its cache from the
        departure after its first i breaks, that route's cost or None]``, kept in ``splits``."""
        split = splits.get(i)
        if split is None:
            sub = cache if i == 0 else self._cache_after_breaks(c, cache, i)
            split = splits[i] = [sub, None]
        return split

    def _split_cost(self, c: int, split: list[Any]) -> float:
        """The route cost of a split of courier ``c``'s route (:meth:`_split`; remembered)."""
        if split[1] is None:
            split[1] = route_cost_cents(
                split[0],
                distance=self.world.travel.distance_m,
                rates=self._rates[c],
                distance_rows=self._dist_rows,
            )
        cost: float = split[1]
        return cost

    def _cache_after_breaks(self, c: int, cache: RouteCache, i: int) -> RouteCache:
        """Courier ``c``'s route cache from its departure after the first ``i`` breaks of its
        route (taken where it stands), by ``cache``'s timing."""
        whole = self._route[c]
        route = whole[i:]
        anchor = cache.loc_list[0]
        t0 = cache.dep_list[i]
        loaded, parcels, load0 = self._after_committed(c)
        memo = self._stops_memo_for(c, whole, anchor, loaded, parcels)
        if memo is not None:
            # The whole route's stop lists from the same place with the same parcels on board,
            # less the first i stops: breaks, taken at the anchor, which change no load (what
            # _stop_lists gives for the rest of the route), with the current ready estimates.
            locs, earliest, latest, service, deltas, is_break, ready_keys = memo[4:]
            earliest = earliest[i:]
            ready = self._ready_est
            for k, key in ready_keys:
                if k >= i:
                    earliest[k - i] = ready.get(key, 0.0)
            locs, latest, service, deltas = locs[i:], latest[i:], service[i:], deltas[i:]
            is_break = None if is_break is None else is_break[i:]
        else:
            locs, earliest, latest, service, deltas, is_break, _ = self._stop_lists(
                route, anchor, loaded, parcels
            )
        return self._build_cache(
            c, route, anchor, t0, (locs, earliest, latest, service, deltas, is_break), load0
        )

    def _build_cache(
        self,
        c: int,
        route: Sequence[Stop],
        anchor: int,
        t0: float,
        lists: tuple[
            list[int],
            list[float],
            list[float],
            list[float],
            Sequence[Sequence[float]],
            Sequence[bool] | None,
        ],
        load0: Sequence[float],
    ) -> RouteCache:
        """Courier ``c``'s route cache of ``route`` from ``anchor`` at ``t0``, from its stop
        lists (locations, earliest, latest, service, load deltas, breaks)."""
        locs, earliest, latest, service, deltas, is_break = lists
        if self.params.hold_to_plan and self._plan is not None:
            earliest = [self._held(c, st, e) for e, st in zip(earliest, route, strict=True)]
        w = self.world
        return build_route_cache(
            anchor_loc=anchor,
            t0=t0,
            stop_loc=locs,
            earliest=earliest,
            latest=latest,
            service=service,
            load_delta=deltas,
            load0=load0,
            end_loc=w.vehicle_end_loc[c],
            shift_end_s=w.shift_end_s[c],
            duration=w.travel.duration_s,
            factor=self.travel_factor(t0),
            duration_rows=self._dur_rows,
            is_break=is_break,
            factors=self._travel_factors,
        )

    def _added_breaks_only(self, c: int) -> bool:
        """Whether courier ``c`` never left and has only breaks the twin added to take (one
        holding a plan's break takes it, as before)."""
        first_added = self._num_plan_breaks
        return self._never_leaves(c) and all(st.aux >= first_added for st in self._route[c])

    def _never_leaves(self, c: int, route: Sequence[Stop] | None = None) -> bool:
        """Whether courier ``c`` has not left and (with ``route`` as its route) has nothing
        but driver breaks to take, where it stands: it costs nothing."""
        if route is None:
            route = self._route[c]
        return self._not_left(c) and all(st.kind == BREAK for st in route)

    def _not_left(self, c: int) -> bool:
        """Whether courier ``c`` has not left its start yet and is at most taking a break
        there (committed to nothing else)."""
        committed = self._committed[c]
        return self.first_departure_s[c] != self.first_departure_s[c] and (
            committed is None or committed.kind == BREAK
        )

    def quote_on(self, o: int, c: int, stops: Sequence[Stop]) -> Quote:
        """Cheapest feasible insertion of pending order ``o`` into ``stops`` were they courier
        ``c``'s remaining route (as :meth:`quote`, uncached)."""
        refused = self._unquotable(o, c)
        if refused is not None:
            return refused
        if tuple(stops) == self._route[c]:
            return self.quote(o, c)
        with self._as_route(c, stops):
            return self._quote_fresh(o, c, self._cache(c), self.job_spec(o), self._quote_rates(c))

    def with_order(self, o: int, stops: Sequence[Stop], q: Quote) -> tuple[Stop, ...]:
        """``stops`` with pending order ``o``'s pickups and delivery inserted where quote
        ``q`` (of ``o`` on ``stops``) puts them."""
        route = list(stops)
        i, j = q.pickup_after, q.delivery_after
        delivery = Stop(DELIVERY, o, self.orders.location[o])
        return (*route[:i], *self._pickup_stops(o), *route[i:j], delivery, *route[j:])

    def quote_many(self, o: int, couriers: Iterable[int]) -> list[Quote]:
        """Quotes of order ``o`` for several couriers."""
        return [self.quote(o, c) for c in couriers]

    def can_append(self, o: int, c: int) -> bool:
        """O(1) sufficient test: order ``o`` fits at the end of courier ``c``'s route.

        True implies ``quote(o, c).feasible`` (appending is one of the positions the quote
        considers), so it is a cheap, conservative action mask.
        """
        w = self.world
        if self._unquotable(o, c) is not None:
            return False
        cache = self._cache(c)
        job = self.job_spec(o)
        dur = w.travel.duration_s
        f = cache.factor
        locs = cache.loc_list
        m = len(locs) - 2
        last = locs[m]
        t = cache.dep_list[m]
        for e, loc in enumerate(job.chain_loc):
            t += float(dur[last, loc]) * f
            ce = job.chain_earliest[e]
            t = t if t >= ce else ce
            if t > job.latest(e) + 1e-6:
                return False
            t += job.chain_service[e]
            last = loc
        t += float(dur[last, job.delivery_loc]) * f
        if t < job.delivery_earliest:
            t = job.delivery_earliest
        if cache.steps is not None:  # the way home at the factor when it leaves (as quotes)
            t += job.delivery_service
            t += float(dur[job.delivery_loc, locs[m + 1]]) * cache.steps.at(t)
        else:
            t += job.delivery_service + float(dur[job.delivery_loc, locs[m + 1]]) * f
        if t - cache.arr_list[m + 1] > cache.max_delay_list[m + 1] + 1e-6:
            return False
        cap = w.capacity[c]
        cols = cache.load_cols
        return all(cols[k][m] + job.demand[k] <= cap[k] + 1e-6 for k in range(len(job.demand)))

    def action_mask(
        self, o: int, couriers: Iterable[int], *, exact: bool = False
    ) -> NDArray[np.bool_]:
        """Which couriers can take order ``o``: exact quotes, or the O(1) append test."""
        if exact:
            return np.array([self.quote(o, int(c)).feasible for c in couriers], dtype=bool)
        return np.array([self.can_append(o, int(c)) for c in couriers], dtype=bool)

    def _cache(self, c: int) -> RouteCache:
        hit = self._caches.get(c)
        version = self._version[c]
        ready_version = self._ready_version
        if (
            hit is not None
            and hit[0] == version
            and hit[3] == self._num_steps
            and hit[4][0] == ready_version
        ):
            return hit[2]  # no SimPy event ran since: same time, same anchor, same estimates
        now = self.now
        w = self.world
        committed = self._committed[c]
        if committed is not None:  # a break is taken where the courier is
            where = self.loc[c] if committed.kind == BREAK else committed.location
            anchor, t0 = where, max(now, self._est_free[c])
        else:
            anchor, t0 = self.loc[c], max(now, w.shift_start_s[c])
        if hit is not None and hit[0] == version and hit[1] == t0:
            # Same route from the same place and time: only a ready estimate of one of its
            # node pickups may have changed since (a parcel ready earlier or later than
            # expected while the courier drives on, or lost) - then it is rebuilt.
            stamp = hit[4]
            ready = self._ready_est
            if stamp[0] == ready_version or all(ready.get(key, 0.0) == e for key, e in stamp[1]):
                self._caches[c] = (version, t0, hit[2], self._num_steps, (ready_version, stamp[1]))
                return hit[2]
        route = self._route[c]
        loaded, parcels, load0 = self._after_committed(c)
        memo = self._stops_memo_for(c, route, anchor, loaded, parcels)
        if memo is not None:
            # The same stops from the same place with the same parcels on board (only the
            # time moved on): only the pickups' ready estimates may have changed.
            locs, earliest, latest, service, deltas, is_break, ready_keys = memo[4:]
            if ready_keys:
                ready = self._ready_est
                earliest = earliest[:]
                for k, key in ready_keys:
                    earliest[k] = ready.get(key, 0.0)
        else:
            stops = self._stop_lists(route, anchor, loaded, parcels)
            locs, earliest, latest, service, deltas, is_break, ready_keys = stops
            self._stops_memo[c] = (route, anchor, dict(loaded), frozenset(parcels), *stops)
        stamp = (ready_version, tuple((key, earliest[k]) for k, key in ready_keys))
        cache = self._build_cache(
            c, route, anchor, t0, (locs, earliest, latest, service, deltas, is_break), load0
        )
        self._caches[c] = (version, t0, cache, self._num_steps, stamp)
        return cache

    def _stop_lists(
        self,
        route: tuple[Stop, ...],
        anchor: int,
        loaded: dict[int, tuple[float, ...]],
        parcels: set[tuple[int, int]],
    ) -> tuple[
        list[int],
        list[float],
        list[float],
        list[float],
        list[tuple[float, ...]],
        list[bool] | None,
        list[tuple[int, tuple[int, int]]],
    ]:
        """Locations, earliest and latest starts, service times, load changes and break flags
        of ``route``'s stops, and where each node pickup's ready estimate sits in ``earliest``."""
        w = self.world
        orders = self.orders
        locs: list[int] = []
        earliest: list[float] = []
        latest: list[float] = []
        service: list[float] = []
        deltas: list[tuple[float, ...]] = []
        ready_keys: list[tuple[int, tuple[int, int]]] = []
        zero = (0.0,) * w.num_dims
        if route:  # copies: the loop below updates them
            loaded, parcels = dict(loaded), set(parcels)
        node_svc = float(self.params.node_pickup_service_s)
        for st in route:
            o = st.order
            # A break is taken where the courier is (after the stop before it), no travel.
            locs.append((locs[-1] if locs else anchor) if st.kind == BREAK else st.location)
            if st.kind == DELIVERY:
                earliest.append(orders.tw_start[o])
                latest.append(orders.tw_end[o])
                service.append(orders.service_s[o])
                taken = loaded.pop(o, None)
                deltas.append(tuple([-x for x in taken]) if taken is not None else zero)
            elif st.kind == PICKUP:
                if st.node >= 0:
                    ready_keys.append((len(earliest), (o, st.node)))
                    earliest.append(self._ready_est.get((o, st.node), 0.0))
                    service.append(node_svc)
                    latest.append(self._node_final_s[st.node])
                else:
                    earliest.append(orders.pickup_tw_start[o])
                    service.append(orders.pickup_service_s[o])
                    latest.append(INF)
                deltas.append(self._pickup_load(o, st.node, loaded, parcels) or zero)
            else:
                b_start, b_latest, b_dur = self._breaks[st.aux]
                earliest.append(b_start)
                latest.append(b_latest)
                service.append(b_dur)
                deltas.append(zero)
        # (None without a plan or breaks, as before breaks came without a plan: same caches)
        is_break = (
            [st.kind == BREAK for st in route] if self._plan is not None or self._breaks else None
        )
        return locs, earliest, latest, service, deltas, is_break, ready_keys

    def travel_factor(self, t: float) -> float:
        """``world.travel_factor(t)`` (remembered for the day)."""
        f = self._factors.get(t)
        if f is None:
            f = self._factors[t] = self.world.travel_factor(t)
        return f

    def order_status(self, o: int) -> OrderStatus:
        """Where order ``o`` is in its life."""
        return OrderStatus(self.status[o])

    def ready_estimate(self, o: int, n: int) -> float:
        """Expected time the parcel of order ``o`` at node ``n`` is ready (actual once ready)."""
        if n < 0:
            return self.orders.pickup_tw_start[o]
        return self._ready_est.get((o, n), INF)

    def break_window(self, b: int) -> tuple[float, float, float]:
        """Break ``b``'s (the ``aux`` of its stop) earliest start, latest start and duration."""
        if not 0 <= b < len(self._breaks):
            raise IndexError(f"no break {b}")
        return self._breaks[b]

    def first_departure(self, c: int) -> float:
        """When courier ``c`` first left (NaN if it has not worked yet)."""
        return self.first_departure_s[c]

    def unused(self, c: int) -> bool:
        """Whether courier ``c`` is not used yet: it has not left and has nothing but driver
        breaks to take (its quotes carry its fixed cost)."""
        return self._never_leaves(c)

    def expected_after(self, c: int, stops: Sequence[Stop]) -> tuple[int, float]:
        """Where and when courier ``c`` is expected to be after its committed stop and ``stops``."""
        saved = self._route[c]
        self._route[c] = tuple(stops)
        self._version[c] += 1
        try:
            cache = self._cache(c)
        finally:
            self._route[c] = saved
            self._version[c] += 1
        m = cache.num_stops
        return cache.loc_list[m], cache.dep_list[m]

    def route_end_s(self, c: int) -> float:
        """Expected time courier ``c`` is home after its remaining route."""
        return self._cache(c).end_s

    def way_home(self, c: int) -> tuple[int, int, float]:
        """Courier ``c``'s way home after its remaining route as its planned cost prices it:
        where it leaves from, where it ends, and the travel time counted for it (s)."""
        cache, gone = self._departure_split(c)
        timing = cache if gone is None else gone[1][0]
        m = timing.num_stops
        return timing.loc_list[m], timing.loc_list[m + 1], timing.end_s - timing.dep_list[m]

    def last_departure_s(self, c: int) -> float:
        """Expected time courier ``c`` leaves the last stop of its remaining route (its
        committed stop, or where it is, without one), before its way home."""
        cache = self._cache(c)
        return cache.dep_list[cache.num_stops]

    # --------------------------------------------------------------- apply
    def apply(self, action: Action | Sequence[Action] | None) -> ApplyResult:
        """Apply one action or a sequence of actions at the current time."""
        if self._finished:
            raise RuntimeError("the day is over")
        actions: Sequence[Action]
        if action is None:
            actions = ()
        elif isinstance(action, Assign | Postpone | ReplaceRoutes):
            actions = (action,)
        else:
            actions = action
        assigned: list[int] = []
        postponed: list[int] = []
        rejected: list[tuple[int, str]] = []
        delta = 0.0
        for act in actions:
            if isinstance(act, Assign):
                ok, why, cost = self._assign(act)
                if ok:
                    assigned.append(act.order)
                    delta += cost
                else:
                    rejected.append((act.order, why))
            elif isinstance(act, Postpone):
                postponed.append(act.order)
                if act.until_s is not None:
                    self._snooze[act.order] = act.until_s
            elif isinstance(act, ReplaceRoutes):
                errors = self._replace(act)
                rejected.extend(errors)
            else:
                raise TypeError(f"not an action: {act!r}")
        self._maybe_close()
        return ApplyResult(tuple(assigned), tuple(postponed), tuple(rejected), delta)

    def _assign(self, act: Assign) -> tuple[bool, str, float]:
        o, c = act.order, act.courier
        if not 0 <= o < len(self.status) or self.status[o] != S_PENDING:
            return False, "order is not pending", 0.0
        q = self.quote(o, c)
        if not q.feasible:
            return False, q.reason, 0.0
        # The route without o, its cache and o's quote on it (see _resequence).
        before = (o, self._route[c], self._caches[c], q)
        self._set_route(c, self.with_order(o, self._route[c], q))
        self.status[o] = S_ASSIGNED
        self.courier_of[o] = c
        del self._pending[o]
        self._pending_version += 1
        if act.resequence:
            self._resequence(c, before)  # (the cache quote just checked is fresh)
        self._wake_courier(c)
        return True, "", q.cost_delta_cents

    def _pickup_stops(self, o: int) -> list[Stop]:
        orders = self.orders
        if orders.pickup_location[o] >= 0:
            return [Stop(PICKUP, o, orders.pickup_location[o])]
        return [Stop(PICKUP, o, self.world.nodes[n].location, n) for n in self.parcel_nodes[o]]

    def _first_pickup_loc(self, o: int) -> int:
        if self.orders.pickup_location[o] >= 0:
            return self.orders.pickup_location[o]
        nodes = self.parcel_nodes[o]
        return self.world.nodes[nodes[0]].location if nodes else self.orders.location[o]

    def pickup_stops(self, o: int) -> tuple[Stop, ...]:
        """The pickup stops order ``o`` needs (empty once its parcels are on board)."""
        if self.status[o] == S_CARRIED:
            return ()
        return tuple(self._pickup_stops(o))

    def _set_route(self, c: int, route: tuple[Stop, ...]) -> None:
        self._route[c] = route
        self._a_nstops[c] = len(route)
        self._version[c] += 1

    def _resequence(
        self,
        c: int,
        known: tuple[int, tuple[Stop, ...], _CacheEntry, Quote] | None = None,
    ) -> None:
        """One pass of relocating each not-yet-collected order of the route to its best place.

        Each order goes where its quote on the route without it puts it when that lowers the
        route's planned cost (:meth:`planned_cost_cents`) by more than a cent. (Until session
        72 the test added the quote to the route costs of the cache, which differ from the
        planned cost, the basis of quotes, for a courier yet to leave: its standing before
        its breaks, its fixed cost, the travel factor at its departure after them; and a quote
        is only an upper bound on a route with late stops: improvements were refused and
        dearer routes taken.)

        ``known``: the order just assigned, the route before, that route's cache (checked at
        this time, with the current ready estimates) and the order's quote on it: when taking
        the order out gives that route again, they are exactly what building the cache and
        quoting would give, so they are reused.
        """
        committed = self._committed[c]
        movable = [
            st.order
            for st in self._route[c]
            if st.kind == DELIVERY
            and self.status[st.order] == S_ASSIGNED
            and (committed is None or committed.order != st.order)
        ]
        for o in movable:
            before = self.planned_cost_cents(c)
            kept = self._caches[c], self._route_costs.get(c)
            old = self._route[c]
            self._set_route(c, tuple(st for st in old if st.order != o))
            if known is not None and o == known[0] and self._route[c] == known[1]:
                _, t0, cache, _, stamp = known[2]
                self._caches[c] = (self._version[c], t0, cache, self._num_steps, stamp)
                memo = (cache, {o: (self.job_spec(o), self._quote_rates(c), known[3])})
                self._quotes[c] = memo
            self.status[o] = S_PENDING
            q = self.quote(o, c)
            self.status[o] = S_ASSIGNED
            new = self.with_order(o, self._route[c], q) if q.feasible else old
            if new != old:
                self._set_route(c, new)
                if self.planned_cost_cents(c) < before - 1.0:
                    continue  # (its cache and route cost serve the next order's `before`)
            self._set_route(c, old)
            # Nothing but the route changed since `before`: its cache is still exact.
            _, t0, cache, _, stamp = kept[0]
            self._caches[c] = (self._version[c], t0, cache, self._num_steps, stamp)
            if kept[1] is not None:
                self._route_costs[c] = kept[1]

    def _replace(self, act: ReplaceRoutes) -> list[tuple[int, str]]:
        """Validate and install new routes; returns (order, reason) for every problem."""
        w = self.world
        errors: list[tuple[int, str]] = []
        listed = {int(c) for c in act.routes}
        new_owner: dict[int, int] = {}
        for c, stops in act.routes.items():
            if not 0 <= c < w.num_vehicles:
                return [(-1, f"no courier {c}")]
            # Off shift (past its shift end, or gone home): like Assign, no new work for it. It
            # may keep the stops it has (reordered, or some dropped), not take up others.
            off = self._off_shift(c)
            own = {_stop_key(st) for st in self._route[c]} if off else set()
            # A break is the courier's own: it keeps every break its route has (moved within the
            # route at will: the twin gives a break an earliest start only, as Assign does),
            # and takes none it does not have (another courier's, one taken, or unknown).
            breaks = {st.aux: st for st in self._route[c] if st.kind == BREAK}
            kept: set[int] = set()
            picked: dict[int, set[int]] = {}  # nodes each order is collected at on the route
            unreleased: dict[int, set[tuple[int, ...]]] = {}  # stops an unreleased order has
            seen_unreleased: set[Stop] = set()
            delivered: set[int] = set()
            for st in stops:
                o = st.order
                if off and _stop_key(st) not in own:
                    return [(o, off)]
                if st.kind == BREAK:
                    if st.aux not in breaks:
                        why = f"courier {c} has no break {st.aux} (a re-plan adds no break)"
                        return [(-1, why)]
                    if breaks[st.aux] != st:
                        why = f"break {st.aux} of courier {c} is not the stop its route has"
                        return [(-1, why)]
                    if st.aux in kept:
                        return [(-1, f"break {st.aux} is on courier {c}'s route twice")]
                    kept.add(st.aux)
                    continue
                if not 0 <= o < len(self.status):
                    return [(o, "unknown order")]
                s = self.status[o]
                if s == S_UNKNOWN:
                    # Not released yet: a plan made before its release has it on a route. It
                    # may keep the stops that route has (moved within it, or dropped together:
                    # it is then pending at its release), nothing else before its release.
                    if tuple(st) not in unreleased.setdefault(o, self._unreleased_stops(c, o)):
                        return [
                            (o, "order is not released yet (a re-plan may only keep its stops)")
                        ]
                    if new_owner.setdefault(o, c) != c:
                        return [(o, "order is on two routes")]
                    if st in seen_unreleased:
                        return [
                            (o, "order is not released yet (a re-plan may only keep its stops)")
                        ]
                    seen_unreleased.add(st)
                    continue
                if s in (S_DELIVERED, S_FAILED, S_UNFILLED, S_UNSERVED):
                    return [(o, f"order is {OrderStatus(s).name.lower()}")]
                if s in (S_ASSIGNED, S_CARRIED) and self.courier_of[o] not in listed:
                    return [(o, "order belongs to a courier whose route is not replaced")]
                if s == S_CARRIED and self.courier_of[o] != c:
                    return [(o, "parcel is on board another courier")]
                if new_owner.setdefault(o, c) != c:
                    return [(o, "order is on two routes")]
                skilled = self._skilled(o)
                if self.courier_of[o] != c and skilled is not None and not skilled[c]:
                    # a new order for c: its skills, as with Assign
                    need = ", ".join(sorted(self.orders.skills[o] - w.vehicle_skills[c]))
                    return [(o, f"courier {c} lacks a required skill ({need})")]
                # A stop the twin can serve: one of the order's pickups, or its delivery.
                if st.kind == PICKUP:
                    if tuple(st) not in map(tuple, self._pickup_stops(o)):
                        return [(o, "no parcel of the order to collect at this stop")]
                    if o in delivered:
                        return [(o, "pickup after delivery")]
                    picked.setdefault(o, set()).add(st.node)
                elif st.kind == DELIVERY:
                    if tuple(st) != (DELIVERY, o, self.orders.location[o], -1, -1):
                        return [(o, "delivery not at the order's location")]
                    if o in delivered:
                        return [(o, "two deliveries of the order")]
                    if self._to_collect(c, o) - picked.get(o, set()):
                        return [(o, "delivery before pickup")]
                    delivered.add(o)
                else:
                    return [(o, f"unknown stop kind {st.kind}")]
            for o in picked:
                if o not in delivered:
                    return [(o, "pickup without delivery")]
            for o, had in unreleased.items():
                kept_stops = [st for st in stops if st.order == o and st.kind != BREAK]
                if {tuple(st) for st in kept_stops} != had:  # all its stops, or none
                    why = "order is not released yet (a re-plan keeps all its stops or none)"
                    return [(o, why)]
                if [st.kind for st in kept_stops] != [
                    x.kind for x in self._route[c] if x.order == o and x.kind != BREAK
                ]:
                    return [(o, "order is not released yet (its pickups stay before its delivery)")]
            if len(kept) < len(breaks):
                gone = min(set(breaks) - kept)
                return [(-1, f"courier {c}'s break {gone} is missing (a break stays on its route)")]
            if tuple(stops) != self._route[c]:  # an unchanged route is left as it is
                over = self._overload(c, stops)
                if over is not None:
                    return [over]
                late = self._too_late(c, stops)
                if late is not None:
                    return [late]
        # Every parcel on board a listed courier must stay there.
        for c in listed:
            for o in self._loaded[c]:
                committed = self._committed[c]
                if (
                    self.status[o] == S_CARRIED
                    and new_owner.get(o) != c
                    and not (
                        committed is not None
                        and committed.kind == DELIVERY
                        and committed.order == o
                    )
                ):
                    return [(o, "an order on board must keep its delivery")]
        for c in listed:
            for st in self._route[c]:
                if st.kind == BREAK:
                    continue
                o = st.order
                if o not in new_owner and self.status[o] == S_ASSIGNED:
                    committed = self._committed[c]
                    if committed is not None and committed.order == o:
                        continue
                    self.status[o] = S_PENDING
                    self.courier_of[o] = -1
                    self._pending[o] = None
                    self._pending_version += 1
        for c, stops in act.routes.items():
            self._set_route(c, tuple(Stop(*st) for st in stops))
            for st in stops:
                o = st.order
                if st.kind != BREAK and self.status[o] == S_PENDING:
                    self.status[o] = S_ASSIGNED
                    self._pending.pop(o, None)
                    self._pending_version += 1
                if st.kind != BREAK and self.status[o] != S_UNKNOWN:  # (set at its release)
                    self.courier_of[o] = c
            self._wake_courier(c)
        return errors

    def _unreleased_stops(self, c: int, o: int) -> set[tuple[int, ...]]:
        """The stops courier ``c``'s route has of order ``o``, not released yet (a plan's)."""
        return {tuple(st) for st in self._route[c] if st.order == o and st.kind != BREAK}

    def _to_collect(self, c: int, o: int) -> set[int]:
        """The nodes (-1: its own pickup) courier ``c`` has still to collect order ``o`` at
        before delivering it: none of its parcels on board, nor the one being collected (a
        parcel on board at node -1 is all of them: a planned route's load at its start)."""
        nodes = {st.node for st in self._pickup_stops(o)}
        on_board = {n for k, n in self._carried[c] if k == o}
        if not nodes or -1 in on_board:
            return set()
        nodes -= on_board
        committed = self._committed[c]
        if committed is not None and committed.kind == PICKUP and committed.order == o:
            nodes.discard(committed.node)
        return nodes

    def _after_committed(
        self, c: int
    ) -> tuple[dict[int, tuple[float, ...]], set[tuple[int, int]], list[float]]:
        """The load each order on board courier ``c`` takes, the parcels on board and the
        courier's load once its committed stop is done: a pickup's parcel on board, a
        delivery's handed over (the dict and set may be the courier's own: copy them before
        changing them)."""
        loaded = self._loaded[c]
        parcels = self._carried[c]
        load: list[float] = self._load[c].tolist()
        committed = self._committed[c]
        if committed is None or committed.kind == BREAK:
            return loaded, parcels, load
        o = committed.order
        if committed.kind == PICKUP:
            loaded, parcels = dict(loaded), set(parcels)
            add = self._pickup_load(o, committed.node, loaded, parcels)
            if add is not None:
                load = [x + q for x, q in zip(load, add, strict=True)]
            return loaded, parcels, load
        if committed.kind == DELIVERY and o in loaded:
            loaded = dict(loaded)
            taken = loaded.pop(o)
            return loaded, parcels, [x - q for x, q in zip(load, taken, strict=True)]
        return loaded, parcels, load

    def _pickup_load(
        self,
        o: int,
        node: int,
        loaded: dict[int, tuple[float, ...]],
        parcels: set[tuple[int, int]],
    ) -> tuple[float, ...] | None:
        """The load a pickup of order ``o`` at ``node`` puts on board (None: none), recorded
        in ``loaded`` and ``parcels``: the parcel's share of the demand for an order shipped
        from several nodes, else the whole demand with its first pickup."""
        share = self._shares.get((o, node))
        if share is None:
            if o in loaded:
                return None
            loaded[o] = self.orders.demand[o]
            return loaded[o]
        if (o, node) in parcels:
            return None
        parcels.add((o, node))
        had = loaded.get(o)
        loaded[o] = share if had is None else tuple(a + b for a, b in zip(had, share, strict=True))
        return share

    def _overload(self, c: int, stops: Sequence[Stop]) -> tuple[int, str] | None:
        """The first pickup of ``stops`` after which courier ``c`` would carry more than its
        capacity, with why (None if the load fits all along).

        The load is what ``c`` will carry: the parcels on board (less the one its committed
        delivery hands over, plus the one its committed pickup collects), then each order's
        demand from its first pickup on the route to its delivery, in route order.
        """
        cap = self._capacity_rows[c]
        after, on_board, load = self._after_committed(c)
        loaded, parcels = dict(after), set(on_board)  # copies: the loop below updates them
        for st in stops:
            o = st.order
            add = self._pickup_load(o, st.node, loaded, parcels) if st.kind == PICKUP else None
            if add is not None:
                load = [x + q for x, q in zip(load, add, strict=True)]
                for k, q in enumerate(add):
                    if q > 0 and load[k] > cap[k] + 1e-6:
                        dim = self.world.scenario.capacity_dims[k]
                        return o, (
                            f"courier {c} would carry more than its capacity after this pickup "
                            f"({dim}: {load[k]:g} > {cap[k]:g})"
                        )
            elif st.kind == DELIVERY and o in loaded:
                taken = loaded.pop(o)
                load = [x - q for x, q in zip(load, taken, strict=True)]
        return None

    def _schedule(self, c: int, stops: Sequence[Stop]) -> RouteCache:
        """Courier ``c``'s expected timing (route cache) were ``stops`` its remaining route."""
        with self._as_route(c, stops):
            return self._cache(c)

    @contextlib.contextmanager
    def _as_route(self, c: int, stops: Sequence[Stop]) -> Iterator[None]:
        """Courier ``c``'s remaining route is ``stops`` inside the block (its caches too)."""
        saved = self._route[c]
        self._route[c] = tuple(stops)
        self._version[c] += 1
        try:
            yield
        finally:
            self._route[c] = saved
            self._version[c] += 1

    def _too_late(self, c: int, stops: Sequence[Stop]) -> tuple[int, str] | None:
        """The first hard time limit courier ``c``'s route ``stops`` would break that its
        current route keeps, with why (None if there is none).

        The limits ``Assign`` keeps besides the order's own window (soft, priced): a break
        starts by its latest start, a node's parcel is collected before the node closes for
        good, the courier is home by its shift end; in expected times (no noise), as quoted.
        One the current route already breaks may stay broken (a re-plan may not always mend
        it).
        """
        now_starts, now_end = self._expected_starts(c)
        with self._as_route(c, stops):
            new_starts, new_end = self._expected_starts(c, memo=False)
        eps = 1e-6
        late_now: set[tuple[int, ...]] = set()  # limits the current route breaks
        for k, st in enumerate(self._route[c]):
            if now_starts[k] > self._hard_latest(st) + eps:
                late_now.add(_stop_key_full(st))
        for k, st in enumerate(stops):
            latest = self._hard_latest(st)
            start = new_starts[k]
            if start <= latest + eps:
                continue
            if _stop_key_full(st) in late_now:
                continue  # late already
            if st.kind == BREAK:
                return -1, (
                    f"courier {c}'s break {st.aux} would start at {start:.0f} s, after its "
                    f"latest start {latest:.0f} s"
                )
            node = self.world.nodes[st.node].id
            return st.order, (
                f"courier {c} would reach node {node} at {start:.0f} s, after it closes for "
                f"good ({latest:.0f} s)"
            )
        end = self._shift_end_now[c]
        if new_end > end + eps and now_end <= end + eps:
            return -1, (
                f"courier {c} would be home at {new_end:.0f} s, after its shift end {end:.0f} s"
            )
        return None

    def _expected_starts(self, c: int, *, memo: bool = True) -> tuple[list[float], float]:
        """The expected start of each stop of courier ``c``'s remaining route and the time it
        would be home, as the twin plays the route (no noise) and its planned cost times it.

        A courier standing before the breaks that open its route takes them where it stands
        and leaves after them, at the travel factor then (see :meth:`_departure_split`); its
        route cache times the whole route at the factor at its start (until session 71,
        ``ReplaceRoutes``' time checks used that). ``memo``: keep the split in the route's
        split memo (False for a route tried inside :meth:`_as_route`).
        """
        cache, gone = self._departure_split(c, memo=memo)
        n = len(self._route[c])
        if gone is None:
            return [cache.start_list[k + 1] for k in range(n)], cache.end_s
        lead, split = gone
        after: RouteCache = split[0]
        starts = [cache.start_list[k + 1] for k in range(lead)]
        starts += [after.start_list[k + 1 - lead] for k in range(lead, n)]
        return starts, after.end_s

    def _hard_latest(self, st: Stop) -> float:
        """The latest start of a stop that ``Assign`` never exceeds (INF: none, or soft)."""
        if st.kind == BREAK:
            return self._breaks[st.aux][1]
        if st.kind == PICKUP and st.node >= 0:
            return self._node_final_s[st.node]
        return INF

    def _off_shift(self, c: int) -> str:
        """Why courier ``c`` takes no new work ("" if it is on shift)."""
        if self._home[c]:
            return f"courier {c} is off shift (gone home)"
        if self._shift_end_now[c] <= self.now:
            return f"courier {c} is off shift"
        return ""

    def _standing_at_break(self, c: int) -> bool:
        """Whether courier ``c`` stands waiting for the window of the break first in its route
        to open (free: nothing committed, the break still changeable)."""
        route = self._route[c]
        return self._standing[c] and bool(route) and route[0].kind == BREAK

    def _wake_courier(self, c: int) -> None:
        ev = self._wake[c]
        if ev is not None and not ev.triggered and self._route[c]:
            self._wake[c] = None
            ev.succeed()

    # ------------------------------------------------------- processes
    def _log_event(self, kind: str, courier: int, order: int) -> None:
        self.events.append((float(self.env.now), kind, courier, order))

    def _releases(self) -> SimGen:
        env = self.env
        created = self.orders.created_s
        start = self.world.horizon_start_s
        order = sorted(range(len(created)), key=lambda o: (max(created[o], start), o))
        for o in order:
            t = max(created[o], start)
            if t > env.now:
                yield env.timeout(t - env.now)
            self._release(o)
        self._released_all = True
        self._maybe_close()

    def _release(self, o: int) -> None:
        self._num_released += 1
        self.released_s[o] = self.now
        released = self._release_ev.pop(o, None)
        if released is not None:  # a planned route loaded at its start waits for it (resumes
            released.succeed()  # after this release: SimPy runs the waiter as a later event)
        if self._log:
            self._log_event("release", -1, o)
        if not self._alloc_nodes and self.orders.pickup_location[o] < 0:
            # No node and no vehicle (so no virtual depot either): nobody can pick or carry
            # the order. It is unserved, at its penalty, as with nodes but no vehicles.
            self.status[o] = S_UNSERVED
            return
        parcels = self._allocate(o)
        if parcels is None:
            self.status[o] = S_UNFILLED
            self._unplan(o)
            return
        self.parcel_nodes[o] = list(parcels)
        if len(parcels) > 1:  # each parcel carries its share of the demand, by units
            units = [sum(qty for _k, _sku, qty, _short in lines) for lines in parcels.values()]
            demand = [round(x) for x in self.orders.demand[o]]
            for n, share in zip(parcels, split_demand(demand, units), strict=True):
                self._shares[(o, n)] = tuple(float(x) for x in share)
            # A route planned with the order's pickups loads each parcel's share from now on
            # (its whole demand at its first pickup until now): its remembered stop lists,
            # route cache and quotes are stale.
            for c, route in enumerate(self._route):
                if any(st.order == o for st in route):
                    self._stops_memo.pop(c, None)
                    self._version[c] += 1
        self._jobs.pop(o, None)
        self._ready_version += 1
        self.parcels_left[o] = max(1, len(parcels))
        orders = self.orders
        for n, lines in parcels.items():
            self._parcel_lines[(o, n)] = lines
            node = self.world.nodes[n]
            if node.virtual:
                self._ready_at[(o, n)] = self.now
                self._ready_est[(o, n)] = self.now
                self._lines_filled[o] += len(lines)  # no stock modelled: every line ships
            else:
                self._picks_left[o] += 1
                queue = len(self._pickers[n].queue) + self._pickers[n].count
                wait = max(0, queue - node.pickers + 1) * self._mean_pick_s[n] / node.pickers
                self._ready_est[(o, n)] = (
                    node.available_from(self.now)
                    + wait
                    + node.pick_time_s_per_line * len(lines)
                    + node.pack_time_s_per_order
                )
                self.env.process(self._pick(o, n))
        plan = self._plan
        if plan is not None and o in plan.courier_of and self._on_route(o, plan.courier_of[o]):
            c = plan.courier_of[o]
            # loaded at its route's start already (a virtual depot's parcel is ready at the
            # release, so one released then was boarded first): on board, not to be collected
            self.status[o] = S_CARRIED if o in self._loaded[c] else S_ASSIGNED
            self.courier_of[o] = c
        elif orders.pickup_location[o] < 0 and not parcels:
            self.status[o] = S_UNFILLED
            self._unplan(o)
        else:
            self.status[o] = S_PENDING
            self._pending[o] = None
            self._pending_version += 1
            if self.params.decide_on_arrival:
                self._decisions.append((int(DecisionKind.ARRIVAL), o, -1))

    def _unplan(self, o: int) -> None:
        """Take order ``o``, unfilled at its release, off its planned route (nothing to carry)."""
        plan = self._plan
        c = plan.courier_of.get(o, -1) if plan is not None else -1
        committed = self._committed[c] if c >= 0 else None
        if c >= 0 and self._on_route(o, c) and not (committed is not None and committed.order == o):
            self._drop(c, o, S_UNFILLED)

    def _on_route(self, o: int, c: int) -> bool:
        """Whether courier ``c`` still has a stop of order ``o`` (a policy may have taken the
        planned stops of an unreleased order away with ``ReplaceRoutes``)."""
        committed = self._committed[c]
        if committed is not None and committed.order == o:
            return True
        return any(st.order == o and st.kind != BREAK for st in self._route[c])

    def _allocate(self, o: int) -> dict[int, list[ParcelLine]] | None:
        """Parcels per node for order ``o`` (None if nothing can be filled)."""
        w = self.world
        orders = self.orders
        if orders.pickup_location[o] >= 0:
            return {}  # pickup-and-delivery job: nothing to pick at a node
        lines = orders.lines[o]
        plan = self._plan
        stock = self._stock_left
        out: dict[int, list[ParcelLine]] = {}
        base = o if o < self.num_base_orders else -1
        if plan is not None and base >= 0 and (base in plan.alloc or base in plan.pickup_nodes):
            by_node = plan.alloc.get(base)
            if by_node is None:
                nodes = plan.pickup_nodes[base]
                by_node = {nodes[0]: [(sku, q) for sku, q in lines]}
                for n in nodes[1:]:
                    by_node.setdefault(n, [])
            used_lines: set[int] = set()
            for n, allocated in by_node.items():
                out[n] = []
                for sku, qty in allocated:
                    line_no = next(
                        (k for k, (s, _) in enumerate(lines) if s == sku and k not in used_lines),
                        len(lines),
                    )
                    used_lines.add(line_no)
                    have = stock[n][sku] if w.stock_modelled else qty
                    if have >= qty:
                        if w.stock_modelled:
                            stock[n][sku] -= qty
                        out[n].append((line_no, sku, qty, False))
                        continue
                    # Short: the node ships what it has; the rest is re-sourced at pick, or
                    # unfilled (the units it has are not taken off its shelf and lost).
                    stock[n][sku] = 0
                    if have > 0:
                        out[n].append((line_no, sku, have, False))
                    out[n].append((line_no, sku, qty - have, True))
                self._node_orders[n] += 1
            if base in plan.alloc:
                # An order line the plan's allocation leaves (partly) uncovered is unfilled, as
                # when the twin allocates: nothing is picked for it.
                covered: dict[int, int] = {}
                for allocated in by_node.values():
                    for sku, qty in allocated:
                        covered[sku] = covered.get(sku, 0) + qty
                for sku, qty in lines:
                    take = min(qty, covered.get(sku, 0))
                    covered[sku] = covered.get(sku, 0) - take
                    if take < qty:
                        self.unfilled_lines[o] += 1
                        if self._log:
                            self._log_event("unfilled_line", -1, o)
            return out
        loc = orders.location[o]
        now = self.now
        # Rank by when a parcel could reach the customer: wait for opening + drive.
        # Python floats and a stable sort: what numpy's float64 and stable argsort give.
        drive = w.travel.duration_s[self._alloc_node_locs, loc].tolist()
        times = [
            float(t) + (w.nodes[n].available_from(now) - now)
            for t, n in zip(drive, self._alloc_nodes, strict=True)
        ]
        ranked = [self._alloc_nodes[k] for k in sorted(range(len(times)), key=times.__getitem__)]
        ranked = [n for n in ranked if self._node_orders[n] < w.node_capacity_orders[n]] or ranked
        ranked = [n for n in ranked if w.nodes[n].available_from(now) < INF] or ranked
        if not lines or not w.stock_modelled:
            n = ranked[0]
            out[n] = [(k, sku, qty, False) for k, (sku, qty) in enumerate(lines)]
            self._node_orders[n] += 1
            return out
        for n in ranked:
            if all(stock[n][sku] >= qty for sku, qty in lines):
                for sku, qty in lines:
                    stock[n][sku] -= qty
                out[n] = [(k, sku, qty, False) for k, (sku, qty) in enumerate(lines)]
                self._node_orders[n] += 1
                return out
        for k, (sku, qty) in enumerate(lines):
            left = qty
            for n in ranked:
                take = min(left, stock[n][sku])
                if take <= 0:
                    continue
                stock[n][sku] -= take
                if n not in out:
                    self._node_orders[n] += 1
                out.setdefault(n, []).append((k, sku, take, False))
                left -= take
                if left == 0:
                    break
            if left > 0:
                self.unfilled_lines[o] += 1
        return out or None

    def _pick(self, o: int, n: int) -> SimGen:
        env = self.env
        w = self.world
        node = w.nodes[n]
        noise = self.noise
        stoch = w.scenario.stochastic
        released = env.now
        t = node.available_from(env.now)
        if t == INF:
            self._lose_parcel(o, n)
            return
        if t > env.now:
            yield env.timeout(t - env.now)
        lines = self._parcel_lines[(o, n)]
        offset = noise.line_offset[o]
        with self._pickers[n].request() as req:
            yield req
            t = node.available_from(env.now)
            if t == INF:
                self._lose_parcel(o, n)
                return
            if t > env.now:
                yield env.timeout(t - env.now)
            self.pick_waits_s.append(env.now - released)
            if self._log:
                self._log_event("pick_start", -1, o)
            pick = 0.0
            transfer_ready = env.now
            filled = 0
            previous = -1
            for line_no, sku, qty, short in lines:
                k = offset + line_no
                # The short rest of a line the node had in part is not picked here (the
                # line's pick was counted with its first part).
                rest = short and line_no == previous
                previous = line_no
                if k < noise.line_offset[o + 1]:
                    if not rest:
                        pick += node.pick_time_s_per_line * noise.pick_line[k]
                    discrepancy = noise.stock_u[k] < stoch.stock_discrepancy_prob
                else:
                    if not rest:
                        pick += node.pick_time_s_per_line
                    discrepancy = False
                if short or discrepancy:
                    here = self._resource(o, n, sku, qty)
                    if here is None:
                        continue  # unfilled: nothing of this line ships
                    transfer_ready = max(transfer_ready, here)
                filled += 1
            self._lines_filled[o] += filled
            self._picks_left[o] -= 1
            if not self._picks_left[o] and not self._lines_filled[o] and self.orders.lines[o]:
                self._unfill(o)
            started = env.now
            final = self._node_final_s[n]
            if started + pick >= final:
                # Picked after the node closes for good: the parcel is lost at the closing,
                # as one whose pick would start after it (until twin version 10 it came out
                # ready after the closing, and its order waited until the horizon's end).
                yield env.timeout(final - started)
                self.picker_busy_s[n] += node.open_s(started, env.now)
                self._lose_parcel(o, n)
                return
            if pick > 0:
                yield env.timeout(pick)
            # Utilisation counts busy time in open hours.
            self.picker_busy_s[n] += node.open_s(started, env.now)
        with self._stations[n].request() as req:
            yield req
            pack = node.pack_time_s_per_order * noise.pack[o]
            final = self._node_final_s[n]
            if max(env.now + pack, transfer_ready) >= final:
                # Ready only after the node closes for good (packed, or its re-sourced lines
                # there, too late): lost at the closing (now, if it waited past it).
                if final > env.now:
                    yield env.timeout(final - env.now)
                self._lose_parcel(o, n)
                return
            if pack > 0:
                yield env.timeout(pack)
        if transfer_ready > env.now:
            yield env.timeout(transfer_ready - env.now)
        self._parcel_ready(o, n)

    def _resource(self, o: int, n: int, sku: int, qty: int) -> float | None:
        """Re-source a short line from the nearest other node; returns when it is here (None:
        no node has the stock, the line is unfilled)."""
        w = self.world
        stock = self._stock_left
        for other in self._resource_order[n]:
            if stock[other][sku] >= qty:
                stock[other][sku] -= qty
                src = w.nodes[other]
                travel = float(w.travel.duration_s[src.location, w.nodes[n].location])
                if self._log:
                    self._log_event("resourced", -1, o)
                return self.now + travel * w.travel_factor(self.now) + src.pick_time_s_per_line
        self.unfilled_lines[o] += 1
        if self._log:
            self._log_event("unfilled_line", -1, o)
        return None

    def _parcel_ready(self, o: int, n: int) -> None:
        key = (o, n)
        self._ready_at[key] = self.now
        if n not in self._closing_watched:
            final = self._node_final_s[n]
            if final < self.world.horizon_end_s:
                # Parcels still waiting at the node when it closes for good are lost then.
                # (Not a node closing at or after the horizon's end: a waiting order keeps
                # the day open only until then.)
                self._closing_watched.add(n)
                closing = self.env.timeout(final - self.now)
                closing.callbacks.append(partial(self._node_closed, n))
        self._ready_est[key] = self.now
        self._jobs.pop(o, None)
        self._ready_version += 1
        self._follow_ready(o, n)
        if self._log:
            self._log_event("parcel_ready", -1, o)
        ev = self._ready_ev.pop(key, None)
        if ev is not None:
            ev.succeed()

    def _follow_ready(self, o: int, n: int) -> None:
        """Re-estimate, from the parcel's ready time, the departure of the courier on its way
        to collect order ``o``'s parcel at node ``n``: it was estimated from the ready
        estimate as the courier left for the node and kept until it started collecting, so
        its route's quotes started from a parcel ready later (or earlier) than it was."""
        c = self.courier_of[o]
        stop = self._committed[c] if c >= 0 else None
        if stop is not None and stop.kind == PICKUP and stop.order == o and stop.node == n:
            self._est_free[c] = self._a_free[c] = self._estimate_departure(
                c, stop, self._est_arrival[c]
            )

    def _lose_parcel(self, o: int, n: int) -> None:
        """The node closed for good before the parcel was picked or collected: it never comes."""
        key = (o, n)
        self._lost.add(key)
        self._ready_est[key] = INF
        self._jobs.pop(o, None)
        self._ready_version += 1
        if self._log:
            self._log_event("parcel_lost", -1, o)
        ev = self._ready_ev.pop(key, None)
        if ev is not None:
            ev.succeed()
        # Nobody will ever collect it: take the order out of the day now (a courier already
        # driving to the node finds out on arrival).
        status = self.status[o]
        if status == S_PENDING:
            del self._pending[o]
            self._pending_version += 1
            self.status[o] = S_UNSERVED
        elif status == S_ASSIGNED:
            c = self.courier_of[o]
            committed = self._committed[c] if c >= 0 else None
            if c >= 0 and not (committed is not None and committed.order == o):
                self._drop(c, o)
            elif c < 0:
                self.status[o] = S_UNSERVED
        # It no longer waits (or is no longer to be collected): the day may be over, as when
        # its last order is delivered (until twin version 11 only the next decision, tick or
        # courier free closed it: under a policy without ticks, such as ``nearest``, couriers
        # waited until their shifts' end once the day's last order was lost).
        self._maybe_close()

    def _node_closed(self, n: int, _event: simpy.Event) -> None:
        """Node ``n`` closed for good: the parcels ready there that nobody collected are lost
        (a courier can no longer collect them), but for one a courier is at the node for."""
        collected = self._collected
        here = {
            (st.order, st.node)
            for c, st in enumerate(self._committed)
            if st is not None and st.kind == PICKUP and self._leg[c] is None
        }
        live = (S_PENDING, S_ASSIGNED, S_CARRIED)
        for key in [key for key in self._ready_at if key[1] == n]:
            if key in self._lost or key in collected or key in here:
                continue
            if self.status[key[0]] in live:
                self._lose_parcel(*key)
                # it was ready then (what a no-decision run reads, e.g. the RL hindsight's)
                self._ready_est[key] = self._ready_at[key]

    def _unfill(self, o: int) -> None:
        """No line of order ``o`` could be filled at pick (short, and no stock to re-source
        it): nothing ships, so the order is unfilled altogether, at its penalty, exactly as
        when nothing could be allocated at its release (its courier, if any, drops it; one
        already on its way to a stop of it finds out there)."""
        status = self.status[o]
        if status not in (S_PENDING, S_ASSIGNED, S_CARRIED):
            return
        if self._log:
            self._log_event("unfilled", -1, o)
        if status == S_PENDING:
            del self._pending[o]
            self._pending_version += 1
        else:
            c = self.courier_of[o]
            committed = self._committed[c] if c >= 0 else None
            if c >= 0 and not (committed is not None and committed.order == o):
                self._drop(c, o, S_UNFILLED)
        self.status[o] = S_UNFILLED
        self._maybe_close()  # (as _lose_parcel: the day may be over)

    def _drop(self, c: int, o: int, status: int = S_UNSERVED) -> None:
        """Courier ``c`` gives up order ``o`` (its parcel cannot be collected, or is empty);
        the order ends ``status``."""
        self._set_route(c, tuple(st for st in self._route[c] if st.order != o))
        for key in [key for key in self._carried[c] if key[0] == o]:
            self._carried[c].discard(key)
        taken = self._loaded[c].pop(o, None)
        if taken is not None:
            self._load[c] -= taken
        self.status[o] = status
        if self._log:
            self._log_event("dropped", c, o)
        self._send_idle_home()

    def _wait_ready(self, o: int, n: int) -> simpy.Event | None:
        key = (o, n)
        if key in self._ready_at or key in self._lost:
            return None
        ev = self._ready_ev.get(key)
        if ev is None:
            ev = self._ready_ev[key] = self.env.event()
        return ev

    def _ticks(self, every: float) -> SimGen:
        env = self.env
        while not self._closing:
            yield env.timeout(every)
            if self._closing:
                break
            self._decisions.append((int(DecisionKind.TICK), -1, -1))
            self._maybe_close()

    def _work_time(self, c: int, start: float, duration: float) -> float:
        """Duration of an activity starting at ``start``, stretched by breakdowns.

        Breakdowns are a Poisson process in working time: each one falling inside the activity
        stops the courier for ``breakdown_duration_s``; none happen during a repair.
        """
        times = self.noise.breakdowns[c]
        if not times:
            return duration
        ptr = self._breakdown_ptr[c]
        while ptr < len(times) and times[ptr] < start:
            ptr += 1
        end = start + duration
        extra = self.world.scenario.stochastic.breakdown_duration_s
        while ptr < len(times) and times[ptr] < end:
            when = times[ptr]
            end += extra
            duration += extra
            if self._log:
                self.events.append((when, "breakdown", c, -1))
            ptr += 1
            while ptr < len(times) and times[ptr] < when + extra:
                ptr += 1  # a courier under repair does not break down again
        self._breakdown_ptr[c] = ptr
        return duration

    def _load_preload(self, c: int, preload: Sequence[int]) -> SimGen:
        """Courier ``c`` waits at its start for each order of ``preload`` (its plan's orders
        loaded there) to be released and its parcels ready, and boards those still on its
        route."""
        env = self.env
        real_nodes = self.world.has_real_nodes
        for o in preload:
            if self.status[o] == S_UNKNOWN and (real_nodes or self.orders.created_s[o] > env.now):
                # Not released yet: its parcels do not exist before its release (at a
                # node they are picked after it; at a virtual depot ready at it, so one
                # released at this instant is loaded now, as at its release).
                ev = self._release_ev.get(o)
                if ev is None:
                    ev = self._release_ev[o] = env.event()
                yield ev
            for n in self._wait_parcels(o):
                ev = self._wait_ready(o, n)
                if ev is not None:
                    yield ev
            # Not if it was lost or unfilled meanwhile, or a policy took it off the route.
            if self.status[o] in (S_UNKNOWN, S_ASSIGNED) and self._on_route(o, c):
                self._board(c, o, all_parcels=True)

    def _courier(self, c: int) -> SimGen:
        env = self.env
        w = self.world
        noise = self.noise
        orders = self.orders
        p = self.params
        dur = w.travel.duration_s
        dist = w.travel.distance_m
        shift_start = w.shift_start_s[c]
        shift_end = w.shift_end_s[c]
        plan = self._plan
        # Before its first departure a courier waits for this (a planned route's start, when
        # it opens with a break the plan has before that start: see below).
        hold = -INF
        # The plan's orders loaded at the start, not yet waited for and boarded (see below).
        preload: list[int] = []
        if plan is not None and c in plan.stops:
            depart = plan.start_s[c]
            preload = list(plan.preload.get(c, []))
            first = self._route[c][0] if self._route[c] else None
            if (
                first is not None
                and first.kind == BREAK
                and plan.planned_start.get(_planned_key(c, first), INF) < depart
            ):
                # A break before the route's start (the routing layer's break taken while the
                # courier waits for the orders it loads there to be created; or an executed
                # day written as a plan: a courier that took its break where it stood before
                # it first left): taken there from the shift start, the orders waited for and
                # loaded after it, the first departure held to the route's start.
                hold = depart
                if shift_start > env.now:
                    yield env.timeout(shift_start - env.now)
            else:
                yield from self._load_preload(c, preload)
                preload = []
                if depart > env.now:
                    yield env.timeout(depart - env.now)
        elif shift_start > env.now:
            yield env.timeout(shift_start - env.now)
        per_km = w.cost_per_km_cents[c]
        fail_p = w.scenario.stochastic.failed_delivery_prob
        # (break aux, since when) while the courier stands at the break first in its route,
        # not committed to it before its window opens
        standing: tuple[int, float] | None = None
        while True:
            route = self._route[c]
            if not route:
                if self._closing or env.now >= shift_end:
                    break
                if self._no_work_left():  # idle_couriers_go_home: its shift ends now
                    self.shift_ended_s[c] = self._shift_end_now[c] = env.now
                    self._shift_end[c] = env.now
                    if self._log:
                        self._log_event("shift_ended", c, -1)
                    self._maybe_close()
                    break
                self._idle[c] = True
                self._a_idle[c] = True
                ev = self._wake[c] = env.event()
                if p.decide_on_courier_free:
                    self._decisions.append((int(DecisionKind.COURIER_FREE), -1, c))
                self._maybe_close()
                if math.isfinite(shift_end):
                    yield ev | env.timeout(max(0.0, shift_end - env.now))
                else:
                    yield ev
                self._wake[c] = None
                self._idle[c] = False
                self._a_idle[c] = False
                continue
            if self._idle[c]:
                self._idle[c] = False
                self._a_idle[c] = False
            stop = route[0]
            if stop.kind == BREAK:
                opens = self._breaks[stop.aux][0]
                if standing is None or standing[0] != stop.aux:
                    # At its break (taken where it is, no travel): since now.
                    standing = (stop.aux, env.now)
                    if self._log:
                        self._log_event("arrive", c, -1)
                if opens > env.now:
                    # A break is committed only once its window opens: until then the courier
                    # stands where it is with the break first in its (changeable) route, so an
                    # order may still be put before it; a route change wakes it. (Standing
                    # is no departure: a courier that has not left yet is not on the clock.)
                    ev = self._wake[c] = env.event()
                    self._standing[c] = True
                    if p.decide_on_courier_free:
                        # Free until its break: a policy may give it work that fits before it.
                        self._decisions.append((int(DecisionKind.COURIER_FREE), -1, c))
                    yield ev | env.timeout(opens - env.now)
                    self._standing[c] = False
                    self._wake[c] = None
                    continue
            if preload and stop.kind != BREAK:
                # Its breaks before the start taken: the orders it loads there, then leave.
                yield from self._load_preload(c, preload)
                preload = []
                continue
            if hold > env.now and stop.kind != BREAK:
                # Not before the route's start (until a route change wakes it).
                ev = self._wake[c] = env.event()
                yield ev | env.timeout(hold - env.now)
                self._wake[c] = None
                continue
            self._committed[c] = stop
            self._route[c] = route[1:]
            # A break is taken where the courier is (as in the routing layer: no travel for a
            # break), not at its stop's location (a re-plan may have moved it in the route).
            a = self.loc[c]
            b = a if stop.kind == BREAK else stop.location
            self._a_anchor[c] = b
            self._a_nstops[c] = len(route) - 1
            self._version[c] += 1
            now = env.now
            base = float(dur[a, b])
            if stop.kind == PICKUP:
                nf = noise.travel_to_pickup[stop.order]
            elif stop.kind == DELIVERY:
                nf = noise.travel_to_delivery[stop.order]
            else:
                nf = 1.0
            planned = base * w.travel_factor(now)
            self._est_arrival[c] = now + planned
            if stop.kind == DELIVERY and not self._on_board(c, stop.order):
                self._est_free[c] = self._a_free[c] = now + planned  # passed through
            else:
                self._est_free[c] = self._a_free[c] = self._estimate_departure(
                    c, stop, now + planned
                )
            # A courier's clock starts when it leaves for its first stop: a break taken where
            # it stands before that (a route holding only its break) is no departure.
            departed = self.first_departure_s[c] == self.first_departure_s[c]
            if not departed and stop.kind != BREAK:
                self.first_departure_s[c] = self._a_first[c] = now
                self.cost_fixed += w.fixed_cost_cents[c]
                departed = True
            if base > 0:
                travel = self._work_time(c, now, planned * nf)
                self.busy_s[c] += travel
                self.busy_end_s[c] = now + travel
                self._leg[c] = (a, b)
                yield env.timeout(travel)
                self._leg[c] = None
                d = float(dist[a, b])
                self.distance_m[c] += d
                self.cost_distance += per_km * d / 1000.0
            self.loc[c] = b
            arrival = env.now
            if stop.kind == BREAK and standing is not None:
                arrival = standing[1]  # (its arrival was logged then)
            elif self._log:
                self._log_event("arrive", c, stop.order)
            standing = None
            # When may service start?
            o = stop.order
            b_latest = INF
            if stop.kind == PICKUP:
                if stop.node >= 0:
                    ready = self._wait_ready(o, stop.node)
                    if ready is not None:
                        yield ready
                    t = w.nodes[stop.node].available_from(env.now)
                    unfilled = self.status[o] == S_UNFILLED
                    if t == INF or (o, stop.node) in self._lost or unfilled:
                        self._abandon(c, o, S_UNFILLED if unfilled else S_UNSERVED)
                        continue
                    svc = float(p.node_pickup_service_s)
                else:
                    t = max(env.now, orders.pickup_tw_start[o])
                    svc = orders.pickup_service_s[o]
                svc *= noise.service_pickup[o]
            elif stop.kind == DELIVERY:
                if self.status[o] == S_UNFILLED:  # nothing to hand over: its lines all failed
                    self._abandon(c, o, S_UNFILLED)
                    continue
                if not self._on_board(c, o):
                    # No parcel of the order on board (all handed over at an earlier delivery
                    # stop of it, e.g. a split order's jobs delivered back to back, or a
                    # failed delivery): passed through, no wait for the window, no service,
                    # the order's KPIs untouched.
                    self._pass_through(c, stop, arrival)
                    continue
                t0 = earliest_service_start_f(orders.windows[o], env.now)
                t = env.now if t0 is None else t0
                svc = orders.service_s[o] * noise.service_delivery[o]
            else:
                b_start, b_latest, svc = self._breaks[stop.aux]
                t = max(env.now, b_start)
            t = self._held(c, stop, t)
            if t > env.now:
                yield env.timeout(t - env.now)
            start = env.now
            if stop.kind == BREAK and start > b_latest + 1e-6:
                # Taken late (noise, breakdowns, or a plan that has it late): a violation
                # of the driver's break window, reported (the break is still taken in full).
                self.break_violations.append((c, stop.aux, start, b_latest))
                if self._log:
                    self._log_event("break_late", c, -1)
            self._est_free[c] = self._a_free[c] = start + (
                orders.service_s[o] if stop.kind == DELIVERY else (svc if svc > 0 else 0.0)
            )
            if svc > 0 and stop.kind == BREAK:
                # A break is not work: no breakdown, not busy time (it counts in the courier's
                # hours between its first departure and its return, as waiting does).
                if departed:
                    self.busy_end_s[c] = start + svc
                yield env.timeout(svc)
            elif svc > 0:
                svc = self._work_time(c, start, svc)
                self.busy_s[c] += svc
                self.busy_end_s[c] = start + svc
                yield env.timeout(svc)
            depart = env.now
            if departed:
                self.last_activity_s[c] = self._a_last[c] = depart
            if p.record_routes:
                self.executed[c].append((stop.kind, o, stop.node, arrival, start, depart))
                if stop.kind == BREAK:
                    self.executed_breaks[c].append(self._break_of[stop.aux])
            if stop.kind == PICKUP:
                self._collect(c, o, stop.node)
            elif stop.kind == DELIVERY:
                self._deliver(c, o, start, fail_p)
            self._committed[c] = None
            self._a_anchor[c] = self.loc[c]
            self._a_free[c] = shift_start
            self._version[c] += 1
        # Home.
        self._idle[c] = False
        self._a_idle[c] = False
        home = w.vehicle_end_loc[c]
        if self.loc[c] != home and self.first_departure_s[c] == self.first_departure_s[c]:
            now = env.now
            base = float(dur[self.loc[c], home])
            self._est_arrival[c] = now + base * w.travel_factor(now)  # (projected cost)
            travel = self._work_time(c, now, base * w.travel_factor(now) * noise.travel_home[c])
            self.busy_s[c] += travel
            self.busy_end_s[c] = now + travel
            self._leg[c] = (self.loc[c], home)
            yield env.timeout(travel)
            self._leg[c] = None
            d = float(dist[self.loc[c], home])
            self.distance_m[c] += d
            self.cost_distance += per_km * d / 1000.0
            self.loc[c] = home
            self._a_anchor[c] = home
            self.last_activity_s[c] = self._a_last[c] = env.now
        elif self.first_departure_s[c] == self.first_departure_s[c] and math.isnan(self._a_last[c]):
            # Left, but served nothing and is at its end location already: the clock stops
            # now (a courier is never charged zero hours for a trip it made).
            self.last_activity_s[c] = self._a_last[c] = env.now
        if self._log:
            self._log_event("home", c, -1)
        self._home[c] = True
        self._a_home[c] = True

    def _abandon(self, c: int, o: int, status: int) -> None:
        """Courier ``c``, at the stop of order ``o`` it is committed to, gives the order up."""
        self.last_activity_s[c] = self._a_last[c] = self.env.now
        self._drop(c, o, status)
        self._committed[c] = None
        self._a_anchor[c] = self.loc[c]
        self._a_free[c] = self.world.shift_start_s[c]
        self._version[c] += 1

    def _on_board(self, c: int, o: int) -> bool:
        """Whether courier ``c`` carries a parcel of order ``o``."""
        return any(k == o for k, _n in self._carried[c])

    def _pass_through(self, c: int, stop: Stop, arrival: float) -> None:
        """Courier ``c``, at a delivery stop with nothing of its order on board, leaves at once."""
        self.last_activity_s[c] = self._a_last[c] = arrival
        if self.params.record_routes:
            self.executed[c].append((stop.kind, stop.order, stop.node, arrival, arrival, arrival))
        if self._log:
            self._log_event("nothing_to_deliver", c, stop.order)
        self._committed[c] = None
        self._a_anchor[c] = self.loc[c]
        self._a_free[c] = self.world.shift_start_s[c]
        self._version[c] += 1

    def _wait_parcels(self, o: int) -> list[int]:
        return [n for n in self.parcel_nodes[o] if n >= 0]

    def _held(self, c: int, stop: Stop, t: float) -> float:
        """``t``, or courier ``c``'s planned start of ``stop`` if later, when it holds to the
        plan (``hold_to_plan``: it starts no planned stop before its planned start)."""
        if not self.params.hold_to_plan or self._plan is None:
            return t
        return max(t, self._plan.planned_start.get(_planned_key(c, stop), t))

    def _estimate_departure(self, c: int, stop: Stop, arrival: float) -> float:
        """Expected departure of courier ``c`` from ``stop`` given an expected arrival (no
        noise; held to the stop's planned start with ``hold_to_plan``)."""
        orders = self.orders
        o = stop.order
        arrival = self._held(c, stop, arrival)
        if stop.kind == DELIVERY:
            return max(arrival, orders.tw_start[o]) + orders.service_s[o]
        if stop.kind == PICKUP:
            if stop.node >= 0:
                ready = self._ready_est.get((o, stop.node), arrival)
                return max(arrival, ready) + self.params.node_pickup_service_s
            return max(arrival, orders.pickup_tw_start[o]) + orders.pickup_service_s[o]
        b_start, _, b_dur = self._breaks[stop.aux]
        return max(arrival, b_start) + b_dur

    def _board(self, c: int, o: int, *, all_parcels: bool, node: int = -1) -> None:
        """Courier ``c`` takes order ``o``'s parcel at ``node`` on board (all its parcels:
        a planned route's load at its start); each takes its share of the demand."""
        nodes = (self.parcel_nodes[o] or [-1]) if all_parcels else [node]
        carried = self._carried[c]
        for n in nodes:
            add = self._pickup_load(o, n, self._loaded[c], carried)
            carried.add((o, n))
            self._collected.add((o, n))
            if add is not None:
                self._load[c] += add
        if self.status[o] in (S_ASSIGNED, S_PENDING):
            self.status[o] = S_CARRIED
            self.courier_of[o] = c
            self._send_idle_home()  # maybe the last order a re-plan could still move

    def _collect(self, c: int, o: int, n: int) -> None:
        self._board(c, o, all_parcels=False, node=n)

    def _deliver(self, c: int, o: int, start: float, fail_p: float) -> None:
        carried = [key for key in self._carried[c] if key[0] == o]
        if not carried:  # (the courier passes such a stop through, before its service)
            return
        for key in carried:
            self._carried[c].discard(key)
        taken = self._loaded[c].pop(o, None)
        if taken is not None:
            self._load[c] -= taken
        if self.noise.fail_u[o] < fail_p:
            self.status[o] = S_FAILED
            self.num_failed += 1
            self.cost_failed += float(self.world.scenario.costs.failed_delivery_cents)
            self.completed_s[o] = start
            if self._log:
                self._log_event("failed", c, o)
            return
        self.parcels_left[o] -= len(carried)
        if self.parcels_left[o] > 0:
            return
        self.status[o] = S_DELIVERED
        self._num_delivered += 1
        self.completed_s[o] = start
        late = lateness(self.orders.windows[o], start)
        self.lateness_s[o] = late
        if late > 0:
            self.cost_lateness += self.world.scenario.costs.lateness_cents_per_min * late / 60.0
        if self._log:
            self._log_event("deliver", c, o)

    # -------------------------------------------------------------- closing
    def _no_work_left(self) -> bool:
        """With ``SimParams.idle_couriers_go_home``: no order can still be given to an idle
        courier, so it may go home. Every order of the day is released, none waits, and every
        one assigned is collected (a policy may still move an order not collected yet to
        another courier: ``ReplaceRoutes``)."""
        return (
            self.params.idle_couriers_go_home
            and self._released_all
            and not self._pending
            and S_ASSIGNED not in self.status  # a list of ints: a C loop over the day's orders
        )

    def _send_idle_home(self) -> None:
        """Wake the idle couriers once no order can still be given to them (they go home)."""
        if not self._no_work_left():
            return
        self._drop_unused_breaks()
        for c, ev in enumerate(self._wake):
            if ev is not None and not ev.triggered and not self._route[c]:
                self._wake[c] = None
                ev.succeed()

    def _drop_unused_breaks(self) -> None:
        """Take the breaks the twin added (``SimParams.take_vehicle_breaks``; not a plan's)
        off the route of every courier that never left and has nothing else to do: its day
        is over (an unused vehicle takes no break, as in the routing layer), so it goes home."""
        for c, route in enumerate(self._route):
            if route and self._committed[c] is None and self._added_breaks_only(c):
                self._route[c] = ()
                self._a_nstops[c] = 0
                self._version[c] += 1

    def _maybe_close(self) -> None:
        """Close the day once nothing more can happen: send idle couriers home."""
        self._send_idle_home()
        if self._closing or not self._released_all:
            return
        if self._pending and self.now < self.world.horizon_end_s:
            return
        if any(x is not None for x in self._committed) or any(
            route and not self._added_breaks_only(c) for c, route in enumerate(self._route)
        ):
            return
        self._closing = True
        self._drop_unused_breaks()
        for o in list(self._pending):
            self.status[o] = S_UNSERVED
        self._pending.clear()
        self._pending_version += 1
        for c in range(self.world.num_vehicles):
            ev = self._wake[c]
            if ev is not None and not ev.triggered:
                self._wake[c] = None
                ev.succeed()

    def _finish(self) -> None:
        """Cut the day off: undelivered orders are unserved; couriers still out go home.

        A courier that is out finishes the activity under way (a leg: its distance is driven,
        its time was counted as busy when it started; a service or a repair), then drives home
        from there at the expected time (free-flow x travel factor at departure, no noise),
        leaving at the end of that activity or at the cut-off, whichever is later. The drive
        home is busy time, distance and courier hours like any other leg.
        """
        self._finished = True
        w = self.world
        dist, dur = w.travel.distance_m, w.travel.duration_s
        # Cut off with events still due: couriers out were kept until the cut-off.
        cut_s = self._stop_at if self.env.peek() < INF else self.now
        for c in range(w.num_vehicles):
            if self._home[c] or self.first_departure_s[c] != self.first_departure_s[c]:
                continue
            per_km = w.cost_per_km_cents[c]
            leg = self._leg[c]
            if leg is not None:
                self._leg[c] = None
                d = float(dist[leg[0], leg[1]])
                self.distance_m[c] += d
                self.cost_distance += per_km * d / 1000.0
                self.loc[c] = leg[1]
            last = self.last_activity_s[c]
            t = max(cut_s, self.busy_end_s[c], last if last == last else -INF)
            home = w.vehicle_end_loc[c]
            if self.loc[c] != home:
                travel = float(dur[self.loc[c], home]) * w.travel_factor(t)
                d = float(dist[self.loc[c], home])
                self.distance_m[c] += d
                self.cost_distance += per_km * d / 1000.0
                self.busy_s[c] += travel
                t += travel
                self.busy_end_s[c] = t
                self.loc[c] = home
            self.last_activity_s[c] = self._a_last[c] = t
            self._a_anchor[c] = home
            self._home[c] = True
            self._a_home[c] = True
        for o, s in enumerate(self.status):
            if s in (S_PENDING, S_ASSIGNED, S_CARRIED):
                self.status[o] = S_UNSERVED
        self._result = SimulationResult.from_simulator(self)


def _nearest(
    target: int,
    k: int,
    anchor: NDArray[np.int64],
    avail: NDArray[np.float64],
    eligible: NDArray[np.bool_],
    duration: NDArray[np.int32],
) -> NDArray[np.int64]:
    """Up to ``k`` ``eligible`` couriers by expected arrival at location ``target``, soonest
    first (ties: the lower courier index)."""
    v = anchor.shape[0]
    eta = avail + duration[anchor, target]
    eta[~eligible] = INF
    # a stable sort: ties to the lower courier index, on every machine (np.argpartition's
    # ties differ per CPU: until twin version 13 the same seed played other days elsewhere)
    best = np.argsort(eta, kind="stable")[: min(k, v)].astype(np.int64)
    return best[np.isfinite(eta[best])]


def split_demand(demand: list[int], units: list[int]) -> list[list[int]]:
    """An order's ``demand`` (per capacity dimension) shared by its parcels of ``units`` units
    each, as :func:`solvers.routing.routing_scenario_from_allocation` shares it among an
    order's shipments: in each dimension a parcel gets its units' share in whole numbers (the
    largest remainders get the extra ones, ties to the first parcel), the shares adding up to
    the order's; parcels of no units at all share it equally."""
    if not units:
        raise ValueError("an order has at least one parcel, got none")
    weights = [max(0, u) for u in units]
    whole = sum(weights)
    if whole == 0:
        weights, whole = [1] * len(units), len(units)
    out = [[0] * len(demand) for _ in units]
    for k, total in enumerate(demand):
        shares = [divmod(total * w, whole) for w in weights]
        for p, (q, _r) in enumerate(shares):
            out[p][k] = q
        left = total - sum(q for q, _r in shares)
        for p in sorted(range(len(units)), key=lambda p: (-shares[p][1], p))[:left]:
            out[p][k] += 1
    return out


def earliest_service_start_f(
    windows: tuple[tuple[float, float], ...], arrival: float
) -> float | None:
    """First time at or after ``arrival`` inside one of the windows (None if all are past)."""
    if not windows:
        return arrival
    for start, end in windows:
        if arrival <= end:
            return arrival if arrival >= start else start
    return None


def lateness(windows: tuple[tuple[float, float], ...], start: float) -> float:
    """Seconds the service start is after the end of the last window that opened before it."""
    if not windows:
        return 0.0
    best = INF
    for w_start, w_end in windows:
        if w_start <= start <= w_end:
            return 0.0
        if start > w_end:
            best = start - w_end
    return 0.0 if best == INF else best


__all__ = [
    "DispatchSimulator",
    "earliest_service_start",
    "earliest_service_start_f",
    "lateness",
    "split_demand",
]
