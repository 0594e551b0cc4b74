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
