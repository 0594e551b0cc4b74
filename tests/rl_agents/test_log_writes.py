"""``dispatchlab train`` on a full disk: each file of the run that cannot be written (its
TensorBoard log, a checkpoint, the model) is one error line naming it, and the model file
keeps the last model written whole.

A real full disk needs a mount (root); here the writes fail as a full disk fails them
(``OSError(ENOSPC)`` naming no file), where they happen: TensorBoard's writer thread, SB3's
save of a checkpoint, the model's save.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import rl_agents.model_io
import rl_agents.train as train_module
from dispatchlab.cli import app
from rl_agents.model_io import load_model
from rl_agents.train import TrainingStopped, TrainParams, save_checkpoint, train
from scenarios import Scenario

runner = CliRunner()
FULL = "No space left on device"


def _disk_full() -> OSError:
    """The error a write on a full disk raises: ENOSPC, naming no file."""
    return OSError(errno.ENOSPC, FULL)


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """The errors of threads that end with one and are not handled (each printed a traceback)."""
    seen: list[BaseException] = []

    def record(args: Any) -> None:
        seen.append(args.exc_value)

    monkeypatch.setattr(threading, "excepthook", record)
    return seen


def _full_event_files(
    monkeypatch: pytest.MonkeyPatch, *, after: int, made: list[Path] | None = None
) -> None:
    """TensorBoard's event files take ``after`` writes, then the disk is full (the files a
    failed write makes are added to ``made``)."""
    from tensorboard.compat.tensorflow_stub.io import gfile

    real: Callable[..., None] = gfile.LocalFileSystem._write
    writes = [0]

    def write(self: object, filename: str | bytes, content: object, mode: str) -> None:
        writes[0] += 1
        if writes[0] > after:
            open(os.fsdecode(filename), mode).close()  # (a full disk makes the file, not its bytes)
            if made is not None:
                made.append(Path(os.fsdecode(filename)))
            raise _disk_full()
        real(self, filename, content, mode)

    monkeypatch.setattr(gfile.LocalFileSystem, "_write", write)


def _event_file(logs: Path) -> Path:
    (event,) = logs.rglob("events.out.tfevents.*")
    return event


def test_a_log_that_cannot_be_written_is_one_line_naming_it(
    tiny_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    thread_errors: list[BaseException],
) -> None:
    """``train --logdir`` on a full disk: TensorBoard's writer thread printed a traceback
    (``Exception in thread Thread-1``), then ``error: No space left on device``, naming no
    file; now one line names the event file, the option and what ``--out`` holds. The event
    file its first write left empty is removed (until session 82 it stayed: no log in it)."""
    made: list[Path] = []
    _full_event_files(monkeypatch, after=0, made=made)
    out, logs = tmp_path / "m.zip", tmp_path / "logs"
    args = ["train", "--algo", "ppo", "--scenario", str(tiny_file), "--timesteps", "16"]
    args += ["--envs", "1", "--imitation-days", "0", "--eval-every", "0", "--quiet"]
    result = runner.invoke(app, [*args, "--out", str(out), "--logdir", str(logs)])
    assert result.exit_code == 2, result.output
    (event,) = set(made)  # the file its write made (empty: the disk took none of its bytes)
    assert event.parent.parent == logs and event.name.startswith("events.out.tfevents.")
    assert result.stderr == (
        f"error: {event}: --logdir: {FULL} (training stopped; {out} not written)\n"
    )
    assert thread_errors == []  # no traceback of the writer thread
    assert not out.exists()
    assert list(logs.rglob("events.out.tfevents.*")) == []


def test_a_log_failing_during_training_keeps_the_model_written_before(
    tiny: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    thread_errors: list[BaseException],
) -> None:
    """The disk fills while training: the run stops at the next log write, naming the event
    file, and the model file holds the model validated before (the warm start's step 0)."""
    _full_event_files(monkeypatch, after=3)
    params = TrainParams(
        algo="ppo",
        timesteps=64,
        num_envs=1,
        imitation_days=0,
        eval_every=1_000,
        eval_days=1,
        n_steps=8,
        batch_size=8,
        n_epochs=1,
    )
    out, logs = tmp_path / "m.zip", tmp_path / "logs"
    with pytest.raises(TrainingStopped) as info:
        train(tiny, params, out=out, logdir=logs, progress=False)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(_event_file(logs)))
    assert info.value.kept() == f"kept {out} (step 0)"
    assert load_model(out).meta["info"]["selected"] == "step 0"
    assert thread_errors == []


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EMFILE, "Too many open files"),
        PermissionError(errno.EACCES, "Permission denied", "/elsewhere/x"),
    ],
    ids=["no-file", "another-file"],
)
def test_an_os_error_that_is_no_write_of_the_run_keeps_its_own_error(
    tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    """Any OS error once training started became TrainingStopped, said as a file of the run
    that could not be written (``(training stopped; ...)``); one of anything else (the
    environments' processes, another file) is its own error, said as any other."""

    def fail(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(train_module, "make_vec_env", fail)
    params = TrainParams(algo="ppo", timesteps=8, num_envs=1, imitation_days=0, eval_every=0)
    out, logs = tmp_path / "m.zip", tmp_path / "logs"
    with pytest.raises(OSError) as info:
        train(Scenario.model_validate_json(tiny_file.read_bytes()), params, out=out, logdir=logs)
    assert info.value is error and not isinstance(info.value, TrainingStopped)
    args = ["train", "--algo", "ppo", "--scenario", str(tiny_file), "--timesteps", "8"]
    args += ["--envs", "1", "--imitation-days", "0", "--eval-every", "0", "--quiet"]
    result = runner.invoke(app, [*args, "--out", str(out), "--logdir", str(logs)])
    assert result.exit_code == 2, result.output
    where = f"{error.filename}: " if error.filename else ""
    assert result.stderr == f"error: {where}{error.strerror}\n"


def test_a_model_file_that_cannot_be_written_is_not_said_to_be_kept(
    tiny: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's save failed (a full disk), yet the run's last words said the file held
    the model it was writing: what it holds is set once it is written whole."""

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, FULL, str(tmp_path / "m.zip"))

    monkeypatch.setattr(rl_agents.model_io, "save_model", full)
    params = TrainParams(algo="ppo", timesteps=8, num_envs=1, imitation_days=0, eval_every=0)
    out = tmp_path / "m.zip"
    with pytest.raises(TrainingStopped) as info:
        train(tiny, params, out=out, logdir=tmp_path / "logs", progress=False)
    assert info.value.filename == str(out) and info.value.selected is None
    assert info.value.kept() == f"{out} not written"


def test_a_checkpoint_that_cannot_be_written_is_named_and_leaves_no_torn_file(
    tmp_path: Path,
) -> None:
    """SB3's checkpoint was written in place: a full disk left a torn zip, and its error named
    no file. It is written whole or not at all, and the error names it."""
    from types import SimpleNamespace

    def full(path: object) -> None:
        Path(str(path)).write_bytes(b"PK")  # begun, then the disk is full
        raise _disk_full()

    path = tmp_path / "ppo_64_steps.zip"
    with pytest.raises(OSError) as info:
        save_checkpoint(SimpleNamespace(save=full), path)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
    assert list(tmp_path.iterdir()) == []


def test_checkpoints_of_a_run_are_written_whole(
    tiny: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's checkpoints go through :func:`save_checkpoint` (and are still written)."""
    saved: list[Path] = []

    def spy(model: Any, path: Path) -> None:
        saved.append(path)
        save_checkpoint(model, path)

    monkeypatch.setattr(train_module, "save_checkpoint", spy)
    params = TrainParams(
        algo="ppo", timesteps=16, num_envs=1, imitation_days=0, eval_every=0, checkpoint_every=8
    )
    logs = tmp_path / "logs"
    train(tiny, params, out=tmp_path / "m.zip", logdir=logs, progress=False)
    assert saved and all(p.parent == logs / "checkpoints" for p in saved)
    assert sorted(p.name for p in (logs / "checkpoints").iterdir()) == sorted(p.name for p in saved)


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_cache_row_cut_short_by_a_full_disk_leaves_the_cache_as_it_was(
    tmp_path: Path,
) -> None:
    """``evaluate --hindsight-cache`` (the benchmark's ``rl-hindsight-days.jsonl``) on a disk
    that fills during an append (here: a file size limit, which cuts a write short as a full
    disk does): half a row was left, and the next run refused the whole cache (``line 2: not
    JSON``); the append is now whole or not at all, its error naming the cache."""
    import resource

    from rl_agents.evaluate import DayOutcome, _append_cache, _read_cache

    cache = tmp_path / "cache.jsonl"
    _append_cache(cache, "key", DayOutcome("hindsight", 1, {"cost": 1.0}, 0, [], 0.5))
    before = cache.read_bytes()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (else the signal ends Python)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 20, limits[1]))
        with pytest.raises(OSError) as info:
            _append_cache(cache, "key", DayOutcome("hindsight", 2, {"cost": 2.0}, 0, [], 0.5))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert (info.value.errno, info.value.filename) == (errno.EFBIG, str(cache))
    assert cache.read_bytes() == before
    assert list(_read_cache(cache, "key")) == [("hindsight", 1)]


def _failed_under_size_limit(limit: int, write: Callable[[], None]) -> bool:
    """Whether ``write`` failed as on a full disk with files held to ``limit`` bytes (a file
    size limit, which cuts a write short as a full disk does: EFBIG)."""
    import resource

    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (else the signal ends Python)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limits[1]))
        try:
            write()
        except OSError as err:
            assert err.errno == errno.EFBIG
            return True
        return False
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
@given(
    lines=st.lists(st.text(max_size=40).map(lambda t: t.replace("\n", " ") + "\n"), max_size=3),
    line=st.text(min_size=1, max_size=60),
    room=st.integers(min_value=0, max_value=200),
)
def test_an_append_cut_anywhere_leaves_the_file_as_it_was(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], line: str, room: int
) -> None:
    """However many bytes of the line fit before the disk is full (here a file size limit),
    the file holds what it held before, or that and the whole line."""
    from rl_agents.evaluate import append_whole_line

    path = tmp_path_factory.mktemp("append") / "f.jsonl"
    before = "".join(lines).encode("utf-8")
    path.write_bytes(before)
    failed = _failed_under_size_limit(len(before) + room, lambda: append_whole_line(path, line))
    whole = before + line.encode("utf-8")
    assert path.read_bytes() == (before if failed else whole)
    assert failed == (len(whole) > len(before) + room)


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
@given(
    lines=st.lists(st.text(max_size=40).map(lambda t: t.replace("\n", " ") + "\n"), max_size=3),
    torn=st.text(min_size=1, max_size=40).map(lambda t: t.replace("\n", " ")),
    line=st.text(min_size=1, max_size=60),
    room=st.integers(min_value=0, max_value=200),
)
def test_an_append_replacing_a_row_cut_short_leaves_it_when_cut_anywhere(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], torn: str, line: str, room: int
) -> None:
    """A last row cut short (a crash) is replaced by the new line; when the disk fills
    during that append (here a file size limit), the file holds what it held before, that
    row included (it was cut off, then the append failed: lost with it)."""
    from rl_agents.evaluate import append_whole_line

    path = tmp_path_factory.mktemp("append") / "f.jsonl"
    whole = "".join(lines).encode("utf-8")
    before = whole + torn.encode("utf-8")
    path.write_bytes(before)
    failed = _failed_under_size_limit(
        len(before) + room, lambda: append_whole_line(path, line, cut_short=lambda _last: True)
    )
    replaced = whole + line.encode("utf-8")
    assert path.read_bytes() == (before if failed else replaced)
    assert failed == (len(replaced) > len(before) + room)


def test_a_full_disk_after_a_row_cut_short_keeps_the_cache_and_its_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next day's append on a full disk cut the skipped row off and failed: the cache
    lost it without a day in its place. It is as it was: read again, the same days and the
    same warning."""
    import warnings

    from rl_agents.evaluate import DayOutcome, _append_cache, _read_cache

    cache = tmp_path / "cache.jsonl"
    for seed in (1, 2):
        _append_cache(cache, "key", DayOutcome("hindsight", seed, {"cost": 1.0}, 0, [], 0.5))
    before = cache.read_bytes()[:-25]  # the second row's append stopped by a crash
    cache.write_bytes(before)
    real = os.write
    inode = cache.stat().st_ino
    failing = [True]

    def write(fd: int, data: bytes | memoryview) -> int:
        if failing[0] and os.fstat(fd).st_ino == inode:
            failing[0] = False  # (the row's write fails; putting back the cut one does not)
            raise _disk_full()
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(OSError) as info:
        _append_cache(cache, "key", DayOutcome("hindsight", 3, {"cost": 3.0}, 0, [], 0.5))
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(cache))
    assert cache.read_bytes() == before
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert list(_read_cache(cache, "key")) == [("hindsight", 1)]
    assert ["line 2: a row cut short" in str(w.message) for w in said] == [True]
