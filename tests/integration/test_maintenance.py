"""Housekeeping as Prefect-scheduled flows (orbin_flows/maintenance.py): the deployments
exist with their schedules on a real Prefect server, a run of each does its job, and two
workers never run one slot twice."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.conftest import require_postgres
from tests.support import services
from tests.support.rig import Rig, start_rig
from tests.unit.ingest_support import active_workflow
from tests.unit.test_metering import ingest_concurrently

pytestmark = pytest.mark.prefect

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[services.PrefectServer]:
    name = services.create_pg_database("prefect_mt") if services.postgres_available() else None
    url = services.pg_url(name, driver="asyncpg") if name else None
    server = services.start_prefect_server(tmp_path_factory.mktemp("prefect-mt"), url)
    try:
        yield server
    finally:
        server.stop()
        if name:
            services.drop_pg_database(name)


def _seed(make_org) -> dict[str, Any]:  # noqa: ANN001
    """An org whose runs are past its plan's retention, one whose runs are recent but whose
    outbox items finished two hours ago, and change records old and new."""
    from sqlalchemy import update

    from tenancy.db import session_scope
    from tenancy.models import ChangeRecord, Event, OutboxItem, WorkflowRun

    old, fresh = make_org("old"), make_org("fresh", plan="pro")
    for org in (old, fresh):
        active_workflow(org.id, "job.run")
        ingest_concurrently(org.id, threads=1, per_thread=3)
    now = int(time.time() * 1000)
    with session_scope() as session:
        session.execute(update(WorkflowRun).values(status="completed"))
        session.execute(
            update(WorkflowRun)
            .where(WorkflowRun.organization_id == old.id)
            .values(created_at=now - 10 * DAY_MS)
        )
        old_events = update(Event).where(Event.organization_id == old.id)
        session.execute(old_events.values(created_at=now - 10 * DAY_MS))
        session.execute(update(OutboxItem).values(status="done", created_at=now - 7_200_000))
        for at in [now - 7_200_000] * 5 + [now]:
            session.add(ChangeRecord(organization_id=old.id, kind="x", payload={}, created_at=at))
    return {"old": old.id, "fresh": fresh.id}


def _counts() -> dict[str, int]:
    from sqlalchemy import func, select

    from tenancy.clock import now_ms
    from tenancy.db import session_scope
    from tenancy.models import ChangeRecord, OutboxItem, WorkflowRun

    with session_scope() as session:
        return {
            "runs": session.scalar(select(func.count()).select_from(WorkflowRun)) or 0,
            "outbox": session.scalar(select(func.count()).select_from(OutboxItem)) or 0,
            "old_changes": session.scalar(
                select(func.count())
                .select_from(ChangeRecord)
                .where(ChangeRecord.created_at < now_ms() - 3_600_000)
            )
            or 0,
            "changes": session.scalar(select(func.count()).select_from(ChangeRecord)) or 0,
        }


async def test_deployments_have_schedules_and_one_of_two_workers_runs_each_slot(
    prefect_server: services.PrefectServer, make_org
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Scheduled

    from deployments.maintenance import MAINTENANCE_POOL
    from orbin_flows.maintenance import JOBS
    from orbin_flows.runtime.maintenance_keeper import MaintenanceKeeper
    from tenancy.config import get_settings

    _seed(make_org)
    before = _counts()
    assert before["runs"] == 6 and before["outbox"] == 6 and before["old_changes"] == 5

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        async with get_client() as c1, get_client() as c2:
            workers = [
                SimpleNamespace(client=c, stopping=asyncio.Event(), _background=set())
                for c in (c1, c2)
            ]
            keepers = [MaintenanceKeeper(w) for w in workers]
            await asyncio.gather(*(k.ensure() for k in keepers))  # both at start: no harm
            assert keepers[0].jobs.keys() == keepers[1].jobs.keys()
            settings = get_settings()
            for job in JOBS:
                dep = await c1.read_deployment_by_name(f"{job.flow_name}/maintenance")
                assert dep.work_pool_name == MAINTENANCE_POOL and not dep.paused
                assert [s.schedule.interval for s in dep.schedules if s.active] == [
                    timedelta(seconds=job.every(settings))
                ]
                upcoming = await c1.read_flow_runs(flow_run_filter=_by_deployment(dep.id), limit=5)
                assert upcoming, f"Prefect's scheduler made no runs for {job.flow_name}"
            # One due slot of each job, as Prefect's scheduler makes them.
            due = datetime.now(UTC) - timedelta(seconds=1)
            made = [
                await c1.create_flow_run_from_deployment(d, state=Scheduled(scheduled_time=due))
                for d in keepers[0].jobs
            ]
            started = await asyncio.gather(*(k.pick_up() for k in keepers))
            ids = [i for s in started for i in s]
            assert sorted(ids) == sorted(r.id for r in made), "each slot claimed exactly once"
            assert len(set(ids)) == len(ids)
            for w in workers:
                await asyncio.gather(*list(w._background))
            for r in made:
                fr = await c1.read_flow_run(r.id)
                assert fr.state is not None and fr.state.is_completed(), fr.state
                assert fr.run_count == 1
            again = await asyncio.gather(*(k.pick_up() for k in keepers))
            # (a slot of Prefect's own schedule may have come due meanwhile on a slow machine)
            rerun = {i for s in again for i in s} & {r.id for r in made}
            assert not rerun, "a finished slot is not run again"

    after = _counts()
    assert after["runs"] == 3, "the free org's 10-day-old runs are gone, the pro org's stay"
    assert after["outbox"] == 0, "finished outbox items older than an hour are gone"
    assert after["old_changes"] == 0 and after["changes"] >= 1, "recent changes are kept"


def _by_deployment(deployment_id: Any) -> Any:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    return FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]))


# --- two real workers, on their schedule ---------------------------------------------------


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    require_postgres()
    name = services.create_pg_database("orbin_mt")
    prefect_db = services.create_pg_database("prefect_mtr")
    fast = {
        "ORBIN_MAINTENANCE_RETENTION_SECONDS": "5",
        "ORBIN_MAINTENANCE_CHANGE_LOG_SECONDS": "5",
        "ORBIN_MAINTENANCE_OUTBOX_SECONDS": "5",
    }
    r = start_rig(
        tmp_path_factory.mktemp("maintenance-rig"),
        database_url=services.pg_url(name),
        prefect_database_url=services.pg_url(prefect_db, driver="asyncpg"),
        **fast,
    )
    try:
        yield r
    finally:
        r.stop()
        services.drop_pg_database(name)
        services.drop_pg_database(prefect_db)


def _maintenance_runs(r: Rig, *states: str) -> list[dict[str, Any]]:
    """The maintenance flow runs in these states (not the many scheduled ahead)."""
    resp = httpx.post(
        f"{r.prefect_api_url}/flow_runs/filter",
        json={
            "flow_runs": {
                "tags": {"all_": ["orbin-maintenance"]},
                "state": {"type": {"any_": list(states)}},
            },
            "limit": 200,
        },
        timeout=30,
    )
    resp.raise_for_status()
    return resp.json()


def test_two_workers_run_each_scheduled_slot_once(rig: Rig) -> None:
    rig.start_worker("a")
    rig.start_worker("b")
    rig.wait_worker_ready("a")
    rig.wait_worker_ready("b")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        per_job = Counter(f["deployment_id"] for f in _maintenance_runs(rig, "COMPLETED"))
        if len(per_job) == 3 and min(per_job.values()) >= 2:
            break
        time.sleep(2)
    done = _maintenance_runs(rig, "COMPLETED")
    per_job = Counter(f["deployment_id"] for f in done)
    assert len(per_job) == 3 and min(per_job.values()) >= 2, per_job
    assert all(f["run_count"] == 1 for f in done)
    slots = Counter((f["deployment_id"], f["expected_start_time"]) for f in done)
    assert max(slots.values()) == 1, "no slot completed twice"

    def ran_by_workers() -> Counter[str]:
        logs = [(rig.home / f"worker-{n}.log").read_text(errors="replace") for n in ("a", "b")]
        return Counter(m for t in logs for m in re.findall(r"maintenance flow run (\S+) \(", t))

    # A worker logs a run once run_flow_async returns, just after Prefect has it Completed.
    settle = time.monotonic() + 15
    while not {f["id"] for f in done} <= set(ran := ran_by_workers()):
        if time.monotonic() > settle:
            break
        time.sleep(0.5)
    assert ran and max(ran.values()) == 1, "each flow run executed by one worker"
    assert {f["id"] for f in done} <= set(ran), "every completed run was one of the workers'"
    assert len(_maintenance_runs(rig, "PENDING", "RUNNING")) <= 3, "at most one per job"
    assert not _maintenance_runs(rig, "FAILED", "CRASHED")
