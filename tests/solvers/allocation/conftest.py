"""Small named allocation requests and a brute-force optimum to check solvers against."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st

from scenarios.geo import Location, TimeWindow
from scenarios.model import NodeKind, OrderLine, Tier
from solvers.allocation import (
    AllocationCosts,
    AllocationNode,
    AllocationOrder,
    AllocationRequest,
    AllocationRules,
)
from solvers.allocation.highs_model import Duals
from solvers.allocation.problem import Problem, compile_request
from solvers.allocation.result import AllocationResult


@pytest.fixture(scope="session")
def pyomo_ready() -> Iterator[None]:
    """A real pyomo worker started for the tests of this process that solve in one, shared
    by them (its start imports Pyomo: ~3 s, each test's ``warm_worker()`` finds it idle, or
    starts a successor where one was killed); ended after the last test. The tests of stand-in
    workers set it aside meanwhile (``test_pyomo_worker.stand_in``)."""
    from solvers.allocation import pyomo_worker

    pyomo_worker.warm_worker(60)
    yield
    pyomo_worker.end_workers()


#: seconds :func:`one_thread` waits for threads of earlier tests to end by themselves
THREADS_END_S = 10.0


@pytest.fixture
def one_thread() -> None:
    """This test process with no thread but the main one, as a job process has at its start,
    so that :meth:`HelperProcess.fork <solvers.allocation.helper_process.HelperProcess.fork>`
    forks: threads of earlier tests still ending (a killed pyomo worker's reaper, a started
    worker's starter) are waited for, up to :data:`THREADS_END_S`; any other thread still
    running fails the test, named. The forked helper tests skipped when an earlier test in
    the same process had left one (HelperProcess.fork gives None then), checking nothing."""
    if not hasattr(os, "fork"):
        pytest.skip("this platform cannot fork")
    end = time.monotonic() + THREADS_END_S
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join(max(0.0, end - time.monotonic()))
    left = [t for t in threading.enumerate() if t is not threading.main_thread()]
    assert threading.current_thread() is threading.main_thread() and not left, (
        "threads left running by earlier tests: "
        f"{[f'{t.name} ({type(t).__module__}.{type(t).__qualname__})' for t in left]}"
    )


def node(node_id: str, lat: float, lon: float, **kw: Any) -> AllocationNode:
    """A node at (lat, lon)."""
    return AllocationNode(id=node_id, location=Location(lat=lat, lon=lon), **kw)


def order(
    order_id: str, lat: float, lon: float, lines: dict[str, int], **kw: Any
) -> AllocationOrder:
    """An order at (lat, lon) with {sku: quantity} lines."""
    return AllocationOrder(
        id=order_id,
        location=Location(lat=lat, lon=lon),
        lines=[OrderLine(sku=s, quantity=q) for s, q in lines.items()],
        **kw,
    )


SIMPLE_COSTS = AllocationCosts(
    per_shipment=10.0, per_unit=1.0, per_unit_distance=0.01, distance_unit="km", unfilled_unit=50.0
)


@pytest.fixture
def two_dcs() -> AllocationRequest:
    """Two DCs 100 km apart; one order next to each; the far DC alone holds SKU c."""
    return AllocationRequest(
        nodes=[
            node("north", 52.0, 13.0, inventory={"a": 5, "b": 5}),
            node("south", 51.1, 13.0, inventory={"a": 5, "c": 2}),
        ],
        orders=[
            order("o1", 52.0, 13.0, {"a": 1, "b": 1}),
            order("o2", 51.1, 13.0, {"a": 2, "c": 1}),
            order("o3", 52.0, 13.0, {"b": 1, "c": 1}),
        ],
        costs=SIMPLE_COSTS,
    )


@pytest.fixture
def scarce() -> AllocationRequest:
    """One unit in the near store, a far DC that arrives late: the VIP gets the near unit."""
    return AllocationRequest(
        nodes=[
            node("store", 52.0, 13.0, kind=NodeKind.STORE, inventory={"a": 1}),
            node("dc", 50.0, 13.0, inventory={"a": 10}),
        ],
        orders=[
            order("std", 52.0, 13.0, {"a": 1}, promise_by_s=3600),
            order("vip", 52.0, 13.0, {"a": 1}, tier=Tier.VIP, promise_by_s=3600),
        ],
        costs=SIMPLE_COSTS.model_copy(update={"late_shipment": 5.0}),
        rules=AllocationRules(promise="penalise"),
    )


@pytest.fixture
def tied_capacity_one_order() -> AllocationRequest:
    """One order (2 x sku-0009, 1 x sku-0015) over three nodes that ship 2 units each.

    The cheapest answer ships 2 units from dc-01 and 1 from ds-02, and which line dc-01
    ships twice is a tie (a node's units all cost the same). HiGHS' one-order MIP answered
    with a point inside that tie, 1.5 + 0.5 units from dc-01 and 0.5 + 0.5 from ds-02, and
    rounding it column by column shipped 3 units of the 2-unit line (a ``Kpis`` validation
    error, ``units_unfilled = -1``) or left the 1-unit line unfilled while claiming optimal.
    Reduced from a logged production request (``bug_v231``).
    """
    hours = [TimeWindow(start_s=25200, end_s=86400)]

    def dark_store(node_id: str, x: float, y: float, units: dict[str, int]) -> AllocationNode:
        return AllocationNode(
            id=node_id,
            kind=NodeKind.DARK_STORE,
            location=Location(x=x, y=y),
            inventory=units,
            safety_stock=1,
            capacity_units=2,
            capacity_orders=70,
            handling_cost_per_unit=0.5,
            lead_time_s=600,
            opening_hours=hours,
        )

    return AllocationRequest(
        nodes=[
            AllocationNode(
                id="dc-01",
                location=Location(x=211.0, y=2780.0),
                inventory={"sku-0009": 31, "sku-0015": 5},
                capacity_units=2,
                capacity_orders=105,
                handling_cost_per_unit=0.35,
                lead_time_s=2700,
            ),
            dark_store("ds-01", 2837.0, 846.0, {"sku-0009": 3, "sku-0015": 3}),
            dark_store("ds-02", 1248.0, 1339.0, {"sku-0009": 2, "sku-0015": 5}),
        ],
        orders=[
            AllocationOrder(
                id="o00232",
                location=Location(x=1510.0, y=1286.0),
                lines=[
                    OrderLine(sku="sku-0009", quantity=2),
                    OrderLine(sku="sku-0015", quantity=1),
                ],
                promise_by_s=86400,
                created_s=69418,
            )
        ],
        costs=AllocationCosts(
            per_shipment=8.759,
            per_unit=0.423,
            per_unit_distance=0.000541,
            distance_unit="mile",
        ),
        rules=AllocationRules(promise="penalise"),
        distance_km=[[3.547], [1.784], [0.802]],
        travel_s=[[301], [157], [97]],
    )


def allocation_vector(prob: Problem, result: AllocationResult) -> np.ndarray:
    """The units per arc of ``result`` (its assignments mapped back onto ``prob``'s arcs)."""
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    order_of = {oid: o for o, oid in enumerate(prob.order_ids)}
    node_of = {nid: n for n, nid in enumerate(prob.node_ids)}
    sku_of = {sid: s for s, sid in enumerate(prob.sku_ids)}
    arc_order = prob.pair_order[prob.arc_pair]
    for a in result.assignments:
        hit = np.flatnonzero(
            (arc_order == order_of[a.order_id])
            & (prob.arc_node == node_of[a.node_id])
            & (prob.arc_sku == sku_of[a.sku])
        )
        assert hit.size == 1, f"no single arc for {a}"
        x[hit[0]] += a.quantity
    return x


def brute_force(prob: Problem) -> tuple[int, np.ndarray]:
    """Exact optimum by enumerating every arc quantity (tiny problems only).

    Every allocation is enumerated (in :func:`itertools.product`'s order: the first of
    equally cheap ones is returned); those shipping more of a line than ordered or more of a
    node's SKU than it holds are dropped at once, all together, the others checked one by one
    (``Problem.violations``, ``Problem.evaluate``): each such check took ~0.4 ms, and up to
    200,000 allocations were checked so (seconds per drawn example of the property tests).
    """
    shape = tuple(int(u) + 1 for u in prob.arc_ub)
    assert np.prod(shape, dtype=float) <= 200_000, "too big to enumerate"
    # every allocation, one a row, the last arc's quantity changing fastest (no arc: the one
    # allocation ships nothing)
    combos = (
        np.indices(shape, dtype=np.int64).reshape(len(shape), -1).T
        if shape
        else np.zeros((1, 0), dtype=np.int64)
    )
    line_of = np.zeros((prob.num_arcs, prob.num_lines), dtype=np.int64)
    line_of[np.arange(prob.num_arcs), prob.arc_line] = 1
    stock_of = np.zeros((prob.num_arcs, prob.avail.size), dtype=np.int64)
    stock_of[np.arange(prob.num_arcs), prob.arc_node * prob.avail.shape[1] + prob.arc_sku] = 1
    within = ((combos @ line_of) <= prob.line_qty).all(axis=1) & (
        (combos @ stock_of) <= prob.avail.ravel()
    ).all(axis=1)
    best = None
    best_x = np.zeros(prob.num_arcs, dtype=np.int64)
    for x in combos[within]:
        if prob.violations(x):
            continue
        total = prob.evaluate(x).total
        if best is None or total < best:
            best, best_x = total, x.copy()
    assert best is not None
    return best, best_x


def nodes_in_a_row(
    draw: st.DrawFn,
    n_nodes: int,
    skus: list[str],
    *,
    spacing: float,
    places: int,
    max_units: int,
) -> list[AllocationNode]:
    """``n_nodes`` nodes at one of ``places`` spots ``spacing`` degrees apart, drawn stock."""
    return [
        node(
            f"n{i}",
            50.0 + spacing * draw(st.integers(0, places - 1)),
            10.0,
            inventory={s: draw(st.integers(0, max_units)) for s in skus},
        )
        for i in range(n_nodes)
    ]


def priced_one_order(
    draw: st.DrawFn, nodes: list[AllocationNode], quantities: dict[str, int]
) -> tuple[Problem, Duals]:
    """One order over ``nodes`` with drawn shipment and split prices, and drawn stock duals."""
    req = AllocationRequest(
        nodes=nodes,
        orders=[order("o", 50.0, 10.0, quantities)],
        costs=AllocationCosts(
            per_shipment=draw(st.floats(0, 20)),
            per_unit=1.0,
            per_unit_distance=0.1,
            distance_unit="km",
            unfilled_unit=30.0,
            split_penalty=draw(st.floats(0, 5)),
        ),
        rules=AllocationRules(max_nodes_per_order=draw(st.none() | st.integers(1, 3))),
    )
    prob = compile_request(req)
    duals = Duals.zeros(prob)
    prices = st.floats(0, 15)
    duals.stock = -np.array(
        [[draw(prices) for _ in range(duals.stock.shape[1])] for _ in range(len(nodes))]
    )
    return prob, duals


def small_city_request(seed: int, *, tight: bool, vip_share: bool) -> AllocationRequest:
    """A 60-order, 6-node city day; ``vip_share``: VIP orders may use a tenth of each node's
    capacity; ``tight``: capacities that bind (a third of what the nodes carry)."""
    from scenarios.generate import generate_city

    scenario = generate_city(seed=seed, num_orders=60, num_nodes=6, num_couriers=3)
    request = AllocationRequest.from_scenario(scenario)
    if vip_share:
        request = request.model_copy(
            update={"rules": request.rules.model_copy(update={"vip_capacity_share": 0.1})}
        )
    if tight:
        request = request.model_copy(
            update={
                "nodes": [
                    n.model_copy(update={"capacity_units": max(1, (n.capacity_units or 30) // 3)})
                    for n in request.nodes
                ]
            }
        )
    return request
