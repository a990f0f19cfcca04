"""Change notifications: runs, steps and events as they change, for live views and the worker.

A change (``publish_change``) is written to ``change_log`` with the transaction that made it,
and gets that row's id as its sequence number (``seq``), so a client that reconnects can resume
after the last change it saw. On PostgreSQL it is also sent as a NOTIFY on ``orbin_changes``
(delivered on commit, to every process); on SQLite, where another process cannot be notified,
readers tail ``change_log`` (see tenancy/change_feed.py) and listeners in this very process
also hear it from the in-process bus after commit.

Outbox wake-ups (``OUTBOX_CHANNEL``) are not recorded: a NOTIFY on PostgreSQL, the bus on SQLite.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, event, insert, select, text
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.models import ChangeRecord

CHANGES_CHANNEL = "orbin_changes"
OUTBOX_CHANNEL = "orbin_outbox"
NOTIFY_LIMIT = 7900  # PostgreSQL caps NOTIFY payloads at 8000 bytes

Listener = Callable[[str, dict[str, Any]], None]


class LocalBus:
    """In-process fan-out used on SQLite (and by tests)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def publish(self, channel: str, payload: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(channel, payload)
            except Exception:  # a broken listener must not break the writer
                pass


local_bus = LocalBus()

_PENDING = "orbin_pending_changes"


def _pending(session: Session) -> list[tuple[str, dict[str, Any]]]:
    return session.info.setdefault(_PENDING, [])


def notify_body(payload: dict[str, Any]) -> str:
    body = json.dumps(payload, separators=(",", ":"), default=str)
    if len(body) > NOTIFY_LIMIT:
        keep = ("org", "kind", "id", "status", "seq", "runId", "stepId")
        body = json.dumps({k: payload[k] for k in keep if k in payload}, default=str)
    return body


@event.listens_for(Session, "before_commit")
def _record(session: Session) -> None:
    """Write the transaction's changes to change_log (one statement) and NOTIFY them."""
    changes = [p for c, p in session.info.get(_PENDING, ()) if c == CHANGES_CHANNEL]
    if not changes:
        return
    now = now_ms()
    ids = session.scalars(
        insert(ChangeRecord).returning(ChangeRecord.id, sort_by_parameter_order=True),
        [
            {
                "organization_id": p["org"],
                "kind": p["kind"],
                "payload": json.loads(json.dumps(p, default=str)),
                "created_at": now,
            }
            for p in changes
        ],
    ).all()
    for payload, seq in zip(changes, ids, strict=True):
        payload["seq"] = seq
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:c, x) FROM unnest(CAST(:bodies AS text[])) AS x"),
            {"c": CHANGES_CHANNEL, "bodies": [notify_body(p) for p in changes]},
        )


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if session.info.pop("orbin_pg", False) or not pending:
        return
    for channel, payload in pending:
        local_bus.publish(channel, payload)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop("orbin_pg", None)


def publish(session: Session, channel: str, payload: dict[str, Any]) -> None:
    """Announce a change; it is delivered only if the transaction commits."""
    is_pg = session.get_bind().dialect.name == "postgresql"
    if is_pg:
        session.info["orbin_pg"] = True
    if channel == CHANGES_CHANNEL:
        _pending(session).append((channel, payload))  # recorded and notified at commit
    elif is_pg:
        session.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": notify_body(payload)})
        # Listeners in this very process hear it through their own LISTEN connection.
    else:
        _pending(session).append((channel, payload))


def publish_many(session: Session, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Announce many changes with one statement (a batch of ingested events and their runs)."""
    if session.get_bind().dialect.name != "postgresql":
        _pending(session).extend(items)
        return
    for start in range(0, len(items), 200):
        chunk = items[start : start + 200]
        params: dict[str, Any] = {}
        calls = []
        for i, (channel, payload) in enumerate(chunk):
            body = json.dumps(payload, separators=(",", ":"), default=str)
            if len(body) > 7900:
                body = json.dumps({k: payload.get(k) for k in ("org", "kind", "id", "status")})
            params[f"c{i}"], params[f"p{i}"] = channel, body
            calls.append(f"pg_notify(:c{i}, :p{i})")
        session.execute(text("SELECT " + ", ".join(calls)), params)


def change(
    organization_id: str, kind: str, obj_id: str, **fields: Any
) -> tuple[str, dict[str, Any]]:
    """A change notification as ``publish_many`` takes it."""
    return CHANGES_CHANNEL, {"org": organization_id, "kind": kind, "id": obj_id, **fields}


def publish_change(
    session: Session, *, organization_id: str, kind: str, obj_id: str, **fields: Any
) -> None:
    publish(
        session,
        CHANGES_CHANNEL,
        {"org": organization_id, "kind": kind, "id": obj_id, **fields},
    )


# --- reading the change log ------------------------------------------------------------


def read_changes(
    session: Session, *, after: int, organization_id: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Changes after sequence number ``after``, oldest first, each with its ``seq``.

    Without ``organization_id`` it reads every tenant's changes: only for the process-wide
    feed, which fans them out by organization.
    """
    q = select(ChangeRecord.id, ChangeRecord.payload).where(ChangeRecord.id > after)
    if organization_id is not None:
        q = q.where(ChangeRecord.organization_id == organization_id)
    rows = session.execute(q.order_by(ChangeRecord.id).limit(limit)).all()
    return [{**payload, "seq": seq} for seq, payload in rows]


def latest_change_seq(session: Session) -> int:
    return session.scalar(select(ChangeRecord.id).order_by(ChangeRecord.id.desc()).limit(1)) or 0


def prune_changes(session: Session, *, older_than_ms: int) -> int:
    res = session.execute(delete(ChangeRecord).where(ChangeRecord.created_at < older_than_ms))
    return res.rowcount or 0
