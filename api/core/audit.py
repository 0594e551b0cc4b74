"""Write-behind row writers: rows are queued by requests and inserted in batches by one thread.

The audit log and the records of fast synchronous solves use them, so that a request
spends no time in the database: the writer thread inserts whatever has queued up in one
transaction (one multi-row INSERT per set of columns), at most ``flush_s`` after a row
was queued. A row not written (its insert failed, or it was put after the writer closed at
shutdown) is logged, naming it, and counted in ``dispatchlab_rows_not_written_total``.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session, sessionmaker

from api.core.metrics import Metrics
from api.db.models import AuditEntry, Job, utcnow

log = logging.getLogger("api.audit")

_BATCH = 500


class RowWriter:
    """Insert rows of one table off the request path; ``close`` flushes what is left."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        table: Table,
        *,
        name: str,
        flush_s: float = 0.2,
        key: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._closed = False
        self._put_lock = threading.Lock()  # a put and the close: the row before it, or seen
        self._table = table
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._flush_s = flush_s
        self._key = key
        self._pending: set[Any] = set()
        self._pending_lock = threading.Lock()
        self._urgent = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, row: dict[str, Any]) -> None:
        """Queue one row (a dict of column values).

        After :meth:`close` no thread writes it any more: it is not written, and that is
        logged (naming the row) and counted, not left silent. Not raised: the callers put
        their rows on the way to an answer (a request's audit, a synchronous solve's end,
        also in the handler of a request the server's shutdown cut), which a raise would turn
        into a 500 with the row lost all the same.
        """
        with self._put_lock:
            if self._closed:
                self._not_written([row], "closed")
                return
            if self._key is not None:
                with self._pending_lock:
                    self._pending.add(row[self._key])
            self._queue.put(row)

    def pending(self, key: Any = None) -> bool:
        """True while a queued row (the one whose key column is ``key``, or any) is unwritten."""
        if key is None:
            return bool(self._pending) or not self._queue.empty()
        return key in self._pending

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until every queued row is written (closed: at once, nothing more is)."""
        if self._closed:
            return
        done = threading.Event()
        self._queue.put({"__flush__": done})
        self._urgent.set()
        done.wait(timeout_s)

    def close(self) -> None:
        """Write what is queued and stop the thread; later rows are not written (:meth:`put`)."""
        with self._put_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._urgent.set()
        self._thread.join(timeout=10)
        if self._thread.is_alive():  # the database not answering: its rows may be lost
            log.error(
                "%s writer still writing 10 s after its close (the database not answering): "
                "the rows it holds are written if the database answers before the process "
                "ends, else lost",
                self._table.name,
            )

    def describe(self, row: dict[str, Any]) -> str:
        """How a log line names ``row``."""
        if self._key is not None and self._key in row:
            return f"{self._table.name} row {row[self._key]}"
        return f"{self._table.name} row"

    def _not_written(self, rows: list[dict[str, Any]], reason: str) -> None:
        """Log and count rows not written: ``reason`` ``closed`` (put after :meth:`close`)
        or ``failed`` (their insert failed, logged with its error where it failed)."""
        if reason == "closed":
            for row in rows:
                log.error(
                    "%s not written: put after its writer closed (the service is stopping)",
                    self.describe(row),
                )
        if self._metrics is not None:
            self._metrics.rows_not_written.labels(self._table.name, reason).inc(len(rows))

    def _run(self) -> None:
        stop = False
        while not stop:
            # a batch is what arrives within flush_s of its first row (fewer, larger
            # transactions under load); a flush or close request writes at once. Between
            # the first row and the deadline the thread sleeps on ``_urgent`` rather than
            # on the queue, so that queuing a row wakes no thread (a wake-up per row cost
            # the request path and this thread more CPU than the insert).
            item = self._queue.get()
            batch: list[dict[str, Any] | None] = [item]
            if item is not None and "__flush__" not in item and self._queue.qsize() < _BATCH:
                self._urgent.wait(self._flush_s)
            self._urgent.clear()
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [r for r in batch if r is not None and "__flush__" not in r]
            stop = any(r is None for r in batch)
            if rows:
                self._write_or_skip(rows)
                if self._key is not None:
                    with self._pending_lock:
                        self._pending.difference_update(r[self._key] for r in rows)
            for r in batch:
                if r is not None and "__flush__" in r:
                    r["__flush__"].set()

    def _write_or_skip(self, rows: list[dict[str, Any]]) -> None:
        """Write ``rows``; if the batch fails, each row alone, dropping only those that fail."""
        try:
            self._write(rows)
            return
        except Exception:  # a write-behind log must never take the service down
            if len(rows) == 1:
                log.exception("could not write %s", self.describe(rows[0]))
                self._not_written(rows, "failed")
                return
        # one bad row (say, a value the database cannot hold) must not cost the others
        failed = 0
        for row in rows:
            try:
                self._write([row])
            except Exception:
                failed += 1
                log.exception("could not write %s", self.describe(row))
                self._not_written([row], "failed")
        log.warning("%d of %d %s rows not written", failed, len(rows), self._table.name)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows in one transaction, one multi-row INSERT per set of columns given."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        with self._sessions.begin() as session:
            for group in groups.values():
                session.connection().execute(insert(self._table), group)


class AuditWriter(RowWriter):
    """The audit log: who asked what, written behind the requests."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        flush_s: float = 0.2,
        metrics: Metrics | None = None,
    ) -> None:
        table = cast(Table, AuditEntry.__table__)
        super().__init__(sessions, table, name="audit-writer", flush_s=flush_s, metrics=metrics)

    def describe(self, row: dict[str, Any]) -> str:
        """The audit row of ``method path -> status``."""
        return f"audit row of {row.get('method')} {row.get('path')} -> {row.get('status_code')}"

    def record(self, **row: Any) -> None:
        """Queue one audit row (the columns of :class:`AuditEntry`; ``at`` defaults to now)."""
        row.setdefault("at", utcnow())
        self.put(row)


class JobRecordWriter(RowWriter):
    """Finished synchronous solves, stored as ``jobs`` rows behind their answers.

    ``flush_s`` 0.1: each commit costs about a millisecond on SQLite, so under load a row
    costs half as much as with 20 ms batches; reading a job waits for its row anyway.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        flush_s: float = 0.1,
        metrics: Metrics | None = None,
    ) -> None:
        table = cast(Table, Job.__table__)
        super().__init__(
            sessions, table, name="job-record-writer", flush_s=flush_s, key="id", metrics=metrics
        )

    def describe(self, row: dict[str, Any]) -> str:
        """The record of job ``id (kind, status)``."""
        return f"record of job {row.get('id')} ({row.get('kind')}, {row.get('status')})"
