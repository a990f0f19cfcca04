"""Dependencies that document the routes: the session, the caller, and the checks on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request

from ingest_api.auth import api_key_of, authenticate
from tenancy.db import Session, session_scope
from tenancy.identity.sessions import SignedInUser, signed_in_user
from tenancy.principal import Principal


def get_session() -> Iterator[Session]:
    # Commits when the handler returns, before the answer is sent: a 2xx means it is stored.
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def credential_of(request: Request) -> str | None:
    return api_key_of(request.scope["headers"])


def get_principal(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="Your API key")] = None,
    x_orbin_org: Annotated[
        str | None,
        Header(description="With a session token: the slug of the organization to act in"),
    ] = None,
) -> Principal:
    key = x_api_key if x_api_key is not None else credential_of(request)
    principal = authenticate(key, x_orbin_org)
    request.state.principal = principal
    return principal


def get_signed_in(request: Request) -> SignedInUser:
    """The signed-in user behind ``Authorization: Bearer ses_...`` (no organization needed)."""
    with session_scope() as session:
        return signed_in_user(session, credential_of(request))


SignedIn = Annotated[SignedInUser, Depends(get_signed_in)]


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def requires(permission: str) -> Callable[[Principal], Principal]:
    def check(principal: CurrentPrincipal) -> Principal:
        principal.require(permission)
        return principal

    return check


def Allowed(permission: str) -> type[Principal]:  # noqa: N802 - reads like a type in signatures
    return Annotated[Principal, Depends(requires(permission))]  # type: ignore[return-value]
