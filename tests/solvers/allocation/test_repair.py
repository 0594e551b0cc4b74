"""Repair of the orders served far dearer than in the master LP (module repair)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from scenarios.generate import generate_city
from solvers.allocation import AllocationRequest
from solvers.allocation.heuristics import nearest
from solvers.allocation.highs_model import run_in_threads
from solvers.allocation.master import Master
from solvers.allocation.problem import Problem, compile_request
from solvers.allocation.repair import Repair, _fits

from .conftest import SIMPLE_COSTS, brute_force, node, order


@pytest.fixture
def held_stock() -> AllocationRequest:
    """The victim's two SKUs sit together at A, but the holder, who could ship from B
    next door just as cheaply, holds A's only unit of ``a``."""
    return AllocationRequest(
        nodes=[
            node("A", 52.0, 13.0, inventory={"a": 1, "b": 1}),
            node("B", 52.0, 13.0, inventory={"a": 1}),
            node("C", 51.0, 13.0, inventory={"a": 5, "b": 5}),
        ],
        orders=[
            order("holder", 52.0, 13.0, {"a": 1}),
            order("victim", 52.0, 13.0, {"a": 1, "b": 1}),
        ],
        costs=SIMPLE_COSTS,
    )


def arcs_of(prob: Problem, o: int, where: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The arcs of order ``o`` shipping each SKU of ``where`` from its node, one unit each."""
    arc_order = prob.pair_order[prob.arc_pair]
    arcs = [
        int(
            np.flatnonzero(
                (arc_order == o)
                & (prob.arc_node == prob.node_ids.index(n))
                & (prob.arc_sku == prob.sku_ids.index(s))
            )[0]
        )
        for s, n in where.items()
    ]
    return np.sort(np.asarray(arcs, dtype=np.int64)), np.ones(len(arcs), dtype=np.int64)


def test_repair_gives_the_victim_the_stock_its_lp_pattern_uses(
    held_stock: AllocationRequest,
) -> None:
    prob = compile_request(held_stock, prune=False)
    holder, victim = prob.order_ids.index("holder"), prob.order_ids.index("victim")
    # the allocation: the holder takes A's unit of a, the victim splits over A and far C
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    for o, where in ((holder, {"a": "A"}), (victim, {"a": "C", "b": "A"})):
        arcs, qty = arcs_of(prob, o, where)
        x[arcs] = qty
    assert not prob.violations(x)
    # the master LP ships the holder from B and the victim whole from A
    master = Master(prob)
    lp = [arcs_of(prob, holder, {"a": "B"}), arcs_of(prob, victim, {"a": "A", "b": "A"})]
    master.add(np.array([holder, victim]), [a for a, _ in lp], [q for _, q in lp])
    repair = Repair.from_lp(prob, master, np.ones(len(master.pool)), seed=0)
    assert prob.order_costs(x)[victim] > repair.lp_cost[victim]
    out = repair.run(x, deadline=10.0**9)
    assert not prob.violations(out)
    assert repair.wins >= 1
    assert prob.evaluate(out).total == brute_force(prob)[0]


def test_fits_refuses_stock_another_order_took(held_stock: AllocationRequest) -> None:
    prob = compile_request(held_stock, prune=False)
    holder, victim = prob.order_ids.index("holder"), prob.order_ids.index("victim")
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    arcs, qty = arcs_of(prob, holder, {"a": "A"})
    x[arcs] = qty
    free = np.zeros(prob.num_orders, dtype=bool)
    free[victim] = True
    whole_a, one = arcs_of(prob, victim, {"a": "A", "b": "A"})
    assert not _fits(prob, x, free, whole_a, one)  # A's unit of a is the holder's
    split, one = arcs_of(prob, victim, {"a": "B", "b": "A"})
    assert _fits(prob, x, free, split, one)


def test_repair_on_two_threads_keeps_every_limit() -> None:
    scenario = generate_city(seed=4, num_orders=150, num_nodes=10, num_couriers=5)
    prob = compile_request(AllocationRequest.from_scenario(scenario))
    x = nearest(prob)
    assert not prob.violations(x)
    # an LP that would ship every order for nothing from the nodes it uses now: every
    # order is a candidate, and the two threads' MIPs overlap in the stock they touch
    n_s = prob.avail.shape[1]
    arc_order = prob.pair_order[prob.arc_pair]
    used = np.flatnonzero(x > 0)
    keys = [
        np.unique((prob.arc_node * n_s + prob.arc_sku)[used[arc_order[used] == o]])
        for o in range(prob.num_orders)
    ]
    repair = Repair(prob, np.zeros(prob.num_orders), keys, seed=3)
    start = prob.evaluate(x).total
    out = repair.run(x, deadline=threading.TIMEOUT_MAX, workers=2)
    assert not prob.violations(out)
    assert prob.evaluate(out).total <= start
    assert repair.tries >= prob.num_orders // 4  # it ran out of orders, not time
    assert repair.wins >= 1


def test_run_in_threads_raises_a_helper_thread_error() -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def step() -> bool:
        with lock:
            calls.append(threading.current_thread().name)
            if threading.current_thread().name == "t-1":
                raise ValueError("boom")
        return True  # until the helper thread fails

    with pytest.raises(ValueError, match="boom"):
        run_in_threads(step, 2, "t")
