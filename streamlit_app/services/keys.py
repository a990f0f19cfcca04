"""The API keys screen: create (shown once), list masked, rotate, revoke. Admins and owners
only; the service layer refuses anyone else."""

from __future__ import annotations

from dataclasses import dataclass

from streamlit_app.services.base import Actor, Outcome, act, read
from tenancy import keys as keys_repo
from tenancy import org_queries as q
from tenancy.audit import record_audit
from tenancy.principal import PERMISSIONS, require_admin

ApiKeyRow = q.ApiKeyRow
KEY_TYPES = tuple(keys_repo.KEY_TYPES)


@dataclass(frozen=True)
class NewKey:
    id: str
    plaintext: str


def list_keys(organization_id: str) -> list[ApiKeyRow]:
    return read(lambda s: q.read_api_key_list(s, organization_id=organization_id))


def create(
    actor: Actor,
    *,
    name: str,
    type: str,
    permissions: list[str] | None,
    expires_at: int | None,
) -> Outcome:
    def go(session, principal):  # type: ignore[no-untyped-def]
        require_admin(principal)
        created = keys_repo.create_api_key(
            session,
            organization_id=principal.organization_id,
            name=name.strip() or "unnamed",
            type=type,
            permissions=permissions if type == "restricted" else None,
            expires_at=expires_at,
            created_by=principal.user_id,
        )
        record_audit(
            session, principal, "api_key.created", "api_key", created.key.id, {"type": type}
        )
        return NewKey(created.key.id, created.plaintext)

    return act(actor, "Key created. Copy it now: it is shown only once.", go)


def revoke(actor: Actor, key_id: str) -> Outcome:
    def go(session, principal):  # type: ignore[no-untyped-def]
        require_admin(principal)
        keys_repo.revoke_api_key(session, organization_id=principal.organization_id, key_id=key_id)
        record_audit(session, principal, "api_key.revoked", "api_key", key_id)
        return key_id

    return act(actor, "Key revoked.", go)


def rotate(actor: Actor, key_id: str) -> Outcome:
    """A new key with the same name, type, permissions and expiry; the old one is revoked."""

    def go(session, principal):  # type: ignore[no-untyped-def]
        require_admin(principal)
        org = principal.organization_id
        old = next(
            (k for k in keys_repo.read_api_keys(session, organization_id=org) if k.id == key_id),
            None,
        )
        if old is None or old.revoked_at is not None:
            from tenancy.errors import Conflict

            raise Conflict("only a live key can be rotated")
        created = keys_repo.create_api_key(
            session,
            organization_id=org,
            name=old.name,
            type=old.type,
            permissions=old.permissions,
            expires_at=old.expires_at,
            created_by=principal.user_id,
        )
        keys_repo.revoke_api_key(session, organization_id=org, key_id=key_id)
        record_audit(
            session, principal, "api_key.rotated", "api_key", created.key.id, {"from": key_id}
        )
        return NewKey(created.key.id, created.plaintext)

    return act(actor, "Key rotated: the old key no longer works. Copy the new one now.", go)


ALL_PERMISSIONS = PERMISSIONS
