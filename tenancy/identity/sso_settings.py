"""An organization's single sign-on settings: the OpenID Connect provider (issuer, client id,
the client secret encrypted at rest), the e-mail domains allowed and the role of new members.
Admins and owners (``sso:manage``) read, set and delete them; each change is audited, never
with the secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy import crypto
from tenancy.audit import record_audit
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.errors import InvalidInput, NotFound
from tenancy.identity import oidc
from tenancy.identity.tables import SsoConfig
from tenancy.principal import Principal

NEW_MEMBER_ROLES = ("viewer", "member", "admin")


def redirect_uri(slug: str) -> str:
    """What the organization registers at its provider."""
    return f"{get_settings().api_url}/v1/auth/sso/{slug}/callback"


def config_of(session: Session, organization_id: str) -> SsoConfig | None:
    return session.scalars(
        select(SsoConfig).where(SsoConfig.organization_id == organization_id)
    ).first()


def read_config(session: Session, principal: Principal) -> SsoConfig:
    principal.require("sso:manage")
    cfg = config_of(session, principal.organization_id)
    if cfg is None:
        raise NotFound("single sign-on is not set up for this organization")
    return cfg


def public_config(cfg: SsoConfig, slug: str) -> dict[str, Any]:
    """Never the client secret: only that one is set."""
    return {
        "issuer": cfg.issuer,
        "clientId": cfg.client_id,
        "clientSecretSet": bool(cfg.client_secret_enc),
        "allowedDomains": list(cfg.allowed_domains or []),
        "defaultRole": cfg.default_role,
        "redirectUri": redirect_uri(slug),
        "loginUrl": f"{get_settings().api_url}/v1/auth/sso/{slug}/login",
        "updatedAt": cfg.updated_at,
    }


def _domains(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > 50:
        raise InvalidInput(
            "allowedDomains must list 1 to 50 e-mail domains (example.com)",
            details=[{"field": "allowedDomains"}],
        )
    out = []
    for d in value:
        d = str(d).strip().lower().lstrip("@") if isinstance(d, str) else ""
        if (
            not d
            or "." not in d
            or len(d) > 253
            or not all(part and all(c.isalnum() or c == "-" for c in part) for part in d.split("."))
        ):
            raise InvalidInput(
                f"allowedDomains: {str(d)[:100]!r} is not a domain",
                details=[{"field": "allowedDomains"}],
            )
        out.append(d)
    return sorted(set(out))


def set_config(
    session: Session,
    principal: Principal,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    allowed_domains: list[str],
    default_role: str,
) -> SsoConfig:
    """Create or replace the settings; the issuer's discovery document is read first, so a
    wrong issuer is refused now rather than at the first sign-in."""
    principal.require("sso:manage")
    if default_role not in NEW_MEMBER_ROLES:
        raise InvalidInput(
            f"defaultRole must be one of {', '.join(NEW_MEMBER_ROLES)}",
            details=[{"field": "defaultRole", "allowed": list(NEW_MEMBER_ROLES)}],
        )
    if not (client_id or "").strip():
        raise InvalidInput("clientId must not be empty", details=[{"field": "clientId"}])
    domains = _domains(allowed_domains)
    oidc.discover(issuer)
    cfg = config_of(session, principal.organization_id)
    if cfg is None:
        if not client_secret:
            raise InvalidInput("clientSecret: field required", details=[{"field": "clientSecret"}])
        cfg = SsoConfig(organization_id=principal.organization_id)
        session.add(cfg)
    cfg.issuer = issuer
    cfg.client_id = client_id.strip()
    if client_secret:
        cfg.client_secret_enc = crypto.encrypt(client_secret)
    cfg.allowed_domains = domains
    cfg.default_role = default_role
    cfg.updated_by = principal.user_id
    cfg.updated_at = now_ms()
    session.flush()
    record_audit(
        session,
        principal,
        "sso.configured",
        "sso",
        cfg.id,
        {
            "issuer": issuer,
            "clientId": cfg.client_id,
            "allowedDomains": domains,
            "defaultRole": default_role,
            "clientSecretChanged": bool(client_secret),
        },
    )
    return cfg


def delete_config(session: Session, principal: Principal) -> None:
    cfg = read_config(session, principal)
    session.delete(cfg)
    record_audit(session, principal, "sso.removed", "sso", cfg.id, {"issuer": cfg.issuer})
