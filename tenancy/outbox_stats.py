"""Operators' view of the outbox: how many runs wait to be handed to Prefect, and for how long.

Across organizations on purpose (an operator's metric, never served to a tenant)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.db import session_scope
from tenancy.models import OutboxItem


def read_outbox_stats(session: Session) -> tuple[int, float]:
    """(items not done, age in seconds of the oldest of them; 0 when there is none)."""
    count, oldest = session.execute(
        select(func.count(), func.min(OutboxItem.created_at)).where(OutboxItem.status != "done")
    ).one()
    age = max(0.0, (now_ms() - oldest) / 1000) if oldest else 0.0
    return int(count or 0), age


def outbox_probe() -> tuple[int, float]:
    with session_scope() as session:
        return read_outbox_stats(session)
