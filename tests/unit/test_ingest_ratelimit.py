"""Rate limits per API key and per organization: in memory, in Redis shared by two API
replicas, and through a Redis outage (counted in memory, never a 5xx)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import require_redis
from tests.support import services


def _within_one_window(seconds: float) -> None:
    """Wait, if need be, so that a burst of ``seconds`` stays within one minute window.

    The sliding window counter's windows are whole minutes since the epoch; a burst that
    crosses into the next one is weighed down by the time passed and may let a few more
    through (as it should), which a test of the exact figure must not run into.
    """
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)


def _post(client, key: str):
    return client.post("/v1/events", headers={"x-api-key": key}, json={"type": "tick"})


def _assert_limited(r, limit: int, scope: str) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["x-ratelimit-limit"] == str(limit)
    assert r.headers["x-ratelimit-remaining"] == "0"
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 60
    assert int(r.headers["x-ratelimit-reset"]) >= int(time.time())
    err = r.json()["error"]
    assert err["code"] == "rate_limited" and err["details"][0]["scope"] == scope
    assert f"{limit} requests per minute" in err["message"]


def test_free_plan_key_gets_100_per_minute_then_429(api, make_org) -> None:
    org = make_org("free1")
    remaining = []
    _within_one_window(15)
    for i in range(100):
        # Every authenticated /v1 route counts, whatever it answers.
        r = _post(api, org.key) if i % 2 else api.get("/v1/runs", headers={"x-api-key": org.key})
        assert r.status_code in (200, 202), r.text
        assert r.headers["x-ratelimit-limit"] == "100"
        remaining.append(int(r.headers["x-ratelimit-remaining"]))
    assert remaining == list(range(99, -1, -1))
    _assert_limited(_post(api, org.key), 100, "key")
    _assert_limited(api.get("/v1/missing", headers={"x-api-key": org.key}), 100, "key")
    assert api.get("/healthz").status_code in (200, 503)  # not rate limited, no headers
    assert "x-ratelimit-limit" not in api.get("/healthz").headers


def test_organization_limit_spans_its_keys(api, make_org) -> None:
    from tenancy.db import session_scope
    from tenancy.keys import create_api_key

    org = make_org("free2")
    with session_scope() as session:
        keys = [org.key] + [
            create_api_key(session, organization_id=org.id, name=f"k{i}", type="secret").plaintext
            for i in range(3)
        ]
    _within_one_window(20)
    for key in keys[:3]:
        for _ in range(100):
            assert _post(api, key).status_code == 202
    # 300 requests in the minute: the organization's budget is spent, the fourth key is refused.
    _assert_limited(_post(api, keys[3]), 300, "organization")
    # A key over its own limit does not use up the organization's budget of others.
    other = make_org("free3")
    for _ in range(100):
        assert _post(api, other.key).status_code == 202
    codes = [_post(api, other.key).status_code for _ in range(50)]
    # The sliding window weighs the previous minute down as time passes: on a slow machine a
    # minute boundary crossed mid-burst may let a few more through, never the burst.
    assert set(codes) <= {202, 429} and codes.count(429) >= 45, codes


def _app_client(redis_url: str | None):
    from fastapi.testclient import TestClient

    from ingest_api import create_app
    from tenancy.config import reset_settings

    if redis_url:
        os.environ["ORBIN_REDIS_URL"] = redis_url
    else:
        os.environ.pop("ORBIN_REDIS_URL", None)
    reset_settings()
    try:
        app = create_app()
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        return client
    finally:
        os.environ.pop("ORBIN_REDIS_URL", None)
        reset_settings()


@pytest.fixture
def replicas(database: str) -> Iterator[list]:
    require_redis()
    clients = [_app_client(services.REDIS_URL), _app_client(services.REDIS_URL)]
    yield clients
    for c in clients:
        c.__exit__(None, None, None)


def test_two_api_replicas_share_the_limit_in_redis(replicas, make_org) -> None:
    a, b = replicas
    org = make_org("shared")
    _within_one_window(15)
    for i in range(100):
        r = _post(a if i % 2 else b, org.key)
        assert r.status_code == 202, r.text
        assert r.headers["x-ratelimit-remaining"] == str(99 - i)
    _assert_limited(_post(a, org.key), 100, "key")
    _assert_limited(_post(b, org.key), 100, "key")

    import redis

    keys = redis.Redis.from_url(services.REDIS_URL).keys("orbin-rl*")
    assert any(org.id.encode() in k for k in keys), "the counters live in Redis"


class _Proxy:
    """A TCP proxy to Redis that can be cut, as if Redis went away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.open = False
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def test_redis_outage_falls_back_to_memory_without_errors(database, make_org, caplog) -> None:
    require_redis()
    host, port = services.REDIS_URL.split("//")[1].split("/")[0].split(":")
    proxy = _Proxy((host, int(port)))
    client = _app_client(f"redis://127.0.0.1:{proxy.port}/0")
    org = make_org("outage")
    caplog.set_level(logging.WARNING, logger="orbin.ratelimit")
    _within_one_window(25)
    try:
        for _ in range(5):
            assert _post(client, org.key).status_code == 202
        import redis

        assert any(org.id.encode() in k for k in redis.Redis.from_url(services.REDIS_URL).keys())
        proxy.cut()
        codes = []
        for _ in range(40):
            r = _post(client, org.key)
            codes.append(r.status_code)
            assert "x-ratelimit-remaining" in r.headers
        assert set(codes) == {202}, codes
        warnings = [r for r in caplog.records if "Redis rate-limit storage failed" in r.message]
        assert len(warnings) == 1, [r.message for r in caplog.records]
        # Counted in memory meanwhile: the limit still holds.
        for _ in range(60):
            _post(client, org.key)
        assert _post(client, org.key).status_code == 429
    finally:
        proxy.cut()
        client.__exit__(None, None, None)


def test_bad_keys_are_limited_per_client_address(api, make_org, monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_BAD_KEY_REQUESTS_PER_MINUTE", "5")
    from tenancy import config

    config.reset_settings()
    try:
        _within_one_window(10)
        codes = [_post(api, f"sk_live_wrong{i}").status_code for i in range(7)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429, 429], codes
        r = _post(api, "sk_live_wrong-again")
        assert r.headers["retry-after"] and r.json()["error"]["details"][0]["scope"] == "address"
        good = make_org("goodkey")
        assert _post(api, good.key).status_code == 202, "a good key is not limited by it"
    finally:
        config.reset_settings()
