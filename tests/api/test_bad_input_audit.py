"""Adversarial bodies on every POST endpoint: 4xx with a JSON body naming the field, never a
500 (session 45's audit)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

POSTS = [
    "/v1/allocations",
    "/v1/routes",
    "/v1/plans",
    "/v1/plans/p1/reoptimise",
    "/v1/simulations",
    "/v1/whatif",
    "/v1/policies/evaluate",
    "/v1/keys",
]
#: a NUL escape sends the body through the middleware's NUL search, whose ``json.loads``
#: raised RecursionError on arrays nested too deeply: a 500 before the JSON errors' 422
DEEP_WITH_NUL = [
    b"[" * 5_000 + b'"\\u0000"' + b"]" * 5_000,
    b'{"a": "\\u0000", "b": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
]


@pytest.mark.parametrize("body", DEEP_WITH_NUL, ids=["nul-inside", "nul-beside"])
@pytest.mark.parametrize("path", POSTS)
def test_a_body_nested_too_deeply_with_a_nul_is_422_on_the_body(
    client: TestClient, keys: dict[str, dict[str, str]], path: str, body: bytes
) -> None:
    headers = {**keys["admin"], "Content-Type": "application/json"}
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "(body)", "reason": "not valid JSON: arrays or objects nested too deeply"}
    ]
