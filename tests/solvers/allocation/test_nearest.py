"""The nearest-node policy (:func:`heuristics.nearest`) gives the allocation of its earlier
code, which looked at every pair and arc of an order in turn (kept here as the reference)."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.model import Tier
from solvers.allocation import AllocationRequest, AllocationRules
from solvers.allocation.heuristics import NONE, arrival_sequence, nearest, pairs_by_distance
from solvers.allocation.problem import I64, Problem, compile_request

from .conftest import node, order


class _ScalarFill:
    """:func:`nearest`'s state as it was until session 70 (every pair, every arc)."""

    def __init__(self, prob: Problem, x: I64) -> None:
        self.x = x
        self.n_sku = int(prob.avail.shape[1])
        self.avail: list[int] = prob.avail.ravel().tolist()
        none = int(NONE)
        self.cap_units = [none if c < 0 else int(c) for c in prob.cap_units.tolist()]
        self.cap_orders = [none if c < 0 else int(c) for c in prob.cap_orders.tolist()]
        self.vip_units = [none if c < 0 else int(c) for c in prob.vip_cap_units.tolist()]
        self.vip_orders = [none if c < 0 else int(c) for c in prob.vip_cap_orders.tolist()]
        self.slot: list[int] = (prob.arc_node * self.n_sku + prob.arc_sku).tolist()
        self.arc_ub: list[int] = prob.arc_ub.tolist()
        self.arc_line: list[int] = prob.arc_line.tolist()
        self.line_qty: list[int] = prob.line_qty.tolist()
        self.arc_start: list[int] = prob.pair_arc_start.tolist()
        self.pair_node: list[int] = prob.pair_node.tolist()
        self.pair_start: list[int] = prob.order_pair_start.tolist()
        self.line_start: list[int] = prob.order_line_start.tolist()
        self.vip: list[bool] = prob.order_vip.tolist()
        self.max_nodes = int(prob.max_nodes)
        self.by_dist: list[int] = pairs_by_distance(prob).tolist()

    def room(self, order: int, node: int, units: int) -> bool:
        if units > self.cap_units[node] or self.cap_orders[node] < 1:
            return False
        return not self.vip[order] or (units <= self.vip_units[node] and self.vip_orders[node] >= 1)

    def run(self, orders: list[int]) -> None:
        avail, slot, arc_ub, arc_line, line_qty = (
            self.avail,
            self.slot,
            self.arc_ub,
            self.arc_line,
            self.line_qty,
        )
        for o in orders:
            p0, p1 = self.pair_start[o], self.pair_start[o + 1]
            if p0 == p1:
                continue
            pairs = self.by_dist[p0:p1]
            n_lines = self.line_start[o + 1] - self.line_start[o]
            chosen: list[tuple[int, int]] | None = None
            for p in pairs:
                a0, a1 = self.arc_start[p], self.arc_start[p + 1]
                if a1 - a0 != n_lines:
                    continue
                units = 0
                for a in range(a0, a1):
                    q = line_qty[arc_line[a]]
                    if arc_ub[a] < q or avail[slot[a]] < q:
                        break
                    units += q
                else:
                    if self.room(o, self.pair_node[p], units):
                        chosen = [(a, line_qty[arc_line[a]]) for a in range(a0, a1)]
                        break
            if chosen is None:
                chosen = self.by_line(o, pairs)
            self.take(o, chosen)

    def by_line(self, order: int, pairs: list[int]) -> list[tuple[int, int]]:
        avail, slot, arc_ub, arc_line = self.avail, self.slot, self.arc_ub, self.arc_line
        lines = range(self.line_start[order], self.line_start[order + 1])
        need = {line: self.line_qty[line] for line in lines}
        left = sum(need.values())
        out: list[tuple[int, int]] = []
        opened = 0
        for p in pairs:
            if not left:
                break
            trial: list[tuple[int, int]] = []
            units = 0
            for a in range(self.arc_start[p], self.arc_start[p + 1]):
                q = min(need[arc_line[a]], avail[slot[a]], arc_ub[a])
                if q > 0:
                    trial.append((a, q))
                    units += q
            if not trial:
                continue
            if 0 < self.max_nodes <= opened:
                break
            if not self.room(order, self.pair_node[p], units):
                continue
            for a, q in trial:
                need[arc_line[a]] -= q
            left -= units
            out += trial
            opened += 1
        return out

    def take(self, order: int, chosen: list[tuple[int, int]]) -> None:
        x, avail, slot = self.x, self.avail, self.slot
        per_node: dict[int, int] = {}
        for a, q in chosen:
            x[a] += q
            avail[slot[a]] -= q
            node = slot[a] // self.n_sku
            per_node[node] = per_node.get(node, 0) + q
        vip = self.vip[order]
        for node, units in per_node.items():
            self.cap_units[node] -= units
            self.cap_orders[node] -= 1
            if vip:
                self.vip_units[node] -= units
                self.vip_orders[node] -= 1


def reference_nearest(prob: Problem, seq: I64 | None = None) -> I64:
    """The allocation of the earlier code."""
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    _ScalarFill(prob, x).run((arrival_sequence(prob) if seq is None else seq).tolist())
    return x


SKUS = "abcde"
#: a few shared spots: nodes and orders at equal distances (ties in the ranking)
SPOTS = [(52.0, 13.0), (52.1, 13.0), (52.0, 13.2), (52.05, 13.1)]


@st.composite
def requests(draw: st.DrawFn) -> AllocationRequest:
    """Scarce stock at a few nodes on shared spots, capacities (VIP shares among them),
    orders of up to four lines, a node limit, VIP orders and arrival times out of order."""
    capped = draw(st.booleans())
    nodes = [
        node(
            f"n{i}",
            *draw(st.sampled_from(SPOTS)),
            inventory={s: draw(st.integers(0, 5)) for s in SKUS if draw(st.booleans())},
            safety_stock=draw(st.integers(0, 1)),
            capacity_units=draw(st.none() | st.integers(0, 8)) if capped else None,
            capacity_orders=draw(st.none() | st.integers(0, 3)) if capped else None,
        )
        for i in range(draw(st.integers(1, 6)))
    ]
    orders = []
    for j in range(draw(st.integers(1, 14))):
        skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=4, unique=True))
        orders.append(
            order(
                f"o{j}",
                *draw(st.sampled_from(SPOTS)),
                {s: draw(st.integers(1, 4)) for s in skus},
                tier=draw(st.sampled_from(list(Tier))),
                created_s=draw(st.integers(0, 3)),
            )
        )
    rules = AllocationRules(
        max_nodes_per_order=draw(st.none() | st.integers(1, 3)),
        vip_capacity_share=draw(st.sampled_from([1.0, 0.5])),
    )
    return AllocationRequest(nodes=nodes, orders=orders, rules=rules)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.booleans(), st.randoms(use_true_random=False))
def test_nearest_equals_the_earlier_code(
    req: AllocationRequest, prune: bool, rnd: random.Random
) -> None:
    """In arrival order and in any other, pruned candidates or not."""
    prob = compile_request(req, prune=prune)
    x = nearest(prob)
    assert np.array_equal(x, reference_nearest(prob))
    assert not prob.violations(x)
    seq = list(range(prob.num_orders))
    rnd.shuffle(seq)
    order_seq = np.array(seq, dtype=np.int64)
    assert np.array_equal(nearest(prob, seq=order_seq), reference_nearest(prob, order_seq))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.data())
def test_nearest_equals_the_earlier_code_on_residual_stock(
    req: AllocationRequest, data: st.DataObject
) -> None:
    """On a sub-problem of less stock (arcs bounded below their line, some at zero)."""
    prob = compile_request(req)
    keep = data.draw(st.lists(st.booleans(), min_size=prob.num_orders, max_size=prob.num_orders))
    orders = np.flatnonzero(keep).astype(np.int64)
    avail = np.array(
        [[data.draw(st.integers(0, int(a))) for a in row] for row in prob.avail.tolist()],
        dtype=np.int64,
    ).reshape(prob.avail.shape)
    sub, _pairs, _arcs = prob.subset(orders, avail=avail)
    seq = np.arange(sub.num_orders, dtype=np.int64)
    assert np.array_equal(nearest(sub, seq=seq), reference_nearest(sub, seq))


def test_nearest_equals_the_earlier_code_on_the_benchmark_requests() -> None:
    """300 literature orders (no capacity: line by line past the whole-order pairs) and 300
    city orders (capacities: pair by pair)."""
    from benchmarks.allocation import time_limit_request

    for family in ("literature", "city"):
        prob = compile_request(time_limit_request(family, 300))
        x = nearest(prob)
        assert np.array_equal(x, reference_nearest(prob)), family
        assert x.sum() > 0
