"""An order split over several nodes is served all or nothing, its penalty charged once.

The twin delivers an order once every parcel of it has arrived, and charges an order that is
not delivered its penalty once (``simulation.twin``: ``parcels_left``; ``simulation.result``:
one penalty per unserved order). The routing model of its courier jobs does the same.
"""

from __future__ import annotations

import time

import pytest

from scenarios import (
    AllocationLine,
    Break,
    FulfilmentNode,
    Location,
    Order,
    OrderLine,
    Scenario,
    TimeWindow,
    UnassignedReason,
    Vehicle,
)
from scenarios.plan import Plan, PlannedStop, Route, StopKind, Unassigned
from solvers.routing import RoutingParams, build_problem, routing_scenario_from_allocation
from solvers.routing import solve_routes_with_stats as solve
from solvers.routing.engines.base import EngineSettings
from solvers.routing.engines.ortools_engine import ORToolsEngine
from solvers.routing.engines.pyvrp_engine import PyVRPEngine, prize_shares
from solvers.routing.from_allocation import split_order_groups
from solvers.routing.polish import polish_routes
from solvers.routing.problem import left_out
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import SEARCH_ITERATIONS, UNHURRIED_S, unhurried

ENGINES = ["greedy", "ortools", "pyvrp"]


def _shop(
    penalty: int | None, *, far: int = 5000, closed_west: bool = False, rest: bool = False
) -> Scenario:
    """Order S split over node ``west`` (-5 km) and node ``east`` (``far`` m); its customer
    at (0, 500) m next to the courier's depot at the origin; 1 EUR per km.

    Alone, a shipment's round trip is 10.5 km (1,052 cents at ``far`` 5 km); both together
    20.5 km (2,052 cents).
    """
    west_hours = [TimeWindow(start_s=0, end_s=60)] if closed_west else []
    return Scenario(
        nodes=[
            FulfilmentNode(
                id="west",
                location=Location(x=-5000, y=0),
                processing_s=600,
                opening_hours=west_hours,
            ),
            FulfilmentNode(id="east", location=Location(x=far, y=0)),
        ],
        orders=[
            Order(
                id="S",
                location=Location(x=0, y=500),
                lines=[OrderLine(sku="a", quantity=1), OrderLine(sku="b", quantity=1)],
                penalty_cents=penalty,
            )
        ],
        vehicles=[
            Vehicle(
                id="v",
                start_location=Location(x=0, y=0),
                capacity=[10],
                cost_per_km_cents=100,
                # a break: the break-aware pass runs after the search
                breaks=[Break(window=TimeWindow(start_s=0, end_s=80_000), duration_s=600)]
                if rest
                else [],
            )
        ],
    )


def _jobs(scenario: Scenario) -> Scenario:
    return routing_scenario_from_allocation(
        scenario,
        [
            AllocationLine(order_id="S", sku="a", node_id="west", quantity=1),
            AllocationLine(order_id="S", sku="b", node_id="east", quantity=1),
        ],
    )


def _served(plan: Plan) -> set[str]:
    return {st.order_id for r in plan.routes for st in r.stops if st.order_id}


def test_the_jobs_of_a_split_order_are_one_group() -> None:
    jobs = _jobs(_shop(1500))
    assert split_order_groups(jobs.orders, [n.id for n in jobs.nodes]) == [[0, 1]]
    # an order shipped from one node is no group
    one = routing_scenario_from_allocation(
        _shop(1500), [AllocationLine(order_id="S", sku="a", node_id="west", quantity=2)]
    )
    assert split_order_groups(one.orders, [n.id for n in one.nodes]) == []


def test_a_split_order_left_out_costs_its_penalty_once() -> None:
    problem = build_problem(_jobs(_shop(1500)))
    assert left_out(problem, set()) == (0, 1500 * 1000)
    assert left_out(problem, {0}) == (0, 1500 * 1000)  # partly served: the twin charges it
    assert left_out(problem, {0, 1}) == (0, 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_split_order_whose_shipments_together_cost_more_than_its_penalty_is_dropped(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each shipment alone costs 1,052 cents, both 2,052, the penalty is 1,500: the order is
    worth dropping. Priced per shipment (1,500 each) both were served, at 2,052 cents."""
    jobs = _jobs(_shop(1500))
    plan, _ = solve(jobs, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert validate_plan(jobs, plan).ok
    assert plan.routes == [] or _served(plan) == set()
    assert {u.order_id for u in plan.unassigned} == {"S@west", "S@east"}
    assert all(u.reason is UnassignedReason.DROPPED_FOR_COST for u in plan.unassigned)
    assert plan.cost_cents == 1500  # the order's penalty, once (was 2 x 1,500 when dropped)
    assert sorted(u.penalty_cents for u in plan.unassigned) == [0, 1500]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_split_order_worth_its_penalty_is_served_whole(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = _jobs(_shop(2500))
    plan, _ = solve(jobs, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert validate_plan(jobs, plan).ok
    assert _served(plan) == {"S@west", "S@east"} and not plan.unassigned


@pytest.mark.parametrize("rest", [False, True])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_split_order_is_not_served_in_part(
    engine: str, rest: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The east shipment alone costs 4,052 cents, more than the 3,000 penalty, the west one
    1,052: per shipment the west one was served and the east one dropped, an order the twin
    never delivers (its penalty and the route both paid). Whole, it costs 5,052: dropped.
    With a break the break-aware pass follows the search."""
    jobs = _jobs(_shop(3000, far=20_000, rest=rest))
    plan, _ = solve(jobs, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert validate_plan(jobs, plan).ok
    assert _served(plan) == set()
    assert plan.cost_cents == 3000


@pytest.mark.parametrize("engine", ENGINES)
def test_a_shipment_that_cannot_be_served_leaves_its_order_out(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The west node closes before the parcel is ready (``node_closed``): the east shipment
    alone would be a route for an order the twin never delivers."""
    jobs = _jobs(_shop(None, closed_west=True))
    plan, _ = solve(jobs, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert validate_plan(jobs, plan).ok
    assert plan.routes == [] or _served(plan) == set()
    left = {u.order_id: u for u in plan.unassigned}
    assert left["S@west"].reason is UnassignedReason.NODE_CLOSED
    assert left["S@east"].reason is UnassignedReason.NODE_CLOSED
    assert "S@west" in left["S@east"].detail
    assert plan.cost_cents == jobs.costs.unserved_cents  # once, not per shipment


def test_ortools_ties_the_shipments_of_a_split_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """OR-Tools' own answer (no pass after it) serves both shipments or neither, from a seed
    serving both: per shipment it dropped the dear east one (cheaper by 1,000 cents)."""
    problem = build_problem(_jobs(_shop(3000, far=20_000)))
    seq = [problem.orders[o].tasks for o in (0, 1)]
    seed = {0: [seq[0][0], seq[1][0], seq[0][1], seq[1][1]]}
    limit = unhurried(monkeypatch)["time_limit_s"]  # stopped after 50 solutions, not the clock
    settings = EngineSettings(
        time_limit_s=limit, deadline=time.perf_counter() + limit, seed_routes=seed
    )
    result = ORToolsEngine().solve(problem, settings)
    served = {problem.tasks[t].order for r in result.routes.values() for t in r}
    assert served in (set(), {0, 1})


def test_pyvrp_prices_a_split_order_at_its_penalty_once() -> None:
    """PyVRP's own answer (no pass after it): its prizes share the 1,500 penalty between the
    two jobs, so serving both (2,052 cents) loses to leaving the order out. At the full
    penalty each (3,000 together) it served both."""
    problem = build_problem(_jobs(_shop(1500)))
    assert prize_shares(problem) == {0: 750 * 1000, 1: 750 * 1000}
    settings = EngineSettings(
        time_limit_s=UNHURRIED_S,
        deadline=time.perf_counter() + UNHURRIED_S,
        max_iterations=SEARCH_ITERATIONS,
        seed=1,
    )
    result = PyVRPEngine().solve(problem, settings)
    assert result.feasible and result.routes == {}


def test_the_break_aware_pass_does_not_insert_one_job_of_a_split_order() -> None:
    """Both jobs left out: the west one alone costs 1,052 cents, below the 3,000 penalty,
    but saves none of it (the east one stays out). The pass inserted it."""
    problem = build_problem(_jobs(_shop(3000, far=20_000, rest=True)))
    done = polish_routes(problem, {}, deadline=time.perf_counter() + UNHURRIED_S)
    assert done.routes == {} and done.after == done.before == 3000 * 1000


def _plan_serving_west() -> Plan:
    """A hand-made plan serving the west shipment only, the east one listed unassigned."""
    stops = [
        PlannedStop(
            order_id="S@west", kind=StopKind.PICKUP, arrival_s=500, start_s=600, departure_s=600
        ),
        PlannedStop(
            order_id="S@west",
            kind=StopKind.DELIVERY,
            arrival_s=1105,
            start_s=1105,
            departure_s=1105,
        ),
    ]
    return Plan(
        routes=[Route(vehicle_id="v", stops=stops, start_s=100, end_s=1155)],
        unassigned=[Unassigned(order_id="S@east", reason=UnassignedReason.DROPPED_FOR_COST)],
    )


def test_the_validator_refuses_a_split_order_served_in_part() -> None:
    jobs = _jobs(_shop(1500))
    plan = _plan_serving_west()
    check = validate_plan(jobs, plan)
    assert [v.constraint for v in check.violations if v.constraint == "split_order"] == [
        "split_order"
    ]
    split = next(v for v in check.violations if v.constraint == "split_order")
    assert "S@east" in split.detail and "S@west" in split.detail


def test_the_validator_charges_a_dropped_split_order_once() -> None:
    jobs = _jobs(_shop(1500))
    plan = Plan(
        unassigned=[
            Unassigned(order_id=o, reason=UnassignedReason.DROPPED_FOR_COST)
            for o in ("S@west", "S@east")
        ],
        cost_cents=1500,
    )
    check = validate_plan(jobs, plan)
    assert check.ok, check.summary()
    assert check.cost_cents == 1500
