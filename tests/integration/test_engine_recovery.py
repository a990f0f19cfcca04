"""What must survive a worker's death: kill -9 mid-run, long delays across a restart, and
code workflows rolled out with ``prefect deploy``. These need workers the test owns (see
tests/support/rig.py), with a 2 s lease and a 1 s inline-delay threshold to stay quick."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import require_postgres
from tests.support import services
from tests.support.httpd import Service
from tests.support.orbin_client import Orbin
from tests.support.rig import BIN, Rig, start_rig

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = start_rig(
        tmp_path_factory.mktemp("engine-rig"),
        ORBIN_WORKER_LEASE_SECONDS="2",
        ORBIN_INLINE_DELAY_SECONDS="1",
    )
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def pg_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The same on PostgreSQL (Orbin's database), where workers race with row locks."""
    require_postgres()
    name = services.create_pg_database("orbin_rig")
    r = start_rig(
        tmp_path_factory.mktemp("engine-rig-pg"),
        database_url=services.pg_url(name),
        ORBIN_WORKER_LEASE_SECONDS="2",
        ORBIN_INLINE_DELAY_SECONDS="1",
    )
    try:
        yield r
    finally:
        r.stop()
        services.drop_pg_database(name)


@pytest.fixture(scope="module")
def svc() -> Iterator[Service]:
    service = Service()
    yield service
    service.close()


@pytest.fixture
def orbin(rig: Rig) -> Orbin:
    return Orbin(rig.api_url, rig.key, rig.prefect_api_url)


def _http(step_id: str, url: str) -> dict:
    return {
        "id": step_id,
        "name": step_id.title(),
        "type": "action",
        "retryPolicy": {"maxAttempts": 1},
        "config": {"action": "http", "url": url},
    }


def _path(name: str) -> str:
    return f"/{name}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("backend", ["rig", "pg_rig"])
def test_a_run_whose_worker_is_killed_is_finished_by_another_without_repeating_steps(
    backend: str, request: pytest.FixtureRequest, svc: Service
) -> None:
    rig: Rig = request.getfixturevalue(backend)
    orbin = Orbin(rig.api_url, rig.key, rig.prefect_api_url)
    one, two, three = _path("one"), _path("two"), _path("three")
    gate = svc.hold(two)
    wf = orbin.create(
        {
            "name": "Kill",
            "slug": "kill",
            "steps": [
                _http("one", svc.url + one),
                _http("two", svc.url + two),
                _http("three", svc.url + three),
            ],
        }
    )
    rig.start_worker("doomed", ORBIN_WORKER_CONCURRENCY="1")
    run_id = orbin.start(wf)
    svc.wait_for(two)  # step one is done, step two is in flight
    first_flow_run = orbin.run(run_id)["prefectFlowRunId"]
    rig.kill_worker("doomed")
    gate.set()
    assert orbin.run(run_id)["status"] == "running"

    # Two workers come up; both see the expired lease, one of them takes the run.
    rig.start_worker("main", ORBIN_WORKER_CONCURRENCY="1")  # stays for the next tests
    rig.start_worker("c")
    try:
        run = orbin.wait(run_id, seconds=90)
        assert run["status"] == "completed", run
        assert (svc.count(one), svc.count(two), svc.count(three)) == (1, 2, 1), (
            "the completed step ran once; only the one in flight ran again"
        )
        two_attempts = [s for s in run["steps"] if s["stepId"] == "two"]
        assert [s["status"] for s in two_attempts] == ["failed", "completed"]
        assert "worker" in two_attempts[0]["error"]["message"]
        assert run["prefectFlowRunId"] != first_flow_run
        assert orbin.wait_flow_run(first_flow_run, "CRASHED")["state_type"] == "CRASHED"
        orbin.wait_flow_run(run["prefectFlowRunId"], "COMPLETED")
    finally:
        rig.stop_worker("c")


def test_a_long_delay_frees_the_worker_and_survives_a_restart(
    rig: Rig, orbin: Orbin, svc: Service
) -> None:
    before, after = _path("before"), _path("after")
    delayed = orbin.create(
        {
            "name": "Later",
            "slug": "later",
            "steps": [
                _http("before", svc.url + before),
                {"id": "wait", "name": "Wait", "type": "delay", "config": {"seconds": 6}},
                _http("after", svc.url + after),
            ],
        }
    )
    quick = orbin.create(
        {
            "name": "Quick",
            "slug": "quick",
            "steps": [
                {
                    "id": "q",
                    "name": "Q",
                    "type": "action",
                    "config": {"action": "transform", "output": "done"},
                }
            ],
        }
    )
    if "main" not in rig.workers:
        rig.start_worker("main", ORBIN_WORKER_CONCURRENCY="1")
    run_id = orbin.start(delayed)
    run = orbin.wait_until(
        run_id, lambda r: any(s["stepId"] == "wait" for s in r["steps"]), seconds=60
    )
    flow_run = run["prefectFlowRunId"]
    run = orbin.wait_until(run_id, lambda r: r["status"] == "suspended", seconds=30)
    wait = orbin.steps(run)["wait"]
    assert wait["status"] == "pending"
    assert wait["nextRetryAt"] - wait["startedAt"] == pytest.approx(6000, abs=500)
    assert run["resumeAt"] == wait["nextRetryAt"]
    listed = orbin.call("GET", "/v1/runs?status=suspended").json()["data"]
    assert run_id in [r["id"] for r in listed]
    assert orbin.call("GET", "/v1/runs?status=sleeping").status_code == 422

    # One slot, held by nobody: another run goes through meanwhile.
    other = orbin.wait(orbin.start(quick), seconds=30)
    assert other["status"] == "completed"
    assert orbin.run(run_id)["status"] == "suspended"

    log = (rig.home / "worker-main.log").read_text(errors="replace")
    assert "suspended: step wait waits until" in log, "the suspension is logged, as INFO"
    errors = [line for line in log.splitlines() if "ERROR" in line]
    assert not errors, f"a normal suspension is not an error: {errors}"
    rig.kill_worker("main")
    rig.start_worker("main", ORBIN_WORKER_CONCURRENCY="1")
    run = orbin.wait_until(run_id, lambda r: r["status"] != "suspended", seconds=60)
    assert run["status"] in ("running", "completed") and run["resumeAt"] is None
    run = orbin.wait(run_id, seconds=60)
    assert run["status"] == "completed", run
    assert (svc.count(before), svc.count(after)) == (1, 1)
    assert orbin.steps(run)["wait"]["output"]["waitedSeconds"] >= 6
    assert run["prefectFlowRunId"] == flow_run, "the same flow run continues"
    orbin.wait_flow_run(flow_run, "COMPLETED")
    states = orbin.flow_run_states(flow_run)
    assert states.index("Running") < states.index("Suspended") < states.index("Resuming"), states
    assert states.index("Resuming") < len(states) - 1 - states[::-1].index("Running"), states
    assert states[-1] == "Completed", states
    changes = _run_changes(orbin, run_id)
    said = [c["status"] for c in changes]
    assert said[:2] == ["pending", "running"] and said[-1] == "completed", said
    assert said.index("suspended") < len(said) - 1 - said[::-1].index("running"), said
    suspended = next(c for c in changes if c["status"] == "suspended")
    assert suspended["resumeAt"] == wait["nextRetryAt"]


def _run_changes(orbin: Orbin, run_id: str) -> list[dict]:
    """The run's changes as ``GET /v1/stream`` replays them from the start (Last-Event-ID 0),
    up to its completion."""
    out: list[dict] = []
    headers = {"x-api-key": orbin.key, "Last-Event-ID": "0"}
    url = f"{orbin.api_url}/v1/stream?kinds=run&runId={run_id}"
    for _ in range(10):  # the polling above may have spent the plan's requests per minute
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=30)) as r:
            if r.status_code == 429:
                time.sleep(min(float(r.headers.get("retry-after", "1")), 10))
                continue
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    out.append(json.loads(line[6:]))
                    if out[-1]["status"] == "completed":
                        return out
    return out


def test_canceling_a_suspended_run_ends_it_and_its_flow_run(rig: Rig, orbin: Orbin) -> None:
    wf = orbin.create(
        {
            "name": "Never",
            "slug": "never",
            "steps": [
                {"id": "wait", "name": "Wait", "type": "delay", "config": {"seconds": 600}},
                {
                    "id": "x",
                    "name": "X",
                    "type": "action",
                    "config": {"action": "transform", "output": 1},
                },
            ],
        }
    )
    if "main" not in rig.workers:
        rig.start_worker("main")
    run_id = orbin.start(wf)
    run = orbin.wait_until(run_id, lambda r: bool(r["steps"]), seconds=60)
    orbin.wait_flow_run(run["prefectFlowRunId"], "PAUSED")
    assert orbin.run(run_id)["status"] == "suspended"
    resp = orbin.call("POST", f"/v1/runs/{run_id}/cancel")
    assert resp.status_code == 202
    answered = resp.json()
    assert answered["status"] == "canceled" and answered["durationMs"] is not None
    assert orbin.steps(answered)["wait"]["status"] == "canceled"
    orbin.wait_flow_run(run["prefectFlowRunId"], "CANCELLED")
    run = orbin.run(run_id)
    assert run == answered, "the cancel answer is the run as GET shows it"
    assert orbin.steps(run)["wait"]["error"]["message"] == "canceled"


def test_a_flow_rolled_out_with_prefect_deploy_runs_as_a_workflow(rig: Rig, orbin: Orbin) -> None:
    if "main" not in rig.workers:
        rig.start_worker("main")
    # The demo workflow creates the demo organization's work pool on its first run.
    demo = orbin.call("POST", "/v1/events", json={"type": "demo.hello", "data": {}})
    assert orbin.wait(demo.json()["runIds"][0])["status"] == "completed"
    out = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "hello-code"],
        env=rig.env,
        cwd=str(services.ROOT),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    event_type = f"demo.code.{uuid.uuid4().hex[:6]}"
    resp = orbin.call(
        "POST",
        "/v1/workflows",
        json={
            "name": "Hello code",
            "slug": f"hello-code-{uuid.uuid4().hex[:6]}",
            "status": "active",
            "deployment": "hello-code/hello-code",
            "trigger": {"type": "event", "config": {"eventType": event_type}},
        },
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["deployment"] == "hello-code/hello-code"

    accepted = orbin.call(
        "POST", "/v1/events", json={"type": event_type, "data": {"name": "Ada"}}
    ).json()
    (run_id,) = accepted["runIds"]
    run = orbin.wait(run_id, seconds=60)
    assert run["status"] == "completed", run
    assert run["result"] == {"message": "Hello Ada!"}
    fr = orbin.wait_flow_run(run["prefectFlowRunId"], "COMPLETED")
    assert fr["work_pool_name"] == "orbin-demo"
    assert fr["parameters"] == {"data": {"name": "Ada"}}
    run = orbin.wait_until(run_id, lambda r: bool(r["steps"]), seconds=20)
    (step,) = run["steps"]
    assert step["stepName"] == "Greet" and step["status"] == "completed"
    assert step["durationMs"] is not None

    # Another organization cannot run a deployment of the demo organization's pool.
    rig.orbin("org", "create", "--slug", "intruder")
    key = rig.orbin("api-key", "create", "--org", "intruder", "--name", "k")
    intruder = Orbin(rig.api_url, key, rig.prefect_api_url)
    wf = intruder.create({"name": "Steal", "slug": "steal", "deployment": "hello-code/hello-code"})
    run = intruder.wait(intruder.start(wf), seconds=60)
    assert run["status"] == "failed"
    assert "not in this organization's pool 'orbin-intruder'" in run["error"]["message"]
