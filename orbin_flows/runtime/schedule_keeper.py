"""The schedule keeper: the worker's side of schedule triggers (see orbin_flows/schedules.py).

From the worker's maintenance loop it syncs schedules onto Prefect deployments, picks up the
due Scheduled flow runs and turns each into an Orbin run (the change log is trimmed by a
maintenance flow: orbin_flows/maintenance.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from orbin_flows.runtime import schedule_recovery
from orbin_flows.schedules import (
    MISFIRE,
    SYNC_EVERY_TICKS,
    prefect_schedule,
    schedule_config,
)
from tenancy import runs as runs_repo
from tenancy import schedules as repo
from tenancy import workflows as workflows_repo
from tenancy.db import session_scope
from tenancy.errors import LimitExceeded, NotFound
from tenancy.usage import reserve_executions

log = logging.getLogger("orbin.schedules")


class ScheduleKeeper:
    """Uses the worker's public ``client``, ``setup`` and ``wake``; ``tick`` is its interface."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker

    async def tick(self, ticks: int) -> None:
        """Called every second by the worker's maintenance loop."""
        try:
            if ticks % SYNC_EVERY_TICKS == 1:
                await self.sync()
            await self.pick_up()
            if ticks % schedule_recovery.RECOVER_EVERY_TICKS == 3:
                await schedule_recovery.recover_stuck(self.worker)
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.exception("schedule upkeep failed")

    # sync ------------------------------------------------------------------------------

    async def sync(self) -> int:
        items = await asyncio.to_thread(_read_to_sync)
        for item in items:
            try:
                await self._sync_one(item)
            except Exception as exc:  # noqa: BLE001 - retried on the next pass
                log.warning("could not sync the schedule of workflow %s: %s", item.workflow_id, exc)
        return len(items)

    async def _sync_one(self, item: repo.ScheduleSync) -> None:
        from prefect.client.schemas.actions import DeploymentScheduleCreate
        from prefect.exceptions import ObjectNotFound

        from orbin_flows.runtime.compiler import flow_name

        client, setup = self.worker.client, self.worker.setup
        config = schedule_config(item.trigger)
        active = config is not None and item.status == "active"
        schedules = (
            [DeploymentScheduleCreate(schedule=prefect_schedule(config), active=active)]
            if config is not None
            else []
        )
        target = await setup.sync_deployment(
            organization_slug=item.organization_slug,
            workflow_slug=item.workflow_slug,
            workflow_id=item.workflow_id,
            version=item.version,
            concurrency=item.concurrency,
            flow_name=flow_name(item.organization_slug, item.workflow_slug),
            schedules=schedules,
            paused=config is not None and not active,
        )
        deployment_id = target.deployment_id
        if item.deployment_id and item.deployment_id != str(deployment_id):
            try:  # the slug changed: the old deployment must stop scheduling
                await client.pause_deployment(UUID(item.deployment_id))
            except ObjectNotFound:
                pass
        if active:  # create the first runs now rather than at the scheduler's next pass
            await client.request(
                "POST", "/deployments/{id}/schedule", path_params={"id": deployment_id}, json={}
            )
        await asyncio.to_thread(
            _mark_synced, item.workflow_id, item.version, str(deployment_id), config is not None
        )
        log.info(
            "schedule of workflow %s v%d synced (%s)",
            item.workflow_id,
            item.version,
            "active" if active else "inactive",
        )

    # pick-up ---------------------------------------------------------------------------

    async def pick_up(self) -> int:
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterNextScheduledStartTime,
            FlowRunFilterState,
            FlowRunFilterStateType,
            FlowRunFilterTags,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        if not await asyncio.to_thread(_any_schedule):
            return 0
        due = await self.worker.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(
                    before_=datetime.now(UTC)
                ),
                tags=FlowRunFilterTags(all_=["orbin"]),
                deployment_id=FlowRunFilterDeploymentId(is_null_=False),
            ),
            sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC,
            limit=50,
        )
        taken = 0
        for flow_run in due:
            if flow_run.auto_scheduled:
                taken += await self._take(flow_run)
        return taken

    async def _take(self, flow_run: Any) -> int:
        from prefect.client.schemas.responses import SetStateStatus
        from prefect.states import Pending

        client = self.worker.client
        found = await asyncio.to_thread(_lookup, str(flow_run.deployment_id), str(flow_run.id))
        if found == "taken":
            return 0
        if found is None:
            await self._cancel(flow_run, "its Orbin workflow is not active, or has no schedule")
            return 0
        scheduled = flow_run.next_scheduled_start_time or flow_run.expected_start_time
        if scheduled and datetime.now(UTC) - scheduled > MISFIRE:
            await self._cancel(flow_run, "missed: no Orbin worker was running at its time")
            return 0
        claim = await client.set_flow_run_state(flow_run.id, Pending(), force=False)
        if claim.status != SetStateStatus.ACCEPT:
            return 0  # another worker has it
        try:
            run_id = await asyncio.to_thread(_create_run, found, str(flow_run.id), scheduled)
        except LimitExceeded as exc:
            await self._cancel(flow_run, exc.message)
            return 0
        try:  # for operators and plain Prefect workers: which Orbin run this is
            await client.update_flow_run(flow_run.id, parameters={"run_id": run_id})
        except Exception as exc:  # noqa: BLE001
            log.warning("could not label flow run %s: %s", flow_run.id, exc)
        self.worker.wake.set()
        log.info("scheduled flow run %s became run %s", flow_run.id, run_id)
        return 1

    async def _cancel(self, flow_run: Any, message: str) -> None:
        from prefect.states import Cancelled

        try:
            await self.worker.client.set_flow_run_state(
                flow_run.id, Cancelled(message=message), force=True
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("could not cancel flow run %s: %s", flow_run.id, exc)


def _read_to_sync() -> list[repo.ScheduleSync]:
    with session_scope() as session:
        return repo.read_schedules_to_sync(session)


def _mark_synced(workflow_id: str, version: int, deployment_id: str, has_schedule: bool) -> None:
    with session_scope() as session:
        repo.mark_schedule_synced(
            session,
            workflow_id=workflow_id,
            version=version,
            deployment_id=deployment_id,
            has_schedule=has_schedule,
        )


def _any_schedule() -> bool:
    with session_scope() as session:
        return repo.any_synced_schedule(session)


def _lookup(deployment_id: str, flow_run_id: str) -> str | None:
    """The id of the active schedule workflow of this deployment; "taken" if a run exists."""
    with session_scope() as session:
        if repo.read_run_by_flow_run(session, flow_run_id=flow_run_id) is not None:
            return "taken"
        wf = repo.read_workflow_by_deployment(session, deployment_id=deployment_id)
        if wf is None or wf.status != "active" or wf.trigger_type != "schedule":
            return None
        return wf.id


def _create_run(workflow_id: str, flow_run_id: str, scheduled: datetime | None) -> str:
    with session_scope() as session:
        wf = workflows_repo.find_workflow(session, workflow_id)
        if wf is None:
            raise NotFound(f"workflow {workflow_id} not found")
        config = schedule_config(wf.trigger)
        reserve_executions(session, organization_id=wf.organization_id, count=1)
        when = scheduled or datetime.now(UTC)
        run = runs_repo.create_run(
            session,
            organization_id=wf.organization_id,
            workflow=wf,
            trigger_type="schedule",
            trigger_data={
                "type": "schedule",
                "scheduledTime": when.astimezone(UTC).isoformat(),
                "scheduledAt": int(when.timestamp() * 1000),
                "cron": config.cron if config else None,
                "interval": config.interval if config else None,
                "timezone": config.timezone if config else None,
                "prefectFlowRunId": flow_run_id,
            },
        )
        # Dispatched like any run, onto this very flow run (see Worker._create_flow_run).
        runs_repo.link_flow_run(session, run=run, flow_run_id=flow_run_id)
        return run.id
