"""Reading and writing JSON files: the text is parsed once; the atomic write names the
caller's path when it cannot be made."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from scenarios.errors import InputError, escaped, field_path, input_error_from_validation
from scenarios.io import json_io
from scenarios.io.json_io import (
    LONE_SURROGATE_REASON,
    atomic_write,
    check_unique_keys,
    from_json,
)
from solvers.allocation import AllocationRequest

PROC = Path("/proc")


@pytest.mark.skipif(not PROC.is_dir(), reason="no /proc here")
def test_a_temp_file_that_cannot_be_made_is_reported_on_the_callers_path() -> None:
    """``/proc/x.json`` was reported as ``/proc/.x.json.tmp-PID: No such file or directory``,
    a name the caller never gave."""
    target = PROC / "x.json"
    with pytest.raises(OSError) as caught, atomic_write(target) as fh:
        fh.write(b"{}")
    assert caught.value.filename == str(target)
    assert isinstance(caught.value, FileNotFoundError)  # the class is kept
    assert caught.value.strerror is not None and ".x.json.tmp-" in caught.value.strerror


def test_a_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic_write(target) as fh:
        fh.write(b"new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


#: a two-node, one-order allocation request, as a client writes it
REQUEST: dict[str, Any] = {
    "nodes": [
        {"id": "dc", "location": {"lat": 52.37, "lon": 4.89}, "inventory": {"tea": 5}},
        {"id": "store", "kind": "store", "location": {"lat": 52.09, "lon": 5.12}},
    ],
    "orders": [
        {
            "id": "o1",
            "location": {"lat": 52.1, "lon": 5.1},
            "lines": [{"sku": "tea", "quantity": 2}],
        }
    ],
}


def _as_pydantic_parses(text: str | bytes) -> AllocationRequest | str:
    """What :func:`from_json` answered while it validated the text with pydantic's JSON
    parser (after the key check): the model, or the error's words."""
    try:
        check_unique_keys(text, source="in.json")
        try:
            return AllocationRequest.model_validate_json(text)
        except ValidationError as err:
            raise input_error_from_validation(err, source="in.json") from None
    except InputError as err:
        return str(err)


def _answer(text: str | bytes) -> AllocationRequest | str:
    try:
        return from_json(AllocationRequest, text, source="in.json")
    except InputError as err:
        return str(err)


def test_valid_text_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key check parses the text (:func:`json_io.parse_unique`): its value is validated,
    the text is not parsed again by pydantic's parser (some 10 % of a 2,000-order request's
    reading)."""
    parses: list[object] = []
    real_parse = json_io.parse_unique

    def parse(text: str | bytes) -> json_io.CheckedJson:
        parses.append(text)
        return real_parse(text)

    def again(*args: object, **kwargs: object) -> AllocationRequest:
        raise AssertionError("the text was parsed again")

    monkeypatch.setattr(json_io, "parse_unique", parse)
    monkeypatch.setattr(AllocationRequest, "model_validate_json", again)
    text = json.dumps(REQUEST)
    model = from_json(AllocationRequest, text.encode())
    assert model == AllocationRequest.model_validate(REQUEST)
    assert len(parses) == 1


#: JSON values put in a valid request by the property test; text with lone surrogates (which
#: :func:`json.loads` makes and pydantic's JSON parser refuses) and numbers JSON may give
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(codec=None, exclude_categories=["Co"]), max_size=4)
    | st.sampled_from(["tea", "store", "vip", "mile", "2", "", "dc"])
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, at: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a value inside ``value`` (itself included)."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*at, i))
    return found


def _lone_surrogate_fields(value: Any, at: tuple[str | int, ...] = ()) -> set[str]:
    """The fields (as errors name them) of the strings and keys in ``value`` holding a lone
    surrogate (a key with it escaped, ``te\\ud800a``)."""

    def lone(text: str) -> bool:
        return any(0xD800 <= ord(c) <= 0xDFFF for c in text)

    if isinstance(value, str):
        return {field_path(at)} if lone(value) else set()
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if lone(key):
                shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
                found.add(field_path((*at, escaped(shown))))
            found |= _lone_surrogate_fields(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found |= _lone_surrogate_fields(item, (*at, i))
    return found


@given(st.data(), _VALUES, st.sampled_from(["utf-8", "utf-16", "utf-8-sig", "str"]))
def test_from_json_answers_as_pydantics_parser_did(
    data: st.DataObject, value: Any, encoding: str
) -> None:
    """Any value put anywhere in a request (a field's, a new field's, a whole object's), in
    any encoding: the same model or the same error, word for word, as when pydantic's JSON
    parser read the text (NaN, a top-level list and a BOM are refused as they were; a
    number's type and range and every field's reason too); but, as the service says them
    (since session 82), UTF-16 is refused as not UTF-8 and a lone surrogate names a string
    or key holding one (pydantic's parser said ``(root): Invalid JSON: ...`` of both)."""
    request = copy.deepcopy(REQUEST)
    path = data.draw(st.sampled_from(_paths(request)))
    if path:
        *parents, last = path
        holder: Any = request
        for step in parents:
            holder = holder[step]
        if isinstance(holder, dict) and data.draw(st.booleans()):
            last = data.draw(st.sampled_from(["id", "x", "quantity", "capacity_units"]))
        holder[last] = value
    else:
        request = value
    text = json.dumps(request)
    sent: str | bytes = text if encoding == "str" else text.encode(encoding)
    lone = _lone_surrogate_fields(request)
    if encoding == "utf-16":
        reason = "JSON must be UTF-8 (RFC 8259 section 8.1), not UTF-16: re-encode it as UTF-8"
        assert _answer(sent) == f"in.json: (root): {reason}"
    elif lone:
        assert _answer(sent) in {f"in.json: {f}: {LONE_SURROGATE_REASON}" for f in lone}
    else:
        assert _answer(sent) == _as_pydantic_parses(sent)
