"""The skills the planners give couriers and jobs of their own, which no scenario may hold.

A re-plan binds a parcel on board to its courier with a skill only that courier has
(``on board <courier id>``), and stops a courier over its route budget from taking new work
with a skill every other courier has (:data:`NEW_WORK_SKILL`); the twin's re-optimising
policy binds a parcel on board likewise (``reopt.on-board.<courier>``). A courier given such
a skill by its scenario (``on board c2``) could deliver another courier's parcels: the
service refuses a scenario holding one (a 422 naming the field), and so does every reader of
a scenario file or standard input (:func:`scenarios.io.load_scenario`,
:func:`~scenarios.io.scenario_from_bytes`: the command line, exit 2), see
:func:`check_no_reserved_skills`. The planners' own scenarios, built in memory, are not read
so and keep them.
"""

from __future__ import annotations

from collections.abc import Iterator

from scenarios.errors import InputError, field_path
from scenarios.model import Scenario

#: The start of the skill only one courier has in a re-plan: the parcels it has on board.
ON_BOARD_PREFIX = "on board "
#: The skill every courier job but a parcel on board needs in a re-plan where a courier is
#: over its route budget, and every courier within its budget has.
NEW_WORK_SKILL = "a courier within its route budget"
#: The start of the skill that binds a parcel on board to its courier in the twin's
#: re-optimising policy (``simulation.policies.reopt.courier_skill``).
TWIN_ON_BOARD_PREFIX = "reopt.on-board."


def reserved_skill(skill: str) -> str | None:
    """Why ``skill`` is the planners' own and no scenario may hold it; None if it is not."""
    if skill.startswith(ON_BOARD_PREFIX):
        return (
            f"a skill starting {ON_BOARD_PREFIX!r} is reserved: a re-plan gives it to the "
            "courier a parcel is on board of, so that no other courier delivers it"
        )
    if skill == NEW_WORK_SKILL:
        return (
            f"{NEW_WORK_SKILL!r} is a reserved skill: a re-plan gives it to the couriers "
            "within their route budget, so that one over it takes no new work"
        )
    if skill.startswith(TWIN_ON_BOARD_PREFIX):
        return (
            f"a skill starting {TWIN_ON_BOARD_PREFIX!r} is reserved: the twin's re-optimising "
            "policy gives it to the courier a parcel is on board of"
        )
    return None


def reserved_skills(scenario: Scenario) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Each skill of ``scenario`` that is the planners' own (:func:`reserved_skill`): its
    field path (a vehicle's ``skills``, an order's or arrival template's
    ``required_skills``) and why."""
    for i, vehicle in enumerate(scenario.vehicles):
        for k, skill in enumerate(vehicle.skills):
            reason = reserved_skill(skill)
            if reason is not None:
                yield ("vehicles", i, "skills", k), reason
    templates = scenario.arrivals.templates if scenario.arrivals is not None else []
    places: list[tuple[str | int, ...]] = [("orders", i) for i in range(len(scenario.orders))]
    places += [("arrivals", "templates", i) for i in range(len(templates))]
    for place, order in zip(places, [*scenario.orders, *templates], strict=True):
        for k, skill in enumerate(order.required_skills):
            reason = reserved_skill(skill)
            if reason is not None:
                yield (*place, "required_skills", k), reason


def check_no_reserved_skills(
    scenario: Scenario, *, under: str = "", source: str | None = None
) -> None:
    """Raise an InputError naming the first skill of ``scenario`` that is the planners' own
    (its field path, below ``under`` if given; ``source``: the file it was read from)."""
    for loc, reason in reserved_skills(scenario):
        raise InputError(field_path((under, *loc) if under else loc), reason, source=source)
