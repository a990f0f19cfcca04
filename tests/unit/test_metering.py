"""Metering on both databases: runs counted exactly once under concurrency, the limit held,
usage notices once per threshold and period, retention that keeps the usage series, and
meter events to Stripe with the run id as identifier."""

from __future__ import annotations

import email
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.stripe_server import StripeServer
from tests.unit.ingest_support import active_workflow, set_usage_limit


def principal_of(org_id: str):
    from tenancy.db import session_scope
    from tenancy.models import Organization
    from tenancy.principal import system_principal

    with session_scope() as session:
        org = session.get(Organization, org_id)
        return system_principal(org.id, org.slug, org.plan)


def counts(org_id: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from tenancy.db import session_scope
    from tenancy.models import Organization, WorkflowRun

    with session_scope() as session:
        runs = session.scalar(
            select(func.count())
            .select_from(WorkflowRun)
            .where(WorkflowRun.organization_id == org_id)
        )
        return session.get(Organization, org_id).usage_current_executions, runs


def ingest_concurrently(org_id: str, *, threads: int, per_thread: int) -> list[object]:
    from orbin_flows.ingest import NewEvent, ingest

    principal = principal_of(org_id)
    start = threading.Barrier(threads)

    def send(i: int) -> list[object]:
        start.wait()
        out = []
        for j in range(per_thread):
            out += ingest(principal, [NewEvent("job.run", "test", {"i": i, "j": j})])
        return out

    with ThreadPoolExecutor(threads) as pool:
        return [o for chunk in pool.map(send, range(threads)) for o in chunk]


def test_each_run_is_counted_once_under_concurrency(make_org) -> None:
    from tenancy.errors import ExecutionLimitReached

    org = make_org("busy")
    active_workflow(org.id, "job.run")
    set_usage_limit(org.id, 45)
    outcomes = ingest_concurrently(org.id, threads=6, per_thread=10)
    refused = [o for o in outcomes if isinstance(o, ExecutionLimitReached)]
    assert len(refused) == 15  # the limit holds: exactly 45 of 60 started
    assert counts(org.id) == (45, 45)


def test_usage_series_counts_what_the_counter_counts(make_org) -> None:
    from tenancy.db import session_scope
    from tenancy.metering import usage_series

    org = make_org("series")
    active_workflow(org.id, "job.run")
    ingest_concurrently(org.id, threads=4, per_thread=5)
    with session_scope() as session:
        day = usage_series(session, principal_of(org.id), start=None, end=None, group_by="day")
    assert day["total"] == 20 == counts(org.id)[0]


def add_owner(org_id: str, email_: str) -> str:
    from tenancy.db import session_scope
    from tenancy.orgs import add_member, create_user

    with session_scope() as session:
        user = create_user(session, email=email_, name="O", password=None)
        add_member(session, organization_id=org_id, user_id=user.id, role="owner")
        return user.id


def set_used(org_id: str, used: int, *, reset_at: int | None = None) -> None:
    from tenancy.db import session_scope
    from tenancy.models import Organization

    with session_scope() as session:
        org = session.get(Organization, org_id)
        org.usage_current_executions = used
        org.usage_reset_at = reset_at or int(time.time() * 1000) + 86_400_000


def notices(org_id: str) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from tenancy.db import session_scope
    from tenancy.models import Notification

    with session_scope() as session:
        return [
            (n.user_id, n.title)
            for n in session.scalars(
                select(Notification).where(Notification.organization_id == org_id)
            )
        ]


def outbox(tmp_path: Path) -> list[email.message.Message]:
    return [
        email.message_from_bytes(p.read_bytes())
        for p in sorted((tmp_path / "home" / "outbox").glob("*.eml"))
    ]


def run_notices_concurrently(n: int) -> int:
    from tenancy.db import session_scope
    from tenancy.metering import send_due_notices

    start = threading.Barrier(n)

    def once(_: int) -> int:
        start.wait()
        for _attempt in range(5):  # SQLite: a busy database is retried, as the worker's tick is
            try:
                with session_scope() as session:
                    return len(send_due_notices(session))
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        return 0

    with ThreadPoolExecutor(n) as pool:
        return sum(pool.map(once, range(n)))


def test_notices_once_per_threshold_and_period(make_org, tmp_path) -> None:
    from tenancy.db import session_scope
    from tenancy.models import Organization

    org = make_org("watch")
    with session_scope() as session:
        session.get(Organization, org.id).billing_email = "billing@watch.test"
    a = add_owner(org.id, "a@watch.test")
    b = add_owner(org.id, "b@watch.test")
    set_usage_limit(org.id, 10)
    set_used(org.id, 6)
    assert run_notices_concurrently(4) == 0 and outbox(tmp_path) == []
    set_used(org.id, 7)
    assert run_notices_concurrently(4) == 1  # four processes, one notice
    mails = outbox(tmp_path)  # one e-mail each: both owners and the billing e-mail
    assert sorted(m["To"] for m in mails) == ["a@watch.test", "b@watch.test", "billing@watch.test"]
    assert all("70%" in m["Subject"] and "7 of the 10" in m.get_payload() for m in mails)
    assert sorted(u for u, _ in notices(org.id)) == sorted([a, b])
    assert run_notices_concurrently(2) == 0  # once per threshold and period
    set_used(org.id, 10)  # 90 and 100 crossed at once: the highest is announced
    assert run_notices_concurrently(2) == 1
    subjects = [m["Subject"] for m in outbox(tmp_path)]
    assert len(subjects) == 6 and sum("100%" in x for x in subjects) == 3
    assert not any("90%" in x for x in subjects) and len(notices(org.id)) == 4
    set_used(org.id, 8, reset_at=int(time.time() * 1000) + 40 * 86_400_000)  # a new period
    assert run_notices_concurrently(2) == 1 and len(outbox(tmp_path)) == 9


def test_a_rolled_back_notice_sends_no_mail(make_org, tmp_path) -> None:
    from tenancy.db import session_scope
    from tenancy.metering import send_due_notices

    org = make_org("oops")
    add_owner(org.id, "o@oops.test")
    set_usage_limit(org.id, 10)
    set_used(org.id, 9)
    with pytest.raises(RuntimeError):
        with session_scope() as session:
            assert send_due_notices(session)
            raise RuntimeError("crash before commit")
    assert outbox(tmp_path) == []
    with session_scope() as session:
        assert len(send_due_notices(session)) == 1  # the next pass sends it
    assert len(outbox(tmp_path)) == 1


def test_retention_prunes_by_plan_and_keeps_the_series(make_org) -> None:
    from sqlalchemy import func, select, update

    from tenancy.db import session_scope
    from tenancy.metering import DAY_MS, prune_expired, usage_series
    from tenancy.models import Event, StepExecution, WorkflowRun

    org = make_org("old")  # free: 7 days
    keep = make_org("keep", plan="pro")  # 30 days
    for o in (org, keep):
        active_workflow(o.id, "job.run")
        ingest_concurrently(o.id, threads=1, per_thread=5)
    ten_days_ago = int(time.time() * 1000) - 10 * DAY_MS
    with session_scope() as session:
        session.execute(update(WorkflowRun).values(created_at=ten_days_ago, status="completed"))
        session.execute(update(Event).values(created_at=ten_days_ago))
        run_id = session.scalar(select(WorkflowRun.id).where(WorkflowRun.organization_id == org.id))
        session.add(StepExecution(workflow_run_id=run_id, organization_id=org.id, step_id="s",
                                  step_name="s", step_type="action", status="completed",
                                  attempt=1, max_attempts=1))  # fmt: skip
    pruned = []
    while True:  # batches of 3
        with session_scope() as session:
            n = prune_expired(session, batch=3)
        if not n:
            break
        pruned.append(n)
    assert sum(pruned) == 10 and max(pruned) <= 6  # 5 runs, 5 events; <= 3 of each a batch
    who = principal_of(org.id)
    with session_scope() as session:
        left = dict(
            session.execute(
                select(WorkflowRun.organization_id, func.count()).group_by(
                    WorkflowRun.organization_id
                )
            ).all()
        )
        assert left == {keep.id: 5}
        assert session.scalar(select(func.count()).select_from(StepExecution)) == 0
        series = usage_series(
            session,
            who,
            start=ten_days_ago - DAY_MS,
            end=ten_days_ago + DAY_MS,
            group_by="day",
        )
    assert series["total"] == 5  # the pruned runs still count in the series


def test_metered_runs_are_reported_once_with_the_run_id(make_org, monkeypatch) -> None:
    from sqlalchemy import select

    from orbin_flows.billing import meter
    from tenancy import config
    from tenancy.billing_models import MeterReport
    from tenancy.db import session_scope
    from tenancy.models import Organization, WorkflowRun

    org = make_org("metered", plan="enterprise")  # built-in: overage, metered
    with session_scope() as session:
        session.get(Organization, org.id).stripe_customer_id = "cus_m"
    active_workflow(org.id, "job.run")
    ingest_concurrently(org.id, threads=1, per_thread=3)
    with StripeServer(api_key="sk_test_m") as stripe:
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_m")
        monkeypatch.setenv("ORBIN_STRIPE_API_BASE", stripe.url)
        config.reset_settings()
        stripe.fail("/v1/billing/meter_events", 400)  # one refused: retried later
        assert meter.report_due() == 2
        with session_scope() as session:
            failed = session.scalars(select(MeterReport).where(MeterReport.attempts == 1)).one()
            assert failed.reported_at is None and failed.next_attempt_at > time.time() * 1000
            failed_id = failed.run_id
            session.execute(MeterReport.__table__.update().values(next_attempt_at=0))
        assert meter.report_due() == 1 and meter.report_due() == 0
        with session_scope() as session:
            run_ids = set(session.scalars(select(WorkflowRun.id)))
        assert set(stripe.meter_events) == run_ids and failed_id in run_ids
        sent = stripe.calls("POST", "/v1/billing/meter_events")
        assert len(sent) == 4  # 3 runs + the one retry
        assert all(c.fields["payload"]["stripe_customer_id"] == "cus_m" for c in sent)
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    monkeypatch.delenv("ORBIN_STRIPE_API_BASE")
    config.reset_settings()


def test_concurrent_pruners_fold_each_run_once(make_org) -> None:
    from sqlalchemy import func, select, update

    from tenancy.billing_models import UsageRollup
    from tenancy.db import session_scope
    from tenancy.metering import DAY_MS, prune_expired
    from tenancy.models import WorkflowRun

    org = make_org("prune")
    active_workflow(org.id, "job.run")
    ingest_concurrently(org.id, threads=2, per_thread=6)
    with session_scope() as session:
        session.execute(
            update(WorkflowRun).values(
                created_at=int(time.time() * 1000) - 9 * DAY_MS, status="completed"
            )
        )
    start = threading.Barrier(3)

    def prune(_: int) -> None:
        start.wait()
        for _round in range(10):
            with session_scope() as session:
                prune_expired(session, batch=2)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(prune, range(3)))
    with session_scope() as session:
        assert session.scalar(select(func.sum(UsageRollup.executions))) == 12
        assert session.scalar(select(func.count()).select_from(WorkflowRun)) == 0
