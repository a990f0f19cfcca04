"""Stored events again: replay (start the matching workflows anew), and the dead letters
(events whose processing failed) retried or discarded. Every action is audited.

A webhook event is addressed to one workflow (``events.workflow_id``): replaying it starts that
workflow again, if it is active. Any other event starts every active workflow whose event
trigger matches it now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orbin_flows.event_runs import event_trigger_data, matching_workflows, start_runs
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy import workflows as workflows_repo
from tenancy.actors import Actor
from tenancy.audit import record_audit
from tenancy.clock import now_ms
from tenancy.db import Session
from tenancy.errors import Conflict, InvalidInput, NotFound
from tenancy.events import Event
from tenancy.principal import Principal
from tenancy.workflows import Workflow

MAX_REPLAY = 100


@dataclass(frozen=True)
class Replayed:
    event: Event
    run_ids: list[str]  # the runs this replay started


def _targets(session: Session, event: Event) -> list[Workflow]:
    if event.workflow_id is None:
        return matching_workflows(session, event=event)
    try:
        wf = workflows_repo.read_workflow(
            session, organization_id=event.organization_id, workflow_id=event.workflow_id
        )
    except NotFound:
        raise Conflict("the workflow this webhook event was sent to no longer exists") from None
    if wf.status != "active" or wf.trigger_type != "webhook":
        raise Conflict(
            f"workflow {wf.slug!r} is {wf.status}"
            + ("" if wf.trigger_type == "webhook" else " and no longer has a webhook trigger")
            + "; activate it, then try again"
        )
    return [wf]


def _restart(
    session: Session, principal: Principal, event: Event, workflows: list[Workflow], action: str
) -> Replayed:
    trigger_type = "webhook" if event.workflow_id else "event"
    actor = Actor.of(principal)
    how = {"action": action, "at": now_ms(), "by": actor.ref()}
    run_ids = start_runs(
        session,
        event=event,
        workflows=workflows,
        trigger_type=trigger_type,
        trigger_data=event_trigger_data(event, replay=how),
        actor=actor,
    )
    events_repo.restart_event(session, event=event, run_ids=run_ids)
    record_audit(
        session,
        principal,
        f"event.{action}",
        "event",
        event.id,
        {"runIds": run_ids, "eventType": event.event_type},
    )
    return Replayed(event, run_ids)


def _require_replay(principal: Principal) -> None:
    principal.require("events:read")
    principal.require("runs:write")


def replay_event(session: Session, principal: Principal, event_id: str) -> Replayed:
    """Start the matching workflows again for a stored event: new runs, linked to it."""
    _require_replay(principal)
    event = events_repo.read_event(
        session, organization_id=principal.organization_id, event_id=event_id
    )
    return _restart(session, principal, event, _targets(session, event), "replayed")


def replay_events(
    session: Session,
    principal: Principal,
    *,
    ids: list[str] | None = None,
    filters: dict[str, Any] | None = None,
    limit: int = MAX_REPLAY,
) -> list[Replayed]:
    """Replay many events, oldest first: by ids (all must exist) or by the list's filters.

    All or nothing: if the month's executions cannot cover every run, nothing starts.
    """
    _require_replay(principal)
    org = principal.organization_id
    if ids is not None and filters:
        raise InvalidInput("give either ids or a filter, not both")
    if ids is not None:
        if not ids or len(ids) > MAX_REPLAY:
            raise InvalidInput(f"give 1 to {MAX_REPLAY} event ids", details=[{"field": "ids"}])
        found = {e.id: e for e in events_repo.events_by_ids(session, organization_id=org, ids=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"event {missing[0]} not found")
        events = [found[i] for i in dict.fromkeys(ids)]
    else:
        if not filters:
            raise InvalidInput("give ids, or a filter (type, source, status, since, until)")
        events = events_repo.read_events(
            session, organization_id=org, limit=max(1, min(limit, MAX_REPLAY)), **filters
        )
    events.sort(key=lambda e: e.id)
    return [_restart(session, principal, e, _targets(session, e), "replayed") for e in events]


def _failed_event(session: Session, principal: Principal, event_id: str) -> Event:
    event = events_repo.read_event(
        session, organization_id=principal.organization_id, event_id=event_id
    )
    if event.status != "failed":
        raise Conflict(
            f"event {event.id} is {event.status}, not failed; only dead letters can be "
            "retried or discarded (replay starts any stored event again)"
        )
    return event


def retry_dead_letter(session: Session, principal: Principal, event_id: str) -> Replayed:
    """Start the runs that did not start: a workflow that already ran for it is skipped."""
    _require_replay(principal)
    event = _failed_event(session, principal, event_id)
    started = {
        r.workflow_id
        for r in runs_repo.read_runs_for_event(
            session, organization_id=event.organization_id, event_pk=event.id
        )
        if not (r.status == "failed" and r.started_at is None)  # failed before it began
    }
    todo = [wf for wf in _targets(session, event) if wf.id not in started]
    return _restart(session, principal, event, todo, "retried")


def discard_dead_letter(session: Session, principal: Principal, event_id: str) -> Event:
    principal.require("events:read")
    principal.require("events:write")
    event = _failed_event(session, principal, event_id)
    events_repo.discard_event(session, event=event)
    record_audit(session, principal, "event.discarded", "event", event.id, {"reason": event.error})
    return event
