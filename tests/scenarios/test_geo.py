"""The value checks of scenarios/geo.py: their fast paths decide as the full checks do."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticKnownError

from scenarios.errors import CONTROL, FieldError, escaped
from scenarios.geo import (
    BLANK_REASON,
    CONTROL_CHARACTERS_REASON,
    NOT_BOOL_REASON,
    NUL_REASON,
    Location,
    StrictModel,
    _float_input,
    _id_text,
    _int_input,
    _no_control_characters,
    check_id_keys,
)


def _int_input_reference(value: object) -> object:
    """:func:`_int_input` as it was before its fast path (session 68)."""
    if isinstance(value, bool):
        raise ValueError(NOT_BOOL_REASON)
    if isinstance(value, str | bytes | bytearray):
        raise PydanticKnownError("int_type")
    return value


def _float_input_reference(value: object) -> object:
    """:func:`_float_input` as it was before its fast path (session 68)."""
    if isinstance(value, bool):
        raise ValueError(NOT_BOOL_REASON)
    if isinstance(value, str | bytes | bytearray):
        raise PydanticKnownError("float_type")
    return value


class _IntSubclass(int):
    """An int that is no ``int`` by ``type``: the fast path must not be the only way in."""


class _StrSubclass(str):
    """A string that is no ``str`` by ``type``."""


#: Any value a number field may be given, JSON's and Python's.
NUMBER_INPUTS = st.one_of(
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.binary(max_size=5).map(bytearray),
    st.none(),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers().map(_IntSubclass),
    st.text(max_size=5).map(_StrSubclass),
    st.lists(st.integers(), max_size=2),
)


def _outcome(check: Any, value: object) -> tuple[str, object]:
    """What ``check`` does with ``value``: returns it (the same object) or raises (what)."""
    try:
        out = check(value)
    except PydanticKnownError as err:
        return "known", err.type
    except ValueError as err:
        return "value", str(err)
    assert out is value
    return "pass", None


@given(NUMBER_INPUTS)
def test_int_input_decides_as_before(value: object) -> None:
    """The ``type(value) is int`` fast path passes what the checks passed, refuses the rest
    as they did (a bool, a string, an int or str subclass included)."""
    assert _outcome(_int_input, value) == _outcome(_int_input_reference, value)


@given(NUMBER_INPUTS)
def test_float_input_decides_as_before(value: object) -> None:
    """As :func:`test_int_input_decides_as_before`, for a float (an int is one)."""
    assert _outcome(_float_input, value) == _outcome(_float_input_reference, value)


@pytest.mark.parametrize("check", [_int_input, _float_input])
def test_number_inputs_refuse_a_bool_and_text(check: Any) -> None:
    """``True`` and ``"3"`` are refused by both; a plain int is passed on."""
    with pytest.raises(ValueError, match=NOT_BOOL_REASON):
        check(True)
    for text in ("3", b"3", bytearray(b"3")):
        with pytest.raises(PydanticKnownError):
            check(text)
    assert check(3) == 3


#: Text with the characters that matter: control (C0, DEL, C1), printable ASCII, others.
IDS = st.text(
    alphabet=st.sampled_from(
        [
            *("a", "Z", "0", " ", "-", ":"),
            *("\x00", "\t", "\n", "\x1f", "\x7f", "\x80", "\x9f"),
            *("\xa0", "é", "\u2028", "\u200b", "日", "\U0001f600"),
        ]
    ),
    max_size=8,
)


@given(IDS)
def test_no_control_characters_refuses_exactly_the_control_ones(value: str) -> None:
    """The printable-ASCII fast path and the search agree: refused iff a control character
    (category Cc) is in it; other unprintable characters (U+2028) are accepted, as before."""
    has_control = CONTROL.search(value) is not None
    if has_control:
        with pytest.raises(ValueError, match=re.escape(CONTROL_CHARACTERS_REASON)):
            _no_control_characters(value)
    else:
        assert _no_control_characters(value) is value


@given(st.lists(IDS, max_size=6, unique=True))
def test_check_id_keys_names_the_first_bad_key(keys: list[str]) -> None:
    """The joined check passes the keys iff none holds a control character or is whitespace
    only; otherwise the error names the first such key (escaped), as the key-by-key walk
    did, with its reason."""
    mapping = dict.fromkeys(keys, 1)
    bad = [(key, _id_reason(key)) for key in keys if _id_reason(key) is not None]
    if not bad:
        check_id_keys(mapping, "inventory")
        return
    with pytest.raises(FieldError) as caught:
        check_id_keys(mapping, "inventory")
    assert caught.value.path == ("inventory", escaped(bad[0][0]))
    assert caught.value.reason == bad[0][1]


def _id_reason(value: str) -> str | None:
    """Why an id (or a key that is one) is refused, None when it is not: a control character
    first (it may be whitespace too: a tab), then whitespace only."""
    if CONTROL.search(value) is not None:
        return CONTROL_CHARACTERS_REASON
    return BLANK_REASON if value.isspace() else None


@given(IDS)
def test_an_id_is_refused_exactly_for_a_control_character_or_whitespace_only(value: str) -> None:
    """The fast path for printable ASCII and the slow one agree with the reference: " " and
    "\xa0\u2028" are blank, "a b" and "" are not (the empty one is refused by its length)."""
    reason = _id_reason(value)
    if reason is None:
        assert _id_text(value) is value
    else:
        with pytest.raises(ValueError, match=re.escape(reason)):
            _id_text(value)


def test_check_id_keys_of_a_large_inventory() -> None:
    """A key near the end of thousands is found (the joined string holds it)."""
    mapping = {f"sku-{k:05d}": 1 for k in range(5_000)} | {"sku\x00x": 1}
    with pytest.raises(FieldError, match=r"inventory\.sku\\x00x"):
        check_id_keys(mapping, "inventory")


COORDINATE = st.one_of(st.none(), st.floats(-90, 90))


@given(COORDINATE, COORDINATE, COORDINATE, COORDINATE, st.one_of(st.none(), st.integers(0, 9)))
def test_location_takes_one_coordinate_system(
    lat: float | None, lon: float | None, x: float | None, y: float | None, index: int | None
) -> None:
    """A location is valid iff lat/lon come together, x/y together, not both systems, and
    it has a system or an index (the planar fast path of its check included)."""
    geo = lat is not None, lon is not None
    planar = x is not None, y is not None
    valid = (
        all(geo) == any(geo)
        and all(planar) == any(planar)
        and not (all(geo) and all(planar))
        and (any(geo) or any(planar) or index is not None)
    )
    data = {"lat": lat, "lon": lon, "x": x, "y": y, "index": index}
    if valid:
        assert Location.model_validate(data).model_dump() == data
    else:
        with pytest.raises(ValidationError):
            Location.model_validate(data)


def test_a_built_models_schema_is_not_walked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each model or TypeAdapter holding a built model walked that model's whole schema again
    (0.07 s of the service's start-up); its NUL check is kept: the schema is the same."""
    from scenarios import geo
    from scenarios.model import Scenario

    walked: list[object] = []
    real = geo._nul_free

    def counting(schema: Any) -> Any:
        walked.append(schema)
        return real(schema)

    monkeypatch.setattr(geo, "_nul_free", counting)
    adapter = TypeAdapter(list[Scenario])
    assert walked == []

    class Outer(StrictModel):
        label: str
        scenario: Scenario

    assert 0 < len(walked) < 50  # its own fields, not Scenario's
    good = {"label": "x", "scenario": {"name": "s"}}
    assert Outer.model_validate(good).scenario.name == "s"
    for bad, field in [
        ({**good, "label": "x\x00"}, "label"),
        ({**good, "scenario": {"name": "s\x00"}}, "scenario.name"),
    ]:
        with pytest.raises(ValidationError) as err:
            Outer.model_validate(bad)
        assert [(e["loc"], e["msg"]) for e in err.value.errors()] == [
            (tuple(field.split(".")), NUL_REASON)
        ]
    with pytest.raises(ValidationError) as err:
        adapter.validate_python([{"name": "ok"}, {"name": "s\x00"}])
    assert [(e["loc"], e["msg"]) for e in err.value.errors()] == [((1, "name"), NUL_REASON)]


@given(IDS)
def test_the_json_schema_of_an_id_says_what_is_refused_as_blank(value: str) -> None:
    """The JSON Schema (and so the service's OpenAPI document) of an id or a region has a
    ``pattern`` that a blank one fails, as the model refuses it (control characters aside:
    the schema does not say those)."""
    from scenarios.geo import Id

    class Named(StrictModel):
        id: Id
        region: Id | None = None

    schema = Named.model_json_schema()
    [region] = [s for s in schema["properties"]["region"]["anyOf"] if s.get("type") == "string"]
    pattern = schema["properties"]["id"]["pattern"]
    assert region["pattern"] == pattern
    if value and CONTROL.search(value) is None:
        assert (re.search(pattern, value) is not None) == (_id_reason(value) is None), value
