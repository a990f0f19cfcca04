"""Single sign-on with OpenID Connect against a real provider process (tests/support/
oidc_server.py: discovery, JWKS with RS256 keys, authorize, a token endpoint that checks
PKCE), through the API in-process: settings by admins only, the secret encrypted at rest and
never shown, users created or linked, sessions bound to the organization; a wrong domain, a
bad or replayed state and every tampered ID token refused. SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.oidc_server import CLIENT_ID, CLIENT_SECRET, OidcProcess
from tests.support.services import free_port

PW = "correct horse battery staple 42"


@pytest.fixture(scope="module")
def idp():
    provider = OidcProcess("127.0.0.2", free_port())
    yield provider
    provider.close()


@pytest.fixture(autouse=True)
def allow_provider(idp, monkeypatch):
    """Steps and SSO share one egress policy: the provider's address is allowed by the
    operator, as ORBIN_EGRESS_ALLOW would in production for an internal provider."""

    async def ensure_pool(slug: str, concurrency: int) -> bool:
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)
    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", urlsplit(idp.issuer).netloc)
    from tenancy import config

    config.reset_settings()
    idp.control(user={"sub": "u-ada", "email": "ada@acme.test", "name": "Ada"})
    yield
    config.reset_settings()


def auth(token: str, org: str | None = "acme") -> dict[str, str]:
    h = {"authorization": f"Bearer {token}"}
    if org:
        h["x-orbin-org"] = org
    return h


def signup(api, email: str) -> str:
    r = api.post("/v1/auth/signup", json={"email": email, "password": PW, "name": email[:3]})
    assert r.status_code == 201, r.text
    return r.json()["token"]


@pytest.fixture
def acme(api, idp) -> dict[str, str]:
    """Acme, owned by Olga, with Adam an admin who sets SSO up (new members: viewers)."""
    olga = signup(api, "olga@acme.test")
    assert api.post("/v1/orgs", json={"name": "Acme", "slug": "acme"}, headers=auth(olga, None))
    adam = signup(api, "adam@acme.test")
    _join(api, olga, "adam@acme.test", "admin", adam)
    config = {
        "issuer": idp.issuer,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "allowedDomains": ["acme.test"],
        "defaultRole": "viewer",
    }
    r = api.put("/v1/orgs/current/sso", json=config, headers=auth(adam))
    assert r.status_code == 200, r.text
    return {"olga": olga, "adam": adam}


def _join(api, owner: str, email: str, role: str, token: str) -> None:
    """Adds an existing account to Acme (an invitation accepted with its password)."""
    import re

    from tenancy.db import read_scope
    from tenancy.models import MailItem

    r = api.post("/v1/invitations", json={"email": email, "role": role}, headers=auth(owner))
    assert r.status_code == 201, r.text
    with read_scope() as s:
        body = [m.body for m in s.query(MailItem).all() if m.to_address == email][-1]
    invite = re.search(r"token=([A-Za-z0-9_\-\.~%]+)", body).group(1)
    r = api.post("/v1/invitations/accept", json={"token": invite, "password": PW})
    assert r.status_code == 200, r.text


def sso_round_trip(api, slug: str = "acme", *, tweak=None) -> httpx.Response:
    """The browser's hops: the API's login, the provider's authorize, the API's callback."""
    r = api.get(f"/v1/auth/sso/{slug}/login", follow_redirects=False)
    assert r.status_code == 302, r.text
    to_provider = r.headers["location"]
    back = httpx.get(to_provider, follow_redirects=False)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["location"])
    assert callback.path == f"/v1/auth/sso/{slug}/callback"
    query = callback.query if tweak is None else tweak(callback.query)
    return api.get(f"{callback.path}?{query}", follow_redirects=False)


def test_settings_are_for_admins_and_never_show_the_secret(api, acme, make_org) -> None:
    from sqlalchemy import select

    from tenancy import crypto
    from tenancy.db import read_scope
    from tenancy.identity.tables import SsoConfig

    r = api.get("/v1/orgs/current/sso", headers=auth(acme["adam"]))
    assert r.status_code == 200
    body = r.json()
    assert body["clientSecretSet"] is True and CLIENT_SECRET not in r.text
    assert body["redirectUri"].endswith("/v1/auth/sso/acme/callback")
    with read_scope() as s:
        stored = s.scalars(select(SsoConfig)).one().client_secret_enc
    assert CLIENT_SECRET not in stored and crypto.decrypt(stored) == CLIENT_SECRET

    viewer = signup(api, "vera@acme.test")
    _join(api, acme["olga"], "vera@acme.test", "member", viewer)
    assert api.get("/v1/orgs/current/sso", headers=auth(viewer)).status_code == 403
    assert api.delete("/v1/orgs/current/sso", headers=auth(viewer)).status_code == 403
    assert api.get("/v1/orgs/current/sso").status_code == 401
    other = make_org("other")
    r = api.get("/v1/orgs/current/sso", headers={"x-api-key": other.key})
    assert r.status_code == 403, "a secret key may not manage single sign-on"
    stranger = signup(api, "sam@else.test")
    assert api.get("/v1/orgs/current/sso", headers=auth(stranger)).status_code == 404

    audit = api.get("/v1/audit-logs?action=sso.*", headers=auth(acme["olga"]))
    assert [e["action"] for e in audit.json()["data"]] == ["sso.configured"]
    assert CLIENT_SECRET not in audit.text


def test_bad_settings_are_refused_naming_the_field(api, acme, idp) -> None:
    base = {"clientId": CLIENT_ID, "allowedDomains": ["acme.test"], "defaultRole": "member"}
    cases = [
        ({**base, "issuer": idp.issuer + "/other"}, "issuer", 503),  # no discovery there
        ({**base, "issuer": "ftp://x"}, "issuer", 422),
        ({**base, "issuer": idp.issuer, "allowedDomains": []}, "allowedDomains", 422),
        ({**base, "issuer": idp.issuer, "allowedDomains": ["not a domain"]}, "allowedDomains", 422),
        ({**base, "issuer": idp.issuer, "defaultRole": "owner"}, "defaultRole", 422),
    ]
    for body, field, status in cases:
        r = api.put("/v1/orgs/current/sso", json=body, headers=auth(acme["adam"]))
        assert r.status_code == status, (body, r.text)
        if status == 422:
            assert r.json()["error"]["details"][0]["field"] == field
    r = api.put(
        "/v1/orgs/current/sso",
        json={**base, "issuer": "http://127.0.0.1:5432"},
        headers=auth(acme["adam"]),
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "egress_refused"


def test_first_sign_in_creates_the_user_then_links_it(api, acme, idp) -> None:
    r = sso_round_trip(api)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] is True and body["user"]["email"] == "ada@acme.test"
    token = body["token"]
    me = api.get("/v1/me", headers=auth(token, None)).json()
    assert [(o["slug"], o["role"]) for o in me["organizations"]] == [("acme", "viewer")]
    assert api.get("/v1/runs", headers=auth(token)).status_code == 200
    assert api.post("/v1/workflows", json={}, headers=auth(token)).status_code == 403

    again = sso_round_trip(api)
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["user"]["id"] == body["user"]["id"]

    log = idp.log()
    authorize = [e for e in log if e["path"] == "/authorize"][-1]
    assert authorize["code_challenge_method"] == "S256" and authorize["nonce"]
    token_call = [e for e in log if e["path"] == "/token"][-1]
    assert token_call["code_verifier"], "the code was exchanged with its PKCE verifier"
    audit = api.get("/v1/audit-logs?action=sso.login", headers=auth(acme["olga"])).json()
    assert len(audit["data"]) == 2 and audit["data"][-1]["metadata"]["created"] is True


def test_an_sso_session_acts_in_its_organization_only(api, acme, idp, make_org) -> None:
    adam_beta = api.post(
        "/v1/orgs", json={"name": "Beta", "slug": "beta"}, headers=auth(acme["adam"], None)
    )
    assert adam_beta.status_code == 201
    idp.control(user={"sub": "u-adam", "email": "adam@acme.test", "name": "Adam"})
    r = sso_round_trip(api)
    assert r.status_code == 200 and r.json()["created"] is False, "linked to Adam's account"
    token = r.json()["token"]
    assert api.get("/v1/members", headers=auth(token, "acme")).status_code == 200
    assert api.get("/v1/members", headers=auth(token, "beta")).status_code == 404


def test_a_wrong_domain_is_refused_and_no_account_made(api, acme, idp) -> None:
    idp.control(user={"sub": "u-eve", "email": "eve@evil.test", "name": "Eve"})
    r = sso_round_trip(api)
    assert r.status_code == 403 and r.json()["error"]["code"] == "sso_domain_not_allowed"
    from tenancy.db import read_scope
    from tenancy.models import User

    with read_scope() as s:
        assert s.query(User).filter(User.email == "eve@evil.test").count() == 0
    idp.control(user={"sub": "u-x", "email": "x@acme.test", "email_verified": False})
    assert sso_round_trip(api).json()["error"]["code"] == "sso_no_email"


def _swap_state(query: str) -> str:
    q = parse_qs(query)
    return f"code={q['code'][0]}&state=forged-{q['state'][0][:10]}"


def test_a_bad_or_replayed_state_is_refused(api, acme, idp) -> None:
    r = sso_round_trip(api, tweak=_swap_state)
    assert r.status_code == 401 and r.json()["error"]["code"] == "sso_state_invalid"

    seen: list[str] = []

    def keep(query: str) -> str:
        seen.append(query)
        return query

    assert sso_round_trip(api, tweak=keep).status_code == 200
    replay = api.get(f"/v1/auth/sso/acme/callback?{seen[0]}")
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "sso_state_invalid"

    # Another browser (without the login's cookie) cannot finish someone's sign-in.
    start = api.get("/v1/auth/sso/acme/login", follow_redirects=False)
    back = urlsplit(httpx.get(start.headers["location"]).headers["location"])
    api.cookies.clear()
    r = api.get(f"{back.path}?{back.query}")
    assert r.status_code == 401 and r.json()["error"]["code"] == "sso_state_invalid"


@pytest.mark.parametrize(
    "tamper", ["signature", "payload", "nonce", "audience", "issuer", "expired", "alg_none"]
)
def test_a_tampered_id_token_is_refused(api, acme, idp, tamper: str) -> None:
    idp.control(user={"sub": "u-ada", "email": "ada@acme.test", "name": "Ada"}, tamper=tamper)
    r = sso_round_trip(api)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "sso_token_invalid"
    assert "token" not in r.json()
    failed = api.get("/v1/audit-logs?action=sso.login_failed", headers=auth(acme["olga"])).json()
    assert [e["metadata"]["reason"] for e in failed["data"]] == ["sso_token_invalid"]


def test_outsiders_and_owners_are_not_taken_over(api, acme, idp) -> None:
    signup(api, "out@acme.test")  # an account that is not a member of Acme
    idp.control(user={"sub": "u-out", "email": "out@acme.test"})
    r = sso_round_trip(api)
    assert r.status_code == 409 and r.json()["error"]["code"] == "sso_account_exists"
    # The owner, while an admin saved the settings: not linked.
    idp.control(user={"sub": "u-olga", "email": "olga@acme.test"})
    r = sso_round_trip(api)
    assert r.status_code == 403 and r.json()["error"]["code"] == "sso_link_refused"
    body = api.get("/v1/orgs/current/sso", headers=auth(acme["olga"])).json()
    resave = {k: body[k] for k in ("issuer", "clientId", "allowedDomains", "defaultRole")}
    assert (
        api.put("/v1/orgs/current/sso", json=resave, headers=auth(acme["olga"])).status_code == 200
    )
    assert sso_round_trip(api).status_code == 200, "an owner saved them: owners may link"


def test_the_provider_refusing_and_unknown_orgs(api, acme, idp) -> None:
    idp.control(deny=True)
    r = sso_round_trip(api)
    assert r.status_code == 401 and r.json()["error"]["code"] == "sso_denied"
    assert api.get("/v1/auth/sso/nowhere/login").status_code == 404
    assert api.delete("/v1/orgs/current/sso", headers=auth(acme["adam"])).status_code == 204
    assert api.get("/v1/auth/sso/acme/login").status_code == 404
