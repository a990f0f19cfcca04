"""One way to turn a credential into a principal: an API key, or a session token plus the
organization it acts in (``x-orbin-org``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tenancy.identity.members import session_principal
from tenancy.identity.sessions import authenticate_session, is_session_token
from tenancy.keys import authenticate_api_key
from tenancy.models import User, UserSession
from tenancy.principal import Principal


def authenticate(session: Session, credential: str | None, organization: str | None) -> Principal:
    if is_session_token(credential):
        user, us = authenticate_session(session, credential)
        return session_principal(session, user, organization, bound_to=us.organization_id)
    return authenticate_api_key(session, credential)


def authenticate_user(session: Session, credential: str | None) -> tuple[User, UserSession]:
    return authenticate_session(session, credential)
