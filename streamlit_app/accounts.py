"""Accounts, through identity's service layer: signing in (the same checks as
``POST /v1/auth/signin``: throttle, lockout, MFA), the server-side session behind the cookie,
and the organizations a user may see."""

from __future__ import annotations

from dataclasses import dataclass

from tenancy.db import read_scope, session_scope
from tenancy.errors import Unauthenticated
from tenancy.identity import accounts as identity
from tenancy.identity import members, sessions, sso
from tenancy.identity.accounts import MfaRequired

__all__ = ["MfaRequired", "Unauthenticated"]


@dataclass(frozen=True)
class SignedInUser:
    id: str
    name: str
    email: str
    session_id: str
    # A single sign-on session acts in this organization only.
    organization_id: str | None = None


@dataclass(frozen=True)
class Membership:
    organization_id: str
    slug: str
    name: str
    role: str
    # Why this organization refuses the user for now (requireMfa without MFA), or None.
    refusal: str | None = None


def sign_in(email: str, password: str, *, ip: str | None, user_agent: str | None) -> str:
    """A new session token; MfaRequired carries the ticket for the code's form."""
    token, _ = identity.sign_in(
        email=email, password=password, ip=ip, user_agent=user_agent, mfa_ticket=True
    )
    return token


def complete_mfa(ticket: str, code: str, *, ip: str | None, user_agent: str | None) -> str:
    token, _ = identity.complete_mfa_sign_in(ticket=ticket, code=code, ip=ip, user_agent=user_agent)
    return token


def complete_sso(code: str, browser_secret: str | None) -> tuple[str, str]:
    """A single sign-on's session (bound to its organization) from the one-time code the
    API's callback gave, for the browser that started it; and the page to go to."""
    with session_scope() as session:
        return sso.redeem_dashboard_code(
            session, code, sso.digest(browser_secret) if browser_secret else None
        )


def sso_login_url(slug: str, browser_secret: str, next_url: str) -> str:
    return sso.login_url(
        slug, client="dashboard", bind=sso.digest(browser_secret), next_url=next_url
    )


def current_user(token: str | None) -> SignedInUser | None:
    """The user of a live session: None once it is signed out, expired, or revoked (a new
    password, an operator's reset)."""
    if not sessions.is_session_token(token):
        return None
    try:
        with session_scope() as session:
            user, us = sessions.authenticate_session(session, token)
            return SignedInUser(user.id, user.name, user.email, us.id, us.organization_id)
    except Unauthenticated:
        return None


def sign_out(token: str | None) -> None:
    if sessions.is_session_token(token):
        with session_scope() as session:
            sessions.revoke_session(session, token or "")


def read_memberships(user_id: str) -> list[Membership]:
    with read_scope() as session:
        return [
            Membership(o.id, o.slug, o.name, m.role)
            for m, o in sorted(members.memberships(session, user_id), key=lambda r: r[1].name)
        ]


def usable_memberships(user: SignedInUser) -> list[Membership]:
    """The organizations this session may show, each with its refusal if it has one."""
    with read_scope() as session:
        account = sessions.read_user(session, user.id)
        out = []
        for m, o in sorted(members.memberships(session, user.id), key=lambda r: r[1].name):
            if user.organization_id and o.id != user.organization_id:
                continue
            refusal = members.mfa_refusal(o, account)
            out.append(Membership(o.id, o.slug, o.name, m.role, refusal and refusal.message))
        return out


def is_member(token: str | None, organization_id: str) -> bool:
    """For live sockets: a live session whose user may see this organization now."""
    user = current_user(token)
    if user is None:
        return False
    return any(
        m.organization_id == organization_id and m.refusal is None for m in usable_memberships(user)
    )


@dataclass(frozen=True)
class MfaSetup:
    secret: str
    uri: str


def begin_mfa_setup(user: SignedInUser, *, again: bool = False) -> MfaSetup:
    """A new key to add to the authenticator; ``again``: the one given before, if any."""
    with session_scope() as session:
        account = sessions.read_user(session, user.id)
        got = (identity.pending_enrollment(account) if again else None) or (
            identity.begin_mfa_enrollment(session, account)
        )
    return MfaSetup(got["secret"], got["otpauthUri"])


def finish_mfa_setup(user: SignedInUser, code: str) -> list[str]:
    """Turns MFA on; the recovery codes, to be shown once."""
    with session_scope() as session:
        return identity.verify_mfa_enrollment(session, sessions.read_user(session, user.id), code)
