"""Integrations' rows: provider, name, config, and credentials encrypted at rest.

Credentials are one JSON object encrypted with tenancy.crypto (Orbin's rotating Fernet keys);
they are decrypted only for a call to the provider (a step, a connection test) and by
``secret_values``, which lets other parts redact them. No function here returns them to an
API answer: the schemas never see the ``credentials`` column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tenancy import crypto
from tenancy.clock import now_ms
from tenancy.db import flush_unique
from tenancy.errors import NotFound
from tenancy.models import Integration, User
from tenancy.plan_limits import check_integration_room
from tenancy.scoping import get_scoped, scoped

__all__ = [
    "FAILURES_BEFORE_ERROR",
    "Integration",
    "ResolvedIntegration",
    "create_integration",
    "credentials_of",
    "delete_integration",
    "mark_synced",
    "read_integration",
    "read_integration_by_name",
    "read_integrations",
    "record_failure",
    "record_success",
    "reencrypt_all",
    "resolve_integration",
    "secret_values",
    "update_integration",
]

# Consecutive failed calls after which an integration is marked ``error``.
FAILURES_BEFORE_ERROR = 3


def _seal(credentials: dict[str, Any]) -> str:
    return crypto.encrypt(json.dumps(credentials, separators=(",", ":"), sort_keys=True))


def credentials_of(integration: Integration) -> dict[str, Any]:
    value = json.loads(crypto.decrypt(integration.credentials)) if integration.credentials else {}
    return value if isinstance(value, dict) else {}


def create_integration(
    session: Session,
    *,
    organization_id: str,
    provider: str,
    name: str,
    config: dict[str, Any],
    credentials: dict[str, Any],
    connected_by: str | None = None,
) -> Integration:
    check_integration_room(session, organization_id)
    row = Integration(
        organization_id=organization_id,
        provider=provider,
        name=name,
        config=config,
        credentials=_seal(credentials),
        status="active",
        failure_count=0,
        connected_by=connected_by,
    )
    flush_unique(session, f"an integration named {name!r} already exists", row)
    return row


def read_integration(session: Session, *, organization_id: str, integration_id: str) -> Integration:
    return get_scoped(session, Integration, organization_id, integration_id, label="integration")


def read_integration_by_name(session: Session, *, organization_id: str, name: str) -> Integration:
    row = session.scalars(scoped(Integration, organization_id).where(Integration.name == name))
    found = row.first()
    if found is None:
        raise NotFound(f"no integration named {name!r}")
    return found


def read_integrations(
    session: Session, *, organization_id: str, provider: str | None = None
) -> list[Integration]:
    query = scoped(Integration, organization_id).order_by(Integration.created_at, Integration.id)
    if provider:
        query = query.where(Integration.provider == provider)
    return list(session.scalars(query))


def update_integration(
    session: Session,
    *,
    integration: Integration,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> Integration:
    """New credentials replace the old whole; a changed credential or config clears an error
    (the next call tells whether it is fixed)."""
    if name is not None:
        integration.name = name
    if config is not None:
        integration.config = config
    if credentials is not None:
        integration.credentials = _seal(credentials)
    if config is not None or credentials is not None:
        integration.status, integration.failure_count, integration.last_error = "active", 0, None
    integration.updated_at = now_ms()
    flush_unique(session, f"an integration named {name!r} already exists")
    return integration


def delete_integration(session: Session, *, integration: Integration) -> None:
    session.delete(integration)
    session.flush()


@dataclass(frozen=True)
class ResolvedIntegration:
    """What a step needs to call the provider; lives only for that call."""

    id: str
    organization_id: str
    provider: str
    name: str
    status: str
    config: dict[str, Any]
    credentials: dict[str, Any]

    def __repr__(self) -> str:  # never show the credentials in a traceback or a log
        return f"ResolvedIntegration({self.provider}:{self.name}, id={self.id})"


def resolve_integration(
    session: Session, *, organization_id: str, name: str, provider: str
) -> ResolvedIntegration:
    row = read_integration_by_name(session, organization_id=organization_id, name=name)
    if row.provider != provider:
        raise NotFound(f"integration {name!r} is a {row.provider} integration, not {provider}")
    return ResolvedIntegration(
        row.id,
        row.organization_id,
        row.provider,
        row.name,
        row.status,
        dict(row.config or {}),
        credentials_of(row),
    )


def record_success(session: Session, *, organization_id: str, integration_id: str) -> None:
    session.execute(
        update(Integration)
        .where(Integration.organization_id == organization_id, Integration.id == integration_id)
        .values(last_used_at=now_ms(), failure_count=0, status="active", last_error=None)
    )


def record_failure(
    session: Session,
    *,
    organization_id: str,
    integration_id: str,
    message: str,
    fatal: bool = False,
) -> bool:
    """Count a failed call. ``fatal`` (a refused credential, an expired token) or
    FAILURES_BEFORE_ERROR in a row mark the integration ``error`` and notify the
    organization's admins once. Returns whether it went into ``error`` now."""
    row = read_integration(session, organization_id=organization_id, integration_id=integration_id)
    row.last_used_at = now_ms()
    row.last_error = message[:2000]
    row.failure_count = (row.failure_count or 0) + 1
    became_error = row.status != "error" and (fatal or row.failure_count >= FAILURES_BEFORE_ERROR)
    if became_error:
        row.status = "error"
        _notify_admins(session, row, message)
    session.flush()
    return became_error


def _notify_admins(session: Session, row: Integration, message: str) -> None:
    """In-app and by e-mail (the mail outbox sends it once the transaction commits)."""
    from tenancy.identity.notifications import notify_admins, user_ids_with_role
    from tenancy.mail import queue_mail

    title = f"Integration error: {row.name}"
    text = f"The {row.provider} integration {row.name!r} failed: {message[:500]}"
    notify_admins(
        session,
        row.organization_id,
        type="integration_error",
        title=title,
        message=text,
        link=f"/integrations?id={row.id}",
    )
    admins = user_ids_with_role(session, row.organization_id, "admin")
    for email in session.scalars(select(User.email).where(User.id.in_(admins))):
        queue_mail(
            session,
            to=email,
            subject=f"[Orbin] {title}",
            text=text + "\n\nFix its credentials or configuration, then test it again.",
            organization_id=row.organization_id,
        )


def secret_values(session: Session, organization_id: str) -> list[str]:
    """Every decrypted credential value of the organization's integrations (strings only),
    longest first, so a caller can redact them from text it is about to send or show."""
    values: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= 4:
                values.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for row in read_integrations(session, organization_id=organization_id):
        walk(credentials_of(row))
    return sorted(values, key=len, reverse=True)


def count_integrations(session: Session, *, organization_id: str) -> int:
    query = select(func.count()).select_from(Integration)
    return int(session.scalar(query.where(Integration.organization_id == organization_id)) or 0)


def reencrypt_all(session: Session) -> int:
    """Every integration's credentials under the newest key (``orbin secrets rotate``)."""
    n = 0
    for row in session.scalars(select(Integration)):
        if row.credentials:
            row.credentials = crypto.rotate(row.credentials)
            n += 1
    session.flush()
    return n


def mark_synced(session: Session, *, organization_id: str, integration_id: str) -> None:
    """Its Prefect block document now holds the current credentials."""
    session.execute(
        update(Integration)
        .where(Integration.organization_id == organization_id, Integration.id == integration_id)
        .values(last_sync_at=now_ms())
    )
