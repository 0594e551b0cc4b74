"""Break-aware post-optimisation of a final plan: local moves priced by the exact scheduler.

The engines choose the order of the visits, and which vehicle serves which order, without
pricing driver breaks (PyVRP plans with shifts shortened by the breaks' length; OR-Tools may
lay a break before a route's start or after its end), and the scheduler
(:func:`~solvers.routing.schedule.schedule_route`) then adds the idle time a break forces,
which their search never saw. This pass improves such a plan with moves evaluated by that
scheduler and the plan objective (route costs, disruption costs, penalties of the orders
left out):

- *reorder* a route: every order of its visits for routes of at most :data:`EXACT_STOPS`
  stops (prefixes that miss a window are cut), else moving one visit elsewhere in the route
  and reversing segments (2-opt);
- *relocate* an order (its pickup and delivery together) to another vehicle, at its best
  position there, an unused vehicle included (one per kind of vehicle);
- *swap* two orders of two routes, each at its best position in the other route (an order
  with one of the :data:`SWAP_NEIGHBOURS` orders closest to it);
- an order moved or swapped into a route that then has at most :data:`REORDER_INSERT_STOPS`
  stops takes the best order of all that route's visits instead of its best insertion;
- *give* a route to another vehicle (an unused one, or in exchange for its route), or merge
  it into another route;
- *relocate a pair*: two orders next to each other on a route moved together (their visits
  in their order, one after the other) next to an order near them on another route, or to
  an unused vehicle;
- *exchange a pair* for one order or two next to each other of another route (one of them
  near the pair), each group's visits together in the other's place;
- *insert* an order left out where the cheapest position is (a mandatory one first; a
  mandatory one that fits nowhere may take another order's place, that order moving to
  another vehicle).

A move is kept only when it makes the plan strictly cheaper (or serves more mandatory orders)
and every route it changes is feasible. Pinned stops stay on their vehicle in their order
(an order with a pinned visit is never moved to another route). The pass stops at its
``deadline`` or once the solve is cancelled (:mod:`solvers.cancel`), keeping the moves made;
given ``max_work`` it also stops once it has done that much work, counted in units that do
not depend on the machine (:data:`BOUND_WORK` per bound, :data:`VALUE_WORK` per pricing): a
pass stopped that way is the same on a slow machine as on a fast one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from solvers.cancel import cancelled
from solvers.routing.problem import RoutingProblem, left_out, route_release
from solvers.routing.schedule import disruption, route_value, schedule_route

#: Routes of at most this many stops are reordered exactly (every order of their visits):
#: 720 orders at 6 stops, 0.1-0.5 ms each with two breaks (measured), so about 0.3 s for a
#: full one; longer routes get single-visit moves and 2-opt.
EXACT_STOPS = 6


#: An order moved to a route that then has at most this many stops takes the best order of
#: all its visits there, not only the best insertion (24 orders at 4 stops): a move that
#: pays only together with a new order of the other visits is found too.
REORDER_INSERT_STOPS = 4


#: An order is swapped only with the orders whose visits are closest to its own.
SWAP_NEIGHBOURS = 8

#: Work units of a lower bound (:meth:`_Polisher.bound`) and of a pricing by the scheduler
#: (:meth:`_Polisher.value`): a pricing took about 10 times a bound (200-order seeded city
#: day with breaks: 1.6 million bounds, 25,000 pricings, 308 and 29.5 us each, loaded machine).
BOUND_WORK = 1
VALUE_WORK = 10


@dataclass
class Polished:
    """The routes after the pass and how many moves it kept."""

    routes: dict[int, list[int]]
    moves: int = 0
    placed: int = 0  # orders served that were left out before
    before: int = 0  # objective (milli-cents, penalties included) before and after
    after: int = 0
    timed_out: bool = False  # stopped by its deadline (or a cancel)
    worked_out: bool = False  # stopped by its work budget


class _OutOfTime(Exception):
    """The pass reached its deadline or its work budget (``worked_out``), or the solve was
    cancelled."""

    def __init__(self, worked_out: bool = False) -> None:
        super().__init__()
        self.worked_out = worked_out


class _Polisher:
    def __init__(
        self,
        problem: RoutingProblem,
        routes: Mapping[int, Sequence[int]],
        pinned: frozenset[int],
        original_vehicle: Mapping[int, int],
        disruption_cost: int,
        deadline: float,
        max_work: int | None = None,
    ) -> None:
        self.p = problem
        self.pinned = pinned
        self.original = original_vehicle
        self.disruption = disruption_cost
        self.deadline = deadline
        self.max_work = max_work
        self.work = 0
        self.seqs: dict[int, list[int]] = {v: list(s) for v, s in routes.items() if s}
        self.values: dict[int, int] = {}
        for v, seq in self.seqs.items():
            value = self.value(v, seq)
            if value is None:  # not ours to fix (the caller validates): left alone
                raise ValueError(f"vehicle {v}: the route is infeasible")
            self.values[v] = value
        self.moves = 0
        self._near: dict[int, set[int]] = {}

    # ------------------------------------------------------------------ pricing
    def tick(self, work: int) -> None:
        """Count ``work`` units; out of time past the deadline, the work budget or a cancel."""
        self.work += work
        if self.max_work is not None and self.work > self.max_work:
            raise _OutOfTime(worked_out=True)
        if time.perf_counter() > self.deadline or cancelled():
            raise _OutOfTime

    def value(self, v: int, seq: Sequence[int]) -> int | None:
        """Objective of one route (milli-cents, disruption included); None if infeasible."""
        if not seq:
            return 0
        self.tick(VALUE_WORK)
        return route_value(self.p, v, seq, self.original, self.disruption)

    def bound(self, v: int, seq: Sequence[int]) -> int | None:
        """A lower bound of :meth:`value` without scheduling: the distance, and a duration
        of at least the travel, the service and the breaks, and at least from the latest
        departure the windows and the breaks allow to the earliest end they allow; None when
        the route cannot be feasible (it misses a window or its shift's end even without
        breaks, which only delay)."""
        if not seq:
            return 0
        self.tick(BOUND_WORK)  # thousands of candidates may be bounded out between pricings
        p = self.p
        veh = p.vehicles[v]
        node = veh.start_node
        metres = busy = 0
        release = route_release(p, seq)
        clock = max(veh.shift[0], release)  # leaves once its loads exist
        # the latest opening and the earliest closing of the stops' windows (a stop's windows
        # taken as one), counted back to the departure of a route that never waits
        opens, closes = clock, veh.shift[1]
        for t in seq:
            task = p.tasks[t]
            leg = int(p.duration[node, task.node])
            metres += int(p.distance[node, task.node])
            busy += leg
            clock += leg
            if task.windows:
                if clock > task.windows[-1][1]:
                    return None
                clock = max(clock, task.windows[0][0])
                opens = max(opens, task.windows[0][0] - busy)
                closes = min(closes, task.windows[-1][1] - busy)
            clock += task.service_s
            busy += task.service_s
            node = task.node
        leg = int(p.duration[node, veh.end_node])
        if clock + leg > veh.shift[1]:
            return None
        metres += int(p.distance[node, veh.end_node])
        busy += leg
        # leaving at the latest by the earliest closing (counted without waiting) and by the
        # latest start of each break on the road, the route ends at the earliest after the
        # busy time from the latest opening and after the end of each break at its earliest;
        # a break that may be taken at the start while the route waits for its release is not
        # in the duration, nor bounds the departure
        road = [
            (lo, hi, length)
            for lo, hi, length in veh.breaks
            if not max(veh.shift[0], lo) < release or max(veh.shift[0], lo) > hi
        ]
        depart = min([closes, veh.start_late, veh.shift[1] - busy, *(hi for _, hi, _ in road)])
        end = max([opens + busy, *(lo + length for lo, _, length in veh.breaks)])
        duration = max(end - depart, busy + sum(length for _, _, length in road))
        cost = veh.fixed_cost + veh.unit_distance_cost * metres + veh.unit_duration_cost * duration
        return cost + disruption(seq, v, self.original, self.disruption)

    def cheapest(
        self, v: int, candidates: Iterable[list[int]], below: int | None = None
    ) -> tuple[int, list[int]] | None:
        """The cheapest feasible sequence of ``candidates`` on vehicle ``v`` (only one
        cheaper than ``below``, if given); candidates whose bound is no better are skipped."""
        best: tuple[int, list[int]] | None = None
        for cand in candidates:
            limit = best[0] if best is not None else below
            low = self.bound(v, cand)
            if low is None or (limit is not None and low >= limit):
                continue
            value = self.value(v, cand)
            if value is not None and (limit is None or value < limit):
                best = (value, cand)
        return best

    def best_order(
        self, v: int, seq: Sequence[int], below: int | None = None
    ) -> tuple[int, list[int]] | None:
        """The cheapest order of ``seq``'s visits on vehicle ``v`` (every order when short,
        else ``seq`` as it is), pinned visits in their order; only one cheaper than
        ``below``, if given."""
        if len(seq) > EXACT_STOPS:
            return self.cheapest(v, [list(seq)], below)
        orders = (c for c in self._permutations(v, seq) if self.pins_kept(seq, c))
        return self.cheapest(v, orders, below)

    def total(self) -> int:
        """Objective of the plan: routes and the penalties of the optional orders left out."""
        return sum(self.values.values()) + left_out(self.p, self.served())[1]

    def served(self) -> set[int]:
        return {self.p.tasks[t].order for seq in self.seqs.values() for t in seq}

    def pins_kept(self, before: Sequence[int], after: Sequence[int]) -> bool:
        if not self.pinned:
            return True
        return [t for t in before if t in self.pinned] == [t for t in after if t in self.pinned]

    def movable(self, o: int) -> bool:
        return not any(t in self.pinned for t in self.p.orders[o].tasks)

    # ------------------------------------------------------------------ building blocks
    def insertions(self, seq: Sequence[int], o: int) -> Iterable[list[int]]:
        """Every sequence with order ``o``'s visits inserted into ``seq`` (pickup first)."""
        info = self.p.orders[o]
        n = len(seq)
        if info.pickup is None:
            for i in range(n + 1):
                yield [*seq[:i], info.delivery, *seq[i:]]
            return
        for i in range(n + 1):
            for j in range(i, n + 1):
                yield [*seq[:i], info.pickup, *seq[i:j], info.delivery, *seq[j:]]

    def best_insertion(
        self, v: int, seq: Sequence[int], o: int, below: int | None = None
    ) -> tuple[int, list[int]] | None:
        """The cheapest feasible insertion of order ``o`` into vehicle ``v``'s ``seq`` (only
        one cheaper than ``below``, if given)."""
        if not self.p.vehicles[v].can_serve(self.p.orders[o]):
            return None
        info = self.p.orders[o]
        visits = [info.delivery] if info.pickup is None else [info.pickup, info.delivery]
        if len(seq) + len(visits) <= REORDER_INSERT_STOPS:
            # every order of the visits: a better order of the others may make room
            return self.best_order(v, [*seq, *visits], below)
        return self.cheapest(v, self.insertions(seq, o), below)

    def without(self, seq: Sequence[int], o: int) -> list[int]:
        return [t for t in seq if self.p.tasks[t].order != o]

    def targets(self, exclude: int) -> list[int]:
        """Vehicles a moved order may go to: the used ones and one unused of each kind."""
        out = [v for v in self.seqs if v != exclude]
        kinds: set[tuple[object, ...]] = set()
        for v, veh in enumerate(self.p.vehicles):
            if v in self.seqs or v == exclude or veh.type_key in kinds:
                continue
            kinds.add(veh.type_key)
            out.append(v)
        return out

    def set_route(self, v: int, seq: list[int], value: int) -> None:
        if seq:
            self.seqs[v] = seq
            self.values[v] = value
        else:
            self.seqs.pop(v, None)
            self.values.pop(v, None)

    # ------------------------------------------------------------------ moves
    def reorder(self, v: int) -> bool:
        """Best order of route ``v``'s visits (exact when short); True if it improved."""
        seq = self.seqs[v]
        current = self.values[v]
        best: tuple[int, list[int]] | None
        if len(seq) <= EXACT_STOPS:
            best = self.best_order(v, seq, current)
        else:
            best = None
            for cand in self._local(seq):  # first improvement on long routes
                low = self.bound(v, cand)
                if low is None or low >= current or not self.pins_kept(seq, cand):
                    continue
                value = self.value(v, cand)
                if value is not None and value < current:
                    best = (value, cand)
                    break
        if best is None:
            return False
        self.set_route(v, best[1], best[0])
        return True

    def exchange(self, a: int) -> bool:
        """Give route ``a`` to another vehicle (an unused one, or one whose route it takes
        in exchange), or merge it into another route, each route in its best order."""
        seq_a = self.seqs.get(a)
        if not seq_a or any(t in self.pinned for t in seq_a):
            return False
        for b in self.targets(a):
            seq_b = self.seqs.get(b, [])
            if any(t in self.pinned for t in seq_b):
                continue
            current = self.values[a] + self.values.get(b, 0)
            # route a on vehicle b, and b's route (if any) on vehicle a (nothing to gain
            # between alike vehicles)
            if self.p.vehicles[a].type_key != self.p.vehicles[b].type_key:
                below = current - (self.bound(a, seq_b) or 0)
                new_b = self.best_order(b, seq_a, below)
                new_a: tuple[int, list[int]] | None = (0, [])
                if new_b is not None and seq_b:
                    new_a = self.best_order(a, seq_b, current - new_b[0])
                if new_b is not None and new_a is not None:
                    self.set_route(a, new_a[1], new_a[0])
                    self.set_route(b, new_b[1], new_b[0])
                    return True
            if not seq_b:
                continue
            # both routes on vehicle b
            merged = self.best_order(b, [*seq_b, *seq_a], current)
            if merged is None and len(seq_a) + len(seq_b) > EXACT_STOPS:
                merged = (self.values[b], list(seq_b))
                for o in self.orders_of(seq_a):
                    merged = self.best_insertion(b, merged[1], o, current)
                    if merged is None:
                        break
            if merged is not None:
                self.set_route(a, [], 0)
                self.set_route(b, merged[1], merged[0])
                return True
        return False

    def _permutations(self, v: int, seq: Sequence[int]) -> Iterable[list[int]]:
        """Orders of ``seq`` with each pickup before its delivery whose prefixes meet every
        window when driven without waiting for breaks (a prefix that misses one cannot be
        completed: breaks only delay)."""
        p = self.p
        veh = p.vehicles[v]
        dur = p.duration
        tasks = p.tasks

        def extend(
            prefix: list[int], rest: list[int], t_free: int, node: int
        ) -> Iterable[list[int]]:
            if not rest:
                yield list(prefix)
                return
            placed = set(prefix)
            for k, t in enumerate(rest):
                task = tasks[t]
                info = p.orders[task.order]
                if info.pickup is not None and t == info.delivery and info.pickup not in placed:
                    continue
                arrival = t_free + int(dur[node, task.node])
                start = arrival
                if task.windows:
                    if arrival > task.windows[-1][1]:
                        continue
                    start = max(arrival, task.windows[0][0])
                prefix.append(t)
                yield from extend(
                    prefix, rest[:k] + rest[k + 1 :], start + task.service_s, task.node
                )
                prefix.pop()

        depart = max(veh.shift[0], route_release(p, seq))  # once its loads exist
        return extend([], list(seq), depart, veh.start_node)

    @staticmethod
    def _local(seq: Sequence[int]) -> Iterable[list[int]]:
        """One visit moved elsewhere in the route, then segment reversals (2-opt)."""
        n = len(seq)
        for i in range(n):
            rest = [*seq[:i], *seq[i + 1 :]]
            for j in range(n):
                if j != i:
                    yield [*rest[:j], seq[i], *rest[j:]]
        for i, j in itertools.combinations(range(n), 2):
            yield [*seq[:i], *reversed(seq[i : j + 1]), *seq[j + 1 :]]

    def relocate(self, a: int) -> bool:
        """Move one order of route ``a`` to the vehicle where that saves the most."""
        seq_a = self.seqs.get(a)
        if not seq_a:
            return False
        for o in self.orders_of(seq_a):
            if not self.movable(o):
                continue
            rest = self.without(seq_a, o)
            value_a = self.value(a, rest)
            if value_a is None:
                continue

            def insert(
                b: int, seq_b: list[int], below: int, o: int = o
            ) -> tuple[int, list[int]] | None:
                """The cheapest insertion of order ``o`` on ``b``."""
                return self.best_insertion(b, seq_b, o, below)

            if self.move_out(a, rest, value_a, insert):
                return True
        return False

    def move_out(
        self,
        a: int,
        rest: list[int],
        value_a: int,
        insert: Callable[[int, list[int], int], tuple[int, list[int]] | None],
    ) -> bool:
        """Route ``a`` becomes ``rest`` (worth ``value_a``) and what it gave up goes to the
        target vehicle where ``insert(vehicle, its seq, below)`` finds the cheapest place, if
        that costs less than the removal saves."""
        limit = self.values[a] - value_a  # extra cost allowed, lowered by each find
        best: tuple[int, list[int], int] | None = None  # vehicle, seq, value
        for b in self.targets(a):
            old_b = self.values.get(b, 0)
            got = insert(b, self.seqs.get(b, []), old_b + limit)
            if got is not None:
                limit = got[0] - old_b
                best = (b, got[1], got[0])
        if best is None:
            return False
        self.set_route(a, rest, value_a)
        self.set_route(*best)
        return True

    def swap(self, a: int) -> bool:
        """Exchange an order of route ``a`` with one of another route, if that saves."""
        seq_a = self.seqs.get(a)
        if not seq_a:
            return False
        for oa in self.orders_of(seq_a):
            if not self.movable(oa):
                continue
            rest_a = self.without(seq_a, oa)
            bound_a = self.bound(a, rest_a) or 0
            near = self.nearest(oa)
            for b in [v for v in self.seqs if v != a]:
                seq_b = self.seqs[b]
                current = self.values[a] + self.values[b]
                for ob in self.orders_of(seq_b):
                    if ob not in near or not self.movable(ob):
                        continue
                    rest_b = self.without(seq_b, ob)
                    bound_b = self.bound(b, rest_b) or 0
                    if bound_a + bound_b >= current:
                        continue
                    new_a = self.best_insertion(a, rest_a, ob, current - bound_b)
                    if new_a is None:
                        continue
                    new_b = self.best_insertion(b, rest_b, oa, current - new_a[0])
                    if new_b is None:
                        continue
                    self.set_route(a, new_a[1], new_a[0])
                    self.set_route(b, new_b[1], new_b[0])
                    return True
        return False

    def orders_of(self, seq: Sequence[int]) -> list[int]:
        """The orders of ``seq``, in the order of their first visits."""
        return list(dict.fromkeys(self.p.tasks[t].order for t in seq))

    def pairs(self, seq: Sequence[int]) -> list[tuple[int, int]]:
        """Pairs of orders next to each other in ``seq`` (by their first visits), both
        movable."""
        pairs = itertools.pairwise(self.orders_of(seq))
        return [(o1, o2) for o1, o2 in pairs if self.movable(o1) and self.movable(o2)]

    def cut(self, seq: Sequence[int], group: Iterable[int]) -> tuple[list[int], list[int], int]:
        """(``seq`` without the visits of the orders of ``group``, those visits in their order,
        the position of the first of them)."""
        mine = set(group)
        tasks = self.p.tasks
        kept = [t for t in seq if tasks[t].order not in mine]
        taken = [t for t in seq if tasks[t].order in mine]
        return kept, taken, next(k for k, t in enumerate(seq) if tasks[t].order in mine)

    def serves(self, v: int, block: Iterable[int]) -> bool:
        """Whether vehicle ``v`` may serve every order of ``block`` (skills, kind)."""
        return all(self.p.vehicles[v].can_serve(self.p.orders[o]) for o in block)

    def relocate_pair(self, a: int) -> bool:
        """Move two orders next to each other on route ``a``, their visits together in their
        order, to the vehicle and place where that saves the most: next to an order near
        them on a used route, or alone on an unused vehicle (one per kind)."""
        seq_a = self.seqs.get(a)
        if not seq_a:
            return False
        tasks = self.p.tasks
        for pair in self.pairs(seq_a):
            rest, block, _ = self.cut(seq_a, pair)
            value_a = self.value(a, rest)
            if value_a is None:
                continue
            near = self.nearest(pair[0]) | self.nearest(pair[1])

            def insert(
                b: int,
                seq_b: list[int],
                below: int,
                pair: tuple[int, int] = pair,
                block: list[int] = block,
                near: set[int] = near,
            ) -> tuple[int, list[int]] | None:
                """The cheapest place of ``block`` on ``b``, next to an order near ``pair``."""
                if not self.serves(b, pair):
                    return None
                places = [
                    i
                    for i in range(len(seq_b) + 1)
                    if not seq_b
                    or (i > 0 and tasks[seq_b[i - 1]].order in near)
                    or (i < len(seq_b) and tasks[seq_b[i]].order in near)
                ]
                return self.cheapest(b, ([*seq_b[:i], *block, *seq_b[i:]] for i in places), below)

            if self.move_out(a, rest, value_a, insert):
                return True
        return False

    def exchange_pair(self, a: int) -> bool:
        """Exchange two orders next to each other on route ``a`` with one order or two next
        to each other on another route (one of them near the two), each group's visits
        together in their order, in the other's place."""
        seq_a = self.seqs.get(a)
        if not seq_a:
            return False
        for pair in self.pairs(seq_a):
            rest_a, block_a, at_a = self.cut(seq_a, pair)
            near = self.nearest(pair[0]) | self.nearest(pair[1])
            for b in [v for v in self.seqs if v != a]:
                seq_b = self.seqs[b]
                if not self.serves(b, pair):
                    continue
                current = self.values[a] + self.values[b]
                ords = [o for o in self.orders_of(seq_b) if self.movable(o)]
                groups: list[tuple[int, ...]] = [(o,) for o in ords]
                groups += self.pairs(seq_b)
                for group in groups:
                    if not near.intersection(group) or not self.serves(a, group):
                        continue
                    rest_b, block_b, at_b = self.cut(seq_b, group)
                    new_a = [*rest_a[:at_a], *block_b, *rest_a[at_a:]]
                    new_b = [*rest_b[:at_b], *block_a, *rest_b[at_b:]]
                    low_a, low_b = self.bound(a, new_a), self.bound(b, new_b)
                    if low_a is None or low_b is None or low_a + low_b >= current:
                        continue
                    value_a = self.value(a, new_a)
                    if value_a is None or value_a + low_b >= current:
                        continue
                    value_b = self.value(b, new_b)
                    if value_b is None or value_a + value_b >= current:
                        continue
                    self.set_route(a, new_a, value_a)
                    self.set_route(b, new_b, value_b)
                    return True
        return False

    def nearest(self, o: int) -> set[int]:
        """The :data:`SWAP_NEIGHBOURS` orders whose visits are closest to order ``o``'s (by
        travel time between their places, the closest pair of visits)."""
        got = self._near.get(o)
        if got is None:
            p = self.p
            nodes = [p.tasks[t].node for t in p.orders[o].tasks]
            dur = p.duration
            gap = {
                other: min(
                    min(int(dur[n, p.tasks[t].node]), int(dur[p.tasks[t].node, n]))
                    for n in nodes
                    for t in info.tasks
                )
                for other, info in enumerate(p.orders)
                if other != o
            }
            got = set(sorted(gap, key=lambda k: gap[k])[:SWAP_NEIGHBOURS])
            self._near[o] = got
        return got

    def insert_left_out(self) -> bool:
        """Insert an order left out at its cheapest position (mandatory orders first; an
        optional one where it costs less than its penalty). Not a courier job of an order
        split over nodes: one alone saves no penalty (see
        :func:`~solvers.routing.repair.whole_orders`)."""
        served = self.served()
        orders = self.p.orders
        grouped = self.p.group_of
        left = [o for o in range(len(orders)) if o not in served and o not in grouped]
        left.sort(key=lambda o: (orders[o].penalty is not None, -orders[o].drop_weight))
        for o in left:
            limit = orders[o].penalty  # extra cost allowed (None: any), lowered by each find
            best: tuple[int, list[int], int] | None = None  # vehicle, seq, value
            for b in self.targets(-1):
                old_b = self.values.get(b, 0)
                below = None if limit is None else old_b + limit
                got = self.best_insertion(b, self.seqs.get(b, []), o, below)
                if got is not None:
                    limit = got[0] - old_b
                    best = (b, got[1], got[0])
            if best is not None:
                self.set_route(*best)
                return True
            if orders[o].penalty is None and self.eject_for(o):
                return True
        return False

    def eject_for(self, o: int) -> bool:
        """Serve the mandatory order ``o`` in another order's place, that order moving to
        another vehicle (the cheapest such pair of insertions for the first route and order
        where one exists)."""
        for b in list(self.seqs):
            seq_b = self.seqs[b]
            for ob in self.orders_of(seq_b):
                if not self.movable(ob):
                    continue
                new_b = self.best_insertion(b, self.without(seq_b, ob), o)
                if new_b is None:
                    continue
                best: tuple[int, list[int], int] | None = None  # vehicle, seq, value
                extra: int | None = None  # what the best insertion so far adds
                for c in self.targets(b):
                    old_c = self.values.get(c, 0)
                    below = None if extra is None else old_c + extra
                    got = self.best_insertion(c, self.seqs.get(c, []), ob, below)
                    if got is not None:
                        best, extra = (c, got[1], got[0]), got[0] - old_c
                if best is not None:
                    self.set_route(b, new_b[1], new_b[0])
                    self.set_route(*best)
                    return True
        return False

    def waiting_first(self) -> list[int]:
        """The routes, those that wait the longest (breaks included) first."""
        idle: dict[int, int] = {}
        for v, seq in self.seqs.items():
            self.tick(VALUE_WORK)
            sched = schedule_route(self.p, v, seq)
            busy = sum(st.departure_s - st.start_s for st in sched.stops)
            idle[v] = sched.duration_s - busy
        return sorted(self.seqs, key=lambda v: -idle[v])

    def run(self) -> None:
        improved = True
        while improved:
            improved = False
            for v in self.waiting_first():
                if v in self.seqs and self.reorder(v):
                    self.moves += 1
                    improved = True
            for v in self.waiting_first():
                while (
                    self.exchange(v)
                    or self.relocate(v)
                    or self.swap(v)
                    or self.relocate_pair(v)
                    or self.exchange_pair(v)
                ):
                    self.moves += 1
                    improved = True
            while self.insert_left_out():
                self.moves += 1
                improved = True


def polish_routes(
    problem: RoutingProblem,
    routes: Mapping[int, Sequence[int]],
    *,
    deadline: float,
    pinned: frozenset[int] = frozenset(),
    original_vehicle: Mapping[int, int] | None = None,
    disruption_cost: int = 0,
    max_work: int | None = None,
) -> Polished:
    """Routes at most as dear as ``routes`` by the plan objective (see the module docstring),
    by ``deadline`` and within ``max_work`` units of work if given; ``routes`` unchanged when
    one of them is infeasible or no move saves."""
    original = original_vehicle or {}
    try:
        pol = _Polisher(problem, routes, pinned, original, disruption_cost, deadline, max_work)
    except ValueError:
        same = {v: list(s) for v, s in routes.items() if s}
        return Polished(same, timed_out=time.perf_counter() > deadline)
    except _OutOfTime as out:
        same = {v: list(s) for v, s in routes.items() if s}
        return Polished(same, timed_out=not out.worked_out, worked_out=out.worked_out)
    before = pol.total()
    stop: _OutOfTime | None = None
    try:
        pol.run()
    except _OutOfTime as out:
        stop = out
    placed = len(pol.served()) - len({problem.tasks[t].order for s in routes.values() for t in s})
    timed_out = stop is not None and not stop.worked_out
    worked_out = stop is not None and stop.worked_out
    return Polished(dict(pol.seqs), pol.moves, placed, before, pol.total(), timed_out, worked_out)
