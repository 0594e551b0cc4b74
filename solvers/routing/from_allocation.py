"""Turn an omnichannel scenario plus an allocation into courier pickup-and-delivery jobs."""

from __future__ import annotations

from collections import defaultdict

from scenarios.errors import InputError
from scenarios.geo import TimeWindow
from scenarios.model import Order, PickupSpec, Scenario
from scenarios.plan import AllocationLine


def routing_scenario_from_allocation(
    scenario: Scenario, allocation: list[AllocationLine]
) -> Scenario:
    """One pickup-and-delivery job per (order, node) shipment of the allocation.

    The pickup is at the node, ready once the node's processing time has passed (from the
    order's creation) and inside its opening hours; the delivery is at the customer in the
    order's promised windows. Demand is the shipped units (on a ``units`` dimension, or the
    order's own demand vector scaled by the shipped share of its units). A job's id is
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
    jobs: list[Order] = []
    for order in scenario.orders:
        for nid in nodes_per_order.get(order.id, []):
            node = scenario.node(nid)
            units = shipped[(order.id, nid)]
            ready = order.created_s + node.processing_s
            windows = _open_after(node.opening_hours, ready, scenario.horizon.end_s)
            if order.demand:
                share = units / max(1, order.units)
                demand = [round(q * share) for q in order.demand]
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


def _open_after(hours: list[TimeWindow], ready_s: int, end_s: int) -> list[TimeWindow]:
    """Opening hours clipped to start no earlier than ``ready_s`` (always open if none)."""
    if not hours:
        return [TimeWindow(start_s=ready_s, end_s=max(ready_s, end_s))]
    out = [
        TimeWindow(start_s=max(w.start_s, ready_s), end_s=w.end_s)
        for w in hours
        if w.end_s >= ready_s
    ]
    # a node closed for the rest of the horizon: keep an empty-ish window at the last closing
    return out or [TimeWindow(start_s=ready_s, end_s=ready_s)]
