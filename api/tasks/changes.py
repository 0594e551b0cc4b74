"""Compare two plans stop by stop (for the answer of a re-optimisation)."""

from __future__ import annotations

from api.schemas.changes import EtaShift, PlanChanges, StopMove
from scenarios.plan import Plan, StopKind

StopKey = tuple[str, str]


def _stops(plan: Plan) -> dict[StopKey, tuple[str, int, int]]:
    """(order id, kind) -> (vehicle, position, planned start) for every non-break stop."""
    out: dict[StopKey, tuple[str, int, int]] = {}
    for route in plan.routes:
        position = 0
        for stop in route.stops:
            if stop.kind is StopKind.BREAK or stop.order_id is None:
                continue
            out[(stop.order_id, stop.kind.value)] = (route.vehicle_id, position, stop.start_s)
            position += 1
    return out


def _label(key: StopKey) -> str:
    return key[0] if key[1] == StopKind.DELIVERY.value else f"{key[0]} ({key[1]})"


def plan_changes(old: Plan, new: Plan, *, min_shift_s: int = 60) -> PlanChanges:
    """Stops moved (vehicle or position), ETA shifts of at least ``min_shift_s``, added/removed."""
    before, after = _stops(old), _stops(new)
    moved: list[StopMove] = []
    shifts: list[EtaShift] = []
    for key in sorted(before.keys() & after.keys()):
        (v0, p0, t0), (v1, p1, t1) = before[key], after[key]
        if v0 != v1 or p0 != p1:
            moved.append(
                StopMove(
                    order_id=key[0],
                    kind=key[1],
                    from_vehicle=v0,
                    to_vehicle=v1,
                    from_position=p0,
                    to_position=p1,
                )
            )
        if abs(t1 - t0) >= min_shift_s:
            shifts.append(
                EtaShift(
                    order_id=key[0],
                    kind=key[1],
                    vehicle_id=v1,
                    old_start_s=t0,
                    new_start_s=t1,
                    shift_s=t1 - t0,
                )
            )
    old_unassigned = {u.order_id for u in old.unassigned}
    return PlanChanges(
        stops_moved=moved,
        eta_shifts=shifts,
        added=[_label(k) for k in sorted(after.keys() - before.keys())],
        removed=[_label(k) for k in sorted(before.keys() - after.keys())],
        newly_unassigned=sorted(
            u.order_id for u in new.unassigned if u.order_id not in old_unassigned
        ),
        num_moved=len(moved),
        num_eta_shifted=len(shifts),
        max_eta_shift_s=max((abs(s.shift_s) for s in shifts), default=0),
    )
