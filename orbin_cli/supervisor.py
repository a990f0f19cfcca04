"""``orbin up``: every process of the platform on one machine, stopped together by Ctrl-C.
A child that dies is restarted with backoff (0.5 s, doubling up to 30 s; reset after a
minute of life) while the others keep serving, and the output says so."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tenancy import prefect_auth
from tenancy.config import get_settings


def _say(message: str) -> None:
    print(message, flush=True)


def prefect_env() -> dict[str, str]:
    """The environment every child process gets: which Prefect server, no telemetry."""
    s = get_settings()
    env = dict(os.environ)
    env["ORBIN_HOME"] = str(s.resolved_home)
    env["PREFECT_API_URL"] = s.prefect_api_url
    env.setdefault("PREFECT_HOME", str(s.resolved_home / "prefect"))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.setdefault("PREFECT_UI_ENABLED", "true")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    return env


def _wait_http(url: str, proc: subprocess.Popen[bytes] | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 30.0
RESTART_RESET_AFTER = 60.0


class Platform:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = False
        self._specs: dict[str, tuple[list[str], dict[str, str]]] = {}
        self._started: dict[str, float] = {}
        self._delay: dict[str, float] = {}
        self._due: dict[str, float] = {}

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log_dir = get_settings().resolved_home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        out = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()  # the child holds its own copy
        self.procs = [(n, p) for n, p in self.procs if n != name] + [(name, proc)]
        self._specs[name] = (args, env)
        self._started[name] = time.monotonic()
        return proc

    def heal(self) -> None:
        """Restart each child that died, after its backoff delay."""
        now = time.monotonic()
        for name, proc in list(self.procs):
            if proc.poll() is None or self.stopping:
                continue
            if name not in self._due:
                lived = now - self._started.get(name, now)
                delay = self._delay.get(name, 0.0)
                delay = RESTART_FIRST_DELAY if lived > RESTART_RESET_AFTER or not delay else delay
                self._due[name] = now + delay
                self._delay[name] = min(delay * 2, RESTART_MAX_DELAY)
                log = get_settings().resolved_home / "logs" / f"{name}.log"
                code = proc.returncode
                _say(f"{name} exited with {code}; restarting it in {delay:.1f} s (see {log})")
            elif now >= self._due[name]:
                del self._due[name]
                args, env = self._specs[name]
                new = self.spawn(name, args, env)
                if self.stopping:  # Ctrl-C arrived meanwhile: this one stops too
                    new.terminate()
                    return
                _say(f"{name} restarted (pid {new.pid})")

    def stop(self, *_: object) -> None:
        if self.stopping:
            return
        self.stopping = True
        _say("stopping Orbin ...")
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 8
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def _sync_pools() -> None:
    """Each organization's Prefect pool gets its plan's concurrency before the API answers
    (the worker keeps them in step afterwards)."""
    from orbin_flows.billing.upkeep import sync_pools_blocking

    try:
        sync_pools_blocking()
    except Exception as exc:  # noqa: BLE001 - the worker syncs them on its first pass
        _say(f"the work pools' concurrency limits will be set by the worker ({exc})")


def run_platform() -> int:
    s = get_settings()
    home = s.resolved_home
    home.mkdir(parents=True, exist_ok=True)
    manages_prefect = s.manages_prefect_server
    env = prefect_env()
    os.environ.update({k: env[k] for k in ("PREFECT_API_URL", "PREFECT_HOME", "ORBIN_HOME")})
    platform = Platform()
    signal.signal(signal.SIGINT, platform.stop)
    signal.signal(signal.SIGTERM, platform.stop)

    from orbin_flows.demo import seed_demo
    from tenancy.billing import sync_plan_limits
    from tenancy.db import session_scope
    from tenancy.errors import OrbinError
    from tenancy.migrate import upgrade
    from tenancy.plans import load_plans

    _say(f"Orbin home: {home}")
    try:
        load_plans()  # a bad ORBIN_PLANS_FILE stops here, with what is wrong in it
    except OrbinError as exc:
        _say(f"error: {exc.message}")
        return 2
    upgrade()
    with session_scope() as session:
        demo = seed_demo(session)
        sync_plan_limits(session)

    prefect_auth_shown = ""
    if manages_prefect:
        # The server requires basic auth; every child presents it (tenancy/prefect_auth.py).
        auth, created = prefect_auth.ensure()
        env["PREFECT_API_AUTH_STRING"] = os.environ["PREFECT_API_AUTH_STRING"] = auth
        prefect_auth_shown = (
            f"   (sign in: {auth}; kept in {prefect_auth.path()})"
            if created
            else f"   (sign in with the user:password in {prefect_auth.path()})"
        )
        if os.environ.get("PREFECT_SERVER_API_AUTH_STRING"):
            prefect_auth_shown = "   (sign in with your PREFECT_SERVER_API_AUTH_STRING)"
        (home / "prefect").mkdir(parents=True, exist_ok=True)
        penv = dict(env)
        penv["PREFECT_SERVER_API_AUTH_STRING"] = auth
        penv["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = s.resolved_prefect_database_url
        penv["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
        penv["PREFECT_SERVER_API_PORT"] = str(s.prefect_port)
        proc = platform.spawn(
            "prefect-server",
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(s.prefect_port),
            ],
            penv,
        )
        _say(f"starting the Prefect server on 127.0.0.1:{s.prefect_port} ...")
        if not _wait_http(s.prefect_api_url.rstrip("/") + "/health", proc, 180):
            _say(f"the Prefect server did not start; see {home / 'logs' / 'prefect-server.log'}")
            platform.stop()
            return 1
    else:
        _say(f"using the Prefect server at {s.prefect_api_url}")

    _sync_pools()
    orbin = [sys.executable, "-m", "orbin_cli.main"]
    api = platform.spawn("api", [*orbin, "api"], env)
    platform.spawn("worker", [*orbin, "worker"], env)
    spec = importlib.util.find_spec("streamlit_app")
    assert spec is not None and spec.origin is not None
    entry = Path(spec.origin).parent / "streamlit_app.py"
    platform.spawn(
        "dashboard",
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(entry),
            "--server.port",
            str(s.dashboard_port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        env,
    )
    if not _wait_http(f"http://127.0.0.1:{s.api_port}/healthz", api, 120):
        _say(f"the API did not become healthy; see {home / 'logs' / 'api.log'}")
        platform.stop()
        return 1

    lines = [
        "",
        "Orbin is running.",
        f"  API        {s.api_url}   (docs: /docs)",
        f"  Dashboard  http://127.0.0.1:{s.dashboard_port}",
        f"  Prefect UI {s.prefect_api_url.removesuffix('/api')}{prefect_auth_shown}",
        f"  Logs       {home / 'logs'}",
    ]
    if demo.created:
        lines += [
            f"  Demo login {demo.email} / {demo.password}",
            f"  API key    {demo.api_key}",
            "  (shown once; make more with: .venv/bin/orbin api-key create --org demo --name NAME)",
            "",
            "Try it:",
            f"  curl -X POST {s.api_url}/v1/events -H 'x-api-key: {demo.api_key}' "
            "-H 'content-type: application/json' "
            """-d '{"type":"demo.hello","data":{"name":"Ada"}}'""",
        ]
    else:
        lines += [
            f"  Demo login {demo.email} (password printed on first start)",
            f"  (forgot it? a new one: .venv/bin/orbin user reset-password --email {demo.email})",
        ]
    lines.append("Press Ctrl-C to stop.")
    _say("\n".join(lines))

    while not platform.stopping:
        platform.heal()
        time.sleep(0.2)
    return 0
