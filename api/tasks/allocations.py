"""Allocation solves: ``allocate`` on the request; the nearest-node baseline as the fallback."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.db.models import Job
from api.jobs.registry import JsonDict, ProgressFn
from api.schemas.allocations import AllocationCreate
from api.schemas.routes import SolverInfo
from api.tasks.progress import timed_progress
from api.tasks.stored import read_payload
from api.versions import solver_versions
from scenarios.errors import InputError
from solvers.allocation.highs_model import usable_cpus


def _answer(
    body: AllocationCreate, *, baseline: bool, progress: ProgressFn | None = None
) -> JsonDict:
    from solvers.allocation import allocate
    from solvers.allocation.progress import phase_hook

    params = body.params
    capped_from: int | None = None
    if params.threads is None:
        # the service solves requests side by side: one HiGHS thread each, and no helper
        # process racing a batch solve (that is for a solve that has the machine to itself)
        params = params.model_copy(update={"threads": 1})
    elif params.threads > (cores := usable_cpus()):
        # more HiGHS threads than the machine's cores only oversubscribe them
        capped_from = params.threads
        params = params.model_copy(update={"threads": cores})
    if baseline:  # the degraded answer: a rule, no explanations or shadow prices
        params = params.model_copy(
            update={"baseline": "nearest", "explain": False, "shadow_prices": False}
        )
    try:
        with (
            timed_progress(progress, params.time_limit_s, name="allocation-progress") as phase,
            phase_hook(phase if progress is not None else None),
        ):
            result = allocate(body.request, params)
    except InputError as err:
        if err.field.partition(".")[0] == "params":
            raise
        # the solver names the fields of the request it was given (costs.late_per_hour):
        # from the body's root they are under request
        raise err.under("request") from None
    except ValidationError as err:
        # the body is valid: a result the solver cannot build is its own fault, not the
        # client's (a 422 naming the result's field, "bound: Input should be a finite
        # number", for a pyomo solve stopped before its root LP); the fallback answers
        raise RuntimeError(
            f"the solver built an invalid result: {err.errors()[0]['msg']} "
            f"({'.'.join(map(str, err.errors()[0]['loc']))})"
        ) from err
    if capped_from is not None:
        result.stats.notes.append(
            f"params.threads {capped_from} capped at {params.threads}, the cores this "
            "service may use"
        )
    out = result.model_dump(mode="json")
    out["solver"] = SolverInfo(
        engine=f"allocation {result.method} ({params.backend})",
        versions=solver_versions(),
        seed=params.seed,
        time_limit_s=params.time_limit_s,
        runtime_s=round(result.solve_time_s, 4),
    ).model_dump(mode="json")
    return out


def run(payload: JsonDict | AllocationCreate, *, progress: ProgressFn | None = None) -> JsonDict:
    """Allocate an :class:`AllocationCreate` payload (or the already validated body).

    A job's progress: :func:`~api.tasks.progress.timed_progress`, with the solver's phases.
    """
    return _answer(read_payload(AllocationCreate, payload), baseline=False, progress=progress)


def fallback(payload: JsonDict | AllocationCreate, *, reason: str) -> JsonDict:
    """The nearest-node baseline, when the optimiser crashed or overran."""
    return _answer(read_payload(AllocationCreate, payload), baseline=True)


def on_done(session: Session, job: Job, result: JsonDict) -> JsonDict:
    """An asynchronous allocation job's result as the synchronous answer gives it
    (:class:`~api.schemas.allocations.AllocationsPublic`: with its job id and fallback)."""
    from api.schemas.allocations import AllocationsPublic

    del session
    reason = job.error if job.fallback else None
    public = AllocationsPublic.model_validate(
        {**result, "job_id": job.id, "fallback": job.fallback, "fallback_reason": reason}
    )
    return public.model_dump(mode="json")
