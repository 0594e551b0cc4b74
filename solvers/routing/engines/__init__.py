"""Routing engines behind one protocol: greedy insertion, PyVRP, OR-Tools."""

from solvers.routing.engines.base import Engine, EngineResult, EngineSettings

__all__ = ["Engine", "EngineResult", "EngineSettings"]
