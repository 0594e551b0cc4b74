"""Routing jobs: ``solve_routes`` on the request, and the greedy plan as the fallback."""

from __future__ import annotations

from collections.abc import Sequence

from api.jobs.registry import JsonDict, ProgressFn
from api.schemas.routes import RoutesCreate, RoutesResult, SolverInfo
from api.tasks.progress import timed_progress
from api.tasks.stored import read_payload
from api.versions import solver_versions
from scenarios.errors import fields_under
from scenarios.model import Scenario
from scenarios.plan import Plan
from solvers.explain import explain_routes
from solvers.routing import RoutingParams, SolveStats, solve_routes_with_stats


def diagnosis(plan: Plan) -> list[str]:
    """One line per unserved order: which and why."""
    return [f"{u.order_id}: {u.reason.value}: {u.detail}".rstrip(": ") for u in plan.unassigned]


def routes_result(
    scenario: Scenario,
    plan: Plan,
    params: RoutingParams,
    *,
    fallback_reason: str | None = None,
    notes: Sequence[str] = (),
) -> RoutesResult:
    """The answer for one routing plan, with its explanation (``notes``: more diagnosis)."""
    return RoutesResult(
        status=plan.status,
        time_limited=plan.time_limited,
        plan=plan,
        diagnosis=[*diagnosis(plan), *notes],
        explanation=explain_routes(scenario, plan),
        solver=SolverInfo(
            engine=plan.engine,
            versions=solver_versions(),
            seed=params.seed,
            time_limit_s=params.time_limit_s,
            runtime_s=plan.runtime_s,
        ),
        fallback_reason=fallback_reason,
    )


def run(payload: JsonDict | RoutesCreate, *, progress: ProgressFn | None = None) -> JsonDict:
    """Solve a :class:`RoutesCreate` payload, or the already validated body (progress:
    :func:`timed_progress`)."""
    body = read_payload(RoutesCreate, payload)
    with timed_progress(progress, body.params.time_limit_s, name="routing-progress") as phase:
        with fields_under("params"):  # the solver names fields of its params
            plan, stats = solve_routes_with_stats(body.scenario, body.params)
        phase("explaining")
        late = [stats.late] if stats.late else []  # an answer past its time limit says so
        result = routes_result(
            body.scenario,
            plan,
            body.params,
            fallback_reason=stats.fallback,
            notes=[*stats.pin_notes, *stats.clock_notes, *late],
        )
    return result.model_dump(mode="json")


def greedy_plan(body: RoutesCreate) -> tuple[Plan, SolveStats]:
    """The fast greedy plan for a routing request, and its solve stats."""
    params = body.params.model_copy(update={"engine": "greedy"})
    with fields_under("params"):
        return solve_routes_with_stats(body.scenario, params)


def fallback(payload: JsonDict, *, reason: str) -> JsonDict:
    """The greedy plan, when the solver crashed or overran."""
    body = read_payload(RoutesCreate, payload)
    plan, stats = greedy_plan(body)
    result = routes_result(
        body.scenario, plan, body.params, fallback_reason=reason, notes=stats.pin_notes
    )
    return result.model_dump(mode="json")
