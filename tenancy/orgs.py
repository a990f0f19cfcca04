"""Organizations, users and memberships."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenancy.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from tenancy.models import Organization, OrganizationMember, User
from tenancy.plans import get_plan
from tenancy.principal import ROLE_PERMISSIONS, ROLE_RANK, Principal

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_hasher = PasswordHasher()

DEFAULT_SETTINGS = {
    "defaultRetryPolicy": {
        "maxAttempts": 3,
        "backoffCoefficient": 2,
        "initialInterval": 1000,
        "maxInterval": 60_000,
    },
    "alertEmails": [],
}


def work_pool_name(slug: str) -> str:
    return f"orbin-{slug}"


def create_organization(
    session: Session, *, name: str, slug: str, plan: str = "free"
) -> Organization:
    if not SLUG_RE.match(slug):
        raise InvalidInput("slug must be lowercase letters, digits and dashes (max 64)")
    org = Organization(
        name=name,
        slug=slug,
        plan=plan,
        usage_limit_executions=get_plan(plan).monthly_executions,
        settings=dict(DEFAULT_SETTINGS),
    )
    session.add(org)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an organization with slug {slug!r} exists") from exc
    return org


def read_organization_by_slug(session: Session, slug: str) -> Organization:
    org = session.scalars(select(Organization).where(Organization.slug == slug)).first()
    if org is None:
        raise NotFound(f"organization {slug!r} not found")
    return org


def read_organization(session: Session, organization_id: str) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id} not found")
    return org


def read_organizations(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.created_at)))


def create_user(session: Session, *, email: str, name: str, password: str | None) -> User:
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput("email is not valid")
    if password is not None and len(password) < 8:
        raise InvalidInput("password must have at least 8 characters")
    user = User(email=email, name=name, password_hash=_hasher.hash(password) if password else None)
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user with email {email} exists") from exc
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
        raise InvalidInput(f"role must be one of {', '.join(ROLE_RANK)}")
    member = OrganizationMember(
        organization_id=organization_id, user_id=user_id, role=role, invited_by=invited_by
    )
    session.add(member)
    session.flush()
    return member


def authenticate_user(session: Session, *, email: str, password: str) -> User:
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    try:
        if user is None or not user.password_hash:
            raise VerificationError()
        _hasher.verify(user.password_hash, password)
    except VerificationError as exc:
        raise Unauthenticated("wrong email or password") from exc
    return user


def read_memberships(
    session: Session, *, user_id: str
) -> list[tuple[OrganizationMember, Organization]]:
    rows = session.execute(
        select(OrganizationMember, Organization)
        .join(Organization, Organization.id == OrganizationMember.organization_id)
        .where(OrganizationMember.user_id == user_id)
        .order_by(Organization.name)
    )
    return [(m, o) for m, o in rows]


def user_principal(session: Session, *, user_id: str, organization_id: str) -> Principal:
    """The rights of a signed-in user inside one organization; not a member -> NotFound."""
    row = session.execute(
        select(OrganizationMember, Organization)
        .join(Organization, Organization.id == OrganizationMember.organization_id)
        .where(
            OrganizationMember.user_id == user_id,
            OrganizationMember.organization_id == organization_id,
        )
    ).first()
    if row is None:
        raise NotFound("organization not found")
    member, org = row
    return Principal(
        organization_id=org.id,
        organization_slug=org.slug,
        plan=org.plan,
        actor_type="user",
        permissions=frozenset(ROLE_PERMISSIONS[member.role]),
        user_id=user_id,
        role=member.role,
    )


def read_user(session: Session, *, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user
