"""Planned times: earliest service, departure delayed to cut waiting, breaks inside windows."""

from __future__ import annotations

from scenarios import Break, Location, Scenario, TimeWindow, Vehicle
from solvers.routing import build_problem
from solvers.routing.schedule import schedule_route
from tests.solvers.routing.conftest import make_city


def test_departure_is_delayed_to_remove_waiting(city: Scenario) -> None:
    late = TimeWindow(start_s=5000, end_s=6000)
    orders = [city.orders[0].model_copy(update={"time_windows": [late]}), *city.orders[1:]]
    p = build_problem(city.model_copy(update={"orders": orders}))
    sched = schedule_route(p, 0, [0])
    assert sched.violation is None
    stop = sched.stops[0]
    assert stop.start_s == 5000
    assert stop.arrival_s == 5000  # left late instead of waiting on the doorstep
    assert sched.start_s == 5000 - int(p.duration[0, p.tasks[0].node])


def test_violations_are_named(city: Scenario) -> None:
    p = build_problem(city)
    assert "capacity" in (schedule_route(p, 0, [0, 1, 2, 3, 4]).violation or "")
    shut = TimeWindow(start_s=0, end_s=10)
    orders = [city.orders[0].model_copy(update={"time_windows": [shut]}), *city.orders[1:]]
    p2 = build_problem(city.model_copy(update={"orders": orders}))
    assert "after its windows" in (schedule_route(p2, 0, [0]).violation or "")


def test_break_is_taken_inside_its_window() -> None:
    brk = Break(window=TimeWindow(start_s=300, end_s=600), duration_s=1200)
    fleet = [Vehicle(id="v", start_location=Location(x=5000, y=5000), capacity=[9], breaks=[brk])]
    p = build_problem(make_city(3, vehicles=fleet))
    sched = schedule_route(p, 0, [0, 1, 2])
    assert sched.violation is None
    assert len(sched.breaks) == 1
    b = sched.breaks[0]
    assert 300 <= b.start_s <= 600
    # no service overlaps the break
    for st in sched.stops:
        assert st.departure_s <= b.start_s or st.arrival_s >= b.start_s + b.duration_s
