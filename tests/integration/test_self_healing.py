"""`orbin up` heals: a child killed with SIGKILL is restarted with backoff while the others
keep serving, the output says so, and events acknowledged around the kill are all stored."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support import services


def _children(pid: int) -> dict[str, int]:
    """name -> pid of `orbin up`'s children (api, worker, dashboard, prefect-server)."""
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        words = [w.decode(errors="replace") for w in cmd]
        if "orbin_cli.main" in words:
            found[words[words.index("orbin_cli.main") + 1]] = int(entry)
        elif "streamlit" in words:
            found["dashboard"] = int(entry)
        elif "prefect" in words:
            found["prefect-server"] = int(entry)
    return found


@pytest.mark.timeout(600)
def test_a_killed_api_and_worker_are_restarted_and_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    p = services.start_platform(tmp_path / "home")
    try:
        before = _children(p.proc.pid)
        assert {"api", "worker", "dashboard", "prefect-server"} <= before.keys(), before
        accepted: dict[int, str] = {}

        def send(i: int) -> None:
            give_up = time.monotonic() + 120  # past the API's restart, however slow
            while time.monotonic() < give_up:
                try:
                    r = httpx.post(
                        f"{p.api_url}/v1/events",
                        headers={"x-api-key": p.demo_key, "x-idempotency-key": f"heal-{i}"},
                        json={"type": "demo.hello", "data": {"name": f"n{i}"}},
                        timeout=5,
                    )
                    if r.status_code == 202:
                        accepted[i] = r.json()["runIds"][0]
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(40)]
        for i, t in enumerate(threads):
            t.start()
            time.sleep(0.05)
            if i == 10:
                os.kill(before["api"], signal.SIGKILL)
                os.kill(before["worker"], signal.SIGKILL)
        killed = time.monotonic()
        back = None
        while time.monotonic() - killed < 90:  # a restart is 0.5 s + a cold start; CI may be loaded
            try:
                if httpx.get(p.api_url + "/healthz", timeout=2).status_code == 200:
                    back = time.monotonic() - killed
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert back is not None, "the API was not restarted within 90 s"
        for t in threads:
            t.join(130)
        assert len(accepted) == 40
        after = _children(p.proc.pid)
        assert after["api"] != before["api"] and after["worker"] != before["worker"]
        assert after["dashboard"] == before["dashboard"], "the others kept serving"
        assert after["prefect-server"] == before["prefect-server"]
        deadline = time.monotonic() + 120
        pending = set(accepted.values())
        while pending and time.monotonic() < deadline:
            for rid in list(pending):
                r = httpx.get(f"{p.api_url}/v1/runs/{rid}", headers={"x-api-key": p.demo_key})
                if r.status_code == 200 and r.json()["status"] == "completed":
                    pending.discard(rid)
            time.sleep(0.5)
        assert not pending, f"{len(pending)} acknowledged runs did not complete"
        log = p.log_path.read_text()
        assert "api exited with -9; restarting it in" in log and "api restarted" in log
        assert "worker exited with -9" in log
    finally:
        p.stop()


@pytest.mark.timeout(600)
def test_a_killed_prefect_server_is_restarted_and_every_run_finishes_once(
    tmp_path: Path,
) -> None:
    p = services.start_platform(tmp_path / "home")
    try:
        before = _children(p.proc.pid)
        key = {"x-api-key": p.demo_key}
        accepted: dict[int, str] = {}

        def send(i: int) -> None:
            give_up = time.monotonic() + 120  # past the API's restart, however slow
            while time.monotonic() < give_up:
                try:
                    r = httpx.post(
                        f"{p.api_url}/v1/events",
                        headers={**key, "x-idempotency-key": f"pf-{i}"},
                        json={"type": "demo.hello", "data": {"name": f"p{i}"}},
                        timeout=5,
                    )
                    if r.status_code == 202:
                        accepted[i] = r.json()["runIds"][0]
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(40)]
        for i, t in enumerate(threads):
            t.start()
            time.sleep(0.05)
            if i == 10:
                os.kill(before["prefect-server"], signal.SIGKILL)
        for t in threads:
            t.join(60)
        assert len(accepted) == 40, "ingestion never waits on Prefect"
        deadline = time.monotonic() + 240
        pending = set(accepted.values())
        while pending and time.monotonic() < deadline:
            for rid in list(pending):
                r = httpx.get(f"{p.api_url}/v1/runs/{rid}", headers=key)
                if r.status_code == 200 and r.json()["status"] in ("completed", "failed"):
                    assert r.json()["status"] == "completed", r.json()
                    pending.discard(rid)
            time.sleep(0.5)
        assert not pending, f"{len(pending)} runs did not finish after Prefect came back"
        after = _children(p.proc.pid)
        assert after["prefect-server"] != before["prefect-server"]
        assert after["api"] == before["api"], "the API kept serving"
        for rid in accepted.values():  # each step ran once: one attempt, completed
            r = httpx.get(f"{p.api_url}/v1/runs/{rid}", headers=key)
            while r.status_code == 429:  # the polling above spent the free plan's minute
                time.sleep(float(r.headers.get("retry-after", "1")))
                r = httpx.get(f"{p.api_url}/v1/runs/{rid}", headers=key)
            assert r.status_code == 200, r.text
            run = r.json()
            ids = [s["stepId"] for s in run["steps"]]
            assert ids and len(ids) == len(set(ids)), f"a step attempt repeated: {ids}"
            assert all(s["status"] == "completed" for s in run["steps"]), run["steps"]
        log = p.log_path.read_text()
        assert "prefect-server exited with -9; restarting it in" in log
    finally:
        p.stop()
