"""Public benchmark readers: counts, units and the distance conventions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from scenarios import InputError, Scenario
from scenarios.io import detect_format, load_scenario
from scenarios.io.vrplib import parse_vrplib
from tests.conftest import INSTANCES


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


def test_vrplib_explicit_diagonal_is_set_to_zero() -> None:
    # TSPLIB-style placeholder 9999 on the diagonal
    text = (
        "NAME : x\nDIMENSION : 2\nCAPACITY : 5\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
        "EDGE_WEIGHT_SECTION\n9999 4\n6 9999\nDEMAND_SECTION\n1 0\n2 1\nDEPOT_SECTION\n1\n-1\n"
    )
    s = parse_vrplib(text)
    m = s.travel.matrix([s.vehicles[0].start_location, s.orders[0].location])
    assert m.duration_s.tolist() == [[0, 4], [6, 0]]
    assert s.source.notes == "EDGE_WEIGHT_SECTION diagonal set to zero"
    plain = parse_vrplib(text.replace("9999", "0"))
    assert plain.travel.model_dump() == s.travel.model_dump()
    assert plain.source.notes is None


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
    with pytest.raises(InputError, match=r"line 10: due date 10 is before ready time 50"):
        load_scenario(p)


DATA = Path(__file__).parent / "data"
INSTANCE_FILES = sorted(
    p.relative_to(INSTANCES).as_posix()
    for p in INSTANCES.rglob("*")
    if p.suffix in {".txt", ".vrp"}
)


@pytest.mark.parametrize("name", INSTANCE_FILES)
def test_every_bundled_instance_loads(name: str) -> None:
    s = load_scenario(INSTANCES / name)
    assert s.orders and s.vehicles
    assert s.source.format in {"solomon", "lilim", "vrplib"}
    assert all(len(o.demand) == len(s.capacity_dims) for o in s.orders)


def _evaluate(s: Scenario, routes: list[list[str]]) -> tuple[int, int]:
    """Total distance and total lateness of routes (lists of order ids) from the depot."""
    depot = s.vehicles[0].start_location
    distance = lateness = 0
    for route in routes:
        stops = [depot] + [s.order(i).location for i in route] + [depot]
        m = s.travel.matrix(stops)
        t = s.horizon.start_s
        for k, order_id in enumerate(route):
            order = s.order(order_id)
            t += int(m.duration_s[k, k + 1])
            window = order.time_windows[0]
            t = max(t, window.start_s)
            lateness += max(0, t - window.end_s)
            t += order.service_s
        distance += sum(int(m.distance_m[k, k + 1]) for k in range(len(stops) - 1))
    return distance, lateness


def _read_sol(path: Path) -> tuple[list[list[str]], float]:
    routes, cost = [], 0.0
    for line in path.read_text().splitlines():
        if line.startswith("Route"):
            routes.append(line.split(":", 1)[1].split())
        elif line.startswith("Cost"):
            cost = float(line.split()[1])
    return routes, cost


def test_solomon_dimacs_convention_reproduces_the_bks(instances_dir: Path) -> None:
    s = load_scenario(instances_dir / "solomon" / "RC208.txt")
    routes, cost = _read_sol(DATA / "RC208.sol")
    assert sorted(int(i) for r in routes for i in r) == list(range(1, 101))
    distance, lateness = _evaluate(s, routes)
    assert distance == round(cost * s.source.distance_divisor) == 7761  # 776.1, truncated arcs
    assert lateness == 0
    demand = [sum(s.order(i).demand[0] for i in r) for r in routes]
    assert max(demand) <= s.vehicles[0].capacity[0]


def test_cvrplib_solution_cost_matches(instances_dir: Path) -> None:
    s = load_scenario(instances_dir / "cvrplib_x" / "X-n101-k25.vrp")
    routes, cost = _read_sol(instances_dir / "cvrplib_x" / "X-n101-k25.sol")
    depot = s.vehicles[0].start_location
    total = 0
    for route in routes:
        stops = [depot] + [s.order(i).location for i in route] + [depot]
        m = s.travel.matrix(stops)
        total += sum(int(m.distance_m[k, k + 1]) for k in range(len(stops) - 1))
    assert total == cost == 27591


def test_homberger_and_lilim_sizes(instances_dir: Path) -> None:
    h = load_scenario(instances_dir / "homberger" / "C1_2_1.txt")
    assert (len(h.orders), len(h.vehicles), h.vehicles[0].capacity) == (200, 50, [200])
    lr = load_scenario(instances_dir / "lilim" / "lrc201.txt")
    assert all(o.pickup is not None for o in lr.orders)
    assert lr.source.distance_divisor == 1000
    o = lr.orders[0]
    assert o.pickup is not None
    m = lr.travel.matrix([o.pickup.location, o.location])
    assert o.pickup.location.x is not None and o.location.x is not None
    dx = o.pickup.location.x - o.location.x
    assert o.pickup.location.y is not None and o.location.y is not None
    dy = o.pickup.location.y - o.location.y
    assert m.distance_m[0, 1] == round(1000 * (dx * dx + dy * dy) ** 0.5)


def _refused(tmp_path: Path, reader: str, text: str) -> InputError:
    """The error reading ``text`` as a file ``bad.txt`` with ``reader``."""
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_scenario(path, reader)
    return info.value


@pytest.mark.parametrize(
    ("reader", "text", "field", "reason"),
    [
        ("solomon", "X\n\nVEHICLE\n 2 10\n", "file", "missing VEHICLE or CUSTOMER"),
        ("solomon", "X\nVEHICLE\nNUMBER\nCUSTOMER\n 0 0 0 0 0 9 0\n", "VEHICLE", "NUMBER"),
        ("solomon", "X\nVEHICLE\n 2 10\nCUSTOMER\n 0 0 0 0 0 9\n", "line 5", "7 columns"),
        ("solomon", "X\nVEHICLE\n 2 10\nCUSTOMER\n 0 0 0 0 0 9 0\n", "CUSTOMER", "a depot row"),
        (
            "solomon",
            "X\nVEHICLE\n 2 10\nCUSTOMER\n 0 0 0 0 0 9 0\n 1 1 1 -4 0 9 0\n",
            "line 6",
            "negative demand",
        ),
        ("lilim", "2 10 1\n", "file", "not a Li & Lim file"),
        ("lilim", "2 10 1\n0 0 0 0 0 9 0 0 0\n1 1 1 1 0 9 0 0\n", "line 3", "9 columns"),
        (
            "lilim",
            "2 10 1\n0 0 0 0 0 9 0 0 0\n2 1 1 -1 0 9 0 7 0\n",
            "line 3",
            "unknown pickup 7",
        ),
        (
            "lilim",
            "2 10 1\n0 0 0 0 0 9 0 0 0\n1 1 1 1 0 9 0 0 0\n",
            "line 3",
            "neither a pickup nor a delivery",
        ),
        (
            "lilim",
            "2 10 1\n0 0 0 0 0 9 0 0 0\n1 1 1 1 5 2 0 0 2\n2 1 1 -1 0 9 0 1 0\n",
            "line 3",
            "before early time",
        ),
        ("vrplib", "NAME : x\nCAPACITY : 5\n", "DIMENSION", "missing"),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : GEO\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n",
            "EDGE_WEIGHT_TYPE",
            "GEO is not supported",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EXPLICIT\nEDGE_WEIGHT_SECTION\n0 1 1\n",
            "EDGE_WEIGHT_SECTION",
            "has 3 values, expected 2 x 2",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n"
            "DEMAND_SECTION\n1 0\n2 -3\n",
            "DEMAND_SECTION",
            "negative demand -3",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n",
            "NODE_COORD_SECTION",
            "no coordinates for node 2",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nDEMAND_SECTION\n2 x\n",
            "DEMAND_SECTION",
            "bad row",
        ),
        # malformed values were tracebacks (ValueError, OverflowError, IndexError) or were
        # read silently (a task given twice, a node number outside 1..DIMENSION)
        ("solomon", "X\nVEHICLE\n 2.5 10\nCUSTOMER\n", "line 3", "NUMBER must be a whole"),
        (
            "solomon",
            "X\nVEHICLE\n 2 10\nCUSTOMER\n 0 0 0 0 0 9 0\n 1 1 1 1 0 inf 0\n",
            "line 6",
            "non-finite value 'inf'",
        ),
        (
            "solomon",
            "X\nVEHICLE\n 2 10\nCUSTOMER\n 0 0 0 0 0 9 0\n 1 nan 1 1 0 9 0\n",
            "line 6",
            "non-finite value 'nan'",
        ),
        (
            "solomon",
            "X\nVEHICLE\n 2 10\nCUSTOMER\n 0 0 0 0 0 9 0\n 1 1 1 1 0 9 0\n 1 2 2 1 0 9 0\n",
            "line 7",
            "customer 1 is given twice (also line 6)",
        ),
        (
            "solomon",
            "X\nVEHICLE\n 2 10\nCUSTOMER\n 0 0 0 0 0 9 0\n 1 1 1 1 0 9 -5\n",
            "line 6",
            "service time -5 is negative; a time must be >= 0",
        ),
        (
            "solomon",
            "X\nVEHICLE\n 2 10\nCUSTOMER\n 0 0 0 0 9 0 0\n 1 1 1 1 0 9 0\n",
            "line 5",
            "due date 0 is before ready time 9",  # 'end_s: ends at 0 s, before ... 90 s',
        ),
        (
            "lilim",
            "2 10 1\n0 0 0 0 0 9 0 0 0\n1 1 1 1 0 9 -2 0 2\n2 1 1 -1 0 9 0 1 0\n",
            "line 3",
            "service time -2 is negative; a time must be >= 0",
        ),
        (
            "solomon",
            "X\nVEHICLE\n 2 1e15\nCUSTOMER\n 0 0 0 0 0 9 0\n 1 1 1 1 0 9 0\n",
            "line 3",
            "capacity.0: Input should be less than or equal to",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n"
            "SERVICE_TIME_SECTION\n1 0\n2 1e30\n",
            "SERVICE_TIME_SECTION",
            "line 8: '1e30' is larger than 1,000,000,000,000, the largest number the model takes",
        ),
        ("lilim", "2.5 10 1\n0 0 0 0 0 9 0 0 0\n1 1 1 1 0 9 0 0 2\n", "line 1", "K (vehicles)"),
        (
            "lilim",
            "2 10 1\n0 0 0 0 0 9 0 0 0\nnan 1 1 1 0 9 0 0 2\n",
            "line 3",
            "non-finite value 'nan'",
        ),
        (
            "lilim",
            "2 10 1\n0 0 0 0 0 9 0 0 0\n1 1 1 1 0 9 0 0 2\n2 1 1 -1 0 9 0 1 0\n"
            "2 1 1 -1 0 9 0 1 0\n",
            "line 5",
            "task 2 is given twice (also line 4)",
        ),
        ("vrplib", "NAME : x\nDIMENSION : 2\nCAPACITY : ten\n", "CAPACITY", "whole number"),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nVEHICLES : two\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n",
            "VEHICLES",
            "whole number",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1\n",
            "NODE_COORD_SECTION",
            "line 5: expected 3 values, found '2 1'",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 inf 1\n",
            "NODE_COORD_SECTION",
            "line 5: non-finite value 'inf'",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EXPLICIT\nEDGE_WEIGHT_SECTION\n0 1\n1 x\n",
            "EDGE_WEIGHT_SECTION",
            "line 6: bad row '1 x'",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EXPLICIT\nEDGE_WEIGHT_SECTION\n"
            "-1 -1\n1 0\n",
            "EDGE_WEIGHT_SECTION",
            "line 5: negative weight -1 from node 1 to node 2",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nDEPOT_SECTION\nx\n",
            "DEPOT_SECTION",
            "line 7: bad row 'x'",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nDEMAND_SECTION\n-1 5\n",
            "DEMAND_SECTION",
            "line 7: node '-1' is not in 1..2",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nTIME_WINDOW_SECTION\n1 0\n",
            "TIME_WINDOW_SECTION",
            "line 7: expected 3 values",
        ),
        # a fleet the model rejects: where the file gives it (before the travel's speed 5000)
        (
            "solomon",
            "X\nVEHICLE\n 2 1e20\nCUSTOMER\n 0 0 0 0 0 9 0\n 1 1 1 1 0 9 0\n",
            "line 3",
            "capacity.0",
        ),
        (
            "lilim",
            "2 1e20 5000\n0 0 0 0 0 90 0 0 0\n1 1 1 1 0 90 0 0 2\n2 2 2 -1 0 90 0 1 0\n",
            "line 1",
            "capacity.0",
        ),
        # a header speed the travel model rejects: the header line, not a raw pydantic error
        (
            "lilim",
            "2 10 5000\n0 0 0 0 0 90 0 0 0\n1 1 1 1 0 90 0 0 2\n2 2 2 -1 0 90 0 1 0\n",
            "line 1",
            "speed_m_per_s",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nCAPACITY : 10000000000000\n"
            "NODE_COORD_SECTION\n1 0 0\n2 1 1\n",
            "CAPACITY",
            "capacity.0",
        ),
    ],
)
def test_reader_errors_name_the_place(
    tmp_path: Path, reader: str, text: str, field: str, reason: str
) -> None:
    err = _refused(tmp_path, reader, text)
    assert (err.field, err.source) == (field, str(tmp_path / "bad.txt"))
    assert reason in err.reason


@pytest.mark.parametrize("fmt", ["json", "vroom"])
def test_a_json_file_with_a_utf8_bom_reads(tmp_path: Path, fmt: str) -> None:
    """Editors on Windows write one: 'Invalid JSON at line 1 column 1' before."""
    data: dict[str, object] = (
        {"orders": [{"id": "a", "location": {"x": 1, "y": 2}}]}
        if fmt == "json"
        else {
            "vehicles": [{"id": 1, "start": [4.1, 52.1]}],
            "jobs": [{"id": 1, "location": [4.2, 52.2]}],
        }
    )
    path = tmp_path / "bom"  # no .json: the format is told from the text
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())
    assert detect_format(path) == fmt
    assert [o.id for o in load_scenario(path).orders] == (["a"] if fmt == "json" else ["1"])


_SOL_HEAD = "X\nVEHICLE\nNUMBER CAPACITY\n 2 10\nCUSTOMER\n 0 0 0 0 0 99 0\n"
_LL_DEPOT = "2 10 1\n0 0 0 0 0 99 0 0 0\n"
_VRP_HEAD = "NAME : x\nDIMENSION : 3\nCAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2\n"


@pytest.mark.parametrize(
    ("reader", "text", "field", "reason"),
    [
        # session 61: each of these was read without a word, changing the instance
        # a fractional demand was truncated (3.7 -> 3)
        ("solomon", _SOL_HEAD + " 1 1 1 3.7 0 9 0\n", "line 7", "demand must be a whole"),
        # a fractional customer number became another (1.5 -> '1')
        ("solomon", _SOL_HEAD + " 1 1 1 3 0 9 0\n 1.5 1 1 1 0 9 0\n", "line 8", "customer"),
        ("lilim", _LL_DEPOT + "1 1 1 1.5 0 9 0 0 2\n2 1 1 -1.5 0 9 0 1 0\n", "line 3", "demand"),
        # a fractional pickup or delivery number named another task (2.5 -> 2)
        ("lilim", _LL_DEPOT + "1 1 1 1 0 9 0 0 2.5\n2 1 1 -1 0 9 0 1 0\n", "line 3", "delivery"),
        # a pickup whose delivery is missing (a truncated file) or does not name it back
        # was dropped
        (
            "lilim",
            _LL_DEPOT + "1 1 1 1 0 9 0 0 2\n2 1 1 -1 0 9 0 1 0\n3 2 2 4 0 9 0 0 99\n",
            "line 5",
            "pickup 3 names delivery 99, which is not in the file",
        ),
        (
            "lilim",
            _LL_DEPOT + "1 1 1 1 0 9 0 0 2\n2 1 1 -1 0 9 0 1 0\n3 2 2 4 0 9 0 0 1\n",
            "line 5",
            "pickup 3 names delivery 1, which is not a delivery of it",
        ),
        # a pair whose demands do not cancel: the delivery's was ignored
        (
            "lilim",
            _LL_DEPOT + "1 1 1 4 0 9 0 0 2\n2 1 1 -3 0 9 0 1 0\n",
            "line 4",
            "delivery 2 has demand -3, but its pickup 1 picks up 4",
        ),
        # a node given twice in a section: the last one was kept
        (
            "vrplib",
            _VRP_HEAD + "DEMAND_SECTION\n1 0\n2 3\n2 4\n3 1\n",
            "DEMAND_SECTION",
            "line 11: node 2 is given twice (also line 10)",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n2 5 5\n",
            "NODE_COORD_SECTION",
            "line 6: node 2 is given twice (also line 5)",
        ),
        (
            "vrplib",
            _VRP_HEAD + "TIME_WINDOW_SECTION\n1 0 99\n2 0 9\n2 5 9\n3 0 9\n",
            "TIME_WINDOW_SECTION",
            "line 11: node 2 is given twice (also line 10)",
        ),
        # a section missing nodes (a truncated file): their demand was 0, window none
        (
            "vrplib",
            _VRP_HEAD + "DEMAND_SECTION\n1 0\n2 3\n",
            "DEMAND_SECTION",
            "node 3 is missing (the section lists 2 of the 3 nodes)",
        ),
        (
            "vrplib",
            _VRP_HEAD + "TIME_WINDOW_SECTION\n1 0 99\n3 0 9\n",
            "TIME_WINDOW_SECTION",
            "node 2 is missing",
        ),
        # a fractional demand, window, service time or matrix entry was truncated
        (
            "vrplib",
            _VRP_HEAD + "DEMAND_SECTION\n1 0\n2 3.7\n3 1\n",
            "DEMAND_SECTION",
            "line 10: expected a whole number, found '3.7'",
        ),
        (
            "vrplib",
            _VRP_HEAD + "SERVICE_TIME_SECTION\n1 0\n2 0.5\n3 1\n",
            "SERVICE_TIME_SECTION",
            "line 10: expected a whole number, found '0.5'",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nCAPACITY : 5\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
            "EDGE_WEIGHT_SECTION\n0 1.5\n1 0\n",
            "EDGE_WEIGHT_SECTION",
            "line 6: expected a whole number, found '1.5'",
        ),
        # no CAPACITY for customers with demand: every vehicle carried 0, nothing fitted
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nDEMAND_SECTION\n1 0\n2 3\n",
            "CAPACITY",
            "missing",
        ),
    ],
)
def test_reader_refuses_what_it_read_silently_before(
    tmp_path: Path, reader: str, text: str, field: str, reason: str
) -> None:
    err = _refused(tmp_path, reader, text)
    assert (err.field, err.source) == (field, str(tmp_path / "bad.txt"))
    assert reason in err.reason


@pytest.mark.parametrize(
    ("reader", "text", "field", "reason"),
    [
        # session 63: the whole-number errors printed the parsed value (3.5, 100.0), not
        # the file's text; every other reader error quotes the file since session 62
        (
            "solomon",
            _SOL_HEAD + " 1 1 1 3.50 0 9 0\n",
            "line 7",
            "the demand must be a whole number, got '3.50'",
        ),
        (
            "solomon",
            _SOL_HEAD + " 1.50 1 1 3 0 9 0\n",
            "line 7",
            "the customer number must be a whole number, got '1.50'",
        ),
        (
            "lilim",
            _LL_DEPOT + "1 1 1 2.50 0 9 0 0 2\n2 1 1 -2 0 9 0 1 0\n",
            "line 3",
            "the demand must be a whole number, got '2.50'",
        ),
        (
            "lilim",
            _LL_DEPOT + "1 1 1 2 0 9 0 0 2.50\n2 1 1 -2 0 9 0 1 0\n",
            "line 3",
            "the delivery number must be a whole number, got '2.50'",
        ),
        (
            "lilim",
            _LL_DEPOT + "1.50 1 1 2 0 9 0 0 2\n",
            "line 3",
            "the task id must be a whole number >= 0, got '1.50'",
        ),
        (
            "lilim",
            "2.50 10 1\n0 0 0 0 0 99 0 0 0\n1 1 1 2 0 9 0 0 2\n",
            "line 1",
            "K (vehicles) must be a whole number >= 0, got '2.50'",
        ),
    ],
)
def test_reader_whole_number_errors_quote_the_file_s_text(
    tmp_path: Path, reader: str, text: str, field: str, reason: str
) -> None:
    err = _refused(tmp_path, reader, text)
    assert (err.field, err.source) == (field, str(tmp_path / "bad.txt"))
    assert reason in err.reason


@pytest.mark.parametrize(
    ("reader", "text", "field"),
    [
        # 10^9 nodes declared, two given: lists of 10^9 entries were made (MemoryError, or
        # the OOM killer without a memory limit)
        (
            "vrplib",
            "NAME : x\nDIMENSION : 1000000000\nCAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n",
            "NODE_COORD_SECTION",
        ),
        # a fleet of 10^8 vehicles was built one by one (1.8 GB, then MemoryError)
        (
            "solomon",
            "X\nVEHICLE\n 100000000 10\nCUSTOMER\n 0 0 0 0 0 99 0\n 1 1 1 1 0 9 0\n",
            "line 3",
        ),
        (
            "lilim",
            "100000000 10 1\n0 0 0 0 0 99 0 0 0\n1 1 1 1 0 9 0 0 2\n2 1 1 -1 0 9 0 1 0\n",
            "line 1",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nVEHICLES : 100000000\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n",
            "VEHICLES",
        ),
    ],
)
def test_a_huge_count_is_an_error_at_once(
    tmp_path: Path, reader: str, text: str, field: str
) -> None:
    path = tmp_path / "huge.txt"
    path.write_text(text)
    started = time.process_time()
    with pytest.raises(InputError) as info:
        load_scenario(path, reader)
    assert info.value.field == field
    assert time.process_time() - started < 5.0


def test_lilim_reads_a_large_task_number_exactly(tmp_path: Path) -> None:
    """It went through '%g' (1234567 -> 1234570): 'delivery 2 names unknown pickup 1234567'."""
    path = tmp_path / "big.txt"
    path.write_text(_LL_DEPOT + "1234567 1 1 1 0 9 0 0 2\n2 1 1 -1 0 9 0 1234567 0\n")
    (order,) = load_scenario(path, "lilim").orders
    assert (order.id, order.pickup_id) == ("2", "1234567")


@pytest.mark.parametrize(
    ("reader", "text", "field", "reason"),
    [
        # session 61: these named a model field only ('x', 'duration_s.0.1', 'end_s',
        # 'orders.0.time_windows.0'), not where in the file it is; session 62: the values
        # as written, in the file's units (Solomon's window was [2000, 3000] s, in tenths,
        # Li & Lim's [200000, 300000] s, in thousandths; VRPLIB's named no value)
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nCAPACITY : 10\nNODE_COORD_SECTION\n1 1e12 0\n2 1 1\n",
            "NODE_COORD_SECTION",
            "line 5: coordinate '1e12' is beyond +-1,000,000,000, the largest the model takes",
        ),
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nCAPACITY : 10\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
            "EDGE_WEIGHT_SECTION\n0 1e15\n1 0\n",
            "EDGE_WEIGHT_SECTION",
            "line 6: '1e15' is larger than 1,000,000,000,000",
        ),
        (
            "vrplib",
            _VRP_HEAD + "TIME_WINDOW_SECTION\n1 0 1e15\n2 0 9\n3 0 9\n",
            "TIME_WINDOW_SECTION",
            "line 9: '1e15' is larger than 1,000,000,000,000",
        ),
        (
            "vrplib",
            _VRP_HEAD + "TIME_WINDOW_SECTION\n1 0 100\n2 0 9\n3 200 300\n",
            "node 3",
            "time_windows.0: the window [200, 300] s lies entirely outside the horizon",
        ),
        (
            "solomon",
            _SOL_HEAD + " 1 1 1 3 0 9 0\n 2 1 1 3 200 300 0\n",
            "line 8",
            "the window [200, 300] (ready time, due date) lies entirely outside the horizon "
            "[0, 99] (the depot's, line 6): the delivery could never be made in it",
        ),
        (
            "lilim",
            _LL_DEPOT + "1 1 1 1 200 300 0 0 2\n2 1 1 -1 0 9 0 1 0\n",
            "line 3",
            "the window [200, 300] (early time, late time) lies entirely outside the horizon "
            "[0, 99] (the depot's, line 2): the pickup could never be made in it",
        ),
        (
            "lilim",
            _LL_DEPOT + "1 1 1 1 0 9 0 0 2\n2 1 1 -1 200 300 0 1 0\n",
            "line 4",
            "the window [200, 300] (early time, late time) lies entirely outside the horizon "
            "[0, 99] (the depot's, line 2): the delivery could never be made in it",
        ),
    ],
)
def test_a_value_the_scenario_rejects_names_its_place_in_the_file(
    tmp_path: Path, reader: str, text: str, field: str, reason: str
) -> None:
    err = _refused(tmp_path, reader, text)
    assert (err.field, err.source) == (field, str(tmp_path / "bad.txt"))
    assert err.reason.startswith(reason)


@pytest.mark.parametrize(
    ("reader", "text", "field", "reason"),
    [
        # the model's refusals of the scaled times: "end_s: Input should be less than or
        # equal to 1000000000000" (the file's due date x 10), "ends at 0 s, before it starts
        # at 9000 s" (x 1000), "[2000, 3000] s" for a window written "200.0 300.0"
        (
            "solomon",
            _SOL_HEAD + " 1 1 1 3 0 1e15 0\n",
            "line 7",
            "due date 1e15 is larger than the largest time, 100000000000",
        ),
        ("solomon", _SOL_HEAD + " 1 1 1 3 -3 9 0\n", "line 7", "ready time -3 is negative"),
        (
            "solomon",
            _SOL_HEAD + " 1 1 1 3 200.0 300.0 0\n",
            "line 7",
            "the window [200.0, 300.0] (ready time, due date) lies entirely outside the horizon "
            "[0, 99] (the depot's, line 6)",
        ),
        (
            "lilim",
            "2 10 1\n0 0 0 0 9 0 0 0 0\n1 1 1 1 0 9 0 0 2\n2 1 1 -1 0 9 0 1 0\n",
            "line 2",
            "late time 0 is before early time 9",
        ),
        (
            "lilim",
            _LL_DEPOT + "1 1 1 1 0 9 1e10 0 2\n2 1 1 -1 0 9 0 1 0\n",
            "line 3",
            "service time 1e10 is larger than the largest time, 1000000000",
        ),
        (
            "lilim",
            _LL_DEPOT + "1 1 1 1 0 9 0 0 2\n2 1 1 -1 5 2.50 0 1 0\n",
            "line 4",
            "late time 2.50 is before early time 5",
        ),
        (
            "vrplib",
            _VRP_HEAD + "TIME_WINDOW_SECTION\n1 0 100\n2 -5 9\n3 0 9\n",
            "TIME_WINDOW_SECTION",
            "line 10: negative time '-5'",
        ),
    ],
)
def test_reader_errors_speak_the_files_units(
    tmp_path: Path, reader: str, text: str, field: str, reason: str
) -> None:
    err = _refused(tmp_path, reader, text)
    assert (err.field, err.source) == (field, str(tmp_path / "bad.txt"))
    assert err.reason.startswith(reason), err.reason
    assert "_s" not in err.reason  # no model field: the file's columns


@pytest.mark.parametrize(
    ("reader", "text", "field", "reason"),
    [
        # session 61: a Solomon file without its depot row took customer 1 for the depot
        # (and dropped it as a customer) without a word
        (
            "solomon",
            "X\nVEHICLE\n 2 10\nCUSTOMER\n 1 1 1 3 0 99 0\n 2 2 2 3 0 9 0\n 3 3 3 3 0 9 0\n",
            "line 5",
            "the first CUSTOMER row must be the depot, customer 0, not customer 1",
        ),
        # a lower-triangular matrix was 'has 1 values, expected 2 x 2', not the format
        (
            "vrplib",
            "NAME : x\nDIMENSION : 2\nCAPACITY : 5\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
            "EDGE_WEIGHT_FORMAT : LOWER_ROW\nEDGE_WEIGHT_SECTION\n4\n",
            "EDGE_WEIGHT_FORMAT",
            "LOWER_ROW is not supported",
        ),
    ],
)
def test_a_file_the_reader_cannot_take_as_given_is_named(
    tmp_path: Path, reader: str, text: str, field: str, reason: str
) -> None:
    err = _refused(tmp_path, reader, text)
    assert (err.field, err.source) == (field, str(tmp_path / "bad.txt"))
    assert reason in err.reason


def test_a_refusal_left_to_the_model_says_its_times_are_scaled() -> None:
    """The readers refuse the times they scale in the file's units; should the model still
    refuse one, its reason says the times are not the file's (a capacity is not scaled)."""
    from scenarios.io.solomon import scale_note

    assert (
        scale_note(10, "time_windows.0.end_s") == " (times in the model's units: the file's x 10)"
    )
    assert scale_note(1000, "pickup.service_s").endswith("the file's x 1000)")
    assert scale_note(10, "capacity.0") == ""
    assert scale_note(1, "time_windows.0.end_s") == ""


@pytest.mark.parametrize("text", ["", " \n\t\n"])
def test_detect_format_says_an_empty_file_is_empty(tmp_path: Path, text: str) -> None:
    p = tmp_path / "x.txt"
    p.write_text(text)
    with pytest.raises(InputError, match="the input is empty"):
        detect_format(p)
