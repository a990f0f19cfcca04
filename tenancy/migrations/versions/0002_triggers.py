"""triggers: webhook secrets per workflow, schedule sync state, webhook events' workflow,
change log for live streams

Revision ID: 0002_triggers
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_triggers"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule_synced_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("webhook_secret_enc", sa.Text(), nullable=True))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workflow_id", sa.String(length=36), nullable=True))
    op.create_table(
        "change_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_log")),
    )
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.create_index("ix_change_log_org_id", ["organization_id", "id"], unique=False)
        batch_op.create_index("ix_change_log_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.drop_index("ix_change_log_created_at")
        batch_op.drop_index("ix_change_log_org_id")
    op.drop_table("change_log")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("workflow_id")
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret_enc")
        batch_op.drop_column("schedule_synced_version")
