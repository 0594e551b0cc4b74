"""The service builds its routes at start-up, not on a client's first request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.main import build_routes

from .conftest import app_of


def test_the_first_request_after_start_up_builds_no_route(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    """FastAPI builds a route's dependencies and body validators on the first request that
    reaches it (and every route matched before it): 0.15 s of CPU on a new process's first
    ``GET /healthz`` on a slow machine, paid by an OMS's first call after a restart. The
    lifespan now builds every route before the service is ready: the first requests build
    none."""
    client = make_client(settings)
    built: list[Any] = []
    real = fastapi.routing.get_dependant

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(kwargs.get("path"))
        return real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "get_dependant", counting)
    assert client.get("/healthz").status_code == 200
    # a solve endpoint, matched after the others of its router (refused: no key)
    assert client.post("/v1/allocations", json={}).status_code == 401
    assert client.get("/v1/jobs").status_code == 401
    assert built == []
    assert build_routes(app_of(client)) > 10  # built already: nothing more to build
    assert built == []
