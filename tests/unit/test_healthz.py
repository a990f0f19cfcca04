"""/healthz answers within a second whatever is down, naming the part that did not answer:
here a Prefect server that accepts connections and never answers (stopped with SIGSTOP)."""

from __future__ import annotations

import socket
import time

import pytest

from ingest_api.routers import health
from tenancy import config


@pytest.fixture
def silent_prefect(monkeypatch: pytest.MonkeyPatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)  # the kernel completes handshakes; nothing ever reads or answers
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{s.getsockname()[1]}/api")
    config.reset_settings()
    health._cache.clear()
    yield
    health._cache.clear()
    config.reset_settings()
    s.close()


def test_healthz_answers_within_a_second_when_prefect_hangs(silent_prefect, api) -> None:
    for _ in range(3):
        started = time.monotonic()
        r = api.get("/healthz")
        took = time.monotonic() - started
        assert r.status_code == 503 and took < 1.0, (r.status_code, took)
        body = r.json()
        assert body["checks"]["database"] == "ok"
        assert "no answer" in body["checks"]["prefect"]
