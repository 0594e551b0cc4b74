"""The index-form problem: tasks at one place share a node; every engine still routes them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import EuclideanTravel, Location, Scenario, TimeWindow, Vehicle
from scenarios.errors import InputError, ScenarioInputError
from scenarios.geo import MAX_INT
from scenarios.plan import Plan, PlannedStop, Route, StopKind
from scenarios.travel import GridSpec, RoadNetworkTravel
from solvers.routing import RoutingParams, build_problem, solve_routes
from solvers.routing.engines.ortools_engine import ORToolsEngine
from solvers.routing.engines.pyvrp_engine import PyVRPEngine
from solvers.routing.problem import ENGINE_INT_LIMIT, check_int_range, objective_bound
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import (
    make_city,
    unhurried,
    with_pickups,
)
from tests.solvers.routing.test_properties import scenarios

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
def test_engines_route_orders_that_share_a_node(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _two_at_one_door()
    # the searches stop after their iterations or solutions: on the clock, a loaded machine
    # left PyVRP no time and the greedy plan (which splits the door's orders) answered
    plan = solve_routes(s, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert plan.engine == engine
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
def test_engines_route_pickups_from_one_store(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s = with_pickups(make_city(6))
    # the engine's plan on any machine (at 0.4 s a loaded one could leave it no time to start)
    plan = solve_routes(s, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert plan.engine == engine
    check = validate_plan(s, plan)
    assert check.ok, check.summary()
    assert not plan.unassigned


# --- the engines' 64-bit range -------------------------------------------------------------


def _far_city(price_cents_per_km: int, *, half_side: float = 1e9, **vehicle: int) -> Scenario:
    """Two orders at opposite corners of a 2e9-wide plane, one vehicle in the middle."""
    s = make_city(2, time_windows=[])
    orders = [
        o.model_copy(update={"location": Location(x=half_side * (1 if i else -1), y=half_side)})
        for i, o in enumerate(s.orders)
    ]
    courier = Vehicle(
        id="v0",
        start_location=Location(x=0, y=0),
        cost_per_km_cents=price_cents_per_km,
        **vehicle,
    )
    return s.model_copy(
        update={
            "orders": orders,
            "vehicles": [courier],
            "horizon": TimeWindow(start_s=0, end_s=MAX_INT),
            "travel": EuclideanTravel(speed_m_per_s=1000.0),
        }
    )


@pytest.mark.parametrize(
    ("scenario", "field"),
    [
        # 10**12 cents per km over ~3e9 m hops: 1e21 milli-cents per arc wrapped in int64
        (_far_city(MAX_INT), "vehicles.0.cost_per_km_cents"),
        (_far_city(10**10, half_side=1e8), "vehicles.0.cost_per_km_cents"),
        # time priced at 10**12 cents per hour over a 10**12 s shift
        (_far_city(0, cost_per_hour_cents=MAX_INT), "vehicles.0.cost_per_hour_cents"),
    ],
)
def test_a_problem_whose_costs_pass_int64_is_an_input_error_naming_the_price(
    scenario: Scenario, field: str
) -> None:
    with pytest.raises(ScenarioInputError) as err:
        build_problem(scenario)
    assert err.value.field == field
    assert "64-bit integers" in err.value.reason
    assert err.value.under("params").field == f"scenario.{field}"


def test_penalties_that_add_up_past_int64_name_the_largest() -> None:
    s = make_city(6)
    orders = [o.model_copy(update={"penalty_cents": MAX_INT - i}) for i, o in enumerate(s.orders)]
    fine = build_problem(s.model_copy(update={"orders": orders}))  # 6e15: large but safe
    assert sum(objective_bound(fine).values()) < ENGINE_INT_LIMIT
    many = [
        o.model_copy(update={"id": f"{o.id}-{k}", "penalty_cents": MAX_INT})
        for k in range(800)
        for o in orders
    ]
    with pytest.raises(ScenarioInputError) as err:
        build_problem(s.model_copy(update={"orders": many}))
    assert err.value.field.startswith("orders.")
    assert err.value.field.endswith(".penalty_cents")


@pytest.mark.parametrize("engine", ["pyvrp", "ortools"])
def test_no_engine_runs_on_a_problem_past_int64(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The range is checked before the search: PyVRP used to search the wrapped costs and
    fall back with 'no feasible solution'."""

    def search(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine ran on costs past int64")

    monkeypatch.setattr(PyVRPEngine, "solve", search)
    monkeypatch.setattr(ORToolsEngine, "solve", search)
    with pytest.raises(ScenarioInputError) as err:
        solve_routes(_far_city(MAX_INT), RoutingParams(engine=engine, time_limit_s=1))
    assert err.value.field == "vehicles.0.cost_per_km_cents"


@pytest.mark.parametrize("engine", ["pyvrp", "ortools"])
def test_large_but_safe_prices_are_routed(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """10**10 cents per km on the 10 km city: 1e17 milli-cents of bound, within int64."""
    s = make_city(4)
    fleet = [v.model_copy(update={"cost_per_km_cents": 10**10}) for v in s.vehicles]
    s = s.model_copy(update={"vehicles": fleet})
    # the searches stop after their iterations or solutions, not on a 1 s clock a loaded
    # machine may use up
    plan = solve_routes(s, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert validate_plan(s, plan).ok
    assert not plan.unassigned
    assert plan.engine == engine
    assert plan.cost_cents == sum(r.distance_m for r in plan.routes) * 10**10 // 1000


@settings(max_examples=60, deadline=None)
@given(
    price=st.integers(0, MAX_INT),
    hour=st.integers(0, MAX_INT),
    side=st.floats(1.0, 1e9),
    fixed=st.integers(0, MAX_INT),
)
def test_a_problem_that_passes_the_check_has_arc_costs_that_do_not_wrap(
    price: int, hour: int, side: float, fixed: int
) -> None:
    """Either the problem is refused, or every arc cost the engines compute in int64 (numpy's
    distance x price, OR-Tools' arc matrices) is the exact product, and the bound holds."""
    s = _far_city(price, half_side=side, cost_per_hour_cents=hour, fixed_cost_cents=fixed)
    try:
        p = build_problem(s)
    except ScenarioInputError as err:
        assert err.field.startswith("vehicles.0.")
        return
    bound = objective_bound(p)
    assert sum(bound.values()) <= ENGINE_INT_LIMIT
    for v in p.vehicles:
        wrapped = p.distance * v.unit_distance_cost
        exact = p.distance.astype(object) * v.unit_distance_cost
        assert (wrapped.astype(object) == exact).all()
        span = v.shift[1] - v.shift[0]
        assert span * v.unit_duration_cost + v.fixed_cost <= ENGINE_INT_LIMIT


def _disrupting(disruption_cents: int) -> tuple[Scenario, RoutingParams]:
    """The far city priced so that its plans can cost 1.5e15 milli-cents less than 2**62, and
    a warm start with both orders (two visits) on v0, moved at ``disruption_cents`` each."""
    probe = build_problem(_far_city(1))
    price = int((ENGINE_INT_LIMIT - 1.5e15) // sum(objective_bound(probe).values()))
    s = _far_city(price)
    assert sum(objective_bound(build_problem(s)).values()) <= ENGINE_INT_LIMIT - 1.4e15
    stops = [PlannedStop(order_id=o.id, arrival_s=0, start_s=0, departure_s=0) for o in s.orders]
    initial = Plan(routes=[Route(vehicle_id="v0", stops=stops)])
    return s, RoutingParams(
        engine="ortools",
        time_limit_s=1,
        initial_plan=initial,
        disruption_cost_cents=disruption_cents,
    )


def test_the_disruption_cost_counts_once_per_visit_of_the_initial_plan() -> None:
    p = build_problem(_far_city(10))
    plain = objective_bound(p)
    with_it = objective_bound(p, disruption_cost=7 * 1000, disrupted=2)
    assert with_it == {**plain, "disruption_cost_cents": 14_000.0}


@pytest.mark.parametrize("engine", ["ortools", "greedy"])
def test_a_disruption_cost_past_int64_is_an_input_error_naming_it(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two visits moved at 10**12 cents (1e15 milli-cents each) on top of plans that can cost
    2**62 - 1.5e15: OR-Tools' arc costs and the plan value would wrap around."""

    def search(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine ran on costs past int64")

    monkeypatch.setattr(ORToolsEngine, "solve", search)
    s, params = _disrupting(MAX_INT)
    with pytest.raises(InputError) as err:
        solve_routes(s, params.model_copy(update={"engine": engine}))
    assert not isinstance(err.value, ScenarioInputError)  # a params field, not the scenario's
    assert err.value.field == "disruption_cost_cents"
    assert "disruption cost of moving 2 visits" in err.value.reason
    assert err.value.under("params").field == "params.disruption_cost_cents"


def test_a_disruption_cost_within_int64_passes_the_check() -> None:
    s, _ = _disrupting(10**11)  # 2e14 milli-cents of disruption: within the room left
    p = build_problem(s)
    check_int_range(p, 10**11 * 1000, 2)


def test_the_bound_names_an_order_by_its_place_in_the_scenario() -> None:
    """A restricted problem (orders the diagnosis left out) holds fewer orders: the field is
    the scenario's, not the problem's position."""
    s = make_city(3)
    orders = [o.model_copy(update={"penalty_cents": 100 * (i + 1)}) for i, o in enumerate(s.orders)]
    p = build_problem(s.model_copy(update={"orders": orders})).restrict([2])
    assert [f for f in objective_bound(p) if f.startswith("orders.")] == ["orders.2.penalty_cents"]


@settings(max_examples=40, deadline=None)
@given(
    s=scenarios(),
    price=st.sampled_from([0, 1, 100, 10**9]),
    hourly=st.sampled_from([0, 3_600, 10**9]),
    fixed=st.sampled_from([0, 5_000]),
    metres=st.sampled_from([1.0, 10.0, 1000.0]),
)
def test_the_quick_objective_bound_is_above_the_exact_one(
    s: Scenario, price: int, hourly: int, fixed: int, metres: float
) -> None:
    """Property: the bound read from the scenario alone (no travel matrix), which a service
    checks before it queues a routing, is never below :func:`objective_bound`: a scenario it
    passes is in range (the exact check is skipped for it)."""
    from solvers.routing.problem import quick_objective_bound

    fleet = [
        v.model_copy(
            update={
                "cost_per_km_cents": price,
                "cost_per_hour_cents": hourly,
                "fixed_cost_cents": fixed,
            }
        )
        for v in s.vehicles
    ]
    travel = EuclideanTravel(speed_m_per_s=5.0, metres_per_unit=metres)
    s = s.model_copy(update={"vehicles": fleet, "travel": travel})
    quick = quick_objective_bound(s)
    assert quick is not None
    try:
        exact = sum(objective_bound(build_problem(s)).values())
    except ScenarioInputError:  # out of range: the exact bound is past the limit
        assert quick > ENGINE_INT_LIMIT
        return
    assert quick >= exact


@settings(max_examples=25, deadline=None)
@given(
    s=scenarios(),
    price=st.sampled_from([0, 1, 100, 10**9]),
    hourly=st.sampled_from([0, 3_600, 10**9]),
    grid=st.sampled_from(
        [
            GridSpec(rows=2, cols=2, spacing_m=50.0, origin_x=-30.0, origin_y=-30.0),
            GridSpec(rows=3, cols=5, spacing_m=7.0, arterial_every=2),
            GridSpec(rows=6, cols=4, spacing_m=30.0, street_speed_m_per_s=2.0, origin_x=20.0),
        ]
    ),
)
def test_the_quick_objective_bound_of_a_road_network_is_above_the_exact_one(
    s: Scenario, price: int, hourly: int, grid: GridSpec
) -> None:
    """Property: a road network's bound (its graph's longest fastest path, the access legs
    of the places, no shortest path found) is never below :func:`objective_bound`, which
    reads the matrix of fastest paths: the service's check before queueing (which returned
    no bound for a road network until session 63) skips only scenarios in range."""
    from solvers.routing.problem import quick_objective_bound

    fleet = [
        v.model_copy(update={"cost_per_km_cents": price, "cost_per_hour_cents": hourly})
        for v in s.vehicles
    ]
    s = s.model_copy(update={"vehicles": fleet, "travel": RoadNetworkTravel(grid=grid)})
    quick = quick_objective_bound(s)
    try:
        exact = sum(objective_bound(build_problem(s)).values())
    except ScenarioInputError:
        assert quick > ENGINE_INT_LIMIT
        return
    assert quick >= exact


@settings(max_examples=25, deadline=None)
@given(s=scenarios(), hourly=st.sampled_from([0, 3_600, 10**9]), data=st.data())
def test_a_plan_s_quick_objective_bound_is_above_that_of_any_allocation_s_jobs(
    s: Scenario, hourly: int, data: st.DataObject
) -> None:
    """Property: with ``shipments`` (every order shipped from up to that many nodes, a
    pickup at the node and a delivery each), the bound read from a plan's scenario is never
    below the exact bound of the courier jobs of an allocation of it: a plan the service's
    check before queueing lets through (below the limit) no allocation takes out of range."""
    from scenarios import AllocationLine, FulfilmentNode
    from solvers.routing import routing_scenario_from_allocation
    from solvers.routing.problem import quick_objective_bound

    nodes = [
        FulfilmentNode(id=f"n{k}", location=Location(x=float(40 * k - 60), y=float(90 - 70 * k)))
        for k in range(3)
    ]
    fleet = [v.model_copy(update={"cost_per_hour_cents": hourly}) for v in s.vehicles]
    orders = [o for o in s.orders if o.pickup is None]
    plan = s.model_copy(update={"vehicles": fleet, "nodes": nodes, "orders": orders})
    lines = [
        AllocationLine(order_id=o.id, sku="a", node_id=node.id, quantity=1)
        for o in orders
        for node in nodes
        if data.draw(st.booleans())
    ]
    jobs = routing_scenario_from_allocation(plan, lines)
    quick = quick_objective_bound(plan, shipments=len(nodes))
    try:
        exact = sum(objective_bound(build_problem(jobs)).values())
    except ScenarioInputError:
        assert quick > ENGINE_INT_LIMIT
        return
    assert quick >= exact


def test_the_longest_arcs_look_at_the_matrix_deadline_a_block_of_rows_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The longest arc out of each node (the range check's bound, in the problem's build)
    is taken a block of rows at a time, looking at the travel matrix's deadline between
    blocks (a pass over each 10,000-place matrix took 0.1-0.15 s with no look): the same
    values as the whole matrices' row maxima, and a deadline passed stops it."""
    import math

    from scenarios.travel import MatrixDeadlineError, matrix_deadline
    from solvers.routing import problem as problem_module

    s = make_city(9)
    monkeypatch.setattr(problem_module, "ARC_BLOCK", 4)  # blocks of a few rows
    problem = build_problem(s)
    problem.__dict__.pop("longest_arcs", None)  # (taken by the range check)
    with matrix_deadline(-math.inf), pytest.raises(MatrixDeadlineError):
        _ = problem.longest_arcs
    longest_d, longest_t = problem.longest_arcs  # outside the deadline's block
    assert longest_d.tolist() == problem.distance.max(axis=1).astype(np.float64).tolist()
    assert longest_t.tolist() == problem.duration.max(axis=1).astype(np.float64).tolist()
