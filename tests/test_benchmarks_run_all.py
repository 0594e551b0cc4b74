"""``benchmarks/run_all.py`` (``make bench``) rewrites the committed tables the docs cite."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from benchmarks.measures import same_run
from tests.conftest import REPO, ScriptArgs, benchmark_script


@pytest.fixture
def run_all() -> Iterator[ModuleType]:
    """The benchmark runner, imported as a module (nothing runs on import)."""
    with benchmark_script("run_all.py", "run_all_steps_script") as module:
        yield module


_ARGS = ScriptArgs("run_all_tables")


@pytest.fixture(scope="module", autouse=True)
def _scripts_loaded() -> Iterator[None]:
    """The scripts whose parsers read the tables' commands, imported once for the module."""
    yield
    _ARGS.close()


def _same_run(script: str, run: list[str], step: list[str]) -> bool:
    """Whether the arguments ``run`` (a table's) and ``step`` (a step's) are one run of
    ``benchmarks/SCRIPT`` as its parser reads them (a table's command gives every option,
    its defaults included; the step, what it changes; neither where the files go)."""
    place = {"bench_dir", "out_dir", "out"}
    parsed = []
    for args in (run, step):
        namespace, _, err = _ARGS.parse(script.removesuffix(".py"), args)
        assert namespace is not None, f"{script} {' '.join(args)}: {err}"
        parsed.append({k: v for k, v in vars(namespace).items() if k not in place})
    return same_run(*parsed)


def _without_only(args: list[str]) -> list[str]:
    """``args`` without allocation.py's ``--only PARTS`` (each part's table is checked apart)."""
    if "--only" not in args:
        return list(args)
    at = args.index("--only")
    return args[:at] + args[at + 2 :]


def test_every_routing_step_writes_the_committed_table(run_all: ModuleType) -> None:
    """Each routing step names its committed table (it wrote routing-solomon-auto-5s.md)."""
    routing = [s for s in run_all.STEPS if s.script == "routing.py"]
    assert routing, "run_all has routing steps"
    for step in routing:
        args = list(step.args)
        assert "--out-prefix" in args, step.name
        prefix = args[args.index("--out-prefix") + 1]
        budget = args[args.index("--time-limit") + 1]
        assert prefix == f"{step.name}-{budget}s"
        assert (REPO / "benchmarks" / "results" / f"{prefix}.md").is_file(), prefix


def test_routing_steps_run_the_command_of_their_committed_table(run_all: ModuleType) -> None:
    """Each table's ``Command:`` line is its step, ``--out-prefix`` included (the city tables
    had no step at all, and the lines left out the prefix that names the table)."""
    steps = {s.name: s for s in run_all.STEPS if s.script == "routing.py"}
    assert {"routing-city-1000", "routing-city-10000"} <= set(steps)
    for step in steps.values():
        args = list(step.args)
        prefix = args[args.index("--out-prefix") + 1]
        table = (REPO / "benchmarks" / "results" / f"{prefix}.md").read_text(encoding="utf-8")
        command = next(line for line in table.splitlines() if line.startswith("Command:"))
        assert command.startswith("Command: `python benchmarks/routing.py "), prefix
        run = command.removeprefix("Command: `python benchmarks/routing.py ").rstrip("`")
        assert _same_run("routing.py", run.split(), args), prefix


def test_every_variant_step_runs_the_command_of_its_table(run_all: ModuleType) -> None:
    """The variant steps (``--extras``) re-make their tables with the tables' own commands."""
    extras = {s.name: s for s in run_all.EXTRAS}
    assert {"allocation-city-seeds", "rl-evaluation-reopt", "load-latency-2workers"} <= set(extras)
    assert not set(extras) & {s.name for s in run_all.STEPS}
    for name, step in extras.items():
        table = (REPO / "benchmarks" / "results" / f"{name}.md").read_text(encoding="utf-8")
        # the run's command (a re-rendered table's note, "> Re-rendered ...", names --from-results)
        lines = [line for line in table.splitlines() if not line.startswith(">")]
        command = next((line for line in lines if "python benchmarks/" in line), None)
        if command is None:  # allocation.py's tables name their --only flag in the text
            assert "--only" in step.args and name.removeprefix("allocation-") in step.args
            continue
        at = command.index(f"python benchmarks/{step.script} ")
        run = command[at : command.index("`", at)].split()[2:]
        if "--only" in step.args:  # one run of several --only parts writes each part's table
            mine = step.args[step.args.index("--only") + 1]
            assert mine in run[run.index("--only") + 1].split(","), name
        assert _same_run(step.script, _without_only(run), _without_only(list(step.args))), name


def test_a_plain_run_leaves_the_variant_steps_out(
    run_all: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--list`` shows the variant steps only with ``--extras`` or when named."""

    def listed(*argv: str) -> list[str]:
        monkeypatch.setattr("sys.argv", ["run_all.py", "--list", *argv])
        assert run_all.main() == 0
        return [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]

    plain = listed()
    assert plain == [s.name for s in run_all.STEPS]
    assert listed("--extras") == plain + [s.name for s in run_all.EXTRAS]
    assert listed("--only", "rl-speed-latency,simulation") == ["simulation", "rl-speed-latency"]


def test_ctrl_c_lets_the_running_step_finish_its_own_stop(
    run_all: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a step runs: the step gets SIGINT and time to write its rows and stop
    what it started (``subprocess.call`` killed it 0.25 s later: routing.py's rows done and
    load.py's server stop never happened), then the interrupt goes on."""
    done = tmp_path / "written"
    step_script = tmp_path / "step.py"
    step_script.write_text(
        "import pathlib, signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(1.0)  # writing its table, stopping its server\n"
        f"    pathlib.Path({str(done)!r}).write_text('rows')\n"
        "    sys.exit(130)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        f"pathlib.Path({str(tmp_path / 'started')!r}).write_text('')\n"
        "time.sleep(60)\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(run_all, "LOCK", tmp_path / "lock")  # not the machine's CPU lock
    command = [sys.executable, str(step_script)]
    monkeypatch.setattr(run_all.Step, "command", lambda self, *_: command)
    ended = threading.Event()

    def interrupt_once_started() -> None:
        while not (tmp_path / "started").exists():
            if ended.wait(0.05):
                return
        os.kill(os.getpid(), signal.SIGINT)  # to this process only, as `kill -INT` would

    timer = threading.Thread(target=interrupt_once_started)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_all._run(run_all.Step("fake", "fake.py"), tmp_path)
    finally:
        ended.set()
        timer.join()
    assert done.read_text() == "rows"


def test_every_step_can_write_into_out_dir(run_all: ModuleType) -> None:
    """Each step's script takes the output-folder option ``--out-dir`` gives it."""
    for step in run_all.STEPS + run_all.EXTRAS:
        option = run_all.OUT_OPTION.get(step.script)
        assert option is not None, step.name
        source = (REPO / "benchmarks" / step.script).read_text(encoding="utf-8")
        assert re.search(rf'add_argument\(\s*"{option}"', source), (step.script, option)


def test_out_dir_leaves_the_committed_tables_alone(
    run_all: ModuleType,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``--list --out-dir DIR``: every command writes into DIR and nowhere else (run_all had no
    way to run without overwriting benchmarks/results); without it, the commands as before."""
    out = tmp_path / "tables"
    monkeypatch.setattr("sys.argv", ["run_all.py", "--list", "--extras", "--out-dir", str(out)])
    assert run_all.main() == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(run_all.STEPS + run_all.EXTRAS)
    for line, step in zip(lines, run_all.STEPS + run_all.EXTRAS, strict=True):
        words = line.split(": ", 1)[1].split()
        assert words[-2:] == [run_all.OUT_OPTION[step.script], str(out)], line
        assert not {"--out", "--out-dir"} & set(words[:-2]), line
        assert "benchmarks/results" not in line
    assert not out.exists()  # a listing makes nothing
    monkeypatch.setattr("sys.argv", ["run_all.py", "--list", "--extras"])
    assert run_all.main() == 0
    plain = capsys.readouterr().out
    assert "--out " not in plain and "--out-dir" not in plain


def test_out_dir_refuses_a_step_that_cannot_take_it(
    run_all: ModuleType,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A step whose script has no output folder would still write benchmarks/results: with
    ``--out-dir`` it is refused, naming it, before anything runs (exit 2)."""
    monkeypatch.setattr(run_all, "STEPS", (*run_all.STEPS, run_all.Step("fixed", "fixed.py")))
    monkeypatch.setattr(run_all, "_run", lambda *a: pytest.fail("a step ran"))
    monkeypatch.setattr("sys.argv", ["run_all.py", "--out-dir", str(tmp_path / "t")])
    assert run_all.main() == 2
    err = capsys.readouterr().err
    assert "fixed: fixed.py has no output-folder option" in err and "--skip fixed" in err
    assert not (tmp_path / "t").exists()


def test_out_dir_run_passes_the_folder_and_reuses_the_hindsight_days(
    run_all: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each step runs with the folder; the RL evaluation finds the hindsight cache there."""
    ran: list[tuple[str, Path | None]] = []
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # main's SIGTERM handler: not here

    def run(step: object, _bench: Path, out: Path | None = None) -> int:
        ran.append((getattr(step, "name"), out))  # noqa: B009 (the module's Step)
        return 0

    monkeypatch.setattr(run_all, "_run", run)
    out = tmp_path / "t"
    argv = ["run_all.py", "--only", "simulation,rl-evaluate", "--out-dir", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    assert run_all.main() == 0
    assert ran == [("simulation", out.resolve()), ("rl-evaluate", out.resolve())]
    cache = run_all.HINDSIGHT_CACHE
    stored = REPO / "benchmarks" / "results" / cache
    assert (out / cache).read_bytes() == stored.read_bytes()


def _table_command(name: str) -> list[str] | None:
    """The words of the run's command in ``NAME.md`` from ``benchmarks/...py`` on, its
    ``Command:`` line's if it has one (None when the table names none; a re-rendered table's
    note, ``> ...``, is not its run)."""
    table = (REPO / "benchmarks" / "results" / f"{name}.md").read_text(encoding="utf-8")
    lines = [line for line in table.splitlines() if not line.startswith(">")]
    # its ``Command:`` line first (allocation-time-limits-before's text gives the current
    # table's command before its own)
    lines.sort(key=lambda line: not line.startswith("Command:"))
    for line in lines:
        if "python benchmarks/" in line:
            start = line.index("python benchmarks/") + len("python ")
            return line[start : line.index("`", start)].split()
    return None


def test_every_table_is_remade_by_a_step_running_its_command_or_kept_as_run(
    run_all: ModuleType,
) -> None:
    """Each table under benchmarks/results is either a step's, whose command is the one the
    table gives (the travel-matrix, routing-budget and rl-evaluate steps left out options the
    tables name: the RL step played other policies on 2 workers), or named in
    ``ONE_OFF_TABLES`` as kept the way it was run; no name of either is stale."""
    stored = {p.stem for p in (REPO / "benchmarks" / "results").glob("*.md")}
    steps = run_all.STEPS + run_all.EXTRAS
    made = [(step, name) for step in steps for name in step.tables()]
    names = [name for _, name in made]
    assert len(names) == len(set(names)), "two steps write one table"
    assert set(names) | set(run_all.ONE_OFF_TABLES) == stored
    assert not set(names) & set(run_all.ONE_OFF_TABLES)
    assert set(run_all.RUN_OTHERWISE) <= set(names)
    for step, name in made:
        run = _table_command(name)
        mine = [f"benchmarks/{step.script}", *step.args]
        if name in run_all.RUN_OTHERWISE:
            assert run is not None and run[0] == mine[0], name
            continue
        if step.script == "allocation.py":
            if run is None:  # the older allocation tables give their part in the text
                continue
            part = next(p for p, t in run_all.ALLOCATION_TABLES.items() if t == name)
            if "--only" in run:  # (a plain run's table may give its parts or not)
                assert part in run[run.index("--only") + 1].split(","), name
            run, mine = _without_only(run), _without_only(mine)
        assert run is not None and run[0] == mine[0], name
        assert _same_run(step.script, run[1:], mine[1:]), name


def test_a_table_command_with_every_default_written_is_still_its_steps(
    run_all: ModuleType,
) -> None:
    """The scripts now write every default into a table's command (``measures.command_line``):
    such a command is its step's run, and one value changed is not (the tests compared the
    words, so the next run of each table would have failed them)."""
    from benchmarks.measures import explicit_args
    from tests.test_benchmarks_measures import script_parser

    for step in run_all.STEPS + run_all.EXTRAS:
        args = list(step.args)
        written = explicit_args(script_parser(step.script, args), args)
        assert written[: len(args)] == args, step.name
        assert _same_run(step.script, written, args), step.name
        seed = next((w for w in written if w in ("--seed", "--seeds", "--repeats")), None)
        if seed is not None:  # (allocation_pyomo_limits.py has none of them)
            at = written.index(seed) + 1
            assert not _same_run(step.script, [*written[:at], "7", *written[at + 1 :]], args)


def test_every_table_is_named_in_the_docs() -> None:
    """Each table under benchmarks/results is named in README.md or a page of docs/ (by its
    name, or as ``NAME.md``): ten were named by no page (three only as "the ``-run1`` files")."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    named = set(re.findall(r"(?<![\w-])([a-z][\w-]*[\w])(?![\w-])", text))
    tables = {p.stem for p in (REPO / "benchmarks" / "results").glob("*.md")}
    assert sorted(tables - named) == []


def test_the_allocation_parts_are_the_scripts(run_all: ModuleType) -> None:
    """``ALLOCATION_TABLES`` has allocation.py's ``--only`` parts in their order, and the
    parts a plain run leaves out are the variant steps'."""
    with benchmark_script("allocation.py", "run_all_allocation_parts") as allocation:
        assert tuple(run_all.ALLOCATION_TABLES) == allocation.TABLES
        left_out = set(allocation.TABLES) - set(allocation.DEFAULT_TABLES)
    assert left_out == set(run_all.ALLOCATION_OPT_IN)
    variants = [s.tables() for s in run_all.EXTRAS if s.script == "allocation.py"]
    assert sorted(t for ts in variants for t in ts) == sorted(
        run_all.ALLOCATION_TABLES[p] for p in run_all.ALLOCATION_OPT_IN
    )


def test_help_names_every_step_and_every_table_kept_as_run(
    run_all: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--help`` named a few steps in its examples; now it lists them all, the variants
    apart, and the tables no step re-makes."""
    monkeypatch.setattr("sys.argv", ["run_all.py", "--help"])
    with pytest.raises(SystemExit) as done:
        run_all.main()
    assert done.value.code == 0
    text = capsys.readouterr().out
    plain, _, rest = text.partition("steps of a plain run:")[2].partition("variant steps")
    variants, _, kept = rest.partition("tables in benchmarks/results")
    listed = [w.strip(", \n") for w in plain.split()]
    assert listed == [s.name for s in run_all.STEPS]
    assert all(s.name in variants.split(", ") or f" {s.name}" in variants for s in run_all.EXTRAS)
    assert all(name in kept for name in run_all.ONE_OFF_TABLES)
    other = text.partition("tables a step re-makes by another run than the committed one")[2]
    assert other, "--help does not say which tables a step re-makes by another run"
    for name in run_all.RUN_OTHERWISE:
        assert f"  {name}: " in other, name


def test_a_table_re_made_by_another_run_says_why_its_command_is_no_step(
    run_all: ModuleType,
) -> None:
    """allocation-reference's command (two runs merged, a runs CSV kept only in git) is not
    one step's: the step re-makes the table by its own run, and run_all says so (it said
    nothing: ``make bench`` would have replaced the committed run without a word)."""
    assert set(run_all.RUN_OTHERWISE) == {"allocation-reference"}
    step = next(s for s in run_all.STEPS if "allocation-reference" in s.tables())
    run = _table_command("allocation-reference")
    assert run is not None and run[0] == f"benchmarks/{step.script}"
    assert "--fast-runs" in run and "--fast-runs" not in step.args  # so not the step's run
    why = run_all.RUN_OTHERWISE["allocation-reference"]
    assert "--fast-runs" in why and "62e3997" in why and f"the {step.name} step" in why


def test_a_run_shows_its_steps_on_a_bar_and_ctrl_c_names_the_step_it_stopped_in(
    run_all: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before each step a bar line says which step of how many is starting (the steps' own
    output between them, as they wrote it); Ctrl-C in a step ends the run with one line
    naming that step and the steps finished (it said only "interrupted"), exit 130."""
    steps = tuple(run_all.Step(name, f"{name}.py") for name in ("first", "second", "third"))
    monkeypatch.setattr(run_all, "STEPS", steps)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # main's SIGTERM handler: not here

    def run(step: object, _bench: Path, _out: Path | None = None) -> int:
        name = getattr(step, "name")  # noqa: B009 (the module's Step)
        if name == "third":
            raise KeyboardInterrupt
        print(f"output of {name}", file=sys.stderr)
        return 0

    monkeypatch.setattr(run_all, "_run", run)
    monkeypatch.setattr("sys.argv", ["run_all.py"])
    assert run_all.main() == 130
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[:5] for line in lines[:-1]] == [
        ["step", "1", "of", "3:", "first"],
        ["output", "of", "first"],
        ["step", "2", "of", "3:", "second"],
        ["output", "of", "second"],
        ["step", "3", "of", "3:", "third"],
    ]
    assert [line.split()[-2] for line in lines[:-1:2]] == ["0/3", "1/3", "2/3"]  # done/total
    assert lines[-1].startswith("interrupted in step 3 of 3, third")
    assert "steps finished: first, second" in lines[-1]


#: tables whose text names no ``python benchmarks/...`` command: why (session 79 recovered
#: the commands of allocation-city, -scaling, -reference and -certify from git)
NO_COMMAND = {
    "allocation-http-job-2026-12-06": "a dated record of HTTP jobs, run by hand",
    "rl-retrain-2026-12-06": "a dated record of a retraining (dispatchlab train)",
}

#: tables kept as they were run whose command writes a table of another name (the file was
#: renamed to keep it beside the step's): the name that command writes; each says why on a
#: ``Name:`` line
RENAMED = {
    "load-latency-2workers-runs": "load-latency",
    "routing-cvrplib_x-10s-anchor": "routing-cvrplib_x-auto-10s",
    "routing-cvrplib_x-10s-contended": "routing-cvrplib_x-auto-10s",
    "routing-cvrplib_x-10s-run1": "routing-cvrplib_x-auto-10s",
    "routing-homberger400-20s-run1": "routing-homberger400-auto-20s",
    "routing-solomon-5s-run1": "routing-solomon-auto-5s",
}

#: scripts that print what they find and write no table: a table giving their command holds
#: their output, copied
PRINTS_ONLY = ("allocation_certify.py",)

#: the table of a script that names none and is no step's (run_all.DEFAULT_TABLE has the rest)
OTHER_DEFAULTS = {
    "routing_small.py": "routing-small",
    "routing_breaks_fuzz.py": "routing-breaks-fuzz",
    "allocation_pyomo_jobs.py": "allocation-pyomo-jobs",
}


def _written_name(run_all: ModuleType, run: list[str]) -> str | list[str]:
    """The table (allocation.py: the tables) the command ``run`` (from ``benchmarks/...``)
    writes, by its options and its script's defaults."""
    script, args = run[0].removeprefix("benchmarks/"), run[1:]

    def option(name: str) -> str | None:
        return args[args.index(name) + 1] if name in args else None

    named = option("--out-prefix") or option("--name")
    if named is not None:
        return named
    if script == "routing.py":  # routing.py's own default (run_all's steps give a prefix)
        budget = float(option("--time-limit") or 10)
        if option("--set") == "city":
            return f"routing-city-{budget:g}s"
        return f"routing-{option('--set')}-{option('--engine') or 'auto'}-{budget:g}s"
    if script == "allocation.py":
        parts = (option("--only") or "").split(",")
        renamed = option("--time-limits-name")
        names = [run_all.ALLOCATION_TABLES[p] for p in parts]
        return [renamed if renamed and n == "allocation-time-limits" else n for n in names]
    return str({**run_all.DEFAULT_TABLE, **OTHER_DEFAULTS}[script])


def test_every_table_names_the_command_that_writes_it(run_all: ModuleType) -> None:
    """A table's command, run again, writes a table of that name (its prefix given, or its
    script's default); the tables without a command and the ones kept under another name
    than their command's are the known few (a new table cannot join them unnoticed)."""
    stored = sorted(p.stem for p in (REPO / "benchmarks" / "results").glob("*.md"))
    without, elsewhere = set(), {}
    for name in stored:
        run = _table_command(name)
        if run is None:
            without.add(name)
            continue
        if run[0].removeprefix("benchmarks/") in PRINTS_ONLY:
            continue
        written = _written_name(run_all, run)
        if name != written and name not in (written if isinstance(written, list) else []):
            elsewhere[name] = written if isinstance(written, str) else ",".join(written)
    assert without == set(NO_COMMAND)
    assert elsewhere == RENAMED
    assert set(RENAMED) <= set(run_all.ONE_OFF_TABLES)  # no step's table is renamed
    # and each renamed table says why (seven said nothing of it)
    for name in stored:
        text = (REPO / "benchmarks" / "results" / f"{name}.md").read_text(encoding="utf-8")
        says_why = re.search(rf"^Name: kept as `{re.escape(name)}\.md`, not `", text, re.M)
        assert (says_why is not None) == (name in RENAMED), name


def test_a_list_printed_into_a_closed_pipe_ends_quietly() -> None:
    """``run_all.py --list | head`` printed a BrokenPipeError traceback (exit 1); every
    benchmark script now ends as ``dispatchlab`` does then: no line, exit 1."""
    from scenarios.pipes import EXIT_CLOSED_STDOUT
    from tests.scripts import run_with_stdout_closed

    script = REPO / "benchmarks" / "run_all.py"
    code, err = run_with_stdout_closed([sys.executable, str(script), "--list", "--extras"])
    assert (code, err) == (EXIT_CLOSED_STDOUT, "")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_list_printed_onto_a_full_disk_is_one_error_line() -> None:
    """``run_all.py --list > /dev/full`` was an OSError traceback: one error line, exit 1."""
    from scenarios.pipes import EXIT_STDOUT_UNWRITABLE

    script = REPO / "benchmarks" / "run_all.py"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, str(script), "--list"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=120,
        )
    assert (done.returncode, done.stderr) == (
        EXIT_STDOUT_UNWRITABLE,
        "error: standard output: No space left on device\n",
    )
