"""A benchmark's output folder that cannot take its tables is a usage error before the run;
a table that cannot be written all the same (a full disk) is one line naming it, not a
traceback once the run is done."""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, ScriptArgs, benchmark_script

#: the benchmark scripts imported by :func:`_refusal` (``outdir_<name>``)
_ARGS = ScriptArgs("outdir")


@pytest.fixture(scope="module", autouse=True)
def _scripts_loaded() -> Iterator[None]:
    """The scripts :func:`_refusal` imports stay imported until this module's tests end."""
    yield
    _ARGS.close()


#: (script, its output folder option, other arguments its parser needs)
FOLDER_OPTIONS = [
    ("allocation", "--out-dir", []),
    ("allocation_pyomo_jobs", "--out-dir", []),
    ("allocation_pyomo_limits", "--out-dir", []),
    ("allocation_small", "--out-dir", []),
    ("generate_city", "--out-dir", []),
    ("load", "--out-dir", []),
    ("routing", "--out-dir", ["--set", "solomon"]),
    ("routing_breaks_fuzz", "--out-dir", []),
    ("routing_budget", "--out-dir", []),
    ("routing_small", "--out-dir", []),
    ("simulation_policies", "--out-dir", []),
    ("travel_matrix", "--out-dir", []),
    ("rl_evaluate", "--out", []),
    ("rl_speed", "--out", []),
    ("simulation", "--out", []),
    ("run_all", "--out-dir", []),
]


def _refusal(script: str, args: list[str]) -> str:
    """What ``benchmarks/<script>.py``'s parser says refusing ``args`` (exit 2)."""
    namespace, code, err = _ARGS.parse(script, args)
    assert namespace is None, f"{script}.py {' '.join(args)}: accepted"
    assert code == 2, (code, err)
    return err


@pytest.mark.parametrize(("script", "option", "args"), FOLDER_OPTIONS)
def test_an_output_folder_under_a_file_is_refused_before_the_run(
    tmp_path: Path, script: str, option: str, args: list[str]
) -> None:
    """``--out-dir /etc/hostname/x`` (a file in the path): the run went on for minutes or
    hours, then the table's write ended in a NotADirectoryError traceback."""
    (tmp_path / "file").write_text("")
    folder = tmp_path / "file" / "x"
    said = _refusal(script, [*args, option, str(folder)])
    assert f"argument {option}: {folder}: {tmp_path / 'file'} is not a folder" in said, said
    assert "Traceback" not in said


@pytest.mark.parametrize(("script", "option", "args"), FOLDER_OPTIONS[:3])
def test_an_output_folder_that_is_a_file_is_refused(
    tmp_path: Path, script: str, option: str, args: list[str]
) -> None:
    target = tmp_path / "table.md"
    target.write_text("kept\n")
    said = _refusal(script, [*args, option, str(target)])
    assert f"argument {option}: {target}: is a file, expected a folder" in said, said
    assert target.read_text() == "kept\n"


def test_a_missing_output_folder_is_taken_and_made_by_the_write(tmp_path: Path) -> None:
    """A folder still to be made (with its parents) is taken, as the tables' write makes it;
    the check leaves nothing behind."""
    from benchmarks.measures import output_folder_problem, write_table_files

    folder = tmp_path / "a" / "b"
    assert output_folder_problem(folder) is None
    assert list(tmp_path.iterdir()) == []
    write_table_files(folder, {"t.md": "x\n"})
    assert (folder / "t.md").read_text() == "x\n"
    assert output_folder_problem(folder) is None and os.listdir(folder) == ["t.md"]


@pytest.mark.parametrize(("name", "made"), [(".", "a file in folder"), ("new", "a folder in")])
def test_an_output_folder_where_nothing_can_be_made_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, made: str
) -> None:
    """Root may write to ``/proc`` by its permissions, yet nothing can be made there."""
    from benchmarks.measures import output_folder_problem

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    folder = tmp_path / name if name != "." else tmp_path
    assert output_folder_problem(folder) == f"cannot make {made} {tmp_path} (Permission denied)"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_table_on_a_full_disk_is_one_line_naming_it_and_its_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table that cannot be written once the run is done (its file on a full disk, here a
    link to ``/dev/full``): one line naming the file and the option, exit 2, where it was an
    OSError traceback."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "generate-city.md").symlink_to("/dev/full")
    with benchmark_script("generate_city.py", "outdir_full_generate_city") as module:
        monkeypatch.setattr(module, "run", lambda *_args: [{"orders": 10, "generate_s": 0.1}])
        monkeypatch.setattr(sys, "argv", ["generate_city.py", "--out-dir", str(out)])
        code = module.run_script(module.main)
    said = capsys.readouterr().err
    assert code == 2
    assert said == f"error: {out / 'generate-city.md'}: --out-dir: No space left on device\n"


def test_a_file_error_without_an_option_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.measures import EXIT_UNWRITABLE_FILE, run_script

    def main() -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "t.md"))

    assert run_script(main) == EXIT_UNWRITABLE_FILE
    assert capsys.readouterr().err == f"error: {tmp_path / 't.md'}: No space left on device\n"


@pytest.mark.parametrize(("script", "option", "args"), FOLDER_OPTIONS)
def test_a_default_output_folder_is_checked_as_a_given_one(
    monkeypatch: pytest.MonkeyPatch, script: str, option: str, args: list[str]
) -> None:
    """argparse passes only a string default through the option's type: a default given as
    a Path (``benchmarks/results``) was not checked, so a results folder that cannot take the
    tables failed once the run was done, with a traceback."""
    import benchmarks.measures

    monkeypatch.setattr(benchmarks.measures, "output_folder_problem", lambda _f: "refused")
    if script in ("allocation", "run_all"):  # checked after parsing (see the tests below)
        namespace, _code, _err = _ARGS.parse(script, args)
        assert namespace is not None and namespace.out_dir is None
        return
    said = _refusal(script, args)
    assert f"argument {option}: {REPO / 'benchmarks' / 'results'}: refused" in said, said


@pytest.mark.parametrize("quick", [[], ["--quick"]])
def test_allocation_s_default_output_folder_is_checked_before_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], quick: list[str]
) -> None:
    """``allocation.py``'s default folder (``benchmarks/results``, ``.../quick`` with
    ``--quick``) is decided after parsing; it is checked then, before any table is run."""
    import benchmarks.measures

    monkeypatch.setattr(benchmarks.measures, "output_folder_problem", lambda _f: "refused")
    with benchmark_script("allocation.py", "outdir_default_allocation") as module:

        def ran_on(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("the run went on past its arguments")

        monkeypatch.setattr(module, "comma_option", ran_on)
        with pytest.raises(SystemExit) as stop:
            module.main(quick)
    folder = REPO / "benchmarks" / "results" / ("quick" if quick else "")
    assert stop.value.code == 2
    assert f"argument --out-dir: {str(folder).rstrip('/')}: refused" in capsys.readouterr().err


@pytest.mark.parametrize("args", [[], ["--list"], ["--only", "simulation"]])
def test_run_all_s_default_output_folder_is_checked_before_any_step(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """``run_all.py`` without ``--out-dir``: its steps write into ``benchmarks/results``,
    which it did not check (a given ``--out-dir`` is checked while parsing); a results folder
    that cannot take the tables is now the same usage error before any step runs, not each
    step's refusal in turn."""
    import benchmarks.measures

    monkeypatch.setattr(benchmarks.measures, "output_folder_problem", lambda _f: "refused")
    monkeypatch.setattr(sys, "argv", ["run_all.py", *args])
    with benchmark_script("run_all.py", "outdir_default_run_all") as module:

        def ran(*_args: object, **_kwargs: object) -> int:
            raise AssertionError("a step ran")

        monkeypatch.setattr(module, "_run", ran)
        with pytest.raises(SystemExit) as stop:
            module.main()
    assert stop.value.code == 2
    said = capsys.readouterr()
    assert f"argument --out-dir: {REPO / 'benchmarks' / 'results'}: refused" in said.err
    assert said.out == ""  # (--list printed the steps)


@pytest.mark.parametrize("given", ["absolute", "relative"])
def test_the_cli_and_the_benchmarks_name_an_output_option_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """One helper (:func:`scenarios.files.output_error_line`) says a write error on a file in
    an output folder an option gave, for ``dispatchlab`` and for the benchmark scripts: the
    file, the option, the reason; a file elsewhere, or an error naming two files, without
    an option. A folder given relative and a file named absolute (or the other way) are one
    place."""
    import contextvars

    import benchmarks.measures as measures
    from dispatchlab.cli._common import note_output, os_error_message

    monkeypatch.chdir(tmp_path)
    folder = Path("out") if given == "relative" else tmp_path / "out"
    monkeypatch.setattr(measures, "_output_folders", [(folder, "--out-dir")])
    inside = tmp_path / "out" / "deeper" / "t.md"
    errors = [
        OSError(errno.ENOSPC, "No space left on device", str(inside)),
        OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "elsewhere.md")),
        OSError(errno.EXDEV, "Invalid cross-device link", str(inside), None, "/x/t.md"),
    ]

    def cli_lines() -> list[str]:
        note_output(folder, "--out-dir", folder=True)
        return [os_error_message(err) for err in errors]

    said = contextvars.copy_context().run(cli_lines)
    assert said == [measures.file_error_line(err) for err in errors]
    assert said == [
        f"{inside}: --out-dir: No space left on device",
        f"{tmp_path / 'elsewhere.md'}: No space left on device",
        f"{inside} -> /x/t.md: Invalid cross-device link",
    ]
