"""``benchmarks/allocation.py``: where its tables go."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO, benchmark_script

RESULTS = REPO / "benchmarks" / "results"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("allocation.py", "allocation_benchmark") as module:
        yield module


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--quick"], RESULTS / "quick"),  # the documented smoke run keeps the committed tables
        ([], RESULTS),
        (["--quick", "--out-dir", "elsewhere"], Path("elsewhere")),
    ],
)
def test_tables_go_to_the_results_folder_unless_quick(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: Path
) -> None:
    written: list[Path] = []
    monkeypatch.setattr(bench, "online", lambda out_dir, _orders: written.append(out_dir))
    assert bench.main([*args, "--only", "online"]) == 0
    assert written == [expected]


def test_time_limits_mode_is_opt_in_and_names_its_table(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--only time-limits`` runs the time-limit table (not part of the default run)."""
    calls: list[tuple[Path, tuple[int, ...], str]] = []

    def fake(out_dir: Path, *, sizes: tuple[int, ...], name: str) -> None:
        calls.append((out_dir, tuple(sizes), name))

    monkeypatch.setattr(bench, "time_limits", fake)
    for name in ("online", "crowded", "compare", "reference", "scaling"):
        monkeypatch.setattr(bench, name, lambda *a, **k: None)
    assert bench.main([]) == 0
    assert calls == []
    args = ["--only", "time-limits", "--time-limits-name", "before"]
    assert bench.main(args) == 0
    assert calls == [(RESULTS, (1, 30, 300, 2_000), "before")]


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_the_certify_script_refuses_a_bad_number_of_seconds(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``allocation_certify.py --long-solve`` / ``--seconds``: a usage error, not a traceback."""
    with benchmark_script("allocation_certify.py", "allocation_certify_script") as module:
        for option in ("--long-solve", "--seconds"):
            with pytest.raises(SystemExit) as info:
                module.main(["--seeds", "28", option, value])
            assert info.value.code == 2
            assert f"argument {option}:" in capsys.readouterr().err


def test_only_names_its_tables_in_help_and_refuses_an_unknown_one(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt ``--only`` ran no table and exited 0; docs/allocation.md sends to --help."""
    for name in ("online", "crowded", "compare", "reference", "scaling", "time_limits"):
        monkeypatch.setattr(bench, name, lambda *a, **k: pytest.fail("a table ran"))
    with pytest.raises(SystemExit) as info:
        bench.main(["--only", "literature,onlin"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --only: unknown table(s): onlin" in err and "time-limits" in err
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    for name in ("literature", "city", "reference", "scaling", "city-seeds", "online"):
        assert name in usage.split("--only ONLY", 1)[1]
    assert "crowded" in usage and "time-limits" in usage
