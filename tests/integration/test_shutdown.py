"""Graceful shutdown of a worker (SIGTERM): it stops claiming, lets the runs in flight finish
within ORBIN_WORKER_SHUTDOWN_SECONDS, and hands the rest over at once, so another worker
finishes them long before the lease (30 s here, twice over) would have expired."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support import services
from tests.support.httpd import Service
from tests.support.orbin_client import Orbin
from tests.support.rig import Rig, start_rig

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = start_rig(tmp_path_factory.mktemp("shutdown-rig"), ORBIN_WORKER_LEASE_SECONDS="30")
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def svc() -> Iterator[Service]:
    service = Service()
    yield service
    service.close()


def _http(step_id: str, url: str) -> dict:
    return {
        "id": step_id,
        "name": step_id.title(),
        "type": "action",
        "retryPolicy": {"maxAttempts": 1},
        "config": {"action": "http", "url": url},
    }


def _three(orbin: Orbin, svc: Service, slug: str) -> tuple[str, list[str]]:
    paths = [f"/{n}-{uuid.uuid4().hex[:8]}" for n in ("one", "two", "three")]
    wf = orbin.create(
        {
            "name": slug,
            "slug": slug,
            "steps": [
                _http(n, svc.url + p) for n, p in zip(("one", "two", "three"), paths, strict=True)
            ],
        }
    )
    return wf, paths


def _sigterm(rig: Rig, name: str) -> tuple[float, int]:
    proc = rig.workers.pop(name)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=60)
    return time.monotonic() - t0, code


def test_sigterm_lets_a_run_in_flight_finish_and_serves_metrics_until_then(
    rig: Rig, svc: Service
) -> None:
    orbin = Orbin(rig.api_url, rig.key, rig.prefect_api_url)
    wf, (one, two, three) = _three(orbin, svc, "drain")
    gate = svc.hold(two)
    port = services.free_port()
    rig.start_worker(
        "drain", ORBIN_WORKER_SHUTDOWN_SECONDS="20", ORBIN_WORKER_METRICS_PORT=str(port)
    )
    rig.wait_worker_ready("drain")
    ops = f"http://127.0.0.1:{port}"
    assert httpx.get(ops + "/readyz", timeout=5).status_code == 200
    run_id = orbin.start(wf)
    svc.wait_for(two)
    metrics = httpx.get(ops + "/metrics", timeout=5).text
    assert 'orbin_runs_started_total{org="demo"} 1.0' in metrics
    assert "orbin_worker_active_runs 1.0" in metrics

    proc = rig.workers["drain"]
    os.killpg(proc.pid, signal.SIGTERM)
    time.sleep(1.0)
    assert proc.poll() is None, "the worker left with a run in flight"
    ready = httpx.get(ops + "/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["checks"]["process"] == "stopping"
    gate.set()
    assert proc.wait(timeout=30) == 0
    rig.workers.pop("drain")
    run = orbin.run(run_id)
    assert run["status"] == "completed", run
    assert (svc.count(one), svc.count(two), svc.count(three)) == (1, 1, 1)


def test_sigterm_past_the_deadline_hands_the_run_over_at_once(rig: Rig, svc: Service) -> None:
    orbin = Orbin(rig.api_url, rig.key, rig.prefect_api_url)
    wf, (one, two, three) = _three(orbin, svc, "handover")
    gate = svc.hold(two)
    rig.start_worker("leaving", ORBIN_WORKER_SHUTDOWN_SECONDS="1")
    rig.wait_worker_ready("leaving")
    run_id = orbin.start(wf)
    svc.wait_for(two)
    took, code = _sigterm(rig, "leaving")
    assert code == 0 and took < 15, took
    gate.set()

    rig.start_worker("next")
    try:
        t0 = time.monotonic()
        run = orbin.wait(run_id, seconds=40)
        assert run["status"] == "completed", run
        assert time.monotonic() - t0 < 30, "taken over by lease expiry, not handed over"
        assert (svc.count(one), svc.count(two), svc.count(three)) == (1, 2, 1), (
            "the completed step is not run again; only the one in flight is"
        )
        attempts = [s["status"] for s in run["steps"] if s["stepId"] == "two"]
        assert attempts == ["failed", "completed"]
    finally:
        rig.stop_worker("next")
