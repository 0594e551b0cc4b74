"""VRPLIB files: CVRPLIB ``.vrp`` (EUC_2D) and explicit-matrix VRPTW (EURO Meets NeurIPS 2022).

Conventions: EUC_2D arcs are rounded to the nearest integer (TSPLIB ``nint``); explicit
matrices are used as given (the EURO-NeurIPS matrix is a duration in seconds, and the
distance is that same duration), except the diagonal, which is set to zero (TSPLIB files may
put a placeholder such as 9999 there; no route uses it, and the travel model requires zero;
``source.notes`` says so). The fleet is the file's ``VEHICLES`` when given, else one vehicle
per customer (unlimited, as CVRPLIB intends). Customers are numbered as in ``.sol`` files:
file node ``k`` (1-based, depot first) becomes order id ``str(k - 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple

from scenarios.errors import InputError
from scenarios.geo import MAX_COORDINATE, MAX_INT, Location, TimeWindow
from scenarios.io.solomon import MAX_FLEET, _read_text, at_line, fleet_scenario
from scenarios.model import Order, Scenario, SourceInfo
from scenarios.travel import EuclideanTravel, MatrixTravel

_SECTIONS = {
    "NODE_COORD_SECTION",
    "DEMAND_SECTION",
    "DEPOT_SECTION",
    "EDGE_WEIGHT_SECTION",
    "SERVICE_TIME_SECTION",
    "TIME_WINDOW_SECTION",
}
_LONG_HORIZON_S = 10**9


def read_vrplib(path: str | Path) -> Scenario:
    """Read a VRPLIB instance into a Scenario."""
    p = Path(path)
    return parse_vrplib(_read_text(p), source=str(p))


def parse_vrplib(text: str, *, source: str = "<text>") -> Scenario:
    """Parse VRPLIB text; errors name the section and the reason."""
    header: dict[str, str] = {}
    sections: dict[str, list[Row]] = {}
    current: str | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line == "EOF":
            continue
        key = line.split(":")[0].strip().upper() if ":" in line else line.split()[0].upper()
        if key in _SECTIONS:
            current = key
            sections[current] = []
            continue
        if current is None:
            if ":" not in line:
                raise InputError(
                    "header", f"expected 'KEY : value', found {line[:40]!r}", source=source
                )
            hkey, hval = line.split(":", 1)
            header[hkey.strip().upper()] = hval.strip()
        else:
            sections[current].append(Row(lineno, line.split()))
    name = header.get("NAME", Path(source).stem)
    try:
        n = int(header["DIMENSION"])
    except (KeyError, ValueError):
        raise InputError("DIMENSION", "missing or not an integer", source=source) from None
    if n < 1:
        raise InputError("DIMENSION", f"must be at least 1, got {n}", source=source)
    capacity = _header_int(header, "CAPACITY", 0, source)
    weight_type = header.get("EDGE_WEIGHT_TYPE", "EUC_2D").upper()
    depot = _depot(sections, n, source)

    coords = {
        node: (
            _coordinate(row, 1, source),
            _coordinate(row, 2, source),
        )
        for node, row in _rows_by_node(sections, "NODE_COORD_SECTION", n, source, columns=3).items()
    }
    notes: str | None = None
    weight_format = header.get("EDGE_WEIGHT_FORMAT", "FULL_MATRIX").upper()
    if weight_type == "EXPLICIT" and weight_format != "FULL_MATRIX":
        raise InputError(
            "EDGE_WEIGHT_FORMAT",
            f"{weight_format} is not supported (FULL_MATRIX: n rows of n values)",
            source=source,
        )
    if weight_type == "EXPLICIT":
        cells = [
            (_whole(row, k, "EDGE_WEIGHT_SECTION", source), row)
            for row in sections.get("EDGE_WEIGHT_SECTION", [])
            for k in range(len(row.tokens))
        ]
        flat = [value for value, _ in cells]
        if len(flat) != n * n:
            raise InputError(
                "EDGE_WEIGHT_SECTION", f"has {len(flat)} values, expected {n} x {n}", source=source
            )
        for k, (value, row) in enumerate(cells):
            if value < 0 and k // n != k % n:  # the diagonal is set to zero below
                raise InputError(
                    "EDGE_WEIGHT_SECTION",
                    f"line {row.lineno}: negative weight {value} from node {k // n + 1} to "
                    f"node {k % n + 1}",
                    source=source,
                )
        matrix = [flat[i * n : (i + 1) * n] for i in range(n)]
        if any(matrix[i][i] for i in range(n)):
            notes = "EDGE_WEIGHT_SECTION diagonal set to zero"
        for i in range(n):
            matrix[i][i] = 0
        with at_line("EDGE_WEIGHT_SECTION", source):
            travel: MatrixTravel | EuclideanTravel = MatrixTravel(duration_s=matrix)

        def loc(k: int) -> Location:
            xy = coords.get(k)
            if xy is None:
                return Location(index=k - 1)
            return Location(x=xy[0], y=xy[1], index=k - 1)
    elif weight_type == "EUC_2D":
        travel = EuclideanTravel(metres_per_unit=1.0, speed_m_per_s=1.0, rounding="round")

        def loc(k: int) -> Location:
            xy = coords.get(k)
            if xy is None:
                raise InputError(
                    "NODE_COORD_SECTION", f"no coordinates for node {k}", source=source
                )
            return Location(x=xy[0], y=xy[1])
    else:
        raise InputError(
            "EDGE_WEIGHT_TYPE",
            f"{weight_type} is not supported (EUC_2D or EXPLICIT)",
            source=source,
        )

    demand = _per_node(sections, "DEMAND_SECTION", n, source)
    service = _per_node(sections, "SERVICE_TIME_SECTION", n, source, time=True)
    windows = {
        node: (
            _whole(r, 1, "TIME_WINDOW_SECTION", source, time=True),
            _whole(r, 2, "TIME_WINDOW_SECTION", source, time=True),
        )
        for node, r in _rows_by_node(sections, "TIME_WINDOW_SECTION", n, source, columns=3).items()
    }
    _complete(sections, "TIME_WINDOW_SECTION", windows, n, source)
    depot_tw = windows.get(depot, (0, _LONG_HORIZON_S))
    with at_line(f"node {depot}", source):  # the depot's window and place
        horizon = TimeWindow(start_s=depot_tw[0], end_s=depot_tw[1])
        depot_loc = loc(depot)
    orders = []
    nodes: list[int] = []  # the file node of each order
    for k in range(1, n + 1):
        if k == depot:
            continue
        tw = windows.get(k)
        if tw is not None and tw[1] < tw[0]:
            raise InputError(
                "TIME_WINDOW_SECTION", f"node {k}: window ends before it starts", source=source
            )
        units = demand.get(k, 0)
        if units < 0:
            raise InputError("DEMAND_SECTION", f"node {k}: negative demand {units}", source=source)
        with at_line(f"node {k}", source):
            orders.append(
                Order(
                    id=str(k - 1),
                    location=loc(k),
                    demand=[units],
                    time_windows=[TimeWindow(start_s=tw[0], end_s=tw[1])] if tw is not None else [],
                    service_s=service.get(k, 0),
                )
            )
        nodes.append(k)
    if "CAPACITY" not in header and any(order.demand[0] for order in orders):
        raise InputError(
            "CAPACITY",
            "missing, yet DEMAND_SECTION gives customers a demand (every vehicle would carry 0)",
            source=source,
        )
    num_vehicles = _header_int(header, "VEHICLES", min(MAX_FLEET, max(1, len(orders))), source)
    if num_vehicles > MAX_FLEET:
        raise InputError(
            "VEHICLES",
            f"{num_vehicles:,} vehicles, more than the {MAX_FLEET:,} a benchmark file may have",
            source=source,
        )
    return fleet_scenario(
        name=name,
        horizon=horizon,
        depot=depot_loc,
        num_vehicles=num_vehicles,
        capacity=capacity,
        orders=orders,
        make_travel=lambda: travel,
        info=SourceInfo(format="vrplib", name=name, path=source, notes=notes),
        fleet_field="CAPACITY",
        source=source,
        order_field=lambda i, _path: f"node {nodes[i]}",
    )


class Row(NamedTuple):
    """One line of a section: its number in the file and its tokens."""

    lineno: int
    tokens: list[str]


def _header_int(header: dict[str, str], key: str, default: int, source: str) -> int:
    """A whole, non-negative header value (``VEHICLES``, ``CAPACITY``), else InputError."""
    if key not in header:
        return default
    try:
        value = int(header[key])
    except ValueError:
        value = -1
    if value < 0:
        raise InputError(key, f"expected a whole number >= 0, got {header[key]!r}", source=source)
    return value


def _number(row: Row, k: int, section: str, source: str) -> float:
    """Token ``k`` of a section row as a finite number, else InputError naming the line."""
    try:
        value = float(row.tokens[k])
    except (IndexError, ValueError):
        raise InputError(
            section, f"line {row.lineno}: bad row {' '.join(row.tokens)!r}", source=source
        ) from None
    if not math.isfinite(value):
        raise InputError(
            section, f"line {row.lineno}: non-finite value {row.tokens[k]!r}", source=source
        )
    return value


def _node(row: Row, section: str, n: int, source: str, *, columns: int = 1) -> int:
    """The node number a section row starts with (1..n), else InputError naming the line."""
    if len(row.tokens) < columns:
        raise InputError(
            section,
            f"line {row.lineno}: expected {columns} values, found {' '.join(row.tokens)!r}",
            source=source,
        )
    try:
        node = int(row.tokens[0])
    except ValueError:
        node = 0
    if not 1 <= node <= n:
        raise InputError(
            section,
            f"line {row.lineno}: node {row.tokens[0]!r} is not in 1..{n} (DIMENSION)",
            source=source,
        )
    return node


def _depot(sections: dict[str, list[Row]], n: int, source: str) -> int:
    for row in sections.get("DEPOT_SECTION", []):
        try:
            value = int(row.tokens[0])
        except ValueError:
            raise InputError(
                "DEPOT_SECTION", f"line {row.lineno}: bad row {row.tokens[0]!r}", source=source
            ) from None
        if value > 0:
            return _node(row, "DEPOT_SECTION", n, source)
    return 1


def _coordinate(row: Row, k: int, source: str) -> float:
    """Token ``k`` of a ``NODE_COORD_SECTION`` row, else InputError naming the line and the
    value as written (the model's refusal of a coordinate past its bound named neither)."""
    value = _number(row, k, "NODE_COORD_SECTION", source)
    if abs(value) > MAX_COORDINATE:
        raise InputError(
            "NODE_COORD_SECTION",
            f"line {row.lineno}: coordinate {row.tokens[k]!r} is beyond "
            f"+-{MAX_COORDINATE:,.0f}, the largest the model takes",
            source=source,
        )
    return value


def _whole(row: Row, k: int, section: str, source: str, *, time: bool = False) -> int:
    """Token ``k`` of a section row as a whole number of at most :data:`MAX_INT` (>= 0 for a
    ``time``), else InputError naming the line and the value as written."""
    value = _number(row, k, section, source)
    if value != int(value):
        raise InputError(
            section,
            f"line {row.lineno}: expected a whole number, found {row.tokens[k]!r}",
            source=source,
        )
    if time and value < 0:
        raise InputError(
            section, f"line {row.lineno}: negative time {row.tokens[k]!r}", source=source
        )
    if value > MAX_INT:
        raise InputError(
            section,
            f"line {row.lineno}: {row.tokens[k]!r} is larger than {MAX_INT:,}, the largest "
            "number the model takes",
            source=source,
        )
    return int(value)


def _rows_by_node(
    sections: dict[str, list[Row]], key: str, n: int, source: str, *, columns: int
) -> dict[int, Row]:
    """The rows of section ``key`` by node number; a node given twice is an InputError."""
    rows: dict[int, Row] = {}
    for row in sections.get(key, []):
        node = _node(row, key, n, source, columns=columns)
        if node in rows:
            raise InputError(
                key,
                f"line {row.lineno}: node {node} is given twice (also line {rows[node].lineno})",
                source=source,
            )
        rows[node] = row
    return rows


def _complete(
    sections: dict[str, list[Row]], key: str, given: Collection[int], n: int, source: str
) -> None:
    """A section present must list every node 1..n (a truncated file lists fewer)."""
    if key not in sections or len(given) == n:
        return
    missing = next(k for k in range(1, n + 1) if k not in given)  # at most len(given) + 1 steps
    raise InputError(
        key,
        f"node {missing} is missing (the section lists {len(given):,} of the {n:,} nodes)",
        source=source,
    )


def _per_node(
    sections: dict[str, list[Row]], key: str, n: int, source: str, *, time: bool = False
) -> dict[int, int]:
    """The whole number each row of section ``key`` gives its node (a ``time``: >= 0); every
    node, if present."""
    values = {
        node: _whole(row, 1, key, source, time=time)
        for node, row in _rows_by_node(sections, key, n, source, columns=2).items()
    }
    _complete(sections, key, values, n, source)
    return values
