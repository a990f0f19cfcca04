"""Housekeeping as Prefect flows: the plan's retention of runs and events, the change log trim
and the cleanup of finished outbox items.

Each is a deployment with an interval schedule (deployments/maintenance.py), so Prefect's
scheduler makes one flow run per slot, shown in the Prefect UI with its logs. The warm workers
claim the due runs (orbin_flows/runtime/maintenance_keeper.py): one worker wins each slot.
Every job works in short batches, each its own transaction with ``SKIP LOCKED`` on
PostgreSQL, so two runs that overlap never take the same rows, and stops after a time budget
(the next slot carries on). The entrypoints are real: a plain Prefect process worker on the
maintenance pool runs them too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from prefect import Flow, flow, get_run_logger

from tenancy import outbox as outbox_repo
from tenancy.changes import prune_changes
from tenancy.clock import now_ms
from tenancy.config import Settings, get_settings
from tenancy.db import session_scope
from tenancy.metering import prune_expired

BATCH_PAUSE_SECONDS = 0.2  # room for ingestion between two batches


async def _in_batches(one_batch: Callable[[int], int], *, batch: int, budget: float) -> int:
    """Batch after batch until one comes back short or the budget is spent."""
    deadline = time.monotonic() + budget
    total = 0
    while True:
        n = await asyncio.to_thread(one_batch, batch)
        total += n
        if n < batch or time.monotonic() >= deadline:
            return total
        await asyncio.sleep(BATCH_PAUSE_SECONDS)


def _budget(seconds: int) -> float:
    """A run stops well before the next slot is due."""
    return max(1.0, seconds * 0.8)


def _retention_batch(batch: int) -> int:
    with session_scope() as session:
        return prune_expired(session, batch=batch)


def _change_log_batch(batch: int) -> int:
    keep_ms = get_settings().change_retention_seconds * 1000
    with session_scope() as session:
        return prune_changes(session, older_than_ms=now_ms() - keep_ms, batch=batch)


def _outbox_batch(batch: int) -> int:
    keep_ms = get_settings().outbox_retention_seconds * 1000
    with session_scope() as session:
        return outbox_repo.prune_finished_outbox(
            session, older_than_ms=now_ms() - keep_ms, batch=batch
        )


async def _housekeep(one_batch: Callable[[int], int], batch: int, every: int, said: str) -> int:
    n = await _in_batches(one_batch, batch=batch, budget=_budget(every))
    get_run_logger().info(said, n)
    return n


@flow(name="orbin-retention", persist_result=False, log_prints=False)
async def retention() -> int:
    """Runs and events past their plan's retention; their executions stay in the rollups."""
    s = get_settings()
    return await _housekeep(
        _retention_batch,
        s.retention_batch_size,
        s.maintenance_retention_seconds,
        "retention pruned %d runs and events",
    )


@flow(name="orbin-change-log-trim", persist_result=False, log_prints=False)
async def change_log_trim() -> int:
    """Change records older than the resume window of live streams."""
    s = get_settings()
    return await _housekeep(
        _change_log_batch,
        max(s.retention_batch_size, 1000),
        s.maintenance_change_log_seconds,
        "change log trimmed by %d records",
    )


@flow(name="orbin-outbox-cleanup", persist_result=False, log_prints=False)
async def outbox_cleanup() -> int:
    """Outbox items whose runs were handed over long ago."""
    s = get_settings()
    return await _housekeep(
        _outbox_batch,
        max(s.retention_batch_size, 1000),
        s.maintenance_outbox_seconds,
        "%d finished outbox items deleted",
    )


@dataclass(frozen=True)
class MaintenanceJob:
    """One housekeeping flow and how often Prefect schedules it."""

    flow: Flow[[], Coroutine[Any, Any, int]]
    description: str
    every: Callable[[Settings], int]

    @property
    def flow_name(self) -> str:
        return self.flow.name

    @property
    def entrypoint(self) -> str:
        return f"orbin_flows/maintenance.py:{self.flow.fn.__name__}"


JOBS = (
    MaintenanceJob(
        retention,
        "Runs, steps and events past their organization's plan retention",
        lambda s: s.maintenance_retention_seconds,
    ),
    MaintenanceJob(
        change_log_trim,
        "The change log past ORBIN_CHANGE_RETENTION_SECONDS",
        lambda s: s.maintenance_change_log_seconds,
    ),
    MaintenanceJob(
        outbox_cleanup,
        "Finished outbox items past ORBIN_OUTBOX_RETENTION_SECONDS",
        lambda s: s.maintenance_outbox_seconds,
    ),
)
