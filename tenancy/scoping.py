"""Tenant-scoped queries. Every read of tenant data starts here, so none can forget the org."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tenancy.errors import NotFound

M = TypeVar("M")


def org_id(organization_id: str) -> str:
    """The id, or ValueError when it is empty: no query of tenant data runs without one."""
    if not organization_id:
        raise ValueError("an organization id is required for tenant data")
    return organization_id


def scoped(model: type[M], organization_id: str) -> Select[tuple[M]]:
    return select(model).where(model.organization_id == org_id(organization_id))  # type: ignore[attr-defined]


def get_scoped(session: Session, model: type[M], organization_id: str, obj_id: str, **kw: Any) -> M:
    """The object of this org with this id, or NotFound (also for another org's object)."""
    stmt = scoped(model, organization_id).where(model.id == obj_id)  # type: ignore[attr-defined]
    return first_or_not_found(
        session, stmt, f"{kw.get('label', model.__name__)} {obj_id} not found"
    )


def first_or_not_found(session: Session, stmt: Select[tuple[M]], message: str) -> M:
    """The first row of ``stmt``, or NotFound with this message."""
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound(message)
    return row


S = TypeVar("S", bound=Select[Any])


def matching(stmt: S, column: Any, pattern: str) -> S:
    """Rows whose ``column`` is ``pattern``, or starts with it when it ends in ``*``."""
    if pattern.endswith("*"):
        return stmt.where(column.startswith(pattern[:-1], autoescape=True))
    return stmt.where(column == pattern)


def in_period(stmt: S, column: Any, since: int | None, until: int | None) -> S:
    """Rows whose ``column`` (ms) is at or after ``since`` and before ``until`` (each optional)."""
    if since is not None:
        stmt = stmt.where(column >= since)
    if until is not None:
        stmt = stmt.where(column < until)
    return stmt


def newest_page(
    session: Session, stmt: Select[tuple[M]], model: type[M], after: Any, limit: int
) -> tuple[list[M], bool]:
    """A page of ``stmt``'s rows newest first (``created_at``, then ``id``), starting after the
    row ``after`` (the last of the previous page, or None), and whether there are more."""
    created_at, pk = model.created_at, model.id  # type: ignore[attr-defined]
    if after is not None:
        stmt = stmt.where(
            (created_at < after.created_at) | ((created_at == after.created_at) & (pk < after.id))
        )
    rows = list(session.scalars(stmt.order_by(created_at.desc(), pk.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
