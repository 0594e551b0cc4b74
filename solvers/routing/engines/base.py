"""The engine protocol: what every routing engine receives and returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from solvers.routing.problem import RoutingProblem

#: In ``EngineResult.detail`` of an OR-Tools search given ``max_solutions`` that its time
#: limit stopped first (its plan then depends on the machine's speed).
STOPPED_BY_CLOCK = "stopped by its time limit before its solutions"


@dataclass(frozen=True)
class EngineSettings:
    """Budget, seed and re-optimisation data handed to an engine (task indices).

    ``deadline`` is the ``time.perf_counter()`` value by which :meth:`Engine.solve` must
    return (``time_limit_s`` is what was left of the budget when the settings were made).
    ``seed_routes``/``seed_left`` are the greedy plan already built within the budget (the
    warm start extended by cheapest insertion) and the orders it could not place; engines
    start from it instead of building their own. ``search=False`` (only where
    :meth:`Engine.min_start_s` is not None): return the engine's own start made from
    ``seed_routes``, without searching. ``meanwhile``: work for the caller to do while the
    engine's searches run in other processes (PyVRP's forked searches), on a thread whose
    :func:`~solvers.cancel.cancelled` turns true once a search has a feasible solution (or the
    caller is cancelled); an engine that searches in this process does not call it.
    """

    time_limit_s: float
    seed: int = 0
    num_workers: int = 1
    max_iterations: int | None = None
    max_solutions: int | None = None
    initial: dict[int, list[int]] = field(default_factory=dict)
    pinned: frozenset[int] = frozenset()
    original_vehicle: dict[int, int] = field(default_factory=dict)
    disruption_cost: int = 0
    deadline: float | None = None
    seed_routes: dict[int, list[int]] | None = None
    seed_left: tuple[int, ...] = ()
    search: bool = True
    meanwhile: Callable[[], None] | None = None

    def end(self) -> float:
        """The absolute deadline (``time.perf_counter()``)."""
        if self.deadline is not None:
            return self.deadline
        return time.perf_counter() + self.time_limit_s


@dataclass
class EngineResult:
    """Routes (vehicle index -> task sequence) found by an engine."""

    routes: dict[int, list[int]]
    objective: int | None = None
    feasible: bool = True
    detail: str = ""
    #: the engine's own starting plan where it differs from the one it was given (PyVRP's
    #: start trimmed to its model): a candidate answer too, should the search end dearer
    start_routes: dict[int, list[int]] | None = None
    #: no feasible solution because the time limit stopped every search before it found one
    #: (not because the model has none)
    out_of_time: bool = False
    #: a work budget was set (PyVRP ``max_iterations``, OR-Tools ``max_solutions``) and the
    #: clock stopped a search before it (its plan then depends on the machine's speed)
    clock_cut: bool = False


class Engine(Protocol):
    """A routing engine: says what it cannot model, and solves what it can."""

    name: str

    def unsupported(self, problem: RoutingProblem, settings: EngineSettings) -> str | None:
        """Why this engine cannot solve the problem (None if it can)."""
        ...

    def min_time_s(self, problem: RoutingProblem) -> float:
        """Rough time the engine needs to set up before its search can start."""
        ...

    def min_start_s(self, problem: RoutingProblem) -> float | None:
        """Rough time to make the engine's own start from the greedy plan without searching
        (``EngineSettings.search=False``), when that start can differ from the greedy plan
        (None when it cannot)."""
        ...

    def solve(self, problem: RoutingProblem, settings: EngineSettings) -> EngineResult:
        """Best routes found within the settings' budget."""
        ...
