"""Members of the organization and invitations by e-mail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ingest_api.deps import CurrentPrincipal, SessionDep
from tenancy.identity import invitations as inv
from tenancy.identity import members
from tenancy.identity.accounts import public_user
from tenancy.identity.sessions import read_user
from tenancy.principal import Role

router = APIRouter(tags=["members"])


class RoleIn(BaseModel):
    role: Role


class InviteIn(BaseModel):
    email: str = Field(max_length=320)
    role: Role = "member"


class AcceptIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(max_length=1024)
    name: str | None = Field(default=None, max_length=200)


class TransferIn(BaseModel):
    userId: str


def _member(m: Any, u: Any) -> dict[str, Any]:
    return {
        "userId": u.id,
        "email": u.email,
        "name": u.name,
        "role": m.role,
        "joinedAt": m.joined_at,
        "invitedBy": m.invited_by,
        "mfaEnabled": bool(u.mfa_enabled_at),
    }


def _invitation(i: Any) -> dict[str, Any]:
    return {
        "id": i.id,
        "email": i.email,
        "role": i.role,
        "status": i.status,
        "invitedBy": i.invited_by,
        "expiresAt": i.expires_at,
        "createdAt": i.created_at,
    }


@router.get("/v1/members")
def list_members(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    rows = members.read_members(session, principal)
    return {"data": [_member(m, u) for m, u in rows], "nextCursor": None, "hasMore": False}


@router.patch("/v1/members/{user_id}")
def change_role(
    user_id: str, body: RoleIn, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """Admins change roles up to admin; only owners make or unmake owners."""
    m = members.change_member_role(session, principal, user_id, body.role)
    return _member(m, read_user(session, m.user_id))


@router.delete("/v1/members/{user_id}", status_code=204)
def remove(user_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Remove a member (or leave, with your own id). The last owner cannot leave (409)."""
    members.remove_member(session, principal, user_id)
    return Response(status_code=204)


@router.post("/v1/orgs/current/transfer-ownership", status_code=204)
def transfer(body: TransferIn, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """The owner makes another member the owner and becomes an admin."""
    members.transfer_ownership(session, principal, body.userId)
    return Response(status_code=204)


@router.post("/v1/invitations", status_code=201)
def invite(body: InviteIn, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """E-mail an invitation link (one use, 7 days). Re-inviting replaces the earlier link."""
    return _invitation(inv.create_invitation(session, principal, email=body.email, role=body.role))


@router.get("/v1/invitations")
def list_invitations(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    rows = inv.read_invitations(session, principal)
    return {"data": [_invitation(i) for i in rows], "nextCursor": None, "hasMore": False}


@router.post("/v1/invitations/{invitation_id}/resend")
def resend(invitation_id: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return _invitation(inv.resend_invitation(session, principal, invitation_id))


@router.delete("/v1/invitations/{invitation_id}", status_code=204)
def revoke(invitation_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    inv.revoke_invitation(session, principal, invitation_id)
    return Response(status_code=204)


@router.post("/v1/invitations/accept")
def accept(body: AcceptIn, request: Request, session: SessionDep) -> dict[str, Any]:
    """Join with the e-mailed token; creates the account if the e-mail has none (then the
    password becomes its password) and signs in. 410 once used, revoked or expired."""
    done = inv.accept_invitation(
        session,
        token=body.token,
        name=body.name,
        password=body.password,
        user_agent=request.headers.get("user-agent"),
        ip=request.client.host if request.client else None,
    )
    return {
        "token": done.session.token,
        "user": public_user(done.user),
        "organization": {
            "id": done.organization.id,
            "slug": done.organization.slug,
            "name": done.organization.name,
        },
    }
