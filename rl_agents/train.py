"""Train dispatch agents with Stable-Baselines3: MaskablePPO (default), PPO or DQN.

:func:`train` builds vectorised environments on training days (``TRAIN_SEEDS``), optionally
warm-starts the policy by imitation of cheapest insertion over the candidate slots
(behaviour cloning plus a value fit on the demonstrations' returns), then runs the algorithm
with TensorBoard logs, periodic checkpoints, a progress bar and an evaluation callback on
held-out validation days that keeps the best model. The written model is the best one seen on
the validation days (the warm start included), in the format of :mod:`rl_agents.model_io`.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from rl_agents.env import DynamicDispatchEnv, EnvParams
from rl_agents.scenario import TRAIN_SEEDS, VALIDATION_SEEDS
from scenarios.geo import StrictModel
from scenarios.model import Scenario

Algo = Literal["maskable-ppo", "ppo", "dqn"]


class TrainParams(StrictModel):
    """Hyper-parameters of a training run (defaults: the shipped model's)."""

    algo: Algo = "maskable-ppo"
    timesteps: int = Field(default=200_000, ge=1)
    seed: int = 0
    num_envs: int = Field(default=2, ge=1, le=64)
    subproc: bool = Field(default=False, description="environments in subprocesses")
    imitation_days: int = Field(default=40, ge=0, description="expert days for the warm start")
    imitation_epochs: int = Field(default=8, ge=0)
    eval_every: int = Field(
        default=20_000, ge=0, description="steps between validations (0 = none)"
    )
    eval_days: int = Field(default=5, ge=1, le=len(VALIDATION_SEEDS))
    checkpoint_every: int = Field(default=50_000, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0.0)
    n_steps: int = Field(default=1024, ge=8, description="steps per env per PPO rollout")
    batch_size: int = Field(default=256, ge=8)
    n_epochs: int = Field(default=5, ge=1)
    gamma: float = Field(default=0.995, gt=0.0, le=1.0)
    gae_lambda: float = Field(default=0.95, ge=0.0, le=1.0)
    ent_coef: float = Field(default=0.01, ge=0.0)
    clip_range: float = Field(default=0.1, gt=0.0)
    net_arch: list[int] = Field(default_factory=lambda: [64, 64])
    reward_scale: float = Field(default=1e-3, gt=0.0, description="rewards are cents x this")
    env: EnvParams = Field(default_factory=EnvParams)
    scenario_name: str = "standard"


@dataclass
class TrainResult:
    """What a run produced."""

    out: Path
    timesteps: int
    wall_s: float
    best_validation_cost: float | None
    validation: list[tuple[int, float]] = field(default_factory=list)
    imitation_accuracy: float | None = None


def _env_factory(
    scenario_json: str, env_params: dict[str, Any], day_seeds: Sequence[int] | range, cycle: bool
) -> Any:
    """Build one monitored environment (module-level so subprocesses can pickle it)."""
    from stable_baselines3.common.monitor import Monitor

    scenario = Scenario.model_validate_json(scenario_json)
    env = DynamicDispatchEnv(
        scenario, EnvParams.model_validate(env_params), day_seeds=day_seeds, cycle=cycle
    )
    return Monitor(env)


def make_vec_env(
    scenario: Scenario,
    env_params: EnvParams,
    *,
    num_envs: int,
    seed: int,
    subproc: bool = False,
    day_seeds: Sequence[int] | range = TRAIN_SEEDS,
) -> Any:
    """``num_envs`` training environments (in this process, or in subprocesses)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fn = functools.partial(
        _env_factory, scenario.model_dump_json(), env_params.model_dump(), day_seeds, False
    )
    fns: list[Callable[[], Any]] = [fn] * num_envs
    vec = SubprocVecEnv(fns, start_method="spawn") if subproc and num_envs > 1 else DummyVecEnv(fns)
    vec.seed(seed)
    return vec


# ---------------------------------------------------------------------- imitation


@dataclass
class Demonstrations:
    """Expert decisions: observations (stacked per key), masks, actions and returns-to-go."""

    obs: dict[str, NDArray[np.float32]]
    masks: NDArray[np.bool_]
    actions: NDArray[np.int64]
    returns: NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def demonstrations(
    scenario: Scenario,
    env_params: EnvParams,
    days: Sequence[int],
    *,
    gamma: float,
    true_cost: bool = False,
) -> Demonstrations:
    """Roll out cheapest insertion over the candidate slots on ``days``."""
    env = DynamicDispatchEnv(scenario, env_params)
    obs_rows: dict[str, list[NDArray[np.float32]]] = {}
    masks: list[NDArray[np.bool_]] = []
    actions: list[int] = []
    returns: list[float] = []
    for day in days:
        obs, _ = env.reset(options={"day_seed": int(day)})
        rewards: list[float] = []
        done = False
        while not done:
            decision = env._decision
            assert decision is not None
            a = env.featurizer.heuristic_action(decision, true_cost=true_cost)
            for k, v in obs.items():
                obs_rows.setdefault(k, []).append(v)
            masks.append(env.action_masks())
            actions.append(a)
            obs, r, term, trunc, _ = env.step(a)
            rewards.append(r)
            done = term or trunc
        g = 0.0
        rtg = [0.0] * len(rewards)
        for t in range(len(rewards) - 1, -1, -1):
            g = rewards[t] + gamma * g
            rtg[t] = g
        returns.extend(rtg)
    return Demonstrations(
        obs={k: np.stack(v) for k, v in obs_rows.items()},
        masks=np.asarray(masks, dtype=bool),
        actions=np.asarray(actions, dtype=np.int64),
        returns=np.asarray(returns, dtype=np.float32),
    )


def imitate(
    model: Any,
    demos: Demonstrations,
    *,
    epochs: int,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    label_smoothing: float = 0.1,
    seed: int = 0,
) -> float:
    """Behaviour cloning of the demonstrations (and a value fit); returns the final accuracy.

    The targets are smoothed (``label_smoothing`` of the probability spread over the valid
    actions), so the warm-started policy keeps some entropy for PPO to explore with.
    """
    import torch
    import torch.nn.functional as nnf

    policy = model.policy
    maskable = "Maskable" in type(policy).__name__
    optim = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    n = len(demos)
    rng = np.random.default_rng(seed)
    device = policy.device
    ret_t = torch.as_tensor(demos.returns, device=device)
    masks_t = torch.as_tensor(demos.masks, device=device)
    act_t = torch.as_tensor(demos.actions, device=device)
    eps = label_smoothing

    def log_probs(obs: dict[str, Any], mask: Any) -> Any:
        dist = policy.get_distribution(obs)
        if maskable:
            dist.apply_masking(mask)
        return dist.distribution.logits

    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = torch.as_tensor(order[start : start + batch_size], device=device)
            obs = {k: torch.as_tensor(v, device=device)[idx] for k, v in demos.obs.items()}
            mask = masks_t[idx]
            logp = log_probs(obs, mask)
            expert = logp.gather(1, act_t[idx].unsqueeze(1)).squeeze(1)
            valid = mask.float() if maskable else torch.ones_like(logp)
            spread = torch.where(valid > 0, logp, torch.zeros_like(logp)).sum(1) / valid.sum(1)
            bc = -((1.0 - eps) * expert + eps * spread).mean()
            values = policy.predict_values(obs).flatten()
            loss = bc + 0.5 * nnf.mse_loss(values, ret_t[idx])
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            optim.step()
    with torch.no_grad():
        correct = 0
        for start in range(0, n, 1024):
            sl = slice(start, start + 1024)
            obs = {k: torch.as_tensor(v[sl], device=device) for k, v in demos.obs.items()}
            pred = log_probs(obs, masks_t[sl]).argmax(1).cpu().numpy()
            correct += int((pred == demos.actions[sl]).sum())
    return correct / max(1, n)


# ---------------------------------------------------------------------- validation


def validate(model: Any, env: DynamicDispatchEnv, days: Sequence[int], *, masked: bool) -> float:
    """Mean day cost (cents) of the model's greedy decisions on ``days``."""
    costs = []
    for day in days:
        obs, info = env.reset(options={"day_seed": int(day)})
        done = env._done
        while not done:
            if masked:
                action, _ = model.predict(obs, deterministic=True, action_masks=env.action_masks())
            else:
                action, _ = model.predict(obs, deterministic=True)
            obs, _, term, trunc, info = env.step(int(action))
            done = term or trunc
        costs.append(float(info["kpis"]["cost_cents"]))
    return float(np.mean(costs))


def _callbacks(
    params: TrainParams,
    val_env: DynamicDispatchEnv,
    logdir: Path,
    out: Path,
    state: dict[str, Any],
) -> list[Any]:
    from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

    masked = params.algo == "maskable-ppo"
    days = list(VALIDATION_SEEDS)[: params.eval_days]

    class DayCostCallback(BaseCallback):
        """Log each finished training day's cost and on-time rate."""

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                kpis = info.get("kpis")
                if kpis is not None:
                    self.logger.record_mean("dispatch/day_cost_cents", kpis["cost_cents"])
                    self.logger.record_mean("dispatch/on_time_rate", kpis["on_time_rate"])
            return True

    class DispatchEvalCallback(BaseCallback):
        """Every ``eval_every`` steps: mean cost on validation days; keep the best model."""

        def __init__(self) -> None:
            super().__init__()
            self._last = 0

        def _on_step(self) -> bool:
            if params.eval_every <= 0 or self.num_timesteps - self._last < params.eval_every:
                return True
            self._last = self.num_timesteps
            cost = validate(self.model, val_env, days, masked=masked)
            self.logger.record("eval/mean_cost_cents", cost)
            state["validation"].append((self.num_timesteps, cost))
            if state["best"] is None or cost < state["best"]:
                state["best"] = cost
                _save(self.model, out, params, state, note=f"step {self.num_timesteps}")
            return True

    checkpoint = CheckpointCallback(
        save_freq=max(1, params.checkpoint_every // params.num_envs),
        save_path=str(logdir / "checkpoints"),
        name_prefix=params.algo,
    )
    return [DayCostCallback(), DispatchEvalCallback(), checkpoint]


def _save(model: Any, out: Path, params: TrainParams, state: dict[str, Any], *, note: str) -> None:
    from rl_agents.model_io import save_model

    info = {
        "train_params": params.model_dump(mode="json"),
        "validation_days": list(VALIDATION_SEEDS)[: params.eval_days],
        "validation_cost_cents": state.get("best"),
        "selected": note,
        "command": state.get("command"),
    }
    save_model(model, out, algo=params.algo, env_params=params.env, info=info)


def _build_model(params: TrainParams, vec: Any, logdir: Path) -> Any:
    import torch

    common: dict[str, Any] = {
        "tensorboard_log": str(logdir),
        "seed": params.seed,
        "device": "cpu",
        "verbose": 0,
        "learning_rate": params.learning_rate,
        "gamma": params.gamma,
    }
    arch = list(params.net_arch)
    if params.algo == "dqn":
        from stable_baselines3 import DQN

        return DQN(
            "MultiInputPolicy",
            vec,
            buffer_size=100_000,
            learning_starts=min(5_000, params.timesteps // 10 + 1),
            batch_size=params.batch_size,
            train_freq=4,
            target_update_interval=2_000,
            exploration_fraction=0.2,
            exploration_final_eps=0.02,
            policy_kwargs={"net_arch": arch},
            **common,
        )
    ppo_kwargs: dict[str, Any] = {
        "n_steps": params.n_steps,
        "batch_size": params.batch_size,
        "n_epochs": params.n_epochs,
        "gae_lambda": params.gae_lambda,
        "ent_coef": params.ent_coef,
        "clip_range": params.clip_range,
        "policy_kwargs": {"net_arch": {"pi": arch, "vf": arch}, "activation_fn": torch.nn.Tanh},
    }
    if params.algo == "maskable-ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO("MultiInputPolicy", vec, **ppo_kwargs, **common)
    from stable_baselines3 import PPO

    return PPO("MultiInputPolicy", vec, **ppo_kwargs, **common)


def train(
    scenario: Scenario,
    params: TrainParams | None = None,
    *,
    out: str | Path,
    logdir: str | Path,
    progress: bool = True,
    command: str | None = None,
) -> TrainResult:
    """Train an agent; writes the best validated model to ``out`` (see the module docstring)."""
    import torch

    p = params if params is not None else TrainParams()
    p = p.model_copy(update={"env": p.env.model_copy(update={"reward_scale": p.reward_scale})})
    out_path, log_path = Path(out), Path(logdir)
    log_path.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    vec = make_vec_env(scenario, p.env, num_envs=p.num_envs, seed=p.seed, subproc=p.subproc)
    model = _build_model(p, vec, log_path)
    state: dict[str, Any] = {"best": None, "validation": [], "command": command}
    accuracy = None
    masked = p.algo == "maskable-ppo"
    if p.imitation_days > 0 and p.imitation_epochs > 0 and p.algo != "dqn":
        rng = np.random.default_rng(p.seed)
        days = [
            int(TRAIN_SEEDS[int(i)]) for i in rng.integers(len(TRAIN_SEEDS), size=p.imitation_days)
        ]
        demos = demonstrations(scenario, p.env, days, gamma=p.gamma)
        accuracy = imitate(model, demos, epochs=p.imitation_epochs, seed=p.seed)
    val_env = DynamicDispatchEnv(scenario, p.env.model_copy(update={"reward_scale": 1.0}))
    val_days = list(VALIDATION_SEEDS)[: p.eval_days]
    if p.eval_every > 0:
        cost = validate(model, val_env, val_days, masked=masked)
        state["best"] = cost
        state["validation"].append((0, cost))
        _save(model, out_path, p, state, note="warm start" if accuracy is not None else "step 0")
    callbacks = _callbacks(p, val_env, log_path, out_path, state)
    interrupted = False
    try:
        model.learn(
            total_timesteps=p.timesteps,
            callback=callbacks,
            progress_bar=progress,
            tb_log_name=p.algo,
        )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        vec.close()
    if p.eval_every > 0 and not interrupted:
        cost = validate(model, val_env, val_days, masked=masked)
        state["validation"].append((int(model.num_timesteps), cost))
        if cost < state["best"]:
            state["best"] = cost
            _save(model, out_path, p, state, note=f"final step {model.num_timesteps}")
    elif p.eval_every <= 0 or not out_path.exists():
        _save(model, out_path, p, state, note=f"step {model.num_timesteps}")
    if interrupted:
        raise KeyboardInterrupt
    best = state["best"]
    return TrainResult(
        out=out_path,
        timesteps=int(model.num_timesteps),
        wall_s=time.perf_counter() - t0,
        best_validation_cost=None if best is None or math.isnan(best) else float(best),
        validation=list(state["validation"]),
        imitation_accuracy=accuracy,
    )


__all__ = [
    "Demonstrations",
    "TrainParams",
    "TrainResult",
    "demonstrations",
    "imitate",
    "make_vec_env",
    "train",
    "validate",
]
