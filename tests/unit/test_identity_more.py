"""Identity, continued: password reset, organization settings and requireMfa, notification
preferences and the failed-run notice, sign-in throttling, SMTP delivery, the CLI."""

from __future__ import annotations

import email
import os
import re
import time

import pyotp
import pytest
from typer.testing import CliRunner

from tests.unit.test_identity_api import PW, _auth, make_org, signup


@pytest.fixture(autouse=True)
def _fresh_throttle(request):
    from tenancy.identity import throttle

    request.getfixturevalue("no_prefect")
    throttle.reset()
    yield
    throttle.reset()


from tests.unit.test_identity_api import no_prefect  # noqa: E402,F401 - the shared fixture


def _mail(home, to: str, pattern: str) -> str:
    deadline = time.time() + 10
    while time.time() < deadline:
        for path in sorted((home / "outbox").glob("*.eml"), reverse=True):
            msg = email.message_from_bytes(path.read_bytes())
            if to in msg["To"]:
                m = re.search(pattern, msg.get_payload(decode=True).decode())
                if m:
                    return m.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no mail to {to}")


@pytest.fixture
def home(database):
    from tenancy.config import get_settings

    return get_settings().resolved_home


def test_password_reset_by_mail_works_once(api, home) -> None:
    old = signup(api, "fay")
    assert (
        api.post("/v1/auth/password-reset", json={"email": "nobody@example.com"}).status_code == 202
    )
    assert api.post("/v1/auth/password-reset", json={"email": "fay@example.com"}).status_code == 202
    token = _mail(home, "fay@example.com", r"token=([A-Za-z0-9_\-.%]+)")
    from urllib.parse import unquote

    token = unquote(token)
    new_pw = "another long passphrase 7"
    r = api.post("/v1/auth/password-reset/confirm", json={"token": token, "password": new_pw})
    assert r.status_code == 200, r.text
    again = api.post("/v1/auth/password-reset/confirm", json={"token": token, "password": new_pw})
    assert again.status_code == 410
    forged = api.post(
        "/v1/auth/password-reset/confirm", json={"token": token[:-2] + "xx", "password": new_pw}
    )
    assert forged.status_code == 422
    assert api.get("/v1/me", headers=_auth(old)).status_code == 401  # sessions ended
    assert (
        api.post("/v1/auth/signin", json={"email": "fay@example.com", "password": PW}).status_code
        == 401
    )
    assert (
        api.post(
            "/v1/auth/signin", json={"email": "fay@example.com", "password": new_pw}
        ).status_code
        == 200
    )


def test_org_settings_and_require_mfa(api) -> None:
    owner = signup(api, "gus")
    make_org(api, owner, "acme")
    h = _auth(owner, "acme")
    assert [o["slug"] for o in api.get("/v1/orgs", headers=_auth(owner)).json()["data"]] == ["acme"]
    cur = api.get("/v1/orgs/current", headers=h).json()
    assert (
        cur["slug"] == "acme" and cur["role"] == "owner" and cur["settings"]["requireMfa"] is False
    )
    bad = api.patch("/v1/orgs/current", json={"defaultRetryPolicy": {"maxAttempts": 99}}, headers=h)
    assert bad.status_code == 422 and "maxAttempts" in bad.json()["error"]["message"]
    assert (
        api.patch("/v1/orgs/current", json={"alertEmails": ["nope"]}, headers=h).status_code == 422
    )
    r = api.patch("/v1/orgs/current", json={"name": "Acme Inc", "requireMfa": True}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "Acme Inc"
    refused = api.get("/v1/runs", headers=h)
    assert (
        refused.status_code == 403 and refused.json()["error"]["code"] == "mfa_enrollment_required"
    )
    secret = api.post("/v1/auth/mfa/enroll", headers=_auth(owner)).json()["secret"]
    api.post("/v1/auth/mfa/verify", json={"code": pyotp.TOTP(secret).now()}, headers=_auth(owner))
    assert api.get("/v1/runs", headers=h).status_code == 200


def test_preferences_and_a_failed_run_notifies_once(api) -> None:
    owner = signup(api, "hal")
    org = make_org(api, owner, "acme")
    h = _auth(owner, "acme")
    prefs = api.get("/v1/me/notification-preferences", headers=_auth(owner)).json()
    assert prefs["workflow_failed"] == {"inApp": True, "email": False}
    assert (
        api.put(
            "/v1/me/notification-preferences", json={"bogus": {}}, headers=_auth(owner)
        ).status_code
        == 422
    )
    r = api.put(
        "/v1/me/notification-preferences",
        json={"workflow_failed": {"email": True}},
        headers=_auth(owner),
    )
    assert r.json()["workflow_failed"] == {"inApp": True, "email": True}
    wf = api.post(
        "/v1/workflows",
        json={
            "name": "Fails",
            "slug": "fails",
            "status": "active",
            "trigger": {"type": "manual"},
            "steps": [
                {"id": "a", "name": "A", "type": "action", "config": {"action": "transform"}}
            ],
        },
        headers=h,
    ).json()
    run_id = api.post(f"/v1/workflows/{wf['id']}/runs", json={}, headers=h).json()["runId"]
    from tenancy import runs
    from tenancy.db import session_scope

    for _ in range(2):  # two workers finishing the same run: one notice
        with session_scope() as session:
            run = runs.read_run(session, organization_id=org["id"], run_id=run_id)
            runs.finish_run(session, run=run, status="failed", error={"message": "boom"})
    items = api.get("/v1/notifications", headers=h).json()["data"]
    failed = [n for n in items if n["type"] == "workflow_failed"]
    assert len(failed) == 1 and "boom" in failed[0]["message"] and run_id in failed[0]["link"]


def test_sign_in_attempts_are_throttled_per_email(api) -> None:
    signup(api, "ivy")
    codes = [
        api.post(
            "/v1/auth/signin", json={"email": "ivy@example.com", "password": "w" * 12}
        ).status_code
        for _ in range(21)
    ]
    assert codes[-1] == 429 and set(codes[:9]) == {401}


def test_mail_goes_through_smtp_when_configured(api, monkeypatch, home) -> None:
    from aiosmtpd.controller import Controller

    got: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            got.append(envelope.content)
            return "250 OK"

    from tests.support.services import free_port

    port = free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        monkeypatch.setenv("ORBIN_SMTP_URL", f"smtp://127.0.0.1:{port}")
        owner = signup(api, "jon")
        make_org(api, owner, "acme")
        r = api.post(
            "/v1/invitations",
            json={"email": "kim@example.com", "role": "member"},
            headers=_auth(owner, "acme"),
        )
        assert r.status_code == 201
        deadline = time.time() + 10
        while not got and time.time() < deadline:
            time.sleep(0.05)
        assert got and b"kim@example.com" in got[0] and b"token=" in got[0]
        assert not list((home / "outbox").glob("*.eml"))
    finally:
        ctl.stop()


def test_cli_user_and_member_commands(database, make_org) -> None:
    from orbin_cli.main import app

    make_org("acme")
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "user",
            "create",
            "--email",
            "lea@example.com",
            "--name",
            "Lea",
            "--org",
            "acme",
            "--role",
            "admin",
        ],
    )
    assert r.exit_code == 0, r.output
    password = re.search(r"password: (\S+)", r.output).group(1)
    r = runner.invoke(app, ["member", "list", "--org", "acme"])
    assert "lea@example.com\tadmin" in r.output
    r = runner.invoke(app, ["user", "reset-password", "--email", "lea@example.com"])
    assert r.exit_code == 0 and password not in r.output
    r = runner.invoke(app, ["member", "add", "--org", "acme", "--email", "nobody@example.com"])
    assert r.exit_code == 1 and "no account" in r.output
    r = runner.invoke(app, ["member", "remove", "--org", "acme", "--email", "lea@example.com"])
    assert r.exit_code == 0
    assert "lea@example.com" not in runner.invoke(app, ["member", "list", "--org", "acme"]).output
    assert os.environ.get("ORBIN_DATABASE_URL")
