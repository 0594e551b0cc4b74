"""The hindsight reference: the materialised day is the same day; the offline plan replays."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from rl_agents.hindsight import (
    ITERATION_CAP_S,
    DaySimulator,
    HindsightParams,
    _whole_orders,
    budget_settings,
    day_routing_problem,
    drawn_orders,
    hindsight,
    materialise_day,
    parse_iterations,
    split_demand,
    split_penalty,
)
from scenarios import (
    AllocationLine,
    FulfilmentNode,
    Location,
    Order,
    OrderLine,
    Plan,
    PlannedStop,
    Route,
    Scenario,
    Sku,
    StopKind,
    Vehicle,
)
from scenarios.errors import InputError
from scenarios.geo import TimeWindow
from scenarios.stochastic import StochasticParams
from simulation import DispatchSimulator, simulate
from simulation.decisions import OrderStatus, StopType
from simulation.params import SimParams
from simulation.world import compile_world
from solvers.routing import RoutingParams, solve_routes


def test_materialised_day_is_the_same_day(tiny: Scenario) -> None:
    day = materialise_day(tiny, seed=4)
    assert day.arrivals is None
    assert len(day.orders) > len(tiny.orders)
    for policy in ("insertion", "greedy"):
        online = simulate(tiny, None, policy, seed=4).metrics
        offline = simulate(day, None, policy, seed=4).metrics
        assert offline["orders_total"] == online["orders_total"]
        # as written, arrival times are rounded up to whole seconds: close on this day, not
        # on every day (decisions can diverge), hence DaySimulator (test below)
        assert offline["cost_cents"] == pytest.approx(online["cost_cents"], abs=50.0)


@pytest.mark.parametrize("listed", [False, True])
def test_a_materialised_day_copies_the_arrival_templates(listed: bool) -> None:
    """Arrivals are written out as copies of their templates (``arrivals.templates``, else the
    listed orders); a template's own pickup id is not copied (every arrival drawn from it had
    the same pickup id: the materialised day was invalid)."""
    from tests.simulation.conftest import line_scenario

    line = line_scenario()
    template = {
        "id": "t",
        "location": {"x": 100, "y": 0},
        "pickup": {"id": "P", "location": {"x": 10, "y": 0}},
    }
    process = {"hourly_rate": [20.0] * 24, "templates": [] if listed else [template]}
    scenario = Scenario.model_validate(
        {**line.model_dump(), "orders": [template] if listed else [], "arrivals": process}
    )
    day = materialise_day(scenario, seed=1)
    arrivals = day.orders[len(scenario.orders) :]
    assert len(arrivals) > 3 and all(o.id.startswith("arrival-") for o in arrivals)
    assert {(o.location.x, o.pickup.location.x if o.pickup else None) for o in arrivals} == {
        (100.0, 10.0)
    }
    assert [o.pickup_id for o in arrivals] == [f"{o.id}:pickup" for o in arrivals]
    Scenario.model_validate(day.model_dump())  # a valid day: no task id twice
    online = simulate(scenario, None, "insertion", seed=1).metrics
    offline = simulate(day, None, "insertion", seed=1).metrics
    assert offline["orders_total"] == online["orders_total"] == len(day.orders)


def test_routing_problem_has_every_order_with_node_hours(tiny: Scenario) -> None:
    day = materialise_day(tiny, seed=2)
    problem, allocation = day_routing_problem(day, pricing="shift")
    world = compile_world(day)
    assert problem.arrivals is None and not problem.nodes
    assert allocation
    node_of = {n.id: n for n in world.nodes}
    for job in problem.orders:
        assert job.pickup is not None and job.penalty_cents is not None
        window = job.pickup.time_windows[0]
        node_id = (
            job.id.split("@")[1]
            if "@" in job.id
            else next(a.node_id for a in allocation if a.order_id == job.id)
        )
        closes = node_of[node_id].closes_for_good_s()  # collected before it, or lost
        assert window.end_s < closes
    by_id = {v.id: v for v in day.vehicles}
    for v in problem.vehicles:  # shift pricing: the whole shift's hours are a fixed cost
        src = by_id[v.id]
        assert v.cost_per_hour_cents == 0
        assert v.fixed_cost_cents > src.fixed_cost_cents


def test_routing_problem_pickups_last_until_the_node_closes_for_good(tiny: Scenario) -> None:
    """Every node closes 11:00-12:00 for lunch and at 22:00 for good, when the twin loses the
    parcels it still holds. A parcel ready before lunch for a delivery due after it could be
    collected only until 11:00 (its node's next closing: the solver had to drop it or take
    it before lunch), and one whose pick ran into lunch only at the instant it was ready,
    while the node was closed; both may now be collected until 22:00, the latter from 12:00."""
    lunch = [
        TimeWindow(start_s=8 * 3600, end_s=11 * 3600),
        TimeWindow(start_s=12 * 3600, end_s=22 * 3600),
    ]
    nodes = [n.model_copy(update={"opening_hours": lunch}) for n in tiny.nodes]
    day = materialise_day(tiny.model_copy(update={"nodes": nodes}), seed=4)
    problem, _allocation = day_routing_problem(day)
    # the day as day_routing_problem reads it: every parcel's node and ready time
    sim = DispatchSimulator(
        day, params=SimParams(decide_on_arrival=False, decide_on_courier_free=False)
    )
    sim.reset(seed=0)
    sim.run()
    w = sim.world
    jobs = {job.id: job for job in problem.orders}
    after_lunch = during_lunch = 0
    for o, order_id in enumerate(sim.orders.ids):
        for n in sim.parcel_nodes[o]:
            ready = sim.ready_estimate(o, n)
            job_id = order_id if len(sim.parcel_nodes[o]) == 1 else f"{order_id}@{w.nodes[n].id}"
            if job_id not in jobs:
                continue
            window = jobs[job_id].pickup.time_windows[0]  # type: ignore[union-attr]
            due = max(tw.end_s for tw in jobs[job_id].time_windows)
            opens = 12 * 3600 if 11 * 3600 <= ready < 12 * 3600 else max(8 * 3600, ready)
            assert window.start_s == math.ceil(opens)
            assert window.end_s == max(window.start_s, min(due, 22 * 3600 - 1))
            after_lunch += ready < 11 * 3600 and due > 12 * 3600
            during_lunch += 11 * 3600 <= ready < 12 * 3600
    assert after_lunch >= 3 and during_lunch == 1


def test_routing_problem_leaves_out_an_order_whose_parcel_is_lost() -> None:
    """A parcel whose pick ran past its node's closing for good is lost: the twin serves its
    order under no policy. It was a job to collect at that instant, at a closed node (11 of
    the benchmark's 100 days had one); an order with another parcel elsewhere (day 55) kept
    that one's job, with the order's penalty."""
    from rl_agents.scenario import standard_scenario

    for seed, order_id, parcels in ((14, "arrival-000088", 1), (55, "arrival-000095", 2)):
        day = materialise_day(standard_scenario(), seed=seed)
        problem, allocation = day_routing_problem(day)
        assert not [job for job in problem.orders if job.id.split("@")[0] == order_id]
        assert len({a.node_id for a in allocation if a.order_id == order_id}) == parcels
        sim = DispatchSimulator(day, params=SimParams())
        simulate(day, None, "insertion", seed=seed, simulator=sim)
        o = list(sim.orders.ids).index(order_id)
        assert sim.status[o] == OrderStatus.UNSERVED
        assert any(
            sim.ready_estimate(o, n) > sim.world.nodes[n].closes_for_good_s()
            for n in sim.parcel_nodes[o]
        )


def _split_order_day(fixed_cost_cents: int) -> Scenario:
    """One order whose two lines are stocked at two nodes (a parcel at each, the twin delivers
    the order with the second), a 1,000-cent penalty, one courier paid only its fixed cost."""
    return Scenario(
        nodes=[
            FulfilmentNode(id="a", location=Location(x=0, y=0), inventory={"s1": 5}),
            FulfilmentNode(id="b", location=Location(x=1000, y=0), inventory={"s2": 5}),
        ],
        orders=[
            Order(
                id="X",
                location=Location(x=500, y=500),
                lines=[OrderLine(sku="s1", quantity=1), OrderLine(sku="s2", quantity=1)],
                time_windows=[TimeWindow(start_s=0, end_s=20_000)],
                penalty_cents=1000,
            )
        ],
        vehicles=[
            Vehicle(
                id="v",
                start_location=Location(x=0, y=0),
                capacity=[10],
                fixed_cost_cents=fixed_cost_cents,
                shift=TimeWindow(start_s=0, end_s=20_000),
            )
        ],
        horizon=TimeWindow(start_s=0, end_s=20_000),
    )


def test_a_split_order_costs_the_routing_problem_its_penalty_once() -> None:
    """The twin charges an order's penalty once, unless its last parcel is delivered (a parcel
    delivered alone earns nothing). Each parcel's job had the whole penalty, so leaving out
    this two-parcel order cost the solver 2,000 cents: it served it for the courier's 1,500,
    and the twin paid 1,500 for a day it prices at 1,000 with the order left out."""
    day = _split_order_day(fixed_cost_cents=1500)
    problem, _allocation = day_routing_problem(day)
    assert sorted((job.id, job.penalty_cents) for job in problem.orders) == [
        ("X@a", 500),
        ("X@b", 500),
    ]
    plan = solve_routes(
        problem, RoutingParams(engine="pyvrp", time_limit_s=60.0, seed=0, max_iterations=200)
    )
    assert not plan.routes
    assert sorted(u.order_id for u in plan.unassigned) == ["X@a", "X@b"]
    # the twin's prices: the order served (by an online policy) or left out
    served = simulate(day, None, "insertion", seed=0).metrics
    assert (served["orders_delivered"], served["cost_cents"]) == (1, 1500)
    left_out = simulate(day, Plan(), None, seed=0).metrics
    assert (left_out["orders_unserved"], left_out["cost_cents"]) == (1, 1000)


def _half_served() -> Plan:
    """The order of :func:`_split_order_day`: its parcel at ``a`` collected and delivered, the
    one at ``b`` not."""
    return Plan(
        allocation=[
            AllocationLine(order_id="X", sku="s1", node_id="a", quantity=1),
            AllocationLine(order_id="X", sku="s2", node_id="b", quantity=1),
        ],
        routes=[
            Route(
                vehicle_id="v",
                stops=[
                    PlannedStop(
                        order_id="X@a",
                        kind=kind,
                        location=where,
                        arrival_s=0,
                        start_s=0,
                        departure_s=0,
                    )
                    for kind, where in (
                        (StopKind.PICKUP, Location(x=0, y=0)),
                        (StopKind.DELIVERY, Location(x=500, y=500)),
                    )
                ],
                start_s=0,
                end_s=0,
            )
        ],
    )


def test_a_half_served_split_order_is_replayed_whole() -> None:
    """What the shared penalty cannot say (PyVRP 0.14 has no group of jobs served all or
    none): a job served alone earns its share. In the twin the order with one parcel delivered
    and the other never collected is not delivered, pays its whole penalty and the trip (here
    free), and no repair policy completes it; so a solver's plan that serves an order in part
    is replayed without it, and the repair policy places it whole."""
    day = _split_order_day(fixed_cost_cents=0)
    half = _half_served()
    for repair in (None, "slots", "insertion"):
        metrics = simulate(day, half, repair, seed=0).metrics
        assert (metrics["orders_delivered"], metrics["cost_cents"]) == (0, 1000)
    problem, _allocation = day_routing_problem(day)
    whole, partial = _whole_orders(half, problem, day)
    assert partial == 1 and not whole.routes and whole.allocation == half.allocation
    for repair in ("slots", "insertion"):
        metrics = simulate(day, whole, repair, seed=0).metrics
        assert (metrics["orders_delivered"], metrics["cost_cents"]) == (1, 0)
    assert _whole_orders(whole, problem, day) == (whole, 0)


@pytest.mark.parametrize(
    ("penalty", "parcels", "shares"),
    [(1000, 1, [1000]), (1000, 2, [500, 500]), (4600, 3, [1534, 1533, 1533]), (1, 2, [1, 0])],
)
def test_an_orders_penalty_is_shared_in_whole_cents(
    penalty: int, parcels: int, shares: list[int]
) -> None:
    assert split_penalty(penalty, parcels) == shares


def test_split_orders_of_a_benchmark_day_share_their_penalties() -> None:
    """Day 2 of the standard scenario has orders of two and of three parcels."""
    from rl_agents.scenario import standard_scenario

    day = materialise_day(standard_scenario(), seed=2)
    problem, _allocation = day_routing_problem(day)
    penalty = {
        o.id: o.penalty_cents if o.penalty_cents is not None else day.costs.unserved_cents
        for o in day.orders
    }
    total: dict[str, int] = {}
    parcels: dict[str, int] = {}
    for job in problem.orders:
        order_id = job.id.split("@")[0]
        total[order_id] = total.get(order_id, 0) + (job.penalty_cents or 0)
        parcels[order_id] = parcels.get(order_id, 0) + 1
    assert {n for n in parcels.values() if n > 1} == {2, 3}
    assert total == {order_id: penalty[order_id] for order_id in total}


def _parcels_day(
    *,
    demand: list[int] | None = None,
    capacity: int = 10,
    service_s: int = 0,
    dims: tuple[str, ...] = ("units",),
) -> Scenario:
    """One order of 3 x ``s1`` (stocked at ``a`` only) and 1 x ``s2`` (at ``b`` only): two
    parcels; one courier paid 1 cent per second and per 10 m; no noise."""
    cap = [capacity] + [1_000_000] * (len(dims) - 1)
    return Scenario(
        stochastic=StochasticParams.deterministic(),
        capacity_dims=list(dims),
        skus=[Sku(id="s1"), Sku(id="s2")],
        nodes=[
            FulfilmentNode(id="a", location=Location(x=0, y=0), inventory={"s1": 5}),
            FulfilmentNode(id="b", location=Location(x=1000, y=0), inventory={"s2": 5}),
        ],
        orders=[
            Order(
                id="X",
                location=Location(x=500, y=500),
                lines=[OrderLine(sku="s1", quantity=3), OrderLine(sku="s2", quantity=1)],
                demand=demand or [],
                time_windows=[TimeWindow(start_s=0, end_s=20_000)],
                service_s=service_s,
                penalty_cents=100_000,
            )
        ],
        vehicles=[
            Vehicle(
                id="v",
                start_location=Location(x=0, y=0),
                capacity=cap,
                cost_per_km_cents=100,
                cost_per_hour_cents=3600,
                shift=TimeWindow(start_s=0, end_s=20_000),
            )
        ],
        horizon=TimeWindow(start_s=0, end_s=20_000),
    )


@pytest.mark.parametrize(
    ("dims", "demand", "loads"),
    [
        # the generator's dimensions, each shared by the parcels' units (3 + 1), as routing
        # from an allocation shares an order's demand among its shipments
        (
            ("units", "weight_g", "volume_cm3"),
            [4, 1300, 30],
            {"X@a": [3, 975, 23], "X@b": [1, 325, 7]},
        ),
        # an explicit demand in another proportion than the lines: whole units adding up to it
        (("units",), [7], {"X@a": [5], "X@b": [2]}),
        # no explicit demand: the line units (the jobs, written without lines, carried none)
        (("units",), None, {"X@a": [3], "X@b": [1]}),
    ],
)
def test_each_parcel_job_carries_its_parcels_share_of_the_demand(
    dims: tuple[str, ...], demand: list[int] | None, loads: dict[str, list[int]]
) -> None:
    """Every parcel job carried the order's whole demand (4 units twice for a 4-unit order),
    or none when the order gave no explicit demand."""
    day = _parcels_day(demand=demand, dims=dims)
    problem, _allocation = day_routing_problem(day)
    assert {job.id: job.demand_vector(list(dims)) for job in problem.orders} == loads


def test_a_single_parcel_job_without_explicit_demand_carries_the_line_units() -> None:
    day = _parcels_day()
    one = day.model_copy(
        update={
            "orders": [
                day.orders[0].model_copy(update={"lines": [OrderLine(sku="s1", quantity=3)]})
            ]
        }
    )
    problem, _allocation = day_routing_problem(one)
    assert [(job.id, job.demand_vector(["units"])) for job in problem.orders] == [("X", [3])]


@pytest.mark.parametrize(
    ("demand", "units", "shares"),
    [
        ([4], [3, 1], [[3], [1]]),
        ([7], [3, 1], [[5], [2]]),
        ([5], [1, 1, 1], [[2], [2], [1]]),
        ([3, 0], [0, 0], [[2, 0], [1, 0]]),
        ([4, 9], [2, 2], [[2, 5], [2, 4]]),
        ([4, 1300, 30], [3, 1], [[3, 975, 23], [1, 325, 7]]),
    ],
)
def test_an_orders_demand_is_shared_in_whole_units(
    demand: list[int], units: list[int], shares: list[list[int]]
) -> None:
    assert split_demand(demand, units) == shares
    assert [sum(col) for col in zip(*shares, strict=True)] == demand


def test_the_demand_is_shared_as_routing_from_an_allocation_shares_it() -> None:
    """The same rule as :func:`solvers.routing.routing_scenario_from_allocation` (every unit
    shipped), so a split order weighs the same in both routing problems."""
    from solvers.routing import routing_scenario_from_allocation

    day = _parcels_day(demand=[4, 1300, 30], dims=("units", "weight_g", "volume_cm3"))
    problem, allocation = day_routing_problem(day)
    shipped = routing_scenario_from_allocation(day, allocation)
    assert {j.id: j.demand for j in problem.orders} == {j.id: j.demand for j in shipped.orders}


def test_a_courier_that_fits_the_order_collects_both_parcels_before_delivering() -> None:
    """A courier of capacity 4 and a 4-unit order in two parcels (3 + 1): with each job at 4
    units, the solver could not hold both (8 > 4) and had to deliver the first parcel before
    collecting the second, a trip the twin does not need."""
    day = _parcels_day(demand=[4], capacity=4)
    problem, _allocation = day_routing_problem(day)
    plan = solve_routes(
        problem, RoutingParams(engine="pyvrp", time_limit_s=60.0, seed=0, max_iterations=200)
    )
    assert [st.kind for r in plan.routes for st in r.stops] == [
        StopKind.PICKUP,
        StopKind.PICKUP,
        StopKind.DELIVERY,
        StopKind.DELIVERY,
    ]


def test_a_split_order_is_replayed_with_one_delivery_when_its_parcels_arrive_together() -> None:
    """The solver delivers each parcel job at its own stop; the twin's first delivery stop
    hands over both parcels, and its second, with nothing left to hand over, still waited
    for the window and took the order's 10 min of service (600 cents of courier time here):
    the replay drops it. Since the twin passes such a stop through (no wait, no service),
    both replays cost the same."""
    day = _parcels_day(demand=[4], service_s=600)
    params = HindsightParams(
        num_runs=1,
        shift_pricing="duration",
        max_iterations=200,
        search_s=0,
        repair_policies=("slots",),
    )
    ref = hindsight(day, seed=0, params=params)
    [row] = ref.runs
    assert (row["left_out"], row["partial"], row["empty_deliveries"]) == (0, 0, 1)
    # the same solver run, replayed as the solver wrote it and without its second delivery
    problem, allocation = day_routing_problem(day, pricing="duration")
    routing = RoutingParams(engine="pyvrp", time_limit_s=60.0, seed=0, max_iterations=200)
    solved = solve_routes(problem, routing)
    [route] = solved.routes
    kinds = [st.kind for st in route.stops]
    assert kinds == [StopKind.PICKUP, StopKind.PICKUP, StopKind.DELIVERY, StopKind.DELIVERY]
    costs = []
    for stops in (route.stops, route.stops[:-1]):
        plan = Plan(allocation=allocation, routes=[route.model_copy(update={"stops": list(stops)})])
        sim = DispatchSimulator(day, plan=plan, params=SimParams(record_routes=True))
        costs.append(simulate(day, plan, "slots", seed=0, simulator=sim).metrics["cost_cents"])
        assert sim.executed is not None
        executed = [st[0] for st in sim.executed[0]]
        assert executed.count(StopType.DELIVERY) == len(stops) - 2
    as_written, one_delivery = costs
    assert as_written == pytest.approx(one_delivery)  # the twin passes the empty stop through
    assert row["cost_cents"] == pytest.approx(one_delivery)


def test_routing_problem_needs_a_materialised_day(tiny: Scenario) -> None:
    with pytest.raises(InputError, match="materialise"):
        day_routing_problem(tiny)


def test_hindsight_is_a_replayed_offline_plan(tiny: Scenario) -> None:
    params = HindsightParams(
        engine="greedy", time_limit_s=1.0, shift_pricing="both", expert_horizon_s=None
    )
    ref = hindsight(tiny, seed=3, params=params)
    assert {r["pricing"] for r in ref.runs} == {"shift", "duration", "search"}
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs)
    assert ref.metrics["cost_cents"] == ref.cost_cents
    greedy = simulate(tiny, None, "greedy", seed=3).metrics["cost_cents"]
    assert ref.cost_cents < greedy


@pytest.mark.parametrize("cheaper", [True, False], ids=["cheaper", "dearer"])
def test_hindsight_takes_the_lookahead_experts_day_only_when_it_is_cheaper(
    tiny: Scenario, monkeypatch: pytest.MonkeyPatch, cheaper: bool
) -> None:
    """The expert's day is a candidate like the others (its day stubbed: the real one, ~35 s
    of forks, runs in the slow test below and its labels in ``test_expert.py``)."""
    import rl_agents.expert

    params = HindsightParams(
        engine="greedy", time_limit_s=1.0, shift_pricing="duration", search_s=0.0
    )
    without = hindsight(tiny, seed=3, params=params)
    cost = without.cost_cents + (-1.0 if cheaper else 1.0)
    kpis = {**without.metrics, "cost_cents": cost, "orders_total": -1.0}
    calls = []

    def expert_day(scenario: Scenario, env_params: object, day: int, *, horizon_s: float) -> object:
        calls.append((scenario, day, horizon_s))
        return SimpleNamespace(day_costs=[cost], day_kpis=[kpis])

    monkeypatch.setattr(rl_agents.expert, "expert_day", expert_day)
    ref = hindsight(tiny, seed=3, params=params.model_copy(update={"expert_horizon_s": 1800.0}))
    assert calls == [(tiny, 3, 1800.0)]
    expert = [r for r in ref.runs if r["repair"] == "expert"]
    assert len(expert) == 1 and expert[0]["cost_cents"] == cost
    assert len(ref.runs) == len(without.runs) + 1
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs)
    if cheaper:
        assert ref.cost_cents == cost and ref.metrics == kpis  # the expert's day and its KPIs
    else:
        assert ref.cost_cents == without.cost_cents and ref.metrics["orders_total"] >= 0


# the real lookahead expert in the reference: ~35 s of forks; the candidate logic is checked
# by test_hindsight_takes_the_lookahead_experts_day_only_when_it_is_cheaper, expert_day by
# tests/rl_agents/test_expert.py::test_expert_takes_the_cheapest_lookahead
@pytest.mark.slow
def test_hindsight_keeps_the_lookahead_expert_when_it_is_cheaper(tiny: Scenario) -> None:
    params = HindsightParams(
        engine="greedy", time_limit_s=1.0, shift_pricing="duration", search_s=0.0
    )
    ref = hindsight(tiny, seed=3, params=params.model_copy(update={"expert_horizon_s": 1800.0}))
    expert = [r for r in ref.runs if r["repair"] == "expert"]
    assert len(expert) == 1 and expert[0]["cost_cents"] > 0
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs)
    assert ref.metrics["cost_cents"] == pytest.approx(ref.cost_cents)
    without = hindsight(tiny, seed=3, params=params.model_copy(update={"expert_horizon_s": None}))
    assert ref.cost_cents == min(without.cost_cents, expert[0]["cost_cents"])


def test_played_days_of_online_policies_are_candidates(tiny: Scenario) -> None:
    """A warm-start policy's day counts, so the reference never loses to that policy."""
    params = HindsightParams(engine="greedy", time_limit_s=1.0, shift_pricing="shift")
    cold = hindsight(tiny, seed=3, params=params)
    warm = params.model_copy(update={"warm_start_policies": ("slots",), "warm_start_solve": True})
    ref = hindsight(tiny, seed=3, params=warm, known=cold)
    played = [r for r in ref.runs if r["repair"] == "played:slots"]
    solved = [r for r in ref.runs if r["pricing"] == "shift+slots"]
    assert len(played) == 1 and len(solved) == len(params.repair_policies)
    assert ref.runs[: len(cold.runs)] == cold.runs  # the known cold runs are kept, not rerun
    online = simulate(tiny, None, "slots", seed=3).metrics["cost_cents"]
    # the same day as the online policy's, to the cent (the rounded day cost 0.34 cents less)
    assert played[0]["cost_cents"] == online
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs) <= cold.cost_cents
    assert ref.cost_cents <= online


def _same(a: float, b: float) -> bool:
    """Equal, or both NaN (a KPI undefined on both days)."""
    return a == b or (math.isnan(a) and math.isnan(b))


def test_the_reference_replays_the_day_the_policies_play(tiny: Scenario) -> None:
    """Candidates are replayed at the drawn arrival times, not the whole seconds the
    materialised day holds: the same day, every KPI the same (as written it is another day)."""
    for seed in (3, 4):
        day = materialise_day(tiny, seed=seed)
        orders = drawn_orders(tiny, day, seed=seed)
        for policy in ("slots", "insertion"):
            online = simulate(tiny, None, policy, seed=seed).metrics
            replayed = simulate(
                day, None, policy, seed=seed, simulator=DaySimulator(day, orders)
            ).metrics
            assert replayed.keys() == online.keys()
            differ = [k for k, v in online.items() if not _same(replayed[k], v)]
            assert differ == []
    written = simulate(day, None, "slots", seed=4).metrics["cost_cents"]
    assert written != simulate(tiny, None, "slots", seed=4).metrics["cost_cents"]
    with pytest.raises(ValueError, match="materialised"):
        DaySimulator(tiny, orders)  # another day's orders


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"warm_start_policies": ["nope"]}, "warm_start_policies"),
        ({"num_runs": 0}, "nothing to solve"),
    ],
)
def test_bad_hindsight_settings_are_named(settings: dict[str, object], field: str) -> None:
    """An unknown warm-start policy, or no candidate at all, is a clear error, not a crash."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        HindsightParams.model_validate(settings)


def _budgeted(**update: object) -> HindsightParams:
    """PyVRP and the search stopped by small iteration budgets, with a generous clock cap."""
    settings: dict[str, object] = {
        "engine": "pyvrp",
        "shift_pricing": "both",
        "time_limit_s": 120.0,
        "search_s": 120.0,
        "max_iterations": 40,
        "duration_iterations": 25,
        "search_iterations": 60,
        "warm_start_policies": ("slots",),
    }
    return HindsightParams.model_validate({**settings, **update})


def test_iteration_budgets_make_the_reference_reproducible(tiny: Scenario) -> None:
    """Same seed and iteration budgets: the same reference, run for run (not a timing test)."""
    first = hindsight(tiny, seed=3, params=_budgeted())
    again = hindsight(tiny, seed=3, params=_budgeted())
    assert again.cost_cents == first.cost_cents
    assert again.metrics == first.metrics
    assert again.runs == first.runs
    # the budgets, not the clock, stopped every run: each ran exactly its iterations
    solver = {r["pricing"]: r["solver"] for r in first.runs if "solver" in r}
    assert solver["shift"].endswith("iterations 40")
    assert solver["duration"].endswith("iterations 25")
    search = [r for r in first.runs if r["pricing"] == "search"]
    assert len(search) == 1 and search[0]["iterations"] == 60
    assert not any(r.get("capped") for r in first.runs)
    assert all("capped" in r for r in first.runs if "solver" in r or r["pricing"] == "search")


def test_a_run_stopped_by_the_clock_cap_is_marked(tiny: Scenario) -> None:
    """A budget the cap cuts short is flagged: that run is not reproducible."""
    ref = hindsight(
        tiny, seed=3, params=_budgeted(search_s=1e-9, search_iterations=10**9, num_runs=0)
    )
    search = [r for r in ref.runs if r["pricing"] == "search"]
    assert len(search) == 1 and search[0]["capped"] is True


def test_the_search_starts_from_the_cheapest_replayed_candidate(tiny: Scenario) -> None:
    """Day 24: the duration-priced plan replays cheapest (87,230.72 cents, slots and insertion
    repair tie) but brings a courier home 23.5 s after its shift, which the search's evaluator
    takes as a violation; the search started from the shift-priced plan (90,681.47) instead."""
    ref = hindsight(tiny, seed=24, params=_budgeted())
    search = next(r for r in ref.runs if r["pricing"] == "search")
    candidates = ref.runs[: ref.runs.index(search)]
    cheapest = min(r["cost_cents"] for r in candidates)
    first = next(k for k, r in enumerate(candidates) if r["cost_cents"] == cheapest)
    assert sum(r["cost_cents"] == cheapest for r in candidates) == 2  # a tie: the first one
    # the evaluator's cost of the start (the violation apart) is that candidate's replay
    assert search["start_cents"] == pytest.approx(cheapest, abs=1e-6)
    assert search["start_run"] == first
    assert (candidates[first]["pricing"], candidates[first]["repair"]) == ("duration", "slots")
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs) <= cheapest


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"max_iterations": 0}, "max_iterations"),
        ({"search_iterations": -1}, "search_iterations"),
        ({"duration_iterations": 5}, "needs max_iterations"),
        ({"search_iterations": 5, "search_s": 0}, "search is off"),
    ],
)
def test_bad_iteration_budgets_are_named(settings: dict[str, object], reason: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=reason):
        HindsightParams.model_validate(settings)


@pytest.mark.parametrize(
    ("text", "per_pricing", "expected"),
    [("3000", True, (3000, None)), ("3000,700", True, (3000, 700)), ("none", True, None),
     ("12", False, (12, None))],
)  # fmt: skip
def test_iteration_options_parse(
    text: str, per_pricing: bool, expected: tuple[int, int | None] | None
) -> None:
    assert parse_iterations(text, per_pricing=per_pricing) == expected


@pytest.mark.parametrize(
    ("text", "per_pricing"), [("0", True), ("x", True), ("1,2,3", True), ("1,2", False)]
)
def test_bad_iteration_options_say_what_is_expected(text: str, per_pricing: bool) -> None:
    with pytest.raises(ValueError, match=r"expected|1 or more"):
        parse_iterations(text, per_pricing=per_pricing)


def test_iteration_budgets_default_the_clock_to_a_safety_cap() -> None:
    """With iterations and no time limit given, the clock is only the cap; without, a budget."""
    capped = budget_settings(
        time_limit_s=None, search_s=None, iterations=(3000, 700), search_iterations=1000,
        default_time_limit_s=30.0,
    )  # fmt: skip
    assert capped["time_limit_s"] == capped["search_s"] == ITERATION_CAP_S
    assert (capped["max_iterations"], capped["duration_iterations"]) == (3000, 700)
    clock = budget_settings(
        time_limit_s=None, search_s=None, iterations=None, search_iterations=None,
        default_time_limit_s=30.0,
    )  # fmt: skip
    assert clock["time_limit_s"] == 30.0 and clock["search_s"] is None
    assert clock["max_iterations"] is None and clock["search_iterations"] is None
    # PyVRP by iterations, the search on the clock: 30 s of search, not the cap
    mixed = budget_settings(
        time_limit_s=None, search_s=None, iterations=(3000, None), search_iterations=None,
        default_time_limit_s=30.0,
    )  # fmt: skip
    assert mixed["time_limit_s"] == ITERATION_CAP_S and mixed["search_s"] == 30.0


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("plan", "policy 'plan' needs a plan"),
        ("hindsight", "the reference"),
        ("nope", "unknown policy 'nope'"),
    ],
)
def test_a_warm_start_is_an_online_policy_evaluation_plays(name: str, needle: str) -> None:
    """'plan' (no plan on an evaluated day: every order unserved) was taken as a warm start and
    offered among the choices of a typo; the offline reference is not an online policy."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=needle) as info:
        HindsightParams.model_validate({"warm_start_policies": [name]})
    choices = str(info.value).partition("choose from ")[2]
    assert "plan" not in choices.split(", ") and "hindsight" not in choices


def test_evaluate_names_a_bad_warm_start_without_pydantics_prefix() -> None:
    """The CLI printed '--hindsight-warm-start: Value error, unknown policy ...'."""
    from typer.testing import CliRunner

    from dispatchlab.cli import app

    result = CliRunner().invoke(
        app, ["evaluate", "--seeds", "1", "--hindsight-warm-start", "plan", "--quiet"]
    )
    assert result.exit_code == 2, result.output
    assert "error: --hindsight-warm-start: policy 'plan' needs a plan" in result.output
