"""A synchronous solve's time limit counts from its request's arrival (api.solve)."""

from __future__ import annotations

import copy
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

import api.tasks.routes as routes_task
import solvers.allocation as allocation
from api import solve
from api.core.errors import ARRIVED_AT
from api.examples import ALLOCATION_EXAMPLE, PLAN_EXAMPLE, REOPTIMISE_EXAMPLE, SMALL_SCENARIO
from api.schemas.allocations import AllocationCreate
from api.solve import (
    MIN_SOLVER_TIME_LIMIT_S,
    answer_reserve_s,
    solver_time_limit,
    with_time_limit,
)

#: how long the service seems to have held a request before its solve starts, seconds
HELD_S = 0.4


def _request(arrived_at_s: float | None) -> Request:
    state = (
        SimpleNamespace() if arrived_at_s is None else SimpleNamespace(arrived_at_s=arrived_at_s)
    )
    return cast(Request, cast(Any, SimpleNamespace(state=state)))


def test_the_solver_has_what_is_left_after_the_time_spent_and_the_answers_reserve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ARRIVED_AT == "arrived_at_s"
    monkeypatch.setattr(solve, "clock", lambda: 100.4)
    left_s = solver_time_limit(_request(100.0), 1.0, 1000)
    assert left_s == pytest.approx(1.0 - 0.4 - answer_reserve_s(1000))
    # the reserve grows with the orders
    assert answer_reserve_s(1000) > answer_reserve_s(10) > 0.0


def test_a_request_held_past_its_limit_still_gets_the_solvers_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(solve, "clock", lambda: 105.0)
    assert solver_time_limit(_request(100.0), 1.0, 10) == MIN_SOLVER_TIME_LIMIT_S
    # never more than asked, even a limit below the floor
    assert solver_time_limit(_request(100.0), 0.001, 10) == 0.001


def test_a_request_with_no_arrival_noted_counts_from_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solve, "clock", lambda: 1e9)  # would leave nothing, were it used
    assert solver_time_limit(_request(None), 2.0, 100) == pytest.approx(2.0 - answer_reserve_s(100))


def test_with_time_limit_changes_only_the_time_limit() -> None:
    body = AllocationCreate.model_validate(ALLOCATION_EXAMPLE["online"]["value"])
    limited = with_time_limit(body, 0.25)
    assert limited.params.time_limit_s == 0.25
    assert limited.params.model_copy(update={"time_limit_s": 2.0}) == body.params
    assert limited.request is body.request and body.params.time_limit_s == 2


def _held(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request looks as if it arrived :data:`HELD_S` earlier than it did."""
    monkeypatch.setattr(solve, "clock", lambda: time.perf_counter() + HELD_S)


def _assert_left(given_s: float, asked_s: float, num_orders: int) -> None:
    """``given_s`` is ``asked_s`` less the time held (at least :data:`HELD_S`) and the reserve."""
    assert 0.0 < given_s <= asked_s - HELD_S - answer_reserve_s(num_orders)


def _sync_plan_body() -> dict[str, Any]:
    """The small plan example, answered now, without its twin evaluation."""
    body = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
    body["evaluation"]["replications"] = 0
    body["mode"] = "sync"
    return body


def _stage_limits(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The time limits the allocation and the routing are given (filled as they run)."""
    import solvers.routing as routing

    given: dict[str, float] = {}
    real_allocate, real_route = allocation.allocate, routing.solve_routes_with_stats

    def allocating(request: Any, params: Any) -> Any:
        given["allocation"] = params.time_limit_s
        return real_allocate(request, params)

    def routing_with(scenario: Any, params: Any, **kwargs: Any) -> Any:
        given["routing"] = params.time_limit_s
        return real_route(scenario, params, **kwargs)

    monkeypatch.setattr(allocation, "allocate", allocating)
    monkeypatch.setattr(routing, "solve_routes_with_stats", routing_with)
    return given


def _assert_stage_limits(given: dict[str, float], num_orders: int) -> None:
    """A 2 s allocation and a 1 s routing shared what was left of their 3 s, 2 to 1."""
    asked = {"allocation": 2.0, "routing": 1.0}
    # together, what is left of the 3 s: the time held and the answer's reserve taken off
    _assert_left(given["allocation"] + given["routing"], 3.0, num_orders)
    # each keeps its share of it
    assert given["allocation"] / given["routing"] == pytest.approx(2.0)
    assert all(0.0 < given[stage] < asked[stage] for stage in asked)


def test_a_sync_route_solve_gets_its_limit_less_the_time_the_request_was_held(
    client: TestClient, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[float] = []
    real = routes_task.solve_routes_with_stats

    def recording(scenario: Any, params: Any) -> Any:
        given.append(params.time_limit_s)
        return real(scenario, params.model_copy(update={"engine": "greedy"}))

    monkeypatch.setattr(routes_task, "solve_routes_with_stats", recording)
    _held(monkeypatch)
    body = {
        "scenario": copy.deepcopy(SMALL_SCENARIO),
        "params": {"time_limit_s": 2.0, "seed": 3},
        "mode": "sync",
    }
    answer = client.post("/v1/routes", json=body, headers=keys["oms"])
    assert answer.status_code == 200, answer.text
    assert len(given) == 1
    _assert_left(given[0], 2.0, len(SMALL_SCENARIO["orders"]))
    # the answer states the limit the request asked
    assert answer.json()["solver"]["time_limit_s"] == 2.0


@pytest.mark.parametrize("idempotency_key", [None, "time-limit-1"])
def test_a_sync_allocation_gets_its_limit_less_the_time_the_request_was_held(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    idempotency_key: str | None,
) -> None:
    given: list[float] = []
    real = allocation.allocate

    def recording(request: Any, params: Any) -> Any:
        given.append(params.time_limit_s)
        return real(request, params)

    monkeypatch.setattr(allocation, "allocate", recording)
    _held(monkeypatch)
    body = copy.deepcopy(ALLOCATION_EXAMPLE["online"]["value"])
    headers = dict(keys["oms"])
    if idempotency_key is not None:  # the path with the job row written before the solve
        headers["Idempotency-Key"] = idempotency_key
    answer = client.post("/v1/allocations", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert len(given) == 1
    _assert_left(given[0], 2.0, 1)
    assert answer.json()["solver"]["time_limit_s"] == 2.0


@pytest.mark.parametrize("idempotency_key", [None, "plan-time-limit-1"])
def test_a_sync_plan_gets_its_limits_less_the_time_the_request_was_held(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    idempotency_key: str | None,
) -> None:
    """Its allocation and routing limits count from the request's arrival, as those of
    /v1/routes and /v1/allocations do: they counted from the solver's start (session 69)."""
    given = _stage_limits(monkeypatch)
    _held(monkeypatch)
    body = _sync_plan_body()
    headers = dict(keys["oms"])
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    answer = client.post("/v1/plans", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    _assert_stage_limits(given, len(body["scenario"]["orders"]))
    # the answer states the limits the request asked, as the stored plan does
    assert answer.json()["solver"]["time_limit_s"] == 3.0
    stored = client.get(f"/v1/plans/{answer.json()['plan_id']}", headers=keys["oms"]).json()
    assert stored["result"]["solver"]["time_limit_s"] == 3.0


def test_a_plan_keeps_its_limits_when_nothing_is_spent() -> None:
    from api.routes.plans import with_plan_time_limit
    from api.schemas.plans import PlanCreate

    body = PlanCreate.model_validate(PLAN_EXAMPLE["small"]["value"])
    same = with_plan_time_limit(body, 3.0)
    assert (same.allocation.time_limit_s, same.routing.time_limit_s) == (2.0, 1.0)
    # never more than asked; only the limits change
    assert with_plan_time_limit(body, 30.0).routing.time_limit_s == 1.0
    half = with_plan_time_limit(body, 1.5)
    assert (half.allocation.time_limit_s, half.routing.time_limit_s) == (1.0, 0.5)
    assert half.routing.seed == body.routing.seed and half.scenario is body.scenario


def test_a_sync_reoptimisation_gets_its_limits_less_the_time_the_request_was_held(
    client: TestClient, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-optimisation's allocation (of its new orders) and routing limits count from the
    request's arrival too: they counted from the solver's start (session 70, after plans)."""
    body = _sync_plan_body()
    made = client.post("/v1/plans", json=body, headers=keys["oms"])
    assert made.status_code == 200, made.text
    given = _stage_limits(monkeypatch)
    _held(monkeypatch)
    replan = copy.deepcopy(REOPTIMISE_EXAMPLE["late-order"]["value"])
    replan["mode"] = "sync"
    replan["allocation"] = {"time_limit_s": 2.0}
    answer = client.post(
        f"/v1/plans/{made.json()['plan_id']}/reoptimise", json=replan, headers=keys["oms"]
    )
    assert answer.status_code == 200, answer.text
    _assert_stage_limits(given, len(body["scenario"]["orders"]) + len(replan["new_orders"]))
    # the answer states the limits the request asked: both stages, as a plan's does
    assert answer.json()["solver"]["time_limit_s"] == 3.0


def test_a_reoptimisation_keeps_its_limits_when_nothing_is_spent() -> None:
    from api.routes.plans import with_reoptimise_time_limit

    request: dict[str, dict[str, Any]] = {
        "allocation": {"time_limit_s": 2.0, "mode": "online"},
        "routing": {"time_limit_s": 1.0},
    }
    payload: dict[str, Any] = {"request": request, "parent": {"id": "p"}}
    same = with_reoptimise_time_limit(payload, 3.0)
    assert same == payload
    assert with_reoptimise_time_limit(payload, 30.0) == payload  # never more than asked
    half = with_reoptimise_time_limit(payload, 1.5)
    assert half["request"]["allocation"] == {"time_limit_s": 1.0, "mode": "online"}
    assert half["request"]["routing"] == {"time_limit_s": 0.5}
    # the stored payload is not changed, only the task's copy
    assert request["allocation"]["time_limit_s"] == 2.0 and half["parent"] is payload["parent"]
