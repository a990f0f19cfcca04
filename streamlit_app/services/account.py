"""Your account: profile, password (a change signs every session out), TOTP MFA enrolment
with recovery codes, signed-in sessions, notification preferences. Each use case is
identity's (``tenancy.identity``); this seam only turns refusals into messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from streamlit_app.services.base import Outcome
from tenancy.db import Session, read_scope, session_scope
from tenancy.errors import OrbinError
from tenancy.identity import accounts, notifications
from tenancy.identity import sessions as sessions_

T = TypeVar("T")
CAUSES = tuple(notifications.CAUSES)
CAUSE_LABELS = {
    "workflow_failed": "A workflow run fails",
    "usage": "Usage reaches 70, 90 or 100 % of the plan",
    "member_joined": "Someone joins the organization",
    "integration_error": "An integration stops working",
}


@dataclass(frozen=True)
class Profile:
    name: str
    email: str
    mfa_enabled: bool
    created_at: int


@dataclass(frozen=True)
class SessionRow:
    id: str
    created_at: int
    last_seen_at: int
    expires_at: int
    user_agent: str | None
    ip_address: str | None
    current: bool = False  # the session of the browser looking at the list


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


def _as_user(user_id: str, done: str, fn: Callable[[Session, Any], T]) -> Outcome:
    try:
        with session_scope() as session:
            value = fn(session, sessions_.read_user(session, user_id))
    except OrbinError as exc:
        return Outcome(False, exc.message, exc.details)
    return Outcome(True, done, value)


def profile(user_id: str) -> Profile:
    with read_scope() as session:
        u = sessions_.read_user(session, user_id)
        return Profile(u.name, u.email, bool(u.mfa_enabled_at), u.created_at)


def change_password(user_id: str, *, current: str, new: str, repeat: str) -> Outcome:
    if new != repeat:
        return Outcome(False, "The new passwords differ.")
    return _as_user(
        user_id,
        "Password changed. Every session of your account has ended.",
        lambda s, u: accounts.change_password(s, u, current=current, new=new, keep_session_id=None),
    )


def begin_mfa(user_id: str) -> Outcome:
    def go(session: Session, user: Any) -> Enrolment:
        started = accounts.begin_mfa_enrollment(session, user)
        return Enrolment(started["secret"], started["otpauthUri"])

    return _as_user(user_id, "Scan the code, then enter the 6 digits it shows.", go)


def verify_mfa(user_id: str, code: str) -> Outcome:
    return _as_user(
        user_id,
        "MFA is on. Keep the recovery codes somewhere safe.",
        lambda s, u: accounts.verify_mfa_enrollment(s, u, code),
    )


def disable_mfa(user_id: str, *, password: str, code: str) -> Outcome:
    return _as_user(
        user_id,
        "MFA is off.",
        lambda s, u: accounts.disable_mfa(s, u, password=password, code=code or None),
    )


def sessions(user_id: str, current_token: str | None = None) -> list[SessionRow]:
    """The user's live sessions; the one ``current_token`` opened is marked ``current``."""
    mine = sessions_.hash_token(current_token.strip()) if current_token else None
    with read_scope() as session:
        return [
            SessionRow(
                r.id,
                r.created_at,
                r.last_seen_at,
                r.expires_at,
                r.user_agent,
                r.ip_address,
                current=r.token_hash == mine,
            )
            for r in sessions_.read_user_sessions(session, user_id)
        ]


def revoke_session(user_id: str, session_id: str) -> Outcome:
    return _as_user(
        user_id,
        "Session ended.",
        lambda s, u: sessions_.revoke_user_session(s, u.id, session_id),
    )


def preferences(user_id: str) -> dict[str, dict[str, bool]]:
    with read_scope() as session:
        return notifications.preferences(sessions_.read_user(session, user_id))


def update_preferences(user_id: str, changes: dict[str, dict[str, bool]]) -> Outcome:
    return _as_user(
        user_id,
        "Notification preferences saved.",
        lambda s, u: notifications.update_preferences(u, changes),
    )
