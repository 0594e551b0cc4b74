"""Every input file the CLI reads is capped: exit 2 naming the file and the cap, promptly."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.core.config import Settings
from dispatchlab.cli import app
from scenarios.files import DEFAULT_MAX_INPUT_BYTES, MAX_INPUT_ENV

runner = CliRunner()

SCENARIO = '{"nodes": [{"id": "n0", "location": {"x": 0, "y": 0}}], "orders": []}'


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A scenario, a plan and a variant file, each well under 1,000 bytes."""
    (tmp_path / "s.json").write_text(SCENARIO)
    (tmp_path / "p.json").write_text('{"routes": []}')
    (tmp_path / "v.yaml").write_text("base: s.json\nvariants: []\n")
    (tmp_path / "big.json").write_text(" " * 1001 + SCENARIO)
    return {p.stem: p for p in tmp_path.iterdir()}


@pytest.mark.parametrize(
    "command",
    [
        ["scenario", "show", "{big}"],
        ["scenario", "convert", "{big}", "--format", "json"],
        ["route", "{big}"],
        ["allocate", "{big}"],
        ["allocate", "{big}", "--scenario"],
        ["simulate", "{big}"],
        ["simulate", "{s}", "--plan", "{p}", "--plan", "{big}"],
        ["whatif", "{big}", "--out", "{tmp}/report"],
        ["evaluate", "--scenario", "{big}", "--policies", "greedy", "--seeds", "1"],
    ],
)
def test_an_input_past_the_cap_is_one_line_naming_it(
    files: dict[str, Path], command: list[str]
) -> None:
    names = {k: str(v) for k, v in files.items()} | {"tmp": str(files["s"].parent)}
    args = [a.format(**names) for a in command]
    result = runner.invoke(app, args, env={MAX_INPUT_ENV: "1000"})
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {files['big']}: path: file is larger than the 1,000 bytes an input may have "
        f"(set {MAX_INPUT_ENV} to allow more)\n"
    )
    assert not (files["s"].parent / "report").exists()


def test_the_default_cap_is_far_above_the_service_body_limit() -> None:
    assert 10 * Settings().max_body_bytes <= DEFAULT_MAX_INPUT_BYTES


def test_the_cap_can_be_raised(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["scenario", "show", str(files["big"]), "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["scenario", "show", str(files["big"]), "--json"], env={MAX_INPUT_ENV: "2000"}
    )
    assert result.exit_code == 0, result.output


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_dev_zero_ends_at_the_cap() -> None:
    result = runner.invoke(
        app, ["scenario", "show", "/dev/zero", "--format", "json"], env={MAX_INPUT_ENV: "65536"}
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: /dev/zero: path: file is larger than the 65,536 bytes")


def test_a_bad_cap_is_named(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["scenario", "show", str(files["s"])], env={MAX_INPUT_ENV: "lots"})
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {MAX_INPUT_ENV}: expected a whole number of bytes above 0, got 'lots'"
    )
