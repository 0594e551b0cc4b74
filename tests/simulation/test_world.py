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


def test_travel_tables_know_whether_a_detour_is_never_quicker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import simulation.world as world

    metric = np.asarray([[0, 5, 7], [5, 0, 2], [7, 2, 0]], dtype=np.int32)
    shortcut = metric.copy()
    shortcut[0, 2] = 8  # 0 -> 1 -> 2 takes 7 s
    assert TravelTable(metric, metric).metric
    assert not TravelTable(shortcut, metric).metric  # durations only: distances are not read
    assert TravelTable(metric, shortcut).metric
    monkeypatch.setattr(world, "METRIC_CHECK_MAX_LOCATIONS", 2)
    assert not TravelTable(metric, metric).metric  # too large to check: not known
