"""API keys managed by admins (or a secret key): created, listed, rotated, revoked, audited."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tenancy import keys
from tenancy.audit import record_audit
from tenancy.models import ApiKey
from tenancy.principal import Principal


def _meta(key: ApiKey) -> dict[str, str]:
    return {"name": key.name, "type": key.type, "key": f"{key.key_prefix}****{key.last_four_chars}"}


def create_key(
    session: Session,
    principal: Principal,
    *,
    name: str,
    type: str,
    permissions: list[str] | None = None,
    expires_at: int | None = None,
) -> keys.CreatedKey:
    principal.require("keys:write")
    created = keys.create_api_key(
        session,
        organization_id=principal.organization_id,
        name=name,
        type=type,
        permissions=permissions,
        expires_at=expires_at,
        created_by=principal.user_id,
    )
    record_audit(
        session, principal, "api_key.created", "api_key", created.key.id, _meta(created.key)
    )
    return created


def read_keys(session: Session, principal: Principal) -> list[ApiKey]:
    principal.require("keys:read")
    return keys.read_api_keys(session, organization_id=principal.organization_id)


def rotate_key(
    session: Session, principal: Principal, key_id: str, *, grace_seconds: int
) -> keys.CreatedKey:
    principal.require("keys:write")
    created = keys.rotate_api_key(
        session,
        organization_id=principal.organization_id,
        key_id=key_id,
        grace_seconds=grace_seconds,
        created_by=principal.user_id,
    )
    record_audit(
        session,
        principal,
        "api_key.rotated",
        "api_key",
        key_id,
        {**_meta(created.key), "newKeyId": created.key.id, "graceSeconds": grace_seconds},
    )
    return created


def revoke_key(session: Session, principal: Principal, key_id: str) -> ApiKey:
    principal.require("keys:write")
    key = keys.revoke_api_key(session, organization_id=principal.organization_id, key_id=key_id)
    record_audit(session, principal, "api_key.revoked", "api_key", key_id, _meta(key))
    return key
