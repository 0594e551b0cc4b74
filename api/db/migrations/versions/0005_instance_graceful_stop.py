"""A replica's row says whether its own graceful stop marked it stopped.

Recovery took every running job of a stopped replica for one a crash interrupted: a
synchronous solve whose first row the database committed after its server's graceful stop
(the stop had failed the solves it found running) was failed ``interrupted: the server
stopped unexpectedly``, and an async job whose re-queue at the stop failed (the database
locked) was re-queued as a crash, a run counted. ``instances.stopped_gracefully`` (false
for the rows already there) tells recovery to end them as the stop would have.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stopped_gracefully", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("stopped_gracefully")
