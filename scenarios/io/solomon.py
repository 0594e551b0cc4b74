"""Solomon and Gehring-Homberger VRPTW files (the same text format).

Distances and travel times follow the DIMACS VRPTW convention: each arc is truncated to one
decimal. Inside the model that is exact integer arithmetic in tenths (``metres_per_unit=10``,
``rounding="floor"``, speed 1), and ``source.distance_divisor = 10`` converts back, so a
reported distance compares directly with ``dimacs_distance`` in the benchmark tables.
Times (ready, due, service) are scaled by 10 the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from scenarios.errors import InputError, input_error_from_validation
from scenarios.files import read_limited
from scenarios.geo import Location, TimeWindow
from scenarios.model import Order, Scenario, SourceInfo, Vehicle
from scenarios.travel import EuclideanTravel, TravelModel

SCALE = 10
#: the most vehicles a benchmark file's fleet line may declare: each is built, and a typo such
#: as 10^8 took gigabytes (ten times the generator's courier cap; the largest public sets
#: have a few hundred, an unlimited VRPLIB fleet one per customer)
MAX_FLEET = 100_000


def read_solomon(path: str | Path) -> Scenario:
    """Read a Solomon / Gehring-Homberger VRPTW file into a Scenario."""
    p = Path(path)
    text = _read_text(p)
    return parse_solomon(text, source=str(p))


def _read_text(p: Path) -> str:
    try:
        return read_limited(p).decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError("path", "file not found", source=str(p)) from None
    except IsADirectoryError:
        raise InputError("path", "is a directory, expected a file", source=str(p)) from None


def parse_solomon(text: str, *, source: str = "<text>") -> Scenario:
    """Parse Solomon-format text; errors name the line and the reason."""
    lines = [ln.strip() for ln in text.splitlines()]
    name = next((ln for ln in lines if ln), "")
    upper = [ln.upper() for ln in lines]
    try:
        v_at = upper.index("VEHICLE")
        c_at = upper.index("CUSTOMER")
    except ValueError:
        raise InputError(
            "file", "not a Solomon file: missing VEHICLE or CUSTOMER section", source=source
        ) from None
    fleet_at, fleet_row = _first_numeric_row(lines, v_at + 1, c_at, source)
    if len(fleet_row) < 2:
        raise InputError("VEHICLE", "expected NUMBER and CAPACITY", source=source)
    num_vehicles, capacity = (
        whole_number(token, f"line {fleet_at + 1}", what, source)
        for token, what in zip(fleet_row[:2], ("NUMBER", "CAPACITY"), strict=True)
    )
    rows: list[tuple[int, list[float]]] = []
    seen: dict[float, int] = {}
    for lineno in range(c_at + 1, len(lines)):
        parts = lines[lineno].split()
        if not parts or not _is_number(parts[0]):
            continue
        if len(parts) < 7:
            raise InputError(
                f"line {lineno + 1}", f"expected 7 columns, found {len(parts)}", source=source
            )
        row = finite_row(parts[:7], f"line {lineno + 1}", source)
        if row[0] in seen:
            raise InputError(
                f"line {lineno + 1}",
                f"customer {parts[0]} is given twice (also line {seen[row[0]] + 1})",
                source=source,
            )
        whole_value(row[0], f"line {lineno + 1}", "the customer number", source)
        seen[row[0]] = lineno
        rows.append((lineno, row))
    if len(rows) < 2:
        raise InputError("CUSTOMER", "needs a depot row and at least one customer", source=source)
    depot_at, depot = rows[0]
    if depot[0] != 0:  # a file missing its depot row: customer 1 was taken for it and dropped
        raise InputError(
            f"line {depot_at + 1}",
            f"the first CUSTOMER row must be the depot, customer 0, not customer {depot[0]:g}",
            source=source,
        )
    with at_line(f"line {depot_at + 1}", source):
        depot_loc = Location(x=depot[1], y=depot[2])
        horizon = TimeWindow(start_s=_t(depot[4]), end_s=_t(depot[5]))
    orders = []
    order_lines: list[str] = []
    for lineno, row in rows[1:]:
        cust, x, y, demand, ready, due, service = row
        if due < ready:
            raise InputError(
                f"line {lineno + 1}", f"due date {due} is before ready time {ready}", source=source
            )
        if demand < 0:
            raise InputError(f"line {lineno + 1}", f"negative demand {demand}", source=source)
        units = whole_value(demand, f"line {lineno + 1}", "the demand", source)
        order_lines.append(f"line {lineno + 1}")
        with at_line(f"line {lineno + 1}", source):
            orders.append(
                Order(
                    id=str(int(cust)),
                    location=Location(x=x, y=y),
                    demand=[units],
                    time_windows=[TimeWindow(start_s=_t(ready), end_s=_t(due))],
                    service_s=_t(service),
                )
            )
    return fleet_scenario(
        name=name,
        horizon=horizon,
        depot=depot_loc,
        num_vehicles=num_vehicles,
        capacity=capacity,
        orders=orders,
        make_travel=lambda: EuclideanTravel(
            metres_per_unit=SCALE, speed_m_per_s=1.0, rounding="floor"
        ),
        info=SourceInfo(
            format="solomon",
            name=name,
            path=source,
            distance_divisor=SCALE,
            time_divisor=SCALE,
            notes="DIMACS convention: arcs truncated to one decimal (integer tenths inside)",
        ),
        fleet_field=f"line {fleet_at + 1}",
        source=source,
        order_field=lambda i, _path: order_lines[i],
    )


def _t(value: float) -> int:
    """Scale a Solomon time or distance to integer tenths."""
    return round(value * SCALE)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def fleet_scenario(
    *,
    name: str,
    horizon: TimeWindow,
    depot: Location,
    num_vehicles: int,
    capacity: int,
    orders: list[Order],
    make_travel: Callable[[], TravelModel],
    info: SourceInfo,
    fleet_field: str,
    source: str,
    order_field: Callable[[int, str], str] | None = None,
) -> Scenario:
    """A benchmark file's scenario: ``num_vehicles`` alike vehicles at the depot, one dimension.

    Vehicles ``1..num_vehicles`` start at ``depot``, work the whole ``horizon`` and carry
    ``capacity`` of the one capacity dimension ``demand``; a value the model rejects for them
    is reported under ``fleet_field`` (where the file gives the fleet) of file ``source``.
    ``make_travel`` is called after the vehicles are made, so a bad fleet is reported first.
    A fleet of more than :data:`MAX_FLEET` vehicles is refused before any is made. A rule the
    scenario checks across fields (a window outside the horizon) is reported under
    ``order_field(i, path)``, the place in the file of field ``path`` of ``orders[i]``.
    """
    if num_vehicles > MAX_FLEET:
        raise InputError(
            fleet_field,
            f"{num_vehicles:,} vehicles, more than the {MAX_FLEET:,} a benchmark file may have",
            source=source,
        )
    with at_line(fleet_field, source):
        vehicles = [
            Vehicle(id=str(k + 1), start_location=depot, shift=horizon, capacity=[capacity])
            for k in range(num_vehicles)
        ]
    travel = make_travel()
    try:
        return Scenario(
            name=name,
            horizon=horizon,
            travel=travel,
            capacity_dims=["demand"],
            orders=orders,
            vehicles=vehicles,
            source=info,
        )
    except ValidationError as err:
        error = input_error_from_validation(err, source=source)
        parts = error.field.split(".", 2)
        if order_field is None or len(parts) < 2 or parts[0] != "orders" or not parts[1].isdigit():
            raise error from None
        index = int(parts[1])
        path = parts[2] if len(parts) > 2 else ""
        reason = f"{path}: {error.reason}" if path else error.reason
        raise InputError(order_field(index, path), reason, source=source) from None


@contextmanager
def at_line(field: str, source: str) -> Iterator[None]:
    """Report a value the model rejects under ``field`` (the file's line) and its path."""
    try:
        yield
    except ValidationError as err:
        error = input_error_from_validation(err)
        raise InputError(field, f"{error.field}: {error.reason}", source=source) from None


def finite_row(parts: list[str], field: str, source: str) -> list[float]:
    """The tokens of one row as finite numbers, else InputError(field, ...) naming the token."""
    values = []
    for token in parts:
        try:
            value = float(token)
        except ValueError:
            raise InputError(field, f"non-numeric value {token!r}", source=source) from None
        if not math.isfinite(value):
            raise InputError(field, f"non-finite value {token!r}", source=source)
        values.append(value)
    return values


def whole_number(token: str, field: str, what: str, source: str) -> int:
    """A count such as a fleet size or a capacity: a non-negative whole number."""
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        raise InputError(field, f"{what} must be a whole number >= 0, got {token!r}", source=source)
    return int(value)


def whole_value(value: float, field: str, what: str, source: str) -> int:
    """A finite number read from a row that must be whole (an id, a demand), else InputError."""
    if value != int(value):
        raise InputError(field, f"{what} must be a whole number, got {value:g}", source=source)
    return int(value)


def _first_numeric_row(
    lines: list[str], start: int, stop: int, source: str
) -> tuple[int, list[str]]:
    for i in range(start, stop):
        parts = lines[i].split()
        if parts and all(_is_number(p) for p in parts):
            return i, parts
    raise InputError("VEHICLE", "no NUMBER/CAPACITY row found", source=source)
