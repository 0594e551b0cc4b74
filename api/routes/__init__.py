"""One router per resource; solve endpoints are mounted for the job kinds registered."""

from __future__ import annotations

from fastapi import APIRouter

from api.jobs.registry import TaskRegistry


def solve_routers(registry: TaskRegistry) -> list[APIRouter]:
    """Routers of the solve endpoints whose job kinds are in ``registry``."""
    from api.routes import allocations, plans, policies, routing, simulations, whatif

    routers: list[APIRouter] = []
    for kind, router in (
        ("allocations", allocations.router),
        ("routes", routing.router),
        ("plans", plans.router),
        ("simulations", simulations.router),
        ("whatif", whatif.router),
        ("policies", policies.router),
    ):
        if kind in registry:
            routers.append(router)
    return routers
