"""Errors shared by every layer: bad input is reported with the field path and the reason."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, get_args, get_origin

from pydantic import ValidationError

_UNION_TAG = re.compile(r"^(constrained-)?(int|float|str|bool)$|^[\w-]+\[.*\]$")
#: The control characters (Unicode category Cc: C0, DEL, C1).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: What pydantic puts after a mapping key that failed validation (``inventory.k.[key]``).
_KEY_MARK = "[key]"


class DispatchlabError(Exception):
    """Base class of every error dispatchlab raises on purpose."""


class InputError(DispatchlabError):
    """Input that cannot be used, with the field it concerns and why (CLI exit 2, HTTP 422)."""

    def __init__(self, field: str, reason: str, *, source: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.source = source
        super().__init__(self.one_line())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by field, reason and source (an error raised in a worker process)."""
        return (_input_error, (self.field, self.reason, self.source))

    def under(self, prefix: str) -> InputError:
        """The same error with its field placed under ``prefix`` (``params`` + ``engine``
        -> ``params.engine``): a field path relative to a part of the input, made relative
        to the whole."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return InputError(field, self.reason, source=self.source)

    def one_line(self) -> str:
        """Render as ``source: field: reason`` on one line."""
        parts = [p for p in (self.source, self.field) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class ScenarioInputError(InputError):
    """An InputError on the scenario a solver was given (``vehicles.0.cost_per_km_cents``).

    A solver's other errors name fields of its params, and a request places them under its
    params object (:func:`fields_under`); this one goes under the request's ``scenario``.
    """

    def under(self, prefix: str) -> InputError:
        """The same error under ``scenario``, whatever ``prefix`` the solver's params have."""
        return InputError(f"scenario.{self.field}", self.reason, source=self.source)


class RequestInputError(InputError):
    """An InputError whose field is already a path from the request root (``new_orders.0``):
    :func:`fields_under` leaves it where it is."""

    def under(self, prefix: str) -> InputError:
        """Itself: its field is not relative to a part of the request."""
        return self


def empty_input(what: str, source: str | None) -> InputError:
    """The error of an input with nothing in it but white space (an empty file, nothing
    piped in), whatever its format: ``what`` is what it should hold (``a scenario``)."""
    return InputError("(root)", f"the input is empty: nothing to read {what} from", source=source)


def _input_error(field: str, reason: str, source: str | None) -> InputError:
    """Rebuild a pickled :class:`InputError`."""
    return InputError(field, reason, source=source)


class FieldError(ValueError):
    """A validator failure on a nested field; ``path`` is relative to the raising model."""

    def __init__(self, path: Sequence[int | str], reason: str) -> None:
        self.path = tuple(path)
        self.reason = reason
        super().__init__(f"{field_path(self.path)}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by path and reason."""
        return (type(self), (self.path, self.reason))


#: Field name -> discriminator values of the tagged union it holds (itself or as list items).
_TAGGED_FIELDS: dict[str, frozenset[str]] = {}


def register_tagged_union(field: str, union: Any, discriminator: str = "kind") -> None:
    """Let error paths skip the tag pydantic puts after ``field`` (a discriminated union).

    ``union`` is the ``Annotated[A | B, Field(discriminator=...)]`` type; the tags are the
    members' ``discriminator`` defaults. ``travel.euclidean.speed_m_per_s`` then reads
    ``travel.speed_m_per_s``: the path in the input, where the tag is a value, not a key.
    """
    members = get_args(union)[0] if get_origin(union) is Annotated else union
    register_union_tags(
        field, {str(m.model_fields[discriminator].default) for m in get_args(members)}
    )


def register_union_tags(field: str, tags: Iterable[str]) -> None:
    """Let error paths skip these tags after ``field``: the :class:`~pydantic.Tag` names of
    a union told apart by a callable :class:`~pydantic.Discriminator` (``safety_stock``:
    ``safety_stock.per_sku.a`` reads ``safety_stock.a``)."""
    _TAGGED_FIELDS[field] = _TAGGED_FIELDS.get(field, frozenset()) | frozenset(tags)


def _is_union_tag(loc: Sequence[int | str], k: int) -> bool:
    part = loc[k]
    if not isinstance(part, str):
        return False
    if _UNION_TAG.match(part):  # member tags of plain unions ("constrained-int", "dict[...]")
        return True
    owner = k - 1
    while owner >= 0 and isinstance(loc[owner], int):  # list items: modifiers.0.<tag>
        owner -= 1
    return owner >= 0 and part in _TAGGED_FIELDS.get(str(loc[owner]), frozenset())


def error_location(error: Mapping[str, Any]) -> tuple[tuple[int | str, ...], str]:
    """Full location and reason of one pydantic error dict, expanding FieldError paths.

    Union tags pydantic adds to the location are dropped, so the path is the one in the
    input: ``travel.speed_m_per_s``, not ``travel.euclidean.speed_m_per_s``.
    """
    raw = tuple(error.get("loc", ()))
    loc = tuple(p for k, p in enumerate(raw) if not _is_union_tag(raw, k))
    reason = clean_reason(str(error.get("msg", "invalid value")))
    if loc[-1:] == (_KEY_MARK,):  # a bad key: named by itself, escaped (the field, one line)
        loc = (*loc[:-2], escaped(str(loc[-2])))
        # the field ends with the key ("inventory." for an empty one): the reason says the
        # key is what is too short or too long ("Key should have at least 1 character")
        if reason.startswith("String "):
            reason = "Key " + reason.removeprefix("String ")
    ctx = error.get("ctx") or {}
    inner = ctx.get("error") if isinstance(ctx, dict) else None
    if isinstance(inner, FieldError):
        return loc + inner.path, inner.reason
    return loc, reason


def escaped(text: str) -> str:
    """``text`` with its control characters escaped as Python writes them (``s\\x00``)."""
    return CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


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


@contextmanager
def fields_under(prefix: str) -> Iterator[None]:
    """Re-raise an :class:`InputError` raised inside with its field under ``prefix``.

    A solver names fields relative to what it was given (its params: ``initial_plan...``);
    the caller knows where that sits in its own input (``params.initial_plan...``).
    """
    try:
        yield
    except InputError as err:
        raise err.under(prefix) from None
