"""Who is calling, for which organization, with which rights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from tenancy.errors import PermissionDenied

Role = Literal["viewer", "member", "admin", "owner"]
ROLE_RANK = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}
ROLES: tuple[str, ...] = get_args(Role)

# Every permission a restricted key may be given; a secret key has all of them.
PERMISSIONS = (
    "events:write",
    "events:read",
    "runs:read",
    "runs:write",
    "workflows:read",
    "workflows:write",
    "ai:use",
)
# Organization administration: a secret key has these too; a restricted key may be given them.
ADMIN_PERMISSIONS = (
    "members:read",
    "members:write",
    "keys:read",
    "keys:write",
    "audit:read",
    "org:write",
    "billing:read",
    "billing:write",
)
ALL_PERMISSIONS = PERMISSIONS + ADMIN_PERMISSIONS
Permission = Literal[ALL_PERMISSIONS]  # type: ignore[valid-type] # one of them, for schemas

# The role matrix: each permission and the lowest role that holds it (roles are ordered).
# The README's table is generated from it (tests/unit/test_identity_matrix.py checks it).
MATRIX: dict[str, str] = {
    "events:read": "viewer",
    "runs:read": "viewer",
    "workflows:read": "viewer",
    "members:read": "viewer",
    "events:write": "member",
    "runs:write": "member",
    "workflows:write": "member",
    "ai:use": "member",
    "members:write": "admin",
    "keys:read": "admin",
    "keys:write": "admin",
    "audit:read": "admin",
    "org:write": "admin",
    "sso:manage": "admin",
    "billing:read": "admin",
    "billing:write": "owner",
    "org:delete": "owner",
    "org:transfer": "owner",
}
ROLES = ("viewer", "member", "admin", "owner")

# What each role may do when acting through a session (the dashboard, a signed-in client).
ROLE_PERMISSIONS = {
    role: {p for p, lowest in MATRIX.items() if ROLE_RANK[role] >= ROLE_RANK[lowest]}
    for role in ROLES
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
    return Principal(organization_id, slug, plan, "system", frozenset(MATRIX))


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
