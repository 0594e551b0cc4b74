"""Dependencies of the routers, as ``Annotated`` aliases: context, session, caller and role."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from api.context import CachedKey, ServiceContext
from api.core.errors import error_response
from api.core.security import Role, allows, hash_key, key_matches, split_key
from api.db.models import ApiKey
from api.keys import is_live
from scenarios.errors import InputError
from scenarios.geo import BLANK_REASON, NUL_REASON

# Dependencies that never block are ``async def``: FastAPI runs a plain ``def`` dependency in
# a worker thread, and each such hop costs more than the check itself.


async def get_ctx(request: Request) -> ServiceContext:
    """The service context of the app handling this request."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[ServiceContext, Depends(get_ctx)]


@contextlib.contextmanager
def open_session(ctx: ServiceContext) -> Iterator[Session]:
    """A database session (503 while the service is starting)."""
    if ctx.sessions is None:
        raise HTTPException(503, "the service is starting; retry shortly")
    with ctx.sessions() as session:
        yield session


def get_session(ctx: CtxDep) -> Iterator[Session]:
    """A database session for one request."""
    with open_session(ctx) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id, its role and the account it acts for."""

    key_id: str | None
    role: Role
    #: the key's account (``ApiKey.account_id``); None: the key's own (no key: auth off)
    account_id: str | None = None

    @property
    def account(self) -> str | None:
        """The account that owns what this caller makes (jobs, plans, idempotency records)."""
        return self.account_id if self.account_id is not None else self.key_id

    def owns(self, account: str | None) -> bool:
        """True when this caller may see an object owned by ``account`` (its ``key_id``
        column): one made by any key of the caller's account (admin: any)."""
        return self.role == Role.ADMIN or account == self.account


api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="API key made with `dispatchlab keys create --role ROLE`",
)

UNAUTHENTICATED = {"WWW-Authenticate": "X-API-Key"}

#: The reason of an ``Idempotency-Key`` header given twice with different values (422).
IDEMPOTENCY_KEY_TWICE = "given more than once, with different values"


def idempotency_key_values(request: Request) -> set[str]:
    """The distinct ``Idempotency-Key`` values of ``request``, each without the whitespace
    around it (as an HTTP server strips it: ``" k-1"`` and ``"k-1"`` are one key)."""
    return {value.strip() for value in request.headers.getlist("idempotency-key")}


def idempotency_key_problem(key: str) -> str | None:
    """Why ``key`` (an ``Idempotency-Key`` without the whitespace around it) is refused (a
    NUL: PostgreSQL stores none; nothing left: whitespace only), else None."""
    if "\x00" in key:
        return NUL_REASON
    if not key:
        return BLANK_REASON
    return None


async def get_principal(
    request: Request,
    ctx: CtxDep,
    key: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    """Check the ``X-API-Key`` header (401 when missing, malformed, unknown or revoked).

    A key checked within ``key_cache_s`` is answered from memory; otherwise the database
    is read in a worker thread.
    """
    if not ctx.settings.auth_enabled:
        principal = Principal(key_id=None, role=Role.ADMIN)
        request.state.principal = principal
        return principal
    if not key:
        raise HTTPException(
            401, "missing API key: send it in the X-API-Key header", UNAUTHENTICATED
        )
    key_hash = hash_key(key)
    cached = ctx.key_cache.get(key_hash)
    if cached is None:
        key_id = split_key(key)
        if key_id is None or ctx.sessions is None:
            raise HTTPException(401, "invalid API key", UNAUTHENTICATED)
        row = await run_in_threadpool(_lookup_key, ctx, key_id)
        if row is None or not is_live(row) or not key_matches(key, row.key_hash):
            raise HTTPException(401, "invalid or revoked API key", UNAUTHENTICATED)
        cached = CachedKey(row.id, row.role, row.account_id, row.expires_at)
        ctx.key_cache.put(key_hash, cached)
    principal = Principal(
        key_id=cached.key_id, role=Role(cached.role), account_id=cached.account_id
    )
    request.state.principal = principal
    return principal


#: The endpoints that take no API key under ``/v1/`` (everything else there takes one).
OPEN_V1_PATHS = frozenset({"/v1/demo"})


def needs_key(path: str) -> bool:
    """True when the endpoint at ``path`` takes an API key (every ``/v1/`` one but the demo)."""
    return path.startswith("/v1/") and path.rstrip("/") not in OPEN_V1_PATHS


async def unauthenticated(request: Request, ctx: ServiceContext) -> JSONResponse | None:
    """The 401 answer of a request to an endpoint that takes an API key, when it has no valid
    one, or the 403 when its key may not use that endpoint; else None (a key the endpoint
    takes, an open endpoint, auth disabled).

    For the checks answered before the endpoint's own key check (the body middleware's, the
    JSON parse FastAPI makes before the dependencies): a caller without a valid key gets the
    401, and one whose key has another role the 403, never a 422 about its body or
    ``Idempotency-Key`` (a key of another role got the 422 for a body that is not JSON,
    repeats a key or holds a NUL, and the 403 for any other body).
    """
    try:
        await check_key_first(request, ctx)
    except HTTPException as exc:
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))
    return None


async def check_key_first(request: Request, ctx: ServiceContext) -> None:
    """Raise the 401 (or 403) HTTPException :func:`unauthenticated` answers, if any."""
    if not ctx.settings.auth_enabled or not needs_key(request.url.path):
        return
    if isinstance(getattr(request.state, "principal", None), Principal):
        return  # the endpoint's dependencies ran: its role was checked there
    principal = await get_principal(request, ctx, request.headers.get(api_key_header.model.name))
    role = endpoint_role(request)
    if role is not None:
        check_role(principal, role)


#: why a query parameter sent to an endpoint that takes none is refused
UNKNOWN_QUERY_REASON = "unknown parameter: this endpoint takes no query parameters"


def _takes_query_parameters(dependant: Dependant) -> bool:
    """Whether an endpoint (or one of its dependencies) declares a query parameter."""
    return bool(dependant.query_params) or any(
        _takes_query_parameters(sub) for sub in dependant.dependencies
    )


async def no_unknown_query_parameters(request: Request, ctx: CtxDep) -> None:
    """Refuse a query parameter sent to a ``/v1/`` endpoint that takes none: a 422 on
    ``query.NAME``, after the key check (401 / 403 first, as for a bad body).

    Such a parameter was ignored without a word: ``POST /v1/routes?mode=async`` was solved
    synchronously, ``GET /v1/keys?limit=1`` listed every key. ``GET /v1/jobs`` checks its
    own parameters (:func:`api.routes.jobs.list_jobs`); the open endpoints (health, metrics,
    docs, demo) take whatever they are sent, as before.
    """
    if not request.query_params or not needs_key(request.url.path):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or _takes_query_parameters(route.dependant):
        return
    await check_key_first(request, ctx)
    name = sorted(request.query_params)[0]
    raise InputError(f"query.{name}", UNKNOWN_QUERY_REASON)


#: The attribute of a :func:`require` dependency that holds the role it lets through.
REQUIRED_ROLE = "required_role"

#: The app state's list of the routers it includes (:func:`endpoint_role` matches a request
#: against their routes before the app's own routing)
ROUTERS = "routers"


def endpoint_role(request: Request) -> Role | None:
    """The role the endpoint that ``request`` reaches requires (:func:`require`), or None
    (no such endpoint, or any valid key may call it)."""
    route = request.scope.get("route")
    if route is None:  # before the routing (the body middleware): match the request here
        routers: Sequence[APIRouter] = getattr(request.app.state, ROUTERS, ())
        candidates = (candidate for router in routers for candidate in router.routes)
        route = next((c for c in candidates if c.matches(request.scope)[0] == Match.FULL), None)
    pending = list(getattr(getattr(route, "dependant", None), "dependencies", ()))
    while pending:
        dependant = pending.pop()
        role = getattr(dependant.call, REQUIRED_ROLE, None)
        if isinstance(role, Role):
            return role
        pending.extend(dependant.dependencies)
    return None


def _lookup_key(ctx: ServiceContext, key_id: str) -> ApiKey | None:
    assert ctx.sessions is not None
    with ctx.sessions() as session:
        return session.get(ApiKey, key_id)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def check_role(principal: Principal, role: Role) -> Principal:
    """``principal`` if its key may use an endpoint of ``role`` (admin keys may), else 403."""
    if not allows(principal.role, role):
        raise HTTPException(
            403, f"this endpoint needs a key with role {role.value!r} (yours: {principal.role})"
        )
    return principal


async def authorise(request: Request, role: Role) -> Principal:
    """The caller of ``request`` if its ``X-API-Key`` may use an endpoint of ``role`` (401/403)."""
    principal = await get_principal(
        request, await get_ctx(request), request.headers.get(api_key_header.model.name)
    )
    return check_role(principal, role)


def require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through keys of ``role`` (and admin keys), else 403."""

    async def check(principal: PrincipalDep) -> Principal:
        return check_role(principal, role)

    check.__name__ = f"require_{role.value}"
    setattr(check, REQUIRED_ROLE, role)  # read by endpoint_role
    return check


OmsDep = Annotated[Principal, Depends(require(Role.OMS))]
PlannerDep = Annotated[Principal, Depends(require(Role.PLANNER))]
ResearcherDep = Annotated[Principal, Depends(require(Role.RESEARCHER))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]


async def idempotency_key(
    request: Request,
    ctx: CtxDep,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,  # an empty key was taken for none: its retries ran again
            max_length=255,
            description="retries with the same key and body get the first answer, not a new solve",
        ),
    ] = None,
) -> str | None:
    """The ``Idempotency-Key`` header; a retry of a request answered before (same key,
    endpoint and body) is answered here with the stored answer (:class:`~api.idempotency.
    Replayed`), before its body is checked: a body taken before a rule of the model was
    added is a 422 now, and its retry got that 422 instead of the answer it was given.

    Resolved after the endpoint's key and role check (its parameter comes after them), whose
    caller it reads from the request's state; without one (none checked yet) it answers
    nothing here, and the endpoint's own claim replays as before. The header given twice with
    different values is a 422 naming it (the first was taken, the second ignored), and so is
    one holding a NUL (PostgreSQL stores none: a 500 there) or of whitespace only (taken as a
    key of its own in process, while a server strips it to the empty key). The whitespace
    around a key is not part of it (HTTP servers strip it before the app sees it; in process
    it made ``" k-1"`` a key other than ``"k-1"``). Only the endpoints that take the header
    check it: the others ignore it, whatever it holds.
    """
    if len(idempotency_key_values(request)) > 1:
        raise InputError("header.Idempotency-Key", IDEMPOTENCY_KEY_TWICE)
    if key is not None:
        key = key.strip()
        problem = idempotency_key_problem(key)
        if problem is not None:
            raise InputError("header.Idempotency-Key", problem)
    principal = getattr(request.state, "principal", None)
    if key is None or not isinstance(principal, Principal):
        return key
    from api.idempotency import Replayed

    answer = await stored_answer_of(request, ctx, principal, key)
    if answer is not None:
        raise Replayed(answer)
    return key


async def stored_answer_of(
    request: Request, ctx: ServiceContext, principal: Principal, key: str
) -> JSONResponse | None:
    """The stored answer of a retry of ``request`` by ``principal`` with Idempotency-Key
    ``key`` (same endpoint and body, see :func:`api.idempotency.stored_answer`), else None."""
    from api.idempotency import stored_answer

    if ctx.sessions is None:
        return None

    def look_up() -> JSONResponse | None:
        with open_session(ctx) as session:
            return stored_answer(
                session,
                key_id=principal.account,
                idem_key=key,
                endpoint=f"{request.method} {request.url.path}",
                request_hash=str(getattr(request.state, "input_hash", "")),
                ttl_s=ctx.settings.idempotency_ttl_s,
            )

    return await run_in_threadpool(look_up)


async def replay_before_checks(request: Request, ctx: ServiceContext) -> JSONResponse | None:
    """For a check made before the routes (the body middleware's): the stored answer of a
    retry of ``request`` whose ``X-API-Key`` is valid and whose ``Idempotency-Key`` was used
    with the same endpoint and body (see :func:`idempotency_key`), else None: none for a key
    that endpoint refuses (empty, too long, given twice, holding a NUL, blank), never looked
    up."""
    key = request.headers.get("idempotency-key")
    if (
        not key
        or len(key) > 255
        or idempotency_key_problem(key.strip()) is not None
        or len(idempotency_key_values(request)) > 1
    ):
        return None
    key = key.strip()
    try:
        api_key = request.headers.get(api_key_header.model.name)
        principal = await get_principal(request, ctx, api_key)
    except HTTPException:  # no valid key: the check's own answer
        return None
    return await stored_answer_of(request, ctx, principal, key)


IdempotencyKeyHeader = Annotated[str | None, Depends(idempotency_key)]
