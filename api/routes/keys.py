"""``/v1/keys``: API key management for admin keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException

from api import keys
from api.core.errors import ERROR_RESPONSES, shown_id
from api.deps import AdminDep, CtxDep, SessionDep
from api.schemas.common import (
    KeyCreate,
    KeyCreated,
    KeyPublic,
    KeyRotate,
    KeyRotated,
    KeysPublic,
)

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=ERROR_RESPONSES)


@router.post("", response_model=KeyCreated, status_code=201, summary="Create an API key")
def create_key(body: KeyCreate, session: SessionDep, _admin: AdminDep) -> KeyCreated:
    """A new key with a role; the answer is the only time the key is shown."""
    key, row = keys.create_key(session, role=body.role, name=body.name)
    return KeyCreated(**KeyPublic.model_validate(row).model_dump(), key=key)


@router.get("", response_model=KeysPublic, summary="List API keys")
def list_keys(session: SessionDep, _admin: AdminDep) -> KeysPublic:
    """Active keys (ids, names, roles, accounts; never secrets)."""
    rows = keys.list_keys(session)
    return KeysPublic(data=[KeyPublic.model_validate(r) for r in rows], count=len(rows))


@router.delete("/{key_id}", response_model=KeyPublic, summary="Revoke an API key")
def revoke_key(key_id: str, session: SessionDep, ctx: CtxDep, _admin: AdminDep) -> KeyPublic:
    """Revoke a key; requests with it get 401 from now on."""
    row = keys.revoke_key(session, key_id)
    if row is None:
        raise HTTPException(404, f"no key {shown_id(key_id)!r}")
    ctx.key_cache.clear()
    return KeyPublic.model_validate(row)


@router.post(
    "/{key_id}/rotate", response_model=KeyRotated, status_code=201, summary="Rotate an API key"
)
def rotate_key(
    key_id: str,
    session: SessionDep,
    ctx: CtxDep,
    _admin: AdminDep,
    body: Annotated[KeyRotate | None, Body()] = None,
) -> KeyRotated:
    """A new key of the same role, name and account, which keeps the old key's jobs and
    plans; the old key ends at once, or after ``grace_s``. The new key is shown only here."""
    try:
        made = keys.rotate_key(session, key_id, grace_s=(body or KeyRotate()).grace_s)
    except keys.KeyNotRotatable as err:
        raise HTTPException(409, str(err)) from None
    if made is None:
        raise HTTPException(404, f"no key {shown_id(key_id)!r}")
    key, row, old = made
    ctx.key_cache.clear()
    return KeyRotated(
        **KeyPublic.model_validate(row).model_dump(),
        key=key,
        rotated=KeyPublic.model_validate(old),
    )
