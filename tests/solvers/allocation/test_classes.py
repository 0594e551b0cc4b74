"""Classes of identical orders (large batches): one master row and one pricing per class.

The aggregation is exact: the Lagrangian bound from pricing one order per class equals the
per-order bound at any multipliers and never exceeds the optimum (brute force), the class
master LP has the per-order master LP's value, and its solution spread over the members
keeps the objective and the stock use.
"""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from solvers.allocation import AllocationParams, AllocationRequest, allocate, batch
from solvers.allocation.highs_model import Duals
from solvers.allocation.master import Master, Pricer, order_classes
from solvers.allocation.problem import MICRO, compile_request

from .conftest import brute_force
from .test_properties import requests

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def repeated(draw: st.DrawFn) -> AllocationRequest:
    """A small request whose orders repeat (copies under new ids, shuffled)."""
    req = draw(requests(max_orders=3))
    copies = [draw(st.integers(0, 2)) for _ in req.orders]
    orders = list(req.orders)
    for o, k in zip(req.orders, copies, strict=True):
        orders += [o.model_copy(update={"id": f"{o.id}-copy{i}"}) for i in range(k)]
    perm = draw(st.permutations(range(len(orders))))
    return req.model_copy(update={"orders": [orders[i] for i in perm]})


def _random_duals(data: st.DataObject, master: Master) -> Duals:
    prices = st.floats(0, 15)
    return master.to_duals(-np.array([data.draw(prices) for _ in range(master.rows.num_coupling)]))


@SETTINGS
@given(repeated())
def test_copies_share_a_class_and_members_match_their_representative(
    req: AllocationRequest,
) -> None:
    prob = compile_request(req)
    classes = order_classes(prob)
    by_id = {oid: i for i, oid in enumerate(prob.order_ids)}
    for oid, i in by_id.items():
        if "-copy" in oid:
            assert classes.of[i] == classes.of[by_id[oid.split("-copy")[0]]]
    assert int(classes.size.sum()) == prob.num_orders
    arc_order = prob.pair_order[prob.arc_pair]
    for o in range(prob.num_orders):
        rep = int(classes.rep[classes.of[o]])
        mine = np.nonzero(arc_order == o)[0]
        theirs = mine - classes.shift[o]
        assert np.array_equal(arc_order[theirs], np.full(mine.shape, rep))
        for arr in (prob.arc_node, prob.arc_sku, prob.arc_cost, prob.arc_ub):
            assert np.array_equal(arr[mine], arr[theirs])
        assert prob.order_vip[o] == prob.order_vip[rep]


@SETTINGS
@given(repeated(), st.data())
def test_class_lagrangian_bound_equals_per_order_bound_and_is_valid(
    req: AllocationRequest, data: st.DataObject
) -> None:
    prob = compile_request(req)
    assume(np.prod([int(u) + 1 for u in prob.arc_ub], dtype=float) <= 20_000)
    opt, _ = brute_force(prob)
    classes = order_classes(prob)
    per_order = Master(prob)
    by_class = Master(prob, classes=classes)
    pricer = Pricer(prob)
    class_pricer = Pricer(prob, orders=by_class.orders)
    for _ in range(3):
        duals = _random_duals(data, per_order)
        rhs = per_order.shared_rhs_term(duals)
        full = pricer.price(duals)
        agg = class_pricer.price(duals)
        value = per_order.total(full.value) + rhs
        assert abs(by_class.total(agg.value) + rhs - value) <= 1e-6 * max(1.0, abs(value))
        assert value <= opt / MICRO + 1e-6
        # the priced patterns use the shared rows alike
        assert np.allclose(
            per_order.shared_usage(full.arcs, full.qty), by_class.shared_usage(agg.arcs, agg.qty)
        )


@SETTINGS
@given(repeated(), st.data())
def test_class_master_lp_matches_per_order_lp_and_expands_exactly(
    req: AllocationRequest, data: st.DataObject
) -> None:
    prob = compile_request(req)
    classes = order_classes(prob)
    per_order = Master(prob)
    by_class = Master(prob, classes=classes)
    pricer = Pricer(prob)
    n_o = prob.num_orders
    empty = np.zeros(0, dtype=np.int64)
    for master in (per_order, by_class):
        master.add(np.arange(n_o), [empty] * n_o, [empty] * n_o)
    for _ in range(3):
        priced = pricer.price(_random_duals(data, per_order))
        for master in (per_order, by_class):
            master.add(np.arange(n_o), priced.arcs, priced.qty)
    for master in (per_order, by_class):
        assert master.solve_lp(10.0) == "Optimal"
    lp = per_order.objective()
    assert abs(by_class.objective() - lp) <= 1e-6 * max(1.0, abs(lp))
    z = by_class.lp_values()
    duals, _ = by_class.duals()
    full, z_full = by_class.expand(z, duals, per_class=2)
    assert z_full is not None
    cost = np.asarray(full.pool.cost, dtype=np.float64) / MICRO
    assert abs(float(cost @ z_full) - by_class.objective()) <= 1e-6 * max(1.0, abs(lp))
    use_class = by_class.usage_matrix() @ z
    use_full = full.usage_matrix() @ z_full
    assert np.allclose(use_class, use_full, atol=1e-6)
    per_member = np.bincount(np.asarray(full.col_order), weights=z_full, minlength=n_o)
    assert np.allclose(per_member, 1.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(repeated())
def test_large_batch_path_with_classes_reaches_the_optimum(req: AllocationRequest) -> None:
    """The large-batch path (classes, warm-up, class master, expansion, LP rounding)."""
    prob = compile_request(req)
    assume(np.prod([int(u) + 1 for u in prob.arc_ub], dtype=float) <= 5_000)
    opt, _ = brute_force(prob)
    with patch.object(batch, "WARMUP_ORDERS", 0):
        res = allocate(req, AllocationParams(mip_rel_gap=0.0, time_limit_s=10, explain=False))
    assert res.bound is not None and res.bound <= opt / MICRO + 1e-6
    assert res.cost.total_micros == opt
    if order_classes(prob).num_classes < prob.num_orders:
        assert any("classes of identical orders" in note for note in res.stats.notes)
