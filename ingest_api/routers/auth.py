"""Accounts and sessions: sign-up, sign-in (MFA), sign-out, the signed-in user, MFA enrolment.

Sessions are bearer tokens ``ses_...``; with one, org-scoped routes take the organization's
slug in ``x-orbin-org`` (the user's first organization when it is left out)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ingest_api.deps import CurrentPrincipal, SessionDep, SignedIn, credential_of
from orbin_flows import organizations as org_use_cases
from tenancy.identity import accounts, notifications
from tenancy.identity import organizations as orgs
from tenancy.identity import password_reset as password_reset_
from tenancy.identity.sessions import read_user, revoke_session

router = APIRouter(tags=["identity"])


class SignUpIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    name: str = Field(min_length=1, max_length=200)


class SignInIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp: str | None = Field(default=None, max_length=12, description="6-digit TOTP code")
    recoveryCode: str | None = Field(default=None, max_length=64)


class SessionOut(BaseModel):
    token: str = Field(description="Bearer token: `Authorization: Bearer ses_...`")
    user: dict[str, Any]


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)


class MfaDisableIn(BaseModel):
    password: str = Field(max_length=1024)
    code: str | None = Field(default=None, max_length=64)


class PasswordIn(BaseModel):
    currentPassword: str = Field(max_length=1024)
    newPassword: str = Field(max_length=1024)


class ResetIn(BaseModel):
    email: str = Field(max_length=320)


class ResetConfirmIn(BaseModel):
    token: str = Field(min_length=1, max_length=300)
    password: str = Field(max_length=1024)


class OrgPatchIn(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    billingEmail: str | None = Field(default=None, max_length=320)
    defaultRetryPolicy: dict[str, Any] | None = None
    alertEmails: list[str] | None = None
    requireMfa: bool | None = None


class OrgIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=1, max_length=64)


def _client(request: Request) -> dict[str, str | None]:
    return {
        "user_agent": request.headers.get("user-agent"),
        "ip": request.client.host if request.client else None,
    }


@router.post("/v1/auth/signup", status_code=201, response_model=SessionOut)
def sign_up(body: SignUpIn, request: Request, session: SessionDep) -> Any:
    """Create an account and sign in. 409 if the e-mail has an account."""
    done = accounts.sign_up(
        session, email=body.email, password=body.password, name=body.name, **_client(request)
    )
    return {"token": done.session.token, "user": accounts.public_user(done.user)}


@router.post("/v1/auth/signin", response_model=SessionOut)
async def sign_in(body: SignInIn, request: Request) -> Any:
    """401 ``invalid_credentials``; 401 ``mfa_required`` when the account uses MFA and no
    ``totp`` was sent; 401 ``account_locked`` after repeated failures."""
    token, user = await run_in_threadpool(
        lambda: accounts.sign_in(
            email=body.email,
            password=body.password,
            totp=body.totp,
            recovery_code=body.recoveryCode,
            **_client(request),
        )
    )
    return {"token": token, "user": user}


@router.post("/v1/auth/signout", status_code=204)
def sign_out(me: SignedIn, request: Request, session: SessionDep) -> Response:
    revoke_session(session, credential_of(request) or "")
    return Response(status_code=204)


@router.get("/v1/me")
def read_me(me: SignedIn, session: SessionDep) -> dict[str, Any]:
    """The signed-in user and the organizations they belong to, with their role in each."""
    user = read_user(session, me.user_id)
    return {"user": accounts.public_user(user), "organizations": orgs.read_me(session, user)}


@router.get("/v1/me/notification-preferences")
def read_preferences(me: SignedIn, session: SessionDep) -> dict[str, Any]:
    """Per cause (workflow_failed, usage, member_joined, integration_error): inApp, email."""
    return notifications.preferences(read_user(session, me.user_id))


@router.put("/v1/me/notification-preferences")
def update_preferences(body: dict[str, Any], me: SignedIn, session: SessionDep) -> dict[str, Any]:
    return notifications.update_preferences(read_user(session, me.user_id), body)


@router.post("/v1/auth/password", status_code=204)
def change_password(body: PasswordIn, me: SignedIn, session: SessionDep) -> Response:
    """Change the password; every other session of the account is signed out."""
    accounts.change_password(
        session,
        read_user(session, me.user_id),
        current=body.currentPassword,
        new=body.newPassword,
        keep_session_id=me.session_id,
    )
    return Response(status_code=204)


@router.post("/v1/auth/mfa/enroll")
def mfa_enroll(me: SignedIn, session: SessionDep) -> dict[str, str]:
    """Start TOTP enrolment: the secret and an ``otpauth://`` URI for authenticator apps."""
    return accounts.begin_mfa_enrollment(session, read_user(session, me.user_id))


@router.post("/v1/auth/mfa/verify")
def mfa_verify(body: CodeIn, me: SignedIn, session: SessionDep) -> dict[str, Any]:
    """Turn MFA on with a first code; answers the recovery codes, shown once."""
    codes = accounts.verify_mfa_enrollment(session, read_user(session, me.user_id), body.code)
    return {"mfaEnabled": True, "recoveryCodes": codes}


@router.post("/v1/auth/mfa/disable")
def mfa_disable(body: MfaDisableIn, me: SignedIn, session: SessionDep) -> dict[str, Any]:
    accounts.disable_mfa(
        session, read_user(session, me.user_id), password=body.password, code=body.code
    )
    return {"mfaEnabled": False}


@router.post("/v1/auth/password-reset", status_code=202)
def password_reset(body: ResetIn, session: SessionDep) -> dict[str, str]:
    """E-mail a one-hour, single-use reset link (the same answer whether the account exists)."""
    password_reset_.request_password_reset(session, body.email)
    return {"status": "sent if the account exists"}


@router.post("/v1/auth/password-reset/confirm", response_model=SessionOut)
def password_reset_confirm(body: ResetConfirmIn, request: Request, session: SessionDep) -> Any:
    """Set the new password; every session of the account ends and a new one is answered."""
    user, new = password_reset_.confirm_password_reset(
        session, body.token, body.password, **_client(request)
    )
    return {"token": new.token, "user": accounts.public_user(user)}


@router.get("/v1/orgs")
def list_my_orgs(me: SignedIn, session: SessionDep) -> dict[str, Any]:
    """The organizations of the signed-in user, with their role in each."""
    data = orgs.read_me(session, read_user(session, me.user_id))
    return {"data": data, "nextCursor": None, "hasMore": False}


@router.get("/v1/orgs/current")
def read_current_org(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """The organization the caller acts in (``x-orbin-org``, or the API key's)."""
    return orgs.organization_public(orgs.read_current(session, principal), principal.role)


@router.patch("/v1/orgs/current")
def update_current_org(
    body: OrgPatchIn, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """Name, billing e-mail, default retry policy, alert e-mails, requireMfa (admins)."""
    org = orgs.update_current(session, principal, body.model_dump(exclude_unset=True))
    return orgs.organization_public(org, principal.role)


@router.delete("/v1/orgs/current")
async def delete_current_org(
    principal: CurrentPrincipal,
    confirm: str | None = Query(default=None, max_length=64, description="the slug, to confirm"),
) -> dict[str, Any]:
    """Delete the organization (owners): its keys stop working, its workflows are archived,
    its Prefect work pool is removed; kept with its audit trail, reachable by no one."""
    return await org_use_cases.delete_organization(principal, confirm=confirm)


@router.post("/v1/orgs", status_code=201)
async def create_org(body: OrgIn, me: SignedIn) -> dict[str, Any]:
    """Create an organization owned by the signed-in user, with its Prefect work pool."""
    return await org_use_cases.create_organization(me.user_id, name=body.name, slug=body.slug)
