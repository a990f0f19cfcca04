"""Worker liveness on PostgreSQL, within a second: each worker holds a session advisory lock
named after its id, on a connection of its own. When the worker's process dies, PostgreSQL
ends its session and frees the lock at once, so the other workers see that it is gone and
take its runs over in seconds instead of waiting for the lease (twice 30 s). The lease stays
the fallback, and the only way on SQLite. A worker is declared dead only by an observer
that saw its lock held before (a worker of an older version holds none)."""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from tenancy.db import get_engine
from tenancy.models import WorkflowRun
from tenancy.runs import read_runs_where

log = logging.getLogger("orbin.worker")

_NAMESPACE = b"orbin-worker:"


def lock_key(worker_id: str) -> int:
    """A signed 64-bit advisory lock key for the worker id."""
    return int.from_bytes(
        hashlib.sha256(_NAMESPACE + worker_id.encode()).digest()[:8], "big", signed=True
    )


class LivenessLock:
    """This worker's lock, held for as long as the process lives (re-taken after a lost
    connection)."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.key = lock_key(worker_id)
        self._conn: Connection | None = None

    def hold(self) -> bool:
        """True while the lock is held (PostgreSQL only)."""
        engine = get_engine()
        if engine.dialect.name != "postgresql":
            return False
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # noqa: BLE001 - the connection is gone: take the lock again
                self.release()
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        except Exception:
            conn.close()
            raise
        self._conn = conn
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: BLE001 - being thrown away
                pass
            self._conn = None


def dead_workers(session: Session, *, me: str, seen_alive: set[str]) -> set[str]:
    """Workers holding runs whose lock is free now, among those seen holding it before."""
    if session.get_bind().dialect.name != "postgresql":
        return set()
    holders = session.scalars(
        select(WorkflowRun.worker_id)
        .where(
            WorkflowRun.status.in_(("pending", "running")),
            WorkflowRun.worker_id.is_not(None),
            WorkflowRun.lease_expires_at.is_not(None),
        )
        .distinct()
    ).all()
    dead: set[str] = set()
    for worker in holders:
        if worker is None or worker == me:
            continue
        key = lock_key(worker)
        free = session.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        if free:
            session.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            if worker in seen_alive:
                dead.add(worker)
                seen_alive.discard(worker)
        else:
            seen_alive.add(worker)
    return dead


def runs_of(session: Session, *, workers: set[str], limit: int = 500) -> list[WorkflowRun]:
    if not workers:
        return []
    return read_runs_where(
        session,
        WorkflowRun.status.in_(("pending", "running")),
        WorkflowRun.worker_id.in_(workers),
        limit=limit,
    )
