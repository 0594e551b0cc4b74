"""``scenarios.io.together``: several files written as one, all of them replaced or none."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.io.together import write_together


def _folder(path: Path) -> dict[str, str]:
    """Every file of ``path`` (hidden ones too) -> its text."""
    return {p.name: p.read_bytes().decode("utf-8") for p in sorted(path.iterdir())}


class _RenameFails:
    """``os.replace`` failing (a full disk, a read-only file) on its ``nth`` call, 1-based."""

    def __init__(self, nth: int) -> None:
        self.nth, self.calls = nth, 0
        self.real = os.replace

    def __call__(self, source: str | Path, target: str | Path) -> None:
        self.calls += 1
        if self.calls == self.nth:
            raise OSError(28, "No space left on device", str(source))
        self.real(source, target)


@settings(max_examples=60, deadline=None)
@given(
    old=st.lists(st.booleans(), min_size=2, max_size=4),
    data=st.data(),
)
def test_a_failed_rename_leaves_every_file_as_it_was(old: list[bool], data: st.DataObject) -> None:
    """Whichever rename fails, each target is as before (its old text, or still no file) and
    no temporary or kept file is left; the error names the target, not a temporary name."""
    nth = data.draw(st.integers(min_value=1, max_value=len(old)), label="failing rename")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, there in enumerate(old):
            if there:
                (folder / f"f{i}.txt").write_text(f"old {i}\n", encoding="utf-8")
        before = _folder(folder)
        new = {folder / f"f{i}.txt": f"new {i}\n" for i in range(len(old))}
        failing = _RenameFails(nth)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "replace", failing)
            with pytest.raises(OSError, match="No space left") as raised:
                write_together(new)
        assert _folder(folder) == before
        assert raised.value.filename == str(folder / f"f{nth - 1}.txt")
        write_together(new)  # and a later run writes them all
        assert _folder(folder) == {p.name: text for p, text in new.items()}


def test_the_files_are_replaced_together_with_their_texts_as_given(tmp_path: Path) -> None:
    """Each target gets its text byte for byte (a CSV keeps its ``\\r\\n``), in folders of
    its own; nothing else is left beside them."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "t.csv").write_text("old\n", encoding="utf-8")
    new = {tmp_path / "a" / "t.csv": "x,y\r\n1,2\r\n", tmp_path / "b" / "t.json": "{}\n"}
    assert write_together(new) == list(new)
    assert (tmp_path / "a" / "t.csv").read_bytes() == b"x,y\r\n1,2\r\n"
    assert _folder(tmp_path / "a") == {"t.csv": "x,y\r\n1,2\r\n"}
    assert _folder(tmp_path / "b") == {"t.json": "{}\n"}


def test_one_file_named_twice_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """``x.json`` and ``./sub/../x.json`` are one file: the second text would replace the
    first without a word."""
    (tmp_path / "sub").mkdir()
    same = tmp_path / "sub" / ".." / "x.json"
    with pytest.raises(ValueError, match="one file given twice"):
        write_together({tmp_path / "x.json": "1", same: "2"})
    assert not (tmp_path / "x.json").exists()


def test_a_symlink_is_written_through_once_the_others_are_in_place(tmp_path: Path) -> None:
    """A symlink (``latest.json``) keeps being a link: its target gets the text."""
    real = tmp_path / "run-5.json"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    write_together({link: "new", tmp_path / "t.md": "# t\n"})
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "new"
    assert (tmp_path / "t.md").read_text(encoding="utf-8") == "# t\n"


def test_a_folder_that_cannot_take_a_file_is_an_error_naming_the_target(tmp_path: Path) -> None:
    """No folder for the second file: the first is not written either, and the error names
    the target the caller gave."""
    first, second = tmp_path / "a.json", tmp_path / "missing" / "b.md"
    with pytest.raises(FileNotFoundError) as raised:
        write_together({first: "{}", second: "# b"})
    assert raised.value.filename == str(second)
    assert not first.exists() and _folder(tmp_path) == {}


def test_bytes_are_written_as_they_are_beside_texts(tmp_path: Path) -> None:
    """A report's PNGs (bytes) go together with its texts: each file holds what was given,
    a symlink's target too."""
    png = bytes(range(256)) + b"\r\n\n"
    (tmp_path / "target.png").write_bytes(b"old")
    (tmp_path / "link.png").symlink_to(tmp_path / "target.png")
    files: dict[Path, str | bytes] = {
        tmp_path / "plot.png": png,
        tmp_path / "link.png": png[::-1],
        tmp_path / "t.csv": "a,b\r\n1,2\r\n",
    }
    assert write_together(files) == list(files)
    assert (tmp_path / "plot.png").read_bytes() == png
    assert (tmp_path / "target.png").read_bytes() == png[::-1]
    assert (tmp_path / "t.csv").read_bytes() == b"a,b\r\n1,2\r\n"
