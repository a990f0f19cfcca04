"""``/live/changes``: a WebSocket carrying the signed-in user's organization's changes.

The dashboard's own window on Orbin's change feed (the one ``/v1/stream`` serves): one feed
per dashboard process (PostgreSQL ``LISTEN`` or a tail of ``change_log``), fanned out to the
browsers of each organization. The session cookie authenticates it (the gate in server.py
lets nothing through without one); the organization must be one the user belongs to.

A WebSocket rather than Server-Sent Events: a page holding a long fetch never looks idle to
the browser (nor to tools that wait for the network to settle). The browser side
(components/live.py) tells the page's live fragment to rerun when a change
of the kinds it shows arrives, so panels change within a fraction of a second of the commit
and re-query only then, not on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from streamlit_app import accounts, session_cookie
from tenancy.change_feed import OVERFLOW, ChangeFeed, read_org_changes_after

LIVE_PATH = "/live/changes"
KINDS = frozenset({"run", "step", "event"})
HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 60.0

_feeds: dict[int, ChangeFeed] = {}


def _feed() -> ChangeFeed:
    """One feed per event loop (the server's), created inside it."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(id(loop))
    if feed is None:
        feed = _feeds[id(loop)] = ChangeFeed()
    return feed


def _member(token: str | None, organization_id: str) -> bool:
    return accounts.is_member(token, organization_id)


def message(change: dict[str, Any]) -> str:
    data = {k: change.get(k) for k in ("kind", "id", "status", "runId", "seq") if k in change}
    return json.dumps(data, separators=(",", ":"))


async def changes(ws: WebSocket) -> None:
    organization_id = ws.query_params.get("org", "")
    kinds = {k for k in ws.query_params.get("kinds", "").split(",") if k} or set(KINDS)
    run_id = ws.query_params.get("run") or None  # one run's changes (the debugger)
    try:  # the last change the page had seen when it was drawn
        after = int(ws.query_params.get("after", ""))
    except ValueError:
        after = None
    token = ws.cookies.get(session_cookie.COOKIE_NAME)
    if not kinds <= KINDS:
        await ws.close(code=1008, reason="kinds: use run, step, event")
        return
    if not organization_id or not await run_in_threadpool(_member, token, organization_id):
        await ws.close(code=1008, reason="organization not found")
        return
    await ws.accept()
    sub = await _feed().subscribe(organization_id)

    def wanted(change: dict[str, Any]) -> bool:
        return change.get("kind") in kinds and (
            run_id is None or run_id in (change.get("id"), change.get("runId"))
        )

    if after is not None:  # what changed between drawing the page and this socket's start
        missed = await run_in_threadpool(read_org_changes_after, organization_id, after, 200)
        if any(wanted(c) for c in missed):
            await ws.send_text('{"kind":"missed"}')
    checked = time.monotonic()
    closed = asyncio.ensure_future(_until_closed(ws))
    getter = asyncio.ensure_future(sub.get())
    try:
        while not closed.done():
            await asyncio.wait(
                {getter, closed}, timeout=HEARTBEAT_SECONDS, return_when="FIRST_COMPLETED"
            )
            change = None
            if getter.done():
                change = getter.result()
                getter = asyncio.ensure_future(sub.get())
            if closed.done():
                return
            if time.monotonic() - checked > RECHECK_SECONDS:
                checked = time.monotonic()
                if not await run_in_threadpool(_member, token, organization_id):
                    return  # signed out, or no longer a member
            if change is None:
                await ws.send_text('{"kind":"ping"}')
            elif change is OVERFLOW:
                await ws.send_text('{"kind":"overflow"}')
                return
            elif wanted(change):
                await ws.send_text(message(change))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        sub.close()
        getter.cancel()
        closed.cancel()
        if ws.client_state == WebSocketState.CONNECTED and not closed.done():
            with contextlib.suppress(Exception):  # the client may be gone meanwhile
                await ws.close()


async def _until_closed(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return


def live_routes() -> list[WebSocketRoute]:
    return [WebSocketRoute(LIVE_PATH, changes)]
