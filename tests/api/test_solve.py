"""api.solve: helpers every endpoint shares."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from api.context import ServiceContext
from api.core.metrics import Metrics
from api.solve import SolveOutcome, engine_fallback_reason


def _engine_fallbacks(metrics: Metrics, endpoint: str) -> float:
    value = metrics.registry.get_sample_value(
        "dispatchlab_fallback_plans_total", {"endpoint": endpoint, "reason": "engine"}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("outcome", "reason", "counted"),
    [
        (SolveOutcome(result={"status": "feasible"}, job_id="j"), None, 0.0),
        # the engine fell back on its own: counted under the endpoint
        (SolveOutcome(result={"fallback_reason": "pyvrp crashed"}, job_id="j"), "pyvrp crashed", 1),
        # the service fell back (already counted where it did): its reason first
        (
            SolveOutcome(
                result={"fallback_reason": "engine's"},
                job_id="j",
                fallback=True,
                fallback_reason="timeout",
            ),
            "timeout",
            0.0,
        ),
    ],
)
def test_engine_fallback_reason_is_the_services_else_the_engines_and_counted_once(
    outcome: SolveOutcome, reason: str | None, counted: float
) -> None:
    metrics = Metrics()
    ctx = cast(ServiceContext, cast(Any, SimpleNamespace(metrics=metrics)))
    assert engine_fallback_reason(ctx, outcome, "routes") == reason
    assert _engine_fallbacks(metrics, "routes") == counted
    assert _engine_fallbacks(metrics, "plans") == 0.0


def test_a_request_cut_by_the_servers_shutdown_is_answered_503_with_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # uvicorn cancels the requests still running when its graceful shutdown's timeout
    # (10 s) ends: the CancelledError reached uvicorn, which logged a traceback and sent
    # its bare 500 "Internal Server Error"
    import asyncio
    import json
    import logging

    from api.core.config import Settings
    from api.core.middleware import ServiceMiddleware

    settings = Settings(auth_enabled=False, retry_after_s=7)
    ctx = cast(
        ServiceContext, cast(Any, SimpleNamespace(settings=settings, metrics=Metrics(), audit=None))
    )
    entered = asyncio.Event()

    async def solving(scope: Any, receive: Any, send: Any) -> None:
        scope["state"]["audit_job_id"] = "job-1"  # as note_audit does
        entered.set()
        await asyncio.sleep(3600)  # a synchronous solve

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def main() -> None:
        scope = {"type": "http", "method": "POST", "path": "/v1/routes", "headers": []}
        task = asyncio.ensure_future(ServiceMiddleware(solving, ctx)(scope, receive, send))
        await entered.wait()
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")  # as uvicorn
        await task  # answered, not re-raised (uvicorn would log it with a traceback)

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert sent[0]["status"] == 503
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    assert headers["retry-after"] == "7"
    assert headers["connection"] == "close"
    body = json.loads(sent[1]["body"])
    assert set(body) == {"message", "detail"}  # the API's error format
    assert "shutting down" in body["message"] and "job job-1" in body["message"]
    lines = [r for r in caplog.records if r.name == "api.core.middleware"]
    assert len(lines) == 1 and lines[0].exc_info is None, lines
    assert "POST /v1/routes (job job-1, marked failed)" in lines[0].getMessage()
    rejected = ctx.metrics.registry.get_sample_value(
        "dispatchlab_rejections_total", {"reason": "shutting_down"}
    )
    assert rejected == 1.0
