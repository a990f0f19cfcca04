"""The Prefect states a run's flow run is put in when the run suspends or was canceled."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from prefect.context import FlowRunContext

from telemetry.logs import quiet_suspensions

if TYPE_CHECKING:
    from orbin_flows.runtime.engine import Suspend

log = logging.getLogger("orbin.engine")


async def suspend_flow_run(flow_run_id: str | None, exc: Suspend) -> None:
    """Prefect's side of a long delay: the flow run ends ``Suspended`` (not Failed), and the
    engine exits through Prefect's own ``Pause`` signal; a worker resumes it later."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import Pause
    from prefect.states import Suspended

    ctx = FlowRunContext.get()
    if not flow_run_id or ctx is None or ctx.client is None:
        return
    when = datetime.fromtimestamp(exc.resume_at / 1000, UTC).isoformat(timespec="seconds")
    log.info("flow run %s suspended: step %s waits until %s", flow_run_id, exc.key, when)
    state = Suspended(
        pause_key=f"{exc.key}@{exc.resume_at}",
        message=f"Orbin: step {exc.key} waits until {when}; the run resumes then",
    )
    try:
        result = await ctx.client.set_flow_run_state(UUID(flow_run_id), state)
    except Exception as err:  # noqa: BLE001 - Orbin resumes the run whatever Prefect shows
        log.warning("could not suspend flow run %s in Prefect: %s", flow_run_id, err)
        return
    if result.status == SetStateStatus.ACCEPT and result.state is not None:
        quiet_suspensions()  # Prefect would log the flow run's end as an ERROR
        raise Pause(state=result.state)
    log.warning("Prefect refused to suspend flow run %s: %s", flow_run_id, result.details)


async def abort_canceled(flow_run_id: str | None) -> None:
    """A run canceled before it started: its flow run ends Cancelled, not Completed."""
    from prefect.exceptions import Abort
    from prefect.states import Cancelled

    ctx = FlowRunContext.get()
    if not flow_run_id or ctx is None or ctx.client is None:
        return
    try:
        await ctx.client.set_flow_run_state(
            UUID(flow_run_id), Cancelled(message="canceled in Orbin before it started"), force=True
        )
    except Exception as err:  # noqa: BLE001
        log.warning("could not cancel flow run %s in Prefect: %s", flow_run_id, err)
        return
    raise Abort("canceled in Orbin before it started")
