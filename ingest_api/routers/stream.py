"""``GET /v1/stream``: the organization's changes as Server-Sent Events.

Each change is one SSE message: ``event`` its kind (``event``, ``run``, ``step``), ``data`` a
JSON object (``seq``, the change's sequence number, ``id``, ``status``, and per kind ``type``,
``workflowId``, ``runId``, ``stepId``, ``attempt``; ``resumeAt`` for a suspended run), and
``id`` the stream's position in commit order: every change up to it has been sent
(concurrent transactions commit out of their numbers' order, so it can trail ``seq``). A
client that reconnects with ``Last-Event-ID`` first gets what it missed (kept for
``ORBIN_CHANGE_RETENTION_SECONDS``), never less; a change it already had can come again,
with the same ``seq``.
A comment line is sent every ``ORBIN_STREAM_HEARTBEAT_SECONDS`` to keep proxies from closing
an idle stream; the key is checked again then, and a revoked key's stream ends.

Authenticate with the ``x-api-key`` (or ``Authorization: Bearer``) header, as everywhere: keys
in URLs end up in logs, so no query parameter is accepted. Browsers' ``EventSource`` cannot
send headers; read the stream with ``fetch()`` (a ReadableStream) or from a server instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ingest_api.auth import authenticate
from ingest_api.deps import CurrentPrincipal
from telemetry import metrics
from tenancy.change_feed import OVERFLOW, ChangeFeed, read_org_changes_after
from tenancy.config import get_settings
from tenancy.errors import InvalidInput, PermissionDenied, Unauthenticated
from tenancy.principal import Principal

router = APIRouter(tags=["stream"])

KINDS = {"event": "events:read", "run": "runs:read", "step": "runs:read"}
RESUME_LIMIT = 1000


def _feed(request: Request) -> ChangeFeed:
    feed = getattr(request.app.state, "change_feed", None)
    if feed is None:
        feed = request.app.state.change_feed = ChangeFeed()
    return feed


def _kinds(principal: Principal, requested: str | None) -> set[str]:
    wanted = set(KINDS)
    if requested:
        wanted = {k.strip() for k in requested.split(",") if k.strip()}
        unknown = sorted(wanted - set(KINDS))
        if unknown:
            raise InvalidInput(
                f"unknown kinds {', '.join(unknown)}; use event, run, step",
                details=[{"field": "kinds"}],
            )
    allowed = {k for k in wanted if principal.can(KINDS[k])}
    if not allowed:
        raise PermissionDenied("this key may read neither events nor runs")
    return allowed


def _still_valid(api_key: str) -> bool:
    """Checked at each heartbeat: a revoked or expired key's stream ends."""
    try:
        authenticate(api_key.strip())
        return True
    except Unauthenticated:
        return False


def _message(change: dict[str, Any], cursor: int) -> str:
    data = {k: v for k, v in change.items() if k not in ("org", "cursor")}
    return (
        f"id: {cursor}\nevent: {change.get('kind', 'change')}\n"
        f"data: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"
    )


@router.get(
    "/v1/stream",
    summary="Live changes of events, runs and steps (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    kinds: str | None = Query(None, description="comma-separated: event, run, step"),
    runId: str | None = Query(None, description="only this run and its steps"),  # noqa: N803
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    allowed = _kinds(principal, kinds)
    resume: int | None = None
    if last_event_id:
        if not last_event_id.strip().isdigit():
            raise InvalidInput("Last-Event-ID must be the id of a message of this stream")
        resume = int(last_event_id.strip())
    org = principal.organization_id
    api_key = request.headers.get("x-api-key") or request.headers.get("authorization", "")[7:]
    feed = _feed(request)
    heartbeat = get_settings().stream_heartbeat_seconds

    def wanted(change: dict[str, Any]) -> bool:
        if change.get("kind") not in allowed:
            return False
        if runId is not None:
            return change.get("id") == runId or change.get("runId") == runId
        return True

    async def messages() -> AsyncIterator[str]:
        sub = await feed.subscribe(org)  # before reading the backlog: nothing falls in between
        metrics.STREAM_CLIENTS.inc()
        try:
            yield "retry: 2000\n: connected\n\n"
            position = resume or 0  # every change up to it is with the client
            sent: set[int] = set()
            if resume is not None:
                settled = feed.cursor  # read before the log: all up to it is in the read
                backlog = await asyncio.to_thread(read_org_changes_after, org, resume, RESUME_LIMIT)
                for change in backlog:
                    sent.add(change["seq"])
                    position = max(position, min(change["seq"], settled))
                    if wanted(change):
                        yield _message(change, position)
            while True:
                try:
                    change = await asyncio.wait_for(sub.get(), timeout=heartbeat)
                except TimeoutError:
                    if not await asyncio.to_thread(_still_valid, api_key):
                        yield 'event: error\ndata: {"message":"the API key is no longer valid"}\n\n'
                        return
                    yield ": keep-alive\n\n"
                    continue
                if change is OVERFLOW:
                    yield 'event: overflow\ndata: {"message":"too slow; reconnect"}\n\n'
                    return
                seq = change.get("seq")
                if isinstance(seq, int) and (seq in sent or (resume is not None and seq <= resume)):
                    continue  # already sent from the backlog, or had before resuming
                position = max(position, change.get("cursor", 0))
                if wanted(change):
                    yield _message(change, position)
        finally:
            metrics.STREAM_CLIENTS.dec()
            sub.close()

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
