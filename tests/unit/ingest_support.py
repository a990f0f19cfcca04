"""Helpers shared by the ingestion tests: a workflow that an event type starts."""

from __future__ import annotations

from typing import Any


def active_workflow(org_id: str, event_type: str, slug: str = "on-event", **trigger: Any) -> str:
    from orbin_flows.workflows import create_workflow
    from tenancy.db import session_scope
    from tenancy.models import Organization
    from tenancy.principal import system_principal

    with session_scope() as session:
        org = session.get(Organization, org_id)
        assert org is not None
        wf = create_workflow(
            session,
            system_principal(org.id, org.slug, org.plan),
            {
                "name": slug,
                "slug": slug,
                "status": "active",
                "trigger": {"type": "event", "config": {"eventType": event_type, **trigger}},
                "steps": [
                    {
                        "id": "echo",
                        "name": "Echo",
                        "type": "action",
                        "config": {"action": "transform", "output": {"ok": True}},
                    }
                ],
            },
        )
        return wf.id


def set_usage_limit(org_id: str, limit: int) -> None:
    from tenancy.db import session_scope
    from tenancy.models import Organization

    with session_scope() as session:
        org = session.get(Organization, org_id)
        assert org is not None
        org.usage_limit_executions = limit


def stored_events(org_id: str) -> list[Any]:
    from sqlalchemy import select

    from tenancy.db import session_scope
    from tenancy.models import Event

    with session_scope() as session:
        return list(
            session.scalars(select(Event).where(Event.organization_id == org_id).order_by(Event.id))
        )


def stored_runs(org_id: str) -> list[Any]:
    from sqlalchemy import select

    from tenancy.db import session_scope
    from tenancy.models import OutboxItem, WorkflowRun

    with session_scope() as session:
        runs = list(
            session.scalars(select(WorkflowRun).where(WorkflowRun.organization_id == org_id))
        )
        outbox = {o.run_id for o in session.scalars(select(OutboxItem))}
        assert {r.id for r in runs} <= outbox, "every run has its outbox item"
        return runs
