"""What-if variants: a base scenario plus modifiers, read from a YAML file.

A variant file::

    base: city.json            # scenario file, relative to this file (any supported format)
    plan: plan.json            # optional: a plan to play forward in every variant (a Plan
                               # JSON or the plan JSON of ``dispatchlab route --out``)
    variants:
      - name: evening-rush
        modifiers:
          - {kind: demand, factor: 1.3, window: {start_s: 61200, end_s: 72000}}
          - {kind: travel_slowdown, factor: 1.2}
      - name: store-closed
        modifiers:
          - {kind: node_closed, node_id: st-01, window: {start_s: 43200, end_s: 57600}}
      - name: short-staffed
        modifiers:
          - {kind: fleet, remove: 5}
          - {kind: pick_time, factor: 1.5}
      - name: two-more-couriers
        modifiers:
          - {kind: fleet, add: 2}             # copies of the most common kind of courier
      - name: stock-shock
        modifiers:
          - {kind: stock_shock, factor: 0.5, node_ids: [dc-01]}

The base scenario is always compared as variant ``base``, first; no variant may take that name
(``variants.0.name: 'base' is the name of the baseline, ...``: until session 64 such a variant
replaced the baseline while the other variants stayed the unmodified base plus their own
modifiers). Variant names are unique (``variants.1.name: duplicate name 'rush'``) and not
blank (only whitespace).

Modifiers:

- ``demand``: orders created in ``window`` (all if omitted) x ``factor``: the ``n`` orders
  created in the window become ``n x factor`` orders, rounded to the nearest whole order with
  halves rounded up (the factor as written, in exact arithmetic: 3 x 0.5 keeps 2, 5 x 0.5
  keeps 3, 3 x 1.5 makes 5; see :func:`scaled_count`). Above 1, the extra orders are copies
  of randomly chosen ones (new ids ``<id>~<k>``; where that would be longer than an id may
  be, 200 characters, ``<id cut>~<hash>~<k>``, the hash being the first 10 hex digits of the
  SHA-256 of the whole id: see :func:`copy_id`), creation time jittered inside the window but
  not after the horizon end, delivery windows moved with it; a copy of a shipment keeps its
  pickup, windows moved alike, with the task id ``<copy id>:pickup``. A copy one of whose
  windows (delivery or pickup) would be moved entirely outside the horizon is not made (it
  could never be served as the order it copies): ``source.notes`` says how many were not
  made, and why, at the modifier's path. Below 1, a random share is dropped. The Poisson
  arrival process (if any) gets a
  surge with the same factor and window, and still draws from the base's orders (they become
  its ``templates`` when it has none). Random choices use the ``seed`` given to
  :func:`apply_variant`.
- ``node_closed``: an outage of node ``node_id`` during ``window`` (which ends after it starts).
- ``fleet``: ``remove`` couriers (the listed ``vehicle_ids``, each once, else the last ones),
  or ``add`` couriers (at most :data:`MAX_ADDED_COURIERS` per variant), each a copy of
  ``copy_of`` (a courier of the variant's fleet) or, without it, of the first courier of the
  fleet's most common kind (same capacity, skills and costs: :func:`template_courier`), with
  its base, shift, breaks and limits, under a new id ``<id>~<k>`` (k = 1, 2, ..., skipping ids
  the fleet has). ``add`` goes in a fleet modifier of its own (modifiers apply in order).
- ``travel_slowdown``: travel takes ``factor`` x longer during ``window`` (all day if omitted).
- ``pick_time``: pick and pack times x ``factor`` at ``node_ids`` (all nodes if omitted).
- ``stock_shock``: inventory x ``factor`` (exactly as written, rounded down) at ``node_ids``
  for ``skus`` (all if omitted). A SKU outside the scenario's ``skus`` catalogue is an error;
  with no catalogue any SKU id is accepted (as in the scenario itself).
- ``stochastic``: override fields of the scenario's stochastic parameters (``values``); a
  ``node_outages`` or ``travel_slowdowns`` list replaces the base's, and the outages and
  slowdowns earlier ``node_closed`` and ``travel_slowdown`` modifiers added are kept.

A modifier's ``window`` lying entirely outside the horizon is refused (it would have no
effect), naming ``variants.{i}.modifiers.{k}.window``; a ``demand`` window before the
horizon start still copies or drops the orders created then (and adds no surge). A base
read as stored data (:mod:`scenarios.saved`) may hold times outside its horizon: its variants
keep those they inherit, each noted once in ``source.notes`` at its path in the variant (the
base's notes on them are replaced: its paths may name another vehicle or order of the variant),
and are refused for any they bring themselves (a ``stochastic`` modifier's outage, ...),
naming ``variants.{i}.modifiers``.
"""

from __future__ import annotations

import copy as copy_module
import hashlib
import math
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from scenarios.bulk import collector_paused
from scenarios.errors import (
    FieldError,
    InputError,
    empty_input,
    field_path,
    input_error_from_validation,
    register_tagged_union,
)
from scenarios.geo import MAX_ID_LENGTH, Id, NonNegInt, NotBool, StrictModel, TimeWindow
from scenarios.model import Scenario, check_unique_ids, stored_time_note
from scenarios.plan import Plan
from scenarios.saved import saved_context
from scenarios.stochastic import DemandSurge, NodeOutage, Slowdown, StochasticParams

Factor = Annotated[float, Field(ge=0.0, le=100.0), NotBool]


def scaled_count(n: int, factor: float) -> int:
    """``n`` x ``factor`` rounded to the nearest integer, halves up, the factor as written.

    Exact arithmetic on the factor's decimal text: 10 x 0.35 is 3.4999999999999996 in floats
    but 3.5, hence 4. One rule for copies and drops, monotone in the factor; Python's
    ``round`` (halves to even) made 3 x 0.5 keep 1 order but 5 x 0.5 keep 3.
    """
    return math.floor(n * Fraction(repr(factor)) + Fraction(1, 2))


def copy_id(order_id: str, n: int) -> str:
    """The id of copy ``n`` of an order: ``<id>~<n>``, or ``<id cut>~<hash>~<n>`` when that
    would be longer than :data:`MAX_ID_LENGTH` (the hash: the first 10 hex digits of the
    SHA-256 of the whole id, so two long ids with the same start get different copy ids)."""
    plain = f"{order_id}~{n}"
    if len(plain) <= MAX_ID_LENGTH:
        return plain
    digest = hashlib.sha256(order_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    tail = f"~{digest}~{n}"
    return order_id[: MAX_ID_LENGTH - len(tail)] + tail


class DemandModifier(StrictModel):
    """Orders created in ``window`` (all if None) x ``factor``."""

    kind: Literal["demand"] = "demand"
    factor: Factor
    window: TimeWindow | None = None


class NodeClosedModifier(StrictModel):
    """Node ``node_id`` cannot pick or hand over parcels during ``window``."""

    kind: Literal["node_closed"] = "node_closed"
    node_id: Id
    window: TimeWindow

    @model_validator(mode="after")
    def _some_time(self) -> NodeClosedModifier:
        """A window of no time closed the node for no time: the variant was the base."""
        if self.window.end_s <= self.window.start_s:
            raise FieldError(
                ("window", "end_s"),
                f"ends at {self.window.end_s} s: the node's closure must end after it starts "
                f"at {self.window.start_s} s",
            )
        return self


#: Most couriers the ``fleet`` modifiers of one variant may add to the base's fleet (each
#: a copy: a few bytes of ``add`` must not make millions of vehicles)
MAX_ADDED_COURIERS = 1_000


class FleetModifier(StrictModel):
    """``remove`` fewer couriers (the listed ``vehicle_ids``, else the last ones), or ``add``
    more: copies of ``copy_of``, else of the first courier of the fleet's most common kind."""

    kind: Literal["fleet"] = "fleet"
    remove: NonNegInt = 0
    vehicle_ids: list[Id] = Field(default_factory=list)
    add: Annotated[int, Field(ge=0, le=MAX_ADDED_COURIERS), NotBool] = 0
    copy_of: Id | None = None

    @model_validator(mode="after")
    def _ids_match(self) -> FleetModifier:
        if self.add and (self.remove or self.vehicle_ids):
            raise FieldError(
                ("add",),
                "add couriers in a fleet modifier of its own, not with remove or vehicle_ids "
                "(give two fleet modifiers: they apply in order)",
            )
        if self.copy_of is not None and not self.add:
            raise FieldError(("copy_of",), "only with add (how many copies of it to add)")
        if self.vehicle_ids and self.remove and self.remove != len(self.vehicle_ids):
            raise ValueError("remove must equal the number of vehicle_ids (or be omitted)")
        first: dict[str, int] = {}
        for i, vid in enumerate(self.vehicle_ids):  # [v1, v1] with remove 2 removed one
            if vid in first:
                raise FieldError(
                    ("vehicle_ids", i), f"vehicle {vid!r} is listed twice (also {first[vid]})"
                )
            first[vid] = i
        return self


class TravelSlowdownModifier(StrictModel):
    """Travel takes ``factor`` x longer during ``window`` (the whole horizon if None)."""

    kind: Literal["travel_slowdown"] = "travel_slowdown"
    factor: Annotated[float, Field(gt=0.0, le=10.0), NotBool]
    window: TimeWindow | None = None


class PickTimeModifier(StrictModel):
    """Pick and pack times x ``factor`` at ``node_ids`` (all nodes if empty)."""

    kind: Literal["pick_time"] = "pick_time"
    factor: Factor
    node_ids: list[Id] = Field(default_factory=list)


class StockShockModifier(StrictModel):
    """Inventory x ``factor`` at ``node_ids`` for ``skus`` (all if empty)."""

    kind: Literal["stock_shock"] = "stock_shock"
    factor: Annotated[float, Field(ge=0.0, le=1.0), NotBool]
    node_ids: list[Id] = Field(default_factory=list)
    skus: list[Id] = Field(default_factory=list)


class StochasticModifier(StrictModel):
    """Override fields of the scenario's stochastic parameters."""

    kind: Literal["stochastic"] = "stochastic"
    values: dict[str, Any]


Modifier = Annotated[
    DemandModifier
    | NodeClosedModifier
    | FleetModifier
    | TravelSlowdownModifier
    | PickTimeModifier
    | StockShockModifier
    | StochasticModifier,
    Field(discriminator="kind"),
]
register_tagged_union("modifiers", Modifier)


#: the name of the baseline every variant is compared with: the unmodified base scenario
BASE = "base"
#: why a variant may not be named :data:`BASE` (the start is matched by
#: :func:`scenarios.saved.newer_rule`: jobs queued before session 64 could name one so)
BASE_NAME_REASON = (
    "'base' is the name of the baseline, the unmodified base scenario every variant is "
    "compared with; give this variant another name (for another baseline, change the base "
    "scenario file or request)"
)


class Variant(StrictModel):
    """A named list of modifiers applied to the base scenario."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    modifiers: list[Modifier] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _not_base(cls, name: str) -> str:
        # a variant named base replaced the baseline, while every other variant was still
        # the unmodified base plus its own modifiers: its differences measured two changes
        if name == BASE:
            raise ValueError(BASE_NAME_REASON)
        if not name.strip():  # a row of the report named by blanks
            raise ValueError("a blank name: give the variant a name")
        return name


class VariantFile(StrictModel):
    """A what-if study: the base scenario (and plan) and its variants."""

    base: Annotated[str, Field(min_length=1)]  # "" named the variant file's folder
    plan: Annotated[str, Field(min_length=1)] | None = None  # "" was taken as no plan
    variants: list[Variant] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> VariantFile:
        check_unique_ids((v.name for v in self.variants), "variants", "name")
        return self


class LoadedVariants:
    """A variant file read from disk: base scenario, optional plan, variant scenarios.

    ``source`` names the variant file (or request); ``plan_source`` the plan's own file, which
    errors on the plan's fields name (``source`` when the plan came with it).
    """

    def __init__(
        self,
        spec: VariantFile,
        base: Scenario,
        plan: Plan | None,
        source: str,
        *,
        plan_source: str | None = None,
    ) -> None:
        self.spec = spec
        self.base = base
        self.plan = plan
        self.source = source
        self.plan_source = plan_source if plan_source is not None else source

    @property
    def names(self) -> list[str]:
        """Variant names, ``base`` (the unmodified base scenario) first."""
        return [BASE, *(v.name for v in self.spec.variants)]

    def scenarios(self, *, seed: int, max_orders: int | None = None) -> dict[str, Scenario]:
        """Every variant's scenario, ``base`` being the unmodified base.

        ``max_orders``: a demand modifier that would give a variant more orders is an
        InputError, raised before its copies are made (see :func:`apply_variant`).
        """
        out: dict[str, Scenario] = {BASE: self.base}
        for index, variant in enumerate(self.spec.variants):
            out[variant.name] = apply_variant(
                self.base,
                variant,
                seed=seed,
                index=index,
                source=self.source,
                max_orders=max_orders,
            )
        return out


#: Deepest nesting of sequences and mappings a variant file may have (pydantic's JSON parser
#: takes 201 levels): a file nested deeper is refused as soon as its reading gets there.
MAX_YAML_DEPTH = 200
#: Why a YAML file nested past :data:`MAX_YAML_DEPTH` is refused.
YAML_TOO_DEEP_REASON = "not valid YAML: sequences or mappings nested too deeply"


class YamlNestingError(yaml.YAMLError):
    """YAML whose sequences or mappings nest past :data:`MAX_YAML_DEPTH`."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader refusing a mapping that gives a key more than once (it kept the
    last value: ``{kind: demand, factor: 1.3, factor: 2}`` was a factor of 2, without a
    word). Keys merged in by ``<<`` may be overridden, as YAML says.

    It refuses nesting past :data:`MAX_YAML_DEPTH` as it reads (:class:`YamlNestingError`):
    PyYAML's scanner is quadratic in the depth of ``[`` (5,000 levels took 4.3 s, on a slow
    machine, before its composer's recursion failed), the composer recursive.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        """The scanner's ``[`` or ``{``, unless it opens one level too many."""
        if self.flow_level >= MAX_YAML_DEPTH:
            raise YamlNestingError(YAML_TOO_DEEP_REASON)
        super().fetch_flow_collection_start(token_class)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping, unless one of its own keys repeats an earlier one."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key: the safe loader's own error says so
                break
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """The node's value, or a ConstructorError at the node for a scalar its constructor
        cannot read: an integer of more than ``sys.get_int_max_str_digits()`` digits, a date
        that is none (``2026-02-30``), an explicit ``!!int`` / ``!!float`` / ``!!bool`` /
        ``!!timestamp`` tag on a value that is none (PyYAML's ValueError, KeyError, IndexError
        or AttributeError was a traceback)."""
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, ArithmeticError, LookupError) as err:
            if isinstance(err, yaml.YAMLError):
                raise
            raise yaml.constructor.ConstructorError(
                None, None, _unreadable_scalar(node, err), node.start_mark
            ) from None

    def compose_sequence_node(self, anchor: Any) -> yaml.SequenceNode:
        """The composer's sequence, unless it lies one level too deep."""
        with self._one_level_deeper():
            return super().compose_sequence_node(anchor)

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        """The composer's mapping, unless it lies one level too deep."""
        with self._one_level_deeper():
            return super().compose_mapping_node(anchor)

    @contextmanager
    def _one_level_deeper(self) -> Iterator[None]:
        """A collection inside the current one (block style too), if not too deep."""
        if self._depth >= MAX_YAML_DEPTH:
            raise YamlNestingError(YAML_TOO_DEEP_REASON)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1


# A number with an exponent and no dot or sign in it (``1e3``, ``1.5e3``) is a string to
# YAML 1.1, which PyYAML follows, and a float to YAML 1.2 and JSON: read as a float, since
# a number given as a string is refused (it was read as the number by pydantic's lax mode).
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _unreadable_scalar(node: yaml.Node, err: Exception) -> str:
    """Why PyYAML's constructor could not read ``node``, in one line without Python's words."""
    if isinstance(err, ValueError) and "digits" in str(err):  # int()'s digit limit
        return f"a number has more than {sys.get_int_max_str_digits()} digits"
    kind = str(node.tag).rsplit(":", 1)[-1]
    value = node.value if isinstance(node.value, str) else ""
    shown = value if len(value) <= 40 else value[:40] + "..."
    # a date's own reason ("day is out of range for month"), not int()'s and float()'s
    # words repeating the value ("invalid literal for int() with base 10: 'x'")
    said = str(err) if isinstance(err, ValueError) and value not in str(err) else ""
    because = f" ({said})" if said else ""
    return f"{shown!r} is not a valid {kind}{because}"


def yaml_error_line(err: yaml.YAMLError) -> str:
    """A YAML error on one line: ``line L, column C: problem`` (PyYAML's spans several)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        what = ": ".join(x for x in (err.context, err.problem) if x)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    return " ".join(str(err).split())


def read_variants(path: str | Path) -> LoadedVariants:
    """Read a variant YAML file and the base scenario (and plan) it points to."""
    from scenarios.io import load_scenario, read_plan
    from scenarios.io.json_io import read_bytes

    p = Path(path)
    try:  # read_bytes: a missing file or a folder is an InputError naming it
        text = read_bytes(p).decode("utf-8")
        if not text.strip():  # not "expected a mapping": there is nothing in it
            raise empty_input("a variants file", str(p))
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as err:  # a ValueError: it was a traceback
        raise InputError("yaml", f"not UTF-8 text (byte {err.start})", source=str(p)) from None
    except YamlNestingError:
        raise InputError("yaml", YAML_TOO_DEEP_REASON, source=str(p)) from None
    except yaml.YAMLError as err:
        raise InputError("yaml", f"not valid YAML: {yaml_error_line(err)}", source=str(p)) from None
    except RecursionError:  # PyYAML parses nested flow collections recursively
        raise InputError("yaml", YAML_TOO_DEEP_REASON, source=str(p)) from None
    if not isinstance(data, dict):
        raise InputError("(root)", "expected a mapping with base and variants", source=str(p))
    try:
        spec = VariantFile.model_validate(data)
    except ValidationError as err:
        raise input_error_from_validation(err, source=str(p)) from None
    base_path = (p.parent / spec.base).resolve()
    base = load_scenario(base_path)
    plan_path = (p.parent / spec.plan).resolve() if spec.plan else None
    plan = read_plan(plan_path) if plan_path is not None else None
    plan_source = str(plan_path) if plan_path is not None else None
    return LoadedVariants(spec, base, plan, str(p), plan_source=plan_source)


def apply_variant(
    scenario: Scenario,
    variant: Variant,
    *,
    seed: int,
    index: int = 0,
    source: str | None = None,
    max_orders: int | None = None,
) -> Scenario:
    """The scenario with the variant's modifiers applied in order (random parts use ``seed``).

    Errors name the field as ``variants.{index}.modifiers.{k}...``, ``index`` being the
    variant's position in the ``variants`` list. ``max_orders``: a demand modifier that
    would make more orders is an InputError on its ``factor`` (demand factors multiply: three
    x100 modifiers made a million orders of one hundred, in memory, before anything checked).
    """
    with collector_paused():  # a large scenario's copy is millions of objects (scenarios.bulk)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(99,)))
        data = scenario.model_dump(mode="python")
        added: dict[str, list[dict[str, Any]]] = {"node_outages": [], "travel_slowdowns": []}
        fleet_cap = len(scenario.vehicles) + MAX_ADDED_COURIERS
        for k, mod in enumerate(variant.modifiers):
            where = f"variants.{index}.modifiers.{k}"
            _apply(data, mod, rng, where, source, max_orders, added, fleet_cap)
        # A base read as stored data may keep times outside its horizon (scenarios.saved): the
        # variant keeps those it inherits, as stored, and is refused for any it brings itself.
        problems = scenario.times_outside_horizon()
        inherited = {_problem_key(*p) for p in problems}
        if problems:  # noted again by the validation below, at the variant's own paths
            data["source"]["notes"] = _without_notes(
                data["source"].get("notes"), [stored_time_note(*p) for p in problems]
            )
        try:
            result = Scenario.model_validate(
                data, context=saved_context(stored=True) if inherited else None
            )
        except ValidationError as err:
            e = input_error_from_validation(err)
            raise InputError(
                f"variants.{index}.modifiers",
                f"the modified scenario is invalid: {e.field}: {e.reason}",
                source=source,
            ) from None
    for path, reason in result.times_outside_horizon() if inherited else []:
        if _problem_key(path, reason) not in inherited:
            raise InputError(
                f"variants.{index}.modifiers",
                f"the modified scenario is invalid: {field_path(path)}: {reason}",
                source=source,
            )
    return result


def _described(value: Any) -> str:
    """A modifier field's value as a planner reads it: windows ``[start, end] s``, lists and
    mappings comma-separated."""
    if isinstance(value, dict):
        if set(value) == {"start_s", "end_s"}:
            return f"[{value['start_s']}, {value['end_s']}] s"
        return "{" + ", ".join(f"{k}: {_described(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_described(v) for v in value) + "]"
    return str(value)


def describe_variant(variant: Variant) -> str:
    """What a variant changes in the base, one modifier after the other (``travel_slowdown
    factor 1.3; fleet remove 2``); ``no modifiers`` for none."""
    parts = []
    for mod in variant.modifiers:
        fields = mod.model_dump(mode="json", exclude_defaults=True, exclude={"kind"})
        shown = ", ".join(f"{k} {_described(v)}" for k, v in fields.items())
        parts.append(f"{mod.kind} {shown}" if shown else mod.kind)
    return "; ".join(parts) if parts else "no modifiers (the base again)"


def variant_notes(variant: Scenario, base: Scenario) -> list[str]:
    """The lines of the variant's ``source.notes`` its modifiers wrote (each starting with the
    modifier's path ``variants.{i}.modifiers.{k}: ``, e.g. the copies a ``demand`` modifier
    did not make), those the base already had left out."""
    had = set((base.source.notes or "").split("; "))
    lines = (variant.source.notes or "").split("; ")
    return [x for x in lines if x.startswith("variants.") and x not in had]


def _without_notes(notes: str | None, drop: list[str]) -> str | None:
    """``notes`` (lines joined by ``; ``, as :meth:`Scenario._note_saved` writes them)
    without the lines ``drop``; None when none is left."""
    for note in drop:
        if notes is None:
            break
        if notes == note:
            notes = None
        elif notes.startswith(f"{note}; "):
            notes = notes[len(note) + 2 :]
        else:
            notes = notes.replace(f"; {note}", "", 1)
    return notes


def _problem_key(path: tuple[str | int, ...], reason: str) -> tuple[tuple[str, ...], str]:
    """A time outside the horizon without the list positions in its path (a variant that
    drops orders or vehicles moves the ones it keeps): the field and the reason, which names
    the times."""
    return tuple(p for p in path if isinstance(p, str)), reason


def _shifted_windows(
    windows: list[dict[str, int]], shift: int, horizon: dict[str, int]
) -> list[dict[str, int]] | None:
    """``windows`` moved by ``shift`` s; None when one of them would lie entirely outside the
    horizon (the scenario refuses such a window; it used to become ``[end, end]``, a copy due
    at the very end of the day: another order). One only partly outside is kept, as the
    scenario keeps it."""
    lo, hi = horizon["start_s"], horizon["end_s"]
    out: list[dict[str, int]] = []
    for w in windows:
        start, end = w["start_s"] + shift, w["end_s"] + shift
        if start > hi or end < lo:
            return None
        out.append({"start_s": start, "end_s": end})
    return out


def _task_ids(orders: list[dict[str, Any]]) -> set[str]:
    """Every task id of ``orders``: each order's and each pickup's (``<id>:pickup`` unless
    given)."""
    out: set[str] = set()
    for order in orders:
        out.add(order["id"])
        pickup = order.get("pickup")
        if pickup is not None:
            out.add(pickup["id"] if pickup.get("id") is not None else f"{order['id']}:pickup")
    return out


def _copy_task_ids(order: dict[str, Any], n: int | None) -> set[str]:
    """The task ids of copy ``n`` of ``order`` (:func:`copy_id`, and ``<copy id>:pickup`` for
    a shipment); ``n`` None: of ``order`` itself, already renamed."""
    oid = order["id"] if n is None else copy_id(order["id"], n)
    return {oid, f"{oid}:pickup"} if order.get("pickup") is not None else {oid}


def courier_kind(vehicle: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two couriers the same kind: what they carry (``capacity``), can do
    (``skills``, in any order) and cost (fixed, per km, per hour); not where or when they
    work."""
    return (
        tuple(vehicle.get("capacity") or ()),
        tuple(sorted(vehicle.get("skills") or ())),
        vehicle.get("fixed_cost_cents", 0),
        vehicle.get("cost_per_km_cents", 0),
        vehicle.get("cost_per_hour_cents", 0),
    )


def template_courier(vehicles: list[dict[str, Any]]) -> dict[str, Any]:
    """The courier a ``fleet`` modifier's ``add`` copies without ``copy_of``: the first
    courier of the most common kind (:func:`courier_kind`; a tie goes to the kind listed
    first)."""
    counts: dict[tuple[Any, ...], int] = {}
    for vehicle in vehicles:
        kind = courier_kind(vehicle)
        counts[kind] = counts.get(kind, 0) + 1
    most = max(counts.values())
    return next(v for v in vehicles if counts[courier_kind(v)] == most)


def _new_couriers(
    vehicles: list[dict[str, Any]],
    mod: FleetModifier,
    where: str,
    source: str | None,
    fleet_cap: int,
) -> list[dict[str, Any]]:
    """``mod.add`` copies of the courier to copy, with new ids ``<id>~<k>`` (k = 1, 2, ...,
    skipping ids the fleet has; :func:`copy_id` for a long id)."""
    if mod.copy_of is not None:
        found = [v for v in vehicles if v["id"] == mod.copy_of]
        if not found:
            reason = f"unknown vehicle {mod.copy_of!r} (not in the variant's fleet)"
            raise InputError(f"{where}.copy_of", reason, source=source)
        template = found[0]
    elif vehicles:
        template = template_courier(vehicles)
    else:
        raise InputError(
            f"{where}.add",
            "the fleet has no courier to copy; give the base scenario one",
            source=source,
        )
    if len(vehicles) + mod.add > fleet_cap:
        raise InputError(
            f"{where}.add",
            f"makes {len(vehicles) + mod.add} couriers ({len(vehicles)} + {mod.add}); a "
            f"variant may add at most {MAX_ADDED_COURIERS} to the base's "
            f"{fleet_cap - MAX_ADDED_COURIERS}",
            source=source,
        )
    taken = {v["id"] for v in vehicles}
    out: list[dict[str, Any]] = []
    n = 0
    while len(out) < mod.add:
        n += 1
        new_id = copy_id(template["id"], n)
        if new_id in taken:
            continue
        taken.add(new_id)
        out.append({**copy_module.deepcopy(template), "id": new_id})
    return out


def _in_window(t: int, window: TimeWindow | None) -> bool:
    return window is None or window.start_s <= t <= window.end_s


def _apply(
    data: dict[str, Any],
    mod: Modifier,
    rng: np.random.Generator,
    where: str,
    source: str | None,
    max_orders: int | None,
    added: dict[str, list[dict[str, Any]]],
    fleet_cap: int,
) -> None:
    """Apply one modifier to ``data`` in place. ``added``: the outages and slowdowns earlier
    modifiers of the variant added, which a ``stochastic`` modifier's values keep;
    ``fleet_cap``: the most couriers the variant may have (the base's + MAX_ADDED_COURIERS)."""
    nodes = data["nodes"]
    node_ids = {n["id"] for n in nodes}

    def check_nodes(ids: list[str], field: str = "node_ids", suffix: str = "") -> None:
        for i, nid in enumerate(ids):
            if nid not in node_ids:
                at = f"{where}.{field}.{i}{suffix}"
                raise InputError(at, f"unknown node {nid!r}", source=source)

    window = getattr(mod, "window", None)
    h_lo, h_hi = data["horizon"]["start_s"], data["horizon"]["end_s"]
    # a demand window before the horizon still copies or drops the orders created then
    before = window is not None and window.end_s < h_lo and isinstance(mod, DemandModifier)
    if window is not None and not before and (window.end_s < h_lo or window.start_s > h_hi):
        raise InputError(
            f"{where}.window",
            f"the window [{window.start_s}, {window.end_s}] s lies entirely outside the "
            f"horizon [{h_lo}, {h_hi}] s: the {mod.kind} modifier would have no effect",
            source=source,
        )

    if isinstance(mod, DemandModifier):
        orders = data["orders"]
        arrivals = data.get("arrivals")
        if arrivals is not None and not arrivals.get("templates") and mod.factor != 1.0:
            # the arrivals were drawn from the listed orders: they still are from the base's
            # (dropping orders changed their mix, copies weighed it, none left none to draw)
            arrivals["templates"] = copy_module.deepcopy(orders)
        inside = [i for i, o in enumerate(orders) if _in_window(o.get("created_s", 0), mod.window)]
        # the window's n orders become n x factor, to the nearest order (halves up)
        target = scaled_count(len(inside), mod.factor)
        if mod.factor < 1.0:
            drop = (
                set(rng.choice(inside, size=len(inside) - target, replace=False).tolist())
                if inside
                else set()
            )
            data["orders"] = [o for i, o in enumerate(orders) if i not in drop]
        elif mod.factor > 1.0 and inside:
            extra = target - len(inside)
            if max_orders is not None and len(orders) + extra > max_orders:
                raise InputError(
                    f"{where}.factor",
                    f"makes {len(orders) + extra} orders ({len(orders)} + {extra} copies); at "
                    f"most {max_orders} per request",
                    source=source,
                )
            # copies are created inside the window, not after the horizon end (such an order
            # would never be released, and is refused)
            lo = mod.window.start_s if mod.window is not None else None
            hi = min(mod.window.end_s, h_hi) if mod.window is not None else None
            taken = _task_ids(orders)  # order and pickup ids share one namespace
            outside = 0  # copies not made: a window of theirs moved outside the horizon
            for k, i in enumerate(rng.choice(inside, size=extra, replace=True).tolist()):
                copy = copy_module.deepcopy(orders[i])
                created = copy.get("created_s", 0)
                if lo is not None and hi is not None:
                    created = int(rng.integers(lo, hi + 1))
                shift = created - copy.get("created_s", 0)
                windows = _shifted_windows(copy.get("time_windows", []), shift, data["horizon"])
                pickup = copy.get("pickup")
                pickup_windows = (
                    _shifted_windows(pickup.get("time_windows", []), shift, data["horizon"])
                    if pickup is not None
                    else []
                )
                if windows is None or pickup_windows is None:
                    outside += 1
                    continue
                n = k
                while _copy_task_ids(copy, n) & taken:  # a copy made by an earlier modifier
                    n += 1
                copy["id"] = copy_id(copy["id"], n)
                taken |= _copy_task_ids(copy, None)
                copy["created_s"] = created
                copy["time_windows"] = windows
                if pickup is not None:  # a shipment stays one, from the same place
                    pickup["id"] = None  # its task id is <copy id>:pickup, as an arrival's
                    pickup["time_windows"] = pickup_windows
                orders.append(copy)
            if outside:
                note = (
                    f"{where}: {outside} of {extra} copies not made: a delivery or pickup "
                    "window of theirs, moved with the copy's creation time, would lie "
                    f"entirely outside the horizon [{h_lo}, {h_hi}] s"
                )
                notes = data["source"].get("notes")
                data["source"]["notes"] = f"{notes}; {note}" if notes else note
        if arrivals is not None and not before:  # a surge before the horizon: no effect
            arrivals.setdefault("surges", []).append(
                DemandSurge(factor=mod.factor, window=mod.window).model_dump()
            )
    elif isinstance(mod, NodeClosedModifier):
        if mod.node_id not in node_ids:
            raise InputError(f"{where}.node_id", f"unknown node {mod.node_id!r}", source=source)
        outage = NodeOutage(node_id=mod.node_id, window=mod.window).model_dump()
        data["stochastic"].setdefault("node_outages", []).append(outage)
        added["node_outages"].append(outage)
    elif isinstance(mod, FleetModifier):
        vehicles = data["vehicles"]
        if mod.vehicle_ids:
            known = {v["id"] for v in vehicles}
            for i, vid in enumerate(mod.vehicle_ids):
                if vid not in known:
                    raise InputError(
                        f"{where}.vehicle_ids.{i}", f"unknown vehicle {vid!r}", source=source
                    )
            gone = set(mod.vehicle_ids)
            if len(gone) >= len(vehicles):  # as ``remove`` is: no courier left
                raise InputError(
                    f"{where}.vehicle_ids",
                    f"cannot remove all {len(vehicles)} couriers (keep at least one)",
                    source=source,
                )
            data["vehicles"] = [v for v in vehicles if v["id"] not in gone]
        elif mod.remove:
            if mod.remove >= len(vehicles):
                raise InputError(
                    f"{where}.remove",
                    f"cannot remove {mod.remove} of {len(vehicles)} couriers",
                    source=source,
                )
            data["vehicles"] = vehicles[: len(vehicles) - mod.remove]
        elif mod.add:
            data["vehicles"] = [*vehicles, *_new_couriers(vehicles, mod, where, source, fleet_cap)]
    elif isinstance(mod, TravelSlowdownModifier):
        slowdown = Slowdown(factor=mod.factor, window=mod.window).model_dump()
        data["stochastic"].setdefault("travel_slowdowns", []).append(slowdown)
        added["travel_slowdowns"].append(slowdown)
    elif isinstance(mod, PickTimeModifier):
        check_nodes(mod.node_ids)
        chosen = set(mod.node_ids) or node_ids
        for node in nodes:
            if node["id"] in chosen:
                for key in ("pick_time_s_per_line", "pack_time_s_per_order", "processing_s"):
                    node[key] = round(node.get(key, 0) * mod.factor)
    elif isinstance(mod, StockShockModifier):
        check_nodes(mod.node_ids)
        catalogue = {sku["id"] for sku in data.get("skus", [])}
        for i, sku in enumerate(mod.skus):
            if catalogue and sku not in catalogue:
                raise InputError(f"{where}.skus.{i}", f"unknown SKU {sku!r}", source=source)
        chosen = set(mod.node_ids) or node_ids
        skus = set(mod.skus)
        # the factor as written: 100 x 0.29 is 28.999999999999996 in floats, floored to 28
        factor = Fraction(repr(mod.factor))
        for node in nodes:
            if node["id"] in chosen:
                node["inventory"] = {
                    sku: (math.floor(q * factor) if not skus or sku in skus else q)
                    for sku, q in node.get("inventory", {}).items()
                }
    elif isinstance(mod, StochasticModifier):
        merged = {**data["stochastic"], **mod.values}
        for key, entries in added.items():  # values replace the base's, not a modifier's
            if entries and isinstance(mod.values.get(key), list):
                merged[key] = [*mod.values[key], *entries]
        try:
            data["stochastic"] = StochasticParams.model_validate(merged).model_dump()
        except ValidationError as err:
            e = input_error_from_validation(err, source=source)
            raise InputError(f"{where}.values.{e.field}", e.reason, source=source) from None
        given = mod.values.get("node_outages")
        if isinstance(given, list):  # the twin refused it in the job, naming the base's field
            outages = data["stochastic"]["node_outages"][: len(given)]  # the modifier's first
            check_nodes([o["node_id"] for o in outages], "values.node_outages", ".node_id")
