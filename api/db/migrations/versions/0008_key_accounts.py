"""API keys act for an account, which a rotated key inherits; a rotated key may expire.

Jobs, plans and idempotency records belonged to the key that made them (their ``key_id``),
so rotating an OMS's key (a new key, the old one revoked) lost the day's plans: the new key
could neither read nor re-plan them. ``api_keys.account_id`` names the account a key acts
for, the id of the account's first key: every key already there is its own account (its
id), so the ``key_id`` of every stored job, plan and idempotency record, which now holds
the owning account, stays right without being rewritten. ``api_keys.expires_at`` is the end
of a rotated key's grace period (null: no end).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE api_keys SET account_id = id")  # every key so far is its own account
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_index("ix_api_keys_account_id", ["account_id"], unique=False)


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_account_id")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("account_id")
