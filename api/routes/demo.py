"""``GET /v1/demo``: the demo scenario and request bodies to try (only with ``--demo``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from api.deps import CtxDep

router = APIRouter(prefix="/v1/demo", tags=["demo"])


class DemoPublic(BaseModel):
    """The generated demo scenario and example request bodies built on it."""

    scenario: dict[str, Any]
    requests: dict[str, dict[str, Any]] = Field(
        description="endpoint -> a body to paste into its 'Try it out'"
    )


@router.get("", response_model=DemoPublic, summary="The demo scenario (open)")
def get_demo(ctx: CtxDep) -> DemoPublic:
    """The scenario loaded by ``dispatchlab serve --demo`` and bodies that use it."""
    if ctx.demo is None:
        raise HTTPException(503, "the demo is still loading")
    return DemoPublic(**ctx.demo)
