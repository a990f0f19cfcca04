"""Claiming an outbox item and starting its run; a run that cannot start is dead-lettered."""

from __future__ import annotations

import asyncio
import logging
import time

from prefect.exceptions import Abort, Pause

from orbin_flows.runtime.outages import (
    _CREATE_TIMEOUT,
    _TRANSIENT,
    _UNREACHABLE,
)
from tenancy import events as events_repo
from tenancy import outbox as outbox_repo
from tenancy import runs as runs_repo
from tenancy.clock import now_ms
from tenancy.db import DatabaseUnavailable, session_scope
from tenancy.errors import NotFound
from tenancy.run_plans import RunPlan, load_plan

log = logging.getLogger("orbin.worker")


class ClaimMixin:
    """Part of ``Worker`` (orbin_flows/runtime/worker.py): see there for the state it uses."""

    def _claim(self, limit: int) -> list[outbox_repo.ClaimedItem]:
        with session_scope() as session:
            return outbox_repo.claim_outbox(
                session, worker_id=self.worker_id, limit=limit, lease_ms=self.lease_ms
            )

    async def _start(self, item: outbox_repo.ClaimedItem) -> None:
        try:
            await self._start_unguarded(item)
        except asyncio.CancelledError:
            raise
        except DatabaseUnavailable as exc:  # the database: the claim's lease expires, then retried
            log.warning("run %s not started, database unavailable: %s", item.run_id, exc)
        except Pause:
            log.info("run %s is suspended (a long delay); it resumes later", item.run_id)
        except Abort as exc:
            log.info("run %s stopped before its steps: %s", item.run_id, exc)
        except Exception as exc:  # noqa: BLE001 - a run must never stay pending silently
            log.exception("run %s could not be started", item.run_id)
            await asyncio.to_thread(self._dead_letter, item, exc)

    def _dead_letter(self, item: outbox_repo.ClaimedItem, exc: Exception) -> None:
        message = f"could not start: {exc.__class__.__name__}: {exc}"
        with session_scope() as session:
            outbox_repo.dead_letter(
                session, outbox_id=item.outbox_id, run_id=item.run_id, message=message
            )

    async def _start_unguarded(self, item: outbox_repo.ClaimedItem) -> None:
        t0 = time.perf_counter()
        try:
            plan = await asyncio.to_thread(load_plan, item.run_id)
        except NotFound:
            await asyncio.to_thread(self._outbox_done, item, None)
            return
        run = plan.run
        if run.status in runs_repo.RUN_FINAL:
            if run.cancel_requested and run.prefect_flow_run_id:
                await self._cancel_flow_run(run.prefect_flow_run_id)
            await asyncio.to_thread(self._outbox_done, item, plan)
            return
        if run.status == "running" and (run.lease_expires_at or 0) > now_ms():
            await asyncio.to_thread(self._outbox_done, item, plan)  # a live worker has it
            return
        try:
            if plan.spec.get("deployment"):
                await self._run_code_flow(item, plan)
                return
            if run.status in ("running", "suspended") and run.prefect_flow_run_id:
                if await self._continue(item, plan):
                    return
        except _UNREACHABLE as exc:
            self._prefect_unreachable()
            await asyncio.to_thread(self._outbox_retry, item, repr(exc), 0)
            return
        except _TRANSIENT as exc:
            await self._prefect_unavailable(item, exc)
            return
        t1 = time.perf_counter()
        try:
            flow_run = await asyncio.wait_for(self._create_flow_run(plan), _CREATE_TIMEOUT)
        except _UNREACHABLE as exc:
            # Not the run's fault: put it back as it was, so runs keep their order, and pause
            # dispatching (with backoff) until the server answers its health check again.
            if not self.prefect_backoff:
                log.warning("Prefect unreachable (%r); dispatching paused until it answers", exc)
            self._prefect_unreachable()
            await asyncio.to_thread(self._outbox_retry, item, repr(exc), 0)
            return
        except _TRANSIENT as exc:
            await self._prefect_unavailable(item, exc)
            return
        if self.prefect_backoff:
            log.warning("Prefect answers again; dispatching resumed")
            self.prefect_backoff = 0.0
        t2 = time.perf_counter()
        # Recorded beside the run's start, not before it: the flow body does not wait for it.
        attach = asyncio.create_task(
            asyncio.to_thread(self._attached, item, plan, str(flow_run.id))
        )
        self.timings[plan.run.id] = (t0, t1, t2, time.perf_counter())
        try:
            await self.execute(plan, flow_run)
        finally:
            await attach

    def _attached(self, item: outbox_repo.ClaimedItem, plan: RunPlan, flow_run_id: str) -> None:
        with session_scope() as session:
            runs_repo.attach_flow_run(
                session,
                run_id=plan.run.id,
                flow_run_id=flow_run_id,
                worker_id=self.worker_id,
                lease_ms=self.lease_ms,
            )
            outbox_repo.finish_outbox(session, outbox_id=item.outbox_id)
            if plan.run.event_id:
                events_repo.mark_processed_if_dispatched(session, event_pk=plan.run.event_id)

    def _outbox_done(self, item: outbox_repo.ClaimedItem, plan: RunPlan | None) -> None:
        with session_scope() as session:
            outbox_repo.finish_outbox(session, outbox_id=item.outbox_id)

    def _outbox_retry(self, item: outbox_repo.ClaimedItem, error: str, delay_ms: int) -> None:
        with session_scope() as session:
            outbox_repo.retry_outbox(
                session, outbox_id=item.outbox_id, error=error, delay_ms=delay_ms
            )
