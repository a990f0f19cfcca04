"""API keys: shown once, stored as SHA-256 hashes, revocable, with expiry and last use."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.errors import InvalidInput, Unauthenticated
from tenancy.models import ApiKey, Organization
from tenancy.principal import ALL_PERMISSIONS, Principal
from tenancy.scoping import get_scoped, scoped

KeyType = Literal["secret", "publishable", "restricted"]
KEY_TYPES = {"publishable": "pk", "secret": "sk", "restricted": "rk"}
_LAST_USED_GRANULARITY_MS = 60_000
_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    plaintext: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_key(
    session: Session,
    *,
    organization_id: str,
    name: str,
    type: str,
    permissions: list[str] | None = None,
    expires_at: int | None = None,
    created_by: str | None = None,
) -> CreatedKey:
    if type not in KEY_TYPES:
        raise InvalidInput(
            f"unknown key type {type!r}; one of {', '.join(KEY_TYPES)}",
            details=[{"field": "type", "allowed": list(KEY_TYPES)}],
        )
    if type == "restricted":
        unknown = sorted(set(permissions or []) - set(ALL_PERMISSIONS))
        if not permissions or unknown:
            raise InvalidInput(
                ("a restricted key needs a permission list" if not unknown else "")
                + (f"unknown permissions {', '.join(unknown)}" if unknown else "")
                + f"; the permissions are {', '.join(ALL_PERMISSIONS)}",
                details=[{"field": "permissions", "allowed": list(ALL_PERMISSIONS)}],
            )
    elif permissions:
        raise InvalidInput("only restricted keys take a permission list")
    prefix = f"{KEY_TYPES[type]}_live_"
    plaintext = prefix + secrets.token_urlsafe(24)
    key = ApiKey(
        organization_id=organization_id,
        name=name,
        type=type,
        key_prefix=prefix,
        key_hash=hash_key(plaintext),
        last_four_chars=plaintext[-4:],
        permissions=sorted(permissions) if permissions else None,
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(key)
    session.flush()
    return CreatedKey(key=key, plaintext=plaintext)


def read_api_keys(session: Session, *, organization_id: str) -> list[ApiKey]:
    return list(session.scalars(scoped(ApiKey, organization_id).order_by(ApiKey.created_at.desc())))


def revoke_api_key(session: Session, *, organization_id: str, key_id: str) -> ApiKey:
    key = get_scoped(session, ApiKey, organization_id, key_id, label="API key")
    if key.revoked_at is None:
        key.revoked_at = now_ms()
    _cache.clear()
    return key


MAX_GRACE_SECONDS = 7 * 86_400


def rotate_api_key(
    session: Session,
    *,
    organization_id: str,
    key_id: str,
    grace_seconds: int = 0,
    created_by: str | None = None,
) -> CreatedKey:
    """A new key with the same name, type and permissions; the old one keeps working for
    ``grace_seconds`` (so deployments can switch over), then stops."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidInput(f"graceSeconds must be between 0 and {MAX_GRACE_SECONDS}")
    old = get_scoped(session, ApiKey, organization_id, key_id, label="API key")
    if old.revoked_at is not None:
        raise InvalidInput("a revoked key cannot be rotated")
    now = now_ms()
    if old.expires_at is not None and old.expires_at <= now:
        raise InvalidInput("an expired key cannot be rotated")
    created = create_api_key(
        session,
        organization_id=organization_id,
        name=old.name,
        type=old.type,
        permissions=old.permissions,
        expires_at=old.expires_at,
        created_by=created_by,
    )
    until = now + grace_seconds * 1000
    old.expires_at = until if old.expires_at is None else min(old.expires_at, until)
    if grace_seconds == 0:
        old.revoked_at = now
    _cache.clear()
    return created


def _permissions(key: ApiKey) -> frozenset[str]:
    if key.type == "secret":
        return frozenset(ALL_PERMISSIONS)
    if key.type == "publishable":
        return frozenset({"events:write"})
    return frozenset(key.permissions or [])


class _PrincipalCache:
    """A few seconds of memory per key hash, so ingestion does not read the key on every call."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Principal, int | None]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> tuple[Principal, int | None] | None:
        with self._lock:
            item = self._items.get(key_hash)
        if item and item[0] > time.monotonic():
            return item[1], item[2]
        return None

    def put(self, key_hash: str, principal: Principal, expires_at: int | None) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key_hash] = (time.monotonic() + _CACHE_SECONDS, principal, expires_at)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _PrincipalCache()


def cached_principal(plaintext: str) -> Principal | None:
    """The principal of a key authenticated in the last few seconds, without the database."""
    cached = _cache.get(hash_key(plaintext.strip()))
    if cached is None:
        return None
    principal, expires_at = cached
    return principal if expires_at is None or expires_at > now_ms() else None


def authenticate_api_key(session: Session, plaintext: str | None) -> Principal:
    if not plaintext:
        raise Unauthenticated("missing API key: send it in the x-api-key header")
    key_hash = hash_key(plaintext.strip())
    now = now_ms()
    cached = _cache.get(key_hash)
    if cached is not None:
        principal, expires_at = cached
        if expires_at is None or expires_at > now:
            return principal
    row = session.execute(
        select(ApiKey, Organization)
        .join(Organization, Organization.id == ApiKey.organization_id)
        .where(ApiKey.key_hash == key_hash)
    ).first()
    if row is None:
        raise Unauthenticated("invalid API key")
    key, org = row
    if org.deleted_at is not None:
        raise Unauthenticated("this API key's organization was deleted")
    if key.revoked_at is not None:
        raise Unauthenticated("this API key has been revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated("this API key has expired")
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_GRANULARITY_MS:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    principal = Principal(
        organization_id=org.id,
        organization_slug=org.slug,
        plan=org.plan,
        actor_type="api",
        permissions=_permissions(key),
        key_id=key.id,
        key_type=key.type,
    )
    _cache.put(key_hash, principal, key.expires_at)
    return principal


def forget_cached_principals() -> None:
    """After a plan change: the next request of every key reads its organization again."""
    _cache.clear()
