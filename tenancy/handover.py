"""A worker that stops before its runs finish hands them over at once, rather than leaving
them to be found when its lease expires (a minute later by default)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy import runs as runs_repo
from tenancy.models import WorkflowRun


def hand_over_runs(session: Session, *, worker_id: str, run_ids: list[str]) -> list[str]:
    """Requeue the given runs this worker still holds; returns those requeued (another worker
    claims each from the outbox, skips its completed steps and runs the rest)."""
    if not run_ids:
        return []
    held = session.scalars(
        select(WorkflowRun).where(
            WorkflowRun.id.in_(run_ids),
            WorkflowRun.worker_id == worker_id,
            WorkflowRun.status.in_(("pending", "running")),
        )
    ).all()
    return [run.id for run in held if runs_repo.requeue_run(session, run=run)]
