"""Writing JSON files: the atomic write names the caller's path when it cannot be made."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.io.json_io import atomic_write

PROC = Path("/proc")


@pytest.mark.skipif(not PROC.is_dir(), reason="no /proc here")
def test_a_temp_file_that_cannot_be_made_is_reported_on_the_callers_path() -> None:
    """``/proc/x.json`` was reported as ``/proc/.x.json.tmp-PID: No such file or directory``,
    a name the caller never gave."""
    target = PROC / "x.json"
    with pytest.raises(OSError) as caught, atomic_write(target) as fh:
        fh.write(b"{}")
    assert caught.value.filename == str(target)
    assert isinstance(caught.value, FileNotFoundError)  # the class is kept
    assert caught.value.strerror is not None and ".x.json.tmp-" in caught.value.strerror


def test_a_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic_write(target) as fh:
        fh.write(b"new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
