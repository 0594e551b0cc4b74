"""VROOM-style JSON problems (``jobs``, ``shipments``, ``vehicles``, ``matrices``).

Follows the VROOM API (``docs/API.md`` of VROOM-Project/vroom, v1.14): coordinates are
``[lon, lat]``, times in seconds, distances in metres, ids unsigned integers.

Mapping into the domain model:

- a job becomes an Order (id ``str(job.id)``); its load is ``delivery + pickup`` per
  dimension (the deprecated ``amount`` counts as ``delivery``), which is exact for pure
  delivery or pure pickup routes and conservative for mixed ones; ``setup`` is added to
  ``service_s``;
- a shipment becomes an Order whose own fields are the delivery and whose ``pickup`` is the
  pickup step (order id = delivery id, pickup id = pickup id; if any id collides with a job
  id they become ``d<id>`` / ``p<id>``);
- a vehicle keeps start/end, capacity, skills, ``time_window`` (shift), breaks (first window
  meeting the ``time_window``, duration ``service``; a break none of whose windows does is an
  error naming it), ``costs`` (``fixed``/``per_hour``/``per_km``, read as cents) and
  ``max_distance``; an omitted ``start`` or ``end`` (open route) becomes a virtual location
  with zero travel to and from everything, so open routes stay exact;
- ``matrices.<profile>.durations`` / ``distances`` (or the legacy ``matrix``) give a
  MatrixTravel (without distances, distance = duration; a non-zero diagonal is set to zero
  and noted); otherwise coordinates give
  haversine travel with a 1.3 detour factor at 10 m/s, an offline stand-in for the routing
  engine VROOM would call (with an open route the haversine values are tabulated into a
  matrix so the virtual location fits).

Fields with no counterpart (``speed_factor``, ``max_tasks``, ``max_travel_time``, break
``max_load``, vehicle ``steps``, a ``costs`` matrix, extra break windows) are listed in
``source.notes`` as ignored. Bad input raises InputError naming the JSON path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from scenarios.bulk import collector_paused
from scenarios.errors import InputError, input_error_from_validation
from scenarios.files import read_limited
from scenarios.geo import MAX_INT
from scenarios.io.json_io import (
    LONE_SURROGATE_REASON,
    check_unique_keys,
    has_surrogate_escape,
    json_error_where,
    loads,
    surrogate_string_field,
    utf8_refusal,
)
from scenarios.model import Scenario
from scenarios.travel import haversine_m

HAVERSINE_DETOUR = 1.3
HAVERSINE_SPEED_M_PER_S = 10.0
MAX_PRIORITY = 100
DEFAULT_PER_HOUR = 3600


def read_vroom(path: str | Path) -> Scenario:
    """Read a VROOM-style JSON problem file into a Scenario."""
    p = Path(path)
    try:
        raw = read_limited(p)
    except FileNotFoundError:
        raise InputError("path", "file not found", source=str(p)) from None
    except IsADirectoryError:
        raise InputError("path", "is a directory, expected a file", source=str(p)) from None
    return vroom_from_bytes(raw, source=str(p), name=p.stem)


def vroom_from_bytes(raw: bytes, *, source: str, name: str = "vroom") -> Scenario:
    """Parse the bytes of a VROOM-style JSON problem (a file's, stdin's) into a Scenario;
    errors name ``source`` (a string holding a lone UTF-16 surrogate, its JSON path)."""
    refused = utf8_refusal(raw)  # JSON in UTF-16 or UTF-32: "not UTF-8 text" said no more
    if refused is not None:
        raise InputError("file", refused, source=source)
    try:
        text = raw.decode("utf-8-sig")  # a BOM, as editors on Windows save it
    except UnicodeDecodeError:
        raise InputError("file", "not UTF-8 text", source=source) from None
    if has_surrogate_escape(text):  # refused naming it, as in a scenario's JSON
        where = surrogate_string_field(text)
        if where is not None:
            raise InputError(where, LONE_SURROGATE_REASON, source=source)
    with collector_paused():  # a large problem is many objects (scenarios.bulk)
        # one parse refusing a repeated key (``loads`` keeps its last value)
        checked = check_unique_keys(text, source=source)
        try:
            data = checked.value if checked.ok else loads(text)  # not JSON: loads says why
        except json.JSONDecodeError as err:
            reason = f"invalid JSON: {err.msg}{json_error_where(err)}"
            raise InputError("file", reason, source=source) from None
        return parse_vroom(data, source=source, name=name)


def parse_vroom(data: Any, *, source: str = "<json>", name: str = "vroom") -> Scenario:
    """Turn a parsed VROOM problem (dict) into a Scenario; errors name the JSON path."""
    reader = _VroomReader(source)
    scenario_data = reader.build(data, name)
    try:
        return Scenario.model_validate(scenario_data)
    except ValidationError as err:
        raise input_error_from_validation(err, source=source) from None


class _VroomReader:
    """Walks the JSON with the current path, so every error names the field."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.notes: list[str] = []
        self.counted: dict[str, int] = {}
        self.size: int | None = None
        self.size_from = ""

    # ------------------------------------------------------------------ checks

    def fail(self, path: str, reason: str) -> InputError:
        return InputError(path, reason, source=self.source)

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected an array, got {_kind(value)}")
        return value

    def uint(self, d: dict[str, Any], key: str, path: str, default: int | None = None) -> int:
        if key not in d:
            if default is None:
                raise self.fail(f"{path}.{key}", "required")
            return default
        return self.uint_value(d[key], f"{path}.{key}")

    def uint_value(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, f"must be a non-negative integer, got {value!r}")
        if value > MAX_INT:  # else the model rejects a field of the converted scenario
            raise self.fail(path, f"must be at most {MAX_INT:,}, got {value}")
        return value

    def coords(self, value: Any, path: str) -> tuple[float, float]:
        arr = self.array(value, path)
        if len(arr) < 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in arr[:2]
        ):
            raise self.fail(path, "expected a [lon, lat] array of two numbers")
        lon, lat = float(arr[0]), float(arr[1])
        if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
            raise self.fail(
                path, f"[{lon}, {lat}] is not [lon, lat] in range (are lon and lat swapped?)"
            )
        return lon, lat

    def amount(self, d: dict[str, Any], key: str, path: str) -> list[int] | None:
        if key not in d:
            return None
        values = [
            self.uint_value(v, f"{path}.{key}.{i}")
            for i, v in enumerate(self.array(d[key], f"{path}.{key}"))
        ]
        if self.size is None:
            self.size, self.size_from = len(values), f"{path}.{key}"
        elif len(values) != self.size:
            raise self.fail(
                f"{path}.{key}",
                f"has {len(values)} values but {self.size_from} has {self.size}",
            )
        return values

    def windows(self, value: Any, path: str) -> list[dict[str, int]]:
        """VROOM time windows: a non-empty array of sorted, disjoint ``[start, end]`` pairs."""
        arr = self.array(value, path)
        if not arr:
            raise self.fail(path, "must not be empty (omit it for no time constraint)")
        pairs = [self.window(w, f"{path}.{i}") for i, w in enumerate(arr)]
        for i in range(1, len(pairs)):
            if pairs[i][0] <= pairs[i - 1][1]:
                raise self.fail(
                    f"{path}.{i}",
                    f"windows must be sorted and disjoint; starts at {pairs[i][0]}, not after "
                    f"the previous window's end {pairs[i - 1][1]}",
                )
        return [{"start_s": start, "end_s": end} for start, end in pairs]

    def window(self, value: Any, path: str) -> tuple[int, int]:
        arr = self.array(value, path)
        if len(arr) != 2:
            raise self.fail(path, "expected [start, end]")
        start = self.uint_value(arr[0], f"{path}.0")
        end = self.uint_value(arr[1], f"{path}.1")
        if end < start:
            raise self.fail(path, f"ends at {end}, before it starts at {start}")
        return start, end

    def skills(self, d: dict[str, Any], path: str) -> list[str]:
        if "skills" not in d:
            return []
        arr = self.array(d["skills"], f"{path}.skills")
        return [str(self.uint_value(v, f"{path}.skills.{i}")) for i, v in enumerate(arr)]

    def priority(self, d: dict[str, Any], path: str) -> int:
        value = self.uint(d, "priority", path, 0)
        if value > MAX_PRIORITY:
            raise self.fail(f"{path}.priority", f"must be in [0, {MAX_PRIORITY}], got {value}")
        return value

    def ignore(self, what: str) -> None:
        self.count(f"ignored: {what}")

    def count(self, note: str) -> None:
        self.counted[note] = self.counted.get(note, 0) + 1

    # ------------------------------------------------------------------ build

    def build(self, data: Any, name: str) -> dict[str, Any]:
        root = self.obj(data, "(root)")
        vehicles = self.array(root.get("vehicles"), "vehicles") if "vehicles" in root else None
        if not vehicles:
            raise self.fail("vehicles", "at least one vehicle is required")
        jobs = self.array(root.get("jobs", []), "jobs")
        shipments = self.array(root.get("shipments", []), "shipments")
        if not jobs and not shipments:
            raise self.fail("jobs", "give at least one job or shipment")
        matrix = self._matrix(root, vehicles)
        use_index = matrix is not None

        # Tasks: locations first (they decide the travel model), then the orders.
        tasks = list(self._tasks(jobs, shipments))
        job_ids = [t["id"] for t in tasks if t["kind"] == "job"]
        pickup_ids = [t["pickup"]["id"] for t in tasks if t["kind"] == "shipment"]
        delivery_ids = [t["id"] for t in tasks if t["kind"] == "shipment"]
        self._check_unique(tasks)
        prefix = bool(
            set(job_ids) & set(delivery_ids) or set(job_ids + delivery_ids) & set(pickup_ids)
        )
        if prefix:
            self.notes.append("shipment ids collide with job ids: deliveries d<id>, pickups p<id>")

        vehicle_specs = [self._vehicle(v, f"vehicles.{i}") for i, v in enumerate(vehicles)]
        open_route = any(v["start"] is None or v["end"] is None for v in vehicle_specs)

        # Locations: (index or None, lon/lat or None) per task step and vehicle end.
        points: list[tuple[int | None, tuple[float, float] | None, str]] = []
        for t in tasks:
            points.append((t["index"], t["coords"], t["path"]))
            if t["kind"] == "shipment":
                points.append((t["pickup"]["index"], t["pickup"]["coords"], t["pickup"]["path"]))
        for i, v in enumerate(vehicle_specs):
            for end in ("start", "end"):
                if v[end] is not None:
                    points.append((v[end][0], v[end][1], f"vehicles.{i}.{end}"))

        travel: dict[str, Any]
        coord_index: dict[tuple[float, float], int] = {}
        virtual: int | None = None
        if use_index:
            assert matrix is not None
            durations, distances = matrix
            n = len(durations)
            for index, _, path in points:
                if index is None:
                    field = path + ("_index" if path.startswith("vehicles") else ".location_index")
                    raise self.fail(field, "required when a custom matrix is given")
                if index >= n:
                    raise self.fail(path, f"index {index} is outside the {n} x {n} matrix")
            if open_route:
                virtual = n
                durations = _with_virtual(durations)
                distances = _with_virtual(distances) if distances is not None else None
            if any(m is not None and any(m[i][i] for i in range(n)) for m in matrix):
                # the travel model requires it; VROOM would charge it only between two
                # consecutive visits at one place
                self.notes.append("matrix diagonal set to zero (travel to the same place)")
                durations = _zero_diagonal(durations)
                distances = _zero_diagonal(distances) if distances is not None else None
            travel = {"kind": "matrix", "duration_s": durations}
            if distances is not None:
                travel["distance_m"] = distances
            else:
                self.notes.append("no distances matrix: distance = duration")
        else:
            for _, coords, path in points:
                if coords is None:
                    where = path if path.startswith("vehicles") else f"{path}.location"
                    raise self.fail(where, "required (no custom matrix is given)")
            note = (
                f"travel: haversine x {HAVERSINE_DETOUR} at {HAVERSINE_SPEED_M_PER_S:g} m/s "
                "(offline stand-in for a routing engine)"
            )
            self.notes.append(note)
            if open_route:
                travel, coord_index = _haversine_matrix([c for _, c, _ in points if c])
                virtual = len(coord_index)
            else:
                travel = {
                    "kind": "haversine",
                    "speed_m_per_s": HAVERSINE_SPEED_M_PER_S,
                    "detour_factor": HAVERSINE_DETOUR,
                }

        def location(index: int | None, coords: tuple[float, float] | None) -> dict[str, Any]:
            loc: dict[str, Any] = {}
            if coords is not None:
                loc["lon"], loc["lat"] = coords
            if use_index:
                loc["index"] = index
            elif coord_index:
                assert coords is not None
                loc["index"] = coord_index[coords]
            return loc

        size = self.size or 0
        dims = (["amount"] if size == 1 else [f"amount_{i}" for i in range(size)]) or ["units"]
        orders = []
        for t in tasks:
            order: dict[str, Any] = {
                "id": f"d{t['id']}" if prefix and t["kind"] == "shipment" else str(t["id"]),
                "location": location(t["index"], t["coords"]),
                "time_windows": t["windows"],
                "service_s": t["service"],
                "priority": t["priority"],
                "required_skills": t["skills"],
            }
            if size:
                order["demand"] = t["load"] if t["load"] is not None else [0] * size
            if t["kind"] == "shipment":
                pk = t["pickup"]
                order["pickup"] = {
                    "id": f"p{pk['id']}" if prefix else str(pk["id"]),
                    "location": location(pk["index"], pk["coords"]),
                    "time_windows": pk["windows"],
                    "service_s": pk["service"],
                }
            orders.append(order)

        fleet = []
        for v in vehicle_specs:
            start, end = v["start"], v["end"]
            start_loc = location(*start) if start is not None else {"index": virtual}
            if end is None:
                end_loc: dict[str, Any] | None = {"index": virtual}
            else:
                end_loc = location(*end)
            vehicle: dict[str, Any] = {
                "id": str(v["id"]),
                "start_location": start_loc,
                "end_location": end_loc,
                "skills": v["skills"],
                "fixed_cost_cents": v["fixed"],
                "cost_per_hour_cents": v["per_hour"],
                "cost_per_km_cents": v["per_km"],
                "breaks": v["breaks"],
            }
            if v["capacity"] is not None:
                vehicle["capacity"] = v["capacity"]
            elif size:
                vehicle["capacity"] = [0] * size  # as VROOM: no capacity = carries nothing
            if v["window"] is not None:
                vehicle["shift"] = {"start_s": v["window"][0], "end_s": v["window"][1]}
            if v["max_distance"] is not None:
                vehicle["max_distance_m"] = v["max_distance"]
            fleet.append(vehicle)
        if virtual is not None:
            self.notes.append(
                f"open routes: a missing start/end is the virtual location index {virtual} "
                "(zero travel to and from every location)"
            )

        horizon = self._horizon(tasks, vehicle_specs, travel)
        for note, count in sorted(self.counted.items()):
            self.notes.append(f"{note} ({count}x)")
        return {
            "name": name,
            "horizon": {"start_s": horizon[0], "end_s": horizon[1]},
            "travel": travel,
            "capacity_dims": dims,
            "orders": orders,
            "vehicles": fleet,
            "source": {
                "format": "vroom",
                "name": name,
                "path": self.source,
                "notes": "; ".join(self.notes) or None,
            },
        }

    # ------------------------------------------------------------------ parts

    def _matrix(
        self, root: dict[str, Any], vehicles: list[Any]
    ) -> tuple[list[list[int]], list[list[int]] | None] | None:
        profiles = []
        for i, v in enumerate(vehicles):
            vd = self.obj(v, f"vehicles.{i}")
            profile = vd.get("profile", "car")
            if not isinstance(profile, str):
                raise self.fail(f"vehicles.{i}.profile", "must be a string")
            profiles.append(profile)
        if "matrices" in root:
            matrices = self.obj(root["matrices"], "matrices")
            profile = profiles[0]
            for i, other in enumerate(profiles):
                if other != profile:
                    raise self.fail(
                        f"vehicles.{i}.profile",
                        f"vehicles use several routing profiles ({profile}, {other}); "
                        "a scenario has one travel model",
                    )
            if profile not in matrices:
                raise self.fail(f"matrices.{profile}", f"no matrix for profile {profile!r}")
            entry = self.obj(matrices[profile], f"matrices.{profile}")
            if "durations" not in entry:
                raise self.fail(f"matrices.{profile}.durations", "required")
            durations = self._square(entry["durations"], f"matrices.{profile}.durations")
            distances = None
            if "distances" in entry:
                distances = self._square(entry["distances"], f"matrices.{profile}.distances")
                if len(distances) != len(durations):
                    raise self.fail(
                        f"matrices.{profile}.distances",
                        f"is {len(distances)} x {len(distances)}, durations is "
                        f"{len(durations)} x {len(durations)}",
                    )
            if "costs" in entry:
                self.ignore("costs matrix")
            return durations, distances
        if "matrix" in root:
            return self._square(root["matrix"], "matrix"), None
        return None

    def _square(self, value: Any, path: str) -> list[list[int]]:
        rows = self.array(value, path)
        n = len(rows)
        out = []
        for i, row in enumerate(rows):
            r = self.array(row, f"{path}.{i}")
            if len(r) != n:
                raise self.fail(
                    f"{path}.{i}", f"row has {len(r)} entries; matrix must be square ({n} x {n})"
                )
            for j, x in enumerate(r):
                self.uint_value(x, f"{path}.{i}.{j}")
            out.append(r)
        return out

    def _step(self, d: dict[str, Any], path: str) -> dict[str, Any]:
        """Location, service and windows of a job or shipment step."""
        index = self.uint(d, "location_index", path) if "location_index" in d else None
        coords = self.coords(d["location"], f"{path}.location") if "location" in d else None
        setup = self.uint(d, "setup", path, 0)
        service = self.uint(d, "service", path, 0)
        if setup:
            self.count("setup added to service")
        windows = (
            self.windows(d["time_windows"], f"{path}.time_windows") if ("time_windows" in d) else []
        )
        return {
            "id": self.uint(d, "id", path),
            "index": index,
            "coords": coords,
            "service": setup + service,
            "windows": windows,
            "path": path,
        }

    def _tasks(self, jobs: list[Any], shipments: list[Any]) -> Iterator[dict[str, Any]]:
        for i, raw in enumerate(jobs):
            path = f"jobs.{i}"
            d = self.obj(raw, path)
            step = self._step(d, path)
            has_new = "delivery" in d or "pickup" in d
            delivery = self.amount(d, "delivery", path) if has_new else None
            if not has_new:
                delivery = self.amount(d, "amount", path)
            pickup = self.amount(d, "pickup", path)
            if pickup is not None and any(pickup):
                self.count("job pickup amounts counted in the load (delivery + pickup)")
            load = _add(delivery, pickup)
            yield {
                **step,
                "kind": "job",
                "load": load,
                "skills": self.skills(d, path),
                "priority": self.priority(d, path),
            }
        for i, raw in enumerate(shipments):
            path = f"shipments.{i}"
            d = self.obj(raw, path)
            if "pickup" not in d:
                raise self.fail(f"{path}.pickup", "required")
            if "delivery" not in d:
                raise self.fail(f"{path}.delivery", "required")
            p_step = self._step(self.obj(d["pickup"], f"{path}.pickup"), f"{path}.pickup")
            d_step = self._step(self.obj(d["delivery"], f"{path}.delivery"), f"{path}.delivery")
            yield {
                **d_step,
                "kind": "shipment",
                "pickup": p_step,
                "load": self.amount(d, "amount", path),
                "skills": self.skills(d, path),
                "priority": self.priority(d, path),
            }

    def _check_unique(self, tasks: list[dict[str, Any]]) -> None:
        seen: dict[tuple[str, int], str] = {}
        for t in tasks:
            entries = [("job" if t["kind"] == "job" else "delivery", t["id"], t["path"])]
            if t["kind"] == "shipment":
                entries.append(("pickup", t["pickup"]["id"], t["pickup"]["path"]))
            for kind, ident, path in entries:
                if (kind, ident) in seen:
                    raise self.fail(
                        f"{path}.id", f"duplicate {kind} id {ident} (also at {seen[(kind, ident)]})"
                    )
                seen[(kind, ident)] = path

    def _vehicle(self, raw: Any, path: str) -> dict[str, Any]:
        d = self.obj(raw, path)
        ends: dict[str, tuple[int | None, tuple[float, float] | None] | None] = {}
        for end in ("start", "end"):
            index = self.uint(d, f"{end}_index", path) if f"{end}_index" in d else None
            coords = self.coords(d[end], f"{path}.{end}") if end in d else None
            ends[end] = (index, coords) if index is not None or coords is not None else None
        if ends["start"] is None and ends["end"] is None:
            raise self.fail(f"{path}.start", "a vehicle needs a start or an end (or both)")
        capacity = self.amount(d, "capacity", path)
        window = None
        if "time_window" in d:
            window = self.window(d["time_window"], f"{path}.time_window")
        costs = self.obj(d.get("costs", {}), f"{path}.costs")
        breaks = []
        for j, raw_break in enumerate(self.array(d.get("breaks", []), f"{path}.breaks")):
            bpath = f"{path}.breaks.{j}"
            b = self.obj(raw_break, bpath)
            if "time_windows" not in b:
                raise self.fail(f"{bpath}.time_windows", "required")
            tws = self.windows(b["time_windows"], f"{bpath}.time_windows")
            service = self.uint(b, "service", bpath, 0)
            listed = len(tws)
            if window is not None and service > 0:
                # the first window that meets the vehicle's hours (a break window entirely
                # outside them could never be taken, and the scenario refuses it)
                meets = [w for w in tws if w["end_s"] >= window[0] and w["start_s"] <= window[1]]
                if not meets:
                    raise self.fail(
                        f"{bpath}.time_windows",
                        f"no window meets the vehicle's time_window [{window[0]}, {window[1]}]: "
                        "the break could never be taken",
                    )
                tws = meets
            if listed > 1:  # the first one meeting the vehicle's hours is kept
                self.ignore("break windows after the first")
            if "max_load" in b:
                self.ignore("break max_load")
            if service > 0:
                breaks.append({"window": tws[0], "duration_s": service})
        speed = d.get("speed_factor", 1.0)
        if isinstance(speed, bool) or not isinstance(speed, int | float) or speed <= 0:
            raise self.fail(f"{path}.speed_factor", f"must be a positive number, got {speed!r}")
        if speed != 1.0:
            self.ignore("vehicle speed_factor")
        for key in ("max_tasks", "max_travel_time", "steps"):
            if key in d:
                self.ignore(f"vehicle {key}")
        return {
            "id": self.uint(d, "id", path),
            "start": ends["start"],
            "end": ends["end"],
            "capacity": capacity,
            "skills": self.skills(d, path),
            "window": window,
            "breaks": breaks,
            "fixed": self.uint(costs, "fixed", f"{path}.costs", 0),
            "per_hour": self.uint(costs, "per_hour", f"{path}.costs", DEFAULT_PER_HOUR),
            "per_km": self.uint(costs, "per_km", f"{path}.costs", 0),
            "max_distance": self.uint(d, "max_distance", path) if "max_distance" in d else None,
        }

    def _horizon(
        self, tasks: list[dict[str, Any]], vehicles: list[dict[str, Any]], travel: dict[str, Any]
    ) -> tuple[int, int]:
        """Vehicle working hours if all are given, else from 0 to a bound no route exceeds.

        Either way it also covers every task window (the scenario refuses a window entirely
        outside its horizon; VROOM leaves such a task unassigned, and so does routing here,
        every vehicle's hours being given or the horizon).
        """
        windows = [v["window"] for v in vehicles]
        task_windows = []
        for t in tasks:
            task_windows += t["windows"]
            if t["kind"] == "shipment":
                task_windows += t["pickup"]["windows"]
        if all(w is not None for w in windows):
            return (
                min([w[0] for w in windows] + [w["start_s"] for w in task_windows]),
                max([w[1] for w in windows] + [w["end_s"] for w in task_windows]),
            )
        ends = [w[1] for w in windows if w is not None]
        ends += [w["end_s"] for w in task_windows]
        service = sum(t["service"] + t.get("pickup", {}).get("service", 0) for t in tasks)
        steps = sum(2 if t["kind"] == "shipment" else 1 for t in tasks) + 2
        bound = service + steps * _max_leg_s(travel, tasks, vehicles)
        latest = max(ends) if ends else 0
        return 0, min(max(latest, bound, 1), MAX_INT)  # a bound, capped at the model's limit


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _add(a: list[int] | None, b: list[int] | None) -> list[int] | None:
    if a is None:
        return b
    if b is None:
        return a
    return [x + y for x, y in zip(a, b, strict=True)]


def _zero_diagonal(matrix: list[list[int]]) -> list[list[int]]:
    """A copy of the matrix with zero travel from each location to itself."""
    return [[0 if i == j else x for j, x in enumerate(row)] for i, row in enumerate(matrix)]


def _with_virtual(matrix: list[list[int]]) -> list[list[int]]:
    """The matrix with one more location at zero travel from and to every other."""
    n = len(matrix)
    return [[*row, 0] for row in matrix] + [[0] * (n + 1)]


def _haversine_matrix(
    coords: list[tuple[float, float]],
) -> tuple[dict[str, Any], dict[tuple[float, float], int]]:
    """Tabulate haversine travel between distinct coordinates, plus one virtual location."""
    index: dict[tuple[float, float], int] = {}
    for c in coords:
        index.setdefault(c, len(index))
    latlon = np.array([[lat, lon] for lon, lat in index], dtype=np.float64)
    metres = haversine_m(latlon, latlon) * HAVERSINE_DETOUR
    dist = np.floor(metres + 0.5).astype(np.int64)
    dur = np.floor(dist / HAVERSINE_SPEED_M_PER_S + 0.5).astype(np.int64)
    travel = {
        "kind": "matrix",
        "duration_s": _with_virtual(dur.tolist()),
        "distance_m": _with_virtual(dist.tolist()),
    }
    return travel, index


def _max_leg_s(
    travel: dict[str, Any], tasks: list[dict[str, Any]], vehicles: list[dict[str, Any]]
) -> int:
    """The longest single leg the travel model can produce (s)."""
    if travel["kind"] == "matrix":
        return max((max(row) for row in travel["duration_s"] if row), default=0)
    coords = [t["coords"] for t in tasks]
    coords += [t["pickup"]["coords"] for t in tasks if t["kind"] == "shipment"]
    coords += [v[end][1] for v in vehicles for end in ("start", "end") if v[end] is not None]
    pts = np.array([[lat, lon] for lon, lat in coords], dtype=np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    diag = float(haversine_m(lo[None, :], hi[None, :])[0, 0]) * HAVERSINE_DETOUR
    return int(1.5 * diag / HAVERSINE_SPEED_M_PER_S) + 1  # margin: the box diagonal is approximate


__all__ = ["parse_vroom", "read_vroom"]
