"""The live change feed of one process: every tenant's changes, fanned out by organization.

One source per process, however many clients listen: on PostgreSQL a single LISTEN
connection on ``orbin_changes``; on SQLite, where another process (the worker) cannot notify
this one, a single tail of ``change_log`` (a query by primary key every
``ORBIN_STREAM_POLL_SECONDS``). The source starts with the first subscriber and stops with
the last. A subscriber too slow to keep up (its queue full) is told so and dropped; it
resumes from the change log with its last sequence number.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tenancy import changes
from tenancy.commit_order import CommitOrder
from tenancy.config import get_settings
from tenancy.db import get_engine, read_scope
from tenancy.errors import Unavailable

log = logging.getLogger("orbin.changes")

OVERFLOW: dict[str, Any] = {"kind": "overflow"}


class Subscription:
    def __init__(self, feed: ChangeFeed, organization_id: str, maxsize: int) -> None:
        self.feed = feed
        self.organization_id = organization_id
        self.limit = maxsize
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize + 1)
        self.closed = False

    def offer(self, change: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.limit:
            # Everything queued is still delivered, then the notice (the slot kept for it):
            # the client resumes with Last-Event-ID right after the last change it got.
            self.feed.unsubscribe(self)
            self.queue.put_nowait(OVERFLOW)
            return
        self.queue.put_nowait(change)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.feed.unsubscribe(self)


class ChangeFeed:
    def __init__(self, *, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self.is_postgres = get_engine().dialect.name == "postgresql"
        self._subs: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.last_seq = 0
        self.order = CommitOrder()
        self._settler: asyncio.Task[None] | None = None

    @property
    def cursor(self) -> int:
        """Every change up to this sequence number has been dispatched (or never commits)."""
        return self.order.cursor

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    async def subscribe(self, organization_id: str) -> Subscription:
        sub = Subscription(self, organization_id, self.queue_size)
        self._subs.setdefault(organization_id, set()).add(sub)
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="orbin-change-feed")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=15)
        except TimeoutError:
            self.unsubscribe(sub)
            raise Unavailable("the live change feed is not available; try again") from None
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        subs = self._subs.get(sub.organization_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.organization_id]
        if not self._subs and self._task is not None:
            self._task.cancel()
            self._task = None
            if self._settler is not None:
                self._settler.cancel()
                self._settler = None

    def dispatch(self, change: dict[str, Any]) -> None:
        """Fan a change out to its organization's subscribers, with the feed's ``cursor``."""
        seq = change.get("seq")
        if isinstance(seq, int):
            if not self.is_postgres:  # one writer at a time: numbers are in commit order
                self.order.settle(seq)
            elif not self.order.arrive(seq):
                return  # delivered already (notified and read back), or from before the feed
            elif self.order.has_gap and self._settler is None:
                self._settler = asyncio.create_task(self._settle(), name="orbin-feed-order")
            self.last_seq = max(self.last_seq, seq)
        change = {**change, "cursor": self.order.cursor}
        for sub in list(self._subs.get(change.get("org") or "", ())):
            sub.offer(change)

    async def _settle(self) -> None:
        """Close the gaps below the highest number arrived: wait until every transaction
        running now has ended, then read from the log whatever did not arrive."""
        try:
            while self.order.has_gap:
                upto = self.order.horizon
                _, xmax = await asyncio.to_thread(_bounds)
                waited, delay = 0.0, 0.005
                while (await asyncio.to_thread(_bounds))[0] < xmax:
                    if waited > GAP_PATIENCE_SECONDS:
                        log.warning(
                            "a transaction open over %.0f s holds change %d's gap; settling it",
                            GAP_PATIENCE_SECONDS,
                            self.order.cursor + 1,
                        )
                        break
                    await asyncio.sleep(delay)
                    waited += delay
                    delay = min(delay * 2, 0.2)
                after = self.order.cursor
                while after < upto:
                    batch = await asyncio.to_thread(_read_after, after)
                    for change in batch:
                        if change["seq"] <= upto:
                            self.dispatch(change)
                    if len(batch) < _BATCH or batch[-1]["seq"] >= upto:
                        break
                    after = batch[-1]["seq"]
                self.order.settle(upto)
        except Exception as exc:  # noqa: BLE001 - the next gap tries again
            log.warning("change feed could not settle its order: %s", exc)
        finally:
            self._settler = None

    async def _run(self) -> None:
        if self.is_postgres:
            await self._listen()
        else:
            await self._tail()

    async def _listen(self) -> None:
        import psycopg

        url = get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {changes.CHANGES_CHANNEL}")
                    if self._ready.is_set():  # reconnected: what was missed meanwhile
                        for change in await asyncio.to_thread(_read_after, self.order.cursor):
                            self.dispatch(change)
                    else:
                        self.last_seq = await asyncio.to_thread(_quiet_latest)
                        self.order = CommitOrder(self.last_seq)
                        self._ready.set()
                    async for note in conn.notifies():
                        try:
                            for change in changes.read_notification(note.payload):
                                self.dispatch(change)
                        except ValueError:
                            log.warning("unreadable change notification dropped")
            except (psycopg.Error, OSError) as exc:
                log.warning("change feed LISTEN connection lost (%s); reconnecting", exc)
                await asyncio.sleep(1)

    async def _tail(self) -> None:
        poll = get_settings().stream_poll_seconds
        self.last_seq = await asyncio.to_thread(_latest)
        self.order = CommitOrder(self.last_seq)
        self._ready.set()
        while True:
            try:
                batch = await asyncio.to_thread(_read_after, self.last_seq)
            except Exception as exc:  # noqa: BLE001 - e.g. database locked: try again
                log.warning("change feed read failed: %s", exc)
                batch = []
                await asyncio.sleep(1)
            for change in batch:
                self.dispatch(change)
            if len(batch) < _BATCH:
                await asyncio.sleep(poll)


_BATCH = 500


GAP_PATIENCE_SECONDS = 30.0


def _latest() -> int:
    with read_scope() as session:
        return changes.latest_change_seq(session)


def _bounds() -> tuple[int, int]:
    with read_scope() as session:
        return changes.snapshot_bounds(session)


def _quiet_latest(patience: float = 2.0) -> int:
    """The feed's starting point: the last number, once the transactions running when it was
    read have ended (a number below it still uncommitted would otherwise count as settled)."""
    import time

    latest = _latest()
    _, xmax = _bounds()
    deadline = time.monotonic() + patience
    while _bounds()[0] < xmax and time.monotonic() < deadline:
        time.sleep(0.01)
    return latest


def _read_after(seq: int) -> list[dict[str, Any]]:
    with read_scope() as session:
        return changes.read_changes(session, after=seq, limit=_BATCH)


def read_org_changes_after(organization_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
    """For a client resuming with Last-Event-ID: its organization's changes after ``seq``."""
    with read_scope() as session:
        return changes.read_changes(
            session, after=seq, organization_id=organization_id, limit=limit
        )
