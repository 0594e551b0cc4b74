"""Training: every algorithm runs on a tiny budget and writes a loadable dispatch model."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from rl_agents.env import DynamicDispatchEnv
from rl_agents.model_io import META, WEIGHTS, load_model
from rl_agents.train import TrainParams, demonstrations, train
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
