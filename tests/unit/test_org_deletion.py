"""Deleting an organization, over the API: owners only, confirmed by the slug; then its keys,
sessions in it, workflows, invitations and single sign-on stop; its audit trail is kept,
ending with the deletion; its work pool is removed. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

PW = "correct horse battery staple 42"
SPEC = {
    "name": "Nightly",
    "slug": "nightly",
    "status": "active",
    "trigger": {"type": "event", "config": {"eventType": "x.y"}},
    "steps": [
        {"id": "a", "name": "A", "type": "action", "config": {"action": "transform", "output": {}}}
    ],
}


@pytest.fixture
def pools(monkeypatch) -> list[str]:
    removed: list[str] = []

    async def ensure_pool(slug: str, concurrency: int) -> bool:
        return True

    async def delete_pool(slug: str) -> bool:
        removed.append(slug)
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)
    monkeypatch.setattr("orbin_flows.organizations.delete_pool", delete_pool)
    return removed


def test_the_owner_deletes_the_organization_and_everything_stops(api, pools) -> None:
    def signup(who: str) -> str:
        body = {"email": f"{who}@del.test", "password": PW, "name": who}
        return api.post("/v1/auth/signup", json=body).json()["token"]

    owner, admin = signup("owner"), signup("admin")
    h = {"authorization": f"Bearer {owner}", "x-orbin-org": "doomed"}
    assert (
        api.post("/v1/orgs", json={"name": "Doomed", "slug": "doomed"}, headers=h).status_code
        == 201
    )
    assert api.post("/v1/orgs", json={"name": "Kept", "slug": "kept"}, headers=h).status_code == 201
    key = api.post("/v1/api-keys", json={"name": "ci", "type": "secret"}, headers=h).json()["key"]
    assert api.post("/v1/workflows", json=SPEC, headers={"x-api-key": key}).status_code == 201
    from tenancy.db import session_scope
    from tenancy.identity.sessions import authenticate_session
    from tenancy.orgs import add_member, read_organization_by_slug

    with session_scope() as s:
        org = read_organization_by_slug(s, "doomed")
        org_id = org.id
        add_member(
            s, organization_id=org.id, user_id=authenticate_session(s, admin)[0].id, role="admin"
        )
    ha = {"authorization": f"Bearer {admin}", "x-orbin-org": "doomed"}

    r = api.delete("/v1/orgs/current?confirm=doomed", headers=ha)
    assert r.status_code == 403, "admins may not delete the organization"
    r = api.delete("/v1/orgs/current?confirm=doomed", headers={"x-api-key": key})
    assert r.status_code == 403, "nor may a secret key"
    r = api.delete("/v1/orgs/current", headers=h)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "confirm"
    assert api.delete("/v1/orgs/current?confirm=kept", headers=h).status_code == 422
    assert pools == []

    r = api.delete("/v1/orgs/current?confirm=doomed", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["workPool"] == {"name": "orbin-doomed", "deleted": True}
    assert pools == ["doomed"]

    assert api.get("/v1/runs", headers={"x-api-key": key}).status_code == 401
    assert (
        api.post("/v1/events", json={"type": "x.y"}, headers={"x-api-key": key}).status_code == 401
    )
    assert api.get("/v1/runs", headers=h).status_code == 404
    assert api.get("/v1/runs", headers=ha).status_code == 404
    me = api.get("/v1/me", headers={"authorization": f"Bearer {owner}"}).json()
    assert [o["slug"] for o in me["organizations"]] == ["kept"], "the other one stays"
    again = api.post("/v1/orgs", json={"name": "Again", "slug": "doomed"}, headers=h)
    assert again.status_code == 409, "the slug stays reserved: old links never reach another org"

    from tenancy.audit import read_audit_logs
    from tenancy.db import read_scope
    from tenancy.models import Workflow

    with read_scope() as s:
        last = read_audit_logs(s, organization_id=org_id, limit=1)[0]
        assert (last.action, last.metadata_) == ("organization.deleted", {"slug": "doomed"})
        statuses = {w.status for w in s.query(Workflow).filter(Workflow.organization_id == org_id)}
    assert statuses == {"archived"}
