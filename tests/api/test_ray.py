"""Jobs on Ray: a local Ray instance is started, used and shut down."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from tests.api.conftest import app_of, wait_for


def test_jobs_run_on_ray_when_configured(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    pytest.importorskip("ray")
    on_ray = Settings(**{**settings.model_dump(), "job_executor": "ray", "auth_enabled": False})
    client = make_client(on_ray)
    ctx = app_of(client).state.ctx
    with ctx.sessions() as session:
        ok = ctx.jobs.submit(
            session,
            kind="test_sleep",
            payload={"seconds": 0.1, "value": 7},
            key_id=None,
            seed=None,
            input_hash="",
            timeout_s=120,
        ).id
        bad = ctx.jobs.submit(
            session,
            kind="test_crash",
            payload={},
            key_id=None,
            seed=None,
            input_hash="",
            timeout_s=120,
        ).id
    done = wait_for(
        lambda: client.get(f"/v1/jobs/{ok}").json(),
        lambda j: j["status"] in {"done", "failed"},
        timeout_s=120,
    )
    assert done["status"] == "done" and done["result"]["value"] == 7
    failed = wait_for(
        lambda: client.get(f"/v1/jobs/{bad}").json(),
        lambda j: j["status"] in {"done", "failed"},
        timeout_s=120,
    )
    assert failed["status"] == "failed" and "solver exploded" in failed["error"]
