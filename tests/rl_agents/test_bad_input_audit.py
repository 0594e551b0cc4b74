"""JSON nested too deeply inside an RL input file (a model's record, a hindsight cache line)
is an InputError naming the file, as any bad JSON there: it was a RecursionError."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rl_agents.evaluate import _read_cache
from rl_agents.model_io import META, WEIGHTS, load_model
from scenarios.errors import InputError

DEEP = "[" * 5_000 + "]" * 5_000


def test_a_model_record_nested_too_deeply_is_not_a_readable_model(tmp_path: Path) -> None:
    path = tmp_path / "model.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(META, DEEP)
        zf.writestr(WEIGHTS, b"")
    with pytest.raises(InputError) as err:
        load_model(path)
    assert err.value.field == "model"
    assert "is not a readable dispatchlab model" in err.value.reason
    assert "nested too deeply" in err.value.reason


def test_a_hindsight_cache_line_nested_too_deeply_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_text('{"scenario_key": "other"}\n' + DEEP + "\n")
    with pytest.raises(InputError) as err:
        _read_cache(path, "key")
    assert err.value.reason == (f"line 2: not JSON (arrays or objects nested too deeply) in {path}")
