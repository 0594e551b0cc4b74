"""Schemas shared by several resources: jobs, keys, health."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    model_validator,
)

from api.core.security import MAX_GRACE_S, Role
from scenarios.bulk import collector_paused
from scenarios.geo import NUL_REASON, NotBool, NulFreeModel


def service_defaults(**defaults: Any) -> BeforeValidator:
    """Fields a client leaves out of a params object take the service's defaults, not the solver's.

    A body without the object gets them from its ``default_factory``; one that gives the
    object with a few fields (``{"mode": "online"}``) gets them here, so giving one field
    does not change another's default.
    """

    def fill(value: Any) -> Any:
        return {**defaults, **value} if isinstance(value, dict) else value

    return BeforeValidator(fill)


class LargeBody(NulFreeModel):
    """A request body that may hold a large scenario (10,000 orders are over a million
    objects): validated with the garbage collector paused
    (:func:`scenarios.bulk.collector_paused`), wherever it is validated: by FastAPI from the
    parsed JSON, by a job from its stored payload.

    Not for a body validated from JSON text (``model_validate_json``): a model's wrap
    validator is given the input as Python objects, which pydantic then builds from the text.
    """

    @model_validator(mode="wrap")
    @classmethod
    def _collector_paused(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        with collector_paused():
            return handler(data)


JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class JobEvent(BaseModel):
    """Something that happened to a job."""

    at: str
    message: str


class JobProgress(BaseModel):
    """What a running job last said it was doing (routing, allocation and plan jobs: see
    docs/api.md)."""

    phase: str = Field(
        description="routing: `solving` (diagnosis, construction and search, within the time "
        "limit) or `explaining` (the answer's explanation, after it); allocation: `solving` "
        "(before the solver names a phase, and for a baseline), `warm start` (batch; online "
        "of a few orders), `column generation` (batch), `integer phase` (batch; online: the "
        "exact search or the joint MIP; pyomo: the MIP in its worker) or `explaining`"
    )
    elapsed_s: float = Field(description="seconds since the job's solve started")
    time_limit_s: float | None = Field(
        default=None, description="the solve's time limit, in seconds (the job's `params`)"
    )
    gap: float | None = Field(
        default=None,
        description="allocation: the certified relative gap (cost - bound) / cost so far: "
        "when the phase began, after each column generation round, and in the integer "
        "phase each time the answer or the bound improves; absent until known",
    )
    stage: str | None = Field(
        default=None, description="plan jobs: the stage solving, `allocation` or `routing`"
    )


class JobPublic(BaseModel):
    """A job as clients see it; ``result`` is filled once it is done."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    mode: Literal["sync", "async"]
    status: JobStatus
    progress: float = Field(description="0..1, as reported by the solver")
    progress_detail: JobProgress | None = Field(
        default=None,
        description="while a job runs, what it last reported doing with its progress (routing, "
        "allocation and plan jobs: phase, elapsed seconds and time limit); null otherwise",
    )
    attempts: int
    fallback: bool = Field(description="true when the result comes from the greedy fallback")
    cancel_requested: bool
    error: str | None = Field(description="why it failed (or why the fallback was used)")
    seed: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    events: list[JobEvent] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    links: dict[str, str] = Field(default_factory=dict)


class JobsPublic(BaseModel):
    """A page of jobs, newest first."""

    data: list[JobPublic]
    count: int
    next_cursor: str | None = Field(
        default=None,
        description="pass as `cursor` for the next page (none after a page shorter than "
        "`limit`): pages walked by cursor neither repeat nor skip a job as jobs are added",
    )


class JobAccepted(BaseModel):
    """Answer of an endpoint that queued a job (HTTP 202): poll ``links.self``."""

    job_id: str
    status: JobStatus
    links: dict[str, str]


#: Longest key name (the column's length).
KEY_NAME_MAX = 200


def key_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a key, or None: at most KEY_NAME_MAX characters, no NUL.

    PostgreSQL refuses NUL in text (a 500 over HTTP) and a name past the column's length
    (a traceback from ``dispatchlab keys create``); SQLite stored both.
    """
    if len(name) > KEY_NAME_MAX:
        return f"at most {KEY_NAME_MAX} characters (got {len(name)})"
    if "\x00" in name:
        return NUL_REASON
    return None


def _key_name(name: str) -> str:
    problem = key_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


class KeyCreate(NulFreeModel):
    """A key to make."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    role: Role
    name: Annotated[str, AfterValidator(_key_name)] = Field(default="", max_length=KEY_NAME_MAX)


class KeyPublic(BaseModel):
    """A key without its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    role: Role
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    account_id: str = Field(
        description="the account the key acts for (the id of its first key): its jobs, plans "
        "and Idempotency-Keys are those of every key of the account"
    )
    expires_at: dt.datetime | None = Field(
        default=None, description="a rotated key's end of grace: refused from then on"
    )


class KeyCreated(KeyPublic):
    """A new key; ``key`` is shown this once and never stored in clear."""

    key: str


class KeyRotate(NulFreeModel):
    """How a key is rotated: when the old key ends."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    grace_s: Annotated[int, NotBool] = Field(
        default=0,
        ge=0,
        le=MAX_GRACE_S,
        description="seconds the old key keeps working (0: revoked at once; at most 7 days)",
    )


class KeyRotated(KeyCreated):
    """The new key of a rotation (``key`` shown this once) and the old key as it now is."""

    rotated: KeyPublic = Field(description="the old key: revoked, or its expires_at set")


class KeysPublic(BaseModel):
    """Every active key."""

    data: list[KeyPublic]
    count: int


class Health(BaseModel):
    """Liveness or readiness with the checks made."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
    version: str
