"""`orbin up` as an operator meets it: Ctrl-C stops everything, a second start keeps the data."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.support import services


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.timeout(600)
def test_ctrl_c_stops_every_process_and_a_restart_keeps_the_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = services.start_platform(home)
    assert first.demo_key.startswith("sk_live_") and first.demo_password
    rid = httpx.post(
        f"{first.api_url}/v1/events",
        headers={"x-api-key": first.demo_key},
        json={"type": "demo.hello", "data": {"name": "Grace"}},
    ).json()["runIds"][0]
    deadline = time.monotonic() + 60
    while (
        httpx.get(f"{first.api_url}/v1/runs/{rid}", headers={"x-api-key": first.demo_key}).json()[
            "status"
        ]
        != "completed"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.3)

    first.stop()  # SIGINT to the process group, as Ctrl-C in a terminal
    deadline = time.monotonic() + 20
    while _group_alive(first.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(first.proc.pid), "a process of `orbin up` outlived Ctrl-C"
    for url in (first.api_url + "/healthz", first.dashboard_url, first.prefect_api_url + "/health"):
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, timeout=2)

    second = services.start_platform(home)
    try:
        log = second.log_path.read_text().rsplit("Orbin home:", 1)[-1]
        assert "password printed on first start" in log and "API key" not in log
        assert "orbin user reset-password --email demo@orbin.local" in log
        run = httpx.get(
            f"{second.api_url}/v1/runs/{rid}", headers={"x-api-key": first.demo_key}
        ).json()
        assert run["status"] == "completed"
        assert run["steps"][0]["output"] == {"message": "Hello Grace!"}
    finally:
        second.stop()
