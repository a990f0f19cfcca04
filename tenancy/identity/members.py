"""Members of an organization and their roles; the principal of a signed-in user."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenancy.audit import record_audit
from tenancy.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tenancy.identity.notifications import notify, notify_cause
from tenancy.models import Organization, OrganizationMember, User
from tenancy.principal import ROLE_PERMISSIONS, ROLE_RANK, ROLES, Principal, system_principal


def _role(role: str) -> str:
    if role not in ROLE_RANK:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}",
            details=[{"field": "role", "allowed": list(ROLES)}],
        )
    return role


def memberships(session: Session, user_id: str) -> list[tuple[OrganizationMember, Organization]]:
    rows = session.execute(
        select(OrganizationMember, Organization)
        .join(Organization, Organization.id == OrganizationMember.organization_id)
        .where(OrganizationMember.user_id == user_id, Organization.deleted_at.is_(None))
        .order_by(OrganizationMember.joined_at, Organization.slug)
    )
    return [(m, o) for m, o in rows]


def mfa_refusal(org: Organization, user: User) -> PermissionDenied | None:
    """An organization with ``requireMfa`` refuses a member without MFA until they enrol."""
    if (org.settings or {}).get("requireMfa") and not user.mfa_enabled_at:
        return PermissionDenied(
            f"{org.slug} requires MFA: turn it on first (POST /v1/auth/mfa/enroll)",
            code="mfa_enrollment_required",
        )
    return None


def principal_of(member: OrganizationMember, org: Organization, user: User) -> Principal:
    refusal = mfa_refusal(org, user)
    if refusal is not None:
        raise refusal
    return Principal(
        organization_id=org.id,
        organization_slug=org.slug,
        plan=org.plan,
        actor_type="user",
        permissions=frozenset(ROLE_PERMISSIONS[member.role]),
        user_id=user.id,
        role=member.role,
    )


def session_principal(
    session: Session,
    user: User,
    organization_slug: str | None,
    *,
    bound_to: str | None = None,
) -> Principal:
    """The rights of a signed-in user in one organization (by slug; their first if none).
    An organization they are not a member of does not exist for them (NotFound), nor does
    any but ``bound_to`` for a session bound to one organization (single sign-on)."""
    mine = memberships(session, user.id)
    if bound_to:
        mine = [(m, o) for m, o in mine if o.id == bound_to]
    if organization_slug:
        found = [(m, o) for m, o in mine if o.slug == organization_slug]
    else:
        found = mine[:1]
    if not found:
        if organization_slug:
            raise NotFound(f"organization {organization_slug!r} not found")
        raise NotFound("you are not a member of any organization: create one (POST /v1/orgs)")
    member, org = found[0]
    return principal_of(member, org, user)


def read_members(session: Session, principal: Principal) -> list[tuple[OrganizationMember, User]]:
    principal.require("members:read")
    rows = session.execute(
        select(OrganizationMember, User)
        .join(User, User.id == OrganizationMember.user_id)
        .where(OrganizationMember.organization_id == principal.organization_id)
        .order_by(OrganizationMember.joined_at, User.email)
    )
    return [(m, u) for m, u in rows]


def _member(session: Session, principal: Principal, user_id: str) -> OrganizationMember:
    member = session.scalars(
        select(OrganizationMember).where(
            OrganizationMember.organization_id == principal.organization_id,
            OrganizationMember.user_id == user_id,
        )
    ).first()
    if member is None:
        raise NotFound(f"member {user_id} not found")
    return member


def _owners(session: Session, organization_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(OrganizationMember)
            .where(
                OrganizationMember.organization_id == organization_id,
                OrganizationMember.role == "owner",
            )
        )
        or 0
    )


def _caller_rank(principal: Principal) -> int:
    # The platform (an operator's CLI) acts as an owner; a secret API key administers like an
    # admin, never like an owner.
    if principal.actor_type == "system":
        return ROLE_RANK["owner"]
    return ROLE_RANK.get(principal.role or "", 0) if principal.user_id else ROLE_RANK["admin"]


def change_member_role(
    session: Session, principal: Principal, user_id: str, role: str
) -> OrganizationMember:
    principal.require("members:write")
    _role(role)
    member = _member(session, principal, user_id)
    rank = _caller_rank(principal)
    if (member.role == "owner" or role == "owner") and rank < ROLE_RANK["owner"]:
        raise PermissionDenied("only an owner may make or unmake owners")
    if member.role == "owner" and role != "owner" and _owners(session, member.organization_id) < 2:
        raise Conflict("the organization needs an owner: make someone else owner first")
    if member.role == role:
        return member  # nothing changed: nothing to record or tell
    before = member.role
    member.role = role
    record_audit(
        session, principal, "member.role_changed", "member", user_id, {"from": before, "to": role}
    )
    notify(
        session,
        organization_id=member.organization_id,
        user_ids=[user_id],
        type="member",
        title="Your role changed",
        message=f"You are now {role} of {principal.organization_slug}.",
    )
    return member


def remove_member(session: Session, principal: Principal, user_id: str) -> None:
    leaving = principal.user_id == user_id
    if not leaving:
        principal.require("members:write")
    member = _member(session, principal, user_id)
    if member.role == "owner":
        if not leaving and _caller_rank(principal) < ROLE_RANK["owner"]:
            raise PermissionDenied("only an owner may remove an owner")
        if _owners(session, member.organization_id) < 2:
            raise Conflict(
                "the last owner cannot leave: transfer ownership or delete the organization"
            )
    session.delete(member)
    record_audit(
        session,
        principal,
        "member.left" if leaving else "member.removed",
        "member",
        user_id,
        {"role": member.role},
    )


def transfer_ownership(session: Session, principal: Principal, user_id: str) -> None:
    principal.require("org:transfer")
    if not principal.user_id:
        raise PermissionDenied("ownership is transferred by a signed-in owner")
    if user_id == principal.user_id:
        raise InvalidInput("you are the owner already")
    target = _member(session, principal, user_id)
    me = _member(session, principal, principal.user_id)
    target.role = "owner"
    me.role = "admin"
    record_audit(session, principal, "organization.ownership_transferred", "member", user_id)


def announce_joined(
    session: Session, org: Organization, user: User, *, email: str, role: str, via: str = ""
) -> None:
    """A new member's audit entry and its notification to the organization; ``via`` names the
    way in other than an invitation (``sso``)."""
    meta = {"email": email, "role": role} | ({"via": via} if via else {})
    record_audit(
        session,
        system_principal(org.id, org.slug, org.plan),
        "member.joined",
        "member",
        user.id,
        meta,
    )
    how = f" ({via.upper()})" if via else ""
    notify_cause(
        session,
        organization_id=org.id,
        cause="member_joined",
        title="A member joined",
        message=f"{user.name} <{email}> joined {org.name} as {role}{how}.",
        link="/members",
    )
