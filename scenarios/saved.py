"""Reading data saved by older versions: what the model now rejects in new input is corrected.

A travel matrix with a non-zero diagonal was accepted before the model required zero travel
from a place to itself. Scenario files and stored jobs and plans written then must still
load, so data validated with :func:`saved_context` (files read from disk, job payloads and
plans read back from the database) gets the diagonal set to zero, a line in the scenario's
``source.notes`` and a :class:`SavedDataWarning` (:func:`read_saved` returns the notes
instead, for a service to pass on to its client and log); new input (request bodies, model
constructors) is still rejected naming the entry.

A scenario's times outside its horizon (a shift past it, a window entirely outside it) have no
safe correction: only data the service stored (:func:`read_saved`, :func:`validate_saved`,
``saved_context(stored=True)``) keeps them, noted and warned about like a correction; a file
with them is refused, as new input is.

Rules newer than data the service stored that have no safe correction either (an id holding
a control character, a SKU key of 0 or 201 characters, a per-SKU safety stock outside the
catalogue, a blank skill or capacity dimension) are not relaxed: such data is read back as
stored, and running it is refused naming the field, as new input is; :func:`newer_rule` says
which rule the data predates, for the message.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from pydantic import BaseModel, ValidationInfo

from scenarios.bulk import collector_paused
from scenarios.geo import BLANK_REASON, CONTROL_CHARACTERS_REASON

M = TypeVar("M", bound=BaseModel)

#: validation-context key: the data was saved earlier (read leniently, corrections noted)
SAVED = "dispatchlab_saved_data"
#: validation-context key: the data was stored by the service (a job payload or plan read
#: back from the database), which its user cannot edit: rules newer than the data that have
#: no safe correction (a scenario's times against its horizon) are noted, not enforced
STORED = "dispatchlab_stored_data"
_PENDING = "dispatchlab_pending_corrections"
_DONE = "dispatchlab_corrections"


class SavedDataWarning(UserWarning):
    """Saved data was read with a correction new input would be rejected for."""


@contextmanager
def saved_data_shown(say: Callable[[str], None]) -> Iterator[None]:
    """Show each :class:`SavedDataWarning` issued in the block as ``say(message)``, one line
    each time it is issued; other warnings are shown as Python shows them.

    Python's own format (``file.py:123: CacheRowSkipped: ...`` and the line of source) is
    for the programmer; a command or a script says a correction of its input in its words
    (``dispatchlab``'s ``warning:`` lines, the benchmark scripts').
    """
    with warnings.catch_warnings():
        warnings.simplefilter("always", SavedDataWarning)
        python_show = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if issubclass(category, SavedDataWarning):
                say(str(message))
            else:
                python_show(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def saved_context(*, stored: bool = False) -> dict[str, Any]:
    """A fresh validation context for data saved earlier (pass as ``context=``).

    ``stored``: saved by the service itself (see :data:`STORED`), not a file.
    """
    return {SAVED: True, STORED: stored, _PENDING: [], _DONE: []}


def is_saved(info: ValidationInfo) -> bool:
    """True when the model is validated as saved data (see :func:`saved_context`)."""
    context = info.context
    return isinstance(context, dict) and bool(context.get(SAVED))


def is_stored(info: ValidationInfo) -> bool:
    """True when the model is validated as data the service stored (see :data:`STORED`)."""
    context = info.context
    return isinstance(context, dict) and bool(context.get(STORED))


def note_pending(info: ValidationInfo, field: str) -> None:
    """Record that ``field`` (relative to the enclosing scenario) was corrected."""
    context = info.context
    if isinstance(context, dict):
        context.setdefault(_PENDING, []).append(field)


def take_pending(info: ValidationInfo) -> list[str]:
    """The corrections recorded since the last call (an enclosing scenario notes them)."""
    context = info.context
    if not isinstance(context, dict):
        return []
    pending: list[str] = context.get(_PENDING) or []
    out = list(pending)
    pending.clear()
    return out


def record_done(info: ValidationInfo, note: str) -> None:
    """Keep a correction's note for :func:`validate_saved` to warn about."""
    context = info.context
    if isinstance(context, dict):
        context.setdefault(_DONE, []).append(note)


def warn_corrections(context: dict[str, Any], source: str | None = None) -> list[str]:
    """Issue a :class:`SavedDataWarning` per correction made under ``context``; returns them."""
    notes: list[str] = list(context.get(_DONE) or [])
    for note in notes:
        warnings.warn(f"{source}: {note}" if source else note, SavedDataWarning, stacklevel=2)
    return notes


def read_saved(cls: type[M], data: Any) -> tuple[M, list[str]]:
    """Validate data saved earlier into ``cls``, correcting it; the notes, without a warning.

    For callers that report the corrections themselves (a service answering a client).
    """
    context = saved_context(stored=True)
    with collector_paused():  # a stored scenario may be large (scenarios.bulk)
        model = cls.model_validate(data, context=context)
    return model, list(context.get(_DONE) or [])


def validate_saved(cls: type[M], data: Any, *, source: str | None = None) -> M:
    """Validate data saved earlier into ``cls``, correcting and warning as described above."""
    context = saved_context(stored=True)
    with collector_paused():  # a stored payload may hold a large scenario (scenarios.bulk)
        model = cls.model_validate(data, context=context)
    warn_corrections(context, source)
    return model


@dataclass(frozen=True)
class NewerRule:
    """A rule of the model newer than data the service may have stored (see :func:`newer_rule`)."""

    #: what the rule asks, after "stored before": ``SKU keys had to be 1 to 200 characters``
    what: str
    #: how new data meets it, after "make a new plan": ``with SKU keys of 1 to 200 characters``
    fix: str


#: ids refused control characters (session 38)
CONTROL_CHARACTERS_RULE = NewerRule("ids refused control characters", "with ids without them")
#: a SKU id as a key (a node's inventory or safety_stock, rules.restricted_skus) had to be 1 to
#: 200 characters, as an order line's sku (session 51)
SKU_KEY_LENGTH_RULE = NewerRule(
    "SKU keys had to be 1 to 200 characters", "with SKU keys of 1 to 200 characters"
)
#: a node's per-SKU safety stock had to name a SKU of the catalogue (session 51)
SAFETY_STOCK_SKU_RULE = NewerRule(
    "a per-SKU safety stock had to name a SKU of the catalogue",
    "whose per-SKU safety stocks name SKUs of the catalogue",
)

#: a what-if variant could not be named ``base`` (session 64)
BASE_VARIANT_RULE = NewerRule(
    "variants refused the name 'base'",
    "with that variant renamed (its modifiers apply to the base)",
)

#: skills (a vehicle's ``skills``, an order's ``required_skills``) and the names of
#: ``capacity_dims`` became ids: 1 to 200 characters, not blank, no control character
#: (session 78)
SKILL_ID_RULE = NewerRule(
    "skills and capacity dimensions became ids (1 to 200 characters, not blank, no control "
    "character)",
    "whose skills and capacity_dims are such ids",
)

_SKU_KEY = re.compile(r"(?:^|\.)(?:inventory|safety_stock|restricted_skus)\.")
_SAFETY_STOCK_KEY = re.compile(r"(?:^|\.)nodes\.\d+\.safety_stock\.")
_VARIANT_NAME = re.compile(r"(?:^|\.)variants\.\d+\.name$")
_SKILL_OR_DIMENSION = re.compile(r"(?:^|\.)(?:skills|required_skills|capacity_dims)\.\d+$")
#: the starts of the reasons an :data:`~scenarios.geo.Id` gives for its length
_ID_LENGTH_REASONS = ("String should have at least 1 character", "String should have at most ")


def newer_rule(field: str, reason: str) -> NewerRule | None:
    """The rule, newer than data the service may have stored, that the error ``reason`` on
    ``field`` (a dotted path, as a 422 names it) enforces; None for any other error."""
    if _SKILL_OR_DIMENSION.search(field) and (
        reason.startswith(_ID_LENGTH_REASONS)
        or BLANK_REASON in reason
        or CONTROL_CHARACTERS_REASON in reason
    ):
        return SKILL_ID_RULE  # a control character too: a skill was no id before
    if CONTROL_CHARACTERS_REASON in reason:
        return CONTROL_CHARACTERS_RULE
    if _SKU_KEY.search(field) and reason.startswith("Key should have"):
        return SKU_KEY_LENGTH_RULE
    if _SAFETY_STOCK_KEY.search(field) and reason.startswith("unknown SKU "):
        return SAFETY_STOCK_SKU_RULE
    from scenarios.variants import BASE_NAME_REASON  # it imports this module

    if _VARIANT_NAME.search(field) and reason == BASE_NAME_REASON:
        return BASE_VARIANT_RULE
    return None
