"""Reading input files with a size cap, so an endless one (``/dev/zero``, a FIFO) ends promptly.

Every file dispatchlab reads as input (scenarios in any format, requests, plans, variant
files, road networks, caches, model zips, demonstrations) is read through :func:`read_limited`:
at most the cap plus one byte, and a file longer than the cap is an
:class:`~scenarios.errors.InputError` naming it. A zip archive (:func:`read_zip_limited`) must
also unpack to at most the cap (a small zip can unpack to gigabytes).
The cap is :data:`DEFAULT_MAX_INPUT_BYTES` unless the environment variable
``DISPATCHLAB_MAX_INPUT_BYTES`` gives another number of bytes.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from scenarios.errors import InputError

#: the environment variable that overrides the cap
MAX_INPUT_ENV = "DISPATCHLAB_MAX_INPUT_BYTES"
#: 512 MiB: some 50 times the service's 10 MB body limit and 30 times the largest city the
#: generator makes (50,000 orders, about 15 MB of JSON)
DEFAULT_MAX_INPUT_BYTES = 512 * 1024 * 1024
_CHUNK = 1 << 20


def max_input_bytes() -> int:
    """The input size cap in bytes: ``DISPATCHLAB_MAX_INPUT_BYTES`` if set, else the default."""
    raw = os.environ.get(MAX_INPUT_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(MAX_INPUT_ENV, f"expected a whole number of bytes above 0, got {raw!r}")
    return value


def usable_folder(folder: Path, field: str, target: Path) -> None:
    """Raise InputError(``field``) naming ``target`` unless ``folder`` is an existing folder
    files can be made in (a missing one is never created: a typo is not turned into folders)."""
    if folder.is_dir():
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(field, f"folder {folder} is not writable", source=str(target))
    elif folder.exists():
        raise InputError(field, f"{folder} is not a folder", source=str(target))
    else:
        raise InputError(field, f"folder {folder} does not exist", source=str(target))


def check_output_file_folder(path: str | Path, field: str) -> None:
    """Raise InputError(``field``) naming ``path`` unless the file ``path`` can be made in its
    folder, which must exist (a library function writing a result file checks it first)."""
    target = Path(path)
    usable_folder(target.parent, field, target)


@contextmanager
def naming_written(path: str | Path) -> Iterator[None]:
    """Raise an OSError of the block that names no file as one naming ``path``, the file the
    block writes (a write or close that fails says ``No space left on device`` alone)."""
    try:
        yield
    except OSError as err:
        if err.filename is not None:
            raise
        raise named_error(err, path) from None


@contextmanager
def written_whole(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` for the block to write ``path``'s file in, moved over
    ``path`` when the block ends without error (whole or not at all: a full disk left torn
    files); removed in any case. An OSError of the block naming no file names ``path``.
    ``suffix`` ends the temporary name (SB3 adds ``.zip`` to a name without it)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial{suffix}")  # same folder
    with naming_written(path):
        try:
            yield partial
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)  # (gone once moved)


def named_error(err: OSError, path: str | Path) -> OSError:
    """``err`` (its class, errno and reason kept) naming ``path``, the file it failed on."""
    reason = err.strerror or str(err) or type(err).__name__
    try:
        return type(err)(err.errno, reason, str(path))
    except TypeError:  # a subclass built otherwise: the plain class
        return OSError(err.errno, reason, str(path))


def output_error_line(err: OSError, outputs: Iterable[tuple[Path, str, bool]]) -> str | None:
    """``<file>: <option>: <reason>`` for an OSError on an output an option gave, else None.

    ``outputs`` are (path, the option that gave it, whether it is a folder whose files, in it
    or in folders under it, are written), the last given first; an error naming two files
    (a rename's) names no output. Paths are compared absolute (``out.json`` is
    ``./out.json``). The command line's registry (``dispatchlab.cli._common.note_output``)
    and the benchmark scripts' (``benchmarks.measures.output_folder_arg``) both say theirs so.
    """
    if err.filename is None or err.filename2 is not None:
        return None
    name = os.fsdecode(err.filename)
    where = Path(name).absolute()
    for path, option, folder in reversed(list(outputs)):
        at = path.absolute()
        if where == at or (folder and at in where.parents):
            reason = err.strerror or str(err) or type(err).__name__
            return InputError(option, reason, source=name).one_line()
    return None


def read_limited(path: str | Path, *, field: str = "path") -> bytes:
    """The bytes of the input file ``path``, read up to the cap plus one byte.

    A longer file raises InputError(``field``) naming the file and the cap; a file that
    cannot be opened raises the OSError ``open`` raises.
    """
    p = Path(path)
    with p.open("rb") as fh:
        return read_stream_limited(fh, source=str(p), field=field)


def read_stream_limited(stream: BinaryIO, *, source: str, field: str = "path") -> bytes:
    """The bytes of an open input (standard input, a file) up to its end, read under the cap
    as :func:`read_limited` reads a file; a longer one raises InputError naming ``source``."""
    cap = max_input_bytes()
    data = bytearray()
    while len(data) <= cap:
        chunk = stream.read(min(_CHUNK, cap + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
    raise InputError(
        field,
        f"file is larger than the {cap:,} bytes an input may have "
        f"(set {MAX_INPUT_ENV} to allow more)",
        source=source,
    )


def read_zip_limited(path: str | Path, *, field: str = "path") -> bytes:
    """The bytes of the zip archive ``path`` (a model ``.zip``, an ``.npz``), read under the cap.

    Raises InputError(``field``) naming the file when it is longer than the cap, is not a zip
    archive, or its members unpack to more than the cap; a file that cannot be opened raises
    the OSError ``open`` raises.
    """
    data = read_limited(path, field=field)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError):  # a damaged directory: either
        raise InputError(field, "is not a zip file", source=str(path)) from None
    cap = max_input_bytes()
    if unpacked > cap:
        raise InputError(
            field,
            f"zip archive unpacks to {unpacked:,} bytes, more than the {cap:,} bytes an input "
            f"may have (set {MAX_INPUT_ENV} to allow more)",
            source=str(path),
        )
    return data
