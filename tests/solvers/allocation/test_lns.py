"""Integer phase of stock-only batches: rounding, neighbourhood MIPs and the certificate."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from solvers.allocation import AllocationCosts, AllocationParams, AllocationRequest, allocate
from solvers.allocation.enumerate import near_columns
from solvers.allocation.heuristics import real_costs, sequential
from solvers.allocation.highs_model import reduced_costs
from solvers.allocation.literature import generate_literature
from solvers.allocation.lns import Neighbourhoods, SubMip, certify, lp_round
from solvers.allocation.master import Master, Pricer
from solvers.allocation.problem import MICRO, compile_request

from .conftest import brute_force, node, order

SKUS = ["a", "b", "c"]


@st.composite
def unit_requests(draw: st.DrawFn) -> AllocationRequest:
    """Tiny stock-only requests with single-unit lines (the certificate's setting)."""
    nodes = [
        node(
            f"n{i}",
            50.0 + draw(st.floats(0, 2)),
            10.0 + draw(st.floats(0, 2)),
            inventory={s: draw(st.integers(0, 2)) for s in SKUS if draw(st.booleans())},
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    orders = [
        order(
            f"o{j}",
            50.0 + draw(st.floats(0, 2)),
            10.0 + draw(st.floats(0, 2)),
            dict.fromkeys(
                draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=2, unique=True)), 1
            ),
        )
        for j in range(draw(st.integers(1, 4)))
    ]
    costs = AllocationCosts(
        per_shipment=draw(st.floats(0, 20)),
        per_unit=1.0,
        per_unit_distance=draw(st.floats(0, 0.1)),
        distance_unit="km",
        unfilled_unit=draw(st.none() | st.floats(1, 60)),
    )
    return AllocationRequest(nodes=nodes, orders=orders, costs=costs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit_requests(), st.integers(0, 2**31), st.sampled_from([0.0, 0.01, 0.2]))
def test_certificate_never_bounds_above_the_optimum(
    req: AllocationRequest, seed: int, target: float
) -> None:
    """Any non-positive multipliers and any incumbent: the proved bound is valid."""
    prob = compile_request(req)
    assume(np.prod([int(u) + 1 for u in prob.arc_ub], dtype=float) <= 5_000)
    opt, _ = brute_force(prob)
    master = Master(prob)
    rng = np.random.default_rng(seed)
    duals = master.to_duals(-rng.uniform(0, 10, size=master.rows.num_coupling))
    c_arc, c_pair = reduced_costs(prob, duals)
    near = near_columns(
        prob, c_arc, c_pair, master.shared_rhs_term(duals), 0.0, per_order=10**4, total=10**6
    )
    assert near is not None
    assert near.bound <= opt / MICRO + 1e-6
    x = sequential(prob, real_costs(prob))
    proof = certify(
        prob,
        master,
        duals,
        near.bound,
        x,
        target,
        time.perf_counter() + 10.0,
        max_slack=1e9,
        seed=0,
        threads=None,
    )
    assert proof is not None
    assert proof.bound <= opt / MICRO + 1e-6
    if proof.x is not None:
        assert not prob.violations(proof.x)
    if target == 0.0 and proof.columns:
        # with the whole gap below the threshold the MIP is exact: the bound meets the optimum
        assert proof.bound >= opt / MICRO - 1e-5 * max(1.0, opt / MICRO)


def test_rounding_and_neighbourhoods_give_feasible_improving_allocations() -> None:
    req = generate_literature(seed=5, num_orders=80, num_nodes=6, num_skus=25, max_items=6)
    prob = compile_request(req)
    master, pricer = Master(prob), Pricer(prob)
    empty = np.zeros(0, dtype=np.int64)
    orders = np.arange(prob.num_orders)
    master.add(orders, [empty] * prob.num_orders, [empty] * prob.num_orders)
    for _ in range(15):
        assert master.solve_lp(10.0) == "Optimal"
        duals, _ = master.duals()
        priced = pricer.price(duals)
        if not master.add(orders, priced.arcs, priced.qty):
            break
    assert master.solve_lp(10.0) == "Optimal"
    duals, _ = master.duals()
    z = master.lp_values()
    x = lp_round(prob, master, z, duals, deadline=time.perf_counter() + 10.0)
    assert not prob.violations(x)
    lp_value = master.objective()
    assert prob.evaluate(x).total / MICRO >= lp_value - 1e-6
    master.add_solution(x)
    sub = SubMip(master, seed=0, threads=None)
    search = Neighbourhoods(prob, sub, duals, seed=0)
    start = master.column_of(x)
    better = search.run(start, time.perf_counter() + 1.0, good_enough=0)
    assert sub.total(better) <= sub.total(start)
    y = master.allocation(better)
    assert not prob.violations(y)
    assert prob.evaluate(y).total == sub.total(better)
    assert search.iterations > 0


def test_literature_batch_is_certified_and_deterministic() -> None:
    req = generate_literature(seed=2, num_orders=120, num_nodes=8, num_skus=40, max_items=6)
    params = AllocationParams(time_limit_s=20, mip_rel_gap=1e-3, explain=False, seed=1)
    a = allocate(req, params)
    b = allocate(req, params)
    assert a.gap is not None and a.gap <= 1e-3 + 1e-9
    assert a.bound is not None and a.bound <= a.cost.total + 1e-9
    assert a.cost.total_micros == b.cost.total_micros
    pyomo = allocate(req, params.model_copy(update={"backend": "pyomo", "mip_rel_gap": 0.0}))
    if pyomo.status.value == "optimal":
        assert a.bound <= pyomo.cost.total + 1e-6
