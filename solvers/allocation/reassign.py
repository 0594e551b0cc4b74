"""Line re-assignment: the best lines of every order over the parcels it already ships.

With the set of nodes each order ships from held fixed, what is left of the allocation is
a transportation problem: every line's units go to one or more of its order's open nodes
(or stay unfilled at the line's penalty) under stock, node unit capacity and the arcs'
bounds. That is a min-cost flow (source -> line -> node stock of the SKU -> node -> sink,
and line -> sink for the unfilled units), so its integer optimum is exact and quick, and
it moves lines of any number of orders at once: chains of swaps through orders sharing a
SKU that the neighbourhood MIPs (a few dozen orders, pool columns only) and the ejection
moves (one line per other order) cannot make. The flow prices units (per-unit, handling
and distance costs, unfilled penalties); no parcel opens, and one closes when the flow
leaves its node no unit, so the cost never rises. Units of VIP orders at nodes with a VIP
unit share are kept as they are (a VIP share cuts across the SKUs, which a flow cannot
hold).
"""

from __future__ import annotations

import numpy as np
from ortools.graph.python import min_cost_flow

from solvers.allocation.problem import I64, Problem


def reassign_lines(prob: Problem, x: I64) -> I64:
    """The cheapest allocation that ships every order from no node it does not use in ``x``."""
    x = np.asarray(x, dtype=np.int64)
    used_pair = np.bincount(prob.arc_pair, weights=x, minlength=prob.num_pairs) > 0
    arc_node = prob.arc_node
    arc_sku = prob.arc_sku
    arc_order = prob.pair_order[prob.arc_pair]
    free = used_pair[prob.arc_pair] & (prob.arc_ub > 0)
    # VIP units at nodes with a VIP unit share stay where they are
    vip_capped = prob.order_vip[arc_order] & (prob.vip_cap_units[arc_node] >= 0)
    fixed = free & vip_capped
    free &= ~vip_capped
    if not free.any():
        return x.copy()
    avail = prob.avail.copy()
    cap_units = prob.cap_units.copy()
    kept = np.flatnonzero(fixed & (x > 0))
    np.subtract.at(avail, (arc_node[kept], arc_sku[kept]), x[kept])
    limited = cap_units >= 0
    kept_units = np.bincount(arc_node[kept], weights=x[kept], minlength=prob.num_nodes)
    cap_units[limited] -= kept_units[limited].astype(np.int64)
    line_qty = prob.line_qty - np.bincount(
        prob.arc_line[kept], weights=x[kept], minlength=prob.num_lines
    ).astype(np.int64)

    arcs = np.flatnonzero(free)
    n_sku = prob.avail.shape[1]
    lines = np.unique(prob.arc_line[arcs])
    stock_keys, stock_of = np.unique(arc_node[arcs] * n_sku + arc_sku[arcs], return_inverse=True)
    stock_node = stock_keys // n_sku
    stock_sku = stock_keys % n_sku
    nodes, node_of = np.unique(stock_node, return_inverse=True)
    # graph nodes: 0 source, 1 sink, lines, stock (node, SKU), nodes
    n_l, n_s = lines.shape[0], stock_keys.shape[0]
    line_id = np.full(prob.num_lines, -1, dtype=np.int64)
    line_id[lines] = 2 + np.arange(n_l)
    stock_base, node_base = 2 + n_l, 2 + n_l + n_s
    qty = line_qty[lines]
    total = int(qty.sum())
    gain = prob.arc_gain[arcs]
    off = int(np.abs(gain).max()) + 1  # every unit leaves its line by one arc: a constant
    big = total  # no capacity binds beyond the units there are
    node_cap = cap_units[nodes]
    node_cap = np.where(node_cap >= 0, np.minimum(node_cap, big), big)
    tails = np.concatenate(
        [
            np.zeros(n_l, dtype=np.int64),  # source -> line
            line_id[lines],  # line -> sink (unfilled)
            line_id[prob.arc_line[arcs]],  # line -> stock (the arcs)
            stock_base + np.arange(n_s),  # stock -> node
            node_base + np.arange(nodes.shape[0]),  # node -> sink
        ]
    )
    heads = np.concatenate(
        [
            line_id[lines],
            np.ones(n_l, dtype=np.int64),
            stock_base + stock_of,
            node_base + node_of,
            np.ones(nodes.shape[0], dtype=np.int64),
        ]
    )
    caps = np.concatenate(
        [
            qty,
            qty,
            np.minimum(prob.arc_ub[arcs], big),
            np.clip(avail[stock_node, stock_sku], 0, big),
            np.clip(node_cap, 0, big),
        ]
    )
    costs = np.concatenate(
        [
            np.zeros(n_l, dtype=np.int64),
            np.full(n_l, off, dtype=np.int64),
            gain + off,
            np.zeros(n_s + nodes.shape[0], dtype=np.int64),
        ]
    )
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supplies = np.zeros(node_base + nodes.shape[0], dtype=np.int64)
    supplies[0], supplies[1] = total, -total
    flow.set_nodes_supplies(np.arange(supplies.shape[0]), supplies)
    if flow.solve() != flow.OPTIMAL:
        return x.copy()
    first = 2 * n_l
    out = x.copy()
    out[arcs] = flow.flows(np.arange(first, first + arcs.shape[0]))
    return out
