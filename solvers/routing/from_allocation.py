"""Turn an omnichannel scenario plus an allocation into courier pickup-and-delivery jobs."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from fractions import Fraction

from scenarios.errors import InputError, ScenarioInputError
from scenarios.geo import MAX_INT, TimeWindow
from scenarios.model import Order, PickupSpec, Scenario
from scenarios.plan import AllocationLine, shipment_order


def routing_scenario_from_allocation(
    scenario: Scenario, allocation: list[AllocationLine]
) -> Scenario:
    """One pickup-and-delivery job per (order, node) shipment of the allocation.

    The pickup is at the node, ready once the node's processing time has passed (from the
    order's creation) and inside its opening hours (a node closed for the rest of the horizon
    by then leaves the job unserved as ``node_closed``, see
    :func:`~solvers.routing.diagnose.diagnose_orders`); the delivery is at the customer in the
    order's promised windows. Demand is the shipped units (on a ``units`` dimension), or the
    order's own demand vector shared among its shipments by shipped units, in integers that add
    up to it (see :func:`_split_demand`). A job's id is
    ``<order id>@<node id>`` when an order ships from several nodes, else the order id; the
    jobs of an order shipped from several nodes have ``split_of`` = its id (one group, see
    :func:`split_order_groups`).

    An order with a ``pickup`` of its own is a pickup-and-delivery job as it stands (its goods
    are at its pickup, it is not allocated to nodes): an allocation line of it is an
    InputError. An order whose tasks would have an id past :data:`MAX_TASK_ID` characters
    as allocated is a :class:`~scenarios.errors.ScenarioInputError` on its ``orders.N.id``;
    so is a node id that would give two tasks of one order one id (``M:pickup@M`` next to a
    node ``M``, see :func:`node_id_clash`) on its ``nodes.N.id``, whatever the allocation.
    """
    node_clash = node_id_clash([node.id for node in scenario.nodes])
    if node_clash is not None:  # two tasks of one id: the routes would fail validation
        raise ScenarioInputError(f"nodes.{node_clash[0]}.id", node_clash[1])
    shipped: dict[tuple[str, str], int] = defaultdict(int)
    for i, line in enumerate(allocation):
        try:
            order = scenario.order(line.order_id)
        except KeyError:
            raise InputError(
                f"allocation.{i}.order_id", f"unknown order {line.order_id!r}"
            ) from None
        if order.pickup is not None:
            raise InputError(f"allocation.{i}.order_id", own_pickup_reason(order.id))
        try:
            scenario.node(line.node_id)
        except KeyError:
            raise InputError(f"allocation.{i}.node_id", f"unknown node {line.node_id!r}") from None
        shipped[(line.order_id, line.node_id)] += line.quantity
    nodes_per_order: dict[str, list[str]] = defaultdict(list)
    for oid, nid in shipped:
        nodes_per_order[oid].append(nid)
    for place, order in enumerate(scenario.orders):
        reason = too_long_task(order.id, nodes_per_order.get(order.id, []))
        if reason is not None:  # a validation error of the pickup, a server error in a plan
            raise ScenarioInputError(f"orders.{place}.id", reason)
    dims = scenario.capacity_dims
    split: dict[tuple[str, str], list[int]] = {}
    for order in scenario.orders:
        nids = nodes_per_order.get(order.id, [])
        if order.demand and nids:
            parts = _split_demand(order.demand, [shipped[(order.id, n)] for n in nids], order.units)
            split.update(zip(((order.id, n) for n in nids), parts, strict=True))
    jobs: list[Order] = []
    for order in scenario.orders:
        if order.pickup is not None:
            jobs.append(order)  # a pickup-and-delivery job of its own
            continue
        for nid in nodes_per_order.get(order.id, []):
            node = scenario.node(nid)
            units = shipped[(order.id, nid)]
            # ready past MAX_INT (created at the end of a horizon that long): read as ready
            # at MAX_INT, at or after the horizon's end, a valid time (it was a validation
            # error naming `start_s`, no field of the caller's)
            ready = min(order.created_s + node.processing_s, MAX_INT)
            windows = _open_after(node.opening_hours, ready, scenario.horizon.end_s)
            if order.demand:
                demand = split[(order.id, nid)]
            else:
                demand = [units if d == "units" else 0 for d in dims]
            several = len(nodes_per_order[order.id]) > 1
            job_id, pickup_id = task_ids(order.id, nid, several)
            jobs.append(
                order.model_copy(
                    update={
                        "id": job_id,
                        "split_of": order.id if several else None,
                        "lines": [],
                        "demand": demand,
                        "pickup": PickupSpec(
                            id=pickup_id,
                            location=node.location,
                            time_windows=windows,
                            service_s=0,
                        ),
                    }
                )
            )
    return scenario.model_copy(update={"orders": jobs})


def own_pickup_reason(order_id: str) -> str:
    """Why an order with its own pickup has no allocation line."""
    return (
        f"order {order_id!r} has a pickup of its own: it is a pickup-and-delivery job, "
        "not allocated to fulfilment nodes"
    )


def _split_demand(demand: list[int], units: list[int], total_units: int) -> list[list[int]]:
    """An order's demand vector shared among its shipments by shipped units, in integers.

    Per dimension, the shipments together carry the shipped share of the demand (all of it
    when every unit ships), rounded; each carries its exact share rounded down or up (largest
    remainders get the extra units), so the loads add up to the order's.
    """
    whole = max(1, total_units)
    parts = [[0] * len(demand) for _ in units]
    for d, q in enumerate(demand):
        exact = [Fraction(q * u, whole) for u in units]
        floors = [math.floor(x) for x in exact]
        extra = round(sum(exact, Fraction(0))) - sum(floors)
        by_remainder = sorted(range(len(units)), key=lambda k: floors[k] - exact[k])
        for k in by_remainder[:extra]:
            floors[k] += 1
        for k, value in enumerate(floors):
            parts[k][d] = value
    return parts


def _open_after(hours: list[TimeWindow], ready_s: int, end_s: int) -> list[TimeWindow]:
    """Opening hours clipped to start no earlier than ``ready_s`` (always open if none)."""
    if not hours:
        return [TimeWindow(start_s=ready_s, end_s=max(ready_s, end_s))]
    out = [
        TimeWindow(start_s=max(w.start_s, ready_s), end_s=w.end_s)
        for w in hours
        if w.end_s >= ready_s
    ]
    # a node closed for the rest of the horizon: the parcel's ready time alone, outside the
    # opening hours, so the diagnosis leaves the job out as ``node_closed``
    return out or [TimeWindow(start_s=ready_s, end_s=ready_s)]


def order_of_job(scenario: Scenario, job_id: str) -> str | None:
    """The id of the order of ``scenario`` a courier job of
    :func:`routing_scenario_from_allocation` ships (``<order id>`` or ``<order id>@<node
    id>``); None for an id that is neither."""
    return job_order_resolver(scenario)(job_id)


def job_order_resolver(scenario: Scenario) -> Callable[[str], str | None]:
    """:func:`order_of_job` for many job ids of one scenario (its ids are read once)."""
    orders = {order.id for order in scenario.orders}
    nodes = {node.id for node in scenario.nodes}

    def order_of(job_id: str) -> str | None:
        return job_id if job_id in orders else shipment_order(job_id, orders, nodes)

    return order_of


#: The pickup task of a courier job ``J`` at node ``N`` is ``J:pickup@N`` (see
#: :func:`routing_scenario_from_allocation`).
PICKUP_INFIX = ":pickup@"


def task_ids(order_id: str, node_id: str, several: bool) -> tuple[str, str]:
    """The courier job id and its pickup id for order ``order_id`` shipped from ``node_id``
    (``several``: one of more nodes it ships from)."""
    job_id = f"{order_id}@{node_id}" if several else order_id
    return job_id, f"{job_id}{PICKUP_INFIX}{node_id}"


def split_order_groups(orders: Sequence[Order]) -> list[list[int]]:
    """Positions in ``orders`` of the courier jobs of each order shipped from several nodes
    (the jobs of one :attr:`~scenarios.model.Order.split_of`, set by
    :func:`routing_scenario_from_allocation`), two or more each, in order: an order is
    delivered once all its parcels are, so the routing serves such a group all or nothing and
    charges its penalty once.

    Only the field groups jobs, never their ids: a hand-made scenario whose ids look like
    ``X@N`` is a set of orders of their own. Jobs of one order share its penalty and priority
    (a validated scenario's rule, :class:`~scenarios.model.Scenario`); a group whose jobs
    differ (a scenario built without validation) is not one."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, job in enumerate(orders):
        if job.split_of is not None:
            members[job.split_of].append(i)
    groups = []
    for group in members.values():
        first = orders[group[0]]
        if len(group) > 1 and all(
            orders[i].penalty_cents == first.penalty_cents and orders[i].priority == first.priority
            for i in group
        ):
            groups.append(group)
    return groups


def _doubled(text: str) -> str | None:
    """``M`` where ``text`` is ``M`` + :data:`PICKUP_INFIX` + ``M`` (``M`` not empty), else None."""
    half, odd = divmod(len(text) - len(PICKUP_INFIX), 2)
    if half <= 0 or odd:
        return None
    head = text[:half]
    return head if text == f"{head}{PICKUP_INFIX}{head}" else None


def _task_of(order_id: str, suffix: str, nodes: Collection[str]) -> str | None:
    """What the task ``order_id + suffix`` of :func:`routing_scenario_from_allocation` is, if
    ``suffix`` names one of order ``order_id`` (``''``: the order itself, ``@N``: its job
    shipped from node N when it ships from several, ``:pickup@N`` or ``@N:pickup@N``: the
    pickup of that job at N); else None."""
    if suffix == "":
        return f"order {order_id!r}"
    if suffix.startswith(PICKUP_INFIX) and suffix[len(PICKUP_INFIX) :] in nodes:
        node_id = suffix[len(PICKUP_INFIX) :]
        return f"the pickup of order {order_id!r} at node {node_id!r} (when it ships from it alone)"
    if not suffix.startswith("@"):
        return None
    rest = suffix[1:]
    if rest in nodes:
        return (
            f"the courier job of order {order_id!r} shipped from node {rest!r} (when it ships "
            "from several nodes)"
        )
    doubled = _doubled(rest)
    if doubled is not None and doubled in nodes:
        return (
            f"the pickup of order {order_id!r} at node {doubled!r} (when it ships from several "
            "nodes)"
        )
    return None


def _suffixes(nodes: Sequence[str]) -> Iterator[str]:
    """The suffixes of an order's id that name its tasks (see :func:`_task_of`)."""
    yield ""
    for node_id in nodes:
        yield f"@{node_id}"
        yield f"{PICKUP_INFIX}{node_id}"
        yield f"@{node_id}{PICKUP_INFIX}{node_id}"


def _pair_clash(
    short: str, long: str, nodes: list[str], node_set: set[str]
) -> tuple[str, str] | None:
    """A task of order ``long`` and one of order ``short`` (a prefix of it) of one id: what
    each is (see :func:`_task_of`); None if they have none in common."""
    rest = long[len(short) :]
    for suffix in _suffixes(nodes):
        other = _task_of(short, rest + suffix, node_set)
        if other is not None:
            own = _task_of(long, suffix, node_set)
            assert own is not None
            return own, other
    return None


def job_id_clash(order_ids: Sequence[str], node_ids: Collection[str]) -> tuple[int, str] | None:
    """The place of the first order one of whose tasks (the order, its courier jobs and their
    pickups, see :func:`routing_scenario_from_allocation`) may have the id of a task of an
    earlier order, and why (``A@dc`` is the job of order A shipped from node dc, when A ships
    from several nodes; ``A:pickup@dc`` the pickup of A at dc when it ships from dc alone);
    else None."""
    nodes = list(dict.fromkeys(node_ids))
    node_set = set(nodes)
    seen: set[str] = set()
    longer: dict[str, list[str]] = defaultdict(list)  # id -> earlier orders' ids it starts
    for i, order_id in enumerate(order_ids):
        # two tasks of one id: one order's id starts with the other's, then '@' or ':'
        cuts = [k for k, char in enumerate(order_id) if char in "@:"]
        pairs = [(order_id[:k], order_id) for k in cuts if order_id[:k] in seen]
        pairs += [(order_id, other) for other in longer.get(order_id, ())]
        for short, long in pairs:
            clash = _pair_clash(short, long, nodes, node_set)
            if clash is None:
                continue
            own, other = clash if long == order_id else clash[::-1]
            if own == f"order {order_id!r}":
                return i, f"id {order_id!r} is the id of {other}: rename it"
            return i, f"{own} would have the id of {other}: rename it"
        for k in cuts:
            longer[order_id[:k]].append(order_id)
        seen.add(order_id)
    return None


def node_id_clash(node_ids: Sequence[str]) -> tuple[int, str] | None:
    """The place of the first node whose id gives two tasks of one order one id, and why;
    else None.

    An order shipped from several nodes has, per node N, the job ``<order>@N`` and its pickup
    ``<order>@N:pickup@N`` (see :func:`routing_scenario_from_allocation`). Two jobs or two
    pickups of one order differ (their node ids do, and a pickup's id holds its node's id
    twice around :data:`PICKUP_INFIX`), so the one clash within an order is a node whose id
    is ``M:pickup@M`` for another node M: its job is the pickup of the job from M.
    """
    nodes = set(node_ids)
    for i, node_id in enumerate(node_ids):
        other = _doubled(node_id)
        if other is not None and other in nodes:
            return i, (
                f"id {node_id!r} is node {other!r}'s id, {PICKUP_INFIX!r} and its id again: an "
                f"order shipped from both would have two courier tasks of id "
                f"'<order id>@{node_id}' (its job shipped from node {node_id!r} and the pickup "
                f"of its job shipped from node {other!r}): rename it"
            )
    return None


#: the longest id a task may have (:data:`scenarios.geo.Id`)
MAX_TASK_ID = 200


def task_id_too_long(order_ids: Sequence[str], node_ids: Sequence[str]) -> tuple[int, str] | None:
    """The place of the first order whose courier tasks (see
    :func:`routing_scenario_from_allocation`) have an id past :data:`MAX_TASK_ID` characters
    whatever node ships it, and why; else None.

    Its shortest pickup id is ``<order id>:pickup@N`` for the shortest node id N (shipped from
    N alone). An order whose ids fit only when it ships from one node is not refused here: the
    ids of the allocation's real shipments are checked when they are built (see
    :func:`too_long_task`).
    """
    if not node_ids:
        return None
    shortest = min(node_ids, key=len)
    for i, order_id in enumerate(order_ids):
        pickup = task_ids(order_id, shortest, several=False)[1]
        if len(pickup) > MAX_TASK_ID:
            return i, (
                f"id {order_id!r} is too long for its courier tasks: shipped from any node, the "
                f"pickup of its job at node {shortest!r} would have an id of {len(pickup)} "
                f"characters (at most {MAX_TASK_ID}): shorten the order id or the node id"
            )
    return None


def too_long_task(order_id: str, node_ids: Sequence[str]) -> str | None:
    """Why the courier tasks of order ``order_id`` shipped from the nodes ``node_ids`` (as an
    allocation ships it, see :func:`routing_scenario_from_allocation`) have an id past
    :data:`MAX_TASK_ID` characters; None when they fit."""
    several = len(node_ids) > 1
    for node_id in node_ids:
        pickup = task_ids(order_id, node_id, several)[1]
        if len(pickup) > MAX_TASK_ID:
            if several:
                shown = ", ".join(repr(n) for n in node_ids)
                how = f"{len(node_ids)} nodes ({shown})"
            else:
                how = f"node {node_id!r} alone"
            return (
                f"id {order_id!r} is too long for its courier tasks: as allocated it ships from "
                f"{how}, and the pickup of its job at node {node_id!r} would have an id of "
                f"{len(pickup)} characters (at most {MAX_TASK_ID}): shorten the order id or the "
                "node id"
            )
    return None


def own_task_clash(
    allocated_ids: Sequence[str], own_tasks: Sequence[str], node_ids: Collection[str]
) -> tuple[int, str] | None:
    """The place in ``own_tasks`` (the ids of the orders with a pickup of their own and of
    their pickups, which keep them) of the first that may be the id of a task of an order
    allocated to nodes (``allocated_ids``, see :func:`job_id_clash`), and why; else None."""
    for i, _, other in own_task_clashes(allocated_ids, own_tasks, node_ids):
        return i, f"id {own_tasks[i]!r} is the id of {other}: rename it"
    return None


def own_task_clashes(
    allocated_ids: Sequence[str], own_tasks: Sequence[str], node_ids: Collection[str]
) -> Iterator[tuple[int, int, str]]:
    """Each id in ``own_tasks`` that may be the id of a task of an order allocated to nodes
    (see :func:`own_task_clash`): its place, the place in ``allocated_ids`` of that order,
    and what that task is, in the order of ``own_tasks``."""
    node_set = set(node_ids)
    allocated = {order_id: a for a, order_id in reversed(list(enumerate(allocated_ids)))}
    for i, task_id in enumerate(own_tasks):
        for k, char in enumerate(task_id):
            if char not in "@:" or task_id[:k] not in allocated:
                continue
            other = _task_of(task_id[:k], task_id[k:], node_set)
            if other is not None:
                yield i, allocated[task_id[:k]], other
