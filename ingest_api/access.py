"""Who may call each operation: one rule per route, stated once, here.

The service layer enforces the rules (``principal.require``, ``require_admin``, sessions);
this table declares them for the API: the OpenAPI document shows each operation's rule
(``x-orbin-access``) and ``tests/unit/test_role_matrix.py`` walks every route with every
kind of caller and checks the answer against the rule and the role matrix
(``tenancy.principal.MATRIX``). A route without a rule fails that test.

A rule is a permission of the matrix (``runs:read``: the caller's role or key holds it; ``a|b``:
either), or:
"""

from __future__ import annotations

from typing import Any

from tenancy.principal import MATRIX

PUBLIC = "public"  # anyone: signing up and in, health, SSO's round trip, one-time links
SIGNATURE = "signature"  # authenticated by its own signature (webhooks), not a credential
SESSION = "session"  # a signed-in user's session, no organization needed (``/v1/me``)
USER = "user"  # a member's own session in the organization (their notifications)
ANY = "any"  # any credential of the organization: a key of any type or a member
ADMIN = "admin"  # organization secrets: a secret key, or an admin or owner
SPECIAL = frozenset({PUBLIC, SIGNATURE, SESSION, USER, ANY, ADMIN})

ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/livez"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    # events and dead letters
    ("POST", "/v1/events"): "events:write",
    ("POST", "/api/webhooks/ingest"): "events:write",
    ("POST", "/v1/events/batch"): "events:write",
    ("GET", "/v1/events"): "events:read",
    ("GET", "/v1/events/{event_id}"): "events:read",
    ("POST", "/v1/events/replay"): "runs:write",
    ("POST", "/v1/events/{event_id}/replay"): "runs:write",
    ("GET", "/v1/dead-letters"): "events:read",
    ("POST", "/v1/dead-letters/{event_id}/retry"): "runs:write",
    ("POST", "/v1/dead-letters/{event_id}/discard"): "runs:write",
    ("GET", "/v1/stream"): "events:read|runs:read",
    # runs
    ("GET", "/v1/runs"): "runs:read",
    ("GET", "/v1/runs/{run_id}"): "runs:read",
    ("GET", "/v1/runs/{run_id}/artifacts"): "runs:read",
    ("GET", "/v1/runs/{run_id}/steps/{step_id}/output"): "runs:read",
    ("POST", "/v1/runs/{run_id}/cancel"): "runs:write",
    ("POST", "/v1/runs/{run_id}/replay"): "runs:write",
    ("POST", "/v1/runs/{run_id}/resume"): "runs:write",
    # workflows, their triggers and webhooks
    ("GET", "/v1/workflows/schema"): PUBLIC,
    ("POST", "/v1/workflows"): "workflows:write",
    ("GET", "/v1/workflows"): "workflows:read",
    ("GET", "/v1/workflows/{workflow_id}"): "workflows:read",
    ("PUT", "/v1/workflows/{workflow_id}"): "workflows:write",
    ("DELETE", "/v1/workflows/{workflow_id}"): "workflows:write",
    ("POST", "/v1/workflows/{workflow_id}/activate"): "workflows:write",
    ("POST", "/v1/workflows/{workflow_id}/pause"): "workflows:write",
    ("GET", "/v1/workflows/{workflow_id}/versions"): "workflows:read",
    ("GET", "/v1/workflows/{workflow_id}/versions/{version}"): "workflows:read",
    ("GET", "/v1/workflows/{workflow_id}/diff"): "workflows:read",
    ("POST", "/v1/workflows/{workflow_id}/rollback"): "workflows:write",
    ("POST", "/v1/workflows/{workflow_id}/runs"): "runs:write",
    ("GET", "/v1/workflows/{workflow_id}/schedule"): "workflows:read",
    ("POST", "/v1/hooks/{workflow_id}"): SIGNATURE,
    ("GET", "/v1/workflows/{workflow_id}/webhook"): "workflows:write",
    ("PUT", "/v1/workflows/{workflow_id}/webhook"): "workflows:write",
    ("POST", "/v1/webhook-secret/rotate"): ADMIN,
    # accounts and sessions
    ("POST", "/v1/auth/signup"): PUBLIC,
    ("POST", "/v1/auth/signin"): PUBLIC,
    ("POST", "/v1/auth/signout"): SESSION,
    ("POST", "/v1/auth/password"): SESSION,
    ("POST", "/v1/auth/password-reset"): PUBLIC,
    ("POST", "/v1/auth/password-reset/confirm"): PUBLIC,
    ("POST", "/v1/auth/mfa/enroll"): SESSION,
    ("POST", "/v1/auth/mfa/verify"): SESSION,
    ("POST", "/v1/auth/mfa/disable"): SESSION,
    ("GET", "/v1/me"): SESSION,
    ("GET", "/v1/me/notification-preferences"): SESSION,
    ("PUT", "/v1/me/notification-preferences"): SESSION,
    ("GET", "/v1/auth/sso/{slug}/login"): PUBLIC,
    ("GET", "/v1/auth/sso/{slug}/callback"): PUBLIC,
    # organizations, members, invitations
    ("GET", "/v1/orgs"): SESSION,
    ("POST", "/v1/orgs"): SESSION,
    ("GET", "/v1/orgs/current"): ANY,
    ("PATCH", "/v1/orgs/current"): "org:write",
    ("DELETE", "/v1/orgs/current"): "org:delete",
    ("GET", "/v1/orgs/current/sso"): "sso:manage",
    ("PUT", "/v1/orgs/current/sso"): "sso:manage",
    ("DELETE", "/v1/orgs/current/sso"): "sso:manage",
    ("POST", "/v1/orgs/current/transfer-ownership"): "org:transfer",
    ("GET", "/v1/members"): "members:read",
    ("PATCH", "/v1/members/{user_id}"): "members:write",
    ("DELETE", "/v1/members/{user_id}"): "members:write",
    ("POST", "/v1/invitations"): "members:write",
    ("GET", "/v1/invitations"): "members:read",
    ("POST", "/v1/invitations/{invitation_id}/resend"): "members:write",
    ("DELETE", "/v1/invitations/{invitation_id}"): "members:write",
    ("POST", "/v1/invitations/accept"): PUBLIC,
    # keys, audit, notifications
    ("POST", "/v1/api-keys"): "keys:write",
    ("GET", "/v1/api-keys"): "keys:read",
    ("POST", "/v1/api-keys/{key_id}/rotate"): "keys:write",
    ("DELETE", "/v1/api-keys/{key_id}"): "keys:write",
    ("GET", "/v1/audit-logs"): "audit:read",
    ("GET", "/v1/audit-logs/export"): "audit:read",
    ("GET", "/v1/notifications"): USER,
    ("POST", "/v1/notifications/{notification_id}/read"): USER,
    ("POST", "/v1/notifications/read-all"): USER,
    # AI
    ("GET", "/v1/ai/status"): ANY,
    ("POST", "/v1/ai/workflows/generate"): "ai:use",
    ("POST", "/v1/ai/workflows/{workflow_id}/suggest"): "ai:use",
    ("POST", "/v1/ai/runs/{run_id}/diagnose"): "ai:use",
    ("POST", "/v1/ai/workflows/{workflow_id}/optimize"): "ai:use",
    ("GET", "/v1/ai/usage"): "ai:use",
    # integrations
    ("GET", "/v1/integrations/oauth/{provider}/start"): ADMIN,
    ("GET", "/v1/integrations/oauth/{provider}/callback"): PUBLIC,
    ("POST", "/v1/integrations"): ADMIN,
    ("GET", "/v1/integrations"): "workflows:read",
    ("GET", "/v1/integrations/{integration_id}"): "workflows:read",
    ("PATCH", "/v1/integrations/{integration_id}"): ADMIN,
    ("DELETE", "/v1/integrations/{integration_id}"): ADMIN,
    ("POST", "/v1/integrations/{integration_id}/test"): ADMIN,
    # billing
    ("GET", "/v1/billing"): "billing:read",
    ("GET", "/v1/usage"): "billing:read",
    ("POST", "/v1/billing/checkout"): "billing:write",
    ("POST", "/v1/billing/portal"): "billing:write",
    ("GET", "/v1/billing/invoices"): "billing:read",
    ("POST", "/api/webhooks/stripe"): SIGNATURE,
}


def rule_of(method: str, path: str) -> str | None:
    return ACCESS.get((method.upper(), path))


def check_table() -> None:
    """Every rule names a permission of the matrix or one of the special rules."""
    unknown = {
        p
        for rule in ACCESS.values()
        if rule not in SPECIAL
        for p in rule.split("|")
        if p not in MATRIX
    }
    if unknown:
        raise ValueError(f"rules naming no permission of the matrix: {sorted(unknown)}")


def document(schema: dict[str, Any]) -> None:
    """Each operation's rule in the OpenAPI document (``x-orbin-access``), in place."""
    check_table()
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            if isinstance(op, dict) and "responses" in op:
                rule = rule_of(method, path)
                if rule is not None:
                    op["x-orbin-access"] = rule
