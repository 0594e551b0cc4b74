"""``solve_routes``: diagnose, pick an engine, search, schedule, validate, fall back."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from scenarios.errors import InputError
from scenarios.model import Scenario
from scenarios.plan import (
    Plan,
    PlanStatus,
    Route,
    StopKind,
    Unassigned,
    UnassignedReason,
    bad_break_index,
)
from scenarios.travel import MatrixDeadlineError, matrix_deadline
from solvers.cancel import cancelled
from solvers.cpus import usable_cpus
from solvers.gc_pause import full_collections_paused
from solvers.routing.diagnose import DiagnosisDeadlineError, diagnose_orders
from solvers.routing.engines.base import Engine, EngineSettings
from solvers.routing.from_allocation import split_order_groups
from solvers.routing.greedy import ALWAYS_COMPLETE_SIZE, GRACE_S, always_completes
from solvers.routing.params import RoutingParams
from solvers.routing.problem import RoutingProblem, build_problem, check_int_range, left_out
from solvers.routing.repair import graced_groups
from solvers.routing.schedule import route_value, schedule_route, to_route
from solvers.validate import validate_plan

log = logging.getLogger(__name__)


#: Seconds kept back from the budget for decoding and validating the plan (:func:`reserve_s`):
#: a base and a share per order, linear as decoding and validation are (session 70, generated
#: city days with breaks, 100 couriers per 1,000 orders, the greedy plan decoded and
#: validated: 0.026 s at 500 orders, 0.10-0.11 s at 1,000, 0.11-0.13 s at 2,000 and 0.19 s
#: at 4,000, 48-108 us per order; the formula of before, 4e-5 per order and 1.5e-8 per order
#: squared, kept 0.065 s at 1,000 orders, and the greedy plan answered 0.06-0.07 s late).
RESERVE_BASE_S = 0.01
RESERVE_PER_ORDER_S = 1.2e-4
#: ... and, when the greedy plan built before the search is the answer, a share per order it
#: leaves out (:func:`construction_reserve_s`): the construction stopping at its deadline,
#: decoding the order as unassigned and validating that take time too (session 71, 10,000-
#: order city day, 100 couriers per 1,000 orders, exclusive lock: 0.053-0.062 s after the
#: construction's stop, 0.080-0.084 s decoding and 0.031-0.033 s validating with all 10,000
#: left out, 16-18 us per order, where the reserve kept none and the answer came 0.09-0.15 s
#: late at 2 and 5 s).
RESERVE_PER_LEFT_S = 1.7e-5
#: ... and a share per order it routes (:func:`construction_reserve_s`; before session 74
#: :data:`RESERVE_PER_ORDER_S`): decoding and validating a routed order took 34-57 us on a
#: 10,000-order city day (100 couriers per 1,000 orders, exclusive lock; about 0.3 ms a route
#: of that) in session 74's runs, but 133 us in the committed run of session 73 (4,618
#: orders routed: 0.71 s against a reserve of 0.66 s), the worst seen, kept with a margin of
#: a fifth.
RESERVE_PER_ROUTED_S = 1.6e-4
#: A search is given the greedy plan built beside it (on a thread, while its processes run;
#: :attr:`~solvers.routing.engines.base.EngineSettings.meanwhile`) when the time left for it
#: is under this many times the engine's own estimate of its start (:meth:`Engine.min_time_s`)
#: and it leaves a core free: its first iteration cannot be cut short, and where it does not
#: end in time the greedy plan built afterwards has nothing left (session 81: 1,000 orders at
#: 2 s, 1.45 s left against an estimate of 1.18 s, no iteration ended, 266 orders routed; at
#: 1 s, the greedy plan alone, 587).
ASIDE_MARGIN = 1.5
#: When the greedy plan is built before the search, the reserve is at least this many times
#: the time its schedule took to price (:func:`_value`), measured in the call: the phases
#: after the search schedule the plan about that many times (comparisons, decoding,
#: validation; 1,000-job pickup city day: 63 ms after the search, 5.5 ms per pricing), on a
#: slow or loaded machine as on a fast one (the fixed reserve came 0.1 s short on a machine
#: 2-3 times slower).
RESERVE_SCHEDULES = 12
#: The modules a solve imports on its first call, not with this module: the engines, the passes
#: after the search, a road network's shortest paths (SciPy's csgraph and KD-tree: 0.26-0.33 s).
#: A process imports them before its first solve, so that its time limit does not pay for them:
#: the service as it starts (``api.main.ROUTING_PRELOAD``), ``dispatchlab route`` before its
#: solve (:func:`import_first_call_modules`; it paid them inside its limit until session 78).
FIRST_CALL_MODULES = (
    "scenarios.roads",
    "solvers.routing.engines.ortools_engine",
    "solvers.routing.engines.pyvrp_engine",
    "solvers.routing.greedy",
    "solvers.routing.polish",
    "solvers.routing.repair",
)


def import_first_call_modules() -> None:
    """Import :data:`FIRST_CALL_MODULES`, so that a first solve does not within its limit."""
    for name in FIRST_CALL_MODULES:
        importlib.import_module(name)


#: Seconds past ``time_limit_s`` within which an answer counts as on time: past it,
#: ``stats.late`` says which phases took the time (the travel matrix, the diagnosis or the
#: construction's minimum CPU time alone can take longer than a very short limit).
TIME_LIMIT_MARGIN_S = 0.1
#: Share of the budget kept for repairing PyVRP routes that cannot take their breaks.
REPAIR_SHARE = 0.03
#: Share of the budget kept, when some vehicle has breaks, for the break-aware
#: post-optimisation of the search's plan (:mod:`solvers.routing.polish`): the engines do not
#: price the breaks, the moves of that pass do.
POLISH_SHARE = 0.1
#: With ``max_iterations`` (a run reproducible from its seed) the break-aware
#: post-optimisation also stops after :data:`POLISH_SHARE` of the budget times this many
#: units of work (:mod:`solvers.routing.polish`: 1 per bound, 10 per pricing), not only on
#: the clock: about half what the machine of session 54 did per CPU second (77,000 units on a
#: seeded 200-order city day with breaks, loaded), so it ends the same on a machine twice
#: as slow, and on one slower still while the time the search left it lasts.
POLISH_WORK_PER_S = 40_000
#: ... but at most this many units per visit of the problem, and :data:`POLISH_WORK_MIN`
#: (:func:`polish_work`): the work the pass needs grows with the instance, not with the
#: time limit, which made a pass with a limit of hours run for hours (86,400 s: 345.6
#: million units) where it had long stopped finding anything worth it.
POLISH_WORK_PER_VISIT = 2_500
POLISH_WORK_MIN = 1_000_000
#: Constructions after the search that may each run :data:`~solvers.routing.greedy.GRACE_S`
#: of CPU time past their deadline (the repairs of the search's routes and of its start, or
#: the greedy plan built after it): their grace is kept back from the search too, where one
#: can run (:func:`_constructions_after`).
REPAIR_GRACES = 2
#: Unassigned details for orders the deadline cut off, and orders a repair took off a route.
LATE = "not placed: the time limit was reached while building the plan"
BUMPED = (
    "taken off its route to make room for a driver break (or another constraint the engine "
    "does not model), and no other place was found"
)
#: Solves of at least this many orders run with automatic full garbage collections held
#: back (:func:`~solvers.gc_pause.full_collections_paused`). CPython runs one after every
#: tenth collection of the middle generation; a 2,000-order solve makes about three, so
#: every third or fourth solve in one process (a service's) walked the whole heap (105,000
#: objects in a script: 0.04-0.06 s), and it came mostly in the decoding, the phase after
#: the search that makes the most objects, inside the reserve: those decodings took 0.08-0.105
#: s, the others 0.03-0.05 s (session 71; 1,000 orders: one in the validation, 0.077 s
#: against 0.03 s). It freed nothing: a solve leaves no cyclic garbage (the tracked objects
#: stayed flat over 10 solves with the collection held back throughout). Held back, it
#: runs at the caller's next allocations outside a paused solve. From 500 orders a solve
#: makes one or more middle collections (100 orders: one every third solve), and a full
#: collection costs as much whatever the solve's size.
GC_PAUSE_ORDERS = 500
#: Problems with more visit nodes than this are not given to OR-Tools by ``auto``: its model
#: takes integer matrices as Python lists (quadratic build time and memory).
ORTOOLS_AUTO_MAX_NODES = 2_500
#: Problems whose PyVRP data would take more memory than this are not given to PyVRP by
#: ``auto`` (a distance and a duration matrix per skill profile, counted twice: PyVRP's copy
#: and ours, of which at most one is alive at a time since session 52: a bound).
PYVRP_AUTO_MAX_BYTES = 4 * 2**30


@dataclass
class SolveStats:
    """Where the time of one :func:`solve_routes` call went (seconds)."""

    build_s: float = 0.0
    greedy_s: float = 0.0
    engine_s: float = 0.0
    repair_s: float = 0.0
    polish_s: float = 0.0
    decode_s: float = 0.0
    validate_s: float = 0.0
    total_s: float = 0.0
    engine: str = ""
    fallback: str | None = None
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    #: set when the answer came later than the time limit + :data:`TIME_LIMIT_MARGIN_S`: by
    #: how much, and the time of each phase (also in ``notes``)
    late: str | None = None
    #: the notes about the pins of ``initial_plan`` (also in ``notes``): partners pinned too,
    #: pins released and why
    pin_notes: list[str] = field(default_factory=list)
    #: the clock, not a work budget, ended the search (:attr:`EngineResult.clock_cut`), or
    #: left no time to start it: the plan then depends on the machine's speed
    clock_cut: bool = False
    #: in a run given a work budget (:func:`work_budget`), one note per phase the clock cut
    #: before its work was done (the search, the repair, the break-aware post-optimisation;
    #: also in ``notes``): the plan then depends on the machine's speed and is
    #: ``time_limited``
    clock_notes: list[str] = field(default_factory=list)
    #: the break-aware post-optimisation stopped at its deadline, not by itself or after its
    #: work budget (its note says so too)
    polish_timed_out: bool = False

    @property
    def overhead_s(self) -> float:
        """Time not spent constructing, searching, repairing or polishing (build + decode +
        validate)."""
        return self.total_s - self.engine_s - self.greedy_s - self.repair_s - self.polish_s


def _engine(name: str) -> Engine:
    if name == "pyvrp":
        from solvers.routing.engines.pyvrp_engine import PyVRPEngine

        return PyVRPEngine()
    if name == "ortools":
        from solvers.routing.engines.ortools_engine import ORToolsEngine

        return ORToolsEngine()
    from solvers.routing.greedy import GreedyEngine

    return GreedyEngine()


def choose_engine(problem: RoutingProblem, settings: EngineSettings, requested: str) -> Engine:
    """The engine to run: the requested one, or for ``auto`` the best one that can model it.

    ``auto``: PyVRP when it can model every feature (driver breaks are placed afterwards by
    the scheduler, see :mod:`solvers.routing.repair`) and its data fit in
    :data:`PYVRP_AUTO_MAX_BYTES`; else OR-Tools (several windows per stop, pinned stops, a
    disruption cost, prices so large that PyVRP's penalties must stay weak to fit int64)
    up to :data:`ORTOOLS_AUTO_MAX_NODES` visits; beyond that the greedy plan.
    """
    if requested == "auto":
        from solvers.routing.engines.pyvrp_engine import data_bytes, unsupported, weak_penalties

        ortools_fits = problem.num_depot_nodes + len(problem.tasks) <= ORTOOLS_AUTO_MAX_NODES
        if (
            unsupported(problem, settings) is None
            and data_bytes(problem) <= PYVRP_AUTO_MAX_BYTES
            and not (ortools_fits and weak_penalties(problem))
        ):
            return _engine("pyvrp")
        if ortools_fits:
            return _engine("ortools")
        return _engine("greedy")
    engine = _engine(requested)
    if requested == "pyvrp":
        from solvers.routing.engines.pyvrp_engine import penalty_range_error

        error = penalty_range_error(problem)
        if error is not None:
            raise error
    why = engine.unsupported(problem, settings)
    if why is not None:
        raise InputError(
            "engine", f"{requested} cannot model {why}; use engine 'ortools' or 'auto'"
        )
    return engine


def work_budget(engine: str, params: RoutingParams) -> tuple[int, str] | None:
    """The work budget that makes ``engine``'s search a function of the seed, and its unit:
    PyVRP's ``max_iterations``, OR-Tools' ``max_solutions``; None when its search runs on the
    clock alone (no budget given, or the greedy engine, whose construction has none)."""
    if engine == "pyvrp" and params.max_iterations is not None:
        return params.max_iterations, "iterations"
    if engine == "ortools" and params.max_solutions is not None:
        return params.max_solutions, "solutions"
    return None


def polish_work(problem: RoutingProblem, time_limit_s: float) -> int:
    """The work budget of the break-aware post-optimisation of a run given a work budget:
    its share of the time limit at :data:`POLISH_WORK_PER_S`, at most what the instance
    warrants (:data:`POLISH_WORK_PER_VISIT` per visit, at least :data:`POLISH_WORK_MIN`)."""
    by_time = int(POLISH_SHARE * time_limit_s * POLISH_WORK_PER_S)
    by_size = max(POLISH_WORK_MIN, POLISH_WORK_PER_VISIT * len(problem.tasks))
    return min(by_time, by_size)


def pyvrp_warm_start_refusal(params: RoutingParams) -> str | None:
    """Why PyVRP, asked for by name, is refused for the warm start of ``params`` (None when it
    is not): a pinned stop, or a disruption cost with a warm start that has stops.

    Read from the request alone (no travel matrix, no diagnosis), so the service refuses it
    before it queues a solve (a 202 whose job then failed on it); the router refuses the same
    requests, even when the pins would have been released (a pin whose partner is missing, or
    that no longer fits its vehicle): until session 62 it refused only the pins still in force
    once the warm start was mapped to the problem.
    """
    plan = params.initial_plan
    if plan is None:
        return None
    stops = [st for r in plan.routes for st in r.stops if st.kind is not StopKind.BREAK]
    return pyvrp_pin_refusal(
        pinned=any(st.pinned for st in stops),
        disrupted=bool(params.disruption_cost_cents) and bool(stops),
    )


def pyvrp_pin_refusal(*, pinned: bool, disrupted: bool) -> str | None:
    """Why PyVRP is refused for a warm start with a pinned stop, or priced by a disruption
    cost (None when it has neither)."""
    if pinned:
        return "pyvrp cannot model pinned stops; use engine 'ortools' or 'auto'"
    if disrupted:
        return "pyvrp cannot model a disruption cost; use engine 'ortools' or 'auto'"
    return None


def solve_routes(scenario: Scenario, params: RoutingParams | None = None) -> Plan:
    """Route the scenario's orders with its fleet; the plan has passed the validator."""
    return solve_routes_with_stats(scenario, params)[0]


def solve_routes_with_stats(
    scenario: Scenario,
    params: RoutingParams | None = None,
    *,
    absent_orders: Collection[str] = (),
) -> tuple[Plan, SolveStats]:
    """:func:`solve_routes` plus where the time went.

    ``absent_orders``: order ids the caller knows but left out of ``scenario`` (orders an
    allocation did not ship): stops of ``params.initial_plan`` naming them are ignored, where
    other unknown orders are an :class:`InputError`.

    Everything counts against ``time_limit_s``: building the matrices, the diagnosis, the
    greedy construction (the fallback plan and the search's starting point), the search, the
    repair of routes that cannot take their breaks (:data:`REPAIR_SHARE` of the budget when
    PyVRP plans a fleet with breaks), and a reserve for the checks after it, decoding and
    validating (the larger of a formula in the orders and :data:`RESERVE_SCHEDULES` times
    the pricing of the greedy plan, measured). The search gets what is left: the time spent
    before it is taken off, and a PyVRP search still in an iteration at its end is stopped
    there (its best solution so far kept). When no time is left for the search the greedy
    plan is returned (``stats.fallback`` says so); an answer later than ``time_limit_s`` +
    :data:`TIME_LIMIT_MARGIN_S` says so in ``stats.late`` (and ``stats.notes``).

    A solve of :data:`GC_PAUSE_ORDERS` orders or more holds back automatic full garbage
    collections (:func:`~solvers.gc_pause.full_collections_paused`) until it ends.
    """
    with full_collections_paused(len(scenario.orders) >= GC_PAUSE_ORDERS):
        return _solve_routes(scenario, params, absent_orders)


def _solve_routes(
    scenario: Scenario, params: RoutingParams | None, absent_orders: Collection[str]
) -> tuple[Plan, SolveStats]:
    """:func:`solve_routes_with_stats`, the collector's setting aside."""
    t0 = time.perf_counter()
    params = params or RoutingParams()
    deadline = t0 + params.time_limit_s
    stats = SolveStats()
    # the travel matrix stops where no time would be left to answer with every order left
    # out (10,000 orders at 1 s: building it alone took 1.7-4.7 s, answered 0.8-3.9 s late);
    # never on a small problem, which is planned whole however starved (always_completes)
    visits = sum(1 + (o.pickup is not None) for o in scenario.orders)
    small = visits + len(scenario.vehicles) <= ALWAYS_COMPLETE_SIZE
    # the answers of a stopped build are made after the except blocks: the stopped build's
    # frames (the exception's traceback) are let go first, inside the timers (freeing them
    # took up to 0.05 s after the answer's timers at 10,000 orders; session 75)
    build_end = None if small else deadline - construction_reserve_s(len(scenario.orders), 0)
    full: RoutingProblem | None
    try:
        with matrix_deadline(build_end):
            full = build_problem(scenario)
    except MatrixDeadlineError:
        full = None
    if full is None:
        stats.build_s = time.perf_counter() - t0
        return _unbuilt(scenario, params, stats, t0)
    found: dict[str, tuple[UnassignedReason, str]] | None = None
    try:
        # the diagnosis stops at the matrix's deadline too (10,000 orders: 0.13-0.23 s, which
        # a matrix done just before its deadline made late); the orders it named keep their
        # reason, the others are not placed
        diagnosed = diagnose_orders(full, build_end)
    except DiagnosisDeadlineError as cut:
        found = {full.order_ids[i]: r for i, r in cut.diagnosed.items()}
    if found is not None:
        stats.build_s = time.perf_counter() - t0
        return _unbuilt(scenario, params, stats, t0, found, NO_DIAGNOSIS)
    # an order whose direct trip fails only for the breaks may fit in a route with other
    # orders (a break due at the shift's end taken at a stop near the end depot): it is left
    # to the search, and keeps its diagnosis should it stay out
    left_out = {i for i, (reason, _) in diagnosed.items() if reason not in _SEARCH_ANYWAY}
    # an order split over nodes is served whole or not at all: a job left out takes the
    # other jobs of its order with it, but for a job with a pinned stop (a pin says it is
    # served: it stays, its order served in part), unless that pin is released
    asked = _pinned_ids(params)
    released: set[str] = set()  # jobs kept for a pin that was then released
    while True:
        taken: dict[int, tuple[UnassignedReason, str]] = {}
        for group in full.groups:
            out = [o for o in group if o in left_out]
            for o in group:
                if out and o not in left_out and full.order_ids[o] not in asked:
                    reason, detail = diagnosed[out[0]]
                    taken[o] = (reason, f"{full.order_ids[out[0]]}: {detail}")
        keep = [i for i in range(len(full.orders)) if i not in left_out and i not in taken]
        problem = full.restrict(keep) if len(keep) < len(full.orders) else full
        notes: list[str] = []
        settings = _settings(problem, params, notes, absent_orders)
        pinned = {problem.order_ids[problem.tasks[t].order] for t in settings.pinned}
        held = {
            full.order_ids[o]
            for group in full.groups
            if left_out.intersection(group)
            for o in group
            if o not in left_out and o not in taken
        }
        if held <= pinned:  # every job kept for its pin is still pinned
            break
        released |= held - pinned
        asked &= pinned  # a pin released (it no longer fits): its job goes with its order
    diagnosed.update(taken)
    if released:
        notes.append(
            "pins released, the pinned stops no longer fit their vehicle, and the other jobs "
            f"of their split order are left out: {_some(released)} left out with them"
        )
    stats.pin_notes.extend(notes)
    reasons = {full.order_ids[i]: r for i, r in diagnosed.items()}
    if settings.disruption_cost:
        check_int_range(problem, settings.disruption_cost, len(settings.original_vehicle))
    stats.notes.extend(stats.pin_notes)
    if params.engine == "pyvrp":
        refused = pyvrp_warm_start_refusal(params)
        if refused is not None:
            raise InputError("engine", refused)
    engine = choose_engine(problem, settings, params.engine)
    stats.engine = engine.name
    budget = work_budget(engine.name, params)

    def clock_cut(note: str) -> None:
        """Say that the clock cut a phase of a run given a work budget (its plan is then
        ``time_limited``); nothing for a run on the clock alone, which stops there by design."""
        if budget is not None and note not in stats.clock_notes:
            stats.clock_notes.append(note)
            stats.notes.append(note)

    reserve = reserve_s(len(problem.orders))
    # after the search: the repairs (with their graces) end by repair_end, then the checks,
    # decoding and validation take the reserve
    repair_share_s = (
        REPAIR_SHARE * params.time_limit_s if engine.name == "pyvrp" and problem.has_breaks else 0.0
    )
    # the break-aware post-optimisation runs after the repair, until repair_end
    polish_share_s = (
        POLISH_SHARE * params.time_limit_s
        if engine.name != "greedy" and problem.has_breaks
        else 0.0
    )
    graces_s = REPAIR_GRACES * GRACE_S if _constructions_after(problem, engine.name) else 0.0
    # whole_orders, after every construction, search and post-optimisation, may complete
    # pinned and mandatory split orders past its deadline on one grace: kept back too
    whole_s = GRACE_S if graced_groups(problem, settings.pinned) else 0.0
    repair_end = deadline - reserve - graces_s - whole_s
    search_end = repair_end - repair_share_s - polish_share_s
    # the greedy plan before the search is not followed by a repair when it is the answer:
    # its deadline keeps no grace for one (as before the graces were kept back); it keeps
    # construction_reserve_s: the reserve's base, RESERVE_PER_LEFT_S per order left out and
    # RESERVE_PER_ROUTED_S per order routed (decoding and validating the plan take that long
    # an order: a short limit routes few orders), so its deadline comes RESERVE_PER_LEFT_S
    # earlier per order, and the rest of RESERVE_PER_ROUTED_S earlier per order routed
    # the construction's grace (GRACE_S of CPU time past its deadline) ends where its plan,
    # as the answer, would come late: 0.05 s of CPU from a start near the deadline (1,000
    # orders at 0.1 s: the matrix took half the limit) answered 0.013-0.024 s late
    answer_end = deadline - construction_reserve_s(len(problem.orders), 0) - whole_s
    construction_end = answer_end - repair_share_s
    per_routed_s = RESERVE_PER_ROUTED_S - RESERVE_PER_LEFT_S
    stats.build_s = time.perf_counter() - t0

    # the greedy plan: the fallback, and where the search starts (built later, only if the
    # search fails, when PyVRP has no use for it); with an iteration cap PyVRP may stop long
    # before its time at a plan the greedy plan beats: it is built before the search to be
    # compared with its plan (deterministic: the plan still depends on the seed only); so it
    # is on small problems with breaks, which PyVRP's model leaves out
    t1 = time.perf_counter()
    seed_routes: dict[int, list[int]] | None = None
    seed_left: list[int] = []
    #: why the greedy plan left orders out, where the usual reason does not say it
    seed_why: dict[int, str] = {}
    #: notes of the greedy plan built beside the search: the answer's only if it answers
    seed_notes: list[str] = []
    aside_built = False  # the greedy plan was built beside the search (see ASIDE_MARGIN)
    seed_value: tuple[int, int] | None = None  # _value of seed_routes, once priced
    if (
        engine.name != "pyvrp"
        or params.max_iterations is not None
        or _pyvrp_needs_greedy(problem)
        or _pyvrp_misprices_breaks(problem)
    ):
        seed_routes, seed_left, seed_why = _greedy(
            problem, settings, construction_end, stats, per_routed_s, answer_end
        )
        if (
            engine.name != "greedy"
            and problem.orders
            and _may_search(problem, engine, search_end - time.perf_counter())
        ):
            # the phases after the search price and schedule the plan a few times: how long
            # one pricing takes here, now, sizes their reserve (the price is needed later)
            t_value = time.perf_counter()
            seed_value = _value(problem, settings, seed_routes)
            reserve = max(reserve, RESERVE_SCHEDULES * (time.perf_counter() - t_value))
            if _constructions_after(problem, engine.name, seed_left):
                graces_s = REPAIR_GRACES * GRACE_S
            repair_end = min(repair_end, deadline - reserve - graces_s - whole_s)
            search_end = min(search_end, repair_end - repair_share_s - polish_share_s)
    stats.greedy_s = time.perf_counter() - t1

    t2 = time.perf_counter()
    routes: dict[int, list[int]] | None = None
    start_routes: dict[int, list[int]] | None = None  # the engine's own start, if it made one
    name = engine.name
    from_seed = True  # the routes are the greedy plan's
    start_only = False  # the engine made its start and did not search
    if not problem.orders:
        routes = {}
    elif engine.name == "greedy":
        routes = seed_routes
        stats.detail = "cheapest insertion"
    elif seed_routes is not None and len(settings.pinned) == len(problem.tasks):
        # every stop pinned to its vehicle, in its order: no search can change the plan, and
        # OR-Tools ran on to its solution limit or its clock (8 orders, 100 solutions: 3.6 s)
        routes = seed_routes
        name = f"greedy (every stop pinned: no {engine.name} search)"
        stats.detail = "every stop pinned: the warm start's routes, no search"
    else:
        left_s = search_end - time.perf_counter()
        need_s = engine.min_time_s(problem)
        # too little time for the search, maybe enough for the engine's own start made of
        # the greedy plan (PyVRP's, trimmed to its model: repaired, it can beat the greedy plan)
        start_s = engine.min_start_s(problem) if seed_routes is not None else None
        start_only = left_s < need_s and start_s is not None and left_s >= start_s
        if left_s < need_s and not start_only:
            if seed_routes is None:
                seed_routes, seed_left, seed_why = _greedy(
                    problem, settings, construction_end, stats, per_routed_s, answer_end
                )
            routes = seed_routes
            name = f"greedy (no time left for {engine.name})"
            stats.clock_cut = True
            stats.fallback = (
                f"{left_s:.2f} s left of the budget, {engine.name} needs about {need_s:.2f} s "
                "to start: returning the greedy plan"
            )
        else:
            # a search whose start may not fit the time left (its first iteration cannot be
            # cut short) leaves no time for the greedy plan should it fail: that plan is built
            # beside it, on the core the search leaves free, until the search has a solution
            # (1,000 orders at 2 s: PyVRP's first iteration did not end in 1.4 s and the
            # greedy plan then built in what was left routed 266 orders)
            aside: list[tuple[dict[int, list[int]], list[int], dict[int, str]]] = []
            aside_stats = SolveStats()

            def build_aside() -> None:
                t_aside = time.perf_counter()
                # by the search's end: the phases after it keep their time
                end = min(construction_end, search_end)
                built = _greedy(problem, settings, end, aside_stats, per_routed_s, answer_end)
                aside_stats.greedy_s = time.perf_counter() - t_aside
                if not cancelled():  # stopped once the search had a solution: not needed
                    aside.append(built)

            beside = (
                seed_routes is None
                and not start_only
                and left_s < ASIDE_MARGIN * need_s
                and usable_cpus() > max(1, settings.num_workers)
            )
            run = replace(
                settings,
                time_limit_s=left_s,
                deadline=search_end,
                seed_routes=seed_routes,
                seed_left=tuple(seed_left),
                search=not start_only,
                meanwhile=build_aside if beside else None,
            )
            result = engine.solve(problem, run)
            if aside:
                seed_routes, seed_left, seed_why = aside[0]
                seed_notes = aside_stats.notes
                aside_built = True
                stats.greedy_s = aside_stats.greedy_s
            from_seed = False
            stats.detail = result.detail
            stats.clock_cut = result.clock_cut or start_only
            if start_only:
                name = f"greedy ({engine.name}'s start, no time left for its search)"
                stats.fallback = (
                    f"{left_s:.2f} s left of the budget, {engine.name} needs about {need_s:.2f} s "
                    f"to start its search: returning its start (the greedy plan trimmed to its "
                    f"model, about {start_s:.2f} s), repaired"
                )
            if result.feasible:
                routes = result.routes
                start_routes = result.start_routes
            else:
                when = " before its time limit" if result.out_of_time else ""
                stats.fallback = f"{engine.name} found no feasible solution{when} ({result.detail})"
                if result.out_of_time and seed_routes is not None:
                    # out of time (OR-Tools' seed completion killed at its deadline: 1.3 s
                    # early on the 2,400-order city day with breaks at 10 s): the greedy plan
                    # answers, post-optimised in the time left as when no search could start
                    routes, name = seed_routes, f"greedy (fallback from {engine.name})"
                    from_seed = True
    stats.engine_s = time.perf_counter() - t2
    if stats.clock_cut and budget is not None:
        searched = not (from_seed or start_only)
        clock_cut(
            f"time limit reached in the search: the {engine.name} search "
            + ("stopped on the clock" if searched else "had no time to run")
            + f" before its budget of {budget[0]} {budget[1]} (the plan depends on the "
            "machine's speed; a longer time_limit_s lets the budget end it)"
        )

    # why some orders are left out, when it is not the usual (no place, or not worth it)
    why: dict[int, str] = dict(seed_why) if from_seed else {}
    origin = "greedy plan it started from"
    compare_after = False  # the greedy plan compared with the search's once polished
    compare_late = False  # the greedy plan compared, unpolished, with the search's polished
    t_repair = time.perf_counter()
    if routes is not None and not from_seed:
        known_notes = len(stats.notes)
        routes, why = _repair(problem, routes, engine.name, settings, repair_end, stats)
        if engine.name == "ortools" and problem.groups:
            routes = _reinsert_groups(problem, routes, settings, repair_end, stats)
        if start_routes is not None and time.perf_counter() < repair_end:
            # the search may end dearer than the start it was given once both are repaired
            # (its own objective prices the orders taken out of that start by their prizes)
            alt = SolveStats()
            start_fixed, start_why = _repair(
                problem, start_routes, engine.name, settings, repair_end, alt
            )
            if _value(problem, settings, start_fixed) < _value(problem, settings, routes):
                routes, why = start_fixed, start_why
                del stats.notes[known_notes:]
                stats.notes.extend(alt.notes)
                stats.notes.append(
                    f"the {engine.name} search ended dearer than the starting plan it was "
                    "given (trimmed to its model): returning that plan, repaired"
                )
        # PyVRP with an iteration cap is given the greedy plan to be compared with, not
        # (under GREEDY_START_TASKS visits) to start from
        built_before = (
            engine.name == "pyvrp"
            and seed_routes is not None
            and not start_only
            and _pyvrp_compares_only(problem)
        )
        origin = "greedy plan built before it" if built_before else "greedy plan it started from"
        if aside_built:
            origin = "greedy plan built beside it"
        if (
            seed_routes is None
            and _value(problem, settings, routes)[0]
            and (time.perf_counter() < repair_end or always_completes(problem))
        ):
            # mandatory orders left out by a search that did not start from the greedy plan
            # (PyVRP with breaks plans shortened shifts): the greedy plan may place them (on a
            # small problem even past the deadline: its construction is bounded by its size)
            seed_routes, seed_left, seed_why = _greedy(problem, settings, repair_end, stats)
            seed_value = None
            origin = "greedy plan built after it"
            built_before = False
        if seed_routes is not None and seed_value is None:
            seed_value = _value(problem, settings, seed_routes)
        # a search that did not start from the greedy plan (PyVRP with an iteration cap) is
        # compared with it once post-optimised: the break-aware pass may make it the cheaper.
        # Without a cap (a small problem with breaks) the search's plan gets the whole pass
        # and is compared with the greedy plan as it is (the pass split between the two cost
        # the plans of 40-order days up to 4 % more); the greedy plan gets what time is left
        compared = built_before and problem.has_breaks
        compare_after = compared and params.max_iterations is not None
        compare_late = compared and params.max_iterations is None
        better = seed_value is not None and seed_value < _value(problem, settings, routes)
        if better and seed_routes is not None and not (compare_after or compare_late):
            # the search ended worse than where it started (its clock ran out before it could
            # load the greedy plan, say): the greedy plan it was given is the answer
            stats.fallback = _worse_than_greedy(engine.name, start_only, origin)
            routes, name = seed_routes, f"greedy (better than {engine.name})"
            why = dict(seed_why)
    stats.repair_s = time.perf_counter() - t_repair

    if routes is not None and not from_seed:  # the greedy plan is whole already
        routes = _whole(problem, routes, settings, repair_end, stats, why)
        if time.perf_counter() > repair_end:
            clock_cut(
                "time limit reached in the repair after the search: it ended past its "
                "deadline, and what it did may depend on the machine's speed"
            )

    t_polish = time.perf_counter()
    notes_at_polish = len(stats.notes)
    unpolished = routes
    # a reproducible run (max_iterations for PyVRP, max_solutions for OR-Tools) stops the
    # pass on its work, as the search stops on its iterations: the same plan on a slow
    # machine as on a fast one
    work = (
        polish_work(problem, params.time_limit_s)
        if params.max_iterations is not None or params.max_solutions is not None
        else None
    )
    polish = bool(routes) and engine.name != "greedy" and problem.has_breaks
    # the greedy plan compared with the search's gets the same pass (half the time left each,
    # the greedy plan what the first leaves): compared unpolished, it lost to a plan that
    # only the pass made cheaper, and won with less time left for its own pass
    both = compare_after and seed_routes is not None and seed_value is not None
    polish_cut = (
        "time limit reached in the break-aware post-optimisation: the clock stopped it before "
        "its work budget (the plan depends on the machine's speed)"
    )
    if routes and polish and t_polish >= repair_end:
        clock_cut(polish_cut)
    if routes and polish and t_polish < repair_end:
        first_end = t_polish + (repair_end - t_polish) / 2 if both else repair_end
        routes = _polish_whole(problem, routes, settings, first_end, repair_end, stats, work, why)
        rival = rival_unpolished = seed_routes
        rival_why = dict(seed_why)
        alt = SolveStats()
        if both and rival and time.perf_counter() < repair_end:
            rival = _polish_whole(
                problem, rival, settings, repair_end, repair_end, alt, work, rival_why
            )
        elif both and rival:
            alt.polish_timed_out = True  # no time left for the greedy plan's pass
        if (
            both
            and routes is not None
            and rival is not None
            and _value(problem, settings, rival) < _value(problem, settings, routes)
        ):
            stats.fallback = _worse_than_greedy(engine.name, start_only, origin, polished=True)
            del stats.notes[notes_at_polish:]  # the pass over the search's plan, not returned
            stats.notes.extend(alt.notes)
            routes, unpolished = rival, rival_unpolished
            name, why = f"greedy (better than {engine.name})", rival_why
        if stats.polish_timed_out or alt.polish_timed_out:  # the comparison took both
            clock_cut(polish_cut)
    elif both and _greedy_beats(problem, settings, routes, seed_routes, seed_value):
        # no time left for either pass
        stats.fallback = _worse_than_greedy(engine.name, start_only, origin)
        routes = unpolished = seed_routes
        name, why = f"greedy (better than {engine.name})", dict(seed_why)
    if (
        compare_late
        and seed_routes is not None
        and _greedy_beats(problem, settings, routes, seed_routes, seed_value)
    ):
        # the greedy plan as built beats the search's plan after its pass
        stats.fallback = _worse_than_greedy(engine.name, start_only, origin, polished=polish)
        del stats.notes[notes_at_polish:]  # the pass over the search's plan, not returned
        routes = unpolished = seed_routes
        name, why = f"greedy (better than {engine.name})", dict(seed_why)
        if polish and time.perf_counter() < repair_end:
            alt = SolveStats()
            routes = _polish_whole(
                problem, routes, settings, repair_end, repair_end, alt, work, why
            )
            stats.notes.extend(alt.notes)
    stats.polish_s = time.perf_counter() - t_polish

    if aside_built and name.startswith("greedy "):  # the greedy plan built beside it answers
        stats.notes.extend(seed_notes)
        seed_notes = []
    t3 = time.perf_counter()
    plan = None
    if routes is not None:
        plan = _decode(
            problem,
            routes,
            reasons,
            settings,
            name,
            params.seed,
            why,
        )
        if plan is None:
            stats.fallback = f"{engine.name} returned a route that breaks a constraint"
    stats.decode_s = time.perf_counter() - t3

    t4 = time.perf_counter()
    if plan is not None:
        check = validate_plan(scenario, plan)
        if not check.ok and unpolished is not routes and unpolished is not None:
            # the post-optimisation's moves are kept only if the validator accepts them
            log.warning("polished plan failed validation: %s", check.summary(3))
            stats.notes.append(
                "the break-aware post-optimisation's plan failed validation: its moves "
                f"were undone ({check.summary(1)})"
            )
            plan = _decode(problem, unpolished, reasons, settings, name, params.seed, why)
            check = validate_plan(scenario, plan) if plan is not None else check
        if not check.ok:
            stats.fallback = f"{engine.name} plan failed validation: {check.summary(3)}"
            plan = None
    if plan is None:
        log.warning("routing fallback to greedy: %s", stats.fallback)
        if seed_routes is None:  # not built before the search: what is left of the budget
            seed_routes, seed_left, seed_why = _greedy(problem, settings, deadline - reserve, stats)
        else:
            stats.notes.extend(seed_notes)  # built beside the search, if not noted above
        why = dict(seed_why)
        plan = _fallback(scenario, problem, seed_routes, reasons, settings, params.seed, name, why)
    stats.validate_s = time.perf_counter() - t4
    if stats.clock_notes:  # a run given a work budget that the clock cut: not reproducible
        plan.time_limited = True
    return _finish(plan, stats, t0, params.time_limit_s)


def _finish(plan: Plan, stats: SolveStats, t0: float, limit_s: float) -> tuple[Plan, SolveStats]:
    """The plan and stats of a solve that started at ``t0``, its total time set and, past
    ``limit_s`` and its margin, a note of how late it came."""
    stats.total_s = time.perf_counter() - t0
    if stats.total_s > limit_s + TIME_LIMIT_MARGIN_S:
        stats.late = _late_note(stats, limit_s)
        stats.notes.append(stats.late)
        log.warning("routing: %s", stats.late)
    plan.runtime_s = round(stats.total_s, 4)
    return plan, stats


#: ``stats.fallback`` of a solve whose time limit came before its travel matrix was built.
NO_MATRIX = (
    "the time limit was reached while building the travel matrix: no order routed, "
    "every order not placed (a longer time limit lets the matrix be built)"
)


#: ``stats.fallback`` of a solve whose time limit came before its diagnosis was done.
NO_DIAGNOSIS = (
    "the time limit was reached while diagnosing the orders: no order routed, every order "
    "not placed but those the diagnosis had found no vehicle could serve (a longer time limit "
    "lets the diagnosis end)"
)


def _unbuilt(
    scenario: Scenario,
    params: RoutingParams,
    stats: SolveStats,
    t0: float,
    diagnosed: dict[str, tuple[UnassignedReason, str]] | None = None,
    fallback: str = NO_MATRIX,
) -> tuple[Plan, SolveStats]:
    """The answer of a solve whose time limit came before its travel matrix was built (or its
    diagnosis done): every order unassigned, with its reason where ``diagnosed`` has one, else
    not placed (:data:`LATE`), the plan ``time_limited`` and validated."""
    diagnosed = diagnosed or {}
    ids = tuple(o.id for o in scenario.orders)
    why = {i: LATE for i, oid in enumerate(ids) if oid not in diagnosed}
    t_decode = time.perf_counter()
    plan = _assemble(scenario, ids, [], set(), diagnosed, "none", params.seed, why)
    stats.decode_s = time.perf_counter() - t_decode
    stats.engine = "none"
    stats.fallback = fallback
    stats.notes.append(fallback)
    t_check = time.perf_counter()
    check = validate_plan(scenario, plan)
    if not check.ok:  # no route: only a malformed scenario could fail
        log.error("plan with no route failed validation: %s", check.summary(3))
    stats.validate_s = time.perf_counter() - t_check
    return _finish(plan, stats, t0, params.time_limit_s)


def reserve_s(num_orders: int) -> float:
    """Seconds kept back from a solve's time limit for decoding and validating its plan of
    ``num_orders`` orders (before any measurement in the call, see :data:`RESERVE_SCHEDULES`)."""
    return RESERVE_BASE_S + RESERVE_PER_ORDER_S * max(num_orders, 0)


def construction_reserve_s(num_orders: int, routed: int) -> float:
    """Seconds kept back from a solve's time limit after the greedy plan built before the
    search, when it has routed ``routed`` of ``num_orders`` orders (the answer when no search
    can start: decoding and validating it, the unrouted orders as unassigned)."""
    num_orders = max(num_orders, 0)
    routed = min(max(routed, 0), num_orders)
    return (
        RESERVE_BASE_S + RESERVE_PER_LEFT_S * (num_orders - routed) + RESERVE_PER_ROUTED_S * routed
    )


def _may_search(problem: RoutingProblem, engine: Engine, left_s: float) -> bool:
    """Whether ``engine`` may still start on ``problem`` with ``left_s`` seconds left (its
    search, or its own start made of the greedy plan): else the greedy plan is the answer,
    and the pricing that sizes the reserve after a search is not spent (0.03 s at 1,000
    orders, past the construction's deadline)."""
    if left_s >= engine.min_time_s(problem):
        return True
    start_s = engine.min_start_s(problem)
    return start_s is not None and left_s >= start_s


def _greedy_beats(
    problem: RoutingProblem,
    settings: EngineSettings,
    routes: dict[int, list[int]] | None,
    seed_routes: dict[int, list[int]] | None,
    seed_value: tuple[int, int] | None,
) -> bool:
    """Whether the greedy plan (``seed_routes``, priced ``seed_value``) beats ``routes``."""
    return (
        routes is not None
        and seed_routes is not None
        and seed_value is not None
        and seed_value < _value(problem, settings, routes)
    )


def _worse_than_greedy(engine: str, start_only: bool, origin: str, polished: bool = False) -> str:
    """``stats.fallback`` when the greedy plan is returned for being better than the search's."""
    made = f"{engine} start, repaired," if start_only else f"{engine} plan"
    if polished:
        made += " (repaired and post-optimised)"
    return (
        f"the {made} serves fewer mandatory orders or costs more than the {origin}: "
        "returning the greedy plan"
    )


def _pinned_ids(params: RoutingParams) -> set[str]:
    """The order ids of the pinned stops of ``params.initial_plan``."""
    if params.initial_plan is None:
        return set()
    return {
        st.order_id
        for route in params.initial_plan.routes
        for st in route.stops
        if st.pinned and st.order_id is not None
    }


def _late_note(stats: SolveStats, limit_s: float) -> str:
    """Says by how much an answer came after its time limit, and where the time went."""
    return (
        f"answered {stats.total_s - limit_s:.2f} s after the time limit of {limit_s:g} s "
        f"(build {stats.build_s:.2f} s, construction {stats.greedy_s:.2f} s, "
        f"{stats.engine or 'search'} {stats.engine_s:.2f} s, repair {stats.repair_s:.2f} s, "
        f"polish {stats.polish_s:.2f} s, "
        f"decode {stats.decode_s:.2f} s, validation {stats.validate_s:.2f} s"
        + (
            "; building the problem alone, the travel matrices and the diagnosis, took longer "
            "than the time limit)"
            if stats.build_s > limit_s
            else ")"
        )
    )


#: Diagnoses that a direct trip fails but a longer route may not: the order is searched.
_SEARCH_ANYWAY = frozenset({UnassignedReason.BREAK_UNPLACEABLE})


def _value(
    problem: RoutingProblem, settings: EngineSettings, routes: Mapping[int, Sequence[int]]
) -> tuple[int, int]:
    """(mandatory orders left out, each weighted by its priority's drop weight; objective
    incl. penalties and disruption) of some routes; a route that breaks a constraint makes
    them worse than any plan."""
    served: set[int] = set()
    cost = 0
    for vi, seq in routes.items():
        if not seq:
            continue
        value = route_value(problem, vi, seq, settings.original_vehicle, settings.disruption_cost)
        if value is None:
            return sum(info.drop_weight for info in problem.orders) + 1, 0
        cost += value
        served.update(problem.tasks[t].order for t in seq)
    missing, penalties = left_out(problem, served)
    return missing, cost + penalties


def _constructions_after(
    problem: RoutingProblem, engine: str, seed_left: Collection[int] = ()
) -> bool:
    """Whether a construction (cheapest insertion, which may run its
    :data:`~solvers.routing.greedy.GRACE_S` past its deadline) can follow the search of
    ``engine``, given the orders the greedy plan left out (``seed_left``).

    The repairs insert the orders taken off routes that break a constraint once scheduled and
    the mandatory orders the engine left out; the greedy plan is built after the search when
    one that did not start from it left mandatory orders out. With breaks all of them can
    happen (PyVRP plans shifts shortened by the breaks). Without breaks the engines model
    every constraint of the routes they return, and leave out a mandatory order only where
    they were allowed to: PyVRP's mandatory orders get a prize only when the greedy plan
    left one out (else every order fits a vehicle of its own and PyVRP must serve them all),
    and OR-Tools starts from the greedy plan with a drop penalty above any complete plan.
    """
    if engine == "greedy":
        return False
    if problem.has_breaks:
        return True
    return any(problem.orders[o].penalty is None for o in seed_left)


def _pyvrp_compares_only(problem: RoutingProblem) -> bool:
    """Whether PyVRP's search does not start from the greedy plan (fewer visits than
    :data:`~solvers.routing.engines.pyvrp_engine.GREEDY_START_TASKS`)."""
    from solvers.routing.engines.pyvrp_engine import GREEDY_START_TASKS

    return len(problem.tasks) < GREEDY_START_TASKS


def _pyvrp_misprices_breaks(problem: RoutingProblem) -> bool:
    """Whether an unbudgeted PyVRP search is compared with the greedy plan all the same: a
    small problem with driver breaks, which PyVRP's model leaves out (it served an optional
    order whose route, once its break was placed, cost more than the order's penalty), where
    the greedy plan takes moments (:func:`~solvers.routing.greedy.always_completes`)."""
    return problem.has_breaks and always_completes(problem)


def _pyvrp_needs_greedy(problem: RoutingProblem) -> bool:
    from solvers.routing.engines.pyvrp_engine import needs_greedy_plan

    return needs_greedy_plan(problem)


def _greedy(
    problem: RoutingProblem,
    settings: EngineSettings,
    deadline: float,
    stats: SolveStats,
    per_order_s: float = 0.0,
    grace_end: float | None = None,
) -> tuple[dict[int, list[int]], list[int], dict[int, str]]:
    """The greedy plan by ``deadline`` (brought forward by ``per_order_s`` per order routed):
    routes, orders left out, and why some of them are left out where the usual reason does
    not say it (:data:`LATE`: the deadline came first; a shipment of a split order taken off
    with the rest of its order, :func:`_whole`).

    ``grace_end``: where the constructions' grace past ``deadline`` ends at the latest
    (:attr:`~solvers.routing.greedy.GreedyBuilder.grace_end`; None: their CPU time only).

    With a warm start (``settings.initial``) it is the cheaper by the objective (mandatory
    orders first, :func:`_value`) of two constructions: the warm start's routes with the other
    orders inserted, and, when the warm start has stops that are not pinned and time is left,
    the pinned stops only with every other order inserted (a plan made afresh): the warm
    start is where the plan starts, not a cap on how far it may move from it.
    """
    if not problem.orders:
        return {}, [], {}
    routes, left, why = _construct(
        problem, settings, settings.initial, deadline, stats, per_order_s, grace_end
    )
    pins = {
        vi: kept
        for vi, seq in settings.initial.items()
        if (kept := [t for t in seq if t in settings.pinned])
    }
    if LATE in why.values() or pins == settings.initial or time.perf_counter() >= deadline:
        return routes, left, why
    afresh = _construct(problem, settings, pins, deadline, SolveStats(), per_order_s, grace_end)
    if LATE not in afresh[2].values() and _value(problem, settings, afresh[0]) < _value(
        problem, settings, routes
    ):
        stats.notes.append(
            "the greedy plan made afresh (pinned stops kept) is cheaper than the warm start's "
            "routes with the other orders inserted: it is the greedy plan"
        )
        return afresh
    return routes, left, why


def _construct(
    problem: RoutingProblem,
    settings: EngineSettings,
    initial: dict[int, list[int]],
    deadline: float,
    stats: SolveStats,
    per_order_s: float = 0.0,
    grace_end: float | None = None,
) -> tuple[dict[int, list[int]], list[int], dict[int, str]]:
    """Cheapest insertion of every order into the ``initial`` routes by ``deadline`` (brought
    forward by ``per_order_s`` per order routed; its grace ends by ``grace_end``), split
    orders made whole: routes, orders left out, and why some of them are (:func:`_greedy`)."""
    from solvers.routing.greedy import GreedyBuilder

    builder = GreedyBuilder(
        problem,
        initial=initial or None,
        deadline=deadline,
        reserve_per_order_s=per_order_s,
        grace_end=grace_end,
    )
    routes, left = builder.build()
    late = frozenset(left) if builder.timed_out else frozenset()
    if late:
        stop = "the solve was cancelled" if cancelled() else "time limit reached"
        stats.notes.append(f"{stop} while building the greedy plan: {len(left)} orders not placed")
    # each job was inserted on its own: orders split over nodes served whole or not at all
    why: dict[int, str] = {}
    whole = _whole(problem, routes, settings, deadline, stats, why)
    if whole is not routes:
        served = {problem.tasks[t].order for seq in whole.values() for t in seq}
        left = sorted(set(range(len(problem.orders))) - served)
    why.update(dict.fromkeys(late, LATE))
    out = set(left)  # a list: 2,000 orders cut by the deadline took 0.016 s to look up
    return whole, left, {o: reason for o, reason in why.items() if o in out}


def _whole(
    problem: RoutingProblem,
    routes: dict[int, list[int]],
    settings: EngineSettings,
    deadline: float,
    stats: SolveStats,
    why: dict[int, str] | None = None,
) -> dict[int, list[int]]:
    """The routes with every order split over nodes served whole or not at all
    (:func:`~solvers.routing.repair.whole_orders`); a note says what changed. The same
    routes when there is nothing to change. Why jobs were taken off goes in ``why``, if
    given (:attr:`~solvers.routing.repair.Whole.dropped`: a shipment of the same order found
    no place; :data:`LATE`: the deadline came before their order's completion)."""
    if not problem.groups:
        return routes
    from solvers.routing.repair import whole_orders

    done = whole_orders(
        problem,
        routes,
        pinned=settings.pinned,
        original_vehicle=settings.original_vehicle,
        disruption_cost=settings.disruption_cost,
        deadline=deadline,
    )
    if why is not None:
        why.update(done.dropped)
        why.update(dict.fromkeys(done.cut, LATE))
    if not (done.completed or done.removed or done.held):
        return routes
    held = (
        f", {done.held} served in part: their pinned jobs kept, the others found no place "
        f"({_some({problem.order_ids[o] for o in done.partial})} unassigned)"
        if done.held
        else ""
    )
    stats.notes.append(
        "orders split over several nodes are served whole or not at all: "
        f"{done.completed} completed, {done.removed} taken off their routes{held}"
    )
    return done.routes


def _reinsert_groups(
    problem: RoutingProblem,
    routes: dict[int, list[int]],
    settings: EngineSettings,
    deadline: float,
    stats: SolveStats,
) -> dict[int, list[int]]:
    """The routes with the split orders left out whole inserted whole where that makes the
    plan cheaper (:func:`~solvers.routing.repair.reinsert_groups`, after OR-Tools, whose
    search never inserts one); a note says how many. The same routes otherwise."""
    from solvers.routing.repair import reinsert_groups

    fixed, placed = reinsert_groups(problem, routes, deadline=deadline)
    if not placed:
        return routes
    now, after = _value(problem, settings, routes), _value(problem, settings, fixed)
    if after >= now:  # a route that breaks a constraint is priced above any plan
        return routes
    stats.notes.append(
        f"{placed} orders split over several nodes that the search left out inserted whole "
        f"afterwards (objective {now[1]} -> {after[1]} milli-cents)"
    )
    return fixed


def _polish_whole(
    problem: RoutingProblem,
    routes: dict[int, list[int]],
    settings: EngineSettings,
    deadline: float,
    whole_deadline: float,
    stats: SolveStats,
    max_work: int | None,
    why: dict[int, str],
) -> dict[int, list[int]]:
    """``routes`` after the break-aware post-optimisation (:func:`_polish`, by ``deadline``),
    split orders made whole again (:func:`_whole`, by ``whole_deadline``) if it moved any."""
    polished = _polish(problem, routes, settings, deadline, stats, max_work)
    if polished is routes:
        return routes
    return _whole(problem, polished, settings, whole_deadline, stats, why)


def _polish(
    problem: RoutingProblem,
    routes: dict[int, list[int]],
    settings: EngineSettings,
    deadline: float,
    stats: SolveStats,
    max_work: int | None = None,
) -> dict[int, list[int]]:
    """The routes after the break-aware post-optimisation (:mod:`solvers.routing.polish`),
    by ``deadline`` (and within ``max_work`` units of work, if given); a note says what it
    saved, or that its deadline or work budget came before any move, and
    ``stats.polish_timed_out`` whether its deadline stopped it."""
    from solvers.routing.polish import polish_routes

    done = polish_routes(
        problem,
        routes,
        deadline=deadline,
        pinned=settings.pinned,
        original_vehicle=settings.original_vehicle,
        disruption_cost=settings.disruption_cost,
        max_work=max_work,
    )
    stats.polish_timed_out = stats.polish_timed_out or done.timed_out
    stop = (
        " (stopped at its deadline)"
        if done.timed_out
        else f" (stopped after its work budget, {max_work} units)"
        if done.worked_out
        else ""
    )
    if done.moves:
        stats.notes.append(
            f"break-aware post-optimisation: {done.moves} moves"
            f"{f', {done.placed} orders left out placed' if done.placed else ''}, objective "
            f"{done.before} -> {done.after} milli-cents (routes and penalties){stop}"
        )
        return done.routes
    if done.timed_out:
        stats.notes.append("break-aware post-optimisation: no move found before its deadline")
    elif done.worked_out:
        stats.notes.append(
            f"break-aware post-optimisation: no move found within its work budget ({max_work} "
            "units)"
        )
    return routes


def _repair(
    problem: RoutingProblem,
    routes: dict[int, list[int]],
    engine: str,
    settings: EngineSettings,
    deadline: float,
    stats: SolveStats,
) -> tuple[dict[int, list[int]], dict[int, str]]:
    """Routes that break a constraint once scheduled (PyVRP does not model breaks) lose
    the fewest orders needed to fit, which are then re-inserted where they fit, together with
    the mandatory orders the engine left out (and, when PyVRP planned with shifts shortened
    by the breaks, the optional ones). Returns the routes and why orders are left out where
    the usual reason does not say it: :data:`BUMPED` for those taken off a route that found
    no other place, :data:`LATE` for those the re-insertion's deadline came before (a
    mandatory order cut off there said "no feasible position", the plan ``infeasible``)."""
    from solvers.routing.repair import repair_routes

    served = {problem.tasks[t].order for seq in routes.values() for t in seq}
    offer_optional = engine == "pyvrp" and problem.has_breaks
    extra = [
        o
        for o, info in enumerate(problem.orders)
        if o not in served and (info.penalty is None or offer_optional)
    ]
    fixed = repair_routes(problem, routes, pinned=settings.pinned, deadline=deadline, extra=extra)
    if fixed.moved:
        stats.notes.append(
            f"{engine} routes broke a constraint once scheduled"
            f"{' (driver breaks)' if problem.has_breaks else ''}: "
            f"{fixed.moved} orders moved, {fixed.lost} of them left out"
        )
    if fixed.added:
        stats.notes.append(f"{fixed.added} orders {engine} left out inserted afterwards")
    why = dict.fromkeys(fixed.lost_orders, BUMPED)
    why.update(dict.fromkeys(fixed.cut, LATE))
    if fixed.cut:
        stats.notes.append(
            f"time limit reached while re-inserting orders after the {engine} search: "
            f"{len(fixed.cut)} orders not placed"
        )
    return fixed.routes, why


def _settings(
    problem: RoutingProblem,
    params: RoutingParams,
    notes: list[str] | None = None,
    absent_orders: Collection[str] = (),
) -> EngineSettings:
    """Engine settings: warm start mapped to task indices, and the remaining budget.

    A pinned pickup or delivery pins its partner too (a pair stays on one vehicle) when the
    partner is on the same route, in order; otherwise the pin is released. Both are said in
    ``notes``.
    """
    initial: dict[int, list[int]] = {}
    pinned: set[int] = set()
    original: dict[int, int] = {}
    partners_pinned: set[str] = set()
    pins_released: set[str] = set()
    pins_unfit: list[tuple[str, str, str]] = []  # (vehicle id, order id, why)
    if params.initial_plan is not None:
        vindex = {v.vehicle.id: i for i, v in enumerate(problem.vehicles)}
        task_of: dict[tuple[str | None, StopKind], int] = {
            (problem.order_ids[t.order], t.kind): ti for ti, t in enumerate(problem.tasks)
        }
        check_route_vehicles(params.initial_plan, vindex)
        check_route_breaks(params.initial_plan, problem.scenario)
        _check_known_stops(params.initial_plan, problem.scenario, absent_orders)
        _check_unique_visits(params.initial_plan, set(task_of))
        for route in params.initial_plan.routes:
            vi = vindex[route.vehicle_id]
            seq = [
                task_of[(st.order_id, st.kind)]
                for st in route.stops
                if st.kind is not StopKind.BREAK and (st.order_id, st.kind) in task_of
            ]
            seq = _complete_pairs(problem, seq)
            asked = {
                task_of[(st.order_id, st.kind)]
                for st in route.stops
                if st.pinned and (st.order_id, st.kind) in task_of
            }
            # the pinned stops and the partners of pinned pickups/deliveries, in route order
            pinned_orders = {problem.tasks[t].order for t in asked}
            pins = [t for t in seq if problem.tasks[t].order in pinned_orders]
            for t in set(pins) - asked:
                partners_pinned.add(problem.order_ids[problem.tasks[t].order])
            for t in asked - set(pins):
                pins_released.add(problem.order_ids[problem.tasks[t].order])
            # moving any stop of the plan costs the disruption price, even from a route that
            # no longer fits (the warm start below keeps only its pins)
            original.update(dict.fromkeys(seq, vi))
            if schedule_route(problem, vi, seq).violation is not None:
                # the warm start no longer fits: keep its pins, as many as still fit
                pins, unfit = _schedulable_pins(problem, vi, pins)
                pins_unfit.extend((route.vehicle_id, oid, why) for oid, why in unfit)
                seq = pins
            if seq:
                initial[vi] = seq
            pinned.update(pins)
    if notes is not None and partners_pinned:
        notes.append(
            "pickup-and-delivery partners of pinned stops pinned too (a pair stays on one "
            f"vehicle): "
            f"{_some(partners_pinned)}"
        )
    if notes is not None and pins_released:
        notes.append(
            "pins released, the pickup-and-delivery partner is missing from the route or out "
            f"of order: {_some(pins_released)}"
        )
    if notes is not None and pins_unfit:
        shown = "; ".join(f"order {o} on vehicle {v} ({why})" for v, o, why in pins_unfit[:5])
        more = f"; and {len(pins_unfit) - 5} more" if len(pins_unfit) > 5 else ""
        notes.append(
            "pins released, the pinned stops no longer fit their vehicle (the other pins "
            f"stay): {shown}{more}"
        )
    return EngineSettings(
        time_limit_s=params.time_limit_s,
        seed=params.seed,
        num_workers=params.num_workers,
        max_iterations=params.max_iterations,
        max_solutions=params.max_solutions,
        initial=initial,
        pinned=frozenset(pinned),
        original_vehicle=original,
        disruption_cost=params.disruption_cost_cents * 1000,
    )


#: ``Plan.engine`` of a digital twin's executed day (``SimulationResult.to_plan``).
TWIN_ENGINE = "twin"


def check_route_vehicles(plan: Plan, vehicle_ids: Collection[str]) -> None:
    """Each route of a warm start names a vehicle of the fleet (``vehicle_ids``), no vehicle
    twice (InputError naming ``initial_plan.routes.{r}.vehicle_id``).

    Checked before the stops, and needing neither travel matrix nor diagnosis: a service
    runs it on a stored plan before it accepts a re-plan, which would fail on it.
    """
    route_of: dict[str, int] = {}
    for ri, route in enumerate(plan.routes):
        if route.vehicle_id in route_of:
            raise InputError(
                f"initial_plan.routes.{ri}.vehicle_id",
                f"vehicle {route.vehicle_id!r} already has route {route_of[route.vehicle_id]}",
            )
        if route.vehicle_id not in vehicle_ids:
            raise InputError(
                f"initial_plan.routes.{ri}.vehicle_id", f"unknown vehicle {route.vehicle_id!r}"
            )
        route_of[route.vehicle_id] = ri


def check_route_breaks(plan: Plan, scenario: Scenario) -> None:
    """InputError naming ``initial_plan.routes.{r}.stops.{s}.break_index`` for a break stop
    naming a break its route's vehicle lacks, or one an earlier stop names (the solver places
    the breaks afresh, but a plan saying so is wrong). Routes of unknown vehicles are
    :func:`check_route_vehicles`' to refuse."""
    num_breaks = {v.id: len(v.breaks) for v in scenario.vehicles}
    for ri, route in enumerate(plan.routes):
        if route.vehicle_id not in num_breaks:
            continue
        bad = bad_break_index(route, num_breaks[route.vehicle_id])
        if bad is not None:
            raise InputError(f"initial_plan.routes.{ri}.stops.{bad[0]}.break_index", bad[1])


def _check_known_stops(plan: Plan, scenario: Scenario, absent: Collection[str] = ()) -> None:
    """Each stop visits an order of the scenario, a pickup only an order with one
    (InputError naming the stop), as a route names a vehicle of the fleet.

    A digital twin's executed day (``plan.engine == "twin"``) is exempt, and so is a stop
    named by the order id of split jobs (``<order>@<node>``): the twin visits a split order's
    pickups once per node under the order id; such stops are ignored, as are those of the
    ``absent`` orders. Stops of orders the diagnosis leaves out are known orders, and are
    ignored too.
    """
    if plan.engine == TWIN_ENGINE:
        return
    orders = {o.id: o for o in scenario.orders}
    nodes = {n.id for n in scenario.nodes}
    split = {o.id.rsplit("@", 1)[0] for o in scenario.orders if "@" in o.id}
    split.update(  # a node id may hold '@' too: 'o@st@1' is order o shipped from 'st@1'
        o.id[:at]
        for o in scenario.orders
        for at, char in enumerate(o.id)
        if char == "@" and o.id[at + 1 :] in nodes
    )
    split.update(absent)
    for ri, route in enumerate(plan.routes):
        for si, st in enumerate(route.stops):
            if st.kind is StopKind.BREAK:
                continue
            where = f"initial_plan.routes.{ri}.stops.{si}"
            if st.order_id is None:
                raise InputError(f"{where}.order_id", f"a {st.kind.value} needs an order id")
            order = orders.get(st.order_id)
            if order is None:
                if st.order_id in split:
                    continue
                raise InputError(f"{where}.order_id", f"unknown order {st.order_id!r}")
            if st.kind is StopKind.PICKUP and order.pickup is None:
                raise InputError(
                    f"{where}.kind", f"order {st.order_id!r} has no pickup, only a delivery"
                )


def visited_twice_reason(kind: StopKind, order_id: str, route: int, stop: int | None) -> str:
    """Why a stop is refused: its task (the ``kind`` of order ``order_id``) is visited
    before, by stop ``stop`` of route ``route`` of the plan the user gave (``stop`` None when
    that stop's place in it is not known: the stop is not numbered rather than misnumbered)."""
    what = f"the {kind.value} of order {order_id!r}"
    if stop is None:
        return f"{what} is already a stop of route {route}"
    return f"{what} is already stop {stop} of route {route}"


class DuplicateVisitError(InputError):
    """An initial plan's stop visiting a task it visited before, at ``first`` (route, stop):
    a caller whose initial plan is a part of another plan (a re-plan's warm start holds the
    stored plan's stops still to do) numbers that place in the plan the user sees."""

    def __init__(
        self,
        field: str,
        kind: StopKind,
        order_id: str,
        first: tuple[int, int],
        source: str | None = None,
    ) -> None:
        self.kind = kind
        self.order_id = order_id
        self.first = first
        super().__init__(field, visited_twice_reason(kind, order_id, *first), source=source)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the first visit's place (an error raised in a worker process)."""
        args = (self.field, self.kind, self.order_id, self.first, self.source)
        return (DuplicateVisitError, args)


def _check_unique_visits(plan: Plan, tasks: set[tuple[str | None, StopKind]]) -> None:
    """Each of ``tasks`` is visited once (InputError naming the stop; that each vehicle has
    one route is :func:`check_route_vehicles`).

    Stops that are not tasks of the problem are left alone (they are ignored, see
    :func:`_check_known_stops`): orders the diagnosis left out, or a twin's executed day
    whose split orders it visits per node.
    """
    stop_at: dict[tuple[str | None, StopKind], tuple[int, int]] = {}
    for ri, route in enumerate(plan.routes):
        for si, st in enumerate(route.stops):
            key = (st.order_id, st.kind)
            if st.kind is StopKind.BREAK or st.order_id is None or key not in tasks:
                continue
            if key in stop_at:
                raise DuplicateVisitError(
                    f"initial_plan.routes.{ri}.stops.{si}", st.kind, st.order_id, stop_at[key]
                )
            stop_at[key] = (ri, si)


def _schedulable_pins(
    problem: RoutingProblem, vehicle: int, pins: list[int]
) -> tuple[list[int], list[tuple[str, str]]]:
    """The pinned tasks of a route that its vehicle can still visit, and the released ones.

    Pinned orders are taken in route order; each is kept when its pinned stops fit together
    with those kept before it, else released with the violation (order id, why).
    """
    if not pins or schedule_route(problem, vehicle, pins).violation is None:
        return pins, []
    kept: set[int] = set()
    released: list[tuple[str, str]] = []
    for o in dict.fromkeys(problem.tasks[t].order for t in pins):
        trial = [t for t in pins if problem.tasks[t].order in kept or problem.tasks[t].order == o]
        violation = schedule_route(problem, vehicle, trial).violation
        if violation is None:
            kept.add(o)
        else:
            released.append((problem.order_ids[o], violation))
    return [t for t in pins if problem.tasks[t].order in kept], released


def _some(ids: set[str], limit: int = 5) -> str:
    """A few of the ids, sorted, and how many more."""
    shown = sorted(ids)[:limit]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return f"orders {', '.join(shown)}{more}"


def _complete_pairs(problem: RoutingProblem, seq: list[int]) -> list[int]:
    """Drop tasks whose pickup/delivery partner is missing or in the wrong order; no repeats."""
    seen: set[int] = set()
    out: list[int] = []
    present = set(seq)
    for t in seq:
        if t in seen:
            continue
        info = problem.orders[problem.tasks[t].order]
        if info.pickup is not None:
            if not {info.pickup, info.delivery} <= present:
                continue
            if t == info.delivery and info.pickup not in seen:
                continue
        seen.add(t)
        out.append(t)
    return out


def _decode(
    problem: RoutingProblem,
    routes: dict[int, list[int]],
    reasons: dict[str, tuple[UnassignedReason, str]],
    settings: EngineSettings,
    engine: str,
    seed: int,
    why: Mapping[int, str] | None = None,
) -> Plan | None:
    """Schedule the engine's sequences into a Plan (None if a route is infeasible).

    ``why`` says why some orders (positions) are left out when it is neither the lack of a
    feasible place nor the cost (the time limit came first, a repair bumped them).
    """
    out: list[Route] = []
    served: set[int] = set()
    for vi in sorted(routes):
        seq = routes[vi]
        if not seq:
            continue
        sched = schedule_route(problem, vi, seq)
        if sched.violation is not None:
            log.info("engine %s: vehicle %s: %s", engine, vi, sched.violation)
            return None
        out.append(to_route(problem, sched, set(settings.pinned)))
        served.update(problem.tasks[t].order for t in seq)
    return _assemble(
        problem.scenario, problem.order_ids, out, served, reasons, engine, seed, why or {}
    )


def _assemble(
    scenario: Scenario,
    order_ids: Sequence[str],
    routes: list[Route],
    served: set[int],
    reasons: dict[str, tuple[UnassignedReason, str]],
    engine: str,
    seed: int,
    why: Mapping[int, str] | None = None,
) -> Plan:
    why = why or {}
    unassigned: list[Unassigned] = []
    inside = {oid: i for i, oid in enumerate(order_ids)}
    # the jobs of an order split over nodes: its penalty once, on the first left out
    split = split_order_groups(scenario.orders)
    group_of = {scenario.orders[i].id: [scenario.orders[k].id for k in g] for g in split for i in g}
    charged: dict[str, str] = {}  # a group's first job id -> the job charged
    cut: set[str] = set()  # orders not placed because the time limit came first
    # (gathered here: looking each order up again took a quarter of the decoding of 10,000
    # orders left out, session 75)
    mandatory_left: set[str] = set()
    for order in scenario.orders:
        if order.id in inside and inside[order.id] in served:
            continue
        if order.id in reasons:  # left out by the diagnosis, or searched and not placed
            reason, detail = reasons[order.id]
        elif order.id in inside and inside[order.id] not in served:
            if inside[order.id] in why:
                reason = UnassignedReason.NO_SOLUTION
                detail = why[inside[order.id]]
                if detail == LATE:
                    cut.add(order.id)
            elif order.penalty_cents is not None:
                reason = UnassignedReason.DROPPED_FOR_COST
                detail = f"serving it costs more than its penalty of {order.penalty_cents} cents"
            else:
                reason = UnassignedReason.NO_SOLUTION
                detail = "no feasible position in any route with the available fleet"
        else:
            continue
        penalty = (
            order.penalty_cents
            if order.penalty_cents is not None
            else scenario.costs.unserved_cents
        )
        group = group_of.get(order.id)
        if group is not None:
            first = charged.setdefault(group[0], order.id)
            if first != order.id:
                penalty = 0
            kept = [j for j in group if j in inside and inside[j] in served]
            how = (
                f"; {', '.join(kept)} pinned and kept: the order is served in part"
                if kept  # only pinned jobs stay when the rest of their order finds no place
                else ""
            )
            detail += (
                f" (its order ships from {len(group)} nodes and is delivered whole or not at "
                f"all: {', '.join(group)}{how}; its penalty counted once, on {first})"
            )
        unassigned.append(
            Unassigned(order_id=order.id, reason=reason, detail=detail, penalty_cents=penalty)
        )
        if order.penalty_cents is None:
            mandatory_left.add(order.id)
    return Plan(
        status=_status(mandatory_left, cut),
        routes=routes,
        unassigned=unassigned,
        distance_m=sum(r.distance_m for r in routes),
        cost_cents=sum(r.cost_cents for r in routes) + sum(u.penalty_cents for u in unassigned),
        engine=engine,
        seed=seed,
        time_limited=bool(cut),
    )


def _status(mandatory_left: set[str], cut: set[str]) -> PlanStatus:
    """The plan's status given the mandatory orders it leaves out and the orders the time
    limit cut off: ``infeasible`` only when a mandatory order is out for another reason (no
    place found, the diagnosis), ``no_solution`` when the time limit came before every
    mandatory order was placed (a longer limit may place them), else ``feasible``."""
    if mandatory_left - cut:
        return PlanStatus.INFEASIBLE
    if mandatory_left:
        return PlanStatus.NO_SOLUTION
    return PlanStatus.FEASIBLE


def _fallback(
    scenario: Scenario,
    problem: RoutingProblem,
    seed_routes: dict[int, list[int]],
    reasons: dict[str, tuple[UnassignedReason, str]],
    settings: EngineSettings,
    seed: int,
    engine: str,
    why: Mapping[int, str] | None = None,
) -> Plan:
    """The greedy plan built before the search (validated); else the empty plan with reasons."""
    plan = _decode(
        problem, seed_routes, reasons, settings, f"greedy (fallback from {engine})", seed, why
    )
    if plan is not None and validate_plan(scenario, plan).ok:
        return plan
    log.error("greedy fallback failed validation; returning the empty plan")
    return _assemble(scenario, problem.order_ids, [], set(), reasons, "none", seed)
