"""Property tests: on random small scenarios every plan keeps the routing invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from scenarios.plan import StopKind
from solvers.routing import RoutingParams, solve_routes
from solvers.validate import validate_plan

coord = st.integers(min_value=0, max_value=5000)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A random city: up to 12 orders (some with pickups, windows, skills, penalties)."""
    n = draw(st.integers(min_value=1, max_value=12))
    orders = []
    for i in range(n):
        start = draw(st.integers(min_value=0, max_value=6000))
        windowed = draw(st.booleans())
        pickup = None
        if draw(st.integers(min_value=0, max_value=3)) == 0:
            pickup = PickupSpec(location=Location(x=draw(coord), y=draw(coord)), service_s=30)
        orders.append(
            Order(
                id=f"o{i}",
                location=Location(x=draw(coord), y=draw(coord)),
                demand=[draw(st.integers(min_value=0, max_value=5))],
                service_s=draw(st.integers(min_value=0, max_value=300)),
                time_windows=[TimeWindow(start_s=start, end_s=start + 1800)] if windowed else [],
                required_skills=["cold"] if draw(st.integers(0, 5)) == 0 else [],
                penalty_cents=draw(st.one_of(st.none(), st.integers(0, 50_000))),
                pickup=pickup,
            )
        )
    depot = Location(x=2500, y=2500)
    vehicles = [
        Vehicle(
            id=f"v{k}",
            start_location=depot,
            capacity=[draw(st.integers(min_value=1, max_value=10))],
            skills=["cold"] if k == 0 else [],
            cost_per_km_cents=100,
        )
        for k in range(draw(st.integers(min_value=1, max_value=4)))
    ]
    return Scenario(
        horizon=TimeWindow(start_s=0, end_s=10_000),
        travel=EuclideanTravel(speed_m_per_s=5.0),
        capacity_dims=["units"],
        orders=orders,
        vehicles=vehicles,
    )


def _assert_invariants(s: Scenario, plan: Plan) -> None:
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    seen: dict[tuple[str, StopKind], int] = {}
    for route in plan.routes:
        veh = s.vehicle(route.vehicle_id)
        on_board: set[str] = set()
        for st_ in route.stops:
            if st_.kind is StopKind.BREAK:
                continue
            key = (st_.order_id or "", st_.kind)
            seen[key] = seen.get(key, 0) + 1
            # capacity at every point
            assert all(q <= c for q, c in zip(st_.load_after, veh.capacity, strict=True))
            if st_.kind is StopKind.PICKUP:
                on_board.add(st_.order_id or "")
            elif s.order(st_.order_id or "").pickup is not None:
                assert st_.order_id in on_board  # pickup first, same vehicle
    assert all(count == 1 for count in seen.values())  # every order served at most once
    served = {oid for oid, kind in seen if kind is StopKind.DELIVERY}
    assert served.isdisjoint({u.order_id for u in plan.unassigned})
    assert served | {u.order_id for u in plan.unassigned} == {o.id for o in s.orders}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_greedy_plans_keep_the_invariants(s: Scenario) -> None:
    _assert_invariants(s, solve_routes(s, RoutingParams(engine="greedy")))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_search_plans_keep_the_invariants(s: Scenario) -> None:
    for engine in ("pyvrp", "ortools"):
        plan = solve_routes(s, RoutingParams(engine=engine, time_limit_s=0.2))
        _assert_invariants(s, plan)
