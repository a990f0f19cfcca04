"""Plain Prefect flows the benchmarks compare Orbin against."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, task
from prefect.context import get_run_context


@task(name="first", persist_result=False)
async def first_step(out_dir: str) -> float:
    started = time.time()
    ctx = get_run_context()
    Path(out_dir, f"{ctx.task_run.flow_run_id}").write_text(repr(started))
    return started


@task(name="noop", persist_result=False)
async def noop(i: int) -> int:
    return i


@flow(name="bench-timed", persist_result=False)
async def timed_flow(out_dir: str) -> float:
    return await first_step(out_dir)


async def tasks_flow(n: int) -> list[int]:
    return [await noop(i) for i in range(n)]
