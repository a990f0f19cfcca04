"""The dashboard's HTTP side, in front of Streamlit: the sign-in page, sign-out, and a gate that
lets no page load or websocket through without a valid session cookie.

So nothing of an organization is ever rendered, or even scripted, for a visitor who has not
signed in: an unauthenticated page load is redirected to the sign-in page and an
unauthenticated websocket is refused before Streamlit sees it.
"""

from __future__ import annotations

import hmac
import html
import logging
import re
import secrets
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, quote

import streamlit
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from streamlit_app import accounts, session_cookie
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.errors import Unauthenticated

log = logging.getLogger("orbin.dashboard")

SIGNIN_PATH = "/signin"
SIGNOUT_PATH = "/signout"
CSRF_COOKIE = "orbin_csrf"
MAX_FORM_BYTES = 8 * 1024
# Streamlit's script bundle and fonts are the same for everyone and hold no tenant data.
PUBLIC_PATHS = frozenset({SIGNIN_PATH, SIGNOUT_PATH, "/_stcore/health", "/favicon.png"})
PUBLIC_PREFIXES = ("/static/",)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


async def session_user(conn: HTTPConnection) -> accounts.SignedInUser | None:
    claims = session_cookie.read(conn.cookies.get(session_cookie.COOKIE_NAME), now_ms=now_ms())
    if claims is None:
        return None
    return await run_in_threadpool(accounts.current_user, claims.user_id, claims.password_tag)


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
            response.delete_cookie(session_cookie.COOKIE_NAME, path="/")
        await response(scope, receive, send)


class SignInLimiter:
    """Passwords cannot be guessed at speed: attempts per client address, failures per email."""

    def __init__(self, storage_url: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_url))
        self._per_client = parse("60/minute")
        self._failures_per_email = parse("10/minute")

    def allow(self, client: str, email: str) -> bool:
        try:
            return self._limiter.hit(self._per_client, "signin-client", client) and (
                self._limiter.test(self._failures_per_email, "signin-email", _norm(email))
            )
        except Exception:  # noqa: BLE001 - a limiter outage must not lock everyone out
            log.warning("sign-in rate limiter unavailable", exc_info=True)
            return True

    def failed(self, email: str) -> None:
        try:
            self._limiter.hit(self._failures_per_email, "signin-email", _norm(email))
        except Exception:  # noqa: BLE001
            log.warning("sign-in rate limiter unavailable", exc_info=True)


def _norm(email: str) -> str:
    return email.strip().lower()[:320]


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


def _page(
    *,
    message: str = "",
    kind: str = "error",
    email: str = "",
    next_url: str = "/",
    csrf: str,
    preload: str = "",
) -> str:
    note = f'<p class="note {kind}" role="alert">{html.escape(message)}</p>' if message else ""
    return SIGNIN_HTML.format(
        preload=preload,
        note=note,
        email=html.escape(email, quote=True),
        next=html.escape(next_url, quote=True),
        csrf=html.escape(csrf, quote=True),
        action=SIGNIN_PATH,
    )


def _respond(request: Request, status: int, csrf: str | None = None, **kw: str) -> HTMLResponse:
    token = csrf or request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = HTMLResponse(_page(csrf=token, **kw), status_code=status)
    response.headers["cache-control"] = "no-store"
    response.headers["x-frame-options"] = "DENY"
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=SIGNIN_PATH,
    )
    return response


def routes() -> list[Route]:
    limiter = SignInLimiter(get_settings().redis_url or "memory://")
    respond = partial(_respond, preload=streamlit_preloads())

    async def signin(request: Request) -> Response:
        if request.method == "GET":
            signed_out = request.query_params.get("signed_out") == "1"
            return respond(
                request,
                200,
                message="You signed out." if signed_out else "",
                kind="info",
                next_url=safe_next(request.query_params.get("next")),
            )
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return PlainTextResponse("form too large", status_code=413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        email, password = form.get("email", "").strip(), form.get("password", "")
        next_url = safe_next(form.get("next"))
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return respond(
                request,
                400,
                csrf=secrets.token_urlsafe(24),
                message="The sign-in form expired. Please try again.",
                email=email,
                next_url=next_url,
            )
        client = request.client.host if request.client else "unknown"
        if not await run_in_threadpool(limiter.allow, client, email):
            return respond(
                request,
                429,
                message="Too many attempts. Wait a minute and try again.",
                email=email,
                next_url=next_url,
            )
        try:
            user = await run_in_threadpool(accounts.sign_in, email, password)
        except Unauthenticated:
            await run_in_threadpool(limiter.failed, email)
            log.info("dashboard sign-in failed for %s from %s", email[:100], client)
            return respond(
                request, 401, message="Wrong email or password.", email=email, next_url=next_url
            )
        if not await run_in_threadpool(accounts.read_memberships, user.id):
            return respond(
                request, 403, message="This account belongs to no organization.", email=email
            )
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(
            session_cookie.COOKIE_NAME,
            session_cookie.issue(user_id=user.id, password_tag=user.password_tag, now_ms=now_ms()),
            max_age=session_cookie.MAX_AGE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def signout(request: Request) -> Response:
        response = RedirectResponse(f"{SIGNIN_PATH}?signed_out=1", status_code=303)
        response.delete_cookie(session_cookie.COOKIE_NAME, path="/")
        return response

    return [
        Route(SIGNIN_PATH, signin, methods=["GET", "POST"]),
        Route(SIGNOUT_PATH, signout, methods=["GET", "POST"]),
    ]


def middleware() -> list[Middleware]:
    return [Middleware(SessionGate)]


SIGNIN_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>Sign in · Orbin</title>
{preload}
<style>
  * {{ box-sizing: border-box; }}
  body {{ margin: 0; min-height: 100vh; display: grid; place-items: center;
    font-family: "Source Sans Pro", system-ui, -apple-system, "Segoe UI", sans-serif;
    background: #f0f9ff; color: #0f172a; }}
  main {{ width: min(380px, 92vw); background: #fff; border: 1px solid #e2e8f0;
    border-radius: 12px; padding: 2rem; box-shadow: 0 10px 30px rgba(2, 132, 199, .08); }}
  h1 {{ margin: 0 0 .25rem; font-size: 1.5rem; }}
  .brand {{ color: #0284c7; font-weight: 700; letter-spacing: .02em; }}
  p.lead {{ margin: 0 0 1.5rem; color: #475569; }}
  label {{ display: block; font-size: .9rem; margin: 1rem 0 .35rem; color: #334155; }}
  input {{ width: 100%; padding: .6rem .75rem; border: 1px solid #cbd5e1; border-radius: 8px;
    font-size: 1rem; }}
  input:focus {{ outline: 2px solid #38bdf8; border-color: #0284c7; }}
  button {{ width: 100%; margin-top: 1.5rem; padding: .7rem; border: 0; border-radius: 8px;
    background: #0284c7; color: #fff; font-size: 1rem; font-weight: 600; cursor: pointer; }}
  button:hover {{ background: #0369a1; }}
  .note {{ padding: .6rem .75rem; border-radius: 8px; font-size: .9rem; }}
  .note.error {{ background: #fee2e2; color: #b91c1c; }}
  .note.info {{ background: #e0f2fe; color: #075985; }}
</style></head>
<body><main>
  <h1><span class="brand">Orbin</span></h1>
  <p class="lead">Sign in to your organization's dashboard.</p>
  {note}
  <form method="post" action="{action}">
    <input type="hidden" name="csrf" value="{csrf}">
    <input type="hidden" name="next" value="{next}">
    <label for="email">Email</label>
    <input id="email" name="email" type="email" autocomplete="username" required autofocus
      value="{email}">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password"
      required>
    <button type="submit">Sign in</button>
  </form>
</main></body></html>
"""
