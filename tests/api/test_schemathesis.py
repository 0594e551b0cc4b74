"""Property-based run over the OpenAPI spec: no generated request gets a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import schemathesis.python.asgi as schemathesis_asgi
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.core.config import Settings
from api.core.security import Role
from api.keys import create_key
from api.main import create_app

#: the service's data dir until :func:`started_app` gives it one in pytest's temp dir (the
#: app reads it only as it starts)
UNSET_DATA_DIR = Path("unset-until-the-app-starts")
APP = create_app(
    Settings(
        data_dir=UNSET_DATA_DIR,
        max_time_limit_s=1.0,  # every generated solve stays short
        max_sync_time_limit_s=1.0,
        max_replications=5,
        max_orders=200,
        job_workers=1,
    )
)
# the spec the app serves at /openapi.json, read without a request: schemathesis.openapi.
# from_asgi would start the app's lifespan at import (and keep it until exit)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # the cases call the app in-process, as from_asgi's do
# explicit examples + random fuzzing; the exhaustive "coverage" phase is too slow for CI
schema.config.phases.update(phases=["examples", "fuzzing"])
_ADMIN: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def started_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run the app's lifespan (database, jobs) around the module, with an admin key.

    Its files go to pytest's temp dir. Schemathesis starts its own lifespan of the app, on an
    event loop thread of its own, and keeps both until the interpreter exits; they are ended
    with the module (its own exit hook's work, a private function), so that no thread of
    theirs is left in the test worker (a fork is refused while one runs: the forked-helper
    tests of the same worker failed).
    """
    ctx = APP.state.ctx
    data_dir = tmp_path_factory.mktemp("schemathesis")
    ctx.settings = ctx.settings.model_copy(update={"data_dir": data_dir})
    try:
        with TestClient(APP):
            with APP.state.ctx.sessions() as session:
                key, _ = create_key(session, role=Role.ADMIN, name="schemathesis")
            _ADMIN["X-API-Key"] = key
            yield
    finally:
        schemathesis_asgi._shutdown()


@schema.parametrize()
@settings(
    max_examples=10,  # per operation (25 took ~27 s of the default run)
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_generated_request_gets_a_server_error(case: Any) -> None:
    response = case.call(headers=dict(_ADMIN))
    assert response.status_code < 500, (case.method, case.path, response.text[:500])


def test_the_spec_under_test_is_the_one_served() -> None:
    assert TestClient(APP).get("/openapi.json").json() == schema.raw_schema


def test_the_service_files_are_in_pytest_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The data dir was a mkdtemp of the system's temp dir, made at import and left behind."""
    service = APP.state.ctx.settings
    assert service.data_dir.is_relative_to(tmp_path_factory.getbasetemp())
    if service.database_url is None:  # the SQLite file is there
        assert (service.data_dir / "dispatchlab.sqlite3").is_file()
    assert not UNSET_DATA_DIR.exists()
