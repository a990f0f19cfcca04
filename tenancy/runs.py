"""Workflow runs and step executions, and the outbox that hands new runs to the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from tenancy.changes import OUTBOX_CHANNEL, publish, publish_change
from tenancy.clock import new_id, now_ms
from tenancy.models import OutboxItem, StepExecution, Workflow, WorkflowRun
from tenancy.scoping import get_scoped, scoped

RUN_FINAL = frozenset({"completed", "failed", "canceled", "timed_out"})
RUN_STATUSES = ("pending", "running", "completed", "failed", "canceled", "timed_out")


def create_run(
    session: Session,
    *,
    organization_id: str,
    workflow: Workflow,
    trigger_type: str,
    trigger_data: Any,
    event_pk: str | None = None,
    parent_run_id: str | None = None,
    version: int | None = None,
) -> WorkflowRun:
    """A pending run plus its outbox item, in the caller's transaction: both or neither."""
    run = WorkflowRun(
        id=new_id(),
        organization_id=organization_id,
        workflow_id=workflow.id,
        workflow_version=version or workflow.version,
        status="pending",
        trigger_type=trigger_type,
        trigger_data=trigger_data,
        event_id=event_pk,
        parent_run_id=parent_run_id,
    )
    session.add(run)
    session.flush()
    session.add(OutboxItem(organization_id=organization_id, run_id=run.id))
    publish(session, OUTBOX_CHANNEL, {"run": run.id})
    publish_change(
        session,
        organization_id=organization_id,
        kind="run",
        obj_id=run.id,
        status="pending",
        workflowId=workflow.id,
    )
    return run


_PG_INSERT_RUNS = (
    "INSERT INTO workflow_runs (id, organization_id, workflow_id, workflow_version, status, "
    "trigger_type, trigger_data, event_id, cancel_requested, created_at) "
    "SELECT id, organization_id, workflow_id, workflow_version, 'pending', trigger_type, "
    "trigger_data, event_id, false, created_at FROM jsonb_to_recordset(%s::jsonb) AS r("
    "id varchar, organization_id varchar, workflow_id varchar, workflow_version int, "
    "trigger_type varchar, trigger_data jsonb, event_id varchar, created_at bigint)"
)
_PG_INSERT_OUTBOX = (
    "INSERT INTO outbox (organization_id, run_id, status, attempts, available_at, created_at) "
    "SELECT e->>'organization_id', e->>'id', 'pending', 0, %s, %s "
    "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(e, n) ORDER BY r.n"
)


def insert_runs(session: Session, *, rows: list[dict[str, Any]]) -> None:
    """Many pending runs and their outbox items (in this order) in two statements.

    Each row has the columns of a pending run (id, organization_id, workflow_id,
    workflow_version, trigger_type, trigger_data, event_id, created_at); the caller
    announces them.
    """
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from tenancy.events import json_text

        now = now_ms()
        doc = json_text([{"created_at": now, **r} for r in rows])
        conn = session.connection()
        conn.exec_driver_sql(_PG_INSERT_RUNS, (doc,))
        conn.exec_driver_sql(_PG_INSERT_OUTBOX, (now, now, doc))
        return
    session.execute(insert(WorkflowRun), [{"status": "pending", **r} for r in rows])
    session.execute(
        insert(OutboxItem),
        [{"organization_id": r["organization_id"], "run_id": r["id"]} for r in rows],
    )


def read_run(session: Session, *, organization_id: str, run_id: str) -> WorkflowRun:
    return get_scoped(session, WorkflowRun, organization_id, run_id, label="run")


def read_runs(
    session: Session,
    *,
    organization_id: str,
    limit: int = 50,
    before: str | None = None,
    status: str | None = None,
    workflow_id: str | None = None,
) -> list[WorkflowRun]:
    q = scoped(WorkflowRun, organization_id)
    if status:
        q = q.where(WorkflowRun.status == status)
    if workflow_id:
        q = q.where(WorkflowRun.workflow_id == workflow_id)
    if before:
        q = q.where(WorkflowRun.id < before)
    return list(session.scalars(q.order_by(WorkflowRun.id.desc()).limit(limit)))


def count_runs_by_status(
    session: Session, *, organization_id: str, since: int | None = None
) -> dict[str, int]:
    q = select(WorkflowRun.status, func.count()).where(
        WorkflowRun.organization_id == organization_id
    )
    if since is not None:
        q = q.where(WorkflowRun.created_at >= since)
    return dict(session.execute(q.group_by(WorkflowRun.status)).tuples().all())


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


def read_runs_for_event(
    session: Session, *, organization_id: str, event_pk: str
) -> list[WorkflowRun]:
    return list(
        session.scalars(
            scoped(WorkflowRun, organization_id)
            .where(WorkflowRun.event_id == event_pk)
            .order_by(WorkflowRun.id)
        )
    )


# --- the engine's side -----------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedItem:
    outbox_id: int
    run_id: str
    organization_id: str
    attempts: int


def claim_outbox(
    session: Session, *, worker_id: str, limit: int, lease_ms: int
) -> list[ClaimedItem]:
    """Take the oldest due items; a claim left unfinished (worker died) is due again later."""
    now = now_ms()
    q = (
        select(OutboxItem)
        .where(OutboxItem.status.in_(("pending", "claimed")), OutboxItem.available_at <= now)
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    items = list(session.scalars(q))
    for item in items:
        item.status = "claimed"
        item.claimed_by = worker_id
        item.attempts += 1
        item.available_at = now + lease_ms
    session.flush()
    return [ClaimedItem(i.id, i.run_id, i.organization_id, i.attempts) for i in items]


def finish_outbox(session: Session, *, outbox_id: int) -> None:
    session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id).values(status="done"))


def retry_outbox(session: Session, *, outbox_id: int, error: str, delay_ms: int) -> None:
    session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == outbox_id)
        .values(status="pending", last_error=error[:2000], available_at=now_ms() + delay_ms)
    )


def count_pending_outbox(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.status != "done")
        )
        or 0
    )


def attach_flow_run(
    session: Session, *, run_id: str, flow_run_id: str, worker_id: str, lease_ms: int
) -> None:
    """Record the run's flow run, and this worker's lease unless the run moved on meanwhile.

    The worker records this beside the run's start, not before it: by the time it lands the
    run may be suspended (a long delay) or finished, and must not look held by this worker.
    """
    session.execute(
        update(WorkflowRun).where(WorkflowRun.id == run_id).values(prefect_flow_run_id=flow_run_id)
    )
    session.execute(
        update(WorkflowRun)
        .where(
            WorkflowRun.id == run_id,
            WorkflowRun.status.in_(("pending", "running")),
            WorkflowRun.resume_at.is_(None),
        )
        .values(worker_id=worker_id, lease_expires_at=now_ms() + lease_ms)
    )


def mark_run_running(session: Session, *, run: WorkflowRun, worker_id: str, lease_ms: int) -> bool:
    """The run starts (or continues) on this worker; False if it was canceled meanwhile."""
    now = now_ms()
    values: dict[str, Any] = {
        "status": "running",
        "worker_id": worker_id,
        "lease_expires_at": now + lease_ms,
        "resume_at": None,
    }
    if run.started_at is None:
        values["started_at"] = now
        run.started_at = now
    res = session.execute(
        update(WorkflowRun)
        .where(
            WorkflowRun.id == run.id,
            WorkflowRun.status.in_(("pending", "running")),
            WorkflowRun.cancel_requested.is_not(True),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return False
    run.status = "running"
    publish_change(
        session, organization_id=run.organization_id, kind="run", obj_id=run.id, status="running"
    )
    return True


def finish_run(
    session: Session,
    *,
    run: WorkflowRun,
    status: str,
    result: Any = None,
    error: dict[str, Any] | None = None,
) -> None:
    """Record the outcome, unless the run already has one (it never changes afterwards)."""
    now = now_ms()
    started = run.started_at or now
    res = session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.id == run.id, WorkflowRun.status.not_in(RUN_FINAL))
        .values(
            status=status,
            result=result,
            error=error,
            completed_at=now,
            duration_ms=now - started,
            lease_expires_at=None,
            resume_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return
    run.status = status
    publish_change(
        session, organization_id=run.organization_id, kind="run", obj_id=run.id, status=status
    )


def renew_leases(session: Session, *, worker_id: str, run_ids: list[str], lease_ms: int) -> None:
    if run_ids:
        session.execute(
            update(WorkflowRun)
            .where(WorkflowRun.id.in_(run_ids), WorkflowRun.worker_id == worker_id)
            .values(lease_expires_at=now_ms() + lease_ms)
        )


def read_runs_taken_over(session: Session, *, worker_id: str, run_ids: list[str]) -> list[str]:
    """Runs this worker is executing that are no longer its own: its lease expired (a long
    stall) and the run was requeued for another worker. It must stop them, silently."""
    if not run_ids:
        return []
    return list(
        session.scalars(
            select(WorkflowRun.id).where(
                WorkflowRun.id.in_(run_ids),
                WorkflowRun.status == "running",
                WorkflowRun.resume_at.is_(None),
                or_(WorkflowRun.worker_id.is_(None), WorkflowRun.worker_id != worker_id),
            )
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


def suspend_run(session: Session, *, run: WorkflowRun, resume_at: int) -> None:
    """A long delay: the run stays ``running`` but no worker holds it until ``resume_at``."""
    session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.id == run.id)
        .values(resume_at=resume_at, worker_id=None, lease_expires_at=None)
    )
    run.resume_at = resume_at


def read_due_suspended_runs(session: Session, *, limit: int = 100) -> list[WorkflowRun]:
    return list(
        session.scalars(
            select(WorkflowRun)
            .where(
                WorkflowRun.status == "running",
                WorkflowRun.resume_at.is_not(None),
                WorkflowRun.resume_at <= now_ms(),
                WorkflowRun.worker_id.is_(None),
            )
            .limit(limit)
        )
    )


def read_orphaned_runs(session: Session, *, grace_ms: int, limit: int = 100) -> list[WorkflowRun]:
    """Runs whose worker stopped renewing its lease (killed, or its machine lost)."""
    return list(
        session.scalars(
            select(WorkflowRun)
            .where(
                # pending too: a worker can die between taking a run and starting it.
                WorkflowRun.status.in_(("pending", "running")),
                WorkflowRun.lease_expires_at.is_not(None),
                WorkflowRun.lease_expires_at < now_ms() - grace_ms,
            )
            .limit(limit)
        )
    )


def requeue_run(session: Session, *, run: WorkflowRun) -> bool:
    """Hand a lost or due run to the engine again, once: a conditional update decides which
    of several workers that saw it does so (the others see no row change and do nothing).

    ``run`` is the row as the caller read it: it is requeued only if it is still exactly
    so (same worker, same lease, same resume time)."""
    res = session.execute(
        update(WorkflowRun)
        .where(
            WorkflowRun.id == run.id,
            WorkflowRun.status == run.status,
            WorkflowRun.status.in_(("pending", "running")),
            _same(WorkflowRun.worker_id, run.worker_id),
            _same(WorkflowRun.lease_expires_at, run.lease_expires_at),
            _same(WorkflowRun.resume_at, run.resume_at),
        )
        .values(worker_id=None, lease_expires_at=None, resume_at=None)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return False
    session.add(OutboxItem(organization_id=run.organization_id, run_id=run.id))
    publish(session, OUTBOX_CHANNEL, {"run": run.id})
    return True


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def enqueue_run(session: Session, *, run: WorkflowRun) -> None:
    """A new outbox item for a run (e.g. a canceled one whose Prefect flow run must follow)."""
    session.add(OutboxItem(organization_id=run.organization_id, run_id=run.id))
    publish(session, OUTBOX_CHANNEL, {"run": run.id})


def request_cancel(session: Session, *, run: WorkflowRun) -> bool:
    """Flag a run for cancellation; True if it was not final (a worker will stop it)."""
    res = session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.id == run.id, WorkflowRun.status.not_in(RUN_FINAL))
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    run.cancel_requested = True
    return res.rowcount == 1


def cancel_if_unclaimed(session: Session, *, run: WorkflowRun, message: str) -> bool:
    """Cancel at once a run no worker executes (pending, or waiting out a long delay)."""
    now = now_ms()
    res = session.execute(
        update(WorkflowRun)
        .where(
            WorkflowRun.id == run.id,
            WorkflowRun.worker_id.is_(None),
            WorkflowRun.status.in_(("pending", "running")),
        )
        .values(
            status="canceled",
            cancel_requested=True,
            error={"message": message},
            completed_at=now,
            duration_ms=now - (run.started_at or now),
            resume_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return False
    session.execute(
        update(StepExecution)
        .where(
            StepExecution.workflow_run_id == run.id,
            StepExecution.status.in_(("pending", "running", "retrying")),
        )
        .values(status="failed", error={"message": message}, completed_at=now, next_retry_at=None)
    )
    run.status = "canceled"
    run.cancel_requested = True
    run.error = {"message": message}
    run.completed_at = now
    run.resume_at = None
    publish_change(
        session, organization_id=run.organization_id, kind="run", obj_id=run.id, status="canceled"
    )
    return True


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


def abandon_unfinished_steps(session: Session, *, run_id: str, message: str) -> None:
    """Attempts left running (a lost worker, a cancellation) are over: failed with why."""
    session.execute(
        update(StepExecution)
        .where(
            StepExecution.workflow_run_id == run_id,
            StepExecution.status.in_(("running", "retrying")),
        )
        .values(
            status="failed", error={"message": message}, completed_at=now_ms(), next_retry_at=None
        )
    )


@dataclass(frozen=True)
class StepHistory:
    """What a run already did, read when it (re)starts on a worker."""

    completed: dict[str, Any]
    attempts: dict[str, int]
    waiting: dict[str, tuple[str, int]]


def read_step_history(session: Session, *, organization_id: str, run_id: str) -> StepHistory:
    rows = session.execute(
        select(
            StepExecution.id,
            StepExecution.step_id,
            StepExecution.status,
            StepExecution.output,
            StepExecution.next_retry_at,
        )
        .where(
            StepExecution.organization_id == organization_id,
            StepExecution.workflow_run_id == run_id,
        )
        .order_by(StepExecution.created_at, StepExecution.attempt)
    ).all()
    completed: dict[str, Any] = {}
    attempts: dict[str, int] = {}
    waiting: dict[str, tuple[str, int]] = {}
    for row_id, step_id, status, output, next_at in rows:
        if status in ("completed", "skipped"):
            completed[step_id] = output
        elif status == "pending" and next_at is not None:
            waiting[step_id] = (row_id, next_at)
        else:
            attempts[step_id] = attempts.get(step_id, 0) + 1
    return StepHistory(completed, attempts, waiting)


def copy_completed_steps(session: Session, *, source: WorkflowRun, target: WorkflowRun) -> int:
    """Carry a failed run's completed steps into the run that resumes it (not executed again)."""
    rows = session.scalars(
        scoped(StepExecution, source.organization_id)
        .where(
            StepExecution.workflow_run_id == source.id,
            StepExecution.status.in_(("completed", "skipped")),
        )
        .order_by(StepExecution.created_at)
    ).all()
    for r in rows:
        session.add(
            StepExecution(
                id=new_id(),
                organization_id=r.organization_id,
                workflow_run_id=target.id,
                step_id=r.step_id,
                step_name=r.step_name,
                step_type=r.step_type,
                status=r.status,
                attempt=r.attempt,
                max_attempts=r.max_attempts,
                input=r.input,
                output=r.output,
                started_at=r.started_at,
                completed_at=r.completed_at,
                duration_ms=r.duration_ms,
                created_at=r.created_at,
            )
        )
    session.flush()
    return len(rows)


# --- read models for the dashboard -----------------------------------------------------


def read_runs_with_workflow_names(
    session: Session,
    *,
    organization_id: str,
    limit: int = 50,
    statuses: tuple[str, ...] = (),
) -> list[tuple[WorkflowRun, str]]:
    """The org's newest runs, each with its workflow's name (one query, newest first)."""
    q = (
        scoped(WorkflowRun, organization_id)
        .join(
            Workflow,
            (Workflow.id == WorkflowRun.workflow_id)
            & (Workflow.organization_id == organization_id),
        )
        .add_columns(Workflow.name)
    )
    if statuses:
        q = q.where(WorkflowRun.status.in_(statuses))
    rows = session.execute(q.order_by(WorkflowRun.id.desc()).limit(limit))
    return [(run, name) for run, name in rows.tuples()]
