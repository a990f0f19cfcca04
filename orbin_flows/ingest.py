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
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from orbin_flows.trigger_cache import TriggerCandidate, trigger_candidates
from orbin_flows.triggers import event_trigger_matches
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy import workflows as workflows_repo
from tenancy.changes import OUTBOX_CHANNEL, change, publish_many
from tenancy.clock import new_id, now_ms
from tenancy.config import get_settings
from tenancy.db import get_engine, session_scope
from tenancy.errors import Conflict, LimitExceeded, OrbinError
from tenancy.models import Event, Workflow
from tenancy.principal import Principal
from tenancy.usage import reserve_executions

log = logging.getLogger("orbin.ingest")


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
    key_id: str | None = None  # the API key that sent it, when not the principal's own

    def same_as(self, other: NewEvent) -> bool:
        return (self.type, self.source, self.data) == (other.type, other.source, other.data)


Outcome = IngestResult | OrbinError
Done = Callable[[list[Outcome] | BaseException], None]


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
                if ev.key_id or requests[i][0].key_id == requests[members[0]][0].key_id
                else replace(ev, key_id=requests[i][0].key_id)
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
    with session_scope(connection or _single_statement_engine()) as session:
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


class IngestWriter:
    """Group commit: the events of concurrent requests are written in one unit of work.

    A request hands its events over (``submit``) and waits for their outcomes. One thread
    per process takes everything handed over meanwhile (up to ``MAX_EVENTS``) and writes it
    with ``ingest_together``: for events that start no run, one statement (events and their
    changes) per batch; otherwise one transaction. A busy API so pays the round trips, the
    commit and the session once per batch instead of once per request. When quiet, it never
    waits to gather: a request that finds the writer idle is written at once, and those that
    arrive during a write form the next batch. Each outcome is handed back only after its
    commit, so an answer still means the event is stored. A batch is one statement or one
    transaction, so a failed batch left nothing behind: its requests are written again one by
    one, so that a bad one fails alone, unless the database itself failed (unreachable,
    connection lost), which every request of the batch is told at once.

    Under load (the last batch held more than one request) the writer lingers: it waits up to
    ``ORBIN_INGEST_LINGER_MS`` (2 ms) for ``LINGER_REQUESTS`` requests before writing. Bigger
    batches cost less per request, which leaves more of the machine for the requests
    themselves: on the 2-core benchmark machine a 2 ms linger raised single-event
    throughput by about a quarter and lowered the p99 at a fixed rate (a quiet API, where
    each request finds the writer idle, never waits).

    On PostgreSQL the writer keeps one autocommit connection of its own for the single
    statements (no pool checkout, no isolation level switch per batch).
    """

    MAX_EVENTS = 500
    LINGER_REQUESTS = 16

    def __init__(self) -> None:
        self._items: deque[tuple[Principal, list[NewEvent], Done]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self._last_batch = 1

    def submit(self, principal: Principal, events: Sequence[NewEvent]) -> Future[list[Outcome]]:
        """Queue events for the next write; the future holds one outcome per event, in order."""
        future: Future[list[Outcome]] = Future()

        def done(outcome: list[Outcome] | BaseException) -> None:
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        self.submit_then(principal, events, done)
        return future

    def submit_then(self, principal: Principal, events: Sequence[NewEvent], done: Done) -> None:
        """Queue events for the next write; ``done`` is called from the writer's thread with
        their outcomes (one per event, in order) or the exception that stopped them."""
        principal.require("events:write")
        with self._cond:
            self._items.append((principal, list(events), done))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="orbin-ingest-writer", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            linger = get_settings().ingest_linger_ms / 1000
            with self._cond:
                while not self._items:
                    self._cond.wait()
                if linger and self._last_batch > 1:
                    until = time.monotonic() + linger
                    while len(self._items) < self.LINGER_REQUESTS:
                        left = until - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                take = [self._items.popleft()]
                count = len(take[0][1])
                while self._items and count + len(self._items[0][1]) <= self.MAX_EVENTS:
                    item = self._items.popleft()
                    count += len(item[1])
                    take.append(item)
            self._last_batch = len(take)
            self._write(take)

    def _connection(self) -> Connection | None:
        """The writer's own autocommit connection to the current database (PostgreSQL)."""
        engine = get_engine()
        if engine.dialect.name != "postgresql":
            return None
        conn = self._conn
        if conn is not None and (conn.engine is not engine or conn.invalidated or conn.closed):
            conn.close()
            conn = self._conn = None
        if conn is None:
            conn = self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._conn = None

    def _write(self, take: list[tuple[Principal, list[NewEvent], Done]]) -> None:
        try:
            outcomes = ingest_together(
                [(p, evs) for p, evs, _ in take], connection=self._connection()
            )
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            self._drop_connection()
            if isinstance(exc, OperationalError | InterfaceError):  # the database, not a request
                for _, _, done in take:
                    _call(done, exc)
                return
            if len(take) > 1:
                log.info("a batch of %d ingest requests failed; writing them one by one", len(take))
                for item in take:
                    self._write([item])
                return
            _call(take[0][2], exc)
            return
        for (_, _, done), outcome in zip(take, outcomes, strict=True):
            _call(done, outcome)


def _call(done: Done, outcome: list[Outcome] | BaseException) -> None:
    try:
        done(outcome)
    except Exception:  # noqa: BLE001 - a broken callback must not stop the writer
        log.exception("an ingest callback failed")


_writer = IngestWriter()


def ingest_writer() -> IngestWriter:
    """This process's group-commit writer (see ``IngestWriter``)."""
    return _writer


_engines: dict[int, Engine] = {}


def _single_statement_engine() -> Engine:
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return engine  # a local file: BEGIN and COMMIT cost no round trip
    option = _engines.get(id(engine))
    if option is None:
        option = _engines.setdefault(
            id(engine), engine.execution_options(isolation_level="AUTOCOMMIT")
        )
    return option


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
                "api_key_id": f.event.key_id or principal.key_id,
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
        if f.workflows:  # one that starts none was announced by its insert
            notes.append(change(org, "event", f.pk, status="pending", type=f.event.type))
        outcomes[f.index] = IngestResult(f.event_id, f.run_ids, False, f.pk)
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
                outcomes[i] = _replay(owner, ev) if owner else _reused_key(key)
            elif not ev.same_as(events[first]):
                outcomes[i] = _reused_key(key)
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
