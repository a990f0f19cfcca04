"""The dashboard's sign-in, sign-out and MFA set-up pages: plain HTML forms in front of
Streamlit, each a thin handler over identity (``tenancy.identity``) through ``accounts``.

Signing in is identity's: the same throttle, lockout and MFA as ``POST /v1/auth/signin``. A
right password on an account with MFA leads to a second form for the code (the password step
is remembered by a five-minute ticket in an HttpOnly cookie, never by the password). The
session is identity's server-side session; the cookie holds its token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from streamlit_app import accounts, session_cookie, signin_html
from tenancy.errors import Conflict, InvalidInput, LimitExceeded, Unauthenticated

log = logging.getLogger("orbin.dashboard")

SIGNIN_PATH = "/signin"
SIGNOUT_PATH = "/signout"
MFA_SETUP_PATH = "/mfa/setup"
CSRF_COOKIE = "orbin_csrf"
MFA_COOKIE = "orbin_mfa"
MFA_COOKIE_SECONDS = 300
MAX_FORM_BYTES = 8 * 1024

# What the sign-in page says for the API callback's ``sso_error`` (never free text from a URL).
SSO_ERRORS = {
    "sso_domain_not_allowed": "Your e-mail's domain may not sign in to this organization.",
    "sso_account_exists": "An Orbin account with your e-mail exists: ask an admin to invite it.",
    "sso_link_refused": "Your account is linked to single sign-on once an owner saves it.",
    "sso_denied": "The identity provider did not sign you in.",
    "sso_state_invalid": "That single sign-on took too long or was started elsewhere. Try again.",
    "sso_token_invalid": "The identity provider's answer did not verify.",
}
SSO_FAILED = "Single sign-on did not work. Try again, or sign in with your password."


def sso_message(code: str | None) -> str:
    return SSO_ERRORS.get(code or "", SSO_FAILED) if code else ""


WRONG_PASSWORD = "Wrong email or password."
TOO_MANY = "Too many attempts. Wait a minute and try again."


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def client_of(request: Request) -> dict[str, str | None]:
    return {
        "ip": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
    }


@dataclass(frozen=True)
class Form:
    fields: dict[str, str]
    csrf_ok: bool

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


async def read_form(request: Request) -> Form | Response:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return PlainTextResponse("form too large", status_code=413)
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    expected = request.cookies.get(CSRF_COOKIE, "")
    ok = bool(expected) and hmac.compare_digest(expected, fields.get("csrf", ""))
    return Form(fields, ok)


class Pages:
    """Renders a page with a fresh or kept CSRF token (double-submit cookie)."""

    def __init__(self, preload: str) -> None:
        self.preload = preload

    def respond(
        self,
        request: Request,
        status: int,
        body: Callable[[str], str],
        *,
        title: str = "Sign in",
        message: str = "",
        kind: str = "error",
        new_csrf: bool = False,
    ) -> HTMLResponse:
        kept = None if new_csrf else request.cookies.get(CSRF_COOKIE)
        token = kept or secrets.token_urlsafe(24)
        text = signin_html.page(
            title=title, body=body(token), message=message, kind=kind, preload=self.preload
        )
        return signin_html.form_response(
            request, text, status=status, csrf=(CSRF_COOKIE, token, "/")
        )

    def password(self, request: Request, status: int, *, next_url: str, email: str = "", **kw):  # type: ignore[no-untyped-def]
        def body(csrf: str) -> str:
            return signin_html.password_form(csrf=csrf, next_url=next_url, email=email)

        response = self.respond(request, status, body, **kw)
        if request.method == "POST":
            # Not on GET: the browser's own requests (a favicon redirected here) must not
            # end a second step under way.
            response.delete_cookie(MFA_COOKIE, path=SIGNIN_PATH)
        return response

    def mfa(self, request: Request, status: int, *, next_url: str, **kw):  # type: ignore[no-untyped-def]
        def body(csrf: str) -> str:
            return signin_html.mfa_form(csrf=csrf, next_url=next_url)

        return self.respond(request, status, body, title="Two-factor authentication", **kw)


async def signed_in(pages: Pages, request: Request, token: str, next_url: str) -> Response:
    """The session is made: into the dashboard, unless the account belongs to no organization."""
    user = await run_in_threadpool(accounts.current_user, token)
    if user is None or not await run_in_threadpool(accounts.usable_memberships, user):
        await run_in_threadpool(accounts.sign_out, token)
        return pages.password(request, 403, next_url="/", message=NO_ORG)
    response = RedirectResponse(next_url, status_code=303)
    session_cookie.set_session(response, token, secure=request.url.scheme == "https")
    response.delete_cookie(MFA_COOKIE, path=SIGNIN_PATH)
    return response


NO_ORG = "This account belongs to no organization."


def signin_route(pages: Pages) -> Callable[[Request], object]:
    async def signin(request: Request) -> Response:
        if request.method == "GET":
            signed_out = request.query_params.get("signed_out") == "1"
            failed = sso_message(request.query_params.get("sso_error"))
            return pages.password(
                request,
                401 if failed else 200,
                next_url=safe_next(request.query_params.get("next")),
                message=failed or ("You signed out." if signed_out else ""),
                kind="error" if failed else "info",
            )
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        next_url = safe_next(form.get("next"))
        email = form.get("email").strip()
        if not form.csrf_ok:
            return pages.password(
                request,
                400,
                next_url=next_url,
                email=email,
                message="The sign-in form expired. Please try again.",
                new_csrf=True,
            )
        client = client_of(request)
        if form.get("step") == "mfa":
            return await _mfa_step(pages, request, form, next_url, client)
        try:
            token = await run_in_threadpool(
                lambda: accounts.sign_in(email, form.get("password"), **client)
            )
        except accounts.MfaRequired as exc:
            response = pages.mfa(request, 200, next_url=next_url)
            response.set_cookie(
                MFA_COOKIE,
                exc.ticket or "",
                max_age=MFA_COOKIE_SECONDS,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path=SIGNIN_PATH,
            )
            return response
        except LimitExceeded:
            return pages.password(request, 429, next_url=next_url, email=email, message=TOO_MANY)
        except Unauthenticated as exc:
            log.info("dashboard sign-in refused (%s) from %s", exc.code, client["ip"])
            message = exc.message if exc.code == "account_locked" else WRONG_PASSWORD
            return pages.password(request, 401, next_url=next_url, email=email, message=message)
        return await signed_in(pages, request, token, next_url)

    return signin


async def _mfa_step(
    pages: Pages, request: Request, form: Form, next_url: str, client: dict[str, str | None]
) -> Response:
    ticket = request.cookies.get(MFA_COOKIE, "")
    try:
        token = await run_in_threadpool(
            lambda: accounts.complete_mfa(ticket, form.get("code"), **client)
        )
    except LimitExceeded:
        return pages.mfa(request, 429, next_url=next_url, message=TOO_MANY)
    except Unauthenticated as exc:
        log.info("dashboard MFA step refused (%s) from %s", exc.code, client["ip"])
        if exc.code == "mfa_invalid":
            return pages.mfa(request, 401, next_url=next_url, message="That code is not valid.")
        return pages.password(request, 401, next_url=next_url, message=exc.message)
    return await signed_in(pages, request, token, next_url)


def signout_route() -> Callable[[Request], object]:
    async def signout(request: Request) -> Response:
        token = request.cookies.get(session_cookie.COOKIE_NAME)
        await run_in_threadpool(accounts.sign_out, token)  # the session ends server-side
        response = RedirectResponse(f"{SIGNIN_PATH}?signed_out=1", status_code=303)
        session_cookie.clear_session(response)
        return response

    return signout


def mfa_setup_route(pages: Pages) -> Callable[[Request], object]:
    """Turning MFA on from the dashboard (an organization requiring it sends members here)."""

    async def mfa_setup(request: Request) -> Response:
        user = await run_in_threadpool(
            accounts.current_user, request.cookies.get(session_cookie.COOKIE_NAME)
        )
        if user is None:  # the gate let it through a moment ago; the session ended since
            return RedirectResponse(SIGNIN_PATH, status_code=303)
        memberships = await run_in_threadpool(accounts.usable_memberships, user)
        why = next((m.refusal for m in memberships if m.refusal), None)
        why = why or "Protect your account with a code from an authenticator app."
        error = ""
        if request.method == "POST":
            form = await read_form(request)
            if isinstance(form, Response):
                return form
            code = form.get("code").strip()
            if not form.csrf_ok:
                error = "The form expired. Please try again."
            else:
                try:
                    codes = await run_in_threadpool(accounts.finish_mfa_setup, user, code)
                except (InvalidInput, Conflict) as exc:
                    error = exc.message
                else:
                    return pages.respond(
                        request,
                        200,
                        lambda _csrf: signin_html.recovery_codes(codes),
                        title="Recovery codes",
                    )
        try:
            setup = await run_in_threadpool(
                lambda: accounts.begin_mfa_setup(user, again=request.method == "POST")
            )
        except Conflict:
            return RedirectResponse("/", status_code=303)  # MFA is on already
        return pages.respond(
            request,
            400 if error else 200,
            lambda csrf: signin_html.mfa_setup_form(
                csrf=csrf, secret=setup.secret, uri=setup.uri, why=why
            ),
            title="Two-factor authentication",
            message=error,
        )

    return mfa_setup
