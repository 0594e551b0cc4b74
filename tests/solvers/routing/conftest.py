"""Small named routing scenarios: C101 and lc101 subsets, and a tiny hand-made city."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scenarios import (
    EuclideanTravel,
    Location,
    Order,
    PickupSpec,
    Plan,
    Scenario,
    TimeWindow,
    Vehicle,
)
from scenarios.io import load_scenario

#: PyVRP iterations of a test about what the search finds, under :data:`UNHURRIED_S`: the
#: search ends after its iterations (milliseconds on these instances, 0.2 s on all of C101),
#: not on the clock. At the tests' 0.4 s limits a loaded machine (the suite on 2 busy cores)
#: left PyVRP no time to start, or killed it before its first iteration ended, and the
#: greedy plan answered: a test asserting PyVRP's engine or its plan failed.
SEARCH_ITERATIONS = 200
#: A time limit only a machine loaded far beyond the suite's own load reaches, for searches
#: that stop after :data:`SEARCH_ITERATIONS`.
UNHURRIED_S = 60.0
#: OR-Tools solutions (moves its search accepts) of a test about what OR-Tools finds, under
#: :data:`UNHURRIED_S` (:func:`unhurried`): OR-Tools has no iteration budget and searches
#: until its limit, so a test patches one in. 50 solutions take 0.03-0.2 s of CPU on these
#: instances (c101_25: 1913, its optimum, after 10). At 0.4 s, with 8 busy loops on its
#: core, OR-Tools answered c101_25 with 2507 once in 6 runs, and the greedy plan (no time
#: left to start) when the call's imports came first; the 2 s limit that followed still
#: depended on the machine, and took 2 s a test.
ORTOOLS_SOLUTIONS = 50
#: Seconds an OR-Tools search capped by :func:`cap_ortools` runs at most: its guided local
#: search never reaches a second solution when no move is left (every stop pinned), and
#: searched to the :data:`UNHURRIED_S` limit there until the engine's stall stop (session
#: 66: :data:`~solvers.routing.engines.ortools_engine.STALL_FAILURES` failed moves without a
#: solution) came to end such searches; the cap stays as a guard.
ORTOOLS_CAP_S = 10.0


def cap_ortools(monkeypatch: pytest.MonkeyPatch, solutions: int = ORTOOLS_SOLUTIONS) -> None:
    """Stop each OR-Tools search of the test after ``solutions`` solutions (or its limit, at
    most :data:`ORTOOLS_CAP_S`)."""
    from solvers.routing.engines import ortools_engine

    set_budget = ortools_engine._set_budget

    def capped(params: Any, end: float, problem: Any) -> None:
        set_budget(params, min(end, time.perf_counter() + ORTOOLS_CAP_S), problem)
        params.solution_limit = solutions

    monkeypatch.setattr(ortools_engine, "_set_budget", capped)


def unhurried(
    monkeypatch: pytest.MonkeyPatch, ortools_solutions: int = ORTOOLS_SOLUTIONS
) -> dict[str, Any]:
    """The :class:`RoutingParams` budget of a test about what an engine finds, whatever the
    machine's speed: :data:`UNHURRIED_S`, PyVRP stopped after :data:`SEARCH_ITERATIONS` and
    OR-Tools after ``ortools_solutions`` (:func:`cap_ortools`); the greedy plan ends when
    built. At the tests' 0.2-0.5 s limits a loaded machine (load 14-20 on the 2 cores) could
    leave an engine no time to start (the greedy plan answered: a test of the engine tested
    the greedy plan), or too little to search and polish (at a 2 s limit beside 16 busy
    loops, the OR-Tools plans of ``test_fuzz_cases_reach_the_optimum`` came unpolished, 3.72x
    and 1.79x the optimum)."""
    cap_ortools(monkeypatch, ortools_solutions)
    return {"time_limit_s": UNHURRIED_S, "max_iterations": SEARCH_ITERATIONS}


def solve_clock(monkeypatch: pytest.MonkeyPatch, skew_s: list[float] | None = None) -> list[float]:
    """The readings of :mod:`solvers.routing.solve`'s clock from now on, in order: the first
    is a solve's start, from which its time limit counts. (A test's own reading before the
    call is no stand-in: a loaded machine can deschedule the thread for milliseconds between
    the two.) The clock runs ``sum(skew_s)`` seconds ahead of the real one: a test appends
    to ``skew_s`` to make a phase take that long for the solve, without waiting."""
    from solvers.routing import solve as solve_module

    readings: list[float] = []
    skew = skew_s if skew_s is not None else []

    def perf_counter() -> float:
        readings.append(time.perf_counter() + sum(skew))
        return readings[-1]

    monkeypatch.setattr(solve_module, "time", SimpleNamespace(perf_counter=perf_counter))
    return readings


def starve_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every clock of the routing layer jump an hour at each look, the wall clock and
    the thread's CPU clock: each deadline has passed when first looked at, and each
    construction's grace of CPU time is gone at its first look. A process starved on a loaded
    machine, whose CPU clock also counted what the collector (or the hypervisor) took, once
    spent "construction 0.92 s" on the 3 courier jobs of the API's plan example and answered
    "infeasible" with no route."""
    from solvers.routing import greedy, polish, repair
    from solvers.routing import solve as solve_module

    looks = itertools.count(3600, 3600)

    def perf_counter() -> float:
        return time.perf_counter() + next(looks)

    def thread_time() -> float:
        return time.thread_time() + next(looks)

    clock = SimpleNamespace(perf_counter=perf_counter, thread_time=thread_time)
    for module in (solve_module, greedy, repair, polish):
        monkeypatch.setattr(module, "time", clock)


@pytest.fixture(scope="session")
def c101_25(instances_dir: Path) -> Scenario:
    """The first 25 customers of Solomon C101 (25 vehicles of capacity 200)."""
    s = load_scenario(instances_dir / "solomon" / "C101.txt")
    return s.model_copy(update={"orders": s.orders[:25]})


@pytest.fixture(scope="session")
def lc101_10(instances_dir: Path) -> Scenario:
    """The first 10 pickup-and-delivery pairs of Li & Lim lc101."""
    s = load_scenario(instances_dir / "lilim" / "lc101.txt")
    return s.model_copy(update={"orders": s.orders[:10]})


def make_city(
    num_orders: int = 6,
    *,
    vehicles: list[Vehicle] | None = None,
    capacity_dims: list[str] | None = None,
    **order_updates: object,
) -> Scenario:
    """A 10 km x 10 km planar city, depot at the centre, orders on a ring."""
    depot = Location(x=5000, y=5000)
    orders = [
        Order(
            id=f"o{i}",
            location=Location(x=5000 + 3000 * ((i % 3) - 1), y=5000 + 2000 * ((i // 3) - 1)),
            demand=[1] * len(capacity_dims or ["units"]),
            service_s=60,
            **order_updates,
        )
        for i in range(num_orders)
    ]
    fleet = vehicles or [Vehicle(id=f"v{k}", start_location=depot, capacity=[4]) for k in range(3)]
    return Scenario(
        name="city",
        horizon=TimeWindow(start_s=0, end_s=36_000),
        travel=EuclideanTravel(speed_m_per_s=10.0),
        capacity_dims=capacity_dims or ["units"],
        orders=orders,
        vehicles=fleet,
    )


@pytest.fixture()
def city() -> Scenario:
    """Six orders, three vehicles of capacity 4 at the centre."""
    return make_city()


def with_pickups(s: Scenario) -> Scenario:
    """Give every order of ``s`` a pickup at the depot corner (0, 0)."""
    orders = [
        o.model_copy(update={"pickup": PickupSpec(location=Location(x=1000, y=1000))})
        for o in s.orders
    ]
    return s.model_copy(update={"orders": orders})


def created_at_start(s: Scenario) -> Scenario:
    """``s`` with every order created at 0 s: a generated city day as routed before session 62,
    which ignored ``created_s`` (the situation some tests recorded; their subject is not the
    release times, see ``test_release.py``)."""
    return s.model_copy(
        update={"orders": [o.model_copy(update={"created_s": 0}) for o in s.orders]}
    )


def depot_orders(orders: list[tuple[int, int, int, tuple[int, int] | None]]) -> list[Order]:
    """Orders ``o0, o1, ...`` of one unit from (x, y, service s, window or None)."""
    return [
        Order(
            id=f"o{i}",
            location=Location(x=x, y=y),
            demand=[1],
            service_s=service,
            time_windows=[] if w is None else [TimeWindow(start_s=w[0], end_s=w[1])],
        )
        for i, (x, y, service, w) in enumerate(orders)
    ]


class PastClock:
    """A stub ``time`` module for a clock past every deadline (the travel matrix's, the
    diagnosis's)."""

    @staticmethod
    def perf_counter() -> float:
        return math.inf


def road_day(orders: int, couriers: int) -> Scenario:
    """A seeded generated city day (road network travel)."""
    from scenarios.generate import generate_city

    return generate_city(seed=3, num_orders=orders, num_nodes=3, num_couriers=couriers)


def assert_nothing_placed(scenario: Scenario, plan: Plan) -> None:
    """The answer of a solve stopped before its construction: validated, no route, every
    order unassigned and not placed (the time limit), the plan time-limited."""
    from solvers.routing import solve as solve_module
    from solvers.validate import validate_plan

    assert validate_plan(scenario, plan).ok
    assert not plan.routes
    assert {u.order_id for u in plan.unassigned} == {o.id for o in scenario.orders}
    assert {u.detail for u in plan.unassigned} == {solve_module.LATE}
    assert plan.time_limited
