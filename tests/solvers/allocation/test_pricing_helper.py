"""Pricing on two cores: a helper process prices every other order the DP leaves open."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from scenarios.generate import generate_city
from solvers.allocation import AllocationParams, AllocationRequest, allocate, batch
from solvers.allocation import master as master_mod
from solvers.allocation.highs_model import Duals
from solvers.allocation.master import Pricer, Pricing, PricingHelper
from solvers.allocation.problem import Problem, compile_request


@pytest.fixture
def city() -> AllocationRequest:
    """150 city orders over 10 nodes: stores hold a few units, so lines split over nodes."""
    scenario = generate_city(seed=4, num_orders=150, num_nodes=10, num_couriers=5)
    return AllocationRequest.from_scenario(scenario)


def stock_prices(prob: Problem) -> Duals:
    """Multipliers as in a pricing round: stock priced at 0-3 per unit (seeded)."""
    duals = Duals.zeros(prob)
    duals.stock = -np.random.default_rng(7).uniform(0.0, 3.0, size=prob.avail.shape)
    return duals


def wait_for(ready: Callable[[], bool]) -> bool:
    """Whether ``ready`` turns true within 30 s."""
    end = time.perf_counter() + 30.0
    while not ready() and time.perf_counter() < end:
        time.sleep(0.01)
    return ready()


def same(a: Pricing, b: Pricing) -> bool:
    """Whether two pricings give the same values, patterns and exactness."""
    return (
        np.allclose(a.value, b.value, rtol=0.0, atol=1e-9)
        and all(np.array_equal(x, y) for x, y in zip(a.arcs, b.arcs, strict=True))
        and all(np.array_equal(x, y) for x, y in zip(a.qty, b.qty, strict=True))
        and a.exact == b.exact
    )


@dataclass
class Started:
    """A city problem, multipliers, its pricing in this process alone, and a ready helper."""

    prob: Problem
    duals: Duals
    alone: Pricing
    helper: PricingHelper


@pytest.fixture
def started(city: AllocationRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Started]:
    """A helper holding the city's problem (ended afterwards); every job shared with it."""
    monkeypatch.setattr(master_mod, "HELPER_MIN_ORDERS", 1)
    prob = compile_request(city)
    duals = stock_prices(prob)
    alone = Pricer(prob).price(duals)
    helper = PricingHelper.spawn(prob)
    assert helper is not None
    try:
        assert wait_for(helper.ready)
        yield Started(prob, duals, alone, helper)
    finally:
        helper.close()


def test_the_helper_prices_as_this_process_does(started: Started) -> None:
    pricer = Pricer(started.prob)
    pricer.helper = started.helper
    shared = pricer.price(started.duals)
    again = pricer.price(started.duals)  # the process serves round after round
    assert started.helper.priced > 0  # it took orders (the DP leaves some open here)
    assert same(shared, started.alone) and same(again, started.alone)
    started.helper.close()
    assert started.helper.helper.proc.returncode is not None  # the process is gone


def test_a_failed_helper_leaves_its_orders_to_this_process(started: Started) -> None:
    proc = started.helper.helper.proc
    proc.kill()
    proc.wait()
    pricer = Pricer(started.prob)
    pricer.helper = started.helper
    assert same(pricer.price(started.duals), started.alone)
    assert not started.helper.ready()  # later rounds price here from the start
    assert same(pricer.price(started.duals), started.alone)
    assert started.helper.priced == 0


def test_a_capped_batch_prices_with_a_helper_and_ends_it(
    city: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 50)  # 150 orders count as a large batch
    monkeypatch.setattr(master_mod, "HELPER_MIN_ORDERS", 1)
    monkeypatch.setattr(batch.os, "sched_getaffinity", lambda _pid: {0, 1})
    helpers: list[PricingHelper] = []
    spawn = PricingHelper.spawn

    def recorded(prob: Problem) -> PricingHelper | None:
        helper = spawn(prob)
        assert helper is not None
        helpers.append(helper)
        return helper

    monkeypatch.setattr(PricingHelper, "spawn", staticmethod(recorded))
    res = allocate(city, AllocationParams(time_limit_s=3.0, mip_rel_gap=1e-4, seed=2))
    assert len(helpers) == 1 and helpers[0].helper.proc.returncode is not None
    assert res.bound is not None and res.bound <= res.cost.total + 1e-6
    # one thread asked for: no helper
    allocate(city, AllocationParams(time_limit_s=1.0, threads=1))
    assert len(helpers) == 1
