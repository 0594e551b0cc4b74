"""Audit of the shadow prices against LP relaxations built and solved independently.

For a stock or capacity row with limit b, V(b) is the optimal value of the LP relaxation the
result names (``shadow_price_lp``) with that limit changed and everything else as compiled.
Any optimal dual lies in ``[V(b) - V(b+1), V(b-1) - V(b)]``; the reported price must lie
there within ``shadow_price_tolerance``. The relaxations are built here from the compiled
arrays (every row written out, patterns enumerated, costs from ``Problem.evaluate``) and
solved with ``scipy.optimize.linprog``, not with the solver's own HiGHS models.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import solvers.allocation.batch as batch_module
from scenarios.model import NodeKind, Tier
from solvers.allocation import (
    AllocationCosts,
    AllocationParams,
    AllocationRequest,
    AllocationRules,
    allocate,
)
from solvers.allocation.highs_model import Duals
from solvers.allocation.problem import F64, MICRO, Problem, compile_request
from solvers.allocation.result import AllocationResult
from solvers.allocation.solve import shadow_prices

from .conftest import node, order

CHECKS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
#: relative slack for LP solver tolerances
REL_TOL = 1e-6

Row = tuple[str, int, int | None, int]  # resource, node, sku (stock rows), limit b


def shared_rows(prob: Problem) -> list[Row]:
    """Every stock row (node x SKU) and every capacity and VIP-share row with a limit."""
    out: list[Row] = [
        ("stock", n, s, int(prob.avail[n, s]))
        for n in range(prob.num_nodes)
        for s in range(prob.avail.shape[1])
    ]
    for name, cap in (
        ("capacity_units", prob.cap_units),
        ("capacity_orders", prob.cap_orders),
        ("vip_units", prob.vip_cap_units),
        ("vip_orders", prob.vip_cap_orders),
    ):
        out += [(name, n, None, int(cap[n])) for n in range(prob.num_nodes) if cap[n] >= 0]
    return out


def arc_use(prob: Problem, row: Row) -> F64:
    """Units of ``row`` one unit on each arc takes."""
    name, n, s, _ = row
    vip = prob.order_vip[prob.pair_order[prob.arc_pair]]
    at = prob.arc_node == n
    if name == "stock":
        return (at & (prob.arc_sku == s)).astype(float)
    if name == "capacity_units":
        return at.astype(float)
    if name == "vip_units":
        return (at & vip).astype(float)
    return np.zeros(prob.num_arcs)


def pair_use(prob: Problem, row: Row) -> F64:
    """Parcels of ``row`` each open pair takes."""
    name, n, _, _ = row
    at = prob.pair_node == n
    if name == "capacity_orders":
        return at.astype(float)
    if name == "vip_orders":
        return (at & prob.order_vip[prob.pair_order]).astype(float)
    return np.zeros(prob.num_pairs)


def _solve(cost: F64, a_ub: F64, b_ub: F64, **kw: object) -> float:
    """Optimal value of ``min cost z`` (inf when infeasible)."""
    if (b_ub < 0).any():
        return np.inf
    if not b_ub.shape[0]:
        res = linprog(cost, method="highs", **kw)
    else:
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, method="highs", **kw)
    if res.status == 2:
        return np.inf
    assert res.status == 0, res.message
    return float(res.fun)


def compact_rows(prob: Problem, rows: list[Row]) -> tuple[F64, F64]:
    """The compact model's rows ``A x <= b`` over (pairs, arcs, splits) (allocation.md,
    Model): lines, the shared ``rows`` (right after the lines), max nodes, parcels less the
    split, arc links."""
    n_p, n_a, n_o = prob.num_pairs, prob.num_arcs, prob.num_orders
    mat: list[F64] = []
    rhs: list[float] = []
    for line in range(prob.num_lines):  # sum x <= q
        mat.append(np.concatenate([np.zeros(n_p), prob.arc_line == line, np.zeros(n_o)]))
        rhs.append(float(prob.line_qty[line]))
    for row in rows:  # the shared rows (the only right-hand sides that change)
        mat.append(np.concatenate([pair_use(prob, row), arc_use(prob, row), np.zeros(n_o)]))
        rhs.append(float(row[3]))
    for o in range(n_o):  # max nodes; parcels - s <= 1
        y_o = (prob.pair_order == o).astype(float)
        if prob.max_nodes > 0:
            mat.append(np.concatenate([y_o, np.zeros(n_a + n_o)]))
            rhs.append(float(prob.max_nodes))
        mat.append(np.concatenate([y_o, np.zeros(n_a), -(np.arange(n_o) == o).astype(float)]))
        rhs.append(1.0)
    for a in range(n_a):  # x_a <= ub_a y_p
        link = np.zeros(n_p + n_a + n_o)
        link[prob.arc_pair[a]] = -float(prob.arc_ub[a])
        link[n_p + a] = 1.0
        mat.append(link)
        rhs.append(0.0)
    return np.array(mat), np.array(rhs)


def compact_lp(prob: Problem) -> Callable[[dict[int, int]], float]:
    """V of the compact LP (allocation.md, Model) over the limits of :func:`shared_rows`."""
    rows = shared_rows(prob)
    n_p, n_o = prob.num_pairs, prob.num_orders
    cost = np.concatenate(
        [prob.pair_fixed / MICRO, prob.arc_gain / MICRO, np.full(n_o, prob.split / MICRO)]
    )
    a_ub, b = compact_rows(prob, rows)
    bounds = [(0.0, 1.0)] * n_p + [(0.0, float(u)) for u in prob.arc_ub] + [(0.0, None)] * n_o
    first = prob.num_lines

    def value(change: dict[int, int]) -> float:
        b_new = b.copy()
        for i, limit in change.items():
            b_new[first + i] = limit
        return prob.constant / MICRO + _solve(cost, a_ub, b_new, bounds=bounds)

    return value


def order_patterns(prob: Problem, o: int) -> list[dict[int, int]]:
    """Every integer allocation of order ``o`` (arc -> units), the node limit kept."""
    lines = range(int(prob.order_line_start[o]), int(prob.order_line_start[o + 1]))
    pairs = range(int(prob.order_pair_start[o]), int(prob.order_pair_start[o + 1]))
    arcs = [a for p in pairs for a in range(prob.pair_arc_start[p], prob.pair_arc_start[p + 1])]
    per_line = []
    for line in lines:
        mine = [a for a in arcs if prob.arc_line[a] == line]
        per_line.append(
            [
                dict(zip(mine, units, strict=True))
                for units in itertools.product(*[range(int(prob.arc_ub[a]) + 1) for a in mine])
                if sum(units) <= prob.line_qty[line]
            ]
        )
    out = []
    for choice in itertools.product(*per_line):
        x = {a: q for part in choice for a, q in part.items() if q}
        if prob.max_nodes > 0 and len({int(prob.arc_pair[a]) for a in x}) > prob.max_nodes:
            continue
        out.append(x)
    return out


def pattern_lp(prob: Problem) -> Callable[[dict[int, int]], float]:
    """V of the pattern LP: a convex combination of complete allocations per order."""
    rows = shared_rows(prob)
    zero = np.zeros(prob.num_arcs, dtype=np.int64)
    base = prob.evaluate(zero).total
    cols, cost, owner = [], [], []
    for o in range(prob.num_orders):
        for pattern in order_patterns(prob, o):
            x = zero.copy()
            for a, q in pattern.items():
                x[a] = q
            cols.append(x)
            owner.append(o)
            cost.append((prob.evaluate(x).total - base) / MICRO)  # separable by order
    units = np.array(cols, dtype=float)
    opened = np.zeros((len(cols), prob.num_pairs))
    for k, x in enumerate(cols):
        opened[k, np.unique(prob.arc_pair[x > 0])] = 1.0
    use = np.array([units @ arc_use(prob, r) + opened @ pair_use(prob, r) for r in rows])
    one_each = np.zeros((prob.num_orders, len(cols)))
    one_each[np.array(owner), np.arange(len(cols))] = 1.0
    b = np.array([r[3] for r in rows], dtype=float)

    def value(change: dict[int, int]) -> float:
        b_new = b.copy()
        for i, limit in change.items():
            b_new[i] = limit
        return base / MICRO + _solve(
            np.array(cost),
            use.reshape(len(rows), len(cols)),
            b_new,
            A_eq=one_each,
            b_eq=np.ones(prob.num_orders),
        )

    return value


def misplaced_prices(
    prob: Problem, result: AllocationResult, value: Callable[[dict[int, int]], float]
) -> list[str]:
    """Rows whose price (0 when not listed) lies outside the one-sided marginal values."""
    assert result.shadow_price_tolerance is not None and result.shadow_price_tolerance >= 0
    rows = shared_rows(prob)
    keys = [r[:3] for r in rows]
    reported: dict[tuple[str, int, int | None], float] = {}
    for sp in result.shadow_prices:
        sku = None if sp.sku is None else prob.sku_ids.index(sp.sku)
        key = (sp.resource, prob.node_ids.index(sp.node_id), sku)
        assert key in keys and key not in reported, f"unknown or repeated row {key}"
        assert sp.value_per_unit > 0.0
        reported[key] = sp.value_per_unit
    v0 = value({})
    eps = REL_TOL * max(1.0, abs(v0)) + result.shadow_price_tolerance
    out = []
    for i, row in enumerate(rows):
        price = reported.get(row[:3], 0.0)
        saves = v0 - value({i: row[3] + 1})  # one unit more
        costs = value({i: row[3] - 1}) - v0  # one unit less
        if not saves - eps <= price <= costs + eps:
            out.append(f"{row}: {price} outside [{saves}, {costs}] (+-{eps})")
    return out


SKUS = ["a", "b"]


@st.composite
def scarce_requests(draw: st.DrawFn) -> AllocationRequest:
    """Up to 4 orders over 1-3 nodes of a few units: stock, capacity and VIP shares bind."""
    nodes = [
        node(
            f"n{i}",
            50.0 + draw(st.floats(0, 1)),
            10.0 + draw(st.floats(0, 1)),
            kind=draw(st.sampled_from([NodeKind.DC, NodeKind.STORE])),
            inventory={
                s: draw(st.integers(2 if (i, s) == (0, "a") else 0, 3))
                for s in SKUS
                if (i, s) == (0, "a") or draw(st.booleans())
            },
            safety_stock=draw(st.integers(0, 1)),
            capacity_units=draw(st.none() | st.integers(0, 4)),
            capacity_orders=draw(st.none() | st.integers(0, 2)),
            handling_cost_per_unit=draw(st.floats(0, 2)),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    orders = [
        order(
            f"o{j}",
            50.0 + draw(st.floats(0, 1)),
            10.0 + draw(st.floats(0, 1)),
            {
                s: draw(st.integers(1, 2))
                for s in ["a", *draw(st.lists(st.sampled_from(SKUS[1:]), max_size=1))]
            },
            tier=draw(st.sampled_from(list(Tier))),
        )
        for j in range(draw(st.integers(1, 4)))
    ]
    rules = AllocationRules(
        max_nodes_per_order=draw(st.none() | st.integers(1, 2)),
        store_floor_units=draw(st.integers(0, 1)),
        vip_capacity_share=draw(st.sampled_from([1.0, 0.5])),
    )
    costs = AllocationCosts(
        per_shipment=draw(st.floats(0, 10)),
        per_unit=draw(st.floats(0, 2)),
        per_unit_distance=draw(st.floats(0, 0.2)),
        distance_unit="km",
        unfilled_unit=draw(st.none() | st.floats(1, 40)),
        split_penalty=draw(st.floats(0, 5)),
    )
    return AllocationRequest(nodes=nodes, orders=orders, costs=costs, rules=rules)


def _priced(req: AllocationRequest, params: AllocationParams) -> tuple[Problem, AllocationResult]:
    prob = compile_request(req)
    assume(prob.num_pairs > 0)
    result = allocate(req, params)
    event("priced" if result.shadow_prices else "no price")
    event("exact" if result.shadow_price_tolerance == 0 else "with a tolerance")
    return prob, result


@CHECKS
@given(scarce_requests())
def test_online_prices_are_compact_lp_duals(req: AllocationRequest) -> None:
    """Online answers price the rows at optimal duals of the compact LP."""
    prob, result = _priced(req, AllocationParams(mode="online", time_limit_s=10, explain=False))
    assert result.shadow_price_lp == "compact"
    assert result.shadow_price_tolerance == 0.0
    assert misplaced_prices(prob, result, compact_lp(prob)) == []


@CHECKS
@given(scarce_requests(), st.sampled_from([0.0, 1e-4, 0.05]))
def test_batch_prices_are_pattern_lp_duals(req: AllocationRequest, gap: float) -> None:
    """Batch answers price the rows within the stated tolerance of the pattern LP's duals."""
    params = AllocationParams(time_limit_s=10, explain=False, mip_rel_gap=gap)
    prob, result = _priced(req, params)
    assert result.shadow_price_lp == "pattern"
    assert misplaced_prices(prob, result, pattern_lp(prob)) == []


@settings(CHECKS, max_examples=8)  # 25 took ~12 s of the default run
@given(scarce_requests())
def test_capped_and_large_batch_paths_state_their_tolerance(req: AllocationRequest) -> None:
    """The paths of batches over 500 orders with capacity rows (interior point master LPs,
    loose solves) and of 2,000 orders and more (subgradient warm-up), run on a few orders."""
    with patch.multiple(
        batch_module,
        POOL_MIP_ORDERS=1,
        WARMUP_ORDERS=3,
        PRICING_HELPER=False,  # no helper process in a unit test
    ):
        params = AllocationParams(time_limit_s=10, explain=False, threads=1)
        prob, result = _priced(req, params)
    assert result.shadow_price_lp == "pattern"
    assert misplaced_prices(prob, result, pattern_lp(prob)) == []


@pytest.fixture
def four_orders_two_units() -> AllocationRequest:
    """Four orders want SKU a; a DC and a store each hold one unit above their floors.

    The batch's third master LP meets the Lagrangian bound, but its own duals (36.2 and
    30.4 for the two units) are not optimal for the LP over every pattern: one unit less
    at the DC costs the pattern LP 31.4, less than the 36.2 reported before.
    """
    return AllocationRequest(
        nodes=[
            node(
                "dc",
                50.4,
                10.0,
                inventory={"a": 2, "b": 3},
                safety_stock=1,
                handling_cost_per_unit=0.6,
            ),
            node(
                "store",
                50.9,
                10.5,
                kind=NodeKind.STORE,
                inventory={"a": 2},
                handling_cost_per_unit=1.6,
            ),
        ],
        orders=[
            order("o0", 51.0, 10.0, {"b": 1, "a": 1}, tier=Tier.VIP),
            order("o1", 50.0, 10.0, {"a": 1}),
            order("o2", 50.8, 10.8, {"a": 1}, tier=Tier.VIP),
            order("o3", 50.0, 10.0, {"a": 1}),
        ],
        costs=AllocationCosts(
            per_shipment=0.0,
            per_unit=0.0,
            per_unit_distance=0.0,
            distance_unit="km",
            split_penalty=4.8,
        ),
        rules=AllocationRules(store_floor_units=1),
    )


def test_batch_prices_are_not_a_restricted_master_lps_duals(
    four_orders_two_units: AllocationRequest,
) -> None:
    """Column generation that converged reports the multipliers of its bound."""
    result = allocate(four_orders_two_units, AllocationParams(time_limit_s=10, explain=False))
    prob = compile_request(four_orders_two_units)
    assert result.shadow_price_tolerance == 0.0
    assert misplaced_prices(prob, result, pattern_lp(prob)) == []
    prices = {(sp.node_id, sp.sku): sp.value_per_unit for sp in result.shadow_prices}
    assert prices[("dc", "a")] <= 31.4 + 1e-6


def test_prices_name_their_lp_and_are_left_out_for_baselines(
    four_orders_two_units: AllocationRequest, pyomo_ready: None
) -> None:
    """Each path says which LP its prices are of; a baseline computes none."""
    online = allocate(four_orders_two_units, AllocationParams(mode="online", explain=False))
    assert (online.shadow_price_lp, online.shadow_price_tolerance) == ("compact", 0.0)
    pyomo = allocate(four_orders_two_units, AllocationParams(backend="pyomo", explain=False))
    assert pyomo.shadow_price_lp == "compact"
    assert [(p.node_id, p.sku, p.value_per_unit) for p in pyomo.shadow_prices] == [
        (p.node_id, p.sku, p.value_per_unit) for p in online.shadow_prices
    ]
    base = allocate(four_orders_two_units, AllocationParams(baseline="nearest", explain=False))
    assert (base.shadow_prices, base.shadow_price_lp, base.shadow_price_tolerance) == (
        [],
        None,
        None,
    )


@pytest.fixture
def four_vip_orders_one_store() -> AllocationRequest:
    """Four VIP orders want more of SKUs a and b than one store holds above its floor."""
    return AllocationRequest(
        nodes=[
            node(
                "store",
                50.42,
                10.41,
                kind=NodeKind.STORE,
                inventory={"a": 2, "b": 3},
                safety_stock=1,
                handling_cost_per_unit=0.94,
            ),
            node("dc", 50.36, 10.5, inventory={"a": 0}, handling_cost_per_unit=1.97),
        ],
        orders=[
            order("o0", 50.0, 10.16, {"a": 2, "b": 2}, tier=Tier.VIP),
            order("o1", 50.87, 10.0, {"a": 2, "b": 2}, tier=Tier.VIP),
            order("o2", 50.0, 10.04, {"a": 2}, tier=Tier.VIP),
            order("o3", 50.9, 10.33, {"b": 1, "a": 2}, tier=Tier.VIP),
        ],
        costs=AllocationCosts(
            per_shipment=6.13,
            per_unit=1.5,
            per_unit_distance=0.089,
            distance_unit="km",
            unfilled_unit=12.22,
            split_penalty=1.2,
        ),
        rules=AllocationRules(store_floor_units=1),
    )


def test_batch_stopped_within_its_gap_states_how_far_its_prices_may_be(
    four_vip_orders_one_store: AllocationRequest,
) -> None:
    """A batch that stops column generation at its gap target prices at the multipliers of
    its bound: not the LP's duals, but within the tolerance it reports."""
    req = four_vip_orders_one_store
    prob = compile_request(req)
    value = pattern_lp(prob)
    result = allocate(req, AllocationParams(time_limit_s=10, explain=False, mip_rel_gap=0.3))
    assert result.shadow_price_lp == "pattern"
    tol = result.shadow_price_tolerance
    assert tol is not None and tol > 0.0
    assert misplaced_prices(prob, result, value) == []
    exact = result.model_copy(update={"shadow_price_tolerance": 0.0})
    assert misplaced_prices(prob, exact, value) != []  # the tolerance is needed


def test_a_dual_that_rounds_to_zero_is_no_price(
    four_orders_two_units: AllocationRequest,
) -> None:
    """A multiplier below half a micro-unit was listed as a price of 0.0 for a slack row."""
    prob = compile_request(four_orders_two_units)
    duals = Duals.zeros(prob)
    duals.stock[0, 0] = -1e-8
    duals.cap_units[0] = -4e-7
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    assert shadow_prices(prob, duals, x) == []
    duals.stock[0, 0] = -6e-7  # rounds to 0.000001
    assert [p.value_per_unit for p in shadow_prices(prob, duals, x)] == [1e-6]
