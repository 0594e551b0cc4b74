"""A CSV file's text in memory, as :mod:`csv` writes it to a file (for files written together)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence


def csv_text(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A CSV file's text: ``header`` then ``rows`` (as ``csv.writer`` writes them)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def dict_csv_text(fields: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """A CSV file's text: a header of ``fields`` then ``rows`` (as ``csv.DictWriter``)."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
