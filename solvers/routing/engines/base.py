"""The engine protocol: what every routing engine receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from solvers.routing.problem import RoutingProblem


@dataclass(frozen=True)
class EngineSettings:
    """Budget, seed and re-optimisation data handed to an engine (task indices)."""

    time_limit_s: float
    seed: int = 0
    num_workers: int = 1
    max_iterations: int | None = None
    initial: dict[int, list[int]] = field(default_factory=dict)
    pinned: frozenset[int] = frozenset()
    original_vehicle: dict[int, int] = field(default_factory=dict)
    disruption_cost: int = 0


@dataclass
class EngineResult:
    """Routes (vehicle index -> task sequence) found by an engine."""

    routes: dict[int, list[int]]
    objective: int | None = None
    feasible: bool = True
    detail: str = ""


class Engine(Protocol):
    """A routing engine: says what it cannot model, and solves what it can."""

    name: str

    def unsupported(self, problem: RoutingProblem, settings: EngineSettings) -> str | None:
        """Why this engine cannot solve the problem (None if it can)."""
        ...

    def solve(self, problem: RoutingProblem, settings: EngineSettings) -> EngineResult:
        """Best routes found within the settings' budget."""
        ...
