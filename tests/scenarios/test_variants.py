"""What-if variant files: each modifier, and errors that name the field."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import InputError, Scenario
from scenarios.generate import CityParams, generate_city
from scenarios.io import write_json
from scenarios.saved import read_saved
from scenarios.variants import (
    MAX_YAML_DEPTH,
    YAML_TOO_DEEP_REASON,
    Variant,
    apply_variant,
    read_variants,
    scaled_count,
)


@pytest.fixture(scope="module")
def city() -> Scenario:
    return generate_city(
        seed=5,
        num_orders=80,
        num_nodes=3,
        num_couriers=6,
        params=CityParams(extra_arrivals_per_day=40.0),
    )


#: a small city for the property tests (a module fixture cannot serve hypothesis examples)
_FLEET_CITY = generate_city(seed=5, num_orders=5, num_nodes=2, num_couriers=6)


def _apply(city: Scenario, *mods: dict[str, object], seed: int = 1) -> Scenario:
    return apply_variant(
        city, Variant.model_validate({"name": "v", "modifiers": list(mods)}), seed=seed
    )


def test_demand_scales_orders_in_the_window_and_the_arrival_rate(city: Scenario) -> None:
    window = {"start_s": 36_000, "end_s": 54_000}
    inside = [o for o in city.orders if 36_000 <= o.created_s <= 54_000]
    more = _apply(city, {"kind": "demand", "factor": 1.5, "window": window})
    made = scaled_count(len(inside), 1.5) - len(inside)
    assert len(more.orders) == len(city.orders) + made
    assert more.source.notes == city.source.notes  # every copy made
    copies = [o for o in more.orders if "~" in o.id]
    assert copies and all(36_000 <= o.created_s <= 54_000 for o in copies)
    assert more.arrivals is not None and more.arrivals.surges[0].factor == 1.5
    assert city.arrivals is not None
    assert more.arrivals.rate_per_s_at(40_000) == pytest.approx(
        1.5 * city.arrivals.rate_per_s_at(40_000)
    )
    fewer = _apply(city, {"kind": "demand", "factor": 0.5})
    assert len(fewer.orders) == scaled_count(len(city.orders), 0.5)
    assert _apply(city, {"kind": "demand", "factor": 1.5}, seed=2) != _apply(
        city, {"kind": "demand", "factor": 1.5}, seed=3
    )
    assert _apply(city, {"kind": "demand", "factor": 1.5}, seed=2) == _apply(
        city, {"kind": "demand", "factor": 1.5}, seed=2
    )


def test_other_modifiers(city: Scenario) -> None:
    node = city.nodes[0].id
    closed = _apply(
        city, {"kind": "node_closed", "node_id": node, "window": {"start_s": 0, "end_s": 9}}
    )
    assert closed.stochastic.node_outages[0].node_id == node
    short = _apply(city, {"kind": "fleet", "remove": 2})
    assert [v.id for v in short.vehicles] == [v.id for v in city.vehicles[:-2]]
    named = _apply(city, {"kind": "fleet", "vehicle_ids": [city.vehicles[0].id]})
    assert city.vehicles[0].id not in {v.id for v in named.vehicles}
    slow = _apply(city, {"kind": "travel_slowdown", "factor": 1.4})
    assert slow.stochastic.travel_factor_at(1000) == pytest.approx(1.4)
    picks = _apply(city, {"kind": "pick_time", "factor": 2.0, "node_ids": [node]})
    assert picks.nodes[0].pick_time_s_per_line == 2 * city.nodes[0].pick_time_s_per_line
    assert picks.nodes[1].pick_time_s_per_line == city.nodes[1].pick_time_s_per_line
    shock = _apply(city, {"kind": "stock_shock", "factor": 0.5})
    sku, qty = next(iter(city.nodes[0].inventory.items()))
    assert shock.nodes[0].inventory[sku] == qty // 2
    noisy = _apply(city, {"kind": "stochastic", "values": {"travel_time_cv": 0.5}})
    assert noisy.stochastic.travel_time_cv == 0.5


@pytest.mark.parametrize(
    ("mod", "field", "reason"),
    [
        ({"kind": "node_closed", "node_id": "zz", "window": {"start_s": 0, "end_s": 1}},
         "variants.0.modifiers.0.node_id", "unknown node 'zz'"),
        ({"kind": "fleet", "remove": 99}, "variants.0.modifiers.0.remove", "cannot remove 99"),
        ({"kind": "fleet", "vehicle_ids": ["nope"]}, "variants.0.modifiers.0.vehicle_ids.0",
         "unknown vehicle"),
        ({"kind": "fleet", "vehicle_ids": ["*all*"]}, "variants.0.modifiers.0.vehicle_ids",
         "cannot remove all"),
        ({"kind": "pick_time", "factor": 2, "node_ids": ["zz"]},
         "variants.0.modifiers.0.node_ids.0", "unknown node"),
        ({"kind": "stochastic", "values": {"travel_time_cv": -1}},
         "variants.0.modifiers.0.values.travel_time_cv", "greater than or equal to 0"),
    ],
)  # fmt: skip
def test_modifier_errors_name_the_field(
    city: Scenario, mod: dict[str, object], field: str, reason: str
) -> None:
    if mod.get("vehicle_ids") == ["*all*"]:  # every courier of the fixture, by name
        mod = {**mod, "vehicle_ids": [v.id for v in city.vehicles]}
    with pytest.raises(InputError) as info:
        _apply(city, mod)
    assert info.value.field == field and reason in info.value.reason


def test_a_fleet_modifier_adds_copies_of_the_most_common_kind_of_courier(city: Scenario) -> None:
    # before: a fleet modifier could only remove couriers ('add' was an unknown field)
    from scenarios.variants import courier_kind

    kinds = [courier_kind(v.model_dump()) for v in city.vehicles]
    most = max(kinds.count(k) for k in kinds)
    first = next(v for v, k in zip(city.vehicles, kinds, strict=True) if kinds.count(k) == most)
    more = _apply(city, {"kind": "fleet", "add": 2})
    assert more.vehicles[: len(city.vehicles)] == city.vehicles
    added = more.vehicles[len(city.vehicles) :]
    assert [v.id for v in added] == [f"{first.id}~1", f"{first.id}~2"]
    assert all(v.model_copy(update={"id": first.id}) == first for v in added)
    van = city.vehicles[0].id
    vans = _apply(city, {"kind": "fleet", "add": 1, "copy_of": van})
    assert vans.vehicles[-1].model_copy(update={"id": van}) == city.vehicles[0]
    # ids the fleet has are skipped; a copy of a copy made earlier in the variant is allowed
    again = _apply(
        city,
        {"kind": "fleet", "add": 1, "copy_of": van},
        {"kind": "fleet", "add": 2, "copy_of": van},
        {"kind": "fleet", "add": 1, "copy_of": f"{van}~1"},
    )
    assert [v.id for v in again.vehicles[len(city.vehicles) :]] == [
        f"{van}~1",
        f"{van}~2",
        f"{van}~3",
        f"{van}~1~1",
    ]
    # removed first, then added: modifiers apply in order
    swapped = _apply(city, {"kind": "fleet", "remove": 1}, {"kind": "fleet", "add": 1})
    assert len(swapped.vehicles) == len(city.vehicles)


def test_a_tie_between_kinds_of_courier_goes_to_the_kind_listed_first() -> None:
    from scenarios.variants import template_courier

    bike = {"id": "b1", "capacity": [10], "skills": ["x", "y"], "cost_per_km_cents": 4}
    van = {"id": "v1", "capacity": [100], "skills": [], "cost_per_km_cents": 30}
    fleet = [van, bike, {**bike, "id": "b2", "skills": ["y", "x"]}, {**van, "id": "v2"}]
    assert template_courier(fleet)["id"] == "v1"  # two of each: the vans come first
    assert template_courier([*fleet, {**bike, "id": "b3"}])["id"] == "b1"


@pytest.mark.parametrize(
    ("mod", "field", "reason"),
    [
        ({"kind": "fleet", "add": 1, "remove": 1}, "variants.0.modifiers.0.add",
         "a fleet modifier of its own"),
        ({"kind": "fleet", "add": 1, "vehicle_ids": ["v"]}, "variants.0.modifiers.0.add",
         "a fleet modifier of its own"),
        ({"kind": "fleet", "copy_of": "v"}, "variants.0.modifiers.0.copy_of", "only with add"),
        ({"kind": "fleet", "add": 1001}, "variants.0.modifiers.0.add",
         "less than or equal to 1000"),
        ({"kind": "fleet", "add": -1}, "variants.0.modifiers.0.add", "greater than or equal to 0"),
        ({"kind": "fleet", "add": True}, "variants.0.modifiers.0.add", "not true or false"),
    ],
)  # fmt: skip
def test_fleet_add_errors_name_the_field(
    tmp_path: Path, city: Scenario, mod: dict[str, object], field: str, reason: str
) -> None:
    write_json(city, tmp_path / "city.json")
    path = tmp_path / "v.yaml"
    spec = {"base": "city.json", "variants": [{"name": "more", "modifiers": [mod]}]}
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    with pytest.raises(InputError) as info:
        read_variants(path)
    assert info.value.field == field and reason in info.value.reason, info.value


@pytest.mark.parametrize(
    ("mods", "field", "reason"),
    [
        ([{"kind": "fleet", "add": 1, "copy_of": "nope"}], "variants.0.modifiers.0.copy_of",
         "unknown vehicle 'nope' (not in the variant's fleet)"),
        ([{"kind": "fleet", "vehicle_ids": ["*first*"]},
          {"kind": "fleet", "add": 1, "copy_of": "*first*"}],
         "variants.0.modifiers.1.copy_of", "unknown vehicle"),  # removed by the first
        ([{"kind": "fleet", "add": 1000}, {"kind": "fleet", "add": 1}],
         "variants.0.modifiers.1.add", "a variant may add at most 1000 to the base's 6"),
    ],
)  # fmt: skip
def test_fleet_add_errors_against_the_fleet_name_the_modifier(
    city: Scenario, mods: list[dict[str, object]], field: str, reason: str
) -> None:
    first = city.vehicles[0].id
    mods = [
        {k: ([first] if v == ["*first*"] else first if v == "*first*" else v) for k, v in m.items()}
        for m in mods
    ]
    with pytest.raises(InputError) as info:
        _apply(city, *mods)
    assert info.value.field == field and reason in info.value.reason, info.value


@settings(max_examples=30, deadline=None)
@given(
    add=st.integers(min_value=0, max_value=12),
    pick=st.integers(min_value=0, max_value=5),
    named=st.booleans(),
)
def test_added_couriers_are_copies_with_new_ids(add: int, pick: int, named: bool) -> None:
    fleet = _FLEET_CITY.vehicles
    template = fleet[pick % len(fleet)]
    mod: dict[str, object] = {"kind": "fleet", "add": add}
    if named and add:  # copy_of comes only with add
        mod["copy_of"] = template.id
    more = _apply(_FLEET_CITY, mod)
    ids = [v.id for v in more.vehicles]
    assert len(ids) == len(fleet) + add and len(set(ids)) == len(ids)
    assert more.vehicles[: len(fleet)] == fleet
    copied = [v.model_copy(update={"id": "x"}) for v in more.vehicles[len(fleet) :]]
    assert all(c == copied[0] for c in copied)  # every new courier is one courier's copy
    assert all(c in [v.model_copy(update={"id": "x"}) for v in fleet] for c in copied[:1])
    if named and add:
        assert copied[0] == template.model_copy(update={"id": "x"})


def test_repeated_demand_modifiers_give_copies_unique_ids(city: Scenario) -> None:
    one = city.model_copy(update={"orders": city.orders[:1], "arrivals": None})
    base = one.orders[0].id
    for seed in range(10):  # seed 1 used to copy o~0 twice
        doubled = _apply(
            one, {"kind": "demand", "factor": 2}, {"kind": "demand", "factor": 2}, seed=seed
        )
        ids = [o.id for o in doubled.orders]
        assert len(ids) == 4 and len(set(ids)) == 4 and ids[0] == base, (seed, ids)


def test_stock_shock_skus_are_checked_against_the_catalogue_only(city: Scenario) -> None:
    sku = city.skus[0].id
    with pytest.raises(InputError) as info:
        _apply(city, {"kind": "stock_shock", "factor": 0.5, "skus": [sku, "caviar"]})
    assert info.value.field == "variants.0.modifiers.0.skus.1"
    assert info.value.reason == "unknown SKU 'caviar'"
    # no catalogue: any SKU id is accepted, as in the scenario itself
    open_city = city.model_copy(update={"skus": []})
    same = _apply(open_city, {"kind": "stock_shock", "factor": 0.5, "skus": ["caviar"]})
    assert [n.inventory for n in same.nodes] == [n.inventory for n in city.nodes]


def test_variant_errors_name_the_variant_by_its_index(tmp_path: Path, city: Scenario) -> None:
    write_json(city, tmp_path / "city.json")
    path = tmp_path / "v.yaml"
    path.write_text(
        "base: city.json\nvariants:\n  - {name: ok, modifiers: [{kind: fleet, remove: 1}]}\n"
        "  - {name: bad, modifiers: [{kind: demand, factor: 1}, {kind: fleet, remove: 99}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        read_variants(path).scenarios(seed=0)
    assert info.value.field == "variants.1.modifiers.1.remove"
    assert info.value.one_line().startswith(f"{path}: variants.1.modifiers.1.remove: cannot")


def test_read_variants_resolves_the_base_and_validates(tmp_path: Path, city: Scenario) -> None:
    write_json(city, tmp_path / "city.json")
    good = tmp_path / "v.yaml"
    good.write_text(
        "base: city.json\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: 1.2}\n",
        encoding="utf-8",
    )
    loaded = read_variants(good)
    assert loaded.names == ["base", "slow"]
    scenarios = loaded.scenarios(seed=0)
    assert scenarios["base"] == loaded.base
    assert scenarios["slow"].stochastic.travel_slowdowns[0].factor == 1.2
    for text, field in [
        (
            "base: city.json\nvariants:\n  - {name: a, modifiers: [{kind: warp}]}\n",
            "variants.0.modifiers.0",
        ),
        ("base: city.json\nvariants: [\n", "yaml"),
        ("base: missing.json\n", "path"),
    ]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as info:
            read_variants(bad)
        assert info.value.field.startswith(field), (info.value.field, field)


def test_a_repeated_variant_name_is_named_at_its_field(tmp_path: Path, city: Scenario) -> None:
    """It was a plain ValueError: field ``(root)``, the path inside the reason
    (``variants.1.name: duplicate variant name 'a'``), in words of its own; one check now
    (:func:`scenarios.model.check_unique_ids`), as for the request of ``POST /v1/whatif``."""
    write_json(city, tmp_path / "city.json")
    path = tmp_path / "v.yaml"
    path.write_text("base: city.json\nvariants:\n  - {name: a}\n  - {name: a}\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_variants(path)
    assert (info.value.field, info.value.reason) == ("variants.1.name", "duplicate name 'a'")


def test_a_variant_file_giving_a_key_twice_is_one_line_naming_it(
    tmp_path: Path, city: Scenario
) -> None:
    """PyYAML kept a repeated key's last value: ``factor: 1.3, factor: 2`` was a factor of 2,
    without a word (as JSON's parsers did; see :func:`scenarios.io.json_io.repeated_key`).
    A key merged in by ``<<`` may still be overridden, as YAML says."""
    write_json(city, tmp_path / "city.json")
    path = tmp_path / "v.yaml"
    path.write_text(
        "base: city.json\nvariants:\n"
        "  - {name: a, modifiers: [{kind: demand, factor: 1.3, factor: 2}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        read_variants(path)
    assert (info.value.field, info.value.reason) == (
        "yaml",
        "not valid YAML: line 3, column 55: while constructing a mapping: found duplicate "
        "key 'factor'",
    )
    path.write_text(
        "base: city.json\nvariants:\n  - name: a\n    modifiers:\n"
        "      - &slow {kind: travel_slowdown, factor: 1.2}\n"
        "      - <<: *slow\n        factor: 1.5\n",
        encoding="utf-8",
    )
    modifiers = read_variants(path).spec.variants[0].modifiers
    assert [m.factor for m in modifiers] == [1.2, 1.5]  # type: ignore[union-attr]


def test_a_variant_named_base_is_refused_naming_it(tmp_path: Path, city: Scenario) -> None:
    # before: a variant named base replaced the baseline (its modifiers applied to it), while
    # 'slow' stayed the unmodified base plus 1.2: compared with base, it measured two changes
    write_json(city, tmp_path / "city.json")
    spec = tmp_path / "v.yaml"
    spec.write_text(
        "base: city.json\nvariants:\n"
        "  - {name: slow, modifiers: [{kind: travel_slowdown, factor: 1.2}]}\n"
        "  - {name: base, modifiers: [{kind: travel_slowdown, factor: 1.1}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        read_variants(spec)
    assert info.value.field == "variants.1.name"
    assert info.value.reason.startswith("'base' is the name of the baseline")
    spec.write_text(
        "base: city.json\nvariants:\n"
        "  - {name: slow, modifiers: [{kind: travel_slowdown, factor: 1.2}]}\n"
        "  - {name: Base, modifiers: []}\n",  # names are case-sensitive: another name
        encoding="utf-8",
    )
    loaded = read_variants(spec)
    assert loaded.names == ["base", "slow", "Base"]
    scenarios = loaded.scenarios(seed=0)
    assert scenarios["base"] is loaded.base
    assert scenarios["slow"].stochastic.travel_slowdowns[0].factor == 1.2


@settings(max_examples=40, deadline=None)
@given(
    factors=st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=4),
    max_orders=st.integers(min_value=1, max_value=2_000),
)
def test_demand_modifiers_stay_within_max_orders_or_name_the_factor(
    factors: list[float], max_orders: int
) -> None:
    """Demand factors multiply (three x100 made a million orders of a hundred before any
    check): with ``max_orders`` the variant has at most that many orders, or the factor
    that would pass it is an InputError, raised before its copies are made."""
    mods = [{"kind": "demand", "factor": f} for f in factors]
    variant = Variant.model_validate({"name": "v", "modifiers": mods})
    try:
        out = apply_variant(_TINY, variant, seed=3, index=2, max_orders=max_orders)
    except InputError as err:
        assert err.field.startswith("variants.2.modifiers.") and err.field.endswith(".factor")
        assert f"at most {max_orders} per request" in err.reason
        return
    assert len(out.orders) <= max(max_orders, len(_TINY.orders))


#: four orders, one courier
_TINY = Scenario.model_validate(
    {
        "orders": [{"id": f"o{i}", "location": {"x": 100 * i, "y": 0}} for i in range(4)],
        "vehicles": [{"id": "c1", "start_location": {"x": 0, "y": 0}}],
    }
)


def test_the_factor_that_passes_max_orders_is_named() -> None:
    mods = [{"kind": "demand", "factor": 10}, {"kind": "demand", "factor": 100}]
    variant = Variant.model_validate({"name": "v", "modifiers": mods})
    with pytest.raises(InputError) as err:
        apply_variant(_TINY, variant, seed=1, max_orders=1_000)
    assert err.value.field == "variants.0.modifiers.1.factor"
    assert err.value.reason == "makes 4000 orders (40 + 3960 copies); at most 1000 per request"
    assert len(apply_variant(_TINY, variant, seed=1).orders) == 4000  # no cap: as before


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b": : :", "not valid YAML: line 1, column 1: while parsing a block mapping: expected"),
        (b"a: [1, 2\n", "not valid YAML: line 2, column 1: while parsing a flow sequence"),
        (b"base: x.json\n\xff\xfe", "not UTF-8 text (byte 13)"),  # was a UnicodeDecodeError
    ],
)
def test_a_variant_file_that_is_not_yaml_is_one_line_naming_the_place(
    tmp_path: Path, text: bytes, reason: str
) -> None:
    """PyYAML's message spans several lines (the CLI's error was not one line)."""
    path = tmp_path / "v.yaml"
    path.write_bytes(text)
    with pytest.raises(InputError) as err:
        read_variants(path)
    assert err.value.field == "yaml" and err.value.reason.startswith(reason)
    assert "\n" not in err.value.one_line()


@settings(max_examples=100, deadline=None)
@given(text=st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode)))
def test_any_variant_file_reads_or_is_one_input_error_line(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "v.yaml"
        path.write_bytes(text)
        try:
            read_variants(path)
        except InputError as err:
            assert "\n" not in err.one_line()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # int()'s limit on the digits of a decimal integer: a ValueError traceback
        (
            "base: x.json\nvariants:\n  - name: a\n    modifiers: [{kind: demand, factor: "
            + "9" * 5_000
            + "}]\n",
            "not valid YAML: line 4, column 40: a number has more than 4300 digits",
        ),
        # a date YAML reads as a timestamp that is no day of the calendar: a ValueError
        (
            "base: x.json\nvariants:\n  - name: 2026-02-30\n",
            "not valid YAML: line 3, column 11: '2026-02-30' is not a valid timestamp "
            "(day is out of range for month)",
        ),
        # explicit tags on values that are none: ValueError, ValueError, AttributeError
        ("base: !!int x\n", "not valid YAML: line 1, column 7: 'x' is not a valid int"),
        ("base: !!float x\n", "not valid YAML: line 1, column 7: 'x' is not a valid float"),
        ("base: !!timestamp x\n", "not valid YAML: line 1, column 7: 'x' is not a valid timestamp"),
    ],
    ids=["digits", "no-such-day", "int-tag", "float-tag", "timestamp-tag"],
)
def test_a_scalar_yaml_cannot_read_is_one_line_naming_the_place(
    tmp_path: Path, text: str, reason: str
) -> None:
    """PyYAML's constructors raise ValueError (or AttributeError) on these: ``dispatchlab
    whatif`` ended with a traceback and exit status 1."""
    path = tmp_path / "v.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_variants(path)
    assert (err.value.source, err.value.field, err.value.reason) == (str(path), "yaml", reason)


@settings(max_examples=100, deadline=None)
@given(
    tag=st.sampled_from(["int", "float", "bool", "null", "str", "timestamp", "binary"]),
    value=st.one_of(
        st.text(max_size=20),
        st.from_regex(r"\A[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2})?\Z"),
    ),
)
def test_any_tagged_scalar_reads_or_is_one_input_error_line(tag: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "v.yaml"
        path.write_text(f"base: !!{tag} {json.dumps(value)}\nx: {value}\n", encoding="utf-8")
        try:
            read_variants(path)
        except InputError as err:
            assert "\n" not in err.one_line()


def test_a_variant_file_that_is_a_folder_names_it(tmp_path: Path) -> None:
    # it was an IsADirectoryError, printed as a bare "v.yaml: Is a directory"
    path = tmp_path / "v.yaml"
    path.mkdir()
    with pytest.raises(InputError) as err:
        read_variants(path)
    assert err.value.one_line() == f"{path}: path: is a directory, expected a file"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("base: ''\n", "base"),  # named the variant file's folder: "is a directory"
        ("base: city.json\nplan: ''\n", "plan"),  # was taken as no plan at all
    ],
)
def test_an_empty_base_or_plan_names_its_field(
    tmp_path: Path, city: Scenario, text: str, field: str
) -> None:
    write_json(city, tmp_path / "city.json")
    path = tmp_path / "v.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_variants(path)
    assert (err.value.source, err.value.field) == (str(path), field)
    assert "at least 1 character" in err.value.reason


def test_the_plan_of_a_variant_file_is_its_own_source(tmp_path: Path, city: Scenario) -> None:
    write_json(city, tmp_path / "city.json")
    (tmp_path / "plan.json").write_text('{"routes": []}', encoding="utf-8")
    path = tmp_path / "v.yaml"
    path.write_text("base: city.json\nplan: plan.json\n", encoding="utf-8")
    loaded = read_variants(path)
    assert loaded.source == str(path)
    assert loaded.plan_source == str((tmp_path / "plan.json").resolve())


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"travel_time_cv\x00": 0.5}, "values.travel_time_cv\\x00"),  # a key
        ({"travel_time_cv": "0.5\x00"}, "values.travel_time_cv"),
        # in a list or a mapping in the value: the path down to the string, as for a typed
        # field (it named the value holding it); a key is named escaped
        ({"node_outages": [{"node_id": "n\x00", "window": {"start_s": 0, "end_s": 1}}]},
         "values.node_outages.0.node_id"),
        ({"node_outages": [{"n\x00": 1}]}, "values.node_outages.0.n\\x00"),
        ({"x": [[["deep", ("\x00",)]]]}, "values.x.0.0.1.0"),
        ({"x": {"a": "ok", "b\x00": {"c\x00": "\x00"}}}, "values.x.b\\x00"),
    ],
)  # fmt: skip
def test_a_nul_in_a_stochastic_modifier_value_is_refused_at_its_field(
    tmp_path: Path, city: Scenario, values: dict[str, object], field: str
) -> None:
    """``values`` is a ``dict[str, Any]``: no string schema checked the strings in it, so a
    NUL there was taken in process and by the CLI (a 422 over HTTP only, by the middleware)."""
    from pydantic import ValidationError

    from scenarios.errors import input_error_from_validation
    from scenarios.geo import NUL_REASON
    from scenarios.variants import StochasticModifier

    with pytest.raises(ValidationError) as info:
        StochasticModifier.model_validate({"values": values})
    assert input_error_from_validation(info.value).one_line() == f"{field}: {NUL_REASON}"
    with pytest.raises(ValidationError) as info:
        Variant.model_validate(
            {"name": "v", "modifiers": [{"kind": "stochastic", "values": values}]}
        )
    assert input_error_from_validation(info.value).one_line() == (
        f"modifiers.0.{field}: {NUL_REASON}"
    )
    # a variant file (the CLI's what-if; JSON is YAML): an input error naming it
    write_json(city, tmp_path / "city.json")
    path = tmp_path / "v.yaml"
    variant = {"name": "v", "modifiers": [{"kind": "stochastic", "values": values}]}
    path.write_text(json.dumps({"base": "city.json", "variants": [variant]}), "utf-8")
    with pytest.raises(InputError) as err:
        read_variants(path)
    assert (err.value.field, err.value.reason) == (f"variants.0.modifiers.0.{field}", NUL_REASON)


def test_the_values_of_a_stochastic_modifier_are_kept_as_given_and_so_is_their_schema() -> None:
    """The NUL check walks an ``Any`` value without changing it (a tuple stays a tuple), and
    the JSON Schema says what it said (any object)."""
    from scenarios.variants import StochasticModifier

    values = {"a": (1, "b"), "c": {"d": [None, 2.5, "e"]}, "f": "g"}
    assert StochasticModifier.model_validate({"values": values}).values == values
    assert StochasticModifier.model_json_schema()["properties"]["values"] == {
        "additionalProperties": True,
        "title": "Values",
        "type": "object",
    }
    deep: object = "x"
    for _ in range(5000):  # no recursion: a deep value cannot overflow the walk
        deep = [deep]
    assert StochasticModifier.model_validate({"values": {"a": deep}})


def _stored_with_times_past_the_horizon() -> Scenario:
    """As an older version stored it: a shift past the horizon, an order created after it."""
    data = {
        "horizon": {"start_s": 0, "end_s": 3600},
        "nodes": [{"id": "n1", "location": {"x": 0, "y": 0}}],
        "orders": [
            {"id": "o1", "location": {"x": 100, "y": 0}, "created_s": 600},
            {"id": "late", "location": {"x": 200, "y": 0}, "created_s": 5000},
        ],
        "vehicles": [
            {"id": "v1", "start_location": {"x": 0, "y": 0}},
            {
                "id": "v2",
                "start_location": {"x": 0, "y": 0},
                "shift": {"start_s": 0, "end_s": 7200},
            },
        ],
    }
    scenario, notes = read_saved(Scenario, data)
    assert [n.split(":")[0] for n in notes] == ["vehicles.1.shift.end_s", "orders.1.created_s"]
    return scenario


def test_a_variant_of_stored_data_keeps_the_times_it_inherits() -> None:
    """apply_variant validated its result as new input: a what-if of a stored job was refused
    for the stored base's own times (the variant changed none of them)."""
    stored = _stored_with_times_past_the_horizon()
    variant = _apply(
        stored,
        {"kind": "fleet", "vehicle_ids": ["v1"]},  # v2, with the stored shift, moves to 0
        {"kind": "demand", "factor": 2.0},  # a copy of every order: "late" too, as stored
        {"kind": "travel_slowdown", "factor": 1.5, "window": {"start_s": 0, "end_s": 1800}},
        {"kind": "node_closed", "node_id": "n1", "window": {"start_s": 600, "end_s": 4000}},
    )
    assert [v.id for v in variant.vehicles] == ["v2"]
    assert variant.vehicles[0].shift is not None and variant.vehicles[0].shift.end_s == 7200
    assert sorted(o.created_s for o in variant.orders if o.id.startswith("late")) == [5000, 5000]
    assert "vehicles.0.shift.end_s: the shift ends at 7200 s" in (variant.source.notes or "")


@pytest.mark.parametrize("stored", [True, False])
def test_a_variant_is_refused_for_the_times_outside_the_horizon_it_brings(stored: bool) -> None:
    """Whatever the base (stored or new input), the variant's own times are checked."""
    base = _stored_with_times_past_the_horizon()
    if not stored:  # the same scenario as new input would give it: times inside the horizon
        data = base.model_dump(mode="json")
        data["orders"].pop(), data["vehicles"][1].pop("shift")
        data["source"]["notes"] = None
        base = Scenario.model_validate(data)
    outage = {"node_id": "n1", "window": {"start_s": 4000, "end_s": 5000}}
    with pytest.raises(InputError) as info:
        _apply(base, {"kind": "stochastic", "values": {"node_outages": [outage]}})
    assert info.value.field == "variants.0.modifiers"
    assert info.value.reason.startswith(
        "the modified scenario is invalid: stochastic.node_outages.0.window: the window "
        "[4000, 5000] s lies entirely outside the horizon [0, 3600] s"
    ), info.value.reason
    with pytest.raises(InputError) as info:  # a modifier's own window, named as before
        _apply(base, {"kind": "travel_slowdown", "factor": 2.0, "window": outage["window"]})
    assert info.value.field == "variants.0.modifiers.0.window"


def _shipments() -> Scenario:
    """Two courier shipments (one with its own pickup id) and an order picked at the node."""
    pickup_window = {"start_s": 1000, "end_s": 2000}
    return Scenario.model_validate(
        {
            "horizon": {"start_s": 0, "end_s": 20_000},
            "nodes": [{"id": "n1", "location": {"x": 0, "y": 0}, "inventory": {"A": 50}}],
            "orders": [
                {
                    "id": "s1",
                    "location": {"x": 500, "y": 0},
                    "created_s": 500,
                    "time_windows": [{"start_s": 1500, "end_s": 4000}],
                    "service_s": 30,
                    "pickup": {
                        "id": "P-s1",
                        "location": {"x": 200, "y": 300},
                        "time_windows": [pickup_window],
                        "service_s": 45,
                    },
                },
                {
                    "id": "s2",
                    "location": {"x": 0, "y": 400},
                    "created_s": 800,
                    "pickup": {"location": {"x": 100, "y": 100}, "service_s": 20},
                },
                {
                    "id": "o1",
                    "location": {"x": 300, "y": 300},
                    "created_s": 600,
                    "lines": [{"sku": "A", "quantity": 2}],
                },
            ],
            "vehicles": [
                {"id": "v1", "start_location": {"x": 0, "y": 0}},
                {"id": "v2", "start_location": {"x": 0, "y": 0}},
            ],
            "stochastic": {"travel_time_cv": 0, "service_time_cv": 0, "pick_time_cv": 0},
        }
    )


def test_demand_copies_of_shipments_keep_their_pickup() -> None:
    """A copy's pickup was set to None: a copied shipment silently became an order with no
    lines to be picked at a node. It keeps its pickup, under the copy's own task id."""
    from simulation.evaluate import simulate
    from solvers.routing import RoutingParams, solve_routes
    from solvers.validate import validate_plan

    base = _shipments()
    variant = _apply(  # the second modifier copies copies too, and moves them all
        base,
        {"kind": "demand", "factor": 3.0, "window": {"start_s": 0, "end_s": 900}},
        {"kind": "demand", "factor": 2.0, "window": {"start_s": 0, "end_s": 9000}},
    )
    by_id = {o.id: o for o in base.orders}
    copies = [o for o in variant.orders if "~" in o.id]
    assert len(copies) == 3 * 2 + 9 and {"s1", "s2"} <= {o.id.split("~")[0] for o in copies}
    for copy in copies:
        original = by_id[copy.id.split("~")[0]]
        if original.pickup is None:
            assert copy.pickup is None
            continue
        assert copy.pickup is not None, copy.id
        assert copy.pickup.location == original.pickup.location
        assert copy.pickup.service_s == original.pickup.service_s
        assert copy.pickup_id == f"{copy.id}:pickup"  # not the original's "P-s1"
        shift = copy.created_s - original.created_s
        assert [(w.start_s - shift, w.end_s - shift) for w in copy.pickup.time_windows] == [
            (w.start_s, w.end_s) for w in original.pickup.time_windows
        ]  # moved with the copy, as its delivery windows
        assert [(w.start_s - shift, w.end_s - shift) for w in copy.time_windows] == [
            (w.start_s, w.end_s) for w in original.time_windows
        ]
    tasks = [t for o in variant.orders for t in (o.id, o.pickup_id)]
    assert len(tasks) == len(set(tasks))
    shipments = [o for o in variant.orders if o.pickup is not None]
    assert len(shipments) == sum(  # a copy is a shipment exactly when its original is
        by_id[o.id.split("~")[0]].pickup is not None for o in variant.orders
    )

    plan = solve_routes(variant, RoutingParams(engine="greedy", time_limit_s=1))
    assert validate_plan(variant, plan).ok
    picked = {st.task_id: st.location for r in plan.routes for st in r.stops if st.order_id}
    for order in shipments:  # picked up where the original is, under its own task id
        assert order.pickup is not None and picked[order.pickup_id] == order.pickup.location
    result = simulate(variant, policy="insertion", seed=1)
    assert result.metrics["orders_total"] == len(variant.orders)
    assert result.metrics["orders_delivered"] == len(variant.orders)


def test_a_shipment_copy_takes_a_pickup_id_no_task_has() -> None:
    """Order and pickup ids share one namespace: ``s1~0:pickup`` is taken by a listed task, so
    the copies of s1 skip ``s1~0``."""
    data = _shipments().model_dump(mode="json")
    data["orders"][1]["pickup"]["id"] = "s1~0:pickup"
    data["orders"] = data["orders"][:2]
    base = Scenario.model_validate(data)
    variant = _apply(base, {"kind": "demand", "factor": 6.0})
    copies = [o for o in variant.orders if o.id.startswith("s1~")]
    assert copies and "s1~0" not in {o.id for o in copies}
    tasks = [t for o in variant.orders for t in (o.id, o.pickup_id)]
    assert len(tasks) == len(set(tasks))


def _notes(scenario: Scenario) -> list[str]:
    """The lines of ``source.notes`` on times kept as stored, each cut to its field path."""
    marker = " (stored before the horizon was checked; kept as stored)"
    lines = (scenario.source.notes or "").split(marker)
    return [line.removeprefix("; ").split(":")[0] for line in lines[:-1]]


def test_a_variant_of_stored_data_notes_each_time_it_keeps_once_at_its_own_path() -> None:
    """The variant's notes were added next to the base's: with v1 removed, the stored shift was
    noted at vehicles.1 (the base's path, no vehicle of the variant) and again at vehicles.0.
    Now the notes are the variant's own: one per time it keeps, at its path in the variant; the
    base's other notes are kept."""
    base = _stored_with_times_past_the_horizon()
    assert _notes(base) == ["vehicles.1.shift.end_s", "orders.1.created_s"]
    data = base.model_dump(mode="json")
    data["source"]["notes"] = f"from the depot export; {base.source.notes}"
    base, _ = read_saved(Scenario, data)
    assert _notes(base) == ["from the depot export; vehicles.1.shift.end_s", "orders.1.created_s"]

    variant = _apply(
        base, {"kind": "fleet", "vehicle_ids": ["v1"]}, {"kind": "demand", "factor": 2.0}
    )
    late = [i for i, o in enumerate(variant.orders) if o.created_s == 5000]
    assert len(late) == 2  # "late" and its copy, each noted
    assert _notes(variant) == [
        "from the depot export; vehicles.0.shift.end_s",
        *(f"orders.{i}.created_s" for i in late),
    ]
    kept = _apply(base, {"kind": "travel_slowdown", "factor": 1.5})  # nothing moves
    assert kept.source.notes == base.source.notes
    gone = _apply(base, {"kind": "fleet", "vehicle_ids": ["v2"]})  # the stored shift's vehicle
    assert _notes(gone) == ["from the depot export; orders.1.created_s"]
    again = _apply(variant, {"kind": "fleet", "remove": 0})  # a variant of a variant
    assert again.source.notes == variant.source.notes


def test_stock_shock_floors_the_factor_as_written() -> None:
    """100 x 0.29 is 28.999999999999996 in floats: the shock left 28 units, not 29."""
    base = Scenario.model_validate(
        {
            "nodes": [
                {"id": "n1", "location": {"x": 0, "y": 0}, "inventory": {"A": 100, "B": 90}},
                {"id": "n2", "location": {"x": 9, "y": 0}, "inventory": {"A": 50, "B": 7}},
            ]
        }
    )
    shocked = _apply(base, {"kind": "stock_shock", "factor": 0.29, "node_ids": ["n1"]})
    assert shocked.nodes[0].inventory == {"A": 29, "B": 26}
    assert shocked.nodes[1].inventory == base.nodes[1].inventory
    shocked = _apply(base, {"kind": "stock_shock", "factor": 0.7, "skus": ["B"]})
    assert [n.inventory for n in shocked.nodes] == [{"A": 100, "B": 63}, {"A": 50, "B": 4}]
    none_left = _apply(base, {"kind": "stock_shock", "factor": 1e-05})
    assert [n.inventory for n in none_left.nodes] == [{"A": 0, "B": 0}, {"A": 0, "B": 0}]


@pytest.mark.parametrize("factor", [0.0, 0.5, 2.0])
def test_demand_keeps_the_orders_the_arrivals_are_drawn_from(factor: float) -> None:
    """Arrivals without templates are drawn from the listed orders: a demand modifier dropping
    or copying orders changed what the day's arrivals looked like (factor 0 left none to draw
    from, and the variant could not be simulated). They are drawn from the base's orders."""
    from simulation import DispatchSimulator
    from simulation.evaluate import simulate
    from tests.simulation.conftest import line_scenario

    line = line_scenario().model_dump(mode="json")
    base = Scenario.model_validate({**line, "arrivals": {"hourly_rate": [3.0] * 24}})
    window = {"start_s": 0, "end_s": 2500}  # a surge then; arrivals at the base rate after
    variant = _apply(base, {"kind": "demand", "factor": factor, "window": window})
    assert variant.arrival_templates == base.orders
    assert len(variant.orders) == {0.0: 0, 0.5: 2, 2.0: 6}[factor]  # of 3 (1.5: half up)
    sim = DispatchSimulator(variant)
    sim.reset(seed=2)
    od = sim.orders
    arrivals = range(sim.num_base_orders, len(od))
    assert arrivals, "no arrival drawn"
    where = {sim.world.locations[od.location[k]].x for k in arrivals}
    assert where <= {o.location.x for o in base.orders}
    assert simulate(variant, policy="insertion", seed=2).metrics["orders_total"] == len(od)


def test_a_stochastic_modifier_keeps_what_earlier_modifiers_added(city: Scenario) -> None:
    """Its ``values`` replaced the lists whole: a travel_slowdown or node_closed modifier listed
    before it was silently undone. The values replace the base's entries only."""
    node = city.nodes[0].id
    closed: dict[str, object] = {
        "kind": "node_closed",
        "node_id": node,
        "window": {"start_s": 0, "end_s": 900},
    }
    outage = {"node_id": city.nodes[1].id, "window": {"start_s": 100, "end_s": 200}}
    variant = _apply(
        city,
        {"kind": "travel_slowdown", "factor": 2.0},
        closed,
        {"kind": "stochastic", "values": {"travel_slowdowns": [{"factor": 1.5}]}},
        {"kind": "stochastic", "values": {"node_outages": [outage], "travel_time_cv": 0.4}},
    )
    assert [s.factor for s in variant.stochastic.travel_slowdowns] == [1.5, 2.0]
    assert [(o.node_id, o.window.start_s) for o in variant.stochastic.node_outages] == [
        (city.nodes[1].id, 100),
        (node, 0),
    ]
    assert variant.stochastic.travel_time_cv == 0.4
    assert variant.stochastic.travel_factor_at(50) == pytest.approx(3.0)
    cleared = _apply(  # without earlier modifiers, an empty list clears the base's
        variant, {"kind": "stochastic", "values": {"travel_slowdowns": []}}
    )
    assert cleared.stochastic.travel_slowdowns == []


def test_a_fleet_modifier_lists_each_vehicle_once(city: Scenario) -> None:
    """``remove: 2, vehicle_ids: [v, v]`` passed, and removed one vehicle."""
    from pydantic import ValidationError

    from scenarios.errors import input_error_from_validation
    from scenarios.variants import VariantFile

    vid = city.vehicles[0].id
    fleet = {"kind": "fleet", "remove": 2, "vehicle_ids": [vid, vid]}
    with pytest.raises(ValidationError) as info:
        VariantFile.model_validate(
            {"base": "b.json", "variants": [{"name": "v", "modifiers": [fleet]}]}
        )
    error = input_error_from_validation(info.value)
    assert error.field == "variants.0.modifiers.0.vehicle_ids.1"
    assert error.reason == f"vehicle {vid!r} is listed twice (also 0)"


def _numbered(
    n: int, *, ids: list[str] | None = None, window: dict[str, int] | None = None
) -> Scenario:
    """``n`` orders (ids ``o0``... unless given) created 100 s apart on a 20,000 s horizon."""
    orders: list[dict[str, object]] = [
        {
            "id": ids[i] if ids else f"o{i}",
            "location": {"x": 10 * i, "y": 0},
            "created_s": 100 * i,
            **({"time_windows": [window]} if window else {}),
        }
        for i in range(n)
    ]
    return Scenario.model_validate(
        {
            "horizon": {"start_s": 0, "end_s": 20_000},
            "nodes": [{"id": "n1", "location": {"x": 0, "y": 0}}],
            "orders": orders,
            "vehicles": [{"id": "v1", "start_location": {"x": 0, "y": 0}}],
        }
    )


@pytest.mark.parametrize(
    ("n", "factor", "orders"),
    [
        (1, 0.5, 1),  # 0.5 -> 1
        (3, 0.5, 2),  # 1.5 -> 2: Python's round (halves to even) kept 1
        (5, 0.5, 3),  # 2.5 -> 3: and here 3, so 3 orders kept fewer than half, 5 more
        (7, 0.5, 4),  # 3.5 -> 4: round kept 3
        (1, 1.5, 2),  # 1.5 -> 2: round made no copy
        (5, 1.5, 8),  # 7.5 -> 8: round made 7
        (10, 0.35, 4),  # 3.5 exactly (3.4999999999999996 in floats) -> 4
        (10, 0.34, 3),
        (4, 0.0, 0),
    ],
)
def test_demand_makes_n_x_factor_orders_rounded_half_up(n: int, factor: float, orders: int) -> None:
    """The window's n orders become n x factor, to the nearest order with halves up: one
    documented rule for drops and copies (it was Python's round, halves to even)."""
    variant = _apply(_numbered(n), {"kind": "demand", "factor": factor})
    assert len(variant.orders) == orders

    from scenarios.variants import scaled_count

    assert scaled_count(n, factor) == orders


def test_demand_counts_are_the_nearest_whole_order_with_halves_up() -> None:
    """Over many counts and factors: never more than half an order from n x factor, exact
    halves always up (Python's round sent 1.5 up and 2.5 down), the factor as written."""
    from fractions import Fraction

    from scenarios.variants import scaled_count

    halves = 0
    for n in range(15):
        for k in range(61):
            factor = k / 20
            exact = n * Fraction(k, 20)
            count = scaled_count(n, factor)
            assert abs(count - exact) <= Fraction(1, 2), (n, factor)
            if exact.denominator == 2:
                halves += 1
                assert count == exact + Fraction(1, 2), (n, factor)
    assert halves > 50


def test_copies_moved_past_the_horizon_are_not_made_and_noted() -> None:
    """A copy created late had its delivery window moved past the horizon end, and it became
    [20000, 20000]: an order due at the very end of the day, silently not the one copied. Such
    a copy is not made, and the variant's source.notes say how many and why."""
    base = _numbered(3, window={"start_s": 15_000, "end_s": 19_000})
    mod = {"kind": "demand", "factor": 3.0, "window": {"start_s": 0, "end_s": 19_000}}
    variant = _apply(base, mod)
    by_id = {o.id: o for o in base.orders}
    copies = [o for o in variant.orders if "~" in o.id]
    assert copies, "no copy made"
    for copy in copies:  # every copy is its original, moved with its creation time
        original = by_id[copy.id.split("~")[0]]
        shift = copy.created_s - original.created_s
        assert [(w.start_s - shift, w.end_s - shift) for w in copy.time_windows] == [
            (15_000, 19_000)
        ]
        assert copy.time_windows[0].start_s <= 20_000
    not_made = 6 - len(copies)
    assert not_made > 0  # seed 1 draws late creation times too
    assert variant.source.notes == (
        f"variants.0.modifiers.0: {not_made} of 6 copies not made: a delivery or pickup window "
        "of theirs, moved with the copy's creation time, would lie entirely outside the horizon "
        "[0, 20000] s"
    )


def test_a_shipment_copy_whose_pickup_window_leaves_the_horizon_is_not_made() -> None:
    data = _shipments().model_dump(mode="json")
    data["orders"] = [data["orders"][0]]
    data["orders"][0]["time_windows"] = []  # only the pickup's window can leave the horizon
    data["orders"][0]["pickup"]["time_windows"] = [{"start_s": 15_000, "end_s": 19_000}]
    base = Scenario.model_validate(data)
    variant = _apply(
        base, {"kind": "demand", "factor": 5.0, "window": {"start_s": 0, "end_s": 20_000}}
    )
    copies = [o for o in variant.orders if "~" in o.id]
    for copy in copies:
        assert copy.pickup is not None
        assert (
            copy.pickup.time_windows[0].start_s
            <= 20_000
            < copy.pickup.time_windows[0].end_s + 5_000
        )
    assert len(copies) < 4 and f"{4 - len(copies)} of 4 copies not made" in (
        variant.source.notes or ""
    )


def test_copies_of_long_ids_get_a_hashed_id_within_the_limit() -> None:
    """A 199-character id made a 201-character copy id, and the variant was refused. A copy id
    that would be too long is the id cut, a hash of the whole id and the copy number."""
    long_a, long_b = "a" * 195 + "xxxx", "a" * 195 + "yyyy"  # the same first 195 characters
    base = _numbered(3, ids=[long_a, long_b, "short"])
    variant = _apply(base, {"kind": "demand", "factor": 4.0})

    from scenarios.variants import MAX_ID_LENGTH, copy_id

    copies = [o.id for o in variant.orders[3:]]
    assert len(copies) == 9 and len(set(copies)) == 9
    assert all(len(c) <= MAX_ID_LENGTH for c in copies)
    assert {c for c in copies if c.startswith("short")} <= {f"short~{k}" for k in range(9)}
    assert copy_id("short", 3) == "short~3"  # unchanged where it fits
    a, b = copy_id(long_a, 3), copy_id(long_b, 3)
    assert a != b and len(a) == len(b) == MAX_ID_LENGTH and a.endswith("~3")
    assert a == copy_id(long_a, 3)  # deterministic
    assert _apply(base, {"kind": "demand", "factor": 4.0}) == variant


def test_a_variant_file_s_numbers_are_numbers_and_its_strings_are_not(
    tmp_path: Path, city: Scenario
) -> None:
    """A number given as a string is refused since session 63 (pydantic's lax mode read
    ``factor: "2"`` as 2). YAML 1.1, which PyYAML follows, reads ``1.2e0`` as a string: such
    a number (a float in JSON and YAML 1.2) is read as one, not refused as a string."""
    write_json(city, tmp_path / "city.json")
    path = tmp_path / "v.yaml"
    path.write_text(
        "base: city.json\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: 12e-1}\n",
        encoding="utf-8",
    )
    slow = read_variants(path).scenarios(seed=0)["slow"]
    assert slow.stochastic.travel_slowdowns[0].factor == 1.2
    path.write_text(
        "base: city.json\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: '1.2'}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        read_variants(path)
    assert (info.value.field, info.value.reason) == (
        "variants.0.modifiers.0.factor",
        "Input should be a valid number",
    )


def _nested(style: str, depth: int) -> str:
    """A variant file whose sequences and mappings nest ``depth`` deep, its root mapping one."""
    if style == "flow":
        return "base: city.json\nvariants: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"
    lines = ["base: city.json", "variants:"]  # sequences in sequences, one a line
    lines += [" " * (2 * i) + "-" for i in range(1, depth - 1)]
    return "\n".join([*lines, " " * (2 * (depth - 1)) + "- 1", ""])


@pytest.mark.parametrize("style", ["flow", "block"])
def test_a_variant_file_nested_past_the_limit_is_refused_as_it_is_read(
    tmp_path: Path, style: str
) -> None:
    """PyYAML's scanner is quadratic in the depth of ``[`` and its composer recursive: a file
    nested 5,000 deep took 4.3 s to refuse. Nesting is refused as the file is read, past
    :data:`MAX_YAML_DEPTH` levels (pydantic's JSON parser takes 201), block style too; a
    file nested as deep as that is read (then refused for its shape)."""
    path = tmp_path / "v.yaml"
    path.write_text(_nested(style, MAX_YAML_DEPTH))
    with pytest.raises(InputError) as err:
        read_variants(path)
    assert err.value.field.startswith("variants"), err.value  # read: its shape is wrong
    path.write_text(_nested(style, MAX_YAML_DEPTH + 1))
    with pytest.raises(InputError) as err:
        read_variants(path)
    assert (err.value.field, err.value.reason, err.value.source) == (
        "yaml",
        YAML_TOO_DEEP_REASON,
        str(path),
    )
