"""Durability of ingestion through the outbox: a Prefect outage loses and reorders nothing, and
an API process killed right after answering has stored everything it acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from tests.conftest import _PG
from tests.support import services

N_OUTAGE = 6  # events sent while Prefect is down
N_KILL = 8  # acknowledged events before the API is killed

HELLO = {
    "name": "Hello",
    "slug": "hello",
    "status": "active",
    "trigger": {"type": "event", "config": {"eventType": "demo.hello"}},
    "steps": [
        {
            "id": "greet",
            "name": "Greet",
            "type": "action",
            "config": {"action": "transform", "output": {"message": "Hi {{ trigger.data.i }}"}},
        }
    ],
}


def _run(api: str, key: str, run_id: str) -> dict:
    return httpx.get(f"{api}/v1/runs/{run_id}", headers={"x-api-key": key}, timeout=30).json()


def _wait_runs(api: str, key: str, run_ids: list[str], seconds: float) -> list[dict]:
    """The runs once all are final (polled through the list, one request per round)."""
    deadline = time.monotonic() + seconds
    final = ("completed", "failed", "canceled", "timed_out")
    while True:
        listed: dict[str, dict] = {}
        cursor = None
        while True:
            page = httpx.get(
                f"{api}/v1/runs",
                params={"limit": 200, **({"cursor": cursor} if cursor else {})},
                headers={"x-api-key": key},
                timeout=30,
            )
            assert page.status_code == 200, page.text
            body = page.json()
            listed.update({r["id"]: r for r in body["data"]})
            cursor = body["nextCursor"]
            if not cursor or all(r in listed for r in run_ids):
                break
        runs = [listed.get(r, {"id": r, "status": "missing"}) for r in run_ids]
        if all(r["status"] in final for r in runs):
            return [_run(api, key, r) for r in run_ids]
        waiting = [(r["id"][-6:], r["status"]) for r in runs if r["status"] not in final]
        assert time.monotonic() < deadline, f"runs not finished in {seconds}s: {waiting}"
        time.sleep(0.5)


def _enterprise_org(platform: services.Platform) -> str:
    """A new organization (enterprise plan: rate limits out of the way) with the hello flow."""
    slug = f"dur{uuid.uuid4().hex[:8]}"
    platform.orbin("org", "create", "--slug", slug, "--plan", "enterprise")
    key = platform.new_key(slug)
    created = httpx.post(f"{platform.api_url}/v1/workflows", headers={"x-api-key": key}, json=HELLO)
    assert created.status_code == 201, created.text
    return key


def _post(api: str, key: str, i: int, tag: str) -> httpx.Response:
    return httpx.post(
        f"{api}/v1/events",
        headers={"x-api-key": key, "x-idempotency-key": f"{tag}-{i}"},
        json={"type": "demo.hello", "data": {"i": i}},
        timeout=30,
    )


@pytest.fixture
def outage_platform(tmp_path: Path) -> Iterator[tuple[services.Platform, services.PrefectServer]]:
    """A platform whose Prefect server the test stops and restarts (PostgreSQL when it answers)."""
    dbs: list[str] = []
    orbin_url = prefect_url = None
    if _PG:
        dbs = [services.create_pg_database("orbin_out"), services.create_pg_database("pf_out")]
        orbin_url = services.pg_url(dbs[0])
        prefect_url = services.pg_url(dbs[1], driver="asyncpg")
    prefect = services.start_prefect_server(tmp_path / "prefect", prefect_url)
    platform = None
    try:
        platform = services.start_platform(
            tmp_path / "orbin",
            database_url=orbin_url,
            extra_env={
                "PREFECT_API_URL": prefect.api_url,
                "ORBIN_WORKER_CONCURRENCY": "1",
                # Fail fast on a refused connection, as after a long outage: the outbox retries.
                "PREFECT_CLIENT_MAX_RETRIES": "0",
            },
        )
        yield platform, prefect
    finally:
        if platform is not None:
            platform.stop()
        prefect.stop()
        for name in dbs:
            services.drop_pg_database(name)


def test_prefect_outage_keeps_ingesting_then_dispatches_in_order(outage_platform) -> None:
    platform, prefect = outage_platform
    api, key = platform.api_url, _enterprise_org(platform)
    warm = _post(api, key, 0, "warm").json()["runIds"]
    assert _wait_runs(api, key, warm, 90)[0]["status"] == "completed"

    prefect.stop()
    answers = []
    for i in range(N_OUTAGE):
        t0 = time.monotonic()
        r = _post(api, key, i, "outage")
        assert r.status_code == 202, r.text
        assert time.monotonic() - t0 < 2, "ingestion waited on Prefect"
        answers.append(r.json())
    run_ids = [a["runIds"][0] for a in answers]
    health = httpx.get(f"{api}/healthz", timeout=30)
    assert health.status_code == 503 and health.json()["checks"]["prefect"] != "ok"
    time.sleep(3)  # the worker tries, and fails, meanwhile
    for run_id in run_ids:
        run = _run(api, key, run_id)
        assert run["status"] == "pending" and run["prefectFlowRunId"] is None, run
    events = httpx.get(f"{api}/v1/events?limit=20", headers={"x-api-key": key}).json()["data"]
    by_key = {e["idempotencyKey"]: e for e in events}
    assert all(by_key[f"outage-{i}"]["status"] == "pending" for i in range(N_OUTAGE))

    prefect.start_again()
    runs = _wait_runs(api, key, run_ids, 120)
    assert [r["status"] for r in runs] == ["completed"] * N_OUTAGE, runs
    started = [r["startedAt"] for r in runs]
    assert started == sorted(started), "runs were dispatched out of ingestion order"
    assert [r["steps"][0]["output"]["message"] for r in runs] == [
        f"Hi {i}" for i in range(N_OUTAGE)
    ]
    events = httpx.get(f"{api}/v1/events?limit=20", headers={"x-api-key": key}).json()["data"]
    by_key = {e["idempotencyKey"]: e for e in events}
    assert all(by_key[f"outage-{i}"]["status"] == "processed" for i in range(N_OUTAGE))


def _database_url(platform: services.Platform) -> str:
    return platform.env.get("ORBIN_DATABASE_URL") or f"sqlite:///{platform.home / 'orbin.db'}"


def test_api_killed_right_after_answering_loses_nothing(
    platform: services.Platform, tmp_path: Path
) -> None:
    key = _enterprise_org(platform)

    port = services.free_port()
    env = {k: v for k, v in platform.env.items() if not k.startswith("PREFECT_")}
    proc = subprocess.Popen(
        [str(services.ROOT / ".venv/bin/orbin"), "api", "--port", str(port)],
        env=env,
        stdout=open(tmp_path / "api.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    victim = f"http://127.0.0.1:{port}"
    acked: list[dict] = []
    lock = threading.Lock()
    try:
        assert services.wait_http(victim + "/openapi.json", 90, proc)

        def client(n: int) -> None:
            with httpx.Client(timeout=10) as http:
                for i in range(200):
                    try:
                        r = http.post(
                            f"{victim}/v1/events",
                            headers={"x-api-key": key},
                            json={"type": "demo.hello", "data": {"i": n * 1000 + i}},
                        )
                    except httpx.HTTPError:
                        return  # the server is gone
                    if r.status_code == 202:
                        with lock:
                            acked.append(r.json())
                            if len(acked) >= N_KILL:
                                os.killpg(proc.pid, signal.SIGKILL)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    assert len(acked) >= N_KILL
    from tenancy.models import Event

    engine = create_engine(_database_url(platform))
    with engine.connect() as conn:
        stored = set(conn.scalars(select(Event.id).where(Event.id.in_([a["id"] for a in acked]))))
    engine.dispose()
    assert stored == {a["id"] for a in acked}, "an acknowledged event is missing"
    run_ids = [a["runIds"][0] for a in acked]
    t0 = time.monotonic()
    runs = _wait_runs(platform.api_url, key, run_ids, 180)
    print(f"{len(acked)} acknowledged; their runs completed in {time.monotonic() - t0:.1f} s")
    assert {r["status"] for r in runs} == {"completed"}
