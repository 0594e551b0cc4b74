"""The slot-equivariant actor: one scorer for every courier slot, the same in torch and numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rl_agents.env import DynamicDispatchEnv
from rl_agents.model_io import load_model
from rl_agents.train import Algo, TrainParams, _build_model, _save, make_vec_env
from scenarios import Scenario


def _model(tiny: Scenario, algo: Algo, tmp_path: Path) -> tuple[object, Path]:
    params = TrainParams(algo=algo, network="slots")
    vec = make_vec_env(tiny, params.env, num_envs=1, seed=0)
    model = _build_model(params, vec, tmp_path / "logs")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # move away from the near-zero output init, so logits differ
        for prm in model.policy.parameters():
            prm.add_(0.3 * torch.randn(prm.shape, generator=gen))
    out = _save(model, tmp_path / f"{algo}.zip", params, {"best": None}, note="test")
    return model, out


def _torch_probs(model: object, obs: dict[str, np.ndarray]) -> np.ndarray:
    batch = {k: torch.as_tensor(v[None]) for k, v in obs.items()}
    with torch.no_grad():
        logits = model.policy.get_distribution(batch).distribution.logits  # type: ignore[attr-defined]
    return torch.softmax(logits, dim=-1).numpy()[0]


@pytest.mark.parametrize("algo", ["maskable-ppo", "ppo"])
def test_numpy_actor_matches_torch(tiny: Scenario, tmp_path: Path, algo: Algo) -> None:
    model, path = _model(tiny, algo, tmp_path)
    loaded = load_model(path)
    assert loaded.arch == "slots" and not loaded.layers
    env = DynamicDispatchEnv(tiny, loaded.env_params)
    obs, _ = env.reset(seed=1)
    for _ in range(15):
        logits = loaded.logits(obs)
        probs = np.exp(logits - logits.max())
        assert np.allclose(probs / probs.sum(), _torch_probs(model, obs), atol=1e-5)
        obs, _, term, trunc, _ = env.step(loaded.act(obs, env.action_masks()))
        if term or trunc:
            break


def test_swapping_two_slots_swaps_their_logits(tiny: Scenario, tmp_path: Path) -> None:
    _, path = _model(tiny, "maskable-ppo", tmp_path)
    loaded = load_model(path)
    env = DynamicDispatchEnv(tiny, loaded.env_params)
    obs, _ = env.reset(seed=2)
    while obs["courier_mask"].sum() < 2:
        obs, _, term, trunc, _ = env.step(int(np.flatnonzero(env.action_masks())[0]))
        assert not (term or trunc)
    swapped = {k: v.copy() for k, v in obs.items()}
    swapped["couriers"][[0, 1]] = obs["couriers"][[1, 0]]
    before, after = loaded.logits(obs), loaded.logits(swapped)
    assert after[0] == pytest.approx(before[1]) and after[1] == pytest.approx(before[0])
    assert np.allclose(after[2:], before[2:])  # other slots and postpone unchanged
