"""A batch solve cancelled anywhere stops there (a service stopping): its warm start, its
pricing (and the pricing helper process), master LP, LP rounding and search."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import numpy as np
import pytest

from scenarios.generate import generate_city
from solvers.allocation import AllocationParams, AllocationRequest, allocate, batch, heuristics
from solvers.allocation import eject as eject_mod
from solvers.allocation import master as master_mod
from solvers.allocation import repair as repair_mod
from solvers.allocation.dp import GaveUp
from solvers.allocation.heuristics import nearest
from solvers.allocation.highs_model import Duals
from solvers.allocation.literature import generate_literature
from solvers.allocation.master import Pricer, PricingHelper
from solvers.allocation.problem import Problem, compile_request
from solvers.allocation.solve import CANCELLED_NOTE
from solvers.cancel import cancelled, cancelling
from tests.cpu_time import WorkCpu

#: CPU seconds each residual update of the one-order-at-a-time passes is made to cost, so
#: that a pass over every order after the cancellation shows in the CPU time (1,000 orders:
#: 2 s a pass)
BURN_S = 0.002


def _burning_take(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each ``Residual.take`` burns :data:`BURN_S` of CPU; returns, per call, whether this
    thread's solve was cancelled by then."""
    real = heuristics.Residual.take
    calls: list[bool] = []

    def take(self: heuristics.Residual, *args: Any, **kwargs: Any) -> None:
        calls.append(cancelled())
        end = time.process_time() + BURN_S
        while time.process_time() < end:
            pass
        real(self, *args, **kwargs)

    monkeypatch.setattr(heuristics.Residual, "take", take)
    return calls


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_batch_cancelled_in_its_warm_start_stops_there(
    monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    """The warm start's myopic pass (and, for a large batch, the Lagrangian warm-up and its
    bid-price pass, and the polish at the end) ran on over every order after the solve was
    cancelled (20-28 s of a 1,000-order allocation after a service's stop on a loaded
    machine): they now stop at the next order, and the solve answers as a cancelled one
    does, with the nearest-node warm start. CPU time (the solve's: :class:`WorkCpu`), not
    wall clock: the machine is shared."""
    if size == "large":  # the warm-up's path, at a size a test affords
        monkeypatch.setattr(batch, "WARMUP_ORDERS", 500)
    req = generate_literature(seed=0, num_orders=1000, num_nodes=10)
    prob = compile_request(req)
    calls = _burning_take(monkeypatch)
    cancel = threading.Event()
    real_warm = batch._warm_start
    cancels: list[bool] = []

    def warm_start(*args: Any, **kwargs: Any) -> Any:
        cancel.set()
        cancels.append(True)
        cpu.start()
        return real_warm(*args, **kwargs)

    monkeypatch.setattr(batch, "_warm_start", warm_start)
    params = AllocationParams(time_limit_s=30.0, threads=1, mip_rel_gap=0.0)
    with WorkCpu() as cpu, cancelling(cancel):
        res = allocate(req, params)
        cpu_after = cpu.seconds()  # the solve's, not a full collection's of the session heap
    assert cancels  # the warm start ran, cancelled from its start
    assert sum(calls) <= 10, f"{sum(calls)} orders' residual updates after the cancellation"
    assert cpu_after < 1.0, f"{cpu_after:.2f} s of CPU after the cancellation"
    assert CANCELLED_NOTE in res.stats.notes
    assert "no explanations: the solve was cancelled" in res.stats.notes
    # the nearest-node allocation is the warm start, and the answer is no worse
    near = prob.evaluate(nearest(prob)).total / 1e6
    assert res.stats.warm_start_cost == pytest.approx(near, abs=1e-6)
    assert res.cost.total <= near + 1e-6


def test_a_cancelled_polish_leaves_the_allocation_as_it_is() -> None:
    """Once its solve is cancelled, the polish re-optimises no order (as past its deadline)."""
    prob = compile_request(generate_literature(seed=1, num_orders=200, num_nodes=10))
    x = nearest(prob)
    cancel = threading.Event()
    cancel.set()
    with cancelling(cancel):
        out = heuristics.polish(prob, x, deadline=time.perf_counter() + 60.0)
    assert (out == x).all()
    assert out is not x


# ------------------------------------------------------------------ capped batches
@pytest.fixture
def capped_city() -> AllocationRequest:
    """150 city orders over 10 nodes (stores hold a few units: lines split over nodes)."""
    scenario = generate_city(seed=4, num_orders=150, num_nodes=10, num_couriers=5)
    return AllocationRequest.from_scenario(scenario)


def stock_prices(prob: Problem) -> Duals:
    """Multipliers as in a pricing round: stock priced at 0-3 per unit (seeded)."""
    duals = Duals.zeros(prob)
    duals.stock = -np.random.default_rng(7).uniform(0.0, 3.0, size=prob.avail.shape)
    return duals


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, seen: list[bool]) -> None:
    """Record, per call of ``owner.name``, whether this thread's solve was cancelled then."""
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(cancelled())
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


def test_a_pricing_round_gives_up_at_its_next_order(capped_city: AllocationRequest) -> None:
    """A round asked to give up raises GaveUp before its next order's search (it searched
    every order the DP leaves open, then answered)."""
    prob = compile_request(capped_city)
    duals = stock_prices(prob)
    searched: list[int] = []
    real = master_mod.solve_order_bb

    def search(prob: Problem, order: int, *args: Any, **kwargs: Any) -> Any:
        searched.append(order)
        return real(prob, order, *args, **kwargs)

    pricer = Pricer(prob, threads=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(master_mod, "solve_order_bb", search)
        whole = pricer.price(duals)
        assert len(searched) > 3  # the DP leaves orders open here
        searched.clear()
        with pytest.raises(GaveUp):
            pricer.price(duals, give_up=lambda: len(searched) >= 3)
        assert len(searched) == 3
        searched.clear()
        with pytest.raises(GaveUp):  # before the DP's first block
            pricer.price(duals, give_up=lambda: True)
        assert searched == []
    assert whole.exact


def test_a_cancelled_round_ends_the_pricing_helper_at_once(
    capped_city: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round that gives up while the helper prices its share kills the helper (its
    answer would be read as the next round's), and the rounds after price here alone."""
    monkeypatch.setattr(master_mod, "HELPER_MIN_ORDERS", 1)
    prob = compile_request(capped_city)
    duals = stock_prices(prob)
    alone = Pricer(prob).price(duals)
    helper = PricingHelper.spawn(prob)
    assert helper is not None
    try:
        end = time.perf_counter() + 30.0
        while not helper.ready() and time.perf_counter() < end:
            time.sleep(0.01)
        assert helper.ready()
        pricer = Pricer(prob)
        pricer.helper = helper
        searched: list[int] = []
        real = master_mod.solve_order_bb

        def search(prob: Problem, order: int, *args: Any, **kwargs: Any) -> Any:
            searched.append(order)
            return real(prob, order, *args, **kwargs)

        # after this process's first search, while the helper prices its share
        with pytest.MonkeyPatch.context() as mp, pytest.raises(GaveUp):
            mp.setattr(master_mod, "solve_order_bb", search)
            pricer.price(duals, give_up=lambda: bool(searched))
        assert len(searched) == 1
        proc = helper.helper.proc
        assert proc.poll() == -signal.SIGKILL  # killed, not waited for
        assert not helper.ready()
        again = pricer.price(duals)
        assert np.allclose(again.value, alone.value, rtol=0.0, atol=1e-9)
    finally:
        helper.close()


def test_a_helper_closed_on_cancel_is_killed_at_once(capped_city: AllocationRequest) -> None:
    """``close(kill=True)`` (a cancelled solve) kills the helper while it still starts,
    without waiting for it to take the problem (it took the problem, then ended)."""
    prob = compile_request(capped_city)
    helper = PricingHelper.spawn(prob)
    assert helper is not None
    helper.close(kill=True)
    assert helper.helper.proc.poll() == -signal.SIGKILL


#: the points of a capped batch solve at which the tests below cancel it: the owner and
#: name of the call whose ``nth`` call sets the cancellation as it starts
CANCEL_POINTS: dict[str, tuple[Any, str, int]] = {
    "pricing": (master_mod, "solve_order_bb", 2),
    "master LP": (master_mod.Master, "solve_lp", 1),
    "LP rounding": (batch, "lp_round", 1),
    "search": (batch._SlicedSearch, "run", 1),
    "repair": (repair_mod.Repair, "run", 1),
}


@pytest.mark.parametrize("point", list(CANCEL_POINTS))
def test_a_capped_batch_cancelled_anywhere_stops_there(
    capped_city: AllocationRequest, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    """Cancelled in its pricing, a master LP, the LP rounding, the search or a repair, a
    capped batch (the pricing helper beside it) does no more work: no pricing search, no
    pool growth, no rounding, ejection, repair or search step after the cancel (they ran
    on: pricing every order left, the LP-guided dive after an interrupted LP, the rounding
    over every order, repairs and ejection after the search: 0.3-1.2 s of CPU after the
    cancel at 10,000 city orders), and the helper is killed. CPU time (the solve's:
    :class:`WorkCpu`), not wall clock: the machine is shared."""
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 50)  # 150 orders count as a large batch
    monkeypatch.setattr(batch, "usable_cpus", lambda: 2)  # the pricing helper beside it
    # every phase reached on a loaded machine too: column generation leaves 60 % of the
    # limit to the integer phase, whose search slices are short, each followed by a repair
    monkeypatch.setattr(batch, "CAPPED_RESERVE", 0.6)
    monkeypatch.setattr(batch, "LNS_SLICE_MIN_S", 0.2)
    monkeypatch.setattr(batch, "LNS_SLICE_SHARE", 0.0)
    helpers: list[PricingHelper] = []
    spawn = PricingHelper.spawn

    def recorded(prob: Problem) -> PricingHelper | None:
        helper = spawn(prob)
        if helper is not None:
            helpers.append(helper)
        return helper

    monkeypatch.setattr(PricingHelper, "spawn", staticmethod(recorded))
    work: dict[str, list[bool]] = {}
    for owner, name in (
        (master_mod, "solve_order_bb"),
        (master_mod.Master, "add"),
        (heuristics.Residual, "take"),
        (repair_mod.Repair, "run"),
        (eject_mod.Ejector, "run"),
        (batch, "_lp_guided"),
        (batch._SlicedSearch, "run"),
    ):
        seen: list[bool] = []
        work[f"{owner.__name__}.{name}"] = seen
        _counting(monkeypatch, owner, name, seen)
    cancel = threading.Event()
    cancels: list[bool] = []
    owner, name, nth = CANCEL_POINTS[point]
    real = getattr(owner, name)
    calls: list[int] = []

    def cancelling_call(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == nth:
            cpu.start()
            cancels.append(True)
            cancel.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, cancelling_call)
    params = AllocationParams(time_limit_s=10.0, mip_rel_gap=0.0, seed=0)
    with WorkCpu() as cpu, cancelling(cancel):
        res = allocate(capped_city, params)
        cpu_after = cpu.seconds()  # the solve's, not a full collection's of the session heap
    assert cancels, f"the solve never reached its {point}"
    after = {what: sum(seen) for what, seen in work.items()}
    # the call that set the cancellation as it started is counted as one after it
    hooked = f"{owner.__name__}.{name}"
    after[hooked] = max(0, after.get(hooked, 0) - 1)
    assert not any(after.values()), f"work after the cancel: {after}"
    assert cpu_after < 1.0, f"{cpu_after:.2f} s of CPU after the cancel"
    assert CANCELLED_NOTE in res.stats.notes
    assert len(helpers) == 1
    assert helpers[0].helper.proc.returncode == -signal.SIGKILL
    prob = compile_request(capped_city)
    near = prob.evaluate(nearest(prob)).total / 1e6
    assert res.cost.total <= near + 1e-6
    if point == "pricing":  # cancelled in the first round: the warm start, no bound
        assert res.bound is None
        assert res.cost.total == pytest.approx(near, abs=1e-6)
    else:
        assert res.bound is not None and res.bound <= res.cost.total + 1e-6
