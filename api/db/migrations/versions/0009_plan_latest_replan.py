"""A plan names its ``if_latest`` re-plan, so that of two concurrent ones only one wins.

Two concurrent re-plans of one plan both succeeded and branched the plan tree; an OMS
re-planning its live plan could not tell it had raced. ``plans.latest_job_id`` (with
``latest_plan_id``, the plan it makes, and ``latest_claimed_at``) is the job of the plan's
``if_latest`` re-plan, claimed by a
conditional UPDATE: the second such re-plan gets 409 naming the first. Null for the rows
already there (no claim: their next ``if_latest`` re-plan claims them).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latest_job_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("latest_plan_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("latest_claimed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("latest_claimed_at")
        batch_op.drop_column("latest_plan_id")
        batch_op.drop_column("latest_job_id")
