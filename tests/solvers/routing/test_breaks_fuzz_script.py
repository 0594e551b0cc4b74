"""``benchmarks/routing_breaks_fuzz.py``: usage errors, and a tiny run writes its tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from solvers.routing import build_problem
from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("routing_breaks_fuzz.py", "routing_breaks_fuzz_script") as module:
        yield module


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--cases", "0", "must be at least 1, got 0"),
        ("--ortools-time", "nan", "'nan' is not a positive number"),
        ("--engines", "pyvpr", "'pyvpr' is not an engine"),
        ("--engines", ",", "give at least one engine"),
    ],
)
def test_bad_arguments_are_usage_errors(
    script: ModuleType,
    option: str,
    value: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        script.main([option, value])
    assert info.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err


def test_cases_are_seeded_and_brute_force_is_a_lower_bound(script: ModuleType) -> None:
    a, b = script.make_case(1, 7), script.make_case(1, 7)
    assert a == b and a != script.make_case(2, 7)
    problem = build_problem(a)
    best = script.best_routes(problem)
    assert best is not None
    _, routes = best
    served = sorted(t for seq in routes.values() for t in seq)
    assert served == [info.delivery for info in problem.orders]


def test_a_tiny_run_writes_its_tables(script: ModuleType, tmp_path: Path) -> None:
    code = script.main(
        ["--cases", "3", "--engines", "greedy", "--out-dir", str(tmp_path), "--out-prefix", "f"]
    )
    assert code == 0
    table = (tmp_path / "f.md").read_text(encoding="utf-8")
    assert "--cases 3 --engines greedy --out-prefix f --seed 1 " in table  # defaults after
    assert "| greedy |" in table
    rows = (tmp_path / "f.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("case,engine,") and len(rows) > 1


def test_ctrl_c_keeps_the_cases_done(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C ended the run with a traceback and no table; now the cases every engine ran
    are written (the engines stay paired: the interrupted case is left out), exit 130."""
    real = script.run_case
    calls = 0

    def interrupted_in_the_second_case(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:  # case 0: greedy, greedy again; case 1: its first engine
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(script, "run_case", interrupted_in_the_second_case)
    argv = ["--cases", "4", "--engines", "greedy,greedy", "--out-dir", str(tmp_path)]
    assert script.main([*argv, "--out-prefix", "f"]) == 130
    table = (tmp_path / "f.md").read_text(encoding="utf-8")
    assert "1 seeded cases (interrupted: 1 of 4)" in table
    rows = (tmp_path / "f.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["0", "0"]
    calls = 2  # the next call is the third: the first case is interrupted, nothing written
    assert script.main([*argv, "--out-prefix", "g"]) == 130
    assert not (tmp_path / "g.md").exists()


def test_a_run_without_a_full_plan_replaces_both_files(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No case with a plan serving every order: the markdown was written alone, beside the
    last run's CSV (a mixed pair); now the CSV is replaced too, its header only."""
    for name in ("f.csv", "f.md"):
        (tmp_path / name).write_text("the last run's\n", encoding="utf-8")
    monkeypatch.setattr(script, "run_case", lambda *_args, **_kwargs: None)
    argv = ["--cases", "2", "--engines", "greedy", "--out-dir", str(tmp_path)]
    assert script.main([*argv, "--out-prefix", "f"]) == 0
    assert "2 seeded cases, 0 where" in (tmp_path / "f.md").read_text(encoding="utf-8")
    rows = (tmp_path / "f.csv").read_text(encoding="utf-8").splitlines()
    assert rows == [",".join(script.CSV_FIELDS)]


def test_ctrl_c_while_the_table_is_written_is_one_line_and_exit_130(
    script: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Ctrl-C once the cases are done (a second one, as the table is written) was a
    KeyboardInterrupt traceback."""

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(script, "write_table_files", interrupted)
    argv = ["--cases", "1", "--engines", "greedy", "--out-dir", str(tmp_path)]
    try:
        assert script.main(argv) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main")
    assert "interrupted: no table written" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
