"""Schedule triggers: Prefect deployment schedules, Scheduled flow runs picked up by the warm
worker and run as Orbin runs; pausing stops them; the next fire times in the API."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi.testclient import TestClient

from tests.integration.test_events_api import H, make_workflow
from tests.support.services import Platform


def test_schedule_shows_next_fire_times_in_its_time_zone(api: TestClient, make_org) -> None:
    org, other = make_org("acme"), make_org("other")
    trigger = {"type": "schedule", "config": {"cron": "30 9 * * 1-5", "timezone": "Europe/Paris"}}
    wf = make_workflow(api, org, "weekdays", trigger)
    resp = api.get(f"/v1/workflows/{wf['id']}/schedule", params={"count": 6}, headers=H(org))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["cron"] == "30 9 * * 1-5" and body["timezone"] == "Europe/Paris"
    assert body["active"] is True and body["synced"] is False, "no worker has synced it yet"
    assert all(isinstance(t, int) and t > 10**12 for t in body["nextRuns"]), "ms"
    paris = ZoneInfo("Europe/Paris")
    times = [datetime.fromtimestamp(t / 1000, paris) for t in body["nextRuns"]]
    assert len(times) == 6 and times == sorted(times)
    assert all((t.hour, t.minute) == (9, 30) and t.weekday() < 5 for t in times)
    assert all(
        t.utcoffset() is not None and t.utcoffset().total_seconds() in (3600, 7200) for t in times
    )

    api.post(f"/v1/workflows/{wf['id']}/pause", headers=H(org))
    paused = api.get(f"/v1/workflows/{wf['id']}/schedule", headers=H(org)).json()
    assert paused["active"] is False and paused["nextRuns"] == []
    assert api.get(f"/v1/workflows/{wf['id']}/schedule", headers=H(other)).status_code == 404
    manual = make_workflow(api, org, "manual", {"type": "manual"})
    resp = api.get(f"/v1/workflows/{manual['id']}/schedule", headers=H(org))
    assert resp.status_code == 404 and "no schedule trigger" in resp.json()["error"]["message"]


def _get(p: Platform, key: str, path: str, **params: Any) -> Any:
    resp = httpx.get(f"{p.api_url}{path}", headers={"x-api-key": key}, params=params, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _wait(what: str, check, seconds: float = 90, every: float = 0.5) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(every)


def test_interval_schedule_runs_through_prefect_and_pausing_stops_it(platform: Platform) -> None:
    key, url = platform.demo_key, platform.api_url
    spec = {
        "name": "Tick",
        "slug": f"tick-{uuid.uuid4().hex[:6]}",
        "status": "active",
        "trigger": {"type": "schedule", "config": {"interval": 2, "timezone": "Europe/Paris"}},
        "steps": [
            {
                "id": "note",
                "name": "Note",
                "type": "action",
                "config": {"action": "transform", "output": {"at": "{{ trigger.scheduledTime }}"}},
            }
        ],
    }
    resp = httpx.post(f"{url}/v1/workflows", json=spec, headers={"x-api-key": key}, timeout=30)
    assert resp.status_code == 201, resp.text
    wf_id = resp.json()["id"]

    def completed_runs() -> list[dict]:
        runs = _get(platform, key, "/v1/runs", workflowId=wf_id)["data"]
        return [r for r in runs if r["status"] == "completed"]

    run = _wait("a completed scheduled run", completed_runs)[0]
    detail = _get(platform, key, f"/v1/runs/{run['id']}")
    assert detail["triggerType"] == "schedule"
    assert detail["steps"][0]["output"] == {"at": detail["triggerData"]["scheduledTime"]}
    schedule = _get(platform, key, f"/v1/workflows/{wf_id}/schedule")
    assert schedule["synced"] is True and len(schedule["nextRuns"]) == 5
    # The run's outcome is Orbin's first; its flow run's Completed state follows it to Prefect.
    flow_run_url = f"{platform.prefect_api_url}/flow_runs/{run['prefectFlowRunId']}"
    flow_run = _wait(
        "its flow run Completed in Prefect",
        lambda: (
            (fr := httpx.get(flow_run_url, timeout=10).json())["state_type"] == "COMPLETED" and fr
        ),
        seconds=30,
    )
    assert flow_run["auto_scheduled"] is True
    assert flow_run["deployment_id"] == schedule["prefectDeploymentId"]
    assert flow_run["work_pool_name"] == "orbin-demo"
    assert flow_run["parameters"] == {"run_id": run["id"]}

    resp = httpx.post(f"{url}/v1/workflows/{wf_id}/pause", headers={"x-api-key": key}, timeout=30)
    assert resp.status_code == 200
    _wait(
        "the pause synced to Prefect",
        lambda: _get(platform, key, f"/v1/workflows/{wf_id}/schedule")["synced"],
        seconds=30,
    )
    deployment = httpx.get(
        f"{platform.prefect_api_url}/deployments/{schedule['prefectDeploymentId']}"
    ).json()
    assert deployment["paused"] is True
    assert [s["active"] for s in deployment["schedules"]] == [False]
    time.sleep(1.5)  # a run claimed just before the pause may still be on its way
    before = len(_get(platform, key, "/v1/runs", workflowId=wf_id, limit=200)["data"])
    time.sleep(6)  # three intervals
    after = len(_get(platform, key, "/v1/runs", workflowId=wf_id, limit=200)["data"])
    assert after == before, "a paused schedule starts no run"

    # A new version with another schedule, activated: Prefect's schedule follows.
    spec["trigger"]["config"] = {"cron": "0 6 * * *", "timezone": "America/New_York"}
    resp = httpx.put(f"{url}/v1/workflows/{wf_id}", json=spec, headers={"x-api-key": key})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "active"
    synced = _wait(
        "the new schedule synced",
        lambda: (s := _get(platform, key, f"/v1/workflows/{wf_id}/schedule"))["synced"] and s,
        seconds=30,
    )
    first = datetime.fromtimestamp(synced["nextRuns"][0] / 1000, ZoneInfo("America/New_York"))
    assert synced["cron"] == "0 6 * * *" and (first.hour, first.minute) == (6, 0)
    deployment = httpx.get(
        f"{platform.prefect_api_url}/deployments/{schedule['prefectDeploymentId']}"
    ).json()
    assert deployment["paused"] is False
    [active] = deployment["schedules"]
    assert active["active"] is True and active["schedule"]["cron"] == "0 6 * * *"
    assert active["schedule"]["timezone"] == "America/New_York"


def test_manual_run_completes_on_the_platform(platform: Platform) -> None:
    key, url = platform.demo_key, platform.api_url
    spec = {
        "name": "By hand",
        "slug": f"hand-{uuid.uuid4().hex[:6]}",
        "status": "active",
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "echo",
                "name": "Echo",
                "type": "action",
                "config": {"action": "transform", "output": {"x": "{{ trigger.data.x }}"}},
            }
        ],
    }
    headers = {"x-api-key": key}
    wf = httpx.post(f"{url}/v1/workflows", json=spec, headers=headers, timeout=30).json()
    resp = httpx.post(
        f"{url}/v1/workflows/{wf['id']}/runs", json={"data": {"x": 7}}, headers=headers
    )
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["runId"]
    run = _wait(
        "the manual run finished",
        lambda: (
            (r := _get(platform, key, f"/v1/runs/{run_id}"))["status"] in ("completed", "failed")
            and r
        ),
        seconds=60,
    )
    assert run["status"] == "completed" and run["triggerType"] == "manual"
    assert run["steps"][0]["output"] == {"x": 7}


def test_a_scheduled_flow_run_whose_claim_was_lost_runs_once(
    platform: Platform, monkeypatch
) -> None:
    """A worker claims a scheduled flow run (Scheduled -> Pending) and dies before making its
    run: a recovery pass (every worker makes one every few ticks) puts it back to Scheduled,
    due now, and the ordinary pick-up runs it, once. Real Prefect server, real worker."""
    import asyncio
    from datetime import timedelta
    from types import SimpleNamespace

    from prefect.client.orchestration import PrefectClient

    from orbin_flows.runtime.schedule_recovery import recover_stuck
    from tenancy import config, db

    key, url = platform.demo_key, platform.api_url
    spec = {
        "name": "Hourly",
        "slug": f"hourly-{uuid.uuid4().hex[:6]}",
        "status": "active",
        "trigger": {"type": "schedule", "config": {"interval": 3600}},
        "steps": [
            {
                "id": "at",
                "name": "At",
                "type": "action",
                "config": {"action": "transform", "output": "{{ trigger.scheduledTime }}"},
            }
        ],
    }
    resp = httpx.post(f"{url}/v1/workflows", json=spec, headers={"x-api-key": key}, timeout=30)
    assert resp.status_code == 201, resp.text
    wf_id = resp.json()["id"]
    schedule = _wait(
        "the schedule synced",
        lambda: (s := _get(platform, key, f"/v1/workflows/{wf_id}/schedule"))["synced"] and s,
        seconds=30,
    )
    prefect = platform.prefect_api_url

    def ahead() -> list[dict]:
        """Prefect's scheduler makes flow runs ahead of time: those not due for an hour."""
        r = httpx.post(
            f"{prefect}/flow_runs/filter",
            json={
                "deployments": {"id": {"any_": [schedule["prefectDeploymentId"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                "sort": "EXPECTED_START_TIME_DESC",
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        later = time.time() + 1800
        return [
            fr
            for fr in r.json()
            if fr["auto_scheduled"]
            and datetime.fromisoformat(fr["expected_start_time"]).timestamp() > later
        ]

    lost = _wait("flow runs scheduled ahead", ahead, seconds=60)[0]
    # The claim of a worker that then died: Pending, and no Orbin run.
    r = httpx.post(
        f"{prefect}/flow_runs/{lost['id']}/set_state",
        json={"state": {"type": "PENDING", "name": "Pending"}, "force": True},
        timeout=10,
    )
    assert r.status_code in (200, 201), r.text

    monkeypatch.setenv("ORBIN_HOME", str(platform.home))
    monkeypatch.setenv(
        "ORBIN_DATABASE_URL",
        platform.env.get("ORBIN_DATABASE_URL") or f"sqlite:///{platform.home / 'orbin.db'}",
    )
    config.reset_settings()
    db.dispose_engines()
    try:

        async def recovery_pass() -> int:
            async with PrefectClient(prefect) as client:
                worker = SimpleNamespace(client=client, lease_ms=30_000)
                return await recover_stuck(worker, stuck_after=timedelta(0))

        assert asyncio.run(recovery_pass()) >= 1
    finally:
        db.dispose_engines()
        monkeypatch.undo()
        config.reset_settings()

    def its_runs() -> list[dict]:
        runs = _get(platform, key, "/v1/runs", workflowId=wf_id, limit=200)["data"]
        return [r for r in runs if r.get("prefectFlowRunId") == lost["id"]]

    [run] = _wait(
        "the recovered flow run's run completed",
        lambda: (rs := its_runs()) and rs[0]["status"] == "completed" and rs,
        seconds=60,
    )
    assert run["triggerType"] == "schedule"
    time.sleep(2)  # a second pick-up of the same flow run would show by now
    assert len(its_runs()) == 1
