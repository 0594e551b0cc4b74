"""The greedy construction: pruning of routes not worth their cost."""

from __future__ import annotations

from typing import Any

import pytest

from scenarios import EuclideanTravel, Location, Order, Scenario, UnassignedReason, Vehicle
from solvers.routing import RoutingParams, build_problem, solve_routes
from solvers.routing.greedy import GreedyBuilder
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import unhurried


def _one_van_not_worth_it() -> Scenario:
    """One optional order worth 500 cents; the only vehicle costs 1000 cents to leave."""
    return Scenario(
        travel=EuclideanTravel(),
        orders=[Order(id="o0", location=Location(x=100, y=0), demand=[1], penalty_cents=500)],
        vehicles=[
            Vehicle(
                id="v0",
                start_location=Location(x=0, y=0),
                fixed_cost_cents=1000,
                cost_per_hour_cents=900,
            )
        ],
    )


def test_prune_dropping_the_only_vehicle_leaves_the_order_out() -> None:
    p = build_problem(_one_van_not_worth_it())
    routes, left = GreedyBuilder(p).build()
    assert routes == {}
    assert left == [0]
    # no vehicle to build with at all
    assert GreedyBuilder(p, vehicles=[]).build() == ({}, [0])


@pytest.mark.parametrize("engine", ["greedy", "ortools"])
def test_order_not_worth_the_only_vehicle_is_dropped_for_cost(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _one_van_not_worth_it()
    # OR-Tools stops after its first solution, not on a 1 s clock a slow machine may use up
    # (with no move left, its search never reaches a second: it searched to its cap, 10 s)
    budget = unhurried(monkeypatch, ortools_solutions=1)
    plan = solve_routes(s, RoutingParams(engine=engine, **budget))
    assert plan.engine == engine  # its own plan, not the greedy fallback's
    assert validate_plan(s, plan).ok
    assert not plan.routes
    assert [(u.order_id, u.reason) for u in plan.unassigned] == [
        ("o0", UnassignedReason.DROPPED_FOR_COST)
    ]


def test_a_cancelled_construction_stops_as_at_its_deadline() -> None:
    # the construction looked only at its deadline: cancelled by the service's stop, a plan
    # of 1,000 orders still inserted every one (0.3 s of CPU for deliveries, 1.25 s with
    # pickups at the nodes, 2-4 s on a loaded machine) before the exit could go on
    import threading

    from scenarios.generate import generate_city
    from solvers.cancel import cancel_with
    from solvers.routing.greedy import GRACE_S
    from tests.cpu_time import WorkCpu

    city = generate_city(seed=1, num_orders=1000, num_nodes=4, num_couriers=50)
    p = build_problem(city)
    full = GreedyBuilder(p)
    _, full_left = full.build()
    assert not full.timed_out
    stop = threading.Event()
    stop.set()
    cancel_with(stop)
    try:
        cut = GreedyBuilder(p)
        with WorkCpu() as cpu:  # the construction's, not a full collection's of the heap
            _, left = cut.build()
            cpu_s = cpu.seconds()
    finally:
        cancel_with(None)
    assert cut.timed_out  # as at a deadline: its grace of CPU time, then the routes so far
    assert len(left) > len(full_left)
    assert cpu_s < GRACE_S + 0.2, cpu_s


def test_a_construction_past_its_deadline_with_its_grace_had_prices_nothing(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It priced every order into every route before its first look at the clock (0.05 s
    at 2,000 orders, 0.02-0.06 s for each construction after dropping routes too dear for
    their orders): it stops there too, every order left out, in time."""
    import time

    from solvers.routing import greedy

    monkeypatch.setattr(greedy, "ALWAYS_COMPLETE_SIZE", 0)  # it looks at its deadline
    priced: list[int] = []
    real_eval = GreedyBuilder._eval

    def counting(self: GreedyBuilder, col: object, rows: object) -> object:
        priced.append(1)
        return real_eval(self, col, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(GreedyBuilder, "_eval", counting)
    p = build_problem(c101_25)
    builder = GreedyBuilder(p, deadline=time.perf_counter() - 1.0, grace_s=0.0)
    routes, left = builder.build()
    assert builder.timed_out
    assert (routes, left) == ({}, list(range(len(p.orders))))
    assert not priced
    # with its grace it still prices and inserts, past its deadline
    builder = GreedyBuilder(p, deadline=time.perf_counter() - 1.0, grace_s=10.0)
    routes, left = builder.build()
    assert priced and routes and not left


def test_the_grace_ends_where_the_answer_would_come_late(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A construction past its deadline had its grace of CPU time whatever the wall clock
    said: started near the deadline (1,000 orders at 0.1 s: the travel matrix took half the
    limit) it answered 0.013-0.024 s late. Its grace now ends at ``grace_end`` too, the last
    moment its plan can answer in time; before it the grace holds as it did."""
    import time

    from solvers.routing import greedy

    monkeypatch.setattr(greedy, "ALWAYS_COMPLETE_SIZE", 0)  # it looks at its deadline
    p = build_problem(c101_25)
    past = time.perf_counter() - 1.0
    late = GreedyBuilder(p, deadline=past, grace_s=3600.0, grace_end=past)
    routes, left = late.build()
    assert late.timed_out
    assert (routes, left) == ({}, list(range(len(p.orders))))
    # the answer's end still ahead: the grace holds past the deadline
    room = GreedyBuilder(p, deadline=past, grace_s=3600.0, grace_end=time.perf_counter() + 3600)
    routes, left = room.build()
    assert not room.timed_out and routes and not left


def test_no_construction_starts_past_the_deadline_after_dropping_dear_routes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dropping a route too dear for its optional orders started a construction to place
    them elsewhere even past the deadline, which stopped before its first insertion."""
    import time

    from solvers.routing import greedy

    monkeypatch.setattr(greedy, "ALWAYS_COMPLETE_SIZE", 0)
    p = build_problem(_one_van_not_worth_it())
    builds: list[int] = []
    real_build = GreedyBuilder._build

    def counting(self: GreedyBuilder) -> tuple[dict[int, list[int]], list[int]]:
        builds.append(1)
        return real_build(self)

    monkeypatch.setattr(GreedyBuilder, "_build", counting)
    late = GreedyBuilder(p, deadline=time.perf_counter() - 1.0)
    assert late._prune({0: [0]}, []) == ({}, [0])  # the van costs more than the order
    assert not builds
    in_time = GreedyBuilder(p, deadline=time.perf_counter() + 3600.0)
    assert in_time._prune({0: [0]}, []) == ({}, [0])
    assert builds  # before the deadline the other vehicles are tried


def test_the_deadline_comes_earlier_for_each_order_routed(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time decoding and validating the plan take after the construction grows with the
    orders it routed: its deadline keeps that much back per order (here 10 s an order: past
    a deadline 100 s away once 10 orders are routed, whatever the machine's speed)."""
    import time

    from solvers.routing import greedy

    monkeypatch.setattr(greedy, "ALWAYS_COMPLETE_SIZE", 0)
    p = build_problem(c101_25)
    builder = GreedyBuilder(
        p, deadline=time.perf_counter() + 100.0, grace_s=0.0, reserve_per_order_s=10.0
    )
    routes, left = builder.build()
    assert builder.timed_out
    assert sum(len(seq) for seq in routes.values()) == 10
    assert len(left) == len(p.orders) - 10
    # without the share per order it routes them all
    whole = GreedyBuilder(p, deadline=time.perf_counter() + 100.0, grace_s=0.0)
    assert not whole.build()[1] and not whole.timed_out


def _vans_not_worth_it(vans: int) -> Scenario:
    """One optional order worth 500 cents; ``vans`` interchangeable vans that cost 1000 cents
    to leave, and one dearer still (another type)."""
    van = {"start_location": Location(x=0, y=0), "cost_per_hour_cents": 900}
    return Scenario(
        travel=EuclideanTravel(),
        orders=[Order(id="o0", location=Location(x=100, y=0), demand=[1], penalty_cents=500)],
        vehicles=[
            *(Vehicle(id=f"v{i}", fixed_cost_cents=1000, **van) for i in range(vans)),
            Vehicle(id="dear", fixed_cost_cents=2000, **van),
        ],
    )


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one for each construction run."""
    builds: list[int] = []
    real_build = GreedyBuilder._build

    def counting(self: GreedyBuilder) -> object:
        builds.append(1)
        return real_build(self)

    monkeypatch.setattr(GreedyBuilder, "_build", counting)
    return builds


def test_interchangeable_vans_dropped_for_cost_are_not_tried_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A route dropped for its cost was built again on the next interchangeable van, and
    dropped again, once per van (16 constructions at 1,000 city orders)."""
    builds = _count_builds(monkeypatch)
    p = build_problem(_vans_not_worth_it(6))
    assert GreedyBuilder(p).build() == ({}, [0])
    # the six vans in one run, the dear van in one, none left: one run to say so
    assert len(builds) == 3


def test_skipping_the_repeated_runs_keeps_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seeded city day whose constructions drop routes for their cost (one order tried on
    a van of each type in turn): the same plan as when every repeated run is made."""
    from scenarios.generate import generate_city

    city = generate_city(seed=1, num_orders=1000, num_nodes=10, num_couriers=100)
    p = build_problem(city)
    builds = _count_builds(monkeypatch)
    skipping = GreedyBuilder(p).build()
    runs = len(builds)
    monkeypatch.setattr(GreedyBuilder, "_same_again", lambda self, dropped, idle: set())
    builds.clear()
    assert GreedyBuilder(p).build() == skipping
    assert runs < len(builds)  # some runs were skipped


def test_an_opened_van_takes_the_prices_of_its_interchangeable_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The empty route of a van opened when an interchangeable one took its first order is
    not priced anew for every order (3.7 ms a route at 10,000 orders): the same plan as when
    it is, with fewer orders priced."""
    from scenarios.generate import generate_city
    from solvers.routing import greedy

    city = generate_city(seed=1, num_orders=300, num_nodes=3, num_couriers=30)
    p = build_problem(city)
    priced: list[int] = []
    real_eval = GreedyBuilder._eval

    def counting(self: GreedyBuilder, col: object, rows: object) -> object:
        priced.append(len(rows))  # type: ignore[arg-type]
        return real_eval(self, col, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(GreedyBuilder, "_eval", counting)
    shared = GreedyBuilder(p).build()
    shared_priced = sum(priced)
    monkeypatch.setattr(greedy, "SHARE_EMPTY_PRICES", False)
    priced.clear()
    assert GreedyBuilder(p).build() == shared
    assert shared_priced < sum(priced)


def _one_order_per_van(orders: int) -> Scenario:
    """``orders`` orders of one unit around a depot, as many interchangeable vans of
    capacity 1: a route per order."""
    return Scenario(
        travel=EuclideanTravel(),
        orders=[
            Order(id=f"o{i}", location=Location(x=100 + 10 * i, y=50 * (i % 3)), demand=[1])
            for i in range(orders)
        ],
        vehicles=[
            Vehicle(id=f"v{i}", start_location=Location(x=0, y=0), capacity=[1])
            for i in range(orders)
        ],
    )


def _count_growths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time a construction re-allocates its price arrays
    (doubles them as routes open: 0.75-0.88 s at the 5,553rd insertion of 10,000 orders,
    with no look at the clock)."""
    import numpy as np

    grown: list[int] = []
    real = np.full_like

    def counting(a: object, *args: object, **kwargs: object) -> object:
        grown.append(1)
        return real(a, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(np, "full_like", counting)
    return grown


def test_the_price_arrays_hold_every_route_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 routes opened one after another (one vehicle type: one empty route at the start):
    the price arrays have room for them all from the start, none is copied to a larger one."""
    p = build_problem(_one_order_per_van(40))
    grown = _count_growths(monkeypatch)
    routes, left = GreedyBuilder(p).build()
    assert len(routes) == 40 and not left
    assert not grown


def test_price_arrays_grown_or_sized_at_once_make_the_same_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past :data:`~solvers.routing.greedy.PRICE_BYTES` the price arrays start small and
    double as routes open (here: full from the start, on a city day with breaks too): the
    plan is the one made with them sized at once."""
    from scenarios.generate import generate_city
    from solvers.routing import greedy

    for scenario in (
        _one_order_per_van(40),
        generate_city(seed=1, num_orders=300, num_nodes=3, num_couriers=40),
    ):
        p = build_problem(scenario)
        at_once = GreedyBuilder(p).build()
        monkeypatch.setattr(greedy, "_price_width", lambda rows, cols, spare: cols)
        grown = _count_growths(monkeypatch)
        assert GreedyBuilder(p).build() == at_once
        assert grown  # they did grow
        monkeypatch.undo()


def test_price_width_is_every_route_the_construction_can_open() -> None:
    from solvers.routing.greedy import PRICE_BYTES, _price_width

    assert _price_width(rows=200, cols=3, spare=40) == 43  # a vehicle per spare one
    assert _price_width(rows=5, cols=3, spare=40) == 8  # a route per order, at most
    assert _price_width(rows=0, cols=3, spare=40) == 3
    big = PRICE_BYTES // 20 + 1  # rows past the bytes for even one column
    assert _price_width(rows=big, cols=3, spare=40) == 16  # twice the routes, at least 16
    assert _price_width(rows=big, cols=30, spare=40) == 60


def _price_widths(monkeypatch: pytest.MonkeyPatch, orders: int) -> list[int]:
    """The widths (routes) of the price arrays the constructions allocate, as they do."""
    import numpy as np

    widths: list[int] = []
    real = np.full

    def spying(shape: object, *args: object, **kwargs: object) -> object:
        if isinstance(shape, tuple) and len(shape) == 2 and shape[0] == orders:
            widths.append(int(shape[1]))
        return real(shape, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(np, "full", spying)
    return widths


def test_a_construction_past_its_deadline_maps_room_for_the_open_routes_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """20 vehicle types of 2 vans each: a construction in time sizes its price arrays for all
    40 routes; one starting past its deadline (which stops after its grace, most likely before
    opening a route) for the 20 open, and with its grace still makes the plan made in time."""
    import time

    from solvers.routing import greedy

    monkeypatch.setattr(greedy, "ALWAYS_COMPLETE_SIZE", 0)  # it looks at its deadline
    vans = [
        Vehicle(
            id=f"v{i}", start_location=Location(x=0, y=0), capacity=[1], fixed_cost_cents=i // 2
        )
        for i in range(40)
    ]
    s = _one_order_per_van(40).model_copy(update={"vehicles": vans})
    p = build_problem(s)
    widths = _price_widths(monkeypatch, 40)
    in_time = GreedyBuilder(p, deadline=time.perf_counter() + 3600.0).build()
    assert widths == [40]
    widths.clear()
    late = GreedyBuilder(p, deadline=time.perf_counter() - 1.0, grace_s=3600.0)
    assert late.build() == in_time
    assert widths[0] == 20


def test_orders_that_fit_no_gap_are_priced_out_without_their_insertion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An order whose window leaves it no gap of a route (a courier whose shift is not its
    time) is priced out of that route without computing its insertion (about half the orders
    on an empty route at 10,000 orders): the same prices, the same plan, fewer insertions."""
    import numpy as np

    from scenarios.generate import CityParams, generate_city
    from solvers.routing import greedy
    from solvers.routing.timing import visits

    city = generate_city(
        seed=2,
        num_orders=300,
        num_nodes=4,
        num_couriers=30,
        params=CityParams(generator_version=2),
    )
    p = build_problem(city)
    inserted: list[int] = []
    real_insert = greedy.insert_one

    def counting(tm: Any, problem: Any, gap: np.ndarray, *args: Any, **kw: Any) -> Any:
        inserted.append(gap.shape[0])
        return real_insert(tm, problem, gap, *args, **kw)

    monkeypatch.setattr(greedy, "insert_one", counting)
    builder = GreedyBuilder(p)
    rows = np.arange(len(p.orders))
    node_rows = visits(p, builder.deliv)
    skipped = 0
    for vehicle in range(len(p.vehicles)):
        col = builder._column(vehicle, [])
        if not col.tm.feasible:
            continue
        lo, hi = col.tm.gap_range(*node_rows[1:])
        skipped += int(np.count_nonzero((lo > hi) & builder.skill_ok[:, vehicle]))
        fast = builder._eval(col, rows)
        monkeypatch.setattr(greedy, "SKIP_NO_GAP", False)
        slow = builder._eval(col, rows)
        monkeypatch.setattr(greedy, "SKIP_NO_GAP", True)
        assert np.array_equal(fast[0], slow[0])  # the same prices
        finite = np.isfinite(slow[0])
        assert np.array_equal(fast[1][finite], slow[1][finite])  # at the same gaps
        assert np.isinf(fast[0][lo > hi]).all()
    assert skipped > 0  # the day has orders outside some courier's shift
    inserted.clear()
    plan = GreedyBuilder(p).build()
    fewer = sum(inserted)
    monkeypatch.setattr(greedy, "SKIP_NO_GAP", False)
    inserted.clear()
    assert GreedyBuilder(p).build() == plan
    assert fewer < sum(inserted)


class _TickingClock:
    """A stub of the construction's clocks: the wall clock moves one second at each look,
    the thread's CPU clock says the grace is always had."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now

    def thread_time(self) -> float:
        return 1e9


def test_the_construction_stops_before_a_step_would_end_past_its_deadline(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step (one insertion, or one route priced) takes one second of the stub clock and
    the deadline falls half-way through a step: the construction stops at the last look from
    which a step as long as the longest so far ends by the deadline. Before, it looked only
    whether the deadline had passed and took one more step, ending past it (at 10,000 orders
    a construction ended 0.17 s past its deadline)."""
    from solvers.routing import greedy

    monkeypatch.setattr(greedy, "ALWAYS_COMPLETE_SIZE", 0)
    clock = _TickingClock()
    monkeypatch.setattr(greedy, "time", clock)
    stops: list[float] = []
    real_stopped = GreedyBuilder._stopped

    def noting(self: GreedyBuilder, cpu_from: float) -> bool:
        stopped = real_stopped(self, cpu_from)
        if stopped:
            stops.append(clock.now)
        return stopped

    monkeypatch.setattr(GreedyBuilder, "_stopped", noting)
    p = build_problem(c101_25)
    deadline = 20.5
    builder = GreedyBuilder(p, deadline=deadline, grace_s=0.0)
    _routes, left = builder.build()
    assert builder.timed_out
    assert stops and stops[0] <= deadline
    assert builder.step_s == 1.0
    assert stops[0] > deadline - 2 * builder.step_s  # no earlier than it must
    assert left  # the deadline came before every order was placed


def test_the_prune_uses_the_constructions_own_route_timings(
    c101_25: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prune after a construction priced every route of optional orders again (0.04-0.08
    s at 10,000 orders, after the construction's stop, in no reserve): it takes the timings
    the construction kept, and drops the same routes."""
    from solvers.routing import greedy

    optional = c101_25.model_copy(
        update={"orders": [o.model_copy(update={"penalty_cents": 10**7}) for o in c101_25.orders]}
    )
    p = build_problem(optional)
    timed: list[int] = []
    real_timing = greedy.route_timing
    real_prune = GreedyBuilder._prune
    pruning = [False]

    def counting(problem: Any, vehicle: int, seq: Any) -> Any:
        if pruning[0]:
            timed.append(vehicle)
        return real_timing(problem, vehicle, seq)

    def prune(self: GreedyBuilder, routes: Any, left: Any, timings: Any = None) -> Any:
        pruning[0] = True
        try:
            return real_prune(self, routes, left, *([] if timings is None else [timings]))
        finally:
            pruning[0] = False

    monkeypatch.setattr(greedy, "route_timing", counting)
    monkeypatch.setattr(GreedyBuilder, "_prune", prune)
    builder = GreedyBuilder(p)
    routes, left = builder.build()
    assert routes and not left
    assert timed == []  # every route's timing came from the construction
    # the same outcome as timing every route anew
    again = GreedyBuilder(p)
    assert again._prune(dict(routes), list(left)) == (routes, left)
    assert timed  # that one timed them


def test_a_construction_stopped_after_dropping_dear_routes_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The construction run again after dropping routes too dear for their optional orders
    (and the priority re-run) did not get the end of the grace (``grace_end``), and when the
    clock or a cancellation stopped it, its builder's ``timed_out`` was lost: the plan said
    the orders it had no time for were left out for their cost, not for the time."""
    import threading
    import time

    from solvers.cancel import cancelling
    from solvers.routing import greedy

    monkeypatch.setattr(greedy, "ALWAYS_COMPLETE_SIZE", 0)  # it looks at its deadline
    s = _vans_not_worth_it(1)  # v0 dropped for its cost, then the dear van tried
    p = build_problem(s)
    stop = threading.Event()
    ends: list[float | None] = []
    cancel_at = [2]  # the service stops while the run after the drop goes on
    real_build = GreedyBuilder._build

    def cancel_the_second(self: GreedyBuilder) -> tuple[dict[int, list[int]], list[int]]:
        ends.append(self.grace_end)
        if len(ends) == cancel_at[0]:
            stop.set()
        return real_build(self)

    monkeypatch.setattr(GreedyBuilder, "_build", cancel_the_second)
    end = time.perf_counter() + 3600.0
    builder = GreedyBuilder(p, deadline=end, grace_end=end)
    with cancelling(stop):
        assert builder.build() == ({}, [0])
    assert builder.timed_out
    assert ends == [end, end]  # its grace ends where the first construction's does
    # uncancelled, the dear van is tried and dropped too: not a time-out
    ends.clear()
    stop.clear()
    cancel_at[0] = 0
    builder = GreedyBuilder(p, deadline=end, grace_end=end)
    with cancelling(stop):
        assert builder.build() == ({}, [0])
    assert not builder.timed_out
    assert ends == [end, end, end]


def test_a_plan_whose_run_after_the_drop_was_cancelled_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plan of a solve cancelled while the construction after dropping a dear route ran
    said its order was dropped for its cost (the dear van was never tried): it says the
    time ran out, as when the first construction is stopped."""
    import threading

    from solvers.cancel import cancelling
    from solvers.routing import greedy, solve_routes_with_stats

    monkeypatch.setattr(greedy, "ALWAYS_COMPLETE_SIZE", 0)
    stop = threading.Event()
    runs: list[int] = []
    real_build = GreedyBuilder._build

    def cancel_the_second(self: GreedyBuilder) -> tuple[dict[int, list[int]], list[int]]:
        runs.append(1)
        if len(runs) == 2:
            stop.set()
        return real_build(self)

    monkeypatch.setattr(GreedyBuilder, "_build", cancel_the_second)
    with cancelling(stop):
        plan, stats = solve_routes_with_stats(
            _vans_not_worth_it(1), RoutingParams(engine="greedy", time_limit_s=60)
        )
    assert [(u.order_id, u.reason) for u in plan.unassigned] == [
        ("o0", UnassignedReason.NO_SOLUTION)
    ]
    assert "time limit" in plan.unassigned[0].detail
    assert any("cancelled while building the greedy plan" in n for n in stats.notes)
