"""integrations: last use, last error, consecutive failures; one name per organization

Revision ID: 0006_integrations
Revises: 0004_ai_usage
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_integrations"
down_revision: str | None = "0004_ai_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("failure_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_unique_constraint("uq_integrations_org_name", ["organization_id", "name"])


def downgrade() -> None:
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_integrations_org_name", type_="unique")
        batch_op.drop_column("failure_count")
        batch_op.drop_column("last_error")
        batch_op.drop_column("last_used_at")
