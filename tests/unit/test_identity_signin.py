"""Sign-in at the service layer and its trail: one password policy for every way an account
gets a password; the MFA ticket's second step; audit entries for sign-ins and MFA changes,
read back over the API. SQLite and PostgreSQL."""

from __future__ import annotations

import pyotp
import pytest

PW = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch):
    async def ensure_pool(slug: str, concurrency: int) -> bool:
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)


def test_one_password_policy_everywhere(database: str, api) -> None:
    from tenancy.db import session_scope
    from tenancy.errors import InvalidInput
    from tenancy.identity.accounts import set_password
    from tenancy.identity.passwords import MIN_LENGTH
    from tenancy.orgs import create_user

    short = "x" * (MIN_LENGTH - 1)
    with pytest.raises(InvalidInput, match=f"at least {MIN_LENGTH}"), session_scope() as s:
        create_user(s, email="a@example.com", name="A", password=short)
    with session_scope() as s:
        create_user(s, email="b@example.com", name="B", password="x" * MIN_LENGTH)
    with pytest.raises(InvalidInput, match=f"at least {MIN_LENGTH}"), session_scope() as s:
        set_password(s, "b@example.com", short)
    r = api.post("/v1/auth/signup", json={"email": "c@example.com", "password": short, "name": "C"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "password"


def test_the_mfa_ticket_makes_one_session(database: str) -> None:
    from tenancy.db import session_scope
    from tenancy.errors import Unauthenticated
    from tenancy.identity import accounts
    from tenancy.orgs import create_user

    with session_scope() as s:
        user = create_user(s, email="m@example.com", name="M", password=PW)
        secret = accounts.begin_mfa_enrollment(s, user)["secret"]
        accounts.verify_mfa_enrollment(s, user, pyotp.TOTP(secret).now())
    with pytest.raises(accounts.MfaRequired) as info:
        accounts.sign_in(email="m@example.com", password=PW, mfa_ticket=True)
    ticket = info.value.ticket
    assert ticket and info.value.code == "mfa_required"
    with pytest.raises(accounts.MfaRequired) as api_like:  # the API's one-shot sign-in
        accounts.sign_in(email="m@example.com", password=PW)
    assert api_like.value.ticket is None
    with pytest.raises(Unauthenticated) as bad:
        accounts.complete_mfa_sign_in(ticket=ticket, code="123456")
    assert bad.value.code == "mfa_invalid"
    token, user_out = accounts.complete_mfa_sign_in(ticket=ticket, code=pyotp.TOTP(secret).now())
    assert token.startswith("ses_") and user_out["email"] == "m@example.com"
    with pytest.raises(Unauthenticated) as again:
        accounts.complete_mfa_sign_in(ticket=ticket, code=pyotp.TOTP(secret).now())
    assert again.value.code == "mfa_expired"
    with pytest.raises(Unauthenticated):  # a wrong password never yields a ticket
        accounts.sign_in(email="m@example.com", password="wrong password!", mfa_ticket=True)


def test_sign_ins_and_mfa_changes_are_audited_without_secrets(api) -> None:
    r = api.post("/v1/auth/signup", json={"email": "o@example.com", "password": PW, "name": "O"})
    token = r.json()["token"]
    auth = {"authorization": f"Bearer {token}"}
    assert (
        api.post("/v1/orgs", json={"name": "Acme", "slug": "acme"}, headers=auth).status_code == 201
    )
    api.post("/v1/auth/signin", json={"email": "o@example.com", "password": "not it at all"})
    api.post("/v1/auth/signin", json={"email": "o@example.com", "password": PW})
    secret = api.post("/v1/auth/mfa/enroll", headers=auth).json()["secret"]
    codes = api.post(
        "/v1/auth/mfa/verify", json={"code": pyotp.TOTP(secret).now()}, headers=auth
    ).json()["recoveryCodes"]
    signed = api.post(
        "/v1/auth/signin",
        json={"email": "o@example.com", "password": PW, "recoveryCode": codes[0]},
    )
    assert signed.status_code == 200
    r = api.post(
        "/v1/auth/mfa/disable",
        json={"password": PW, "code": pyotp.TOTP(secret).now()},
        headers=auth,
    )
    assert r.status_code == 200
    r = api.get("/v1/audit-logs?action=user.*", headers={**auth, "x-orbin-org": "acme"})
    assert r.status_code == 200, r.text
    entries = r.json()["data"]
    actions = [e["action"] for e in entries]
    for action in (
        "user.signin_failed",
        "user.signed_in",
        "user.mfa_enrollment_started",
        "user.mfa_enabled",
        "user.mfa_disabled",
    ):
        assert action in actions, (action, actions)
    methods = {e["metadata"].get("method") for e in entries if e["action"] == "user.signed_in"}
    assert methods == {"password", "password+recovery_code"}
    text = r.text
    for secret_value in (PW, secret, token, signed.json()["token"], *codes):
        assert secret_value not in text
