"""The reported intervals checked against textbook formulas computed with scipy from raw samples.

Every reference below is written from the definition (Student t over n-1 degrees of freedom,
the paired t-interval of the per-replication differences), not from ``simulation.stats``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from scenarios import Scenario
from scenarios.errors import InputError
from scenarios.generate import generate_city
from scenarios.plan import Plan, PlannedStop, Route
from scenarios.stochastic import ArrivalProcess
from scenarios.variants import LoadedVariants, VariantFile
from simulation import DispatchSimulator
from simulation.evaluate import evaluate, replication_seeds, simulate
from simulation.executors import SerialExecutor
from simulation.stats import (
    FORMAT_NOISE,
    clopper_pearson,
    fmt_num,
    holm,
    holm_family,
    interval_text,
    mean_ci,
    method_note,
    paired_diff,
    rate_ci,
    ratio_ci,
)
from simulation.sweep import run_sweep


def t_interval(x: np.ndarray) -> tuple[float, float, float]:
    """Textbook: mean +- t_{0.975, n-1} s / sqrt(n), s the sample standard deviation."""
    n = x.size
    m = float(np.mean(x))
    lo, hi = stats.t.interval(0.95, df=n - 1, loc=m, scale=stats.sem(x))
    return m, float(lo), float(hi)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=40
    ).filter(lambda v: np.std(v) > 1e-3)
)
def test_mean_ci_is_the_student_t_interval_with_n_minus_1_df(values: list[float]) -> None:
    x = np.asarray(values)
    ci = mean_ci(x)
    m, lo, hi = t_interval(x)
    scale = max(1.0, abs(m), float(np.std(x)))
    assert ci.n == x.size
    assert ci.mean == pytest.approx(m, abs=1e-9 * scale)
    assert ci.low == pytest.approx(lo, abs=1e-9 * scale)
    assert ci.high == pytest.approx(hi, abs=1e-9 * scale)
    assert ci.std == pytest.approx(float(np.std(x, ddof=1)), rel=1e-9)


def test_two_replications_use_one_degree_of_freedom() -> None:
    ci = mean_ci([10.0, 12.0])
    # t_{0.975, 1} = 12.706: the interval is 11 +- 12.706 x 1
    assert ci.low == pytest.approx(11.0 - 12.7062047, abs=1e-6)
    assert ci.high == pytest.approx(11.0 + 12.7062047, abs=1e-6)
    assert ci.informative


def test_one_replication_and_zero_variance_and_undefined_values() -> None:
    one = mean_ci([3.0])
    assert (one.mean, one.low, one.high, one.n) == (3.0, 3.0, 3.0, 1)
    assert not one.excludes_zero  # no confidence statement from one value
    flat = mean_ci([2.0, 2.0, 2.0])
    assert (flat.low, flat.high, flat.n) == (2.0, 2.0, 3)
    nan = mean_ci([1.0, math.nan, 3.0])
    assert nan.n == 2 and nan.mean == 2.0
    none = mean_ci([math.nan, math.nan])
    assert none.n == 0 and math.isnan(none.mean)


def test_a_rate_near_one_is_the_t_interval_cut_at_one() -> None:
    x = np.asarray([1.0, 1.0, 0.96, 1.0, 0.98])
    m, lo, hi = t_interval(x)
    ci = mean_ci(x, bounds=(0.0, 1.0))
    assert hi > 1.0 and ci.high == 1.0  # cut to what a rate can take
    assert ci.low == pytest.approx(lo) and ci.mean == pytest.approx(m)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
            st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
        ),
        min_size=2,
        max_size=30,
    ).filter(lambda p: np.std([a - b for a, b in p]) > 1e-3)
)
def test_paired_diff_is_the_paired_t_interval_of_a_minus_b(
    pairs: list[tuple[float, float]],
) -> None:
    a = np.asarray([p[0] for p in pairs])
    b = np.asarray([p[1] for p in pairs])
    d = paired_diff(a, b)
    ref = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert d.mean == pytest.approx(float(np.mean(a) - np.mean(b)), abs=1e-6)
    assert d.low == pytest.approx(float(ref.low), abs=1e-6)
    assert d.high == pytest.approx(float(ref.high), abs=1e-6)


def test_the_paired_interval_is_not_the_difference_of_two_intervals() -> None:
    # a common day effect: a is always b + 1 (+- a little), the days vary a lot
    b = np.asarray([100.0, 300.0, 50.0, 700.0, 20.0])
    a = b + np.asarray([1.0, 1.2, 0.9, 1.1, 0.8])
    d = paired_diff(a, b)
    assert d.low > 0.0 and d.excludes_zero  # significant when paired ...
    ca, cb = mean_ci(a), mean_ci(b)
    assert ca.low < cb.high  # ... while the two marginal intervals overlap widely


@pytest.fixture(scope="module")
def city_with_arrivals() -> Scenario:
    """A 20-order city day with Poisson arrivals (2 per hour): base orders plus the day's."""
    city = generate_city(seed=3, num_orders=20, num_nodes=2, num_couriers=3)
    return city.model_copy(update={"arrivals": ArrivalProcess(hourly_rate=[2.0] * 24)})


def test_evaluate_reports_the_t_interval_of_the_replications(
    city_with_arrivals: Scenario,
) -> None:
    kpis = evaluate(city_with_arrivals, policy="insertion", replications=3, seed=9)
    days = [
        simulate(city_with_arrivals, policy="insertion", seed=s).metrics
        for s in replication_seeds(9, 3)
    ]
    for metric in ("cost_cents", "distance_m", "courier_hours"):
        est = getattr(kpis, metric)
        m, lo, hi = t_interval(np.asarray([d[metric] for d in days]))
        assert (est.mean, est.n) == (pytest.approx(m), 3)
        assert est.ci_low == pytest.approx(max(0.0, lo)) and est.ci_high == pytest.approx(hi)


def test_whatif_differences_are_variant_minus_base_paired_by_seed(
    city_with_arrivals: Scenario,
) -> None:
    spec = VariantFile.model_validate(
        {"base": "x", "variants": [{"name": "slow", "modifiers": [
            {"kind": "travel_slowdown", "factor": 1.3}]}]}
    )  # fmt: skip
    loaded = LoadedVariants(spec, city_with_arrivals, None, "test")
    sweep = run_sweep(
        loaded, policies=["insertion"], replications=3, seed=5, executor=SerialExecutor()
    )
    scenarios = loaded.scenarios(seed=5)
    seeds = replication_seeds(5, 3)
    cost = {
        name: np.asarray(
            [simulate(sc, policy="insertion", seed=s).metrics["cost_cents"] for s in seeds]
        )
        for name, sc in scenarios.items()
    }
    row = next(r for r in sweep.rows(("cost_cents",)) if r["variant"] == "slow")
    ref = stats.ttest_rel(cost["slow"], cost["base"]).confidence_interval(0.95)
    assert row["diff"] == pytest.approx(float(np.mean(cost["slow"] - cost["base"])))
    assert row["diff_low"] == pytest.approx(float(ref.low))
    assert row["diff_high"] == pytest.approx(float(ref.high))
    assert row["diff_n"] == 3


def test_variants_see_the_same_arrivals_for_the_same_seed(city_with_arrivals: Scenario) -> None:
    spec = VariantFile.model_validate(
        {"base": "x", "variants": [
            {"name": "slow", "modifiers": [{"kind": "travel_slowdown", "factor": 1.3}]},
            {"name": "fleet", "modifiers": [{"kind": "fleet", "remove": 1}]},
        ]}
    )  # fmt: skip
    created: dict[str, dict[str, float]] = {}
    for name, sc in LoadedVariants(spec, city_with_arrivals, None, "t").scenarios(seed=1).items():
        sim = DispatchSimulator(sc)
        result = simulate(sim.world, policy="insertion", seed=77, simulator=sim)
        created[name] = dict(zip(result.order_ids, sim.orders.created_s, strict=True))
    assert sum(1 for oid in created["base"] if oid.startswith("arrival-")) > 0
    assert created["slow"] == created["base"] == created["fleet"]
    other = DispatchSimulator(city_with_arrivals)
    again = simulate(other.world, policy="insertion", seed=78, simulator=other)
    assert dict(zip(again.order_ids, other.orders.created_s, strict=True)) != created["base"]


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.0, math.inf), (-math.inf, math.inf)])
def test_an_infinite_replication_value_is_refused_not_summarised(
    bounds: tuple[float, float],
) -> None:
    # was Interval(mean=inf, low=0, high=1): a mean outside its own interval
    with pytest.raises(ValueError, match="replication 1 has an infinite value"):
        mean_ci([0.5, math.inf], bounds=bounds)
    with pytest.raises(ValueError, match="infinite"):
        paired_diff([1.0, 2.0, -math.inf], [1.0, 1.0, 1.0])


def test_a_policy_given_twice_to_run_sweep_is_refused_not_pooled(
    city_with_arrivals: Scenario,
) -> None:
    # pooled, every seed counted twice: n = 4 from 2 replications and a narrower interval
    spec = VariantFile.model_validate({"base": "x", "variants": []})
    loaded = LoadedVariants(spec, city_with_arrivals, None, "test")
    with pytest.raises(InputError) as err:
        run_sweep(loaded, policies=["nearest", "nearest"], replications=2, seed=1)
    assert err.value.field == "policies.1" and "given twice" in err.value.reason
    # spaces around it: the same policy (make_policy strips them), run twice as two rows
    with pytest.raises(InputError) as err:
        run_sweep(loaded, policies=["nearest", " nearest"], replications=2, seed=1)
    assert err.value.field == "policies.1" and "'nearest' is given twice" in err.value.reason


def _route(vehicle: str, orders: list[str]) -> Route:
    stops = [PlannedStop(order_id=o, arrival_s=0, start_s=0, departure_s=0) for o in orders]
    return Route(vehicle_id=vehicle, stops=stops)


def test_two_plans_give_a_shared_order_the_same_noise_on_the_same_seed() -> None:
    """Common random numbers between plans: order a (same courier, same route) is unaffected
    by the other courier's route being reordered; another seed changes it."""
    from .conftest import line_scenario

    scenario = line_scenario(travel_time_cv=0.3, service_time_cv=0.3)
    plan_a = Plan(routes=[_route("v1", ["a"]), _route("v2", ["b", "c"])])
    plan_b = Plan(routes=[_route("v1", ["a"]), _route("v2", ["c", "b"])])
    one = simulate(scenario, plan_a, seed=21)
    two = simulate(scenario, plan_b, seed=21)
    a = one.order_ids.index("a")
    assert one.completed_s[a] == two.completed_s[a]
    c = one.order_ids.index("c")
    assert one.completed_s[c] != two.completed_s[c]  # the reordered route did change
    assert simulate(scenario, plan_a, seed=22).completed_s[a] != one.completed_s[a]


def test_the_plan_comparison_table_says_over_how_many_days_an_interval_is() -> None:
    """Two of six days have no order due: on-time cells say (n=4), cost cells nothing."""
    from simulation.evaluate import compare

    from .conftest import line_scenario

    line = line_scenario()
    # every order of the day arrives stochastically, drawn from the one template
    arrivals = ArrivalProcess(hourly_rate=[0.6] * 24, templates=line.orders[:1])
    scenario = Scenario.model_validate({**line.model_dump(), "orders": [], "arrivals": arrivals})
    cmp = compare(scenario, {"a": None, "b": None}, policy="insertion", replications=6, seed=1)
    assert cmp.diffs["b"]["on_time_rate"].n == 4
    table = cmp.markdown(("cost_cents", "on_time_rate"))
    row_b = next(line for line in table.splitlines() if line.startswith("| b "))
    cells = [c.strip() for c in row_b.strip("|").split("|")]
    assert cells[1].endswith("]") and cells[2].endswith("(n=4)")  # cost, on-time
    # their differences (the same plans: 0 on every day, degenerate but plainly no difference;
    # it read "+0 [+0, +0]", now unsigned and constant like the what-if table's)
    assert cells[3] == "0 [0, 0] (constant)" and cells[4] == "0 [0, 0] (constant) (n=4)"
    assert cmp.tests["b"]["cost_cents"].degenerate


# ------------------------------------------------- degenerate intervals, binomial, Holm


@pytest.mark.parametrize(("n", "significant"), [(2, False), (5, False), (6, True), (10, True)])
def test_a_constant_paired_difference_is_judged_by_the_exact_sign_test(
    n: int, significant: bool
) -> None:
    """Every replication 10 cents dearer: std 0, a zero-width t-interval that used to count as
    significant from two replications on. The sign test: p = 2 x 0.5^n, below 0.05 from n = 6."""
    base = np.linspace(1_000.0, 2_000.0, n)
    d = paired_diff(base + 10.0, base)
    assert d.degenerate and d.low == d.high == pytest.approx(10.0)
    p_hand = 2.0 * 0.5**n  # all n signs positive, two-sided
    assert d.p_value == pytest.approx(p_hand)
    assert d.excludes_zero is significant
    assert paired_diff(base - 10.0, base).below(0.0) is significant
    assert not paired_diff(base, base).excludes_zero  # 0 every day: p = 1
    assert paired_diff(base, base).p_value == 1.0


def test_rounding_in_a_constant_difference_is_not_spread() -> None:
    # 0.1 + 0.2 - 0.2 is not exactly 0.1: the differences still count as constant
    a = np.asarray([0.3, 1.3, 2.3, 10.3, 7.3, 5.3])
    b = a - 0.1
    d = paired_diff(a, b)
    assert d.degenerate and d.p_value == pytest.approx(2.0 * 0.5**6)


def test_the_t_p_value_is_the_paired_t_tests() -> None:
    a = np.asarray([10.0, 12.0, 9.0, 14.0, 11.0])
    b = np.asarray([9.0, 12.5, 7.0, 12.0, 10.5])
    d = paired_diff(a, b)
    assert not d.degenerate
    assert d.p_value == pytest.approx(float(stats.ttest_rel(a, b).pvalue), rel=1e-9)
    assert (d.p_value < 0.05) is d.excludes_zero


def test_a_rate_at_one_every_day_gets_the_clopper_pearson_interval_of_the_pooled_orders() -> None:
    """Three days with 10, 20 and 30 orders due, all on time: the t-interval was [1, 1]. The
    exact binomial interval of 60 of 60: [(0.025)^(1/60), 1], by hand (Beta(60, 1) quantile)."""
    ci = rate_ci([1.0, 1.0, 1.0], [10.0, 20.0, 30.0])
    assert (ci.mean, ci.high, ci.n) == (1.0, 1.0, 3)
    assert ci.low == pytest.approx(0.025 ** (1 / 60))
    assert ci.method == "clopper-pearson-orders" and not ci.degenerate
    zero = rate_ci([0.0, math.nan, 0.0], [10.0, 0.0, 30.0])  # the NaN day has no order due
    assert (zero.mean, zero.low, zero.n) == (0.0, 0.0, 2)
    assert zero.high == pytest.approx(1.0 - 0.025 ** (1 / 40))
    # without counts: each day one all-or-nothing trial, 4 of 4
    days = rate_ci([1.0, 1.0, 1.0, 1.0])
    assert days.low == pytest.approx(0.025 ** (1 / 4)) and days.method == "clopper-pearson-days"
    # a rate that moves keeps its t-interval; one day keeps [mean, mean] (no statement)
    assert rate_ci([1.0, 0.9, 1.0], [10.0, 10.0, 10.0]).method == "t"
    assert (rate_ci([1.0], [10.0]).low, rate_ci([1.0], [10.0]).n) == (1.0, 1)


def test_clopper_pearson_matches_the_beta_quantiles_in_the_middle() -> None:
    low, high = clopper_pearson(3, 10)
    assert low == pytest.approx(float(stats.beta.ppf(0.025, 3, 8)))
    assert high == pytest.approx(float(stats.beta.ppf(0.975, 4, 7)))


def _holm_by_hand(p: list[float]) -> list[float]:
    """Holm's adjusted p-values from the definition: sort, multiply the i-th smallest (1-based)
    by m - i + 1, cap at 1, make non-decreasing in the sorted order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    best = 0.0
    for i, j in enumerate(order, start=1):
        best = max(best, min(1.0, (m - i + 1) * p[j]))
        adjusted[j] = best
    return adjusted


def _holm_step_down(p: list[float], alpha: float) -> set[int]:
    """Holm's procedure as published: reject p_(1), p_(2), ... while p_(i) <= alpha/(m-i+1)."""
    m = len(p)
    rejected: set[int] = set()
    for i, j in enumerate(sorted(range(m), key=lambda i: p[i]), start=1):
        if not p[j] < alpha / (m - i + 1):
            break
        rejected.add(j)
    return rejected


def test_holm_on_a_worked_example() -> None:
    # m = 4: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # untested comparisons (NaN) stay NaN and are not counted in m
    out = holm([0.01, math.nan, 0.04])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=100_000), min_size=1, max_size=12))
def test_holm_matches_the_definition_and_the_step_down_procedure(raw: list[int]) -> None:
    p = [k / 100_000 for k in raw]
    adjusted = holm(p)
    assert adjusted == pytest.approx(_holm_by_hand(p), abs=1e-12)
    assert all(a >= q for a, q in zip(adjusted, p, strict=True))  # never below the raw p
    decided = {i for i, a in enumerate(adjusted) if a < 0.05}
    hand = _holm_step_down(p, 0.05)
    near = {i for i, a in enumerate(_holm_by_hand(p)) if abs(a - 0.05) < 1e-12}
    assert decided - near == hand - near


def test_holm_family_adjusts_three_comparisons_that_are_each_significant_alone() -> None:
    """Three candidates, each with paired t p < 0.05 against the baseline: unadjusted all
    three are 'significant'; Holm over the three (smallest p x 3 > 0.05) keeps none."""
    base = np.asarray([1_000.0, 1_100.0, 900.0, 1_050.0, 950.0, 1_000.0])
    shifts = [
        np.asarray([-12.0, -27.0, 2.0, -20.0, -15.0, -8.0]),
        np.asarray([-13.0, -26.0, 1.0, -22.0, -12.0, -9.0]),
        np.asarray([-10.0, -28.0, 2.0, -21.0, -15.0, -8.0]),
    ]
    diffs = [paired_diff(base + s, base) for s in shifts]
    raw = [float(stats.ttest_1samp(s, 0.0).pvalue) for s in shifts]
    assert all(d.excludes_zero for d in diffs) and all(p < 0.05 for p in raw)
    tests = holm_family(diffs)
    for t, p, q in zip(tests, raw, _holm_by_hand(raw), strict=True):
        assert t.p_value == pytest.approx(p) and t.p_adjusted == pytest.approx(q)
        assert not t.significant and t.family_size == 3
    # one comparison without a test (one pair) is not counted: m = 2
    one = paired_diff([5.0], [1.0])
    two = holm_family([diffs[1], one, paired_diff(base - 100.0, base)])
    assert two[1].p_value is None and not two[1].significant
    assert two[0].family_size == 2 and two[2].degenerate  # -100 every day: the sign test
    assert two[2].p_value == pytest.approx(2 * 0.5**6)


def fieller_by_hand(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    """Fieller (1954) for a ratio of means, in the textbook form (None: unbounded).

    With the means m_a, m_b, the variances and covariance of the means v11 = s_aa / n,
    v22 = s_bb / n, v12 = s_ab / n, t = t_{0.975, n-1} and g = t^2 v22 / m_b^2 (g < 1):
    [R - g v12 / v22 -+ (t / m_b) sqrt(v11 - 2 R v12 + R^2 v22 - g (v11 - v12^2 / v22))]
    / (1 - g), R = m_a / m_b.
    """
    n = a.size
    ma, mb = float(np.mean(a)), float(np.mean(b))
    c = np.cov(a, b, ddof=1) / n
    v11, v12, v22 = float(c[0, 0]), float(c[0, 1]), float(c[1, 1])
    t = float(stats.t.ppf(0.975, n - 1))
    g = t * t * v22 / (mb * mb)
    if g >= 1.0:
        return None
    r = ma / mb
    # g v12 / v22 = t^2 v12 / m_b^2 and g (v11 - v12^2 / v22) = t^2 (v11 v22 - v12^2) / m_b^2
    shift = t * t * v12 / (mb * mb)
    root = (t / abs(mb)) * math.sqrt(
        max(0.0, v11 - 2 * r * v12 + r * r * v22 - t * t * (v11 * v22 - v12 * v12) / (mb * mb))
    )
    return ((r - shift - root) / (1 - g), (r - shift + root) / (1 - g))


def test_ratio_ci_on_a_worked_example() -> None:
    """Four days: policy costs against greedy's, the textbook formula evaluated step by step."""
    greedy = np.asarray([200.0, 220.0, 180.0, 240.0])
    policy = np.asarray([150.0, 170.0, 130.0, 170.0])
    # m_a = 155, m_b = 210, R = 0.738095; sums of squares and products of the deviations
    # 1100, 2000, 1400 over n - 1 = 3 and n = 4: v11 = 91.667, v22 = 166.667, v12 = 116.667;
    # t_{0.975,3} = 3.182446, g = 10.12796 x 166.667 / 44100 = 0.038277, g v12 / v22 = 0.026794;
    # under the root 91.667 - 172.222 + 90.797 - 0.383 = 9.8591, times t / 210: 0.047584;
    # so [(0.738095 - 0.026794 -+ 0.047584) / 0.961723] = [0.69013, 0.78909]
    r = ratio_ci(policy, greedy)
    hand = fieller_by_hand(policy, greedy)
    assert hand is not None
    assert r.ratio == pytest.approx(155.0 / 210.0)
    assert (r.low, r.high) == pytest.approx(hand, rel=1e-12)
    assert r.low == pytest.approx(0.69013, abs=1e-5) and r.high == pytest.approx(0.78909, abs=1e-5)
    assert r.n == 4 and r.bounded and not r.degenerate


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=1.0, max_value=1e5, allow_nan=False),
            st.floats(min_value=-0.5, max_value=0.5, allow_nan=False),
        ),
        min_size=2,
        max_size=30,
    ),
    st.floats(min_value=0.05, max_value=5.0),
)
def test_ratio_ci_is_fiellers_interval_and_inverts_the_paired_t_test(
    pairs: list[tuple[float, float]], true_ratio: float
) -> None:
    """Against the textbook formula, and at each end the paired t-test of a - r b has p = 0.05."""
    b = np.asarray([p[0] for p in pairs])
    a = b * (true_ratio + np.asarray([p[1] for p in pairs]))
    e = a - float(np.mean(a)) / float(np.mean(b)) * b
    assume(float(np.std(e)) > 1e-6 * float(np.max(np.abs(a))))  # not the same ratio every day
    r = ratio_ci(a, b)
    hand = fieller_by_hand(a, b)
    if hand is None:
        assert not r.bounded and r.pair() is None
        assert (r.low, r.high) == (-math.inf, math.inf)
        return
    assert r.bounded and r.low <= r.ratio <= r.high
    assert (r.low, r.high) == pytest.approx(hand, rel=1e-7, abs=1e-9)
    for end in (r.low, r.high):
        p = float(stats.ttest_1samp(a - end * b, 0.0).pvalue)
        assert p == pytest.approx(0.05, abs=1e-6)
    inside = 0.5 * (r.low + r.high)
    assert float(stats.ttest_1samp(a - inside * b, 0.0).pvalue) > 0.05
    assert not paired_diff(a, inside * b).excludes_zero  # the same test as paired_diff's


def test_a_ratio_of_costs_has_no_negative_end() -> None:
    """Costs of 0, 0 and 10 cents against 10 every day: Fieller's low end is below 0."""
    costs, reference = [0.0, 0.0, 10.0], [10.0, 10.0, 10.0]
    hand = fieller_by_hand(np.asarray(costs), np.asarray(reference))
    assert hand is not None and hand[0] < 0.0  # the textbook interval, for any sign
    plain = ratio_ci(costs, reference)
    assert plain.low == pytest.approx(hand[0])
    cost = ratio_ci(costs, reference, nonnegative=True)
    assert (cost.ratio, cost.low) == (pytest.approx(1 / 3), 0.0)
    assert cost.high == pytest.approx(hand[1])
    with pytest.raises(ValueError, match="negative value"):
        ratio_ci([-1.0, 2.0, 3.0], reference, nonnegative=True)


def test_ratio_ci_unbounded_degenerate_and_undefined_cases() -> None:
    # a denominator whose mean is not significantly different from 0: no finite interval
    wide = ratio_ci([1.0, 2.0, 1.5], [1.0, -1.5, 0.2])
    assert wide.n == 3 and not wide.bounded and wide.pair() is None
    # the same ratio every day (a policy against itself): a point, marked degenerate
    same = ratio_ci([200.0, 220.0, 180.0], [200.0, 220.0, 180.0])
    assert (same.ratio, same.low, same.high, same.degenerate) == (1.0, 1.0, 1.0, True)
    # ... over days so noisy that mean(b) is not significantly above 0 (two days of 55,000
    # and 95,000 cents: the reference against itself): it was (-inf, inf), not that point
    noisy = ratio_ci([55_000.0, 95_000.0], [55_000.0, 95_000.0])
    assert (noisy.ratio, noisy.low, noisy.high, noisy.degenerate) == (1.0, 1.0, 1.0, True)
    assert noisy.pair() == (1.0, 1.0)
    twice = ratio_ci([2.0, -3.0, 1.5], [1.0, -1.5, 0.75])  # a = 2 b every day: the point 2
    assert (twice.low, twice.high, twice.degenerate) == (2.0, 2.0, True)
    # one pair: a value, no confidence statement; NaN pairs left out; mean(b) = 0 undefined
    one = ratio_ci([3.0, math.nan], [2.0, 5.0])
    assert (one.ratio, one.n, one.bounded) == (1.5, 1, False)
    assert math.isnan(ratio_ci([1.0, 2.0], [1.0, -1.0]).ratio)
    with pytest.raises(ValueError, match="differ in size"):
        ratio_ci([1.0], [1.0, 2.0])


def test_the_estimate_carries_the_interval_method() -> None:
    """``Interval.estimate()`` dropped ``method``: Kpis could not tell t from Clopper-Pearson."""
    assert rate_ci([1.0, 1.0], [5.0, 5.0]).estimate().method == "clopper-pearson-orders"
    assert rate_ci([0.0, 0.0]).estimate().method == "clopper-pearson-days"
    assert mean_ci([2.0, 2.0, 2.0]).estimate().method == "t"  # degenerate: still a t-interval
    assert mean_ci([4.0]).estimate().method == "none"  # one value: no interval (it said t)


@pytest.mark.parametrize(
    ("method", "note"),
    [
        ("t", ""),
        (None, ""),
        ("clopper-pearson-orders", " (Clopper-Pearson, orders)"),
        ("clopper-pearson-days", " (Clopper-Pearson, days)"),
    ],
)
def test_method_note_names_only_the_exact_intervals(method: str | None, note: str) -> None:
    assert method_note(method) == note


@pytest.mark.parametrize(
    ("x", "spec", "shown"),
    [
        (-0.0, "+.3f", "+0.000"),
        (-1.85e-17, ".4f", "0.0000"),  # a mean that is 0 in exact arithmetic
        (-1.85e-17, "+.4g", "+0"),  # its residue is not shown either (it was "-1.85e-17")
        (3e-13, ".4g", "0"),
        (2e-12, ".4g", "2e-12"),
        (-0.3, "+,.0f", "+0"),  # -0.3 cents rounded to whole cents
        (-0.0, ",.4g", "0"),
        (-0.0004, ".1%", "0.0%"),
        (-0.5, ".3f", "-0.500"),  # a real negative keeps its sign
        (-1234.5, "+,.0f", "-1,234"),
        (7, ",", "7"),  # an integer formats as given
    ],
)
def test_fmt_num_never_shows_a_negative_zero(x: float, spec: str, shown: str) -> None:
    assert fmt_num(x, spec) == shown


@settings(max_examples=200, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.sampled_from(["+.3f", ".3f", ".4f", ",.0f", "+,.0f", ".4g", "+.4g", ",.4g", ".1%", ".2f"]),
)
def test_fmt_num_is_format_except_for_the_sign_of_a_zero(x: float, spec: str) -> None:
    plain = format(0.0 if abs(x) < FORMAT_NOISE else x, spec)
    shown = fmt_num(x, spec)
    negative_zero = plain.startswith("-") and not any(c in "123456789" for c in plain)
    if negative_zero:
        assert shown == ("+" if spec.startswith("+") else "") + plain[1:]
    else:
        assert shown == plain
    assert not (shown.startswith("-") and not any(c in "123456789" for c in shown))


def test_one_value_has_no_interval_and_says_so() -> None:
    """n = 1 was reported as method t with [mean, mean]: now method none, null bounds."""
    from pydantic import ValidationError

    from scenarios.plan import Estimate

    one = mean_ci([4.0])
    assert (one.method, one.bounds, one.n) == ("none", (None, None), 1)
    est = one.estimate()
    assert (est.mean, est.ci_low, est.ci_high, est.n, est.method) == (4.0, None, None, 1, "none")
    assert rate_ci([1.0], [10.0]).method == "none"  # not Clopper-Pearson over one day either
    assert paired_diff([3.0], [1.0]).method == "none"
    two = mean_ci([4.0, 6.0])
    assert two.method == "t" and two.bounds == (two.low, two.high)
    assert two.estimate().ci_low == pytest.approx(5.0 - stats.t.ppf(0.975, 1))  # s / sqrt(n) = 1
    with pytest.raises(ValidationError, match="ci_low"):  # a bound with method none
        Estimate(mean=4.0, ci_low=4.0, ci_high=4.0, n=1, method="none")
    with pytest.raises(ValidationError, match="ci_high"):  # no bound without method none
        Estimate(mean=4.0, ci_low=3.0, ci_high=None, n=2, method="t")
    with pytest.raises(ValidationError, match="method"):  # none is for one replication
        Estimate(mean=4.0, ci_low=None, ci_high=None, n=2, method="none")
    # written before method none existed: n = 1 with [mean, mean] and method t still loads
    old = Estimate.model_validate_json(
        '{"mean": 4.0, "ci_low": 4.0, "ci_high": 4.0, "n": 1, "method": "t"}'
    )
    assert old.ci_low == 4.0


def test_a_kpi_constant_over_the_replications_is_flagged_not_an_exact_estimate() -> None:
    """A KPI at 0 on every replication was reported as [0, 0] and nothing else, which reads as
    an exact zero-width estimate. Its Estimate says ``constant`` and the tables write
    ``(constant)`` after the interval."""
    from pydantic import ValidationError

    from scenarios.plan import Estimate
    from simulation.stats import interval_text

    zero = mean_ci([0.0, 0.0, 0.0], bounds=(0.0, math.inf)).estimate()
    assert (zero.ci_low, zero.ci_high, zero.n, zero.method) == (0.0, 0.0, 3, "t")
    assert zero.constant is True
    assert mean_ci([7.0] * 5).estimate().constant is True  # any constant, not only 0
    assert mean_ci([1.0, 2.0, 3.0]).estimate().constant is False
    assert mean_ci([4.0]).estimate().constant is False  # one value: no interval at all
    exact = rate_ci([1.0, 1.0], [5.0, 5.0])  # Clopper-Pearson: a real interval, not flat
    assert exact.method == "clopper-pearson-orders" and exact.estimate().constant is False
    shown = interval_text(zero.ci_low, zero.ci_high, ".4g", zero.method, constant=zero.constant)
    assert shown == "[0, 0] (constant)"
    assert interval_text(0.0, 1.0, ".4g", "t", constant=False) == "[0, 1]"
    assert Estimate.model_validate_json(zero.model_dump_json()).constant is True
    old = Estimate.model_validate_json('{"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 3}')
    assert old.constant is None  # written before the flag: not recorded, not "not constant"
    with pytest.raises(ValidationError, match="constant"):  # a wide interval is not flat
        Estimate(mean=1.0, ci_low=0.0, ci_high=2.0, n=3, method="t", constant=True)


@pytest.mark.parametrize(
    ("values", "shown"),
    [([4.0], "[no CI: n=1]"), ([4.0, 6.0], "[-7.706, 17.71]")],
)
def test_interval_text_shows_no_nan_for_one_value(values: list[float], shown: str) -> None:
    est = mean_ci(values).estimate()
    assert interval_text(est.ci_low, est.ci_high, ".4g", est.method) == shown
