"""Password reset by e-mail: a signed token naming the user, its expiry and a tag of the current
password hash, so it works once (the new password changes the tag) and only until it expires."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy import crypto
from tenancy.clock import now_ms
from tenancy.errors import Gone, InvalidInput
from tenancy.identity.account_audit import record_account_audit
from tenancy.identity.invitations import dashboard_url
from tenancy.identity.passwords import hash_password
from tenancy.identity.sessions import NewSession, create_session, revoke_user_sessions
from tenancy.mail import queue_mail
from tenancy.models import User

TTL_MS = 60 * 60_000


def _tag(user: User) -> str:
    return hashlib.sha256((user.password_hash or "none").encode()).hexdigest()[:16]


def _sign(payload: str) -> str:
    mac = hmac.new(crypto.signing_key(), b"password-reset:" + payload.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip("=")


def _token(user: User, expires: int) -> str:
    payload = f"{user.id}.{expires}.{_tag(user)}"
    return f"{payload}.{_sign(payload)}"


def request_password_reset(session: Session, email: str) -> None:
    """Mail a reset link if the address has an account; the answer is the same either way."""
    user = session.scalars(select(User).where(User.email == (email or "").strip().lower())).first()
    if user is None:
        return
    token = _token(user, now_ms() + TTL_MS)
    link = f"{dashboard_url()}/reset-password?token={quote(token)}"
    queue_mail(
        session,
        to=user.email,
        subject="Reset your Orbin password",
        text=(
            f"Someone asked to reset the password of {user.email} on Orbin.\n\n"
            f"Choose a new password: {link}\n\n"
            "The link works once, for one hour. If it was not you, ignore this mail: "
            "your password stays as it is.\n"
        ),
    )


def confirm_password_reset(
    session: Session,
    token: str,
    password: str,
    *,
    user_agent: str | None = None,
    ip: str | None = None,
) -> tuple[User, NewSession]:
    parts = (token or "").split(".")
    if len(parts) != 4:
        raise InvalidInput("this reset link is not valid", details=[{"field": "token"}])
    user_id, expires, tag, mac = parts
    payload = f"{user_id}.{expires}.{tag}"
    if not hmac.compare_digest(_sign(payload), mac):
        raise InvalidInput("this reset link is not valid", details=[{"field": "token"}])
    user = session.get(User, user_id)
    if user is None or not hmac.compare_digest(_tag(user), tag):
        raise Gone("this reset link was already used: ask for a new one")
    if not expires.isdigit() or int(expires) <= now_ms():
        raise Gone("this reset link has expired: ask for a new one")
    user.password_hash = hash_password(password)
    user.failed_signins = 0
    user.locked_until = None
    revoke_user_sessions(session, user.id)
    record_account_audit(session, user.id, "user.password_reset", ip=ip, user_agent=user_agent)
    return user, create_session(session, user.id, user_agent=user_agent, ip=ip)
