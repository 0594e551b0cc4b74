"""The reported intervals checked against textbook formulas computed with scipy from raw samples.

Every reference below is written from the definition (Student t over n-1 degrees of freedom,
the paired t-interval of the per-replication differences), not from ``simulation.stats``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
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
from simulation.stats import mean_ci, paired_diff
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
    late = line.orders[0].model_copy(update={"created_s": 10**6})  # never released: a template
    scenario = line.model_copy(
        update={"orders": [late], "arrivals": ArrivalProcess(hourly_rate=[0.6] * 24)}
    )
    cmp = compare(scenario, {"a": None, "b": None}, policy="insertion", replications=6, seed=1)
    assert cmp.diffs["b"]["on_time_rate"].n == 4
    table = cmp.markdown(("cost_cents", "on_time_rate"))
    row_b = next(line for line in table.splitlines() if line.startswith("| b "))
    cells = [c.strip() for c in row_b.strip("|").split("|")]
    assert cells[1].endswith("]") and cells[2].endswith("(n=4)")  # cost, on-time
    assert cells[3].endswith("]") and cells[4].endswith("(n=4)")  # their differences
