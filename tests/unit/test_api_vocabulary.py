"""The API's enumerations: run and step statuses (``suspended``, ``canceled``) as the API,
its OpenAPI document and its stream name them; the cancel answer is the run as it now is;
unknown values of any enumeration are a 422 that lists the valid ones."""

from __future__ import annotations

import pytest

from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy.change_feed import read_org_changes_after
from tenancy.clock import now_ms
from tenancy.db import session_scope
from tenancy.models import WorkflowRun
from tests.unit.test_runs_api import _h, _trigger, _workflow


@pytest.fixture
def org(make_org):
    return make_org("acme", plan="pro")


def _suspend(run_id: str, resume_at: int) -> None:
    """What the engine does at a long delay (runtime/engine.py): a waiting step, a suspension."""
    with session_scope() as session:
        run = session.get(WorkflowRun, run_id)
        assert runs_repo.mark_run_running(session, run=run, worker_id="w1", lease_ms=60_000)
        steps_repo.record_waiting_step(
            session, run=run, step_id="a", step_name="A", input={}, resume_at=resume_at
        )
        runs_repo.suspend_run(session, run=run, resume_at=resume_at)


def test_the_cancel_answer_is_the_run_as_get_shows_it(api, org) -> None:
    run_id = _trigger(api, org.key, _workflow(api, org.key), {"n": 1})
    answer = api.post(f"/v1/runs/{run_id}/cancel", headers=_h(org.key))
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "canceled" and body["durationMs"] is not None
    assert body["completedAt"] is not None and body["steps"] == []
    assert api.get(f"/v1/runs/{run_id}", headers=_h(org.key)).json() == body


def test_a_suspended_run_is_shown_filtered_streamed_and_canceled_as_such(api, org) -> None:
    run_id = _trigger(api, org.key, _workflow(api, org.key), {"n": 1})
    resume_at = now_ms() + 3_600_000
    _suspend(run_id, resume_at)
    run = api.get(f"/v1/runs/{run_id}", headers=_h(org.key)).json()
    assert (run["status"], run["resumeAt"]) == ("suspended", resume_at)
    assert run["steps"][0]["status"] == "pending" and run["steps"][0]["nextRetryAt"] == resume_at
    listed = api.get("/v1/runs?status=suspended", headers=_h(org.key)).json()["data"]
    assert [r["id"] for r in listed] == [run_id]
    assert api.get("/v1/runs?status=running", headers=_h(org.key)).json()["data"] == []
    changes = [c for c in read_org_changes_after(org.id, 0, 100) if c.get("id") == run_id]
    assert [c["status"] for c in changes] == ["pending", "running", "suspended"]
    assert changes[-1]["resumeAt"] == resume_at
    with session_scope() as session:
        assert runs_repo.read_due_suspended_runs(session) == []  # not due yet

    answer = api.post(f"/v1/runs/{run_id}/cancel", headers=_h(org.key)).json()
    assert answer["status"] == "canceled" and answer["resumeAt"] is None
    assert [(s["stepId"], s["status"]) for s in answer["steps"]] == [("a", "canceled")]
    assert answer == api.get(f"/v1/runs/{run_id}", headers=_h(org.key)).json()


def test_a_due_suspended_run_resumes_running(api, org) -> None:
    run_id = _trigger(api, org.key, _workflow(api, org.key), {"n": 1})
    _suspend(run_id, now_ms() - 1)
    with session_scope() as session:
        due = runs_repo.read_due_suspended_runs(session)
        assert [r.id for r in due] == [run_id]
        assert runs_repo.requeue_run(session, run=due[0])
        assert not runs_repo.requeue_run(session, run=due[0]), "once, by one worker"
    run = api.get(f"/v1/runs/{run_id}", headers=_h(org.key)).json()
    assert (run["status"], run["resumeAt"]) == ("running", None)
    changes = [c["status"] for c in read_org_changes_after(org.id, 0, 100) if c["id"] == run_id]
    assert changes[-2:] == ["suspended", "running"]


def test_the_openapi_document_names_every_status(api) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["RunPublic"]["properties"]["status"]["enum"] == list(runs_repo.RUN_STATUSES)
    assert "suspended" in runs_repo.RUN_STATUSES
    step = schemas["StepExecutionPublic"]["properties"]["status"]["enum"]
    assert "canceled" in step and "skipped" in step and "retrying" in step
    assert "resumeAt" in schemas["RunPublic"]["properties"]


@pytest.mark.parametrize(
    ("method", "path", "body", "valid"),
    [
        ("GET", "/v1/runs?status=sleeping", None, "'suspended'"),
        ("GET", "/v1/workflows?status=sleeping", None, "'paused'"),
        ("GET", "/v1/events?status=sleeping", None, "'processed'"),
        ("GET", "/v1/integrations?provider=myspace", None, "slack"),
        ("POST", "/v1/api-keys", {"name": "k", "type": "gold"}, "'restricted'"),
        (
            "POST",
            "/v1/api-keys",
            {"name": "k", "type": "restricted", "permissions": ["runs:fly"]},
            "'runs:read'",
        ),
        ("POST", "/v1/invitations", {"email": "b@x.io", "role": "god"}, "'admin'"),
        (
            "POST",
            "/v1/workflows",
            {"name": "W", "slug": "w", "trigger": {"type": "sometimes"}, "steps": []},
            "'schedule'",
        ),
        ("POST", "/v1/billing/checkout", {"plan": "gold"}, "business"),
        ("GET", "/v1/stream?kinds=gossip", None, "run"),
    ],
)
def test_an_unknown_enumeration_value_is_refused_with_the_valid_ones(
    api, org, method: str, path: str, body: dict | None, valid: str
) -> None:
    resp = api.request(method, path, json=body, headers=_h(org.key))
    assert resp.status_code == 422, resp.text
    assert valid in resp.json()["error"]["message"], resp.json()


def test_an_unknown_role_for_a_member_is_refused_with_the_roles(api, org) -> None:
    from tenancy.orgs import add_member, create_user

    with session_scope() as session:
        user = create_user(session, email="m@x.io", name="M", password="a long passphrase")
        add_member(session, organization_id=org.id, user_id=user.id, role="member")
        user_id = user.id
    resp = api.patch(f"/v1/members/{user_id}", json={"role": "god"}, headers=_h(org.key))
    assert resp.status_code == 422
    assert "'viewer', 'member', 'admin' or 'owner'" in resp.json()["error"]["message"]
