"""Which workflows an event type may start, remembered per organization for a moment.

Ingestion asks this for every event; the answer changes only when a workflow is saved,
activated or paused. A change committed in this process is seen at once; one committed by
another process (another API replica, the CLI) within ``ORBIN_TRIGGER_CACHE_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from tenancy import workflows as workflows_repo
from tenancy.config import get_settings
from tenancy.models import Workflow


@dataclass(frozen=True)
class TriggerCandidate:
    id: str
    version: int
    trigger: dict[str, Any]


_lock = threading.Lock()
_items: dict[tuple[str, str], tuple[float, list[TriggerCandidate]]] = {}


def trigger_candidates(
    session: Session, organization_id: str, event_types: set[str]
) -> dict[str, list[TriggerCandidate]]:
    """Active event-triggered workflows that may match each type, ordered by id."""
    ttl = get_settings().trigger_cache_seconds
    now = time.monotonic()
    out: dict[str, list[TriggerCandidate]] = {}
    for event_type in event_types:
        key = (organization_id, event_type)
        hit = _items.get(key) if ttl > 0 else None
        if hit is not None and hit[0] > now:
            out[event_type] = hit[1]
            continue
        rows = workflows_repo.read_event_trigger_candidates(
            session, organization_id=organization_id, event_type=event_type
        )
        found = sorted(
            (TriggerCandidate(w.id, w.version, w.trigger) for w in rows), key=lambda c: c.id
        )
        out[event_type] = found
        if ttl > 0:
            with _lock:
                if len(_items) > 50_000:
                    _items.clear()
                _items[key] = (now + ttl, found)
    return out


def forget(organization_ids: set[str] | None = None) -> None:
    """Drop remembered answers: of these organizations, or all."""
    with _lock:
        if organization_ids is None:
            _items.clear()
        else:
            for key in [k for k in _items if k[0] in organization_ids]:
                del _items[key]


_TOUCHED = "orbin_workflows_touched"


@event.listens_for(Session, "after_flush")
def _note_workflow_changes(session: Session, _context: Any) -> None:
    orgs = {
        obj.organization_id
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, Workflow)
    }
    if orgs:
        touched = session.info.setdefault(_TOUCHED, set())
        if touched is not None:
            touched.update(orgs)


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_workflow_changes(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        if state.bind_mapper.class_ is Workflow:
            state.session.info[_TOUCHED] = None  # unknown organizations: forget all


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    if _TOUCHED in session.info:
        forget(session.info.pop(_TOUCHED))


@event.listens_for(Session, "after_rollback")
def _drop_notes(session: Session) -> None:
    session.info.pop(_TOUCHED, None)
