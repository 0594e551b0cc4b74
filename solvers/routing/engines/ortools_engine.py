"""OR-Tools adapter: the routing library with guided local search, integer matrices only.

Every transit is a registered integer matrix or vector (no Python transit callback runs inside
the search; Python is called back only at each solution and failed move, :class:`_Stall`);
OR-Tools needs one node per visit, so the problem's shared nodes are expanded (one row per
task). The search starts from the greedy construction (or the warm start), even one with no
route (every order left out): OR-Tools' own first-solution strategies can find nothing on
tight windows (Solomon R101 in 5 s) or on many optional orders (none in 6.3 s at 2,000),
and a seed lets guided local search spend the budget improving. The search stops at its
time limit, at ``max_solutions``, or once it has stalled (:data:`STALL_SOLUTIONS_BASE`).
Mandatory orders are disjunctions with a penalty larger than any complete plan (times 1 + the
rank of the order's priority, so the lowest priorities are dropped first), so a solution
always exists and orders that cannot be fitted come back as dropped (reported as unassigned,
never silently).
The courier jobs of an order split over several nodes are one disjunction, its penalty
charged once, their visits active together (all or nothing).
A delivery loaded at the start with a release time (its order's ``created_s``) holds its
route's departure back to it, through a dimension that is constant along a route.
A vehicle whose empty route is already infeasible (it cannot drive from its start to its end
within its shift, duration or distance limit) is left out of the model, which it would make
infeasible for the whole fleet; it stays unused.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import wait

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from scenarios.errors import InputError, ScenarioInputError
from scenarios.geo import MAX_INT
from solvers.cancel import cancelled, current_cancel
from solvers.routing.engines.base import STOPPED_BY_CLOCK, EngineResult, EngineSettings
from solvers.routing.greedy import greedy_routes
from solvers.routing.problem import (
    DISRUPTION_FIELD,
    MILLI,
    UNLIMITED,
    RoutingProblem,
    VehicleInfo,
    objective_bound,
)


def usable_vehicles(problem: RoutingProblem) -> list[int]:
    """The vehicles whose empty route (start straight to end) is feasible.

    Without its breaks: a vehicle left unused takes none (the validator asks for no break
    on a route without stops), and one whose breaks do not fit the bare trip may still fit
    them at a stop (a break window near the shift's end, taken at a stop near the end).
    """
    out = []
    for vi, veh in enumerate(problem.vehicles):
        travel = int(problem.duration[veh.start_node, veh.end_node])
        length = int(problem.distance[veh.start_node, veh.end_node])
        if veh.shift[0] + travel > veh.shift[1]:
            continue
        if veh.max_duration_s is not None and travel > veh.max_duration_s:
            continue
        if veh.max_distance_m is not None and length > veh.max_distance_m:
            continue
        out.append(vi)
    return out


def _add_releases(
    routing: pywrapcp.RoutingModel,
    manager: pywrapcp.RoutingIndexManager,
    tdim: pywrapcp.RoutingDimension,
    problem: RoutingProblem,
    vehicles: list[VehicleInfo],
    nd: int,
    horizon: int,
) -> None:
    """A route leaves its start no earlier than the release of every delivery it loads there.

    A ``release`` dimension with no transit and no slack holds one value along a route; each
    such delivery's value is at least its release, and the route's departure (its start's
    time cumul) at least that value.
    """
    zero = routing.RegisterUnaryTransitVector([0] * manager.GetNumberOfNodes())
    routing.AddDimension(zero, 0, horizon, False, "release")
    rdim = routing.GetDimensionOrDie("release")
    for ti, t in enumerate(problem.tasks):
        if t.release:
            # a release past every vehicle's shift end: the order is never served (the
            # diagnosis leaves such an order out before any engine runs)
            idx = manager.NodeToIndex(nd + ti)
            if t.release > horizon:
                routing.VehicleVar(idx).SetValues([-1])
            else:
                rdim.CumulVar(idx).SetMin(t.release)
    solver = routing.solver()
    for k in range(len(vehicles)):
        solver.Add(rdim.CumulVar(routing.Start(k)) <= tdim.CumulVar(routing.Start(k)))


@contextmanager
def _ctrl_c_sets(flag: threading.Event) -> Iterator[bool]:
    """While inside, Ctrl-C sets ``flag`` instead of raising KeyboardInterrupt (yields True).

    OR-Tools searches in C++, where Python's handler cannot run: a KeyboardInterrupt would only
    come once the whole time limit is spent. Only in the main thread, and only when SIGINT has
    Python's default handler (an application's own handler is left alone: yields False).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield False
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flag.set())
    try:
        yield True
    finally:
        signal.signal(signal.SIGINT, previous)


#: The search status of a solve that reached its time limit with no solution.
FAIL_TIMEOUT = routing_enums_pb2.RoutingSearchStatus.ROUTING_FAIL_TIMEOUT

#: Seconds per squared visit count OR-Tools takes to complete a solution with driver breaks
#: (see :func:`completion_s`).
COMPLETION_S_PER_TASK_SQ = 2.5e-7

#: From this many visits with driver breaks, OR-Tools' search completes the greedy plan it
#: starts from (its first solution, in the search with a time limit: the search process's
#: first step) far slower than :func:`completion_s` says, and the start-up estimate
#: (:meth:`ORToolsEngine.min_time_s`) takes :data:`SEED_COMPLETION_S_PER_TASK_SQ` per squared
#: visit count instead. Measured (session 79; ``routing_budget.py``'s city days, seed 1 unless
#: said, the seeded search in the solve's own process, from the call to the first solution,
#: CPU s; shared lock, load 3-5): 0.23 s at 1,000 visits, 0.53 at 1,500, 0.79 at 1,800, 1.05
#: at 2,000 (as ``completion_s``: 0.25, 0.56, 0.81, 1.0), then a jump: 5.6 s at 2,050, 6.1 at
#: 2,100, 6.6 at 2,200, 9.6 and 9.2 at 2,400 (seeds 1 and 2), 10.8 at 2,600. The 2,400-order
#: day at 10 s started a search that burned 6.8 s of CPU in its process and was killed with
#: no solution (session 78; the estimate said 5.44 s, 1.44 s of it for the completion).
SEED_COMPLETION_SLOW_TASKS = 2_001
#: CPU seconds per squared visit count of the seed's completion from
#: :data:`SEED_COMPLETION_SLOW_TASKS` visits with breaks: the largest ratio measured there
#: (9.6 s at 2,400 visits: 1.67e-6; 1.33e-6 at 2,050, 1.38e-6 at 2,100, 1.37e-6 at 2,200,
#: 1.60e-6 at 2,600).
SEED_COMPLETION_S_PER_TASK_SQ = 1.7e-6

#: The search stops once this many solutions in a row (the moves guided local search accepts),
#: plus :data:`STALL_SOLUTIONS_PER_TASK` per visit, have not lowered the best cost found
#: (OR-Tools' objective, without the search's penalties): guided local search never ends by
#: itself, and a day of one or two orders took its whole time limit (8.5 s of the default 10).
#: Chosen from improvement traces (session 66: the solution number of each new best;
#: ``engine="ortools"``, ``time_limit_s=10``, one worker, each run twice): generated city days
#: of 1-80 orders (seeds 0-4), their pickup-and-delivery jobs (2-40 orders, seeds 0-2) and the
#: first 5-50 orders of Solomon C101, R101, RC101, R201, C201 and RC201, the 25 and 50 also at
#: 30 s. The longest run of solutions between two new bests was 331 on 50 visits (R201 at
#: 30 s), then 179 (R101, 50 visits), 97 (R201, 25) and 21 (a 5-order city day): 30 + 10 per
#: visit (530 at 50 visits) stopped none of the 190 traced runs before its last new best, and
#: 93 of them before their clock; 30 + 5 per visit would have stopped R201's 50 after 363
#: solutions, 1.0 % dearer than its best at 30 s (8,064 against 7,986).
STALL_SOLUTIONS_BASE = 30
#: Solutions without a new best allowed per visit (see :data:`STALL_SOLUTIONS_BASE`).
STALL_SOLUTIONS_PER_TASK = 10
#: The search also stops after this many failed moves since its last solution: with no move
#: to make (one vehicle, one visit) guided local search accepts no solution after its seed and
#: loops on to the clock (36,000 failures in 3 s on a one-order day), so no solution is
#: counted. Between two solutions of the traced runs (see :data:`STALL_SOLUTIONS_BASE`) the
#: solver failed at most 55 times, and at most 19 times on a 300- and a 600-order city day,
#: Homberger C1_4_1 and Li & Lim lr101 (10 s each).
STALL_FAILURES = 1_000
#: Off, the search runs to its time limit or ``max_solutions`` as before session 66 (the stall
#: stop's benchmark, ``benchmarks/routing_small.py``, compares the two).
STALL_STOP = True


def stall_solutions(problem: RoutingProblem) -> int:
    """Solutions in a row without a new best cost after which the search stops."""
    return STALL_SOLUTIONS_BASE + STALL_SOLUTIONS_PER_TASK * len(problem.tasks)


class _Stall(pywrapcp.SearchMonitor):
    """Watches a search: its solutions, those in a row that did not lower its best cost, and
    its failed moves since the last solution; cancels the search once either count reaches
    its limit (``limits``: solutions, failures; None watches without cancelling)."""

    def __init__(self, routing: pywrapcp.RoutingModel, limits: tuple[int, int] | None) -> None:
        super().__init__(routing.solver())
        self.routing = routing
        self.cost = routing.CostVar()
        self.limits = limits
        self.solutions = 0
        self.best: int | None = None
        self.since_best = 0
        #: the solver's failure count at the last solution
        self.failed_at = 0
        #: why the stall stopped the search (None: it did not)
        self.stopped: str | None = None

    def solution(self) -> None:
        """Count a solution (called by the model's solution callback)."""
        self.solutions += 1
        self.failed_at = self.routing.solver().Failures()
        value = int(self.cost.Value())
        if self.best is None or value < self.best:
            self.best, self.since_best = value, 0
        else:
            self.since_best += 1
        if self.limits is not None and self.stopped is None and self.since_best >= self.limits[0]:
            self.stopped = f"stopped after {self.since_best} solutions without improvement"
            self.routing.CancelSearch()

    def BeginFail(self) -> None:  # noqa: N802 (OR-Tools' name)
        """Cancel once too many moves failed since the last solution (counted from the first:
        finding that one is the seed's completion or the first-solution heuristic)."""
        if self.limits is None or self.stopped is not None or not self.solutions:
            return
        failures = self.routing.solver().Failures() - self.failed_at
        if failures >= self.limits[1]:
            self.stopped = f"stopped after {failures} failed moves without a solution"
            self.routing.CancelSearch()


#: A seeded search of a problem with driver breaks and at least this many visits runs in a
#: forked process killed at its deadline (:func:`hard_stop`): OR-Tools looks at its clock only
#: between moves, and completing the greedy seed (cumuls, break starts) is one step that ran
#: past the deadline (2,400-order city day of ``routing_budget.py``, seed 1: 4.6-6.3 s for a
#: limit of 1.7-5.1 s, session 78; the answer came up to 1.7 s late). Smaller days complete
#: their seed in a fraction of a second (0.08 s of CPU at 600 orders, 0.57 s at 1,500).
HARD_STOP_TASKS = 1_000
#: In a search killed at its deadline, a new best solution is sent to the solve at most this
#: often (s): the routes of a 2,400-visit day are read from the solver at each one.
REPORT_EVERY_S = 0.1


def hard_stop(problem: RoutingProblem) -> bool:
    """Whether the search runs in a process killed at its deadline (:data:`HARD_STOP_TASKS`)."""
    return hasattr(os, "fork") and problem.has_breaks and len(problem.tasks) >= HARD_STOP_TASKS


@dataclass(frozen=True)
class _Found:
    """What a search gave: its routes (None: no solution), objective, status, how it started,
    solutions counted, why its stall stopped it, its time limit and start (s), and whether its
    process was killed at its deadline (its best solution reported so far kept)."""

    routes: dict[int, list[int]] | None
    objective: int
    status: str
    seeded: str
    solutions: int
    stopped: str | None
    clock_s: tuple[float, ...] = ()
    killed: bool = False


def _search_killed_at(
    search: Callable[[], _Found],
    report: Callable[[Callable[[object], None]], None],
    end: float,
    interrupted: threading.Event,
) -> _Found:
    """``search()`` in a forked process killed at ``end`` (a ``time.perf_counter()`` value),
    or once the caller cancels or presses Ctrl-C; ``report(send)`` is called in that process
    first, to send ``(cost, routes)`` of each new best solution. Killed, the last best sent is
    the outcome (none: no solution)."""
    from solvers.routing.engines.pyvrp_engine import (
        _HELLO,
        _Child,
        _close_inherited_fds,
        _die_with_parent,
        _exit_with_parent,
        _fork_quietly,
        _prctl,
        _send,
    )

    parent = os.getpid()
    _prctl()  # loaded here: the search process loads nothing
    reader, writer = os.pipe()
    children: list[_Child] = []
    try:
        pid = _fork_quietly(lambda pid: children.append(_Child(pid, reader)))
        if pid == 0:  # the child: never returns into the caller's code
            try:
                _send(writer, (_HELLO, os.getpid()))
                if not _die_with_parent(parent):
                    _exit_with_parent(parent)
                os.close(reader)
                _close_inherited_fds(keep=writer)
                report(lambda msg: _send(writer, ("best", msg)))
                _send(writer, ("done", search()))
            except BaseException as exc:  # handed to the parent, which raises it
                with contextlib.suppress(BaseException):
                    _send(writer, ("error", RuntimeError(f"OR-Tools search: {exc!r}")))
            finally:
                os._exit(0)
        os.close(writer)
        writer = -1
        os.set_blocking(reader, False)
        [child] = children
        best: tuple[int, dict[int, list[int]]] | None = None
        while not child.eof:
            left = end - time.perf_counter()
            if left <= 0 or cancelled() or interrupted.is_set():
                break
            if not wait([reader], timeout=min(left, 0.25)):
                continue
            for msg in child.read(until=end):
                if msg[0] == "best":
                    best = msg[1]
                elif msg[0] == "done":
                    found: _Found = msg[1]
                    return found
                elif msg[0] == "error":
                    raise msg[1]
        child.kill()
        for msg in child.read():  # what it sent before it was killed: in the pipe already
            if msg[0] == "best":
                best = msg[1]
            elif msg[0] == "done":
                return msg[1]
        what = "killed at its deadline" if time.perf_counter() >= end else "stopped"
        return _Found(
            routes=None if best is None else best[1],
            objective=0 if best is None else int(best[0]),
            status=f"search {what}",
            seeded=(
                "started from the greedy plan, its best solution so far kept"
                if best is not None
                else "the completion of the greedy plan (driver breaks) ran past the deadline"
            ),
            solutions=0,
            stopped=None,
            killed=True,
        )
    finally:
        if writer >= 0:
            os.close(writer)
        for child in children:
            child.kill()
            # reaped in the background: its end (the model's memory freed) took 0.03-0.05 s
            # at 2,400 visits, and the answer came that late
            threading.Thread(target=child.reap, name="ortools-reap", daemon=True).start()
        os.close(reader)


class ORToolsEngine:
    """Solve with OR-Tools routing (guided local search from a greedy seed)."""

    name = "ortools"

    def unsupported(self, problem: RoutingProblem, settings: EngineSettings) -> str | None:
        """OR-Tools models every feature of the domain model."""
        return None

    def min_time_s(self, problem: RoutingProblem) -> float:
        """Rough time to build the model (matrices go in as Python lists) and complete the
        greedy plan it starts from, before searching."""
        n = problem.num_depot_nodes + len(problem.tasks)
        matrices = 2 + len({v.unit_distance_cost for v in problem.vehicles})
        return 0.05 + 1.5e-7 * n * n * matrices + 2e-4 * n + seed_completion_s(problem)

    def min_start_s(self, problem: RoutingProblem) -> float | None:
        """None: OR-Tools starts from the greedy plan itself (completed, which is its search's
        first step)."""
        return None

    def solve(self, problem: RoutingProblem, settings: EngineSettings) -> EngineResult:
        """Build the model, seed it, run guided local search until its time limit, solution
        budget or stall."""
        end = settings.end()
        t_build = time.perf_counter()
        p = problem
        # model vehicle k is problem vehicle fleet[k]
        fleet = usable_vehicles(p)
        slot = {vi: k for k, vi in enumerate(fleet)}
        if not fleet:
            return EngineResult(
                routes={}, objective=0, detail="no vehicle can reach its end within its limits"
            )
        vehicles = [p.vehicles[vi] for vi in fleet]
        nv = len(fleet)
        # the depots of the vehicles kept (a depot no vehicle starts or ends at would be a
        # visit), then one node per visit: node nd + ti is task ti
        depots = sorted({v.start_node for v in vehicles} | {v.end_node for v in vehicles})
        depot = {node: i for i, node in enumerate(depots)}
        nd = len(depots)
        starts = [depot[v.start_node] for v in vehicles]
        ends = [depot[v.end_node] for v in vehicles]
        num_nodes = nd + len(p.tasks)
        rows = np.array(depots + [t.node for t in p.tasks], dtype=np.int64)
        dist = p.distance[np.ix_(rows, rows)]
        dur = p.duration[np.ix_(rows, rows)]
        manager = pywrapcp.RoutingIndexManager(num_nodes, nv, starts, ends)
        routing = pywrapcp.RoutingModel(manager)
        solver = routing.solver()

        service = [0] * num_nodes
        for ti, t in enumerate(p.tasks):
            service[nd + ti] = t.service_s

        # --- arc costs: one matrix per distinct (distance price, disruption owner)
        cost_cb: dict[tuple[int, int], int] = {}
        disrupt = settings.disruption_cost > 0 and bool(settings.original_vehicle)
        owner_nodes: dict[int, list[int]] = {}
        if disrupt:
            for ti, v in settings.original_vehicle.items():
                owner_nodes.setdefault(v, []).append(nd + ti)
        all_owned = [n for nodes in owner_nodes.values() for n in nodes]
        for k, vi in enumerate(fleet):
            veh = p.vehicles[vi]
            # vehicles that carried nothing in the initial plan share one matrix
            key = (veh.unit_distance_cost, vi if disrupt and vi in owner_nodes else -1)
            if key not in cost_cb:
                mat = dist * veh.unit_distance_cost
                if disrupt:
                    mat = mat.copy()
                    # entering a task that was on another vehicle costs the disruption price
                    mine = set(owner_nodes.get(vi, []))
                    moved = [n for n in all_owned if n not in mine]
                    if moved:
                        mat[:, moved] += settings.disruption_cost
                cost_cb[key] = routing.RegisterTransitMatrix(mat.tolist())
            routing.SetArcCostEvaluatorOfVehicle(cost_cb[key], k)
            if veh.fixed_cost:
                routing.SetFixedCostOfVehicle(veh.fixed_cost, k)

        # --- time
        time_mat = dur + [[s] for s in service]  # travel + service at the origin
        time_cb = routing.RegisterTransitMatrix(time_mat.tolist())
        horizon = max(max(v.shift[1] for v in vehicles), 1)
        routing.AddDimension(time_cb, horizon, horizon, False, "time")
        tdim = routing.GetDimensionOrDie("time")
        for ti, t in enumerate(p.tasks):
            idx = manager.NodeToIndex(nd + ti)
            if t.windows and t.windows[0][0] > horizon:
                # no vehicle of the model works when it opens (the vehicle that could was
                # left out above): the order is left out (SetRange would fail the model)
                routing.VehicleVar(idx).SetValues([-1])
            elif t.windows:
                cv = tdim.CumulVar(idx)
                cv.SetRange(t.windows[0][0], min(t.windows[-1][1], horizon))
                for (_, hi), (lo, _) in zip(t.windows, t.windows[1:], strict=False):
                    if lo - 1 >= hi + 1:
                        cv.RemoveInterval(hi + 1, lo - 1)
        for k, veh in enumerate(vehicles):
            tdim.CumulVar(routing.Start(k)).SetRange(veh.shift[0], veh.start_late)
            tdim.CumulVar(routing.End(k)).SetRange(veh.shift[0], veh.shift[1])
            if veh.max_duration_s is not None:
                tdim.SetSpanUpperBoundForVehicle(veh.max_duration_s, k)
            if veh.unit_duration_cost:
                tdim.SetSpanCostCoefficientForVehicle(veh.unit_duration_cost, k)
            routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(routing.End(k)))
            routing.AddVariableMaximizedByFinalizer(tdim.CumulVar(routing.Start(k)))
        if p.has_releases:
            _add_releases(routing, manager, tdim, p, vehicles, nd, horizon)
        if p.has_breaks:
            visit = [0] * routing.Size()
            for index in range(routing.Size()):
                visit[index] = service[manager.IndexToNode(index)]
            for k, veh in enumerate(vehicles):
                if not veh.breaks:
                    continue
                intervals = [
                    solver.FixedDurationIntervalVar(lo, hi, length, False, f"break_{k}_{b}")
                    for b, (lo, hi, length) in enumerate(veh.breaks)
                ]
                tdim.SetBreakIntervalsOfVehicle(intervals, k, visit)

        # --- capacities: one dimension per capacity dimension
        mixed = p.has_pickups
        for d in range(p.dims):
            change = [0] * num_nodes
            for ti, t in enumerate(p.tasks):
                info = p.orders[t.order]
                change[nd + ti] = (
                    -t.load_change[d] if (info.from_depot and not mixed) else (t.load_change[d])
                )
            caps = [min(v.capacity[d], UNLIMITED) for v in vehicles]
            if not any(change) and all(c >= UNLIMITED for c in caps):
                continue
            cb = routing.RegisterUnaryTransitVector(change)
            routing.AddDimensionWithVehicleCapacity(cb, 0, caps, not mixed, f"load{d}")
            if mixed:
                # load = start cumul (what leaves the depot) and it must all be delivered
                ldim = routing.GetDimensionOrDie(f"load{d}")
                for k in range(nv):
                    ldim.CumulVar(routing.End(k)).SetValue(0)

        # --- distance limits
        if any(v.max_distance_m is not None for v in vehicles):
            dcb = routing.RegisterTransitMatrix(dist.tolist())
            caps = [
                v.max_distance_m if v.max_distance_m is not None else UNLIMITED for v in vehicles
            ]
            routing.AddDimensionWithVehicleCapacity(dcb, 0, caps, True, "distance")

        # --- pairs, skills, optional orders
        max_arc = int(dist.max()) if dist.size else 1
        max_price = max((v.unit_distance_cost for v in vehicles), default=1) or 1
        big = mandatory_drop_penalty(
            p,
            settings,
            10 * (len(p.tasks) + 2 * nv) * max(1, max_arc) * max_price
            + 10 * sum(v.fixed_cost for v in vehicles)
            + 10**6,
        )
        # pins on a vehicle left out cannot be kept (the warm start never has any: a route
        # on such a vehicle is infeasible, so its pins are released)
        pinned_routes = {
            slot[vi]: [t for t in seq if t in settings.pinned]
            for vi, seq in settings.initial.items()
            if vi in slot
        }
        pinned_orders = {p.tasks[t].order for pins in pinned_routes.values() for t in pins}
        # an order split over nodes (its courier jobs, p.groups) is served whole or not at
        # all: one disjunction over all its visits, its penalty charged once when any is
        # left out (PENALIZE_ONCE), and every visit active together; a group with a pinned
        # job keeps a disjunction per job (the pass after the search makes it whole)
        group_idxs: dict[int, list[int]] = {
            g: [] for g, group in enumerate(p.groups) if not pinned_orders.intersection(group)
        }
        for oi, info in enumerate(p.orders):
            idxs = [manager.NodeToIndex(nd + t) for t in info.tasks]
            if info.pickup is not None:
                pi, di = idxs
                routing.AddPickupAndDelivery(pi, di)
                solver.Add(routing.VehicleVar(pi) == routing.VehicleVar(di))
                solver.Add(tdim.CumulVar(pi) <= tdim.CumulVar(di))
            if info.skills:
                allowed = [k for k, v in enumerate(vehicles) if v.can_serve(info)]
                for idx in idxs:
                    # SetAllowedVehiclesForIndex does not accept Python lists in 9.15
                    routing.VehicleVar(idx).SetValues([-1, *allowed])
            if oi in pinned_orders:
                continue
            # a higher-priority mandatory order costs more to leave out
            penalty = info.penalty if info.penalty is not None else big * info.drop_weight
            g = p.group_of.get(oi)
            if g in group_idxs:
                group_idxs[g].extend(idxs)
                continue
            routing.AddDisjunction(idxs, penalty, len(idxs))
        for g, idxs in group_idxs.items():
            first = p.orders[p.groups[g][0]]  # the jobs of one order share its penalty
            penalty = first.penalty if first.penalty is not None else big * first.drop_weight
            routing.AddDisjunction(idxs, penalty, len(idxs), routing.PENALIZE_ONCE)
            for idx in idxs[1:]:
                solver.Add(routing.ActiveVar(idxs[0]) == routing.ActiveVar(idx))

        # --- pinned stops: stay on their vehicle, in their order
        if pinned_orders:
            count_cb = routing.RegisterUnaryTransitVector([0] * nd + [1] * len(p.tasks))
            routing.AddDimension(count_cb, 0, len(p.tasks) + 1, True, "rank")
            rank = routing.GetDimensionOrDie("rank")
            for k, pins in pinned_routes.items():
                for ti in pins:
                    routing.VehicleVar(manager.NodeToIndex(nd + ti)).SetValue(k)
                for a, b in itertools.pairwise(pins):
                    ia = manager.NodeToIndex(nd + a)
                    ib = manager.NodeToIndex(nd + b)
                    solver.Add(rank.CumulVar(ia) < rank.CumulVar(ib))

        # --- seed: warm start extended by cheapest insertion
        if settings.seed_routes is not None:
            seed_routes = settings.seed_routes
        else:
            seed_routes, _ = greedy_routes(p, initial=settings.initial or None, deadline=end)
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.local_search_metaheuristic = (
            routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
        )
        params.first_solution_strategy = (
            routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
        )
        params.log_search = False
        _set_budget(params, end, p)  # for closing the model; set again right before searching
        if settings.max_solutions is not None:  # reproducible: stops on its solutions
            params.solution_limit = settings.max_solutions
        # Ctrl-C stops the search at its next solution (the flag is set by our handler, which
        # Python runs when the search calls back), then raises KeyboardInterrupt as usual
        routing.CloseModelWithParameters(params)
        build_s = time.perf_counter() - t_build
        interrupted = threading.Event()
        # the caller's cancellation (solvers.cancel: a service stopping) stops it there too,
        # with its best so far
        cancel = current_cancel()
        # its solutions counted (a solution budget: whether the clock came first), and the
        # search stopped once it has stalled (STALL_SOLUTIONS_BASE, STALL_FAILURES)
        stall = _Stall(routing, (stall_solutions(p), STALL_FAILURES) if STALL_STOP else None)
        routing.AddAtSolutionCallback(stall.solution)
        routing.AddSearchMonitor(stall)
        clock_s: list[float] = []  # the search's time limit (s) and when it started
        # a greedy plan with no route (every order left out: none worth its cost, or
        # the deadline came first) is a start too: OR-Tools' own first solution took 7.8 s
        # of a 10 s budget at 1,000 optional orders (none in 6.3 s at 2,000), to the same
        # empty plan
        routes = [[manager.NodeToIndex(nd + t) for t in seed_routes.get(vi, [])] for vi in fleet]
        # only the next variables: ReadAssignmentFromRoutes would complete the seed
        # (cumuls, break starts) once more before the search does, 13 s of a 16 s
        # budget on a 2,400-order day with breaks
        initial = solver.Assignment()
        read = routing.RoutesToAssignment(routes, True, True, initial)
        build_s = time.perf_counter() - t_build

        def routes_now(assignment: pywrapcp.Assignment | None) -> dict[int, list[int]]:
            """The routes of ``assignment`` (None: of the solution being reported)."""
            out: dict[int, list[int]] = {}
            for k, vi in enumerate(fleet):
                found: list[int] = []
                nxt = routing.NextVar(routing.Start(k))
                idx = nxt.Value() if assignment is None else assignment.Value(nxt)
                while not routing.IsEnd(idx):
                    found.append(manager.IndexToNode(idx) - nd)
                    nxt = routing.NextVar(idx)
                    idx = nxt.Value() if assignment is None else assignment.Value(nxt)
                if found:
                    out[vi] = found
            return out

        def search() -> _Found:
            """The seeded search (OR-Tools' own first solution if the seed is rejected)."""
            assignment = None
            seeded = "the greedy plan could not be read"
            if read and not interrupted.is_set():
                clock_s[:] = [params.time_limit.ToMilliseconds() / 1000, time.perf_counter()]
                assignment = routing.SolveFromAssignmentWithParameters(initial, params)
                empty = "" if any(seed_routes.values()) else " (no route: every order left out)"
                seeded = (
                    f"started from the greedy plan{empty}"
                    if assignment is not None
                    else f"greedy plan rejected (status {routing.status()})"
                )
            # a seeded search that timed out spent the time: OR-Tools' own first solution
            # with the 0.01 s left ran on to its first completion (2,400-order city day with
            # breaks at 10 s: the search ended 1.2-1.4 s past its deadline, the answer late)
            spent = read and routing.status() == FAIL_TIMEOUT
            if spent:
                seeded += ": no time left for a first solution of its own"
            if assignment is None and not interrupted.is_set() and not spent:
                _set_budget(params, end, p)
                clock_s[:] = [params.time_limit.ToMilliseconds() / 1000, time.perf_counter()]
                assignment = routing.SolveWithParameters(params)
            return _Found(
                routes=routes_now(assignment) if assignment is not None else None,
                objective=int(assignment.ObjectiveValue()) if assignment is not None else 0,
                status=str(routing.status()),
                seeded=seeded,
                solutions=stall.solutions,
                stopped=stall.stopped,
                clock_s=tuple(clock_s),
            )

        def report(send: Callable[[object], None]) -> None:
            """In the search's process: send each new best solution (at most every
            :data:`REPORT_EVERY_S`), its cost and routes."""
            last = [-REPORT_EVERY_S]

            def best() -> None:
                now = time.perf_counter()
                if stall.since_best == 0 and now - last[0] >= REPORT_EVERY_S:
                    last[0] = now
                    send((stall.best, routes_now(None)))

            routing.AddAtSolutionCallback(best)

        with _ctrl_c_sets(interrupted) as watched:
            if watched or cancel is not None:
                routing.AddAtSolutionCallback(
                    lambda: (
                        (interrupted.is_set() or (cancel is not None and cancel.is_set()))
                        and routing.CancelSearch()
                    )
                )
            _set_budget(params, end, p)
            if read and not interrupted.is_set() and hard_stop(p):
                found = _search_killed_at(search, report, end, interrupted)
            else:
                found = search()
        if interrupted.is_set():
            raise KeyboardInterrupt
        seeded = found.seeded
        if found.routes is None:
            return EngineResult(
                routes=seed_routes,
                feasible=False,
                out_of_time=found.killed,
                detail=(f"no solution ({found.status}); {seeded}; model built in {build_s:.2f} s"),
            )
        out = found.routes
        budget = ""
        clock_cut = False
        if settings.max_solutions is not None:
            budget = f"; solutions {found.solutions} of {settings.max_solutions}"
            limit_s, started = found.clock_s or (0.0, time.perf_counter())
            clock_cut = found.killed or (
                found.stopped is None
                and found.solutions < settings.max_solutions
                and time.perf_counter() - started >= 0.99 * limit_s
            )
            if clock_cut:
                budget += f"; {STOPPED_BY_CLOCK}"
        if found.stopped is not None:
            budget += f"; {found.stopped}"
        return EngineResult(
            routes=out,
            objective=found.objective,
            feasible=True,
            clock_cut=clock_cut,
            detail=f"status {found.status}; {seeded}; model built in {build_s:.2f} s{budget}",
        )


def mandatory_drop_penalty(problem: RoutingProblem, settings: EngineSettings, wanted: int) -> int:
    """The disjunction penalty of leaving out a mandatory order of the lowest priority:
    ``wanted``, but at least one more than serving any order can cost, and low enough that
    every mandatory order left out, at its priority's weight, keeps the objective in int64.

    Serving an order costs at most its route (route ``r`` minus the order is a route too, of
    cost >= 0): at most all routes (:func:`objective_bound`) and at most the 10**12 cents a
    plan's route holds (a dearer one is refused), plus the disruption cost of its two visits.
    A penalty of 2**50 milli-cents was below that with 10**12 cents of disruption per visit:
    OR-Tools left a moved pickup-and-delivery order out rather than pay 2 x 10**15.
    ScenarioInputError naming the largest price when both cannot hold.
    """
    disrupted = len(settings.original_vehicle) if settings.disruption_cost else 0
    parts = objective_bound(problem, settings.disruption_cost, disrupted)
    total = sum(parts.values())
    serving = min(float(MAX_INT * MILLI), total) + 2.0 * settings.disruption_cost
    need = int(serving) + 1
    weights = sum(o.drop_weight for o in problem.orders if o.penalty is None)
    room = int((2.0**63 - 1024 - total) // max(1, weights))
    if need > room:
        field = max(parts, key=lambda name: parts[name])
        error = InputError if field == DISRUPTION_FIELD else ScenarioInputError
        raise error(
            field,
            f"leaving out a mandatory order must cost OR-Tools more than serving it (up to "
            f"{need:.3g} milli-cents), and {weights} of them together would pass the 64-bit "
            "integers it counts in: lower the price, or route fewer orders at once",
        )
    return min(max(wanted, need), room)


def _set_budget(params: object, end: float, problem: RoutingProblem) -> None:
    """Search until ``end`` (``time.perf_counter()``), counted from now.

    OR-Tools looks at its clock between moves, and a move it accepts is completed first: the
    limit ends early by about one completion (:func:`completion_s`), at most 10 % of the time
    left. The completion of each solution (cumul values and break start times, which OR-Tools
    sets per route by linear or CP-SAT scheduling) gets the whole limit, not OR-Tools' default
    of 0.1 s: with driver breaks, completing the greedy plan of a 1,500-order city day takes
    longer than that, and OR-Tools then rejected the seed (ROUTING_FAIL) and every improving
    move.
    """
    left = max(0.01, end - time.perf_counter() - 0.01)
    left -= min(0.1 * left, completion_s(problem))
    ms = max(1, int(left * 1000))
    params.time_limit.FromMilliseconds(ms)  # type: ignore[attr-defined]
    params.lns_time_limit.FromMilliseconds(ms)  # type: ignore[attr-defined]


def completion_s(problem: RoutingProblem) -> float:
    """Rough time OR-Tools takes to complete one solution (cumuls, break starts).

    Measured with driver breaks on generated city days (the seed, restored and completed):
    0.3-0.6 s at 1,500 orders, 1.4 s at 2,400; without breaks it is negligible.
    """
    n = len(problem.tasks)
    return COMPLETION_S_PER_TASK_SQ * n * n if problem.has_breaks else 0.0


def seed_completion_s(problem: RoutingProblem) -> float:
    """Rough CPU time OR-Tools' search takes to complete the greedy plan it starts from (its
    first solution): :func:`completion_s`, but from :data:`SEED_COMPLETION_SLOW_TASKS` visits
    with driver breaks :data:`SEED_COMPLETION_S_PER_TASK_SQ` per squared visit count."""
    n = len(problem.tasks)
    if problem.has_breaks and n >= SEED_COMPLETION_SLOW_TASKS:
        return SEED_COMPLETION_S_PER_TASK_SQ * n * n
    return completion_s(problem)
