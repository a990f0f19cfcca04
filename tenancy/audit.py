"""The audit trail: who did what to which resource, per organization."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tenancy.models import AuditLog
from tenancy.principal import Principal
from tenancy.scoping import scoped


def record_audit(
    session: Session,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> None:
    meta = dict(metadata or {})
    if principal.key_id:
        meta.setdefault("apiKeyId", principal.key_id)
    session.add(
        AuditLog(
            organization_id=principal.organization_id,
            actor_id=principal.user_id,
            actor_type=principal.actor_type,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            metadata_=meta or None,
            ip_address=ip_address,
            user_agent=user_agent,
        )
    )


def read_audit_logs(session: Session, *, organization_id: str, limit: int = 100) -> list[AuditLog]:
    return list(
        session.scalars(
            scoped(AuditLog, organization_id).order_by(AuditLog.created_at.desc()).limit(limit)
        )
    )
