"""The audit trail: search and CSV export (admins and owners, or a secret key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ingest_api.deps import CurrentPrincipal, SessionDep
from tenancy.audit import audit_csv_rows, search_audit_logs
from tenancy.clock import parse_instant

router = APIRouter(prefix="/v1/audit-logs", tags=["audit"])


def _entry(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "action": r.action,
        "actorType": r.actor_type,
        "actorId": r.actor_id,
        "resourceType": r.resource_type,
        "resourceId": r.resource_id,
        "metadata": r.metadata_,
        "ipAddress": r.ip_address,
        "userAgent": r.user_agent,
        "createdAt": r.created_at,
    }


_TIME = "ms since the epoch, or ISO 8601 (2026-12-01, 2026-12-01T10:00:00Z)"


def _filters(
    action: str | None,
    actorId: str | None,
    resourceType: str | None,
    since: str | None,
    until: str | None,
) -> dict[str, Any]:
    return {
        "action": action,
        "actor_id": actorId,
        "resource_type": resourceType,
        "since": parse_instant(since, field="since"),
        "until": parse_instant(until, field="until"),
    }


@router.get("")
def search(
    principal: CurrentPrincipal,
    session: SessionDep,
    action: str | None = Query(None, max_length=100, description="e.g. member.invited, member.*"),
    actorId: str | None = Query(None, max_length=36),
    resourceType: str | None = Query(None, max_length=50),
    since: str | None = Query(None, max_length=40, description=_TIME),
    until: str | None = Query(None, max_length=40, description=_TIME),
    cursor: str | None = Query(None, max_length=36),
    limit: int = Query(100, ge=1, le=500),
) -> dict[str, Any]:
    rows, more = search_audit_logs(
        session,
        principal,
        before=cursor,
        limit=limit,
        **_filters(action, actorId, resourceType, since, until),
    )
    return {
        "data": [_entry(r) for r in rows],
        "nextCursor": rows[-1].id if more and rows else None,
        "hasMore": more,
    }


@router.get("/export", response_class=StreamingResponse)
def export(
    principal: CurrentPrincipal,
    session: SessionDep,
    action: str | None = Query(None, max_length=100),
    actorId: str | None = Query(None, max_length=36),
    resourceType: str | None = Query(None, max_length=50),
    since: str | None = Query(None, max_length=40, description=_TIME),
    until: str | None = Query(None, max_length=40, description=_TIME),
) -> StreamingResponse:
    """Every matching entry as CSV."""
    rows = audit_csv_rows(
        session, principal, **_filters(action, actorId, resourceType, since, until)
    )
    first = next(rows)  # checks the permission before the answer starts
    rest = list(rows)
    return StreamingResponse(
        iter([first, *rest]),
        media_type="text/csv",
        headers={
            "content-disposition": f'attachment; filename="audit-{principal.organization_slug}.csv"'
        },
    )
