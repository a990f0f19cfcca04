"""Idempotency under real concurrency: one key sent by many clients at once, over HTTP, to a
real ``orbin api`` server (two processes), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import services
from tests.unit.ingest_support import active_workflow, stored_events, stored_runs


@pytest.fixture
def api_server(database: str, tmp_path: Path) -> Iterator[str]:
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(ORBIN_DATABASE_URL=database, ORBIN_HOME=str(tmp_path / "home"))
    log = open(tmp_path / "api.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(services.ROOT / ".venv/bin/orbin"), "api", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert services.wait_http(url + "/openapi.json", 90, proc), (
            tmp_path / "api.log"
        ).read_text()[-2000:]
        yield url
    finally:
        services.stop_process(proc)
        log.close()


async def _fire(url: str, requests: list[tuple[dict, dict]]) -> list[httpx.Response]:
    # One connection per request, all opened before any is sent: they race for real.
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = asyncio.Event()

        async def one(headers: dict, body: dict) -> httpx.Response:
            await start.wait()
            return await client.post("/v1/events", headers=headers, json=body)

        tasks = [asyncio.create_task(one(h, b)) for h, b in requests]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)


def test_one_key_sent_concurrently_creates_one_event_and_one_set_of_runs(
    api_server: str, make_org
) -> None:
    org = make_org("race", plan="enterprise")
    active_workflow(org.id, "order.paid", slug="bill")
    active_workflow(org.id, "order.*", slug="audit")
    headers = {"x-api-key": org.key, "x-idempotency-key": "pay-42"}
    body = {"type": "order.paid", "data": {"order": 42}}

    answers = asyncio.run(_fire(api_server, [(headers, body)] * 24))

    assert [r.status_code for r in answers] == [202] * 24, [r.text for r in answers]
    bodies = {r.content for r in answers}
    assert len(bodies) == 1, bodies
    answer = answers[0].json()
    assert answer["idempotencyKey"] == "pay-42" and len(answer["runIds"]) == 2
    assert answer["id"] == answer["eventId"]
    events = stored_events(org.id)
    assert [(e.id, e.event_id) for e in events] == [(answer["id"], "pay-42")]
    runs = stored_runs(org.id)
    assert sorted(r.id for r in runs) == sorted(answer["runIds"])
    assert all(r.event_id == events[0].id for r in runs)

    # The same key raced with different events: one wins, every other is told so (409).
    key = {"x-api-key": org.key, "x-idempotency-key": "ship-7"}
    racers = [(key, {"type": "order.shipped", "data": {"attempt": i}}) for i in range(12)]
    answers = asyncio.run(_fire(api_server, racers))
    codes = sorted(r.status_code for r in answers)
    assert codes == [202] + [409] * 11, [r.text for r in answers]
    winner = next(r for r in answers if r.status_code == 202).json()
    for r in answers:
        if r.status_code == 409:
            detail = r.json()["error"]["details"][0]
            assert detail["idempotencyKey"] == "ship-7"
            assert detail.get("id", winner["id"]) == winner["id"]
    stored = [e for e in stored_events(org.id) if e.event_id == "ship-7"]
    assert len(stored) == 1 and len(winner["runIds"]) == 1
    assert len(stored_runs(org.id)) == 3
