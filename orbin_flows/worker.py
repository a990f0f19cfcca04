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
import time
from collections import OrderedDict
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.context import SyncClientContext
from prefect.exceptions import Abort, ObjectNotFound, Pause, PrefectHTTPStatusError
from prefect.flow_engine import run_flow_async
from prefect.states import Cancelled, Crashed, Pending
from sqlalchemy.exc import OperationalError

from deployments.prefect_setup import PrefectSetup
from orbin_flows import codeflows, schedules
from orbin_flows.compiler import compile_flow, flow_name, prepare_result_storage
from orbin_flows.engine import EXECUTORS, RunExecutor
from orbin_flows.fastpath import FastPathClient, engine_view, fast_client_context
from orbin_flows.plan import RunPlan, load_plan
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy.changes import OUTBOX_CHANNEL
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.db import get_engine, session_scope
from tenancy.errors import NotFound

log = logging.getLogger("orbin.worker")

_TRANSIENT = (httpx.HTTPError, OSError, PrefectHTTPStatusError, TimeoutError)
# The Prefect server itself is unreachable (down, restarting): every run waits alike.
_UNREACHABLE = (httpx.TransportError, OSError, TimeoutError)
_CREATE_TIMEOUT = 15.0  # the client retries a refused connection for ~1 min on its own
_MAX_OUTAGE_BACKOFF = 10.0


class Worker:
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
        self.flows: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self.prefect_down_until = 0.0
        self.prefect_backoff = 0.0
        self.client: FastPathClient | None = None
        self.result_storage: Any = None
        self.setup: PrefectSetup | None = None
        self.stopping = asyncio.Event()
        self.codeflows: codeflows.CodeFlows | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.is_postgres = get_engine().dialect.name == "postgresql"

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
        mode = "LISTEN" if self.is_postgres else "poll"
        log.info("worker %s started (%s)", self.worker_id, mode)
        try:
            await self.stopping.wait()
        finally:
            for t in loops:
                t.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            if self.active:
                await asyncio.wait(list(self.active.values()), timeout=10)

    async def _wait_for_prefect(self) -> Any:
        while True:
            try:
                return await prepare_result_storage()
            except _TRANSIENT as exc:
                log.warning("waiting for the Prefect server: %s", exc)
                await asyncio.sleep(1)

    def stop(self) -> None:
        self.stopping.set()

    async def _listen_loop(self) -> None:
        import psycopg

        url = get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self.stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    self.wake.set()  # anything queued while we were not listening
                    async for _ in conn.notifies():
                        self.wake.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                await asyncio.sleep(1)

    # --- dispatch -----------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        poll = self.settings.worker_poll_seconds if self.is_postgres else 0.1
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=max(poll, 0.05))
            except TimeoutError:
                pass
            self.wake.clear()
            loop = asyncio.get_running_loop()
            if loop.time() < self.prefect_down_until:
                continue
            if self.prefect_backoff and not await self._prefect_answers():
                self._prefect_unreachable()
                continue
            try:
                await self.dispatch_once()
            except Exception:
                log.exception("dispatch failed")
                await asyncio.sleep(1)

    async def dispatch_once(self) -> int:
        free = self.settings.worker_concurrency - len(self.active)
        if free <= 0:
            return 0
        items = await asyncio.to_thread(self._claim, min(free, 50))
        for item in items:
            if item.run_id in self.active:
                continue  # its first claim is still being started here: that one owns it
            task = asyncio.create_task(self._start(item), name=f"run-{item.run_id}")
            self.active[item.run_id] = task
            task.add_done_callback(lambda _t, rid=item.run_id: self._done(rid))
        if len(items) == min(free, 50):
            self.wake.set()
        return len(items)

    def _done(self, run_id: str) -> None:
        self.active.pop(run_id, None)
        self.flow_runs.pop(run_id, None)
        self.wake.set()

    def _claim(self, limit: int) -> list[runs_repo.ClaimedItem]:
        with session_scope() as session:
            return runs_repo.claim_outbox(
                session, worker_id=self.worker_id, limit=limit, lease_ms=self.lease_ms
            )

    async def _start(self, item: runs_repo.ClaimedItem) -> None:
        try:
            await self._start_unguarded(item)
        except asyncio.CancelledError:
            raise
        except OperationalError as exc:  # the database: the claim's lease expires, then retried
            log.warning("run %s not started, database unavailable: %s", item.run_id, exc)
        except Pause:
            log.info("run %s is suspended (a long delay); it resumes later", item.run_id)
        except Abort as exc:
            log.info("run %s stopped before its steps: %s", item.run_id, exc)
        except Exception as exc:  # noqa: BLE001 - a run must never stay pending silently
            log.exception("run %s could not be started", item.run_id)
            await asyncio.to_thread(self._dead_letter, item, exc)

    def _dead_letter(self, item: runs_repo.ClaimedItem, exc: Exception) -> None:
        from tenancy.models import WorkflowRun

        message = f"could not start: {exc.__class__.__name__}: {exc}"
        with session_scope() as session:
            run = session.get(WorkflowRun, item.run_id)
            if run is not None and run.status not in runs_repo.RUN_FINAL:
                runs_repo.finish_run(session, run=run, status="failed", error={"message": message})
                if run.event_id:
                    events_repo.mark_event(
                        session, event_pk=run.event_id, status="failed", error=message
                    )
            runs_repo.finish_outbox(session, outbox_id=item.outbox_id)

    async def _start_unguarded(self, item: runs_repo.ClaimedItem) -> None:
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
            if run.status == "running" and run.prefect_flow_run_id:
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

    def _prefect_unreachable(self) -> None:
        self.prefect_backoff = min(_MAX_OUTAGE_BACKOFF, max(0.5, self.prefect_backoff * 2))
        self.prefect_down_until = asyncio.get_running_loop().time() + self.prefect_backoff

    async def _prefect_answers(self) -> bool:
        url = self.settings.prefect_api_url.rstrip("/") + "/health"
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    async def _prefect_unavailable(self, item: runs_repo.ClaimedItem, exc: Exception) -> None:
        delay = min(30_000, 500 * 2 ** min(item.attempts, 6))
        log.warning("Prefect unavailable (%s); run %s waits %d ms", exc, item.run_id, delay)
        self.prefect_down_until = asyncio.get_running_loop().time() + 1.0
        await asyncio.to_thread(self._outbox_retry, item, repr(exc), delay)

    async def _run_code_flow(self, item: runs_repo.ClaimedItem, plan: RunPlan) -> None:
        """A code workflow: a flow run of its own deployment, executed here, tracked as a run."""
        assert self.client is not None
        if self.codeflows is None:
            self.codeflows = codeflows.CodeFlows(self.client)
        try:
            deployment = await self.codeflows.deployment_for(plan)
            flow = await self.codeflows.flow_for(deployment)
        except codeflows.CodeFlowError as exc:
            await asyncio.to_thread(self._dead_letter, item, exc)
            return
        run = plan.run
        if run.prefect_flow_run_id:  # recovered from a lost worker: it starts over
            await self._set_prefect_state(
                UUID(run.prefect_flow_run_id), Crashed(message="its Orbin worker was lost")
            )
        params = codeflows.parameters(flow, plan)
        flow_run = await self.client.create_flow_run_from_deployment(
            deployment.id,
            parameters=params,
            state=Pending(),
            name=f"{plan.workflow_slug}-{run.id[-12:]}",
            tags=["orbin", f"org:{plan.organization_slug}", f"workflow:{plan.workflow_slug}"],
            idempotency_key=f"{run.id}:{run.prefect_flow_run_id or ''}",
        )
        await asyncio.to_thread(self._attached, item, plan, str(flow_run.id))
        gate = self.org_gates.setdefault(run.organization_id, asyncio.Semaphore(plan.concurrency))
        async with self.capacity, gate:
            self.flow_runs[run.id] = str(flow_run.id)
            if not await asyncio.to_thread(self._code_begin, plan):
                await self._set_prefect_state(flow_run.id, Cancelled(message="canceled in Orbin"))
                return
            try:
                state = await run_flow_async(
                    flow, flow_run=flow_run, parameters=params, return_type="state"
                )
            except asyncio.CancelledError:
                self._code_finish(plan, "canceled", None, {"message": "canceled"})
                await self._set_prefect_state(flow_run.id, Cancelled(message="canceled in Orbin"))
                raise
        if state.is_completed():
            try:
                result = codeflows.jsonable(await state.aresult(raise_on_failure=False))
            except Exception:  # noqa: BLE001 - a result Orbin cannot read is no result
                result = None
            await asyncio.to_thread(self._code_finish, plan, "completed", result, None)
        else:
            status = "canceled" if state.is_cancelled() else "failed"
            error = {"message": state.message or state.name or status}
            await asyncio.to_thread(self._code_finish, plan, status, None, error)
        task = asyncio.create_task(self._record_code_steps(plan, flow_run.id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _code_begin(self, plan: RunPlan) -> bool:
        with session_scope() as session:
            if runs_repo.mark_run_running(
                session, run=plan.run, worker_id=self.worker_id, lease_ms=self.lease_ms
            ):
                return True
            runs_repo.finish_run(
                session, run=plan.run, status="canceled", error={"message": "canceled"}
            )
            return False

    def _code_finish(
        self, plan: RunPlan, status: str, result: Any, error: dict[str, Any] | None
    ) -> None:
        with session_scope() as session:
            runs_repo.finish_run(session, run=plan.run, status=status, result=result, error=error)

    async def _record_code_steps(self, plan: RunPlan, flow_run_id: Any) -> None:
        assert self.client is not None
        try:
            task_runs = await codeflows.read_task_runs(self.client, flow_run_id)
            await asyncio.to_thread(codeflows.record_task_runs, plan, task_runs)
        except Exception:  # noqa: BLE001 - the run's outcome is recorded already
            log.exception("could not record the task runs of run %s", plan.run.id)

    async def _continue(self, item: runs_repo.ClaimedItem, plan: RunPlan) -> bool:
        """A run that started before: back from a long delay, or lost by a dead worker.

        A suspended flow run is resumed in Prefect and executed again (its completed steps
        are skipped); an orphaned one is marked Crashed and the run gets a new flow run
        (returns False: the caller creates it)."""
        assert self.client is not None
        flow_run_id = UUID(plan.run.prefect_flow_run_id or "")
        try:
            flow_run = await self.client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            return False
        state = flow_run.state.type if flow_run.state else None
        if state in (StateType.CANCELLING, StateType.CANCELLED):
            await asyncio.to_thread(self._canceled_in_prefect, item, plan)
            await self._cancel_flow_run(str(flow_run_id))
            return True
        if state == StateType.PAUSED:
            await self.client.resume_flow_run(flow_run_id)
            flow_run = await self.client.read_flow_run(flow_run_id)
            state = flow_run.state.type if flow_run.state else None
        if state in (StateType.SCHEDULED, StateType.PENDING):
            await asyncio.to_thread(self._attached, item, plan, str(flow_run.id))
            await self.execute(plan, flow_run)
            return True
        if state is not None and not flow_run.state.is_final():
            await self._set_prefect_state(
                flow_run_id,
                Crashed(message="its Orbin worker was lost; the run continues in a new flow run"),
            )
        return False

    def _canceled_in_prefect(self, item: runs_repo.ClaimedItem, plan: RunPlan) -> None:
        with session_scope() as session:
            runs_repo.finish_run(
                session,
                run=plan.run,
                status="canceled",
                error={"message": "canceled from Prefect"},
            )
            runs_repo.abandon_unfinished_steps(session, run_id=plan.run.id, message="canceled")
            runs_repo.finish_outbox(session, outbox_id=item.outbox_id)

    async def _cancel_flow_run(self, flow_run_id: str) -> None:
        assert self.client is not None
        try:
            flow_run = await self.client.read_flow_run(UUID(flow_run_id))
        except Exception:  # noqa: BLE001
            return
        if flow_run.state is None or not flow_run.state.is_final():
            await self._set_prefect_state(flow_run.id, Cancelled(message="canceled in Orbin"))

    async def _create_flow_run(self, plan: RunPlan) -> Any:
        assert self.client is not None and self.setup is not None
        run = plan.run
        if run.prefect_flow_run_id and run.status == "pending":
            try:  # dispatched before, e.g. by a worker that died: the same flow run
                return await self.client.read_flow_run(UUID(run.prefect_flow_run_id))
            except Exception:  # noqa: BLE001 - recreate below
                pass
        target = await self.setup.ensure_deployment(
            organization_slug=plan.organization_slug,
            workflow_slug=plan.workflow_slug,
            workflow_id=run.workflow_id,
            version=run.workflow_version,
            concurrency=plan.concurrency,
            flow_name=flow_name(plan.organization_slug, plan.workflow_slug),
        )
        key = run.id if not run.prefect_flow_run_id else f"{run.id}:{run.prefect_flow_run_id}"
        return await self.client.create_running_flow_run(
            flow_id=target.flow_id,
            deployment_id=target.deployment_id,
            work_pool_name=target.work_pool_name,
            name=f"{plan.workflow_slug}-{run.id[-12:]}",
            parameters={"run_id": run.id},
            tags=["orbin", f"org:{plan.organization_slug}", f"workflow:{plan.workflow_slug}"],
            flow_version=str(run.workflow_version),
            idempotency_key=key,
        )

    def _attached(self, item: runs_repo.ClaimedItem, plan: RunPlan, flow_run_id: str) -> None:
        with session_scope() as session:
            runs_repo.attach_flow_run(
                session,
                run_id=plan.run.id,
                flow_run_id=flow_run_id,
                worker_id=self.worker_id,
                lease_ms=self.lease_ms,
            )
            runs_repo.finish_outbox(session, outbox_id=item.outbox_id)
            if plan.run.event_id:
                events_repo.mark_processed_if_dispatched(session, event_pk=plan.run.event_id)

    def _outbox_done(self, item: runs_repo.ClaimedItem, plan: RunPlan | None) -> None:
        with session_scope() as session:
            runs_repo.finish_outbox(session, outbox_id=item.outbox_id)

    def _outbox_retry(self, item: runs_repo.ClaimedItem, error: str, delay_ms: int) -> None:
        with session_scope() as session:
            runs_repo.retry_outbox(
                session, outbox_id=item.outbox_id, error=error, delay_ms=delay_ms
            )

    # --- execution ----------------------------------------------------------------------

    def flow_for(self, plan: RunPlan) -> Any:
        key = (plan.run.workflow_id, plan.run.workflow_version)
        flow = self.flows.get(key)
        if flow is None:
            flow = compile_flow(
                organization_slug=plan.organization_slug,
                workflow_slug=plan.workflow_slug,
                version=plan.run.workflow_version,
                spec=plan.spec,
                default_retry=plan.default_retry,
                runner=self._runner,
                result_storage=self.result_storage,
            )
            self.flows[key] = flow
            if len(self.flows) > 500:
                self.flows.popitem(last=False)
        return flow

    async def _runner(self, run_id: str, tasks: dict[str, Any]) -> Any:
        t = self.timings.pop(run_id, None)
        if t is not None:
            now = time.perf_counter()
            log.info(
                "run %s: plan %.1f ms, create flow run %.1f ms, hand-off %.1f ms, engine %.1f ms",
                run_id,
                (t[1] - t[0]) * 1e3,
                (t[2] - t[1]) * 1e3,
                (t[3] - t[2]) * 1e3,
                (now - t[3]) * 1e3,
            )
        plan = self._plans.pop(run_id, None) or await asyncio.to_thread(load_plan, run_id)
        return await RunExecutor(plan, tasks, self.worker_id).execute(self.flow_runs.get(run_id))

    async def execute(self, plan: RunPlan, flow_run: Any) -> Any:
        gate = self.org_gates.setdefault(
            plan.run.organization_id, asyncio.Semaphore(plan.concurrency)
        )
        async with self.capacity, gate:
            self._plans[plan.run.id] = plan
            self.flow_runs[plan.run.id] = str(flow_run.id)
            try:
                return await run_flow_async(
                    self.flow_for(plan),
                    flow_run=engine_view(flow_run),
                    parameters={"run_id": plan.run.id},
                    return_type="state",
                )
            except asyncio.CancelledError:
                await self._set_prefect_state(flow_run.id, Cancelled(message="canceled in Orbin"))
                raise
            finally:
                self._plans.pop(plan.run.id, None)
                if self.client is not None:
                    self.client.forget(flow_run.id)

    async def _set_prefect_state(self, flow_run_id: Any, state: Any) -> None:
        assert self.client is not None
        try:
            await self.client.set_flow_run_state(flow_run_id, state, force=True)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not set state of flow run %s: %s", flow_run_id, exc)

    # --- upkeep: leases, lost workers, long delays, cancellations, heartbeats -----------

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
                await schedules.tick(self, ticks)  # schedule triggers (orbin_flows/schedules.py)
            except Exception:
                log.exception("maintenance step failed")

    def _renew_leases(self) -> None:
        with session_scope() as session:
            runs_repo.renew_leases(
                session, worker_id=self.worker_id, run_ids=list(self.active), lease_ms=self.lease_ms
            )
            lost = runs_repo.read_runs_taken_over(
                session, worker_id=self.worker_id, run_ids=list(self.flow_runs)
            )
        for run_id in lost:
            executor = EXECUTORS.get(run_id)
            task = self.active.get(run_id)
            if executor is not None and task is not None and not task.done():
                log.warning("run %s was taken over by another worker; stopping here", run_id)
                executor.lost = True
                task.get_loop().call_soon_threadsafe(task.cancel)

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
        from sqlalchemy import select

        from tenancy.models import WorkflowRun

        with session_scope() as session:
            return set(
                session.scalars(
                    select(WorkflowRun.id).where(
                        WorkflowRun.id.in_(run_ids), WorkflowRun.cancel_requested.is_(True)
                    )
                )
            )

    async def _heartbeats(self) -> None:
        assert self.client is not None and self.setup is not None
        pools = set(self.setup._pools)
        for pool in pools:
            try:
                await self.client.send_worker_heartbeat(pool, self.worker_id, 60)
            except _TRANSIENT:
                return


async def crash_flow_run(client: PrefectClient, flow_run_id: str, message: str) -> None:
    await client.set_flow_run_state(UUID(flow_run_id), Crashed(message=message), force=True)
