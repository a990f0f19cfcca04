"""Driving Orbin over HTTP as a user would, and reading Prefect as an operator would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

FINAL = ("completed", "failed", "canceled", "timed_out")


class Orbin:
    def __init__(self, api_url: str, key: str, prefect_api_url: str) -> None:
        self.api_url = api_url
        self.key = key
        self.prefect = prefect_api_url

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request; a 429 is waited out as its Retry-After says, as a client should."""
        headers = {"x-api-key": self.key, **kw.pop("headers", {})}
        for _ in range(10):
            resp = httpx.request(method, self.api_url + path, headers=headers, timeout=30, **kw)
            if resp.status_code != 429:
                return resp
            time.sleep(min(float(resp.headers.get("retry-after", "1")), 10))
        return resp

    def create(self, spec: dict[str, Any], *, unique: bool = True) -> str:
        spec = {"status": "active", "trigger": {"type": "manual"}, **spec}
        if unique:
            spec["slug"] = f"{spec['slug']}-{uuid.uuid4().hex[:6]}"
        resp = self.call("POST", "/v1/workflows", json=spec)
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def start(self, workflow_id: str, data: dict[str, Any] | None = None) -> str:
        resp = self.call("POST", f"/v1/workflows/{workflow_id}/runs", json={"data": data or {}})
        assert resp.status_code == 202, resp.text
        return resp.json()["runId"]

    def run(self, run_id: str) -> dict[str, Any]:
        resp = self.call("GET", f"/v1/runs/{run_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_until(
        self, run_id: str, check: Callable[[dict[str, Any]], bool], seconds: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            run = self.run(run_id)
            if check(run):
                return run
            assert time.monotonic() < deadline, f"not reached in {seconds}s: {run}"
            time.sleep(0.1)

    def wait(self, run_id: str, seconds: float = 60) -> dict[str, Any]:
        return self.wait_until(run_id, lambda r: r["status"] in FINAL, seconds)

    def steps(self, run: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The last attempt of each step, by step id."""
        return {s["stepId"]: s for s in run["steps"]}

    # --- Prefect, as an operator sees it ----------------------------------------------

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return httpx.get(f"{self.prefect}/flow_runs/{flow_run_id}", timeout=30).json()

    def wait_flow_run(self, flow_run_id: str, *types: str, seconds: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            fr = self.flow_run(flow_run_id)
            if fr.get("state_type") in types:
                return fr
            assert time.monotonic() < deadline, f"flow run not {types}: {fr.get('state')}"
            time.sleep(0.1)

    def task_runs(self, flow_run_id: str, at_least: int = 1, seconds: float = 15) -> list[dict]:
        deadline = time.monotonic() + seconds
        while True:
            runs = httpx.post(
                f"{self.prefect}/task_runs/filter",
                json={"flow_runs": {"id": {"any_": [flow_run_id]}}},
                timeout=30,
            ).json()
            if len(runs) >= at_least or time.monotonic() > deadline:
                return runs
            time.sleep(0.2)

    def flow_run_states(self, flow_run_id: str) -> list[str]:
        states = httpx.get(
            f"{self.prefect}/flow_run_states/", params={"flow_run_id": flow_run_id}, timeout=30
        ).json()
        return [s["name"] for s in sorted(states, key=lambda s: s["timestamp"])]
