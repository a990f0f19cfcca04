"""Who is calling, for which organization, with which rights."""

from __future__ import annotations

from dataclasses import dataclass, field

from tenancy.errors import PermissionDenied

ROLE_RANK = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}

# Every permission a restricted key may be given; a secret key has all of them.
PERMISSIONS = (
    "events:write",
    "events:read",
    "runs:read",
    "runs:write",
    "workflows:read",
    "workflows:write",
)
# What each role may do when acting through a session (the dashboard).
ROLE_PERMISSIONS = {
    "viewer": {"events:read", "runs:read", "workflows:read"},
    "member": set(PERMISSIONS),
    "admin": set(PERMISSIONS),
    "owner": set(PERMISSIONS),
}


@dataclass(frozen=True)
class Principal:
    organization_id: str
    organization_slug: str
    plan: str
    actor_type: str  # "api" | "user" | "system"
    permissions: frozenset[str] = field(default_factory=frozenset)
    key_id: str | None = None
    key_type: str | None = None
    user_id: str | None = None
    role: str | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            who = f"a {self.key_type} key" if self.key_type else f"the {self.role} role"
            raise PermissionDenied(f"{who} may not do this (needs {permission})")

    def require_role(self, minimum: str) -> None:
        if ROLE_RANK.get(self.role or "", 0) < ROLE_RANK[minimum]:
            raise PermissionDenied(f"requires the {minimum} role or higher")


def system_principal(organization_id: str, slug: str, plan: str = "free") -> Principal:
    return Principal(organization_id, slug, plan, "system", frozenset(PERMISSIONS))


def require_admin(principal: Principal) -> None:
    """Organization-wide secrets: a secret API key, an admin or owner, or the platform."""
    if principal.actor_type == "system":
        return
    if principal.actor_type == "api":
        if principal.key_type != "secret":
            raise PermissionDenied(
                f"a {principal.key_type} key may not do this (needs a secret key)"
            )
        return
    principal.require_role("admin")
