"""The audit trail: who did what to which resource, per organization."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from tenancy.models import AuditLog
from tenancy.principal import Principal
from tenancy.scoping import in_period, matching, newest_page, scoped


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


def search_audit_logs(
    session: Session,
    principal: Principal,
    *,
    action: str | None = None,
    actor_id: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    since: int | None = None,
    until: int | None = None,
    before: str | None = None,
    limit: int = 100,
) -> tuple[list[AuditLog], bool]:
    """A page of the organization's trail, newest first; ``before`` is the last id of a page.
    An action ending in ``.*`` matches its prefix (``member.*``)."""
    principal.require("audit:read")
    stmt = scoped(AuditLog, principal.organization_id)
    if action:  # ``member.*`` matches the prefix; several trailing stars count as one
        stmt = matching(stmt, AuditLog.action, re.sub(r"\*+$", "*", action))
    if actor_id:
        stmt = stmt.where(AuditLog.actor_id == actor_id)
    if resource_type:
        stmt = stmt.where(AuditLog.resource_type == resource_type)
    if resource_id:
        stmt = stmt.where(AuditLog.resource_id == resource_id)
    stmt = in_period(stmt, AuditLog.created_at, since, until)
    anchor = None
    if before:
        anchor = session.scalars(
            scoped(AuditLog, principal.organization_id).where(AuditLog.id == before)
        ).first()
    return newest_page(session, stmt, AuditLog, anchor, limit)


CSV_COLUMNS = (
    "id",
    "createdAt",
    "action",
    "actorType",
    "actorId",
    "resourceType",
    "resourceId",
    "ipAddress",
    "userAgent",
    "metadata",
)


def audit_csv_rows(session: Session, principal: Principal, **filters: Any) -> Any:
    """Every matching entry as CSV rows (header first), read page by page."""
    import csv
    import io
    import json

    buf = io.StringIO()
    writer = csv.writer(buf)

    def flush() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    before = None
    while True:
        rows, more = search_audit_logs(session, principal, before=before, limit=500, **filters)
        for r in rows:
            writer.writerow(
                [
                    r.id,
                    r.created_at,
                    r.action,
                    r.actor_type,
                    r.actor_id or "",
                    r.resource_type,
                    r.resource_id or "",
                    r.ip_address or "",
                    r.user_agent or "",
                    json.dumps(r.metadata_, sort_keys=True) if r.metadata_ else "",
                ]
            )
        yield flush()
        if not more or not rows:
            return
        before = rows[-1].id
