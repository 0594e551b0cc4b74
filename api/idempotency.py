"""``Idempotency-Key``: the first answer to a request is stored and replayed on retries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db.models import IdempotencyRecord, utcnow

REPLAY_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class Slot:
    """A claimed idempotency key; ``finish`` stores the answer, ``abandon`` frees the key."""

    record_id: int


def claim(
    session: Session,
    *,
    key_id: str | None,
    idem_key: str,
    endpoint: str,
    request_hash: str,
    ttl_s: float,
    pending_stale_s: float,
    replica: str | None = None,
    replica_gone: Callable[[Session, str], bool] | None = None,
) -> Slot | JSONResponse:
    """Claim the key for this request, or return the stored answer of the first one.

    Raises 422 when the key was used with a different request and 409 while the first
    request with this key is still being answered. A claim still pending after
    ``pending_stale_s`` belonged to a request that died with its server, and is taken over;
    so is at once the pending claim of another replica that ``replica_gone`` says is gone
    (``JobService.replica_gone``: stopped, or dead as recovery finds it). ``replica``: the
    claiming replica's id, stored with the claim.
    """
    owner = key_id or "-"
    record = IdempotencyRecord(
        key_id=owner,
        idem_key=idem_key,
        endpoint=endpoint,
        request_hash=request_hash,
        owner=replica,
    )
    session.add(record)
    try:
        session.commit()
        return Slot(record.id)
    except IntegrityError:
        session.rollback()
    found = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.key_id == owner, IdempotencyRecord.idem_key == idem_key
        )
    )
    if found is not None:
        age_s = (utcnow() - found.created_at).total_seconds()
        abandoned = found.state == "pending" and (
            age_s > pending_stale_s
            or (
                replica_gone is not None
                and found.owner is not None
                and found.owner != replica
                and replica_gone(session, found.owner)
            )
        )
        if age_s > ttl_s or abandoned:  # expired
            session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == found.id))
            session.commit()
            found = None
    if found is None:  # deleted meanwhile, or expired and deleted now: try once more
        return claim(
            session,
            key_id=key_id,
            idem_key=idem_key,
            endpoint=endpoint,
            request_hash=request_hash,
            ttl_s=ttl_s,
            pending_stale_s=pending_stale_s,
            replica=replica,
            replica_gone=replica_gone,
        )
    if found.endpoint != endpoint or found.request_hash != request_hash:
        raise HTTPException(
            422,
            "Idempotency-Key was already used with a different request; use a new key",
        )
    if found.state != "done" or found.status_code is None:
        raise HTTPException(
            409,
            "a request with this Idempotency-Key is still being answered; retry shortly",
            {"Retry-After": "1"},
        )
    return _replay(found)


def _replay(found: IdempotencyRecord) -> JSONResponse:
    """The stored answer of ``found`` (done), as sent the first time."""
    assert found.status_code is not None
    headers = {REPLAY_HEADER: "true"}
    location = (found.response or {}).get("__location__")
    body = {k: v for k, v in (found.response or {}).items() if k != "__location__"}
    if location:
        headers["Location"] = str(location)
    return JSONResponse(status_code=found.status_code, content=body, headers=headers)


class Replayed(Exception):
    """Raised by the ``Idempotency-Key`` dependency with the stored answer of a retry, before
    its body is checked; the app answers with ``response``, audited as a replay."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__("idempotent replay")
        self.response = response


def stored_answer(
    session: Session,
    *,
    key_id: str | None,
    idem_key: str,
    endpoint: str,
    request_hash: str,
    ttl_s: float,
) -> JSONResponse | None:
    """The stored answer to replay for a retry of a request answered before (the same key,
    endpoint and body, not expired), else None (:func:`claim` decides the rest).

    Looked up before the body is checked: a body answered before a rule of the model was
    added (a SKU key of 0 characters, before session 51) is a 422 now, and its retry got that
    422, as if the first request had not been answered (its plan stored, its job queued).
    """
    found = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.key_id == (key_id or "-"), IdempotencyRecord.idem_key == idem_key
        )
    )
    if (
        found is None
        or found.state != "done"
        or found.status_code is None
        or found.endpoint != endpoint
        or found.request_hash != request_hash
        or (utcnow() - found.created_at).total_seconds() > ttl_s
    ):
        return None
    return _replay(found)


def finish(
    session: Session,
    slot: Slot,
    *,
    status_code: int,
    body: dict[str, Any],
    location: str | None = None,
) -> None:
    """Store the answer to replay."""
    record = session.get(IdempotencyRecord, slot.record_id)
    if record is None:
        return
    record.state = "done"
    record.status_code = status_code
    record.response = {**body, "__location__": location} if location else body
    session.commit()


def abandon(session: Session, slot: Slot) -> None:
    """Free the key (the request failed with an error, so a retry may try again)."""
    session.rollback()
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == slot.record_id))
    session.commit()


def purge(session: Session, *, ttl_s: float) -> int:
    """Delete records older than ``ttl_s``; returns how many."""
    cutoff = utcnow() - dt.timedelta(seconds=ttl_s)
    res = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    session.commit()
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
