"""Change notifications: runs, steps and events as they change, for live views and the worker.

A change (``publish_change``) is written to ``change_log`` with the transaction that made it,
and gets that row's id as its sequence number (``seq``), so a client that reconnects can resume
after the last change it saw. On PostgreSQL it is also sent as a NOTIFY on ``orbin_changes``
right after the commit, by this process's notifier thread (a transaction that NOTIFYs holds a
cluster-wide lock through its commit, which serializes every such commit: ingestion ran at a
fifth of its speed); on SQLite, where another process cannot be notified, readers tail
``change_log`` (see tenancy/change_feed.py) and listeners in this very process also hear it
from the in-process bus after commit. A process that dies between its commit and the send
loses the announcement, not the data: listeners re-read the log, the worker also polls.

Outbox wake-ups (``OUTBOX_CHANNEL``) are not recorded: a NOTIFY on PostgreSQL, the bus on SQLite.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import delete, event, insert, select, text
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.db import delete_oldest
from tenancy.models import ChangeRecord

CHANGES_CHANNEL = "orbin_changes"
OUTBOX_CHANNEL = "orbin_outbox"
NOTIFY_LIMIT = 7900  # PostgreSQL caps NOTIFY payloads at 8000 bytes
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

_PENDING = "orbin_pending_changes"


def _pending(session: Session) -> list[tuple[str, dict[str, Any]]]:
    return session.info.setdefault(_PENDING, [])


def notify_body(payload: dict[str, Any]) -> str:
    """The NOTIFY text of a change, cut down to its identity if it would pass the size cap."""
    body = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)
    if len(body) > NOTIFY_LIMIT:  # bytes, as PostgreSQL counts them
        keep = ("org", "kind", "id", "status", "seq", "runId", "stepId")
        body = orjson.dumps({k: payload[k] for k in keep if k in payload}, default=str)
    return body.decode()


# One statement text whatever the number of changes (parsed once, prepared by the server);
# the rows travel as one JSON document. Sequence values are drawn in the ORDER BY's order, so
# the returned ids sorted ascending pair with the changes as given.
_PG_INSERT_CHANGES = (
    "INSERT INTO change_log (organization_id, kind, payload, created_at) "
    "SELECT r.e->>0, r.e->>1, r.e->2, %s FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY "
    "AS r(e, n) ORDER BY r.n RETURNING id"
)


@event.listens_for(Session, "before_commit")
def _record(session: Session) -> None:
    """Write the transaction's changes to change_log, in one statement, and number them.

    A change that already has its ``seq`` was recorded by the statement that made it.
    """
    changes = [
        p for c, p in session.info.get(_PENDING, ()) if c == CHANGES_CHANNEL and "seq" not in p
    ]
    if not changes:
        return
    now = now_ms()
    if session.get_bind().dialect.name == "postgresql":
        rows = orjson.dumps(
            [(p["org"], p["kind"], p) for p in changes],
            default=str,
            option=orjson.OPT_NON_STR_KEYS,
        ).decode()
        result = session.connection().exec_driver_sql(_PG_INSERT_CHANGES, (now, rows))
        ids = sorted(row[0] for row in result)
    else:
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


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        _notify_after_commit(bind, pending)
    else:
        for channel, payload in pending:
            local_bus.publish(channel, payload)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)


def publish(session: Session, channel: str, payload: dict[str, Any]) -> None:
    """Announce a change; it is delivered only if the transaction commits."""
    _pending(session).append((channel, payload))


def publish_many(session: Session, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Announce many changes (a batch of ingested events and their runs) once committed."""
    _pending(session).extend(items)


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


def notify_payloads(items: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """What to NOTIFY for these items, in order: changes packed as JSON arrays under the size
    cap (one notification per burst, not per change); on any other channel (the outbox's
    wake-ups) one notification per burst, the last one's."""
    out: list[tuple[str, str]] = []
    pack: list[bytes] = []
    size = 2
    wakes: dict[str, dict[str, Any]] = {}
    for channel, payload in items:
        if channel != CHANGES_CHANNEL:
            wakes[channel] = payload
            continue
        body = notify_body(payload).encode()
        if pack and size + len(body) + 1 > NOTIFY_LIMIT:
            out.append((CHANGES_CHANNEL, "[" + b",".join(pack).decode() + "]"))
            pack, size = [], 2
        pack.append(body)
        size += len(body) + 1
    if pack:
        out.append((CHANGES_CHANNEL, "[" + b",".join(pack).decode() + "]"))
    out += [(channel, notify_body(payload)) for channel, payload in wakes.items()]
    return out


def read_notification(payload: str) -> list[dict[str, Any]]:
    """The changes of one notification on ``CHANGES_CHANNEL`` (an array, or one change)."""
    data = orjson.loads(payload)
    return data if isinstance(data, list) else [data]


def _send(conn: Any, items: list[tuple[str, dict[str, Any]]]) -> None:
    rows = [{"c": channel, "p": body} for channel, body in notify_payloads(items)]
    conn.exec_driver_sql(_PG_NOTIFY_MANY, (orjson.dumps(rows).decode(),))


_notifiers: dict[str, _Notifier] = {}
_notifiers_lock = threading.Lock()


def _notify_after_commit(bind: Any, items: list[tuple[str, dict[str, Any]]]) -> None:
    engine = bind.engine  # a connection's, or the engine itself (one notifier per database)
    key = str(engine.url)
    notifier = _notifiers.get(key)
    if notifier is None:
        with _notifiers_lock:
            notifier = _notifiers.setdefault(key, _Notifier(engine))
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


def snapshot_bounds(session: Session) -> tuple[int, int]:
    """PostgreSQL: (xmin, xmax) of a fresh snapshot. Every transaction below xmin has ended;
    every one running now is below xmax."""
    row = session.execute(
        text(
            "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint"
            " FROM pg_current_snapshot() AS s"
        )
    ).one()
    return int(row[0]), int(row[1])


def latest_change_seq(session: Session) -> int:
    return session.scalar(select(ChangeRecord.id).order_by(ChangeRecord.id.desc()).limit(1)) or 0


def prune_changes(session: Session, *, older_than_ms: int, batch: int | None = None) -> int:
    """Delete change records older than ``older_than_ms`` (at most ``batch`` of them, the
    oldest; two trimmers at once take different rows on PostgreSQL)."""
    if batch is None:
        res = session.execute(delete(ChangeRecord).where(ChangeRecord.created_at < older_than_ms))
        return res.rowcount or 0
    return delete_oldest(
        session, ChangeRecord, ChangeRecord.created_at < older_than_ms, batch=batch
    )
