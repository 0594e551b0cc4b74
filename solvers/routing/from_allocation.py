"""Turn an omnichannel scenario plus an allocation into courier pickup-and-delivery jobs."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Sequence
from fractions import Fraction

from scenarios.errors import InputError
from scenarios.geo import TimeWindow
from scenarios.model import Order, PickupSpec, Scenario
from scenarios.plan import AllocationLine


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
    ``<order id>@<node id>`` when an order ships from several nodes, else the order id.
    """
    shipped: dict[tuple[str, str], int] = defaultdict(int)
    for i, line in enumerate(allocation):
        try:
            scenario.order(line.order_id)
        except KeyError:
            raise InputError(
                f"allocation.{i}.order_id", f"unknown order {line.order_id!r}"
            ) from None
        try:
            scenario.node(line.node_id)
        except KeyError:
            raise InputError(f"allocation.{i}.node_id", f"unknown node {line.node_id!r}") from None
        shipped[(line.order_id, line.node_id)] += line.quantity
    nodes_per_order: dict[str, list[str]] = defaultdict(list)
    for oid, nid in shipped:
        nodes_per_order[oid].append(nid)
    dims = scenario.capacity_dims
    split: dict[tuple[str, str], list[int]] = {}
    for order in scenario.orders:
        nids = nodes_per_order.get(order.id, [])
        if order.demand and nids:
            parts = _split_demand(order.demand, [shipped[(order.id, n)] for n in nids], order.units)
            split.update(zip(((order.id, n) for n in nids), parts, strict=True))
    jobs: list[Order] = []
    for order in scenario.orders:
        for nid in nodes_per_order.get(order.id, []):
            node = scenario.node(nid)
            units = shipped[(order.id, nid)]
            ready = order.created_s + node.processing_s
            windows = _open_after(node.opening_hours, ready, scenario.horizon.end_s)
            if order.demand:
                demand = split[(order.id, nid)]
            else:
                demand = [units if d == "units" else 0 for d in dims]
            job_id = order.id if len(nodes_per_order[order.id]) == 1 else f"{order.id}@{nid}"
            jobs.append(
                order.model_copy(
                    update={
                        "id": job_id,
                        "lines": [],
                        "demand": demand,
                        "pickup": PickupSpec(
                            id=f"{job_id}:pickup@{nid}",
                            location=node.location,
                            time_windows=windows,
                            service_s=0,
                        ),
                    }
                )
            )
    return scenario.model_copy(update={"orders": jobs})


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
    orders = {order.id for order in scenario.orders}
    if job_id in orders:
        return job_id
    for node in scenario.nodes:
        suffix = f"@{node.id}"
        if job_id.endswith(suffix) and job_id[: -len(suffix)] in orders:
            return job_id[: -len(suffix)]
    return None


def job_id_clash(order_ids: Sequence[str], node_ids: Collection[str]) -> tuple[int, str] | None:
    """The place of the first order whose id is the id of a courier job of an earlier order,
    or whose courier job would have an earlier order's id, and why (``A@dc`` is the job of
    order A shipped from node dc, when A ships from several nodes); else None."""
    nodes = list(dict.fromkeys(node_ids))
    seen: set[str] = set()
    jobs: dict[str, tuple[str, str]] = {}  # order id -> (an earlier order's id, its node)
    for i, order_id in enumerate(order_ids):
        if order_id in jobs:
            taken, node_id = jobs[order_id]
            return i, (
                f"the courier job of order {order_id!r} shipped from node {node_id!r} (when it "
                f"ships from several nodes) would have the id of order {taken!r}: rename it"
            )
        for node_id in nodes if "@" in order_id else ():
            suffix = f"@{node_id}"
            if not order_id.endswith(suffix):
                continue
            base = order_id[: -len(suffix)]
            if base in seen:
                return i, (
                    f"id {order_id!r} is the id of the courier job of order {base!r} shipped "
                    f"from node {node_id!r} (when it ships from several nodes): rename it"
                )
            jobs.setdefault(base, (order_id, node_id))
        seen.add(order_id)
    return None
