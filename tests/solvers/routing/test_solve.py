"""solve_routes end to end on every engine: feasibility, features, reasons, re-optimisation."""

from __future__ import annotations

import os

import pytest

from scenarios import (
    Break,
    InputError,
    Location,
    Plan,
    Scenario,
    TimeWindow,
    UnassignedReason,
    Vehicle,
)
from scenarios.plan import PlanStatus, StopKind
from solvers.routing import RoutingParams, solve_routes, solve_routes_with_stats
from solvers.routing.engines.pyvrp_engine import free_cores
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import make_city, with_pickups

ENGINES = ["greedy", "pyvrp", "ortools"]
FAST = 0.4


def _solve(s: Scenario, engine: str = "auto", **kw: object) -> Plan:
    plan = solve_routes(s, RoutingParams(engine=engine, time_limit_s=FAST, **kw))
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    assert check.distance_m == plan.distance_m
    return plan


def _served(plan: Plan) -> set[str]:
    return {
        st.order_id or "" for r in plan.routes for st in r.stops if st.kind is StopKind.DELIVERY
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_c101_subset_all_served(c101_25: Scenario, engine: str) -> None:
    plan = _solve(c101_25, engine)
    assert plan.status is PlanStatus.FEASIBLE
    assert _served(plan) == {o.id for o in c101_25.orders}
    assert plan.engine == engine
    if engine != "greedy":
        # 191.3 is the optimum of this subset (DIMACS tenths); search must get close
        assert plan.distance_m <= 1.05 * 1913


@pytest.mark.parametrize("engine", ENGINES)
def test_pickup_and_delivery_pairs(lc101_10: Scenario, engine: str) -> None:
    plan = _solve(lc101_10, engine)
    assert not plan.unassigned
    for route in plan.routes:
        kinds = [(st.order_id, st.kind) for st in route.stops]
        for oid, kind in kinds:
            if kind is StopKind.DELIVERY:
                assert kinds.index((oid, StopKind.PICKUP)) < kinds.index((oid, kind))


def test_auto_picks_pyvrp_then_ortools_for_breaks(city: Scenario) -> None:
    assert _solve(city).engine == "pyvrp"
    fleet = [
        v.model_copy(
            update={"breaks": [Break(window=TimeWindow(start_s=600, end_s=3600), duration_s=900)]}
        )
        for v in city.vehicles
    ]
    plan = _solve(city.model_copy(update={"vehicles": fleet}))
    assert plan.engine == "ortools"
    used = [r for r in plan.routes if r.stops]
    assert used and all(any(st.kind is StopKind.BREAK for st in r.stops) for r in used)


def test_pyvrp_refuses_what_it_cannot_model(city: Scenario) -> None:
    two = [TimeWindow(start_s=0, end_s=1000), TimeWindow(start_s=5000, end_s=9000)]
    orders = [city.orders[0].model_copy(update={"time_windows": two}), *city.orders[1:]]
    s = city.model_copy(update={"orders": orders})
    with pytest.raises(InputError, match="several time windows"):
        solve_routes(s, RoutingParams(engine="pyvrp", time_limit_s=FAST))
    plan = _solve(s)  # auto -> ortools
    assert plan.engine == "ortools"
    first = next(st for r in plan.routes for st in r.stops if st.order_id == "o0")
    assert first.start_s <= 1000 or 5000 <= first.start_s <= 9000


@pytest.mark.parametrize("engine", ENGINES)
def test_skills_and_multidimensional_capacity(engine: str) -> None:
    depot = Location(x=5000, y=5000)
    fleet = [
        Vehicle(id="van", start_location=depot, capacity=[10, 2], skills=["fridge"]),
        Vehicle(id="bike", start_location=depot, capacity=[10, 100]),
    ]
    s = make_city(6, vehicles=fleet, capacity_dims=["units", "volume"])
    orders = [
        o.model_copy(update={"required_skills": ["fridge"] if i < 2 else []})
        for i, o in enumerate(s.orders)
    ]
    s = s.model_copy(update={"orders": orders})
    plan = _solve(s, engine)
    assert not plan.unassigned
    by_vehicle = {r.vehicle_id: {st.order_id for st in r.stops} for r in plan.routes}
    assert {"o0", "o1"} <= by_vehicle["van"]
    assert len(by_vehicle["van"]) <= 2  # volume 2


@pytest.mark.parametrize("engine", ENGINES)
def test_distinct_depots_and_route_limits(engine: str) -> None:
    fleet = [
        Vehicle(
            id="east",
            start_location=Location(x=9000, y=5000),
            end_location=Location(x=1000, y=5000),
            capacity=[10],
            max_distance_m=20_000,
        ),
        Vehicle(
            id="west",
            start_location=Location(x=1000, y=5000),
            capacity=[10],
            max_duration_s=3600,
            fixed_cost_cents=500,
            cost_per_km_cents=50,
        ),
    ]
    plan = _solve(make_city(6, vehicles=fleet), engine)
    assert _served(plan) == {f"o{i}" for i in range(6)}
    for r in plan.routes:
        if r.vehicle_id == "east":
            assert r.distance_m <= 20_000
        if r.vehicle_id == "west" and r.stops:
            assert r.duration_s <= 3600


def test_unassigned_reasons() -> None:
    s = make_city(6)
    far = Location(x=5000, y=4_000_000)  # 400 km away: unreachable in a 10 h horizon
    orders = list(s.orders)
    orders[0] = orders[0].model_copy(update={"required_skills": ["crane"]})
    orders[1] = orders[1].model_copy(update={"demand": [99]})
    orders[2] = orders[2].model_copy(update={"location": far})
    orders[3] = orders[3].model_copy(update={"penalty_cents": 0})
    s = s.model_copy(update={"orders": orders})
    plan = _solve(s)
    reasons = {u.order_id: u.reason for u in plan.unassigned}
    assert reasons == {
        "o0": UnassignedReason.NO_SKILL,
        "o1": UnassignedReason.OVER_CAPACITY,
        "o2": UnassignedReason.WINDOW_UNREACHABLE,
        "o3": UnassignedReason.DROPPED_FOR_COST,
    }
    assert plan.status is PlanStatus.INFEASIBLE  # mandatory orders left out


@pytest.mark.parametrize("engine", ENGINES)
def test_too_small_fleet_is_a_diagnosis_not_an_error(engine: str) -> None:
    fleet = [Vehicle(id="only", start_location=Location(x=5000, y=5000), capacity=[3])]
    plan = _solve(make_city(6, vehicles=fleet), engine)
    assert len(_served(plan)) == 3
    assert {u.reason for u in plan.unassigned} == {UnassignedReason.NO_SOLUTION}
    assert plan.status is PlanStatus.INFEASIBLE


def test_no_vehicles_at_all(city: Scenario) -> None:
    plan = _solve(city.model_copy(update={"vehicles": []}))
    assert len(plan.unassigned) == len(city.orders)
    assert not plan.routes


def test_optional_orders_served_when_worth_it(city: Scenario) -> None:
    orders = [o.model_copy(update={"penalty_cents": 1_000_000}) for o in city.orders]
    plan = _solve(city.model_copy(update={"orders": orders}))
    assert not plan.unassigned


@pytest.mark.parametrize("engine", ["greedy", "ortools"])
def test_pinned_stops_stay_on_their_vehicle_in_order(c101_25: Scenario, engine: str) -> None:
    first = _solve(c101_25, "greedy")
    route = next(r for r in first.routes if len(r.stops) >= 3)
    pins = [route.stops[0].order_id, route.stops[2].order_id]
    stops = [st.model_copy(update={"pinned": st.order_id in pins}) for st in route.stops]
    initial = first.model_copy(
        update={"routes": [route.model_copy(update={"stops": stops, "vehicle_id": "25"})]}
    )
    plan = _solve(c101_25, engine, initial_plan=initial)
    mine = next(r for r in plan.routes if r.vehicle_id == "25")
    order = [st.order_id for st in mine.stops]
    assert pins[0] in order and pins[1] in order
    assert order.index(pins[0]) < order.index(pins[1])
    assert all(st.pinned == (st.order_id in pins) for st in mine.stops)


def test_warm_start_and_disruption_cost(c101_25: Scenario) -> None:
    first = _solve(c101_25, "pyvrp")
    where = {st.order_id: r.vehicle_id for r in first.routes for st in r.stops}
    again = _solve(c101_25, "ortools", initial_plan=first, disruption_cost_cents=10**6)
    assert {st.order_id: r.vehicle_id for r in again.routes for st in r.stops} == where
    warm = _solve(c101_25, "pyvrp", initial_plan=first)
    assert warm.distance_m <= first.distance_m


def test_same_seed_same_plan(c101_25: Scenario) -> None:
    params = {"engine": "pyvrp", "time_limit_s": 30.0, "max_iterations": 200, "seed": 7}
    a = solve_routes(c101_25, RoutingParams(**params))
    b = solve_routes(c101_25, RoutingParams(**params))
    assert [r.model_dump() for r in a.routes] == [r.model_dump() for r in b.routes]
    g1 = solve_routes(c101_25, RoutingParams(engine="greedy"))
    g2 = solve_routes(c101_25, RoutingParams(engine="greedy"))
    assert g1.routes == g2.routes


def test_parallel_searches(c101_25: Scenario) -> None:
    plan, stats = solve_routes_with_stats(
        c101_25, RoutingParams(engine="pyvrp", time_limit_s=FAST, num_workers=2)
    )
    assert validate_plan(c101_25, plan).ok
    # two searches on idle cores, one when the machine is busy
    assert stats.detail.startswith(("1 search", "2 search"))
    assert 0.0 <= free_cores(0.01) <= (os.cpu_count() or 1) + 1e-9


def test_pickups_from_a_hub(city: Scenario) -> None:
    plan = _solve(with_pickups(city), "auto")
    assert not plan.unassigned
    assert plan.engine == "pyvrp"


def test_unknown_vehicle_in_initial_plan(city: Scenario) -> None:
    bad = Plan(routes=[{"vehicle_id": "ghost", "stops": []}])
    with pytest.raises(InputError, match=r"initial_plan\.routes\.0\.vehicle_id"):
        solve_routes(city, RoutingParams(initial_plan=bad, time_limit_s=FAST))
