"""Why each order ships from where it does: alternatives, binding limits, rules, backorders.

For every order, with every other order's allocation held fixed (its *residual* world):

- **best alternative**: the cheapest allocation that avoids one of the chosen nodes, and how
  much more it costs (exact, by the per-order DP; a one-order MIP where the DP is inexact);
  for an order that ships nothing, the cheapest way it could ship a unit (with all stock and
  capacity to itself, ``blocked``, where nothing fits what the others leave);
- **what forced the choice**: the order's own optimum with the whole stock and capacity to
  itself is compared with the choice; every part of that optimum the order does not get (a
  node it does not use, fewer units from one it does) is traced to the limit that stopped it
  (stock taken by other orders, parcel or unit capacity full, the VIP share used up);
- **rules**: the node holding free stock of the order's lines whose rule (sanctions list,
  promise, opening hours; or its capacity, where it may take no parcel of the order this
  wave) costs the order most, with what lifting it alone would save
  against the order's cheapest way with no rule lifted (else the nearest node nearer than
  every chosen one that a rule forbids: sanctions list, opening hours, promise; or, where
  a search did not finish, the candidate left unsettled), each chosen parcel whose
  lateness the order pays (``promise = penalise``), a
  restricted SKU, stock held back as safety stock where it cost the order units of a line
  (also at a chosen node);
- **max nodes**: what ``max_nodes_per_order`` costs the order's own optimum, where the
  cap binds (the batched DP without the cap, then the exact search; any batch size);
- **baselines**: what the baseline leaves on the table (its cheapest way on what the
  others leave, and how much less it costs), apart from what limits and rules block;
- **unfilled units**: the reason each backordered line could not ship.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from scenarios.model import NodeKind
from solvers.allocation.dp import (
    BB_NODE_LIMIT,
    OrderBlock,
    build_blocks,
    pattern_value,
    solve_blocks,
    solve_order_bb,
    split_block,
)
from solvers.allocation.heuristics import NONE, Residual, real_costs, solve_residual
from solvers.allocation.master import pattern_cost
from solvers.allocation.problem import (
    BLOCK_RULE,
    CLOSED,
    EXCLUDED,
    F64,
    I64,
    MICRO,
    OK,
    PROMISE,
    Problem,
    compile_request,
    from_micro,
    to_micro,
)
from solvers.allocation.result import (
    Alternative,
    OrderExplanation,
    Reason,
    ReasonKind,
    Unfilled,
    UnfilledReason,
    construct,
)
from solvers.cancel import SolveCancelled, cancelled

#: Orders the batched DP cannot explain exactly are re-solved one by one (branch and bound,
#: a MIP under binding capacity), up to this many per call.
MAX_RESIDUAL_EXPLANATIONS = 2000
#: Up to this many orders, every order is explained one by one (faster than the batch DP).
SMALL_BATCH = 64
#: seconds per order kept back at the end of the explanation budget to write the
#: explanations (reasons, summary) once the searches stop: ~0.06 ms at 10,000 city orders
#: on a slow machine (0.16 ms before the rule reasons were found for all orders at once,
#: when 57-74 % of a 60 s answer's explanations were cut), with a margin
WRITE_S_PER_ORDER = 1e-4
#: ... and at least this many seconds, for the searches' stopping latency: a one-order MIP
#: or branch and bound returns after its deadline (one crowded order, 200 capped nodes x 20
#: lines: 5-15 ms, and 31 ms for a MIP begun 2 ms before it), and with only the per-order
#: reserve a single order's explanation was then cut and the answer came late (10.005 s at
#: a 10 s limit, 1.03 s at 1 s)
WRITE_FLOOR_S = 0.05
#: at most this share of the explanations' time is kept back for writing them (a cut
#: explanation says less than one whose searches stopped early): 50,000 city orders, 60 s,
#: a slow machine: with half, 2,845 of 50,000 were cut (the rule-reason tables 0.4 s, the
#: searches 0.5 s past their end, writing 0.03 ms per order)
WRITE_SHARE_MAX = 0.75
#: the summary's tail of an order whose explanation the time limit cut short
CUT_SUMMARY = "explanation cut short by the time limit"
#: the reason of an order that an answer within its optimality gap leaves dearer than its
#: own optimum, where no other order's allocation stops that optimum
WITHIN_GAP = "within the optimality gap of the batch answer"
#: the note of an answer whose explanation searches the time stopped (own optima, lifted
#: rules, what a cap or a baseline costs, an order's cheapest way to ship)
SEARCHES_STOPPED = (
    "explanation searches stopped by the time limit: some orders' own optima, rule savings "
    "and ways to ship were not searched, so their explanations name fewer reasons and do "
    "not call them the cheapest"
)


def _clock() -> float:
    """The clock of the explanation deadlines (``time.perf_counter``; tests swap it)."""
    return time.perf_counter()


def _past(moment: float) -> bool:
    """Whether the explanations' clock is past ``moment``; raises :class:`SolveCancelled`
    once this thread's solve is cancelled (:mod:`solvers.cancel`: a service stopping).

    Looked at between orders and chunks of orders, where the deadlines are (~0.2 us a look):
    cancelled explanations stop there, not at their end (0.3-0.5 s at 1,000 orders).
    """
    if cancelled():
        raise SolveCancelled("the explanations were cancelled")
    return _clock() > moment


@dataclass
class _World:
    """Residual stock and capacity with every order's own use handed back to it."""

    avail_left: I64  # N x S after everyone
    units_left: I64  # N (NONE = no limit)
    orders_left: I64
    vip_units_left: I64
    vip_orders_left: I64


def _world(prob: Problem, x: I64) -> _World:
    """What every order's allocation leaves (``Residual.take`` of all of them at once)."""
    res = Residual(prob)
    used = np.nonzero(x > 0)[0]
    qty = x[used]
    node = prob.arc_node[used]
    np.subtract.at(res.avail, (node, prob.arc_sku[used]), qty)
    pairs = np.unique(prob.arc_pair[used])

    def units(arcs: np.ndarray) -> I64:
        return np.bincount(node[arcs], weights=qty[arcs], minlength=prob.num_nodes).astype(np.int64)

    def parcels(opened: np.ndarray) -> I64:
        return np.bincount(prob.pair_node[opened], minlength=prob.num_nodes)

    everything = np.ones(used.shape[0], dtype=bool)
    res.cap_units -= units(everything)
    res.cap_orders -= parcels(pairs)
    vip = prob.order_vip.astype(bool)
    res.vip_units -= units(vip[prob.pair_order[prob.arc_pair[used]]])
    res.vip_orders -= parcels(pairs[vip[prob.pair_order[pairs]]])
    return _World(res.avail, res.cap_units, res.cap_orders, res.vip_units, res.vip_orders)


def _nothing_costs(prob: Problem) -> I64:
    """Per order, the cost (micro) of shipping nothing: every unit unfilled."""
    line_order = np.repeat(np.arange(prob.num_orders), np.diff(prob.order_line_start))
    cost = np.zeros(prob.num_orders, dtype=np.int64)
    np.add.at(cost, line_order, prob.line_qty * prob.line_pen)
    return cost


def _pattern_costs(
    prob: Problem, sel_order: I64, sel_arc: I64, sel_qty: I64, nothing: I64 | None = None
) -> I64:
    """:func:`pattern_cost` of every order at once (one pattern per order, flattened).

    ``nothing``: :func:`_nothing_costs`, when the caller has it (it reads every line).
    """
    cost = _nothing_costs(prob) if nothing is None else nothing.copy()
    keep = sel_qty > 0
    order, arcs, qty = sel_order[keep], sel_arc[keep], sel_qty[keep]
    np.add.at(cost, order, qty * prob.arc_gain[arcs])
    pairs = np.unique(prob.arc_pair[arcs])  # a pair belongs to one order
    pair_order = prob.pair_order[pairs]
    np.add.at(cost, pair_order, prob.pair_fixed[pairs])
    opened = np.bincount(pair_order, minlength=prob.num_orders)
    return cost + prob.split * np.maximum(opened - 1, 0)


def lone_order_optimum(prob: Problem, x: I64) -> dict[int, tuple[I64, I64]] | None:
    """A lone order's exact answer ``x`` as its own optimum, where no capacity limits it.

    For :func:`explain`'s ``unconstrained``. Only for an answer that is optimal over stock
    and capacity (the online solve of one order): where no node is closed to the order,
    no node's unit room is below its units and the answer beats shipping nothing, that is
    the problem the own-optimum search would solve again, and the search keeps the answer
    on ties.
    """
    if prob.num_orders != 1:
        return None
    pair_ok, pair_cap = Residual(prob).pair_limits(0)
    pairs = slice(int(prob.order_pair_start[0]), int(prob.order_pair_start[1]))
    caps = pair_cap[pairs]
    if not pair_ok[pairs].all() or np.any((caps >= 0) & (caps < int(prob.line_qty.sum()))):
        return None
    arcs = np.nonzero(x > 0)[0]
    order = np.zeros(arcs.size, dtype=np.int64)
    if _pattern_costs(prob, order, arcs, x[arcs])[0] > _nothing_costs(prob)[0]:
        return None
    return {0: (arcs, x[arcs])}


def _relaxed_optima(
    solve_prob: Problem,
    prob: Problem,
    blocks: list[OrderBlock],
    costs: tuple[F64, F64, float],
    limits: tuple[np.ndarray, I64],
    deadline: float,
) -> tuple[dict[int, tuple[I64, I64]], dict[int, float]]:
    """Each order's own optimum by the DP on ``solve_prob`` with partial stock relaxed.

    An order's pattern is kept where the DP is exact and the pattern fits ``limits`` (open
    pairs, unit room per pair); the other orders get the DP's value, a lower bound. Chunks
    the ``deadline`` leaves unsolved leave their orders out of both.
    """
    c_arc, c_pair, split = costs
    pair_ok, pair_cap = limits
    exact: dict[int, tuple[I64, I64]] = {}
    bounds: dict[int, float] = {}
    for blk in _chunks(solve_prob, blocks, split):
        if _past(deadline):
            break
        ans = solve_blocks(solve_prob, [blk], c_arc, c_pair, split=split, relax_partial=True)
        pats = _patterns(ans.sel_order, ans.sel_arc, ans.sel_qty)
        over = _overfilled(prob, ans.sel_order, ans.sel_arc, ans.sel_qty, pair_ok, pair_cap)
        for o, ok_exact, bound in zip(
            ans.orders.tolist(), ans.exact.tolist(), ans.value.tolist(), strict=True
        ):
            if ok_exact and o not in over:
                exact[o] = pats.get(o, (np.zeros(0, dtype=np.int64),) * 2)
            else:
                bounds[o] = bound
    return exact, bounds


def _overfilled(
    prob: Problem, sel_order: I64, sel_arc: I64, sel_qty: I64, pair_ok: np.ndarray, cap: I64
) -> set[int]:
    """The orders whose pattern opens a closed pair or loads one past its unit room ``cap``."""
    keep = sel_qty > 0
    pairs = prob.arc_pair[sel_arc[keep]]
    units = np.bincount(pairs, weights=sel_qty[keep], minlength=prob.num_pairs)
    bad = (units > 0) & (~pair_ok | ((cap >= 0) & (units > cap)))
    return set(prob.pair_order[np.flatnonzero(bad)].tolist())


def _own_limits(prob: Problem, world: _World, x: I64) -> tuple[I64, np.ndarray, I64]:
    """Per arc: units it could carry for its own order; per pair: open allowed, unit room."""
    node, sku = prob.arc_node, prob.arc_sku
    ub = np.minimum(prob.arc_ub, np.maximum(world.avail_left[node, sku], 0) + x)
    per_pair_units = np.bincount(prob.arc_pair, weights=x, minlength=prob.num_pairs)
    used_pair = per_pair_units > 0
    vip = prob.order_vip[prob.pair_order]
    pn = prob.pair_node
    parcels = world.orders_left[pn] + used_pair
    ok = parcels > 0
    ok &= ~vip | (world.vip_orders_left[pn] + used_pair > 0)
    units = world.units_left[pn] + per_pair_units
    units = np.where(vip, np.minimum(units, world.vip_units_left[pn] + per_pair_units), units)
    cap = np.where(units >= NONE // 2, -1, units).astype(np.int64)
    return ub.astype(np.int64), ok, cap


def explain(
    prob: Problem,
    x: I64,
    *,
    unconstrained: dict[int, tuple[I64, I64]] | None = None,
    lone_uncapped: bool = False,
    budget_s: float = 2.0,
    end: float | None = None,
    notes: list[str] | None = None,
    baseline: str | None = None,
) -> tuple[list[OrderExplanation], list[Unfilled]]:
    """Per-order explanations and the unfilled lines with their reasons.

    Orders the batched DP cannot explain exactly are re-solved one by one within
    ``budget_s`` seconds; past it they keep whatever the DP found (or no alternative), and
    an order whose own-optimum search the budget stopped is not called the cheapest. No
    search runs past ``end`` (:func:`_clock` time; default: ``budget_s`` from the call),
    and the orders whose explanation is not written by then get a short one (nodes and
    cost, no reasons, :data:`CUT_SUMMARY` in the summary), with a line in ``notes``.
    ``lone_uncapped``: the problem is one order that no node is closed to and no capacity
    limits, and ``unconstrained`` is :func:`lone_order_optimum`'s answer (the choice itself);
    its alternatives are then searched on the request's own stock, without building the
    residual world for each, and its own optimum costs what the choice costs.
    ``baseline``: the baseline policy that made ``x`` (None: an optimising solve), named
    where it left an order dearer than it could ship on what the other orders leave.
    Raises :class:`~solvers.cancel.SolveCancelled` at the next order or chunk of orders once
    this thread's solve is cancelled (:func:`_past`).
    """
    t_start = _clock()
    n_orders = prob.num_orders
    end = t_start + budget_s if end is None else end
    # the searches stop early enough for every explanation to be written by ``end`` (at
    # most WRITE_SHARE_MAX of the time to ``end`` kept back for it)
    write_s = min(
        WRITE_SHARE_MAX * max(end - t_start, 0.0),
        max(WRITE_FLOOR_S, WRITE_S_PER_ORDER * n_orders),
    )
    search_end = min(t_start + budget_s, end - write_s)
    c_arc, c_pair, split = real_costs(prob)
    world = _world(prob, x)
    used = np.nonzero(x > 0)[0]
    order_of = prob.pair_order[prob.arc_pair[used]]
    sort = np.argsort(order_of, kind="stable")
    used, order_of = used[sort], order_of[sort]
    cut = np.searchsorted(order_of, np.arange(n_orders + 1))
    chosen_arcs = [used[cut[o] : cut[o + 1]] for o in range(n_orders)]
    chosen_nodes = [
        _by_distance(prob, o, set(prob.arc_node[a].tolist())) for o, a in enumerate(chosen_arcs)
    ]
    nothing = _nothing_costs(prob)
    chosen_cost = _pattern_costs(prob, order_of, used, x[used], nothing)

    # best alternative avoiding the j-th chosen node
    alt_cost = np.full(n_orders, -1, dtype=np.int64)
    alt_nodes: list[list[int]] = [[] for _ in range(n_orders)]
    small = n_orders <= SMALL_BATCH
    blocks_all = [] if small else build_blocks(prob, np.arange(n_orders))
    inexact: set[int] = set(range(n_orders)) if small else set()
    dp_inexact: set[tuple[int, int]] = set()  # (order, banned node) the batched DP is inexact for
    alt_done: set[tuple[int, int]] = set()  # (order, banned node) searched to the end
    max_k = 0 if small else max((len(s) for s in chosen_nodes), default=0)
    if max_k:  # the batched DP's limits: each order's own use handed back
        ub, pair_ok, pair_cap = _own_limits(prob, world, x)
    # the alternatives get 80 % of the budget, the own optima below the rest
    deadline = min(t_start + 0.8 * budget_s, search_end)
    for j in range(max_k):
        if _past(deadline):
            break  # the orders with more chosen nodes keep the alternatives found so far
        mask = pair_ok.copy()
        targets = [o for o in range(n_orders) if len(chosen_nodes[o]) > j]
        banned_node = np.full(n_orders, -1, dtype=np.int64)
        for o in targets:
            banned_node[o] = chosen_nodes[o][j]
        banned = banned_node[prob.pair_order] == prob.pair_node
        mask &= ~banned
        target_set = np.zeros(n_orders, dtype=bool)
        target_set[targets] = True
        blocks = _restrict(blocks_all, target_set)
        # one chunk of a block (orders of one line count) at a time, within the time
        for blk in _chunks(prob, blocks, split):
            if _past(deadline):
                break
            ans = solve_blocks(
                prob, [blk], c_arc, c_pair, arc_ub=ub, pair_ok=mask, cap_units=pair_cap, split=split
            )
            patterns = _patterns(ans.sel_order, ans.sel_arc, ans.sel_qty)
            costs = _pattern_costs(prob, ans.sel_order, ans.sel_arc, ans.sel_qty, nothing)
            for o, ok_exact in zip(ans.orders.tolist(), ans.exact.tolist(), strict=True):
                if not ok_exact:
                    inexact.add(o)
                    dp_inexact.add((o, int(banned_node[o])))
                    continue
                alt_done.add((o, int(banned_node[o])))
                arcs, qty = patterns.get(o, (np.zeros(0, dtype=np.int64),) * 2)
                cost = int(costs[o])
                if alt_cost[o] < 0 or cost < alt_cost[o]:
                    alt_cost[o] = cost
                    alt_nodes[o] = sorted(set(prob.arc_node[arcs].tolist()))
    # orders the DP could not handle (too many lines, partial stock, binding capacity)
    many = [
        o
        for o in range(n_orders)
        if chosen_nodes[o]
        and (o in inexact or prob.order_line_start[o + 1] - prob.order_line_start[o] > 10)
    ]
    # a lone uncapped order's residual world is the request's own stock, whichever node is
    # banned: its arc limits are those of a fresh Residual, worked out once
    lone_ub = Residual(prob).arc_limits(0) if lone_uncapped else None
    shared = Residual(prob)
    for o in many[:MAX_RESIDUAL_EXPLANATIONS]:
        best_value = 0.0  # of the best alternative so far, vs shipping nothing (if below)
        for banned_n in chosen_nodes[o]:
            if _past(deadline):
                break
            found = None
            if lone_ub is not None:
                found = _lone_alternative(
                    prob,
                    banned_n,
                    lone_ub,
                    c_arc,
                    c_pair,
                    split,
                    incumbent=best_value,
                    deadline=deadline,
                )
                if found is not None:
                    alt_done.add((o, banned_n))
                if found is not None and found[0].size == 0 and best_value < 0.0:
                    continue  # nothing beats the best alternative so far
            if found is None:
                # past the deadline a one-order MIP stops at the best pattern it holds: an
                # alternative that exists, perhaps not the best one
                res = _order_residual(prob, world, x, o, banned_n, shared)
                # the batched DP's limits: where it was inexact, the search alone
                arcs, qty, gap = solve_residual(
                    prob,
                    o,
                    res,
                    c_arc,
                    c_pair,
                    split,
                    deadline=deadline,
                    dp=(o, banned_n) not in dp_inexact,
                )
                found = (arcs, qty)
                if gap is None:
                    alt_done.add((o, banned_n))
            arcs, qty = found
            cost = pattern_cost(prob, o, arcs, qty)
            if alt_cost[o] < 0 or cost < alt_cost[o]:
                alt_cost[o] = cost
                alt_nodes[o] = sorted(set(prob.arc_node[arcs].tolist()))
                best_value = min(best_value, pattern_value(prob, arcs, qty, c_arc, c_pair, split))
    # every order that ships: the batched DP's chunks and rounds stop with the time too
    shipping = [o for o in range(n_orders) if chosen_nodes[o]]
    unsearched = sum(1 for o in shipping if alt_cost[o] < 0)
    alt_settled = [all((o, n) in alt_done for n in chosen_nodes[o]) for o in range(n_orders)]
    partial = sum(1 for o in shipping if alt_cost[o] >= 0 and not alt_settled[o])
    if unsearched and notes is not None:
        # without a note a missing best_alternative would read as "none exists"
        notes.append(
            f"no best alternative searched for {unsearched} of {n_orders} orders: the "
            f"one-by-one searches stop at {MAX_RESIDUAL_EXPLANATIONS} orders and with the "
            "explanations' time"
        )
    if partial and notes is not None:
        # without a note an alternative found so far would read as the cheapest one
        notes.append(
            f"best alternative searched in part for {partial} of {n_orders} orders: the "
            "explanations' time stopped the searches, a cheaper one may exist"
        )

    # each order's own optimum with all stock and capacity to itself
    # the order's own room at each node: the node's whole unit capacity (and VIP share)
    # over all the order's lines; the DP leaves it out (a relaxation, so its values stay
    # bounds) and a pattern of it that overfills a node is not the own optimum
    alone = _world(prob, np.zeros_like(x))  # nothing taken: all stock and capacity
    _, own_ok, own_cap = _own_limits(prob, alone, np.zeros_like(x))
    if unconstrained is None:
        # exact patterns where the DP is exact; elsewhere (partial stock) a lower bound; a
        # chunk of a block the time leaves unsolved leaves its orders without an own optimum
        # (not called the cheapest)
        unconstrained, relaxed = _relaxed_optima(
            prob, prob, blocks_all, (c_arc, c_pair, split), (own_ok, own_cap), search_end
        )
        for o in range(n_orders):
            if o not in unconstrained and prob.order_pair_start[o + 1] > prob.order_pair_start[o]:
                chosen = (chosen_arcs[o], x[chosen_arcs[o]])
                value = int(chosen_cost[o] - nothing[o])  # of the choice, vs shipping nothing
                if value / MICRO <= relaxed.get(o, -np.inf) + 1e-9:
                    unconstrained[o] = chosen  # the choice reaches the bound: own optimum
                    continue
                if _past(search_end):
                    continue  # not searched: no own optimum, so not called the cheapest
                # only a pattern cheaper than the chosen one matters (else the choice is the
                # order's own optimum): the search starts from the choice as its incumbent
                found_value, arcs, qty, lower = solve_order_bb(
                    prob,
                    o,
                    c_arc,
                    c_pair,
                    split=split,
                    pair_ok=own_ok,
                    pair_cap=own_cap,
                    incumbent=min(value / MICRO, 0.0),
                    deadline=search_end,
                )
                if lower < found_value - 1e-9:  # stopped (node limit, deadline) unproven
                    if _past(search_end):
                        continue  # not proven: no own optimum, so not called the cheapest
                    # the exact one-order search (a MIP past the search's node limit)
                    arcs, qty, gap = solve_residual(
                        prob, o, Residual(prob), c_arc, c_pair, split, deadline=search_end
                    )
                    if gap is not None:
                        continue  # not proven by the deadline
                    if pattern_cost(prob, o, arcs, qty) >= chosen_cost[o]:
                        arcs = np.zeros(0, dtype=np.int64)  # the choice is as cheap
                # no arcs: nothing beats the incumbent, i.e. the choice (or, when the choice
                # costs more than shipping nothing, the empty pattern)
                unconstrained[o] = (arcs, qty) if arcs.size or value > 0 else chosen

    if lone_uncapped:  # the own optimum is the choice (lone_order_optimum): same cost
        own_cost = chosen_cost
    else:
        own = sorted(unconstrained)
        empty = np.zeros(0, dtype=np.int64)
        own_cost = _pattern_costs(
            prob,
            np.repeat(np.array(own, dtype=np.int64), [unconstrained[o][0].size for o in own]),
            np.concatenate([empty, *(unconstrained[o][0] for o in own)]).astype(np.int64),
            np.concatenate([empty, *(unconstrained[o][1] for o in own)]).astype(np.int64),
        )
    # what the cap on nodes per order costs each order that could ship from more nodes: its
    # own optimum against the same without the cap (the batched DP, then the exact search)
    capped: dict[int, tuple[int, list[int]]] = {}
    if prob.max_nodes > 0:
        capped = _cap_costs(
            prob,
            blocks_all,
            unconstrained,
            own_cost,
            nothing,
            (own_ok, own_cap),
            (c_arc, c_pair, split),
            search_end,
        )
    # the cheapest way each order that ships nothing could ship (the search time left)
    shipless: dict[int, _Shipless] = {}
    for o in range(n_orders):
        if not chosen_nodes[o] and prob.order_line_start[o + 1] > prob.order_line_start[o]:
            if _past(search_end):
                break
            way = _shipless(
                prob,
                world,
                alone,
                x,
                o,
                unconstrained.get(o),
                shared,
                (c_arc, c_pair, split),
                search_end,
            )
            if way is not None:
                shipless[o] = way
    # each order's cheapest way on what the others leave, where known: (cost, nodes) where
    # below the choice (a baseline leaves it on the table), the cost alone where not
    free_ways: dict[int, tuple[int, list[int]]] = {}
    free: dict[int, int] = {}
    for o, way in shipless.items():
        cheaper = not way.blocked and way.cost < chosen_cost[o]
        free[o] = way.cost if cheaper else int(chosen_cost[o])
        if cheaper:
            free_ways[o] = (way.cost, _by_distance(prob, o, set(way.nodes)))

    def _settle(orders: list[int]) -> dict[int, tuple[int, list[int]]]:
        """The cheapest ways of ``orders`` on what the others leave (see :func:`_free_ways`)."""
        return _free_ways(
            prob,
            world,
            x,
            orders,
            chosen_cost,
            {o: int(own_cost[o]) for o in unconstrained},
            shared,
            blocks_all,
            (c_arc, c_pair, split),
            search_end,
        )

    if baseline is not None:  # what the baseline leaves on the table, order by order
        settled = _settle([o for o in range(n_orders) if chosen_nodes[o]])
        for o, (cost, nodes) in settled.items():
            free[o] = cost
            if cost < chosen_cost[o]:
                free_ways[o] = (cost, nodes)
    # the ruled-out (or late, or closed) node whose rule costs each order most, lifted alone
    # (the own optimum is a floor of the order's cost on what the others leave)
    floor = {o: int(own_cost[o]) for o in (range(n_orders) if lone_uncapped else unconstrained)}
    lifts = _lifts(prob, world, x, chosen_arcs, chosen_nodes, chosen_cost, floor, free, search_end)
    for o, lifted in lifts.items():
        if lifted.free is not None:
            free_ways[o] = (lifted.free[0], _by_distance(prob, o, set(lifted.free[1])))
    if _clock() > search_end and notes is not None:
        notes.append(SEARCHES_STOPPED)  # a search may have stopped or not started
    # first, so that each order's explanation can say why its units are unfilled
    unfilled = unfilled_lines(prob, world, x)
    short_of: dict[str, list[Unfilled]] = {}
    for u in unfilled:
        short_of.setdefault(u.order_id, []).append(u)
    explanations = []
    near: _Nearer | None = None

    def explain_one(o: int, near: _Nearer) -> OrderExplanation:
        return _order_explanation(
            prob,
            world,
            x,
            o,
            chosen_arcs[o],
            chosen_nodes[o],
            int(chosen_cost[o]),
            int(alt_cost[o]),
            alt_nodes[o],
            unconstrained.get(o),
            int(own_cost[o]),
            near,
            baseline,
            capped.get(o),
            shipless.get(o),
            lifts.get(o),
            free_ways.get(o),
            alt_settled[o],
            short_of.get(prob.order_ids[o], []),
        )

    for o in range(n_orders):
        if _past(end):
            break
        if near is None:  # only when an explanation is written in full (0.1 s at 50,000)
            near = _nearer(prob, x, chosen_nodes)
        explanations.append(explain_one(o, near))
    # an answer within its gap can leave an order dearer than its cheapest way on what the
    # others leave, a way that may keep its chosen nodes (so the best alternative, which
    # avoids one, does not show it): found where the time allows, and named with its cost
    # (those not searched are not called the cheapest option)
    # (said only of an order whose own optimum costs less than its choice: a few at most)
    dearer = np.nonzero(own_cost[: len(explanations)] < chosen_cost[: len(explanations)])[0]
    within_gap = [
        o
        for o in dearer.tolist()
        if chosen_nodes[o]
        and o not in free_ways
        and any(r.message == WITHIN_GAP for r in explanations[o].reasons)
    ]
    if within_gap and near is not None and not _past(search_end):
        settled_ways = _settle(within_gap)
        for o, (cost, nodes) in settled_ways.items():
            if cost < chosen_cost[o]:
                free_ways[o] = (cost, nodes)
                explanations[o] = explain_one(o, near)
    done = len(explanations)
    explanations.extend(
        _cut_explanation(prob, o, chosen_nodes[o], int(chosen_cost[o]))
        for o in range(done, n_orders)
    )
    if done < n_orders and notes is not None:
        notes.append(
            f"explanations cut by the time limit: {done} of {n_orders} orders explained in "
            f"full, the other {n_orders - done} say '{CUT_SUMMARY}'"
        )
    return explanations, unfilled


def _cut_explanation(prob: Problem, o: int, nodes: list[int], cost: int) -> OrderExplanation:
    """The short explanation of an order the time limit left unexplained: where and cost.

    Built without validation (every field is of its type by construction): it is what the
    time left pays for, at thousands of orders.
    """
    names = [prob.node_ids[n] for n in nodes]
    head = "ships from " + " and ".join(names) if names else "nothing ships"
    return construct(
        OrderExplanation,
        {
            "order_id": prob.order_ids[o],
            "nodes": names,
            "cost": from_micro(cost),
            "best_alternative": None,
            "reasons": [],
            "summary": f"{head}; {CUT_SUMMARY}",
        },
    )


def _by_distance(prob: Problem, o: int, nodes: set[int]) -> list[int]:
    return sorted(nodes, key=lambda n: float(prob.dist_km[n, o]))


def _chunks(prob: Problem, blocks: list[OrderBlock], split: float) -> list[OrderBlock]:
    """The blocks cut into chunks of bounded DP work, so that the searches stop between them.

    A block holds every order of one line count: thousands at 10,000 orders, and one DP call
    over a block could not be stopped (~0.5 ms per order at 10 lines). Each chunk is about
    :data:`~solvers.allocation.dp.DP_CHUNK_WORK` steps; an order's answer is the same
    whichever chunk solves it.
    """
    chunks = []
    for blk in blocks:
        n_lines = blk.num_lines
        counted = split > 0.0 or 0 < prob.max_nodes < n_lines
        k = (min(n_lines, prob.max_nodes) if prob.max_nodes > 0 else n_lines) if counted else 0
        chunks += split_block(blk, counted_k=k)
    return chunks


def _restrict(blocks: list[OrderBlock], keep: np.ndarray) -> list[OrderBlock]:
    """``blocks`` cut to the orders ``keep`` marks (a bool per order); empty ones dropped."""
    out: list[OrderBlock] = []
    for blk in blocks:
        sel = keep[blk.orders]
        if sel.any():
            out.append(
                OrderBlock(
                    orders=blk.orders[sel],
                    lines=blk.lines[sel],
                    pairs=blk.pairs[sel],
                    arcs=blk.arcs[sel],
                    qty=blk.qty[sel],
                )
            )
    return out


def _patterns(so: I64, sa: I64, sq: I64) -> dict[int, tuple[I64, I64]]:
    out: dict[int, tuple[I64, I64]] = {}
    if so.size == 0:
        return out
    sort = np.argsort(so, kind="stable")
    so, sa, sq = so[sort], sa[sort], sq[sort]
    cuts = np.flatnonzero(np.diff(so)) + 1
    starts = np.concatenate([[0], cuts]).tolist()
    ends = np.concatenate([cuts, [so.shape[0]]]).tolist()
    for s, e in zip(starts, ends, strict=True):
        keep = sq[s:e] > 0
        out[int(so[s])] = (sa[s:e][keep], sq[s:e][keep])
    return out


def _lone_alternative(
    prob: Problem,
    banned: int,
    ub: I64,
    c_arc: F64,
    c_pair: F64,
    split: float,
    *,
    incumbent: float = 0.0,
    deadline: float | None = None,
) -> tuple[I64, I64] | None:
    """A lone uncapped order's best pattern without node ``banned``; None if not proven (its
    node limit, or ``deadline``: without it, an order of 2,000 lines over 200 nodes searched
    its 2,000 nodes for seconds past the time limit).

    The order's residual world is the request's own stock with nothing taken (arc limits
    ``ub``), and without a binding capacity :func:`solve_residual` is this branch and bound
    with the banned node's pair closed: the same search without a residual per node.
    Only patterns valued below ``incumbent`` (<= 0, against shipping nothing: the best
    alternative so far) are searched for; none found, the answer has no arcs.
    """
    pair_ok = prob.pair_node != banned
    value, arcs, qty, lower = solve_order_bb(
        prob,
        0,
        c_arc,
        c_pair,
        split=split,
        arc_ub=ub,
        pair_ok=pair_ok,
        incumbent=incumbent,
        deadline=deadline,
    )
    return (arcs, qty) if lower >= value - 1e-9 else None


def _order_residual(
    prob: Problem, world: _World, x: I64, order: int, banned: int | None, shared: Residual
) -> Residual:
    """A Residual as seen by ``order`` (its own use handed back), ``banned`` node closed.

    ``shared``: a Residual of ``prob`` whose per-arc and per-pair limit arrays every order's
    Residual shares (each fills its own arcs' and pairs' entries before reading them): a
    fresh one per order copied every arc's limit, seconds at tens of thousands of orders.
    """
    res = copy.copy(shared)
    arcs = np.arange(
        prob.pair_arc_start[prob.order_pair_start[order]],
        prob.pair_arc_start[prob.order_pair_start[order + 1]],
    )
    res.avail = world.avail_left.copy()
    np.add.at(res.avail, (prob.arc_node[arcs], prob.arc_sku[arcs]), x[arcs])
    own_units = np.bincount(prob.arc_node[arcs], weights=x[arcs], minlength=prob.num_nodes)
    own_parcels = np.zeros(prob.num_nodes, dtype=np.int64)
    for n in set(prob.arc_node[arcs[x[arcs] > 0]].tolist()):
        own_parcels[n] = 1
    res.cap_units = world.units_left + own_units.astype(np.int64)
    res.cap_orders = world.orders_left + own_parcels
    res.vip_units = world.vip_units_left + own_units.astype(np.int64)
    res.vip_orders = world.vip_orders_left + own_parcels
    if banned is not None:
        res.cap_orders[banned] = 0
    return res


@dataclass
class _Shipless:
    """The cheapest way an order that ships nothing could ship.

    ``cost`` (micro) of shipping ``wants`` (node, SKU, units); ``blocked``: only with all
    stock and capacity to the order (nothing ships on what the other orders leave).
    """

    cost: int
    nodes: list[int]
    wants: list[tuple[int, int, int]]
    blocked: bool


def _one_node_best(prob: Problem, world: _World, o: int) -> tuple[int, list[tuple[int, int, int]]]:
    """The cheapest way to ship at least one unit of order ``o`` from one node on ``world``.

    (value against shipping nothing in micro-units, (node, SKU, units) shipped); value
    ``NONE`` with nothing shipped where no unit fits. Every unit from a node costs the same
    (per unit, handling, distance), so the node ships its lines by penalty, dearest first,
    while a unit saves more than it costs (at least one unit), up to its stock and unit
    room. Where no one-node way is below zero, no way over several nodes is cheaper (each
    node's share of it is a one-node way, the split penalty is not negative): the cheapest
    way to ship then, exactly.
    """
    lines = np.arange(int(prob.order_line_start[o]), int(prob.order_line_start[o + 1]))
    lines = lines[~prob.line_restricted[lines].astype(bool)]
    if lines.size == 0 or prob.num_nodes == 0:
        return int(NONE), []
    lines = lines[np.argsort(-prob.line_pen[lines], kind="stable")]  # cheapest gain first
    skus = prob.line_sku[lines]
    parcels, room = world.orders_left, world.units_left
    if prob.order_vip[o]:
        parcels = np.minimum(parcels, world.vip_orders_left)
        room = np.minimum(room, world.vip_units_left)
    ok = (prob.node_block[:, o] == OK) & (parcels > 0)
    room = np.where(ok, np.maximum(room, 0), 0)
    cap = np.minimum(np.maximum(world.avail_left[:, skus], 0), prob.line_qty[lines][None, :])
    unit = prob.per_unit + prob.handling + prob.dist_cost[:, o]
    gain = unit[:, None] - prob.line_pen[lines][None, :]  # N x L, rising along each row
    paying = np.where(gain < 0, cap, 0)
    reach = np.minimum(np.cumsum(paying, axis=1), room[:, None])
    take = np.diff(reach, axis=1, prepend=0)
    value = (take * gain).sum(axis=1)
    # no paying unit fits: one unit of the line that costs least
    first = np.argmax(cap > 0, axis=1)
    one = (take.sum(axis=1) == 0) & (room > 0) & (cap.sum(axis=1) > 0)
    value = np.where(one, gain[np.arange(prob.num_nodes), first], value)
    fixed = to_micro(prob.request.costs.per_shipment) + prob.late_cost[:, o]
    can = (room > 0) & (cap.sum(axis=1) > 0)
    value = np.where(can, value + fixed, NONE)
    n = int(np.argmin(value))
    if not can[n]:
        return int(NONE), []
    if one[n]:
        return int(value[n]), [(n, int(skus[first[n]]), 1)]
    wants = [(n, int(s), int(q)) for s, q in zip(skus.tolist(), take[n].tolist(), strict=True) if q]
    return int(value[n]), wants


def _shipless(
    prob: Problem,
    world: _World,
    alone: _World,
    x: I64,
    o: int,
    own: tuple[I64, I64] | None,
    shared: Residual,
    costs: tuple[F64, F64, float],
    deadline: float,
) -> _Shipless | None:
    """The cheapest way order ``o``, which ships nothing, could ship; None if none can.

    On what the other orders leave (``world``) first; where nothing fits there, with all
    stock and capacity to itself (``alone``; ``own``: its own optimum, if known), blocked.
    Where a one-node way pays off (the answer is not the order's best on what the others
    leave, e.g. a baseline's), the exact one-order search finds the best way (None where
    ``deadline`` stops it unproven).
    """
    nothing = int(_nothing_costs_of(prob, o))
    value, wants = _one_node_best(prob, world, o)
    if wants and value < 0:
        c_arc, c_pair, split = costs
        res = _order_residual(prob, world, x, o, None, shared)
        arcs, qty, gap = solve_residual(prob, o, res, c_arc, c_pair, split, deadline=deadline)
        if gap is not None or arcs.size == 0:
            return None  # not proven
        return _Shipless(pattern_cost(prob, o, arcs, qty), *_wants(prob, arcs, qty), False)
    if wants:
        return _Shipless(nothing + value, [wants[0][0]], wants, False)
    if own is not None and own[0].size:  # the own optimum ships: the cheapest way alone
        return _Shipless(pattern_cost(prob, o, *own), *_wants(prob, *own), True)
    value, wants = _one_node_best(prob, alone, o)
    if not wants or value < 0:
        return None  # nothing can ship even alone (or the own optimum is not known)
    return _Shipless(nothing + value, [wants[0][0]], wants, True)


def _nothing_costs_of(prob: Problem, o: int) -> int:
    """The cost (micro) of shipping nothing of order ``o``."""
    lines = prob.order_lines(o)
    return int(
        np.dot(prob.line_qty[lines.start : lines.stop], prob.line_pen[lines.start : lines.stop])
    )


def _wants(prob: Problem, arcs: I64, qty: I64) -> tuple[list[int], list[tuple[int, int, int]]]:
    """A pattern's nodes (by index) and its (node, SKU, units)."""
    nodes = sorted(set(prob.arc_node[arcs].tolist()))
    wants = [
        (int(prob.arc_node[a]), int(prob.arc_sku[a]), int(q))
        for a, q in zip(arcs.tolist(), qty.tolist(), strict=True)
        if q > 0
    ]
    return nodes, wants


def _free_ways(
    prob: Problem,
    world: _World,
    x: I64,
    orders: list[int],
    chosen_cost: I64,
    own_cost: dict[int, int],
    shared: Residual,
    blocks_all: list[OrderBlock],
    costs: tuple[F64, F64, float],
    deadline: float,
) -> dict[int, tuple[int, list[int]]]:
    """Each order's cheapest way on what the other orders leave: (cost in micro, its nodes by
    distance); an order whose own optimum (``own_cost``) costs as much as its choice is its
    own cheapest way (no search). The batched DP over ``blocks_all`` (each order's own use
    handed back, as for the best alternatives) settles the orders it is exact for, the
    exact one-order search the others. Orders whose search ``deadline`` stops unproven, and
    those past :data:`MAX_RESIDUAL_EXPLANATIONS` one-order searches, are left out.
    """
    c_arc, c_pair, split = costs
    out: dict[int, tuple[int, list[int]]] = {}

    def settle(o: int, arcs: I64, qty: I64) -> None:
        chosen, cost = int(chosen_cost[o]), pattern_cost(prob, o, arcs, qty)
        if cost < chosen:
            out[o] = (cost, _by_distance(prob, o, set(prob.arc_node[arcs].tolist())))
        else:
            out[o] = (chosen, [])

    todo = []
    dp_inexact: set[int] = set()  # orders the batched DP is inexact for on these limits
    for o in orders:
        if own_cost.get(o, -int(NONE)) >= int(chosen_cost[o]):
            out[o] = (int(chosen_cost[o]), [])
        else:
            todo.append(o)
    if blocks_all and todo:
        ub, pair_ok, pair_cap = _own_limits(prob, world, x)
        wanted = np.zeros(prob.num_orders, dtype=bool)
        wanted[todo] = True
        blocks = _restrict(blocks_all, wanted)
        for blk in _chunks(prob, blocks, split):
            if _past(deadline):
                break
            ans = solve_blocks(
                prob,
                [blk],
                c_arc,
                c_pair,
                arc_ub=ub,
                pair_ok=pair_ok,
                cap_units=pair_cap,
                split=split,
            )
            patterns = _patterns(ans.sel_order, ans.sel_arc, ans.sel_qty)
            empty = (np.zeros(0, dtype=np.int64),) * 2
            for o, ok_exact in zip(ans.orders.tolist(), ans.exact.tolist(), strict=True):
                if ok_exact:
                    settle(o, *patterns.get(o, empty))
                else:
                    dp_inexact.add(o)
    searched = 0
    for o in todo:
        if o in out:
            continue
        if _past(deadline) or searched >= MAX_RESIDUAL_EXPLANATIONS:
            break
        searched += 1
        res = _order_residual(prob, world, x, o, None, shared)
        # the same limits as the batched DP's: where it was inexact, the search alone
        arcs, qty, gap = solve_residual(
            prob, o, res, c_arc, c_pair, split, deadline=deadline, dp=o not in dp_inexact
        )
        if gap is None:  # proven
            settle(o, arcs, qty)
    return out


def _cap_costs(
    prob: Problem,
    blocks_all: list[OrderBlock],
    own: dict[int, tuple[I64, I64]],
    own_cost: I64,
    nothing: I64,
    limits: tuple[np.ndarray, I64],
    costs: tuple[F64, F64, float],
    deadline: float,
) -> dict[int, tuple[int, list[int]]]:
    """What ``max_nodes_per_order`` costs each order with all stock and capacity to itself.

    The order's own optimum (``own``, ``own_cost``: under the cap) against its optimum
    without the cap: the batched DP over ``blocks_all`` where it is exact and fits the
    nodes' capacity (``limits``: the own pair limits), else the exact one-order search,
    which only looks for patterns cheaper than the own optimum. Per order where lifting the
    cap saves: (saving in micro-units, the uncapped optimum's nodes by distance); orders
    whose search did not finish by ``deadline`` are left out.
    """
    pair_ok, pair_cap = limits
    c_arc, c_pair, split = costs
    n_pairs = np.diff(prob.order_pair_start)
    wanted = np.zeros(prob.num_orders, dtype=bool)
    for o in own:
        wanted[o] = n_pairs[o] > prob.max_nodes
    if not wanted.any():
        return {}
    free = dataclasses.replace(prob, max_nodes=0)
    blocks = _restrict(blocks_all, wanted)
    uncapped, bounds = _relaxed_optima(free, prob, blocks, costs, limits, deadline)
    out: dict[int, tuple[int, list[int]]] = {}
    for o in np.flatnonzero(wanted).tolist():
        with_cap = int(own_cost[o])
        value = (with_cap - int(nothing[o])) / MICRO  # of the own optimum, vs shipping nothing
        if o not in uncapped:
            if value <= bounds.get(o, -np.inf) + 1e-9 or _past(deadline):
                continue  # nothing beats the own optimum (or no time to search)
            found, arcs, qty, lower = solve_order_bb(
                free,
                o,
                c_arc,
                c_pair,
                split=split,
                pair_ok=pair_ok,
                pair_cap=pair_cap,
                incumbent=min(value, 0.0),
                deadline=deadline,
            )
            if lower < found - 1e-9 or arcs.size == 0:
                continue  # not proven, or nothing beats the own optimum
            uncapped[o] = (arcs, qty)
        arcs, qty = uncapped[o]
        without = pattern_cost(prob, o, arcs, qty)
        if without < with_cap:
            nodes = _by_distance(prob, o, set(prob.arc_node[arcs].tolist()))
            out[o] = (with_cap - without, nodes)
    return out


@dataclass
class _Lift:
    """What a rule at one node costs an order: lifted, the order would ship for ``saving`` less.

    ``rule``: ``excluded_nodes`` (the node allowed), ``promise`` (the node on time: not
    ruled out under ``promise = forbid``, no lateness under ``penalise``) or
    ``opening_hours`` (the node open now: its parcel leaves at ``rules.now_s`` plus its lead
    time). The saving is against the order's cheapest way to ship on what the other orders
    leave without any rule lifted (not against a dearer choice, e.g. a baseline's).
    """

    node: int
    rule: str
    saving: int  # micro


@dataclass
class _Lifted:
    """The rule-lifting searches of one order.

    ``lift``: the rule that costs the order most (None: none found that saves);
    ``unsettled``: the most promising (node, rule) whose search did not finish (its node
    limit, the explanations' time), None when every candidate was settled; ``free``: the
    order's cheapest way on what the other orders leave without a rule lifted, (cost in
    micro-units, nodes), where a search found it below the choice.
    """

    lift: _Lift | None = None
    unsettled: tuple[int, str] | None = None
    free: tuple[int, list[int]] | None = None


def _shut(prob: Problem, o: int) -> np.ndarray:
    """Per node: may take no parcel of order ``o`` in this wave (no capacity at all, or no
    VIP share for a VIP order)."""
    shut = (prob.cap_orders == 0) | (prob.cap_units == 0)
    if prob.order_vip[o]:
        shut |= (prob.vip_cap_orders == 0) | (prob.vip_cap_units == 0)
    return shut


def _open_arrival(prob: Problem, n: int, o: int) -> int:
    """When a parcel of node ``n`` would reach order ``o`` were the node open now."""
    travel = int(prob.arrival_s[n, o] - prob.ready_s[n])
    return prob.request.rules.now_s + prob.request.nodes[n].lead_time_s + travel


def _may_lift(prob: Problem) -> np.ndarray:
    """Per order: :func:`_lift_candidates` may find a node (a node holding free stock of one
    of its lines is shut to it, ruled out, or late under ``penalise``)."""
    if prob.num_nodes == 0:
        return np.zeros(prob.num_orders, dtype=bool)
    hit = _shut_to(prob)[1] | (prob.node_block != OK)
    if prob.request.rules.promise != "forbid":
        hit = hit | (prob.late_cost > 0)
    return np.asarray((_holding(prob) & hit).any(axis=0))


def _lift_candidates(prob: Problem, o: int, chosen: list[int]) -> list[tuple[int, str]]:
    """The nodes whose rule (exclusion, promise, opening hours) may cost order ``o``.

    A node holding free stock of one of its unrestricted lines that is excluded for the
    order's region (and would be allowed without the exclusion), that misses the promise
    (ruled out under ``forbid``; late and not chosen under ``penalise``), or that does not
    open again (and, open now, would be allowed: not excluded, on time under ``forbid``),
    or that may take no parcel of the order in this wave (``capacity``: no capacity, or no
    VIP share for a VIP order) and is otherwise allowed. A node both shut and ruled out is
    no candidate: lifting one of the two alone saves nothing.
    """
    lines = prob.order_lines(o)
    skus = [int(prob.line_sku[ln]) for ln in lines if not prob.line_restricted[ln]]
    if not skus or prob.num_nodes == 0:
        return []
    holding = (prob.avail[:, skus] > 0).any(axis=1)
    block = prob.node_block[:, o]
    promise = int(prob.order_promise_s[o])
    late = (
        prob.arrival_s[:, o] > promise if promise >= 0 else (np.zeros(prob.num_nodes, dtype=bool))
    )
    rules = prob.request.rules
    forbid = rules.promise == "forbid"
    region = prob.request.orders[o].region
    banned = set(rules.excluded_nodes.get(region, ())) if region is not None else set()
    shut = _shut(prob, o)
    out: list[tuple[int, str]] = []
    for n in np.flatnonzero(holding).tolist():
        code = int(block[n])
        if shut[n]:
            if code == OK and n not in chosen:
                out.append((n, "capacity"))
        elif code == EXCLUDED and not (forbid and late[n]):
            out.append((n, "excluded_nodes"))
        elif code == CLOSED:
            if prob.node_ids[n] in banned:
                continue  # open, it would still be excluded
            if forbid and promise >= 0 and _open_arrival(prob, n, o) > promise:
                continue  # open, it would still miss the promise
            out.append((n, "opening_hours"))
        elif n not in chosen and (
            code == PROMISE or (code == OK and not forbid and prob.late_cost[n, o] > 0)
        ):
            out.append((n, "promise"))
    return out


@dataclass
class _Search:
    """One lifting search: ``proven`` (False: stopped by its node limit or the deadline);
    ``cost`` (micro) of the cheapest way found below the incumbent (None: nothing beats it);
    ``uses``: that way ships from the lifted node; ``nodes``: the nodes it ships from."""

    proven: bool
    cost: int | None = None
    uses: bool = False
    nodes: list[int] = dataclasses.field(default_factory=list)


class _Lifter:
    """One-order searches with one node's rule lifted, on what the other orders leave.

    The orders searched are compiled again without exclusions, with the promise priced
    (``penalise``), every closed node open now and every shut node (no capacity, or no VIP
    share) without a capacity, every candidate kept (``prune=False``): their pairs at the
    ruled-out nodes exist there; each search allows the order's usual nodes (with what the
    other orders leave of their capacity) and the lifted one (a shut one with room for the
    order alone).
    """

    #: the branch and bound's node limit per search (tests lower it)
    node_limit = BB_NODE_LIMIT

    def __init__(self, prob: Problem, orders: list[int]) -> None:
        req = prob.request
        rules = req.rules.model_copy(update={"excluded_nodes": {}, "promise": "penalise"})
        update: dict[str, object] = {"orders": [req.orders[o] for o in orders], "rules": rules}
        shut = (
            (prob.cap_orders == 0)
            | (prob.cap_units == 0)
            | (prob.vip_cap_orders == 0)
            | (prob.vip_cap_units == 0)
        )
        if (prob.ready_s < 0).any() or shut.any():
            # closed nodes open now (leaving at now_s + lead time), shut ones without a
            # capacity (the searches give a node room only where its capacity is lifted)
            nodes = []
            for n, node in enumerate(req.nodes):
                if prob.ready_s[n] < 0:
                    node = node.model_copy(update={"opening_hours": []})
                if shut[n]:
                    node = node.model_copy(update={"capacity_units": None, "capacity_orders": None})
                nodes.append(node)
            update["nodes"] = nodes
        for name in ("distance_km", "travel_s"):
            matrix = getattr(req, name)
            if matrix is not None:
                update[name] = [[row[o] for o in orders] for row in matrix]
        self.prob = prob
        lifted = compile_request(
            req.model_copy(update=update),
            prune=False,
            stock=(prob.sku_ids, prob.inventory, prob.avail),  # the same nodes' stock
        )
        # the orders' own unfilled penalties: under allow_unfilled = false they follow the
        # dearest parcel, which a closed node opened can change (the lines are the same, in
        # the same order; the unpruned arcs are a superset of those the penalties keep)
        pen = np.concatenate(
            [prob.line_pen[prob.order_lines(o)] for o in orders] or [np.zeros(0, dtype=np.int64)]
        )
        if not np.array_equal(pen, lifted.line_pen):
            lifted = dataclasses.replace(lifted, line_pen=pen)
        self.lifted = lifted
        self.index = {o: j for j, o in enumerate(orders)}
        pos = {s: i for i, s in enumerate(prob.sku_ids)}
        self.sku_map = np.array([pos[s] for s in self.lifted.sku_ids], dtype=np.int64)
        self.shared = Residual(self.lifted)
        self.c_arc, self.c_pair, self.split = real_costs(self.lifted)

    def prepare(self, world: _World, x: I64, o: int, arcs: I64) -> None:
        """Set the limits of order ``o`` (``arcs``: its own) on what the others leave."""
        prob, lp = self.prob, self.lifted
        j = self.index[o]
        res = copy.copy(self.shared)
        own_stock = world.avail_left.copy()
        np.add.at(own_stock, (prob.arc_node[arcs], prob.arc_sku[arcs]), x[arcs])
        res.avail = own_stock[:, self.sku_map]
        own_units = np.bincount(prob.arc_node[arcs], weights=x[arcs], minlength=prob.num_nodes)
        own_parcels = np.zeros(prob.num_nodes, dtype=np.int64)
        own_parcels[list(set(prob.arc_node[arcs[x[arcs] > 0]].tolist()))] = 1
        res.cap_units = world.units_left + own_units.astype(np.int64)
        res.cap_orders = world.orders_left + own_parcels
        res.vip_units = world.vip_units_left + own_units.astype(np.int64)
        res.vip_orders = world.vip_orders_left + own_parcels
        self.pair_ok, self.pair_cap = res.pair_limits(j)
        self.arc_ub = res.arc_limits(j)
        self.p0, self.p1 = int(lp.order_pair_start[j]), int(lp.order_pair_start[j + 1])
        self.nodes = lp.pair_node[self.p0 : self.p1]
        self.room = self.pair_ok[self.p0 : self.p1].copy()  # where the order has room
        self.usual = self.room & (prob.node_block[self.nodes, o] == OK)
        lines = lp.order_lines(j)
        self.nothing = int(
            np.dot(lp.line_qty[lines.start : lines.stop], lp.line_pen[lines.start : lines.stop])
        )

    def search(
        self, o: int, lift: tuple[int, str] | None, incumbent: int, deadline: float
    ) -> _Search:
        """The order's cheapest way with ``lift`` applied (None: no rule lifted), where it
        costs less than ``incumbent`` (micro). A way found that does not ship from the lifted
        node is the order's best on what the others leave without any rule lifted. After
        :meth:`prepare` of ``o``.
        """
        lp = self.lifted
        j = self.index[o]
        mine = self.pair_ok[self.p0 : self.p1]
        mine[:] = self.usual
        n, rule = lift if lift is not None else (-1, "")
        at = np.flatnonzero(self.nodes == n)
        mine[at] = self.room[at]  # the lifted node, where it has room
        lifted_pair = self.p0 + at
        late = int(lp.pair_late[lifted_pair[0]]) if rule == "promise" and at.size else 0
        saved = self.c_pair[lifted_pair].copy()
        saved_cap = self.pair_cap[lifted_pair].copy()
        self.c_pair[lifted_pair] -= late / MICRO
        if rule == "capacity":  # room for the order alone at the lifted node
            mine[at] = True
            self.pair_cap[lifted_pair] = -1
        try:
            value, found, qty, lower = solve_order_bb(
                lp,
                j,
                self.c_arc,
                self.c_pair,
                split=self.split,
                arc_ub=self.arc_ub,
                pair_ok=self.pair_ok,
                pair_cap=self.pair_cap,
                node_limit=self.node_limit,
                incumbent=min((incumbent - self.nothing) / MICRO, 0.0),
                deadline=deadline,
            )
        finally:
            self.c_pair[lifted_pair] = saved
            self.pair_cap[lifted_pair] = saved_cap
        if lower < value - 1e-9:
            return _Search(proven=False)
        if found.size == 0:
            return _Search(proven=True)  # nothing beats the incumbent
        nodes = sorted(set(lp.arc_node[found].tolist()))
        if n not in nodes:
            return _Search(proven=True, cost=pattern_cost(lp, j, found, qty), nodes=nodes)
        cost = pattern_cost(lp, j, found, qty) - late
        if cost >= incumbent:
            return _Search(proven=True)
        return _Search(proven=True, cost=cost, uses=True, nodes=nodes)


def _lift_bound(prob: Problem, world: _World, o: int, lift: tuple[int, str]) -> int:
    """A lower bound (micro, vs shipping nothing) of what the lifted node's parcel adds.

    Its fixed cost plus every unit it could ship that pays off, each at its full saving:
    any way to ship with the node costs at least the order's optimum without it plus this.
    """
    n, rule = lift
    lines = [ln for ln in prob.order_lines(o) if not prob.line_restricted[ln]]
    unit = prob.per_unit + int(prob.handling[n]) + int(prob.dist_cost[n, o])
    fixed = to_micro(prob.request.costs.per_shipment)
    if rule != "promise":
        fixed += int(prob.late_cost[n, o])
    gain = 0
    for ln in lines:
        margin = unit - int(prob.line_pen[ln])
        if margin < 0:
            units = min(int(prob.line_qty[ln]), max(int(world.avail_left[n, prob.line_sku[ln]]), 0))
            gain += margin * units
    return fixed + gain


def _ideal_costs(
    prob: Problem, world: _World, x: I64, o: int, arcs: I64, cands: list[tuple[int, str]]
) -> list[int]:
    """Per candidate lift, a lower bound (micro) of order ``o``'s cost with it lifted.

    Every unit at the best unit cost among the nodes the order may then use that hold
    stock of its line on what the others leave (``arcs``: its own use, handed back), the
    stock's amount and capacity aside, plus one parcel at the least fixed cost: a way to
    ship from the lifted node ships at least one parcel and no unit for less.
    """
    lines = [ln for ln in prob.order_lines(o) if not prob.line_restricted[ln]]
    nothing = _nothing_costs_of(prob, o)
    if not lines:
        return [nothing] * len(cands)
    skus = prob.line_sku[lines]
    stock = world.avail_left[:, skus].copy()
    own_units = np.zeros(prob.num_nodes, dtype=np.int64)
    for a in arcs.tolist():
        n, s = int(prob.arc_node[a]), int(prob.arc_sku[a])
        own_units[n] += int(x[a])
        hit = np.flatnonzero(skus == s)
        stock[n, hit] += int(x[a])
    mine = own_units > 0
    parcels = world.orders_left + mine
    room = world.units_left + own_units
    if prob.order_vip[o]:
        parcels = np.minimum(parcels, world.vip_orders_left + mine)
        room = np.minimum(room, world.vip_units_left + own_units)
    can = (parcels > 0) & (room > 0)
    unit = prob.per_unit + prob.handling + prob.dist_cost[:, o]
    gain_any = (unit[:, None] - prob.line_pen[lines][None, :]).astype(np.float64)
    gain_any[stock <= 0] = np.inf  # with room for the order (a lifted capacity)
    gain = np.where(can[:, None], gain_any, np.inf)
    ship = to_micro(prob.request.costs.per_shipment)
    fixed = (ship + prob.late_cost[:, o]).astype(np.float64)
    usual = (prob.node_block[:, o] == OK) & can
    g_usual = np.where(usual[:, None], gain, np.inf).min(axis=0)
    f_usual = float(np.where(usual, fixed, np.inf).min())
    qty = prob.line_qty[lines]
    out = []
    for n, rule in cands:
        g = np.minimum(g_usual, gain_any[n] if rule == "capacity" else gain[n])
        f = min(f_usual, float(ship if rule == "promise" else fixed[n]))
        out.append(nothing + int(f) + int(np.dot(qty, np.minimum(g, 0.0).astype(np.int64))))
    return out


def _lifts(
    prob: Problem,
    world: _World,
    x: I64,
    chosen_arcs: list[I64],
    chosen_nodes: list[list[int]],
    chosen_cost: I64,
    floor: dict[int, int],
    free: dict[int, int],
    deadline: float,
) -> dict[int, _Lifted]:
    """Per order, the node whose rule costs it most: lifted alone, the largest saving.

    ``floor``: per order a lower bound (micro) of its cheapest cost on what the others leave
    (its own optimum): a node whose parcel adds at least the choice's cost minus it cannot
    save. ``free``: per order its cheapest cost on what the others leave, where known (else
    searched for where a lifted rule would save, as the saving is measured against it).
    Orders whose searches stop unproven (node limit, ``deadline``) say which candidate was
    left unsettled.
    """
    todo: dict[int, list[tuple[int, int, int, tuple[int, str]]]] = {}
    for o in np.flatnonzero(_may_lift(prob)).tolist():
        cands = _lift_candidates(prob, o, chosen_nodes[o])
        if not cands:
            continue
        ref = free.get(o, int(chosen_cost[o]))  # no lift saves unless it beats this
        ideal = _ideal_costs(prob, world, x, o, chosen_arcs[o], cands)
        bounded = []
        for lift, least in zip(cands, ideal, strict=True):
            bound = _lift_bound(prob, world, o, lift)
            lower = max(floor.get(o, -int(NONE)) + bound, least)
            if lower < ref:
                bounded.append((lower, bound, least, lift))
        if bounded:
            todo[o] = sorted(bounded)
    if not todo:
        return {}
    if _past(deadline):
        return {o: _Lifted(unsettled=ranked[0][3]) for o, ranked in todo.items()}
    lifter = _Lifter(prob, sorted(todo))
    out: dict[int, _Lifted] = {}
    for o, ranked in todo.items():
        out[o] = _lift_order(
            lifter, world, x, o, chosen_arcs[o], int(chosen_cost[o]), ranked, floor, free, deadline
        )
    return out


def _lift_order(
    lifter: _Lifter,
    world: _World,
    x: I64,
    o: int,
    arcs: I64,
    chosen: int,
    ranked: list[tuple[int, int, int, tuple[int, str]]],
    floor: dict[int, int],
    free: dict[int, int],
    deadline: float,
) -> _Lifted:
    """:func:`_lifts` of order ``o`` (``arcs``, ``chosen``: its own and their cost, micro):
    its candidates ``ranked`` by their lower bounds."""
    known = free.get(o)  # the order's cheapest cost without a lift, where known
    if known is None and floor.get(o, -int(NONE)) >= chosen:
        known = chosen  # the choice reaches the order's own optimum
    best = chosen if known is None else known  # the cheapest way found so far
    low = floor.get(o, -int(NONE))
    out = _Lifted()
    found: tuple[int, str] | None = None
    prepared = False
    for _, bound, least, lift in ranked:
        if max(low + bound, least) >= best:
            continue  # this node cannot save more than the best so far
        if _past(deadline):
            out.unsettled = out.unsettled or lift
            break
        if not prepared:
            lifter.prepare(world, x, o, arcs)
            prepared = True
        got = lifter.search(o, lift, best, deadline)
        if not got.proven:
            out.unsettled = out.unsettled or lift
        elif got.cost is not None and got.uses:
            best, found = got.cost, lift
        elif got.cost is not None:  # the order's best without any rule lifted, below its choice
            known = best = low = got.cost  # only a lifted node that beats it counts from now on
            out.free = (got.cost, got.nodes)
    if found is not None and known is None:
        # the saving is against the order's cheapest way without a lift: search for it
        got = lifter.search(o, None, chosen, deadline) if not _past(deadline) else _Search(False)
        if not got.proven:
            out.unsettled = out.unsettled or found
            return out
        known = chosen if got.cost is None else got.cost
        if got.cost is not None:
            out.free = (got.cost, got.nodes)
    if found is not None and known is not None and best < known:
        out.lift = _Lift(found[0], found[1], known - best)
    return out


def _lift_reason(
    prob: Problem, o: int, lift: tuple[int, str], saving: int | None, unsettled: bool
) -> Reason:
    """The reason naming the node whose rule costs order ``o`` most, and what lifting it
    would save (``saving`` None: its search did not finish; ``unsettled``: a saving found,
    but the search of another node whose rule may cost more did not finish)."""
    n, rule = lift
    node_id = prob.node_ids[n]
    order = prob.request.orders[o]
    if rule == "excluded_nodes":
        head = f"{node_id} may not ship to region {order.region} (excluded_nodes)"
        lifted = "allowed"
    elif rule == "opening_hours":
        head = f"{node_id} does not open again before the horizon ends (opening_hours)"
        lifted = "open now"
    elif rule == "capacity":  # the node may take no parcel (or no VIP parcel) this wave
        no_room = prob.cap_orders[n] == 0 or prob.cap_units[n] == 0
        head = (
            f"{node_id} has no capacity in this wave"
            if no_room
            else f"the VIP share of {node_id}'s capacity is zero"
        )
        lifted = "with room for this order"
        kind = ReasonKind.CAPACITY if no_room else ReasonKind.VIP_SHARE
    else:
        when = f"(arrives {int(prob.arrival_s[n, o])} s, promised by {order.promise_by_s} s)"
        if prob.node_block[n, o] == PROMISE:
            head = f"{node_id} cannot meet the promise {when}"
        else:
            head = f"{node_id} would arrive late {when}"
        lifted = "on time"
    if saving is None:
        message = f"{head}; {lifted}, what it would save was not searched to the end"
    else:
        message = f"{head}; {lifted}, it would save {_money(saving)}"
        if unsettled:
            message += " (the search of other ruled-out nodes was not finished)"
    if rule == "capacity":  # a limit, not a rule: no rule name
        return _reason(kind=kind, node_id=node_id, message=message)
    kind = ReasonKind.PROMISE if rule == "promise" else ReasonKind.RULE
    return _reason(kind=kind, node_id=node_id, rule=rule, message=message)


def _money(micro: int) -> str:
    """Micro-units as currency: two decimals where exact, else every decimal it has."""
    if micro % 10_000 == 0:
        return f"{micro / MICRO:.2f}"
    return f"{from_micro(micro):.6f}".rstrip("0")


def _late_reasons(prob: Problem, o: int, nodes: list[int]) -> list[Reason]:
    """Each chosen node whose parcel misses the promise, and what its lateness costs."""
    out = []
    for n in nodes:
        late = int(prob.late_cost[n, o])
        if late > 0 and prob.node_block[n, o] == OK:
            node_id = prob.node_ids[n]
            when = (
                f"(arrives {int(prob.arrival_s[n, o])} s, promised by "
                f"{prob.request.orders[o].promise_by_s} s)"
            )
            out.append(
                _reason(
                    kind=ReasonKind.PROMISE,
                    node_id=node_id,
                    rule="promise",
                    message=f"{node_id} arrives late {when}: lateness costs {_money(late)}",
                )
            )
    return out


def _names(prob: Problem, nodes: list[int]) -> str:
    return ", ".join(prob.node_ids[n] for n in nodes) if nodes else "nowhere"


def _reason(
    *,
    kind: ReasonKind,
    message: str,
    node_id: str | None = None,
    sku: str | None = None,
    rule: str | None = None,
) -> Reason:
    """``Reason(...)`` of the fields given (not None), built without validation.

    Every value is of its field's type by construction (our own strings and enums), and
    at tens of thousands of orders pydantic's validation was most of the writing time.
    """
    given = {"kind", "message"}
    if node_id is not None:
        given.add("node_id")
    if sku is not None:
        given.add("sku")
    if rule is not None:
        given.add("rule")
    values = {"kind": kind, "node_id": node_id, "sku": sku, "rule": rule, "message": message}
    return construct(Reason, values, given)


def _alternative(
    *, nodes: list[str], cost: float, extra_cost: float, blocked: bool = False
) -> Alternative:
    """``Alternative(...)`` built without validation (values of the field types)."""
    values = {"nodes": nodes, "cost": cost, "extra_cost": extra_cost, "blocked": blocked}
    return construct(
        Alternative, values, {"nodes", "cost", "extra_cost"} | ({"blocked"} if blocked else set())
    )


def _explanation(
    *,
    order_id: str,
    nodes: list[str],
    cost: float,
    best_alternative: Alternative | None,
    reasons: list[Reason],
    summary: str,
) -> OrderExplanation:
    """``OrderExplanation(...)`` built without validation (values of the field types)."""
    values = {
        "order_id": order_id,
        "nodes": nodes,
        "cost": cost,
        "best_alternative": best_alternative,
        "reasons": reasons,
        "summary": summary,
    }
    return construct(OrderExplanation, values)


@dataclass
class _Nearer:
    """Per order, the nodes nearer than every chosen one that hold free stock of its lines.

    ``blocked``: the nearest of them a rule rules out; ``shut``: the nearest that may take
    no parcel (``shut_all``: at all, per node; else no VIP parcel); -1 where none.
    ``held``, ``held_line``: the nearest node whose held-back stock cost the order units of a
    line, and that line (:func:`_held_back`).
    """

    blocked: I64
    shut: I64
    shut_all: np.ndarray
    held: I64  # per order: the node of :func:`_held_back` (-1: none)
    held_line: I64  # per order: its line


def _holding(prob: Problem) -> np.ndarray:
    """N x O: the node holds free stock of one of the order's unrestricted lines."""
    free = (prob.avail[:, prob.line_sku] > 0) & ~prob.line_restricted.astype(bool)
    counts = np.zeros((prob.num_nodes, free.shape[1] + 1), dtype=np.int32)
    np.cumsum(free, axis=1, out=counts[:, 1:])  # a count over each order's lines
    start = prob.order_line_start
    return np.asarray(counts[:, start[1:]] > counts[:, start[:-1]])


def _shut_to(prob: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Per node: may take no parcel at all; N x O: may take no parcel of the order (no
    capacity at all, or no VIP share for a VIP order)."""
    shut_all = (prob.cap_orders == 0) | (prob.cap_units == 0)
    shut_vip = (prob.vip_cap_orders == 0) | (prob.vip_cap_units == 0)
    vip = prob.order_vip.astype(bool)
    return shut_all, shut_all[:, None] | (shut_vip[:, None] & vip[None, :])


def _nearer(prob: Problem, x: I64, chosen_nodes: list[list[int]]) -> _Nearer:
    """:class:`_Nearer` of every order at once (``chosen_nodes``: by distance)."""
    n_nodes, n_orders = prob.num_nodes, prob.num_orders
    orders = np.arange(n_orders)
    first = np.array([c[0] if c else -1 for c in chosen_nodes], dtype=np.int64)
    dist = prob.dist_km
    nearest = np.full(n_orders, np.inf)
    has = first >= 0
    nearest[has] = dist[first[has], orders[has]]
    closer = _holding(prob) & (dist < nearest)
    shut_all, stop = _shut_to(prob)

    def nearest_of(cand: np.ndarray) -> I64:
        # the first by distance, then by index (a stable sort by distance)
        if n_nodes == 0:
            return np.full(n_orders, -1, dtype=np.int64)
        pick = np.argmin(np.where(cand, dist, np.inf), axis=0).astype(np.int64)
        return np.where(cand.any(axis=0), pick, -1)

    held, held_line = _held_back(prob, x)
    return _Nearer(
        blocked=nearest_of(closer & (prob.node_block != OK)),
        shut=nearest_of(closer & stop),
        shut_all=shut_all,
        held=held,
        held_line=held_line,
    )


#: lines per block of :func:`_held_back` (its tables are lines x nodes)
HELD_BLOCK_LINES = 16_384


def _held_back(prob: Problem, x: I64) -> tuple[I64, I64]:
    """Per order, the nearest node whose held-back stock cost it units of a line, and the line.

    Held back: safety stock or the store floor. The node may serve the order, is nearer
    than the farthest node shipping the line (any node where units of the line are left
    unfilled), keeps stock of the line's SKU on the shelf, has less free than the line
    wants and ships less of it than that. Ties: the lower node index, then the lower line;
    -1 where there is none.
    """
    n_orders, n_nodes = prob.num_orders, prob.num_nodes
    node_out = np.full(n_orders, -1, dtype=np.int64)
    line_out = np.full(n_orders, -1, dtype=np.int64)
    if n_nodes == 0 or prob.num_lines == 0:
        return node_out, line_out
    sku, qty = prob.line_sku, prob.line_qty
    kept = prob.inventory > prob.avail  # N x S
    wanted = kept[:, sku] & (prob.avail[:, sku] < qty)  # N x L
    lines = np.flatnonzero(wanted.any(axis=0) & ~prob.line_restricted.astype(bool))
    if not lines.size:
        return node_out, line_out
    # units of each line shipped from each node
    used = np.flatnonzero(x > 0)
    pos = np.full(prob.num_lines, -1, dtype=np.int64)
    pos[lines] = np.arange(lines.size)
    at = pos[prob.arc_line[used]]
    mine = at >= 0
    flat = np.bincount(
        at[mine] * n_nodes + prob.arc_node[used[mine]],
        weights=x[used[mine]],
        minlength=lines.size * n_nodes,
    ).reshape(lines.size, n_nodes)
    allowed = prob.node_block == OK  # N x O
    found_o: list[I64] = []
    found_d: list[F64] = []
    found_n: list[I64] = []
    found_l: list[I64] = []
    for lo in range(0, lines.size, HELD_BLOCK_LINES):
        block = lines[lo : lo + HELD_BLOCK_LINES]
        got = flat[lo : lo + block.size]
        o_l = prob.line_order[block]
        dist = prob.dist_km[:, o_l].T  # lines x N
        q = qty[block]
        reach = np.where(got > 0, dist, -np.inf).max(axis=1)
        reach[got.sum(axis=1) < q] = np.inf  # short: every node is nearer
        held = wanted[:, block].T & allowed[:, o_l].T & (dist < reach[:, None]) & (got < q[:, None])
        li, nn = np.nonzero(held)
        found_o.append(o_l[li])
        found_d.append(dist[li, nn])
        found_n.append(nn.astype(np.int64))
        found_l.append(block[li])
    o, d, n, ln = (np.concatenate(a) for a in (found_o, found_d, found_n, found_l))
    if not o.size:
        return node_out, line_out
    # per order the least (distance, node, line)
    order = np.lexsort((ln, n, d, o))
    o, n, ln = o[order], n[order], ln[order]
    first = np.r_[True, o[1:] != o[:-1]]
    node_out[o[first]] = n[first]
    line_out[o[first]] = ln[first]
    return node_out, line_out


def _order_explanation(
    prob: Problem,
    world: _World,
    x: I64,
    o: int,
    arcs: I64,
    nodes: list[int],
    cost: int,
    alt_cost: int,
    alt_nodes: list[int],
    own_best: tuple[I64, I64] | None,
    own_cost: int,
    near: _Nearer,
    baseline: str | None = None,
    capped: tuple[int, list[int]] | None = None,
    shipless: _Shipless | None = None,
    lifted: _Lifted | None = None,
    free_way: tuple[int, list[int]] | None = None,
    alt_settled: bool = True,
    unfilled: list[Unfilled] | None = None,
) -> OrderExplanation:
    """One order's explanation (``free_way``: its cheapest way on what the other orders
    leave, where known to cost less than its choice: cost in micro, nodes;
    ``alt_settled``: its best alternative was searched to the end; ``unfilled``: its
    entries of the result's unfilled lines, whose reasons the explanation repeats)."""
    order_id = prob.order_ids[o]
    # the answer left a cheaper way that no other order's allocation stops (a number): a
    # baseline's, or a solve's within its gap (that way may keep the chosen nodes)
    slack = (
        free_way
        if free_way is not None and (baseline is not None or (nodes and free_way[0] < cost))
        else None
    )
    within_gap = False  # said to be within the gap without a cheaper way found
    reasons: list[Reason] = []
    alternative = None
    if alt_cost >= 0 and nodes:
        alternative = _alternative(
            nodes=[prob.node_ids[n] for n in alt_nodes],
            cost=from_micro(alt_cost),
            extra_cost=from_micro(alt_cost - cost),
        )
    elif shipless is not None and not nodes:
        alt_cost = shipless.cost
        alternative = _alternative(
            nodes=[prob.node_ids[n] for n in shipless.nodes],
            cost=from_micro(alt_cost),
            extra_cost=from_micro(alt_cost - cost),
            blocked=shipless.blocked,
        )
    # what stopped the order's own optimum
    if own_best is not None:
        b_arcs, b_qty = own_best
        if own_cost >= cost:
            if nodes:
                reasons.append(
                    _reason(
                        kind=ReasonKind.CHEAPEST,
                        # its own optimum keeps the request's rules (a node cap, a
                        # compliance rule): a reason beside it may say what a rule costs
                        message=f"{_names(prob, nodes)} is the cheapest way to ship this "
                        "order within the request's rules, even with all stock and capacity "
                        "to itself",
                    )
                )
        else:
            reasons.extend(_binding(prob, world, x, o, arcs, b_arcs, b_qty))
            unexplained = not any(r.kind != ReasonKind.CHEAPEST for r in reasons)
            cheaper = alternative is not None and alt_cost < cost
            if slack is not None:
                pass  # said below, with the number
            elif baseline is not None and (unexplained or cheaper):
                reasons.append(
                    _reason(
                        kind=ReasonKind.CHEAPEST,
                        message=f"the {baseline} baseline does not optimise: this order could "
                        "ship for less on what the other orders leave",
                    )
                )
            elif unexplained:
                within_gap = True
                reasons.append(_reason(kind=ReasonKind.CHEAPEST, message=WITHIN_GAP))
    if slack is not None:
        free_cost, free_nodes = slack
        why = f"the {baseline} baseline does not optimise" if baseline is not None else WITHIN_GAP
        # a rule baseline ships units dearer to ship than to leave unfilled: its cheapest
        # way may be to ship nothing (it read "could ship from nowhere")
        way = f"ship from {_names(prob, free_nodes)}" if free_nodes else "leave its units unfilled"
        reasons.append(
            _reason(
                kind=ReasonKind.CHEAPEST,
                message=f"{why}: on what the other orders leave this order could {way} "
                f"for {_money(cost - free_cost)} less",
            )
        )
    if capped is not None:
        saving, free_nodes = capped
        reasons.append(
            _reason(
                kind=ReasonKind.MAX_NODES,
                rule="max_nodes_per_order",
                message=f"max_nodes_per_order caps the order at {prob.max_nodes} node(s): "
                f"shipping from {_names(prob, free_nodes)} would cost {_money(saving)} "
                "less",
            )
        )
    if shipless is not None and shipless.blocked:
        # what the other orders took from the cheapest way it could ship alone
        said = {r.message for r in reasons}
        reasons.extend(
            r
            for r in _binding_wants(prob, world, x, o, arcs, shipless.wants)
            if r.message not in said
        )
    rules = _rule_reasons(prob, o, near)
    # the ruled-out node named is the one whose rule costs most (with the saving), else the
    # one whose search did not finish, in place of the nearest one (whose naming says that
    # no rule lifted alone saves)
    named: Reason | None = None
    if lifted is not None and lifted.lift is not None:
        lift = lifted.lift
        named = _lift_reason(
            prob, o, (lift.node, lift.rule), lift.saving, lifted.unsettled is not None
        )
    elif lifted is not None and lifted.unsettled is not None:
        named = _lift_reason(prob, o, lifted.unsettled, None, False)
    if named is not None:
        ruled = ("excluded_nodes", "opening_hours", "promise")
        if named.rule is None:  # a node shut this wave: in place of the nearest shut one
            shut = (ReasonKind.CAPACITY, ReasonKind.VIP_SHARE)
            at = next((i for i, r in enumerate(rules) if r.kind in shut), None)
        else:
            at = next((i for i, r in enumerate(rules) if r.rule in ruled), None)
        if at is None:
            at = sum(1 for r in rules if r.rule == "restricted_skus")
        else:
            del rules[at]
        rules.insert(at, named)
    reasons.extend(rules)
    reasons.extend(_late_reasons(prob, o, nodes))
    l0, l1 = int(prob.order_line_start[o]), int(prob.order_line_start[o + 1])
    short = int(prob.line_qty[l0:l1].sum()) - int(x[arcs].sum())
    if short:
        reasons.append(
            _reason(kind=ReasonKind.UNFILLED, message=unfilled_message(short, unfilled or []))
        )
    slack_said = (
        None
        if slack is None
        else (_names(prob, slack[1]) if slack[1] else "shipping nothing", cost - slack[0])
    )
    extra = None if alternative is None else alt_cost - cost
    summary = _summary(
        prob,
        o,
        nodes,
        arcs,
        x,
        alternative,
        extra,
        reasons,
        slack_said,
        settled=alt_settled and not within_gap,
        kept=_kept_said(prob, o, unfilled) if unfilled else None,
    )
    return _explanation(
        order_id=order_id,
        nodes=[prob.node_ids[n] for n in nodes],
        cost=from_micro(cost),
        best_alternative=alternative,
        reasons=reasons,
        summary=summary,
    )


def _binding(
    prob: Problem, world: _World, x: I64, o: int, arcs: I64, b_arcs: I64, b_qty: I64
) -> list[Reason]:
    """Trace the order's own optimum to the limits that stop it on what the others leave.

    Every arc of the own optimum is checked, also at a node the order ships from (where it
    may get fewer units than it wants), and the unit and VIP limits against the units the
    own optimum wants from the node over all its lines.
    """
    return _binding_wants(prob, world, x, o, arcs, _wants(prob, b_arcs, b_qty)[1])


def _binding_wants(
    prob: Problem, world: _World, x: I64, o: int, arcs: I64, wants: list[tuple[int, int, int]]
) -> list[Reason]:
    """:func:`_binding` of the units the order wants, (node, SKU, units) (``arcs``: its own)."""
    out: list[Reason] = []
    vip = bool(prob.order_vip[o])
    own_units = np.bincount(prob.arc_node[arcs], weights=x[arcs], minlength=prob.num_nodes)
    own_nodes = set(prob.arc_node[arcs].tolist())
    own_stock: dict[tuple[int, int], int] = {}
    for a in arcs.tolist():
        key = (int(prob.arc_node[a]), int(prob.arc_sku[a]))
        own_stock[key] = own_stock.get(key, 0) + int(x[a])
    wanted: dict[int, int] = {}
    for n, s, q in wants:
        if q <= 0:
            continue
        wanted[n] = wanted.get(n, 0) + q
        left = int(world.avail_left[n, s]) + own_stock.get((n, s), 0)
        if left < q:
            node_id, sku = prob.node_ids[n], prob.sku_ids[s]
            out.append(
                _reason(
                    kind=ReasonKind.STOCK,
                    node_id=node_id,
                    sku=sku,
                    message=f"stock of {sku} at {node_id} is taken by other orders "
                    f"({max(left, 0)} left, {q} wanted)",
                )
            )
    for n, q in wanted.items():
        node_id = prob.node_ids[n]
        mine = 1 if n in own_nodes else 0
        parcels_left = int(world.orders_left[n]) + mine
        units_left = int(world.units_left[n]) + int(own_units[n])
        if parcels_left <= 0:
            out.append(
                _reason(
                    kind=ReasonKind.CAPACITY,
                    node_id=node_id,
                    message=f"parcel capacity of {node_id} is full",
                )
            )
        elif units_left < q:
            out.append(
                _reason(
                    kind=ReasonKind.CAPACITY,
                    node_id=node_id,
                    message=f"unit capacity of {node_id} is full "
                    f"({max(units_left, 0)} left, {q} wanted)",
                )
            )
        if vip:
            vip_p = int(world.vip_orders_left[n]) + mine
            vip_u = int(world.vip_units_left[n]) + int(own_units[n])
            if vip_p <= 0 or vip_u < q:
                what = (
                    "parcel capacity is used up"
                    if vip_p <= 0
                    else f"unit capacity is used up ({max(vip_u, 0)} left, {q} wanted)"
                )
                out.append(
                    _reason(
                        kind=ReasonKind.VIP_SHARE,
                        node_id=node_id,
                        message=f"the VIP share of {node_id}'s {what}",
                    )
                )
    return out


def _rule_reasons(prob: Problem, o: int, near: _Nearer) -> list[Reason]:
    """The rules that rule out nearer nodes or hold stock back (``near``: of the answer)."""
    out: list[Reason] = []
    request = prob.request
    order = request.orders[o]
    lines = prob.order_lines(o)
    for ln in lines:
        if prob.line_restricted[ln]:
            sku = prob.sku_ids[int(prob.line_sku[ln])]
            out.append(
                _reason(
                    kind=ReasonKind.RULE,
                    sku=sku,
                    rule="restricted_skus",
                    message=f"{sku} may not be shipped to region {order.region}",
                )
            )
    if prob.num_nodes == 0:
        return out
    # the nearest node a rule rules out
    n = int(near.blocked[o])
    if n >= 0:
        rule = BLOCK_RULE[int(prob.node_block[n, o])]
        node_id = prob.node_ids[n]
        what = {
            "excluded_nodes": f"{node_id} may not ship to region {order.region} (excluded_nodes)",
            "opening_hours": f"{node_id} does not open again before the horizon ends",
            "promise": f"{node_id} cannot meet the promise "
            f"(arrives {int(prob.arrival_s[n, o])} s, promised by {order.promise_by_s} s)",
        }[rule]
        out.append(
            _reason(
                kind=ReasonKind.PROMISE if rule == "promise" else ReasonKind.RULE,
                node_id=node_id,
                rule=rule,
                message=what,
            )
        )
    # the nearest node that may take no parcel at all (or no VIP parcel)
    n = int(near.shut[o])
    if n >= 0:
        node_id = prob.node_ids[n]
        if near.shut_all[n]:
            out.append(
                _reason(
                    kind=ReasonKind.CAPACITY,
                    node_id=node_id,
                    message=f"{node_id} has no capacity in this wave",
                )
            )
        else:
            out.append(
                _reason(
                    kind=ReasonKind.VIP_SHARE,
                    node_id=node_id,
                    message=f"the VIP share of {node_id}'s capacity is zero",
                )
            )
    # stock held back (safety stock, the store floor) that cost the order units of a line
    n = int(near.held[o])
    if n >= 0:
        s = int(prob.line_sku[int(near.held_line[o])])
        held = int(prob.inventory[n, s] - prob.avail[n, s])
        node_id, sku = prob.node_ids[n], prob.sku_ids[s]
        rule = _holding_rule(prob, n, sku)
        what = "as safety stock" if rule == "safety_stock" else "(store floor)"
        out.append(
            _reason(
                kind=ReasonKind.RULE,
                node_id=node_id,
                sku=sku,
                rule=rule,
                message=f"{node_id} holds {int(prob.inventory[n, s])} of {sku} but "
                f"keeps {held} {what}",
            )
        )
    return out


def _holding_rule(prob: Problem, n: int, sku: str) -> str:
    """The rule that keeps stock of ``sku`` on node ``n``'s shelf (the larger floor wins)."""
    node = prob.request.nodes[n]
    floor = prob.request.rules.store_floor_units
    store = node.kind in (NodeKind.STORE, NodeKind.DARK_STORE)
    return "store_floor_units" if store and floor > node.safety_stock_for(sku) else "safety_stock"


def _summary(
    prob: Problem,
    o: int,
    nodes: list[int],
    arcs: I64,
    x: I64,
    alternative: Alternative | None,
    extra: int | None,
    reasons: list[Reason],
    slack: tuple[str, int] | None = None,
    *,
    settled: bool = True,
    kept: list[str] | None = None,
) -> str:
    """The one-line summary (``extra``: the alternative's extra cost, micro; ``slack``: where
    a baseline's order could ship for how much less, micro, on what the other orders leave;
    ``settled``: the alternative was searched to the end, else the choice is not called the
    cheapest option; ``kept``: what the rules keep on the shelf that its short lines' reasons
    name, :func:`_kept_said`, named among the causes as those reasons name it).

    Money is written as :func:`_money` writes it (every decimal of the micro-units where two
    are not exact), so the summary states the ``extra_cost`` of the structured field: a
    difference of a fraction of a cent does not read as a tie ("+0.00").
    """
    if not nodes:
        head = "nothing ships"
    else:
        parts = []
        arc_nodes = prob.arc_node[arcs].tolist()
        for n in nodes:
            k = arc_nodes.count(n)
            parts.append(f"{prob.node_ids[n]} ({k} line{'s' if k != 1 else ''})")
        head = "ships from " + " and ".join(parts)
    tail = []
    if alternative is not None and extra is not None:
        where = ", ".join(alternative.nodes) or "shipping nothing"
        signed = ("+" if extra >= 0 else "") + _money(extra)
        if alternative.blocked:
            tail.append(f"could ship from {where} ({signed}) only with what other orders took")
        elif not nodes:
            tail.append(f"cheapest way to ship: {where}, {signed}")
        else:
            tail.append(f"next best: {where}, {signed}")
    forced = [r for r in reasons if r.kind not in (ReasonKind.CHEAPEST,)]
    if slack is not None:
        tail.append(f"not the cheapest option: {slack[0]} costs {_money(slack[1])} less")
    causes = _causes(forced) if forced else []
    # stock kept on the shelf that a short line's reason names (also: safety_stock): the
    # summary said only "stock ... is taken by other orders", as if none were left at all
    causes += [k for k in kept or [] if not any(k in c for c in causes)]
    if causes:
        tail.append("because " + "; also ".join(causes))
    elif slack is not None:
        pass
    elif nodes and alternative is not None and extra is not None and extra < 0:
        where = ", ".join(alternative.nodes) or "shipping nothing"
        tail.append(f"not the cheapest option: {where} costs {_money(-extra)} less")
    elif nodes and alternative is not None and settled:
        tail.append("cheapest option")
    return head + ("; " + "; ".join(tail) if tail else "")


#: limits that bar an order's own optimum: a summary names the first of each kind
LIMIT_KINDS = (ReasonKind.STOCK, ReasonKind.CAPACITY, ReasonKind.VIP_SHARE, ReasonKind.MAX_NODES)


def _causes(forced: list[Reason]) -> list[str]:
    """The summary's causes: the first forced reason, then the first of each other limit kind.

    Stock taken by other orders was named alone where the order's optimum was also barred
    by a full capacity, a VIP share or the cap on nodes per order (the reasons listed both).
    """
    said = {forced[0].kind}
    out = [forced[0].message]
    for r in forced[1:]:
        if r.kind in LIMIT_KINDS and r.kind not in said:
            said.add(r.kind)
            out.append(r.message)
    return out


#: short lines an explanation names (the result's ``unfilled`` lists them all)
UNFILLED_SAID = 3


def unfilled_message(short: int, lines: list[Unfilled]) -> str:
    """An order's unfilled reason: how many units, and each short line's SKU and cause."""
    if not lines:
        return f"{short} unit(s) left unfilled (see unfilled)"
    said = "; ".join(f"{u.quantity} x {u.sku} ({u.detail})" for u in lines[:UNFILLED_SAID])
    more = len(lines) - UNFILLED_SAID
    if more > 0:
        said += f"; {more} more line(s) (see unfilled)"
    return f"{short} unit(s) left unfilled: {said}"


def unfilled_lines(prob: Problem, world: _World, x: I64) -> list[Unfilled]:
    """Every line with units left unfilled, with the reason."""
    shipped = np.bincount(prob.arc_line, weights=x, minlength=prob.num_lines)
    short = prob.line_qty - np.rint(shipped).astype(np.int64)
    out: list[Unfilled] = []
    for ln in np.nonzero(short > 0)[0].tolist():
        o = int(prob.line_order[ln])
        s = int(prob.line_sku[ln])
        reason, detail = _why_unfilled(prob, world, x, ln, o, s)
        also: list[UnfilledReason] = []
        if reason == UnfilledReason.STOCK_EXHAUSTED:
            causes = _also_barred(prob, world, x, ln, o, s)
            also = list(dict.fromkeys(kind for kind, _ in causes))
            if causes:
                detail += "; also: " + "; ".join(text for _, text in causes)
        out.append(
            Unfilled(
                order_id=prob.order_ids[o],
                sku=prob.sku_ids[s],
                quantity=int(short[ln]),
                reason=reason,
                detail=detail,
                also=also,
            )
        )
    return out


def _order_arcs(prob: Problem, o: int) -> tuple[int, int]:
    """The arcs of order ``o``: one slice, ``lo:hi`` (its pairs' arcs follow one another)."""
    return (
        int(prob.pair_arc_start[prob.order_pair_start[o]]),
        int(prob.pair_arc_start[prob.order_pair_start[o + 1]]),
    )


def _line_arcs(prob: Problem, o: int, ln: int) -> list[int]:
    """The arcs of line ``ln`` of order ``o``, in arc order: one numpy pass over the order's
    arcs (a Python loop over them per short line took seconds over thousands of nodes)."""
    lo, hi = _order_arcs(prob, o)
    return (lo + np.flatnonzero(prob.arc_line[lo:hi] == ln)).tolist()


def _why_unfilled(
    prob: Problem, world: _World, x: I64, ln: int, o: int, s: int
) -> tuple[UnfilledReason, str]:
    sku = prob.sku_ids[s]
    if prob.line_restricted[ln]:
        region = prob.request.orders[o].region
        return UnfilledReason.RESTRICTED_SKU, f"{sku} may not ship to region {region}"
    holding = np.nonzero(prob.inventory[:, s] > 0)[0]
    if holding.size == 0:
        return UnfilledReason.NO_STOCK, f"no node holds {sku}"
    free = holding[prob.avail[holding, s] > 0]
    if free.size == 0:
        rules = sorted({_holding_rule(prob, int(n), sku) for n in holding})
        return (
            UnfilledReason.SAFETY_STOCK,
            f"every unit of {sku} stays on the shelf ({', '.join(rules)})",
        )
    allowed = free[prob.node_block[free, o] == OK]
    if allowed.size == 0:
        codes = prob.node_block[free, o]
        code = int(np.bincount(codes).argmax())
        rule = BLOCK_RULE.get(code, "excluded_nodes")
        reason = {
            "excluded_nodes": UnfilledReason.EXCLUDED_NODES,
            "opening_hours": UnfilledReason.CLOSED,
            "promise": UnfilledReason.PROMISE,
        }[rule]
        return reason, f"every node with {sku} is ruled out for this order ({rule})"
    arcs = _line_arcs(prob, o, ln)
    vip = bool(prob.order_vip[o])
    if not arcs:
        # a node that may ship no parcel (or no VIP parcel) at all has no arc either
        shut = [n for n in allowed.tolist() if _no_room(prob, n, vip)]
        if len(shut) == allowed.size:
            names = ", ".join(prob.node_ids[n] for n in shut[:3])
            what = "capacity" if any(_no_room(prob, n, False) for n in shut) else "VIP capacity"
            return (
                UnfilledReason.CAPACITY,
                f"every node that may ship {sku} here has no {what} in this wave ({names})",
            )
        # the other nodes cost more than backordering; a shut node that would pay off is
        # what stops the line, not the cost
        paying = [n for n in shut if _would_pay(prob, o, n, ln)]
        if paying:
            names = ", ".join(prob.node_ids[n] for n in paying[:3])
            what = "capacity" if any(_no_room(prob, n, False) for n in paying) else "VIP capacity"
            return (
                UnfilledReason.CAPACITY,
                f"{names} would ship {sku} here but {'has' if len(paying) == 1 else 'have'} "
                f"no {what} in this wave; every other node costs more than backordering it",
            )
        return UnfilledReason.COST, "backordering costs less than any way to ship it"
    nodes = [int(prob.arc_node[a]) for a in arcs]
    stock_left = [int(world.avail_left[n, s]) for n in nodes]
    if all(v <= 0 for v in stock_left):
        names = ", ".join(prob.node_ids[n] for n in nodes[:3])
        own = int(sum(int(x[a]) for a in arcs))
        others = sum(int(prob.avail[n, s]) for n in nodes) - own
        if others > 0:
            return UnfilledReason.STOCK_EXHAUSTED, f"stock of {sku} at {names} went to other orders"
        return (
            UnfilledReason.STOCK_EXHAUSTED,
            f"{names} had only {own} unit(s) of {sku} to ship, all shipped to this order",
        )
    open_nodes = [n for n, v in zip(nodes, stock_left, strict=True) if v > 0]
    full = [n for n in open_nodes if world.orders_left[n] <= 0 or world.units_left[n] <= 0]
    if len(full) == len(open_nodes):
        return UnfilledReason.CAPACITY, "every node with stock left is at capacity"
    full_set = set(full)  # membership tests over thousands of nodes
    if vip and all(
        n in full_set or world.vip_orders_left[n] <= 0 or world.vip_units_left[n] <= 0
        for n in open_nodes
    ):
        return (
            UnfilledReason.CAPACITY,
            "the VIP share of the capacity of every node with stock left is used up",
        )
    lo, hi = _order_arcs(prob, o)
    shipments = int(np.unique(prob.arc_node[lo:hi][x[lo:hi] > 0]).size)
    if 0 < prob.max_nodes <= shipments:
        return UnfilledReason.MAX_NODES, f"the order already ships from {shipments} node(s)"
    usable = [n for n in open_nodes if n not in full_set]
    cheaper = _ships_for_less(prob, world, x, o, arcs, usable, vip)
    if cheaper is not None:
        # a baseline, or the answer of a solve cut short: backordering is not what is cheaper
        # (it was said to be, also under allow_unfilled = false beside "not proven impossible")
        return (
            UnfilledReason.COST,
            f"this answer leaves it short, but shipping it from {prob.node_ids[cheaper]} costs "
            "less than backordering it (the answer is not optimised)",
        )
    return UnfilledReason.COST, "backordering costs less than shipping it"


def _also_barred(
    prob: Problem, world: _World, x: I64, ln: int, o: int, s: int
) -> list[tuple[UnfilledReason, str]]:
    """The other limits that bar line ``ln`` where its stock went to other orders.

    A node whose stock of the SKU is gone would also be barred by its parcel or unit
    capacity, its VIP share or the order's ``max_nodes_per_order``; a node holding free
    stock of the SKU that the rules allow has no candidate arc when it may take no parcel
    (no capacity, or no VIP share, in this wave); stock the rules keep on the shelf (safety
    stock, the store floor) at nodes that may serve the order. Each such cause is named, so
    the stock taken by other orders is not read as the only one.
    """
    sku = prob.sku_ids[s]
    vip = bool(prob.order_vip[o])
    arcs = _line_arcs(prob, o, ln)
    lo, hi = _order_arcs(prob, o)
    own_nodes = set(np.unique(prob.arc_node[lo:hi][x[lo:hi] > 0]).tolist())
    out: list[tuple[UnfilledReason, str]] = []
    full: list[int] = []
    vip_full: list[int] = []
    capped: list[int] = []
    for n in dict.fromkeys(int(prob.arc_node[a]) for a in arcs):
        mine = n in own_nodes
        if (not mine and world.orders_left[n] <= 0) or world.units_left[n] <= 0:
            full.append(n)
        elif vip and ((not mine and world.vip_orders_left[n] <= 0) or world.vip_units_left[n] <= 0):
            vip_full.append(n)
        if not mine and 0 < prob.max_nodes <= len(own_nodes):
            capped.append(n)
    if full:
        out.append((UnfilledReason.CAPACITY, f"{_names(prob, full)} at capacity"))
    if vip_full:
        out.append((UnfilledReason.CAPACITY, f"the VIP share of {_names(prob, vip_full)} used up"))
    if capped:
        out.append(
            (
                UnfilledReason.MAX_NODES,
                f"the order already ships from {len(own_nodes)} node(s) "
                f"(max_nodes_per_order), so not from {_names(prob, capped)}",
            )
        )
    # units on the shelf the rules keep back at nodes that may serve the order: without them
    # "stock went to other orders" read as if the stock were all gone
    # (nodes of the line's arcs, whose free stock is gone, and nodes with none free)
    kept = _kept_on_shelf(prob, o, s, arcs)
    if kept is not None:
        out.append((UnfilledReason.SAFETY_STOCK, kept))
    holding = np.nonzero(prob.avail[:, s] > 0)[0].tolist()
    with_arcs = {int(prob.arc_node[a]) for a in arcs}
    shut = [
        n
        for n in holding
        if n not in with_arcs and prob.node_block[n, o] == OK and _no_room(prob, n, vip)
    ]
    if shut:
        what = "capacity" if any(_no_room(prob, n, False) for n in shut) else "VIP capacity"
        out.append(
            (
                UnfilledReason.CAPACITY,
                f"{_names(prob, shut)} {'holds' if len(shut) == 1 else 'hold'} {sku} but "
                f"{'has' if len(shut) == 1 else 'have'} no {what} in this wave",
            )
        )
    return out


def _kept_on_shelf(prob: Problem, o: int, s: int, arcs: list[int]) -> str | None:
    """What the rules keep on the shelf (safety stock, the store floor) of SKU ``s`` at the
    nodes that may serve order ``o`` where its line (``arcs``) could not get it: a node of
    the line's arcs, or one with none of it free; None where nothing is kept there."""
    sku = prob.sku_ids[s]
    line_nodes = {int(prob.arc_node[a]) for a in arcs}
    kept = [
        n
        for n in np.nonzero(prob.inventory[:, s] > prob.avail[:, s])[0].tolist()
        if prob.node_block[n, o] == OK and (n in line_nodes or prob.avail[n, s] <= 0)
    ]
    if not kept:
        return None
    parts = [
        f"{prob.node_ids[n]} keeps {int(prob.inventory[n, s] - prob.avail[n, s])} "
        f"({_holding_rule(prob, n, sku)})"
        for n in kept[:3]
    ]
    more = f" and {len(kept) - 3} more node(s)" if len(kept) > 3 else ""
    return f"{', '.join(parts)}{more} of {sku} on the shelf"


def _kept_said(prob: Problem, o: int, unfilled: list[Unfilled]) -> list[str]:
    """For the summary of order ``o``: what the rules keep on the shelf, per short line of
    its ``unfilled`` entries whose reason names it (``also: safety_stock``), in line order."""
    held = {u.sku for u in unfilled if UnfilledReason.SAFETY_STOCK in u.also}
    out: list[str] = []
    for ln in prob.order_lines(o):
        s = int(prob.line_sku[ln])
        if prob.sku_ids[s] not in held:
            continue
        said = _kept_on_shelf(prob, o, s, _line_arcs(prob, o, ln))
        if said is not None and said not in out:
            out.append(said)
    return out


def _ships_for_less(
    prob: Problem, world: _World, x: I64, o: int, arcs: list[int], usable: list[int], vip: bool
) -> int | None:
    """A node of ``usable`` that could ship one more unit of the line on one of its ``arcs``
    for less than backordering it, on what every order's allocation leaves; else None."""
    lo, hi = _order_arcs(prob, o)
    used = set(np.unique(prob.arc_pair[lo:hi][x[lo:hi] != 0]).tolist())
    usable_set = set(usable)
    for a in arcs:
        n, p = int(prob.arc_node[a]), int(prob.arc_pair[a])
        if n not in usable_set or x[a] >= prob.arc_ub[a]:
            continue
        if vip and world.vip_units_left[n] <= 0:
            continue
        extra = int(prob.arc_gain[a])
        if p not in used:
            if world.orders_left[n] <= 0 or (vip and world.vip_orders_left[n] <= 0):
                continue
            extra += int(prob.pair_fixed[p]) + (prob.split if used else 0)
        if extra < 0:
            return n
    return None


def _would_pay(prob: Problem, o: int, n: int, ln: int) -> bool:
    """True when node ``n`` would ship line ``ln`` of order ``o`` if it had capacity.

    The compiler's exact filters (:func:`~solvers.allocation.problem.compile_request`) on
    the node's stock without its capacity: the line's unit costs less than its penalty,
    and what the order's lines save there pays for the parcel (shipment and lateness).
    """
    unit = prob.per_unit + int(prob.handling[n]) + int(prob.dist_cost[n, o])
    if unit >= prob.line_pen[ln]:
        return False
    saving = 0
    for line in prob.order_lines(o):
        margin = int(prob.line_pen[line]) - unit
        if prob.line_restricted[line] or margin <= 0:
            continue
        saving += min(int(prob.line_qty[line]), int(prob.avail[n, prob.line_sku[line]])) * margin
    return saving > to_micro(prob.request.costs.per_shipment) + int(prob.late_cost[n, o])


def _no_room(prob: Problem, n: int, vip: bool) -> bool:
    """True when node ``n`` may ship no parcel at all in this wave (to a VIP order: ``vip``)."""
    if prob.cap_orders[n] == 0 or prob.cap_units[n] == 0:
        return True
    return vip and (prob.vip_cap_orders[n] == 0 or prob.vip_cap_units[n] == 0)
