"""Bad benchmark arguments are usage errors naming the option (exit 2), before anything runs,
and every table says when, from which code and on which machine it was made."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import patch

import pytest

from tests.conftest import REPO, ScriptArgs, benchmark_script, routing_table_args

#: the benchmark scripts :func:`_refusal` reads arguments with (``args_<name>``), imported
#: while the tests of this module run (:func:`_scripts_loaded`)
_ARGS = ScriptArgs("args")


@pytest.fixture(scope="module", autouse=True)
def _scripts_loaded() -> Iterator[None]:
    """The scripts :func:`_refusal` imports stay imported until this module's tests end."""
    yield
    _ARGS.close()


def _refusal(script: str, args: list[str]) -> str:
    """What ``benchmarks/<script>.py``'s parser says refusing ``args`` (its ``main()`` is
    stopped once they are parsed: AssertionError if it takes them)."""
    namespace, code, err = _ARGS.parse(script, args)
    if namespace is not None:
        raise AssertionError(f"{script}.py {' '.join(args)}: accepted")
    assert code == 2, (code, err)
    return err


#: (script, arguments, the option the error names): each ran into a traceback, ran with the
#: value silently changed, or (load --clients, simulation --workers) started without bound
BAD = [
    ("generate_city", ["--repeats", "0"], "--repeats"),  # StatisticsError: no median
    ("travel_matrix", ["--repeats", "0"], "--repeats"),
    ("travel_matrix", ["--sizes", "0"], "--sizes"),  # an empty 0-location row
    ("load", ["--clients", "100000"], "--clients"),  # 1.4 GB, Ctrl-C ignored
    ("load", ["--clients", "0"], "--clients"),
    ("load", ["--alloc-requests", "0"], "--alloc-requests"),  # ZeroDivisionError
    ("load", ["--route-instance", "nope"], "--route-instance"),  # InputError traceback
    ("load", ["--alloc-rate", "-1"], "--alloc-rate"),
    ("load", ["--route-time-limit", "0"], "--route-time-limit"),
    ("load", ["--workers", "0"], "--workers"),  # the started server's error, exit 1
    ("rl_speed", ["--days", "0"], "--days"),  # IndexError
    ("rl_speed", ["--latency-days", "-1"], "--latency-days"),  # IndexError
    ("rl_speed", ["--model", "/no/such/model.zip"], "--model"),  # InputError traceback
    ("routing", ["--set", "solomon", "--time-limit", "-1"], "--time-limit"),  # pydantic
    ("routing", ["--set", "solomon", "--workers", "0"], "--workers"),
    ("routing", ["--set", "solomon", "--workers", "100000"], "--workers"),
    ("routing", ["--set", "solomon", "--limit", "-1"], "--limit"),  # left the last one out
    ("routing", ["--set", "city", "--city-orders", "x"], "--city-orders"),  # ValueError
    ("routing", ["--set", "city", "--city-orders", "0"], "--city-orders"),  # InputError
    ("routing", ["--set", "city", "--city-orders", "300000"], "--city-orders"),
    ("routing", ["--set", "solomon", "--vroom-level", "99"], "--vroom-level"),  # taken as is
    ("routing", ["--set", "solomon", "--max-iterations", "0"], "--max-iterations"),
    ("routing", ["--set", "solomon", "--max-solutions", "0"], "--max-solutions"),
    ("simulation", ["--workers", "100000"], "--workers"),  # a pool and Ray that size
    ("simulation", ["--workers", "0"], "--workers"),
    ("simulation", ["--orders", "0"], "--orders"),  # InputError traceback
    ("simulation", ["--replications", "0"], "--replications"),
    ("simulation", ["--plan", "/no/such/plan.json"], "--plan"),
    ("allocation", ["--time-limit", "-5"], "--time-limit"),  # pydantic traceback
    ("allocation", ["--time-limit", "nan"], "--time-limit"),
    ("allocation", ["--scale-sizes", "0"], "--scale-sizes"),  # ZeroDivisionError
    ("allocation", ["--reference-threads", "0"], "--reference-threads"),
    ("allocation", ["--seeds", "0"], "--seeds"),  # no seed: empty tables over the old ones
    ("allocation", ["--known", "/no/such/known.csv"], "--known"),  # judged against nothing
    ("allocation_pyomo_jobs", ["--port", "70000"], "--port"),  # "the service exited (2)"
    ("routing_small", ["--seeds", "5..1"], "--seeds"),
    ("routing_small", ["--seeds", "-1"], "--seeds"),
    ("routing_small", ["--orders", "0"], "--orders"),
    ("routing_small", ["--jobs", "both"], "--jobs"),
    ("routing_small", ["--time-limit", "0"], "--time-limit"),
    ("allocation_small", ["--seeds", "x..3"], "--seeds"),
    ("simulation_policies", ["--days", "7s1"], "--days"),  # no fleet for 7 orders
    ("simulation_policies", ["--days", "100s2v3"], "--days"),  # no generator 3
    ("simulation_policies", ["--policies", "insertion"], "--policies"),  # nothing to compare
    ("simulation_policies", ["--policies", "insertion,nope"], "--policies"),
    ("simulation_policies", ["--policies", "insertion,plan"], "--policies"),  # no plan
    ("simulation_policies", ["--breaks", "yes"], "--breaks"),
    ("simulation_policies", ["--seeds", "3..1"], "--seeds"),
    ("simulation_policies", ["--workers", "0"], "--workers"),
    # an empty item of a list was dropped without a word (``1,,3`` ran on 1 and 3), and a
    # range without an end was an IndexError traceback
    ("routing_small", ["--seeds", "1,,3"], "--seeds"),
    ("routing_small", ["--orders", "1,2,"], "--orders"),
    ("allocation_small", ["--seeds", "..3"], "--seeds"),
    ("allocation_small", ["--sizes", ",30"], "--sizes"),
    ("simulation_policies", ["--seeds", "1..2,3"], "--seeds"),  # ran seeds 1 and 2
    ("simulation_policies", ["--days", "tuned,,held-out"], "--days"),
    ("simulation_policies", ["--policies", "insertion,,insertion:ontime"], "--policies"),
    ("simulation_policies", ["--breaks", "on,,off"], "--breaks"),
    ("allocation", ["--scale-sizes", "100,,300"], "--scale-sizes"),
    ("allocation", ["--scale-families", "literature,,city"], "--scale-families"),
    ("allocation", ["--reference-seeds", "1,,2"], "--reference-seeds"),
    ("allocation_pyomo_limits", ["--sizes", "300,"], "--sizes"),
    ("routing", ["--set", "city", "--city-orders", "100,,300"], "--city-orders"),
    ("routing_budget", ["--orders", "600,,1500"], "--orders"),
    ("routing_breaks_fuzz", ["--engines", "pyvrp,,ortools"], "--engines"),
    ("rl_evaluate", ["--hindsight-warm-start", "slots,,greedy"], "--hindsight-warm-start"),
    # a table name that is a path (or none): a ValueError traceback once the run was done
    ("generate_city", ["--out-prefix", "sub/t"], "--out-prefix"),
    ("travel_matrix", ["--out-prefix", ""], "--out-prefix"),
    ("load", ["--out-prefix", ".."], "--out-prefix"),
    ("routing", ["--set", "solomon", "--out-prefix", "../t"], "--out-prefix"),
    ("routing_small", ["--out-prefix", "a/b"], "--out-prefix"),
    ("routing_budget", ["--out-prefix", "a/b"], "--out-prefix"),
    ("routing_breaks_fuzz", ["--out-prefix", "a/b"], "--out-prefix"),
    ("simulation_policies", ["--out-prefix", "a/b"], "--out-prefix"),
    ("rl_speed", ["--name", "a/b"], "--name"),
    ("rl_evaluate", ["--name", " "], "--name"),
    ("allocation", ["--time-limits-name", "a/b"], "--time-limits-name"),
    # a negative seed: the generator's InputError or pydantic's ValidationError, a traceback
    ("generate_city", ["--seed", "-1"], "--seed"),
    ("routing", ["--set", "solomon", "--seed", "-1"], "--seed"),
    ("routing_budget", ["--seed", "1,-1"], "--seed"),
    ("routing_breaks_fuzz", ["--seed", "-1"], "--seed"),
    ("simulation", ["--seed", "-1"], "--seed"),
    ("load", ["--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize(
    ("script", "args", "option"), BAD, ids=[f"{s}:{' '.join(a)}" for s, a, _ in BAD]
)
def test_a_bad_argument_is_a_usage_error_naming_its_option(
    script: str, args: list[str], option: str
) -> None:
    said = _refusal(script, args)
    assert f"argument {option}" in said and "Traceback" not in said, said


def _ran(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the benchmark ran")


@pytest.mark.parametrize(
    ("script", "args", "option", "work"),
    [  # each ran on the other items, the empty one dropped without a word
        ("allocation", ["--only", "literature,,city"], "--only", "provenance"),
        ("load", ["--phases", "allocations,"], "--phases", "provenance"),
        ("rl_evaluate", ["--policies", "greedy,,slots"], "--policies", "standard_scenario"),
        ("routing", ["--set", "city", "--anchors", "pyvrp,"], "--anchors", "run_city"),
        ("routing", ["--set", "city", "--city-jobs", ",pickup"], "--city-jobs", "run_city"),
        ("run_all", ["--only", "simulation,,load"], "--only", "_run"),
    ],
)
def test_an_empty_item_of_a_list_read_after_parsing_is_a_usage_error(
    script: str,
    args: list[str],
    option: str,
    work: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The list options a script reads once its arguments are parsed refuse an empty item
    too, naming the option (exit 2), before anything runs."""
    with benchmark_script(f"{script}.py", f"args_empty_{script}") as module:
        monkeypatch.setattr(module, work, _ran)
        monkeypatch.setattr(signal, "signal", lambda *_: None)  # run_all's SIGTERM handler
        monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
        with pytest.raises(SystemExit) as stop:
            module.main()
    assert stop.value.code == 2
    said = capsys.readouterr().err
    assert f"argument {option}: an empty" in said and "Traceback" not in said, said


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--url", "http://example.com"], "--url"),
        (["--url", "http://127.0.0.1:9"], "--key"),
    ],
)
def test_load_refuses_a_bad_target_as_a_usage_error(args: list[str], option: str) -> None:
    """A non-loopback ``--url`` and a ``--url`` without ``--key``: exit 2 naming the option
    (they exited 1); nothing is started for a ``--url``."""
    with benchmark_script("load.py", "args_load_target") as load:
        err = io.StringIO()
        with (
            patch.object(sys, "argv", ["load.py", *args]),
            contextlib.redirect_stderr(err),
            pytest.raises(SystemExit) as stop,
        ):
            load.main()
    assert stop.value.code == 2 and f"argument {option}" in err.getvalue(), err.getvalue()


def _main_refusal(script: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What ``benchmarks/<script>.py``'s ``main()`` says refusing ``args`` (exit 2)."""
    with (
        benchmark_script(f"{script}.py", f"args_main_{script}") as module,
        patch.object(sys, "argv", [f"{script}.py", *args]),
        pytest.raises(SystemExit) as stop,
    ):
        module.main(*([args] if script != "run_all" else []))
    err = capsys.readouterr().err
    assert stop.value.code == 2, (stop.value.code, err)
    return err


@pytest.fixture
def solomon_dir(tmp_path: Path) -> Path:
    """A ``--bench-dir`` holding Solomon's C101 only."""
    (tmp_path / "solomon").mkdir()
    source = REPO / "data" / "instances" / "solomon" / "C101.txt"
    (tmp_path / "solomon" / "C101.txt").write_bytes(source.read_bytes())
    return tmp_path


@pytest.mark.parametrize(
    ("args", "said"),
    [
        # C101 ran alone, the misspelt name left out without a word
        (["--instances", "C101,C1O2"], "argument --instances: no c1o2 in "),
        (["--instances", "C1O1"], "argument --instances: no c1o1 in "),  # "no instances found"
        (["--bench-dir", "/no/such/folder"], "argument --bench-dir: no solomon instances in "),
    ],
)
def test_routing_refuses_instances_it_does_not_have(
    args: list[str], said: str, solomon_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--engine", "none", "--out-dir", str(solomon_dir / "out")]  # no solver, no table
    args = ["--set", "solomon", "--bench-dir", str(solomon_dir), *out, *args]
    assert said in _main_refusal("routing", args, capsys)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        # the proof ran (minutes to hours) and its bound was lost to a FileNotFoundError
        (["--known", "/no/such/folder/known.csv"], "argument --known: no such folder"),
        (["--runs", "/no/such/runs.csv"], "argument --runs: no such file"),
    ],
)
def test_allocation_certify_refuses_missing_paths_before_any_proof(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        benchmark_script("allocation_certify.py", "args_certify_paths") as certify,
        patch.object(certify, "certify", side_effect=AssertionError("a proof ran")),
        pytest.raises(SystemExit) as stop,
    ):
        certify.main(["--seeds", "1", *args])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and said in err, err


@pytest.mark.parametrize("option", ["--only", "--skip"])
def test_run_all_names_the_option_of_an_unknown_step(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown step was said on standard output, naming no option."""
    said = _main_refusal("run_all", [option, "routing-solomon,nope"], capsys)
    assert f"argument {option}: unknown step(s): nope; known: travel-matrix," in said


def test_the_limits_keep_the_committed_commands_working() -> None:
    """The values the committed tables were made with are still taken (a limit too tight
    would refuse them)."""
    for script, args in [
        ("load", ["--workers", "2", "--clients", "20", "--route-instance", "city"]),
        ("routing", ["--set", "city", "--city-orders", "1000,10000", "--limit", "0"]),
        ("simulation", ["--workers", "2", "--orders", "5000", "--replications", "30"]),
        ("travel_matrix", ["--grids", "50", "100", "--sizes", "100", "1000", "5000"]),
    ]:
        with pytest.raises(AssertionError, match="accepted"):
            _refusal(script, args)


# ------------------------------------------------------------------------------ provenance
@pytest.fixture
def measures() -> Iterator[ModuleType]:
    """``benchmarks/measures.py`` imported as a module."""
    with benchmark_script("measures.py", "args_measures") as module:
        yield module


def _head() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    assert done.returncode == 0, "the tests run in a git checkout of the repository"
    return done.stdout.strip()


#: the provenance line: date, code, machine
MADE = re.compile(
    r"^Made \d{4}-\d\d-\d\d \d\d:\d\d UTC; code: commit (?P<commit>[0-9a-f]+)"
    r"(?: \+ uncommitted changes)?; machine: (?P<cores>\d+) cores \(.+\)"
    r"(?:, 1-min load average \d+\.\d\d at the start)?; Python \d+\.\d+\.\d+\.$",
    re.MULTILINE,
)


def test_provenance_says_when_which_code_and_which_machine(measures: ModuleType) -> None:
    line = measures.provenance()
    found = MADE.search(line)
    assert found is not None, line
    assert _head().startswith(found["commit"]) or found["commit"].startswith(_head())


#: the line of a table made before the runs wrote :data:`MADE`: its last numbers' commit
RECOVERED = re.compile(
    r"^Provenance recovered in session \d+ from git: numbers last changed in commit "
    r"(?P<commit>[0-9a-f]{7,40}) \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)",
    re.MULTILINE,
)


def test_every_committed_table_says_where_it_was_made() -> None:
    """Each table under benchmarks/results has its run's provenance line or, made before the
    runs wrote one, the line recovered from git naming a commit that changed the table (37
    tables said neither when nor from which code they were made)."""
    shallow = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--is-shallow-repository"],
        capture_output=True,
        text=True,
    )
    tables = sorted((REPO / "benchmarks" / "results").glob("*.md"))
    assert len(tables) >= 50
    for table in tables:
        text = table.read_text(encoding="utf-8")
        made, recovered = MADE.search(text), RECOVERED.search(text)
        assert (made is None) != (recovered is None), f"{table.name}: one provenance line"
        if recovered is None or shallow.stdout.strip() != "false":
            continue
        changed = subprocess.run(
            ["git", "-C", str(REPO), "log", "--follow", "--format=%H", "--", str(table)],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert any(c.startswith(recovered["commit"]) for c in changed), table.name


def test_a_measures_table_says_where_it_was_made(measures: ModuleType, tmp_path: Path) -> None:
    """simulation-twin.md and rl-speed.md gave a machine but neither date nor code."""
    table = measures.Measures()
    table.record("x", 1.0, "s")
    table.write(tmp_path, "t", "Title", "Preamble.")
    assert MADE.search((tmp_path / "t.md").read_text(encoding="utf-8"))


def test_a_routing_table_says_where_it_was_made(tmp_path: Path) -> None:
    """The routing tables gave their command only: no date, code or machine."""
    with benchmark_script("routing.py", "args_routing_made") as routing:
        row = routing.Row("C101", "ours:pyvrp", True, 828.9, 10, 1.0, 827.3, 10)
        args = routing_table_args("")
        routing.write_outputs([row], tmp_path / "r", args, "dimacs_distance")
        del args.made  # written by a caller that took none: made as it is written
        routing.write_outputs([row], tmp_path / "s", args, "dimacs_distance")
    table = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "\nMade here.\n" in table
    # RC201's ref 1261.8 (distance only) stood beside 4 vehicles (the vehicles-first BKS's)
    assert "`ref veh` = `vehicles` in bks.csv" in table
    assert MADE.search((tmp_path / "s.md").read_text(encoding="utf-8"))


def test_an_allocation_table_says_what_made_it(tmp_path: Path) -> None:
    """allocation-literature.md and allocation-city.md said neither command, date, code nor
    machine: the tables :func:`main` writes carry its command and provenance."""
    with benchmark_script("allocation.py", "args_allocation_made") as allocation:
        allocation.RUN_LINES[:] = ["Command: `python benchmarks/allocation.py --x`", "Made."]
        try:
            allocation.write_table(tmp_path, "a", "Title", ["h"], [[1]], "Notes.")
        finally:
            allocation.RUN_LINES.clear()
        allocation.write_table(tmp_path, "b", "Title", ["h"], [[1]], "Notes.")
    made = (tmp_path / "a.md").read_text(encoding="utf-8")
    assert "Notes.\n\nCommand: `python benchmarks/allocation.py --x`\n\nMade.\n\n| h |" in made
    assert "Notes.\n\n| h |" in (tmp_path / "b.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------- reproducible routing
@pytest.fixture(scope="module")
def routing_c101() -> Iterator[tuple[ModuleType, Any]]:
    """``benchmarks/routing.py`` and the bundled Solomon C101 as its scenario."""
    with benchmark_script("routing.py", "args_routing_c101") as routing:
        scenario = routing.load_scenario(REPO / "data" / "instances" / "solomon" / "C101.txt")
        yield routing, scenario.model_copy(update={"name": "C101"})


def test_routing_stops_on_iterations_for_a_seeded_answer(
    routing_c101: tuple[ModuleType, Any], tmp_path: Path
) -> None:
    """``--max-iterations`` / ``--max-solutions``: the same seed gives the same distances
    (ours and the raw anchors stopped on the clock only, so a re-run on a busy machine gave
    other distances: R101 1672.2 then 1659.7 at 1 s), and the Command line keeps them."""
    routing, scenario = routing_c101
    args = argparse.Namespace(
        engine="pyvrp",
        time_limit=60.0,
        seed=3,
        workers=1,
        max_iterations=40,
        max_solutions=None,
    )
    problem = routing.build_problem(scenario)
    raw = [routing.anchor_pyvrp(problem, 60.0, 3, 40) for _ in range(2)]
    assert raw[0] == raw[1] and raw[0][0]
    ortools = [routing.anchor_ortools(problem, 60.0, 3, 20) for _ in range(2)]
    assert ortools[0] == ortools[1] and ortools[0][0]
    first, second = (routing.run_ours(scenario, args)[0] for _ in range(2))
    assert "iterations 40" in first.note
    assert (first.distance, first.vehicles) == (second.distance, second.vehicles)
    args = argparse.Namespace(
        set="solomon",
        engine="pyvrp",
        time_limit=60.0,
        workers=1,
        seed=3,
        max_iterations=40,
        max_solutions=20,
        anchors="pyvrp",
        instances="C101",
        limit=0,
        out_prefix="",
        made="Made.",
    )
    routing.write_outputs([first], tmp_path / "r", args, "dimacs_distance")
    assert (
        "Command: `python benchmarks/routing.py --set solomon --engine pyvrp --time-limit 60 "
        "--workers 1 --seed 3 --max-iterations 40 --max-solutions 20 --anchors pyvrp "
        "--instances C101`"
    ) in (tmp_path / "r.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- load Ctrl-C
class _FakeServer:
    """Stands for ``dispatchlab serve``: an address, a key, and whether it was stopped."""

    stopped = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.url, self.key = "http://127.0.0.1:9", "key"

    def stop(self) -> None:
        type(self).stopped += 1


def test_allocation_pyomo_jobs_takes_a_kill_as_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A kill (SIGTERM) ended the run at once, the service it had started and its job
    processes left running (their stop is in the runs' ``finally``); now SIGTERM is taken as
    Ctrl-C while the runs go (exit 130, no table) and the handler is put back after."""
    with benchmark_script("allocation_pyomo_jobs.py", "args_pyomo_jobs_term") as jobs:
        seen: list[object] = []

        def interrupted(*args: object, **kwargs: object) -> object:
            seen.append(signal.getsignal(signal.SIGTERM))
            raise KeyboardInterrupt

        monkeypatch.setattr(jobs, "_measure_all", interrupted)
        before = signal.getsignal(signal.SIGTERM)
        assert jobs.main(["--out-dir", str(tmp_path)]) == 130
    assert seen == [signal.default_int_handler]
    assert signal.getsignal(signal.SIGTERM) == before
    assert "interrupted: no table written" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_load_ctrl_c_stops_the_server_and_writes_no_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C in a phase ended in a KeyboardInterrupt traceback, and a kill (SIGTERM) left
    the started server and its job processes running (one ran on for 19 minutes): now both
    stop the server, write no table and exit 130; the SIGTERM handler is put back."""
    with benchmark_script("load.py", "args_load_interrupt") as load:
        seen: list[object] = []

        def interrupted(*args: object, **kwargs: object) -> object:
            seen.append(signal.getsignal(signal.SIGTERM))
            raise KeyboardInterrupt

        monkeypatch.setattr(load, "LocalServer", _FakeServer)
        monkeypatch.setattr(load, "allocation_bodies", interrupted)
        monkeypatch.setattr(load, "write_results", lambda *a, **k: pytest.fail("a table"))
        before = signal.getsignal(signal.SIGTERM)
        try:
            code = load.main(["--phases", "allocations"])
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C escaped load.main")
    assert code == 130 and _FakeServer.stopped == 1
    assert seen == [signal.default_int_handler]
    assert signal.getsignal(signal.SIGTERM) == before
    assert "interrupted: no table written" in capsys.readouterr().err


def _interrupted(*_args: object, **_kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("script", "work", "args"),
    [
        ("routing_small", "measure", ["--orders", "1", "--seeds", "0"]),  # was a traceback
        ("allocation_small", "measure", ["--sizes", "30", "--seeds", "1"]),  # a traceback
        ("generate_city", "run", []),  # a traceback
        ("routing", "run_ours", ["--set", "solomon"]),  # the rows so far over the table, exit 0
    ],
)
def test_ctrl_c_writes_no_table(
    script: str,
    work: str,
    args: list[str],
    solomon_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C in the work: one line, exit status 130, no table (the old one stays)."""
    out = solomon_dir / "out"
    if script == "routing":
        args = [*args, "--bench-dir", str(solomon_dir)]
    args = [*args, "--out-dir", str(out)]
    with benchmark_script(f"{script}.py", f"args_ctrl_c_{script}") as module:
        monkeypatch.setattr(module, work, _interrupted)
        monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
        try:
            code = module.main(*([args] if script != "generate_city" else []))
        except KeyboardInterrupt:
            pytest.fail(f"Ctrl-C escaped {script}.main")
    assert code == 130
    assert "no table written" in capsys.readouterr().err
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize(
    ("script", "work", "args"),
    [  # each ended in a KeyboardInterrupt traceback (exit status -2)
        ("routing_budget", "measure", ["--orders", "600", "--budgets", "1"]),
        ("travel_matrix", "run", ["--grids", "50", "--sizes", "100"]),
        ("simulation", "city", ["--orders", "100", "--skip-ray"]),
        ("rl_speed", "decision_latencies", ["--latency-only"]),
        ("allocation_pyomo_limits", "measure", ["--sizes", "300"]),
        ("rl_evaluate", "run_days", ["--policies", "greedy", "--seeds", "1"]),
        ("allocation_pyomo_jobs", "_measure_all", []),  # its services stopped as it unwinds
    ],
)
def test_ctrl_c_ends_a_script_with_exit_130_and_no_table(
    script: str,
    work: str,
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    option = "--out" if script in ("simulation", "rl_speed", "rl_evaluate") else "--out-dir"
    args = [*args, option, str(out)]
    with benchmark_script(f"{script}.py", f"args_ctrl_c_{script}") as module:
        monkeypatch.setattr(module, work, _interrupted)
        monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
        try:
            code = module.main(*([args] if script not in ("travel_matrix", "rl_evaluate") else []))
        except KeyboardInterrupt:
            pytest.fail(f"Ctrl-C escaped {script}.main")
    assert code == 130
    assert "interrupted: no table written" in capsys.readouterr().err
    assert not out.exists() or not [f for f in out.iterdir() if f.suffix in (".md", ".csv")]


def test_rl_evaluate_makes_its_out_folder_before_any_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out`` a folder still to be made: refused naming ``--hindsight-cache``, an option
    the script does not have (the other scripts make their output folder)."""
    out = tmp_path / "new" / "folder"
    played: list[Path] = []

    class Played(Exception):
        """run_days was called: nothing more of the run is needed."""

    def days(*_args: object, cache: Path, **_kwargs: object) -> None:
        played.append(cache)
        raise Played

    with benchmark_script("rl_evaluate.py", "args_rl_evaluate_out") as module:
        monkeypatch.setattr(module, "run_days", days)
        argv = ["rl_evaluate.py", "--policies", "greedy", "--seeds", "1", "--out", str(out)]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(Played):
            module.main()
    assert played == [out / "rl-hindsight-days.jsonl"] and out.is_dir()


@pytest.mark.parametrize("rerender", [False, True], ids=["run", "from-results"])
def test_rl_evaluate_refuses_an_out_that_is_a_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    rerender: bool,
) -> None:
    """``--out`` naming a file: a usage error naming the option (it was a traceback)."""
    out = tmp_path / "table.md"
    out.write_text("kept\n")
    argv = ["rl_evaluate.py", "--out", str(out)]
    argv += ["--from-results", "rl-evaluation"] if rerender else ["--policies", "greedy"]
    with benchmark_script("rl_evaluate.py", "args_rl_evaluate_out_file") as module:
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as stop:
            module.main()
    assert stop.value.code == 2
    assert f"argument --out: {out}: is a file, expected a folder" in capsys.readouterr().err
    assert out.read_text() == "kept\n"


def test_rl_evaluate_shows_a_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The policy-days done show on a rich bar on stderr: they were a line each on stdout
    (4,400 lines for the search table), and no bar."""

    class Played(Exception):
        """The days are played."""

    def days(*_args: object, progress: Callable[[int, int], None], **_kwargs: object) -> None:
        for done in (1, 2, 3):
            progress(done, 3)
        raise Played

    argv = ["rl_evaluate.py", "--policies", "greedy", "--seeds", "1..3", "--out", str(tmp_path)]
    with benchmark_script("rl_evaluate.py", "args_rl_evaluate_bar") as module:
        monkeypatch.setattr(module, "run_days", days)
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(Played):
            module.main()
    said = capsys.readouterr()
    assert "policy-days" not in said.out
    assert re.search(r"policy-days .*3/3", said.err), said.err


def test_allocation_fast_runs_without_the_reference_table_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--fast-runs`` only feeds the reference table: with ``--only literature`` it was
    ignored without a word, and the 10 s solves it was meant to spare ran."""
    runs = REPO / "benchmarks" / "results" / "allocation-literature-runs.csv"
    with benchmark_script("allocation.py", "args_allocation_fast_runs") as allocation:
        monkeypatch.setattr(allocation, "compare", lambda *a, **k: pytest.fail("it ran"))
        with pytest.raises(SystemExit) as stop:
            allocation.main(["--only", "literature", "--fast-runs", str(runs)])
    assert stop.value.code == 2
    assert "argument --fast-runs: only with the reference table" in capsys.readouterr().err


def test_provenance_leaves_the_result_tables_out_of_uncommitted_changes(
    measures: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run after another of the same session said '+ uncommitted changes': the first run's
    tables, not code."""

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    table, code = tmp_path / "benchmarks" / "results" / "t.md", tmp_path / "solver.py"
    table.write_text("old\n", encoding="utf-8")
    code.write_text("x = 1\n", encoding="utf-8")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    monkeypatch.setattr(measures, "REPO", tmp_path)
    table.write_text("new\n", encoding="utf-8")
    assert "uncommitted" not in measures.provenance()
    code.write_text("x = 2\n", encoding="utf-8")
    assert "+ uncommitted changes" in measures.provenance()


# ------------------------------------------------------------------ where a table goes
@pytest.mark.parametrize(
    ("script", "options", "rows"),
    [
        ("travel_matrix.py", {"repeats": 1, "grids": [50], "sizes": [100]}, [{"n": 100}]),
        ("generate_city.py", {"repeats": 1, "seed": 3}, [{"orders": 10}]),
    ],
)
def test_the_reproduce_line_names_the_prefix_and_folder_it_was_given(
    script: str, options: dict[str, Any], rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """``--out-prefix`` (and ``--out-dir``) are in the table's Reproduce line when given: the
    travel-matrix line left the prefix out, so it re-made the default table, not this one."""
    with benchmark_script(script, f"args_out_{script[:-3]}") as bench:
        args = argparse.Namespace(**options, out_dir=tmp_path / "o", out_prefix="mine")
        bench.write(rows, "mine", args, "Made here.")
        defaults = (bench.DEFAULT_PREFIX, bench.DEFAULT_PREFIX, bench.RESULTS, bench.RESULTS)
        assert bench.output_options(*defaults) == ""  # the committed tables' lines stay as they are
    md = (tmp_path / "o" / "mine.md").read_text(encoding="utf-8")
    assert (tmp_path / "o" / "mine.csv").is_file()
    reproduce = next(x for x in md.splitlines() if x.startswith("Reproduce:"))
    assert reproduce.endswith(f" --out-prefix mine --out-dir {tmp_path / 'o'}`"), reproduce


def test_load_writes_into_its_out_dir(tmp_path: Path) -> None:
    """``benchmarks/load.py --out-dir`` (run_all's ``--out-dir`` passes it) takes the table."""
    with benchmark_script("load.py", "args_load_out_dir") as load:
        load.write_results([], "mine", {"run": "Made here."}, "benchmarks/load.py --x", tmp_path)
    assert "--x" in (tmp_path / "mine.md").read_text(encoding="utf-8")
    assert (tmp_path / "mine.csv").is_file()
