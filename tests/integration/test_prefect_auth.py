"""The Prefect server `orbin up` starts refuses requests without its auth string, while
Orbin's own processes (API, worker) present it: runs still complete as Prefect flow runs."""

from __future__ import annotations

import stat
import time

import httpx

from tests.support.services import Platform


def test_prefect_requires_the_auth_string_and_orbin_presents_it(platform: Platform) -> None:
    f = platform.home / "prefect-auth-string"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    auth = f.read_text().strip()
    bare = platform.env["PREFECT_API_URL"]
    assert httpx.post(f"{bare}/flow_runs/filter", json={}).status_code == 401
    assert httpx.post(f"{bare}/flow_runs/filter", json={}, auth=("x", "y")).status_code == 401
    user, _, password = auth.partition(":")
    assert httpx.post(f"{bare}/flow_runs/filter", json={}, auth=(user, password)).is_success
    log = platform.log_path.read_text()
    assert "Prefect UI" in log and str(f) in log
    assert log.count(auth) <= 1, "printed once, on first start"
    key = {"x-api-key": platform.demo_key}
    rid = httpx.post(
        f"{platform.api_url}/v1/events", headers=key, json={"type": "demo.hello", "data": {}}
    ).json()["runIds"][0]
    for _ in range(200):
        run = httpx.get(f"{platform.api_url}/v1/runs/{rid}", headers=key).json()
        if run["status"] in ("completed", "failed"):
            break
        time.sleep(0.3)
    assert run["status"] == "completed", run
    # Orbin commits the run's end inside the flow body; Prefect's engine records COMPLETED
    # just after the body returns, so its state may trail by a moment under load.
    for _ in range(100):
        url = f"{platform.prefect_api_url}/flow_runs/{run['prefectFlowRunId']}"
        fr = httpx.get(url).json()
        if fr["state_type"] != "RUNNING":
            break
        time.sleep(0.3)
    assert fr["state_type"] == "COMPLETED", fr["state_type"]
