"""explain_routes: route utilisation and the reasons of unassigned orders, in words."""

from __future__ import annotations

from scenarios import Scenario
from solvers.explain import explain_routes
from solvers.routing import RoutingParams, solve_routes


def test_explains_routes_and_unassigned(city: Scenario) -> None:
    orders = list(city.orders)
    orders[0] = orders[0].model_copy(update={"required_skills": ["crane"]})
    s = city.model_copy(update={"orders": orders})
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    ex = explain_routes(s, plan)
    assert ex.summary.startswith("5 of 6 orders served")
    assert ex.unassigned == [
        "order o0 is not served: no skill (no vehicle has every skill needed (crane));"
        " costs 10000 cents"
    ]
    assert sum(r.num_stops for r in ex.routes) == 5
    assert all(0 < r.peak_load_pct <= 100 for r in ex.routes)


def test_a_route_waiting_for_an_order_to_exist_says_so(city: Scenario) -> None:
    """An order created after the shift starts holds its route at the start until then."""
    orders = list(city.orders)
    orders[0] = orders[0].model_copy(update={"created_s": 4000})
    s = city.model_copy(update={"orders": orders})
    plan = solve_routes(s, RoutingParams(engine="greedy"))
    ex = explain_routes(s, plan)
    carrier = next(r for r in plan.routes if any(st.order_id == "o0" for st in r.stops))
    [text] = [r.text for r in ex.routes if r.vehicle_id == carrier.vehicle_id]
    assert text.endswith(", leaves the start at 4000 s, once order o0 is created")
    assert not any("once order" in r.text for r in ex.routes if r.vehicle_id != carrier.vehicle_id)
