"""Organization administration from a signed-in user: general settings; member roles and
removal are identity's rules (``tenancy.identity.members``).

Each use case checks the principal's role here, in the service layer (the dashboard only hides
what a role may not do), and records an audit entry. The caller owns the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tenancy.audit import record_audit
from tenancy.errors import InvalidInput, NotFound
from tenancy.identity import members
from tenancy.models import Organization
from tenancy.principal import Principal, require_admin
from tenancy.retries import check_retry_policy

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class OrgSettings:
    id: str
    name: str
    slug: str
    plan: str
    billing_email: str | None
    default_retry_policy: dict[str, Any]
    alert_emails: list[str]
    require_mfa: bool


def read_org_settings(session: Session, *, organization_id: str) -> OrgSettings:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound("organization not found")
    s = org.settings or {}
    return OrgSettings(
        id=org.id,
        name=org.name,
        slug=org.slug,
        plan=org.plan,
        billing_email=org.billing_email,
        default_retry_policy=dict(s.get("defaultRetryPolicy") or {}),
        alert_emails=list(s.get("alertEmails") or []),
        require_mfa=bool(s.get("requireMfa", False)),
    )


def _email(value: str, field: str) -> str:
    value = value.strip().lower()
    if not EMAIL_RE.match(value) or len(value) > 320:
        raise InvalidInput(f"{field}: {value!r} is not an email address", details=[{"path": field}])
    return value


def update_org_settings(
    session: Session,
    principal: Principal,
    *,
    name: str,
    billing_email: str | None,
    default_retry_policy: dict[str, Any],
    alert_emails: list[str],
    require_mfa: bool,
) -> OrgSettings:
    require_admin(principal)
    org = session.get(Organization, principal.organization_id)
    if org is None:
        raise NotFound("organization not found")
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("name must have 1 to 200 characters", details=[{"path": "name"}])
    org.name = name
    org.billing_email = _email(billing_email, "billingEmail") if billing_email else None
    org.settings = {
        **(org.settings or {}),
        "defaultRetryPolicy": check_retry_policy(default_retry_policy),
        "alertEmails": sorted({_email(e, "alertEmails") for e in alert_emails if e.strip()}),
        "requireMfa": bool(require_mfa),
    }
    session.flush()
    record_audit(session, principal, "organization.updated", "organization", org.id)
    return read_org_settings(session, organization_id=org.id)


def change_member_role(session: Session, principal: Principal, *, user_id: str, role: str) -> None:
    members.change_member_role(session, principal, user_id, role)


def remove_member(session: Session, principal: Principal, *, user_id: str) -> None:
    members.remove_member(session, principal, user_id)
