"""Keys and roles, limits, error shapes, health, metrics, migrations, the audit log, the CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import event, inspect, select
from typer.testing import CliRunner

from api.context import ServiceContext
from api.core.breaker import BreakerState, CircuitBreaker
from api.core.config import Settings
from api.core.middleware import _NUL_ESCAPE, nul_string_field
from api.core.security import Role, hash_key, split_key
from api.db.models import ApiKey, AuditEntry, Base
from api.db.session import current_revision, downgrade, head_revision, make_engine, migrate
from api.examples import ALLOCATION_EXAMPLE, ROUTES_EXAMPLE, SIMULATION_EXAMPLE, SMALL_SCENARIO
from api.keys import create_key
from api.main import create_app
from scenarios.geo import NUL_REASON
from scenarios.io.json_io import SURROGATE_ESCAPE, surrogate_string_field
from tests.api.conftest import (
    POSTGRES_URL,
    _worker_postgres,
    app_of,
    run_fork_server_script,
    worker_database_url,
)


def _ctx(client: TestClient) -> ServiceContext:
    ctx: ServiceContext = app_of(client).state.ctx
    return ctx


def test_health_and_readiness_are_open(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["migrations"] == "ok"
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def _same_but_bodiless(head: Any, get: Any, *, same_length: bool = True) -> None:
    """A HEAD answer: the GET answer's status and headers, no body."""
    assert head.status_code == get.status_code
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if same_length:  # the length of the body GET would send
        assert head.headers["content-length"] == str(len(get.content))


@pytest.mark.shares_service
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])
def test_head_answers_like_get_on_the_open_endpoints(client: TestClient, path: str) -> None:
    """Load balancers and uptime checks send HEAD: it was a 405 on every GET endpoint."""
    get = client.get(path)
    assert get.status_code == 200
    # the metrics count every request, so their length changes between two calls
    _same_but_bodiless(client.head(path), get, same_length=path != "/metrics")


def test_head_checks_the_key_as_get_does(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = copy.deepcopy(ALLOCATION_EXAMPLE["online"]["value"])
    job_id = client.post("/v1/allocations", json=body, headers=keys["oms"]).json()["job_id"]
    path = f"/v1/jobs/{job_id}"
    for headers, status in [
        (keys["oms"], 200),
        ({}, 401),
        ({"X-API-Key": "nonsense"}, 401),
        (keys["planner"], 404),  # not its job, as GET answers
    ]:
        get = client.get(path, headers=headers)
        assert get.status_code == status
        _same_but_bodiless(client.head(path, headers=headers), get)
    # a route without GET stays without HEAD, as GET does
    assert client.head("/v1/allocations", headers=keys["oms"]).status_code == 405
    text = client.get("/metrics").text
    assert 'method="HEAD",route="/v1/jobs/{job_id}",status="200"' in text


def test_an_unhandled_error_is_a_500_answered_without_re_raising(client: TestClient) -> None:
    def boom() -> None:
        raise RuntimeError("a bug")

    app_of(client).add_api_route("/v1/boom", boom)
    # a re-raised error would reach this TestClient (it raises server exceptions), and a
    # real server would drop the keep-alive connection after the 500
    answer = client.get("/v1/boom")
    assert answer.status_code == 500
    assert answer.json()["message"] == "internal error; the incident was logged"
    assert client.get("/healthz").status_code == 200


def test_metrics_count_requests_by_route_template(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    client.get("/v1/jobs/abc", headers=keys["admin"])
    text = client.get("/metrics").text
    line = 'dispatchlab_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="404"}'
    assert line in text
    assert "dispatchlab_jobs_queued" in text


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": "nonsense"}, 401),
        ({"X-API-Key": "dlk_000000000000_forged"}, 401),
    ],
)
def test_missing_or_invalid_key_is_401(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    answer = client.get("/v1/jobs", headers=headers)
    assert answer.status_code == status
    assert "API key" in answer.json()["message"]


def test_wrong_role_is_403_and_admin_may_do_everything(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    for role in ("oms", "planner", "researcher"):
        answer = client.get("/v1/keys", headers=keys[role])
        assert answer.status_code == 403
        assert "role 'admin'" in answer.json()["message"]
    assert client.get("/v1/keys", headers=keys["admin"]).json()["count"] == 4


def test_keys_are_stored_hashed_and_revocation_takes_effect(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    made = client.post("/v1/keys", json={"role": "planner", "name": "p"}, headers=keys["admin"])
    assert made.status_code == 201
    key = made.json()["key"]
    key_id = split_key(key)
    assert key_id == made.json()["id"]
    ctx = _ctx(client)
    assert ctx.sessions is not None
    with ctx.sessions() as session:
        row = session.get(ApiKey, key_id)
        assert row is not None and row.key_hash == hash_key(key)
        assert key not in {row.key_hash, row.name, row.id}
    assert client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 200
    assert client.delete(f"/v1/keys/{key_id}", headers=keys["admin"]).status_code == 200
    assert client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 401
    assert client.delete("/v1/keys/nope", headers=keys["admin"]).status_code == 404


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("name", "reason"),
    # PostgreSQL refuses NUL in text: it was a 500 there (SQLite stored it)
    [("a\x00b", "must not contain NUL"), ("x" * 201, "at most 200 characters")],
)
def test_a_key_name_the_database_cannot_keep_is_422(
    client: TestClient, keys: dict[str, dict[str, str]], name: str, reason: str
) -> None:
    answer = client.post("/v1/keys", json={"role": "oms", "name": name}, headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "name" and reason in problem["reason"]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/jobs/%00"),
        ("DELETE", "/v1/jobs/a%00"),
        ("GET", "/v1/plans/%00"),
        ("POST", "/v1/plans/%00/reoptimise"),
        ("DELETE", "/v1/keys/%00"),
    ],
)
def test_a_nul_in_the_path_is_404(
    client: TestClient, keys: dict[str, dict[str, str]], method: str, path: str
) -> None:
    """PostgreSQL stores no NUL: looking such an id up was a 500 there."""
    body = {"now_s": 0} if method == "POST" else None
    answer = client.request(method, path, json=body, headers=keys["admin"])
    assert answer.status_code == 404, answer.text
    assert answer.json()["message"] == "not found: the path holds a NUL character"


@pytest.mark.shares_service
def test_a_nul_in_a_body_string_is_422_naming_it_and_the_jobs_still_list(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A solve whose order id held a NUL was answered and stored; on PostgreSQL its row then
    made every GET /v1/jobs of its key (and the admin's) a 500, for good."""
    body = copy.deepcopy(ROUTES_EXAMPLE["small"]["value"])
    body["scenario"]["orders"][2]["id"] = "o\x003"
    body["scenario"]["vehicles"][0]["skills"] = ["bike", "\x00"]
    answer = client.post("/v1/routes", json=body, headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {
            "field": "scenario.vehicles.0.skills.1",
            "reason": "must not contain NUL (\\u0000) characters",
        }
    ]
    headers = {**keys["admin"], "Idempotency-Key": "a\x00"}
    answer = client.post("/v1/routes", json=ROUTES_EXAMPLE["small"]["value"], headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["field"] == "header.Idempotency-Key"
    assert client.get("/v1/jobs", headers=keys["admin"]).status_code == 200


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/simulations", SIMULATION_EXAMPLE["small"]["value"]),
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"]["value"]),
    ],
)
def test_an_empty_idempotency_key_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], path: str, body: dict[str, Any]
) -> None:
    """An empty key was taken for no key: the request ran, and its retry ran again."""
    headers = {**keys["admin"], "Idempotency-Key": ""}
    answer = client.post(path, json=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "header.Idempotency-Key", "reason": "String should have at least 1 character"}
    ]
    assert client.get("/v1/jobs", headers=keys["admin"]).json()["count"] == 0


@pytest.mark.shares_service
def test_a_nul_is_refused_in_the_same_words_over_http_and_in_process(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The middleware refuses a NUL before the models; in process the models refuse it in a
    string that is not an id too (a channel was taken there): one reason for both, and for the
    Idempotency-Key header and a key's name (they said ``must not contain NUL characters``)."""
    from pydantic import ValidationError

    from scenarios import Scenario
    from scenarios.errors import input_error_from_validation

    body = copy.deepcopy(ROUTES_EXAMPLE["small"]["value"])
    body["scenario"]["orders"][0]["channel"] = "\x00"  # a skill is an id since session 78
    answer = client.post("/v1/routes", json=body, headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(body["scenario"])
    in_process = input_error_from_validation(info.value)
    assert f"scenario.{in_process.field}" == problem["field"] == "scenario.orders.0.channel"
    assert in_process.reason == problem["reason"]
    headers = {**keys["admin"], "Idempotency-Key": "a\x00"}
    answer = client.post("/v1/routes", json=ROUTES_EXAMPLE["small"]["value"], headers=headers)
    assert answer.json()["detail"][0]["reason"] == problem["reason"]
    answer = client.post("/v1/keys", json={"role": "oms", "name": "a\x00"}, headers=keys["admin"])
    assert answer.json()["detail"][0]["reason"] == problem["reason"]


def _stochastic(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "v", "modifiers": [{"kind": "stochastic", "values": values}]}]


#: Request bodies (and a params object) whose own strings (not the domain models': those
#: refused a NUL already) took one in process: (model, path on the API, body, field).
NUL_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("PolicyEvaluationCreate", "/v1/policies/evaluate",
     {"policies": ["insertion", "greedy\x00"]}, "policies.1"),
    ("SimulationCreate", "/v1/simulations",
     {**SIMULATION_EXAMPLE["small"]["value"], "policy": "insertion\x00"}, "policy"),
    ("WhatIfCreate", "/v1/whatif",
     {"scenario": SMALL_SCENARIO, "policies": ["\x00"]}, "policies.0"),
    ("WhatIfCreate", "/v1/whatif",  # a string in an Any-typed value
     {"scenario": SMALL_SCENARIO, "variants": _stochastic({"travel_time_cv": "\x00"})},
     "variants.0.modifiers.0.values.travel_time_cv"),
    ("WhatIfCreate", "/v1/whatif",  # a key in one (named escaped)
     {"scenario": SMALL_SCENARIO, "variants": _stochastic({"cv": {"a\x00": 1}})},
     "variants.0.modifiers.0.values.cv.a\\x00"),
    ("WhatIfCreate", "/v1/whatif",  # deep in one
     {"scenario": SMALL_SCENARIO, "variants": _stochastic({"cv": [1, {"k": ["ok", "\x00"]}]})},
     "variants.0.modifiers.0.values.cv.1.k.1"),
    ("KeyCreate", "/v1/keys", {"role": "oms", "name": "k\x00"}, "name"),
    ("ReoptimiseCreate", "/v1/plans/p/reoptimise",
     {"now_s": 0, "routing": {"initial_plan": {"engine": "\x00"}}},
     "routing.initial_plan.engine"),
    ("RoutesCreate", "/v1/routes",
     {**ROUTES_EXAMPLE["small"]["value"], "params": {"initial_plan": {"engine": "\x00"}}},
     "params.initial_plan.engine"),
]  # fmt: skip


def _request_model(name: str) -> type[BaseModel]:
    import api.schemas.allocations
    import api.schemas.common
    import api.schemas.plans
    import api.schemas.policies
    import api.schemas.routes
    import api.schemas.simulations

    modules = [api.schemas.allocations, api.schemas.common, api.schemas.plans]
    modules += [api.schemas.policies, api.schemas.routes, api.schemas.simulations]
    [model] = [getattr(m, name) for m in modules if name in vars(m)]
    return model


@pytest.mark.shares_service
@pytest.mark.parametrize(("model", "path", "body", "field"), NUL_BODIES)
def test_a_nul_in_a_request_body_string_is_refused_in_process_and_over_http(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    model: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    """The API's request bodies are not domain models: over HTTP the middleware refused a
    NUL in their own strings (a policy name, a key's name) and in an ``Any``-typed value, but
    in process (a job's payload read back, a test, a script) they took it. Both refuse it
    now, naming the field in the same words and the same place (in an ``Any``-typed value
    too: the string or key holding it, ``values.cv.a\\x00``, not the value ``values.cv``)."""
    from pydantic import ValidationError

    from scenarios.errors import input_error_from_validation

    with pytest.raises(ValidationError) as info:
        _request_model(model).model_validate(body)
    in_process = input_error_from_validation(info.value)
    assert (in_process.field, in_process.reason) == (field, NUL_REASON)
    answer = client.post(path, json=body, headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["reason"] == NUL_REASON
    assert problem["field"] == field


def test_a_nul_in_routing_params_is_refused_in_process() -> None:
    """``RoutingParams`` is the routing layer's own params object (not a domain model)."""
    from pydantic import ValidationError

    from scenarios.errors import input_error_from_validation
    from solvers.routing.params import RoutingParams

    with pytest.raises(ValidationError) as info:
        RoutingParams.model_validate({"initial_plan": {"routes": [], "engine": "a\x00"}})
    assert input_error_from_validation(info.value).one_line() == (
        f"initial_plan.engine: {NUL_REASON}"
    )


@pytest.mark.shares_service
def test_every_model_of_a_request_body_refuses_a_nul(client: TestClient) -> None:
    """Every model a request body holds (read from the OpenAPI document, so a new endpoint
    or field is covered) refuses a NUL itself: a NulFreeModel (a StrictModel is one), or a
    model with no string (Location); enums and literals list their values."""
    from enum import Enum

    from scenarios.geo import Location, NulFreeModel

    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def refs(item: Any) -> Iterator[str]:
        if isinstance(item, dict):
            if "$ref" in item:
                yield item["$ref"].rsplit("/", 1)[-1]
            for value in item.values():
                yield from refs(value)
        elif isinstance(item, list):
            for value in item:
                yield from refs(value)

    todo = [op.get("requestBody") for ops in spec["paths"].values() for op in ops.values()]
    todo = [body for body in todo if isinstance(body, dict)]
    seen: set[str] = set()
    while todo:
        for name in refs(todo.pop()):
            if name not in seen:
                seen.add(name)
                todo.append(schemas[name])
    assert {"KeyCreate", "ReoptimiseCreate", "RoutingParams", "StochasticModifier"} <= seen

    def subclasses(cls: type[Any]) -> Iterator[type[Any]]:
        sub: type[Any]
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = {"api", "scenarios", "solvers", "simulation", "rl_agents"}
    by_name: dict[str, set[type[Any]]] = {}
    for base in (BaseModel, Enum):
        for cls in subclasses(base):
            if cls.__module__.split(".")[0] in ours:
                by_name.setdefault(cls.__name__, set()).add(cls)
    for name in sorted(seen):
        [cls] = by_name[name]
        assert issubclass(cls, (NulFreeModel, Enum)) or cls is Location, name


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.integers() | st.text(alphabet=st.sampled_from("ab\\u0\x00"), max_size=4),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.text(alphabet=st.sampled_from("k\x00"), max_size=2), inner, max_size=3
            )
        ),
        max_leaves=10,
    )
)
def test_the_nul_finder_names_a_string_holding_one(value: Any) -> None:
    """None exactly when no string or key holds a NUL; else the path of one that does."""
    raw = json.dumps(value).encode()

    def has_nul(item: Any) -> bool:
        if isinstance(item, str):
            return "\x00" in item
        if isinstance(item, dict):
            return any(has_nul(k) or has_nul(v) for k, v in item.items())
        return isinstance(item, list) and any(has_nul(v) for v in item)

    where = nul_string_field(raw)
    assert (where is not None) == has_nul(value)
    if has_nul(value):  # the middleware's pre-filter misses none
        assert _NUL_ESCAPE in raw


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none()
        | st.integers()
        | st.text(alphabet=st.sampled_from("a\\\ud800\udc00\U0001f680"), max_size=4),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.text(alphabet=st.sampled_from("k\udfff"), max_size=2), inner, max_size=3
            )
        ),
        max_leaves=10,
    )
)
def test_the_surrogate_finder_names_a_string_holding_a_lone_one(value: Any) -> None:
    """None exactly when no string or key of the body as read holds a lone surrogate (a
    pair is one character, like any other: a high and a low surrogate side by side in
    ``value`` are read as one); else the path of one that does."""
    raw = json.dumps(value).encode()
    value = json.loads(raw)

    def lone(item: Any) -> bool:
        if isinstance(item, str):
            return any(0xD800 <= ord(c) <= 0xDFFF for c in item)
        if isinstance(item, dict):
            return any(lone(k) or lone(v) for k, v in item.items())
        return isinstance(item, list) and any(lone(v) for v in item)

    where = surrogate_string_field(raw)
    assert (where is not None) == lone(value)
    if lone(value):  # the middleware's pre-filter misses none
        assert SURROGATE_ESCAPE.search(raw)
        assert where is not None
        where.encode("utf-8")  # the name is text the answer can carry (no lone surrogate)


@pytest.mark.shares_service
def test_bad_key_body_is_422_with_the_field(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    answer = client.post("/v1/keys", json={"role": "king"}, headers=keys["admin"])
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "role"
    garbled = client.post(
        "/v1/keys",
        content=b"{not json",
        headers={**keys["admin"], "Content-Type": "application/json"},
    )
    assert garbled.status_code == 422


@pytest.mark.shares_service
@pytest.mark.parametrize("path", ["/v1/keys", "/v1/allocations", "/v1/routes"])
@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"role": ' + b"9" * 5000 + b"}", "more than 4300 digits"),
        (b'{"role": "\xff\xfe"}', "not valid UTF-8 at byte 10"),
    ],
)
def test_a_body_json_cannot_read_is_422_naming_the_body_and_the_reason(
    client: TestClient, keys: dict[str, dict[str, str]], path: str, raw: bytes, reason: str
) -> None:
    """They were a 400 "There was an error parsing the body" with no reason."""
    headers = {**keys["admin"], "Content-Type": "application/json"}
    answer = client.post(path, content=raw, headers=headers)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "(body)" and reason in problem["reason"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    raw=st.one_of(
        st.binary(max_size=64),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["role", "name", "request", "x"]), inner, max_size=3
                )
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    path=st.sampled_from(["/v1/keys", "/v1/allocations"]),
)
def test_any_body_gets_a_json_answer_that_is_not_a_400_or_a_5xx(
    raw: bytes, path: str, started: tuple[TestClient, dict[str, str]]
) -> None:
    """Bytes, or JSON of any shape (NaN and infinities included): a 2xx, or a 422 that
    names at least one field with its reason."""
    client, admin = started
    answer = client.post(path, content=raw, headers={**admin, "Content-Type": "application/json"})
    assert answer.status_code in (200, 201, 422), (raw, answer.text)
    if answer.status_code == 422:
        detail = answer.json()["detail"]
        assert detail and all(d["field"] and d["reason"] for d in detail)


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """One started service for the module's property tests (and an admin key's headers)."""
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("bodies"), key_cache_s=0.0))
    with TestClient(app, raise_server_exceptions=False) as client:
        with app.state.ctx.sessions() as session:
            key, _ = create_key(session, role=Role.ADMIN, name="bodies")
        yield client, {"X-API-Key": key}


@pytest.mark.parametrize(
    ("path", "role", "body"),
    [
        ("/v1/simulations", "planner", SIMULATION_EXAMPLE["small"]["value"]),
        ("/v1/allocations", "oms", ALLOCATION_EXAMPLE["online"]["value"]),  # the short path
        ("/v1/keys", "admin", {"role": "oms", "name": "x"}),
    ],
)
@pytest.mark.parametrize(
    ("content_type", "got"),
    [("text/plain", "Content-Type: text/plain"), (None, "no Content-Type")],
)
def test_json_body_not_sent_as_json_is_415_naming_the_content_type(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    role: str,
    body: dict[str, Any],
    content_type: str | None,
    got: str,
) -> None:
    headers = {**keys[role], **({"Content-Type": content_type} if content_type else {})}
    answer = client.post(path, content=json.dumps(body), headers=headers)
    assert answer.status_code == 415, answer.text
    assert answer.json()["message"] == (
        f"send the body as JSON with Content-Type: application/json (got {got})"
    )
    # the same body as JSON is fine; a wrong Content-Type without a key is still a 401
    as_json = client.post(path, json=body, headers=keys[role])
    assert as_json.status_code in {200, 201, 202}, as_json.text
    assert client.post(path, content=json.dumps(body)).status_code == 401


def test_body_over_the_cap_is_413(
    settings: Settings, make_client: Callable[..., TestClient], keys: dict[str, dict[str, str]]
) -> None:
    small = Settings(**{**settings.model_dump(), "max_body_bytes": 100})
    client = make_client(small)
    answer = client.post("/v1/keys", content=b"x" * 101, headers={"X-API-Key": "k"})
    assert answer.status_code == 413
    assert "100 bytes" in answer.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies to the streamed bytes
        yield b"x" * 60
        yield b"x" * 60

    streamed = client.post("/v1/keys", content=chunks(), headers={"X-API-Key": "k"})
    assert streamed.status_code == 413
    assert (
        'dispatchlab_rejections_total{reason="body_too_large"} 2.0' in client.get("/metrics").text
    )


def test_audit_log_records_who_asked_what(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    client.post("/v1/keys", json={"role": "oms"}, headers=keys["admin"])
    client.get("/v1/keys", headers=keys["oms"])
    ctx = _ctx(client)
    assert ctx.audit is not None and ctx.sessions is not None
    ctx.audit.flush()
    admin_id = split_key(keys["admin"]["X-API-Key"])
    with ctx.sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    made = next(r for r in rows if r.method == "POST")
    assert made.key_id == admin_id and made.role == "admin" and made.status_code == 201
    assert made.input_hash is not None and len(made.input_hash) == 64
    denied = next(r for r in rows if r.status_code == 403)
    assert denied.result == "forbidden" and denied.role == "oms"


def test_migrations_build_the_models_schema_and_go_back_down(settings: Settings) -> None:
    """On a fresh database (SQLite, PostgreSQL): up to the head, the models' schema exactly
    (column types compared too), down to nothing, and up again."""
    from alembic.migration import MigrationContext

    engine = make_engine(settings.resolved_database_url())
    try:
        for _ in range(2):
            migrate(engine)
            assert current_revision(engine) == head_revision()
            tables = set(inspect(engine).get_table_names())
            assert set(Base.metadata.tables) <= tables
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                diff = compare_metadata(context, Base.metadata)
            assert diff == []
            downgrade(engine, "base")
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_each_xdist_worker_names_a_postgres_database_of_its_own() -> None:
    """The postgres variants of two pytest-xdist workers (``-n 2``, the default) shared one
    database, each test wiping its schema: the other worker's tests lost their tables."""
    url = "postgresql://u:se%40cret@db.example:5432/test"
    assert worker_database_url(url, None) == url
    assert worker_database_url(url, "gw0") == "postgresql://u:se%40cret@db.example:5432/test_gw0"
    assert worker_database_url(url, "gw1").endswith("/test_gw1")


@pytest.mark.skipif(not POSTGRES_URL, reason="set DISPATCHLAB_TEST_DATABASE_URL to test on it")
def test_an_xdist_worker_creates_its_postgres_database_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker's database is created on the configured server where missing, and found
    the next time (a second worker start, a second pytest run)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    assert POSTGRES_URL
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw99")
    name = f"{make_url(POSTGRES_URL).database}_gw99"
    server = make_engine(Settings(database_url=POSTGRES_URL).resolved_database_url())
    try:
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        for _ in range(2):
            url = _worker_postgres.__wrapped__(POSTGRES_URL)
            assert make_url(url).database == name
            engine = make_engine(Settings(database_url=url).resolved_database_url())
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_database()")).scalar() == name
            engine.dispose()
    finally:
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        server.dispose()


_DDL = ("CREATE", "DROP", "ALTER")
_RECORD = ("INSERT", "UPDATE", "DELETE")


@pytest.mark.parametrize("at", [None, "0002"])
def test_a_second_start_runs_no_migration_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, at: str | None
) -> None:
    """Start-up runs only the migrations the database has not recorded (``alembic_version``):
    a database already at the head gets no DDL and keeps its indexes as they are."""
    import api.main
    from api.main import create_app
    from tests.api.conftest import registry_with_test_kinds

    url = settings.resolved_database_url()
    if at is not None:  # a database left at an older revision by an older release
        engine = make_engine(url)
        migrate(engine, at)
        engine.dispose()
    executed: list[str] = []
    real_make_engine = api.main.make_engine

    def spied(url: str) -> Any:
        engine = real_make_engine(url)
        event.listen(
            engine,
            "before_cursor_execute",
            lambda _conn, _cur, statement, *_args: executed.append(statement.strip()),
        )
        return engine

    monkeypatch.setattr(api.main, "make_engine", spied)
    ddl: list[list[str]] = []  # per start: schema statements, then version records
    recorded: list[list[str]] = []
    indexes: list[list[Any]] = []
    for _ in range(2):
        executed.clear()
        with TestClient(create_app(settings, registry=registry_with_test_kinds())) as client:
            assert client.get("/readyz").json()["checks"]["migrations"] == "ok"
            started = _ctx(client).engine
            assert started is not None
            indexes.append(
                sorted(inspect(started).get_indexes("jobs"), key=lambda ix: str(ix["name"]))
            )
        ddl.append([s for s in executed if s.upper().startswith(_DDL)])
        recorded.append([s for s in executed if s.upper().startswith(_RECORD)])
    assert any("ix_jobs_created" in s for s in ddl[0])  # the first start migrated
    assert any("alembic_version" in s for s in recorded[0])
    assert ddl[1] == [], ddl[1]
    assert not any("alembic_version" in s for s in recorded[1]), recorded[1]
    assert indexes[0] == indexes[1]
    with make_engine(url).connect() as conn:
        from alembic.migration import MigrationContext

        assert MigrationContext.configure(conn).get_current_revision() == head_revision()


def test_a_migration_that_fails_half_way_leaves_the_database_as_it_was(
    settings: Settings,
) -> None:
    """SQLite ran each migration's DDL outside its transaction: a migration failing half way
    kept the statements before the failure, and the next start-up ran it again from its
    first statement (here: dropping an index already dropped), so the service could not start.
    """
    engine = make_engine(settings.resolved_database_url())
    try:
        migrate(engine, "0003")
        with engine.begin() as conn:  # in the way of 0004's last index: 0004 fails there
            conn.exec_driver_sql("CREATE INDEX ix_jobs_key_kind_created ON jobs (key_id)")
        before = sorted(str(ix["name"]) for ix in inspect(engine).get_indexes("jobs"))
        with pytest.raises(Exception, match="ix_jobs_key_kind_created"):
            migrate(engine)
        assert current_revision(engine) == "0003"
        assert sorted(str(ix["name"]) for ix in inspect(engine).get_indexes("jobs")) == before
        with engine.begin() as conn:  # the operator removes what was in the way
            conn.exec_driver_sql("DROP INDEX ix_jobs_key_kind_created")
        migrate(engine)  # and the next start-up applies 0004 whole
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            from alembic.migration import MigrationContext

            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_keys_create_prints_the_key_alone_on_its_last_line(tmp_path: Path) -> None:
    from dispatchlab.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["keys", "create", "--role", "oms", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert split_key(last) is not None
    listed = runner.invoke(app, ["keys", "list", "--data-dir", str(tmp_path)])
    assert str(split_key(last)) in listed.stdout
    bad = runner.invoke(app, ["keys", "create", "--role", "king", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 2


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_repeated_failures_and_closes_after_a_good_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("routing", max_failures=3, reset_s=10, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == BreakerState.OPEN
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one probe at a time
    breaker.record_failure()
    assert breaker.state == BreakerState.OPEN
    clock.now = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == BreakerState.CLOSED and breaker.allow()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["ok", "fail", "tick"]), max_size=40))
def test_breaker_never_calls_the_solver_while_open(events: list[str]) -> None:
    clock = FakeClock()
    open_since: list[float | None] = [None]

    def on_change(state: BreakerState) -> None:
        if state == BreakerState.OPEN:
            open_since[0] = clock.now
        elif state == BreakerState.CLOSED:
            open_since[0] = None

    breaker = CircuitBreaker("x", max_failures=2, reset_s=5, clock=clock, on_change=on_change)
    outcomes: list[str] = []
    for e in events:
        if e == "tick":
            clock.now += 3
            continue
        was_open = open_since[0] is not None
        allowed = breaker.allow()
        if allowed and open_since[0] is not None:
            assert clock.now - open_since[0] >= 5  # only a probe after the reset time
        if not allowed:
            continue
        (breaker.record_success if e == "ok" else breaker.record_failure)()
        outcomes.append(e)
        if open_since[0] == clock.now and not was_open:  # it just opened from closed
            assert outcomes[-2:] == ["fail", "fail"]
        if e == "ok":
            assert breaker.state == BreakerState.CLOSED


def test_idempotency_claims_conflicts_and_stale_takeover(client: TestClient) -> None:
    from fastapi import HTTPException
    from fastapi.responses import JSONResponse
    from sqlalchemy.orm import Session

    from api import idempotency

    ctx = _ctx(client)
    assert ctx.sessions is not None

    def claim(
        session: Session,
        request_hash: str,
        *,
        stale_s: float = 60,
        key_id: str = "k1",
        ttl_s: float = 60.0,
    ) -> idempotency.Slot | JSONResponse:
        return idempotency.claim(
            session,
            key_id=key_id,
            idem_key="abc",
            endpoint="POST /v1/x",
            request_hash=request_hash,
            ttl_s=ttl_s,
            pending_stale_s=stale_s,
        )

    with ctx.sessions() as session:
        assert isinstance(claim(session, "h1"), idempotency.Slot)
        with pytest.raises(HTTPException) as busy:
            claim(session, "h1")
        assert busy.value.status_code == 409
        with pytest.raises(HTTPException) as other:
            claim(session, "h2")
        assert other.value.status_code == 422
        again = claim(session, "h1", stale_s=0)  # a claim left by a dead request is taken over
        assert isinstance(again, idempotency.Slot)
        idempotency.finish(session, again, status_code=200, body={"answer": 42})
        replay = claim(session, "h1")
        assert isinstance(replay, JSONResponse) and replay.body == b'{"answer":42}'
        assert replay.headers[idempotency.REPLAY_HEADER] == "true"
        assert isinstance(claim(session, "h9", key_id="k2"), idempotency.Slot)  # per API key
        expired = claim(session, "h2", ttl_s=0)  # an answer past its TTL: the key is free again
        assert isinstance(expired, idempotency.Slot) and expired != again


def test_a_pending_idempotency_claim_of_a_replica_gone_is_taken_over_at_once(
    client: TestClient,
) -> None:
    """A request whose server died before it answered (a crash, SIGHUP, SIGQUIT) left its key
    claimed, and every retry after the restart got 409 ("still being answered") for
    ``max_sync_time_limit_s`` + ``fallback_grace_s`` + 60 s (92 s by default); now a retry
    takes over at once the claim of a replica gone, and still waits for a live one's."""
    import datetime as dt
    import os
    import subprocess

    from fastapi import HTTPException
    from sqlalchemy.orm import Session

    from api import idempotency
    from api.db.models import Instance, utcnow

    ctx = _ctx(client)
    jobs = ctx.jobs
    assert ctx.sessions is not None and jobs is not None
    gone = subprocess.Popen(["true"])  # a pid no process has any more, once reaped
    gone.wait()
    now = utcnow()
    long_ago = now - dt.timedelta(seconds=jobs.lease_s * 3)
    replicas = {
        "live-here": (jobs.host, os.getppid(), now, None),
        "live-elsewhere": ("other-host", 1, now, None),
        "stopped": ("other-host", 1, now, now),
        "silent": ("other-host", 1, long_ago, None),
        "its-process-gone": (jobs.host, gone.pid, now, None),
    }
    with ctx.sessions() as session:
        for rid, (host, pid, beat, stopped) in replicas.items():
            session.add(Instance(id=rid, host=host, pid=pid, heartbeat_at=beat, stopped_at=stopped))
        session.commit()

    def claim(session: Session, idem_key: str, replica: str | None) -> Any:
        return idempotency.claim(
            session,
            key_id="k1",
            idem_key=idem_key,
            endpoint="POST /v1/x",
            request_hash="h1",
            ttl_s=3600.0,
            pending_stale_s=3600.0,
            replica=replica,
            replica_gone=jobs.replica_gone,
        )

    owners = [*replicas, "deleted", None, jobs.instance_id]
    taken_over = {"stopped", "silent", "its-process-gone", "deleted"}
    with ctx.sessions() as session:
        for owner in owners:
            assert isinstance(claim(session, f"key-{owner}", owner), idempotency.Slot)
        for owner in owners:
            if owner in taken_over:  # its request died with its replica: solved again
                again = claim(session, f"key-{owner}", jobs.instance_id)
                assert isinstance(again, idempotency.Slot), owner
            else:  # still being answered (or a claim naming no replica: until stale)
                with pytest.raises(HTTPException) as busy:
                    claim(session, f"key-{owner}", jobs.instance_id)
                assert busy.value.status_code == 409, owner


def test_demo_mode_serves_a_scenario_and_bodies_that_work(
    settings: Settings, make_client: Any
) -> None:
    demo = Settings(**{**settings.model_dump(), "demo": True, "auth_enabled": False})
    client = make_client(demo)
    body = client.get("/v1/demo").json()
    assert len(body["scenario"]["orders"]) == 40
    for path in ("/v1/allocations", "/v1/simulations"):
        answer = client.post(path, json=body["requests"][f"POST {path}"])
        assert answer.status_code in {200, 202}, answer.text


def test_the_demo_fleet_can_do_the_demo_day(settings: Settings, make_client: Any) -> None:
    # session 52: on the generator's version 1 fleet no courier was on shift for 12 of the
    # 40 orders' windows, and 9 orders were unserved in every replication under insertion;
    # the DC (24 orders at the generator's capacities) left about 8 more unfilled
    from scenarios.model import Scenario
    from simulation.evaluate import replication_seeds, simulate

    demo = Settings(**{**settings.model_dump(), "demo": True, "auth_enabled": False})
    scenario = Scenario.model_validate(make_client(demo).get("/v1/demo").json()["scenario"])
    assert scenario.source.notes is not None and " v2;" in scenario.source.notes
    for order in scenario.orders:
        (w,) = order.time_windows
        assert any(
            set(order.required_skills) <= set(v.skills)
            and v.shift is not None
            and v.shift.start_s < w.end_s
            and v.shift.end_s > w.start_s
            for v in scenario.vehicles
        ), order.id
    assert {n.id: n.capacity_orders for n in scenario.nodes}["dc-01"] == 35
    for seed in replication_seeds(1, 3):
        metrics = simulate(scenario, policy="insertion", seed=seed).metrics
        assert metrics["orders_unserved"] == 0
        assert metrics["orders_unfilled"] <= 3  # stock short everywhere, not capacity


def test_demo_has_a_body_for_every_solve_endpoint_and_they_work(
    settings: Settings, make_client: Any
) -> None:
    """GET /v1/demo had no body for re-optimising a plan or evaluating policies (docs/api.md)."""
    demo = Settings(**{**settings.model_dump(), "demo": True, "auth_enabled": False})
    client = make_client(demo)
    requests = client.get("/v1/demo").json()["requests"]
    posts = {
        f"POST {path}"
        for path, ops in client.get("/openapi.json").json()["paths"].items()
        if "post" in ops and not path.startswith("/v1/keys")  # key management, no solve
    }
    assert set(requests) == posts
    small = {
        **requests["POST /v1/plans"],
        "allocation": {"time_limit_s": 1},
        "routing": {"time_limit_s": 1, "seed": 1},
        "evaluation": {"replications": 1, "seed": 1},
    }
    plan = client.post("/v1/plans", json=small)
    assert plan.status_code == 200, plan.text
    path = f"/v1/plans/{plan.json()['plan_id']}/reoptimise"
    # the demo's changes, under a routing limit of 1 s as the plan's (5 s by default)
    changes = {**requests["POST /v1/plans/{plan_id}/reoptimise"], "routing": small["routing"]}
    reopt = client.post(path, json=changes)
    assert reopt.status_code == 200, reopt.text
    assert reopt.json()["parent_id"] == plan.json()["plan_id"]
    evaluate = client.post("/v1/policies/evaluate", json=requests["POST /v1/policies/evaluate"])
    assert evaluate.status_code == 202, evaluate.text
    body = requests["POST /v1/simulations/compare"]
    assert client.post("/v1/simulations/compare", json=body).status_code == 202


def test_sqlite_keeps_job_payloads_compressed_and_reads_old_rows(tmp_path: Path) -> None:
    """A job's request is stored as zlib bytes on SQLite; rows stored as JSON text still read."""
    import zlib

    from sqlalchemy import insert, text
    from sqlalchemy.orm import Session

    from api.db.models import Job
    from api.db.session import RawJson

    engine = make_engine(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    migrate(engine)
    body = {"request": {"orders": [{"id": "o1", "lines": [{"sku": "tea", "quantity": 2}]}]}}
    row = {"kind": "allocations", "status": "done", "input_hash": "h", "events": []}
    with engine.begin() as conn:
        conn.execute(insert(Job), [{**row, "id": "new", "payload": body}])
        conn.execute(insert(Job), [{**row, "id": "raw", "payload": RawJson('{"a": [1, 2]}')}])
        conn.execute(insert(Job), [{**row, "id": "old", "payload": {}}])
        # as a row stored before payloads were compressed: JSON text
        conn.execute(text("UPDATE jobs SET payload = :p WHERE id = 'old'"), {"p": '{"b": null}'})
        stored: dict[str, Any] = dict(conn.execute(text("SELECT id, payload FROM jobs")).all())
    assert zlib.decompress(stored["new"]).startswith(b"{")
    assert isinstance(stored["old"], str)
    with Session(engine) as session:
        payloads = {}
        for job_id in ("new", "raw", "old"):
            job = session.get(Job, job_id)
            assert job is not None, job_id
            payloads[job_id] = job.payload
    assert payloads == {"new": body, "raw": {"a": [1, 2]}, "old": {"b": None}}


#: a fresh interpreter: whether a pyomo worker (with Pyomo imported) is ready and PyVRP and
#: OR-Tools are imported before the service starts and after (the job fork server not
#: started: its imports, seconds of CPU, are no part of this; its start with the service is
#: tests/api/test_jobs.py's test_the_job_fork_server_starts_with_the_service_and_stops_with_it)
_START_UP = """
import json, sys
from fastapi.testclient import TestClient
from api.core.config import Settings
from api.jobs.executors import LocalExecutor
from api.main import create_app
from solvers.allocation.pyomo_worker import warm_worker, worker_started
LocalExecutor.warm_up = lambda self: None
app = create_app(Settings(data_dir=sys.argv[1]))
names = ["pyvrp", "ortools.constraint_solver.pywrapcp"]
before = [worker_started(), *(name in sys.modules for name in names)]
with TestClient(app):
    # started in the background, not waited for: ready within its start-up time
    after = [worker_started(), *(name in sys.modules for name in names)]
    warm_worker(60)
print(json.dumps([before, after]))
"""


def test_the_service_start_up_starts_the_pyomo_worker_and_imports_the_routing_engines(
    tmp_path: Path,
) -> None:
    """A request with ``params.backend`` pyomo paid Pyomo's import (about 1 s) in its solve:
    the first overran a 0.2 s limit by it. The first plan paid for the routing engines'
    (0.3-0.6 s; in CI, under load, all of a 0.3 s limit: orders were left unplaced). The
    service imports them as it starts, and starts the pyomo worker process (which imports
    Pyomo; pyomo solves run there, killed at their limit)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _START_UP, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == [[False] * 3, [True] * 3]


def _preload_of(registry: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The modules the job workers' fork server preloads for a service of ``registry``."""
    import api.main

    seen: list[list[str]] = []

    def executor(capacity: int, *, preload: list[str] | None = None) -> object:
        seen.append(list(preload or []))
        return object()

    monkeypatch.setattr(api.main, "LocalExecutor", executor)
    api.main._make_executor(Settings(data_dir=tmp_path), registry)
    [preload] = seen
    return preload


def test_the_job_workers_fork_server_preloads_the_routing_engines_and_pyomo_not_its_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Job processes are forked from the fork server, which imports the routing engines and
    the twin once (each plan job imported them itself); a service without such kinds does
    not. It does not start the pyomo worker: a worker's pipes cannot be shared by the job
    processes forked from it. It imports Pyomo (session 44), so that a job process forks its
    own worker with it imported (it spawned one, which took ~2.7 s to import it). And the
    allocation solve (session 68: ``solvers.allocation`` no longer imports it with the package,
    and the task modules import ``allocate`` inside their functions)."""
    from api.jobs import TaskRegistry, TaskSpec
    from api.main import ALLOCATION_PRELOAD, PYOMO_IMPORT, PYOMO_PRELOAD, ROUTING_PRELOAD
    from api.tasks import default_registry

    preload = _preload_of(default_registry(), monkeypatch, tmp_path)
    assert PYOMO_PRELOAD not in preload and set(ROUTING_PRELOAD) <= set(preload)
    assert set(ALLOCATION_PRELOAD) <= set(preload)
    assert PYOMO_IMPORT in preload
    other = TaskRegistry()
    other.add(TaskSpec("test_sleep", "tests.api.helpers:sleep_task", solver="test"))
    assert _preload_of(other, monkeypatch, tmp_path) == ["tests.api.helpers"]


def _ray_preload_of(registry: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The modules each Ray worker imports before its first job, for a service of ``registry``."""
    import api.jobs.executors
    import api.main

    seen: list[list[str]] = []

    def executor(
        capacity: int, *, address: str | None = None, preload: list[str] | None = None
    ) -> object:
        seen.append(list(preload or []))
        return object()

    monkeypatch.setattr(api.jobs.executors, "RayExecutor", executor)
    api.main._make_executor(Settings(data_dir=tmp_path, job_executor="ray"), registry)
    [preload] = seen
    return preload


def test_the_ray_workers_preload_pyomo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Ray executor did not preload Pyomo, so the first pyomo job on each Ray worker paid
    for its import (about 1.5 s) in its time limit (and the first routing job for the
    engines'); it now starts the pyomo worker process before the first job (a Ray worker
    runs job after job: the pyomo worker is kept); a service without such kinds does not."""
    from api.jobs import TaskRegistry, TaskSpec
    from api.main import ALLOCATION_PRELOAD, PYOMO_PRELOAD, ROUTING_PRELOAD
    from api.tasks import default_registry

    preload = _ray_preload_of(default_registry(), monkeypatch, tmp_path)
    assert preload == [PYOMO_PRELOAD, *ALLOCATION_PRELOAD, *ROUTING_PRELOAD]
    other = TaskRegistry()
    other.add(TaskSpec("test_sleep", "tests.api.helpers:sleep_task", solver="test"))
    assert _ray_preload_of(other, monkeypatch, tmp_path) == []


#: a fresh interpreter: the body of a Ray task imports its preload modules before its job;
#: a task with none first (nothing imported yet), then one with ``argv[1:]`` (a Ray worker's
#: next task, in the same process)
_RAY_TASK = """
import json, sys
from api.jobs.executors import _ray_run
task = "tests.api.helpers:pyomo_loaded_task"
print(json.dumps([_ray_run(task, {}, ()), _ray_run(task, {}, tuple(sys.argv[1:]))]))
"""


def test_a_ray_task_has_pyomo_before_its_job_runs() -> None:
    """(Without Ray: the task's body, called in a fresh interpreter.)"""
    import subprocess
    import sys

    from api.main import PYOMO_PRELOAD

    repo = Path(__file__).resolve().parents[2]

    out = subprocess.run(
        [sys.executable, "-c", _RAY_TASK, PYOMO_PRELOAD],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=repo,
    )
    without, (status, [loaded, _]) = json.loads(out.stdout.splitlines()[-1])
    assert without == ["done", [{"pyomo": False, "preload": None}, []]]
    assert status == "done" and loaded["pyomo"] is True, loaded  # else what its preload said
    assert isinstance(loaded["preload"], float), loaded  # seconds of its Pyomo import


def test_importing_the_preload_module_starts_the_pyomo_worker_and_never_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A preload module that raises stops its process's jobs (a Ray task, a fork server):
    a pyomo worker that cannot start is logged instead."""
    import importlib
    import sys

    from solvers.allocation import pyomo_worker

    name = "solvers.allocation.pyomo_preload"
    calls: list[str] = []

    def warm(wait_s: float = 60.0) -> float:
        calls.append("warm")
        return 0.25

    monkeypatch.setattr(pyomo_worker, "warm_worker", warm)
    monkeypatch.delitem(sys.modules, name, raising=False)
    assert importlib.import_module(name).IMPORT_S == 0.25
    assert importlib.import_module(name).NOT_READY is None
    assert calls == ["warm"]

    def broken(wait_s: float = 60.0) -> float:
        raise pyomo_worker.WorkerStartError("Pyomo cannot be imported: no attribute 'environ'")

    monkeypatch.setattr(pyomo_worker, "warm_worker", broken)
    monkeypatch.delitem(sys.modules, name)
    preload = importlib.import_module(name)
    assert preload.IMPORT_S is None
    assert preload.NOT_READY == "Pyomo cannot be imported: no attribute 'environ'"  # said why


def test_importing_the_fork_servers_pyomo_module_imports_pyomo_and_never_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fork server's :data:`api.main.PYOMO_IMPORT`: a preload module that raised would
    stop every job; a Pyomo that cannot be imported is logged instead."""
    import importlib
    import sys

    from api.main import PYOMO_IMPORT
    from solvers.allocation import pyomo_model

    monkeypatch.delitem(sys.modules, PYOMO_IMPORT, raising=False)
    assert importlib.import_module(PYOMO_IMPORT).IMPORT_S is not None
    assert "pyomo.environ" in sys.modules

    def broken() -> float:
        raise ImportError("No module named 'pyomo'")

    monkeypatch.setattr(pyomo_model, "load_pyomo", broken)
    monkeypatch.delitem(sys.modules, PYOMO_IMPORT)
    assert importlib.import_module(PYOMO_IMPORT).IMPORT_S is None


#: a fresh interpreter: the fork server's preload list, and SIGINT through its first and last
_PRELOAD_GUARD = """
import json, os, signal, time
from multiprocessing import forkserver
from api.jobs.executors import LocalExecutor

if __name__ == "__main__":
    LocalExecutor(1, preload=["tests.api.helpers"])
    out = [forkserver._forkserver._preload_modules]
    import api.preload_begin
    os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C while the fork server imports
    time.sleep(0.1)
    out.append(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
    import api.preload_end
    out.append(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    print(json.dumps(out))
"""


def test_a_ctrl_c_while_the_job_fork_server_imports_does_not_interrupt_it(
    tmp_path: Path,
) -> None:
    """Ctrl-C reaches the whole foreground process group: the fork server, which now starts
    with the service, printed a KeyboardInterrupt traceback when it came before its imports
    were done. It ignores SIGINT while it imports, and its job processes get the handler
    they had (KeyboardInterrupt)."""
    out = run_fork_server_script(tmp_path, _PRELOAD_GUARD)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1]) == [
        ["api.preload_begin", "tests.api.helpers", "api.preload_end"],
        True,
        True,
    ]


@pytest.mark.shares_service
@pytest.mark.parametrize("path", ["/v1/allocations", "/v1/routes", "/v1/plans", "/v1/keys"])
@pytest.mark.parametrize("content_type", ["application/json", None])
def test_an_empty_body_is_422_saying_so(
    client: TestClient, keys: dict[str, dict[str, str]], path: str, content_type: str | None
) -> None:
    """It was ``(root): Field required`` on every endpoint, naming no field a caller sent."""
    headers = {**keys["admin"], **({"Content-Type": content_type} if content_type else {})}
    answer = client.post(path, content=b"", headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "(body)", "reason": "the request body is empty: send a JSON object"}
    ]
    assert answer.json()["message"] == "(body): the request body is empty: send a JSON object"


@pytest.mark.shares_service
@pytest.mark.parametrize("path", ["/v1/allocations", "/v1/routes", "/v1/keys"])
@pytest.mark.parametrize(
    ("raw", "got"), [(b"null", "null"), (b"[]", "an array"), (b"3", "a number")]
)
def test_a_body_that_is_no_json_object_is_422_saying_so(
    client: TestClient, keys: dict[str, dict[str, str]], path: str, raw: bytes, got: str
) -> None:
    """``null`` and ``[]`` were ``(root): Input should be a valid dictionary or object to
    extract fields from``."""
    headers = {**keys["admin"], "Content-Type": "application/json"}
    answer = client.post(path, content=raw, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "(body)", "reason": f"the request body must be a JSON object, got {got}"}
    ]
