"""A small feasible problem always gets a validated plan, however starved the solve: its
construction is bounded by the problem's size, not by the clock (``always_completes``)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings

from scenarios import Location, Plan, Scenario, Vehicle
from scenarios.plan import PlanStatus
from solvers.routing import RoutingParams, solve_routes_with_stats
from solvers.routing import solve as solve_module
from solvers.routing.engines.base import EngineResult, EngineSettings
from solvers.routing.engines.ortools_engine import ORToolsEngine
from solvers.routing.engines.pyvrp_engine import PyVRPEngine
from solvers.routing.greedy import always_completes
from solvers.routing.problem import RoutingProblem, build_problem
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import make_city, starve_clocks, with_pickups
from tests.solvers.routing.test_properties import scenarios

ENGINES = ["auto", "pyvrp", "ortools", "greedy"]


def _deliveries() -> Scenario:
    """Six delivery orders, three vans (the ``city`` fixture)."""
    return make_city()


def _pickups() -> Scenario:
    """The same orders as pickup-and-delivery jobs, as an allocation's courier jobs are."""
    return with_pickups(make_city())


SCENARIOS = {"deliveries": _deliveries, "pickups": _pickups}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
@pytest.mark.parametrize("engine", ENGINES)
def test_a_small_problem_is_planned_whole_when_every_clock_says_time_is_up(
    engine: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: every construction stopped at its first look at the clock (its grace gone),
    no order was placed, and the plan came back ``infeasible`` with no route, each order
    "not placed: the time limit was reached", whichever the engine."""
    s = SCENARIOS[kind]()
    assert always_completes(build_problem(s))
    starve_clocks(monkeypatch)
    plan, stats = solve_routes_with_stats(s, RoutingParams(engine=engine, time_limit_s=0.3))
    assert validate_plan(s, plan).ok
    assert plan.status is PlanStatus.FEASIBLE, plan.unassigned
    assert not plan.unassigned
    served = {st.order_id for r in plan.routes for st in r.stops if st.order_id is not None}
    assert served == {o.id for o in s.orders}
    assert not any("time limit reached" in note for note in stats.notes), stats.notes
    if engine != "greedy":  # no time for a search: the greedy plan, saying why
        assert (plan.engine or "").startswith("greedy (no time left for ")
        assert stats.fallback is not None and "returning the greedy plan" in stats.fallback


def _nothing_in_time(self: object, problem: RoutingProblem, settings: EngineSettings) -> object:
    """A search stopped by its time limit before its first solution."""
    return EngineResult(routes={}, feasible=False, detail="stand-in", out_of_time=True)


@pytest.mark.parametrize("engine", ["pyvrp", "ortools"])
def test_a_search_that_finds_nothing_in_time_falls_back_to_a_whole_greedy_plan(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search is given its time (the solve's own clock is not starved) and finds nothing
    before its limit, while the constructions' clocks say their time is up: the fallback is
    the whole greedy plan (before: no route, ``infeasible``)."""
    s = _pickups()
    starve_clocks(monkeypatch)
    monkeypatch.setattr(solve_module, "time", time)  # the solve's own clock: on time
    monkeypatch.setattr(PyVRPEngine, "solve", _nothing_in_time)
    monkeypatch.setattr(ORToolsEngine, "solve", _nothing_in_time)
    plan, stats = solve_routes_with_stats(s, RoutingParams(engine=engine, time_limit_s=30))
    assert validate_plan(s, plan).ok
    assert plan.status is PlanStatus.FEASIBLE and not plan.unassigned
    assert plan.engine == f"greedy (fallback from {engine})"
    assert stats.fallback == f"{engine} found no feasible solution before its time limit (stand-in)"


def _stops(plan: Plan) -> list[tuple[str, list[tuple[str | None, str]]]]:
    return [(r.vehicle_id, [(st.order_id, st.kind.value) for st in r.stops]) for r in plan.routes]


@settings(max_examples=25, deadline=None)
@given(s=scenarios())
def test_a_starved_greedy_plan_is_the_unhurried_one(s: Scenario) -> None:
    """Property: on a small problem the clock changes nothing in the greedy plan, however
    starved the solve (the construction is deterministic and no longer looks at it)."""
    calm, _ = solve_routes_with_stats(s, RoutingParams(engine="greedy", time_limit_s=60))
    with pytest.MonkeyPatch.context() as mp:
        starve_clocks(mp)
        starved, _ = solve_routes_with_stats(s, RoutingParams(engine="greedy", time_limit_s=0.3))
    assert validate_plan(s, starved).ok
    assert _stops(starved) == _stops(calm)
    assert [(u.order_id, u.reason) for u in starved.unassigned] == [
        (u.order_id, u.reason) for u in calm.unassigned
    ]
    assert starved.status is calm.status and starved.cost_cents == calm.cost_cents


def _part_of_one_order(
    self: object, problem: RoutingProblem, settings: EngineSettings
) -> EngineResult:
    """A search whose plan serves one shipment of split order S0 (its ``west`` job) alone,
    as PyVRP may (a split order's jobs share its prize)."""
    west = list(problem.orders[problem.order_ids.index("S0@west")].tasks)
    return EngineResult(routes={0: west}, detail="stand-in")


def _nothing(self: object, problem: RoutingProblem, settings: EngineSettings) -> EngineResult:
    """A search whose plan serves no order."""
    return EngineResult(routes={}, detail="stand-in")


@pytest.mark.parametrize("search", [_part_of_one_order, _nothing])
@pytest.mark.parametrize("engine", ["pyvrp", "ortools"])
def test_mandatory_orders_the_clock_cut_after_a_search_say_so(
    engine: str, search: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the always-complete size, the constructions after a search (the repair's
    insertion of the mandatory orders the search left out, ``whole_orders``) stop at their
    deadline. The split orders they did not reach were reported "no feasible position in
    any route", the plan ``infeasible``: the repair's construction said nothing of its
    deadline. Every such order now says the time limit cut it off, the plan ``no_solution``
    (a longer limit may place them)."""
    from solvers.routing.solve import LATE
    from tests.solvers.routing.test_split_orders import _shops

    s = _shops(40)  # 40 mandatory orders, each shipped from two nodes: 160 visits, 1 courier
    assert not always_completes(build_problem(s))
    starve_clocks(monkeypatch)
    monkeypatch.setattr(solve_module, "time", time)  # the solve's own clock: on time
    monkeypatch.setattr(PyVRPEngine, "solve", search)
    monkeypatch.setattr(ORToolsEngine, "solve", search)
    plan, stats = solve_routes_with_stats(s, RoutingParams(engine=engine, time_limit_s=30))
    assert validate_plan(s, plan).ok
    assert len(plan.unassigned) == 80 and not plan.routes
    assert {u.detail.split(" (its order")[0] for u in plan.unassigned} == {LATE}
    assert plan.status is PlanStatus.NO_SOLUTION and plan.time_limited
    assert any("time limit reached" in note for note in stats.notes), stats.notes


def optional_city(num_orders: int = 130) -> Scenario:
    """``num_orders`` optional orders (1,000 EUR penalty each) and three vans that can carry
    them all: above the always-complete size, so constructions stop at their deadline."""
    depot = Location(x=5000, y=5000)
    vans = [Vehicle(id=f"v{k}", start_location=depot, capacity=[200]) for k in range(3)]
    return make_city(num_orders, vehicles=vans, penalty_cents=100_000)


@pytest.mark.parametrize("engine", ENGINES)
def test_optional_orders_the_clock_cut_leave_a_feasible_plan_marked_time_limited(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optional orders the time limit cut off leave the plan ``feasible`` (nothing mandatory
    is out), each unassigned "not placed: the time limit was reached"; nothing but that
    detail said the plan was incomplete. ``Plan.time_limited`` now says so (a caller can
    retry with more time); an unhurried plan of the same day is not."""
    from solvers.routing.solve import LATE

    s = optional_city()
    assert not always_completes(build_problem(s))
    calm, _ = solve_routes_with_stats(s, RoutingParams(engine="greedy", time_limit_s=60))
    assert calm.status is PlanStatus.FEASIBLE and not calm.time_limited
    assert not calm.unassigned
    starve_clocks(monkeypatch)
    plan, _ = solve_routes_with_stats(s, RoutingParams(engine=engine, time_limit_s=0.3))
    assert validate_plan(s, plan).ok
    assert plan.status is PlanStatus.FEASIBLE and plan.time_limited
    assert plan.unassigned and {u.detail for u in plan.unassigned} == {LATE}


def test_the_constructions_grace_ends_where_the_answer_would_come_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The construction's clock says the answer's time is up from its start, its CPU clock
    never moves (its grace of CPU time never runs out): it routed all 130 orders, however
    long that took past the time limit (1,000 orders at 0.1 s: 0.013-0.024 s late). It now
    stops at its first look, every order "not placed", the plan valid and on time."""
    from types import SimpleNamespace

    from solvers.routing import greedy
    from solvers.routing.solve import LATE

    s = optional_city()
    assert not always_completes(build_problem(s))
    clock = SimpleNamespace(
        perf_counter=lambda: time.perf_counter() + 3600, thread_time=lambda: 0.0
    )
    monkeypatch.setattr(greedy, "time", clock)
    plan, stats = solve_routes_with_stats(s, RoutingParams(engine="greedy", time_limit_s=60))
    assert validate_plan(s, plan).ok
    assert not plan.routes and plan.time_limited
    assert len(plan.unassigned) == len(s.orders)
    assert {u.detail for u in plan.unassigned} == {LATE}
    assert any("time limit reached while building" in note for note in stats.notes), stats.notes
