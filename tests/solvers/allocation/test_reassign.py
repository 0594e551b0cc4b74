"""Line re-assignment over each order's open parcels (module reassign)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.sparse import coo_matrix
from scipy.sparse import vstack as sparse_vstack

from solvers.allocation import AllocationRequest
from solvers.allocation.heuristics import nearest
from solvers.allocation.literature import generate_literature
from solvers.allocation.problem import I64, Problem, compile_request
from solvers.allocation.reassign import reassign_lines

from .conftest import SIMPLE_COSTS, node, order, small_city_request
from .test_repair import arcs_of


@pytest.fixture
def chain() -> AllocationRequest:
    """Node ``a`` holds one ``s`` and one ``u``, node ``b`` (~68 km east) one ``s`` and one
    ``t``; order ``one``, at ``a``, wants ``s`` and ``u``, order ``two``, at ``b``, ``s`` and
    ``t``."""
    return AllocationRequest(
        nodes=[
            node("a", 52.0, 13.0, inventory={"s": 1, "u": 1}),
            node("b", 52.0, 14.0, inventory={"s": 1, "t": 1}),
        ],
        orders=[
            order("one", 52.0, 13.0, {"s": 1, "u": 1}),
            order("two", 52.0, 14.0, {"s": 1, "t": 1}),
        ],
        costs=SIMPLE_COSTS,
    )


def _ship(prob: Problem, plan: dict[str, dict[str, str]]) -> I64:
    """The allocation shipping each order's SKUs from the nodes ``plan`` names."""
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    for order_id, where in plan.items():
        arcs, qty = arcs_of(prob, prob.order_ids.index(order_id), where)
        x[arcs] = qty
    return x


def test_swapping_two_orders_lines_closes_a_parcel_of_each(chain: AllocationRequest) -> None:
    prob = compile_request(chain, prune=False)
    # each order ships its s from the other's node: two parcels each, and neither can
    # move alone (the s it wants is the other's); the flow swaps them (each s then
    # travels no distance), and the parcels that carried them close
    x = _ship(prob, {"one": {"s": "b", "u": "a"}, "two": {"s": "a", "t": "b"}})
    assert not prob.violations(x)
    out = reassign_lines(prob, x)
    assert np.array_equal(
        out, _ship(prob, {"one": {"s": "a", "u": "a"}, "two": {"s": "b", "t": "b"}})
    )
    assert prob.evaluate(out).shipments_per_order.tolist() == [1, 1]


def test_no_line_goes_to_a_node_its_order_does_not_ship_from(chain: AllocationRequest) -> None:
    prob = compile_request(chain, prune=False)
    # order one ships only s, from b: its s cannot move to a (a new parcel)
    x = _ship(prob, {"one": {"s": "b"}, "two": {"s": "a", "t": "b"}})
    assert np.array_equal(reassign_lines(prob, x), x)


def _restricted_lp(prob: Problem, x: I64) -> float:
    """Least ``sum gain * x`` over arcs of the pairs ``x`` uses (an LP; its matrix is a
    network's, so it has integral optima), VIP-shared units held as in ``x``."""
    used = np.bincount(prob.arc_pair, weights=x, minlength=prob.num_pairs) > 0
    arc_order = prob.pair_order[prob.arc_pair]
    held = prob.order_vip[arc_order] & (prob.vip_cap_units[prob.arc_node] >= 0)
    free = used[prob.arc_pair] & ~held
    lo = np.where(held, x, 0).astype(float)
    hi = np.where(free, prob.arc_ub, np.where(held, x, 0)).astype(float)
    n_a, n_sku = prob.num_arcs, prob.avail.shape[1]
    blocks = [  # (row of each arc, rows, right-hand sides)
        (prob.arc_line, prob.num_lines, prob.line_qty),  # units per line: its quantity
        (prob.arc_node * n_sku + prob.arc_sku, prob.avail.size, prob.avail.reshape(-1)),  # stock
        (prob.arc_node, prob.num_nodes, np.where(prob.cap_units >= 0, prob.cap_units, 10**9)),
    ]
    a_ub = sparse_vstack(
        [coo_matrix((np.ones(n_a), (row, np.arange(n_a))), shape=(n, n_a)) for row, n, _ in blocks]
    )
    rhs = np.concatenate([b for _, _, b in blocks]).astype(float)
    res = linprog(
        prob.arc_gain.astype(float),
        A_ub=a_ub,
        b_ub=rhs,
        bounds=list(zip(lo, hi, strict=True)),
        method="highs",
    )
    assert res.status == 0
    return float(res.fun)


def _check(prob: Problem, x: I64) -> I64:
    """reassign_lines' answer, checked: feasible, no new parcel, no dearer, optimal."""
    out = reassign_lines(prob, x)
    assert not prob.violations(out)
    used_in = np.bincount(prob.arc_pair, weights=x, minlength=prob.num_pairs) > 0
    used_out = np.bincount(prob.arc_pair, weights=out, minlength=prob.num_pairs) > 0
    assert not (used_out & ~used_in).any()  # parcels only close
    assert prob.evaluate(out).total <= prob.evaluate(x).total
    assert int(np.dot(prob.arc_gain, out)) == pytest.approx(_restricted_lp(prob, x), abs=1.0)
    return out


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), tight=st.booleans(), vip_share=st.booleans())
def test_city_answers_stay_feasible_and_get_the_restricted_optimum(
    seed: int, tight: bool, vip_share: bool
) -> None:
    prob = compile_request(small_city_request(seed, tight=tight, vip_share=vip_share))
    out = _check(prob, nearest(prob))
    # a second pass has nothing left to move
    assert prob.evaluate(reassign_lines(prob, out)).total == prob.evaluate(out).total


@settings(max_examples=8, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_literature_answers_get_the_restricted_optimum(seed: int) -> None:
    prob = compile_request(generate_literature(seed=seed, num_orders=40, num_nodes=5))
    _check(prob, nearest(prob))


def test_nothing_shipped_is_left_as_it_is(chain: AllocationRequest) -> None:
    prob = compile_request(chain, prune=False)
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    assert np.array_equal(reassign_lines(prob, x), x)
