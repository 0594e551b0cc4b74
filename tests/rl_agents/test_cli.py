"""``dispatchlab train`` and ``dispatchlab evaluate``: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from dispatchlab.cli import app
from rl_agents.scenario import MAX_SEEDS, parse_seeds
from scenarios import Scenario
from scenarios.errors import InputError
from scenarios.geo import MAX_SEED

runner = CliRunner()


def one_line_error(result: Result, *needles: str) -> None:
    """Exit 2, no traceback, exactly one line on stderr naming what is wrong."""
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_evaluate_writes_the_json_and_the_table(
    tiny_file: Path, tiny_model: Path, tmp_path: Path
) -> None:
    out, table = tmp_path / "r.json", tmp_path / "r.md"
    policies = f"greedy,insertion,euro-lazy:5,model:{tiny_model}"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--scenario", str(tiny_file),
            "--policies", policies,
            "--seeds", "1..2",
            "--workers", "1",
            "--out", str(out),
            "--table", str(table),
            "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for name in ("greedy", "insertion", "euro-lazy:5", f"model:{tiny_model}"):
        assert data[name]["n"] == 2
        assert data[name]["mean_cost"] > 0
        assert 0.0 <= data[name]["on_time_rate"] <= 1.0
    assert data["insertion"]["diff_vs_greedy"] < 0
    assert data["_meta"]["seeds"] == [1, 2]
    head = table.read_text().splitlines()[0]  # the header names the column, not "paired"
    assert "paired" not in head and "diff vs greedy" in head
    assert "Holm-Bonferroni" in table.read_text()  # the footer says how the marks are decided
    assert "| insertion | 2 |" in result.output


def test_evaluate_writes_the_per_day_results_the_intervals_can_be_recomputed_from(
    tiny_file: Path, tmp_path: Path
) -> None:
    """Validation-day figures in docs/rl.md could not be checked: no per-day data was kept.
    ``--days`` writes it (the benchmark's per-day CSV), and the JSON's intervals follow from it."""
    import csv

    from simulation.stats import paired_diff

    out, days = tmp_path / "r.json", tmp_path / "days.csv"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--scenario", str(tiny_file),
            "--policies", "greedy,insertion",
            "--seeds", "1..3",
            "--workers", "1",
            "--out", str(out),
            "--days", str(days),
            "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    with days.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["policy"], int(r["seed"])) for r in rows] == [
        (p, s) for p in ("greedy", "insertion") for s in (1, 2, 3)
    ]
    cost = {
        p: [float(r["cost_cents"]) for r in rows if r["policy"] == p] for p in data if p[0] != "_"
    }
    assert cost["greedy"] == [data["greedy"]["costs"][str(s)] for s in (1, 2, 3)]
    d = paired_diff(cost["insertion"], cost["greedy"])
    assert data["insertion"]["diff_ci"] == pytest.approx([d.low, d.high])
    refused = runner.invoke(
        app,
        [
            "evaluate",
            "--scenario",
            str(tiny_file),
            "--seeds",
            "1",
            "--days",
            str(tmp_path / "no" / "d.csv"),
        ],
    )
    one_line_error(refused, "--days")


def test_evaluate_writes_its_outputs_all_or_none(
    tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--days``, ``--out`` and ``--table`` were each renamed into place on its own: a
    failure renaming the JSON (a full disk) left the new per-day CSV beside the old JSON and
    table. Now the error is one line and all three are as they were; then all three new."""
    import os

    paths = {"--out": tmp_path / "r.json", "--table": tmp_path / "r.md"}
    paths["--days"] = tmp_path / "days.csv"
    for path in paths.values():
        path.write_text(f"old {path.name}\n", encoding="utf-8")
    before = {p: p.read_text(encoding="utf-8") for p in paths.values()}
    real_replace = os.replace
    renames: list[str] = []

    def second_fails(source: str | Path, target: str | Path) -> None:
        renames.append(Path(target).name)
        if len(renames) == 2:
            raise OSError(28, "No space left on device", str(source))
        real_replace(source, target)

    args = ["evaluate", "--scenario", str(tiny_file), "--policies", "greedy,insertion"]
    args += ["--seeds", "1", "--workers", "1", "--quiet"]
    args += [word for option, path in paths.items() for word in (option, str(path))]
    monkeypatch.setattr(os, "replace", second_fails)
    failed = runner.invoke(app, args)
    monkeypatch.undo()
    one_line_error(failed, "No space left on device")
    assert {p: p.read_text(encoding="utf-8") for p in paths.values()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert all(p.read_text(encoding="utf-8") != before[p] for p in paths.values())
    assert "insertion" in paths["--table"].read_text(encoding="utf-8")


def test_evaluate_refuses_one_file_for_two_outputs(
    tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out r.json --table ./r.json``: the table replaced the JSON without a word; now
    exit 2 naming both options, before any day is played."""
    import rl_agents.evaluate

    def no_days(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("days played")

    monkeypatch.setattr(rl_agents.evaluate, "evaluate_policies", no_days)
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", "--scenario", str(tiny_file), "--seeds", "1", "--quiet"]
    result = runner.invoke(app, [*args, "--out", "r.json", "--table", "./r.json"])
    one_line_error(result, "--table: the same file as --out")


def test_train_writes_a_model(tiny_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.zip"
    result = runner.invoke(
        app,
        [
            "train",
            "--algo", "maskable-ppo",
            "--scenario", str(tiny_file),
            "--timesteps", "64",
            "--envs", "1",
            "--imitation-days", "0",
            "--eval-every", "0",
            "--seed", "3",
            "--out", str(out),
            "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.exists() and (tmp_path / "m-logs").is_dir()
    assert "wrote" in result.output


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["evaluate", "--seeds", "5..1"], ["error: --seeds: ", "ends before"]),
        (["evaluate", "--seeds", "a..b"], ["error: --seeds: "]),
        (["evaluate", "--seeds=-2..1"], ["error: --seeds: ", "non-negative"]),
        (["evaluate", "--seeds=3,-1"], ["seeds", "non-negative"]),
        # a range was listed before it was checked: 10^11 integers, until memory ran out
        (["evaluate", "--seeds", "0..99999999999"], ["--seeds: ", "at most 4294967295"]),
        (["evaluate", "--seeds", "4294967296"], ["seeds", "at most 4294967295"]),
        (["evaluate", "--seeds", "1..100001"], ["seeds", "100001 seeds; at most 100000"]),
        (["evaluate", "--policies", "nope", "--seeds", "1"], ["error: --policies: unknown policy"]),
        (
            ["evaluate", "--policies", "greedy,reopt:0.5", "--seeds", "1"],
            ["error: --policies: reopt:0.5: the period must be at least 1 minute"],
        ),
        (
            ["evaluate", "--policies", "euro-lazy:0.0167", "--seeds", "1"],
            ["error: --policies: euro-lazy:0.0167: the epoch must be at least 1 minute"],
        ),
        (
            ["evaluate", "--policies", "model:/no/such.zip", "--seeds", "1"],
            ["error: --policies: model"],
        ),
        (["evaluate", "--scenario", "/no/such.json", "--seeds", "1"], ["error: --scenario: "]),
        (
            ["evaluate", "--seeds", "1", "--hindsight-warm-start", "nope"],
            ["--hindsight-warm-start", "unknown policy"],
        ),
        (["evaluate", "--seeds", "1", "--hindsight-search-s", "-1"], ["--hindsight-search-s"]),
        (["evaluate", "--seeds", "1", "--hindsight-search-s", "inf"], ["--hindsight-search-s"]),
        (
            ["evaluate", "--seeds", "1", "--hindsight-iterations", "0"],
            ["--hindsight-iterations", "1 or more"],
        ),
        (
            ["evaluate", "--seeds", "1", "--hindsight-iterations", "lots"],
            ["--hindsight-iterations", "expected"],
        ),
        (
            ["evaluate", "--seeds", "1", "--hindsight-search-iterations", "0"],
            ["error: --hindsight-search-iterations: must be an integer of at least 1, got 0"],
        ),
        (
            [
                "evaluate",
                "--seeds",
                "1",
                "--hindsight-search-iterations",
                "5",
                "--hindsight-search-s",
                "0",
            ],
            ["--hindsight-search-iterations", "search is off"],
        ),
        # the errors above named the library's argument (``seeds: ...``), not the option
        (["train", "--scenario", "/no/such.json"], ["error: --scenario: "]),
        (["train", "--algo", "a2c"], ["--algo", "a2c"]),
        (["train", "--timesteps", "0"], ["--timesteps"]),
        # no upper bound ran a 1e20-step run for ever
        (["train", "--timesteps", "99999999999999999999"], ["error: --timesteps: ", "1000000000"]),
        (["train", "--out", "model.pt"], ["--out", ".zip"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needles: list[str]) -> None:
    one_line_error(runner.invoke(app, args), *needles)


@pytest.mark.parametrize(("given", "expected"), [([], None), (["--hindsight-search-s", "0"], 0.0)])
def test_evaluate_passes_the_hindsight_search_budget(
    tiny_file: Path, monkeypatch: pytest.MonkeyPatch, given: list[str], expected: float | None
) -> None:
    """``--hindsight-search-s`` (docs/rl.md) reaches the hindsight settings; absent = default."""
    params = _hindsight_params(tiny_file, monkeypatch, given)
    assert params.get("search_s") == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], {"time_limit_s": 30.0, "max_iterations": None, "search_iterations": None}),
        (
            ["--hindsight-iterations", "3000,700", "--hindsight-search-iterations", "1000"],
            {"time_limit_s": 300.0, "search_s": 300.0, "max_iterations": 3000,
             "duration_iterations": 700, "search_iterations": 1000},
        ),
        (
            ["--hindsight-iterations", "50", "--hindsight-time-limit", "90"],
            {"time_limit_s": 90.0, "max_iterations": 50, "duration_iterations": None},
        ),
    ],
)  # fmt: skip
def test_evaluate_passes_the_hindsight_iteration_budgets(
    tiny_file: Path, monkeypatch: pytest.MonkeyPatch, given: list[str], expected: dict[str, object]
) -> None:
    """``--hindsight-iterations`` / ``--hindsight-search-iterations`` reach the settings; with
    them and no time limit, the clock is the safety cap."""
    params = _hindsight_params(tiny_file, monkeypatch, given)
    assert {k: params.get(k) for k in expected} == expected


def test_corrupt_hindsight_cache_is_one_line_and_exit_2(tiny_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "invalid.json"
    cache.write_text("not json\n", encoding="utf-8")
    args = ["evaluate", "--scenario", str(tiny_file), "--policies", "greedy,hindsight:1"]
    result = runner.invoke(app, [*args, "--seeds", "1", "--hindsight-cache", str(cache), "-q"])
    one_line_error(result, "--hindsight-cache", "line 1: not JSON")


@pytest.mark.parametrize(
    "option",
    [
        ["--hindsight-time-limit", "5"],
        ["--hindsight-cache", "{tmp}/h.jsonl"],
        ["--hindsight-warm-start", "greedy"],
        ["--hindsight-warm-solve"],
        ["--hindsight-search-s", "0"],
        ["--hindsight-iterations", "50"],
        ["--hindsight-search-iterations", "50"],
    ],
)
def test_a_hindsight_option_without_the_hindsight_policy_is_exit_2_naming_it(
    tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: list[str]
) -> None:
    """The option was accepted and ignored: no day was solved in hindsight."""
    import rl_agents.evaluate

    def no_days(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("days played")

    monkeypatch.setattr(rl_agents.evaluate, "evaluate_policies", no_days)
    given = [a.format(tmp=tmp_path) for a in option]
    args = ["evaluate", "--scenario", str(tiny_file), "--policies", "greedy,insertion"]
    result = runner.invoke(app, [*args, "--seeds", "1", *given, "--quiet"])
    one_line_error(
        result,
        f"error: {option[0]}: applies only to the hindsight policy, and --policies has none "
        "(add hindsight or hindsight:SECONDS, or drop the option)",
    )


def test_train_reports_the_requested_timesteps(tiny_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.zip"
    result = runner.invoke(
        app,
        [
            "train",
            "--algo", "ppo",
            "--scenario", str(tiny_file),
            "--timesteps", "64",
            "--imitation-days", "0",
            "--eval-every", "0",
            "--out", str(out),
            "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "after 64 steps" in " ".join(result.output.split())


@pytest.mark.parametrize("command", ["evaluate", "train"])
@pytest.mark.parametrize(
    ("emptied", "needle"),
    [
        ("orders", "orders: no orders and no arrivals expected"),
        ("vehicles", "vehicles: no couriers"),
    ],
)
def test_a_day_without_orders_or_couriers_is_refused_naming_the_field(
    tiny_file: Path, tmp_path: Path, command: str, emptied: str, needle: str
) -> None:
    # before: evaluate played the days and printed identical rows (cost 0 every day, or every
    # order unserved), train trained on days without a decision
    data = json.loads(tiny_file.read_text())
    data[emptied] = []
    data["arrivals"] = None
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(data))
    args = [command, "--scenario", str(path), "--quiet"]
    args += ["--seeds", "1", "--workers", "1"] if command == "evaluate" else ["--timesteps", "1"]
    args += ["--out", str(tmp_path / ("r.json" if command == "evaluate" else "m.zip"))]
    one_line_error(runner.invoke(app, args), f"{path}: {needle}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.json"]


def test_train_refuses_logdir_dash(
    tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: '--logdir -' trained and wrote the logs to a folder named '-' (as whatif --out -
    # made ./-, now refused)
    monkeypatch.chdir(tmp_path)
    args = ["train", "--scenario", str(tiny_file), "--timesteps", "1", "--imitation-days", "0"]
    args += ["--eval-every", "0", "--quiet", "--logdir", "-"]
    one_line_error(runner.invoke(app, args), "error: --logdir: ", "standard output")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--imitation-days", "3"),
        ("--imitation-epochs", "5"),
        ("--demos", "demos.npz"),
        ("--expert", "rollout"),
        ("--dagger-rounds", "2"),
        ("--dagger-days", "5"),
    ],
)
def test_dqn_refuses_the_warm_start_options(
    tiny_file: Path, tmp_path: Path, option: str, value: str
) -> None:
    args = ["train", "--algo", "dqn", "--scenario", str(tiny_file), "--timesteps", "16"]
    args += ["--eval-every", "0", "--out", str(tmp_path / "m.zip")]
    if option == "--demos":
        value = str(tmp_path / value)
    one_line_error(runner.invoke(app, [*args, option, value]), option, "DQN")
    assert not (tmp_path / "m.zip").exists() and not (tmp_path / "demos.npz").exists()


def test_dagger_without_the_rollout_expert_is_refused(tiny_file: Path, tmp_path: Path) -> None:
    args = ["train", "--scenario", str(tiny_file), "--timesteps", "16", "--eval-every", "0"]
    args += ["--dagger-rounds", "1", "--out", str(tmp_path / "m.zip")]
    one_line_error(runner.invoke(app, args), "--dagger-rounds", "--expert rollout")
    assert not (tmp_path / "m.zip").exists()


def test_dqn_trains_with_the_warm_start_options_left_out_or_zero(
    tiny_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.zip"
    args = ["train", "--algo", "dqn", "--scenario", str(tiny_file), "--timesteps", "16"]
    args += ["--imitation-days", "0", "--eval-every", "0", "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.exists()


@pytest.mark.parametrize(
    ("seed", "needle"), [("1000000", "training days"), ("900001", "validation days")]
)
def test_evaluate_warns_on_days_that_are_not_held_out(seed: str, needle: str) -> None:
    args = ["evaluate", "--policies", "greedy", "--seeds", seed, "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert needle in result.stderr and "not held out" in result.stderr


def _train_with_demos(tiny_file: Path, tmp_path: Path, demos: Path) -> Result:
    """``dispatchlab train`` (seed 0, one imitation day, a tiny budget) with ``--demos``."""
    args = ["train", "--algo", "ppo", "--scenario", str(tiny_file), "--timesteps", "16"]
    args += ["--imitation-days", "1", "--imitation-epochs", "1", "--eval-every", "0"]
    args += ["--seed", "0", "--demos", str(demos), "--out", str(tmp_path / "m.zip"), "--quiet"]
    return runner.invoke(app, args)


def test_train_refuses_demos_made_for_other_days(tiny_file: Path, tmp_path: Path) -> None:
    from rl_agents.env import EnvParams
    from rl_agents.expert import save_demonstrations
    from rl_agents.scenario import load_scenario_spec
    from rl_agents.train import demonstrations

    scenario = load_scenario_spec(str(tiny_file))
    demos = tmp_path / "demos.npz"
    save_demonstrations(demos, demonstrations(scenario, EnvParams(), [5]), [5])
    before = demos.read_bytes()
    result = _train_with_demos(tiny_file, tmp_path, demos)
    one_line_error(result, "--demos:", "made for another run", "days: [5] in the file")
    assert demos.read_bytes() == before and not (tmp_path / "m.zip").exists()


@pytest.mark.parametrize("kind", ["past the cap", "npy"])
def test_train_names_a_demos_file_it_cannot_read(
    tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # no size cap (a huge file was read whole), and a .npy named .npz was a traceback
    import numpy as np

    from scenarios.files import MAX_INPUT_ENV

    demos = tmp_path / "demos.npz"
    cap = 2 * tiny_file.stat().st_size  # the scenario is read under the same cap
    with demos.open("wb") as fh:
        np.save(fh, np.zeros(cap // 4))  # 8 bytes each: twice the cap
    if kind == "past the cap":
        monkeypatch.setenv(MAX_INPUT_ENV, str(cap))
    result = _train_with_demos(tiny_file, tmp_path, demos)
    reason = (
        f"file is larger than the {cap:,} bytes" if kind == "past the cap" else "is not a zip file"
    )
    one_line_error(result, f"error: {demos}: --demos: {reason}")
    assert not (tmp_path / "m.zip").exists()


def test_evaluate_names_a_model_file_past_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenarios.files import MAX_INPUT_ENV

    model = tmp_path / "huge.zip"
    model.write_bytes(b"PK" + b"\0" * 5000)
    monkeypatch.setenv(MAX_INPUT_ENV, "4096")
    args = ["evaluate", "--policies", f"greedy,model:{model}", "--seeds", "1", "--workers", "1"]
    result = runner.invoke(app, [*args, "--quiet"])
    one_line_error(result, f"error: {model}: --policies: file is larger than the 4,096 bytes")


def test_train_recomputes_stale_demos_with_a_warning(tiny_file: Path, tmp_path: Path) -> None:
    import numpy as np

    from rl_agents.expert import load_demonstrations_meta, save_demonstrations
    from rl_agents.scenario import TRAIN_SEEDS, load_scenario_spec
    from rl_agents.train import TrainParams, demonstrations, demonstrations_meta

    scenario = load_scenario_spec(str(tiny_file))
    pick = np.random.default_rng(0).choice(len(TRAIN_SEEDS), size=1, replace=False)
    days = [int(TRAIN_SEEDS[int(pick[0])])]  # the day a run of seed 0 imitates
    params = TrainParams(expert="slots", imitation_days=1)
    meta = demonstrations_meta(scenario, params, days)
    meta["draws_version"] -= 1
    demos = tmp_path / "demos.npz"
    save_demonstrations(demos, demonstrations(scenario, params.env, days), days, meta=meta)
    result = _train_with_demos(tiny_file, tmp_path, demos)
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert "warning:" in warning and "random draws version" in warning and "recomputing" in warning
    assert load_demonstrations_meta(demos) == demonstrations_meta(scenario, params, days)


def _hindsight_params(
    tiny_file: Path, monkeypatch: pytest.MonkeyPatch, given: list[str]
) -> dict[str, object]:
    """The hindsight settings ``dispatchlab evaluate ... GIVEN`` hands to the evaluation."""
    import rl_agents.evaluate

    seen: dict[str, object] = {}

    def fake_evaluate(*_args: object, **kwargs: object) -> dict[str, object]:
        seen.update(kwargs)
        return {}

    monkeypatch.setattr(rl_agents.evaluate, "evaluate_policies", fake_evaluate)
    args = ["evaluate", "--scenario", str(tiny_file), "--policies", "hindsight", "--seeds", "1"]
    result = runner.invoke(app, [*args, *given, "--quiet"])
    assert result.exit_code == 0, result.output
    params = seen["hindsight_params"]
    assert isinstance(params, dict)
    return params


@settings(max_examples=200, deadline=None)
@given(
    spec=st.one_of(
        st.tuples(
            st.integers(min_value=-3, max_value=MAX_SEED + 3),
            st.integers(min_value=-3, max_value=MAX_SEEDS + 3),
        ).map(lambda t: f"{t[0]}..{t[0] + t[1]}"),
        st.lists(st.integers(min_value=-3, max_value=MAX_SEED + 3), max_size=5).map(
            lambda xs: ",".join(map(str, xs))
        ),
        st.text(max_size=12),
    )
)
def test_seed_specs_give_32_bit_seeds_or_an_input_error(spec: str) -> None:
    """Every seed parse_seeds returns fits the 32-bit generators, at most MAX_SEEDS of them;
    anything else is an InputError on seeds (seeds past 2**32 - 1 were taken)."""
    try:
        seeds = parse_seeds(spec)
    except InputError as err:
        assert err.field == "seeds" and err.reason
        return
    assert 1 <= len(seeds) <= MAX_SEEDS
    assert all(0 <= s <= MAX_SEED for s in seeds)


@pytest.mark.parametrize("spec", ["1,,2", "1,2,", ",3"])
def test_an_empty_seed_between_commas_is_refused(spec: str) -> None:
    """'1,,2' was read as 1,2: a seed dropped by a typo ran without a word."""
    with pytest.raises(InputError) as info:
        parse_seeds(spec)
    assert info.value.field == "seeds" and "empty seed" in info.value.reason


def test_a_hindsight_spec_ending_in_a_colon_is_refused() -> None:
    """'hindsight:' ran the default time limit under that name."""
    from rl_agents.evaluate import _validate_specs

    with pytest.raises(InputError) as info:
        _validate_specs(["hindsight:"])
    assert info.value.field == "policies" and "nothing after ':'" in info.value.reason


@pytest.mark.parametrize(
    "spec", ["hindsight:nan", "hindsight:inf", "hindsight:-inf", "hindsight:100000"]
)
def test_a_hindsight_time_limit_out_of_range_names_the_policies(spec: str) -> None:
    """'hindsight:nan' and 'hindsight:100000' passed the check and failed in the solver's
    parameters as 'time_limit_s: ...' (the CLI printed that, not --policies); the API
    refused them already."""
    from rl_agents.evaluate import _validate_specs

    with pytest.raises(InputError) as info:
        _validate_specs([spec])
    assert info.value.field == "policies", info.value.field
    assert spec in info.value.reason and "86400" in info.value.reason


def test_evaluate_refuses_a_hindsight_time_limit_out_of_range_naming_the_option() -> None:
    """The CLI line of the case above: exit 2 naming --policies, before any day is played."""
    result = runner.invoke(app, ["evaluate", "--policies", "greedy,hindsight:nan", "--seeds", "1"])
    assert result.exit_code == 2, result.output
    assert "--policies: hindsight:nan" in result.output
    assert "time_limit_s" not in result.output


def test_train_timesteps_help_states_the_smallest_rollout() -> None:
    """A budget below one rollout trains at least ``MIN_N_STEPS`` steps per environment, as
    ``fit_rollout`` makes it (the help said "one rollout of that size": 10 steps trained 16)."""
    import typer.main

    from rl_agents.train import MIN_N_STEPS

    commands = getattr(typer.main.get_command(app), "commands")  # noqa: B009 (a typer group)
    (timesteps,) = [p for p in commands["train"].params if "--timesteps" in p.opts]
    assert f"at least {MIN_N_STEPS} steps per environment" in " ".join(str(timesteps.help).split())


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("text", "--scenario: cannot tell the file format (a scenario file: JSON, Solomon"),
        # the path itself: as every command says it (tests/dispatchlab/test_input_size.py)
        ("folder", "path: is a directory, expected a file"),
    ],
)
def test_a_scenario_file_of_no_known_format_names_the_option(
    tmp_path: Path, command: str, kind: str, reason: str
) -> None:
    # the reader's own advice, "pass --format", named an option neither command has, and its
    # field (``format: ...``, ``path: ...``) was not the option
    scenario = tmp_path / "day.txt"
    if kind == "text":
        scenario.write_text("hello\n")
    else:
        scenario.mkdir()
    args = [command, "--scenario", str(scenario), "--quiet"]
    args += ["--out", str(tmp_path / "m.zip")] if command == "train" else ["--seeds", "1"]
    result = runner.invoke(app, args)
    one_line_error(result, f"error: {scenario}: {reason}")
    assert "--format" not in result.output
    assert not (tmp_path / "m.zip").exists()


@pytest.mark.parametrize("content", [b"hello", b""])
def test_evaluate_names_the_option_of_a_model_file_that_is_not_a_zip(
    tmp_path: Path, content: bytes
) -> None:
    # it was ``FILE: model: is not a zip file``: the library's argument, not the option
    model = tmp_path / "m.zip"
    model.write_bytes(content)
    args = ["evaluate", "--policies", f"greedy,model:{model}", "--seeds", "1", "--workers", "1"]
    result = runner.invoke(app, [*args, "--quiet"])
    one_line_error(result, f"error: {model}: --policies: is not a zip file")


def test_simulate_and_whatif_play_the_rl_policies_in_their_workers(
    tiny: Scenario, tiny_file: Path, tmp_path: Path
) -> None:
    """``dispatchlab simulate --policy model-plain:standard`` (a fresh process, 2 workers) plays the
    days the library plays; ``whatif`` takes them too.

    Both refused them (``unknown policy 'slots'; choose from insertion, nearest, plan,
    reopt``): the command imported no package registering policies, nor did its workers.
    """
    import os
    import subprocess
    import sys

    from simulation import simulate
    from simulation.evaluate import replication_seeds
    from tests.scripts import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "dispatchlab"]
    kpis = tmp_path / "kpis.json"
    days = ["--replications", "2", "--seed", "3", "--workers", "2", "-q"]
    simulate_args = [str(tiny_file), "--policy", "model-plain:standard", "--out", str(kpis)]
    done = subprocess.run(
        [*base, "simulate", *simulate_args, *days],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    costs = [
        simulate(tiny, None, "model-plain:standard", seed=s).metrics["cost_cents"]
        for s in replication_seeds(3, 2)
    ]
    assert json.loads(kpis.read_text())["cost_cents"]["mean"] == pytest.approx(sum(costs) / 2)
    (tmp_path / "v.yaml").write_text(
        f"base: {tiny_file}\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: 1.2}\n",
        encoding="utf-8",
    )
    whatif_args = ["--policies", "insertion,slots", "--out", str(tmp_path / "r")]
    done = subprocess.run(
        [*base, "whatif", str(tmp_path / "v.yaml"), *whatif_args, *days],
        env={**env, "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "r" / "replications.csv").read_text().splitlines()
    assert sum(",slots," in row for row in rows) == 4  # 2 variants x 2 replications


def test_the_commands_know_every_policy_the_rl_package_registers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``simulate`` and ``whatif`` import ``rl_agents`` for a spec naming one of these."""
    import rl_agents.policies
    from dispatchlab.cli.simulate import RL_POLICIES

    names: list[str] = []
    monkeypatch.setattr(
        rl_agents.policies, "register_policy", lambda name, *_, **__: names.append(name)
    )
    rl_agents.policies.register_policies()
    assert set(names) == RL_POLICIES


def test_evaluate_warns_when_no_vehicle_costs_anything_to_run(
    tiny_file: Path, tmp_path: Path
) -> None:
    # benchmark instances load with vehicle costs of 0: on a CVRP day every policy cost 0 on
    # every day, and evaluate printed identical rows without a word
    data = json.loads(tiny_file.read_text())
    for vehicle in data["vehicles"]:
        vehicle.update(fixed_cost_cents=0, cost_per_km_cents=0, cost_per_hour_cents=0)
    path = tmp_path / "free.json"
    path.write_text(json.dumps(data))
    args = ["evaluate", "--scenario", str(path), "--seeds", "1", "--workers", "1", "--quiet"]
    result = runner.invoke(app, [*args, "--policies", "insertion"])
    assert result.exit_code == 0, result.output
    assert "no vehicle costs anything to run" in result.stderr
    kept = runner.invoke(app, ["evaluate", "--scenario", str(tiny_file), *args[3:]])
    assert kept.exit_code == 0 and "costs anything" not in kept.stderr
