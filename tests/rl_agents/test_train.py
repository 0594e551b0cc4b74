"""Training: every algorithm runs on a tiny budget and writes a loadable dispatch model."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from rl_agents.env import DynamicDispatchEnv, EnvParams
from rl_agents.model_io import META, WEIGHTS, load_model
from rl_agents.train import (
    MIN_N_STEPS,
    TrainParams,
    demonstrations,
    fit_rollout,
    train,
    validate,
)
from scenarios import Scenario


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_algorithms_train_and_save(tiny: Scenario, tmp_path: Path, algo: str) -> None:
    params = TrainParams(
        algo=algo,
        timesteps=200,
        num_envs=2,
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        imitation_days=1,
        imitation_epochs=1,
        eval_every=0,
    )
    out = tmp_path / f"{algo}.zip"
    result = train(tiny, params, out=out, logdir=tmp_path / "logs", progress=False)
    assert result.timesteps >= 200
    with zipfile.ZipFile(out) as zf:
        assert {META, WEIGHTS, "policy.pth"} <= set(zf.namelist())
    model = load_model(out)
    assert model.algo == algo
    env = DynamicDispatchEnv(tiny, model.env_params)
    obs, _ = env.reset(seed=1)
    mask = env.action_masks()
    assert mask[model.act(obs, mask)]
    assert any((tmp_path / "logs").rglob("events.out.tfevents*"))  # TensorBoard logs


@pytest.mark.parametrize(
    ("timesteps", "envs", "n_steps", "batch"),
    [
        (64, 2, 32, 64),  # one rollout of exactly the budget, one mini-batch
        (512, 2, 256, 256),
        (65, 2, 33, 66),  # envs step together: the smallest multiple of 2 above 65
        (300, 1, 300, 150),  # the mini-batch divides the rollout
        (3, 1, MIN_N_STEPS, MIN_N_STEPS),
        (2048, 2, 1024, 256),  # a full rollout: the shipped model's settings, unchanged
        (300_000, 2, 1024, 256),
    ],
)
def test_fit_rollout_caps_n_steps_to_the_budget(
    timesteps: int, envs: int, n_steps: int, batch: int
) -> None:
    fitted = fit_rollout(TrainParams(algo="ppo", timesteps=timesteps, num_envs=envs))
    assert (fitted.n_steps, fitted.batch_size) == (n_steps, batch)
    assert (n_steps * envs) % batch == 0
    dqn = TrainParams(algo="dqn", timesteps=timesteps, num_envs=envs)
    assert fit_rollout(dqn) == dqn


@pytest.mark.parametrize(("algo", "timesteps"), [("ppo", 64), ("maskable-ppo", 512)])
def test_ppo_trains_the_requested_timesteps(
    tiny: Scenario, tmp_path: Path, algo: str, timesteps: int
) -> None:
    params = TrainParams(
        algo=algo, timesteps=timesteps, num_envs=2, imitation_days=0, eval_every=0, n_epochs=1
    )
    out = tmp_path / "m.zip"
    result = train(tiny, params, out=out, logdir=tmp_path / "logs", progress=False)
    assert result.timesteps == timesteps
    saved = load_model(out).meta["info"]["train_params"]
    assert saved["n_steps"] * 2 == timesteps  # the model records the rollout it trained with


def test_maskable_ppo_keeps_the_best_validated_model(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    info = model.meta["info"]
    assert model.algo == "maskable-ppo"
    assert info["validation_cost_cents"] > 0
    assert info["selected"]
    assert any((tiny_model.parent / "logs" / "checkpoints").glob("*.zip"))


def test_demonstrations_are_cheapest_insertion(tiny: Scenario) -> None:
    demos = demonstrations(tiny, DynamicDispatchEnv(tiny).params, [1])
    assert len(demos) > 0
    assert np.all(demos.actions == 0)  # slots are sorted by quoted cost: slot 0 is the expert
    assert np.all(demos.masks[np.arange(len(demos)), demos.actions])
    assert set(demos.obs) == {
        "order",
        "couriers",
        "courier_mask",
        "pending",
        "pending_mask",
        "global",
    }


class _FirstAllowed:
    """A stand-in model: the first allowed action (cheapest insertion's slot)."""

    def predict(
        self, obs: object, deterministic: bool = True, action_masks: np.ndarray | None = None
    ) -> tuple[int, None]:
        assert action_masks is not None
        return int(np.flatnonzero(action_masks)[0]), None


def test_validation_plays_whole_days_when_training_episodes_are_truncated(
    tiny: Scenario,
) -> None:
    # max_steps truncates training episodes; a validation day is still the whole day's cost.
    full = validate(_FirstAllowed(), DynamicDispatchEnv(tiny), [1, 2], masked=True)
    cut_env = DynamicDispatchEnv(tiny, EnvParams(max_steps=3))
    assert validate(_FirstAllowed(), cut_env, [1, 2], masked=True) == full
