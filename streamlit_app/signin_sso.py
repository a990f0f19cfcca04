"""Single sign-on from the dashboard's sign-in page: ``POST /signin/sso`` (the organization's
slug) sends the browser to the API's SSO login with a hash of a fresh browser secret (a
cookie only this site reads); the API's callback sends it back to ``/sso/complete`` with a
one-time code, which only that browser can turn into a session (no login by someone else's
link)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from streamlit_app import accounts
from streamlit_app.signin import SIGNIN_PATH, Pages, read_form, safe_next, signed_in
from tenancy.errors import OrbinError

SSO_START_PATH = "/signin/sso"
SSO_COMPLETE_PATH = "/sso/complete"
BIND_COOKIE = "orbin_sso_bind"
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def sso_start_route(pages: Pages) -> Callable[[Request], object]:
    async def sso_start(request: Request) -> Response:
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        next_url = safe_next(form.get("next"))
        slug = form.get("org").strip().lower()
        if not form.csrf_ok:
            return pages.password(
                request, 400, next_url=next_url, message="The form expired. Please try again."
            )
        if not SLUG.match(slug):
            return pages.password(
                request, 422, next_url=next_url, message="Enter your organization's slug."
            )
        browser = secrets.token_urlsafe(32)
        url = await run_in_threadpool(accounts.sso_login_url, slug, browser, next_url)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            BIND_COOKIE,
            browser,
            max_age=600,
            httponly=True,
            samesite="lax",  # it comes back with a top-level navigation from the API
            secure=request.url.scheme == "https",
            path=SSO_COMPLETE_PATH,
        )
        return response

    return sso_start


def sso_complete_route(pages: Pages) -> Callable[[Request], object]:
    async def sso_complete(request: Request) -> Response:
        code = request.query_params.get("code", "")
        browser = request.cookies.get(BIND_COOKIE)
        try:
            token, next_url = await run_in_threadpool(accounts.complete_sso, code, browser)
        except OrbinError as exc:
            return RedirectResponse(f"{SIGNIN_PATH}?sso_error={quote(exc.code)}", status_code=303)
        response = await signed_in(pages, request, token, safe_next(next_url))
        response.delete_cookie(BIND_COOKIE, path=SSO_COMPLETE_PATH)
        return response

    return sso_complete
