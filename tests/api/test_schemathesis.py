"""Property-based run over the OpenAPI spec: no generated request gets a 5xx."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.core.config import Settings
from api.core.security import Role
from api.keys import create_key
from api.main import create_app

DATA_DIR = Path(tempfile.mkdtemp(prefix="dispatchlab-schemathesis-"))
# schemathesis keeps its own lifespan of the app until exit: remove the files after that
atexit.register(shutil.rmtree, DATA_DIR, ignore_errors=True)
APP = create_app(
    Settings(
        data_dir=DATA_DIR,
        max_time_limit_s=1.0,  # every generated solve stays short
        max_sync_time_limit_s=1.0,
        max_replications=5,
        max_orders=200,
        job_workers=1,
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# explicit examples + random fuzzing; the exhaustive "coverage" phase is too slow for CI
schema.config.phases.update(phases=["examples", "fuzzing"])
_ADMIN: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def started_app() -> Iterator[None]:
    """Run the app's lifespan (database, jobs) around the module, with an admin key."""
    with TestClient(APP):
        with APP.state.ctx.sessions() as session:
            key, _ = create_key(session, role=Role.ADMIN, name="schemathesis")
        _ADMIN["X-API-Key"] = key
        yield


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_generated_request_gets_a_server_error(case: Any) -> None:
    response = case.call(headers=dict(_ADMIN))
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
