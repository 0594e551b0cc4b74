"""An input with nothing in it says so, in the same words whatever reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dispatchlab.conftest import RunHere
from tests.dispatchlab.small import SMALL


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working folder, holding small.json."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.json").write_text(json.dumps(SMALL))
    return tmp_path


@pytest.mark.parametrize("text", ["", " \n\t\n"])
@pytest.mark.parametrize(
    ("command", "empty", "what"),
    [
        (["route", "{empty}", "--engine", "greedy"], "x.json", "a scenario"),
        (["route", "{empty}", "--engine", "greedy"], "x.txt", "a scenario"),
        (["scenario", "convert", "{empty}"], "x.json", "a scenario"),
        (["allocate", "{empty}"], "x.json", "an allocation request"),
        (["allocate", "{empty}", "--scenario"], "x.json", "a scenario"),
        (["simulate", "small.json", "--plan", "{empty}"], "x.json", "a plan"),
        (["whatif", "{empty}"], "x.yaml", "a variants file"),
        (["evaluate", "--scenario", "{empty}", "--seeds", "1"], "x.json", "a scenario"),
    ],
)
def test_an_empty_input_file_says_it_is_empty(
    files: Path, run_here: RunHere, command: list[str], empty: str, what: str, text: str
) -> None:
    """An empty ``.json`` file said ``(root): Invalid JSON: EOF while parsing a value at line
    1 column 0``, an empty variants file ``expected a mapping with base and variants``, an
    empty ``.txt`` ``format: the input is empty``: one message now, under ``(root)``."""
    (files / empty).write_text(text)
    code, err = run_here(*[empty if arg == "{empty}" else arg for arg in command])
    assert code == 2
    assert err == f"error: {empty}: (root): the input is empty: nothing to read {what} from\n"
