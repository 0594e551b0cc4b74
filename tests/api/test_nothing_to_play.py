"""A day with nothing to play (no orders, no arrivals) is a 422 before any twin job is queued."""

from __future__ import annotations

from typing import Any

import pytest

from api.core.config import Settings
from tests.api.test_simulations import _twin_body

REASON = (
    "no orders and no arrivals expected over the horizon: the day has nothing to play (every "
    "KPI would be 0); give orders, or arrivals with an hourly_rate"
)


@pytest.mark.parametrize("path", ["/v1/simulations", "/v1/simulations/compare", "/v1/whatif"])
def test_a_scenario_without_orders_is_422_naming_its_orders(
    settings: Settings, make_client: Any, path: str
) -> None:
    """Until session 67 the job played every replication of an empty day and reported zeros
    (a what-if variant may still remove every order: ``test_simulations``'
    ``test_whatif_without_orders_shows_the_on_time_rate_as_n_a``)."""
    client = make_client(Settings(**{**settings.model_dump(), "auth_enabled": False}))
    body = _twin_body(path)
    body["scenario"]["orders"] = []
    body["scenario"].pop("arrivals", None)
    answer = client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [{"field": "scenario.orders", "reason": REASON}]
    assert client.get("/v1/jobs").json()["count"] == 0
