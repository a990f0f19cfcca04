"""Run use cases: cancel, replay, resume.

- **cancel**: a run no worker holds (pending, or waiting out a long delay) is canceled at once;
  a running one is flagged, and its worker stops it within about a second (its Prefect flow
  run ends Cancelled). A final run cannot be canceled (409).
- **replay**: a new run of the workflow's *current* version with the same trigger and input;
  ``parentRunId`` names the original.
- **resume**: a new run, linked to the old one by ``parentRunId``, that continues a failed,
  timed-out or canceled run from where it stopped. The old run's completed steps are carried
  over (copied as ``completed``, with their outputs) and are not executed again; the first
  step executed is the one that failed. It uses the old run's version, so carried outputs
  match the steps, unless ``latestVersion`` is asked for (e.g. after fixing the failing
  step). A new run rather than the same one: the failed run stays as it happened (its status,
  error and attempts), and the resumed attempt is counted and watched like any run.
"""

from __future__ import annotations

from tenancy import history as history_repo
from tenancy import outbox as outbox_repo
from tenancy import runs as runs_repo
from tenancy import workflows as workflows_repo
from tenancy.actors import Actor
from tenancy.audit import record_audit
from tenancy.db import Session
from tenancy.errors import Conflict
from tenancy.principal import Principal
from tenancy.runs import WorkflowRun
from tenancy.usage import reserve_executions

RESUMABLE = ("failed", "timed_out", "canceled")


def cancel_run(session: Session, principal: Principal, run_id: str) -> WorkflowRun:
    principal.require("runs:write")
    run = runs_repo.read_run(session, organization_id=principal.organization_id, run_id=run_id)
    if run.status in runs_repo.RUN_FINAL:
        raise Conflict(f"the run is already {run.status.replace('_', ' ')}")
    if runs_repo.cancel_if_unclaimed(session, run=run, message="canceled"):
        if run.prefect_flow_run_id:  # a worker makes its Prefect flow run follow
            outbox_repo.enqueue_run(session, run=run)
    elif not runs_repo.request_cancel(session, run=run):
        runs_repo.reload_run(session, run)
        raise Conflict(f"the run is already {run.status.replace('_', ' ')}")
    record_audit(session, principal, "run.canceled", "run", run.id)
    return run


def _new_run(
    session: Session, principal: Principal, old: WorkflowRun, *, version: int | None
) -> WorkflowRun:
    workflow = workflows_repo.read_workflow(
        session, organization_id=principal.organization_id, workflow_id=old.workflow_id
    )
    if workflow.status == "archived":
        raise Conflict("the workflow is archived; it cannot run")
    reserve_executions(session, organization_id=principal.organization_id, count=1)
    return runs_repo.create_run(
        session,
        organization_id=principal.organization_id,
        workflow=workflow,
        trigger_type=old.trigger_type,
        trigger_data=old.trigger_data,
        parent_run_id=old.id,
        version=version,
        actor=Actor.of(principal),
    )


def replay_run(session: Session, principal: Principal, run_id: str) -> WorkflowRun:
    principal.require("runs:write")
    old = runs_repo.read_run(session, organization_id=principal.organization_id, run_id=run_id)
    run = _new_run(session, principal, old, version=None)
    record_audit(session, principal, "run.replayed", "run", run.id, {"from": old.id})
    return run


def resume_run(
    session: Session, principal: Principal, run_id: str, *, latest_version: bool = False
) -> WorkflowRun:
    principal.require("runs:write")
    old = runs_repo.read_run(session, organization_id=principal.organization_id, run_id=run_id)
    if old.status not in RESUMABLE:
        raise Conflict(
            f"only a failed, timed out or canceled run can be resumed; this one is {old.status}"
        )
    workflow = workflows_repo.read_workflow(
        session, organization_id=principal.organization_id, workflow_id=old.workflow_id
    )
    if workflow.entrypoint:
        raise Conflict("a code workflow starts over: replay the run instead of resuming it")
    run = _new_run(
        session, principal, old, version=None if latest_version else old.workflow_version
    )
    carried = history_repo.copy_completed_steps(session, source=old, target=run)
    record_audit(
        session, principal, "run.resumed", "run", run.id, {"from": old.id, "carried": carried}
    )
    return run
