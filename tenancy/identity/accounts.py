"""Accounts: sign-up, sign-in (throttle, lockout, TOTP or a recovery code), password change,
MFA enrolment. Every sign-in, from the API or the dashboard, goes through ``sign_in``."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy import crypto
from tenancy.clock import now_ms
from tenancy.db import session_scope
from tenancy.errors import Conflict, InvalidInput, NotFound, OrbinError, Unauthenticated
from tenancy.identity.account_audit import record_account_audit
from tenancy.identity.passwords import MIN_LENGTH as MIN_PASSWORD
from tenancy.identity.passwords import check_password, hash_password, verify_password
from tenancy.identity.sessions import NewSession, create_session, revoke_user_sessions
from tenancy.identity.throttle import check_sign_in
from tenancy.identity.tickets import issue_ticket, read_ticket, use_ticket
from tenancy.models import User
from tenancy.orgs import create_user

__all__ = ["MIN_PASSWORD", "check_password"]

MAX_FAILURES = 10
LOCK_MS = 15 * 60_000
RECOVERY_CODES = 10
ISSUER = "Orbin"
MFA_TICKET_MS = 5 * 60_000


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: NewSession


class MfaRequired(Unauthenticated):
    """The password was right and the account uses MFA. ``ticket`` (when asked for) lets a
    second form send the code alone: ``complete_mfa_sign_in``."""

    def __init__(self, ticket: str | None = None) -> None:
        super().__init__(
            "this account uses MFA: send the 6-digit code as totp (or a recoveryCode)",
            code="mfa_required",
        )
        self.ticket = ticket


def sign_up(
    session: Session,
    *,
    email: str,
    password: str,
    name: str,
    user_agent: str | None = None,
    ip: str | None = None,
) -> SignedIn:
    check_password(password)
    if not name.strip():
        raise InvalidInput("name must not be empty")
    try:
        user = create_user(session, email=email, name=name.strip(), password=password)
    except Conflict as exc:
        raise Conflict("an account with this e-mail exists: sign in instead") from exc
    return SignedIn(user, create_session(session, user.id, user_agent=user_agent, ip=ip))


def _user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.strip().lower())).first()


def _verify_password(user: User | None, password: str) -> bool:
    return verify_password(user.password_hash if user else None, password)


def _totp_ok(user: User, code: str | None) -> bool:
    if not code or not user.mfa_secret_enc:
        return False
    return pyotp.TOTP(crypto.decrypt(user.mfa_secret_enc)).verify(str(code).strip(), valid_window=1)


def _recovery_ok(user: User, code: str | None) -> bool:
    if not code:
        return False
    digest = hashlib.sha256(code.strip().lower().encode()).hexdigest()
    hashes = list(user.mfa_recovery_hashes or [])
    if digest not in hashes:
        return False
    hashes.remove(digest)
    user.mfa_recovery_hashes = hashes  # each code works once
    return True


def _second_factor_ok(user: User, code: str | None) -> str | None:
    """Which second factor the code is (``totp`` / ``recovery_code``), or None."""
    if _totp_ok(user, code):
        return "totp"
    if _recovery_ok(user, code):
        return "recovery_code"
    return None


@dataclass(frozen=True)
class _Client:
    ip: str | None
    user_agent: str | None


def _failed(session: Session, user: User | None, why: str, client: _Client) -> None:
    if user is None:
        return  # an unknown e-mail belongs to no organization's trail
    user.failed_signins = (user.failed_signins or 0) + 1
    if user.failed_signins >= MAX_FAILURES:
        user.locked_until = now_ms() + LOCK_MS
        user.failed_signins = 0
        why += "; account locked"
    record_account_audit(session, user.id, "user.signin_failed", {"reason": why}, **client.__dict__)


def _succeeded(session: Session, user: User, method: str, client: _Client) -> str:
    user.failed_signins = 0
    user.locked_until = None
    record_account_audit(session, user.id, "user.signed_in", {"method": method}, **client.__dict__)
    return create_session(session, user.id, user_agent=client.user_agent, ip=client.ip).token


def _locked(user: User | None) -> OrbinError | None:
    if user is not None and user.locked_until and user.locked_until > now_ms():
        return Unauthenticated(
            "too many failed sign-ins: this account is locked for a few minutes",
            code="account_locked",
        )
    return None


def sign_in(
    *,
    email: str,
    password: str,
    totp: str | None = None,
    recovery_code: str | None = None,
    user_agent: str | None = None,
    ip: str | None = None,
    mfa_ticket: bool = False,
) -> tuple[str, dict[str, object]]:
    """Check the credentials in a transaction of its own (failures are counted even though the
    caller gets an error); returns the session token and the user's public fields.

    With ``mfa_ticket`` a right password on an MFA account raises ``MfaRequired`` carrying a
    five-minute ticket for ``complete_mfa_sign_in`` (the dashboard's second form)."""
    check_sign_in(email, ip)
    client = _Client(ip, user_agent)
    error: OrbinError | None = None
    result: tuple[str, dict[str, object]] | None = None
    with session_scope() as session:
        user = _user_by_email(session, email)
        error = _locked(user)
        if error is not None:
            pass
        elif not _verify_password(user, password):
            _failed(session, user, "wrong password", client)
            error = Unauthenticated("wrong e-mail or password", code="invalid_credentials")
        else:
            assert user is not None
            method = "password"
            if user.mfa_enabled_at:
                if not (totp or recovery_code):
                    ticket = None
                    if mfa_ticket:
                        ticket = issue_ticket(session, "mfa", ttl_ms=MFA_TICKET_MS, user_id=user.id)
                    error = MfaRequired(ticket)
                else:
                    factor = _second_factor_ok(user, totp) if totp else None
                    factor = factor or _second_factor_ok(user, recovery_code)
                    if factor is None:
                        _failed(session, user, "wrong MFA code", client)
                        error = Unauthenticated("the MFA code is not valid", code="mfa_invalid")
                    method = f"password+{factor}"
            if error is None:
                result = (_succeeded(session, user, method, client), public_user(user))
    if error is not None:
        raise error
    assert result is not None
    return result


def complete_mfa_sign_in(
    *, ticket: str, code: str, user_agent: str | None = None, ip: str | None = None
) -> tuple[str, dict[str, object]]:
    """The second step: the ticket of a right password, and a TOTP or recovery code. Wrong
    codes count towards the lockout, as at ``sign_in``; the ticket works for one session."""
    client = _Client(ip, user_agent)
    error: OrbinError | None = None
    result: tuple[str, dict[str, object]] | None = None
    with session_scope() as session:
        row = read_ticket(session, "mfa", ticket)
        user = session.get(User, row.user_id) if row is not None and row.user_id else None
        if row is None or user is None or not user.mfa_enabled_at:
            raise Unauthenticated(
                "this sign-in took too long or was already used: start again", code="mfa_expired"
            )
        check_sign_in(user.email, ip)
        error = _locked(user)
        if error is None:
            factor = _second_factor_ok(user, code)
            if factor is None:
                _failed(session, user, "wrong MFA code", client)
                error = Unauthenticated("the MFA code is not valid", code="mfa_invalid")
            elif not use_ticket(session, row):
                error = Unauthenticated("this sign-in was already used", code="mfa_expired")
            else:
                result = (
                    _succeeded(session, user, f"password+{factor}", client),
                    public_user(user),
                )
    if error is not None:
        raise error
    assert result is not None
    return result


def public_user(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "avatarUrl": user.avatar_url,
        "mfaEnabled": bool(user.mfa_enabled_at),
        "createdAt": user.created_at,
    }


def change_password(
    session: Session, user: User, *, current: str, new: str, keep_session_id: str | None
) -> None:
    if not _verify_password(user, current):
        raise Unauthenticated("the current password is wrong", code="invalid_credentials")
    user.password_hash = hash_password(new)
    revoke_user_sessions(session, user.id, keep_id=keep_session_id)
    record_account_audit(session, user.id, "user.password_changed")


def begin_mfa_enrollment(session: Session, user: User) -> dict[str, str]:
    if user.mfa_enabled_at:
        raise Conflict("MFA is already on for this account: disable it first")
    secret = pyotp.random_base32()
    user.mfa_secret_enc = crypto.encrypt(secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    record_account_audit(session, user.id, "user.mfa_enrollment_started")
    return {"secret": secret, "otpauthUri": uri}


def pending_enrollment(user: User) -> dict[str, str] | None:
    """The enrolment under way (started, not yet verified): its secret and URI again."""
    if user.mfa_enabled_at or not user.mfa_secret_enc:
        return None
    secret = crypto.decrypt(user.mfa_secret_enc)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return {"secret": secret, "otpauthUri": uri}


def verify_mfa_enrollment(session: Session, user: User, code: str) -> list[str]:
    if user.mfa_enabled_at:
        raise Conflict("MFA is already on for this account")
    if not user.mfa_secret_enc:
        raise InvalidInput("start the enrolment first (POST /v1/auth/mfa/enroll)")
    if not _totp_ok(user, code):
        raise InvalidInput("the code does not match: check the authenticator's clock")
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    user.mfa_recovery_hashes = [hashlib.sha256(c.encode()).hexdigest() for c in codes]
    user.mfa_enabled_at = now_ms()
    record_account_audit(session, user.id, "user.mfa_enabled")
    return codes


def disable_mfa(session: Session, user: User, *, password: str, code: str | None) -> None:
    if not _verify_password(user, password):
        raise Unauthenticated("the password is wrong", code="invalid_credentials")
    if user.mfa_enabled_at and not (_totp_ok(user, code) or _recovery_ok(user, code)):
        raise InvalidInput("the MFA code is not valid")
    user.mfa_enabled_at = None
    user.mfa_secret_enc = None
    user.mfa_recovery_hashes = None
    record_account_audit(session, user.id, "user.mfa_disabled")


def user_by_email(session: Session, email: str) -> User:
    user = _user_by_email(session, email)
    if user is None:
        raise NotFound(f"no account with e-mail {email}")
    return user


def set_password(session: Session, email: str, password: str) -> User:
    """An operator's reset: the new password, the lock lifted, every session ended."""
    user = user_by_email(session, email)
    user.password_hash = hash_password(password)
    user.failed_signins = 0
    user.locked_until = None
    revoke_user_sessions(session, user.id)
    return user
