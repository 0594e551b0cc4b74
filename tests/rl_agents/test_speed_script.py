"""``benchmarks/rl_speed.py``: its targets are decided on repeated runs (fake timings)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("rl_speed.py", "rl_speed_script") as module:
        yield module


def test_the_step_rate_target_is_decided_on_the_repeated_runs(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ~2 s run decided ">= 2,000 steps/s"; the rate moved between 1,685 and 2,666."""
    seconds = iter([1.0, 2.0, 1.6, 1.8, 2.2])  # warm-up, then 1,000 steps in each run
    monkeypatch.setattr(script, "DynamicDispatchEnv", lambda world: None)
    monkeypatch.setattr(script, "env_speed", lambda env, days, mode: (1000, next(seconds)))
    split = dict.fromkeys(("twin", "apply", "quotes", "featurizer", "potential", "total"), 1.0)
    monkeypatch.setattr(script, "step_split", lambda env, days: split)
    table = script.Measures()
    monkeypatch.setattr(table, "record", lambda *a, **k: None)  # the other rows
    script.env_figures(None, 4, table, repeats=3)
    (row,) = table.rows
    assert row["runs"] == (500.0, 625.0, 1000.0 / 1.8)
    assert row["status"] == "missed" and row["ci_high"] < 2000.0


def test_only_the_guarded_model_s_latency_is_repeated(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def latencies(world: Any, spec: str, days: list[int]) -> np.ndarray:
        calls.append(spec)
        return np.full(100, 1500.0 if len(calls) % 2 else 2500.0)  # 1.5 ms, 2.5 ms, ...

    monkeypatch.setattr(script, "latencies", latencies)
    table = script.Measures()
    script.decision_latencies(None, "m", 2, table, repeats=2)
    assert calls == ["model:m", "model:m", "model:m", "model-plain:m", "slots", "insertion"]
    rows = {r["measure"].split(" (")[0]: r for r in table.rows}
    p50 = rows["decision latency p50, model:m"]
    assert p50["runs"] == (2.5, 1.5) and p50["status"] == "undecided"  # mean 2 ms, wide CI
    assert rows["decision latency p99, model-plain:m"]["runs"] == ()  # a reference figure
