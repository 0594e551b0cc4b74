"""The ``dispatchlab`` entry point: usage errors are one line on stderr with exit code 2."""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from dispatchlab.cli import main
from dispatchlab.cli._common import cli_errors


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, out, err


def test_bad_option_value_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "scenario", "generate", "--seed", "1", "--orders", "abc")
    assert code == 2
    assert "Traceback" not in err
    assert "'--orders'" in err and "valid integer" in err
    assert "dispatchlab scenario generate --help" in " ".join(err.split())


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "nosuch")
    assert code == 2
    assert "No such command 'nosuch'" in err


def test_bad_input_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "scenario", "show", "/nonexistent/file.json")
    assert code == 2
    assert "file not found" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "version")
    assert code == 0
    assert out.strip().count(".") == 2


def test_user_text_is_printed_as_given_not_as_markup_or_emoji(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    instances_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a closing tag with nothing to close was a rich MarkupError traceback (exit 1)
    code, _, err = _run(capsys, "allocate", str(tmp_path / "a[/]b.json"))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == f"error: {tmp_path / 'a[/]b.json'}: path: file not found"
    code, _, err = _run(capsys, "[/]")
    assert code == 2 and "No such command '[/]'" in err
    # a tag that parses was swallowed; an emoji code was replaced by the emoji
    code, _, err = _run(capsys, "allocate", str(tmp_path / "[red]x.json"))
    assert code == 2 and "[red]x.json: path: file not found" in err
    code, _, err = _run(capsys, "route", "--engine", ":smile:", "x.json")
    assert code == 2 and "--engine: unknown engine ':smile:'" in err
    scenario = tmp_path / "[bold]c101.txt"
    shutil.copy(instances_dir / "solomon" / "C101.txt", scenario)
    code, _, err = _run(capsys, "simulate", str(scenario), "--policy", "reopt:abc")
    assert code == 2 and "reopt:abc: expected minutes" in err
    code, _, err = _run(capsys, "simulate", str(scenario), "--policy", "reopt:5:pyvrp:fast")
    assert code == 2 and "reopt:5:pyvrp:fast: expected a number of iterations" in err
    # a period of seconds re-planned the day for minutes (reopt:0.1: 172 s for 5 orders)
    code, _, err = _run(capsys, "simulate", str(scenario), "--policy", "reopt:0.1")
    assert code == 2 and "--policy: reopt:0.1: the period must be at least 1 minute" in err
    import rl_agents  # noqa: F401  (registers euro-greedy: else unknown in a fresh process)

    code, _, err = _run(capsys, "simulate", str(scenario), "--policy", "euro-greedy:0.0167")
    assert code == 2 and "--policy: euro-greedy:0.0167: the epoch must be at least 1 minute" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.chdir(tmp_path)  # a short title: the table does not wrap it
    code, out, _ = _run(capsys, "scenario", "show", scenario.name)
    assert code == 0 and "[bold]c101.txt" in out


@pytest.mark.parametrize(
    "command",
    [
        ["route", "x.json"],
        ["allocate", "x.json"],
        ["allocate-literature", "x.json"],
        ["simulate", "x.json"],
        ["whatif", "v.yaml"],
        ["train"],
        ["scenario", "generate"],
        ["scenario", "demo"],
    ],
)
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seed_outside_0_to_2_pow_32_is_one_line(
    capsys: pytest.CaptureFixture[str], command: list[str], seed: str
) -> None:
    # a negative seed was a traceback (PyVRP TypeError, numpy ValueError) after the input was read
    code, _, err = _run(capsys, *command, "--seed", seed)
    assert code == 2
    # then Click's words: "Invalid value for '--seed': Input should be greater than or equal
    # to 0 (try 'dispatchlab route --help')", unlike every other option's
    assert err == f"error: --seed: must be an integer from 0 to 4294967295, got {seed}\n"


@pytest.mark.parametrize(
    ("command", "out", "reason"),
    [
        (["route", "C101"], "{dir}", "--out: is a directory, expected a file path"),
        (["route", "C101"], "{dir}/no/x.json", "--out: folder {dir}/no does not exist"),
        (["route", "C101"], "{file}/r.json", "--out: {file} is not a folder"),
        (["simulate", "C101"], "{dir}", "--out: is a directory, expected a file path"),
        (["allocate", "x.json"], "{file}/r.json", "--out: {file} is not a folder"),
        (["whatif", "v.yaml"], "{file}", "--out: is a file, expected a folder"),
        (["train"], "{file}/m.zip", "--out: {file} is not a folder"),
        (["evaluate", "--seeds", "1"], "{file}/x.json", "--out: {file} is not a folder"),
        (["scenario", "convert", "C101"], "{file}/x.json", "--out: {file} is not a folder"),
    ],
)
def test_unwritable_out_is_one_line_before_any_work(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    instances_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    out: str,
    reason: str,
) -> None:
    import solvers.routing

    def no_solve(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the solve ran before --out was checked")

    monkeypatch.setattr(solvers.routing, "solve_routes", no_solve)
    names = {"dir": str(tmp_path), "file": str(tmp_path / "a.txt")}
    (tmp_path / "a.txt").write_text("x")
    c101 = str(instances_dir / "solomon" / "C101.txt")
    argv = [c101 if arg == "C101" else arg for arg in command]
    out_path = out.format(**names)
    code, _, err = _run(capsys, *argv, "--out", out_path)
    assert code == 2, err
    assert err.strip() == f"error: {out_path}: {reason.format(**names)}"


def test_an_os_error_is_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    @cli_errors
    def write() -> None:
        raise PermissionError(13, "Permission denied", "/srv/x.json")

    with pytest.raises(typer.Exit) as info:
        write()
    assert info.value.exit_code == 2
    assert capsys.readouterr().err == "error: /srv/x.json: Permission denied\n"


#: how a time limit out of range is refused (its value follows)
TIME_LIMIT = "--time-limit: must be a finite number of seconds in (0, 86400], got"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # NaN was 'time_limit_s: Input should be less than or equal to 86400'
        (["route", "C101", "--time-limit", "nan"], f"{TIME_LIMIT} nan"),
        (["route", "C101", "--time-limit", "inf"], f"{TIME_LIMIT} inf"),
        (["route", "C101", "--time-limit", "0"], f"{TIME_LIMIT} 0"),
        (["allocate", "x.json", "--time-limit", "nan"], f"{TIME_LIMIT} nan"),
        (["allocate", "x.json", "--time-limit", "86401"], f"{TIME_LIMIT} 86401"),
        # one wording for every option's range (was "--gap: must lie in [0, 1]", "--workers:
        # must be at least 1", "--hindsight-search-iterations: must be 1 or more", pydantic's
        # "--max-iterations: Input should be greater than or equal to 1")
        (["allocate", "x.json", "--gap", "2"], "--gap: must be a finite number in [0, 1], got 2"),
        (
            ["allocate-literature", "x.json", "--carry-prob", "-0.5"],
            "--carry-prob: must be a finite number in [0, 1], got -0.5",
        ),
        (["route", "C101", "--workers", "0"], "--workers: must be an integer from 1 to 64, got 0"),
        (
            ["route", "C101", "--max-iterations", "0"],
            "--max-iterations: must be an integer of at least 1, got 0",
        ),
        (
            ["train", "--timesteps", "0"],
            "--timesteps: must be an integer from 1 to 1000000000, got 0",
        ),
        (["train", "--envs", "0"], "--envs: must be an integer from 1 to 64, got 0"),
        (["train", "--eval-every", "-1"], "--eval-every: must be an integer of at least 0, got -1"),
        (
            ["evaluate", "--seeds", "1", "--hindsight-search-iterations", "0"],
            "--hindsight-search-iterations: must be an integer of at least 1, got 0",
        ),
        (
            ["route", "C101", "--workers", "65"],
            "--workers: must be an integer from 1 to 64, got 65",
        ),
        (["train", "--eval-days", "0"], "--eval-days: must be an integer from 1 to 30, got 0"),
        (["train", "--envs", "65"], "--envs: must be an integer from 1 to 64, got 65"),
        (
            ["evaluate", "--seeds", "1", "--hindsight-time-limit", "nan"],
            "--hindsight-time-limit: must be a finite number of seconds in (0, 86400], got nan",
        ),
        # session 54's audit: above the routing solvers' 86,400 s it failed once the other
        # policies' days were played, as 'time_limit_s: Input should be less than or equal to
        # 86400'
        (
            ["evaluate", "--seeds", "1", "--hindsight-time-limit", "86401"],
            "--hindsight-time-limit: must be a finite number of seconds in (0, 86400], got 86401",
        ),
        (
            ["evaluate", "--seeds", "1", "--hindsight-search-s", "1e20"],
            "--hindsight-search-s: must be a finite number of seconds in [0, 86400], got 1e+20 "
            "(0: no search)",
        ),
        # worker counts of 10**20 were taken (a pool no larger than its tasks; `serve` spawned
        # uvicorn replicas until the machine ran out of memory)
        (
            ["evaluate", "--seeds", "1", "--workers", "99999999999999999999"],
            "--workers: must be an integer from 1 to 1024, got 99999999999999999999",
        ),
        # was "--grace-s: -5 is not 0 to 604800 s (7 days)"
        (
            ["keys", "rotate", "abc", "--grace-s", "-5"],
            "--grace-s: must be an integer of seconds from 0 to 604800, got -5",
        ),
        # an integer of 400 digits was an OverflowError traceback (no float holds it)
        (
            ["simulate", "C101", "--workers", "1" + "0" * 400],
            "--workers: must be an integer from 1 to 1024, got 1" + "0" * 400,
        ),
        (
            ["simulate", "C101", "--workers", "1025"],
            "--workers: must be an integer from 1 to 1024, got 1025",
        ),
        (
            ["whatif", "v.yaml", "--workers", "1025"],
            "--workers: must be an integer from 1 to 1024, got 1025",
        ),
        (
            ["serve", "--workers", "99999999999999999999"],
            "--workers: must be an integer from 1 to 64, got 99999999999999999999",
        ),
        # more training days than TRAIN_SEEDS holds: numpy's ValueError (or OverflowError), a
        # traceback once the scenario was loaded
        (
            ["train", "--imitation-days", "99999999999999999999"],
            "--imitation-days: must be an integer from 0 to 1000000, got 99999999999999999999",
        ),
        # 10**20 passes over the expert's days were taken and trained for ever
        (
            ["train", "--imitation-epochs", "99999999999999999999"],
            "--imitation-epochs: must be an integer from 0 to 10000, got 99999999999999999999",
        ),
        (
            ["train", "--expert", "rollout", "--dagger-rounds", "2", "--dagger-days", "600000"],
            "--dagger-days: the imitation days and the DAgger rounds' days are 1,200,010 "
            "training days; there are 1,000,000",
        ),
    ],
)
def test_bad_numbers_name_the_option_not_the_params_field(
    capsys: pytest.CaptureFixture[str], instances_dir: Path, argv: list[str], expected: str
) -> None:
    c101 = str(instances_dir / "solomon" / "C101.txt")
    code, _, err = _run(capsys, *[c101 if arg == "C101" else arg for arg in argv])
    assert code == 2
    assert err.strip() == f"error: {expected}"


@pytest.mark.parametrize("command", [["evaluate", "--seeds", "1"], ["whatif", "v.yaml"]])
@pytest.mark.parametrize("policies", [",", " , ", ""])
def test_empty_policy_list_is_rejected(
    capsys: pytest.CaptureFixture[str], command: list[str], policies: str
) -> None:
    # evaluate --policies , ran the greedy baseline alone and exited 0
    code, _, err = _run(capsys, *command, "--policies", policies)
    assert code == 2
    assert err.strip() == "error: --policies: give at least one policy"


@pytest.mark.parametrize("command", [["evaluate", "--seeds", "1"], ["whatif", "v.yaml"]])
@pytest.mark.parametrize("policies", ["greedy,,slots", "nearest,", " ,reopt"])
def test_an_empty_policy_between_commas_is_rejected(
    capsys: pytest.CaptureFixture[str], command: list[str], policies: str
) -> None:
    # --policies greedy,,slots ran two policies and said nothing of the empty one
    code, _, err = _run(capsys, *command, "--policies", policies)
    assert code == 2
    assert err.strip() == (
        f"error: --policies: an empty policy in {policies!r} (two commas, or one at an end)"
    )


def test_an_empty_warm_start_policy_between_commas_is_rejected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # as --policies: --hindsight-warm-start slots,,greedy dropped the empty item without a word
    code, _, err = _run(
        capsys, "evaluate", "--seeds", "1", "--policies", "hindsight",
        "--hindsight-warm-start", "slots,,greedy",
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        "error: --hindsight-warm-start: an empty policy in 'slots,,greedy' (two commas, or one "
        "at an end)"
    )


def test_a_policy_under_two_spellings_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    """``reopt`` and ``reopt:5:greedy`` are one policy: its days were played twice."""
    code, _, err = _run(capsys, "whatif", "v.yaml", "--policies", "reopt,nearest,reopt:5:greedy")
    assert code == 2
    assert err.strip() == (
        "error: --policies: 'reopt:5:greedy' is given twice: it runs the same policy as "
        "'reopt' (reopt:5)"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["evaluate", "--seeds", "1", "--policies", "model,model:standard"],
            "'model:standard' is given twice: it runs the same policy as 'model' (model:standard)",
        ),
        (
            ["evaluate", "--seeds", "1", "--policies", "euro-greedy,euro-greedy:5"],
            "'euro-greedy:5' is given twice: it runs the same policy as 'euro-greedy' "
            "(euro-greedy:5)",
        ),
        (
            ["evaluate", "--seeds", "1", "--policies", "nearest,slots"],
            "'nearest' runs the same policy as 'greedy', the baseline every evaluation plays "
            "(nearest): drop it",
        ),
    ],
)
def test_an_rl_policy_under_another_spelling_is_rejected(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """Each pair played its days twice: a duplicate row and a Holm family one larger."""
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert err.strip() == f"error: --policies: {expected}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["whatif", "v.yaml", "--policies", "insertion,insertion"], "--policies: 'insertion'"),
        (["evaluate", "--seeds", "1", "--policies", "greedy,greedy"], "--policies: 'greedy'"),
        (["evaluate", "--seeds", "3,4,3", "--policies", "greedy"], "--seeds: 3"),
    ],
)
def test_a_policy_or_seed_given_twice_is_rejected(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """Its days were pooled with the first ones: n doubled and the CIs looked tighter."""
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert err.strip() == f"error: {expected} is given twice"


def test_progress_bar_shows_the_counts_reported_and_nothing_when_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rich.progress import Progress

    from dispatchlab.cli._common import progress_bar

    updates: list[dict[str, object]] = []
    update = Progress.update

    def spy(self: Progress, task_id: object, **fields: object) -> None:
        updates.append(fields)
        update(self, task_id, **fields)  # type: ignore[arg-type]

    monkeypatch.setattr(Progress, "update", spy)
    with progress_bar("simulating", quiet=True, total=3) as progress:
        progress(1, 3)
    assert updates == []
    with progress_bar("evaluating", quiet=False) as progress:
        progress(1, 4)
        progress(4, 4)
    assert updates == [{"completed": 1, "total": 4}, {"completed": 4, "total": 4}]


def test_evaluate_error_on_a_non_terminal_stderr_has_no_blank_line_before_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Rich ends a progress bar on a non-interactive console with an empty line: the error
    # written to a file (2>err.txt) started with a blank line
    code, _, err = _run(
        capsys, "evaluate", "--policies", f"model:{tmp_path / 'nope.zip'}", "--seeds", "1"
    )
    assert code == 2
    assert err == f"error: --policies: model file '{tmp_path / 'nope.zip'}' not found\n"


def test_progress_bar_writes_nothing_on_a_non_terminal_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dispatchlab.cli._common import progress_bar

    with progress_bar("simulating", quiet=False, total=2) as progress:
        progress(1, 2)
        progress(2, 2)
    assert capsys.readouterr() == ("", "")


def _forced_console(monkeypatch: pytest.MonkeyPatch, *, terminal: bool) -> io.StringIO:
    """Put a stderr console on a StringIO in place, an interactive terminal or not; its text."""
    from rich.console import Console

    from dispatchlab.cli import _common

    text = io.StringIO()
    console = Console(
        file=text, force_terminal=terminal, force_interactive=terminal, width=100, emoji=False
    )
    monkeypatch.setattr(_common, "err_console", console)
    return text


@pytest.mark.parametrize("terminal", [True, False])
def test_the_elapsed_bar_is_drawn_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    """``route``'s and ``allocate``'s bar: on a terminal it is drawn (its label and status,
    braces and all); elsewhere (a file, a pipe) nothing is written. Rich ended it there with
    an empty line, which came before a following error (``route bad.json 2>err.txt``)."""
    import time

    from dispatchlab.cli._common import with_elapsed_bar

    text = _forced_console(monkeypatch, terminal=terminal)
    asked: list[str] = []

    def status() -> str:
        asked.append("solving {x}")
        return asked[-1]

    def work() -> int:
        time.sleep(0.5)  # the bar ticks every 0.1 s
        return 42

    assert with_elapsed_bar("route {north}", 1.0, False, work, status=status) == 42
    if terminal:
        assert "route {north}" in text.getvalue() and "solving {x}" in text.getvalue()
        assert asked
    else:
        assert (text.getvalue(), asked) == ("", [])


@pytest.mark.parametrize(
    "command",
    [
        ["route", "{small}", "--engine", "greedy", "--time-limit", "1"],
        ["allocate", "{small}", "--scenario", "--time-limit", "5"],
    ],
)
def test_route_and_allocate_write_nothing_to_a_non_terminal_stderr(
    tmp_path: Path, command: list[str]
) -> None:
    """``dispatchlab route s.json --out p.json 2>err.txt``: err.txt held an empty line (the
    elapsed bar's end on a non-terminal), and an error after it came second."""
    import json
    import subprocess
    import sys

    from tests.dispatchlab.small import SMALL
    from tests.scripts import REPO

    small = tmp_path / "small.json"
    small.write_text(json.dumps(SMALL))
    args = [a.replace("{small}", str(small)) for a in command]
    done = subprocess.run(
        [sys.executable, "-m", "dispatchlab", *args, "--out", str(tmp_path / "r.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "r.json").stat().st_size > 0


BRACED_SOLOMON = """depot {north}

VEHICLE
NUMBER     CAPACITY
  2         200

CUSTOMER
CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME
    0      40         50          0          0       1236          0
    1      45         68         10        912        967         90
    2      45         70         30        825        870         90
    3      42         66         10         65        146         90
"""


@pytest.mark.parametrize(
    "command",
    [
        ["route", "--engine", "greedy", "--time-limit", "1"],
        ["simulate", "--replications", "2", "--executor", "serial"],
    ],
)
def test_a_scenario_name_with_braces_shows_its_progress_bar(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    # the bar's label is a rich format string: "{north}" was a KeyError traceback
    scenario = tmp_path / "braced.txt"
    scenario.write_text(BRACED_SOLOMON)
    code, out, err = _run(
        capsys, command[0], str(scenario), *command[1:], "--out", str(tmp_path / "o.json")
    )
    assert code == 0, err
    assert "Traceback" not in err and "KeyError" not in err
    assert "depot {north}" in out


def _all_commands(group: object, path: str = "") -> dict[str, object]:
    """Every leaf command of a click group, by its space-joined name."""
    commands = getattr(group, "commands", None)
    if commands is None:
        return {path.strip(): group}
    found: dict[str, object] = {}
    for name, command in commands.items():
        found |= _all_commands(command, f"{path} {name}")
    return found


def test_every_quiet_option_has_the_short_q() -> None:
    """A command that takes ``--quiet`` takes ``-q`` too (evaluate and train took only --quiet)."""
    from dispatchlab.cli import app

    quiet: dict[str, set[str]] = {}
    for name, command in _all_commands(typer.main.get_command(app)).items():
        for param in getattr(command, "params", []):
            if "--quiet" in param.opts:
                quiet[name] = set(param.opts)
    assert {"evaluate", "train", "simulate", "route"} <= set(quiet)
    assert {name for name, opts in quiet.items() if "-q" not in opts} == set()


@pytest.mark.parametrize(
    ("argv", "code", "stream", "expected"),
    [
        (["--help"], 0, "stdout", "Usage: dispatchlab [OPTIONS] COMMAND [ARGS]..."),
        (["evaluate", "--seeds", "x"], 2, "stderr", "error: --seeds: 'x': expected A..B"),
    ],
)
def test_python_dash_m_runs_the_command(
    argv: list[str], code: int, stream: str, expected: str
) -> None:
    """``python -m dispatchlab`` (an environment without the script) is the same command.

    It was ``No module named dispatchlab.__main__`` (exit 1).
    """
    import os
    import subprocess
    import sys

    from tests.scripts import REPO

    done = subprocess.run(
        [sys.executable, "-m", "dispatchlab", *argv],
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert expected in getattr(done, stream)
    assert "Traceback" not in done.stderr


def test_an_interrupted_training_names_the_model_kept(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train`` stopped by Ctrl-C says which model its file holds (was: "error: interrupted")."""
    import rl_agents.train as train_module

    out = tmp_path / "m.zip"

    def interrupted(*args: object, **kwargs: object) -> None:
        raise train_module.TrainingInterrupted(out, "validated at step 4096")

    monkeypatch.setattr(train_module, "train", interrupted)
    code, _, err = _run(capsys, "train", "--out", str(out), "--quiet")
    assert code == 130
    assert err.strip() == f"error: interrupted: kept {out} (validated at step 4096)"


@given(
    low=st.integers(-1000, 1000),
    width=st.integers(0, 1000),
    value=st.integers(-3000, 3000),
)
def test_an_integer_range_holds_exactly_its_values_and_names_them(
    low: int, width: int, value: int
) -> None:
    from dispatchlab.cli._common import Bounds

    bounds = Bounds(low, low + width, integer=True)
    assert bounds.holds(value) == (low <= value <= low + width)
    assert bounds.refusal(value) == (f"must be an integer from {low} to {low + width}, got {value}")


@given(
    low=st.floats(-1e6, 1e6),
    width=st.floats(0, 1e6),
    value=st.floats(allow_nan=True, allow_infinity=True),
    low_open=st.booleans(),
    high_open=st.booleans(),
)
def test_a_number_range_holds_its_finite_values_between_its_ends(
    low: float, width: float, value: float, low_open: bool, high_open: bool
) -> None:
    from dispatchlab.cli._common import Bounds

    high = low + width
    bounds = Bounds(low, high, low_open=low_open, high_open=high_open)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    assert bounds.holds(value) == (math.isfinite(value) and above and below)
    ends = ("(" if low_open else "[", ")" if high_open else "]")
    assert bounds.words() == f"a finite number in {ends[0]}{low:g}, {high:g}{ends[1]}"
