"""The allocate and allocate-literature commands."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from solvers.allocation import AllocationParams, AllocationRequest, AllocationResult

runner = CliRunner()


def test_allocate_writes_a_result(tmp_path: Path, two_dcs: AllocationRequest) -> None:
    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    out = tmp_path / "res.json"
    result = runner.invoke(app, ["allocate", str(req), "--time-limit", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    parsed = AllocationResult.model_validate_json(out.read_text())
    assert parsed.status.value == "optimal" and parsed.assignments
    assert "total cost" in result.output


def test_allocate_online_and_baseline_to_stdout(tmp_path: Path, two_dcs: AllocationRequest) -> None:
    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    for extra in (["--mode", "online"], ["--baseline", "nearest"]):
        result = runner.invoke(app, ["allocate", str(req), "--out", "-", *extra])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["assignments"]


def test_bad_input_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"orders": [{"id": "o", "location": {"lat": 1, "lon": 2}, "lines": []}]}')
    result = runner.invoke(app, ["allocate", str(bad)])
    assert result.exit_code == 2
    assert "orders.0.lines" in result.output
    result = runner.invoke(app, ["allocate", str(bad), "--mode", "fast"])
    assert result.exit_code == 2 and "--mode" in result.output
    result = runner.invoke(app, ["allocate", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "file not found" in result.output


def test_a_scenario_order_without_lines_exits_2_naming_it(tmp_path: Path) -> None:
    """``--scenario`` left an order without lines out of the request without a word."""
    scenario = {
        "nodes": [{"id": "dc", "location": {"x": 0, "y": 0}, "inventory": {"tea": 3}}],
        "orders": [
            {
                "id": "o1",
                "location": {"x": 10, "y": 0},
                "lines": [{"sku": "tea", "quantity": 1}],
            },
            {"id": "o2", "location": {"x": 20, "y": 0}},
        ],
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    result = runner.invoke(app, ["allocate", str(path), "--scenario", "--out", "-"])
    assert result.exit_code == 2, result.output
    assert "orders.1.lines: has no lines" in result.output


_NODE = {"id": "dc", "location": {"lat": 1.0, "lon": 2.0}, "inventory": {"tea": 3}}
_ORDER = {
    "id": "o1",
    "location": {"lat": 1.0, "lon": 2.1},
    "lines": [{"sku": "tea", "quantity": 1}],
}


@pytest.mark.parametrize("scenario", [False, True])
@pytest.mark.parametrize(
    ("node", "error"),
    [
        (
            {"inventory": {"tea": 3, "": 1}},
            "nodes.0.inventory.: Key should have at least 1 character",
        ),
        (
            {"safety_stock": {"t" * 201: 1}},
            f"nodes.0.safety_stock.{'t' * 201}: Key should have at most 200 characters",
        ),
    ],
)
def test_a_sku_key_no_order_line_can_name_exits_2_naming_it(
    tmp_path: Path, scenario: bool, node: dict[str, object], error: str
) -> None:
    """An empty or 201-character SKU key of a node's stock was taken, from a request file
    and a scenario file alike: an order line's ``sku`` (1 to 200 characters) never names it."""
    path = tmp_path / "in.json"
    data: dict[str, object] = {"nodes": [{**_NODE, **node}], "orders": [_ORDER]}
    flags = ["--scenario"] if scenario else []
    if scenario:
        data["travel"] = {"kind": "haversine"}
    path.write_text(json.dumps(data))
    result = runner.invoke(app, ["allocate", str(path), *flags, "--out", "-"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {path}: {error}"


def test_a_scenario_safety_stock_of_a_sku_outside_the_catalogue_exits_2(tmp_path: Path) -> None:
    """A scenario's per-SKU safety stock names catalogue SKUs, as its inventory does."""
    node = {**_NODE, "safety_stock": {"tea": 1, "taa": 1}}
    data = {"skus": [{"id": "tea"}], "nodes": [node], "orders": [_ORDER]}
    path = tmp_path / "in.json"
    path.write_text(json.dumps({**data, "travel": {"kind": "haversine"}}))
    result = runner.invoke(app, ["allocate", str(path), "--scenario", "--out", "-"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {path}: nodes.0.safety_stock.taa: unknown SKU 'taa'"


@pytest.mark.parametrize("scenario", [False, True])
@pytest.mark.parametrize("field", ["inventory", "safety_stock"])
def test_a_stock_key_given_twice_exits_2_naming_it(
    tmp_path: Path, scenario: bool, field: str
) -> None:
    """``{"tea": 3, "tea": 1}`` was 1 unit of tea, without a word (the last value kept)."""
    node = {**_NODE, field: {"tea": 3, "TWICE": 1}}
    data: dict[str, object] = {"nodes": [node], "orders": [_ORDER]}
    if scenario:
        data["travel"] = {"kind": "haversine"}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data).replace('"TWICE"', '"tea"'))
    flags = ["--scenario"] if scenario else []
    result = runner.invoke(app, ["allocate", str(path), *flags, "--out", "-"])
    assert result.exit_code == 2, result.output
    reason = "duplicate key 'tea': given more than once in one JSON object"
    assert result.stderr.strip().startswith(f"error: {path}: nodes.0.{field}.tea: {reason}")


def test_a_request_file_given_as_a_scenario_exits_2_saying_to_drop_the_flag(
    tmp_path: Path, two_dcs: AllocationRequest
) -> None:
    """The mirror of the scenario-file hint: a request read with ``--scenario`` says so."""
    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    result = runner.invoke(app, ["allocate", str(req), "--scenario", "--out", "-"])
    assert result.exit_code == 2, result.output
    assert "this looks like an allocation request: drop --scenario" in result.output
    # and without the flag it allocates
    result = runner.invoke(app, ["allocate", str(req), "--out", "-"])
    assert result.exit_code == 0, result.output


def test_literature_command_writes_a_request(tmp_path: Path) -> None:
    out = tmp_path / "lit.json"
    result = runner.invoke(app, ["allocate-literature", str(out), "--orders", "20", "--nodes", "3"])
    assert result.exit_code == 0, result.output
    req = AllocationRequest.model_validate_json(out.read_text())
    assert len(req.orders) == 20 and len(req.nodes) == 3


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--orders", "100000000", "--orders: must be an integer from 0 to 200000, got 100000000"),
        ("--orders", "-1", "--orders: must be an integer from 0 to 200000, got -1"),
        ("--nodes", "100000000", "--nodes: must be an integer from 1 to 1000, got 100000000"),
        ("--nodes", "0", "--nodes: must be an integer from 1 to 1000, got 0"),
        ("--max-items", "0", "--max-items: must be an integer from 1 to 100, got 0"),
        ("--max-items", "101", "--max-items: must be an integer from 1 to 100, got 101"),
    ],
)
def test_literature_sizes_out_of_range_exit_2_naming_the_option(
    tmp_path: Path, option: str, value: str, reason: str
) -> None:
    """``--orders 100000000`` took gigabytes of memory instead of an error (and ``--nodes``
    as many asked numpy for a nodes x SKUs array); one line named all three options."""
    out = tmp_path / "lit.json"
    result = runner.invoke(app, ["allocate-literature", str(out), option, value])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {reason}"
    assert not out.exists()


def test_a_scenario_order_with_its_own_pickup_is_left_out_with_a_warning(tmp_path: Path) -> None:
    """A pickup-and-delivery order is not allocated (the plan and the twin play it from its
    pickup): ``--scenario`` leaves it out and says so on stderr."""
    scenario = {
        "nodes": [{"id": "dc", "location": {"x": 0, "y": 0}, "inventory": {"tea": 5}}],
        "orders": [
            {"id": "a", "location": {"x": 10, "y": 0}, "lines": [{"sku": "tea", "quantity": 1}]},
            {
                "id": "p",
                "location": {"x": 20, "y": 0},
                "lines": [{"sku": "tea", "quantity": 1}],
                "pickup": {"location": {"x": 30, "y": 0}},
            },
        ],
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    out = tmp_path / "result.json"
    result = runner.invoke(
        app, ["allocate", str(path), "--scenario", "--time-limit", "5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    answer = AllocationResult.model_validate_json(out.read_text())
    assert {a.order_id for a in answer.assignments} == {"a"}
    assert [e.order_id for e in answer.explanations] == ["a"]
    assert "warning: 1 order(s) with a pickup of their own left out ('p')" in " ".join(
        result.stderr.split()
    )


def test_an_id_with_a_nul_exits_2_naming_the_field(
    tmp_path: Path, two_dcs: AllocationRequest
) -> None:
    """Over HTTP an id holding a NUL is a 422 (PostgreSQL stores none); the CLI allocated it
    (and wrote it into its result): now exit 2 naming the field, as over HTTP."""
    data = json.loads(two_dcs.model_dump_json())
    data["orders"][1]["id"] = "o\u00002"
    req = tmp_path / "req.json"
    req.write_text(json.dumps(data))
    result = runner.invoke(app, ["allocate", str(req), "--time-limit", "5", "--out", "-"])
    assert result.exit_code == 2, result.output
    assert "orders.1.id: must not contain control characters" in result.output
    data["orders"][1]["id"] = "o2"
    data["nodes"][0]["id"] = "dc\n1"
    req.write_text(json.dumps(data))
    result = runner.invoke(app, ["allocate", str(req), "--time-limit", "5", "--out", "-"])
    assert result.exit_code == 2, result.output
    assert "nodes.0.id: must not contain control characters" in result.output


def test_out_through_a_symlink_writes_its_target_and_keeps_the_link(
    tmp_path: Path, two_dcs: AllocationRequest
) -> None:
    """``--out latest.json`` (a symlink to this run's file): the rename of the atomic write
    put a regular file in the link's place, and the file it pointed to kept its old text."""
    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    target = tmp_path / "run-1.json"
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    result = runner.invoke(app, ["allocate", str(req), "-q", "--out", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert AllocationResult.model_validate_json(target.read_text()).assignments


def test_out_into_a_fifo_writes_through_it(tmp_path: Path, two_dcs: AllocationRequest) -> None:
    """A FIFO (as ``/dev/stdout`` of a pipeline) is written, not replaced by a regular file."""
    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    fifo = tmp_path / "result.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the writer's open then never blocks
    try:
        result = runner.invoke(app, ["allocate", str(req), "-q", "--out", str(fifo)])
        assert result.exit_code == 0, result.output
        assert stat.S_ISFIFO(fifo.lstat().st_mode), "the FIFO was replaced"
        data = b""
        while chunk := os.read(reader, 1 << 16):
            data += chunk
    finally:
        os.close(reader)
    assert AllocationResult.model_validate_json(data).assignments


def test_out_into_a_device_writes_through_it(tmp_path: Path, two_dcs: AllocationRequest) -> None:
    """``--out /dev/null`` run as root replaced the null device with a regular file holding the
    result (every later ``> /dev/null`` on the machine then wrote into it); a null device made
    in ``tmp_path`` stands in for it."""
    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("making a device node needs CAP_MKNOD")
    result = runner.invoke(app, ["allocate", str(req), "-q", "--out", str(null)])
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(null.lstat().st_mode), "the device was replaced by a regular file"
    assert not list(tmp_path.glob(".null.tmp-*"))


def _six_orders(tmp_path: Path, **rules: object) -> Path:
    """A request of six one-line orders next to one DC, with these rules."""
    data = {
        "nodes": [{"id": "dc", "location": {"lat": 52.0, "lon": 13.0}, "inventory": {"a": 50}}],
        "orders": [
            {
                "id": f"o{k}",
                "location": {"lat": 52.0, "lon": 13.0 + k / 100},
                "region": "east",
                "lines": [{"sku": "a", "quantity": 1}],
            }
            for k in range(6)
        ],
        "rules": rules,
    }
    path = tmp_path / "req.json"
    path.write_text(json.dumps(data))
    return path


def test_the_summary_shows_the_answers_notes(tmp_path: Path) -> None:
    """The notes (a misspelt rule, a time limit too short to optimise, online solved as a
    batch) were only in the result JSON: without ``--out`` nowhere."""
    req = _six_orders(tmp_path, restricted_skus={"A": ["east"]}, excluded_nodes={"East": ["dc"]})
    result = runner.invoke(app, ["allocate", str(req), "--time-limit", "5"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # the console wraps long lines
    assert "note: rules.restricted_skus: 1 SKU(s) in no order line" in text
    assert "note: rules.excluded_nodes: 1 region(s) of no order or node" in text


def test_the_summary_says_where_the_other_explanations_are(tmp_path: Path) -> None:
    """ "... N more explanations in the result JSON" was printed with no ``--out``: there was
    no result JSON; now it names the option that writes one."""
    req = _six_orders(tmp_path)
    result = runner.invoke(app, ["allocate", str(req), "--time-limit", "5"])
    assert result.exit_code == 0, result.output
    assert "... 1 more explanations (--out RESULT.json writes them all)" in result.stdout
    out = tmp_path / "res.json"
    result = runner.invoke(app, ["allocate", str(req), "--time-limit", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "... 1 more explanations in the result JSON" in result.stdout


def test_threads_reaches_the_params_and_a_bad_count_exits_2_naming_it(
    tmp_path: Path, two_dcs: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``AllocationParams.threads`` (``threads=1``: reproducible answers, the service's default)
    had no option: the command always ran with HiGHS' default of one thread per core."""
    import solvers.allocation as allocation

    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    asked: list[int | None] = []
    solve = allocation.allocate

    def recording(request: AllocationRequest, params: AllocationParams) -> AllocationResult:
        asked.append(params.threads)
        return solve(request, params)

    monkeypatch.setattr(allocation, "allocate", recording)
    for extra, want in (([], None), (["--threads", "1"], 1), (["--threads", "2"], 2)):
        result = runner.invoke(app, ["allocate", str(req), "-q", "--out", "-", *extra])
        assert result.exit_code == 0, result.output
        assert AllocationResult.model_validate_json(result.stdout).assignments
        assert asked[-1] == want
    for bad in ("0", "-1", "257", "two"):
        result = runner.invoke(app, ["allocate", str(req), "-q", "--threads", bad])
        assert result.exit_code == 2, (bad, result.output)
        assert "--threads" in result.output
    assert len(asked) == 3  # no solve for a bad count


def test_more_threads_than_cores_run_as_asked_with_a_note(
    tmp_path: Path, two_dcs: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--threads`` takes 1-256 on any machine; past the cores it was silent that the extra
    threads only oversubscribe them (the service caps them, with a note; the CLI keeps them)."""
    import solvers.allocation.solve as solve

    monkeypatch.setattr(solve, "usable_cpus", lambda: 1)  # a 1-core machine
    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    out = tmp_path / "res.json"
    note = "threads 2: more than the 1 cores this process may use; 2 kept as asked"
    result = runner.invoke(app, ["allocate", str(req), "--threads", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert note in " ".join(result.stdout.split())
    notes = AllocationResult.model_validate_json(out.read_text()).stats.notes
    assert [n for n in notes if n.startswith(note)] == [
        note + ", but threads beyond the cores only oversubscribe them"
    ]
    result = runner.invoke(app, ["allocate", str(req), "--threads", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "oversubscribe" not in result.stdout
    assert not AllocationResult.model_validate_json(out.read_text()).stats.notes


def test_a_request_on_stdin_is_read_as_a_file_is(
    tmp_path: Path, two_dcs: AllocationRequest
) -> None:
    """``allocate -`` was refused with ``-: path: file not found``."""
    text = two_dcs.model_dump_json()
    result = runner.invoke(app, ["allocate", "-", "-q", "--out", "-"], input=text)
    assert result.exit_code == 0, result.output
    from_stdin = AllocationResult.model_validate_json(result.stdout)
    req = tmp_path / "req.json"
    req.write_text(text)
    result = runner.invoke(app, ["allocate", str(req), "-q", "--out", "-"])
    from_file = AllocationResult.model_validate_json(result.stdout)
    assert from_stdin.assignments == from_file.assignments
    assert from_stdin.cost == from_file.cost


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "<stdin>: (root): the input is empty: nothing to read an allocation request from"),
        ("{not json", "<stdin>: (root): Invalid JSON: key must be a string at line 1 column 2"),
        (
            '{"orders": [{"id": "o", "location": {"lat": 1, "lon": 2}, "lines": []}]}',
            "<stdin>: orders.0.lines",
        ),
        ('{"nodes": [], "orders": [], "vehicles": []}', "add --scenario"),
    ],
)
def test_bad_json_on_stdin_exits_2_naming_the_problem(text: str, says: str) -> None:
    result = runner.invoke(app, ["allocate", "-", "-q", "--out", "-"], input=text)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split()), result.output


def test_a_scenario_on_stdin_is_mapped_as_a_file_is(tmp_path: Path) -> None:
    order: dict[str, object] = {
        "id": "o1",
        "location": {"x": 10, "y": 0},
        "lines": [{"sku": "tea", "quantity": 1}],
    }
    scenario = {
        "nodes": [{"id": "dc", "location": {"x": 0, "y": 0}, "inventory": {"tea": 3}}],
        "orders": [order],
    }
    args = ["allocate", "-", "--scenario", "-q", "--out", "-"]
    result = runner.invoke(app, args, input=json.dumps(scenario))
    assert result.exit_code == 0, result.output
    assert [a.node_id for a in AllocationResult.model_validate_json(result.stdout).assignments] == [
        "dc"
    ]
    del order["lines"]
    result = runner.invoke(app, args, input=json.dumps(scenario))
    assert result.exit_code == 2, result.output
    assert "<stdin>: orders.0.lines: has no lines" in " ".join(result.output.split())


def test_out_where_no_file_can_be_made_exits_2_naming_it_before_the_solve(
    tmp_path: Path, two_dcs: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out /proc/x.json`` (a folder root may "write" but where no file can be made) failed
    after the solve, naming the temp file ``/proc/.x.json.tmp-PID``."""
    import solvers.allocation as allocation

    req = tmp_path / "req.json"
    req.write_text(two_dcs.model_dump_json())
    solves: list[object] = []
    monkeypatch.setattr(allocation, "allocate", lambda *args: solves.append(args))
    result = runner.invoke(app, ["allocate", str(req), "-q", "--out", "/proc/x.json"])
    assert result.exit_code == 2, result.output
    assert "/proc/x.json" in result.output and ".tmp-" not in result.output
    assert not solves, "the solve ran before the --out check"


def test_stdin_past_the_input_cap_exits_2_naming_it(
    two_dcs: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenarios.files import MAX_INPUT_ENV

    monkeypatch.setenv(MAX_INPUT_ENV, "100")
    result = runner.invoke(
        app, ["allocate", "-", "-q", "--out", "-"], input=two_dcs.model_dump_json()
    )
    assert result.exit_code == 2, result.output
    assert "<stdin>: path: file is larger than the 100 bytes" in " ".join(result.output.split())


def test_the_progress_bar_shows_the_solve_phase_and_its_gap(
    tmp_path: Path, two_dcs: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bar showed the elapsed time only; it shows the phase the solve is in now, with
    the certified gap once known (read by the bar's thread while the solve runs)."""
    from dispatchlab.cli import _common

    shown: list[str] = []
    draw = _common.with_elapsed_bar

    def watched(label: str, total_s: float, quiet: bool, work: Any, **kw: Any) -> Any:
        status = kw["status"]
        shown.append(status())

        def work_and_look() -> Any:
            from solvers.allocation.progress import report_phase

            result = work()
            report_phase("after")  # outside the solve's hook block: not heard
            shown.append(status())
            return result

        return draw(label, total_s, quiet, work_and_look, **kw)

    monkeypatch.setattr("dispatchlab.cli.allocate.with_elapsed_bar", watched)
    path = tmp_path / "req.json"
    path.write_text(two_dcs.model_dump_json())
    result = runner.invoke(app, ["allocate", str(path), "--time-limit", "5"])
    assert result.exit_code == 0, result.output
    assert shown[0] == "solving"
    assert shown[-1].startswith("explaining, gap ") and shown[-1].endswith(" %"), shown


def test_the_phase_text_names_the_phase_and_the_gap_in_percent() -> None:
    from dispatchlab.cli.allocate import SolvePhase

    heard = SolvePhase()
    assert heard.text() == "solving"
    heard("integer phase", 0.0031)
    assert heard.text() == "integer phase, gap 0.31 %"
    heard("warm start", None)
    assert heard.text() == "warm start"
