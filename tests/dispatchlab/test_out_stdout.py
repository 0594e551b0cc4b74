"""``--out -`` writes the result JSON alone to stdout, for every command that writes one."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from dispatchlab.cli import app
from scenarios.generate import generate_city
from scenarios.io import write_json

runner = CliRunner()


@pytest.fixture
def tiny_city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 12-order city file; the working folder is ``tmp_path`` (a file '-' would land there)."""
    monkeypatch.chdir(tmp_path)
    city = generate_city(seed=3, num_orders=12, num_nodes=2, num_couriers=3)
    path = tmp_path / "city.json"
    write_json(city.model_copy(update={"arrivals": None}), path)
    return path


@pytest.mark.parametrize(
    ("command", "key"),
    [
        (["route", "{city}", "--engine", "greedy", "--time-limit", "1"], "routes"),
        (["simulate", "{city}", "--replications", "2", "--executor", "serial"], "on_time_rate"),
        (["scenario", "convert", "{city}"], "orders"),
        (["scenario", "generate", "--orders", "10", "--nodes", "2", "--couriers", "2"], "orders"),
    ],
)
def test_out_dash_prints_only_the_json(tiny_city: Path, command: list[str], key: str) -> None:
    args = [a.replace("{city}", str(tiny_city)) for a in command]
    result = runner.invoke(app, [*args, "--out", "-"])
    assert result.exit_code == 0, result.output
    assert key in json.loads(result.stdout)  # stdout is the JSON and nothing else
    assert not (tiny_city.parent / "-").exists()


def test_a_scenario_file_given_to_allocate_says_to_add_scenario(tiny_city: Path) -> None:
    result = runner.invoke(app, ["allocate", str(tiny_city)])
    assert result.exit_code == 2
    assert "add --scenario" in result.stderr and "Traceback" not in result.output
    fixed = runner.invoke(app, ["allocate", str(tiny_city), "--scenario", "--out", "-"])
    assert fixed.exit_code == 0, fixed.output
    assert "assignments" in json.loads(fixed.stdout)


@pytest.mark.parametrize(
    "command",
    [
        ["scenario", "generate", "--orders", "10", "--nodes", "2", "--couriers", "2", "--out", "-"],
        ["route", "{city}", "--engine", "greedy", "--time-limit", "1", "--out", "-"],
        ["scenario", "schema"],
        ["version"],
    ],
)
def test_a_stdout_closed_by_its_reader_ends_the_command_quietly(
    tiny_city: Path, command: list[str]
) -> None:
    """``dispatchlab ... --out - | head`` said ``error: Broken pipe`` (exit 2), as if the
    input were bad; the command now ends as Click and Rich end one: no line, exit 1."""
    from scenarios.pipes import EXIT_CLOSED_STDOUT
    from tests.scripts import run_with_stdout_closed

    args = [a.replace("{city}", str(tiny_city)) for a in command]
    code, err = run_with_stdout_closed([sys.executable, "-m", "dispatchlab", *args])
    assert (code, err) == (EXIT_CLOSED_STDOUT, "")


@pytest.mark.parametrize(
    "command",
    [
        ["scenario", "generate", "--orders", "1000", "--nodes", "2", "--couriers", "2"],
        ["scenario", "convert", "{big}"],
    ],
)
def test_a_reader_gone_in_the_middle_of_a_large_output_ends_the_command_quietly(
    tmp_path: Path, command: list[str]
) -> None:
    """``dispatchlab scenario generate --orders 1000 | head -c 100`` exited 0: the write
    to the pipe returned the bytes the pipe took when ``head`` went, the text stream counted
    the whole text written and the rest was lost without a word. README promises exit 1."""
    from scenarios.pipes import EXIT_CLOSED_STDOUT
    from tests.scripts import run_with_stdout_closed_midway

    big = tmp_path / "big.json"
    write_json(generate_city(seed=3, num_orders=1000, num_nodes=2, num_couriers=2), big)
    assert big.stat().st_size > 4 * 65536  # more than a pipe holds (64 KiB on Linux)
    args = [a.replace("{big}", str(big)) for a in command]
    code, err = run_with_stdout_closed_midway([sys.executable, "-m", "dispatchlab", *args])
    assert (code, err) == (EXIT_CLOSED_STDOUT, "")


def test_a_broken_pipe_elsewhere_is_still_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Only a closed standard output ends quietly: another pipe's end is an error line."""
    import typer

    from dispatchlab.cli._common import cli_errors

    @cli_errors
    def write() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(typer.Exit) as info:
        write()
    assert info.value.exit_code == 2
    assert capsys.readouterr().err == "error: Broken pipe\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "command",
    [
        ["version"],
        ["--help"],
        ["scenario", "--help"],
        ["scenario", "schema"],
        ["scenario", "show", "{city}"],
        ["route", "{city}", "--engine", "greedy", "--time-limit", "1", "--out", "-"],
        ["simulate", "{city}", "--replications", "1", "--executor", "serial"],
    ],
)
def test_a_stdout_that_cannot_be_written_is_one_error_line(
    tiny_city: Path, command: list[str]
) -> None:
    """``dispatchlab version > /dev/full`` (and ``--help``) ended in an OSError traceback, and
    a command's output there was ``error: No space left on device`` with exit 2, as if its
    input were bad: every command (help included) says it in one line, exit 1, as
    ``run_all.py --list`` and the schema do."""
    import subprocess

    from scenarios.pipes import EXIT_STDOUT_UNWRITABLE
    from tests.scripts import REPO

    args = [a.replace("{city}", str(tiny_city)) for a in command]
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "dispatchlab", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=300,
        )
    assert (done.returncode, done.stderr.strip()) == (
        EXIT_STDOUT_UNWRITABLE,
        "error: standard output: No space left on device",
    )


def test_an_unwritable_file_is_still_the_commands_error(
    tiny_city: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only standard output's failed writes are told apart: a file that cannot be written is
    still an input or output error of the command, exit 2; and the entry point puts standard
    output back."""
    from dispatchlab.cli import main

    before = sys.stdout
    with pytest.raises(SystemExit) as info:
        main(["scenario", "convert", str(tiny_city), "--out", "/dev/full"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: "), err
    assert "No space left on device" in err and "standard output" not in err
    assert sys.stdout is before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["route", "{city}", "--engine", "greedy", "--time-limit", "1", "--out"], "--out"),
        (["allocate", "{city}", "--scenario", "--time-limit", "5", "--out"], "--out"),
        (["scenario", "convert", "{city}", "--out"], "--out"),
        (
            ["scenario", "generate", "--orders", "5", "--nodes", "2", "--couriers", "2", "--out"],
            "--out",
        ),
        (["simulate", "{city}", "--replications", "1", "--executor", "serial", "--out"], "--out"),
        (["allocate-literature", "--orders", "5", "--nodes", "2"], "OUT"),
        (
            ["evaluate", "--scenario", "{city}", "--policies", "greedy", "--seeds", "1", "--days"],
            "--days",
        ),
    ],
)
def test_an_output_file_that_cannot_be_written_is_named_with_its_option(
    tiny_city: Path, capsys: pytest.CaptureFixture[str], command: list[str], option: str
) -> None:
    """``--out /dev/full`` said ``error: No space left on device``: no file, no option (the
    docs say a failed write names the path given); the line names both, exit 2 as before."""
    from dispatchlab.cli import main

    args = [a.replace("{city}", str(tiny_city)) for a in command]
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([*args, "/dev/full"])
    err = capsys.readouterr().err
    assert (info.value.code, err) == (2, f"error: /dev/full: {option}: No space left on device\n")


def test_a_report_file_that_cannot_be_written_is_named_and_the_old_report_kept(
    tiny_city: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of ``whatif --out FOLDER`` that a full disk refuses is named, under the option
    that gave its folder (the write's OSError names no file); and the folder keeps its
    previous report whole (until session 81 the files written before the failure were new,
    the failed one empty, the others old)."""
    import pathlib

    import simulation.report
    from dispatchlab.cli import main

    real_open = pathlib.Path.open

    class FullDisk:
        """A file opened for writing on a full disk: every write fails."""

        def __init__(self, fh: IO[Any]) -> None:
            self.fh = fh

        def write(self, _data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            self.fh.close()

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *_exc: object) -> None:
            self.close()

    def opened(path: pathlib.Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        fh = real_open(path, mode, *args, **kwargs)  # type: ignore[call-overload]
        writing = any(m in mode for m in "wxa")
        return FullDisk(fh) if writing and "comparison.csv" in path.name else fh

    monkeypatch.setattr(simulation.report, "plots", lambda sweep: {})
    (tiny_city.parent / "v.yaml").write_text("base: city.json\nvariants:\n  - name: same\n")
    report = tiny_city.parent / "report"
    report.mkdir()
    old = ["comparison.md", "comparison.csv", "replications.csv", "report.html"]
    for name in old:
        (report / name).write_text(f"old {name}\n")
    monkeypatch.setattr(pathlib.Path, "open", opened)
    args = ["whatif", str(tiny_city.parent / "v.yaml"), "--replications", "1"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([*args, "--executor", "serial", "-q", "--out", str(report)])
    monkeypatch.undo()
    err = capsys.readouterr().err
    expected = f"error: {report / 'comparison.csv'}: --out: No space left on device\n"
    assert (info.value.code, err) == (2, expected)
    assert sorted(p.name for p in report.iterdir()) == sorted(old)  # no temporary file left
    for name in old:
        assert (report / name).read_text() == f"old {name}\n", name


def test_a_write_error_names_the_file_written() -> None:
    """An OSError of a write names no file (``No space left on device``): the file written
    is named, its class and reason kept; an error naming a file already is left alone."""
    from scenarios.files import naming_written

    with pytest.raises(OSError) as info, naming_written("r.json"):
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    assert type(info.value) is BlockingIOError
    assert (info.value.errno, info.value.strerror, info.value.filename) == (
        errno.EAGAIN,
        "Resource temporarily unavailable",
        "r.json",
    )
    with pytest.raises(OSError) as info, naming_written("r.json"):
        raise PermissionError(errno.EACCES, "Permission denied", "other.json")
    assert info.value.filename == "other.json"
    with pytest.raises(OSError) as info, naming_written("r.json"):
        raise OSError("no errno")
    assert (info.value.strerror, info.value.filename) == ("no errno", "r.json")


def test_a_failed_atomic_write_names_the_file_not_its_temp_file(tmp_path: Path) -> None:
    """A regular file's atomic write fails in its temp file (a full disk): the error names the
    file given, and neither it nor the temp file is left."""
    from scenarios.io.json_io import atomic_write

    out = tmp_path / "r.json"
    with pytest.raises(OSError) as info, atomic_write(out) as fh:
        fh.write(b"{")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(out))
    assert list(tmp_path.iterdir()) == []


def test_a_model_file_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    """``train --out m.zip`` on a full disk: SB3's write of the partial file names no file;
    the error names the model file given (not the partial one), and no partial file is left."""
    from types import SimpleNamespace

    from rl_agents.env import EnvParams
    from rl_agents.model_io import save_model

    def full(path: object) -> None:
        Path(str(path)).write_bytes(b"PK")  # begun, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    model = SimpleNamespace(policy=SimpleNamespace(), save=full)
    out = tmp_path / "m.zip"
    with pytest.raises(OSError) as info:
        save_model(model, out, algo="ppo", env_params=EnvParams())
    assert (info.value.strerror, info.value.filename) == ("No space left on device", str(out))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_hindsight_cache_that_cannot_be_appended_to_is_named(tmp_path: Path) -> None:
    """``evaluate --hindsight-cache`` on a full disk: the append's error names the cache."""
    from rl_agents.evaluate import DayOutcome, _append_cache

    cache = tmp_path / "cache.jsonl"
    cache.symlink_to("/dev/full")
    day = DayOutcome("hindsight", 1, {"cost": 1.0}, 0, [], 0.5)
    with pytest.raises(OSError) as info:
        _append_cache(cache, "key", day)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(cache))


@given(
    code=st.sampled_from(sorted(errno.errorcode)),
    path=st.text(st.characters(codec="utf-8", exclude_characters="\x00/"), min_size=1),
)
def test_a_write_error_keeps_its_class_and_reason_and_names_the_file(code: int, path: str) -> None:
    """Whatever the errno (its OSError subclass: PermissionError, BrokenPipeError...), the
    error a write raises is raised naming the file written, its class and reason kept."""
    from scenarios.files import naming_written

    raised = OSError(code, os.strerror(code))
    with pytest.raises(OSError) as info, naming_written(path):
        raise raised
    assert type(info.value) is type(raised)
    assert (info.value.errno, info.value.strerror, info.value.filename) == (
        code,
        os.strerror(code),
        path,
    )
