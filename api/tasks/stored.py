"""Reading a job's stored payload: queued under older rules, it may fail today's checks.

A job's request was checked when it was queued; a job queued before a rule of the model was
added (a SKU key of 0 or 201 characters, before session 51) and run after the upgrade (or
re-run by crash recovery) no longer reads as a request. It is refused as bad input, naming
the field with the reason a new request gets in its 422, and saying the job predates the
rule: it failed as a solver crash (``solver error: pydantic_core...ValidationError`` and a
fallback that failed alike).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scenarios.errors import RequestInputError, input_error_from_validation
from scenarios.saved import newer_rule, validate_saved

M = TypeVar("M", bound=BaseModel)

#: the end of the reason of a stored request failing a check that is not a known newer rule
NO_LONGER_PASSES = (
    "the job's stored request no longer passes this check: send the request again corrected"
)


def queued_before(field: str, reason: str) -> str:
    """``reason`` (of an error on ``field`` of a job's stored request) saying the job predates
    the rule that refuses it (see :func:`~scenarios.saved.newer_rule`)."""
    rule = newer_rule(field, reason)
    if rule is None:
        return f"{reason} ({NO_LONGER_PASSES})"
    return f"{reason} (the job was queued before {rule.what}: send the request again {rule.fix})"


def read_payload(cls: type[M], payload: Any) -> M:
    """A job's stored ``payload`` as a ``cls`` request, read as saved data
    (:func:`~scenarios.saved.validate_saved`); one failing today's checks is a
    RequestInputError naming the field from the request's root, in a new request's words,
    and saying the job predates the rule (:func:`queued_before`)."""
    if isinstance(payload, cls):  # a synchronous solve's validated body
        return payload
    try:
        return validate_saved(cls, payload)
    except ValidationError as err:
        problem = input_error_from_validation(err)
        reason = queued_before(problem.field, problem.reason)
        raise RequestInputError(problem.field, reason) from None
