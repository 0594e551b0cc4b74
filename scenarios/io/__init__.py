"""Readers and writers: every supported file format into the one Scenario model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from scenarios.errors import InputError, empty_input, input_error_from_validation
from scenarios.io.json_io import from_json, read_json, to_json, utf8_refusal, write_json
from scenarios.io.lilim import parse_lilim, read_lilim
from scenarios.io.plan_io import plan_from_json, read_plan
from scenarios.io.solomon import parse_solomon, read_solomon
from scenarios.io.vroom import parse_vroom, read_vroom, vroom_from_bytes
from scenarios.io.vrplib import parse_vrplib, read_vrplib
from scenarios.model import Scenario
from scenarios.skills import check_no_reserved_skills

Format = Literal["auto", "json", "solomon", "lilim", "vrplib", "vroom"]
FORMATS: tuple[str, ...] = ("auto", "json", "solomon", "lilim", "vrplib", "vroom")


def _read_scenario_json(path: str | Path) -> Scenario:
    return read_json(Scenario, path)


READERS: dict[str, Callable[[str | Path], Scenario]] = {
    "json": _read_scenario_json,
    "solomon": read_solomon,
    "lilim": read_lilim,
    "vrplib": read_vrplib,
    "vroom": read_vroom,
}


def detect_format(path: str | Path) -> str:
    """Guess the format of a scenario file from its name and first lines."""
    p = Path(path)
    if not p.exists():
        raise InputError("path", "file not found", source=str(p))
    if p.is_dir():
        raise InputError("path", "is a directory, expected a file", source=str(p))
    if not p.is_file():  # a FIFO or a device: its first lines cannot be read twice
        raise InputError(
            "format", "cannot tell the format of a pipe or device; pass --format", source=str(p)
        )
    if p.suffix.lower() in {".vrp", ".vrptw"}:
        return "vrplib"
    with p.open("r", encoding="utf-8-sig", errors="replace") as fh:
        head = fh.read(4096)
    return detect_text_format(head, suffix=p.suffix, source=str(p))


def detect_text_format(head: str, *, suffix: str = "", source: str) -> str:
    """Guess the format of a scenario from its first characters (a ``.json`` file's suffix
    says JSON; :func:`detect_format` tells VRPLIB files by theirs before reading); an
    InputError naming ``source`` when none fits."""
    stripped = head.lstrip()
    if suffix.lower() == ".json" or stripped.startswith("{"):
        vroom_keys = ('"jobs"', '"shipments"', '"matrices"', '"start_index"', '"location_index"')
        if '"orders"' not in head and any(key in head for key in vroom_keys):
            return "vroom"
        return "json"
    if not stripped:  # "pass --format" would not help: there is nothing to read
        raise empty_input("a scenario", source)
    upper = head.upper()
    if "VEHICLE" in upper and "CUSTOMER" in upper:
        return "solomon"
    if "DIMENSION" in upper and ":" in head:
        return "vrplib"
    first = stripped.splitlines()[0].split() if stripped else []
    if len(first) == 3 and all(tok.replace(".", "", 1).isdigit() for tok in first):
        return "lilim"
    raise InputError("format", "cannot tell the file format; pass --format", source=source)


def detect_bytes_format(data: bytes, *, source: str) -> str:
    """The format of a scenario given as bytes (standard input), told from its first
    characters as :func:`detect_text_format` tells them; errors name ``source`` (JSON in
    UTF-16 or UTF-32 is refused as not UTF-8, not said to be of no format)."""
    refused = utf8_refusal(data)
    if refused is not None:
        raise InputError("(root)", refused, source=source)
    return detect_text_format(data[:4096].decode("utf-8-sig", errors="replace"), source=source)


def scenario_from_bytes(
    data: bytes, fmt: str = "auto", *, source: str, name: str = "stdin"
) -> Scenario:
    """Parse a scenario given as bytes (standard input) in any supported format, as
    :func:`load_scenario` reads a file (``fmt="auto"`` detects it from the first characters);
    errors name ``source``."""
    chosen = detect_bytes_format(data, source=source) if fmt == "auto" else fmt
    scenario = _parsed_bytes(data, chosen, source=source, name=name)
    if scenario is None:
        raise _unknown_format(fmt, source)
    check_no_reserved_skills(scenario, source=source)  # no file may spoof the planners
    return scenario


def _parsed_bytes(data: bytes, chosen: str, *, source: str, name: str) -> Scenario | None:
    """The scenario ``data`` holds in the format ``chosen`` (None: no such format)."""
    try:
        if chosen == "json":
            return from_json(Scenario, data, source=source, saved=True)
        if chosen == "vroom":
            return vroom_from_bytes(data, source=source, name=name)
        text = data.decode("utf-8", errors="replace")
        if chosen == "solomon":
            return parse_solomon(text, source=source)
        if chosen == "lilim":
            return parse_lilim(text, source=source, name=name)
        if chosen == "vrplib":
            return parse_vrplib(text, source=source)
    except ValidationError as err:  # a value the model rejects: name the input, at least
        raise input_error_from_validation(err, source=source) from None
    return None


def _unknown_format(fmt: str, source: str) -> InputError:
    return InputError(
        "format", f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", source=source
    )


def load_scenario(path: str | Path, fmt: str = "auto") -> Scenario:
    """Read any supported scenario file (``fmt="auto"`` detects the format); a skill the
    planners reserve (:mod:`scenarios.skills`) is an InputError naming it."""
    chosen = detect_format(path) if fmt == "auto" else fmt
    reader = READERS.get(chosen)
    if reader is None:
        raise _unknown_format(fmt, str(path))
    try:
        scenario = reader(path)
    except ValidationError as err:  # a value the model rejects: name the file, at least
        raise input_error_from_validation(err, source=str(path)) from None
    check_no_reserved_skills(scenario, source=str(path))  # no file may spoof the planners
    return scenario


__all__ = [
    "FORMATS",
    "READERS",
    "detect_bytes_format",
    "detect_format",
    "detect_text_format",
    "from_json",
    "load_scenario",
    "parse_vroom",
    "plan_from_json",
    "read_json",
    "read_lilim",
    "read_plan",
    "read_solomon",
    "read_vroom",
    "read_vrplib",
    "scenario_from_bytes",
    "to_json",
    "write_json",
]
