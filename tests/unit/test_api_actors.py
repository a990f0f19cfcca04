"""createdBy / updatedBy name who did it, a user or an API key, in one shape ({type, id}),
on workflows, their versions, runs and replays (issue 10: null for everything done with a
key). SQLite and PostgreSQL, over HTTP."""

from __future__ import annotations

import pytest

PW = "correct horse battery staple 42"
SPEC = {
    "name": "Who",
    "slug": "who",
    "status": "active",
    "trigger": {"type": "event", "config": {"eventType": "who.*"}},
    "steps": [{"id": "a", "name": "A", "type": "action", "config": {"action": "transform"}}],
}


@pytest.fixture
def team(api, monkeypatch):
    """A user's session and a secret key of the same organization, with their ids."""

    async def ensure_pool(slug: str, concurrency: int) -> bool:
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)
    token = api.post(
        "/v1/auth/signup", json={"email": "ada@example.com", "password": PW, "name": "Ada"}
    ).json()["token"]
    user = {"authorization": f"Bearer {token}", "x-orbin-org": "acme"}
    api.post("/v1/orgs", json={"name": "Acme", "slug": "acme"}, headers=user)
    me = api.get("/v1/me", headers=user).json()["user"]["id"]
    made = api.post("/v1/api-keys", json={"name": "ci", "type": "secret"}, headers=user).json()
    return {
        "user": user,
        "key": {"x-api-key": made["key"]},
        "as_user": {"type": "user", "id": me},
        "as_key": {"type": "key", "id": made["id"]},
        "key_made_by": made["createdBy"],
    }


def test_workflows_and_versions_name_the_user_or_key(api, team) -> None:
    assert team["key_made_by"] == team["as_user"]
    created = api.post("/v1/workflows", json=SPEC, headers=team["key"]).json()
    assert created["createdBy"] == created["updatedBy"] == team["as_key"]
    url = f"/v1/workflows/{created['id']}"
    saved = api.put(url, json={**SPEC, "name": "Who 2"}, headers=team["user"]).json()
    assert saved["createdBy"] == team["as_key"] and saved["updatedBy"] == team["as_user"]
    paused = api.post(f"{url}/pause", headers=team["key"]).json()
    assert paused["updatedBy"] == team["as_key"]
    rolled = api.post(f"{url}/rollback", json={"version": 1}, headers=team["user"]).json()
    assert rolled["updatedBy"] == team["as_user"]
    versions = api.get(f"{url}/versions", headers=team["user"]).json()["data"]
    assert [(v["version"], v["createdBy"]) for v in versions] == [
        (4, team["as_user"]),
        (3, team["as_key"]),
        (2, team["as_user"]),
        (1, team["as_key"]),
    ]
    listed = api.get("/v1/workflows", headers=team["key"]).json()["data"][0]
    assert listed["createdBy"] == team["as_key"]


def test_runs_and_replays_name_who_started_them(api, team) -> None:
    wf = api.post("/v1/workflows", json=SPEC, headers=team["user"]).json()
    sent = api.post("/v1/events", json={"type": "who.x"}, headers=team["key"]).json()
    (by_event,) = sent["runIds"]

    def run(run_id: str) -> dict:
        return api.get(f"/v1/runs/{run_id}", headers=team["key"]).json()

    assert run(by_event)["createdBy"] == team["as_key"], "the key that sent the event"
    manual = api.post(f"/v1/workflows/{wf['id']}/runs", json={}, headers=team["user"]).json()
    assert run(manual["runId"])["createdBy"] == team["as_user"]
    assert run(manual["runId"])["triggerData"]["by"] == team["as_user"]
    again = api.post(f"/v1/runs/{by_event}/replay", headers=team["user"]).json()
    assert run(again["runId"])["createdBy"] == team["as_user"]
    replayed = api.post(f"/v1/events/{sent['id']}/replay", headers=team["user"]).json()
    (new,) = replayed["startedRunIds"]
    assert run(new)["createdBy"] == team["as_user"]
    assert run(new)["triggerData"]["replay"]["by"] == team["as_user"]
    by_key = api.post("/v1/events/replay", json={"ids": [sent["id"]]}, headers=team["key"])
    (newest,) = by_key.json()["data"][0]["startedRunIds"]
    assert run(newest)["createdBy"] == team["as_key"]
    listed = api.get("/v1/runs", params={"limit": 200}, headers=team["key"]).json()["data"]
    assert {r["id"]: r["createdBy"] for r in listed}[by_event] == team["as_key"]


def test_a_batch_of_several_senders_keeps_each_sender(team) -> None:
    """Group commit ingests several requests together: each run names its own sender."""
    from orbin_flows.ingest import NewEvent, ingest_together
    from orbin_flows.workflows import create_workflow
    from tenancy import runs as runs_repo
    from tenancy.db import session_scope
    from tenancy.keys import authenticate_api_key
    from tenancy.orgs import read_organization_by_slug
    from tenancy.principal import Principal

    with session_scope() as session:
        first = authenticate_api_key(session, team["key"]["x-api-key"])
        org = read_organization_by_slug(session, "acme")
        create_workflow(session, first, SPEC)
    second = Principal(org.id, org.slug, org.plan, "user", first.permissions, user_id="u-2")
    (a,), (b,) = ingest_together(
        [(first, [NewEvent("who.a", "api", {})]), (second, [NewEvent("who.b", "api", {})])]
    )
    with session_scope() as session:
        runs = {
            r.id: (r.created_by, r.created_by_key_id)
            for r in runs_repo.read_runs(session, organization_id=org.id, limit=10)
        }
    assert runs[a.run_ids[0]] == (None, team["as_key"]["id"])
    assert runs[b.run_ids[0]] == ("u-2", None)
