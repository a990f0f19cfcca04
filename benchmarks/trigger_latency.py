"""Event accepted -> first step running, p50/p95/p99, on PostgreSQL.

Three ways to start the same work, measured in one run on this machine against one Prefect
server (on PostgreSQL):
  orbin         POST /v1/events at a steady rate; latency = first step's startedAt - send time
  bare fast     a warm process handed a flow run (FIELD-NOTES): create the flow run with the
                stock client, run it in-process with stock run_flow_async; latency = creation
                call start -> first task body
  process pool  a plain deployment on a Prefect process worker (default settings)

Usage: .venv/bin/python benchmarks/trigger_latency.py [--events 200] [--rate 5] [--process-runs 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import (
    ROOT,
    api,
    orbin_on_postgres,
    prefect_for_clients,
    summary,
    wait_runs,
)  # noqa: E402


def measure_orbin(platform, key: str, n: int, rate: float) -> list[float]:
    sent: dict[str, float] = {}
    with httpx.Client(timeout=30) as http:
        for i in range(10):  # warm-up: compile the flow, create the deployment
            http.post(
                platform.api_url + "/v1/events",
                headers={"x-api-key": key},
                json={"type": "bench.hello", "data": {"i": -i}},
            )
        time.sleep(2)
        start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.time()
            r = http.post(
                platform.api_url + "/v1/events",
                headers={"x-api-key": key},
                json={"type": "bench.hello", "data": {"i": i}},
            )
            r.raise_for_status()
            sent[r.json()["runIds"][0]] = t0
    runs = wait_runs(platform, key, list(sent))
    out = []
    for run in runs:
        starts = [s["startedAt"] for s in run["steps"] if s.get("startedAt")]
        out.append((min(starts) / 1000 - sent[run["id"]]) * 1000 if starts else float("inf"))
    return out


async def measure_bare(api_url: str, n: int, rate: float, out_dir: Path) -> list[float]:
    os.environ["PREFECT_API_URL"] = api_url
    from prefect import get_client
    from prefect.flow_engine import run_flow_async

    from benchmarks._bench_flows import timed_flow

    latencies: list[float] = []
    running: list[asyncio.Task] = []
    async with get_client() as client:
        for i in range(n + 5):
            await asyncio.sleep(1 / rate)
            t0 = time.time()
            fr = await client.create_flow_run(timed_flow, parameters={"out_dir": str(out_dir)})

            async def go(fr=fr, t0=t0, warm=i < 5) -> None:
                await run_flow_async(
                    timed_flow,
                    flow_run=fr,
                    parameters={"out_dir": str(out_dir)},
                    return_type="state",
                )
                started = float((out_dir / str(fr.id)).read_text())
                if not warm:
                    latencies.append((started - t0) * 1000)

            running.append(asyncio.create_task(go()))
        await asyncio.gather(*running)
    return latencies


async def measure_process_worker(api_url: str, n: int, out_dir: Path, home: Path) -> list[float]:
    os.environ["PREFECT_API_URL"] = api_url
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            "bench-process",
            "--type",
            "process",
        ],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    latencies: list[float] = []
    try:
        async with get_client() as client:
            try:
                await client.create_work_pool(WorkPoolCreate(name="bench-process", type="process"))
            except Exception:  # noqa: BLE001 - exists already
                pass
            from benchmarks._bench_flows import timed_flow

            flow_id = await client.create_flow(timed_flow)
            dep = await client.create_deployment(
                flow_id=flow_id,
                name="bench-process",
                work_pool_name="bench-process",
                entrypoint="benchmarks/_bench_flows.py:timed_flow",
                pull_steps=[
                    {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
                ],
            )
            created: dict[str, float] = {}
            for _ in range(n):
                t0 = time.time()
                fr = await client.create_flow_run_from_deployment(
                    dep, parameters={"out_dir": str(out_dir)}
                )
                created[str(fr.id)] = t0
                await asyncio.sleep(2)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not all((out_dir / k).exists() for k in created):
                await asyncio.sleep(1)
            for k, t0 in created.items():
                p = out_dir / k
                latencies.append((float(p.read_text()) - t0) * 1000 if p.exists() else float("inf"))
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    return latencies


BENCH_WORKFLOW = {
    "name": "Bench hello",
    "slug": "bench-hello",
    "status": "active",
    "trigger": {"type": "event", "config": {"eventType": "bench.hello"}},
    "steps": [
        {
            "id": "first",
            "name": "First",
            "type": "action",
            "config": {"action": "transform", "output": {"i": "{{ trigger.data.i }}"}},
        },
        {
            "id": "second",
            "name": "Second",
            "type": "action",
            "config": {"action": "transform", "output": "{{ steps.first.output }}"},
        },
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--process-runs", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        # A pro plan: the free plan's 100 requests/minute would throttle a steady 5 events/s.
        with orbin_on_postgres(tmp / "orbin") as platform:
            platform.orbin("org", "create", "--slug", "bench", "--plan", "pro")
            key = platform.new_key("bench")
            api(platform, "POST", "/v1/workflows", key, BENCH_WORKFLOW)
            print(f"Orbin: {args.events} events at {args.rate}/s ...", flush=True)
            orbin = measure_orbin(platform, key, args.events, args.rate)
            (tmp / "bare").mkdir()
            print("bare Prefect fast path ...", flush=True)
            bare = asyncio.run(
                measure_bare(prefect_for_clients(platform), args.events, args.rate, tmp / "bare")
            )
            (tmp / "proc").mkdir()
            print(f"Prefect process worker: {args.process_runs} runs ...", flush=True)
            proc = asyncio.run(
                measure_process_worker(
                    prefect_for_clients(platform),
                    args.process_runs,
                    tmp / "proc",
                    tmp / "prefect-home",
                )
            )
    print()
    print("event/creation -> first step running, ms (PostgreSQL, this machine)")
    print(f"  orbin (event -> step)       {summary(orbin)}")
    print(f"  bare Prefect fast path      {summary(bare)}")
    print(f"  Prefect process worker      {summary(proc)}")
    from benchmarks._harness import pct

    for p in (50, 95):
        print(
            f"  p{p}: orbin / bare fast path = {pct(orbin, p) / pct(bare, p):.2f}x; "
            f"process worker / orbin = {pct(proc, p) / pct(orbin, p):.1f}x"
        )
    verdict = "met" if pct(orbin, 95) < 100 else "MISSED"
    print(f"  target p95 < 100 ms: {verdict} (orbin p95 {pct(orbin, 95):.0f} ms)")


if __name__ == "__main__":
    main()
