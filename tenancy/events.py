"""Stored events: the durable record of everything ingested, idempotent per organization."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenancy.changes import change, publish_change, publish_many
from tenancy.clock import new_id, now_ms
from tenancy.models import Event
from tenancy.scoping import get_scoped, in_period, matching, scoped

EVENT_STATUSES = ("pending", "processed", "failed", "discarded")


def read_event_by_key(session: Session, *, organization_id: str, event_id: str) -> Event | None:
    return session.scalars(scoped(Event, organization_id).where(Event.event_id == event_id)).first()


def insert_event(
    session: Session,
    *,
    organization_id: str,
    event_type: str,
    source: str,
    payload: Any,
    event_id: str | None,
    api_key_id: str | None = None,
    workflow_id: str | None = None,
) -> tuple[Event, bool]:
    """Store an event; with an idempotency key already used, return the stored one instead.

    Returns (event, created). Safe under concurrent duplicates: the unique (org, eventId)
    constraint decides, and the loser reads the winner's row.
    """
    if event_id:
        existing = read_event_by_key(session, organization_id=organization_id, event_id=event_id)
        if existing is not None:
            return existing, False
    row_id = new_id()
    event = Event(
        id=row_id,
        organization_id=organization_id,
        event_type=event_type,
        event_id=event_id or row_id,
        source=source,
        payload=payload,
        status="pending",
        run_ids=[],
        api_key_id=api_key_id,
        workflow_id=workflow_id,
    )
    try:
        with session.begin_nested():
            session.add(event)
            session.flush()
    except IntegrityError:
        existing = read_event_by_key(
            session, organization_id=organization_id, event_id=event_id or ""
        )
        if existing is None:
            raise
        return existing, False
    return event, True


def read_events_by_keys(
    session: Session, *, organization_id: str, event_ids: list[str]
) -> dict[str, Event]:
    """The stored events of this organization with these idempotency keys, by key."""
    if not event_ids:
        return {}
    rows = session.scalars(scoped(Event, organization_id).where(Event.event_id.in_(event_ids)))
    return {e.event_id: e for e in rows}


# One statement text whatever the number of rows (parsed once, prepared by the server); the
# rows travel as one JSON document, encoded by orjson: far cheaper than a parameter per value.
# The same statement records the change of each inserted event that starts no run (status
# processed) in change_log: one round trip, and on an autocommit connection no BEGIN or COMMIT
# either. An event that starts runs is announced by the caller, once its runs are decided.
_PG_INSERT_EVENTS = (
    "WITH e AS ("
    "INSERT INTO events (id, organization_id, event_type, event_id, source, payload, status, "
    "run_ids, api_key_id, created_at, processed_at) "
    "SELECT id, organization_id, event_type, event_id, source, payload, status, run_ids, "
    "api_key_id, created_at, processed_at FROM jsonb_to_recordset(%s::jsonb) AS r("
    "id varchar, organization_id varchar, event_type varchar, event_id varchar, "
    "source varchar, payload jsonb, status varchar, run_ids jsonb, api_key_id varchar, "
    "created_at bigint, processed_at bigint) "
    "ON CONFLICT (organization_id, event_id) DO NOTHING "
    "RETURNING id, organization_id, event_type, status), "
    "c AS (INSERT INTO change_log (organization_id, kind, payload, created_at) "
    "SELECT organization_id, 'event', jsonb_build_object('org', organization_id, "
    "'kind', 'event', 'id', id, 'status', status, 'type', event_type), %s "
    "FROM e WHERE status = 'processed' ORDER BY id RETURNING id, payload->>'id' AS event) "
    "SELECT e.id, c.id FROM e LEFT JOIN c ON c.event = e.id"
)


def insert_events(session: Session, *, rows: list[dict[str, Any]]) -> set[str]:
    """Insert many events with one statement and announce each; returns the ids inserted.

    A row whose idempotency key another transaction took meanwhile is skipped, not an error
    (``ON CONFLICT DO NOTHING``): on PostgreSQL the statement waits for that transaction, so
    the caller then reads the winner's committed row. Each row carries its organization id.
    Each inserted event that starts no run (status ``processed``) is announced as a change
    (``event``, its status and type), on PostgreSQL recorded by the insert itself; the caller
    announces the others once it knows whether their runs start.
    """
    if not rows:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        result = session.connection().exec_driver_sql(
            _PG_INSERT_EVENTS, (json_text(rows), now_ms())
        )
        seqs = dict(result.all())
        publish_many(
            session,
            [
                change(
                    r["organization_id"],
                    "event",
                    r["id"],
                    status=r["status"],
                    type=r["event_type"],
                    seq=seqs[r["id"]],
                )
                for r in rows
                if seqs.get(r["id"]) is not None
            ],
        )
        return set(seqs)
    from sqlalchemy.dialects.sqlite import insert

    stmt = (
        insert(Event)
        .on_conflict_do_nothing(index_elements=["organization_id", "event_id"])
        .returning(Event.id, Event.organization_id, Event.event_type, Event.status)
    )
    inserted = session.execute(stmt, rows).all()
    publish_many(
        session,
        [
            change(org, "event", pk, status=status, type=type_)
            for pk, org, type_, status in inserted
            if status == "processed"
        ],
    )
    return {row[0] for row in inserted}


def announce_event(session: Session, event: Event) -> None:
    """Tell live views of an event's status (delivered once the transaction commits)."""
    publish_change(
        session,
        organization_id=event.organization_id,
        kind="event",
        obj_id=event.id,
        status=event.status,
        type=event.event_type,
    )


def clear_run_ids(session: Session, *, event_pk: str) -> None:
    session.execute(update(Event).where(Event.id == event_pk).values(run_ids=[]))


def json_text(value: Any) -> str:
    """A JSON document as text, for the bulk statements (orjson: several times json's speed)."""
    return orjson.dumps(value).decode()


def same_event(event: Event, *, event_type: str, source: str, payload: Any) -> bool:
    """Whether a stored event is the one described (an idempotent retry, not a reused key)."""
    return event.event_type == event_type and event.source == source and event.payload == payload


def idempotency_key(event: Event) -> str | None:
    """The key an event was deduplicated by, if one was sent (``events.event_id`` holds the
    event's own id otherwise)."""
    return None if event.event_id == event.id else event.event_id


def read_event(session: Session, *, organization_id: str, event_id: str) -> Event:
    """By its id: the ``id`` every answer gives (never the idempotency key)."""
    return get_scoped(session, Event, organization_id, event_id, label="event")


def read_events(
    session: Session,
    *,
    organization_id: str,
    limit: int = 50,
    before: str | None = None,
    event_type: str | None = None,
    source: str | None = None,
    status: str | None = None,
    since: int | None = None,
    until: int | None = None,
    idempotency_key: str | None = None,
) -> list[Event]:
    """Newest first. ``event_type`` may end in ``*`` (``order.*``); times are ms, until excluded."""
    q = scoped(Event, organization_id)
    if idempotency_key:
        q = q.where(Event.event_id == idempotency_key, Event.event_id != Event.id)
    if event_type:
        q = matching(q, Event.event_type, event_type)
    if source:
        q = q.where(Event.source == source)
    if status:
        q = q.where(Event.status == status)
    q = in_period(q, Event.created_at, since, until)
    if before:
        q = q.where(Event.id < before)
    return list(session.scalars(q.order_by(Event.id.desc()).limit(limit)))


def mark_event(session: Session, *, event_pk: str, status: str, error: str | None = None) -> None:
    orgs = session.scalars(
        update(Event)
        .where(Event.id == event_pk)
        .values(status=status, error=error, processed_at=now_ms() if status != "pending" else None)
        .returning(Event.organization_id)
    ).all()
    for org in orgs:
        publish_change(session, organization_id=org, kind="event", obj_id=event_pk, status=status)


def events_by_ids(session: Session, *, organization_id: str, ids: list[str]) -> list[Event]:
    if not ids:
        return []
    return list(session.scalars(scoped(Event, organization_id).where(Event.id.in_(ids))))


def mark_processed_if_dispatched(session: Session, *, event_pk: str) -> None:
    """An event is processed once every run it started has been handed to the engine."""
    from tenancy.models import OutboxItem, WorkflowRun

    waiting = (
        select(OutboxItem.id)
        .join(WorkflowRun, WorkflowRun.id == OutboxItem.run_id)
        .where(WorkflowRun.event_id == event_pk, OutboxItem.status != "done")
        .exists()
    )
    orgs = session.scalars(
        update(Event)
        .where(Event.id == event_pk, Event.status == "pending", ~waiting)
        .values(status="processed", processed_at=now_ms())
        .returning(Event.organization_id)
    ).all()
    for org in orgs:
        publish_change(
            session, organization_id=org, kind="event", obj_id=event_pk, status="processed"
        )


def fail_event(session: Session, *, event: Event, reason: str) -> None:
    """A dead letter: stored, not processed, with the reason; it can be retried or discarded."""
    event.status = "failed"
    event.error = reason
    event.processed_at = None


def restart_event(session: Session, *, event: Event, run_ids: list[str]) -> None:
    """An event started again (retried, replayed): its new runs added, announced."""
    event.run_ids = [*(event.run_ids or []), *run_ids]
    event.error = None
    # Processed again once the new runs are handed to the engine (see the worker).
    event.status = "pending" if run_ids else "processed"
    event.processed_at = None if run_ids else now_ms()
    session.flush()
    announce_event(session, event)


def discard_event(session: Session, *, event: Event) -> None:
    """A dead letter given up on: discarded, announced."""
    event.status = "discarded"
    event.processed_at = now_ms()
    session.flush()
    announce_event(session, event)


def set_event_runs(session: Session, *, event: Event, run_ids: list[str]) -> None:
    """The runs an event started, recorded and announced."""
    event.run_ids = run_ids
    session.flush()
    announce_event(session, event)
