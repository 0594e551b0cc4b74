"""Fulfilment allocation: which node ships how many units of each order line, and why.

Public entry points::

    from solvers.allocation import AllocationRequest, AllocationParams, allocate

    result = allocate(request, AllocationParams(mode="batch", time_limit_s=30))
    lines = result.to_lines()          # -> routing

See ``docs/allocation.md`` for the model, the request/result JSON schema and the benchmarks.
"""

from solvers.allocation.literature import generate_literature, literature_costs
from solvers.allocation.params import AllocationParams, Baseline
from solvers.allocation.request import (
    AllocationCosts,
    AllocationNode,
    AllocationOrder,
    AllocationRequest,
    AllocationRules,
)
from solvers.allocation.result import (
    AllocationResult,
    AllocationStatus,
    Alternative,
    Assignment,
    CostBreakdown,
    Kpis,
    OrderExplanation,
    Reason,
    ReasonKind,
    ShadowPrice,
    SolveStats,
    Unfilled,
    UnfilledReason,
)
from solvers.allocation.solve import allocate

__all__ = [
    "AllocationCosts",
    "AllocationNode",
    "AllocationOrder",
    "AllocationParams",
    "AllocationRequest",
    "AllocationResult",
    "AllocationRules",
    "AllocationStatus",
    "Alternative",
    "Assignment",
    "Baseline",
    "CostBreakdown",
    "Kpis",
    "OrderExplanation",
    "Reason",
    "ReasonKind",
    "ShadowPrice",
    "SolveStats",
    "Unfilled",
    "UnfilledReason",
    "allocate",
    "generate_literature",
    "literature_costs",
]
