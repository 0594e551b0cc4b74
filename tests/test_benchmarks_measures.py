"""``benchmarks/measures.py``: timing targets decided on the 95% interval of repeated runs.

Fake timings only: nothing here is timed.
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import benchmarks.measures as measures_module
from benchmarks.measures import (
    CONSTANT_RUNS,
    Measures,
    WrittenThenInterrupted,
    command_line,
    count_list_arg,
    cpu_times,
    ctrl_c_writes_nothing,
    decide,
    explicit_args,
    int_list,
    repeats_arg,
    seeds_arg,
    stolen_share,
    write_table_files,
)
from simulation.stats import mean_ci
from tests.conftest import REPO, benchmark_script


@pytest.mark.parametrize(
    ("runs", "op", "limit", "status"),
    [
        ([1.0, 1.1, 0.9], "<=", 2.0, "met"),  # [0.75, 1.25]: wholly below 2 s
        ([3.0, 3.2, 2.9], "<=", 2.0, "missed"),  # wholly above
        ([1.2, 2.6, 1.4, 2.4], "<=", 2.0, "undecided"),  # mean 1.9, CI [0.8, 3.0]
        ([1.0, 3.0], "<=", 2.0, "undecided"),  # mean exactly at the limit
        ([2.0, 2.0, 2.0], "<=", 2.0, "met"),  # the limit itself meets "<= 2"
        ([2100.0, 2200.0, 2150.0], ">=", 2000.0, "met"),
        ([1800.0, 1850.0, 1900.0], ">=", 2000.0, "missed"),
        # the step rates of five runs on the idle machine (docs/rl.md): mean 2,186, one
        # of them below 2,000 -- one run decided "met" or "missed" by chance
        ([2183.0, 1685.0, 2466.0, 2507.0, 2088.0], ">=", 2000.0, "undecided"),
        ([1.9], "<=", 2.0, "met"),  # one run: decided on its value (no interval)
        ([2.1], "<=", 2.0, "missed"),
        ([1999.0], ">=", 2000.0, "missed"),
    ],
)
def test_a_target_is_decided_on_the_interval_of_the_runs(
    runs: list[float], op: str, limit: float, status: str
) -> None:
    assert decide(mean_ci(runs), op, limit) == status  # type: ignore[arg-type]


def test_no_run_decides_nothing() -> None:
    assert decide(mean_ci([]), "<=", 2.0) == "n/a"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=8),
    st.sampled_from(["<=", ">="]),
    st.floats(0.0, 10.0),
)
def test_met_and_missed_agree_with_the_mean(runs: list[float], op: str, limit: float) -> None:
    """The interval holds the mean: "met" never has a mean on the wrong side, nor "missed" one
    on the right side; a decision on the interval is the one on the mean or "undecided"."""
    ci = mean_ci(runs)
    status = decide(ci, op, limit)  # type: ignore[arg-type]
    on_mean = ci.mean <= limit if op == "<=" else ci.mean >= limit
    assert status in ("met", "missed", "undecided")
    assert status == "undecided" or status == ("met" if on_mean else "missed")


def test_repeated_runs_keep_every_figure_in_the_csv(tmp_path: Path) -> None:
    """A single run decided the target; now the table shows the mean and its 95% CI."""
    table = Measures()
    table.record("plan stops", 125, "")
    status = table.record_runs("one replication", [1.0, 1.1, 0.9], "s", "<=", 2.0, "<= 2 s")
    assert status == "met"
    table.write(tmp_path, "t", "Title", "Preamble.")
    with (tmp_path / "t.csv").open(encoding="utf-8") as fh:
        rows = {row["measure"]: row for row in csv.DictReader(fh)}
    timed = rows["one replication"]
    assert [float(x) for x in timed["runs"].split()] == [1.0, 1.1, 0.9]
    assert float(timed["value"]) == pytest.approx(1.0)
    half = 4.302653 * 0.1 / 3**0.5  # t(0.975, 2) x s / sqrt(n)
    assert float(timed["ci_low"]) == pytest.approx(1.0 - half, abs=1e-5)
    assert float(timed["ci_high"]) == pytest.approx(1.0 + half, abs=1e-5)
    assert (timed["target"], timed["status"]) == ("<= 2 s", "met")
    assert rows["plan stops"]["runs"] == rows["plan stops"]["ci_low"] == ""
    text = (tmp_path / "t.md").read_text(encoding="utf-8")
    assert "| one replication | 1 | [0.7516, 1.248] (3 runs) | s | <= 2 s | met |" in text
    assert "| plan stops | 125 |  |  |  |  |" in text
    assert "undecided otherwise" in text  # the rule is stated under the title


def test_runs_all_the_same_are_flagged_constant(tmp_path: Path) -> None:
    """Identical runs gave ``[2, 2] (3 runs)``, an interval of zero width read as an exact
    figure; it is written ``(constant)`` with what that means under the title, as the twin's,
    the RL evaluation's and the allocation benchmark's tables do. The CSV keeps its columns."""
    table = Measures()
    status = table.record_runs("plan stops, 3 builds", [2.0, 2.0, 2.0], "s", "<=", 2.0, "<= 2 s")
    assert status == "met"  # a point interval at the limit: decided on that figure
    table.record_runs("varied", [1.0, 1.1, 0.9], "s", "<=", 2.0, "<= 2 s")
    table.record_runs("one run", [2.0], "s", "<=", 2.0, "<= 2 s")  # no interval, not constant
    table.write(tmp_path, "t", "Title", "Preamble.")
    text = (tmp_path / "t.md").read_text(encoding="utf-8")
    assert "| plan stops, 3 builds | 2 | [2, 2] (constant) (3 runs) | s | <= 2 s | met |" in text
    assert "| varied | 1 | [0.7516, 1.248] (3 runs) | s | <= 2 s | met |" in text
    assert "| one run | 2 | (1 run) | s | <= 2 s | met |" in text
    assert text.count("(constant)") == 2  # the cell and the explanation under the title
    assert CONSTANT_RUNS in text and "every run gave this same value" in CONSTANT_RUNS
    assert "another run may differ" in CONSTANT_RUNS
    with (tmp_path / "t.csv").open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = {row["measure"]: row for row in reader}
    assert reader.fieldnames == [
        "measure", "value", "unit", "target", "status", "ci_low", "ci_high", "runs"
    ]  # fmt: skip
    flat = rows["plan stops, 3 builds"]
    assert (flat["ci_low"], flat["ci_high"], flat["runs"]) == ("2", "2", "2 2 2")
    # no constant row: no note
    plain = Measures()
    plain.record_runs("varied", [1.0, 1.1, 0.9], "s", "<=", 2.0, "<= 2 s")
    plain.write(tmp_path, "p", "Title", "Preamble.")
    assert "(constant)" not in (tmp_path / "p.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_repeats_must_be_a_whole_number_of_runs(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        repeats_arg(text)
    assert repeats_arg("3") == 3


def test_stolen_share_is_the_steal_counter_over_all_cpu_time(tmp_path: Path) -> None:
    """The host's share (steal) of the CPU time between two readings of ``/proc/stat``."""
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    before = cpu_times(stat)
    stat.write_text("cpu  160 0 60 900 10 0 0 70 0 0\n")
    after = cpu_times(stat)
    assert before == (100, 0, 50, 800, 10, 0, 0, 40, 0, 0)
    # spent: 60 user + 10 system + 100 idle + 30 steal = 200
    assert stolen_share(before, after) == pytest.approx(30 / 200)
    assert stolen_share(after, after) is None  # no time passed
    assert stolen_share(None, after) is None


def test_cpu_times_is_none_without_a_readable_cpu_line(tmp_path: Path) -> None:
    """Elsewhere than Linux (no file) or an unexpected first line: no reading."""
    assert cpu_times(tmp_path / "missing") is None
    odd = tmp_path / "stat"
    odd.write_text("intr 1 2 3\n")
    assert cpu_times(odd) is None


@settings(max_examples=100, deadline=None)
@given(seeds=st.lists(st.integers(min_value=0, max_value=2**32), min_size=1, max_size=6))
def test_a_comma_list_is_its_items_and_an_empty_item_is_a_usage_error(seeds: list[int]) -> None:
    """Each list option reads its items back; an empty one anywhere (``1,,3``, ``1,3,``,
    ``,1``) is refused, not dropped (``--seeds 1,,3`` ran seeds 1 and 3 without a word)."""
    text = ",".join(map(str, seeds))
    counts = [s + 1 for s in seeds]
    assert seeds_arg(text) == seeds
    assert count_list_arg(",".join(map(str, counts))) == counts
    assert int_list(text, least=0, what="seeds") == seeds
    for at in range(len(seeds) + 1):
        items = [str(s) for s in seeds]
        items.insert(at, " ")
        for parse in (seeds_arg, count_list_arg):
            with pytest.raises(argparse.ArgumentTypeError, match="an empty"):
                parse(",".join(items))


@pytest.mark.parametrize("text", ["..3", "1..", "..", "1..2,3", "1..x"])
def test_a_seed_range_needs_a_seed_at_each_end(text: str) -> None:
    """``..3`` and ``1..`` were IndexError tracebacks; ``1..2,3`` ran seeds 1 and 2."""
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected A\.\.B"):
        seeds_arg(text)


#: the stored pair a run is about to replace
OLD_PAIR = {"t.csv": "measure,value\r\nold,1\r\n", "t.md": "# old table\n"}


@pytest.fixture
def old_pair(tmp_path: Path) -> dict[str, str]:
    """A folder holding an earlier run's ``t.csv`` and ``t.md`` (:data:`OLD_PAIR`)."""
    for name, text in OLD_PAIR.items():
        (tmp_path / name).write_bytes(text.encode("utf-8"))
    return OLD_PAIR


def _folder(path: Path) -> dict[str, str]:
    """Every file of ``path`` (hidden ones too) -> its text."""
    return {p.name: p.read_bytes().decode("utf-8") for p in sorted(path.iterdir())}


def test_ctrl_c_while_a_table_is_written_leaves_the_old_pair(
    tmp_path: Path, old_pair: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after the CSV's rows are made but before the markdown is: the new CSV stood
    beside the old ``.md``; now neither file changes."""

    def interrupted(_row: object) -> str:
        raise KeyboardInterrupt

    table = Measures()
    table.record_runs("one replication", [1.0, 1.1, 0.9], "s", "<=", 2.0, "<= 2 s")
    monkeypatch.setattr(measures_module, "_ci_text", interrupted)  # the markdown's cells
    with pytest.raises(KeyboardInterrupt):
        table.write(tmp_path, "t", "Title", "Preamble.")
    assert _folder(tmp_path) == old_pair


def test_a_writer_interrupted_between_the_two_files_leaves_the_old_pair(
    tmp_path: Path, old_pair: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the second file is written: both old files stay as they were, and no
    temporary file is left behind."""
    opened: list[Path] = []
    real_open = Path.open

    def open_once(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(self)
        if len(opened) == 2:
            raise KeyboardInterrupt
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_once)
    with pytest.raises(KeyboardInterrupt):
        write_table_files(tmp_path, {"t.csv": "measure,value\r\nnew,2\r\n", "t.md": "# new\n"})
    monkeypatch.undo()
    assert len(opened) == 2 and all(p.parent == tmp_path for p in opened)
    assert _folder(tmp_path) == old_pair


def test_a_table_written_replaces_both_files_as_given(
    tmp_path: Path, old_pair: dict[str, str]
) -> None:
    """Both files replaced, their texts byte for byte (a CSV keeps its ``\\r\\n``), nothing
    else left in the folder; a name that is a path is refused before anything is written."""
    new = {"t.csv": "measure,value\r\nnew,2\r\n", "t.md": "# new — table\n"}
    paths = write_table_files(tmp_path, new)
    assert paths == [tmp_path / "t.csv", tmp_path / "t.md"]
    assert _folder(tmp_path) == new
    with pytest.raises(ValueError, match="not a path"):
        write_table_files(tmp_path, {"u.csv": "", "sub/u.md": ""})
    assert _folder(tmp_path) == new
    deeper = tmp_path / "new" / "folder"
    write_table_files(deeper, {"x.md": "x\n"})  # the folder is made
    assert _folder(deeper) == {"x.md": "x\n"}


def test_a_failed_second_rename_puts_the_first_file_back(
    tmp_path: Path, old_pair: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OS error renaming the markdown into place (a full disk, a read-only file) came
    once the CSV was replaced: a new CSV beside the old ``.md``. Now the old CSV is put back,
    the error goes on, and nothing else is left in the folder."""
    real_replace = os.replace
    renames: list[str] = []

    def second_fails(source: Path, target: Path) -> None:
        renames.append(Path(target).name)
        if len(renames) == 2:
            raise OSError(28, "No space left on device", str(source))
        real_replace(source, target)

    monkeypatch.setattr(measures_module.os, "replace", second_fails)
    with pytest.raises(OSError, match="No space left on device"):
        write_table_files(tmp_path, {"t.csv": "measure,value\r\nnew,2\r\n", "t.md": "# new\n"})
    monkeypatch.undo()
    assert renames[:2] == ["t.csv", "t.md"]
    assert _folder(tmp_path) == old_pair


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this process (as in a script run from a shell)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_while_the_files_are_renamed_waits_until_both_are(
    tmp_path: Path,
    old_pair: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Ctrl-C that comes as the first file is renamed into place is held back until the
    second one is: the interrupt still ends the run, with the new pair in place, and a
    script's ``main`` says the table was written (not "no table written")."""
    real_replace = os.replace
    renamed: list[str] = []

    def replace_and_interrupt(source: Path, target: Path) -> None:
        if not renamed:
            os.kill(os.getpid(), signal.SIGINT)
        real_replace(source, target)
        renamed.append(Path(target).name)

    monkeypatch.setattr(measures_module.os, "replace", replace_and_interrupt)
    new = {"t.csv": "measure,value\r\nnew,2\r\n", "t.md": "# new\n"}
    with pytest.raises(WrittenThenInterrupted, match=r"t\.csv, t\.md in .* written first"):
        write_table_files(tmp_path, new)
    assert renamed == ["t.csv", "t.md"]
    assert _folder(tmp_path) == new

    @ctrl_c_writes_nothing
    def main() -> int:
        write_table_files(tmp_path, {"t.csv": "", "t.md": ""})
        return 0

    renamed.clear()
    assert main() == 130
    assert "written first" in capsys.readouterr().err
    assert _folder(tmp_path) == {"t.csv": "", "t.md": ""}


#: the files the benchmark scripts open for writing that are not result tables
NOT_TABLES = {
    ("allocation_pyomo_jobs.py", "write_text"),  # a probe script in a temporary folder
    ("load.py", "open"),  # the service's log file
    ("run_all.py", "open"),  # the CPU lock file, opened to append nothing
}


def test_every_benchmark_writes_its_tables_through_the_shared_writer() -> None:
    """No script writes a result file itself (``write_text``, ``open("w")``, ``"a"``): each
    table goes through :func:`write_table_files`, all its files or none."""
    found: set[tuple[str, str]] = set()
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            mode = node.args[0] if node.args else None
            writes = node.func.attr in ("write_text", "write_bytes") or (
                node.func.attr == "open"
                and isinstance(mode, ast.Constant)
                and str(mode.value)[:1] in "wax"
            )
            if writes and script.name != "measures.py":
                found.add((script.name, node.func.attr))
    assert found == NOT_TABLES


# ------------------------------------------------------------------ a table's command line
def _parser() -> argparse.ArgumentParser:
    """A script's parser in small: defaults of every kind a benchmark script has."""
    ap = argparse.ArgumentParser(prog="t.py")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--names", default="a,b")
    ap.add_argument("--seeds", type=seeds_arg, default=list(range(1, 31)))
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100])
    ap.add_argument("--known", default=str(REPO / "benchmarks" / "results" / "k.csv"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--anchors", default="")
    ap.add_argument("--limit", type=float, default=None)
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    return ap


def test_a_recorded_command_spells_out_every_default() -> None:
    """The tables' commands gave what was typed (``rl_speed.py``, ``load.py``: nothing), so a
    changed default would silently change what the command runs: every option left to its
    default is written with it, in words the parser reads back to the same run."""
    ap = _parser()
    given = ["--co", "7", "--quick"]  # an abbreviation is the option given
    words = explicit_args(ap, given)
    assert words == [
        *given,
        *("--names", "a,b", "--seeds", "1..30", "--sizes", "50", "100"),
        *("--known", "benchmarks/results/k.csv"),  # a path of this checkout: as the repo's
    ]
    run = vars(ap.parse_args(given))
    assert vars(ap.parse_args(words)) == run | {"known": "benchmarks/results/k.csv"}
    assert measures_module.same_run(vars(ap.parse_args(words)), run)
    # no flag, nothing for an empty or computed default, not where the files go
    # the command re-makes the table where the committed one is: no folder, given or not
    assert command_line(ap, ["--count", "3", "--out-d=/tmp/x", "--quick"], "t.py") == (
        "python benchmarks/t.py --count 3 --quick --names a,b --seeds 1..30 --sizes 50 100 "
        "--known benchmarks/results/k.csv"
    )


def test_a_recorded_command_does_not_show_a_key() -> None:
    """``load.py --url URL --key KEY`` wrote the key into the table's command (a committed
    file): its value is ``<key>`` there, in either spelling."""
    ap = argparse.ArgumentParser(prog="t.py")
    ap.add_argument("--url")
    ap.add_argument("--key")
    for words in (["--url", "u", "--key", "s3cret"], ["--url", "u", "--key=s3cret"]):
        command = command_line(ap, words, "t.py")
        assert "s3cret" not in command and "--key" in command and "<key>" in command


def test_a_default_no_words_give_is_refused_naming_its_option() -> None:
    """A default the command line cannot write is an error naming it, not a command that
    leaves it out (and so runs another default later)."""
    ap = argparse.ArgumentParser(prog="t.py")
    ap.add_argument("--when", type=int, default=object())
    with pytest.raises(ValueError, match="--when: its default"):
        explicit_args(ap, [])


def script_parser(script: str, args: list[str]) -> argparse.ArgumentParser:
    """``benchmarks/SCRIPT``'s parser, as its ``main()`` builds it (nothing else runs)."""
    with (
        benchmark_script(script, f"parser_{script[:-3]}") as module,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setattr(argparse.ArgumentParser, "parse_args", _raise_parser)
        mp.setattr("sys.argv", [script, *args])
        with pytest.raises(_Parser) as caught:
            module.main()
    return caught.value.parser


class _Parser(Exception):
    """A script's parser, raised as its ``main()`` parses (nothing else runs)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def _raise_parser(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
    raise _Parser(self)


#: the arguments a script needs at the least (its required options)
LEAST = {"routing.py": ["--set", "solomon"], "allocation_certify.py": ["--seeds", "1"]}


@pytest.mark.parametrize(
    "script",
    [p.name for p in sorted((REPO / "benchmarks").glob("*.py")) if p.name != "measures.py"],
)
def test_every_script_has_a_command_line_for_each_default(script: str) -> None:
    """Each script's every default has words its parser reads back (else its tables could
    not record the run), and the command so written is the same run as the one given."""
    given = LEAST.get(script, [])
    ap = script_parser(script, given)
    words = explicit_args(ap, given)
    assert measures_module.same_run(vars(ap.parse_args(words)), vars(ap.parse_args(given)))
    for action in ap._actions:
        option = max(action.option_strings, key=len, default="")
        written = action.nargs != 0 and action.default not in (None, "")
        if written and option.startswith("--") and option not in measures_module.PLACE_OPTIONS:
            assert option in words, (script, option)
