"""Seeded instances in the setting of the multi-item fulfilment literature.

Jasin & Sinha (2015, *Operations Research* 63(6)) and Ma (2023, *MSOM*) study a retailer with
about 10 fulfilment centres (FCs) serving about 100 demand cities. Their experiments, which
this generator follows:

- order *types* are random item subsets: for each size 1..``max_items`` there are
  ``types_per_size`` types; size probabilities and type probabilities within a size are
  uniform(0, 1) draws, normalised; an order's city is drawn proportionally to population;
- each FC carries each item independently with probability ``carry_prob`` (0.25-0.75);
- starting inventory routes each city's expected demand for an item to the closest FC
  carrying it and stocks ``round(T d + z sqrt(T d (1 - d)))`` there (safety factor z = 0.5),
  with T the number of orders and d the per-order probability;
- cost = 8.759 per shipment + (0.423 + 0.000541 x miles) per unit; an unfilled unit costs
  twice the cost of shipping it alone from the farthest FC (:func:`literature_costs`: priced
  per mile, as the fit was, so the compiled costs stay those of the recorded benchmarks).

The real city and FC coordinate files are not bundled: cities are drawn uniformly over the
continental-US box (lat 29-47.5, lon -122 to -72) with Zipf (1/rank) populations, and FCs sit
at distinct cities drawn proportionally to population. Distances are great-circle.
"""

from __future__ import annotations

import numpy as np

from scenarios.geo import Location
from scenarios.model import OrderLine, Tier
from scenarios.travel import haversine_m
from solvers.allocation.request import (
    LITERATURE_PER_UNIT_MILE,
    AllocationCosts,
    AllocationNode,
    AllocationOrder,
    AllocationRequest,
    AllocationRules,
)

LAT_RANGE = (29.0, 47.5)
LON_RANGE = (-122.0, -72.0)


def literature_costs() -> AllocationCosts:
    """The Jasin & Sinha (2015) / Ma (2023) prices in their own unit: 0.000541 per unit-mile."""
    return AllocationCosts(per_unit_distance=LITERATURE_PER_UNIT_MILE, distance_unit="mile")


def generate_literature(
    *,
    seed: int,
    num_orders: int = 300,
    num_nodes: int = 10,
    num_cities: int = 99,
    num_skus: int = 100,
    max_items: int = 10,
    types_per_size: int = 10,
    carry_prob: float = 0.5,
    safety_z: float = 0.5,
    vip_share: float = 0.0,
    costs: AllocationCosts | None = None,
    rules: AllocationRules | None = None,
) -> AllocationRequest:
    """A seeded allocation request in the Jasin & Sinha (2015) / Ma (2023) setting."""
    if num_orders < 0 or num_nodes < 1 or num_cities < 1 or num_skus < 1 or max_items < 1:
        raise ValueError("num_orders >= 0 and num_nodes, num_cities, num_skus, max_items >= 1")
    if not 0.0 <= carry_prob <= 1.0 or not 0.0 <= vip_share <= 1.0:
        raise ValueError("carry_prob and vip_share must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    max_items = min(max_items, num_skus)

    # cities and FCs
    city_ll = np.column_stack(
        [rng.uniform(*LAT_RANGE, size=num_cities), rng.uniform(*LON_RANGE, size=num_cities)]
    )
    pop = 1.0 / rng.permutation(np.arange(1, num_cities + 1))
    pop_p = pop / pop.sum()
    if num_nodes <= num_cities:
        fc_city = rng.choice(num_cities, size=num_nodes, replace=False, p=pop_p)
        fc_ll = city_ll[fc_city]
    else:
        fc_ll = np.column_stack(
            [rng.uniform(*LAT_RANGE, size=num_nodes), rng.uniform(*LON_RANGE, size=num_nodes)]
        )
    dist_km = haversine_m(fc_ll, city_ll) / 1000.0  # FC x city

    # order types and their probabilities
    types: list[np.ndarray] = []
    type_p: list[float] = []
    size_w = rng.uniform(size=max_items)
    size_w /= size_w.sum()
    for size in range(1, max_items + 1):
        sub_w = rng.uniform(size=types_per_size)
        sub_w /= sub_w.sum()
        for k in range(types_per_size):
            types.append(np.sort(rng.choice(num_skus, size=size, replace=False)))
            type_p.append(size_w[size - 1] * sub_w[k])
    type_prob = np.asarray(type_p)
    type_prob /= type_prob.sum()

    # which FC carries which item; expected demand routed to the closest carrier
    carry = rng.uniform(size=(num_nodes, num_skus)) < carry_prob
    item_prob = np.zeros(num_skus)
    for t, items in enumerate(types):
        item_prob[items] += type_prob[t]
    demand = np.zeros((num_nodes, num_skus))  # per-order probability routed to each FC
    for i in range(num_skus):
        carriers = np.nonzero(carry[:, i])[0]
        if carriers.size == 0:
            continue
        closest = carriers[np.argmin(dist_km[carriers, :], axis=0)]  # per city
        np.add.at(demand[:, i], closest, item_prob[i] * pop_p)
    t_orders = float(num_orders)
    stock = np.rint(
        t_orders * demand + safety_z * np.sqrt(t_orders * demand * (1.0 - demand))
    ).astype(np.int64)

    # orders
    order_type = rng.choice(len(types), size=num_orders, p=type_prob)
    order_city = rng.choice(num_cities, size=num_orders, p=pop_p)
    vip = rng.uniform(size=num_orders) < vip_share
    width = len(str(max(num_orders - 1, 0)))
    sku_name = [f"item{i:03d}" for i in range(num_skus)]
    nodes = [
        AllocationNode(
            id=f"fc{k:02d}",
            location=Location(lat=float(fc_ll[k, 0]), lon=float(fc_ll[k, 1])),
            inventory={sku_name[i]: int(stock[k, i]) for i in np.nonzero(carry[k])[0]},
        )
        for k in range(num_nodes)
    ]
    orders = [
        AllocationOrder(
            id=f"o{t:0{width}d}",
            location=Location(
                lat=float(city_ll[order_city[t], 0]), lon=float(city_ll[order_city[t], 1])
            ),
            region=f"city{order_city[t]:02d}",
            tier=Tier.VIP if vip[t] else Tier.STANDARD,
            lines=[OrderLine(sku=sku_name[i], quantity=1) for i in types[order_type[t]]],
            created_s=t,
        )
        for t in range(num_orders)
    ]
    return AllocationRequest(
        nodes=nodes,
        orders=orders,
        costs=costs if costs is not None else literature_costs(),
        rules=rules if rules is not None else AllocationRules(),
    )


def generate_crowded_order(
    seed: int, num_nodes: int = 200, num_lines: int = 20
) -> AllocationRequest:
    """One order that every node can ship only part of: a stress case for the online path.

    Each node (within a degree of the customer) holds 0-4 units of about 70 % of the
    order's SKUs and may ship 2-8 units in all; the order asks 1-4 units per line. The exact
    answer needs the capacity-aware search or a one-order MIP over many capped nodes.
    """
    rng = np.random.default_rng(seed)
    skus = [f"s{i}" for i in range(num_lines)]
    nodes = [
        AllocationNode(
            id=f"n{k}",
            location=Location(lat=52.0 + rng.random(), lon=13.0 + rng.random()),
            inventory={s: int(rng.integers(0, 5)) for s in skus if rng.random() < 0.7},
            capacity_units=int(rng.integers(2, 9)),
        )
        for k in range(num_nodes)
    ]
    order = AllocationOrder(
        id="o",
        location=Location(lat=52.5, lon=13.5),
        lines=[OrderLine(sku=s, quantity=int(rng.integers(1, 5))) for s in skus],
    )
    costs = AllocationCosts(  # per mile: the unit its recorded benchmark runs were priced in
        per_shipment=5.0,
        per_unit=0.5,
        per_unit_distance=0.05,
        distance_unit="mile",
        unfilled_unit=50.0,
    )
    return AllocationRequest(nodes=nodes, orders=[order], costs=costs)
