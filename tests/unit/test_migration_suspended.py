"""Migration 0017 on data written before it: a run waiting out a long delay becomes
``suspended`` (and is resumed as such); stored errors lose the platform's traces."""

from __future__ import annotations

from alembic import command

from tenancy import runs as runs_repo
from tenancy.db import dispose_engines, session_scope
from tenancy.migrate import alembic_config, upgrade
from tenancy.models import StepExecution, WorkflowRun
from tests.unit.test_recorder import _run

OLD_STACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/orbin/orbin_flows/runtime/engine.py", line 361, in attempt\n'
    "    output = await self._perform(step, config, key, base + run_count, ctx)\n"
    "orbin_flows.actions.base.FatalStepError: GET http://x answered 404"
)
OLD_PYTHON_MESSAGE = (
    "python step failed:\n"
    "Traceback (most recent call last):\n"
    '  File "<string>", line 82, in <module>\n'
    '  File "<step>", line 2, in main\n'
    "    return json.loads('{')\n"
    '  File "/opt/python/lib/python3.11/json/__init__.py", line 346, in loads\n'
    "    return _default_decoder.decode(s)\n"
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    "json.decoder.JSONDecodeError: Expecting property name\n"
    "exited with code 1"
)


def test_waiting_runs_become_suspended_and_old_traces_are_dropped(database, make_org) -> None:
    # The organization is made at head (its model has columns of later migrations); the
    # runs and steps written below have the shape they had before 0017.
    org = make_org("legacy")
    cfg = alembic_config(database)
    command.downgrade(cfg, "0017_suspended_runs-1")
    dispose_engines()
    waiting = _run(org.id)
    with session_scope() as session:
        first = session.get(WorkflowRun, waiting)
        more = [
            WorkflowRun(
                organization_id=org.id,
                workflow_id=first.workflow_id,
                workflow_version=1,
                trigger_type="manual",
                trigger_data={},
            )
            for _ in range(2)
        ]
        session.add_all(more)
        session.flush()
        failed, running = (r.id for r in more)
    with session_scope() as session:
        w = session.get(WorkflowRun, waiting)
        w.status, w.resume_at, w.started_at = "running", 1_000, 500
        r = session.get(WorkflowRun, running)
        r.status, r.worker_id, r.lease_expires_at = "running", "w1", 9_999_999_999_999
        f = session.get(WorkflowRun, failed)
        f.status = "failed"
        f.error = {"message": "GET http://x answered 404", "stack": OLD_STACK, "stepId": "get"}
        for step_id, error in (
            ("get", {"message": "GET http://x answered 404", "stack": OLD_STACK}),
            ("py", {"message": OLD_PYTHON_MESSAGE, "stack": OLD_STACK}),
            ("ok", {"message": "canceled"}),
        ):
            session.add(
                StepExecution(
                    organization_id=org.id,
                    workflow_run_id=failed,
                    step_id=step_id,
                    step_name=step_id,
                    step_type="action",
                    status="failed",
                    attempt=1,
                    max_attempts=1,
                    error=error,
                )
            )
    upgrade(database)
    with session_scope() as session:
        assert session.get(WorkflowRun, waiting).status == "suspended"
        assert session.get(WorkflowRun, running).status == "running"
        assert session.get(WorkflowRun, failed).error == {
            "message": "GET http://x answered 404",
            "stepId": "get",
        }
        errors = {
            s.step_id: s.error
            for s in session.query(StepExecution).filter_by(workflow_run_id=failed)
        }
        assert errors["get"] == {"message": "GET http://x answered 404"}
        assert errors["ok"] == {"message": "canceled"}
        message = errors["py"]["message"]
        assert "/opt/python" not in message and '"<string>"' not in message
        assert '  File "<step>", line 2, in main\n' in message
        assert "JSONDecodeError" in message and "exited with code 1" in message
        # The suspended run is due (resume_at 1000): the worker's upkeep resumes it.
        due = runs_repo.read_due_suspended_runs(session)
        assert [r.id for r in due] == [waiting]
        assert runs_repo.requeue_run(session, run=due[0])
    with session_scope() as session:
        again = session.get(WorkflowRun, waiting)
        assert (again.status, again.resume_at) == ("running", None)
