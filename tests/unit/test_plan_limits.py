"""A plan's seats and integrations are enforced from outside: an invitation past the plan's
`members` (pending invitations count) or an integration past its `integrations` is a 402
naming the limit; freeing one lets the next in; a downgrade does not let an old invitation
overfill the organization, and the refused invitation stays usable. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from tenancy.plans import BUILT_IN
from tests.unit.test_identity_api import PW, _auth, mail_token, signup
from tests.unit.test_identity_api import make_org as make_org_via_api


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch):
    async def ensure_pool(slug: str, concurrency: int) -> bool:
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)
    from tenancy.identity import throttle

    throttle.reset()


@pytest.fixture
def free_plan(monkeypatch):
    """Set the free plan's caps for the test: free_plan(members=.., integrations=..)."""

    def cap(**caps) -> None:
        plans = dict(BUILT_IN, free=dataclasses.replace(BUILT_IN["free"], **caps))
        monkeypatch.setattr("tenancy.plans._loaded", plans)

    return cap


@pytest.fixture
def home(database):
    from tenancy.config import get_settings

    return get_settings().resolved_home


def _invite(api, headers, who: str):
    return api.post(
        "/v1/invitations", json={"email": f"{who}@example.com", "role": "member"}, headers=headers
    )


def test_invitations_past_the_plans_seats_are_refused_until_one_is_freed(api, free_plan):
    free_plan(members=3)
    a = _owner_of(api, "acme")
    assert _invite(api, a, "b").status_code == 201
    c = _invite(api, a, "c")
    assert c.status_code == 201
    full = _invite(api, a, "d")
    assert full.status_code == 402, full.text
    err = full.json()["error"]
    assert err["code"] == "plan_limit_reached" and "free plan allows 3 members" in err["message"]
    assert err["details"][0] == {
        "limit": "members (pending invitations included)",
        "allowed": 3,
        "used": 3,
        "plan": "free",
    }
    assert _invite(api, a, "b").status_code == 201, "a new invitation to b replaces the old one"
    assert api.delete(f"/v1/invitations/{c.json()['id']}", headers=a).status_code == 204
    assert _invite(api, a, "d").status_code == 201


def test_an_invitation_accepted_after_a_downgrade_waits_for_a_seat(api, free_plan, home):
    free_plan(members=2)
    a = _owner_of(api, "acme")
    assert _invite(api, a, "bob").status_code == 201
    token = mail_token(home, "bob@example.com")
    free_plan(members=1)  # the organization moved to a plan with one seat meanwhile
    body = {"token": token, "name": "Bob", "password": PW}
    refused = api.post("/v1/invitations/accept", json=body)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "plan_limit_reached"
    members = api.get("/v1/members", headers=a).json()["data"]
    assert [m["email"] for m in members] == ["owner@example.com"]
    free_plan(members=2)
    joined = api.post("/v1/invitations/accept", json=body)
    assert joined.status_code == 200, "the refused invitation was kept"


def test_integrations_past_the_plan_are_refused_until_one_is_deleted(api, make_org, free_plan):
    free_plan(integrations=1)
    org = make_org("acme")
    other = make_org("globex")
    h = {"x-api-key": org.key}

    def hook(name: str, key: str = org.key):
        body = {
            "provider": "webhook",
            "name": name,
            "config": {"url": "https://hooks.example.com/in"},
            "credentials": {"signingSecret": "whsec-plan-limit"},
        }
        return api.post("/v1/integrations", json=body, headers={"x-api-key": key})

    first = hook("one")
    assert first.status_code == 201, first.text
    second = hook("two")
    assert second.status_code == 402 and second.json()["error"]["details"][0]["allowed"] == 1
    assert hook("two", other.key).status_code == 201, "another organization has its own count"
    assert api.delete(f"/v1/integrations/{first.json()['id']}", headers=h).status_code == 204
    assert hook("two").status_code == 201


def test_an_operator_adding_a_member_past_the_seats_is_refused(database, make_org, free_plan):
    from tenancy.db import session_scope
    from tenancy.errors import PlanLimitReached
    from tenancy.orgs import add_member, create_user

    free_plan(members=1)
    org = make_org("acme")
    with session_scope() as session:
        u1 = create_user(session, email="a@example.com", name="A", password=PW)
        u2 = create_user(session, email="b@example.com", name="B", password=PW)
        add_member(session, organization_id=org.id, user_id=u1.id, role="owner")
    with session_scope() as session, pytest.raises(PlanLimitReached, match="allows 1 members"):
        add_member(session, organization_id=org.id, user_id=u2.id, role="member")


def test_the_402_is_documented_where_it_can_happen(api):
    doc = api.get("/openapi.json").json()
    assert "402" in doc["paths"]["/v1/invitations"]["post"]["responses"]
    assert "402" in doc["paths"]["/v1/integrations"]["post"]["responses"]
    assert "402" not in doc["paths"]["/v1/runs"]["get"]["responses"]


def _owner_of(api, slug: str) -> dict[str, str]:
    token = signup(api, "owner")
    make_org_via_api(api, token, slug)
    return _auth(token, slug)
