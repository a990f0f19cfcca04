"""In-app notifications: per user and organization, read or unread."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tenancy.errors import InvalidInput, NotFound
from tenancy.models import Notification, OrganizationMember
from tenancy.principal import ROLE_RANK, Principal
from tenancy.scoping import newest_page

TYPES = ("info", "success", "warning", "error", "member", "billing", "run")


def notify(
    session: Session,
    *,
    organization_id: str,
    user_ids: Iterable[str],
    type: str,
    title: str,
    message: str,
    link: str | None = None,
) -> int:
    n = 0
    for user_id in dict.fromkeys(user_ids):
        session.add(
            Notification(
                user_id=user_id,
                organization_id=organization_id,
                type=type,
                title=title[:200],
                message=message,
                link=link,
            )
        )
        n += 1
    return n


def user_ids_with_role(session: Session, organization_id: str, minimum: str) -> list[str]:
    rows = session.execute(
        select(OrganizationMember.user_id, OrganizationMember.role).where(
            OrganizationMember.organization_id == organization_id
        )
    )
    return [u for u, role in rows if ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]]


def notify_admins(session: Session, organization_id: str, **kw: str) -> int:
    """Tell the organization's admins and owners."""
    return notify(
        session,
        organization_id=organization_id,
        user_ids=user_ids_with_role(session, organization_id, "admin"),
        **kw,  # type: ignore[arg-type]
    )


def _mine(principal: Principal):  # type: ignore[no-untyped-def]
    if not principal.user_id:
        raise NotFound("notifications belong to signed-in users: use a session token")
    return (
        Notification.user_id == principal.user_id,
        Notification.organization_id == principal.organization_id,
    )


def list_notifications(
    session: Session,
    principal: Principal,
    *,
    unread_only: bool = False,
    before: str | None = None,
    limit: int = 50,
) -> tuple[list[Notification], int, bool]:
    """(page newest first, unread count, has more). ``before`` is the last id of a page."""
    where = list(_mine(principal))
    stmt = select(Notification).where(*where)
    if unread_only:
        stmt = stmt.where(Notification.read.is_(False))
    anchor = session.get(Notification, before) if before else None
    rows, more = newest_page(session, stmt, Notification, anchor, limit)
    unread = session.scalar(
        select(func.count()).select_from(Notification).where(*where, Notification.read.is_(False))
    )
    return rows, int(unread or 0), more


def mark_read(session: Session, principal: Principal, notification_id: str | None = None) -> int:
    stmt = update(Notification).where(*_mine(principal), Notification.read.is_(False))
    if notification_id is not None:
        row = session.scalars(
            select(Notification).where(*_mine(principal), Notification.id == notification_id)
        ).first()
        if row is None:
            raise NotFound(f"notification {notification_id} not found")
        stmt = stmt.where(Notification.id == notification_id)
    return int(session.execute(stmt.values(read=True)).rowcount or 0)


# What a member hears about, in the app and by e-mail, unless they choose otherwise.
CAUSES: dict[str, dict[str, bool]] = {
    "workflow_failed": {"inApp": True, "email": False},
    "usage": {"inApp": True, "email": True},
    "member_joined": {"inApp": True, "email": False},
    "integration_error": {"inApp": True, "email": False},
}
_CAUSE_MIN_ROLE = {
    "workflow_failed": "member",
    "usage": "admin",
    "member_joined": "admin",
    "integration_error": "admin",
}


def preferences(user: Any) -> dict[str, dict[str, bool]]:
    mine = user.notification_preferences or {}
    return {c: {**d, **(mine.get(c) or {})} for c, d in CAUSES.items()}


def update_preferences(user: Any, changes: dict[str, Any]) -> dict[str, dict[str, bool]]:
    unknown = sorted(set(changes) - set(CAUSES))
    if unknown:
        raise InvalidInput(
            f"unknown notification causes: {', '.join(unknown)}; known: {', '.join(CAUSES)}",
            details=[{"field": u, "allowed": list(CAUSES)} for u in unknown],
        )
    current = preferences(user)
    for cause, value in changes.items():
        if (
            not isinstance(value, dict)
            or set(value) - {"inApp", "email"}
            or not all(isinstance(v, bool) for v in value.values())
        ):
            raise InvalidInput(
                f"{cause} must be an object of booleans inApp and email",
                details=[{"field": cause}],
            )
        current[cause].update(value)
    user.notification_preferences = current
    return current


def notify_cause(
    session: Session,
    *,
    organization_id: str,
    cause: str,
    title: str,
    message: str,
    link: str | None = None,
    minimum_role: str | None = None,
) -> int:
    """Tell the members the cause concerns, in the app and by e-mail, as each prefers."""
    from tenancy.mail import queue_mail
    from tenancy.models import User

    role = minimum_role or _CAUSE_MIN_ROLE[cause]
    ids = user_ids_with_role(session, organization_id, role)
    users = session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)) if ids else []
    n = 0
    for user in users:
        prefs = preferences(user)[cause]
        if prefs["inApp"]:
            n += notify(
                session,
                organization_id=organization_id,
                user_ids=[user.id],
                type=cause,
                title=title,
                message=message,
                link=link,
            )
        if prefs["email"]:
            queue_mail(
                session,
                to=user.email,
                subject=f"[Orbin] {title}",
                text=f"{message}\n" + (f"\n{link}\n" if link else ""),
                organization_id=organization_id,
            )
    return n


def notify_run_failed(session: Session, run: Any, error: dict[str, Any] | None) -> None:
    from tenancy.models import Workflow

    wf = session.get(Workflow, run.workflow_id)
    name = wf.name if wf is not None else run.workflow_id
    reason = (error or {}).get("message") or "a step failed"
    notify_cause(
        session,
        organization_id=run.organization_id,
        cause="workflow_failed",
        title=f"Workflow {name} failed"[:200],
        message=f"Run {run.id} of {name} failed: {str(reason)[:500]}",
        link=f"/run?id={run.id}",
    )
