"""A batch keeps its time limit on a slow machine: the warm start and the pricing helper."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from scenarios.generate import generate_city
from solvers.allocation import AllocationParams, AllocationRequest, allocate, batch
from solvers.allocation.dp import GaveUp
from solvers.allocation.heuristics import nearest
from solvers.allocation.literature import generate_literature
from solvers.allocation.problem import Problem, compile_request


@pytest.fixture
def literature_30() -> AllocationRequest:
    """30 literature orders over 10 FCs (the batch path from a limit of ~0.05 s)."""
    return generate_literature(seed=0, num_orders=30, num_nodes=10, vip_share=0.1)


def test_a_slow_myopic_warm_start_stops_at_the_pricing_deadline(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest
) -> None:
    """The myopic pass ran to its end whatever the limit (1.4 s at 1,000 city orders on a
    slow machine: 1.5 s batches answered at 2.9 s): it now gives up where the first pricing
    must end, and the nearest-node allocation is the warm start. The stand-in pass below
    runs until it is told to give up (at most 5 s)."""
    told: list[bool] = []

    def slow_sequential(prob: Problem, *args: Any, give_up: Any = None, **kwargs: Any) -> Any:
        t_end = time.perf_counter() + 5.0
        while time.perf_counter() < t_end:
            if give_up is not None and give_up():
                told.append(True)
                raise GaveUp
            time.sleep(0.001)
        told.append(False)
        return nearest(prob)

    monkeypatch.setattr(batch, "sequential", slow_sequential)
    prob = compile_request(literature_30)
    res = allocate(literature_30, AllocationParams(time_limit_s=0.4, explain=False))
    assert told == [True]  # told to stop, not run to its end
    assert res.method == "batch"
    near = prob.evaluate(nearest(prob)).total / 1e6
    assert res.stats.warm_start_cost == pytest.approx(near, abs=1e-6)
    assert res.cost.total <= near + 1e-6


def test_the_warm_start_past_its_stop_is_the_nearest_node_allocation(
    literature_30: AllocationRequest,
) -> None:
    """Past ``stop_at`` the myopic pass has no answer; before it, it runs as it did."""
    prob = compile_request(literature_30)
    late = batch._warm_start(prob, stop_at=time.perf_counter() - 1.0)
    assert np.array_equal(late, nearest(prob))
    assert np.array_equal(
        batch._warm_start(prob, stop_at=time.perf_counter() + 60.0), batch._warm_start(prob)
    )


class _FakeHelper:
    """Records how the solve closed its pricing helper."""

    def __init__(self) -> None:
        self.kills: list[bool] = []

    def close(self, *, kill: bool = False) -> None:
        self.kills.append(kill)


@pytest.mark.parametrize(("elapsed_s", "killed"), [(1.0, True), (0.0, False)])
def test_a_helper_at_the_time_limit_is_killed_not_waited_for(
    monkeypatch: pytest.MonkeyPatch, elapsed_s: float, killed: bool
) -> None:
    """A capped batch's pricing helper was given 0.5 s to end by itself after the answer
    was found, so a helper still starting (importing on a slow machine) put 0.2-0.8 s on
    1.5 s batches of 1,000 city orders. At the time limit it is now killed at once; a
    batch that ends early still lets it end by itself."""
    req = AllocationRequest.from_scenario(
        generate_city(seed=4, num_orders=20, num_nodes=5, num_couriers=2)
    )
    prob = compile_request(req)
    fake = _FakeHelper()
    monkeypatch.setattr(batch, "PRICING_HELPER", True)
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 0)
    monkeypatch.setattr(batch, "_has_caps", lambda rows: True)
    monkeypatch.setattr(batch, "search_workers", lambda params: 2)
    monkeypatch.setattr(batch.PricingHelper, "spawn", classmethod(lambda cls, prob: fake))
    monkeypatch.setattr(batch, "_solve", lambda *args, **kwargs: "answer")
    params = AllocationParams(time_limit_s=1.0)
    out = batch._solve_batch(
        prob, params, start=time.perf_counter() - elapsed_s, x_start=None, race=None
    )
    assert out == "answer"
    assert fake.kills == [killed]
