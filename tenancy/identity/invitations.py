"""Invitations by e-mail: a one-time link token (stored as SHA-256), a role, an expiry."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy.audit import record_audit
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.errors import Conflict, Gone, InvalidInput, NotFound, PermissionDenied
from tenancy.identity.accounts import _verify_password, check_password
from tenancy.identity.members import _caller_rank, _role, announce_joined
from tenancy.identity.sessions import NewSession, create_session
from tenancy.mail import queue_mail
from tenancy.models import Invitation, Organization, OrganizationMember, User
from tenancy.orgs import create_user
from tenancy.plan_limits import check_seat_for_invitation, check_seat_for_member
from tenancy.principal import ROLE_RANK, Principal
from tenancy.scoping import get_scoped, scoped

TTL_MS = 7 * 86_400_000


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def dashboard_url() -> str:
    return get_settings().public_dashboard_url


@dataclass(frozen=True)
class Accepted:
    user: User
    organization: Organization
    session: NewSession


def _send(session: Session, principal: Principal, inv: Invitation, token: str) -> None:
    link = f"{dashboard_url()}/accept-invitation?token={quote(token)}"
    org = session.get(Organization, inv.organization_id)
    queue_mail(
        session,
        to=inv.email,
        organization_id=inv.organization_id,
        subject=f"You are invited to {org.name if org else principal.organization_slug} on Orbin",
        text=(
            f"You have been invited to join {org.name if org else ''} "
            f"({principal.organization_slug}) on Orbin as {inv.role}.\n\n"
            f"Accept the invitation: {link}\n\n"
            f"The link works once and expires in 7 days. If you did not expect it, ignore it.\n"
        ),
    )


def create_invitation(
    session: Session, principal: Principal, *, email: str, role: str
) -> Invitation:
    principal.require("members:write")
    _role(role)
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 320:
        raise InvalidInput("email is not a valid address", details=[{"field": "email"}])
    if ROLE_RANK[role] > _caller_rank(principal):
        raise PermissionDenied(f"you may not invite someone as {role}")
    existing = session.execute(
        select(OrganizationMember)
        .join(User, User.id == OrganizationMember.user_id)
        .where(OrganizationMember.organization_id == principal.organization_id, User.email == email)
    ).first()
    if existing:
        raise Conflict(f"{email} is already a member")
    check_seat_for_invitation(session, principal.organization_id, email)
    for old in session.scalars(
        scoped(Invitation, principal.organization_id).where(
            Invitation.email == email, Invitation.status == "pending"
        )
    ):
        old.status = "revoked"  # the newest invitation replaces earlier ones
    token = secrets.token_urlsafe(32)
    inv = Invitation(
        organization_id=principal.organization_id,
        email=email,
        role=role,
        invited_by=principal.user_id or _any_owner(session, principal.organization_id),
        token_hash=_hash(token),
        expires_at=now_ms() + TTL_MS,
    )
    session.add(inv)
    session.flush()
    _send(session, principal, inv, token)
    record_audit(
        session, principal, "member.invited", "invitation", inv.id, {"email": email, "role": role}
    )
    return inv


def _any_owner(session: Session, organization_id: str) -> str:
    owner = session.scalars(
        select(OrganizationMember.user_id).where(
            OrganizationMember.organization_id == organization_id,
            OrganizationMember.role == "owner",
        )
    ).first()
    if owner is None:
        raise Conflict("the organization has no owner to send invitations in the name of")
    return owner


def read_invitations(session: Session, principal: Principal) -> list[Invitation]:
    principal.require("members:read")
    return list(
        session.scalars(
            scoped(Invitation, principal.organization_id)
            .where(Invitation.status == "pending")
            .order_by(Invitation.created_at.desc())
        )
    )


def revoke_invitation(session: Session, principal: Principal, invitation_id: str) -> Invitation:
    principal.require("members:write")
    inv = get_scoped(
        session, Invitation, principal.organization_id, invitation_id, label="invitation"
    )
    if inv.status == "pending":
        inv.status = "revoked"
        record_audit(session, principal, "invitation.revoked", "invitation", inv.id)
    return inv


def resend_invitation(session: Session, principal: Principal, invitation_id: str) -> Invitation:
    principal.require("members:write")
    inv = get_scoped(
        session, Invitation, principal.organization_id, invitation_id, label="invitation"
    )
    if inv.status != "pending":
        raise Gone(f"the invitation is {inv.status}")
    token = secrets.token_urlsafe(32)
    inv.token_hash = _hash(token)
    inv.expires_at = now_ms() + TTL_MS
    _send(session, principal, inv, token)
    record_audit(session, principal, "invitation.resent", "invitation", inv.id)
    return inv


@dataclass(frozen=True)
class InvitationPreview:
    """What the invitee sees before accepting: whose invitation, which role, for which e-mail,
    and whether that e-mail already has an account (then its password joins)."""

    email: str
    role: str
    organization_name: str
    organization_slug: str
    has_account: bool
    mfa_enabled: bool


def _pending_by_token(session: Session, token: str) -> Invitation:
    inv = session.scalars(
        select(Invitation).where(Invitation.token_hash == _hash(token or ""))
    ).first()
    if inv is None:
        raise NotFound("this invitation link is not valid")
    if inv.status != "pending":
        raise Gone(f"this invitation was already {inv.status}")
    if inv.expires_at <= now_ms():
        raise Gone("this invitation has expired: ask for a new one")
    return inv


def preview_invitation(session: Session, token: str) -> InvitationPreview:
    """The pending invitation of this link (NotFound, or Gone once used, revoked or expired)."""
    inv = _pending_by_token(session, token)
    org = session.get(Organization, inv.organization_id)
    assert org is not None
    user = session.scalars(select(User).where(User.email == inv.email)).first()
    return InvitationPreview(
        email=inv.email,
        role=inv.role,
        organization_name=org.name,
        organization_slug=org.slug,
        has_account=user is not None,
        mfa_enabled=bool(user is not None and user.mfa_enabled_at),
    )


def accept_invitation(
    session: Session,
    *,
    token: str,
    name: str | None,
    password: str,
    user_agent: str | None = None,
    ip: str | None = None,
) -> Accepted:
    inv = _pending_by_token(session, token)
    user = session.scalars(select(User).where(User.email == inv.email)).first()
    if user is None:
        check_password(password)
        user = create_user(
            session,
            email=inv.email,
            name=(name or inv.email.split("@")[0]).strip(),
            password=password,
        )
    elif not _verify_password(user, password):
        raise InvalidInput("an account with this e-mail exists: give its password to join")
    member = session.scalars(
        select(OrganizationMember).where(
            OrganizationMember.organization_id == inv.organization_id,
            OrganizationMember.user_id == user.id,
        )
    ).first()
    if member is None:
        check_seat_for_member(session, inv.organization_id)
        session.add(
            OrganizationMember(
                organization_id=inv.organization_id,
                user_id=user.id,
                role=inv.role,
                invited_by=inv.invited_by,
            )
        )
    inv.status = "accepted"
    inv.accepted_at = now_ms()
    org = session.get(Organization, inv.organization_id)
    assert org is not None
    session.flush()
    announce_joined(session, org, user, email=user.email, role=inv.role)
    return Accepted(user, org, create_session(session, user.id, user_agent=user_agent, ip=ip))
