"""The events screen: the stream with filters, one event's payload and runs, replay, and the
dead letters (retry, discard)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orbin_flows import replay as replay_cases
from streamlit_app.services.base import Actor, Outcome, act, read
from tenancy import dashboard_queries as q
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy.errors import NotFound

EVENT_STATUSES = events_repo.EVENT_STATUSES


@dataclass(frozen=True)
class EventRow:
    id: str
    event_type: str
    source: str
    status: str
    created_at: int
    processed_at: int | None
    run_ids: list[str]
    error: str | None
    payload: Any


@dataclass(frozen=True)
class EventDetail:
    event: EventRow
    runs: list[tuple[str, str]]  # (run id, status)


def _row(e: Any) -> EventRow:
    return EventRow(
        e.id,
        e.event_type,
        e.source,
        e.status,
        e.created_at,
        e.processed_at,
        list(e.run_ids or []),
        e.error,
        e.payload,
    )


def list_events(
    organization_id: str,
    *,
    event_type: str | None = None,
    source: str | None = None,
    status: str | None = None,
    since: int | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[EventRow]:
    return read(
        lambda s: [
            _row(e)
            for e in events_repo.read_events(
                s,
                organization_id=organization_id,
                event_type=event_type or None,
                source=source or None,
                status=status or None,
                since=since,
                before=before,
                limit=limit,
            )
        ]
    )


def sources(organization_id: str) -> list[str]:
    return read(lambda s: q.read_event_sources(s, organization_id=organization_id))


def event_detail(organization_id: str, event_id: str) -> EventDetail | None:
    def get(session):  # type: ignore[no-untyped-def]
        try:
            e = events_repo.read_event(session, organization_id=organization_id, event_id=event_id)
        except NotFound:
            return None
        runs = runs_repo.read_runs_for_event(
            session, organization_id=organization_id, event_pk=e.id
        )
        return EventDetail(_row(e), [(r.id, r.status) for r in runs])

    return read(get)


def replay(actor: Actor, event_ids: list[str]) -> Outcome:
    def go(session, principal):  # type: ignore[no-untyped-def]
        done = replay_cases.replay_events(session, principal, ids=event_ids)
        return [run_id for r in done for run_id in r.run_ids]

    return act(actor, f"Replayed {len(event_ids)} event(s).", go)


def retry_dead_letter(actor: Actor, event_id: str) -> Outcome:
    return act(
        actor,
        "Retried: the runs that had not started are on their way.",
        lambda s, p: replay_cases.retry_dead_letter(s, p, event_id).run_ids,
    )


def discard_dead_letter(actor: Actor, event_id: str) -> Outcome:
    return act(
        actor, "Discarded.", lambda s, p: replay_cases.discard_dead_letter(s, p, event_id).id
    )
