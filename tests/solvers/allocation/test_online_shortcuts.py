"""Shortcuts of the online answer: each says what the full computation says."""

from __future__ import annotations

import random
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from solvers.allocation import AllocationParams, AllocationRequest, allocate
from solvers.allocation.explain import explain, lone_order_optimum
from solvers.allocation.heuristics import Residual, real_costs, solve_residual
from solvers.allocation.highs_model import (
    SMALL_MIP_OPTIONS,
    Duals,
    coupling_rows,
    shared_rows_bind,
)
from solvers.allocation.master import pattern_cost
from solvers.allocation.problem import Problem, compile_request
from solvers.allocation.solve import _lp_duals, shadow_prices

from .test_properties import requests

CHECKS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def ample_requests(draw: st.DrawFn) -> AllocationRequest:
    """:func:`requests` with every stocked SKU at 10+ units and capacities lifted or ample."""
    req = draw(requests(max_orders=3))
    nodes = [
        n.model_copy(
            update={
                "inventory": {s: draw(st.integers(10, 20)) for s in n.inventory},
                "capacity_units": draw(st.none() | st.integers(30, 40)),
                "capacity_orders": draw(st.none() | st.integers(4, 6)),
            }
        )
        for n in req.nodes
    ]
    return req.model_copy(update={"nodes": nodes})


@CHECKS
@given(ample_requests())
def test_no_binding_row_means_no_shadow_price(req: AllocationRequest) -> None:
    """Where no stock or capacity row can bind, the LP prices every one at zero, as answered."""
    params = AllocationParams(time_limit_s=5.0, mode="online")
    prob = compile_request(req)
    # otherwise there is nothing to price, or the LP is solved (unchanged paths)
    assume(prob.num_pairs > 0 and not coupling_rows(prob, kind="shared").num_coupling)
    duals, _ = _lp_duals(prob, params, 5.0)
    assert duals is not None
    for dual in (
        duals.stock,
        duals.cap_units,
        duals.cap_orders,
        duals.vip_units,
        duals.vip_orders,
    ):
        assert np.all(dual > -1e-9)
    result = allocate(req, params)
    assert result.shadow_prices == []
    assert not any("shadow" in note for note in result.stats.notes)


@CHECKS
@given(requests(max_orders=1))
def test_lone_order_optimum_explains_as_the_search_does(req: AllocationRequest) -> None:
    """Explanations of a lone order's online answer are the same with the shortcut."""
    prob = compile_request(req)
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    arcs, qty, _lower = solve_residual(prob, 0, Residual(prob), *real_costs(prob))
    x[arcs] = qty
    known = lone_order_optimum(prob, x)
    event("shortcut taken" if known is not None else "no shortcut")
    searched = explain(prob, x)
    shortcut = explain(prob, x, unconstrained=known)
    assert shortcut == searched
    if known is not None:  # the alternatives searched on the request's own stock, too
        assert explain(prob, x, unconstrained=known, lone_uncapped=True) == searched


@CHECKS
@given(requests())
def test_shared_rows_bind_says_what_the_coupling_rows_say(req: AllocationRequest) -> None:
    """The answer's check for binding stock or capacity rows is the compact model's."""
    prob = compile_request(req)
    assert shared_rows_bind(prob) == bool(coupling_rows(prob, kind="shared").num_coupling)


@CHECKS
@given(requests(), st.randoms(use_true_random=False))
def test_zero_duals_price_nothing(req: AllocationRequest, rng: random.Random) -> None:
    """All-zero duals give no shadow price (the early return), whatever the allocation."""
    prob = compile_request(req)
    x = np.array([rng.randint(0, int(ub)) for ub in prob.arc_ub], dtype=np.int64)
    assert shadow_prices(prob, Duals.zeros(prob), x) == []


def _violations_by_hand(prob: Problem, x: np.ndarray) -> set[str]:
    """The capacity limits ``x`` breaks, counted arc by arc (the oracle)."""
    out = set()
    for n in range(prob.num_nodes):
        arcs = [a for a in range(prob.num_arcs) if prob.arc_node[a] == n]
        opened = {int(prob.arc_pair[a]) for a in arcs if x[a] > 0}
        vip = [a for a in arcs if prob.order_vip[prob.pair_order[prob.arc_pair[a]]]]
        vip_opened = {p for p in opened if prob.order_vip[prob.pair_order[p]]}
        for name, load, cap in (
            ("capacity_units", sum(int(x[a]) for a in arcs), prob.cap_units[n]),
            ("capacity_orders", len(opened), prob.cap_orders[n]),
            ("vip units", sum(int(x[a]) for a in vip), prob.vip_cap_units[n]),
            ("vip orders", len(vip_opened), prob.vip_cap_orders[n]),
        ):
            if 0 <= cap < load:
                out.add(f"{name} exceeded")
    return out


@CHECKS
@given(requests(), st.randoms(use_true_random=False))
def test_violations_name_every_capacity_limit_broken(
    req: AllocationRequest, rng: random.Random
) -> None:
    """Problem.violations (which skips VIP loads without a VIP share) names every limit."""
    prob = compile_request(req, prune=False)
    x = np.array([rng.randint(0, int(ub)) for ub in prob.arc_ub], dtype=np.int64)
    found = {v for v in prob.violations(x) if "capacity" in v or "vip" in v}
    assert found == _violations_by_hand(prob, x)


def test_fast_warm_starts_try_the_subset_dp_before_the_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the search first made the bid-price myopic pass of a 30,000-order batch take its
    # whole budget; exact one-order solves (online, polish) keep the search first
    import solvers.allocation.heuristics as heuristics
    from solvers.allocation.literature import generate_literature

    prob = compile_request(generate_literature(seed=1, num_orders=40, num_nodes=6, max_items=3))
    calls: list[int] = []
    real = heuristics.solve_order_bb

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(heuristics, "solve_order_bb", counted)
    costs = real_costs(prob)
    solved: dict[bool, list[tuple[np.ndarray, np.ndarray, float | None]]] = {}
    for exact in (False, True):
        calls.clear()
        solved[exact] = [
            solve_residual(prob, o, Residual(prob), *costs, exact=exact)
            for o in range(prob.num_orders)
        ]
        assert all(not prob.violations(_alone(prob, a, q)) for a, q, _ in solved[exact])
        if exact:
            assert len(calls) == prob.num_orders  # uncapped: the search, once per order
            assert all(proof is None for _a, _q, proof in solved[exact])
        else:
            assert len(calls) < prob.num_orders  # the DP settles the orders it solves exactly
    # a fast answer said to be proven costs what the exact one costs
    for o, ((a, q, proof), (ea, eq, _)) in enumerate(zip(solved[False], solved[True], strict=True)):
        if proof is None:
            assert pattern_cost(prob, o, a, q) == pattern_cost(prob, o, ea, eq)


def _alone(prob: Problem, arcs: np.ndarray, qty: np.ndarray) -> np.ndarray:
    """The allocation of one pattern."""
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    x[arcs] = qty
    return x


@st.composite
def capacity_short_requests(draw: st.DrawFn) -> AllocationRequest:
    """One order of 2+ units; some nodes may ship part of it only (the one-order MIP's case)."""
    req = draw(requests(max_orders=1))
    units = sum(line.quantity for line in req.orders[0].lines)
    assume(units >= 2)
    nodes = [
        n.model_copy(update={"capacity_units": draw(st.integers(1, units - 1))})
        if draw(st.booleans())
        else n
        for n in req.nodes
    ]
    return req.model_copy(update={"nodes": nodes})


@CHECKS
@given(req=capacity_short_requests())
def test_lean_one_order_mips_answer_as_highs_defaults_do(req: AllocationRequest) -> None:
    # the one-order MIP runs on one thread without HiGHS' primal heuristics (which took
    # 0.2 s on a 42-column model); both are exact, so the cost cannot move
    import solvers.allocation.heuristics as heuristics

    runs: list[int] = []
    real = heuristics._solve_residual_mip

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return real(*args, **kwargs)

    params = AllocationParams(mode="online", explain=False)
    # the branch and bound stops at once, so that the one-order MIP answers
    with (
        patch.object(heuristics, "BB_NODE_LIMIT", 0),
        patch.object(heuristics, "_solve_residual_mip", counted),
    ):
        lean = allocate(req, params)
        event("one-order MIP ran" if runs else "answered without a MIP")
        with patch.dict(SMALL_MIP_OPTIONS, clear=True):
            default = allocate(req, params)
    assert lean.cost.total == pytest.approx(default.cost.total, abs=1e-6)


def _capacity_short(n_orders: int) -> AllocationRequest:
    """Two DCs; n0 holds every unit but may ship 2 (a MIP decides the orders' split)."""
    dc = {"kind": "dc", "inventory": {"a": 9, "b": 9}}
    return AllocationRequest.model_validate(
        {
            "nodes": [
                {**dc, "id": "n0", "location": {"lat": 50.0, "lon": 10.0}, "capacity_units": 2},
                {**dc, "id": "n1", "location": {"lat": 51.0, "lon": 11.0}},
            ],
            "orders": [
                {
                    "id": f"o{k}",
                    "location": {"lat": 50.0, "lon": 10.1 + 0.01 * k},
                    "lines": [{"sku": "a", "quantity": 2}, {"sku": "b", "quantity": 1}],
                }
                for k in range(n_orders)
            ],
        }
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(req=capacity_short_requests())
def test_capped_search_answers_a_lone_order_as_its_mip_does(req: AllocationRequest) -> None:
    # a node that may ship part of the order only: the branch and bound (a min-cost flow
    # fills its open nodes) answers instead of the one-order MIP, at the MIP's cost
    import solvers.allocation.heuristics as heuristics

    prob = compile_request(req)
    costs = real_costs(prob)
    runs: list[int] = []
    real = heuristics._solve_residual_mip

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return real(*args, **kwargs)

    with patch.object(heuristics, "_solve_residual_mip", counted):
        arcs, qty, _lower = solve_residual(prob, 0, Residual(prob), *costs)
    assert not runs  # within the search's node limit: no MIP
    mip = real(prob, 0, Residual(prob), costs[0], costs[1])
    assert mip is not None and mip[2] is None  # proven optimal
    mip_arcs, mip_qty = mip[0], mip[1]
    assert not prob.violations(_alone(prob, arcs, qty))
    assert pattern_cost(prob, 0, arcs, qty) == pattern_cost(prob, 0, mip_arcs, mip_qty)


@pytest.mark.parametrize("n_orders", [1, 3])
def test_small_online_mips_run_lean_on_one_thread(
    monkeypatch: pytest.MonkeyPatch, n_orders: int
) -> None:
    import solvers.allocation.heuristics as heuristics
    import solvers.allocation.highs_model as highs_model

    if n_orders == 1:  # one order: the MIP runs where the search stops at its node limit
        monkeypatch.setattr(heuristics, "BB_NODE_LIMIT", 0)
    seen: list[dict[str, Any]] = []
    real = highs_model.run_highs

    def recorded(h: Any) -> Any:
        if h.getLp().integrality_:
            seen.append({name: h.getOptionValue(name)[1] for name in SMALL_MIP_OPTIONS})
        return real(h)

    monkeypatch.setattr(highs_model, "run_highs", recorded)
    res = allocate(_capacity_short(n_orders), AllocationParams(mode="online", threads=2))
    assert seen and all(options == SMALL_MIP_OPTIONS for options in seen)
    assert sum(a.quantity for a in res.assignments) == 3 * n_orders
