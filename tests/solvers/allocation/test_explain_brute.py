"""Per-order explanations checked against an independent brute force on tiny requests.

The checker below re-implements the documented cost function and rules (docs/allocation.md)
from the request alone: it shares no solver code beyond the public request and result
models. For every order of an answer it enumerates every allocation of that order with
every other order's allocation held fixed (what docs/allocation.md says explanations do)
and checks the best alternative, its extra cost and each named reason.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from scenarios.geo import Location, TimeWindow
from scenarios.model import NodeKind, OrderLine, Tier
from solvers.allocation import (
    AllocationCosts,
    AllocationNode,
    AllocationOrder,
    AllocationParams,
    AllocationRequest,
    AllocationRules,
    allocate,
)
from solvers.allocation import explain as explain_mod
from solvers.allocation.result import (
    AllocationResult,
    OrderExplanation,
    Reason,
    ReasonKind,
    UnfilledReason,
)

#: one order's allocation: (node index, SKU) -> units
Alloc = dict[tuple[int, str], int]

# a batch's explanations get max(1 s, 5 % of the limit) (solve._explain_budget): 15 s here,
# so that a loaded 2-core machine does not stop their searches and every claim is checked
# (a stop is accepted only with the notes that say so, see check_explanations)
EXACT = AllocationParams(mode="batch", mip_rel_gap=0.0, time_limit_s=300.0)
ONLINE = AllocationParams(mode="online", mip_rel_gap=0.0, time_limit_s=300.0)
SKUS = ["a", "b", "c"]


def _micro(value: float) -> int:
    """Currency to micro-units, rounded half up (docs: each price is rounded once)."""
    return math.floor(value * 1_000_000 + 0.5)


def _haversine_km(a: Location, b: Location) -> float:
    """Great-circle distance in km (haversine, R = 6371 km)."""
    assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
    la1, lo1, la2, lo2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


class BruteModel:
    """The documented cost function and limits of one request, written from the docs."""

    def __init__(self, req: AllocationRequest) -> None:
        self.req = req
        #: (order, node, rule) lifted: the node allowed despite its exclusion, on time, open
        #: now (its parcel leaves at now_s plus its lead time), or with room for the order
        #: ("capacity": its capacity and VIP share do not apply to the order)
        self.lift: tuple[int, int, str] | None = None
        costs, rules = req.costs, req.rules
        self.n_nodes, self.n_orders = len(req.nodes), len(req.orders)
        # the request's matrices, else great-circle km (R = 6371) and distance / speed
        # rounded to the second
        self.dist: list[list[float]] = (
            req.distance_km
            if req.distance_km is not None
            else [[_haversine_km(n.location, o.location) for o in req.orders] for n in req.nodes]
        )
        self.travel: list[list[int]] = (
            req.travel_s
            if req.travel_s is not None
            else [[round(d / rules.speed_kmh * 3600.0) for d in row] for row in self.dist]
        )
        self.ship = _micro(costs.per_shipment)
        self.unit = _micro(costs.per_unit)
        self.split = _micro(costs.split_penalty)
        self.handling = [_micro(n.handling_cost_per_unit) for n in req.nodes]
        per_km = costs.per_unit_distance / (1.609344 if costs.distance_unit == "mile" else 1.0)
        self.dist_cost = [[_micro(d * per_km) for d in row] for row in self.dist]
        self.vip = [o.tier == Tier.VIP for o in req.orders]
        self.vip_f = [rules.vip_priority if v else 1.0 for v in self.vip]
        # a parcel leaves at the first opening at or after now_s, plus the lead time
        self.ready: list[int | None] = []
        for node in req.nodes:
            start: int | None = rules.now_s if not node.opening_hours else None
            for w in node.opening_hours:
                if w.start_s <= rules.now_s <= w.end_s:
                    start = rules.now_s
                    break
                if w.start_s >= rules.now_s:
                    start = w.start_s
                    break
            self.ready.append(None if start is None else start + node.lead_time_s)
        self.avail: dict[tuple[int, str], int] = {}
        for n, node in enumerate(req.nodes):
            for sku, units in node.inventory.items():
                floor = node.safety_stock_for(sku)
                if node.kind in (NodeKind.STORE, NodeKind.DARK_STORE):
                    floor = max(floor, rules.store_floor_units)
                self.avail[n, sku] = max(0, units - floor)
        share = rules.vip_capacity_share

        def vip_cap(cap: int | None) -> int | None:
            # rounded down from the share as written: 0.35 x 700 = 245 (244.99999999999997)
            return None if cap is None or share >= 1.0 else math.floor(Fraction(repr(share)) * cap)

        self.vip_cap_units = [vip_cap(n.capacity_units) for n in req.nodes]
        self.vip_cap_orders = [vip_cap(n.capacity_orders) for n in req.nodes]
        self.lines: list[dict[str, int]] = []
        for order in req.orders:
            merged: dict[str, int] = {}
            for line in order.lines:
                merged[line.sku] = merged.get(line.sku, 0) + line.quantity
            self.lines.append(merged)
        self.pen: list[int] = []
        for o in range(self.n_orders):
            if costs.unfilled_unit is not None:
                base = _micro(costs.unfilled_unit)
            else:  # twice the cost of one unit alone from the order's dearest node, >= 1.0
                dearest = max(self.ship + self.unit_cost(n, o) for n in range(self.n_nodes))
                base = max(2 * dearest, 1_000_000)
            hard = 1
            if not rules.allow_unfilled:  # 100 x, never below 200 x one unit alone, nor 0
                dearest = max(
                    self.ship + self.split + self.late_cost(n, o, raw=True) + self.unit_cost(n, o)
                    for n in range(self.n_nodes)
                )
                base, hard = max(base, 2 * dearest, 1), 100
            self.pen.append(math.floor(base * self.vip_f[o] + 0.5) * hard)

    def unit_cost(self, n: int, o: int) -> int:
        """Per unit, handling and distance of one unit from node ``n`` to order ``o``."""
        return self.unit + self.handling[n] + self.dist_cost[n][o]

    def arrival(self, n: int, o: int) -> int | None:
        ready = self.ready[n]
        if self.lift == (o, n, "opening_hours"):
            ready = self.req.rules.now_s + self.req.nodes[n].lead_time_s
        return None if ready is None else ready + self.travel[n][o]

    def late_s(self, n: int, o: int) -> int:
        promise = self.req.orders[o].promise_by_s
        arrival = self.arrival(n, o)
        if promise is None or arrival is None:
            return 0
        return max(0, arrival - promise)

    def late_cost(self, n: int, o: int, *, raw: bool = False) -> int:
        """Lateness of a parcel from ``n`` (``raw``: priced under promise = forbid too)."""
        late = self.late_s(n, o)
        if self.lift == (o, n, "promise") and not raw:
            return 0  # on time
        if late == 0 or (self.req.rules.promise == "forbid" and not raw):
            return 0
        c = self.req.costs
        return math.floor(
            (c.late_shipment + c.late_per_hour * late / 3600.0) * self.vip_f[o] * 1_000_000 + 0.5
        )

    def block(self, n: int, o: int) -> str | None:
        """The rule that forbids node ``n`` for order ``o`` (None: allowed)."""
        region = self.req.orders[o].region
        lifted = self.lift[2] if self.lift is not None and self.lift[:2] == (o, n) else None
        if self.ready[n] is None and lifted != "opening_hours":
            return "opening_hours"
        if (
            region is not None
            and self.req.nodes[n].id in self.req.rules.excluded_nodes.get(region, [])
            and lifted != "excluded_nodes"
        ):
            return "excluded_nodes"
        if self.req.rules.promise == "forbid" and self.late_s(n, o) > 0 and lifted != "promise":
            return "promise"
        return None

    def shut(self, n: int, o: int) -> bool:
        """Node ``n`` may take no parcel of order ``o`` in this wave (no capacity at all, or
        no VIP share for a VIP order)."""
        node = self.req.nodes[n]
        caps = [node.capacity_orders, node.capacity_units]
        if self.vip[o]:
            caps += [self.vip_cap_orders[n], self.vip_cap_units[n]]
        return 0 in caps

    def restricted(self, o: int, sku: str) -> bool:
        region = self.req.orders[o].region
        return region is not None and region in self.req.rules.restricted_skus.get(sku, [])

    def cost(self, o: int, alloc: Alloc) -> int:
        """The order's share of the objective (micro-units)."""
        nodes = {n for (n, _), q in alloc.items() if q > 0}
        total = len(nodes) * self.ship + self.split * max(len(nodes) - 1, 0)
        total += sum(self.late_cost(n, o) for n in nodes)
        total += sum(q * self.unit_cost(n, o) for (n, _), q in alloc.items())
        shipped = Counter[str]()
        for (_, sku), q in alloc.items():
            shipped[sku] += q
        total += sum((qty - shipped[sku]) * self.pen[o] for sku, qty in self.lines[o].items())
        return total

    # ------------------------------------------------------------------ feasibility
    def usage(self, allocs: dict[int, Alloc], skip: int) -> dict[str, Counter[object]]:
        """Stock, units, parcels (and the VIP ones) every order but ``skip`` uses."""
        use: dict[str, Counter[object]] = {
            k: Counter() for k in ("stock", "units", "parcels", "vip_units", "vip_parcels")
        }
        for o, alloc in allocs.items():
            if o == skip:
                continue
            nodes = set()
            for (n, sku), q in alloc.items():
                if q <= 0:
                    continue
                nodes.add(n)
                use["stock"][n, sku] += q
                use["units"][n] += q
                if self.vip[o]:
                    use["vip_units"][n] += q
            for n in nodes:
                use["parcels"][n] += 1
                if self.vip[o]:
                    use["vip_parcels"][n] += 1
        return use

    def fits(
        self,
        o: int,
        alloc: Alloc,
        use: dict[str, Counter[object]],
        full: bool,
        *,
        cap_nodes: bool = True,
    ) -> bool:
        """True when ``alloc`` fits next to ``use`` (``full``: stock/capacity all its own).

        ``cap_nodes=False`` lifts ``max_nodes_per_order``.
        """
        rules = self.req.rules
        nodes = {n for (n, _), q in alloc.items() if q > 0}
        k = rules.max_nodes_per_order
        if cap_nodes and k is not None and len(nodes) > k:
            return False
        units = Counter[int]()
        for (n, sku), q in alloc.items():
            if q <= 0:
                continue
            if self.block(n, o) is not None or self.restricted(o, sku):
                return False
            taken = 0 if full else use["stock"][n, sku]
            if taken + q > self.avail.get((n, sku), 0):
                return False
            units[n] += q
        for n in nodes:
            if self.lift == (o, n, "capacity"):
                continue
            node = self.req.nodes[n]
            limits = [
                (node.capacity_units, "units", units[n]),
                (node.capacity_orders, "parcels", 1),
            ]
            if self.vip[o]:
                limits += [
                    (self.vip_cap_units[n], "vip_units", units[n]),
                    (self.vip_cap_orders[n], "vip_parcels", 1),
                ]
            for cap, key, mine in limits:
                if cap is not None and (0 if full else use[key][n]) + mine > cap:
                    return False
        return True

    def options(self, o: int) -> list[Alloc]:
        """Every allocation of order ``o`` within its lines and the stock (no other order)."""
        per_line: list[list[list[tuple[tuple[int, str], int]]]] = []
        for sku, qty in self.lines[o].items():
            nodes = [n for n in range(self.n_nodes) if self.avail.get((n, sku), 0) > 0]
            ways = []
            for split in itertools.product(*(range(qty + 1) for _ in nodes)):
                if sum(split) <= qty and all(
                    q <= self.avail[n, sku] for n, q in zip(nodes, split, strict=True)
                ):
                    ways.append([((n, sku), q) for n, q in zip(nodes, split, strict=True) if q])
            per_line.append(ways)
        out = []
        for combo in itertools.product(*per_line):
            out.append(dict(kv for way in combo for kv in way))
        return out

    def best(
        self,
        o: int,
        allocs: dict[int, Alloc],
        *,
        full: bool = False,
        avoid: int | None = None,
        cap_nodes: bool = True,
    ) -> tuple[int, list[Alloc]]:
        """Cheapest allocation(s) of order ``o`` (others fixed unless ``full``)."""
        use = self.usage(allocs, o)
        best_cost, best = None, []
        for alloc in self.options(o):
            if avoid is not None and any(n == avoid for (n, _), q in alloc.items() if q):
                continue
            if not self.fits(o, alloc, use, full, cap_nodes=cap_nodes):
                continue
            c = self.cost(o, alloc)
            if best_cost is None or c < best_cost:
                best_cost, best = c, [alloc]
            elif c == best_cost:
                best.append(alloc)
        assert best_cost is not None  # shipping nothing always fits
        return best_cost, best


def allocations(req: AllocationRequest, result: AllocationResult) -> dict[int, Alloc]:
    """The answer's assignments per order index."""
    node_of = {n.id: i for i, n in enumerate(req.nodes)}
    order_of = {o.id: i for i, o in enumerate(req.orders)}
    out: dict[int, Alloc] = {o: {} for o in range(len(req.orders))}
    for a in result.assignments:
        key = (node_of[a.node_id], a.sku)
        out[order_of[a.order_id]][key] = out[order_of[a.order_id]].get(key, 0) + a.quantity
    return out


def _nodes_of(alloc: Alloc) -> set[int]:
    return {n for (n, _), q in alloc.items() if q > 0}


def _note_count(notes: list[str], head: str, n_orders: int) -> int:
    """K of the note "<head>K of <n_orders> orders..." (0 without one; at most one)."""
    said = [re.match(rf"{re.escape(head)}(\d+) of (\d+) orders", note) for note in notes]
    found = [s for s in said if s is not None]
    assert len(found) <= 1, notes
    if not found:
        return 0
    assert int(found[0].group(2)) == n_orders, notes
    return int(found[0].group(1))


def _cut_orders(result: AllocationResult, n_orders: int) -> int:
    """How many explanations (the last ones) the time limit cut short; checked against the
    note that must count them."""
    cut = [ex.summary.endswith(explain_mod.CUT_SUMMARY) for ex in result.explanations]
    done = n_orders - sum(cut)
    assert cut == [False] * done + [True] * (n_orders - done), "cut explanations are the last"
    notes = [n for n in result.stats.notes if n.startswith("explanations cut")]
    if done == n_orders:
        assert not notes, notes
    else:
        assert notes == [
            f"explanations cut by the time limit: {done} of {n_orders} orders explained in "
            f"full, the other {n_orders - done} say '{explain_mod.CUT_SUMMARY}'"
        ], (notes, done)
    return n_orders - done


def check_explanations(req: AllocationRequest, result: AllocationResult) -> None:
    """Every documented claim of every explanation, against the brute force.

    Where the explanations' time stopped a search, a claim may be missing, but only with
    the note that says so (``result.stats.notes``): a missing best alternative is counted
    by "no best alternative searched for K of N orders", one found before the search ended
    by "best alternative searched in part for K of N orders", an explanation cut short by
    "explanations cut by the time limit" (with :data:`~explain.CUT_SUMMARY`), and missing
    reasons (own optimum, rule savings, a cap, a baseline's slack, a way to ship) by
    :data:`~explain.SEARCHES_STOPPED`. Whatever is said is checked in full.
    """
    m = BruteModel(req)
    allocs = allocations(req, result)
    node_of = {n.id: i for i, n in enumerate(req.nodes)}
    costs = {o: m.cost(o, allocs[o]) for o in allocs}
    assert sum(costs.values()) == result.cost.total_micros
    _check_cost_parts(m, req, result, allocs)
    n_orders = len(req.orders)
    assert len(result.explanations) == n_orders
    proven = result.gap is not None and result.gap <= 1e-12
    notes = result.stats.notes
    n_cut = _cut_orders(result, n_orders)
    unsearched = _note_count(notes, "no best alternative searched for ", n_orders)
    in_part = _note_count(notes, "best alternative searched in part for ", n_orders)
    stopped = explain_mod.SEARCHES_STOPPED in notes
    if n_cut or unsearched or in_part or stopped:
        event("explanation searches stopped by the time (noted)")
    missing = cut_shipping = dearer = 0
    for o, ex in enumerate(result.explanations):
        assert ex.order_id == req.orders[o].id
        chosen = _nodes_of(allocs[o])
        assert {node_of[n] for n in ex.nodes} == chosen, ex
        assert _micro(ex.cost) == costs[o], (ex, costs[o])
        use = m.usage(allocs, o)
        assert m.fits(o, allocs[o], use, full=False)
        here, _ = m.best(o, allocs)
        if proven:  # an optimal answer is each order's optimum on what the others leave
            assert here == costs[o], (ex, here)
        if o >= n_orders - n_cut:  # cut short: where and what it costs, nothing else
            assert ex.best_alternative is None and ex.reasons == [], ex
            cut_shipping += bool(chosen)
            continue
        alt = min((m.best(o, allocs, avoid=n)[0] for n in chosen), default=None)
        # (a), (b): the best alternative avoids one chosen node; cheapest such; extra cost
        if chosen and ex.best_alternative is None:
            missing += 1  # only with the note that counts it (below)
            assert "cheapest option" not in ex.summary, ex
        elif chosen:
            assert ex.best_alternative is not None and alt is not None
            got = ex.best_alternative
            assert abs(got.extra_cost - (got.cost - ex.cost)) < 1e-6
            alt_nodes = {node_of[n] for n in got.nodes}
            assert not chosen <= alt_nodes, ex  # it avoids a chosen node
            assert not got.blocked, ex
            if _micro(got.cost) != alt:  # only one whose search stopped (noted below)
                assert _micro(got.cost) > alt, (ex, alt / 1e6)
                assert "cheapest option" not in ex.summary, ex
                dearer += 1
            else:
                witnesses = [
                    a
                    for n in chosen
                    for a in m.best(o, allocs, avoid=n)[1]
                    if _nodes_of(a) == alt_nodes
                ]
                assert witnesses, (ex, "no cheapest alternative ships from", got.nodes)
        else:
            _check_nothing_shipped(m, req, o, ex, allocs, use, stopped)
        baseline = result.method in ("nearest", "rule_chain", "myopic")
        _check_reasons(m, req, o, ex, allocs, use, proven, baseline, stopped)
        # the summary calls the choice the cheapest only where no alternative costs less,
        # the alternatives searched to the end
        if "cheapest option" in ex.summary and "not the cheapest" not in ex.summary:
            assert ex.best_alternative is not None and alt is not None, ex
            assert _micro(ex.best_alternative.cost) == alt >= costs[o], (ex, alt / 1e6)
        if result.method in ("nearest", "rule_chain", "myopic"):  # no gap: nothing optimised
            assert not any("optimality gap" in r.message for r in ex.reasons), ex
    # a missing or not-the-best alternative only where a note counts it (an order whose
    # explanation was cut may be counted too, unsearched before it was cut)
    assert missing <= unsearched <= missing + cut_shipping, (notes, missing, cut_shipping)
    assert dearer <= in_part, (notes, dearer)
    _check_unfilled(m, req, result, allocs, proven)


def _lift_candidates(m: BruteModel, o: int, chosen: set[int]) -> list[tuple[int, str]]:
    """The nodes whose exclusion, promise or opening hours may cost order ``o``: they hold
    free stock of a line it may receive and are excluded or closed (allowed without that
    rule), or miss the promise (ruled out under forbid; late, priced and not chosen under
    penalise)."""
    wanted = [sku for sku in m.lines[o] if not m.restricted(o, sku)]
    out = []
    for n in range(m.n_nodes):
        if not any(m.avail.get((n, sku), 0) > 0 for sku in wanted):
            continue
        rule = m.block(n, o)
        if rule in ("excluded_nodes", "opening_hours"):
            m.lift = (o, n, rule)
            if m.block(n, o) is None:
                out.append((n, rule))
            m.lift = None
        elif n not in chosen and (rule == "promise" or (rule is None and m.late_cost(n, o) > 0)):
            out.append((n, "promise"))
        if rule is None and n not in chosen and m.shut(n, o):
            out.append((n, "capacity"))
    return out


def _lifted_best(
    m: BruteModel, o: int, allocs: dict[int, Alloc], n: int, rule: str
) -> tuple[int, list[Alloc]]:
    """The order's cheapest allocations on what the others leave with ``rule`` lifted at ``n``."""
    m.lift = (o, n, rule)
    try:
        return m.best(o, allocs)
    finally:
        m.lift = None


def _check_lift(
    m: BruteModel,
    req: AllocationRequest,
    o: int,
    r: Reason,
    allocs: dict[int, Alloc],
    proven: bool,
) -> None:
    """A named lateness, or a named rule with what lifting it would save, holds.

    The saving is against the order's cheapest way on what the others leave without any
    rule lifted (``here``): a baseline's own dearer choice is not part of it.
    """
    node_of = {n.id: i for i, n in enumerate(req.nodes)}
    assert r.node_id is not None
    at = node_of[r.node_id]
    chosen = _nodes_of(allocs[o])
    here, _ = m.best(o, allocs)
    rule = r.rule or "capacity"
    if rule == "capacity":  # a node shut this wave: a limit, named without a rule
        assert r.kind in (ReasonKind.CAPACITY, ReasonKind.VIP_SHARE), r
        assert m.shut(at, o) and m.block(at, o) is None, r
        assert ("VIP share" in r.message) == (r.kind == ReasonKind.VIP_SHARE), r
    elif r.rule == "promise":
        said = re.search(r"arrives (\d+) s, promised by (\d+) s", r.message)
        assert said is not None and r.kind == ReasonKind.PROMISE, r
        assert int(said.group(1)) == m.arrival(at, o), r
        assert int(said.group(2)) == req.orders[o].promise_by_s, r
        assert m.late_s(at, o) > 0, r
    else:
        assert r.rule in ("excluded_nodes", "opening_hours") and r.kind == ReasonKind.RULE, r
        assert m.block(at, o) == r.rule, r
    if "lateness costs" in r.message:
        said = re.search(r"lateness costs ([\d.]+)", r.message)
        assert said is not None and at in chosen, r
        assert _micro(float(said.group(1))) == m.late_cost(at, o) > 0, r
        event("a late chosen node is named")
        return
    candidates = _lift_candidates(m, o, chosen)
    assert (at, rule) in candidates, (r, candidates)
    if "not searched to the end" in r.message:  # a search that stopped unproven: no claim
        event(f"a lifted rule's search is unsettled: {rule}")
        return
    event(f"a lifted rule is named: {rule}")
    said = re.search(r"would save ([\d.]+)", r.message)
    assert said is not None, r
    lifted, best = _lifted_best(m, o, allocs, at, rule)
    assert _micro(float(said.group(1))) == here - lifted > 0, (r, here, lifted)
    assert any(at in _nodes_of(a) for a in best), (r, "the lifted optimum does not use it")
    if "not finished" in r.message:  # another node's search stopped: "costs most" unproven
        event("a lifted rule is named, other searches unsettled")
        return
    for n, other in candidates:  # no other rule costs the order more
        assert _lifted_best(m, o, allocs, n, other)[0] >= lifted, (r, n, other)


def _check_nothing_shipped(
    m: BruteModel,
    req: AllocationRequest,
    o: int,
    ex: OrderExplanation,
    allocs: dict[int, Alloc],
    use: dict[str, Counter[object]],
    stopped: bool = False,
) -> None:
    """An order that ships nothing: the cheapest way it could ship, and what blocks it.

    The best alternative is the cheapest allocation that ships a unit on what the other
    orders leave; where none fits, the cheapest with all stock and capacity to itself,
    ``blocked``, with a reason naming a limit the other orders filled at one of its nodes;
    where none fits even then (rules, no stock), none; or none where ``stopped`` (the note
    :data:`~explain.SEARCHES_STOPPED`: the search for it may not have run).
    """
    node_of = {n.id: i for i, n in enumerate(req.nodes)}
    ships = [a for a in m.options(o) if _nodes_of(a)]
    here = [a for a in ships if m.fits(o, a, use, full=False)]
    alone = [a for a in ships if m.fits(o, a, use, full=True)]
    pool, blocked = (here, False) if here else (alone, True)
    event(f"ships nothing: {'none can ship' if not pool else 'blocked' if blocked else 'fits'}")
    got = ex.best_alternative
    if not pool:
        assert got is None, ex
        return
    if got is None and stopped:
        return
    assert got is not None, (ex, "no alternative for an order that could ship")
    best = min(m.cost(o, a) for a in pool)
    assert _micro(got.cost) == best, (ex, best / 1e6)
    assert abs(got.extra_cost - (got.cost - ex.cost)) < 1e-6, ex
    assert got.blocked == blocked, ex
    names = {node_of[n] for n in got.nodes}
    assert any(_nodes_of(a) == names and m.cost(o, a) == best for a in pool), ex
    if blocked:  # what the other orders took at one of its nodes is named
        filled = [
            r
            for r in ex.reasons
            if r.node_id is not None
            and node_of[r.node_id] in names
            and r.kind in (ReasonKind.STOCK, ReasonKind.CAPACITY, ReasonKind.VIP_SHARE)
            and (
                "taken by other orders" in r.message
                or "full" in r.message
                or "used up" in r.message
            )
        ]
        assert filled, ex


def _check_cost_parts(
    m: BruteModel, req: AllocationRequest, result: AllocationResult, allocs: dict[int, Alloc]
) -> None:
    """The result's cost parts are the documented ones of its assignments."""
    parcels = [(n, o) for o, alloc in allocs.items() for n in _nodes_of(alloc)]
    units = [(n, o, q) for o, alloc in allocs.items() for (n, _), q in alloc.items()]
    shipped = {o: sum(alloc.values()) for o, alloc in allocs.items()}
    parts = {
        "shipping_fixed": m.ship * len(parcels),
        "shipping_units": m.unit * sum(q for *_, q in units),
        "shipping_distance": sum(m.dist_cost[n][o] * q for n, o, q in units),
        "handling": sum(m.handling[n] * q for n, _, q in units),
        "split": m.split * sum(max(len(_nodes_of(a)) - 1, 0) for a in allocs.values()),
        "lateness": sum(m.late_cost(n, o) for n, o in parcels),
        "unfilled": sum((sum(m.lines[o].values()) - shipped[o]) * m.pen[o] for o in allocs),
    }
    for name, want in parts.items():
        assert _micro(getattr(result.cost, name)) == want, (name, result.cost)
    shipping = parts["shipping_fixed"] + parts["shipping_units"] + parts["shipping_distance"]
    assert _micro(result.cost.shipping) == shipping, result.cost


def _check_unfilled(
    m: BruteModel,
    req: AllocationRequest,
    result: AllocationResult,
    allocs: dict[int, Alloc],
    proven: bool,
) -> None:
    """Each unfilled line: the right quantity, and a reason that holds."""
    order_of = {o.id: i for i, o in enumerate(req.orders)}
    node_of = {n.id: i for i, n in enumerate(req.nodes)}
    listed = {(u.order_id, u.sku): u for u in result.unfilled}
    for o, lines in enumerate(m.lines):
        for sku, qty in lines.items():
            short = qty - sum(q for (_, k), q in allocs[o].items() if k == sku)
            u = listed.get((req.orders[o].id, sku))
            assert (u.quantity if u else 0) == short, (u, short)
    for u in result.unfilled:
        o, sku = order_of[u.order_id], u.sku
        use = m.usage(allocs, o)
        holding = [n for n in range(m.n_nodes) if req.nodes[n].inventory.get(sku, 0) > 0]
        free = [n for n in holding if m.avail.get((n, sku), 0) > 0]
        allowed = [n for n in free if m.block(n, o) is None]
        # one more unit of the line from node n, on what the other orders leave
        plus_one, pays = [], []
        for n in allowed:
            more = dict(allocs[o])
            more[n, sku] = more.get((n, sku), 0) + 1
            if not m.restricted(o, sku) and m.fits(o, more, use, full=False):
                plus_one.append(n)
            if m.cost(o, more) < m.cost(o, allocs[o]):
                pays.append(n)  # one more unit from n would pay off, limits aside
        reason = u.reason.value
        if reason == "restricted_sku":
            assert m.restricted(o, sku), u
        elif reason == "no_stock":
            assert not holding, u
        elif reason == "safety_stock":
            assert holding and not free, u
        elif reason in ("excluded_nodes", "closed", "promise"):
            assert free and not allowed, u
        elif reason == "stock_exhausted":
            assert not set(pays) & set(plus_one), (u, pays, plus_one)
            # the nodes whose stock is gone, then ("; also: ") the other limits barring the
            # line: no node they name may ship one more unit of it
            head, _, rest = u.detail.partition("; also: ")
            assert bool(rest) == bool(u.also), u
            assert set(u.also) <= {
                UnfilledReason.CAPACITY,
                UnfilledReason.MAX_NODES,
                UnfilledReason.SAFETY_STOCK,
            }, u
            # units kept on the shelf at nodes that may serve the order, each as many as the
            # node holds beyond what it may ship
            kept = re.findall(r"(n\d+) keeps (\d+) \((?:safety_stock|store_floor_units)\)", rest)
            assert bool(kept) == (UnfilledReason.SAFETY_STOCK in u.also), u
            ex = result.explanations[o] if len(result.explanations) == len(req.orders) else None
            if kept and ex is not None and not ex.summary.endswith(explain_mod.CUT_SUMMARY):
                # the order's summary names the stock kept on the shelf as its line does
                shelf = next(part for part in rest.split("; ") if " keeps " in part)
                assert shelf in ex.summary, (u, ex.summary)
            for name, units in kept:
                n = node_of[name]
                held = req.nodes[n].inventory.get(sku, 0) - m.avail.get((n, sku), 0)
                assert int(units) == held > 0 and m.block(n, o) is None, (u, name)
            for n in [node_of[n] for n in re.findall(r"n\d+", rest)]:
                assert n not in plus_one, (u, n)
            if UnfilledReason.MAX_NODES in u.also:
                k = len(_nodes_of(allocs[o]))
                assert k == req.rules.max_nodes_per_order and f"from {k} node" in rest, u
            named = [node_of[n] for n in re.findall(r"n\d+", head)]
            assert named, u
            for n in named:
                assert (
                    m.avail.get((n, sku), 0) - use["stock"][n, sku] - allocs[o].get((n, sku), 0)
                    <= 0
                ), (u, n)
            if "other orders" in u.detail:
                assert any(use["stock"][n, sku] > 0 for n in named), u
        elif reason in ("capacity", "max_nodes"):
            assert not set(pays) & set(plus_one), (u, pays, plus_one)
            for n in [node_of[n] for n in re.findall(r"n\d+", u.detail)]:
                assert n not in plus_one, (u, n)
            if reason == "max_nodes":
                k = len(_nodes_of(allocs[o]))
                assert k == req.rules.max_nodes_per_order and f"from {k} node" in u.detail, u
        else:
            assert reason == "cost", u
            if proven:  # a limit that stops every unit that would pay off is not "cost"
                assert plus_one or not pays, (u, "a limit stops", pays)


def _check_reasons(
    m: BruteModel,
    req: AllocationRequest,
    o: int,
    ex: OrderExplanation,
    allocs: dict[int, Alloc],
    use: dict[str, Counter[object]],
    proven: bool,
    baseline: bool = False,
    stopped: bool = False,
) -> None:
    """(c): each named constraint or rule really holds for the node and SKU it names.

    ``baseline``: the answer is a baseline's (nothing optimised); ``stopped``: the note
    :data:`~explain.SEARCHES_STOPPED` is there, so a reason that a search finds may be
    missing (each one named is still checked).
    """
    order = req.orders[o]
    node_of = {n.id: i for i, n in enumerate(req.nodes)}
    chosen = _nodes_of(allocs[o])
    cost = m.cost(o, allocs[o])
    own, _ = m.best(o, allocs, full=True)
    nearest = min((m.dist[n][o] for n in chosen), default=math.inf)
    kinds = {r.kind for r in ex.reasons}
    binding = {ReasonKind.STOCK, ReasonKind.CAPACITY, ReasonKind.VIP_SHARE}
    wanted = [sku for sku in m.lines[o] if not m.restricted(o, sku)]
    for r in ex.reasons:
        at = node_of[r.node_id] if r.node_id is not None else None
        node = req.nodes[at] if at is not None else None
        # a node named for a rule or its capacity holds free stock of a line it could ship
        holds = at is not None and any(m.avail.get((at, sku), 0) > 0 for sku in wanted)
        # (an unfilled reason repeats its lines' causes: checked with the unfilled entries)
        if (r.rule in ("excluded_nodes", "opening_hours", "promise") and at not in chosen) or (
            r.kind != ReasonKind.UNFILLED and ("no capacity" in r.message or "is zero" in r.message)
        ):
            assert holds, (r, "the node holds nothing the order wants")
        if r.rule in ("safety_stock", "store_floor_units"):
            assert at is not None and r.sku in wanted and m.block(at, o) is None, r
        lift_said = "would save" in r.message or "to the end" in r.message
        if r.kind in (ReasonKind.CAPACITY, ReasonKind.VIP_SHARE) and lift_said:
            _check_lift(m, req, o, r, allocs, proven)  # a node shut this wave, lifted
        elif r.kind == ReasonKind.CHEAPEST:
            if "to itself" in r.message:
                assert own >= cost, (r, own, cost)
            else:  # "within the optimality gap": only an answer not proven optimal
                assert not proven, (ex, own, cost)
        elif r.kind == ReasonKind.STOCK:
            assert at is not None and r.sku is not None
            left = m.avail.get((at, r.sku), 0) - use["stock"][at, r.sku]
            want = re.search(r"\((-?\d+) left, (\d+) wanted\)", r.message)
            assert want is not None, r
            assert int(want.group(1)) == max(left, 0), (r, left)
            assert left < int(want.group(2)), r
            assert use["stock"][at, r.sku] > 0, (r, "no other order took any")
        elif r.kind == ReasonKind.CAPACITY:
            assert at is not None and node is not None
            if "parcel capacity" in r.message:
                assert node.capacity_orders is not None
                assert use["parcels"][at] >= node.capacity_orders, r
                assert at not in chosen, r
            elif "unit capacity" in r.message:
                assert node.capacity_units is not None
                left = node.capacity_units - use["units"][at]
                said = re.search(r"\((\d+) left, (\d+) wanted\)", r.message)
                assert said is not None and int(said.group(1)) == max(left, 0), (r, left)
                assert left < int(said.group(2)) <= sum(m.lines[o].values()), r
                # the own optimum fits the node's capacity over all its lines: the units it
                # wants are within the whole capacity, so other orders took the rest
                assert int(said.group(2)) <= node.capacity_units, (r, "wants past the capacity")
            else:
                assert "no capacity" in r.message, r
                assert node.capacity_orders == 0 or node.capacity_units == 0, r
                assert m.dist[at][o] < nearest, r
        elif r.kind == ReasonKind.VIP_SHARE:
            assert at is not None and m.vip[o], r
            vip_o, vip_u = m.vip_cap_orders[at], m.vip_cap_units[at]
            assert vip_o is not None or vip_u is not None, r
            if "zero" in r.message:
                assert vip_o == 0 or vip_u == 0, r
            else:
                room_o = math.inf if vip_o is None else vip_o - use["vip_parcels"][at]
                room_u = math.inf if vip_u is None else vip_u - use["vip_units"][at]
                if "parcel capacity" in r.message:
                    assert room_o <= 0, (r, room_o)
                else:
                    said = re.search(r"\((\d+) left, (\d+) wanted\)", r.message)
                    assert said is not None and int(said.group(1)) == max(room_u, 0), r
                    assert room_u < int(said.group(2)) <= sum(m.lines[o].values()), r
                    assert vip_u is not None and int(said.group(2)) <= vip_u, (r, "past the share")
        elif r.kind in (ReasonKind.RULE, ReasonKind.PROMISE):
            if r.rule == "restricted_skus":
                assert r.sku is not None and m.restricted(o, r.sku), r
                continue
            assert at is not None and node is not None, r
            dist = m.dist[at][o]
            if any(w in r.message for w in ("would save", "lateness costs", "to the end")):
                _check_lift(m, req, o, r, allocs, proven)
            elif r.rule in ("excluded_nodes", "opening_hours", "promise"):
                assert dist < nearest, (r, "not nearer than the choice")
                assert m.block(at, o) == r.rule, (r, m.block(at, o))
                assert (r.kind == ReasonKind.PROMISE) == (r.rule == "promise"), r
                if r.rule == "promise":
                    said = re.search(r"arrives (\d+) s, promised by (\d+) s", r.message)
                    assert said is not None, r
                    assert int(said.group(1)) == m.arrival(at, o), r
                    assert int(said.group(2)) == order.promise_by_s, r
            else:
                assert r.rule in ("safety_stock", "store_floor_units"), r
                assert r.sku is not None
                inv = node.inventory.get(r.sku, 0)
                held = inv - m.avail.get((at, r.sku), 0)
                said = re.search(r"holds (\d+) of \S+ but keeps (\d+)", r.message)
                assert said is not None and (int(said.group(1)), int(said.group(2))) == (
                    inv,
                    held,
                ), (r, inv, held)
                assert held > 0, r
                # it cost the order units of the line: nearer than where the line ships
                # from (anywhere, if the line is short) and shipping less than it wants
                qty = m.lines[o][r.sku]
                sources = [k for (k, sku), q in allocs[o].items() if sku == r.sku and q]
                got = sum(q for (_, sku), q in allocs[o].items() if sku == r.sku)
                reach = max(m.dist[k][o] for k in sources) if got == qty else math.inf
                assert dist < reach, (r, "not nearer than where the line ships from")
                assert m.avail.get((at, r.sku), 0) < qty, r
                assert allocs[o].get((at, r.sku), 0) < qty, r
                store = node.kind in (NodeKind.STORE, NodeKind.DARK_STORE)
                floor_wins = store and req.rules.store_floor_units > node.safety_stock_for(r.sku)
                assert (r.rule == "store_floor_units") == floor_wins, r
        elif r.kind == ReasonKind.MAX_NODES:
            assert r.rule == "max_nodes_per_order", r
            free, free_best = m.best(o, allocs, full=True, cap_nodes=False)
            said = re.search(r"shipping from (.*) would cost ([\d.]+) less", r.message)
            assert said is not None and _micro(float(said.group(2))) == own - free, (r, own, free)
            names = set(said.group(1).split(", "))
            assert any({req.nodes[k].id for k in _nodes_of(a)} == names for a in free_best), r
        elif r.kind == ReasonKind.UNFILLED:
            short = sum(m.lines[o].values()) - sum(allocs[o].values())
            assert r.message.startswith(f"{short} unit(s)"), (r, short)
            assert short > 0
    # a choice dearer than the order's own optimum was forced by a shared limit: say which
    if own < cost and proven and not stopped:
        assert kinds & binding, (ex, own / 1e6, cost / 1e6)
    # a choice as cheap as the order's own optimum (which fits every node's capacity over
    # all the order's lines) is called the cheapest, and nothing is said to have forced it
    if own >= cost and chosen:
        itself = any("to itself" in r.message for r in ex.reasons)
        assert itself or stopped, (ex, own / 1e6, cost / 1e6)
        traced = [r for r in ex.reasons if r.kind in binding and "wave" not in r.message]
        assert not [r for r in traced if "is zero" not in r.message], (ex, own / 1e6)
    short = sum(m.lines[o].values()) - sum(allocs[o].values())
    assert (ReasonKind.UNFILLED in kinds) == (short > 0), ex
    # every chosen parcel that misses the promise and pays for it is named
    late = {n for n in chosen if m.late_cost(n, o) > 0}
    named_late = {node_of[r.node_id or ""] for r in ex.reasons if "lateness costs" in r.message}
    assert named_late == late, (ex, late)
    # a rule (exclusion, promise, opening hours) that costs the order is named with what
    # lifting it saves against the order's cheapest way on what the others leave (also on
    # a baseline's answer), unless the explanation says its search did not finish
    here, here_best = m.best(o, allocs)
    lifts_named = any("would save" in r.message or "to the end" in r.message for r in ex.reasons)
    if not lifts_named and not stopped:
        for n, rule in _lift_candidates(m, o, chosen):
            assert _lifted_best(m, o, allocs, n, rule)[0] >= here, (ex, n, rule)
    # a baseline (or a solve within its gap) that leaves a cheaper way on what the others
    # leave says so, with the number
    slack = [
        r
        for r in ex.reasons
        if "baseline does not optimise: on what" in r.message
        or "within the optimality gap of the batch answer: on what" in r.message
    ]
    if slack:
        # the cheaper way ships from some nodes, or (a rule baseline shipping a unit dearer
        # to ship than to leave short) nowhere
        said = re.search(
            r"could (?:ship from (.*)|leave its units unfilled) for ([\d.]+) less", slack[0].message
        )
        assert said is not None and _micro(float(said.group(2))) == cost - here > 0, (ex, here)
        names = set(said.group(1).split(", ")) if said.group(1) is not None else set()
        assert any({req.nodes[k].id for k in _nodes_of(a)} == names for a in here_best), ex
        assert "not the cheapest option" in ex.summary, ex
        event("a baseline's slack is named")
    if baseline and here < cost and not stopped:
        assert slack, (ex, "the baseline's slack is not named", here, cost)
    # the cheapest option only where nothing cheaper fits what the others leave
    if ex.summary.endswith("; cheapest option") or "; cheapest option;" in ex.summary:
        assert here >= cost, (ex, "called the cheapest option", here, cost)
    # the cap on nodes per order is named wherever it costs the order's own optimum
    if req.rules.max_nodes_per_order is not None:
        free, _ = m.best(o, allocs, full=True, cap_nodes=False)
        named = ReasonKind.MAX_NODES in kinds
        assert named == (free < own) or (stopped and not named), (ex, own, free)


# ---------------------------------------------------------------------------- requests


@st.composite
def tiny_requests(draw: st.DrawFn, max_orders: int = 3) -> AllocationRequest:
    """1-3 orders, 2-4 nodes, 1-3 lines of 1-2 units; every rule drawn; exact prices."""
    n_nodes = draw(st.integers(2, 4))
    n_orders = draw(st.integers(1, max_orders))
    skus = SKUS[: draw(st.integers(1, 3))]
    nodes = []
    for i in range(n_nodes):
        hours = draw(
            st.sampled_from(
                [
                    [],
                    [],
                    [],
                    [TimeWindow(start_s=0, end_s=500)],  # closed for the rest of the horizon
                    [TimeWindow(start_s=3000, end_s=9000)],
                ]
            )
        )
        safety: int | dict[str, int] = draw(
            st.integers(0, 1) | st.dictionaries(st.sampled_from(skus), st.integers(0, 2))
        )
        nodes.append(
            AllocationNode(
                id=f"n{i}",
                kind=draw(st.sampled_from([NodeKind.DC, NodeKind.STORE])),
                location=Location(x=float(i), y=0.0),
                inventory={s: draw(st.integers(0, 4)) for s in skus},
                safety_stock=safety,
                capacity_units=draw(st.none() | st.none() | st.integers(0, 4)),
                capacity_orders=draw(st.none() | st.none() | st.integers(0, 2)),
                handling_cost_per_unit=draw(st.sampled_from([0.0, 0.5, 2.0])),
                lead_time_s=draw(st.sampled_from([0, 1800])),
                opening_hours=hours,
            )
        )
    orders = []
    for j in range(n_orders):
        mine = draw(st.lists(st.sampled_from(skus), min_size=1, max_size=3, unique=True))
        orders.append(
            AllocationOrder(
                id=f"o{j}",
                location=Location(x=float(j), y=1.0),
                region=draw(st.sampled_from([None, "r1", "r2"])),
                tier=draw(st.sampled_from([Tier.STANDARD, Tier.STANDARD, Tier.VIP])),
                lines=[OrderLine(sku=s, quantity=draw(st.integers(1, 2))) for s in mine],
                promise_by_s=draw(st.none() | st.sampled_from([2000, 5000, 9000])),
            )
        )
    distance = [[draw(st.integers(0, 40)) * 1.0 for _ in orders] for _ in nodes]
    travel = [[int(d * 90) for d in row] for row in distance]
    ids = [n.id for n in nodes]
    rules = AllocationRules(
        now_s=1000,
        max_nodes_per_order=draw(st.none() | st.integers(1, 2)),
        promise=draw(st.sampled_from(["forbid", "penalise"])),
        store_floor_units=draw(st.integers(0, 1)),
        vip_capacity_share=draw(st.sampled_from([1.0, 0.5])),
        vip_priority=draw(st.sampled_from([10.0, 2.0])),
        restricted_skus={"b": ["r2"]} if draw(st.booleans()) else {},
        excluded_nodes={"r1": draw(st.lists(st.sampled_from(ids), max_size=1))},
        allow_unfilled=draw(st.sampled_from([True, True, True, False])),
    )
    costs = AllocationCosts(
        per_shipment=draw(st.sampled_from([0.0, 2.0, 5.0, 10.0])),
        per_unit=draw(st.sampled_from([0.0, 1.0])),
        per_unit_distance=draw(st.sampled_from([0.0, 0.1, 0.5])),
        distance_unit="km",
        unfilled_unit=draw(st.none() | st.sampled_from([8.0, 20.0, 40.0, 60.0])),
        split_penalty=draw(st.sampled_from([0.0, 1.0, 3.0])),
        late_shipment=draw(st.sampled_from([0.0, 2.0])),
        late_per_hour=draw(st.sampled_from([0.0, 1.0])),
    )
    return AllocationRequest(
        nodes=nodes,
        orders=orders,
        costs=costs,
        rules=rules,
        distance_km=distance,
        travel_s=travel,
    )


BRUTE = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


#: the default run's brute-force audits: 40 requests each (the 100 of BRUTE run with -m slow)
BRUTE_DEFAULT = settings(BRUTE, max_examples=40)


@BRUTE_DEFAULT
@given(tiny_requests())
def test_batch_explanations_hold_against_brute_force(req: AllocationRequest) -> None:
    """Alternatives, extra costs and named limits of the batch answer are all true."""
    note(req.model_dump_json())
    check_explanations(req, allocate(req, EXACT))


@pytest.mark.slow
@BRUTE
@given(tiny_requests())
def test_batch_explanations_hold_against_brute_force_over_100_requests(
    req: AllocationRequest,
) -> None:
    """The default run's audit over 100 drawn requests."""
    note(req.model_dump_json())
    check_explanations(req, allocate(req, EXACT))


# ~5 s of examples; a lone order's online explanation is checked against its search by
# test_online_shortcuts.py's test_lone_order_optimum_explains_as_the_search_does, batch explanations
# by test_batch_explanations_hold_against_brute_force
@pytest.mark.slow
@BRUTE
@given(tiny_requests(max_orders=1))
def test_online_explanations_agree_with_batch_on_one_order(req: AllocationRequest) -> None:
    """(d): one order, online and batch: same answer, same explanation facts."""
    note(req.model_dump_json())
    batch = allocate(req, EXACT)
    online = allocate(req, ONLINE)
    check_explanations(req, online)
    check_explanations(req, batch)
    b, o = batch.explanations[0], online.explanations[0]
    if sorted(batch.assignments, key=str) != sorted(online.assignments, key=str):
        return  # a tie: different answers, each checked on its own above
    assert b.cost == o.cost
    assert (b.best_alternative is None) == (o.best_alternative is None)
    if b.best_alternative is not None and o.best_alternative is not None:
        assert b.best_alternative.cost == o.best_alternative.cost
        assert b.best_alternative.extra_cost == o.best_alternative.extra_cost
    assert _facts(b) == _facts(o), (b, o)


@BRUTE_DEFAULT
@given(tiny_requests(), st.sampled_from(["nearest", "rule_chain", "myopic"]))
def test_baseline_explanations_hold_against_brute_force(
    req: AllocationRequest, baseline: str
) -> None:
    """A baseline's answer is explained as truly: its cheaper alternatives are not hidden."""
    note(req.model_dump_json())
    params = EXACT.model_copy(update={"baseline": baseline})
    check_explanations(req, allocate(req, params))


@pytest.mark.slow
@BRUTE
@given(tiny_requests(), st.sampled_from(["nearest", "rule_chain", "myopic"]))
def test_baseline_explanations_hold_against_brute_force_over_100_requests(
    req: AllocationRequest, baseline: str
) -> None:
    """The default run's audit over 100 drawn requests and baselines."""
    note(req.model_dump_json())
    params = EXACT.model_copy(update={"baseline": baseline})
    check_explanations(req, allocate(req, params))


def _facts(ex: OrderExplanation) -> list[tuple[str, str, str, str]]:
    return sorted((r.kind.value, r.node_id or "", r.sku or "", r.rule or "") for r in ex.reasons)


# ~7 s of examples; the batched DP path's explanations are checked by default in
# test_explain_fast.py's test_batched_path_explanations_equal_those_with_every_dp_run
@pytest.mark.slow
@BRUTE
@given(tiny_requests(), st.sampled_from([None, None, "nearest", "myopic"]))
def test_large_batch_explanations_hold_against_brute_force(
    req: AllocationRequest, baseline: str | None
) -> None:
    """The batched path (DP over blocks, as past ``SMALL_BATCH`` orders) is as true.

    Tiny requests forced onto the path of large batches: the alternatives and own optima
    of the batched DP, what ``max_nodes_per_order`` costs, and a baseline's cheapest way
    on what the others leave, found for every batch size.
    """
    note(req.model_dump_json())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(explain_mod, "SMALL_BATCH", 0)
        params = EXACT.model_copy(update={"baseline": baseline})
        check_explanations(req, allocate(req, params))


# ~9 s of examples; rule-lifting searches that finish are checked by
# test_batch_explanations_hold_against_brute_force
@pytest.mark.slow
@BRUTE
@given(tiny_requests(), st.sampled_from([None, "nearest"]))
def test_unsettled_rule_searches_make_no_claim(
    req: AllocationRequest, baseline: str | None
) -> None:
    """Rule-lifting searches stopped unproven (node limit 0) say so, and claim nothing else.

    Where a search did not finish, the explanation names the candidate as not searched to
    the end: no ruled-out node is named as if no lifted rule saved anything, and a saving
    named is still exact.
    """
    note(req.model_dump_json())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(explain_mod._Lifter, "node_limit", 0)
        params = EXACT.model_copy(update={"baseline": baseline})
        check_explanations(req, allocate(req, params))


class _StoppedClock:
    """The explanations' clock: true at the call's start, then ``jump`` seconds later."""

    def __init__(self, jump: float) -> None:
        self.jump = jump
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return time.perf_counter() + (self.jump if self.calls > 1 else 0.0)


def _without(result: AllocationResult, head: str) -> AllocationResult:
    """``result`` with its notes that start with ``head`` left out."""
    notes = [n for n in result.stats.notes if not n.startswith(head)]
    return result.model_copy(update={"stats": result.stats.model_copy(update={"notes": notes})})


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(tiny_requests(), st.sampled_from([None, "nearest"]), st.booleans())
def test_stopped_searches_pass_only_with_their_notes(
    req: AllocationRequest, baseline: str | None, cut: bool
) -> None:
    """Searches the time stopped (and explanations it cut) are accepted with their notes, and
    the same answer without the note fails the check: the brute tests stay strict."""
    params = EXACT.model_copy(update={"baseline": baseline})
    with pytest.MonkeyPatch.context() as mp:
        # past the searches' budget (15 s) at once, and past the end too when cut
        mp.setattr(explain_mod, "_clock", _StoppedClock(1e6 if cut else 100.0))
        result = allocate(req, params)
    check_explanations(req, result)
    # the note a check of the same answer without it must fail on: the cut's, or (no cut)
    # the one that counts the alternatives not searched
    head = "explanations cut by the time limit" if cut else "no best alternative searched"
    ships = {a.order_id for a in result.assignments}
    if cut:
        assert all(e.summary.endswith(explain_mod.CUT_SUMMARY) for e in result.explanations)
    else:
        assert explain_mod.SEARCHES_STOPPED in result.stats.notes
        assert all(
            e.best_alternative is None and "cheapest option" not in e.summary
            for e in result.explanations
            if e.order_id in ships
        )
    event(f"stopped: cut={cut}, orders shipping={len(ships)}")
    assert any(n.startswith(head) for n in result.stats.notes) == bool(cut or ships)
    if cut or ships:
        with pytest.raises(AssertionError):
            check_explanations(req, _without(result, head))
