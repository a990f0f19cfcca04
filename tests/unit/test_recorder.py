"""The run recorder: step records written in order, off the caller's thread, none lost."""

from __future__ import annotations

from sqlalchemy import select

from tenancy.db import session_scope
from tenancy.models import StepExecution, Workflow, WorkflowRun
from tenancy.recorder import Recorder


def _run(org_id: str) -> str:
    with session_scope() as session:
        wf = Workflow(
            organization_id=org_id,
            name="w",
            slug="w",
            trigger={"type": "manual"},
            steps=[],
            trigger_type="manual",
            status="active",
        )
        session.add(wf)
        session.flush()
        run = WorkflowRun(
            organization_id=org_id,
            workflow_id=wf.id,
            workflow_version=1,
            trigger_type="manual",
            trigger_data={},
        )
        session.add(run)
        session.flush()
        return run.id


def _steps(run_id: str) -> list[StepExecution]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(StepExecution)
                .where(StepExecution.workflow_run_id == run_id)
                .order_by(StepExecution.attempt)
            )
        )


def test_records_land_in_order_and_a_bad_one_does_not_lose_the_others(make_org) -> None:
    org = make_org("rec")
    run_id = _run(org.id)
    recorder = Recorder()
    first = recorder.start_step(
        organization_id=org.id,
        run_id=run_id,
        step_id="a",
        step_name="A",
        step_type="action",
        attempt=1,
        max_attempts=2,
        input={"x": 1},
    )
    recorder.finish_step(first, status="retrying", error={"message": "503"}, next_retry_at=5)
    recorder.submit(lambda session: session.execute(select(1 / 0)))  # a broken record
    second = recorder.start_step(
        organization_id=org.id,
        run_id=run_id,
        step_id="a",
        step_name="A",
        step_type="action",
        attempt=2,
        max_attempts=2,
        input={"x": 1},
    )
    recorder.flush_sync()
    rows = _steps(run_id)
    assert [(r.attempt, r.status) for r in rows] == [(1, "retrying"), (2, "running")]
    assert rows[0].next_retry_at == 5 and rows[0].started_at == first.started_at

    # A row read back from the database finishes the same way as a fresh record.
    recorder.finish_step(rows[1], status="completed", output={"ok": True})
    recorder.flush_sync()
    done = _steps(run_id)[1]
    assert done.status == "completed" and done.output == {"ok": True}
    assert done.id == second.id and done.duration_ms is not None
