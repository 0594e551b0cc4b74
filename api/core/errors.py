"""Error answers: bad input is a 422 naming each field and the reason, never a 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from scenarios.errors import InputError, error_location, field_path

log = logging.getLogger("api")


#: The most characters of an id an error answer echoes (a 404 echoed a 5,000-character id whole)
SHOWN_ID_CHARS = 64


def shown_id(value: str) -> str:
    """An id as a 404 or 409 names it: whole up to :data:`SHOWN_ID_CHARS` characters, else
    its first ones and ``...``."""
    return value if len(value) <= SHOWN_ID_CHARS else value[:SHOWN_ID_CHARS] + "..."


class FieldProblem(BaseModel):
    """One bad field: its dotted path from the request root and the reason."""

    field: str
    reason: str


class ErrorPublic(BaseModel):
    """The body of every error answer."""

    message: str
    detail: list[FieldProblem] | None = None


def problems_from_errors(
    errors: Sequence[Any], *, strip_body: bool = False, prefix: Sequence[int | str] = ()
) -> list[FieldProblem]:
    """Field problems from pydantic error dicts (FieldError paths expanded)."""
    out: list[FieldProblem] = []
    for error in errors:
        if error.get("type") == "json_invalid":  # FastAPI's loc is ("body", character offset)
            at = error.get("loc", ())[-1:] or ("?",)
            why = (error.get("ctx") or {}).get("error", "invalid JSON")
            out.append(
                FieldProblem(field="(body)", reason=f"not valid JSON at character {at[0]}: {why}")
            )
            continue
        loc, reason = error_location(error)
        if strip_body and loc and loc[0] == "body":
            loc = loc[1:]
        out.append(FieldProblem(field=field_path((*prefix, *loc)), reason=reason))
    return out


#: The most bad fields a 422 lists (its message counts them all).
MAX_PROBLEMS = 100


def invalid(problems: list[FieldProblem]) -> JSONResponse:
    """A 422 answer listing the bad fields, the first :data:`MAX_PROBLEMS` of them: 20,000
    orders each missing a field were 20,000 entries, a 1.3 MB answer."""
    first = problems[0] if problems else FieldProblem(field="(root)", reason="invalid")
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    if len(problems) > MAX_PROBLEMS:
        more = f" (and {len(problems) - 1} more; the first {MAX_PROBLEMS} listed)"
    body = ErrorPublic(
        message=f"{first.field}: {first.reason}{more}", detail=problems[:MAX_PROBLEMS]
    )
    return JSONResponse(status_code=422, content=body.model_dump())


def error_response(
    status_code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error answer with a message and no field list."""
    return JSONResponse(
        status_code=status_code,
        content=ErrorPublic(message=message).model_dump(),
        headers=headers,
    )


#: the key of a request's :class:`RequestCut` in its ASGI scope's state
REQUEST_CUT = "request_cut"

#: the key of a request's arrival (a :func:`time.perf_counter` reading, taken by the middleware
#: before it reads the body) in its ASGI scope's state: a synchronous solve's time limit
#: counts from it (:func:`api.solve.solver_time_limit`)
ARRIVED_AT = "arrived_at_s"

#: the longest the server's cut of a request waits for the decision it reaches in progress
#: (an async submit committing its job, a synchronous solve storing its outcome), seconds.
#: Both take milliseconds (a commit); past this the database is taken to be hung, and the
#: request is answered without the decision's end (:func:`shutting_down`, ``unconfirmed``)
#: rather than never: the server's exit does not wait for it either
CUT_WAIT_S = 2.0

#: a request's job status while its async submit is queueing the job (not committed yet)
JOB_BEING_QUEUED = "queueing"
#: a request's job status while its async submit lets its job, committed held (no
#: dispatcher claims it), go: it runs, unless the server stops first (then cancelled)
JOB_BEING_CONFIRMED = "confirming"
#: a request's job status while its synchronous solve writes the job's first (running) row
JOB_BEING_STARTED = "starting"


class RequestCut:
    """Whether the server's stop has cut this request, decided against its job's decisions.

    A decision (:func:`api.solve.submit_job` queueing its job, a synchronous solve storing its
    outcome, :meth:`api.solve._Attempt.record`) runs in :meth:`deciding`, from its look at
    :attr:`cut` to its commit (and noting the job in the request's state); the middleware's
    cut (:meth:`cut_now`) waits for a decision in progress, up to :data:`CUT_WAIT_S`: the job
    is queued (or the outcome stored) before the cut, and its 503 says so, or not at all
    (the cut's 503 says send it again, and the decision, which sees :attr:`cut`, keeps to
    it); never after a 503 that said send it again. A decision still in progress when the
    wait ends is :attr:`unconfirmed`: its holder sees that once it ends, and keeps to what
    the cut's 503 said (:func:`shutting_down`).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # held for a few instructions, never across a wait
        self._deciding = False
        self.cut = False
        #: the cut answered while a decision was in progress (it waited :data:`CUT_WAIT_S`)
        self.unconfirmed = False

    @contextlib.contextmanager
    def deciding(self) -> Iterator[bool]:
        """Held while a decision is made; yields whether the request was cut already.

        Once it has exited, :attr:`unconfirmed` is final (the cut no longer changes it).
        """
        with self._mutex:
            already = self.cut
            self._deciding = not already
        try:
            yield already
        finally:
            with self._mutex:
                self._deciding = False

    async def cut_now(self, wait_s: float | None = None) -> bool:
        """Mark the request cut once no decision is in progress (True), or once ``wait_s``
        (default :data:`CUT_WAIT_S`) has passed with one still in progress (False: it is
        :attr:`unconfirmed`). The event loop is not held meanwhile; a second cancellation
        of the request's task (the event loop ending) ends the wait at once."""
        deadline = time.monotonic() + (CUT_WAIT_S if wait_s is None else wait_s)
        while True:
            with self._mutex:
                if not self._deciding or time.monotonic() >= deadline:
                    self.cut = True
                    self.unconfirmed = self._deciding
                    return not self.unconfirmed
            try:
                await asyncio.sleep(0.005)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()  # the answer is still sent, now
                deadline = -math.inf


def shutting_down(
    job_id: str | None,
    retry_after_s: int,
    job_status: str | None = None,
    *,
    unconfirmed: bool = False,
) -> tuple[str, dict[str, str]]:
    """The message and headers of the 503 for a request the server's stop cut short.

    Its job (if it has a row) marked failed, to be sent again (``Retry-After``); but a job
    it had queued (``job_status`` ``queued``) is left queued and runs (on another replica,
    or here after the restart): not to be sent again, a re-send would run it twice (unless
    it carries the same ``Idempotency-Key``); one whose solve was done has its result.
    ``unconfirmed``: the cut stopped waiting (:data:`CUT_WAIT_S`) for its job's decision in
    progress (:class:`RequestCut`): a job being queued will not run (its row, should its
    commit land, is held: no dispatcher claims it, and it is cancelled), nor a synchronous
    solve whose job was being started (failed at once if its row is written), to be sent
    again; a job being let go (:data:`JOB_BEING_CONFIRMED`) runs unless it ends cancelled,
    and a synchronous solve's outcome being stored is to be read at its job. A job the
    request noted queued (let go) is named queued, as without ``unconfirmed``.
    """
    stopped = "the server is shutting down and stopped this request before it was completed"
    close = {"Connection": "close"}
    again = f"send it again (in {retry_after_s} s, or now to another replica)"
    twice = "a re-send would run the job twice, unless it carries the same Idempotency-Key"
    if job_id and unconfirmed and job_status != "queued":
        waited = f"the database had not confirmed it within {CUT_WAIT_S:g} s"
        if job_status == JOB_BEING_QUEUED:
            message = (
                f"{stopped}, while its job {job_id} was being queued ({waited}): the job will "
                "not run (if its queueing completes, it is cancelled at once, never started, "
                f"see /v1/jobs/{job_id}); {again}"
            )
        elif job_status == JOB_BEING_CONFIRMED:
            message = (
                f"{stopped}, while its job {job_id}, written, was being confirmed queued "
                f"({waited}): follow it at /v1/jobs/{job_id}: it runs unless it ends "
                f"cancelled (never started); if cancelled, {again}; else do not: {twice}"
            )
        elif job_status == JOB_BEING_STARTED:
            message = (
                f"{stopped}, while its job {job_id} was being started ({waited}): the solve "
                "will not run (if the job's row is written, it is marked failed at once, see "
                f"/v1/jobs/{job_id}); {again}"
            )
        else:
            message = (
                f"{stopped}, while the outcome of its job {job_id} was being stored ({waited}):"
                f" follow it at /v1/jobs/{job_id}: once done, its result is there; if failed, "
                f"{again}"
            )
        return message, {"Retry-After": str(retry_after_s), **close}
    if job_id and job_status == "queued":
        message = (
            f"{stopped}, after its job {job_id} was queued: the job stays queued and will run "
            f"(on another replica, or here after the restart), follow it at /v1/jobs/{job_id}; "
            f"do not send the request again: {twice}"
        )
        return message, close
    if job_id and job_status == "done":
        message = (
            f"{stopped}, after its job {job_id} was done: its result is at /v1/jobs/{job_id} "
            "(no need to send the request again)"
        )
        return message, close
    message = f"{stopped}{job_at_stop(job_id, job_status)}; {again}"
    return message, {"Retry-After": str(retry_after_s), **close}


def job_at_stop(job_id: str | None, job_status: str | None, *, unconfirmed: bool = False) -> str:
    """How the 503 of a request the server's stop cut short names its job: `` (job X, marked
    failed)``, `` (job X, queued: it will run)``, `` (job X, done)``, `` (job X,
    cancelled)``, one the cut stopped waiting for (``unconfirmed``: being queued, let go,
    started, or its outcome stored), or nothing."""
    if not job_id:
        return ""
    if unconfirmed and job_status != "queued":
        if job_status == JOB_BEING_QUEUED:
            return f" (job {job_id}, being queued, unconfirmed: it will not run)"
        if job_status == JOB_BEING_CONFIRMED:
            return f" (job {job_id}, being confirmed queued, unconfirmed: it runs unless cancelled)"
        if job_status == JOB_BEING_STARTED:
            return f" (job {job_id}, being started, unconfirmed: it will not run)"
        return f" (job {job_id}, its outcome being stored, unconfirmed)"
    states = {"queued": "queued: it will run", "done": "done", "cancelled": "cancelled"}
    return f" (job {job_id}, {states.get(job_status or '', 'marked failed')})"


async def _key_first(request: Request) -> JSONResponse | None:
    """The 401 of a request refused before its endpoint's key check (FastAPI parses the JSON
    body before it resolves the dependencies) that has no valid key, or the 403 of one whose
    key's role the endpoint does not take, else None."""
    from api.deps import unauthenticated

    ctx = getattr(request.app.state, "ctx", None)
    return None if ctx is None else await unauthenticated(request, ctx)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    denied = await _key_first(request)
    if denied is not None:  # a caller without a valid key learns nothing about its body
        return denied
    errors = exc.errors()
    body_errors = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors)
    if body_errors and isinstance(exc.body, bytes | bytearray):
        # FastAPI parses a body as JSON only when the Content-Type says so; any other body
        # reaches validation as bytes ("(root): Input should be a valid dictionary")
        got = request.headers.get("content-type")
        return error_response(
            415,
            "send the body as JSON with Content-Type: application/json "
            f"(got {f'Content-Type: {got}' if got else 'no Content-Type'})",
        )
    whole = _whole_body_problem(errors)
    if whole is not None:
        return invalid([whole])
    return invalid(problems_from_errors(errors, strip_body=True))


#: why an empty body is refused (FastAPI's words were ``(root): Field required``)
EMPTY_BODY_REASON = "the request body is empty: send a JSON object"


def _whole_body_problem(errors: Sequence[Any]) -> FieldProblem | None:
    """The problem of a body that is empty or JSON but no object (``null``, ``[]``, ``3``),
    on the field ``(body)`` as a body that is not JSON; None for errors inside an object."""
    for error in errors:
        if tuple(error.get("loc", ())) != ("body",):
            continue
        if error.get("type") == "missing":
            return FieldProblem(field="(body)", reason=EMPTY_BODY_REASON)
        if error.get("type") in ("model_attributes_type", "model_type", "dict_type"):
            got = _json_kind(error.get("input"))
            return FieldProblem(
                field="(body)", reason=f"the request body must be a JSON object, got {got}"
            )
    return None


def _json_kind(value: Any) -> str:
    """What a JSON value is, in words: ``null``, ``an array``, ``a number``, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    return invalid(problems_from_errors(exc.errors(include_url=False)))


async def _input_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    return invalid([FieldProblem(field=exc.field or "(root)", reason=exc.reason)])


def unparsed_body_reason(error: BaseException) -> str:
    """Why a JSON body could not be parsed, for errors other than a JSON syntax error.

    Python's JSON parser raises those as UnicodeDecodeError (bytes that are not UTF-8),
    RecursionError (arrays or objects nested past the interpreter's depth) and ValueError
    (an integer of more than 4300 digits); FastAPI turned them into a bare 400.
    """
    if isinstance(error, UnicodeDecodeError):
        return f"not valid UTF-8 at byte {error.start}"
    if isinstance(error, RecursionError):
        return "not valid JSON: arrays or objects nested too deeply"
    if "digits" in str(error):
        return f"not valid JSON: a number has more than {sys.get_int_max_str_digits()} digits"
    return f"not valid JSON: {error}"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        denied = await _key_first(request)
        if denied is not None:
            return denied
        # FastAPI's "There was an error parsing the body": bad input like any other JSON error
        return invalid([FieldProblem(field="(body)", reason=unparsed_body_reason(exc.__cause__))])
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, message, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error; the incident was logged")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON error answers."""
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(ValidationError, _validation)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "missing or unknown API key"},
    403: {"model": ErrorPublic, "description": "the key's role may not call this endpoint"},
    413: {"model": ErrorPublic, "description": "body or order count over the limit"},
    415: {"model": ErrorPublic, "description": "a body not sent as application/json"},
    422: {"model": ErrorPublic, "description": "bad input: every bad field with the reason"},
    429: {"model": ErrorPublic, "description": "busy: retry after the Retry-After seconds"},
}
