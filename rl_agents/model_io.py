"""Model files: an SB3 zip plus what the dispatcher needs to run it without torch.

A dispatch model file is the ordinary SB3 ``.zip`` (``MaskablePPO.load`` / ``PPO.load`` /
``DQN.load`` continue training from it) with two extra members SB3 ignores:

- ``dispatchlab.json``: the algorithm, the environment parameters the model was trained with
  (tick, candidate slots, dispatch horizon), the observation keys in network order, the
  version of the observation features (``features_version``,
  :data:`rl_agents.features.FEATURES_VERSION`; a model of another version is refused), the
  activation, and how it was trained;
- ``actor.npz``: the weights of the decision network (policy MLP and action head for PPO,
  Q-network for DQN; or the shared slot scorer of :mod:`rl_agents.slot_policy`) as numpy
  arrays.

:func:`load_model` reads only those two members, so evaluating a model needs numpy alone and a
decision costs a few microseconds of matrix products.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from rl_agents.env import EnvParams
from rl_agents.features import (
    FEATURES_VERSION,
    FEATURES_VERSIONS,
    UNRECORDED_FEATURES_VERSION,
    observation_space,
)
from scenarios.errors import InputError, input_error_from_validation
from scenarios.io.json_io import loads

META = "dispatchlab.json"
WEIGHTS = "actor.npz"
FORMAT_VERSION = 1

_ACTIVATIONS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "identity": lambda x: x,
}


def shipped_model_path(name: str = "standard") -> Path:
    """Path of a model shipped in ``rl_agents/models/`` (``standard`` = the benchmark's)."""
    return Path(str(resources.files("rl_agents") / "models" / f"{name}.zip"))


def slot_logits(
    arrays: dict[str, NDArray[np.float64]], obs: dict[str, NDArray[np.float32]], activation: str
) -> NDArray[np.float64]:
    """The logits of :class:`rl_agents.slot_policy.SlotNet` for one observation, in numpy."""
    act = _ACTIVATIONS[activation]
    o = {k: np.asarray(v, dtype=np.float64) for k, v in obs.items()}
    pmask = o["pending_mask"]
    count = float(pmask.sum())
    mean = (o["pending"] * pmask[:, None]).sum(0) / max(count, 1.0)
    ctx = np.concatenate([o["order"], o["global"], mean, [count / 10.0]])
    slots = o["couriers"]
    k = slots.shape[0]
    x = np.concatenate([slots, np.broadcast_to(ctx, (k, ctx.shape[0]))], axis=1)
    h = act(x @ arrays["slot_b0_w"].T + arrays["slot_b0_b"])
    h = act(h @ arrays["slot_b1_w"].T + arrays["slot_b1_b"])
    scores = h @ arrays["slot_h_w"][0] + arrays["slot_h_b"][0]
    cmask = o["courier_mask"]
    pooled = (h * cmask[:, None]).sum(0) / max(float(cmask.sum()), 1.0)
    w = act(arrays["slot_w0_w"] @ np.concatenate([ctx, pooled]) + arrays["slot_w0_b"])
    wait = float(arrays["slot_w1_w"][0] @ w + arrays["slot_w1_b"][0])
    return np.concatenate([scores, [wait]])


@dataclass
class LoadedModel:
    """A decision network in numpy: ``act(obs, mask)`` is the greedy action among ``mask``.

    ``arch`` is ``mlp`` (``layers``: the policy MLP and action head, or DQN's Q-network) or
    ``slots`` (``arrays``: the shared slot scorer of :mod:`rl_agents.slot_policy`).
    """

    algo: str
    env_params: EnvParams
    obs_keys: list[str]
    layers: list[tuple[NDArray[np.float64], NDArray[np.float64]]]
    activation: str
    meta: dict[str, Any] = field(default_factory=dict)
    arch: str = "mlp"
    arrays: dict[str, NDArray[np.float64]] = field(default_factory=dict)

    def logits(self, obs: dict[str, NDArray[np.float32]]) -> NDArray[np.float64]:
        """Action scores (policy logits, or Q-values for DQN)."""
        if self.arch == "slots":
            return slot_logits(self.arrays, obs, self.activation)
        x = np.concatenate(
            [np.asarray(obs[k], dtype=np.float64).reshape(-1) for k in self.obs_keys]
        )
        act = _ACTIVATIONS[self.activation]
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            x = w @ x + b
            if i < last:
                x = act(x)
        return x

    def act(self, obs: dict[str, NDArray[np.float32]], mask: NDArray[np.bool_]) -> int:
        """The best-scoring allowed action."""
        scores = self.logits(obs)
        scores = np.where(mask, scores, -np.inf)
        return int(np.argmax(scores))


def load_model(path: str | Path) -> LoadedModel:
    """Read a dispatch model file (``standard`` = the shipped model).

    Bad input is an InputError on ``model``: a missing file or a folder, a file past the input
    size cap or a zip unpacking past it (:func:`scenarios.files.read_zip_limited`), a zip
    that is not a dispatchlab model or whose members cannot be read, a model trained on
    other observation features than this code computes (:func:`check_features_version`), and
    a network whose input is not the size of the observation of the environment parameters
    it records (:func:`check_mlp_shapes`, :func:`check_slot_shapes`).
    """
    from scenarios.files import read_zip_limited

    p = shipped_model_path() if str(path) in ("standard", "") else Path(path)
    if not p.exists():
        raise InputError("model", f"model file {str(path)!r} not found")
    if p.is_dir():
        raise InputError("model", f"{str(path)!r} is a directory, expected a model file (.zip)")
    data = read_zip_limited(p, field="model")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if META not in names or WEIGHTS not in names:
                raise InputError(
                    "model",
                    f"{str(path)!r} is not a dispatchlab model (no {META}); "
                    "train one with `dispatchlab train`",
                )
            meta = loads(zf.read(META))
            with np.load(io.BytesIO(zf.read(WEIGHTS))) as npz:
                arrays = {k: npz[k] for k in npz.files}
        return _loaded_model(str(path), meta, arrays)
    except ValidationError as err:  # the env_params it was trained with
        error = input_error_from_validation(err)
        raise InputError(
            "model", f"{str(path)!r}: env_params.{error.field}: {error.reason}"
        ) from None
    except (
        zipfile.BadZipFile,
        EOFError,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        MemoryError,
    ) as exc:
        # a member that is no JSON or npz, a missing array or setting: not our model file
        raise InputError(
            "model",
            f"{str(path)!r} is not a readable dispatchlab model ({type(exc).__name__}: {exc})",
        ) from None


def _loaded_model(path: str, meta: Any, arrays: dict[str, NDArray[Any]]) -> LoadedModel:
    """The model described by ``meta`` with the weights ``arrays`` (read from ``path``)."""
    if not isinstance(meta, dict):
        raise InputError("model", f"{path!r}: {META} is not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(
            "model", f"{path!r}: unsupported model format {meta.get('format_version')!r}"
        )
    check_features_version(path, meta)
    arch = str(meta.get("arch", "mlp"))
    if arch not in ("mlp", "slots"):
        raise InputError("model", f"{path!r}: unknown network architecture {arch!r}")
    activation = meta["activation"]
    if activation not in _ACTIVATIONS:
        raise InputError("model", f"{path!r}: unknown activation {activation!r}")
    n = len([k for k in arrays if k.startswith("w")]) if arch == "mlp" else 0
    layers = [
        (arrays[f"w{i}"].astype(np.float64), arrays[f"b{i}"].astype(np.float64)) for i in range(n)
    ]
    env_params = EnvParams.model_validate(meta["env_params"])
    obs_keys = list(meta["obs_keys"])
    if arch == "mlp":
        check_mlp_shapes(path, env_params, obs_keys, layers)
    else:
        check_slot_shapes(path, env_params, arrays)
    return LoadedModel(
        algo=meta["algo"],
        env_params=env_params,
        obs_keys=obs_keys,
        layers=layers,
        activation=activation,
        meta=meta,
        arch=arch,
        arrays={k: v.astype(np.float64) for k, v in arrays.items()} if arch == "slots" else {},
    )


def _sizes_note(env_params: EnvParams) -> str:
    """What the observation's size follows from (for the shape errors)."""
    return (
        f"features version {FEATURES_VERSION}, {env_params.num_candidates} candidate slots, "
        f"{env_params.num_pending} waiting orders"
    )


def check_mlp_shapes(
    path: str,
    env_params: EnvParams,
    obs_keys: list[str],
    layers: list[tuple[NDArray[np.float64], NDArray[np.float64]]],
) -> None:
    """Refuse a flat network whose input is not the size of the observation of its
    ``env_params`` (an InputError on ``model`` naming the file and both sizes), or whose
    layers do not chain into one score per action: it would fail at its first decision."""
    space = observation_space(env_params.feature_params())
    known = set(space.spaces)
    unknown = [k for k in obs_keys if k not in known]
    if unknown or len(set(obs_keys)) != len(obs_keys) or set(obs_keys) != known:
        raise InputError(
            "model",
            f"{path!r}: its network reads the observation parts {obs_keys}, but the "
            f"observation has {sorted(known)}: train a new one (`dispatchlab train`)",
        )
    size = sum(int(np.prod(space[k].shape or ())) for k in obs_keys)
    if not layers:
        raise InputError("model", f"{path!r}: its network has no layers (no w0 in {WEIGHTS})")
    actions = env_params.num_candidates + 1
    width = size
    for i, (w, b) in enumerate(layers):
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise InputError(
                "model",
                f"{path!r}: layer {i} of its network has weights of shape {w.shape} and bias "
                f"of shape {b.shape}, which do not fit together",
            )
        if w.shape[1] != width:
            what = (
                f"the observation has {size} values ({_sizes_note(env_params)})"
                if i == 0
                else f"layer {i - 1} gives {width}"
            )
            raise InputError(
                "model",
                f"{path!r}: its network takes {w.shape[1]} inputs at layer {i}, but {what}: "
                "it was not trained for this observation; train a new one (`dispatchlab train`)",
            )
        width = w.shape[0]
    if width != actions:
        raise InputError(
            "model",
            f"{path!r}: its network gives {width} scores, but the environment has {actions} "
            f"actions ({env_params.num_candidates} candidate slots and postpone)",
        )


#: The slot scorer's arrays (:func:`slot_logits`) and what each takes, by name: the input width
#: (``courier + context`` per slot, ``context + hidden`` for the postpone head, else the hidden
#: width of the layer before) and the output width (``hidden`` or one score).
_SLOT_LAYERS = (
    ("slot_b0", "slot", "hidden"),
    ("slot_b1", "hidden", "hidden"),
    ("slot_h", "hidden", "one"),
    ("slot_w0", "wait", "wait_hidden"),
    ("slot_w1", "wait_hidden", "one"),
)


def check_slot_shapes(path: str, env_params: EnvParams, arrays: dict[str, NDArray[Any]]) -> None:
    """Refuse a slot scorer (:mod:`rl_agents.slot_policy`) whose inputs are not the sizes of
    the observation of its ``env_params`` (an InputError on ``model`` naming the file and both
    sizes), or whose layers do not chain: it would fail at its first decision."""
    space = observation_space(env_params.feature_params())
    courier = int((space["couriers"].shape or (0, 0))[1])
    context = sum(int((space[k].shape or (0,))[-1]) for k in ("order", "global", "pending")) + 1
    missing = [
        f"{name}_{part}"
        for name, _in, _out in _SLOT_LAYERS
        for part in ("w", "b")
        if f"{name}_{part}" not in arrays
    ]
    if missing:
        raise InputError("model", f"{path!r}: its slot scorer has no {', '.join(missing)}")
    hidden = int(arrays["slot_b0_w"].shape[0]) if arrays["slot_b0_w"].ndim == 2 else -1
    wait_hidden = int(arrays["slot_w0_w"].shape[0]) if arrays["slot_w0_w"].ndim == 2 else -1
    widths = {
        "slot": courier + context,
        "wait": context + hidden,
        "hidden": hidden,
        "wait_hidden": wait_hidden,
        "one": 1,
    }
    shown = {
        "slot": f"{courier} courier features + {context} of context per slot",
        "wait": f"{context} of context + {hidden} hidden",
    }
    for name, takes, gives in _SLOT_LAYERS:
        w, b = arrays[f"{name}_w"], arrays[f"{name}_b"]
        want = (widths[gives], widths[takes])
        if w.ndim == 2 and w.shape[1] != want[1] and takes in shown:
            raise InputError(
                "model",
                f"{path!r}: its slot scorer takes {w.shape[1]} inputs at {name}, but the "
                f"observation gives {want[1]} ({shown[takes]}; {_sizes_note(env_params)}): it "
                "was not trained for this observation; train a new one (`dispatchlab train`)",
            )
        if w.shape != want or b.shape != (want[0],):
            raise InputError(
                "model",
                f"{path!r}: {name} of its slot scorer has weights of shape {w.shape} and bias "
                f"of shape {b.shape}, expected {want} and {(want[0],)}",
            )


def check_features_version(path: str, meta: dict[str, Any]) -> None:
    """Refuse a model trained on observation features of another version than
    :data:`~rl_agents.features.FEATURES_VERSION` (an InputError on ``model`` naming the file
    and both versions): its network would read numbers that mean something else. A record
    without ``features_version`` is :data:`UNRECORDED_FEATURES_VERSION`."""
    recorded = "features_version" in meta
    version = meta.get("features_version", UNRECORDED_FEATURES_VERSION)
    if version == FEATURES_VERSION and type(version) is int:
        return
    known = FEATURES_VERSIONS.get(version) if type(version) is int else None
    shown = f"{version!r} ({known or 'unknown'}"
    shown += ")" if recorded else f": its {META} records no features_version)"
    raise InputError(
        "model",
        f"{path!r} was trained on observation features version {shown}; this code computes "
        f"version {FEATURES_VERSION} ({FEATURES_VERSIONS[FEATURES_VERSION]}), so the model "
        "would read features it was not trained on: train a new one (`dispatchlab train`)",
    )


def actor_layers(model: Any) -> tuple[list[tuple[NDArray[np.float32], NDArray[np.float32]]], str]:
    """The decision network of an SB3 model as (weight, bias) pairs, and its activation name."""
    import torch.nn as nn

    policy = model.policy
    if hasattr(policy, "q_net"):
        seq = [*policy.q_net.q_net]
    else:
        seq = [*policy.mlp_extractor.policy_net, policy.action_net]
    layers: list[tuple[NDArray[np.float32], NDArray[np.float32]]] = []
    activation = "identity"
    for module in seq:
        if isinstance(module, nn.Linear):
            layers.append(
                (
                    module.weight.detach().cpu().numpy().astype(np.float32),
                    module.bias.detach().cpu().numpy().astype(np.float32),
                )
            )
        elif isinstance(module, nn.Tanh):
            activation = "tanh"
        elif isinstance(module, nn.ReLU):
            activation = "relu"
        else:
            raise TypeError(f"cannot export layer {module!r} to numpy")
    holder = policy.q_net if hasattr(policy, "q_net") else policy
    extractor = type(holder.features_extractor).__name__
    if extractor not in ("CombinedExtractor", "FlattenExtractor"):
        raise TypeError(f"cannot export features extractor {extractor}")
    return layers, activation


def save_model(
    model: Any,
    path: str | Path,
    *,
    algo: str,
    env_params: EnvParams,
    info: dict[str, Any] | None = None,
    drop_optimizer_state: bool = True,
) -> Path:
    """Write the SB3 zip plus the numpy actor and metadata (see the module docstring).

    The file appears whole or not at all: it is written next to ``path`` under a temporary
    name and moved over ``path`` once complete, so a Ctrl-C (or any error) while writing
    leaves the file that was there before (e.g. the best model so far) as it was.
    """
    from scenarios.files import check_output_file_folder, written_whole

    out = Path(path)
    check_output_file_folder(out, "path")  # never created (SB3's save would make every folder)
    policy = model.policy
    saved_optimizer = getattr(policy, "optimizer", None)
    if drop_optimizer_state and saved_optimizer is not None:
        # A fresh optimizer has no moment estimates: the file is ~3x smaller, and continued
        # training simply starts Adam from scratch. The live model keeps its own.
        policy.optimizer = policy.optimizer_class(
            policy.parameters(), lr=saved_optimizer.param_groups[0]["lr"], **policy.optimizer_kwargs
        )
    # a failed write names the model file, not its partial one; the partial name ends in
    # .zip (SB3 adds the suffix to a name without one)
    with written_whole(out, ".zip") as partial:
        try:
            model.save(partial)
        finally:
            if saved_optimizer is not None:
                policy.optimizer = saved_optimizer
        arrays: dict[str, Any] = {}
        if type(getattr(policy, "mlp_extractor", None)).__name__ == "SlotNet":
            from rl_agents.slot_policy import export_slot_net

            arrays, activation = export_slot_net(policy)
            arch = "slots"
        else:
            layers, activation = actor_layers(model)
            for i, (w, b) in enumerate(layers):
                arrays[f"w{i}"] = w
                arrays[f"b{i}"] = b
            arch = "mlp"
        meta = {
            "format_version": FORMAT_VERSION,
            "arch": arch,
            "algo": algo,
            "env_params": env_params.model_dump(),
            "obs_keys": list(model.observation_space.spaces),
            "features_version": FEATURES_VERSION,
            "activation": activation,
            "info": info or {},
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        with zipfile.ZipFile(partial, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(META, json.dumps(meta, indent=2))
            zf.writestr(WEIGHTS, buf.getvalue())
    return out


__all__ = [
    "LoadedModel",
    "actor_layers",
    "check_features_version",
    "check_mlp_shapes",
    "check_slot_shapes",
    "load_model",
    "save_model",
    "shipped_model_path",
    "slot_logits",
]
