"""Per-step overhead of an Orbin run against a bare Prefect flow with as many tasks.

Orbin: a workflow of N trivial `transform` steps (each a Prefect task, each attempt recorded
in Orbin's database), started by hand K times one after another; overhead per step = (last
step completed - first step started) / N. Bare Prefect: a flow of N no-op async tasks run
in-process with run_flow_async on the same Prefect server; per task = body duration / N.
Target: Orbin under 1.3x the bare figure.

Usage: .venv/bin/python benchmarks/step_overhead.py [--steps 30] [--runs 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import api, orbin_on_postgres, prefect_for_clients, wait_runs  # noqa: E402


def orbin_per_step(platform, key: str, n: int, runs: int) -> list[float]:
    spec = {
        "name": "Overhead",
        "slug": "overhead",
        "status": "active",
        "trigger": {"type": "manual", "config": {}},
        "steps": [
            {
                "id": f"s{i}",
                "name": f"Step {i}",
                "type": "action",
                "config": {"action": "transform", "output": {"i": i}},
            }
            for i in range(n)
        ],
    }
    wf = api(platform, "POST", "/v1/workflows", key, spec)
    per_step = []
    for k in range(runs + 2):
        rid = api(platform, "POST", f"/v1/workflows/{wf['id']}/runs", key, {"data": {}})["runId"]
        run = wait_runs(platform, key, [rid])[0]
        assert run["status"] == "completed", run
        steps = run["steps"]
        span = max(s["completedAt"] for s in steps) - min(s["startedAt"] for s in steps)
        if k >= 2:  # the first runs compile the flow and create the deployment
            per_step.append(span / n)
    return per_step


async def bare_per_task(api_url: str, n: int, runs: int) -> list[float]:
    os.environ["PREFECT_API_URL"] = api_url
    from prefect import flow
    from prefect.flow_engine import run_flow_async

    from benchmarks._bench_flows import noop

    marks: dict[str, float] = {}

    @flow(name="bench-overhead", persist_result=False)
    async def many(n: int) -> None:
        marks["start"] = time.perf_counter()
        for i in range(n):
            await noop(i)
        marks["end"] = time.perf_counter()

    out = []
    for k in range(runs + 2):
        await run_flow_async(many, parameters={"n": n}, return_type="state")
        if k >= 2:
            out.append((marks["end"] - marks["start"]) * 1000 / n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--runs", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, orbin_on_postgres(Path(tmp)) as platform:
        platform.orbin("org", "create", "--slug", "bench", "--plan", "business")
        key = platform.new_key("bench")
        orbin = orbin_per_step(platform, key, args.steps, args.runs)
        bare = asyncio.run(bare_per_task(prefect_for_clients(platform), args.steps, args.runs))
    o, b = statistics.median(orbin), statistics.median(bare)
    print(f"per-step overhead with {args.steps} steps, median of {args.runs} runs (PostgreSQL):")
    print(
        f"  orbin step (task + recorded attempt)  {o:6.2f} ms   runs: "
        + " ".join(f"{x:.1f}" for x in orbin)
    )
    print(
        f"  bare Prefect task                     {b:6.2f} ms   runs: "
        + " ".join(f"{x:.1f}" for x in bare)
    )
    print(
        f"  ratio orbin / bare = {o / b:.2f}x (target < 1.3x: {'met' if o / b < 1.3 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
