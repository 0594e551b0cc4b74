"""Integral units from HiGHS answers: never past a line, the stock or a capacity.

The unit columns are continuous unless VIP unit caps exist (with the pairs fixed the rows are
totally unimodular), but HiGHS' MIP answer may be any point of the optimal face, not a
vertex: rounding it column by column broke line quantities and capacities (the
``tied_capacity_one_order`` fixture). ``AllocationModel.units`` turns such a point into a
vertex; ``allocate`` never hands out an answer that breaks a limit.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from solvers.allocation import (
    AllocationCosts,
    AllocationParams,
    AllocationRequest,
    AllocationResult,
    AllocationRules,
    allocate,
)
from solvers.allocation import solve as solve_mod
from solvers.allocation.heuristics import Residual, _solve_residual_mip, real_costs, solve_residual
from solvers.allocation.highs_model import AllocationModel
from solvers.allocation.problem import MICRO, Problem, compile_request

from .conftest import allocation_vector, brute_force, node, order

#: the optimum of ``tied_capacity_one_order``: dc-01 ships 2 units, ds-02 ships 1
TIED_OPTIMUM = 19_989_654

PATHS: list[dict[str, Any]] = [
    {"mode": "online"},
    {"mode": "online", "threads": 1},
    {"mode": "batch"},
    {"baseline": "myopic"},
    {"baseline": "rule_chain"},
    {"baseline": "nearest"},
]


def _check(prob: Problem, result: AllocationResult) -> np.ndarray:
    """The answer keeps every limit and its KPIs and costs agree with its assignments."""
    x = allocation_vector(prob, result)
    assert prob.violations(x) == []
    ev = prob.evaluate(x)
    assert result.cost.total_micros == ev.total
    assert result.kpis.units_unfilled >= 0
    assert result.kpis.units_unfilled == sum(u.quantity for u in result.unfilled)
    assert result.kpis.units_unfilled + int(x.sum()) == result.kpis.units_ordered
    return x


@pytest.mark.parametrize("params", PATHS, ids=lambda p: "-".join(map(str, p.values())))
def test_tied_capacity_one_order_is_valid_on_every_path(
    tied_capacity_one_order: AllocationRequest, params: dict[str, Any]
) -> None:
    prob = compile_request(tied_capacity_one_order)
    result = allocate(tied_capacity_one_order, AllocationParams(**params))
    _check(prob, result)
    assert result.kpis.units_unfilled == 0
    if "baseline" not in params or params["baseline"] == "myopic":
        assert result.cost.total_micros == TIED_OPTIMUM
    assert not any("broke" in note for note in result.stats.notes)


def test_tied_capacity_one_order_mip_answer_is_the_optimum(
    tied_capacity_one_order: AllocationRequest,
) -> None:
    prob = compile_request(tied_capacity_one_order)
    assert brute_force(prob)[0] == TIED_OPTIMUM
    arcs, qty, _lower = solve_residual(prob, 0, Residual(prob), *real_costs(prob))
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    x[arcs] = qty
    assert prob.violations(x) == []
    assert prob.evaluate(x).total == TIED_OPTIMUM


def _arc(prob: Problem, node_id: str, sku: str) -> int:
    hit = np.flatnonzero(
        (prob.arc_node == prob.node_ids.index(node_id)) & (prob.arc_sku == prob.sku_ids.index(sku))
    )
    assert hit.size == 1
    return int(hit[0])


def test_units_turn_a_fractional_answer_into_an_integral_optimum(
    tied_capacity_one_order: AllocationRequest,
) -> None:
    """The midpoint of two optimal vertices (what HiGHS handed back) becomes a vertex."""
    prob = compile_request(tied_capacity_one_order)
    model = AllocationModel(prob, np.arange(prob.num_pairs), integer=True)
    model.set_options(mip_rel_gap=0.0)
    assert model.run(10.0) == "Optimal"
    half = {
        ("dc-01", "sku-0009"): 1.5,
        ("dc-01", "sku-0015"): 0.5,
        ("ds-02", "sku-0009"): 0.5 + 1e-7,  # 0.5 rounds either way: both went wrong
        ("ds-02", "sku-0015"): 0.5,
    }
    col = np.zeros(model.num_cols)
    for (node_id, sku), value in half.items():
        a = _arc(prob, node_id, sku)
        col[model.x_col[a]] = value
        col[model.y_col[prob.arc_pair[a]]] = 1.0
    with patch.object(AllocationModel, "column_values", return_value=col):
        x = model.units()
    assert prob.violations(x) == []
    assert prob.evaluate(x).total == TIED_OPTIMUM
    assert set(np.flatnonzero(x).tolist()) <= {_arc(prob, n, s) for n, s in half}


def test_units_round_down_when_the_vertex_lp_fails(
    tied_capacity_one_order: AllocationRequest,
) -> None:
    """Without the LP, rounding down keeps every row (all unit coefficients are positive)."""
    prob = compile_request(tied_capacity_one_order)
    model = AllocationModel(prob, np.arange(prob.num_pairs), integer=True)
    model.run(10.0)
    col = np.zeros(model.num_cols)
    for (node_id, sku), value in {("dc-01", "sku-0009"): 1.5, ("ds-02", "sku-0009"): 0.5}.items():
        a = _arc(prob, node_id, sku)
        col[model.x_col[a]] = value
        col[model.y_col[prob.arc_pair[a]]] = 1.0
    with (
        patch.object(AllocationModel, "column_values", return_value=col),
        patch.object(AllocationModel, "_vertex_units", return_value=None),
    ):
        x = model.units()
    assert prob.violations(x) == []
    assert x[_arc(prob, "dc-01", "sku-0009")] == 1
    assert int(x.sum()) == 1


def test_allocate_passes_over_fallbacks_that_break_a_limit(
    tied_capacity_one_order: AllocationRequest,
) -> None:
    """A solver answer past a line falls back to myopic, then nearest, then nothing."""
    req = tied_capacity_one_order
    prob = compile_request(req)
    bad = np.zeros(prob.num_arcs, dtype=np.int64)
    bad[_arc(prob, "dc-01", "sku-0009")] = 2
    bad[_arc(prob, "ds-02", "sku-0009")] = 1  # 3 units of a 2-unit line
    real = solve_mod.run_baseline

    def myopic_breaks(prob: Problem, name: str, *, deadline: float | None = None) -> np.ndarray:
        return bad.copy() if name == "myopic" else real(prob, name, deadline=deadline)

    with (
        patch.object(solve_mod, "_online", return_value=(bad.copy(), None)),
        patch.object(solve_mod, "run_baseline", side_effect=myopic_breaks),
    ):
        result = allocate(req, AllocationParams(mode="online"))
    _check(prob, result)
    assert result.kpis.units_unfilled == 0
    assert any("fell back to nearest" in note for note in result.stats.notes)

    with (
        patch.object(solve_mod, "_online", return_value=(bad.copy(), None)),
        patch.object(solve_mod, "run_baseline", return_value=bad.copy()),
    ):
        result = allocate(req, AllocationParams(mode="online"))
    _check(prob, result)
    assert result.assignments == []
    assert result.kpis.units_unfilled == 3
    assert any("fell back to shipping nothing" in note for note in result.stats.notes)


# ---------------------------------------------------------------- property: small capacities
SKUS = ["a", "b", "c"]


@st.composite
def tight_requests(draw: st.DrawFn, max_orders: int = 3) -> AllocationRequest:
    """Few orders over nodes at a few shared spots (cost ties) with 1-3 units of capacity."""
    n_nodes = draw(st.integers(2, 4))
    skus = SKUS[: draw(st.integers(1, 3))]
    handling = draw(st.sampled_from([0.0, 0.5]))
    nodes = [
        node(
            f"n{i}",
            50.0 + 0.02 * draw(st.integers(0, 2)),
            10.0,
            inventory={s: draw(st.integers(0, 3)) for s in skus},
            capacity_units=draw(st.integers(1, 3)),
            capacity_orders=draw(st.none() | st.integers(1, 2)),
            handling_cost_per_unit=handling if draw(st.booleans()) else draw(st.floats(0, 1)),
        )
        for i in range(n_nodes)
    ]
    orders = [
        order(
            f"o{j}",
            50.0 + 0.02 * draw(st.integers(0, 2)),
            10.0,
            {
                s: draw(st.integers(1, 3))
                for s in draw(st.lists(st.sampled_from(skus), min_size=1, unique=True))
            },
        )
        for j in range(draw(st.integers(1, max_orders)))
    ]
    costs = AllocationCosts(
        per_shipment=draw(st.sampled_from([0.0, 5.0, 10.0])),
        per_unit=1.0,
        per_unit_distance=draw(st.sampled_from([0.0, 0.1])),
        distance_unit="km",
        unfilled_unit=draw(st.sampled_from([30.0, 60.0])),
        split_penalty=draw(st.sampled_from([0.0, 2.0])),
    )
    rules = AllocationRules(max_nodes_per_order=draw(st.none() | st.integers(1, 2)))
    return AllocationRequest(nodes=nodes, orders=orders, costs=costs, rules=rules)


def _count_fractional(calls: list[bool]) -> Any:
    real = AllocationModel.units

    def units(self: AllocationModel) -> np.ndarray:
        col = self.column_values()
        values = col[self.x_col[self.x_col >= 0]]
        calls.append(bool(np.abs(values - np.rint(values)).max(initial=0.0) > 1e-6))
        return real(self)

    return patch.object(AllocationModel, "units", units)


def _check_compact_mip(prob: Problem) -> None:
    """The compact MIP's units keep every row and cost what HiGHS says its answer costs."""
    if prob.num_pairs == 0:
        return
    calls: list[bool] = []
    model = AllocationModel(prob, np.arange(prob.num_pairs), integer=True)
    model.set_options(mip_rel_gap=0.0)
    assert model.run(10.0) == "Optimal"
    with _count_fractional(calls):
        x = model.units()
    if any(calls):
        event("a compact MIP answer with fractional units")
    assert prob.violations(x) == []
    assert prob.evaluate(x).total <= round(model.objective() * MICRO) + 1


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tight_requests(max_orders=1))
def test_one_order_with_small_capacities_is_valid_and_exact(req: AllocationRequest) -> None:
    prob = compile_request(req)
    calls: list[bool] = []
    with _count_fractional(calls):
        online = allocate(req, AllocationParams(mode="online", mip_rel_gap=0.0))
        myopic = allocate(req, AllocationParams(baseline="myopic", explain=False))
    if any(calls):
        event("a HiGHS answer with fractional units")
    for result in (online, myopic):
        _check(prob, result)
        assert not any("broke" in note for note in result.stats.notes)
    assert myopic.cost.total_micros == online.cost.total_micros  # one order: both exact
    _check_compact_mip(prob)
    # the one-order MIP the online path falls back on where the DP is not exact
    c_arc, c_pair, _split = real_costs(prob)
    with _count_fractional(calls := []):
        mip = _solve_residual_mip(prob, 0, Residual(prob), c_arc, c_pair)
    assert mip is not None and mip[2] is None  # proven optimal
    arcs, qty = mip[0], mip[1]
    if any(calls):
        event("a one-order MIP answer with fractional units")
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    x[arcs] = qty
    assert prob.violations(x) == []
    assert prob.evaluate(x).total == online.cost.total_micros
    if np.prod([int(u) + 1 for u in prob.arc_ub], dtype=float) <= 20_000:
        assert online.cost.total_micros == brute_force(prob)[0]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # 40: ~6 s
@given(tight_requests(max_orders=3))
def test_few_orders_with_small_capacities_are_valid_on_every_path(req: AllocationRequest) -> None:
    prob = compile_request(req)
    calls: list[bool] = []
    with _count_fractional(calls):
        results = [
            allocate(req, AllocationParams(explain=False, time_limit_s=5.0, **params))
            for params in PATHS
        ]
    if any(calls):
        event("a HiGHS answer with fractional units")
    for result in results:
        _check(prob, result)
        assert not any("broke" in note for note in result.stats.notes)
        assert result.bound is None or result.bound <= result.cost.total_micros / MICRO + 1e-6
    _check_compact_mip(prob)
