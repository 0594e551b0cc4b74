"""PyVRP data: skill profiles shared by vehicles that may enter the same nodes; safe arc lengths;
a starting plan PyVRP can search from."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import pyvrp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import (
    Break,
    EuclideanTravel,
    Location,
    Order,
    PickupSpec,
    Scenario,
    TimeWindow,
    Vehicle,
)
from scenarios.errors import ScenarioInputError
from scenarios.geo import MAX_INT
from scenarios.plan import Plan, StopKind
from solvers.routing import (
    RoutingParams,
    build_problem,
    solve_routes,
    solve_routes_with_stats,
)
from solvers.routing.engines import pyvrp_engine
from solvers.routing.engines.pyvrp_engine import (
    Deadline,
    PyVRPEngine,
    Stall,
    _initial_solution,
    _max_penalty,
    _missing_arc,
    _prizes,
    build_data,
    data_bytes,
    max_violation,
    num_profiles,
    safe_penalty,
    stall_iterations,
)
from solvers.routing.problem import RoutingProblem
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import SEARCH_ITERATIONS, UNHURRIED_S, make_city


def _skilled_city(penalty_cents: int | None = None) -> Scenario:
    """Orders o0, o1 need a fridge; three vehicles: fridge, crane, none (priced by distance)."""
    depot = Location(x=5000, y=5000)
    fleet = [
        Vehicle(id=k, start_location=depot, capacity=[10], skills=skills, cost_per_km_cents=90)
        for k, skills in (("van", ["fridge"]), ("crane", ["crane"]), ("bike", []))
    ]
    s = make_city(6, vehicles=fleet)
    orders = [
        o.model_copy(
            update={
                "required_skills": ["fridge"] if i < 2 else [],
                "penalty_cents": penalty_cents,
            }
        )
        for i, o in enumerate(s.orders)
    ]
    return s.model_copy(update={"orders": orders})


def test_vehicles_banned_from_the_same_nodes_share_a_profile() -> None:
    p = build_problem(_skilled_city())
    # "crane" and "bike" may not enter the fridge orders' nodes, "van" may enter all
    assert num_profiles(p) == 2
    assert data_bytes(p) == 2 * 2 * 8 * 2 * p.num_nodes**2
    assert num_profiles(build_problem(make_city(6))) == 1


def _four_skill_profiles(num_orders: int = 400) -> RoutingProblem:
    """Orders at seeded distinct places needing a fridge, a crane, a ramp or nothing; vans
    with one of those skills each and a bike with none: four profiles that ban arcs."""
    rng = random.Random(7)
    depot = Location(x=5000, y=5000)
    fleet = [
        Vehicle(id=k, start_location=depot, capacity=[10], skills=[k] if k != "bike" else [])
        for k in ("fridge", "crane", "ramp", "bike")
    ]
    s = make_city(1, vehicles=fleet)
    needs = [["fridge"], ["crane"], ["ramp"], []]
    orders = [
        s.orders[0].model_copy(
            update={
                "id": f"o{i}",
                "location": Location(x=rng.uniform(0, 10_000), y=rng.uniform(0, 10_000)),
                "required_skills": needs[i % 4],
            }
        )
        for i in range(num_orders)
    ]
    return build_problem(s.model_copy(update={"orders": orders}))


def test_profile_matrices_are_made_one_at_a_time_as_pyvrp_copies_them() -> None:
    """PyVRP copies each profile's matrices into its data: ours were all alive at once (two
    per profile that bans arcs, 8 here, 265 MB at 2,400 orders); now at most two."""
    import tracemalloc

    p = _four_skill_profiles()
    assert num_profiles(p) == 4
    one = p.num_nodes**2 * 8
    tracemalloc.start()
    try:
        data, _, _ = build_data(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * one, f"{peak / one:.1f} matrices alive at once"
    # the matrices PyVRP holds are the profiles' as before: arcs into banned nodes missing
    missing = _missing_arc(p)
    bans = sorted(set(pyvrp_engine._banned_nodes(p).values()), key=len)
    assert data.num_profiles == len(bans) == 4
    for k, banned in enumerate(bans):
        for ours, theirs in (
            (p.distance, data.distance_matrix(k)),
            (p.duration, data.duration_matrix(k)),
        ):
            want = ours.copy()
            want[:, list(banned)] = missing
            np.fill_diagonal(want, 0)
            assert np.array_equal(np.asarray(theirs), want)


def test_missing_arcs_are_longer_than_any_shift_and_cannot_overflow() -> None:
    p = build_problem(_skilled_city(penalty_cents=10**9))
    missing = _missing_arc(p)
    span = max(v.shift[1] for v in p.vehicles) - min(v.shift[0] for v in p.vehicles)
    assert missing > span
    price = max(v.unit_distance_cost + v.unit_duration_cost for v in p.vehicles)
    assert missing * price * len(p.tasks) < 2**59
    for prizes in (None, _prizes(p)):
        penalty = _max_penalty(p, prizes) or 100_000.0
        assert penalty * max_violation(p) <= safe_penalty(p, prizes) * max_violation(p) < 2**62


def _priced_windows(price_cents_per_km: int, num_orders: int = 30) -> Scenario:
    """Orders at seeded random places with 1 h windows over a 10 h day; three vehicles at
    ``price`` per km (at 10**12 cents a 1 s PyVRP search of it ran for minutes)."""
    rng = random.Random(0)
    orders = []
    for i in range(num_orders):
        where = Location(x=rng.uniform(0, 10_000), y=rng.uniform(0, 10_000))
        opens = rng.randrange(0, 30_000)
        orders.append(
            Order(
                id=f"o{i}",
                location=where,
                demand=[1],
                service_s=60,
                time_windows=[TimeWindow(start_s=opens, end_s=opens + 3600)],
            )
        )
    depot = Location(x=5000, y=5000)
    fleet = [
        Vehicle(
            id=f"v{k}", start_location=depot, capacity=[100], cost_per_km_cents=price_cents_per_km
        )
        for k in range(3)
    ]
    return make_city(1).model_copy(update={"orders": orders, "vehicles": fleet})


@pytest.mark.parametrize("price", [100, 10**9, MAX_INT])
def test_penalties_times_the_largest_violation_stay_in_int64(price: int) -> None:
    """PyVRP multiplies its penalty by the violation in doubles and casts to int64: past 2**63
    the cost became -2**63 (its search then took the worst moves for the best)."""
    p = build_problem(_priced_windows(price))
    for prizes in (None, _prizes(p)):
        penalty = _max_penalty(p, prizes) or 100_000.0
        worst = int(max_violation(p))
        evaluator = pyvrp.CostEvaluator([penalty], penalty, penalty)
        assert 0 <= evaluator.tw_penalty(worst) < 2**62
        assert 0 <= evaluator.load_penalty(worst, 0, 0) < 2**62
    assert pyvrp_engine.weak_penalties(p) == (price >= 10**9)
    assert pyvrp_engine.penalty_range_error(p) is None


def test_normal_prices_keep_the_penalty_bound() -> None:
    p = build_problem(_priced_windows(100))
    assert _max_penalty(p, None) == 100_000.0 * 100


def _priced_fleet(
    fixed_cost_cents: int, cost_per_km_cents: int, cost_per_hour_cents: int
) -> Scenario:
    """60 mandatory one-unit orders at seeded random places; 10 vehicles of capacity 10 at
    the given prices, so at least 6 vehicles are needed."""
    rng = random.Random(1)
    orders = [
        Order(
            id=f"o{i}",
            location=Location(x=rng.uniform(0, 10_000), y=rng.uniform(0, 10_000)),
            demand=[1],
            service_s=120,
        )
        for i in range(60)
    ]
    fleet = [
        Vehicle(
            id=f"v{k}",
            start_location=Location(x=5000, y=5000),
            capacity=[10],
            shift=TimeWindow(start_s=0, end_s=36_000),
            fixed_cost_cents=fixed_cost_cents,
            cost_per_km_cents=cost_per_km_cents,
            cost_per_hour_cents=cost_per_hour_cents,
        )
        for k in range(10)
    ]
    return make_city(1).model_copy(
        update={"orders": orders, "vehicles": fleet, "travel": EuclideanTravel(speed_m_per_s=8.0)}
    )


@pytest.mark.parametrize(
    ("fixed", "per_km", "per_hour"), [(30_000, 30, 0), (0, 0, 5_000)], ids=["fixed", "hourly"]
)
def test_fixed_and_time_prices_raise_the_penalty_bound(
    fixed: int, per_km: int, per_hour: int
) -> None:
    """A unit of excess load must cost more than the vehicle that would remove it: bounded by
    the distance price alone (3,000,000 for 30 cents per km), an overloaded route was
    cheaper than a seventh vehicle at 30,000 cents, and PyVRP found no feasible plan (the
    greedy plan answered, ``pyvrp found no feasible solution``)."""
    scenario = _priced_fleet(fixed, per_km, per_hour)
    p = build_problem(scenario)
    vehicle = max(
        v.fixed_cost + v.unit_duration_cost * int(p.duration[v.start_node].max())
        for v in p.vehicles
    )
    assert (_max_penalty(p, None) or 100_000.0) >= 10 * vehicle
    plan, stats = solve_routes_with_stats(
        scenario,
        RoutingParams(
            engine="pyvrp", time_limit_s=UNHURRIED_S, max_iterations=SEARCH_ITERATIONS, seed=1
        ),
    )
    assert stats.fallback is None
    assert plan.engine == "pyvrp"
    assert plan.status.value == "feasible" and not plan.unassigned
    assert plan.num_vehicles == 6
    assert validate_plan(scenario, plan).ok


_HANG = """
import time
from solvers.routing import build_problem
from solvers.routing.engines.base import EngineSettings
from solvers.routing.engines.pyvrp_engine import PyVRPEngine
from tests.solvers.routing.test_pyvrp_engine import _priced_windows
problem = build_problem(_priced_windows(10**12))
t0 = time.perf_counter()
PyVRPEngine().solve(problem, EngineSettings(time_limit_s=1.0, seed=1, deadline=t0 + 1.0))
print(time.perf_counter() - t0)
"""


def test_pyvrp_at_huge_prices_with_time_windows_stops_on_time() -> None:
    """10**12 cents per km with time windows: a 1 s PyVRP search ran for over 10 minutes
    (penalty x time warp overflowed int64). Run in a subprocess: a hang cannot be
    interrupted inside PyVRP's C++ local search."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    run = subprocess.run(
        [sys.executable, "-c", _HANG], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert float(run.stdout.split()[-1]) < 3.0


def test_explicit_pyvrp_at_huge_prices_answers_a_valid_plan_on_time() -> None:
    """Asked for PyVRP at 10**9 cents per km (its penalty bound of 1e14 times an hour of
    time warp passed int64), the search runs with the penalties int64 allows (should it
    find nothing feasible, the greedy plan is the answer), on time."""
    s = _priced_windows(10**9)
    plan, stats = solve_routes_with_stats(s, RoutingParams(engine="pyvrp", time_limit_s=1))
    assert validate_plan(s, plan).ok
    # not the minutes its search ran when the penalised costs wrapped. Not asserted: an
    # answer within the limit + TIME_LIMIT_MARGIN_S, which a loaded machine delays (see
    # test_a_search_stuck_in_an_iteration_at_its_end_is_stopped_with_its_best_so_far)
    assert stats.total_s < 10, stats.total_s


def test_penalties_that_cannot_fit_int64_at_all_name_the_price(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = _priced_windows(MAX_INT, num_orders=6)
    monkeypatch.setattr(pyvrp_engine, "max_violation", lambda problem: 2.0**64)
    with pytest.raises(ScenarioInputError) as err:
        solve_routes(s, RoutingParams(engine="pyvrp", time_limit_s=1))
    assert err.value.field == "vehicles.0.cost_per_km_cents"
    assert "'ortools'" in err.value.reason


def test_auto_routes_prices_pyvrp_cannot_penalise_with_ortools() -> None:
    s = _priced_windows(10**9, num_orders=6)
    plan = solve_routes(s, RoutingParams(time_limit_s=1, seed=1))
    assert plan.engine == "ortools"
    assert validate_plan(s, plan).ok
    assert not plan.unassigned


def test_skilled_orders_go_to_the_vehicle_with_the_skill() -> None:
    s = _skilled_city()
    plan = solve_routes(s, RoutingParams(engine="pyvrp", time_limit_s=5, max_iterations=300))
    assert validate_plan(s, plan).ok
    assert not plan.unassigned
    van = next(r for r in plan.routes if r.vehicle_id == "van")
    assert {"o0", "o1"} <= {st.order_id for st in van.stops}


class _Clock:
    """A perf_counter that moves only when told."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def perf_counter(self) -> float:
        return self.now


def test_no_iteration_is_started_that_would_end_after_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyVRP looks at the clock only between iterations: a 1 s iteration started 0.1 s before
    the deadline used to end 0.9 s late."""
    clock = _Clock()
    monkeypatch.setattr(pyvrp_engine, "time", clock)
    stop = Deadline(102.5)
    assert not stop(0.0)  # first call, PyVRP's own start is done
    clock.now = 101.0
    assert not stop(0.0)  # one iteration of 1 s: another ends at 102
    clock.now = 101.6
    assert stop(0.0)  # one of 0.6 s; the longest recent one (1 s) would end at 102.6
    # from a given start the first iteration searches it exhaustively: its estimate counts
    clock.now = 100.0
    assert stop_before_first(clock, first_s=2.5)
    assert not stop_before_first(clock, first_s=1.5)


def test_a_search_killed_at_its_end_iterates_until_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A search in a process killed at its hard end (its best so far kept) loses nothing to
    an iteration cut short, so it does not stop early for fear of one: under load the
    predicting rule stopped a 10 s search after 6.3 s of the 1,000-job pickup city day."""
    clock = _Clock()
    monkeypatch.setattr(pyvrp_engine, "time", clock)
    stop = Deadline(102.5, first_s=5.0, predict=False)
    assert not stop(0.0)  # a first iteration estimated at 5 s still starts
    clock.now = 102.4  # after an iteration of 2.4 s
    assert not stop(0.0)
    clock.now = 102.5
    assert stop(0.0)


def test_only_the_reporting_search_iterates_until_the_deadline(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search run here (no hard kill: no fork) keeps predicting its iterations; the one
    that reports its best solutions (killed at its end) does not."""
    made: list[bool] = []
    real = pyvrp_engine.Deadline

    def deadline(*args: Any, predict: bool = True) -> Deadline:
        made.append(predict)
        return real(*args, predict=predict)

    monkeypatch.setattr(pyvrp_engine, "Deadline", deadline)
    data, _, _ = pyvrp_engine.build_data(build_problem(c101_25))
    end = time.perf_counter() + 30.0
    pyvrp_engine._run(data, end, 5, 1, None)
    pyvrp_engine._run(data, end, 5, 1, None, report=lambda sol, iterations: None)
    assert made == [True, False]


def stop_before_first(clock: _Clock, first_s: float) -> bool:
    """Whether a fresh deadline 2 s from now stops before the first iteration."""
    return Deadline(clock.now + 2.0, first_s)(0.0)


def test_pickup_and_delivery_pairs_are_expected_to_take_longer_to_start(
    c101_25: Scenario, lc101_10: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyVRP's first iterations from the greedy plan of the 1,000-job pickup city day took up
    to 3 ms per visit, not 1 ms: at 4-5 s the search started with too little time left and
    the plan came up to 1 s late. Pairs have their own, larger, estimate."""
    monkeypatch.setattr(pyvrp_engine, "FIRST_SEARCH_S_PER_PAIRED_TASK", 1.0)
    paired = build_problem(lc101_10)
    assert pyvrp_engine.first_search_s(paired) == len(paired.tasks)
    plan = solve_routes(lc101_10, RoutingParams(engine="pyvrp", time_limit_s=2, seed=1))
    assert plan.engine == "greedy (no time left for pyvrp)"
    # deliveries from the depot keep the estimate per visit
    plan = solve_routes(
        c101_25, RoutingParams(engine="pyvrp", time_limit_s=2, seed=1, max_iterations=50)
    )
    assert plan.engine == "pyvrp"


def test_the_first_local_search_counts_in_the_time_pyvrp_needs_to_start(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyVRP's first local search does not watch the clock: too little time left for it gives
    the greedy plan instead of a late one."""
    problem = build_problem(c101_25)
    base = PyVRPEngine().min_time_s(problem)
    monkeypatch.setattr(pyvrp_engine, "FIRST_SEARCH_S_PER_TASK", 1.0)
    assert PyVRPEngine().min_time_s(problem) >= base + len(problem.tasks) - 1
    plan = solve_routes(c101_25, RoutingParams(engine="pyvrp", time_limit_s=2, seed=1))
    assert plan.engine == "greedy (no time left for pyvrp)"
    assert validate_plan(c101_25, plan).ok


def _no_time_for_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyVRP searches from the greedy plan (as from 1,200 visits on) and its first local
    search is taken to need 1 s per visit (no budget of these tests fits it); a search that
    starts anyway fails the test."""
    monkeypatch.setattr(pyvrp_engine, "GREEDY_START_TASKS", 1)
    monkeypatch.setattr(pyvrp_engine, "FIRST_SEARCH_S_PER_TASK", 1.0)

    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("a search was started without the time for it")

    monkeypatch.setattr(pyvrp_engine, "collect_searches", no_search)


def test_with_time_for_pyvrps_start_but_not_its_search_its_start_is_repaired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With time to build PyVRP's data and trim the greedy plan to its model but not for the
    first local search (the 1,500-order city day of ``routing_budget.py`` at 3 s: 1.69 s left,
    1.84 s estimated), the greedy plan was returned (1,722,950 cents); its trimmed start,
    repaired, is the answer now (1,631,397 cents, as when a search ended in its first
    iteration), or the greedy plan where that is cheaper."""
    from solvers.routing import solve as solve_module

    s = _busy_day(100, 2, 4)
    greedy = solve_routes(s, RoutingParams(engine="greedy", seed=1))
    _no_time_for_the_search(monkeypatch)
    # the break-aware pass would improve either plan until its deadline: left out here
    monkeypatch.setattr(solve_module, "_polish", lambda problem, routes, *args: routes)
    problem = build_problem(s)
    engine = PyVRPEngine()
    start_s = engine.min_start_s(problem)
    assert start_s is not None and start_s < 10 < engine.min_time_s(problem)
    plan, stats = solve_routes_with_stats(s, RoutingParams(engine="pyvrp", seed=1, time_limit_s=10))
    assert plan.engine == "greedy (pyvrp's start, no time left for its search)"
    assert stats.fallback is not None and "returning its start" in stats.fallback
    assert stats.detail.startswith("no search: the greedy plan, 2 orders taken out")
    assert validate_plan(s, plan).ok
    assert plan.cost_cents < greedy.cost_cents
    assert len(plan.unassigned) <= len(greedy.unassigned)


def test_without_time_for_pyvrps_start_the_greedy_plan_is_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the data build does not fit either, the greedy plan is the answer, as before."""
    s = _busy_day(100, 2, 4)
    _no_time_for_the_search(monkeypatch)
    _without_the_break_aware_pass(monkeypatch)  # it took the 4 s the greedy plan left
    monkeypatch.setattr(pyvrp_engine, "BUILD_S_FIXED", 1e9)

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("PyVRP's data were built without the time for it")

    monkeypatch.setattr(pyvrp_engine, "build_data", no_build)
    plan, stats = solve_routes_with_stats(s, RoutingParams(engine="pyvrp", seed=1, time_limit_s=5))
    assert plan.engine == "greedy (no time left for pyvrp)"
    assert stats.fallback is not None and stats.fallback.endswith("returning the greedy plan")
    assert validate_plan(s, plan).ok


def test_without_breaks_pyvrps_start_is_the_greedy_plan(c101_25: Scenario) -> None:
    """Without breaks PyVRP's model is the plan's: its start is the greedy plan itself, so
    there is no start to make without a search."""
    assert PyVRPEngine().min_start_s(build_problem(c101_25)) is None
    busy = build_problem(_busy_day(100, 2, 4))
    assert PyVRPEngine().min_start_s(busy) == pytest.approx(
        pyvrp_engine.build_s(busy.num_nodes, num_profiles(busy))
        + pyvrp_engine.START_S_PER_TASK * len(busy.tasks)
    )


def test_the_data_build_estimate_follows_the_bytes_of_the_matrices() -> None:
    """The build of PyVRP's data is bound by writing its matrices (a distance and a duration
    matrix per skill profile, ours and PyVRP's copy): its estimate grows with them, linearly,
    and is not below the CPU time measured on the city days (0.067 s was estimated for the
    1,000-order pickup day, 1,036 places in 4 profiles, where 0.28 s were seen; 0.195 s at
    3,000 orders, 3,007 places, where 1.03-1.09 s of CPU were measured)."""
    build_s, matrix_bytes = pyvrp_engine.build_s, pyvrp_engine.matrix_bytes
    assert build_s(1_000, 2) > build_s(1_000, 1) > build_s(500, 1) > build_s(0, 1)
    grown = build_s(2_000, 4) - build_s(0, 4)
    assert grown == pytest.approx(4 * (build_s(1_000, 4) - build_s(0, 4)))
    assert grown == pytest.approx(2 * (build_s(2_000, 2) - build_s(0, 2)))
    assert build_s(2_000, 4) - build_s(0, 1) == pytest.approx(
        pyvrp_engine.BUILD_S_PER_BYTE * matrix_bytes(2_000, 4)
    )
    for places, profiles, cpu_s in [(1_036, 4, 0.065), (1_512, 4, 0.275), (3_007, 4, 1.09)]:
        assert build_s(places, profiles) >= cpu_s
    # the engine's start-up time is the build of this problem's data and its first search
    problem = build_problem(_skilled_city())
    assert num_profiles(problem) > 1
    assert data_bytes(problem) == matrix_bytes(problem.num_nodes, num_profiles(problem))
    assert PyVRPEngine().min_time_s(problem) == pytest.approx(
        build_s(problem.num_nodes, num_profiles(problem)) + pyvrp_engine.first_search_s(problem)
    )


def _busy_day(num_orders: int = 200, num_vehicles: int = 4, seed: int = 3) -> Scenario:
    """Optional orders in one-hour windows over a day, too many for a few couriers who each
    take a 30-minute break: the greedy plan fills the shifts, waits for windows and takes the
    breaks while waiting, so some routes end after the shift end less the break."""
    rng = np.random.default_rng(seed)
    depot = Location(x=5000, y=5000)
    orders = []
    for i in range(num_orders):
        x, y = rng.uniform(0, 10_000, 2)
        start = int(rng.integers(0, 6)) * 1800
        orders.append(
            Order(
                id=f"o{i}",
                location=Location(x=float(x), y=float(y)),
                demand=[1],
                service_s=120,
                time_windows=[TimeWindow(start_s=start, end_s=start + 3600)],
                penalty_cents=5_000,
            )
        )
    brk = Break(window=TimeWindow(start_s=5400, end_s=9000), duration_s=1800)
    fleet = [
        Vehicle(
            id=f"v{k}",
            start_location=depot,
            capacity=[40],
            shift=TimeWindow(start_s=0, end_s=14_400),
            breaks=[brk],
            cost_per_km_cents=50,
        )
        for k in range(num_vehicles)
    ]
    return Scenario(
        name="busy",
        horizon=TimeWindow(start_s=0, end_s=14_400),
        travel=EuclideanTravel(speed_m_per_s=8.0),
        capacity_dims=["units"],
        orders=orders,
        vehicles=fleet,
    )


def _without_the_break_aware_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave out the break-aware post-optimisation of the solves of the test: not their
    subject, and on :func:`_busy_day` it runs until the clock stops it (its work budget of a
    30 s run, 120,000 units, takes longer: 20 s of a test on an idle machine)."""
    from solvers.routing import solve as solve_module

    def unpolished(problem: RoutingProblem, routes: dict[int, list[int]], *args: Any) -> Any:
        return routes

    monkeypatch.setattr(solve_module, "_polish", unpolished)


def _pyvrp_start(
    s: Scenario, plan: Plan, trim: bool, deadline: float | None = None
) -> tuple[pyvrp.Solution, list[int]]:
    """PyVRP's starting solution made from ``plan`` (trimmed to fit its model or not)."""
    problem = build_problem(s)
    routes = {
        vi: [
            ti
            for st in route.stops
            for ti, t in enumerate(problem.tasks)
            if st.order_id == problem.order_ids[t.order] and st.kind is t.kind
        ]
        for route in plan.routes
        for vi, v in enumerate(problem.vehicles)
        if v.vehicle.id == route.vehicle_id
    }
    data, type_vehicles, _ = build_data(problem)
    optional = (lambda o: problem.orders[o].penalty is not None) if trim else None
    init, trimmed = _initial_solution(problem, data, type_vehicles, routes, optional, deadline)
    assert init is not None
    return init, trimmed


def test_pyvrp_searches_from_a_greedy_start_that_breaks_its_shortened_shifts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyVRP sees shifts shortened by the breaks, so a plan that takes its breaks while
    waiting can be infeasible to it; PyVRP keeps a new best solution only when it is feasible
    and searches only around the stops it perturbs, so from such a start it returned no
    feasible plan (the city-1000 pickup day: none in 10 s, the greedy plan was returned)."""
    _without_the_break_aware_pass(monkeypatch)  # it took 20 of this test's 23 s
    s = _busy_day()
    greedy = solve_routes(s, RoutingParams(engine="greedy", seed=1))
    assert validate_plan(s, greedy).ok
    plan, stats = solve_routes_with_stats(
        s,
        RoutingParams(
            engine="pyvrp", seed=1, time_limit_s=30, max_iterations=1, initial_plan=greedy
        ),
    )
    assert stats.fallback is None, stats.fallback
    assert plan.engine == "pyvrp"
    assert "orders taken out of the starting plan" in stats.detail
    assert validate_plan(s, plan).ok
    assert plan.cost_cents <= greedy.cost_cents
    assert len(plan.unassigned) <= len(greedy.unassigned)


@pytest.mark.parametrize("deadline", [None, 0.0], ids=["in time", "past the deadline"])
def test_a_start_that_breaks_the_shortened_shifts_loses_a_few_orders(
    deadline: float | None,
) -> None:
    """Past the deadline the costliest order goes without timing the others: still feasible."""
    s = _busy_day()
    greedy = solve_routes(s, RoutingParams(engine="greedy", seed=1))
    as_is, _ = _pyvrp_start(s, greedy, trim=False)
    assert as_is.has_time_warp()  # the failure mode: the start breaks PyVRP's model
    start, trimmed = _pyvrp_start(s, greedy, trim=True, deadline=deadline)
    assert start.is_feasible()
    served = sum(1 for r in greedy.routes for st_ in r.stops if st_.order_id is not None)
    assert 0 < len(trimmed) <= 5 and start.num_clients() == served - len(trimmed)


@pytest.mark.parametrize("day", [(100, 2, 4), (200, 4, 3)], ids=["100x2", "200x4"])
def test_past_the_deadline_the_start_loses_no_more_orders_than_in_time(
    day: tuple[int, int, int],
) -> None:
    """Past the deadline the trim took out the order whose visits take the most time, which
    waiting for later windows often absorbs: 19 orders instead of 2 on the first day (the
    1,000-order pickup city day: 174 instead of 38). The orders are now ranked by the
    violation their removal leaves (one numpy pass), so the fast rule trims what the careful
    one does."""
    s = _busy_day(*day)
    greedy = solve_routes(s, RoutingParams(engine="greedy", seed=1))
    careful, in_time = _pyvrp_start(s, greedy, trim=True)
    fast, late = _pyvrp_start(s, greedy, trim=True, deadline=0.0)
    assert careful.is_feasible() and fast.is_feasible()
    assert 0 < len(late) <= len(in_time) <= 2


def test_the_predicted_violation_of_each_removal_is_pyvrps() -> None:
    """The ranking of the trim (``removal_violations``) gives, for every order of a start
    route PyVRP deems infeasible, the violation PyVRP sees without it (end of the shortened
    shift, shortened maximum duration)."""
    s = _busy_day(100, 2, 4)
    greedy = solve_routes(s, RoutingParams(engine="greedy", seed=1))
    problem = build_problem(s)
    data, type_vehicles, _ = build_data(problem)
    checked = 0
    for route in greedy.routes:
        vi = next(i for i, v in enumerate(problem.vehicles) if v.vehicle.id == route.vehicle_id)
        seq = [
            ti
            for st_ in route.stops
            for ti, t in enumerate(problem.tasks)
            if st_.order_id == problem.order_ids[t.order] and st_.kind is t.kind
        ]
        start, _ = _initial_solution(problem, data, type_vehicles, {vi: seq})
        assert start is not None
        if start.is_feasible():
            continue
        orders = sorted({problem.tasks[t].order for t in seq})
        predicted = pyvrp_engine.removal_violations(problem, vi, seq, orders)
        for o, value in zip(orders, predicted.tolist(), strict=True):
            rest = [t for t in seq if problem.tasks[t].order != o]
            without, _ = _initial_solution(problem, data, type_vehicles, {vi: rest})
            assert without is not None
            (r,) = without.routes()
            assert value == r.time_warp() + r.excess_distance() + sum(r.excess_load()), o
            checked += 1
    assert checked > 20


def _out_of_order_route(
    seed: int, released: bool = False
) -> tuple[RoutingProblem, list[int]] | None:
    """One courier (a break, often a maximum duration and distance) visiting deliveries and
    pickup-and-delivery pairs in windows in a random order (pickups first): many visits come
    after their windows close. None if PyVRP rejects the data (a pair whose delivery window
    closes before its pickup's opens), or the scenario refuses the courier (a break that cannot end
    inside its shift: ValidationError is a ValueError)."""
    rng = random.Random(seed)

    def place() -> Location:
        return Location(x=rng.uniform(0, 10_000), y=rng.uniform(0, 10_000))

    def windows(latest: int) -> list[TimeWindow]:
        opens = rng.randint(0, latest)
        return [TimeWindow(start_s=opens, end_s=opens + rng.randint(0, 3600))]

    orders = [
        Order(
            id=f"o{i}",
            location=place(),
            demand=[1],
            service_s=rng.randint(0, 600),
            time_windows=windows(12_000) if rng.random() < 0.8 else [],
            pickup=(
                PickupSpec(
                    location=place(),
                    service_s=rng.randint(0, 300),
                    time_windows=windows(8_000) if rng.random() < 0.5 else [],
                )
                if rng.random() < 0.4
                else None
            ),
            penalty_cents=1_000,
        )
        for i in range(rng.randint(2, 9))
    ]
    if released:  # deliveries created during the day (drawn apart: the same day otherwise)
        created = random.Random(-1 - seed)
        orders = [
            o
            if o.pickup is not None
            else o.model_copy(update={"created_s": created.choice([0, created.randint(0, 9000)])})
            for o in orders
        ]
    begin = rng.randint(0, 3000)
    courier = Vehicle(
        id="v",
        start_location=Location(x=5000, y=5000),
        capacity=[100],
        shift=TimeWindow(start_s=begin, end_s=begin + rng.randint(6000, 16_000)),
        breaks=[
            Break(
                window=TimeWindow(start_s=5400, end_s=9000),
                duration_s=rng.choice([300, 600, 1800]),
            )
        ],
        max_duration_s=rng.choice([None, rng.randint(3000, 12_000)]),
        max_distance_m=rng.choice([None, rng.randint(10_000, 60_000)]),
    )
    speed = rng.choice([3.0, 8.0])
    with contextlib.suppress(ValueError):
        problem = build_problem(
            Scenario(
                horizon=TimeWindow(start_s=0, end_s=40_000),
                travel=EuclideanTravel(speed_m_per_s=speed),
                capacity_dims=["units"],
                orders=orders,
                vehicles=[courier],
            )
        )
        build_data(problem)
        seq = list(range(len(problem.tasks)))
        rng.shuffle(seq)
        slots: dict[int, list[int]] = {}
        for k, t in enumerate(seq):
            slots.setdefault(problem.tasks[t].order, []).append(k)
        for ks in slots.values():  # each pair's pickup first
            pair = sorted(
                (seq[k] for k in ks), key=lambda t: problem.tasks[t].kind is not StopKind.PICKUP
            )
            for k, t in zip(ks, pair, strict=True):
                seq[k] = t
        return problem, seq
    return None


def test_the_predicted_violation_counts_visits_late_at_their_own_windows() -> None:
    """The prediction counted only the end of the (shortened) shift and the route limits, so
    a route late at a visit's own window got less than PyVRP sees (random visit orders of
    seeded one-courier days: 3,673 of 4,393 removals wrong over 1,000 days). It is now
    PyVRP's own evaluation of the route without the order, lateness at the visits included."""
    checked = late_at_visits = 0
    for seed in range(80):
        case = _out_of_order_route(seed)
        if case is None:
            continue
        problem, seq = case
        data, type_vehicles, _ = build_data(problem)
        orders = sorted({problem.tasks[t].order for t in seq})
        predicted = pyvrp_engine.removal_violations(problem, 0, seq, orders)
        for o, value in zip(orders, predicted.tolist(), strict=True):
            rest = [t for t in seq if problem.tasks[t].order != o]
            without, _ = _initial_solution(problem, data, type_vehicles, {0: rest})
            assert without is not None
            (route,) = without.routes()
            assert value == route.time_warp() + route.excess_distance(), (seed, o)
            checked += 1
            late_at_visits += any(visit.time_warp > 0 for visit in route.schedule()[1:-1])
    assert checked > 200 and late_at_visits > 100


def test_the_predicted_violation_counts_release_times() -> None:
    """Orders created during the day: PyVRP's trip leaves once the clients it keeps are
    released, and a release after the latest start that keeps the rest on time is time warp;
    the prediction follows it (before session 62 it had no release times: 78 of the 236
    removals checked came out lower than PyVRP's)."""
    checked = released = 0
    for seed in range(80):
        case = _out_of_order_route(seed, released=True)
        if case is None:
            continue
        problem, seq = case
        data, type_vehicles, _ = build_data(problem)
        orders = sorted({problem.tasks[t].order for t in seq})
        predicted = pyvrp_engine.removal_violations(problem, 0, seq, orders)
        blind = pyvrp_engine.removal_violations(
            dataclasses.replace(
                problem, tasks=tuple(dataclasses.replace(t, release=0) for t in problem.tasks)
            ),
            0,
            seq,
            orders,
        )
        for o, value, unreleased in zip(orders, predicted.tolist(), blind.tolist(), strict=True):
            rest = [t for t in seq if problem.tasks[t].order != o]
            without, _ = _initial_solution(problem, data, type_vehicles, {0: rest})
            assert without is not None
            (route,) = without.routes()
            assert value == route.time_warp() + route.excess_distance(), (seed, o)
            checked += 1
            released += value != unreleased
    assert checked > 200 and released > 50  # 236 and 78


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num_orders=st.integers(20, 80),
    num_vehicles=st.integers(1, 3),
    seed=st.integers(0, 10_000),
)
def test_the_start_from_a_feasible_plan_is_feasible_for_pyvrp(
    num_orders: int, num_vehicles: int, seed: int
) -> None:
    """Whatever the plan with breaks, the start PyVRP gets from it is feasible in its model,
    and only orders taken out of it are missing."""
    s = _busy_day(num_orders, num_vehicles, seed)
    greedy = solve_routes(s, RoutingParams(engine="greedy", seed=1))
    start, trimmed = _pyvrp_start(s, greedy, trim=True)
    assert start.is_feasible()
    served = sum(1 for r in greedy.routes for st_ in r.stops if st_.order_id is not None)
    assert start.num_clients() == served - len(trimmed)
    assert len(set(trimmed)) == len(trimmed)


def test_a_search_that_ends_dearer_than_its_trimmed_start_returns_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyVRP's own objective prices the orders trimmed from its start by their prizes, so its
    search can end dearer than that start once both are repaired (the city-1000 pickup day at
    10 s: 1,294,960 against 1,280,610 cents); the cheaper of the two is the answer."""
    from solvers.routing import solve as solve_module
    from solvers.routing.engines.base import EngineResult
    from solvers.routing.greedy import greedy_routes

    s = _skilled_city(penalty_cents=50_000)
    # no greedy plan of its own to fall back to (as for PyVRP below 1,200 visits with breaks)
    monkeypatch.setattr(solve_module, "_pyvrp_needs_greedy", lambda problem: False)
    plans = {}
    for with_start in (False, True):

        def fake_solve(
            self: PyVRPEngine, problem: object, settings: object, with_start: bool = with_start
        ) -> EngineResult:
            start, _ = greedy_routes(problem)  # type: ignore[arg-type]
            dropped = next(v for v, seq in start.items() if seq)
            ended = {v: ([] if v == dropped else list(seq)) for v, seq in start.items()}
            return EngineResult(routes=ended, start_routes=start if with_start else None)

        monkeypatch.setattr(PyVRPEngine, "solve", fake_solve)
        plans[with_start] = solve_routes_with_stats(
            s, RoutingParams(engine="pyvrp", seed=1, time_limit_s=5)
        )
    (without, _), (plan, stats) = plans[False], plans[True]
    assert validate_plan(s, plan).ok
    assert len(plan.unassigned) < len(without.unassigned)
    assert plan.cost_cents < without.cost_cents
    assert any("dearer than the starting plan" in n for n in stats.notes)
    assert not any("dearer than the starting plan" in n for n in plans[False][1].notes)


def test_prizes_near_the_int64_range_stay_positive_and_in_range() -> None:
    """A dedicated route of ~1.4e18 milli-cents (within the checked range): ten times it
    wrapped around in int64 into a negative prize for a mandatory order."""
    s = make_city(2, time_windows=[])
    orders = [
        o.model_copy(update={"location": Location(x=1e9 * (1 if i else -1), y=1e9)})
        for i, o in enumerate(s.orders)
    ]
    courier = Vehicle(id="v0", start_location=Location(x=0, y=0), cost_per_km_cents=5 * 10**8)
    s = s.model_copy(
        update={
            "orders": orders,
            "vehicles": [courier],
            "horizon": TimeWindow(start_s=0, end_s=MAX_INT),
            "travel": EuclideanTravel(speed_m_per_s=1000.0),
        }
    )
    problem = build_problem(s)
    prizes = _prizes(problem)
    assert all(prize > 10**18 for prize in prizes)
    assert sum(prizes) <= 2**61


def _client_and_shipment() -> Scenario:
    """A delivery and a pickup-and-delivery pair; the van with no distance limit can do both
    on one route (15,852 m), the bike only the delivery (its own route: 20,659 m in all)."""
    depot = Location(x=5613, y=3522)
    return Scenario(
        horizon=TimeWindow(start_s=0, end_s=28_800),
        travel=EuclideanTravel(speed_m_per_s=10.0),
        orders=[
            Order(
                id="pair",
                location=Location(x=501, y=5721),
                service_s=120,
                demand=[1],
                pickup=PickupSpec(location=Location(x=5971, y=6340), service_s=300),
            ),
            Order(id="drop", location=Location(x=7378, y=6398), service_s=60, demand=[2]),
        ],
        vehicles=[
            Vehicle(
                id="bike",
                start_location=depot,
                shift=TimeWindow(start_s=4121, end_s=24_310),
                max_distance_m=11_057,
            ),
            Vehicle(id="van", start_location=depot, shift=TimeWindow(start_s=6123, end_s=22_738)),
        ],
    )


def test_neighbour_lists_are_not_cut_short_by_shipments() -> None:
    # was: PyVRP's lists hold (clients + shipments - 1) activities less the own delivery:
    # with one client and one shipment both were empty
    data, _, _ = build_data(build_problem(_client_and_shipment()))
    got = {
        (a.type.name, a.idx): sorted((b.type.name, b.idx) for b in near)
        for a, near in pyvrp_engine.neighbours(data, pyvrp.search.NeighbourhoodParams()).items()
    }
    assert got == {
        ("CLIENT", 0): [("DELIVERY", 0), ("PICKUP", 0)],
        ("PICKUP", 0): [("CLIENT", 0)],
    }


def test_a_delivery_and_a_pair_share_a_route() -> None:
    # was: 20,659 m on two routes whatever the iterations or the seed (the search never
    # tried moving the delivery next to the pair's visits)
    s = _client_and_shipment()
    plan = solve_routes(s, RoutingParams(engine="pyvrp", time_limit_s=5, max_iterations=300))
    assert [(r.vehicle_id, len(r.stops)) for r in plan.routes] == [("van", 3)]
    assert plan.distance_m == 15_852


def test_a_mandatory_order_is_not_left_out_for_an_optional_one() -> None:
    # was: with breaks the mandatory order became optional with a prize of ten dedicated
    # trips (about 0.1 cents per metre here), below the optional order's 1,000 euro penalty:
    # the van took the optional order and left the mandatory one out
    brk = Break(window=TimeWindow(start_s=27_266, end_s=28_800), duration_s=300)
    van = Vehicle(
        id="v",
        start_location=Location(x=2172, y=5938),
        capacity=[4],
        fixed_cost_cents=100,
        cost_per_km_cents=10,
        cost_per_hour_cents=2500,
        breaks=[brk],
    )
    s = Scenario(
        horizon=TimeWindow(start_s=0, end_s=28_800),
        travel=EuclideanTravel(speed_m_per_s=10.0),
        orders=[
            Order(id="must", location=Location(x=1396, y=6450), service_s=60, demand=[2]),
            Order(id="may", location=Location(x=5928, y=7695), demand=[3], penalty_cents=100_000),
        ],
        vehicles=[van],
    )
    plan = solve_routes(s, RoutingParams(engine="pyvrp", time_limit_s=5, max_iterations=300))
    assert [st.order_id for st in plan.routes[0].stops if st.order_id] == ["must"]
    assert [u.order_id for u in plan.unassigned] == ["may"]
    p = build_problem(s)
    assert _prizes(p)[0] > (p.orders[1].penalty or 0) > 0


def test_the_fewest_mandatory_orders_are_left_out() -> None:
    # was: each mandatory order's prize was ten times its own dedicated trip, so leaving out
    # three orders near the depot looked cheaper to PyVRP than two far ones (three left out
    # whatever the seed or the iterations; OR-Tools leaves out two)
    def order(i: int, x: int, y: int, demand: int, **kw: object) -> Order:
        return Order(id=f"o{i}", location=Location(x=x, y=y), demand=[demand], **kw)

    orders = [
        order(0, 4893, 2075, 2, time_windows=[TimeWindow(start_s=21_636, end_s=22_625)]),
        order(1, 6015, 6559, 0),
        order(
            2, 1303, 7602, 3, service_s=60, time_windows=[TimeWindow(start_s=20_537, end_s=27_276)]
        ),
        order(3, 3628, 2810, 2),
        order(4, 7217, 146, 2, service_s=600),
        order(5, 1648, 5325, 0, service_s=600),
    ]
    van = Vehicle(
        id="v",
        start_location=Location(x=2038, y=1712),
        capacity=[5],
        cost_per_km_cents=10,
        max_duration_s=2268,
    )
    s = Scenario(
        horizon=TimeWindow(start_s=0, end_s=28_800),
        travel=EuclideanTravel(speed_m_per_s=10.0),
        orders=orders,
        vehicles=[van],
    )
    plan = solve_routes(s, RoutingParams(engine="pyvrp", time_limit_s=5, max_iterations=300))
    assert len(plan.unassigned) == 2
    assert len(set(_prizes(build_problem(s)))) == 1


def _search_owner(pid_file: str, poll: bool = True) -> None:
    """A job process's part: start one search busy for a minute (its process notes its pid)
    and wait for it; without ``poll`` the search does not watch for its parent's end."""
    from pathlib import Path

    if not poll:
        pyvrp_engine._exit_with_parent = lambda parent: None

    def busy(*args: object, **kwargs: object) -> None:
        Path(pid_file).write_text(str(os.getpid()))
        time.sleep(60)

    pyvrp_engine._solve = busy  # type: ignore[assignment]
    problem = build_problem(make_city())
    data, _, decode = build_data(problem)
    end = time.perf_counter() + 120
    pyvrp_engine.collect_searches([pyvrp_engine.SearchRun(data, decode, end, None, 1, None)], end)


def _gone(pid: int) -> bool:
    """True when no process of this pid runs (a zombie waiting for its reaper counts)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
@pytest.mark.parametrize(
    "poll",
    [
        True,
        pytest.param(
            False,
            marks=pytest.mark.skipif(
                not sys.platform.startswith("linux"), reason="the kernel's parent-death signal"
            ),
        ),
    ],
)
def test_a_search_worker_ends_with_the_process_that_forked_it(tmp_path: Path, poll: bool) -> None:
    """A job process killed by a cancel or its time limit left its forked searches behind:
    the busy one searched on, and an idle one waited for work for ever. On Linux the kernel
    kills the search with its parent, without its poll of the parent's pid (every 0.5 s)."""
    import multiprocessing
    import signal
    import time

    pid_file = tmp_path / "pids"
    owner = multiprocessing.get_context("fork").Process(
        target=_search_owner, args=(str(pid_file), poll)
    )
    owner.start()
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and owner.is_alive()
        time.sleep(0.02)
    workers = [int(pid) for pid in pid_file.read_text().split()]
    assert owner.pid is not None
    os.kill(owner.pid, signal.SIGKILL)
    owner.join()
    try:
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(_gone(pid) for pid in workers)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


#: Routes of iteration-budgeted PyVRP runs (seed 3, 40 iterations, a 300 s cap that never
#: binds) as the code of session 46 answered them: "vehicle: stops", a pickup marked ^.
ITERATION_BUDGETED_ROUTES = {
    "c101": [
        "1: 81 78 76 71 70 73 77 79 80",
        "2: 32 33 31 35 37 38 39 36 34",
        "3: 20 24 25 27 29 30 28 26 23 22 21",
        "4: 13 17 18 19 15 16 14 12",
        "5: 5 3 7 8 10 11 9 6 4 2 1 75",
        "6: 98 96 95 94 92 93 97 100 99",
        "7: 90 87 86 83 82 84 85 88 89 91",
        "8: 67 65 63 62 74 72 61 64 68 66 69",
        "9: 43 42 41 40 44 46 45 48 51 50 52 49 47",
        "10: 57 55 54 53 56 58 60 59",
    ],
    "lc101": [
        "1: 55^ 55 60^ 58^ 59^ 58 60 59",
        "2: 70^ 104^ 104 73^ 77^ 70 73 77 80^ 80",
        "3: 7^ 75^ 7 10^ 10 1^ 4^ 2^ 4 2 1 75",
        "4: 88^ 83^ 91^ 83 85^ 89^ 85 88 89 91",
        "5: 95^ 94^ 95 94 93^ 93 106^ 106 99^ 99",
        "6: 24^ 24 27^ 27 26^ 21^ 22^ 26 103^ 103 22 21",
        "7: 61^ 72^ 74^ 68^ 74 72 61 102^ 102 68 69^ 69",
        "8: 41^ 40^ 41 40 46^ 46 48^ 48 101^ 101 52^ 52 47^ 47",
        "9: 17^ 17 12^ 15^ 15 14^ 14 12",
        "10: 31^ 37^ 31 39^ 37 34^ 39 105^ 105 34",
    ],
    # with breaks: since session 49 the search's routes (the van began o00026 o00027) go
    # through the break-aware post-optimisation: 12 moves, 31,755,284 -> 30,839,522
    # milli-cents (solvers/routing/polish.py). Since session 62 no route leaves its start
    # before the orders it carries there are created (their created_s): the routes before
    # (124,447 cents, 21 orders out) left with 7 orders not yet created (o00037 at 64,841 s
    # on the van leaving at 57,336 s, ...); then 136,716 cents, 25 out (7 released too
    # late). Since session 63 a break may be taken at the start while the route waits for
    # its orders (the van's from 61,200 s, leaving at 71,853 s): 130,983 cents, 24 out (5
    # released too late)
    "city60": [
        "van-001: break o00037 o00045 o00040 o00033 o00035 o00034 o00032 o00038 o00039",
        "bike-001: o00020 break o00019 o00030 o00024 o00029 o00031 o00028 o00025",
        ("bike-002: break o00009 o00023 o00010 o00018 o00027 o00012 o00017 o00022 o00021 o00026"),
        "bike-003: break o00016 o00007 o00004 o00003 o00014 o00006 o00011 o00005 o00013",
    ],
}


def _iteration_budget_case(name: str, instances_dir: Path) -> Scenario:
    """The scenarios of :data:`ITERATION_BUDGETED_ROUTES`: Solomon C101, Li & Lim lc101 and
    a generated city day of 60 orders with breaks."""
    from scenarios.generate import CityParams, generate_city
    from scenarios.io import load_scenario

    if name == "c101":
        return load_scenario(instances_dir / "solomon" / "C101.txt")
    if name == "lc101":
        return load_scenario(instances_dir / "lilim" / "lc101.txt")
    v1 = CityParams(generator_version=1)  # the fleet the routes above were recorded on
    return generate_city(seed=2, num_orders=60, num_nodes=3, num_couriers=4, params=v1)


def _route_lines(plan: Plan) -> list[str]:
    """Each route as "vehicle: stops" (order ids, a pickup marked ^, a break as 'break')."""
    lines = []
    for route in plan.routes:
        stops = [
            "break"
            if st.kind.value == "break"
            else f"{st.order_id}{'^' if st.kind.value == 'pickup' else ''}"
            for st in route.stops
        ]
        lines.append(f"{route.vehicle_id}: {' '.join(stops)}")
    return lines


@pytest.mark.parametrize("name", sorted(ITERATION_BUDGETED_ROUTES))
def test_iteration_budgeted_searches_answer_as_before(name: str, instances_dir: Path) -> None:
    """A search stopped by its iteration budget (the RL hindsight's runs) gives the routes it
    gave before its searches ran in killable processes under a hard deadline."""
    scenario = _iteration_budget_case(name, instances_dir)
    params = RoutingParams(engine="pyvrp", time_limit_s=300, seed=3, max_iterations=40)
    plan, stats = solve_routes_with_stats(scenario, params)
    assert "iterations 40" in stats.detail
    assert _route_lines(plan) == ITERATION_BUDGETED_ROUTES[name]


def test_a_search_in_its_own_process_answers_as_in_this_one(c101_25: Scenario) -> None:
    """The forked search, reporting its best solutions, is the same search: same seed, same
    iterations, same routes as :func:`pyvrp_engine._run` here."""
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    far = time.perf_counter() + 300
    feasible, cost, sol, iterations, _ = pyvrp_engine._run(data, far, 60, 5, None)
    run = pyvrp_engine.SearchRun(data, decode, far, 60, 5, None)
    [outcome] = pyvrp_engine.collect_searches([run], far)
    assert (outcome.feasible, outcome.cost, outcome.iterations) == (feasible, cost, iterations)
    assert outcome.routes == decode(sol)
    assert not outcome.killed


def _after_five_iterations(
    monkeypatch: pytest.MonkeyPatch,
    then: Callable[[pyvrp.Result, pyvrp_engine.Reporter | None], None],
) -> None:
    """Make each PyVRP search run 5 iterations, then call ``then`` with its result and its
    reporter (in the search process) before it returns the result."""
    real = pyvrp_engine._solve

    def after_five(
        data: pyvrp.ProblemData,
        stop: object,
        seed: int,
        init: pyvrp.Solution | None,
        max_penalty: float | None,
        report: pyvrp_engine.Reporter | None = None,
    ) -> pyvrp.Result:
        from pyvrp.stop import MaxIterations

        res = real(data, MaxIterations(5), seed, init, max_penalty)
        then(res, report)
        return res

    monkeypatch.setattr(pyvrp_engine, "_solve", after_five)


def _stuck_search(
    monkeypatch: pytest.MonkeyPatch, stuck_s: float, pid_file: Path | None = None
) -> None:
    """Make each PyVRP search report a feasible solution after 5 iterations, note its pid in
    ``pid_file`` (if given) and then spend ``stuck_s`` in one iteration (an exhaustive search
    of a new best that does not watch the clock)."""

    def stuck(res: pyvrp.Result, report: pyvrp_engine.Reporter | None) -> None:
        if report is not None:
            report(res.best, 5)
        if pid_file is not None:
            pid_file.write_text(str(os.getpid()))
        time.sleep(stuck_s)

    _after_five_iterations(monkeypatch, stuck)


def _deadline_at_first(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Make the searches' deadline come (the engine's clock jump past it) as soon as the
    solve has read a message of ``kind`` from a search process: ``"best"``, its first new
    best solution, or ``"pid"``, its first message. A test of what happens at the deadline
    then reaches it with the search started and reporting, however slowly a loaded machine
    forks and runs it: at a 1-1.5 s limit the greedy plan answered when the set-up left no
    time to start the search, and the search's report could come after its kill."""
    came = [False]
    real_read = pyvrp_engine._Child.read

    def read(self: Any, until: float | None = None) -> list[Any]:
        msgs = real_read(self, until)
        came[0] = came[0] or any(msg[0] == kind for msg in msgs)
        return msgs

    real_clock = time.perf_counter

    def clock() -> float:
        return real_clock() + (1e6 if came[0] else 0.0)

    clocks = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    monkeypatch.setattr(pyvrp_engine._Child, "read", read)
    monkeypatch.setattr(pyvrp_engine, "time", SimpleNamespace(**{**clocks, "perf_counter": clock}))


def test_a_search_stuck_in_an_iteration_at_its_end_is_stopped_with_its_best_so_far(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyVRP looks at the clock only between iterations, and one iteration (the exhaustive
    search of a new best) took seconds on the 1,000-job pickup city day: the 10 s solve
    answered after 13 s. The search runs in a process killed at its end, its best so far
    kept. (Its end comes once its report is read, whatever the machine's speed.)"""
    stuck_s = 120.0  # the kill's margin: a loaded machine (load ~300) took 20 s to report
    _stuck_search(monkeypatch, stuck_s=stuck_s)
    _deadline_at_first(monkeypatch, "best")
    t = time.perf_counter()
    params = RoutingParams(engine="pyvrp", time_limit_s=UNHURRIED_S, seed=1, num_workers=1)
    plan, stats = solve_routes_with_stats(c101_25, params)
    took = time.perf_counter() - t
    # killed at the search's end, not after the 120 s the iteration takes
    assert took < stuck_s / 3, took
    assert plan.engine == "pyvrp"
    assert "1 search(es) stopped mid-iteration at the time limit" in stats.detail
    assert "iterations 5" in stats.detail
    assert validate_plan(c101_25, plan).ok
    assert not plan.unassigned


def test_a_stuck_search_without_a_solution_gives_the_greedy_plan(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed before it found any feasible plan, a search is a failed one: the greedy plan.
    (Its end comes once its process is up, whatever the machine's speed.)"""

    stuck_s = 120.0  # as in the test above

    def stuck(*args: object, **kwargs: object) -> pyvrp.Result:
        time.sleep(stuck_s)
        raise AssertionError("killed before")

    monkeypatch.setattr(pyvrp_engine, "_solve", stuck)
    _deadline_at_first(monkeypatch, pyvrp_engine._HELLO)  # once the search process is up
    plan, stats = solve_routes_with_stats(
        c101_25, RoutingParams(engine="pyvrp", time_limit_s=UNHURRIED_S, seed=1)
    )
    # killed at its end, not after the 120 s it sleeps
    assert stats.engine_s < stuck_s / 3, stats.engine_s
    assert plan.engine == "greedy (fallback from pyvrp)"
    assert stats.fallback is not None and "no feasible solution" in stats.fallback
    assert validate_plan(c101_25, plan).ok


def test_an_error_in_a_search_process_is_raised_here(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception in the forked search reaches the caller, as it did in this process.

    A limit of 30 s, not 1 s, though the search fails at once: the search must start (left
    time over PyVRP's start estimate) and its process call ``_solve`` before its end, which a
    loaded machine's greedy start and fork can delay past 1 s (then the greedy plan answered
    and nothing was raised)."""

    def broken(*args: object, **kwargs: object) -> pyvrp.Result:
        raise ValueError("broken search")

    monkeypatch.setattr(pyvrp_engine, "_solve", broken)
    with pytest.raises(ValueError, match="broken search"):
        solve_routes(c101_25, RoutingParams(engine="pyvrp", time_limit_s=30.0))


def _children() -> set[int]:
    """The pids of this process's children (zombies included), from /proc."""
    me, out = os.getpid(), set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            with (
                contextlib.suppress(OSError, IndexError, ValueError),
                open(f"/proc/{name}/stat", encoding="ascii") as fh,
            ):
                if int(fh.read().rsplit(")", 1)[1].split()[1]) == me:
                    out.add(int(name))
    return out


@contextlib.contextmanager
def _when_written(path: Path, then: Any) -> Iterator[None]:
    """While inside, a thread calls ``then(int(path's text))`` once ``path`` has a pid; never
    after: it is stopped and joined on the way out (it once could signal a later test)."""
    import threading

    stop = threading.Event()

    def watch() -> None:
        limit = time.monotonic() + 30
        while time.monotonic() < limit and not stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                then(int(path.read_text()))
                return
            stop.wait(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_when_written_calls_nothing_once_left(tmp_path: Path) -> None:
    """A pid written only after the block (the solve ended, or failed, before its search
    wrote it) is not acted on: the watcher sent the test process SIGINT up to 30 s later,
    into whatever test ran then."""
    pid_file = tmp_path / "pid"
    called: list[int] = []
    with _when_written(pid_file, called.append):
        pass
    pid_file.write_text("123")
    time.sleep(0.2)
    assert called == []
    with _when_written(pid_file, called.append):
        deadline = time.monotonic() + 10
        while not called and time.monotonic() < deadline:
            time.sleep(0.01)
    assert called == [123]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_search_process_runs_none_of_the_parents_signal_handlers(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A search process inherited the service's signal handlers: sent SIGTERM, it ran the
    handler (the service's raises SystemExit), and the solve that forked it raised SystemExit.
    Now it dies by the signal and its best so far is kept."""
    import signal

    ran_in = tmp_path / "handler"

    def handler(signum: int, frame: object) -> None:
        ran_in.write_text(str(os.getpid()))
        raise SystemExit(0)

    pid_file = tmp_path / "pid"
    _stuck_search(monkeypatch, 30.0, pid_file)
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    end = time.perf_counter() + 30
    run = pyvrp_engine.SearchRun(data, decode, end, None, 1, None)
    before = _children()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with _when_written(pid_file, lambda pid: os.kill(pid, signal.SIGTERM)):
            t = time.perf_counter()
            [outcome] = pyvrp_engine.collect_searches([run], end)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not ran_in.exists()
    assert time.perf_counter() - t < 20
    assert outcome.feasible and outcome.iterations == 5
    assert not outcome.killed and outcome.ended == "killed by SIGTERM"  # not by the deadline
    assert _children() == before


def test_a_collection_in_a_search_process_finalizes_none_of_the_parents_objects(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The parent's garbage (a cycle whose finalizer gives back a pooled connection, say) was
    finalized by a garbage collection in the search process, on resources it shares."""
    import gc

    finalized = tmp_path / "finalized"

    class Pooled:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            with open(finalized, "a", encoding="ascii") as fh:
                fh.write(f"{os.getpid()}\n")

    real = pyvrp_engine._solve

    def collecting(*args: Any, **kwargs: Any) -> pyvrp.Result:
        gc.collect()
        return real(*args, **kwargs)

    monkeypatch.setattr(pyvrp_engine, "_solve", collecting)
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    far = time.perf_counter() + 300
    run = pyvrp_engine.SearchRun(data, decode, far, 5, 1, None)
    gc.disable()
    try:
        # garbage (a cycle) not yet collected here: in the youngest generation, which the
        # collections of both processes look at (in this one the youngest alone: a full
        # collection of an xdist worker's heap took seconds)
        Pooled()
        [outcome] = pyvrp_engine.collect_searches([run], far)
    finally:
        gc.enable()
    gc.collect(0)
    assert outcome.feasible and not outcome.killed
    assert finalized.read_text().split() == [str(os.getpid())]


class _Unpicklable(Exception):
    """An error that cannot be sent between processes (it holds a lambda)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.hook = lambda: None


def test_an_error_that_cannot_be_pickled_is_still_raised_here(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search error that could not be pickled was lost: the search counted as one that
    found nothing. It is raised by its type and text."""

    def broken(*args: object, **kwargs: object) -> pyvrp.Result:
        raise _Unpicklable("no pickle for me")

    monkeypatch.setattr(pyvrp_engine, "_solve", broken)
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    end = time.perf_counter() + 30
    run = pyvrp_engine.SearchRun(data, decode, end, None, 1, None)
    with pytest.raises(RuntimeError, match="_Unpicklable: no pickle for me"):
        pyvrp_engine.collect_searches([run], end)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_no_search_process_outlives_its_solve(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ended by itself, killed at its end, or its parent interrupted (Ctrl-C) while it
    gathers: no search process is left running or unreaped."""
    import signal

    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    before = _children()
    far = time.perf_counter() + 300
    runs = [pyvrp_engine.SearchRun(data, decode, far, 5, s, None) for s in (1, 2)]
    assert all(not o.killed for o in pyvrp_engine.collect_searches(runs, far))
    assert _children() == before
    pid_file = tmp_path / "pid"
    _stuck_search(monkeypatch, 30.0, pid_file)
    end = time.perf_counter() + 1.0
    runs = [pyvrp_engine.SearchRun(data, decode, end, None, s, None) for s in (1, 2)]
    assert all(o.killed for o in pyvrp_engine.collect_searches(runs, end))
    assert _children() == before
    pid_file.unlink()
    # Ctrl-C once a search runs and the searches are gathered: a SIGINT that a loaded machine
    # delivered while the second search was being forked had its handler run in the fork's
    # at-fork hooks (logging's lock release), which drop exceptions: the interrupt was lost,
    # the searches ran to their end ("DID NOT RAISE", in a whole-suite run at load 11-16)
    gathering = threading.Event()
    real_gather = pyvrp_engine._gather

    def noted_gather(*args: Any) -> Any:
        gathering.set()
        return real_gather(*args)

    def interrupt(pid: int) -> None:
        if gathering.wait(30):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(pyvrp_engine, "_gather", noted_gather)
    end = time.perf_counter() + 30
    t = time.perf_counter()
    # no collection meanwhile: a SIGINT whose handler ran inside a gc callback (hypothesis
    # installs one in the test process) raised there, and the collector swallowed it
    # ("DID NOT RAISE", a package run under load, session 82)
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(KeyboardInterrupt), _when_written(pid_file, interrupt):
            pyvrp_engine.collect_searches(runs, end)
    finally:
        if gc_was_on:
            gc.enable()
    assert time.perf_counter() - t < 20
    assert _children() == before


def test_a_search_forked_while_another_thread_holds_the_log_lock_answers(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forked from a process whose other thread holds a log handler's lock (the service's
    threads log), the search process logs and answers: its locks are not held by a thread
    it does not have."""
    import io
    import logging
    import threading

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("tests.pyvrp_fork")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    real = pyvrp_engine._solve

    def logging_solve(*args: Any, **kwargs: Any) -> pyvrp.Result:
        log.info("search starts in %s", os.getpid())
        return real(*args, **kwargs)

    monkeypatch.setattr(pyvrp_engine, "_solve", logging_solve)
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    far = time.perf_counter() + 300
    feasible, cost, sol, iterations, _ = pyvrp_engine._run(data, far, 20, 5, None)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with handler.lock:  # type: ignore[union-attr]
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    held.wait(10)
    try:
        end = time.perf_counter() + 20
        run = pyvrp_engine.SearchRun(data, decode, end, 20, 5, None)
        [outcome] = pyvrp_engine.collect_searches([run], end)
    finally:
        release.set()
        holder.join()
        log.removeHandler(handler)
    assert not outcome.killed
    assert (outcome.feasible, outcome.cost, outcome.iterations) == (feasible, cost, iterations)
    assert outcome.routes == decode(sol)


def test_a_socket_closed_here_takes_no_connection_while_a_search_runs(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The search process inherited every descriptor: the service's listening socket, closed
    at its shutdown, still took connections that nobody accepted while a search ran on."""
    import signal
    import socket

    pid_file = tmp_path / "pid"
    _stuck_search(monkeypatch, 10.0, pid_file)
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    address = listener.getsockname()
    connected: list[bool] = []

    def close_and_connect(pid: int) -> None:
        listener.close()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            connected.append(client.connect_ex(address) == 0)
        os.kill(pid, signal.SIGKILL)  # the search need not run on

    end = time.perf_counter() + 30
    run = pyvrp_engine.SearchRun(data, decode, end, None, 1, None)
    with _when_written(pid_file, close_and_connect):
        [outcome] = pyvrp_engine.collect_searches([run], end)
    assert connected == [False]
    assert outcome.feasible and outcome.ended == "killed by SIGKILL"


def test_a_search_forked_while_another_thread_imports_answers(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Forked while another thread is inside an import (holding that module's import lock,
    which no thread of the search process would ever release), the search answers: it
    imports nothing."""
    import sys
    import threading

    # the import ends when this test lets it (a byte on the pipe), after the search: it
    # slept 2 s, which a slow fork and search could outlast
    release_read, release = os.pipe()
    (tmp_path / "slow_import_h6.py").write_text(
        f"import os\nSTARTED = True\nos.read({release_read}, 1)\n", encoding="ascii"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    far = time.perf_counter() + 300
    importer = threading.Thread(target=lambda: __import__("slow_import_h6"), daemon=True)
    importer.start()
    try:
        limit = time.monotonic() + 10
        while "slow_import_h6" not in sys.modules and time.monotonic() < limit:
            time.sleep(0.01)
        end = time.perf_counter() + 20
        run = pyvrp_engine.SearchRun(data, decode, end, 20, 5, None)
        [outcome] = pyvrp_engine.collect_searches([run], end)
        assert importer.is_alive()  # the import lock was held all along
    finally:
        os.write(release, b"x")
        importer.join(10)
        os.close(release)
        os.close(release_read)
    sys.modules.pop("slow_import_h6", None)
    feasible, cost, sol, iterations, _ = pyvrp_engine._run(data, far, 20, 5, None)
    assert not outcome.killed
    assert (outcome.feasible, outcome.cost, outcome.iterations) == (feasible, cost, iterations)
    assert outcome.routes == decode(sol)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
@pytest.mark.parametrize("threaded", [False, True], ids=["one thread", "another thread"])
def test_an_interrupt_right_after_the_fork_leaves_no_search_behind(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, threaded: bool
) -> None:
    """Ctrl-C arriving as the search was forked raised before its pid was noted: the search
    ran on to its end, and stayed unreaped. With another thread in the process the signal
    goes to that thread (the forking one blocks it) and is raised in the main thread at once,
    before the pid is noted: the search is found by its first message."""
    import signal
    import threading

    if threaded:
        idle = threading.Event()
        other = threading.Thread(target=idle.wait, daemon=True)
        other.start()

    real_fork = os.fork
    forked: list[int] = []

    def fork_then_interrupt() -> int:
        pid = real_fork()
        if pid != 0:
            forked.append(pid)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # another thread takes the signal meanwhile, if there is one
        return pid

    pid_file = tmp_path / "pid"
    _stuck_search(monkeypatch, 30.0, pid_file)
    monkeypatch.setattr(os, "fork", fork_then_interrupt)
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    end = time.perf_counter() + 60
    run = pyvrp_engine.SearchRun(data, decode, end, None, 1, None)
    try:
        with pytest.raises(KeyboardInterrupt):
            pyvrp_engine.collect_searches([run], end)
    finally:
        if threaded:
            idle.set()
            other.join()
    monkeypatch.undo()
    # the search itself, not any child: another test's helper process started in the
    # background may appear meanwhile (this test counted every child and failed under load)
    assert len(forked) == 1
    left = forked[0] in _children()  # running, or a zombie nobody reaped
    if left:
        os.kill(forked[0], signal.SIGKILL)
        os.waitpid(forked[0], 0)
    assert not left


def test_large_reports_do_not_hold_up_the_deadline(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New best solutions of a 10,000-order day, many times the pipe's buffer each, sent up
    to the deadline: the answer still comes at the deadline, with the last one sent."""

    def flooding(res: pyvrp.Result, report: pyvrp_engine.Reporter | None) -> None:
        assert report is not None
        for k in range(10**6):
            report(res.best, k)  # each one a new best (see decode below)

    sent = [0]

    def big_decode(sol: pyvrp.Solution) -> dict[int, list[int]]:
        sent[0] += 1
        return {v: list(range(sent[0], sent[0] + 40)) for v in range(250)}  # 10,000 stops

    cheaper = iter(range(10**9, 0, -1))
    _after_five_iterations(monkeypatch, flooding)
    monkeypatch.setattr(pyvrp.CostEvaluator, "cost", lambda self, sol: next(cheaper))
    problem = build_problem(c101_25)
    data, _, _ = build_data(problem)
    end = time.perf_counter() + 1.5
    run = pyvrp_engine.SearchRun(data, big_decode, end, None, 1, None)
    [outcome] = pyvrp_engine.collect_searches([run], end)
    late = time.perf_counter() - end
    # held up, the answer would wait for the flood's end (10**6 reports: 16-20 min at the
    # 840-1,030 a second sent here); at the deadline it came 0.007-0.013 s late alone at a
    # load of 12, and 0.59 s late once in the whole suite beside two busy loops (a bound of
    # 0.3 s then failed): 5 s is far from both
    assert late < 5.0, late
    assert outcome.killed and outcome.iterations > 10
    assert outcome.routes[0] == list(range(outcome.routes[0][0], outcome.routes[0][0] + 40))


def _dying_search(monkeypatch: pytest.MonkeyPatch, how: str, report_first: bool = True) -> None:
    """Make each PyVRP search report a feasible solution after 5 iterations (if
    ``report_first``) and then die without its outcome: by a segmentation fault ("segfault")
    or by ``os._exit(3)`` ("exit")."""
    import signal

    def dying(res: pyvrp.Result, report: pyvrp_engine.Reporter | None) -> None:
        if report is not None and report_first:
            report(res.best, 5)
        if how == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(30)
        os._exit(3)

    _after_five_iterations(monkeypatch, dying)


@pytest.mark.parametrize(
    ("how", "status"), [("segfault", "killed by SIGSEGV"), ("exit", "exit status 3")]
)
def test_a_search_process_that_dies_is_told_apart_from_one_stopped_at_its_end(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, how: str, status: str
) -> None:
    """A search process that died without its outcome (a crash, the OOM killer) counted as
    one stopped mid-iteration at the time limit: its outcome says how it ended (its best so
    far kept), and the searches are not waited for until the deadline."""
    _dying_search(monkeypatch, how)
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    end = time.perf_counter() + 30
    runs = [pyvrp_engine.SearchRun(data, decode, end, None, s, None) for s in (1, 2)]
    t = time.perf_counter()
    outcomes = pyvrp_engine.collect_searches(runs, end)
    assert time.perf_counter() - t < 15
    for outcome in outcomes:
        assert outcome.feasible and outcome.iterations == 5
        assert not outcome.killed and outcome.ended == status


def test_a_solve_whose_search_process_dies_says_so(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The detail (and, when the search found nothing, the fallback) says the search process
    ended unexpectedly and how, not that it was stopped at the time limit; the answer comes
    when it died, not at the deadline."""
    params = RoutingParams(engine="pyvrp", time_limit_s=20, seed=1, num_workers=1)
    _dying_search(monkeypatch, "segfault")
    t = time.perf_counter()
    plan, stats = solve_routes_with_stats(c101_25, params)
    assert time.perf_counter() - t < 10
    assert plan.engine == "pyvrp" and validate_plan(c101_25, plan).ok
    assert "1 search process(es) ended unexpectedly (seed 1: killed by SIGSEGV" in stats.detail
    assert "stopped mid-iteration" not in stats.detail
    monkeypatch.undo()
    _dying_search(monkeypatch, "exit", report_first=False)
    t = time.perf_counter()
    plan, stats = solve_routes_with_stats(c101_25, params)
    assert time.perf_counter() - t < 10
    assert plan.engine == "greedy (fallback from pyvrp)" and validate_plan(c101_25, plan).ok
    assert stats.fallback is not None
    assert "ended unexpectedly (seed 1: exit status 3" in stats.fallback


def _pipes() -> list[int]:
    """This process's file descriptors past the standard streams that are pipes."""
    import stat

    out = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if int(name) > 2 and stat.S_ISFIFO(os.fstat(int(name)).st_mode):
                out.append(int(name))
    return out


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_search_stalled_in_the_middle_of_a_report_does_not_hold_up_the_deadline(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A report that had started to arrive was read to its end, however long its search took
    to write the rest: a search stalled (or stopped) in the middle of one held the answer up
    past the deadline. The answer comes at the deadline, with the last whole report."""
    import signal
    import struct
    import threading

    pid_file = tmp_path / "pid"

    def stalling(res: pyvrp.Result, report: pyvrp_engine.Reporter | None) -> None:
        assert report is not None
        report(res.best, 5)
        [pipe] = _pipes()  # the search's own: it keeps no other descriptor
        # the length of a message of 1 MiB first (incomplete whether it is read as 4 bytes
        # or 8), then 64 bytes of it; the rest never comes
        os.write(pipe, struct.pack("!i", 1 << 20) + bytes(64))
        pid_file.write_text(str(os.getpid()))
        time.sleep(30)

    _after_five_iterations(monkeypatch, stalling)
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    end = time.perf_counter() + 1.5
    returned = threading.Event()

    def kill_late(pid: int) -> None:  # only if the reading waits on: the test fails, not hangs
        if not returned.wait(max(0.0, end + 8 - time.perf_counter())):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    run = pyvrp_engine.SearchRun(data, decode, end, None, 1, None)
    with _when_written(pid_file, kill_late):
        try:
            [outcome] = pyvrp_engine.collect_searches([run], end)
        finally:
            returned.set()
        late = time.perf_counter() - end
    # held up, the reading waits for the kill 8 s after the deadline; at the deadline it came
    # 0.011-0.013 s late alone at a load of 12 (its sibling above, 0.59 s once in the suite)
    assert late < 5.0, late
    assert outcome.feasible and outcome.killed and outcome.iterations == 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_search_process_asks_the_kernel_to_kill_it_with_its_parent() -> None:
    """A search process whose parent died searched on until its poll of the parent's pid
    (every 0.5 s) noticed: it now has the kernel send it SIGKILL then (PR_SET_PDEATHSIG), and
    exits at once if its parent died before it could ask."""
    import ctypes
    import signal

    def in_child(parent_of: Any) -> tuple[bytes, int]:
        """What a forked process calling ``_die_with_parent(parent_of())`` writes (whether
        it could and its parent-death signal after) and its exit code."""
        pyvrp_engine._prctl()  # loaded before the fork, as collect_searches does
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(r)
                done = pyvrp_engine._die_with_parent(parent_of())
                sig = ctypes.c_int(-1)
                ctypes.CDLL(None).prctl(pyvrp_engine.PR_GET_PDEATHSIG, ctypes.byref(sig), 0, 0, 0)
                os.write(w, f"{done} {sig.value}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        got = b""
        with open(r, "rb") as fh:
            got = fh.read()
        return got, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    assert in_child(os.getppid) == (f"True {int(signal.SIGKILL)}".encode(), 0)
    assert in_child(os.getpid) == (b"", 0)  # its "parent" is not its parent: gone


def test_an_interrupt_taken_during_the_fork_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    # A SIGINT another thread took while the main thread forked ran its handler inside the
    # fork's own hooks (logging's), which print and drop an exception: the KeyboardInterrupt
    # was lost and the solve ran on to its deadline. Here the fork runs the handler then and
    # drops what it raises, as those hooks do; the interrupt must still reach the caller,
    # after the child's pid was noted.
    import signal

    from solvers.routing.engines import pyvrp_engine

    def fork_with_a_hook() -> int:
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler)
        with contextlib.suppress(BaseException):
            handler(signal.SIGINT, None)
        return 4_000_000  # the parent's side: a pid, never a real process's

    monkeypatch.setattr(pyvrp_engine.os, "fork", fork_with_a_hook)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's
    try:
        pids: list[int] = []
        with pytest.raises(KeyboardInterrupt):
            pyvrp_engine._fork_quietly(pids.append)
        assert pids == [4_000_000]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_pyvrp_iteration_budget_the_clock_cuts_short_sets_clock_cut(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every search of the solve is looked at (the detail's first count was, before)."""
    monkeypatch.setattr(pyvrp_engine, "STALL_STOP", False)  # a long budget, cut by the clock
    cut = RoutingParams(engine="pyvrp", time_limit_s=0.5, max_iterations=10**9, num_workers=2)
    assert solve_routes_with_stats(c101_25, cut)[1].clock_cut
    whole = RoutingParams(engine="pyvrp", time_limit_s=60, max_iterations=20, num_workers=2)
    assert not solve_routes_with_stats(c101_25, whole)[1].clock_cut


def test_the_stall_count_fires_after_that_many_calls_without_a_better_cost() -> None:
    stall = Stall(3)
    assert [stall(c) for c in (10, 10, 9, 9, 9)] == [False, False, False, False, False]
    assert stall(9) and stall.fired  # three calls in a row since 9 was first seen
    assert not Stall(3)(5) and Stall(0)(5)
    late = Stall(2)  # its last improvement at the fourth call: it waits three more
    assert [late(c) for c in (10, 9, 8, 7, 7, 7)] == [False] * 6
    assert late(7) and late.since == 3  # what the detail says: 3 without a new best, not 2


def test_a_search_that_stalls_stops_early_with_the_plan_of_a_long_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A day of one or two orders took the whole time limit (8.6 s of the default 10 s) for
    the plan its first iteration had found: the search now stops once it has stalled."""
    day = make_city(2)
    quick = RoutingParams(engine="pyvrp", time_limit_s=UNHURRIED_S, seed=1, num_workers=1)
    plan, stats = solve_routes_with_stats(day, quick)
    stall = stall_iterations(build_problem(day))
    assert stall is not None
    assert f"stopped after {stall} iterations without a new best solution" in stats.detail
    assert not stats.clock_cut and not plan.time_limited
    monkeypatch.setattr(pyvrp_engine, "STALL_STOP", False)
    assert stall_iterations(build_problem(day)) is None
    long = quick.model_copy(update={"max_iterations": 10 * stall})
    long_plan, long_stats = solve_routes_with_stats(day, long)
    assert f"iterations {10 * stall}" in long_stats.detail and "stalled" not in long_stats.detail
    assert plan.cost_cents == long_plan.cost_cents


def test_a_budgeted_search_that_stalls_is_not_cut_by_the_clock() -> None:
    """Its iterations fall short of the budget, but not for lack of time."""
    params = RoutingParams(
        engine="pyvrp", time_limit_s=UNHURRIED_S, max_iterations=10**6, num_workers=1
    )
    plan, stats = solve_routes_with_stats(make_city(2), params)
    assert "stalled" in stats.detail
    assert not stats.clock_cut and not plan.time_limited


def _silent_stuck_search(monkeypatch: pytest.MonkeyPatch, stuck_s: float) -> None:
    """Make each PyVRP search spend ``stuck_s`` in its first iteration without reporting a
    solution (a first local search that does not end in time)."""
    _after_five_iterations(monkeypatch, lambda res, report: time.sleep(stuck_s))


def test_meanwhile_runs_on_a_thread_while_the_searches_run(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """:func:`collect_searches`' ``meanwhile`` runs beside the searches (not after them) on
    another thread, and its error is raised once they are collected; no search outlives it."""
    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    _silent_stuck_search(monkeypatch, 30.0)
    before = _children()
    seen: list[tuple[str, float]] = []
    end = time.perf_counter() + 1.0
    run = pyvrp_engine.SearchRun(data, decode, end, None, 1, None)
    [outcome] = pyvrp_engine.collect_searches(
        [run],
        end,
        lambda: seen.append((threading.current_thread().name, time.perf_counter())),
    )
    assert outcome.killed and not outcome.feasible
    [(thread, at)] = seen
    assert thread != threading.current_thread().name and at < end
    assert _children() == before

    def fail() -> None:
        raise ValueError("meanwhile failed")

    end = time.perf_counter() + 0.5
    run = pyvrp_engine.SearchRun(data, decode, end, None, 1, None)
    with pytest.raises(ValueError, match="meanwhile failed"):
        pyvrp_engine.collect_searches([run], end, fail)
    assert _children() == before


def test_meanwhile_is_cancelled_once_a_search_has_a_solution(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The work beside the searches is cancelled as soon as one reports a feasible solution,
    not when the searches end (the greedy plan built beside PyVRP slowed its iterations)."""
    from solvers.cancel import cancelled

    problem = build_problem(c101_25)
    data, _, decode = build_data(problem)
    _stuck_search(monkeypatch, 2.0)  # reports a solution, then 2 s in one iteration
    seen: list[float] = []

    def wait_for_cancel() -> None:
        t = time.perf_counter()
        while not cancelled() and time.perf_counter() - t < 30:
            time.sleep(0.005)
        seen.append(time.perf_counter())

    end = time.perf_counter() + 30
    run = pyvrp_engine.SearchRun(data, decode, end, None, 1, None)
    [outcome] = pyvrp_engine.collect_searches([run], end, wait_for_cancel)
    done = time.perf_counter()
    assert outcome.feasible and not outcome.killed
    [cancelled_at] = seen
    assert cancelled_at < done - 1.0


@pytest.mark.parametrize(("margin", "beside"), [(1e6, True), (1.5, False)])
def test_a_search_whose_start_may_not_fit_has_the_greedy_plan_built_beside_it(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch, margin: float, beside: bool
) -> None:
    """With less time left than ``ASIDE_MARGIN`` times PyVRP's estimated start, the greedy
    plan is built while the search runs, and answers whole when the search's first iteration
    does not end in time (session 81: 1,000 orders at 2 s, the greedy plan built after the
    failed search routed 266 of them); with time enough, it is not built."""
    from solvers.routing import solve as solve_module

    _silent_stuck_search(monkeypatch, 30.0)
    monkeypatch.setattr(PyVRPEngine, "min_time_s", lambda self, problem: 0.01)
    monkeypatch.setattr(solve_module, "ASIDE_MARGIN", margin)
    monkeypatch.setattr(solve_module, "usable_cpus", lambda: 2)
    threads: list[str] = []
    real_greedy = solve_module._greedy

    def noted_greedy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real_greedy(*args, **kwargs)

    monkeypatch.setattr(solve_module, "_greedy", noted_greedy)
    params = RoutingParams(engine="pyvrp", time_limit_s=1.5, seed=1, num_workers=1)
    plan, stats = solve_routes_with_stats(c101_25, params)
    assert validate_plan(c101_25, plan).ok
    assert plan.engine == "greedy (fallback from pyvrp)"
    assert not plan.unassigned
    assert stats.fallback is not None and "found no feasible solution" in stats.fallback
    if beside:
        assert threads == ["pyvrp-meanwhile"]
        assert stats.greedy_s > 0
    else:
        assert threads == [threading.current_thread().name]  # after the search, as before
