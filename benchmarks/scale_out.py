"""Scale-out on PostgreSQL + Redis: 2 Orbin API processes and 1, 2, then 3 Orbin workers.

The Prefect server runs on Prefect's own scale model: 2 API replicas (`prefect server start
--no-services`) sharing PostgreSQL and, through prefect-redis, messaging, the event cache,
causal ordering and concurrency leases (Redis db 14), plus one `prefect server services
start` process for the background services. API 1 and the odd workers talk to replica 1,
API 2 and the even workers to replica 2 (as a load balancer would spread them).

For each worker count: events sent through both APIs (alternating) as fast as 8 senders
go; runs/s from the first event to the last completed run; checks that every run completed
and no step executed twice; CPU seconds of the Prefect processes (replicas + services), the
APIs and the workers. `--prefect-replicas 1` runs one plain Prefect server instead.

Usage: .venv/bin/python benchmarks/scale_out.py [--runs 150] [--workers 1,2,3]
       [--prefect-replicas 2]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import process_cpu_seconds  # noqa: E402
from tests.support import services  # noqa: E402
from tests.support.rig import BIN, start_rig  # noqa: E402

PREFECT_REDIS = "redis://127.0.0.1:6379/14"
STEP = {"type": "action", "config": {"action": "transform", "output": "{{ trigger.data.i }}"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=150)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--prefect-replicas", type=int, default=2)
    args = ap.parse_args()
    replicated = args.prefect_replicas > 1
    if replicated:
        import redis

        redis.Redis.from_url(PREFECT_REDIS).flushdb()
    if not services.postgres_available():
        sys.exit("PostgreSQL must answer on 127.0.0.1:5432")
    orbin_db = services.create_pg_database("orbin_scale")
    prefect_db = services.create_pg_database("prefect_scale")
    tmp = Path(tempfile.mkdtemp(prefix="orbin-scale-"))
    rig = None
    try:
        rig = start_rig(
            tmp,
            database_url=services.pg_url(orbin_db),
            prefect_database_url=services.pg_url(prefect_db, driver="asyncpg"),
            prefect_redis_url=PREFECT_REDIS if replicated else None,
            prefect_replicas=args.prefect_replicas,
            ORBIN_REDIS_URL="redis://127.0.0.1:6379/12",
        )
        replicas = getattr(rig.prefect, "api_urls", [rig.prefect.api_url])
        prefect_pids = [p.pid for p in getattr(rig.prefect, "procs", [rig.prefect.proc])]
        rig.orbin("org", "create", "--slug", "bench", "--plan", "enterprise")
        key = rig.orbin("api-key", "create", "--org", "bench", "--name", "b").splitlines()[-1]
        port2 = services.free_port()
        api2 = rig._spawn(
            "api2",
            [str(BIN / "orbin"), "api", "--port", str(port2)],
            {**rig.env, "PREFECT_API_URL": replicas[1 % len(replicas)]},
        )
        apis = [rig.api_url, f"http://127.0.0.1:{port2}"]
        assert services.wait_http(apis[1] + "/healthz", 120, api2)
        h = {"x-api-key": key}
        topology = "API replicas + 1 services process, prefect-redis" if replicated else "server"
        print(f"Prefect: {len(replicas)} {topology}; Orbin: 2 APIs; PostgreSQL + Redis")
        print(
            f"{'workers':>7} {'runs':>5} {'runs/s':>7} {'prefect cpu s':>13} "
            f"{'api cpu s':>9} {'worker cpu s':>12} {'cpu ms/run (all)':>16}"
        )
        for n in [int(x) for x in args.workers.split(",")]:
            etype = f"scale.w{n}"
            spec = {
                "name": f"W{n}",
                "slug": f"w{n}",
                "status": "active",
                "trigger": {"type": "event", "config": {"eventType": etype}},
                "steps": [{"id": s, "name": s, **STEP} for s in ("a", "b", "c")],
            }
            assert httpx.post(apis[0] + "/v1/workflows", json=spec, headers=h).status_code == 201
            names = [f"b{n}-{i}" for i in range(n)]
            for i, name in enumerate(names):
                replica = replicas[i % len(replicas)]
                rig.start_worker(name, PREFECT_API_URL=replica)
            for name in names:
                rig.wait_worker_ready(name)
            time.sleep(1.5)
            procs = {
                **{f"prefect{i}": pid for i, pid in enumerate(prefect_pids)},
                "api": rig.api.pid,
                "api2": api2.pid,
                **{name: rig.workers[name].pid for name in names},
            }
            cpu0 = {k: process_cpu_seconds(p) for k, p in procs.items()}

            def send(i: int, etype: str = etype) -> str:
                r = httpx.post(
                    apis[i % 2] + "/v1/events",
                    headers=h,
                    timeout=60,
                    json={"type": etype, "data": {"i": i}},
                )
                r.raise_for_status()
                return r.json()["runIds"][0]

            t0 = time.monotonic()
            with cf.ThreadPoolExecutor(8) as ex:
                run_ids = list(ex.map(send, range(args.runs)))
            pending, results = set(run_ids), {}
            while pending and time.monotonic() - t0 < 600:
                for rid in list(pending)[:50]:
                    d = httpx.get(f"{apis[0]}/v1/runs/{rid}", headers=h, timeout=30).json()
                    if d["status"] in ("completed", "failed", "canceled", "timed_out"):
                        results[rid] = d
                        pending.discard(rid)
                time.sleep(0.2)
            took = time.monotonic() - t0
            cpu = {k: process_cpu_seconds(p) - cpu0[k] for k, p in procs.items()}
            bad = [r for r in results.values() if r["status"] != "completed"]
            twice = [
                r
                for r in results.values()
                if any(v > 1 for v in collections.Counter(s["stepId"] for s in r["steps"]).values())
            ]
            assert not pending and not bad and not twice, (len(pending), len(bad), len(twice))
            worker_cpu = sum(v for k, v in cpu.items() if k in names)
            api_cpu = cpu["api"] + cpu["api2"]
            prefect_cpu = sum(v for k, v in cpu.items() if k.startswith("prefect"))
            total = prefect_cpu + api_cpu + worker_cpu
            print(
                f"{n:>7} {args.runs:>5} {args.runs / took:>7.1f} {prefect_cpu:>13.1f} "
                f"{api_cpu:>9.1f} {worker_cpu:>12.1f} {1000 * total / args.runs:>16.0f}",
                flush=True,
            )
            for name in names:
                rig.stop_worker(name)
        services.stop_process(api2)
    finally:
        if rig is not None:
            rig.stop()
        services.drop_pg_database(orbin_db)
        services.drop_pg_database(prefect_db)


if __name__ == "__main__":
    main()
