"""Prefect artifacts of a finished run: a markdown summary and a table of its step attempts,
on its flow run, for operators in the Prefect UI (``GET /v1/runs/{id}/artifacts`` lists them).

They name steps, statuses and sizes, never a step's input or output: Prefect's UI is the
operators', and tenant data stays in Orbin. Best effort: a run's outcome is already recorded,
and an artifact that cannot be written is logged, not a failed run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate

from orbin_flows import results
from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy.config import get_settings
from tenancy.db import read_scope
from tenancy.runs import RUN_FINAL

if TYPE_CHECKING:
    from orbin_flows.runtime.engine import RunExecutor

log = logging.getLogger("orbin.artifacts")


def _size(output: Any) -> str:
    ref = results.ref_of(output)
    if ref is not None:
        return f"{ref.bytes} B, stored ({ref.storage})"
    return "" if output is None else f"{len(results.dumps(output))} B"


def build_artifacts(executor: RunExecutor) -> tuple[str, list[dict[str, Any]]] | None:
    """(markdown, table rows) of the run as recorded now; None while it is not finished."""
    run = executor.run
    with read_scope() as session:
        row = runs_repo.read_run(session, organization_id=run.organization_id, run_id=run.id)
        if row.status not in RUN_FINAL:
            return None
        attempts = steps_repo.read_step_executions(
            session, organization_id=run.organization_id, run_id=run.id
        )
        status, duration = row.status, row.duration_ms
        error = (row.error or {}).get("message") if row.status != "completed" else None
        table = [
            {
                "step": a.step_id,
                "name": a.step_name,
                "type": a.step_type,
                "status": a.status,
                "attempt": a.attempt,
                "durationMs": a.duration_ms,
                "output": _size(a.output) if a.status == "completed" else "",
            }
            for a in attempts
        ]
        stored = [(a.step_id, results.ref_of(a.output)) for a in attempts]
    stored = [(step_id, ref) for step_id, ref in stored if ref is not None]
    lines = [
        f"# Orbin run `{run.id}`",
        "",
        f"- organization: `{executor.plan.organization_slug}`",
        f"- workflow: `{executor.plan.workflow_slug}` (version {run.workflow_version})",
        f"- status: **{status}**" + (f" in {duration} ms" if duration is not None else ""),
        f"- step attempts: {len(attempts)}",
        f"- outputs stored out of line: {len(stored)}",
    ]
    if error:
        lines.append(f"- error: {error[:300]}")
    for step_id, ref in stored:
        lines.append(f"  - `{step_id}`: {ref.bytes} B at `{ref.storage}` / `{ref.key}`")
    return "\n".join(lines), table


async def publish_run_artifacts(executor: RunExecutor, flow_run_id: str | None) -> None:
    if not flow_run_id or executor.lost or not get_settings().run_artifacts:
        return
    task = asyncio.current_task()
    if task is not None and task.cancelling():  # a worker stopping: no new calls
        return
    try:
        built = await asyncio.to_thread(build_artifacts, executor)
        if built is None:
            return
        markdown, table = built
        fr = uuid.UUID(str(flow_run_id))
        async with get_client() as client:
            await client.create_artifact(
                ArtifactCreate(
                    flow_run_id=fr,
                    type="markdown",
                    data=markdown,
                    description=f"Orbin run {executor.run.id}: summary",
                )
            )
            await client.create_artifact(
                ArtifactCreate(
                    flow_run_id=fr,
                    type="table",
                    data=json.dumps(table),  # as prefect.artifacts.create_table_artifact
                    description=f"Orbin run {executor.run.id}: step attempts",
                )
            )
    except Exception:  # noqa: BLE001 - the run's outcome is recorded already
        log.warning("could not create the run's Prefect artifacts", exc_info=True)
