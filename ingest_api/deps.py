"""Dependencies that document the routes: the session, the caller, and the checks on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from tenancy.db import session_scope
from tenancy.keys import authenticate_api_key
from tenancy.principal import Principal


def get_session() -> Iterator[Session]:
    # Commits when the handler returns, before the answer is sent: a 2xx means it is stored.
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="Your API key")] = None,
) -> Principal:
    key = x_api_key
    if key is None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    # A transaction of its own, committed at once: on SQLite every transaction holds the write
    # lock, and the route's own unit of work must not wait on the caller's authentication.
    with session_scope() as session:
        principal = authenticate_api_key(session, key)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def requires(permission: str) -> Callable[[Principal], Principal]:
    def check(principal: CurrentPrincipal) -> Principal:
        principal.require(permission)
        return principal

    return check


def Allowed(permission: str) -> type[Principal]:  # noqa: N802 - reads like a type in signatures
    return Annotated[Principal, Depends(requires(permission))]  # type: ignore[return-value]
