"""Routing jobs: ``solve_routes`` on the request, and the greedy plan as the fallback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from api.jobs.registry import JsonDict, ProgressFn
from api.schemas.routes import RoutesCreate, RoutesResult, SolverInfo
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


#: seconds between a routing job's progress reports (its job process sends at most one per
#: 0.5 s to the service, which writes the latest each tick)
PROGRESS_EVERY_S = 0.5
#: the most progress a routing job reports before its answer is ready: the solve may end
#: before its time limit, or a little after it (``SolveStats.late``)
PROGRESS_CAP = 0.95


@contextmanager
def timed_progress(
    progress: ProgressFn | None, time_limit_s: float
) -> Iterator[Callable[[str], None]]:
    """Report a solve's progress while the block runs; yields the function that names its phase.

    A thread reports every :data:`PROGRESS_EVERY_S` the share of ``time_limit_s`` elapsed
    (up to :data:`PROGRESS_CAP`) with the detail ``{"phase", "elapsed_s", "time_limit_s"}``:
    the solver has no hook for its own phases, and a thread that sleeps between two reports
    takes no time from the search (measured: docs/api.md). Without ``progress`` (a
    synchronous solve) nothing runs.
    """
    if progress is None:
        yield lambda phase: None
        return
    report = progress  # bound for the closures: mypy keeps ``progress`` optional in them
    started = time.monotonic()
    phase = ["solving"]
    lock = threading.Lock()  # one report at a time on the job's pipe
    stop = threading.Event()

    def send() -> None:
        elapsed = time.monotonic() - started
        fraction = min(PROGRESS_CAP, elapsed / time_limit_s) if time_limit_s > 0 else 0.0
        detail = {
            "phase": phase[0],
            "elapsed_s": round(elapsed, 2),
            "time_limit_s": time_limit_s,
        }
        with lock:
            report(fraction, detail)

    def tick() -> None:
        while not stop.wait(PROGRESS_EVERY_S):
            send()

    def set_phase(name: str) -> None:
        phase[0] = name
        send()

    send()
    ticker = threading.Thread(target=tick, name="routing-progress", daemon=True)
    ticker.start()
    try:
        yield set_phase
    finally:
        stop.set()
        ticker.join()


def run(payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
    """Solve a :class:`RoutesCreate` payload (progress: :func:`timed_progress`)."""
    body = read_payload(RoutesCreate, payload)
    with timed_progress(progress, body.params.time_limit_s) as phase:
        with fields_under("params"):  # the solver names fields of its params
            plan, stats = solve_routes_with_stats(body.scenario, body.params)
        phase("explaining")
        late = [stats.late] if stats.late else []  # an answer past its time limit says so
        result = routes_result(
            body.scenario,
            plan,
            body.params,
            fallback_reason=stats.fallback,
            notes=[*stats.pin_notes, *late],
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
