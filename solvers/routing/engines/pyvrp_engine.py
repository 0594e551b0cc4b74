"""PyVRP adapter: iterated local search (PyVRP 0.14) over the index-form problem.

Identical vehicles become one vehicle type; pickup-and-delivery orders become PyVRP shipments;
optional orders get their penalty as prize; skills become routing profiles in which arcs into
an order's tasks are missing for vehicles without the skill. ``num_workers > 1`` runs that many
independent searches with consecutive seeds within the same wall-clock budget and keeps the
cheapest feasible result. Each search runs in a forked process that reports its new best
solutions and is killed if it is still in an iteration at the deadline (PyVRP looks at the
clock only between iterations, and one can take seconds): see :func:`collect_searches`.

Driver breaks are not modelled by PyVRP: it plans with each vehicle's shift (and maximum
duration) shortened by the length of its breaks (but those every route of the vehicle takes at
its start while it waits for its loads, :func:`shortened_by_s`), the scheduler then places
each route's break where the route is shortest, and :mod:`solvers.routing.repair` moves the
few orders of routes that still cannot take it (a break that must start inside a busy
stretch).

Large problems start from the greedy plan (PyVRP's own start, a random solution improved by an
exhaustive local search, does not watch the clock and takes minutes at 10,000 stops). Arcs a
vehicle may not take are long, not PyVRP's ``MAX_VALUE``: see :func:`_missing_arc`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
import os
import pickle
import signal
import struct
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from typing import Any, NamedTuple, overload

import numpy as np
import pyvrp
from numpy.typing import NDArray
from pyvrp.IteratedLocalSearch import IteratedLocalSearchCallbacks
from pyvrp.search import NeighbourhoodParams
from pyvrp.stop import StoppingCriterion

from scenarios.errors import ScenarioInputError
from solvers.cancel import cancelled, cancelling
from solvers.routing.engines.base import EngineResult, EngineSettings
from solvers.routing.greedy import greedy_routes
from solvers.routing.problem import (
    UNLIMITED,
    RoutingProblem,
    objective_bound,
    pre_departure_breaks,
)

log = logging.getLogger(__name__)

Decoder = Callable[[pyvrp.Solution], dict[int, list[int]]]
_MAX_VALUE = 1 << 44  # pyvrp.constants.MAX_VALUE: the largest distance or duration
_BIG_TW = np.iinfo(np.int64).max
# PyVRP's penalised cost of a solution (its routes' costs, the prizes it leaves uncollected
# and the penalties of its violations) is an int64, and PyVRP checks none of it for overflow:
# a penalty x violation past 2**63 even becomes -2**63 (a cast from double), the search then
# takes the worst moves for the best and its local search, which does not watch the clock,
# can loop for minutes. So the four parts share the range: the routes at most
# ENGINE_INT_LIMIT (2**62, checked by check_int_range; optional orders' prizes included),
#: the most all prizes of mandatory orders may add (see :func:`_prizes`),
_PRIZE_TOTAL = 2**61
#: the most the arcs a vehicle may not take may add to the routes' costs (see
#: :func:`_missing_arc`),
_MISSING_TOTAL = 2**59
#: and the most the penalties of all violations together may add (see :func:`_max_penalty`).
_PENALTY_TOTAL = 2**59


#: A search stops once it has found no new best solution for this many iterations plus
#: :data:`STALL_PER_TASK_SQ` x tasks² in a row, nor for as many iterations as it took to find
#: its last one (:class:`Stall`, :func:`stall_iterations`): without it, a day of one or two
#: orders kept an OMS waiting for the whole time limit (8.6 s of the default 10 s) for the
#: plan of its first iteration. Improvement traces of 108 searches (the PyVRP engine, one
#: search each; generated city days of 1-80 orders and pickup-and-delivery days of 2-40
#: orders, 10 s; Solomon instances cut to their first 5-50 orders, 10 s; 12 whole Solomon
#: instances, 3 Homberger 200 and 4 Li & Lim, 30 s; a shared 2-core machine): the longest
#: run of iterations between two new best solutions was at most 13 up to 25 tasks, 1,819
#: at 50 (Solomon RC101 cut to 50 orders) and 5,421 at 100 (R105). None of the 108 searches
#: would have ended dearer under this rule, and 62 would have stopped early (at a median of
#: 1.5 % of their iterations); with 0.5 x tasks², two dearer (docs/routing.md, "A
#: search that has stalled stops").
STALL_ITERATIONS = 200
#: See :data:`STALL_ITERATIONS`.
STALL_PER_TASK_SQ = 2
#: Whether searches stop when they stall (a switch for benchmarks that compare both).
STALL_STOP = True

#: From this many tasks on, the search starts from the greedy plan.
GREEDY_START_TASKS = 1_200
#: Seconds per task of PyVRP's first local search, which does not watch the clock: its own
#: start (a random solution improved exhaustively) or, from the greedy plan, the first
#: iteration and the exhaustive search of its new best solution. Measured on generated city
#: days with breaks on a shared 2-core machine: 0.25-0.75 ms per task for PyVRP's own start
#: (300-1,000 orders), 0.6-1.0 ms for the first iteration from the greedy plan (1,500-2,000).
FIRST_SEARCH_S_PER_TASK = 1e-3
#: The same with pickup-and-delivery pairs (PyVRP shipments), whose moves cost more: the first
#: iterations from the greedy plan of the 1,000-job pickup city day (1,770 visits, breaks)
#: took 0.5-5.5 s each, searching new best solutions exhaustively, 1.8-3.1 ms per visit
#: (shared 2-core machine); with 1 ms the search started with too little time left and ended
#: up to 1 s after a 4-5 s budget.
FIRST_SEARCH_S_PER_PAIRED_TASK = 2.5e-3
#: Seconds of :func:`build_data` whatever the size (start-up of the solve's PyVRP phase).
BUILD_S_FIXED = 0.05
#: Seconds per byte of PyVRP's matrices (:func:`matrix_bytes`: ours, one distance/duration
#: pair per profile, and PyVRP's copy) in :func:`build_data`, which is bound by writing them:
#: the matrix copies took 1.6 of its 2.2 s at 3,000 orders. The first build in a solve took
#: 0.4-1.3 ns of CPU per byte from 600 to 3,000 orders (city days, 4 profiles) and up to 2 ns
#: of wall time on a loaded 2-core machine; the earlier 0.125 ns per byte gave 0.067 s at
#: 1,000 pickup orders where 0.28 s were seen (docs/routing.md, "Construction and search,
#: inside the budget", has the measurements). Since session 52 our copies are made one at a
#: time as PyVRP reads them (:class:`ProfileMatrices`): 0.26 s of CPU at 2,400 orders where
#: 0.43-0.73 s were measured before, so the estimate errs on the long side.
BUILD_S_PER_BYTE = 1e-9
#: Seconds per task to trim the greedy plan to PyVRP's model by the trim's fast rule, once its
#: data are built (:meth:`PyVRPEngine.start`): 0.023 / 0.046 s of CPU for 70 / 153 orders
#: taken out on the 1,500 / 2,400-order city days of ``routing_budget.py`` (0.12 / 0.28 s
#: timing 32 candidates per removal), and building the routes PyVRP sees.
START_S_PER_TASK = 5e-5
#: Orders timed by PyVRP per removal when a starting route is infeasible in its model: the
#: ones whose visits take the route the most time (past the trim's deadline, only the one of
#: them :func:`removal_violations` ranks best, untimed). Ranking every order of the route by
#: that prediction and timing the best 8 (session 49) took fewer orders out (city days of
#: 1,500 / 2,400 orders, seeds 1-3: 46-73 / 81-91 instead of 70-113 / 152-153) but the 10 s
#: plans came out dearer on three of five (+6.1 %, +0.9 %, and +40 % where PyVRP's plan lost
#: to the greedy one) and cheaper on two (-1.3 %, -5.1 %).
TRIM_CANDIDATES = 32


def unsupported(problem: RoutingProblem, settings: EngineSettings) -> str | None:
    """Why PyVRP cannot solve this problem (None if it can).

    Breaks are fine: they are placed and repaired after the search (see the module docstring).
    """
    if problem.has_multiple_windows:
        return "several time windows per stop"
    if settings.pinned:
        return "pinned stops"
    if settings.disruption_cost and settings.initial:
        return "a disruption cost"
    if penalty_range_error(problem) is not None:
        return "prices, a horizon or demands this large (its int64 penalties would overflow)"
    return None


#: ``auto`` prefers OR-Tools when :func:`safe_penalty` is below this share of the penalty
#: bound PyVRP's search wants (:func:`_max_penalty`): at 10**10 cents per km with 1 h
#: windows (30 orders) the bound could be 1/400 of it, and PyVRP found no feasible plan in
#: 1 s where it did at 100 cents per km.
MIN_PENALTY_SHARE = 0.1


def _wanted_penalty(problem: RoutingProblem, prizes: list[int] | None) -> float:
    """The penalty bound PyVRP's search wants: 100,000 times the dearest distance price (its
    default for a price of 1), ten times the largest prize, or ten times the dearest fixed
    and time cost of a route serving one order alone (:func:`_dedicated_route_costs` without
    its distance, which the first term prices as PyVRP's default does).

    A unit of excess load or time warp must cost more than the vehicle that would remove it:
    bounded by the distance price alone, a fleet with fixed costs (30,000 cents a vehicle at
    30 cents per km) or a time price (5,000 cents an hour, no distance price) found an
    overloaded route cheaper than one more vehicle, and PyVRP returned no feasible plan for
    60 mandatory orders that needed 6 of 10 vehicles (the greedy plan was the answer)."""
    price = max((v.unit_distance_cost for v in problem.vehicles), default=1)
    top = max([o.penalty or 0 for o in problem.orders] + (prizes or []) + [0])
    vehicle = float(_dedicated_route_costs(problem, distance=False).max(initial=0.0))
    return max(100_000.0 * max(1, price), 10.0 * top, 10.0 * vehicle)


def _worst_prizes(problem: RoutingProblem) -> list[int] | None:
    """The prizes of mandatory orders should the search relax them (None if there are none)."""
    return _prizes(problem) if any(o.penalty is None for o in problem.orders) else None


def weak_penalties(problem: RoutingProblem) -> bool:
    """Whether the int64 range keeps PyVRP's penalties below :data:`MIN_PENALTY_SHARE` of the
    bound its search wants (it may then find no feasible plan)."""
    prizes = _worst_prizes(problem)
    wanted = _wanted_penalty(problem, prizes)
    return safe_penalty(problem, prizes) < MIN_PENALTY_SHARE * wanted


def penalty_range_error(problem: RoutingProblem) -> ScenarioInputError | None:
    """The error naming the dearest price when even a penalty of 1 per unit of violation could
    overflow PyVRP's int64 costs (None when it cannot): see :func:`safe_penalty`."""
    safe = safe_penalty(problem, _worst_prizes(problem))
    if safe >= 1.0:
        return None
    parts = objective_bound(problem)
    priced = [f for f in parts if f.startswith(("vehicles.", "orders."))]
    field = max(priced, key=lambda f: parts[f]) if priced else "vehicles.0.cost_per_km_cents"
    return ScenarioInputError(
        field,
        f"PyVRP's 64-bit costs could overflow even at a penalty of {safe:.3g} per unit of "
        "violation (second of lateness, unit of excess load): use engine 'ortools' or "
        "'auto', or lower the prices, the horizon or the demands",
    )


class PyVRPEngine:
    """Solve with PyVRP's iterated local search."""

    name = "pyvrp"

    def unsupported(self, problem: RoutingProblem, settings: EngineSettings) -> str | None:
        """Why this engine cannot solve the problem (None if it can)."""
        return unsupported(problem, settings)

    def min_time_s(self, problem: RoutingProblem) -> float:
        """Rough time to build the PyVRP data and run its first local search.

        Neither watches the clock: with less time left the plan would come late.
        """
        return build_s(problem.num_nodes, num_profiles(problem)) + first_search_s(problem)

    def min_start_s(self, problem: RoutingProblem) -> float | None:
        """Rough time to build the PyVRP data and trim the greedy plan to its model, without a
        search (:data:`START_S_PER_TASK` per visit for the trim by its fast rule); None
        without breaks, where that start is the greedy plan itself."""
        if not problem.has_breaks:
            return None
        build = build_s(problem.num_nodes, num_profiles(problem))
        return build + START_S_PER_TASK * len(problem.tasks)

    def solve(self, problem: RoutingProblem, settings: EngineSettings) -> EngineResult:
        """Search until the time limit (or iteration limit) and decode the best solution;
        with ``settings.search`` False, the start made of ``settings.seed_routes``, trimmed to
        PyVRP's model (see :meth:`start`)."""
        if not settings.search:
            return self.start(problem, settings)
        end = settings.end()
        # If the greedy plan could not place every mandatory order the fleet may be too
        # small, so mandatory orders become optional with a prize larger than any plan
        # (PyVRP then drops what cannot fit instead of returning nothing). With breaks the
        # shifts PyVRP sees are shorter than the real ones (see the module docstring): what
        # does not fit them is inserted afterwards, so relax then too.
        if problem.has_breaks:
            relax = True
        elif settings.seed_routes is None and every_order_fits_alone(problem):
            relax = False
        else:
            if settings.seed_routes is not None:
                left = list(settings.seed_left)
            else:
                _, left = greedy_routes(problem, initial=settings.initial or None, deadline=end)
            relax = any(problem.orders[o].penalty is None for o in left)
        prizes = _prizes(problem) if relax else None
        data, type_vehicles, decode = build_data(problem, mandatory_prizes=prizes)
        max_penalty = _max_penalty(problem, prizes)
        start = settings.initial
        if settings.seed_routes and len(problem.tasks) >= GREEDY_START_TASKS:
            start = settings.seed_routes
        init, trimmed = _initial_solution(
            problem,
            data,
            type_vehicles,
            start,
            optional=lambda o: prizes is not None or problem.orders[o].penalty is not None,
            deadline=end - first_search_s(problem),
        )
        # An absolute deadline (CLOCK_MONOTONIC is shared by forked workers) so PyVRP's own
        # initial local search counts too; a small margin for collecting the results. PyVRP
        # looks at the clock only between iterations: a search in a forked process iterates
        # until the deadline and is killed at ``end`` (its best so far kept); one run here
        # (no fork) starts no iteration that the longest of the recent ones (the first from a
        # given start: an estimate) says would end after the deadline.
        deadline = end - (0.02 if settings.num_workers == 1 else 0.05)
        first_s = first_search_s(problem) if init is not None else 0.0
        workers = max(1, settings.num_workers)
        if workers > 1:
            # Parallel searches only pay off on idle cores: on a busy machine two searches
            # each get a fraction of a core and the best of two is worse than one full search.
            workers = max(1, min(workers, int(free_cores() + 0.3)))
        seeds = [settings.seed + k for k in range(workers)]
        # Each search runs in a forked process that reports every new best solution: PyVRP's
        # iterations cannot be interrupted (an exhaustive search of a new best took seconds
        # on the 1,000-job pickup city day), so at ``end`` a search still running is killed
        # and its last reported best is the answer. A search that ends by itself (deadline
        # or iteration budget) answers exactly as it would in this process.
        runs = [
            SearchRun(
                data,
                decode,
                deadline,
                settings.max_iterations,
                s,
                init,
                max_penalty,
                first_s,
                stall_iterations(problem),
            )
            for s in seeds
        ]
        outcomes = collect_searches(runs, end, settings.meanwhile)
        # Feasible first, then cheapest; ties go to the lowest seed (deterministic).
        best = min(
            range(len(outcomes)), key=lambda k: (not outcomes[k].feasible, outcomes[k].cost, k)
        )
        won = outcomes[best]
        feasible, cost, routes = won.feasible, won.cost, won.routes
        iters = ", ".join(str(o.iterations) for o in outcomes)
        killed = sum(o.killed for o in outcomes)
        stalled = [str(o.stalled) for o in outcomes if o.stalled is not None]
        ended = [f"seed {s}: {o.ended}" for s, o in zip(seeds, outcomes, strict=True) if o.ended]
        start_routes = None
        if trimmed and start:
            out = set(trimmed)
            start_routes = {
                v: [t for t in seq if problem.tasks[t].order not in out] for v, seq in start.items()
            }
        return EngineResult(
            routes=routes,
            objective=cost,
            feasible=feasible,
            start_routes=start_routes,
            out_of_time=not feasible and all(o.killed for o in outcomes),
            clock_cut=settings.max_iterations is not None
            and any(o.iterations < settings.max_iterations and o.stalled is None for o in outcomes),
            detail=f"{workers} search(es), best seed {seeds[best]}, iterations {iters}"
            + (
                f"; {killed} search(es) stopped mid-iteration at the time limit (their best "
                "so far kept)"
                if killed
                else ""
            )
            + (
                f"; {len(stalled)} search(es) stopped after {', '.join(stalled)} iterations "
                "without a new best solution (stalled)"
                if stalled
                else ""
            )
            + (
                f"; {len(ended)} search process(es) ended unexpectedly ({'; '.join(ended)}; "
                "their best so far kept)"
                if ended
                else ""
            )
            + (
                f"; {len(trimmed)} orders taken out of the starting plan to fit PyVRP's model"
                f"{' (shifts shortened by the breaks)' if problem.has_breaks else ''}"
                if trimmed
                else ""
            ),
        )

    def start(self, problem: RoutingProblem, settings: EngineSettings) -> EngineResult:
        """The search's start without the search: ``settings.seed_routes`` (the greedy plan)
        with the orders taken out that PyVRP's model cannot fit (with breaks, its shifts are
        shortened by them: see :func:`_initial_solution`), trimmed by the fast rule (the one
        past the trim's deadline: one numpy pass per removal, the time left goes to the
        repair and the break-aware pass that follow).

        For a budget too short for the search (:meth:`min_time_s`) but not for this
        (:meth:`min_start_s`): the trim and the repair that re-inserts what it took out and
        what the greedy plan left out are one ruin-and-recreate step, which gave a plan 5 %
        cheaper than the greedy one on the 1,500-order city day of ``routing_budget.py``.
        """
        start = settings.seed_routes
        if start is None:
            raise ValueError("PyVRP's start without a search needs the greedy plan (seed_routes)")
        data, type_vehicles, _ = build_data(problem, mandatory_prizes=_prizes(problem))
        init, trimmed = _initial_solution(
            problem,
            data,
            type_vehicles,
            start,
            optional=lambda o: True,  # all of them have a prize: see solve's relax
            deadline=time.perf_counter(),
        )
        out = set(trimmed)
        routes = {
            v: [t for t in seq if problem.tasks[t].order not in out] for v, seq in start.items()
        }
        return EngineResult(
            routes={v: seq for v, seq in routes.items() if seq},
            feasible=True,
            detail="no search: the greedy plan"
            + (
                f", {len(trimmed)} orders taken out to fit PyVRP's model"
                f"{' (shifts shortened by the breaks)' if problem.has_breaks else ''}"
                if init is not None
                else " (it did not map onto PyVRP's model: not trimmed)"
            ),
        )


def _exit_with_parent(parent: int) -> None:
    """In a search worker: exit as soon as the process that forked it is gone (polled every
    0.5 s: the fallback where :func:`_die_with_parent` cannot ask the kernel).

    A job process killed by a cancel or its time limit closes no pipe in time: the busy
    worker searched on to its deadline, and an idle one waited for work for ever.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


#: prctl(2) options (linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux (None elsewhere), loaded before any fork: a search process
    imports and loads nothing (see :func:`_fork_quietly`)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    fn.restype = ctypes.c_int
    return fn


def _die_with_parent(parent: int) -> bool:
    """In a search process, right after the fork: have the kernel SIGKILL it when the thread
    that forked it ends (Linux's ``PR_SET_PDEATHSIG``); True if it could. Exits at once if
    ``parent`` is gone already (it may have died before the call).

    The thread that forks the searches waits for them in :func:`collect_searches`, which
    kills and reaps them before it returns: it cannot end while they run but by its process
    ending (a job process killed by a cancel or its time limit), which is when they must go.
    """
    prctl = _prctl()
    done = prctl is not None and prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent:
        os._exit(0)
    return done


@dataclass
class SearchRun:
    """One PyVRP search to run: its data, decoder, budget (an absolute ``deadline`` for
    :class:`Deadline`, an iteration budget, a :class:`Stall` count), seed, start and penalty
    bound."""

    data: pyvrp.ProblemData
    decode: Decoder
    deadline: float
    max_iterations: int | None
    seed: int
    init: pyvrp.Solution | None
    max_penalty: float | None = None
    first_s: float = 0.0
    stall: int | None = None

    def run(self, report: Reporter | None = None) -> RunResult:
        """Run the search here."""
        return _run(
            self.data,
            self.deadline,
            self.max_iterations,
            self.seed,
            self.init,
            self.max_penalty,
            self.first_s,
            report=report,
            stall=self.stall,
        )


@dataclass
class SearchOutcome:
    """What one search gave: feasible, cost, decoded routes, iterations, whether it was
    killed at the hard deadline (its best reported solution so far kept), how its process
    ended when it died before sending its outcome (``ended``, e.g. "killed by SIGSEGV"; its
    best reported solution so far kept), and the iterations without a new best after which it
    stopped because it had stalled (:class:`Stall`; None: it did not)."""

    feasible: bool
    cost: int
    routes: dict[int, list[int]]
    iterations: int
    killed: bool = False
    ended: str | None = None
    stalled: int | None = None


class RunResult(NamedTuple):
    """One search's end: feasible, cost, best solution, iterations, and the iterations
    without a new best after which it stopped because it had stalled (None: it did not)."""

    feasible: bool
    cost: int
    solution: pyvrp.Solution
    iterations: int
    stalled: int | None


#: The cost of a search that has no feasible solution (sorts after every feasible one).
NO_SOLUTION_COST = 2**62
#: A message's length before its pickled bytes on a search's pipe.
_FRAME = struct.Struct("!Q")


def _send(fd: int, msg: object) -> None:
    """In a search process: write ``msg`` (its length, then its pickled bytes) to ``fd``."""
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    for part in (_FRAME.pack(len(data)), data):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


def _search_child(run: SearchRun, fd: int) -> None:
    """In a forked process: run the search, sending each new best solution (feasible) and
    the final outcome (or the error) to the pipe ``fd``; never returns."""
    try:
        sent = [NO_SOLUTION_COST]

        def report(sol: pyvrp.Solution, iterations: int) -> None:
            if not sol.is_feasible():
                return
            cost = int(pyvrp.CostEvaluator([0] * len(sol.excess_load()), 0, 0).cost(sol))
            if cost < sent[0]:
                sent[0] = cost
                _send(fd, ("best", cost, run.decode(sol), iterations))

        res = run.run(report)
        _send(
            fd,
            ("done", res.feasible, res.cost, run.decode(res.solution), res.iterations, res.stalled),
        )
    except BaseException as exc:  # handed to the parent, which raises it
        with contextlib.suppress(BaseException):
            try:
                _send(fd, ("error", exc))
            except BaseException:  # cannot be pickled (nothing was sent): by its text
                _send(fd, ("error", RuntimeError(f"PyVRP search: {type(exc).__name__}: {exc}")))
    finally:
        os._exit(0)


class _Child:
    """A search process seen from the process that forked it: its pid, the reading end of
    its pipe (non-blocking) with the bytes of a message not yet whole, and its exit status
    once reaped."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self.pending = bytearray()
        self.eof = False
        self.reaped = False
        self.status: int | None = None  # waitpid's; None if reaped by someone else

    def read(self, until: float | None = None) -> list[Any]:
        """The whole messages that can be read now (without waiting), stopping at ``until``
        (a ``time.perf_counter()`` value) if the search keeps writing; ``eof`` once its
        pipe is closed (the process has ended)."""
        while not self.eof and (until is None or time.perf_counter() < until):
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            self.pending += chunk
            self.eof = not chunk
        out = []
        start = 0
        while len(self.pending) - start >= _FRAME.size:
            (size,) = _FRAME.unpack_from(self.pending, start)
            body = start + _FRAME.size
            if len(self.pending) - body < size:
                break
            out.append(pickle.loads(memoryview(self.pending)[body : body + size]))
            start = body + size
        del self.pending[:start]
        return out

    def kill(self) -> None:
        """SIGKILL the process (not once reaped: its pid could be another's by then)."""
        if not self.reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def reap(self) -> None:
        """Wait for the process to end (killed, or its pipe at end of file) and keep its
        status."""
        if not self.reaped:
            with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: reaped already
                self.status = os.waitpid(self.pid, 0)[1]
            self.reaped = True

    def how_ended(self) -> str:
        """How the process ended, from its status: "killed by SIGSEGV", "exit status 1"."""
        if self.status is None:
            return "exit status unknown"
        if os.WIFSIGNALED(self.status):
            num = os.WTERMSIG(self.status)
            try:
                return f"killed by {signal.Signals(num).name}"
            except ValueError:
                return f"killed by signal {num}"
        return f"exit status {os.waitstatus_to_exitcode(self.status)}"


def collect_searches(
    runs: Sequence[SearchRun], end: float, meanwhile: Callable[[], None] | None = None
) -> list[SearchOutcome]:
    """Run the searches in forked processes and collect their outcomes by ``end`` (a
    ``time.perf_counter()`` value): a search still running then is killed, and its last
    reported best solution (none: infeasible) is its outcome; so is it of a search whose
    process died before (``ended`` says how). ``meanwhile`` runs on a thread of this process
    while the searches run, cancelled (:func:`solvers.cancel.cancelled`) once a search has
    reported a feasible solution or the caller is cancelled; it is waited for once they are
    collected, and its error raised then.

    Without ``os.fork`` the searches run one after another in this process (no hard stop)
    and ``meanwhile`` is not called.
    """
    if not hasattr(os, "fork"):
        out = []
        for run in runs:
            res = run.run()
            out.append(
                SearchOutcome(
                    res.feasible,
                    res.cost,
                    run.decode(res.solution),
                    res.iterations,
                    stalled=res.stalled,
                )
            )
        return out
    parent = os.getpid()
    _prctl()  # loaded here: the search process loads nothing
    children: list[_Child] = []
    try:
        for run in runs:
            reader, writer = os.pipe()
            try:
                pid = _fork_quietly(lambda pid: children.append(_Child(pid, reader)))  # noqa: B023
                if pid == 0:  # the child: never returns into the caller's code
                    try:
                        _send(writer, (_HELLO, os.getpid()))
                        if not _die_with_parent(parent):
                            _exit_with_parent(parent)
                        os.close(reader)
                        _close_inherited_fds(keep=writer)
                        _search_child(run, writer)
                    finally:
                        os._exit(1)
                os.set_blocking(reader, False)
            except BaseException:
                if not any(c.fd == reader for c in children):
                    os.close(writer)
                    writer = -1
                    _end_unnoted(reader)
                raise
            finally:
                if writer >= 0:
                    os.close(writer)
        solved = threading.Event()
        join = _beside(meanwhile, solved) if meanwhile is not None else None
        outcomes = _gather(children, end, solved)
        if join is not None:
            if cancelled():
                solved.set()  # the caller's cancellation: the work beside stops too
            join()
        for run, o in zip(runs, outcomes, strict=True):
            if o.ended is not None:
                log.warning("PyVRP search of seed %d ended unexpectedly (%s)", run.seed, o.ended)
        return outcomes
    finally:
        for child in children:  # all killed first: a search ended by itself is gone already
            child.kill()
        for child in children:
            child.reap()
            os.close(child.fd)


def _beside(work: Callable[[], None], stop: threading.Event) -> Callable[[], None]:
    """Start ``work`` on a thread, cancelled by ``stop``; returns what waits for it and raises
    its error.

    A thread, not this one before the searches are collected: a search blocks once its pipe
    is full, and new best solutions of 1,000 orders fill it within a second.
    """
    errors: list[BaseException] = []

    def run() -> None:
        with cancelling(stop):
            try:
                work()
            except BaseException as exc:  # raised in the caller's thread by join
                errors.append(exc)

    thread = threading.Thread(target=run, name="pyvrp-meanwhile", daemon=True)
    thread.start()

    def join() -> None:
        thread.join()
        if errors:
            raise errors[0]

    return join


#: the first message of every search process: its pid (see :func:`_end_unnoted`)
_HELLO = "pid"


def _end_unnoted(fd: int, wait_s: float = 5.0) -> None:
    """Kill and reap the search process, if one was forked, whose pid an exception kept the
    caller from noting, and close ``fd``, the reading end of its pipe (ours of the writing
    end closed).

    Blocking the signals in the forking thread is not enough where the process has other
    threads: an interrupt delivered to one of them is raised in the main thread at its next
    check, which can fall between the fork and the pid being noted (measured: the search of
    a test run under pytest-xdist, whose workers have threads, stayed unreaped once in five
    runs). The process's pid is its first message, written as it starts; end of file first
    means no process was forked.
    """
    child = _Child(-1, fd)
    try:
        os.set_blocking(fd, False)
        until = time.perf_counter() + wait_s
        while not child.eof and time.perf_counter() < until:
            if not wait([fd], timeout=max(0.0, until - time.perf_counter())):
                break
            for msg in child.read():
                if msg[0] == _HELLO:
                    child.pid = msg[1]
                    child.kill()
                    child.reap()
                    return
    finally:
        os.close(fd)


def _close_inherited_fds(keep: int) -> None:
    """In a search process: close every file descriptor but the standard streams and ``keep``.

    It inherited all of its parent's: a service's listening socket, closed by the service at
    its shutdown, stayed open in a search running on and took connections that nobody
    accepted (they hung until the search ended); and another search's pipe, forked by a
    concurrent solve, stayed open, so that a search dying without an outcome was only noticed
    at the deadline. Closing a descriptor in the child does nothing to the parent's (no
    socket is shut down, no file lock of the parent's released).
    """
    top = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65_536
    os.closerange(3, keep)
    os.closerange(keep + 1, max(keep + 1, top))


def _fork_quietly(forked: Callable[[int], None]) -> int:
    """``os.fork()``, the child cut off from this process's signal handlers and garbage;
    ``forked`` is called here with the child's pid before any signal handler can run (an
    interrupt right after the fork lost the pid: the search ran on, never reaped).

    A forked child inherits the Python signal handlers of the process it was forked from
    (the service's: SIGTERM raising SystemExit, SIGHUP / SIGQUIT ending the service's job
    processes and removing its temp folder), which its main thread would run: a search
    process sent SIGTERM handed SystemExit to the solve that forked it. In the child each
    signal with a Python handler gets its default action (SIGINT is ignored: the parent,
    interrupted itself, kills it), with those signals blocked until then. And the objects
    it inherits are frozen out of the garbage collector: a collection in the child ran the
    finalizers of the parent's garbage (a pooled database connection given back, a file
    flushed) on resources it shares with the parent.
    """
    handled = set()
    for sig in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError):
            if callable(signal.getsignal(sig)):
                handled.add(sig)
    block = hasattr(signal, "pthread_sigmask") and bool(handled)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, handled) if block else set()
    # The block holds in this thread only: a signal another thread takes meanwhile runs its
    # Python handler in the main thread at its next check, which may fall inside the fork's
    # own hooks (logging's), where an exception is printed and dropped: a Ctrl-C was lost
    # there and the solve ran on to its deadline. So the handlers only note their signals
    # until the fork is done, and the caller's handlers then run for them.
    noted: list[int] = []
    kept = _note_signals(handled, noted)
    pid = -1
    try:
        pid = os.fork()
        if pid == 0:
            try:
                gc.freeze()
                signal.set_wakeup_fd(-1)  # an event loop's (closed: see _close_inherited_fds)
                for sig in handled:
                    signal.signal(sig, signal.SIG_IGN if sig == signal.SIGINT else signal.SIG_DFL)
            except BaseException:
                os._exit(1)
        else:
            forked(pid)
        return pid
    finally:
        if pid != 0:  # the child has its own handlers (above)
            for num, handler in kept.items():
                signal.signal(num, handler)
        if block:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if pid != 0:
            for num in dict.fromkeys(noted):  # each once, in the order they came
                handler = kept[num]
                if callable(handler):
                    handler(num, None)


def _note_signals(sigs: set[signal.Signals], noted: list[int]) -> dict[int, Any]:
    """Replace the Python handlers of ``sigs`` by ones that append their signal to ``noted``
    (in the main thread only, where handlers can be set); the handlers replaced, by signal."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    kept: dict[int, Any] = {}
    for sig in sigs:
        with contextlib.suppress(OSError, ValueError):
            kept[sig] = signal.signal(sig, lambda num, _frame: noted.append(num))
    return kept


#: seconds between two looks at the caller's cancellation while the searches run
CANCEL_POLL_S = 0.25


def _gather(
    children: list[_Child], end: float, solved: threading.Event | None = None
) -> list[SearchOutcome]:
    """Read the searches' reports until each has sent its outcome or ended, or ``end`` has
    come: the searches still running then are killed, and what they sent before is read.
    ``solved`` (if given) is set once a search has reported a feasible solution.

    No read waits: a message is put together from what its pipe holds (one that had started
    to arrive was read to its end, past ``end`` while a search stalled in the middle of it).
    A search whose pipe is at end of file without its outcome has died: it is reaped at once
    (its status says how it ended), not waited for until ``end``.
    """
    found = [SearchOutcome(False, NO_SOLUTION_COST, {}, 0, killed=True) for _ in children]
    errors: list[BaseException] = []

    def take(k: int, msgs: list[Any]) -> bool:
        """Note search ``k``'s messages; True once it has sent its outcome or its error."""
        for msg in msgs:
            if msg[0] == _HELLO:  # its pid: known already
                continue
            if msg[0] == "best":
                _, cost, routes, iterations = msg
                found[k] = SearchOutcome(True, cost, routes, iterations, killed=True)
                if solved is not None:
                    solved.set()
            elif msg[0] == "done":
                _, feasible, cost, routes, iterations, stalled = msg
                found[k] = SearchOutcome(feasible, cost, routes, iterations, stalled=stalled)
                if feasible and solved is not None:
                    solved.set()
                return True
            else:
                errors.append(msg[1])
                return True
        return False

    running = dict(enumerate(children))
    while running:
        left = end - time.perf_counter()
        if left <= 0 or cancelled():  # cancelled: as at the deadline (solvers.cancel)
            break
        fds = [child.fd for child in running.values()]
        ready = set(wait(fds, timeout=min(left, CANCEL_POLL_S)))
        for k, child in list(running.items()):
            if child.fd not in ready:
                continue
            if take(k, child.read(until=end)):
                del running[k]
            elif child.eof:  # died without its outcome: its best so far
                child.reap()
                found[k] = replace(found[k], killed=False, ended=child.how_ended())
                del running[k]
    # the hard deadline: the searches still running are killed, and once they are gone
    # (their pipes closed) what they sent before is read: no more than their pipes hold
    for child in running.values():
        child.kill()
    for k, child in running.items():
        child.reap()
        take(k, child.read())
    if errors:
        raise errors[0]
    return found


def _run(
    data: pyvrp.ProblemData,
    deadline: float,
    max_iterations: int | None,
    seed: int,
    init: pyvrp.Solution | None,
    max_penalty: float | None = None,
    first_s: float = 0.0,
    report: Reporter | None = None,
    stall: int | None = None,
) -> RunResult:
    """One PyVRP search.

    ``first_s``: the expected length of the first iteration (see :class:`Deadline`);
    ``report``: called with each new best solution and the iterations done (it observes,
    the search is the same); ``stall``: stop after that many iterations in a row without a
    new best solution (:class:`Stall`).
    """
    from pyvrp.stop import MaxIterations, MultipleCriteria

    # a search that reports its best solutions runs in a process killed at its hard end
    # (collect_searches): it need not guess whether its next iteration ends in time
    stops: list[StoppingCriterion] = [Deadline(deadline, first_s, predict=report is None)]
    if max_iterations is not None:
        stops.append(MaxIterations(max_iterations))
    stalled = Stall(stall) if stall is not None else None
    if stalled is not None:
        stops.append(stalled)
    stop = stops[0] if len(stops) == 1 else MultipleCriteria(stops)
    with warnings.catch_warnings():
        # PenaltyBoundWarning on infeasible instances: we report those ourselves
        warnings.simplefilter("ignore")
        res = _solve(data, stop, seed, init, max_penalty, report)
    sol = res.best
    cost = int(res.cost()) if sol.is_feasible() else NO_SOLUTION_COST
    return RunResult(
        sol.is_feasible(),
        cost,
        sol,
        res.num_iterations,
        stalled.since if stalled is not None and stalled.fired else None,
    )


def stall_iterations(problem: RoutingProblem) -> int | None:
    """Iterations in a row without a new best solution after which a search of this problem
    has stalled (see :data:`STALL_ITERATIONS`); None when :data:`STALL_STOP` is off."""
    if not STALL_STOP:
        return None
    n = len(problem.tasks)
    return STALL_ITERATIONS + STALL_PER_TASK_SQ * n * n


class Stall:
    """Stop once the best cost has not improved for ``iterations`` calls in a row, nor for as
    many calls as came before its last improvement (PyVRP's ``NoImprovement``, patient with
    a search that still improves late, and saying whether it fired)."""

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations
        self.fired = False
        #: calls in a row so far without a better best cost
        self.since = 0
        self._best: float | None = None
        self._calls = 0
        self._last = 0  # the call that saw the best cost first

    def __call__(self, best_cost: float) -> bool:
        """True once the best cost has stalled (see the class)."""
        self._calls += 1
        if self._best is None or best_cost < self._best:
            self._best = best_cost
            self._last = self._calls
        self.since = self._calls - self._last
        self.fired = self.since >= max(self.iterations, self._last - 1)
        return self.fired


def every_order_fits_alone(problem: RoutingProblem) -> bool:
    """One vehicle type and a vehicle per order: after the diagnosis, each order can go alone."""
    return len({v.type_key for v in problem.vehicles}) == 1 and len(problem.vehicles) >= len(
        problem.orders
    )


def needs_greedy_plan(problem: RoutingProblem) -> bool:
    """Whether the search uses the greedy plan: as its start (from
    :data:`GREEDY_START_TASKS` visits), or to tell whether the fleet can take every mandatory
    order (unless breaks relax them anyway, or each order can go alone)."""
    if len(problem.tasks) >= GREEDY_START_TASKS:
        return True
    return not (problem.has_breaks or every_order_fits_alone(problem))


def free_cores(sample_s: float = 0.05) -> float:
    """Idle CPU cores over a short sample (from /proc/stat; all cores if unavailable)."""
    total = os.cpu_count() or 1

    def read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle, sum(fields[:8])

    a = read()
    time.sleep(sample_s)
    b = read()
    if a is None or b is None or b[1] <= a[1]:
        return float(total)
    return total * (b[0] - a[0]) / (b[1] - a[1])


def first_search_s(problem: RoutingProblem) -> float:
    """Expected length of PyVRP's first local search (see :data:`FIRST_SEARCH_S_PER_TASK`
    and :data:`FIRST_SEARCH_S_PER_PAIRED_TASK`)."""
    per_task = FIRST_SEARCH_S_PER_PAIRED_TASK if problem.has_pickups else FIRST_SEARCH_S_PER_TASK
    return per_task * len(problem.tasks)


class Deadline:
    """Stop before an iteration that would end after an absolute ``time.perf_counter()`` value.

    PyVRP asks before each iteration, which it cannot interrupt. The next one is expected to
    take as long as the longest of the last :attr:`WINDOW` (an iteration that finds a new best
    solution also searches it exhaustively); before the first, ``first_s``. With
    ``predict=False`` it stops only once the deadline has passed: for a search that is killed
    at its hard end with its best so far kept (:func:`collect_searches`), an iteration cut
    short costs nothing, and one skipped for fear of it leaves the rest of the budget unused
    (under load, a search of 10 s stopped after 6.3 s).
    """

    WINDOW = 8

    def __init__(self, deadline: float, first_s: float = 0.0, *, predict: bool = True) -> None:
        self.deadline = deadline
        self.first_s = first_s
        self.predict = predict
        self._last: float | None = None
        self._recent: list[float] = []

    def __call__(self, best_cost: float) -> bool:
        """True once the deadline has passed or (predicting) the next iteration would end
        after it."""
        now = time.perf_counter()
        if not self.predict:
            return now >= self.deadline
        if self._last is None:
            expected = self.first_s
        else:
            self._recent = [*self._recent[-(self.WINDOW - 1) :], now - self._last]
            expected = max(self._recent)
        self._last = now
        return now + expected >= self.deadline


def _solve(
    data: pyvrp.ProblemData,
    stop: StoppingCriterion,
    seed: int,
    init: pyvrp.Solution | None,
    max_penalty: float | None,
    report: Reporter | None = None,
) -> pyvrp.Result:
    """``pyvrp.solve`` (0.14) with the neighbourhood of :func:`neighbours`; ``report`` sees
    the start and each new best solution (before and after its exhaustive search)."""
    from pyvrp.IteratedLocalSearch import IteratedLocalSearch
    from pyvrp.PenaltyManager import PenaltyManager
    from pyvrp.search import LocalSearch, PerturbationManager

    params = pyvrp.SolveParams()
    if max_penalty is not None:
        params = pyvrp.SolveParams(penalty=pyvrp.PenaltyParams(max_penalty=max_penalty))
    rng = pyvrp.RandomNumberGenerator(seed=seed)
    ls = LocalSearch(
        data, rng, neighbours(data, params.neighbourhood), PerturbationManager(params.perturbation)
    )
    for op in params.operators:
        if op.supports(data):
            ls.add_operator(op(data))
    pm = PenaltyManager(params.penalty.midpoint_penalties(data), params.penalty)
    if init is None:  # as pyvrp.solve: a random solution, improved exhaustively
        init = ls(pyvrp.Solution.make_random(data, rng), pm.max_cost_evaluator(), exhaustive=True)
    if report is None:
        algo = IteratedLocalSearch(data, pm, ls, init, params.ils)
    else:
        watched = _Watched(ls, report)
        report(init, 0)
        ils = replace(params.ils, callbacks=_BestCallback(watched))
        algo = IteratedLocalSearch(data, pm, watched, init, ils)  # type: ignore[arg-type]
    return algo.run(stop, False, False, params.display_interval)


#: Sees a search's new best solution and the iterations started so far.
Reporter = Callable[[pyvrp.Solution, int], None]


class _Watched:
    """PyVRP's local search, counting iterations and reporting each new best solution
    before its exhaustive search (which can take seconds), without changing anything."""

    def __init__(self, ls: Callable[..., pyvrp.Solution], report: Reporter) -> None:
        self.ls = ls
        self.report = report
        self.iterations = 0

    def __call__(
        self, sol: pyvrp.Solution, cost_eval: pyvrp.CostEvaluator, exhaustive: bool = False
    ) -> pyvrp.Solution:
        """The local search of ``sol``; a solution searched exhaustively is a new best."""
        if exhaustive:
            self.report(sol, self.iterations)
        else:
            self.iterations += 1
        return self.ls(sol, cost_eval, exhaustive=exhaustive)


class _BestCallback(IteratedLocalSearchCallbacks):
    """Reports each new best solution once its exhaustive search is done."""

    def __init__(self, watched: _Watched) -> None:
        self.watched = watched

    def on_best(self, best: pyvrp.Solution) -> None:
        """A new best solution (after its exhaustive search)."""
        self.watched.report(best, self.watched.iterations)


def neighbours(
    data: pyvrp.ProblemData, params: NeighbourhoodParams
) -> dict[pyvrp.Activity, list[pyvrp.Activity]]:
    """PyVRP's granular neighbourhood, each list completed to ``params.num_neighbours``
    activities (or all of them) by the nearest ones missing.

    PyVRP 0.14 sizes the lists by the number of clients and shipments, less one, and then
    drops the activity's own delivery: with shipments the lists come short (one client and
    one shipment: both empty), and a client and a shipment on two routes were never put on
    one (a 2-order plan 30 % dearer than the optimum, whatever the iterations).
    """
    from pyvrp.search import compute_neighbours

    got = compute_neighbours(data, params)
    kind = pyvrp.ActivityType
    where: dict[tuple[pyvrp.ActivityType, int], int] = {}
    for i, client in enumerate(data.clients()):
        where[(kind.CLIENT, i)] = client.location
    for j, ship in enumerate(data.shipments()):
        where[(kind.PICKUP, j)] = ship.pickup.location
        where[(kind.DELIVERY, j)] = ship.delivery.location
    dist: NDArray[np.int64] | None = None  # only read when a list comes short
    out: dict[pyvrp.Activity, list[pyvrp.Activity]] = {}
    for act, near in got.items():
        key = (act.type, act.idx)
        own = {key} | ({(kind.DELIVERY, act.idx)} if act.type == kind.PICKUP else set())
        want = min(params.num_neighbours, len(where) - len(own))
        if len(near) >= want:  # always on large problems: one pass, no sorting
            out[act] = list(near)
            continue
        others = [k for k in where if k not in own]
        have = {(a.type, a.idx) for a in near}
        if dist is None:
            dist = np.asarray(data.distance_matrix(0))
        loc, far = where[key], dist
        extra = sorted((k for k in others if k not in have), key=lambda k: far[loc, where[k]])
        out[act] = list(near) + [pyvrp.Activity(k[0], k[1]) for k in extra[: want - len(near)]]
    return out


def _max_penalty(problem: RoutingProblem, prizes: list[int] | None) -> float | None:
    """PyVRP's penalty bound scaled to our cost units (None = PyVRP's default).

    PyVRP bounds the penalty per unit of excess load, time warp or excess distance (100,000
    by default); when arcs are priced in milli-cents or prizes are large, an infeasible plan
    could look cheaper than a feasible one, so the bound grows with the price of distance and
    the largest prize. But never past :func:`safe_penalty`: penalty x violation is an int64
    in PyVRP, and past it the search loops (a 1 s solve at 10**12 cents per km with time
    windows ran for minutes).
    """
    bound = min(_wanted_penalty(problem, prizes), safe_penalty(problem, prizes))
    return None if bound == 100_000.0 else bound


def max_violation(problem: RoutingProblem) -> float:
    """An upper bound of the violations PyVRP can penalise in any solution of the problem:
    seconds of time warp + units of excess load + metres of excess distance.

    Following a route's clock from its vehicle's shift start ``c0``: each leg adds its travel
    and service (``D`` in all), each wait raises the clock to a window's opening (at most
    ``E``, the latest opening of any window, shift or release time) and each time warp lowers
    it, never below 0; so a route's time warp is at most ``c0 + D + waits``, with at most one
    wait per visit and two per route. Time past a route's maximum duration counts as time warp too,
    and is at most the same. The arcs: the longest out of each start and visit, and an arc
    into each task of an order that needs a skill may be :func:`_missing_arc` long instead.
    Excess load is at most all the demand; excess distance, all the distance.
    """
    p = problem
    n_tasks, n_vehicles = len(p.tasks), len(p.vehicles)
    longest_d, longest_t = p.longest_arcs
    nodes = p.arrays.node
    starts = np.array([v.start_node for v in p.vehicles], dtype=np.int64)
    missing = float(_missing_arc(p)) * _skilled_tasks(p)
    travel_s = float(longest_t[nodes].sum() + longest_t[starts].sum()) + missing
    travel_s += float(p.arrays.service.sum())
    travel_m = float(longest_d[nodes].sum() + longest_d[starts].sum()) + missing
    opening = float(
        max(
            [t.earliest for t in p.tasks]
            + [t.release for t in p.tasks]
            + [v.shift[0] for v in p.vehicles]
            + [0],
        )
    )
    waits = (n_tasks + 2 * n_vehicles) * opening
    time_warp = 2.0 * (n_vehicles * opening + travel_s + waits)
    load = float(sum(sum(info.demand) for info in p.orders))
    limited = any(v.max_distance_m is not None for v in p.vehicles)
    return time_warp + load + (travel_m if limited else 0.0)


def safe_penalty(problem: RoutingProblem, prizes: list[int] | None) -> float:
    """The largest penalty per unit of violation at which PyVRP's penalised cost of any
    solution stays within int64: half of what the routes' costs (:func:`objective_bound`,
    optional orders' prizes included), the mandatory orders' ``prizes``, and the arcs a
    vehicle may not take leave of 2**63, over :func:`max_violation`."""
    p = problem
    # the parts that do not depend on the prizes, kept with the (immutable) problem: the
    # engine choice and the search each ask
    known = p.__dict__.get("_pyvrp_range")
    if known is None:
        price = max((v.unit_distance_cost + v.unit_duration_cost for v in p.vehicles), default=1)
        extra = float(_skilled_tasks(p)) * _missing_arc(p) * price
        known = p.__dict__["_pyvrp_range"] = (
            sum(objective_bound(p).values()) + extra,
            max_violation(p),
        )
    used, violation = known
    mandatory = float(
        sum(x for x, o in zip(prizes or [], p.orders, strict=False) if o.penalty is None)
    )
    room = (2.0**63 - used - mandatory) / 2
    return max(0.0, room) / max(1.0, violation)


def _dedicated_route_costs(
    problem: RoutingProblem, *, distance: bool = True
) -> NDArray[np.float64]:
    """Per order, the dearest route (of any vehicle type) serving it alone: fixed cost plus
    the priced distance (unless ``distance`` is false) and duration from the start to its
    first task, to its last and to the end, in objective units and floats (costs near
    ENGINE_INT_LIMIT, which the problem is checked against, times 10 would wrap around in
    int64)."""
    ta = problem.arrays
    first = np.array([info.tasks[0] for info in problem.orders], dtype=np.int64)
    last = np.array([info.tasks[-1] for info in problem.orders], dtype=np.int64)
    a, b = ta.node[first], ta.node[last]
    inner_d = problem.distance[a, b]
    inner_t = problem.duration[a, b]
    worst = np.zeros(len(problem.orders), dtype=np.float64)
    for v in {veh.type_key: veh for veh in problem.vehicles}.values():
        dist = problem.distance[v.start_node, a] + inner_d + problem.distance[b, v.end_node]
        dur = problem.duration[v.start_node, a] + inner_t + problem.duration[b, v.end_node]
        worst = np.maximum(
            worst,
            float(v.fixed_cost)
            + float(v.unit_distance_cost if distance else 0) * dist.astype(np.float64)
            + float(v.unit_duration_cost) * dur.astype(np.float64),
        )
    return worst


def _prizes(problem: RoutingProblem) -> list[int]:
    """Per order, the largest of the orders' prizes well above what serving them can cost
    (a dedicated vehicle) plus the penalties of all optional orders, times the order's
    :attr:`~solvers.routing.problem.OrderInfo.drop_weight` (1 without priorities).

    One prize for all (per priority): prizes that differ per order made leaving out two
    orders near the depot cheaper than one far away, where fewest left out is the rule.

    Not astronomically large: PyVRP's penalties for excess load and time warp are bounded,
    and a prize above them would make an infeasible plan look cheaper than dropping an order.
    """
    worst = _dedicated_route_costs(problem)
    # every prize left uncollected is summed into PyVRP's int64 objective, on top of the
    # routes' costs (at most ENGINE_INT_LIMIT): together they stay below 2**63
    cap = _PRIZE_TOTAL // max(1, sum(info.drop_weight for info in problem.orders))
    # above the optional orders' penalties together too: else leaving a mandatory order out
    # to serve optional ones in its place looked cheaper to the search
    optional = float(sum(info.penalty or 0 for info in problem.orders))
    prizes = [int(min(x, cap)) for x in 10 * worst + 1000 + optional]
    # leaving out any one order (of a higher priority) costs more than any other (of a lower)
    top = max(prizes, default=0)
    return [top * info.drop_weight for info in problem.orders]


def _banned_nodes(problem: RoutingProblem) -> dict[frozenset[str], tuple[int, ...]]:
    """Per vehicle skill set, the nodes of the tasks it may not serve (sorted)."""
    out: dict[frozenset[str], tuple[int, ...]] = {}
    for veh in problem.vehicles:
        if veh.skills in out:
            continue
        out[veh.skills] = tuple(
            sorted(
                {
                    problem.tasks[t].node
                    for info in problem.orders
                    if info.skills and not veh.can_serve(info)
                    for t in info.tasks
                }
            )
        )
    return out


def num_profiles(problem: RoutingProblem) -> int:
    """Distance/duration matrix pairs PyVRP gets (one per distinct set of banned nodes)."""
    return len(set(_banned_nodes(problem).values())) if problem.has_skills else 1


def data_bytes(problem: RoutingProblem) -> int:
    """A bound of the peak memory of PyVRP's data: our matrices and PyVRP's copy of every
    profile (:func:`matrix_bytes`; since session 52 at most one of ours is alive at a time,
    see :class:`ProfileMatrices`: the bound, which ``auto`` compares with its 4 GiB, is kept
    as it was measured)."""
    return matrix_bytes(problem.num_nodes, num_profiles(problem))


def matrix_bytes(num_nodes: int, profiles: int) -> int:
    """Bytes of the distance and duration matrices of ``profiles`` profiles, ours and PyVRP's
    copy (int64): what :data:`BUILD_S_PER_BYTE` was measured against."""
    return 2 * 2 * 8 * profiles * num_nodes**2


def build_s(num_nodes: int, profiles: int) -> float:
    """Expected time to build PyVRP's data (:func:`build_data`): :data:`BUILD_S_FIXED` plus
    :data:`BUILD_S_PER_BYTE` per byte of its matrices (:func:`matrix_bytes`)."""
    return BUILD_S_FIXED + BUILD_S_PER_BYTE * matrix_bytes(num_nodes, profiles)


def _skilled_tasks(problem: RoutingProblem) -> int:
    """Tasks of orders that need a skill: the only ends of arcs a vehicle may not take."""
    return sum(len(info.tasks) for info in problem.orders if info.skills)


def _missing_arc(problem: RoutingProblem) -> int:
    """Distance and duration of an arc a vehicle may not take (into a task it lacks a skill for).

    Longer than any shift, so a route through it always has time warp, but not PyVRP's
    MAX_VALUE: a route may take such an arc into each visit of an order that needs a skill,
    and all of them together add at most :data:`_MISSING_TOTAL` to the routes' costs (their
    time warp is in :func:`max_violation`, which bounds the penalty).
    """
    p = problem
    span = max((v.shift[1] for v in p.vehicles), default=0) - min(
        (v.shift[0] for v in p.vehicles), default=0
    )
    longest_d, longest_t = p.longest_arcs
    longest = int(longest_t.max(initial=0)) + int(longest_d.max(initial=0))
    service = max((t.service_s for t in p.tasks), default=0)
    wanted = 10 * (span + longest + service) + 1
    price = max((v.unit_distance_cost + v.unit_duration_cost for v in p.vehicles), default=1)
    safe = _MISSING_TOTAL // (max(1, _skilled_tasks(p)) * max(1, price))
    return int(min(_MAX_VALUE, wanted, safe))


class ProfileMatrices(Sequence[NDArray[np.int64]]):
    """The distance or duration matrix of each routing profile, made when it is read: ``base``
    with the arcs into the nodes a profile bans (``bans[k]``) set to ``missing`` (the
    diagonal 0); ``base`` itself for a profile that bans none.

    PyVRP copies every matrix into its own data when :class:`pyvrp.ProblemData` is built, one
    item of the list at a time: made on reading, each of ours is freed once PyVRP holds its
    copy, so at most one of ours is alive, not one per profile (on the 2,400-order city day,
    4 profiles, 44 MB a matrix: six of ours and PyVRP's eight at once before).
    """

    def __init__(
        self, base: NDArray[np.int64], bans: Sequence[tuple[int, ...]], missing: int
    ) -> None:
        self.base = base
        self.bans = list(bans)
        self.missing = missing

    def __len__(self) -> int:
        """The number of profiles."""
        return len(self.bans)

    @overload
    def __getitem__(self, k: int) -> NDArray[np.int64]: ...

    @overload
    def __getitem__(self, k: slice) -> list[NDArray[np.int64]]: ...

    def __getitem__(self, k: int | slice) -> NDArray[np.int64] | list[NDArray[np.int64]]:
        """Profile ``k``'s matrix (a new one, but for a profile that bans nothing)."""
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        banned = self.bans[k]
        if not banned:
            return self.base
        out = self.base.copy()
        out[:, list(banned)] = self.missing
        np.fill_diagonal(out, 0)
        return out


def prize_shares(problem: RoutingProblem) -> dict[int, int]:
    """PyVRP's prize of each courier job of an optional order split over several nodes
    (:attr:`~solvers.routing.problem.RoutingProblem.groups`): the order's penalty shared
    among its jobs in integers that add up to it (the first get the remainder).

    PyVRP 0.14 has no all-or-nothing group (its client groups are mutually exclusive: at
    most one client served), and the twin delivers an order once all its parcels arrive. With
    shares, serving all jobs or none is priced as the plan prices it (the penalty once); a
    part served earns its shares, where the plan earns nothing: the pass after the search
    (:func:`solvers.routing.repair.whole_orders`) completes or drops such an order. Each job
    at the full penalty priced leaving the order out at k times it, and served more orders.
    """
    shares: dict[int, int] = {}
    for group in problem.groups:
        penalty = problem.orders[group[0]].penalty
        if penalty is None:  # mandatory: the prizes of mandatory orders stay as they are
            continue
        base, extra = divmod(penalty, len(group))
        for k, o in enumerate(group):
            shares[o] = base + (1 if k < extra else 0)
    return shares


def build_data(
    problem: RoutingProblem, mandatory_prizes: list[int] | None = None
) -> tuple[pyvrp.ProblemData, list[list[int]], Decoder]:
    """PyVRP ProblemData, the vehicles of each type, and a decoder for its solutions.

    With ``mandatory_prizes`` mandatory orders are modelled as optional with these prizes.
    """

    p = problem
    nd = p.num_depot_nodes
    locs = []
    for loc in p.node_locations:
        x = loc.x if loc.x is not None else (loc.lon or 0.0)
        y = loc.y if loc.y is not None else (loc.lat or 0.0)
        locs.append(pyvrp.Location(x=float(x), y=float(y)))
    depots = [pyvrp.Depot(location=k) for k in range(nd)]
    clients: list[pyvrp.Client] = []
    shipments: list[pyvrp.Shipment] = []
    client_task: list[int] = []
    shipment_tasks: list[tuple[int, int]] = []
    shares = prize_shares(p)
    for oi, info in enumerate(p.orders):
        if info.penalty is not None:
            prize, required = shares.get(oi, info.penalty), False
        elif mandatory_prizes is not None:
            prize, required = mandatory_prizes[oi], False
        else:
            prize, required = 0, True
        if info.from_depot:
            t = p.tasks[info.delivery]
            lo, hi = t.windows[0] if t.windows else (0, _BIG_TW)
            clients.append(
                pyvrp.Client(
                    location=t.node,
                    delivery=list(info.demand),
                    pickup=[0] * p.dims,
                    service_duration=t.service_s,
                    tw_early=lo,
                    tw_late=hi,
                    # the trip leaves the depot no earlier: the order exists from then
                    release_time=t.release,
                    prize=prize,
                    required=required,
                    name=p.order_ids[t.order],
                )
            )
            client_task.append(info.delivery)
        else:
            assert info.pickup is not None
            tp, td = p.tasks[info.pickup], p.tasks[info.delivery]
            plo, phi = tp.windows[0] if tp.windows else (0, _BIG_TW)
            dlo, dhi = td.windows[0] if td.windows else (0, _BIG_TW)
            shipments.append(
                pyvrp.Shipment(
                    pickup_location=tp.node,
                    delivery_location=td.node,
                    pickup_tw_early=plo,
                    pickup_tw_late=phi,
                    pickup_service_duration=tp.service_s,
                    delivery_tw_early=dlo,
                    delivery_tw_late=dhi,
                    delivery_service_duration=td.service_s,
                    amount=list(info.demand),
                    prize=prize,
                    required=required,
                    name=p.order_ids[td.order],
                )
            )
            shipment_tasks.append((info.pickup, info.delivery))

    # routing profiles: one per distinct set of nodes some vehicle may not enter
    missing = _missing_arc(p)
    dist = np.ascontiguousarray(p.distance, dtype=np.int64)
    dur = np.ascontiguousarray(p.duration, dtype=np.int64)
    banned_by_skills = _banned_nodes(p)
    bans = sorted(set(banned_by_skills.values()), key=len)
    index = {banned: k for k, banned in enumerate(bans)}
    # each profile's matrix made as PyVRP reads it, and freed once PyVRP has its copy
    dist_mats = ProfileMatrices(dist, bans, missing)
    dur_mats = ProfileMatrices(dur, bans, missing)
    profiles = {skills: index[banned] for skills, banned in banned_by_skills.items()}

    groups: dict[tuple[object, ...], list[int]] = {}
    for vi, veh in enumerate(p.vehicles):
        groups.setdefault(veh.type_key, []).append(vi)
    vtypes = []
    type_vehicles: list[list[int]] = []
    for members in groups.values():
        veh = p.vehicles[members[0]]
        cap = [min(c, UNLIMITED) for c in veh.capacity]
        # breaks are not modelled: the shift is shortened by their length instead, so routes
        # leave room for them (the scheduler then places them, see the module docstring)
        rest = shortened_by_s(p, members[0])
        duration = veh.max_duration_s if veh.max_duration_s is not None else _BIG_TW
        vtypes.append(
            pyvrp.VehicleType(
                num_available=len(members),
                capacity=cap,
                start_depot=veh.start_node,
                end_depot=veh.end_node,
                fixed_cost=veh.fixed_cost,
                tw_early=veh.shift[0],
                tw_late=max(veh.shift[0], veh.shift[1] - rest),
                start_late=None
                if veh.latest_start is None
                else min(veh.start_late, max(veh.shift[0], veh.shift[1] - rest)),
                shift_duration=duration if duration == _BIG_TW else max(0, duration - rest),
                max_distance=veh.max_distance_m if veh.max_distance_m is not None else _BIG_TW,
                unit_distance_cost=veh.unit_distance_cost,
                unit_duration_cost=veh.unit_duration_cost,
                profile=profiles.get(veh.skills, 0),
                name=",".join(str(v) for v in members),
            )
        )
        type_vehicles.append(members)
    data = pyvrp.ProblemData(
        locations=locs,
        clients=clients,
        depots=depots,
        vehicle_types=vtypes,
        distance_matrices=dist_mats,  # type: ignore[arg-type]
        duration_matrices=dur_mats,  # type: ignore[arg-type]
        groups=[],
        shipments=shipments,
    )

    def decode(sol: pyvrp.Solution) -> dict[int, list[int]]:
        pools = [list(members) for members in type_vehicles]
        out: dict[int, list[int]] = {}
        for route in sol.routes():
            seq: list[int] = []
            for act in route:
                if act.is_client():
                    seq.append(client_task[act.idx])
                elif act.is_pickup():
                    seq.append(shipment_tasks[act.idx][0])
                elif act.is_delivery():
                    seq.append(shipment_tasks[act.idx][1])
            if seq:
                out[pools[route.vehicle_type()].pop(0)] = seq
        return out

    return data, type_vehicles, decode


def _initial_solution(
    problem: RoutingProblem,
    data: pyvrp.ProblemData,
    type_vehicles: list[list[int]],
    initial: Mapping[int, Sequence[int]] | None,
    optional: Callable[[int], bool] | None = None,
    deadline: float | None = None,
) -> tuple[pyvrp.Solution | None, list[int]]:
    """A PyVRP Solution from warm-start routes (None if there are none or they don't map),
    and the orders taken out of it to make it feasible in PyVRP's model.

    A route PyVRP deems infeasible (with breaks: a route that uses its shift in full, which
    PyVRP sees shortened by the breaks) loses, one at a time, an order for which ``optional``
    is true (a prize in PyVRP's data): among the :data:`TRIM_CANDIDATES` whose visits take the
    most time, the one whose removal leaves the least violation, timed by PyVRP; past
    ``deadline`` (a ``time.perf_counter()`` value) the one of them :func:`removal_violations`
    predicts so (PyVRP's evaluation, in numpy), untimed. PyVRP only searches around the stops
    it perturbs and keeps a new best solution only when it is feasible, so from an infeasible
    start it can run out of time without a feasible plan.
    """
    if not initial:
        return None, []
    import pyvrp

    vtype = {v: k for k, members in enumerate(type_vehicles) for v in members}
    client_of: dict[int, int] = {}
    ship_of: dict[int, tuple[int, bool]] = {}
    ci = si = 0
    for info in problem.orders:
        if info.from_depot:
            client_of[info.delivery] = ci
            ci += 1
        else:
            assert info.pickup is not None
            ship_of[info.pickup] = (si, True)
            ship_of[info.delivery] = (si, False)
            si += 1

    def activities(seq: Sequence[int]) -> list[pyvrp.Activity]:
        acts = []
        for t in seq:
            if t in client_of:
                acts.append(pyvrp.Activity(pyvrp.ActivityType.CLIENT, client_of[t]))
            else:
                idx, is_pickup = ship_of[t]
                kind = pyvrp.ActivityType.PICKUP if is_pickup else pyvrp.ActivityType.DELIVERY
                acts.append(pyvrp.Activity(kind, idx))
        return acts

    routes = []
    trimmed: list[int] = []
    try:
        for v, seq in initial.items():
            seq = list(seq)
            if not seq:
                continue
            route = pyvrp.Route(data, activities(seq), vtype[v])
            while optional is not None and seq and not route.is_feasible():
                late = deadline is not None and time.perf_counter() > deadline
                ranked = _trim_candidates(problem, v, seq, optional, late=late)
                if not ranked:
                    break
                best: tuple[int, int, list[int], pyvrp.Route] | None = None
                for rank, o in enumerate(ranked):
                    rest = [t for t in seq if problem.tasks[t].order != o]
                    shorter = pyvrp.Route(data, activities(rest), vtype[v])
                    if best is None or (_violation(shorter), rank) < best[:2]:
                        best = (_violation(shorter), rank, rest, shorter)
                    if best[0] == 0:  # feasible: the later candidates cannot do better
                        break
                assert best is not None
                trimmed.append(ranked[best[1]])
                seq, route = best[2], best[3]
            if seq:
                routes.append(route)
        return pyvrp.Solution(data, routes), trimmed
    except (ValueError, RuntimeError):
        return None, []


def _trim_candidates(
    problem: RoutingProblem,
    vehicle: int,
    seq: Sequence[int],
    optional: Callable[[int], bool],
    *,
    late: bool,
) -> list[int]:
    """The orders of a route PyVRP may do without (``optional``) to try removing: the
    :data:`TRIM_CANDIDATES` whose visits take the route the most time, most first; ``late``
    (past the trim's deadline), only the one of them whose removal leaves the least violation
    as :func:`removal_violations` predicts it (ties: the one taking the most time)."""
    from solvers.routing.repair import costliest_orders

    by_time = [o for o in costliest_orders(problem, vehicle, seq) if optional(o)]
    by_time = by_time[:TRIM_CANDIDATES]
    if not late or len(by_time) <= 1:
        return by_time
    predicted = removal_violations(problem, vehicle, seq, by_time)
    return [by_time[int(np.argmin(predicted))]]  # argmin: the first of equal ones


#: "No bound" in :func:`removal_violations`' duration segments: far above any time (PyVRP's
#: durations are at most 2**44) and far below int64's limit, so their sums cannot overflow.
_SEG_INF = 2**52

_Segment = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]


def _merge(a: _Segment, b: _Segment) -> _Segment:
    """PyVRP's concatenation of two duration segments (``DurationSegment.merge``, one trip,
    release times added by the caller), element-wise; the travel between them is counted in
    ``a``'s duration."""
    dur_a, warp_a, early_a, late_a = a
    dur_b, warp_b, early_b, late_b = b
    at = dur_a - warp_a  # when b starts, counted from a's start
    diff_warp = np.maximum(early_a + at - late_b, 0)
    diff_wait = np.maximum(early_b - at - late_a, 0)
    return (
        dur_a + dur_b + diff_wait,
        warp_a + warp_b + diff_warp,
        np.maximum(early_a, early_b - at) - diff_wait,
        np.minimum(late_a, late_b - at) + diff_warp,
    )


def _range_segments(
    levels: list[_Segment], lo: NDArray[np.int64], hi: NDArray[np.int64]
) -> _Segment:
    """The merged segments of items ``lo .. hi - 1`` (element-wise; empty ranges give the
    identity), from ``levels[l][i]`` = the merge of items ``i .. i + 2**l - 1``."""
    zero = np.zeros_like(lo)
    acc: _Segment = (zero, zero, zero - _SEG_INF, zero + _SEG_INF)
    pos = lo.copy()
    length = np.maximum(hi - lo, 0)
    for level in range(len(levels) - 1, -1, -1):
        take = ((length >> level) & 1).astype(bool)
        if not take.any():
            continue
        dur, warp, early, late = levels[level]
        idx = np.minimum(pos, dur.shape[0] - 1)
        merged = _merge(acc, (dur[idx], warp[idx], early[idx], late[idx]))
        acc = (
            np.where(take, merged[0], acc[0]),
            np.where(take, merged[1], acc[1]),
            np.where(take, merged[2], acc[2]),
            np.where(take, merged[3], acc[3]),
        )
        pos = pos + np.where(take, 1 << level, 0)
    return acc


def shortened_by_s(problem: RoutingProblem, vehicle: int) -> int:
    """Seconds PyVRP's shift (and maximum duration) of ``vehicle`` is shortened by for its
    breaks: their length, less that of the first breaks every route of the vehicle takes at
    its start while it waits for its loads (they fit, one after another from the shift's
    start, before the earliest release of any delivery it may load: a route leaves no
    earlier than the releases of the deliveries it loads,
    :func:`~solvers.routing.problem.pre_departure_breaks`)."""
    veh = problem.vehicles[vehicle]
    rest = sum(length for _, _, length in veh.breaks)
    if not veh.breaks or not problem.has_releases:
        return rest
    earliest = problem.earliest_release_s[vehicle]
    for k in range(len(veh.breaks), 0, -1):
        if pre_departure_breaks(veh, earliest, range(k)) is not None:
            return rest - sum(length for _, _, length in veh.breaks[:k])
    return rest


def removal_violations(
    problem: RoutingProblem, vehicle: int, seq: Sequence[int], orders: Sequence[int]
) -> NDArray[np.int64]:
    """For each of ``orders`` (served on ``seq``), the violation PyVRP would see on the route
    without it: its time warp (lateness at the visits' windows and at the end of the shift
    PyVRP sees, shortened by the breaks) + duration past its maximum (also shortened) +
    distance past its maximum, in a few numpy passes.

    Exact (PyVRP's own route evaluation, load aside: removing an order never adds load): the
    route's visits are PyVRP's duration segments, merged as PyVRP merges them; a table of the
    merges of every run of 2**l visits gives each removal's route as at most three runs
    (before the order, between its pickup and its delivery, after it) in O(log n) steps.
    """
    p = problem
    veh = p.vehicles[vehicle]
    rest = shortened_by_s(p, vehicle)
    end_late = max(veh.shift[0], veh.shift[1] - rest)  # PyVRP's tw_late (and start_late)
    seq_a = np.asarray(seq, dtype=np.int64)
    n = seq_a.shape[0]
    items = n + 2  # the start, the visits, the end
    node = np.concatenate([[veh.start_node], p.arrays.node[seq_a], [veh.end_node]])
    windows = [p.tasks[t].windows[0] if p.tasks[t].windows else (0, _SEG_INF) for t in seq]
    early = np.array([veh.shift[0], *(lo for lo, _ in windows), veh.shift[0]], dtype=np.int64)
    start_late = end_late if veh.latest_start is None else min(veh.start_late, end_late)
    late = np.array([start_late, *(min(hi, _SEG_INF) for _, hi in windows), end_late], np.int64)
    edge = np.zeros(items, dtype=np.int64)
    edge[:-1] = p.duration[node[:-1], node[1:]]
    service = np.concatenate([[0], p.arrays.service[seq_a], [0]]).astype(np.int64)
    # each item with the travel to the next one in its duration
    levels: list[_Segment] = [(service + edge, np.zeros(items, np.int64), early, late)]
    while 2 ** len(levels) <= items:
        half = 2 ** (len(levels) - 1)
        dur, warp, early_l, late_l = levels[-1]
        levels.append(
            _merge(
                (dur[:-half], warp[:-half], early_l[:-half], late_l[:-half]),
                (dur[half:], warp[half:], early_l[half:], late_l[half:]),
            )
        )

    pos_of: dict[int, list[int]] = {}
    for k, t in enumerate(seq):
        pos_of.setdefault(p.tasks[t].order, []).append(k + 1)  # item index
    first = np.array([pos_of[o][0] for o in orders], dtype=np.int64)
    last = np.array([pos_of[o][-1] for o in orders], dtype=np.int64)
    between = last > first + 1  # visits between the order's two
    travel = p.duration
    before = _range_segments(levels, np.zeros_like(first), first)
    after_first = np.where(between, first + 1, last + 1)
    before = (
        before[0] + travel[node[first - 1], node[after_first]] - edge[first - 1],
        *before[1:],
    )
    middle = _range_segments(levels, first + 1, np.where(between, last, first + 1))
    middle = (
        middle[0] + np.where(between, travel[node[last - 1], node[last + 1]] - edge[last - 1], 0),
        *middle[1:],
    )
    after = _range_segments(levels, last + 1, np.full_like(last, items))
    duration, warp, _, late_start = _merge(_merge(before, middle), after)
    out = warp.copy()
    if p.has_releases:
        # the trip leaves once the clients it keeps are released (PyVRP's release times):
        # a release after the latest start that keeps the rest on time is time warp
        by_order = np.zeros(len(p.orders), dtype=np.int64)
        for t in seq:
            o = p.tasks[t].order
            by_order[o] = max(int(by_order[o]), int(p.tasks[t].release))
        kept = by_order[sorted({p.tasks[t].order for t in seq})]
        top = np.sort(kept)[::-1]
        first_r = int(top[0]) if len(top) else 0
        second_r = int(top[1]) if len(top) > 1 else 0
        mine = by_order[np.asarray(orders, dtype=np.int64)]
        release = np.where(mine == first_r, second_r, first_r)
        out += np.maximum(0, release - late_start)
    if veh.max_duration_s is not None:
        # PyVRP counts the time warp once: the duration past the maximum is net of it
        out += np.maximum(0, duration - warp - max(0, veh.max_duration_s - rest))
    if veh.max_distance_m is not None:
        dist = p.distance
        along = np.zeros(items, dtype=np.int64)
        np.cumsum(dist[node[:-1], node[1:]], out=along[1:])

        def saved(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
            """Distance saved by cutting items a..b out (both kept neighbours stay)."""
            return along[b + 1] - along[a - 1] - dist[node[a - 1], node[b + 1]]

        adjacent_or_one = last <= first + 1
        total_d = np.where(
            adjacent_or_one, saved(first, last), saved(first, first) + saved(last, last)
        )
        out += np.maximum(0, along[-1] - total_d - veh.max_distance_m)
    result: NDArray[np.int64] = out.astype(np.int64)
    return result


def _violation(route: pyvrp.Route) -> int:
    """How far a PyVRP route is from feasible: time warp + excess distance + excess load."""
    return int(route.time_warp() + route.excess_distance() + sum(route.excess_load()))
