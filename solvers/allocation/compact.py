"""The compact MIP over every candidate pair, started from the best allocation so far.

Used by the batch solve after the pattern master: where stock and capacity rows interact
(node capacities, VIP shares), HiGHS' cuts and branching on the compact model (per-arc
linking, see :mod:`solvers.allocation.highs_model`) lift the bound above the Lagrangian
one and find allocations the pattern pool cannot express. Its dual bound is a bound on the
whole problem, so the batch solve certifies with whichever bound is higher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from solvers.allocation.highs_model import FAILED, AllocationModel
from solvers.allocation.problem import I64, Problem


@dataclass
class CompactOutcome:
    """Answer of one compact MIP run."""

    x: I64 | None  # None: no feasible allocation in time (or one breaking a limit)
    bound: float  # HiGHS dual bound (currency units); -inf: root not solved, or HiGHS failed
    status: str
    nodes: int
    #: HiGHS failed (an error status such as "Memory limit reached", an exception): no bound
    failed: bool = False

    def note(self) -> str:
        """The run's note for the answer: its status and its bound, if it has one."""
        if self.failed:
            return f"compact MIP: {self.status}, no bound"
        if not np.isfinite(self.bound):
            return f"compact MIP: {self.status}, no bound (stopped before its root LP ended)"
        return f"compact MIP: {self.status}, bound {self.bound:.4f}"


def solve_compact(
    prob: Problem,
    x_start: I64,
    *,
    seconds: float,
    gap: float,
    threads: int | None,
    seed: int,
    target: float | None = None,
    options: dict[str, Any] | None = None,
) -> CompactOutcome:
    """The compact MIP over all pairs from ``x_start``; stop at ``gap`` or ``target``.

    ``options`` are more HiGHS options (they override the defaults set here).
    """
    model = AllocationModel(
        prob, np.arange(prob.num_pairs), integer=True, threads=threads, seed=seed
    )
    settings: dict[str, Any] = {"mip_rel_gap": gap, "mip_allow_restart": False}
    if target is not None:
        settings["objective_target"] = target
    model.set_options(**{**settings, **(options or {})})
    model.set_start(x_start)
    status = model.run(max(seconds, 0.01))
    x = model.units() if model.has_solution() else None
    if x is not None and prob.violations(x):
        x = None
    return CompactOutcome(
        x=x,
        bound=model.mip_bound(),
        status=status,
        nodes=model.mip_nodes(),
        failed=model.h.getModelStatus() in FAILED,
    )
