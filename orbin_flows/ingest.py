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
from tenancy.errors import LimitExceeded, OrbinError
from tenancy.models import Event, Workflow
from tenancy.principal import Principal
from tenancy.usage import reserve_executions


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    run_ids: list[str]
    duplicate: bool
    event_pk: str
    # Stored, but its runs could not start (the monthly limit): the caller answers with it.
    failure: OrbinError | None = None

    def answer(self) -> dict[str, Any]:
        return {"received": True, "eventId": self.event_id, "runIds": self.run_ids}

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


def event_trigger_data(event: Event, **extra: Any) -> dict[str, Any]:
    return {
        "type": event.event_type,
        "source": event.source,
        "data": event.payload,
        "eventId": event.event_id,
        **extra,
    }


def matching_workflows(session: Session, *, event: Event) -> list[Workflow]:
    """Active workflows whose event trigger matches, in a stable order."""
    doc = {"type": event.event_type, "source": event.source, "data": event.payload}
    candidates = workflows_repo.read_event_trigger_candidates(
        session, organization_id=event.organization_id, event_type=event.event_type
    )
    matched = [wf for wf in candidates if event_trigger_matches(wf.trigger, doc)]
    return sorted(matched, key=lambda wf: wf.id)


def start_runs(
    session: Session,
    *,
    event: Event,
    workflows: list[Workflow],
    trigger_type: str,
    trigger_data: dict[str, Any],
) -> list[str]:
    """One run per workflow, linked to the event, counted against the month (all or none)."""
    if not workflows:
        return []
    reserve_executions(session, organization_id=event.organization_id, count=len(workflows))
    return [
        runs_repo.create_run(
            session,
            organization_id=event.organization_id,
            workflow=wf,
            trigger_type=trigger_type,
            trigger_data=trigger_data,
            event_pk=event.id,
        ).id
        for wf in workflows
    ]


def start_event_runs(session: Session, *, event: Event) -> list[str]:
    """Start every active workflow whose event trigger matches (used by ingest and replay)."""
    return start_runs(
        session,
        event=event,
        workflows=matching_workflows(session, event=event),
        trigger_type="event",
        trigger_data=event_trigger_data(event),
    )


def fail_event(session: Session, *, event: Event, reason: str) -> None:
    """A dead letter: stored, not processed, with the reason; it can be retried or discarded."""
    event.status = "failed"
    event.error = reason
    event.processed_at = None


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
    failure: OrbinError | None = None
    try:
        run_ids = start_event_runs(session, event=event)
    except LimitExceeded as exc:  # kept as a dead letter, to retry once the limit allows
        run_ids, failure = [], exc
        fail_event(session, event=event, reason=exc.message)
    event.run_ids = run_ids
    if not run_ids and failure is None:
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
    return IngestResult(event.event_id, run_ids, False, event.id, failure)


def ingest_as_system(
    *, organization_id: str, event_type: str, source: str, data: Any, idempotency_key: str | None
) -> IngestResult:
    """Ingest from inside the platform (an ``emit`` step), in a transaction of its own."""
    from tenancy.orgs import read_organization
    from tenancy.principal import system_principal

    with session_scope() as session:
        org = read_organization(session, organization_id)
        principal = system_principal(org.id, org.slug, org.plan)
        result = ingest_event(
            session,
            principal,
            event_type=event_type,
            source=source,
            data=data,
            idempotency_key=idempotency_key,
        )
    result.raise_failure()
    return result
