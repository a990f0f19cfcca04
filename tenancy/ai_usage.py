"""AI requests per organization: the rate limit's window and the tokens metered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from tenancy.clock import now_ms
from tenancy.db import Base
from tenancy.models import AutoPK, _created, _org


class AIUsage(Base):
    __tablename__ = "ai_usage"
    __table_args__ = (Index("ix_ai_usage_org_created", "organization_id", "created_at"),)

    id: Mapped[int] = mapped_column(AutoPK, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = _org()
    feature: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="started")
    requests: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    actor_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[int] = _created()


@dataclass(frozen=True)
class Reservation:
    id: int
    in_window: int
    oldest_at: int | None


def reserve_ai_request(
    session: Session,
    *,
    organization_id: str,
    feature: str,
    model: str,
    actor_id: str | None,
    window_ms: int = 60_000,
) -> Reservation:
    """Write the request's row first, then count the window including it: two concurrent
    callers can both be refused at the edge, never both let through past the limit."""
    row = AIUsage(organization_id=organization_id, feature=feature, model=model, actor_id=actor_id)
    session.add(row)
    session.flush()
    since = now_ms() - window_ms
    count, oldest = session.execute(
        select(func.count(), func.min(AIUsage.created_at)).where(
            AIUsage.organization_id == organization_id,
            AIUsage.created_at > since,
            AIUsage.status != "refused",
        )
    ).one()
    return Reservation(row.id, int(count), oldest)


def refuse_ai_request(session: Session, *, organization_id: str, usage_id: int) -> None:
    session.execute(
        update(AIUsage)
        .where(AIUsage.organization_id == organization_id, AIUsage.id == usage_id)
        .values(status="refused")
    )


def finish_ai_request(
    session: Session,
    *,
    organization_id: str,
    usage_id: int,
    status: str,
    requests: int,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    session.execute(
        update(AIUsage)
        .where(AIUsage.organization_id == organization_id, AIUsage.id == usage_id)
        .values(
            status=status,
            requests=requests,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
    )


def read_ai_usage(
    session: Session, *, organization_id: str, start: int, end: int
) -> list[dict[str, Any]]:
    """Per feature: calls (refused ones apart), model requests and tokens, in [start, end)."""
    rows = session.execute(
        select(
            AIUsage.feature,
            func.count().filter(AIUsage.status != "refused"),
            func.count().filter(AIUsage.status == "refused"),
            func.coalesce(func.sum(AIUsage.requests), 0),
            func.coalesce(func.sum(AIUsage.prompt_tokens), 0),
            func.coalesce(func.sum(AIUsage.completion_tokens), 0),
        )
        .where(
            AIUsage.organization_id == organization_id,
            AIUsage.created_at >= start,
            AIUsage.created_at < end,
        )
        .group_by(AIUsage.feature)
        .order_by(AIUsage.feature)
    ).all()
    return [
        {
            "feature": feature,
            "calls": int(calls),
            "refused": int(refused),
            "modelRequests": int(requests),
            "promptTokens": int(prompt),
            "completionTokens": int(completion),
            "totalTokens": int(prompt) + int(completion),
        }
        for feature, calls, refused, requests, prompt, completion in rows
    ]
