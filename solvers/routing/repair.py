"""Repair routes that break a constraint once scheduled, keeping as much of them as possible.

PyVRP does not model driver breaks (it plans with shortened shifts instead): its routes are
scheduled with the break placed where the route is shortest
(:func:`solvers.routing.timing.place_break`); a route that still cannot take its break
without missing a window or the shift end loses, one at a time, an order whose visits cost
the most time (preferring, among the few costliest, one whose removal makes it fit), and the
removed orders are then re-inserted by cheapest insertion wherever they fit (possibly back
into the same route, at a better position, or into an unused vehicle). Any engine's route gets
the same treatment, so a plan is never thrown away for one bad route. Orders the engine left
out (``extra``) are offered to the same insertion.

Removals are checked in closed form (:mod:`solvers.routing.timing`) for vehicles with at most
one break and stops with one window, else with the scheduler. Past the ``deadline`` (or once
the solve is cancelled, :mod:`solvers.cancel`) the remaining bad routes lose their last stops
instead (no search); the orders taken off and those the engine left out still get the
construction's grace (:data:`solvers.routing.greedy.GRACE_S`) of cheapest insertion, so a
solve that lost the CPU does not drop an order that fits in a moment.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from solvers.cancel import cancelled
from solvers.routing.greedy import GRACE_S, GreedyBuilder, always_completes
from solvers.routing.problem import RoutingProblem
from solvers.routing.schedule import route_value, schedule_route, structure_violation
from solvers.routing.timing import route_timing

#: Orders timed exactly per removal (the ones whose visits save the most time).
CANDIDATES = 8


@dataclass
class Repaired:
    """Feasible routes, and what the repair changed (counts of orders)."""

    routes: dict[int, list[int]]
    moved: int = 0  # taken out of a route that did not fit
    lost: int = 0  # of those, left out (no other place found)
    added: int = 0  # of the ``extra`` orders, inserted
    lost_orders: frozenset[int] = frozenset()
    #: orders (taken off a route, or of ``extra``) left out because the construction's
    #: deadline came before it was done with them: the clock's doing, not the problem's
    cut: frozenset[int] = frozenset()


def repair_routes(
    problem: RoutingProblem,
    routes: Mapping[int, Sequence[int]],
    *,
    pinned: frozenset[int] = frozenset(),
    deadline: float | None = None,
    extra: Sequence[int] = (),
) -> Repaired:
    """Feasible routes from ``routes``, also trying to insert the orders ``extra``."""
    out = {v: list(seq) for v, seq in routes.items() if seq}
    bad = [v for v, seq in out.items() if not _Check(problem, v, seq).fits(seq)]
    if not bad and not extra:
        return Repaired(out)
    removed: list[int] = []
    for v in bad:
        seq = out[v]
        check = _Check(problem, v, seq)
        while seq and not check.fits(seq):
            # past it, or cancelled (solvers.cancel), the last orders go: no search for the worst
            late = (deadline is not None and time.perf_counter() > deadline) or cancelled()
            drop = _last_order(problem, seq, pinned) if late else _worst_order(check, seq, pinned)
            if drop is None:  # only pinned stops left and they do not fit: give the route up
                removed.extend(sorted({problem.tasks[t].order for t in seq}))
                seq = []
                break
            seq = [t for t in seq if problem.tasks[t].order != drop]
            removed.append(drop)
        out[v] = seq
    kept = {v: s for v, s in out.items() if s}
    moved = set(removed)
    todo = sorted(moved | set(extra))
    builder = GreedyBuilder(problem, orders=todo, initial=kept, deadline=deadline)
    fixed, left = builder.build()
    lost = frozenset(moved & set(left))
    cut = frozenset(left) if builder.timed_out else frozenset()
    return Repaired(fixed, len(moved), len(lost), len(set(extra) - set(left)), lost, cut)


class _Check:
    """Does a sub-sequence of one route fit its vehicle? Closed form where that is exact."""

    def __init__(self, problem: RoutingProblem, vehicle: int, seq: Sequence[int]) -> None:
        self.p = problem
        self.v = vehicle
        veh = problem.vehicles[vehicle]
        # removing whole orders keeps pairing, precedence, skills and capacity, so checking
        # them once is enough; the timing is then exact in closed form for single windows
        # and at most one break
        self.fast = (
            len(veh.breaks) <= 1
            and all(len(problem.tasks[t].windows) <= 1 for t in seq)
            and all(veh.can_serve(problem.orders[problem.tasks[t].order]) for t in seq)
            and structure_violation(problem, vehicle, seq) is None
        )

    def duration(self, seq: Sequence[int]) -> tuple[bool, int]:
        """(fits, shortest duration) of ``seq`` on the vehicle."""
        if not self.fast:
            sched = schedule_route(self.p, self.v, seq, exact_breaks=False)
            return sched.violation is None, sched.duration_s
        veh = self.p.vehicles[self.v]
        tm = route_timing(self.p, self.v, list(seq))
        ok = tm.feasible
        if veh.max_duration_s is not None:
            ok = ok and tm.duration <= veh.max_duration_s
        if veh.max_distance_m is not None:
            ok = ok and tm.distance <= veh.max_distance_m
        return ok, tm.duration

    def fits(self, seq: Sequence[int]) -> bool:
        """True when ``seq`` can be scheduled on the vehicle."""
        return not seq or self.duration(seq)[0]


def _worst_order(check: _Check, seq: list[int], pinned: frozenset[int]) -> int | None:
    """The order to take out of an infeasible route: of the :data:`CANDIDATES` orders whose
    visits save the most time, the first whose removal makes the route fit (else the first).

    Only the candidates are timed exactly, so a removal costs O(route length).
    """
    p = check.p
    ranked = costliest_orders(p, check.v, seq, pinned)
    for o in ranked[:CANDIDATES]:
        if check.fits([t for t in seq if p.tasks[t].order != o]):
            return o
    return ranked[0] if ranked else None


def costliest_orders(
    problem: RoutingProblem, vehicle: int, seq: Sequence[int], pinned: Collection[int] = ()
) -> list[int]:
    """The orders of a route, those whose visits save the most time when removed first.

    The saving of a visit is the detour through it plus its service, in one numpy pass; an
    order with a pinned visit is not listed.
    """
    p = problem
    veh = p.vehicles[vehicle]
    ta = p.arrays
    seq_a = np.asarray(seq, dtype=np.int64)
    nodes = np.concatenate([[veh.start_node], ta.node[seq_a], [veh.end_node]])
    dur = p.duration
    saved = (dur[nodes[:-2], nodes[1:-1]] + ta.service[seq_a] + dur[nodes[1:-1], nodes[2:]]) - dur[
        nodes[:-2], nodes[2:]
    ]
    per_order: dict[int, int] = {}
    fixed: set[int] = set()
    for k, t in enumerate(seq):
        o = p.tasks[t].order
        per_order[o] = per_order.get(o, 0) + int(saved[k])
        if t in pinned:
            fixed.add(o)
    return sorted((o for o in per_order if o not in fixed), key=lambda o: -per_order[o])


def _last_order(problem: RoutingProblem, seq: list[int], pinned: frozenset[int]) -> int | None:
    """The order of the last stop that is not pinned (a removal that needs no search)."""
    for t in reversed(seq):
        if t not in pinned:
            return problem.tasks[t].order
    return None


@dataclass
class Whole:
    """Routes serving every order split over nodes whole or not at all, and what changed."""

    routes: dict[int, list[int]]
    #: orders taken off their route with the rest of their group because a shipment of the
    #: same order found no place (a mandatory or pinned group) or the deadline came first,
    #: and why: the reason a plan gives them (:func:`~solvers.routing.solve._whole`). An
    #: optional group taken off otherwise is not here: its cost (no place cheaper than its
    #: penalty), the usual reason of an optional order left out, says it
    dropped: dict[int, str]
    completed: int = 0  # groups served in part whose missing jobs were inserted
    removed: int = 0  # groups taken off (served in part, or dearer than their penalty)
    held: int = 0  # groups left served in part: their pinned jobs kept, the others not placed
    #: groups left served in part, their pinned jobs kept (the rest found no place): the
    #: missing jobs, and why
    partial: dict[int, str] = field(default_factory=dict)
    #: the jobs of groups left out because the deadline came before their completion (not
    #: because a job found no place): the clock's doing, not the problem's
    cut: set[int] = field(default_factory=set)


def whole_orders(
    problem: RoutingProblem,
    routes: Mapping[int, Sequence[int]],
    *,
    pinned: Collection[int] = (),
    original_vehicle: Mapping[int, int] | None = None,
    disruption_cost: int = 0,
    deadline: float | None = None,
) -> Whole:
    """Every group of :attr:`~solvers.routing.problem.RoutingProblem.groups` (the courier
    jobs of an order shipped from several nodes) served in full or not at all, pinned stops
    (``pinned``, tasks) kept.

    The twin delivers such an order once all its parcels arrive, and charges its penalty
    once otherwise: a part served is a route for nothing. A group served in part gets its
    missing jobs inserted by cheapest insertion when they fit and that is cheaper than taking
    its served jobs off (a mandatory order, or one with a pinned stop, always), else loses
    them. A pinned stop is never taken off: a group with one whose missing jobs find no place
    keeps its pinned jobs (its other served jobs go) and is reported in :attr:`Whole.partial`.
    An optional group served in full without a pin is taken off when its visits cost the
    routes more than its penalty (each job was inserted against the whole penalty). Moves
    only whole groups, so other orders keep their places; routes that break a constraint are
    left to the repair. Past ``deadline`` only a group with a pinned job is still completed,
    or a mandatory one whose completion started before it: their constructions share one
    :data:`~solvers.routing.greedy.GRACE_S` of CPU time from the call's start, which a caller
    keeps back from its budget where :func:`graced_groups` says so. On a small problem
    (:func:`~solvers.routing.greedy.always_completes`) every mandatory group is completed
    whatever the clock, its constructions bounded by the problem's size.
    """
    out = {v: list(seq) for v, seq in routes.items() if seq}
    if not problem.groups:
        return Whole(out, {})
    original = original_vehicle or {}
    pins = frozenset(pinned)

    known: dict[tuple[int, tuple[int, ...]], int | None] = {}  # each route priced once

    def value(v: int, seq: Sequence[int]) -> int | None:
        key = (v, tuple(seq))
        if key not in known:
            known[key] = route_value(problem, v, seq, original, disruption_cost) if seq else 0
        return known[key]

    def total(rs: Mapping[int, Sequence[int]], vs: Collection[int]) -> int | None:
        values = [value(v, rs.get(v, ())) for v in vs]
        return None if any(x is None for x in values) else sum(x for x in values if x)

    def late() -> bool:
        return (deadline is not None and time.perf_counter() > deadline) or cancelled()

    def is_pinned(o: int) -> bool:
        return any(t in pins for t in problem.orders[o].tasks)

    # the completions past the deadline of pinned and mandatory groups share one grace of
    # CPU time (the caller keeps it back from its budget, see :func:`graced_groups`)
    cpu_until = time.thread_time() + GRACE_S
    small = always_completes(problem)
    where = {problem.tasks[t].order: v for v, seq in out.items() for t in seq}
    done = Whole(out, {})
    for group in problem.groups:
        served = [o for o in group if o in where]
        missing = [o for o in group if o not in where]
        penalty = problem.orders[group[0]].penalty
        held = [o for o in served if is_pinned(o)]  # a pin says the job is served
        if not served or (not missing and (penalty is None or held or late())):
            continue  # past the deadline a whole group is left as it is
        members = set(group)
        affected = {where[o] for o in served}
        without = {
            v: [t for t in out[v] if problem.tasks[t].order not in members] for v in affected
        }
        now, after = total(out, affected), total(without, affected)
        saving = now - after if now is not None and after is not None else None
        why: str | None = None  # None: taken off for its cost (the usual reason says it)
        if not missing:
            if penalty is None or saving is None or saving <= penalty:
                continue
        else:
            # a pinned job's group is completed whatever the cost, even past the deadline
            # (on the call's grace): the other way loses the pinned stop; a mandatory one
            # gets the grace too (a solve that lost the CPU leaves no mandatory order out
            # that fits in a moment), an optional one no construction time past the deadline
            graced = bool(held) or penalty is None
            # a small problem's mandatory group too: its construction is bounded by the
            # problem's size (it ignores the deadline), and taking it off leaves a mandatory
            # order out for the clock's sake
            clock_cut = True  # no completion tried: the deadline came first
            if not late() or held or (penalty is None and small):
                builder = GreedyBuilder(
                    problem,
                    orders=missing,
                    initial=out,
                    deadline=deadline,
                    grace_s=max(0.0, cpu_until - time.thread_time()) if graced else 0.0,
                )
                fixed, left = builder.build()
                clock_cut = builder.timed_out and bool(left)
                if not left:
                    changed = {v for v in set(fixed) | set(out) if fixed.get(v) != out.get(v)}
                    before, added = total(out, changed), total(fixed, changed)
                    delta = None if before is None or added is None else added - before
                    worth = (
                        penalty is None
                        or bool(held)
                        or (delta is not None and (saving is None or penalty - delta > saving))
                    )
                    if delta is not None and worth:
                        out = {v: seq for v, seq in fixed.items() if seq}
                        where = {problem.tasks[t].order: v for v, seq in out.items() for t in seq}
                        done.completed += 1
                        continue
            names = ", ".join(problem.order_ids[o] for o in missing)
            if penalty is None or held:
                # the construction left a mandatory or pinned group's job out for want of a
                # place (an optional one's also when each place costs more than its penalty)
                why = f"left out with {names}, a shipment of the same order that found no place"
            if clock_cut:
                why = f"left out with {names}: the deadline came before the order was completed"
                done.cut.update(o for o in group if o not in held)
        if held:
            # the pinned jobs stay where they are pinned; the group's other jobs go
            kept = set(held)
            without = {
                v: [
                    t
                    for t in out[v]
                    if problem.tasks[t].order not in members or problem.tasks[t].order in kept
                ]
                for v in affected
            }
            pinned_names = ", ".join(problem.order_ids[o] for o in held)
            for o in missing:
                done.partial[o] = (
                    f"no place found for it, and {pinned_names} of its order pinned "
                    "(kept): the order is served in part"
                )
        for v, seq in without.items():
            if seq:
                out[v] = seq
            else:
                del out[v]
        for o in served:
            if o in held:
                continue
            del where[o]
            if why is not None:
                done.dropped[o] = why
        if held:
            done.held += 1
        else:
            done.removed += 1
    done.routes = out
    return done


def graced_groups(problem: RoutingProblem, pinned: Collection[int] = ()) -> bool:
    """Whether :func:`whole_orders` may complete a group past its deadline, on its grace: the
    problem has a mandatory group, or one with a pinned job (``pinned``: tasks)."""
    pins = frozenset(pinned)
    return any(
        problem.orders[group[0]].penalty is None
        or any(t in pins for o in group for t in problem.orders[o].tasks)
        for group in problem.groups
    )


def reinsert_groups(
    problem: RoutingProblem,
    routes: Mapping[int, Sequence[int]],
    *,
    deadline: float | None = None,
) -> tuple[dict[int, list[int]], int]:
    """The routes with the groups of :attr:`~solvers.routing.problem.RoutingProblem.groups`
    left out whole offered to cheapest insertion, each inserted whole or not at all (an
    optional one only when its insertions cost less than its penalty), and how many groups
    went in.

    OR-Tools ties a group's visits (one disjunction, their active variables equal): no move
    of its local search inserts several visits of one disjunction at once, so a group its
    start leaves out stays out. The routes given are kept as they are (new visits go between
    their stops); the caller keeps the result only when the plan objective says it is
    cheaper. No construction time past ``deadline`` (no grace), but on a small problem
    (:func:`~solvers.routing.greedy.always_completes`), whose construction ignores the clock.
    """
    out = {v: list(seq) for v, seq in routes.items() if seq}
    served = {problem.tasks[t].order for seq in out.values() for t in seq}
    todo = sorted(o for group in problem.groups if served.isdisjoint(group) for o in group)
    late = deadline is not None and time.perf_counter() > deadline
    if not todo or (late and not always_completes(problem)):
        return out, 0
    fixed, left = GreedyBuilder(
        problem, orders=todo, initial=out, deadline=deadline, grace_s=0.0
    ).build()
    placed = sum(1 for group in problem.groups if set(group) <= set(todo) - set(left))
    return fixed, placed
