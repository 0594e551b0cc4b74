"""Locations and time windows: the two value types every other model is built from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from scenarios.errors import FieldError

#: Largest integer any field takes (units, seconds, metres, cents): products and sums of a
#: few such values stay inside int64, where the solvers and the database keep them.
MAX_INT = 10**12
#: Largest seed: every random generator the project uses takes 32 bits.
MAX_SEED = 2**32 - 1
#: Largest planar coordinate (``x``/``y``).
MAX_COORDINATE = 1e9

NonNegInt = Annotated[int, Field(ge=0, le=MAX_INT)]
PosInt = Annotated[int, Field(gt=0, le=MAX_INT)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
#: The control characters (Unicode category Cc: C0, DEL, C1): no id may hold one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Why an id holding one is refused (the reason of its validation error).
CONTROL_CHARACTERS_REASON = "must not contain control characters (such as NUL, tab or newline)"


def _no_control_characters(value: str) -> str:
    """``value``, if it holds no control character (a NUL: PostgreSQL stores none, and an
    HTTP request holding one is a 422, so the CLI and in-process models refuse them too)."""
    if _CONTROL.search(value) is not None:
        raise ValueError(CONTROL_CHARACTERS_REASON)
    return value


Id = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters)]
#: An id of no set length (a stop's ``task_id``, ``<order id>:pickup`` by default): no
#: control character, as :data:`Id`.
ControlFreeId = Annotated[str, AfterValidator(_no_control_characters)]


def check_id_keys(mapping: Mapping[str, object], field: str) -> None:
    """Raise FieldError naming ``field.KEY`` for a key of ``mapping`` (an id used as a key:
    the SKU ids of a node's inventory) holding a control character, as :data:`Id` refuses
    one in a value; the key in the field is escaped (``s\\x00``), so the error stays one line.
    """
    for key in mapping:
        try:
            _no_control_characters(key)
        except ValueError as err:
            raise FieldError((field, _CONTROL.sub(_escaped, key)), str(err)) from None


def check_stock_keys(inventory: Mapping[str, object], safety_stock: object) -> None:
    """Raise FieldError for a SKU id of a node's ``inventory`` or ``safety_stock`` (a mapping
    by SKU, or one number for every SKU) holding a control character."""
    check_id_keys(inventory, "inventory")
    if isinstance(safety_stock, Mapping):
        check_id_keys(safety_stock, "safety_stock")


def _escaped(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


class StrictModel(BaseModel):
    """Base of every domain model: unknown fields, NaN and infinities are errors."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False, allow_inf_nan=False)


class Location(BaseModel):
    """A point: geographic (``lat``/``lon``), planar (``x``/``y``), and/or a matrix ``index``.

    ``index`` is the row/column of this point in an explicit travel matrix; it is required
    when the scenario's travel model is a matrix and ignored otherwise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    lon: float | None = Field(default=None, ge=-180.0, le=180.0)
    x: float | None = Field(default=None, ge=-MAX_COORDINATE, le=MAX_COORDINATE)
    y: float | None = Field(default=None, ge=-MAX_COORDINATE, le=MAX_COORDINATE)
    index: NonNegInt | None = None

    @model_validator(mode="after")
    def _one_coordinate_system(self) -> Self:
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
