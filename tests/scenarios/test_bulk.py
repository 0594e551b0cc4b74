"""scenarios/bulk.py: the collector paused while a large model is built, then as it was."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from scenarios import bulk
from scenarios.bulk import collector_paused


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The collector enabled for the test, as it was after it."""
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_paused_inside_resumed_after() -> None:
    """Paused inside (nested pauses too), enabled again when the outermost ends."""
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_resumed_after_an_error() -> None:
    """An exception inside (a refused input) still resumes the collector."""
    with pytest.raises(ValueError, match="bad"), collector_paused():
        raise ValueError("bad")
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    """A caller that disabled the collector keeps it disabled."""
    was = gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


@pytest.mark.usefixtures("collector_on")
def test_full_collection_only_after_a_large_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pause that made many objects ends with one full collection (the garbage cycles made
    meanwhile are freed then); a small one leaves them to the young collections."""
    calls: list[int] = []
    real_collect = gc.collect

    def collect(*args: int) -> int:
        calls.append(1)
        return real_collect(*args)

    monkeypatch.setattr(bulk.gc, "collect", collect)
    monkeypatch.setattr(bulk, "FULL_COLLECTION_AFTER", 10_000)
    with collector_paused():
        small = [[i] for i in range(100)]
    assert calls == []
    with collector_paused():
        large = [[i] for i in range(50_000)]
    assert calls == [1]
    assert len(small) + len(large) == 50_100


@pytest.mark.usefixtures("collector_on")
def test_threads_resume_it_once_all_are_done() -> None:
    """Two threads pausing at once: enabled again only when both are done."""
    inside = threading.Barrier(2)
    leave = threading.Event()
    states: list[bool] = []

    def hold() -> None:
        with collector_paused():
            inside.wait()
            leave.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        with collector_paused():
            inside.wait()
        states.append(gc.isenabled())  # the other thread still builds
    finally:
        leave.set()
        thread.join()
    assert states == [False]
    assert gc.isenabled()
