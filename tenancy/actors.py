"""Who did something: a user (signed in), or an API key. Recorded on workflows, their
versions and runs; answered everywhere in one shape, ``{"type": "user" | "key", "id"}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenancy.principal import Principal


@dataclass(frozen=True)
class Actor:
    user_id: str | None = None
    key_id: str | None = None

    @classmethod
    def of(cls, principal: Principal | None) -> Actor:
        """A user acting through a session, else the key; the platform itself is nobody."""
        if principal is None:
            return NOBODY
        if principal.user_id:
            return cls(user_id=principal.user_id)
        if principal.key_id:
            return cls(key_id=principal.key_id)
        return NOBODY

    def ref(self) -> dict[str, str] | None:
        return actor_ref(self.user_id, self.key_id)


NOBODY = Actor()


def actor_ref(user_id: str | None, key_id: str | None) -> dict[str, Any] | None:
    """The API's shape of an actor; None when the platform did it (a schedule, a webhook)."""
    if user_id:
        return {"type": "user", "id": user_id}
    if key_id:
        return {"type": "key", "id": key_id}
    return None
