"""A tiny OSMnx-style road graph written as GraphML with networkx (no OSM download).

It mimics ``osmnx.save_graphml``: a MultiDiGraph, graph attribute ``crs = "epsg:4326"``,
node ids as OSM-like integers, node ``x`` = lon and ``y`` = lat, every attribute stored as a
string, edge ``length`` in metres, ``oneway``/``reversed`` as ``"True"``/``"False"``, and a
mix of speed tags: ``speed_kph``, ``travel_time``, ``maxspeed`` (plain, list, mph) or none.

Layout (4 x 4 blocks of about 200 m near Brussels): rows are east-west streets, columns
north-south streets. Row 0 is a 70 km/h avenue, column 2 is one-way northbound, edge
(1,0)-(1,1) has a slow parallel edge, and node ``9999`` is isolated (no edges) close to
node (3, 3) so it must never be snapped to.
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx

LAT0, LON0 = 50.84, 4.35
DLAT, DLON = 0.0018, 0.0028
ROWS = COLS = 4
ISOLATED = "9999"


def node_id(r: int, c: int) -> str:
    """OSM-like id of lattice node (row, col)."""
    return str(1_000_000 + 10 * r + c)


def node_latlon(r: int, c: int) -> tuple[float, float]:
    """(lat, lon) of lattice node (row, col)."""
    return LAT0 + r * DLAT, LON0 + c * DLON


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle metres (R = 6371 km), as OSMnx computes edge lengths."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))


def _street_tags(r1: int, c1: int, r2: int, c2: int) -> dict[str, str]:
    if r1 == r2 == 0:
        return {"highway": "primary", "maxspeed": "70", "name": "Avenue"}
    if r1 == r2 == 3:
        return {"highway": "residential", "maxspeed": "['30', '50']", "name": "Rue Haute"}
    if c1 == c2 == 3:
        return {"highway": "residential", "maxspeed": "20 mph", "name": "Lane"}
    if c1 == c2 == 1:
        return {"highway": "residential", "speed_kph": "25.0", "name": "Rue Basse"}
    if r1 == r2 == 2:
        return {"highway": "tertiary", "name": "Rue Neuve"}  # no speed: default speed
    return {"highway": "residential", "maxspeed": "30", "name": "Rue"}


def build_graph() -> nx.MultiDiGraph:
    """The fixture graph with attributes as typed values (before stringification)."""
    g = nx.MultiDiGraph(crs="epsg:4326", created_with="OSMnx 1.9.4", simplified=True)
    for r in range(ROWS):
        for c in range(COLS):
            lat, lon = node_latlon(r, c)
            g.add_node(node_id(r, c), y=lat, x=lon, street_count=4, osmid=node_id(r, c))
    lat, lon = node_latlon(3, 3)
    g.add_node(ISOLATED, y=lat + 0.0002, x=lon + 0.0002, street_count=0, osmid=ISOLATED)
    edges = []
    for r in range(ROWS):
        for c in range(COLS - 1):
            edges.append((r, c, r, c + 1))
    for c in range(COLS):
        for r in range(ROWS - 1):
            edges.append((r, c, r + 1, c))
    for k, (r1, c1, r2, c2) in enumerate(edges):
        a, b = node_id(r1, c1), node_id(r2, c2)
        length = round(haversine(*node_latlon(r1, c1), *node_latlon(r2, c2)), 3)
        tags = _street_tags(r1, c1, r2, c2)
        one_way = c1 == c2 == 2  # column 2 northbound only (r increases = north)
        base = {"osmid": str(500 + k), "length": length, **tags}
        g.add_edge(a, b, oneway=one_way, reversed=False, **base)
        if not one_way:
            g.add_edge(b, a, oneway=False, reversed=True, **base)
    # A slow parallel service road next to (1,0)-(1,1); the fast edge must win.
    a, b = node_id(1, 0), node_id(1, 1)
    g.add_edge(a, b, osmid="900", length=260.0, highway="service", travel_time=120.0)
    # An edge with an explicit travel_time (overrides speeds).
    g.edges[node_id(0, 3), node_id(1, 3), 0]["travel_time"] = 10.0
    return g


def write_osm_graphml(path: Path) -> Path:
    """Write the fixture as OSMnx does: every attribute as a string."""
    g = build_graph()
    out = nx.MultiDiGraph()
    out.graph = {k: str(v) for k, v in g.graph.items()}
    for n, data in g.nodes(data=True):
        out.add_node(n, **{k: str(v) for k, v in data.items()})
    for u, v, key, data in g.edges(keys=True, data=True):
        out.add_edge(u, v, key=key, **{k: str(v_) for k, v_ in data.items()})
    nx.write_graphml(out, path)
    return path
