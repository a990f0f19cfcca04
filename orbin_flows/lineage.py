"""Event lineage of ``emit`` steps: an emitted event's id is ``emit:<run id>:<step id>``, so
the chain of runs that emitted each other can be walked back. A chain deeper than
``ORBIN_EMIT_MAX_DEPTH`` (a workflow whose event starts itself, two that start each other)
is cut: the event is kept as a dead letter with the reason, and starts nothing."""

from __future__ import annotations

from typing import Any

from orbin_flows.event_runs import fail_event
from tenancy import events as events_repo
from tenancy.db import Session
from tenancy.events import Event
from tenancy.lineage import emit_depth, emit_key

__all__ = ["dead_letter_emit", "emit_depth", "emit_key"]


def dead_letter_emit(
    session: Session,
    *,
    organization_id: str,
    event_type: str,
    source: str,
    data: Any,
    key: str,
    reason: str,
) -> Event:
    """Store the emitted event as a dead letter (once per key), starting nothing."""
    event, created = events_repo.insert_event(
        session,
        organization_id=organization_id,
        event_type=event_type,
        source=source,
        payload=data,
        event_id=key,
    )
    if created:
        fail_event(session, event=event, reason=reason)
        event.run_ids = []
        session.flush()
        events_repo.announce_event(session, event)
    return event
