"""One ASGI middleware for limits and observability: body cap (413), input hash, metrics, audit.

A JSON body holding a NUL in a string, or an object giving a key twice, is a 422 naming it here,
before the routes (their parsers would take the NUL, and keep a repeated key's last value); so
is JSON in UTF-16 or UTF-32 (``(body)``: JSON must be UTF-8), and a UTF-8 byte-order mark is
dropped before the routes read the body, as the command line reads files.

It also answers ``HEAD`` wherever ``GET`` is answered: FastAPI's routes take only the methods
they declare, so load balancers and uptime checks that send ``HEAD`` got a 405.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core import balance
from api.core.errors import (
    ARRIVED_AT,
    REQUEST_CUT,
    ErrorPublic,
    FieldProblem,
    RequestCut,
    error_response,
    invalid,
    job_at_stop,
    shutting_down,
)
from api.fastpath import JSON_BODY
from scenarios.bulk import collector_paused
from scenarios.geo import NUL_REASON
from scenarios.io.json_io import (
    LONE_SURROGATE_REASON,
    has_surrogate_escape,
    parse_unique,
    repeated_key_field,
    string_field,
    surrogate_string_field,
    utf8_refusal,
)

if TYPE_CHECKING:
    from api.context import ServiceContext

AUDITED_PREFIX = "/v1/"

log = logging.getLogger(__name__)


class ServiceMiddleware:
    """Reject oversized bodies, hash the input, time the request, count it and audit it."""

    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        state[ARRIVED_AT] = start
        cut = state[REQUEST_CUT] = RequestCut()
        status_box = [500]
        limit = self.ctx.settings.max_body_bytes
        # HEAD runs the GET route (its key check included) in a copy of the scope: the
        # server's own scope keeps HEAD, so it sends the headers alone (Content-Length that
        # of the GET answer)
        head = scope["method"] == "HEAD"
        inner = {**scope, "method": "GET"} if head else scope

        started = [False]

        async def send_wrapper(message: Message) -> None:
            if head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            if message["type"] == "http.response.start":
                started[0] = True
                status_box[0] = int(message["status"])
                balancer = balance.BALANCER
                if balancer is not None and balancer.should_close():
                    # this worker holds more than its share of connections: the client
                    # reconnects and the kernel draws a worker for it again
                    message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        try:
            if "\x00" in scope.get("path", ""):  # %00: no resource has it in its id
                await error_response(404, "not found: the path holds a NUL character")(
                    scope, receive, send_wrapper
                )
                return
            if scope["method"] in {"POST", "PUT", "PATCH"}:
                encoding = content_encoding(scope)
                if encoding is not None:
                    # a compressed body was read as text: 422 "not valid UTF-8 at byte 1"
                    answer = await self._unauthenticated(scope) or error_response(
                        415,
                        f"Content-Encoding {encoding!r} is not supported: send the body "
                        "uncompressed, as JSON with Content-Type: application/json",
                    )
                    await answer(scope, receive, send_wrapper)
                    return
                body = await _read_body(scope, receive, limit)
                if body is None:
                    self.ctx.metrics.rejections.labels("body_too_large").inc()
                    await _send_413(send_wrapper, limit)
                    return
                state["input_hash"] = hashlib.sha256(body).hexdigest()  # (as sent)
                # JSON in UTF-16 or UTF-32 (which json.loads reads) is refused, as the command
                # line refuses such a file; a UTF-8 BOM is dropped, as the command line drops
                # it (kept, a job row's payload began with it and read back as a 500)
                not_utf8 = utf8_refusal(body) if body else None
                body = body.removeprefix(codecs.BOM_UTF8)
                where = "(body)" if not_utf8 is not None else None
                reason = not_utf8 or NUL_REASON  # (the models' words: they refuse a NUL too)
                if where is None and _NUL_ESCAPE in body:
                    where = nul_string_field(body)
                if where is None and has_surrogate_escape(body):
                    where, reason = surrogate_string_field(body), LONE_SURROGATE_REASON
                if where is not None:
                    answer = await self._unauthenticated(scope) or invalid(
                        [FieldProblem(field=where, reason=reason)]
                    )
                    await answer(scope, receive, send_wrapper)
                    return
                # FastAPI's parser (and pydantic's) keep the last value of a repeated key;
                # the value parsed here is the route's body (api.fastpath: one parse)
                with collector_paused():  # a large body is millions of objects
                    checked = parse_unique(body)
                at = checked.repeated
                if checked.ok:
                    state[JSON_BODY] = checked.value
                replay = None if at is None else await self._replay(scope, state)
                if replay is not None:  # answered before such bodies were refused
                    await replay(scope, receive, send_wrapper)
                    return
                if at is not None:
                    field, reason = repeated_key_field(at)
                    answer = await self._unauthenticated(scope) or invalid(
                        [FieldProblem(field=field, reason=reason)]
                    )
                    await answer(scope, receive, send_wrapper)
                    return
                refused = _over_counts(self.ctx, scope, checked.value) if checked.ok else None
                if refused is not None:  # a list past its cap: before the models read it all
                    answer = (
                        await self._replay(scope, state)
                        or await self._unauthenticated(scope)
                        or refused
                    )
                    await answer(scope, receive, send_wrapper)
                    return
                receive = _replay(body, receive)
            await self.app(inner, receive, send_wrapper)
        except asyncio.CancelledError:
            if started[0]:  # cut mid-answer: nothing more can be said
                raise
            # the server stopped waiting for it (uvicorn cancels the requests still running
            # when its graceful shutdown's timeout ends, and lets their answers out): a clear
            # 503, not uvicorn's bare 500 with a traceback
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # answered: this task ends normally
            # a submit still in its thread queues its job before this (the 503 names it
            # queued) or not at all (api.solve.submit_job), and a synchronous solve's outcome
            # is stored before it or is the stop's failure: not after a "send it again"; the
            # cut waits for them up to CUT_WAIT_S (a hung database: the 503 says unconfirmed)
            confirmed = await cut.cut_now()
            response = self._stopping_answer(scope, state, unconfirmed=not confirmed)
            await response(scope, receive, send_wrapper)
        except Exception:
            if started[0]:
                raise
            # answered here, not re-raised: Starlette's last-resort handler would answer
            # too but then re-raise, and the server drops the keep-alive connection for it
            log.exception("unhandled error on %s %s", scope["method"], scope.get("path", ""))
            response = error_response(500, "internal error; the incident was logged")
            await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = inner.get("route")
            template = getattr(route, "path", None) or "unmatched"
            status = status_box[0]
            self.ctx.metrics.requests.labels(scope["method"], template, str(status)).inc()
            if status == 503 and state.get("audit_result") == "shutting_down":
                # counted here, once a request, whichever answered it: this middleware (the
                # server cut it) or its solve's path (api.solve: the stop ended its solve)
                self.ctx.metrics.rejections.labels("shutting_down").inc()
            self.ctx.metrics.latency.labels(scope["method"], template).observe(elapsed)
            path: str = scope.get("path", "")
            if path.startswith(AUDITED_PREFIX):
                self._audit(scope, state, status, elapsed)

    async def _unauthenticated(self, scope: Scope) -> JSONResponse | None:
        """The 401 of a request refused here whose endpoint takes an API key it lacks, or the
        403 of one whose key's role the endpoint does not take: the key is checked first (a
        caller without one got the 422 about its body or its ``Idempotency-Key``, the retry
        of an answered request included), else None."""
        from starlette.requests import Request

        from api.deps import unauthenticated

        return await unauthenticated(Request(scope), self.ctx)

    async def _replay(self, scope: Scope, state: dict[str, Any]) -> JSONResponse | None:
        """The stored answer of a retry (a valid key, an ``Idempotency-Key`` used with the
        same endpoint and body) of a body refused here: taken before JSON objects repeating
        a key were refused (session 51), its retry got the 422, as if the first request had
        not been answered (its plan stored, its job queued)."""
        from starlette.requests import Request

        from api.deps import replay_before_checks

        if not any(name == b"idempotency-key" for name, _ in scope.get("headers", [])):
            return None
        answer = await replay_before_checks(Request(scope), self.ctx)
        if answer is not None:
            state["audit_result"] = "idempotent_replay"
        return answer

    def _stopping_answer(
        self, scope: Scope, state: dict[str, Any], *, unconfirmed: bool = False
    ) -> JSONResponse:
        """The 503 for a request the server's shutdown cut before its answer; one log line.

        ``unconfirmed``: its job's decision in progress (queueing it, storing its outcome)
        was not waited for to its end (:class:`~api.core.errors.RequestCut`).
        """
        job_id = state.get("audit_job_id")
        # as its request last knew it: a job it queued stays queued (and runs), a synchronous
        # solve's is failed by the stop unless its outcome was stored (api.solve note_audit)
        job_status = state.get("audit_job_status")
        log.warning(
            "%s %s%s not answered: cut by the server's shutdown (graceful timeout); answered 503",
            scope["method"],
            scope.get("path", ""),
            job_at_stop(job_id, job_status, unconfirmed=unconfirmed),
        )
        state["audit_result"] = "shutting_down"  # counted in the rejections (see __call__)
        message, headers = shutting_down(
            job_id, self.ctx.settings.retry_after_s, job_status, unconfirmed=unconfirmed
        )
        return error_response(503, message, headers)

    def _audit(self, scope: Scope, state: dict[str, Any], status: int, elapsed: float) -> None:
        writer = self.ctx.audit
        if writer is None:
            return
        principal = state.get("principal")
        client = scope.get("client")
        writer.record(
            key_id=getattr(principal, "key_id", None),
            role=getattr(principal, "role", None),
            method=scope["method"],
            path=scope.get("path", "")[:300].replace("\x00", "\\x00"),
            status_code=status,
            input_hash=state.get("input_hash"),
            result=(state.get("audit_result") or _default_result(status))[:200],
            solver=(state.get("audit_solver") or None),
            seed=state.get("audit_seed"),
            job_id=state.get("audit_job_id"),
            duration_ms=round(elapsed * 1000.0, 3),
            client=f"{client[0]}:{client[1]}"[:100] if client else None,
        )


#: How JSON writes a NUL character: the only way one can be in a JSON string.
def _over_counts(ctx: ServiceContext, scope: Scope, body: Any) -> JSONResponse | None:
    """The 413 or 422 of a POST body whose lists are past their caps, as its endpoint's own
    checks answer it (:func:`~api.limits.check_body_counts`), else None."""
    from fastapi import HTTPException

    from api.limits import check_body_counts
    from scenarios.errors import InputError

    try:
        check_body_counts(ctx.settings, scope["method"], scope.get("path", ""), body)
    except InputError as err:
        return invalid([FieldProblem(field=err.field, reason=err.reason)])
    except HTTPException as err:
        return error_response(err.status_code, str(err.detail))
    return None


_NUL_ESCAPE = b"\\u0000"


def nul_string_field(body: bytes) -> str | None:
    """Dotted path of the first string (or object key) of a JSON body holding a NUL, or None.

    PostgreSQL stores no NUL in text, and a JSON value holding one makes its ``->>`` fail:
    one such order id in a solve's request and result made ``GET /v1/jobs`` a 500 for good.
    A body that is not JSON is left to the JSON errors (None).
    """
    return string_field(body, lambda item: "\x00" in item)


def content_encoding(scope: Scope) -> str | None:
    """The request's ``Content-Encoding`` when it is not ``identity`` (the body is
    compressed or otherwise encoded, which the service does not decode), else None."""
    values = [
        value.decode("latin-1").strip()
        for name, value in scope.get("headers", [])
        if name == b"content-encoding"
    ]
    coded = [v for part in values for v in (p.strip() for p in part.split(",")) if v]
    unsupported = [v for v in coded if v.lower() != "identity"]
    return ", ".join(unsupported) if unsupported else None


def _default_result(status: int) -> str:
    if status < 400:
        return "ok"
    return {
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        413: "too_large",
        422: "bad_input",
        429: "busy",
    }.get(status, f"error_{status}")


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it is known to exceed ``limit`` bytes."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                pass
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable that yields the buffered body once, then defers to the server."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_413(send: Send, limit: int) -> None:
    body = ErrorPublic(message=f"request body over the limit of {limit} bytes").model_dump_json()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
