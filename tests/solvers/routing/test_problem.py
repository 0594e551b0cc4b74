"""The index-form problem: tasks at one place share a node; every engine still routes them."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios import Location, Scenario
from scenarios.plan import StopKind
from solvers.routing import RoutingParams, build_problem, solve_routes
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import make_city, with_pickups

DOORSTEP = Location(x=8000, y=7000)


def _two_at_one_door(skills: tuple[list[str], list[str]] = ([], [])) -> Scenario:
    """The 6-order city with orders o0 and o1 delivered to the same doorstep."""
    s = make_city(6)
    orders = list(s.orders)
    for i in (0, 1):
        orders[i] = orders[i].model_copy(
            update={"location": DOORSTEP, "required_skills": skills[i]}
        )
    return s.model_copy(update={"orders": orders})


def test_orders_at_one_location_share_a_node() -> None:
    p = build_problem(_two_at_one_door())
    assert p.tasks[0].node == p.tasks[1].node
    assert p.num_nodes == p.num_depot_nodes + 5  # 6 orders, 5 places
    assert p.duration.shape == p.distance.shape == (p.num_nodes, p.num_nodes)
    assert p.node_locations[p.tasks[0].node] == DOORSTEP


def test_different_skills_at_one_location_get_their_own_nodes() -> None:
    p = build_problem(_two_at_one_door((["fridge"], [])))
    assert p.tasks[0].node != p.tasks[1].node
    a, b = p.tasks[0].node, p.tasks[1].node
    assert p.distance[a, b] == p.distance[b, a] == 0


def test_pickups_at_one_store_share_a_node() -> None:
    p = build_problem(with_pickups(make_city(6)))
    pickups = {t.node for t in p.tasks if t.kind is StopKind.PICKUP}
    assert len(pickups) == 1
    assert p.num_nodes == p.num_depot_nodes + 1 + 6


def test_restricting_keeps_the_parent_matrices() -> None:
    s = _two_at_one_door()
    p = build_problem(s)
    keep = [1, 3, 5]
    sub = p.restrict(keep)
    assert sub.distance is p.distance and sub.duration is p.duration  # no copy
    fresh = build_problem(s.model_copy(update={"orders": [s.orders[i] for i in keep]}))
    # the same travel between every pair of places the kept tasks visit, depots included
    places = list(range(p.num_depot_nodes))
    sub_nodes = places + [t.node for t in sub.tasks]
    fresh_nodes = places + [t.node for t in fresh.tasks]
    for m_sub, m_fresh in ((sub.distance, fresh.distance), (sub.duration, fresh.duration)):
        assert np.array_equal(
            m_sub[np.ix_(sub_nodes, sub_nodes)], m_fresh[np.ix_(fresh_nodes, fresh_nodes)]
        )
    assert [sub.node_locations[t.node] for t in sub.tasks] == [
        fresh.node_locations[t.node] for t in fresh.tasks
    ]


@pytest.mark.parametrize("engine", ["ortools", "pyvrp", "greedy"])
def test_engines_route_orders_that_share_a_node(engine: str) -> None:
    s = _two_at_one_door()
    plan = solve_routes(s, RoutingParams(engine=engine, time_limit_s=0.4, seed=1))
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    assert not plan.unassigned
    served = [st.order_id for r in plan.routes for st in r.stops if st.kind is StopKind.DELIVERY]
    assert sorted(served, key=str) == [o.id for o in s.orders]  # both orders at the door, once each
    if engine != "greedy":
        # one vehicle can take both (capacity 4): a searched plan visits the door once
        door = next(r for r in plan.routes if any(st.order_id == "o0" for st in r.stops))
        assert any(st.order_id == "o1" for st in door.stops)


@pytest.mark.parametrize("engine", ["ortools", "pyvrp"])
def test_engines_route_pickups_from_one_store(engine: str) -> None:
    s = with_pickups(make_city(6))
    plan = solve_routes(s, RoutingParams(engine=engine, time_limit_s=0.4, seed=1))
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    assert not plan.unassigned
