"""Figures of a workflow's last runs, per step, for optimization hints (aggregated in SQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from tenancy.models import StepExecution, WorkflowRun


def read_step_stats(
    session: Session, *, organization_id: str, workflow_id: str, last_runs: int = 50
) -> dict[str, Any]:
    recent = (
        select(WorkflowRun.id)
        .where(
            WorkflowRun.organization_id == organization_id,
            WorkflowRun.workflow_id == workflow_id,
        )
        .order_by(WorkflowRun.id.desc())
        .limit(last_runs)
        .subquery()
    )
    runs = session.execute(
        select(WorkflowRun.status, func.count(), func.avg(WorkflowRun.duration_ms))
        .where(WorkflowRun.id.in_(select(recent.c.id)))
        .group_by(WorkflowRun.status)
    ).all()
    steps = session.execute(
        select(
            StepExecution.step_id,
            func.count(),
            func.count(func.distinct(StepExecution.workflow_run_id)),
            func.sum(case((StepExecution.status == "failed", 1), else_=0)),
            func.max(StepExecution.attempt),
            func.avg(StepExecution.duration_ms),
            func.max(StepExecution.duration_ms),
        )
        .where(
            StepExecution.organization_id == organization_id,
            StepExecution.workflow_run_id.in_(select(recent.c.id)),
        )
        .group_by(StepExecution.step_id)
        .order_by(StepExecution.step_id)
    ).all()
    return {
        "runs": {status: {"count": int(n), "avgDurationMs": _num(avg)} for status, n, avg in runs},
        "steps": [
            {
                "stepId": step_id,
                "executions": int(n),
                "runs": int(in_runs),
                "failedAttempts": int(failed or 0),
                "retries": int(n) - int(in_runs),
                "maxAttempt": int(max_attempt or 0),
                "avgDurationMs": _num(avg),
                "maxDurationMs": _num(longest),
            }
            for step_id, n, in_runs, failed, max_attempt, avg, longest in steps
        ],
    }


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)
