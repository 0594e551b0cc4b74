"""Train dispatch agents with Stable-Baselines3: MaskablePPO (default), PPO or DQN.

:func:`train` builds vectorised environments on training days (``TRAIN_SEEDS``), optionally
warm-starts the policy by imitation of cheapest insertion over the candidate slots
(behaviour cloning plus a value fit on the demonstrations' returns), then runs the algorithm
with TensorBoard logs, periodic checkpoints, a progress bar and an evaluation callback on
held-out validation days that keeps the best model. The written model is the best one seen on
the validation days (the warm start included), in the format of :mod:`rl_agents.model_io`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, ValidationInfo, field_validator

from rl_agents.env import REWARD_VERSION, DynamicDispatchEnv, EnvParams
from rl_agents.expert import ExpertDemonstrations, concat, expert_demonstrations
from rl_agents.features import FEATURES_VERSION, UNRECORDED_FEATURES_VERSION
from rl_agents.scenario import TRAIN_SEEDS, VALIDATION_SEEDS
from scenarios.errors import InputError
from scenarios.geo import StrictModel
from scenarios.model import Scenario
from scenarios.saved import SavedDataWarning, saved_context
from simulation.result import KPI_VERSION
from simulation.streams import DRAWS_VERSION
from simulation.twin import twin_version

Algo = Literal["maskable-ppo", "ppo", "dqn"]


#: the most environment steps a run may ask for (1e20 was taken and ran for ever)
MAX_TIMESTEPS = 1_000_000_000
#: the most passes over the expert's days the warm start may ask for (10**20 was taken and
#: trained for ever; the shipped model used 30)
MAX_IMITATION_EPOCHS = 10_000


class TrainParams(StrictModel):
    """Hyper-parameters of a training run (defaults: the shipped model's)."""

    algo: Algo = "maskable-ppo"
    timesteps: int = Field(default=300_000, ge=1, le=MAX_TIMESTEPS)
    seed: int = 0
    num_envs: int = Field(default=2, ge=1, le=64)
    subproc: bool = Field(default=False, description="environments in subprocesses")
    expert: Literal["rollout", "slots"] = Field(
        default="slots",
        description="imitation expert: the lookahead expert (rl_agents.expert) or plain slots",
    )
    expert_horizon_s: float = Field(default=7200.0, gt=0.0, description="expert's lookahead")
    expert_workers: int = Field(default=2, ge=1, le=64)
    imitation_days: int = Field(
        default=10, ge=0, le=len(TRAIN_SEEDS), description="expert days for the warm start"
    )
    imitation_epochs: int = Field(default=30, ge=0, le=MAX_IMITATION_EPOCHS)
    imitation_tau_cents: float | None = Field(
        default=300.0, gt=0.0, description="soft targets from the expert's values (None: hard)"
    )
    dagger_rounds: int = Field(
        default=0, ge=0, le=20, description="DAgger rounds after the warm start (rollout expert)"
    )
    dagger_days: int = Field(
        default=20, ge=1, le=len(TRAIN_SEEDS), description="days the model plays per round"
    )
    dagger_beta: float = Field(
        default=0.2, ge=0.0, le=1.0, description="chance of following the expert in DAgger days"
    )
    eval_every: int = Field(
        default=20_000, ge=0, description="steps between validations (0 = none)"
    )
    eval_days: int = Field(default=10, ge=1, le=len(VALIDATION_SEEDS))
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
    network: Literal["slots", "mlp"] = Field(
        default="slots",
        description="actor: one scorer shared by the courier slots, or a flat MLP (DQN: mlp)",
    )
    reward_scale: float = Field(default=1e-3, gt=0.0, description="rewards are cents x this")
    env: EnvParams = Field(default_factory=EnvParams)
    scenario_name: str = "standard"

    @field_validator("dagger_days")
    @classmethod
    def _days_exist(cls, dagger_days: int, info: ValidationInfo) -> int:
        # the run's days are drawn from TRAIN_SEEDS without repeats: more of them was numpy's
        # ValueError (a traceback on the command line) once the scenario was loaded
        days = info.data.get("imitation_days", 0) + info.data.get("dagger_rounds", 0) * dagger_days
        if days > len(TRAIN_SEEDS):
            raise ValueError(
                f"the imitation days and the DAgger rounds' days are {days:,} training days; "
                f"there are {len(TRAIN_SEEDS):,}"
            )
        return dagger_days


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

    # validated before (maybe as stored data)
    scenario = Scenario.model_validate_json(scenario_json, context=saved_context(stored=True))
    env = DynamicDispatchEnv(
        scenario, EnvParams.model_validate(env_params), day_seeds=day_seeds, cycle=cycle
    )
    return Monitor(env)


def _subproc_env_factory(
    scenario_json: str, env_params: dict[str, Any], day_seeds: Sequence[int] | range, cycle: bool
) -> Any:
    """:func:`_env_factory` in a ``SubprocVecEnv`` worker, which leaves Ctrl-C to the trainer."""
    from simulation.executors import ignore_sigint

    ignore_sigint()  # a worker's KeyboardInterrupt printed its traceback and broke the pipe
    return _env_factory(scenario_json, env_params, day_seeds, cycle)


def make_vec_env(
    scenario: Scenario,
    env_params: EnvParams,
    *,
    num_envs: int,
    seed: int,
    subproc: bool = False,
    day_seeds: Sequence[int] | range = TRAIN_SEEDS,
) -> Any:
    """``num_envs`` training environments (in this process, or in subprocesses).

    Subprocesses ignore Ctrl-C, started with SIGINT held (:func:`simulation.executors.
    sigint_held`, as the local pool's workers): the trainer gets it, closes them and keeps
    its model (a worker's KeyboardInterrupt printed a traceback each and broke the pipes, so
    ``train --subproc`` stopped by Ctrl-C wrote no model).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    args = (scenario.model_dump_json(), env_params.model_dump(), day_seeds, False)
    if subproc and num_envs > 1:
        from simulation.executors import sigint_held

        worker = functools.partial(_subproc_env_factory, *args)
        made: list[Any] = []
        try:
            with sigint_held():  # a Ctrl-C held meanwhile is raised as the block ends
                made.append(SubprocVecEnv([worker] * num_envs, start_method="spawn"))
            made[0].seed(seed)
        except BaseException:
            for each in made:  # its workers, left behind, printed a traceback as we ended
                each.close()
            raise
        return made[0]
    fns: list[Callable[[], Any]] = [functools.partial(_env_factory, *args)] * num_envs
    vec = DummyVecEnv(fns)
    vec.seed(seed)
    return vec


# ---------------------------------------------------------------------- imitation


def demonstrations(
    scenario: Scenario,
    env_params: EnvParams,
    days: Sequence[int],
) -> ExpertDemonstrations:
    """Cheapest insertion over the candidate slots (always slot 0) on ``days``."""
    env = DynamicDispatchEnv(scenario, env_params.model_copy(update={"reward_scale": 1.0}))
    k = env.featurizer.num_actions
    parts = []
    for day in days:
        obs, _ = env.reset(options={"day_seed": int(day)})
        rows: dict[str, list[NDArray[np.float32]]] = {}
        masks, actions, rewards = [], [], []
        done = env._done
        info: dict[str, Any] = {}
        while not done:
            decision = env._decision
            assert decision is not None
            a = env.featurizer.heuristic_action(decision)
            for key, v in obs.items():
                rows.setdefault(key, []).append(v)
            masks.append(env.action_masks())
            actions.append(a)
            obs, r, term, trunc, info = env.step(a)
            rewards.append(r)
            done = term or trunc
        n = len(actions)
        values = np.full((n, k), np.nan)
        values[np.arange(n), actions] = 0.0
        starts = np.zeros(n, dtype=bool)
        starts[:1] = True
        parts.append(
            ExpertDemonstrations(
                obs={key: np.stack(v) for key, v in rows.items()},
                masks=np.asarray(masks, dtype=bool).reshape(-1, k),
                actions=np.asarray(actions, dtype=np.int64),
                values=values,
                rewards=np.asarray(rewards, dtype=np.float32),
                episode_starts=starts,
                day_costs=[float(info["kpis"]["cost_cents"])] if "kpis" in info else [],
            )
        )
    return concat(parts)


def returns_to_go(demos: ExpertDemonstrations, gamma: float) -> NDArray[np.float32]:
    """Discounted returns of the demonstrations, day by day."""
    out = np.zeros(len(demos), dtype=np.float32)
    g = 0.0
    for t in range(len(demos) - 1, -1, -1):
        g = float(demos.rewards[t]) + gamma * g
        out[t] = g
        if demos.episode_starts[t]:
            g = 0.0
    return out


def soft_targets(
    demos: ExpertDemonstrations, *, tau: float | None, label_smoothing: float
) -> NDArray[np.float32]:
    """Target distribution per decision: softmax of the expert's values (or its choice), smoothed.

    With ``tau`` an action whose lookahead costs ``tau`` cents more than the best gets
    ``1/e`` of its weight; ``label_smoothing`` of the mass is spread over the allowed actions.
    """
    n, k = demos.values.shape
    target = np.zeros((n, k), dtype=np.float64)
    target[np.arange(n), demos.actions] = 1.0
    if tau is not None:
        vals = np.where(demos.masks & np.isfinite(demos.values), demos.values, np.inf)
        several = np.isfinite(vals).sum(axis=1) > 1
        if several.any():
            v = vals[several]
            z = -(v - v.min(axis=1, keepdims=True)) / tau
            w = np.exp(np.where(np.isfinite(z), z, -np.inf))
            target[several] = w / w.sum(axis=1, keepdims=True)
    allowed = demos.masks.astype(np.float64)
    spread = allowed / np.maximum(allowed.sum(axis=1, keepdims=True), 1.0)
    return ((1.0 - label_smoothing) * target + label_smoothing * spread).astype(np.float32)


def imitate(
    model: Any,
    demos: ExpertDemonstrations,
    *,
    epochs: int,
    gamma: float,
    reward_scale: float,
    tau: float | None = 300.0,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    label_smoothing: float = 0.1,
    seed: int = 0,
) -> float:
    """Behaviour cloning of the expert (and a value fit); returns the final accuracy.

    Cross-entropy to :func:`soft_targets` (the smoothing keeps some entropy for PPO to explore
    with) plus the value head fitted to the demonstrations' scaled returns.
    """
    import torch
    import torch.nn.functional as nnf

    policy = model.policy
    maskable = "Maskable" in type(policy).__name__
    optim = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    n = len(demos)
    rng = np.random.default_rng(seed)
    device = policy.device
    returns = returns_to_go(demos, gamma)
    if not np.isfinite(returns).all():
        raise ValueError("the demonstrations hold non-finite rewards")
    ret_t = torch.as_tensor(returns * reward_scale, device=device)
    target_t = torch.as_tensor(
        soft_targets(demos, tau=tau, label_smoothing=label_smoothing), device=device
    )
    masks_t = torch.as_tensor(demos.masks, device=device)
    obs_all = {k: torch.as_tensor(v, device=device) for k, v in demos.obs.items()}

    def log_probs(obs: dict[str, Any], mask: Any) -> Any:
        dist = policy.get_distribution(obs)
        if maskable:
            dist.apply_masking(mask)
        return dist.distribution.logits

    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = torch.as_tensor(order[start : start + batch_size], device=device)
            obs = {k: v[idx] for k, v in obs_all.items()}
            logp = log_probs(obs, masks_t[idx])
            tgt = target_t[idx]
            bc = -(tgt * torch.where(tgt > 0, logp, torch.zeros_like(logp))).sum(1).mean()
            values = policy.predict_values(obs).flatten()
            loss = bc + 0.5 * nnf.mse_loss(values, ret_t[idx])
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            optim.step()
    with torch.no_grad():
        pred = log_probs(obs_all, masks_t).argmax(1).cpu().numpy()
    return float((pred == demos.actions).mean()) if n else 1.0


# ---------------------------------------------------------------------- validation


def validate(model: Any, env: DynamicDispatchEnv, days: Sequence[int], *, masked: bool) -> float:
    """Mean day cost (cents) of the model's greedy decisions on ``days``.

    Each day is played to its end: ``EnvParams.max_steps`` truncates training episodes only.
    """
    costs = []
    for day in days:
        obs, info = env.reset(options={"day_seed": int(day)})
        done = env._done
        while not done:
            if masked:
                action, _ = model.predict(obs, deterministic=True, action_masks=env.action_masks())
            else:
                action, _ = model.predict(obs, deterministic=True)
            obs, _, done, _, info = env.step(int(action))
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
                    rate = kpis["on_time_rate"]
                    if rate == rate:  # NaN (no order due that day): nothing to log
                        self.logger.record_mean("dispatch/on_time_rate", rate)
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

    class WholeCheckpoints(CheckpointCallback):
        """SB3's checkpoints, each written whole or not at all (:func:`save_checkpoint`)."""

        def _on_step(self) -> bool:
            if self.n_calls % self.save_freq == 0:
                save_checkpoint(self.model, Path(self._checkpoint_path(extension="zip")))
            return True

    checkpoint = WholeCheckpoints(
        save_freq=max(1, params.checkpoint_every // params.num_envs),
        save_path=str(logdir / "checkpoints"),
        name_prefix=params.algo,
    )
    return [DayCostCallback(), DispatchEvalCallback(), checkpoint]


def save_checkpoint(model: Any, path: Path) -> None:
    """Save the SB3 model as the checkpoint ``path``, whole or not at all.

    It is written under a temporary name beside ``path`` and moved over it once complete: a
    full disk left a torn zip (SB3's own ``CheckpointCallback`` writes in place), and its
    error named no file; it names ``path`` now, and no partial file is left.
    """
    from scenarios.files import written_whole

    with written_whole(path, ".zip") as partial:  # (.zip: SB3 adds it to a name without it)
        model.save(partial)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C: the model file ``out`` holds the model ``selected`` says."""

    def __init__(self, out: Path, selected: str | None) -> None:
        super().__init__(f"kept {out} ({selected})" if selected else f"no model in {out}")
        self.out, self.selected = out, selected


class TrainingStopped(OSError):
    """An OS error stopped the run once it started training: a file of the run (a log, a
    checkpoint, the model) that could not be written, e.g. on a full disk. The error is that
    one (naming the file); the model file ``out`` holds the model ``selected`` says, the last
    one written whole (None: the run wrote none). Other OS errors are raised as they are
    (:func:`_is_run_write_error`)."""

    def __init__(self, err: OSError, out: Path, selected: str | None) -> None:
        super().__init__(err.errno, err.strerror or str(err), err.filename, None, err.filename2)
        self.out, self.selected = out, selected

    def kept(self) -> str:
        """What the model file holds, in words: ``kept m.zip (step 2048)``."""
        return f"kept {self.out} ({self.selected})" if self.selected else f"{self.out} not written"


def _tensorboard_event_file(thread: threading.Thread) -> str | None:
    """The event file a TensorBoard writer thread writes ("" if it cannot be told); None for a
    thread of anything else."""
    if type(thread).__module__ != "tensorboard.summary.writer.event_file_writer":
        return None
    record_writer = getattr(thread, "_record_writer", None)  # its file, where tensorboard has it
    name = getattr(getattr(record_writer, "_writer", None), "filename", None)
    return os.fsdecode(name) if isinstance(name, (str, bytes)) else ""  # (bytes, in 2.x)


@contextlib.contextmanager
def _naming_log_errors(log_path: Path) -> Iterator[None]:
    """A TensorBoard log write that fails in the block (a full disk) names its event file (the
    logs folder if it cannot be told), and prints no traceback.

    TensorBoard writes its event file in a thread: a failed write ended that thread with a
    traceback (``Exception in thread Thread-1``), and its error, raised again in this thread
    at the next log write, named no file. An event file the failure left empty (its first
    write failed: the file was made, not its bytes) is removed: it held no log.
    """
    failed: dict[int, tuple[BaseException, str]] = {}  # id(error) -> (error, its event file)
    previous = threading.excepthook

    def hook(args: Any) -> None:
        thread = args.thread
        file = _tensorboard_event_file(thread) if thread is not None else None
        if file is not None and isinstance(args.exc_value, OSError):  # raised here: no trace
            failed[id(args.exc_value)] = (args.exc_value, file)
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    except OSError as err:
        if err.filename is not None:
            raise
        for thread in threading.enumerate():  # still ending: its hook has not run yet
            if getattr(thread, "exception", None) is err:
                thread.join(timeout=10.0)
        if id(err) not in failed:  # not a log write's
            raise
        from scenarios.files import named_error

        event_file = failed[id(err)][1]
        if event_file:
            _remove_if_empty(Path(event_file))
        raise named_error(err, event_file or log_path) from None
    finally:
        threading.excepthook = previous


def _remove_if_empty(path: Path) -> None:
    """Remove the file ``path`` if it is empty (a file that cannot be told or removed stays)."""
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_size == 0:
            path.unlink()


def _is_run_write_error(err: OSError, out: Path, logdir: Path) -> bool:
    """Whether ``err`` names a file of a training run: the model file ``out``, the logs
    folder ``logdir`` (a log write whose event file cannot be told) or a file in it (an
    event file, a checkpoint); an OS error of anything else (the environments' worker
    processes, say) is not the run's write failure."""
    if err.filename is None or err.filename2 is not None:
        return False
    failed = Path(os.fsdecode(err.filename)).absolute()
    logs = logdir.absolute()
    return failed in (out.absolute(), logs) or logs in failed.parents


def _save(model: Any, out: Path, params: TrainParams, state: dict[str, Any], *, note: str) -> Path:
    from rl_agents.model_io import save_model

    info = {
        "train_params": params.model_dump(mode="json"),
        "validation_days": list(VALIDATION_SEEDS)[: params.eval_days],
        "validation_cost_cents": state.get("best"),
        "selected": note,
        "command": state.get("command"),
        "imitation": state.get("imitation"),
        # the twin the model was trained and validated on: its validation cost is a figure of
        # that twin only (the shipped standard model, trained before this record, has none)
        "twin": state.get("twin"),
    }
    saved = save_model(model, out, algo=params.algo, env_params=params.env, info=info)
    if out == state.get("out"):  # what the model file holds, for a stopped run's last words
        state["selected"] = note  # (once written whole: a failed save kept the one before)
    return saved


#: Fewest steps per environment in a PPO rollout, however small the budget.
MIN_N_STEPS = 8


def fit_rollout(params: TrainParams) -> TrainParams:
    """The parameters with a PPO rollout no larger than the budget needs.

    PPO trains whole rollouts of ``n_steps x num_envs`` steps. A budget smaller than one
    rollout gets a single rollout of that budget (``n_steps = ceil(timesteps / num_envs)``, at
    least :data:`MIN_N_STEPS`) and a mini-batch that divides it; a larger budget keeps
    ``n_steps`` (the shipped model's 1024) and is rounded up to whole rollouts. DQN is unchanged.
    """
    if params.algo == "dqn" or params.timesteps >= params.n_steps * params.num_envs:
        return params
    n_steps = max(MIN_N_STEPS, -(-params.timesteps // params.num_envs))
    rollout = n_steps * params.num_envs
    batch = min(params.batch_size, rollout)
    if rollout % batch:
        divisor = next(d for d in range(batch, 0, -1) if rollout % d == 0)
        batch = divisor if divisor >= MIN_N_STEPS else rollout
    return params.model_copy(update={"n_steps": n_steps, "batch_size": batch})


#: DQN collects this many steps per environment between updates (SB3's ``train_freq``)
DQN_TRAIN_FREQ = 4


def planned_timesteps(params: TrainParams) -> int:
    """The environment steps a run of ``params`` (after :func:`fit_rollout`) takes: its budget
    rounded up to whole collections, PPO's rollouts of ``n_steps x num_envs`` steps, DQN's
    ``train_freq x num_envs``; SB3 stops only once a collection reaching the budget ends."""
    per_env = DQN_TRAIN_FREQ if params.algo == "dqn" else params.n_steps
    block = per_env * params.num_envs
    return -(-params.timesteps // block) * block


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
            train_freq=DQN_TRAIN_FREQ,
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
    policy: Any = "MultiInputPolicy"
    if params.network == "slots":
        from rl_agents.slot_policy import MaskableSlotPolicy, SlotPolicy

        policy = MaskableSlotPolicy if params.algo == "maskable-ppo" else SlotPolicy
        ppo_kwargs["policy_kwargs"] = {"hidden": arch[0], "activation_fn": torch.nn.Tanh}
    if params.algo == "maskable-ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO(policy, vec, **ppo_kwargs, **common)
    from stable_baselines3 import PPO

    return PPO(policy, vec, **ppo_kwargs, **common)


class StaleDemonstrationsWarning(SavedDataWarning):
    """A ``--demos`` file made by an older twin (or without a record of it) is recomputed."""


#: What a demonstrations file records about its making: these versions tell a stale file
#: (made by other code: recomputed); the inputs below, a file made for another run (refused).
_VERSIONS = {
    "draws_version": "the twin's random draws",
    "kpi_version": "the KPI definitions",
    "features_version": "the observation features",
    "twin_version": "the twin (how the twin plays the scenario's days)",
    "reward_version": "the rewards",
}
#: The version a record written before it held that version is taken to have (a file that
#: records no twin version was made before session 61, under twin version 1 or 2: the days it
#: holds are not the ones the twin plays now, see :func:`simulation.twin.twin_version`)
#: (a file that records no reward version was made before session 74: version 1)
_UNRECORDED = {
    "features_version": UNRECORDED_FEATURES_VERSION,
    "twin_version": 1,
    "reward_version": 1,
}
_INPUTS = {
    "scenario": "scenario",
    "days": "days",
    "expert": "expert",
    "expert_horizon_s": "expert lookahead (s)",
    "env": "environment parameters",
}


def twin_record(scenario: Scenario) -> dict[str, int]:
    """The versions of the twin that play ``scenario``'s days: draws, KPIs, the twin itself."""
    return {
        "draws_version": DRAWS_VERSION,
        "kpi_version": KPI_VERSION,
        "twin_version": twin_version(scenario),
    }


def demonstrations_meta(
    scenario: Scenario, params: TrainParams, days: Sequence[int]
) -> dict[str, Any]:
    """What the warm start's demonstrations depend on: scenario, days, expert, versions.

    Stored in a ``--demos`` file (:func:`rl_agents.expert.save_demonstrations`) and compared
    when it is read again (see :func:`train`).
    """
    scenario_json = scenario.model_dump_json()
    return {
        "scenario": hashlib.sha1(scenario_json.encode()).hexdigest()[:16],
        "scenario_name": scenario.name,
        "days": [int(d) for d in days],
        "expert": params.expert,
        "expert_horizon_s": params.expert_horizon_s if params.expert == "rollout" else None,
        # demonstrations are recorded at reward scale 1 (cents), whatever the run's scale
        "env": params.env.model_copy(update={"reward_scale": 1.0}).model_dump(mode="json"),
        "draws_version": DRAWS_VERSION,
        "kpi_version": KPI_VERSION,
        "features_version": FEATURES_VERSION,  # the observations recorded
        "twin_version": twin_version(scenario),  # how the twin played the days
        "reward_version": REWARD_VERSION,  # the rewards recorded
    }


def _show(field: str, value: Any, meta: Mapping[str, Any]) -> str:
    """A recorded value, short (days: the first few; scenario: its name and hash)."""
    if field == "days" and isinstance(value, list) and len(value) > 4:
        return f"{len(value)} days {', '.join(map(str, value[:3]))}, ..."
    if field == "scenario":
        return f"{meta.get('scenario_name')!r} ({value})"
    return repr(value)


def _cached_demonstrations(path: Path, meta: Mapping[str, Any]) -> ExpertDemonstrations | None:
    """The demonstrations in ``path`` if it was made for ``meta``; None (with a warning) if it
    is stale; an :class:`InputError` (field ``demos``) if it was made for another run."""
    from rl_agents.expert import read_demonstrations_file

    demos, days, stored = read_demonstrations_file(path)
    # Older files record only their days: compare those, then treat the file as stale.
    recorded: dict[str, Any] = dict(stored) if stored is not None else {"days": days}
    differ = [f for f in _INPUTS if f in recorded and recorded[f] != meta[f]]
    if differ:
        parts = []
        for f in differ:
            if f == "env" and isinstance(recorded[f], dict):
                keys = sorted(set(recorded[f]) | set(meta[f]))
                changed = [k for k in keys if recorded[f].get(k) != meta[f].get(k)]
                parts += [
                    f"env.{k}: {recorded[f].get(k)!r} in the file, {meta[f].get(k)!r} in this run"
                    for k in changed
                ]
                continue
            parts.append(
                f"{_INPUTS[f]}: {_show(f, recorded[f], recorded)} in the file, "
                f"{_show(f, meta[f], meta)} in this run"
            )
        raise InputError(
            "demos",
            f"{str(path)!r} holds demonstrations made for another run ({'; '.join(parts)}): "
            "use another file (it will be written), or delete this one to recompute it",
        )
    if stored is None:
        why = "it has no record of the twin's versions it was made with (an older file)"
    else:
        made = {f: stored.get(f, _UNRECORDED.get(f)) for f in _VERSIONS}
        old = [f for f in _VERSIONS if made[f] != meta[f]]
        if not old:
            return demos
        why = "; ".join(
            f"it was made under {_VERSIONS[f]} version {made[f]}, now {meta[f]}" for f in old
        )
    warnings.warn(
        StaleDemonstrationsWarning(f"{path}: {why}: recomputing the demonstrations into it"),
        stacklevel=2,
    )
    return None


def _warm_start(
    model: Any,
    scenario: Scenario,
    p: TrainParams,
    demos: ExpertDemonstrations,
    all_days: list[int],
    log_path: Path,
    state: dict[str, Any],
    expert_progress: Any,
) -> float:
    """Imitation of the expert, then the DAgger rounds; the final accuracy (notes in ``state``)."""

    def fit(data: ExpertDemonstrations, seed: int) -> float:
        return imitate(
            model,
            data,
            epochs=p.imitation_epochs,
            gamma=p.gamma,
            reward_scale=p.reward_scale,
            tau=p.imitation_tau_cents if p.expert == "rollout" else None,
            seed=seed,
        )

    accuracy = fit(demos, p.seed)
    notes: dict[str, Any] = {
        "expert": p.expert,
        "decisions": len(demos),
        "expert_mean_day_cost_cents": float(np.mean(demos.day_costs)) if demos.day_costs else None,
        "accuracy": accuracy,
    }
    state["imitation"] = notes
    if not p.dagger_rounds or p.expert != "rollout":
        return accuracy
    rounds = []
    for r in range(p.dagger_rounds):
        start = p.imitation_days + r * p.dagger_days
        behaviour = _save(model, log_path / f"dagger-{r}.zip", p, state, note="dagger")
        more = expert_demonstrations(
            scenario,
            p.env,
            all_days[start : start + p.dagger_days],
            horizon_s=p.expert_horizon_s,
            workers=max(2, p.expert_workers),
            progress=expert_progress,
            behaviour=str(behaviour),
            beta=p.dagger_beta,
        )
        demos = concat([demos, more])
        accuracy = fit(demos, p.seed + 1 + r)
        rounds.append(
            {
                "round": r,
                "decisions": len(more),
                "model_mean_day_cost_cents": float(np.mean(more.day_costs))
                if more.day_costs
                else None,
                "accuracy": accuracy,
            }
        )
    notes["dagger"] = rounds
    notes["accuracy"] = accuracy
    return accuracy


def train(
    scenario: Scenario,
    params: TrainParams | None = None,
    *,
    out: str | Path,
    logdir: str | Path,
    progress: bool = True,
    command: str | None = None,
    expert_progress: Any = None,
    demos_path: str | Path | None = None,
) -> TrainResult:
    """Train an agent; writes the best validated model to ``out`` (see the module docstring).

    ``demos_path``: the warm start's demonstrations are read from this ``.npz`` file when it
    exists (see :func:`rl_agents.expert.save_demonstrations`), else computed and written there.
    The file records what it was made for (:func:`demonstrations_meta`): one made for another
    scenario, other days (another seed or ``imitation_days``), another expert or lookahead, or
    other environment parameters is refused (:class:`InputError`, field ``demos``); one made
    under another version of the twin's draws, KPI definitions or observation features
    (:data:`~rl_agents.features.FEATURES_VERSION`), or without that record, is recomputed and
    rewritten, with a :class:`StaleDemonstrationsWarning`.

    The folders of ``out`` and of a ``demos_path`` to write must exist (an InputError on
    ``out`` / ``demos`` before any work); ``logdir``, the run's own folder, is made if missing,
    and removed again (with the parents made for it) when the run is refused or interrupted
    before anything is written there (a refused ``demos`` file left it empty).
    """
    from rl_agents.scenario import check_dispatch_scenario
    from scenarios.files import check_output_file_folder

    check_dispatch_scenario(scenario)  # no order or no courier: no decision to learn from
    p = fit_rollout(params if params is not None else TrainParams())
    p = p.model_copy(update={"env": p.env.model_copy(update={"reward_scale": p.reward_scale})})
    out_path, log_path = Path(out), Path(logdir)
    # the files written (the model, new demonstrations) need an existing folder, checked
    # before any work; the logs folder is the run's own: made, with its parents
    check_output_file_folder(out_path, "out")
    if demos_path is not None and not Path(demos_path).exists():
        check_output_file_folder(demos_path, "demos")
    made = _make_folder(log_path)
    try:
        return _run(
            scenario,
            p,
            out_path,
            log_path,
            progress=progress,
            command=command,
            expert_progress=expert_progress,
            demos_path=demos_path,
        )
    except BaseException:  # refused or interrupted before anything was logged: no empty folder
        _remove_empty(made)
        raise


def _make_folder(path: Path) -> list[Path]:
    """Make folder ``path`` with its missing parents; the folders made, deepest first."""
    made: list[Path] = []
    at = path.absolute()
    while not at.exists() and at != at.parent:
        made.append(at)
        at = at.parent
    path.mkdir(parents=True, exist_ok=True)
    return made


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty: one holding logs is kept."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (logs, a checkpoint), or already gone
            return


def _run(
    scenario: Scenario,
    p: TrainParams,
    out_path: Path,
    log_path: Path,
    *,
    progress: bool,
    command: str | None,
    expert_progress: Any,
    demos_path: str | Path | None,
) -> TrainResult:
    """The run of :func:`train` once its parameters are set and its logs folder is made."""
    t0 = time.perf_counter()
    # Training days: the warm start's first, then each DAgger round's, all distinct.
    rng = np.random.default_rng(p.seed)
    n_days = p.imitation_days + p.dagger_rounds * p.dagger_days
    picks = rng.choice(len(TRAIN_SEEDS), size=n_days, replace=False)
    all_days = [int(TRAIN_SEEDS[int(i)]) for i in picks]
    # Demonstrations first: the expert forks, which is safest before torch starts threads.
    demos = None
    if p.imitation_days > 0 and p.imitation_epochs > 0 and p.algo != "dqn":
        days = all_days[: p.imitation_days]
        cached = Path(demos_path) if demos_path is not None else None
        meta = demonstrations_meta(scenario, p, days)
        if cached is not None and cached.exists():
            demos = _cached_demonstrations(cached, meta)  # None: stale (warned), recomputed
        if demos is None:
            if p.expert == "rollout":
                demos = expert_demonstrations(
                    scenario,
                    p.env,
                    days,
                    horizon_s=p.expert_horizon_s,
                    workers=p.expert_workers,
                    progress=expert_progress,
                )
            else:
                demos = demonstrations(scenario, p.env, days)
            if cached is not None:  # absent or stale: (re)written
                from rl_agents.expert import save_demonstrations

                save_demonstrations(cached, demos, days, meta=meta)
    state: dict[str, Any] = {
        "best": None,
        "validation": [],
        "command": command,
        "twin": twin_record(scenario),
        "out": out_path,
    }
    try:
        return _learn(
            scenario,
            p,
            out_path,
            log_path,
            demos,
            all_days,
            state,
            t0,
            progress=progress,
            expert_progress=expert_progress,
        )
    except OSError as err:  # (a full disk): which model the file holds, the last one written
        if not _is_run_write_error(err, out_path, log_path):
            raise  # (not a file of the run: its own error, as any other)
        raise TrainingStopped(err, out_path, state.get("selected")) from None


def _learn(
    scenario: Scenario,
    p: TrainParams,
    out_path: Path,
    log_path: Path,
    demos: ExpertDemonstrations | None,
    all_days: list[int],
    state: dict[str, Any],
    t0: float,
    *,
    progress: bool,
    expert_progress: Any,
) -> TrainResult:
    """The warm start, the training and the model's last save of :func:`_run`."""
    import torch

    torch.set_num_threads(1)
    vec = make_vec_env(scenario, p.env, num_envs=p.num_envs, seed=p.seed, subproc=p.subproc)
    try:  # closed however the run ends (a Ctrl-C in the warm start left workers behind)
        model = _build_model(p, vec, log_path)
        accuracy = None
        masked = p.algo == "maskable-ppo"
        if demos is not None:
            accuracy = _warm_start(
                model, scenario, p, demos, all_days, log_path, state, expert_progress
            )
        val_env = DynamicDispatchEnv(scenario, p.env.model_copy(update={"reward_scale": 1.0}))
        val_days = list(VALIDATION_SEEDS)[: p.eval_days]
        if p.eval_every > 0:
            cost = validate(model, val_env, val_days, masked=masked)
            state["best"] = cost
            state["validation"].append((0, cost))
            _save(
                model, out_path, p, state, note="warm start" if accuracy is not None else "step 0"
            )
        callbacks = _callbacks(p, val_env, log_path, out_path, state)
        interrupted = learned = False
        with _naming_log_errors(log_path):
            try:
                model.learn(  # the steps it will take: the progress bar's total (it said 16/1)
                    total_timesteps=planned_timesteps(p),
                    callback=callbacks,
                    progress_bar=progress,
                    tb_log_name=p.algo,
                )
                learned = True
            except KeyboardInterrupt:
                interrupted = True
            finally:
                # its logs end with it: SB3 leaves the tensorboard writer open after learn (a
                # thread, an open event file), one more per run in a process that trains again
                try:
                    with contextlib.suppress(AttributeError):  # no logger: learn stopped first
                        model.logger.close()
                except OSError:  # the logs' last write failed (a full disk): stopped by it,
                    if learned:  # unless learn's own error (the same one) or Ctrl-C is said
                        raise
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
        raise TrainingInterrupted(out_path, state.get("selected"))
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
    "StaleDemonstrationsWarning",
    "TrainParams",
    "TrainResult",
    "TrainingInterrupted",
    "TrainingStopped",
    "demonstrations",
    "demonstrations_meta",
    "fit_rollout",
    "imitate",
    "make_vec_env",
    "planned_timesteps",
    "returns_to_go",
    "save_checkpoint",
    "soft_targets",
    "train",
    "twin_record",
    "validate",
]
