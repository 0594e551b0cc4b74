"""The lookahead expert and the imitation targets built from it."""

from __future__ import annotations

import fcntl
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from rl_agents.env import DynamicDispatchEnv, EnvParams
from rl_agents.expert import (
    ExpertDemonstrations,
    concat,
    expert_day,
    load_demonstrations,
    load_demonstrations_meta,
    lookahead_value,
    save_demonstrations,
)
from rl_agents.model_io import load_model
from rl_agents.scenario import dispatch_variant
from rl_agents.train import returns_to_go, soft_targets
from scenarios import Scenario
from scenarios.errors import InputError
from scenarios.generate import CityParams, generate_city

HORIZON_S = 1800.0


def wee_city() -> Scenario:
    """The tiny city's smaller sister: 6 listed orders + ~4 arrivals, 2 nodes, 4 couriers."""
    city = generate_city(
        seed=1,
        num_orders=6,
        num_nodes=2,
        num_couriers=4,
        params=CityParams(extra_arrivals_per_day=4.0, num_skus=30, dc_days_of_cover=6.0),
    )
    return dispatch_variant(city, name="wee-city")


@pytest.fixture(scope="session")
def tiny_day(tmp_path_factory: pytest.TempPathFactory) -> ExpertDemonstrations:
    """The expert's labels of day 1 of the wee city (short lookahead): a whole day of 12
    decisions, each with several allowed actions (2 to 5), taken as the first slot, the
    second, or postponed.

    Made once per test run: each lookahead is a fork of the process (~35 ms in a test
    process whatever its horizon), and the tiny city's day took 127 of them (40 here), in
    each xdist worker that ran a test of it; the first worker stores the day, the others
    read it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return expert_day(wee_city(), EnvParams(), 1, horizon_s=HORIZON_S)
    root = tmp_path_factory.getbasetemp().parent  # shared by the workers of this run
    with (root / "tiny_day.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = root / "tiny_day.pickle"
        if stored.is_file():
            day: ExpertDemonstrations = pickle.loads(stored.read_bytes())
            return day
        day = expert_day(wee_city(), EnvParams(), 1, horizon_s=HORIZON_S)
        stored.write_bytes(pickle.dumps(day))
        return day


def test_expert_takes_the_cheapest_lookahead(tiny_day: ExpertDemonstrations) -> None:
    d = tiny_day
    assert len(d) > 0 and d.episode_starts[0] and d.episode_starts.sum() == 1
    rows = np.arange(len(d))
    assert np.all(d.masks[rows, d.actions])  # only allowed actions are chosen
    assert np.all(np.isnan(d.values[~d.masks]))  # disallowed actions have no value
    several = d.masks.sum(axis=1) > 1
    assert several.any()
    vals = np.where(d.masks, d.values, np.inf)[several]
    assert np.all(np.isfinite(vals[np.arange(len(vals)), d.actions[several]]))
    assert np.array_equal(vals.argmin(axis=1), d.actions[several])
    assert len(np.unique(d.actions)) > 1  # the lookaheads told the actions apart
    assert len(d.day_costs) == 1 and d.day_costs[0] > 0


def test_lookahead_leaves_the_env_untouched(tiny: Scenario) -> None:
    env = DynamicDispatchEnv(tiny)
    env.reset(options={"day_seed": 2})
    before = (env.sim.now, env._phi, env.action_masks().tolist())
    allowed = np.flatnonzero(env.action_masks())
    values = [lookahead_value(env, int(a), HORIZON_S) for a in allowed]
    assert all(np.isfinite(values))
    assert (env.sim.now, env._phi, env.action_masks().tolist()) == before
    # the same lookahead twice gives the same value (the fork replays the same day)
    assert lookahead_value(env, int(allowed[0]), HORIZON_S) == values[0]


def test_dagger_days_follow_the_model_but_keep_expert_labels(
    tiny: Scenario, tiny_model: Path
) -> None:
    model = load_model(tiny_model)
    # 5 decisions (each labelled by a lookahead per allowed action, forks of this process)
    params = model.env_params.model_copy(update={"max_steps": 5})
    d = expert_day(tiny, params, 1, horizon_s=600.0, behaviour=model, beta=0.0)
    again = expert_day(tiny, params, 1, horizon_s=600.0, behaviour=model, beta=0.0)
    assert np.array_equal(d.actions, again.actions)  # same day, same labels
    env = DynamicDispatchEnv(tiny, params)
    obs, _ = env.reset(options={"day_seed": 1})
    taken = []
    done = env._done
    while not done:
        a = model.act(obs, env.action_masks())
        taken.append(a)
        obs, _, term, trunc, _ = env.step(a)
        done = term or trunc
    assert len(taken) == len(d)  # the labelled day is the day the model plays
    assert np.array_equal(d.obs["order"].shape[0], len(taken))


def test_demonstrations_round_trip(tiny_day: ExpertDemonstrations, tmp_path: Path) -> None:
    path = save_demonstrations(tmp_path / "d.npz", tiny_day, [1])
    back, days = load_demonstrations(path)
    assert days == [1]
    assert set(back.obs) == set(tiny_day.obs)
    for k in back.obs:
        assert np.array_equal(back.obs[k], tiny_day.obs[k])
    assert np.array_equal(back.actions, tiny_day.actions)
    assert np.array_equal(back.values, tiny_day.values, equal_nan=True)
    assert back.day_costs == tiny_day.day_costs
    both = concat([back, tiny_day])
    assert len(both) == 2 * len(tiny_day) and both.episode_starts.sum() == 2


def test_a_file_that_is_not_demonstrations_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "d.npz"
    bad.write_text("nope")
    with pytest.raises(InputError) as err:
        load_demonstrations(bad)
    assert err.value.one_line() == f"{bad}: demos: is not a zip file"


@pytest.mark.parametrize("kind", ["npy", "other arrays", "folder", "bad record"])
def test_a_malformed_demonstrations_file_names_itself(tmp_path: Path, kind: str) -> None:
    # a single array saved as .npy but named .npz was a TypeError traceback
    path = tmp_path / "d.npz"
    if kind == "npy":
        with path.open("wb") as fh:
            np.save(fh, np.zeros(3))
    elif kind == "other arrays":
        np.savez(path, a=np.zeros(2))
    elif kind == "folder":
        path.mkdir()
    else:
        np.savez(path, meta=np.asarray("[1, 2]"))
    with pytest.raises(InputError) as err:
        load_demonstrations_meta(path) if kind == "bad record" else load_demonstrations(path)
    assert (err.value.field, err.value.source) == ("demos", str(path))


def test_demonstrations_past_the_input_cap_are_refused(
    tiny_day: ExpertDemonstrations, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenarios.files import MAX_INPUT_ENV

    path = save_demonstrations(tmp_path / "d.npz", tiny_day, [1])
    monkeypatch.setenv(MAX_INPUT_ENV, str(path.stat().st_size - 1))
    with pytest.raises(InputError) as err:
        load_demonstrations(path)
    assert (err.value.field, err.value.source) == ("demos", str(path))
    assert "larger than" in err.value.reason
    # compressed, they fit; unpacked, they would not (a zip bomb is refused the same way)
    monkeypatch.setenv(MAX_INPUT_ENV, str(path.stat().st_size))
    with pytest.raises(InputError, match="unpacks to"):
        load_demonstrations(path)


def test_soft_targets_are_distributions_over_allowed_actions(
    tiny_day: ExpertDemonstrations,
) -> None:
    d = tiny_day
    hard = soft_targets(d, tau=None, label_smoothing=0.0)
    assert np.allclose(hard.sum(axis=1), 1.0)
    assert np.array_equal(hard.argmax(axis=1), d.actions)
    soft = soft_targets(d, tau=300.0, label_smoothing=0.1)
    assert np.allclose(soft.sum(axis=1), 1.0)
    assert np.all(soft[~d.masks] == 0.0)
    rows = np.arange(len(d))
    # the best lookahead weighs most (up to the smoothing of near ties)
    assert np.all(soft[rows, d.actions] >= soft.max(axis=1) - 1e-2)


def test_returns_to_go_restart_each_day(tiny_day: ExpertDemonstrations) -> None:
    two = concat([tiny_day, tiny_day])
    g = returns_to_go(two, gamma=1.0)
    n = len(tiny_day)
    assert np.allclose(g[:n], g[n:])
    assert g[0] == pytest.approx(float(tiny_day.rewards.sum()), rel=1e-4)


def test_an_interrupted_save_leaves_the_old_file_whole(
    tiny_day: ExpertDemonstrations, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_demonstrations(tmp_path / "d.npz", tiny_day, [1])
    before = path.read_bytes()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_demonstrations(path, tiny_day, [2])
    assert path.read_bytes() == before  # still the first day's demonstrations
    assert load_demonstrations(path)[1] == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no temporary file left
