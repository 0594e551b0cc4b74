"""Property tests: on random small scenarios every plan keeps the routing invariants."""

from __future__ import annotations

import pytest
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
from scenarios.plan import StopKind, UnassignedReason
from solvers.routing import RoutingParams, solve_routes, solve_routes_with_stats
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import unhurried

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
    with pytest.MonkeyPatch.context() as monkeypatch:
        # the searches' plans on any machine (at 0.2 s a loaded one could leave no time for a
        # search: the greedy plan, tested by the test above, answered)
        budget = unhurried(monkeypatch)
        for engine in ("pyvrp", "ortools"):
            plan = solve_routes(s, RoutingParams(engine=engine, **budget))
            _assert_invariants(s, plan)
            assert "no time left" not in (plan.engine or ""), plan.engine  # the search ran


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_pins_stay_in_order_on_their_vehicle_or_are_named(s: Scenario, data: st.DataObject) -> None:
    """Re-planning a pinned plan after the couriers' shifts moved: every pin is kept (same
    vehicle, same relative order) or named in the notes, or its order is diagnosed out."""
    first = solve_routes(s, RoutingParams(engine="greedy"))
    routes = []
    for route in first.routes:
        flags = data.draw(
            st.lists(st.booleans(), min_size=len(route.stops), max_size=len(route.stops))
        )
        stops = [
            st_.model_copy(update={"pinned": f}) for st_, f in zip(route.stops, flags, strict=True)
        ]
        routes.append(route.model_copy(update={"stops": stops}))
    initial = first.model_copy(update={"routes": routes})
    late = data.draw(st.sampled_from([0, 2500, 5000]))  # the couriers start later
    shift = TimeWindow(start_s=late, end_s=10_000)
    s2 = s.model_copy(
        update={"vehicles": [v.model_copy(update={"shift": shift}) for v in s.vehicles]}
    )
    plan, stats = solve_routes_with_stats(s2, RoutingParams(engine="greedy", initial_plan=initial))
    _assert_invariants(s2, plan)
    where = {
        (st_.order_id, st_.kind): (r.vehicle_id, i, st_.pinned)
        for r in plan.routes
        for i, st_ in enumerate(r.stops)
    }
    released = " ".join(n for n in stats.notes if n.startswith("pins released"))
    diagnosed = {
        u.order_id for u in plan.unassigned if u.reason is not UnassignedReason.NO_SOLUTION
    }
    for route in initial.routes:
        pins = [(st_.order_id, st_.kind) for st_ in route.stops if st_.pinned]
        kept = [p for p in pins if p in where and where[p][2]]
        assert all(where[p][0] == route.vehicle_id for p in kept)
        assert [where[p][1] for p in kept] == sorted(where[p][1] for p in kept)
        for oid, _ in set(pins) - set(kept):
            assert oid in diagnosed or f"order {oid} on vehicle {route.vehicle_id} (" in released
