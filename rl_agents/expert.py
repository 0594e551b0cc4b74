"""A privileged lookahead expert for the imitation warm start (training only).

At each decision the expert tries every allowed action, plays the next ``horizon_s`` seconds of
the *actual* day with cheapest insertion over the candidate slots (``slots``), and keeps the
action whose day-cost potential (the environment's ``Phi``: cost so far + committed cost) is
lowest at the end of that lookahead. It is a one-step rollout (policy improvement over
``slots``) that sees the real arrivals of the next hours: clairvoyant, so it is **never**
reported as an online policy. The learned model imitates its choices from the observation
alone (which holds no future information), as the EURO Meets NeurIPS 2022 winners learned
dispatching from hindsight solutions.

Each lookahead runs in a forked copy of the process (the twin's SimPy state cannot be
copied otherwise), so this module needs ``os.fork`` (Linux, macOS).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rl_agents.env import DynamicDispatchEnv, EnvParams
from rl_agents.model_io import LoadedModel
from scenarios.errors import InputError
from scenarios.files import check_output_file_folder, read_zip_limited
from scenarios.io.json_io import atomic_write, loads
from scenarios.model import Scenario
from scenarios.saved import saved_context


@dataclass
class ExpertDemonstrations:
    """Expert decisions with the lookahead value (cents) of every allowed action (NaN: not)."""

    obs: dict[str, NDArray[np.float32]]
    masks: NDArray[np.bool_]
    actions: NDArray[np.int64]
    values: NDArray[np.float64]
    rewards: NDArray[np.float32]
    episode_starts: NDArray[np.bool_]
    day_costs: list[float]
    day_kpis: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def lookahead_value(env: DynamicDispatchEnv, action: int, horizon_s: float) -> float:
    """``Phi`` after taking ``action`` and ``horizon_s`` seconds of ``slots`` (in a fork)."""
    if not hasattr(os, "fork"):
        raise InputError("expert", "the lookahead expert needs os.fork (Linux or macOS)")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: play on, report, vanish
        os.close(read_fd)
        value = math.inf
        try:
            until = env.sim.now + horizon_s
            _, _, term, trunc, _ = env.step(action)
            done = term or trunc
            while not done and env.sim.now < until:
                _, _, term, trunc, _ = env.step(0)
                done = term or trunc
            value = env.episode_cost if env._done else env._phi
        finally:
            os.write(write_fd, struct.pack("d", value))
            os._exit(0)
    os.close(write_fd)
    try:
        data = b""
        while len(data) < 8:
            chunk = os.read(read_fd, 8 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    return struct.unpack("d", data)[0] if len(data) == 8 else math.inf


def expert_day(
    scenario: Scenario | Any,
    env_params: EnvParams,
    day: int,
    *,
    horizon_s: float,
    behaviour: LoadedModel | None = None,
    beta: float = 0.0,
) -> ExpertDemonstrations:
    """Label one day with the expert's choices, recording what it saw and chose.

    Without ``behaviour`` the day follows the expert. With a model (DAgger) the day follows
    the model, except that at each decision the expert's choice is taken with probability
    ``beta`` (drawn from a generator seeded by the day); the labels are always the expert's.
    """
    env = DynamicDispatchEnv(scenario, env_params.model_copy(update={"reward_scale": 1.0}))
    rng = np.random.default_rng([int(day), 17])
    obs, _ = env.reset(options={"day_seed": int(day)})
    k = env.featurizer.num_actions
    rows: dict[str, list[NDArray[np.float32]]] = {}
    masks: list[NDArray[np.bool_]] = []
    actions: list[int] = []
    values: list[NDArray[np.float64]] = []
    rewards: list[float] = []
    done = env._done
    info: dict[str, Any] = {}
    while not done:
        mask = env.action_masks()
        allowed = np.flatnonzero(mask)
        vals = np.full(k, np.nan)
        if allowed.size > 1:
            for a in allowed:
                value = lookahead_value(env, int(a), horizon_s)
                vals[a] = value if value == value else math.inf
            best = int(allowed[np.argmin(vals[allowed])])
        else:
            best = int(allowed[0])
            vals[best] = 0.0
        for key, v in obs.items():
            rows.setdefault(key, []).append(v)
        masks.append(mask)
        actions.append(best)
        values.append(vals)
        act = best
        if behaviour is not None and not rng.random() < beta:
            act = behaviour.act(obs, mask)
        obs, r, term, trunc, info = env.step(act)
        rewards.append(r)
        done = term or trunc
    starts = np.zeros(len(actions), dtype=bool)
    if len(actions):
        starts[0] = True
    return ExpertDemonstrations(
        obs={key: np.stack(v) for key, v in rows.items()},
        masks=np.asarray(masks, dtype=bool).reshape(-1, k),
        actions=np.asarray(actions, dtype=np.int64),
        values=np.asarray(values, dtype=np.float64).reshape(-1, k),
        rewards=np.asarray(rewards, dtype=np.float32),
        episode_starts=starts,
        day_costs=[float(info["kpis"]["cost_cents"])] if "kpis" in info else [],
        day_kpis=[dict(info["kpis"])] if "kpis" in info else [],
    )


def _expert_task(shared: dict[str, Any], key: str, day: int) -> ExpertDemonstrations:
    """Worker body for an executor: one expert day."""
    scenario = _SCENARIOS.get(key)
    if scenario is None:
        from simulation.world import compile_world

        _SCENARIOS.clear()
        scenario = _SCENARIOS[key] = compile_world(  # validated before (maybe as stored data)
            Scenario.model_validate_json(shared["scenario"], context=saved_context(stored=True))
        )
    behaviour = None
    path = shared.get("behaviour")
    if path is not None:
        from rl_agents.model_io import load_model

        behaviour = load_model(path)
    return expert_day(
        scenario,
        EnvParams.model_validate(shared["env_params"]),
        day,
        horizon_s=float(shared["horizon_s"]),
        behaviour=behaviour,
        beta=float(shared.get("beta", 0.0)),
    )


_SCENARIOS: dict[str, Any] = {}
#: Key of the JSON record of what a demonstrations file was made for.
_META = "meta"


def save_demonstrations(
    path: str | Path,
    demos: ExpertDemonstrations,
    days: Sequence[int],
    *,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write demonstrations (the days they come from, and ``meta``) to a ``.npz`` file.

    ``meta``: what the demonstrations were made for, as JSON (see
    :func:`rl_agents.train.demonstrations_meta`), read back by :func:`load_demonstrations_meta`.
    """
    out = Path(path)
    check_output_file_folder(out, "demos")  # a missing folder is an error, never created
    arrays: dict[str, Any] = {f"obs__{k}": v for k, v in demos.obs.items()}
    arrays.update(
        masks=demos.masks,
        actions=demos.actions,
        values=demos.values,
        rewards=demos.rewards,
        episode_starts=demos.episode_starts,
        day_costs=np.asarray(demos.day_costs, dtype=np.float64),
        days=np.asarray(list(days), dtype=np.int64),
    )
    if meta is not None:
        arrays[_META] = np.asarray(json.dumps(dict(meta), sort_keys=True))
    with atomic_write(out) as fh:  # an interrupted write leaves the old file whole
        np.savez_compressed(fh, **arrays)
    return out


#: what reading a damaged ``.npz`` can raise (a bad member, a missing or mistyped array)
_NPZ_ERRORS = (zipfile.BadZipFile, EOFError, KeyError, TypeError, ValueError, MemoryError)


def _read_npz(path: str | Path) -> dict[str, NDArray[Any]]:
    """The arrays of the demonstrations file ``path``, read under the input size cap.

    A missing file, a folder, a file past the cap or a zip unpacking past it, or one that is
    not an ``.npz`` of arrays is an InputError on ``demos`` naming it.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("demos", "file not found", source=str(p))
    if p.is_dir():
        raise InputError("demos", "is a directory, expected a demonstrations file", source=str(p))
    data = read_zip_limited(p, field="demos")
    try:
        with np.load(io.BytesIO(data)) as npz:
            return {k: npz[k] for k in npz.files}
    except _NPZ_ERRORS as exc:
        raise InputError(
            "demos", f"not a demonstrations file ({type(exc).__name__}: {exc})", source=str(p)
        ) from None


def load_demonstrations(path: str | Path) -> tuple[ExpertDemonstrations, list[int]]:
    """Read demonstrations written by :func:`save_demonstrations`, and their days."""
    demos, days, _meta = read_demonstrations_file(path)
    return demos, days


def load_demonstrations_meta(path: str | Path) -> dict[str, Any] | None:
    """What a demonstrations file was made for (None: written without that record)."""
    return read_demonstrations_file(path)[2]


def read_demonstrations_file(
    path: str | Path,
) -> tuple[ExpertDemonstrations, list[int], dict[str, Any] | None]:
    """The demonstrations, days and record (None: none) of a ``.npz`` file, read once."""
    data = _read_npz(path)
    try:
        demos = ExpertDemonstrations(
            obs={k.removeprefix("obs__"): v for k, v in data.items() if k.startswith("obs__")},
            masks=data["masks"].astype(bool),
            actions=data["actions"].astype(np.int64),
            values=data["values"].astype(np.float64),
            rewards=data["rewards"].astype(np.float32),
            episode_starts=data["episode_starts"].astype(bool),
            day_costs=[float(x) for x in data["day_costs"]],
        )
        days = [int(x) for x in data["days"]]
        meta = loads(str(data[_META])) if _META in data else None
    except _NPZ_ERRORS as exc:
        raise InputError(
            "demos", f"not a demonstrations file ({type(exc).__name__}: {exc})", source=str(path)
        ) from None
    if meta is not None and not isinstance(meta, dict):
        raise InputError("demos", f"not a demonstrations file: bad {_META!r}", source=str(path))
    return demos, days, meta


def concat(parts: Sequence[ExpertDemonstrations]) -> ExpertDemonstrations:
    """Several days' demonstrations as one."""
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("no demonstrations")
    return ExpertDemonstrations(
        obs={k: np.concatenate([p.obs[k] for p in parts]) for k in parts[0].obs},
        masks=np.concatenate([p.masks for p in parts]),
        actions=np.concatenate([p.actions for p in parts]),
        values=np.concatenate([p.values for p in parts]),
        rewards=np.concatenate([p.rewards for p in parts]),
        episode_starts=np.concatenate([p.episode_starts for p in parts]),
        day_costs=[c for p in parts for c in p.day_costs],
        day_kpis=[k for p in parts for k in p.day_kpis],
    )


def expert_demonstrations(
    scenario: Scenario,
    env_params: EnvParams,
    days: Sequence[int],
    *,
    horizon_s: float = 7200.0,
    workers: int = 1,
    progress: Any = None,
    behaviour: str | None = None,
    beta: float = 0.0,
) -> ExpertDemonstrations:
    """The expert's decisions on ``days`` (days in parallel on ``workers`` processes).

    ``behaviour``: a model file whose decisions the days follow (DAgger, see
    :func:`expert_day`), taking the expert's choice with probability ``beta``.
    """
    import hashlib

    from simulation.executors import make_executor

    scenario_json = scenario.model_dump_json()
    shared: dict[str, Any] = {
        "scenario": scenario_json,
        "env_params": env_params.model_dump(),
        "horizon_s": horizon_s,
        "behaviour": None if behaviour is None else str(behaviour),
        "beta": beta,
    }
    key = hashlib.sha1(scenario_json.encode()).hexdigest()[:16]
    executor = make_executor("local" if workers > 1 else "serial", workers=workers)
    done = [0]

    def tick(_i: int, _r: object) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(days))

    parts = executor.run(
        _expert_task, shared, key, [int(d) for d in days], on_result=tick, plugins=("rl_agents",)
    )
    return concat(parts)


__all__ = [
    "ExpertDemonstrations",
    "concat",
    "expert_day",
    "expert_demonstrations",
    "load_demonstrations",
    "load_demonstrations_meta",
    "lookahead_value",
    "read_demonstrations_file",
    "save_demonstrations",
]
