"""``simulate`` and ``whatif`` refuse a day with no orders and no arrivals (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from scenarios.errors import InputError
from scenarios.io import write_json
from scenarios.model import Scenario
from scenarios.stochastic import ArrivalProcess
from simulation.world import NOTHING_TO_PLAY, check_has_demand

from .conftest import line_scenario

runner = CliRunner()


def _empty() -> Scenario:
    return line_scenario().model_copy(update={"orders": []})


def test_a_day_without_orders_or_arrivals_has_nothing_to_play() -> None:
    with pytest.raises(InputError) as err:
        check_has_demand(_empty(), why=NOTHING_TO_PLAY)
    assert err.value.field == "orders"
    assert "no orders and no arrivals expected over the horizon" in err.value.reason
    check_has_demand(line_scenario(), why=NOTHING_TO_PLAY)  # orders: playable


def test_arrivals_expected_make_a_day_without_orders_playable() -> None:
    line = line_scenario()
    quiet = ArrivalProcess(hourly_rate=[0.0] * 24, templates=line.orders[:1])
    some = ArrivalProcess(hourly_rate=[0.5] * 24, templates=line.orders[:1])
    with pytest.raises(InputError):
        check_has_demand(_empty().model_copy(update={"arrivals": quiet}), why=NOTHING_TO_PLAY)
    check_has_demand(_empty().model_copy(update={"arrivals": some}), why=NOTHING_TO_PLAY)


def test_simulate_refuses_an_empty_day_naming_the_file(tmp_path: Path) -> None:
    """Until session 67 it played 30 days of zeros and printed their table."""
    write_json(_empty(), tmp_path / "empty.json")
    out = tmp_path / "kpis.json"
    args = ["simulate", str(tmp_path / "empty.json"), "--executor", "serial", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'empty.json'}: orders: no orders and no arrivals" in result.output
    assert not out.exists()


def test_whatif_refuses_an_empty_base_naming_its_file(tmp_path: Path) -> None:
    write_json(_empty(), tmp_path / "empty.json")
    (tmp_path / "variants.yaml").write_text(
        "base: empty.json\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: 1.5}\n"
    )
    out = tmp_path / "report"
    args = ["whatif", str(tmp_path / "variants.yaml"), "--executor", "serial", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "empty.json: orders: no orders and no arrivals" in result.output
    assert not (out / "comparison.md").exists()
