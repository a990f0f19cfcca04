"""Event ingestion: ``POST /v1/events`` and the PRD's ``POST /api/webhooks/ingest``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from ingest_api.body import read_json
from ingest_api.deps import Allowed, SessionDep
from ingest_api.errors import validation_details
from ingest_api.schemas.events import EventAccepted, EventIn, EventPublic, EventsPage
from ingest_api.schemas.runs import RunPublic
from orbin_flows.ingest import ingest_event
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy.db import session_scope
from tenancy.errors import InvalidInput
from tenancy.keys import authenticate_api_key

router = APIRouter(tags=["events"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": EventIn.model_json_schema()}},
    }
}


def parse_event(value: Any) -> EventIn:
    try:
        return EventIn.model_validate(value)
    except ValidationError as exc:
        details = validation_details(list(exc.errors()))
        raise InvalidInput(
            "invalid event: " + "; ".join(f"{d['field']}: {d['message']}" for d in details[:5]),
            details=details,
        ) from exc


def _ingest(api_key: str | None, event: EventIn, idempotency_key: str | None) -> dict[str, Any]:
    with session_scope() as session:
        principal = authenticate_api_key(session, api_key)
        result = ingest_event(
            session,
            principal,
            event_type=event.type,
            source=event.source,
            data=event.data,
            idempotency_key=idempotency_key,
        )
    result.raise_failure()  # committed as a dead letter first
    return result.answer()


async def _post_event(request: Request, api_key: str | None, idempotency_key: str | None) -> Any:
    if not api_key:
        with session_scope() as session:  # the same 401 as any bad key
            authenticate_api_key(session, None)
    body = await read_json(request)
    event = parse_event(body)
    if idempotency_key is not None and not (1 <= len(idempotency_key) <= 200):
        raise InvalidInput(
            "x-idempotency-key must be 1 to 200 characters",
            details=[{"field": "x-idempotency-key"}],
        )
    return await run_in_threadpool(_ingest, api_key, event, idempotency_key)


@router.post(
    "/v1/events",
    status_code=202,
    response_model=EventAccepted,
    openapi_extra=_BODY_DOC,
    summary="Ingest an event",
)
async def post_event(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    x_idempotency_key: Annotated[str | None, Header()] = None,
) -> Any:
    """Store the event and start every active workflow whose event trigger matches.

    The answer is sent once the event is committed. The same ``x-idempotency-key`` returns
    the original answer and starts nothing new.
    """
    return await _post_event(request, x_api_key, x_idempotency_key)


@router.post(
    "/api/webhooks/ingest",
    status_code=202,
    response_model=EventAccepted,
    openapi_extra=_BODY_DOC,
    summary="Ingest an event (the PRD's path)",
)
async def post_webhook_ingest(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    x_idempotency_key: Annotated[str | None, Header()] = None,
) -> Any:
    return await _post_event(request, x_api_key, x_idempotency_key)


EventStatus = Literal["pending", "processed", "failed", "discarded"]


@router.get("/v1/events", response_model=EventsPage, summary="List events, newest first")
def list_events(
    session: SessionDep,
    principal: Allowed("events:read"),
    type: str | None = Query(None, description="an event type, or a prefix pattern: order.*"),
    source: str | None = None,
    status: EventStatus | None = None,
    since: int | None = Query(None, description="ms since the epoch"),
    until: int | None = Query(None, description="ms since the epoch"),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> EventsPage:
    rows = events_repo.read_events(
        session,
        organization_id=principal.organization_id,
        limit=limit + 1,
        before=cursor,
        event_type=type,
        source=source,
        status=status,
        since=since,
        until=until,
    )
    page = rows[:limit]
    more = len(rows) > limit
    return EventsPage(
        data=[EventPublic.of(e) for e in page],
        nextCursor=page[-1].id if more and page else None,
        hasMore=more,
    )


@router.get("/v1/events/{event_id}", summary="One event, with the runs it started")
def get_event(
    event_id: str, session: SessionDep, principal: Allowed("events:read")
) -> dict[str, Any]:
    event = events_repo.read_event(
        session, organization_id=principal.organization_id, event_id=event_id
    )
    runs = runs_repo.read_runs_for_event(
        session, organization_id=principal.organization_id, event_pk=event.id
    )
    return {
        **EventPublic.of(event).model_dump(),
        "runs": [RunPublic.of(r).model_dump() for r in runs],
    }
