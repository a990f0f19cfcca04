"""Integrations as the API shows them: never a credential, only which fields are set."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ingest_api.schemas.common import Page
from tenancy.integrations import Integration, credentials_of


class IntegrationPublic(BaseModel):
    id: str
    provider: str
    name: str
    config: dict[str, Any]
    credentialFields: list[str]
    status: str
    lastUsedAt: int | None = None
    lastError: str | None = None
    failureCount: int = 0
    connectedBy: str | None = None
    createdAt: int
    updatedAt: int

    @classmethod
    def of(cls, row: Integration) -> IntegrationPublic:
        return cls(
            id=row.id,
            provider=row.provider,
            name=row.name,
            config=dict(row.config or {}),
            credentialFields=sorted(credentials_of(row)),
            status=row.status,
            lastUsedAt=row.last_used_at,
            lastError=row.last_error,
            failureCount=row.failure_count or 0,
            connectedBy=row.connected_by,
            createdAt=row.created_at,
            updatedAt=row.updated_at,
        )


class IntegrationsPage(Page):
    """All of them at once (a plan allows a few): hasMore is false."""

    data: list[IntegrationPublic]


class ConnectionTest(BaseModel):
    ok: bool
    detail: str


class OAuthStart(BaseModel):
    authorizeUrl: str
