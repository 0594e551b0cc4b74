"""Lossless JSON reading and writing of every domain model."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from scenarios.errors import InputError, input_error_from_validation

M = TypeVar("M", bound=BaseModel)


def to_json(model: BaseModel) -> str:
    """Serialise a model to compact, deterministic JSON (defaults omitted; round trip is exact)."""
    return model.model_dump_json(exclude_defaults=True)


def from_json(cls: type[M], text: str | bytes, *, source: str | None = None) -> M:
    """Parse and validate JSON into ``cls``; bad input raises InputError naming the field."""
    try:
        return cls.model_validate_json(text)
    except ValidationError as err:
        raise input_error_from_validation(err, source=source) from None


def write_json(model: BaseModel, path: str | Path) -> None:
    """Write a model to ``path`` as JSON followed by a newline."""
    Path(path).write_text(to_json(model) + "\n", encoding="utf-8")


def read_bytes(path: str | Path) -> bytes:
    """The bytes of an input file; a missing file or a directory is an InputError."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError("path", "file not found", source=str(p)) from None
    except IsADirectoryError:
        raise InputError("path", "is a directory, expected a file", source=str(p)) from None


def read_json(cls: type[M], path: str | Path) -> M:
    """Read and validate a JSON file into ``cls``."""
    return from_json(cls, read_bytes(path), source=str(Path(path)))
