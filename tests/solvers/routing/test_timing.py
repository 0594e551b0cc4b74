"""Closed-form route timing agrees with the scheduler's forward pass on random small routes."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import (
    Break,
    EuclideanTravel,
    Location,
    Order,
    PickupSpec,
    Plan,
    Scenario,
    TimeWindow,
    Vehicle,
)
from solvers.routing import RoutingProblem, build_problem
from solvers.routing.schedule import schedule_route, to_route
from solvers.routing.timing import (
    build_timing,
    insert_one,
    insert_pair,
    insert_pair_same_gap,
    place_break,
    visits,
)
from solvers.validate import validate_plan

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# a coarse grid, so that some tasks share a location (and a matrix node)
coord = st.integers(min_value=0, max_value=6).map(lambda k: 500 * k)


@st.composite
def windows(draw: st.DrawFn) -> list[TimeWindow]:
    """No window, or one window somewhere in the first 5,000 s."""
    if draw(st.integers(0, 3)) == 0:
        return []
    start = draw(st.integers(min_value=0, max_value=5000))
    return [TimeWindow(start_s=start, end_s=start + draw(st.integers(0, 2500)))]


@st.composite
def routed(draw: st.DrawFn, pickups: bool = True, brk: bool = False) -> tuple[Scenario, list[int]]:
    """A scenario with one vehicle and a task sequence for it (pickups before deliveries)."""
    n = draw(st.integers(min_value=1, max_value=6))
    orders = []
    for i in range(n):
        pickup = None
        if pickups and draw(st.integers(0, 2)) == 0:
            pickup = PickupSpec(
                location=Location(x=draw(coord), y=draw(coord)),
                time_windows=draw(windows()),
                service_s=draw(st.integers(0, 200)),
            )
        orders.append(
            Order(
                id=f"o{i}",
                location=Location(x=draw(coord), y=draw(coord)),
                demand=[1],
                service_s=draw(st.integers(0, 300)),
                time_windows=draw(windows()),
                pickup=pickup,
            )
        )
    shift_end = draw(st.integers(3000, 12_000))
    breaks = []
    if brk:  # a break window meets the shift and the break, taken at its earliest, ends
        # inside it (any other is refused)
        lo = draw(st.integers(0, min(6000, shift_end - 1)))
        breaks = [
            Break(
                window=TimeWindow(start_s=lo, end_s=lo + draw(st.integers(0, 3000))),
                duration_s=draw(st.integers(1, min(4000, shift_end - lo))),
            )
        ]
    vehicle = Vehicle(
        id="v",
        start_location=Location(x=1500, y=1500),
        capacity=[100],
        shift=TimeWindow(start_s=0, end_s=shift_end),
        breaks=breaks,
    )
    s = Scenario(
        horizon=TimeWindow(start_s=0, end_s=12_000),
        travel=EuclideanTravel(speed_m_per_s=5.0),
        capacity_dims=["units"],
        orders=orders,
        vehicles=[vehicle],
    )
    p = build_problem(s)
    seq = draw(st.permutations(range(len(p.tasks))))
    return s, _pickups_first(p, list(seq))


def _pickups_first(p: RoutingProblem, seq: list[int]) -> list[int]:
    """Swap each pair whose delivery comes before its pickup."""
    for info in p.orders:
        if info.pickup is not None:
            i, j = seq.index(info.pickup), seq.index(info.delivery)
            if i > j:
                seq[i], seq[j] = seq[j], seq[i]
    return seq


@settings(PROPERTY, max_examples=40)  # 100 took ~5 s of the default run
@given(routed())
def test_closed_form_feasibility_and_duration_match_the_scheduler(
    case: tuple[Scenario, list[int]],
) -> None:
    s, seq = case
    p = build_problem(s)
    tm = build_timing(p, 0, seq)
    sched = schedule_route(p, 0, seq)
    assert tm.feasible == (sched.violation is None), sched.violation
    if tm.feasible:
        assert tm.distance == sched.distance_m
        assert tm.duration == sched.duration_s
        # the closed-form start times respect every window and the travel between stops
        starts = tm.start_times()[1:-1]
        for k, t in enumerate(seq):
            task = p.tasks[t]
            assert task.earliest <= starts[k] <= task.latest


def _take_one(
    case: tuple[Scenario, list[int]], data: st.DataObject
) -> tuple[RoutingProblem, int, list[int]]:
    """The case's problem, one visit drawn from its route, and the route without it."""
    s, seq = case
    new = data.draw(st.sampled_from(seq))
    return build_problem(s), new, [t for t in seq if t != new]


@PROPERTY
@given(routed(pickups=False), st.data())
def test_inserting_one_visit_matches_rescheduling(
    case: tuple[Scenario, list[int]], data: st.DataObject
) -> None:
    p, new, rest = _take_one(case, data)
    tm = build_timing(p, 0, rest)
    if not tm.feasible:
        return
    gaps = np.arange(tm.num_gaps)
    ins = insert_one(tm, p, gaps, *visits(p, np.full(len(gaps), new)))
    first, last = tm.gap_range(*visits(p, np.array([new]))[1:])
    for g in gaps:
        sched = schedule_route(p, 0, [*rest[:g], new, *rest[g:]])
        assert bool(ins.ok[g]) == (sched.violation is None), (g, sched.violation)
        if ins.ok[g]:
            assert int(ins.duration[g]) == sched.duration_s
            assert int(ins.added_distance[g]) == sched.distance_m - tm.distance
            assert first[0] <= g <= last[0]  # the gap range never excludes a feasible gap


@PROPERTY
@given(routed(pickups=False), st.data())
def test_inserting_a_pickup_and_delivery_matches_rescheduling(
    case: tuple[Scenario, list[int]], data: st.DataObject
) -> None:
    s, seq = case
    # one more order with a pickup, appended to the scenario
    extra = Order(
        id="pd",
        location=Location(x=data.draw(coord), y=data.draw(coord)),
        demand=[1],
        service_s=data.draw(st.integers(0, 300)),
        time_windows=data.draw(windows()),
        pickup=PickupSpec(
            location=Location(x=data.draw(coord), y=data.draw(coord)),
            time_windows=data.draw(windows()),
            service_s=60,
        ),
    )
    s2 = s.model_copy(update={"orders": [*s.orders, extra]})
    p = build_problem(s2)
    info = p.orders[-1]
    assert info.pickup is not None
    tm = build_timing(p, 0, seq)
    if not tm.feasible:
        return
    pv = visits(p, np.array([info.pickup]))
    dv = visits(p, np.array([info.delivery]))
    for g1 in range(tm.num_gaps):
        same = insert_pair_same_gap(tm, p, np.array([g1]), pv, dv)
        sched = schedule_route(p, 0, [*seq[:g1], info.pickup, info.delivery, *seq[g1:]])
        assert bool(same.ok[0]) == (sched.violation is None), (g1, sched.violation)
        if same.ok[0]:
            assert int(same.duration[0]) == sched.duration_s
        for g2 in range(g1 + 1, tm.num_gaps):
            pair = insert_pair(tm, p, np.array([g1]), np.array([g2]), pv, dv)
            new = [*seq[:g1], info.pickup, *seq[g1:g2], info.delivery, *seq[g2:]]
            sched = schedule_route(p, 0, new)
            assert bool(pair.ok[0]) == (sched.violation is None), (g1, g2, sched.violation)
            if pair.ok[0]:
                assert int(pair.duration[0]) == sched.duration_s
                assert int(pair.added_distance[0]) == sched.distance_m - tm.distance


@PROPERTY
@given(routed(brk=True))
def test_break_placement_is_the_best_position_and_validates(
    case: tuple[Scenario, list[int]],
) -> None:
    s, seq = case
    p = build_problem(s)
    tm = place_break(p, 0, seq)
    # every position of the break, each timed on its own
    each = [build_timing(p, 0, seq, break_after=k) for k in range(len(seq) + 1)]
    fits = [t.duration for t in each if t.feasible]
    assert tm.feasible == bool(fits)
    if not tm.feasible:
        return
    assert tm.duration == min(fits)
    sched = schedule_route(p, 0, seq)
    assert sched.violation is None
    assert sched.duration_s == tm.duration
    route = to_route(p, sched, set())
    plan = Plan(routes=[route], distance_m=route.distance_m, cost_cents=route.cost_cents)
    check = validate_plan(s, plan)
    assert check.ok, check.summary()


@PROPERTY
@given(routed(pickups=False, brk=True), st.data())
def test_inserting_next_to_a_placed_break_matches_rebuilding(
    case: tuple[Scenario, list[int]], data: st.DataObject
) -> None:
    p, new, rest = _take_one(case, data)
    k = data.draw(st.integers(0, len(rest)))
    tm = build_timing(p, 0, rest, break_after=k)
    if not tm.feasible:
        return
    gaps = np.arange(tm.num_gaps)
    ins = insert_one(tm, p, gaps, *visits(p, np.full(len(gaps), new)))
    for g in gaps:
        # items: start, visits with the break after visit k, end; the new visit goes after
        # item g, and a break right after item g now follows the new visit
        items: list[int] = [-1, *rest[:k], -2, *rest[k:], -1]
        items.insert(int(g) + 1, new)
        body = items[1:-1]
        after = body.index(-2)
        expect = build_timing(p, 0, [t for t in body if t != -2], break_after=after)
        assert bool(ins.ok[g]) == expect.feasible, g
        if expect.feasible:
            assert int(ins.duration[g]) == expect.duration
