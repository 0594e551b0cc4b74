"""Plan comparison for re-optimisation answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from api.tasks.changes import plan_changes
from scenarios import Plan, PlannedStop, Route, Unassigned, UnassignedReason


def _stop(order_id: str, start_s: int) -> PlannedStop:
    return PlannedStop(order_id=order_id, arrival_s=start_s, start_s=start_s, departure_s=start_s)


def _plan(routes: dict[str, list[tuple[str, int]]], unassigned: tuple[str, ...] = ()) -> Plan:
    return Plan(
        routes=[Route(vehicle_id=v, stops=[_stop(o, t) for o, t in s]) for v, s in routes.items()],
        unassigned=[
            Unassigned(order_id=o, reason=UnassignedReason.NO_SOLUTION) for o in unassigned
        ],
    )


def test_moves_shifts_additions_and_removals_are_reported() -> None:
    old = _plan({"v1": [("a", 100), ("b", 400)], "v2": [("c", 200)]})
    new = _plan({"v1": [("a", 100), ("d", 300)], "v2": [("b", 900), ("c", 230)]}, ("c2",))
    changes = plan_changes(old, new)
    assert [(m.order_id, m.from_vehicle, m.to_vehicle) for m in changes.stops_moved] == [
        ("b", "v1", "v2"),
        ("c", "v2", "v2"),  # same courier, now second
    ]
    assert [(s.order_id, s.shift_s) for s in changes.eta_shifts] == [("b", 500)]  # c: 30 s < 60
    assert changes.added == ["d"] and changes.removed == []
    assert changes.newly_unassigned == ["c2"]
    assert changes.max_eta_shift_s == 500 and changes.num_moved == 2


orders = st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8)


@settings(max_examples=100, deadline=None)
@given(orders, st.integers(min_value=1, max_value=3), st.integers(min_value=0, max_value=10_000))
def test_a_plan_compared_with_itself_has_no_changes(ids: list[str], split: int, t0: int) -> None:
    routes = {
        f"v{k}": [(o, t0 + 100 * i) for i, o in enumerate(ids[k::split])] for k in range(split)
    }
    plan = _plan(routes)
    changes = plan_changes(plan, plan)
    assert changes.num_moved == changes.num_eta_shifted == 0
    assert not changes.added and not changes.removed and not changes.newly_unassigned
