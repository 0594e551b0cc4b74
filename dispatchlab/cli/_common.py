"""Helpers every CLI command uses: one-line errors with exit code 2, shared consoles.

User text (file names, option values, names from input files) is never read as Rich markup
or emoji codes: the consoles have ``emoji=False`` and such text goes through
:func:`rich.markup.escape` (or is printed with ``markup=False``).
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    ParamSpec,
    TypeVar,
    get_args,
    get_origin,
)

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape

from scenarios.errors import InputError, input_error_from_validation
from scenarios.files import output_error_line, usable_folder
from scenarios.geo import MAX_SEED
from scenarios.pipes import StdoutUnwritable, quiet_exit, stdout_closed, write_all_stdout

if TYPE_CHECKING:
    from scenarios.model import Scenario

P = ParamSpec("P")
R = TypeVar("R")

console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
#: the longest time limit the solvers take (their params' ``time_limit_s``)
MAX_TIME_LIMIT_S = 86_400.0
#: the most worker processes of ``simulate``, ``whatif`` and ``evaluate`` (a pool no larger
#: than its tasks; with Ray, the CPUs asked of the cluster)
MAX_WORKERS = 1_024


def print_error(message: str) -> None:
    """Print ``error: message`` on one line of stderr; ``message`` is plain text."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """Print ``warning: message`` on one line of stderr; ``message`` is plain text."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    print_error(message)
    return typer.Exit(code)


def comma_items(value: str, option: str, what: str) -> list[str]:
    """The comma-separated items of ``option``'s ``value``: none is a usage error, and so is an
    empty one (``greedy,,slots`` ran two policies without a word)."""
    items = [s.strip() for s in value.split(",")]
    if not any(items):
        raise fail(f"{option}: give at least one {what}")
    if not all(items):
        raise fail(f"{option}: an empty {what} in {value!r} (two commas, or one at an end)")
    return items


def os_error_line(err: OSError) -> str:
    """One line for an OSError: ``path: reason`` (``reason`` alone when there is no path)."""
    reason = err.strerror or str(err) or type(err).__name__
    if err.filename is None:
        return reason
    where = str(err.filename)
    if err.filename2 is not None:
        where += f" -> {err.filename2}"
    return f"{where}: {reason}"


@contextmanager
def saved_data_warnings() -> Iterator[None]:
    """Show each :class:`~scenarios.saved.SavedDataWarning` as one ``warning:`` line on stderr.

    Such a warning says a file saved by an older version was read with a correction (e.g. a
    travel matrix's diagonal set to zero); other warnings are shown as Python shows them.
    """
    from scenarios.saved import saved_data_shown

    with saved_data_shown(print_warning):
        yield


#: the input files the running command has read: (path, the field path its content sits
#: under in errors, "" for the top level; the top-level fields of what it holds)
_input_files: ContextVar[tuple[tuple[str, str, frozenset[str]], ...]] = ContextVar(
    "dispatchlab_input_files", default=()
)


def note_input(path: str | Path, fields: Iterable[str], *, under: str = "") -> None:
    """Record that the running command read ``path``, a file with these top-level fields.

    A later error on one of them without a file (a solver's ``vehicles.0.cost_per_km_cents``)
    is then reported as ``path: field: reason`` by :func:`cli_errors`. ``under``: errors name
    the file's fields below this path (a plan file's ``routes`` as ``plan.routes``).
    """
    _input_files.set((*_input_files.get(), (str(path), under, frozenset(fields))))


def _depth(field: str, under: str, fields: frozenset[str]) -> int | None:
    """How many parts of ``field`` the file noted under ``under`` accounts for (None: none)."""
    parts = field.split(".")
    prefix = under.split(".") if under else []
    if len(parts) <= len(prefix) or parts[: len(prefix)] != prefix:
        return None
    return len(prefix) if parts[len(prefix)] in fields else None


def with_input_file(err: InputError) -> InputError:
    """``err`` naming the input file whose field it is (as it is if it names one already, or
    if no single input file of the command has that field).

    A file noted under a path (a variant file's plan, under ``plan``) owns the errors below
    that path rather than a file whose top-level field it is (the variant file's ``plan``).
    """
    if err.source is not None:
        return err
    owners: dict[str, int] = {}
    for path, under, fields in _input_files.get():
        depth = _depth(err.field, under, fields)
        if depth is not None:
            owners[path] = max(depth, owners.get(path, depth))
    if not owners:
        return err
    deepest = max(owners.values())
    files = [path for path, depth in owners.items() if depth == deepest]
    if len(files) != 1:
        return err
    return InputError(err.field, err.reason, source=files[0])


#: the output files and folders the running command checked before writing them: (path,
#: the option that gave it, whether it is a folder its files are written in)
_output_paths: ContextVar[tuple[tuple[Path, str, bool], ...]] = ContextVar(
    "dispatchlab_output_paths", default=()
)


def note_output(path: Path, option: str, *, folder: bool = False) -> None:
    """Record that the running command writes ``path`` (a file, or a ``folder`` of files, in
    it or in folders under it), given as ``option``: :func:`cli_errors` then names the option
    in an error writing it."""
    _output_paths.set((*_output_paths.get(), (path, option, folder)))


def os_error_message(err: OSError) -> str:
    """:func:`os_error_line`, with the option after the path when the path is an output the
    command noted (:func:`note_output`): ``out.json: --out: No space left on device`` (a
    folder's files too, deeper ones included: train's logs under ``--logdir``)."""
    return output_error_line(err, _output_paths.get()) or os_error_line(err)


def cli_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn bad input into one clear line on stderr and exit 2; Ctrl-C into exit 130.

    An OSError (a file that cannot be read or written) counts as bad input: ``path: reason``
    (``path: option: reason`` for an output an option gave, :func:`os_error_message`);
    but a standard output closed by its reader (``| head``) ends the command quietly, with
    exit status 1 (:mod:`scenarios.pipes`), and one that cannot be written (``> /dev/full``)
    is left to the entry point (:func:`dispatchlab.cli.main`: one line, exit 1).
    An error on a field of an input file (see :func:`note_input`) names the file.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _input_files.set(())
        outputs = _output_paths.set(())
        try:
            with saved_data_warnings():
                return fn(*args, **kwargs)
        except InputError as err:
            raise fail(with_input_file(err).one_line()) from None
        except ValidationError as err:
            raise fail(input_error_from_validation(err).one_line()) from None
        except BrokenPipeError as err:
            if stdout_closed():  # ``| head`` stopped reading: as Click and Rich, quietly
                raise quiet_exit() from None
            raise fail(os_error_message(err)) from None
        except StdoutUnwritable:  # not the input's fault: the entry point says it
            raise
        except OSError as err:
            raise fail(os_error_message(err)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None
        finally:
            _output_paths.reset(outputs)
            _input_files.reset(token)

    return wrapper


@contextmanager
def option_names(names: Mapping[str, str], model: type[BaseModel] | None = None) -> Iterator[None]:
    """Report a ValidationError of params built from options under the options' names.

    ``names`` maps a params field (``time_limit_s``) to its option (``--time-limit``); a
    field that no option sets keeps its path. A value out of a ``model`` field's bounds is
    said as :func:`check_range` says it (``--workers: must be an integer from 1 to 64, got
    65``), not in pydantic's words (``Input should be less than or equal to 64``).
    """
    try:
        yield
    except ValidationError as err:
        error = input_error_from_validation(err)
        head = error.field.partition(".")[0]
        option = names.get(head, error.field)
        first = err.errors()[0]
        bounds = field_bounds(model, head) if model is not None and head in names else None
        if bounds is not None and first["type"] in _BOUND_ERRORS:
            raise InputError(option, bounds.refusal(first["input"])) from None
        raise InputError(option, error.reason) from None


#: pydantic's error types of a number out of a field's bounds (or not finite)
_BOUND_ERRORS = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}
)


@dataclass(frozen=True)
class Bounds:
    """The values a numeric option takes: ``low`` to ``high`` (None: no bound that side),
    each end in the range or (``*_open``) not; whole numbers only if ``integer``."""

    low: float | None
    high: float | None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    #: what the number counts, said after it (``seconds``)
    unit: str = ""

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies in the range (NaN and, for a number, infinities do not)."""
        if isinstance(value, float) and not math.isfinite(value):  # (an int is finite, and
            return False  # one of 400 digits has no float)
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def words(self) -> str:
        """The range in words: ``an integer from 1 to 64``, ``a finite number in (0, 1]``."""
        kind = "an integer" if self.integer else "a finite number"
        if self.unit:
            kind += f" of {self.unit}"
        low, high = self.low, self.high
        if self.integer and low is not None and high is not None:
            return f"{kind} from {_shown(low)} to {_shown(high)}"
        if low is not None and high is not None:
            ends = ("(" if self.low_open else "[", ")" if self.high_open else "]")
            return f"{kind} in {ends[0]}{_shown(low)}, {_shown(high)}{ends[1]}"
        if low is not None:
            return f"{kind} {'above' if self.low_open else 'of at least'} {_shown(low)}"
        if high is not None:
            return f"{kind} {'below' if self.high_open else 'of at most'} {_shown(high)}"
        return kind

    def refusal(self, value: object) -> str:
        """The reason ``value`` is refused: ``must be <range>, got <value>``."""
        return f"must be {self.words()}, got {_shown(value)}"


def _shown(value: object) -> str:
    """A number as the user would write it (``86400``, ``0.5``, ``nan``, ``1e+20``)."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def field_bounds(model: type[BaseModel], name: str) -> Bounds | None:
    """The bounds of the numeric field ``name`` of ``model`` (None: it has none)."""
    import annotated_types as at

    field = model.model_fields.get(name)
    if field is None:
        return None
    found: dict[str, Any] = {}
    integer = False

    def walk(metadata: Iterable[Any], annotation: Any) -> None:
        nonlocal integer
        for item in metadata:
            for kind in ("ge", "gt", "le", "lt"):
                if isinstance(item, getattr(at, kind.capitalize())):
                    found.setdefault(kind, getattr(item, kind))
            walk(getattr(item, "metadata", ()), None)  # a Field(ge=...) inside Annotated
        if annotation is int:
            integer = True
        for arg in get_args(annotation):  # ``Annotated[int, Field(ge=1)] | None``
            inner = get_args(arg)[0] if get_origin(arg) is Annotated else arg
            walk(getattr(arg, "__metadata__", ()), inner)

    walk(field.metadata, field.annotation)
    if not found:
        return None
    low = found.get("ge", found.get("gt"))
    high = found.get("le", found.get("lt"))
    return Bounds(
        low, high, "ge" not in found and "gt" in found, "le" not in found and "lt" in found, integer
    )


@contextmanager
def as_option(field: str, option: str) -> Iterator[None]:
    """Report an InputError on ``field`` (or below it) that names no file as ``option``'s.

    A library checks its argument under its own name (``parse_seeds``: ``seeds``); the
    command line names the option that gave it (``--seeds``).
    """
    try:
        yield
    except InputError as err:
        if err.source is not None or not (err.field == field or err.field.startswith(f"{field}.")):
            raise
        raise InputError(option, err.reason) from None


def check_range(option: str, value: float, bounds: Bounds, note: str = "") -> None:
    """Exit 2 unless ``value`` lies in ``bounds``, naming ``option``, the value and the range
    (``--gap: must be a finite number in [0, 1], got 2``); ``note`` is said after it."""
    if not bounds.holds(value):
        raise fail(f"{option}: {bounds.refusal(value)}{note}")


def check_int_range(option: str, value: int, low: int, high: int) -> None:
    """Exit 2 naming ``option`` unless ``low <= value <= high``."""
    check_range(option, value, Bounds(low, high, integer=True))


def check_time_limit(value: float, option: str = "--time-limit") -> None:
    """Fail unless ``value`` is a finite number of seconds in (0, MAX_TIME_LIMIT_S]."""
    check_range(option, value, Bounds(0, MAX_TIME_LIMIT_S, low_open=True, unit="seconds"))


def check_field(option: str, value: float, model: type[BaseModel], name: str) -> None:
    """Exit 2 unless ``value`` lies in the bounds of ``model``'s field ``name`` (before the
    params are built: an option checked before any file is read)."""
    bounds = field_bounds(model, name)
    assert bounds is not None, f"{model.__name__}.{name} has no bounds"
    check_range(option, value, bounds)


def int_range_option(low: int, high: int, *decls: str, help: str) -> Any:
    """An integer option checked while parsing, as :func:`check_int_range` checks (not with
    Click's own words: ``Invalid value for '--port': ...``); its help ends with the range."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: int | None) -> int | None:
        if value is not None and not ctx.resilient_parsing:
            check_int_range(max(param.opts, key=len), value, low, high)
        return value

    return typer.Option(*decls, help=f"{help} [{low} to {high}]", callback=check)


def seed_option(help: str) -> Any:
    """A ``--seed`` option: an integer in 0..MAX_SEED (2**32 - 1), checked while parsing."""
    return int_range_option(0, MAX_SEED, help=help)


def check_output_file(out: Path, option: str = "--out") -> None:
    """Fail, before any work is done, unless the file ``out`` can be written.

    Its folder must exist: a missing one is an error naming it, never created (a typo in a
    path is not turned into new folders). An error writing it later names ``option``
    (:func:`note_output`).
    """
    note_output(out, option)
    if out.is_dir():
        raise InputError(option, "is a directory, expected a file path", source=str(out))
    if out.exists() and not os.access(out, os.W_OK):
        raise InputError(option, "file is not writable", source=str(out))
    usable_folder(out.parent, option, out)
    if not out.is_symlink() and (out.is_file() or not out.exists()):
        _probe(out, option, out.parent)  # a symlink, device or FIFO is written through, not here


def _probe(
    out: Path, option: str, folder: Path, *, make: Literal["file", "folder"] = "file"
) -> None:
    """Fail unless a ``make`` (``file`` or ``folder``) can be made in ``folder`` for ``out``,
    as its write makes one (a file's atomic write, a new folder); nothing is left behind.

    ``os.access`` is no test of that: for root a folder such as ``/proc`` is writable, yet
    nothing can be made there (``--out /proc/x.json`` failed after the solve, ``--out
    /proc/report`` after the runs with ``/proc/report: No such file or directory``, naming
    no option).
    """
    import tempfile

    prefix = f".{out.name}.probe-"
    try:
        if make == "file":
            fd, probe = tempfile.mkstemp(prefix=prefix, dir=folder)
            os.close(fd)
        else:
            probe = tempfile.mkdtemp(prefix=prefix, dir=folder)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        where = f"a file in folder {folder}" if make == "file" else f"a folder in {folder}"
        raise InputError(option, f"cannot make {where} ({reason})", source=str(out)) from None
    if make == "file":
        os.unlink(probe)
    else:
        os.rmdir(probe)


def check_output_folder(out: Path, option: str = "--out") -> None:
    """Fail, before any work is done, unless ``out`` is a writable folder or can be made one.

    A missing ``out`` is created by the command, but only ``out`` itself: its parent folder
    must exist (as ``mkdir`` without ``-p``), else the error names the missing parent. An
    error writing a file in it later names ``option`` (:func:`note_output`).
    """
    note_output(out, option, folder=True)
    if out.exists() and not out.is_dir():
        raise InputError(option, "is a file, expected a folder", source=str(out))
    usable_folder(out if out.exists() else out.parent, option, out)
    if out.is_dir():
        _probe(out, option, out)  # its files are written inside it
    else:
        _probe(out, option, out.parent, make="folder")


#: the ``--out`` value that means standard output
STDOUT = "-"
#: the input file argument that means standard input
STDIN = "-"
#: how errors name standard input (where they name an input file)
STDIN_NAME = "<stdin>"


def is_stdin(path: Path | str) -> bool:
    """Whether an input file argument asks for standard input (``-``)."""
    return str(path) == STDIN


def input_name(path: Path | str) -> str:
    """How errors name an input file argument: its path, ``<stdin>`` for ``-``."""
    return STDIN_NAME if is_stdin(path) else str(path)


def read_input(path: Path | str) -> bytes:
    """The bytes of an input file argument (without a UTF-8 BOM), ``-`` being standard input.

    Standard input is read under the input size cap, as a file is; a missing file, a folder
    or a file past the cap is an InputError naming it (:func:`scenarios.io.json_io.read_bytes`).
    """
    import codecs

    from scenarios.files import read_stream_limited
    from scenarios.io.json_io import read_bytes

    if not is_stdin(path):
        return read_bytes(path)
    data = read_stream_limited(sys.stdin.buffer, source=STDIN_NAME)
    return data.removeprefix(codecs.BOM_UTF8)


def load_scenario_input(path: Path | str, fmt: str = "auto") -> Scenario:
    """Read a scenario file argument in any supported format, ``-`` being standard input
    (its format told from its first characters, or ``fmt``)."""
    return load_scenario_input_as(path, fmt)[0]


def load_scenario_input_as(path: Path | str, fmt: str = "auto") -> tuple[Scenario, str]:
    """:func:`load_scenario_input` and the format the input was read as (``fmt``, or the one
    detected): a JSON scenario's ``source.format`` is the format it was first read from."""
    from scenarios.io import detect_bytes_format, detect_format, load_scenario, scenario_from_bytes

    data = read_input(path) if is_stdin(path) else None  # stdin can be read once only
    try:
        if data is not None:
            chosen = detect_bytes_format(data, source=STDIN_NAME) if fmt == "auto" else fmt
            return scenario_from_bytes(data, chosen, source=STDIN_NAME), chosen
        chosen = detect_format(path) if fmt == "auto" else fmt
        return load_scenario(path, chosen), chosen
    except InputError as err:
        if err.source != input_name(path):
            raise
        raise mistaken_input(
            err, data if data is not None else file_bytes(path), "scenario"
        ) from None


def file_bytes(path: Path | str) -> bytes | None:
    """The bytes of the input file argument ``path``, None if it cannot be read."""
    try:
        return read_input(path)
    except (InputError, OSError):
        return None


#: the hint of an input read as one kind (the key's first) that is another (its second)
MISTAKEN: dict[tuple[str, str], str] = {
    ("scenario", "request"): "this looks like an allocation request: dispatchlab allocate reads it",
    ("scenario", "plan"): (
        "this looks like a plan, as dispatchlab route --out writes: give the scenario here, "
        "and the plan to simulate --plan"
    ),
    ("plan", "scenario"): (
        "this looks like a scenario: --plan takes a plan, as dispatchlab route --out writes"
    ),
    ("plan", "request"): (
        "this looks like an allocation request: --plan takes a plan, as dispatchlab route "
        "--out writes"
    ),
    ("request", "scenario"): "this looks like a scenario file: add --scenario",
    ("request", "plan"): (
        "this looks like a plan, as dispatchlab route --out writes: allocate reads an "
        "allocation request (or a scenario with --scenario)"
    ),
}


def json_input_kind(data: bytes | None) -> str | None:
    """Which of the command line's JSON inputs ``data`` is: ``scenario``, ``request`` (an
    allocation request) or ``plan`` (None: none of them, not JSON, or an empty object)."""
    from scenarios.io.json_io import from_json, loads
    from scenarios.io.plan_io import plan_from_json
    from scenarios.model import Scenario
    from solvers.allocation import AllocationRequest

    if data is None:
        return None
    try:
        parsed = loads(data)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not parsed:  # {} is a request of nothing, say
        return None
    readers: dict[str, Callable[[], object]] = {
        "scenario": lambda: from_json(Scenario, data),
        "request": lambda: from_json(AllocationRequest, data),
        "plan": lambda: plan_from_json(data),
    }
    for kind, read in readers.items():
        try:
            read()
        except (InputError, ValidationError, ValueError):
            continue
        return kind
    return None


def mistaken_input(err: InputError, data: bytes | None, expected: str) -> InputError:
    """``err`` with a hint added when the input that failed as an ``expected`` one
    (``scenario``, ``request`` or ``plan``) is another of them (see :data:`MISTAKEN`)."""
    return with_hint(err, expected, json_input_kind(data))


def with_hint(err: InputError, expected: str, found: str | None) -> InputError:
    """``err`` with the hint of :data:`MISTAKEN` for a ``found`` input read as an ``expected``
    one (``err`` itself when there is none)."""
    hint = MISTAKEN.get((expected, found or ""))
    if hint is None:
        return err
    return InputError(err.field, f"{err.reason} ({hint})", source=err.source)


def is_stdout(out: Path | None) -> bool:
    """Whether an ``--out`` option asks for standard output (``-``)."""
    return out is not None and str(out) == STDOUT


def check_out_option(out: Path | None, option: str = "--out") -> None:
    """Fail, before any work is done, unless ``out`` is unset, ``-`` or a writable file."""
    if out is not None and not is_stdout(out):
        check_output_file(out, option)


def check_quiet_out(quiet: bool, out: Path | None) -> None:
    """Fail, before any work is done, on ``--quiet`` without ``--out`` (nothing would be shown)."""
    if quiet and out is None:
        raise fail(
            "--quiet: without --out the result would be neither shown nor written: "
            "give --out FILE, or --out - for its JSON on standard output"
        )


def write_out(text: str, out: Path | None, option: str = "--out") -> None:
    """Write an ``--out`` result: to the file, to stdout for ``-``, nowhere when unset."""
    if out is not None:
        write_text(text, None if is_stdout(out) else out, option)


def _bar_text(label: str) -> str:
    """``label`` as a rich TextColumn format: its braces (``{north}``) stay text, not fields."""
    return label.replace("{", "{{").replace("}", "}}")


def with_elapsed_bar(
    label: str,
    total_s: float,
    quiet: bool,
    work: Callable[[], R],
    *,
    status: Callable[[], str] | None = None,
) -> R:
    """Run ``work`` under a transient elapsed-time bar on stderr (no bar when ``quiet``);
    ``status``, if given, is read every tick and shown after the bar (plain text: what the
    work is doing).

    On a stderr that is not an interactive terminal (a file, a pipe) there is no bar and
    nothing is written, as :func:`progress_bar` does: Rich ended the bar there with an empty
    line, which came before a following error message (``route bad.json 2>err.txt``).
    """
    import threading
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if quiet or not err_console.is_interactive:
        return work()
    done = threading.Event()
    columns = [TextColumn(_bar_text(label)), BarColumn(), TimeElapsedColumn()]
    if status is not None:
        columns.append(TextColumn("{task.fields[status]}", markup=False))
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("solve", total=total_s, status="")

        def tick() -> None:
            t0 = time.perf_counter()
            while not done.wait(0.1):
                now = "" if status is None else status()
                progress.update(task, completed=min(total_s, time.perf_counter() - t0), status=now)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            return work()
        finally:
            done.set()
            ticker.join()


@contextmanager
def progress_bar(
    label: str, quiet: bool, total: int | None = None
) -> Iterator[Callable[[int, int], None]]:
    """A transient count bar on stderr (none when ``quiet``); yields ``progress(done, total)``.

    ``label`` is plain text (not markup); ``total`` is the count expected before the first
    call, if known. On a stderr that is not an interactive terminal (a file, a pipe) the bar
    is not drawn, and writes nothing: Rich ends a bar there with an empty line, which came
    before a following error message.
    """
    if quiet:
        yield lambda _done, _total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn(_bar_text(label), markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_interactive,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextmanager
def status_line(label: str, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A transient spinner and ``label`` on stderr while a step without a count runs (none when
    ``quiet``); yields ``update(label)``, which replaces the text (plain text, not markup).

    On a stderr that is not an interactive terminal (a file, a pipe) nothing is drawn, as
    :func:`progress_bar` does.
    """
    if quiet or not err_console.is_interactive:
        yield lambda _label: None
        return
    with err_console.status(escape(label)) as status:
        yield lambda text: status.update(escape(text))


def write_text(text: str, out: Path | None, option: str = "--out") -> None:
    """Write to ``out`` atomically (temp file + rename; a symlink, device or FIFO is written
    through), or to stdout when None."""
    if out is None:
        write_all_stdout(text)  # a reader gone mid-write raises too (``| head``)
        return
    from scenarios.io.json_io import atomic_write

    check_output_file(out, option)
    with atomic_write(out) as fh:
        fh.write(text.encode("utf-8"))
