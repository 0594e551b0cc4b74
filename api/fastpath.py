"""A short path for hot JSON endpoints that leaves every unusual request to FastAPI.

FastAPI's request handling (parameter resolution, ``json.loads`` then validation) costs about
0.4 ms of CPU per request, as much as a one-order solve. A route made with :func:`fast_route`
first offers an ``application/json`` request to a *fast* handler, which validates the body's
JSON value and calls the endpoint itself; when it returns ``None`` (a body that does not
validate, an unusual header) FastAPI's own handler answers, so errors, the OpenAPI document
and every other behaviour stay FastAPI's.

A JSON body is parsed once: the middleware parses it to refuse a key given twice
(:func:`scenarios.io.json_io.parse_unique`) and keeps the value (:data:`JSON_BODY`), which
such a route gives its fast handler and hands to FastAPI as the body's JSON (an
``application/json`` body, which FastAPI parses with :func:`json.loads`, making the same
value): neither parses it again. A body the middleware did not parse (a route reached
without it) goes to FastAPI. The body models that may hold a large scenario validate it with
the collector paused (:class:`api.schemas.common.LargeBody`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

#: A fast handler: the request and its ``application/json`` body's value (as
#: :func:`json.loads` makes it) to its answer, or None to leave the request to FastAPI.
FastHandler = Callable[[Request, Any], Awaitable[Response | None]]

#: Key in the request scope's state of the JSON body the middleware parsed (refusing a key
#: given twice), as :func:`json.loads` makes it; absent when the body is not JSON.
JSON_BODY = "json_body"


def is_plain_json(request: Request) -> bool:
    """True when the request says its body is ``application/json`` (parameters allowed)."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _take_json_body(request: Request) -> tuple[bool, Any]:
    """``(True, value)`` of the JSON body the middleware parsed (taken: the request's state
    no longer holds it), ``(False, None)`` when it parsed none."""
    state: dict[str, Any] = request.scope.get("state", {})
    if JSON_BODY not in state:
        return False, None
    return True, state.pop(JSON_BODY)


def fast_route(fast: FastHandler | None = None) -> type[APIRoute]:
    """An :class:`APIRoute` class whose ``application/json`` requests ``fast`` answers,
    given the JSON body the middleware parsed, unless it returns ``None`` (no ``fast``, or no
    body parsed: FastAPI answers, given that value too; see the module)."""

    class FastRoute(APIRoute):
        """A route with a short path for the common request (see :mod:`api.fastpath`)."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            """FastAPI's handler behind ``fast``."""
            standard = super().get_route_handler()

            async def handler(request: Request) -> Response:
                parsed, value = _take_json_body(request)
                if parsed and is_plain_json(request):
                    if fast is not None:
                        response = await fast(request, value)
                        if response is not None:
                            return response
                    # FastAPI's body: Starlette's Request.json() returns ``_json`` once set
                    request._json = value
                del value
                return await standard(request)

            return handler

    return FastRoute


#: The route class of the endpoints taking a large JSON body without a fast handler.
BodyRoute = fast_route()
