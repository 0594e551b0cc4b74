"""Evaluation: paired differences, gap closed, the hindsight cache."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rl_agents.evaluate import (
    DayOutcome,
    check_policy_name,
    diff_text,
    evaluate_policies,
    evaluation_policies,
    report_json,
    run_days,
    summarise,
    table_markdown,
    write_days_csv,
)
from scenarios import Scenario
from scenarios.errors import InputError
from scenarios.model import Break


def day(policy: str, seed: int, cost: float, on_time: float = 0.9) -> DayOutcome:
    """A synthetic day outcome."""
    return DayOutcome(policy, seed, {"cost_cents": cost, "on_time_rate": on_time}, 3, [10.0], 0.1)


def test_gap_closed_and_paired_differences() -> None:
    outcomes = [
        *(day("greedy", s, c) for s, c in ((1, 200.0), (2, 220.0), (3, 180.0))),
        *(day("agent", s, c) for s, c in ((1, 150.0), (2, 160.0), (3, 140.0))),
        *(day("hindsight", s, c) for s, c in ((1, 100.0), (2, 120.0), (3, 80.0))),
    ]
    s = summarise(outcomes)
    agent = s["agent"]
    assert agent.mean_cost == pytest.approx(150.0)
    assert agent.diff_vs_greedy == pytest.approx(-50.0)
    assert agent.diff_ci is not None and agent.diff_ci[1] < 0
    assert agent.gap_closed == pytest.approx((200.0 - 150.0) / (200.0 - 100.0))
    assert agent.cost_vs_hindsight == pytest.approx(1.5)
    assert agent.cost_vs_greedy == pytest.approx(0.75)
    assert s["greedy"].gap_closed == pytest.approx(0.0)
    assert s["hindsight"].gap_closed == pytest.approx(1.0)
    table = table_markdown(s)
    assert "| agent | 3 | 150 |" in table and "50.0%" in table
    data = report_json(s)
    assert data["agent"]["mean_cost"] == pytest.approx(150.0)
    assert data["agent"]["on_time_rate"] == pytest.approx(0.9)


def test_days_without_orders_have_no_on_time_rate() -> None:
    """A day with no order due (NaN) is left out of the mean; with none left it is None."""
    nan = float("nan")
    summaries = summarise(
        [day("greedy", 1, 100.0, 0.8), day("greedy", 2, 100.0, nan),
         day("agent", 1, 90.0, nan), day("agent", 2, 90.0, nan)]
    )  # fmt: skip
    assert summaries["greedy"].on_time_rate == pytest.approx(0.8)
    assert summaries["agent"].on_time_rate is None
    assert report_json(summaries)["agent"]["on_time_rate"] is None
    assert "| agent | 2 | 90 | [90, 90] (constant) | - |" in table_markdown(summaries)


def test_the_cost_interval_is_cut_at_zero_as_the_twin_cuts_its_kpis() -> None:
    # two days of 307,429 and 390,301 cents showed "95% CI [-165,273, 372,228]" for insertion:
    # a cost cannot be negative (docs/simulation.md: intervals are cut to the KPI's values)
    s = summarise([day("greedy", 1, 1_000.0), day("greedy", 2, 400_000.0)])
    assert s["greedy"].cost_ci is not None
    low, high = s["greedy"].cost_ci
    assert low == 0.0 and high > 400_000.0
    assert "| greedy | 2 | 200,500 | [0, " in table_markdown(s)
    assert report_json(s)["greedy"]["cost_ci"][0] == 0.0


def test_without_hindsight_there_is_no_gap() -> None:
    s = summarise([day("greedy", 1, 10.0), day("x", 1, 5.0)])
    assert s["x"].gap_closed is None and s["x"].cost_vs_hindsight is None


def test_evaluate_adds_the_greedy_baseline(tiny: Scenario) -> None:
    s = evaluate_policies(tiny, ["slots"], [1, 2])
    assert list(s) == ["greedy", "slots"]
    assert s["slots"].n == 2
    assert s["slots"].latency_p50_ms is not None
    assert s["slots"].mean_cost < s["greedy"].mean_cost


def test_hindsight_days_are_cached(tiny: Scenario, tmp_path: Path) -> None:
    cache = tmp_path / "h.jsonl"
    params = {"engine": "greedy", "shift_pricing": "shift"}
    first = run_days(tiny, ["hindsight:1"], [1], hindsight_params=params, cache=cache)
    assert cache.read_text().count("\n") == 1
    again = run_days(tiny, ["hindsight:1"], [1], hindsight_params=params, cache=cache)
    assert again[0].metrics == first[0].metrics
    assert cache.read_text().count("\n") == 1  # read, not recomputed


def test_days_cached_under_older_draws_are_recomputed(tiny: Scenario, tmp_path: Path) -> None:
    """A cache row written before the draws changed (its key had no draws version) is stale."""
    import hashlib
    import json

    from rl_agents.hindsight import HindsightParams

    params = {"engine": "greedy", "shift_pricing": "shift"}
    hp = HindsightParams.model_validate(params).model_dump_json(
        exclude={"warm_start_policies", "warm_start_solve"}
    )
    old_key = hashlib.sha1((tiny.model_dump_json() + hp).encode()).hexdigest()[:16]
    cache = tmp_path / "h.jsonl"
    stale = {"cost_cents": -1.0, "on_time_rate": 0.5}
    row = {"scenario_key": old_key, "policy": "hindsight:1", "seed": 1, "metrics": stale}
    cache.write_text(json.dumps({**row, "wall_s": 0.0, "detail": {}}) + "\n")
    out = run_days(tiny, ["hindsight:1"], [1], hindsight_params=params, cache=cache)
    assert out[0].metrics["cost_cents"] > 0  # recomputed, not the stale row
    assert cache.read_text().count("\n") == 2  # and cached under the current draws


def test_cache_key_changes_with_the_draws_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import rl_agents.evaluate as ev
    from simulation.streams import DRAWS_VERSION

    now = ev._key("{}", {"time_limit_s": 30.0})
    monkeypatch.setattr(ev, "DRAWS_VERSION", DRAWS_VERSION + 1)
    assert ev._key("{}", {"time_limit_s": 30.0}) != now


def test_cache_key_changes_with_the_replayed_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference replayed on the rounded materialised day (version 1) is not reused."""
    import rl_agents.evaluate as ev
    import rl_agents.hindsight as hs

    now = ev._key("{}", {"time_limit_s": 30.0})
    monkeypatch.setattr(hs, "HINDSIGHT_VERSION", 1)
    assert ev._key("{}", {"time_limit_s": 30.0}) != now


def _with_a_break(scenario: Scenario) -> Scenario:
    """``scenario`` with a 30 min break (window 12:00-14:00) for its first vehicle."""
    brk = {"window": {"start_s": 43200, "end_s": 50400}, "duration_s": 1800}
    first = scenario.vehicles[0].model_copy(update={"breaks": [Break.model_validate(brk)]})
    return scenario.model_copy(update={"vehicles": [first, *scenario.vehicles[1:]]})


def test_days_cached_before_the_twin_changed_are_recomputed(
    tiny: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 55 changed how the twin plays days whose vehicles have breaks (every courier
    takes them, whatever the policy), session 56 how a courier's departure follows its parcel
    on any day: a row cached before (its key had no twin version) was reused, stale."""
    import json

    import rl_agents.evaluate as ev
    import simulation.twin as twin

    params = {"engine": "greedy", "shift_pricing": "shift"}
    day = _with_a_break(tiny)
    # session 81: any day (ties between couriers); sessions 73-80's versions changed only
    # some days, which kept their cached rows
    assert twin.twin_version(tiny) == twin.twin_version(day) == twin.TWIN_VERSION == 13
    stale = {"cost_cents": -1.0, "on_time_rate": 0.5}
    for scenario in (day, tiny):
        old_key = ev._key(scenario.model_dump_json(), params)  # as keyed until session 56
        cache = tmp_path / f"{scenario is day}.jsonl"
        row = {"scenario_key": old_key, "policy": "hindsight:1", "seed": 1, "metrics": stale}
        cache.write_text(json.dumps({**row, "wall_s": 0.0, "detail": {}}) + "\n")
        out = run_days(scenario, ["hindsight:1"], [1], hindsight_params=params, cache=cache)
        assert out[0].metrics["cost_cents"] > 0  # recomputed, not the stale row
        assert cache.read_text().count("\n") == 2
    # the next bump changes the key again
    now = ev._key("{}", params, twin=twin.twin_version(day))
    monkeypatch.setattr(twin, "TWIN_VERSION", twin.TWIN_VERSION + 1)
    assert ev._key("{}", params, twin=twin.twin_version(day)) != now
    assert ev._key("{}", params, twin=1) == ev._key("{}", params)  # 1: the key as it was


@pytest.mark.parametrize(
    "budget",
    [{"max_iterations": 100}, {"max_iterations": 100, "duration_iterations": 50},
     {"search_iterations": 100}],
)  # fmt: skip
def test_cache_key_holds_the_iteration_budgets(budget: dict[str, int]) -> None:
    """A day computed with other iteration budgets is another reference: not reused."""
    import rl_agents.evaluate as ev

    clock = {"time_limit_s": 30.0}
    assert ev._key("{}", {**clock, **budget}) != ev._key("{}", clock)
    assert ev._key("{}", {**clock, **budget}) == ev._key("{}", {**clock, **budget})
    more = {k: v + 1 for k, v in budget.items()}
    assert ev._key("{}", {**clock, **more}) != ev._key("{}", {**clock, **budget})


def test_cache_key_changes_with_the_kpi_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cached rows hold KPIs: a day cached before a KPI's definition changed is recomputed."""
    import rl_agents.evaluate as ev
    from simulation.result import KPI_VERSION

    now = ev._key("{}", {"time_limit_s": 30.0})
    monkeypatch.setattr(ev, "KPI_VERSION", KPI_VERSION - 1)
    assert ev._key("{}", {"time_limit_s": 30.0}) != now


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"scenario_key": "k"}\n\n{oops\n', "line 3: not JSON"),
        ("[1, 2]\n", "line 1: expected a JSON object"),
        ("\xff\xfe", "not a text file"),
    ],
)
def test_corrupt_cache_is_an_input_error_naming_the_line(
    tiny: Scenario, tmp_path: Path, text: str, reason: str
) -> None:
    cache = tmp_path / "h.jsonl"
    cache.write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError) as err:
        run_days(tiny, ["greedy"], [1], cache=cache)
    assert err.value.field == "--hindsight-cache" and err.value.reason.startswith(reason)
    assert cache.read_bytes() == text.encode("latin-1")  # left as it was


def test_a_cache_in_a_missing_folder_is_refused_before_any_day(
    tiny: Scenario, tmp_path: Path
) -> None:
    # _append_cache made every missing folder (a typo became folders) after a hindsight day
    cache = tmp_path / "nowhere" / "h.jsonl"
    with pytest.raises(InputError) as err:
        run_days(tiny, ["greedy"], [1], cache=cache)
    assert (err.value.field, err.value.source) == ("--hindsight-cache", str(cache))
    assert err.value.reason == f"folder {cache.parent} does not exist"
    assert not cache.parent.exists()


@pytest.mark.parametrize("specs", [["nope"], ["hindsight:-1"], []])
def test_bad_policy_lists(tiny: Scenario, specs: list[str]) -> None:
    with pytest.raises(InputError):
        run_days(tiny, specs, [1])


def test_an_unknown_policy_lists_the_ones_evaluation_takes(tiny: Scenario) -> None:
    """The list left out hindsight and offered plan, which has no plan to play here."""
    with pytest.raises(InputError) as err:
        run_days(tiny, ["hindsigt"], [1])
    choices = err.value.reason.partition("choose from ")[2].split(", ")
    assert "hindsight" in choices and "plan" not in choices and "slots" in choices


@pytest.mark.parametrize("online", [False, True])
def test_an_unknown_policy_gets_the_twins_reason_under_its_own_field(
    online: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RL check built its own "unknown policy" text beside the twin's
    (``simulation.policies.unknown_policy``): one reason, still under the caller's field and
    without ``hindsight`` where only online policies are taken."""
    import simulation.policies

    given: list[tuple[str, list[str]]] = []

    def reason(name: str, names: Iterable[str]) -> str:
        given.append((name, list(names)))
        return "the shared reason"

    monkeypatch.setattr(simulation.policies, "unknown_policy", reason)
    with pytest.raises(InputError) as err:
        check_policy_name("hindsigt", "warm_start_policies.0", online=online)
    assert (err.value.field, err.value.reason) == ("warm_start_policies.0", "the shared reason")
    [(name, names)] = given
    takes = evaluation_policies()
    assert name == "hindsigt" and names == [p for p in takes if not online or p != "hindsight"]
    with pytest.raises(InputError) as err:  # its special case keeps its own reason
        check_policy_name("plan", "policies")
    assert "needs a plan" in err.value.reason and len(given) == 1


def test_the_plan_policy_is_refused_not_played_with_every_order_unserved(tiny: Scenario) -> None:
    with pytest.raises(InputError) as err:
        run_days(tiny, ["greedy", "plan"], [1])
    assert err.value.field == "policies" and "needs a plan" in err.value.reason


def test_warm_start_candidates_reuse_the_cached_cold_runs(tiny: Scenario, tmp_path: Path) -> None:
    cache = tmp_path / "h.jsonl"
    cold = {"engine": "greedy", "shift_pricing": "shift"}
    first = run_days(tiny, ["hindsight:1"], [1], hindsight_params=cold, cache=cache)
    warm = {**cold, "warm_start_policies": ["slots"]}
    both = run_days(tiny, ["hindsight:1"], [1], hindsight_params=warm, cache=cache)
    runs = both[0].detail["runs"]
    assert runs[: len(first[0].detail["runs"])] == first[0].detail["runs"]
    # then the played day and the search started from the cheapest candidate
    added = runs[len(first[0].detail["runs"]) :]
    assert [(r["pricing"], r["repair"]) for r in added] == [("-", "played:slots"), ("search", "-")]
    assert both[0].metrics["cost_cents"] <= first[0].metrics["cost_cents"]
    assert cache.read_text().count("\n") == 2  # one row per setting


def test_cache_key_is_stable_when_settings_are_added(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings added later stay out of the key at their defaults (old cache rows still match),
    except the improvement search: it changes the method, so its days get a new key."""
    import rl_agents.evaluate as ev

    monkeypatch.setattr(ev, "DRAWS_VERSION", 2)  # the key of these draws, in every process
    monkeypatch.setattr(ev, "KPI_VERSION", 1)  # and of these KPI definitions
    monkeypatch.setattr("rl_agents.hindsight.HINDSIGHT_VERSION", 1)  # and of the replayed day
    old = {"time_limit_s": 30.0, "search_s": 0}
    assert ev._key("{}", old) == "1a352fea244b73f7"
    assert ev._key("{}", {**old, "warm_start_solve": True}) == "1a352fea244b73f7"
    assert ev._key("{}", {"time_limit_s": 30.0}) != "1a352fea244b73f7"
    assert ev._key("{}", {"time_limit_s": 30.0, "warm_start_policies": ["slots"]}) != (
        "1a352fea244b73f7"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--seeds", "x"], "--seeds"),
        (["--policies", "nosuch"], "--policies"),
        (["--hindsight-search-s", "-1"], "--hindsight-search-s"),
        (["--hindsight-time-limit", "0"], "--hindsight-time-limit"),
        (["--hindsight-iterations", "0"], "--hindsight-iterations"),
        (["--hindsight-iterations", "many"], "--hindsight-iterations"),
        (["--hindsight-iterations", "1,2,3"], "--hindsight-iterations"),
        (["--hindsight-search-iterations", "-5"], "--hindsight-search-iterations"),
        (["--hindsight-search-iterations", "10,20"], "--hindsight-search-iterations"),
    ],
)
def test_benchmark_script_refuses_bad_options_naming_them(
    rl_bench: Any,
    tmp_path: Path,
    args: list[str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``benchmarks/rl_evaluate.py``: bad options are one line naming the option, exit 2.

    Its ``main()`` runs in this process (a new Python importing torch took ~2.7 s per case);
    ``test_benchmark_table_names_the_worker_count_it_ran_with`` runs the script as a command.
    """
    argv = ["rl_evaluate.py", "--seeds", "1..1", *args, "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as end:
        rl_bench.main()
    err = capsys.readouterr().err
    assert end.value.code == 2, err
    assert f"error: {named}:" in err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_benchmark_table_names_the_worker_count_it_ran_with(tmp_path: Path) -> None:
    """``benchmarks/rl_evaluate.py``: a one-worker run's table said "a 2-worker run"."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "rl_evaluate.py"
    args = ["--policies", "greedy", "--seeds", "1..1", "--workers", "1", "--name", "one"]
    run = subprocess.run(
        [sys.executable, str(script), *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Latencies here come from a 1-worker run" in (tmp_path / "one.md").read_text()


@pytest.mark.parametrize(
    ("specs", "seeds", "field"),
    [(["slots", "slots"], [1, 2], "policies.1"), (["slots"], [1, 2, 1], "seeds.2")],
)
def test_a_policy_or_day_given_twice_is_refused_before_any_day_runs(
    tiny: Scenario, specs: list[str], seeds: list[int], field: str
) -> None:
    """A repeated day was pooled as another sample: n doubled, the CIs too narrow."""
    with pytest.raises(InputError) as err:
        evaluate_policies(tiny, specs, seeds)
    assert err.value.field == field and "is given twice" in err.value.reason


@pytest.mark.parametrize(
    ("specs", "field", "reason"),
    [
        # one policy under two spellings: its days were played twice, the Holm family larger
        (["slots", "euro-greedy", "euro-greedy:5"], "policies.2", "same policy as 'euro-greedy'"),
        (["model", "model:standard"], "policies.1", "same policy as 'model'"),
        (["greedy", "nearest"], "policies.1", "same policy as 'greedy'"),
        # the greedy baseline is added when not given: nearest was a second greedy row
        (["slots", "nearest"], "policies.1", "same policy as 'greedy', the baseline"),
    ],
)
def test_a_policy_under_another_spelling_is_refused_before_any_day_runs(
    tiny: Scenario, specs: list[str], field: str, reason: str
) -> None:
    with pytest.raises(InputError) as err:
        evaluate_policies(tiny, specs, [1, 2])
    assert err.value.field == field and reason in err.value.reason


def test_policy_benchmark_intervals_are_the_textbook_paired_t_intervals() -> None:
    """Checked with scipy from the per-day costs: cost CI (t, n-1 df) and policy minus greedy."""
    import numpy as np
    from scipy import stats

    greedy = {1: 200.0, 2: 260.0, 3: 150.0, 4: 300.0, 5: 90.0}
    agent = {1: 150.0, 2: 230.0, 3: 100.0, 4: 290.0}  # day 5 missing: paired over days 1-4
    s = summarise(
        [*(day("greedy", k, c) for k, c in greedy.items()),
         *(day("agent", k, c) for k, c in agent.items())]
    )["agent"]  # fmt: skip
    a = np.asarray(list(agent.values()))
    g = np.asarray([greedy[k] for k in agent])
    lo, hi = stats.t.interval(0.95, df=3, loc=a.mean(), scale=stats.sem(a))
    assert s.n == 4 and s.mean_cost == pytest.approx(a.mean())
    assert s.cost_ci == pytest.approx((max(0.0, lo), hi))
    ref = stats.ttest_rel(a, g).confidence_interval(0.95)
    assert s.diff_vs_greedy == pytest.approx(float(np.mean(a - g)))  # negative: agent cheaper
    assert s.diff_ci == pytest.approx((float(ref.low), float(ref.high)))


def _days(
    policy: str, costs: list[float], rates: list[float], due: float = 20.0
) -> list[DayOutcome]:
    """Synthetic days 1..n of one policy with ``orders_total`` = ``due``."""
    return [
        DayOutcome(policy, k, {"cost_cents": c, "on_time_rate": r, "orders_total": due}, 3,
                   [10.0], 0.1)
        for k, (c, r) in enumerate(zip(costs, rates, strict=True), start=1)
    ]  # fmt: skip


GREEDY_COSTS = [1_000.0, 1_100.0, 900.0, 1_050.0, 950.0, 1_000.0]
GREEDY_RATES = [0.80, 0.85, 0.75, 0.90, 0.70, 0.80]


def test_the_on_time_rate_has_an_interval_a_paired_difference_and_says_over_how_many_days() -> None:
    """It had neither interval nor (n=k): two of six days without an order due went unsaid."""
    import numpy as np
    from scipy import stats

    nan = float("nan")
    agent_rates = [0.90, nan, 0.80, 0.95, nan, 0.85]
    s = summarise(
        [*_days("greedy", GREEDY_COSTS, GREEDY_RATES),
         *_days("agent", [c - 50.0 * k for k, c in enumerate(GREEDY_COSTS)], agent_rates)]
    )  # fmt: skip
    a = s["agent"]
    defined = np.asarray([r for r in agent_rates if not math.isnan(r)])
    lo, hi = stats.t.interval(0.95, df=3, loc=defined.mean(), scale=stats.sem(defined))
    assert (a.on_time_n, a.on_time_ci_method) == (4, "t")
    assert a.on_time_ci == pytest.approx((lo, min(1.0, hi)))
    pairs = [(x, g) for x, g in zip(agent_rates, GREEDY_RATES, strict=True) if not math.isnan(x)]
    d = np.asarray([x - g for x, g in pairs])
    ref = stats.ttest_1samp(d, 0.0)
    assert a.on_time_diff_n == 4 and a.on_time_diff_vs_greedy == pytest.approx(d.mean())
    assert a.on_time_diff_ci == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert a.on_time_diff_test is not None
    assert a.on_time_diff_test["p_value"] == pytest.approx(float(ref.pvalue))
    row = next(x for x in table_markdown(s).splitlines() if x.startswith("| agent |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == f"{defined.mean():.3f} [{lo:.3f}, {min(1.0, hi):.3f}] (n=4)"
    assert "(n=4)" in cells[7] and cells[7].startswith(f"{d.mean():+.3f} [")
    data = report_json(s)["agent"]
    assert data["on_time_n"] == 4 and data["on_time_diff_test"]["comparisons"] == 1
    assert data["on_time_rate"] == pytest.approx(defined.mean())  # as before


def test_an_on_time_rate_of_one_every_day_has_the_exact_interval_of_its_orders() -> None:
    s = summarise([*_days("greedy", GREEDY_COSTS, GREEDY_RATES),
                   *_days("agent", GREEDY_COSTS, [1.0] * 6)])  # fmt: skip
    assert s["agent"].on_time_ci == pytest.approx((0.025 ** (1 / 120), 1.0))  # 120 of 120
    assert s["agent"].on_time_ci_method == "clopper-pearson-orders"


def test_policy_marks_are_holm_adjusted_and_a_constant_difference_needs_the_sign_test() -> None:
    """Three policies each cheaper than greedy on its own interval (p = 0.022, 0.018, 0.027)
    are not significant after Holm over the three; a constant saving on 5 days is degenerate
    (the zero-width interval was 'significant'), p = 2 x 0.5^5 = 0.0625."""
    shifts = {
        "p1": [-12.0, -27.0, 2.0, -20.0, -15.0, -8.0],
        "p2": [-13.0, -26.0, 1.0, -22.0, -12.0, -9.0],
        "p3": [-10.0, -28.0, 2.0, -21.0, -15.0, -8.0],
    }
    outcomes = _days("greedy", GREEDY_COSTS, GREEDY_RATES)
    for name, d in shifts.items():
        costs = [c + x for c, x in zip(GREEDY_COSTS, d, strict=True)]
        outcomes += _days(name, costs, GREEDY_RATES)
    s = summarise(outcomes)
    tests = {p: s[p].diff_test for p in shifts}
    raw = [t["p_value"] for t in tests.values() if t is not None]
    m, order = 3, sorted(range(3), key=lambda i: raw[i])
    hand, best = [0.0] * m, 0.0
    for i, j in enumerate(order):  # Holm by hand
        best = max(best, min(1.0, (m - i) * raw[j]))
        hand[j] = best
    for p, h in zip(shifts, hand, strict=True):
        test, ci = s[p].diff_test, s[p].diff_ci
        assert test is not None and ci is not None and ci[1] < 0
        assert test["p_adjusted"] == pytest.approx(h) and not test["significant"]
        assert test["comparisons"] == 3
    assert s["greedy"].diff_test is None  # the baseline is not compared with itself
    table = table_markdown(s)
    rows = [line for line in table.splitlines() if line.startswith(("| p1", "| p2", "| p3"))]
    assert len(rows) == 3 and not any("▲" in row for row in rows)
    assert "over the table's 3 cost and 3 on-time comparisons" in table
    flat = summarise(
        [*_days("greedy", GREEDY_COSTS[:5], GREEDY_RATES[:5]),
         *_days("cheap", [c - 10.0 for c in GREEDY_COSTS[:5]], GREEDY_RATES[:5])]
    )["cheap"]  # fmt: skip
    assert flat.diff_test is not None and flat.diff_test["degenerate"]
    assert flat.diff_test["p_value"] == pytest.approx(0.0625) and not flat.diff_test["significant"]
    assert "-10 [-10, -10] (constant) † |" in table_markdown({"cheap": flat})


def test_a_cost_difference_over_fewer_days_than_the_policy_played_says_so() -> None:
    """Greedy missing day 3: the agent's cost difference is over 2 of its 3 days."""
    s = summarise(
        [day("greedy", 1, 200.0), day("greedy", 2, 260.0),
         day("agent", 1, 150.0), day("agent", 2, 230.0), day("agent", 3, 100.0)]
    )  # fmt: skip
    assert s["agent"].diff_n == 2
    row = next(x for x in table_markdown(s).splitlines() if x.startswith("| agent |"))
    assert "-40 [-167, 87] (n=2) |" in row  # -40 +- 12.706 x 10


def test_the_cost_ratios_have_fiellers_interval_over_the_days_they_share() -> None:
    """cost/greedy, cost/hindsight and gap closed had no interval: each now has Fieller's.

    Greedy 200, 220, 180, 240 and the agent 150, 170, 130, 170: cost/greedy 0.738 with the
    interval [0.69013, 0.78909] worked out by hand in tests/simulation/test_stats_textbook.py
    (test_ratio_ci_on_a_worked_example). Hindsight played only days 1-3: cost/hindsight and
    gap closed (mean(greedy - agent) / mean(greedy - hindsight)) are over those three days.
    """
    import json

    import numpy as np

    from simulation.stats import ratio_ci

    greedy, agent, hind = (
        [200.0, 220.0, 180.0, 240.0],
        [150.0, 170.0, 130.0, 170.0],
        [95.0, 125.0, 80.0],
    )
    s = summarise(
        [*(day("greedy", k + 1, c) for k, c in enumerate(greedy)),
         *(day("agent", k + 1, c) for k, c in enumerate(agent)),
         *(day("hindsight", k + 1, c) for k, c in enumerate(hind))]
    )  # fmt: skip
    a = s["agent"]
    assert a.cost_vs_greedy_n == 4 and a.cost_vs_greedy_ci is not None
    assert a.cost_vs_greedy_ci == pytest.approx((0.69013, 0.78909), abs=1e-5)
    ref = ratio_ci(agent[:3], hind)
    assert (a.cost_vs_hindsight_n, a.cost_vs_hindsight_ci) == (3, pytest.approx(ref.pair()))
    g3 = np.asarray(greedy[:3])
    gap = ratio_ci(g3 - np.asarray(agent[:3]), g3 - np.asarray(hind))
    assert a.gap_closed == pytest.approx(gap.ratio)
    assert (a.gap_closed_n, a.gap_closed_ci) == (3, pytest.approx(gap.pair()))
    assert a.gap_closed is not None and a.gap_closed_ci is not None
    assert a.gap_closed_ci[0] < a.gap_closed < a.gap_closed_ci[1]
    assert s["greedy"].cost_vs_greedy_ci == (1.0, 1.0)  # itself: the same ratio every day
    data = json.loads(json.dumps(report_json(s), allow_nan=False))["agent"]
    assert data["cost_vs_greedy_ci"] == pytest.approx([0.69013, 0.78909], abs=1e-5)
    assert data["cost_vs_greedy"] == pytest.approx(0.738095, abs=1e-6)  # the field as before
    row = next(x for x in table_markdown(s).splitlines() if x.startswith("| agent |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert a.cost_vs_hindsight_ci is not None
    lo, hi = a.cost_vs_hindsight_ci
    assert cells[8] == "0.738 [0.690, 0.789]"
    assert cells[9] == f"{a.cost_vs_hindsight:.3f} [{lo:.3f}, {hi:.3f}] (n=3)"
    assert cells[10].startswith(f"{a.gap_closed:.1%} [") and cells[10].endswith("(n=3)")


def test_a_ratio_over_a_denominator_not_different_from_zero_has_no_finite_interval() -> None:
    """Greedy within a few cents of hindsight on average: gap closed is unbounded, JSON null."""
    s = summarise(
        [*(day("greedy", k, c) for k, c in ((1, 100.0), (2, 130.0), (3, 90.0))),
         *(day("agent", k, c) for k, c in ((1, 95.0), (2, 120.0), (3, 92.0))),
         *(day("hindsight", k, c) for k, c in ((1, 110.0), (2, 100.0), (3, 105.0)))]
    )  # fmt: skip
    a = s["agent"]
    assert a.gap_closed is not None and a.gap_closed_ci is None and a.gap_closed_n == 3
    assert report_json(s)["agent"]["gap_closed_ci"] is None
    row = next(x for x in table_markdown(s).splitlines() if x.startswith("| agent |"))
    assert f"{a.gap_closed:.1%} [unbounded]" in row


def _target_days(on_time_shift: list[float], hindsight_noise: list[float]) -> list[DayOutcome]:
    """Six days: greedy, insertion at half greedy's cost, the model at 0.8 x insertion's, and
    hindsight at the model's cost / 1.09 x (1 + noise)."""
    insertion = [0.5 * c for c in GREEDY_COSTS]
    model = [0.8 * c + e for c, e in zip(insertion, [3.0, -2.0, 1.0, -4.0, 2.0, 0.0], strict=True)]
    hind = [c / 1.09 * (1 + e) for c, e in zip(model, hindsight_noise, strict=True)]
    return [
        *_days("greedy", GREEDY_COSTS, GREEDY_RATES),
        *_days("insertion", insertion, [r + 0.1 for r in GREEDY_RATES]),
        *_days("model:m", model, [r + d for r, d in zip(GREEDY_RATES, on_time_shift, strict=True)]),
        *_days("hindsight", hind, GREEDY_RATES),
    ]


@pytest.fixture(scope="module")
def rl_bench() -> Iterator[Any]:
    """``benchmarks/rl_evaluate.py`` imported as a module (nothing runs on import)."""
    from tests.conftest import benchmark_script

    with benchmark_script("rl_evaluate.py", "rl_evaluate_targets") as module:
        yield module


def test_the_on_time_target_is_met_unless_significantly_below_greedys(rl_bench: Any) -> None:
    """On-time 0.0033 below greedy's on average, not significantly: the point-estimate rule
    said "missed"; the paired test says not worse. 0.1 below every day: missed."""
    close = summarise(_target_days([-0.01, 0.02, -0.03, 0.0, -0.01, 0.01], [0.0] * 6))
    m = close["model:m"]
    greedy_rate = close["greedy"].on_time_rate
    assert m.on_time_rate is not None and greedy_rate is not None
    assert m.on_time_rate < greedy_rate  # the point estimates: below greedy's
    assert m.on_time_diff_test is not None and not m.on_time_diff_test["significant"]
    line = rl_bench.targets(close, "model:m", "hindsight")[1]
    assert line.startswith("| cost vs cheapest insertion (on-time 0.797 vs greedy 0.800, ")
    assert "paired difference -0.003 [" in line and line.endswith("| met |")
    worse = summarise(_target_days([-0.1, -0.11, -0.09, -0.1, -0.12, -0.1], [0.0] * 6))
    line = rl_bench.targets(worse, "model:m", "hindsight")[1]
    assert line.endswith("| missed (on-time significantly below greedy's) |")


def test_a_cost_target_is_met_only_when_its_interval_is_within_it(rl_bench: Any) -> None:
    """cost / hindsight 1.09 on average but 1.04-1.15 by day: the target <= 1.10 was "met" on
    the point estimate; the Fieller interval reaches past 1.10, so it is undecided."""
    from simulation.stats import ratio_ci

    noisy = summarise(_target_days([0.0] * 6, [0.05, -0.04, 0.03, -0.05, 0.04, -0.03]))
    m, h = noisy["model:m"], noisy["hindsight"]
    ci = ratio_ci([m.costs[d] for d in range(1, 7)], [h.costs[d] for d in range(1, 7)])
    assert ci.ratio < 1.10 < ci.high
    lines = rl_bench.targets(noisy, "model:m", "hindsight")
    assert lines[0].endswith("| >= 10% lower | met |")  # 60% lower, the interval far from 10%
    assert f"| {ci.ratio:.3f} [95% CI {ci.low:.3f}, {ci.high:.3f}] |" in lines[2]
    assert lines[2].endswith("| undecided (the estimate meets it) |")
    tight = summarise(_target_days([0.0] * 6, [0.001, -0.001, 0.0, 0.001, -0.001, 0.0]))
    assert rl_bench.targets(tight, "model:m", "hindsight")[2].endswith("| met |")
    assert rl_bench.ratio_target({1: 2.0, 2: 2.2}, {1: 1.0, 2: 1.0}, 1.10)[0] == (
        "undecided (the estimate misses it)"  # two days: too few to show a miss either
    )


def test_the_benchmark_says_which_rule_decided_its_targets(
    rl_bench: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = _target_days([0.0] * 6, [0.0] * 6)
    monkeypatch.setattr(rl_bench, "run_days", lambda *a, **k: outcomes)
    monkeypatch.setattr(rl_bench, "standard_scenario", lambda: None)
    monkeypatch.setattr(
        sys, "argv", ["rl_evaluate.py", "--workers", "1", "--seeds", "1..6", "--out", str(tmp_path)]
    )
    rl_bench.main()
    text = (tmp_path / "rl-evaluation.md").read_text()
    assert "Targets for `model:m`:" in text and rl_bench.TARGET_RULES in text
    assert "not by comparing the two means" in text


def test_a_cost_difference_below_half_a_cent_is_not_shown_as_minus_zero() -> None:
    """0.3 cents cheaper on each day, printed with whole cents, read "-0 [-0, -0]"."""
    s = summarise(
        [day("greedy", 1, 100.0), day("greedy", 2, 200.0),
         day("agent", 1, 99.7), day("agent", 2, 199.7)]
    )  # fmt: skip
    row = next(x for x in table_markdown(s).splitlines() if x.startswith("| agent |"))
    assert "| 0 [0, 0] (constant) †" in row and "-0" not in row  # † the same -0.3 every day


def _cells(table: str, policy: str) -> list[str]:
    """The cells of ``policy``'s row of a :func:`table_markdown` table."""
    row = next(x for x in table.splitlines() if x.startswith(f"| {policy} |"))
    return [c.strip() for c in row.strip("|").split("|")]


def test_a_difference_of_zero_every_day_is_written_constant_not_plus_zero() -> None:
    """Greedy against itself (and a policy that plays greedy's days) printed ``0 [0, 0]``,
    ``+0.000 [+0.000, +0.000]`` and ``1.000 [1.000, 1.000]``: zero-width intervals with no word
    on them, and a signed zero. Now unsigned, ``(constant)``, with the twin's explanation."""
    s = summarise(
        [*_days("greedy", GREEDY_COSTS, GREEDY_RATES), *_days("copy", GREEDY_COSTS, GREEDY_RATES)]
    )
    table = table_markdown(s)
    for policy in ("greedy", "copy"):
        cells = _cells(table, policy)
        assert cells[6:9] == [
            "0 [0, 0] (constant)",
            "0.000 [0.000, 0.000] (constant)",
            "1.000 [1.000, 1.000] (constant)",
        ]
        assert "(constant)" not in cells[3] + cells[4]  # the days' costs and rates vary
        data = report_json(s)[policy]
        assert data["diff_constant"] and data["on_time_diff_constant"]
        assert data["cost_vs_greedy_constant"] and not data["cost_constant"]
    from rl_agents.evaluate import CONSTANT_DAYS

    assert CONSTANT_DAYS in table and "(constant): every day gave this same value" in table
    assert s["copy"].diff_test is not None and not s["copy"].diff_test["significant"]


def test_values_constant_over_the_days_are_flagged_in_the_rl_table() -> None:
    """A policy that costs the same every day, is on time at 0.5 every day, or at 1.0 every
    day: the first two printed zero-width intervals with no word on them, the last its exact
    interval without saying it is one (the twin's tables say both)."""
    flat = summarise(
        [*_days("greedy", GREEDY_COSTS, GREEDY_RATES),
         *_days("flat", [700.0] * 6, [0.5] * 6),
         *_days("punctual", [c - 10.0 for c in GREEDY_COSTS], [1.0] * 6)]
    )  # fmt: skip
    table = table_markdown(flat)
    cells = _cells(table, "flat")
    assert cells[3] == "[700, 700] (constant)"
    assert cells[4] == "0.500 [0.500, 0.500] (constant)"
    assert flat["flat"].cost_constant and flat["flat"].on_time_constant
    cells = _cells(table, "punctual")
    assert cells[4] == "1.000 [0.970, 1.000] (Clopper-Pearson, orders)"  # 120 of 120 orders
    assert not flat["punctual"].on_time_constant  # not zero width: the exact interval
    assert cells[6] == "-10 [-10, -10] (constant) † ▲"  # the sign test: 6 days, p = 0.031
    varied = {"p": flat["punctual"]}
    varied["p"].diff_constant = False  # unflagged: no word, no explanation (as before)
    assert "(constant)" not in table_markdown(varied)
    assert "| -10 [-10, -10] † ▲ |" in table_markdown(varied)


def test_a_constant_target_difference_and_ratio_say_so(rl_bench: Any) -> None:
    """The model on time exactly as greedy every day and hindsight at exactly model / 1.09:
    the targets printed ``+0.000 [+0.000, +0.000]`` and ``1.090 [95% CI 1.090, 1.090]``."""
    s = summarise(_target_days([0.0] * 6, [0.0] * 6))
    lines = rl_bench.targets(s, "model:m", "hindsight")
    assert "paired difference 0.000 [0.000, 0.000] (constant)," in lines[1]
    assert "| 1.090 [95% CI 1.090, 1.090] (constant) |" in lines[2]


def test_a_ratio_of_one_is_not_shown_as_minus_zero_percent_lower(rl_bench: Any) -> None:
    """A policy 0.02% dearer than the reference read "-0.0% lower"."""
    from simulation.stats import RatioInterval

    text = rl_bench._ratio_text(RatioInterval(1.0002, 0.9, 1.1, 6), lower=True)
    assert text == "0.0% lower [95% CI -10.0%, 10.0%]"


def test_a_hindsight_cache_past_the_input_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rl_agents.evaluate import _read_cache
    from scenarios.files import MAX_INPUT_ENV

    cache = tmp_path / "h.jsonl"
    cache.write_text("\n" * 101)
    monkeypatch.setenv(MAX_INPUT_ENV, "100")
    with pytest.raises(InputError) as err:
        _read_cache(cache, "key")
    assert (err.value.field, err.value.source) == ("--hindsight-cache", str(cache))
    assert "larger than the 100 bytes" in err.value.reason
    monkeypatch.setenv(MAX_INPUT_ENV, "101")
    assert _read_cache(cache, "key") == {}


@pytest.mark.parametrize("days", [1, 2])
def test_one_day_has_no_interval_in_the_summary_json_and_table(days: int) -> None:
    """One day said on-time method t with [mean, mean]: now none, null intervals, no nan."""
    import json

    outcomes = [
        day(p, s, 1_000.0 * (s + (p == "agent")))
        for p in ("greedy", "agent")
        for s in range(1, days + 1)
    ]
    summaries = summarise(outcomes)
    md = table_markdown(summaries)
    data = json.loads(json.dumps(report_json(summaries), allow_nan=False))
    agent = data["agent"]
    if days == 1:
        assert agent["on_time_ci_method"] == "none"
        assert (agent["cost_ci"], agent["on_time_ci"], agent["diff_ci"]) == (None, None, None)
        assert "[no CI: n=1]" in md
    else:
        assert agent["on_time_ci_method"] == "t" and agent["cost_ci"] is not None
        assert "[no CI: n=1]" not in md
    assert "nan" not in md.lower()


def _with_twin(model: Path, out: Path, twin: dict[str, int] | None) -> Path:
    """A copy of ``model`` whose metadata records ``twin`` (None: no record)."""
    import json
    import zipfile

    from rl_agents.model_io import META

    with zipfile.ZipFile(model) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == META:
                meta = json.loads(data)
                meta["info"].pop("twin", None)
                if twin is not None:
                    meta["info"]["twin"] = twin
                data = json.dumps(meta).encode()
            dst.writestr(item, data)
    return out


def test_a_model_of_another_twin_is_named_before_the_days(
    tiny: Scenario, tiny_model: Path, tmp_path: Path
) -> None:
    """Nothing said that a model was trained on another twin than the one evaluating it (the
    shipped model is, and its file does not say so: no line for a model without the record)."""
    from rl_agents.evaluate import model_twin_notes
    from rl_agents.train import twin_record

    now = twin_record(tiny)
    assert model_twin_notes(tiny, [f"model:{tiny_model}", "greedy"]) == []
    older = _with_twin(tiny_model, tmp_path / "old.zip", {**now, "twin_version": 1})
    notes = model_twin_notes(tiny, ["greedy", f"model-plain:{older}", f"model:{older}"])
    assert len(notes) == 2 and notes[0].startswith(f"model-plain:{older}: trained on another twin")
    assert f"twin_version 1 (now {now['twin_version']})" in notes[0]
    assert "draws_version" not in notes[0]
    unrecorded = _with_twin(tiny_model, tmp_path / "none.zip", None)
    assert model_twin_notes(tiny, [f"model:{unrecorded}", "model:standard"]) == []


def test_one_day_zero_differences_are_unsigned_in_the_table() -> None:
    """Greedy against itself over one day: ``0.000 [no CI: n=1]`` for the on-time difference as
    for the cost (it read ``+0.000``), as the twin's what-if table writes it; a non-zero
    difference keeps its sign."""
    outcomes = [day(p, 1, 1_000.0 * (1 + (p == "agent"))) for p in ("greedy", "agent")]
    md = table_markdown(summarise(outcomes))
    greedy = next(line for line in md.splitlines() if line.startswith("| greedy |"))
    cells = [c.strip() for c in greedy.split("|")]
    assert "0 [no CI: n=1]" in cells and "0.000 [no CI: n=1]" in cells
    assert "+0.000" not in greedy and "-0.000" not in greedy
    assert diff_text(0.25, None, "+.3f", 1, False) == "+0.250 [no CI: n=1]"
    assert diff_text(-1e-15, None, "+.3f", 1, False) == "0.000 [no CI: n=1]"


class _InterruptedMetrics(dict[str, float]):
    """A day's KPIs whose reading is cut short by a Ctrl-C (as while a CSV row is written)."""

    def get(self, key: str, default: Any = None) -> Any:
        raise KeyboardInterrupt


def test_an_interrupted_days_csv_leaves_the_file_there_was(tmp_path: Path) -> None:
    """A Ctrl-C while the rows were written left a torn CSV (the header and the rows so far)
    in place of the last run's: what ``--from-results`` reads back."""
    path = tmp_path / "days.csv"
    days = [DayOutcome("greedy", s, {"cost_cents": 100.0 * s}, 3, [], 0.5) for s in (1, 2)]
    write_days_csv(path, days)
    before = path.read_bytes()
    rerun = [DayOutcome("greedy", s, {"cost_cents": 99.0 * s}, 3, [], 0.5) for s in (1, 2)]
    torn = [*rerun, DayOutcome("slots", 1, _InterruptedMetrics(), 3, [], 0.5)]
    with pytest.raises(KeyboardInterrupt):
        write_days_csv(path, torn)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["days.csv"]  # no temp file left either
    rows = before.decode().splitlines()
    assert rows[0].startswith("policy,seed,") and [r.split(",")[:2] for r in rows[1:]] == [
        ["greedy", "1"],
        ["greedy", "2"],
    ]
