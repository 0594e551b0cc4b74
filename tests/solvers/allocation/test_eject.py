"""Ejection moves: room for an order made by moving other orders' lines (module eject)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.model import NodeKind
from solvers.allocation import AllocationRequest
from solvers.allocation.eject import Ejector
from solvers.allocation.heuristics import nearest
from solvers.allocation.problem import compile_request

from .conftest import SIMPLE_COSTS, brute_force, node, order, small_city_request
from .test_repair import arcs_of


@pytest.fixture
def full_dc() -> AllocationRequest:
    """The DC alone holds SKU ``r`` but ships one unit a day, which the common order, whose
    SKU the store next door holds too, takes for the DC's cheaper handling."""
    return AllocationRequest(
        nodes=[
            node("dc", 52.0, 13.0, inventory={"a": 5, "r": 5}, capacity_units=1),
            node(
                "store",
                52.0,
                13.0,
                kind=NodeKind.STORE,
                inventory={"a": 5},
                handling_cost_per_unit=0.5,
            ),
        ],
        orders=[
            order("common", 52.0, 13.0, {"a": 1}),
            order("rare", 52.0, 13.0, {"r": 1}),
        ],
        costs=SIMPLE_COSTS,
    )


def test_the_rare_order_gets_the_full_dc_and_the_common_one_moves(
    full_dc: AllocationRequest,
) -> None:
    prob = compile_request(full_dc, prune=False)
    common, rare = prob.order_ids.index("common"), prob.order_ids.index("rare")
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    arcs, qty = arcs_of(prob, common, {"a": "dc"})
    x[arcs] = qty  # the rare order is left unfilled: the DC is full
    assert not prob.violations(x)
    ejector = Ejector(prob, np.zeros(prob.num_orders))
    out = ejector.run(x, deadline=10.0**9)
    assert not prob.violations(out)
    assert ejector.wins == 1
    assert prob.evaluate(out).total == brute_force(prob)[0]
    store_a, _ = arcs_of(prob, common, {"a": "store"})
    dc_r, _ = arcs_of(prob, rare, {"r": "dc"})
    assert out[store_a].tolist() == [1] and out[dc_r].tolist() == [1]


def test_no_move_when_the_room_costs_more_than_it_saves(full_dc: AllocationRequest) -> None:
    # the store's handling makes moving the common order dearer than leaving r unfilled
    dear = full_dc.model_copy(
        update={
            "nodes": [
                full_dc.nodes[0],
                full_dc.nodes[1].model_copy(update={"handling_cost_per_unit": 80.0}),
            ]
        }
    )
    prob = compile_request(dear, prune=False)
    common = prob.order_ids.index("common")
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    arcs, qty = arcs_of(prob, common, {"a": "dc"})
    x[arcs] = qty
    ejector = Ejector(prob, np.zeros(prob.num_orders))
    out = ejector.run(x, deadline=10.0**9)
    assert ejector.wins == 0
    assert np.array_equal(out, x)


@settings(max_examples=16, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), tight=st.booleans(), vip_share=st.booleans())
def test_ejection_keeps_every_limit_and_never_costs_more(
    seed: int, tight: bool, vip_share: bool
) -> None:
    prob = compile_request(small_city_request(seed, tight=tight, vip_share=vip_share))
    x = nearest(prob)
    assert not prob.violations(x)
    ejector = Ejector(prob, np.zeros(prob.num_orders))  # every order a candidate
    out = ejector.run(x, deadline=10.0**9)
    assert ejector.dropped == 0  # no move broke a limit or lost
    assert not prob.violations(out)
    # each move's own account of its gain adds up to the answer's cost
    assert prob.evaluate(out).total == prob.evaluate(x).total - ejector.gained
    # the loads it kept track of are the answer's
    kept = (ejector.free.copy(), ejector.units.copy(), ejector.parcels.copy())
    shipping = [sorted(arcs) for arcs in ejector.node_arcs]
    ejector._load(out)
    assert shipping == [sorted(arcs) for arcs in ejector.node_arcs]
    assert all(
        np.array_equal(a, b)
        for a, b in zip(kept, (ejector.free, ejector.units, ejector.parcels), strict=True)
    )
    # a second run from its own answer starts where the first ended
    again = ejector.run(out, deadline=10.0**9)
    assert ejector.dropped == 0
    assert prob.evaluate(again).total <= prob.evaluate(out).total
