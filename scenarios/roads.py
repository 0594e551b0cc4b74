"""Road networks: fastest-path travel matrices on a street graph.

A :class:`RoadGraph` holds a directed street graph in compressed sparse row form, with node
coordinates in local metres. It comes from a GraphML file written by OSMnx (``x`` = lon,
``y`` = lat, edge ``length`` in metres, optional ``travel_time``/``speed_kph``/``maxspeed``),
from any networkx graph, or from a synthetic :class:`~scenarios.travel.GridSpec` city grid
(streets every ``spacing_m``, faster arterials every ``arterial_every``-th line).

How a matrix is computed
------------------------
1. Every location snaps to the nearest node of the graph's largest strongly connected
   component (a ``cKDTree`` on local metres; lat/lon are projected equirectangularly around
   the graph's centre, exact to well under 0.1 % inside a city).
2. One ``scipy.sparse.csgraph.dijkstra`` run per *unique* snapped origin node gives the row
   of that node to every node. Edge weights pack two integers into one float64,
   ``ticks * B + length_units`` (``B`` larger than any path's length), so a single run finds
   the fastest path (ties broken by the shorter one) *and* that path's length, exactly.
   Rows are kept in a per-source LRU cache (bounded in bytes), so the repeated queries of
   the twin and the RL environment cost a few array look-ups.
3. The access legs from each point to its node are added as straight lines at the street
   speed. Two points on the same node are joined by the straight line between them (zero
   for the same point), which keeps the triangle inequality.

Durations are seconds and distances metres; the caller rounds them to integers.
"""

from __future__ import annotations

import ast
import math
import mmap
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from scenarios.errors import InputError
from scenarios.geo import Location

if TYPE_CHECKING:
    import networkx as nx

    from scenarios.travel import GridSpec, RoadNetworkTravel, Rounding, TravelMatrix

EARTH_RADIUS_M = 6_371_000.0
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024
#: Most sources of one shortest-path call (a chunk), and the fewest
_SOURCE_CHUNK = 128
_FIRST_CHUNK = 8
#: Seconds a chunk of sources is sized to take (by the last chunk's time per source), a look
#: at a matrix's deadline between chunks
_CHUNK_S = 0.02
#: Rows copied from the cache between two looks at a matrix's deadline
#: (:func:`~scenarios.travel.matrix_deadline`)
_LOOK_ROWS = 512
_EXACT_LIMIT = float(2**52)
_MPH_TO_KPH = 1.609344

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class RoadGraph:
    """A directed street graph that answers fastest-path duration/distance matrices.

    Parameters
    ----------
    xy:
        Node coordinates in metres, shape ``(num_nodes, 2)`` (projected when geographic).
    tails, heads:
        Edge end points (node indices), one entry per directed edge.
    length_m, duration_s:
        Length and free-flow traversal time of each edge (positive).
    access_speed_m_per_s:
        Speed of the straight access leg between a point and its snapped node.
    geographic:
        True when locations are given as lat/lon and projected around ``ref_lat_lon``.
    ref_lat_lon:
        Centre of the equirectangular projection (geographic graphs only).
    node_ids:
        External node ids (e.g. OSM ids), for display; defaults to ``"0".."n-1"``.
    cache_max_bytes:
        Budget of the per-source row cache.
    """

    def __init__(
        self,
        *,
        xy: FloatArray,
        tails: IntArray,
        heads: IntArray,
        length_m: FloatArray,
        duration_s: FloatArray,
        access_speed_m_per_s: float,
        geographic: bool = False,
        ref_lat_lon: tuple[float, float] | None = None,
        node_ids: Sequence[str] | None = None,
        cache_max_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
            raise InputError("graph", "needs at least one node with two coordinates")
        self.num_nodes = len(xy)
        self.xy = xy
        self.geographic = geographic
        self.ref_lat_lon = ref_lat_lon
        self.access_speed_m_per_s = float(access_speed_m_per_s)
        self.node_ids = list(node_ids) if node_ids is not None else None
        self.cache_max_bytes = int(cache_max_bytes)
        self._lock = threading.Lock()
        self._rows: OrderedDict[int, FloatArray] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

        tails = np.asarray(tails, dtype=np.int64)
        heads = np.asarray(heads, dtype=np.int64)
        length = np.asarray(length_m, dtype=np.float64)
        duration = np.asarray(duration_s, dtype=np.float64)
        keep = tails != heads
        tails, heads, length, duration = tails[keep], heads[keep], length[keep], duration[keep]
        if len(tails) == 0:
            raise InputError("graph", "has no edges between distinct nodes")
        if np.any(~np.isfinite(length)) or np.any(length < 0):
            raise InputError("graph.edges.length", "edge lengths must be finite and >= 0")
        if np.any(~np.isfinite(duration)) or np.any(duration <= 0):
            raise InputError("graph.edges.travel_time", "edge durations must be finite and > 0")
        self.num_edges = len(tails)

        n = self.num_nodes
        # Parallel edges: keep the fastest (then shortest) one per (tail, head).
        order = np.lexsort((length, duration, heads, tails))
        tails, heads, length, duration = tails[order], heads[order], length[order], duration[order]
        first = np.ones(len(tails), dtype=bool)
        first[1:] = (tails[1:] != tails[:-1]) | (heads[1:] != heads[:-1])
        tails, heads, length, duration = tails[first], heads[first], length[first], duration[first]

        fast = csr_matrix((duration, (tails, heads)), shape=(n, n))
        _, labels = connected_components(fast, directed=True, connection="strong")
        counts = np.bincount(labels)
        self._component = np.flatnonzero(labels == int(np.argmax(counts)))
        self._tree = cKDTree(xy[self._component])

        # Scale of the packed weights: a bound on any fastest path inside the component.
        probe = int(self._component[0])
        fwd = dijkstra(fast, indices=probe)[self._component]
        bwd = dijkstra(fast.T.tocsr(), indices=probe)[self._component]
        max_path_s = float(np.max(fwd) + np.max(bwd)) if len(self._component) > 1 else 0.0
        max_speed = float(np.max(length / duration))
        #: no fastest path between two nodes of the component takes longer (s; through the
        #: probe node, before the per-edge rounding), nor is longer than it at this speed (m/s)
        self.max_path_s = max_path_s
        self.max_speed_m_per_s = max_speed
        self.ticks_per_s, self.units_per_m, self._base = _packing_scale(
            max_path_s, max_path_s * max_speed, n
        )
        ticks = np.maximum(1.0, np.floor(duration * self.ticks_per_s + 0.5))
        units = np.floor(length * self.units_per_m + 0.5)
        self._packed = csr_matrix((ticks * self._base + units, (tails, heads)), shape=(n, n))
        self._packed.sort_indices()

    # ------------------------------------------------------------------ construction

    def __deepcopy__(self, memo: dict[int, Any]) -> RoadGraph:
        """The graph itself: it is read-only and shared (its row cache has its own lock)."""
        return self

    @classmethod
    def from_grid(cls, spec: GridSpec, **kwargs: Any) -> RoadGraph:
        """A rows x cols street grid with two-way streets and faster arterials."""
        rows, cols, k = spec.rows, spec.cols, spec.arterial_every
        idx = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
        xs = spec.origin_x + np.arange(cols, dtype=np.float64) * spec.spacing_m
        ys = spec.origin_y + np.arange(rows, dtype=np.float64) * spec.spacing_m
        xy = np.column_stack([np.tile(xs, rows), np.repeat(ys, cols)])
        h_tail, h_head = idx[:, :-1].ravel(), idx[:, 1:].ravel()
        h_art = np.repeat(np.arange(rows) % k == 0, cols - 1)
        v_tail, v_head = idx[:-1, :].ravel(), idx[1:, :].ravel()
        v_art = np.tile(np.arange(cols) % k == 0, rows - 1)
        tail = np.concatenate([h_tail, v_tail])
        head = np.concatenate([h_head, v_head])
        art = np.concatenate([h_art, v_art])
        speed = np.where(art, spec.arterial_speed_m_per_s, spec.street_speed_m_per_s)
        length = np.full(len(tail), spec.spacing_m, dtype=np.float64)
        duration = length / speed
        return cls(
            xy=xy,
            tails=np.concatenate([tail, head]),
            heads=np.concatenate([head, tail]),
            length_m=np.concatenate([length, length]),
            duration_s=np.concatenate([duration, duration]),
            access_speed_m_per_s=spec.street_speed_m_per_s,
            **kwargs,
        )

    @classmethod
    def from_networkx(
        cls, graph: nx.Graph, *, default_speed_m_per_s: float = 8.3, **kwargs: Any
    ) -> RoadGraph:
        """A road graph from a networkx graph with OSMnx-style attributes.

        Nodes need ``x``/``y`` (lon/lat unless the graph's ``crs`` is projected). Edges use
        ``length`` (m; straight line if absent), then ``travel_time`` (s), ``speed_kph`` or
        ``maxspeed`` (km/h, ``"30 mph"`` and lists accepted) for their duration, else
        ``default_speed_m_per_s``. Undirected graphs get both directions.
        """
        nodes = list(graph.nodes)
        if not nodes:
            raise InputError("graph", "has no nodes")
        position = {node: i for i, node in enumerate(nodes)}
        raw = np.empty((len(nodes), 2), dtype=np.float64)
        for i, node in enumerate(nodes):
            data = graph.nodes[node]
            try:
                raw[i, 0] = float(data["x"])
                raw[i, 1] = float(data["y"])
            except (KeyError, TypeError, ValueError):
                raise InputError(
                    f"graph.nodes.{node}", "needs numeric x and y attributes"
                ) from None
        geographic = _is_geographic(graph.graph.get("crs"), raw)
        if geographic:
            ref = (float(np.mean(raw[:, 1])), float(np.mean(raw[:, 0])))
            xy = _project(raw[:, 1], raw[:, 0], ref)
        else:
            ref = None
            xy = raw
        tails: list[int] = []
        heads: list[int] = []
        lengths: list[float] = []
        durations: list[float] = []
        directed = graph.is_directed()
        for u, v, data in graph.edges(data=True):
            a, b = position[u], position[v]
            length = _as_float(data.get("length"))
            if length is None or length < 0:
                length = float(np.hypot(*(xy[a] - xy[b])))
            duration = _edge_duration(data, length, default_speed_m_per_s)
            pairs = [(a, b)] if directed else [(a, b), (b, a)]
            for t, h in pairs:
                tails.append(t)
                heads.append(h)
                lengths.append(length)
                durations.append(duration)
        return cls(
            xy=xy,
            tails=np.asarray(tails, dtype=np.int64),
            heads=np.asarray(heads, dtype=np.int64),
            length_m=np.asarray(lengths, dtype=np.float64),
            duration_s=np.asarray(durations, dtype=np.float64),
            access_speed_m_per_s=default_speed_m_per_s,
            geographic=geographic,
            ref_lat_lon=ref,
            node_ids=[str(node) for node in nodes],
            **kwargs,
        )

    @classmethod
    def from_graphml(
        cls, path: str | Path, *, default_speed_m_per_s: float = 8.3, **kwargs: Any
    ) -> RoadGraph:
        """Read a GraphML file (as written by ``osmnx.save_graphml``)."""
        import io
        import xml.etree.ElementTree as ET

        import networkx as nx

        from scenarios.files import read_limited

        p = Path(path)
        if not p.is_file():
            raise InputError("travel.graphml_path", "file not found", source=str(p))
        data = read_limited(p, field="travel.graphml_path")
        try:
            graph = nx.read_graphml(io.BytesIO(data))
        except (ET.ParseError, nx.NetworkXError, ValueError, KeyError) as err:
            raise InputError(
                "travel.graphml_path", f"not a readable GraphML file ({err})", source=str(p)
            ) from None
        try:
            return cls.from_networkx(graph, default_speed_m_per_s=default_speed_m_per_s, **kwargs)
        except InputError as err:
            raise InputError(err.field, err.reason, source=str(p)) from None

    def to_networkx(self) -> nx.MultiDiGraph:
        """The graph as a networkx MultiDiGraph (edge ``length`` m, ``travel_time`` s)."""
        import networkx as nx

        graph = nx.MultiDiGraph()
        for i in range(self.num_nodes):
            graph.add_node(i, x=float(self.xy[i, 0]), y=float(self.xy[i, 1]))
        coo = self._packed.tocoo()
        ticks, units = np.divmod(coo.data.astype(np.int64), self._base)
        for t, h, tk, un in zip(coo.row, coo.col, ticks, units, strict=True):
            graph.add_edge(
                int(t),
                int(h),
                length=float(un) / self.units_per_m,
                travel_time=float(tk) / self.ticks_per_s,
            )
        return graph

    # ------------------------------------------------------------------ queries

    def project(self, locations: Sequence[Location]) -> FloatArray:
        """Coordinates of the locations in the graph's local metres, shape ``(n, 2)``."""
        out = np.empty((len(locations), 2), dtype=np.float64)
        if self.geographic:
            assert self.ref_lat_lon is not None
            lat = np.empty(len(locations))
            lon = np.empty(len(locations))
            for i, loc in enumerate(locations):
                if loc.lat is None or loc.lon is None:
                    raise InputError(
                        "location", "this road graph is geographic; give lat/lon coordinates"
                    )
                lat[i], lon[i] = loc.lat, loc.lon
            return _project(lat, lon, self.ref_lat_lon)
        for i, loc in enumerate(locations):
            if loc.x is None or loc.y is None:
                raise InputError(
                    "location", "this road graph is planar (metres); give x/y coordinates"
                )
            out[i, 0] = loc.x
            out[i, 1] = loc.y
        return out

    def snap(self, locations: Sequence[Location]) -> tuple[IntArray, FloatArray]:
        """Nearest graph node of each location and the straight access distance (m) to it."""
        return self.snap_xy(self.project(locations))

    def snap_xy(self, xy: FloatArray) -> tuple[IntArray, FloatArray]:
        """Nearest graph node of each point (local metres) and the distance (m) to it."""
        if len(xy) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        dist, pos = self._tree.query(xy)
        return self._component[np.asarray(pos, dtype=np.int64)], np.asarray(dist, np.float64)

    def matrix(
        self,
        origins: Sequence[Location],
        destinations: Sequence[Location] | None = None,
        *,
        rounding: Rounding = "round",
    ) -> TravelMatrix:
        """Integer durations (s) and distances (m) along fastest paths, origins x dests.

        Within :func:`~scenarios.travel.matrix_deadline` it stops with
        :class:`~scenarios.travel.MatrixDeadlineError` once the deadline has passed (looking
        at the clock between its passes over the arrays and every :data:`_LOOK_ROWS` rows)."""
        from scenarios.travel import TravelMatrix, check_matrix_deadline

        o_xy = self.project(origins)
        d_xy = o_xy if destinations is None else self.project(destinations)
        dur, dist = self.matrix_xy(o_xy, d_xy)
        # a look between blocks of rows: rounding a 10,000-place matrix took 0.16-0.31 s a
        # pass, past the deadline with no look (session 75)
        dur_i = _round_inplace(dur, rounding, check_matrix_deadline)
        return TravelMatrix(dur_i, _round_inplace(dist, rounding, check_matrix_deadline))

    def matrix_xy(self, o_xy: FloatArray, d_xy: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Float durations (s) and distances (m) between points given in local metres."""
        from scenarios.travel import check_matrix_deadline

        o_node, o_acc = self.snap_xy(o_xy)
        d_node, d_acc = self.snap_xy(d_xy)
        dur, dist = self.node_matrix(o_node, d_node)
        speed = self.access_speed_m_per_s
        o_s, d_s = o_acc / speed, d_acc / speed
        # In place: these arrays can be tens of millions of entries; a block of rows at a
        # time (the same operations on each entry), a look at the deadline between blocks:
        # the passes over whole arrays took 0.085-0.1 s each at 10,000 places (session 75)
        step = max(1, _CAST_BLOCK // max(1, dist.shape[1]))
        for start in range(0, len(dist), step):
            check_matrix_deadline()
            block = slice(start, start + step)
            dist[block] += o_acc[block, None]
            dist[block] += d_acc[None, :]
            dur[block] += o_s[block, None]
            dur[block] += d_s[None, :]
        check_matrix_deadline()
        rows, cols = _same_node_pairs(o_node, d_node)
        if len(rows):
            straight = np.hypot(*(o_xy[rows] - d_xy[cols]).T)
            dist[rows, cols] = straight
            dur[rows, cols] = straight / speed
        return dur, dist

    def node_matrix(self, o_node: IntArray, d_node: IntArray) -> tuple[FloatArray, FloatArray]:
        """Fastest-path durations (s) and their lengths (m) between graph nodes."""
        from scenarios.travel import check_matrix_deadline

        o_node = np.asarray(o_node, dtype=np.int64)
        d_node = np.asarray(d_node, dtype=np.int64)
        if len(o_node) == 0 or len(d_node) == 0:
            empty = np.zeros((len(o_node), len(d_node)), dtype=np.float64)
            return empty, empty.copy()
        sources, inverse = np.unique(o_node, return_inverse=True)
        inverse = inverse.ravel()
        # Write each unique source's row straight into the output (no S x D intermediate);
        # repeated origins copy the row of the first origin on the same node afterwards.
        first = np.full(len(sources), len(o_node), dtype=np.int64)
        np.minimum.at(first, inverse, np.arange(len(o_node), dtype=np.int64))
        packed = _pooled_empty((len(o_node), len(d_node)))
        with self._lock:
            missing = []
            for k, src in enumerate(sources.tolist()):
                if k % _LOOK_ROWS == 0:
                    check_matrix_deadline()
                row = self._rows.get(src)
                if row is None:
                    missing.append(k)
                    continue
                self._rows.move_to_end(src)
                np.take(row, d_node, out=packed[first[k]])
            self.cache_hits += len(sources) - len(missing)
            self.cache_misses += len(missing)
            # sources a chunk at a time, sized to take about _CHUNK_S by the last one's
            # time per source: chunks of 128 took 0.2-0.47 s each in a day's first solve of
            # 10,000 places (a look at the deadline between them; session 75)
            start, size = 0, _FIRST_CHUNK
            while start < len(missing):
                check_matrix_deadline()  # the rows computed so far stay cached
                chunk = missing[start : start + size]
                began = time.perf_counter()
                full = dijkstra(self._packed, indices=sources[chunk])
                packed[first[chunk]] = full[:, d_node]
                for k, row in zip(chunk, full, strict=True):
                    self._store(int(sources[k]), row)
                start += len(chunk)
                per_source = (time.perf_counter() - began) / len(chunk)
                size = max(_FIRST_CHUNK, min(_SOURCE_CHUNK, int(_CHUNK_S / max(per_source, 1e-9))))
        repeats = np.flatnonzero(first[inverse] != np.arange(len(o_node)))
        # a block of rows at a time: at 10,000 places on a 2,304-node graph 7,700 rows
        # repeat an earlier one, and copying them at once made a 600 MB temporary array
        step = max(1, _CAST_BLOCK // max(1, len(d_node)))
        for start in range(0, len(repeats), step):
            check_matrix_deadline()
            rows = repeats[start : start + step]
            packed[rows] = packed[first[inverse[rows]]]
        # Decode ticks * B + units in place; exact because every value is below 2**52. A
        # block of rows at a time (the same operations on each entry): a look at the
        # deadline between blocks, where the passes over whole arrays took 1.1 s at 10,000
        # places with the durations' buffer new (its memory first written)
        ticks = _pooled_empty(packed.shape)
        step = max(1, _CAST_BLOCK // max(1, packed.shape[1]))
        for start in range(0, len(packed), step):
            check_matrix_deadline()
            units = packed[start : start + step]
            # a NaN or an infinity makes the extremes one (no array of flags: 100 MB at
            # 10,000; a block at a time: 0.05 s over the whole array with no look)
            if not (math.isfinite(units.max()) and math.isfinite(units.min())):
                raise InputError("travel", "some snapped nodes cannot reach each other")
            block = ticks[start : start + step]
            np.divide(units, self._base, out=block)
            np.floor(block, out=block)
            block *= self._base
            units -= block  # now length units
            block /= self._base
            block /= self.ticks_per_s
            units /= self.units_per_m
        return ticks, packed

    def path_nodes(self, origin: Location, destination: Location) -> list[int]:
        """Graph nodes along the fastest path between two locations (snapped ends included)."""
        (a,), _ = self.snap([origin])
        (b,), _ = self.snap([destination])
        _, pred = dijkstra(self._packed, indices=int(a), return_predecessors=True)
        path = [int(b)]
        while path[-1] != a:
            prev = int(pred[path[-1]])
            if prev < 0:
                raise InputError("travel", "destination not reachable from origin")
            path.append(prev)
        return path[::-1]

    # ------------------------------------------------------------------ cache

    def _store(self, source: int, row: FloatArray) -> None:
        row_bytes = row.nbytes
        if row_bytes > self.cache_max_bytes:
            return
        while self._rows and (len(self._rows) + 1) * row_bytes > self.cache_max_bytes:
            self._rows.popitem(last=False)
        self._rows[source] = np.ascontiguousarray(row)

    def cache_info(self) -> dict[str, int]:
        """Rows cached, their bytes, and the hit/miss counts of the row cache."""
        with self._lock:
            nbytes = sum(r.nbytes for r in self._rows.values())
            return {
                "rows": len(self._rows),
                "bytes": nbytes,
                "hits": self.cache_hits,
                "misses": self.cache_misses,
            }

    def clear_cache(self) -> None:
        """Forget every cached row."""
        with self._lock:
            self._rows.clear()
            self.cache_hits = 0
            self.cache_misses = 0


# ---------------------------------------------------------------------- loading

_GRAPHS: OrderedDict[tuple[Any, ...], RoadGraph] = OrderedDict()
_GRAPHS_LOCK = threading.Lock()
_MAX_GRAPHS = 4


def load_road_graph(model: RoadNetworkTravel) -> RoadGraph:
    """The road graph of a travel model (shared between equal models, so is its row cache)."""
    if model.grid is not None:
        key: tuple[Any, ...] = ("grid", model.grid.model_dump_json())
    else:
        assert model.graphml_path is not None
        p = Path(model.graphml_path)
        if not p.is_file():
            raise InputError("travel.graphml_path", "file not found", source=str(p))
        stat = p.stat()
        key = ("graphml", str(p.resolve()), stat.st_mtime_ns, stat.st_size)
        key += (model.default_speed_m_per_s,)
    with _GRAPHS_LOCK:
        graph = _GRAPHS.get(key)
        if graph is not None:
            _GRAPHS.move_to_end(key)
            return graph
    if model.grid is not None:
        graph = RoadGraph.from_grid(model.grid)
    else:
        assert model.graphml_path is not None
        graph = RoadGraph.from_graphml(
            model.graphml_path, default_speed_m_per_s=model.default_speed_m_per_s
        )
    with _GRAPHS_LOCK:
        _GRAPHS[key] = graph
        while len(_GRAPHS) > _MAX_GRAPHS:
            _GRAPHS.popitem(last=False)
    return graph


# ---------------------------------------------------------------------- helpers


def _packing_scale(
    max_path_s: float, max_path_m: float, num_nodes: int
) -> tuple[float, float, int]:
    """Ticks per second, length units per metre and base B keeping packed sums exact."""
    for ticks_per_s, units_per_m in ((1000.0, 100.0), (1000.0, 10.0), (100.0, 10.0), (10.0, 1.0)):
        # Rounding each edge moves a path sum by at most 1/2 unit per edge: margin num_nodes.
        base = int(2 * max_path_m * units_per_m) + num_nodes + 1
        top = (2 * max_path_s * ticks_per_s + num_nodes + 1) * base
        if top < _EXACT_LIMIT:
            return ticks_per_s, units_per_m, base
    ticks_per_s, units_per_m = 1.0, 1.0
    base = int(2 * max_path_m) + num_nodes + 1
    if (2 * max_path_s + num_nodes + 1) * base >= _EXACT_LIMIT:
        raise InputError("graph", "too large for exact packed path weights")
    return ticks_per_s, units_per_m, base


#: Entries of a block of rows a matrix's passes take between two looks at its deadline (4 MB
#: of float64; blocks of 16 MB took 0.04 s each in the decoding at 10,000 places, session 75)
_CAST_BLOCK = 1 << 19


#: Matrices of at least this many bytes are built in buffers kept for reuse in the process
#: (:func:`_pooled_empty`); smaller ones in new arrays
POOL_MIN_BYTES = 64 * 2**20
#: Most bytes of buffers kept for reuse while no matrix uses them (two 10,000 x 10,000
#: float64 arrays: 1.6 GB); past it a buffer no longer used is freed
POOL_MAX_BYTES = 2 * 2**30
_POOL: list[FloatArray] = []  # buffers (1-D float64) no matrix uses, kept for reuse
_POOL_LOCK = threading.Lock()


class _Lease:
    """A pooled buffer seen as an array of ``shape``: every array made from it (views,
    casts in place) keeps the lease alive, and the buffer goes back to the pool when the
    lease is gone (:func:`weakref.finalize`)."""

    def __init__(self, buffer: FloatArray, shape: tuple[int, int]) -> None:
        self.__array_interface__ = buffer[: shape[0] * shape[1]].reshape(shape).__array_interface__
        self.buffer = buffer


def _pooled_empty(shape: tuple[int, int]) -> FloatArray:
    """An uninitialised float64 array of ``shape``: for a large one, in a buffer used before
    in the process where one fits (up to a quarter larger), whose memory is already mapped:
    writing a new 800 MB array first took 0.14-1.69 s on this project's virtual machine,
    depending on how long the memory had been free (session 73)."""
    size = shape[0] * shape[1]
    if size * 8 < POOL_MIN_BYTES:
        return _new_buffer(size).reshape(shape)
    with _POOL_LOCK:
        fits = [k for k, b in enumerate(_POOL) if size <= b.size <= size + size // 4]
        # (by position: a list's remove compares arrays by their values)
        buffer = _POOL.pop(min(fits, key=lambda k: _POOL[k].size)) if fits else None
    if buffer is None:
        buffer = _new_buffer(size)
    lease = _Lease(buffer, shape)
    weakref.finalize(lease, _give_back, buffer)
    out: FloatArray = np.asarray(lease)
    return out


#: Seconds per byte the first write to a new array took at worst with transparent huge pages
#: (numpy asks for them from 4 MB): 1.24 s for 204 MB (5,049 x 5,049 float64) where the
#: kernel had to compact memory first, 0.03-0.05 s where it had huge pages free; with
#: ordinary 4 KB pages 0.17-0.24 s, whatever the memory's state (session 79, 3 cold
#: processes each, shared lock). A matrix's rows are written scattered (the first origin of
#: each snapped node): 8 rows, 8 huge pages, took 0.05-0.2 s between two looks at its
#: deadline, and a 5,000-order pickup day at 0.3 s answered 0.2-0.29 s late.
HUGE_PAGE_WORST_S_PER_BYTE = 1.24 / (5049 * 5049 * 8)
#: numpy asks for transparent huge pages for arrays of at least this many bytes
HUGE_PAGE_MIN_BYTES = 4 * 2**20


def _new_buffer(size: int) -> FloatArray:
    """A new uninitialised float64 buffer of ``size`` entries: in ordinary pages (no
    transparent huge pages) when a matrix deadline is in force and nearer than the worst
    first write of that many bytes in huge pages (:data:`HUGE_PAGE_WORST_S_PER_BYTE`), so
    that its first write costs about the same at every row and the looks at the deadline
    stop it in time; else as numpy allocates (faster where huge pages are free)."""
    from scenarios.travel import matrix_time_left

    nbytes = size * 8
    if nbytes < HUGE_PAGE_MIN_BYTES:
        return np.empty(size, dtype=np.float64)
    left = matrix_time_left()
    if left is None or left >= nbytes * HUGE_PAGE_WORST_S_PER_BYTE:
        return np.empty(size, dtype=np.float64)
    return small_pages_empty(size)


def small_pages_empty(size: int) -> FloatArray:
    """An uninitialised float64 array of ``size`` entries in anonymous memory advised against
    transparent huge pages (as :func:`numpy.empty` where the platform cannot say so)."""
    advise = getattr(mmap.mmap, "madvise", None)
    flag = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if advise is None or flag is None or size == 0:
        return np.empty(size, dtype=np.float64)
    region = mmap.mmap(-1, size * 8)
    region.madvise(flag)
    out: FloatArray = np.frombuffer(region, dtype=np.float64)
    return out


def _give_back(buffer: FloatArray) -> None:
    """Keep a buffer no matrix uses any longer for reuse, within :data:`POOL_MAX_BYTES`."""
    with _POOL_LOCK:
        if sum(b.nbytes for b in _POOL) + buffer.nbytes <= POOL_MAX_BYTES:
            _POOL.append(buffer)


def release_matrix_buffers() -> int:
    """Free the buffers kept for reuse (:func:`_pooled_empty`); the bytes freed."""
    with _POOL_LOCK:
        freed = sum(b.nbytes for b in _POOL)
        _POOL.clear()
    return freed


def _same_node_pairs(o_node: IntArray, d_node: IntArray) -> tuple[IntArray, IntArray]:
    """(rows, cols) where ``o_node[row] == d_node[col]``, as ``np.nonzero`` of their
    comparison gives them (row-major), without the origins x destinations array of flags
    (100 MB at 10,000 places, and a pass over it)."""
    order = np.argsort(d_node, kind="stable")
    ranked = d_node[order]
    lo = np.searchsorted(ranked, o_node, side="left")
    counts = np.searchsorted(ranked, o_node, side="right") - lo
    total = int(counts.sum())
    rows = np.repeat(np.arange(len(o_node), dtype=np.int64), counts)
    # each row's matches: ranked[lo : lo + count], in destination order (a stable sort)
    starts = np.cumsum(counts) - counts
    at = np.arange(total, dtype=np.int64) - np.repeat(starts - lo, counts)
    return rows, order[at].astype(np.int64)


def _round_inplace(
    values: FloatArray, rounding: Rounding, look: Callable[[], None] | None = None
) -> IntArray:
    """Round a float array to int64 (``values`` is overwritten), calling ``look`` (a look at
    a deadline, which may raise) between blocks of rows."""
    if values.ndim == 0 or not values.flags.c_contiguous or values.dtype != np.float64:
        if look is not None:
            look()
        _round_block(values, rounding)
        return values.astype(np.int64)
    # rounded and cast in place, a block of rows at a time: a new 10,000 x 10,000 int64
    # array (800 MB) took 0.5-1.8 s to fault in, more than the cast itself (0.1 s); and a
    # pass rounding the whole array 0.16-0.31 s with no look at the deadline (session 75)
    out: IntArray = values.view(np.int64)
    step = max(1, _CAST_BLOCK // max(1, values[0].size))
    for start in range(0, len(values), step):
        if look is not None:
            look()
        block = values[start : start + step]
        _round_block(block, rounding)
        out[start : start + step] = block
    return out


def _round_block(values: FloatArray, rounding: Rounding) -> None:
    """Round ``values`` to whole numbers in place by ``rounding``."""
    if rounding == "floor":
        np.floor(values, out=values)
    elif rounding == "ceil":
        np.ceil(values, out=values)
    else:
        values += 0.5
        np.floor(values, out=values)


def _project(lat: FloatArray, lon: FloatArray, ref: tuple[float, float]) -> FloatArray:
    """Equirectangular projection of lat/lon (degrees) to metres around ``ref``."""
    lat0, lon0 = ref
    x = EARTH_RADIUS_M * math.cos(math.radians(lat0)) * np.radians(np.asarray(lon) - lon0)
    y = EARTH_RADIUS_M * np.radians(np.asarray(lat) - lat0)
    return np.column_stack([x, y])


def _is_geographic(crs: object, raw: FloatArray) -> bool:
    """True when node x/y are lon/lat: a WGS84 ``crs`` or, without one, values in range."""
    if crs is not None:
        text = str(crs).lower().replace(" ", "")
        return "4326" in text or "wgs84" in text or "longlat" in text or "latlong" in text
    return bool(np.all(np.abs(raw[:, 0]) <= 180.0) and np.all(np.abs(raw[:, 1]) <= 90.0))


def _as_float(value: object) -> float | None:
    """A number from a GraphML attribute (strings included), or None."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _edge_duration(data: dict[str, Any], length_m: float, default_speed: float) -> float:
    """Free-flow traversal time of an edge from its OSMnx-style attributes."""
    travel_time = _as_float(data.get("travel_time"))
    if travel_time is not None and travel_time > 0:
        return travel_time
    kph = _as_float(data.get("speed_kph"))
    if kph is None or kph <= 0:
        kph = parse_maxspeed_kph(data.get("maxspeed"))
    speed = kph / 3.6 if kph is not None and kph > 0 else default_speed
    return max(length_m / speed, 1e-3)


_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(mph)?", re.IGNORECASE)


def parse_maxspeed_kph(value: object) -> float | None:
    """Speed in km/h from an OSM ``maxspeed`` tag (``"50"``, ``"30 mph"``, lists -> mean)."""
    if value is None:
        return None
    items: Iterable[object]
    if isinstance(value, list | tuple):
        items = value
    else:
        text = str(value).strip()
        if text.startswith("["):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = [text]
            items = parsed if isinstance(parsed, list | tuple) else [parsed]
        else:
            items = [text]
    speeds = []
    for item in items:
        match = _NUMBER.search(str(item))
        if match is None:
            continue
        kph = float(match.group(1)) * (_MPH_TO_KPH if match.group(2) else 1.0)
        if kph > 0:
            speeds.append(kph)
    return sum(speeds) / len(speeds) if speeds else None


__all__ = ["RoadGraph", "load_road_graph", "parse_maxspeed_kph", "release_matrix_buffers"]
