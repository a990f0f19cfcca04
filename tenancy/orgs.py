"""Organizations, users and memberships."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy.db import flush_unique
from tenancy.errors import InvalidInput, NotFound
from tenancy.identity.members import principal_of
from tenancy.identity.passwords import hash_password
from tenancy.models import Organization, OrganizationMember, User
from tenancy.plan_limits import check_seat_for_member
from tenancy.plans import require_plan
from tenancy.principal import ROLE_RANK, Principal
from tenancy.retries import DEFAULT_RETRY_POLICY
from tenancy.scoping import first_or_not_found

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")

DEFAULT_SETTINGS = {
    "defaultRetryPolicy": dict(DEFAULT_RETRY_POLICY),
    "alertEmails": [],
}


# Prefect work pool types an organization's code flows may target (its "code pool").
CODE_POOL_TYPES = ("process", "kubernetes", "ecs")


def work_pool_name(slug: str) -> str:
    return f"orbin-{slug}"


def code_pool_name(slug: str) -> str:
    """The pool of an organization's code flows when it has one; the underscore keeps it apart
    from every organization's own pool (``orbin-<slug>``, slugs have none)."""
    return f"orbin-{slug}_code"


def code_pool_type(org: Organization) -> str | None:
    return (org.settings or {}).get("codePoolType")


def create_organization(
    session: Session,
    *,
    name: str,
    slug: str,
    plan: str = "free",
    code_pool_type: str | None = None,
) -> Organization:
    if not SLUG_RE.match(slug):
        raise InvalidInput("slug must be lowercase letters, digits and dashes (max 64)")
    if code_pool_type is not None and code_pool_type not in CODE_POOL_TYPES:
        raise InvalidInput(
            f"code pool type must be one of {', '.join(CODE_POOL_TYPES)}, not {code_pool_type!r}"
        )
    settings: dict[str, object] = dict(DEFAULT_SETTINGS)
    if code_pool_type is not None:
        settings["codePoolType"] = code_pool_type
    org = Organization(
        name=name,
        slug=slug,
        plan=plan,
        usage_limit_executions=require_plan(plan).monthly_executions,
        settings=settings,
    )
    session.add(org)
    flush_unique(session, f"an organization with slug {slug!r} exists")
    return org


def read_organization_by_slug(session: Session, slug: str) -> Organization:
    stmt = select(Organization).where(Organization.slug == slug)
    return first_or_not_found(session, stmt, f"organization {slug!r} not found")


def read_organization(session: Session, organization_id: str) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id} not found")
    return org


def find_organization(session: Session, organization_id: str) -> Organization | None:
    return session.get(Organization, organization_id)


def read_organizations(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.created_at)))


def create_user(session: Session, *, email: str, name: str, password: str | None) -> User:
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput("email is not valid")
    # None: an account that signs in by single sign-on (or not yet: an operator sets it).
    password_hash = hash_password(password) if password is not None else None
    user = User(email=email, name=name, password_hash=password_hash)
    session.add(user)
    flush_unique(session, f"a user with email {email} exists")
    return user


def add_member(
    session: Session,
    *,
    organization_id: str,
    user_id: str,
    role: str,
    invited_by: str | None = None,
) -> OrganizationMember:
    if role not in ROLE_RANK:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLE_RANK)}",
            details=[{"field": "role", "allowed": list(ROLE_RANK)}],
        )
    check_seat_for_member(session, organization_id)
    member = OrganizationMember(
        organization_id=organization_id, user_id=user_id, role=role, invited_by=invited_by
    )
    session.add(member)
    flush_unique(session, "the user is a member of this organization already")
    return member


def read_memberships(
    session: Session, *, user_id: str
) -> list[tuple[OrganizationMember, Organization]]:
    rows = session.execute(
        select(OrganizationMember, Organization)
        .join(Organization, Organization.id == OrganizationMember.organization_id)
        .where(OrganizationMember.user_id == user_id, Organization.deleted_at.is_(None))
        .order_by(Organization.name)
    )
    return [(m, o) for m, o in rows]


def user_principal(session: Session, *, user_id: str, organization_id: str) -> Principal:
    """The rights of a signed-in user inside one organization; not a member -> NotFound;
    an organization requiring MFA refuses a member without it (PermissionDenied)."""
    row = session.execute(
        select(OrganizationMember, Organization, User)
        .join(Organization, Organization.id == OrganizationMember.organization_id)
        .join(User, User.id == OrganizationMember.user_id)
        .where(
            OrganizationMember.user_id == user_id,
            OrganizationMember.organization_id == organization_id,
            Organization.deleted_at.is_(None),
        )
    ).first()
    if row is None:
        raise NotFound("organization not found")
    member, org, user = row
    return principal_of(member, org, user)


def read_user(session: Session, *, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user
