"""A batch solve cancelled during its warm start stops there (a service stopping)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from solvers.allocation import AllocationParams, allocate, batch, heuristics
from solvers.allocation.heuristics import nearest
from solvers.allocation.literature import generate_literature
from solvers.allocation.problem import compile_request
from solvers.allocation.solve import CANCELLED_NOTE
from solvers.cancel import cancelled, cancelling

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
    does, with the nearest-node warm start. CPU time (``time.process_time``), not wall
    clock: the machine is shared."""
    if size == "large":  # the warm-up's path, at a size a test affords
        monkeypatch.setattr(batch, "WARMUP_ORDERS", 500)
    req = generate_literature(seed=0, num_orders=1000, num_nodes=10)
    prob = compile_request(req)
    calls = _burning_take(monkeypatch)
    cancel = threading.Event()
    real_warm = batch._warm_start
    cpu_at_cancel: list[float] = []

    def warm_start(*args: Any, **kwargs: Any) -> Any:
        cancel.set()
        cpu_at_cancel.append(time.process_time())
        return real_warm(*args, **kwargs)

    monkeypatch.setattr(batch, "_warm_start", warm_start)
    params = AllocationParams(time_limit_s=30.0, threads=1, mip_rel_gap=0.0)
    with cancelling(cancel):
        res = allocate(req, params)
    cpu_after = time.process_time() - cpu_at_cancel[0]
    assert cpu_at_cancel  # the warm start ran, cancelled from its start
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
