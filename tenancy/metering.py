"""Metering: executions per day and workflow, usage notices at 70/90/100 %, retention by plan.

An execution is a run started: each ``workflow_runs`` row is written, with the period's counter
(``tenancy.usage.reserve_executions``), in one transaction, so a run is counted exactly once
whatever the concurrency or a crash (replays, resumes and schedule fires are runs; step
retries are not). The series read those rows, plus ``usage_rollups`` for the days whose runs
retention has pruned (folded in by the transaction that deletes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenancy import clock
from tenancy.billing import current_period, owner_emails, owner_ids, require_billing_read
from tenancy.billing_mail import queue_billing_mail
from tenancy.billing_models import UsageNotice, UsageRollup
from tenancy.clock import now_ms
from tenancy.errors import InvalidInput
from tenancy.models import (
    Artifact,
    Event,
    Notification,
    Organization,
    OutboxItem,
    StepExecution,
    Workflow,
    WorkflowRun,
)
from tenancy.plans import get_plan
from tenancy.principal import Principal

DAY_MS = 86_400_000
THRESHOLDS = (70, 90, 100)
_FINAL = ("completed", "failed", "canceled", "timed_out")
_MAX_DAYS = 400


def _day_str(index: int) -> str:
    return datetime.fromtimestamp(index * 86_400, UTC).date().isoformat()


def _day_index(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) // 86_400


def parse_instant(value: str | None, *, field: str, end: bool = False) -> int | None:
    """``2026-12-01`` (a day: its start, or its end for ``to``), an ISO time, or ms."""
    return clock.parse_instant(value, field=field, end=end)


def usage_series(
    session: Session,
    principal: Principal,
    *,
    start: int | None,
    end: int | None,
    group_by: str,
) -> dict[str, Any]:
    """``GET /v1/usage``: executions per day (every day of the range, zeros included) or per
    workflow, over ``[start, end)`` (default: the current period)."""
    require_billing_read(principal)
    if group_by not in ("day", "workflow"):
        raise InvalidInput(
            "groupBy must be day or workflow", details=[{"field": "groupBy", "value": group_by}]
        )
    org = session.get(Organization, principal.organization_id)
    assert org is not None
    period = current_period(org)
    start = period.start if start is None else start
    end = period.end if end is None else end
    if end <= start:
        raise InvalidInput("to must be after from", details=[{"field": "to"}])
    if end - start > _MAX_DAYS * DAY_MS:
        raise InvalidInput(
            f"the range may span at most {_MAX_DAYS} days", details=[{"field": "to"}]
        )
    oid = principal.organization_id
    runs = (
        WorkflowRun.organization_id == oid,
        WorkflowRun.created_at >= start,
        WorkflowRun.created_at < end,
    )
    first_day, last_day = start // DAY_MS, (end - 1) // DAY_MS
    rolled = session.execute(
        select(UsageRollup.day, UsageRollup.workflow_id, UsageRollup.executions).where(
            UsageRollup.organization_id == oid,
            UsageRollup.day >= _day_str(first_day),
            UsageRollup.day <= _day_str(last_day),
        )
    ).all()
    if group_by == "day":
        day = WorkflowRun.created_at // DAY_MS
        counts: dict[int, int] = {}
        for d, n in session.execute(select(day, func.count()).where(*runs).group_by(day)):
            counts[int(d)] = counts.get(int(d), 0) + int(n)
        for d, _wf, n in rolled:
            counts[_day_index(d)] = counts.get(_day_index(d), 0) + int(n)
        series = [
            {"day": _day_str(i), "executions": counts.get(i, 0)}
            for i in range(first_day, last_day + 1)
        ]
    else:
        per: dict[str, int] = {}
        for wf, n in session.execute(
            select(WorkflowRun.workflow_id, func.count())
            .where(*runs)
            .group_by(WorkflowRun.workflow_id)
        ):
            per[wf] = per.get(wf, 0) + int(n)
        for _d, wf, n in rolled:
            per[wf] = per.get(wf, 0) + int(n)
        names = {
            w.id: w
            for w in session.scalars(
                select(Workflow).where(Workflow.organization_id == oid, Workflow.id.in_(list(per)))
            )
        }
        series = [
            {
                "workflowId": wf,
                "slug": names[wf].slug if wf in names else None,
                "name": names[wf].name if wf in names else None,
                "executions": n,
            }
            for wf, n in sorted(per.items(), key=lambda kv: -kv[1])
        ]
    return {
        "organizationId": oid,
        "from": start,
        "to": end,
        "groupBy": group_by,
        "total": sum(s["executions"] for s in series),
        "series": series,
    }


# --- usage notices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageNoticeSent:
    organization_id: str
    threshold: int
    executions: int
    limit: int
    recipients: tuple[str, ...]


def send_due_notices(session: Session, *, now: int | None = None) -> list[UsageNoticeSent]:
    """For each organization past 70, 90 or 100 % of its period's limit: one in-app
    notification per owner and one e-mail to the owners and the billing e-mail, once per
    threshold and period whichever process gets there first (the unique row decides). When
    several thresholds are crossed at once, only the highest is announced."""
    now = now_ms() if now is None else now
    due = session.scalars(
        select(Organization).where(
            Organization.usage_reset_at > now,
            Organization.usage_limit_executions > 0,
            Organization.usage_current_executions * 100
            >= Organization.usage_limit_executions * THRESHOLDS[0],
        )
    ).all()
    sent = []
    for org in due:
        used, limit = org.usage_current_executions, org.usage_limit_executions
        crossed = [t for t in THRESHOLDS if used * 100 >= t * limit]
        new = [t for t in crossed if _claim(session, org.id, org.usage_reset_at, t)]
        if new:
            sent.append(_announce(session, org, max(new), used, limit))
    return sent


def _claim(session: Session, organization_id: str, period_end: int, threshold: int) -> bool:
    exists = session.scalar(
        select(UsageNotice.id).where(
            UsageNotice.organization_id == organization_id,
            UsageNotice.period_end == period_end,
            UsageNotice.threshold == threshold,
        )
    )
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                UsageNotice(
                    organization_id=organization_id, period_end=period_end, threshold=threshold
                )
            )
            session.flush()
    except IntegrityError:
        return False
    return True


def _announce(
    session: Session, org: Organization, threshold: int, used: int, limit: int
) -> UsageNoticeSent:
    plan = get_plan(org.plan)
    end = datetime.fromtimestamp(org.usage_reset_at / 1000, UTC).date().isoformat()
    if threshold >= 100:
        title = f"{org.name}: 100% of the monthly execution limit reached"
        consequence = (
            "Further runs are metered as overage."
            if plan.overage
            else "New runs are refused (HTTP 429, execution_limit_reached) and their events "
            "kept as dead letters until the period ends or the plan is upgraded."
        )
    else:
        title = f"{org.name}: {threshold}% of the monthly execution limit used"
        consequence = "At 100% new runs are refused; upgrade the plan to raise the limit."
    text = (
        f"Your organization {org.name} ({org.slug}) has used {used} of the {limit} executions "
        f"of its {plan.name} plan this period ({threshold}% threshold, "
        f"{used * 100 // max(limit, 1)} percent). The period ends on {end}.\n\n{consequence}\n"
    )
    for user_id in owner_ids(session, org.id):
        session.add(
            Notification(
                user_id=user_id,
                organization_id=org.id,
                type="usage_threshold",
                title=title,
                message=text.strip(),
                link="/billing",
            )
        )
    to = owner_emails(session, org.id)
    for address in to:  # one e-mail each: no recipient sees the others' addresses
        queue_billing_mail(session, to=[address], subject=title, text=text)
    return UsageNoticeSent(org.id, threshold, used, limit, tuple(to))


def notify_owners(session: Session, org: Organization, *, kind: str, title: str, text: str):
    """An in-app notification per owner and one e-mail (e.g. a failed payment)."""
    for user_id in owner_ids(session, org.id):
        session.add(
            Notification(
                user_id=user_id,
                organization_id=org.id,
                type=kind,
                title=title,
                message=text,
                link="/billing",
            )
        )
    for address in owner_emails(session, org.id):
        queue_billing_mail(session, to=[address], subject=title, text=text)


# --- retention -------------------------------------------------------------------------------


def prune_expired(session: Session, *, batch: int, now: int | None = None) -> int:
    """One batch (at most ``batch`` runs and ``batch`` events) of the oldest finished runs and
    events past their organization's retention, across organizations. The runs' executions
    are folded into ``usage_rollups`` in the same transaction, so the series keep them."""
    now = now_ms() if now is None else now
    deleted = 0
    for org_id, plan_name in session.execute(select(Organization.id, Organization.plan)).all():
        if deleted >= batch:
            break
        cutoff = now - get_plan(plan_name).retention_days * DAY_MS
        deleted += _prune_org(session, org_id, cutoff, batch - deleted)
    return deleted


def _add_rollups(session: Session, org_id: str, roll: dict[tuple[str, str], int]) -> None:
    """Add to the rollups with one upsert (two pruners adding to one day never conflict)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    stmt = upsert(UsageRollup).values(
        [
            {"organization_id": org_id, "day": day, "workflow_id": wf, "executions": n}
            for (day, wf), n in sorted(roll.items())
        ]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["organization_id", "day", "workflow_id"],
            set_={"executions": UsageRollup.executions + stmt.excluded.executions},
        )
    )


def _prune_org(session: Session, org_id: str, cutoff: int, batch: int) -> int:
    rows = session.execute(
        select(WorkflowRun.id, WorkflowRun.workflow_id, WorkflowRun.created_at)
        .where(
            WorkflowRun.organization_id == org_id,
            WorkflowRun.created_at < cutoff,
            WorkflowRun.status.in_(_FINAL),
        )
        .order_by(WorkflowRun.created_at)
        .limit(batch)
        # Two workers pruning at once take different runs (PostgreSQL; SQLite has one writer),
        # so no run is folded into the rollups twice.
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        ids = [r[0] for r in rows]
        roll: dict[tuple[str, str], int] = {}
        for _id, wf, created in rows:
            key = (_day_str(created // DAY_MS), wf)
            roll[key] = roll.get(key, 0) + 1
        _add_rollups(session, org_id, roll)
        session.execute(delete(StepExecution).where(StepExecution.workflow_run_id.in_(ids)))
        session.execute(delete(OutboxItem).where(OutboxItem.run_id.in_(ids)))
        session.execute(delete(Artifact).where(Artifact.workflow_run_id.in_(ids)))
        session.execute(delete(WorkflowRun).where(WorkflowRun.id.in_(ids)))
    referenced = select(WorkflowRun.event_id).where(WorkflowRun.event_id.is_not(None))
    event_ids = list(
        session.scalars(
            select(Event.id)
            .where(
                Event.organization_id == org_id,
                Event.created_at < cutoff,
                Event.id.not_in(referenced.where(WorkflowRun.organization_id == org_id)),
            )
            .order_by(Event.created_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    if event_ids:
        session.execute(delete(Event).where(Event.id.in_(event_ids)))
    return len(rows) + len(event_ids)
