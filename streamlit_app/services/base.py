"""What every action shares: acting as the signed-in user, and errors turned into messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from tenancy import changes
from tenancy import orgs as orgs_repo
from tenancy.db import Session, read_scope, session_scope
from tenancy.errors import OrbinError
from tenancy.principal import Principal

T = TypeVar("T")


@dataclass(frozen=True)
class Actor:
    """Who acts, and where: the signed-in user in the organization the page shows."""

    user_id: str
    organization_id: str


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    value: Any = None


@contextmanager
def acting(actor: Actor) -> Iterator[tuple[Session, Principal]]:
    """One transaction, with the user's rights in the organization read inside it."""
    with session_scope() as session:
        principal = orgs_repo.user_principal(
            session, user_id=actor.user_id, organization_id=actor.organization_id
        )
        yield session, principal


def principal_of(actor: Actor) -> Principal:
    """The user's rights in the organization, read now, for use cases that open their own
    short transactions around a slow outside call (a provider, Stripe, the model)."""
    with read_scope() as session:
        return orgs_repo.user_principal(
            session, user_id=actor.user_id, organization_id=actor.organization_id
        )


def attempt(done: str, fn: Callable[[], T]) -> Outcome:
    """Run a use case that needs no transaction of ours; a refusal becomes a message."""
    try:
        value = fn()
    except OrbinError as exc:
        return Outcome(False, exc.message, exc.details)
    return Outcome(True, done, value)


def act(actor: Actor, done: str, fn: Callable[[Session, Principal], T]) -> Outcome:
    """Run a use case as the actor; a refusal or bad input becomes a message, never a crash."""
    try:
        with acting(actor) as (session, principal):
            value = fn(session, principal)
    except OrbinError as exc:
        return Outcome(False, exc.message, exc.details)
    return Outcome(True, done, value)


def read(fn: Callable[[Session], T]) -> T:
    with read_scope() as session:
        return fn(session)


def latest_change() -> int:
    """The change feed's newest sequence number: a live panel drawn now has seen up to it."""
    return read(changes.latest_change_seq)
