"""Job listing indexes end with the job id, the listing's tiebreaker between equal timestamps.

``GET /v1/jobs`` orders by ``created_at`` then ``id`` (descending), so that jobs created in
the same instant keep one order across offset pages. With the id as the indexes' last
column the page is still read in index order, without a sort.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: name -> (columns before, columns after)
_INDEXES = {
    "ix_jobs_status_created": (["status", "created_at"], ["status", "created_at", "id"]),
    "ix_jobs_key_created": (["key_id", "created_at"], ["key_id", "created_at", "id"]),
    "ix_jobs_created": (["created_at"], ["created_at", "id"]),
}


def _rebuild(which: int) -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name in _INDEXES:
            batch_op.drop_index(name)
        for name, columns in _INDEXES.items():
            batch_op.create_index(name, columns[which], unique=False)


def upgrade() -> None:
    """Apply this migration."""
    _rebuild(1)


def downgrade() -> None:
    """Revert this migration."""
    _rebuild(0)
