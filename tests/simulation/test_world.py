"""The compiled world: what its travel tables say about themselves."""

from __future__ import annotations

import numpy as np
import pytest

from simulation.world import TravelTable


def test_travel_tables_know_whether_the_way_back_is_the_way_there() -> None:
    sym = np.asarray([[0, 5, 7], [5, 0, 2], [7, 2, 0]], dtype=np.int32)
    one_way = sym.copy()
    one_way[0, 2] = 9
    assert TravelTable(sym, sym).symmetric
    assert not TravelTable(one_way, sym).symmetric  # durations differ one way
    assert not TravelTable(sym, one_way).symmetric  # distances differ one way


def test_travel_tables_know_how_much_quicker_a_detour_can_be(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import simulation.world as world

    metric = np.asarray([[0, 5, 7], [5, 0, 2], [7, 2, 0]], dtype=np.int32)
    shortcut = metric.copy()
    shortcut[0, 2] = 10  # 0 -> 1 -> 2 takes 7 s
    assert TravelTable(metric, metric).shortcut_s == 0 and TravelTable(metric, metric).metric
    assert TravelTable(shortcut, metric).shortcut_s == 3  # durations only
    assert not TravelTable(shortcut, metric).metric
    assert TravelTable(metric, shortcut).metric
    assert TravelTable(shortcut, metric, 5).shortcut_s == 5  # the model's bound, as given
    monkeypatch.setattr(world, "METRIC_CHECK_MAX_LOCATIONS", 2)
    assert TravelTable(metric, metric).shortcut_s is None  # too large to check: not known
    assert not TravelTable(metric, metric).metric


def test_a_road_network_table_is_at_most_one_second_off_the_triangle_inequality() -> None:
    from scenarios.generate import generate_city
    from simulation.world import compile_world

    day = generate_city(seed=1, num_orders=200, num_nodes=3, num_couriers=5)
    table = compile_world(day).travel
    assert day.travel.kind == "road_network" and table.shortcut_bound_s == 1
    exact = TravelTable(table.duration_s, table.distance_m).shortcut_s
    assert exact is not None and exact <= 1
