"""A dead worker is known within a second on PostgreSQL: its liveness lock is freed when its
session ends; an observer that saw it held declares it dead, and only then."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tenancy import liveness
from tenancy.clock import now_ms
from tenancy.db import session_scope
from tenancy.models import WorkflowRun
from tests.unit.ingest_support import active_workflow


@pytest.fixture
def pg(database: str) -> str:
    if not database.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's")
    return database


def _run_held_by(api, org, worker: str) -> str:
    active_workflow(org.id, "live.t")
    r = api.post("/v1/events", json={"type": "live.t"}, headers={"x-api-key": org.key})
    run_id = r.json()["runIds"][0]
    with session_scope() as session:
        session.execute(
            update(WorkflowRun)
            .where(WorkflowRun.id == run_id)
            .values(status="running", worker_id=worker, lease_expires_at=now_ms() + 60_000)
        )
    return run_id


def test_a_worker_whose_session_ends_is_dead_at_once(pg, api, make_org) -> None:
    org = make_org("live")
    run_id = _run_held_by(api, org, "w-doomed")
    doomed = liveness.LivenessLock("w-doomed")
    assert doomed.hold() and doomed.hold()
    seen: set[str] = set()
    with session_scope() as session:
        assert liveness.dead_workers(session, me="w-me", seen_alive=seen) == set()
    assert seen == {"w-doomed"}
    doomed.release()  # the process died: PostgreSQL ended its session
    with session_scope() as session:
        dead = liveness.dead_workers(session, me="w-me", seen_alive=seen)
        assert dead == {"w-doomed"}
        assert [r.id for r in liveness.runs_of(session, workers=dead)] == [run_id]


def test_never_seen_alive_is_not_declared_dead(pg, api, make_org) -> None:
    """A worker that holds no lock (an older version): only its lease can tell."""
    org = make_org("live2")
    _run_held_by(api, org, "w-old")
    with session_scope() as session:
        assert liveness.dead_workers(session, me="w-me", seen_alive=set()) == set()


def test_sqlite_has_no_liveness_lock(database: str) -> None:
    if database.startswith("postgresql"):
        pytest.skip("SQLite")
    assert liveness.LivenessLock("w").hold() is False
