"""Schedule triggers, on Prefect's scheduler.

A workflow whose trigger is ``{"type": "schedule", "config": {"cron": "*/5 * * * *",
"timezone": "Europe/Paris"}}`` (or ``{"interval": <seconds>}``) gets that schedule on its
Prefect deployment; Prefect's scheduler then creates Scheduled flow runs in the org's work
pool. The warm worker, from its maintenance loop (``tick``):

- syncs schedules, off the API's critical path: every save, activation or pause of a workflow
  is a new version, and a workflow whose version Prefect has not seen gets its deployment
  upserted (schedule active when the workflow is active; otherwise the schedule is inactive
  and the deployment paused, which also deletes the runs it had scheduled);
- picks up the due Scheduled flow runs: claims each (proposes Pending; another worker that
  claimed it first wins), creates the Orbin run (trigger type ``schedule``) linked to that
  flow run, and hands it to the outbox, where it is executed like any other run. A run more
  than 10 minutes late (no worker was running) is cancelled as missed, not run late.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from orbin_flows.spec import ScheduleTriggerConfig
from tenancy import runs as runs_repo
from tenancy import schedules as repo
from tenancy import workflows as workflows_repo
from tenancy.changes import prune_changes
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.db import session_scope
from tenancy.errors import LimitExceeded, NotFound
from tenancy.models import Workflow
from tenancy.principal import Principal
from tenancy.usage import reserve_executions

log = logging.getLogger("orbin.schedules")

MISFIRE = timedelta(minutes=10)
SYNC_EVERY_TICKS = 2
PRUNE_EVERY_TICKS = 60


# --- the schedule itself ------------------------------------------------------------------


def schedule_config(trigger: dict[str, Any]) -> ScheduleTriggerConfig | None:
    if trigger.get("type") != "schedule":
        return None
    return ScheduleTriggerConfig.model_validate(trigger.get("config") or {})


def _anchor(tz: ZoneInfo) -> datetime:
    return datetime(2020, 1, 1, tzinfo=tz)


def next_fire_times(
    config: ScheduleTriggerConfig, *, count: int = 5, after: datetime | None = None
) -> list[datetime]:
    """The next fire times, in the schedule's time zone (what Prefect's scheduler will use)."""
    tz = ZoneInfo(config.timezone)
    start = (after or datetime.now(UTC)).astimezone(tz)
    if config.cron:
        from cronsim import CronSim

        it = CronSim(config.cron, start)
        return [next(it) for _ in range(count)]
    assert config.interval is not None
    step = timedelta(seconds=config.interval)
    k = math.floor((start - _anchor(tz)) / step) + 1
    return [_anchor(tz) + step * (k + i) for i in range(count)]


def prefect_schedule(config: ScheduleTriggerConfig) -> Any:
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    if config.cron:
        return CronSchedule(cron=config.cron, timezone=config.timezone)
    assert config.interval is not None
    return IntervalSchedule(
        interval=timedelta(seconds=config.interval),
        anchor_date=_anchor(ZoneInfo(config.timezone)),
        timezone=config.timezone,
    )


def schedule_info(
    session: Session, principal: Principal, workflow_id: str, *, count: int = 5
) -> dict[str, Any]:
    """What ``GET /v1/workflows/{id}/schedule`` shows: the schedule and its next fire times."""
    principal.require("workflows:read")
    wf = workflows_repo.read_workflow(
        session, organization_id=principal.organization_id, workflow_id=workflow_id
    )
    config = schedule_config(wf.trigger)
    if config is None:
        raise NotFound(
            f"workflow {wf.slug!r} has no schedule trigger (its trigger is {wf.trigger_type})"
        )
    active = wf.status == "active"
    return {
        "workflowId": wf.id,
        "cron": config.cron,
        "interval": config.interval,
        "timezone": config.timezone,
        "active": active,
        "status": wf.status,
        "nextRuns": [t.isoformat() for t in next_fire_times(config, count=count)] if active else [],
        # False until the worker has written this version's schedule to Prefect.
        "synced": wf.schedule_synced_version == wf.version,
        "prefectDeploymentId": wf.prefect_deployment_id,
    }


# --- the worker's side ----------------------------------------------------------------------


async def tick(worker: Any, ticks: int) -> None:
    """Called every second by the worker's maintenance loop."""
    keeper = getattr(worker, "_schedule_keeper", None)
    if keeper is None:
        keeper = ScheduleKeeper(worker)
        worker._schedule_keeper = keeper
    await keeper.tick(ticks)


class ScheduleKeeper:
    def __init__(self, worker: Any) -> None:
        self.worker = worker

    async def tick(self, ticks: int) -> None:
        try:
            if ticks % SYNC_EVERY_TICKS == 1:
                await self.sync()
            await self.pick_up()
            if ticks % PRUNE_EVERY_TICKS == 0:
                await asyncio.to_thread(_prune_changes)
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

        from orbin_flows.compiler import flow_name

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
        wf = session.get(Workflow, workflow_id)
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
        run.prefect_flow_run_id = flow_run_id
        session.flush()
        return run.id


def _prune_changes() -> None:
    keep_ms = get_settings().change_retention_seconds * 1000
    with session_scope() as session:
        prune_changes(session, older_than_ms=now_ms() - keep_ms)
