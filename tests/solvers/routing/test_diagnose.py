"""The routing diagnosis's deadline: it stops at it, and what it found by then is kept."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import Location, Scenario, UnassignedReason
from scenarios.plan import PlanStatus
from solvers.routing import RoutingParams, solve_routes_with_stats
from solvers.routing import diagnose as diagnose_module
from solvers.routing import solve as solve_module
from solvers.routing.diagnose import DiagnosisDeadlineError, diagnose_orders
from solvers.routing.problem import build_problem
from solvers.validate import validate_plan
from tests.cpu_time import LooksClock
from tests.solvers.routing.conftest import PastClock, assert_nothing_placed, make_city
from tests.solvers.routing.conftest import road_day as generated_road_day


def _unservable_city() -> Scenario:
    """A small city day with orders no vehicle can serve: no skill, too big, too far."""
    s = make_city(8)
    orders = list(s.orders)
    orders[1] = orders[1].model_copy(update={"required_skills": ["crane"]})
    orders[3] = orders[3].model_copy(update={"demand": [99]})
    orders[5] = orders[5].model_copy(update={"location": Location(x=5000, y=4_000_000)})
    return s.model_copy(update={"orders": orders})


@pytest.fixture(scope="module")
def unservable_city() -> Scenario:
    """:func:`_unservable_city`, built once."""
    return _unservable_city()


def test_the_diagnosis_names_every_unservable_order_without_a_deadline(
    unservable_city: Scenario,
) -> None:
    """The day's diagnosis (the reference of the deadline's tests) names its three orders."""
    reasons = diagnose_orders(build_problem(unservable_city))
    assert {i: r for i, (r, _) in reasons.items()} == {
        1: UnassignedReason.NO_SKILL,
        3: UnassignedReason.OVER_CAPACITY,
        5: UnassignedReason.OUTSIDE_SHIFT,
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(looks=st.integers(min_value=0, max_value=40))
def test_the_diagnosis_stops_at_its_deadline_keeping_what_it_found(
    unservable_city: Scenario, looks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut after any number of looks at the clock, the diagnosis either ends with the reasons
    it gives with no deadline, or raises with a part of them (the same reasons and details)."""
    problem = build_problem(unservable_city)
    whole = diagnose_orders(problem)
    clock = LooksClock()
    monkeypatch.setattr(diagnose_module, "time", clock)
    try:
        found = diagnose_orders(problem, deadline=float(looks))
    except DiagnosisDeadlineError as cut:
        assert clock.looks == looks + 1  # it stopped at the first look past the deadline
        assert cut.diagnosed.items() <= whole.items()
    else:
        assert found == whole
        assert clock.looks <= looks


def test_the_diagnosis_past_its_deadline_raises_at_its_first_look(
    unservable_city: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the deadline from the start it raises before any vehicle type is tried; with no
    deadline the clock is not read."""
    problem = build_problem(unservable_city)
    monkeypatch.setattr(diagnose_module, "time", PastClock)
    with pytest.raises(DiagnosisDeadlineError) as cut:
        diagnose_orders(problem, deadline=time.perf_counter() + 3600)
    assert cut.value.diagnosed == {}
    assert len(diagnose_orders(problem)) == 3


def _road_day(orders: int, couriers: int) -> Scenario:
    """A seeded generated city day (road network travel), its first order mandatory and
    needing a skill no courier has."""
    s = generated_road_day(orders, couriers)
    first = s.orders[0].model_copy(update={"required_skills": ["crane"], "penalty_cents": None})
    return s.model_copy(update={"orders": [first, *s.orders[1:]]})


@pytest.fixture(scope="module")
def road_day() -> Scenario:
    """150 orders, 8 couriers: above the size planned whole whatever the clock."""
    from solvers.routing.greedy import ALWAYS_COMPLETE_SIZE

    s = _road_day(150, 8)
    assert len(s.orders) + len(s.vehicles) > ALWAYS_COMPLETE_SIZE
    return s


def test_a_solve_whose_time_limit_comes_in_the_diagnosis_answers_every_order_not_placed(
    road_day: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The diagnosis stops at the travel matrix's deadline: the answer comes then, every
    order not placed, the plan validated, no construction (before, the diagnosis ran to its
    end whatever the clock: 0.13-0.23 s at 10,000 orders, then the construction's grace)."""
    from solvers.routing.greedy import GreedyBuilder

    monkeypatch.setattr(diagnose_module, "time", PastClock)
    monkeypatch.setattr(GreedyBuilder, "build", lambda self: pytest.fail("constructed"))
    plan, stats = solve_routes_with_stats(road_day, RoutingParams(engine="greedy", time_limit_s=5))
    assert_nothing_placed(road_day, plan)
    assert stats.fallback == solve_module.NO_DIAGNOSIS
    assert stats.engine == "none"


def test_the_orders_diagnosed_before_the_deadline_keep_their_reason(
    road_day: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order the diagnosis named before its deadline keeps its reason in the answer; the
    others are not placed."""
    problem = build_problem(road_day)
    named = {0: diagnose_orders(problem)[0]}
    assert named[0][0] is UnassignedReason.NO_SKILL

    def cut_short(_problem: object, deadline: float | None = None) -> None:
        assert deadline is not None  # a problem this size looks at the clock
        raise DiagnosisDeadlineError(named)

    monkeypatch.setattr(solve_module, "diagnose_orders", cut_short)
    plan, stats = solve_routes_with_stats(road_day, RoutingParams(engine="greedy", time_limit_s=5))
    assert validate_plan(road_day, plan).ok
    by_id = {u.order_id: u for u in plan.unassigned}
    assert set(by_id) == {o.id for o in road_day.orders}
    first = by_id[road_day.orders[0].id]
    assert (first.reason, first.detail) == named[0]
    assert {u.detail for u in plan.unassigned if u is not first} == {solve_module.LATE}
    assert plan.status is PlanStatus.INFEASIBLE  # a mandatory order no vehicle can serve
    assert stats.fallback == solve_module.NO_DIAGNOSIS


def test_a_small_problem_is_diagnosed_whatever_the_clock(
    unservable_city: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small problem is planned whole however starved: its diagnosis has no deadline."""
    monkeypatch.setattr(diagnose_module, "time", PastClock)
    plan, stats = solve_routes_with_stats(
        unservable_city, RoutingParams(engine="greedy", time_limit_s=5)
    )
    assert validate_plan(unservable_city, plan).ok
    assert stats.fallback != solve_module.NO_DIAGNOSIS
    reasons = {u.order_id: u.reason for u in plan.unassigned}
    assert reasons == {
        "o1": UnassignedReason.NO_SKILL,
        "o3": UnassignedReason.OVER_CAPACITY,
        "o5": UnassignedReason.OUTSIDE_SHIFT,
    }


def test_an_order_scheduled_on_many_vehicle_types_looks_at_the_deadline_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An order the closed form cannot settle (vehicles with two breaks) is scheduled on each
    capable vehicle type in turn, looking at the deadline every ``LOOK_SCHEDULES`` of them,
    not once for all (a long step with no look); the reasons are those found with no
    deadline."""
    from scenarios import Break, TimeWindow, Vehicle

    depot = Location(x=5000, y=5000)
    breaks = [
        Break(window=TimeWindow(start_s=3_600, end_s=7_200), duration_s=600),
        Break(window=TimeWindow(start_s=14_400, end_s=18_000), duration_s=600),
    ]
    fleet = [  # 40 vehicle types (their fixed costs differ), each with two breaks
        Vehicle(id=f"v{k}", start_location=depot, capacity=[4], fixed_cost_cents=k, breaks=breaks)
        for k in range(40)
    ]
    s = make_city(2, vehicles=fleet)
    far = s.orders[1].model_copy(update={"location": Location(x=5000, y=4_000_000)})
    problem = build_problem(s.model_copy(update={"orders": [s.orders[0], far]}))
    whole = diagnose_orders(problem)
    assert set(whole) == {1}
    events: list[str] = []
    real = diagnose_module.schedule_route

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            events.append("look")
            return 0.0

    def scheduled(*args: Any, **kw: Any) -> Any:
        events.append("schedule")
        return real(*args, **kw)

    monkeypatch.setattr(diagnose_module, "time", Clock)
    monkeypatch.setattr(diagnose_module, "schedule_route", scheduled)
    assert diagnose_orders(problem, deadline=1.0) == whole
    runs = "".join("s" if e == "schedule" else "|" for e in events).split("|")
    assert events.count("schedule") >= 40
    # the order's 40 types a few at a time (and the schedules naming its reason after them)
    assert max(map(len, runs)) <= diagnose_module.LOOK_SCHEDULES + 4
