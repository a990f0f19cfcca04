"""Ingesting events: store them, start the workflows they trigger, all in one transaction.

Nothing here talks to Prefect: runs go through the outbox, so ingestion keeps answering when
the Prefect server is down or slow, and an acknowledged event is never lost.

Idempotency: an event sent again with an idempotency key already stored gets the original
answer and starts nothing. The same key with a *different* event (type, source or data) is
refused with a Conflict naming the original event: answering 202 would tell the sender a new
event was accepted when it was silently dropped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from orbin_flows.ingest_results import (
    Done,
    IngestResult,
    NewEvent,
    Outcome,
    limit_error,
    reused_key,
    stored_result,
)
from orbin_flows.triggers import event_trigger_matches
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy.actors import Actor
from tenancy.changes import OUTBOX_CHANNEL, change, publish_many
from tenancy.clock import new_id, now_ms
from tenancy.db import Connection, Session, session_scope, single_statement_engine
from tenancy.errors import LimitExceeded, OrbinError
from tenancy.events import Event
from tenancy.principal import Principal
from tenancy.trigger_cache import TriggerCandidate, trigger_candidates
from tenancy.usage import reserve_executions

log = logging.getLogger("orbin.ingest")


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
        """The stored dedupe column: the idempotency key, else the event's own id."""
        return self.event.idempotency_key or self.pk

    def result(self, *, duplicate: bool = False) -> IngestResult:
        return IngestResult(
            self.pk,
            self.run_ids,
            duplicate,
            self.event.type,
            self.event.source,
            self.created_at,
            self.event.idempotency_key,
        )


__all__ = ["Done", "IngestResult", "NewEvent", "Outcome", "ingest", "ingest_together"]


def _replay(stored: Event, event: NewEvent) -> Outcome:
    if events_repo.same_event(
        stored, event_type=event.type, source=event.source, payload=event.data
    ):
        return stored_result(stored, duplicate=True)
    return reused_key(stored.id, events_repo.idempotency_key(stored) or "")


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


def ingest(principal: Principal, events: Sequence[NewEvent]) -> list[Outcome]:
    """Ingest events in a unit of work of their own; one outcome per event, in order."""
    return ingest_together([(principal, events)])[0]


Request = tuple[Principal, Sequence[NewEvent]]


def ingest_together(
    requests: Sequence[Request], *, connection: Connection | None = None
) -> list[list[Outcome]]:
    """Several requests' events in one unit of work; their outcomes, request by request.

    The events of one organization are ingested together (each keeps the key that sent it),
    as if sent in one batch: a repeated idempotency key is answered like the first.

    Events of one organization that start no run (the common case) are one statement: on
    PostgreSQL it runs on its own, without BEGIN and COMMIT round trips (it is atomic, and
    the reads around it see committed rows), on ``connection`` when given (an autocommit
    connection the caller keeps). Otherwise everything is one transaction, runs included.
    """
    by_org: dict[str, list[int]] = defaultdict(list)
    for i, (principal, _) in enumerate(requests):
        principal.require("events:write")
        by_org[principal.organization_id].append(i)
    groups = [
        (
            requests[members[0]][0],
            members,
            [
                ev
                if ev.key_id or ev.user_id or _same_actor(requests[i][0], requests[members[0]][0])
                else replace(ev, key_id=requests[i][0].key_id, user_id=requests[i][0].user_id)
                for i in members
                for ev in requests[i][1]
            ],
        )
        for members in by_org.values()
    ]
    out: list[list[Outcome]] = [[] for _ in requests]

    def answer(members: list[int], outcomes: list[Outcome]) -> None:
        it = iter(outcomes)
        for i in members:
            out[i] = [next(it) for _ in requests[i][1]]

    candidates: dict[str, dict[str, list[TriggerCandidate]]] = {}
    with session_scope(connection or single_statement_engine()) as session:
        for principal, _, events in groups:
            org = principal.organization_id
            candidates[org] = trigger_candidates(session, org, {e.type for e in events})
        if len(groups) == 1:
            principal, members, events = groups[0]
            found = candidates[principal.organization_id]
            if not any(_matches(e, found) for e in events):
                answer(members, ingest_events(session, principal, events, candidates=found))
                return out
    with session_scope() as session:
        for principal, members, events in groups:
            org = principal.organization_id
            answer(members, ingest_events(session, principal, events, candidates=candidates[org]))
    return out


def _same_actor(a: Principal, b: Principal) -> bool:
    return a.key_id == b.key_id and a.user_id == b.user_id


def _actor(event: NewEvent, principal: Principal) -> Actor:
    """Who sent an event: its own sender when the batch holds others' events too."""
    if event.key_id or event.user_id:
        return Actor(user_id=event.user_id) if event.user_id else Actor(key_id=event.key_id)
    return Actor.of(principal)


def _matches(event: NewEvent, candidates: dict[str, list[TriggerCandidate]]) -> bool:
    doc = {"type": event.type, "source": event.source, "data": event.data}
    return any(event_trigger_matches(c.trigger, doc) for c in candidates.get(event.type, ()))


def ingest_events(
    session: Session,
    principal: Principal,
    events: Sequence[NewEvent],
    *,
    candidates: dict[str, list[TriggerCandidate]] | None = None,
) -> list[Outcome]:
    """Ingest events in the caller's transaction; one outcome per event, in order.

    Each event stands alone: a reused idempotency key (Conflict) or a run refused by the
    monthly limit (LimitExceeded) concerns that event only. Rows are written in bulk: one
    INSERT for the events, two for their runs and outbox items; changes are announced after
    the commit. A single event is inserted first and read back only if its key was taken.
    """
    principal.require("events:write")
    org = principal.organization_id
    outcomes: list[Outcome | None] = [None] * len(events)
    keys = sorted({e.idempotency_key for e in events if e.idempotency_key})
    stored = (
        events_repo.read_events_by_keys(session, organization_id=org, event_ids=keys)
        if len(events) > 1
        else {}
    )
    if candidates is None:
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
                "api_key_id": _actor(f.event, principal).key_id,
                "created_at": f.created_at,
            }
            for f in fresh
        ],
    )
    lost = [f for f in fresh if f.pk not in inserted]
    taken: dict[str, Event | None] = {}  # keys a concurrent request stored first, by key
    if lost:  # answer as that request did
        winners = events_repo.read_events_by_keys(
            session, organization_id=org, event_ids=[f.event_id for f in lost]
        )
        for f in lost:
            winner = taken[f.event_id] = winners.get(f.event_id)
            outcomes[f.index] = _replay(winner, f.event) if winner else reused_key(None, f.event_id)
    fresh = [f for f in fresh if f.pk in inserted]

    refused = _reserve(session, org, fresh)
    if refused:
        # Kept as dead letters, with the reason, to be retried once the limit allows.
        for f in fresh:
            if f.index in refused:
                error = limit_error(f.pk)
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
            "eventId": f.pk,
            "idempotencyKey": f.event.idempotency_key,
        }
        actor = _actor(f.event, principal)
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
                    "trace_parent": f.event.traceparent,
                    "created_by": actor.user_id,
                    "created_by_key_id": actor.key_id,
                }
            )
            notes.append(change(org, "run", run_id, status="pending", workflowId=wf.id))
        if f.workflows:  # one that starts none was announced by its insert
            notes.append(change(org, "event", f.pk, status="pending", type=f.event.type))
        outcomes[f.index] = f.result()
    runs_repo.insert_runs(session, rows=runs)
    if runs:
        notes.append((OUTBOX_CHANNEL, {"runs": len(runs)}))
    publish_many(session, notes)

    for i, ev in enumerate(events):
        if outcomes[i] is None:  # a repeated key within the batch
            key = ev.idempotency_key or ""
            first = first_of_key[key]
            earlier = outcomes[first]
            if key in taken:  # the key's owner is another request's event
                owner = taken[key]
                outcomes[i] = _replay(owner, ev) if owner else reused_key(None, key)
            elif not ev.same_as(events[first]):
                first_pk = (
                    earlier.event_pk
                    if isinstance(earlier, IngestResult)
                    else (earlier.details or [{}])[0].get("id")  # a dead letter
                    if isinstance(earlier, LimitExceeded)
                    else None
                )
                outcomes[i] = reused_key(first_pk, key)
            elif isinstance(earlier, IngestResult):
                outcomes[i] = replace(earlier, duplicate=True)
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
        event_pk = (outcome.details or [{}])[0].get("id", "")
        return IngestResult(event_pk, [], False, event_type, source, 0, idempotency_key, outcome)
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
