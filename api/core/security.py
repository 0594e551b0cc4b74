"""API keys and roles: keys are random, shown once, and stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

KEY_PREFIX = "dlk"

#: The longest grace period of a rotated key (7 days): the old key of an OMS must end.
MAX_GRACE_S = 7 * 86_400


class Role(StrEnum):
    """What a key may do; ``admin`` may do everything."""

    OMS = "oms"
    PLANNER = "planner"
    RESEARCHER = "researcher"
    ADMIN = "admin"


def generate_key() -> tuple[str, str]:
    """A new key and its public lookup id: ``dlk_<id>_<secret>``."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}_{key_id}_{secret}", key_id


def split_key(key: str) -> str | None:
    """The public id part of a key, or None if the key is not shaped like one."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key (keys carry 256 random bits, so no salt or stretching is needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    """Constant-time check of a key against its stored hash."""
    return hmac.compare_digest(hash_key(key), stored_hash)


def allows(role: Role, needed: Role) -> bool:
    """True when a key of ``role`` may call an endpoint that needs ``needed``."""
    return role == Role.ADMIN or role == needed
