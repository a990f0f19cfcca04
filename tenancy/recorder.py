"""Run and step records written from a worker in order, batched, off the event loop.

A step attempt is recorded twice (started, finished). Written synchronously from the
worker's event loop, each is a transaction the flow waits for, on every step. The recorder
queues them instead: one thread commits whatever is queued as one transaction, in the order
they were submitted, usually within a millisecond or two; the timestamps are taken when the
step really starts and ends, not when the row is written. ``flush()`` waits for everything
submitted so far; the engine calls it before it reports a run finished, so a run is never
recorded complete ahead of its steps.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from tenancy import steps as steps_repo
from tenancy.changes import publish_change
from tenancy.clock import new_id, now_ms
from tenancy.db import session_scope
from tenancy.models import StepExecution

log = logging.getLogger("orbin.recorder")

Op = Callable[[Session], None]


@dataclass
class StepRecord:
    id: str
    organization_id: str
    run_id: str
    step_id: str
    attempt: int
    started_at: int


class Recorder:
    def __init__(self, *, max_batch: int = 500) -> None:
        self._queue: queue.SimpleQueue[tuple[Op | None, Callable[[], None] | None]] = (
            queue.SimpleQueue()
        )
        self._max_batch = max_batch
        self._thread = threading.Thread(target=self._loop, name="orbin-recorder", daemon=True)
        self._thread.start()

    # --- what the engine records ------------------------------------------------------

    def start_step(
        self,
        *,
        organization_id: str,
        run_id: str,
        step_id: str,
        step_name: str,
        step_type: str,
        attempt: int,
        max_attempts: int,
        input: Any,
    ) -> StepRecord:
        rec = StepRecord(new_id(), organization_id, run_id, step_id, attempt, now_ms())
        values = {
            "id": rec.id,
            "organization_id": organization_id,
            "workflow_run_id": run_id,
            "step_id": step_id,
            "step_name": step_name,
            "step_type": step_type,
            "status": "running",
            "attempt": attempt,
            "max_attempts": max_attempts,
            "input": input,
            "started_at": rec.started_at,
            "created_at": rec.started_at,
        }

        def op(session: Session) -> None:
            session.execute(insert(StepExecution).values(**values))
            publish_change(
                session,
                organization_id=organization_id,
                kind="step",
                obj_id=rec.id,
                runId=run_id,
                stepId=step_id,
                status="running",
                attempt=attempt,
            )

        self.submit(op)
        return rec

    def finish_step(
        self,
        rec: Any,
        *,
        status: str,
        output: Any = None,
        error: dict[str, Any] | None = None,
        next_retry_at: int | None = None,
    ) -> None:
        """``rec``: a StepRecord, or a StepExecution row read earlier."""
        values = steps_repo.step_finish_values(
            started_at=rec.started_at,
            status=status,
            output=output,
            error=error,
            next_retry_at=next_retry_at,
        )
        ids = {
            "step_exec_id": rec.id,
            "organization_id": rec.organization_id,
            "run_id": getattr(rec, "run_id", None) or rec.workflow_run_id,
            "step_id": rec.step_id,
            "attempt": rec.attempt,
        }
        self.submit(lambda session: steps_repo.write_step_finish(session, values=values, **ids))

    # --- the machinery ----------------------------------------------------------------

    def submit(self, op: Op) -> None:
        self._queue.put((op, None))

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def resolve() -> None:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        self._queue.put((None, resolve))
        await done

    def flush_sync(self, timeout: float = 30) -> None:
        event = threading.Event()
        self._queue.put((None, event.set))
        event.wait(timeout)

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ops = [op for op, _ in batch if op is not None]
            if ops:
                self._write(ops)
            for _, callback in batch:
                if callback is not None:
                    callback()

    def _write(self, ops: list[Op]) -> None:
        try:
            with session_scope() as session:
                for op in ops:
                    op(session)
            return
        except Exception:  # noqa: BLE001 - one bad record must not lose the others
            log.exception("batch of %d records failed; writing them one by one", len(ops))
        for op in ops:
            for attempt in range(3):
                try:
                    with session_scope() as session:
                        op(session)
                    break
                except Exception:  # noqa: BLE001
                    if attempt == 2:
                        log.exception("a run record could not be written")


_default: Recorder | None = None
_default_lock = threading.Lock()


def get_recorder() -> Recorder:
    global _default
    with _default_lock:
        if _default is None:
            _default = Recorder()
        return _default
