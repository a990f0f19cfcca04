"""Sign-in sessions: an opaque bearer token ``ses_...`` shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.errors import NotFound, Unauthenticated
from tenancy.models import User, UserSession

PREFIX = "ses_"
_TOUCH_EVERY_MS = 60_000


def ttl_ms() -> int:
    """How long a session lives without use (sliding); ORBIN_SESSION_TTL_HOURS, default 14 days."""
    return int(float(os.environ.get("ORBIN_SESSION_TTL_HOURS", "336")) * 3_600_000)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_session_token(credential: str | None) -> bool:
    return bool(credential) and credential.startswith(PREFIX)  # type: ignore[union-attr]


@dataclass(frozen=True)
class NewSession:
    row: UserSession
    token: str


def create_session(
    session: Session,
    user_id: str,
    *,
    user_agent: str | None = None,
    ip: str | None = None,
    organization_id: str | None = None,
) -> NewSession:
    """``organization_id``: a session bound to that organization (single sign-on)."""
    token = PREFIX + secrets.token_urlsafe(32)
    now = now_ms()
    row = UserSession(
        user_id=user_id,
        token_hash=hash_token(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + ttl_ms(),
        user_agent=(user_agent or "")[:500] or None,
        ip_address=ip,
        organization_id=organization_id,
    )
    session.add(row)
    session.flush()
    return NewSession(row, token)


def authenticate_session(session: Session, token: str | None) -> tuple[User, UserSession]:
    """The user of a live session token, or Unauthenticated (same message for every cause)."""
    if not is_session_token(token):
        raise Unauthenticated("missing or invalid session token")
    now = now_ms()
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == hash_token(token.strip()))  # type: ignore[union-attr]
    ).first()
    if row is None or row[0].revoked_at is not None or row[0].expires_at <= now:
        raise Unauthenticated("this session has ended: sign in again")
    us, user = row
    if now - us.last_seen_at > _TOUCH_EVERY_MS:
        session.execute(
            update(UserSession)
            .where(UserSession.id == us.id)
            .values(last_seen_at=now, expires_at=now + ttl_ms())
        )
    return user, us


@dataclass(frozen=True)
class SignedInUser:
    user_id: str
    session_id: str
    email: str
    name: str


def signed_in_user(session: Session, token: str | None) -> SignedInUser:
    user, us = authenticate_session(session, token)
    return SignedInUser(user.id, us.id, user.email, user.name)


def read_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise Unauthenticated("this account no longer exists")
    return user


def revoke_session(session: Session, token: str) -> None:
    session.execute(
        update(UserSession)
        .where(
            UserSession.token_hash == hash_token(token.strip()), UserSession.revoked_at.is_(None)
        )
        .values(revoked_at=now_ms())
    )


def read_user_sessions(session: Session, user_id: str) -> list[UserSession]:
    """The user's live sessions (not revoked, not expired), most recently used first."""
    return list(
        session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > now_ms(),
            )
            .order_by(UserSession.last_seen_at.desc())
        )
    )


def revoke_user_session(session: Session, user_id: str, session_id: str) -> None:
    """End one of the user's own sessions; another user's session does not exist for them."""
    row = session.get(UserSession, session_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"session {session_id} not found")
    if row.revoked_at is None:
        row.revoked_at = now_ms()


def revoke_user_sessions(session: Session, user_id: str, *, keep_id: str | None = None) -> None:
    """Sign a user out everywhere (after a password change), except the current session."""
    stmt = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if keep_id:
        stmt = stmt.where(UserSession.id != keep_id)
    session.execute(stmt.values(revoked_at=now_ms()))
