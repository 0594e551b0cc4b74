"""Tuning knobs of the routing layer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from scenarios.geo import NonNegInt, NotBool, NulFreeModel, Seed
from scenarios.plan import Plan

EngineName = Literal["auto", "pyvrp", "ortools", "greedy"]


class RoutingParams(NulFreeModel):
    """Which engine, how long, which seed, and re-optimisation data for :func:`solve_routes`.

    ``engine="auto"`` picks PyVRP when it can model every feature the scenario uses (breaks
    included: they are scheduled after the search), else OR-Tools, and the greedy plan for
    problems too large for either to build. ``time_limit_s`` covers the whole call (matrices,
    construction, search, repair, validation; a PyVRP search still in an iteration at its end
    is stopped there). A search (PyVRP or OR-Tools) that has stalled stops before it (a day
    of one or two orders answers in a fraction of a second). With a time limit the search
    stops on the clock, so two runs with the same seed may differ slightly; set
    ``max_iterations`` (PyVRP) or ``max_solutions`` (OR-Tools; both for ``auto``) for a plan
    that depends on the seed only (with driver breaks, the break-aware
    post-optimisation after the search then stops after a set amount of work: the plan
    depends on the seed only unless the clock cuts it first, and the plan then says
    ``time_limited``). ``initial_plan`` is a warm
    start: its stops with ``pinned=True`` stay on their vehicle in their order;
    ``disruption_cost_cents`` is charged (OR-Tools) for each stop of the initial plan that
    moves to another vehicle.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    engine: EngineName = "auto"
    time_limit_s: Annotated[float, Field(gt=0.0, le=86_400.0), NotBool] = 10.0
    seed: Seed = 0
    num_workers: Annotated[int, Field(ge=1, le=64), NotBool] = Field(
        default=1,
        description="at most this many independent PyVRP searches in parallel (the best is "
        "kept); fewer when the machine's cores are busy",
    )
    max_iterations: Annotated[int, Field(ge=1), NotBool] | None = Field(
        default=None, description="also stop PyVRP after this many iterations (reproducible)"
    )
    max_solutions: Annotated[int, Field(ge=1), NotBool] | None = Field(
        default=None,
        description="also stop OR-Tools after this many solutions, the moves its search "
        "accepts (reproducible)",
    )
    initial_plan: Plan | None = None
    disruption_cost_cents: NonNegInt = Field(
        default=0,
        description="cents charged (OR-Tools) for each stop of initial_plan moved to another "
        "vehicle; at most 10**12, as every amount (OR-Tools adds it to int64 arc costs)",
    )
