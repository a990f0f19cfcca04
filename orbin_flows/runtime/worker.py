"""The warm worker: runs Orbin flow runs in-process, concurrently, woken the moment a run exists.

A process worker polls Prefect and starts an interpreter per run (seconds). This worker learns
of new runs from the outbox (PostgreSQL NOTIFY, or a short poll on SQLite), creates the flow
run in the organization's work pool with one call and runs the compiled flow in its own event
loop. The runs stay ordinary Prefect flow runs: visible in the Prefect UI, cancellable there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import OrderedDict
from typing import Any

from prefect.context import SyncClientContext

from deployments.prefect_setup import PrefectSetup
from orbin_flows.runtime import codeflows, maintenance_keeper, schedule_keeper
from orbin_flows.runtime.active import ActiveRuns
from orbin_flows.runtime.claimer import ClaimMixin
from orbin_flows.runtime.code_runs import CodeRunMixin
from orbin_flows.runtime.fastpath import FastPathClient, fast_client_context
from orbin_flows.runtime.leases import UpkeepMixin
from orbin_flows.runtime.listener import DispatchMixin
from orbin_flows.runtime.outages import OutageMixin
from orbin_flows.runtime.runner import RunnerMixin
from orbin_flows.runtime.shutdown import drain, start_ops_server
from tenancy import liveness
from tenancy.config import get_settings
from tenancy.db import get_engine
from tenancy.run_plans import RunPlan

log = logging.getLogger("orbin.worker")


class Worker(DispatchMixin, ClaimMixin, RunnerMixin, CodeRunMixin, OutageMixin, UpkeepMixin):
    """The warm worker, composed of the collaborators above (one concern per module)."""

    def __init__(self, *, worker_id: str | None = None, concurrency: int | None = None) -> None:
        settings = get_settings()
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.capacity = asyncio.Semaphore(concurrency or settings.worker_concurrency)
        self.lease_ms = settings.worker_lease_seconds * 1000
        self.wake = asyncio.Event()
        self.active: dict[str, asyncio.Task[Any]] = {}
        self.flow_runs: dict[str, str] = {}
        self.org_gates: dict[str, asyncio.Semaphore] = {}
        self._plans: dict[str, RunPlan] = {}
        self.timings: dict[str, tuple[float, float, float, float]] = {}
        self.liveness = liveness.LivenessLock(self.worker_id)
        self.seen_alive: set[str] = set()
        self.flows: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self.prefect_down_until = 0.0
        self.prefect_backoff = 0.0
        self.client: FastPathClient | None = None
        self.result_storage: Any = None
        self.setup: PrefectSetup | None = None
        self.stopping = asyncio.Event()
        self.codeflows: codeflows.CodeFlows | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.handing_over: set[str] = set()  # stopping: runs left to other workers
        self.is_postgres = get_engine().dialect.name == "postgresql"
        self.schedules = schedule_keeper.ScheduleKeeper(self)
        self.maintenance = maintenance_keeper.MaintenanceKeeper(self)  # retention, trims
        self.executors = ActiveRuns()  # handed to the compiled flows and their executors

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        ctx, client = fast_client_context()
        # One sync client for the whole process too: the engine asks for one on every run
        # (result storage), and building it (TLS context, HTTP pool) costs ~10 ms each time.
        with SyncClientContext():
            async with ctx:
                self.client = client
                self.setup = PrefectSetup(client)
                self.result_storage = await self._wait_for_prefect()
                await self._serve()

    async def _serve(self) -> None:
        loops = [
            asyncio.create_task(self._dispatch_loop(), name="dispatch"),
            asyncio.create_task(self._maintenance_loop(), name="maintenance"),
        ]
        if self.is_postgres:
            loops.append(asyncio.create_task(self._listen_loop(), name="listen"))
        ops = start_ops_server(self)
        mode = "LISTEN" if self.is_postgres else "poll"
        log.info("worker %s started (%s)", self.worker_id, mode)
        try:
            await self.stopping.wait()
        finally:
            await drain(self, loops)  # finish or hand over the runs (runtime/shutdown.py)
            if ops is not None:
                ops.stop()

    def stop(self) -> None:
        self.stopping.set()

    # --- dispatch -----------------------------------------------------------------------

    # --- execution ----------------------------------------------------------------------

    # --- upkeep: leases, lost workers, long delays, cancellations, heartbeats -----------
