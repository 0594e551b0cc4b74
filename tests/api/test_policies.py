"""POST /v1/policies/evaluate: dispatch policies compared on the same days, as a job."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.examples import SMALL_SCENARIO
from tests.api.conftest import wait_for


def _body(**kw: Any) -> dict[str, Any]:
    return {
        "scenario": copy.deepcopy(SMALL_SCENARIO),
        "policies": ["insertion", "euro-lazy:5"],
        "seeds": [1, 2, 3],
        **kw,
    }


def test_policies_are_compared_with_greedy_on_the_same_days(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    answer = client.post("/v1/policies/evaluate", json=_body(), headers=keys["researcher"])
    assert answer.status_code == 202, answer.text
    job = wait_for(
        lambda: client.get(answer.headers["location"], headers=keys["researcher"]).json(),
        lambda j: j["status"] in {"done", "failed"},
        timeout_s=60,
    )
    assert job["status"] == "done", job
    result = job["result"]
    assert set(result["summaries"]) == {"greedy", "insertion", "euro-lazy:5"}
    greedy = result["summaries"]["greedy"]
    assert greedy["n"] == 3 and greedy["diff_vs_greedy"] == 0.0
    assert set(result["summaries"]["insertion"]["costs"]) == {"1", "2", "3"}
    assert "| insertion |" in result["table_markdown"]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("policies", "field", "reason"),
    [
        (["insertion", "telepathy"], "policies.1", "unknown policy"),
        (["telepathy"], "policies.0", "hindsight, insertion"),  # the list had no hindsight
        (["greedy", "plan"], "policies.1", "needs a plan"),  # every order went unserved
        (["model:/etc/passwd"], "policies.0", "no paths"),
        (["model:../../secret"], "policies.0", "no paths"),
        (["greedy", "model-plain:/etc/passwd"], "policies.1", "no paths"),
        (["model-plain:nosuchmodel"], "policies.0", "no model named"),
        (["model:nosuchmodel"], "policies.0", "no model named"),
        (["hindsight:soon"], "policies.0", "hindsight:SECONDS"),
        # nothing after ':' ran the shipped model / the default budget (the CLI refuses them)
        (["model:"], "policies.0", "model:: nothing after ':'"),
        (["greedy", "model-plain:"], "policies.1", "model-plain:: nothing after ':'"),
        (["hindsight:"], "policies.0", "hindsight:: nothing after ':'"),
        (["hindsight:100000"], "policies.0", "at most"),
        (["hindsight:nan"], "policies.0", "positive number"),
        (["hindsight:-inf"], "policies.0", "positive number"),
        # infinite epochs and periods were a 500 (OverflowError, ValueError)
        (["greedy", "euro-lazy:inf"], "policies.1", "finite number of minutes"),
        (["reopt:nan"], "policies.0", "finite number of minutes"),
        # a period of seconds re-planned the days until the job's 3,600 s timeout
        (["greedy", "reopt:0.001"], "policies.1", "reopt:0.001: the period must be at least 1"),
        # an epoch of seconds: the days' every waiting order offered again each second
        (["euro-greedy:0.02"], "policies.0", "euro-greedy:0.02: the epoch must be at least 1"),
        # session 57: a re-plan's budget (PyVRP iterations, or seconds on the clock)
        (["greedy", "reopt:5:pyvrp:0"], "policies.1", "at least 1"),
        (["reopt:5:auto:500"], "policies.0", "name the engine"),
        # counted twice, its days narrowed the CIs
        (["insertion", "greedy", "insertion"], "policies.2", "'insertion' is given twice"),
        (["insertion", " insertion "], "policies.1", "'insertion' is given twice"),
        (["insertion:8", "insertion"], "policies.1", "the same policy as 'insertion:8'"),
        (["model", "model:standard"], "policies.1", "the same policy as 'model' (model:standard)"),
        (["euro-lazy", "euro-lazy:5"], "policies.1", "the same policy as 'euro-lazy'"),
        (["slots", "nearest"], "policies.1", "the same policy as 'greedy', the baseline"),
        # named as given, normalised: never by the service's working folder
        (["model:m1", "model:./m1"], "policies.1", "the same policy as 'model:m1' (model:m1)"),
    ],
)
def test_bad_policy_specs_are_422_naming_the_policy(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    policies: list[str],
    field: str,
    reason: str,
) -> None:
    answer = client.post(
        "/v1/policies/evaluate", json=_body(policies=policies), headers=keys["researcher"]
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == field and reason in detail["reason"]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("emptied", "field", "reason"),
    [
        ("orders", "scenario.orders", "no orders and no arrivals expected"),
        ("vehicles", "scenario.vehicles", "no couriers"),
    ],
)
def test_a_day_without_orders_or_couriers_is_422_naming_the_field(
    client: TestClient, keys: dict[str, dict[str, str]], emptied: str, field: str, reason: str
) -> None:
    """Every policy played such a day alike (cost 0, or every order unserved): the job was
    queued and its table compared identical rows."""
    body = _body()
    body["scenario"][emptied] = []
    body["scenario"]["arrivals"] = None
    answer = client.post("/v1/policies/evaluate", json=body, headers=keys["researcher"])
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == field and reason in detail["reason"], detail


@pytest.mark.shares_service
def test_a_seed_given_twice_is_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The same day counted twice made the confidence intervals look tighter than they are."""
    answer = client.post(
        "/v1/policies/evaluate", json=_body(seeds=[1, 2, 1]), headers=keys["researcher"]
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0] == {"field": "seeds.2", "reason": "1 is given twice"}


@pytest.mark.shares_service
def test_policy_evaluation_needs_a_researcher_key(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    assert (
        client.post("/v1/policies/evaluate", json=_body(), headers=keys["oms"]).status_code == 403
    )
    assert (
        client.post("/v1/policies/evaluate", json=_body(), headers=keys["planner"]).status_code
        == 403
    )


def test_model_names_resolve_inside_the_models_folder_only(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    from tests.api.conftest import app_of

    models = app_of(client).state.ctx.settings.models_dir
    models.mkdir(parents=True, exist_ok=True)
    (models / "mine.zip").write_bytes(b"not a zip")
    answer = client.post(
        "/v1/policies/evaluate", json=_body(policies=["model:mine"]), headers=keys["researcher"]
    )
    assert answer.status_code == 422
    reason = answer.json()["detail"][0]["reason"]
    assert "is not a zip file" in reason and str(models) not in reason  # found, then checked


def test_a_model_of_other_features_is_a_422_naming_both_versions(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A model trained on other observation features (no features_version in its record:
    version 1) was used silently; it is refused, the folder not echoed back."""
    import json
    import zipfile

    from rl_agents.model_io import META, shipped_model_path
    from tests.api.conftest import app_of

    models = app_of(client).state.ctx.settings.models_dir
    models.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(shipped_model_path()) as zin,
        zipfile.ZipFile(models / "old.zip", "w") as zout,
    ):
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == META:
                meta = json.loads(data)
                del meta["features_version"]
                data = json.dumps(meta).encode()
            zout.writestr(info, data)
    answer = client.post(
        "/v1/policies/evaluate", json=_body(policies=["model:old"]), headers=keys["researcher"]
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == "policies.0"
    reason = detail["reason"]
    assert "'old' was trained on observation features version 1" in reason
    assert "this code computes version 2" in reason and str(models) not in reason


def test_a_model_of_another_input_size_is_a_422_naming_both_sizes(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A model whose network takes another number of inputs than the observation has was
    accepted (202) and failed at the job's first decision with a numpy shape error."""
    from rl_agents.model_io import shipped_model_path
    from tests.api.conftest import app_of
    from tests.rl_agents.test_model_shapes import narrower_slot_scorer, with_arrays

    models = app_of(client).state.ctx.settings.models_dir
    models.mkdir(parents=True, exist_ok=True)
    with_arrays(shipped_model_path(), models / "narrow.zip", narrower_slot_scorer)
    answer = client.post(
        "/v1/policies/evaluate", json=_body(policies=["model:narrow"]), headers=keys["researcher"]
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == "policies.0"
    reason = detail["reason"]
    assert "'narrow': its slot scorer takes 49 inputs" in reason
    assert "the observation gives 52" in reason and str(models) not in reason


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ({"hindsight_iterations": 0}, "hindsight_iterations", "greater than or equal to 1"),
        (
            {"hindsight_search_iterations": -5},
            "hindsight_search_iterations",
            "greater than or equal to 1",
        ),
        ({"hindsight_duration_iterations": 900}, "hindsight_duration_iterations", "needs"),
    ],
)
def test_bad_hindsight_iteration_budgets_are_422_naming_the_field(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    extra: dict[str, int],
    field: str,
    reason: str,
) -> None:
    answer = client.post(
        "/v1/policies/evaluate",
        json=_body(policies=["hindsight:5"], **extra),
        headers=keys["researcher"],
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == field and reason in detail["reason"], detail


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"hindsight_iterations": 40}, "hindsight_iterations"),
        ({"hindsight_search_iterations": 60}, "hindsight_search_iterations"),
        ({"hindsight_iterations": 40, "hindsight_duration_iterations": 9}, "hindsight_iterations"),
    ],
)
def test_a_hindsight_budget_without_the_hindsight_policy_is_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], extra: dict[str, int], field: str
) -> None:
    """The budget was accepted and ignored: no day was solved in hindsight."""
    answer = client.post("/v1/policies/evaluate", json=_body(**extra), headers=keys["researcher"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {
            "field": field,
            "reason": "applies only to the hindsight policy, and policies has none "
            "(add hindsight or hindsight:SECONDS, or drop the field)",
        }
    ]
    assert client.get("/v1/jobs", headers=keys["researcher"]).json()["count"] == 0


def test_hindsight_iteration_budgets_reach_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """With iteration budgets the reference is the same on a busy machine (docs/rl.md)."""
    import rl_agents.evaluate
    from api.tasks.policies import run_evaluation

    seen: list[object] = []

    def fake_evaluate(*_args: object, **kwargs: object) -> dict[str, object]:
        seen.append(kwargs["hindsight_params"])
        return {}

    monkeypatch.setattr(rl_agents.evaluate, "evaluate_policies", fake_evaluate)
    monkeypatch.setattr(rl_agents.evaluate, "report_json", lambda summaries: {})
    monkeypatch.setattr(rl_agents.evaluate, "table_markdown", lambda summaries: "")
    run_evaluation(_body(policies=["hindsight:5"]))
    budgets = {"hindsight_iterations": 40, "hindsight_search_iterations": 60}
    run_evaluation(_body(policies=["hindsight:5"], **budgets))
    assert seen == [None, {"max_iterations": 40, "search_iterations": 60}]


def test_a_bare_hindsight_is_checked_at_the_seconds_it_runs(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    """``hindsight`` without seconds runs the reference's default per solver run (60 s): a
    service capping time limits below that refuses it (it was checked at 30 s and accepted)."""
    tight = Settings(**{**settings.model_dump(), "max_time_limit_s": 45.0, "auth_enabled": False})
    answer = make_client(tight).post("/v1/policies/evaluate", json=_body(policies=["hindsight"]))
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == "policies.0" and "at most 45 s" in detail["reason"], detail


def test_the_day_cap_counts_greedy_once_when_it_is_asked_for(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    """greedy and slots on 10 days play 20 days: with a cap of 20 they were refused as 30."""
    capped = Settings(**{**settings.model_dump(), "max_whatif_runs": 20, "auth_enabled": False})
    client = make_client(capped)
    seeds = list(range(1, 11))
    asked = client.post(
        "/v1/policies/evaluate", json=_body(policies=["greedy", "slots"], seeds=seeds)
    )
    assert asked.status_code == 202, asked.text
    added = client.post(
        "/v1/policies/evaluate", json=_body(policies=["slots", "insertion"], seeds=seeds)
    )
    assert added.status_code == 422, added.text  # greedy added: 30 days
    detail = added.json()["detail"][0]
    assert detail["field"] == "seeds", detail
    assert detail["reason"] == (
        "30 simulated days (3 policies with the greedy baseline x seeds); at most 20"
    )


def _no_server_path(job: dict[str, Any], *paths: str) -> None:
    """None of ``paths`` (server folders) anywhere in what a client sees of ``job``."""
    import json

    seen = json.dumps(job)
    for path in paths:
        assert path not in seen, (path, seen[:2000])


def test_a_model_policy_is_shown_by_its_name_never_by_a_server_path(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The job held the model's resolved file path as the policy's name: its result (the
    policies, the summaries' keys and ``policy`` fields, the markdown table) showed the
    service's models folder to the client."""
    import shutil

    from rl_agents.model_io import shipped_model_path
    from tests.api.conftest import app_of

    models = app_of(client).state.ctx.settings.models_dir
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped_model_path(), models / "mine.zip")
    answer = client.post(
        "/v1/policies/evaluate",
        json=_body(policies=["model:mine", "model-plain:mine"], seeds=[1]),
        headers=keys["researcher"],
    )
    assert answer.status_code == 202, answer.text
    job = wait_for(
        lambda: client.get(answer.headers["location"], headers=keys["researcher"]).json(),
        lambda j: j["status"] in {"done", "failed"},
        timeout_s=120,
    )
    assert job["status"] == "done", job
    _no_server_path(job, str(models), str(shipped_model_path().parent))
    result = job["result"]
    assert result["policies"] == ["greedy", "model:mine", "model-plain:mine"]
    assert set(result["summaries"]) == {"greedy", "model:mine", "model-plain:mine"}
    assert result["summaries"]["model:mine"]["policy"] == "model:mine"
    assert "| model:mine |" in result["table_markdown"]
    listed = client.get("/v1/jobs", headers=keys["researcher"]).json()
    _no_server_path(listed, str(models))


def test_a_model_gone_before_its_job_ran_fails_naming_the_model_not_its_path(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """A model file deleted (or replaced by a broken one) between the 202 and the job's run:
    the job's error quoted the file's path ('solver error: FileNotFoundError: ... No such file
    or directory: '/srv/.../models/mine.zip'')."""
    import shutil

    from rl_agents.model_io import shipped_model_path
    from tests.api.conftest import app_of

    ctx = app_of(client).state.ctx
    models = ctx.settings.models_dir
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped_model_path(), models / "mine.zip")
    assert ctx.jobs is not None
    ctx.jobs.max_queued = 100
    from api.routes.policies import check_specs
    from api.schemas.policies import PolicyEvaluationCreate

    body = PolicyEvaluationCreate.model_validate(_body(policies=["model:mine"], seeds=[1]))
    payload = body.model_dump(mode="json")
    payload["policies"] = check_specs(body, ctx.settings)  # as the route queues it
    (models / "mine.zip").unlink()  # gone before the job runs
    with ctx.sessions() as session:
        job_id = ctx.jobs.submit(
            session,
            kind="policies",
            payload=payload,
            key_id=None,
            seed=1,
            input_hash="h",
            timeout_s=60.0,
        ).id
    job = wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}", headers=keys["admin"]).json(),
        lambda j: j["status"] in {"done", "failed"},
        timeout_s=120,
    )
    assert job["status"] == "failed", job
    _no_server_path(job, str(models))
    assert "mine" in job["error"], job["error"]


def test_an_error_naming_a_model_file_names_the_model() -> None:
    """Whatever the error's type, its message shows the model's name, not the server's path."""
    from api.tasks.policies import SERVER_FOLDER, _scrubbed, public_spec
    from scenarios.errors import InputError

    path = "/srv/dispatchlab/models/mine.zip"
    files = {path: "mine"}
    gone = _scrubbed(FileNotFoundError(2, "No such file or directory", path), files)
    assert isinstance(gone, FileNotFoundError) and str(gone).endswith("'mine'")
    bad = _scrubbed(InputError("policies.0", f"model file {path!r} not found"), files)
    assert isinstance(bad, InputError) and bad.field == "policies.0"
    assert bad.reason == "model file 'mine' not found"

    class Odd(Exception):
        def __init__(self, a: str, b: str) -> None:
            super().__init__(f"{a} {b}")

    odd = _scrubbed(Odd("in", "/srv/dispatchlab/models/other.bin"), files)
    assert str(odd) == f"Odd: in {SERVER_FOLDER}/other.bin"
    untouched = ValueError("no path here")
    assert _scrubbed(untouched, files) is untouched
    assert public_spec(f"model-plain:{path}") == "model-plain:mine"
    assert public_spec("model:standard") == "model:standard"
    assert public_spec("euro-lazy:5") == "euro-lazy:5"
