"""Read models of an organization's people and access for the dashboard: members, API keys
(masked), integrations (without credentials), the audit log, notifications. Every function
filters on the organization id first; rows come back as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from tenancy.models import ApiKey, AuditLog, Integration, Notification, OrganizationMember, User
from tenancy.scoping import in_period, matching, org_id

# --- members, keys, integrations, audit ------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    member_id: str
    user_id: str
    name: str
    email: str
    role: str
    joined_at: int


def read_members(session: Session, *, organization_id: str) -> list[MemberRow]:
    rows = session.execute(
        select(
            OrganizationMember.id,
            User.id,
            User.name,
            User.email,
            OrganizationMember.role,
            OrganizationMember.joined_at,
        )
        .join(User, User.id == OrganizationMember.user_id)
        .where(OrganizationMember.organization_id == org_id(organization_id))
        .order_by(OrganizationMember.joined_at)
    ).all()
    return [MemberRow(*r) for r in rows]


def read_user_names(session: Session, *, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all()
    return dict(rows)


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    name: str
    type: str
    masked: str
    permissions: list[str] | None
    last_used_at: int | None
    expires_at: int | None
    created_by: str | None
    created_at: int
    revoked_at: int | None


def read_api_key_list(session: Session, *, organization_id: str) -> list[ApiKeyRow]:
    rows = session.execute(
        select(
            ApiKey.id,
            ApiKey.name,
            ApiKey.type,
            ApiKey.key_prefix,
            ApiKey.last_four_chars,
            ApiKey.permissions,
            ApiKey.last_used_at,
            ApiKey.expires_at,
            User.name,
            ApiKey.created_at,
            ApiKey.revoked_at,
        )
        .outerjoin(User, User.id == ApiKey.created_by)
        .where(ApiKey.organization_id == org_id(organization_id))
        .order_by(ApiKey.created_at.desc())
    ).all()
    return [
        ApiKeyRow(r[0], r[1], r[2], f"{r[3]}{'•' * 8}{r[4]}", *r[5:])  # never the key itself
        for r in rows
    ]


@dataclass(frozen=True)
class IntegrationRow:
    id: str
    provider: str
    name: str
    status: str
    last_used_at: int | None
    connected_by: str | None
    created_at: int
    last_error: str | None


def read_integration_list(session: Session, *, organization_id: str) -> list[IntegrationRow]:
    """Integrations without their credentials: the list never needs them."""
    rows = session.execute(
        select(
            Integration.id,
            Integration.provider,
            Integration.name,
            Integration.status,
            Integration.last_used_at,
            User.name,
            Integration.created_at,
            Integration.last_error,
        )
        .outerjoin(User, User.id == Integration.connected_by)
        .where(Integration.organization_id == org_id(organization_id))
        .order_by(Integration.provider, Integration.name)
    ).all()
    return [IntegrationRow(*r) for r in rows]


@dataclass(frozen=True)
class AuditRow:
    id: str
    created_at: int
    actor: str
    actor_type: str
    action: str
    resource_type: str
    resource_id: str | None
    metadata: Any
    ip_address: str | None


def search_audit_logs(
    session: Session,
    *,
    organization_id: str,
    actor_id: str | None = None,
    action: str = "",
    text: str = "",
    since: int | None = None,
    until: int | None = None,
    limit: int = 200,
) -> list[AuditRow]:
    """Newest first. ``action`` may end in ``*`` (``workflow.*``); ``text`` searches the
    action, resource type and id."""
    q = (
        select(
            AuditLog.id,
            AuditLog.created_at,
            func.coalesce(User.name, AuditLog.actor_type),
            AuditLog.actor_type,
            AuditLog.action,
            AuditLog.resource_type,
            AuditLog.resource_id,
            AuditLog.metadata_,
            AuditLog.ip_address,
        )
        .outerjoin(User, User.id == AuditLog.actor_id)
        .where(AuditLog.organization_id == org_id(organization_id))
    )
    if actor_id:
        q = q.where(AuditLog.actor_id == actor_id)
    if action:
        q = matching(q, AuditLog.action, action)
    if text:
        like = f"%{text.lower()}%"
        q = q.where(
            or_(
                func.lower(AuditLog.action).like(like),
                func.lower(AuditLog.resource_type).like(like),
                func.lower(func.coalesce(AuditLog.resource_id, "")).like(like),
            )
        )
    q = in_period(q, AuditLog.created_at, since, until)
    rows = session.execute(q.order_by(AuditLog.created_at.desc()).limit(limit)).all()
    return [AuditRow(*r) for r in rows]


def read_audit_actions(session: Session, *, organization_id: str) -> list[str]:
    return list(
        session.scalars(
            select(AuditLog.action)
            .where(AuditLog.organization_id == org_id(organization_id))
            .group_by(AuditLog.action)
            .order_by(AuditLog.action)
            .limit(200)
        )
    )


# --- notifications ---------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationRow:
    id: str
    type: str
    title: str
    message: str
    link: str | None
    read: bool
    created_at: int


def read_notifications(
    session: Session, *, organization_id: str, user_id: str, limit: int = 20
) -> tuple[int, list[NotificationRow]]:
    """(unread count, newest notifications) of one user in one organization."""
    org = org_id(organization_id)
    mine = (Notification.organization_id == org, Notification.user_id == user_id)
    unread = session.scalar(select(func.count()).where(*mine, Notification.read.is_(False)))
    rows = session.execute(
        select(
            Notification.id,
            Notification.type,
            Notification.title,
            Notification.message,
            Notification.link,
            Notification.read,
            Notification.created_at,
        )
        .where(*mine)
        .order_by(Notification.created_at.desc())
        .limit(limit)
    ).all()
    return int(unread or 0), [NotificationRow(*r) for r in rows]


def mark_notifications_read(session: Session, *, organization_id: str, user_id: str) -> int:
    res = session.execute(
        update(Notification)
        .where(
            Notification.organization_id == org_id(organization_id),
            Notification.user_id == user_id,
            Notification.read.is_(False),
        )
        .values(read=True)
    )
    return int(res.rowcount or 0)
