"""The FastAPI application."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi_offline import FastAPIOffline

from ingest_api import access, errors, observability, openapi_doc
from ingest_api.edge import EdgeMiddleware
from ingest_api.ratelimit import RateLimitMiddleware
from ingest_api.routers import (
    ai,
    api_keys,
    audit,
    auth,
    billing,
    events,
    health,
    hooks,
    integrations,
    members,
    notifications,
    replay,
    runs,
    schedules,
    sso,
    stream,
    workflows,
)
from orbin_flows.ingest_writer import ingest_writer
from telemetry import metrics, tracing
from tenancy.outbox_stats import outbox_probe


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Everything loaded at startup (some 130,000 objects: the libraries, the routes, the
    # models) lives as long as the process. Frozen, it is left out of the garbage collector's
    # full collections, which otherwise stop the process for about 100 ms every few seconds
    # under load (measured with benchmarks/ingest_throughput.py: the p99 at a fixed rate).
    from tenancy.mail import deliver_pending

    try:  # mail queued by a process that stopped before sending it
        await asyncio.to_thread(deliver_pending)
    except Exception:  # noqa: BLE001 - retried with the next mail
        logging.getLogger("orbin.mail").exception("pending mail not delivered at startup")
    gc.collect()
    gc.freeze()
    app.state.draining = False
    tracing.setup_tracing("orbin-api")
    metrics.set_outbox_probe(outbox_probe)
    yield
    # Shutdown (uvicorn has stopped accepting and answered the requests in flight): what the
    # ingest writer still holds is committed and answered before the process exits.
    app.state.draining = True
    metrics.SHUTTING_DOWN.set(1)
    await run_in_threadpool(ingest_writer().drain, 10.0)


def create_app() -> FastAPI:
    # /docs and /redoc with their scripts and styles served from the package (fastapi-offline
    # ships them): the pages work without internet; no validator badge fetched from outside.
    app = FastAPIOffline(
        lifespan=_lifespan,
        static_url="/docs-assets",
        swagger_ui_parameters={"validatorUrl": None},
        title="Orbin API",
        version="1.0.0",
        description=(
            "Event ingestion and the REST API of Orbin. Authenticate with `x-api-key` (an "
            "API key) or `Authorization: Bearer ses_...` (a session from "
            "`POST /v1/auth/signin`, with `x-orbin-org: <slug>`)."
        ),
    )
    errors.install(app)
    app.add_middleware(RateLimitMiddleware)
    app.add_middleware(observability.MetricsMiddleware)
    app.add_middleware(EdgeMiddleware)  # outermost: NUL and out-of-range input, every route
    app.include_router(health.router)
    app.include_router(observability.router)
    app.include_router(events.router)
    app.include_router(runs.router)
    app.include_router(workflows.router)
    app.include_router(replay.router)
    app.include_router(hooks.router)
    app.include_router(schedules.router)
    app.include_router(stream.router)
    for identity in (auth, sso, members, api_keys, audit, notifications):
        app.include_router(identity.router)
    app.include_router(ai.router)
    app.include_router(integrations.router)
    app.include_router(billing.router)

    from orbin_flows.spec import WorkflowSpec

    original = app.openapi

    def openapi() -> dict:  # type: ignore[type-arg]
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["WorkflowSpec"] = (
            WorkflowSpec.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for name, sub in schema["components"]["schemas"]["WorkflowSpec"].pop("$defs", {}).items():
            schema["components"]["schemas"].setdefault(name, sub)
        app.openapi_schema = openapi_doc.complete(schema)
        access.document(app.openapi_schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
