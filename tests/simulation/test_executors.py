"""The same replications on every executor give the same numbers (one code path)."""

from __future__ import annotations

import pytest

from scenarios import Scenario
from scenarios.errors import InputError
from simulation.evaluate import Case, ReplicationTask, replication_seeds, run_tasks
from simulation.executors import LocalExecutor, RayExecutor, SerialExecutor, make_executor


def _tasks() -> list[ReplicationTask]:
    return [
        ReplicationTask("city", policy, k, s)
        for policy in ("nearest", "insertion")
        for k, s in enumerate(replication_seeds(5, 3))
    ]


def _metrics(outcomes: list) -> list[dict[str, float]]:  # type: ignore[type-arg]
    return [o.metrics for o in outcomes]


@pytest.fixture(scope="module")
def serial_outcomes(small_city: Scenario) -> list:  # type: ignore[type-arg]
    return run_tasks({"city": Case(small_city)}, _tasks(), executor=SerialExecutor())


def test_local_pool_matches_serial(small_city: Scenario, serial_outcomes: list) -> None:  # type: ignore[type-arg]
    seen: list[int] = []
    outcomes = run_tasks(
        {"city": Case(small_city)},
        _tasks(),
        executor=LocalExecutor(workers=2),
        progress=lambda done, total: seen.append(done),
    )
    assert _metrics(outcomes) == _metrics(serial_outcomes)
    assert seen == list(range(1, len(_tasks()) + 1))


def test_ray_matches_serial(
    ray_local: None,
    small_city: Scenario,
    serial_outcomes: list,  # type: ignore[type-arg]
) -> None:
    outcomes = run_tasks({"city": Case(small_city)}, _tasks(), executor=RayExecutor())
    assert _metrics(outcomes) == _metrics(serial_outcomes)
    assert [o.policy for o in outcomes] == [t.policy for t in _tasks()]


def test_make_executor_names() -> None:
    assert make_executor("serial").name == "serial"
    assert make_executor("local", workers=3).name == "local"
    assert make_executor("ray", address="auto").name == "ray"
    with pytest.raises(InputError):
        make_executor("dask")
