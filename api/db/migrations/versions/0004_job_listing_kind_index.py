"""The job listing filtered by kind reads its page in index order, without a sort.

``GET /v1/jobs?kind=...`` (an admin's listing, all keys) found its rows by ``ix_jobs_kind``
(``kind`` alone) and then sorted every job of that kind by ``created_at`` and ``id`` in a
temporary B-tree to cut one page out of them. ``ix_jobs_kind_created`` (``kind``,
``created_at``, ``id``) serves both the filter and the order; it replaces ``ix_jobs_kind``,
whose lookups it covers (its leading column).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_kind")
        batch_op.create_index("ix_jobs_kind_created", ["kind", "created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_jobs_key_kind_created", ["key_id", "kind", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_key_kind_created")
        batch_op.drop_index("ix_jobs_kind_created")
        batch_op.create_index("ix_jobs_kind", ["kind"], unique=False)
