"""Scheduled flow runs whose claim was lost: a worker claims a due Scheduled flow run by
moving it to Pending, then creates the Orbin run; if it dies in between, the flow run would
stay Pending for ever with no run. Every worker looks for such flow runs (Pending longer
than the lease, scheduled by Prefect, with no Orbin run) and puts them back to Scheduled,
due now, so that the ordinary pick-up (orbin_flows/runtime/schedule_keeper.py) claims them
again, once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("orbin.schedules")

RECOVER_EVERY_TICKS = 10


async def recover_stuck(worker: Any, *, stuck_after: timedelta | None = None) -> int:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Scheduled

    from orbin_flows.runtime.schedule_keeper import _any_schedule, _lookup

    if not await asyncio.to_thread(_any_schedule):
        return 0
    if stuck_after is None:  # (a zero timedelta is falsy, and means: no wait)
        stuck_after = timedelta(milliseconds=2 * worker.lease_ms)
    pending = await worker.client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING])),
            tags=FlowRunFilterTags(all_=["orbin"]),
            deployment_id=FlowRunFilterDeploymentId(is_null_=False),
        ),
        limit=50,
    )
    now = datetime.now(UTC)
    recovered = 0
    for flow_run in pending:
        since = getattr(flow_run.state, "timestamp", None)
        if not flow_run.auto_scheduled or since is None or now - since < stuck_after:
            continue
        found = await asyncio.to_thread(_lookup, str(flow_run.deployment_id), str(flow_run.id))
        if found == "taken":
            continue  # its run exists: the outbox dispatches it
        # Inactive workflows' flow runs are cancelled by the ordinary pick-up.
        await worker.client.set_flow_run_state(
            flow_run.id,
            Scheduled(scheduled_time=now, message="its claim was lost with a worker"),
            force=True,
        )
        log.warning("scheduled flow run %s lost its claim; scheduled again", flow_run.id)
        recovered += 1
    return recovered
