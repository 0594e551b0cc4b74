"""Plain-language explanations of a route plan (the allocation part lives in ``allocation/``).

``explain_routes`` says, per route, how full and how long it is and where time is lost to
waiting, and per unassigned order why it is out and what that costs. The API returns these
lines next to the plan; the CLI prints them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from scenarios.model import Scenario
from scenarios.plan import Plan, Route, StopKind


class RouteExplanation(BaseModel):
    """Facts about one route, and a sentence that sums them up."""

    vehicle_id: str
    num_stops: int
    peak_load_pct: float = Field(description="highest load on board, % of capacity (max dim)")
    duration_s: int
    shift_used_pct: float
    waiting_s: int
    text: str


class PlanExplanation(BaseModel):
    """Explanation of a whole plan: routes, then unassigned orders."""

    summary: str
    routes: list[RouteExplanation] = Field(default_factory=list)
    unassigned: list[str] = Field(default_factory=list)


def explain_routes(scenario: Scenario, plan: Plan) -> PlanExplanation:
    """Explain a route plan: utilisation of each route and why orders are unassigned."""
    routes = []
    for r in plan.routes:
        if not r.stops:
            continue
        veh = scenario.vehicle(r.vehicle_id)
        peak = 0.0
        if veh.capacity:
            for st in r.stops:
                for q, c in zip(st.load_after, veh.capacity, strict=False):
                    if c:
                        peak = max(peak, 100.0 * q / c)
            # load leaving the start = everything delivered from it
            start_load = [0] * len(veh.capacity)
            for st in r.stops:
                order = scenario.order(st.order_id) if st.order_id else None
                if order is not None and order.pickup is None and st.kind is StopKind.DELIVERY:
                    for d, q in enumerate(order.demand_vector(scenario.capacity_dims)):
                        start_load[d] += q
            for q, c in zip(start_load, veh.capacity, strict=False):
                if c:
                    peak = max(peak, 100.0 * q / c)
        shift = veh.shift or scenario.horizon
        span = max(1, shift.end_s - shift.start_s)
        waiting = sum(st.start_s - st.arrival_s for st in r.stops if st.kind is not StopKind.BREAK)
        visits = sum(1 for st in r.stops if st.kind is not StopKind.BREAK)
        used = 100.0 * r.duration_s / span
        text = (
            f"vehicle {r.vehicle_id}: {visits} stops, peak load {peak:.0f}% of capacity, "
            f"{r.duration_s / 3600:.1f} h ({used:.0f}% of its shift)"
            + (f", {waiting / 60:.0f} min waiting for windows" if waiting else "")
            + _release_wait(scenario, r, shift.start_s)
        )
        routes.append(
            RouteExplanation(
                vehicle_id=r.vehicle_id,
                num_stops=visits,
                peak_load_pct=round(peak, 1),
                duration_s=r.duration_s,
                shift_used_pct=round(used, 1),
                waiting_s=waiting,
                text=text,
            )
        )
    unassigned = [
        f"order {u.order_id} is not served: {u.reason.value.replace('_', ' ')}"
        + (f" ({u.detail})" if u.detail else "")
        + (f"; costs {u.penalty_cents} cents" if u.penalty_cents else "")
        for u in plan.unassigned
    ]
    served = len(scenario.orders) - len(plan.unassigned)
    summary = (
        f"{served} of {len(scenario.orders)} orders served by {plan.num_vehicles} vehicles"
        f" ({plan.status.value}, engine {plan.engine})"
    )
    return PlanExplanation(summary=summary, routes=routes, unassigned=unassigned)


def _release_wait(scenario: Scenario, route: Route, shift_start_s: int) -> str:
    """ ", leaves the start at T s, once order X is created" when the route leaves after its
    shift starts because an order it loads there is created only then; else ''."""
    loaded = [
        scenario.order(st.order_id)
        for st in route.stops
        if st.kind is StopKind.DELIVERY and st.order_id is not None
    ]
    last = max((o for o in loaded if o.pickup is None), key=lambda o: o.created_s, default=None)
    if last is None or last.created_s <= shift_start_s or route.start_s != last.created_s:
        return ""
    return f", leaves the start at {route.start_s} s, once order {last.id} is created"
