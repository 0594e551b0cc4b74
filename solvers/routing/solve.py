"""``solve_routes``: diagnose, pick an engine, search, schedule, validate, fall back."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from scenarios.errors import InputError
from scenarios.model import Scenario
from scenarios.plan import Plan, PlanStatus, Route, StopKind, Unassigned, UnassignedReason
from solvers.routing.diagnose import diagnose_orders
from solvers.routing.engines.base import Engine, EngineSettings
from solvers.routing.params import RoutingParams
from solvers.routing.problem import RoutingProblem, build_problem
from solvers.routing.schedule import schedule_route, to_route
from solvers.validate import validate_plan

log = logging.getLogger(__name__)


@dataclass
class SolveStats:
    """Where the time of one :func:`solve_routes` call went (seconds)."""

    build_s: float = 0.0
    engine_s: float = 0.0
    decode_s: float = 0.0
    validate_s: float = 0.0
    total_s: float = 0.0
    engine: str = ""
    fallback: str | None = None
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def overhead_s(self) -> float:
        """Time not spent inside the engine's search (build + decode + validate)."""
        return self.total_s - self.engine_s


def _engine(name: str) -> Engine:
    if name == "pyvrp":
        from solvers.routing.engines.pyvrp_engine import PyVRPEngine

        return PyVRPEngine()
    if name == "ortools":
        from solvers.routing.engines.ortools_engine import ORToolsEngine

        return ORToolsEngine()
    from solvers.routing.greedy import GreedyEngine

    return GreedyEngine()  # type: ignore[return-value]


def choose_engine(problem: RoutingProblem, settings: EngineSettings, requested: str) -> Engine:
    """The engine to run: the requested one, or for ``auto`` PyVRP unless it lacks a feature."""
    if requested == "auto":
        from solvers.routing.engines.pyvrp_engine import unsupported

        return _engine("ortools" if unsupported(problem, settings) else "pyvrp")
    engine = _engine(requested)
    why = engine.unsupported(problem, settings)
    if why is not None:
        raise InputError(
            "engine", f"{requested} cannot model {why}; use engine 'ortools' or 'auto'"
        )
    return engine


def solve_routes(scenario: Scenario, params: RoutingParams | None = None) -> Plan:
    """Route the scenario's orders with its fleet; the plan has passed the validator."""
    return solve_routes_with_stats(scenario, params)[0]


def solve_routes_with_stats(
    scenario: Scenario, params: RoutingParams | None = None
) -> tuple[Plan, SolveStats]:
    """:func:`solve_routes` plus where the time went."""
    t0 = time.perf_counter()
    params = params or RoutingParams()
    stats = SolveStats()
    full = build_problem(scenario)
    diagnosed = diagnose_orders(full)
    if diagnosed:
        problem = full.restrict([i for i in range(len(full.orders)) if i not in diagnosed])
    else:
        problem = full
    reasons = {full.order_ids[i]: r for i, r in diagnosed.items()}
    settings = _settings(problem, params)
    engine = choose_engine(problem, settings, params.engine)
    # the budget left once the problem is built and the engine imported
    reserve = 0.01 + 3e-5 * len(problem.tasks)
    left = params.time_limit_s - (time.perf_counter() - t0) - reserve
    settings = replace(settings, time_limit_s=max(0.05, left))
    stats.engine = engine.name
    stats.build_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    routes: dict[int, list[int]] | None = None
    if problem.orders:
        result = engine.solve(problem, settings)
        stats.detail = result.detail
        if result.feasible:
            routes = result.routes
        else:
            stats.fallback = f"{engine.name} found no feasible solution ({result.detail})"
    else:
        routes = {}
    stats.engine_s = time.perf_counter() - t1

    t2 = time.perf_counter()
    plan = None
    if routes is not None:
        plan = _decode(problem, routes, reasons, settings, engine.name, params.seed)
        if plan is None:
            stats.fallback = f"{engine.name} returned a route that breaks a constraint"
    stats.decode_s = time.perf_counter() - t2

    t3 = time.perf_counter()
    if plan is not None:
        check = validate_plan(scenario, plan)
        if not check.ok:
            stats.fallback = f"{engine.name} plan failed validation: {check.summary(3)}"
            plan = None
    if plan is None:
        log.warning("routing fallback to greedy: %s", stats.fallback)
        plan = _fallback(scenario, problem, reasons, settings, params.seed, engine.name)
    stats.validate_s = time.perf_counter() - t3
    stats.total_s = time.perf_counter() - t0
    plan.runtime_s = round(stats.total_s, 4)
    return plan, stats


def _settings(problem: RoutingProblem, params: RoutingParams) -> EngineSettings:
    """Engine settings: warm start mapped to task indices, and the remaining budget."""
    initial: dict[int, list[int]] = {}
    pinned: set[int] = set()
    original: dict[int, int] = {}
    if params.initial_plan is not None:
        vindex = {v.vehicle.id: i for i, v in enumerate(problem.vehicles)}
        task_of: dict[tuple[str | None, StopKind], int] = {
            (problem.order_ids[t.order], t.kind): ti for ti, t in enumerate(problem.tasks)
        }
        for ri, route in enumerate(params.initial_plan.routes):
            vi = vindex.get(route.vehicle_id)
            if vi is None:
                raise InputError(
                    f"initial_plan.routes.{ri}.vehicle_id",
                    f"unknown vehicle {route.vehicle_id!r}",
                )
            seq = [
                task_of[(st.order_id, st.kind)]
                for st in route.stops
                if st.kind is not StopKind.BREAK and (st.order_id, st.kind) in task_of
            ]
            seq = _complete_pairs(problem, seq)
            pins = [
                task_of[(st.order_id, st.kind)]
                for st in route.stops
                if st.pinned and (st.order_id, st.kind) in task_of
            ]
            pins = list(_complete_pairs(problem, pins))
            if schedule_route(problem, vi, seq).violation is not None:
                seq = pins
            if pins and schedule_route(problem, vi, pins).violation is not None:
                pins, seq = [], []  # the pinned stops cannot all stay: release them
            if seq:
                initial[vi] = seq
            pinned.update(pins)
            original.update(dict.fromkeys(seq, vi))
    return EngineSettings(
        time_limit_s=params.time_limit_s,
        seed=params.seed,
        num_workers=params.num_workers,
        max_iterations=params.max_iterations,
        initial=initial,
        pinned=frozenset(pinned),
        original_vehicle=original,
        disruption_cost=params.disruption_cost_cents * 1000,
    )


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
) -> Plan | None:
    """Schedule the engine's sequences into a Plan (None if a route is infeasible)."""
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
    return _assemble(problem, out, served, reasons, engine, seed)


def _assemble(
    problem: RoutingProblem,
    routes: list[Route],
    served: set[int],
    reasons: dict[str, tuple[UnassignedReason, str]],
    engine: str,
    seed: int,
) -> Plan:
    scenario = problem.scenario
    unassigned: list[Unassigned] = []
    inside = {oid: i for i, oid in enumerate(problem.order_ids)}
    for order in scenario.orders:
        if order.id in reasons:
            reason, detail = reasons[order.id]
        elif order.id in inside and inside[order.id] not in served:
            if order.penalty_cents is not None:
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
        unassigned.append(
            Unassigned(order_id=order.id, reason=reason, detail=detail, penalty_cents=penalty)
        )
    mandatory_left = any(scenario.order(u.order_id).penalty_cents is None for u in unassigned)
    return Plan(
        status=PlanStatus.INFEASIBLE if mandatory_left else PlanStatus.FEASIBLE,
        routes=routes,
        unassigned=unassigned,
        distance_m=sum(r.distance_m for r in routes),
        cost_cents=sum(r.cost_cents for r in routes) + sum(u.penalty_cents for u in unassigned),
        engine=engine,
        seed=seed,
    )


def _fallback(
    scenario: Scenario,
    problem: RoutingProblem,
    reasons: dict[str, tuple[UnassignedReason, str]],
    settings: EngineSettings,
    seed: int,
    engine: str,
) -> Plan:
    """The greedy plan (validated); if even that fails, the empty plan with reasons."""
    from solvers.routing.greedy import greedy_routes

    routes, _ = greedy_routes(problem, initial=settings.initial or None)
    plan = _decode(problem, routes, reasons, settings, f"greedy (fallback from {engine})", seed)
    if plan is not None and validate_plan(scenario, plan).ok:
        return plan
    log.error("greedy fallback failed validation; returning the empty plan")
    return _assemble(problem, [], set(), reasons, "none", seed)
