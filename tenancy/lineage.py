"""Event lineage of ``emit`` steps: an emitted event's id is ``emit:<run id>:<step id>``, so
the chain of runs that emitted each other can be walked back (see orbin_flows/lineage.py)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tenancy.models import Event, WorkflowRun

PREFIX = "emit:"


def emit_key(run_id: str, step_id: str) -> str:
    return f"{PREFIX}{run_id}:{step_id}"


def emit_depth(session: Session, *, organization_id: str, run_id: str, limit: int) -> int:
    """How many emits led to this run (0: started by an outside event), counted up to
    ``limit + 1``."""
    depth, current = 0, run_id
    while depth <= limit:
        run = session.get(WorkflowRun, current)
        if run is None or run.organization_id != organization_id or not run.event_id:
            return depth
        event = session.get(Event, run.event_id)
        if event is None or not (event.event_id or "").startswith(PREFIX):
            return depth
        current = event.event_id[len(PREFIX) :].split(":", 1)[0]
        depth += 1
    return depth
