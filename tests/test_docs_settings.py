"""docs/api.md's settings table names every setting of the service, under the name it is set by,
with its default."""

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


def _documented(value: str) -> object:
    """A default as the table writes it (``10 000``, ``2 592 000 (30 days)``, ``10 MB``,
    ``none``, ``true``, ``local``) as the value it stands for."""
    value = re.sub(r"\s*\(.*\)$", "", value.strip())
    if value == "none":
        return None
    if value in ("true", "false"):
        return value == "true"
    if value.endswith(" MB"):
        return int(value.removesuffix(" MB").replace(" ", "")) * 1_000_000
    if re.fullmatch(r"[\d ]+(\.\d+)?", value):
        return float(value.replace(" ", ""))
    return value.strip("`")


def test_every_default_in_the_table_is_the_setting_s_default() -> None:
    """A row ``| `a`, `b` | x, y |`` gives the defaults of settings a and b, in order."""
    checked, wrong = 0, []
    for row in _settings_table().splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = re.findall(r"`([A-Za-z_]+)`", cells[0])
        values = re.split(r",\s+(?![^(]*\))", cells[1])
        if len(names) != len(values) or not all(n in Settings.model_fields for n in names):
            continue  # DATABASE_URL / data_dir, DISPATCHLAB_MODELS_DIR: described, not a value
        for name, value in zip(names, values, strict=True):
            default = Settings.model_fields[name].default
            documented = _documented(value)
            if isinstance(documented, float) and not isinstance(default, bool):
                same = default is not None and float(default) == documented
            else:
                same = default == documented
            checked += 1
            if not same:
                wrong.append(f"{name}: table {value!r}, code {default!r}")
    assert checked >= 25 and not wrong, wrong
