"""RL agents for dynamic dispatch: a gymnasium environment on the twin, policies, SB3 training.

Importing the package registers the environment ``dispatchlab/DynamicDispatch-v0`` and the
policy specs ``greedy``, ``euro-greedy[:MIN]``, ``euro-lazy[:MIN]``, ``slots``, ``slots-tc``,
``slots-drop``, ``model:PATH`` and ``model-plain:PATH`` with
:func:`simulation.policies.register_policy` (so they work in ``simulate``,
``whatif`` and ``evaluate``). Heavy dependencies (torch, SB3) load only when a model is used.

>>> import gymnasium, rl_agents
>>> env = gymnasium.make("dispatchlab/DynamicDispatch-v0")          # the standard scenario
"""

from __future__ import annotations

import gymnasium as gym

from rl_agents.env import ENV_ID, DynamicDispatchEnv, EnvParams, make_env
from rl_agents.features import FeatureParams, Featurizer
from rl_agents.policies import (
    EpochDispatchPolicy,
    ModelPolicy,
    SlotInsertionPolicy,
    register_policies,
)
from rl_agents.scenario import (
    EVAL_SEEDS,
    TRAIN_SEEDS,
    VALIDATION_SEEDS,
    load_scenario_spec,
    parse_seeds,
    standard_scenario,
)

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="rl_agents.env:DynamicDispatchEnv")
register_policies()

__all__ = [
    "ENV_ID",
    "EVAL_SEEDS",
    "TRAIN_SEEDS",
    "VALIDATION_SEEDS",
    "DynamicDispatchEnv",
    "EnvParams",
    "EpochDispatchPolicy",
    "FeatureParams",
    "Featurizer",
    "ModelPolicy",
    "SlotInsertionPolicy",
    "load_scenario_spec",
    "make_env",
    "parse_seeds",
    "register_policies",
    "standard_scenario",
]
