"""Code workflows: a flow run of their own deployment, executed here, tracked as a run."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from prefect.flow_engine import run_flow_async
from prefect.states import Cancelled, Cancelling, Crashed, Pending

from orbin_flows.runtime import codeflows
from tenancy import outbox as outbox_repo
from tenancy import runs as runs_repo
from tenancy.db import session_scope
from tenancy.run_plans import RunPlan

log = logging.getLogger("orbin.worker")


class CodeRunMixin:
    """Part of ``Worker`` (orbin_flows/runtime/worker.py): see there for the state it uses."""

    async def _run_code_flow(self, item: outbox_repo.ClaimedItem, plan: RunPlan) -> None:
        """A code workflow: a flow run of its own deployment, executed here, tracked as a run."""
        assert self.client is not None
        if self.codeflows is None:
            self.codeflows = codeflows.CodeFlows(self.client)
        try:
            deployment = await self.codeflows.deployment_for(plan)
            if codeflows.is_submitted(deployment, plan):
                await self._submit_code_flow(item, plan, deployment)
                return
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
        await self._code_outcome(plan, flow_run.id, state)

    async def _submit_code_flow(
        self, item: outbox_repo.ClaimedItem, plan: RunPlan, deployment: Any
    ) -> None:
        """A deployment in the organization's code pool: its flow run is left Scheduled for
        that pool's Prefect worker (Kubernetes, ECS, process); the run follows its state. A
        worker that takes the run over follows the same flow run."""
        from prefect.exceptions import ObjectNotFound

        assert self.client is not None
        run = plan.run
        flow_run = None
        if run.prefect_flow_run_id:
            try:
                flow_run = await self.client.read_flow_run(UUID(run.prefect_flow_run_id))
            except ObjectNotFound:
                flow_run = None
        if flow_run is None:
            flow_run = await self.client.create_flow_run_from_deployment(
                deployment.id,
                parameters=codeflows.submitted_parameters(deployment, plan),
                name=f"{plan.workflow_slug}-{run.id[-12:]}",
                tags=["orbin", f"org:{plan.organization_slug}", f"workflow:{plan.workflow_slug}"],
                idempotency_key=f"{run.id}:submitted",
            )
            log.info("run %s submitted to work pool %s", run.id, deployment.work_pool_name)
        await asyncio.to_thread(self._attached, item, plan, str(flow_run.id))
        self.flow_runs[run.id] = str(flow_run.id)
        if not await asyncio.to_thread(self._code_begin, plan):
            await self._set_prefect_state(flow_run.id, Cancelled(message="canceled in Orbin"))
            return
        try:
            state = await codeflows.follow(self.client, flow_run.id)
        except asyncio.CancelledError:
            if run.id not in self.handing_over:  # canceled, not handed over at shutdown
                self._code_finish(plan, "canceled", None, {"message": "canceled"})
                await self._stop_submitted(flow_run.id)
            raise
        await self._code_outcome(plan, flow_run.id, state)

    async def _stop_submitted(self, flow_run_id: Any) -> None:
        """Not started yet: Cancelled; started: Cancelling, so its pool's worker stops it."""
        assert self.client is not None
        try:
            current = (await self.client.read_flow_run(flow_run_id)).state
        except Exception:  # noqa: BLE001
            current = None
        started = current is not None and (current.is_running() or current.is_pending())
        stop = Cancelling if started else Cancelled
        await self._set_prefect_state(flow_run_id, stop(message="canceled in Orbin"))

    async def _code_outcome(self, plan: RunPlan, flow_run_id: Any, state: Any) -> None:
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
        task = asyncio.create_task(self._record_code_steps(plan, flow_run_id))
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
