"""Audit entries for what happens to an account rather than inside one organization (sign-in,
MFA): written to the trail of every organization the user belongs to, so each one's admins
see their members' sign-ins. Metadata never holds a secret (no password, code or token)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy.models import AuditLog, Organization, OrganizationMember


def record_account_audit(
    session: Session,
    user_id: str,
    action: str,
    metadata: dict[str, Any] | None = None,
    *,
    organization_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> None:
    """One entry per organization of the user (only ``organization_id``'s when it is given)."""
    stmt = (
        select(Organization.id)
        .join(OrganizationMember, OrganizationMember.organization_id == Organization.id)
        .where(OrganizationMember.user_id == user_id)
    )
    if organization_id:
        stmt = stmt.where(Organization.id == organization_id)
    for org_id in session.scalars(stmt):
        session.add(
            AuditLog(
                organization_id=org_id,
                actor_id=user_id,
                actor_type="user",
                action=action,
                resource_type="user",
                resource_id=user_id,
                metadata_=dict(metadata) if metadata else None,
                ip_address=ip,
                user_agent=(user_agent or "")[:500] or None,
            )
        )
