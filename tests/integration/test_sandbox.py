"""The python step's sandbox, escape by escape: files (Orbin's, ORBIN_HOME's, the host's),
environment, processes, sockets to local services (PostgreSQL, Redis, Prefect, the API: here
stand-ins listening on 127.0.0.1), every address form through the egress proxy, and the
limits. Allowed egress still works. Runs the real action in this process, as the worker does."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orbin_flows import sandbox
from orbin_flows.actions.base import FatalStepError, RetryableStepError, StepContext
from orbin_flows.actions.python import Python, PythonConfig
from orbin_flows.sandbox import bwrap
from tenancy import config

ROOT = Path(__file__).resolve().parents[2]
CTX = StepContext("org", "org", "run", "step", 1)
SECRET = "s3cr3t-fernet-key-material-0123456789"


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """An ORBIN_HOME with a key, a secret in this process's environment, listeners on
    127.0.0.1 standing in for Orbin's services, an allowed HTTP service on 127.0.0.2."""
    home = tmp_path_factory.mktemp("home")
    (home / "secret.key").write_text(SECRET)
    (home / "orbin.db").write_text("sqlite")
    listeners = []
    for _ in range(3):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        listeners.append(s)
    ok = ThreadingHTTPServer(("127.0.0.2", 0), _Ok)
    threading.Thread(target=ok.serve_forever, daemon=True).start()
    saved = dict(os.environ)
    os.environ["ORBIN_HOME"] = str(home)
    os.environ["ORBIN_SANDBOX_TEST_SECRET"] = SECRET
    os.environ["ORBIN_EGRESS_ALLOW"] = f"127.0.0.2:{ok.server_address[1]}"
    ports = [s.getsockname()[1] for s in listeners]
    os.environ["ORBIN_API_PORT"] = str(ports[0])
    os.environ["ORBIN_PREFECT_PORT"] = str(ports[1])
    config.reset_settings()
    try:
        yield {"home": home, "ports": ports, "ok": ok.server_address[1]}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        config.reset_settings()
        ok.shutdown()
        for s in listeners:
            s.close()


async def _run(code: str, **cfg: object) -> object:
    return await Python().run(PythonConfig(action="python", code=code, **cfg), CTX)


async def test_a_harmless_step_runs_and_returns_its_output(world) -> None:
    assert await _run("def main(input):\n    return {'sum': input['a'] + 1}", input={"a": 1}) == {
        "sum": 2
    }


PROBE = """
import glob, os, socket
def main(input):
    out = {"files": {}, "sockets": {}}
    home, root, worker = input["home"], input["root"], input["worker"]
    paths = [home + "/secret.key", home + "/orbin.db", root + "/pyproject.toml",
             "/proc/%d/environ" % worker, "/proc/%d/cmdline" % worker,
             "/proc/1/environ", "/proc/%d/environ" % os.getppid(), "/etc/passwd", "/root/.bashrc"]
    paths += glob.glob(input["home"] + "/*") + glob.glob(input["root"] + "/*")
    for p in paths:
        try:
            with open(p, "rb") as f:
                out["files"][p] = f.read(100000).decode("latin-1")
        except Exception as e:
            out["files"][p] = "ERR " + type(e).__name__
    try:
        with open("/tmp/x", "w") as f:
            f.write("scratch")
        open("/usr/evil", "w")
        out["usr"] = "writable"
    except OSError as e:
        out["usr"] = "ERR " + type(e).__name__
    out["env"] = dict(os.environ)
    out["uid"] = os.getuid()
    for port in input["ports"] + [5432, 6379]:
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"),
                             (socket.AF_INET, "127.0.0.2")):
            s = socket.socket(family)
            s.settimeout(1)
            try:
                s.connect((host, port))
                out["sockets"]["%s:%d" % (host, port)] = "connected"
            except Exception as e:
                out["sockets"]["%s:%d" % (host, port)] = "ERR " + type(e).__name__
            finally:
                s.close()
    try:
        socket.getaddrinfo("example.com", 80)
        out["dns"] = "resolved"
    except Exception as e:
        out["dns"] = "ERR " + type(e).__name__
    out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    return out
"""


async def test_a_step_sees_no_file_environment_process_or_socket_of_the_host(world) -> None:
    out = await _run(
        PROBE,
        input={
            "home": str(world["home"]),
            "root": str(ROOT),
            "worker": os.getpid(),
            "ports": world["ports"],
        },
    )
    seen = json.dumps(out)
    assert SECRET not in seen and "ORBIN_" not in seen and "PREFECT_" not in seen
    assert "sqlite" not in seen and "postgresql" not in seen and "[project]" not in seen
    assert all(v.startswith("ERR") for k, v in out["files"].items() if "/proc/" not in k), out
    assert out["env"].keys() <= {"HOME", "LANG", "PATH"}, out["env"]
    assert out["uid"] != 0
    assert out["usr"].startswith("ERR"), "the filesystem is read-only"
    assert "connected" not in out["sockets"].values(), out["sockets"]
    assert out["dns"].startswith("ERR")
    assert len(out["pids"]) <= 3, out["pids"]  # its own pid namespace


EGRESS = """
import urllib.request, urllib.error
def main(input):
    out = {}
    for url in input["urls"]:
        try:
            out[url] = urllib.request.urlopen(url, timeout=5).read().decode()
        except urllib.error.HTTPError as e:
            out[url] = "HTTP %d %s" % (e.code, e.read().decode())
        except Exception as e:
            out[url] = "ERR %s %s" % (type(e).__name__, e)
    return out
"""


async def test_the_only_way_out_is_the_egress_policy(world) -> None:
    api, prefect, _ = world["ports"]
    refused = [
        f"http://127.0.0.1:{prefect}/api/health",
        f"http://[::ffff:127.0.0.1]:{prefect}/api/health",
        f"http://[::ffff:7f00:1]:{api}/healthz",
        f"http://2130706433:{api}/",
        f"http://0x7f000001:{api}/",
        f"http://localhost:{api}/",
        f"http://0.0.0.0:{api}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://127.0.0.1:5432/",
        f"http://127.0.0.2:{world['ok'] + 1}/",  # the allowed host on another port
    ]
    allowed = f"http://127.0.0.2:{world['ok']}/ok"
    out = await _run(EGRESS, input={"urls": [*refused, allowed]})
    for url in refused:
        assert out[url].startswith("HTTP 403") and "refused" in out[url], (url, out[url])
    assert json.loads(out[allowed]) == {"ok": True}


async def test_https_tunnels_are_checked_too(world) -> None:
    code = """
import urllib.request
def main(input):
    try:
        urllib.request.urlopen("https://127.0.0.1:%d/" % input, timeout=5)
    except Exception as e:
        return str(e)
"""
    out = await _run(code, input=world["ports"][1])
    assert "403" in out


async def test_limits_hold(world) -> None:
    with pytest.raises(RetryableStepError, match="timed out"):
        await _run("import time\ndef main(input):\n    time.sleep(30)", timeoutSeconds=1)
    with pytest.raises(FatalStepError, match="memory|signal|MemoryError"):
        await _run("def main(input):\n    return len(bytearray(512 << 20))", memoryMb=64)
    forks = """
import os
def main(input):
    n = 0
    try:
        for _ in range(400):
            if os.fork() == 0:
                import time; time.sleep(5); os._exit(0)
            n += 1
    except OSError as e:
        return {"forked": n, "error": type(e).__name__}
    return {"forked": n}
"""
    out = await _run(forks, timeoutSeconds=20)
    assert out.get("error") == "BlockingIOError" and out["forked"] <= bwrap.MAX_TASKS, out
    files = """
def main(input):
    fs = []
    try:
        for _ in range(10000):
            fs.append(open("/tmp/f%d" % len(fs), "w"))
    except OSError as e:
        return len(fs)
"""
    assert await _run(files) < bwrap.MAX_OPEN_FILES


async def test_without_bubblewrap_python_steps_fail_closed(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bwrap.shutil, "which", lambda name: None)
    bwrap._probe.cache_clear()
    try:
        with pytest.raises(FatalStepError, match="bubblewrap"):
            await _run("def main(input):\n    return 1")
        with pytest.raises(sandbox.SandboxUnavailable, match="bwrap"):
            sandbox.require()
    finally:
        bwrap._probe.cache_clear()
