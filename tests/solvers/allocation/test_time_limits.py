"""One order over many capped nodes: the answer keeps its time limit and says what it proved."""

from __future__ import annotations

import time
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from solvers.allocation import (
    AllocationParams,
    AllocationRequest,
    AllocationStatus,
    allocate,
    dp,
    explain,
    heuristics,
)
from solvers.allocation import master as master_mod
from solvers.allocation import solve as solve_mod
from solvers.allocation.heuristics import Residual, real_costs, solve_residual
from solvers.allocation.highs_model import Duals
from solvers.allocation.literature import generate_crowded_order
from solvers.allocation.master import Pricer
from solvers.allocation.problem import MICRO, compile_request

from .conftest import allocation_vector, brute_force
from .test_properties import requests
from .test_unit_rounding import tight_requests


@pytest.fixture
def crowd() -> AllocationRequest:
    """40 capped nodes, 8 lines: the capacity-aware search needs more than a few fills."""
    return generate_crowded_order(0, num_nodes=40, num_lines=8)


def optimum(req: AllocationRequest) -> float:
    """The order's proven optimal cost (the one-order MIP without a deadline)."""
    prob = compile_request(req)
    arcs, qty, lower = solve_residual(prob, 0, Residual(prob), *real_costs(prob))
    assert lower is None
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    x[arcs] = qty
    return prob.evaluate(x).total / MICRO


def test_a_search_stopped_early_hands_on_its_pattern_and_a_valid_bound(
    crowd: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No MIP answer in time: the search's best pattern, unproven, with its bound."""
    best = optimum(crowd)
    monkeypatch.setattr(dp, "BB_FLOW_LIMIT", 1)
    monkeypatch.setattr(heuristics, "_solve_residual_mip", lambda *a, **k: None)
    result = allocate(crowd, AllocationParams(mode="online", explain=False))
    assert result.status == AllocationStatus.FEASIBLE
    assert any("not proven" in note for note in result.stats.notes)
    assert result.bound is not None and result.gap is not None and result.gap > 0
    assert result.bound <= best + 1e-6 <= result.cost.total + 2e-6


def test_a_mip_stopped_at_its_deadline_bounds_the_optimum(
    crowd: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-order MIP cut short: its answer and bound bracket the optimum."""
    best = optimum(crowd)
    monkeypatch.setattr(dp, "BB_FLOW_LIMIT", 1)
    mip = heuristics._solve_residual_mip
    gaps: list[float | None] = []

    def short_mip(*args: Any, **kwargs: Any) -> Any:
        out = mip(*args, **{**kwargs, "seconds": 0.001})
        gaps.append(None if out is None else out[2])
        return out

    monkeypatch.setattr(heuristics, "_solve_residual_mip", short_mip)
    result = allocate(crowd, AllocationParams(mode="online", explain=False))
    assert len(gaps) == 1
    assert result.bound is not None
    assert result.bound <= best + 1e-6 <= result.cost.total + 2e-6
    if gaps[0] is not None:  # cut short (not certain on a fast machine)
        assert result.status == AllocationStatus.FEASIBLE
    shipped: dict[str, int] = {}
    for a in result.assignments:
        shipped[a.node_id] = shipped.get(a.node_id, 0) + a.quantity
    caps = {n.id: n.capacity_units for n in crowd.nodes}
    assert all(units <= (caps[node] or 0) for node, units in shipped.items())


def test_one_order_mips_run_no_later_than_the_deadline(
    crowd: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each one-order MIP of a call (its solve and its explanation) gets only the time left."""
    monkeypatch.setattr(dp, "BB_FLOW_LIMIT", 1)
    mip = heuristics._solve_residual_mip
    ends: list[float] = []

    def timed_mip(*args: Any, **kwargs: Any) -> Any:
        ends.append(time.perf_counter() + kwargs["seconds"])
        return mip(*args, **kwargs)

    monkeypatch.setattr(heuristics, "_solve_residual_mip", timed_mip)
    # the call's own clock: a test clock read before the call can be a context switch earlier
    # than the call's (a loaded machine once made that 0.5 ms: "0.5005 s > 0.5 s")
    starts: list[float] = []
    inner = solve_mod._allocate

    def timed_allocate(request: Any, params: Any, start: float) -> Any:
        starts.append(start)
        return inner(request, params, start)

    monkeypatch.setattr(solve_mod, "_allocate", timed_allocate)
    limit_s = 0.5
    result = allocate(crowd, AllocationParams(mode="online", time_limit_s=limit_s))
    assert ends, "the capped order went to a one-order MIP"
    assert len(starts) == 1
    # as in test_a_few_crowded_orders_start_no_one_order_mip_past_the_limit: a MIP's end is
    # taken a moment after its caller measured the time left (7 us over once, on two xdist
    # workers); the defect this guards against gave MIPs a whole budget (seconds, not ms)
    assert max(ends) <= starts[0] + limit_s + 0.1
    assert len(result.explanations) == 1


def test_explanations_stop_at_their_budget(
    crowd: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spent explanation budget leaves alternatives unsearched, never a MIP past it."""
    calls: list[float] = []

    def no_mip(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["seconds"])
        return None

    prob = compile_request(crowd)
    arcs, qty, _lower = solve_residual(prob, 0, Residual(prob), *real_costs(prob))
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    x[arcs] = qty
    monkeypatch.setattr(heuristics, "_solve_residual_mip", no_mip)
    explanations, _unfilled = explain.explain(prob, x, budget_s=0.0)
    assert calls == []
    assert [e.order_id for e in explanations] == ["o"]
    assert explanations[0].nodes


def crowd_of(orders: int) -> AllocationRequest:
    """``orders`` crowded orders over the same 40 capped nodes."""
    base = generate_crowded_order(0, num_nodes=40, num_lines=8)
    lines = [generate_crowded_order(k, num_nodes=40, num_lines=8).orders[0] for k in range(orders)]
    return base.model_copy(
        update={"orders": [o.model_copy(update={"id": f"o{k}"}) for k, o in enumerate(lines)]}
    )


def test_pricing_past_its_deadline_bounds_without_a_mip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of time, pricing hands on the search's patterns and values that bound the exact ones."""
    prob = compile_request(crowd_of(3))
    duals = Duals.zeros(prob)
    monkeypatch.setattr(dp, "BB_FLOW_LIMIT", 1)
    exact = Pricer(prob).price(duals)

    def no_mip(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a pricing MIP past the deadline")

    monkeypatch.setattr(master_mod, "price_order_mip", no_mip)
    late = Pricer(prob).price(duals, deadline=0.0)
    assert np.all(late.value <= exact.value + 1e-6)
    assert not late.exact


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_a_few_crowded_orders_start_no_one_order_mip_past_the_limit(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm starts and pricing of a few orders run their one-order MIPs within the limit."""
    monkeypatch.setattr(dp, "BB_FLOW_LIMIT", 1)
    ends: list[float] = []
    residual_mip, pricing_mip = heuristics._solve_residual_mip, master_mod.price_order_mip

    def timed_residual(*args: Any, **kwargs: Any) -> Any:
        ends.append(time.perf_counter() + kwargs["seconds"])
        return residual_mip(*args, **kwargs)

    def timed_pricing(*args: Any, **kwargs: Any) -> Any:
        ends.append(time.perf_counter() + args[4])
        return pricing_mip(*args, **kwargs)

    monkeypatch.setattr(heuristics, "_solve_residual_mip", timed_residual)
    monkeypatch.setattr(master_mod, "price_order_mip", timed_pricing)
    limit_s = 0.5
    start = time.perf_counter()
    result = allocate(crowd_of(3), AllocationParams(mode=mode, time_limit_s=limit_s))
    # a MIP's end is taken a moment after its caller measured the time left (1-5 ms under
    # load); the defect this guards against gave MIPs a whole budget (seconds, not ms)
    assert ends and max(ends) <= start + limit_s + 0.1
    assert len(result.explanations) == 3
    if result.bound is not None:
        assert result.bound <= result.cost.total + 1e-6


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    req=requests(max_orders=3) | tight_requests(max_orders=2),
    mode=st.sampled_from(["online", "batch"]),
    mip_answers=st.booleans(),
)
def test_answers_cut_short_stay_valid_and_bound_the_optimum(
    req: AllocationRequest, mode: str, mip_answers: bool
) -> None:
    """Searches stopped at once and MIPs cut short: valid answers, bounds below the optimum."""
    mip = heuristics._solve_residual_mip

    def short_mip(*args: Any, **kwargs: Any) -> Any:
        # cut short, or (as when HiGHS holds no answer at its limit) nothing at all
        return mip(*args, **{**kwargs, "seconds": 0.0005}) if mip_answers else None

    search = heuristics.solve_order_bb

    def stopped_search(*args: Any, **kwargs: Any) -> Any:
        return search(*args, **{**kwargs, "node_limit": 0})  # its root's bound only

    with (
        patch.object(heuristics, "solve_order_bb", stopped_search),
        patch.object(heuristics, "_solve_residual_mip", short_mip),
    ):
        result = allocate(req, AllocationParams(mode=mode, time_limit_s=5.0))
    event(f"{mode}: {result.status.value}")
    prob = compile_request(req)
    x = allocation_vector(prob, result)
    assert prob.violations(x) == []
    assert prob.evaluate(x).total == result.cost.total_micros
    if np.prod([int(u) + 1 for u in prob.arc_ub], dtype=float) > 20_000:
        return
    best = brute_force(prob)[0] / MICRO
    if result.bound is not None:
        assert result.bound <= best + 1e-6
    if result.status == AllocationStatus.OPTIMAL:
        # "optimal" is certified within the gap target (mip_rel_gap, 1e-4 by default): an
        # answer of 3.000061 over an optimum of 3.0 is one (hypothesis found it once)
        gap = AllocationParams().mip_rel_gap
        assert best - 1e-6 <= result.cost.total <= best / (1.0 - gap) + 1e-6
