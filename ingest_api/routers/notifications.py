"""In-app notifications of the signed-in user in the organization."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from ingest_api.deps import CurrentPrincipal, SessionDep
from tenancy.identity import notifications

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


def _n(n: Any) -> dict[str, Any]:
    return {
        "id": n.id,
        "type": n.type,
        "title": n.title,
        "message": n.message,
        "link": n.link,
        "read": n.read,
        "createdAt": n.created_at,
    }


@router.get("")
def list_notifications(
    principal: CurrentPrincipal,
    session: SessionDep,
    unread: bool = Query(False, description="only unread ones"),
    cursor: str | None = Query(None, max_length=36),
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    rows, unread_count, more = notifications.list_notifications(
        session, principal, unread_only=unread, before=cursor, limit=limit
    )
    return {
        "data": [_n(n) for n in rows],
        "unreadCount": unread_count,
        "nextCursor": rows[-1].id if more and rows else None,
        "hasMore": more,
    }


@router.post("/{notification_id}/read")
def mark_read(
    notification_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    return {"updated": notifications.mark_read(session, principal, notification_id)}


@router.post("/read-all")
def mark_all_read(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return {"updated": notifications.mark_read(session, principal)}
