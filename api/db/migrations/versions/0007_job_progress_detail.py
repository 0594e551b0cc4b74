"""A job keeps what it last said it was doing with its progress.

A routing job reported no progress until it was done (0 while it ran, then 1). It reports the
share of its time limit used now, with ``jobs.progress_detail`` (null for the rows already
there, and for every job but a running one that reported it): its phase, the seconds since it
started and its time limit, which ``GET /v1/jobs/{id}`` shows as ``progress_detail``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress_detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("progress_detail")
