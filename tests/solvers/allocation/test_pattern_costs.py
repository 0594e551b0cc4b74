"""Pattern costs in whole-array steps equal :func:`pattern_cost` pattern by pattern."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solvers.allocation.heuristics import nearest
from solvers.allocation.master import Master, pattern_cost, pattern_costs
from solvers.allocation.problem import I64, Problem, compile_request


@cache
def city(split: float) -> Problem:
    """120 city orders over 8 nodes, with a split penalty (or without)."""
    from benchmarks.allocation import city_request

    req = city_request(6, num_orders=120, num_nodes=8)
    costs = req.costs.model_copy(update={"split_penalty": split, "late_shipment": 1.25})
    return compile_request(req.model_copy(update={"costs": costs}))


@st.composite
def patterns(draw: st.DrawFn, prob: Problem) -> tuple[list[int], list[I64], list[I64]]:
    """Orders (repeats allowed) with any of their arcs at 0-3 units, in any order."""
    orders, arcs, qty = [], [], []
    for _ in range(draw(st.integers(1, 12))):
        o = draw(st.integers(0, prob.num_orders - 1))
        own = np.arange(
            prob.pair_arc_start[prob.order_pair_start[o]],
            prob.pair_arc_start[prob.order_pair_start[o + 1]],
        )
        picked = (
            draw(st.lists(st.sampled_from(own.tolist()), unique=True, max_size=8))
            if own.size
            else []
        )
        orders.append(o)
        arcs.append(np.array(picked, dtype=np.int64))
        qty.append(np.array([draw(st.integers(0, 3)) for _ in picked], dtype=np.int64))
    return orders, arcs, qty


@pytest.mark.parametrize("split", [0.0, 2.5])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_pattern_costs_equal_the_one_by_one_costs(split: float, data: st.DataObject) -> None:
    prob = city(split)
    orders, arcs, qty = data.draw(patterns(prob))
    expected = [pattern_cost(prob, o, a, q) for o, a, q in zip(orders, arcs, qty, strict=True)]
    got = pattern_costs(prob, orders, arcs, qty)
    assert got.dtype == np.int64 and got.tolist() == expected


def test_the_master_prices_its_columns_as_pattern_cost_does() -> None:
    prob = city(2.5)
    master = Master(prob)
    empty = np.zeros(0, dtype=np.int64)
    n = prob.num_orders
    master.add(np.arange(n), [empty] * n, [empty] * n)
    master.add_solution(nearest(prob))
    pool = master.pool
    assert len(pool) > n
    for o, a, q, c in zip(pool.order, pool.arcs, pool.qty, pool.cost, strict=True):
        assert int(c) == pattern_cost(prob, int(o), a, q)
