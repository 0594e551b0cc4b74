"""Engine and session factory; the schema is brought to the latest migration at start-up."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic_core
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 7_305_117_203  # pg_advisory_lock id shared by every replica
SQLITE_BUSY_TIMEOUT_S = 30.0
_READ_PREFIXES = ("SELECT", "PRAGMA")

log = logging.getLogger("api.db")


class WriteGate:
    """One write transaction at a time on one SQLite file, so writers queue instead of polling.

    SQLite lets one writer in; the others get SQLITE_BUSY and its busy handler sleeps
    1, 2, 5, 10, ... 100 ms between retries, which under concurrent requests shows as
    latency tails of hundreds of ms. The gate is taken before a connection's first write
    and given back after its commit or rollback: a thread lock within the process (waiters
    wake as soon as it is free) and an ``flock`` between processes (replicas of ``--workers
    N``) on the database's path with its suffix replaced by ``.write.lock``. Past
    ``timeout_s`` a writer goes ahead without the gate and SQLite's own busy timeout
    applies, as without a gate.
    """

    def __init__(self, lock_path: Path | None, *, timeout_s: float = SQLITE_BUSY_TIMEOUT_S):
        self._lock = threading.Lock()
        self._lock_path = lock_path
        self._fd: int | None = None
        self._timeout_s = timeout_s

    def acquire(self) -> bool:
        """Wait for the gate (True), or give up after the timeout (False)."""
        deadline = time.monotonic() + self._timeout_s
        if not self._lock.acquire(timeout=self._timeout_s):
            log.warning("SQLite write gate busy for %.0f s; writing without it", self._timeout_s)
            return False
        if self._lock_path is None:
            return True
        try:
            if self._fd is None:
                flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                self._fd = os.open(self._lock_path, flags, 0o644)
            delay = 0.00005
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:  # another process is writing: poll finely
                    if time.monotonic() > deadline:
                        break
                    time.sleep(delay)
                    delay = min(delay * 2, 0.001)
        except OSError:
            log.exception("SQLite write gate: cannot lock %s", self._lock_path)
        self._lock.release()
        return False

    def release(self) -> None:
        """Let the next writer in."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


_GATES: dict[str, WriteGate] = {}
_GATES_LOCK = threading.Lock()


def write_gate(database: str | None) -> WriteGate:
    """The process-wide gate of one SQLite database file (shared by all its engines)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return WriteGate(None)
    path = Path(database).resolve()
    with _GATES_LOCK:
        gate = _GATES.get(str(path))
        if gate is None:
            gate = _GATES[str(path)] = WriteGate(path.with_suffix(".write.lock"))
        return gate


class GatedConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its :class:`WriteGate` from its first write to its end."""

    gate: WriteGate | None = None
    holding: bool = False

    def before_write(self) -> None:
        """Take the gate unless this connection already holds it."""
        if not self.holding and self.gate is not None:
            self.holding = self.gate.acquire()

    def _let_go(self) -> None:
        if self.holding:
            self.holding = False
            assert self.gate is not None
            self.gate.release()

    def commit(self) -> None:
        """Commit, then give the gate back."""
        try:
            super().commit()
        finally:
            self._let_go()

    def rollback(self) -> None:
        """Roll back, then give the gate back."""
        try:
            super().rollback()
        finally:
            self._let_go()

    def close(self) -> None:
        """Close, then give the gate back."""
        try:
            super().close()
        finally:
            self._let_go()


class RawJson(str):
    """JSON text a JSON column stores as it is (a request body that has already parsed)."""


def json_dumps(value: Any) -> str:
    """JSON text of a JSON column's value (pydantic-core: about 3x faster than ``json.dumps``)."""
    if isinstance(value, RawJson):
        return str(value)
    return pydantic_core.to_json(value, inf_nan_mode="constants").decode()


def json_dumps_null_nan(value: Any) -> str:
    """JSON text of a JSON column's value on PostgreSQL, whose ``json`` type refuses NaN and
    infinities: they are written null (as the service's answers give them)."""
    if isinstance(value, RawJson):
        return str(value)
    return pydantic_core.to_json(value, inf_nan_mode="null").decode()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, a write gate, its folder created;
    other databases' JSON columns get NaN and infinities as null (:func:`json_dumps_null_nan`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        gate = write_gate(parsed.database)
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_S,
                "factory": GatedConnection,
            },
            pool_size=20,
            max_overflow=20,
            json_serializer=json_dumps,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cur.close()
            if isinstance(dbapi_conn, GatedConnection):
                dbapi_conn.gate = gate

        @event.listens_for(engine, "before_cursor_execute")
        def _gate_writes(
            conn: Any, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
        ) -> None:
            if not statement.lstrip()[:6].upper().startswith(_READ_PREFIXES):
                dbapi_conn = conn.connection.dbapi_connection
                if isinstance(dbapi_conn, GatedConnection):
                    dbapi_conn.before_write()

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        json_serializer=json_dumps_null_nan,
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations between replicas (advisory lock on PostgreSQL, file lock on SQLite)."""
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
        return
    database = engine.url.database
    if backend == "sqlite" and database and database != ":memory:":
        lock_path = Path(database).with_suffix(".migrate.lock")
        with lock_path.open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    yield


@contextlib.contextmanager
def _one_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection whose statements, DDL included, commit together or not at all.

    Python's sqlite3 opens a transaction before INSERT, UPDATE and DELETE only: a migration's
    CREATE and DROP ran outside it, each committed at once, while the revision it records
    was rolled back with the rest when a later statement failed. The next start-up then ran
    the migration again from the top over what had stayed (and failed on it). On SQLite the
    transaction is opened here, ``BEGIN IMMEDIATE``, with the module's own handling off.
    """
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        dbapi_conn = conn.connection.dbapi_connection
        assert isinstance(dbapi_conn, sqlite3.Connection)
        previous = dbapi_conn.isolation_level
        dbapi_conn.isolation_level = None  # no implicit BEGIN/COMMIT: ours only
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            dbapi_conn.isolation_level = previous


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database schema to ``revision`` with the migrations shipped in the package.

    One transaction on every backend: a migration that fails leaves the schema and the
    recorded revision as they were.
    """
    if revision == "head" and current_revision(engine) == head_revision():
        return  # already there: no lock, no Alembic environment (tens of ms of each start-up)
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _migration_lock(engine), _one_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database schema back to ``revision`` (``"base"`` = empty), in one transaction."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _migration_lock(engine), _one_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None before the first one)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@functools.lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest migration shipped with the package."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()
