"""Reading the caller's credential: one place for the headers (an API key, or a session token
with the organization it acts in) and their check."""

from __future__ import annotations

from tenancy.db import session_scope
from tenancy.identity.credentials import authenticate as authenticate_credential
from tenancy.principal import Principal


def api_key_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key from ``x-api-key``, else from ``Authorization: Bearer`` (raw ASGI headers)."""
    bearer = None
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1")
        if name == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                bearer = text[7:].strip()
    return bearer


def org_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """With a session token: the organization's slug from ``x-orbin-org``."""
    for name, value in headers:
        if name == b"x-orbin-org":
            return value.decode("latin-1")
    return None


def authenticate(key: str | None, organization: str | None = None) -> Principal:
    """The credential's principal, or Unauthenticated (NotFound: an organization the signed-in
    user is not a member of).

    A transaction of its own, committed at once: on SQLite every transaction holds the write
    lock, and the route's own unit of work must not wait on the caller's authentication.
    """
    with session_scope() as session:
        return authenticate_credential(session, key, organization)
