"""Lossless JSON reading and writing of every domain model."""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from scenarios.bulk import collector_paused
from scenarios.errors import (
    InputError,
    empty_input,
    escaped,
    field_path,
    input_error_from_validation,
)
from scenarios.files import naming_written, read_limited
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


class _Repeated(dict[str, Any]):
    """A JSON object that gave a key more than once (``repeated``, the first such key); its
    value is the last one given, as :func:`json.loads` keeps it."""

    repeated: str


class CheckedJson(NamedTuple):
    """A JSON text parsed once with its keys checked (:func:`parse_unique`)."""

    #: the parsed value (as :func:`json.loads` makes it) when the text is JSON and no object
    #: repeats a key, else None
    value: Any
    #: True when the text is JSON and no object repeats a key (``value`` is then the value)
    ok: bool
    #: where a key is given twice (:func:`repeated_key`), None if nowhere
    repeated: tuple[tuple[str | int, ...], str] | None


def parse_unique(text: str | bytes) -> CheckedJson:
    """Parse JSON ``text`` once, as :func:`json.loads` does, finding where an object gives a
    key more than once (:func:`repeated_key`); text that is not JSON is not ``ok`` and has no
    repeated key (its own error is reported by the caller's parser).

    One parse with a Python hook per object, a little more than :func:`json.loads`; the
    value it makes is :func:`json.loads`'s (the HTTP service validates the body from it, not
    parsing it again: :mod:`api.fastpath`). The walk down to the object runs only when one
    repeats a key.
    """
    found = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        found = True
        marked = _Repeated(obj)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                marked.repeated = key
                break
            seen.add(key)
        return marked

    try:
        value = json.loads(text, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):  # not JSON: left to the caller's parser
        return CheckedJson(None, False, None)
    if not found:
        return CheckedJson(value, True, None)
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:  # a stack, not recursion: a deeply nested body cannot overflow it
        path, item = stack.pop()
        if isinstance(item, _Repeated):
            return CheckedJson(None, False, (path, item.repeated))
        if isinstance(item, dict):
            stack.extend(((*path, k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))
    return CheckedJson(None, False, None)  # unreachable: a marked object is kept (last wins)


def repeated_key(text: str | bytes) -> tuple[tuple[str | int, ...], str] | None:
    """Where a JSON object of ``text`` gives a key more than once: the path down to that
    object and the key (outer objects first, then in input order), None if none does.

    :func:`json.loads` and pydantic's JSON parser keep the last value of a repeated key
    without a word: ``{"a": 1, "a": 2}`` in a node's ``inventory`` was 2 units of ``a``.
    Text that is not JSON gives None (its own error is reported by the caller's parser).
    """
    return parse_unique(text).repeated


#: Why a JSON object giving a key more than once is refused.
REPEATED_KEY_REASON = "given more than once in one JSON object (which value counts is ambiguous)"


def repeated_key_field(at: tuple[tuple[str | int, ...], str]) -> tuple[str, str]:
    """The field (the key's path, the key escaped as the models name a key) and the reason of
    a repeated key found by :func:`repeated_key`."""
    path, key = at
    return field_path((*path, escaped(key))), f"duplicate key {key!r}: {REPEATED_KEY_REASON}"


def check_unique_keys(text: str | bytes, *, source: str | None = None) -> CheckedJson:
    """Raise InputError naming the first key a JSON object of ``text`` gives more than once
    (``nodes.0.inventory.a: duplicate key 'a': ...``); text that is not JSON passes. Returns
    the parse (:func:`parse_unique`), whose value a caller may keep."""
    checked = parse_unique(text)
    if checked.repeated is not None:
        field, reason = repeated_key_field(checked.repeated)
        raise InputError(field, reason, source=source)
    return checked


def json_error_where(err: json.JSONDecodeError, *, line: bool = True) -> str:
    """`` at line L column C`` (``line`` False: `` at column C``) of a JSON error; empty for
    a :class:`JsonNestingError`, which has no position."""
    if isinstance(err, JsonNestingError):
        return ""
    return f" at line {err.lineno} column {err.colno}" if line else f" at column {err.colno}"


#: a JSON escape of a UTF-16 surrogate (``\\ud800`` to ``\\udfff``, either case)
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")
#: why a string holding a lone surrogate is refused (the models said it held a NUL, or
#: "unable to parse raw data as a unicode string")
LONE_SURROGATE_REASON = (
    "not valid Unicode: holds a lone UTF-16 surrogate (a \\ud800 to \\udfff escape "
    "that is not half of a pair)"
)


def has_surrogate_escape(text: str | bytes) -> bool:
    """Whether JSON ``text`` holds an escape of a UTF-16 surrogate (``\\ud800`` to
    ``\\udfff``): a pre-filter of :func:`surrogate_string_field`, which parses."""
    if isinstance(text, bytes):
        return SURROGATE_ESCAPE.search(text) is not None
    return _SURROGATE_ESCAPE_TEXT.search(text) is not None


def _is_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (no UTF-8 text holds one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def surrogate_string_field(text: str | bytes) -> str | None:
    """Dotted path of the first string (or object key) of JSON ``text`` holding a lone
    surrogate, or None (a key is named with it escaped, ``te\\ud800a``).

    Python's JSON parser makes a str of ``"\\ud800"``, which no UTF-8 text holds: the
    models' string checks then said the field held a NUL, or could not be read as a string,
    and the field's name in the answer came out as ``???``; pydantic's JSON parser refuses
    the whole text (``(root): Invalid JSON: lone leading surrogate ...``). A pair
    (``\\ud83d\\ude80``) is one character and fine. Text that is not JSON is left to the
    JSON errors (None).
    """
    return string_field(text, lambda item: not _is_unicode(item))


def string_field(text: str | bytes, bad: Callable[[str], bool]) -> str | None:
    """Dotted path of the first string or object key of JSON ``text`` that is ``bad``, or
    None; text that is not JSON is left to the JSON errors (None).

    A key is named escaped as the models name a key, a lone surrogate in it as a
    ``\\udXXX`` escape (the name is text an answer can carry).
    """
    try:
        value = loads(text)  # arrays nested too deeply: a ValueError, not a RecursionError
    except ValueError:
        return None
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:  # a stack, not recursion: a deeply nested body cannot overflow it
        path, item = stack.pop()
        if isinstance(item, str) and bad(item):
            return field_path(path)
        if isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                if bad(key):
                    shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
                    return field_path((*path, escaped(shown)))
                stack.append(((*path, key), inner))
        elif isinstance(item, list):
            stack.extend(((*path, i), inner) for i, inner in reversed(list(enumerate(item))))
    return None


def utf8_refusal(data: bytes) -> str | None:
    """Why JSON ``data`` is refused for its encoding, or None: JSON that
    :func:`json.loads` reads as UTF-16 or UTF-32 (told by a byte-order mark or by zero
    bytes). UTF-8, with or without a byte-order mark, passes; so do bytes that are no JSON in
    any encoding (left to the JSON errors).

    RFC 8259 section 8.1: JSON exchanged between systems MUST be UTF-8. Python's parser (the
    service's) read UTF-16 and UTF-32 too, pydantic's (the command line's) refused them as
    ``Invalid JSON: expected value at line 1 column 1``.
    """
    encoding = json.detect_encoding(data)
    if encoding in ("utf-8", "utf-8-sig"):
        return None
    try:
        loads(data)
    except ValueError:  # (JSONDecodeError, UnicodeDecodeError)
        return None
    name = encoding.upper().replace("-LE", "LE").replace("-BE", "BE")
    return f"JSON must be UTF-8 (RFC 8259 section 8.1), not {name}: re-encode it as UTF-8"


def to_json(model: BaseModel) -> str:
    """Serialise a model to compact, deterministic JSON (defaults omitted; round trip is exact)."""
    return model.model_dump_json(exclude_defaults=True)


def _utf8(text: str | bytes) -> bool:
    """True unless ``text`` is bytes :func:`json.loads` reads as another encoding than UTF-8
    without a BOM (UTF-16, UTF-32, a UTF-8 BOM), which pydantic's JSON parser refuses."""
    return isinstance(text, str) or json.detect_encoding(text) == "utf-8"


def from_json(
    cls: type[M], text: str | bytes, *, source: str | None = None, saved: bool = False
) -> M:
    """Parse and validate JSON into ``cls``; bad input raises InputError naming the field (a
    key given twice in one object too: :func:`check_unique_keys`).

    The text is parsed once: the key check's value is validated. What it is not given (text
    that is not JSON, not UTF-8, or that does not validate) is validated from the text by
    pydantic's JSON parser, whose words say what is wrong, as they did; but JSON in UTF-16
    or UTF-32 is refused as not UTF-8 (:func:`utf8_refusal`), and a string or key holding a
    lone UTF-16 surrogate is named (:func:`surrogate_string_field`), as the service says
    them (pydantic's parser said ``(root): Invalid JSON: ...`` of both).

    ``saved``: the text was saved earlier (a file), so what older versions accepted and the
    model now rejects is corrected with a note and a warning (:mod:`scenarios.saved`).
    """
    if not text.strip():  # not pydantic's "Invalid JSON: EOF while parsing a value"
        raise empty_input(_article(cls.__name__), source)
    refused = utf8_refusal(text) if isinstance(text, bytes) else None
    if refused is not None:  # not pydantic's "Invalid JSON: expected value at line 1 ..."
        raise InputError("(root)", refused, source=source)
    if has_surrogate_escape(text):  # not pydantic's "(root): Invalid JSON: lone ... surrogate"
        where = surrogate_string_field(text)
        if where is not None:
            raise InputError(where, LONE_SURROGATE_REASON, source=source)
    context = saved_context() if saved else None
    with collector_paused():  # a large scenario is millions of objects (scenarios.bulk)
        # pydantic's parser would keep a repeated key's last value silently
        checked = check_unique_keys(text, source=source)
        try:
            model = None
            if checked.ok and _utf8(text):
                try:
                    model = cls.model_validate(checked.value, context=context)
                except ValidationError:
                    context = saved_context() if saved else None  # its notes start again
            if model is None:
                model = cls.model_validate_json(text, context=context)
        except ValidationError as err:
            raise input_error_from_validation(err, source=source) from None
    if context is not None:
        warn_corrections(context, source)
    return model


def _article(name: str) -> str:
    """A class name as words after their article: ``AllocationRequest``: ``an allocation
    request``."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return f"{'an' if words[:1] in set('aeiou') else 'a'} {words}"


def write_json(model: BaseModel, path: str | Path) -> None:
    """Write a model to ``path`` as JSON followed by a newline (an OSError names ``path``)."""
    with naming_written(path):
        Path(path).write_text(to_json(model) + "\n", encoding="utf-8")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` when the block ends (an interrupted write leaves it).

    A ``path`` that is a symlink (``/dev/stdout``, ``latest.json``) or not a regular file (a
    device such as ``/dev/null``, a FIFO) is written through, as a shell's ``>`` does, not
    replaced: the rename put a regular file in its place (run as root, ``--out /dev/null``
    replaced the null device). A write that fails names ``path`` (``No space left on device``
    said no file).
    """
    out = Path(path)
    if out.is_symlink() or (out.exists() and not out.is_file()):
        with naming_written(out), out.open("wb") as fh:
            yield fh
        return
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        try:
            fh = tmp.open("wb")
        except OSError as err:  # named ``path``: the temp file is no name the caller knows
            raise _on_target(err, out, f"making the temp file {tmp.name} to write it") from None
        with naming_written(out), fh:
            yield fh
        try:
            tmp.replace(out)
        except OSError as err:
            raise _on_target(err, out, f"renaming the temp file {tmp.name} to it") from None
    finally:
        tmp.unlink(missing_ok=True)


def _on_target(err: OSError, target: Path, doing: str) -> OSError:
    """``err`` (of the same class) naming ``target`` alone, what was being done in its reason."""
    reason = err.strerror or str(err) or type(err).__name__
    return OSError(err.errno, f"{reason} ({doing})", str(target))


def read_bytes(path: str | Path) -> bytes:
    """The bytes of an input file (without a UTF-8 BOM); a missing file, a folder or a file
    past the input size cap (:mod:`scenarios.files`): InputError."""
    p = Path(path)
    try:
        return read_limited(p).removeprefix(codecs.BOM_UTF8)  # as editors on Windows save it
    except FileNotFoundError:
        if str(path) == "-":  # the commands that read standard input do so before this
            reason = "standard input is not read here: give the file's path"
            raise InputError("path", reason, source="-") from None
        raise InputError("path", "file not found", source=str(p)) from None
    except IsADirectoryError:
        raise InputError("path", "is a directory, expected a file", source=str(p)) from None


def read_json(cls: type[M], path: str | Path) -> M:
    """Read and validate a JSON file into ``cls`` (as saved data: see :func:`from_json`)."""
    return from_json(cls, read_bytes(path), source=str(Path(path)), saved=True)
