"""Health, readiness and Prometheus metrics (open: no key needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.db.session import current_revision, head_revision
from api.deps import CtxDep
from api.schemas.common import Health
from dispatchlab import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    """200 while the process serves requests."""
    return Health(status="ok", version=__version__)


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness",
    responses={503: {"model": Health, "description": "not ready"}},
)
def readyz(ctx: CtxDep) -> Response:
    """200 when the database answers, the schema is current and the job dispatcher runs."""
    checks: dict[str, str] = {}
    ok = ctx.ready
    checks["startup"] = "ok" if ctx.ready else "starting"
    if ctx.engine is not None:
        try:
            with ctx.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            current, head = current_revision(ctx.engine), head_revision()
            checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
            ok = ok and current == head
        except Exception as err:
            checks["database"] = f"error: {type(err).__name__}"
            ok = False
    else:
        checks["database"] = "not connected"
        ok = False
    for name, breaker in sorted(ctx.breakers.items()):
        checks[f"breaker:{name}"] = breaker.state.value
    body = Health(status="ok" if ok else "unavailable", checks=checks, version=__version__)
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(ctx: CtxDep) -> Response:
    """Request counts and latencies, jobs, fallbacks, breaker states."""
    if ctx.sessions is not None and ctx.jobs is not None:
        try:
            with ctx.sessions() as session:
                ctx.metrics.queue_depth.set(ctx.jobs.queue_depth(session))
        except Exception:  # metrics must answer even when the database does not
            pass
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
