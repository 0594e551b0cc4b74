"""Lossless JSON reading and writing of every domain model."""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

from scenarios.errors import InputError, input_error_from_validation
from scenarios.files import read_limited
from scenarios.saved import saved_context, warn_corrections

M = TypeVar("M", bound=BaseModel)


class JsonNestingError(json.JSONDecodeError):
    """JSON whose arrays or objects nest past the interpreter's depth (it has no position)."""

    def __init__(self) -> None:
        super().__init__("arrays or objects nested too deeply", "", 0)


def loads(text: str | bytes) -> Any:
    """Parse JSON text as :func:`json.loads` does, arrays or objects nested past the
    interpreter's depth being a :class:`JsonNestingError` (a JSONDecodeError, so a
    ValueError) as any bad JSON.

    ``json.loads`` raises RecursionError on them (``[`` * 100,000 is a 200 kB file): it was
    a traceback where the callers catch ValueError for bad JSON.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise JsonNestingError from None


def json_error_where(err: json.JSONDecodeError, *, line: bool = True) -> str:
    """`` at line L column C`` (``line`` False: `` at column C``) of a JSON error; empty for
    a :class:`JsonNestingError`, which has no position."""
    if isinstance(err, JsonNestingError):
        return ""
    return f" at line {err.lineno} column {err.colno}" if line else f" at column {err.colno}"


def to_json(model: BaseModel) -> str:
    """Serialise a model to compact, deterministic JSON (defaults omitted; round trip is exact)."""
    return model.model_dump_json(exclude_defaults=True)


def from_json(
    cls: type[M], text: str | bytes, *, source: str | None = None, saved: bool = False
) -> M:
    """Parse and validate JSON into ``cls``; bad input raises InputError naming the field.

    ``saved``: the text was saved earlier (a file), so what older versions accepted and the
    model now rejects is corrected with a note and a warning (:mod:`scenarios.saved`).
    """
    context = saved_context() if saved else None
    try:
        model = cls.model_validate_json(text, context=context)
    except ValidationError as err:
        raise input_error_from_validation(err, source=source) from None
    if context is not None:
        warn_corrections(context, source)
    return model


def write_json(model: BaseModel, path: str | Path) -> None:
    """Write a model to ``path`` as JSON followed by a newline."""
    Path(path).write_text(to_json(model) + "\n", encoding="utf-8")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` when the block ends (an interrupted write leaves it)."""
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            yield fh
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def read_bytes(path: str | Path) -> bytes:
    """The bytes of an input file (without a UTF-8 BOM); a missing file, a folder or a file
    past the input size cap (:mod:`scenarios.files`): InputError."""
    p = Path(path)
    try:
        return read_limited(p).removeprefix(codecs.BOM_UTF8)  # as editors on Windows save it
    except FileNotFoundError:
        raise InputError("path", "file not found", source=str(p)) from None
    except IsADirectoryError:
        raise InputError("path", "is a directory, expected a file", source=str(p)) from None


def read_json(cls: type[M], path: str | Path) -> M:
    """Read and validate a JSON file into ``cls`` (as saved data: see :func:`from_json`)."""
    return from_json(cls, read_bytes(path), source=str(Path(path)), saved=True)
