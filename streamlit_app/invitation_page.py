"""The invitee's side of an invitation: ``/accept-invitation?token=...``, the link in the mail.

A plain HTML page served before Streamlit (the visitor has no session yet): it names the
organization and the role, then asks for a name and a new password (no account with the
invited e-mail yet) or the account's password (one exists). Joining signs the invitee in to
the dashboard, as the sign-in page does; an account with MFA signs in there, with its code.
"""

from __future__ import annotations

import hmac
import html
import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from streamlit_app import accounts, signin_html
from streamlit_app.services import invitations as service
from tenancy.errors import Gone, LimitExceeded, NotFound, OrbinError, Unauthenticated
from tenancy.identity.throttle import check_sign_in

log = logging.getLogger("orbin.dashboard")

ACCEPT_PATH = "/accept-invitation"
CSRF_COOKIE = "orbin_invite_csrf"
MAX_FORM_BYTES = 8 * 1024

SignedIn = Callable[[Request, str, str], Awaitable[Response]]  # (request, session token, next)


def _page(body: str, *, status: int, request: Request, csrf: str | None = None) -> HTMLResponse:
    return signin_html.form_response(
        request,
        PAGE_HTML.format(body=body),
        status=status,
        headers={"referrer-policy": "no-referrer"},  # the token is in the URL
        csrf=(CSRF_COOKIE, csrf, ACCEPT_PATH) if csrf else None,
    )


def _problem(request: Request, exc: OrbinError) -> HTMLResponse:
    status = 410 if isinstance(exc, Gone) else 404
    return _page(
        f"<h1>Invitation</h1><p class='note error' role='alert'>{html.escape(exc.message)}.</p>"
        "<p>Ask the person who invited you for a new invitation.</p>",
        status=status,
        request=request,
    )


def _form(
    request: Request,
    token: str,
    invite: service.InvitationPreview,
    *,
    status: int = 200,
    message: str = "",
    name: str = "",
) -> HTMLResponse:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    esc = html.escape
    note = f'<p class="note error" role="alert">{esc(message)}</p>' if message else ""
    if invite.has_account:
        fields = (
            f"<p>An account with <b>{esc(invite.email)}</b> exists: enter its password to "
            "join.</p>"
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" required '
            'autocomplete="current-password" autofocus>'
        )
        action = "Join"
    else:
        fields = (
            f"<p>Create your account for <b>{esc(invite.email)}</b>.</p>"
            '<label for="name">Your name</label>'
            f'<input id="name" name="name" required maxlength="200" autofocus '
            f'autocomplete="name" value="{esc(name, quote=True)}">'
            '<label for="password">Password (at least 12 characters)</label>'
            '<input id="password" name="password" type="password" required minlength="12" '
            'autocomplete="new-password">'
            '<label for="confirm">Repeat the password</label>'
            '<input id="confirm" name="confirm" type="password" required '
            'autocomplete="new-password">'
        )
        action = "Create account and join"
    body = (
        f"<h1>Join {esc(invite.organization_name)}</h1>"
        f'<p class="lead">You are invited to <b>{esc(invite.organization_name)}</b> '
        f"on Orbin as <b>{esc(invite.role)}</b>.</p>{note}"
        f'<form method="post" action="{ACCEPT_PATH}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf, quote=True)}">'
        f'<input type="hidden" name="token" value="{esc(token, quote=True)}">'
        f'{fields}<button type="submit">{action}</button></form>'
    )
    return _page(body, status=status, request=request, csrf=csrf)


def invitation_routes(signed_in: SignedIn) -> list[BaseRoute]:
    """``signed_in`` makes the sign-in page's answer: the session cookie and a redirect.
    An account's password is guessed no faster here than at sign-in (identity's throttle)."""

    async def accept(request: Request) -> Response:
        if request.method == "GET":
            token = request.query_params.get("token", "")
            try:
                invite = await run_in_threadpool(service.preview, token)
            except (NotFound, Gone) as exc:
                return _problem(request, exc)
            return _form(request, token, invite)

        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return PlainTextResponse("form too large", status_code=413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        token = form.get("token", "")
        try:
            invite = await run_in_threadpool(service.preview, token)
        except (NotFound, Gone) as exc:
            return _problem(request, exc)
        name, password = form.get("name", "").strip(), form.get("password", "")
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return _form(request, token, invite, status=400, message="The form expired. Try again.")
        client = request.client.host if request.client else "unknown"
        try:
            await run_in_threadpool(check_sign_in, invite.email, client)
        except LimitExceeded:
            return _form(
                request, token, invite, status=429, message="Too many attempts. Wait a minute."
            )
        if not invite.has_account and password != form.get("confirm", ""):
            return _form(
                request, token, invite, status=400, message="The passwords differ.", name=name
            )
        try:
            email = await run_in_threadpool(
                lambda: service.accept(token, name=name or None, password=password)
            )
        except (NotFound, Gone) as exc:
            return _problem(request, exc)
        except OrbinError as exc:
            return _form(request, token, invite, status=400, message=exc.message, name=name)
        log.info("invitation to %s accepted", invite.organization_slug)
        if invite.mfa_enabled:
            return _page(
                f"<h1>Welcome to {html.escape(invite.organization_name)}</h1>"
                "<p>You joined. Your account uses MFA: "
                '<a href="/signin">sign in</a> with your password and code.</p>',
                status=200,
                request=request,
            )
        agent = request.headers.get("user-agent")
        try:
            session_token = await run_in_threadpool(
                lambda: accounts.sign_in(email, password, ip=client, user_agent=agent)
            )
        except (Unauthenticated, LimitExceeded):
            return _page(
                '<h1>You joined</h1><p><a href="/signin">Sign in</a> to continue.</p>',
                status=200,
                request=request,
            )
        return await signed_in(request, session_token, "/")

    return [Route(ACCEPT_PATH, accept, methods=["GET", "POST"])]


PAGE_HTML = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Invitation · Orbin</title>
<style>
"""
    + signin_html.CARD_CSS
    + """\
  h1 {{ margin: 0 0 .5rem; font-size: 1.4rem; }}
  p.lead {{ color: #475569; }}
  label {{ display: block; font-size: .9rem; margin: 1rem 0 .35rem; color: #334155; }}
  input {{ width: 100%; padding: .6rem .75rem; border: 1px solid #cbd5e1; border-radius: 8px;
    font-size: 1rem; }}
  button {{ width: 100%; margin-top: 1.5rem; padding: .7rem; border: 0; border-radius: 8px;
    background: #0284c7; color: #fff; font-size: 1rem; font-weight: 600; cursor: pointer; }}
  .note {{ padding: .6rem .75rem; border-radius: 8px; font-size: .9rem; }}
  .note.error {{ background: #fee2e2; color: #b91c1c; }}
  a {{ color: #0284c7; }}
</style></head>
<body><main><div class="brand" style="color:#0284c7;font-weight:700">Orbin</div>
{body}
</main></body></html>
"""
)
