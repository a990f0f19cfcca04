"""Organization screens: settings, members, integrations, billing and the audit log."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from streamlit_app.services.base import Actor, Outcome, act, read
from tenancy import org_admin, webhook_secrets
from tenancy import org_queries as q
from tenancy.audit import record_audit
from tenancy.plans import Plan, load_plans
from tenancy.principal import ROLE_RANK, require_admin

OrgSettings = org_admin.OrgSettings
MemberRow = q.MemberRow
AuditRow = q.AuditRow
ROLES = tuple(sorted(ROLE_RANK, key=ROLE_RANK.__getitem__, reverse=True))


# --- settings --------------------------------------------------------------------------


def settings(organization_id: str) -> OrgSettings:
    return read(lambda s: org_admin.read_org_settings(s, organization_id=organization_id))


def update_settings(actor: Actor, **values: Any) -> Outcome:
    return act(actor, "Settings saved.", lambda s, p: org_admin.update_org_settings(s, p, **values))


def rotate_webhook_secret(actor: Actor, grace_hours: int) -> Outcome:
    def go(session, principal):  # type: ignore[no-untyped-def]
        require_admin(principal)
        new, until = webhook_secrets.rotate_root_secret(
            session, organization_id=principal.organization_id, grace_ms=grace_hours * 3_600_000
        )
        record_audit(
            session, principal, "webhook_secret.rotated", "organization", principal.organization_id
        )
        return new, until

    return act(actor, "Webhook secret rotated. Copy the new root secret now.", go)


# --- members ---------------------------------------------------------------------------


def members(organization_id: str) -> list[MemberRow]:
    return read(lambda s: q.read_members(s, organization_id=organization_id))


def change_role(actor: Actor, user_id: str, role: str) -> Outcome:
    return act(
        actor,
        f"Role changed to {role}.",
        lambda s, p: org_admin.change_member_role(s, p, user_id=user_id, role=role),
    )


def remove_member(actor: Actor, user_id: str) -> Outcome:
    return act(
        actor, "Member removed.", lambda s, p: org_admin.remove_member(s, p, user_id=user_id)
    )


# --- billing ---------------------------------------------------------------------------


def plans() -> list[Plan]:
    """The plans in force (``ORBIN_PLANS_FILE`` or the built-in ones), smallest first."""
    return sorted(load_plans().values(), key=lambda p: p.monthly_executions)


# --- audit -----------------------------------------------------------------------------


def audit_log(organization_id: str, **filters: Any) -> list[AuditRow]:
    return read(lambda s: q.search_audit_logs(s, organization_id=organization_id, **filters))


def audit_actions(organization_id: str) -> list[str]:
    return read(lambda s: q.read_audit_actions(s, organization_id=organization_id))


def audit_csv(rows: list[AuditRow]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "time_ms",
            "actor",
            "actor_type",
            "action",
            "resource_type",
            "resource_id",
            "ip",
            "metadata",
        ]
    )
    for r in rows:
        meta = json.dumps(r.metadata, sort_keys=True) if r.metadata is not None else ""
        cells = [
            r.created_at,
            r.actor,
            r.actor_type,
            r.action,
            r.resource_type,
            r.resource_id or "",
            r.ip_address or "",
            meta,
        ]
        # A cell starting with = + - @ is a formula to a spreadsheet: keep it text.
        w.writerow([f"'{c}" if isinstance(c, str) and c[:1] in "=+-@" else c for c in cells])
    return out.getvalue()
