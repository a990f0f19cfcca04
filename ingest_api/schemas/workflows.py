"""Workflows as the API shows them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orbin_flows.webhooks import hook_path
from tenancy.config import get_settings
from tenancy.models import Workflow, WorkflowVersion


def _webhook_url(w: Workflow) -> str | None:
    if w.trigger_type != "webhook":
        return None
    return get_settings().api_url.rstrip("/") + hook_path(w.id)


class WorkflowPublic(BaseModel):
    id: str
    name: str
    slug: str
    description: str | None = None
    status: str
    version: int
    trigger: dict[str, Any]
    steps: list[dict[str, Any]]
    codeHash: str | None = None
    webhookUrl: str | None = None  # webhook triggers: where to POST (its secret: GET .../webhook)
    deployment: str | None = None
    createdBy: str | None = None
    updatedBy: str | None = None
    createdAt: int
    updatedAt: int

    @classmethod
    def of(cls, w: Workflow) -> WorkflowPublic:
        return cls(
            id=w.id,
            name=w.name,
            slug=w.slug,
            description=w.description,
            status=w.status,
            version=w.version,
            trigger=w.trigger,
            steps=w.steps,
            codeHash=w.code_hash,
            webhookUrl=_webhook_url(w),
            deployment=w.entrypoint,
            createdBy=w.created_by,
            updatedBy=w.updated_by,
            createdAt=w.created_at,
            updatedAt=w.updated_at,
        )


class WorkflowsPage(BaseModel):
    data: list[WorkflowPublic]
    nextCursor: str | None = None
    hasMore: bool


class WorkflowVersionPublic(BaseModel):
    version: int
    codeHash: str
    createdBy: str | None = None
    createdAt: int
    spec: dict[str, Any]

    @classmethod
    def of(cls, v: WorkflowVersion) -> WorkflowVersionPublic:
        return cls(
            version=v.version,
            codeHash=v.code_hash,
            createdBy=v.created_by,
            createdAt=v.created_at,
            spec=v.spec,
        )


class RollbackIn(BaseModel):
    version: int
