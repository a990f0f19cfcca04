"""Keyset pages: a repository reads ``limit + 1`` rows before the cursor; ``page`` cuts them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None  # the last item's id, when there is more
    has_more: bool


def page(rows: list[Any], limit: int, cursor_of: Callable[[Any], str] | None = None) -> Page:
    """The first ``limit`` rows of ``limit + 1`` read, and where the next page starts (the
    last item's id, or what ``cursor_of`` gives for it)."""
    items = rows[:limit]
    more = len(rows) > limit
    if not (more and items):
        return Page(items, None, more)
    return Page(items, cursor_of(items[-1]) if cursor_of else items[-1].id, more)
