"""JSON Schema of the allocation request and result, generated from the models.

``python -m solvers.allocation.schema`` prints the markdown section that
``docs/allocation.md`` carries between its ``<!-- schema:begin -->`` and
``<!-- schema:end -->`` markers (a test keeps the two in step).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from solvers.allocation.params import AllocationParams
from solvers.allocation.request import AllocationRequest
from solvers.allocation.result import AllocationResult

BEGIN = "<!-- schema:begin -->"
END = "<!-- schema:end -->"


def schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the request, the result and the solver parameters."""
    return {
        "AllocationRequest": AllocationRequest.model_json_schema(mode="validation"),
        "AllocationResult": AllocationResult.model_json_schema(mode="serialization"),
        "AllocationParams": AllocationParams.model_json_schema(mode="validation"),
    }


def schema_markdown() -> str:
    """The schema section of ``docs/allocation.md``, markers included."""
    parts = [BEGIN, ""]
    for name, schema in schemas().items():
        parts += [
            "<details>",
            f"<summary><code>{name}</code> JSON Schema</summary>",
            "",
            "```json",
            json.dumps(schema, indent=1, sort_keys=True),
            "```",
            "",
            "</details>",
            "",
        ]
    parts.append(END)
    return "\n".join(parts)


def main() -> None:
    """Print the schema section."""
    try:
        print(schema_markdown(), flush=True)
    except BrokenPipeError:  # the reader stopped early (``| head``): not an error
        # no second error when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
