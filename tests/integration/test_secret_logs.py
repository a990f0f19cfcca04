"""No secret in any log: a full run of the platform (`orbin up`, Orbin's loggers at DEBUG)
through every way a secret is issued or sent: passwords (right and wrong), session tokens,
API keys of each type and a rotated one, an invitation's and a password reset's link tokens,
a TOTP seed and recovery codes, the MFA step's ticket, an OIDC client secret and single
sign-on's state and one-time codes, a webhook root secret; events run by the worker. Then
every log file of the run (API, worker, dashboard, Prefect server, the supervisor) is read
for each of them."""

from __future__ import annotations

import email
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest

from tests.support.oidc_server import CLIENT_ID, CLIENT_SECRET, OidcProcess
from tests.support.services import Platform, free_port, start_platform

pytestmark = pytest.mark.prefect

PW = "a long passphrase nobody logs"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = start_platform(
        tmp_path_factory.mktemp("orbin-logs"), extra_env={"ORBIN_LOG_LEVEL": "DEBUG"}
    )
    try:
        yield p
    finally:
        p.stop()


class Secrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, what: str, value: str | None) -> str:
        assert value, f"no {what}"
        self.values[f"{what} #{len(self.values)}"] = value
        return value


def mail_token(home: Path, to: str, pattern: str) -> str:
    for _ in range(60):
        for path in sorted((home / "outbox").rglob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes())
            if to not in (msg.get("To") or ""):
                continue
            text = b" ".join(
                p.get_payload(decode=True) or b"" for p in msg.walk() if not p.is_multipart()
            ).decode(errors="replace")
            m = re.search(pattern, text)
            if m:
                return m.group(1)
        time.sleep(0.5)
    raise AssertionError(f"no mail to {to}")


def test_no_secret_issued_appears_in_any_log(platform: Platform) -> None:
    p, s = platform, Secrets()
    api = httpx.Client(base_url=p.api_url, timeout=60)
    tag = uuid.uuid4().hex[:6]
    owner, invitee, slug = f"o{tag}@logs.test", f"i{tag}@logs.test", f"logs-{tag}"

    # The demo login and key are printed once, on first start, to the terminal of `orbin up`
    # (captured in up.log here): that banner is their one reveal, and it is checked below.
    banner = {"demo password": p.demo_password, "demo key": p.demo_key}
    token = s.add(
        "session",
        api.post(
            "/v1/auth/signup", json={"email": owner, "password": s.add("password", PW), "name": "O"}
        ).json()["token"],
    )
    auth = {"authorization": f"Bearer {token}", "x-orbin-org": slug}
    assert (
        api.post("/v1/orgs", json={"name": "Logs", "slug": slug}, headers=auth).status_code == 201
    )
    wrong = s.add("wrong password", "not the passphrase at all")
    assert api.post("/v1/auth/signin", json={"email": owner, "password": wrong}).status_code == 401

    # Keys of each type, one rotated; events through them, run by the worker.
    for body in (
        {"name": "ci", "type": "secret"},
        {"name": "web", "type": "publishable"},
        {"name": "ro", "type": "restricted", "permissions": ["runs:read"]},
    ):
        r = api.post("/v1/api-keys", json=body, headers=auth)
        s.add(f"{body['type']} key", r.json()["key"])
    key_id = r.json()["id"]
    rotated = api.post(f"/v1/api-keys/{key_id}/rotate", json={"graceSeconds": 0}, headers=auth)
    s.add("rotated key", rotated.json()["key"])
    r = api.post(
        "/v1/events",
        headers={"x-api-key": p.demo_key},
        json={"type": "demo.hello", "data": {"name": "Logs"}},
    )
    run_id = r.json()["runIds"][0]
    r = api.post("/v1/webhook-secret/rotate", json={"graceSeconds": 0}, headers=auth)
    s.add("webhook root secret", r.json().get("secret"))

    # An invitation accepted; a password reset by e-mail.
    api.post("/v1/invitations", json={"email": invitee, "role": "member"}, headers=auth)
    invite = s.add("invitation token", mail_token(p.home, invitee, r"token=([A-Za-z0-9_\-.~%]+)"))
    r = api.post("/v1/invitations/accept", json={"token": invite, "password": PW, "name": "I"})
    s.add("session", r.json()["token"])
    api.post("/v1/auth/password-reset", json={"email": invitee})
    reset = s.add("reset token", mail_token(p.home, invitee, r"reset-password\?token=([^\s]+)"))
    new_pw = s.add("new password", "another long passphrase")
    r = api.post("/v1/auth/password-reset/confirm", json={"token": reset, "password": new_pw})
    s.add("session", r.json()["token"])

    # MFA: the seed, recovery codes; sign-ins with a code and with a recovery code.
    seed = s.add("TOTP seed", api.post("/v1/auth/mfa/enroll", headers=auth).json()["secret"])
    codes = api.post("/v1/auth/mfa/verify", json={"code": pyotp.TOTP(seed).now()}, headers=auth)
    recovery = [s.add("recovery code", c) for c in codes.json()["recoveryCodes"]]
    r = api.post(
        "/v1/auth/signin", json={"email": owner, "password": PW, "recoveryCode": recovery[0]}
    )
    s.add("session", r.json()["token"])

    # The dashboard: password, then the MFA step's ticket and code.
    dash = httpx.Client(base_url=p.dashboard_url, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', dash.get("/signin").text).group(1)
    s.add("csrf token", csrf)
    dash.post("/signin", data={"email": owner, "password": PW, "csrf": csrf, "next": "/"})
    s.add("MFA ticket", dash.cookies.get("orbin_mfa"))
    r = dash.post("/signin", data={"step": "mfa", "code": pyotp.TOTP(seed).now(), "csrf": csrf})
    assert r.status_code == 303, r.text
    s.add("dashboard session", dash.cookies.get("orbin_session"))
    dash.post("/signout")

    # Single sign-on, through the dashboard, with a real provider.
    idp = OidcProcess("127.0.0.2", free_port())
    try:
        idp.control(user={"sub": "s-1", "email": f"sso{tag}@logs.test", "name": "S"})
        s.add("OIDC client secret", CLIENT_SECRET)
        body = {
            "issuer": idp.issuer,
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "allowedDomains": ["logs.test"],
            "defaultRole": "viewer",
        }
        assert api.put("/v1/orgs/current/sso", json=body, headers=auth).status_code == 200
        seen: list[str] = []
        browser = httpx.Client(
            timeout=60,
            follow_redirects=True,
            event_hooks={"request": [lambda req: seen.append(str(req.url))]},
        )
        csrf = re.search(
            r'name="csrf" value="([^"]+)"', browser.get(p.dashboard_url + "/signin").text
        ).group(1)
        r = browser.post(
            p.dashboard_url + "/signin/sso", data={"org": slug, "csrf": csrf, "next": "/"}
        )
        assert r.status_code == 200 and browser.cookies.get("orbin_session"), seen
        s.add("SSO session", browser.cookies.get("orbin_session"))
        for url in seen:
            for name, values in parse_qs(urlsplit(url).query).items():
                if name in ("state", "code", "bind", "nonce", "code_challenge"):
                    s.add(f"SSO {name}", values[0])
        for entry in idp.log():
            if entry.get("code_verifier"):
                s.add("PKCE verifier", entry["code_verifier"])
    finally:
        idp.close()

    for _ in range(60):  # the worker has run the event
        r = api.get(f"/v1/runs/{run_id}", headers={"x-api-key": p.demo_key})
        if r.json().get("status") == "completed":
            break
        time.sleep(1)
    assert r.json()["status"] == "completed"

    logs = [p.log_path, *sorted((p.home / "logs").glob("*.log"))]
    names = {path.name for path in logs}
    assert {"api.log", "worker.log", "dashboard.log", "up.log"} <= names, names
    text = {path.name: path.read_text(errors="replace") for path in logs}
    assert sum(len(t) for t in text.values()) > 1000, "the run logged something"
    found = [
        f"{what} in {name}"
        for what, value in s.values.items()
        for name, body in text.items()
        if value in body
    ]
    for what, value in banner.items():
        after_banner = text["up.log"].split("Press Ctrl-C to stop.", 1)[1]
        assert value in text["up.log"] and value not in after_banner, f"the {what}: banner only"
        found += [
            f"{what} in {name}" for name, body in text.items() if name != "up.log" and value in body
        ]
    print(f"{len(s.values)} secrets, {sum(len(t) for t in text.values())} bytes of logs")
    assert not found, found
