"""Change notifications: runs, steps and events as they change, for live views and the worker.

On PostgreSQL a change is a NOTIFY sent with the transaction that made it (delivered on commit,
to every process); on SQLite it is delivered, after commit, to listeners in this process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

CHANGES_CHANNEL = "orbin_changes"
OUTBOX_CHANNEL = "orbin_outbox"

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


def _pending(session: Session) -> list[tuple[str, dict[str, Any]]]:
    return session.info.setdefault("orbin_pending_changes", [])


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    pending = session.info.pop("orbin_pending_changes", None)
    for channel, payload in pending or ():
        local_bus.publish(channel, payload)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop("orbin_pending_changes", None)


def publish(session: Session, channel: str, payload: dict[str, Any]) -> None:
    """Announce a change; it is delivered only if the transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        body = json.dumps(payload, separators=(",", ":"), default=str)
        if len(body) > 7900:  # NOTIFY payloads are capped at 8000 bytes
            body = json.dumps({k: payload.get(k) for k in ("org", "kind", "id", "status")})
        session.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": body})
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
