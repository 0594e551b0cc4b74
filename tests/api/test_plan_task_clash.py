"""courier_task_clash: a clash of two orders' courier task ids is put on the later order."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from api.routes.plans import OrderTasks, courier_task_clash
from solvers.routing.from_allocation import (
    job_id_clash,
    node_id_clash,
    own_task_clash,
    task_id_too_long,
)
from tests.solvers.routing.test_from_allocation import _order_and_node_ids, _own_pickups


@settings(max_examples=300, deadline=None)
@given(ids=_order_and_node_ids(), data=st.data())
def test_a_clash_is_on_the_first_order_that_clashes_with_an_earlier_one(
    ids: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    """The order named is the first whose tasks clash with those of the orders before it (so
    a re-plan's new orders, after the stored ones, are named for a clash with a stored order):
    an own pickup earlier than the allocated order it clashed with was named, a stored order
    for a new one's clash. Whether a clash is found is as the checks say."""
    order_ids, node_ids = ids
    if node_id_clash(node_ids) is not None:
        return  # refused before (the nodes are stored, or the scenario's)
    own = _own_pickups(data, order_ids, node_ids)
    if own is None:
        return  # the scenario refuses these (order and pickup ids all distinct)
    orders: list[OrderTasks] = [
        (o, None if o not in own else (own[o] or f"{o}:pickup", own[o] is not None))
        for o in data.draw(st.permutations(order_ids), label="order")
    ]
    allocated = [o for o, p in orders if p is None]
    in_order = [t for o, p in orders if p is not None for t in (o, p[0])]
    checks = (
        job_id_clash(allocated, node_ids),
        own_task_clash(allocated, in_order, node_ids),
        task_id_too_long(allocated, node_ids),
    )
    clash = courier_task_clash(orders, node_ids)
    assert (clash is None) == all(c is None for c in checks)
    if clash is None or checks[2] is not None:
        return  # an id too long is named when no clash is found (see task_id_too_long)
    event(f"on an own pickup's order: {orders[clash[0]][1] is not None}")
    place = clash[0]
    assert courier_task_clash(orders[:place], node_ids) is None
    first = courier_task_clash(orders[: place + 1], node_ids)
    assert first is not None and first[0] == place
    assert clash[1] in ("id", "pickup.id") and clash[2].endswith(": rename it")


def test_an_own_pickup_clashing_with_a_later_allocated_order_names_that_order() -> None:
    """A stored order's own pickup ``x@dc`` and a new order ``x`` (its job from dc): the
    clash was put on the earlier order's pickup, a stored one in a re-plan."""
    nodes = ["dc", "store"]
    later = courier_task_clash([("P", ("x@dc", True)), ("x", None)], nodes)
    assert later == (
        1,
        "id",
        "the courier job of order 'x' shipped from node 'dc' (when it ships from several "
        "nodes) would have the id of the pickup of order 'P' ('x@dc'): rename it",
    )
    earlier = courier_task_clash([("x", None), ("P", ("x@dc", True))], nodes)
    assert earlier is not None and earlier[:2] == (1, "pickup.id")
    assert earlier[2].startswith("id 'x@dc' is the id of the courier job of order 'x'")
