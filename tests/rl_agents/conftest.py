"""Small named scenarios for the RL agents' tests (built in code, no files)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from rl_agents.scenario import dispatch_variant
from scenarios import Scenario
from scenarios.generate import CityParams, generate_city


def tiny_city() -> Scenario:
    """A 3 km city day: 25 listed orders + ~25 arrivals, 2 nodes, 4 couriers, no noise."""
    city = generate_city(
        seed=3,
        num_orders=25,
        num_nodes=2,
        num_couriers=4,
        # generator version 1's fleet, as the RL standard scenario's: the days these tests
        # pin (e.g. test_hindsight's day 24) were found on it
        params=CityParams(
            extra_arrivals_per_day=25.0, num_skus=30, dc_days_of_cover=6.0, generator_version=1
        ),
    )
    return dispatch_variant(city, name="tiny-city")


@pytest.fixture(scope="session")
def tiny() -> Scenario:
    """The tiny city day (session-wide: it is immutable)."""
    return tiny_city()


@pytest.fixture(scope="session")
def tiny_file(tmp_path_factory: pytest.TempPathFactory, tiny: Scenario) -> Path:
    """The tiny city as a scenario JSON file."""
    path = tmp_path_factory.mktemp("rl") / "tiny.json"
    path.write_text(tiny.model_dump_json())
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny: Scenario) -> Path:
    """A MaskablePPO model trained for a few hundred steps on the tiny city.

    Trained once per test run (~5 s): the first xdist worker that needs it trains it into a
    folder the workers of this run share, the others wait for it and read it (tests only
    read the model and its logs).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return _train_tiny_model(tmp_path_factory.mktemp("model"), tiny)
    root = tmp_path_factory.getbasetemp().parent  # shared by the workers of this run
    with (root / "tiny_model.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder, done = root / "tiny_model", root / "tiny_model.done"
        if done.is_file():
            return folder / "tiny.zip"
        shutil.rmtree(folder, ignore_errors=True)  # a worker's training that failed
        folder.mkdir()
        out = _train_tiny_model(folder, tiny)
        done.touch()
        return out


def _train_tiny_model(folder: Path, tiny: Scenario) -> Path:
    """The tiny model trained into ``folder`` (logs in ``folder / "logs"``)."""
    from rl_agents.train import TrainParams, train

    out = folder / "tiny.zip"
    params = TrainParams(
        timesteps=256,
        num_envs=1,
        n_steps=128,
        batch_size=64,
        n_epochs=1,
        expert="slots",
        imitation_days=1,
        imitation_epochs=2,
        eval_every=128,
        eval_days=1,
        checkpoint_every=128,
    )
    train(tiny, params, out=out, logdir=folder / "logs", progress=False)
    return out
