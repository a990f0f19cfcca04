"""The role matrix, generated: every operation of the OpenAPI document, called by every kind
of caller (no credentials; a viewer, member, admin and owner's session; a publishable, a
restricted and a secret key; another organization's member and secret key), and each answer
checked against the operation's rule (``ingest_api.access``) and the role matrix
(``tenancy.principal.MATRIX``): 401 without a credential, 403 for a role or key the rule
refuses, 404 for another organization's objects, and neither for the rest (2xx for a listing).
A route without a rule, or a rule without a route, fails here. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field

import pytest

from ingest_api.access import ACCESS, ADMIN, ANY, PUBLIC, SESSION, SIGNATURE, USER
from tenancy.principal import ALL_PERMISSIONS, ROLE_PERMISSIONS

PW = "correct horse battery staple 42"
SPEC = {
    "name": "Matrix",
    "slug": "matrix",
    "status": "active",
    "trigger": {"type": "event", "config": {"eventType": "matrix.test"}},
    "steps": [
        {"id": "a", "name": "A", "type": "action", "config": {"action": "transform", "output": {}}}
    ],
}
# Walked last, in this order: they end sessions or hand the organization over.
LAST = [
    ("DELETE", "/v1/orgs/current"),  # without its confirmation: refused, nothing deleted
    ("POST", "/v1/orgs/current/transfer-ownership"),
    ("POST", "/v1/auth/signout"),
]
# Operations without a path id that answer no 2xx by design here.
NOT_LISTINGS = {
    "/v1/orgs/current/sso": "404 until single sign-on is set up",
    "/v1/billing/invoices": "503 in local billing mode (no Stripe key)",
    "/v1/stream": "a live stream: only its credential check is walked",
}


@dataclass
class Caller:
    name: str
    headers: dict[str, str]
    role: str | None = None  # a member's session
    key_type: str | None = None
    permissions: frozenset[str] = frozenset()
    elsewhere: bool = False  # of another organization


@dataclass
class World:
    callers: list[Caller]
    ids: dict[str, str]
    counter: itertools.count = field(default_factory=itertools.count)


@pytest.fixture
def world(api, monkeypatch) -> World:
    async def ensure_pool(slug: str, concurrency: int) -> bool:
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)
    from tenancy.db import session_scope
    from tenancy.identity.sessions import create_session
    from tenancy.keys import create_api_key
    from tenancy.orgs import add_member, create_organization, create_user

    callers = [Caller("anonymous", {})]
    ids: dict[str, str] = {}
    with session_scope() as s:
        acme = create_organization(s, name="Acme", slug="acme", plan="enterprise")
        other = create_organization(s, name="Other", slug="other", plan="enterprise")
        for role in ("viewer", "member", "admin", "owner"):
            user = create_user(s, email=f"{role}@acme.test", name=role, password=PW)
            add_member(s, organization_id=acme.id, user_id=user.id, role=role)
            token = create_session(s, user.id).token
            callers.append(
                Caller(
                    role,
                    {"authorization": f"Bearer {token}", "x-orbin-org": "acme"},
                    role=role,
                    permissions=frozenset(ROLE_PERMISSIONS[role]),
                )
            )
        target = create_user(s, email="target@acme.test", name="Target", password=PW)
        add_member(s, organization_id=acme.id, user_id=target.id, role="member")
        ids["user_id"] = target.id
        for key_type, perms in (
            ("publishable", frozenset({"events:write"})),
            ("restricted", frozenset({"runs:read", "workflows:read"})),
            ("secret", frozenset(ALL_PERMISSIONS)),
        ):
            key = create_api_key(
                s,
                organization_id=acme.id,
                name=key_type,
                type=key_type,
                permissions=sorted(perms) if key_type == "restricted" else None,
            )
            callers.append(Caller(key_type, {"x-api-key": key.plaintext}, None, key_type, perms))
        spare = create_api_key(s, organization_id=acme.id, name="spare", type="secret")
        ids["key_id"] = spare.key.id
        stranger = create_user(s, email="stranger@other.test", name="Stranger", password=PW)
        add_member(s, organization_id=other.id, user_id=stranger.id, role="owner")
        token = create_session(s, stranger.id).token
        callers.append(
            Caller(
                "stranger",
                {"authorization": f"Bearer {token}", "x-orbin-org": "acme"},
                role="owner",
                permissions=frozenset(ROLE_PERMISSIONS["owner"]),
                elsewhere=True,
            )
        )
        from tenancy.integrations import create_integration

        hook = create_integration(
            s,
            organization_id=acme.id,
            provider="webhook",
            name="hook",
            config={"url": "https://hooks.example.com/x"},
            credentials={},
        )
        ids["integration_id"] = hook.id
        other_key = create_api_key(s, organization_id=other.id, name="o", type="secret")
        callers.append(
            Caller(
                "other-org secret key",
                {"x-api-key": other_key.plaintext},
                key_type="secret",
                permissions=frozenset(ALL_PERMISSIONS),
                elsewhere=True,
            )
        )
    # The least privileged first: a refusal is checked before an allowed caller deletes the
    # object (a key, a member, an integration) the next caller's request names.
    order = ["anonymous", "publishable", "restricted", "viewer", "member", "stranger"]
    order += ["other-org secret key", "admin", "secret", "owner"]
    callers.sort(key=lambda c: order.index(c.name))
    secret = next(c for c in callers if c.key_type == "secret" and not c.elsewhere).headers
    owner = next(c for c in callers if c.role == "owner" and not c.elsewhere).headers
    r = api.post("/v1/workflows", json=SPEC, headers=secret)
    assert r.status_code == 201, r.text
    ids["workflow_id"] = r.json()["id"]
    ids["version"] = "1"
    r = api.post("/v1/events", json={"type": "matrix.test", "data": {}}, headers=secret)
    assert r.status_code == 202, r.text
    ids["event_id"], ids["run_id"] = r.json()["eventId"], r.json()["runIds"][0]
    r = api.post(
        "/v1/invitations", json={"email": "inv@acme.test", "role": "viewer"}, headers=owner
    )
    ids["invitation_id"] = r.json()["id"]
    ids.update(
        notification_id=str(uuid.uuid4()),
        step_id="first",  # a step's output route: 404 past the check, the run has none
        provider="slack",
        slug="acme",
    )
    return World(callers, ids)


def body_for(world: World, method: str, path: str) -> object:
    n = next(world.counter)
    bodies = {
        ("POST", "/v1/events"): {"type": "matrix.other", "data": {}},
        ("POST", "/api/webhooks/ingest"): {"type": "matrix.other", "data": {}},
        ("POST", "/v1/events/batch"): {"events": [{"type": "matrix.other", "data": {}}]},
        ("POST", "/v1/events/replay"): {"ids": [world.ids["event_id"]]},
        ("POST", "/v1/workflows"): {**SPEC, "slug": f"matrix-{n}"},
        ("PUT", "/v1/workflows/{workflow_id}"): SPEC,
        ("POST", "/v1/workflows/{workflow_id}/rollback"): {"version": 1},
        ("POST", "/v1/workflows/{workflow_id}/runs"): {"data": {}},
        ("PUT", "/v1/workflows/{workflow_id}/webhook"): {"secret": None},
        ("POST", "/v1/webhook-secret/rotate"): {"graceSeconds": 0},
        ("POST", "/v1/auth/signup"): {"email": f"new{n}@x.test", "password": PW, "name": "N"},
        ("POST", "/v1/auth/signin"): {"email": "target@acme.test", "password": PW},
        ("POST", "/v1/auth/password"): {"currentPassword": PW, "newPassword": PW},
        ("POST", "/v1/auth/password-reset"): {"email": "target@acme.test"},
        ("POST", "/v1/auth/password-reset/confirm"): {"token": "not-a-token", "password": PW},
        ("POST", "/v1/auth/mfa/verify"): {"code": "000000"},
        ("POST", "/v1/auth/mfa/disable"): {"password": PW},
        ("PUT", "/v1/me/notification-preferences"): {},
        ("POST", "/v1/orgs"): {"name": "New", "slug": f"new-{n}"},
        ("PATCH", "/v1/orgs/current"): {"name": "Acme"},
        ("PUT", "/v1/orgs/current/sso"): {
            "issuer": "ftp://not-a-provider",
            "clientId": "c",
            "clientSecret": "s",
            "allowedDomains": ["acme.test"],
        },
        ("POST", "/v1/orgs/current/transfer-ownership"): {"userId": world.ids["user_id"]},
        ("PATCH", "/v1/members/{user_id}"): {"role": "viewer"},
        ("POST", "/v1/invitations"): {"email": f"inv{n}@acme.test", "role": "viewer"},
        ("POST", "/v1/invitations/accept"): {"token": "not-a-token", "password": PW},
        ("POST", "/v1/api-keys"): {"name": "k", "type": "restricted", "permissions": ["runs:read"]},
        ("POST", "/v1/api-keys/{key_id}/rotate"): {"graceSeconds": 0},
        ("POST", "/v1/ai/workflows/generate"): {"prompt": "a workflow"},
        ("POST", "/v1/integrations"): {"provider": "webhook", "name": f"hook-{n}"},
        ("PATCH", "/v1/integrations/{integration_id}"): {"name": "renamed"},
        ("POST", "/v1/billing/checkout"): {"plan": "pro"},
    }
    return bodies.get((method, path), {} if method in ("POST", "PUT", "PATCH") else None)


QUERIES = {
    ("GET", "/v1/workflows/{workflow_id}/diff"): {"from": 1, "to": 1},
    ("GET", "/v1/integrations/oauth/{provider}/start"): {"name": "slack-1"},
}


def expected(rule: str, caller: Caller, path: str) -> str:
    """``ok`` (neither 401 nor 403), ``unsigned`` (no 2xx), or the status."""
    if rule == PUBLIC:
        return "ok"
    if rule == SIGNATURE:
        return "unsigned"
    if not caller.headers:
        return "401"
    if rule == SESSION:
        return "ok" if caller.role else "401"
    if caller.elsewhere and caller.role:
        return "404"  # acme does not exist for another organization's member
    if rule == USER:
        allowed = caller.role is not None
        return "ok" if allowed else "404"
    if rule == ANY:
        allowed = True
    elif rule == ADMIN:
        allowed = caller.key_type == "secret" or caller.role in ("admin", "owner")
    else:
        allowed = any(p in caller.permissions for p in rule.split("|"))
    if not allowed:
        return "403"
    if caller.elsewhere and "_id}" in path:
        return "404"  # the key acts in its own organization: acme's objects are not there
    return "ok"


def test_every_route_has_a_rule_and_every_rule_a_route(api) -> None:
    doc = api.get("/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert routes - set(ACCESS) == set(), "routes without a rule in ingest_api/access.py"
    assert set(ACCESS) - routes == set(), "rules for routes that do not exist"
    ops = [op for ops in doc["paths"].values() for op in ops.values()]
    assert all(op.get("x-orbin-access") for op in ops), "each operation documents its rule"


def test_every_route_answers_every_caller_by_the_matrix(api, world, monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_BAD_KEY_REQUESTS_PER_MINUTE", "100000")
    from tenancy import config

    config.reset_settings()
    doc = api.get("/openapi.json").json()
    routes = [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops]
    routes.sort(key=lambda r: LAST.index(r) if r in LAST else -1)
    wrong: list[str] = []
    calls = 0
    for method, path in routes:
        rule = ACCESS[(method, path)]
        url = re.sub(r"\{(\w+)\}", lambda m: world.ids[m.group(1)], path)
        for caller in world.callers:
            want = expected(rule, caller, path)
            query = dict(QUERIES.get((method, path), {}))
            if path == "/v1/stream" and want == "ok":
                query["kinds"] = "nothing"  # past the credential check, never streaming
            r = api.request(
                method,
                url,
                params=query or None,
                json=body_for(world, method, path),
                headers=caller.headers,
                follow_redirects=False,
            )
            calls += 1
            got = r.status_code
            listing = method == "GET" and "{" not in path and path not in NOT_LISTINGS
            if got >= 500 and got != 503:
                ok = False
            elif want == "ok":
                ok = got not in (401, 403) and (not listing or got < 300 or rule == PUBLIC)
            elif want == "unsigned":
                ok = got >= 400
            else:
                ok = str(got) == want
            if not ok:
                wrong.append(
                    f"{method} {path} [{rule}] as {caller.name}: {got}, want {want}: {r.text[:120]}"
                )
    print(f"{calls} calls, {len(routes)} operations, {len(world.callers)} callers")
    assert not wrong, "\n".join(wrong)
