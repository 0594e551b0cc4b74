"""Pricing on two cores: a helper process prices every other order the DP leaves open."""

from __future__ import annotations

import dataclasses
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from scenarios.generate import generate_city
from solvers.allocation import AllocationParams, AllocationRequest, allocate, batch
from solvers.allocation import master as master_mod
from solvers.allocation.helper_process import HelperProcess
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


class _Recorder(HelperProcess):
    """A helper process stand-in that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, message: tuple[object, ...] | bytes) -> bool:
        assert isinstance(message, bytes)
        self.sent.append(message)
        return True


def test_the_helper_gets_the_arrays_without_the_request(city: AllocationRequest) -> None:
    prob = compile_request(city)
    _ = prob.arc_node, prob.arc_gain  # cached arrays stay behind too
    recorder = _Recorder()
    helper = PricingHelper(recorder, prob)
    assert wait_for(helper.ready)
    kind, sent = pickle.loads(recorder.sent[0])
    assert kind == "problem" and isinstance(sent, Problem)
    assert sent.request.orders == [] and sent.request.nodes == []
    assert "arc_node" not in vars(sent) and "arc_gain" not in vars(sent)
    for f in dataclasses.fields(Problem):
        value = getattr(prob, f.name)
        if isinstance(value, np.ndarray):
            assert np.array_equal(getattr(sent, f.name), value), f.name
        elif f.name != "request":
            assert getattr(sent, f.name) == value, f.name


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


# a timing-dependent capped batch run (~4 s); the helper's pricing is checked by
# test_the_helper_prices_as_this_process_does, its failure by
# test_a_failed_helper_leaves_its_orders_to_this_process
@pytest.mark.slow
def test_a_capped_batch_prices_with_a_helper_and_ends_it(
    city: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 50)  # 150 orders count as a large batch
    monkeypatch.setattr(master_mod, "HELPER_MIN_ORDERS", 1)
    monkeypatch.setattr(batch, "usable_cpus", lambda: 2)
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


def lp_master(prob: Problem) -> master_mod.Master:
    """The city's master LP after one pricing round, solved (interior point)."""
    master = master_mod.Master(prob, threads=1, seed=0)
    empty = np.zeros(0, dtype=np.int64)
    master.add(master.orders, [empty] * prob.num_orders, [empty] * prob.num_orders)
    master.add_solution(batch.nearest(prob))
    first = Pricer(prob, threads=1).price(stock_prices(prob))
    master.add(master.orders, first.arcs, first.qty)
    master.h.setOptionValue("solver", "ipm")
    assert master.solve_lp(30.0) == "Optimal"
    return master


def test_the_bound_job_is_the_lagrangian_bound_at_the_loose_multipliers(
    city: AllocationRequest,
) -> None:
    # the bound job's answer is what pricing every order at its multipliers gives here, a
    # lower bound on every allocation (the nearest-node one here) and on the LP; and the
    # helper process answers the same
    prob = compile_request(city)
    master = lp_master(prob)
    job = master_mod.BoundJob.of(master, 30.0)
    lb, pi = master_mod.loose_bound(prob, job)
    duals = master.to_duals(pi)
    priced = Pricer(prob, threads=1).price(duals)
    assert priced.exact
    assert lb == pytest.approx(master.total(priced.value) + master.shared_rhs_term(duals))
    assert lb <= master.objective() + 1e-6
    assert lb <= prob.evaluate(batch.nearest(prob)).total / master_mod.MICRO + 1e-6
    assert np.any(pi < 0)  # binding rows priced
    helper = PricingHelper.spawn(prob)
    assert helper is not None
    try:
        assert wait_for(helper.ready)
        assert helper.bound(0.0) is None  # no job out
        assert helper.submit_bound(job) and helper.bounding
        assert not helper.submit_bound(job)  # one at a time
        got = None
        end = time.perf_counter() + 60.0
        while got is None and helper.bounding and time.perf_counter() < end:
            got = helper.bound(0.05)
        assert got is not None and not helper.bounding
        assert got[0] == pytest.approx(lb, rel=1e-9)
        assert np.allclose(got[1], pi, rtol=0.0, atol=1e-9)
    finally:
        helper.close()


# a timing-dependent capped batch run (~6 s); the bound job's value is checked by
# test_the_bound_job_is_the_lagrangian_bound_at_the_loose_multipliers
@pytest.mark.slow
def test_a_capped_batch_takes_the_bound_of_the_job_beside_its_search(
    city: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # column generation stops after one round (no re-solve fits): the helper solves the
    # master LP with that round's columns and prices at its multipliers while the search
    # runs on one thread, back to two once the answer is in; the answer's bound is at
    # least the job's
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 50)
    monkeypatch.setattr(batch, "LP_FIT_SHARE", 0.0)
    monkeypatch.setattr(batch, "BOUND_JOB_ROOM", 0.0)
    monkeypatch.setattr(batch, "EARLY_ROUNDS", 1)  # a job after the first LP too
    monkeypatch.setattr(batch, "BOUND_JOB_WAIT_SHARE", 1.0)  # a slow helper start is no skip
    # no ejection pass before the first slice: on this small batch it can outlast the job
    monkeypatch.setattr(batch, "EJECT_FIRST_SHARE", 0.0)
    monkeypatch.setattr(batch, "usable_cpus", lambda: 2)
    answers: list[tuple[float, np.ndarray] | None] = []
    workers: list[int] = []
    answered: list[bool] = []  # per slice: had the job's answer been taken when it started
    real_bound = PricingHelper.bound
    real_run = batch._SlicedSearch.run

    def bound(self: PricingHelper, wait_s: float) -> tuple[float, np.ndarray] | None:
        got = real_bound(self, wait_s)
        answers.append(got)
        return got

    def run(self: batch._SlicedSearch, *args: object) -> np.ndarray:
        workers.append(self.workers)
        answered.append(any(a is not None for a in answers))
        return real_run(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PricingHelper, "bound", bound)
    monkeypatch.setattr(batch._SlicedSearch, "run", run)
    res = allocate(city, AllocationParams(time_limit_s=6.0, mip_rel_gap=1e-6, seed=2))
    taken = [a for a in answers if a is not None]
    assert len(taken) == 1
    assert res.bound is not None and res.bound >= min(taken[0][0], res.cost.total) - 1e-6
    assert workers[0] == 1 and workers[-1] == 2  # one thread while the job ran
    assert workers == [2 if done else 1 for done in answered]
