"""Step executions: one row per attempt of a step of a run."""

from __future__ import annotations

from typing import Any, Literal, get_args

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tenancy.changes import publish_change
from tenancy.clock import new_id, now_ms
from tenancy.models import StepExecution, WorkflowRun
from tenancy.scoping import scoped

StepStatus = Literal["pending", "running", "retrying", "completed", "failed", "canceled", "skipped"]
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
UNFINISHED = ("running", "retrying")


def read_step_executions(
    session: Session, *, organization_id: str, run_id: str
) -> list[StepExecution]:
    return list(
        session.scalars(
            scoped(StepExecution, organization_id)
            .where(StepExecution.workflow_run_id == run_id)
            .order_by(StepExecution.created_at, StepExecution.attempt)
        )
    )


def start_step(
    session: Session,
    *,
    run: WorkflowRun,
    step_id: str,
    step_name: str,
    step_type: str,
    attempt: int,
    max_attempts: int,
    input: Any,
) -> StepExecution:
    now = now_ms()
    step = StepExecution(
        id=new_id(),
        organization_id=run.organization_id,
        workflow_run_id=run.id,
        step_id=step_id,
        step_name=step_name,
        step_type=step_type,
        status="running",
        attempt=attempt,
        max_attempts=max_attempts,
        input=input,
        started_at=now,
        created_at=now,
    )
    session.add(step)
    session.flush()
    publish_change(
        session,
        organization_id=run.organization_id,
        kind="step",
        obj_id=step.id,
        runId=run.id,
        stepId=step_id,
        status="running",
        attempt=attempt,
    )
    return step


def finish_step(
    session: Session,
    *,
    step: StepExecution,
    status: str,
    output: Any = None,
    error: dict[str, Any] | None = None,
    next_retry_at: int | None = None,
) -> None:
    values = step_finish_values(
        started_at=step.started_at,
        status=status,
        output=output,
        error=error,
        next_retry_at=next_retry_at,
    )
    for name, value in values.items():
        setattr(step, name, value)
    write_step_finish(
        session,
        step_exec_id=step.id,
        organization_id=step.organization_id,
        run_id=step.workflow_run_id,
        step_id=step.step_id,
        attempt=step.attempt,
        values=values,
    )


def step_finish_values(
    *,
    started_at: int | None,
    status: str,
    output: Any = None,
    error: dict[str, Any] | None = None,
    next_retry_at: int | None = None,
) -> dict[str, Any]:
    """The columns an attempt's end sets; taken when it ends, whenever the row is written."""
    now = now_ms()
    return {
        "status": status,
        "output": output,
        "error": error,
        "next_retry_at": next_retry_at,
        "completed_at": now,
        "duration_ms": now - (started_at or now),
    }


def write_step_finish(
    session: Session,
    *,
    step_exec_id: str,
    organization_id: str,
    run_id: str,
    step_id: str,
    attempt: int,
    values: dict[str, Any],
) -> None:
    session.execute(
        update(StepExecution)
        .where(StepExecution.id == step_exec_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    publish_change(
        session,
        organization_id=organization_id,
        kind="step",
        obj_id=step_exec_id,
        runId=run_id,
        stepId=step_id,
        status=values["status"],
        attempt=attempt,
    )


def completed_step_outputs(
    session: Session, *, organization_id: str, run_id: str
) -> dict[str, Any]:
    """Outputs of the steps a run already completed (a resumed or recovered run skips them)."""
    rows = session.execute(
        select(StepExecution.step_id, StepExecution.output)
        .where(
            StepExecution.organization_id == organization_id,
            StepExecution.workflow_run_id == run_id,
            StepExecution.status.in_(("completed", "skipped")),
        )
        .order_by(StepExecution.created_at)
    )
    return dict(rows.tuples().all())


def settle_retrying_steps(session: Session, *, run_id: str, step_id: str) -> None:
    """The attempt waiting for a retry is over once the next one starts: it failed."""
    session.execute(
        update(StepExecution)
        .where(
            StepExecution.workflow_run_id == run_id,
            StepExecution.step_id == step_id,
            StepExecution.status == "retrying",
        )
        .values(status="failed", next_retry_at=None)
    )


def abandon_unfinished_steps(
    session: Session, *, run_id: str, message: str, status: str = "failed"
) -> None:
    """Attempts left unfinished are over, with why: ``failed`` (a lost worker, a timeout) or
    ``canceled`` (the run was; a long delay's waiting step included)."""
    unfinished = ("running", "retrying", "pending") if status == "canceled" else UNFINISHED
    session.execute(
        update(StepExecution)
        .where(StepExecution.workflow_run_id == run_id, StepExecution.status.in_(unfinished))
        .values(
            status=status, error={"message": message}, completed_at=now_ms(), next_retry_at=None
        )
    )


def record_waiting_step(
    session: Session, *, run: WorkflowRun, step_id: str, step_name: str, input: Any, resume_at: int
) -> StepExecution:
    """A long delay's step: pending until ``resume_at`` (the run is suspended meanwhile)."""
    rec = start_step(
        session,
        run=run,
        step_id=step_id,
        step_name=step_name,
        step_type="delay",
        attempt=1,
        max_attempts=1,
        input=input,
    )
    finish_step(
        session,
        step=rec,
        status="pending",
        output={"resumeAt": resume_at},
        next_retry_at=resume_at,
    )
    rec.completed_at = None
    rec.duration_ms = None
    return rec


def resume_waiting_step(session: Session, *, step_pk: str) -> StepExecution | None:
    """The waiting step a resumed run picks up again, running once more (detached)."""
    rec = session.get(StepExecution, step_pk)
    if rec is not None:
        rec.status = "running"
        rec.next_retry_at = None
        session.flush()
        session.expunge(rec)
    return rec


def detach(session: Session, rec: StepExecution) -> None:
    """Keep a step row usable after its session closes."""
    session.expunge(rec)


def set_step_times(
    rec: StepExecution, *, started_at: int | None, completed_at: int | None, duration_ms: int
) -> None:
    """Times taken from elsewhere (a code flow's task run); None keeps what the row has."""
    rec.started_at = started_at or rec.started_at
    rec.completed_at = completed_at or rec.completed_at
    rec.duration_ms = duration_ms
