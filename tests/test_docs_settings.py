"""docs/api.md's settings table names every setting of the service, under the name it is set by."""

from __future__ import annotations

import re

from pydantic import AliasChoices

from api.core.config import Settings
from tests.conftest import REPO


def _settings_table() -> str:
    """The rows of the table under docs/api.md's "Settings" heading."""
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    section = text[text.index("### Settings") :]
    section = section[: section.index("\n### ", 1)]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `"))


def test_every_setting_is_in_the_table() -> None:
    """A setting the table left out (``heartbeat_s``, ``demo_seed``, ...) was documented nowhere."""
    named = set(re.findall(r"`([A-Za-z_]+)`", _settings_table()))
    missing = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        spellings = {name, *(alias.choices if isinstance(alias, AliasChoices) else ())}
        if not {str(s) for s in spellings} & named:
            missing.append(name)
    assert not missing, f"docs/api.md's settings table does not name {missing}"
