"""Where results go: a file's folder must exist; a folder output is made, not its parents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from tests.dispatchlab.small import SMALL

runner = CliRunner()


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working folder, holding small.json and variants.yaml; training and
    RL evaluation fail the test if they start (the output must be refused before)."""
    import rl_agents.evaluate
    import rl_agents.train

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(rl_agents.train, "train", never)
    monkeypatch.setattr(rl_agents.evaluate, "evaluate_policies", never)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.json").write_text(json.dumps(SMALL))
    (tmp_path / "variants.yaml").write_text("base: small.json\nvariants: []\n")
    return tmp_path


def _one_line(result: object) -> str:
    assert getattr(result, "exit_code", None) == 2, getattr(result, "output", "")
    lines = getattr(result, "stderr", "").strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in getattr(result, "output", "")
    return str(lines[0])


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["route", "small.json", "--out"], "--out"),
        (["allocate", "small.json", "--scenario", "--out"], "--out"),
        (["simulate", "small.json", "--out"], "--out"),
        (["scenario", "generate", "--out"], "--out"),
        (["scenario", "convert", "small.json", "--out"], "--out"),
        (["scenario", "demo", "--out"], "--out"),
        (["allocate-literature"], "OUT"),
        (["train", "--out"], "--out"),
        (["train", "--demos"], "--demos"),
        (["evaluate", "--seeds", "1", "--out"], "--out"),
        (["evaluate", "--seeds", "1", "--table"], "--table"),
        (["evaluate", "--seeds", "1", "--hindsight-cache"], "--hindsight-cache"),
    ],
)
def test_a_file_in_a_missing_folder_names_the_folder_and_makes_none(
    work: Path, command: list[str], option: str
) -> None:
    target = work / "missing" / "deeper" / ("out.zip" if command[0] == "train" else "out.json")
    if option == "--demos":
        target = target.with_suffix(".npz")
    line = _one_line(runner.invoke(app, [*command, str(target)]))
    assert line == f"error: {target}: {option}: folder {target.parent} does not exist"
    assert not (work / "missing").exists()


PROC = Path("/proc")


@pytest.mark.skipif(not PROC.is_dir(), reason="no /proc here")
@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["route", "small.json", "--engine", "greedy", "--out"], "--out"),
        (["allocate", "small.json", "--scenario", "--out"], "--out"),
        (
            ["simulate", "small.json", "--replications", "1", "--executor", "serial", "--out"],
            "--out",
        ),
        (["scenario", "convert", "small.json", "--out"], "--out"),
        (["allocate-literature"], "OUT"),
        (["train", "--out"], "--out"),
        (["evaluate", "--seeds", "1", "--out"], "--out"),
    ],
)
def test_a_file_in_a_folder_where_none_can_be_made_is_refused_before_the_work(
    work: Path, command: list[str], option: str
) -> None:
    """Root may write to ``/proc`` by its permissions, yet no file can be made there:
    ``--out /proc/x.json`` passed the check, ran the work, then failed naming the atomic
    write's temp file (``/proc/.x.json.tmp-PID``), not the path given."""
    target = PROC / ("x.zip" if command[0] == "train" else "x.json")
    line = _one_line(runner.invoke(app, [*command, str(target)]))
    assert line.startswith(f"error: {target}: {option}: "), line
    assert "tmp-" not in line and "probe-" not in line, line
    assert not list(PROC.glob(".x.*"))


def test_whatif_makes_its_report_folder(work: Path) -> None:
    args = ["whatif", "variants.yaml", "--replications", "1", "--executor", "serial", "-q"]
    result = runner.invoke(app, [*args, "--out", str(work / "report")])
    assert result.exit_code == 0, result.output
    assert (work / "report" / "comparison.md").is_file()


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["whatif", "variants.yaml", "--executor", "serial", "--out"], "--out"),
        (["train", "--out", "model.zip", "--logdir"], "--logdir"),
    ],
)
def test_a_folder_output_needs_its_parent(work: Path, command: list[str], option: str) -> None:
    # a typo in the parent (a bug bash's '/nonexistent/x' as root) made the whole path
    target = work / "missing" / "report"
    line = _one_line(runner.invoke(app, [*command, str(target)]))
    assert line == f"error: {target}: {option}: folder {target.parent} does not exist"
    assert not (work / "missing").exists()


@pytest.mark.skipif(not PROC.is_dir(), reason="no /proc here")
@pytest.mark.parametrize("target", [PROC / "report", PROC])
@pytest.mark.parametrize(
    ("command", "option"),
    [
        (
            ["whatif", "variants.yaml", "--replications", "1", "--executor", "serial", "--out"],
            "--out",
        ),
        (["train", "--out", "model.zip", "--logdir"], "--logdir"),
    ],
)
def test_a_folder_output_where_nothing_can_be_made_is_refused_before_the_work(
    work: Path, command: list[str], option: str, target: Path
) -> None:
    """Root may write to ``/proc`` by its permissions, yet no folder or file can be made
    there: ``whatif --out /proc/report`` played its days, then failed with ``error:
    /proc/report: No such file or directory``, naming no option (training never started)."""
    line = _one_line(runner.invoke(app, [*command, str(target)]))
    assert line.startswith(f"error: {target}: {option}: cannot make a "), line
    assert "probe-" not in line, line
    assert not list(PROC.glob(".report.*")) and not list(PROC.glob(".proc.*"))


@pytest.fixture
def nothing_can_be_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """No file or folder can be made anywhere (as in ``/proc`` for root), by ``tempfile``."""
    import tempfile

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)


@pytest.mark.parametrize(
    ("check", "name", "expected"),
    [
        ("file", "x.json", "--out: cannot make a file in folder {tmp} (Permission denied)"),
        ("folder", ".", "--out: cannot make a file in folder {tmp} (Permission denied)"),
        ("folder", "report", "--out: cannot make a folder in {tmp} (Permission denied)"),
    ],
)
def test_the_output_probes_say_what_could_not_be_made_and_where(
    tmp_path: Path, nothing_can_be_made: None, check: str, name: str, expected: str
) -> None:
    """The three probes (a file's folder, an existing folder, a folder to make) are one
    helper; their messages are as they were."""
    from dispatchlab.cli._common import check_output_file, check_output_folder
    from scenarios.errors import InputError

    out = tmp_path / name if name != "." else tmp_path
    with pytest.raises(InputError) as info:
        (check_output_file if check == "file" else check_output_folder)(out)
    assert info.value.one_line() == f"{out}: " + expected.format(tmp=tmp_path)
