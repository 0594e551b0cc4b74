"""Error answers: bad input is a 422 naming each field and the reason, never a 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from scenarios.errors import InputError, error_location, field_path

log = logging.getLogger("api")


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


def invalid(problems: list[FieldProblem]) -> JSONResponse:
    """A 422 answer listing the bad fields."""
    first = problems[0] if problems else FieldProblem(field="(root)", reason="invalid")
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    body = ErrorPublic(message=f"{first.field}: {first.reason}{more}", detail=problems)
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


class RequestCut:
    """Whether the server's stop has cut this request, decided against its job's submit.

    A submit (:func:`api.solve.submit_job`) holds :attr:`lock` from its look at :attr:`cut`
    to its commit (and noting its job in the request's state); the middleware's cut takes
    it to set :attr:`cut` and read the job: the job is queued before the cut (its 503 names
    it queued) or not at all (its 503 says send it again), never queued after a 503 that
    said send it again.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cut = False

    @contextlib.contextmanager
    def submitting(self) -> Iterator[bool]:
        """Held while a job is submitted; yields whether the request was cut already."""
        with self.lock:
            yield self.cut

    @contextlib.asynccontextmanager
    async def cutting(self) -> AsyncIterator[None]:
        """Mark the request cut, once a submit in progress has committed (or not)."""
        while not self.lock.acquire(blocking=False):  # the event loop not held meanwhile
            await asyncio.sleep(0.005)
        try:
            self.cut = True
            yield
        finally:
            self.lock.release()


def shutting_down(
    job_id: str | None, retry_after_s: int, job_status: str | None = None
) -> tuple[str, dict[str, str]]:
    """The message and headers of the 503 for a request the server's stop cut short.

    Its job (if it has a row) marked failed, to be sent again (``Retry-After``); but a job
    it had queued (``job_status`` ``queued``) is left queued and runs (on another replica,
    or here after the restart): not to be sent again, a re-send would run it twice (unless
    it carries the same ``Idempotency-Key``); one whose solve was done has its result.
    """
    stopped = "the server is shutting down and stopped this request before it was completed"
    close = {"Connection": "close"}
    if job_id and job_status == "queued":
        message = (
            f"{stopped}, after its job {job_id} was queued: the job stays queued and will run "
            f"(on another replica, or here after the restart), follow it at /v1/jobs/{job_id}; "
            "do not send the request again: a re-send would run the job twice, unless it "
            "carries the same Idempotency-Key"
        )
        return message, close
    if job_id and job_status == "done":
        message = (
            f"{stopped}, after its job {job_id} was done: its result is at /v1/jobs/{job_id} "
            "(no need to send the request again)"
        )
        return message, close
    message = (
        f"{stopped}{job_at_stop(job_id, job_status)}; send it again (in {retry_after_s} s, "
        "or now to another replica)"
    )
    return message, {"Retry-After": str(retry_after_s), **close}


def job_at_stop(job_id: str | None, job_status: str | None) -> str:
    """How the 503 of a request the server's stop cut short names its job: `` (job X, marked
    failed)``, `` (job X, queued: it will run)``, `` (job X, done)``, or nothing."""
    if not job_id:
        return ""
    state = {"queued": "queued: it will run", "done": "done"}.get(job_status or "", "marked failed")
    return f" (job {job_id}, {state})"


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
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
    return invalid(problems_from_errors(errors, strip_body=True))


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


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
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
