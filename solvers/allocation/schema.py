"""JSON Schema of the allocation request and result, generated from the models.

``python -m solvers.allocation.schema`` prints the markdown section that
``docs/allocation.md`` carries between its ``<!-- schema:begin -->`` and
``<!-- schema:end -->`` markers; ``--readme`` prints the field tables that ``README.md``
carries between ``<!-- fields:begin -->`` and ``<!-- fields:end -->``; ``--json`` prints the
schemas alone, as one JSON object (tests keep both documents in step with the models).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from solvers.allocation.params import AllocationParams
from solvers.allocation.request import AllocationRequest
from solvers.allocation.result import AllocationResult

BEGIN = "<!-- schema:begin -->"
END = "<!-- schema:end -->"
README_BEGIN = "<!-- fields:begin -->"
README_END = "<!-- fields:end -->"

#: request fields whose objects' own fields the README table lists under them
README_EXPANDED = ("nodes", "orders", "costs", "rules")


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


def _ref(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The definition a property (or its array's items) refers to, if any."""
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
    return defs[ref.rsplit("/", 1)[1]] if ref else None


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A compact type of a JSON Schema property: ``integer``, ``Location``, ``number[][]``,
    ``{string: integer}``, ``"km" / "mile"``, ``integer or null``."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[1]
        target = defs[name]
        return _type(target, defs) if "enum" in target else name
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(_type(p, defs) for p in prop[key])
    if "enum" in prop:
        return " / ".join(json.dumps(v) for v in prop["enum"])
    kind = prop.get("type")
    if kind == "array":
        return _type(prop["items"], defs) + "[]"
    if kind == "object" and "additionalProperties" in prop:
        return "{string: " + _type(prop["additionalProperties"], defs) + "}"
    return str(kind)


def _describe(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """The property's description, else the first paragraph of what it refers to."""
    text = prop.get("description")
    if text is None:
        target = _ref(prop, defs)
        text = (target or {}).get("description", "")
    text = text.split("\n\n")[0]
    return " ".join(text.replace("``", "`").replace("|", "\\|").split())


def _default(name: str, prop: dict[str, Any], required: list[str]) -> str:
    """The property's default as JSON, ``required``, or ``{}``/``[]`` for a made default."""
    if name in required:
        return "required"
    if "default" in prop:
        return "`" + json.dumps(prop["default"]) + "`"
    return "`[]`" if prop.get("type") == "array" else "`{}`"


def _rows(schema: dict[str, Any], prefix: str) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(path, property, required names of its object) of each property of ``schema``."""
    required = schema.get("required", [])
    return [(prefix + name, prop, required) for name, prop in schema["properties"].items()]


def _table(schema: dict[str, Any], expanded: tuple[str, ...], with_default: bool) -> list[str]:
    """A markdown table of ``schema``'s fields, the ``expanded`` ones' fields under them."""
    defs = schema.get("$defs", {})
    head = ["field", "type", *(["default"] if with_default else []), "description"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path, prop, required in _rows(schema, ""):
        rows = [(path, prop, required)]
        target = _ref(prop, defs)
        if path in expanded and target is not None:
            inner = f"{path}[]." if prop.get("type") == "array" else f"{path}."
            rows += _rows(target, inner)
        for name, p, req in rows:
            cells = [f"`{name}`", f"`{_type(p, defs)}`"]
            if with_default:
                cells.append(_default(name.rsplit(".", 1)[-1], p, req))
            cells.append(_describe(p, defs))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def readme_markdown() -> str:
    """The README's field tables of the request and the result, markers included."""
    request = AllocationRequest.model_json_schema(mode="validation")
    result = AllocationResult.model_json_schema(mode="serialization")
    return "\n".join(
        [
            README_BEGIN,
            "The request (`AllocationRequest`; the fields of `nodes`, `orders`, `costs` and "
            "`rules` under them):",
            "",
            *_table(request, README_EXPANDED, with_default=True),
            "",
            "The result (`AllocationResult`; the fields of its objects are in the full schema):",
            "",
            *_table(result, (), with_default=False),
            "",
            README_END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Print the schema section (``--readme``: the README's tables; ``--json``: the schemas)."""
    parser = argparse.ArgumentParser(
        prog="python -m solvers.allocation.schema",
        description="Print the allocation JSON Schemas: the docs/allocation.md section.",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--readme", action="store_true", help="the README.md field tables")
    what.add_argument("--json", action="store_true", help="the schemas as one JSON object")
    args = parser.parse_args(argv)
    if args.readme:
        text = readme_markdown()
    elif args.json:
        text = json.dumps(schemas(), indent=1, sort_keys=True)
    else:
        text = schema_markdown()
    from scenarios.pipes import quiet_exit, stdout_closed, write_stdout

    try:
        write_stdout(text + "\n")  # a full disk: one error line, exit 1
    except BrokenPipeError:  # the reader stopped early (``| head``): exit 1 quietly, as
        if not stdout_closed():  # every other command does (it exited 0 until session 80)
            raise
        raise quiet_exit() from None


if __name__ == "__main__":
    main()
