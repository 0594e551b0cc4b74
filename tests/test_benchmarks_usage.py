"""The command lines in the benchmark scripts' docstrings (their ``--help`` text) run as shown."""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, ScriptArgs, benchmark_script

SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))
COMMAND = re.compile(r"^\s*(?:flock \S+ \S+ )?(?:\.venv/bin/)?python \S*benchmarks/(\w+)\.py\b")


def _docstring(script: Path) -> str:
    """The module docstring as Python reads it (escapes applied): what ``--help`` prints."""
    return ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")), clean=False) or ""


def _options(script: Path) -> set[str]:
    """The ``--options`` the script's argparse parser declares (literally or by a constant),
    and argparse's own ``--help``."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = {"--help"}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            for arg in node.args:
                value = arg.value if isinstance(arg, ast.Constant) else None
                if isinstance(arg, ast.Name):
                    value = constants.get(arg.id)
                if isinstance(value, str) and value.startswith("--"):
                    found.add(value)
    return found


def _commands(doc: str) -> list[tuple[str, str]]:
    """(script name, whole command) of each command line, continuation lines joined."""
    commands: list[tuple[str, str]] = []
    lines = iter(doc.splitlines())
    for line in lines:
        match = COMMAND.match(line)
        if match is None:
            continue
        command = line.split(" #")[0].strip()
        while command.endswith("\\"):
            command = command[:-1].rstrip() + " " + next(lines).split(" #")[0].strip()
        commands.append((match.group(1), command))
    return commands


def test_the_docstrings_hold_commands() -> None:
    assert sum(len(_commands(_docstring(s))) for s in SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_a_usage_line_keeps_its_line_breaks(script: Path) -> None:
    """A backslash-newline in a (non-raw) docstring is eaten by Python: allocation_certify's
    ``--help`` printed ``--seconds 300         --runs ...``, its two lines run together."""
    for line in _docstring(script).splitlines():
        if COMMAND.match(line):
            command = line.split(" #")[0].strip()  # a comment may be aligned with spaces
            assert not re.search(r"\S {2,}\S", command), f"{script.name}: {command}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_a_usage_line_names_only_options_its_script_has(script: Path) -> None:
    for name, command in _commands(_docstring(script)):
        target = REPO / "benchmarks" / f"{name}.py"
        assert target.is_file(), command
        unknown = set(re.findall(r"(?<!\S)--[a-z][a-z0-9-]*", command)) - _options(target)
        assert not unknown, f"{script.name}: {command}: {sorted(unknown)}"


#: run in one fresh interpreter (``python -c``): the benchmark scripts of ``argv[2]`` (a JSON
#: list of [script, arguments]) one after another, each as ``python <script> <arguments>``
#: runs it (its folder first on ``sys.path``, ``__main__``, ``sys.argv``); prints each one's
#: exit status, stdout and stderr (JSON). The third-party modules (the seconds of a fresh
#: interpreter's start) stay imported. So do the repository's (``argv[1]``; ~0.5 s of CPU
#: per script), as long as the run would import them from where they were: at each import
#: of one of its top-level names while a script runs, every repository package imported so
#: far must be found where it was by the import system under the script's ``sys.path`` of
#: that moment (its folder's ``simulation.py`` shadows the package until the script puts the
#: repository first). When one is not, that script's output is dropped and it is run again
#: with every module of the repository forgotten (but those of a virtual environment inside
#: it, as make's ``.venv``: numpy cannot be imported twice), as in a run of its own.
_RUN_SCRIPTS = """
import builtins, contextlib, importlib, io, json, os, runpy, sys, traceback

repo, runs = os.path.realpath(sys.argv[1]), json.loads(sys.argv[2])
venv = os.path.realpath(sys.prefix) + os.sep  # inside the repository (make's .venv): kept
path, out = sys.path[1:], []  # as a script's run has it, but for its folder (not '')
real_import, real_import_module = builtins.__import__, importlib.import_module


def where(module):
    return os.path.realpath(getattr(module, "__file__", None) or "")


def ours(module):
    return where(module).startswith(repo + os.sep) and not where(module).startswith(venv)


def found(name):
    for finder in sys.meta_path:  # as an import of ``name`` not yet imported would look
        spec = finder.find_spec(name, None) if hasattr(finder, "find_spec") else None
        if spec is not None:
            return os.path.realpath(spec.origin) if spec.origin else None
    return None


class Watch:
    def __init__(self):
        self.kept = {n: where(m) for n, m in sys.modules.items() if "." not in n and ours(m)}
        self.checked, self.stale = set(), False

    def check(self, name, level):
        if level == 0 and name.partition(".")[0] in self.kept and not self.stale:
            key = tuple(sys.path)
            if key not in self.checked:
                self.checked.add(key)
                self.stale = any(found(n) != at for n, at in self.kept.items())

    def import_(self, name, globals=None, locals=None, fromlist=(), level=0):
        self.check(name, level)
        return real_import(name, globals, locals, fromlist, level)

    def import_module(self, name, package=None):
        self.check(name, 0 if not name.startswith(".") else 1)
        return real_import_module(name, package)


def run(script, args):
    sys.path[:] = [os.path.dirname(os.path.abspath(script)), *path]
    sys.argv = [script, *args]
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (stop.code is not None) * 1
            if not isinstance(stop.code, (int, type(None))):
                print(stop.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
    return [code, stdout.getvalue(), stderr.getvalue()]


for script, args in runs:
    for name, module in list(sys.modules.items()):
        if name.startswith("__") and ours(module):  # a script's own (``__mp_main__``)
            del sys.modules[name]
    watch = Watch()
    builtins.__import__, importlib.import_module = watch.import_, watch.import_module
    try:
        done = run(script, args)
    finally:
        builtins.__import__, importlib.import_module = real_import, real_import_module
    if watch.stale:
        for name, module in list(sys.modules.items()):
            if ours(module):
                del sys.modules[name]
        done = run(script, args)
    out.append(done)
print(json.dumps(out))
"""

#: the runs of :data:`_RUN_SCRIPTS`: each script's ``--help``, then ``measures.py`` alone
_RUNS: list[tuple[str, list[str]]] = [(str(script), ["--help"]) for script in SCRIPTS]
_RUNS.append(("benchmarks/measures.py", []))


@pytest.fixture(scope="module")
def script_runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """What each run of :data:`_RUNS` gave (by script name; ``measures.py`` alone as
    ``measures``): one interpreter for all, not ~2 s of imports each."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", _RUN_SCRIPTS, str(REPO), json.dumps(_RUNS)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.splitlines()[-1])
    names = [Path(script).name for script, _ in _RUNS[:-1]] + ["measures"]
    return {
        name: subprocess.CompletedProcess(args, code, stdout, stderr)
        for name, (script, args), (code, stdout, stderr) in zip(names, _RUNS, runs, strict=True)
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_help_prints_the_docstring(
    script: Path, script_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    """``--help`` shows the whole docstring, its command lines with it: most scripts printed
    only its first line, and ``measures.py`` (a module, ``simulation`` shadowed by its
    folder's ``simulation.py``) a traceback."""
    done = script_runs[script.name]
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script.name}")
    assert " ".join(_docstring(script).split()) in " ".join(done.stdout.split())


def _options_without_help(script: Path) -> list[str]:
    """The options of the script's parser declared with no ``help`` text (or an empty one)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    return [
        ast.unparse(node.args[0]) if node.args else "?"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        and not any(
            k.arg == "help" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            for k in node.keywords
        )
    ]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_help_describes_every_option(script: Path) -> None:
    """``--help`` says what each option is: 52 options of 16 scripts (``--seed``, ``--out-dir``,
    ``--out-prefix``, routing's ``--set`` and ``--engine``, ...) were listed bare."""
    assert not _options_without_help(script), _options_without_help(script)


def test_measures_run_as_a_script_says_it_is_a_module(
    script_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    done = script_runs["measures"]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "not a benchmark" in done.stderr and "benchmarks/run_all.py --list" in done.stderr


#: the benchmark scripts :func:`_parsed` reads arguments with (``usage_<name>``), imported
#: while the tests of this module run (:func:`_scripts_loaded`)
_ARGS = ScriptArgs("usage")


@pytest.fixture(scope="module", autouse=True)
def _scripts_loaded() -> Iterator[None]:
    """The scripts :func:`_parsed` imports stay imported until this module's tests end."""
    yield
    _ARGS.close()


def _parsed(name: str, args: list[str]) -> dict[str, Any]:
    """``args`` as ``benchmarks/<name>.py``'s own parser reads them (its ``main()`` stopped
    once they are parsed); AssertionError with argparse's message if it refuses them."""
    namespace, _, err = _ARGS.parse(name, args)
    if namespace is None:
        raise AssertionError(f"{name}.py {shlex.join(args)}: {err}")
    return vars(namespace)


#: a value that stands for one the reader fills in (not parsed)
PLACEHOLDER = re.compile(r"<[^>]+>|/path/to/|=PATH\b")


def _script_and_args(command: str) -> tuple[str, list[str]]:
    """The benchmark script a command line runs and its arguments."""
    words = shlex.split(command)
    at = next(i for i, w in enumerate(words) if re.search(r"(^|/)benchmarks/\w+\.py$", w))
    return Path(words[at]).stem, words[at + 1 :]


USAGE_LINES = [
    (script.name, command)
    for script in SCRIPTS
    for _, command in _commands(_docstring(script))
    if not PLACEHOLDER.search(command) and "--help" not in command.split()  # (it exits 0)
]
#: a table's command line (``Reproduce:`` in the tables of load.py, travel_matrix.py and
#: generate_city.py) that runs a benchmark script
TABLE_COMMAND = r"(?:Command|Reproduce): `([^`]*benchmarks/\w+\.py[^`]*)`"
TABLE_LINES = [
    (table.name, command)
    for table in sorted((REPO / "benchmarks" / "results").glob("*.md"))
    for command in re.findall(TABLE_COMMAND, table.read_text())
    if not PLACEHOLDER.search(command)
]


@pytest.mark.parametrize(
    ("where", "command"), USAGE_LINES + TABLE_LINES, ids=[w for w, _ in USAGE_LINES + TABLE_LINES]
)
def test_a_command_line_parses(where: str, command: str) -> None:
    """Each usage line and each committed table's ``Command:`` line is one its script's
    parser takes, values included (routing_budget's tables gave ``--orders [600, 1500]``)."""
    _parsed(*_script_and_args(command))


RESULT_TABLES = sorted((REPO / "benchmarks" / "results").glob("*.md"))


@pytest.mark.parametrize("table", RESULT_TABLES, ids=[t.name for t in RESULT_TABLES])
def test_every_table_gives_its_command_or_says_why_none_exists(table: Path) -> None:
    """A ``Command:`` (or ``Reproduce:``) line, or a ``No command:`` line saying why none
    can be given: six tables gave neither (session 79 recovered five commands from git)."""
    text = table.read_text(encoding="utf-8")
    has_command = re.search(r"(?:Command|Reproduce): `[^`]+`", text) is not None
    why_none = re.search(r"^No command: \S", text, re.MULTILINE) is not None
    assert has_command != why_none, f"{table.name}: a command, or a 'No command:' line"


def test_the_commands_parsed_are_many() -> None:
    assert len(USAGE_LINES) >= 15 and len(TABLE_LINES) >= 20


#: usage lines that are not a run_all step on purpose: re-rendering a stored table, or a check
#: that writes elsewhere than the committed tables (routing.py's reproducibility check)
NOT_A_STEP = ("--from-results", "--out-dir")


def test_a_usage_line_that_reproduces_a_table_is_its_run_all_step() -> None:
    """A script's usage line writes the committed table of its ``make bench`` step with that
    step's arguments (the routing lines wrote ``routing-solomon-5s`` with other anchors,
    ``routing-city-1000-10s`` with one worker, ``routing-budget`` with a smaller grid)."""
    with benchmark_script("run_all.py", "usage_run_all_steps") as run_all:
        steps = [(s.script, s.name, list(s.args)) for s in (*run_all.STEPS, *run_all.EXTRAS)]
    checked = 0
    for where, command in USAGE_LINES:
        name, args = _script_and_args(command)
        mine = [(step, a) for script, step, a in steps if script == f"{name}.py"]
        if not mine or any(flag in args for flag in NOT_A_STEP):
            continue
        got = {k: v for k, v in _parsed(name, args).items() if k != "bench_dir"}
        wanted = {
            step: {k: v for k, v in _parsed(name, a).items() if k != "bench_dir"}
            for step, a in mine
        }
        assert got in wanted.values(), f"{where}: {command}: no step has these arguments"
        checked += 1
    assert checked >= 10


def test_a_placeholder_names_the_option_it_stands_for() -> None:
    """``<out-prefix>`` is the value of ``--out-prefix``, in the docstrings and the pages
    alike (docs/routing.md wrote ``benchmarks/results/<prefix>.csv``: no script has
    ``--prefix``)."""
    found = 0
    for script in SCRIPTS:
        for name in re.findall(r"<([a-z][a-z-]*)>", _docstring(script)):
            assert f"--{name}" in _options(script), f"{script.name}: <{name}>"
            found += 1
    every = set().union(*(_options(s) for s in SCRIPTS))
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for name in re.findall(r"benchmarks/results/<([a-z][a-z-]*)>", text):
            assert f"--{name}" in every, f"{page.name}: <{name}>"
            found += 1
    assert found >= 5


def test_every_usage_line_is_parsed() -> None:
    """No usage line is left out of :func:`test_a_command_line_parses` for a placeholder:
    allocation_pyomo_jobs's ``--code before=/path/to/old/clone`` was never checked (session
    54: a ``--code`` takes a commit of this repository, ``before=HEAD``, which a shallow clone
    has too)."""
    for script in SCRIPTS:
        for _, command in _commands(_docstring(script)):
            if "--help" not in command.split():
                assert (script.name, command) in USAGE_LINES, f"{script.name}: {command}"


def test_a_code_given_as_a_commit_is_measured_from_its_files(tmp_path: Path) -> None:
    """``--code LABEL=REV``: the commit's files (``git archive``), and the table's
    ``Command:`` line gives the commit; a folder it gives as the commit its checkout is at,
    or, with uncommitted changes, as it was given (it said ``PATH``, a placeholder, whatever
    was run: session 55), and its ``Codes:`` the commit that folder was at."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    assert found.returncode == 0, "the tests run in a git checkout of the repository"
    head = found.stdout.strip()
    with benchmark_script("allocation_pyomo_jobs.py", "pyomo_jobs_code") as jobs:
        code = jobs.code_arg("before=HEAD")
        assert (code.label, code.commit) == ("before", head)
        here = jobs.code_arg(f"after={REPO}")
        assert here.commit is None and here.root == REPO
        assert jobs.command_code(code) == f"--code before={head[:7]}"
        clone = tmp_path / "clone"  # a folder given as --code: a checkout of HEAD
        subprocess.run(["git", "clone", "-q", "--shared", str(REPO), str(clone)], check=True)
        folder = jobs.code_arg(f"after={clone}")
        assert folder.commit is None and folder.given == str(clone)
        # its commit (the same files; the line runs once the folder is gone), not 'PATH'
        assert jobs.command_code(folder) == f"--code after={head[:7]}"
        assert jobs.describe_code(folder) == f"after = `{clone}` (commit {head[:7]})"
        args = argparse.Namespace(
            runs=5, orders=20, limit=5.0, short_limit=1.0, settle=5.0, ready_jobs=5
        )
        assert jobs.command_line([code, folder], args) == (
            f"python benchmarks/allocation_pyomo_jobs.py --code before={head[:7]} "
            f"--code after={head[:7]} --runs 5 --orders 20 --limit 5 --short-limit 1 "
            "--settle 5 --ready-jobs 5"
        )
        this = jobs.Code("this", REPO)  # no --code: this checkout, none in the command
        assert jobs.command_line([this], args).startswith(
            "python benchmarks/allocation_pyomo_jobs.py --runs 5 "
        )
        # with uncommitted changes no commit holds its files: the folder as it was given
        readme = clone / "README.md"
        readme.write_text(readme.read_text() + "changed\n")
        assert jobs.command_code(folder) == f"--code after={clone}"
        spaced = jobs.Code("after", clone, given="my clone")
        assert jobs.command_code(spaced) == "--code 'after=my clone'"
        assert jobs.describe_code(folder) == (
            f"after = `{clone}` (commit {head[:7]} + uncommitted changes)"
        )
        outside = tmp_path / "not-a-checkout"
        outside.mkdir()
        assert jobs.folder_revision(outside) == (None, False)
        files = jobs.checked_out(code, tmp_path)
        assert files.root.parent == tmp_path and files.commit == head
        assert (files.root / "benchmarks" / "allocation_pyomo_jobs.py").read_bytes() == (
            subprocess.run(
                ["git", "-C", str(REPO), "show", "HEAD:benchmarks/allocation_pyomo_jobs.py"],
                capture_output=True,
                check=True,
            ).stdout
        )
        with pytest.raises(argparse.ArgumentTypeError, match="no commit of"):
            jobs.code_arg("before=no-such-rev-0000")
        with pytest.raises(argparse.ArgumentTypeError, match="expected LABEL=PATH or LABEL=REV"):
            jobs.code_arg("HEAD")
