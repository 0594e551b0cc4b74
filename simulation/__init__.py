"""The SimPy digital twin: play plans forward, dispatch policies, replications, what-if sweeps.

>>> from simulation import DispatchSimulator, evaluate, compare, simulate
"""

from simulation.decisions import (
    Action,
    ApplyResult,
    Assign,
    DecisionKind,
    DecisionState,
    OrderStatus,
    Postpone,
    Quote,
    ReplaceRoutes,
    Stop,
    StopType,
)
from simulation.evaluate import (
    Case,
    Comparison,
    RiskRule,
    compare,
    evaluate,
    replication_seeds,
    run_tasks,
    simulate,
)
from simulation.executors import LocalExecutor, RayExecutor, SerialExecutor, make_executor
from simulation.params import SimParams
from simulation.policies import (
    CheapestInsertionPolicy,
    DispatchView,
    NearestIdlePolicy,
    PeriodicReoptPolicy,
    Policy,
    make_policy,
    register_policy,
)
from simulation.result import METRICS, SimulationResult
from simulation.twin import DispatchSimulator
from simulation.world import World, compile_world

__all__ = [
    "METRICS",
    "Action",
    "ApplyResult",
    "Assign",
    "Case",
    "CheapestInsertionPolicy",
    "Comparison",
    "DecisionKind",
    "DecisionState",
    "DispatchSimulator",
    "DispatchView",
    "LocalExecutor",
    "NearestIdlePolicy",
    "OrderStatus",
    "PeriodicReoptPolicy",
    "Policy",
    "Postpone",
    "Quote",
    "RayExecutor",
    "ReplaceRoutes",
    "RiskRule",
    "SerialExecutor",
    "SimParams",
    "SimulationResult",
    "Stop",
    "StopType",
    "World",
    "compare",
    "compile_world",
    "evaluate",
    "make_executor",
    "make_policy",
    "register_policy",
    "replication_seeds",
    "run_tasks",
    "simulate",
]
