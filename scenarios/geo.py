"""Locations and time windows: the two value types every other model is built from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, PydanticKnownError
from pydantic_core import core_schema as cs

from scenarios.errors import CONTROL, FieldError, escaped

#: Largest integer any field takes (units, seconds, metres, cents): products and sums of a
#: few such values stay inside int64, where the solvers and the database keep them.
MAX_INT = 10**12
#: Largest seed: every random generator the project uses takes 32 bits.
MAX_SEED = 2**32 - 1
#: Largest planar coordinate (``x``/``y``).
MAX_COORDINATE = 1e9

#: Why ``true``/``false`` given for a number is refused (pydantic would read it as 1/0).
NOT_BOOL_REASON = "must be a number, not true or false"


def not_bool(value: object) -> object:
    """``value``, unless it is a bool (a count, price or seed never is)."""
    if isinstance(value, bool):
        raise ValueError(NOT_BOOL_REASON)
    return value


#: Before a number's own validation: ``true`` is no quantity (it was read as 1). Put it last
#: in ``Annotated``, after the ``Field``: it still runs first, and the constraints stay in the
#: JSON Schema as ``minimum``/``maximum``.
NotBool = BeforeValidator(not_bool)
NonNegInt = Annotated[int, Field(ge=0, le=MAX_INT), NotBool]
PosInt = Annotated[int, Field(gt=0, le=MAX_INT), NotBool]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED), NotBool]
#: Why an id holding one is refused (the reason of its validation error).
CONTROL_CHARACTERS_REASON = "must not contain control characters (such as NUL, tab or newline)"


def _no_control_characters(value: str) -> str:
    """``value``, if it holds no control character (a NUL: PostgreSQL stores none, and an
    HTTP request holding one is a 422, so the CLI and in-process models refuse them too)."""
    if (value.isascii() and value.isprintable()) or CONTROL.search(value) is None:
        return value  # printable ASCII first (:func:`_plain_ascii`, inline: one call less)
    raise ValueError(CONTROL_CHARACTERS_REASON)


def _plain_ascii(text: str) -> bool:
    """True when ``text`` is printable ASCII (so holds no control character: those are the
    unprintable ASCII and the C1 range); a string method, faster than :data:`CONTROL`'s
    search, for the ids and keys of a scenario, which nearly all are."""
    return text.isascii() and text.isprintable()


#: Why an id of only whitespace (``" "``) is refused (the reason of its validation error).
BLANK_REASON = "must not be blank (whitespace only)"
#: Any whitespace character (a key of non-ASCII text is looked through for one).
_SPACE = re.compile(r"\s")


def _id_text(value: str) -> str:
    """``value``, if it holds no control character (:func:`_no_control_characters`) and is
    not whitespace only: an id of spaces ("  ") read as a real node, order or region (the
    empty one is refused by its length)."""
    if not _plain_ascii(value) and CONTROL.search(value) is not None:
        raise ValueError(CONTROL_CHARACTERS_REASON)
    if value.isspace():
        raise ValueError(BLANK_REASON)
    return value


#: The longest id (:data:`Id`) the domain model accepts.
MAX_ID_LENGTH = 200

#: An id (of an order, node, SKU, vehicle, region...): 1 to :data:`MAX_ID_LENGTH`
#: characters, no control character, not whitespace only.
#: The JSON Schema of an id says it is not blank (:func:`_id_text` checks it; a pattern
#: checked by pydantic too would cost a regular expression per id).
_NOT_BLANK_SCHEMA: dict[str, Any] = {"pattern": r"\S"}

Id = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH, json_schema_extra=_NOT_BLANK_SCHEMA),
    AfterValidator(_id_text),
]
#: An id of no set length (a stop's ``task_id``, ``<order id>:pickup`` by default): no
#: control character, as :data:`Id`.
ControlFreeId = Annotated[str, AfterValidator(_no_control_characters)]

#: Why a string (or key) holding a NUL is refused: by every model (:class:`StrictModel`),
#: and over HTTP by the middleware, before the models (an id says its own reason in process:
#: :data:`CONTROL_CHARACTERS_REASON`).
NUL_REASON = "must not contain NUL (\\u0000) characters"
#: Metadata key of a string schema a model checks itself (an id used as a key).
_OWN_CHECK = "dispatchlab_own_check"


class _IdKey:
    """Marks a dict key that is an id: its model refuses control characters in it
    (:func:`check_id_keys`, with the key escaped in the field), so the NUL check skips it."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """The string schema, marked as checked by its model."""
        schema = handler(source)
        return {**schema, "metadata": {**schema.get("metadata", {}), _OWN_CHECK: True}}


#: An id as a key of a mapping (a SKU id of a node's ``inventory``): 1 to
#: :data:`MAX_ID_LENGTH` characters, as :data:`Id` (an order line's ``sku``), checked by
#: pydantic (the error names the key: ``inventory.<key>``); the model calls
#: :func:`check_id_keys` on it for control characters.
IdKey = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), _IdKey]


def check_id_keys(mapping: Mapping[str, object], field: str) -> None:
    """Raise FieldError naming ``field.KEY`` for a key of ``mapping`` (an id used as a key:
    the SKU ids of a node's inventory) holding a control character, or of whitespace only,
    as :data:`Id` refuses one in a value; the key in the field is escaped (``s\\x00``), so
    the error stays one line.

    The keys are checked joined first (one string, no call per key: a node's inventory has
    thousands); only when that holds one or some whitespace (or a key is no string) are they
    walked one by one.
    """
    try:
        joined = "".join(mapping)
    except TypeError:  # a key that is no string: the walk raises what it raised before
        joined = None
    clean = joined is not None and (_plain_ascii(joined) or CONTROL.search(joined) is None)
    if clean and joined is not None and _SPACE.search(joined) is None:
        return  # no whitespace at all: no key is blank
    for key in mapping:
        try:
            _id_text(key)
        except ValueError as err:
            raise FieldError((field, escaped(key)), str(err)) from None


def check_stock_keys(inventory: Mapping[str, object], safety_stock: object) -> None:
    """Raise FieldError for a SKU id of a node's ``inventory`` or ``safety_stock`` (a mapping
    by SKU, or one number for every SKU) holding a control character."""
    check_id_keys(inventory, "inventory")
    if isinstance(safety_stock, Mapping):
        check_id_keys(safety_stock, "safety_stock")


#: The NUL check run (in pydantic-core, no Python call) after a string validated as one:
#: its own errors (not a string, too long) come first and unchanged.
_NUL_FREE = cs.custom_error_schema(
    cs.str_schema(pattern=r"^[^\x00]*$"),
    custom_error_type="string_nul",
    custom_error_message=NUL_REASON,
)


#: Keys of a core schema holding values, not schemas: left as they are (a default value);
#: and ``serialization``, whose schemas never validate an input.
_NOT_SCHEMAS = frozenset({"metadata", "default", "expected", "members", "cls", "serialization"})


def _nul_path(value: object) -> tuple[str | int, ...] | None:
    """Where the first string in ``value`` (an ``Any``-typed value: strings, keys, lists,
    dicts and tuples in it, however deep) holding a NUL is, in input order: the path down to
    it (a key holding one: the key, escaped, as a typed mapping's key is named), ``()`` for
    ``value`` itself, None if no string holds one. A walk with a stack, not recursion, so a
    deeply nested body cannot overflow it."""
    stack: list[tuple[tuple[str | int, ...], object, bool]] = [((), value, False)]
    while stack:
        path, item, is_key = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return (*path[:-1], escaped(item)) if is_key else path
        elif isinstance(item, Mapping):
            for key, inner in reversed(list(item.items())):
                at = (*path, key if isinstance(key, (str, int)) else str(key))
                stack.append((at, inner, False))
                stack.append((at, key, True))  # the key before its value
        elif isinstance(item, (list, tuple)):
            stack.extend(((*path, i), inner, False) for i, inner in reversed(list(enumerate(item))))
        elif isinstance(item, (set, frozenset)):  # no order, no index: the set is named
            stack.extend((path, inner, False) for inner in item)
    return None


def _nul_free_any(value: object) -> object:
    """``value`` (of an ``Any``-typed field), if no string in it holds a NUL: the error
    names the string (or key) holding one, below the field, as for a typed field, in the
    words of a string's."""
    path = _nul_path(value)
    if path is None:
        return value
    if not path:
        raise PydanticCustomError("string_nul", NUL_REASON)
    raise FieldError(path, NUL_REASON)


def _json_schema_of_string(schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
    """The JSON Schema of the string itself, as before its NUL check (no ``pattern``, in
    the serialization mode too, which shows a chain's last step)."""
    return handler(schema["steps"][0])


#: The schemas of built :class:`NulFreeModel` classes (their strings refuse a NUL, their
#: numbers a string: :func:`_nul_free` and :func:`_numbers_strict` made them), by ``id``;
#: each is kept, so its ``id`` stays its own. A model or TypeAdapter holding one of them (a
#: nested model) is not walked into it again: 0.07 s of the service's start-up walked the
#: nested models of every body and answer model once for each model holding them.
_FINISHED: dict[int, Any] = {}


def _finished(schema: Any) -> bool:
    """True when ``schema`` is a built :class:`NulFreeModel` class's (:data:`_FINISHED`)."""
    return _FINISHED.get(id(schema)) is schema


def _finish(schema: object) -> None:
    """Note a built class's schema as made (:data:`_FINISHED`), with its parts that pydantic
    hands out for it when the class is nested: a ``definitions`` schema's own schema and
    its definitions (those of its nested models)."""
    if not isinstance(schema, dict) or _finished(schema):
        return  # no schema yet (a MockCoreSchema: the class is not built), or noted already
    _FINISHED[id(schema)] = schema
    if schema.get("type") == "definitions":
        for part in [schema["schema"], *schema["definitions"]]:
            if _is_nul_free_model(part):  # another model's, made by its class: made too
                _FINISHED[id(part)] = part


def _is_nul_free_model(schema: Any) -> bool:
    """True when ``schema`` is that of a :class:`NulFreeModel` (under its model validators)."""
    while isinstance(schema, dict) and schema.get("type", "").startswith("function-"):
        schema = schema.get("schema")
    if not isinstance(schema, dict) or schema.get("type") != "model":
        return False
    return isinstance(schema.get("cls"), type) and issubclass(schema["cls"], NulFreeModel)


def _nul_free(schema: Any) -> Any:
    """``schema`` with every string in it (values and keys, and those in ``Any``-typed
    values) refusing a NUL, ids excepted.

    A copy: the schemas of nested models, already checked by their own class, are not
    walked again (:data:`_FINISHED`) nor changed twice.
    """
    if isinstance(schema, list):
        return [_nul_free(item) for item in schema]
    if not isinstance(schema, dict) or _finished(schema):
        return schema
    kind = schema.get("type")
    if kind == "str":
        if schema.get("metadata", {}).get(_OWN_CHECK):
            return schema
        return cs.chain_schema(
            [schema, _NUL_FREE], metadata={"pydantic_js_functions": [_json_schema_of_string]}
        )
    if kind == "any":  # no string schema in it: its value is walked (in Python)
        return cs.no_info_after_validator_function(_nul_free_any, schema)
    if kind == "chain" and schema["steps"][-1] is _NUL_FREE:
        return schema  # a nested model's string, checked already
    if kind == "function-after" and schema["function"]["function"] is _nul_free_any:
        return schema  # a nested model's Any, checked already
    if kind == "function-after" and schema["function"]["function"] in (
        _no_control_characters,
        _id_text,
    ):
        return schema  # an id: control characters (NUL among them) have their own reason
    return {
        key: value if key in _NOT_SCHEMAS else _nul_free(value) for key, value in schema.items()
    }


#: What a number given as text is (refused by :func:`_int_input` and :func:`_float_input`);
#: a tuple, not ``str | bytes | bytearray``, which builds a union object at every call.
_TEXT_TYPES = (str, bytes, bytearray)


def _int_input(value: object) -> object:
    """``value`` for an integer's own validation, unless it is a bool (:data:`NOT_BOOL_REASON`)
    or a string (pydantic's ``int_type``: ``Input should be a valid integer``).

    Called for every integer of a model: an ``int`` (never a bool: ``type`` is exact) is
    passed on at once, before the checks."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise ValueError(NOT_BOOL_REASON)
    if isinstance(value, _TEXT_TYPES):
        raise PydanticKnownError("int_type")
    return value


def _float_input(value: object) -> object:
    """``value`` for a float's own validation (an int is one), unless it is a bool
    (:data:`NOT_BOOL_REASON`) or a string (``float_type``: ``Input should be a valid
    number``); a ``float`` or an ``int`` is passed on at once, as in :func:`_int_input`."""
    kind = type(value)
    if kind is float or kind is int:
        return value
    if isinstance(value, bool):
        raise ValueError(NOT_BOOL_REASON)
    if isinstance(value, _TEXT_TYPES):
        raise PydanticKnownError("float_type")
    return value


#: Why a flag given as anything but ``true`` or ``false`` is refused (:func:`_bool_input`).
BOOL_REASON = "Input should be a valid boolean: true or false, not a string or a number"
#: What a flag is never given as (:func:`_bool_input`): text, or a number (a bool aside).
_NOT_FLAG_TYPES = (str, bytes, bytearray, int, float)


def _bool_input(value: object) -> object:
    """``value`` for a flag's own validation, unless it is a string or a number: pydantic's
    lax mode reads ``"false"``, ``"no"``, ``"0"`` and ``0`` as False (and ``"yes"``, ``1`` as
    True), so an integration sending its flags as text went unseen. A ``bool`` is passed on
    at once; anything else (a numpy bool, made in process) goes on to pydantic's check."""
    if type(value) is bool:
        return value
    if isinstance(value, _NOT_FLAG_TYPES):
        raise PydanticCustomError("bool_type", BOOL_REASON)
    return value


#: The check run before each kind of number (and flag) of a model (:func:`_numbers_strict`).
_NUMBER_INPUT = {"int": _int_input, "float": _float_input, "bool": _bool_input}


def _numbers_strict(schema: Any, *, key: bool = False) -> Any:
    """``schema`` with every int and float in it refusing a string (``"3"``, which pydantic's
    lax mode reads as 3: a client's serialisation bug went unseen) and a bool, in pydantic's
    words for a wrong type; the rest of lax mode stays (``3.0`` for an int, an int for a float,
    a numpy integer). Every bool refuses a string and a number (:func:`_bool_input`). A
    mapping's keys are left as they are (JSON writes every key as a
    string). The :data:`NotBool` before a number becomes the number's own check (no second
    Python call); a number already checked (a nested model's) is left as it is, and so is
    every part of ``schema`` holding no number to change (the same object, not a copy)."""
    if isinstance(schema, list):
        items = [_numbers_strict(item) for item in schema]
        return schema if all(a is b for a, b in zip(items, schema, strict=True)) else items
    if not isinstance(schema, dict) or _finished(schema):
        return schema
    kind = schema.get("type")
    if kind in _NUMBER_INPUT and not key:
        return cs.no_info_before_validator_function(_NUMBER_INPUT[kind], schema)
    if kind == "function-before":
        function = schema["function"]["function"]
        inner = schema["schema"]
        if function in _NUMBER_INPUT.values():
            return schema  # a nested model's number, checked already
        if function is not_bool and inner.get("type") in _NUMBER_INPUT:
            return {
                **schema,
                "function": {**schema["function"], "function": _NUMBER_INPUT[inner["type"]]},
            }
    changed = {
        name: _numbers_strict(value, key=name == "keys_schema")
        for name, value in schema.items()
        if name not in _NOT_SCHEMAS
    }
    if all(changed[name] is schema[name] for name in changed):
        return schema  # unchanged: the same object (the NUL check knows its own by identity)
    return {**schema, **changed}


class NulFreeModel(BaseModel):
    """A model refusing a NUL in any string (values and keys, those in ``Any``-typed values
    too), naming the field with :data:`NUL_REASON`: PostgreSQL stores none, and over HTTP
    the middleware refuses it first; and refusing a number given as a string (``"3"``) or a
    bool, and a flag given as a string or a number (``"false"``, ``1``): see
    :func:`_numbers_strict`. Base of :class:`StrictModel`, and of the API's request bodies
    and params that are not domain models (their own config)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """The model's schema, its strings refusing a NUL (checked in pydantic-core, about
        0.1 us a string: a Python walk of every model's fields cost some 0.2 s on a
        10,000-order scenario, more than half its validation) and its numbers a string.

        A class's own built schema (the class nested in another model or a TypeAdapter) is
        returned as it is, made so already (:data:`_FINISHED`)."""
        _finish(cls.__dict__.get("__pydantic_core_schema__"))
        schema = handler(source)
        if _finished(schema):
            return schema
        return _numbers_strict(_nul_free(schema))


class StrictModel(NulFreeModel):
    """Base of every domain model: unknown fields, NaN and infinities are errors, and so is a
    NUL in any string (:class:`NulFreeModel`)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False, allow_inf_nan=False)


#: a planar coordinate in metres (a Location's x or y, a road grid's origin)
PlanarCoordinate = Annotated[float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE), NotBool]


class Location(NulFreeModel):
    """A point: geographic (``lat``/``lon``), planar (``x``/``y``), and/or a matrix ``index``.

    ``index`` is the row/column of this point in an explicit travel matrix; it is required
    when the scenario's travel model is a matrix and ignored otherwise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    lat: Annotated[float, Field(ge=-90.0, le=90.0), NotBool] | None = None
    lon: Annotated[float, Field(ge=-180.0, le=180.0), NotBool] | None = None
    x: PlanarCoordinate | None = None
    y: PlanarCoordinate | None = None
    index: NonNegInt | None = None

    @model_validator(mode="after")
    def _one_coordinate_system(self) -> Self:
        if self.lat is None and self.lon is None and self.x is not None and self.y is not None:
            return self  # planar, the common case: no rule below applies
        geo = (self.lat is not None, self.lon is not None)
        planar = (self.x is not None, self.y is not None)
        if any(geo) and not all(geo):
            raise ValueError("give both lat and lon, or neither")
        if any(planar) and not all(planar):
            raise ValueError("give both x and y, or neither")
        if all(geo) and all(planar):
            raise ValueError("give lat/lon or x/y, not both")
        if not any(geo) and not any(planar) and self.index is None:
            raise ValueError("a location needs lat/lon, x/y or a matrix index")
        return self

    @property
    def is_geographic(self) -> bool:
        """True when the point is given as lat/lon."""
        return self.lat is not None

    @property
    def is_planar(self) -> bool:
        """True when the point is given as planar x/y."""
        return self.x is not None


class TimeWindow(StrictModel):
    """A closed interval ``[start_s, end_s]`` in seconds from the start of the horizon."""

    start_s: NonNegInt
    end_s: NonNegInt

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end_s < self.start_s:
            raise FieldError(
                ("end_s",), f"ends at {self.end_s} s, before it starts at {self.start_s} s"
            )
        return self

    def contains(self, t_s: int) -> bool:
        """True when ``t_s`` lies inside the window (ends included)."""
        return self.start_s <= t_s <= self.end_s


def check_windows(windows: Sequence[TimeWindow], field: str) -> None:
    """Raise FieldError unless the windows are sorted and do not overlap."""
    for i in range(1, len(windows)):
        if windows[i].start_s <= windows[i - 1].end_s:
            raise FieldError(
                (field, i),
                f"windows must be sorted and disjoint; starts at {windows[i].start_s} s, "
                f"not after the previous window's end {windows[i - 1].end_s} s",
            )


def earliest_service_start(windows: Sequence[TimeWindow], arrival_s: int) -> int | None:
    """First time at or after ``arrival_s`` inside one of the windows (None if all are past).

    With no windows, service can start on arrival.
    """
    if not windows:
        return arrival_s
    for w in windows:
        if arrival_s <= w.end_s:
            return max(arrival_s, w.start_s)
    return None
