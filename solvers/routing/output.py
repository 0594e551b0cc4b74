"""The plan JSON of ``dispatchlab route --out``: routes and times in the source's own units."""

from __future__ import annotations

from typing import Any

from scenarios.model import Scenario
from scenarios.plan import Plan, StopKind


def _units(value: int, divisor: int) -> int | float:
    """A scaled integer back in source units (an int when it divides exactly)."""
    if divisor == 1 or value % divisor == 0:
        return value // divisor
    return round(value / divisor, 6)


def plan_to_dict(scenario: Scenario, plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict, distances and times divided back to the source's units.

    Each stop's ``order_id`` is the id of the visited task: the customer number for
    Solomon/Homberger/CVRPLIB files, the task number for Li & Lim (the pickup task for a
    pickup); ``order`` is the order (job) it belongs to. ``scenarios.io.read_plan`` reads it
    back as the Plan (``scenarios.io.plan_io.RouteOutput``), so keep the two in step.
    """
    ddiv = scenario.source.distance_divisor
    tdiv = scenario.source.time_divisor
    routes = []
    for r in plan.routes:
        if not r.stops:
            continue
        stops: list[dict[str, Any]] = []
        for st in r.stops:
            if st.kind is StopKind.BREAK:
                stops.append(
                    {
                        "kind": "break",
                        "start": _units(st.start_s, tdiv),
                        "end": _units(st.departure_s, tdiv),
                        **({"break_index": st.break_index} if st.break_index is not None else {}),
                        "load_after": st.load_after,
                    }
                )
                continue
            stops.append(
                {
                    "order_id": st.task_id or st.order_id,
                    "order": st.order_id,
                    "kind": st.kind.value,
                    "arrival": _units(st.arrival_s, tdiv),
                    "start": _units(st.start_s, tdiv),
                    "departure": _units(st.departure_s, tdiv),
                    "load_after": st.load_after,
                    **({"pinned": True} if st.pinned else {}),
                }
            )
        routes.append(
            {
                "vehicle_id": r.vehicle_id,
                "start": _units(r.start_s, tdiv),
                "end": _units(r.end_s, tdiv),
                "distance": _units(r.distance_m, ddiv),
                "cost_cents": r.cost_cents,
                "stops": stops,
            }
        )
    return {
        "instance": scenario.name,
        "status": plan.status.value,
        "time_limited": plan.time_limited,
        "engine": plan.engine,
        "seed": plan.seed,
        "runtime_s": plan.runtime_s,
        "distance": _units(plan.distance_m, ddiv),
        "num_vehicles": plan.num_vehicles,
        "cost_cents": plan.cost_cents,
        "units": {"distance_divisor": ddiv, "time_divisor": tdiv},
        "routes": routes,
        "unassigned": [
            {
                "order_id": u.order_id,
                "reason": u.reason.value,
                "detail": u.detail,
                "penalty_cents": u.penalty_cents,
            }
            for u in plan.unassigned
        ],
    }
