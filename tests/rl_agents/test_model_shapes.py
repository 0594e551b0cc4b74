"""A model file's network is checked against the size of the observation of the environment
parameters it records when it is loaded: a network of another input size was loaded and failed
at its first decision with a numpy shape traceback (``matmul: Input operand 1 has a mismatch
...``), exit 1 on the command line."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rl_agents  # noqa: F401  (registers the policies)
from rl_agents.env import EnvParams
from rl_agents.features import FEATURES_VERSION, Featurizer, observation_space
from rl_agents.model_io import META, WEIGHTS, load_model, shipped_model_path
from scenarios.errors import InputError
from simulation import make_policy


def with_arrays(src: Path, dst: Path, change: Any, meta_change: Any = None) -> Path:
    """A copy of the model ``src`` with its weight arrays (and maybe record) changed."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == WEIGHTS:
                with np.load(io.BytesIO(data)) as npz:
                    arrays = {k: npz[k] for k in npz.files}
                change(arrays)
                buf = io.BytesIO()
                np.savez_compressed(buf, **arrays)
                data = buf.getvalue()
            elif info.filename == META and meta_change is not None:
                meta = json.loads(data)
                meta_change(meta)
                data = json.dumps(meta).encode()
            zout.writestr(info, data)
    return dst


def narrower_slot_scorer(arrays: dict[str, Any]) -> None:
    """The slot scorer's first layer reads 3 values fewer per slot (49 instead of 52)."""
    arrays["slot_b0_w"] = arrays["slot_b0_w"][:, :-3]


def mlp_model(dst: Path, *, inputs_off: int = 0, env: EnvParams | None = None) -> Path:
    """A flat-network model file (only the members ``load_model`` reads) whose first layer
    takes the observation's size plus ``inputs_off``."""
    params = env if env is not None else EnvParams()
    space = observation_space(params.feature_params())
    keys = sorted(space.spaces)
    size = sum(int(np.prod(space[k].shape or ())) for k in keys)
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {
        "w0": rng.normal(size=(16, size + inputs_off)).astype(np.float32),
        "b0": np.zeros(16, dtype=np.float32),
        "w1": rng.normal(size=(params.num_candidates + 1, 16)).astype(np.float32),
        "b1": np.zeros(params.num_candidates + 1, dtype=np.float32),
    }
    meta = {
        "format_version": 1,
        "arch": "mlp",
        "algo": "MaskablePPO",
        "env_params": params.model_dump(),
        "obs_keys": keys,
        "features_version": FEATURES_VERSION,
        "activation": "tanh",
        "info": {},
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr(META, json.dumps(meta))
        zf.writestr(WEIGHTS, buf.getvalue())
    return dst


def test_a_slot_scorer_of_another_input_size_is_refused_naming_the_file_and_both_sizes(
    tmp_path: Path,
) -> None:
    bad = with_arrays(shipped_model_path(), tmp_path / "narrow.zip", narrower_slot_scorer)
    with pytest.raises(InputError) as err:
        load_model(bad)
    assert err.value.field == "model"
    reason = err.value.reason
    assert str(bad) in reason
    assert "takes 49 inputs" in reason and "the observation gives 52" in reason
    assert "19 courier features + 33 of context" in reason and "dispatchlab train" in reason
    with pytest.raises(InputError, match="takes 49 inputs"):
        make_policy(f"model-plain:{bad}")


def test_a_slot_scorer_whose_layers_do_not_chain_is_refused(tmp_path: Path) -> None:
    def short_head(arrays: dict[str, Any]) -> None:
        arrays["slot_h_w"] = arrays["slot_h_w"][:, :-1]

    bad = with_arrays(shipped_model_path(), tmp_path / "head.zip", short_head)
    with pytest.raises(InputError, match=r"slot_h of its slot scorer has weights of shape"):
        load_model(bad)


def test_a_slot_scorer_plays_any_number_of_slots_and_waiting_orders(tmp_path: Path) -> None:
    """The slot scorer's widths do not depend on K or on the waiting orders shown (one scorer
    shared by the slots, a mean over the waiting orders): such a record still loads."""

    def fewer(meta: dict[str, Any]) -> None:
        meta["env_params"].update(num_candidates=4, num_pending=5)

    other = with_arrays(shipped_model_path(), tmp_path / "k4.zip", lambda _a: None, fewer)
    model = load_model(other)
    obs = Featurizer(model.env_params.feature_params()).space.sample()
    assert model.logits(obs).shape == (5,)


@pytest.mark.parametrize("off", [-1, 7])
def test_a_flat_network_of_another_input_size_is_refused_naming_the_file_and_both_sizes(
    tmp_path: Path, off: int
) -> None:
    good = load_model(mlp_model(tmp_path / "good.zip"))
    obs = Featurizer(good.env_params.feature_params()).space.sample()
    assert good.logits(obs).shape == (7,)  # the right size loads and scores every action
    bad = mlp_model(tmp_path / "bad.zip", inputs_off=off)
    with pytest.raises(InputError) as err:
        load_model(bad)
    reason = err.value.reason
    assert err.value.field == "model" and str(bad) in reason
    assert f"takes {202 + off} inputs at layer 0" in reason
    assert "the observation has 202 values" in reason and "6 candidate slots" in reason


def test_a_flat_network_recording_other_slots_than_its_weights_is_refused(tmp_path: Path) -> None:
    """Trained with K = 6 (202 observation values), its record says K = 4 (162 values)."""
    path = mlp_model(tmp_path / "k.zip")
    relabelled = with_arrays(
        path,
        tmp_path / "k4.zip",
        lambda _a: None,
        lambda meta: meta["env_params"].update(num_candidates=4),
    )
    expected = r"takes 202 inputs at layer 0, but the observation has 162"
    with pytest.raises(InputError, match=expected):
        load_model(relabelled)


def test_evaluate_refuses_a_model_of_another_input_size_with_one_line(tmp_path: Path) -> None:
    """It failed at the first decision with a numpy traceback, exit 1."""
    from dispatchlab.cli import app
    from tests.rl_agents.test_cli import one_line_error, runner

    bad = with_arrays(shipped_model_path(), tmp_path / "narrow.zip", narrower_slot_scorer)
    args = ["evaluate", "--policies", f"greedy,model:{bad}", "--seeds", "1", "--workers", "1"]
    result = runner.invoke(app, [*args, "--quiet"])
    one_line_error(result, str(bad), "takes 49 inputs", "observation gives 52")
