"""Run bookkeeping that the worker relies on for recovery."""

from __future__ import annotations

from tenancy import runs as runs_repo
from tenancy.db import session_scope
from tenancy.models import WorkflowRun
from tests.unit.test_recorder import _run


def test_a_late_attach_does_not_lease_a_run_suspended_meanwhile(make_org) -> None:
    org = make_org("attach")
    run_id = _run(org.id)
    with session_scope() as session:
        run = session.get(WorkflowRun, run_id)
        runs_repo.mark_run_running(session, run=run, worker_id="w1", lease_ms=30_000)
        runs_repo.suspend_run(session, run=run, resume_at=123)
    # The worker's attach lands after the run was suspended (it is written beside the start).
    with session_scope() as session:
        runs_repo.attach_flow_run(
            session, run_id=run_id, flow_run_id="fr-1", worker_id="w1", lease_ms=30_000
        )
    with session_scope() as session:
        run = session.get(WorkflowRun, run_id)
        assert run.prefect_flow_run_id == "fr-1"
        assert run.worker_id is None and run.lease_expires_at is None and run.resume_at == 123
        assert runs_repo.read_orphaned_runs(session, grace_ms=0) == []


def test_attach_leases_a_run_that_has_not_started_yet(make_org) -> None:
    org = make_org("attach2")
    run_id = _run(org.id)
    with session_scope() as session:
        runs_repo.attach_flow_run(
            session, run_id=run_id, flow_run_id="fr-2", worker_id="w2", lease_ms=30_000
        )
    with session_scope() as session:
        run = session.get(WorkflowRun, run_id)
        assert (run.worker_id, run.prefect_flow_run_id) == ("w2", "fr-2")
        assert run.lease_expires_at is not None
