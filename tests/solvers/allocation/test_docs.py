"""docs/allocation.md stays true: its request example runs, its JSON Schema is current."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from pytest import MonkeyPatch

from scenarios.errors import InputError, input_error_from_validation
from scenarios.generate import generate_city
from scenarios.io import write_json
from scenarios.io.json_io import read_json
from scenarios.model import Tier
from solvers.allocation import (
    AllocationParams,
    AllocationRequest,
    AllocationResult,
    SolveStats,
    allocate,
)
from solvers.allocation.request import (
    DEFAULT_PER_UNIT_KM,
    AllocationCosts,
    AllocationNode,
    AllocationOrder,
    AllocationRules,
)
from solvers.allocation.schema import BEGIN, END, readme_markdown, schema_markdown, schemas
from solvers.allocation.schema import main as schema_main

from .conftest import SIMPLE_COSTS, node, order

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "allocation.md"


def test_request_example_allocates() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```json\n(\{\n  \"nodes\".*?)```", text, re.S)
    assert block is not None
    req = AllocationRequest.model_validate(json.loads(block.group(1)))
    result = allocate(req, AllocationParams(mode="online"))
    assert result.status.value == "optimal"
    assert {a.order_id for a in result.assignments} == {"o-1"}
    assert result.explanations[0].summary
    # its rules name a SKU and a region it has: no note calls them misspelt (they did)
    assert result.stats.notes == []


def test_python_example_runs_as_written(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    """It read request.json from nowhere it named and used a ``scenario`` it never made."""
    text = DOC.read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", text, re.S)
    request = re.search(r"```json\n(\{\n  \"nodes\".*?)```", text, re.S)
    assert example is not None and request is not None
    (tmp_path / "request.json").write_text(request.group(1), encoding="utf-8")
    city = generate_city(seed=1, num_orders=20, num_nodes=3, num_couriers=2)
    write_json(city, tmp_path / "city.json")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example.group(1), "docs/allocation.md", "exec"), namespace)
    assert namespace["lines"], "the example request ships its order"
    from_city = namespace["request"]
    assert isinstance(from_city, AllocationRequest) and len(from_city.orders) == 20


def test_schema_section_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert section == schema_markdown(), "run: python -m solvers.allocation.schema"


def _readme_rows() -> dict[str, list[str]]:
    """The cells after the field of each row of the README tables, by field path."""
    rows = [line for line in readme_markdown().splitlines() if line.startswith("| `")]
    cells = [[c.strip() for c in row.strip("|").split(" | ")] for row in rows]
    return {c[0].strip("`"): c[1:] for c in cells}


def test_readme_tables_list_every_field_with_its_default() -> None:
    rows = _readme_rows()
    expanded: dict[str, type[BaseModel]] = {
        "nodes[].": AllocationNode,
        "orders[].": AllocationOrder,
        "costs.": AllocationCosts,
        "rules.": AllocationRules,
        "": AllocationRequest,
    }
    for prefix, model in expanded.items():
        for name, field in model.model_fields.items():
            _, default, description = rows[prefix + name]
            assert description, f"{prefix}{name} has no description"
            if field.is_required():
                assert default == "required"
            elif field.default_factory is None:
                assert json.loads(default.strip("`")) == json.loads(
                    json.dumps(field.default, default=str)
                ), prefix + name
    for name in AllocationResult.model_fields:
        assert len(rows[name]) == 2 and rows[name][1], name  # type, description
    assert rows["costs.distance_unit"][:2] == ['`"km" / "mile"`', '`"km"`']
    assert rows["costs.per_unit_distance"][1] == f"`{DEFAULT_PER_UNIT_KM!r}`"
    assert rows["nodes[].safety_stock"][0] == "`integer or {string: integer}`"
    assert rows["distance_km"][0] == "`number[][] or null`"
    assert rows["orders"][1] == "`[]`" and rows["costs"][1] == "`{}`"


def test_schema_module_prints_each_form(capsys: pytest.CaptureFixture[str]) -> None:
    schema_main(["--readme"])
    assert capsys.readouterr().out == readme_markdown() + "\n"
    schema_main(["--json"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(schemas()))
    schema_main([])
    assert capsys.readouterr().out == schema_markdown() + "\n"


def test_schema_printed_into_a_pipe_closed_early_ends_as_every_command_does() -> None:
    """``python -m solvers.allocation.schema | head`` printed a BrokenPipeError traceback;
    then it exited 0 where every other command exits 1 (:mod:`scenarios.pipes`): no line,
    exit 1, as ``dispatchlab`` and the benchmark scripts."""
    from scenarios.pipes import EXIT_CLOSED_STDOUT
    from tests.scripts import run_with_stdout_closed

    code, err = run_with_stdout_closed([sys.executable, "-m", "solvers.allocation.schema"])
    assert (code, err) == (EXIT_CLOSED_STDOUT, "")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_schema_printed_onto_a_full_disk_is_one_error_line() -> None:
    """``python -m solvers.allocation.schema > /dev/full`` was an OSError traceback: one
    error line, exit 1, as ``run_all.py --list``."""
    from scenarios.pipes import EXIT_STDOUT_UNWRITABLE

    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "solvers.allocation.schema"],
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


def test_bad_input_raises_as_the_doc_says(tmp_path: Path) -> None:
    """The doc said every bad request raises InputError; validating one in Python raises
    pydantic's ValidationError, which ``input_error_from_validation`` names by its field."""
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```json\n(\{\n  \"nodes\".*?)```", text, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    data["nodes"].append(data["nodes"][0])
    with pytest.raises(ValidationError) as raised:
        AllocationRequest.model_validate(data)
    assert input_error_from_validation(raised.value).one_line() == (
        "nodes.2.id: duplicate id 'dc-north'"
    )
    path = tmp_path / "request.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match=r"nodes\.2\.id: duplicate id 'dc-north'"):
        read_json(AllocationRequest, path)
    assert "`AllocationRequest.model_validate*` raises pydantic's\n`ValidationError`" in text


def test_result_fields_say_what_each_path_reports() -> None:
    """``stats.mip_pairs`` was described as the (order, node) pairs of the final MIP, while a
    batch reports the pattern columns of its master MIP (more than the candidate pairs here);
    ``method`` left out the pyomo backend's ``batch/pyomo`` and ``online/pyomo``."""
    req = AllocationRequest(
        nodes=[
            node("dc", 52.52, 13.40, inventory={"tea": 10, "cups": 1}, capacity_units=100),
            node("st", 52.50, 13.45, inventory={"tea": 3, "cups": 5}, safety_stock=1),
        ],
        orders=[
            order("o1", 52.51, 13.42, {"tea": 2, "cups": 2}, tier=Tier.VIP),
            order("o2", 52.49, 13.46, {"cups": 3}),
        ],
        costs=SIMPLE_COSTS,
    )
    batch = allocate(req, AllocationParams(mode="batch", time_limit_s=10))
    online = allocate(req, AllocationParams(mode="online", time_limit_s=10))
    assert online.stats.mip_pairs <= online.stats.candidate_pairs < batch.stats.mip_pairs
    mip_pairs = SolveStats.model_fields["mip_pairs"].description or ""
    assert "pattern columns" in mip_pairs and "batch" in mip_pairs
    method = AllocationResult.model_fields["method"].description or ""
    assert "batch/pyomo" in method and "online/pyomo" in method
