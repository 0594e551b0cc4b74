"""Solomon and Gehring-Homberger VRPTW files (the same text format).

Distances and travel times follow the DIMACS VRPTW convention: each arc is truncated to one
decimal. Inside the model that is exact integer arithmetic in tenths (``metres_per_unit=10``,
``rounding="floor"``, speed 1), and ``source.distance_divisor = 10`` converts back, so a
reported distance compares directly with ``dimacs_distance`` in the benchmark tables.
Times (ready, due, service) are scaled by 10 the same way. Errors speak the file's units: a
time the model would refuse once scaled (negative, past :data:`~scenarios.geo.MAX_INT`, a window
outside the depot's) is refused here, naming the column and the value as written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from scenarios.errors import InputError, input_error_from_validation
from scenarios.files import read_limited
from scenarios.geo import MAX_INT, Location, TimeWindow
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
    rows: list[tuple[int, list[float], list[str]]] = []
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
        whole_value(row[0], parts[0], f"line {lineno + 1}", "the customer number", source)
        seen[row[0]] = lineno
        rows.append((lineno, row, parts[:7]))
    if len(rows) < 2:
        raise InputError("CUSTOMER", "needs a depot row and at least one customer", source=source)
    depot_at, depot, depot_tokens = rows[0]
    if depot[0] != 0:  # a file missing its depot row: customer 1 was taken for it and dropped
        raise InputError(
            f"line {depot_at + 1}",
            f"the first CUSTOMER row must be the depot, customer 0, not customer {depot_tokens[0]}",
            source=source,
        )
    depot_field = f"line {depot_at + 1}"
    horizon_window = file_window(depot, depot_tokens, _COLUMNS, (4, 5), depot_field, source, SCALE)
    with at_line(depot_field, source, SCALE):
        depot_loc = Location(x=depot[1], y=depot[2])
        horizon = TimeWindow(start_s=horizon_window[0], end_s=horizon_window[1])
    orders = []
    order_lines: list[str] = []
    for lineno, row, tokens in rows[1:]:
        cust, x, y, demand, _, _, service = row
        field = f"line {lineno + 1}"
        if demand < 0:
            raise InputError(field, f"negative demand {tokens[3]}", source=source)
        units = whole_value(demand, tokens[3], field, "the demand", source)
        window = window_inside(
            row,
            tokens,
            horizon_window,
            depot_tokens,
            _COLUMNS,
            f"the depot's, line {depot_at + 1}",
            field,
            source,
            SCALE,
        )
        service_s = file_time(service, tokens[6], _COLUMNS[6], field, source, SCALE)
        order_lines.append(field)
        with at_line(field, source, SCALE):
            orders.append(
                Order(
                    id=str(int(cust)),
                    location=Location(x=x, y=y),
                    demand=[units],
                    time_windows=[TimeWindow(start_s=window[0], end_s=window[1])],
                    service_s=service_s,
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
        time_scale=SCALE,
    )


#: the columns of a Solomon CUSTOMER row, as errors name them
_COLUMNS = (
    "customer number",
    "x",
    "y",
    "demand",
    "ready time",
    "due date",
    "service time",
)


def file_time(value: float, token: str, column: str, field: str, source: str, scale: int) -> int:
    """A time of a benchmark file row in the model's units (``value`` x ``scale``, rounded).

    InputError under ``field`` naming ``column`` and the value as written (``token``) when it
    is negative or the scaled value passes :data:`~scenarios.geo.MAX_INT`: the model's
    refusal named the scaled value (ten or a thousand times the file's).
    """
    if value < 0:
        raise InputError(field, f"{column} {token} is negative; a time must be >= 0", source=source)
    scaled = round(value * scale)
    if scaled > MAX_INT:
        raise InputError(
            field,
            f"{column} {token} is larger than the largest time, {file_units(MAX_INT, scale)}",
            source=source,
        )
    return scaled


def file_window(
    row: list[float],
    tokens: list[str],
    columns: tuple[str, ...],
    at: tuple[int, int],
    field: str,
    source: str,
    scale: int,
) -> tuple[int, int]:
    """The window of columns ``at`` (start, end) of a row in the model's units; InputError in
    the file's units, naming the columns and values as written, when it ends before it starts
    or a time is one :func:`file_time` refuses."""
    lo, hi = at
    if row[hi] < row[lo]:
        raise InputError(
            field,
            f"{columns[hi]} {tokens[hi]} is before {columns[lo]} {tokens[lo]}",
            source=source,
        )
    return (
        file_time(row[lo], tokens[lo], columns[lo], field, source, scale),
        file_time(row[hi], tokens[hi], columns[hi], field, source, scale),
    )


def window_inside(
    row: list[float],
    tokens: list[str],
    horizon: tuple[int, int],
    horizon_tokens: list[str],
    columns: tuple[str, ...],
    whose: str,
    field: str,
    source: str,
    scale: int,
    what: str = "delivery",
) -> tuple[int, int]:
    """The window (columns 4 and 5: ready time, due date) of a row in the model's units, as
    :func:`file_window` reads it; InputError under ``field`` when it lies entirely outside
    ``horizon`` (in the model's units, as the model decides; read from ``horizon_tokens``,
    the row ``whose`` names), written as the file writes both: the model's refusal named
    both scaled."""
    window = file_window(row, tokens, columns, (4, 5), field, source, scale)
    if window[1] < horizon[0] or window[0] > horizon[1]:
        raise InputError(
            field,
            f"the window [{tokens[4]}, {tokens[5]}] ({columns[4]}, {columns[5]}) lies entirely "
            f"outside the horizon [{horizon_tokens[4]}, {horizon_tokens[5]}] ({whose}): the "
            f"{what} could never be made in it",
            source=source,
        )
    return window


def file_units(value: int, scale: int) -> str:
    """A value in the model's units (``scale`` per file unit) as the file writes it (no
    trailing zeros: 912, 91.2, 0.005)."""
    whole, part = divmod(value, scale)
    if not part:
        return str(whole)
    places = len(str(scale)) - 1
    return f"{whole}.{part:0{places}d}".rstrip("0")


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
    time_scale: int = 1,
) -> Scenario:
    """A benchmark file's scenario: ``num_vehicles`` alike vehicles at the depot, one dimension.

    Vehicles ``1..num_vehicles`` start at ``depot``, work the whole ``horizon`` and carry
    ``capacity`` of the one capacity dimension ``demand``; a value the model rejects for them
    is reported under ``fleet_field`` (where the file gives the fleet) of file ``source``.
    ``make_travel`` is called after the vehicles are made, so a bad fleet is reported first.
    A fleet of more than :data:`MAX_FLEET` vehicles is refused before any is made. A rule the
    scenario checks across fields (a window outside the horizon) is reported under
    ``order_field(i, path)``, the place in the file of field ``path`` of ``orders[i]``.
    ``time_scale``: the model's time units per file unit; a refusal the reader did not make
    in the file's units says the scale (:func:`scale_note`).
    """
    if num_vehicles > MAX_FLEET:
        raise InputError(
            fleet_field,
            f"{num_vehicles:,} vehicles, more than the {MAX_FLEET:,} a benchmark file may have",
            source=source,
        )
    with at_line(fleet_field, source, time_scale):
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
            reason = error.reason + scale_note(time_scale, error.field)
            raise InputError(error.field, reason, source=source) from None
        index = int(parts[1])
        path = parts[2] if len(parts) > 2 else ""
        reason = (f"{path}: {error.reason}" if path else error.reason) + scale_note(
            time_scale, error.field
        )
        raise InputError(order_field(index, path), reason, source=source) from None


#: the model fields (path parts) that hold times, or windows of them
_TIME_PARTS = frozenset({"time_windows", "shift", "horizon", "window", "breaks"})


def scale_note(scale: int, field: str) -> str:
    """What a refusal of the model's field ``field`` (a dotted path) says after its reason when
    the reader scaled the file's times (``scale`` model units per file unit) and the field is
    a time: its times are not the file's."""
    parts = field.split(".")
    if scale == 1 or not any(p.endswith("_s") or p in _TIME_PARTS for p in parts):
        return ""
    return f" (times in the model's units: the file's x {scale})"


@contextmanager
def at_line(field: str, source: str, time_scale: int = 1) -> Iterator[None]:
    """Report a value the model rejects under ``field`` (the file's line) and its path
    (``time_scale``: see :func:`scale_note`)."""
    try:
        yield
    except ValidationError as err:
        error = input_error_from_validation(err)
        reason = f"{error.field}: {error.reason}{scale_note(time_scale, error.field)}"
        raise InputError(field, reason, source=source) from None


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


def whole_value(value: float, token: str, field: str, what: str, source: str) -> int:
    """A finite number read from a row that must be whole (an id, a demand), else InputError
    quoting ``token``, the value as the file writes it (``3.50``, not the parsed 3.5)."""
    if value != int(value):
        raise InputError(field, f"{what} must be a whole number, got {token!r}", source=source)
    return int(value)


def _first_numeric_row(
    lines: list[str], start: int, stop: int, source: str
) -> tuple[int, list[str]]:
    for i in range(start, stop):
        parts = lines[i].split()
        if parts and all(_is_number(p) for p in parts):
            return i, parts
    raise InputError("VEHICLE", "no NUMBER/CAPACITY row found", source=source)
