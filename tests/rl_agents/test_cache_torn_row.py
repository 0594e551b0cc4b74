"""The hindsight cache after a crash mid-append (a SIGKILL, a power cut): its last row cut
short is skipped with a warning naming the file and line, not a refusal of every day it
holds; the next append cuts it off and starts on a line of its own."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rl_agents.evaluate import DayOutcome, _append_cache, _read_cache, append_whole_line
from scenarios.errors import InputError
from scenarios.saved import SavedDataWarning


def _day(seed: int) -> DayOutcome:
    return DayOutcome("hindsight", seed, {"cost": float(seed)}, 0, [], 0.5, {"runs": [seed]})


def _cache(path: Path, seeds: list[int]) -> bytes:
    """A cache of the days ``seeds`` (key ``k``), written by the appends; its bytes."""
    for seed in seeds:
        _append_cache(path, "k", _day(seed))
    return path.read_bytes()


def _read(path: Path) -> tuple[list[int], list[str]]:
    """The seeds the cache holds under ``k`` and the warnings its read gave."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        days = _read_cache(path, "k")
    return [seed for _, seed in days], [str(w.message) for w in said]


def test_a_last_row_cut_short_is_skipped_with_a_warning_and_cut_by_the_next_append(
    tmp_path: Path,
) -> None:
    """``line 3: not JSON``: the whole cache (two whole days) was refused."""
    path = tmp_path / "cache.jsonl"
    whole = _cache(path, [1, 2, 3])
    path.write_bytes(whole[:-30])  # the third row's append stopped by a crash
    assert _read(path) == (
        [1, 2],
        [
            f"--hindsight-cache: line 3: a row cut short (no line end: the run appending it "
            f"was stopped) in {path}, skipped; the next day appended takes its place"
        ],
    )
    _append_cache(path, "k", _day(4))
    assert _read(path) == ([1, 2, 4], [])
    assert path.read_bytes() == _cache(tmp_path / "fresh.jsonl", [1, 2, 4])


def test_the_warning_is_one_line_of_dispatchlab() -> None:
    """``dispatchlab evaluate`` shows a SavedDataWarning as one ``warning:`` line."""
    from rl_agents.evaluate import CacheRowSkipped

    assert issubclass(CacheRowSkipped, SavedDataWarning)


def test_a_last_row_without_its_line_end_is_kept_and_the_next_row_starts_a_line(
    tmp_path: Path,
) -> None:
    """A crash between a row and its line end (or a cache edited by hand): the row is whole;
    the next append was glued onto it (``line 2: not JSON (Extra data ...)``)."""
    path = tmp_path / "cache.jsonl"
    path.write_bytes(_cache(path, [1, 2])[:-1])
    assert _read(path) == ([1, 2], [])
    _append_cache(path, "k", _day(3))
    assert _read(path) == ([1, 2, 3], [])
    assert path.read_bytes() == _cache(tmp_path / "fresh.jsonl", [1, 2, 3])


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(b'{"scenario_key": "k", "pol\n', 2, id="cut-row-with-line-end"),
        pytest.param(b'{"scenario_key": "k", "pol\n{"scenario_key": ', 2, id="cut-row-inside"),
        pytest.param(b"not a cache", 2, id="last-line-not-a-row"),
    ],
)
def test_a_bad_line_that_is_not_a_last_row_cut_short_is_still_an_error(
    tmp_path: Path, text: bytes, line: int
) -> None:
    """Only a torn *last* row, without its line end, is skipped: a bad line elsewhere, or a
    last line that is no row's start, still refuses the file (it may not be a cache)."""
    path = tmp_path / "cache.jsonl"
    first = _cache(path, [1])
    path.write_bytes(first + text)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=f"line {line}: not JSON"):
            _read_cache(path, "k")
    assert said == []  # (no warning of a row skipped in a file refused)
    assert path.read_bytes() == first + text


def test_a_cache_of_one_row_cut_short_is_read_empty(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_bytes(b'{"scenario_k')
    days, said = _read(path)
    assert days == [] and len(said) == 1 and "line 1: a row cut short" in said[0]
    _append_cache(path, "k", _day(5))
    assert _read(path) == ([5], [])


def test_a_plain_append_ends_a_last_line_left_without_its_line_end(tmp_path: Path) -> None:
    """Without a test of a cut row, nothing is cut: the last line is ended."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"a\nb")
    append_whole_line(path, "c\n")
    assert path.read_bytes() == b"a\nb\nc\n"


@given(
    seeds=st.lists(st.integers(0, 10**6), min_size=1, max_size=4, unique=True),
    cut=st.integers(min_value=1),
    new=st.integers(0, 10**6),
)
def test_a_last_row_cut_anywhere_loses_that_row_alone(
    tmp_path_factory: pytest.TempPathFactory, seeds: list[int], cut: int, new: int
) -> None:
    """However many bytes of the last row a crash left (its line end included or not), the
    read gives every row before it (and it, whole but for its line end), and the next append
    leaves a cache of those rows and the new one, read without a warning."""
    folder = tmp_path_factory.mktemp("cut")
    path = folder / "cache.jsonl"
    whole = _cache(path, seeds)
    last = whole[:-1].rfind(b"\n") + 1  # where the last row starts
    cut_at = last + 1 + cut % (len(whole) - last - 1)  # 1 byte of it .. all but its line end
    path.write_bytes(whole[:cut_at])
    kept = seeds if cut_at == len(whole) - 1 else seeds[:-1]
    days, said = _read(path)
    assert days == kept
    assert len(said) == (0 if kept == seeds else 1)
    if new in kept:
        return
    _append_cache(path, "k", _day(new))
    assert _read(path) == ([*kept, new], [])
    assert path.read_bytes() == _cache(folder / "fresh.jsonl", [*kept, new])
