"""check_plan_ids: its set look-ups (plan_ids_known) take what the twin's translation takes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scenarios import Plan, Scenario
from scenarios.errors import InputError
from scenarios.stochastic import StochasticParams
from simulation.twin import _PlanRoutes, check_plan_ids, plan_ids_known
from simulation.world import compile_world

_XS = [0, 100, 200, 300, 400, 500]  # the scenario's locations are drawn from these (y = 0)
_OFF = 999  # never a location of the scenario


def _loc(x: int) -> dict[str, int]:
    return {"x": x, "y": 0}


@st.composite
def _scenario(draw: st.DrawFn) -> dict[str, Any]:
    """A few nodes (or none: the twin's depots), vehicles and orders on a line, some orders
    with a pickup of their own, some SKUs only in a catalogue or an inventory."""
    xs = st.sampled_from(_XS)
    node_ids = draw(st.lists(st.sampled_from(["n1", "n2", "n3"]), max_size=3, unique=True))
    nodes = [
        {
            "id": n,
            "location": _loc(draw(xs)),
            "inventory": dict.fromkeys(draw(st.lists(st.sampled_from(["A", "C"]), unique=True)), 5),
        }
        for n in node_ids
    ]
    vehicle_ids = draw(st.lists(st.sampled_from(["v1", "v2", "v3"]), min_size=1, unique=True))
    vehicles = [
        {"id": v, "start_location": _loc(draw(xs))}
        | ({"end_location": _loc(draw(xs))} if draw(st.booleans()) else {})
        | {
            "breaks": [
                {"window": {"start_s": 100 * k, "end_s": 100 * k + 50}, "duration_s": 60}
                for k in range(draw(st.integers(0, 2)))
            ]
        }
        for v in vehicle_ids
    ]
    order_ids = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, unique=True))
    orders = [
        {
            "id": o,
            "location": _loc(draw(xs)),
            "lines": [{"sku": s, "quantity": 1} for s in draw(st.lists(st.sampled_from("AB")))],
        }
        | ({"pickup": {"location": _loc(draw(xs))}} if draw(st.booleans()) else {})
        for o in order_ids
    ]
    stochastic = StochasticParams.deterministic().model_dump()
    if draw(st.sampled_from(range(10))) == 5:  # a scenario that does not compile: the twin's
        stochastic["node_outages"] = [{"node_id": "zz", "window": {"start_s": 0, "end_s": 1}}]
    return {
        "name": "ids",
        "horizon": {"start_s": 0, "end_s": 5000},
        "skus": [{"id": s} for s in draw(st.sampled_from([[], ["A", "B", "C", "D"]]))],
        "nodes": nodes,
        "orders": orders,
        "vehicles": vehicles,
        "stochastic": stochastic,
    }


def _rarely(draw: st.DrawFn, known: list[str], unknown: list[str]) -> str:
    """One of ``known`` (if any), one time in twelve (or when none is) one of ``unknown``."""
    if not known or draw(st.sampled_from(range(12))) == 0:
        return draw(st.sampled_from(unknown))
    return draw(st.sampled_from(known))


@st.composite
def _plan(draw: st.DrawFn, scenario: dict[str, Any]) -> dict[str, Any]:
    """Allocation lines and routes of ``scenario``'s ids and locations, now and then an
    unknown one (an order, node, SKU, vehicle, location), a vehicle twice, a shipment job
    ``<order>@<node>``, a pickup at a node, at its order's own pickup or elsewhere, a break
    stop naming a break of its vehicle, one it lacks or one another stop names."""
    orders = [o["id"] for o in scenario["orders"]]
    nodes = [n["id"] for n in scenario["nodes"]] or [
        f"depot:{v['id']}" for v in scenario["vehicles"]
    ]
    vehicles = [v["id"] for v in scenario["vehicles"]]
    skus = sorted({ln["sku"] for o in scenario["orders"] for ln in o["lines"]} | {"C", "D"})
    own = [o["pickup"]["location"]["x"] for o in scenario["orders"] if "pickup" in o]
    at_nodes = [n["location"]["x"] for n in scenario["nodes"]]
    allocation = [
        {
            "order_id": _rarely(draw, orders, ["zz", "a@n1"]),
            "sku": _rarely(draw, skus, ["Z"]),
            "node_id": _rarely(draw, nodes, ["nq", "depot:v1"]),
            "quantity": 1,
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    routes = []
    for _ in range(draw(st.integers(0, 3))):
        stops = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["pickup", "pickup", "delivery", "break"]))
            order_id = _rarely(draw, orders, ["zz", "b@x", "@"])
            if draw(st.booleans()):  # a shipment job of the order
                order_id = f"{order_id}@{_rarely(draw, nodes, ['nq'])}"
            xs = draw(st.sampled_from([own, at_nodes, _XS])) or _XS
            x = _OFF if draw(st.sampled_from(range(8))) == 0 else draw(st.sampled_from(xs))
            stops.append(
                {
                    "order_id": None if draw(st.sampled_from(range(8))) == 0 else order_id,
                    "kind": kind,
                    "location": draw(st.sampled_from([None, _loc(x)])),
                    "arrival_s": 0,
                    "start_s": 0,
                    "departure_s": 0,
                }
                | (
                    {"break_index": draw(st.sampled_from([None, 0, 1, 2]))}
                    if kind == "break"
                    else {}
                )
            )
        routes.append({"vehicle_id": _rarely(draw, vehicles, ["vq"]), "stops": stops})
    return {"allocation": allocation, "routes": routes}


def _old_check_plan_ids(scenario: Scenario, plan: Plan, *, source: str | None = None) -> None:
    """check_plan_ids as it was: the twin's translation on a compiled world, every time."""
    if not plan.routes and not plan.allocation:
        return
    try:
        world = compile_world(scenario, travel_tables=False)
    except InputError:
        return
    try:
        _PlanRoutes(world, plan)
    except InputError as err:
        raise InputError(err.field, err.reason, source=source) from None


def _outcome(check: Any, scenario: Scenario, plan: Plan) -> tuple[str, str, str | None] | None:
    try:
        check(scenario, plan, source="p.json")
    except InputError as err:
        return err.field, err.reason, err.source
    return None


def _check_plan_ids_against_the_old_check_and_the_twin(
    scenario_data: dict[str, Any], data: st.DataObject
) -> None:
    """The same error (field, reason, source) or none as the check that compiled the world
    every time; and where the world compiles, plan_ids_known is True exactly when the twin's
    translation of the plan takes it (the fast path is taken for every good plan)."""
    plan_data = data.draw(_plan(scenario_data), label="plan")
    try:
        scenario = Scenario.model_validate(scenario_data)
        plan = Plan.model_validate(plan_data)
    except ValidationError:
        event("invalid scenario or plan")
        return
    new = _outcome(check_plan_ids, scenario, plan)
    assert new == _outcome(_old_check_plan_ids, scenario, plan)
    try:
        world = compile_world(scenario, travel_tables=False)
    except InputError:
        event("the scenario does not compile")
        return
    try:
        _PlanRoutes(world, plan)
    except InputError as err:
        event(f"refused on {err.field.rsplit('.', 1)[-1]}: {err.reason.split(' ')[-1]}")
        assert not plan_ids_known(scenario, plan)
    else:
        event("taken")
        assert plan_ids_known(scenario, plan)


@settings(max_examples=100, deadline=None)
@given(scenario_data=_scenario(), data=st.data())
def test_check_plan_ids_refuses_as_it_did_and_its_set_look_ups_agree_with_the_twin(
    scenario_data: dict[str, Any], data: st.DataObject
) -> None:
    """:func:`_check_plan_ids_against_the_old_check_and_the_twin` on 100 drawn scenarios and
    plans (the slow run: 300)."""
    _check_plan_ids_against_the_old_check_and_the_twin(scenario_data, data)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(scenario_data=_scenario(), data=st.data())
def test_check_plan_ids_refuses_as_it_did_and_its_set_look_ups_agree_with_the_twin_over_300(
    scenario_data: dict[str, Any], data: st.DataObject
) -> None:
    """:func:`_check_plan_ids_against_the_old_check_and_the_twin` on 300 drawn scenarios and
    plans (the default run: 100)."""
    _check_plan_ids_against_the_old_check_and_the_twin(scenario_data, data)


def _two_nodes() -> dict[str, Any]:
    """Nodes n1 (x=0) and n2 (x=100); order a (x=300) ships, order p (x=400) has its own
    pickup at x=500; a vehicle v1 from x=200."""
    return {
        "name": "two-nodes",
        "horizon": {"start_s": 0, "end_s": 5000},
        "nodes": [{"id": "n1", "location": _loc(0)}, {"id": "n2", "location": _loc(100)}],
        "orders": [
            {"id": "a", "location": _loc(300), "lines": [{"sku": "A", "quantity": 2}]},
            {"id": "p", "location": _loc(400), "pickup": {"location": _loc(500)}},
        ],
        "vehicles": [{"id": "v1", "start_location": _loc(200)}],
        "stochastic": StochasticParams.deterministic().model_dump(),
    }


@pytest.mark.parametrize(
    ("nodes", "order_id", "x", "taken"),
    [
        (["n1"], "a", None, True),  # its one node
        (["n1", "n2"], "a", None, False),  # which of its two nodes?
        (["n1", "n2"], "a@n2", 100, True),  # its job from n2, at n2
        (["n1"], "a", 200, False),  # not a node
        (["n1"], "a", _OFF, False),  # not a location of the scenario
        ([], "p", None, True),  # its own pickup
        ([], "p", 500, True),
        # elsewhere, at a node: taken, and played at the node, where nothing is picked for p
        # (its courier waited there for good); p is a courier job from its own pickup
        ([], "p", 100, False),
        ([], "p", 300, False),  # elsewhere, not at a node
        ([], "p", _OFF, False),
    ],
)
def test_a_pickup_is_taken_where_the_twin_takes_it(
    nodes: list[str], order_id: str, x: int | None, taken: bool
) -> None:
    """Each way the twin places a pickup stop (its order's own pickup, a node it ships from,
    a node at the stop's location), and refuses one."""
    scenario = Scenario.model_validate(_two_nodes())
    stop = {"order_id": order_id, "kind": "pickup", "arrival_s": 0, "start_s": 0}
    stop |= {"departure_s": 0, "location": _loc(x) if x is not None else None}
    plan = Plan.model_validate(
        {
            "allocation": [
                {"order_id": "a", "sku": "A", "node_id": n, "quantity": 1} for n in nodes
            ],
            "routes": [{"vehicle_id": "v1", "stops": [stop]}],
        }
    )
    assert plan_ids_known(scenario, plan) is taken
    assert _outcome(check_plan_ids, scenario, plan) == _outcome(_old_check_plan_ids, scenario, plan)
    if not taken:
        with pytest.raises(InputError) as err:
            check_plan_ids(scenario, plan, source="p.json")
        assert err.value.field.startswith("plan.routes.0.stops.0.")


def test_an_order_with_its_own_pickup_is_not_allocated_by_a_plan() -> None:
    """An allocation line of order p (its own pickup) contradicts the twin, which allocates
    nothing for it (its courier collects it at its pickup): refused, naming the line."""
    scenario = Scenario.model_validate(_two_nodes())
    line = {"order_id": "p", "sku": "A", "node_id": "n1", "quantity": 1}
    plan = Plan.model_validate({"allocation": [line]})
    assert not plan_ids_known(scenario, plan)
    with pytest.raises(InputError) as err:
        check_plan_ids(scenario, plan, source="p.json")
    assert (err.value.field, err.value.source) == ("plan.allocation.0.order_id", "p.json")
    assert err.value.reason.startswith("order 'p' has a pickup of its own: it is a pickup-")


@pytest.mark.parametrize(("node_id", "order_id"), [("n2", "a@n2"), ("n@2", "a@n@2")])
def test_a_job_of_a_node_whose_id_holds_an_at_sign_is_its_orders(
    node_id: str, order_id: str
) -> None:
    """The job ``a@n@2`` of order a shipped from node ``n@2`` was read as order ``a@n`` (the
    text before its last '@'): unknown, the plan refused. It is a's job, picked at n@2."""
    data = _two_nodes()
    data["nodes"][1]["id"] = node_id
    scenario = Scenario.model_validate(data)
    lines = [{"order_id": "a", "sku": "A", "node_id": n, "quantity": 1} for n in ("n1", node_id)]
    stops = [
        {"order_id": order_id, "kind": kind, "arrival_s": 0, "start_s": 0, "departure_s": 0}
        | ({"location": _loc(100)} if kind == "pickup" else {})
        for kind in ("pickup", "delivery")
    ]
    plan = Plan.model_validate(
        {"allocation": lines, "routes": [{"vehicle_id": "v1", "stops": stops}]}
    )
    assert plan_ids_known(scenario, plan)
    check_plan_ids(scenario, plan)
    routes = _PlanRoutes(compile_world(scenario, travel_tables=False), plan)
    assert [(st.order, st.node) for st in routes.stops[0]] == [(0, 1), (0, -1)]


def test_a_scenario_without_nodes_ships_from_its_vehicles_depots() -> None:
    """The twin's depot ``depot:<vehicle>`` (one per start location) is a node of the plan."""
    data = _two_nodes() | {"nodes": []}
    data["vehicles"].append({"id": "v2", "start_location": _loc(200)})  # the same depot
    scenario = Scenario.model_validate(data)
    for node_id, taken in (("depot:v1", True), ("depot:v2", False)):
        line = {"order_id": "a", "sku": "A", "node_id": node_id, "quantity": 1}
        plan = Plan.model_validate({"allocation": [line]})
        assert plan_ids_known(scenario, plan) is taken
        new = _outcome(check_plan_ids, scenario, plan)
        assert new == _outcome(_old_check_plan_ids, scenario, plan)
        assert (new is None) is taken


@pytest.mark.parametrize(("x", "taken"), [(None, True), (500, True), (_OFF, False)])
def test_a_break_is_taken_where_it_is_or_at_a_location_of_the_scenario(
    x: int | None, taken: bool
) -> None:
    """A break stays where the courier is, or goes to a location the scenario has."""
    scenario = Scenario.model_validate(_two_nodes())
    stop = {"kind": "break", "arrival_s": 0, "start_s": 0, "departure_s": 60}
    stop |= {"location": _loc(x) if x is not None else None}
    plan = Plan.model_validate({"routes": [{"vehicle_id": "v1", "stops": [stop]}]})
    assert plan_ids_known(scenario, plan) is taken
    new = _outcome(check_plan_ids, scenario, plan)
    assert new == _outcome(_old_check_plan_ids, scenario, plan)
    assert (new is None) is taken
