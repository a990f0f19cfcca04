"""The walking skeleton from outside: an event becomes a completed run, visible in Prefect."""

from __future__ import annotations

import time

import httpx

from tests.support.services import Platform


def wait_run(p: Platform, key: str, run_id: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        run = httpx.get(f"{p.api_url}/v1/runs/{run_id}", headers={"x-api-key": key}).json()
        if run.get("status") in ("completed", "failed", "canceled", "timed_out"):
            return run
        assert time.monotonic() < deadline, f"run not finished in {seconds}s: {run}"
        time.sleep(0.2)


def test_event_runs_the_demo_workflow_as_prefect_flow_and_tasks(platform: Platform) -> None:
    key = platform.demo_key
    assert key.startswith("sk_live_"), "orbin up prints the demo's secret key on first start"
    resp = httpx.post(
        f"{platform.api_url}/v1/events",
        headers={"x-api-key": key},
        json={"type": "demo.hello", "data": {"name": "Ada"}},
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["received"] is True and len(body["runIds"]) == 1
    run = wait_run(platform, key, body["runIds"][0])
    assert run["status"] == "completed", run
    steps = {s["stepId"]: s for s in run["steps"]}
    assert steps["greet"]["output"] == {"message": "Hello Ada!"}
    assert steps["summarize"]["output"]["greeting"] == "Hello Ada!"
    assert all(s["status"] == "completed" and s["startedAt"] for s in run["steps"])
    assert run["triggerType"] == "event" and run["triggerData"]["data"] == {"name": "Ada"}
    assert run["durationMs"] is not None and run["startedAt"] <= run["completedAt"]

    # The same run in Prefect: a flow run in the org's work pool, tagged, with a task per step.
    prefect = platform.prefect_api_url
    fr_id = run["prefectFlowRunId"]
    for _ in range(50):
        fr = httpx.get(f"{prefect}/flow_runs/{fr_id}").json()
        if fr["state_type"] == "COMPLETED":
            break
        time.sleep(0.2)
    assert fr["state_type"] == "COMPLETED"
    assert fr["work_pool_name"] == "orbin-demo"
    assert {"orbin", "org:demo", "workflow:hello"} <= set(fr["tags"])
    for _ in range(50):
        tasks = httpx.post(
            f"{prefect}/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [fr_id]}}},
        ).json()
        if len(tasks) >= 2:
            break
        time.sleep(0.2)
    assert sorted(t["task_key"].split("-")[0] for t in tasks) or tasks
    names = sorted(t["name"] for t in tasks)
    assert names == ["greet", "summarize"], names


def test_wrong_key_is_401_and_other_org_gets_404(platform: Platform) -> None:
    resp = httpx.get(f"{platform.api_url}/v1/runs", headers={"x-api-key": "sk_live_wrong"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthenticated"
    slug = f"other{int(time.time() * 1000) % 10**8}"
    platform.orbin("org", "create", "--slug", slug)
    other = platform.new_key(slug)
    mine = httpx.post(
        f"{platform.api_url}/v1/events",
        headers={"x-api-key": platform.demo_key},
        json={"type": "demo.hello", "data": {}},
    ).json()["runIds"][0]
    assert (
        httpx.get(f"{platform.api_url}/v1/runs/{mine}", headers={"x-api-key": other}).status_code
        == 404
    )
    listed = httpx.get(f"{platform.api_url}/v1/runs", headers={"x-api-key": other}).json()
    assert listed["data"] == []


def test_healthz_reports_each_dependency(platform: Platform) -> None:
    body = httpx.get(f"{platform.api_url}/healthz").json()
    assert body == {"status": "ok", "checks": {"database": "ok", "prefect": "ok"}}
