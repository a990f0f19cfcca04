"""The dashboard's read models and actions, on SQLite and PostgreSQL: each organization sees
and counts only its own rows, pages are keyset-paginated, and every action is refused by the
service layer to a role that may not do it (the pages only hide the buttons)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tenancy.errors import Conflict, InvalidInput, PermissionDenied

PASSWORD = "correct-horse-battery"


def _spec(slug: str) -> dict:
    return {
        "name": slug.title(),
        "slug": slug,
        "status": "active",
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "s",
                "name": "S",
                "type": "action",
                "config": {"action": "transform", "output": {"ok": True}},
            }
        ],
    }


@dataclass
class World:
    org_a: str
    org_b: str
    users: dict[str, str]  # name -> user id
    wf_a: str
    runs_a: list[str]
    runs_b: list[str]


@pytest.fixture
def world(database: str) -> World:
    """Org A (owner ann, admin adam, member mia, viewer vic) with 7 runs; org B with 2."""
    from orbin_flows.workflows import create_workflow
    from tenancy import runs as runs_repo
    from tenancy.db import session_scope
    from tenancy.orgs import add_member, create_organization, create_user
    from tenancy.principal import system_principal

    with session_scope() as s:
        users = {
            n: create_user(s, email=f"{n}@example.com", name=n.title(), password=PASSWORD).id
            for n in ("ann", "adam", "mia", "vic", "bob")
        }
        a = create_organization(s, name="A", slug="org-a")
        b = create_organization(s, name="B", slug="org-b")
        for n, role in (("ann", "owner"), ("adam", "admin"), ("mia", "member"), ("vic", "viewer")):
            add_member(s, organization_id=a.id, user_id=users[n], role=role)
        add_member(s, organization_id=b.id, user_id=users["bob"], role="owner")
        wfa = create_workflow(s, system_principal(a.id, a.slug), _spec("alpha"))
        wfb = create_workflow(s, system_principal(b.id, b.slug), _spec("beta"))

        def runs(org, wf, n):
            return [
                runs_repo.create_run(
                    s, organization_id=org, workflow=wf, trigger_type="manual", trigger_data={}
                ).id
                for _ in range(n)
            ]

        world = World(a.id, b.id, users, wfa.id, runs(a.id, wfa, 7), runs(b.id, wfb, 2))
    return world


def actor(w: World, name: str, org: str | None = None):
    from streamlit_app.services.base import Actor

    return Actor(w.users[name], org or w.org_a)


def test_run_pages_are_keyset_paginated_and_scoped(world: World) -> None:
    from streamlit_app.services import runs

    first = runs.run_page(world.org_a, limit=3)
    assert [r.id for r in first] == sorted(world.runs_a, reverse=True)[:3]
    second = runs.run_page(world.org_a, limit=3, before=first[-1].id)
    assert [r.id for r in second] == sorted(world.runs_a, reverse=True)[3:6]
    every = runs.run_page(world.org_a, limit=100)
    assert {r.id for r in every} == set(world.runs_a)
    assert all(r.workflow_name == "Alpha" for r in every)
    assert {r.id for r in runs.run_page(world.org_b)} == set(world.runs_b)
    assert runs.run_page(world.org_a, statuses=("failed",)) == []
    newest = sorted(world.runs_a)[-1]
    assert runs.previous_run_id(world.org_a, world.wf_a, newest) == sorted(world.runs_a)[-2]
    assert runs.previous_run_id(world.org_b, world.wf_a, newest) is None  # not B's workflow


def test_overview_counts_only_the_orgs_runs(world: World) -> None:
    from streamlit_app.services import overview, workflows
    from tenancy.clock import now_ms

    ov = overview.overview(world.org_a, now=now_ms())
    assert sum(ov.counts_24h.values()) == 7
    assert ov.per_day[-1][1] == 7 and sum(n for _, n in ov.per_day) == 7
    assert ov.workflows == {"active": 1}
    listed = workflows.list_workflows(world.org_a, now=now_ms())
    assert [(w.slug, w.runs_7d) for w in listed] == [("alpha", 7)]
    assert listed[0].last_run_at is not None
    assert [w.slug for w in workflows.list_workflows(world.org_b, now=now_ms())] == ["beta"]


def test_api_keys_admins_only_shown_once_then_masked(world: World) -> None:
    from streamlit_app.services import keys
    from tenancy.db import session_scope
    from tenancy.keys import authenticate_api_key

    refused = keys.create(
        actor(world, "mia"), name="ci", type="secret", permissions=None, expires_at=None
    )
    assert not refused.ok and "admin" in refused.message
    made = keys.create(
        actor(world, "adam"), name="ci", type="secret", permissions=None, expires_at=None
    )
    assert made.ok and made.value.plaintext.startswith("sk_live_")
    [row] = keys.list_keys(world.org_a)
    assert made.value.plaintext not in repr(row) and row.masked.endswith(made.value.plaintext[-4:])
    assert keys.list_keys(world.org_b) == []
    rotated = keys.rotate(actor(world, "adam"), row.id)
    assert rotated.ok and rotated.value.plaintext != made.value.plaintext
    with session_scope() as s:
        assert authenticate_api_key(s, rotated.value.plaintext).organization_id == world.org_a
    assert not keys.revoke(actor(world, "bob", world.org_a), rotated.value.id).ok  # not a member


def test_settings_need_an_admin_and_valid_values(world: World) -> None:
    from streamlit_app.services import org

    values = {
        "name": "A renamed",
        "billing_email": "billing@example.com",
        "default_retry_policy": {
            "maxAttempts": 5,
            "backoffCoefficient": 2,
            "initialInterval": 500,
            "maxInterval": 10_000,
        },
        "alert_emails": ["ops@example.com"],
        "require_mfa": True,
    }
    assert not org.update_settings(actor(world, "mia"), **values).ok
    bad = org.update_settings(actor(world, "adam"), **{**values, "billing_email": "nope"})
    assert not bad.ok and "billingEmail" in bad.message
    assert org.update_settings(actor(world, "adam"), **values).ok
    s = org.settings(world.org_a)
    assert (s.name, s.require_mfa, s.default_retry_policy["maxAttempts"]) == ("A renamed", True, 5)
    assert org.settings(world.org_b).name == "B"
    actions = [r.action for r in org.audit_log(world.org_a, action="organization.*")]
    assert actions == ["organization.updated"]
    assert org.audit_log(world.org_b, action="organization.*") == []


def test_member_roles_follow_the_rank_rules(world: World) -> None:
    from tenancy import org_admin
    from tenancy.db import session_scope
    from tenancy.orgs import user_principal

    with session_scope() as s:
        adam = user_principal(s, user_id=world.users["adam"], organization_id=world.org_a)
        with pytest.raises(PermissionDenied):  # an admin makes no owner
            org_admin.change_member_role(s, adam, user_id=world.users["mia"], role="owner")
        with pytest.raises(PermissionDenied):  # nor touches one
            org_admin.remove_member(s, adam, user_id=world.users["ann"])
        org_admin.change_member_role(s, adam, user_id=world.users["vic"], role="member")
        with pytest.raises(InvalidInput):
            org_admin.change_member_role(s, adam, user_id=world.users["vic"], role="god")
        mia = user_principal(s, user_id=world.users["mia"], organization_id=world.org_a)
        with pytest.raises(PermissionDenied):
            org_admin.remove_member(s, mia, user_id=world.users["vic"])
        ann = user_principal(s, user_id=world.users["ann"], organization_id=world.org_a)
        with pytest.raises(Conflict):  # the last owner stays
            org_admin.change_member_role(s, ann, user_id=world.users["ann"], role="admin")
        org_admin.remove_member(s, ann, user_id=world.users["vic"])
        from tenancy.org_queries import read_members

        assert {m.name for m in read_members(s, organization_id=world.org_a)} == {
            "Ann",
            "Adam",
            "Mia",
        }


def test_audit_csv_neutralises_formulas(world: World) -> None:
    from streamlit_app.services import org
    from tenancy.org_queries import AuditRow

    row = AuditRow("1", 5, "=HYPERLINK(1)", "user", "x.y", "run", "+1", {"a": 1}, None)
    text = org.audit_csv([row])
    assert "'=HYPERLINK(1)" in text and "'+1" in text and text.startswith("time_ms,actor,")


def test_the_live_socket_admits_members_of_the_org_only(world: World) -> None:
    from streamlit_app import accounts, live

    token = accounts.sign_in("mia@example.com", PASSWORD, ip=None, user_agent=None)
    assert live._member(token, world.org_a)
    assert not live._member(token, world.org_b)
    assert not live._member("forged", world.org_a)
    assert not live._member(None, world.org_a)
    accounts.sign_out(token)
    assert not live._member(token, world.org_a), "a signed-out session sees nothing"


def test_notifications_are_the_users_own_in_the_org(world: World) -> None:
    from streamlit_app.services import shell
    from tenancy.db import session_scope
    from tenancy.models import Notification

    with session_scope() as s:
        for user, org in (("mia", world.org_a), ("mia", world.org_a), ("vic", world.org_a)):
            s.add(
                Notification(
                    user_id=world.users[user],
                    organization_id=org,
                    type="run.failed",
                    title="Run failed",
                    message="boom",
                    link="/runs",
                )
            )
    unread, items = shell.notifications(world.org_a, world.users["mia"])
    assert unread == 2 and len(items) == 2
    assert shell.notifications(world.org_b, world.users["mia"]) == (0, [])
    assert shell.mark_all_read(world.org_a, world.users["mia"]) == 2
    assert shell.notifications(world.org_a, world.users["mia"])[0] == 0
    assert shell.notifications(world.org_a, world.users["vic"])[0] == 1  # not someone else's
