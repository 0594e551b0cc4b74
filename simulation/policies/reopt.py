"""Periodic re-optimisation: every k minutes, re-plan all open orders with the routing solver.

At each tick the policy builds a routing :class:`~scenarios.model.Scenario` of the current
situation and calls :func:`solvers.routing.solve_routes`:

- each courier on shift becomes a vehicle that starts where (and when) it will be after its
  *locked* stops: the stop it is committed to and, for an order whose parcels are collected at
  several nodes, its pickups still to make (in their order);
- an order with only its delivery left (on board, or the committed stop's order) becomes a
  delivery-only job of its courier's vehicle (a skill only that vehicle has, mandatory: its
  parcels are on board from the vehicle's start), placed among the others by the solver; one
  the solver does not place is delivered last (until session 55 these deliveries were locked
  in front, in their order, so a courier carrying a parcel promised for the afternoon waited
  for it before anything else);
- a courier's breaks still to take are the vehicle's breaks (window: from the later of the
  break's earliest start and the vehicle's start to its latest start), and each goes where the
  solver's plan takes it (the routing layer schedules breaks exactly); a break the solver does
  not place (a vehicle left unused, or out of the solver's reach) goes right after the locked
  stops, or before them when it could no longer start in its window after them;
- every other open order (waiting, or assigned but not collected) becomes a
  pickup-and-delivery job: pickup at its node once the parcel is expected ready and before
  the first of its nodes closes for good (an order whose node closes before that is left
  out: its parcels are lost), delivery in its promised window (a window already out of
  reach is widened to "as soon as possible", because the solver's windows are hard; one the
  courier's current route reaches only after it closes ends at that arrival, as the solver
  schedules the route, so that the current routes are a solution: :func:`fit_current`);
- the solver starts from the couriers' current routes after the locked stops (the warm
  start, ``initial_plan``: PyVRP's initial solution, the greedy construction's and OR-Tools'
  start; the greedy plan is the cheaper, by the solver's objective, of those routes with the
  waiting orders inserted and a plan made afresh, so it is never dearer than the first);
  an order whose pickup the current route reaches after its node closes is taken off the
  warm start, and a route that breaks another of the solver's constraints is not one;
- with no open order, a courier with at least two stops the solver places (deliveries on
  board, breaks) is still re-planned: the order of its drops may improve (until session 56
  nothing was re-planned then);
- the problem is priced as the twin's planned cost prices routes (:meth:`routing_scenario`):
  the vehicles' own prices per metre and per hour, the fixed cost of a courier that has not
  left yet, each order's penalty; travel times are the free-flow times x the twin's travel
  factor at the tick (as the twin expects them; the routing layer has no time-of-day
  profile); a vehicle without breaks must leave at once (``latest_start_s``: the twin's
  courier leaves for its next stop and waits there, so its time counts from now). The
  routing layer has no price for lateness (its windows are hard) and a vehicle with breaks
  may still leave later;
- the solver's routes replace the couriers' remaining routes (after the locked stops), but
  only when they are projected cheaper than the routes the couriers have (``keep_if_cheaper``):
  both are priced by the twin's planned cost (:meth:`DispatchSimulator.planned_cost_cents`,
  the model quotes price by: expected times, no noise), the current routes with the waiting
  orders the re-plan serves inserted in turn at their cheapest insertion (what the fallback
  will do with them), the re-plan with each open order it leaves out at its penalty; a
  re-plan that is not cheaper is dropped and the tick's order goes to the fallback.

Orders the solver leaves out, and orders arriving between ticks, are inserted by cheapest
insertion when they come up for a decision (``insert_between_ticks``) or wait for the next tick.

Each re-plan's search stops on its work, not on the clock, so a day is the same on a busy
machine as on an idle one (same seed, same day): PyVRP after :data:`REOPT_ITERATIONS`
iterations by default (``max_iterations``), OR-Tools after :data:`REOPT_SOLUTIONS` solutions
(``max_solutions``; ``auto`` gets both), with ``time_limit_s`` (:data:`REOPT_CAP_S`) only a
safety cap; a re-plan the cap stops first is counted in ``num_capped`` (and logged), and that
day is no longer reproducible. ``max_iterations=None`` (PyVRP) or ``max_solutions=None``
(OR-Tools) stops the search on the clock instead (``time_limit_s`` is then the budget; the
day depends on the machine's load). The greedy engine builds one plan and does not search:
it is deterministic.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scenarios.geo import Location, TimeWindow
from scenarios.model import Break, Order, PickupSpec, Scenario, Vehicle
from scenarios.plan import Plan, PlannedStop, Route, StopKind
from scenarios.skills import TWIN_ON_BOARD_PREFIX
from scenarios.travel import MatrixTravel
from simulation.decisions import (
    Action,
    DecisionKind,
    DecisionState,
    OrderStatus,
    Quote,
    ReplaceRoutes,
    Stop,
    StopType,
)
from simulation.policies.base import DispatchView
from simulation.policies.insertion import CheapestInsertionPolicy
from simulation.world import World
from solvers.validate import match_breaks

if TYPE_CHECKING:
    from solvers.routing.solve import SolveStats

log = logging.getLogger(__name__)

#: PyVRP iterations per re-plan by default: about 1 s of CPU on the larger re-plans of the RL
#: standard scenario (session 57, days 1-3 under ``reopt:5``, a loaded 2-core machine: 1,000
#: iterations took 0.26-2.5 s of CPU at 15-35 orders, 0.95 s on average; a 1 s wall-clock
#: limit did 130-1,000 iterations there, with 0.3-0.5 s of CPU under that load). Smaller
#: re-plans (a handful of orders) take a few hundredths of a second.
REOPT_ITERATIONS = 1_000
#: OR-Tools solutions (moves its search accepts) per re-plan by default: about 1 s of CPU on
#: the larger re-plans of the RL standard scenario (session 57, the same re-plans and machine:
#: 100 solutions took 0.45-3.2 s of CPU at 17-34 orders, 0.8 s at the median; 1,000 did not
#: end within 30 s of wall time at load 14).
REOPT_SOLUTIONS = 100
#: Wall-clock safety cap (seconds) of a re-plan whose search stops on its work: the default
#: PyVRP budget took up to 6.9 s of wall time at load 11 on the 2 cores, but 30 s (the first
#: cap) stopped 4 re-plans of the session-57 benchmark run at load 10-16 (other sessions'
#: runs and busy loops): four times that, so only a machine many times slower reaches it.
REOPT_CAP_S = 120.0


def courier_skill(c: int) -> str:
    """The skill that binds an order on board to courier ``c``'s vehicle."""
    return f"{TWIN_ON_BOARD_PREFIX}{c}"  # reserved: no scenario may hold it


def travel_at(world: World, used: dict[int, Location], t: float) -> MatrixTravel:
    """The travel between the ``used`` world locations (each at its ``index``) as the twin
    expects it for a route leaving at ``t``: free-flow durations x the travel factor then
    (rounded to seconds), the distances as they are."""
    rows = np.fromiter(used.keys(), dtype=np.int64, count=len(used))
    cut = np.ix_(rows, rows)
    factor = world.travel_factor(t)
    duration = np.floor(world.travel.duration_s[cut] * factor + 0.5).astype(np.int64)
    return MatrixTravel(
        duration_s=duration.tolist(), distance_m=world.travel.distance_m[cut].tolist()
    )


#: A courier's visits in the solver's terms: (job id, pickup or delivery), in route order.
Visits = list[tuple[str, StopKind]]


def current_visits(
    state: DecisionState, bound: dict[int, int], jobs: Collection[str], couriers: Collection[int]
) -> dict[int, Visits]:
    """The ``couriers``' current routes after their locked stops as visits of the solver's
    ``jobs``: a split order's first pickup stop is its job's pickup, breaks and the stops of
    orders without a job (locked, or left out of the problem) are left out."""
    out: dict[int, Visits] = {}
    for c in sorted(couriers):
        seq: Visits = []
        for st in state.routes[c]:
            if st.kind == StopType.BREAK or str(st.order) not in jobs:
                continue
            pickup = st.kind == StopType.PICKUP and st.order not in bound
            visit = (str(st.order), StopKind.PICKUP if pickup else StopKind.DELIVERY)
            if visit not in seq:  # a split order: its later pickups, its deliveries after one
                seq.append(visit)
        if seq:
            out[c] = seq
    return out


def fit_current(
    snapshot: Callable[[list[Order]], Scenario],
    jobs: list[Order],
    current: dict[int, Visits],
    far: int,
) -> tuple[list[Order], dict[int, Visits]]:
    """The jobs with the delivery windows the ``current`` routes miss widened to the solver's
    arrival there, and the current routes the solver can follow (its windows are hard).

    The current routes are scheduled by the solver's scheduler with every window open until
    ``far`` at least: a delivery reached after its window closes keeps its window until that
    arrival (the solver may deliver it as late as the current routes do, no later, and the
    twin prices the lateness of either plan when the re-plan is judged); an order whose
    pickup is reached after its node closes is taken off its current route (the twin loses
    its parcels there); a route that breaks another constraint (a break, the shift, the
    capacity) is no warm start."""
    from solvers.routing.problem import build_problem
    from solvers.routing.schedule import schedule_route

    if not current:
        return jobs, current

    def open_until_far(windows: list[TimeWindow]) -> list[TimeWindow]:
        return [TimeWindow(start_s=w.start_s, end_s=max(far, w.end_s)) for w in windows]

    def opened(job: Order) -> Order:
        update: dict[str, Any] = {"time_windows": open_until_far(job.time_windows)}
        if job.pickup is not None:
            update["pickup"] = job.pickup.model_copy(
                update={"time_windows": open_until_far(job.pickup.time_windows)}
            )
        return job.model_copy(update=update)

    problem = build_problem(snapshot([opened(j) for j in jobs]))
    vindex = {v.vehicle.id: i for i, v in enumerate(problem.vehicles)}
    task_of = {(problem.order_ids[t.order], t.kind): ti for ti, t in enumerate(problem.tasks)}
    by_id = {j.id: j for j in jobs}
    widened: dict[str, int] = {}
    fitted: dict[int, Visits] = {}
    for c, visits in current.items():
        sched = schedule_route(problem, vindex[str(c)], [task_of[v] for v in visits])
        if sched.violation is not None:
            continue
        arrival = {stop.task: stop.arrival_s for stop in sched.stops}
        lost: set[str] = set()
        for visit in visits:
            job, at = by_id[visit[0]], arrival[task_of[visit]]
            if visit[1] is StopKind.PICKUP:
                assert job.pickup is not None
                windows = job.pickup.time_windows
                if windows and at > max(w.end_s for w in windows):
                    lost.add(job.id)
            elif job.time_windows and at > max(w.end_s for w in job.time_windows):
                widened[job.id] = at
        fitted[c] = [v for v in visits if v[0] not in lost]
    if not widened:
        return jobs, fitted
    out = []
    for job in jobs:
        end = widened.get(job.id)
        if end is not None:
            (w,) = job.time_windows  # the snapshot's jobs have one window at most
            job = job.model_copy(
                update={"time_windows": [TimeWindow(start_s=w.start_s, end_s=end)]}
            )
        out.append(job)
    return out, fitted


def warm_start(current: dict[int, Visits]) -> Plan | None:
    """The current routes as the solver's initial plan (None: no route to start from)."""
    if not current:
        return None
    return Plan(
        routes=[
            Route(
                vehicle_id=str(c),
                stops=[
                    PlannedStop(order_id=o, kind=k, arrival_s=0, start_s=0, departure_s=0)
                    for o, k in visits
                ],
            )
            for c, visits in current.items()
        ]
    )


def stopped_by_clock(
    stats: SolveStats, max_iterations: int | None, max_solutions: int | None = None
) -> bool:
    """Whether a solve given a work budget (PyVRP ``max_iterations``, OR-Tools
    ``max_solutions``) was stopped by the clock first in its search (or had no time to start
    it), its repair or its break-aware pass: its plan then depends on the machine's speed.
    False for a search on the clock (no budget)."""
    budget = {"pyvrp": max_iterations, "ortools": max_solutions}.get(stats.engine)
    return budget is not None and (stats.clock_cut or bool(stats.clock_notes))


@dataclass(frozen=True)
class ReoptProblem:
    """The routing problem of one re-optimisation and what maps its plan back to routes."""

    #: the routing scenario: a vehicle per courier on shift, a job per open order
    scenario: Scenario
    #: each courier's locked stops (those of its committed order or of one on board with
    #: pickups still to make), in order
    locked: dict[int, list[Stop]]
    #: the orders with only their delivery left (on board, or the committed order's last
    #: pickup under way): a delivery-only job of their courier each, which the solver places
    bound: dict[int, int]
    #: the orders re-planned: waiting, or assigned and not collected
    open_orders: list[int]
    #: each courier's break stops still to take
    breaks: dict[int, list[Stop]]
    #: those of them the solver may place: the stops of its vehicle's ``breaks``, in order
    placeable: dict[int, list[Stop]]
    #: the couriers' current routes (after the locked stops) as the solver's warm start
    current: Plan | None = None


class PeriodicReoptPolicy:
    """Re-plan all open orders with the routing solver every ``every_s`` seconds."""

    def __init__(
        self,
        *,
        every_s: int = 300,
        engine: str = "greedy",
        max_iterations: int | None = REOPT_ITERATIONS,
        max_solutions: int | None = REOPT_SOLUTIONS,
        time_limit_s: float = REOPT_CAP_S,
        insert_between_ticks: bool = True,
        keep_if_cheaper: bool = True,
    ) -> None:
        self.every_s = every_s
        self.keep_if_cheaper = keep_if_cheaper
        self.engine = engine
        #: PyVRP iterations per re-plan (None: stop on the clock, after ``time_limit_s``;
        #: always None when the engine is not PyVRP or ``auto``)
        self.max_iterations = max_iterations if engine in ("pyvrp", "auto") else None
        #: OR-Tools solutions per re-plan (None: stop on the clock, after ``time_limit_s``;
        #: always None when the engine is not OR-Tools or ``auto``)
        self.max_solutions = max_solutions if engine in ("ortools", "auto") else None
        #: seconds per re-plan: the safety cap with an iteration budget, else the budget
        self.time_limit_s = time_limit_s
        self.insert_between_ticks = insert_between_ticks
        self.name = self._spec()
        self._fallback = CheapestInsertionPolicy(retry_s=None, dispatch_horizon_s=None)
        self._view: DispatchView | None = None
        self._last_tick = -math.inf
        self._seed = 0
        self.num_solves = 0
        #: re-plans dropped because the current routes were projected no dearer
        self.num_kept = 0
        #: re-plans the safety cap stopped before their iterations or solutions (the day is
        #: then not reproducible)
        self.num_capped = 0

    def _spec(self) -> str:
        """The ``reopt`` spec that makes this policy (engine and budget where not the defaults)."""
        every_s = self.every_s
        name = f"reopt:{every_s // 60 if every_s % 60 == 0 else every_s / 60:g}"
        if self.engine == "greedy":
            return name
        name += f":{self.engine}"
        if self.max_iterations is None and self.max_solutions is None:
            return f"{name}:{self.time_limit_s:g}s"  # on the clock
        count, default = (
            (self.max_iterations, REOPT_ITERATIONS)
            if self.engine == "pyvrp"
            else (self.max_solutions, REOPT_SOLUTIONS)
        )
        return name if self.engine == "auto" or count == default else f"{name}:{count}"

    @property
    def tick_s(self) -> int | None:
        """Re-optimisation period."""
        return self.every_s

    def reset(self, view: DispatchView, *, seed: int) -> None:
        """Remember the view; solver seeds derive from the replication seed."""
        self._view = view
        self._fallback.reset(view, seed=seed)
        self._last_tick = -math.inf
        self._seed = seed
        self.num_solves = 0
        self.num_kept = 0
        self.num_capped = 0

    def decide(self, state: DecisionState) -> Action | None:
        """Re-plan on the first decision of each tick; insert stragglers in between (and the
        tick's order when the re-plan is dropped)."""
        if state.kind == DecisionKind.TICK and state.time_s > self._last_tick:
            self._last_tick = state.time_s
            action = self.reoptimise(state)
            if action is not None:
                return action
        if self.insert_between_ticks and state.focus_order >= 0:
            return self._fallback.decide(state)
        return None

    # ------------------------------------------------------------------
    def reoptimise(self, state: DecisionState) -> ReplaceRoutes | None:
        """Solve the current situation and return the new routes (None: nothing to re-plan,
        or, with ``keep_if_cheaper``, a re-plan not projected cheaper than the current routes)."""
        from solvers.routing import RoutingParams, solve_routes_with_stats

        view = self._view
        assert view is not None, "call reset() first"
        problem = self.routing_scenario(state)
        if problem is None:
            return None
        scenario, prefixes, placeable = problem.scenario, problem.locked, problem.placeable
        params = RoutingParams(
            engine=self.engine,
            time_limit_s=self.time_limit_s,
            seed=self._seed + self.num_solves,
            initial_plan=problem.current,
            max_iterations=self.max_iterations,
            max_solutions=self.max_solutions,
        )
        plan, stats = solve_routes_with_stats(scenario, params)
        self.num_solves += 1
        if stopped_by_clock(stats, self.max_iterations, self.max_solutions):
            self.num_capped += 1
            log.warning(
                "reopt: a re-plan at t=%.0f s was stopped by its %g s safety cap before its "
                "%s's budget: this day is not reproducible",
                state.time_s,
                self.time_limit_s,
                stats.engine,
            )
        routes: dict[int, list[Stop]] = {c: list(stops) for c, stops in prefixes.items()}
        placed: set[tuple[int, int]] = set()
        by_vehicle = {v.id: v for v in scenario.vehicles}
        for route in plan.routes:
            c = int(route.vehicle_id)
            out = routes.setdefault(c, [])
            mine = placeable.get(c, [])  # the stops of the vehicle's breaks, in order
            vehicle_breaks = by_vehicle[route.vehicle_id].breaks
            break_stops = [st for st in route.stops if st.kind.value == "break"]
            matched = match_breaks(break_stops, vehicle_breaks)
            for st in route.stops:
                if st.kind.value == "break":  # the courier's break the solver placed here
                    brk = matched.get(id(st))
                    if brk is not None:
                        stop = mine[next(i for i, b in enumerate(vehicle_breaks) if b is brk)]
                        out.append(stop)
                        placed.add((c, stop.aux))
                    continue
                if st.order_id is None:
                    continue
                o = int(st.order_id)
                if st.kind.value == "pickup":
                    out.extend(view.pickup_stops(o))
                elif st.kind.value == "delivery":
                    out.append(Stop(int(StopType.DELIVERY), o, view.orders.location[o]))
        # the deliveries on board the solver did not place go last, in their order
        served = {st.order for stops in routes.values() for st in stops}
        for c in range(state.num_couriers):
            left = [
                st
                for st in state.routes[c]
                if st.kind == StopType.DELIVERY
                and problem.bound.get(st.order) == c
                and st.order not in served
            ]
            if left:
                routes.setdefault(c, []).extend(left)
        for c, stops in problem.breaks.items():  # breaks the solver did not place
            left = [bs for bs in stops if (c, bs.aux) not in placed]
            if not left:
                continue
            prefix = prefixes.get(c, [])
            _, after = view.expected_after(c, prefix)
            late = [bs for bs in left if after > view.break_window(bs.aux)[1]]
            on_time = [bs for bs in left if bs not in late]
            rest = routes.setdefault(c, [])[len(prefix) :]
            routes[c] = [*late, *prefix, *on_time, *rest]
        if self.keep_if_cheaper and self.replan_saving_cents(state, routes) <= 1.0:
            self.num_kept += 1
            return None
        return ReplaceRoutes(routes=routes)

    def replan_saving_cents(self, state: DecisionState, routes: dict[int, list[Stop]]) -> float:
        """Projected cost of the couriers' current routes minus that of ``routes``, both by the
        twin's planned cost: a waiting order the re-plan serves at its cheapest insertion now
        (else its penalty) on the current side, the orders it takes off a route at what they
        cost there on the new side, at least their penalties once released (one waiting on
        both sides counts on neither)."""
        view = self._view
        assert view is not None
        penalty = view.orders.penalty_cents
        changed = [c for c, stops in routes.items() if tuple(stops) != state.routes[c]]
        placed = {st.order for c in changed for st in routes[c] if st.order >= 0}
        current_cost = {c: view.planned_cost_cents(c) for c in changed}
        current = sum(current_cost.values()) + self.waiting_cost_cents(
            state, [int(o) for o in state.pending if int(o) in placed]
        )
        new = sum(view.planned_cost_cents(c, routes[c]) for c in changed)
        waiting = {int(o) for o in state.pending}
        for c in changed:
            had = state.routes[c]
            dropped = {st.order for st in had if st.order >= 0} - placed - waiting
            if not dropped:
                continue
            # Taken off the routes: what serving them where they are costs (together: one by
            # one, each of many on a route looks nearly free), since the fallback inserts them
            # again, so a drop is never a saving; and at least their penalties once released
            # (the solver left them out: they may fit nowhere). One not released yet (a
            # plan's) was not the solver's to place: it is inserted at its release.
            without = [st for st in had if st.order not in dropped]
            serving = current_cost[c] - view.planned_cost_cents(c, without)
            released = [o for o in dropped if view.order_status(o) != OrderStatus.UNKNOWN]
            new += max(serving, sum(penalty[o] for o in released))
        return current - new

    def waiting_cost_cents(self, state: DecisionState, waiting: list[int]) -> float:
        """What the fallback's cheapest insertion of the ``waiting`` orders adds to the current
        routes: each in turn at its cheapest insertion into the routes with the ones before it
        inserted (else its penalty), so two orders are not both priced at one route's slack."""
        view = self._view
        assert view is not None
        routes: dict[int, tuple[Stop, ...]] = {}  # the routes changed by the insertions so far
        total = 0.0
        for o in waiting:
            best: tuple[int, Quote] | None = None
            for c in range(view.world.num_vehicles):
                q = view.quote_on(o, c, routes[c]) if c in routes else view.quote(o, c)
                if q.feasible and (best is None or q.cost_delta_cents < best[1].cost_delta_cents):
                    best = c, q
            if best is None:
                total += view.orders.penalty_cents[o]
                continue
            c, q = best
            total += q.cost_delta_cents
            routes[c] = view.with_order(o, routes.get(c, state.routes[c]), q)
        return total

    def routing_scenario(self, state: DecisionState) -> ReoptProblem | None:
        """The routing problem of the current situation (None: no courier on shift, or no
        open order and no courier with two stops to reorder), with the locked stops and
        breaks that map its plan back and the current routes as its warm start."""
        view = self._view
        assert view is not None
        world = view.world
        orders = view.orders
        now = state.time_s
        status = view.order_status
        locked_stops: dict[int, list[Stop]] = {}
        break_stops: dict[int, list[Stop]] = {}
        open_orders: list[int] = [int(o) for o in state.pending]
        bound: dict[int, int] = {}  # on board (all but its delivery done) -> its courier
        for c in range(state.num_couriers):
            committed = state.committed[c]
            locked: set[int] = set()
            if committed is not None and committed.order >= 0:
                locked.add(committed.order)
            for st in state.routes[c]:
                if st.order >= 0 and status(st.order) == OrderStatus.CARRIED:
                    locked.add(st.order)
            # an order whose only stop left is its delivery is a delivery-only job of its
            # courier (its parcels on board from the start), placed by the solver like any
            # other; one with pickups left keeps its stops in front, in their order
            left = Counter(st.order for st in state.routes[c] if st.order in locked)
            for st in state.routes[c]:
                if st.kind == StopType.DELIVERY and st.order in locked and left[st.order] == 1:
                    bound[st.order] = c
            locked_stops[c] = [
                st
                for st in state.routes[c]
                if st.kind != StopType.BREAK and st.order in locked and st.order not in bound
            ]
            brk = [st for st in state.routes[c] if st.kind == StopType.BREAK]
            if brk:
                break_stops[c] = brk
            for st in state.routes[c]:
                if (
                    st.kind == StopType.DELIVERY
                    and st.order not in locked
                    and status(st.order) == OrderStatus.ASSIGNED
                ):
                    open_orders.append(st.order)
        # once each (a planned route delivers a split order's parcels at one stop each)
        open_orders = list(dict.fromkeys(open_orders))
        if not open_orders and not bound:
            return None
        # the open orders, then those on board: a job each
        end_of_day = world.horizon_end_s + 6 * 3600.0
        used: dict[int, Location] = {}  # world location -> its row in the problem's matrices

        def place(loc: int) -> Location:
            return used.setdefault(loc, Location(index=len(used)))

        vehicles = []
        scen = world.scenario
        placeable: dict[int, list[Stop]] = {}
        for c in range(state.num_couriers):
            if not state.courier_on_shift[c]:
                continue
            loc, t = view.expected_after(c, locked_stops[c])
            shift_end = world.shift_end_s[c] if math.isfinite(world.shift_end_s[c]) else end_of_day
            if t >= shift_end:
                continue
            src = scen.vehicles[c]
            # The breaks the solver can place: those that can still start in their window
            # after the locked stops and before the shift ends (the others are placed after).
            vehicle_breaks: list[Break] = []
            for st in break_stops.get(c, []):
                earliest, latest, duration = view.break_window(st.aux)
                lo = max(math.ceil(earliest), math.ceil(t))
                hi = min(latest, shift_end)
                if lo <= hi and duration >= 1:
                    vehicle_breaks.append(
                        Break(
                            window=TimeWindow(start_s=lo, end_s=math.floor(hi)),
                            duration_s=math.ceil(duration),
                        )
                    )
                    placeable.setdefault(c, []).append(st)
            vehicles.append(
                Vehicle(
                    id=str(c),
                    start_location=place(loc),
                    end_location=place(world.vehicle_end_loc[c]),
                    shift=TimeWindow(start_s=math.ceil(t), end_s=math.floor(shift_end)),
                    # the twin's courier leaves for its next stop at once and waits there, so
                    # its planned cost counts the time from now: the solver's may not start
                    # later either. Not with breaks: the twin counts the wait for a break in
                    # the route whether or not orders come before it, the solver only on a
                    # vehicle it uses (it would leave such a courier idle).
                    latest_start_s=None if vehicle_breaks else math.ceil(t),
                    capacity=src.capacity,
                    skills=[*src.skills, courier_skill(c)],
                    fixed_cost_cents=0
                    if not math.isnan(view.first_departure(c))
                    else (src.fixed_cost_cents),
                    cost_per_km_cents=src.cost_per_km_cents,
                    cost_per_hour_cents=src.cost_per_hour_cents,
                    breaks=vehicle_breaks,
                )
            )
        if not vehicles:
            return None
        jobs = []
        soonest = math.ceil(now)
        on_road = {int(v.id) for v in vehicles}  # (a courier without a vehicle keeps them)
        for o in [*open_orders, *(o for o, c in bound.items() if c in on_road)]:
            stops = () if o in bound else view.pickup_stops(o)
            job: dict[str, Any] = {
                "id": str(o),
                "location": place(orders.location[o]),
                "service_s": round(orders.service_s[o]),
                "demand": [round(x) for x in orders.demand[o]],
                "required_skills": sorted(orders.skills[o]),
                "penalty_cents": round(orders.penalty_cents[o]),
            }
            if o in bound:  # on its courier's vehicle only, and served (mandatory)
                job["required_skills"].append(courier_skill(bound[o]))
                job["penalty_cents"] = None
            start, end = orders.tw_start[o], orders.tw_end[o]
            if math.isfinite(end) and end > now + 600:
                job["time_windows"] = [
                    TimeWindow(start_s=max(soonest, math.ceil(start)), end_s=math.floor(end))
                ]
            if stops:
                ready = [view.ready_estimate(o, st.node) for st in stops]
                earliest = max(soonest, math.ceil(max(ready)))
                if not math.isfinite(max(ready)):
                    continue
                # picked before the first of its nodes closes for good (the twin loses the
                # parcels a closed node still holds)
                closes = min(
                    [end_of_day, *(world.nodes[st.node].closes_for_good_s() for st in stops)]
                )
                if closes < earliest:
                    continue
                job["pickup"] = PickupSpec(
                    location=place(stops[0].location),
                    time_windows=[TimeWindow(start_s=earliest, end_s=math.floor(closes))],
                )
            jobs.append(Order(**job))
        if not open_orders and not any(
            len(placeable.get(int(v.id), [])) + sum(1 for c in bound.values() if c == int(v.id))
            >= 2
            for v in vehicles
        ):
            return None  # no open order, and no courier with two stops the solver could reorder
        travel = travel_at(world, used, now)

        def snapshot(orders: list[Order]) -> Scenario:
            # the shifts and windows as the day has them (a stored scenario may have a shift
            # past its horizon): the horizon covers them, so the snapshot is always valid
            starts = [v.shift.start_s for v in vehicles if v.shift is not None]
            ends = [v.shift.end_s for v in vehicles if v.shift is not None]
            for made in orders:
                for w in [*made.time_windows, *(made.pickup.time_windows if made.pickup else [])]:
                    starts.append(w.start_s)
                    ends.append(w.end_s)
            return Scenario(
                name="reopt",
                horizon=TimeWindow(
                    start_s=min([soonest, *starts]), end_s=max([math.floor(end_of_day), *ends])
                ),
                travel=travel,
                capacity_dims=scen.capacity_dims,
                orders=orders,
                vehicles=vehicles,
                costs=scen.costs,
            )

        current = current_visits(state, bound, {j.id for j in jobs}, on_road)
        jobs, current = fit_current(snapshot, jobs, current, math.floor(end_of_day))
        return ReoptProblem(
            scenario=snapshot(jobs),
            locked=locked_stops,
            bound=bound,
            open_orders=open_orders,
            breaks=break_stops,
            placeable=placeable,
            current=warm_start(current),
        )
