"""One router per resource; solve endpoints are mounted for the job kinds registered."""

from __future__ import annotations

from fastapi import APIRouter

from api.jobs.registry import TaskRegistry


def solve_routers(registry: TaskRegistry) -> list[APIRouter]:
    """Routers of the solve endpoints whose job kinds are in ``registry``."""
    from api.routes import routing

    routers: list[APIRouter] = []
    if "routes" in registry:
        routers.append(routing.router)
    return routers
