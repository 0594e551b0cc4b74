"""Jobs and plans stored by older versions still run when the model has grown stricter.

A travel matrix with a non-zero diagonal was accepted before the model required zero travel
to the same place: such stored rows are read with the diagonal set to zero, new requests
with one are still a 422 naming the entry.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.db.models import PlanRecord
from api.examples import PLAN_EXAMPLE
from scenarios.saved import SavedDataWarning
from tests.api.conftest import app_of, wait_for

FINISHED = {"done", "failed", "cancelled"}


def _on_a_matrix(scenario: dict[str, Any]) -> dict[str, Any]:
    """The scenario with every x/y location indexed into an explicit (Euclidean) matrix."""
    out = copy.deepcopy(scenario)
    where: dict[tuple[float, float], int] = {}
    locations = [n["location"] for n in out.get("nodes", [])]
    locations += [o["location"] for o in out["orders"]]
    locations += [v["start_location"] for v in out["vehicles"]]
    for loc in locations:
        loc["index"] = where.setdefault((loc["x"], loc["y"]), len(where))
    points = list(where)
    out["travel"] = {
        "kind": "matrix",
        "duration_s": [[round(math.dist(p, q) / 8) for q in points] for p in points],
    }
    return out


def _nonzero_diagonal(scenario: dict[str, Any]) -> dict[str, Any]:
    """As an older version stored it: 30 s from each place to itself."""
    out = copy.deepcopy(scenario)
    for i, row in enumerate(out["travel"]["duration_s"]):
        row[i] = 30
    return out


def _routes_body() -> dict[str, Any]:
    scenario = _on_a_matrix(PLAN_EXAMPLE["small"]["value"]["scenario"])
    scenario.pop("nodes"), scenario.pop("skus")  # a delivery-only routing scenario
    for order in scenario["orders"]:
        order.pop("lines")
    # PyVRP stops after its iterations (milliseconds): at a 0.3 s limit a loaded machine
    # could leave it no time, and the greedy fallback answered (``fallback`` True), which
    # the tests asserting the engine answered (not failed over to the greedy plan) refused
    return {"scenario": scenario, "params": {"time_limit_s": 20, "max_iterations": 200, "seed": 1}}


def _run_stored(
    client: TestClient, keys: dict[str, dict[str, str]], kind: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The finished job of a ``kind`` row queued with ``body`` as an older version wrote it."""
    ctx = app_of(client).state.ctx
    with ctx.sessions() as session:
        job_id = ctx.jobs.submit(
            session, kind=kind, payload=body, key_id=None, seed=1, input_hash="", timeout_s=60
        ).id
    job: dict[str, Any] = wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).json(),
        lambda j: j["status"] in FINISHED,
        timeout_s=60,
    )
    return job


def test_a_new_request_with_a_nonzero_diagonal_is_a_422_naming_the_entry(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = _routes_body()
    body["scenario"] = _nonzero_diagonal(body["scenario"])
    answer = client.post("/v1/routes", json=body, headers=keys["oms"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["field"] == "scenario.travel.duration_s.0.0"


def test_a_job_stored_by_an_older_version_still_runs(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """It failed with 'solver error: ValidationError' (and its fallback with it)."""
    body = _routes_body()
    body["scenario"] = _nonzero_diagonal(body["scenario"])
    job = _run_stored(client, keys, "routes", body)
    assert job["status"] == "done" and job["fallback"] is False, job
    assert job["result"]["status"] == "feasible"
    # the correction is in the job's events, where its client looks
    assert any(
        e["message"].startswith("read: travel.duration_s: non-zero diagonal set to zero")
        for e in job["events"]
    ), job["events"]
    served = {s["order_id"] for r in job["result"]["plan"]["routes"] for s in r["stops"]}
    assert served == {"o1", "o2", "o3"}


def _a_plan_stored_by_an_older_version(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> tuple[str, Any]:
    """A plan made now, its stored scenario then given a non-zero diagonal; (id, context)."""
    body = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
    body["scenario"] = _on_a_matrix(body["scenario"])
    body["routing"]["time_limit_s"] = 0.3
    body["evaluation"]["replications"] = 2
    made = client.post("/v1/plans", json=body, headers=keys["oms"])
    assert made.status_code == 200, made.text
    plan_id = made.json()["plan_id"]
    ctx = app_of(client).state.ctx
    with ctx.sessions() as session:  # the record as an older version stored it
        record = session.get(PlanRecord, plan_id)
        assert record is not None
        record.scenario = _nonzero_diagonal(record.scenario)
        session.commit()
    return plan_id, ctx


def test_a_plan_stored_by_an_older_version_can_be_reoptimised(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The stored scenario failed validation: a 422 on travel.duration_s.0.0, not in the body."""
    plan_id, ctx = _a_plan_stored_by_an_older_version(client, keys)
    answer = client.post(
        f"/v1/plans/{plan_id}/reoptimise",
        json={"now_s": 0, "cancelled_order_ids": ["o3"], "routing": {"time_limit_s": 0.3}},
        headers=keys["oms"],
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] == "feasible" and "o3" in result["changes"]["removed"]
    with ctx.sessions() as session:  # the new plan keeps the corrected scenario, noted
        stored = session.get(PlanRecord, result["plan_id"])
        assert stored is not None
        matrix = stored.scenario["travel"]["duration_s"]
        assert all(row[i] == 0 for i, row in enumerate(matrix))
        assert "non-zero diagonal set to zero" in stored.scenario["source"]["notes"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_reoptimising_an_older_plan_tells_the_client_and_logs_the_correction(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
    mode: str,
) -> None:
    """Synchronously, the correction was a bare warning on stderr and in no answer."""
    plan_id, _ = _a_plan_stored_by_an_older_version(client, keys)
    caplog.set_level(logging.WARNING, logger="api.plans")
    answer = client.post(
        f"/v1/plans/{plan_id}/reoptimise",
        json={"now_s": 0, "routing": {"time_limit_s": 0.3}, "mode": mode},
        headers=keys["oms"],
    )
    assert answer.status_code == (200 if mode == "sync" else 202), answer.text
    if mode == "sync":
        result = answer.json()
    else:
        job = wait_for(
            lambda: client.get(answer.headers["location"], headers=keys["oms"]).json(),
            lambda j: j["status"] in FINISHED,
            timeout_s=60,
        )
        assert job["status"] == "done", job
        result = job["result"]
    [note] = result["notes"]
    assert note.startswith(f"stored plan {plan_id}: travel.duration_s: non-zero diagonal set")
    if mode == "async":  # in the job's events too, as with other kinds' stored payloads
        assert f"read: {note}" in [e["message"] for e in job["events"]], job["events"]
    stored = client.get(f"/v1/plans/{result['plan_id']}", headers=keys["oms"]).json()
    assert stored["result"]["notes"] == [note]
    logged = [r for r in caplog.records if r.name == "api.plans"]
    assert [r.levelno for r in logged] == [logging.WARNING], caplog.text
    job_id = result["job_id"] if mode == "sync" else answer.json()["job_id"]
    assert note in logged[0].getMessage() and job_id in logged[0].getMessage()
    assert not [w for w in recwarn if issubclass(w.category, SavedDataWarning)]


def _shift_past_the_horizon(scenario: dict[str, Any]) -> dict[str, Any]:
    """As an older version stored it: a shift ending after the horizon (not checked then)."""
    out = copy.deepcopy(scenario)
    end = out["horizon"]["end_s"]
    out["vehicles"][0]["shift"] = {"start_s": 0, "end_s": end + 600}
    return out


def test_a_new_request_with_a_shift_past_the_horizon_is_a_422_naming_the_field(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = _routes_body()
    body["scenario"] = _shift_past_the_horizon(body["scenario"])
    answer = client.post("/v1/routes", json=body, headers=keys["oms"])
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["detail"]
    assert detail["field"] == "scenario.vehicles.0.shift.end_s"
    assert "after the horizon [0, 28800] s ends" in detail["reason"], detail


def test_a_new_request_with_an_order_created_after_the_horizon_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Accepted before, and the twin never served it (released after the horizon end)."""
    body = _routes_body()
    body["scenario"]["orders"][1]["created_s"] = 28_801
    answer = client.post("/v1/routes", json=body, headers=keys["oms"])
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["detail"]
    assert detail["field"] == "scenario.orders.1.created_s"
    assert detail["reason"].startswith(
        "the order is created at 28801 s, after the horizon [0, 28800] s ends"
    ), detail


def test_a_job_stored_with_a_shift_past_the_horizon_still_runs(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = _routes_body()
    body["scenario"] = _shift_past_the_horizon(body["scenario"])
    job = _run_stored(client, keys, "routes", body)
    assert job["status"] == "done" and job["fallback"] is False, job
    assert any(
        e["message"].startswith("read: vehicles.0.shift.end_s: the shift ends at 29400 s")
        for e in job["events"]
    ), job["events"]


def test_a_plan_stored_with_a_shift_past_the_horizon_can_be_reoptimised_new_orders_checked(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
    body["routing"]["time_limit_s"] = 0.3
    body["evaluation"]["replications"] = 2
    made = client.post("/v1/plans", json=body, headers=keys["oms"])
    assert made.status_code == 200, made.text
    plan_id = made.json()["plan_id"]
    ctx = app_of(client).state.ctx
    with ctx.sessions() as session:  # the record as an older version stored it
        record = session.get(PlanRecord, plan_id)
        assert record is not None
        record.scenario = _shift_past_the_horizon(record.scenario)
        session.commit()
    late = {
        "id": "late",
        "location": {"x": 10, "y": 10},
        "lines": copy.deepcopy(body["scenario"]["orders"][0]["lines"]),
        "time_windows": [{"start_s": 30_000, "end_s": 31_000}],
    }
    url = f"/v1/plans/{plan_id}/reoptimise"
    refused = client.post(
        url,
        json={"now_s": 0, "new_orders": [late], "routing": {"time_limit_s": 0.3}},
        headers=keys["oms"],
    )
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["detail"]
    assert detail["field"] == "new_orders.0.time_windows.0", detail
    assert "lies entirely outside the horizon [0, 28800] s" in detail["reason"]
    answer = client.post(
        url, json={"now_s": 0, "routing": {"time_limit_s": 0.3}}, headers=keys["oms"]
    )
    assert answer.status_code == 200, answer.text
    [note] = answer.json()["notes"]
    assert note.startswith(f"stored plan {plan_id}: vehicles.0.shift.end_s: the shift ends")


def test_a_whatif_job_stored_with_a_shift_past_the_horizon_still_runs(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Each variant was validated as new input: the job failed on the stored base's shift."""
    from api.examples import WHATIF_EXAMPLE

    body = copy.deepcopy(WHATIF_EXAMPLE["small"]["value"])
    body["scenario"] = _shift_past_the_horizon(body["scenario"])
    body["replications"] = 2
    job = _run_stored(client, keys, "whatif", body)
    assert job["status"] == "done", job
    assert job["result"]["variants"] == ["base", "short-staffed", "slow"]
