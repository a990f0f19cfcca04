"""Identity's own tables: one-time tickets (an MFA step, a single sign-on round trip), the
organizations' OpenID Connect settings and the provider identities linked to accounts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenancy.clock import new_id, now_ms
from tenancy.db import Base, JSONType

ID = String(36)


class AuthTicket(Base):
    """A short-lived, single-use secret between two steps of a sign-in, stored as SHA-256:
    ``mfa`` (the password was right, the code is to come), ``sso_state`` (a redirect to the
    provider is under way), ``sso_code`` (the dashboard's one-time code after SSO)."""

    __tablename__ = "auth_tickets"
    __table_args__ = (Index("ix_auth_tickets_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    organization_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class SsoConfig(Base):
    """An organization's OpenID Connect provider; the client secret encrypted at rest."""

    __tablename__ = "sso_configs"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(300))
    client_secret_enc: Mapped[str] = mapped_column(Text)
    allowed_domains: Mapped[list[str]] = mapped_column(JSONType)
    default_role: Mapped[str] = mapped_column(String(20))
    updated_by: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms, onupdate=now_ms)


class SsoIdentity(Base):
    """An account's identity at a provider (issuer + subject): how it is found again."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("organization_id", "issuer", "subject"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    last_login_at: Mapped[int | None] = mapped_column(BigInteger)
