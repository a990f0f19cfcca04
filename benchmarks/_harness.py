"""What the benchmarks share: Orbin on PostgreSQL with its own Prefect server, started fresh,
and small helpers to talk to it. Run the scripts from the project root with the project venv:
``.venv/bin/python benchmarks/<script>.py``."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import services  # noqa: E402


def prefect_for_clients(platform: Any) -> str:
    """The Prefect API URL for a stock Prefect client in this process, its basic-auth string
    set as PREFECT_API_AUTH_STRING (credentials in the URL reach HTTP calls but not the events
    websocket, so a baseline would run without sending its events)."""
    auth = platform.env.get("PREFECT_API_AUTH_STRING")
    if auth:
        os.environ["PREFECT_API_AUTH_STRING"] = auth
    return platform.env["PREFECT_API_URL"]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):7.1f}  p95 {pct(values, 95):7.1f}  p99 {pct(values, 99):7.1f}  "
        f"mean {statistics.fmean(values):7.1f}  (n={len(values)})"
    )


@contextmanager
def orbin_on_postgres(tmp: Path, extra_env: dict[str, str] | None = None):
    """``orbin up`` on two fresh PostgreSQL databases; yields the Platform."""
    if not services.postgres_available():
        sys.exit("PostgreSQL must answer on 127.0.0.1:5432 (the benchmarks run on it)")
    orbin_db = services.create_pg_database("orbin_bench")
    prefect_db = services.create_pg_database("prefect_bench")
    platform = services.start_platform(
        tmp,
        database_url=services.pg_url(orbin_db),
        prefect_database_url=services.pg_url(prefect_db, driver="asyncpg"),
        extra_env={"ORBIN_LOG_LEVEL": "WARNING", **(extra_env or {})},
    )
    try:
        yield platform
    finally:
        platform.stop()
        services.drop_pg_database(orbin_db)
        services.drop_pg_database(prefect_db)


def api(platform: Any, method: str, path: str, key: str, body: Any = None) -> Any:
    r = httpx.request(
        method, platform.api_url + path, headers={"x-api-key": key}, json=body, timeout=30
    )
    r.raise_for_status()
    return r.json()


def create_workflow(platform: Any, key: str, spec: dict[str, Any]) -> dict[str, Any]:
    return api(platform, "POST", "/v1/workflows", key, spec)


def wait_runs(platform: Any, key: str, run_ids: list[str], timeout: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict] = {}
    while len(done) < len(run_ids) and time.monotonic() < deadline:
        for rid in run_ids:
            if rid in done:
                continue
            run = api(platform, "GET", f"/v1/runs/{rid}", key)
            if run["status"] in ("completed", "failed", "canceled", "timed_out"):
                done[rid] = run
        if len(done) < len(run_ids):
            time.sleep(0.5)
    return [done.get(rid) or api(platform, "GET", f"/v1/runs/{rid}", key) for rid in run_ids]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that are still alive."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / tick
    except (FileNotFoundError, IndexError):
        pass
    return total


def print_json(label: str, data: Any) -> None:
    print(f"{label}: {json.dumps(data)}")
