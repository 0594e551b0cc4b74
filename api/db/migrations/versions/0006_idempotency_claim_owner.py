"""An idempotency claim names the replica that took it.

A request whose server died before it answered (a crash, SIGHUP, SIGQUIT) left its
``Idempotency-Key`` claimed ``pending``, and every retry got 409 ("still being answered")
until the claim was stale, ``max_sync_time_limit_s`` + ``fallback_grace_s`` + 60 s (92 s by
default) after it was taken. ``idempotency_keys.owner`` (null for the rows already there,
which keep that wait) lets a retry take over at once the claim of a replica gone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("owner")
