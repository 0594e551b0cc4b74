"""A table of named measurements (value, unit, target, status) written as CSV and Markdown.

A timed measurement with a target can be repeated (:meth:`Measures.record_runs`): the table
then shows the mean of the runs with its 95% t-interval (``simulation.stats.mean_ci``) and
decides the target on the interval (:func:`decide`); the CSV keeps every run's figure. Runs
that all gave the same figure have an interval of zero width, written ``[x, x] (constant)`` as
the twin's tables do, with what that means under the title (:data:`CONSTANT_RUNS`).

A module the benchmark scripts import, not a benchmark: run as a script it only says so::

    .venv/bin/python benchmarks/measures.py --help
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, ParamSpec, TypedDict, TypeVar

REPO = Path(__file__).resolve().parents[1]
# run as a script, this folder comes first on sys.path, and its simulation.py would shadow
# the simulation package
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from scenarios.io.csv_text import csv_text as csv_text  # noqa: E402 (the scripts use it)
from scenarios.io.csv_text import dict_csv_text as dict_csv_text  # noqa: E402
from scenarios.io.together import WrittenThenInterrupted, write_together  # noqa: E402
from simulation.stats import (  # noqa: E402
    CONSTANT_NOTE,
    Interval,
    constant_explained,
    fmt_num,
    mean_ci,
)

#: What running this module says: it is imported by the benchmarks, which are run instead
NOT_A_BENCHMARK = (
    "a module the benchmark scripts import (benchmarks.measures), not a benchmark: it runs "
    "nothing. `.venv/bin/python benchmarks/run_all.py --list` lists the benchmarks and "
    "their commands."
)

#: ``value <= limit`` or ``value >= limit``
Op = Literal["<=", ">="]

#: The status of a target decided on repeated runs.
DECISION_NOTE = (
    "A target with a 95% CI is decided on the repeated runs: met when the whole interval is "
    "on the right side of it, missed when the whole interval is on the wrong side, undecided "
    "otherwise (one run: decided on its value, no interval)."
)

#: What ``(constant)`` after an interval of the table means (written under the title when a
#: row has one); such a target is decided on that one value, the interval being a point.
CONSTANT_RUNS = constant_explained("run", "another run")


class Row(TypedDict):
    """One measurement (``ci_low``/``ci_high``/``runs`` empty unless it was repeated;
    ``constant``: two or more runs, all the same figure, so the interval has zero width)."""

    measure: str
    value: float
    unit: str
    target: str
    status: str
    ci_low: float | None
    ci_high: float | None
    runs: tuple[float, ...]
    constant: bool


#: The CSV's columns: a row's fields but ``constant`` (the ``runs`` column shows it, and the
#: stored tables keep their columns)
CSV_FIELDS = [f for f in Row.__annotations__ if f != "constant"]


def cpu_times(stat: Path = Path("/proc/stat")) -> tuple[int, ...] | None:
    """The machine's CPU time counters (the ``cpu`` line of ``/proc/stat``); None elsewhere."""
    try:
        first = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu" or len(first) < 9:
        return None
    return tuple(int(v) for v in first[1:])


def stolen_share(before: tuple[int, ...] | None, after: tuple[int, ...] | None) -> float | None:
    """Share of the CPU time between two :func:`cpu_times` readings the host took (steal)."""
    if before is None or after is None:
        return None
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    spent = [b - a for a, b in zip(before[:8], after[:8], strict=True)]
    total = sum(spent)
    return spent[7] / total if total > 0 else None


def decide(ci: Interval, op: Op, limit: float) -> str:
    """``met``, ``missed`` or ``undecided``: the target ``value op limit`` on a 95% interval.

    Met only when the whole interval is on the right side of ``limit`` (the limit itself
    included), missed only when it is wholly on the wrong side, undecided when it straddles
    it. One run has no interval: it is decided on its value, as a single run always was.
    ``n/a`` without any run.
    """
    if ci.n == 0:
        return "n/a"
    ok_low, ok_high = (ci.low, ci.high) if ci.n >= 2 else (ci.mean, ci.mean)
    if op == "<=":
        met, missed = ok_high <= limit, ok_low > limit
    else:
        met, missed = ok_low >= limit, ok_high < limit
    return "met" if met else "missed" if missed else "undecided"


def _whole(text: str) -> int:
    """``text`` as a whole number (an argparse usage error otherwise)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def count_arg(text: str) -> int:
    """A count option (``--repeats``, ``--runs``, ...): a whole number, at least 1 (argparse
    type: a usage error otherwise)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


#: ``--repeats``: a whole number of runs, at least 1
repeats_arg = count_arg


def count_at_most(maximum: int) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to ``maximum`` (a usage error otherwise)."""

    def parse(text: str) -> int:
        value = count_arg(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"at most {maximum}, got {value}")
        return value

    return parse


def comma_list(text: str, what: str, *, empty_ok: bool = False) -> list[str]:
    """The comma-separated items of an option's value, each stripped (argparse type helper).

    An empty item is a usage error, as :func:`dispatchlab.cli._common.comma_items` makes it
    on the command line (``1,,3`` ran on ``1,3`` without a word); so is no item at all unless
    ``empty_ok`` (then ``[]``). ``what`` names one item in the messages.
    """
    items = [s.strip() for s in text.split(",")]
    if not any(items):
        if empty_ok:
            return []
        raise argparse.ArgumentTypeError(f"give at least one {what}")
    if not all(items):
        raise argparse.ArgumentTypeError(
            f"an empty {what} in {text!r} (two commas, or one at an end)"
        )
    return items


def comma_option(
    ap: argparse.ArgumentParser, option: str, text: str, what: str, *, empty_ok: bool = False
) -> list[str]:
    """:func:`comma_list` of an option read after parsing: else a usage error naming
    ``option`` (exit 2)."""
    try:
        return comma_list(text, what, empty_ok=empty_ok)
    except argparse.ArgumentTypeError as err:
        ap.error(f"argument {option}: {err}")


def count_list_arg(text: str) -> list[int]:
    """A comma list of whole numbers, each at least 1 (argparse type: else a usage error)."""
    return [count_arg(part) for part in comma_list(text, "whole number")]


def int_list(text: str, *, least: int, what: str) -> list[int]:
    """Comma-separated integers of at least ``least`` (argparse type: else a usage error
    saying they should be ``what``)."""
    try:
        values = [int(s) for s in comma_list(text, "integer")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None
    if min(values) < least:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {what}")
    return values


def seeds_arg(text: str) -> list[int]:
    """``--seeds``: ``A..B`` (inclusive) or comma-separated seeds (else exit 2)."""
    if ".." in text:
        lo, _, hi = (part.strip() for part in text.partition(".."))
        try:
            ends = [int(lo), int(hi)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected A..B, a seed at each end"
            ) from None
        if min(ends) < 0:
            raise argparse.ArgumentTypeError(f"{text!r}: expected non-negative seeds")
        if ends[1] < ends[0]:
            raise argparse.ArgumentTypeError(f"{text!r}: the range ends before it starts")
        return list(range(ends[0], ends[1] + 1))
    return int_list(text, least=0, what="non-negative seeds")


P = ParamSpec("P")
R = TypeVar("R")


def ctrl_c_writes_nothing(main: Callable[P, R]) -> Callable[P, R | int]:
    """A benchmark's ``main`` that Ctrl-C ends with one line and exit status 130, before its
    table is written (the old one stays), not with a KeyboardInterrupt traceback."""

    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> R | int:
        try:
            return main(*args, **kwargs)
        except WrittenThenInterrupted as done:
            print(f"interrupted: {done}", file=sys.stderr)
            return 130
        except KeyboardInterrupt:
            print("interrupted: no table written", file=sys.stderr)
            return 130

    return run


#: the exit status of a script whose file could not be written (a full disk; a folder in the
#: way): as ``dispatchlab``'s for a file its option names, whenever it fails
EXIT_UNWRITABLE_FILE = 2

#: the exit status of a script ended by an I/O error that names no file (a broken connection
#: to a service it started, say): not the arguments' fault, so not 2
EXIT_IO_ERROR = 1


def run_script(main: Callable[[], int | None]) -> int | None:
    """A script's ``main()`` and its exit status, its standard output ending as
    ``dispatchlab``'s does (:mod:`scenarios.pipes`, :func:`dispatchlab.cli.main`).

    Standard output (``--help``, ``--list``, the tables printed) closed by its reader
    (``| head``) ends the script quietly, exit 1, not with a BrokenPipeError traceback; one
    that cannot be written (``> /dev/full``, a full disk) is one line, ``error: standard
    output: <reason>``, exit 1, also when argparse swallowed the failure (``--help``
    exited 0). A file that cannot be written (a table on a full disk) is one line,
    ``error: <file>: <option>: <reason>`` (:func:`file_error_line`), exit
    :data:`EXIT_UNWRITABLE_FILE`; any other OSError is ``error: <reason>``, exit
    :data:`EXIT_IO_ERROR` (both were tracebacks). A correction of saved data it reads (a
    :class:`~scenarios.saved.SavedDataWarning`: the hindsight cache's last row cut short,
    skipped) is one line on stderr, ``warning: <what>``, as ``dispatchlab`` says it (Python's
    format gave the warning's file and line of source).
    """
    from scenarios.pipes import (
        StdoutUnwritable,
        guarded_stdout,
        quiet_exit,
        stdout_closed,
        unwritable_exit,
    )
    from scenarios.saved import saved_data_shown

    try:
        with guarded_stdout() as stdout:
            ended: SystemExit | None = None
            try:
                with saved_data_shown(_say_warning):
                    status = main()
            except SystemExit as stop:  # argparse's --help and usage errors, sys.exit()
                ended, status = stop, None
            sys.stdout.flush()  # what is still buffered fails here, not as Python exits
            swallowed = stdout.failure
            if swallowed is not None and _succeeded(status if ended is None else ended.code):
                raise swallowed  # said nothing and would exit 0 (argparse's --help)
            if ended is not None:
                raise ended
    except BrokenPipeError as err:
        if stdout_closed():
            raise quiet_exit() from None
        return _io_error(err)
    except StdoutUnwritable as err:
        raise unwritable_exit(err) from None
    except OSError as err:
        return _io_error(err)
    return status


def _say_warning(message: str) -> None:
    """Print ``warning: message`` on one line of stderr (above a progress bar drawn there)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _succeeded(code: object) -> bool:
    """Whether a script's status (returned, or its SystemExit's code) says it succeeded."""
    return code is None or code == 0


def _io_error(err: OSError) -> int:
    """Say an OSError in one line on stderr; the exit status (a file's, or one naming none)."""
    if err.filename is None:
        reason = err.strerror or str(err) or type(err).__name__
        print(f"error: {reason}", file=sys.stderr, flush=True)
        return EXIT_IO_ERROR
    print(f"error: {file_error_line(err)}", file=sys.stderr, flush=True)
    return EXIT_UNWRITABLE_FILE


#: the output folders the running script's options gave, with the option (for its errors)
_output_folders: list[tuple[Path, str]] = []


def file_error_line(err: OSError) -> str:
    """``<file>: <reason>`` for an OSError naming a file, with the option that gave its folder
    (:func:`output_folder_arg`) after the file: ``out/t.md: --out-dir: No space left on
    device``."""
    from scenarios.files import output_error_line

    named = output_error_line(err, [(folder, option, True) for folder, option in _output_folders])
    if named is not None:
        return named
    where = os.fsdecode(err.filename)
    reason = err.strerror or str(err) or type(err).__name__
    if err.filename2 is not None:
        return f"{where} -> {os.fsdecode(err.filename2)}: {reason}"
    return f"{where}: {reason}"


def output_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot take a script's files (None: it can): a file in its place or in
    its path, or a folder in which nothing can be made (root may write ``/proc`` by its
    permissions, yet makes nothing there). A missing folder is made with its parents, as
    :func:`write_table_files` makes it; nothing is left behind by the check."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        return "is a file, expected a folder"
    at = folder
    while not at.exists() and at != at.parent:
        at = at.parent
    if not at.is_dir():
        return f"{at} is not a folder"
    try:
        if at == folder:
            fd, probe = tempfile.mkstemp(prefix=".probe-", dir=at)
            os.close(fd)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=at))
    except OSError as err:
        what = "a file in folder" if at == folder else "a folder in"
        return f"cannot make {what} {at} ({err.strerror or type(err).__name__})"
    return None


def output_folder_arg(option: str) -> Callable[[str], Path]:
    """The argparse type of an output folder option (``--out-dir``): a usage error (exit 2)
    before any work unless the folder can take the script's files
    (:func:`output_folder_problem`; a table written into it failed once the run was done,
    with a traceback); an error writing in it later names ``option``."""

    def parse(text: str) -> Path:
        folder = Path(text)
        problem = output_folder_problem(folder)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{text}: {problem}")
        _output_folders.append((folder, option))
        return folder

    return parse


def output_folder_default(ap: argparse.ArgumentParser, option: str, folder: Path) -> Path:
    """``folder``, the default of output folder ``option`` decided after parsing (it depends
    on other options), checked as :func:`output_folder_arg` checks a given one: a usage
    error naming ``option`` otherwise (exit 2). A default set on the option itself is given
    as a string: argparse passes only a string default through the option's type."""
    try:
        return output_folder_arg(option)(str(folder))
    except argparse.ArgumentTypeError as err:
        ap.error(f"argument {option}: {err}")


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """A kill (SIGTERM) raises KeyboardInterrupt in the block, as Ctrl-C does (so what the
    run started is stopped as it unwinds); the previous handler is back after it."""
    before = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def write_table_files(out_dir: Path, files: Mapping[str, str]) -> list[Path]:
    """Write one table's files (file name -> text) into ``out_dir``: all of them or none.

    Each text goes to a temporary name in ``out_dir`` first; only when every one is complete
    are they renamed over the old files, with Ctrl-C and SIGTERM held back meanwhile (acted
    on once all are in place; Ctrl-C then raises :class:`WrittenThenInterrupted`, which says
    so). An interruption or error before that removes the temporary
    files and leaves the old files as they were (never a new CSV beside an old ``.md``, nor a
    half-written file); an OS error renaming one of them puts back the files already
    renamed (the old pair again) and is raised. The texts are written as given (UTF-8, line
    ends untranslated: a CSV keeps its ``\\r\\n``). See :func:`scenarios.io.together
    .write_together`.
    """
    for file_name in files:
        if (out_dir / file_name).parent != out_dir:
            raise ValueError(f"{file_name!r}: a file name in {out_dir}, not a path")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        write_together({out_dir / file_name: text for file_name, text in files.items()})
    except WrittenThenInterrupted:
        # held back until every file was in place
        names = ", ".join(files)
        raise WrittenThenInterrupted(f"{names} in {out_dir} written first") from None
    return [out_dir / file_name for file_name in files]


def seed_arg(text: str) -> int:
    """``--seed``: a non-negative whole number (argparse type: else a usage error, exit 2)."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative seed, got {value}")
    return value


def table_name_arg(text: str) -> str:
    """``--out-prefix`` / ``--name``: a table's file name without ``.md``/``.csv`` (argparse
    type: else a usage error, exit 2; a path such as ``sub/t`` was refused only once the run
    was done, with a traceback)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a file name (without .md/.csv)")
    if "/" in text or os.sep in text or "\0" in text or text in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a file name, not a path (--out-dir gives the folder)"
        )
    return text


def seconds_arg(text: str) -> float:
    """A positive, finite number of seconds (argparse type: else a usage error, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0.0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _git(*args: str) -> str | None:
    """The output of ``git -C REPO args`` (stripped), or None where git cannot answer."""
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name (``platform.processor()`` where /proc has none)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The result tables, which the provenance's "uncommitted changes" leaves out.
RESULTS_PATHSPEC = ":(exclude)benchmarks/results"


def progress_bar(console: Console | None = None, *, timed: bool = False) -> Progress:
    """A rich progress bar of the scripts' long work: what, a bar, done of total, time spent
    (on ``console``, else stderr).

    ``timed``: the work is a timing, so no thread redraws the bar while it runs; it is drawn
    when told (``update(..., refresh=True)``, between measurements). Where stderr is not a
    terminal the bar is drawn once, as it ends, whichever way.
    """
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console if console is not None else Console(stderr=True),
        auto_refresh=not timed,
    )


def provenance() -> str:
    """One markdown line saying when, from which code and on which machine a run is made
    (called as the run starts: the load average is the machine's before the run adds to it)."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit is None:
        code = "code: not a git checkout"
    else:
        # the result tables are what runs write: a run after another of the same session
        # is not made from other code
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", RESULTS_PATHSPEC)
        code = f"code: commit {commit}" + (" + uncommitted changes" if dirty else "")
    try:
        load = f", 1-min load average {os.getloadavg()[0]:.2f} at the start"
    except OSError:
        load = ""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"Made {when}; {code}; machine: {os.cpu_count()} cores ({_cpu_model()}){load}; "
        f"Python {platform.python_version()}."
    )


def output_options(prefix: str, default_prefix: str, out_dir: Path, default_dir: Path) -> str:
    """`` --out-prefix P --out-dir D`` for a command line, each only when not its default."""
    words: list[str] = []
    if prefix != default_prefix:
        words += ["--out-prefix", prefix]
    if Path(out_dir).resolve() != Path(default_dir).resolve():
        words += ["--out-dir", str(out_dir)]
    return "".join(f" {shlex.quote(word)}" for word in words)


#: options a recorded command gives only when given: where the files go or come from, a path
#: of the machine that ran it (``run_all.py --out-dir`` adds its own folder)
PLACE_OPTIONS = frozenset({"--out", "--out-dir", "--bench-dir"})


def _default_words(default: object) -> list[list[str]]:
    """The ways to write ``default`` on a command line, the shortest first."""
    if isinstance(default, (str, Path)) and Path(default).is_absolute():  # a path under REPO
        try:
            return [[Path(default).resolve().relative_to(REPO).as_posix()], [str(default)]]
        except ValueError:
            return [[str(default)]]
    if isinstance(default, (list, tuple)):
        items = [str(v) for v in default]
        ways = [[",".join(items)], items]
        ints = [v for v in default if isinstance(v, int) and not isinstance(v, bool)]
        if len(ints) == len(default) > 2 and ints == list(range(ints[0], ints[-1] + 1)):
            ways.insert(0, [f"{ints[0]}..{ints[-1]}"])
        return ways
    return [[str(default)]]


def _parsed_quietly(ap: argparse.ArgumentParser, words: list[str]) -> dict[str, object] | None:
    """``words`` as ``ap`` reads them, or None where it refuses them (its message unprinted)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            namespace, extra = ap.parse_known_args(words)
    except SystemExit:
        return None
    return None if extra else vars(namespace)


def same_run(a: dict[str, object], b: dict[str, object]) -> bool:
    """Whether two parsed command lines are one run (a path relative to the repository, where
    the scripts run, is the same file as its absolute form)."""

    def same(x: object, y: object) -> bool:
        if x == y:
            return True
        paths = isinstance(x, (str, Path)) and isinstance(y, (str, Path))
        return paths and (REPO / str(x)).resolve() == (REPO / str(y)).resolve()

    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


def _given(ap: argparse.ArgumentParser, action: argparse.Action, words: list[str]) -> bool:
    """Whether ``words`` give ``action``'s option (in any spelling ``ap`` takes)."""
    unset, default = object(), action.default
    action.default = unset
    try:
        parsed = _parsed_quietly(ap, words)
    finally:
        action.default = default
    return parsed is not None and parsed[action.dest] is not unset


def explicit_args(ap: argparse.ArgumentParser, given: Sequence[str]) -> list[str]:
    """``given`` and every option of ``ap`` it leaves to its default, with that default.

    A recorded command so does the same run if a default changes later. Left out: flags
    (``store_true``: absent is their default), options whose default is None or empty
    (computed from the others, or nothing), repeated options and :data:`PLACE_OPTIONS`. A
    default is written only as words that ``ap`` reads back to the same value; ValueError
    names an option whose default no words give.
    """
    words = list(given)
    base = _parsed_quietly(ap, words)
    if base is None:
        raise ValueError(f"not a command line {ap.prog} takes: {shlex.join(words)}")
    for action in ap._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or action.nargs == 0 or action.default in (None, "", argparse.SUPPRESS):
            continue  # a positional, a flag, a default computed from the others
        option = max(longs, key=len)
        if option in PLACE_OPTIONS or isinstance(action, argparse._AppendAction):
            continue
        if _given(ap, action, words):
            continue
        for way in _default_words(action.default):
            again = _parsed_quietly(ap, [*words, option, *way])
            if again is not None and same_run(again, base):
                words += [option, *way]
                break
        else:
            raise ValueError(f"{option}: its default {action.default!r} has no command-line form")
    return words


#: options whose value a recorded command does not show (a table is committed): ``<name>``
SECRET_OPTIONS = frozenset({"--key"})


def _recorded(ap: argparse.ArgumentParser, given: Sequence[str]) -> list[str]:
    """``given`` without the :data:`PLACE_OPTIONS` (and their values) it names, and with
    ``<key>`` for the value of a :data:`SECRET_OPTIONS` one."""
    options = [o for a in ap._actions for o in a.option_strings if o.startswith("--")]
    words: list[str] = []
    value_of: str | None = None  # the option whose value the next word is
    for word in given:
        if value_of is not None:
            if value_of in SECRET_OPTIONS:
                words.append(f"<{value_of.removeprefix('--')}>")
            value_of = None
            continue
        name, eq, _ = word.partition("=")
        named = [o for o in options if o == name] or [o for o in options if o.startswith(name)]
        option = named[0] if word.startswith("--") and len(named) == 1 else None
        if option in PLACE_OPTIONS or option in SECRET_OPTIONS:
            if option in SECRET_OPTIONS:
                words.append(f"{option}=<{option.removeprefix('--')}>" if eq else option)
            value_of = None if eq else option
            continue
        words.append(word)
    return words


def command_line(ap: argparse.ArgumentParser, given: Sequence[str] | None, script: str) -> str:
    """``python benchmarks/SCRIPT`` with ``given`` (None: this process's arguments) and every
    default made explicit (:func:`explicit_args`), as a table's ``Command:`` line gives it:
    without where the files went (:data:`PLACE_OPTIONS`), so it re-makes the table in place,
    and without a key's value (:data:`SECRET_OPTIONS`)."""
    words = _recorded(ap, sys.argv[1:] if given is None else given)
    return shlex.join(["python", f"benchmarks/{script}", *explicit_args(ap, words)])


def add_repeats_option(ap: argparse.ArgumentParser) -> None:
    """Give ``ap`` the ``--repeats N`` option of the scripts with timing targets."""
    ap.add_argument(
        "--repeats",
        type=repeats_arg,
        default=5,
        help="runs of each measurement with a target: mean, 95%% CI, decided on the CI "
        "(default 5; 1: one run decides)",
    )


class Measures:
    """Measurements recorded in order, echoed as they come, written as one table."""

    def __init__(self) -> None:
        """An empty table (made as the run starts: :func:`provenance` is taken then)."""
        self.rows: list[Row] = []
        self.made = provenance()

    def record(
        self, measure: str, value: float, unit: str, target: str = "", status: str = ""
    ) -> None:
        """Add one measurement and print it."""
        self.rows.append(
            {
                "measure": measure,
                "value": value,
                "unit": unit,
                "target": target,
                "status": status,
                "ci_low": None,
                "ci_high": None,
                "runs": (),
                "constant": False,
            }
        )
        print(f"{measure}: {fmt_num(value, ',.4g')} {unit} {target} {status}", flush=True)

    def record_runs(
        self, measure: str, runs: Sequence[float], unit: str, op: Op, limit: float, target: str
    ) -> str:
        """Add a repeated measurement: mean, 95% CI, the target decided on it; its status."""
        ci = mean_ci(runs, bounds=(0.0, math.inf))  # times and rates are never negative
        status = decide(ci, op, limit)
        two = ci.n >= 2
        self.rows.append(
            {
                "measure": measure,
                "value": ci.mean,
                "unit": unit,
                "target": target,
                "status": status,
                "ci_low": ci.low if two else None,
                "ci_high": ci.high if two else None,
                "runs": tuple(float(r) for r in runs),
                "constant": two and ci.degenerate,
            }
        )
        parts = [fmt_num(ci.mean, ",.4g"), _ci_text(self.rows[-1]), unit, target, status]
        print(f"{measure}: " + " ".join(p for p in parts if p), flush=True)
        return status

    def write(self, out: Path, name: str, title: str, preamble: str) -> None:
        """``out/name.csv`` and ``out/name.md`` (title, preamble, machine line, when and from
        which code the run was made, the table)."""
        table = dict_csv_text(
            CSV_FIELDS,
            (
                {
                    **{k: v for k, v in row.items() if k in CSV_FIELDS},
                    "value": fmt_num(row["value"], ".6g"),
                    "ci_low": _csv_num(row["ci_low"]),
                    "ci_high": _csv_num(row["ci_high"]),
                    "runs": " ".join(fmt_num(r, ".6g") for r in row["runs"]),
                }
                for row in self.rows
            ),
        )
        machine = (
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
            f"shared, Python {platform.python_version()}."
        )
        repeated = any(r["runs"] for r in self.rows)
        constant = any(r["constant"] for r in self.rows)
        lines = [
            f"# {title}",
            "",
            f"{preamble} {machine}"
            + (f" {DECISION_NOTE}" if repeated else "")
            + (f" {CONSTANT_RUNS}" if constant else ""),
            "",
            self.made,
            "",
            "| measure | value | 95% CI | unit | target | status |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r['measure']} | {fmt_num(r['value'], ',.4g')} | {_ci_text(r)} "
                f"| {r['unit']} | {r['target']} | {r['status']} |"
            )
        write_table_files(out, {f"{name}.csv": table, f"{name}.md": "\n".join(lines) + "\n"})
        print(f"wrote {out / (name + '.md')} and {out / (name + '.csv')}")


def _csv_num(x: float | None) -> str:
    """A CSV cell: empty when there is no value."""
    return "" if x is None else fmt_num(x, ".6g")


def _ci_text(row: Row) -> str:
    """``[low, high] (5 runs)`` for a repeated measurement, ``(1 run)`` for one, else empty;
    ``[x, x] (constant) (5 runs)`` when every run gave the same figure (zero width)."""
    k = len(row["runs"])
    if row["ci_low"] is None or row["ci_high"] is None:
        return "(1 run)" if k == 1 else ""
    flat = CONSTANT_NOTE if row["constant"] else ""
    return f"[{fmt_num(row['ci_low'], ',.4g')}, {fmt_num(row['ci_high'], ',.4g')}]{flat} ({k} runs)"


def main(argv: Sequence[str] | None = None) -> int:
    """Say what this module is (``--help``: its docstring too); exit status 2, as it runs
    nothing, unless asked for ``--help``."""
    ap = argparse.ArgumentParser(
        description=__doc__,
        epilog=NOT_A_BENCHMARK,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.parse_args(argv)
    ap.error(NOT_A_BENCHMARK)


if __name__ == "__main__":
    sys.exit(run_script(main))
