"""Reports executions of metered plans to Stripe's meter events, never on a run's path."""

from __future__ import annotations

import logging

from orbin_flows.billing import stripe_api
from tenancy import meter_reports as repo
from tenancy.config import get_settings
from tenancy.db import session_scope

log = logging.getLogger("orbin.billing")


def report_due() -> int:
    """One pass: queue new runs, then send up to a batch of due reports. Returns sent count."""
    if not stripe_api.configured():
        return 0
    with session_scope() as session:
        repo.queue_new_runs(session)
    with session_scope() as session:
        due = repo.read_due(session)
    sent: list[str] = []
    event_name = get_settings().stripe_meter_event_name
    for report in due:
        try:
            stripe_api.send_meter_event(
                event_name=event_name,
                customer_id=report.stripe_customer_id,
                run_id=report.run_id,
                timestamp=report.created_at // 1000,
            )
            sent.append(report.run_id)
        except Exception as exc:  # noqa: BLE001 - retried with backoff
            log.warning("meter event for run %s not sent: %s", report.run_id, type(exc).__name__)
            with session_scope() as session:
                repo.mark_failed(session, report, f"{type(exc).__name__}: {exc}")
    with session_scope() as session:
        repo.mark_reported(session, sent)
    return len(sent)
