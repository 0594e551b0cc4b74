"""Writing several files as one: each complete, and all of them replaced or none.

A run's outputs belong together (a table's CSV and markdown; ``dispatchlab evaluate``'s JSON,
table and per-day CSV): one new beside another's old version says something neither run
said. :func:`write_together` writes every text to a temporary file beside its target first,
then renames them all into place with Ctrl-C and SIGTERM held back, and if a rename fails
(an OS error: a full disk, a file made read-only meanwhile) puts back the files it had
already replaced. Only a crash of the machine or a SIGKILL between two renames can still
leave some files new and others old.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

from scenarios.files import naming_written

#: The signals held back while the files are renamed into place (Ctrl-C, kill)
HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class WrittenThenInterrupted(KeyboardInterrupt):
    """Ctrl-C held back while the files were renamed into place: they are all written."""


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block ends, then act on them as before.

    Python's own handlers are swapped (a signal mask would not do: the signal then goes to
    another thread, such as a progress bar's, and is raised in the main one all the same);
    only the main thread can, elsewhere nothing is held.
    """
    before = {sig: signal.getsignal(sig) for sig in HELD_SIGNALS}
    if threading.current_thread() is not threading.main_thread() or None in before.values():
        yield
        return
    caught: list[signal.Signals] = []
    for sig in HELD_SIGNALS:
        signal.signal(sig, lambda signum, _frame: caught.append(signal.Signals(signum)))
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        for sig in caught:
            handler = before[sig]
            if callable(handler):
                handler(sig, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(sig)


def _written_through(path: Path) -> bool:
    """Whether ``path`` is written through rather than replaced: a symlink (``/dev/stdout``,
    ``latest.json``) or something that is not a regular file (a device, a FIFO), as
    :func:`scenarios.io.json_io.atomic_write` does."""
    return path.is_symlink() or (path.exists() and not path.is_file())


def _keep_old(final: Path, backup: Path) -> bool:
    """Keep ``final``'s current content under ``backup`` (a hard link, else a copy); whether
    there was one to keep."""
    if not final.exists():
        return False
    try:
        os.link(final, backup)
    except OSError:  # a file system without hard links
        try:
            shutil.copy2(final, backup)
        except OSError:
            backup.unlink(missing_ok=True)
            raise
    return True


def _on_target(err: OSError, target: Path, doing: str) -> OSError:
    """``err`` (of the same class) naming ``target`` alone, what was being done in its reason."""
    reason = err.strerror or str(err) or type(err).__name__
    return type(err)(err.errno, f"{reason} ({doing})", str(target))


def write_together(files: Mapping[Path, str | bytes]) -> list[Path]:
    """Write each path's text (UTF-8, line ends as given) or bytes (a PNG): all the files
    replaced, or none.

    Every text goes to a temporary file beside its target; only when all are complete are
    they renamed over the targets, Ctrl-C and SIGTERM held back meanwhile (acted on once all
    are in place: Ctrl-C then raises :class:`WrittenThenInterrupted`). An error or Ctrl-C
    before that removes the temporary files and changes no target; an OS error renaming one
    of them puts back the targets already replaced (their previous files, or none where there
    was none) and is raised. A target that is a symlink, device or FIFO cannot be renamed
    with the others: it is written through, once the others are in place. Two paths naming
    one file: ValueError, before anything is written. A write that fails (a full disk) names
    its target, not the temporary file.
    """
    paths = list(files)
    real = [os.path.realpath(p) for p in paths]
    if len(set(real)) < len(real):
        twice = sorted({str(p) for p, r in zip(paths, real, strict=True) if real.count(r) > 1})
        raise ValueError(f"one file given twice: {', '.join(twice)}")
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    renamed = [p for p in paths if not _written_through(p)]
    through = [p for p in paths if _written_through(p)]
    pending: list[tuple[Path, Path]] = []  # (temporary, final) still to rename
    backups: dict[Path, Path | None] = {}  # final replaced -> its previous file kept, or None
    try:
        for final in renamed:
            temporary = final.with_name(f".{final.name}.{tag}.part")
            pending.append((temporary, final))
            try:
                fh = _open(temporary, "x", files[final])
            except OSError as err:  # named ``final``: the caller knows no temporary name
                doing = f"making the temporary file {temporary.name}"
                raise _on_target(err, final, doing) from None
            with naming_written(final), fh:
                fh.write(files[final])
        try:
            with signals_held():
                _rename_all(pending, backups, tag)
        except KeyboardInterrupt:
            if pending:
                raise
            names = ", ".join(str(p) for p in renamed)
            raise WrittenThenInterrupted(f"{names} written first") from None
        finally:
            for backup in backups.values():
                if backup is not None:
                    backup.unlink(missing_ok=True)
    finally:
        for temporary, _ in pending:
            temporary.unlink(missing_ok=True)
    for final in through:
        with naming_written(final), _open(final, "w", files[final]) as fh:
            fh.write(files[final])
    return paths


def _open(path: Path, mode: Literal["x", "w"], content: str | bytes) -> IO[Any]:
    """``path`` opened to write ``content``: binary for bytes, else UTF-8 text, line ends
    untranslated."""
    if isinstance(content, bytes):
        return path.open(f"{mode}b")
    return path.open(mode, encoding="utf-8", newline="")


def _rename_all(
    pending: list[tuple[Path, Path]], backups: dict[Path, Path | None], tag: str
) -> None:
    """Rename each temporary file of ``pending`` over its target (taken off ``pending`` once
    renamed), keeping each target's previous file in ``backups``; on an OS error, put the
    targets already replaced back as they were, then raise it."""
    try:
        while pending:
            temporary, final = pending[0]
            backup = final.with_name(f".{final.name}.{tag}.old")
            backups[final] = backup if _keep_old(final, backup) else None
            try:
                os.replace(temporary, final)
            except OSError as err:
                doing = f"renaming the temporary file {temporary.name} to it"
                raise _on_target(err, final, doing) from err
            pending.pop(0)
    except OSError as err:
        for done in [f for f in backups if f not in {t for _, t in pending}]:
            old = backups[done]
            try:
                if old is None:
                    done.unlink(missing_ok=True)
                else:
                    os.replace(old, done)
                    backups[done] = None
            except OSError as undo:  # the previous file stays under its backup name
                kept = f" (kept as {old})" if old is not None else ""
                err.add_note(f"could not put back {done}{kept}: {undo}")
                backups[done] = None
        raise


__all__ = ["HELD_SIGNALS", "WrittenThenInterrupted", "signals_held", "write_together"]
