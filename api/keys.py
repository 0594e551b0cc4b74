"""API key management shared by the CLI (``dispatchlab keys``) and the admin endpoints."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.core.errors import shown_id
from api.core.security import MAX_GRACE_S, Role, generate_key, hash_key
from api.db.models import ApiKey, utcnow


class KeyNotRotatable(Exception):
    """The key is revoked or expired: rotate a live key of its account instead."""


def create_key(session: Session, *, role: Role, name: str = "") -> tuple[str, ApiKey]:
    """Store a new key (hashed), its own account, and return the key itself, shown only this
    once; commits."""
    key, key_id = generate_key()
    row = ApiKey(id=key_id, name=name, role=role.value, key_hash=hash_key(key), account_id=key_id)
    session.add(row)
    session.commit()
    return key, row


def is_live(row: ApiKey, now: dt.datetime | None = None) -> bool:
    """True when the key is neither revoked nor past the end of its grace period."""
    at = now or utcnow()
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > at)


def list_keys(session: Session, *, include_revoked: bool = False) -> list[ApiKey]:
    """Keys, oldest first (live ones only unless ``include_revoked``)."""
    query = select(ApiKey).order_by(ApiKey.created_at)
    if not include_revoked:
        query = query.where(
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow()),
        )
    return list(session.scalars(query))


def revoke_key(session: Session, key_id: str) -> ApiKey | None:
    """Revoke a key by its public id (None if unknown); commits."""
    row = session.get(ApiKey, key_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


def rotate_key(
    session: Session, key_id: str, *, grace_s: int = 0
) -> tuple[str, ApiKey, ApiKey] | None:
    """Replace key ``key_id`` by a new key of the same role, name and account (whose jobs
    and plans it keeps), and end the old one: at once (``grace_s`` 0, revoked) or
    ``grace_s`` seconds from now (it expires, unless it ended sooner). Returns the new key,
    shown only this once, its row and the old key's row; None if ``key_id`` is unknown;
    raises :class:`KeyNotRotatable` for a revoked or expired key. Commits."""
    if not 0 <= grace_s <= MAX_GRACE_S:
        raise ValueError(f"grace_s must be 0 to {MAX_GRACE_S} s")
    old = session.get(ApiKey, key_id, with_for_update=True)
    if old is None:
        return None
    now = utcnow()
    if not is_live(old, now):
        ended = "revoked" if old.revoked_at is not None else "expired"
        raise KeyNotRotatable(
            f"key {shown_id(key_id)!r} is {ended}: rotate a live key of its account "
            f"({shown_id(old.account_id)!r}), or make a new key"
        )
    key, new_id = generate_key()
    row = ApiKey(
        id=new_id,
        name=old.name,
        role=old.role,
        key_hash=hash_key(key),
        account_id=old.account_id,
    )
    if grace_s == 0:
        old.revoked_at = now
    else:
        ends = now + dt.timedelta(seconds=grace_s)
        old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    session.add(row)
    session.commit()
    return key, row, old
