"""Scale-out on Prefect's own model, on PostgreSQL + Redis: the Prefect server as 2 API
replicas with prefect-redis messaging and its background services run once; 2 Orbin API
processes and 2 workers, each pair on another replica. Every accepted event is stored once,
every run executed once (no step attempted twice), a killed worker's runs are handed over, and
rate limits are shared through Redis."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import require_postgres, require_redis
from tests.support import services
from tests.support.rig import BIN, start_rig

pytestmark = pytest.mark.prefect

PREFECT_REDIS = "redis://127.0.0.1:6379/14"  # Prefect's messaging, cache, ordering, leases
ORBIN_REDIS = "redis://127.0.0.1:6379/13"  # Orbin's rate limits
FINAL = ("completed", "failed", "canceled", "timed_out")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_postgres()
    require_redis()
    pytest.importorskip("prefect_redis")
    import redis

    for url in (PREFECT_REDIS, ORBIN_REDIS):
        redis.Redis.from_url(url).flushdb()
    orbin_db = services.create_pg_database("orbin_so")
    prefect_db = services.create_pg_database("prefect_so")
    home = tmp_path_factory.mktemp("scale-out")
    rig = start_rig(
        home,
        database_url=services.pg_url(orbin_db),
        prefect_database_url=services.pg_url(prefect_db, driver="asyncpg"),
        prefect_redis_url=PREFECT_REDIS,
        ORBIN_REDIS_URL=ORBIN_REDIS,
        # The default lease: a killed worker is known by its freed advisory lock at once; a
        # 3 s lease on this loaded 2-core box let a slow worker's run be taken over and a
        # step run twice (seen here).
    )
    replicas = rig.prefect.api_urls
    try:
        port2 = services.free_port()
        api2 = rig._spawn(
            "api2",
            [str(BIN / "orbin"), "api", "--port", str(port2)],
            {**rig.env, "PREFECT_API_URL": replicas[1]},
        )
        apis = [rig.api_url, f"http://127.0.0.1:{port2}"]
        assert services.wait_http(apis[1] + "/healthz", 120, api2)
        for i, name in enumerate(("w1", "w2")):
            rig.start_worker(name, PREFECT_API_URL=replicas[i % 2])
        for name in ("w1", "w2"):
            rig.wait_worker_ready(name)
        rig.orbin("org", "create", "--slug", "big", "--plan", "enterprise")
        key = rig.orbin("api-key", "create", "--org", "big", "--name", "k").splitlines()[-1]
        yield {"rig": rig, "apis": apis, "replicas": replicas, "key": key, "db": orbin_db}
        services.stop_process(api2)
    finally:
        rig.stop()
        services.drop_pg_database(orbin_db)
        services.drop_pg_database(prefect_db)


def _call(base: str, key: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, base + path, headers={"x-api-key": key}, timeout=60, **kw)


def _workflow(c: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    etype = f"so.{uuid.uuid4().hex[:6]}"
    spec = {
        "name": etype,
        "slug": etype.replace(".", "-"),
        "status": "active",
        "trigger": {"type": "event", "config": {"eventType": etype}},
        "steps": steps,
    }
    resp = _call(c["apis"][0], c["key"], "POST", "/v1/workflows", json=spec)
    assert resp.status_code == 201, resp.text
    time.sleep(1.5)  # the trigger caches of both APIs
    return etype


def _send(c: dict[str, Any], etype: str, n: int) -> list[str]:
    def one(i: int) -> str:
        body = {"type": etype, "data": {"i": i}}
        resp = _call(c["apis"][i % 2], c["key"], "POST", "/v1/events", json=body)
        assert resp.status_code == 202, resp.text
        return resp.json()["runIds"][0]

    with cf.ThreadPoolExecutor(8) as ex:
        return list(ex.map(one, range(n)))


def _wait_all(c: dict[str, Any], run_ids: list[str], seconds: float = 240) -> dict[str, Any]:
    pending, results, t0 = set(run_ids), {}, time.monotonic()
    while pending and time.monotonic() - t0 < seconds:
        for rid in list(pending)[:40]:
            d = _call(c["apis"][1], c["key"], "GET", f"/v1/runs/{rid}").json()
            if d.get("status") in FINAL:
                results[rid] = d
                pending.discard(rid)
        time.sleep(0.3)
    assert not pending, f"{len(pending)} runs not finished in {seconds}s"
    return results


def _stored_events(c: dict[str, Any], etype: str) -> collections.Counter[Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(services.pg_url(c["db"]))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT payload FROM events WHERE event_type = :t"), {"t": etype}
            ).all()
    finally:
        engine.dispose()
    return collections.Counter(r[0]["i"] for r in rows)


STEP = {"type": "action", "config": {"action": "transform", "output": "{{ trigger.data.i }}"}}


def test_runs_through_both_apis_and_both_prefect_replicas_execute_once(
    cluster: dict[str, Any],
) -> None:
    c = cluster
    etype = _workflow(c, [{"id": s, "name": s, **STEP} for s in ("a", "b", "c")])
    run_ids = _send(c, etype, 120)
    assert len(set(run_ids)) == 120
    results = _wait_all(c, run_ids)
    assert all(r["status"] == "completed" for r in results.values())
    for r in results.values():
        assert collections.Counter(s["stepId"] for s in r["steps"]) == {"a": 1, "b": 1, "c": 1}
    stored = _stored_events(c, etype)
    assert stored == collections.Counter(range(120)), "every accepted event stored once"
    # Both replicas serve the same runs; the task runs reached the database through the
    # events (Redis messaging, consumed by the services process).
    sample = [results[r]["prefectFlowRunId"] for r in run_ids[:6]]
    for replica in c["replicas"]:
        for fr_id in sample:
            fr = httpx.get(f"{replica}/flow_runs/{fr_id}", timeout=30).json()
            assert fr["state_type"] == "COMPLETED" and fr["run_count"] == 1
    deadline = time.monotonic() + 30
    while True:
        task_runs = httpx.post(
            f"{c['replicas'][1]}/task_runs/filter",
            json={"flow_runs": {"id": {"any_": sample}}},
            timeout=30,
        ).json()
        if len(task_runs) >= 3 * len(sample) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(task_runs) >= 3 * len(sample), len(task_runs)


def test_a_killed_workers_runs_are_handed_over_once(cluster: dict[str, Any]) -> None:
    c, rig = cluster, cluster["rig"]
    steps = [
        {"id": "a", **STEP, "name": "a"},
        {"id": "wait", "name": "wait", "type": "delay", "config": {"seconds": 2}},
        {"id": "b", **STEP, "name": "b"},
    ]
    etype = _workflow(c, steps)
    run_ids = _send(c, etype, 40)
    time.sleep(1.0)
    rig.kill_worker("w1")
    try:
        results = _wait_all(c, run_ids, seconds=240)
    finally:
        rig.start_worker("w1", PREFECT_API_URL=c["replicas"][0])
        rig.wait_worker_ready("w1")
    assert all(r["status"] == "completed" for r in results.values()), collections.Counter(
        r["status"] for r in results.values()
    )
    for r in results.values():
        done = collections.Counter(s["stepId"] for s in r["steps"] if s["status"] == "completed")
        assert done == {"a": 1, "wait": 1, "b": 1}, r["steps"]
        assert collections.Counter(s["stepId"] for s in r["steps"])["a"] == 1, "a ran once"
    assert _stored_events(c, etype) == collections.Counter(range(40))


def test_rate_limits_are_shared_through_redis(cluster: dict[str, Any]) -> None:
    c, rig = cluster, cluster["rig"]
    rig.orbin("org", "create", "--slug", "small", "--plan", "free")  # 100 requests/min a key
    key = rig.orbin("api-key", "create", "--org", "small", "--name", "k").splitlines()[-1]

    def one(i: int) -> int:
        base = c["apis"][i % 2]
        return _call(base, key, "POST", "/v1/events", json={"type": "nothing.here"}).status_code

    with cf.ThreadPoolExecutor(8) as ex:
        codes = collections.Counter(ex.map(one, range(140)))
    assert codes[202] <= 100 and codes[429] >= 40, codes  # one count for both APIs
