"""The Jasin & Sinha (2015) / Ma (2023) style generator."""

from __future__ import annotations

import pytest

from solvers.allocation import generate_literature, literature_costs
from solvers.allocation.literature import generate_crowded_order


def test_same_seed_same_request_and_the_setting_holds() -> None:
    a = generate_literature(seed=5, num_orders=50, num_nodes=6, max_items=6)
    b = generate_literature(seed=5, num_orders=50, num_nodes=6, max_items=6)
    assert a == b
    assert a != generate_literature(seed=6, num_orders=50, num_nodes=6, max_items=6)
    assert len(a.nodes) == 6 and len(a.orders) == 50
    assert all(1 <= len(o.lines) <= 6 for o in a.orders)
    assert all(line.quantity == 1 for o in a.orders for line in o.lines)
    assert a.costs == literature_costs()  # 8.759 per shipment + 0.423 + 0.000541 x miles
    assert a.costs.distance_unit == "mile" and a.costs.per_unit_distance == 0.000541
    assert a.costs.unfilled_unit is None
    assert (a.costs.per_shipment, a.costs.per_unit) == (8.759, 0.423)


def test_the_crowded_order_keeps_its_price_per_mile() -> None:
    """Its recorded benchmark runs priced 0.05 per unit-mile (the old default unit)."""
    costs = generate_crowded_order(0, num_nodes=3, num_lines=2).costs
    assert (costs.per_unit_distance, costs.distance_unit) == (0.05, "mile")


def test_carry_probability_shapes_the_assortment() -> None:
    none = generate_literature(seed=1, num_orders=10, carry_prob=0.0)
    assert all(not n.inventory for n in none.nodes)
    every = generate_literature(seed=1, num_orders=10, num_skus=30, carry_prob=1.0)
    assert all(len(n.inventory) == 30 for n in every.nodes)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate_literature(seed=0, num_nodes=0)
    with pytest.raises(ValueError):
        generate_literature(seed=0, carry_prob=1.5)
