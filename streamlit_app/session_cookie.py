"""The dashboard's session cookie. It holds identity's session token (``ses_...``, stored
server-side as SHA-256), HttpOnly: the server-side session decides on every request, so
signing out, a new password or an operator's reset end the dashboard's session at once."""

from __future__ import annotations

from starlette.responses import Response

from tenancy.identity.sessions import ttl_ms

COOKIE_NAME = "orbin_session"


def set_session(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=ttl_ms() // 1000,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/")
