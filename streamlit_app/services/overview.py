"""The overview screen: usage, the last 24 hours, executions per day, recent activity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from streamlit_app.services.base import read
from tenancy import dashboard_queries as q
from tenancy import runs as runs_repo

DAY_MS = q.DAY_MS


@dataclass(frozen=True)
class Usage:
    plan: str
    used: int
    limit: int
    reset_at: int
    billing_email: str | None
    customer: str | None

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class Overview:
    counts_24h: dict[str, int]
    success_rate: float | None
    average_ms: float | None
    workflows: dict[str, int]
    usage: Usage
    per_day: list[tuple[date, int]]
    recent: list[q.RunListRow]


def usage(organization_id: str) -> Usage:
    u = read(lambda s: q.read_usage(s, organization_id=organization_id))
    return Usage(u["plan"], u["used"], u["limit"], u["reset_at"], u["billing_email"], u["customer"])


def overview(organization_id: str, *, now: int, days: int = 14) -> Overview:
    def load(session):  # type: ignore[no-untyped-def]
        counts = runs_repo.count_runs_by_status(
            session, organization_id=organization_id, since=now - DAY_MS
        )
        avg = q.average_duration_ms(session, organization_id=organization_id, since=now - DAY_MS)
        wfs = q.count_workflows_by_status(session, organization_id=organization_id)
        first_day = now // DAY_MS - (days - 1)
        per = q.executions_per_day(
            session, organization_id=organization_id, since=first_day * DAY_MS
        )
        recent = q.read_run_page(session, organization_id=organization_id, limit=8)
        return counts, avg, wfs, first_day, per, recent

    counts, avg, wfs, first_day, per, recent = read(load)
    finished = counts.get("completed", 0) + counts.get("failed", 0) + counts.get("timed_out", 0)
    rate = counts.get("completed", 0) / finished if finished else None
    per_day = [
        (datetime.fromtimestamp(d * DAY_MS / 1000, UTC).date(), per.get(d, 0))
        for d in range(first_day, first_day + days)
    ]
    return Overview(counts, rate, avg, wfs, usage(organization_id), per_day, recent)
