"""The ``dispatchlab scenario`` commands: exit codes, outputs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from scenarios import MatrixTravel, Scenario
from scenarios.io import load_scenario, read_json
from scenarios.saved import SavedDataWarning
from tests.conftest import SHARED_BENCHMARKS

runner = CliRunner()


def _one_line_error(result: object, *needles: str) -> None:
    """Exit 2, no traceback, exactly one line on stderr naming what is wrong."""
    assert getattr(result, "exit_code", None) == 2, getattr(result, "output", "")
    err = getattr(result, "stderr", "")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in getattr(result, "output", "")
    for needle in needles:
        assert needle in lines[0]


def test_generate_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    args = ["scenario", "generate", "--seed", "4", "--orders", "50", "--nodes", "4"]
    args += ["--couriers", "5"]
    assert runner.invoke(app, [*args, "--out", str(a)]).exit_code == 0
    result = runner.invoke(app, [*args, "--out", str(b)])
    assert result.exit_code == 0
    assert "wrote" in result.stderr and "50 orders" in result.stderr
    assert a.read_bytes() == b.read_bytes()
    s = read_json(Scenario, a)
    assert (len(s.orders), len(s.nodes), len(s.vehicles)) == (50, 4, 5)


def test_generate_to_stdout() -> None:
    result = runner.invoke(app, ["scenario", "generate", "--orders", "10", "--nodes", "2"])
    assert result.exit_code == 0
    assert len(Scenario.model_validate_json(result.stdout).orders) == 10


@pytest.mark.parametrize(
    ("option", "value"),
    # (--seed is range-checked while parsing: tests/dispatchlab/test_main.py)
    [("--orders", "0"), ("--nodes", "-2"), ("--couriers", "0")],
)
def test_generate_rejects_bad_sizes(option: str, value: str) -> None:
    result = runner.invoke(app, ["scenario", "generate", option, value])
    _one_line_error(result, f"{option}: ")


def test_generate_can_give_version_1s_fleet(tmp_path: Path) -> None:
    args = ["scenario", "generate", "--seed", "7", "--orders", "40", "--nodes", "4"]
    args += ["--couriers", "6"]
    old, new = tmp_path / "v1.json", tmp_path / "v2.json"
    assert runner.invoke(app, [*args, "--generator-version", "1", "--out", str(old)]).exit_code == 0
    assert runner.invoke(app, [*args, "--out", str(new)]).exit_code == 0
    a, b = read_json(Scenario, old), read_json(Scenario, new)
    assert a.source.notes is not None and b.source.notes is not None
    assert a.source.notes.startswith("dispatchlab generate_city v1;")
    assert b.source.notes.startswith("dispatchlab generate_city v2;")
    assert a.orders == b.orders and a.nodes == b.nodes and a.vehicles != b.vehicles
    result = runner.invoke(app, [*args, "--generator-version", "3"])
    _one_line_error(result, "--generator-version: must be 1 or 2, got 3")


def test_generate_sizes_the_nodes_with_node_capacity_factor(tmp_path: Path) -> None:
    # session 54: no option gave the node capacities the service's demo day is made with
    args = ["scenario", "generate", "--seed", "7", "--orders", "40", "--nodes", "4"]
    args += ["--couriers", "6"]
    base, wide = tmp_path / "base.json", tmp_path / "wide.json"
    assert runner.invoke(app, [*args, "--out", str(base)]).exit_code == 0
    result = runner.invoke(app, [*args, "--node-capacity-factor", "2", "--out", str(wide)])
    assert result.exit_code == 0, result.output
    a, b = read_json(Scenario, base), read_json(Scenario, wide)
    assert a.orders == b.orders and a.vehicles == b.vehicles
    # the DC, the one node stocking the long tail: 24 orders at 1.4 (docs/api.md), 35 at 2.0
    assert {n.id: n.capacity_orders for n in a.nodes}["dc-01"] == 24
    assert {n.id: n.capacity_orders for n in b.nodes}["dc-01"] == 35
    for x, y in zip(a.nodes, b.nodes, strict=True):
        assert x.capacity_orders is not None and y.capacity_orders is not None
        assert y.capacity_orders >= x.capacity_orders and y.inventory == x.inventory
    # the generator's default, given: the same bytes as no option
    same = tmp_path / "same.json"
    assert (
        runner.invoke(app, [*args, "--node-capacity-factor", "1.4", "--out", str(same)]).exit_code
        == 0
    )
    assert same.read_bytes() == base.read_bytes()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0", "0"),
        ("-1", "-1"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("101", "101"),
        ("1e30", "1e+30"),  # was a field of the output: nodes.0.capacity_units
    ],
)
def test_generate_rejects_a_bad_node_capacity_factor(
    value: str, shown: str, tmp_path: Path
) -> None:
    out = tmp_path / "x.json"
    cmd = ["scenario", "generate", "--orders", "10", "--node-capacity-factor", value]
    result = runner.invoke(app, [*cmd, "--out", str(out)])
    # pydantic's words were "Input should be greater than 0" (or "... a finite number")
    _one_line_error(
        result, f"--node-capacity-factor: must be a finite number in (0, 100], got {shown}"
    )
    assert not out.exists()


def test_generate_into_a_missing_folder(tmp_path: Path) -> None:
    out = tmp_path / "nope" / "x.json"
    result = runner.invoke(app, ["scenario", "generate", "--orders", "10", "--out", str(out)])
    _one_line_error(result, str(out), "--out", f"folder {out.parent} does not exist")
    assert not out.parent.exists()


def test_show_prints_the_summary(instances_dir: Path) -> None:
    result = runner.invoke(app, ["scenario", "show", str(instances_dir / "solomon" / "C101.txt")])
    assert result.exit_code == 0, result.output
    for word in ("orders", "100", "euclidean", "demand_over_capacity", "solomon", "divisors"):
        assert word in result.stdout


def test_show_json(instances_dir: Path) -> None:
    path = instances_dir / "lilim" / "lc101.txt"
    result = runner.invoke(app, ["scenario", "show", str(path), "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["scenario"]["pickup_delivery_pairs"] == 53
    assert summary["source"]["format"] == "lilim"
    assert summary["travel"]["kind"] == "euclidean"


def test_show_errors_are_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    _one_line_error(
        runner.invoke(app, ["scenario", "show", str(missing)]), str(missing), "file not found"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"orders": [{"id": "o", "location": {"x": 0, "y": 0}, "service_s": -4}]}')
    _one_line_error(
        runner.invoke(app, ["scenario", "show", str(bad)]),
        str(bad),
        "orders.0.service_s",
        "greater than or equal to 0",
    )
    vroom = tmp_path / "v.json"
    vroom.write_text('{"vehicles": [{"id": 1}], "jobs": [{"id": 1, "location": [1, 2]}]}')
    _one_line_error(
        runner.invoke(app, ["scenario", "show", str(vroom)]),
        "vehicles.0.start",
        "a start or an end",
    )
    _one_line_error(
        runner.invoke(app, ["scenario", "show", str(bad), "--format", "xml"]),
        "unknown format 'xml'",
    )


def test_convert_round_trips(tmp_path: Path, instances_dir: Path) -> None:
    src = instances_dir / "cvrplib_x" / "X-n101-k25.vrp"
    out = tmp_path / "x.json"
    result = runner.invoke(
        app, ["scenario", "convert", str(src), "--to", "json", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert load_scenario(out).model_dump() == load_scenario(src).model_dump()
    stdout = runner.invoke(app, ["scenario", "convert", str(src)])
    assert stdout.exit_code == 0
    assert stdout.stdout == out.read_text()


def test_convert_names_the_format_it_read(tmp_path: Path, instances_dir: Path) -> None:
    """A JSON file converted again was "solomon -> json": its source's format, not the one
    read; the JSON keeps that source (the original's format, path and divisors)."""
    src = instances_dir / "solomon" / "C101.txt"
    first, again = tmp_path / "c101.json", tmp_path / "again.json"
    result = runner.invoke(app, ["scenario", "convert", str(src), "--out", str(first)])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {first} (solomon -> json)"
    result = runner.invoke(app, ["scenario", "convert", str(first), "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        f"wrote {again} (json -> json; the scenario was first converted from solomon ({src}))"
    )
    assert read_json(Scenario, again).source == read_json(Scenario, first).source
    piped = tmp_path / "piped.json"
    result = runner.invoke(
        app, ["scenario", "convert", "-", "--out", str(piped)], input=first.read_text()
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"wrote {piped} (json -> json; the scenario was first ")
    city = tmp_path / "city.json"
    sizes = ["--orders", "5", "--nodes", "2", "--couriers", "2"]
    made = runner.invoke(app, ["scenario", "generate", "--seed", "1", *sizes, "--out", str(city)])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["scenario", "convert", str(city), "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert (
        result.stderr.strip() == f"wrote {again} (json -> json; the scenario was first generated)"
    )


def test_convert_rejects_unknown_target(instances_dir: Path) -> None:
    src = instances_dir / "solomon" / "C101.txt"
    _one_line_error(
        runner.invoke(app, ["scenario", "convert", str(src), "--to", "xml"]), "--to", "only json"
    )


def test_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["scenario", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"orders", "nodes", "vehicles", "travel", "horizon"} <= set(schema["properties"])
    plan = json.loads(runner.invoke(app, ["scenario", "schema", "--model", "plan"]).stdout)
    assert "routes" in plan["properties"]
    _one_line_error(runner.invoke(app, ["scenario", "schema", "--model", "x"]), "--model")


def test_scenario_demo_runs() -> None:
    result = runner.invoke(app, ["scenario", "demo", "--orders", "30", "--couriers", "4"])
    assert result.exit_code == 0, result.output
    assert "road_network travel" in result.stdout
    assert "cached" in result.stdout


SHARED_SETS = ("solomon", "homberger200", "lilim", "cvrplib_x")


def _shared_files() -> list[Path]:
    return sorted(
        p for folder in SHARED_SETS if (SHARED_BENCHMARKS / folder).is_dir()
        for p in (SHARED_BENCHMARKS / folder).iterdir()
    )  # fmt: skip


# ~19 s (every file of ../shared/benchmarks, skipped where that folder is missing, as in CI); each
# format's reader is shown on the bundled instances by test_show_prints_the_summary and
# test_show_json, and tests/scenarios/test_readers.py
@pytest.mark.slow
@pytest.mark.skipif(
    not all((SHARED_BENCHMARKS / folder).is_dir() for folder in SHARED_SETS),
    reason="../shared/benchmarks is not present",
)
def test_show_reads_every_shared_benchmark_file() -> None:
    """Instances are summarised; solutions, BKS tables and READMEs are refused in one line."""
    shown = refused = 0
    for path in _shared_files():
        result = runner.invoke(app, ["scenario", "show", str(path), "--json"])
        if path.suffix in {".txt", ".vrp"}:
            assert result.exit_code == 0, f"{path}: {result.output}"
            summary = json.loads(result.stdout)
            assert summary["scenario"]["orders"] > 0
            shown += 1
        else:
            _one_line_error(result, str(path))
            refused += 1
    assert shown >= 56 + 60 + 56 + 20
    assert refused >= 20  # the .sol files and bks.csv


def test_a_scenario_file_saved_before_the_zero_diagonal_rule_still_loads(tmp_path: Path) -> None:
    """Its travel matrix has a non-zero diagonal: exit 2 before; now zeroed, with a warning."""
    old = tmp_path / "old.json"
    old.write_text(
        json.dumps(
            {
                "travel": {"kind": "matrix", "duration_s": [[7, 60], [60, 7]]},
                "orders": [{"id": "a", "location": {"index": 1}}],
                "vehicles": [{"id": "v", "start_location": {"index": 0}}],
            }
        )
    )
    result = runner.invoke(app, ["scenario", "convert", str(old)])
    assert result.exit_code == 0, result.output
    warning = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert warning == [
        f"warning: {old}: travel.duration_s: non-zero diagonal set to zero (saved before "
        "travel to the same place had to be 0)"
    ]
    converted = Scenario.model_validate_json(result.stdout)  # current data: validates as is
    assert isinstance(converted.travel, MatrixTravel)
    assert converted.travel.duration_s == [[0, 60], [60, 0]]
    assert "non-zero diagonal set to zero" in (converted.source.notes or "")
    with pytest.warns(SavedDataWarning, match="non-zero diagonal set to zero"):
        assert load_scenario(old).travel == converted.travel


def test_a_malformed_instance_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    """A VRPLIB coordinate row with a missing column was an IndexError traceback (exit 1)."""
    bad = tmp_path / "bad.vrp"
    bad.write_text("NAME : x\nDIMENSION : 2\nNODE_COORD_SECTION\n1 0 0\n2 1\nEOF\n")
    result = runner.invoke(app, ["scenario", "show", str(bad)])
    _one_line_error(result, f"{bad}: NODE_COORD_SECTION: line 5: expected 3 values")


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("orders", 0, "service_s"), "60", "Input should be a valid integer"),
        (("vehicles", 0, "start_location", "x"), "0", "Input should be a valid number"),
        (("vehicles", 0, "capacity", 0), "10", "Input should be a valid integer"),
    ],
)
def test_a_scenario_file_giving_a_number_as_a_string_is_a_one_line_error(
    tmp_path: Path, path: tuple[str | int, ...], value: str, reason: str
) -> None:
    """A JSON scenario file's ``"service_s": "60"`` was read as 60 without a word (pydantic's
    lax mode): an error naming the field now, as over HTTP."""
    data = json.loads(_small_json())
    inner = data
    for part in path[:-1]:
        inner = inner[part]
    inner[path[-1]] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    field = ".".join(str(p) for p in path)
    _one_line_error(runner.invoke(app, ["scenario", "show", str(bad)]), f"{field}: {reason}")


def _small_json() -> str:
    from api.examples import SMALL_SCENARIO

    return json.dumps(SMALL_SCENARIO)
