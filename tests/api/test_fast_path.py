"""The request path under load: SQLite write gate, fast-lane admission, JSON columns, replays."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import gc
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text

from api.context import Lane
from api.core.config import Settings
from api.db.session import GatedConnection, json_dumps, make_engine, write_gate
from api.examples import (
    ALLOCATION_EXAMPLE,
    PLAN_EXAMPLE,
    ROUTES_EXAMPLE,
    SIMULATION_EXAMPLE,
    WHATIF_EXAMPLE,
)
from api.main import create_app
from api.schemas.allocations import AllocationCreate
from api.schemas.plans import PlanCreate
from api.schemas.routes import RoutesCreate
from api.schemas.simulations import SimulationCreate, WhatIfCreate
from api.solve import run_in_lane

ROWS = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("who", String(20)))


def _gated(conn: Any) -> GatedConnection:
    dbapi = conn.connection.dbapi_connection
    assert isinstance(dbapi, GatedConnection)
    return dbapi


def test_write_gate_is_held_from_the_first_write_to_commit_or_rollback(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    ROWS.metadata.create_all(engine)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        assert not _gated(conn).holding  # reads never take it
        conn.execute(insert(ROWS).values(who="a"))
        assert _gated(conn).holding
        conn.commit()
        assert not _gated(conn).holding
        conn.execute(insert(ROWS).values(who="b"))
        conn.rollback()
        assert not _gated(conn).holding
        conn.execute(insert(ROWS).values(who="c"))
    # returned to the pool with the transaction open: the pool's rollback gives it back
    with engine.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(ROWS)) == 1
    engine.dispose()


def test_writers_in_threads_and_engines_queue_at_one_gate(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    engines = [make_engine(f"sqlite:///{path}") for _ in range(2)]
    assert write_gate(str(path)) is write_gate(str(tmp_path / "." / "q.sqlite3"))
    ROWS.metadata.create_all(engines[0])
    slowest = [0.0]
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(25):
                start = time.perf_counter()
                with engines[k % 2].begin() as conn:
                    conn.execute(insert(ROWS).values(who=f"{k}-{i}"))
                slowest[0] = max(slowest[0], time.perf_counter() - start)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with engines[1].connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ROWS)) == 200
    # no writer slept in SQLite's busy handler (its waits grow to 100 ms steps)
    assert slowest[0] < 2.0
    for engine in engines:
        engine.dispose()


def test_json_columns_keep_nan_and_infinity_where_the_database_can(settings: Settings) -> None:
    """SQLite keeps them; PostgreSQL's json type refuses them (the write of a job's end
    holding one failed at every try, its job left running): they are stored null there, as
    the service's answers give them."""
    from sqlalchemy.orm import Session

    from api.db.models import Job
    from api.db.session import migrate

    value = {"a": math.nan, "b": [math.inf, -math.inf], "c": "é", 1: (2, 3)}
    back = json.loads(json_dumps(value))
    assert math.isnan(back["a"]) and back["b"] == [math.inf, -math.inf]
    assert back["c"] == "é" and back["1"] == [2, 3]
    engine = make_engine(settings.resolved_database_url())
    try:
        migrate(engine)
        with Session(engine) as session:
            row = {"kind": "k", "status": "done", "input_hash": "h", "events": []}
            session.add(Job(id="j", **row, payload=value, result=value))
            session.commit()
        with Session(engine) as session:
            job = session.get(Job, "j")
            assert job is not None
            assert job.result is not None
            stored = [job.payload, job.result]
    finally:
        engine.dispose()
    for got in stored:
        assert got["c"] == "é" and got["1"] == [2, 3]
        if engine.dialect.name == "sqlite":
            assert math.isnan(got["a"]) and got["b"] == [math.inf, -math.inf]
        else:
            assert got["a"] is None and got["b"] == [None, None]


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Yield to the event loop until ``condition()`` holds (AssertionError after ``timeout_s``:
    a deadline for a hang, not a speed bound)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s: {what}"
        await asyncio.sleep(0.001)


def _waiting(lane: Lane, n: int) -> bool:
    """Whether ``n`` requests wait for ``lane``'s admission."""
    return lane.waiting == n


def test_fast_lane_admits_in_arrival_order_and_refuses_past_its_queue(tmp_path: Path) -> None:
    """One admitted, two queued, the fourth refused. The first holds its admission until the
    fourth was refused (an event, not a sleep: under load a 50 ms job ended before the fourth
    arrived, which was then queued and answered, in 1 of 20 runs)."""
    settings = Settings(data_dir=tmp_path, fast_lane_concurrency=1, fast_lane_queue=2)
    ctx = create_app(settings).state.ctx
    lane = ctx.lanes["fast"]
    started: list[int] = []
    running = [0]
    most = [0]
    release = threading.Event()

    def work(k: int) -> Callable[[], int]:
        def run() -> int:
            running[0] += 1
            most[0] = max(most[0], running[0])
            started.append(k)
            assert release.wait(30.0), "never released"
            running[0] -= 1
            return k

        return run

    async def scenario() -> list[Any]:
        tasks = []
        try:
            # each arrives once the one before it is admitted (running) or queued
            tasks.append(asyncio.create_task(run_in_lane(ctx, lane, work(0))))
            await _until(lambda: started == [0], "the first admitted")
            for k in (1, 2):
                tasks.append(asyncio.create_task(run_in_lane(ctx, lane, work(k))))
                await _until(functools.partial(_waiting, lane, k), f"request {k} queued")
            tasks.append(asyncio.create_task(run_in_lane(ctx, lane, work(3))))
            await _until(tasks[3].done, "the fourth answered")
            assert started == [0] and lane.waiting == 2  # the first still held its admission
        finally:
            release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[:3] == [0, 1, 2] and started == [0, 1, 2] and most[0] == 1
    refused = results[3]
    assert isinstance(refused, HTTPException) and refused.status_code == 429
    assert refused.headers and refused.headers["Retry-After"] == str(settings.retry_after_s)
    assert lane.waiting == 0


@pytest.mark.parametrize("admit", [0, 1, 2])
def test_allocations_answer_with_and_without_admission_control(
    settings: Settings, make_client: Callable[..., TestClient], admit: int
) -> None:
    tuned = Settings(
        **{**settings.model_dump(), "fast_lane_concurrency": admit, "auth_enabled": False}
    )
    client = make_client(tuned)
    body = copy.deepcopy(ALLOCATION_EXAMPLE["online"]["value"])
    answers: list[int] = []

    def post() -> None:
        answers.append(client.post("/v1/allocations", json=body).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 6


def test_idempotent_replay_of_an_allocation_is_the_same_json(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = copy.deepcopy(ALLOCATION_EXAMPLE["online"]["value"])
    headers = {**keys["oms"], "Idempotency-Key": "alloc-1"}
    first = client.post("/v1/allocations", json=body, headers=headers)
    again = client.post("/v1/allocations", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def _without_run_details(answer: dict[str, Any]) -> dict[str, Any]:
    """An allocation answer without what differs from run to run (job id, timings)."""
    out = {k: v for k, v in answer.items() if k not in {"job_id", "solve_time_s", "stats"}}
    solver = out["solver"]
    out["solver"] = {k: v for k, v in solver.items() if k == "time_limit_s" or not k.endswith("_s")}
    return out


def test_short_path_answers_as_fastapi_does(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """``application/json`` takes the short path, ``+json`` FastAPI's: the same answers."""
    body = json.dumps(ALLOCATION_EXAMPLE["online"]["value"])
    calls: list[str] = []
    real = AllocationCreate.model_validate

    def spy(data: Any, *args: Any, **kwargs: Any) -> AllocationCreate:
        calls.append("short")
        return real(data, *args, **kwargs)

    answers = []
    for content_type in ("application/json", "application/vnd.dispatchlab+json"):
        headers = {**keys["oms"], "Content-Type": content_type}
        with patch.object(AllocationCreate, "model_validate", spy):
            answer = client.post("/v1/allocations", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        answers.append(_without_run_details(answer.json()))
    assert calls == ["short"]  # the +json request went FastAPI's way
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("key", "body", "status"),
    [
        (None, ALLOCATION_EXAMPLE["online"]["value"], 401),  # valid body, no key
        ("planner", ALLOCATION_EXAMPLE["online"]["value"], 403),  # valid body, wrong role
        (None, {"request": {}}, 401),  # FastAPI checks the key before the body's fields
        # ... and before a body that is not JSON (FastAPI parses it before the key's check:
        # it was a 422 to any caller, see test_auth_first)
        (None, "{not json", 401),
        ("oms", "{not json", 422),
    ],
)
def test_short_path_keeps_fastapis_order_of_checks(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    key: str | None,
    body: Any,
    status: int,
) -> None:
    """Who may call and what is wrong with the body are answered as FastAPI answers them."""
    headers = {"Content-Type": "application/json", **(keys[key] if key else {})}
    content = body if isinstance(body, str) else json.dumps(body)
    answer = client.post("/v1/allocations", content=content, headers=headers)
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    ("content_type", "parsed_by_fastapi"),
    [("application/json", 0), ("application/vnd.dispatchlab+json", 1)],
)
def test_a_json_body_is_parsed_once(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    content_type: str,
    parsed_by_fastapi: int,
) -> None:
    """The middleware parses every JSON body (to refuse a key given twice) and FastAPI parsed
    it again (0.06 s for a 10,000-order scenario): an ``application/json`` body reaches its
    route as the middleware parsed it; FastAPI validates it as before (the same answers)."""
    import starlette.requests

    parsed: list[bytes] = []

    def loads(raw: bytes) -> Any:
        parsed.append(raw)
        return json.loads(raw)

    monkeypatch.setattr(starlette.requests, "json", SimpleNamespace(loads=loads))
    good = copy.deepcopy(SIMULATION_EXAMPLE["small"]["value"])
    headers = {**keys["planner"], "Content-Type": content_type}
    bad = client.post("/v1/simulations", json={**good, "replications": 0}, headers=headers)
    assert bad.status_code == 422, bad.text
    assert [e["field"] for e in bad.json()["detail"]] == ["replications"]
    answer = client.post("/v1/simulations", json=good, headers=headers)
    assert answer.status_code == 202, answer.text
    assert len(parsed) == 2 * parsed_by_fastapi


def test_the_short_path_validates_the_body_the_middleware_parsed(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An allocation's body is parsed once, by the middleware (to refuse a key given twice):
    the short path validated the raw body again with pydantic's JSON parser (about 10 % of
    a 2,000-order request's validation); it validates the middleware's value now."""
    import starlette.requests

    parsed: list[bytes] = []

    def loads(raw: bytes) -> Any:
        parsed.append(raw)
        return json.loads(raw)

    def again(*args: Any, **kwargs: Any) -> AllocationCreate:
        raise AssertionError("the body was parsed again")

    validated: list[Any] = []
    real = AllocationCreate.model_validate

    def validate(data: Any, *args: Any, **kwargs: Any) -> AllocationCreate:
        validated.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(starlette.requests, "json", SimpleNamespace(loads=loads))
    monkeypatch.setattr(AllocationCreate, "model_validate_json", again)
    monkeypatch.setattr(AllocationCreate, "model_validate", validate)
    body = copy.deepcopy(ALLOCATION_EXAMPLE["online"]["value"])
    answer = client.post("/v1/allocations", json=body, headers=keys["oms"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["assignments"]
    assert validated == [body]
    assert parsed == []


@pytest.mark.parametrize(
    ("model", "example"),
    [
        (PlanCreate, PLAN_EXAMPLE),
        (RoutesCreate, ROUTES_EXAMPLE),
        (SimulationCreate, SIMULATION_EXAMPLE),
        (WhatIfCreate, WHATIF_EXAMPLE),
    ],
)
def test_a_body_holding_a_scenario_is_validated_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseModel], example: dict[str, Any]
) -> None:
    """A 10,000-order scenario is over a million objects: the collector's full collections
    over them took about half the validation's time (scenarios.bulk); FastAPI validates the
    body, so the model pauses it itself."""
    from api.schemas import common

    held: list[bool] = []
    real = common.collector_paused

    @contextlib.contextmanager
    def paused() -> Iterator[None]:
        with real():
            held.append(gc.isenabled())
            yield

    monkeypatch.setattr(common, "collector_paused", paused)
    body = model.model_validate(copy.deepcopy(example["small"]["value"]))
    assert held == [False]
    assert gc.isenabled()
    assert model.model_validate(body.model_dump()) == body
