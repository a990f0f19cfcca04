"""Tenant-scoped queries. Every read of tenant data starts here, so none can forget the org."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tenancy.errors import NotFound

M = TypeVar("M")


def scoped(model: type[M], organization_id: str) -> Select[tuple[M]]:
    if not organization_id:
        raise ValueError("an organization id is required for tenant data")
    return select(model).where(model.organization_id == organization_id)  # type: ignore[attr-defined]


def get_scoped(session: Session, model: type[M], organization_id: str, obj_id: str, **kw: Any) -> M:
    """The object of this org with this id, or NotFound (also for another org's object)."""
    row = session.scalars(scoped(model, organization_id).where(model.id == obj_id)).first()  # type: ignore[attr-defined]
    if row is None:
        raise NotFound(f"{kw.get('label', model.__name__)} {obj_id} not found")
    return row
