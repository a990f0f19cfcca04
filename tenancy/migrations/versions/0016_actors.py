"""actors: the API key (besides the user) that created or changed workflows, versions, runs

Revision ID: 0016_actors
Revises: 0015_dashboard_indexes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_actors"
down_revision: str | None = "0015_dashboard_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = {
    "workflows": ("created_by_key_id", "updated_by_key_id"),
    "workflow_versions": ("created_by_key_id",),
    "workflow_runs": ("created_by", "created_by_key_id"),
}


def upgrade() -> None:
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.add_column(sa.Column(column, sa.String(length=36), nullable=True))


def downgrade() -> None:
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(columns):
                batch_op.drop_column(column)
