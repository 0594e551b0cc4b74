"""Public benchmark readers: counts, units and the distance conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenarios import InputError
from scenarios.io import detect_format, load_scenario


def test_solomon_c101(instances_dir: Path) -> None:
    s = load_scenario(instances_dir / "solomon" / "C101.txt")
    assert s.source.format == "solomon"
    assert (len(s.orders), len(s.vehicles)) == (100, 25)
    assert s.vehicles[0].capacity == [200]
    first = s.orders[0]
    assert first.id == "1"
    assert first.time_windows[0].start_s == 9120  # ready 912 in tenths
    assert first.service_s == 900
    # DIMACS: arc 0 -> 1 is sqrt(5^2 + 18^2) = 18.681 -> truncated 18.6 -> 186 tenths
    m = s.travel.matrix([s.vehicles[0].start_location, first.location])
    assert m.distance_m[0, 1] == 186
    assert m.duration_s[0, 1] == 186


def test_lilim_pairs(instances_dir: Path) -> None:
    s = load_scenario(instances_dir / "lilim" / "lc101.txt")
    assert s.source.format == "lilim"
    assert all(o.pickup is not None for o in s.orders)
    pickups = {o.pickup_id for o in s.orders}
    deliveries = {o.id for o in s.orders}
    assert not pickups & deliveries
    assert len(pickups) + len(deliveries) == 106  # every task except the depot


def test_cvrplib_rounds_to_nearest(instances_dir: Path) -> None:
    s = load_scenario(instances_dir / "cvrplib_x" / "X-n101-k25.vrp")
    assert len(s.orders) == 100
    locs = [s.vehicles[0].start_location] + [o.location for o in s.orders]
    m = s.travel.matrix(locs)
    a, b = locs[0], locs[1]
    assert a.x is not None and b.x is not None and a.y is not None and b.y is not None
    assert m.distance_m[0, 1] == int(np.floor(np.hypot(a.x - b.x, a.y - b.y) + 0.5))


def test_detect_format_rejects_unknown(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_text("hello world\n")
    with pytest.raises(InputError, match="cannot tell the file format"):
        detect_format(p)
    with pytest.raises(InputError, match="file not found"):
        load_scenario(tmp_path / "missing.txt")


def test_solomon_bad_row_names_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.txt"
    p.write_text(
        "BAD\n\nVEHICLE\nNUMBER CAPACITY\n 2 10\n\nCUSTOMER\nhdr\n"
        " 0 0 0 0 0 100 0\n 1 1 1 1 50 10 5\n"
    )
    with pytest.raises(InputError, match=r"line 10: due date 10\.0 is before ready time 50\.0"):
        load_scenario(p)
