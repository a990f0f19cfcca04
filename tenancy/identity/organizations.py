"""Organizations made by signed-in users: the creator is the owner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from tenancy.audit import record_audit
from tenancy.clock import now_ms
from tenancy.errors import InvalidInput, NotFound, PermissionDenied
from tenancy.identity.members import memberships, session_principal
from tenancy.identity.tables import SsoConfig
from tenancy.keys import forget_cached_principals
from tenancy.models import ApiKey, Invitation, Organization, User, Workflow
from tenancy.orgs import add_member, create_organization
from tenancy.plans import get_plan
from tenancy.principal import Principal
from tenancy.retries import check_retry_policy


def create_organization_for_user(
    session: Session, user: User, *, name: str, slug: str
) -> Organization:
    if not (name or "").strip():
        raise InvalidInput("name must not be empty", details=[{"field": "name"}])
    org = create_organization(session, name=name.strip(), slug=(slug or "").strip(), plan="free")
    org.billing_email = user.email
    add_member(session, organization_id=org.id, user_id=user.id, role="owner")
    principal = session_principal(session, user, org.slug)
    record_audit(
        session, principal, "organization.created", "organization", org.id, {"slug": org.slug}
    )
    return org


def pool_concurrency(org: Organization) -> int:
    return get_plan(org.plan).concurrency


def read_me(session: Session, user: User) -> list[dict[str, Any]]:
    return [
        {
            "id": o.id,
            "slug": o.slug,
            "name": o.name,
            "plan": o.plan,
            "role": m.role,
            "joinedAt": m.joined_at,
        }
        for m, o in memberships(session, user.id)
    ]


SETTABLE = {
    "defaultRetryPolicy": dict,
    "alertEmails": list,
    "requireMfa": bool,
}


def organization_public(org: Organization, role: str | None = None) -> dict[str, Any]:
    settings = dict(org.settings or {})
    settings.setdefault("requireMfa", False)
    out = {
        "id": org.id,
        "slug": org.slug,
        "name": org.name,
        "plan": org.plan,
        "billingEmail": org.billing_email,
        "settings": settings,
        "createdAt": org.created_at,
        "updatedAt": org.updated_at,
    }
    if role:
        out["role"] = role
    return out


def read_current(session: Session, principal: Principal) -> Organization:
    org = session.get(Organization, principal.organization_id)
    if org is None:
        raise NotFound("organization not found")
    return org


def update_current(session: Session, principal: Principal, changes: dict[str, Any]) -> Organization:
    """Name, billing e-mail and settings (default retry policy, alert e-mails, requireMfa)."""
    principal.require("org:write")
    org = read_current(session, principal)
    done: dict[str, Any] = {}
    if changes.get("name") is not None:
        name = str(changes["name"]).strip()
        if not name or len(name) > 200:
            raise InvalidInput("name must be 1 to 200 characters", details=[{"field": "name"}])
        org.name = done["name"] = name
    if "billingEmail" in changes:
        value = changes["billingEmail"]
        if value is not None and ("@" not in str(value) or len(str(value)) > 320):
            raise InvalidInput(
                "billingEmail is not an e-mail address", details=[{"field": "billingEmail"}]
            )
        org.billing_email = done["billingEmail"] = value
    settings = dict(org.settings or {})
    for key, kind in SETTABLE.items():
        if key in changes and changes[key] is not None:
            value = changes[key]
            if not isinstance(value, kind):
                raise InvalidInput(f"{key} must be a {kind.__name__}", details=[{"field": key}])
            if key == "alertEmails" and not all(isinstance(e, str) and "@" in e for e in value):
                raise InvalidInput("alertEmails must be e-mail addresses", details=[{"field": key}])
            if key == "defaultRetryPolicy":
                value = check_retry_policy(value, partial=True)
            settings[key] = done[key] = value
    org.settings = settings
    record_audit(
        session,
        principal,
        "organization.updated",
        "organization",
        org.id,
        {"changed": sorted(done)},
    )
    return org


def delete_organization(
    session: Session, principal: Principal, confirm: str | None
) -> Organization:
    """The owner deletes the organization, naming its slug to confirm. It is kept with its
    audit trail (the last entry: this one) but reachable by no one: its keys are revoked, its
    workflows archived (no trigger starts them), pending invitations and single sign-on end,
    and it leaves every member's list. The slug stays reserved."""
    principal.require("org:delete")
    if not principal.user_id:
        raise PermissionDenied("an organization is deleted by a signed-in owner")
    org = read_current(session, principal)
    if confirm != org.slug:
        raise InvalidInput(
            f"to delete the organization, confirm with its slug ({org.slug})",
            details=[{"field": "confirm", "message": "must equal the organization's slug"}],
        )
    now = now_ms()
    org.deleted_at = now
    session.execute(
        update(ApiKey)
        .where(ApiKey.organization_id == org.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(Workflow)
        .where(Workflow.organization_id == org.id, Workflow.status != "archived")
        .values(status="archived")
    )
    session.execute(
        update(Invitation)
        .where(Invitation.organization_id == org.id, Invitation.status == "pending")
        .values(status="revoked")
    )
    session.execute(delete(SsoConfig).where(SsoConfig.organization_id == org.id))
    record_audit(
        session, principal, "organization.deleted", "organization", org.id, {"slug": org.slug}
    )
    forget_cached_principals()
    return org
