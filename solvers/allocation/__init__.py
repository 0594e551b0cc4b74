"""Fulfilment allocation: which node ships how many units of each order line, and why.

Public entry points::

    from solvers.allocation import AllocationRequest, AllocationParams, allocate

    result = allocate(request, AllocationParams(mode="batch", time_limit_s=30))
    lines = result.to_lines()          # -> routing

See ``docs/allocation.md`` for the model, the request/result JSON schema and the benchmarks.

The names are imported on first use (PEP 562): a spawned helper process that imports one
module of the package (``pyomo_worker``, ``master``, ``lns``) no longer imports the solve and
the batch path with it (session 68, CPU seconds of the import: the pyomo worker's ~1.4 ->
~0.7, the pricing helper's ~1.35 -> ~1.05).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenarios.lazy import LazyExports

if TYPE_CHECKING:
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

#: each module of the package -> the public names it defines (the imports above)
_MODULES = {
    "solvers.allocation.literature": ("generate_literature", "literature_costs"),
    "solvers.allocation.params": ("AllocationParams", "Baseline"),
    "solvers.allocation.request": (
        "AllocationCosts",
        "AllocationNode",
        "AllocationOrder",
        "AllocationRequest",
        "AllocationRules",
    ),
    "solvers.allocation.result": (
        "AllocationResult",
        "AllocationStatus",
        "Alternative",
        "Assignment",
        "CostBreakdown",
        "Kpis",
        "OrderExplanation",
        "Reason",
        "ReasonKind",
        "ShadowPrice",
        "SolveStats",
        "Unfilled",
        "UnfilledReason",
    ),
    "solvers.allocation.solve": ("allocate",),
}
#: the package's public names, imported on first use
_LAZY = LazyExports(__name__, _MODULES)
__getattr__, __dir__ = _LAZY.hooks()

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
