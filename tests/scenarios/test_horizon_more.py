"""Order creation times, break windows and disruption windows against the horizon and shifts."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from dispatchlab.cli import main
from scenarios import InputError, Scenario
from scenarios.generate import CityParams, generate_city
from scenarios.saved import SavedDataWarning, read_saved, validate_saved
from scenarios.variants import Variant, apply_variant
from tests.scenarios.test_horizon import refused, with_changes

BASE: dict[str, Any] = {
    "horizon": {"start_s": 3600, "end_s": 7200},
    "nodes": [{"id": "n1", "location": {"x": 0, "y": 0}}],
    "orders": [
        {"id": "o1", "location": {"x": 100, "y": 0}, "created_s": 7200},  # at the horizon end
        {"id": "o2", "location": {"x": 200, "y": 0}, "created_s": 0},  # before its start
    ],
    "vehicles": [
        {
            "id": "v1",
            "start_location": {"x": 0, "y": 0},  # no shift: the horizon
            # partly outside the horizon, and ends with it when taken at its earliest
            "breaks": [{"window": {"start_s": 6600, "end_s": 9000}, "duration_s": 600}],
        },
        {
            "id": "v2",
            "start_location": {"x": 0, "y": 0},
            "shift": {"start_s": 4000, "end_s": 6000},
            # ends with the shift when taken at its earliest
            "breaks": [{"window": {"start_s": 5400, "end_s": 6500}, "duration_s": 600}],
        },
    ],
    "stochastic": {
        "node_outages": [{"node_id": "n1", "window": {"start_s": 0, "end_s": 3600}}],
        "travel_slowdowns": [{"factor": 2.0, "window": {"start_s": 7000, "end_s": 90000}}],
    },
    "arrivals": {
        "hourly_rate": [1.0] * 24,
        "surges": [{"factor": 2.0, "window": {"start_s": 3000, "end_s": 4000}}],
    },
}


def _with(change: dict[str, Any]) -> dict[str, Any]:
    return with_changes(BASE, change)


BAD: list[tuple[dict[str, Any], str, str]] = [
    (
        {"orders.0.created_s": 7201},
        "orders.0.created_s",
        "the order is created at 7201 s, after the horizon [3600, 7200] s ends: it would never "
        "be released",
    ),
    (
        {"vehicles.1.breaks.0.window": {"start_s": 6001, "end_s": 6500}},
        "vehicles.1.breaks.0.window",
        "the break window [6001, 6500] s lies entirely outside the shift [4000, 6000] s: the "
        "break could never be taken",
    ),
    (
        {"vehicles.1.breaks.0.window": {"start_s": 3600, "end_s": 3999}},
        "vehicles.1.breaks.0.window",
        "lies entirely outside the shift [4000, 6000] s",
    ),
    (
        {"vehicles.0.breaks.0.window": {"start_s": 7300, "end_s": 9000}},
        "vehicles.0.breaks.0.window",
        "lies entirely outside the horizon [3600, 7200] s (the vehicle has no shift)",
    ),
    (
        {"stochastic.node_outages.0.window": {"start_s": 0, "end_s": 3599}},
        "stochastic.node_outages.0.window",
        "the window [0, 3599] s lies entirely outside the horizon [3600, 7200] s: the outage "
        "would have no effect",
    ),
    (
        {"stochastic.travel_slowdowns.0.window": {"start_s": 7201, "end_s": 90000}},
        "stochastic.travel_slowdowns.0.window",
        "the slowdown would have no effect",
    ),
    (
        {"arrivals.surges.0.window": {"start_s": 90000, "end_s": 91000}},
        "arrivals.surges.0.window",
        "the surge would have no effect",
    ),
    (
        {"vehicles.1.latest_start_s": 6001},
        "vehicles.1.latest_start_s",
        "the latest start 6001 s lies outside the shift [4000, 6000] s: the vehicle could never "
        "leave its start",
    ),
    (
        {"vehicles.0.latest_start_s": 3599},
        "vehicles.0.latest_start_s",
        "lies outside the horizon [3600, 7200] s (the vehicle has no shift)",
    ),  # a break that starts inside its window and the shift but cannot end inside the shift:
    # each order of the vehicle was reported break_unplaceable (session 62)
    (
        {"vehicles.1.breaks.0.window": {"start_s": 6000, "end_s": 6500}},
        "vehicles.1.breaks.0",
        "the break of 600 s starts at 6000 s at the earliest (its window [6000, 6500] s) and "
        "would end at 6600 s, after the shift [4000, 6000] s ends: a break must end inside "
        "the vehicle's hours",
    ),
    (
        {"vehicles.0.breaks.0.window": {"start_s": 6601, "end_s": 9000}},
        "vehicles.0.breaks.0",
        "would end at 7201 s, after the horizon [3600, 7200] s (the vehicle has no shift) ends",
    ),
    (
        {
            "vehicles.1.breaks": [
                {"window": {"start_s": 4000, "end_s": 6000}, "duration_s": 1200},
                {"window": {"start_s": 4000, "end_s": 6000}, "duration_s": 900},
            ]
        },
        "vehicles.1.breaks",
        "the breaks take 2100 s together, more than the 2000 s of the shift [4000, 6000] s",
    ),
]


def test_times_touching_or_partly_outside_are_accepted() -> None:
    scenario = Scenario.model_validate(BASE)
    assert [o.created_s for o in scenario.orders] == [7200, 0]
    assert scenario.source.notes is None
    assert scenario.times_outside_horizon() == []


@pytest.mark.parametrize(("change", "field", "reason"), BAD, ids=[b[1] for b in BAD])
def test_times_that_can_never_matter_are_refused_naming_the_field(
    change: dict[str, Any], field: str, reason: str
) -> None:
    error = refused(_with(change))
    assert error.field == field
    assert reason in error.reason


def test_stored_data_keeps_them_with_notes_and_warnings() -> None:
    data = _with({k: v for change, _, _ in BAD[:2] + BAD[4:5] for k, v in change.items()})
    scenario, notes = read_saved(Scenario, data)
    assert scenario.orders[0].created_s == 7201
    assert [n.split(":")[0] for n in notes] == [
        "vehicles.1.breaks.0.window",
        "orders.0.created_s",
        "stochastic.node_outages.0.window",
    ]
    assert all(n.endswith("(stored before the horizon was checked; kept as stored)") for n in notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_saved(Scenario, data)
    assert len([w for w in caught if issubclass(w.category, SavedDataWarning)]) == 3


def test_the_cli_refuses_a_break_outside_the_shift_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Routing left every order unassigned (break_unplaceable): the vehicle was unusable."""
    path = tmp_path / "s.json"
    data = _with(BAD[1][0])
    del data["arrivals"]
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as info, warnings.catch_warnings():
        warnings.simplefilter("error")
        main(["route", str(path), "--engine", "greedy", "--time-limit", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"error: {path}: vehicles.1.breaks.0.window: the break window")


def test_the_cli_refuses_a_break_that_cannot_end_inside_the_shift_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A break that starts inside its window and the shift but would end after the shift:
    routing left every order of the vehicle unassigned (break_unplaceable, exit 0)."""
    path = tmp_path / "s.json"
    data = _with({"vehicles.1.breaks.0.window": {"start_s": 6000, "end_s": 6500}})
    del data["arrivals"]
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as info:
        main(["route", str(path), "--engine", "greedy", "--time-limit", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"error: {path}: vehicles.1.breaks.0: the break of 600 s starts at")


def _scenario() -> Scenario:
    data = copy.deepcopy(BASE)
    del data["arrivals"]
    data["orders"][0]["created_s"] = 6000
    return Scenario.model_validate(data)


def test_demand_copies_are_not_created_after_the_horizon_end() -> None:
    """A demand window past the horizon end drew copies created after it (refused now)."""
    variant = Variant.model_validate(
        {
            "name": "late",
            "modifiers": [
                {"kind": "demand", "factor": 9.0, "window": {"start_s": 5000, "end_s": 50_000}}
            ],
        }
    )
    out = apply_variant(_scenario(), variant, seed=3)
    copies = [o for o in out.orders if "~" in o.id]
    assert len(copies) == 8
    assert all(5000 <= o.created_s <= 7200 for o in copies)


@pytest.mark.parametrize(
    "modifier",
    [
        {"kind": "node_closed", "node_id": "n1", "window": {"start_s": 8000, "end_s": 9000}},
        {"kind": "travel_slowdown", "factor": 2.0, "window": {"start_s": 0, "end_s": 100}},
        {"kind": "demand", "factor": 2.0, "window": {"start_s": 7201, "end_s": 9000}},
    ],
    ids=lambda m: m["kind"],
)
def test_a_modifier_window_outside_the_horizon_is_refused_naming_it(
    modifier: dict[str, Any],
) -> None:
    variant = Variant.model_validate({"name": "v", "modifiers": [{"kind": "fleet"}, modifier]})
    with pytest.raises(InputError) as info:
        apply_variant(_scenario(), variant, seed=1, index=2)
    assert info.value.field == "variants.2.modifiers.1.window"
    assert "lies entirely outside the horizon [3600, 7200] s" in info.value.reason
    assert f"the {modifier['kind']} modifier would have no effect" in info.value.reason


def test_a_demand_window_before_the_horizon_still_copies_the_orders_created_then() -> None:
    data = copy.deepcopy(BASE)
    data["arrivals"]["surges"] = []
    base = Scenario.model_validate(data)
    variant = Variant.model_validate(
        {
            "name": "early",
            "modifiers": [{"kind": "demand", "factor": 3.0, "window": {"start_s": 0, "end_s": 10}}],
        }
    )
    out = apply_variant(base, variant, seed=1)
    assert sorted(o.id for o in out.orders) == ["o1", "o2", "o2~0", "o2~1"]
    assert out.arrivals is not None and out.arrivals.surges == []  # no effect: not added


@pytest.mark.parametrize("seed", range(0, 60, 5))
def test_generated_cities_with_arrivals_are_within_their_horizon(seed: int) -> None:
    params = CityParams(extra_arrivals_per_day=120.0)
    scenario = generate_city(seed=seed, num_orders=40, num_nodes=3, num_couriers=8, params=params)
    assert scenario.arrivals is not None
    assert scenario.times_outside_horizon() == []


def _vroom(break_windows: list[list[int]]) -> dict[str, Any]:
    return {
        "vehicles": [
            {
                "id": 1,
                "start": [0.0, 0.0],
                "time_window": [28800, 43200],
                "breaks": [{"id": 1, "time_windows": break_windows, "service": 600}],
            }
        ],
        "jobs": [{"id": 1, "location": [0.01, 0.0]}],
    }


def test_vroom_keeps_the_first_break_window_meeting_the_vehicle_hours() -> None:
    """The first window was kept even outside the vehicle's hours: the scenario was refused."""
    from scenarios.io.vroom import parse_vroom

    scenario = parse_vroom(_vroom([[20000, 21000], [30000, 31000], [32000, 33000]]))
    [brk] = scenario.vehicles[0].breaks
    assert (brk.window.start_s, brk.window.end_s) == (30000, 31000)
    assert "ignored: break windows after the first" in (scenario.source.notes or "")
    with pytest.raises(InputError) as info:
        parse_vroom(_vroom([[20000, 21000]]))
    assert info.value.field == "vehicles.0.breaks.0.time_windows"
    assert "no window meets the vehicle's time_window [28800, 43200]" in info.value.reason
