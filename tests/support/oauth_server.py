"""A local OAuth 2 authorization server (authorization code + PKCE S256, refresh tokens),
standing in for Slack's, GitHub's or Salesforce's: it approves at once and redirects back."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID, CLIENT_SECRET = "orbin-client", "orbin-client-secret"


class OAuthServer:
    def __init__(self, access_tokens: list[str], expires_in: int = 3600) -> None:
        """``access_tokens``: handed out in order (by the code, then by each refresh)."""
        self.tokens = list(access_tokens)
        self.expires_in = expires_in
        self.refuse_refresh = False
        self.extra: dict[str, Any] = {}
        self.codes: dict[str, dict[str, str]] = {}
        self.refresh_tokens: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        server = self

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
                server.requests.append({"path": parts.path, **q})
                if parts.path != "/authorize" or q.get("client_id") != CLIENT_ID:
                    return self._json(400, {"error": "invalid_request"})
                if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                    return self._json(400, {"error": "invalid_request", "why": "PKCE required"})
                code = secrets.token_urlsafe(16)
                server.codes[code] = q
                back = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
                self.send_response(302)
                self.send_header("location", back)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                server.requests.append({"path": self.path, **form})
                basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("authorization") != f"Basic {basic}":
                    return self._json(401, {"error": "invalid_client"})
                grant = form.get("grant_type")
                if grant == "authorization_code":
                    pending = server.codes.pop(form.get("code", ""), None)
                    if pending is None or pending["redirect_uri"] != form.get("redirect_uri"):
                        return self._json(400, {"error": "invalid_grant"})
                    digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                    challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
                    if challenge != pending["code_challenge"]:
                        return self._json(400, {"error": "invalid_grant", "why": "PKCE mismatch"})
                elif grant == "refresh_token":
                    if (
                        server.refuse_refresh
                        or form.get("refresh_token") not in server.refresh_tokens
                    ):
                        return self._json(
                            400,
                            {
                                "error": "invalid_grant",
                                "error_description": "refresh token revoked",
                            },
                        )
                else:
                    return self._json(400, {"error": "unsupported_grant_type"})
                refresh = secrets.token_urlsafe(16)
                server.refresh_tokens.add(refresh)
                return self._json(
                    200,
                    {
                        "access_token": server.tokens.pop(0),
                        "token_type": "bearer",
                        "expires_in": server.expires_in,
                        "refresh_token": refresh,
                        **server.extra,
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
