"""Workflows as the API shows them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tenancy.models import Workflow, WorkflowVersion


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
