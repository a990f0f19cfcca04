"""API keys: the full key is in the creation (and rotation) answer only; stored as a hash."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ingest_api.deps import CurrentPrincipal, SessionDep
from tenancy.actors import actor_ref
from tenancy.clock import now_ms, parse_instant
from tenancy.identity import api_keys
from tenancy.keys import KeyType
from tenancy.principal import Permission

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    type: KeyType = "secret"
    permissions: list[Permission] | None = Field(default=None, description="restricted keys only")
    expiresAt: int | str | None = Field(
        default=None, description="ms since the epoch, or ISO 8601 (2027-01-01T00:00:00Z)"
    )


class RotateIn(BaseModel):
    graceSeconds: int = Field(
        default=86_400, ge=0, le=7 * 86_400, description="how long the old key keeps working"
    )


def key_public(k: Any) -> dict[str, Any]:
    now = now_ms()
    if k.revoked_at is not None:
        status = "revoked"
    elif k.expires_at is not None and k.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "id": k.id,
        "name": k.name,
        "type": k.type,
        "prefix": k.key_prefix,
        "lastFour": k.last_four_chars,
        "maskedKey": f"{k.key_prefix}****{k.last_four_chars}",
        "permissions": k.permissions,
        "status": status,
        "lastUsedAt": k.last_used_at,
        "expiresAt": k.expires_at,
        "createdBy": actor_ref(k.created_by, None),
        "createdAt": k.created_at,
        "revokedAt": k.revoked_at,
    }


@router.post("", status_code=201)
def create_key(body: KeyIn, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Create a key; ``key`` is shown in this answer only."""
    created = api_keys.create_key(
        session,
        principal,
        name=body.name,
        type=body.type,
        permissions=body.permissions,
        expires_at=parse_instant(body.expiresAt, field="expiresAt"),
    )
    return {**key_public(created.key), "key": created.plaintext}


@router.get("")
def list_keys(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    rows = api_keys.read_keys(session, principal)
    return {"data": [key_public(k) for k in rows], "nextCursor": None, "hasMore": False}


@router.post("/{key_id}/rotate", status_code=201)
def rotate_key(
    key_id: str, body: RotateIn, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """A new key in this answer; the old one keeps working for ``graceSeconds``."""
    created = api_keys.rotate_key(session, principal, key_id, grace_seconds=body.graceSeconds)
    return {**key_public(created.key), "key": created.plaintext, "replaces": key_id}


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    api_keys.revoke_key(session, principal, key_id)
    return Response(status_code=204)
