"""Readers and writers: every supported file format into the one Scenario model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from scenarios.errors import InputError, input_error_from_validation
from scenarios.io.json_io import from_json, read_json, to_json, write_json
from scenarios.io.lilim import read_lilim
from scenarios.io.plan_io import plan_from_json, read_plan
from scenarios.io.solomon import read_solomon
from scenarios.io.vroom import parse_vroom, read_vroom
from scenarios.io.vrplib import read_vrplib
from scenarios.model import Scenario

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
    suffix = p.suffix.lower()
    if suffix in {".vrp", ".vrptw"}:
        return "vrplib"
    with p.open("r", encoding="utf-8-sig", errors="replace") as fh:
        head = fh.read(4096)
    stripped = head.lstrip()
    if suffix == ".json" or stripped.startswith("{"):
        vroom_keys = ('"jobs"', '"shipments"', '"matrices"', '"start_index"', '"location_index"')
        if '"orders"' not in head and any(key in head for key in vroom_keys):
            return "vroom"
        return "json"
    upper = head.upper()
    if "VEHICLE" in upper and "CUSTOMER" in upper:
        return "solomon"
    if "DIMENSION" in upper and ":" in head:
        return "vrplib"
    first = stripped.splitlines()[0].split() if stripped else []
    if len(first) == 3 and all(tok.replace(".", "", 1).isdigit() for tok in first):
        return "lilim"
    raise InputError("format", "cannot tell the file format; pass --format", source=str(p))


def load_scenario(path: str | Path, fmt: str = "auto") -> Scenario:
    """Read any supported scenario file (``fmt="auto"`` detects the format)."""
    chosen = detect_format(path) if fmt == "auto" else fmt
    reader = READERS.get(chosen)
    if reader is None:
        raise InputError(
            "format",
            f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}",
            source=str(path),
        )
    try:
        return reader(path)
    except ValidationError as err:  # a value the model rejects: name the file, at least
        raise input_error_from_validation(err, source=str(path)) from None


__all__ = [
    "FORMATS",
    "READERS",
    "detect_format",
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
    "to_json",
    "write_json",
]
