"""Travel models: how long and how far it is between two locations.

Every model answers the same question through :meth:`matrix`, returning integer matrices
(seconds and metres) for any set of origins and destinations. Solvers, the twin and the RL
environment all call it, so the computation is vectorised and cached per model instance.

Models:

- ``matrix``: explicit duration (and distance) matrices; locations carry an ``index``.
- ``euclidean``: planar ``x``/``y`` coordinates, ``metres_per_unit`` scale, constant speed.
- ``haversine``: ``lat``/``lon`` great-circle distance (R = 6371 km) times a detour factor.
- ``road_network``: shortest paths on a road graph (see :mod:`scenarios.roads`).

A ``profile`` (time-of-day duration multipliers) applies to all models; solvers use the
free-flow matrices, the twin multiplies by :meth:`factor_at` at departure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from scenarios.errors import FieldError, InputError, register_tagged_union
from scenarios.geo import MAX_INT, Location, NonNegInt, NotBool, PlanarCoordinate, StrictModel
from scenarios.saved import is_saved, note_pending

if TYPE_CHECKING:
    from scenarios.roads import RoadGraph

EARTH_RADIUS_M = 6_371_000.0
SECONDS_PER_DAY = 86_400

Rounding = Literal["floor", "round", "ceil"]
IntMatrix = NDArray[np.int64]

#: A speed in metres (or planar units) per second: positive and finite, at most 1,000.
Speed = Annotated[float, Field(ge=1e-3, le=1e3), NotBool]
#: A length scale (metres per planar unit, a grid's spacing): positive and finite.
Scale = Annotated[float, Field(ge=1e-3, le=1e6), NotBool]


class MatrixDeadlineError(Exception):
    """The time given to build a travel matrix (:func:`matrix_deadline`) ran out first."""


_MATRIX_DEADLINE: ContextVar[float | None] = ContextVar("matrix_deadline", default=None)


@contextmanager
def matrix_deadline(deadline: float | None) -> Iterator[None]:
    """Within the block, a road network's travel matrix stops being built once
    ``time.perf_counter()`` passes ``deadline`` (:class:`MatrixDeadlineError`; None: never).

    It looks at the clock between its passes and every few hundred rows, so it stops a
    fraction of a second past the deadline at most (a 10,000-place matrix took 1.7-2.1 s)."""
    token = _MATRIX_DEADLINE.set(deadline)
    try:
        yield
    finally:
        _MATRIX_DEADLINE.reset(token)


def check_matrix_deadline() -> None:
    """Raise :class:`MatrixDeadlineError` when the deadline of the enclosing
    :func:`matrix_deadline` block has passed."""
    deadline = _MATRIX_DEADLINE.get()
    if deadline is not None and time.perf_counter() > deadline:
        raise MatrixDeadlineError("the time limit was reached while building the travel matrix")


def matrix_time_left() -> float | None:
    """Seconds left before the deadline of the enclosing :func:`matrix_deadline` block (None:
    no deadline; negative once it has passed)."""
    deadline = _MATRIX_DEADLINE.get()
    return None if deadline is None else deadline - time.perf_counter()


@dataclass(frozen=True)
class TravelMatrix:
    """Integer travel durations (s) and distances (m), shape (origins, destinations)."""

    duration_s: IntMatrix
    distance_m: IntMatrix

    @property
    def shape(self) -> tuple[int, int]:
        """(number of origins, number of destinations)."""
        rows, cols = self.duration_s.shape
        return int(rows), int(cols)


class SpeedPeriod(StrictModel):
    """From ``start_s`` (time of day) on, travel takes ``duration_factor`` x free-flow time."""

    start_s: Annotated[int, Field(ge=0, lt=SECONDS_PER_DAY), NotBool]
    duration_factor: Annotated[float, Field(gt=0.0, le=10.0), NotBool]


def _round(values: NDArray[np.float64], rounding: Rounding) -> IntMatrix:
    """Round a float array to int64 by the given rule."""
    if rounding == "floor":
        out = np.floor(values)
    elif rounding == "ceil":
        out = np.ceil(values)
    else:
        out = np.floor(values + 0.5)
    return out.astype(np.int64)


class _TravelBase(StrictModel):
    """Fields and behaviour shared by every travel model."""

    profile: list[SpeedPeriod] = Field(default_factory=list)
    _cache: dict[Any, TravelMatrix] = PrivateAttr(default_factory=dict)

    @model_serializer(mode="wrap")
    def _keep_kind(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Always write the ``kind`` tag, even when defaults are excluded."""
        data = handler(self)
        if isinstance(data, dict):
            data = {"kind": getattr(self, "kind"), **data}  # noqa: B009
        return data

    @model_validator(mode="after")
    def _profile_sorted(self) -> Self:
        for i in range(1, len(self.profile)):
            if self.profile[i].start_s <= self.profile[i - 1].start_s:
                raise FieldError(("profile", i, "start_s"), "profile periods must be sorted")
        return self

    def factor_at(self, t_s: float) -> float:
        """Duration multiplier for a departure at ``t_s`` (time of day wraps every 24 h)."""
        if not self.profile:
            return 1.0
        tod = t_s % SECONDS_PER_DAY
        factor = self.profile[-1].duration_factor  # wraps around midnight
        for period in self.profile:
            if period.start_s <= tod:
                factor = period.duration_factor
            else:
                break
        return factor

    def matrix(
        self, origins: Sequence[Location], destinations: Sequence[Location] | None = None
    ) -> TravelMatrix:
        """Free-flow durations and distances from every origin to every destination."""
        dests = origins if destinations is None else destinations
        key = (tuple(origins), None if destinations is None else tuple(destinations))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._compute(origins, dests)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = result
        return result

    def check_location(self, location: Location) -> str | None:
        """Why this model cannot use the location, or None if it can."""
        return None

    def _compute(self, origins: Sequence[Location], dests: Sequence[Location]) -> TravelMatrix:
        raise NotImplementedError


class MatrixTravel(_TravelBase):
    """Explicit square matrices; each location's ``index`` selects its row and column.

    The diagonal must be zero: visits at the same place follow each other at no cost (data
    saved before that rule is read with the diagonal set to zero: :mod:`scenarios.saved`).
    """

    kind: Literal["matrix"] = "matrix"
    duration_s: list[list[NonNegInt]]
    distance_m: list[list[NonNegInt]] | None = None
    _dur: IntMatrix | None = PrivateAttr(default=None)
    _dist: IntMatrix | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _square(self, info: ValidationInfo) -> Self:
        n = len(self.duration_s)
        for name, mat in (("duration_s", self.duration_s), ("distance_m", self.distance_m)):
            if mat is None:
                continue
            if len(mat) != n:
                raise FieldError((name,), f"has {len(mat)} rows, expected {n}")
            for i, row in enumerate(mat):
                if len(row) != n:
                    raise FieldError(
                        (name, i), f"row has {len(row)} entries; matrix must be square ({n} x {n})"
                    )
            bad = next((i for i, row in enumerate(mat) if row[i] != 0), None)
            if bad is None:
                continue
            if not is_saved(info):
                # stops at one place share a node: its self-arc is a zero-length hop
                raise FieldError(
                    (name, bad, bad),
                    f"diagonal entry is {mat[bad][bad]}; travel to the same place is 0",
                )
            # saved before the diagonal had to be zero: correct it, the scenario notes it
            setattr(
                self,
                name,
                [[0 if i == j else x for j, x in enumerate(row)] for i, row in enumerate(mat)],
            )
            note_pending(info, f"travel.{name}")
        return self

    @property
    def size(self) -> int:
        """Number of rows (= columns)."""
        return len(self.duration_s)

    def check_location(self, location: Location) -> str | None:
        """Why this model cannot use the location, or None if it can."""
        if location.index is None:
            return "the travel model is an explicit matrix, so every location needs an index"
        if location.index >= self.size:
            return f"index {location.index} is outside the {self.size} x {self.size} matrix"
        return None

    def arrays(self) -> tuple[IntMatrix, IntMatrix]:
        """The full duration and distance matrices as int64 arrays."""
        if self._dur is None:
            self._dur = np.asarray(self.duration_s, dtype=np.int64).reshape(self.size, self.size)
            dist = self.distance_m if self.distance_m is not None else self.duration_s
            self._dist = np.asarray(dist, dtype=np.int64).reshape(self.size, self.size)
        assert self._dist is not None
        return self._dur, self._dist

    def _compute(self, origins: Sequence[Location], dests: Sequence[Location]) -> TravelMatrix:
        dur, dist = self.arrays()
        rows = np.array([_index(loc) for loc in origins], dtype=np.int64)
        cols = np.array([_index(loc) for loc in dests], dtype=np.int64)
        return TravelMatrix(dur[np.ix_(rows, cols)], dist[np.ix_(rows, cols)])


def _index(loc: Location) -> int:
    if loc.index is None:
        raise InputError("location.index", "the travel model is a matrix; index is required")
    return loc.index


class EuclideanTravel(_TravelBase):
    """Planar straight-line distance: ``distance_m = rounding(metres_per_unit * |p - q|)``.

    ``duration_s = rounding(distance_m / speed_m_per_s)``. Solomon files use
    ``metres_per_unit=10``, ``rounding="floor"``, speed 1: the DIMACS one-decimal truncation
    in integer tenths.
    """

    kind: Literal["euclidean"] = "euclidean"
    metres_per_unit: Scale = 1.0
    speed_m_per_s: Speed = 1.0
    rounding: Rounding = "round"

    def check_location(self, location: Location) -> str | None:
        """Why this model cannot use the location, or None if it can."""
        return None if location.is_planar else "euclidean travel needs planar x/y coordinates"

    def _compute(self, origins: Sequence[Location], dests: Sequence[Location]) -> TravelMatrix:
        a = _planar(origins)
        b = _planar(dests)
        dx = a[:, 0:1] - b[None, :, 0]
        dy = a[:, 1:2] - b[None, :, 1]
        dist = _round(np.sqrt(dx * dx + dy * dy) * self.metres_per_unit, self.rounding)
        dur = _round(dist / self.speed_m_per_s, self.rounding)
        return TravelMatrix(dur, dist)


class HaversineTravel(_TravelBase):
    """Great-circle distance (R = 6371 km) x ``detour_factor``, at a constant speed."""

    kind: Literal["haversine"] = "haversine"
    speed_m_per_s: Speed = 8.0
    detour_factor: Annotated[float, Field(ge=1.0, le=5.0), NotBool] = 1.0
    rounding: Rounding = "round"

    def check_location(self, location: Location) -> str | None:
        """Why this model cannot use the location, or None if it can."""
        return None if location.is_geographic else "haversine travel needs lat/lon coordinates"

    def _compute(self, origins: Sequence[Location], dests: Sequence[Location]) -> TravelMatrix:
        metres = haversine_m(_geo(origins), _geo(dests)) * self.detour_factor
        dist = _round(metres, self.rounding)
        dur = _round(dist / self.speed_m_per_s, self.rounding)
        return TravelMatrix(dur, dist)


def haversine_m(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Great-circle distances in metres between rows of ``a`` and ``b`` ([lat, lon] degrees)."""
    lat1 = np.radians(a[:, 0:1])
    lon1 = np.radians(a[:, 1:2])
    lat2 = np.radians(b[None, :, 0])
    lon2 = np.radians(b[None, :, 1])
    h = (
        np.sin((lat2 - lat1) / 2.0) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def haversine_pair_m(a: Location, b: Location) -> float:
    """Great-circle distance in metres between two lat/lon locations."""
    assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b.lon - a.lon) / 2) ** 2
    )
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def _planar(locs: Sequence[Location]) -> NDArray[np.float64]:
    out = np.empty((len(locs), 2), dtype=np.float64)
    for i, loc in enumerate(locs):
        if loc.x is None or loc.y is None:
            raise InputError("location", "euclidean travel needs planar x/y coordinates")
        out[i, 0] = loc.x
        out[i, 1] = loc.y
    return out


def _geo(locs: Sequence[Location]) -> NDArray[np.float64]:
    out = np.empty((len(locs), 2), dtype=np.float64)
    for i, loc in enumerate(locs):
        if loc.lat is None or loc.lon is None:
            raise InputError("location", "haversine travel needs lat/lon coordinates")
        out[i, 0] = loc.lat
        out[i, 1] = loc.lon
    return out


class GridSpec(StrictModel):
    """A synthetic city road grid: two-way streets every ``spacing_m``, arterials every k-th.

    Node ``(r, c)`` sits at ``(origin_x + c * spacing_m, origin_y + r * spacing_m)`` (metres).
    Row ``r`` is an arterial when ``r % arterial_every == 0``, column ``c`` likewise; arterials
    are driven at ``arterial_speed_m_per_s``, other streets at ``street_speed_m_per_s``.
    """

    rows: Annotated[int, Field(ge=2, le=2000), NotBool]
    cols: Annotated[int, Field(ge=2, le=2000), NotBool]
    spacing_m: Scale = 200.0
    street_speed_m_per_s: Speed = 8.3
    arterial_every: Annotated[int, Field(ge=1, le=MAX_INT), NotBool] = 5
    arterial_speed_m_per_s: Speed = 15.0
    origin_x: PlanarCoordinate = 0.0
    origin_y: PlanarCoordinate = 0.0

    @property
    def num_nodes(self) -> int:
        """Number of intersections."""
        return self.rows * self.cols

    @property
    def extent_m(self) -> tuple[float, float, float, float]:
        """Bounding box ``(min_x, min_y, max_x, max_y)`` in metres."""
        return (
            self.origin_x,
            self.origin_y,
            self.origin_x + (self.cols - 1) * self.spacing_m,
            self.origin_y + (self.rows - 1) * self.spacing_m,
        )


class RoadNetworkTravel(_TravelBase):
    """Shortest paths on a road graph; locations snap to the nearest graph node.

    The graph is either a GraphML file (as written by OSMnx: nodes with ``x``/``y`` or
    lon/lat, edges with ``length`` in metres and optional ``speed_kph``/``travel_time``) or a
    synthetic ``grid``. Durations follow fastest paths; distances are the lengths of those paths.
    A relative ``graphml_path`` is resolved against the working directory. Grid locations are
    planar ``x``/``y`` metres; GraphML locations are lat/lon (or x/y for a projected graph).
    See :mod:`scenarios.roads` for snapping, access legs and caching.
    """

    kind: Literal["road_network"] = "road_network"
    graphml_path: str | None = None
    grid: GridSpec | None = None
    default_speed_m_per_s: Speed = 8.3
    rounding: Rounding = "round"
    _graph: RoadGraph | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.graphml_path is None) == (self.grid is None):
            raise FieldError(("grid",), "give exactly one of graphml_path or grid")
        return self

    def road_graph(self) -> RoadGraph:
        """The loaded road graph (built once, shared by equal models)."""
        if self._graph is None:
            from scenarios.roads import load_road_graph

            self._graph = load_road_graph(self)
        return self._graph

    def check_location(self, location: Location) -> str | None:
        """Why this model cannot use the location, or None if it can."""
        if self.grid is not None and not location.is_planar:
            return "a road grid needs planar x/y coordinates in metres"
        if not (location.is_planar or location.is_geographic):
            return "road network travel needs x/y or lat/lon coordinates"
        return None

    def _compute(self, origins: Sequence[Location], dests: Sequence[Location]) -> TravelMatrix:
        return self.road_graph().matrix(origins, dests, rounding=self.rounding)


TravelModel = Annotated[
    MatrixTravel | EuclideanTravel | HaversineTravel | RoadNetworkTravel,
    Field(discriminator="kind"),
]
register_tagged_union("travel", TravelModel)

__all__ = [
    "EuclideanTravel",
    "GridSpec",
    "HaversineTravel",
    "MatrixDeadlineError",
    "MatrixTravel",
    "RoadNetworkTravel",
    "SpeedPeriod",
    "TravelMatrix",
    "TravelModel",
    "check_matrix_deadline",
    "haversine_m",
    "haversine_pair_m",
    "matrix_deadline",
    "matrix_time_left",
]
