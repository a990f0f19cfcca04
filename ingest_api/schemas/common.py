"""Shapes every resource shares: a page of a list (``{data, nextCursor, hasMore}``, the one
shape of every list the API answers) and an actor (who created or changed something)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from tenancy.actors import actor_ref
from tenancy.pagination import Page as RowsPage


class ActorRef(BaseModel):
    """A user (signed in) or an API key; null when the platform did it (a schedule, a
    webhook, an ``emit`` step)."""

    type: Literal["user", "key"]
    id: str

    @classmethod
    def of(cls, user_id: str | None, key_id: str | None) -> ActorRef | None:
        ref = actor_ref(user_id, key_id)
        return cls(**ref) if ref else None


class Page(BaseModel):
    """A page of a list, newest first unless the route says otherwise; pass ``nextCursor``
    as ``cursor`` for the next one."""

    data: list[Any]
    nextCursor: str | None = Field(None, description="cursor of the next page, when hasMore")
    hasMore: bool = False

    @classmethod
    def of_rows(cls, rows: RowsPage, present: Any) -> Any:
        return cls(
            data=[present(r) for r in rows.items],
            nextCursor=rows.next_cursor,
            hasMore=rows.has_more,
        )
