"""A run's step history: read for the API and dashboard, copied for a replay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy.clock import new_id
from tenancy.models import StepExecution, WorkflowRun
from tenancy.scoping import scoped


@dataclass(frozen=True)
class StepHistory:
    """What a run already did, read when it (re)starts on a worker."""

    completed: dict[str, Any]
    attempts: dict[str, int]
    waiting: dict[str, tuple[str, int]]
    # The attempt budget each step started with: an attempt lost with its worker counts
    # as an attempt, and the budget stays (2/3 after a takeover, not 2/4).
    max_attempts: dict[str, int] = field(default_factory=dict)

    def budget(self, key: str, base: int, attempt_no: int, default: int) -> int:
        """The step's attempt budget: after earlier attempts (a takeover), the one it started
        with, so a lost attempt counts and the budget stays (2/3, not 2/4)."""
        first = self.max_attempts.get(key)
        return max(attempt_no, first) if base and first else default


def read_step_history(session: Session, *, organization_id: str, run_id: str) -> StepHistory:
    rows = session.execute(
        select(
            StepExecution.id,
            StepExecution.step_id,
            StepExecution.status,
            StepExecution.output,
            StepExecution.next_retry_at,
            StepExecution.max_attempts,
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
    budget: dict[str, int] = {}
    for row_id, step_id, status, output, next_at, max_attempts in rows:
        if max_attempts:
            budget.setdefault(step_id, max_attempts)
        if status in ("completed", "skipped"):
            completed[step_id] = output
        elif status == "pending" and next_at is not None:
            waiting[step_id] = (row_id, next_at)
        else:
            attempts[step_id] = attempts.get(step_id, 0) + 1
    return StepHistory(completed, attempts, waiting, budget)


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
