"""The deployments' entrypoint, for a plain Prefect process worker picking up an Orbin run.

Orbin's warm worker never loads this: it runs compiled flows in-process. A standard
``prefect worker start --pool orbin-<org>`` can still execute a flow run of these
deployments through this flow, which looks the run up and executes it the same way.
"""

from __future__ import annotations

from typing import Any

from prefect import flow


@flow(name="orbin-workflow", persist_result=False, validate_parameters=False)
async def orbin_workflow(run_id: str) -> Any:
    from prefect.context import FlowRunContext

    from orbin_flows.runtime.active import ActiveRuns
    from orbin_flows.runtime.compiler import compile_flow
    from orbin_flows.runtime.engine import RunExecutor
    from tenancy.run_plans import load_plan

    plan = load_plan(run_id)
    ctx = FlowRunContext.get()
    holder: dict[str, Any] = {}
    active = ActiveRuns()

    async def runner(rid: str, tasks: dict[str, Any]) -> Any:
        holder["tasks"] = tasks
        return None

    compiled = compile_flow(
        organization_slug=plan.organization_slug,
        workflow_slug=plan.workflow_slug,
        version=plan.run.workflow_version,
        spec=plan.spec,
        default_retry=plan.default_retry,
        runner=runner,
        active=active,
    )
    await compiled.fn(run_id)
    flow_run_id = str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    executor = RunExecutor(plan, holder["tasks"], "prefect-process-worker", active)
    return await executor.execute(flow_run_id)
