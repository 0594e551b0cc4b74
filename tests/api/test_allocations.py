"""POST /v1/allocations: allocation answered now or as a job, limits, bad input, fallback."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.db.models import Job
from api.examples import ALLOCATION_EXAMPLE, ALLOCATION_REQUEST, PLAN_EXAMPLE
from api.jobs import TaskSpec
from api.schemas.allocations import AllocationCreate
from tests.api import helpers
from tests.api.conftest import app_of, registry_with_test_kinds, wait_for
from tests.api.helpers import HELD_ENDED, HELD_STARTED, solver_held


def _body(**params: Any) -> dict[str, Any]:
    body = copy.deepcopy(ALLOCATION_EXAMPLE["online"]["value"])
    body["params"].update(params)
    return body


def test_allocation_ships_every_line_and_explains_why(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    answer = client.post("/v1/allocations", json=_body(), headers=keys["oms"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "optimal" and body["fallback"] is False
    shipped = {(a["sku"], a["quantity"]) for a in body["assignments"]}
    assert shipped == {("tea", 2), ("cups", 1)}
    assert body["explanations"][0]["order_id"] == "o1"
    assert body["solver"]["engine"].startswith("allocation online")


def test_more_threads_than_cores_are_capped_with_a_note(
    client: TestClient, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``params.threads`` above the cores the service may use is capped, and the answer
    says so; a count within them is left as asked."""
    from api.tasks import allocations as task

    monkeypatch.setattr(task, "usable_cpus", lambda: 2)
    answer = client.post("/v1/allocations", json=_body(threads=256), headers=keys["oms"])
    assert answer.status_code == 200, answer.text
    notes = answer.json()["stats"]["notes"]
    assert "params.threads 256 capped at 2, the cores this service may use" in notes
    answer = client.post("/v1/allocations", json=_body(threads=2), headers=keys["oms"])
    assert answer.status_code == 200, answer.text
    assert not any("capped at" in note for note in answer.json()["stats"]["notes"])


def test_shortage_is_reported_as_unfilled_with_the_reason(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = _body()
    body["request"]["orders"][0]["lines"][1]["quantity"] = 500  # more cups than anywhere
    answer = client.post("/v1/allocations", json=body, headers=keys["oms"])
    assert answer.status_code == 200
    unfilled = answer.json()["unfilled"]
    assert unfilled and unfilled[0]["sku"] == "cups"


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["request"]["orders"][0].update(lines=[]), "request.orders.0.lines"),
        (
            lambda b: b["request"]["nodes"][0].update(location={"x": 1, "y": 2}),
            "request.nodes.0.location",
        ),
        (lambda b: b["params"].update(mode="weekly"), "params.mode"),
        (
            lambda b: b["request"]["orders"].append(copy.deepcopy(b["request"]["orders"][0])),
            "request.orders.1.id",
        ),
        # true is no quantity or price (it was read as 1)
        (
            lambda b: b["request"]["orders"][0]["lines"][0].update(quantity=True),
            "request.orders.0.lines.0.quantity",
        ),
        (
            lambda b: b["request"].update(costs={"per_shipment": True}),
            "request.costs.per_shipment",
        ),
        # above max_sync_time_limit_s when the answer must come now (else a job)
        (
            lambda b: b.update(mode="sync", params={**b["params"], "time_limit_s": 45}),
            "params.time_limit_s",
        ),
        (lambda b: b["params"].update(time_limit_s=601), "params.time_limit_s"),
        (lambda b: b.update(mode="later"), "mode"),
        # a baseline runs no solver: the backend was ignored without a word
        (lambda b: b["params"].update(baseline="nearest", backend="pyomo"), "params.backend"),
        # past the solver's integer range: it was a 200 with a total cost of -9.2e12
        (
            lambda b: b["request"].update(
                travel_s=[[10**12], [10**12]], costs={"late_per_hour": 1e7}
            ),
            "request.costs.late_per_hour",
        ),
        (
            lambda b: b["request"].update(distance_km=[[1e308], [1.0]]),
            "request.distance_km.0.0",
        ),
        # the solver's own check of the totals, named from the request root too
        (
            lambda b: b["request"]["orders"][0].update(
                lines=[{"sku": f"s{i}", "quantity": 10**12} for i in range(100)]
            ),
            "request.orders",
        ),
    ],
)
def test_bad_allocation_input_is_422_naming_the_field(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    mutate: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    body = _body()
    mutate(body)
    answer = client.post("/v1/allocations", json=body, headers=keys["oms"])
    assert answer.status_code == 422, answer.text
    assert field in [d["field"] for d in answer.json()["detail"]]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("node", "field", "reason"),
    [
        (
            {"opening_hours": [{"start_s": 0, "end_s": 60}, {"start_s": 50, "end_s": 90}]},
            "nodes.0.opening_hours.1",
            "windows must be sorted and disjoint; starts at 50 s, not after the previous "
            "window's end 60 s",
        ),
        # a bad value of one SKU: was "safety_stock: Input should be a valid integer (and
        # 1 more error)", the error of the one-number form
        (
            {"safety_stock": {"tea": -1}},
            "nodes.0.safety_stock.tea",
            "Input should be greater than or equal to 0",
        ),
        (
            {"safety_stock": {"te\ta": 1}},
            "nodes.0.safety_stock.te\\ta",
            "must not contain control characters (such as NUL, tab or newline)",
        ),
        # a SKU id as a key: 1 to 200 characters, as an order line's sku (both were taken)
        ({"inventory": {"": 1}}, "nodes.0.inventory.", "Key should have at least 1 character"),
        (
            {"safety_stock": {"s" * 201: 1}},
            f"nodes.0.safety_stock.{'s' * 201}",
            "Key should have at most 200 characters",
        ),
    ],
)
def test_a_bad_node_is_the_same_422_in_an_allocation_request_and_in_a_scenario(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    node: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    """An allocation request's nodes and a scenario's share their checks
    (:class:`scenarios.model.StockedNode`): one bad node is one 422, named under
    ``request.`` by POST /v1/allocations and under ``scenario.`` by POST /v1/plans."""
    body = _body()
    body["request"]["nodes"][0].update(node)
    answer = client.post("/v1/allocations", json=body, headers=keys["oms"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [{"field": f"request.{field}", "reason": reason}]
    plan = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
    plan["scenario"]["nodes"][0].update(node)
    answer = client.post("/v1/plans", json=plan, headers=keys["oms"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [{"field": f"scenario.{field}", "reason": reason}]


@pytest.mark.parametrize("field", ["inventory", "safety_stock"])
def test_a_stock_key_given_twice_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], field: str
) -> None:
    """FastAPI's parser (and pydantic's, on the fast path) kept a repeated key's last value:
    ``{"tea": 3, "tea": 1}`` in a node's stock was 1 unit of tea. The middleware names it,
    for every route: an allocation request and a scenario alike."""
    reason = (
        "duplicate key 'TWICE': given more than once in one JSON object (which value counts "
        "is ambiguous)"
    )
    body = _body()
    body["request"]["nodes"][0][field] = {"TWICE": 3, "other": 1}
    text = json.dumps(body).replace('"other"', '"TWICE"')
    headers = {**keys["oms"], "content-type": "application/json"}
    answer = client.post("/v1/allocations", content=text, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": f"request.nodes.0.{field}.TWICE", "reason": reason}
    ]
    plan = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
    plan["scenario"]["nodes"][0][field] = {"TWICE": 3, "other": 1}
    text = json.dumps(plan).replace('"other"', '"TWICE"')
    answer = client.post("/v1/plans", content=text, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": f"scenario.nodes.0.{field}.TWICE", "reason": reason}
    ]
    assert client.get("/v1/jobs", headers=keys["oms"]).json()["count"] == 0


def test_orders_per_synchronous_request_are_capped(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    tight = Settings(**{**settings.model_dump(), "max_orders_sync": 1, "auth_enabled": False})
    body = _body()
    body["request"]["orders"].append({**body["request"]["orders"][0], "id": "o2"})
    answer = make_client(tight).post("/v1/allocations", json={**body, "mode": "sync"})
    assert answer.status_code == 413
    assert answer.json()["message"].startswith("request.orders: 2 orders; at most 1")


def _with_optimiser(
    make_client: Callable[..., TestClient],
    settings: Settings,
    target: str,
    *,
    bounded: bool = False,
    **changes: Any,
) -> TestClient:
    """A keyless client whose allocation optimiser is ``target`` (the real fallback kept)."""
    registry = registry_with_test_kinds()
    registry.add(
        TaskSpec(
            "allocations",
            target,
            fallback="api.tasks.allocations:fallback",
            solver="allocation",
            bounded=bounded,
        )
    )
    tuned = Settings(**{**settings.model_dump(), "auth_enabled": False, **changes})
    return make_client(tuned, registry)


def test_crashing_optimiser_gets_the_nearest_node_baseline(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    client = _with_optimiser(make_client, settings, "tests.api.helpers:crash_task")
    answer = client.post("/v1/allocations", json=_body())
    assert answer.status_code == 200
    body = answer.json()
    assert body["fallback"] is True and body["method"] == "nearest"
    assert "solver exploded" in body["fallback_reason"]
    assert sum(a["quantity"] for a in body["assignments"]) == 3


@pytest.mark.parametrize("bounded", [False, True])
def test_a_result_the_solver_cannot_build_is_its_crash_not_a_422(
    settings: Settings, make_client: Callable[..., TestClient], bounded: bool
) -> None:
    # a pyomo solve stopped before its root LP built a result with a bound of -inf: its
    # ValidationError was answered as the client's, a 422 on "bound"
    client = _with_optimiser(
        make_client, settings, "tests.api.helpers:invalid_result_allocation", bounded=bounded
    )
    answer = client.post("/v1/allocations", json=_body())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["fallback"] is True and body["method"] == "nearest"
    assert "the solver built an invalid result" in body["fallback_reason"]


def test_one_online_order_is_solved_on_the_event_loop_and_more_in_the_pool(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    client = _with_optimiser(
        make_client, settings, "tests.api.helpers:recording_allocation", bounded=True
    )
    helpers.SOLVED_ON.clear()
    one = client.post("/v1/allocations", json=_body())
    two = _body()
    two["request"]["orders"].append({**two["request"]["orders"][0], "id": "o2"})
    both = client.post("/v1/allocations", json=two)
    batch = client.post("/v1/allocations", json=_body(mode="batch"))
    assert [a.status_code for a in (one, both, batch)] == [200, 200, 200]
    assert [a.json()["fallback"] for a in (one, both, batch)] == [False, False, False]
    on_loop, *pooled = helpers.SOLVED_ON
    assert not on_loop.startswith("solver_")
    assert len(pooled) == 2 and all(name.startswith("solver_") for name in pooled)


def test_crash_of_a_solve_on_the_event_loop_gets_the_baseline(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    client = _with_optimiser(make_client, settings, "tests.api.helpers:crash_task", bounded=True)
    answer = client.post("/v1/allocations", json=_body())
    assert answer.status_code == 200
    body = answer.json()
    assert body["fallback"] is True and body["method"] == "nearest"
    assert body["fallback_reason"] == "solver error: RuntimeError: solver exploded"
    assert client.post("/v1/allocations", json=_body()).json()["fallback"] is True


def test_answered_allocation_is_stored_as_a_finished_sync_job(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    answer = client.post("/v1/allocations", json=_body(), headers=keys["oms"])
    assert answer.status_code == 200
    job_id = answer.json()["job_id"]
    # written behind the answer: reading it waits for the write
    job = client.get(f"/v1/jobs/{job_id}", headers=keys["oms"]).json()
    assert job["status"] == "done" and job["mode"] == "sync" and job["kind"] == "allocations"
    assert job["result"]["status"] == answer.json()["status"]
    assert [e["message"] for e in job["events"]] == ["solving synchronously", "done"]
    listed = client.get("/v1/jobs", headers=keys["oms"]).json()
    assert job_id in {j["id"] for j in listed["data"]}
    with app_of(client).state.ctx.sessions() as session:
        row = session.get(Job, job_id)
        assert row is not None
        assert row.payload == _body()  # the request as sent
        assert AllocationCreate.model_validate(row.payload) == AllocationCreate.model_validate(
            _body()
        )
    # a body in UTF-16 (valid JSON, not UTF-8) is refused, as the command line refuses
    # such a file (until session 82 it was answered, and its row kept the model)
    utf16 = client.post(
        "/v1/allocations",
        content=json.dumps(_body()).encode("utf-16"),
        headers={**keys["oms"], "Content-Type": "application/json"},
    )
    assert utf16.status_code == 422, utf16.text
    assert utf16.json()["detail"] == [
        {
            "field": "(body)",
            "reason": "JSON must be UTF-8 (RFC 8259 section 8.1), not UTF-16: "
            "re-encode it as UTF-8",
        }
    ]
    # a UTF-8 byte-order mark is dropped: the row keeps the body as sent without it (it
    # began with the mark: reading the job back was a 500 on SQLite, a 404 on PostgreSQL)
    bom = client.post(
        "/v1/allocations",
        content=b"\xef\xbb\xbf" + json.dumps(_body()).encode(),
        headers={**keys["oms"], "Content-Type": "application/json"},
    )
    assert bom.status_code == 200, bom.text
    job_bom = client.get(f"/v1/jobs/{bom.json()['job_id']}", headers=keys["oms"])  # waits
    assert job_bom.status_code == 200, job_bom.text
    assert job_bom.json()["status"] == "done"
    with app_of(client).state.ctx.sessions() as session:
        row = session.get(Job, bom.json()["job_id"])
        assert row is not None and row.payload == _body()
    # with an Idempotency-Key (the two-write path) the row keeps the body as sent too
    again = client.post(
        "/v1/allocations", json=_body(), headers={**keys["oms"], "Idempotency-Key": "k-1"}
    )
    with app_of(client).state.ctx.sessions() as session:
        row = session.get(Job, again.json()["job_id"])
        assert row is not None and row.payload == _body()


def test_overrunning_optimiser_gets_the_baseline_and_the_job_says_why(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    client = _with_optimiser(
        make_client, settings, "tests.api.helpers:held_task", fallback_grace_s=0.2
    )
    with solver_held():
        answer = client.post("/v1/allocations", json=_body(time_limit_s=0.1))
        # answered while the optimiser still ran (it was given 3 s of sleep, and the answer
        # had to come within 2.5 s of wall time, which a loaded machine can take)
        assert HELD_STARTED.is_set() and not HELD_ENDED.is_set()
    assert answer.status_code == 200
    body = answer.json()
    assert body["fallback"] is True and body["method"] == "nearest"
    assert "no answer within 0.1 s + 0.2 s" in body["fallback_reason"]
    job = client.get(f"/v1/jobs/{body['job_id']}").json()
    assert job["status"] == "done" and job["fallback"] is True
    assert job["error"] == body["fallback_reason"]


@pytest.mark.shares_service
def test_malformed_json_is_422_naming_the_body_and_the_position(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    headers = {**keys["oms"], "content-type": "application/json"}
    answer = client.post("/v1/allocations", content=b'{"request": {bad', headers=headers)
    assert answer.status_code == 422
    problem = answer.json()["detail"][0]
    assert problem["field"] == "(body)"
    assert problem["reason"].startswith("not valid JSON at character 13")


def test_only_orders_no_capacity_can_bind_are_solved_on_the_event_loop() -> None:
    """A capacity below the order's units (VIP: below its share) sends the solve to the pool."""
    from api.routes.allocations import _inline

    def body(capacity: int | None, tier: str = "standard", share: float = 1.0) -> AllocationCreate:
        raw = _body(mode="online")
        raw["request"]["orders"][0]["tier"] = tier
        raw["request"].setdefault("rules", {})["vip_capacity_share"] = share
        for node in raw["request"]["nodes"]:
            node["capacity_units"] = capacity
        return AllocationCreate.model_validate(raw)

    units = sum(line["quantity"] for line in _body()["request"]["orders"][0]["lines"])
    assert _inline(body(None))
    assert _inline(body(units))
    assert _inline(body(0))  # closed, not binding
    assert not _inline(body(units - 1))
    assert _inline(body(2 * units, "vip", 0.5))
    assert not _inline(body(2 * units - 1, "vip", 0.5))


@pytest.mark.parametrize("params", [{}, {"mode": "online"}, {"mode": "batch", "seed": 3}])
def test_params_left_out_take_the_service_defaults_not_the_solver_ones(
    params: dict[str, Any],
) -> None:
    # giving any params dropped the service's 10 s time limit for the solver's 60 s, which
    # the synchronous endpoint then refused (422: at most 30 s)
    body = {"request": ALLOCATION_EXAMPLE["online"]["value"]["request"], "params": params}
    for parsed in (
        AllocationCreate.model_validate(body),
        AllocationCreate.model_validate_json(json.dumps(body)),
    ):
        assert parsed.params.time_limit_s == 10.0
        assert parsed.params.mode == params.get("mode", "batch")
    given = AllocationCreate.model_validate({**body, "params": {"time_limit_s": 2}})
    assert given.params.time_limit_s == 2


def test_a_partial_params_object_is_answered_synchronously(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = {"request": ALLOCATION_EXAMPLE["online"]["value"]["request"], "params": {}}
    body["params"] = {"mode": "online"}
    answer = client.post("/v1/allocations", json=body, headers=keys["oms"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["solver"]["time_limit_s"] == 10.0


#: Where a test puts the control character in an id.
BAD = "<bad>"


def _sku_key(where: str) -> Callable[[dict[str, Any]], None]:
    """A SKU id holding BAD as the key of the first node's ``where`` (``inventory``, ...)."""

    def mutate(request: dict[str, Any]) -> None:
        request["nodes"][0][where] = {f"te{BAD}a": 1}

    return mutate


def _rules(**rules: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(request: dict[str, Any]) -> None:
        request["rules"] = rules

    return mutate


def _update(kind: str, index: int, **values: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(request: dict[str, Any]) -> None:
        request[kind][index].update(values)

    return mutate


@pytest.mark.shares_service
@pytest.mark.parametrize("bad", ["\x00", "\t"])
@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_sku_key("inventory"), f"nodes.0.inventory.te{BAD}a"),
        (_sku_key("safety_stock"), f"nodes.0.safety_stock.te{BAD}a"),
        (_rules(restricted_skus={f"te{BAD}a": ["nl"]}), f"rules.restricted_skus.te{BAD}a"),
        (_rules(excluded_nodes={"nl": [f"dc{BAD}1"]}), "rules.excluded_nodes.nl.0"),
        # refused before: the ids that are values
        (_update("orders", 0, lines=[{"sku": f"te{BAD}a", "quantity": 1}]),
         "orders.0.lines.0.sku"),
        (_update("nodes", 1, id=f"store{BAD}1"), "nodes.1.id"),
    ],
)  # fmt: skip
def test_an_allocation_id_with_a_control_character_is_refused_by_every_path(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    tmp_path: Path,
    mutate: Callable[[dict[str, Any]], None],
    field: str,
    bad: str,
) -> None:
    """A SKU id as a key (a node's stock and safety stock, the restricted SKUs) or a node id
    of the sanctions list holding a NUL was a 422 over HTTP, but allocated by ``dispatchlab
    allocate`` and by ``allocate(request)``: now each path refuses it naming the field, as
    they do an order line's sku or a node's id (a key is named with the character escaped,
    so the CLI's error stays one line)."""
    from pydantic import ValidationError
    from typer.testing import CliRunner

    from dispatchlab.cli import app
    from scenarios.errors import input_error_from_validation
    from scenarios.geo import CONTROL_CHARACTERS_REASON
    from solvers.allocation import AllocationRequest

    request = copy.deepcopy(ALLOCATION_REQUEST)
    mutate(request)
    request = json.loads(json.dumps(request).replace(BAD, json.dumps(bad)[1:-1]))
    escaped = field.replace(BAD, repr(bad)[1:-1])  # ``\x00``, ``\t``: the key, escaped

    answer = client.post(
        "/v1/allocations", json={**_body(), "request": request}, headers=keys["oms"]
    )
    assert answer.status_code == 422, answer.text
    if bad == "\x00":  # refused at the boundary, before the models (PostgreSQL stores none)
        reason = "must not contain NUL (\\u0000) characters"  # a key named escaped, as below
        assert answer.json()["detail"] == [{"field": f"request.{escaped}", "reason": reason}]
    else:
        assert answer.json()["detail"] == [
            {"field": f"request.{escaped}", "reason": CONTROL_CHARACTERS_REASON}
        ]

    with pytest.raises(ValidationError) as info:
        AllocationRequest.model_validate(request)
    problem = input_error_from_validation(info.value)
    assert (problem.field, problem.reason) == (escaped, CONTROL_CHARACTERS_REASON)

    path = tmp_path / "req.json"
    path.write_text(json.dumps(request))
    result = CliRunner().invoke(app, ["allocate", str(path), "--time-limit", "2", "--out", "-"])
    assert result.exit_code == 2, result.output
    assert f"{escaped}: {CONTROL_CHARACTERS_REASON}" in result.output


def test_a_fallback_answer_is_audited_as_a_fallback_with_its_solver(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    """The audit row of an allocation names its status, ``fallback:`` first when the
    baseline answered, and the solver that answered (:func:`api.routes.answers.note_answer`)."""
    from sqlalchemy import select

    from api.context import ServiceContext
    from api.db.models import AuditEntry

    client = _with_optimiser(make_client, settings, "tests.api.helpers:crash_task")
    answer = client.post("/v1/allocations", json=_body())
    assert answer.status_code == 200 and answer.json()["fallback"] is True, answer.text
    ctx: ServiceContext = app_of(client).state.ctx
    assert ctx.audit is not None and ctx.sessions is not None
    ctx.audit.flush()
    with ctx.sessions() as session:
        row = session.scalars(select(AuditEntry).where(AuditEntry.path == "/v1/allocations")).one()
    assert row.job_id == answer.json()["job_id"]
    assert row.result == f"fallback:{answer.json()['status']}", row.result
    engine = answer.json()["solver"]["engine"]
    assert row.solver is not None and row.solver.startswith(f"{engine} ("), row.solver


def test_an_allocation_job_reports_its_share_of_the_time_limit_and_the_solver_phase() -> None:
    """It reported none until done (its progress callback was ignored): now the share of its
    time limit used, below 1, with the solver's phase and, once known, the certified gap."""
    import threading

    from api.tasks.allocations import run
    from api.tasks.progress import PROGRESS_CAP
    from solvers.allocation import generate_literature

    reports: list[tuple[float, dict[str, Any]]] = []

    def progress(fraction: float, detail: dict[str, Any] | None = None, /) -> None:
        assert detail is not None
        reports.append((fraction, detail))

    # 5 orders, solved to optimality in 0.1-0.2 s far inside the 30 s limit: every phase is
    # reached and reported as it begins (the gap with the integer phase), however loaded the
    # machine (150 orders at a 1.5 s limit, what the solve reached left to the clock, failed
    # under heavy load)
    request = generate_literature(seed=7, num_orders=5, num_nodes=10)
    body = {
        "request": request.model_dump(mode="json"),
        "params": {"mode": "batch", "time_limit_s": 30.0, "seed": 3},
    }

    def tickers() -> list[threading.Thread]:
        # by name, not by count: another test's thread may end meanwhile
        return [t for t in threading.enumerate() if t.name == "allocation-progress"]

    assert not tickers()
    out = run(body, progress=progress)
    assert out["status"] in {"optimal", "feasible"}
    assert not tickers()  # the reporting thread has ended
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and all(0 <= f <= PROGRESS_CAP for f in fractions)
    assert any(0 < f < 1 for f in fractions), fractions
    phases = {d["phase"] for _, d in reports}
    assert {"warm start", "column generation", "integer phase", "explaining"} <= phases
    assert {d["time_limit_s"] for _, d in reports} == {30.0}
    gaps = [d["gap"] for _, d in reports if "gap" in d]
    assert gaps and all(0 <= g <= 1 for g in gaps)
    assert "stage" not in reports[-1][1]


#: fields of an allocation answer that tell the time it took, not what it decided
TIMED = ("solve_time_s", "build_s", "lp_s", "mip_s", "explain_s")


def _decided(answer: dict[str, Any]) -> dict[str, Any]:
    """An allocation answer without its job id and the seconds it took."""
    out = {k: v for k, v in answer.items() if k not in ("job_id", *TIMED)}
    out["stats"] = {k: v for k, v in answer["stats"].items() if k not in TIMED}
    out["solver"] = {k: v for k, v in answer["solver"].items() if k != "runtime_s"}
    return out


def _finished(client: TestClient, link: str, headers: dict[str, str]) -> dict[str, Any]:
    job: dict[str, Any] = wait_for(
        lambda: client.get(link, headers=headers).json(),
        lambda j: j["status"] in {"done", "failed", "cancelled"},
        timeout_s=120,
    )
    return job


def test_a_slow_or_large_allocation_becomes_a_job_unless_it_must_be_answered_now(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    """They were refused (422 above max_sync_time_limit_s, 413 above max_orders_sync): now
    ``mode`` ``auto`` (the default) queues them (202), ``sync`` refuses them as before, and a
    body answered now before is answered now (200), as the OMS's usual call is."""
    tight = Settings(
        **{
            **settings.model_dump(),
            "max_sync_time_limit_s": 5.0,
            "max_orders_sync": 1,
            "max_orders": 3,
            "auth_enabled": False,
        }
    )
    client = make_client(tight)
    assert client.post("/v1/allocations", json=_body()).status_code == 200
    slow = _body(time_limit_s=6)
    queued = client.post("/v1/allocations", json=slow)
    assert queued.status_code == 202, queued.text
    assert queued.headers["location"] == queued.json()["links"]["self"]
    assert queued.json()["status"] == "queued"
    refused = client.post("/v1/allocations", json={**slow, "mode": "sync"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "params.time_limit_s"
    two = _body()
    two["request"]["orders"].append({**two["request"]["orders"][0], "id": "o2"})
    assert client.post("/v1/allocations", json=two).status_code == 202
    assert client.post("/v1/allocations", json={**two, "mode": "sync"}).status_code == 413
    four = _body()
    four["request"]["orders"] += [
        {**four["request"]["orders"][0], "id": f"o{i}"} for i in range(2, 5)
    ]
    too_many = client.post("/v1/allocations", json={**four, "mode": "async"})
    assert too_many.status_code == 413
    assert too_many.json()["message"] == "request.orders: 4 orders; at most 3 per request"


@pytest.mark.parametrize("params", [{"mode": "online"}, {"mode": "batch", "seed": 5}])
def test_an_allocation_job_ends_with_the_synchronous_answer(
    client: TestClient, keys: dict[str, dict[str, str]], params: dict[str, Any]
) -> None:
    """The job's result is the answer the same request gets now (an
    :class:`AllocationsPublic`, its job id that job's), on a seed and a request the solver
    proves optimal well within its time limit (so its budget does not decide the answer)."""
    from api.schemas.allocations import AllocationsPublic

    body = _body(**params)
    now = client.post("/v1/allocations", json=body, headers=keys["oms"])
    assert now.status_code == 200, now.text
    queued = client.post("/v1/allocations", json={**body, "mode": "async"}, headers=keys["oms"])
    assert queued.status_code == 202, queued.text
    job = _finished(client, queued.json()["links"]["self"], keys["oms"])
    assert (job["status"], job["kind"], job["mode"]) == ("done", "allocations", "async"), job
    assert job["progress"] == 1.0 and job["progress_detail"] is None
    result = AllocationsPublic.model_validate(job["result"])
    assert result.job_id == job["id"] == queued.json()["job_id"] and not result.fallback
    assert now.json()["status"] == "optimal"
    assert _decided(job["result"]) == _decided(now.json())


def test_an_allocation_job_answered_by_the_baseline_says_so_in_its_result(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    client = _with_optimiser(make_client, settings, "tests.api.helpers:crash_task")
    queued = client.post("/v1/allocations", json={**_body(), "mode": "async"})
    assert queued.status_code == 202, queued.text
    job = _finished(client, queued.json()["links"]["self"], {})
    assert job["status"] == "done" and job["fallback"] is True, job
    result = job["result"]
    assert result["fallback"] is True and result["method"] == "nearest"
    assert "solver exploded" in result["fallback_reason"]
    assert result["fallback_reason"] == job["error"]


def _batch(num_orders: int, time_limit_s: float) -> dict[str, Any]:
    """An async batch of literature orders that takes its time limit (a gap of zero)."""
    from solvers.allocation import generate_literature

    request = generate_literature(seed=7, num_orders=num_orders, num_nodes=10)
    params = {"mode": "batch", "time_limit_s": time_limit_s, "seed": 3, "mip_rel_gap": 0.0}
    return {"request": request.model_dump(mode="json"), "params": params, "mode": "async"}


def test_a_running_allocation_job_reports_its_phase_and_certified_gap(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """What it is doing while it runs: the solver's phase, the time used of its limit and,
    once known, the certified gap (seen until now only in plan jobs)."""
    queued = client.post("/v1/allocations", json=_batch(1000, 6.0), headers=keys["oms"])
    assert queued.status_code == 202, queued.text
    link = queued.json()["links"]["self"]
    seen: list[dict[str, Any]] = []

    def fetch() -> dict[str, Any]:
        job: dict[str, Any] = client.get(link, headers=keys["oms"]).json()
        if job["status"] == "running" and job["progress_detail"] is not None:
            seen.append(job)
        return job

    job = wait_for(fetch, lambda j: j["status"] in {"done", "failed"}, timeout_s=120)
    assert job["status"] == "done" and not job["fallback"], job
    assert seen, job
    phases = {j["progress_detail"]["phase"] for j in seen}
    solver = {"warm start", "column generation", "integer phase", "explaining"}
    assert phases & solver and phases <= {"solving", *solver}, phases
    assert {j["progress_detail"]["time_limit_s"] for j in seen} == {6.0}
    # the certified gap once the solver knows one (on a busy machine the service's ticks may
    # write the job's row only before the solve's phases and in its explanations)
    gaps = [j["progress_detail"]["gap"] for j in seen if j["progress_detail"]["gap"] is not None]
    assert all(0.0 <= g <= 1.0 for g in gaps), seen
    assert job["result"]["gap"] is not None and 0.0 <= job["result"]["gap"] <= 1.0
    shares = [j["progress"] for j in seen]
    assert shares == sorted(shares) and all(0.0 <= p <= 0.95 for p in shares)


def test_cancelling_a_running_allocation_job_stops_its_solve(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A job of 60 s cancelled in its solve ends cancelled in seconds, without a result;
    its worker process and the solve's helper processes are gone."""
    import time

    queued = client.post("/v1/allocations", json=_batch(1000, 60.0), headers=keys["oms"])
    assert queued.status_code == 202, queued.text
    link = queued.json()["links"]["self"]
    wait_for(
        lambda: client.get(link, headers=keys["oms"]).json(),
        lambda j: j["status"] == "running" and j["progress_detail"] is not None,
        timeout_s=60,
    )
    asked = time.monotonic()
    cancel = client.delete(link, headers=keys["oms"])
    assert cancel.status_code in (200, 202), cancel.text
    job = _finished(client, link, keys["oms"])
    assert job["status"] == "cancelled" and job["result"] is None, job
    assert job["error"] == "cancelled by the client while running"
    assert time.monotonic() - asked < 20  # not the 60 s of its time limit


def test_an_async_allocation_is_queued_once_per_idempotency_key(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    headers = {**keys["oms"], "Idempotency-Key": "batch-17"}
    a = client.post("/v1/allocations", json={**_body(), "mode": "async"}, headers=headers)
    b = client.post("/v1/allocations", json={**_body(), "mode": "async"}, headers=headers)
    assert a.status_code == b.status_code == 202
    assert a.json()["job_id"] == b.json()["job_id"]
    assert b.headers["idempotent-replayed"] == "true"
    jobs = client.get("/v1/jobs", headers=keys["oms"], params={"kind": "allocations"}).json()
    assert jobs["count"] == 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda b: b["request"].update(
                travel_s=[[10**12], [10**12]], costs={"late_per_hour": 1e7}
            ),
            "request.costs.late_per_hour",
        ),
        (
            lambda b: b["request"]["orders"][0].update(
                lines=[{"sku": f"s{i}", "quantity": 10**12} for i in range(100)]
            ),
            "request.orders",
        ),
        (lambda b: b["request"]["orders"][0].update(lines=[]), "request.orders.0.lines"),
    ],
)
def test_an_async_allocation_the_solver_refuses_is_422_before_anything_is_queued(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    mutate: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    """As when answered now, not a 202 and then a job failed on bad input."""
    body = {**_body(), "mode": "async"}
    mutate(body)
    answer = client.post("/v1/allocations", json=body, headers=keys["oms"])
    assert answer.status_code == 422, answer.text
    assert field in [d["field"] for d in answer.json()["detail"]]
    assert client.get("/v1/jobs", headers=keys["oms"]).json()["count"] == 0


@pytest.mark.parametrize(
    ("cap", "said"),
    [
        ("max_nodes", "request.nodes: 2 nodes; at most 1 per request (max_nodes)"),
        (
            "max_order_lines",
            "request.orders: 2 order lines in all; at most 1 per request (max_order_lines)",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_nodes_and_order_lines_past_their_caps_are_422_naming_the_field_and_the_cap(
    settings: Settings, make_client: Callable[..., TestClient], cap: str, said: str, mode: str
) -> None:
    """Only the orders were counted: a request of 100,000 nodes, or of one order with
    300,000 lines, was taken (and queued) within the body limit. A 422 naming the field and
    the setting, before anything is queued; at the cap the request is served."""
    capped = Settings(**{**settings.model_dump(), cap: 1, "auth_enabled": False})
    client = make_client(capped)
    answer = client.post("/v1/allocations", json={**_body(), "mode": mode})
    assert answer.status_code == 422, answer.text
    field, _, reason = said.partition(": ")
    assert answer.json()["detail"] == [{"field": field, "reason": reason}]
    assert client.get("/v1/jobs").json()["count"] == 0
    at_cap = Settings(**{**settings.model_dump(), cap: 2, "auth_enabled": False})
    answer = make_client(at_cap).post("/v1/allocations", json={**_body(), "mode": mode})
    assert answer.status_code in (200, 202), answer.text
