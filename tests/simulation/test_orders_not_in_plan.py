"""orders_not_in_plan / plan_coverage_note: a plan that leaves orders out (a re-plan's plan,
without the orders it completed) played over the whole day says what the KPIs did with them."""

from __future__ import annotations

from typing import Any

import pytest

from scenarios import Plan, PlannedStop, Route, Scenario
from simulation.evaluate import evaluate
from simulation.twin import orders_not_in_plan, plan_coverage_note
from tests.simulation.conftest import line_scenario


def _route(vehicle: str, *orders: str, pickups: bool = False) -> Route:
    """A route delivering ``orders`` in turn (each picked up just before, with ``pickups``)."""
    stops = []
    for k, order in enumerate(orders):
        t = 100 * k
        if pickups:
            stops.append(
                PlannedStop(order_id=order, kind="pickup", arrival_s=t, start_s=t, departure_s=t)
            )
        stops.append(
            PlannedStop(order_id=order, arrival_s=t + 50, start_s=t + 50, departure_s=t + 50)
        )
    return Route(vehicle_id=vehicle, stops=stops)


def _node_day() -> Scenario:
    """Two nodes, three orders with lines, one courier."""
    return Scenario.model_validate(
        {
            "name": "nodes",
            "horizon": {"start_s": 0, "end_s": 5000},
            "nodes": [
                {"id": "n1", "location": {"x": 0, "y": 0}, "inventory": {"A": 5}},
                {"id": "n2", "location": {"x": 50, "y": 0}, "inventory": {"A": 5}},
            ],
            "vehicles": [{"id": "v1", "start_location": {"x": 0, "y": 0}}],
            "orders": [
                {"id": o, "location": {"x": x, "y": 0}, "lines": [{"sku": "A", "quantity": 1}]}
                for o, x in (("a", 100), ("b", 200), ("c", 300))
            ],
        }
    )


def _lines(*orders: str, node: str = "n1") -> list[dict[str, Any]]:
    return [{"order_id": o, "sku": "A", "node_id": node, "quantity": 1} for o in orders]


def test_a_plan_covering_every_order_leaves_none_out() -> None:
    """Routed or unassigned: the plan says what becomes of each order."""
    plan = Plan(
        routes=[_route("v1", "a", "b")],
        unassigned=[{"order_id": "c", "reason": "window_unreachable"}],
    )
    assert orders_not_in_plan(line_scenario(), plan) == []
    assert plan_coverage_note(line_scenario(), plan, "plan") is None


def test_a_day_without_nodes_names_the_orders_the_plan_has_no_stop_for() -> None:
    """A re-plan's plan (here: a and c done before its now_s) routes only what is left."""
    day = line_scenario()
    plan = Plan(routes=[_route("v2", "b")])
    assert orders_not_in_plan(day, plan) == ["a", "c"]
    note = plan_coverage_note(day, plan, "plan")
    assert note is not None and "2 of the scenario's 3 orders are not in the plan" in note
    assert "(no stop, not unassigned: a, c)" in note and "re-plan" in note
    assert "under policy plan nobody dispatches them" in note and "unserved" in note
    # what the note says the KPIs do: under plan, a and c are never delivered ...
    kpis = evaluate(day, plan, policy="plan", replications=2, seed=1)
    assert kpis.orders_unserved is not None and kpis.orders_unserved.mean == 2
    # ... under another policy they are dispatched (served again in a re-plan's case)
    other = plan_coverage_note(day, plan, " insertion:4 ")
    assert other is not None and "policy insertion:4 dispatches them as new orders" in other
    served = evaluate(day, plan, policy="insertion:4", replications=2, seed=1)
    assert served.orders_unserved is not None and served.orders_unserved.mean == 0


def test_with_nodes_an_allocated_order_without_a_stop_is_left_out() -> None:
    """A re-plan keeps the allocation lines of the orders it completed, not their stops; an
    order the allocation left without a line (stock short everywhere) no plan routes."""
    day = _node_day()
    plan = Plan.model_validate(
        {
            "allocation": _lines("a", "b"),  # c: not allocated (the plan's diagnosis says so)
            "routes": [_route("v1", "b", pickups=True).model_dump()],
        }
    )
    assert orders_not_in_plan(day, plan) == ["a"]
    note = plan_coverage_note(day, plan, "plan")
    assert note is not None and "1 of the scenario's 3 orders" in note and ": a)" in note


@pytest.mark.parametrize("where", ["stop", "unassigned"])
def test_a_shipment_job_of_an_order_covers_that_order(where: str) -> None:
    """An order shipped from several nodes has courier jobs ``<order>@<node>``."""
    day = _node_day()
    data: dict[str, Any] = {"allocation": [*_lines("a", "b", "c"), *_lines("a", node="n2")]}
    if where == "stop":
        data["routes"] = [_route("v1", "a@n1", "a@n2", "b", "c", pickups=True).model_dump()]
    else:
        data["unassigned"] = [
            {"order_id": job, "reason": "over_capacity"} for job in ("a@n1", "a@n2", "b", "c")
        ]
    assert orders_not_in_plan(day, Plan.model_validate(data)) == []


def test_a_long_list_is_cut_after_five_orders() -> None:
    day = line_scenario()
    data = day.model_dump(mode="json")
    data["orders"] = [dict(data["orders"][0], id=f"o{k}") for k in range(8)]
    note = plan_coverage_note(Scenario.model_validate(data), Plan(), "nearest")
    assert note is not None and "(no stop, not unassigned: o0, o1, o2, o3, o4 and 3 more)" in note
