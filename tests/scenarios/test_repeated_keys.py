"""A JSON object giving a key more than once is refused, naming the key (it was last-wins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scenarios.errors import InputError
from scenarios.io import load_scenario
from scenarios.io.json_io import REPEATED_KEY_REASON, from_json, parse_unique, repeated_key
from scenarios.model import Scenario
from solvers.allocation import AllocationRequest

_AT = '"location": {"lat": 1.0, "lon": 2.0}'


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"a": 1, "a": 2}', ((), "a")),
        ('{"n": [{"i": {"x": 1, "y": 2, "x": 3}}]}', (("n", 0, "i"), "x")),
        ('{"a": 1, "b": {"c": [1, {"d": 1}]}}', None),
        # an object's own repeated key before those inside its values
        ('{"a": {"x": 1, "x": 2}, "b": 1, "b": 2}', ((), "b")),
        # the earlier value of a repeated key (dropped) holds one too: the outer key is named
        ('{"a": {"x": 1, "x": 2}, "a": 3}', ((), "a")),
        ('{"t\\u0009": 1, "t\\t": 2}', ((), "t\t")),  # one key, written two ways
        ('{"a": 1, "a": ', None),  # not JSON: the caller's parser says why
        ("[" * 100_000, None),
    ],
)
def test_repeated_key_finds_the_first_object_giving_a_key_twice(
    text: str, found: tuple[tuple[str | int, ...], str] | None
) -> None:
    assert repeated_key(text) == found
    assert repeated_key(text.encode()) == found


@pytest.mark.parametrize(
    ("model", "text", "field"),
    [
        (
            Scenario,
            '{"nodes": [{"id": "n", "location": {"x": 0, "y": 0}, '
            '"inventory": {"tea": 1, "cups": 2, "tea": 5}}]}',
            "nodes.0.inventory.tea",
        ),
        (
            Scenario,
            '{"nodes": [{"id": "n", "location": {"x": 0, "y": 0}, '
            '"safety_stock": {"tea": 1, "tea": 0}}]}',
            "nodes.0.safety_stock.tea",
        ),
        (
            AllocationRequest,
            f'{{"nodes": [{{"id": "n", {_AT}, "inventory": {{"tea": 9, "tea": 1}}}}]}}',
            "nodes.0.inventory.tea",
        ),
        (
            AllocationRequest,
            f'{{"nodes": [{{"id": "n", {_AT}, "safety_stock": {{"tea": 9, "tea": 1}}}}]}}',
            "nodes.0.safety_stock.tea",
        ),
        (
            AllocationRequest,
            '{"rules": {"restricted_skus": {"tea": ["east"], "tea": []}}}',
            "rules.restricted_skus.tea",
        ),
        # not only stock: any field given twice is one value too many
        (AllocationRequest, '{"orders": [], "orders": []}', "orders"),
        (
            AllocationRequest,
            f'{{"nodes": [{{"id": "n", "id": "m", {_AT}}}]}}',
            "nodes.0.id",
        ),
    ],
)
def test_a_key_given_twice_in_a_scenario_or_a_request_is_named(
    model: type[Scenario | AllocationRequest], text: str, field: str
) -> None:
    """``{"tea": 1, "tea": 5}`` in a node's stock was 5 units of tea, without a word, in the
    scenario and the allocation request alike (both parsers keep the last value)."""
    key = field.rsplit(".", 1)[-1]
    with pytest.raises(InputError) as err:
        from_json(model, text, source="in.json")
    assert (err.value.field, err.value.reason) == (
        field,
        f"duplicate key {key!r}: {REPEATED_KEY_REASON}",
    )
    assert err.value.source == "in.json"


def test_a_vroom_file_giving_a_key_twice_is_named(tmp_path: Path) -> None:
    path = tmp_path / "problem.json"
    job = {"id": 1, "location": [2.35, 48.71]}
    vehicle = {"id": 1, "start": [2.35, 48.71]}
    text = json.dumps({"vehicles": [vehicle], "jobs": [job]})
    path.write_text(text.replace('"id": 1,', '"id": 1, "id": 2,', 1))
    with pytest.raises(InputError) as err:
        load_scenario(path, "vroom")
    assert (err.value.source, err.value.field) == (str(path), "vehicles.0.id")
    assert err.value.reason.startswith("duplicate key 'id': ")


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_parse_unique_makes_the_value_json_loads_makes(value: object) -> None:
    """The service validates a body from this parse (it is not parsed again): the same
    value as :func:`json.loads`, and no repeated key where none is."""
    text = json.dumps(value)
    assert parse_unique(text) == (json.loads(text), True, None)
    assert parse_unique(text.encode()) == (json.loads(text), True, None)


@given(st.dictionaries(st.text(), st.integers(), min_size=1, max_size=5), st.data())
def test_parse_unique_finds_a_key_given_again_and_keeps_no_value(
    obj: dict[str, int], data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(sorted(obj)))
    text = json.dumps({"a": [obj]})[:-3] + f", {json.dumps(key)}: 0}}]}}"
    assert parse_unique(text) == (None, False, (("a", 0), key))


@pytest.mark.parametrize("text", ['{"a": 1, "a": ', "[" * 100_000, "", "nul"])
def test_parse_unique_of_text_that_is_not_json(text: str) -> None:
    assert parse_unique(text) == (None, False, None)
