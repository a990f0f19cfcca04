"""Running a flow run: resume or create it in Prefect, execute the compiled flow here."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.flow_engine import run_flow_async
from prefect.states import Cancelled, Crashed

from orbin_flows.runtime.compiler import compile_flow, flow_name
from orbin_flows.runtime.engine import RunExecutor
from orbin_flows.runtime.fastpath import engine_view
from telemetry import metrics
from tenancy import outbox as outbox_repo
from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy.db import session_scope
from tenancy.run_plans import RunPlan, load_plan

log = logging.getLogger("orbin.worker")


class RunnerMixin:
    """Part of ``Worker`` (orbin_flows/runtime/worker.py): see there for the state it uses."""

    async def _continue(self, item: outbox_repo.ClaimedItem, plan: RunPlan) -> bool:
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

    def _canceled_in_prefect(self, item: outbox_repo.ClaimedItem, plan: RunPlan) -> None:
        with session_scope() as session:
            runs_repo.finish_run(
                session,
                run=plan.run,
                status="canceled",
                error={"message": "canceled from Prefect"},
            )
            steps_repo.abandon_unfinished_steps(
                session, run_id=plan.run.id, message="canceled", status="canceled"
            )
            outbox_repo.finish_outbox(session, outbox_id=item.outbox_id)

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
        with metrics.prefect_call("create_flow_run"):
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
                active=self.executors,
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
        executor = RunExecutor(plan, tasks, self.worker_id, self.executors)
        return await executor.execute(self.flow_runs.get(run_id))

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
                if plan.run.id not in self.handing_over:  # else the next worker crashes it
                    await self._set_prefect_state(
                        flow_run.id, Cancelled(message="canceled in Orbin")
                    )
                raise
            finally:
                self._plans.pop(plan.run.id, None)
                if self.client is not None:
                    self.client.forget(flow_run.id)

    async def _set_prefect_state(self, flow_run_id: Any, state: Any) -> None:
        assert self.client is not None
        try:
            with metrics.prefect_call("set_flow_run_state"):
                await self.client.set_flow_run_state(flow_run_id, state, force=True)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not set state of flow run %s: %s", flow_run_id, exc)


async def crash_flow_run(client: PrefectClient, flow_run_id: str, message: str) -> None:
    await client.set_flow_run_state(UUID(flow_run_id), Crashed(message=message), force=True)
