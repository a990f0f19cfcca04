"""A workflow version materialized as a Prefect flow, each step as a Prefect task.

The flow is named ``<org-slug>.<workflow-slug>`` and its tasks after the steps, so operators
see Orbin runs in the Prefect UI as they see any flow. Retries are Prefect task retries, with
the step's backoff computed by Orbin; a step that cannot succeed (a 4xx) is not retried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Flow, Task
from prefect.cache_policies import NO_CACHE
from prefect.filesystems import LocalFileSystem

from orbin_flows.runtime.active import ActiveRuns
from orbin_flows.runtime.engine import retry_policy, step_index
from tenancy.config import get_settings


def flow_name(organization_slug: str, workflow_slug: str) -> str:
    return f"{organization_slug}.{workflow_slug}"


RESULT_STORAGE_BLOCK = "orbin-results"


async def prepare_result_storage() -> LocalFileSystem:
    """Results are not persisted (Orbin keeps outputs), but naming a saved storage spares the
    engine two reads of the server's default storage on every run."""
    path = Path(get_settings().resolved_home) / "results"
    block = LocalFileSystem(basepath=str(path))
    await block.save(RESULT_STORAGE_BLOCK, overwrite=True)
    return await LocalFileSystem.load(RESULT_STORAGE_BLOCK)


def _make_task(
    step: dict[str, Any], default_retry: dict[str, Any], active: ActiveRuns
) -> Task[..., Any]:
    policy = retry_policy(step, default_retry)
    step_id = step["id"]

    async def step_body(run_id: str, key: str) -> Any:
        return await active[run_id].attempt(key)

    def should_retry(task: Any, task_run: Any, state: Any) -> bool:
        ex = active.for_flow_run(str(task_run.flow_run_id))
        if ex is None:
            return True
        return str(task_run.id) not in ex.fatal

    return Task(
        fn=step_body,
        name=step.get("name") or step_id,
        task_run_name="{key}",  # a loop's items: each[0].shape, each[1].shape, ...
        retries=policy.maxAttempts - 1,
        retry_delay_seconds=[d / 1000 for d in policy.delays_ms()] or 0,
        retry_condition_fn=should_retry,
        persist_result=False,
        cache_policy=NO_CACHE,
        log_prints=False,
    )


def compile_flow(
    *,
    organization_slug: str,
    workflow_slug: str,
    version: int,
    spec: dict[str, Any],
    default_retry: dict[str, Any],
    runner: Any,
    active: ActiveRuns,
    result_storage: Any = None,
) -> Flow[..., Any]:
    """``runner(run_id, tasks)`` is awaited as the flow body (the worker's executor factory);
    the tasks find their run's executor in ``active``."""
    tasks = {sid: _make_task(step, default_retry, active) for sid, step in step_index(spec).items()}

    async def orbin_workflow(run_id: str) -> Any:
        return await runner(run_id, tasks)

    return Flow(
        fn=orbin_workflow,
        name=flow_name(organization_slug, workflow_slug),
        version=str(version),
        persist_result=False,
        result_storage=result_storage,
        validate_parameters=False,
        log_prints=False,
        retries=0,
    )
