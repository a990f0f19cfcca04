"""billing: plan state per organization, Stripe events processed once, usage notices once per
threshold and period, daily usage kept past retention, Stripe meter reports

Revision ID: 0007_billing
Revises: 0006_integrations
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_billing"
down_revision: str | None = "0006_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_status", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("billing_period_start", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("billing_event_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("pool_concurrency", sa.Integer(), nullable=True))
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), primary_key=True),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "usage_notices",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            sa.String(length=36),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("organization_id", "period_end", "threshold"),
    )
    op.create_table(
        "usage_rollups",
        sa.Column(
            "organization_id",
            sa.String(length=36),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("workflow_id", sa.String(length=36), primary_key=True),
        sa.Column("executions", sa.Integer(), nullable=False),
    )
    op.create_table(
        "meter_reports",
        sa.Column("run_id", sa.String(length=36), primary_key=True),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_meter_reports_due", "meter_reports", ["reported_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_meter_reports_due", table_name="meter_reports")
    op.drop_table("meter_reports")
    op.drop_table("usage_rollups")
    op.drop_table("usage_notices")
    op.drop_table("stripe_events")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("pool_concurrency")
        batch_op.drop_column("billing_event_at")
        batch_op.drop_column("billing_period_start")
        batch_op.drop_column("billing_status")
