"""An Orbin installation whose workers a test may kill, stop and restart.

The shared ``platform`` fixtures run ``orbin up``, which stops everything when one of its
processes dies; recovery tests need workers they own. This rig runs a Prefect server, the
API and any number of ``orbin worker`` processes, each in its own process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support import services

BIN = services.ROOT / ".venv" / "bin"
FINAL = ("completed", "failed", "canceled", "timed_out")


@dataclass
class Rig:
    home: Path
    prefect: services.PrefectServer | services.PrefectCluster
    env: dict[str, str]
    api_url: str
    key: str = ""
    api: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def prefect_api_url(self) -> str:
        return self.prefect.api_url

    def orbin(self, *args: str) -> str:
        out = subprocess.run(
            [str(BIN / "orbin"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            cwd=str(services.ROOT),
        )
        return out.stdout.strip()

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        return subprocess.Popen(
            args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(services.ROOT),
        )

    def start_worker(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        worker_env = {**self.env, **env}
        proc = self._spawn(f"worker-{name}", [str(BIN / "orbin"), "worker"], worker_env)
        self.workers[name] = proc
        return proc

    def wait_worker_ready(self, name: str, seconds: float = 60) -> None:
        log = self.home / f"worker-{name}.log"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if log.exists() and "started" in log.read_text(errors="replace"):
                return
            assert self.workers[name].poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"worker {name} did not start: {log.read_text()[-3000:]}")

    def kill_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        services.stop_process(proc, grace=15)

    def stop(self) -> None:
        for name in list(self.workers):
            self.stop_worker(name)
        if self.api is not None:
            services.stop_process(self.api)
        self.prefect.stop()

    # --- the API, as a user calls it --------------------------------------------------

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"x-api-key": self.key, **kw.pop("headers", {})}
        return httpx.request(method, self.api_url + path, headers=headers, timeout=30, **kw)


def start_rig(
    home: Path,
    *,
    database_url: str | None = None,
    prefect_database_url: str | None = None,
    prefect_redis_url: str | None = None,
    prefect_replicas: int = 2,
    **extra_env: str,
) -> Rig:
    home.mkdir(parents=True, exist_ok=True)
    prefect: services.PrefectServer | services.PrefectCluster
    if prefect_redis_url:  # Prefect as replicas (services.start_prefect_cluster)
        assert prefect_database_url, "Prefect replicas share one PostgreSQL database"
        prefect = services.start_prefect_cluster(
            home / "prefect", prefect_database_url, prefect_redis_url, replicas=prefect_replicas
        )
    else:
        prefect = services.start_prefect_server(home / "prefect", prefect_database_url)
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORBIN_", "PREFECT_"))}
    env.update(
        ORBIN_HOME=str(home),
        ORBIN_API_PORT=str(port),
        PREFECT_API_URL=prefect.api_url,
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        ORBIN_PROJECT_DIR=str(services.ROOT),
    )
    # The local HTTP services steps call (tests/support/httpd.py) listen on 127.0.0.2.
    env["ORBIN_EGRESS_ALLOW"] = "127.0.0.2"
    if database_url:
        env["ORBIN_DATABASE_URL"] = database_url
    env.update(extra_env)
    rig = Rig(home=home, prefect=prefect, env=env, api_url=f"http://127.0.0.1:{port}")
    try:
        rig.orbin("migrate")
        rig.key = rig.orbin("seed").splitlines()[-1]
        rig.api = rig._spawn("api", [str(BIN / "orbin"), "api"], env)
        if not services.wait_http(rig.api_url + "/healthz", 120, rig.api):
            raise RuntimeError((home / "api.log").read_text()[-3000:])
    except BaseException:
        rig.stop()
        raise
    return rig
