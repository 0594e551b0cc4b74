"""API key management shared by the CLI (``dispatchlab keys``) and the admin endpoints."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.security import Role, generate_key, hash_key
from api.db.models import ApiKey, utcnow


def create_key(session: Session, *, role: Role, name: str = "") -> tuple[str, ApiKey]:
    """Store a new key (hashed) and return the key itself, shown only this once; commits."""
    key, key_id = generate_key()
    row = ApiKey(id=key_id, name=name, role=role.value, key_hash=hash_key(key))
    session.add(row)
    session.commit()
    return key, row


def list_keys(session: Session, *, include_revoked: bool = False) -> list[ApiKey]:
    """Keys, oldest first."""
    query = select(ApiKey).order_by(ApiKey.created_at)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
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
