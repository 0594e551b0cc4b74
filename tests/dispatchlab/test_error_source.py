"""An error on a field of an input file names the file, also when raised after it loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from dispatchlab.cli._common import cli_errors, note_input, with_input_file
from scenarios.errors import InputError, ScenarioInputError

runner = CliRunner()

#: a scenario that loads, whose only route costs more than a plan holds (found by the solver)
FAR_AND_DEAR: dict[str, Any] = {
    "horizon": {"start_s": 0, "end_s": 10**12},
    "travel": {"kind": "euclidean", "speed_m_per_s": 1000},
    "nodes": [{"id": "n0", "location": {"x": 0, "y": 0}}],
    "orders": [
        {"id": "o1", "location": {"x": 1e9, "y": -1e9}, "lines": [{"sku": "a", "quantity": 1}]}
    ],
    "vehicles": [
        {"id": "v0", "start_location": {"x": -1e9, "y": 1e9}, "cost_per_km_cents": 10**12}
    ],
}

#: a scenario that loads, whose arrival process the twin refuses (no order to draw from)
NO_ORDERS: dict[str, Any] = {
    "nodes": [{"id": "n0", "location": {"x": 0, "y": 0}}],
    "vehicles": [{"id": "v0", "start_location": {"x": 0, "y": 0}}],
    "arrivals": {"hourly_rate": [1.0] * 24},
}


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def _simulate_quietly(scenario: Path) -> list[str]:
    """``simulate SCENARIO``, one serial replication, its KPIs' JSON on stdout (``--quiet``)."""
    options = ["--replications", "1", "--executor", "serial", "-q", "--out", "-"]
    return ["simulate", str(scenario), *options]


def _error_line(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_route_names_the_scenario_of_a_solver_error(tmp_path: Path) -> None:
    far = _write(tmp_path / "far.json", FAR_AND_DEAR)
    line = _error_line(
        ["route", str(far), "--engine", "greedy", "--time-limit", "1", "-q", "--out", "-"]
    )
    # the solver's check of its integer range refuses the price before any engine runs
    assert line.startswith(f"error: {far}: vehicles.0.cost_per_km_cents: a plan")


def test_allocate_names_the_scenario_of_a_mapping_error(tmp_path: Path) -> None:
    dear = dict(FAR_AND_DEAR, nodes=[{"id": "n0", "location": {"x": 0, "y": 0}}])
    dear["nodes"][0]["handling_cost_cents_per_unit"] = 10**12
    path = _write(tmp_path / "dear.json", dear)
    line = _error_line(
        ["allocate", str(path), "--scenario", "-q", "--out", "-", "--time-limit", "5"]
    )
    assert line.startswith(f"error: {path}: nodes.0.handling_cost_cents_per_unit: at most")


def test_simulate_names_the_scenario_not_the_plans(tmp_path: Path) -> None:
    scenario = _write(tmp_path / "no-orders.json", NO_ORDERS)
    plan = _write(tmp_path / "plan.json", {"routes": []})
    args = _simulate_quietly(scenario)
    line = _error_line([*args, "--plan", str(plan), "--policy", "insertion"])
    assert line == (
        f"error: {scenario}: arrivals: new orders are drawn like existing ones: "
        "add at least one order (or arrivals.templates)"
    )


def test_simulate_names_the_one_plan_of_a_twin_error(tmp_path: Path) -> None:
    scenario = _write(tmp_path / "s.json", dict(FAR_AND_DEAR, skus=[{"id": "a"}]))
    line = {"order_id": "o1", "node_id": "n0", "sku": "zzz", "quantity": 1}
    plan = _write(tmp_path / "plan.json", {"allocation": [line]})
    args = ["simulate", str(scenario), "--plan", str(plan), "--replications", "1"]
    line_out = _error_line([*args, "--executor", "serial", "-q", "--out", "-"])
    assert line_out == f"error: {plan}: plan.allocation.0.sku: unknown SKU 'zzz'"


@pytest.mark.parametrize("bad_first", [True, False])
def test_simulate_names_the_one_of_several_plans_at_fault(tmp_path: Path, bad_first: bool) -> None:
    # the twin's own checks (a SKU, a stop's location) could not say which plan file it was
    scenario = _write(tmp_path / "s.json", dict(FAR_AND_DEAR, skus=[{"id": "a"}]))
    good = _write(tmp_path / "good.json", {"routes": []})
    line = {"order_id": "o1", "node_id": "n0", "sku": "zzz", "quantity": 1}
    bad = _write(tmp_path / "bad.json", {"allocation": [line]})
    plans = [bad, good] if bad_first else [good, bad]
    args = _simulate_quietly(scenario)
    line_out = _error_line([*args, "--plan", str(plans[0]), "--plan", str(plans[1])])
    assert line_out == f"error: {bad}: plan.allocation.0.sku: unknown SKU 'zzz'"


def test_simulate_names_the_plan_of_a_stop_location_error(tmp_path: Path) -> None:
    scenario = _write(tmp_path / "s.json", FAR_AND_DEAR)
    good = _write(tmp_path / "good.json", {"routes": []})
    stop: dict[str, Any] = {"order_id": "o1", "kind": "pickup", "location": {"x": 5, "y": 5}}
    stop |= {"arrival_s": 0, "start_s": 0, "departure_s": 0}
    bad = _write(tmp_path / "bad.json", {"routes": [{"vehicle_id": "v0", "stops": [stop]}]})
    args = _simulate_quietly(scenario)
    line_out = _error_line([*args, "--plan", str(good), "--plan", str(bad)])
    assert line_out == (  # the location as given (its repr listed every unset field as None)
        f"error: {bad}: plan.routes.0.stops.0.location: "
        "location {'x': 5.0, 'y': 5.0} is not a location of the scenario"
    )


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"routes": [{"vehicle_id": "zz"}]}, "plan.routes.0.vehicle_id: unknown vehicle 'zz'"),
        (
            {"allocation": [{"order_id": "o1", "node_id": "n0", "sku": "zzz", "quantity": 1}]},
            "plan.allocation.0.sku: unknown SKU 'zzz'",
        ),
    ],
)
def test_whatif_names_the_plan_file_of_a_plan_error(
    tmp_path: Path, plan: dict[str, Any], message: str
) -> None:
    _write(tmp_path / "s.json", dict(FAR_AND_DEAR, skus=[{"id": "a"}]))
    plan_path = _write(tmp_path / "plan.json", plan)
    variants = tmp_path / "v.yaml"
    variants.write_text("base: s.json\nplan: plan.json\nvariants:\n  - name: same\n")
    args = ["whatif", str(variants), "--replications", "1", "--executor", "serial", "-q"]
    line = _error_line([*args, "--out", str(tmp_path / "report")])
    assert line == f"error: {plan_path.resolve()}: {message}"  # not the variant file's


def test_whatif_names_the_base_scenario(tmp_path: Path) -> None:
    scenario = _write(tmp_path / "no-orders.json", NO_ORDERS)
    variants = tmp_path / "v.yaml"
    variants.write_text("base: no-orders.json\nvariants:\n  - name: same\n    modifiers: []\n")
    args = ["whatif", str(variants), "--replications", "1", "--executor", "serial", "-q"]
    line = _error_line([*args, "--out", str(tmp_path / "report")])
    assert line.startswith(f"error: {scenario.resolve()}: arrivals: new orders are drawn")


def test_evaluate_names_its_scenario_file(tmp_path: Path) -> None:
    scenario = _write(tmp_path / "no-orders.json", NO_ORDERS)
    args = ["evaluate", "--scenario", str(scenario), "--policies", "greedy", "--seeds", "1"]
    line = _error_line([*args, "--workers", "1", "--quiet"])
    assert line.startswith(f"error: {scenario}: arrivals: new orders are drawn")


def test_a_load_error_keeps_its_one_file_prefix(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.json", dict(NO_ORDERS, arrivals={"hourly_rate": [1.0]}))
    line = _error_line(["scenario", "show", str(bad)])
    assert line.startswith(f"error: {bad}: arrivals.hourly_rate: ")
    assert line.count(str(bad)) == 1


def test_with_input_file_names_only_a_single_owner() -> None:
    @cli_errors
    def command() -> None:
        note_input("city.json", ["orders", "vehicles"])
        note_input("a.json", ["routes", "engine"])
        note_input("b.json", ["routes", "engine"])
        assert with_input_file(ScenarioInputError("vehicles.0", "x")).source == "city.json"
        assert with_input_file(InputError("orders", "x")).one_line() == "city.json: orders: x"
        # two plans have routes: no guess; an option is no field of a file
        assert with_input_file(InputError("routes.0", "x")).source is None
        assert with_input_file(InputError("--workers", "x")).source is None
        # a named file stays named, once
        named = InputError("orders.0", "x", source="other.json")
        assert with_input_file(named) is named

    command()
    # the files noted belong to that command: none is left for the next one
    assert with_input_file(InputError("orders", "x")).source is None


def test_a_file_noted_under_a_path_owns_the_errors_below_it() -> None:
    @cli_errors
    def command() -> None:
        note_input("v.yaml", ["base", "plan", "variants"])  # its plan: a file name
        note_input("plan.json", ["routes", "allocation"], under="plan")
        # the plan's fields are the plan file's, though the variant file has a plan field
        assert with_input_file(InputError("plan.routes.0", "x")).source == "plan.json"
        assert with_input_file(InputError("plan", "x")).source == "v.yaml"
        assert with_input_file(InputError("plan.engine", "x")).source == "v.yaml"
        assert with_input_file(InputError("variants.0", "x")).source == "v.yaml"
        assert with_input_file(InputError("routes.0", "x")).source is None
        # two plans under the same path: no guess
        note_input("other.json", ["routes"], under="plan")
        assert with_input_file(InputError("plan.routes.0", "x")).source is None

    command()


@pytest.mark.parametrize("field", ["orders", "vehicles.0.cost_per_km_cents"])
def test_no_file_is_named_without_a_command_reading_one(field: str) -> None:
    assert with_input_file(InputError(field, "x")).one_line() == f"{field}: x"


def test_a_nul_in_a_string_that_is_not_an_id_exits_2_naming_the_field(tmp_path: Path) -> None:
    """A region, a skill or a channel holding a NUL was a 422 over HTTP but routed and
    allocated by the CLI: now exit 2, one line naming the file and the field, in the words of
    the HTTP 422 (skills are ids since session 78: an id's words)."""
    from scenarios.geo import CONTROL_CHARACTERS_REASON, NUL_REASON

    data = json.loads(json.dumps(FAR_AND_DEAR))
    data["vehicles"][0]["skills"] = ["bike", "c\x00ld"]
    bad = _write(tmp_path / "skills.json", data)
    line = _error_line(
        ["route", str(bad), "--engine", "greedy", "--time-limit", "1", "-q", "--out", "-"]
    )
    assert line == f"error: {bad}: vehicles.0.skills.1: {CONTROL_CHARACTERS_REASON}"
    data = json.loads(json.dumps(FAR_AND_DEAR))
    data["orders"][0]["channel"] = "w\x00b"
    bad = _write(tmp_path / "channel.json", data)
    line = _error_line(
        ["route", str(bad), "--engine", "greedy", "--time-limit", "1", "-q", "--out", "-"]
    )
    assert line == f"error: {bad}: orders.0.channel: {NUL_REASON}"
    request = {
        "nodes": [{"id": "dc1", "location": {"x": 0, "y": 0}, "inventory": {"a": 1}}],
        "orders": [
            {
                "id": "o1",
                "location": {"x": 1, "y": 1},
                "region": "n\x00l",
                "lines": [{"sku": "a", "quantity": 1}],
            },
        ],
    }
    bad = _write(tmp_path / "request.json", request)
    line = _error_line(["allocate", str(bad), "--time-limit", "1", "--out", "-"])
    # a region is an id since session 77: the words of an id's control character
    assert line == f"error: {bad}: orders.0.region: {CONTROL_CHARACTERS_REASON}"
