"""Real services for tests: PostgreSQL databases, Redis, a Prefect server, the whole platform."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PG_ADMIN = os.environ.get("ORBIN_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ORBIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def postgres_available() -> bool:
    if not _answers("127.0.0.1", 5432):
        return False
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001
        return False


def redis_available() -> bool:
    if not _answers("127.0.0.1", 6379):
        return False
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except Exception:  # noqa: BLE001
        return False


def create_pg_database(prefix: str = "orbin_t", template: str | None = None) -> str:
    """A fresh database (a copy of ``template`` if given); returns its name."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    return name


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(name: str, driver: str = "psycopg") -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql+{driver}://{base}/{name}"


def wait_http(url: str, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class PrefectServer:
    api_url: str
    proc: subprocess.Popen[bytes]
    home: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        stop_process(self.proc)

    def start_again(self) -> None:
        """Restart on the same port and database (outage tests)."""
        self.proc = _spawn_prefect(
            self.home, self.database_url, int(self.api_url.split(":")[-1].split("/")[0])
        )
        if not wait_http(self.api_url + "/health", 120, self.proc):
            raise RuntimeError("the Prefect server did not come back")


def _spawn_prefect(home: Path, database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_UI_ENABLED="false",
    )
    log = open(home / "server.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_prefect_server(home: Path, database_url: str | None = None) -> PrefectServer:
    home.mkdir(parents=True, exist_ok=True)
    db = database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    port = free_port()
    proc = _spawn_prefect(home, db, port)
    api = f"http://127.0.0.1:{port}/api"
    if not wait_http(api + "/health", 180, proc):
        stop_process(proc)
        raise RuntimeError(
            f"the Prefect server did not start: {(home / 'server.log').read_text()[-2000:]}"
        )
    return PrefectServer(api_url=api, proc=proc, home=home, database_url=db)


# Prefect's scale model: API replicas sharing messaging, the event cache, causal ordering and
# concurrency leases through Redis (prefect-redis), with the background services run once.
PREFECT_REDIS_SETTINGS = {
    "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
    "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
    "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
}


@dataclass
class PrefectCluster:
    """``replicas`` Prefect API servers (``--no-services``) on one PostgreSQL database and one
    Redis, and one ``prefect server services start`` process. ``api_url`` is the first
    replica's (the same interface as ``PrefectServer``); ``api_urls`` all of them."""

    api_urls: list[str]
    procs: list[subprocess.Popen[bytes]]
    home: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.api_urls[0]

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.procs[0]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)


def start_prefect_cluster(
    home: Path, database_url: str, redis_url: str, *, replicas: int = 2
) -> PrefectCluster:
    """Replica 1 migrates the database, then the others start, then the services."""
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_REDIS_MESSAGING_URL=redis_url,
        **PREFECT_REDIS_SETTINGS,
    )
    cluster = PrefectCluster([], [], home, database_url, env)
    prefect = [sys.executable, "-m", "prefect"]
    try:
        for i in range(replicas):
            port = free_port()
            url = f"http://127.0.0.1:{port}/api"
            replica_env = {**env, "PREFECT_API_URL": url}
            if i:
                replica_env["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] = "false"
            log = open(home / f"server-{i + 1}.log", "ab")  # noqa: SIM115
            proc = subprocess.Popen(
                [*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
                + ["--no-services"],
                env=replica_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            cluster.api_urls.append(url)
            cluster.procs.append(proc)
            if not wait_http(url + "/health", 180, proc):
                raise RuntimeError((home / f"server-{i + 1}.log").read_text()[-2000:])
        log = open(home / "services.log", "ab")  # noqa: SIM115
        cluster.procs.append(
            subprocess.Popen(
                [*prefect, "server", "services", "start"],
                env={**env, "PREFECT_API_URL": cluster.api_urls[0]},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass
class Platform:
    """``orbin up`` in its own process group, with its own home, ports and databases."""

    proc: subprocess.Popen[bytes]
    home: Path
    api_url: str
    prefect_api_url: str
    dashboard_url: str
    env: dict[str, str]
    demo_key: str
    demo_password: str
    log_path: Path

    def orbin(self, *args: str) -> str:
        out = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "orbin"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return out.stdout.strip()

    def new_key(self, org: str = "demo", type: str = "secret", *extra: str) -> str:
        return self.orbin(
            "api-key",
            "create",
            "--org",
            org,
            "--type",
            type,
            "--name",
            f"t-{uuid.uuid4().hex[:6]}",
            *extra,
        ).splitlines()[-1]

    def stop(self) -> None:
        stop_process(self.proc, grace=15)


def start_platform(
    home: Path,
    *,
    database_url: str | None = None,
    prefect_database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Platform:
    home.mkdir(parents=True, exist_ok=True)
    api_port, dash_port, prefect_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORBIN_", "PREFECT_"))}
    env.update(
        ORBIN_HOME=str(home),
        ORBIN_API_PORT=str(api_port),
        ORBIN_DASHBOARD_PORT=str(dash_port),
        ORBIN_PREFECT_PORT=str(prefect_port),
    )
    # The local HTTP services steps call (tests/support/httpd.py) listen on 127.0.0.2.
    env["ORBIN_EGRESS_ALLOW"] = "127.0.0.2"
    if database_url:
        env["ORBIN_DATABASE_URL"] = database_url
    if prefect_database_url:
        env["ORBIN_PREFECT_DATABASE_URL"] = prefect_database_url
    env.update(extra_env or {})
    log_path = home / "up.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    log = open(log_path, "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "orbin"), "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=str(ROOT),
    )
    api = f"http://127.0.0.1:{api_port}"
    if not wait_http(api + "/healthz", 240, proc):
        stop_process(proc)
        raise RuntimeError(f"orbin up did not become healthy:\n{log_path.read_text()[-3000:]}")
    for _ in range(100):
        text = log_path.read_bytes()[offset:].decode(errors="replace")
        if "Press Ctrl-C" in text:
            break
        time.sleep(0.1)
    key = re.search(r"API key\s+(sk_live_\S+)", text)
    pw = re.search(r"Demo login \S+ / (\S+)", text)
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{prefect_port}/api"
    # The Prefect server `orbin up` starts requires basic auth (tenancy/prefect_auth.py): the
    # Prefect client reads PREFECT_API_AUTH_STRING; plain httpx calls get it in the URL.
    auth_file = home / "prefect-auth-string"
    auth = auth_file.read_text().strip() if auth_file.exists() else ""
    prefect_api_url = env["PREFECT_API_URL"]
    if auth:
        env["PREFECT_API_AUTH_STRING"] = auth
        prefect_api_url = f"http://{auth}@127.0.0.1:{prefect_port}/api"
    return Platform(
        proc=proc,
        home=home,
        api_url=api,
        prefect_api_url=prefect_api_url,
        dashboard_url=f"http://127.0.0.1:{dash_port}",
        env=env,
        demo_key=key.group(1) if key else "",
        demo_password=pw.group(1) if pw else "",
        log_path=log_path,
    )
