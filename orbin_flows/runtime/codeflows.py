"""Code workflows: Prefect flows written in Python and rolled out with ``prefect deploy``.

A workflow whose spec names a ``deployment`` (``flow-name/deployment-name``) is triggered and
tracked like any Orbin workflow: each run is a flow run of that deployment, created in the
organization's work pool and executed in-process by the warm worker (the flow is imported from
the deployment's entrypoint, under its working directory); the Orbin run gets the flow's
status and return value, and the flow's task runs become the run's step executions once it
ends. The flow receives the trigger payload as its ``data`` parameter (and the whole trigger
as ``event``, the run id as ``orbin_run_id``, when it declares them).

A deployment outside the organization's work pools is refused: one organization cannot run
another's code. Recovery re-runs a code flow from its start (Orbin cannot skip its tasks).

An organization made with ``orbin org create --code-pool-type kubernetes|ecs|process`` also
has a code pool (``orbin-<slug>_code``) of that type, with its plan's concurrency. A
deployment rolled out there is not run here: its flow run is left Scheduled for that pool's
Prefect worker (a Kubernetes job, an ECS task, a process), and the Orbin run follows the flow
run's state to its end. Orbin's own spec workflows stay on the warm workers.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound

from tenancy import steps as steps_repo
from tenancy.db import session_scope
from tenancy.orgs import code_pool_name, work_pool_name
from tenancy.run_plans import RunPlan


class CodeFlowError(Exception):
    """The code workflow cannot run (missing deployment, wrong pool, import error)."""


_TASK_STATUS = {
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CRASHED": "failed",
    "CANCELLED": "canceled",
    "CANCELLING": "canceled",
    "RUNNING": "running",
}


def _project_dir() -> Path:
    return Path(os.environ.get("ORBIN_PROJECT_DIR") or Path(__file__).resolve().parents[1])


def working_directory(deployment: DeploymentResponse) -> Path:
    """Where the deployment's code lives: its ``set_working_directory`` pull step, its path,
    or the project directory (``ORBIN_PROJECT_DIR``)."""
    for step in deployment.pull_steps or []:
        for name, args in step.items():
            if name.endswith("set_working_directory") and isinstance(args, dict):
                directory = str(args.get("directory") or "")
                if directory and "{{" not in directory:
                    return Path(directory)
    if deployment.path and "{{" not in deployment.path:
        return Path(deployment.path)
    return _project_dir()


class CodeFlows:
    """Deployments looked up once and flows imported once per deployment version."""

    def __init__(self, client: PrefectClient) -> None:
        self.client = client
        self._flows: dict[tuple[str, str], Flow[..., Any]] = {}

    async def deployment_for(self, plan: RunPlan) -> DeploymentResponse:
        name = plan.spec["deployment"]
        try:
            deployment = await self.client.read_deployment_by_name(name)
        except ObjectNotFound as exc:
            raise CodeFlowError(
                f"deployment {name!r} not found in Prefect; roll it out with prefect deploy"
            ) from exc
        pool = work_pool_name(plan.organization_slug)
        if deployment.work_pool_name not in (pool, code_pool_name(plan.organization_slug)):
            raise CodeFlowError(
                f"deployment {name!r} is in work pool {deployment.work_pool_name!r}, "
                f"not in this organization's pool {pool!r}"
            )
        return deployment

    async def flow_for(self, deployment: DeploymentResponse) -> Flow[..., Any]:
        key = (str(deployment.id), str(deployment.updated))
        flow = self._flows.get(key)
        if flow is None:
            if not deployment.entrypoint:
                raise CodeFlowError(f"deployment {deployment.name!r} has no entrypoint")
            path, _, func = deployment.entrypoint.rpartition(":")
            entry = f"{working_directory(deployment) / path}:{func}"
            flow = await asyncio.to_thread(_load, entry)
            self._flows[key] = flow
        return flow


def _load(entrypoint: str) -> Flow[..., Any]:
    from prefect.flows import load_flow_from_entrypoint

    try:
        return load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
    except Exception as exc:  # noqa: BLE001 - shown on the run
        raise CodeFlowError(f"could not import {entrypoint}: {exc}") from exc


def parameters(flow: Flow[..., Any], plan: RunPlan) -> dict[str, Any]:
    trigger = plan.run.trigger_data or {}
    accepted = inspect.signature(flow.fn).parameters
    offered = {"data": trigger.get("data"), "event": trigger, "orbin_run_id": plan.run.id}
    return {k: v for k, v in offered.items() if k in accepted}


def is_submitted(deployment: DeploymentResponse, plan: RunPlan) -> bool:
    """In the organization's code pool: run by that pool's own Prefect workers."""
    return deployment.work_pool_name == code_pool_name(plan.organization_slug)


def submitted_parameters(deployment: DeploymentResponse, plan: RunPlan) -> dict[str, Any]:
    """What ``parameters`` offers, for a flow not imported here: the deployment's parameter
    schema says which it declares (``data`` when it has none)."""
    trigger = plan.run.trigger_data or {}
    offered = {"data": trigger.get("data"), "event": trigger, "orbin_run_id": plan.run.id}
    declared = (deployment.parameter_openapi_schema or {}).get("properties") or {"data": {}}
    return {k: v for k, v in offered.items() if k in declared}


async def follow(client: PrefectClient, flow_run_id: Any, *, every: float = 1.0) -> Any:
    """The flow run's final state, read every ``every`` seconds (it runs elsewhere)."""
    while True:
        flow_run = await client.read_flow_run(flow_run_id)
        if flow_run.state is not None and flow_run.state.is_final():
            return flow_run.state
        await asyncio.sleep(every)


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


async def read_task_runs(
    client: PrefectClient, flow_run_id: Any, *, settle_seconds: float = 3.0
) -> list[TaskRun]:
    """The flow run's task runs, once their final states are recorded (Prefect records task
    runs from events, a moment after the flow returns)."""
    deadline = asyncio.get_running_loop().time() + settle_seconds
    runs: list[TaskRun] = []
    while True:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        settled = runs and all(r.state is not None and r.state.is_final() for r in runs)
        if settled or asyncio.get_running_loop().time() > deadline:
            return runs
        await asyncio.sleep(0.3)


def record_task_runs(plan: RunPlan, task_runs: list[TaskRun]) -> None:
    """The flow's task runs as the run's step executions (one row per task run)."""
    ordered = sorted(task_runs, key=lambda t: t.start_time or t.expected_start_time or t.created)
    with session_scope() as session:
        for tr in ordered:
            state = tr.state.type.value if tr.state else "PENDING"
            rec = steps_repo.start_step(
                session,
                run=plan.run,
                step_id=tr.name,
                step_name=tr.name.rsplit("-", 1)[0],
                step_type="task",
                attempt=max(1, tr.run_count),
                max_attempts=max(1, tr.run_count, (tr.empirical_policy.retries or 0) + 1),
                input=None,
            )
            status = _TASK_STATUS.get(state, "pending")
            error = None
            if status == "failed":
                error = {"message": (tr.state.message if tr.state else None) or state.lower()}
            steps_repo.finish_step(session, step=rec, status=status, error=error)
            steps_repo.set_step_times(
                rec,
                started_at=_ms(tr.start_time),
                completed_at=_ms(tr.end_time),
                duration_ms=int(tr.total_run_time.total_seconds() * 1000),
            )
