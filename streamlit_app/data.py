"""Data for the pages: every loader takes the organization id, so nothing crosses tenants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenancy import runs as runs_repo
from tenancy.db import session_scope
from tenancy.errors import Unauthenticated
from tenancy.orgs import authenticate_user, read_memberships


@dataclass(frozen=True)
class Membership:
    organization_id: str
    slug: str
    name: str
    role: str


def sign_in(email: str, password: str) -> tuple[str, str, list[Membership]]:
    """(user id, user name, memberships), or Unauthenticated."""
    with session_scope() as session:
        user = authenticate_user(session, email=email, password=password)
        members = [
            Membership(o.id, o.slug, o.name, m.role)
            for m, o in read_memberships(session, user_id=user.id)
        ]
        if not members:
            raise Unauthenticated("this user belongs to no organization")
        return user.id, user.name, members


def recent_runs(organization_id: str, limit: int = 50) -> list[dict[str, Any]]:
    with session_scope() as session:
        rows = runs_repo.read_runs(session, organization_id=organization_id, limit=limit)
        return [
            {
                "Run ID": r.id,
                "Status": r.status,
                "Trigger": r.trigger_type,
                "Workflow": r.workflow_id,
                "Created": r.created_at,
                "Duration (ms)": r.duration_ms,
            }
            for r in rows
        ]
