"""Tables of the service: keys, replicas, jobs (every solve), plans, idempotency, audit log."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any, ClassVar

import pydantic_core
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

from api.db.session import json_dumps

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Convert to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        """Attach the UTC zone when the database returns a naive value."""
        if value is None:
            return None
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class _StoredAsIs(UserDefinedType[Any]):
    """A column declared ``JSON`` whose values pass to and from SQLite untouched."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        """The declared type in DDL (the same as a plain JSON column's)."""
        return "JSON"


class PackedJSON(TypeDecorator[Any]):
    """JSON that SQLite keeps zlib-compressed (level 1); other databases as plain JSON.

    A one-order allocation request is 20-45 KB of JSON and every solve stores it. Compressed
    it is ~3.5x smaller (2,000 load-benchmark bodies: 60.6 -> 17.2 MB) for about the same
    insert CPU (0.105 against 0.08-0.10 ms per row). Rows stored as JSON text before still
    read back.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Untouched values on SQLite (compressed here), plain JSON elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_StoredAsIs())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Compress the JSON text (SQLite only)."""
        if dialect.name != "sqlite" or value is None:
            return value
        return zlib.compress(json_dumps(value).encode(), 1)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Parse the stored JSON, compressed or not (SQLite only)."""
        if dialect.name != "sqlite" or value is None:
            return value
        if isinstance(value, bytes):
            value = zlib.decompress(value)
        return pydantic_core.from_json(value)


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class ApiKey(Base):
    """An API key: public id, SHA-256 of the secret, role, account; never the key itself."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: the account the key acts for (migration 0008): the id of the account's first key, so
    #: a key made by ``keys create`` (and every key made before 0008) is its own account,
    #: and a key made by rotating another inherits its account. The jobs, plans and
    #: idempotency records of an account (their ``key_id`` column) are its keys' alike.
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    #: the end of a rotated key's grace period (migration 0008): refused from then on
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Instance(Base):
    """A running API replica; its heartbeat tells the others it is alive."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: its own graceful stop marked it stopped (migration 0005); False while it runs and
    #: when a recovery found it dead (a crash, or silent past its lease): a row of its
    #: still running is then one its stop could not end, or committed after it
    stopped_gracefully: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Job(Base):
    """One unit of work: every solve is stored as a job, synchronous ones included."""

    __tablename__ = "jobs"
    # listing pages newest first, per key or all (admin): without an index the sort reads
    # every row, whose created_at lies past the ~38 KB request of a one-order allocation;
    # the id ends each index, as it ends the listing's order (ties of created_at); the
    # kind index (migration 0004) serves the admin listing filtered by kind
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at", "id"),
        Index("ix_jobs_kind_created", "kind", "created_at", "id"),
        Index("ix_jobs_key_created", "key_id", "created_at", "id"),
        Index("ix_jobs_key_kind_created", "key_id", "kind", "created_at", "id"),
        Index("ix_jobs_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8), default="async")
    status: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(PackedJSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    #: what a running job last said it was doing with its progress (migration 0007)
    progress_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=2)
    timeout_s: Mapped[float] = mapped_column(Float, default=3600.0)
    owner: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    #: the account that owns the job (``ApiKey.account_id``: the id of its first key; the
    #: audit log records which key asked)
    key_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    seed: Mapped[int | None] = mapped_column(Integer, default=None)
    input_hash: Mapped[str] = mapped_column(String(64), default="")
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class PlanRecord(Base):
    """A dispatch plan with the scenario it was made for, so it can be re-optimised."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("plans.id"), default=None, index=True
    )
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    #: the account that owns the plan (``ApiKey.account_id``)
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str] = mapped_column(String(16))
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    scenario: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: the job of the plan's ``if_latest`` re-plan (migration 0009), set by a conditional
    #: UPDATE so that of two such re-plans one wins; one whose job failed, was cancelled or
    #: was never written (claimed ``LATEST_CLAIM_STALE_S`` before) is taken over
    latest_job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    #: the id of the plan that job makes (chosen at the claim, so that a 409 names it)
    latest_plan_id: Mapped[str | None] = mapped_column(String(32), default=None)
    #: when ``latest_job_id`` was claimed
    latest_claimed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class IdempotencyRecord(Base):
    """The first answer to a request sent with an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("key_id", "idem_key", name="uq_idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the account whose key sent it (``ApiKey.account_id``): a rotated key's retry replays
    key_id: Mapped[str] = mapped_column(String(32))
    idem_key: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    #: the replica that claimed the key (migration 0006; null for older rows): the pending
    #: claim of a replica gone is taken over at once by a retry (its request died with it)
    owner: Mapped[str | None] = mapped_column(String(32), default=None)


class AuditEntry(Base):
    """Who asked what: key, endpoint, input hash, outcome, solver version and seed."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    key_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    role: Mapped[str | None] = mapped_column(String(16), default=None)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    status_code: Mapped[int] = mapped_column(Integer)
    input_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    result: Mapped[str | None] = mapped_column(String(200), default=None)
    solver: Mapped[str | None] = mapped_column(String(200), default=None)
    seed: Mapped[int | None] = mapped_column(Integer, default=None)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    client: Mapped[str | None] = mapped_column(String(100), default=None)
