"""Tuning knobs of :func:`solvers.allocation.allocate`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from scenarios.errors import FieldError
from scenarios.geo import NotBool, Seed, StrictModel

Baseline = Literal["nearest", "rule_chain", "myopic"]

#: an online request of more orders than this is solved as a batch (the batch path, with a
#: note; ``solve.allocate``). Measured in session 57 (10 s limit, CPU seconds on a loaded
#: 2-core machine; literature 10 FCs, city 20 nodes): at 35 literature orders the joint
#: compact MIP took 1.70 s to the batch path's 0.17 s for the same answer; at 100 orders it
#: stopped at its limit at gaps of 1.5 % (literature, 1.1 % above the batch's proven
#: optimum) and 0.9 % (city, 0.5 % above the batch's answer), at 300 orders at 8.8 % and
#: 18.0 % where the batch's were 0.007 % and 0.6 %. Up to 25 orders online answered as the
#: batch did, in 0.002-0.07 s
ONLINE_MAX_ORDERS = 25
#: the most HiGHS threads ``threads`` may ask for
MAX_THREADS = 256


class AllocationParams(StrictModel):
    """How to solve: mode, limits, seed, optional baseline policy and solver options."""

    mode: Literal["batch", "online"] = Field(
        default="batch",
        description="batch = many orders jointly (LP bound, pruning, MIP); online = one or a "
        "few orders, exact and fast, same model (an answer not proven within 75 % of the time "
        "limit is 'feasible' with its bound); an online request of more than "
        f"{ONLINE_MAX_ORDERS} orders is solved as a batch (method 'batch', with a note)",
    )
    baseline: Baseline | None = Field(
        default=None,
        description="instead of optimising, run a baseline policy (same cost function): "
        "nearest = nearest node with full stock; rule_chain = fewest unfilled units, then "
        "fewest shipments, then nearest; myopic = each order's own optimum, in arrival order",
    )
    time_limit_s: Annotated[float, Field(gt=0.0, le=86_400.0), NotBool] = Field(
        default=60.0,
        description="wall-clock budget for the whole answer; one too small for the "
        "optimising path gets the nearest-node answer, and explanations that cannot fit are "
        "left out or cut short (stats.notes says so)",
    )
    mip_rel_gap: Annotated[float, Field(ge=0.0, le=1.0), NotBool] = Field(
        default=1e-4, description="stop once the certified relative gap is at most this"
    )
    seed: Seed = Field(default=0, description="HiGHS random seed (same seed, same answer)")
    threads: Annotated[int, Field(ge=1, le=MAX_THREADS), NotBool] | None = Field(
        default=None,
        description="HiGHS threads of the solve's models (one-order and small online MIPs "
        "use one); None = HiGHS default (one per core; one for a single online order), and "
        "a batch of 100-1999 orders that share only stock also runs its neighbourhood search "
        "on a thread per core (answers then depend on thread timing); the HTTP service sets "
        "1 when it is not given and caps it at the cores it may use (with a note); "
        "elsewhere more than the cores are used as asked, with a note",
    )
    backend: Literal["highspy", "pyomo"] = Field(
        default="highspy",
        description="highspy = arrays straight into HiGHS (fast path); pyomo = the reference "
        "Pyomo formulation solved by HiGHS (one MIP over the same pruned candidates, no "
        "decomposition; for checking and small cases), in a worker process killed at the "
        "time limit (then the cheapest of the nearest-node, myopic and rule-chain baselines "
        "that finished meanwhile, with a note naming it); a process without a "
        "worker ready and less of the limit left than one takes to start (about 3 s) "
        "solves with highspy, with a note",
    )
    initial_candidates: Annotated[int, Field(ge=1), NotBool] = Field(
        default=4,
        description="nodes per order in the first LP; column generation adds the rest as "
        "their reduced costs require (the bound is always over every candidate)",
    )
    max_mip_pairs: Annotated[int, Field(ge=1), NotBool] = Field(
        default=60_000,
        description="largest (order, node) pair count given to one joint MIP; larger "
        "problems fix the orders the LP already decides and solve the rest",
    )
    explain: bool = Field(default=True, description="compute per-order explanations")
    shadow_prices: bool = Field(
        default=True,
        description="report shadow prices of scarce stock and capacity rows: optimal duals "
        "of the compact LP (online, pyomo), the pattern LP's best-bound multipliers (batch); "
        "the result's shadow_price_lp and shadow_price_tolerance say which and how exact",
    )

    @model_validator(mode="after")
    def _baseline_alone(self) -> AllocationParams:
        """A baseline runs no solver: a backend or mode given with it would be ignored."""
        if self.baseline is None:
            return self
        if "backend" in self.model_fields_set and self.backend != "highspy":
            raise FieldError(
                ("backend",), f"the {self.baseline} baseline runs no solver: omit one of the two"
            )
        if "mode" in self.model_fields_set and self.mode != "batch":
            raise FieldError(
                ("mode",), f"the {self.baseline} baseline has no online mode: omit one of the two"
            )
        return self
