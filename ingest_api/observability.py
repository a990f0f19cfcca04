"""Operating the API: request metrics, ``/metrics``, ``/livez`` and ``/readyz``.

``/metrics`` is the Prometheus text of this process (``telemetry.metrics``), served without
tenant credentials; with ``ORBIN_METRICS_TOKEN`` set it wants ``Authorization: Bearer``.
``/livez`` says the process answers (restart it if not); ``/readyz`` says it should be sent
traffic: its database, Prefect and (when configured) Redis answer, and it is not draining.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest_api.errors import error_body
from ingest_api.routers.health import _prefect_ok
from telemetry import metrics
from tenancy.config import get_settings
from tenancy.db import ping

router = APIRouter(tags=["health"])

_INGEST_PATHS = ("/v1/events", "/v1/events/batch", "/api/webhooks/ingest")
_REASONS = {
    400: "invalid_json",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


def _is_ingest(method: str, path: str) -> bool:
    return method == "POST" and (path in _INGEST_PATHS or path.startswith("/v1/hooks/"))


class MetricsMiddleware:
    """Counts every answer by route template (never the raw path: it holds ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            if route != "/metrics":
                metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
                metrics.HTTP_SECONDS.labels(route).observe(time.perf_counter() - t0)
            if status >= 400 and _is_ingest(method, scope["path"]):
                reason = _REASONS.get(status, "server_error" if status >= 500 else "other")
                metrics.EVENTS_REFUSED.labels(reason).inc()


@router.get("/metrics", summary="Prometheus metrics of this API process", include_in_schema=False)
async def read_metrics(request: Request) -> Response:
    if not metrics.authorized(request.headers.get("authorization")):
        return JSONResponse(
            error_body("unauthenticated", "a valid metrics bearer token is required"),
            401,
            headers={"www-authenticate": "Bearer"},
        )
    body, content_type = await run_in_threadpool(metrics.exposition)
    return Response(body, media_type=content_type)


@router.get("/livez", summary="200 while the process answers (liveness)")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


async def _redis_ok(url: str) -> str:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        await client.ping()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {exc.__class__.__name__}"
    finally:
        await client.aclose()


@router.get("/readyz", summary="200 when this process should get traffic (readiness)")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(ping)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    ok, detail = await _prefect_ok()
    checks["prefect"] = "ok" if ok else detail
    redis_url = get_settings().redis_url
    if redis_url:
        checks["redis"] = await _redis_ok(redis_url)
    if getattr(request.app.state, "draining", False):
        checks["process"] = "draining"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )
