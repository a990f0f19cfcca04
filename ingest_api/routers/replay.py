"""Replaying stored events, and the dead letters: events whose processing failed."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ingest_api.deps import Allowed, CurrentPrincipal, SessionDep
from ingest_api.routers.events import TIME_DOC, list_events
from ingest_api.schemas.events import EventsPage
from ingest_api.schemas.replay import Replayed, ReplayedMany, ReplayIn
from orbin_flows import replay as use_cases
from tenancy.clock import parse_instant

router = APIRouter(tags=["events"])


@router.post(
    "/v1/events/replay", response_model=ReplayedMany, summary="Replay many events (ids or filter)"
)
def replay_many(body: ReplayIn, session: SessionDep, principal: CurrentPrincipal) -> ReplayedMany:
    """Start the matching workflows again for each event: new runs, linked to the event.

    All or nothing: when the month's executions cannot cover them all, nothing starts (429).
    """
    filters = body.filter.model_dump(exclude_none=True) if body.filter else None
    if filters and "type" in filters:
        filters["event_type"] = filters.pop("type")
    for name in ("since", "until"):
        if filters and name in filters:
            filters[name] = parse_instant(filters[name], field=f"filter.{name}")
    done = use_cases.replay_events(
        session, principal, ids=body.ids, filters=filters, limit=body.limit
    )
    return ReplayedMany(
        count=len(done),
        runCount=sum(len(r.run_ids) for r in done),
        data=[Replayed.of_replay(r.event, r.run_ids) for r in done],
    )


@router.post("/v1/events/{event_id}/replay", response_model=Replayed, summary="Replay an event")
def replay_one(event_id: str, session: SessionDep, principal: CurrentPrincipal) -> Replayed:
    done = use_cases.replay_event(session, principal, event_id)
    return Replayed.of_replay(done.event, done.run_ids)


@router.get(
    "/v1/dead-letters",
    response_model=EventsPage,
    summary="Events whose processing failed, newest first, each with its reason (error)",
)
def list_dead_letters(
    session: SessionDep,
    principal: Allowed("events:read"),
    type: str | None = Query(None, description="an event type, or a prefix pattern: order.*"),
    source: str | None = None,
    since: str | None = Query(None, max_length=40, description=TIME_DOC),
    until: str | None = Query(None, max_length=40, description=TIME_DOC + " (excluded)"),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=36, description="nextCursor of the last page"),
) -> EventsPage:
    return list_events(
        session,
        principal,
        type=type,
        source=source,
        status="failed",
        since=since,
        until=until,
        idempotencyKey=None,
        limit=limit,
        cursor=cursor,
    )


@router.post("/v1/dead-letters/{event_id}/retry", response_model=Replayed)
@router.post("/v1/events/{event_id}/retry", response_model=Replayed, include_in_schema=False)
def retry(event_id: str, session: SessionDep, principal: CurrentPrincipal) -> Replayed:
    """Start the runs a failed event did not start; it leaves the dead letters."""
    done = use_cases.retry_dead_letter(session, principal, event_id)
    return Replayed.of_replay(done.event, done.run_ids)


@router.post("/v1/dead-letters/{event_id}/discard", response_model=Replayed)
@router.post("/v1/events/{event_id}/discard", response_model=Replayed, include_in_schema=False)
def discard(event_id: str, session: SessionDep, principal: CurrentPrincipal) -> Replayed:
    """Give up on a failed event: status ``discarded``; its reason is kept."""
    event = use_cases.discard_dead_letter(session, principal, event_id)
    return Replayed.of_replay(event, [])
