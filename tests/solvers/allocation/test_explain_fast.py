"""The unvalidated, batched writing of explanations gives exactly the validated per-order ones.

The reference is the writing as it was: every ``Reason`` / ``Alternative`` /
``OrderExplanation`` validated by pydantic with the fields the code names, the rule
reasons found node by node (:func:`reference_rule_reasons`, the former code) and a fresh
``Residual`` per order searched one by one. They are swapped into
:mod:`solvers.allocation.explain` and the answers compared instance by instance.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel

from solvers.allocation import AllocationParams, AllocationRequest, allocate
from solvers.allocation import explain as explain_mod
from solvers.allocation import heuristics as heuristics_mod
from solvers.allocation.heuristics import Residual, nearest
from solvers.allocation.problem import BLOCK_RULE, I64, OK, Problem, compile_request
from solvers.allocation.result import (
    Alternative,
    OrderExplanation,
    Reason,
    ReasonKind,
    Unfilled,
)

from .conftest import allocation_vector
from .test_construct import assert_same_instance
from .test_explain_brute import tiny_requests

EXACT = AllocationParams(mip_rel_gap=0.0, time_limit_s=30)


def validated(
    cls: type[BaseModel], values: dict[str, Any], fields_set: set[str] | None = None
) -> Any:
    """``cls(**given)``: the validated model of the fields the code names."""
    given = values if fields_set is None else {k: values[k] for k in fields_set}
    return cls(**given)


def reference_rule_reasons(prob: Problem, x: I64, o: int) -> list[Reason]:
    """``_rule_reasons`` as it was: node by node, every ``Reason`` validated."""
    arcs = np.flatnonzero((x > 0) & (prob.pair_order[prob.arc_pair] == o))
    nodes = sorted({int(n) for n in prob.arc_node[arcs]})
    out: list[Reason] = []
    order = prob.request.orders[o]
    lines = prob.order_lines(o)
    for ln in lines:
        if prob.line_restricted[ln]:
            sku = prob.sku_ids[int(prob.line_sku[ln])]
            out.append(
                Reason(
                    kind=ReasonKind.RULE,
                    sku=sku,
                    rule="restricted_skus",
                    message=f"{sku} may not be shipped to region {order.region}",
                )
            )
    if prob.num_nodes == 0:
        return out
    nearest_chosen = min((prob.dist_km[n, o] for n in nodes), default=np.inf)
    closer = np.nonzero(prob.dist_km[:, o] < nearest_chosen)[0]
    closer = closer[np.argsort(prob.dist_km[closer, o], kind="stable")]
    wanted = [int(prob.line_sku[ln]) for ln in lines if not prob.line_restricted[ln]]
    holding = closer[(prob.avail[closer][:, wanted] > 0).any(axis=1)] if wanted else closer[:0]
    for n in holding.tolist():
        code = int(prob.node_block[n, o])
        if code == OK:
            continue
        rule = BLOCK_RULE[code]
        node_id = prob.node_ids[n]
        what = {
            "excluded_nodes": f"{node_id} may not ship to region {order.region} (excluded_nodes)",
            "opening_hours": f"{node_id} does not open again before the horizon ends",
            "promise": f"{node_id} cannot meet the promise "
            f"(arrives {int(prob.arrival_s[n, o])} s, promised by {order.promise_by_s} s)",
        }[rule]
        out.append(
            Reason(
                kind=ReasonKind.PROMISE if rule == "promise" else ReasonKind.RULE,
                node_id=node_id,
                rule=rule,
                message=what,
            )
        )
        break
    for n in holding.tolist():
        node_id = prob.node_ids[n]
        if prob.cap_orders[n] == 0 or prob.cap_units[n] == 0:
            out.append(
                Reason(
                    kind=ReasonKind.CAPACITY,
                    node_id=node_id,
                    message=f"{node_id} has no capacity in this wave",
                )
            )
            break
        if prob.order_vip[o] and (prob.vip_cap_orders[n] == 0 or prob.vip_cap_units[n] == 0):
            out.append(
                Reason(
                    kind=ReasonKind.VIP_SHARE,
                    node_id=node_id,
                    message=f"the VIP share of {node_id}'s capacity is zero",
                )
            )
            break
    got: dict[tuple[int, int], int] = {}
    for a in arcs.tolist():
        key = (int(prob.arc_line[a]), int(prob.arc_node[a]))
        got[key] = got.get(key, 0) + int(x[a])
    held_at: list[tuple[float, int, int]] = []
    for ln in lines:
        if prob.line_restricted[ln]:
            continue
        s, qty = int(prob.line_sku[ln]), int(prob.line_qty[ln])
        sources = [n for (line, n) in got if line == ln]
        short = sum(got[ln, n] for n in sources) < qty
        reach = np.inf if short else max(prob.dist_km[n, o] for n in sources)
        for n in range(prob.num_nodes):
            if prob.node_block[n, o] != OK or not prob.dist_km[n, o] < reach:
                continue
            held = int(prob.inventory[n, s] - prob.avail[n, s])
            if held > 0 and prob.avail[n, s] < qty and got.get((ln, n), 0) < qty:
                held_at.append((float(prob.dist_km[n, o]), n, ln))
    if held_at:
        _, n, ln = min(held_at)
        s = int(prob.line_sku[ln])
        held = int(prob.inventory[n, s] - prob.avail[n, s])
        node_id, sku = prob.node_ids[n], prob.sku_ids[s]
        rule = explain_mod._holding_rule(prob, n, sku)
        what = "as safety stock" if rule == "safety_stock" else "(store floor)"
        out.append(
            Reason(
                kind=ReasonKind.RULE,
                node_id=node_id,
                sku=sku,
                rule=rule,
                message=f"{node_id} holds {int(prob.inventory[n, s])} of {sku} but "
                f"keeps {held} {what}",
            )
        )
    return out


Answer = tuple[list[OrderExplanation], list[Unfilled]]


#: orders re-solved one by one on their own residual world, by the reference
RESIDUALS: list[int] = []


def reference_residual(
    prob: Problem, world: Any, x: I64, order: int, banned: int, _shared: Residual
) -> Residual:
    """``_order_residual`` as it was: a fresh Residual of every arc and pair per order."""
    RESIDUALS.append(order)
    return ORDER_RESIDUAL(prob, world, x, order, banned, Residual(prob))


ORDER_RESIDUAL = explain_mod._order_residual


def both(prob: Problem, x: I64) -> tuple[Answer, Answer]:
    """(the explanations as written now, as the validated per-order reference writes them)."""
    new = explain_mod.explain(prob, x, budget_s=1e9)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(explain_mod, "construct", validated)
        mp.setattr(
            explain_mod, "_rule_reasons", lambda p, o, _near: reference_rule_reasons(p, x, o)
        )
        mp.setattr(explain_mod, "_order_residual", reference_residual)
        ref = explain_mod.explain(prob, x, budget_s=1e9)
    return new, ref


def assert_identical(new: Answer, ref: Answer) -> None:
    """Same dumps, and the same instances down to each reason and alternative."""
    (new_ex, new_un), (ref_ex, ref_un) = new, ref
    assert [e.model_dump() for e in new_ex] == [e.model_dump() for e in ref_ex]
    assert [u.model_dump() for u in new_un] == [u.model_dump() for u in ref_un]
    for a, b in zip(new_ex, ref_ex, strict=True):
        assert_same_instance(a, b)
        assert len(a.reasons) == len(b.reasons)
        for r, q in zip(a.reasons, b.reasons, strict=True):
            assert_same_instance(r, q)
        if b.best_alternative is not None:
            assert isinstance(a.best_alternative, Alternative)
            assert_same_instance(a.best_alternative, b.best_alternative)
    for u, v in zip(new_un, ref_un, strict=True):
        assert_same_instance(u, v)


def _allocations(
    req: AllocationRequest, params: AllocationParams = EXACT
) -> list[tuple[Problem, I64]]:
    """The nearest-node and the optimised allocation of ``req``."""
    prob = compile_request(req)
    optimised = allocation_vector(prob, allocate(req, params))
    return [(prob, nearest(prob)), (prob, optimised)]


@pytest.mark.parametrize("fixture", ["two_dcs", "scarce", "tied_capacity_one_order"])
def test_fixture_explanations_equal_the_validated_reference(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    for prob, x in _allocations(request.getfixturevalue(fixture)):
        new, ref = both(prob, x)
        assert len(new[0]) == prob.num_orders
        assert_identical(new, ref)


# a 300-order city (~6.5 s); the batched path's explanations are compared by default in
# test_batched_path_explanations_equal_those_with_every_dp_run, the validated reference in
# test_tiny_explanations_equal_the_validated_reference
@pytest.mark.slow
def test_city_explanations_equal_the_validated_reference() -> None:
    """A city of a few hundred orders: the batched path, with rule and capacity reasons."""
    from benchmarks.allocation import city_request

    city = city_request(2, num_orders=300, num_nodes=12)
    # nearer nodes a rule rules out, one shut for the wave, a small VIP share
    shut = city.nodes[-1].model_copy(update={"capacity_orders": 0})
    rules = city.rules.model_copy(
        update={"excluded_nodes": {"se": ["ds-01", "st-01", "st-02"]}, "vip_capacity_share": 0.04}
    )
    req = city.model_copy(update={"nodes": [*city.nodes[:-1], shut], "rules": rules})
    kinds: Counter[str] = Counter()
    RESIDUALS.clear()
    # a batch answer within 1 % (proving the optimum took ~25 s of the suite's time)
    for prob, x in _allocations(req, AllocationParams(mip_rel_gap=1e-2, time_limit_s=5)):
        new, ref = both(prob, x)
        assert len(new[0]) == 300
        assert_identical(new, ref)
        kinds.update(r.rule or r.message.split("'s ")[-1] for e in new[0] for r in e.reasons)
    # the branches rewritten are exercised: a rule on a nearer node, held stock, no capacity
    assert kinds["excluded_nodes"] > 0 and kinds["safety_stock"] > 0, kinds
    assert kinds[f"{shut.id} has no capacity in this wave"] > 0, kinds
    assert kinds["capacity is zero"] > 0, kinds  # the VIP share of a store's
    assert len(set(RESIDUALS)) > 1  # orders searched one by one, on a shared Residual


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=tiny_requests())
def test_tiny_explanations_equal_the_validated_reference(req: AllocationRequest) -> None:
    """Random tiny requests (rules, capacity, VIP shares, safety stock), both allocations."""
    for prob, x in _allocations(req):
        assert_identical(*both(prob, x))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=tiny_requests())
def test_only_orders_the_lift_filter_passes_have_lift_candidates(req: AllocationRequest) -> None:
    """``_may_lift`` passes every order ``_lift_candidates`` finds a node for (any choice)."""
    prob = compile_request(req)
    may = explain_mod._may_lift(prob)
    for o in range(prob.num_orders):
        for chosen in ([], list(range(prob.num_nodes))[:1]):
            if explain_mod._lift_candidates(prob, o, chosen):
                assert may[o], (o, chosen)


def test_the_lift_filter_skips_the_city_whose_nodes_are_all_open_and_allowed() -> None:
    """The city (no exclusions, capacity everywhere, ``penalise`` with no late node)."""
    from benchmarks.allocation import city_request

    prob = compile_request(city_request(0, num_orders=200, num_nodes=20))
    assert not explain_mod._may_lift(prob).any()


def test_held_back_stock_is_the_same_found_in_blocks_of_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``_held_back`` over blocks of two lines finds what one block finds (a 200-order city)."""
    from benchmarks.allocation import city_request

    prob = compile_request(city_request(1, num_orders=200, num_nodes=20))
    x = nearest(prob)
    whole = explain_mod._held_back(prob, x)
    assert (whole[0] >= 0).sum() > 10  # stores keep a floor: many orders name one
    monkeypatch.setattr(explain_mod, "HELD_BLOCK_LINES", 2)
    pieces = explain_mod._held_back(prob, x)
    assert np.array_equal(whole[0], pieces[0]) and np.array_equal(whole[1], pieces[1])


def test_no_batch_rule_work_when_no_explanation_is_written_in_full(
    two_dcs: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the end every order gets the short explanation, without the batched rule scan."""
    prob = compile_request(two_dcs)

    def unexpected(*_args: Any) -> None:
        raise AssertionError("_nearer ran although no explanation is written in full")

    monkeypatch.setattr(explain_mod, "_nearer", unexpected)
    cut, _ = explain_mod.explain(prob, nearest(prob), end=explain_mod._clock() - 1.0)
    assert [e.summary.endswith(explain_mod.CUT_SUMMARY) for e in cut] == [True] * 3


def _dp_forced(real: Any) -> Any:
    """``solve_residual`` that runs its subset DP whatever the caller knows (as it was)."""

    def solve(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("dp", None)
        return real(*args, **kwargs)

    return solve


def test_one_by_one_searches_skip_the_dp_the_batch_found_inexact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Orders the batched DP is inexact for are searched without running the DP again
    (the same limits: it would be inexact again), with the same explanations."""
    from benchmarks.allocation import city_request

    prob = compile_request(city_request(1, num_orders=300, num_nodes=12))
    x = nearest(prob)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(explain_mod, "solve_residual", _dp_forced(explain_mod.solve_residual))
        ref = explain_mod.explain(prob, x, budget_s=1e9, baseline="nearest")
    one_order_dps: list[int] = []
    searches: list[int] = []
    real_blocks, real_residual = heuristics_mod.solve_blocks, explain_mod.solve_residual

    def counted_blocks(*args: Any, **kwargs: Any) -> Any:
        one_order_dps.append(1)
        return real_blocks(*args, **kwargs)

    def counted_residual(*args: Any, **kwargs: Any) -> Any:
        searches.append(1)
        return real_residual(*args, **kwargs)

    monkeypatch.setattr(heuristics_mod, "solve_blocks", counted_blocks)
    monkeypatch.setattr(explain_mod, "solve_residual", counted_residual)
    new = explain_mod.explain(prob, x, budget_s=1e9, baseline="nearest")
    assert len(searches) > 100  # alternatives and the baseline's cheaper ways, one by one
    assert one_order_dps == []
    assert_identical(new, ref)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=tiny_requests())
def test_batched_path_explanations_equal_those_with_every_dp_run(req: AllocationRequest) -> None:
    """Tiny requests on the path of large batches: skipping the DP changes no explanation."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(explain_mod, "SMALL_BATCH", 0)
        for prob, x in _allocations(req):
            for baseline in (None, "nearest"):
                new = explain_mod.explain(prob, x, budget_s=1e9, baseline=baseline)
                with pytest.MonkeyPatch.context() as forced:
                    real = explain_mod.solve_residual
                    forced.setattr(explain_mod, "solve_residual", _dp_forced(real))
                    ref = explain_mod.explain(prob, x, budget_s=1e9, baseline=baseline)
                assert_identical(new, ref)
