"""The ingest writer's queue is bounded: while the database is slow, requests beyond
ORBIN_INGEST_QUEUE_MAX_EVENTS unwritten events are a 503 with Retry-After, never queued
without limit; once the writer catches up, the held requests are all answered 202."""

from __future__ import annotations

import threading
import time

import pytest

from orbin_flows import ingest, ingest_writer
from tenancy import config


@pytest.fixture
def slow_database(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORBIN_INGEST_QUEUE_MAX_EVENTS", "2")
    monkeypatch.setenv("ORBIN_INGEST_LINGER_MS", "0")
    config.reset_settings()
    gate = threading.Event()
    entered = threading.Event()
    real = ingest.ingest_together

    def held(*a, **k):
        entered.set()
        gate.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(ingest, "ingest_together", held)
    yield gate, entered
    gate.set()
    config.reset_settings()


def test_beyond_the_bound_a_503_with_retry_after(api, make_org, slow_database) -> None:
    gate, entered = slow_database
    org = make_org("bound")
    headers = {"x-api-key": org.key}
    answers: list[int] = []

    def post(i: int) -> None:
        r = api.post("/v1/events", json={"type": "b", "data": {"i": i}}, headers=headers)
        answers.append(r.status_code)

    first = threading.Thread(target=post, args=(0,))
    first.start()
    assert entered.wait(10), "the writer took the first request"
    held = [threading.Thread(target=post, args=(i,)) for i in (1, 2)]
    for t in held:
        t.start()
    writer = ingest_writer.ingest_writer()
    deadline = time.monotonic() + 10
    while writer._queued < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    r = api.post("/v1/events", json={"type": "b", "data": {"i": 3}}, headers=headers)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "unavailable"
    gate.set()
    for t in (first, *held):
        t.join(30)
    assert sorted(answers) == [202, 202, 202]
    assert writer._queued == 0
    r = api.post("/v1/events", json={"type": "b", "data": {"i": 4}}, headers=headers)
    assert r.status_code == 202
