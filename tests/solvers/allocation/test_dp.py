"""The subset DP by popcount levels equals the mask-by-mask DP it replaced, bit for bit; the
one-order branch and bound stops at its deadline before walking its arcs node by node."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.allocation import AllocationCosts, AllocationRequest, dp
from solvers.allocation.dp import INF, _subset_tables, counted_dp, solve_order_bb, subset_dp
from solvers.allocation.heuristics import real_costs
from solvers.allocation.problem import Problem, compile_request

from .conftest import node, order


def _reference(block_cost: np.ndarray, n_lines: int) -> tuple[np.ndarray, np.ndarray]:
    """The DP one mask at a time (the code before the levels)."""
    _inc, subs, low = _subset_tables(n_lines)
    b, size = block_cost.shape[0], 1 << n_lines
    g1 = np.full((b, size), INF)
    g1[:, 0] = 0.0
    choice1 = np.zeros((b, size), dtype=np.int32)
    for mask in range(1, size):
        best1 = g1[:, mask ^ (1 << int(low[mask]))]
        s = subs[mask]
        cand1 = block_cost[:, s] + g1[:, mask ^ s]
        arg1 = np.argmin(cand1, axis=1)
        val1 = cand1[np.arange(b), arg1]
        better1 = val1 < best1
        g1[:, mask] = np.where(better1, val1, best1)
        choice1[:, mask] = np.where(better1, arg1 + 1, 0)
    return g1, choice1


def _reference_counted(
    block_cost: np.ndarray, n_lines: int, k_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """The counting DP one mask at a time (the code before the levels)."""
    _inc, subs, low = _subset_tables(n_lines)
    b, size = block_cost.shape[0], 1 << n_lines
    g = np.full((b, size, k_max + 1), INF)
    g[:, 0, 0] = 0.0
    choice = np.zeros((b, size, k_max + 1), dtype=np.int32)
    for mask in range(1, size):
        lb_mask = mask ^ (1 << int(low[mask]))
        best = g[:, lb_mask, :].copy()
        pick = np.zeros((b, k_max + 1), dtype=np.int32)
        s = subs[mask]
        cand = block_cost[:, s][:, :, None] + g[:, mask ^ s, :-1]
        arg = np.argmin(cand, axis=1)
        val = np.take_along_axis(cand, arg[:, None, :], axis=1)[:, 0, :]
        better = val < best[:, 1:]
        best[:, 1:] = np.where(better, val, best[:, 1:])
        pick[:, 1:] = np.where(better, arg + 1, 0)
        g[:, mask, :] = best
        choice[:, mask, :] = pick
    return g, choice


def _costs(seed: int, orders: int, n_lines: int, ties: bool) -> np.ndarray:
    """Block costs with gains (negative), dear blocks and forbidden (INF) ones."""
    rng = np.random.default_rng(seed)
    size = 1 << n_lines
    cost = rng.normal(-1.0, 2.0, size=(orders, size))
    if ties:  # few distinct values: many equal candidates, so the tie-breaking shows
        cost = np.round(cost)
    cost[rng.random((orders, size)) < 0.2] = INF
    cost[:, 0] = 0.0
    return cost


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    orders=st.integers(1, 6),
    n_lines=st.integers(1, 7),
    ties=st.booleans(),
)
def test_levels_equal_the_mask_by_mask_dp(seed: int, orders: int, n_lines: int, ties: bool) -> None:
    """Same values and same choices (ties broken alike), so the same patterns."""
    cost = _costs(seed, orders, n_lines, ties)
    g, choice = subset_dp(cost, n_lines)
    g_ref, choice_ref = _reference(cost, n_lines)
    assert np.array_equal(g, g_ref)
    assert np.array_equal(choice, choice_ref)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    orders=st.integers(1, 6),
    n_lines=st.integers(1, 7),
    k_max=st.integers(1, 7),
    ties=st.booleans(),
)
def test_counted_levels_equal_the_mask_by_mask_dp(
    seed: int, orders: int, n_lines: int, k_max: int, ties: bool
) -> None:
    """Same per-count values and choices as the counting DP one mask at a time."""
    k_max = min(k_max, n_lines)
    cost = _costs(seed, orders, n_lines, ties)
    g, choice = counted_dp(cost, n_lines, k_max)
    g_ref, choice_ref = _reference_counted(cost, n_lines, k_max)
    assert np.array_equal(g, g_ref)
    assert np.array_equal(choice, choice_ref)


@pytest.mark.parametrize("counted", [False, True])
def test_levels_cut_into_pieces_give_the_same_tables(
    monkeypatch: pytest.MonkeyPatch, counted: bool
) -> None:
    """A level cut into one-mask pieces (the memory cap) changes nothing, at ten lines."""
    cost = _costs(7, 3, 10, ties=True)

    def run() -> tuple[np.ndarray, np.ndarray]:
        return counted_dp(cost, 10, 4) if counted else subset_dp(cost, 10)

    whole = run()
    monkeypatch.setattr(dp, "LEVEL_FLOATS", 1)
    pieces = run()
    ref = _reference_counted(cost, 10, 4) if counted else _reference(cost, 10)
    for i in range(2):
        assert np.array_equal(whole[i], ref[i])
        assert np.array_equal(pieces[i], ref[i])


def test_subset_tables_list_each_masks_submasks_with_its_lowest_bit() -> None:
    """The incidence rows are the masks' bits; each list holds exactly the right submasks."""
    inc, subs, low = _subset_tables(5)
    for mask in range(1, 32):
        assert [int(v) for v in inc[mask]] == [(mask >> i) & 1 for i in range(5)]
        lb = 1 << int(low[mask])
        assert mask & lb and not mask & (lb - 1)
        want = {s for s in range(1, mask + 1) if s & mask == s and s & lb}
        assert sorted(subs[mask].tolist()) == sorted(want)
        assert len(subs[mask]) == len(want)


def _wide_order(n_nodes: int, n_skus: int) -> Problem:
    """One order of ``n_skus`` lines of 2 units over ``n_nodes`` nodes each holding 1 unit of
    every SKU, at distances 1..n_nodes km: every node a candidate of every line."""
    skus = [f"s{k}" for k in range(n_skus)]
    req = AllocationRequest(
        nodes=[node(f"n{i}", 0.0, 0.0, inventory=dict.fromkeys(skus, 1)) for i in range(n_nodes)],
        orders=[order("o", 0.0, 0.0, dict.fromkeys(skus, 2))],
        costs=AllocationCosts(per_shipment=1.0, per_unit=0.1, per_unit_distance=0.01),
        distance_km=[[float(i + 1)] for i in range(n_nodes)],
    )
    return compile_request(req)


@pytest.mark.parametrize("in_time_reads", [0, 1, 3])
def test_a_search_past_its_deadline_stops_before_walking_its_arcs_node_by_node(
    monkeypatch: pytest.MonkeyPatch, in_time_reads: int
) -> None:
    """An order of many arcs whose deadline passes (a stubbed clock: at once, once its
    tables are built, or deep in the search) costs a few greedy fills past it, not one per
    candidate node, 32 search nodes or two per level of the search it unwinds: 5,000 nodes
    x 30 lines ran minutes past a 2 s limit, 200 nodes x 2,000 lines 0.5 s."""
    prob = _wide_order(60, 40)  # 2,400 arcs: past BB_CLOCK_EVERY_NODE_ARCS
    assert prob.num_arcs > dp.BB_CLOCK_EVERY_NODE_ARCS
    reads = 0
    late_fills = 0
    greedy: Callable[..., float] = dp._greedy

    def clock() -> float:
        nonlocal reads
        reads += 1
        return 0.0 if reads <= in_time_reads else 100.0

    def counted(*args: Any) -> float:
        nonlocal late_fills
        late_fills += reads > in_time_reads
        return greedy(*args)

    monkeypatch.setattr(dp, "_greedy", counted)
    monkeypatch.setattr(dp, "time", SimpleNamespace(perf_counter=clock))
    c_arc, c_pair, split = real_costs(prob)
    value, _arcs, _qty, lower = solve_order_bb(prob, 0, c_arc, c_pair, split=split, deadline=50.0)
    assert reads > in_time_reads  # it did stop at the deadline
    assert late_fills <= 3  # the root's bound only (it was 60 standalone fills and 32 nodes)
    assert lower <= value <= 0.0  # a bound at most its answer
    monkeypatch.setattr(dp, "_greedy", greedy)
    best, *_ = solve_order_bb(prob, 0, c_arc, c_pair, split=split)
    assert lower <= best + 1e-9


def test_a_search_in_time_is_the_same_with_the_clock_read_at_every_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the clock at every node changes nothing before the deadline: same answer."""
    prob = _wide_order(12, 4)
    c_arc, c_pair, split = real_costs(prob)
    value, arcs, qty, lower = solve_order_bb(prob, 0, c_arc, c_pair, split=split, deadline=1e18)
    monkeypatch.setattr(dp, "BB_CLOCK_EVERY_NODE_ARCS", 0)
    again = solve_order_bb(prob, 0, c_arc, c_pair, split=split, deadline=1e18)
    assert again[0] == value == lower
    assert again[1].tolist() == arcs.tolist() and again[2].tolist() == qty.tolist()
