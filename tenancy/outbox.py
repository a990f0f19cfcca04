"""The outbox: the durable queue of runs for the workers to execute."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy.changes import OUTBOX_CHANNEL, publish
from tenancy.clock import now_ms
from tenancy.db import delete_oldest
from tenancy.models import OutboxItem, WorkflowRun


@dataclass(frozen=True)
class ClaimedItem:
    outbox_id: int
    run_id: str
    organization_id: str
    attempts: int


def claim_outbox(
    session: Session, *, worker_id: str, limit: int, lease_ms: int
) -> list[ClaimedItem]:
    """Take the oldest due items; a claim left unfinished (worker died) is due again later."""
    now = now_ms()
    q = (
        select(OutboxItem)
        .where(OutboxItem.status.in_(("pending", "claimed")), OutboxItem.available_at <= now)
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    items = list(session.scalars(q))
    for item in items:
        item.status = "claimed"
        item.claimed_by = worker_id
        item.attempts += 1
        item.available_at = now + lease_ms
    session.flush()
    return [ClaimedItem(i.id, i.run_id, i.organization_id, i.attempts) for i in items]


def finish_outbox(session: Session, *, outbox_id: int) -> None:
    session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id).values(status="done"))


def prune_finished_outbox(session: Session, *, older_than_ms: int, batch: int) -> int:
    """Delete up to ``batch`` done items created before ``older_than_ms``: nothing reads a
    done item (its run holds the outcome); two cleaners at once take different rows."""
    return delete_oldest(
        session,
        OutboxItem,
        OutboxItem.status == "done",
        OutboxItem.created_at < older_than_ms,
        batch=batch,
    )


def retry_outbox(session: Session, *, outbox_id: int, error: str, delay_ms: int) -> None:
    session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == outbox_id)
        .values(status="pending", last_error=error[:2000], available_at=now_ms() + delay_ms)
    )


def count_pending_outbox(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.status != "done")
        )
        or 0
    )


def enqueue_run(session: Session, *, run: WorkflowRun) -> None:
    """A new outbox item for a run (e.g. a canceled one whose Prefect flow run must follow)."""
    session.add(OutboxItem(organization_id=run.organization_id, run_id=run.id))
    publish(session, OUTBOX_CHANNEL, {"run": run.id})


def dead_letter(session: Session, *, outbox_id: int, run_id: str, message: str) -> None:
    """A run that could not be started: failed with the reason (and its event), item done."""
    run = session.get(WorkflowRun, run_id)
    if run is not None and run.status not in runs_repo.RUN_FINAL:
        runs_repo.finish_run(session, run=run, status="failed", error={"message": message})
        if run.event_id:
            events_repo.mark_event(session, event_pk=run.event_id, status="failed", error=message)
    finish_outbox(session, outbox_id=outbox_id)
