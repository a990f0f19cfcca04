"""Workflows as the API shows them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ingest_api.schemas.common import ActorRef, Page
from orbin_flows.webhooks import hook_path
from tenancy.config import get_settings


def _webhook_url(w: Any) -> str | None:
    if w.trigger_type != "webhook":
        return None
    return get_settings().api_url + hook_path(w.id)


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
    createdBy: ActorRef | None = None
    updatedBy: ActorRef | None = None
    createdAt: int
    updatedAt: int

    @classmethod
    def of(cls, w: Any) -> WorkflowPublic:
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
            createdBy=ActorRef.of(w.created_by, w.created_by_key_id),
            updatedBy=ActorRef.of(w.updated_by, w.updated_by_key_id),
            createdAt=w.created_at,
            updatedAt=w.updated_at,
        )


class WorkflowsPage(Page):
    data: list[WorkflowPublic]


class WorkflowVersionPublic(BaseModel):
    workflowId: str
    version: int
    codeHash: str
    createdBy: ActorRef | None = None
    createdAt: int
    spec: dict[str, Any]

    @classmethod
    def of(cls, v: Any) -> WorkflowVersionPublic:
        return cls(
            workflowId=v.workflow_id,
            version=v.version,
            codeHash=v.code_hash,
            createdBy=ActorRef.of(v.created_by, v.created_by_key_id),
            createdAt=v.created_at,
            spec=v.spec,
        )


class VersionsPage(Page):
    data: list[WorkflowVersionPublic]


class RollbackIn(BaseModel):
    version: int
