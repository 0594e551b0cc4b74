"""Repair of the orders an allocation serves far dearer than the master LP does.

In the omnichannel city the integer phase's answer sits ~2.5 % above the master LP value,
and ~95 % of that excess is carried by ~2 % of the orders: orders the LP ships whole from
one node (mixing two such patterns) that the allocation splits over four to six nodes,
because other orders hold the units they need. Freeing such an order together with the
orders holding the stock of its LP patterns, and solving the compact MIP of those orders
(every pair, so every pattern, on what the other orders leave), moves the holders to
equivalent nodes and gives the order its stock back: typically 80 orders change for one
such order. The pattern neighbourhood search cannot find these moves: about half the
patterns they need are not in the pool (measured on the 10,000-order city: the pattern
MIP over the same orders gained 17 where the compact MIP gained 166).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from solvers.allocation.compact import solve_compact
from solvers.allocation.highs_model import NO_PRIMAL_HEURISTICS, cancelled, run_in_threads
from solvers.allocation.master import Master
from solvers.allocation.problem import F64, I64, MICRO, Problem

log = logging.getLogger(__name__)

#: orders one repair MIP frees at most (the order and the holders of its stock; the
#: holders are drawn at random beyond that)
REPAIR_ORDERS = 120
#: time limit of one repair MIP (seconds): most end in 0.01-0.3 s, and the few that take
#: seconds are better spent on other orders (see docs/allocation.md, session 22). The
#: MIPs run without HiGHS' RENS, RINS, root reduced-cost and feasibility-jump heuristics:
#: from a 60 s answer of the 10,000-order city, 10 s of repairs on two threads solved 216
#: MIPs and gained 829 so, against 164 MIPs and 709 with HiGHS' defaults
REPAIR_MIP_S = 0.5
#: orders whose excess over their LP cost is below this (currency units) are not repaired
REPAIR_MIN_EXCESS = 1.0
#: each pick looks at this many of the dearest orders against the LP (none left untried
#: there: the repairs end and the search gets the time)
REPAIR_CANDIDATES = 4 * REPAIR_ORDERS


@dataclass
class _Loads:
    """What some orders' shipments use of the shared limits."""

    stock: I64  # N x S
    units: I64  # per node
    parcels: I64
    vip_units: I64
    vip_parcels: I64


def _loads(prob: Problem, arcs: I64, q: I64) -> _Loads:
    """The stock and capacity used by ``q`` units on ``arcs`` (arcs with q > 0 only)."""
    node = prob.arc_node[arcs]
    stock = np.zeros_like(prob.avail)
    np.add.at(stock, (node, prob.arc_sku[arcs]), q)
    pairs = np.unique(prob.arc_pair[arcs])
    n_n = prob.num_nodes
    vip_arc = prob.order_vip[prob.pair_order[prob.arc_pair[arcs]]]
    vip_pairs = pairs[prob.order_vip[prob.pair_order[pairs]]]
    return _Loads(
        stock=stock,
        units=np.bincount(node, weights=q, minlength=n_n).astype(np.int64),
        parcels=np.bincount(prob.pair_node[pairs], minlength=n_n),
        vip_units=np.bincount(node[vip_arc], weights=q[vip_arc], minlength=n_n).astype(np.int64),
        vip_parcels=np.bincount(prob.pair_node[vip_pairs], minlength=n_n),
    )


def _limits(prob: Problem) -> list[tuple[str, I64]]:
    """The capacity limits (-1 = none) by their :class:`_Loads` field."""
    return [
        ("units", prob.cap_units),
        ("parcels", prob.cap_orders),
        ("vip_units", prob.vip_cap_units),
        ("vip_parcels", prob.vip_cap_orders),
    ]


def _residual(prob: Problem, x: I64, fixed: np.ndarray) -> dict[str, I64]:
    """Stock and capacity the orders of ``fixed`` leave (limits of :meth:`Problem.subset`)."""
    arcs = np.flatnonzero((x > 0) & fixed[prob.pair_order[prob.arc_pair]])
    used = _loads(prob, arcs, x[arcs])
    left = {
        name: np.where(cap >= 0, np.maximum(cap - getattr(used, name), 0), cap)
        for name, cap in _limits(prob)
    }
    return {
        "avail": prob.avail - used.stock,
        "cap_units": left["units"],
        "cap_orders": left["parcels"],
        "vip_cap_units": left["vip_units"],
        "vip_cap_orders": left["vip_parcels"],
    }


def _fits(prob: Problem, x: I64, free: np.ndarray, arcs: I64, q: I64) -> bool:
    """True when ``q`` units on ``arcs`` (the ``free`` orders') fit beside the others in ``x``."""
    fixed = np.flatnonzero((x > 0) & ~free[prob.pair_order[prob.arc_pair]])
    others = _loads(prob, fixed, x[fixed])
    sel = q > 0
    mine = _loads(prob, arcs[sel], q[sel])
    if np.any(others.stock + mine.stock > prob.avail):
        return False
    return all(
        not np.any((cap >= 0) & (getattr(others, name) + getattr(mine, name) > cap))
        for name, cap in _limits(prob)
    )


@dataclass
class Repair:
    """Compact MIPs around the orders with the largest excess over their LP cost."""

    prob: Problem
    #: per order, its cost in the master LP solution (micro: sum of weight x pattern cost)
    lp_cost: F64
    #: per order, the (node, SKU) keys its LP patterns draw stock from
    lp_keys: list[I64]
    seed: int = 0
    tries: int = 0
    wins: int = 0
    #: answers dropped because another thread's changes took what they needed
    collisions: int = 0
    #: orders tried without a gain since the allocation last changed around them
    tried: set[int] = field(default_factory=set)
    #: the allocation the last :meth:`run` returned
    last: I64 | None = None

    @classmethod
    def from_lp(cls, prob: Problem, master: Master, z: F64, *, seed: int) -> Repair:
        """The repair of the master LP solution ``z`` (a weight per pool column)."""
        n_o = prob.num_orders
        lp_cost = np.zeros(n_o)
        keys: list[list[I64]] = [[] for _ in range(n_o)]
        n_s = prob.avail.shape[1]
        pool = master.pool
        for c in np.flatnonzero(z[: len(pool)] > 1e-9).tolist():
            o = int(pool.order[c])
            lp_cost[o] += z[c] * float(pool.cost[c])
            arcs = pool.arcs[c]
            if arcs.size:
                keys[o].append(prob.arc_node[arcs] * n_s + prob.arc_sku[arcs])
        lp_keys = [np.unique(np.concatenate(k)) if k else np.zeros(0, dtype=np.int64) for k in keys]
        return cls(prob, lp_cost, lp_keys, seed=seed)

    def run(self, x: I64, deadline: float, workers: int = 1) -> I64:
        """``x`` with its dearest orders (against the LP) repaired until ``deadline``.

        With ``workers`` > 1 that many threads solve repair MIPs at once, over disjoint sets
        of orders; an answer applies if it still fits beside what the others changed.
        """
        prob = self.prob
        rng = np.random.default_rng(self.seed + self.tries)
        n_s = prob.avail.shape[1]
        arc_order = prob.pair_order[prob.arc_pair]
        arc_key = prob.arc_node * n_s + prob.arc_sku
        x = x.copy()
        if self.last is not None:  # orders moved since (by a search) may repair again
            self.tried.difference_update(np.unique(arc_order[x != self.last]).tolist())
        excess = prob.order_costs(x) - self.lp_cost
        busy = np.zeros(prob.num_orders, dtype=bool)  # orders some thread's MIP frees now
        lock = threading.Lock()

        def pick() -> tuple[int, np.ndarray] | None:
            """The next order to repair and the orders its MIP frees (under the lock)."""
            ranked = np.argsort(-excess, kind="stable")[:REPAIR_CANDIDATES]
            for o in ranked.tolist():
                if excess[o] < REPAIR_MIN_EXCESS * MICRO:
                    return None
                if o in self.tried or busy[o]:
                    continue
                self.tried.add(o)
                used = np.flatnonzero(x > 0)
                holders = np.unique(arc_order[used[np.isin(arc_key[used], self.lp_keys[o])]])
                holders = holders[(holders != o) & ~busy[holders]]
                if holders.shape[0] > REPAIR_ORDERS - 1:
                    holders = rng.choice(holders, REPAIR_ORDERS - 1, replace=False)
                free = np.zeros(prob.num_orders, dtype=bool)
                free[o] = True
                free[holders] = True
                return o, free
            return None

        def step() -> bool:
            with lock:
                left = deadline - time.perf_counter()
                picked = None if left < 0.05 or cancelled() else pick()
                if picked is None:
                    return False
                victim, free = picked
                busy[free] = True
                orders = np.flatnonzero(free)
                sub, _pairs, arcs = prob.subset(orders, **_residual(prob, x, ~free))
                start = x[arcs]
                self.tries += 1
            try:
                t_mip = time.perf_counter()
                out = solve_compact(
                    sub,
                    start,
                    seconds=min(REPAIR_MIP_S, left),
                    gap=0.0,
                    threads=1,
                    seed=self.seed,
                    options=NO_PRIMAL_HEURISTICS,
                )
                gain = (
                    None if out.x is None else sub.evaluate(start).total - sub.evaluate(out.x).total
                )
                log.debug(
                    "repair order %d excess %.2f: %d orders, %s in %.2f s, gain %s",
                    victim,
                    excess[victim] / MICRO,
                    orders.shape[0],
                    out.status,
                    time.perf_counter() - t_mip,
                    gain,
                )
                if out.x is None or gain is None or gain <= 0:
                    return True
                with lock:
                    # the others' orders may have moved meanwhile (never these: busy)
                    if not _fits(prob, x, free, arcs, out.x):
                        self.collisions += 1
                        return True
                    self.wins += 1
                    x[arcs] = out.x
                    changed = np.unique(arc_order[arcs[out.x != start]])
                    excess[changed] = prob.order_costs(x)[changed] - self.lp_cost[changed]
                    # the orders around a change may have gained a repair
                    self.tried.difference_update(changed.tolist())
                    self.tried.add(victim)
                return True
            finally:
                with lock:
                    busy[free] = False

        run_in_threads(step, workers, "repair")
        self.last = x.copy()
        log.debug(
            "repair: %d MIPs, %d improved, %d collisions", self.tries, self.wins, self.collisions
        )
        return x
