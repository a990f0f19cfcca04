"""Listening and dispatching: woken by the outbox, claims runs while there is room."""

from __future__ import annotations

import asyncio
import logging

from telemetry import metrics
from tenancy.changes import OUTBOX_CHANNEL
from tenancy.db import get_engine

log = logging.getLogger("orbin.worker")


class DispatchMixin:
    """Part of ``Worker`` (orbin_flows/runtime/worker.py): see there for the state it uses."""

    async def _listen_loop(self) -> None:
        import psycopg

        url = get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self.stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    self.wake.set()  # anything queued while we were not listening
                    async for _ in conn.notifies():
                        self.wake.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                await asyncio.sleep(1)

    async def _dispatch_loop(self) -> None:
        poll = self.settings.worker_poll_seconds if self.is_postgres else 0.1
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=max(poll, 0.05))
            except TimeoutError:
                pass
            self.wake.clear()
            loop = asyncio.get_running_loop()
            if loop.time() < self.prefect_down_until:
                continue
            if self.prefect_backoff and not await self._prefect_answers():
                self._prefect_unreachable()
                continue
            try:
                await self.dispatch_once()
            except Exception:
                log.exception("dispatch failed")
                await asyncio.sleep(1)

    async def dispatch_once(self) -> int:
        free = self.settings.worker_concurrency - len(self.active)
        if free <= 0:
            return 0
        items = await asyncio.to_thread(self._claim, min(free, 50))
        for item in items:
            if item.run_id in self.active:
                continue  # its first claim is still being started here: that one owns it
            task = asyncio.create_task(self._start(item), name=f"run-{item.run_id}")
            self.active[item.run_id] = task
            metrics.RUNS_ACTIVE.set(len(self.active))
            task.add_done_callback(lambda _t, rid=item.run_id: self._done(rid))
        if len(items) == min(free, 50):
            self.wake.set()
        return len(items)

    def _done(self, run_id: str) -> None:
        self.active.pop(run_id, None)
        metrics.RUNS_ACTIVE.set(len(self.active))
        self.flow_runs.pop(run_id, None)
        self.wake.set()
