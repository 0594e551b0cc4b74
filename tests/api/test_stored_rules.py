"""Jobs and plans stored before a rule of the model was added, read back and run after it.

Session 51 refused a SKU key of 0 or 201 characters (a node's ``inventory`` and
``safety_stock``, ``rules.restricted_skus``) and a per-SKU safety stock outside the
catalogue; rows written before hold them. Each test writes such a row straight into the
database, as the older version left it, then goes through a path that reads it: a queued
job run after the upgrade, a job or plan read back, a re-plan of the stored plan.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.db.models import Job, PlanRecord
from api.examples import ALLOCATION_EXAMPLE, PLAN_EXAMPLE, REOPTIMISE_EXAMPLE, WHATIF_EXAMPLE
from api.jobs.service import event, new_id
from tests.api.conftest import MadeOnce, app_of, make_once, wait_for

FINISHED = {"done", "failed", "cancelled"}
LONG_SKU = "s" * 201

#: the end of the reason of a job queued before each rule
SKU_KEYS_JOB = (
    "(the job was queued before SKU keys had to be 1 to 200 characters: send the request "
    "again with SKU keys of 1 to 200 characters)"
)
SAFETY_STOCK_JOB = (
    "(the job was queued before a per-SKU safety stock had to name a SKU of the catalogue: "
    "send the request again whose per-SKU safety stocks name SKUs of the catalogue)"
)
BASE_VARIANT_JOB = (
    "(the job was queued before variants refused the name 'base': send the request again "
    "with that variant renamed (its modifiers apply to the base))"
)
SKILL_IDS_JOB = (
    "(the job was queued before skills and capacity dimensions became ids (1 to 200 "
    "characters, not blank, no control character): send the request again whose skills and "
    "capacity_dims are such ids)"
)
#: the end of the reason of a re-plan of a plan stored before each rule
SKILL_IDS_PLAN = (
    "(the plan was stored before skills and capacity dimensions became ids (1 to 200 "
    "characters, not blank, no control character): it can be read back, not re-planned; "
    "make a new plan whose skills and capacity_dims are such ids)"
)
SKU_KEYS_PLAN = (
    "(the plan was stored before SKU keys had to be 1 to 200 characters: it can be read "
    "back, not re-planned; make a new plan with SKU keys of 1 to 200 characters)"
)


def _plan_body() -> dict[str, Any]:
    body = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
    body["routing"]["time_limit_s"] = 0.3
    body["evaluation"]["replications"] = 2
    return body


def _scenario() -> dict[str, Any]:
    return _plan_body()["scenario"]


def _empty_key(scenario: dict[str, Any]) -> dict[str, Any]:
    """A node's stock of 1 unit under ``""``, without a catalogue (else it is unknown)."""
    out = copy.deepcopy(scenario)
    out["skus"] = []
    out["nodes"][0]["inventory"][""] = 1
    return out


def _long_key(scenario: dict[str, Any]) -> dict[str, Any]:
    """A node's safety stock of a 201-character SKU, without a catalogue."""
    out = copy.deepcopy(scenario)
    out["skus"] = []
    out["nodes"][0]["safety_stock"] = {LONG_SKU: 1}
    return out


def _safety_stock_typo(scenario: dict[str, Any]) -> dict[str, Any]:
    """A per-SKU safety stock of ``teaa``, outside the catalogue (tea, cups)."""
    out = copy.deepcopy(scenario)
    out["nodes"][0]["safety_stock"] = {"teaa": 1}
    return out


def _blank_skill(scenario: dict[str, Any]) -> dict[str, Any]:
    """The first courier's skill ``" "`` (skills are ids since session 78)."""
    out = copy.deepcopy(scenario)
    out["vehicles"][0]["skills"] = [" "]
    return out


def _empty_required_skill(scenario: dict[str, Any]) -> dict[str, Any]:
    """The first order requiring skill ``""``."""
    out = copy.deepcopy(scenario)
    out["orders"][0]["required_skills"] = [""]
    return out


def _blank_dimension(scenario: dict[str, Any]) -> dict[str, Any]:
    """One capacity dimension, named ``" "`` (capacity_dims are ids since session 78)."""
    out = copy.deepcopy(scenario)
    out["capacity_dims"] = [" "]
    return out


def _routes(scenario: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    return {"scenario": scenario(_scenario()), "params": {"time_limit_s": 1, "seed": 1}}


def _plans(scenario: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    return {**_plan_body(), "scenario": scenario(_scenario())}


def _plans_rules() -> dict[str, Any]:
    """A plan whose allocation rules restrict a 201-character SKU to a region."""
    return {**_plan_body(), "rules": {"restricted_skus": {LONG_SKU: ["north"]}}}


def _simulations() -> dict[str, Any]:
    return {"scenario": _empty_key(_scenario()), "replications": 2, "seed": 1}


def _whatif() -> dict[str, Any]:
    body = copy.deepcopy(WHATIF_EXAMPLE["small"]["value"])
    return {**body, "scenario": _safety_stock_typo(_scenario()), "replications": 2}


def _whatif_named_base() -> dict[str, Any]:
    """A variant named base: until session 64 it replaced the baseline."""
    body = copy.deepcopy(WHATIF_EXAMPLE["small"]["value"])
    body["variants"][0]["name"] = "base"
    return {**body, "replications": 2}


def _policies() -> dict[str, Any]:
    return {"scenario": _empty_key(_scenario()), "policies": ["insertion"], "seeds": [1]}


def _allocations(where: str) -> dict[str, Any]:
    body = copy.deepcopy(ALLOCATION_EXAMPLE["online"]["value"])
    if where == "inventory":
        body["request"]["nodes"][0]["inventory"][""] = 1
    else:
        body["request"]["rules"] = {"restricted_skus": {"": ["north"]}}
    return body


def _queue_as_stored(client: TestClient, kind: str, payload: dict[str, Any]) -> str:
    """A ``kind`` job queued with ``payload`` as an older version wrote its row; its id."""
    ctx = app_of(client).state.ctx
    job_id = new_id()
    with ctx.sessions() as session:
        session.add(
            Job(
                id=job_id,
                kind=kind,
                mode="async",
                status="queued",
                payload=payload,
                seed=1,
                timeout_s=120,
                events=[event("queued")],
            )
        )
        session.commit()
    ctx.jobs.wake()
    return job_id


def _finished(client: TestClient, keys: dict[str, dict[str, str]], job_id: str) -> Any:
    return wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).json(),
        lambda j: j["status"] in FINISHED,
        timeout_s=120,
    )


@pytest.mark.parametrize(
    ("kind", "endpoint", "body", "predates"),
    [
        ("routes", "/v1/routes", lambda: _routes(_empty_key), SKU_KEYS_JOB),
        ("routes", "/v1/routes", lambda: _routes(_long_key), SKU_KEYS_JOB),
        ("routes", "/v1/routes", lambda: _routes(_blank_skill), SKILL_IDS_JOB),
        ("plans", "/v1/plans", lambda: _plans(_blank_dimension), SKILL_IDS_JOB),
        ("plans", "/v1/plans", lambda: _plans(_safety_stock_typo), SAFETY_STOCK_JOB),
        ("plans", "/v1/plans", _plans_rules, SKU_KEYS_JOB),
        ("allocations", "/v1/allocations", lambda: _allocations("inventory"), SKU_KEYS_JOB),
        ("allocations", "/v1/allocations", lambda: _allocations("rules"), SKU_KEYS_JOB),
        ("simulations", "/v1/simulations", _simulations, SKU_KEYS_JOB),
        ("whatif", "/v1/whatif", _whatif, SAFETY_STOCK_JOB),
        ("whatif", "/v1/whatif", _whatif_named_base, BASE_VARIANT_JOB),
        ("policies", "/v1/policies/evaluate", _policies, SKU_KEYS_JOB),
    ],
)
def test_a_job_queued_before_a_rule_fails_naming_the_field_as_a_new_request_is_refused(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    kind: str,
    endpoint: str,
    body: Callable[[], dict[str, Any]],
    predates: str,
) -> None:
    """It failed as a solver crash, ``solver error: pydantic_core._pydantic_core.
    ValidationError: 1 validation error for RoutesCreate`` and pydantic's multi-line text with
    its URL, after a fallback that failed alike (``the fallback failed too: ...``): now bad
    input, with the field and reason of the 422 the same request gets today, saying why."""
    payload = body()
    fresh = client.post(endpoint, json=payload, headers=keys["admin"])
    assert fresh.status_code == 422, fresh.text
    [problem] = fresh.json()["detail"]
    job = _finished(client, keys, _queue_as_stored(client, kind, payload))
    assert job["status"] == "failed" and job["fallback"] is False, job
    assert job["error"] == f"bad input: {problem['field']}: {problem['reason']} {predates}"
    assert job["events"][-1]["message"] == "bad input", job["events"]
    assert not any("fallback" in e["message"] for e in job["events"]), job["events"]


def test_a_job_done_before_a_rule_reads_back_as_stored(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Reading a job never validates its request: a job done before the rules, its request
    breaking them, is listed and read back with its result as stored."""
    ctx = app_of(client).state.ctx
    job_id = new_id()
    result = {"status": "feasible", "plan": {"routes": []}, "note": "as stored"}
    with ctx.sessions() as session:
        session.add(
            Job(
                id=job_id,
                kind="routes",
                status="done",
                payload=_routes(_empty_key),
                result=result,
                progress=1.0,
                attempts=1,
                events=[event("queued"), event("done")],
                finished_at=dt.datetime.now(dt.UTC),
            )
        )
        session.commit()
    got = client.get(f"/v1/jobs/{job_id}", headers=keys["admin"])
    assert got.status_code == 200, got.text
    assert got.json()["status"] == "done" and got.json()["result"] == result
    listed = client.get("/v1/jobs", headers=keys["admin"])
    assert listed.status_code == 200, listed.text
    assert [j["id"] for j in listed.json()["data"]] == [job_id]


# ------------------------------------------------------------------ stored plans


def _make(client: TestClient, keys: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A plan made (and stored) by POST /v1/plans."""
    answer = client.post("/v1/plans", json=_plan_body(), headers=keys["oms"])
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture(scope="module")
def made_once(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> MadeOnce:
    """The plan of ``made`` for this module's SQLite tests, made once (per test it was most
    of each set-up: 0.5-0.7 s); each test's service starts on a copy of its database."""
    return make_once(tmp_path_factory.mktemp("made"), migrated_sqlite, _make)


def _stored_differently(
    client: TestClient, plan_id: str, change: Callable[[PlanRecord], None]
) -> None:
    """The stored plan ``plan_id`` as an older version stored it."""
    ctx = app_of(client).state.ctx
    with ctx.sessions() as session:
        record = session.get(PlanRecord, plan_id)
        assert record is not None
        change(record)
        session.commit()


def _long_key_in_its_scenario(record: PlanRecord) -> None:
    record.scenario = _long_key(record.scenario)


def _blank_skill_in_its_scenario(record: PlanRecord) -> None:
    record.scenario = _blank_skill(record.scenario)


def _empty_required_skill_in_its_scenario(record: PlanRecord) -> None:
    record.scenario = _empty_required_skill(record.scenario)


def _blank_dimension_in_its_scenario(record: PlanRecord) -> None:
    record.scenario = _blank_dimension(record.scenario)


def _empty_key_in_its_rules(record: PlanRecord) -> None:
    """The plan's allocation rules restricting SKU ``""`` (its re-plans allocate under them)."""
    record.params = {**record.params, "rules": {"restricted_skus": {"": ["north"]}}}


def _reopt_body(mode: str) -> dict[str, Any]:
    body = copy.deepcopy(REOPTIMISE_EXAMPLE["late-order"]["value"])
    body["routing"]["time_limit_s"] = 0.3
    return {**body, "mode": mode}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (
            _long_key_in_its_scenario,
            f"node 'dc-1' of the stored plan (its scenario's nodes.0.safety_stock.{LONG_SKU}): "
            f"Key should have at most 200 characters {SKU_KEYS_PLAN}",
        ),
        (
            _empty_key_in_its_rules,
            "the stored plan (its allocation rules' restricted_skus.): Key should have at "
            f"least 1 character {SKU_KEYS_PLAN}",
        ),
        (
            _blank_skill_in_its_scenario,
            "vehicle 'courier-1' of the stored plan (its scenario's vehicles.0.skills.0): "
            f"must not be blank (whitespace only) {SKILL_IDS_PLAN}",
        ),
        (
            _empty_required_skill_in_its_scenario,
            "order 'o1' of the stored plan (its scenario's orders.0.required_skills.0): "
            f"String should have at least 1 character {SKILL_IDS_PLAN}",
        ),
        (
            _blank_dimension_in_its_scenario,
            "the stored plan (its scenario's capacity_dims.0): must not be blank (whitespace "
            f"only) {SKILL_IDS_PLAN}",
        ),
    ],
)
def test_a_plan_stored_before_a_rule_reads_back_and_its_replan_is_a_422_saying_so(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    made: dict[str, Any],
    corrupt: Callable[[PlanRecord], None],
    reason: str,
    mode: str,
) -> None:
    """Read back as stored; a re-plan is one 422 on the stored plan naming the field and
    saying the plan predates the rule, in either mode, before anything is queued. Stored
    allocation rules breaking it were not looked at before the re-plan ran: a synchronous
    re-plan was a 422 on ``restricted_skus.``, a field no request has, and a queued one a
    job failed as a solver crash (pydantic's text) after a 202."""
    _stored_differently(client, made["plan_id"], corrupt)
    got = client.get(f"/v1/plans/{made['plan_id']}", headers=keys["oms"])
    assert got.status_code == 200, got.text
    assert got.json()["result"]["plan"] == made["plan"]
    answer = client.post(
        f"/v1/plans/{made['plan_id']}/reoptimise", json=_reopt_body(mode), headers=keys["oms"]
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [{"field": "path.plan_id", "reason": reason}]


@pytest.mark.parametrize(
    ("parent", "reason"),
    [
        (
            {"scenario": _empty_key},
            "the stored plan (its scenario's nodes.0.inventory.): Key should have at least 1 "
            f"character {SKU_KEYS_PLAN}",
        ),
        (
            {"rules": {"restricted_skus": {"": ["north"]}}},
            "the stored plan (its allocation rules' restricted_skus.): Key should have at "
            f"least 1 character {SKU_KEYS_PLAN}",
        ),
        (
            {"scenario": _blank_skill},
            "the stored plan (its scenario's vehicles.0.skills.0): must not be blank "
            f"(whitespace only) {SKILL_IDS_PLAN}",
        ),
    ],
)
def test_a_replan_queued_before_a_rule_fails_naming_the_stored_plan(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    made: dict[str, Any],
    parent: dict[str, Any],
    reason: str,
) -> None:
    """A re-plan job queued before the upgrade, its copy of the stored plan breaking a rule
    added since: the same words as the 422 of a re-plan asked now, as bad input (it failed
    as a solver crash, pydantic's text, its fallback failing alike)."""
    with app_of(client).state.ctx.sessions() as session:
        record = session.get(PlanRecord, made["plan_id"])
        assert record is not None
        stored = {
            "id": record.id,
            "scenario": record.scenario,
            "plan": record.plan,
            "completed": [],
            "costs": None,
            "rules": None,
        }
    for key, value in parent.items():
        stored[key] = value(stored[key]) if callable(value) else value
    payload = {"request": _reopt_body("async"), "parent": stored}
    job = _finished(client, keys, _queue_as_stored(client, "reoptimise", payload))
    assert job["status"] == "failed" and job["fallback"] is False, job
    assert job["error"] == f"bad input: path.plan_id: {reason}"
    assert not any("fallback" in e["message"] for e in job["events"]), job["events"]


def test_the_newer_rules_are_told_from_other_errors() -> None:
    """Only the errors of the rules added since rows were stored say the row predates them."""
    from scenarios.geo import BLANK_REASON, CONTROL_CHARACTERS_REASON
    from scenarios.saved import (
        CONTROL_CHARACTERS_RULE,
        SAFETY_STOCK_SKU_RULE,
        SKILL_ID_RULE,
        SKU_KEY_LENGTH_RULE,
        newer_rule,
    )

    assert newer_rule("scenario.nodes.0.inventory.", "Key should have at least 1 character") is (
        SKU_KEY_LENGTH_RULE
    )
    assert newer_rule("rules.restricted_skus.a.b", "Key should have at most 200 characters") is (
        SKU_KEY_LENGTH_RULE
    )
    assert newer_rule("nodes.0.safety_stock.a.b", "unknown SKU 'a.b'") is SAFETY_STOCK_SKU_RULE
    # an unknown SKU in a node's stock or an order line was refused before session 51
    assert newer_rule("nodes.0.inventory.teaa", "unknown SKU 'teaa'") is None
    assert newer_rule("orders.0.lines.0.sku", "unknown SKU 'teaa'") is None
    # skills and capacity dimensions are ids since session 78; other ids always were
    for field in ("vehicles.1.skills.0", "orders.2.required_skills.3", "capacity_dims.0"):
        for reason in (
            "String should have at least 1 character",
            "String should have at most 200 characters",
            BLANK_REASON,
            CONTROL_CHARACTERS_REASON,
        ):
            assert newer_rule(field, reason) is SKILL_ID_RULE, (field, reason)
    assert newer_rule("orders.0.id", "String should have at least 1 character") is None
    assert newer_rule("vehicles.0.skills", "Input should be a valid list") is None
    assert newer_rule("orders.0.id", CONTROL_CHARACTERS_REASON) is CONTROL_CHARACTERS_RULE


# ------------------------------------------------------------------ idempotent retries


def _answered_before(
    client: TestClient, headers: dict[str, str], endpoint: str, raw: bytes, answer: Any
) -> None:
    """The idempotency record of ``raw`` POSTed to ``endpoint`` with ``headers``, answered
    (``answer``: status, body, Location) by an older version that took the body."""
    from api.core.security import split_key
    from api.db.models import IdempotencyRecord

    status, body, location = answer
    with app_of(client).state.ctx.sessions() as session:
        session.add(
            IdempotencyRecord(
                key_id=split_key(headers["X-API-Key"]),
                idem_key=headers["Idempotency-Key"],
                endpoint=f"POST {endpoint}",
                request_hash=hashlib.sha256(raw).hexdigest(),
                state="done",
                status_code=status,
                response={**body, "__location__": location} if location else body,
            )
        )
        session.commit()


def _repeated_key() -> bytes:
    """An allocation body whose node's inventory gives ``tea`` twice (3, then 1 unit)."""
    raw = json.dumps(ALLOCATION_EXAMPLE["online"]["value"]).encode()
    return raw.replace(b'"tea": 50', b'"tea": 3, "tea": 50', 1)


@pytest.mark.parametrize(
    ("endpoint", "body", "answer"),
    [
        (
            "/v1/plans",
            lambda: _plans(_empty_key),
            (200, {"plan_id": "p-before", "status": "feasible"}, None),
        ),
        (
            "/v1/routes",
            lambda: {**_routes(_long_key), "mode": "async"},
            (202, {"job_id": "j-before", "status": "queued"}, "/v1/jobs/j-before"),
        ),
        (
            "/v1/allocations",
            lambda: _allocations("rules"),
            (200, {"status": "optimal", "note": "as answered"}, None),
        ),
        (  # refused before the routes (the body middleware), 1 unit of tea before
            "/v1/allocations",
            _repeated_key,
            (200, {"status": "optimal", "note": "as answered"}, None),
        ),
    ],
)
def test_a_retry_of_a_request_answered_before_a_rule_gets_its_answer(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    endpoint: str,
    body: Callable[[], dict[str, Any] | bytes],
    answer: tuple[int, dict[str, Any], str | None],
) -> None:
    """A request answered before session 51 (its plan stored, its job queued), retried after
    it with its Idempotency-Key: the retry got the 422 its body gets now, as if the first had
    not been answered; it gets the stored answer, as any retry does (a key's owner only)."""
    made = body()
    raw = made if isinstance(made, bytes) else json.dumps(made).encode()
    headers = {**keys["admin"], "Idempotency-Key": "k-1", "Content-Type": "application/json"}
    _answered_before(client, headers, endpoint, raw, answer)
    retry = client.post(endpoint, content=raw, headers=headers)
    status, stored, location = answer
    assert retry.status_code == status, retry.text
    assert retry.json() == stored
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers.get("location") == location
    # a new request with that body (another Idempotency-Key, or another API key) is the 422
    # it is now
    headers["Idempotency-Key"] = "k-2"
    fresh = client.post(endpoint, content=raw, headers=headers)
    assert fresh.status_code == 422, fresh.text
    other = {**headers, **keys["oms"], "Idempotency-Key": "k-1"}
    assert client.post(endpoint, content=raw, headers=other).status_code == 422


def test_a_retry_of_a_replan_whose_stored_plan_predates_a_rule_gets_its_answer(
    client: TestClient, keys: dict[str, dict[str, str]], made: dict[str, Any]
) -> None:
    """The re-plan was answered; its plan, stored before a rule, breaks it: the retry was the
    422 of a new re-plan of that plan, though the first one had made and stored its plan."""
    url = f"/v1/plans/{made['plan_id']}/reoptimise"
    headers = {**keys["oms"], "Idempotency-Key": "replan-1"}
    first = client.post(url, json=_reopt_body("sync"), headers=headers)
    assert first.status_code == 200, first.text
    _stored_differently(client, made["plan_id"], _long_key_in_its_scenario)
    retry = client.post(url, json=_reopt_body("sync"), headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    other = client.post(url, json=_reopt_body("sync"), headers=keys["oms"])
    assert other.status_code == 422, other.text
