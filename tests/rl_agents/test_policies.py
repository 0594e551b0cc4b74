"""Policies on the hook: registry, EURO-style epochs, slot heuristics, a model as a policy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import rl_agents  # noqa: F401  (registers the policies)
from rl_agents.env import DynamicDispatchEnv
from rl_agents.model_io import load_model, shipped_model_path
from rl_agents.policies import EpochDispatchPolicy, ModelPolicy, SlotInsertionPolicy
from scenarios import Scenario
from scenarios.errors import InputError
from simulation import (
    Action,
    Assign,
    DecisionKind,
    DecisionState,
    DispatchSimulator,
    Policy,
    Postpone,
    SimParams,
    make_policy,
    simulate,
)
from simulation.policies import canonical_spec, repeated_policy


def _built(spec: str) -> Policy:
    """The policy ``spec`` names (failing the test if the spec builds none)."""
    policy = make_policy(spec)
    assert policy is not None, spec
    return policy


def test_registered_names_build_policies() -> None:
    assert _built("greedy").name == "nearest"
    assert _built("euro-greedy").name == "euro-greedy:5"
    assert _built("euro-lazy:10").name == "euro-lazy:10"
    assert _built("slots").name == "slots"
    assert _built("slots-tc").name == "slots-tc"
    assert _built("slots-drop").name == "slots-drop"
    assert _built("model:standard").name == "model:standard"
    assert _built("model-plain:standard").name == "model-plain:standard"


_SHIPPED = str(shipped_model_path())


@pytest.mark.parametrize(
    ("specs", "same"),
    [
        # each pair ran its days twice: a duplicate row and a Holm family one larger
        (["euro-greedy", "euro-greedy:5", "euro-greedy:5.0"], True),
        (["euro-lazy:10", "euro-lazy:10.000001"], True),  # the same 600 s epoch
        (["euro-greedy", "euro-lazy"], False),
        (["euro-greedy:5", "euro-greedy:6"], False),
        (["greedy", "nearest"], True),  # NearestIdlePolicy() both
        (["model", "model:standard", f"model:{_SHIPPED}"], True),
        (["model-plain", "model-plain:standard"], True),
        (["model:standard", "model-plain:standard"], False),  # with and without the guards
        (["model:", "model"], False),  # 'model:' is refused on its own, not taken for 'model'
        (["euro-greedy:x", "euro-greedy:y"], False),  # unreadable: left to their own checks
    ],
)
def test_rl_policies_under_another_spelling_are_one_policy(specs: list[str], same: bool) -> None:
    keys = {canonical_spec(s) for s in specs}
    assert (len(keys) == 1) == same and (same or len(keys) == len(specs))
    repeated = repeated_policy(specs)
    if same:
        assert repeated is not None and repeated[0] == 1 and "same policy" in repeated[1]
    else:
        assert repeated is None


def test_a_model_file_under_another_path_is_the_same_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``model:m.zip`` and ``model:./sub/../m.zip`` load one file; another file differs."""
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    repeated = repeated_policy(["model:m.zip", "model:./sub/../m.zip"])
    assert repeated is not None and repeated[0] == 1
    assert repeated_policy(["model:m.zip", "model:n.zip"]) is None
    # the shipped model keeps its name, another file its path as given: an error message
    # shows no install path or working folder (the service's)
    assert canonical_spec(f"model-plain:{_SHIPPED}") == "model-plain:standard"
    assert canonical_spec("model:./sub/../m.zip") == "model:m.zip"


def test_spellings_called_one_policy_build_the_same_policy() -> None:
    """What the canonical spellings claim, checked on the policies they build."""
    a, b = _built("euro-greedy"), _built("euro-greedy:5.0")
    assert isinstance(a, EpochDispatchPolicy) and isinstance(b, EpochDispatchPolicy)
    assert (a.epoch_s, a.lazy, a.num_candidates) == (b.epoch_s, b.lazy, b.num_candidates)
    assert type(_built("greedy")) is type(_built("nearest"))
    c, d = _built("model"), _built(f"model:{_SHIPPED}")
    assert isinstance(c, ModelPolicy) and isinstance(d, ModelPolicy)
    assert c.guards == d.guards
    assert all(np.array_equal(c.model.arrays[k], d.model.arrays[k]) for k in c.model.arrays)


@pytest.mark.parametrize(
    "spec",
    # euro-lazy:inf was an OverflowError (HTTP 500 in /v1/policies/evaluate, a CLI traceback)
    [
        "euro-lazy:0",
        "euro-greedy:x",
        "euro-lazy:inf",
        "euro-greedy:nan",
        "model:/nowhere/m.zip",
        # arguments these policies do not take were ignored (greedy:5 ran greedy)
        "greedy:5",
        "slots:x",
        "slots-tc:1",
        "slots-drop:all",
    ],
)
def test_bad_specs_are_input_errors(spec: str) -> None:
    with pytest.raises(InputError) as err:
        make_policy(spec)
    assert err.value.one_line().startswith(("policies", "model"))


@pytest.mark.parametrize("spec", ["euro-greedy:0.0167", "euro-lazy:0.5", "euro-lazy:0.999"])
def test_an_epoch_below_a_minute_is_an_input_error(spec: str) -> None:
    """euro-greedy:0.0167 (1 s) was taken: the twin offered every waiting order again each
    second (86,400 rounds a day), and euro-lazy held back every order not late within it."""
    with pytest.raises(InputError) as err:
        make_policy(spec)
    assert err.value.field == "policies"
    assert err.value.reason == f"{spec}: the epoch must be at least 1 minute"
    policy = make_policy(spec.partition(":")[0] + ":1")  # a minute is fine
    assert isinstance(policy, EpochDispatchPolicy) and policy.tick_s == 60


def test_a_file_that_is_not_a_model_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.zip"
    bad.write_text("not a zip")
    with pytest.raises(InputError, match="not a zip"):
        load_model(bad)


def _model_zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"dispatchlab.json": b"{", "actor.npz": b""}, "JSONDecodeError"),
        ({"dispatchlab.json": b"[]", "actor.npz": b""}, "not a readable dispatchlab model"),
        ({"dispatchlab.json": b'{"format_version": 1}', "actor.npz": b"x"}, "readable"),
    ],
)
def test_a_damaged_model_zip_is_an_input_error(
    tmp_path: Path, members: dict[str, bytes], reason: str
) -> None:
    # a model zip whose members were not JSON or npz was a traceback
    bad = _model_zip(tmp_path / "m.zip", members)
    with pytest.raises(InputError) as err:
        load_model(bad)
    assert err.value.field == "model" and str(bad) in err.value.one_line()
    assert reason in err.value.reason


def test_a_model_past_the_input_cap_is_refused(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenarios.files import MAX_INPUT_ENV

    monkeypatch.setenv(MAX_INPUT_ENV, str(tiny_model.stat().st_size - 1))
    with pytest.raises(InputError) as err:
        load_model(tiny_model)
    assert (err.value.field, err.value.source) == ("model", str(tiny_model))
    assert "larger than" in err.value.reason
    monkeypatch.setenv(MAX_INPUT_ENV, "100000")
    bomb = _model_zip(tmp_path / "bomb.zip", {"dispatchlab.json": b" " * 200_000})
    with pytest.raises(InputError) as err:
        load_model(bomb)
    assert "unpacks to 200,000 bytes" in err.value.reason and err.value.source == str(bomb)
    folder = tmp_path / "folder.zip"
    folder.mkdir()
    with pytest.raises(InputError, match="is a directory"):
        load_model(folder)


class Recorder(EpochDispatchPolicy):
    """An epoch policy that records when it assigned orders."""

    def __init__(self, *, lazy: bool) -> None:
        super().__init__(lazy=lazy, epoch_s=600)
        self.assign_times: list[float] = []
        self.arrival_assignments = 0

    def decide(self, state: DecisionState) -> Action | None:
        action = super().decide(state)
        if isinstance(action, Assign):
            self.assign_times.append(state.time_s)
            if state.kind == DecisionKind.ARRIVAL:
                self.arrival_assignments += 1
        return action


@pytest.mark.parametrize("lazy", [False, True])
def test_epoch_policies_dispatch_only_at_epochs(tiny: Scenario, lazy: bool) -> None:
    policy = Recorder(lazy=lazy)
    result = simulate(tiny, None, policy, seed=1)
    assert policy.arrival_assignments == 0
    assert policy.assign_times
    start = tiny.horizon.start_s
    assert all(math.isclose((t - start) % 600, 0.0, abs_tol=1e-6) for t in policy.assign_times)
    assert result.metrics["orders_delivered"] > 0


def test_lazy_dispatch_holds_orders_that_can_wait(tiny: Scenario) -> None:
    greedy, lazy = Recorder(lazy=False), Recorder(lazy=True)
    simulate(tiny, None, greedy, seed=2)
    simulate(tiny, None, lazy, seed=2)
    assert np.mean(lazy.assign_times) > np.mean(greedy.assign_times)


def test_model_policy_decides_as_in_the_env(tiny: Scenario, tiny_model: Path) -> None:
    """The same model, inside simulate() (without guards) and driving the env: the same day."""
    model = load_model(tiny_model)
    for seed in (1, 2):
        env = DynamicDispatchEnv(tiny, model.env_params)
        obs, _ = env.reset(seed=seed)
        done = env._done
        info: dict = {}
        while not done:
            obs, _, term, trunc, info = env.step(model.act(obs, env.action_masks()))
            done = term or trunc
        via_policy = simulate(tiny, None, f"model-plain:{tiny_model}", seed=seed)
        assert via_policy.metrics["cost_cents"] == pytest.approx(info["kpis"]["cost_cents"])


def test_model_policy_matches_sb3_predictions(tiny: Scenario, tiny_model: Path) -> None:
    from sb3_contrib import MaskablePPO

    sb3 = MaskablePPO.load(tiny_model, device="cpu")
    ours = load_model(tiny_model)
    env = DynamicDispatchEnv(tiny, ours.env_params)
    obs, _ = env.reset(seed=3)
    checked = 0
    while not env._done and checked < 25:
        mask = env.action_masks()
        a_sb3, _ = sb3.predict(obs, deterministic=True, action_masks=mask)
        assert ours.act(obs, mask) == int(a_sb3)
        obs, *_ = env.step(int(a_sb3))
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("kind", ["model", "slots"])
def test_model_and_slot_policies_wait_like_the_env(
    tiny: Scenario, tiny_model: Path, kind: str
) -> None:
    policy = ModelPolicy(str(tiny_model)) if kind == "model" else SlotInsertionPolicy()
    sim = DispatchSimulator(tiny, params=SimParams(tick_s=policy.tick_s))
    sim.reset(seed=1)
    policy.reset(sim, seed=1)
    horizon = policy.env_params.dispatch_horizon_s
    assert horizon is not None
    waits = 0
    while (state := sim.next_decision()) is not None:
        action = policy.decide(state)
        o = state.focus_order
        if o >= 0 and sim.orders.tw_start[o] - state.time_s > horizon:
            assert isinstance(action, Postpone)
            assert action.until_s == pytest.approx(sim.orders.tw_start[o] - horizon)
            waits += 1
        sim.apply(action)
    assert waits > 0  # the day has orders not due yet


def test_shipped_model_is_small_and_loads() -> None:
    path = shipped_model_path()
    assert path.exists(), "rl_agents/models/standard.zip must ship with the package"
    assert path.stat().st_size < 400_000
    model = load_model("standard")
    assert model.algo in ("maskable-ppo", "ppo", "dqn")
    assert model.meta["info"]["command"]  # trained by a documented command
