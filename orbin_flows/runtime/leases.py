"""Upkeep: leases, lost workers, long delays, cancellations, heartbeats, schedules."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from orbin_flows.billing import upkeep as billing_upkeep
from orbin_flows.runtime.outages import (
    _TRANSIENT,
)
from telemetry import metrics
from tenancy import liveness, run_leases
from tenancy import runs as runs_repo
from tenancy.db import session_scope

log = logging.getLogger("orbin.worker")


class UpkeepMixin:
    """Part of ``Worker`` (orbin_flows/runtime/worker.py): see there for the state it uses."""

    async def _maintenance_loop(self) -> None:
        # Leases are renewed three times per lease period, so a live worker never looks dead.
        lease_s = self.lease_ms / 1000
        renew_every = max(0.2, min(5.0, lease_s / 3))
        recover_every = max(0.5, min(5.0, lease_s / 2))
        loop = asyncio.get_running_loop()
        next_renew = next_recover = loop.time()
        next_heartbeat = loop.time() + 1
        ticks = 0
        while True:
            await asyncio.sleep(min(1.0, renew_every))
            try:
                await self._cancellations()
                await asyncio.to_thread(self._liveness)
                now = loop.time()
                if now >= next_renew:
                    next_renew = now + renew_every
                    await asyncio.to_thread(self._renew_leases)
                if now >= next_recover:
                    next_recover = now + recover_every
                    await asyncio.to_thread(self._recover)
                if now >= next_heartbeat:
                    next_heartbeat = now + 30
                    await self._heartbeats()
                ticks += 1
                await self.schedules.tick(ticks)  # schedule triggers
                await self.maintenance.tick(ticks)  # housekeeping flows (orbin_flows/maintenance)
                await billing_upkeep.tick(self, ticks)  # pools, notices (orbin_flows/billing/)
            except Exception:
                log.exception("maintenance step failed")

    def _renew_leases(self) -> None:
        with session_scope() as session:
            run_leases.renew_leases(
                session, worker_id=self.worker_id, run_ids=list(self.active), lease_ms=self.lease_ms
            )
            lost = run_leases.read_runs_taken_over(
                session, worker_id=self.worker_id, run_ids=list(self.flow_runs)
            )
        for run_id in lost:
            executor = self.executors.get(run_id)
            task = self.active.get(run_id)
            if executor is not None and task is not None and not task.done():
                log.warning("run %s was taken over by another worker; stopping here", run_id)
                executor.lost = True
                task.get_loop().call_soon_threadsafe(task.cancel)

    def _liveness(self) -> None:
        """Hold this worker's liveness lock; take over at once the runs of a worker whose
        lock was freed (its process died: tenancy/liveness.py). PostgreSQL only."""
        if not self.liveness.hold():
            return
        with session_scope() as session:
            dead = liveness.dead_workers(session, me=self.worker_id, seen_alive=self.seen_alive)
            for run in liveness.runs_of(session, workers=dead):
                if run.id not in self.active and runs_repo.requeue_run(session, run=run):
                    log.warning(
                        "run %s: its worker %s is gone (its session ended); running it again",
                        run.id,
                        run.worker_id,
                    )

    def _recover(self) -> None:
        """Requeue runs whose worker died (lease expired) and suspended runs that are due.

        Every worker does this; the conditional update in ``requeue_run`` lets one of them
        win each run. The new worker marks the dead one's flow run Crashed (``_continue``)."""
        with session_scope() as session:
            for run in runs_repo.read_orphaned_runs(session, grace_ms=self.lease_ms):
                if run.id not in self.active and runs_repo.requeue_run(session, run=run):
                    log.warning(
                        "run %s lost its worker %s; running it again", run.id, run.worker_id
                    )
            for run in runs_repo.read_due_suspended_runs(session):
                if runs_repo.requeue_run(session, run=run):
                    log.info("run %s resumes after its delay", run.id)

    async def _cancellations(self) -> None:
        if not self.active:
            return
        ids = list(self.active)
        wanted = await asyncio.to_thread(self._cancel_requested, ids)
        if self.client is not None and self.flow_runs:
            by_flow = {v: k for k, v in self.flow_runs.items()}
            try:
                cancelling = await self.client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        id=FlowRunFilterId(any_=[UUID(f) for f in by_flow]),
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.CANCELLING])
                        ),
                    )
                )
                wanted |= {by_flow[str(fr.id)] for fr in cancelling if str(fr.id) in by_flow}
            except _TRANSIENT:
                pass
        for run_id in wanted:
            task = self.active.get(run_id)
            if task is not None and not task.done():
                log.info("canceling run %s", run_id)
                task.cancel()

    def _cancel_requested(self, run_ids: list[str]) -> set[str]:
        with session_scope() as session:
            return run_leases.read_cancel_requested(session, run_ids=run_ids)

    async def _heartbeats(self) -> None:
        assert self.client is not None and self.setup is not None
        pools = set(self.setup.pools)
        for pool in pools:
            try:
                with metrics.prefect_call("send_worker_heartbeat"):
                    await self.client.send_worker_heartbeat(pool, self.worker_id, 60)
            except _TRANSIENT:
                return
