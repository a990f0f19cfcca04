"""Workflow runs and step executions, and the outbox that hands new runs to the engine."""

from __future__ import annotations

from typing import Any, Literal, get_args

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from tenancy.actors import NOBODY, Actor
from tenancy.changes import OUTBOX_CHANNEL, publish, publish_change
from tenancy.clock import new_id, now_ms
from tenancy.models import OutboxItem, Workflow, WorkflowRun
from tenancy.scoping import get_scoped, scoped
from tenancy.steps import abandon_unfinished_steps

RunStatus = Literal[
    "pending", "running", "suspended", "completed", "failed", "canceled", "timed_out"
]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
RUN_FINAL = frozenset({"completed", "failed", "canceled", "timed_out"})


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
    actor: Actor = NOBODY,
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
        created_by=actor.user_id,
        created_by_key_id=actor.key_id,
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
    "trigger_type, trigger_data, event_id, cancel_requested, created_at, trace_parent, "
    "created_by, created_by_key_id) "
    "SELECT id, organization_id, workflow_id, workflow_version, 'pending', trigger_type, "
    "trigger_data, event_id, false, created_at, trace_parent, created_by, created_by_key_id "
    "FROM jsonb_to_recordset(%s::jsonb) "
    "AS r(id varchar, organization_id varchar, workflow_id varchar, workflow_version int, "
    "trigger_type varchar, trigger_data jsonb, event_id varchar, created_at bigint, "
    "trace_parent varchar, created_by varchar, created_by_key_id varchar)"
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


def _announce(session: Session, run: WorkflowRun, status: str, **extra: Any) -> None:
    """Tell live views of the run's new status (delivered once the transaction commits)."""
    org = run.organization_id
    publish_change(session, organization_id=org, kind="run", obj_id=run.id, status=status, **extra)


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
    """The run starts (or continues) on this worker; False if it was canceled meanwhile. A
    ``suspended`` one started early (a lost worker's outbox item) suspends again at its delay."""
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
            WorkflowRun.status.in_(("pending", "running", "suspended")),
            WorkflowRun.cancel_requested.is_not(True),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return False
    run.status = "running"
    _announce(session, run, "running")
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
    _announce(session, run, status)
    if status in ("failed", "timed_out"):  # once: only the transition above gets here
        from tenancy.identity.notifications import notify_run_failed

        notify_run_failed(session, run, error)


def suspend_run(session: Session, *, run: WorkflowRun, resume_at: int) -> None:
    """A long delay: the run is ``suspended``, held by no worker, until ``resume_at``; then
    it is requeued and ``running`` again (``requeue_run``). Canceled meanwhile: unchanged."""
    res = session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.id == run.id, WorkflowRun.status.in_(("pending", "running")))
        .values(status="suspended", resume_at=resume_at, worker_id=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return
    run.status, run.resume_at = "suspended", resume_at
    _announce(session, run, "suspended", resumeAt=resume_at)


def read_runs_where(session: Session, *conditions: Any, limit: int) -> list[WorkflowRun]:
    """At most ``limit`` runs of any organization that meet ``conditions`` (the platform's
    own jobs: recovery, resumption; never a tenant's request)."""
    return list(session.scalars(select(WorkflowRun).where(*conditions).limit(limit)))


def read_due_suspended_runs(session: Session, *, limit: int = 100) -> list[WorkflowRun]:
    return read_runs_where(
        session,
        WorkflowRun.status == "suspended",
        WorkflowRun.resume_at.is_not(None),
        WorkflowRun.resume_at <= now_ms(),
        WorkflowRun.worker_id.is_(None),
        limit=limit,
    )


def read_orphaned_runs(session: Session, *, grace_ms: int, limit: int = 100) -> list[WorkflowRun]:
    """Runs whose worker stopped renewing its lease (killed, or its machine lost)."""
    return read_runs_where(
        session,
        # pending too: a worker can die between taking a run and starting it.
        WorkflowRun.status.in_(("pending", "running")),
        WorkflowRun.lease_expires_at.is_not(None),
        WorkflowRun.lease_expires_at < now_ms() - grace_ms,
        limit=limit,
    )


def requeue_run(session: Session, *, run: WorkflowRun) -> bool:
    """Hand a lost or due run to the engine again, once: a conditional update decides which
    of several workers that saw it does so (the others see no row change and do nothing).

    ``run`` is the row as the caller read it: it is requeued only if it is still exactly
    so (same worker, same lease, same resume time). A suspended run that is due resumes:
    it is ``running`` again from here."""
    resumes = run.status == "suspended"
    res = session.execute(
        update(WorkflowRun)
        .where(
            WorkflowRun.id == run.id,
            WorkflowRun.status == run.status,
            WorkflowRun.status.in_(("pending", "running", "suspended")),
            _same(WorkflowRun.worker_id, run.worker_id),
            _same(WorkflowRun.lease_expires_at, run.lease_expires_at),
            _same(WorkflowRun.resume_at, run.resume_at),
        )
        .values(
            worker_id=None,
            lease_expires_at=None,
            resume_at=None,
            **({"status": "running"} if resumes else {}),
        )
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return False
    session.add(OutboxItem(organization_id=run.organization_id, run_id=run.id))
    publish(session, OUTBOX_CHANNEL, {"run": run.id})
    if resumes:
        _announce(session, run, "running")
    return True


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


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
    """Cancel at once a run no worker executes (pending, or suspended by a long delay)."""
    now = now_ms()
    res = session.execute(
        update(WorkflowRun)
        .where(
            WorkflowRun.id == run.id,
            WorkflowRun.worker_id.is_(None),
            WorkflowRun.status.in_(("pending", "running", "suspended")),
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
    abandon_unfinished_steps(session, run_id=run.id, message=message, status="canceled")
    session.refresh(run)  # the answer is the run as it now is
    _announce(session, run, "canceled")
    return True


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


def reload_run(session: Session, run: WorkflowRun) -> None:
    """Read the run's row again (another transaction changed it)."""
    session.refresh(run)


def link_flow_run(session: Session, *, run: WorkflowRun, flow_run_id: str) -> None:
    """A new run dispatched onto an existing flow run (a schedule's Scheduled flow run)."""
    run.prefect_flow_run_id = flow_run_id
    session.flush()
