"""Change notifications: runs, steps and events as they change, for live views and the worker.

On PostgreSQL a change is a NOTIFY sent with the transaction that made it (delivered on commit,
to every process); on SQLite it is delivered, after commit, to listeners in this process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.orm import Session

CHANGES_CHANNEL = "orbin_changes"
OUTBOX_CHANNEL = "orbin_outbox"
_AFTER_COMMIT = "orbin_notify_after_commit"
log = logging.getLogger("orbin.changes")

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
    after = session.info.pop(_AFTER_COMMIT, None)
    if after:
        _notify_after_commit(session.get_bind(), after)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop("orbin_pending_changes", None)
    session.info.pop(_AFTER_COMMIT, None)


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
    """Announce many changes (a batch of ingested events and their runs) once committed.

    On PostgreSQL they are sent right *after* the commit, by this process's notifier thread
    (autocommit, many per statement): a transaction that NOTIFYs holds a cluster-wide lock
    through its commit (WAL flush included), which serializes every such commit and cut
    ingestion to a fifth. A process that dies between the commit and the send loses the
    announcement, not the data (listeners re-read; the worker also polls).
    """
    if session.get_bind().dialect.name != "postgresql":
        _pending(session).extend(items)
    else:
        session.info.setdefault(_AFTER_COMMIT, []).extend(items)


class _Notifier:
    """Sends this process's after-commit notifications from one thread and connection.

    Changes are gathered for a few milliseconds and sent together: one round trip per
    burst instead of one (plus a pool checkout) per transaction. The thread and its
    connection go away after a quiet half minute and come back with the next change.
    """

    IDLE_SECONDS = 30.0
    GATHER_SECONDS = 0.005

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.cond = threading.Condition()
        self.running = False

    def put(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        with self.cond:
            self.items.extend(items)
            if not self.running:
                self.running = True
                threading.Thread(target=self._run, name="orbin-notify", daemon=True).start()
            self.cond.notify()

    def _run(self) -> None:
        conn = None
        try:
            while True:
                with self.cond:
                    if not self.items:
                        self.cond.wait(self.IDLE_SECONDS)
                    if not self.items:
                        self.running = False
                        return
                time.sleep(self.GATHER_SECONDS)
                with self.cond:
                    items, self.items = self.items, []
                try:
                    if conn is None:
                        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                    _send(conn, items)
                except Exception:  # noqa: BLE001 - the data is committed; a lost hint is no error
                    log.warning("%d change notifications not sent", len(items), exc_info=True)
                    if conn is not None:
                        conn.invalidate()
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()


_PG_NOTIFY_MANY = "SELECT pg_notify(c, p) FROM jsonb_to_recordset(%s::jsonb) AS t(c text, p text)"


def _send(conn: Any, items: list[tuple[str, dict[str, Any]]]) -> None:
    rows = []
    for channel, payload in items:
        body = orjson.dumps(payload, default=str)
        if len(body) > 7900:  # NOTIFY payloads are capped at 8000 bytes
            body = orjson.dumps({k: payload.get(k) for k in ("org", "kind", "id")})
        rows.append({"c": channel, "p": body.decode()})
    conn.exec_driver_sql(_PG_NOTIFY_MANY, (orjson.dumps(rows).decode(),))


_notifiers: dict[int, _Notifier] = {}
_notifiers_lock = threading.Lock()


def _notify_after_commit(engine: Any, items: list[tuple[str, dict[str, Any]]]) -> None:
    notifier = _notifiers.get(id(engine))
    if notifier is None:
        with _notifiers_lock:
            notifier = _notifiers.setdefault(id(engine), _Notifier(engine))
    notifier.put(items)


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
