"""Ingesting an event: store it, start the workflows it triggers, all in one transaction.

Nothing here talks to Prefect: runs go through the outbox, so ingestion keeps answering when
the Prefect server is down or slow, and an acknowledged event is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from orbin_flows.triggers import event_trigger_matches
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy import workflows as workflows_repo
from tenancy.changes import publish_change
from tenancy.db import session_scope
from tenancy.models import Event
from tenancy.principal import Principal
from tenancy.usage import reserve_executions


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    run_ids: list[str]
    duplicate: bool
    event_pk: str

    def answer(self) -> dict[str, Any]:
        return {"received": True, "eventId": self.event_id, "runIds": self.run_ids}


def start_event_runs(session: Session, *, event: Event) -> list[str]:
    """Start every active workflow whose event trigger matches (used by ingest and replay)."""
    doc = {"type": event.event_type, "source": event.source, "data": event.payload}
    candidates = workflows_repo.read_event_trigger_candidates(
        session, organization_id=event.organization_id, event_type=event.event_type
    )
    matched = [wf for wf in candidates if event_trigger_matches(wf.trigger, doc)]
    matched.sort(key=lambda wf: wf.id)
    if not matched:
        return []
    reserve_executions(session, organization_id=event.organization_id, count=len(matched))
    trigger_data = {
        "type": event.event_type,
        "source": event.source,
        "data": event.payload,
        "eventId": event.event_id,
    }
    run_ids = []
    for wf in matched:
        run = runs_repo.create_run(
            session,
            organization_id=event.organization_id,
            workflow=wf,
            trigger_type="event",
            trigger_data=trigger_data,
            event_pk=event.id,
        )
        run_ids.append(run.id)
    return run_ids


def ingest_event(
    session: Session,
    principal: Principal,
    *,
    event_type: str,
    source: str,
    data: Any,
    idempotency_key: str | None,
) -> IngestResult:
    principal.require("events:write")
    event, created = events_repo.insert_event(
        session,
        organization_id=principal.organization_id,
        event_type=event_type,
        source=source,
        payload=data,
        event_id=idempotency_key,
        api_key_id=principal.key_id,
    )
    if not created:
        return IngestResult(event.event_id, list(event.run_ids or []), True, event.id)
    run_ids = start_event_runs(session, event=event)
    event.run_ids = run_ids
    if not run_ids:
        event.status = "processed"
        event.processed_at = event.created_at
    session.flush()
    publish_change(
        session,
        organization_id=event.organization_id,
        kind="event",
        obj_id=event.id,
        status=event.status,
        type=event.event_type,
    )
    return IngestResult(event.event_id, run_ids, False, event.id)


def ingest_as_system(
    *, organization_id: str, event_type: str, source: str, data: Any, idempotency_key: str | None
) -> IngestResult:
    """Ingest from inside the platform (an ``emit`` step), in a transaction of its own."""
    from tenancy.orgs import read_organization
    from tenancy.principal import system_principal

    with session_scope() as session:
        org = read_organization(session, organization_id)
        principal = system_principal(org.id, org.slug, org.plan)
        return ingest_event(
            session,
            principal,
            event_type=event_type,
            source=source,
            data=data,
            idempotency_key=idempotency_key,
        )
