"""Writing a model file: it appears whole or not at all (Ctrl-C during a save)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rl_agents.env import EnvParams, make_env
from rl_agents.model_io import load_model, save_model
from scenarios import Scenario


@pytest.fixture
def small_model(tiny: Scenario) -> Any:
    """An untrained MaskablePPO on the tiny city (building one plays no step)."""
    from sb3_contrib import MaskablePPO

    return MaskablePPO("MultiInputPolicy", make_env(tiny), n_steps=8, batch_size=8, device="cpu")


def test_a_save_interrupted_by_ctrl_c_keeps_the_model_file_that_was_there(
    small_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # train() saves each new best model over the last one; a Ctrl-C in the middle of that
    # write truncated the file (the best model so far lost, a zip that does not load)
    out = tmp_path / "model.zip"
    save_model(small_model, out, algo="maskable-ppo", env_params=EnvParams(), info={"n": 1})
    before = out.read_bytes()

    def interrupted_save(path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(before[:100])  # SB3's zip, half-written
        raise KeyboardInterrupt

    monkeypatch.setattr(small_model, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        save_model(small_model, out, algo="maskable-ppo", env_params=EnvParams(), info={"n": 2})
    assert out.read_bytes() == before
    assert load_model(out).meta["info"] == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]  # no partial file left


def test_a_model_file_is_written_whole_at_its_path(small_model: Any, tmp_path: Path) -> None:
    out = tmp_path / "model.zip"
    assert save_model(small_model, out, algo="maskable-ppo", env_params=EnvParams()) == out
    model = load_model(out)
    assert model.algo == "maskable-ppo" and model.arch == "mlp"
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]
