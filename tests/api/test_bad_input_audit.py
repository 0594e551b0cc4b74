"""Adversarial bodies on every POST endpoint: 4xx with a JSON body naming the field, never a
500 (session 45's audit)."""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from pydantic.functional_validators import BeforeValidator

from api.core.config import Settings
from api.examples import (
    ALLOCATION_EXAMPLE,
    PLAN_EXAMPLE,
    POLICY_EXAMPLE,
    ROUTES_EXAMPLE,
    SIMULATION_EXAMPLE,
    WHATIF_EXAMPLE,
)
from api.schemas.allocations import AllocationCreate
from api.schemas.common import KeyCreate
from api.schemas.plans import PlanCreate, ReoptimiseCreate
from api.schemas.policies import PolicyEvaluationCreate
from api.schemas.routes import RoutesCreate
from api.schemas.simulations import SimulationCreate, WhatIfCreate
from scenarios.geo import BLANK_REASON as BLANK
from scenarios.geo import BOOL_REASON as FLAG_REASON
from scenarios.geo import _bool_input, _float_input, _int_input, not_bool
from scenarios.model import Scenario
from scenarios.variants import VariantFile
from solvers.allocation import AllocationRequest

POSTS = [
    "/v1/allocations",
    "/v1/routes",
    "/v1/plans",
    "/v1/plans/p1/reoptimise",
    "/v1/simulations",
    "/v1/whatif",
    "/v1/policies/evaluate",
    "/v1/keys",
]
#: a NUL escape sends the body through the middleware's NUL search, whose ``json.loads``
#: raised RecursionError on arrays nested too deeply: a 500 before the JSON errors' 422
DEEP_WITH_NUL = [
    b"[" * 5_000 + b'"\\u0000"' + b"]" * 5_000,
    b'{"a": "\\u0000", "b": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
]


@pytest.mark.shares_service
@pytest.mark.parametrize("body", DEEP_WITH_NUL, ids=["nul-inside", "nul-beside"])
@pytest.mark.parametrize("path", POSTS)
def test_a_body_nested_too_deeply_with_a_nul_is_422_on_the_body(
    client: TestClient, keys: dict[str, dict[str, str]], path: str, body: bytes
) -> None:
    headers = {**keys["admin"], "Content-Type": "application/json"}
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "(body)", "reason": "not valid JSON: arrays or objects nested too deeply"}
    ]


#: every model a body or an input file is read into
INPUT_MODELS: list[type[BaseModel]] = [
    AllocationCreate,
    RoutesCreate,
    PlanCreate,
    ReoptimiseCreate,
    SimulationCreate,
    WhatIfCreate,
    PolicyEvaluationCreate,
    KeyCreate,
    Scenario,
    VariantFile,
    AllocationRequest,
]


def _numbers_taking_bools(model: type[BaseModel]) -> list[str]:
    """``Model.field`` of every int or float (alone, optional, or in a list or dict) of
    ``model`` and the models below it that has no :data:`~scenarios.geo.NotBool`."""
    seen: set[type[BaseModel]] = set()
    found: list[str] = []

    def walk_type(t: Any, where: str, meta: tuple[Any, ...]) -> None:
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            base, *more = typing.get_args(t)
            walk_type(base, where, (*meta, *more))
        elif t in (int, float):
            if not any(isinstance(m, BeforeValidator) and m.func is not_bool for m in meta):
                found.append(where)
        elif isinstance(t, type) and issubclass(t, BaseModel):
            walk_model(t)
        elif origin is not None and origin is not typing.Literal:
            union = origin in (typing.Union, types.UnionType)
            for arg in typing.get_args(t):
                if arg is not Ellipsis:
                    walk_type(arg, where, meta if union else ())

    def walk_model(m: type[BaseModel]) -> None:
        if m not in seen:
            seen.add(m)
            for name, field in m.model_fields.items():
                walk_type(field.annotation, f"{m.__name__}.{name}", tuple(field.metadata))

    walk_model(model)
    return found


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda m: m.__name__)
def test_every_number_of_an_input_model_refuses_true_and_false(model: type[BaseModel]) -> None:
    """JSON ``true`` is no number: pydantic takes it as 1 (a time limit of 1 s, a latitude
    of 1 degree) unless the field has NotBool, as most had (``must be a number, not true or
    false``); a coordinate, a simulation or allocation parameter, a stochastic rate had not."""
    assert _numbers_taking_bools(model) == []


def _lax_numbers(schema: Any, checked: bool = False, key: bool = False) -> int:
    """How many int and float schemas in the core ``schema`` (a mapping's keys aside) no
    check refusing a string runs before (:func:`scenarios.geo._numbers_strict`)."""
    if isinstance(schema, list):
        return sum(_lax_numbers(item) for item in schema)
    if not isinstance(schema, dict):
        return 0
    kind = schema.get("type")
    if kind in ("int", "float"):
        return 0 if checked or key else 1
    found = 0
    for name, value in schema.items():
        if name in ("metadata", "serialization", "default"):
            continue
        inner_checked = (
            kind == "function-before"
            and name == "schema"
            and schema["function"]["function"] in (_int_input, _float_input)
        )
        found += _lax_numbers(value, inner_checked, key=name == "keys_schema")
    return found


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda m: m.__name__)
def test_every_number_of_an_input_model_refuses_a_string(model: type[BaseModel]) -> None:
    """pydantic's lax mode read ``"3"`` as 3 (a count, a time, a price, a coordinate):
    an integration's serialisation bug went unseen. Every number is checked for one."""
    assert _lax_numbers(model.__pydantic_core_schema__) == 0


INT_REASON = "Input should be a valid integer"
FLOAT_REASON = "Input should be a valid number"


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "body", "field", "value", "reason"),
    [
        ("/v1/routes", ROUTES_EXAMPLE["small"], "scenario.orders.0.service_s", "60", INT_REASON),
        ("/v1/routes", ROUTES_EXAMPLE["small"], "scenario.orders.0.demand.0", "3", INT_REASON),
        (
            "/v1/routes",
            ROUTES_EXAMPLE["small"],
            "scenario.orders.0.location.x",
            "1.5",
            FLOAT_REASON,
        ),
        ("/v1/routes", ROUTES_EXAMPLE["small"], "params.time_limit_s", "2", FLOAT_REASON),
        # a Location is shared by several models: every place of it is checked
        (
            "/v1/routes",
            ROUTES_EXAMPLE["small"],
            "scenario.vehicles.0.start_location.x",
            "0",
            FLOAT_REASON,
        ),
        ("/v1/routes", ROUTES_EXAMPLE["small"], "params.seed", "7", INT_REASON),
        (
            "/v1/allocations",
            ALLOCATION_EXAMPLE["online"],
            "request.orders.0.lines.0.quantity",
            "3",
            INT_REASON,
        ),
        ("/v1/plans", PLAN_EXAMPLE["small"], "evaluation.replications", "20", INT_REASON),
        ("/v1/plans", PLAN_EXAMPLE["small"], "scenario.horizon.end_s", "28800", INT_REASON),
        (
            "/v1/simulations",
            SIMULATION_EXAMPLE["small"],
            "scenario.stochastic.travel_time_cv",
            "0.2",
            FLOAT_REASON,
        ),
        ("/v1/whatif", WHATIF_EXAMPLE["small"], "variants.1.modifiers.0.factor", "2", FLOAT_REASON),
    ],
)
def test_a_number_given_as_a_string_is_422_naming_its_field(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    body: dict[str, Any],
    field: str,
    value: Any,
    reason: str,
) -> None:
    """``"quantity": "3"`` was read as 3 without a word: a demanding OMS integration wants
    its serialisation bugs to surface. A number given as a string is a 422 naming the field,
    in pydantic's words for a wrong type; an int is still a float (``"time_limit_s": 2``)."""
    answer = client.post(path, json=_set(body["value"], field, value), headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem == {"field": field, "reason": reason}


def test_numbers_keep_the_rest_of_lax_mode() -> None:
    """Only strings (and bools) are refused: ``3.0`` is still an int, ``2`` a float, and a
    numpy integer (made in process) an int."""
    import numpy as np

    from scenarios.geo import Location, TimeWindow

    window = TimeWindow.model_validate({"start_s": 3.0, "end_s": np.int64(60)})
    assert (window.start_s, window.end_s) == (3, 60)
    assert (
        Scenario.model_validate(
            {
                "vehicles": [{"id": "v", "start_location": {"x": 2, "y": 0}}],
                "orders": [{"id": "o", "location": {"x": 1, "y": 1}, "service_s": 60.0}],
            }
        )
        .orders[0]
        .service_s
        == 60
    )
    assert Location.model_validate({"x": 2, "y": 3}).x == 2.0


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *head, last = path.split(".")
    inner: Any = out
    for part in head:
        inner = inner[int(part)] if isinstance(inner, list) else inner.setdefault(part, {})
    if isinstance(inner, list):
        inner[int(last)] = value
    else:
        inner[last] = value
    return out


BOOL_REASON = "must be a number, not true or false"


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "body", "field", "value", "reason"),
    [
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "params.time_limit_s", True, BOOL_REASON),
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "params.mip_rel_gap", True, BOOL_REASON),
        (
            "/v1/allocations",
            ALLOCATION_EXAMPLE["online"],
            "request.orders.0.location.lat",
            True,
            BOOL_REASON,
        ),
        ("/v1/routes", ROUTES_EXAMPLE["small"], "scenario.orders.0.location.x", False, BOOL_REASON),
        (
            "/v1/simulations",
            SIMULATION_EXAMPLE["small"],
            "params.max_overtime_s",
            True,
            BOOL_REASON,
        ),
        (
            "/v1/simulations",
            SIMULATION_EXAMPLE["small"],
            "scenario.stochastic.travel_time_cv",
            True,
            BOOL_REASON,
        ),
        ("/v1/whatif", WHATIF_EXAMPLE["small"], "variants.1.modifiers.0.factor", True, BOOL_REASON),
        ("/v1/plans", PLAN_EXAMPLE["small"], "evaluation.replications", True, BOOL_REASON),
        (
            "/v1/policies/evaluate",
            POLICY_EXAMPLE["standard"],
            "hindsight_iterations",
            True,
            BOOL_REASON,
        ),
        # np.arange(rows) % k raised OverflowError in both the solver and its fallback: a 503
        (
            "/v1/routes",
            ROUTES_EXAMPLE["small"],
            "scenario.travel",
            {"kind": "road_network", "grid": {"rows": 5, "cols": 5, "arterial_every": 10**30}},
            "Input should be less than or equal to 1000000000000",
        ),
        (
            "/v1/routes",
            ROUTES_EXAMPLE["small"],
            "scenario.travel",
            {"kind": "road_network", "grid": {"rows": 5, "cols": 5, "origin_x": 1e300}},
            "Input should be less than or equal to 1000000000",
        ),
    ],
)
def test_a_bad_number_is_422_naming_its_field(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    body: dict[str, Any],
    field: str,
    value: Any,
    reason: str,
) -> None:
    answer = client.post(path, json=_set(body["value"], field, value), headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"].startswith(field)
    assert problem["reason"] == reason


def _raw_bounds(schema: Any, path: str = "") -> list[str]:
    """Paths of the schema's objects with ``ge``/``le``/``gt``/``lt`` keys: a Field's bounds
    that pydantic could not apply to the type (it left them as extra keys, unchecked)."""
    if isinstance(schema, dict):
        found = [path] if {"ge", "le", "gt", "lt"} & set(schema) else []
        return found + [p for k, v in schema.items() for p in _raw_bounds(v, f"{path}/{k}")]
    if isinstance(schema, list):
        return [p for i, v in enumerate(schema) for p in _raw_bounds(v, f"{path}/{i}")]
    return []


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda m: m.__name__)
def test_every_bound_of_an_input_model_is_applied(model: type[BaseModel]) -> None:
    """``Annotated[float, NotBool] | None = Field(ge=..., le=...)`` drops the bounds (a
    latitude of 1e300 was taken): bounds go inside the Annotated, beside NotBool."""
    assert _raw_bounds(model.model_json_schema()) == []


EMPTY_REASON = "String should have at least 1 character"


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "body", "field", "value", "reason"),
    [
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "request.orders.0.region", "", None),
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "request.orders.0.region", "  ", None),
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "request.nodes.0.region", " ", None),
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "request.orders.0.id", " ", None),
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "request.nodes.0.id", "\u00a0", None),
        (
            "/v1/allocations",
            ALLOCATION_EXAMPLE["online"],
            "request.orders.0.lines.0.sku",
            " ",
            None,
        ),
        ("/v1/routes", ROUTES_EXAMPLE["small"], "scenario.orders.0.id", "   ", None),
        ("/v1/routes", ROUTES_EXAMPLE["small"], "scenario.vehicles.0.id", " ", None),
        ("/v1/routes", ROUTES_EXAMPLE["small"], "scenario.orders.0.region", "", None),
        ("/v1/plans", PLAN_EXAMPLE["small"], "scenario.orders.0.region", " ", None),
        ("/v1/plans", PLAN_EXAMPLE["small"], "scenario.nodes.0.region", "", None),
        ("/v1/plans", PLAN_EXAMPLE["small"], "scenario.nodes.0.id", " ", None),
        ("/v1/plans", PLAN_EXAMPLE["small"], "scenario.skus", [{"id": " "}], "scenario.skus.0.id"),
        (
            "/v1/plans",
            PLAN_EXAMPLE["small"],
            "scenario.skus",
            [{"id": "a", "restricted_regions": [" "]}],
            "scenario.skus.0.restricted_regions.0",
        ),
        (
            "/v1/allocations",
            ALLOCATION_EXAMPLE["online"],
            "request.rules.restricted_skus",
            {"a": [" "]},
            "request.rules.restricted_skus.a.0",
        ),
        (
            "/v1/allocations",
            ALLOCATION_EXAMPLE["online"],
            "request.rules.excluded_nodes",
            {" ": []},
            "request.rules.excluded_nodes. ",
        ),
        (
            "/v1/allocations",
            ALLOCATION_EXAMPLE["online"],
            "request.nodes.0.inventory",
            {"  ": 3},
            "request.nodes.0.inventory.  ",
        ),
    ],
)
def test_a_blank_id_or_region_is_422_naming_its_field(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    body: dict[str, Any],
    field: str,
    value: Any,
    reason: str | None,
) -> None:
    """A region, or an order, node, SKU or vehicle id, of whitespace only (``" "``) was
    accepted as a real one (a region ``""`` too): a 422 naming the field, since session 77.
    ``reason`` here: the field named, where it is not ``field`` itself (a list, a key)."""
    from scenarios.geo import BLANK_REASON

    answer = client.post(path, json=_set(body["value"], field, value), headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem == {
        "field": reason or field,
        "reason": EMPTY_REASON if value == "" else BLANK_REASON,
    }


def _lax_flags(schema: Any, checked: bool = False) -> int:
    """How many bool schemas in the core ``schema`` no check refusing a string or a number
    (:func:`scenarios.geo._bool_input`) runs before."""
    if isinstance(schema, list):
        return sum(_lax_flags(item) for item in schema)
    if not isinstance(schema, dict):
        return 0
    kind = schema.get("type")
    if kind == "bool":
        return 0 if checked else 1
    found = 0
    for name, value in schema.items():
        if name in ("metadata", "serialization", "default"):
            continue
        inner_checked = (
            kind == "function-before"
            and name == "schema"
            and schema["function"]["function"] is _bool_input
        )
        found += _lax_flags(value, inner_checked)
    return found


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda m: m.__name__)
def test_every_flag_of_an_input_model_refuses_a_string_or_a_number(
    model: type[BaseModel],
) -> None:
    """pydantic's lax mode read ``"false"``, ``"no"``, ``"0"`` and ``0`` as False (``"yes"``
    and ``1`` as True): an OMS sending its flags as text had a bug nobody saw."""
    assert _lax_flags(model.__pydantic_core_schema__) == 0


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "body", "field", "value"),
    [
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "params.explain", "false"),
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "params.shadow_prices", "yes"),
        ("/v1/allocations", ALLOCATION_EXAMPLE["online"], "params.explain", 0),
        ("/v1/routes", ROUTES_EXAMPLE["small"], "scenario.stochastic.use_travel_profile", "1"),
        (
            "/v1/simulations",
            SIMULATION_EXAMPLE["small"],
            "scenario.stochastic.use_travel_profile",
            1,
        ),
        ("/v1/plans", PLAN_EXAMPLE["small"], "allocation.explain", "true"),
    ],
)
def test_a_flag_given_as_a_string_or_a_number_is_422_naming_its_field(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    body: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    """A flag must be JSON ``true`` or ``false``: ``"false"`` was read as False and ``"yes"``
    as True without a word (an OMS's serialisation bug), now a 422 naming the field."""
    answer = client.post(path, json=_set(body["value"], field, value), headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [{"field": field, "reason": FLAG_REASON}]


def test_flags_given_as_booleans_still_read() -> None:
    """Files and bodies that used real booleans keep working: JSON ``true``/``false``, and a
    Python or numpy bool made in process."""
    import numpy as np

    from scenarios.stochastic import StochasticParams
    from solvers.allocation.params import AllocationParams

    assert StochasticParams.model_validate_json('{"use_travel_profile": false}') == (
        StochasticParams(use_travel_profile=False)
    )
    params = AllocationParams.model_validate({"explain": np.bool_(False), "shadow_prices": True})
    assert (params.explain, params.shadow_prices) == (False, True)


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("field", "skills", "at", "reason"),
    [
        ("scenario.vehicles.0.skills", [""], 0, EMPTY_REASON),
        ("scenario.vehicles.0.skills", ["bike", " "], 1, BLANK),
        ("scenario.orders.0.required_skills", ["\u00a0 "], 0, BLANK),
        ("scenario.orders.0.required_skills", ["x" * 201], 0, "String should have at most 200"),
        ("scenario.capacity_dims", [" "], 0, BLANK),
    ],
)
def test_a_blank_skill_is_422_naming_it(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    field: str,
    skills: list[str],
    at: int,
    reason: str,
) -> None:
    """A skill ``""`` or ``" "`` was taken as a real one (an order needing it served by no
    vehicle but one listing the same blank): skills are ids, refused as blank ids are; so
    are the names of the capacity dimensions (``capacity_dims: [" "]`` was a dimension)."""
    body = _set(ROUTES_EXAMPLE["small"]["value"], field, skills)
    answer = client.post("/v1/routes", json=body, headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == f"{field}.{at}"
    assert problem["reason"].startswith(reason)


def _many_windows(n: int) -> list[dict[str, int]]:
    return [{"start_s": 10 * i, "end_s": 10 * i + 5} for i in range(n)]


def _many_breaks(n: int) -> list[dict[str, Any]]:
    return [{"window": {"start_s": 10 * i, "end_s": 10 * i + 5}, "duration_s": 1} for i in range(n)]


@pytest.mark.parametrize(
    ("path", "body", "field", "value", "reason"),
    [
        (
            "/v1/routes",
            ROUTES_EXAMPLE["small"],
            "scenario.orders.1.time_windows",
            _many_windows(4),
            "4 time windows; at most 3 per order (max_time_windows)",
        ),
        (
            "/v1/routes",
            ROUTES_EXAMPLE["small"],
            "scenario.orders.2.pickup",
            {"location": {"x": 0, "y": 0}, "time_windows": _many_windows(5)},
            "5 time windows; at most 3 per pickup (max_time_windows)",
        ),
        (
            "/v1/routes",
            ROUTES_EXAMPLE["small"],
            "scenario.vehicles.1.breaks",
            _many_breaks(3),
            "3 breaks; at most 2 per vehicle (max_breaks)",
        ),
        (
            "/v1/plans",
            PLAN_EXAMPLE["small"],
            "scenario.orders.0.time_windows",
            _many_windows(4),
            "4 time windows; at most 3 per order (max_time_windows)",
        ),
        (
            "/v1/plans",
            PLAN_EXAMPLE["small"],
            "scenario.vehicles.0.breaks",
            _many_breaks(3),
            "3 breaks; at most 2 per vehicle (max_breaks)",
        ),
        (
            "/v1/simulations",
            SIMULATION_EXAMPLE["small"],
            "scenario.orders.3.time_windows",
            _many_windows(4),
            "4 time windows; at most 3 per order (max_time_windows)",
        ),
        (
            "/v1/simulations",
            SIMULATION_EXAMPLE["small"],
            "scenario.vehicles.0.breaks",
            _many_breaks(3),
            "3 breaks; at most 2 per vehicle (max_breaks)",
        ),
    ],
)
def test_windows_and_breaks_past_their_cap_are_422_naming_the_field_and_the_setting(
    settings: Settings,
    make_client: Callable[..., TestClient],
    path: str,
    body: dict[str, Any],
    field: str,
    value: Any,
    reason: str,
) -> None:
    """An order's time windows and a vehicle's breaks were not counted: a body of 300,000
    windows on one order held a worker while the solver modelled each. The field named is
    the list (the pickup's windows for a pickup)."""
    capped = Settings(
        **{
            **settings.model_dump(),
            "max_time_windows": 3,
            "max_breaks": 2,
            "auth_enabled": False,
        }
    )
    answer = make_client(capped).post(path, json=_set(body["value"], field, value))
    assert answer.status_code == 422, answer.text
    named = f"{field}.time_windows" if field.endswith("pickup") else field
    assert answer.json()["detail"] == [{"field": named, "reason": reason}]


def _dimensions(body: dict[str, Any], n: int) -> dict[str, Any]:
    """``body`` with its scenario's ``n`` capacity dimensions: ``units`` and ``n - 1`` more,
    every vehicle's capacity and every order's demand given one value per dimension."""
    out = copy.deepcopy(body)
    scenario = out["scenario"]
    dims = len(scenario.get("capacity_dims", ["units"]))
    scenario["capacity_dims"] = ["units", *(f"dim-{k}" for k in range(1, n))]
    for vehicle in scenario["vehicles"]:
        if vehicle.get("capacity"):
            vehicle["capacity"] = [*vehicle["capacity"][:dims], *[10] * (n - dims)]
    for order in scenario["orders"]:
        if order.get("demand"):
            order["demand"] = [*order["demand"][:dims], *[0] * (n - dims)]
    return out


#: a job (202) whatever its size: its mode is not asked
_QUEUED = {"mode": "async"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/routes", {**ROUTES_EXAMPLE["small"]["value"], **_QUEUED}),
        ("/v1/plans", {**PLAN_EXAMPLE["small"]["value"], **_QUEUED}),
        ("/v1/simulations", {**SIMULATION_EXAMPLE["small"]["value"], "replications": 2}),
        (
            "/v1/policies/evaluate",
            {
                "scenario": SIMULATION_EXAMPLE["small"]["value"]["scenario"],
                "policies": ["insertion"],
                "seeds": [1],
            },
        ),
        ("/v1/whatif", {**WHATIF_EXAMPLE["small"]["value"], "replications": 2}),
    ],
)
def test_capacity_dimensions_past_their_cap_are_422_naming_the_list_and_the_setting(
    settings: Settings,
    make_client: Callable[..., TestClient],
    path: str,
    body: dict[str, Any],
) -> None:
    """The capacity dimensions were not counted (the other lists of a scenario were): a
    scenario of thousands of them fit in the body limit, and the router modelled each. At
    the cap the request is answered as before."""
    capped = Settings(**{**settings.model_dump(), "max_capacity_dims": 2, "auth_enabled": False})
    client = make_client(capped)
    answer = client.post(path, json=_dimensions(body, 3))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {
            "field": "scenario.capacity_dims",
            "reason": "3 capacity dimensions; at most 2 per scenario (max_capacity_dims)",
        }
    ]
    at_cap = client.post(path, json=_dimensions(body, 2))
    assert at_cap.status_code == 202, at_cap.text


@pytest.mark.parametrize(
    ("path", "body", "field", "per"),
    [
        ("/v1/routes", ROUTES_EXAMPLE["small"]["value"], "scenario.vehicles.1.skills", "vehicle"),
        ("/v1/plans", PLAN_EXAMPLE["small"]["value"], "scenario.orders.2.required_skills", "order"),
        (
            "/v1/simulations",
            SIMULATION_EXAMPLE["small"]["value"],
            "scenario.vehicles.0.skills",
            "vehicle",
        ),
    ],
)
def test_skills_past_their_cap_are_422_naming_the_list_and_the_setting(
    settings: Settings,
    make_client: Callable[..., TestClient],
    path: str,
    body: dict[str, Any],
    field: str,
    per: str,
) -> None:
    """Skills were not counted: a million skills on one courier (10 MB) held a synchronous
    route of a 1 s time limit 10 s."""
    capped = Settings(**{**settings.model_dump(), "max_skills": 2, "auth_enabled": False})
    answer = make_client(capped).post(path, json=_set(body, field, ["a", "b", "c"]))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": field, "reason": f"3 skills; at most 2 per {per} (max_skills)"}
    ]


def _past_caps(body: dict[str, Any], where: str | None, key: str, n: int) -> dict[str, Any]:
    """``body`` with ``n`` copies of the first item of its ``where.key`` list (``key`` of
    the body itself for None; orders with ids of their own), the last of them holding a
    field no model takes."""
    out = copy.deepcopy(body)
    part = out[where] if where is not None else out
    first = part[key][0]
    part[key] = [{**first, "id": f"x{i}"} for i in range(n)]
    part[key][-1]["not_a_field"] = 1
    return out


@pytest.mark.parametrize(
    ("path", "body", "where", "key", "cap", "status", "reason"),
    [
        (
            "/v1/routes",
            ROUTES_EXAMPLE["small"]["value"],
            "scenario",
            "orders",
            {"max_orders": 3},
            413,
            "scenario.orders: 5 orders; at most 3 per request",
        ),
        (
            "/v1/allocations",
            ALLOCATION_EXAMPLE["online"]["value"],
            "request",
            "orders",
            {"max_orders": 3},
            413,
            "request.orders: 5 orders; at most 3 per request",
        ),
        (  # counted before the stored plan is looked for: none is
            "/v1/plans/p-none/reoptimise",
            {"now_s": 0, "new_orders": [{"id": "n", "location": {"x": 0, "y": 0}}]},
            None,
            "new_orders",
            {"max_orders": 3},
            413,
            "new_orders: 5 orders; at most 3 per request",
        ),
        (
            "/v1/plans",
            PLAN_EXAMPLE["small"]["value"],
            "scenario",
            "nodes",
            {"max_nodes": 3},
            422,
            "scenario.nodes: 5 nodes; at most 3 per request (max_nodes)",
        ),
        (
            "/v1/simulations",
            SIMULATION_EXAMPLE["small"]["value"],
            "scenario",
            "vehicles",
            {"max_vehicles": 3},
            422,
            "scenario.vehicles: 5 vehicles; at most 3 per request (max_vehicles)",
        ),
    ],
)
def test_a_list_past_its_cap_is_answered_before_the_body_is_validated(
    settings: Settings,
    make_client: Callable[..., TestClient],
    path: str,
    body: dict[str, Any],
    where: str | None,
    key: str,
    cap: dict[str, int],
    status: int,
    reason: str,
) -> None:
    """The caps were checked on the validated body: a body of 60,000 orders (7 MB, under the
    body limit) was validated whole, 2.4 s of a worker, before its 413. They are counted
    on the parsed JSON first: a body past a cap gets the cap's answer, not the 422 of a field
    deep inside it its validation would have found first."""
    capped = Settings(**{**settings.model_dump(), **cap, "auth_enabled": False})
    answer = make_client(capped).post(path, json=_past_caps(body, where, key, 5))
    assert answer.status_code == status, answer.text
    assert answer.json()["message"] == reason


@pytest.mark.shares_service
def test_a_422_lists_the_first_100_bad_fields_and_counts_them_all(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Every bad field was listed: 20,000 orders each missing their location were answered
    20,000 entries (1.3 MB)."""
    body = copy.deepcopy(ROUTES_EXAMPLE["small"]["value"])
    body["scenario"]["orders"] = [{"id": f"x{i}"} for i in range(150)]
    answer = client.post("/v1/routes", json=body, headers=keys["oms"])
    assert answer.status_code == 422, answer.text
    got = answer.json()
    assert got["message"] == (
        "scenario.orders.0.location: Field required (and 149 more; the first 100 listed)"
    )
    assert got["detail"] == [
        {"field": f"scenario.orders.{i}.location", "reason": "Field required"} for i in range(100)
    ]


@pytest.mark.shares_service
@pytest.mark.parametrize("key", [" ", "\t", "  \t "])
def test_a_blank_idempotency_key_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], key: str
) -> None:
    """A key of whitespace only was stored as a key of its own in process (a server strips
    it to the empty key, refused): a 422 naming the header, nothing run or stored."""
    body = ROUTES_EXAMPLE["small"]["value"]
    before = client.get("/v1/jobs", headers=keys["admin"]).json()["count"]
    answer = client.post("/v1/routes", json=body, headers={**keys["oms"], "Idempotency-Key": key})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "header.Idempotency-Key", "reason": "must not be blank (whitespace only)"}
    ]
    assert client.get("/v1/jobs", headers=keys["admin"]).json()["count"] == before


@pytest.mark.shares_service
def test_the_whitespace_around_an_idempotency_key_is_no_part_of_it(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """``" k "`` and ``"k"`` were two keys in process (a retry through another client or
    proxy ran again), one behind an HTTP server, which strips the whitespace: one key now;
    given both ways in one request it is one key too, not two different values."""
    body = json.dumps(ROUTES_EXAMPLE["small"]["value"]).encode()
    headers = {**keys["oms"], "Content-Type": "application/json"}
    first = client.post("/v1/routes", content=body, headers={**headers, "Idempotency-Key": "w-1"})
    assert first.status_code == 200, first.text
    for spaced in (" w-1", "w-1\t ", "  w-1  "):
        again = client.post(
            "/v1/routes", content=body, headers={**headers, "Idempotency-Key": spaced}
        )
        assert again.status_code == 200, again.text
        assert again.headers.get("Idempotent-Replayed") == "true", spaced
        assert again.json() == first.json()
    both = [*headers.items(), ("Idempotency-Key", "w-1"), ("Idempotency-Key", " w-1 ")]
    assert (
        client.post("/v1/routes", content=body, headers=both).headers.get("Idempotent-Replayed")
        == "true"
    )


def _models_under(model: type[BaseModel]) -> list[type[BaseModel]]:
    """``model`` and every model its fields hold (in lists, dicts, unions), once each."""
    seen: list[type[BaseModel]] = []

    def walk_type(t: Any) -> None:
        if isinstance(t, type) and issubclass(t, BaseModel):
            walk(t)
        else:
            for arg in typing.get_args(t):
                walk_type(arg)

    def walk(m: type[BaseModel]) -> None:
        if m not in seen:
            seen.append(m)
            for field in m.model_fields.values():
                walk_type(field.annotation)

    walk(model)
    return seen


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda m: m.__name__)
def test_every_model_an_input_is_read_into_refuses_unknown_fields(model: type[BaseModel]) -> None:
    """Unknown fields are refused everywhere, never ignored (docs/api.md: a misspelt optional
    field, ``penalty_cent``, would be dropped without a word): a guard, so that a model added
    later keeps the rule."""
    assert [
        m.__name__ for m in _models_under(model) if m.model_config.get("extra") != "forbid"
    ] == []


#: every endpoint that takes a key and no query parameter, one per route (ids need not exist:
#: the query is refused before the endpoint looks them up)
NO_QUERY_ENDPOINTS = [
    ("POST", "/v1/allocations", ALLOCATION_EXAMPLE["online"]["value"]),
    ("POST", "/v1/routes", ROUTES_EXAMPLE["small"]["value"]),
    ("POST", "/v1/plans", PLAN_EXAMPLE["small"]["value"]),
    ("GET", "/v1/plans/p1", None),
    ("POST", "/v1/plans/p1/reoptimise", {"now_s": 0}),
    ("POST", "/v1/simulations", SIMULATION_EXAMPLE["small"]["value"]),
    ("POST", "/v1/simulations/compare", {}),
    ("POST", "/v1/whatif", WHATIF_EXAMPLE["small"]["value"]),
    ("GET", "/v1/whatif/j1/report", None),
    ("POST", "/v1/policies/evaluate", POLICY_EXAMPLE["standard"]["value"]),
    ("GET", "/v1/jobs/j1", None),
    ("DELETE", "/v1/jobs/j1", None),
    ("GET", "/v1/keys", None),
    ("POST", "/v1/keys", {"role": "oms"}),
    ("DELETE", "/v1/keys/k1", None),
    ("POST", "/v1/keys/k1/rotate", {}),
]


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("method", "path", "body"),
    NO_QUERY_ENDPOINTS,
    ids=[f"{m} {p}" for m, p, _ in NO_QUERY_ENDPOINTS],
)
def test_a_query_parameter_an_endpoint_does_not_take_is_a_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]], method: str, path: str, body: Any
) -> None:
    """It was ignored without a word: ``POST /v1/allocations?mode=async`` (or ``/v1/routes``)
    was solved synchronously, ``GET /v1/keys?limit=1`` listed every key. Nothing is run or
    stored; without a valid key it is the 401, as for a bad body."""
    before = client.get("/v1/jobs", headers=keys["admin"]).json()["count"]
    answer = client.request(method, f"{path}?mode=async", json=body, headers=keys["admin"])
    assert answer.status_code == 422, answer.text
    assert answer.json() == {
        "message": "query.mode: unknown parameter: this endpoint takes no query parameters",
        "detail": [
            {"field": "query.mode", "reason": "unknown parameter: this endpoint takes no query "
             "parameters"}
        ],
    }  # fmt: skip
    assert client.get("/v1/jobs", headers=keys["admin"]).json()["count"] == before
    unkeyed = client.request(method, f"{path}?mode=async", json=body)
    assert unkeyed.status_code == 401, unkeyed.text


@pytest.mark.shares_service
def test_the_endpoints_that_take_query_parameters_still_take_them(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """``GET /v1/jobs`` keeps its own check; the open endpoints take any query, as before."""
    assert client.get("/v1/jobs?limit=1&status=done", headers=keys["admin"]).status_code == 200
    assert client.get("/v1/jobs?mode=1", headers=keys["admin"]).json()["detail"] == [
        {"field": "query.mode", "reason": "unknown parameter; one of cursor, kind, limit, "
         "offset, status"}
    ]  # fmt: skip
    for path in ("/healthz?x=1", "/readyz?x=1", "/metrics?x=1", "/openapi.json?x=1"):
        assert client.get(path).status_code == 200, path
    answer = client.post("/v1/routes?", json=ROUTES_EXAMPLE["small"]["value"], headers=keys["oms"])
    assert answer.status_code == 200, answer.text  # an empty query string is none


#: why a lone surrogate is refused (api.core.middleware.LONE_SURROGATE_REASON)
SURROGATE_REASON = (
    "not valid Unicode: holds a lone UTF-16 surrogate (a \\ud800 to \\udfff escape that is not "
    "half of a pair)"
)


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("path", "body", "old", "new", "field"),
    [
        # the NUL check's pattern fails on a string no UTF-8 holds: "must not contain NUL"
        ("/v1/routes", ROUTES_EXAMPLE, '"name": "example"', '"name": "ex\\udc00"', "scenario.name"),
        ("/v1/routes", ROUTES_EXAMPLE, '"id": "o1"', '"id": "o1\\uD800"', "scenario.orders.0.id"),
        # a key: named with the surrogate escaped (it came out as "???" in the answer)
        (
            "/v1/allocations",
            ALLOCATION_EXAMPLE,
            '"tea": 50',
            '"te\\ud800a": 50',
            "request.nodes.0.inventory.te\\ud800a",
        ),
        (
            "/v1/whatif",
            WHATIF_EXAMPLE,
            '{"kind": "fleet", "remove": 1}',
            '{"kind": "stochastic", "values": {"\\ud800": 0.5}}',
            "variants.0.modifiers.0.values.\\ud800",
        ),
    ],
    ids=["scenario-name", "order-id", "sku-key", "any-typed-key"],
)
def test_a_lone_surrogate_is_a_422_naming_its_field_and_saying_so(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    body: dict[str, Any],
    old: str,
    new: str,
    field: str,
) -> None:
    """Python's JSON parser takes ``"\\ud800"`` (half of a UTF-16 pair) as a string no UTF-8
    text holds: the models said it held a NUL, or "unable to parse raw data as a unicode
    string", and a key holding one was named ``???``."""
    [example] = body.values()
    raw = json.dumps(example["value"])
    assert old in raw
    headers = {**keys["admin"], "Content-Type": "application/json"}
    answer = client.post(path, content=raw.replace(old, new, 1).encode(), headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [{"field": field, "reason": SURROGATE_REASON}]
    unkeyed = client.post(path, content=raw.replace(old, new, 1).encode(), headers=headers | {
        "X-API-Key": "nope"})  # fmt: skip
    assert unkeyed.status_code == 401, unkeyed.text


@pytest.mark.shares_service
def test_a_surrogate_pair_is_one_character_like_any_other(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    raw = json.dumps(ROUTES_EXAMPLE["small"]["value"]).replace('"example"', '"ex\\ud83d\\ude80"')
    headers = {**keys["oms"], "Content-Type": "application/json"}
    answer = client.post("/v1/routes", content=raw.encode(), headers=headers)
    assert answer.status_code == 200, answer.text


@pytest.mark.shares_service
@pytest.mark.parametrize(
    ("encoding", "name"),
    [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE"),
     ("utf-32", "UTF-32"), ("utf-32-le", "UTF-32LE")],
)  # fmt: skip
@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/routes", ROUTES_EXAMPLE), ("/v1/allocations", ALLOCATION_EXAMPLE)],
    ids=["routes", "allocations"],
)
def test_a_body_in_utf_16_or_32_is_a_422_saying_json_must_be_utf_8(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    body: dict[str, Any],
    encoding: str,
    name: str,
) -> None:
    """Python's JSON parser reads UTF-16 and UTF-32 (told by a byte-order mark or by zero
    bytes), so such a body was answered, while ``dispatchlab`` refused such a file with
    ``(root): Invalid JSON: expected value at line 1 column 1``: RFC 8259 asks JSON between
    systems to be UTF-8, and both refuse it now, saying so."""
    [example] = body.values()
    raw = json.dumps(example["value"]).encode(encoding)
    headers = {**keys["admin"], "Content-Type": "application/json"}
    answer = client.post(path, content=raw, headers=headers)
    assert answer.status_code == 422, answer.text
    reason = f"JSON must be UTF-8 (RFC 8259 section 8.1), not {name}: re-encode it as UTF-8"
    assert answer.json()["detail"] == [{"field": "(body)", "reason": reason}]
    unkeyed = client.post(path, content=raw, headers=headers | {"X-API-Key": "nope"})
    assert unkeyed.status_code == 401, unkeyed.text


@pytest.mark.shares_service
@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe", b"{\x00\x00", "{}".encode("utf-16"), b"\xef\xbb\xbf", b"\xef\xbb\xbf[]"],
    ids=["bom-only", "zero-bytes", "empty-object-utf-16", "utf-8-bom-only", "utf-8-bom-array"],
)
def test_bodies_that_are_no_json_in_any_encoding_keep_their_answers(
    client: TestClient, keys: dict[str, dict[str, str]], raw: bytes
) -> None:
    """Only JSON in UTF-16 or UTF-32 is refused for its encoding; bytes that are no JSON in
    any encoding (a lone byte-order mark, zero bytes) keep the JSON errors' answer, and a
    UTF-8 byte-order mark is dropped before anything is said of what follows it."""
    headers = {**keys["oms"], "Content-Type": "application/json"}
    answer = client.post("/v1/routes", content=raw, headers=headers)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "(body)"
    if raw == "{}".encode("utf-16"):
        assert problem["reason"].startswith("JSON must be UTF-8"), problem
    elif raw.startswith(b"\xef\xbb\xbf"):  # as the same body without it
        plain = client.post("/v1/routes", content=raw[3:], headers=headers)
        assert answer.json() == plain.json()
    else:
        assert not problem["reason"].startswith("JSON must be UTF-8"), problem
