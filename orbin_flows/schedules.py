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

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from orbin_flows.spec import ScheduleTriggerConfig
from tenancy import workflows as workflows_repo
from tenancy.db import Session
from tenancy.errors import NotFound
from tenancy.principal import Principal

log = logging.getLogger("orbin.schedules")

MISFIRE = timedelta(minutes=10)
SYNC_EVERY_TICKS = 2


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
        # ms since the epoch, as every time the API answers; computed in the schedule's zone.
        "nextRuns": [int(t.timestamp() * 1000) for t in next_fire_times(config, count=count)]
        if active
        else [],
        # False until the worker has written this version's schedule to Prefect.
        "synced": wf.schedule_synced_version == wf.version,
        "prefectDeploymentId": wf.prefect_deployment_id,
    }


# --- the worker's side ----------------------------------------------------------------------
