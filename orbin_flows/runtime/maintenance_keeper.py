"""The worker's side of the maintenance flows (orbin_flows/maintenance.py).

Prefect's scheduler makes one flow run per slot of each maintenance deployment. Every worker
looks for the due ones every few seconds and claims one by moving it from Scheduled to
Pending: the server accepts that once (``PreventPendingTransitions``), so exactly one worker
runs each slot, in-process (the flow is imported already). When several slots of one job are
due (the workers were down), the latest runs and the older ones are cancelled once claimed.
A run whose worker died stays Running in Prefect; after a few intervals it is marked Crashed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from deployments.maintenance import MaintenanceSpec, ensure_maintenance_deployments
from orbin_flows.maintenance import JOBS, MaintenanceJob
from tenancy.config import get_settings

log = logging.getLogger("orbin.maintenance")

ENSURE_EVERY_TICKS = 600  # an operator may delete or pause a deployment: put it back
PICK_UP_EVERY_TICKS = 3
CRASHED_EVERY_TICKS = 60


class MaintenanceKeeper:
    """Uses the worker's public ``client``, ``stopping`` and ``_background``."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.jobs: dict[UUID, MaintenanceJob] = {}  # by deployment id
        self.running: set[UUID] = set()  # deployments with a run in this process

    async def tick(self, ticks: int) -> None:
        """Called every second by the worker's maintenance loop."""
        if self.worker.client is None or self.worker.stopping.is_set():
            return
        try:
            if not self.jobs or ticks % ENSURE_EVERY_TICKS == 0:
                await self.ensure()
            if ticks % PICK_UP_EVERY_TICKS == 0:
                await self.pick_up()
            if ticks % CRASHED_EVERY_TICKS == 0:
                await self.mark_lost()
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.exception("maintenance upkeep failed")

    async def ensure(self) -> None:
        settings = get_settings()
        specs = [
            MaintenanceSpec(job.flow_name, job.entrypoint, job.description, job.every(settings))
            for job in JOBS
        ]
        ids = await ensure_maintenance_deployments(self.worker.client, specs)
        self.jobs = {ids[job.flow_name]: job for job in JOBS}

    async def _read(self, state_types: list[Any], **filters: Any) -> list[Any]:
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.sorting import FlowRunSort

        return await self.worker.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=list(self.jobs)),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=state_types)),
                **filters,
            ),
            sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC,
            limit=100,
        )

    async def pick_up(self) -> list[UUID]:
        """Claim and start the due runs; returns the ids of the flow runs started here."""
        from prefect.client.schemas.filters import FlowRunFilterNextScheduledStartTime
        from prefect.client.schemas.objects import StateType
        from prefect.states import Cancelled

        due = await self._read(
            [StateType.SCHEDULED],
            next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(
                before_=datetime.now(UTC)
            ),
        )
        by_deployment: dict[UUID, list[Any]] = defaultdict(list)
        for flow_run in due:
            by_deployment[flow_run.deployment_id].append(flow_run)
        started = []
        for deployment_id, flow_runs in by_deployment.items():
            job = self.jobs.get(deployment_id)
            if job is None or deployment_id in self.running:
                continue  # one run of a job at a time in this process
            *older, latest = flow_runs
            for flow_run in older:
                if await self._claim(flow_run.id):
                    await self.worker.client.set_flow_run_state(
                        flow_run.id, Cancelled(message="superseded by a later slot"), force=True
                    )
            if not await self._claim(latest.id):
                continue  # another worker has it
            self.running.add(deployment_id)
            task = asyncio.create_task(self._run(deployment_id, job, latest.id))
            self.worker._background.add(task)
            task.add_done_callback(self.worker._background.discard)
            started.append(latest.id)
        return started

    async def _claim(self, flow_run_id: UUID) -> bool:
        from prefect.client.schemas.responses import SetStateStatus
        from prefect.states import Pending

        result = await self.worker.client.set_flow_run_state(flow_run_id, Pending(), force=False)
        return result.status == SetStateStatus.ACCEPT

    async def _run(self, deployment_id: UUID, job: MaintenanceJob, flow_run_id: UUID) -> None:
        from prefect.flow_engine import run_flow_async

        try:
            flow_run = await self.worker.client.read_flow_run(flow_run_id)
            state = await run_flow_async(job.flow, flow_run=flow_run, return_type="state")
            log.info("maintenance flow run %s (%s): %s", flow_run_id, job.flow_name, state.name)
        except Exception:  # noqa: BLE001 - the next slot tries again
            log.exception("maintenance flow run %s (%s) failed", flow_run_id, job.flow_name)
        finally:
            self.running.discard(deployment_id)

    async def mark_lost(self) -> int:
        """Runs Pending or Running far longer than a run's budget lost their worker."""
        from prefect.client.schemas.objects import StateType
        from prefect.states import Crashed

        settings = get_settings()
        now = datetime.now(UTC)
        lost = 0
        for flow_run in await self._read([StateType.PENDING, StateType.RUNNING]):
            job = self.jobs.get(flow_run.deployment_id)
            since = getattr(flow_run.state, "timestamp", None)
            if job is None or since is None:
                continue
            if now - since > timedelta(seconds=3 * job.every(settings) + 60):
                await self.worker.client.set_flow_run_state(
                    flow_run.id, Crashed(message="its Orbin worker was lost"), force=True
                )
                lost += 1
        return lost
