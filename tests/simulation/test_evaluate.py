"""Replications, confidence intervals, paired comparisons and the recommendation rule."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import Plan, Scenario
from scenarios.io import load_scenario
from simulation.evaluate import (
    ReplicationOutcome,
    RiskRule,
    compare,
    evaluate,
    kpis_from,
    replication_seeds,
)
from simulation.result import METRICS
from simulation.stats import mean_ci, paired_diff, proportion_ci


def test_mean_ci_matches_the_t_interval() -> None:
    ci = mean_ci([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd 1.29099, t(0.975, 3) = 3.18245 -> half-width 2.05426
    assert ci.mean == 2.5
    assert ci.high - ci.mean == pytest.approx(2.05426, abs=1e-4)
    assert mean_ci([5.0]).low == mean_ci([5.0]).high == 5.0
    d = paired_diff([3.0, 5.0, 7.0], [1.0, 3.0, 5.0])
    assert (d.mean, d.low, d.high) == (2.0, 2.0, 2.0)  # a constant difference is certain
    lo, hi = proportion_ci(45, 50)
    assert lo < 0.9 < hi and hi <= 1.0
    with pytest.raises(ValueError):
        paired_diff([1.0], [1.0, 2.0])


def test_kpi_intervals_stay_inside_what_the_kpi_can_take() -> None:
    # Two days: on time 100 % and 90 %, 0 and 3 failed deliveries. The t-interval alone
    # would say on-time up to 1.54 and failures down to -16.
    days = [
        {"on_time_rate": 1.0, "orders_failed": 0.0},
        {"on_time_rate": 0.9, "orders_failed": 3.0},
    ]
    outcomes = [
        ReplicationOutcome(
            case="c",
            policy="insertion",
            replication=k,
            seed=k,
            metrics=dict.fromkeys(METRICS, 0.5) | day,
            base_on_time=np.zeros(0, dtype=bool),
            num_events=0,
            wall_s=0.0,
        )
        for k, day in enumerate(days)
    ]
    kpis = kpis_from(outcomes)
    raw = mean_ci([1.0, 0.9])
    assert kpis.on_time_rate is not None
    assert raw.high > 1.0 and kpis.on_time_rate.ci_high == 1.0
    assert kpis.on_time_rate.ci_low == pytest.approx(raw.low)
    assert kpis.orders_failed.ci_low == 0.0 and kpis.orders_failed.mean == 1.5


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_a_rate_interval_is_a_sub_interval_of_0_1(rates: list[float]) -> None:
    ci = mean_ci(rates, bounds=(0.0, 1.0))
    assert 0.0 <= ci.low <= ci.mean + 1e-12 and ci.mean - 1e-12 <= ci.high <= 1.0


def test_replication_seeds_are_fixed_by_the_study_seed() -> None:
    assert replication_seeds(7, 5) == replication_seeds(7, 5)
    assert replication_seeds(7, 5)[:3] == replication_seeds(7, 3)
    assert replication_seeds(7, 5) != replication_seeds(8, 5)
    assert len(set(replication_seeds(7, 50))) == 50


def test_evaluate_gives_kpis_with_confidence_intervals(small_city: Scenario) -> None:
    kpis = evaluate(small_city, policy="insertion", replications=4, seed=2)
    assert kpis.replications == 4 and kpis.policy == "insertion" and kpis.seed == 2
    for est in (kpis.cost_cents, kpis.on_time_rate, kpis.lateness_p95_s, kpis.courier_hours):
        assert est is not None and est.ci_low is not None and est.ci_high is not None
        assert est.n == 4 and est.ci_low <= est.mean <= est.ci_high
    assert kpis.orders_unserved is not None and "distance_cost_cents" in kpis.extra
    assert set(kpis.per_order_on_time) == {o.id for o in small_city.orders}
    assert all(0.0 <= p <= 1.0 for p in kpis.per_order_on_time.values())
    again = evaluate(small_city, policy="insertion", replications=4, seed=2)
    assert again == kpis


@pytest.fixture(scope="module")
def c101_plans(instances_dir: Path) -> tuple[Scenario, Plan, Plan]:
    from solvers.routing import RoutingParams, solve_routes

    scenario = load_scenario(instances_dir / "solomon" / "C101.txt")
    vehicles = [v.model_copy(update={"cost_per_km_cents": 50}) for v in scenario.vehicles]
    scenario = scenario.model_copy(update={"vehicles": vehicles})
    good = solve_routes(scenario, RoutingParams(engine="pyvrp", time_limit_s=5, max_iterations=200))
    reversed_routes = [r.model_copy(update={"stops": r.stops[::-1]}) for r in good.routes]
    bad = good.model_copy(update={"routes": reversed_routes})
    return scenario, good, bad


def test_compare_recommends_the_significantly_better_plan(
    c101_plans: tuple[Scenario, Plan, Plan],
) -> None:
    scenario, good, bad = c101_plans
    cmp = compare(scenario, {"bad": bad, "good": good}, replications=6, seed=1)
    assert cmp.baseline == "bad" and cmp.recommended == "good"
    d = cmp.diffs["good"]["cost_cents"]
    assert d.high < 0 and d.mean == pytest.approx(
        float(np.mean(cmp.samples["good"]["cost_cents"] - cmp.samples["bad"]["cost_cents"]))
    )
    assert cmp.risk_adjusted_cost["good"] < cmp.risk_adjusted_cost["bad"]
    assert "good" in cmp.markdown() and "risk-adjusted" in cmp.rule
    keep = compare(scenario, {"good": good, "bad": bad}, replications=6, seed=1)
    assert keep.recommended == "good"
    assert keep.kpis["good"] == cmp.kpis["good"]  # same seeds, same answer


def test_a_baseline_is_kept_when_the_difference_is_not_significant(
    c101_plans: tuple[Scenario, Plan, Plan],
) -> None:
    scenario, good, _ = c101_plans
    cmp = compare(scenario, {"a": good, "b": good}, replications=4, seed=3)
    assert cmp.recommended == "a"
    assert all(
        math.isclose(x, 0.0)
        for x in cmp.samples["a"]["cost_cents"] - cmp.samples["b"]["cost_cents"]
    )


def test_one_replication_is_never_significant(c101_plans: tuple[Scenario, Plan, Plan]) -> None:
    # One value has no spread: its zero-width "interval" must not move the recommendation or
    # exclude a candidate (with six replications "good" wins and "bad" is excluded, above).
    scenario, good, bad = c101_plans
    assert not mean_ci([-5.0]).excludes_zero and not mean_ci([-5.0]).below(0.0)
    cmp = compare(scenario, {"bad": bad, "good": good}, replications=1, seed=1)
    assert cmp.diffs["good"]["cost_cents"].high < 0  # cheaper on the one day...
    assert cmp.recommended == "bad"  # ...which is not significant
    assert any("one replication" in r for r in cmp.reasons)
    table = cmp.markdown()  # no interval to show: said so, never nan or a zero-width [x, x]
    assert "[no CI: n=1]" in table and "nan" not in table.lower()
    assert cmp.kpis["good"].cost_cents.method == "none"
    rule = RiskRule(max_on_time_drop=0.0)
    guard = compare(scenario, {"good": good, "bad": bad}, replications=1, seed=1, rule=rule)
    assert not any("excluded" in r for r in guard.reasons)


def test_no_difference_over_one_replication_is_written_unsigned(
    c101_plans: tuple[Scenario, Plan, Plan],
) -> None:
    """The plan comparison wrote ``+0 [no CI: n=1]`` for a plan compared with itself."""
    scenario, good, _ = c101_plans
    table = compare(scenario, {"a": good, "b": good}, replications=1, seed=3).markdown()
    row = next(line for line in table.splitlines() if line.startswith("| b "))
    assert "| 0 [no CI: n=1] |" in row and "+0" not in row


def test_the_on_time_guard_excludes_a_cheaper_but_later_plan(
    c101_plans: tuple[Scenario, Plan, Plan],
) -> None:
    scenario, good, bad = c101_plans
    rule = RiskRule(risk_aversion=1.0, max_on_time_drop=0.0)
    cmp = compare(scenario, {"good": good, "bad": bad}, replications=4, seed=1, rule=rule)
    assert any("bad excluded" in r for r in cmp.reasons)


def test_a_candidate_scenario_may_have_other_orders(line: Scenario) -> None:
    # per_order_on_time follows each candidate's own orders (one fewer, in another order).
    reordered = line.model_copy(update={"orders": line.orders[:0:-1]})
    cmp = compare(line, {"all": None, "two": None}, replications=2, seed=1,
                  scenarios={"two": reordered})  # fmt: skip
    assert list(cmp.kpis["all"].per_order_on_time) == ["a", "b", "c"]
    assert list(cmp.kpis["two"].per_order_on_time) == ["c", "b"]
    assert all(0.0 <= p <= 1.0 for p in cmp.kpis["two"].per_order_on_time.values())


def _fake_runs(costs: dict[str, list[float]]) -> Any:
    """A stand-in for ``run_tasks``: each candidate's replications cost ``costs[name]``."""

    def run(cases: Any, tasks: Any, **_kw: Any) -> list[ReplicationOutcome]:
        return [
            ReplicationOutcome(
                case=t.case,
                policy=t.policy,
                replication=t.replication,
                seed=t.seed,
                metrics={
                    **dict.fromkeys(METRICS, 0.0),
                    "on_time_rate": 0.9,
                    "orders_total": 10.0,
                    "cost_cents": costs[t.case][t.replication],
                },
                base_on_time=np.ones(len(cases[t.case].scenario.orders), dtype=bool),
                num_events=0,
                wall_s=0.0,
            )
            for t in tasks
        ]

    return run


BASE6 = [1_000.0, 1_100.0, 900.0, 1_050.0, 950.0, 1_000.0]
SHIFTS = {  # each alone significantly cheaper than the baseline (paired t p = 0.022, 0.018, 0.027)
    "v1": [-12.0, -27.0, 2.0, -20.0, -15.0, -8.0],
    "v2": [-13.0, -26.0, 1.0, -22.0, -12.0, -9.0],
    "v3": [-10.0, -28.0, 2.0, -21.0, -15.0, -8.0],
}


def test_compare_switches_only_when_the_holm_adjusted_cost_test_rejects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three candidates each cheaper on its own interval: the cheapest used to be recommended;
    picked among three, its difference is judged by Holm over the three (not significant)."""
    ev = importlib.import_module("simulation.evaluate")  # the package exports a function too

    from .conftest import line_scenario

    costs = {"base": BASE6} | {
        v: [b + s for b, s in zip(BASE6, d, strict=True)] for v, d in SHIFTS.items()
    }
    monkeypatch.setattr(ev, "run_tasks", _fake_runs(costs))
    scenario = line_scenario()
    cmp = compare(scenario, dict.fromkeys(costs), policy="insertion", replications=6, seed=1)
    assert all(cmp.diffs[v]["cost_cents"].high < 0 for v in SHIFTS)  # each interval below 0
    assert cmp.recommended == "base"
    tests = [cmp.tests[v]["cost_cents"] for v in SHIFTS]
    assert all(t.family_size == 3 and not t.significant for t in tests)
    assert min(t.p_adjusted or 1.0 for t in tests) == pytest.approx(
        3 * min(t.p_value or 1.0 for t in tests)
    )
    assert any("Holm-adjusted" in r and "over 3 comparisons" in r for r in cmp.reasons)
    assert "cost_cents 3" in cmp.markdown(("cost_cents",))
    pair = {"base": BASE6, "v2": costs["v2"]}
    monkeypatch.setattr(ev, "run_tasks", _fake_runs(pair))
    alone = compare(scenario, dict.fromkeys(pair), policy="insertion", replications=6, seed=1)
    assert alone.recommended == "v2" and alone.tests["v2"]["cost_cents"].significant
    assert "▲" in alone.markdown(("cost_cents",))


@pytest.mark.parametrize(("n", "switch"), [(5, False), (6, True)])
def test_compare_judges_a_constant_saving_by_the_sign_test(
    monkeypatch: pytest.MonkeyPatch, n: int, switch: bool
) -> None:
    """10 cents cheaper on every day: the zero-width interval switched from 2 days on."""
    ev = importlib.import_module("simulation.evaluate")  # the package exports a function too

    from .conftest import line_scenario

    costs = {"base": BASE6[:n], "cheap": [c - 10.0 for c in BASE6[:n]]}
    monkeypatch.setattr(ev, "run_tasks", _fake_runs(costs))
    cmp = compare(line_scenario(), dict.fromkeys(costs), policy="insertion", replications=n, seed=1)
    assert cmp.diffs["cheap"]["cost_cents"].degenerate
    assert cmp.recommended == ("cheap" if switch else "base")
    assert cmp.tests["cheap"]["cost_cents"].p_value == pytest.approx(2 * 0.5**n)
    row = next(x for x in cmp.markdown(("cost_cents",)).splitlines() if x.startswith("| cheap"))
    assert "| -10 [-10, -10] (constant) †" in row  # zero width: the days agree, said so
    assert any("(95% CI [-10, -10] (constant), sign test p = " in r for r in cmp.reasons)


def test_kpis_of_an_on_time_rate_of_one_every_day_have_the_exact_interval() -> None:
    """Three days, 10 orders due each, all on time: was [1, 1]; now Clopper-Pearson of 30/30."""
    outcomes = [
        ReplicationOutcome("c", "plan", k, k,
                           {**dict.fromkeys(METRICS, 0.0), "on_time_rate": 1.0,
                            "orders_total": 10.0},
                           np.ones(0, dtype=bool), 0, 0.0)
        for k in range(3)
    ]  # fmt: skip
    est = kpis_from(outcomes).on_time_rate
    assert est is not None and (est.mean, est.ci_high, est.n) == (1.0, 1.0, 3)
    assert est.ci_low == pytest.approx(0.025 ** (1 / 30))


def _days(on_time: list[float]) -> list[ReplicationOutcome]:
    """Days with these on-time rates and 10 orders due, every other KPI 2.0 (3.0 on day 2)."""
    return [
        ReplicationOutcome("c", "plan", k, k,
                           {**dict.fromkeys(METRICS, 2.0 + (k == 1)), "on_time_rate": rate,
                            "orders_total": 10.0},
                           np.ones(0, dtype=bool), 0, 0.0)
        for k, rate in enumerate(on_time)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("on_time", "method"),
    [
        ([1.0, 1.0, 1.0], "clopper-pearson-orders"),  # the pooled 30 orders due
        ([0.0, 0.0], "clopper-pearson-orders"),
        ([1.0, 0.9, 0.8], "t"),
        ([1.0], "none"),  # one day: no interval at all (it said t, with [mean, mean])
    ],
)
def test_every_estimate_names_its_interval_method(on_time: list[float], method: str) -> None:
    """An Estimate could not say whether its interval was a t- or a Clopper-Pearson interval."""
    kpis = kpis_from(_days(on_time))
    assert kpis.on_time_rate is not None and kpis.on_time_rate.method == method
    others = [e for name, e in kpis if name != "on_time_rate" and hasattr(e, "method")]
    others += list(kpis.extra.values())
    expected = "none" if len(on_time) == 1 else "t"
    assert others and all(e.method == expected for e in others)


def test_the_method_survives_the_json_and_old_json_without_it_still_loads() -> None:
    from scenarios import Estimate, Kpis
    from scenarios.io import from_json, to_json

    kpis = kpis_from(_days([1.0, 1.0]))
    again = from_json(Kpis, to_json(kpis))
    assert again == kpis and again.on_time_rate is not None
    assert again.on_time_rate.method == "clopper-pearson-orders"
    old = Estimate.model_validate_json('{"mean": 1.5, "ci_low": 1.0, "ci_high": 2.0, "n": 3}')
    assert old.method is None  # written before the field existed: not recorded


def _delivered_days(days: list[tuple[float, int]]) -> list[ReplicationOutcome]:
    """Days with this lateness p95 (p50 half of it) and this many orders delivered."""
    return [
        ReplicationOutcome("c", "insertion", k, k,
                           {**dict.fromkeys(METRICS, 1.0), "lateness_p50_s": late / 2,
                            "lateness_p95_s": late, "orders_delivered": float(delivered)},
                           np.ones(0, dtype=bool), 0, 0.0)
        for k, (late, delivered) in enumerate(days)
    ]  # fmt: skip


def test_the_lateness_of_days_that_delivered_nothing_is_undefined_in_the_kpis() -> None:
    """The twin reports a lateness of 0 on a day with no order delivered: ``simulate`` and
    ``POST /v1/simulations`` showed 0 [0, 0] (constant), "perfectly on time", for a day that
    delivered nothing, where a what-if study shows n/a. Now the KPIs agree with the study:
    null when no day delivered, over the days that did when only some did."""
    from scenarios.io import to_json

    none = kpis_from(_delivered_days([(0.0, 0)] * 3))
    assert none.lateness_p50_s is None and none.lateness_p95_s is None
    from simulation.evaluate import undefined_notes  # (session 82)

    payload = json.loads(to_json(none))
    assert payload["lateness_p50_s"] is None and payload["lateness_p95_s"] is None
    assert none.cost_cents.n == 3  # the other KPIs over every day, as before
    assert undefined_notes(none) == [
        "lateness_p50_s, lateness_p95_s: n/a (no order was delivered in any of the 3 replications)"
    ]
    some = kpis_from(_delivered_days([(300.0, 2), (0.0, 0), (500.0, 4)]))
    assert some.lateness_p95_s is not None and some.lateness_p50_s is not None
    assert (some.lateness_p95_s.mean, some.lateness_p95_s.n) == (400.0, 2)
    assert (some.lateness_p50_s.mean, some.lateness_p50_s.n) == (200.0, 2)
    assert undefined_notes(some) == [
        "lateness_p50_s, lateness_p95_s: over 2 of 3 replications (no order was delivered "
        "on the other one)"
    ]
    every = kpis_from(_delivered_days([(300.0, 2), (500.0, 4)]))
    assert every.lateness_p95_s is not None and every.lateness_p95_s.n == 2
    assert undefined_notes(every) == []


def test_a_candidate_that_delivers_nothing_is_not_better_in_lateness() -> None:
    """Compared plans: a candidate delivering nothing (no courier has the fridge its orders
    need) had lateness 0 [0, 0] and a difference of -259.5 against the late baseline marked
    significantly better (▲); its lateness is undefined now, and so is the difference."""
    from .conftest import line_scenario

    data = line_scenario().model_dump(mode="json")
    for order in data["orders"]:
        order["time_windows"] = [{"start_s": 0, "end_s": 50}]  # every delivery late
    late = Scenario.model_validate(data)
    for order in data["orders"]:
        order["required_skills"] = ["fridge"]  # no courier has one: nothing is delivered
    stuck = Scenario.model_validate(data)
    cmp = compare(
        late, {"late": None, "stuck": None}, scenarios={"stuck": stuck}, replications=6, seed=1
    )
    baseline = cmp.kpis["late"].lateness_p95_s
    assert baseline is not None and baseline.n == 6 and baseline.mean > 0
    assert cmp.kpis["stuck"].lateness_p95_s is None
    for kpi in ("lateness_p50_s", "lateness_p95_s"):
        assert cmp.diffs["stuck"][kpi].n == 0 and not cmp.tests["stuck"][kpi].significant
    row = next(x for x in cmp.markdown().splitlines() if x.startswith("| stuck"))
    cells = row.split(" | ")  # name, cost, on time, lateness p95, then their Δs
    assert (cells[3], cells[6]) == ("n/a", "n/a") and "▲" not in row
    assert cmp.as_json()["paired_differences"]["stuck"]["lateness_p95_s"]["mean"] is None


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(
        st.tuples(st.floats(0, 1e5, allow_nan=False), st.integers(0, 3)), min_size=1, max_size=8
    )
)
def test_the_kpis_lateness_is_over_exactly_the_days_that_delivered(
    days: list[tuple[float, int]],
) -> None:
    """Property: the KPIs' lateness mean and n are those of the days with an order delivered
    (none: null), and the notes say over how many of the replications it is."""
    from simulation.evaluate import undefined_notes

    kpis = kpis_from(_delivered_days(days))
    kept = [late for late, delivered in days if delivered > 0]
    est = kpis.lateness_p95_s
    if not kept:
        assert est is None and kpis.lateness_p50_s is None
    else:
        assert est is not None and est.n == len(kept)
        assert est.mean == pytest.approx(float(np.mean(kept)), abs=1e-6)
    notes = [n for n in undefined_notes(kpis) if n.startswith("lateness_p50_s, lateness_p95_s")]
    if len(kept) == len(days):
        assert notes == []
    elif kept:
        assert notes == [
            f"lateness_p50_s, lateness_p95_s: over {len(kept)} of {len(days)} replications "
            f"(no order was delivered on the other"
            + (" one)" if len(days) - len(kept) == 1 else f" {len(days) - len(kept)})")
        ]
    else:
        assert len(notes) == 1 and ": n/a (no order was delivered in " in notes[0]
