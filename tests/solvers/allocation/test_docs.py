"""docs/allocation.md stays true: its request example runs, its JSON Schema is current."""

from __future__ import annotations

import json
import re
from pathlib import Path

from solvers.allocation import AllocationParams, AllocationRequest, allocate
from solvers.allocation.schema import BEGIN, END, schema_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "allocation.md"


def test_request_example_allocates() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```json\n(\{\n  \"nodes\".*?)```", text, re.S)
    assert block is not None
    req = AllocationRequest.model_validate(json.loads(block.group(1)))
    result = allocate(req, AllocationParams(mode="online"))
    assert result.status.value == "optimal"
    assert {a.order_id for a in result.assignments} == {"o-1"}
    assert result.explanations[0].summary


def test_schema_section_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert section == schema_markdown(), "run: python -m solvers.allocation.schema"
