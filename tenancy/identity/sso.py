"""Single sign-on per organization with OpenID Connect (settings in ``sso_settings``): the
sign-in round trip, ``begin_login`` -> the provider -> ``complete_login``.

A sign-in by SSO acts in its organization only (the session is bound to it), so an
organization's provider can never open its members' other organizations. Users are created
on first sign-in, or linked when their account is already a member (never an outsider's
account: an admin invites it first); members ranking above the admin who saved the settings
are not linked (an admin's provider must not sign in as an owner).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy import crypto
from tenancy.audit import record_audit
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.db import read_scope, session_scope
from tenancy.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OrbinError,
    PermissionDenied,
    Unauthenticated,
)
from tenancy.identity import oidc
from tenancy.identity.members import announce_joined
from tenancy.identity.sessions import create_session
from tenancy.identity.sso_settings import config_of, redirect_uri
from tenancy.identity.tables import SsoConfig, SsoIdentity
from tenancy.identity.tickets import issue_ticket, read_ticket, use_ticket
from tenancy.models import Organization, OrganizationMember, User
from tenancy.orgs import add_member, create_user
from tenancy.principal import ROLE_RANK, system_principal

STATE_MS = 10 * 60_000
CODE_MS = 60_000
CLIENTS = ("api", "dashboard")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def login_url(slug: str, *, client: str, bind: str, next_url: str) -> str:
    """Where a browser starts signing in to ``slug`` (the API's login route)."""
    query = urlencode({"client": client, "bind": bind, "next": next_url})
    return f"{get_settings().api_url}/v1/auth/sso/{quote(slug, safe='')}/login?{query}"


def _org_config(session: Session, slug: str) -> tuple[Organization, SsoConfig]:
    org = session.scalars(select(Organization).where(Organization.slug == slug)).first()
    cfg = config_of(session, org.id) if org is not None else None
    if org is None or cfg is None:
        raise NotFound(f"no single sign-on for organization {slug[:64]!r}")
    return org, cfg


@dataclass(frozen=True)
class LoginStart:
    url: str
    browser_secret: str  # the API sets it as a cookie: the callback must come to this browser


def begin_login(
    session: Session,
    slug: str,
    *,
    client: str = "api",
    bind: str | None = None,
    next_url: str = "/",
) -> LoginStart:
    """The provider's authorize URL, with a state (a ticket), a nonce and a PKCE challenge.

    ``client="dashboard"``: the callback hands the dashboard a one-time code, redeemable only
    by the browser whose ``bind`` (SHA-256 of its cookie) started it."""
    if client not in CLIENTS:
        raise InvalidInput("client must be api or dashboard", details=[{"field": "client"}])
    if client == "dashboard" and not bind:
        raise InvalidInput("bind: required for the dashboard", details=[{"field": "bind"}])
    org, cfg = _org_config(session, slug)
    provider = oidc.discover(cfg.issuer)
    nonce, verifier, browser = (secrets.token_urlsafe(32) for _ in range(3))
    state = issue_ticket(
        session,
        "sso_state",
        ttl_ms=STATE_MS,
        organization_id=org.id,
        data={
            "nonce": nonce,
            "verifier": crypto.encrypt(verifier),
            "browser": digest(browser),
            "client": client,
            "bind": bind,
            "next": next_url if next_url.startswith("/") and not next_url.startswith("//") else "/",
        },
    )
    url = oidc.authorization_url(
        provider,
        client_id=cfg.client_id,
        redirect_uri=redirect_uri(org.slug),
        state=state,
        nonce=nonce,
        code_verifier=verifier,
    )
    return LoginStart(url, browser)


def login_client(session: Session, state: str | None) -> str | None:
    """Whose round trip a state belongs to (``api``/``dashboard``), None if it is not live."""
    ticket = read_ticket(session, "sso_state", state)
    return (ticket.data or {}).get("client") if ticket is not None else None


@dataclass(frozen=True)
class LoginDone:
    client: str
    user: User
    organization: Organization
    created: bool
    token: str | None = None  # api: the session token
    code: str | None = None  # dashboard: the one-time code


_BAD_STATE = "this single sign-on is unknown, expired or was started elsewhere: start again"


@dataclass(frozen=True)
class _Pending:
    organization_id: str
    slug: str
    plan: str
    data: dict[str, Any]


def _take_state(
    session: Session, slug: str, state: str | None, browser_secret: str | None
) -> _Pending:
    org, _ = _org_config(session, slug)
    ticket = read_ticket(session, "sso_state", state)
    data = (ticket.data or {}) if ticket is not None else {}
    if (
        ticket is None
        or ticket.organization_id != org.id
        or not browser_secret
        or not hmac.compare_digest(digest(browser_secret), str(data.get("browser", "")))
        or not use_ticket(session, ticket)
    ):
        raise Unauthenticated(_BAD_STATE, code="sso_state_invalid")
    return _Pending(org.id, org.slug, org.plan, dict(data))


def complete_login(
    slug: str,
    *,
    code: str | None,
    state: str | None,
    browser_secret: str | None,
    error: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> LoginDone:
    """The callback: the state used once (committed first: a failed attempt cannot be
    replayed), the code exchanged, the ID token verified, the user created or linked, a
    member with the default role, and a session bound to the organization. Each failure after
    the state is an ``sso.login_failed`` entry in the organization's trail."""
    with session_scope() as session:
        pending = _take_state(session, slug, state, browser_secret)
    client = {"ip_address": ip, "user_agent": (user_agent or "")[:500] or None}
    system = system_principal(pending.organization_id, pending.slug, pending.plan)
    try:
        if error:
            reason = "".join(c for c in error if c.isalnum() or c in "_-")[:60]
            raise Unauthenticated(
                f"the identity provider did not sign you in: {reason}", code="sso_denied"
            )
        if not code:
            raise InvalidInput("code: field required", details=[{"field": "code"}])
        with read_scope() as session:
            _, cfg = _org_config(session, slug)
            issuer, client_id = cfg.issuer, cfg.client_id
            secret = crypto.decrypt(cfg.client_secret_enc)
        provider = oidc.discover(issuer)
        tokens = oidc.exchange_code(
            provider,
            client_id=client_id,
            client_secret=secret,
            redirect_uri=redirect_uri(pending.slug),
            code=code,
            code_verifier=crypto.decrypt(pending.data["verifier"]),
        )
        claims = oidc.verify_id_token(
            provider, tokens["id_token"], client_id=client_id, nonce=pending.data["nonce"]
        )
        with session_scope() as session:
            org, cfg = _org_config(session, slug)
            user, created = _user_for(session, org, cfg, claims)
            record_audit(
                session,
                system,
                "sso.login",
                "user",
                user.id,
                {"issuer": cfg.issuer, "email": user.email, "created": created},
                **client,
            )
            if pending.data.get("client") == "dashboard":
                one_time = issue_ticket(
                    session,
                    "sso_code",
                    ttl_ms=CODE_MS,
                    user_id=user.id,
                    organization_id=org.id,
                    data={"bind": pending.data.get("bind"), "next": pending.data.get("next")},
                )
                return LoginDone("dashboard", user, org, created, code=one_time)
            new = create_session(
                session, user.id, user_agent=user_agent, ip=ip, organization_id=org.id
            )
            return LoginDone("api", user, org, created, token=new.token)
    except OrbinError as exc:
        with session_scope() as session:
            record_audit(
                session, system, "sso.login_failed", "sso", None, {"reason": exc.code}, **client
            )
        raise


def _claimed_email(cfg: SsoConfig, claims: dict[str, Any]) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise Unauthenticated("the ID token names no e-mail address", code="sso_no_email")
    if claims.get("email_verified") is False:
        raise Unauthenticated("the provider has not verified this e-mail", code="sso_no_email")
    email = email.strip().lower()
    if email.rsplit("@", 1)[1] not in (cfg.allowed_domains or []):
        raise PermissionDenied(
            f"e-mail addresses of {email.rsplit('@', 1)[1]!r} may not sign in to this "
            "organization by single sign-on",
            code="sso_domain_not_allowed",
        )
    return email


def _user_for(
    session: Session, org: Organization, cfg: SsoConfig, claims: dict[str, Any]
) -> tuple[User, bool]:
    email = _claimed_email(cfg, claims)
    subject = str(claims["sub"])[:255]
    identity = session.scalars(
        select(SsoIdentity).where(
            SsoIdentity.organization_id == org.id,
            SsoIdentity.issuer == cfg.issuer,
            SsoIdentity.subject == subject,
        )
    ).first()
    created = False
    member = None
    if identity is not None:
        user = session.get(User, identity.user_id)
        assert user is not None
    else:
        user = session.scalars(select(User).where(User.email == email)).first()
        if user is None:
            name = str(claims.get("name") or email.split("@")[0]).strip()[:200] or email
            user = create_user(session, email=email, name=name, password=None)
            created = True
        else:
            member = _membership(session, org.id, user.id)
            if member is None:
                raise Conflict(
                    f"an Orbin account with {email} exists and is not a member of {org.slug}: "
                    "an admin invites it, then it signs in by single sign-on",
                    code="sso_account_exists",
                )
            _may_link(session, cfg, member)
        identity = SsoIdentity(
            user_id=user.id, organization_id=org.id, issuer=cfg.issuer, subject=subject, email=email
        )
        session.add(identity)
    identity.last_login_at = now_ms()
    member = member or _membership(session, org.id, user.id)
    if member is None:
        add_member(session, organization_id=org.id, user_id=user.id, role=cfg.default_role)
        announce_joined(session, org, user, email=email, role=cfg.default_role, via="sso")
    session.flush()
    return user, created


def _membership(session: Session, organization_id: str, user_id: str) -> OrganizationMember | None:
    return session.scalars(
        select(OrganizationMember).where(
            OrganizationMember.organization_id == organization_id,
            OrganizationMember.user_id == user_id,
        )
    ).first()


def _may_link(session: Session, cfg: SsoConfig, member: OrganizationMember) -> None:
    author = _membership(session, cfg.organization_id, cfg.updated_by) if cfg.updated_by else None
    ceiling = ROLE_RANK[author.role] if author is not None else ROLE_RANK["admin"]
    if ROLE_RANK.get(member.role, 0) > ceiling:
        raise PermissionDenied(
            f"an {member.role} is linked to single sign-on only once an {member.role} has saved "
            "the settings: sign in with your password and save them again",
            code="sso_link_refused",
        )


def redeem_dashboard_code(session: Session, code: str, bind: str | None) -> tuple[str, str]:
    """The dashboard's one-time code for a session (bound to the organization), by the
    browser that started the sign-in only; returns the token and the page to go to."""
    ticket = read_ticket(session, "sso_code", code)
    expected = str((ticket.data or {}).get("bind") or "") if ticket is not None else ""
    if (
        ticket is None
        or not ticket.user_id
        or not bind
        or not expected
        or not hmac.compare_digest(expected, bind)
        or not use_ticket(session, ticket)
    ):
        raise Unauthenticated(_BAD_STATE, code="sso_state_invalid")
    new = create_session(session, ticket.user_id, organization_id=ticket.organization_id)
    return new.token, str((ticket.data or {}).get("next") or "/")
