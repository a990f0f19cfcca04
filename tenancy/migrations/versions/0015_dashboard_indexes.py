"""dashboard indexes: newest-first pages of one organization's runs and events by keyset

Revision ID: 0015_dashboard_indexes
Revises: 0008_run_trace
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_dashboard_indexes"
down_revision: str | None = "0008_run_trace"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_workflow_runs_org_id", "workflow_runs", ["organization_id", "id"])
    op.create_index(
        "ix_workflow_runs_org_status_id", "workflow_runs", ["organization_id", "status", "id"]
    )
    op.create_index("ix_events_org_id", "events", ["organization_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_org_id", table_name="events")
    op.drop_index("ix_workflow_runs_org_status_id", table_name="workflow_runs")
    op.drop_index("ix_workflow_runs_org_id", table_name="workflow_runs")
