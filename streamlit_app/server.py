"""The dashboard's HTTP side, in front of Streamlit: the sign-in pages (signin.py), sign-out,
and a gate that lets no page load or websocket through without a live session.

So nothing of an organization is ever rendered, or even scripted, for a visitor who has not
signed in: an unauthenticated page load is redirected to the sign-in page and an
unauthenticated websocket is refused before Streamlit sees it. The session is identity's
(server-side): the gate asks identity about the cookie's token on every request.
"""

from __future__ import annotations

import html
import re
from functools import partial
from pathlib import Path
from urllib.parse import quote

import streamlit
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from streamlit_app import accounts, session_cookie, signin, signin_sso
from streamlit_app.invitation_page import ACCEPT_PATH, invitation_routes
from streamlit_app.live import live_routes
from streamlit_app.signin import MFA_SETUP_PATH, SIGNIN_PATH, SIGNOUT_PATH, safe_next

__all__ = ["MFA_SETUP_PATH", "SIGNIN_PATH", "SIGNOUT_PATH", "safe_next"]

# Streamlit's script bundle and fonts are the same for everyone and hold no tenant data.
PUBLIC_PATHS = frozenset(
    {
        SIGNIN_PATH,
        SIGNOUT_PATH,
        signin_sso.SSO_START_PATH,
        signin_sso.SSO_COMPLETE_PATH,
        ACCEPT_PATH,
        "/_stcore/health",
        "/favicon.png",
    }
)
PUBLIC_PREFIXES = ("/static/",)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


async def session_user(conn: HTTPConnection) -> accounts.SignedInUser | None:
    token = conn.cookies.get(session_cookie.COOKIE_NAME)
    if not token:
        return None
    return await run_in_threadpool(accounts.current_user, token)


class SessionGate:
    """Pure ASGI middleware (it must see websockets, which BaseHTTPMiddleware does not)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        if await session_user(conn) is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        response: Response
        if scope["method"] in ("GET", "HEAD") and not scope["path"].startswith("/_stcore/"):
            target = scope["path"] + (f"?{conn.url.query}" if conn.url.query else "")
            response = RedirectResponse(f"{SIGNIN_PATH}?next={quote(target, safe='')}", 303)
        else:
            response = PlainTextResponse("sign in first", status_code=401)
        if session_cookie.COOKIE_NAME in conn.cookies:
            session_cookie.clear_session(response)
        await response(scope, receive, send)


def streamlit_preloads() -> str:
    """Link tags that fetch Streamlit's page bundle while the visitor types: the dashboard
    then starts from the browser's cache right after sign-in."""
    index = Path(streamlit.__file__).parent / "static" / "index.html"
    try:
        assets = re.findall(r'(?:src|href)="\./(static/[^"]+)"', index.read_text())
    except OSError:
        return ""
    tags = []
    for asset in dict.fromkeys(assets):
        href = html.escape("/" + asset, quote=True)
        if asset.endswith(".js"):
            tags.append(f'<link rel="modulepreload" crossorigin href="{href}">')
        elif asset.endswith(".css"):
            tags.append(f'<link rel="preload" as="style" crossorigin href="{href}">')
        elif asset.endswith(".woff2"):
            tags.append(
                f'<link rel="preload" as="font" type="font/woff2" crossorigin href="{href}">'
            )
    return "\n".join(tags)


def routes() -> list[BaseRoute]:
    pages = signin.Pages(streamlit_preloads())
    return [
        Route(SIGNIN_PATH, signin.signin_route(pages), methods=["GET", "POST"]),
        Route(SIGNOUT_PATH, signin.signout_route(), methods=["GET", "POST"]),
        Route(MFA_SETUP_PATH, signin.mfa_setup_route(pages), methods=["GET", "POST"]),
        Route(signin_sso.SSO_START_PATH, signin_sso.sso_start_route(pages), methods=["POST"]),
        Route(signin_sso.SSO_COMPLETE_PATH, signin_sso.sso_complete_route(pages)),
        *invitation_routes(partial(signin.signed_in, pages)),
        *live_routes(),
    ]


def middleware() -> list[Middleware]:
    return [Middleware(SessionGate)]
