"""The runs list and the run debugger's actions: cancel, replay, resume, compare."""

from __future__ import annotations

from orbin_flows import artifacts as artifact_cases
from orbin_flows import results
from orbin_flows import runs as run_cases
from streamlit_app.services.base import Actor, Outcome, act, attempt, read
from tenancy import dashboard_queries as q

RunListRow = q.RunListRow
OutputRef = results.OutputRef
PAGE_SIZE = 50


def run_page(
    organization_id: str,
    *,
    statuses: tuple[str, ...] = (),
    workflow_id: str | None = None,
    since: int | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> list[RunListRow]:
    return read(
        lambda s: q.read_run_page(
            s,
            organization_id=organization_id,
            statuses=statuses,
            workflow_id=workflow_id,
            since=since,
            before=before,
            limit=limit,
        )
    )


def workflow_names(organization_id: str) -> dict[str, str]:
    """id -> name of every workflow, archived ones included (old runs still name them)."""
    rows = read(
        lambda s: q.read_workflow_list(
            s, organization_id=organization_id, now=0, include_archived=True, limit=1000
        )
    )
    return {r.id: r.name for r in rows}


def previous_run_id(organization_id: str, workflow_id: str, run_id: str) -> str | None:
    return read(
        lambda s: q.read_previous_run_id(
            s, organization_id=organization_id, workflow_id=workflow_id, run_id=run_id
        )
    )


def cancel(actor: Actor, run_id: str) -> Outcome:
    return act(actor, "Cancel requested.", lambda s, p: run_cases.cancel_run(s, p, run_id).id)


def replay(actor: Actor, run_id: str) -> Outcome:
    return act(
        actor, "Replayed: a new run started.", lambda s, p: run_cases.replay_run(s, p, run_id).id
    )


def resume(actor: Actor, run_id: str, *, latest_version: bool = False) -> Outcome:
    return act(
        actor,
        "Resumed from the failed step: a new run started.",
        lambda s, p: run_cases.resume_run(s, p, run_id, latest_version=latest_version).id,
    )


def stored_output(output: object) -> results.OutputRef | None:
    """The reference a step's recorded output is, when it was stored out of line."""
    return results.ref_of(output)


def step_output(organization_id: str, run_id: str, step_execution_id: str) -> Outcome:
    """A step's full output, fetched from its storage (the run is the organization's)."""
    return attempt(
        "Loaded.",
        lambda: read(
            lambda s: artifact_cases.read_step_output(
                s, organization_id=organization_id, run_id=run_id, step_id=step_execution_id
            )
        ),
    )
