"""A worker's hold on the runs it executes: lease renewal, runs taken over by another
worker, and runs asked to stop (read by the worker's upkeep, runtime/leases.py)."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.models import WorkflowRun


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


def read_cancel_requested(session: Session, *, run_ids: list[str]) -> set[str]:
    """Which of these runs were asked to stop."""
    return set(
        session.scalars(
            select(WorkflowRun.id).where(
                WorkflowRun.id.in_(run_ids), WorkflowRun.cancel_requested.is_(True)
            )
        )
    )
