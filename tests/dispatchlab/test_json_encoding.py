"""A JSON input file holding a lone UTF-16 surrogate names the field holding it, as the
service names it, in every command that reads JSON files (pydantic's parser said ``(root):
Invalid JSON: lone leading surrogate in hex escape ...``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios.io.json_io import LONE_SURROGATE_REASON
from tests.dispatchlab.conftest import RunHere
from tests.dispatchlab.small import SMALL

#: a two-node, one-order allocation request
REQUEST: dict[str, object] = {
    "nodes": [
        {"id": "dc", "location": {"lat": 52.37, "lon": 4.89}, "inventory": {"tea": 5}},
        {"id": "store", "kind": "store", "location": {"lat": 52.09, "lon": 5.12}},
    ],
    "orders": [
        {
            "id": "o1",
            "location": {"lat": 52.1, "lon": 5.1},
            "lines": [{"sku": "tea", "quantity": 2}],
        }
    ],
}
#: a VROOM problem of one courier and one job
VROOM: dict[str, object] = {
    "vehicles": [{"id": 1, "description": "bike"}],
    "jobs": [{"id": 1, "location": [4.2, 52.2]}],
}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_here: RunHere) -> Path:
    """``tmp_path`` as the working folder: small.json, request.json, vroom.json, plan.json
    (small.json's route plan) and variants.yaml (based on base.json, a copy of small.json)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.json").write_text(json.dumps(SMALL))
    (tmp_path / "base.json").write_text(json.dumps(SMALL))
    (tmp_path / "request.json").write_text(json.dumps(REQUEST))
    (tmp_path / "vroom.json").write_text(json.dumps(VROOM))
    code, err = run_here(
        "route", "small.json", "--engine", "greedy", "--quiet", "--out", "plan.json"
    )
    assert code == 0, err
    (tmp_path / "variants.yaml").write_text(
        "base: base.json\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: 1.2}\n"
    )
    return tmp_path


#: (command, the JSON file it reads that is spoilt, the text replaced in it, the field named)
COMMANDS = [
    (["route", "small.json", "--engine", "greedy"], "small.json", '"o1"', "orders.0.id"),
    (["scenario", "show", "small.json"], "small.json", '"n0"', "nodes.0.id"),
    (["scenario", "convert", "small.json"], "small.json", '"v0"', "vehicles.0.id"),
    # a key: named with the surrogate escaped
    (["allocate", "request.json"], "request.json", '"tea"', "nodes.0.inventory.tea\\ud800"),
    (["allocate", "small.json", "--scenario"], "small.json", '"o2"', "orders.1.id"),
    (["simulate", "small.json", "--plan", "plan.json"], "plan.json", '"v0"', "routes.0.vehicle_id"),
    (["whatif", "variants.yaml", "--replications", "1"], "base.json", '"o1"', "orders.0.id"),
    (["evaluate", "--scenario", "small.json", "--seeds", "1"], "small.json", '"o1"', "orders.0.id"),
    (
        ["train", "--scenario", "small.json", "--timesteps", "8"],
        "small.json",
        '"o1"',
        "orders.0.id",
    ),
    (
        ["route", "vroom.json", "--engine", "greedy"],
        "vroom.json",
        '"bike"',
        "vehicles.0.description",
    ),
]
IDS = ["route", "show", "convert", "allocate", "allocate-scenario", "simulate-plan", "whatif-base"]
IDS += ["evaluate", "train", "route-vroom"]


def _named(files: Path, spoilt: str) -> str:
    """How the command's error names the file (a variant file's base: its whole path)."""
    return str(files / spoilt) if spoilt == "base.json" else spoilt


@pytest.mark.parametrize(("command", "spoilt", "old", "field"), COMMANDS, ids=IDS)
def test_a_lone_surrogate_in_an_input_file_names_its_field(
    files: Path, run_here: RunHere, command: list[str], spoilt: str, old: str, field: str
) -> None:
    """``"id": "o1\\ud800"`` was ``(root): Invalid JSON: lone leading surrogate in hex
    escape at line 1 column 84``; the service named the field (``scenario.orders.0.id``)."""
    path = files / spoilt
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, old[:-1] + '\\ud800"', 1))
    code, err = run_here(*command)
    assert (code, err) == (2, f"error: {_named(files, spoilt)}: {field}: {LONE_SURROGATE_REASON}\n")
