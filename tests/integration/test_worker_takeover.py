"""A worker killed with SIGKILL on PostgreSQL: a live worker takes its run over within
seconds (its liveness lock is freed with its session), not after twice the 30 s lease; the
completed step is not run again, and the lost attempt keeps the step's budget (2/3)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import require_postgres
from tests.support import services
from tests.support.httpd import Service
from tests.support.orbin_client import Orbin
from tests.support.rig import Rig, start_rig

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    require_postgres()
    name = services.create_pg_database("orbin_takeover")
    r = start_rig(
        tmp_path_factory.mktemp("takeover-rig"),
        database_url=services.pg_url(name),
        ORBIN_WORKER_LEASE_SECONDS="30",
    )
    try:
        yield r
    finally:
        r.stop()
        services.drop_pg_database(name)


def _http(step_id: str, url: str) -> dict:
    return {
        "id": step_id,
        "name": step_id,
        "type": "action",
        "retryPolicy": {"maxAttempts": 3},
        "config": {"action": "http", "url": url},
    }


def test_a_killed_workers_run_is_taken_over_within_seconds(rig: Rig) -> None:
    svc = Service()
    try:
        orbin = Orbin(rig.api_url, rig.key, rig.prefect_api_url)
        tag = uuid.uuid4().hex[:8]
        one, two = f"/one-{tag}", f"/two-{tag}"
        gate = svc.hold(two)
        wf = orbin.create(
            {
                "name": "Takeover",
                "slug": f"takeover-{tag}",
                "steps": [_http("one", svc.url + one), _http("two", svc.url + two)],
            }
        )
        rig.start_worker("doomed", ORBIN_WORKER_CONCURRENCY="1")
        rig.wait_worker_ready("doomed")
        run_id = orbin.start(wf)
        svc.wait_for(two)
        rig.start_worker("heir")
        rig.wait_worker_ready("heir")
        time.sleep(2)  # the heir has seen the doomed worker's lock held
        rig.kill_worker("doomed")
        killed = time.monotonic()
        gate.set()
        run = orbin.wait(run_id, seconds=50)
        took = time.monotonic() - killed
        assert run["status"] == "completed", run
        assert took < 15, f"taken over after {took:.1f} s (the lease alone: 60 s)"
        assert svc.count(one) == 1, "the completed step did not run again"
        tries = [
            (s["attempt"], s["maxAttempts"], s["status"])
            for s in run["steps"]
            if s["stepId"] == "two"
        ]
        assert tries == [(1, 3, "failed"), (2, 3, "completed")], "the same budget: 2/3, not 2/4"
        log = (rig.home / "worker-heir.log").read_text()
        assert "is gone (its session ended)" in log
    finally:
        svc.close()
        if "heir" in rig.workers:
            rig.stop_worker("heir")
