"""The runs a stored event starts: replays, retried dead letters and webhook deliveries.

(Ingestion itself writes its runs in bulk: see ``orbin_flows.ingest``.)
"""

from __future__ import annotations

from typing import Any

from orbin_flows.triggers import event_trigger_matches
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy import workflows as workflows_repo
from tenancy.actors import NOBODY, Actor
from tenancy.db import Session
from tenancy.events import Event
from tenancy.usage import reserve_executions
from tenancy.workflows import Workflow


def event_trigger_data(event: Event, **extra: Any) -> dict[str, Any]:
    return {
        "type": event.event_type,
        "source": event.source,
        "data": event.payload,
        "eventId": event.id,
        "idempotencyKey": events_repo.idempotency_key(event),
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
    actor: Actor = NOBODY,
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
            actor=actor,
        ).id
        for wf in workflows
    ]


def fail_event(session: Session, *, event: Event, reason: str) -> None:
    """A dead letter: stored, not processed, with the reason; it can be retried or discarded."""
    events_repo.fail_event(session, event=event, reason=reason)
