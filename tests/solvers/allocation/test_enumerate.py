"""Reduced-cost pattern listing: complete against brute force, exact per-order optimum."""

from __future__ import annotations

import itertools
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.allocation import AllocationRequest
from solvers.allocation.enumerate import enumerable, near_columns, order_patterns
from solvers.allocation.highs_model import Duals, reduced_costs
from solvers.allocation.literature import generate_literature
from solvers.allocation.master import Master, Pricer
from solvers.allocation.problem import F64, MICRO, Problem, compile_request

from .conftest import node, nodes_in_a_row, order, priced_one_order

SKUS = ["a", "b", "c", "d"]


@st.composite
def one_order_under_prices(draw: st.DrawFn) -> tuple[Problem, F64, F64, float]:
    """One order of single-unit lines over a few nodes, random stock and prices, a slack."""
    n_nodes = draw(st.integers(1, 5))
    skus = SKUS[: draw(st.integers(1, 4))]
    nodes = nodes_in_a_row(draw, n_nodes, skus, spacing=0.5, places=4, max_units=2)
    prob, duals = priced_one_order(draw, nodes, dict.fromkeys(skus, 1))
    c_arc, c_pair = reduced_costs(prob, duals)
    return prob, c_arc, c_pair, draw(st.floats(0, 30))


def _every_pattern(prob: Problem, c_arc: F64, c_pair: F64) -> dict[tuple[int, ...], float]:
    """Value of every pattern of order 0 (each line to one arc or unfilled), by brute force."""
    split = prob.split / MICRO
    choices = []
    for line in prob.order_lines(0):
        arcs = [
            a
            for p in prob.order_pairs(0)
            for a in prob.pair_arcs(p)
            if prob.arc_line[a] == line and prob.arc_ub[a] >= 1
        ]
        choices.append([-1, *arcs])
    out: dict[tuple[int, ...], float] = {}
    for pick in itertools.product(*choices):
        arcs = [a for a in pick if a >= 0]
        pairs = {int(prob.arc_pair[a]) for a in arcs}
        if 0 < prob.max_nodes < len(pairs):
            continue
        value = sum(float(c_arc[a]) for a in arcs) + sum(float(c_pair[p]) for p in pairs)
        value += split * max(len(pairs) - 1, 0)
        out[tuple(sorted(arcs))] = value
    return out


@settings(max_examples=80, deadline=None)
@given(one_order_under_prices())
def test_listing_is_complete_and_its_optimum_exact(
    case: tuple[Problem, F64, F64, float],
) -> None:
    prob, c_arc, c_pair, slack = case
    assert enumerable(prob)
    every = _every_pattern(prob, c_arc, c_pair)
    best = min(every.values())
    listed = order_patterns(prob, 0, c_arc, c_pair, slack, limit=10**6)
    assert listed is not None and listed.complete
    assert abs(listed.best - best) < 1e-9
    got = {tuple(sorted(a.tolist())): v for a, v in zip(listed.arcs, listed.values, strict=True)}
    want = {k: v for k, v in every.items() if v <= best + slack + 1e-9}
    assert set(got) == set(want)
    for k, v in got.items():
        assert abs(v - every[k]) < 1e-9
    for q in listed.qty:
        assert np.all(q == 1)


def test_lagrangian_value_matches_the_pricing_and_limits_are_honoured() -> None:
    req = generate_literature(seed=3, num_orders=40, num_nodes=5, num_skus=15, max_items=5)
    prob = compile_request(req)
    master, pricer = Master(prob), Pricer(prob)
    rng = np.random.default_rng(0)
    pi = -rng.uniform(0, 3, size=master.rows.num_coupling)
    duals = master.to_duals(pi)
    c_arc, c_pair = reduced_costs(prob, duals)
    rhs = master.shared_rhs_term(duals)
    near = near_columns(prob, c_arc, c_pair, rhs, 1.0, per_order=10**4, total=10**6)
    assert near is not None and near.complete
    priced = pricer.price(duals)
    assert abs(near.bound - (float(priced.value.sum()) + rhs)) < 1e-6
    few = near_columns(prob, c_arc, c_pair, rhs, 50.0, per_order=2, total=10**6)
    assert few is not None and not few.complete
    assert np.bincount(few.orders, minlength=prob.num_orders).max() <= 2
    assert near_columns(prob, c_arc, c_pair, rhs, 50.0, per_order=10, total=20) is None
    # a deadline already past: nothing listed (the certify script's --listing-seconds)
    past = time.perf_counter() - 1.0
    assert (
        near_columns(prob, c_arc, c_pair, rhs, 1.0, per_order=10**4, total=10**6, deadline=past)
        is None
    )
    later = time.perf_counter() + 600.0
    again = near_columns(
        prob, c_arc, c_pair, rhs, 1.0, per_order=10**4, total=10**6, deadline=later
    )
    assert again is not None and again.bound == near.bound and len(again.orders) == len(near.orders)


def test_lines_of_several_units_are_not_enumerable() -> None:
    req = AllocationRequest(
        nodes=[node("n", 50.0, 10.0, inventory={"a": 5})],
        orders=[order("o", 50.0, 10.0, {"a": 2})],
    )
    prob = compile_request(req)
    assert not enumerable(prob)
    c_arc, c_pair = reduced_costs(prob, Duals.zeros(prob))
    listed = order_patterns(prob, 0, c_arc, c_pair, 5.0, limit=100)
    assert listed is not None and not listed.complete
