"""Ejection moves: an order gets the node it wants by moving other orders' lines away.

In the omnichannel city the integer phase's answer loses against the master LP mostly on
orders left short or split because the node they need is full: the distribution centres,
the only nodes with the long-tail SKUs, run at their unit capacity, partly with units that
stores could ship almost as cheaply (handling 0.35 at a DC, 0.5-0.9 elsewhere; distance
costs differ by fractions of a cent). The neighbourhood search and the repairs (module
:mod:`solvers.allocation.repair`) free orders around *stock*; a full node's capacity is
held by hundreds of orders, too many for one MIP. An ejection move here takes one order's
better allocation (every line from one node, one parcel's lines moved into another
parcel, or a short line filled) and makes room for it by moving whole lines of other
orders (at most one line per order) to other nodes with stock and room, cheapest per
unit first; it applies when the whole change costs less. Each move is checked exactly
against stock, unit and parcel capacities, VIP shares and the node limit per order.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from solvers.allocation.highs_model import cancelled
from solvers.allocation.master import pattern_cost
from solvers.allocation.problem import F64, I64, Problem

log = logging.getLogger(__name__)

#: orders whose excess over their LP cost is below this (micro-units) are not tried
EJECT_MIN_EXCESS = 1_000_000


@dataclass
class _Move:
    """One planned line move of another order: ``q`` units from arc ``a`` to arc ``b``."""

    a: int
    b: int
    q: int
    delta: int  # cost change of its order (micro)


@dataclass
class Ejector:
    """Ejection moves for the orders served dearest against their LP cost."""

    prob: Problem
    #: per order, its cost in the master LP solution (micro)
    lp_cost: F64
    tries: int = 0
    wins: int = 0
    #: orders tried without a gain since the allocation last changed around them
    tried: set[int] = field(default_factory=set)
    last: I64 | None = None
    #: total gain of the applied moves (micro), as each move computed it
    gained: int = 0
    #: answers dropped by the final check (a limit broken or a loss: a defect if ever > 0)
    dropped: int = 0

    def __post_init__(self) -> None:
        prob = self.prob
        by_line = np.argsort(prob.arc_line, kind="stable")
        self._line_arcs = by_line
        self._line_start = np.searchsorted(prob.arc_line[by_line], np.arange(prob.num_lines + 1))
        self._arc_order = prob.pair_order[prob.arc_pair]
        self._vip = bool(np.any(prob.vip_cap_units >= 0) or np.any(prob.vip_cap_orders >= 0))

    # ------------------------------------------------------------------ state
    def _load(self, x: I64) -> None:
        prob = self.prob
        self.x = x.copy()
        n_n = prob.num_nodes
        used = np.flatnonzero(self.x > 0)
        node = prob.arc_node[used]
        self.free = prob.avail.copy()
        np.subtract.at(self.free, (node, prob.arc_sku[used]), self.x[used])
        self.units = np.bincount(node, weights=self.x[used], minlength=n_n).astype(np.int64)
        self.pair_units = np.bincount(
            prob.arc_pair[used], weights=self.x[used], minlength=prob.num_pairs
        ).astype(np.int64)
        open_pairs = self.pair_units > 0
        self.parcels = np.bincount(prob.pair_node[open_pairs], minlength=n_n).astype(np.int64)
        self.order_parcels = np.bincount(
            prob.pair_order[open_pairs], minlength=prob.num_orders
        ).astype(np.int64)
        vip_arc = prob.order_vip[self._arc_order[used]]
        self.vip_units = np.bincount(
            node[vip_arc], weights=self.x[used][vip_arc], minlength=n_n
        ).astype(np.int64)
        vip_pair = open_pairs & prob.order_vip[prob.pair_order]
        self.vip_parcels = np.bincount(prob.pair_node[vip_pair], minlength=n_n).astype(np.int64)
        self._menus: dict[int, I64] = {}
        self.node_arcs: list[set[int]] = [set() for _ in range(n_n)]
        for a, n in zip(used.tolist(), node.tolist(), strict=True):
            self.node_arcs[n].add(a)

    def _order_cost(self, o: int, xo: I64) -> int:
        """Cost (micro) of order ``o`` shipping ``xo`` on its arcs."""
        prob = self.prob
        p0, p1 = int(prob.order_pair_start[o]), int(prob.order_pair_start[o + 1])
        a0, a1 = int(prob.pair_arc_start[p0]), int(prob.pair_arc_start[p1])
        return pattern_cost(prob, o, np.arange(a0, a1), xo)

    # ------------------------------------------------------------ relocations
    def _options(self, arcs: I64, plan: _Plan | None) -> tuple[I64, I64, I64]:
        """Every move of one of ``arcs``' units to another node of its line that fits, as
        rows (index into ``arcs``, arc moved to, cost change of its order in micro).

        With ``plan``, the loads it changes count (exact); without, the allocation as it
        is (the menus' ordering).
        """
        prob, x = self.prob, self.x
        lines = prob.arc_line[arcs]
        lo, hi = self._line_start[lines], self._line_start[lines + 1]
        counts = hi - lo
        src = np.repeat(np.arange(arcs.size), counts)
        offsets = np.arange(src.size) - np.repeat(np.cumsum(counts) - counts, counts)
        cand = self._line_arcs[np.repeat(lo, counts) + offsets]
        keep = cand != arcs[src]
        src, cand = src[keep], cand[keep]
        a = arcs[src]
        q, k, h = x[a], prob.arc_sku[a], self._arc_order[a]
        y, pa, pb = prob.arc_node[cand], prob.arc_pair[a], prob.arc_pair[cand]
        if plan is None:
            zero = np.zeros(src.size, dtype=np.int64)
            d_stock = d_units = d_parcels = d_vip_units = d_vip_parcels = d_pa = d_pb = zero
        else:
            d_stock = _at(plan.stock, zip(y.tolist(), k.tolist(), strict=True))
            d_units, d_parcels = _at(plan.units, y.tolist()), _at(plan.parcels, y.tolist())
            d_vip_units = _at(plan.vip_units, y.tolist())
            d_vip_parcels = _at(plan.vip_parcels, y.tolist())
            d_pa, d_pb = _at(plan.pairs, pa.tolist()), _at(plan.pairs, pb.tolist())
        ok = prob.arc_ub[cand] >= x[cand] + q
        ok &= self.free[y, k] + d_stock >= q
        cap_u = prob.cap_units[y]
        ok &= (cap_u < 0) | (self.units[y] + d_units + q <= cap_u)
        new_pair = self.pair_units[pb] + d_pb <= 0
        cap_o = prob.cap_orders[y]
        ok &= ~new_pair | (cap_o < 0) | (self.parcels[y] + d_parcels + 1 <= cap_o)
        empties = self.pair_units[pa] + d_pa == q
        if prob.max_nodes > 0:
            ok &= ~new_pair | empties | (self.order_parcels[h] + 1 <= prob.max_nodes)
        if self._vip:
            vu, vo = prob.vip_cap_units[y], prob.vip_cap_orders[y]
            vip_ok = (vu < 0) | (self.vip_units[y] + d_vip_units + q <= vu)
            vip_ok &= ~new_pair | (vo < 0) | (self.vip_parcels[y] + d_vip_parcels + 1 <= vo)
            ok &= ~prob.order_vip[h] | vip_ok
        parcels_after = self.order_parcels[h] + new_pair.astype(np.int64) - empties.astype(np.int64)
        delta = q * (prob.arc_cost[cand] - prob.arc_cost[a])
        delta += np.where(new_pair, prob.pair_fixed[pb], 0) - np.where(
            empties, prob.pair_fixed[pa], 0
        )
        delta += prob.split * (
            np.maximum(parcels_after - 1, 0) - np.maximum(self.order_parcels[h] - 1, 0)
        )
        return src[ok], cand[ok], delta[ok]

    def _relocation(self, a: int, plan: _Plan) -> _Move | None:
        """The cheapest move of arc ``a``'s units to another node of its line, or None."""
        _src, cand, delta = self._options(np.array([a], dtype=np.int64), plan)
        if cand.size == 0:
            return None
        i = int(np.argmin(delta))
        return _Move(a=a, b=int(cand[i]), q=int(self.x[a]), delta=int(delta[i]))

    def _menu(self, node: int, sku: int | None) -> I64:
        """Arcs on ``node`` (of ``sku``) whose lines could move elsewhere, cheapest per unit
        first (each line to its cheapest other node).

        Judged on the allocation as it is (the plan's changes are checked when a move is
        taken); kept until the allocation changes.
        """
        menu = self._menus.get(node)
        if menu is None:
            menu = self._menus[node] = self._node_menu(node)
        if sku is None:
            return menu
        return menu[self.prob.arc_sku[menu] == sku]

    def _node_menu(self, node: int) -> I64:
        """:meth:`_menu` of every SKU, computed afresh."""
        arcs = np.fromiter(self.node_arcs[node], dtype=np.int64)
        src, _cand, delta = self._options(arcs, None)
        if src.size == 0:
            return np.zeros(0, dtype=np.int64)
        per_unit = delta / self.x[arcs[src]]
        order = np.lexsort((per_unit, src))
        first = order[np.r_[True, src[order][1:] != src[order][:-1]]]
        best = first[np.argsort(per_unit[first], kind="stable")]
        return arcs[src[best]]

    def _make_room(
        self, node: int, plan: _Plan, *, sku: int | None, units: int, parcels: int
    ) -> bool:
        """Plan moves of other orders' lines off ``node`` until the room is there."""
        prob = self.prob
        for a in self._menu(node, sku).tolist():
            if units <= 0 and parcels <= 0:
                break
            if int(self._arc_order[a]) in plan.orders:
                continue
            pa = int(prob.arc_pair[a])
            empties = int(self.pair_units[pa]) + plan.pairs.get(pa, 0) == int(self.x[a])
            if units <= 0 and not empties:
                continue
            move = self._relocation(a, plan)  # exact, with the plan's changes
            if move is None:
                continue
            plan.add(self, move)
            units -= move.q
            parcels -= int(empties)
        return units <= 0 and parcels <= 0

    # ------------------------------------------------------------------ moves
    def _try(self, o: int, new: I64) -> int:
        """Apply order ``o``'s new arc quantities with the room made for them; the gain."""
        prob, x = self.prob, self.x
        p0, p1 = int(prob.order_pair_start[o]), int(prob.order_pair_start[o + 1])
        a0, a1 = int(prob.pair_arc_start[p0]), int(prob.pair_arc_start[p1])
        old = x[a0:a1]
        gain0 = self._order_cost(o, old) - self._order_cost(o, new)
        if gain0 <= 0:
            return 0
        plan = _Plan(orders={o})
        diff = new - old
        changed = np.flatnonzero(diff) + a0
        need: dict[tuple[int, int], int] = defaultdict(int)
        units: dict[int, int] = defaultdict(int)
        for a in changed.tolist():
            d = int(diff[a - a0])
            need[(int(prob.arc_node[a]), int(prob.arc_sku[a]))] += d
            units[int(prob.arc_node[a])] += d
        old_open = np.bincount(prob.arc_pair[a0:a1] - p0, weights=old, minlength=p1 - p0) > 0
        new_open = np.bincount(prob.arc_pair[a0:a1] - p0, weights=new, minlength=p1 - p0) > 0
        if prob.max_nodes > 0 and int(new_open.sum()) > prob.max_nodes:
            return 0
        parcels: dict[int, int] = defaultdict(int)
        for j in np.flatnonzero(new_open != old_open).tolist():
            parcels[int(prob.pair_node[p0 + j])] += 1 if new_open[j] else -1
        # o's own change first (frees what it leaves), then room where it falls short
        for (n, k), d in need.items():
            plan.stock[(n, k)] -= d
        for n, d in units.items():
            plan.units[n] += d
        for n, d in parcels.items():
            plan.parcels[n] += d
        vip = self._vip and bool(prob.order_vip[o])
        if vip:
            for n, d in units.items():
                plan.vip_units[n] += d
            for n, d in parcels.items():
                plan.vip_parcels[n] += d
        for (n, k), d in need.items():
            short = -(self.free[n, k] + plan.stock[(n, k)])
            if d > 0 and short > 0 and not self._make_room(n, plan, sku=k, units=short, parcels=0):
                return 0
        for n in list(plan.units):
            cap_u, cap_o = int(prob.cap_units[n]), int(prob.cap_orders[n])
            over_u = self.units[n] + plan.units[n] - cap_u if cap_u >= 0 else 0
            over_o = self.parcels[n] + plan.parcels[n] - cap_o if cap_o >= 0 else 0
            if (over_u > 0 or over_o > 0) and not self._make_room(
                n, plan, sku=None, units=max(over_u, 0), parcels=max(over_o, 0)
            ):
                return 0
        if not self._fits(plan):
            return 0
        gain = gain0 - sum(m.delta for m in plan.moves)
        if gain <= 0:
            return 0
        self._commit(o, a0, new, plan)
        return gain

    def _fits(self, plan: _Plan) -> bool:
        """Every limit holds after the plan (a final exact check)."""
        prob = self.prob
        if any(self.free[n, k] + d < 0 for (n, k), d in plan.stock.items()):
            return False
        limits = (
            (plan.units, self.units, prob.cap_units),
            (plan.parcels, self.parcels, prob.cap_orders),
            (plan.vip_units, self.vip_units, prob.vip_cap_units),
            (plan.vip_parcels, self.vip_parcels, prob.vip_cap_orders),
        )
        return not any(
            cap[n] >= 0 and load[n] + d > cap[n]
            for change, load, cap in limits
            for n, d in change.items()
        )

    def _commit(self, o: int, a0: int, new: I64, plan: _Plan) -> None:
        """Apply order ``o``'s new quantities and the plan's moves to the allocation."""
        prob, x = self.prob, self.x
        touched: list[tuple[int, int]] = []  # (arc, change)
        old = x[a0 : a0 + new.shape[0]]
        for i in np.flatnonzero(new != old).tolist():
            touched.append((a0 + i, int(new[i] - old[i])))
        for m in plan.moves:
            touched += [(m.a, -m.q), (m.b, m.q)]
        for a, d in touched:
            n, k, p = int(prob.arc_node[a]), int(prob.arc_sku[a]), int(prob.arc_pair[a])
            o_a = int(self._arc_order[a])
            was_open = self.pair_units[p] > 0
            x[a] += d
            self.free[n, k] -= d
            self.units[n] += d
            self.pair_units[p] += d
            is_open = self.pair_units[p] > 0
            vip = bool(prob.order_vip[o_a])
            if vip:
                self.vip_units[n] += d
            if was_open != is_open:
                step = 1 if is_open else -1
                self.parcels[n] += step
                self.order_parcels[o_a] += step
                if vip:
                    self.vip_parcels[n] += step
            if x[a] > 0:
                self.node_arcs[n].add(a)
            else:
                self.node_arcs[n].discard(a)
            # menus list this node's arcs; other nodes' menus may be a little stale about
            # this one's room (a move is checked exactly when taken)
            self._menus.pop(n, None)

    # ---------------------------------------------------------------- targets
    def _targets(self, o: int) -> list[I64]:
        """Better allocations of order ``o`` alone, most promising first."""
        prob, x = self.prob, self.x
        p0, p1 = int(prob.order_pair_start[o]), int(prob.order_pair_start[o + 1])
        a0, a1 = int(prob.pair_arc_start[p0]), int(prob.pair_arc_start[p1])
        xo = x[a0:a1]
        lines = range(int(prob.order_line_start[o]), int(prob.order_line_start[o + 1]))
        arc_line = prob.arc_line[a0:a1]
        arc_pair = prob.arc_pair[a0:a1]
        full = prob.arc_ub[a0:a1] >= prob.line_qty[arc_line]
        out: list[I64] = []
        # every line whole from one node
        for p in range(p0, p1):
            mine = (arc_pair == p) & full
            if int(mine.sum()) == len(lines):
                new = np.zeros_like(xo)
                new[mine] = prob.line_qty[arc_line[mine]]
                out.append(new)
        # one open parcel's lines moved into another open parcel
        shipped_pairs = np.unique(arc_pair[xo > 0])
        for z in shipped_pairs.tolist():
            for p in shipped_pairs.tolist():
                if p == z:
                    continue
                new = xo.copy()
                ok = True
                for i in np.flatnonzero((arc_pair == z) & (xo > 0)).tolist():
                    j = np.flatnonzero((arc_pair == p) & (arc_line == arc_line[i]))
                    if j.size == 0 or prob.arc_ub[a0 + j[0]] < new[j[0]] + xo[i]:
                        ok = False
                        break
                    new[j[0]] += xo[i]
                    new[i] = 0
                if ok:
                    out.append(new)
        # a short line's missing units from one node
        shipped = np.bincount(arc_line - lines.start, weights=xo, minlength=len(lines))
        for line in lines:
            miss = int(prob.line_qty[line] - shipped[line - lines.start])
            if miss <= 0:
                continue
            for i in np.flatnonzero(arc_line == line).tolist():
                if prob.arc_ub[a0 + i] >= xo[i] + miss:
                    new = xo.copy()
                    new[i] += miss
                    out.append(new)
        base = self._order_cost(o, xo)
        scored = [(base - self._order_cost(o, t), i) for i, t in enumerate(out)]
        return [out[i] for g, i in sorted(scored, reverse=True) if g > 0]

    def run(self, x: I64, deadline: float) -> I64:
        """``x`` improved by ejection moves for its dearest orders until ``deadline``."""
        prob = self.prob
        self._load(x)
        if self.last is not None:
            moved = np.unique(self._arc_order[x != self.last])
            self.tried.difference_update(moved.tolist())
        excess = prob.order_costs(self.x) - self.lp_cost
        for o in np.argsort(-excess, kind="stable").tolist():
            if excess[o] < EJECT_MIN_EXCESS or time.perf_counter() > deadline or cancelled():
                break
            if o in self.tried:
                continue
            self.tried.add(o)
            for new in self._targets(o):
                if time.perf_counter() > deadline:
                    break
                self.tries += 1
                gain = self._try(o, new)
                if gain > 0:
                    self.wins += 1
                    self.gained += gain
                    break
        out = self.x
        if prob.violations(out) or prob.evaluate(out).total > prob.evaluate(x).total:
            log.warning("ejection moves broke a limit or lost: answer dropped")
            self.dropped += 1
            out = x
        self.last = out.copy()
        log.debug("eject: %d tries, %d improved", self.tries, self.wins)
        return out


@dataclass
class _Plan:
    """Planned changes of one move: other orders' line moves and the loads they shift."""

    orders: set[int]
    moves: list[_Move] = field(default_factory=list)
    stock: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    units: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    parcels: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    vip_units: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    vip_parcels: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    pairs: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, ej: Ejector, m: _Move) -> None:
        """Take move ``m`` into the plan."""
        prob = ej.prob
        h = int(ej._arc_order[m.a])
        self.orders.add(h)
        self.moves.append(m)
        for arc, d in ((m.a, -m.q), (m.b, m.q)):
            n, k, p = int(prob.arc_node[arc]), int(prob.arc_sku[arc]), int(prob.arc_pair[arc])
            before = int(ej.pair_units[p]) + self.pairs[p]
            self.pairs[p] += d
            after = before + d
            self.stock[(n, k)] -= d
            self.units[n] += d
            step = int(after > 0) - int(before > 0)
            self.parcels[n] += step
            if prob.order_vip[h]:
                self.vip_units[n] += d
                self.vip_parcels[n] += step


def _at(table: dict[Any, int], keys: Iterable[Any]) -> I64:
    """``table``'s value (0 when absent) at each of ``keys``."""
    return np.array([table.get(key, 0) for key in keys], dtype=np.int64)
