"""Cancel, replay and resume over the API (no worker here: runs stay where we put them),
and the engine-side repository rules that keep two workers from taking the same run."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenancy import history as history_repo
from tenancy import run_leases
from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy.clock import now_ms
from tenancy.db import session_scope
from tenancy.models import OutboxItem, WorkflowRun

SPEC = {
    "name": "Two steps",
    "slug": "two-steps",
    "status": "active",
    "trigger": {"type": "manual"},
    "steps": [
        {
            "id": "a",
            "name": "A",
            "type": "action",
            "config": {"action": "transform", "output": {"n": "{{ trigger.data.n }}"}},
        },
        {
            "id": "b",
            "name": "B",
            "type": "action",
            "config": {"action": "transform", "output": "{{ steps.a.output.n + 1 }}"},
        },
    ],
}


@pytest.fixture
def org(make_org):
    return make_org("acme")


def _h(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def _workflow(api, key: str) -> str:
    resp = api.post("/v1/workflows", json=SPEC, headers=_h(key))
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def _trigger(api, key: str, wf: str, data: dict) -> str:
    resp = api.post(f"/v1/workflows/{wf}/runs", json={"data": data}, headers=_h(key))
    assert resp.status_code == 202, resp.text
    return resp.json()["runId"]


def _run(run_id: str) -> WorkflowRun:
    with session_scope() as session:
        return session.get(WorkflowRun, run_id)


def test_a_pending_run_is_canceled_before_it_starts(api, org) -> None:
    wf = _workflow(api, org.key)
    run_id = _trigger(api, org.key, wf, {"n": 1})
    resp = api.post(f"/v1/runs/{run_id}/cancel", headers=_h(org.key))
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "canceled" and resp.json()["cancelRequested"] is True
    assert api.get(f"/v1/runs/{run_id}", headers=_h(org.key)).json()["status"] == "canceled"
    again = api.post(f"/v1/runs/{run_id}/cancel", headers=_h(org.key))
    assert again.status_code == 409 and "already canceled" in again.json()["error"]["message"]
    # The worker that claims its outbox item later does not start it.
    run = _run(run_id)
    with session_scope() as session:
        assert not runs_repo.mark_run_running(session, run=run, worker_id="w", lease_ms=1000)
    assert _run(run_id).status == "canceled"


def test_a_running_run_is_flagged_for_its_worker(api, org) -> None:
    wf = _workflow(api, org.key)
    run_id = _trigger(api, org.key, wf, {"n": 1})
    run = _run(run_id)
    with session_scope() as session:
        assert runs_repo.mark_run_running(session, run=run, worker_id="w1", lease_ms=60_000)
    resp = api.post(f"/v1/runs/{run_id}/cancel", headers=_h(org.key))
    assert resp.status_code == 202
    assert resp.json()["status"] == "running" and resp.json()["cancelRequested"] is True
    assert _run(run_id).cancel_requested is True


def test_replay_starts_a_new_run_with_the_same_input_on_the_current_version(api, org) -> None:
    wf = _workflow(api, org.key)
    run_id = _trigger(api, org.key, wf, {"n": 41})
    api.put(f"/v1/workflows/{wf}", json={**SPEC, "description": "v2"}, headers=_h(org.key))
    resp = api.post(f"/v1/runs/{run_id}/replay", headers=_h(org.key))
    assert resp.status_code == 202, resp.text
    new = api.get(f"/v1/runs/{resp.json()['runId']}", headers=_h(org.key)).json()
    old = api.get(f"/v1/runs/{run_id}", headers=_h(org.key)).json()
    assert new["parentRunId"] == run_id and new["status"] == "pending"
    assert new["triggerData"] == old["triggerData"] and new["triggerType"] == "manual"
    assert old["workflowVersion"] == 1 and new["workflowVersion"] == 2


def test_resume_carries_completed_steps_into_a_linked_run(api, org) -> None:
    wf = _workflow(api, org.key)
    run_id = _trigger(api, org.key, wf, {"n": 1})
    assert api.post(f"/v1/runs/{run_id}/resume", headers=_h(org.key)).status_code == 409
    run = _run(run_id)
    with session_scope() as session:  # what a worker would record: a done, b failed
        runs_repo.mark_run_running(session, run=run, worker_id="w", lease_ms=1000)
        a = steps_repo.start_step(
            session,
            run=run,
            step_id="a",
            step_name="A",
            step_type="action",
            attempt=1,
            max_attempts=1,
            input={},
        )
        steps_repo.finish_step(session, step=a, status="completed", output={"n": 1})
        b = steps_repo.start_step(
            session,
            run=run,
            step_id="b",
            step_name="B",
            step_type="action",
            attempt=1,
            max_attempts=1,
            input={},
        )
        steps_repo.finish_step(session, step=b, status="failed", error={"message": "boom"})
        runs_repo.finish_run(session, run=run, status="failed", error={"message": "boom"})
    api.put(f"/v1/workflows/{wf}", json={**SPEC, "description": "v2"}, headers=_h(org.key))

    resp = api.post(f"/v1/runs/{run_id}/resume", headers=_h(org.key))
    assert resp.status_code == 202, resp.text
    new = api.get(f"/v1/runs/{resp.json()['runId']}", headers=_h(org.key)).json()
    assert new["parentRunId"] == run_id and new["status"] == "pending"
    assert new["workflowVersion"] == 1, "a resumed run keeps the version it failed on"
    assert [(s["stepId"], s["status"], s["output"]) for s in new["steps"]] == [
        ("a", "completed", {"n": 1})
    ]
    with session_scope() as session:
        history = history_repo.read_step_history(session, organization_id=org.id, run_id=new["id"])
    assert history.completed == {"a": {"n": 1}}, "the executor will reuse a, and run b"
    latest = api.post(
        f"/v1/runs/{run_id}/resume", json={"latestVersion": True}, headers=_h(org.key)
    ).json()
    assert (
        api.get(f"/v1/runs/{latest['runId']}", headers=_h(org.key)).json()["workflowVersion"] == 2
    )
    old = api.get(f"/v1/runs/{run_id}", headers=_h(org.key)).json()
    assert old["status"] == "failed", "the failed run stays as it happened"


def test_another_organizations_run_is_404(api, make_org) -> None:
    mine = make_org("mine")
    other = make_org("other")
    run_id = _trigger(api, mine.key, _workflow(api, mine.key), {"n": 1})
    for action in ("cancel", "replay", "resume"):
        resp = api.post(f"/v1/runs/{run_id}/{action}", headers=_h(other.key))
        assert resp.status_code == 404, (action, resp.text)
    assert _run(run_id).status == "pending" and not _run(run_id).cancel_requested


def test_two_workers_requeue_a_lost_run_once(api, org) -> None:
    wf = _workflow(api, org.key)
    run_id = _trigger(api, org.key, wf, {"n": 1})
    with session_scope() as session:
        run = session.get(WorkflowRun, run_id)
        runs_repo.mark_run_running(session, run=run, worker_id="dead", lease_ms=1)
        session.execute(
            runs_repo.update(WorkflowRun)
            .where(WorkflowRun.id == run_id)
            .values(lease_expires_at=now_ms() - 60_000)
        )
    seen = []
    for _ in range(2):  # both workers read the orphan before either requeues it
        with session_scope() as session:
            orphans = runs_repo.read_orphaned_runs(session, grace_ms=1000)
            seen.append(next(r for r in orphans if r.id == run_id))
    results = []
    for stale in seen:
        with session_scope() as session:
            results.append(runs_repo.requeue_run(session, run=stale))
    assert sorted(results) == [False, True]
    with session_scope() as session:
        items = session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.run_id == run_id)
        )
        assert items == 2, "the run's first outbox item and exactly one requeue"
        assert runs_repo.read_orphaned_runs(session, grace_ms=1000) == []


def test_a_worker_learns_that_its_run_was_taken_over(api, org) -> None:
    wf = _workflow(api, org.key)
    mine, theirs = _trigger(api, org.key, wf, {"n": 1}), _trigger(api, org.key, wf, {"n": 2})
    with session_scope() as session:
        for run_id in (mine, theirs):
            run = session.get(WorkflowRun, run_id)
            runs_repo.mark_run_running(session, run=run, worker_id="slow", lease_ms=1)
        runs_repo.suspend_run(session, run=session.get(WorkflowRun, mine), resume_at=now_ms())
    with session_scope() as session:  # "theirs" is requeued by a live worker
        stale = session.get(WorkflowRun, theirs)
        assert runs_repo.requeue_run(session, run=stale)
    with session_scope() as session:
        lost = run_leases.read_runs_taken_over(session, worker_id="slow", run_ids=[mine, theirs])
    assert lost == [theirs], "a suspended run is not lost, a requeued one is"
