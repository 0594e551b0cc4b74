"""The planners' own skills (``scenarios.skills``) in a scenario the command line reads are
bad input, as the service refuses them (a 422): until session 80 a courier given ``on board
o2`` or ``reopt.on-board.v0`` by its scenario file spoofed a re-plan's or the twin's binding
of a parcel on board, at the command line alone."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from scenarios.errors import InputError
from scenarios.model import Scenario
from scenarios.skills import NEW_WORK_SKILL, ON_BOARD_PREFIX, TWIN_ON_BOARD_PREFIX
from tests.dispatchlab.conftest import RunHere
from tests.dispatchlab.small import SMALL

#: a scenario whose courier has a reserved skill, and one whose order requires one: the
#: field each names
SPOOFS = {
    "vehicle.json": ("vehicles", 0, "skills", f"{TWIN_ON_BOARD_PREFIX}1"),
    "order.json": ("orders", 1, "required_skills", f"{ON_BOARD_PREFIX}c2"),
}


def _spoofed(where: tuple[str, int, str, str]) -> dict[str, object]:
    """SMALL with the skill ``where`` names given to its courier or order."""
    data = copy.deepcopy(SMALL)
    kind, index, field, skill = where
    items = data[kind]
    assert isinstance(items, list)
    items[index][field] = [skill]
    return data


@pytest.fixture
def spoofs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working folder, with the :data:`SPOOFS` files and a variant file of
    each (``<name>.yaml``, the file as its base)."""
    monkeypatch.chdir(tmp_path)
    for name, where in SPOOFS.items():
        (tmp_path / name).write_text(json.dumps(_spoofed(where)))
        variants = f"base: {name}\nvariants:\n  - name: more\n    modifiers: []\n"
        (tmp_path / f"{Path(name).stem}.yaml").write_text(variants)
    return tmp_path


@pytest.mark.parametrize("name", sorted(SPOOFS))
@pytest.mark.parametrize(
    "command",
    [
        ["route", "{file}", "--engine", "greedy"],
        ["simulate", "{file}", "--executor", "serial", "--replications", "1"],
        ["whatif", "{stem}.yaml", "--executor", "serial", "--replications", "1"],
        ["allocate", "{file}", "--scenario"],
        ["evaluate", "--scenario", "{file}", "--policies", "greedy", "--seeds", "1"],
        ["train", "--scenario", "{file}"],
        ["scenario", "show", "{file}"],
    ],
)
def test_a_reserved_skill_in_a_scenario_file_is_bad_input(
    spoofs: Path, run_here: RunHere, name: str, command: list[str]
) -> None:
    kind, index, field, _skill = SPOOFS[name]
    stem = Path(name).stem
    argv = [a.replace("{file}", name).replace("{stem}", stem) for a in command]
    code, err = run_here(*argv)
    assert code == 2, err
    where = f"{name}: {kind}.{index}.{field}.0: a skill starting "  # (whatif: the base's path)
    assert err.startswith("error: ") and where in err and "is reserved" in err, err
    assert len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "skill", [f"{ON_BOARD_PREFIX}v0", NEW_WORK_SKILL, f"{TWIN_ON_BOARD_PREFIX}v0"]
)
def test_standard_input_is_checked_as_a_file(skill: str) -> None:
    """``dispatchlab route -`` reads its scenario with scenario_from_bytes: the same check."""
    from scenarios.io import scenario_from_bytes

    data = _spoofed(("vehicles", 0, "skills", skill))
    with pytest.raises(InputError) as info:
        scenario_from_bytes(json.dumps(data).encode(), source="<stdin>")
    assert (info.value.source, info.value.field) == ("<stdin>", "vehicles.0.skills.0")
    assert "reserved" in info.value.reason


def test_the_planners_own_scenarios_keep_their_skills() -> None:
    """The re-plan and the twin build their scenarios in memory with these skills: the model
    takes them (only the readers of a user's input refuse them), and a skill that merely
    resembles one is anybody's."""
    from scenarios.io import scenario_from_bytes

    data = _spoofed(("vehicles", 0, "skills", f"{TWIN_ON_BOARD_PREFIX}o1"))
    assert Scenario.model_validate(data).vehicles[0].skills == [f"{TWIN_ON_BOARD_PREFIX}o1"]
    for skill in ("onboard c2", "reopt.on-board", "a courier within its route budget!"):
        text = json.dumps(_spoofed(("vehicles", 0, "skills", skill))).encode()
        assert scenario_from_bytes(text, source="x.json").vehicles[0].skills == [skill]
