"""Li & Lim PDPTW files: ``K Q S`` then ``id x y demand early late service pickup delivery``.

Each pickup/delivery pair becomes one Order: the order's own fields are the delivery task (its
id is the delivery task number) and ``pickup`` is the pickup task (its id the pickup task number).
Distances are Euclidean in double precision in the literature; inside they are integer
thousandths (``metres_per_unit=1000``, rounded), reported back through ``distance_divisor``,
and so are times. Errors speak the file's units, naming the column and the value as written.
"""

from __future__ import annotations

from pathlib import Path

from scenarios.errors import InputError
from scenarios.geo import Location, TimeWindow
from scenarios.io.solomon import (
    _read_text,
    at_line,
    file_time,
    file_window,
    finite_row,
    fleet_scenario,
    whole_number,
    whole_value,
    window_inside,
)
from scenarios.model import Order, PickupSpec, Scenario, SourceInfo
from scenarios.travel import EuclideanTravel

SCALE = 1000


def read_lilim(path: str | Path) -> Scenario:
    """Read a Li & Lim PDPTW file into a Scenario."""
    p = Path(path)
    return parse_lilim(_read_text(p), source=str(p), name=p.stem)


def parse_lilim(text: str, *, source: str = "<text>", name: str = "lilim") -> Scenario:
    """Parse Li & Lim text; errors name the line and the reason."""
    rows: list[tuple[int, list[float]]] = []
    tokens_at: dict[int, list[str]] = {}  # the tokens of each line, as written
    for lineno, line in enumerate(text.splitlines()):
        parts = line.split()
        if not parts:
            continue
        rows.append((lineno + 1, finite_row(parts, f"line {lineno + 1}", source)))
        tokens_at[lineno + 1] = parts
    if len(rows) < 3 or len(rows[0][1]) < 2:
        raise InputError(
            "file", "not a Li & Lim file: expected 'K Q S' then task rows", source=source
        )
    head_line, header = rows[0]
    num_vehicles, capacity = (
        whole_number(token, f"line {head_line}", what, source)
        for token, what in zip(
            tokens_at[head_line][:2], ("K (vehicles)", "Q (capacity)"), strict=True
        )
    )
    speed = header[2] if len(header) > 2 and header[2] > 0 else 1.0
    tasks: dict[int, tuple[int, list[float]]] = {}
    for lineno, row in rows[1:]:
        if len(row) != 9:
            raise InputError(
                f"line {lineno}", f"expected 9 columns, found {len(row)}", source=source
            )
        field = f"line {lineno}"
        task_id = whole_number(tokens_at[lineno][0], field, "the task id", source)
        for k, what in ((3, "the demand"), (7, "the pickup number"), (8, "the delivery number")):
            whole_value(row[k], tokens_at[lineno][k], field, what, source)
        if task_id in tasks:
            raise InputError(
                f"line {lineno}",
                f"task {task_id} is given twice (also line {tasks[task_id][0]})",
                source=source,
            )
        tasks[task_id] = (lineno, row)
    if 0 not in tasks:
        raise InputError("task 0", "missing depot row (task 0)", source=source)
    depot_at, depot = tasks[0]
    depot_window = file_window(
        depot, tokens_at[depot_at], _COLUMNS, (4, 5), f"line {depot_at}", source, SCALE
    )
    with at_line(f"line {depot_at}", source, SCALE):
        depot_loc = Location(x=depot[1], y=depot[2])
        horizon = TimeWindow(start_s=depot_window[0], end_s=depot_window[1])

    def window(row: list[float], lineno: int, what: str) -> TimeWindow:
        """The task's window, checked against the depot's in the file's units."""
        start, end = window_inside(
            row,
            tokens_at[lineno],
            depot_window,
            tokens_at[depot_at],
            _COLUMNS,
            f"the depot's, line {depot_at}",
            f"line {lineno}",
            source,
            SCALE,
            what,
        )
        return TimeWindow(start_s=start, end_s=end)

    def service_s(row: list[float], lineno: int) -> int:
        token = tokens_at[lineno][6]
        return file_time(row[6], token, _COLUMNS[6], f"line {lineno}", source, SCALE)

    orders = []
    order_lines: list[tuple[int, int]] = []  # (delivery line, pickup line) of each order
    paired: set[int] = set()
    for task_id, (lineno, row) in sorted(tasks.items()):
        if task_id == 0:
            continue
        pickup_ref, delivery_ref = int(row[7]), int(row[8])
        if delivery_ref > 0:
            if pickup_ref > 0:
                raise InputError(
                    f"line {lineno}",
                    f"task {task_id} names both a pickup ({pickup_ref}) and a delivery "
                    f"({delivery_ref})",
                    source=source,
                )
            continue  # a pickup: read together with its delivery
        if pickup_ref <= 0:
            raise InputError(
                f"line {lineno}",
                f"task {task_id} is neither a pickup nor a delivery",
                source=source,
            )
        if pickup_ref not in tasks:
            raise InputError(
                f"line {lineno}",
                f"delivery {task_id} names unknown pickup {pickup_ref}",
                source=source,
            )
        p_line, p_row = tasks[pickup_ref]
        if int(p_row[8]) != task_id:
            raise InputError(
                f"line {p_line}",
                f"pickup {pickup_ref} names delivery {int(p_row[8])}, not {task_id}",
                source=source,
            )
        if row[3] != -p_row[3]:
            raise InputError(
                f"line {lineno}",
                f"delivery {task_id} has demand {tokens_at[lineno][3]}, but its pickup "
                f"{pickup_ref} picks up {tokens_at[p_line][3]} (a delivery's demand is minus "
                "its pickup's)",
                source=source,
            )
        paired.add(pickup_ref)
        p_window, p_service = window(p_row, p_line, "pickup"), service_s(p_row, p_line)
        with at_line(f"line {p_line}", source, SCALE):
            pickup = PickupSpec(
                id=str(pickup_ref),
                location=Location(x=p_row[1], y=p_row[2]),
                time_windows=[p_window],
                service_s=p_service,
            )
        d_window, d_service = window(row, lineno, "delivery"), service_s(row, lineno)
        with at_line(f"line {lineno}", source, SCALE):
            order = Order(
                id=str(task_id),
                location=Location(x=row[1], y=row[2]),
                demand=[int(p_row[3])],
                time_windows=[d_window],
                service_s=d_service,
                pickup=pickup,
            )
        orders.append(order)
        order_lines.append((lineno, p_line))
    for task_id, (lineno, row) in sorted(tasks.items()):
        delivery_ref = int(row[8])
        if task_id != 0 and delivery_ref > 0 and task_id not in paired:
            known = "is not in the file" if delivery_ref not in tasks else "is not a delivery of it"
            raise InputError(
                f"line {lineno}",
                f"pickup {task_id} names delivery {delivery_ref}, which {known}",
                source=source,
            )

    def make_travel() -> EuclideanTravel:
        with at_line(f"line {head_line}", source):  # the header gives the speed
            return EuclideanTravel(metres_per_unit=SCALE, speed_m_per_s=speed, rounding="round")

    return fleet_scenario(
        name=name,
        horizon=horizon,
        depot=depot_loc,
        num_vehicles=num_vehicles,
        capacity=capacity,
        orders=orders,
        make_travel=make_travel,
        info=SourceInfo(
            format="lilim",
            name=name,
            path=source,
            distance_divisor=SCALE,
            time_divisor=SCALE,
            notes="Euclidean distances in integer thousandths",
        ),
        fleet_field=f"line {head_line}",
        source=source,
        order_field=lambda i, path: f"line {order_lines[i][path.startswith('pickup')]}",
        time_scale=SCALE,
    )


#: the columns of a Li & Lim task row, as errors name them
_COLUMNS = (
    "task number",
    "x",
    "y",
    "demand",
    "early time",
    "late time",
    "service time",
    "pickup number",
    "delivery number",
)
