"""A small HTTP server for processes that have no API of their own (the worker):
``/metrics``, ``/livez`` and ``/readyz``, on a thread, so a busy event loop still answers.

``health`` is called on each ``/livez`` or ``/readyz``: it returns (alive, ready, details).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from telemetry import metrics

log = logging.getLogger("orbin.telemetry")

Health = Callable[[], tuple[bool, bool, dict[str, Any]]]


class OpsServer:
    def __init__(self, host: str, port: int, health: Health) -> None:
        outer = self
        self.health = health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="orbin-ops-http", daemon=True
        )

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("metrics and health on port %d", self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        if path == "/metrics":
            if not metrics.authorized(req.headers.get("authorization")):
                body = b'{"error":{"code":"unauthenticated","message":"a valid metrics bearer token is required","details":[]}}'  # noqa: E501
                self._send(req, 401, body, "application/json", {"www-authenticate": "Bearer"})
                return
            body, content_type = metrics.exposition()
            self._send(req, 200, body, content_type)
            return
        if path in ("/livez", "/healthz", "/readyz"):
            try:
                alive, ready, details = self.health()
            except Exception as exc:  # noqa: BLE001 - reported as not ready
                alive, ready, details = True, False, {"error": exc.__class__.__name__}
            ok = alive if path == "/livez" else (alive and ready)
            doc = {"status": "ok" if ok else "unavailable", "checks": details}
            self._send(req, 200 if ok else 503, json.dumps(doc).encode(), "application/json")
            return
        self._send(
            req,
            404,
            b'{"error":{"code":"not_found","message":"no such path","details":[]}}',
            "application/json",
        )  # noqa: E501

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        req.send_response(status)
        req.send_header("content-type", content_type)
        req.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(body)
