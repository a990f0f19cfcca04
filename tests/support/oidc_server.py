"""A small OpenID Connect provider, run as its own process by the tests: discovery, a JWKS of
RS256 keys, an authorize endpoint that signs the configured user in at once, and a token
endpoint that checks the client's secret, the redirect URI and the PKCE verifier (S256)
before answering a signed ID token carrying the request's nonce.

``POST /_control`` (JSON) sets who signs in next and how the provider misbehaves:
``{"user": {"sub", "email", "email_verified", "name"}, "tamper": "signature" | "nonce" |
"audience" | "issuer" | "expired" | "alg_none" | null, "deny": bool}``. ``GET /_log``: the
requests seen.

    python -m tests.support.oidc_server --host 127.0.0.2 --port 18991
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

CLIENT_ID, CLIENT_SECRET = "orbin-sso-client", "orbin-sso-client-secret-5f3a"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Provider:
    def __init__(self, issuer: str) -> None:
        from joserfc.jwk import RSAKey

        self.issuer = issuer
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.rogue = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.user: dict[str, Any] = {"sub": "u-1", "email": "ada@example.com", "name": "Ada"}
        self.tamper: str | None = None
        self.deny = False
        self.codes: dict[str, dict[str, str]] = {}
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def id_token(self, nonce: str) -> str:
        from joserfc import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email_verified": True,
            **self.user,
        }
        key = self.key
        if self.tamper == "nonce":
            claims["nonce"] = "another-nonce"
        elif self.tamper == "audience":
            claims["aud"] = "another-client"
        elif self.tamper == "issuer":
            claims["iss"] = "https://evil.example"
        elif self.tamper == "expired":
            claims["exp"], claims["iat"] = now - 3600, now - 7200
        elif self.tamper == "signature":
            key = self.rogue  # same kid, another key: the JWKS does not verify it
        if self.tamper == "alg_none":
            header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{header}.{_b64(json.dumps(claims).encode())}."
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        if self.tamper == "payload":  # a claim changed after signing
            head, _, sig = token.split(".")
            claims["email"] = "mallory@example.com"
            token = f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
        return token


def make_handler(p: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, code: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            with p.lock:
                p.log.append({"method": "GET", "path": parts.path, **q})
            if parts.path == "/.well-known/openid-configuration":
                return self._json(200, p.discovery())
            if parts.path == "/jwks":
                return self._json(200, {"keys": [p.key.as_dict(private=False)]})
            if parts.path == "/_log":
                return self._json(200, p.log)
            if parts.path != "/authorize":
                return self._json(404, {"error": "not_found"})
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                return self._json(400, {"error": "invalid_request"})
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                return self._json(400, {"error": "invalid_request", "why": "PKCE required"})
            if "openid" not in q.get("scope", "").split() or not q.get("nonce"):
                return self._json(400, {"error": "invalid_request", "why": "openid + nonce"})
            if p.deny:
                back = {"error": "access_denied", "state": q.get("state", "")}
            else:
                code = secrets.token_urlsafe(16)
                with p.lock:
                    p.codes[code] = q
                back = {"code": code, "state": q.get("state", "")}
            self.send_response(302)
            self.send_header("location", f"{q['redirect_uri']}?{urlencode(back)}")
            self.send_header("content-length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
            if self.path == "/_control":
                change = json.loads(raw or "{}")
                with p.lock:
                    if "user" in change:
                        p.user = change["user"]
                    p.tamper = change.get("tamper")
                    p.deny = bool(change.get("deny"))
                return self._json(200, {"ok": True})
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            with p.lock:
                p.log.append({"method": "POST", "path": self.path, **form})
            if self.path != "/token":
                return self._json(404, {"error": "not_found"})
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("authorization") != f"Basic {basic}":
                return self._json(401, {"error": "invalid_client"})
            if form.get("grant_type") != "authorization_code":
                return self._json(400, {"error": "unsupported_grant_type"})
            with p.lock:
                pending = p.codes.pop(form.get("code", ""), None)
            if pending is None or pending["redirect_uri"] != form.get("redirect_uri"):
                return self._json(400, {"error": "invalid_grant"})
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if _b64(digest) != pending["code_challenge"]:
                return self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
            return self._json(
                200,
                {
                    "access_token": secrets.token_urlsafe(24),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": p.id_token(pending["nonce"]),
                },
            )

    return Handler


class OidcProcess:
    """The provider in a child process (tests talk to it over HTTP only)."""

    def __init__(self, host: str, port: int) -> None:
        self.issuer = f"http://{host}:{port}"
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.oidc_server",
                "--host",
                host,
                "--port",
                str(port),
            ],
            cwd=str(root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.issuer + "/.well-known/openid-configuration").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("the OIDC provider did not start")

    def control(self, **change: Any) -> None:
        httpx.post(self.issuer + "/_control", json=change).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        return httpx.get(self.issuer + "/_log").json()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.2")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    provider = Provider(f"http://{args.host}:{args.port}")
    server = ThreadingHTTPServer((args.host, args.port), make_handler(provider))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
