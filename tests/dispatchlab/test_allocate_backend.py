"""``dispatchlab allocate --backend pyomo``: its worker (Pyomo imported) starts before the solve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import solvers.allocation
from api.examples import ALLOCATION_EXAMPLE
from dispatchlab.cli import main
from solvers.allocation import pyomo_worker


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What happened, in order: the pyomo worker's start ("load"), the solve (its backend)."""
    happened: list[Any] = []
    real = solvers.allocation.allocate

    def load(wait_s: float = 60.0) -> float:
        happened.append("load")
        return 0.0

    def allocate(request: Any, params: Any) -> Any:
        happened.append(("allocate", params.backend))
        # solved by highspy: the test does not import Pyomo itself
        return real(request, params.model_copy(update={"backend": "highspy"}))

    monkeypatch.setattr(pyomo_worker, "warm_worker", load)
    monkeypatch.setattr(solvers.allocation, "allocate", allocate)
    return happened


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    """A small allocation request."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps(ALLOCATION_EXAMPLE["online"]["value"]["request"]))
    return path


def _allocate(
    capsys: pytest.CaptureFixture[str], request_file: Path, *options: str
) -> tuple[int, str]:
    out = request_file.parent / "result.json"
    return _run(capsys, "allocate", str(request_file), "--out", str(out), "-q", *options)


def test_backend_pyomo_imports_pyomo_before_the_solve(
    capsys: pytest.CaptureFixture[str], request_file: Path, events: list[Any]
) -> None:
    """The CLI could not ask for the pyomo backend; asked for, its import (about 1 s) would
    come out of ``--time-limit`` (or a shorter limit get the highspy backend)."""
    code, err = _allocate(capsys, request_file, "--backend", "pyomo", "--time-limit", "0.5")
    assert code == 0, err
    assert events == ["load", ("allocate", "pyomo")]


@pytest.mark.parametrize(
    "options", [(), ("--backend", "highspy"), ("--backend", "highspy", "--baseline", "nearest")]
)
def test_pyomo_is_not_imported_when_the_solve_does_not_use_it(
    capsys: pytest.CaptureFixture[str],
    request_file: Path,
    events: list[Any],
    options: tuple[str, ...],
) -> None:
    code, err = _allocate(capsys, request_file, *options)
    assert code == 0, err
    assert "load" not in events and len(events) == 1


def test_an_unknown_backend_or_a_failed_import_is_one_line(
    capsys: pytest.CaptureFixture[str],
    request_file: Path,
    events: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, err = _allocate(capsys, request_file, "--backend", "gurobi")
    assert code == 2
    assert err.strip() == "error: --backend: unknown backend 'gurobi'; choose highspy or pyomo"

    def missing(wait_s: float = 60.0) -> float:
        raise pyomo_worker.WorkerStartError("Pyomo cannot be imported: No module named 'pyomo'")

    monkeypatch.setattr(pyomo_worker, "warm_worker", missing)
    code, err = _allocate(capsys, request_file, "--backend", "pyomo")
    assert code == 2
    assert err.strip() == (
        "error: --backend pyomo: Pyomo cannot be imported: No module named 'pyomo'"
    )
    assert events == []


@pytest.mark.parametrize(
    ("options", "option"),
    [(("--backend", "pyomo"), "--backend"), (("--mode", "online"), "--mode")],
)
def test_a_baseline_with_a_backend_or_mode_it_ignores_is_one_line(
    capsys: pytest.CaptureFixture[str],
    request_file: Path,
    events: list[Any],
    options: tuple[str, ...],
    option: str,
) -> None:
    """``--baseline`` ran the baseline and ignored ``--backend pyomo`` / ``--mode online``."""
    code, err = _allocate(capsys, request_file, "--baseline", "nearest", *options)
    assert code == 2, err
    assert err.strip().splitlines() == [
        f"error: {option}: the nearest baseline "
        + ("runs no solver" if option == "--backend" else "has no online mode")
        + ": omit one of the two"
    ]
    assert events == []
