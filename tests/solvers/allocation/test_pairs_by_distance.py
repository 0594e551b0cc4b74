"""The nearest-node policy's pair order: by order, then distance, ties in pair order."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solvers.allocation import AllocationRequest
from solvers.allocation.heuristics import pairs_by_distance
from solvers.allocation.problem import I64, Problem, compile_request

from .conftest import node, order


def reference_order(prob: Problem) -> I64:
    """The order as it was computed before: one lexsort over every pair."""
    pair = np.arange(prob.num_pairs)
    owner = np.repeat(np.arange(prob.num_orders), np.diff(prob.order_pair_start))
    dist = prob.dist_km[prob.pair_node, owner]
    return np.lexsort((pair, dist, owner))


@st.composite
def crowded(draw: st.DrawFn) -> AllocationRequest:
    """Nodes on a few shared spots (distance ties), orders of a few lines, some with no pair."""
    spots = [(52.0, 13.0), (52.1, 13.0), (52.0, 13.2)]
    nodes = [
        node(
            f"n{i}",
            *draw(st.sampled_from(spots)),
            inventory={s: draw(st.integers(0, 3)) for s in "abc"},
        )
        for i in range(draw(st.integers(1, 7)))
    ]
    orders = []
    for j in range(draw(st.integers(1, 6))):
        skus = sorted(draw(st.sets(st.sampled_from("abcd"), min_size=1)))
        lines = {s: draw(st.integers(1, 2)) for s in skus}
        orders.append(order(f"o{j}", *draw(st.sampled_from(spots)), lines))
    return AllocationRequest(nodes=nodes, orders=orders)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crowded())
def test_pairs_by_distance_equals_the_lexsort(req: AllocationRequest) -> None:
    prob = compile_request(req)
    assert np.array_equal(pairs_by_distance(prob), reference_order(prob))


def test_pairs_by_distance_on_the_city() -> None:
    from benchmarks.allocation import city_request

    prob = compile_request(city_request(2, num_orders=300, num_nodes=20))
    got = pairs_by_distance(prob)
    assert got.dtype == np.int64 and got.shape == (prob.num_pairs,)
    assert np.array_equal(got, reference_order(prob))
