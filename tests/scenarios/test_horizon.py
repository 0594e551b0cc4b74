"""A scenario's times against its horizon: shifts inside it, no window entirely outside it."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dispatchlab.cli import main
from scenarios import InputError, Scenario
from scenarios.errors import input_error_from_validation
from scenarios.generate import generate_city
from scenarios.io import load_scenario
from scenarios.io.json_io import from_json
from scenarios.io.vroom import parse_vroom
from scenarios.saved import SavedDataWarning, read_saved, validate_saved
from scenarios.variants import Variant, apply_variant

DATA = Path(__file__).resolve().parents[2] / "data" / "instances"

BASE: dict[str, Any] = {
    "horizon": {"start_s": 3600, "end_s": 7200},
    "orders": [
        {"id": "o1", "location": {"x": 100, "y": 0}},
        {
            "id": "o2",
            "location": {"x": 200, "y": 0},
            "time_windows": [{"start_s": 3000, "end_s": 4000}],  # partly before the horizon
            "pickup": {
                "location": {"x": 0, "y": 100},
                "time_windows": [{"start_s": 7000, "end_s": 9000}],  # partly after it
            },
        },
    ],
    "vehicles": [
        {"id": "v1", "start_location": {"x": 0, "y": 0}},
        {"id": "v2", "start_location": {"x": 0, "y": 0}, "shift": {"start_s": 3600, "end_s": 7200}},
    ],
}


def with_changes(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each dotted path of ``change`` set to its value."""
    data = copy.deepcopy(base)
    for key, value in change.items():
        *parents, last = key.split(".")
        node: Any = data
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    return data


def refused(data: dict[str, Any]) -> InputError:
    """The error a scenario ``data`` is refused with as new input (field and reason)."""
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(data)
    return input_error_from_validation(info.value)


def _with(change: dict[str, Any]) -> dict[str, Any]:
    return with_changes(BASE, change)


BAD: list[tuple[dict[str, Any], str, str]] = [
    (
        {"vehicles.1.shift": {"start_s": 3600, "end_s": 7201}},
        "vehicles.1.shift.end_s",
        "the shift ends at 7201 s, after the horizon [3600, 7200] s ends",
    ),
    (
        {"vehicles.1.shift": {"start_s": 0, "end_s": 5000}},
        "vehicles.1.shift.start_s",
        "the shift starts at 0 s, before the horizon [3600, 7200] s starts",
    ),
    (
        {
            "orders.0.time_windows": [
                {"start_s": 4000, "end_s": 5000},
                {"start_s": 8000, "end_s": 9000},
            ]
        },
        "orders.0.time_windows.1",
        "the window [8000, 9000] s lies entirely outside the horizon [3600, 7200] s: the "
        "delivery could never be made in it",
    ),
    (
        {"orders.0.time_windows": [{"start_s": 0, "end_s": 3599}]},
        "orders.0.time_windows.0",
        "the window [0, 3599] s lies entirely outside the horizon",
    ),
    (
        {"orders.1.pickup.time_windows": [{"start_s": 7201, "end_s": 7300}]},
        "orders.1.pickup.time_windows.0",
        "the pickup could never be made in it",
    ),
]


def test_shifts_inside_and_windows_touching_or_partly_outside_the_horizon_are_accepted() -> None:
    data = _with({"orders.0.time_windows": [{"start_s": 0, "end_s": 3600}]})  # ends at its start
    scenario = Scenario.model_validate(data)
    assert scenario.orders[1].time_windows[0].start_s == 3000  # kept as given, not clipped
    assert scenario.source.notes is None


@pytest.mark.parametrize(("change", "field", "reason"), BAD)
def test_times_outside_the_horizon_are_refused_naming_the_field(
    change: dict[str, Any], field: str, reason: str
) -> None:
    error = refused(_with(change))
    assert error.field == field
    assert reason in error.reason


def test_a_scenario_file_with_a_shift_past_the_horizon_is_refused() -> None:
    """A file can be edited: refused (as saved data, only the diagonal is corrected)."""
    text = json.dumps(_with(BAD[0][0]))
    with pytest.raises(InputError) as info:
        from_json(Scenario, text, source="s.json", saved=True)
    assert info.value.field == "vehicles.1.shift.end_s"


def test_a_stored_scenario_outside_its_horizon_is_read_with_notes_and_warnings() -> None:
    """Jobs and plans stored before the rule stay readable: noted, kept as they were."""
    data = _with({**BAD[0][0], **BAD[2][0]})
    scenario, notes = read_saved(Scenario, data)
    assert scenario.vehicles[1].shift is not None and scenario.vehicles[1].shift.end_s == 7201
    assert [n.split(":")[0] for n in notes] == [
        "vehicles.1.shift.end_s",
        "orders.0.time_windows.1",
    ]
    assert all(n.endswith("(stored before the horizon was checked; kept as stored)") for n in notes)
    assert scenario.source.notes == "; ".join(notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_saved(Scenario, data)
    assert [
        str(w.message).split(":")[0] for w in caught if issubclass(w.category, SavedDataWarning)
    ] == ["vehicles.1.shift.end_s", "orders.0.time_windows.1"]
    # read again (a worker re-reading the stored scenario): the notes are not repeated
    again, _ = read_saved(Scenario, scenario.model_dump(mode="json"))
    assert again.source.notes == scenario.source.notes


def test_the_cli_refuses_a_shift_past_the_horizon_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_with(BAD[0][0])))
    with pytest.raises(SystemExit) as info, warnings.catch_warnings():
        warnings.simplefilter("error")
        main(["route", str(path), "--engine", "greedy", "--time-limit", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"error: {path}: vehicles.1.shift.end_s: the shift ends at 7201 s")


@pytest.mark.parametrize(
    "path",
    sorted(p for p in DATA.glob("*/*") if p.suffix not in {".csv", ".sol", ".md"}),
    ids=lambda p: p.name,
)
def test_every_instance_in_data_is_read_within_its_horizon(path: Path) -> None:
    scenario = load_scenario(path)  # validated: a refused one raises
    assert scenario.times_outside_horizon() == []
    assert all(v.shift is not None for v in scenario.vehicles)


@pytest.mark.parametrize("seed", range(12))
def test_generated_cities_are_within_their_horizon(seed: int) -> None:
    scenario = generate_city(seed=seed, num_orders=60, num_nodes=3, num_couriers=8)
    assert scenario.times_outside_horizon() == []


def test_a_vroom_job_outside_every_vehicle_window_is_read() -> None:
    """The horizon was the vehicles' hours: a job VROOM leaves unassigned made it invalid."""
    problem = {
        "vehicles": [{"id": 1, "start": [0.0, 0.0], "time_window": [28800, 43200]}],
        "jobs": [
            {"id": 1, "location": [0.01, 0.0], "time_windows": [[50000, 60000]]},
            {"id": 2, "location": [0.02, 0.0], "time_windows": [[100, 200]]},
        ],
    }
    scenario = parse_vroom(problem)
    assert (scenario.horizon.start_s, scenario.horizon.end_s) == (100, 60000)
    assert scenario.vehicles[0].shift is not None
    assert (scenario.vehicles[0].shift.start_s, scenario.vehicles[0].shift.end_s) == (28800, 43200)


def test_demand_copies_created_late_stay_inside_the_horizon() -> None:
    """A copy's windows move with its creation time: one moved past the horizon end was an
    invalid variant; it became the horizon end ([10000, 10000]: another order). Such a copy
    is now not made, and the variant's notes say how many."""
    data = {
        "horizon": {"start_s": 0, "end_s": 10_000},
        "orders": [
            {
                "id": "o1",
                "location": {"x": 1, "y": 0},
                "created_s": 0,
                "time_windows": [
                    {"start_s": 1000, "end_s": 2000},
                    {"start_s": 8000, "end_s": 9000},
                ],
            }
        ],
        "vehicles": [{"id": "v1", "start_location": {"x": 0, "y": 0}}],
    }
    scenario = Scenario.model_validate(data)
    window = {"start_s": 0, "end_s": 9_999}
    variant = Variant.model_validate(
        {"name": "late", "modifiers": [{"kind": "demand", "factor": 9.0, "window": window}]}
    )
    out = apply_variant(scenario, variant, seed=3)  # InputError before
    copies = [o for o in out.orders if o.id != "o1"]
    assert 0 < len(copies) < 8
    for made in copies:  # both windows, moved as they are
        got = [(w.start_s, w.end_s) for w in made.time_windows]
        assert got == [
            (1000 + made.created_s, 2000 + made.created_s),
            (8000 + made.created_s, 9000 + made.created_s),
        ]
        assert got[1][0] <= 10_000
    assert out.source.notes is not None
    assert out.source.notes.startswith(f"variants.0.modifiers.0: {8 - len(copies)} of 8 copies")
    assert out.times_outside_horizon() == []
