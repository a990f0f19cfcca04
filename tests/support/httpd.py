"""A local HTTP service for step tests: scripted answers, hit counts, held requests."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class Service:
    """``service.script("/x", Answer(503), Answer(200, {...}))``: answers in order, the last
    repeats; ``service.hold("/slow")`` blocks requests until the returned event is set."""

    def __init__(self) -> None:
        self.hits: dict[str, list[Hit]] = defaultdict(list)
        self._scripts: dict[str, list[Answer]] = {}
        self._holds: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                hit = Hit(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                answer = service._record(hit)
                gate = service._holds.get(parts.path)
                if gate is not None:
                    gate.wait(120)
                if answer.delay:
                    time.sleep(answer.delay)
                with service._lock:
                    service.in_flight[parts.path] -= 1
                payload = json.dumps(
                    answer.body if answer.body is not None else {"path": parts.path}
                ).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _record(self, hit: Hit) -> Answer:
        with self._lock:
            self.hits[hit.path].append(hit)
            self.in_flight[hit.path] += 1
            self.max_in_flight[hit.path] = max(
                self.max_in_flight[hit.path], self.in_flight[hit.path]
            )
            script = self._scripts.get(hit.path)
            if not script:
                return Answer()
            return script.pop(0) if len(script) > 1 else script[0]

    def script(self, path: str, *answers: Answer) -> str:
        with self._lock:
            self._scripts[path] = list(answers)
        return self.url + path

    def hold(self, path: str) -> threading.Event:
        gate = threading.Event()
        self._holds[path] = gate
        return gate

    def count(self, path: str) -> int:
        with self._lock:
            return len(self.hits[path])

    def wait_for(self, path: str, n: int = 1, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while self.count(path) < n:
            assert time.monotonic() < deadline, f"{path} was hit {self.count(path)} times"
            time.sleep(0.05)

    def close(self) -> None:
        for gate in self._holds.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()
