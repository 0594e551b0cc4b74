"""Road networks: grid and OSMnx GraphML graphs, snapping, access legs, fastest paths, cache."""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import GridSpec, InputError, Location, RoadNetworkTravel, Scenario
from scenarios.io import from_json
from scenarios.roads import RoadGraph, load_road_graph, parse_maxspeed_kph
from tests.cpu_time import LooksClock
from tests.scenarios import osm_fixture as osm

# A 10 x 10 grid of 100 m blocks; only row 0 and column 0 are arterials (0 % 50 == 0).
QUIET = GridSpec(rows=10, cols=10, spacing_m=100.0, arterial_every=50)
# The default grid: arterials every 5th line.
CITY = GridSpec(rows=21, cols=21, spacing_m=200.0)


def xy(x: float, y: float) -> Location:
    return Location(x=x, y=y)


@pytest.fixture(scope="module")
def osm_graph(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RoadGraph]:
    path = osm.write_osm_graphml(tmp_path_factory.mktemp("osm") / "city.graphml")
    return path, RoadGraph.from_graphml(path, default_speed_m_per_s=8.0)


# ---------------------------------------------------------------------- grid


def test_grid_access_legs_and_street_path() -> None:
    g = RoadGraph.from_grid(QUIET)
    a, b = xy(205, 310), xy(590, 300)  # snap to (200, 300) and (600, 300)
    nodes, access = g.snap([a, b])
    assert g.xy[nodes].tolist() == [[200.0, 300.0], [600.0, 300.0]]
    assert access == pytest.approx([math.hypot(5, 10), 10.0])
    m = g.matrix([a], [b])
    metres = math.hypot(5, 10) + 400 + 10
    assert m.distance_m[0, 0] == round(metres)
    assert m.duration_s[0, 0] == round(metres / QUIET.street_speed_m_per_s)


def test_a_travel_model_with_its_graph_loaded_deep_copies() -> None:
    # gymnasium re-makes an env from its spec with a deep copy of the kwargs (the scenario).
    travel = RoadNetworkTravel(grid=QUIET)
    m = travel.matrix([xy(0, 0), xy(300, 400)])
    twin = copy.deepcopy(travel)
    assert twin.model_dump() == travel.model_dump()
    assert twin.road_graph() is travel.road_graph()  # shared, read-only
    assert np.array_equal(twin.matrix([xy(0, 0), xy(300, 400)]).duration_s, m.duration_s)


def test_points_on_one_node_use_the_straight_line() -> None:
    g = RoadGraph.from_grid(QUIET)
    a, b = xy(310, 420), xy(290, 390)  # both snap to (300, 400)
    m = g.matrix([a, b])
    assert m.distance_m[0, 1] == round(math.hypot(20, 30))
    assert m.distance_m[0, 0] == m.duration_s[1, 1] == 0
    assert m.duration_s[0, 1] == round(math.hypot(20, 30) / QUIET.street_speed_m_per_s)


def test_grid_is_symmetric_with_zero_diagonal() -> None:
    g = RoadGraph.from_grid(CITY)
    pts = np.random.default_rng(1).uniform(0, 4000, size=(60, 2))
    m = g.matrix([xy(float(x), float(y)) for x, y in pts])
    assert np.array_equal(m.duration_s, m.duration_s.T)
    assert np.array_equal(m.distance_m, m.distance_m.T)
    assert not np.diag(m.duration_s).any() and not np.diag(m.distance_m).any()
    assert (m.duration_s[~np.eye(60, dtype=bool)] > 0).all()


def _nx_grid(spec: GridSpec) -> nx.Graph:
    """The same grid built independently with networkx (weight: time, then length)."""
    g = nx.grid_2d_graph(spec.rows, spec.cols)
    for (r1, c1), (r2, c2), data in g.edges(data=True):
        arterial = (r1 == r2 and r1 % spec.arterial_every == 0) or (
            c1 == c2 and c1 % spec.arterial_every == 0
        )
        speed = spec.arterial_speed_m_per_s if arterial else spec.street_speed_m_per_s
        data["t"] = spec.spacing_m / speed + 1e-9 * spec.spacing_m
    return g


def test_arterials_are_faster_and_worth_a_detour() -> None:
    g = RoadGraph.from_grid(CITY)  # arterials on rows/cols 0, 5, 10, 15, 20
    along_arterial = g.matrix([xy(0, 1000)], [xy(2000, 1000)])  # row 5
    assert along_arterial.distance_m[0, 0] == 2000
    assert along_arterial.duration_s[0, 0] == round(2000 / CITY.arterial_speed_m_per_s)
    a, b = (3, 1), (3, 19)  # (row, col) on a plain street, 3,600 m apart
    m = g.matrix([xy(200, 600)], [xy(3800, 600)])
    assert m.duration_s[0, 0] < round(3600 / CITY.street_speed_m_per_s)  # detour pays
    assert m.distance_m[0, 0] > 3600  # ... and is longer
    ref = _nx_grid(CITY)
    path = nx.dijkstra_path(ref, a, b, weight="t")
    seconds = sum(ref.edges[u, v]["t"] for u, v in itertools.pairwise(path))
    assert m.duration_s[0, 0] == round(seconds)
    assert m.distance_m[0, 0] == (len(path) - 1) * CITY.spacing_m


def test_row_cache_serves_repeated_queries() -> None:
    g = RoadGraph.from_grid(CITY)
    pts = [xy(float(x), float(y)) for x, y in np.random.default_rng(2).uniform(0, 4000, (40, 2))]
    first = g.matrix(pts)
    info = g.cache_info()
    assert info["misses"] == info["rows"] > 0 and info["hits"] == 0
    again = g.matrix(pts[:10], pts)  # only cached sources
    assert g.cache_info()["misses"] == info["misses"]
    assert g.cache_info()["hits"] > 0
    assert np.array_equal(again.duration_s, first.duration_s[:10])
    assert np.array_equal(again.distance_m, first.distance_m[:10])


def test_tiny_cache_budget_evicts_but_answers_the_same() -> None:
    big = RoadGraph.from_grid(CITY)
    row_bytes = big.num_nodes * 8
    small = RoadGraph.from_grid(CITY, cache_max_bytes=3 * row_bytes)
    pts = [xy(float(x), float(y)) for x, y in np.random.default_rng(3).uniform(0, 4000, (25, 2))]
    expected = big.matrix(pts)
    got = small.matrix(pts)
    assert small.cache_info()["rows"] == 3
    assert np.array_equal(got.duration_s, expected.duration_s)
    assert np.array_equal(small.matrix(pts).distance_m, expected.distance_m)


def test_path_nodes_follow_the_fastest_route() -> None:
    g = RoadGraph.from_grid(QUIET)
    path = g.path_nodes(xy(100, 100), xy(400, 100))
    assert g.xy[path].tolist() == [[100.0 * c, 100.0] for c in range(1, 5)]


def test_road_travel_model_in_a_scenario_shares_the_graph() -> None:
    travel = RoadNetworkTravel(grid=CITY)
    again = RoadNetworkTravel(grid=CITY)
    assert load_road_graph(travel) is load_road_graph(again)
    m = travel.matrix([xy(0, 0), xy(1000, 0)])
    assert m.distance_m[0, 1] == 1000
    assert m.duration_s[0, 1] == round(1000 / CITY.arterial_speed_m_per_s)
    # The time-of-day profile is the base class's business: it scales durations at departure.
    assert travel.factor_at(8 * 3600) == 1.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-150, 4150), st.floats(-150, 4150)),
        min_size=3,
        max_size=3,
    )
)
def test_durations_satisfy_the_triangle_inequality(points: list[tuple[float, float]]) -> None:
    g = RoadGraph.from_grid(CITY)
    m = g.matrix([xy(x, y) for x, y in points])
    d = m.duration_s
    # Each entry is rounded to the nearest second, so allow 1 s of slack per rounded term.
    assert d[0, 2] <= d[0, 1] + d[1, 2] + 1
    assert d[2, 0] <= d[2, 1] + d[1, 0] + 1


# ---------------------------------------------------------------------- GraphML


def _expected_durations(default_speed: float) -> tuple[nx.DiGraph, dict[str, int]]:
    """The fixture's fastest-path graph, rebuilt from its tags independently of RoadGraph."""
    g = osm.build_graph()
    simple = nx.DiGraph()
    for u, v, data in g.edges(data=True):
        if "travel_time" in data:
            t = float(data["travel_time"])
        else:
            if "speed_kph" in data:
                kph = float(data["speed_kph"])
            elif data.get("maxspeed") == "['30', '50']":
                kph = 40.0
            elif data.get("maxspeed") == "20 mph":
                kph = 20 * 1.609344
            elif "maxspeed" in data:
                kph = float(data["maxspeed"])
            else:
                kph = default_speed * 3.6
            t = float(data["length"]) / (kph / 3.6)
        if not simple.has_edge(u, v) or simple[u][v]["t"] > t:
            simple.add_edge(u, v, t=t)
    return simple, {}


def test_graphml_loads_like_osmnx_wrote_it(osm_graph: tuple[Path, RoadGraph]) -> None:
    _, g = osm_graph
    assert g.geographic
    assert g.num_nodes == osm.ROWS * osm.COLS + 1
    assert g.node_ids is not None and osm.ISOLATED in g.node_ids
    # Fastest-path durations agree with networkx on the same tags.
    simple, _ = _expected_durations(8.0)
    index = {nid: i for i, nid in enumerate(g.node_ids)}
    lattice = [osm.node_id(r, c) for r in range(osm.ROWS) for c in range(osm.COLS)]
    idx = np.array([index[n] for n in lattice])
    dur, _ = g.node_matrix(idx, idx)
    for i, src in enumerate(lattice):
        lengths = nx.single_source_dijkstra_path_length(simple, src, weight="t")
        for j, dst in enumerate(lattice):
            assert dur[i, j] == pytest.approx(lengths[dst], abs=0.01)


def test_graphml_one_way_street_is_asymmetric(osm_graph: tuple[Path, RoadGraph]) -> None:
    _, g = osm_graph
    assert g.node_ids is not None
    index = {nid: i for i, nid in enumerate(g.node_ids)}
    south, north = index[osm.node_id(1, 2)], index[osm.node_id(2, 2)]
    dur, dist = g.node_matrix(np.array([south, north]), np.array([south, north]))
    assert dist[0, 1] == pytest.approx(
        osm.haversine(*osm.node_latlon(1, 2), *osm.node_latlon(2, 2)), abs=0.01
    )
    assert dur[1, 0] > dur[0, 1]  # southbound must go around the block
    assert dist[1, 0] > 2 * dist[0, 1]


def test_graphml_snaps_to_the_connected_network(osm_graph: tuple[Path, RoadGraph]) -> None:
    _, g = osm_graph
    lat, lon = osm.node_latlon(3, 3)
    near_isolated = Location(lat=lat + 0.0002, lon=lon + 0.0002)  # on top of node 9999
    (node,), (access,) = g.snap([near_isolated])
    assert g.node_ids is not None and g.node_ids[node] == osm.node_id(3, 3)
    expected = osm.haversine(lat, lon, lat + 0.0002, lon + 0.0002)
    assert access == pytest.approx(expected, rel=1e-3)  # the local projection is accurate
    start = Location(lat=osm.LAT0, lon=osm.LON0)
    m = g.matrix([start], [near_isolated])
    assert 0 < m.duration_s[0, 0] < 10_000


def test_graphml_scenario_round_trip(osm_graph: tuple[Path, RoadGraph]) -> None:
    path, _ = osm_graph
    data = {
        "travel": {"kind": "road_network", "graphml_path": str(path)},
        "orders": [
            {"id": "a", "location": {"lat": 50.8405, "lon": 4.3505}},
            {"id": "b", "location": {"lat": 50.8440, "lon": 4.3570}},
        ],
    }
    import json

    scenario = from_json(Scenario, json.dumps(data))
    locs = [o.location for o in scenario.orders]
    m = scenario.travel.matrix(locs)
    assert m.duration_s[0, 1] > 0 and m.distance_m[0, 1] > 0
    with pytest.raises(InputError, match="give lat/lon"):
        scenario.travel.matrix([Location(x=1.0, y=2.0)])


def test_graphml_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        RoadNetworkTravel(graphml_path=str(tmp_path / "missing.graphml")).matrix([xy(0, 0)])
    assert info.value.field == "travel.graphml_path"
    assert "file not found" in info.value.reason
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><graph")
    with pytest.raises(InputError, match="not a readable GraphML file"):
        RoadGraph.from_graphml(bad)
    no_xy = tmp_path / "no_xy.graphml"
    g = nx.MultiDiGraph()
    g.add_edge("1", "2", length="10")
    nx.write_graphml(g, no_xy)
    with pytest.raises(InputError) as info:
        RoadGraph.from_graphml(no_xy)
    assert info.value.field == "graph.nodes.1"
    assert "x and y" in info.value.reason


def test_undirected_networkx_graph_gets_both_directions() -> None:
    g = nx.Graph()
    g.add_node("a", x=0.0, y=0.0)
    g.add_node("b", x=1000.0, y=0.0)
    g.graph["crs"] = "EPSG:32631"  # projected: x/y are metres
    g.add_edge("a", "b", length=1000.0, speed_kph=36.0)
    road = RoadGraph.from_networkx(g)
    assert not road.geographic
    m = road.matrix([xy(0, 0), xy(1000, 0)])
    assert m.duration_s.tolist() == [[0, 100], [100, 0]]


def test_grid_needs_planar_locations() -> None:
    import json

    data = {
        "travel": {"kind": "road_network", "grid": {"rows": 3, "cols": 3}},
        "orders": [{"id": "o", "location": {"lat": 50.0, "lon": 4.0}}],
    }
    with pytest.raises(InputError) as info:
        from_json(Scenario, json.dumps(data))
    assert info.value.field == "orders.0.location"
    assert "planar x/y" in info.value.reason


@pytest.mark.parametrize(
    ("tag", "kph"),
    [
        ("50", 50.0),
        ("30 mph", 30 * 1.609344),
        ("['30', '50']", 40.0),
        (["20", "40"], 30.0),
        ("signals", None),
        (None, None),
        ("RU:urban", None),
    ],
)
def test_parse_maxspeed(tag: object, kph: float | None) -> None:
    got = parse_maxspeed_kph(tag)
    assert got == (pytest.approx(kph) if kph is not None else None)


@pytest.mark.parametrize("rounding", ["round", "floor", "ceil"])
def test_rounding_casts_in_place_block_by_block(
    rounding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A travel matrix is rounded into its own buffer, a block of rows at a time: a new
    10,000 x 10,000 int64 array took 0.5-1.8 s to fault in. The values are those of a cast of
    the rounded floats, whatever the block, for 2-D, 1-D and strided arrays."""
    from scenarios import roads

    monkeypatch.setattr(roads, "_CAST_BLOCK", 7)  # blocks of 1 row (5 columns) and of 7
    values = np.random.default_rng(3).random((11, 5)) * 1e6 - 3e5
    # float32 is cast to a new array (a view of its buffer as int64 would have half the
    # entries)
    small = values.astype(np.float32)
    for array in (values, values[:, 0].copy(), values[:, ::2], small):
        if rounding == "round":
            expected = np.floor(array + 0.5).astype(np.int64)
        else:
            expected = (np.floor(array) if rounding == "floor" else np.ceil(array)).astype(np.int64)
        work = array.copy() if array.flags.c_contiguous else array
        got = roads._round_inplace(work, rounding)  # type: ignore[arg-type]
        assert got.dtype == np.int64 and np.array_equal(got, expected)
        in_place = array.flags.c_contiguous and array.dtype == np.float64
        assert np.shares_memory(got, work) == in_place


# ---------------------------------------------------------------------- matrix deadline


def test_a_matrix_past_its_deadline_stops_and_one_before_it_is_the_same() -> None:
    """Within :func:`matrix_deadline`, a road network's matrix stops once the deadline has
    passed (a 10,000-place matrix took 1.7-4.7 s, past a 1 s time limit); with a deadline not
    reached, or none, it is the matrix built without one."""
    from scenarios.travel import MatrixDeadlineError, matrix_deadline

    places = [xy(15.0 * i, 7.0 * (i % 9)) for i in range(40)]
    plain = RoadGraph.from_grid(CITY).matrix(places)
    with matrix_deadline(-math.inf), pytest.raises(MatrixDeadlineError):
        RoadGraph.from_grid(CITY).matrix(places)
    for deadline in (None, math.inf):
        with matrix_deadline(deadline):
            m = RoadGraph.from_grid(CITY).matrix(places)
        assert np.array_equal(m.duration_s, plain.duration_s)
        assert np.array_equal(m.distance_m, plain.distance_m)
    # the block's deadline ends with it
    assert np.array_equal(RoadGraph.from_grid(CITY).matrix(places).duration_s, plain.duration_s)


def test_every_pass_over_a_matrix_looks_at_its_deadline_a_block_of_rows_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The access legs' pass and the rounding of both matrices look at the deadline between
    blocks of rows, as the decoding does (a whole pass took 0.085-0.31 s at 10,000 places
    with no look); cut at any look, the build stops there, and the matrix built to its end
    is the one built with no deadline."""
    from scenarios import roads, travel
    from scenarios.travel import MatrixDeadlineError, matrix_deadline

    places = [xy(15.0 * i, 7.0 * (i % 9)) for i in range(40)]
    plain = RoadGraph.from_grid(CITY).matrix(places)
    monkeypatch.setattr(roads, "_CAST_BLOCK", len(places))  # a block is one row
    clock = LooksClock()
    monkeypatch.setattr(travel, "time", clock)
    with matrix_deadline(math.inf):
        whole = RoadGraph.from_grid(CITY).matrix(places)
    assert np.array_equal(whole.duration_s, plain.duration_s)
    assert np.array_equal(whole.distance_m, plain.distance_m)
    # decoding, access legs, rounding the durations and the distances: a look a row each
    assert clock.looks >= 4 * len(places)
    looks = clock.looks
    for cut in (0, looks // 3, looks // 2, looks - 1):
        clock.looks = 0
        with matrix_deadline(float(cut)), pytest.raises(MatrixDeadlineError):
            RoadGraph.from_grid(CITY).matrix(places)
        assert clock.looks == cut + 1  # stopped at the first look past the deadline


class _SlowClock:
    """A stub ``time`` module in which every read is one second after the last."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_shortest_paths_are_computed_in_chunks_sized_by_the_time_they_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sources go to the shortest-path search in chunks sized to take about ``_CHUNK_S`` by
    the last chunk's time per source (a look at the deadline between chunks): on a slow
    clock every chunk is of the fewest sources, not of 128 (0.2-0.47 s a chunk in a day's
    first solve of 10,000 places); the matrix is the same."""
    from scenarios import roads

    places = [xy(200.0 * i, 200.0 * (i % 11)) for i in range(30)]  # 30 distinct nodes
    plain = RoadGraph.from_grid(CITY).matrix(places)
    sizes: list[int] = []
    real = roads.dijkstra

    def counted(graph: Any, **kw: Any) -> Any:
        sizes.append(len(kw["indices"]))
        return real(graph, **kw)

    graph = RoadGraph.from_grid(CITY)  # (its own searches before any matrix)
    monkeypatch.setattr(roads, "dijkstra", counted)
    monkeypatch.setattr(roads, "time", _SlowClock())
    slow = graph.matrix(places)
    assert sum(sizes) == 30 and max(sizes) == roads._FIRST_CHUNK < 30
    assert np.array_equal(slow.duration_s, plain.duration_s)
    assert np.array_equal(slow.distance_m, plain.distance_m)


def test_places_that_cannot_reach_each_other_are_an_input_error_in_any_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A path the search finds none for (an infinity), in the last block of rows as in the
    first, is an InputError naming the travel model, with the blocks of one row each."""
    from scenarios import roads

    places = [xy(200.0 * i, 200.0 * (i % 11)) for i in range(12)]
    graph = RoadGraph.from_grid(CITY)
    monkeypatch.setattr(roads, "_CAST_BLOCK", len(places))  # a block is one row
    real = roads.dijkstra
    for row in (0, -1):

        def cut(g: Any, row: int = row, **kw: Any) -> Any:
            out = real(g, **kw)
            out[row, :] = np.inf  # one source reaches nothing
            return out

        monkeypatch.setattr(roads, "dijkstra", cut)
        graph.clear_cache()
        with pytest.raises(InputError) as info:
            graph.matrix(places)
        assert info.value.field == "travel" and "cannot reach" in str(info.value)


# ---------------------------------------------------------------------- buffers reused


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 6), max_size=12),
    st.lists(st.integers(0, 6), max_size=12),
)
def test_same_node_pairs_are_those_of_the_full_comparison(o: list[int], d: list[int]) -> None:
    """The pairs of places snapped to the same node (an access leg between them, not the
    graph) are those the comparison of every origin with every destination gave, in the
    same order, without that origins x destinations array (100 MB at 10,000 places)."""
    from scenarios.roads import _same_node_pairs

    o_node, d_node = np.array(o, dtype=np.int64), np.array(d, dtype=np.int64)
    rows, cols = _same_node_pairs(o_node, d_node)
    want_rows, want_cols = np.nonzero(o_node[:, None] == d_node[None, :])
    assert rows.tolist() == want_rows.tolist()
    assert cols.tolist() == want_cols.tolist()


def test_a_large_matrix_reuses_the_buffers_of_one_no_longer_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large matrix is built in buffers a matrix no longer used left behind (their memory
    mapped already), never in those of one still in use, and has the same values."""
    import gc

    from scenarios import roads

    monkeypatch.setattr(roads, "POOL_MIN_BYTES", 1)
    monkeypatch.setattr(roads, "_POOL", [])
    places = [xy(13.0 * i, 9.0 * (i % 7)) for i in range(30)]
    graph = RoadGraph.from_grid(CITY)
    plain = graph.matrix(places)
    kept = (plain.duration_s.copy(), plain.distance_m.copy())
    busy = graph.matrix(places)  # plain still in use: other buffers
    assert not any(
        np.shares_memory(getattr(plain, f), getattr(busy, g))
        for f in ("duration_s", "distance_m")
        for g in ("duration_s", "distance_m")
    )
    assert np.array_equal(plain.duration_s, kept[0])
    assert np.array_equal(plain.distance_m, kept[1])
    assert np.array_equal(busy.duration_s, kept[0])
    assert np.array_equal(busy.distance_m, kept[1])
    del busy
    gc.collect()
    freed = list(roads._POOL)
    assert len(freed) == 2  # both of its buffers, once nothing uses them
    again = graph.matrix(places)
    assert roads._POOL == []  # taken again
    assert any(np.shares_memory(again.duration_s, b) for b in freed)
    assert np.array_equal(again.duration_s, kept[0])
    assert np.array_equal(again.distance_m, kept[1])
    del again, freed
    gc.collect()
    assert roads.release_matrix_buffers() > 0
    assert roads._POOL == []


def _no_huge_pages(array: np.ndarray) -> bool | None:
    """Whether the mapping holding ``array`` is advised against transparent huge pages
    (``nh`` in its ``VmFlags``, Linux); None where ``/proc/self/smaps`` cannot say."""
    try:
        smaps = Path("/proc/self/smaps").read_text()
    except OSError:
        return None
    address = array.__array_interface__["data"][0]
    inside = False
    for line in smaps.splitlines():
        head = line.split()[0] if line.split() else ""
        if "-" in head and ":" not in head:
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and line.startswith("VmFlags:"):
            return "nh" in line.split()[1:]
    return None


def test_a_matrix_with_its_deadline_near_is_built_in_ordinary_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new buffer is taken in ordinary pages (advised against transparent huge pages,
    whose first write took 1.24 s for 204 MB where the kernel compacted memory first, and 8
    scattered rows 0.05-0.2 s between two looks at the deadline) when the matrix's deadline
    is nearer than the worst first write of its bytes in huge pages; as numpy allocates it
    with no deadline or a far one. The matrix is the same either way."""
    import gc
    import time

    from scenarios import roads
    from scenarios.travel import matrix_deadline

    places = [xy(13.0 * i, 9.0 * (i % 7)) for i in range(30)]
    plain = RoadGraph.from_grid(CITY).matrix(places)
    taken: list[int] = []
    real = roads.small_pages_empty

    def small(size: int) -> Any:
        taken.append(size)
        return real(size)

    monkeypatch.setattr(roads, "small_pages_empty", small)
    monkeypatch.setattr(roads, "HUGE_PAGE_MIN_BYTES", 1)  # as if numpy asked for huge pages
    for pooled in (False, True):
        monkeypatch.setattr(roads, "POOL_MIN_BYTES", 1 if pooled else 2**40)
        monkeypatch.setattr(roads, "_POOL", [])
        # a worst first write of one hour per byte: any deadline is near
        monkeypatch.setattr(roads, "HUGE_PAGE_WORST_S_PER_BYTE", 3600.0)
        taken.clear()
        with matrix_deadline(time.perf_counter() + 3600.0):
            near = RoadGraph.from_grid(CITY).matrix(places)
        assert taken == [len(places) ** 2] * 2  # both buffers (durations, distances)
        assert np.array_equal(near.duration_s, plain.duration_s)
        assert np.array_equal(near.distance_m, plain.distance_m)
        assert _no_huge_pages(near.duration_s) in (True, None)
        taken.clear()
        with matrix_deadline(None):
            RoadGraph.from_grid(CITY).matrix(places)
        monkeypatch.setattr(roads, "HUGE_PAGE_WORST_S_PER_BYTE", 0.0)
        with matrix_deadline(time.perf_counter() + 3600.0):
            far = RoadGraph.from_grid(CITY).matrix(places)
        assert taken == []
        assert np.array_equal(far.duration_s, plain.duration_s)
        del near, far
        gc.collect()  # the pooled buffers go back once nothing uses them


def test_ordinary_pages_buffer_is_writable_and_advised_against_huge_pages() -> None:
    """:func:`~scenarios.roads.small_pages_empty` gives a writable float64 array of the size
    asked, in a mapping advised against transparent huge pages (Linux)."""
    from scenarios.roads import small_pages_empty

    buffer = small_pages_empty(3 * 2**20)  # 24 MB: numpy would ask for huge pages
    assert buffer.dtype == np.float64 and buffer.shape == (3 * 2**20,)
    buffer[:] = 2.5
    assert float(buffer.sum()) == 2.5 * 3 * 2**20
    assert _no_huge_pages(buffer) in (True, None)
    assert small_pages_empty(0).shape == (0,)
