"""The synchronous answer of a solve endpoint: its public form and its audit note."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request

from api.schemas.allocations import AllocationsPublic
from api.schemas.routes import RoutesPublic
from api.solve import SolveOutcome, note_audit
from api.versions import solver_label

Public = TypeVar("Public", AllocationsPublic, RoutesPublic)


def note_answer(request: Request, *, fallback: bool, status: str, engine: str | None) -> None:
    """Note an answer in its request's audit row: its status (``fallback:status``) and solver."""
    note_audit(
        request, result=("fallback:" if fallback else "") + status, solver=solver_label(engine)
    )


def public_answer(
    model: type[Public],
    request: Request,
    outcome: SolveOutcome,
    *,
    fallback: bool,
    reason: str | None,
) -> Public:
    """``outcome``'s result as ``model`` with its job id and fallback, noted in the audit row."""
    public = model.model_validate(
        {
            **outcome.result,
            "job_id": outcome.job_id,
            "fallback": fallback,
            "fallback_reason": reason,
        }
    )
    note_answer(request, fallback=fallback, status=public.status.value, engine=public.solver.engine)
    return public
