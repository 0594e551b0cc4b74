"""VROOM-style JSON problems: mapping into the domain model, open routes, and bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scenarios import InputError, Scenario
from scenarios.io import detect_format, load_scenario
from scenarios.io.vroom import parse_vroom

# The VROOM API example (coordinates [lon, lat]); vehicle 2 has no end: an open route.
COORDS: dict[str, Any] = {
    "vehicles": [
        {
            "id": 1,
            "start": [2.35044, 48.71764],
            "end": [2.35044, 48.71764],
            "capacity": [4],
            "skills": [1, 14],
            "time_window": [28800, 43200],
            "breaks": [{"id": 1, "service": 300, "time_windows": [[32400, 34200]]}],
        },
        {
            "id": 2,
            "start": [2.35044, 48.71764],
            "capacity": [4],
            "skills": [2, 14],
            "time_window": [28800, 43200],
            "costs": {"fixed": 500, "per_km": 20},
        },
    ],
    "jobs": [
        {
            "id": 1,
            "service": 300,
            "delivery": [1],
            "location": [1.98935, 48.701],
            "skills": [1],
            "time_windows": [[32400, 36000]],
        },
        {"id": 2, "service": 300, "pickup": [1], "location": [2.03655, 48.61128], "skills": [1]},
        {"id": 5, "service": 300, "delivery": [1], "location": [2.28325, 48.5958]},
        {"id": 6, "service": 300, "amount": [1], "location": [2.89357, 48.90736]},
    ],
    "shipments": [
        {
            "amount": [1],
            "skills": [2],
            "pickup": {"id": 4, "service": 300, "location": [2.41808, 49.22619]},
            "delivery": {"id": 3, "service": 300, "location": [2.39719, 49.07611]},
        }
    ],
}

DUR = [
    [0, 600, 900, 1200, 700, 800],
    [600, 0, 500, 900, 650, 700],
    [900, 500, 0, 400, 800, 900],
    [1200, 900, 400, 0, 1000, 1100],
    [700, 650, 800, 1000, 0, 300],
    [800, 700, 900, 1100, 300, 0],
]

# Custom matrices, two capacity dimensions, a shipment whose ids collide with job ids.
MATRIX: dict[str, Any] = {
    "vehicles": [
        {
            "id": 7,
            "start_index": 0,
            "end_index": 0,
            "capacity": [5, 50],
            "skills": [1],
            "time_window": [0, 20000],
            "costs": {"fixed": 100, "per_hour": 3000, "per_km": 12},
            "breaks": [
                {"id": 1, "service": 600, "time_windows": [[3000, 4000], [8000, 9000]]},
            ],
        },
        {"id": 8, "start_index": 0, "capacity": [5, 50], "time_window": [0, 20000]},
    ],
    "jobs": [
        {
            "id": 1,
            "location_index": 1,
            "service": 300,
            "delivery": [1, 10],
            "time_windows": [[0, 3000], [4500, 6000]],
        },
        {
            "id": 2,
            "location_index": 2,
            "service": 300,
            "setup": 60,
            "delivery": [2, 5],
            "skills": [1],
            "priority": 50,
        },
        {
            "id": 3,
            "location_index": 3,
            "service": 120,
            "delivery": [1, 1],
            "location": [4.35, 50.85],
        },
    ],
    "shipments": [
        {
            "amount": [2, 20],
            "pickup": {"id": 1, "location_index": 4, "service": 60},
            "delivery": {
                "id": 9,
                "location_index": 5,
                "service": 60,
                "time_windows": [[1000, 9000]],
            },
        }
    ],
    "matrices": {"car": {"durations": DUR, "distances": [[10 * x for x in row] for row in DUR]}},
}


def _write(tmp_path: Path, data: dict[str, Any], name: str = "problem.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_coordinates_example(tmp_path: Path) -> None:
    path = _write(tmp_path, COORDS)
    assert detect_format(path) == "vroom"
    s = load_scenario(path)
    assert s.source.format == "vroom"
    assert [o.id for o in s.orders] == ["1", "2", "5", "6", "3"]
    assert s.capacity_dims == ["amount"]
    assert [o.demand for o in s.orders] == [[1], [1], [1], [1], [1]]
    j1 = s.order("1")
    assert (j1.location.lat, j1.location.lon) == (48.701, 1.98935)  # [lon, lat] in the file
    assert j1.required_skills == ["1"] and j1.service_s == 300
    assert j1.time_windows[0].start_s == 32400
    shipment = s.order("3")
    assert shipment.pickup is not None and shipment.pickup_id == "4"
    v1, v2 = s.vehicles
    assert v1.shift is not None and (v1.shift.start_s, v1.shift.end_s) == (28800, 43200)
    assert v1.breaks[0].duration_s == 300 and v1.cost_per_hour_cents == 3600  # VROOM default
    assert (v2.fixed_cost_cents, v2.cost_per_km_cents) == (500, 20)
    assert (s.horizon.start_s, s.horizon.end_s) == (28800, 43200)
    # Vehicle 2 has no end: a virtual location with zero travel to and from everywhere.
    assert s.travel.kind == "matrix" and v2.end.index == s.travel.size - 1
    m = s.travel.matrix([j1.location, v2.end, s.order("6").location])
    assert m.duration_s[0, 1] == m.duration_s[1, 2] == m.distance_m[1, 0] == 0
    assert m.distance_m[0, 2] > 60_000  # about 66 km as the crow flies, x 1.3 detour
    assert "haversine" in (s.source.notes or "") and "open routes" in (s.source.notes or "")


def test_coordinates_without_open_routes_stay_haversine() -> None:
    data = copy.deepcopy(COORDS)
    data["vehicles"][1]["end"] = data["vehicles"][1]["start"]
    s = parse_vroom(data)
    assert s.travel.kind == "haversine"
    assert all(o.location.index is None for o in s.orders)


def test_matrix_example(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, MATRIX))
    assert s.travel.kind == "matrix" and s.travel.size == 7  # 6 + the virtual end
    assert s.capacity_dims == ["amount_0", "amount_1"]
    assert [o.id for o in s.orders] == ["1", "2", "3", "d9"]  # ids collide: prefixed
    pair = s.order("d9")
    assert pair.pickup is not None and pair.pickup_id == "p1"
    assert pair.demand == [2, 20]
    assert s.order("2").service_s == 360  # setup + service
    assert s.order("2").priority == 50
    assert s.order("3").location.lat == 50.85 and s.order("3").location.index == 3
    assert len(s.order("1").time_windows) == 2
    v7, v8 = s.vehicles
    assert v7.breaks[0].window.end_s == 4000  # the first window is kept
    assert v7.end.index == 0 and v8.end.index == 6
    m = s.travel.matrix([v7.start_location, s.order("3").location])
    assert (m.duration_s[0, 1], m.distance_m[0, 1]) == (1200, 12000)
    notes = s.source.notes or ""
    assert "ignored: break windows after the first" in notes
    assert "setup added to service" in notes


def test_legacy_matrix_key() -> None:
    data: dict[str, Any] = {
        "vehicles": [{"id": 0, "start_index": 0, "end_index": 2}],
        "jobs": [{"id": 1, "location_index": 1}],
        "matrix": [[0, 5, 9], [5, 0, 4], [9, 4, 0]],
    }
    s = parse_vroom(data)
    assert (
        s.travel.matrix([s.vehicles[0].start_location, s.orders[0].location]).distance_m[0, 1] == 5
    )  # no distances: distance = duration
    assert s.horizon.end_s >= 9 * 3


def test_vroom_itself_reads_the_fixture_and_our_matrix_agrees(tmp_path: Path) -> None:
    vroom = pytest.importorskip("vroom")
    data = copy.deepcopy(MATRIX)
    path = _write(tmp_path, data)
    solution = vroom.Input.from_json(str(path)).solve(exploration_level=1, nb_threads=1)
    s = load_scenario(path)
    routes = solution.routes
    for vehicle_id, steps in routes.groupby("vehicle_id"):
        v = s.vehicle(str(vehicle_id))
        locs = []
        for step in steps.itertuples():
            if step.type == "start":
                locs.append(v.start_location)
            elif step.type == "end":
                locs.append(v.end)
            elif step.type == "job":
                locs.append(s.order(str(step.id)).location)
            elif step.type == "delivery":
                locs.append(s.order(f"d{step.id}").location)
            elif step.type == "pickup":
                pickup = next(o.pickup for o in s.orders if o.pickup_id == f"p{step.id}")
                assert pickup is not None
                locs.append(pickup.location)
        if steps.iloc[-1].type != "end":
            locs.append(v.end)  # open route: the virtual end costs nothing
        m = s.travel.matrix(locs)
        travel = sum(int(m.duration_s[i, i + 1]) for i in range(len(locs) - 1))
        assert travel == int(steps["duration"].iloc[-1])


def _bad(data: Any) -> InputError:
    with pytest.raises(InputError) as info:
        parse_vroom(data, source="p.json")
    return info.value


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with the dotted ``path`` set (``value=...`` deletes it)."""
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ([], "(root)", "expected an object"),
        (_with(MATRIX, "vehicles", []), "vehicles", "at least one vehicle"),
        (_with(MATRIX, "vehicles", ...), "vehicles", "at least one vehicle"),
        ({"vehicles": [{"id": 1, "start_index": 0}]}, "jobs", "at least one job or shipment"),
        (_with(MATRIX, "vehicles.1.start_index", ...), "vehicles.1.start", "a start or an end"),
        (_with(MATRIX, "vehicles.0.id", -1), "vehicles.0.id", "non-negative integer"),
        (_with(MATRIX, "jobs.0.location_index", 6), "jobs.0", "outside the 6 x 6 matrix"),
        (_with(MATRIX, "jobs.1.location_index", ...), "jobs.1.location_index", "required"),
        (
            _with(MATRIX, "shipments.0.pickup.location_index", ...),
            "shipments.0.pickup.location_index",
            "required when a custom matrix",
        ),
        (_with(COORDS, "jobs.2.location", ...), "jobs.2.location", "required (no custom matrix"),
        (
            _with(COORDS, "jobs.0.location", [48.7, 95.0]),
            "jobs.0.location",
            "lon and lat swapped",
        ),
        (_with(MATRIX, "jobs.0.service", 2.5), "jobs.0.service", "non-negative integer"),
        (
            _with(MATRIX, "jobs.0.time_windows.0", [3000, 10]),
            "jobs.0.time_windows.0",
            "before it starts",
        ),
        (
            _with(MATRIX, "jobs.0.time_windows.1", [10, 20]),
            "jobs.0.time_windows.1",
            "sorted and disjoint",
        ),
        (_with(MATRIX, "jobs.0.time_windows", []), "jobs.0.time_windows", "must not be empty"),
        (
            _with(MATRIX, "jobs.2.delivery", [1, 1, 1]),
            "jobs.2.delivery",
            "has 3 values but jobs.0.delivery has 2",
        ),
        (
            _with(MATRIX, "vehicles.0.capacity", [5]),
            "vehicles.0.capacity",
            "has 1 values but jobs.0.delivery has 2",
        ),
        (_with(MATRIX, "jobs.1.id", 1), "jobs.1.id", "duplicate job id 1 (also at jobs.0)"),
        (_with(MATRIX, "jobs.1.priority", 101), "jobs.1.priority", "[0, 100]"),
        (_with(MATRIX, "shipments.0.delivery", ...), "shipments.0.delivery", "required"),
        (
            _with(MATRIX, "matrices.car.durations.2", [0, 1]),
            "matrices.car.durations.2",
            "must be square",
        ),
        (
            _with(MATRIX, "matrices.car.distances", [[0]]),
            "matrices.car.distances",
            "durations is 6 x 6",
        ),
        (
            _with(MATRIX, "vehicles.1.profile", "bike"),
            "vehicles.1.profile",
            "several routing profiles",
        ),
        (_with(MATRIX, "vehicles.0.profile", "truck"), "vehicles.1.profile", "several"),
        (_with(MATRIX, "vehicles.0.speed_factor", 0), "vehicles.0.speed_factor", "positive"),
        (_with(MATRIX, "jobs.0.skills", ["a"]), "jobs.0.skills.0", "non-negative integer"),
        # past the model's limit: the error named horizon.end_s, not a field of the file
        (_with(MATRIX, "jobs.0.service", 10**20), "jobs.0.service", "at most 1,000,000,000,000"),
        (
            _with(MATRIX, "matrices.car.durations.0.1", 10**30),
            "matrices.car.durations.0.1",
            "at most 1,000,000,000,000",
        ),
        (
            _with(MATRIX, "vehicles.0.time_window", [0, 10**20]),
            "vehicles.0.time_window.1",
            "at most 1,000,000,000,000",
        ),
    ],
)
def test_bad_input_names_the_json_path(data: Any, field: str, reason: str) -> None:
    err = _bad(data)
    assert err.field == field
    assert reason in err.reason
    assert err.one_line() == f"p.json: {field}: {err.reason}"


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"vehicles": [\n  {"id": 1,, }]}')
    with pytest.raises(InputError) as info:
        load_scenario(path, "vroom")
    assert info.value.field == "file"
    assert "invalid JSON" in info.value.reason and "line 2" in info.value.reason


def test_result_is_a_valid_scenario(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, MATRIX))
    again = Scenario.model_validate_json(s.model_dump_json())
    assert again.model_dump() == s.model_dump()


def test_detects_vroom_when_jobs_come_late(tmp_path: Path) -> None:
    data = {
        "vehicles": [{"id": i, "start_index": 0, "end_index": 0} for i in range(300)],
        "jobs": [{"id": 1, "location_index": 1}],
        "matrix": [[0, 3], [3, 0]],
    }
    path = _write(tmp_path, data, "late.json")
    assert path.read_text().index('"jobs"') > 4096
    assert detect_format(path) == "vroom"
    assert len(load_scenario(path).vehicles) == 300


def test_matrix_diagonal_is_set_to_zero() -> None:
    data: dict[str, Any] = {
        "vehicles": [{"id": 0, "start_index": 0, "end_index": 0}],
        "jobs": [{"id": 1, "location_index": 1}],
        "matrices": {
            "car": {"durations": [[7, 5], [5, 7]], "distances": [[0, 50], [50, 9]]},
        },
    }
    s = parse_vroom(data)
    m = s.travel.matrix([s.vehicles[0].start_location, s.orders[0].location])
    assert m.duration_s.tolist() == [[0, 5], [5, 0]]
    assert m.distance_m.tolist() == [[0, 50], [50, 0]]
    assert "matrix diagonal set to zero" in (s.source.notes or "")
    # the caller's data is left as it was
    assert data["matrices"]["car"]["durations"] == [[7, 5], [5, 7]]
