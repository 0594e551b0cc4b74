"""Courier routing: one entry point over greedy insertion, PyVRP and OR-Tools engines.

>>> from solvers.routing import RoutingParams, solve_routes
>>> plan = solve_routes(scenario, RoutingParams(engine="auto", time_limit_s=5, seed=1))

Every plan returned has passed :func:`solvers.validate.validate_plan`; orders that cannot be
served come back in ``plan.unassigned`` with a reason instead of an exception.
"""

from solvers.routing.engines.base import Engine, EngineResult, EngineSettings
from solvers.routing.from_allocation import routing_scenario_from_allocation
from solvers.routing.params import EngineName, RoutingParams
from solvers.routing.problem import RoutingProblem, build_problem
from solvers.routing.solve import SolveStats, solve_routes, solve_routes_with_stats

__all__ = [
    "Engine",
    "EngineName",
    "EngineResult",
    "EngineSettings",
    "RoutingParams",
    "RoutingProblem",
    "SolveStats",
    "build_problem",
    "routing_scenario_from_allocation",
    "solve_routes",
    "solve_routes_with_stats",
]
