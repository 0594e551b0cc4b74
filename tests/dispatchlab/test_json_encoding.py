"""A JSON input file holding a lone UTF-16 surrogate names the field holding it, and one in
UTF-16 or UTF-32 is refused as not UTF-8, as the service says them, in every command that
reads JSON files (pydantic's parser said ``(root): Invalid JSON: ...`` of both)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios.io.json_io import LONE_SURROGATE_REASON
from tests.dispatchlab.conftest import RunHere
from tests.dispatchlab.small import SMALL
from tests.scenarios.test_json_io import REQUEST

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


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
@pytest.mark.parametrize(("command", "spoilt", "old", "field"), COMMANDS, ids=IDS)
def test_an_input_file_in_utf_16_or_32_is_refused_as_not_utf_8(
    files: Path,
    run_here: RunHere,
    command: list[str],
    spoilt: str,
    old: str,
    field: str,
    encoding: str,
) -> None:
    """``(root): Invalid JSON: expected value at line 1 column 1`` (or ``key must be a
    string``) said nothing of the encoding, while the service took such a body: both refuse
    it now, as RFC 8259 asks JSON between systems to be UTF-8."""
    path = files / spoilt
    path.write_bytes(path.read_text().encode(encoding))
    code, err = run_here(*command)
    name = encoding.upper().replace("-LE", "LE")
    assert (code, err) == (
        2,
        f"error: {_named(files, spoilt)}: (root): JSON must be UTF-8 (RFC 8259 section 8.1), "
        f"not {name}: re-encode it as UTF-8\n",
    )


@pytest.mark.parametrize(
    "command",
    [
        ["route", "small.json", "--engine", "greedy", "--quiet", "--out", "out.json"],
        ["allocate", "request.json", "--quiet", "--out", "out.json"],
        ["simulate", "small.json", "--plan", "plan.json", "--replications", "1"],
    ],
    ids=["route", "allocate", "simulate-plan"],
)
def test_a_utf_8_byte_order_mark_is_taken_as_the_service_takes_it(
    files: Path, run_here: RunHere, command: list[str]
) -> None:
    """RFC 8259 lets a parser ignore a UTF-8 byte-order mark (as editors on Windows save
    it): the command line drops it, as the service does."""
    for name in ("small.json", "request.json", "plan.json"):
        path = files / name
        path.write_bytes(path.read_bytes().join([b"\xef\xbb\xbf", b""]))
    code, err = run_here(*command)
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    "command",
    [["route", "-", "--engine", "greedy"], ["scenario", "show", "-"], ["allocate", "-"]],
    ids=["route", "show", "allocate"],
)
@pytest.mark.parametrize("spoil", ["utf-16", "surrogate"])
def test_standard_input_is_read_as_a_file_is(command: list[str], spoil: str) -> None:
    """JSON in UTF-16 piped into a command that tells the format from the first characters
    said ``format: cannot tell the file format; pass --format``, which no format helps."""
    from typer.testing import CliRunner

    from dispatchlab.cli import app

    text = json.dumps(REQUEST if command[0] == "allocate" else SMALL)
    if spoil == "utf-16":
        data = text.encode("utf-16")
        said = (
            "(root): JSON must be UTF-8 (RFC 8259 section 8.1), not UTF-16: re-encode it as UTF-8"
        )
    else:
        data = text.replace('"o1"', '"o1\\ud800"', 1).encode()
        said = f"orders.0.id: {LONE_SURROGATE_REASON}"
    result = CliRunner().invoke(app, command, input=data)
    assert (result.exit_code, result.stderr) == (2, f"error: <stdin>: {said}\n")
