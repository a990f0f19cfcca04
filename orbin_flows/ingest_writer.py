"""The group-commit writer: one thread that writes the ingest requests of this process together.

See ``IngestWriter``; what one batch does is ``orbin_flows.ingest.ingest_together``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future

from orbin_flows import ingest
from orbin_flows.ingest import Done, NewEvent, Outcome
from telemetry import metrics
from tenancy.config import get_settings
from tenancy.db import DATABASE_DOWN, AutocommitConnection
from tenancy.errors import Unavailable
from tenancy.principal import Principal

log = logging.getLogger("orbin.ingest")


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
        self._conn = AutocommitConnection()
        self._last_batch = 1
        self._queued = 0  # events handed over, not yet taken by the writer
        self._busy = False

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
        bound = get_settings().ingest_queue_max_events
        with self._cond:
            if self._queued and self._queued + len(events) > bound:
                # Never grow without limit: the client retries (the database is slow or down).
                raise Unavailable(
                    f"the API is writing {self._queued} events already; retry shortly",
                    retry_after=1,
                )
            self._items.append((principal, list(events), done))
            self._queued += len(events)
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
                self._queued -= count
            self._last_batch = len(take)
            self._busy = True
            t0 = time.perf_counter()
            try:
                self._write(take)
            finally:
                metrics.INGEST_BATCH_REQUESTS.observe(len(take))
                metrics.INGEST_BATCH_SECONDS.observe(time.perf_counter() - t0)
                with self._cond:
                    metrics.INGEST_QUEUE.set(len(self._items))
                    self._busy = False
                    self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every request queued so far is written and answered (shutdown)."""
        until = time.monotonic() + timeout
        with self._cond:
            while self._items or self._busy:
                left = until - time.monotonic()
                if left <= 0:
                    log.warning("ingest writer not drained: %d requests left", len(self._items))
                    return False
                self._cond.wait(left)
        return True

    def _write(self, take: list[tuple[Principal, list[NewEvent], Done]]) -> None:
        try:
            outcomes = ingest.ingest_together(
                [(p, evs) for p, evs, _ in take], connection=self._conn.get()
            )
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            self._conn.drop()
            if isinstance(exc, DATABASE_DOWN):  # the database, not a request
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
        for (principal, _, done), outcome in zip(take, outcomes, strict=True):
            accepted = sum(isinstance(o, ingest.IngestResult) for o in outcome)
            if accepted:
                metrics.EVENTS_ACCEPTED.labels(principal.organization_slug).inc(accepted)
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
