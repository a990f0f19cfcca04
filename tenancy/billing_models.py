"""Billing's own tables (migration 0007_billing)."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenancy.clock import now_ms
from tenancy.db import Base

AutoPK = BigInteger().with_variant(Integer(), "sqlite")


class StripeEvent(Base):
    """A Stripe event id, stored in the transaction that applies it: applied once."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    organization_id: Mapped[str | None] = mapped_column(String(36))
    outcome: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class UsageNotice(Base):
    """One row per organization, period and threshold: the notice is sent by its inserter."""

    __tablename__ = "usage_notices"
    __table_args__ = (UniqueConstraint("organization_id", "period_end", "threshold"),)

    id: Mapped[int] = mapped_column(AutoPK, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organizations.id", ondelete="CASCADE")
    )
    period_end: Mapped[int] = mapped_column(BigInteger)
    threshold: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class UsageRollup(Base):
    """Executions per day and workflow of runs that retention has pruned."""

    __tablename__ = "usage_rollups"

    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    executions: Mapped[int] = mapped_column(Integer)


class MeterReport(Base):
    """A run of a metered plan, to report to Stripe's meter events (identifier = run id)."""

    __tablename__ = "meter_reports"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    stripe_customer_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    reported_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
