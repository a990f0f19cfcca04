"""A 3-step workflow under a sustained stream of events, against the bare-Prefect ceiling.

Orbin: events sent at a steady rate above what one machine completes; completed runs per
second (over the window where runs complete), event -> run completed p50/p95, and checks that
no run is lost and no step executed twice. Bare Prefect fast path, in the same run: a
producer creates flow runs of a 3-task flow at the same rate with the stock client and a warm
consumer runs them in-process with stock run_flow_async, concurrently. CPU seconds used by
the Prefect server, Orbin's API, Orbin's worker and PostgreSQL are printed for each phase.

Usage: .venv/bin/python benchmarks/throughput.py [--rate 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import api, orbin_on_postgres, pct, prefect_for_clients, wait_runs  # noqa: E402

WORKFLOW = {
    "name": "Three steps",
    "slug": "three",
    "status": "active",
    "trigger": {"type": "event", "config": {"eventType": "bench.three"}},
    "steps": [
        {
            "id": "a",
            "name": "A",
            "type": "action",
            "config": {"action": "transform", "output": {"i": "{{ trigger.data.i }}"}},
        },
        {
            "id": "b",
            "name": "B",
            "type": "action",
            "config": {"action": "transform", "output": {"j": "{{ steps.a.output.i }}"}},
        },
        {
            "id": "c",
            "name": "C",
            "type": "action",
            "config": {"action": "transform", "output": {"k": "{{ steps.b.output.j }}"}},
        },
    ],
}


def _cpu_of(patterns: dict[str, str]) -> dict[str, float]:
    out = dict.fromkeys(patterns, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for name, pat in patterns.items():
            if pat in cmd:
                out[name] += (int(stat[11]) + int(stat[12])) / tick
                break
    return out


PROCS = {
    "prefect server": "prefect server start",
    "orbin api": "orbin_cli.main api",
    "orbin worker": "orbin_cli.main worker",
    "postgres": "postgres:",
    "benchmark": "benchmarks/throughput.py",
}


def cpu_report(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    parts = [f"{k} {100 * (after[k] - before[k]) / seconds:4.0f}%" for k in PROCS]
    return "CPU (100% = one core): " + ", ".join(parts)


def run_orbin(platform, key: str, rate: float, seconds: float) -> dict:
    n = int(rate * seconds)
    sent: dict[str, float] = {}
    with httpx.Client(timeout=30) as http:
        for i in range(5):
            http.post(
                platform.api_url + "/v1/events",
                headers={"x-api-key": key},
                json={"type": "bench.three", "data": {"i": -1 - i}},
            )
        time.sleep(3)
        cpu0, t_start = _cpu_of(PROCS), time.time()
        start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.time()
            r = http.post(
                platform.api_url + "/v1/events",
                headers={"x-api-key": key},
                json={"type": "bench.three", "data": {"i": i}},
            )
            r.raise_for_status()
            sent[r.json()["runIds"][0]] = t0
    runs = wait_runs(platform, key, list(sent), timeout=600)
    t_end = max((r["completedAt"] or 0) for r in runs) / 1000
    cpu1 = _cpu_of(PROCS)
    completed = [r for r in runs if r["status"] == "completed"]
    dup_steps = sum(
        1
        for r in runs
        for sid in {s["stepId"] for s in r["steps"]}
        if sum(1 for s in r["steps"] if s["stepId"] == sid and s["status"] == "completed") > 1
    )
    lat = [(r["completedAt"] / 1000 - sent[r["id"]]) * 1000 for r in completed]
    window = t_end - t_start
    return {
        "sent": n,
        "completed": len(completed),
        "lost": n - len(completed),
        "dup_steps": dup_steps,
        "runs_per_s": len(completed) / window,
        "p50": pct(lat, 50),
        "p95": pct(lat, 95),
        "cpu": cpu_report(cpu0, cpu1, window),
    }


async def run_bare(api_url: str, rate: float, seconds: float) -> dict:
    os.environ["PREFECT_API_URL"] = api_url
    from prefect import flow, get_client
    from prefect.flow_engine import run_flow_async

    from benchmarks._bench_flows import noop

    @flow(name="bench-three", persist_result=False)
    async def three(i: int) -> int:
        a = await noop(i)
        b = await noop(a)
        return await noop(b)

    n = int(rate * seconds)
    done: list[tuple[float, float]] = []
    tasks = []
    async with get_client() as client:
        await run_flow_async(three, parameters={"i": -1}, return_type="state")
        cpu0, t_start = _cpu_of(PROCS), time.time()
        start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

            # Each event is created and run by its own task, as concurrent producers would:
            # creation calls overlap instead of queueing behind one another.
            async def go(i: int = i, t0: float = time.time()) -> None:
                fr = await client.create_flow_run(three, parameters={"i": i})
                state = await run_flow_async(
                    three, flow_run=fr, parameters={"i": i}, return_type="state"
                )
                if state.is_completed():
                    done.append((t0, time.time()))

            tasks.append(asyncio.create_task(go()))
        await asyncio.gather(*tasks)
    t_end = max(e for _, e in done)
    window = t_end - t_start
    lat = [(e - s) * 1000 for s, e in done]
    return {
        "sent": n,
        "completed": len(done),
        "runs_per_s": len(done) / window,
        "p50": pct(lat, 50),
        "p95": pct(lat, 95),
        "cpu": cpu_report(cpu0, _cpu_of(PROCS), window),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=20.0, help="events per second offered")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, orbin_on_postgres(Path(tmp)) as platform:
        platform.orbin("org", "create", "--slug", "bench", "--plan", "enterprise")
        key = platform.new_key("bench")
        api(platform, "POST", "/v1/workflows", key, WORKFLOW)
        print(f"offering {args.rate} events/s for {args.seconds} s ...", flush=True)
        orbin = run_orbin(platform, key, args.rate, args.seconds)
        bare = asyncio.run(run_bare(prefect_for_clients(platform), args.rate, args.seconds))
    print()
    print(f"3-step runs, {args.rate}/s offered for {args.seconds} s (PostgreSQL, this machine):")
    print(
        f"  orbin     {orbin['runs_per_s']:5.1f} runs/s completed; event -> completed "
        f"p50 {orbin['p50']:.0f} ms, p95 {orbin['p95']:.0f} ms; {orbin['completed']}/"
        f"{orbin['sent']} completed, {orbin['lost']} lost, {orbin['dup_steps']} steps twice"
    )
    print(f"            {orbin['cpu']}")
    print(
        f"  bare fast {bare['runs_per_s']:5.1f} runs/s completed; creation -> completed "
        f"p50 {bare['p50']:.0f} ms, p95 {bare['p95']:.0f} ms; {bare['completed']}/{bare['sent']}"
    )
    print(f"            {bare['cpu']}")
    ratio = orbin["runs_per_s"] / bare["runs_per_s"]
    print(
        f"  orbin / bare ceiling = {ratio:.0%} "
        f"(target >= 80%: {'met' if ratio >= 0.8 else 'MISSED'})"
    )


if __name__ == "__main__":
    sys.exit(main())
