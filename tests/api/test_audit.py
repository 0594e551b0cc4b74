"""The write-behind row writers: batching, flush, close, and rows never lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.core import audit
from api.core.audit import AuditWriter
from api.core.config import Settings
from api.db.models import AuditEntry
from api.db.session import make_engine, make_sessionmaker, migrate
from tests.api.conftest import start_on_migrated_copy


@pytest.fixture
def sessions(settings: Settings, migrated_sqlite: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh, migrated database: SQLite (a copy of one migrated once per test
    process, as a service's in the ``client`` fixture), and PostgreSQL when configured."""
    start_on_migrated_copy(settings, migrated_sqlite)
    engine = make_engine(settings.resolved_database_url())
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


class CountingWriter(AuditWriter):
    """An audit writer that remembers the size of every batch it inserts."""

    def __init__(self, sessions: sessionmaker[Session], *, flush_s: float) -> None:
        self.batches: list[int] = []
        super().__init__(sessions, flush_s=flush_s)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self.batches.append(len(rows))
        super()._write(rows)


def _row(i: int) -> dict[str, Any]:
    return {"method": "POST", "path": f"/x/{i}", "status_code": 200}


def _paths(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(AuditEntry.path)).all())


def test_rows_queued_within_the_window_are_one_batch(sessions: sessionmaker[Session]) -> None:
    writer = CountingWriter(sessions, flush_s=30.0)
    for i in range(50):
        writer.record(**_row(i))
    assert writer.pending()
    writer.flush()  # a flush ends the 30 s window at once
    assert writer.batches == [50]
    assert not writer.pending()
    assert _paths(sessions) == sorted(f"/x/{i}" for i in range(50))
    writer.close()


def test_close_writes_what_is_left(sessions: sessionmaker[Session]) -> None:
    writer = CountingWriter(sessions, flush_s=30.0)
    for i in range(7):
        writer.record(**_row(i))
    writer.close()
    assert not writer._thread.is_alive()
    assert len(_paths(sessions)) == 7


def test_more_than_a_batch_from_many_threads_is_all_written(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "_BATCH", 40)
    writer = CountingWriter(sessions, flush_s=0.01)

    def burst(t: int) -> None:
        for i in range(100):
            writer.record(**_row(t * 1000 + i))

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.flush()
    writer.close()
    assert sum(writer.batches) == 400
    assert max(writer.batches) <= 40
    assert len(set(_paths(sessions))) == 400


def test_a_row_the_database_rejects_costs_only_itself(sessions: sessionmaker[Session]) -> None:
    writer = CountingWriter(sessions, flush_s=30.0)
    for i in range(5):
        writer.record(**_row(i))
    writer.record(**{**_row(99), "status_code": 2**63})  # past any INTEGER column
    writer.flush()
    writer.close()
    assert writer.batches == [6, 1, 1, 1, 1, 1, 1]  # the batch, then row by row
    assert _paths(sessions) == sorted(f"/x/{i}" for i in range(5))


def test_a_row_not_written_is_counted(sessions: sessionmaker[Session]) -> None:
    # a row the database rejected was logged, not counted: /metrics did not show it
    from api.core.metrics import Metrics

    metrics = Metrics()
    writer = AuditWriter(sessions, flush_s=30.0, metrics=metrics)
    writer.record(**_row(1))
    writer.record(**{**_row(99), "status_code": 2**63})  # too large for an SQLite INTEGER
    writer.close()
    writer.record(**_row(2))  # after the close: not written either
    assert _paths(sessions) == ["/x/1"]
    for reason in ("failed", "closed"):
        lost = metrics.registry.get_sample_value(
            "dispatchlab_rows_not_written_total", {"table": "audit_log", "reason": reason}
        )
        assert lost == 1.0, reason
