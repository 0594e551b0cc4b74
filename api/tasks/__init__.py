"""Job bodies: each kind turns a stored JSON payload into a JSON result by calling the solvers.

Task functions run in worker processes (or Ray tasks, or a thread for synchronous solves),
so they take and return plain JSON and import the solvers themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from api.db.models import Job
from api.jobs.registry import JsonDict, TaskRegistry, TaskSpec

SPECS: tuple[TaskSpec, ...] = (
    TaskSpec(
        "allocations",
        "api.tasks.allocations:run",
        fallback="api.tasks.allocations:fallback",
        solver="allocation",
        bounded=True,
    ),
    TaskSpec(
        "routes", "api.tasks.routes:run", fallback="api.tasks.routes:fallback", solver="routing"
    ),
    TaskSpec(
        "plans",
        "api.tasks.plans:run_plan",
        fallback="api.tasks.plans:fallback_plan",
        solver="plans",
    ),
    TaskSpec(
        "reoptimise",
        "api.tasks.plans:run_reoptimise",
        fallback="api.tasks.plans:fallback_reoptimise",
        solver="routing",
    ),
    TaskSpec("simulations", "api.tasks.simulations:run_simulation", solver="twin"),
    TaskSpec("whatif", "api.tasks.simulations:run_whatif", solver="twin"),
    TaskSpec("comparisons", "api.tasks.simulations:run_comparison", solver="twin"),
    TaskSpec("policies", "api.tasks.policies:run_evaluation", solver="twin"),
)


def default_registry() -> TaskRegistry:
    """The job kinds this service offers."""
    registry = TaskRegistry()
    for spec in SPECS:
        registry.add(spec)
    return registry


def result_hooks() -> dict[str, Callable[[Session, Job, JsonDict], JsonDict]]:
    """Per kind, what to store when an asynchronous job is done (e.g. the plan it made)."""
    from api.tasks.allocations import on_done
    from api.tasks.plans import HOOKS

    return {**HOOKS, "allocations": on_done}
