"""Errors shared by every layer: bad input is reported with the field path and the reason."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

_UNION_TAG = re.compile(r"^(constrained-)?(int|float|str|bool)$|^\w+\[.*\]$")


class DispatchlabError(Exception):
    """Base class of every error dispatchlab raises on purpose."""


class InputError(DispatchlabError):
    """Input that cannot be used, with the field it concerns and why (CLI exit 2, HTTP 422)."""

    def __init__(self, field: str, reason: str, *, source: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.source = source
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Render as ``source: field: reason`` on one line."""
        parts = [p for p in (self.source, self.field) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class FieldError(ValueError):
    """A validator failure on a nested field; ``path`` is relative to the raising model."""

    def __init__(self, path: Sequence[int | str], reason: str) -> None:
        self.path = tuple(path)
        self.reason = reason
        super().__init__(f"{field_path(self.path)}: {reason}")


def error_location(error: Mapping[str, Any]) -> tuple[tuple[int | str, ...], str]:
    """Full location and reason of one pydantic error dict, expanding FieldError paths."""
    # Drop the member tags pydantic adds inside plain unions ("constrained-int", "dict[...]").
    loc = tuple(p for p in error.get("loc", ()) if not _UNION_TAG.match(str(p)))
    ctx = error.get("ctx") or {}
    inner = ctx.get("error") if isinstance(ctx, dict) else None
    if isinstance(inner, FieldError):
        return loc + inner.path, inner.reason
    return loc, clean_reason(str(error.get("msg", "invalid value")))


def field_path(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as a dotted path, e.g. ``orders.3.time_windows.0``."""
    return ".".join(str(part) for part in loc) or "(root)"


def clean_reason(message: str) -> str:
    """Drop pydantic's ``Value error, `` prefix from a validator message."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def input_error_from_validation(err: ValidationError, *, source: str | None = None) -> InputError:
    """Turn a pydantic ValidationError into one InputError naming the first bad field."""
    errors = err.errors(include_url=False)
    loc, reason = error_location(errors[0])
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return InputError(field_path(loc), reason, source=source)
