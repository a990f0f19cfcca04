"""Group commit: concurrent ingest requests written together, each answered as if alone.

The writer is driven directly here (its HTTP use is covered by every ingestion test, and its
races by tests/integration/test_ingest_concurrency.py), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from orbin_flows import ingest as ingest_mod
from orbin_flows.ingest import IngestResult, NewEvent, ingest_together
from orbin_flows.ingest_writer import IngestWriter
from tenancy.errors import Conflict, PermissionDenied
from tenancy.principal import Principal
from tests.unit.ingest_support import active_workflow, stored_events, stored_runs


def _principal(key: str) -> Principal:
    from tenancy.db import session_scope
    from tenancy.keys import authenticate_api_key

    with session_scope() as session:
        return authenticate_api_key(session, key)


def _second_key(org_id: str) -> str:
    from tenancy.db import session_scope
    from tenancy.keys import create_api_key

    with session_scope() as session:
        return create_api_key(
            session, organization_id=org_id, name="second", type="secret"
        ).plaintext


class _Gate:
    """Wraps ingest_together: records each batch, holds the first until released, and fails
    any batch that holds an event of type ``poison``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.real = ingest_together

    def __call__(self, requests: Any, connection: Any = None) -> Any:
        self.batches.append([evs[0].type for _, evs in requests])
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(30)
        if any(ev.type == "poison" for _, evs in requests for ev in evs):
            raise RuntimeError("the database refused the batch")
        if any(ev.type == "db-down" for _, evs in requests for ev in evs):
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        return self.real(requests, connection=connection)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> _Gate:
    g = _Gate()
    monkeypatch.setattr(ingest_mod, "ingest_together", g)
    return g


def _wait(futures: list[Future]) -> list[Any]:
    out = []
    for f in futures:
        exc = f.exception(timeout=30)
        out.append(exc if exc is not None else f.result())
    return out


def test_requests_queued_meanwhile_are_written_in_one_batch(make_org, gate: _Gate) -> None:
    """While a write is under way, the requests that arrive are gathered into the next one;
    each is answered with its own event, in its own organization, under the key it used."""
    a, b = make_org("alpha"), make_org("beta")
    a2 = _second_key(a.id)
    pa, pa2, pb = _principal(a.key), _principal(a2), _principal(b.key)
    writer = IngestWriter()
    first = writer.submit(pa, [NewEvent("first", "api", {"n": 0})])
    assert gate.entered.wait(30)
    queued = [
        writer.submit(p, [NewEvent(f"e{i}", "api", {"n": i})])
        for i, p in enumerate([pa, pb, pa2, pb, pa], start=1)
    ]
    gate.release.set()
    answers = _wait([first, *queued])

    assert gate.batches == [["first"], ["e1", "e2", "e3", "e4", "e5"]]
    assert all(isinstance(o, IngestResult) and not o.duplicate for (o,) in answers)
    a_events = {e.event_type: e for e in stored_events(a.id)}
    b_events = {e.event_type: e for e in stored_events(b.id)}
    assert sorted(a_events) == ["e1", "e3", "e5", "first"]
    assert sorted(b_events) == ["e2", "e4"]
    assert a_events["e3"].api_key_id == pa2.key_id != pa.key_id == a_events["e1"].api_key_id
    assert b_events["e2"].api_key_id == pb.key_id
    for (o,), typ in zip(answers[1:], ["e1", "e2", "e3", "e4", "e5"], strict=True):
        assert o.event_pk == {**a_events, **b_events}[typ].id


def test_a_failing_request_fails_alone(make_org, gate: _Gate) -> None:
    """A batch that fails is written again request by request: the others are stored and
    answered, only the bad one gets the error."""
    org = make_org("mixed")
    p = _principal(org.key)
    writer = IngestWriter()
    first = writer.submit(p, [NewEvent("first", "api", {})])
    assert gate.entered.wait(30)
    ok1 = writer.submit(p, [NewEvent("ok1", "api", {})])
    bad = writer.submit(p, [NewEvent("poison", "api", {})])
    ok2 = writer.submit(p, [NewEvent("ok2", "api", {})])
    gate.release.set()
    r_first, r_ok1, r_bad, r_ok2 = _wait([first, ok1, bad, ok2])

    assert gate.batches == [["first"], ["ok1", "poison", "ok2"], ["ok1"], ["poison"], ["ok2"]]
    assert isinstance(r_bad, RuntimeError)
    assert all(isinstance(r[0], IngestResult) for r in (r_first, r_ok1, r_ok2))
    assert sorted(e.event_type for e in stored_events(org.id)) == ["first", "ok1", "ok2"]


@pytest.mark.parametrize("linger_ms", [0, 100])
def test_under_load_the_writer_lingers_for_more_requests(
    make_org, monkeypatch: pytest.MonkeyPatch, linger_ms: int
) -> None:
    """Once batches hold several requests (load), the writer waits up to the linger time for
    more before writing; without a linger it writes what it has at once."""
    import time

    from tenancy import config

    monkeypatch.setenv("ORBIN_INGEST_LINGER_MS", str(linger_ms))
    config.reset_settings()
    batches: list[int] = []

    def record(requests: Any, connection: Any = None) -> Any:
        batches.append(len(requests))
        return ingest_together(requests, connection=connection)

    monkeypatch.setattr(ingest_mod, "ingest_together", record)
    org = make_org("lingering")
    p = _principal(org.key)
    writer = IngestWriter()
    writer._last_batch = 2  # the last batch held more than one request: under load
    futures = [writer.submit(p, [NewEvent("first", "api", {})])]
    time.sleep(0.03)
    futures += [writer.submit(p, [NewEvent(f"late{i}", "api", {})]) for i in range(2)]
    assert all(isinstance(o, IngestResult) for (o,) in _wait(futures))
    if linger_ms:
        assert batches == [3]
    else:  # the first written alone, at once
        assert batches[0] == 1 and sum(batches) == 3
    assert len(stored_events(org.id)) == 3


def test_when_the_database_fails_the_whole_batch_is_told_at_once(make_org, gate: _Gate) -> None:
    """An unreachable database is no request's fault: the batch is not retried one by one
    (each would wait on the database again); every request gets the error (a 503)."""
    org = make_org("down")
    p = _principal(org.key)
    writer = IngestWriter()
    first = writer.submit(p, [NewEvent("first", "api", {})])
    assert gate.entered.wait(30)
    queued = [writer.submit(p, [NewEvent(t, "api", {})]) for t in ("a", "db-down", "b")]
    gate.release.set()
    _, *answers = _wait([first, *queued])
    assert gate.batches == [["first"], ["a", "db-down", "b"]]
    assert all(isinstance(a, OperationalError) for a in answers)


def test_the_writer_refuses_a_key_that_may_not_ingest(make_org) -> None:
    org = make_org("readonly", key_type="restricted", permissions=["events:read"])
    with pytest.raises(PermissionDenied):
        IngestWriter().submit(_principal(org.key), [NewEvent("x", "api", {})])


def test_requests_written_together_are_answered_as_if_sent_alone(make_org) -> None:
    """Idempotency keys belong to an organization: within one batch, a repeated key with the
    same event is a duplicate, with another event a conflict naming the key; another
    organization's same key is its own event. Runs start as they would one by one."""
    a, b = make_org("one", plan="pro"), make_org("two", plan="pro")
    active_workflow(a.id, "order.*", slug="audit")
    pa, pb = _principal(a.key), _principal(b.key)
    paid = NewEvent("order.paid", "api", {"n": 1}, "k-1")
    out = ingest_together(
        [
            (pa, [paid]),
            (pb, [paid]),
            (pa, [NewEvent("order.paid", "api", {"n": 1}, "k-1")]),
            (pa, [NewEvent("order.paid", "api", {"n": 2}, "k-1")]),
            (pa, [NewEvent("note", "api", {}), NewEvent("order.new", "api", {})]),
        ]
    )
    (first,), (other_org,), (again,), (changed,), (note, new) = out
    assert isinstance(first, IngestResult) and len(first.run_ids) == 1 and not first.duplicate
    assert isinstance(other_org, IngestResult) and other_org.run_ids == []
    assert other_org.event_pk != first.event_pk
    assert isinstance(again, IngestResult) and again.duplicate
    assert (again.event_pk, again.run_ids) == (first.event_pk, first.run_ids)
    assert isinstance(changed, Conflict) and changed.details == [
        {
            "field": "idempotencyKey",
            "id": first.event_pk,
            "eventId": first.event_pk,
            "idempotencyKey": "k-1",
        }
    ]
    assert isinstance(note, IngestResult) and note.run_ids == []
    assert isinstance(new, IngestResult) and len(new.run_ids) == 1
    assert sorted(e.event_type for e in stored_events(a.id)) == ["note", "order.new", "order.paid"]
    assert [e.event_id for e in stored_events(b.id)] == ["k-1"]
    assert sorted(r.id for r in stored_runs(a.id)) == sorted(first.run_ids + new.run_ids)
    assert stored_runs(b.id) == []


def test_each_announced_change_carries_the_number_it_was_recorded_under(
    make_org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes are numbered by the change log as they are written (by the insert itself for
    events that start no run); a live client resumes after the last number it saw, so every
    announcement must carry its own row's number."""
    from tenancy import changes
    from tenancy.db import session_scope
    from tenancy.models import ChangeRecord

    announced: list[dict[str, Any]] = []
    monkeypatch.setattr(
        changes,
        "_notify_after_commit",
        lambda bind, items: announced.extend(p for c, p in items if c == changes.CHANGES_CHANNEL),
    )
    unsubscribe = changes.local_bus.subscribe(
        lambda c, p: announced.append(p) if c == changes.CHANGES_CHANNEL else None
    )
    try:
        org = make_org("numbered", plan="pro")
        active_workflow(org.id, "job.*", slug="jobs")
        p = _principal(org.key)
        events = [NewEvent("job.run" if i % 3 == 0 else "tick", "api", {"i": i}) for i in range(40)]
        ingest_together([(p, events[:25]), (p, events[25:])])
        ingest_together([(p, [NewEvent("tick", "api", {"i": 99})])])
    finally:
        unsubscribe()

    with session_scope() as session:
        rows = {r.id: r.payload for r in session.scalars(select(ChangeRecord))}
    assert len(announced) == len(rows) == 41 + 14  # every event, and a run per job.run
    for payload in announced:
        recorded = rows[payload["seq"]]
        assert (recorded["kind"], recorded["id"]) == (payload["kind"], payload["id"])
        assert recorded.get("status") == payload.get("status")
    assert len({p["seq"] for p in announced}) == len(announced)


def test_changes_are_notified_packed_under_the_size_cap() -> None:
    """A burst of changes is a few NOTIFYs, each an array of changes under PostgreSQL's
    8000-byte cap, in order; outbox wake-ups collapse into one; a change too large to send
    whole is cut down to what identifies it."""
    from tenancy.changes import (
        CHANGES_CHANNEL,
        NOTIFY_LIMIT,
        OUTBOX_CHANNEL,
        change,
        notify_payloads,
        read_notification,
    )

    items = [change("org", "event", f"e{i}", status="processed", type="t" * 50) for i in range(300)]
    items.insert(10, (OUTBOX_CHANNEL, {"runs": 1}))
    items.append((OUTBOX_CHANNEL, {"runs": 2}))
    items.append(change("org", "run", "big", status="failed", error="x" * 20_000))
    sent = notify_payloads(items)

    packs = [body for channel, body in sent if channel == CHANGES_CHANNEL]
    assert 2 <= len(packs) < 20
    assert all(len(body.encode()) <= NOTIFY_LIMIT for body in packs)
    got = [c for body in packs for c in read_notification(body)]
    assert [c["id"] for c in got] == [f"e{i}" for i in range(300)] + ["big"]
    assert got[-1] == {"org": "org", "kind": "run", "id": "big", "status": "failed"}
    assert [(c, b) for c, b in sent if c == OUTBOX_CHANNEL] == [(OUTBOX_CHANNEL, '{"runs":2}')]
    assert read_notification('{"org":"o","kind":"run","id":"r"}') == [
        {"org": "o", "kind": "run", "id": "r"}
    ]
