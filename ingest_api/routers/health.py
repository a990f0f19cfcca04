"""Liveness: the API answers, its database answers, and Prefect answers. Within a second
whatever is down (a stopped Prefect server accepts connections and never answers): each
check has its own short budget, and the answer names the part that did not answer."""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from tenancy.config import get_settings
from tenancy.db import ping

router = APIRouter(tags=["health"])
PREFECT_BUDGET = 0.5  # seconds
DATABASE_BUDGET = 0.5
_cache: dict[str, tuple[float, bool, str]] = {}


async def _prefect_ok() -> tuple[bool, str]:
    hit = _cache.get("prefect")
    if hit and hit[0] > time.monotonic():
        return hit[1], hit[2]
    url = get_settings().prefect_api_url.rstrip("/") + "/health"
    try:
        async with httpx.AsyncClient(timeout=PREFECT_BUDGET) as client:
            resp = await client.get(url)
        ok, detail = resp.status_code == 200, f"HTTP {resp.status_code}"
    except httpx.TimeoutException:
        ok, detail = False, f"no answer within {PREFECT_BUDGET} s"
    except httpx.HTTPError as exc:
        ok, detail = False, f"unreachable: {exc.__class__.__name__}"
    _cache["prefect"] = (time.monotonic() + (2 if ok else 0.5), ok, detail)
    return ok, detail


@router.get("/healthz", summary="200 when the API, its database and Prefect all answer")
async def healthz() -> JSONResponse:
    checks: dict[str, str] = {}
    database = asyncio.ensure_future(run_in_threadpool(ping))
    prefect = asyncio.ensure_future(_prefect_ok())
    try:
        await asyncio.wait_for(asyncio.shield(database), DATABASE_BUDGET)
        checks["database"] = "ok"
    except TimeoutError:
        checks["database"] = f"error: no answer within {DATABASE_BUDGET} s"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        ok, detail = await asyncio.wait_for(prefect, PREFECT_BUDGET)
    except TimeoutError:
        ok, detail = False, f"no answer within {PREFECT_BUDGET} s"
    checks["prefect"] = "ok" if ok else detail
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, 200 if healthy else 503
    )
