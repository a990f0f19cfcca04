"""What the shell shows on every page: the notifications bell and the quick-jump targets."""

from __future__ import annotations

from streamlit_app.services.base import read
from tenancy import dashboard_queries as q
from tenancy import org_queries
from tenancy.db import session_scope

NotificationRow = org_queries.NotificationRow


def notifications(organization_id: str, user_id: str) -> tuple[int, list[NotificationRow]]:
    return read(
        lambda s: org_queries.read_notifications(
            s, organization_id=organization_id, user_id=user_id
        )
    )


def mark_all_read(organization_id: str, user_id: str) -> int:
    with session_scope() as session:
        return org_queries.mark_notifications_read(
            session, organization_id=organization_id, user_id=user_id
        )


def jump_targets(organization_id: str) -> list[dict[str, str]]:
    """Workflows by name for the command palette (pages and run ids it knows itself)."""
    rows = read(
        lambda s: q.read_workflow_list(s, organization_id=organization_id, now=0, limit=300)
    )
    return [{"label": f"Workflow: {r.name}", "href": f"/editor?id={r.id}"} for r in rows]
