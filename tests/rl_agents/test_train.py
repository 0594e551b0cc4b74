"""Training: every algorithm runs on a tiny budget and writes a loadable dispatch model."""

from __future__ import annotations

import dataclasses
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rl_agents.train as train_module
from rl_agents.env import REWARD_VERSION, DynamicDispatchEnv, EnvParams
from rl_agents.expert import (
    ExpertDemonstrations,
    load_demonstrations,
    load_demonstrations_meta,
    save_demonstrations,
)
from rl_agents.features import FEATURES_VERSION
from rl_agents.model_io import META, WEIGHTS, load_model
from rl_agents.scenario import TRAIN_SEEDS
from rl_agents.train import (
    MIN_N_STEPS,
    StaleDemonstrationsWarning,
    TrainParams,
    demonstrations,
    demonstrations_meta,
    fit_rollout,
    planned_timesteps,
    train,
    validate,
)
from scenarios import InputError, Scenario
from simulation.result import KPI_VERSION
from simulation.streams import DRAWS_VERSION
from simulation.twin import twin_version


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


def test_an_interrupted_training_says_which_model_its_file_holds(
    tiny: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during learn: the file holds the model at the step reached, and the interrupt
    says so (the CLI printed only "error: interrupted")."""
    from stable_baselines3.common.callbacks import BaseCallback

    class CtrlC(BaseCallback):
        def _on_step(self) -> bool:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_callbacks", lambda *args: CtrlC())
    params = TrainParams(algo="ppo", timesteps=64, num_envs=2, imitation_days=0, eval_every=0)
    out = tmp_path / "m.zip"
    with pytest.raises(train_module.TrainingInterrupted) as info:
        train(tiny, params, out=out, logdir=tmp_path / "logs", progress=False)
    assert info.value.out == out and info.value.selected == "step 2"  # one step of 2 envs
    assert str(info.value) == f"kept {out} (step 2)"
    assert load_model(out).meta["info"]["selected"] == "step 2"


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


@pytest.mark.parametrize(
    ("algo", "timesteps", "envs", "planned"),
    [
        ("ppo", 1, 2, 16),  # one rollout of at least MIN_N_STEPS per environment
        ("maskable-ppo", 64, 2, 64),
        ("ppo", 3000, 2, 4096),  # whole rollouts of 1024 x 2
        ("ppo", 300_000, 2, 301_056),
        ("dqn", 1, 2, 8),  # train_freq 4 x 2 environments
        ("dqn", 10, 2, 16),
        ("dqn", 300_000, 2, 300_000),
    ],
)
def test_planned_timesteps_round_the_budget_up_to_whole_collections(
    algo: str, timesteps: int, envs: int, planned: int
) -> None:
    params = fit_rollout(TrainParams(algo=algo, timesteps=timesteps, num_envs=envs))
    assert planned_timesteps(params) == planned


def _recording_bar(seen: list[tuple[float | None, float]]) -> type:
    """SB3's progress bar, appending its total and its count at the end of a run to ``seen``."""
    from stable_baselines3.common.callbacks import ProgressBarCallback

    class Recording(ProgressBarCallback):
        def _on_training_end(self) -> None:
            seen.append((self.pbar.total, self.pbar.n))
            super()._on_training_end()

    return Recording


@pytest.mark.filterwarnings("ignore:rich is experimental")  # tqdm's, for SB3's bar
@pytest.mark.parametrize(("algo", "planned"), [("ppo", 16), ("dqn", 8)])
def test_the_progress_bar_counts_the_steps_that_will_run(
    tiny: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algo: str, planned: int
) -> None:
    # before: --timesteps 1 with 2 environments showed "16/1" (the total was the budget, the
    # run PPO's smallest rollout, 8 steps per environment; DQN's 4 per environment "8/1")
    import stable_baselines3.common.base_class as base_class
    import tqdm

    seen: list[tuple[float | None, float]] = []
    monkeypatch.setattr(base_class, "ProgressBarCallback", _recording_bar(seen))
    # no tqdm monitor thread: closing the bar leaves it running for the rest of the process,
    # where it turned the forked-helper tests of the same test worker red (session 68)
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)
    params = TrainParams(algo=algo, timesteps=1, num_envs=2, imitation_days=0, eval_every=0)
    result = train(tiny, params, out=tmp_path / "m.zip", logdir=tmp_path / "logs")
    assert result.timesteps == planned
    assert seen == [(planned, planned)]


def test_a_run_refused_after_it_started_leaves_no_logs_folder(
    tiny: Scenario, tmp_path: Path
) -> None:
    # before: the logs folder (and its parents) was made first, and stayed, empty, when the
    # demonstrations file was refused
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    params = TrainParams(algo="ppo", timesteps=1, imitation_days=1, imitation_epochs=1)
    with pytest.raises(InputError) as info:
        train(tiny, params, out=tmp_path / "m.zip", logdir=tmp_path / "a" / "logs", demos_path=bad)
    assert info.value.field == "demos"
    assert not (tmp_path / "a").exists()
    kept = tmp_path / "kept"  # a folder that was there before is left alone
    kept.mkdir()
    with pytest.raises(InputError):
        train(tiny, params, out=tmp_path / "m.zip", logdir=kept, demos_path=bad)
    assert kept.is_dir()


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
    # its logs were closed: SB3 left TensorBoard's writer thread running after learn (session 68)
    writers = [t for t in threading.enumerate() if "event_file_writer" in type(t).__module__]
    assert not writers, writers
    saved = load_model(out).meta["info"]["train_params"]
    assert saved["n_steps"] * 2 == timesteps  # the model records the rollout it trained with


def test_maskable_ppo_keeps_the_best_validated_model(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    info = model.meta["info"]
    assert model.algo == "maskable-ppo"
    assert info["validation_cost_cents"] > 0
    assert info["selected"]
    assert any((tiny_model.parent / "logs" / "checkpoints").glob("*.zip"))


def test_a_model_records_the_twin_it_was_trained_on(tiny: Scenario, tiny_model: Path) -> None:
    """A model file did not say which twin its training days and validation cost were played
    on, so a model trained before a twin change (as the shipped standard one) could not be
    told from one trained on the current twin."""
    twin = load_model(tiny_model).meta["info"]["twin"]
    assert twin == {
        "draws_version": DRAWS_VERSION,
        "kpi_version": KPI_VERSION,
        "twin_version": twin_version(tiny),
    }


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


# ---------------------------------------------------------------- the --demos cache


class _Stop(Exception):
    """Raised where training would start: the demonstrations are settled by then."""


def _settle_demos(
    scenario: Scenario, path: Path, monkeypatch: pytest.MonkeyPatch, **params: object
) -> None:
    """Run :func:`train` with ``demos_path=path`` up to the point where training starts."""

    def stop(*_args: object, **_kw: object) -> None:
        raise _Stop

    monkeypatch.setattr(train_module, "make_vec_env", stop)
    p = TrainParams(**{"expert": "slots", "imitation_days": 1, "eval_every": 0, **params})
    with pytest.raises(_Stop):
        train(
            scenario,
            p,
            out=path.parent / "m.zip",
            logdir=path.parent / "logs",
            progress=False,
            demos_path=path,
        )


def _slots_days(scenario: Scenario, seed: int, n: int = 1) -> list[int]:
    """The warm start's days of a run seeded ``seed`` (as :func:`train` draws them)."""
    picks = np.random.default_rng(seed).choice(len(TRAIN_SEEDS), size=n, replace=False)
    return [int(TRAIN_SEEDS[int(i)]) for i in picks]


@pytest.fixture
def demos_file(tiny: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Demonstrations written by a run of seed 0 on the tiny city (slots expert, 1 day)."""
    path = tmp_path / "demos.npz"
    _settle_demos(tiny, path, monkeypatch, seed=0)
    assert path.exists()
    return path


def test_demos_file_records_what_it_was_made_for(tiny: Scenario, demos_file: Path) -> None:
    meta = load_demonstrations_meta(demos_file)
    assert meta is not None
    days = _slots_days(tiny, 0)
    assert meta == demonstrations_meta(tiny, TrainParams(expert="slots", imitation_days=1), days)
    assert meta["draws_version"] == DRAWS_VERSION and meta["kpi_version"] == KPI_VERSION
    demos, file_days = load_demonstrations(demos_file)
    assert file_days == days
    assert np.array_equal(demos.actions, demonstrations(tiny, EnvParams(), days).actions)


def test_demos_file_made_for_this_run_is_read_not_recomputed(
    tiny: Scenario, demos_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*_args: object, **_kw: object) -> None:
        raise AssertionError("recomputed")

    monkeypatch.setattr(train_module, "demonstrations", must_not_run)
    before = demos_file.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no staleness warning either
        _settle_demos(tiny, demos_file, monkeypatch, seed=0)
    assert demos_file.read_bytes() == before


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"seed": 1}, "days:"),  # another seed draws other days
        ({"imitation_days": 2}, "days:"),
        ({"expert": "rollout"}, "expert: 'slots' in the file, 'rollout' in this run"),
        ({"env": EnvParams(dispatch_horizon_s=3600)}, "env.dispatch_horizon_s: 1800"),
        ({"scenario": "other"}, "scenario: 'tiny-city'"),
    ],
)
def test_demos_file_made_for_another_run_is_refused(
    tiny: Scenario,
    demos_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, object],
    needle: str,
) -> None:
    params: dict[str, object] = {"seed": 0, **change}
    scenario = tiny
    if params.pop("scenario", None):
        scenario = tiny.model_copy(update={"name": "other-city"})
    before = demos_file.read_bytes()
    with pytest.raises(InputError) as info:
        _settle_demos(scenario, demos_file, monkeypatch, **params)
    err = info.value
    assert err.field == "demos" and "made for another run" in err.reason
    assert needle in err.reason and str(demos_file) in err.reason
    assert demos_file.read_bytes() == before  # never overwritten


@pytest.mark.parametrize(
    ("version", "needle"),
    [
        ("DRAWS_VERSION", "the twin's random draws version"),
        ("KPI_VERSION", "the KPI definitions version"),
        ("FEATURES_VERSION", "the observation features version 1, now 2"),
        # a record written before it held the features' version: version 1
        ("features_version:unrecorded", "the observation features version 1, now 2"),
        ("twin_version", "how the twin plays the scenario's days\\) version"),
        # a record written before it held the twin's version (the ones of sessions 55-60,
        # reused as if the twin still played their days): version 1
        ("twin_version:unrecorded", "how the twin plays the scenario's days\\) version 1, now"),
        # rewards of another potential (the warm start's value head learns from them)
        ("REWARD_VERSION", "the rewards version 2, now 3"),
        ("reward_version:unrecorded", "the rewards version 1, now 3"),
        (None, "no record of the twin's versions"),
    ],
)
def test_stale_demos_file_is_recomputed_with_a_warning(
    tiny: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    version: str | None,
    needle: str,
) -> None:
    days = _slots_days(tiny, 0)
    good = demonstrations(tiny, EnvParams(), days)
    # the same days, but other decisions (what an older twin would have recorded)
    stale = dataclasses.replace(good, actions=np.full_like(good.actions, 5))
    meta = demonstrations_meta(tiny, TrainParams(expert="slots", imitation_days=1), days)
    if version is not None and version.endswith(":unrecorded"):
        meta.pop(version.partition(":")[0], None)
    elif version is not None:
        meta[version.lower()] -= 1
    path = save_demonstrations(
        tmp_path / "demos.npz", stale, days, meta=meta if version is not None else None
    )
    with pytest.warns(StaleDemonstrationsWarning, match=needle):
        _settle_demos(tiny, path, monkeypatch, seed=0)
    back, back_days = load_demonstrations(path)
    assert back_days == days and np.array_equal(back.actions, good.actions)
    fresh = load_demonstrations_meta(path)
    assert fresh is not None
    assert (fresh["draws_version"], fresh["kpi_version"]) == (DRAWS_VERSION, KPI_VERSION)
    assert fresh["features_version"] == FEATURES_VERSION
    assert fresh["twin_version"] == twin_version(tiny)
    assert fresh["reward_version"] == REWARD_VERSION


def test_old_demos_file_of_other_days_is_refused(
    tiny: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written before files recorded their making still records its days."""
    demos = demonstrations(tiny, EnvParams(), [5])
    path = save_demonstrations(tmp_path / "demos.npz", demos, [5])
    with pytest.raises(InputError, match="days: \\[5\\] in the file"):
        _settle_demos(tiny, path, monkeypatch, seed=0)


@pytest.mark.parametrize("which", ["out", "demos"])
def test_train_refuses_a_file_in_a_missing_folder_before_any_work(
    tiny: Scenario, tmp_path: Path, which: str
) -> None:
    # the model and the demonstrations were written into folders made on the spot (after the
    # work); the logs folder, the run's own, is still made
    missing = tmp_path / "nowhere"
    out = missing / "m.zip" if which == "out" else tmp_path / "m.zip"
    demos = missing / "d.npz" if which == "demos" else None
    params = TrainParams(timesteps=16, num_envs=1, imitation_days=1, eval_every=0)
    with pytest.raises(InputError) as err:
        train(tiny, params, out=out, logdir=tmp_path / "a" / "logs", demos_path=demos)
    target = out if which == "out" else demos
    assert (err.value.field, err.value.source) == (which, str(target))
    assert err.value.reason == f"folder {missing} does not exist"
    assert not missing.exists() and not (tmp_path / "a").exists()


def test_save_demonstrations_makes_no_folder(tmp_path: Path) -> None:
    demos = ExpertDemonstrations(
        obs={}, masks=np.zeros((0, 1), bool), actions=np.zeros(0, np.int64),
        values=np.zeros((0, 1)), rewards=np.zeros(0, np.float32),
        episode_starts=np.zeros(0, bool), day_costs=[],
    )  # fmt: skip
    with pytest.raises(InputError, match="does not exist"):
        save_demonstrations(tmp_path / "nowhere" / "d.npz", demos, [])
    assert not (tmp_path / "nowhere").exists()


def test_torch_keeps_its_cache_dir_in_pytest_temp_dir(torch_cache_dir: Path) -> None:
    """Building an optimizer made /tmp/torchinductor_<user> (torch._dynamo's cache), left behind."""
    torch = pytest.importorskip("torch")
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # as every SB3 model does
    assert Path(cache_dir()) == torch_cache_dir


_SUBPROC_CTRL_C_SCRIPT = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, not ignored
if __name__ == "__mp_main__":  # an environment worker importing its parent's main module
    os.kill(os.getpid(), signal.SIGINT)  # the Ctrl-C that reached it there
    time.sleep(0.2)
from rl_agents.env import EnvParams
from rl_agents.train import make_vec_env
from scenarios.generate import generate_city

if __name__ == "__main__":
    city = generate_city(seed=3, num_orders=10, num_nodes=2, num_couriers=3)
    vec = make_vec_env(city, EnvParams(), num_envs=2, seed=0, subproc=True)
    vec.reset()
    vec.close()
    print("ok", flush=True)
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="POSIX")
def test_subprocess_environments_start_with_ctrl_c_held_and_ignore_it(
    tiny: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers of ``make_vec_env(subproc=True)`` are started with SIGINT held and ignore
    it before they build their environment (what the slow test below checks end to end in
    real processes; the local pool's start-up is checked so in tests/simulation/
    test_executors.py): no worker's traceback on Ctrl-C, the trainer keeps its model."""
    import signal

    import stable_baselines3.common.vec_env as sb3_vec_env

    import simulation.executors as executors

    seen: dict[str, Any] = {}

    class Started:  # SB3's SubprocVecEnv, not starting its workers
        def __init__(self, env_fns: list[Any], start_method: str | None = None) -> None:
            seen["held"] = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())
            seen["fns"], seen["start_method"] = env_fns, start_method

        def seed(self, seed: int) -> None:
            seen["seed"] = seed

    monkeypatch.setattr(sb3_vec_env, "SubprocVecEnv", Started)
    vec = train_module.make_vec_env(tiny, EnvParams(), num_envs=2, seed=5, subproc=True)
    assert isinstance(vec, Started) and seen["seed"] == 5 and len(seen["fns"]) == 2
    assert seen["held"]  # held while the workers start (they inherit the mask) ...
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # ... then not
    calls: list[str] = []
    monkeypatch.setattr(executors, "ignore_sigint", lambda: calls.append("ignored"))
    monkeypatch.setattr(train_module, "_env_factory", lambda *a: calls.append("built"))
    seen["fns"][0]()  # what a worker runs first
    assert calls == ["ignored", "built"]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="POSIX")
def test_subprocess_environments_leave_ctrl_c_to_the_trainer(tmp_path: Path) -> None:
    # before: `train --subproc` stopped by Ctrl-C printed a traceback per environment worker
    # (KeyboardInterrupt, then ConnectionResetError) and wrote no model; a worker still
    # starting broke the trainer's pipe. Now the workers ignore it (started with SIGINT held)
    # (slow: real worker processes importing SB3; the test above checks the same in-process)
    from tests.scripts import assert_no_traceback, run_script

    done = run_script(tmp_path / "subproc.py", _SUBPROC_CTRL_C_SCRIPT, timeout=300)
    assert_no_traceback(done, "ok")
