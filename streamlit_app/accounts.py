"""Accounts: signing in and the organizations a user may see, through the service layer."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from streamlit_app.session_cookie import password_tag
from tenancy import orgs as orgs_repo
from tenancy.db import session_scope
from tenancy.errors import NotFound


@dataclass(frozen=True)
class SignedInUser:
    id: str
    name: str
    email: str
    password_tag: str


@dataclass(frozen=True)
class Membership:
    organization_id: str
    slug: str
    name: str
    role: str


def _signed_in(user: Any) -> SignedInUser:
    return SignedInUser(user.id, user.name, user.email, password_tag(user.password_hash))


def sign_in(email: str, password: str) -> SignedInUser:
    """The user with this email and password, or Unauthenticated (same message either way)."""
    with session_scope() as session:
        return _signed_in(orgs_repo.authenticate_user(session, email=email, password=password))


def current_user(user_id: str, password_tag: str) -> SignedInUser | None:
    """The signed-in user, unless it is gone or changed its password since signing in."""
    with session_scope() as session:
        try:
            user = _signed_in(orgs_repo.read_user(session, user_id=user_id))
        except NotFound:
            return None
    if not hmac.compare_digest(user.password_tag, password_tag):
        return None
    return user


def read_memberships(user_id: str) -> list[Membership]:
    with session_scope() as session:
        return [
            Membership(o.id, o.slug, o.name, m.role)
            for m, o in orgs_repo.read_memberships(session, user_id=user_id)
        ]
