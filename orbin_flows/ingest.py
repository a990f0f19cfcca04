"""Ingesting events: store them, start the workflows they trigger, all in one transaction.

Nothing here talks to Prefect: runs go through the outbox, so ingestion keeps answering when
the Prefect server is down or slow, and an acknowledged event is never lost.

Idempotency: an event sent again with an idempotency key already stored gets the original
answer and starts nothing. The same key with a *different* event (type, source or data) is
refused with a Conflict naming the original event: answering 202 would tell the sender a new
event was accepted when it was silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from orbin_flows.trigger_cache import TriggerCandidate, trigger_candidates
from orbin_flows.triggers import event_trigger_matches
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy import workflows as workflows_repo
from tenancy.changes import OUTBOX_CHANNEL, change, publish_many
from tenancy.clock import new_id, now_ms
from tenancy.db import session_scope
from tenancy.errors import Conflict, LimitExceeded, OrbinError
from tenancy.models import Event, Workflow
from tenancy.principal import Principal
from tenancy.usage import reserve_executions


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    run_ids: list[str]
    duplicate: bool
    event_pk: str
    failure: OrbinError | None = None  # stored, but as a dead letter (e.g. the monthly limit)

    def answer(self) -> dict[str, Any]:
        return {"received": True, "eventId": self.event_id, "runIds": self.run_ids}

    def raise_failure(self) -> None:
        """Raise the failure once the transaction that stored the dead letter committed."""
        if self.failure is not None:
            raise self.failure


@dataclass(frozen=True)
class NewEvent:
    type: str
    source: str
    data: Any
    idempotency_key: str | None = None

    def same_as(self, other: NewEvent) -> bool:
        return (self.type, self.source, self.data) == (other.type, other.source, other.data)


Outcome = IngestResult | OrbinError


@dataclass
class _Fresh:
    """An event not seen before, with the runs it will start."""

    index: int
    event: NewEvent
    pk: str
    created_at: int
    workflows: list[TriggerCandidate]
    run_ids: list[str] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        return self.event.idempotency_key or self.pk


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


def _replay(stored: Event, event: NewEvent) -> Outcome:
    if events_repo.same_event(
        stored, event_type=event.type, source=event.source, payload=event.data
    ):
        return IngestResult(stored.event_id, list(stored.run_ids or []), True, stored.id)
    return _reused_key(stored.event_id)


def _reused_key(event_id: str) -> Conflict:
    return Conflict(
        f"this idempotency key was already used for a different event ({event_id}); "
        "send a new event with a new key",
        details=[{"field": "idempotencyKey", "eventId": event_id}],
    )


def _reserve(session: Session, organization_id: str, fresh: list[_Fresh]) -> set[int]:
    """Count the runs against the monthly limit; returns the indexes of refused events.

    One UPDATE for the whole batch; only when that would pass the limit, event by event in
    order, so the events that fit still start their runs.
    """
    wanted = [f for f in fresh if f.workflows]
    total = sum(len(f.workflows) for f in wanted)
    if not total:
        return set()
    try:
        reserve_executions(session, organization_id=organization_id, count=total)
        return set()
    except LimitExceeded:
        if len(wanted) == 1:
            return {wanted[0].index}
    refused = set()
    for f in wanted:
        try:
            reserve_executions(session, organization_id=organization_id, count=len(f.workflows))
        except LimitExceeded:
            refused.add(f.index)
    return refused


def _limit_error(event_id: str) -> LimitExceeded:
    return LimitExceeded(
        "the monthly execution limit of this organization's plan is reached; the event was "
        f"stored as a dead letter ({event_id}) and can be retried once the limit allows "
        "(upgrade the plan or wait for the next period)",
        details=[{"eventId": event_id}],
    )


def ingest_events(
    session: Session, principal: Principal, events: Sequence[NewEvent]
) -> list[Outcome]:
    """Ingest events in the caller's transaction; one outcome per event, in order.

    Each event stands alone: a reused idempotency key (Conflict) or a run refused by the
    monthly limit (LimitExceeded) concerns that event only. Rows are written in bulk: one
    INSERT for the events, two for their runs and outbox items, one NOTIFY statement.
    """
    principal.require("events:write")
    org = principal.organization_id
    outcomes: list[Outcome | None] = [None] * len(events)
    keys = sorted({e.idempotency_key for e in events if e.idempotency_key})
    stored = events_repo.read_events_by_keys(session, organization_id=org, event_ids=keys)
    candidates = trigger_candidates(session, org, {e.type for e in events})

    first_of_key: dict[str, int] = {}
    fresh: list[_Fresh] = []
    for i, ev in enumerate(events):
        key = ev.idempotency_key
        if key and key in stored:
            outcomes[i] = _replay(stored[key], ev)
        elif key and key in first_of_key:
            continue  # answered like the first event with this key, below
        else:
            if key:
                first_of_key[key] = i
            doc = {"type": ev.type, "source": ev.source, "data": ev.data}
            matched = [
                c for c in candidates.get(ev.type, ()) if event_trigger_matches(c.trigger, doc)
            ]
            fresh.append(_Fresh(i, ev, new_id(), now_ms(), matched))

    for f in fresh:
        f.run_ids = [new_id() for _ in f.workflows]
    inserted = events_repo.insert_events(
        session,
        rows=[
            {
                "id": f.pk,
                "organization_id": org,
                "event_type": f.event.type,
                "event_id": f.event_id,
                "source": f.event.source,
                "payload": f.event.data,
                "status": "pending" if f.workflows else "processed",
                "processed_at": None if f.workflows else f.created_at,
                "run_ids": f.run_ids,
                "api_key_id": principal.key_id,
                "created_at": f.created_at,
            }
            for f in fresh
        ],
    )
    lost = [f for f in fresh if f.pk not in inserted]
    if lost:  # a concurrent request stored the same key first: answer as it did
        winners = events_repo.read_events_by_keys(
            session, organization_id=org, event_ids=[f.event_id for f in lost]
        )
        for f in lost:
            winner = winners.get(f.event_id)
            outcomes[f.index] = _replay(winner, f.event) if winner else _reused_key(f.event_id)
    fresh = [f for f in fresh if f.pk in inserted]

    refused = _reserve(session, org, fresh)
    if refused:
        # Kept as dead letters, with the reason, to be retried once the limit allows.
        for f in fresh:
            if f.index in refused:
                error = _limit_error(f.event_id)
                events_repo.mark_event(session, event_pk=f.pk, status="failed", error=error.message)
                events_repo.clear_run_ids(session, event_pk=f.pk)
                outcomes[f.index] = error
        fresh = [f for f in fresh if f.index not in refused]

    runs: list[dict[str, Any]] = []
    notes = []
    for f in fresh:
        trigger_data = {
            "type": f.event.type,
            "source": f.event.source,
            "data": f.event.data,
            "eventId": f.event_id,
        }
        for run_id, wf in zip(f.run_ids, f.workflows, strict=True):
            runs.append(
                {
                    "id": run_id,
                    "organization_id": org,
                    "workflow_id": wf.id,
                    "workflow_version": wf.version,
                    "trigger_type": "event",
                    "trigger_data": trigger_data,
                    "event_id": f.pk,
                    "created_at": f.created_at,
                }
            )
            notes.append(change(org, "run", run_id, status="pending", workflowId=wf.id))
        status = "pending" if f.workflows else "processed"
        notes.append(change(org, "event", f.pk, status=status, type=f.event.type))
        outcomes[f.index] = IngestResult(f.event_id, f.run_ids, False, f.pk)
    runs_repo.insert_runs(session, rows=runs)
    if runs:
        notes.append((OUTBOX_CHANNEL, {"runs": len(runs)}))
    publish_many(session, notes)

    for i, ev in enumerate(events):
        if outcomes[i] is None:  # a repeated key within the batch
            first = first_of_key[ev.idempotency_key or ""]
            earlier = outcomes[first]
            if not ev.same_as(events[first]):
                event_id = earlier.event_id if isinstance(earlier, IngestResult) else ""
                outcomes[i] = _reused_key(event_id)
            elif isinstance(earlier, IngestResult):
                outcomes[i] = IngestResult(
                    earlier.event_id, earlier.run_ids, True, earlier.event_pk
                )
            else:
                outcomes[i] = earlier
    return [o for o in outcomes if o is not None]


def ingest_event(
    session: Session,
    principal: Principal,
    *,
    event_type: str,
    source: str,
    data: Any,
    idempotency_key: str | None,
) -> IngestResult:
    """One event; a reused key raises Conflict, the monthly limit LimitExceeded."""
    (outcome,) = ingest_events(
        session, principal, [NewEvent(event_type, source, data, idempotency_key)]
    )
    if isinstance(outcome, LimitExceeded):  # stored as a dead letter: commit, then raise
        event_id = (outcome.details or [{}])[0].get("eventId", "")
        return IngestResult(event_id, [], False, "", failure=outcome)
    if isinstance(outcome, OrbinError):
        raise outcome
    return outcome


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
