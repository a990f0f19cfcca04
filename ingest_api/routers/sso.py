"""Single sign-on with OpenID Connect: an organization's settings (admins and owners), and the
round trip ``GET /v1/auth/sso/{slug}/login`` -> the provider -> ``.../callback``.

The callback answers the session token as JSON (API clients), or, when the dashboard started
the sign-in, sends the browser back to the dashboard with a one-time code."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from ingest_api.deps import CurrentPrincipal, SessionDep
from tenancy.db import read_scope
from tenancy.errors import OrbinError
from tenancy.identity import sso, sso_settings
from tenancy.identity.accounts import public_user
from tenancy.identity.invitations import dashboard_url

router = APIRouter(tags=["sso"])
COOKIE = "orbin_sso"


class SsoConfigIn(BaseModel):
    issuer: str = Field(max_length=500, description="The provider's issuer URL")
    clientId: str = Field(max_length=300)
    clientSecret: str | None = Field(
        default=None, max_length=2000, description="Required the first time; kept if left out"
    )
    allowedDomains: list[str] = Field(description="E-mail domains that may sign in")
    defaultRole: str = Field(default="member", description="viewer | member | admin")


@router.get("/v1/orgs/current/sso")
def read_sso(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """The organization's single sign-on settings (never the client secret)."""
    cfg = sso_settings.read_config(session, principal)
    return sso_settings.public_config(cfg, principal.organization_slug)


@router.put("/v1/orgs/current/sso")
def set_sso(body: SsoConfigIn, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Set the provider; its discovery document is read now (422 naming what is wrong)."""
    cfg = sso_settings.set_config(
        session,
        principal,
        issuer=body.issuer,
        client_id=body.clientId,
        client_secret=body.clientSecret,
        allowed_domains=body.allowedDomains,
        default_role=body.defaultRole,
    )
    return sso_settings.public_config(cfg, principal.organization_slug)


@router.delete("/v1/orgs/current/sso", status_code=204)
def delete_sso(principal: CurrentPrincipal, session: SessionDep) -> Response:
    sso_settings.delete_config(session, principal)
    return Response(status_code=204)


@router.get(
    "/v1/auth/sso/{slug}/login",
    status_code=302,
    responses={302: {"description": "To the organization's identity provider"}},
)
def sso_login(
    slug: str,
    request: Request,
    session: SessionDep,
    client: str = Query(default="api", description="api | dashboard"),
    bind: str | None = Query(default=None, max_length=128),
    next: str = Query(default="/", max_length=500),  # noqa: A002 - the query's name
) -> Response:
    """Start signing in to ``slug`` by single sign-on (authorization code with PKCE)."""
    start = sso.begin_login(session, slug, client=client, bind=bind, next_url=next)
    response = RedirectResponse(start.url, status_code=302)
    response.set_cookie(
        COOKIE,
        start.browser_secret,
        max_age=sso.STATE_MS // 1000,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=f"/v1/auth/sso/{quote(slug)}/",
    )
    return response


class SsoSessionOut(BaseModel):
    token: str = Field(description="Bearer token: `Authorization: Bearer ses_...`")
    user: dict[str, Any]
    organization: dict[str, Any]
    created: bool = Field(description="The account was made by this sign-in")


@router.get(
    "/v1/auth/sso/{slug}/callback",
    response_model=SsoSessionOut,
    responses={303: {"description": "Back to the dashboard with a one-time code"}},
)
async def sso_callback(
    slug: str,
    request: Request,
    code: str | None = Query(default=None, max_length=2000),
    state: str | None = Query(default=None, max_length=200),
    error: str | None = Query(default=None, max_length=200),
) -> Any:
    """Where the provider sends the browser back: the ID token verified (JWKS, issuer,
    audience, nonce), the user created or linked, a session for this organization only."""

    def client_of() -> str | None:
        with read_scope() as s:
            return sso.login_client(s, state)

    client = await run_in_threadpool(client_of)
    try:
        done = await run_in_threadpool(
            lambda: sso.complete_login(
                slug,
                code=code,
                state=state,
                browser_secret=request.cookies.get(COOKIE),
                error=error,
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
        )
    except OrbinError as exc:
        if client != "dashboard":
            raise
        return _to_dashboard(f"/signin?sso_error={quote(exc.code)}")
    if done.client == "dashboard":
        return _to_dashboard(f"/sso/complete?code={quote(done.code or '')}")
    org = done.organization
    return {
        "token": done.token,
        "user": public_user(done.user),
        "organization": {"id": org.id, "slug": org.slug, "name": org.name},
        "created": done.created,
    }


def _to_dashboard(path: str) -> Response:
    return RedirectResponse(dashboard_url() + path, status_code=303)
