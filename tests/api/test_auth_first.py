"""The API key is checked before anything about a request is answered (401 before 422).

A retry with an ``Idempotency-Key`` whose body the service refuses before its routes (a JSON
object repeating a key, a NUL) was answered with that body's 422 when its API key was not
valid: the service looked the retry up (for its stored answer) and, finding no caller, told
the body's fault instead of the missing key. A client without a valid key learns nothing
about the request: it gets the 401.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.examples import ALLOCATION_EXAMPLE, ROUTES_EXAMPLE

BAD_KEY = {"X-API-Key": "dlk_nosuchkey.nosuchsecret"}
JSON = {"Content-Type": "application/json"}


def _allocation() -> bytes:
    return json.dumps(ALLOCATION_EXAMPLE["online"]["value"]).encode()


def _repeated_key() -> bytes:
    """An allocation body whose node's inventory gives ``tea`` twice."""
    return _allocation().replace(b'"tea": 50', b'"tea": 3, "tea": 50', 1)


def _nul_string() -> bytes:
    body = ROUTES_EXAMPLE["small"]["value"]
    return json.dumps({**body, "mode": "sync"}).replace('"o1"', '"o\\u00001"').encode()


def _skills_past_their_cap() -> bytes:
    """A routing body whose courier has 101 skills (``max_skills`` is 100): counted, and
    refused, before the body's models read it."""
    body = ROUTES_EXAMPLE["small"]["value"]
    vehicles = [{**body["scenario"]["vehicles"][0], "skills": [f"s{i}" for i in range(101)]}]
    return json.dumps({**body, "scenario": {**body["scenario"], "vehicles": vehicles}}).encode()


#: bodies refused before the routes (the body middleware) or before the key check (FastAPI
#: parses the JSON before it resolves the endpoint's dependencies): (name, path, body, header)
REFUSED_EARLY: list[tuple[str, str, bytes, str]] = [
    ("repeated JSON key", "/v1/allocations", _repeated_key(), "k-1"),
    ("NUL in a string", "/v1/routes", _nul_string(), "k-1"),
    ("NUL in the Idempotency-Key", "/v1/allocations", _allocation(), "k\x001"),
    ("not JSON", "/v1/allocations", b'{"request": ', "k-1"),
    ("not UTF-8", "/v1/allocations", b'{"request": "\xff"}', "k-1"),
    ("a list past its cap", "/v1/routes", _skills_past_their_cap(), "k-1"),
]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("name", "path", "body", "idem"), REFUSED_EARLY, ids=[case[0] for case in REFUSED_EARLY]
)
@pytest.mark.parametrize(
    "key", [BAD_KEY, {}, {"X-API-Key": "not-a-key"}], ids=["unknown", "missing", "malformed"]
)
def test_a_body_refused_early_without_a_valid_key_is_401_not_422(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    name: str,
    path: str,
    body: bytes,
    idem: str,
    key: dict[str, str],
) -> None:
    """With or without ``Idempotency-Key``, a caller with no valid key gets the 401; the same
    request with a valid key is the 422 naming the fault."""
    for headers in ({**JSON, **key, "Idempotency-Key": idem}, {**JSON, **key}):
        answer = client.post(path, content=body, headers=headers)
        assert answer.status_code == 401, (name, answer.text)
        assert answer.headers["www-authenticate"] == "X-API-Key"
    valid = {**JSON, **keys["admin"], "Idempotency-Key": idem}
    assert client.post(path, content=body, headers=valid).status_code == 422


def test_a_retry_of_an_answered_request_without_a_valid_key_is_401(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Whatever the body (the same, another, one refused early), a retry of an answered request
    with its ``Idempotency-Key`` and no valid key is the 401, and its answer is not replayed."""
    headers = {**JSON, **keys["oms"], "Idempotency-Key": "k-1"}
    first = client.post("/v1/allocations", content=_allocation(), headers=headers)
    assert first.status_code == 200, first.text
    for body in (_allocation(), _allocation().replace(b'"tea": 50', b'"tea": 49'), _repeated_key()):
        for key in (BAD_KEY, {}):
            retry = client.post(
                "/v1/allocations", content=body, headers={**JSON, **key, "Idempotency-Key": "k-1"}
            )
            assert retry.status_code == 401, retry.text
            assert "idempotent-replayed" not in retry.headers


@pytest.mark.shares_service
def test_open_endpoints_still_answer_without_a_key(client: TestClient) -> None:
    """The checks made before the routes ask for a key only where the endpoint does."""
    assert client.post("/nowhere", content=_repeated_key(), headers=JSON).status_code == 422


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("method", "path", "key_role"),
    [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/metrics", None),
        ("GET", "/openapi.json", None),
        ("GET", "/v1/jobs", "admin"),
        ("GET", "/v1/keys", "admin"),
    ],
)
def test_an_endpoint_that_ignores_the_idempotency_key_ignores_a_nul_in_it(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    method: str,
    path: str,
    key_role: str | None,
) -> None:
    """An ``Idempotency-Key`` holding a NUL was a 422 on every request, open endpoints
    included (``/healthz``), and on the keyed ones that take no such header (``GET /v1/jobs``),
    whose answer it does not change; as an empty key or one given twice, it is refused only
    where the endpoint takes the header (422 naming it there, after the API key's 401)."""
    key = keys[key_role] if key_role else {}
    plain = client.request(method, path, headers=key)
    for idem in ("k\x001", "", "k-1"):
        answer = client.request(method, path, headers={**key, "Idempotency-Key": idem})
        assert answer.status_code == plain.status_code == 200, (idem, answer.text)
    twice = [*key.items(), ("Idempotency-Key", "k\x001"), ("Idempotency-Key", "k-2")]
    assert client.request(method, path, headers=twice).status_code == 200


def test_a_nul_in_the_idempotency_key_of_a_body_refused_early_is_no_500(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A body the middleware refuses (a repeated JSON key) is looked up as a retry first (its
    stored answer, by its ``Idempotency-Key``): a key holding a NUL is never looked up
    (PostgreSQL stores no NUL), and the body's 422 answers."""
    headers = {**JSON, **keys["oms"], "Idempotency-Key": "k\x001"}
    answer = client.post("/v1/allocations", content=_repeated_key(), headers=headers)
    assert answer.status_code == 422, answer.text
    assert "duplicate key 'tea'" in answer.json()["detail"][0]["reason"]
    answer = client.post("/v1/allocations", content=_allocation(), headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "header.Idempotency-Key", "reason": "must not contain NUL (\\u0000) characters"}
    ]


@pytest.mark.parametrize("path", ["/v1/allocations", "/v1/routes"])
def test_an_idempotency_key_given_twice_with_different_values_is_a_422_after_the_key(
    client: TestClient, keys: dict[str, dict[str, str]], path: str
) -> None:
    """Two ``Idempotency-Key`` headers with different values: the first was taken silently (a
    proxy's or client's second value ignored, its retries not recognised); now a 422 naming
    the header, and a 401 for a caller without a valid key."""
    body: Any = (
        ALLOCATION_EXAMPLE["online"]["value"]
        if path == "/v1/allocations"
        else ROUTES_EXAMPLE["small"]["value"]
    )
    raw = json.dumps(body).encode()
    twice = [("Idempotency-Key", "k-1"), ("Idempotency-Key", "k-2"), *JSON.items()]
    answer = client.post(path, content=raw, headers=[*keys["oms"].items(), *twice])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "header.Idempotency-Key", "reason": "given more than once, with different values"}
    ]
    assert client.post(path, content=raw, headers=[*BAD_KEY.items(), *twice]).status_code == 401
    # the same value twice is one key (a proxy that repeats the header): answered as usual
    same = [("Idempotency-Key", "k-3"), ("Idempotency-Key", "k-3"), *JSON.items()]
    first = client.post(path, content=raw, headers=[*keys["oms"].items(), *same])
    again = client.post(path, content=raw, headers=[*keys["oms"].items(), *same])
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers["idempotent-replayed"] == "true"


def test_a_body_not_sent_as_json_without_a_valid_key_is_401_not_415(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The 415 (a body of another content type) is said to a caller with a valid key only."""
    plain = {"Content-Type": "text/plain"}
    answer = client.post("/v1/routes", content=b"hello", headers={**plain, **BAD_KEY})
    assert answer.status_code == 401, answer.text
    answer = client.post("/v1/routes", content=b"hello", headers={**plain, **keys["oms"]})
    assert answer.status_code == 415, answer.text


#: (path, a role whose keys may not use it): a key of another role gets the 403
OTHER_ROLE = [
    ("/v1/allocations", "planner"),
    ("/v1/routes", "researcher"),
    ("/v1/simulations", "oms"),
    ("/v1/policies/evaluate", "planner"),
    ("/v1/keys", "oms"),
]


#: the bodies of :data:`REFUSED_EARLY` (each refused whatever the endpoint), and one that is not
BAD_BODIES = [(name, body) for name, _, body, idem in REFUSED_EARLY if "\x00" not in idem]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("name", "body"),
    [*BAD_BODIES, ("a JSON object", b"{}")],
    ids=[name for name, _ in BAD_BODIES] + ["a JSON object"],
)
@pytest.mark.parametrize(("path", "role"), OTHER_ROLE, ids=[p for p, _ in OTHER_ROLE])
def test_a_body_refused_early_from_a_key_of_another_role_is_403_not_422(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    name: str,
    body: bytes,
    path: str,
    role: str,
) -> None:
    """A key that may not use the endpoint got the 422 about a body refused before the
    endpoint's role check (not JSON, a repeated key, a NUL, not UTF-8) and the 403 for any
    other body: it now gets the 403 whatever the body, as a caller without a key the 401."""
    answer = client.post(path, content=body, headers={**JSON, **keys[role]})
    assert answer.status_code == 403, (name, answer.text)
    assert answer.json()["message"].startswith("this endpoint needs a key with role")
    if name != "a JSON object":  # a key the endpoint takes still learns what is wrong
        assert client.post(path, content=body, headers={**JSON, **keys["admin"]}).status_code == 422


@pytest.mark.shares_service
@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip"])
def test_a_compressed_body_is_415_naming_the_encoding(
    client: TestClient, keys: dict[str, dict[str, str]], encoding: str
) -> None:
    """A body sent with a ``Content-Encoding`` (an OMS gzipping its requests) was read as
    text: 422 "(body): not valid UTF-8 at byte 1". The service does not decode bodies: 415
    naming the encoding; the 401 / 403 first for a key that may not call the endpoint."""
    raw = gzip.compress(_allocation())
    headers = {**JSON, "Content-Encoding": encoding}
    answer = client.post("/v1/allocations", content=raw, headers={**headers, **keys["oms"]})
    assert answer.status_code == 415, answer.text
    assert answer.json()["message"] == (
        f"Content-Encoding {encoding!r} is not supported: send the body uncompressed, "
        "as JSON with Content-Type: application/json"
    )
    assert client.post("/v1/allocations", content=raw, headers=headers).status_code == 401
    other = {**headers, **keys["planner"]}
    assert client.post("/v1/allocations", content=raw, headers=other).status_code == 403


@pytest.mark.shares_service
def test_a_body_sent_with_content_encoding_identity_is_answered(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """``identity`` is no encoding at all: the body is read as it is."""
    headers = {**JSON, **keys["oms"], "Content-Encoding": "identity"}
    assert client.post("/v1/allocations", content=_allocation(), headers=headers).status_code == 200
