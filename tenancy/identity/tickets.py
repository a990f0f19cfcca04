"""One-time tickets between two steps of a sign-in: a random token shown once, stored as
SHA-256, with an expiry and a purpose; used at most once (an atomic update decides)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.identity.tables import AuthTicket

_SWEEP_AFTER_MS = 3_600_000


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_ticket(
    session: Session,
    purpose: str,
    *,
    ttl_ms: int,
    user_id: str | None = None,
    organization_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> str:
    now = now_ms()
    # Old tickets go as new ones come: the table holds about an hour of sign-ins.
    session.execute(delete(AuthTicket).where(AuthTicket.expires_at < now - _SWEEP_AFTER_MS))
    token = secrets.token_urlsafe(32)
    session.add(
        AuthTicket(
            purpose=purpose,
            token_hash=_hash(token),
            user_id=user_id,
            organization_id=organization_id,
            data=data,
            expires_at=now + ttl_ms,
            created_at=now,
        )
    )
    session.flush()
    return token


def read_ticket(session: Session, purpose: str, token: str | None) -> AuthTicket | None:
    """The live (unused, unexpired) ticket of this purpose, or None for anything else."""
    if not token or len(token) > 200:
        return None
    ticket = session.scalars(
        select(AuthTicket).where(
            AuthTicket.token_hash == _hash(token), AuthTicket.purpose == purpose
        )
    ).first()
    if ticket is None or ticket.used_at is not None or ticket.expires_at <= now_ms():
        return None
    return ticket


def use_ticket(session: Session, ticket: AuthTicket) -> bool:
    """Mark it used; False when another request used it first (then it must not count)."""
    done = session.execute(
        update(AuthTicket)
        .where(AuthTicket.id == ticket.id, AuthTicket.used_at.is_(None))
        .values(used_at=now_ms())
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]
