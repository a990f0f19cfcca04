"""Identity over the API: accounts, sessions, organizations, invitations by e-mail, roles,
keys with rotation, MFA, audit, notifications, isolation. SQLite and PostgreSQL."""

from __future__ import annotations

import email
import re
import time
from pathlib import Path

import pyotp
import pytest

PW = "correct horse battery staple 42"
SPEC = {
    "name": "Role check",
    "slug": "role-check",
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "a", "name": "A", "type": "action", "config": {"action": "transform", "output": {}}}
    ],
}


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch):
    """Pools are created on a real Prefect server in tests/integration; here they are noted."""
    made: list[tuple[str, int]] = []

    async def ensure_pool(slug: str, concurrency: int) -> bool:
        made.append((slug, concurrency))
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)
    from tenancy.identity import throttle

    throttle.reset()  # sign-in attempts counted afresh for each test
    return made


def _auth(token: str, org: str | None = None) -> dict[str, str]:
    h = {"authorization": f"Bearer {token}"}
    if org:
        h["x-orbin-org"] = org
    return h


def signup(api, who: str) -> str:
    r = api.post(
        "/v1/auth/signup", json={"email": f"{who}@example.com", "password": PW, "name": who}
    )
    assert r.status_code == 201, r.text
    assert r.json()["token"].startswith("ses_")
    return r.json()["token"]


def make_org(api, token: str, slug: str) -> dict:
    r = api.post("/v1/orgs", json={"name": slug.title(), "slug": slug}, headers=_auth(token))
    assert r.status_code == 201, r.text
    return r.json()


def mail_token(home: Path, to: str) -> str:
    deadline = time.time() + 10
    while time.time() < deadline:
        for path in sorted((home / "outbox").glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes())
            if to in msg["To"]:
                body = msg.get_payload(decode=True).decode()
                return re.search(r"token=([A-Za-z0-9_\-%.~]+)", body).group(1)
        time.sleep(0.05)
    raise AssertionError(f"no mail to {to}")


@pytest.fixture
def home(database) -> Path:
    from tenancy.config import get_settings

    return get_settings().resolved_home


def test_signup_signin_and_bad_input(api) -> None:
    token = signup(api, "alice")
    again = api.post(
        "/v1/auth/signup", json={"email": "ALICE@example.com", "password": PW, "name": "A"}
    )
    assert again.status_code == 409 and "exists" in again.json()["error"]["message"]
    short = api.post(
        "/v1/auth/signup", json={"email": "x@example.com", "password": "short", "name": "X"}
    )
    assert short.status_code == 422 and "12 characters" in short.json()["error"]["message"]
    assert api.post("/v1/auth/signup", json={"email": "y@example.com"}).status_code == 422
    me = api.get("/v1/me", headers=_auth(token)).json()
    assert me["user"]["email"] == "alice@example.com" and me["organizations"] == []
    bad = api.post("/v1/auth/signin", json={"email": "alice@example.com", "password": "nope" * 4})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_credentials"
    ok = api.post("/v1/auth/signin", json={"email": "alice@example.com", "password": PW})
    assert ok.status_code == 200 and ok.json()["token"] != token
    assert api.post("/v1/auth/signout", headers=_auth(token)).status_code == 204
    assert api.get("/v1/me", headers=_auth(token)).status_code == 401
    assert api.get("/v1/me", headers=_auth(ok.json()["token"])).status_code == 200


def test_repeated_failures_lock_the_account(api) -> None:
    signup(api, "dora")
    for _ in range(10):
        api.post("/v1/auth/signin", json={"email": "dora@example.com", "password": "x" * 12})
    r = api.post("/v1/auth/signin", json={"email": "dora@example.com", "password": PW})
    assert r.status_code == 401 and r.json()["error"]["code"] == "account_locked"


def test_org_invitation_roles_keys_audit_notifications(api, home, no_prefect) -> None:
    alice = signup(api, "alice")
    org = make_org(api, alice, "acme")
    assert org["role"] == "owner" and org["workPool"]["name"] == "orbin-acme"
    assert no_prefect == [("acme", 5)]  # the free plan's concurrency on the pool
    assert make_org(api, alice, "acme2")["slug"] == "acme2"
    dup = api.post("/v1/orgs", json={"name": "X", "slug": "acme"}, headers=_auth(alice))
    assert dup.status_code == 409
    a = _auth(alice, "acme")

    r = api.post("/v1/invitations", json={"email": "bob@example.com", "role": "viewer"}, headers=a)
    assert r.status_code == 201, r.text
    assert (
        api.post("/v1/invitations", json={"email": "b", "role": "viewer"}, headers=a).status_code
        == 422
    )
    assert (
        api.post(
            "/v1/invitations", json={"email": "c@example.com", "role": "god"}, headers=a
        ).status_code
        == 422
    )
    token = mail_token(home, "bob@example.com")
    r = api.post("/v1/invitations/accept", json={"token": token, "name": "Bob", "password": PW})
    assert r.status_code == 200, r.text
    bob = r.json()["token"]
    again = api.post("/v1/invitations/accept", json={"token": token, "name": "Bob", "password": PW})
    assert again.status_code == 410
    b = _auth(bob, "acme")

    # viewer: reads, cannot write
    assert api.get("/v1/runs", headers=b).status_code == 200
    assert api.post("/v1/workflows", json=SPEC, headers=b).status_code == 403
    members = api.get("/v1/members", headers=a).json()["data"]
    bob_id = next(m["userId"] for m in members if m["email"] == "bob@example.com")
    alice_id = next(m["userId"] for m in members if m["email"] == "alice@example.com")
    # a viewer cannot promote themselves
    assert api.patch(f"/v1/members/{bob_id}", json={"role": "admin"}, headers=b).status_code == 403
    r = api.patch(f"/v1/members/{bob_id}", json={"role": "member"}, headers=a)
    assert r.status_code == 200 and r.json()["role"] == "member"
    assert api.post("/v1/workflows", json=SPEC, headers=b).status_code == 201
    assert api.post("/v1/api-keys", json={"name": "n"}, headers=b).status_code == 403
    assert api.get("/v1/audit-logs", headers=b).status_code == 403
    # admins cannot make owners; the last owner cannot leave
    api.patch(f"/v1/members/{bob_id}", json={"role": "admin"}, headers=a)
    assert api.patch(f"/v1/members/{bob_id}", json={"role": "owner"}, headers=b).status_code == 403
    assert (
        api.patch(f"/v1/members/{alice_id}", json={"role": "member"}, headers=b).status_code == 403
    )
    assert api.delete(f"/v1/members/{alice_id}", headers=a).status_code == 409

    # keys: shown once, rotation with grace, revocation
    r = api.post("/v1/api-keys", json={"name": "ci", "type": "secret"}, headers=a)
    assert r.status_code == 201
    k1, k1_id = r.json()["key"], r.json()["id"]
    listed = api.get("/v1/api-keys", headers=a).text
    assert k1 not in listed and k1[-4:] in listed
    assert api.get("/v1/runs", headers={"x-api-key": k1}).status_code == 200
    r = api.post(f"/v1/api-keys/{k1_id}/rotate", json={"graceSeconds": 1}, headers=a)
    assert r.status_code == 201
    k2, k2_id = r.json()["key"], r.json()["id"]
    assert api.get("/v1/runs", headers={"x-api-key": k1}).status_code == 200
    time.sleep(1.2)
    assert api.get("/v1/runs", headers={"x-api-key": k1}).status_code == 401
    assert api.get("/v1/runs", headers={"x-api-key": k2}).status_code == 200
    assert api.delete(f"/v1/api-keys/{k2_id}", headers=a).status_code == 204
    assert api.get("/v1/runs", headers={"x-api-key": k2}).status_code == 401

    # audit: searchable, exported as CSV, never a full key
    r = api.get("/v1/audit-logs", params={"action": "member.invited"}, headers=a)
    assert r.status_code == 200 and [e["action"] for e in r.json()["data"]] == ["member.invited"]
    page = api.get("/v1/audit-logs", params={"limit": 2}, headers=a).json()
    assert page["hasMore"] and page["nextCursor"]
    nxt = api.get("/v1/audit-logs", params={"limit": 2, "cursor": page["nextCursor"]}, headers=a)
    assert {e["id"] for e in nxt.json()["data"]}.isdisjoint({e["id"] for e in page["data"]})
    csv = api.get("/v1/audit-logs/export", headers=a)
    assert csv.headers["content-type"].startswith("text/csv")
    for action in ("api_key.created", "api_key.rotated", "api_key.revoked", "member.joined"):
        assert action in csv.text
    assert k1 not in csv.text and k2 not in csv.text

    # notifications: the owner hears that bob joined
    n = api.get("/v1/notifications", headers=a).json()
    assert n["unreadCount"] >= 1 and any("joined" in x["title"] for x in n["data"])
    assert api.post("/v1/notifications/read-all", headers=a).json()["updated"] >= 1
    assert api.get("/v1/notifications", headers=a).json()["unreadCount"] == 0


def test_mfa_enrolment_and_sign_in(api) -> None:
    token = signup(api, "erin")
    r = api.post("/v1/auth/mfa/enroll", headers=_auth(token))
    secret = r.json()["secret"]
    assert r.json()["otpauthUri"].startswith("otpauth://totp/")
    assert (
        api.post("/v1/auth/mfa/verify", json={"code": "000000"}, headers=_auth(token)).status_code
        == 422
    )
    r = api.post(
        "/v1/auth/mfa/verify", json={"code": pyotp.TOTP(secret).now()}, headers=_auth(token)
    )
    codes = r.json()["recoveryCodes"]
    assert len(codes) == 10
    creds = {"email": "erin@example.com", "password": PW}
    r = api.post("/v1/auth/signin", json=creds)
    assert r.status_code == 401 and r.json()["error"]["code"] == "mfa_required"
    assert api.post("/v1/auth/signin", json={**creds, "totp": "123456"}).status_code == 401
    assert (
        api.post("/v1/auth/signin", json={**creds, "totp": pyotp.TOTP(secret).now()}).status_code
        == 200
    )
    assert api.post("/v1/auth/signin", json={**creds, "recoveryCode": codes[0]}).status_code == 200
    assert api.post("/v1/auth/signin", json={**creds, "recoveryCode": codes[0]}).status_code == 401


def test_strangers_and_missing_credentials(api, make_org) -> None:
    alice = signup(api, "alice")
    make_org_ = make_org("other")  # an org made by the platform, with a key
    org = api.post("/v1/orgs", json={"name": "Acme", "slug": "acme"}, headers=_auth(alice))
    assert org.status_code == 201
    carol = signup(api, "carol")
    for path in ("/v1/runs", "/v1/members", "/v1/api-keys", "/v1/audit-logs", "/v1/workflows"):
        assert api.get(path, headers=_auth(carol, "acme")).status_code == 404, path
        assert api.get(path, headers=_auth(alice, "other")).status_code == 404, path
    # an API key acts in its own organization whatever the header says
    r = api.get("/v1/members", headers={"x-api-key": make_org_.key, "x-orbin-org": "acme"})
    assert r.status_code == 200 and r.json()["data"] == []
    assert api.get("/v1/runs").status_code == 401
    assert api.get("/v1/runs", headers=_auth("ses_forged")).status_code == 401
    assert api.get("/v1/me", headers={"x-api-key": make_org_.key}).status_code == 401


def test_the_matrix_in_the_readme_is_the_one_enforced() -> None:
    from tenancy.principal import MATRIX, ROLE_PERMISSIONS, ROLES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- permission-matrix -->")[1]
    for permission in MATRIX:
        row = next(line for line in block.splitlines() if line.startswith(f"| `{permission}`"))
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert cells == ["yes" if permission in ROLE_PERMISSIONS[r] else "" for r in ROLES], row
