"""``/v1/allocations`` bodies: the allocation request and parameters in, the result out."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from api.schemas.common import service_defaults
from api.schemas.routes import MODE_DESCRIPTION, SolveMode, SolverInfo
from scenarios.geo import NulFreeModel
from solvers.allocation import AllocationParams, AllocationRequest, AllocationResult

#: The service's defaults for fields the client leaves out (the solver's time limit is 60 s).
PARAMS_DEFAULTS: dict[str, object] = {"time_limit_s": 10.0}


def _default_params() -> AllocationParams:
    return AllocationParams.model_validate(PARAMS_DEFAULTS)


class AllocationCreate(NulFreeModel):
    """Decide which node ships each order line (``params.mode``: batch or online; or a
    baseline), answered now or as a job (``mode``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    request: AllocationRequest = Field(
        description="nodes with stock, orders with lines, prices and rules (as for "
        "`dispatchlab allocate`)"
    )
    params: Annotated[AllocationParams, service_defaults(**PARAMS_DEFAULTS)] = Field(
        default_factory=_default_params,
        description="fields left out take the service's defaults (time_limit_s 10)",
    )
    mode: SolveMode = Field(default="auto", description=MODE_DESCRIPTION)


class AllocationsPublic(AllocationResult):
    """The allocation with its cost, explanations and diagnosis; stored as job ``job_id``."""

    job_id: str
    fallback: bool = Field(description="true when the nearest-node baseline answered")
    fallback_reason: str | None = None
    solver: SolverInfo
