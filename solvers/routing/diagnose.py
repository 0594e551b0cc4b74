"""Why an order cannot be served at all, before any search: skills, capacity, windows."""

from __future__ import annotations

from scenarios.plan import UnassignedReason
from solvers.routing.problem import RoutingProblem
from solvers.routing.schedule import schedule_route


def diagnose_orders(problem: RoutingProblem) -> dict[int, tuple[UnassignedReason, str]]:
    """Orders no vehicle can serve even alone, with the reason; keyed by order position."""
    out: dict[int, tuple[UnassignedReason, str]] = {}
    if not problem.vehicles:
        for i in range(len(problem.orders)):
            out[i] = (UnassignedReason.NO_SOLUTION, "the scenario has no vehicles")
        return out
    reps: dict[tuple[object, ...], int] = {}
    for vi, veh in enumerate(problem.vehicles):
        reps.setdefault(veh.type_key, vi)
    kinds = list(reps.values())
    dims = problem.scenario.capacity_dims
    for oi, info in enumerate(problem.orders):
        skilled = [v for v in kinds if problem.vehicles[v].can_serve(info)]
        if not skilled:
            need = ", ".join(sorted(info.skills))
            out[oi] = (UnassignedReason.NO_SKILL, f"no vehicle has every skill needed ({need})")
            continue
        big = [
            v
            for v in skilled
            if all(q <= c for q, c in zip(info.demand, problem.vehicles[v].capacity, strict=True))
        ]
        if not big:
            over = [
                dims[d]
                for d, q in enumerate(info.demand)
                if all(q > problem.vehicles[v].capacity[d] for v in skilled)
            ]
            out[oi] = (
                UnassignedReason.OVER_CAPACITY,
                f"demand {list(info.demand)} exceeds every capable vehicle's capacity"
                f" ({', '.join(over) or 'combined'})",
            )
            continue
        why = ""
        for v in big:
            sched = schedule_route(problem, v, list(info.tasks))
            if sched.violation is None:
                why = ""
                break
            why = sched.violation
        if why:
            out[oi] = (
                UnassignedReason.WINDOW_UNREACHABLE,
                f"even a direct trip fails: {why}",
            )
    return out
