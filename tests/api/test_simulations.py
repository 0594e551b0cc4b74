"""POST /v1/simulations and POST /v1/whatif: twin studies as jobs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.db.models import Job
from api.examples import PLAN_SCENARIO, SIMULATION_EXAMPLE, WHATIF_EXAMPLE
from tests.api.conftest import app_of, wait_for


def _example(examples: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(examples["small"]["value"])


def _result(client: TestClient, answer: Any, headers: dict[str, str]) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = wait_for(
        lambda: client.get(answer.headers["location"], headers=headers).json(),
        lambda j: j["status"] in {"done", "failed"},
    )
    assert job["status"] == "done", job
    result: dict[str, Any] = job["result"]
    return result


def test_simulation_job_estimates_kpis_with_confidence_intervals(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = _example(SIMULATION_EXAMPLE)
    result = _result(
        client, client.post("/v1/simulations", json=body, headers=keys["planner"]), keys["planner"]
    )
    kpis = result["kpis"]
    assert result["policy"] == "insertion" and kpis["replications"] == 10
    on_time = kpis["on_time_rate"]
    assert on_time["ci_low"] <= on_time["mean"] <= on_time["ci_high"] and on_time["n"] == 10
    assert set(kpis["per_order_on_time"]) == {"o1", "o2", "o3", "o4"}
    estimates = [e for e in [*kpis.values(), *kpis["extra"].values()] if isinstance(e, dict)]
    estimates = [e for e in estimates if "mean" in e]
    flat = [e for e in estimates if e["ci_low"] == e["ci_high"] and e["method"] == "t"]
    assert flat, "no KPI constant over the replications"  # e.g. 0 orders failed every day
    assert all(e["constant"] is (e in flat) for e in estimates)  # flagged, not an exact 0
    again = _result(
        client, client.post("/v1/simulations", json=body, headers=keys["planner"]), keys["planner"]
    )
    assert again["kpis"] == kpis  # same seed, same answer


def test_whatif_job_compares_variants_with_the_base(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = _example(WHATIF_EXAMPLE)
    result = _result(
        client, client.post("/v1/whatif", json=body, headers=keys["planner"]), keys["planner"]
    )
    assert result["variants"] == ["base", "short-staffed", "slow"]
    rows = {(r["variant"], r["kpi"]): r for r in result["rows"]}
    assert rows[("base", "cost_cents")]["diff"] == 0.0
    slow = rows[("slow", "courier_hours")]
    assert slow["diff"] > 0 and slow["diff_low"] <= slow["diff"] <= slow["diff_high"]
    assert "## on-time rate" in result["table_markdown"]
    assert {(s["variant"], s["policy"]) for s in result["samples"]} == {
        (v, p) for v in result["variants"] for p in result["policies"]
    }
    assert len(result["samples"]) == 3 * len(result["policies"]) * result["replications"]


def _csv_value(text: str) -> Any:
    """A comparison.csv cell as the API's JSON has it: empty None, booleans, numbers."""
    if text in ("", "True", "False"):
        return None if text == "" else text == "True"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # variant, policy, kpi, ci_method


def test_whatif_rows_hold_every_kpi_of_the_clis_comparison_csv(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API's rows held the table's 11 KPIs, comparison.csv all 22 (cost breakdown, orders
    delivered, pick wait, late breaks...): the same study gives the same rows, KPI for KPI."""
    import csv
    import json

    from typer.testing import CliRunner

    import simulation.report
    from dispatchlab.cli import app

    body = _example(WHATIF_EXAMPLE) | {"replications": 3}
    planner = keys["planner"]
    result = _result(client, client.post("/v1/whatif", json=body, headers=planner), planner)
    (tmp_path / "day.json").write_text(json.dumps(body["scenario"]), encoding="utf-8")
    variants = tmp_path / "variants.yaml"  # JSON is YAML
    variants.write_text(json.dumps({"base": "day.json", "variants": body["variants"]}))
    monkeypatch.setattr(simulation.report, "plots", lambda sweep: {})  # tables only
    out = tmp_path / "report"
    args = ["whatif", str(variants), "--policies", ",".join(body["policies"]), "-q"]
    args += ["--replications", "3", "--seed", str(body["seed"]), "--executor", "serial"]
    ran = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    with (out / "comparison.csv").open(encoding="utf-8") as fh:
        cli = [{k: _csv_value(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    key = ("variant", "policy", "kpi")
    api = {tuple(r[k] for k in key): r for r in result["rows"]}
    assert len(cli) == 3 * 22 and len(api) == len(result["rows"]) == len(cli)
    for row in cli:
        assert {k: api[tuple(row[k] for k in key)][k] for k in row} == row, row


def test_a_whatif_variant_can_hire_couriers(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A planner's first question, "what if I hire two more?": a fleet modifier could only
    remove couriers (``add`` was a 422, an unknown field)."""
    body = _example(WHATIF_EXAMPLE)
    body["variants"] = [
        {"name": "hire-two", "modifiers": [{"kind": "fleet", "add": 2}]},
        {
            "name": "hire-one-like",
            "modifiers": [{"kind": "fleet", "add": 1, "copy_of": "courier-2"}],
        },
    ]
    result = _result(
        client, client.post("/v1/whatif", json=body, headers=keys["planner"]), keys["planner"]
    )
    assert result["variants"] == ["base", "hire-two", "hire-one-like"]
    rows = {(r["variant"], r["kpi"]): r for r in result["rows"]}
    for name in ("hire-two", "hire-one-like"):  # the twin plays the new couriers: on this
        # small day they wait, idle, so the mean utilisation over the couriers falls
        assert rows[(name, "courier_utilisation")]["diff"] < 0, rows[(name, "courier_utilisation")]


def test_a_done_whatif_study_has_a_report_page_with_plots_and_the_table(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The planner's page: what ``dispatchlab whatif --out`` writes as report.html, served."""
    planner = keys["planner"]
    answer = client.post("/v1/whatif", json=_example(WHATIF_EXAMPLE), headers=planner)
    result = _result(client, answer, planner)
    job = client.get(answer.headers["location"], headers=planner).json()
    page = client.get(job["links"]["report"], headers=planner)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert text.count("<img ") == 2 and "data:image/png;base64," in text  # KPIs and Δ plots
    assert "<th>short-staffed</th>" in text and "(baseline)" in text and "Δ " in text
    assert f"{result['replications']} replications per variant and policy" in text
    # what each variant is, not its name alone (the table_markdown lists them too)
    changes = {"short-staffed": "fleet remove 1", "slow": "travel_slowdown factor 1.3"}
    assert result["changes"] == changes
    assert "<li><b>short-staffed</b>: fleet remove 1</li>" in text
    assert "- `slow`: travel_slowdown factor 1.3" in result["table_markdown"]
    # another owner's key sees no such job; a simulation job has no report
    assert client.get(job["links"]["report"], headers=keys["researcher"]).status_code == 404
    sim = client.post("/v1/simulations", json=_example(SIMULATION_EXAMPLE), headers=planner)
    _result(client, sim, planner)
    sim_id = sim.headers["location"].rsplit("/", 1)[-1]
    other = client.get(f"/v1/whatif/{sim_id}/report", headers=planner)
    assert other.status_code == 404 and "not a what-if study" in other.json()["message"]


def test_a_whatif_report_is_409_until_done_and_for_results_stored_without_samples(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    planner = keys["planner"]
    answer = client.post("/v1/whatif", json=_example(WHATIF_EXAMPLE), headers=planner)
    _result(client, answer, planner)
    job_id = answer.headers["location"].rsplit("/", 1)[-1]
    with app_of(client).state.ctx.sessions() as session:
        row = session.get(Job, job_id)
        assert row is not None and row.result is not None
        legacy = {k: v for k, v in row.result.items() if k not in ("samples", "seed", "notes")}
        row.result = legacy  # as a version before the report page stored it
        session.commit()
    stale = client.get(f"/v1/whatif/{job_id}/report", headers=planner)
    assert stale.status_code == 409 and "run the study again" in stale.json()["message"]
    with app_of(client).state.ctx.sessions() as session:
        row = session.get(Job, job_id)
        assert row is not None
        row.status, row.result = "running", None
        session.commit()
    running = client.get(f"/v1/whatif/{job_id}/report", headers=planner)
    assert running.status_code == 409 and "is running" in running.json()["message"]
    assert "once the study is done" in running.json()["message"]
    for status in ("cancelled", "failed"):  # never done: it said "exists once ... done"
        with app_of(client).state.ctx.sessions() as session:
            row = session.get(Job, job_id)
            assert row is not None
            row.status = status
            session.commit()
        ended = client.get(f"/v1/whatif/{job_id}/report", headers=planner).json()["message"]
        assert ended == f"job {job_id} is {status}: run the study again"
    with app_of(client).state.ctx.sessions() as session:
        row = session.get(Job, job_id)
        assert row is not None
        row.status = "running"
        session.commit()
    assert "report" not in client.get(f"/v1/jobs/{job_id}", headers=planner).json()["links"]


def test_whatif_without_orders_shows_the_on_time_rate_as_n_a(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    # Demand x 0 drops every order: no order is due, so the on-time rate is undefined (null),
    # not a perfect 1.0 that the table would mark as significantly better than the base.
    body = _example(WHATIF_EXAMPLE)
    body["variants"] = [{"name": "no-demand", "modifiers": [{"kind": "demand", "factor": 0}]}]
    result = _result(
        client, client.post("/v1/whatif", json=body, headers=keys["planner"]), keys["planner"]
    )
    rows = {(r["variant"], r["kpi"]): r for r in result["rows"]}
    empty = rows[("no-demand", "on_time_rate")]
    assert (empty["mean"], empty["n"], empty["diff"], empty["diff_n"]) == (None, 0, None, 0)
    assert rows[("base", "on_time_rate")]["n"] == body["replications"]
    section = result["table_markdown"].split("## on-time rate")[1].split("##")[0]
    assert "| no-demand | insertion | n/a | n/a |" in section and "▲" not in section
    failed = rows[("no-demand", "orders_failed")]  # 0 every day: flagged, not an exact 0
    assert (failed["mean"], failed["ci_low"], failed["ci_high"]) == (0.0, 0.0, 0.0)
    assert failed["constant"] is True
    assert (
        "| no-demand | insertion | 0.000 [0.000, 0.000] (constant) |" in (result["table_markdown"])
    )


def test_studies_take_the_option_to_send_idle_couriers_home(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    # params.idle_couriers_go_home: a courier done with its orders ends its shift (every order
    # is created at the start), so its utilisation is over the time it was on duty, not the
    # whole shift; the what-if base plays the same days with the same params.
    planner = keys["planner"]
    body = _example(SIMULATION_EXAMPLE) | {"replications": 3}
    utilisation = {}
    for on in (False, True):
        body["params"] = {"idle_couriers_go_home": on}
        answer = client.post("/v1/simulations", json=body, headers=planner)
        utilisation[on] = _result(client, answer, planner)["kpis"]["courier_utilisation"]["mean"]
    assert utilisation[True] > 2 * utilisation[False]
    go_home = {"idle_couriers_go_home": True}
    study = _example(WHATIF_EXAMPLE) | {"replications": 3, "params": go_home}
    rows = _result(client, client.post("/v1/whatif", json=study, headers=planner), planner)["rows"]
    base = next(r for r in rows if r["variant"] == "base" and r["kpi"] == "courier_utilisation")
    assert base["mean"] == pytest.approx(utilisation[True])


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "mutate", "field"),
    [
        ("/v1/simulations", lambda b: b.update(policy="telepathy"), "policy"),
        ("/v1/simulations", lambda b: b.update(policy="insertion:0"), "policy"),
        ("/v1/simulations", lambda b: b.update(replications=100_000), "replications"),
        ("/v1/simulations", lambda b: b.update(replications=201), "replications"),
        ("/v1/simulations", lambda b: b.update(seed=2**63), "seed"),
        (
            "/v1/simulations",
            lambda b: b.update(params={"idle_couriers_go_home": "maybe"}),
            "params.idle_couriers_go_home",
        ),
        ("/v1/whatif", lambda b: b.update(seed=-1), "seed"),
        ("/v1/whatif", lambda b: b["variants"].append(dict(b["variants"][0])), "variants.2.name"),
        ("/v1/whatif", lambda b: b.update(policies=["insertion", "nope"]), "policies.1"),
        # its runs were pooled with the first: n doubled, the CIs too narrow
        ("/v1/whatif", lambda b: b.update(policies=["insertion", "insertion"]), "policies.1"),
        # the same policy with spaces around it ran twice (two identical rows, a Holm family
        # of twice the size: the adjusted p-values doubled), as /v1/policies/evaluate refuses
        ("/v1/whatif", lambda b: b.update(policies=["insertion", " insertion "]), "policies.1"),
        # ... and so did the same policy under another spelling (insertion is insertion:8)
        ("/v1/whatif", lambda b: b.update(policies=["insertion", "insertion:8"]), "policies.1"),
        ("/v1/whatif", lambda b: b.update(policies=["reopt:5", "reopt:5:greedy"]), "policies.1"),
        ("/v1/whatif", lambda b: b.update(policies=["plan"]), "policies.0"),
        (
            "/v1/whatif",
            lambda b: b["variants"][0]["modifiers"].append({"kind": "weather"}),
            "variants.0.modifiers.1",
        ),
    ],
)
def test_bad_study_input_is_422_naming_the_field(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    mutate: Any,
    field: str,
) -> None:
    body = _example(SIMULATION_EXAMPLE if path == "/v1/simulations" else WHATIF_EXAMPLE)
    mutate(body)
    answer = client.post(path, json=body, headers=keys["planner"])
    assert answer.status_code == 422, answer.text
    assert any(d["field"].startswith(field) for d in answer.json()["detail"]), answer.json()


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "mutate", "field"),
    [
        (
            "/v1/simulations",
            lambda b: b["scenario"].update(
                travel={
                    "kind": "road_network",
                    "grid": {"rows": 2, "cols": 2},
                    "profile": [{"start_s": -1, "duration_factor": 1}],
                }
            ),
            "scenario.travel.profile.0.start_s",
        ),
        (
            "/v1/whatif",
            lambda b: b["variants"][0]["modifiers"][0].update(remove=2**63),
            "variants.0.modifiers.0.remove",
        ),
        (
            "/v1/whatif",
            lambda b: b["variants"][1]["modifiers"].append(
                {"kind": "travel_slowdown", "factor": 0}
            ),
            "variants.1.modifiers.1.factor",
        ),
    ],
)
def test_union_tags_are_not_in_the_field_path(
    client: TestClient, keys: dict[str, dict[str, str]], path: str, mutate: Any, field: str
) -> None:
    body = _example(SIMULATION_EXAMPLE if path == "/v1/simulations" else WHATIF_EXAMPLE)
    mutate(body)
    answer = client.post(path, json=body, headers=keys["planner"])
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["detail"]] == [field]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ("bogus", "unknown policy 'bogus'"),
        ("insertion:0", "needs at least one courier"),
        ("plan", "needs a plan"),
        (" plan ", "needs a plan"),
        # an argument a policy does not take was ignored: plan:x replayed a plan, nearest:5
        # dispatched to the nearest courier, under those names
        (" plan:x", "plan takes no argument"),
        ("nearest:5", "nearest takes no argument"),
        # a spec ending in ':' ran the default (reopt: every 5 min) under that name
        ("reopt:", "nothing after ':'"),
        ("insertion:", "nothing after ':'"),
        # NaN and infinite periods were a 500 (ValueError / OverflowError)
        ("reopt:nan", "finite number of minutes"),
        ("reopt:inf", "finite number of minutes"),
        # a period of seconds re-planned the day until the job's 3,600 s timeout
        ("reopt:0.0001", "reopt:0.0001: the period must be at least 1 minute"),
        # the RL package's policies are not the simulation endpoints' (their job processes
        # lack them), even once this process has imported it (they were taken then)
        (
            "euro-lazy:0.5",
            "unknown policy 'euro-lazy'; choose from insertion, nearest, plan, reopt",
        ),
        ("slots", "unknown policy 'slots'; choose from insertion, nearest, plan, reopt"),
    ],
)
def test_bad_simulation_policy_is_422_naming_policy_before_queueing(
    client: TestClient, keys: dict[str, dict[str, str]], policy: str, reason: str
) -> None:
    import rl_agents  # noqa: F401  (registers its policies in this process, as /v1/policies does)

    body = _example(SIMULATION_EXAMPLE)
    body["policy"] = policy
    answer = client.post("/v1/simulations", json=body, headers=keys["planner"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "policy" and reason in problem["reason"]
    assert client.get("/v1/jobs", headers=keys["planner"]).json()["count"] == 0


@pytest.mark.shares_service
def test_a_repeated_variant_name_is_422_as_in_a_variant_file(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The check and the words of ``dispatchlab whatif`` (:func:`check_unique_ids`): it said
    ``duplicate variant 'x'`` here and ``duplicate variant name 'x'`` there."""
    body = _example(WHATIF_EXAMPLE)
    body["variants"].append(copy.deepcopy(body["variants"][0]))
    answer = client.post("/v1/whatif", json=body, headers=keys["planner"])
    assert answer.status_code == 422, answer.text
    name = body["variants"][0]["name"]
    field = f"variants.{len(body['variants']) - 1}.name"
    assert answer.json()["detail"] == [{"field": field, "reason": f"duplicate name {name!r}"}]


@pytest.mark.shares_service
@pytest.mark.parametrize("name", [" ", "\t \n"])
def test_a_blank_variant_name_is_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], name: str
) -> None:
    """A name of only whitespace was taken: a report row named by blanks."""
    body = _example(WHATIF_EXAMPLE)
    body["variants"][1]["name"] = name
    answer = client.post("/v1/whatif", json=body, headers=keys["planner"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "variants.1.name", "reason": "a blank name: give the variant a name"}
    ]
    assert client.get("/v1/jobs", headers=keys["planner"]).json()["count"] == 0


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("modifier", "field", "reason"),
    [
        ({"kind": "node_closed", "node_id": "zz", "window": {"start_s": 0, "end_s": 60}},
         "node_id", "unknown node 'zz'"),
        ({"kind": "fleet", "vehicle_ids": ["courier-1", "nope"]}, "vehicle_ids.1",
         "unknown vehicle 'nope'"),
        ({"kind": "pick_time", "factor": 2, "node_ids": ["dc-1", "zz"]}, "node_ids.1",
         "unknown node 'zz'"),
        ({"kind": "fleet", "remove": 99}, "remove", "cannot remove 99 of 2 couriers"),
        ({"kind": "fleet", "remove": 2**63}, "remove", "less than or equal to"),
        ({"kind": "stochastic", "values": {"bogus": 1}}, "values.bogus", "Extra inputs"),
        ({"kind": "stochastic", "values": {"travel_time_cv": -1}}, "values.travel_time_cv",
         "greater than or equal to 0"),
        ({"kind": "stochastic", "values": {"travel_time_cv": "abc"}}, "values.travel_time_cv",
         "valid number"),
        ({"kind": "stock_shock", "factor": 0.5, "skus": ["tea", "caviar"]}, "skus.1",
         "unknown SKU 'caviar'"),
        ({"kind": "fleet", "add": 1, "copy_of": "nope"}, "copy_of",
         "unknown vehicle 'nope' (not in the variant's fleet)"),
        ({"kind": "fleet", "add": 1, "remove": 1}, "add", "a fleet modifier of its own"),
        ({"kind": "fleet", "copy_of": "courier-1"}, "copy_of", "only with add"),
        ({"kind": "fleet", "add": 1001}, "add", "less than or equal to 1000"),
        # a closure of no time was taken: the variant was the base under another name
        ({"kind": "node_closed", "node_id": "dc-1", "window": {"start_s": 60, "end_s": 60}},
         "window.end_s", "ends at 60 s: the node's closure must end after it starts at 60 s"),
        ({"kind": "node_closed", "node_id": "dc-1", "window": {"start_s": 60, "end_s": 59}},
         "window.end_s", "ends at 59 s, before it starts at 60 s"),
    ],
)  # fmt: skip
def test_whatif_modifier_not_fitting_the_scenario_is_422_before_queueing(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    modifier: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    body = _example(WHATIF_EXAMPLE)
    body["scenario"] = copy.deepcopy(PLAN_SCENARIO)
    body["variants"][1]["modifiers"].append(modifier)  # variant "slow", its 2nd modifier
    answer = client.post("/v1/whatif", json=body, headers=keys["planner"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == f"variants.1.modifiers.1.{field}"  # the index, not "slow"
    assert reason in problem["reason"]
    assert client.get("/v1/jobs", headers=keys["planner"]).json()["count"] == 0


@pytest.mark.shares_service
@pytest.mark.parametrize("path", ["/v1/simulations", "/v1/whatif"])
@pytest.mark.parametrize(
    ("plan", "field", "reason"),
    [
        ({"routes": [{"vehicle_id": "nope", "stops": []}]}, "plan.routes.0.vehicle_id",
         "unknown vehicle 'nope'"),
        ({"allocation": [{"order_id": "o9", "sku": "tea", "node_id": "dc-1", "quantity": 1}]},
         "plan.allocation.0.order_id", "unknown order 'o9'"),
        # the twin's own checks: queued, then a failed job
        ({"allocation": [{"order_id": "o1", "sku": "tea", "node_id": "depot:courier-1",
                          "quantity": 1}]},
         "plan.allocation.0.sku", "unknown SKU 'tea'"),
        ({"routes": [{"vehicle_id": "courier-1", "stops": [
            {"order_id": "o1", "kind": "pickup", "location": {"x": 7, "y": 7}, "arrival_s": 0,
             "start_s": 0, "departure_s": 0}]}]},
         "plan.routes.0.stops.0.location",
         "location {'x': 7.0, 'y': 7.0} is not a location of the scenario"),
        # a break stop naming a break its vehicle lacks (the twin would take it as none)
        ({"routes": [{"vehicle_id": "courier-1", "stops": [
            {"kind": "break", "arrival_s": 0, "start_s": 0, "departure_s": 60,
             "break_index": 2}]}]},
         "plan.routes.0.stops.0.break_index",
         "break 2 of vehicle 'courier-1', which has 0 breaks (indices from 0)"),
        ({"routes": [{"vehicle_id": "courier-1", "stops": [
            {"order_id": "o1", "arrival_s": 0, "start_s": 0, "departure_s": 60,
             "break_index": 0}]}]},
         "plan.routes.0.stops.0.break_index",
         "names a vehicle break, which only a break stop takes (this stop is a delivery)"),
    ],
)  # fmt: skip
def test_a_plan_not_fitting_the_scenario_is_422_before_queueing(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    plan: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    """It was queued (202) and the job failed with 'bad input' after the wait."""
    body = _example(SIMULATION_EXAMPLE if path == "/v1/simulations" else WHATIF_EXAMPLE)
    body["policy" if path == "/v1/simulations" else "policies"] = (
        "plan" if path == "/v1/simulations" else ["plan"]
    )
    body["plan"] = plan
    answer = client.post(path, json=body, headers=keys["planner"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [{"field": field, "reason": reason}]
    assert client.get("/v1/jobs", headers=keys["planner"]).json()["count"] == 0


@pytest.mark.parametrize("scenario", ["SMALL_SCENARIO", "PLAN_SCENARIO"])
def test_a_plan_the_service_made_passes_the_check_and_replays(
    client: TestClient, keys: dict[str, dict[str, str]], scenario: str
) -> None:
    """Delivery-only (virtual depots) and allocated plans (order@node stops) are not refused."""
    from api.examples import PLAN_EXAMPLE, ROUTES_EXAMPLE

    if scenario == "PLAN_SCENARIO":
        body = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
        body["evaluation"]["replications"] = 2
        made = client.post("/v1/plans", json=body, headers=keys["admin"])
    else:
        body = copy.deepcopy(ROUTES_EXAMPLE["small"]["value"])
        made = client.post("/v1/routes", json=body, headers=keys["admin"])
    assert made.status_code == 200, made.text
    study = {"scenario": body["scenario"], "plan": made.json()["plan"], "replications": 2}
    answer = client.post("/v1/simulations", json=study, headers=keys["planner"])
    assert _result(client, answer, keys["planner"])["policy"] == "plan"


def test_simulating_a_replans_plan_notes_the_orders_it_completed(
    client: TestClient, keys: dict[str, dict[str, str]], example_plan: dict[str, Any]
) -> None:
    """A re-plan's plan holds what was left to do at its now_s, not the orders it completed:
    played over the whole day under policy plan they were unserved, with their penalties,
    and the job's result said nothing of it."""
    from api.schemas.plans import ReoptimiseCreate
    from api.tasks.plans import reoptimise
    from scenarios.model import Scenario
    from scenarios.plan import Plan

    scenario = _plan_example()["scenario"]
    late = ReoptimiseCreate(now_s=28_000, routing={"time_limit_s": 0.3, "seed": 1})
    replan, _, completed = reoptimise(
        Scenario.model_validate(scenario), Plan.model_validate(example_plan), set(), late
    )
    assert completed == ["o1", "o2", "o3"]  # every stop started before 28,000 s
    planner = keys["planner"]
    notes = {}
    for name, plan in (("day", example_plan), ("replan", replan.plan.model_dump(mode="json"))):
        body = {"scenario": scenario, "plan": plan, "replications": 2, "seed": 1}
        answer = client.post("/v1/simulations", json=body, headers=planner)
        result = _result(client, answer, planner)
        notes[name] = (result["notes"], result["kpis"]["orders_unserved"]["mean"])
    assert notes["day"] == ([], 0.0)
    (note, undelivered), unserved = notes["replan"]
    assert unserved == 3.0  # what the note explains
    # nothing delivered on either day, so no lateness (since session 82; it said 0)
    assert undelivered.startswith("lateness_p50_s, lateness_p95_s: n/a (no order was delivered")
    assert note.startswith("3 of the scenario's 3 orders are not in the plan (no stop, not ")
    assert "unassigned: o1, o2, o3)" in note and "completed before its now_s" in note
    assert "under policy plan nobody dispatches them" in note


def test_a_simulation_that_delivered_nothing_has_no_lateness(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """No courier can carry any order (capacity 1, orders of 2-5 units): nothing is delivered
    on any day. The result said lateness 0 [0, 0] (constant), "perfectly on time", where a
    what-if study says null; now it is null, and the notes say why."""
    body = _example(SIMULATION_EXAMPLE)
    for vehicle in body["scenario"]["vehicles"]:
        vehicle["capacity"] = [1]
    body["replications"] = 3
    planner = keys["planner"]
    result = _result(client, client.post("/v1/simulations", json=body, headers=planner), planner)
    kpis = result["kpis"]
    assert kpis["extra"]["orders_delivered"]["mean"] == 0.0
    assert kpis["lateness_p50_s"] is None and kpis["lateness_p95_s"] is None
    assert kpis["on_time_rate"]["n"] == 3  # orders were due: on time 0, defined
    assert result["notes"] == [
        "lateness_p50_s, lateness_p95_s: n/a (no order was delivered in any of the 3 replications)"
    ]


def _replans_plan(example_plan: dict[str, Any]) -> dict[str, Any]:
    """The re-plan at 28,000 s of the plan example's plan: every order completed by then, so
    it holds none of the scenario's orders (o1, o2, o3)."""
    from api.schemas.plans import ReoptimiseCreate
    from api.tasks.plans import reoptimise
    from scenarios.model import Scenario
    from scenarios.plan import Plan

    late = ReoptimiseCreate(now_s=28_000, routing={"time_limit_s": 0.3, "seed": 1})
    replan, _, completed = reoptimise(
        Scenario.model_validate(_plan_example()["scenario"]),
        Plan.model_validate(example_plan),
        set(),
        late,
    )
    assert completed == ["o1", "o2", "o3"]
    plan: dict[str, Any] = replan.plan.model_dump(mode="json")
    return plan


def test_comparing_a_replans_plan_notes_the_candidate_and_the_orders_it_completed(
    client: TestClient, keys: dict[str, dict[str, str]], example_plan: dict[str, Any]
) -> None:
    """A re-plan's plan as a candidate of ``/v1/simulations/compare`` was played over the whole
    day without its completed orders (unserved under policy plan, dispatched again under the
    others), and the result said nothing of it: its notes name the candidate, as a
    simulation's notes do the plan."""
    replan = _replans_plan(example_plan)
    body = {
        "scenario": _plan_example()["scenario"],
        "candidates": [
            {"name": "day", "plan": example_plan},
            {"name": "replan", "plan": replan},
            {"name": "replan-insertion", "plan": replan, "policy": "insertion"},
        ],
        "replications": 2,
        "seed": 1,
    }
    planner = keys["planner"]
    answer = client.post("/v1/simulations/compare", json=body, headers=planner)
    result = _result(client, answer, planner)
    assert result["kpis"]["day"]["orders_unserved"]["mean"] == 0.0
    assert result["kpis"]["replan"]["orders_unserved"]["mean"] == 3.0  # what the note explains
    replan_note, insertion_note = result["notes"]  # none for the day's plan
    assert replan_note.startswith("candidate replan: 3 of the scenario's 3 orders are not in ")
    assert "(no stop, not unassigned: o1, o2, o3)" in replan_note
    assert "completed before its now_s" in replan_note
    assert "under policy plan nobody dispatches them" in replan_note
    assert insertion_note.startswith("candidate replan-insertion: 3 of the scenario's 3 orders")
    assert insertion_note.endswith("policy insertion dispatches them as new orders, served again")
    del body["candidates"][1:]
    body["candidates"].append({"name": "insertion"})  # no plan: nothing left out
    answer = client.post("/v1/simulations/compare", json=body, headers=planner)
    assert _result(client, answer, planner)["notes"] == []


def test_a_whatif_study_of_a_replans_plan_notes_the_orders_it_completed(
    client: TestClient, keys: dict[str, dict[str, str]], example_plan: dict[str, Any]
) -> None:
    """A re-plan's plan in ``/v1/whatif`` is played in every variant over the whole day
    without its completed orders, and the result said nothing of it: the base's notes say it,
    one line per policy, as a simulation's notes do."""
    body = {
        "scenario": _plan_example()["scenario"],
        "plan": _replans_plan(example_plan),
        "variants": [{"name": "slow", "modifiers": [{"kind": "travel_slowdown", "factor": 1.5}]}],
        "policies": ["plan", "insertion"],
        "replications": 2,
        "seed": 1,
    }
    planner = keys["planner"]
    result = _result(client, client.post("/v1/whatif", json=body, headers=planner), planner)
    rows = {(r["variant"], r["policy"], r["kpi"]): r for r in result["rows"]}
    assert rows[("slow", "plan", "orders_unserved")]["mean"] == 3.0  # what the note explains
    assert set(result["notes"]) == {"base"}
    under_plan, under_insertion = result["notes"]["base"]
    head = "the plan, played in every variant: 3 of the scenario's 3 orders are not in the plan"
    assert under_plan.startswith(head) and under_insertion.startswith(head)
    assert "(no stop, not unassigned: o1, o2, o3)" in under_plan
    assert "under policy plan nobody dispatches them" in under_plan
    assert under_insertion.endswith("policy insertion dispatches them as new orders, served again")


@pytest.mark.shares_service
def test_studies_need_a_planner_key(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    body = _example(SIMULATION_EXAMPLE)
    assert client.post("/v1/simulations", json=body, headers=keys["oms"]).status_code == 403
    assert (
        client.post(
            "/v1/whatif", json=_example(WHATIF_EXAMPLE), headers=keys["researcher"]
        ).status_code
        == 403
    )


@pytest.mark.parametrize("path", ["/v1/simulations", "/v1/whatif"])
def test_a_study_with_an_idempotency_key_is_queued_once(
    client: TestClient, keys: dict[str, dict[str, str]], path: str
) -> None:
    kind = path.removeprefix("/v1/")
    body = _example(SIMULATION_EXAMPLE if kind == "simulations" else WHATIF_EXAMPLE)
    headers = {**keys["planner"], "Idempotency-Key": f"study-{kind}"}
    first = client.post(path, json=body, headers=headers)
    second = client.post(path, json=body, headers=headers)
    assert first.status_code == second.status_code == 202, first.text
    job_id = first.json()["job_id"]
    assert second.json()["job_id"] == job_id
    assert first.headers["location"] == second.headers["location"] == f"/v1/jobs/{job_id}"
    assert second.headers["idempotent-replayed"] == "true"
    jobs = client.get("/v1/jobs", headers=keys["planner"], params={"kind": kind}).json()
    assert jobs["count"] == 1  # queued once


def test_a_variant_named_base_is_422_naming_it(settings: Settings, make_client: Any) -> None:
    """A variant named base replaced the baseline, while every other variant stayed the
    unmodified base plus its own modifiers (its differences measured two changes): 202."""
    client = make_client(Settings(**{**settings.model_dump(), "auth_enabled": False}))
    body = _example(WHATIF_EXAMPLE)
    body["variants"][1]["name"] = "base"
    answer = client.post("/v1/whatif", json=body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == "variants.1.name", detail
    assert detail["reason"].startswith("'base' is the name of the baseline"), detail


def test_the_day_cap_counts_the_base_and_every_variant(
    settings: Settings, make_client: Any
) -> None:
    capped = Settings(**{**settings.model_dump(), "max_whatif_runs": 10, "auth_enabled": False})
    client = make_client(capped)
    body = _example(WHATIF_EXAMPLE)
    body.update(policies=body["policies"][:1], replications=5)
    assert len(body["variants"]) == 2
    refused = client.post("/v1/whatif", json=body)  # the base is added: 15 days
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"][0]
    assert detail["field"] == "replications", detail
    assert detail["reason"] == (
        "15 simulated days (3 variants with the base x policies x replications); at most 10"
    )
    body["variants"] = body["variants"][:1]
    answer = client.post("/v1/whatif", json=body)
    assert answer.status_code == 202, answer.text


def test_a_whatif_rows_interval_method_is_one_the_project_names() -> None:
    # the what-if row's ci_method is the Estimate's IntervalMethod: the schema lists the
    # methods, and a row with another name is refused (it was any string)
    from pydantic import ValidationError

    from api.schemas.simulations import WhatIfRow

    schema = WhatIfRow.model_json_schema()["properties"]["ci_method"]
    assert set(schema["enum"]) == {"t", "clopper-pearson-orders", "clopper-pearson-days", "none"}
    row = {
        "variant": "base",
        "policy": "insertion",
        "kpi": "on_time_rate",
        "mean": 1.0,
        "ci_low": 0.9,
        "ci_high": 1.0,
        "n": 3,
        "diff": None,
        "diff_low": None,
        "diff_high": None,
    }
    assert WhatIfRow.model_validate(row).ci_method == "t"
    exact = WhatIfRow.model_validate({**row, "ci_method": "clopper-pearson-orders"})
    assert exact.ci_method == "clopper-pearson-orders"
    with pytest.raises(ValidationError, match="ci_method"):
        WhatIfRow.model_validate({**row, "ci_method": "wilson"})


def test_demand_modifiers_past_max_orders_are_422_naming_the_factor(
    settings: Settings, make_client: Any
) -> None:
    """Demand factors multiply: x100 x100 on 2,000 orders held the request for minutes and
    gigabytes while it made the copies, then queued a job of 20 million orders."""
    capped = Settings(**{**settings.model_dump(), "max_orders": 100, "auth_enabled": False})
    client = make_client(capped)
    body = _example(WHATIF_EXAMPLE)  # four orders
    body["variants"][1]["modifiers"] = [
        {"kind": "demand", "factor": 20},  # 80 orders: within the cap
        {"kind": "demand", "factor": 100},
    ]
    answer = client.post("/v1/whatif", json=body)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem == {
        "field": "variants.1.modifiers.1.factor",
        "reason": "makes 8000 orders (80 + 7920 copies); at most 100 per request",
    }
    assert client.get("/v1/jobs").json()["count"] == 0
    body["variants"][1]["modifiers"].pop()
    assert client.post("/v1/whatif", json=body).status_code == 202


@pytest.mark.parametrize(
    ("path", "arrivals", "field"),
    [
        # 10,000 an hour, x100 in a surge: 24 million orders a day, drawn into memory
        ("/v1/simulations", {"hourly_rate": [1e4] * 24, "surges": [{"factor": 100}]},
         "scenario.arrivals"),
        ("/v1/whatif", {"hourly_rate": [1e4] * 24}, "scenario.arrivals"),
        ("/v1/plans", {"hourly_rate": [1e4] * 24}, "scenario.arrivals"),
        ("/v1/policies/evaluate", {"hourly_rate": [1e4] * 24}, "scenario.arrivals"),
        # within the cap, but a demand modifier's surge multiplies the rate by 100
        ("/v1/whatif", {"hourly_rate": [2.0] * 24}, "variants.0.arrivals"),
    ],
)  # fmt: skip
def test_arrivals_past_max_orders_are_413_naming_them(
    settings: Settings, make_client: Any, path: str, arrivals: dict[str, Any], field: str
) -> None:
    capped = Settings(**{**settings.model_dump(), "max_orders": 1_000, "auth_enabled": False})
    client = make_client(capped)
    body = _example(WHATIF_EXAMPLE if path == "/v1/whatif" else SIMULATION_EXAMPLE)
    if path == "/v1/plans":
        body = {"scenario": copy.deepcopy(PLAN_SCENARIO), "mode": "async"}
    if path == "/v1/policies/evaluate":
        body = {"scenario": body["scenario"], "policies": ["greedy"], "seeds": [1]}
    if field.startswith("variants"):
        body["variants"] = [{"name": "rush", "modifiers": [{"kind": "demand", "factor": 100}]}]
    body["scenario"]["arrivals"] = arrivals
    answer = client.post(path, json=body)
    assert answer.status_code == 413, answer.text
    message = answer.json()["message"]
    assert message.startswith(f"{field}: ") and "at most 1000 orders per request" in message
    assert client.get("/v1/jobs").json()["count"] == 0


_NOWHERE = [{"node_id": "nowhere", "window": {"start_s": 0, "end_s": 600}}]


def _twin_body(path: str) -> dict[str, Any]:
    """A small valid body of each endpoint that plays the twin (its scenario at ``scenario``)."""
    body = _example(WHATIF_EXAMPLE if path == "/v1/whatif" else SIMULATION_EXAMPLE)
    if path == "/v1/simulations/compare":
        candidates = [{"name": "a", "policy": "insertion"}, {"name": "b", "policy": "nearest"}]
        return {"scenario": body["scenario"], "candidates": candidates, "replications": 2}
    if path == "/v1/plans":
        return {"scenario": copy.deepcopy(PLAN_SCENARIO), "mode": "async"}
    if path == "/v1/policies/evaluate":
        return {"scenario": body["scenario"], "policies": ["greedy"], "seeds": [1]}
    return body


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/simulations", "scenario.stochastic.node_outages.0.node_id"),
        ("/v1/simulations/compare", "scenario.stochastic.node_outages.0.node_id"),
        ("/v1/whatif", "scenario.stochastic.node_outages.0.node_id"),
        ("/v1/whatif", "variants.1.modifiers.1.values.node_outages.0.node_id"),
        ("/v1/plans", "scenario.stochastic.node_outages.0.node_id"),
        ("/v1/policies/evaluate", "scenario.stochastic.node_outages.0.node_id"),
    ],
)
def test_a_node_outage_at_an_unknown_node_is_422_before_anything_is_queued(
    client: TestClient, keys: dict[str, dict[str, str]], path: str, field: str
) -> None:
    """The twin refused it when the job compiled the day: a 202, then a failed job (``bad
    input: stochastic.node_outages.0.node_id``, a variant's outage named as the base's)."""
    admin = keys["admin"]
    body = _twin_body(path)
    if field.startswith("variants"):
        body["variants"][1]["modifiers"].append(
            {"kind": "stochastic", "values": {"node_outages": copy.deepcopy(_NOWHERE)}}
        )
    else:
        body["scenario"]["stochastic"] = {"node_outages": copy.deepcopy(_NOWHERE)}
    answer = client.post(path, json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [{"field": field, "reason": "unknown node 'nowhere'"}]
    assert client.get("/v1/jobs", headers=admin).json()["count"] == 0


@pytest.mark.shares_service
@pytest.mark.parametrize(
    "path",
    [
        "/v1/simulations",
        "/v1/simulations/compare",
        "/v1/whatif",
        "/v1/plans",
        "/v1/policies/evaluate",
    ],
)
def test_arrivals_with_no_order_to_draw_from_are_422_before_anything_is_queued(
    client: TestClient, keys: dict[str, dict[str, str]], path: str
) -> None:
    """No order listed and no ``arrivals.templates``: the twin refused the day in the job (a
    202, then ``bad input: arrivals: ...``); ``dispatchlab simulate`` said so at once."""
    admin = keys["admin"]
    body = _twin_body(path)
    body["scenario"]["orders"] = []
    body["scenario"]["arrivals"] = {"hourly_rate": [2.0] * 24}
    answer = client.post(path, json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["detail"]
    assert detail["field"] == "scenario.arrivals", detail
    assert detail["reason"].startswith("new orders are drawn like existing ones"), detail
    assert client.get("/v1/jobs", headers=admin).json()["count"] == 0


def test_an_arrivals_only_day_simulates_and_its_templates_are_capped(
    settings: Settings, make_client: Any
) -> None:
    """Every order drawn from ``arrivals.templates`` (none listed): the job plays the arrivals;
    templates beyond ``max_orders`` are a 413 naming them, before anything is queued."""
    capped = Settings(**{**settings.model_dump(), "max_orders": 100, "auth_enabled": False})
    client = make_client(capped)
    body = _example(SIMULATION_EXAMPLE)
    scenario = body["scenario"]
    template = scenario["orders"][0]
    scenario["arrivals"] = {"hourly_rate": [2.0] * 24, "templates": [template]}
    scenario["orders"] = []
    body["replications"] = 3
    result = _result(client, client.post("/v1/simulations", json=body), {})
    kpis = result["kpis"]
    assert kpis["per_order_on_time"] == {}  # no listed order
    assert kpis["on_time_rate"]["n"] == 3  # but orders arrived and were due every day
    scenario["arrivals"]["templates"] = [{**template, "id": f"t{k}"} for k in range(101)]
    answer = client.post("/v1/simulations", json=body)
    assert answer.status_code == 413, answer.text
    assert answer.json()["message"] == (
        "scenario.arrivals.templates: 101 templates; at most 100 per request"
    )
    assert client.get("/v1/jobs").json()["count"] == 1


def _plan_example() -> dict[str, Any]:
    """The plan example's body, with 2 replications of its twin evaluation."""
    from api.examples import PLAN_EXAMPLE

    body = copy.deepcopy(PLAN_EXAMPLE["small"]["value"])
    body["evaluation"]["replications"] = 2
    return body


def _comparison_of(scenario: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """A comparison body: ``plan`` against no plan (insertion dispatch) on ``scenario``."""
    return {
        "scenario": copy.deepcopy(scenario),
        "candidates": [
            {"name": "optimised", "plan": copy.deepcopy(plan)},
            {"name": "insertion"},
        ],
        "replications": 4,
        "seed": 3,
    }


def _comparison(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    """A comparison body: the plan ``POST /v1/plans`` makes of the plan example, against no
    plan (insertion dispatch)."""
    body = _plan_example()
    made = client.post("/v1/plans", json=body, headers=admin)
    assert made.status_code == 200, made.text
    return _comparison_of(body["scenario"], made.json()["plan"])


@pytest.fixture(scope="module")
def example_plan() -> dict[str, Any]:
    """The plan the service's plan task makes of the plan example, made once for the module's
    tests that only need a valid plan to send (each of them waited for its own solve)."""
    from api.tasks.plans import run_plan

    plan: dict[str, Any] = run_plan(_plan_example())["plan"]
    return plan


def test_plans_are_compared_on_the_same_seeds_as_the_cli_compares_them(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """``POST /v1/simulations/compare``: what ``dispatchlab simulate --plan A --plan B`` does."""
    from scenarios.model import Scenario
    from scenarios.plan import Plan
    from simulation.evaluate import compare

    body = _comparison(client, keys["admin"])
    planner = keys["planner"]
    result = _result(
        client, client.post("/v1/simulations/compare", json=body, headers=planner), planner
    )
    assert result["baseline"] == "optimised" and result["recommended"] in {"optimised", "insertion"}
    assert result["policies"] == {"optimised": "plan", "insertion": "insertion"}
    assert set(result["kpis"]) == {"optimised", "insertion"}
    assert set(result["paired_differences"]) == {"insertion"}
    cost = result["paired_differences"]["insertion"]["cost_cents"]
    assert cost["n"] == 4 and cost["ci_low"] <= cost["mean"] <= cost["ci_high"]
    assert "insertion" in result["table_markdown"] and result["reasons"]
    direct = compare(
        Scenario.model_validate(body["scenario"]),
        {"optimised": Plan.model_validate(body["candidates"][0]["plan"]), "insertion": None},
        replications=4,
        seed=3,
    ).as_json()
    assert {k: result[k] for k in direct} == direct
    again = _result(
        client, client.post("/v1/simulations/compare", json=body, headers=planner), planner
    )
    assert {k: v for k, v in again.items() if k != "solver"} == {
        k: v for k, v in result.items() if k != "solver"
    }


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda b: b["candidates"].pop(), "candidates", "at least 2"),
        (lambda b: b["candidates"][1].update(name="optimised"), "candidates.1.name",
         "duplicate name 'optimised'"),
        (lambda b: b.update(policy="plan"), "candidates.1.plan", "policy 'plan' needs a plan"),
        (lambda b: b.update(policy="nope"), "policy", "nope"),
        (lambda b: b["candidates"][0]["plan"]["routes"][0].update(vehicle_id="ghost"),
         "candidates.0.plan.routes.0.vehicle_id", "unknown vehicle 'ghost'"),
        (lambda b: b.update(replications=0), "replications", "greater than or equal to 1"),
        (lambda b: b.update(risk_aversion=-1), "risk_aversion", "greater than or equal to 0"),
    ],
)  # fmt: skip
def test_a_bad_comparison_is_422_naming_the_field_before_queueing(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    example_plan: dict[str, Any],
    change: Any,
    field: str,
    reason: str,
) -> None:
    body = _comparison_of(_plan_example()["scenario"], example_plan)
    change(body)
    answer = client.post("/v1/simulations/compare", json=body, headers=keys["planner"])
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert problem["field"] == field and reason in problem["reason"], problem
    assert client.get("/v1/jobs", headers=keys["planner"]).json()["count"] == 0


def test_candidates_may_each_bring_their_own_dispatch_policy(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Two ways to dispatch the same day without a plan, compared on the same seeds."""
    body = _example(SIMULATION_EXAMPLE)
    study = {
        "scenario": body["scenario"],
        "candidates": [
            {"name": "insertion", "policy": "insertion"},
            {"name": "nearest", "policy": "nearest"},
        ],
        "policy": "reopt:10",  # each candidate's own policy wins
        "replications": 3,
        "seed": 2,
    }
    planner = keys["planner"]
    answer = client.post("/v1/simulations/compare", json=study, headers=planner)
    result = _result(client, answer, planner)
    assert result["policies"] == {"insertion": "insertion", "nearest": "nearest"}
    from scenarios.model import Scenario
    from simulation.evaluate import compare

    scenario = Scenario.model_validate(body["scenario"])
    mine = {"insertion": "insertion", "nearest": "nearest"}
    direct = compare(scenario, dict.fromkeys(mine), policies=mine, replications=3, seed=2)
    assert {k: result[k] for k in direct.as_json()} == direct.as_json()
    # not what the study's own policy gives every candidate
    reopt = compare(scenario, dict.fromkeys(mine), policy="reopt:10", replications=3, seed=2)
    assert reopt.as_json()["kpis"]["nearest"] != result["kpis"]["nearest"]


def test_a_report_page_is_drawn_once_and_served_again_from_memory(
    client: TestClient, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A done study never changes: its page (seconds of matplotlib for a large study) is kept."""
    import simulation.report

    drawn: list[int] = []
    plots = simulation.report.plots

    def counting(result: Any) -> dict[str, bytes]:
        drawn.append(1)
        return plots(result)

    monkeypatch.setattr(simulation.report, "plots", counting)
    planner = keys["planner"]
    answer = client.post("/v1/whatif", json=_example(WHATIF_EXAMPLE), headers=planner)
    _result(client, answer, planner)
    job_id = answer.headers["location"].rsplit("/", 1)[-1]
    first = client.get(f"/v1/whatif/{job_id}/report", headers=planner)
    second = client.get(f"/v1/whatif/{job_id}/report", headers=planner)
    assert first.status_code == second.status_code == 200 and first.text == second.text
    assert len(drawn) == 1
    # the access check still runs first: another key gets no page from the cache
    assert client.get(f"/v1/whatif/{job_id}/report", headers=keys["researcher"]).status_code == 404


@pytest.mark.shares_service
def test_the_study_endpoints_take_their_own_policies_whatever_the_service_imported(
    client: TestClient, keys: dict[str, dict[str, str]], example_plan: dict[str, Any]
) -> None:
    """Once the API process had imported the RL package (``/v1/policies`` does), its policies
    (``euro-greedy``, ``slots``, ``model`` ...) passed the what-if and comparison checks, which
    read the process's registry, though the job processes that play them do not have them;
    in a fresh process they were unknown. Now they are unknown either way."""
    import rl_agents  # noqa: F401  (registers its policies in this process)

    planner = keys["planner"]
    study = _example(WHATIF_EXAMPLE) | {"policies": ["insertion", "euro-greedy:5"]}
    answer = client.post("/v1/whatif", json=study, headers=planner)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {
            "field": "policies.1",
            "reason": "unknown policy 'euro-greedy'; choose from insertion, nearest, plan, reopt",
        }
    ]
    body = {
        "scenario": _plan_example()["scenario"],
        "candidates": [{"name": "day", "plan": example_plan}, {"name": "rl", "policy": "slots"}],
        "replications": 2,
    }
    answer = client.post("/v1/simulations/compare", json=body, headers=planner)
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["detail"]] == ["candidates.1.policy"]
    assert client.get("/v1/jobs", headers=planner).json()["count"] == 0


@pytest.mark.parametrize("path", ["/v1/simulations", "/v1/whatif", "/v1/policies/evaluate"])
def test_a_played_scenario_past_the_vehicle_cap_is_422_naming_it(
    settings: Settings, make_client: Any, path: str
) -> None:
    """The twin's scenarios count their nodes, order lines and vehicles as a plan's do
    (max_nodes, max_order_lines, max_vehicles; session 77): a 422 before anything is queued."""
    body = _example(WHATIF_EXAMPLE if path == "/v1/whatif" else SIMULATION_EXAMPLE)
    if path == "/v1/policies/evaluate":
        body = {"scenario": body["scenario"], "policies": ["greedy"], "seeds": [1]}
    count = len(body["scenario"]["vehicles"])
    capped = Settings(**{**settings.model_dump(), "max_vehicles": count - 1, "auth_enabled": False})
    client = make_client(capped)
    answer = client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {
            "field": "scenario.vehicles",
            "reason": f"{count} vehicles; at most {count - 1} per request (max_vehicles)",
        }
    ]
    assert client.get("/v1/jobs").json()["count"] == 0
