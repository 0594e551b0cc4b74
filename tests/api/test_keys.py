"""API keys and their accounts: rotation keeps an OMS's jobs, plans and Idempotency-Keys."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from api.context import ServiceContext
from api.core.config import Settings
from api.core.security import Role, generate_key, hash_key, split_key
from api.db.models import ApiKey, AuditEntry
from api.db.session import current_revision, head_revision, make_engine, migrate
from api.examples import PLAN_EXAMPLE, REOPTIMISE_EXAMPLE
from api.keys import create_key
from api.main import create_app
from tests.api.conftest import app_of, registry_with_test_kinds


def _ctx(client: TestClient) -> ServiceContext:
    ctx: ServiceContext = app_of(client).state.ctx
    return ctx


def _plan_body() -> dict[str, Any]:
    body = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
    body["evaluation"]["replications"] = 0
    body["routing"]["time_limit_s"] = 0.3
    return body


def _reopt_body() -> dict[str, Any]:
    body = copy.deepcopy(REOPTIMISE_EXAMPLE["late-order"]["value"])
    body["routing"]["time_limit_s"] = 0.3
    return body


def _new_key(client: TestClient, admin: dict[str, str], role: str = "oms") -> dict[str, Any]:
    made = client.post("/v1/keys", json={"role": role, "name": "oms-eu"}, headers=admin)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    assert body["account_id"] == body["id"]  # a new key is its own account
    return body


def test_a_rotated_key_keeps_its_accounts_plans_jobs_and_idempotency_keys(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Jobs, plans and idempotency records belonged to the key that made them: rotating an
    OMS's key (a new key, the old revoked) lost the day's plans. The new key of a rotation
    acts for the old key's account: it reads and re-plans them, replays their
    Idempotency-Keys and lists the jobs; another account's key still sees none of them, and
    the audit log records which key made each call."""
    old = _new_key(client, keys["admin"])
    old_headers = {"X-API-Key": old["key"]}
    first = client.post(
        "/v1/plans", json=_plan_body(), headers={**old_headers, "Idempotency-Key": "day-1"}
    )
    assert first.status_code == 200, first.text
    plan_id, job_id = first.json()["plan_id"], first.json()["job_id"]

    rotated = client.post(f"/v1/keys/{old['id']}/rotate", headers=keys["admin"])
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["id"] != old["id"] and split_key(new["key"]) == new["id"]
    assert new["account_id"] == old["id"] and new["role"] == "oms" and new["name"] == "oms-eu"
    assert new["rotated"]["id"] == old["id"] and new["rotated"]["revoked_at"] is not None
    new_headers = {"X-API-Key": new["key"]}

    assert client.get("/v1/jobs", headers=old_headers).status_code == 401  # revoked at once
    assert client.get(f"/v1/plans/{plan_id}", headers=new_headers).status_code == 200
    assert client.get(f"/v1/jobs/{job_id}", headers=new_headers).status_code == 200
    listed = client.get("/v1/jobs", headers=new_headers).json()
    assert [j["id"] for j in listed["data"]] == [job_id]
    again = client.post(
        "/v1/plans", json=_plan_body(), headers={**new_headers, "Idempotency-Key": "day-1"}
    )
    assert again.status_code == 200, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["plan_id"] == plan_id
    replan = client.post(f"/v1/plans/{plan_id}/reoptimise", json=_reopt_body(), headers=new_headers)
    assert replan.status_code == 200, replan.text
    assert client.get(f"/v1/plans/{plan_id}", headers=keys["oms"]).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}", headers=keys["oms"]).status_code == 404

    ctx = _ctx(client)
    assert ctx.audit is not None and ctx.sessions is not None
    ctx.audit.flush()
    with ctx.sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.path.like("/v1/plans%")))
        callers = [(r.key_id, r.status_code) for r in rows if r.method == "POST"]
    assert callers == [(old["id"], 200), (new["id"], 200), (new["id"], 200)]


def test_a_key_rotated_with_a_grace_period_works_until_it_ends(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """``grace_s``: the old key keeps working (both keys, one account) until its
    ``expires_at``; from then on it is refused, and no longer listed."""
    old = _new_key(client, keys["admin"])
    rotated = client.post(
        f"/v1/keys/{old['id']}/rotate", json={"grace_s": 3600}, headers=keys["admin"]
    )
    assert rotated.status_code == 201, rotated.text
    ending = rotated.json()["rotated"]
    assert ending["revoked_at"] is None and ending["expires_at"] is not None
    expires = dt.datetime.fromisoformat(ending["expires_at"])
    assert (
        dt.timedelta(seconds=3500) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=3600)
    )
    assert client.get("/v1/jobs", headers={"X-API-Key": old["key"]}).status_code == 200
    assert client.get("/v1/jobs", headers={"X-API-Key": rotated.json()["key"]}).status_code == 200
    listed = client.get("/v1/keys", headers=keys["admin"]).json()["data"]
    assert {k["id"]: k["account_id"] for k in listed}[old["id"]] == old["id"]

    ctx = _ctx(client)
    assert ctx.sessions is not None
    with ctx.sessions() as session:  # its grace period is over
        row = session.get(ApiKey, old["id"])
        assert row is not None
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.commit()
    ctx.key_cache.clear()
    assert client.get("/v1/jobs", headers={"X-API-Key": old["key"]}).status_code == 401
    listed = client.get("/v1/keys", headers=keys["admin"]).json()["data"]
    assert old["id"] not in {k["id"] for k in listed}
    again = client.post(f"/v1/keys/{old['id']}/rotate", headers=keys["admin"])
    assert again.status_code == 409, again.text
    assert "expired" in again.json()["message"]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("body", "status"),
    [({"grace_s": -1}, 422), ({"grace_s": 7 * 86_400 + 1}, 422), ({"grace": 5}, 422)],
)
def test_a_rotation_with_a_bad_grace_period_is_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], body: dict[str, Any], status: int
) -> None:
    key_id = split_key(keys["planner"]["X-API-Key"])
    answer = client.post(f"/v1/keys/{key_id}/rotate", json=body, headers=keys["admin"])
    assert answer.status_code == status, answer.text
    [detail] = answer.json()["detail"]
    assert detail["field"].startswith(("body.grace", "grace")), detail


def test_rotating_an_unknown_or_revoked_key_is_refused_and_only_admins_rotate(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    assert client.post("/v1/keys/nope/rotate", headers=keys["admin"]).status_code == 404
    key_id = split_key(keys["oms"]["X-API-Key"])
    assert client.post(f"/v1/keys/{key_id}/rotate", headers=keys["oms"]).status_code == 403
    assert client.delete(f"/v1/keys/{key_id}", headers=keys["admin"]).status_code == 200
    answer = client.post(f"/v1/keys/{key_id}/rotate", headers=keys["admin"])
    assert answer.status_code == 409, answer.text
    assert answer.json()["message"] == (
        f"key {key_id!r} is revoked: rotate a live key of its account ({key_id!r}), or make "
        "a new key"
    )


def test_keys_rotate_prints_the_new_key_alone_on_its_last_line(tmp_path: Path) -> None:
    from dispatchlab.cli import app

    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--role", "oms", "--data-dir", str(tmp_path)])
    assert made.exit_code == 0, made.output
    old_id = split_key(made.stdout.strip().splitlines()[-1])
    assert old_id is not None
    rotated = runner.invoke(app, ["keys", "rotate", old_id, "--data-dir", str(tmp_path)])
    assert rotated.exit_code == 0, rotated.output
    new_id = split_key(rotated.stdout.strip().splitlines()[-1])
    assert new_id is not None and new_id != old_id
    assert f"replaces key {old_id} (revoked now)" in rotated.stderr
    listed = runner.invoke(app, ["keys", "list", "--data-dir", str(tmp_path)])
    rows = [line for line in listed.stdout.splitlines() if line.startswith("│")]
    assert not [row for row in rows if row.startswith(f"│ {old_id}")], rows  # revoked
    [row] = [row for row in rows if row.startswith(f"│ {new_id}")]
    assert old_id in row  # its account
    for args, reason in [
        ([old_id], "is revoked"),
        (["nope"], "no key 'nope'"),
        ([new_id, "--grace-s", "-5"], "--grace-s"),
    ]:
        bad = runner.invoke(app, ["keys", "rotate", *args, "--data-dir", str(tmp_path)])
        assert bad.exit_code == 2, bad.output
        assert reason in bad.stderr


def test_keys_made_before_accounts_are_their_own_account_after_the_migration(
    settings: Settings,
) -> None:
    """Upgraded from 0007: a key already stored is its own account (``account_id`` = its
    id), so its stored plan stays its own, and a key rotated from it reads the plan."""
    url = settings.resolved_database_url()
    engine = make_engine(url)
    key, key_id = generate_key()
    try:
        migrate(engine, "0007")
        now = dt.datetime.now(dt.UTC)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, role, key_hash, created_at) "
                    "VALUES (:id, 'oms-eu', 'oms', :hash, :at)"
                ),
                {"id": key_id, "hash": hash_key(key), "at": now},
            )
            conn.execute(
                text(
                    "INSERT INTO plans (id, key_id, status, fallback, scenario, params, plan, "
                    "body, created_at) VALUES ('p1', :key, 'feasible', false, '{}', '{}', "
                    "'{}', '{\"status\": \"feasible\"}', :at)"
                ),
                {"key": key_id, "at": now},
            )
        migrate(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, account_id FROM api_keys")).all()
        accounts = {str(row[0]): str(row[1]) for row in rows}
        assert accounts == {key_id: key_id}
    finally:
        engine.dispose()
    with TestClient(create_app(settings, registry=registry_with_test_kinds())) as client:
        ctx = _ctx(client)
        assert ctx.sessions is not None
        with ctx.sessions() as session:
            admin, _ = create_key(session, role=Role.ADMIN)
        assert client.get("/v1/plans/p1", headers={"X-API-Key": key}).status_code == 200
        rotated = client.post(f"/v1/keys/{key_id}/rotate", headers={"X-API-Key": admin})
        assert rotated.status_code == 201, rotated.text
        new = {"X-API-Key": rotated.json()["key"]}
        answer = client.get("/v1/plans/p1", headers=new)
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"] == {"status": "feasible"}
        assert client.get("/v1/plans/p1", headers={"X-API-Key": key}).status_code == 401
