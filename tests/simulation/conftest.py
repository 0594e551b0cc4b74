"""Small named scenarios for the twin's tests (built in code, no files)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scenarios import Scenario
from scenarios.generate import generate_city
from scenarios.stochastic import StochasticParams


def line_scenario(**stochastic: Any) -> Scenario:
    """A depot at x=0 and three customers on a line (speed 1 m/s, so metres = seconds)."""
    return Scenario.model_validate(
        {
            "name": "line",
            "horizon": {"start_s": 0, "end_s": 5000},
            "orders": [
                {
                    "id": "a",
                    "location": {"x": 100, "y": 0},
                    "time_windows": [{"start_s": 0, "end_s": 1000}],
                    "service_s": 10,
                },
                {
                    "id": "b",
                    "location": {"x": 300, "y": 0},
                    "time_windows": [{"start_s": 500, "end_s": 900}],
                    "service_s": 20,
                },
                {
                    "id": "c",
                    "location": {"x": 250, "y": 0},
                    "time_windows": [{"start_s": 0, "end_s": 400}],
                    "service_s": 5,
                },
            ],
            "vehicles": [
                {"id": "v1", "start_location": {"x": 0, "y": 0}, "cost_per_km_cents": 100},
                {"id": "v2", "start_location": {"x": 0, "y": 0}, "cost_per_km_cents": 100},
            ],
            "stochastic": StochasticParams.deterministic().model_dump() | stochastic,
        }
    )


def fridge_line_scenario() -> Scenario:
    """The line day with b needing a fridge, which only v2 has, based 500 m behind the depot
    (x=-500): v1 is always the nearer to every order."""
    data = line_scenario().model_dump(mode="json")
    data["orders"][1]["required_skills"] = ["fridge"]
    data["vehicles"][1]["skills"] = ["fridge"]
    data["vehicles"][1]["start_location"] = {"x": -500, "y": 0}
    return Scenario.model_validate(data)


@pytest.fixture
def line() -> Scenario:
    """Deterministic line scenario."""
    return line_scenario()


@pytest.fixture(scope="session")
def small_city() -> Scenario:
    """A small generated city day (60 orders, 3 nodes, 6 couriers), its own orders only."""
    city = generate_city(seed=11, num_orders=60, num_nodes=3, num_couriers=6)
    return city.model_copy(update={"arrivals": None})


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One local Ray instance for the whole session (started here only if none is running)."""
    ray = pytest.importorskip("ray")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        started = True
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def tiny_city() -> Scenario:
    """A tiny generated city day (12 orders, 2 nodes, 3 couriers): re-plans of 1-5 orders."""
    city = generate_city(seed=5, num_orders=12, num_nodes=2, num_couriers=3)
    return city.model_copy(update={"arrivals": None})
