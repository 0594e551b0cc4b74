"""The audit log writer: rows are queued by requests and inserted in batches by one thread."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session, sessionmaker

from api.db.models import AuditEntry, utcnow

log = logging.getLogger("api.audit")


class AuditWriter:
    """Insert audit rows off the request path; ``close`` flushes what is left."""

    def __init__(self, sessions: sessionmaker[Session], *, flush_s: float = 0.2) -> None:
        self._sessions = sessions
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._flush_s = flush_s
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, **row: Any) -> None:
        """Queue one audit row (the columns of :class:`AuditEntry`; ``at`` defaults to now)."""
        row.setdefault("at", utcnow())
        self._queue.put(row)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until every queued row is written."""
        done = threading.Event()
        self._queue.put({"__flush__": done})
        done.wait(timeout_s)

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[dict[str, Any] | None] = [item]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get(timeout=self._flush_s if len(batch) < 2 else 0))
                except queue.Empty:
                    break
            rows = [r for r in batch if r is not None and "__flush__" not in r]
            stop = any(r is None for r in batch)
            if rows:
                try:
                    self._write(rows)
                except Exception:  # the audit log must never take the service down
                    log.exception("could not write %d audit rows", len(rows))
            for r in batch:
                if r is not None and "__flush__" in r:
                    r["__flush__"].set()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows in one transaction, one multi-row INSERT per set of columns given."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        with self._sessions.begin() as session:
            for group in groups.values():
                session.connection().execute(insert(cast(Table, AuditEntry.__table__)), group)
