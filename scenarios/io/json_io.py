"""Lossless JSON reading and writing of every domain model."""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

from scenarios.errors import InputError, input_error_from_validation
from scenarios.files import read_limited
from scenarios.saved import saved_context, warn_corrections

M = TypeVar("M", bound=BaseModel)


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
