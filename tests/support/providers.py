"""A local server speaking Slack's Web API, GitHub's REST API (Enterprise paths, ``/api/v3``)
and a webhook receiver, for driving slack_sdk and PyGithub over real HTTP.

``rate_limit_next(path, seconds)``: the next call of that path is refused the provider's way
(Slack: 429 + ``Retry-After``; GitHub: 403 + ``Retry-After`` + ``x-ratelimit-remaining: 0``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

SLACK_TOKEN = "xoxb-test-token-123"
GITHUB_TOKEN = "ghp_testtoken123456"
STRIPE_KEY = "sk_test_orbin123456"


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Providers:
    """On ``host:port`` (127.0.0.1, an ephemeral port by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.calls: list[Call] = []
        self.repos = {"octo/hello"}
        self.workflows = {"ci.yml"}
        self._limits: dict[str, float] = {}
        self._lock = threading.Lock()
        providers = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = b"" if obj is None else json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                call = Call(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    raw.decode(errors="replace"),
                )
                path = self.path.split("?")[0]
                with providers._lock:
                    providers.calls.append(call)
                    wait = providers._limits.pop(path, None)
                if path.startswith("/slack/api/"):
                    return providers._slack(self, call, path, wait)
                if path.startswith("/github/api/v3/"):
                    return providers._github(self, call, path[len("/github/api/v3") :], wait)
                if path.startswith("/stripe/v1/"):
                    return providers._stripe(self, call, path[len("/stripe") :], wait)
                if path.startswith("/hook"):
                    if path == "/hook/down":
                        return self._send(503, {"error": "down"})
                    return self._send(200, {"received": True})
                return self._send(404, {"error": "unknown"})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.slack_url = f"{self.url}/slack/api/"
        self.github_url = f"{self.url}/github/api/v3"
        self.stripe_url = f"{self.url}/stripe"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def rate_limit_next(self, path: str, seconds: float) -> None:
        with self._lock:
            self._limits[path] = seconds

    def calls_to(self, suffix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.split("?")[0].endswith(suffix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- Slack Web API: always HTTP 200 with {"ok": false, "error"} but for rate limits ---
    def _slack(self, h: Any, call: Call, path: str, wait: float | None) -> None:
        if wait is not None:
            return h._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
        if call.headers.get("authorization") != f"Bearer {SLACK_TOKEN}":
            return h._send(200, {"ok": False, "error": "invalid_auth"})
        method = path.rsplit("/", 1)[-1]
        if call.headers.get("content-type", "").startswith("application/json"):
            args = call.json() or {}
        else:
            args = {k: v[0] for k, v in parse_qs(call.body).items()}
        if method == "auth.test":
            return h._send(
                200,
                {
                    "ok": True,
                    "team": "Test Team",
                    "user": "orbin",
                    "team_id": "T1",
                    "user_id": "U1",
                },
            )
        if method == "chat.postMessage":
            if not args.get("channel"):
                return h._send(200, {"ok": False, "error": "channel_not_found"})
            if not args.get("text") and not args.get("blocks"):
                return h._send(200, {"ok": False, "error": "no_text"})
            ts = f"1700000000.{len(self.calls):06d}"
            return h._send(
                200,
                {"ok": True, "channel": "C123", "ts": ts, "message": {"text": args.get("text")}},
            )
        return h._send(200, {"ok": False, "error": "unknown_method"})

    # --- GitHub REST ---
    def _github(self, h: Any, call: Call, rest: str, wait: float | None) -> None:
        if wait is not None:
            return h._send(
                403,
                {"message": "API rate limit exceeded", "documentation_url": "https://docs"},
                {"Retry-After": str(int(wait)), "x-ratelimit-remaining": "0"},
            )
        if call.headers.get("authorization") not in (
            f"token {GITHUB_TOKEN}",
            f"Bearer {GITHUB_TOKEN}",
        ):
            return h._send(401, {"message": "Bad credentials"})
        parts = rest.strip("/").split("/")
        base = f"http://{call.headers.get('host')}/github/api/v3"
        if rest == "/user":
            return h._send(200, {"login": "octocat", "id": 1, "type": "User"})
        full = "/".join(parts[1:3]) if len(parts) >= 3 and parts[0] == "repos" else ""
        if full and full not in self.repos:
            return h._send(404, {"message": "Not Found"})
        if len(parts) == 3 and call.method == "GET":
            return h._send(
                200, {"id": 3, "name": parts[2], "full_name": full, "url": f"{base}/repos/{full}"}
            )
        if parts[3:] == ["issues"] and call.method == "POST":
            data = call.json() or {}
            if not data.get("title"):
                return h._send(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [{"field": "title", "code": "missing_field"}],
                    },
                )
            return h._send(
                201,
                {
                    "id": 7,
                    "number": 42,
                    "title": data["title"],
                    "state": "open",
                    "url": f"{base}/repos/{full}/issues/42",
                    "html_url": f"https://github.test/{full}/issues/42",
                },
            )
        if parts[3:5] == ["actions", "workflows"] and len(parts) >= 6:
            wf = parts[5]
            if wf not in self.workflows:
                return h._send(404, {"message": "Not Found"})
            if len(parts) == 6 and call.method == "GET":
                return h._send(
                    200,
                    {
                        "id": 161335,
                        "name": "CI",
                        "path": f".github/workflows/{wf}",
                        "state": "active",
                        "url": f"{base}/repos/{full}/actions/workflows/{wf}",
                    },
                )
            if parts[6:] == ["dispatches"] and call.method == "POST":
                return h._send(204, None)
        return h._send(404, {"message": "Not Found"})

    # --- Stripe: form-encoded in, JSON out, errors as {"error": {"type", "message"}} ---
    def _stripe(self, h: Any, call: Call, path: str, wait: float | None) -> None:
        def error(status: int, kind: str, message: str) -> None:
            h._send(status, {"error": {"type": kind, "message": message}})

        if wait is not None:
            return error(429, "rate_limit_error", "Too many requests")
        if call.headers.get("authorization") != f"Bearer {STRIPE_KEY}":
            return error(401, "invalid_request_error", "Invalid API Key provided: sk_****")
        form = {k: v[0] for k, v in parse_qs(call.body).items()}
        if path == "/v1/balance" and call.method == "GET":
            return h._send(
                200,
                {
                    "object": "balance",
                    "livemode": False,
                    "pending": [],
                    "available": [{"amount": 1200, "currency": "usd"}],
                },
            )
        if path == "/v1/customers" and call.method == "POST":
            return h._send(
                200,
                {
                    "id": "cus_test1",
                    "object": "customer",
                    "email": form.get("email"),
                    "name": form.get("name"),
                },
            )
        if path == "/v1/invoiceitems" and call.method == "POST":
            if not form.get("customer", "").startswith("cus_"):
                return error(400, "invalid_request_error", "No such customer")
            return h._send(
                200,
                {
                    "id": "ii_test1",
                    "object": "invoiceitem",
                    "amount": int(form["amount"]),
                    "currency": form["currency"],
                },
            )
        return error(404, "invalid_request_error", "Unrecognized request URL")
